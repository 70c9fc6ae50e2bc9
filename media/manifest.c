/*
 * manifest.c - verify a Microchip secure-element manifest (DESIGN.md §5.1):
 * a JSON array of flattened JWS entries signed ES256 by a pinned vendor
 * signer. Per entry: structure, protected header, signer lookup, kid,
 * signature, and only then the payload (uniqueId, timestamp within the
 * signer's validity, JWKs on allowed curves, x5c chains). Each array
 * element ends as a verified struct kr_device or one named reason.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/util.h"
#include "media/manifest.h"

static const char *const reason_str[KR_MF_NREASONS] = {
	[KR_MF_OK] = "ok",
	[KR_MF_MALFORMED] = "malformed",
	[KR_MF_ALG] = "alg-not-allowed",
	[KR_MF_FORBIDDEN_HEADER] = "forbidden-header",
	[KR_MF_UNKNOWN_SIGNER] = "unknown-signer",
	[KR_MF_KID_MISMATCH] = "kid-mismatch",
	[KR_MF_BAD_SIGNATURE] = "bad-signature",
	[KR_MF_ID_MISMATCH] = "uniqueid-mismatch",
	[KR_MF_BAD_UNIQUEID] = "bad-uniqueid",
	[KR_MF_TIME] = "timestamp-outside-signer-validity",
	[KR_MF_DUPLICATE] = "duplicate-different",
	[KR_MF_CURVE] = "curve-not-allowed",
	[KR_MF_POINT] = "point-not-on-curve",
	[KR_MF_X5C] = "x5c-invalid",
};

const char *
kr_mf_reason_str(enum kr_mf_reason r)
{
	if ((unsigned)r >= KR_MF_NREASONS)
		return "?";
	return reason_str[r];
}

static const struct {
	unsigned bit;
	int nid;
	const char *jose;	/* JWK crv */
	const char *group;	/* OSSL group name */
	size_t flen;		/* field element bytes */
} curves[] = {
	{ KR_CURVE_P256, NID_X9_62_prime256v1, "P-256", "prime256v1", 32 },
	{ KR_CURVE_P384, NID_secp384r1, "P-384", "secp384r1", 48 },
	{ KR_CURVE_P521, NID_secp521r1, "P-521", "secp521r1", 66 },
};

unsigned
kr_curve_bit(int nid)
{
	size_t i;

	for (i = 0; i < KR_ARRAY_SIZE(curves); i++)
		if (curves[i].nid == nid)
			return curves[i].bit;
	return 0;
}

const char *
kr_curve_name(unsigned bit)
{
	size_t i;

	for (i = 0; i < KR_ARRAY_SIZE(curves); i++)
		if (curves[i].bit == bit)
			return curves[i].jose;
	return "?";
}

const struct kr_mf_key *
kr_device_key(const struct kr_device *d, const char *kid)
{
	size_t i;

	for (i = 0; i < d->nkeys; i++)
		if (strcmp(d->keys[i].kid, kid) == 0)
			return &d->keys[i];
	return NULL;
}

/* Record a per-entry refusal. Always returns -1 for `return fail(...)`. */
static int
fail(struct kr_mf_result *res, enum kr_mf_reason why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
fail(struct kr_mf_result *res, enum kr_mf_reason why, const char *fmt, ...)
{
	va_list ap;

	res->reason = why;
	va_start(ap, fmt);
	(void)vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	/* "%.16s" of a forged header may split a character. */
	kr_utf8_sanitize(res->message);
	ERR_clear_error();
	return -1;
}

/* Copy a bounded JSON string field into dst. */
static int
get_str(const json_t *o, const char *key, int required, char *dst,
    size_t dstlen, const char **raw)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL)
		return required ? -1 : 0;
	if (!json_is_string(v) || json_string_length(v) >= dstlen ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	if (dst != NULL)
		memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	if (raw != NULL)
		*raw = json_string_value(v);
	return 0;
}

/*
 * RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac]Z", strictly (upper-case T and Z,
 * UTC only). Fraction is truncated.
 */
int
kr_parse_rfc3339(const char *s, time_t *out)
{
	struct tm tm;
	size_t i, n = strlen(s);
	int f[6], lens[6] = { 4, 2, 2, 2, 2, 2 };
	const char seps[6] = { '-', '-', 'T', ':', ':', 0 };
	const char *p = s;
	time_t t;

	if (n < 20 || n > 40)
		return -1;
	for (i = 0; i < 6; i++) {
		int k, v = 0;

		for (k = 0; k < lens[i]; k++, p++) {
			if (!isdigit((unsigned char)*p))
				return -1;
			v = v * 10 + (*p - '0');
		}
		f[i] = v;
		if (seps[i] != 0 && *p++ != seps[i])
			return -1;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (p[0] != 'Z' || p[1] != '\0')
		return -1;
	if (f[0] < 1970 || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 ||
	    f[3] > 23 || f[4] > 59 || f[5] > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = f[0] - 1900;
	tm.tm_mon = f[1] - 1;
	tm.tm_mday = f[2];
	tm.tm_hour = f[3];
	tm.tm_min = f[4];
	tm.tm_sec = f[5] == 60 ? 59 : f[5];
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	/* timegm normalises 31 Feb; refuse such dates. */
	if (tm.tm_mday != f[2] || tm.tm_mon != f[1] - 1)
		return -1;
	*out = t;
	return 0;
}

static int
asn1_to_time(const ASN1_TIME *a, time_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (a == NULL || ASN1_TIME_to_tm(a, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

/* The protected header: members allowed / refused. */
static const char *const hdr_forbidden[] = { "crit", "jku", "x5u", "jwk",
	"x5c", NULL };
static const char *const hdr_allowed[] = { "alg", "kid", "typ", "x5t#S256",
	NULL };

static int
in_list(const char *k, const char *const *l)
{
	for (; *l != NULL; l++)
		if (strcmp(k, *l) == 0)
			return 1;
	return 0;
}

/* Decode a base64url JSON string member into a bounded buffer. */
static int
b64url_member(const char *s, uint8_t **out, size_t *outlen)
{
	return kr_jws_b64url_decode(s, strlen(s), out, outlen);
}

/*
 * The curves' groups, built once: OpenSSL 3.0's provider path
 * (EVP_PKEY_fromdata + i2d_PUBKEY through the encoders) costs ~360 us per
 * key, the EC_KEY path ~20 us, and a manifest carries 5 keys per chip.
 */
static EC_GROUP *groups[KR_ARRAY_SIZE(curves)];
static pthread_once_t groups_once = PTHREAD_ONCE_INIT;

static void
groups_init(void)
{
	size_t i;

	for (i = 0; i < KR_ARRAY_SIZE(curves); i++)
		groups[i] = EC_GROUP_new_by_curve_name(curves[i].nid);
}

/*
 * Build an EC public key from JWK x/y (base64url, possibly shorter than the
 * field: left-padded). Returns 0, or fails res with POINT/MALFORMED.
 */
static int
jwk_to_pkey(struct kr_mf_result *res, const char *kid, size_t ci,
    const char *xs, const char *ys, EVP_PKEY **out)
{
	uint8_t *x = NULL, *y = NULL, pt[1 + 2 * 66];
	size_t xl = 0, yl = 0, fl = curves[ci].flen;
	const EC_GROUP *g;
	EC_POINT *P = NULL;
	EC_KEY *ec = NULL;
	EVP_PKEY *pk = NULL;
	int r = -1;

	if (pthread_once(&groups_once, groups_init) != 0 ||
	    (g = groups[ci]) == NULL) {
		fail(res, KR_MF_MALFORMED, "key %s: no EC group", kid);
		goto out;
	}
	if (b64url_member(xs, &x, &xl) != 0 ||
	    b64url_member(ys, &y, &yl) != 0) {
		fail(res, KR_MF_MALFORMED, "key %s: x/y: %s", kid,
		    kr_err_detail());
		goto out;
	}
	if (xl == 0 || yl == 0 || xl > fl || yl > fl) {
		fail(res, KR_MF_MALFORMED, "key %s: x/y of %zu/%zu bytes for "
		    "%s", kid, xl, yl, curves[ci].jose);
		goto out;
	}
	memset(pt, 0, sizeof(pt));
	pt[0] = 0x04;
	memcpy(pt + 1 + (fl - xl), x, xl);
	memcpy(pt + 1 + fl + (fl - yl), y, yl);
	if ((P = EC_POINT_new(g)) == NULL || (ec = EC_KEY_new()) == NULL ||
	    EC_KEY_set_group(ec, g) != 1 || (pk = EVP_PKEY_new()) == NULL) {
		fail(res, KR_MF_MALFORMED, "key %s: out of memory", kid);
		goto out;
	}
	/* oct2point checks the point is on the curve; so do we. */
	if (EC_POINT_oct2point(g, P, pt, 1 + 2 * fl, NULL) != 1 ||
	    EC_POINT_is_on_curve(g, P, NULL) != 1 ||
	    EC_KEY_set_public_key(ec, P) != 1) {
		fail(res, KR_MF_POINT, "key %s: (x, y) is not a point on %s",
		    kid, curves[ci].jose);
		goto out;
	}
	EC_KEY_set_asn1_flag(ec, OPENSSL_EC_NAMED_CURVE);
	EC_KEY_set_conv_form(ec, POINT_CONVERSION_UNCOMPRESSED);
	if (EVP_PKEY_assign_EC_KEY(pk, ec) != 1) {
		fail(res, KR_MF_MALFORMED, "key %s: out of memory", kid);
		goto out;
	}
	ec = NULL;
	*out = pk;
	pk = NULL;
	r = 0;
out:
	free(x);
	free(y);
	EC_POINT_free(P);
	EC_KEY_free(ec);
	EVP_PKEY_free(pk);
	return r;
}

/* x5c: [device cert, (signer cert, ...)] chaining to a device root. */
static int
check_x5c(struct kr_mf_result *res, const struct kr_mf_trust *t,
    const char *kid, const json_t *x5c, EVP_PKEY *jwk, time_t when)
{
	STACK_OF(X509) *chain = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509 *leaf = NULL, *c = NULL;
	uint8_t *der = NULL;
	const unsigned char *p;
	size_t i, derlen;
	int r = -1, i2;

	if (!json_is_array(x5c) || json_array_size(x5c) < 1 ||
	    json_array_size(x5c) > 4) {
		fail(res, KR_MF_MALFORMED, "key %s: x5c is not an array of "
		    "1-4 certificates", kid);
		goto out;
	}
	if ((chain = sk_X509_new_null()) == NULL)
		goto oom;
	for (i = 0; i < json_array_size(x5c); i++) {
		const json_t *s = json_array_get(x5c, i);

		if (!json_is_string(s) || kr_jws_b64_decode(json_string_value(s),
		    json_string_length(s), &der, &derlen) != 0) {
			fail(res, KR_MF_MALFORMED, "key %s: x5c[%zu]: not "
			    "base64", kid, i);
			goto out;
		}
		p = der;
		if ((c = d2i_X509(NULL, &p, (long)derlen)) == NULL ||
		    p != der + derlen) {
			fail(res, KR_MF_X5C, "key %s: x5c[%zu]: not a DER "
			    "certificate", kid, i);
			goto out;
		}
		free(der);
		der = NULL;
		if (i == 0) {
			leaf = c;
		} else if (!sk_X509_push(chain, c)) {
			goto oom;
		}
		c = NULL;
	}
	if (t->device_roots == NULL || sk_X509_num(t->device_roots) == 0) {
		fail(res, KR_MF_X5C, "key %s: x5c present but the policy "
		    "pins no device-PKI root", kid);
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL)
		goto oom;
	for (i2 = 0; i2 < sk_X509_num(t->device_roots); i2++)
		if (X509_STORE_add_cert(store,
		    sk_X509_value(t->device_roots, i2)) != 1)
			goto oom;
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, leaf, chain) != 1)
		goto oom;
	X509_STORE_CTX_set_time(ctx, 0, when);
	if (X509_verify_cert(ctx) != 1) {
		fail(res, KR_MF_X5C, "key %s: x5c chain does not verify to a "
		    "pinned device root at %lld: %s", kid, (long long)when,
		    X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(leaf), jwk) != 1) {
		fail(res, KR_MF_X5C, "key %s: x5c device certificate key "
		    "differs from the JWK", kid);
		goto out;
	}
	r = 0;
	goto out;
oom:
	fail(res, KR_MF_MALFORMED, "key %s: x5c: out of memory", kid);
out:
	free(der);
	X509_free(c);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return r;
}

static int
parse_keys(struct kr_mf_result *res, const struct kr_mf_trust *t,
    const json_t *set)
{
	static const char *const jwk_allowed[] = { "kid", "kty", "crv", "x",
		"y", "x5c", NULL };
	struct kr_device *d = &res->dev;
	const json_t *keys, *k, *v;
	const char *kid, *kty, *crv, *x, *y, *name;
	unsigned mask = t->curves != 0 ? t->curves : KR_CURVE_P256;
	EVP_PKEY *pk = NULL;
	unsigned char *spki = NULL;
	size_t i, j, ci;
	int len, r = -1;

	if (!json_is_object(set) || json_object_size(set) != 1 ||
	    !json_is_array(keys = json_object_get(set, "keys")) ||
	    json_array_size(keys) == 0)
		return fail(res, KR_MF_MALFORMED, "publicKeySet is not "
		    "{\"keys\": [...]}");
	if (json_array_size(keys) > KR_MF_MAX_KEYS)
		return fail(res, KR_MF_MALFORMED, "publicKeySet has %zu keys "
		    "(limit %d)", json_array_size(keys), KR_MF_MAX_KEYS);
	for (i = 0; i < json_array_size(keys); i++) {
		struct kr_mf_key *mk = &d->keys[i];

		k = json_array_get(keys, i);
		if (!json_is_object(k))
			return fail(res, KR_MF_MALFORMED, "keys[%zu] is not "
			    "an object", i);
		json_object_foreach((json_t *)k, name, v) {
			if (!in_list(name, jwk_allowed))
				return fail(res, KR_MF_MALFORMED, "keys[%zu]: "
				    "unknown JWK member '%.32s'", i, name);
		}
		if (get_str(k, "kid", 1, mk->kid, sizeof(mk->kid), &kid) != 0 ||
		    kid[0] == '\0')
			return fail(res, KR_MF_MALFORMED, "keys[%zu]: kid "
			    "missing or not a short string", i);
		for (j = 0; j < i; j++)
			if (strcmp(d->keys[j].kid, kid) == 0)
				return fail(res, KR_MF_MALFORMED, "key %s "
				    "listed twice", kid);
		if (get_str(k, "kty", 1, NULL, 16, &kty) != 0)
			return fail(res, KR_MF_MALFORMED, "key %s: kty "
			    "missing", kid);
		if (strcmp(kty, "EC") != 0)
			return fail(res, KR_MF_CURVE, "key %s: kty '%.16s' "
			    "not allowed (EC only)", kid, kty);
		if (get_str(k, "crv", 1, NULL, 16, &crv) != 0)
			return fail(res, KR_MF_MALFORMED, "key %s: crv "
			    "missing", kid);
		for (ci = 0; ci < KR_ARRAY_SIZE(curves); ci++)
			if (strcmp(curves[ci].jose, crv) == 0)
				break;
		if (ci == KR_ARRAY_SIZE(curves) || !(curves[ci].bit & mask))
			return fail(res, KR_MF_CURVE, "key %s: curve "
			    "'%.16s' not allowed by policy", kid, crv);
		if (get_str(k, "x", 1, NULL, 128, &x) != 0 ||
		    get_str(k, "y", 1, NULL, 128, &y) != 0)
			return fail(res, KR_MF_MALFORMED, "key %s: x/y "
			    "missing", kid);
		if (jwk_to_pkey(res, kid, ci, x, y, &pk) != 0)
			goto out;
		mk->curve = curves[ci].bit;
		if ((v = json_object_get(k, "x5c")) != NULL) {
			if (check_x5c(res, t, kid, v, pk,
			    d->provisioned) != 0)
				goto out;
			mk->x5c_verified = 1;
		}
		if ((len = i2d_PUBKEY(pk, &spki)) <= 0 ||
		    (size_t)len > sizeof(mk->spki)) {
			fail(res, KR_MF_MALFORMED, "key %s: SPKI encoding",
			    kid);
			goto out;
		}
		memcpy(mk->spki, spki, (size_t)len);
		mk->spki_len = (size_t)len;
		OPENSSL_free(spki);
		spki = NULL;
		EVP_PKEY_free(pk);
		pk = NULL;
		d->nkeys = i + 1;
	}
	r = 0;
out:
	EVP_PKEY_free(pk);
	OPENSSL_free(spki);
	return r;
}

static int
check_uniqueid(struct kr_mf_result *res, const char *id, const char *model)
{
	size_t n = strlen(id), i, want = 0;

	for (i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f')))
			return fail(res, KR_MF_BAD_UNIQUEID, "uniqueId "
			    "'%.40s' is not lower-case hex", id);
	if (strncmp(model, "ATECC", 5) == 0)
		want = 18;
	else if (strncmp(model, "TA1", 3) == 0)
		want = 16;
	if (want != 0 && n != want)
		return fail(res, KR_MF_BAD_UNIQUEID, "uniqueId '%.40s' has "
		    "%zu hex digits, %s needs %zu", id, n, model, want);
	if (n < 8 || n % 2 != 0)
		return fail(res, KR_MF_BAD_UNIQUEID, "uniqueId '%.40s' has "
		    "%zu hex digits", id, n);
	return 0;
}

/* Content fingerprint (see manifest.h). */
static void
fingerprint(struct kr_device *d)
{
	SHA256_CTX c;
	size_t i;
	uint8_t l[4];

#define FP(p, n) do { size_t n_ = (n); l[0] = (uint8_t)(n_ >> 24); \
	l[1] = (uint8_t)(n_ >> 16); l[2] = (uint8_t)(n_ >> 8); \
	l[3] = (uint8_t)n_; SHA256_Update(&c, l, 4); \
	SHA256_Update(&c, (p), n_); } while (0)
	SHA256_Init(&c);
	FP(d->unique_id, strlen(d->unique_id));
	FP(d->model, strlen(d->model));
	FP(d->part_number, strlen(d->part_number));
	for (i = 0; i < d->nkeys; i++) {
		FP(d->keys[i].kid, strlen(d->keys[i].kid));
		FP(d->keys[i].spki, d->keys[i].spki_len);
	}
	SHA256_Final(d->content, &c);
#undef FP
}

static const struct kr_mf_signer *
find_signer(const struct kr_mf_trust *t, const uint8_t *x5t)
{
	size_t i;

	for (i = 0; i < t->nsigners; i++)
		if (memcmp(t->signers[i].sha256, x5t, 32) == 0)
			return &t->signers[i];
	return NULL;
}

/* Verify one JWS object. 0 = accepted (res->dev filled), -1 = refused. */
static int
verify_entry(const struct kr_mf_trust *t, const json_t *e,
    struct kr_mf_result *res)
{
	struct kr_device *d = &res->dev;
	const char *prot, *payload, *sig, *hid, *name, *s;
	json_t *ph = NULL, *pl = NULL, *v;
	const json_t *hdr;
	const struct kr_mf_signer *sg;
	const ASN1_OCTET_STRING *ski;
	uint8_t *buf = NULL;
	char *input = NULL;
	size_t blen = 0, plen, slen;
	time_t nb, na;
	json_error_t jerr;
	long long ver;
	int r = -1;

	if (!json_is_object(e) || json_object_size(e) != 4 ||
	    get_str(e, "protected", 1, NULL, KR_MF_MAX_ENTRY_BYTES, &prot) ||
	    get_str(e, "payload", 1, NULL, KR_MF_MAX_ENTRY_BYTES, &payload) ||
	    get_str(e, "signature", 1, NULL, 256, &sig) ||
	    !json_is_object(hdr = json_object_get(e, "header")))
		return fail(res, KR_MF_MALFORMED, "not a JWS object with "
		    "exactly payload, protected, header and signature");
	if (json_object_size(hdr) != 1 || get_str(hdr, "uniqueId", 1,
	    res->id, sizeof(res->id), &hid) != 0)
		return fail(res, KR_MF_MALFORMED, "unprotected header is not "
		    "{\"uniqueId\": \"...\"}");

	/* Protected header. */
	if (b64url_member(prot, &buf, &blen) != 0) {
		fail(res, KR_MF_MALFORMED, "protected: %s", kr_err_detail());
		goto out;
	}
	if ((ph = json_loadb((const char *)buf, blen, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL || !json_is_object(ph)) {
		fail(res, KR_MF_MALFORMED, "protected header is not a JSON "
		    "object");
		goto out;
	}
	free(buf);
	buf = NULL;
	json_object_foreach(ph, name, v) {
		if (in_list(name, hdr_forbidden)) {
			fail(res, KR_MF_FORBIDDEN_HEADER, "protected header "
			    "member '%s' is refused", name);
			goto out;
		}
		if (!in_list(name, hdr_allowed)) {
			fail(res, KR_MF_FORBIDDEN_HEADER, "unknown protected "
			    "header member '%.32s'", name);
			goto out;
		}
		if (!json_is_string(v)) {
			fail(res, KR_MF_MALFORMED, "protected header member "
			    "'%s' is not a string", name);
			goto out;
		}
	}
	if (get_str(ph, "alg", 1, NULL, 32, &s) != 0) {
		fail(res, KR_MF_MALFORMED, "protected header has no alg");
		goto out;
	}
	if (strcmp(s, "ES256") != 0) {
		fail(res, KR_MF_ALG, "alg '%.16s' is not ES256", s);
		goto out;
	}
	if (get_str(ph, "typ", 0, NULL, 32, &s) != 0 ||
	    (json_object_get(ph, "typ") != NULL && strcmp(s, "JWT") != 0)) {
		fail(res, KR_MF_MALFORMED, "typ is not \"JWT\"");
		goto out;
	}
	if (get_str(ph, "x5t#S256", 1, NULL, 128, &s) != 0 ||
	    b64url_member(s, &buf, &blen) != 0 || blen != 32) {
		fail(res, KR_MF_MALFORMED, "x5t#S256 missing or not a "
		    "base64url SHA-256");
		goto out;
	}
	if ((sg = find_signer(t, buf)) == NULL) {
		fail(res, KR_MF_UNKNOWN_SIGNER, "signer x5t#S256 %.64s is "
		    "not pinned", s);
		goto out;
	}
	free(buf);
	buf = NULL;
	if (get_str(ph, "kid", 1, NULL, 128, &s) != 0 ||
	    b64url_member(s, &buf, &blen) != 0) {
		fail(res, KR_MF_MALFORMED, "kid missing or not base64url");
		goto out;
	}
	ski = X509_get0_subject_key_id(sg->cert);
	if (ski == NULL || (size_t)ASN1_STRING_length(ski) != blen ||
	    memcmp(ASN1_STRING_get0_data(ski), buf, blen) != 0) {
		fail(res, KR_MF_KID_MISMATCH, "kid %.64s is not the subject "
		    "key identifier of the signer", s);
		goto out;
	}
	free(buf);
	buf = NULL;

	/* Signature over the ASCII "protected.payload" as in the file. */
	if (b64url_member(sig, &buf, &blen) != 0 || blen != 64) {
		fail(res, KR_MF_MALFORMED, "signature is not 64 bytes of "
		    "base64url");
		goto out;
	}
	plen = strlen(prot);
	slen = plen + 1 + strlen(payload);
	if ((input = malloc(slen + 1)) == NULL) {
		fail(res, KR_MF_MALFORMED, "out of memory");
		goto out;
	}
	memcpy(input, prot, plen);
	input[plen] = '.';
	memcpy(input + plen + 1, payload, strlen(payload) + 1);
	if (kr_jws_es256_verify(X509_get0_pubkey(sg->cert), input, slen, buf,
	    blen) != 0) {
		fail(res, KR_MF_BAD_SIGNATURE, "ES256 signature does not "
		    "verify under the pinned signer");
		goto out;
	}
	memcpy(d->signer, sg->sha256, 32);
	free(buf);
	buf = NULL;

	/* Only now: the payload. */
	if (b64url_member(payload, &buf, &blen) != 0 ||
	    (pl = json_loadb((const char *)buf, blen, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL || !json_is_object(pl)) {
		fail(res, KR_MF_MALFORMED, "payload is not base64url JSON "
		    "object");
		goto out;
	}
	if (!json_is_integer(v = json_object_get(pl, "version")) ||
	    (ver = json_integer_value(v)) < 1 || ver > 1000) {
		fail(res, KR_MF_MALFORMED, "payload version missing or "
		    "invalid");
		goto out;
	}
	d->version = (int)ver;
	if (get_str(pl, "model", 1, d->model, sizeof(d->model), NULL) ||
	    get_str(pl, "partNumber", 1, d->part_number,
	    sizeof(d->part_number), NULL) ||
	    get_str(pl, "groupId", 0, d->group_id, sizeof(d->group_id),
	    NULL) ||
	    d->model[0] == '\0' || d->part_number[0] == '\0') {
		fail(res, KR_MF_MALFORMED, "payload model/partNumber/groupId "
		    "missing or not short strings");
		goto out;
	}
	if (!json_is_object(json_object_get(pl, "manufacturer")) ||
	    !json_is_object(json_object_get(pl, "provisioner")) ||
	    !json_is_object(json_object_get(pl, "distributor"))) {
		fail(res, KR_MF_MALFORMED, "payload manufacturer/provisioner/"
		    "distributor missing");
		goto out;
	}
	if (get_str(pl, "uniqueId", 1, d->unique_id, sizeof(d->unique_id),
	    &s) != 0) {
		fail(res, KR_MF_MALFORMED, "payload uniqueId missing");
		goto out;
	}
	if (strcmp(s, hid) != 0) {
		fail(res, KR_MF_ID_MISMATCH, "header uniqueId %.40s differs "
		    "from signed payload uniqueId %.40s", hid, s);
		goto out;
	}
	memcpy(res->id, d->unique_id, sizeof(res->id));
	if (check_uniqueid(res, d->unique_id, d->model) != 0)
		goto out;
	if (get_str(pl, "provisioningTimestamp", 1, NULL, 64, &s) != 0 ||
	    kr_parse_rfc3339(s, &d->provisioned) != 0) {
		fail(res, KR_MF_MALFORMED, "provisioningTimestamp missing or "
		    "not RFC 3339 UTC");
		goto out;
	}
	if (!sg->ignore_validity) {
		if (asn1_to_time(X509_get0_notBefore(sg->cert), &nb) != 0 ||
		    asn1_to_time(X509_get0_notAfter(sg->cert), &na) != 0) {
			fail(res, KR_MF_TIME, "signer validity unreadable");
			goto out;
		}
		if ((long long)d->provisioned < (long long)nb - t->backdate ||
		    d->provisioned > na) {
			fail(res, KR_MF_TIME, "provisioningTimestamp %.40s is "
			    "outside the signer's validity (less %lld days "
			    "backdating)", s, t->backdate / 86400);
			goto out;
		}
	}
	if ((v = json_object_get(pl, "publicKeySet")) != NULL &&
	    parse_keys(res, t, v) != 0)
		goto out;
	fingerprint(d);
	r = 0;
out:
	free(buf);
	free(input);
	json_decref(ph);
	json_decref(pl);
	if (r != 0)
		d->nkeys = 0;
	return r;
}

static int
cmp_idx(const void *a, const void *b, void *arg)
{
	const struct kr_mf_result *r = arg;
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
	int c = strcmp(r[ia].dev.unique_id, r[ib].dev.unique_id);

	if (c != 0)
		return c;
	return ia < ib ? -1 : ia > ib;
}

/* Same uniqueId twice: the same content is a repeat, other content the
 * later entries' refusal. */
static int
mark_duplicates(struct kr_manifest *m)
{
	size_t *idx, n = 0, i, first = 0;

	if ((idx = calloc(m->n_ok + 1, sizeof(*idx))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "manifest index");
	for (i = 0; i < m->n; i++)
		if (m->r[i].reason == KR_MF_OK)
			idx[n++] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_idx, m->r);
	for (i = 1; i < n; i++) {
		struct kr_mf_result *a, *b = &m->r[idx[i]];

		if (strcmp(m->r[idx[first]].dev.unique_id,
		    b->dev.unique_id) != 0) {
			first = i;
			continue;
		}
		a = &m->r[idx[first]];
		if (memcmp(a->dev.content, b->dev.content, 32) == 0) {
			b->duplicate_same = 1;
			continue;
		}
		(void)fail(b, KR_MF_DUPLICATE, "uniqueId %s is listed again "
		    "with different content (entry %zu)", b->dev.unique_id,
		    idx[first]);
		b->dev.nkeys = 0;
		m->n_ok--;
	}
	free(idx);
	return 0;
}

static size_t
skip_ws(const uint8_t *b, size_t len, size_t pos)
{
	while (pos < len && (b[pos] == ' ' || b[pos] == '\t' ||
	    b[pos] == '\n' || b[pos] == '\r'))
		pos++;
	return pos;
}

int
kr_manifest_each(const struct kr_mf_trust *t, const char *name,
    const uint8_t *buf, size_t len, uint8_t sha256[32],
    int (*cb)(struct kr_mf_result *res, size_t index, void *arg), void *arg,
    size_t *count)
{
	struct kr_mf_result *res = NULL;
	json_t *e = NULL;
	json_error_t jerr;
	size_t pos, n = 0;
	int r;

	if (count != NULL)
		*count = 0;
	if (len > KR_MF_MAX_BYTES)
		return kr_errf(KR_ERR_TOO_LARGE, "%s: %zu bytes (limit %d)",
		    name, len, KR_MF_MAX_BYTES);
	kr_sha256(buf, len, sha256);
	if ((res = malloc(sizeof(*res))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "%s", name);
	/*
	 * The array one element at a time (jansson stops after each value
	 * with JSON_DISABLE_EOF_CHECK), so memory stays one entry deep
	 * whatever the file size. Only '[', ',', ']' and white space are
	 * looked at here.
	 */
	pos = skip_ws(buf, len, 0);
	if (pos >= len || buf[pos] != '[') {
		r = kr_errf(KR_ERR_FORMAT, "%s: not a JSON array", name);
		goto out;
	}
	pos = skip_ws(buf, len, pos + 1);
	if (pos < len && buf[pos] == ']')
		goto end;
	for (;;) {
		if (n >= KR_MF_MAX_ENTRIES) {
			r = kr_errf(KR_ERR_TOO_LARGE, "%s: more than %d "
			    "entries", name, KR_MF_MAX_ENTRIES);
			goto out;
		}
		if ((e = json_loadb((const char *)buf + pos, len - pos,
		    JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY |
		    JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
			r = kr_errf(KR_ERR_FORMAT, "%s: entry %zu (byte %zu): "
			    "%s", name, n, pos + (size_t)jerr.position,
			    jerr.text);
			goto out;
		}
		if (jerr.position <= 0) {
			r = kr_errf(KR_ERR_FORMAT, "%s: entry %zu: empty",
			    name, n);
			goto out;
		}
		pos += (size_t)jerr.position;
		memset(res, 0, sizeof(*res));
		if (verify_entry(t, e, res) == 0) {
			res->reason = KR_MF_OK;
			memcpy(res->dev.manifest, sha256, 32);
			(void)snprintf(res->message, sizeof(res->message),
			    "verified");
		} else if (res->reason == KR_MF_OK) {
			/* Fail closed: a refusal always carries a reason. */
			res->reason = KR_MF_MALFORMED;
			res->dev.nkeys = 0;
		}
		json_decref(e);
		e = NULL;
		ERR_clear_error();
		if ((r = cb(res, n, arg)) != 0)
			goto out;
		n++;
		pos = skip_ws(buf, len, pos);
		if (pos < len && buf[pos] == ',') {
			pos = skip_ws(buf, len, pos + 1);
			continue;
		}
		if (pos < len && buf[pos] == ']')
			break;
		r = kr_errf(KR_ERR_FORMAT, "%s: byte %zu: ',' or ']' "
		    "expected after entry %zu", name, pos, n - 1);
		goto out;
	}
end:
	pos = skip_ws(buf, len, pos + 1);
	if (pos != len) {
		r = kr_errf(KR_ERR_FORMAT, "%s: byte %zu: data after the "
		    "array", name, pos);
		goto out;
	}
	if (count != NULL)
		*count = n;
	r = 0;
out:
	json_decref(e);
	free(res);
	return r;
}

/* kr_manifest_parse: collect every result. */
static int
collect(struct kr_mf_result *res, size_t index, void *arg)
{
	struct kr_manifest *m = arg;
	struct kr_mf_result *nr;
	size_t cap;

	if (index >= m->cap) {
		cap = m->cap == 0 ? 16 : m->cap * 2;
		if ((nr = reallocarray(m->r, cap, sizeof(*nr))) == NULL)
			return kr_errf(KR_ERR_ALLOC, "manifest results");
		m->r = nr;
		m->cap = cap;
	}
	m->r[index] = *res;
	m->n = index + 1;
	if (res->reason == KR_MF_OK)
		m->n_ok++;
	return 0;
}

int
kr_manifest_parse(const struct kr_mf_trust *t, const char *name,
    const uint8_t *buf, size_t len, struct kr_manifest **out)
{
	struct kr_manifest *m = NULL;
	int r;

	*out = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "%s", name);
	if ((r = kr_manifest_each(t, name, buf, len, m->sha256, collect, m,
	    NULL)) != 0 || (r = mark_duplicates(m)) != 0)
		goto out;
	*out = m;
	m = NULL;
	r = 0;
out:
	kr_manifest_free(m);
	return r;
}

int
kr_manifest_load(const struct kr_mf_trust *t, const char *path,
    struct kr_manifest **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = kr_read_file(path, KR_MF_MAX_BYTES, &buf, &len)) != 0)
		return kr_errctx(r, "%s", path);
	r = kr_manifest_parse(t, path, buf, len, out);
	free(buf);
	return r;
}

void
kr_manifest_free(struct kr_manifest *m)
{
	if (m == NULL)
		return;
	free(m->r);
	free(m);
}
