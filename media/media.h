/*
 * media.h - removable media: hostile-media intake (scan.c), the batch
 * bundle of DESIGN.md 5.2 (bundle.c), and the batch output of 5.3
 * (output.c). The manifest reader and device registry live in
 * media/manifest.h (another owner).
 *
 * Everything on the medium is hostile. kr_media_stage() walks the medium
 * once with openat(O_NOFOLLOW|O_PATH) + fstat on every descriptor (never a
 * path-based check), refuses the whole medium with a named reason on the
 * first unsafe object, and copies every allowed file exactly once into a
 * private staging file (an unlinked O_TMPFILE or a memfd). All parsing
 * reads from staging only; the medium is never read twice, so a file
 * swapped after the scan cannot be seen.
 */
#ifndef KR_MEDIA_H
#define KR_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/err.h"

/* Named limits of media intake. */
#define KR_MEDIA_MAX_FILES	 250000		/* files + dirs on the medium */
#define KR_MEDIA_MAX_NAME	 128		/* bytes per path component */
#define KR_MEDIA_MAX_PATH	 512		/* bytes of a relative path */
#define KR_MEDIA_MAX_DEPTH	 3		/* csr/a/b.csr is depth 3 */
#define KR_MEDIA_MAX_FILE_BYTES	 (64u * 1024 * 1024)	/* any one file */
#define KR_MEDIA_MAX_TOTAL_BYTES (1024ull * 1024 * 1024) /* whole medium */
#define KR_MEDIA_MAX_CSR_BYTES	 (16u * 1024)	/* one CSR file */
#define KR_MEDIA_MAX_BATCH_JSON	 (64u * 1024)	/* batch.json */
#define KR_MEDIA_MAX_PARTS	 64		/* part numbers in batch.json */
#define KR_MEDIA_MAX_ID		 64		/* batch id / manufacturer id */
#define KR_MEDIA_OUT_DIR	 "keyroom-out"	/* skipped by the scan */

/*
 * Limits for one scan; kr_media_limits_default() fills the named limits.
 * Tests shrink them to exercise each refusal cheaply.
 */
struct kr_media_limits {
	size_t max_files;
	size_t max_name;
	size_t max_depth;
	uint64_t max_file_bytes;
	uint64_t max_total_bytes;
};
void kr_media_limits_default(struct kr_media_limits *lim);

/* One staged file. */
struct kr_media_file {
	char *path;		/* relative, "csr/0001.csr", owned by media */
	uint64_t off;		/* offset in staging */
	uint64_t len;
};

struct kr_media;	/* opaque staged medium */

/*
 * Walk the medium `dir` and stage every allowed file. Allowed layout:
 * batch.json, csr/ (files *.csr, *.pem, *.der, subdirectories up to the
 * depth limit), manifest/ (*.json), keyroom-out/ (must be a real
 * directory; its content is not read). Anything else is refused.
 * staging_dir: directory for an unlinked O_TMPFILE staging file, or NULL
 * for a memfd. lim may be NULL (defaults).
 * Errors: KR_ERR_UNSAFE_MEDIA (symlink, device, FIFO, socket, hard link,
 * bad or over-long name, too deep, unexpected entry, changed during read),
 * KR_ERR_TOO_LARGE (too many files, file or total over a cap),
 * KR_ERR_SYSTEM. The detail names the object: "csr/x.csr: symlink".
 * *out is freed with kr_media_free().
 */
int kr_media_stage(const char *dir, const char *staging_dir,
    const struct kr_media_limits *lim, struct kr_media **out) KR_WUR;
void kr_media_free(struct kr_media *m);

/* Staged files, sorted by path (bytewise). Index < kr_media_count(). */
size_t kr_media_count(const struct kr_media *m);
const struct kr_media_file *kr_media_file(const struct kr_media *m,
    size_t i);
/* Index of path, or -1. */
long kr_media_find(const struct kr_media *m, const char *path);
/* Total staged bytes. */
uint64_t kr_media_total(const struct kr_media *m);

/*
 * Read staged file i into a new buffer of at most cap bytes (NUL-
 * terminated, not counted). KR_ERR_TOO_LARGE if longer than cap.
 * *out is freed with free().
 */
int kr_media_read(const struct kr_media *m, size_t i, size_t cap,
    uint8_t **out, size_t *outlen) KR_WUR;

/*
 * Validate one path component from hostile media: non-empty, at most
 * maxlen bytes, valid UTF-8 (no overlongs/surrogates), no control
 * characters, no '/', not "." or "..". Returns 0 or a static reason.
 */
const char *kr_media_name_problem(const char *name, size_t maxlen);

/* Strict UTF-8 (no overlongs, surrogates, C1 controls)? 1 or 0. */
int kr_media_utf8_ok(const char *s);

/* ---- batch bundle (bundle.c) ---- */

/* batch.json, strictly parsed. */
struct kr_batch_desc {
	char id[KR_MEDIA_MAX_ID + 1];		/* [A-Za-z0-9._-], 1..64 */
	char manufacturer[KR_MEDIA_MAX_ID + 1];	/* same charset */
	char profile[KR_MEDIA_MAX_ID + 1];	/* same charset */
	long long expected;			/* expected CSR count */
	size_t nparts;
	char parts[KR_MEDIA_MAX_PARTS][KR_MEDIA_MAX_ID + 1];
};

/*
 * Parse batch.json bytes. Keys: "batch_id", "manufacturer", "profile",
 * "expected_count", "part_numbers" (array of strings); optional "comment"
 * (string, ignored). Unknown keys are errors. name is used in messages.
 * Errors: KR_ERR_FORMAT with a detail naming the key.
 */
int kr_batch_desc_parse(const char *name, const uint8_t *buf, size_t len,
    struct kr_batch_desc *out) KR_WUR;

/* Is s a valid batch/manufacturer/profile identifier? */
int kr_batch_id_ok(const char *s);

/* Does path name a CSR file (csr/...{.csr,.pem,.der})? a manifest? */
int kr_bundle_is_csr(const char *path);
int kr_bundle_is_manifest(const char *path);

/*
 * CSR parsing and proof of possession are the CA's (ca/ca.h
 * kr_csr_parse). Subject CN of a request into out (UTF-8), "" if absent.
 * KR_ERR_FORMAT if more than one CN, not decodable or too long.
 */
int kr_bundle_csr_cn(X509_REQ *req, char *out, size_t outlen) KR_WUR;

/* ---- batch output (output.c) ---- */

struct kr_out;	/* an output directory being built */

/*
 * Begin the output for batch_id under <media>/keyroom-out/: creates (or
 * checks) keyroom-out as a real directory, refuses if
 * keyroom-out/<batch_id> exists (KR_ERR_EXISTS), and creates a fresh
 * temporary directory keyroom-out/.tmp-<batch_id>-<random> with certs/
 * and registration/. A stale .tmp-<batch_id>-* from an interrupted run is
 * removed first (it never looked whole).
 */
int kr_out_begin(const char *media, const char *batch_id,
    struct kr_out **out) KR_WUR;

/*
 * Write a new file (relative path inside the output, at most one '/':
 * "certs/x.pem") and remember its SHA-256 for SHA256SUMS. O_EXCL: never
 * overwrites (KR_ERR_EXISTS). Files are made durable at commit (syncfs
 * of the medium + fsync of every directory), not one fsync each.
 */
int kr_out_write(struct kr_out *o, const char *rel, const void *data,
    size_t len) KR_WUR;

/*
 * The two halves of kr_out_write: kr_out_put writes the file and gives
 * its SHA-256 (thread-safe for files in certs/ and the top directory);
 * kr_out_sum records it for SHA256SUMS (not thread-safe).
 */
int kr_out_put(struct kr_out *o, const char *rel, const void *data,
    size_t len, uint8_t sha256[32]) KR_WUR;
int kr_out_sum(struct kr_out *o, const char *rel, const uint8_t sha256[32])
    KR_WUR;

/*
 * Streamed files (report.json, registration files) for outputs too large to
 * hold in memory: open, append, close. At most KR_OUT_MAX_STREAMS open.
 * The SHA-256 is computed as written. Closing is done by kr_out_commit
 * for streams still open. Returns a stream handle >= 0 or an error.
 */
#define KR_OUT_MAX_STREAMS 8
int kr_out_stream_open(struct kr_out *o, const char *rel) KR_WUR;
int kr_out_stream_write(struct kr_out *o, int h, const void *data,
    size_t len) KR_WUR;
int kr_out_stream_printf(struct kr_out *o, int h, const char *fmt, ...)
    __attribute__((format(printf, 3, 4))) KR_WUR;
int kr_out_stream_close(struct kr_out *o, int h) KR_WUR;

/*
 * Finish: writes SHA256SUMS over every file written, fsyncs every
 * directory, renames the temp dir to keyroom-out/<batch_id> (refusing if
 * it appeared meanwhile) and fsyncs keyroom-out. After this the output is
 * whole. The final path is available from kr_out_path().
 */
int kr_out_commit(struct kr_out *o) KR_WUR;
const char *kr_out_path(const struct kr_out *o);

/* Abandon: remove the temp dir (best effort) and free. NULL-safe. */
void kr_out_free(struct kr_out *o);

/*
 * Crash-test hook: with KEYROOM_TEST_CRASH_AT=n in the environment the
 * process SIGKILLs itself at the n-th call (KEYROOM_TEST_CRASH_VERBOSE
 * names the point on stderr first). No-op otherwise.
 */
void kr_media_crash_point(const char *where);

#endif
