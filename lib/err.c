/* err.c - error codes, detail messages and their text. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <lmdb.h>
#include <openssl/err.h>
#include <p11-kit/pkcs11.h>

#include "err.h"

static __thread char detail[2048];	/* per thread: batch workers report in parallel */

const char *
kr_strerror(int code)
{
	switch (code) {
	case KR_OK: return "success";
	case KR_ERR_INTERNAL: return "internal error";
	case KR_ERR_ALLOC: return "out of memory";
	case KR_ERR_SYSTEM: return "system error";
	case KR_ERR_LIBCRYPTO: return "OpenSSL error";
	case KR_ERR_PKCS11: return "PKCS#11 error";
	case KR_ERR_LMDB: return "LMDB error";
	case KR_ERR_INVALID_ARGUMENT: return "invalid argument";
	case KR_ERR_NOT_FOUND: return "not found";
	case KR_ERR_EXISTS: return "already exists";
	case KR_ERR_TOO_LARGE: return "too large";
	case KR_ERR_FORMAT: return "malformed input";
	case KR_ERR_SIGNATURE: return "bad signature";
	case KR_ERR_POLICY: return "refused by policy";
	case KR_ERR_CONFIG: return "bad configuration";
	case KR_ERR_PIN: return "login failed";
	case KR_ERR_TOKEN: return "token error";
	case KR_ERR_KEY_MISMATCH: return "key mismatch";
	case KR_ERR_LINT: return "certificate lint failed";
	case KR_ERR_TAMPERED: return "audit log tampered";
	case KR_ERR_ROLLBACK: return "rollback/truncation";
	case KR_ERR_UNSAFE_MEDIA: return "unsafe media";
	case KR_ERR_QUORUM: return "quorum not met";
	case KR_ERR_STATE: return "wrong state";
	case KR_ERR_INTERRUPTED: return "interrupted";
	case KR_ERR_UNSUPPORTED: return "unsupported";
	case KR_ERR_MAP_FULL: return "storage full";
	}
	return "unknown error";
}

int
kr_verrf(int code, const char *fmt, va_list ap)
{
	vsnprintf(detail, sizeof(detail), fmt, ap);
	return code;
}

int
kr_errf(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kr_verrf(code, fmt, ap);
	va_end(ap);
	return code;
}

int
kr_errctx(int code, const char *fmt, ...)
{
	char ctx[512], old[sizeof(detail) - 520];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, detail, sizeof(old) - 1);
	old[sizeof(old) - 1] = '\0';
	if (old[0] != '\0')
		snprintf(detail, sizeof(detail), "%s: %s", ctx, old);
	else
		snprintf(detail, sizeof(detail), "%s", ctx);
	return code;
}

const char *
kr_err_detail(void)
{
	return detail;
}

void
kr_err_clear(void)
{
	detail[0] = '\0';
}

static void
append(const char *s)
{
	size_t n = strlen(detail);

	if (n < sizeof(detail) - 1)
		snprintf(detail + n, sizeof(detail) - n, "%s", s);
}

int
kr_err_ckrv(unsigned long rv, const char *fmt, ...)
{
	char buf[128];
	va_list ap;

	va_start(ap, fmt);
	kr_verrf(KR_ERR_PKCS11, fmt, ap);
	va_end(ap);
	snprintf(buf, sizeof(buf), ": %s (0x%lx)", kr_ckrv_name(rv), rv);
	append(buf);
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID ||
	    rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_LOCKED)
		return KR_ERR_PIN;
	return KR_ERR_PKCS11;
}

int
kr_err_lmdb(int rc, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	kr_verrf(KR_ERR_LMDB, fmt, ap);
	va_end(ap);
	snprintf(buf, sizeof(buf), ": %s", mdb_strerror(rc));
	append(buf);
	if (rc == MDB_MAP_FULL || rc == ENOSPC)
		return KR_ERR_MAP_FULL;
	return KR_ERR_LMDB;
}

int
kr_err_ssl(const char *fmt, ...)
{
	char buf[256];
	unsigned long e;
	va_list ap;

	va_start(ap, fmt);
	kr_verrf(KR_ERR_LIBCRYPTO, fmt, ap);
	va_end(ap);
	while ((e = ERR_get_error()) != 0) {
		append(": ");
		ERR_error_string_n(e, buf, sizeof(buf));
		append(buf);
	}
	return KR_ERR_LIBCRYPTO;
}

int
kr_err_sys(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	kr_verrf(KR_ERR_SYSTEM, fmt, ap);
	va_end(ap);
	append(": ");
	append(strerror(saved));
	if (saved == ENOSPC || saved == EDQUOT)
		return KR_ERR_MAP_FULL;
	return KR_ERR_SYSTEM;
}

const char *
kr_ckrv_name(unsigned long rv)
{
	static const struct { unsigned long rv; const char *name; } t[] = {
		{ CKR_OK, "CKR_OK" },
		{ CKR_CANCEL, "CKR_CANCEL" },
		{ CKR_HOST_MEMORY, "CKR_HOST_MEMORY" },
		{ CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID" },
		{ CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR" },
		{ CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED" },
		{ CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD" },
		{ CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE" },
		{ CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID" },
		{ CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID" },
		{ CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR" },
		{ CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY" },
		{ CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED" },
		{ CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED" },
		{ CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID" },
		{ CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT" },
		{ CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID" },
		{ CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID" },
		{ CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID" },
		{ CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE" },
		{ CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED" },
		{ CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT" },
		{ CKR_PIN_INVALID, "CKR_PIN_INVALID" },
		{ CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE" },
		{ CKR_PIN_LOCKED, "CKR_PIN_LOCKED" },
		{ CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED" },
		{ CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID" },
		{ CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY" },
		{ CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID" },
		{ CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE" },
		{ CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT" },
		{ CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT" },
		{ CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED" },
		{ CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN" },
		{ CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN" },
		{ CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED" },
		{ CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID" },
		{ CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL" },
		{ CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED" },
		{ CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED" },
		{ CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID" },
		{ CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED" },
		{ CKR_RANDOM_NO_RNG, "CKR_RANDOM_NO_RNG" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].rv == rv)
			return t[i].name;
	return "CKR_unknown";
}

int
kr_exit_code(int code)
{
	switch (code) {
	case KR_OK: return KR_EXIT_OK;
	case KR_ERR_INVALID_ARGUMENT: return KR_EXIT_USAGE;
	case KR_ERR_TAMPERED:
	case KR_ERR_ROLLBACK: return KR_EXIT_VERIFY;
	}
	return KR_EXIT_ERROR;
}
