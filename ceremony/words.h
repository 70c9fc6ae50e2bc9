/*
 * words.h - hashes and fingerprints as words to read aloud in a ceremony
 * (PGP word list: 256 two-syllable words for bytes at even positions, 256
 * three-syllable words for odd positions). A SHA-256 is 32 words.
 */
#ifndef KR_WORDS_H
#define KR_WORDS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/err.h"

#define KR_WORDS_PER_LINE 8
/* Longest word is 11 characters: a buffer for n bytes of words. */
#define KR_WORDS_BUF(n) ((n) * 12 + 1)

/* The word for byte b at position pos (0-based). Never NULL. */
const char *kr_word(uint8_t b, size_t pos);

/* in[0..len) as words separated by single spaces. KR_ERR_TOO_LARGE if
 * cap is short (KR_WORDS_BUF(len) always suffices). */
int kr_words(const uint8_t *in, size_t len, char *out, size_t cap) KR_WUR;

/* Numbered lines of KR_WORDS_PER_LINE words, each prefixed by indent. */
int kr_words_print(FILE *f, const char *indent, const uint8_t *in,
    size_t len) KR_WUR;

/*
 * Words back to exactly outlen bytes (case-insensitive; anything that is
 * not a letter separates words). KR_ERR_FORMAT names the first bad word:
 * not in the list, or from the wrong list (a word dropped or doubled).
 */
int kr_words_decode(const char *text, uint8_t *out, size_t outlen) KR_WUR;

#endif
