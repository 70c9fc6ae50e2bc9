/*
 * entry.c - audit entry types (the fixed key order of each, as a table),
 * encoding and the verifier's strict entry parser.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "audit/entry.h"
#include "lib/util.h"

#define MAXKEYS 8

/* Keys after type/time/actor, in order; a leading '?' marks optional. */
static const struct {
	const char *name;
	const char *keys[MAXKEYS];
} types[KR_E__COUNT] = {
	[KR_E_INIT] = { "init", { "vkey", "?config-sha256" } },
	[KR_E_BOOT] = { "boot", { "version", "?image-sha256" } },
	[KR_E_SHUTDOWN] = { "shutdown", { "?reason" } },
	[KR_E_HSM_LOGIN] = { "hsm-login", { "token", "?user" } },
	[KR_E_HSM_LOGOUT] = { "hsm-logout", { "token" } },
	[KR_E_HSM_FAILURE] = { "hsm-failure",
	    { "token", "operation", "error" } },
	[KR_E_KEY_GENERATE] = { "key-generate",
	    { "token", "label", "algorithm", "pubkey-sha256" } },
	[KR_E_KEY_DESTROY] = { "key-destroy",
	    { "token", "label", "?pubkey-sha256", "?reason" } },
	[KR_E_CERT_INTENT] = { "cert-intent",
	    { "issuer", "serial", "tbs-sha256", "?device-id", "?batch",
	    "?profile" } },
	[KR_E_CERT_ISSUED] = { "cert-issued",
	    { "issuer", "serial", "intent", "cert-sha256", "?device-id",
	    "?batch", "cert" } },
	[KR_E_CERT_ABANDONED] = { "cert-abandoned",
	    { "issuer", "serial", "intent", "reason" } },
	[KR_E_REQUEST_RECEIVED] = { "request-received",
	    { "batch", "file", "?device-id" } },
	[KR_E_REQUEST_APPROVED] = { "request-approved",
	    { "?batch", "?file", "?device-id", "?approvers" } },
	[KR_E_REQUEST_REJECTED] = { "request-rejected",
	    { "?batch", "?file", "?device-id", "reason" } },
	[KR_E_MANIFEST_IMPORTED] = { "manifest-imported",
	    { "file", "sha256", "entries", "?signer" } },
	[KR_E_BATCH_BEGIN] = { "batch-begin",
	    { "batch", "?manufacturer", "?profile", "?count",
	    "?policy-digest" } },
	[KR_E_BATCH_END] = { "batch-end",
	    { "batch", "signed", "rejected", "result" } },
	[KR_E_REVOKED] = { "revoked",
	    { "issuer", "serial", "reason", "?cert-sha256" } },
	[KR_E_CRL_ISSUED] = { "crl-issued",
	    { "issuer", "crl-number", "crl-sha256", "?next-update" } },
	[KR_E_EXPORT] = { "export", { "what", "?dest", "?size", "?sha256" } },
	[KR_E_SELF_CHECK] = { "self-check", { "check", "result", "?detail" } },
	[KR_E_CONFIG_CHANGE] = { "config-change",
	    { "file", "sha256", "?previous-sha256", "?policy-digest" } },
	[KR_E_CEREMONY_BEGIN] = { "ceremony-begin",
	    { "ceremony", "script-sha256", "?participants" } },
	[KR_E_CEREMONY_STEP] = { "ceremony-step",
	    { "ceremony", "step", "action", "result", "?detail" } },
	[KR_E_CEREMONY_END] = { "ceremony-end",
	    { "ceremony", "result", "?transcript-sha256" } },
	[KR_E_QUORUM_UNLOCK] = { "quorum-unlock",
	    { "token", "share-set", "shares", "?threshold" } },
	[KR_E_RESHARE] = { "reshare",
	    { "token", "old-share-set", "new-share-set", "threshold",
	    "shares" } },
	[KR_E_SESSION_OPEN] = { "session-open", { "session", "?purpose" } },
	[KR_E_SESSION_CLOSE] = { "session-close", { "session", "?result" } },
};

const char *
kr_etype_name(enum kr_etype t)
{
	if ((int)t < 0 || t >= KR_E__COUNT)
		return NULL;
	return types[t].name;
}

int
kr_etype_from_name(const char *name, enum kr_etype *out)
{
	int i;

	for (i = 0; i < KR_E__COUNT; i++)
		if (strcmp(types[i].name, name) == 0) {
			*out = (enum kr_etype)i;
			return 0;
		}
	return kr_errf(KR_ERR_NOT_FOUND, "unknown entry type '%s'", name);
}

static int
etype_from_bytes(const char *s, size_t n, enum kr_etype *out)
{
	int i;

	for (i = 0; i < KR_E__COUNT; i++)
		if (strlen(types[i].name) == n &&
		    memcmp(types[i].name, s, n) == 0) {
			*out = (enum kr_etype)i;
			return 0;
		}
	return KR_ERR_NOT_FOUND;
}

void
kr_etype_print_table(FILE *f)
{
	int i, k;
	const char *key;

	for (i = 0; i < KR_E__COUNT; i++) {
		fprintf(f, "  %-18s time actor", types[i].name);
		for (k = 0; k < MAXKEYS && (key = types[i].keys[k]) != NULL;
		    k++) {
			if (key[0] == '?')
				fprintf(f, " [%s]", key + 1);
			else
				fprintf(f, " %s", key);
		}
		fputc('\n', f);
	}
}

int
kr_entry_value_ok(const char *v, size_t n)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t i = 0, k;
	uint32_t cp;

	if (n == 0 || n > KR_LOG_MAX_VALUE)
		return 0;
	while (i < n) {
		if (s[i] < 0x80) {
			if (s[i] < 0x20 || s[i] == 0x7f)
				return 0;
			i++;
			continue;
		}
		/* Malformed; C1 controls, line/paragraph separators. */
		if ((k = kr_utf8_next(v + i, n - i, &cp)) == 0 ||
		    (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 ||
		    cp == 0x2029)
			return 0;
		i += k;
	}
	return 1;
}

struct ebuf {
	char *p;
	size_t cap, len;
};

static int
put(struct ebuf *b, const char *key, const char *val, size_t vlen)
{
	size_t kl = strlen(key);

	if (b->len + kl + 1 + vlen + 1 > b->cap ||
	    b->len + kl + 1 + vlen + 1 > KR_LOG_MAX_ENTRY)
		return kr_errf(KR_ERR_TOO_LARGE,
		    "entry exceeds %d bytes at key '%s'", KR_LOG_MAX_ENTRY,
		    key);
	memcpy(b->p + b->len, key, kl);
	b->p[b->len + kl] = ' ';
	memcpy(b->p + b->len + kl + 1, val, vlen);
	b->len += kl + 1 + vlen;
	b->p[b->len++] = '\n';
	return 0;
}

int
kr_entry_encode(const char *origin, enum kr_etype type, int64_t t,
    const char *actor, const struct kr_kv *kv, size_t nkv, char *buf,
    size_t cap, size_t *len)
{
	struct ebuf b = { buf, cap, 0 };
	const char *key, *val;
	char ts[32];
	size_t i, j;
	int k, r, opt;

	*len = 0;
	if (kr_etype_name(type) == NULL)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "entry type %d",
		    (int)type);
	if (actor == NULL || !kr_entry_value_ok(actor, strlen(actor)))
		return kr_errf(KR_ERR_INVALID_ARGUMENT,
		    "%s entry: bad actor value", types[type].name);
	/* Every given key must be one of the type's, once. */
	for (i = 0; i < nkv; i++) {
		for (k = 0; k < MAXKEYS && (key = types[type].keys[k]); k++)
			if (strcmp(key + (key[0] == '?'), kv[i].key) == 0)
				break;
		if (k == MAXKEYS || types[type].keys[k] == NULL)
			return kr_errf(KR_ERR_INVALID_ARGUMENT,
			    "%s entry: unknown key '%s'", types[type].name,
			    kv[i].key);
		for (j = 0; j < i; j++)
			if (strcmp(kv[j].key, kv[i].key) == 0)
				return kr_errf(KR_ERR_INVALID_ARGUMENT,
				    "%s entry: duplicate key '%s'",
				    types[type].name, kv[i].key);
	}
	if (t == 0)
		t = (int64_t)time(NULL);
	kr_time_rfc3339((time_t)t, ts);
	if (strlen(origin) + 10 > cap)
		return kr_errf(KR_ERR_TOO_LARGE, "entry buffer");
	b.len = (size_t)snprintf(buf, cap, "%s entry/v1\n", origin);
	if ((r = put(&b, "type", types[type].name,
	    strlen(types[type].name))) != 0 ||
	    (r = put(&b, "time", ts, strlen(ts))) != 0 ||
	    (r = put(&b, "actor", actor, strlen(actor))) != 0)
		return r;
	for (k = 0; k < MAXKEYS && (key = types[type].keys[k]) != NULL; k++) {
		opt = key[0] == '?';
		key += opt;
		val = NULL;
		for (i = 0; i < nkv; i++)
			if (strcmp(kv[i].key, key) == 0)
				val = kv[i].value;
		if (val == NULL) {
			if (opt)
				continue;
			return kr_errf(KR_ERR_INVALID_ARGUMENT,
			    "%s entry: missing key '%s'", types[type].name,
			    key);
		}
		if (!kr_entry_value_ok(val, strlen(val)))
			return kr_errf(KR_ERR_INVALID_ARGUMENT,
			    "%s entry: key '%s': value must be non-empty "
			    "single-line UTF-8 without control characters",
			    types[type].name, key);
		if ((r = put(&b, key, val, strlen(val))) != 0)
			return r;
	}
	*len = b.len;
	return 0;
}

/* n decimal digits (already checked) as an int. */
static int
num(const char *s, int n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

/* "YYYY-MM-DDTHH:MM:SSZ", a real UTC instant (no month 13, no 24:00). */
static int
time_ok(const char *s, size_t n)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };
	size_t i;
	int y, mo, d;

	if (n != sizeof(pat) - 1)
		return 0;
	for (i = 0; i < n; i++) {
		if (pat[i] == 'd') {
			if (s[i] < '0' || s[i] > '9')
				return 0;
		} else if (s[i] != pat[i])
			return 0;
	}
	/* A real instant (plain range checks: this runs for every entry). */
	y = num(s, 4);
	mo = num(s + 5, 2);
	d = num(s + 8, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && y % 4 == 0 &&
	    (y % 100 != 0 || y % 400 == 0)))
		return 0;
	return num(s + 11, 2) <= 23 && num(s + 14, 2) <= 59 &&
	    num(s + 17, 2) <= 59;
}

/* Next line of e at *pos: key [kp,kl), value [vp,vl). */
static int
next_line(const uint8_t *e, size_t len, size_t *pos, const char **kp,
    size_t *kl, const char **vp, size_t *vl)
{
	const char *s = (const char *)e + *pos, *nl, *sp;
	size_t rest = len - *pos;

	if (rest == 0)
		return 0;
	if ((nl = memchr(s, '\n', rest)) == NULL)
		return -1;
	if ((sp = memchr(s, ' ', (size_t)(nl - s))) == NULL || sp == s)
		return -1;
	*kp = s;
	*kl = (size_t)(sp - s);
	*vp = sp + 1;
	*vl = (size_t)(nl - sp - 1);
	*pos += (size_t)(nl - s) + 1;
	return 1;
}

#define KEYIS(kp, kl, lit) ((kl) == sizeof(lit) - 1 && \
    memcmp((kp), (lit), sizeof(lit) - 1) == 0)

int
kr_entry_check(const char *origin, const uint8_t *e, size_t len,
    enum kr_etype *type)
{
	size_t ol = strlen(origin), pos, kl, vl, want;
	const char *kp, *vp, *key;
	enum kr_etype t;
	int k, r;

	if (len > KR_LOG_MAX_ENTRY)
		return kr_errf(KR_ERR_FORMAT, "entry is %zu bytes", len);
	if (len < ol + 10 || memcmp(e, origin, ol) != 0 ||
	    memcmp(e + ol, " entry/v1\n", 10) != 0)
		return kr_errf(KR_ERR_FORMAT,
		    "first line is not '%s entry/v1'", origin);
	pos = ol + 10;
	if (next_line(e, len, &pos, &kp, &kl, &vp, &vl) != 1 ||
	    !KEYIS(kp, kl, "type") || etype_from_bytes(vp, vl, &t) != 0)
		return kr_errf(KR_ERR_FORMAT, "line 2: expected 'type <known>'");
	if (next_line(e, len, &pos, &kp, &kl, &vp, &vl) != 1 ||
	    !KEYIS(kp, kl, "time") || !time_ok(vp, vl))
		return kr_errf(KR_ERR_FORMAT,
		    "line 3: expected 'time <RFC 3339 UTC>'");
	if (next_line(e, len, &pos, &kp, &kl, &vp, &vl) != 1 ||
	    !KEYIS(kp, kl, "actor") || !kr_entry_value_ok(vp, vl))
		return kr_errf(KR_ERR_FORMAT, "line 4: expected 'actor <who>'");
	k = 0;
	while ((r = next_line(e, len, &pos, &kp, &kl, &vp, &vl)) == 1) {
		/* Skip optional keys until this one, in table order. */
		for (; k < MAXKEYS && (key = types[t].keys[k]) != NULL; k++) {
			want = strlen(key + (key[0] == '?'));
			if (kl == want && memcmp(kp, key + (key[0] == '?'),
			    kl) == 0)
				break;
			if (key[0] != '?')
				return kr_errf(KR_ERR_FORMAT,
				    "%s entry: missing key '%s'",
				    types[t].name, key);
		}
		if (k == MAXKEYS || types[t].keys[k] == NULL)
			return kr_errf(KR_ERR_FORMAT,
			    "%s entry: unexpected key '%.*s'", types[t].name,
			    (int)(kl > 40 ? 40 : kl), kp);
		if (!kr_entry_value_ok(vp, vl))
			return kr_errf(KR_ERR_FORMAT,
			    "%s entry: bad value for '%.*s'", types[t].name,
			    (int)kl, kp);
		k++;
	}
	if (r < 0)
		return kr_errf(KR_ERR_FORMAT, "malformed line at byte %zu",
		    pos);
	for (; k < MAXKEYS && (key = types[t].keys[k]) != NULL; k++)
		if (key[0] != '?')
			return kr_errf(KR_ERR_FORMAT,
			    "%s entry: missing key '%s'", types[t].name, key);
	*type = t;
	return 0;
}

int
kr_entry_get(const uint8_t *e, size_t len, const char *key,
    const char **val, size_t *vlen)
{
	const char *nl, *kp, *vp;
	size_t pos, kl, vl, want = strlen(key);

	if ((nl = memchr(e, '\n', len)) == NULL)
		return kr_errf(KR_ERR_NOT_FOUND, "key '%s'", key);
	pos = (size_t)(nl - (const char *)e) + 1;
	while (next_line(e, len, &pos, &kp, &kl, &vp, &vl) == 1)
		if (kl == want && memcmp(kp, key, kl) == 0) {
			*val = vp;
			*vlen = vl;
			return 0;
		}
	return kr_errf(KR_ERR_NOT_FOUND, "key '%s'", key);
}

int
kr_entry_get_str(const uint8_t *e, size_t len, const char *key, char *out,
    size_t cap)
{
	const char *v;
	size_t vl;
	int r;

	if ((r = kr_entry_get(e, len, key, &v, &vl)) != 0)
		return r;
	if (vl + 1 > cap)
		return kr_errf(KR_ERR_TOO_LARGE, "value of '%s'", key);
	memcpy(out, v, vl);
	out[vl] = '\0';
	return 0;
}

int
kr_entry_get_u64(const uint8_t *e, size_t len, const char *key,
    uint64_t *out)
{
	char buf[24], *end;
	unsigned long long v;
	int r;

	if ((r = kr_entry_get_str(e, len, key, buf, sizeof(buf))) != 0)
		return r;
	if (buf[0] < '0' || buf[0] > '9' || (buf[0] == '0' && buf[1]))
		return kr_errf(KR_ERR_FORMAT, "value of '%s' is not a number",
		    key);
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (*end != '\0' || errno != 0)
		return kr_errf(KR_ERR_FORMAT, "value of '%s' is not a number",
		    key);
	*out = v;
	return 0;
}
