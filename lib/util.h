/*
 * util.h - small shared helpers: bounded file I/O, atomic never-overwrite
 * output, hex, secure memory, process hardening, terminal progress.
 */
#ifndef KR_UTIL_H
#define KR_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"

#define KR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Read a whole regular file of at most maxlen bytes. Opens with O_NOFOLLOW,
 * checks type and size with fstat on the descriptor. *out is NUL-terminated
 * (not counted in *outlen) and must be freed with free() (or
 * kr_free_wipe()). Errors: KR_ERR_SYSTEM, KR_ERR_TOO_LARGE,
 * KR_ERR_UNSAFE_MEDIA (not a regular file / symlink).
 */
int kr_read_file(const char *path, size_t maxlen, uint8_t **out,
    size_t *outlen) KR_WUR;

/*
 * Write a new file atomically: temp file in the same directory, fsync,
 * link into place without ever replacing an existing file, fsync the
 * directory. KR_ERR_EXISTS if path exists.
 */
int kr_write_new_file(const char *path, const void *data, size_t len,
    mode_t mode) KR_WUR;

/* Like kr_write_new_file but replaces an existing file (rename). */
int kr_write_replace_file(const char *path, const void *data, size_t len,
    mode_t mode) KR_WUR;

/* fsync a directory by path. */
int kr_fsync_dir(const char *path) KR_WUR;

/* rename(from, to), then fsync the directory of to. */
int kr_rename_durable(const char *from, const char *to) KR_WUR;

/* mkdir -p with mode for created components. */
int kr_mkdirs(const char *path, mode_t mode) KR_WUR;

/* Checked snprintf: KR_ERR_TOO_LARGE on truncation. */
int kr_snprintf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4))) KR_WUR;

/* Lower-case hex of in[0..len) into out (2*len+1 bytes). */
void kr_hex(const uint8_t *in, size_t len, char *out);
/* Parse exactly outlen bytes of hex (either case). */
int kr_unhex(const char *in, uint8_t *out, size_t outlen) KR_WUR;

/*
 * Length (1-4) of the well-formed UTF-8 sequence at s[0..n) and its code
 * point in *cp; 0 if it is malformed, truncated, overlong, a surrogate or
 * above U+10FFFF (n == 0 also gives 0).
 */
size_t kr_utf8_next(const char *s, size_t n, uint32_t *cp);
/*
 * Make the NUL-terminated s safe for a JSON report or a terminal, in
 * place: every byte of a malformed UTF-8 sequence and every C0 control
 * or DEL becomes '?'. Messages cut with "%.Ns" may split a character.
 */
void kr_utf8_sanitize(char *s);

/*
 * Strict decode (lib/b64.c) of in[0..len): url = 0, the standard alphabet
 * padded to a multiple of 4; url = 1, base64url without padding. Refuses
 * other characters, whitespace, impossible lengths, wrong padding and
 * non-zero unused bits (one value, one text). *out is malloc'd (free();
 * a 1-byte buffer for empty input), *outlen set. KR_ERR_FORMAT,
 * KR_ERR_TOO_LARGE (over KR_B64_DECODE_MAX), KR_ERR_ALLOC.
 */
#define KR_B64_DECODE_MAX ((size_t)1 << 30)
int kr_b64_decode_alloc(const char *in, size_t len, int url, uint8_t **out,
    size_t *outlen) KR_WUR;

/* SHA-256 of a buffer. */
void kr_sha256(const void *data, size_t len, uint8_t out[32]);

/* Free after wiping (NULL-safe). */
void kr_free_wipe(void *p, size_t len);

/*
 * Locked memory for secrets (PINs, shares): mlock'd, MADV_DONTDUMP,
 * zeroed. kr_secure_free wipes and unlocks. NULL on failure.
 */
void *kr_secure_alloc(size_t len);
void kr_secure_free(void *p, size_t len);

/* Core dumps off, not ptrace-able. Called first thing in main(). */
void kr_harden_process(void);

/*
 * Read a secret line: from "file:PATH", "fd:N", "env:NAME" or, if spec is
 * NULL, from the terminal without echo using prompt. Trailing newline
 * stripped. *out is kr_secure_alloc'd with cap bytes; *outlen set.
 */
int kr_read_secret(const char *spec, const char *prompt, char **out,
    size_t *outlen, size_t cap) KR_WUR;

/* Is stderr a terminal (progress bars, colours)? */
int kr_isatty_err(void);

/*
 * Progress bar on stderr when it is a terminal, silent otherwise:
 * "label [#####.....] 1234/10000  812/s  ETA 0:11"; with total 0 (a
 * stream of unknown length) "label 1234  812/s".
 */
struct kr_progress {
	const char *label;
	uint64_t total;
	uint64_t done;
	double t0;
	double last;
	int active;
};
void kr_progress_start(struct kr_progress *p, const char *label,
    uint64_t total);
void kr_progress_update(struct kr_progress *p, uint64_t done);
void kr_progress_finish(struct kr_progress *p);

/* Monotonic seconds. */
double kr_now(void);

/* UTC time as RFC 3339 "2026-11-25T08:13:35Z" (out >= 21 bytes). */
void kr_time_rfc3339(time_t t, char out[32]);

/*
 * Repairs made before the audit log is open (e.g. a token file restored
 * after a crash) are noted here; kr_log_recover logs each one as a
 * self-check entry and forgets it once committed. At most
 * KR_STARTUP_NOTES are kept; more are dropped (the warning on stderr
 * still names them).
 */
#define KR_STARTUP_NOTES 8
void kr_startup_note(const char *check, const char *result,
    const char *detail);
size_t kr_startup_notes(const char **check, const char **result,
    const char **detail, size_t max);
void kr_startup_notes_clear(void);

#endif
