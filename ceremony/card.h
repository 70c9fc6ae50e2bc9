/*
 * card.h - share cards: one share of a quorum set as text a person can
 * read aloud and type back, plus a QR code of the same text.
 *
 * The share code is 45 bytes: version 0x01 || set id (8) || index || M ||
 * N || share (32) || check byte (first byte of SHA-256("keyroom card v1\0"
 * || the 44 bytes before it)), in RFC 4648 base32: 72 characters in 6
 * lines of 3 groups of 4, each line followed by a 2-character line check
 * (10 bits of SHA-256("keyroom card line v1\0" || line number || the 12
 * characters)), so a typo is pinned to its line:
 *     1  ABCD EFGH IJKL  XY
 * Parsing ignores spaces, '-', '#' comment lines, line numbers at line
 * starts and case, reads 0/1/8 as O/I/B, and is strict about every
 * checksum.
 */
#ifndef KR_CARD_H
#define KR_CARD_H

#include <stdio.h>

#include "ceremony/quorum.h"

#define KR_CARD_LINES	6
#define KR_CARD_LINE_CHARS 12	/* data characters per line */
#define KR_CARD_CODE_LEN (KR_CARD_LINES * (KR_CARD_LINE_CHARS + 2))	/* 84 */
#define KR_CARD_TEXT_MAX 256	/* buffer for kr_card_code() */

/*
 * The share code. compact=1: the 84 characters without separators (the
 * QR payload). compact=0: 6 lines "ABCD EFGH IJKL  XY\n". Errors:
 * KR_ERR_TOO_LARGE if len is too small.
 */
int kr_card_code(const struct kr_share *s, int compact, char *out,
    size_t len) KR_WUR;

/*
 * Parse a typed-back or scanned share code into *out (caller's secure
 * memory). Errors: KR_ERR_FORMAT (characters outside the alphabet, wrong
 * length, unknown version), KR_ERR_QUORUM "share card line N: checksum
 * XY does not match (mistyped?)" or "share card: checksum does not match".
 */
int kr_card_parse(const char *text, struct kr_share *out) KR_WUR;

/*
 * Print the whole card for one custodian: token label, custodian name,
 * share-set id, M-of-N, index, date, the code lines and (qr=1) the QR
 * code in UTF-8 half blocks.
 */
int kr_card_print(FILE *f, const struct kr_qset *set,
    const struct kr_share *s, int qr) KR_WUR;

/* RFC 4648 base32 without padding (exposed for tests). out needs
 * (8*len+4)/5+1 bytes. */
void kr_base32_encode(const uint8_t *in, size_t len, char *out);
/* Decode exactly outlen bytes from an upper-case base32 string. */
int kr_base32_decode(const char *in, size_t inlen, uint8_t *out,
    size_t outlen) KR_WUR;

#endif
