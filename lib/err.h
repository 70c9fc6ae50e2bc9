/*
 * err.h - the one error vocabulary of keyroom (after OpenSSH ssherr.h).
 *
 * Fallible functions return 0 on success or a negative KR_ERR_* code.
 * The code says what kind of failure it was; kr_err_detail() holds a
 * message naming the object that failed ("csr/0042.csr: public key does not
 * match manifest entry ..."), set with kr_errf() at the point of failure.
 * Reserved codes point at the underlying library's own error state:
 * KR_ERR_SYSTEM (errno), KR_ERR_LIBCRYPTO (OpenSSL error queue),
 * KR_ERR_PKCS11 (CK_RV, see kr_err_ckrv()), KR_ERR_LMDB (LMDB rc).
 */
#ifndef KR_ERR_H
#define KR_ERR_H

#include <stdarg.h>

#define KR_WUR __attribute__((warn_unused_result))

enum {
	KR_OK = 0,
	KR_ERR_INTERNAL = -1,		/* a bug: should not happen */
	KR_ERR_ALLOC = -2,		/* out of memory */
	KR_ERR_SYSTEM = -3,		/* see errno */
	KR_ERR_LIBCRYPTO = -4,		/* see the OpenSSL error queue */
	KR_ERR_PKCS11 = -5,		/* see the PKCS#11 CK_RV */
	KR_ERR_LMDB = -6,		/* see the LMDB rc */
	KR_ERR_INVALID_ARGUMENT = -7,	/* bad command line or API use */
	KR_ERR_NOT_FOUND = -8,		/* named object does not exist */
	KR_ERR_EXISTS = -9,		/* refusing to overwrite / duplicate */
	KR_ERR_TOO_LARGE = -10,		/* input exceeds a named limit */
	KR_ERR_FORMAT = -11,		/* malformed input */
	KR_ERR_SIGNATURE = -12,		/* signature does not verify */
	KR_ERR_POLICY = -13,		/* refused by policy */
	KR_ERR_CONFIG = -14,		/* bad configuration / policy file */
	KR_ERR_PIN = -15,		/* wrong PIN / login refused */
	KR_ERR_TOKEN = -16,		/* token / slot / module problem */
	KR_ERR_KEY_MISMATCH = -17,	/* key does not match expectation */
	KR_ERR_LINT = -18,		/* certificate failed a lint */
	KR_ERR_TAMPERED = -19,		/* audit log fails verification */
	KR_ERR_ROLLBACK = -20,		/* log does not extend a checkpoint */
	KR_ERR_UNSAFE_MEDIA = -21,	/* hostile file system object */
	KR_ERR_QUORUM = -22,		/* share refused / not enough shares */
	KR_ERR_STATE = -23,		/* wrong state (not initialised, no session) */
	KR_ERR_INTERRUPTED = -24,	/* user declined / signal */
	KR_ERR_UNSUPPORTED = -25,	/* algorithm or feature not supported */
	KR_ERR_MAP_FULL = -26,		/* LMDB map or disk full */
};

/* Static description of a code; never NULL. */
const char *kr_strerror(int code);

/* Set the detail message for the failure being returned. Returns code. */
int kr_errf(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int kr_verrf(int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * Prefix the current detail with context: "ctx: <old detail>".
 * Returns code so it can be used as `return kr_errctx(r, "%s", path);`
 */
int kr_errctx(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The detail message of the last failure (may be ""). */
const char *kr_err_detail(void);
void kr_err_clear(void);

/* Record a PKCS#11 CK_RV / LMDB rc alongside KR_ERR_PKCS11 / KR_ERR_LMDB. */
int kr_err_ckrv(unsigned long rv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int kr_err_lmdb(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drains the OpenSSL error queue into the detail. */
int kr_err_ssl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* errno-based. */
int kr_err_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Name of a PKCS#11 return value, e.g. "CKR_PIN_INCORRECT". */
const char *kr_ckrv_name(unsigned long rv);

/*
 * Process exit codes (documented in keyroom(1)).
 */
enum {
	KR_EXIT_OK = 0,		/* success; batch: every request signed */
	KR_EXIT_ERROR = 1,	/* failure; nothing was changed */
	KR_EXIT_USAGE = 2,	/* bad command line */
	KR_EXIT_PARTIAL = 3,	/* batch: some requests rejected */
	KR_EXIT_NONE = 4,	/* batch: nothing signed */
	KR_EXIT_VERIFY = 5,	/* audit verify: log failed verification */
};

/* Map an error code to an exit code. */
int kr_exit_code(int code);

#endif
