/*
 * note.h - C2SP signed-note (Ed25519, type 0x01) and tlog-checkpoint
 * bodies; base64 helpers (standard alphabet, padded, strict).
 */
#ifndef KR_NOTE_H
#define KR_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"

/* "\xe2\x80\x94 " : the em dash and space that start a signature line. */
#define KR_NOTE_SIGPREFIX "\xe2\x80\x94 "

/* base64 of in into out (cap >= 4*ceil(len/3)+1). KR_ERR_TOO_LARGE. */
int kr_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
    KR_WUR;
/* Malloc'ing variant (free()). */
int kr_b64_encode_alloc(const uint8_t *in, size_t len, char **out) KR_WUR;
/*
 * Strict decode of exactly inlen chars (canonical padded base64, no
 * whitespace) into out (cap bytes); *outlen set. KR_ERR_FORMAT.
 */
int kr_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t cap,
    size_t *outlen) KR_WUR;

/* Key ID: first 4 bytes of SHA-256(name || 0x0A || 0x01 || pub). */
void kr_note_keyid(const char *name, const uint8_t pub[32], uint8_t id[4]);

/*
 * Parse a vkey "<name>+<hex id>+<base64(01||pub)>" (trailing newline
 * allowed). name gets the key name (cap bytes). KR_ERR_FORMAT if
 * malformed, KR_ERR_KEY_MISMATCH if the id does not match the key,
 * KR_ERR_UNSUPPORTED if not Ed25519.
 */
int kr_note_vkey_parse(const char *vkey, char *name, size_t cap,
    uint8_t pub[32]) KR_WUR;

/* Checkpoint body "<origin>\n<size>\n<base64 root>\n" into buf. */
int kr_checkpoint_body(const char *origin, uint64_t size,
    const uint8_t root[32], char *buf, size_t cap, size_t *len) KR_WUR;

/*
 * Parse a checkpoint body strictly (exactly 3 lines, decimal size
 * without leading zeros, 32-byte root). origin (cap bytes) may be NULL.
 */
int kr_checkpoint_parse(const char *body, size_t len, char *origin,
    size_t cap, uint64_t *size, uint8_t root[32]) KR_WUR;

/*
 * Sign body (must end in '\n', no blank line) into a signed note:
 * body, "\n", "— <name> <base64(keyid||sig)>\n". *out malloc'd, NUL
 * terminated; *outlen set (may be NULL).
 */
int kr_note_sign(const struct kr_note_signer *s, const char *body,
    size_t len, char **out, size_t *outlen) KR_WUR;

/*
 * Verify a signed note against (name, pub): splits at the last blank
 * line, checks every signature line's syntax, and requires a valid
 * signature from that key. *body / *bodylen (may be NULL) point at the
 * signed text inside note. KR_ERR_FORMAT (malformed),
 * KR_ERR_SIGNATURE (no signature by the key, or it does not verify).
 */
int kr_note_verify(const char *note, size_t len, const char *name,
    const uint8_t pub[32], const char **body, size_t *bodylen) KR_WUR;

/* Ed25519 verification with OpenSSL: 0 or KR_ERR_SIGNATURE. */
int kr_ed25519_verify(const uint8_t pub[32], const uint8_t *msg,
    size_t len, const uint8_t sig[64]) KR_WUR;

#endif
