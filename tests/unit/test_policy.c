/*
 * test_policy.c - policy.yaml loading (one line per refusal, with the
 * exact message) and the pure decision (one line per case, with the
 * expected decision), as BearSSL's alltests.txt does for X.509.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/util.h"
#include "policy/policy.h"

static char dir[] = "/tmp/kr-test-policy.XXXXXX";

/* A self-signed P-256 certificate with SKI, valid from `from` for days. */
static void
make_cert(const char *name, int ca, long from, long days)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *c = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	char path[256];
	FILE *f;

	assert_non_null(k);
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN",
	    MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(c));
	X509_gmtime_adj(X509_getm_notBefore(c), from);
	X509_gmtime_adj(X509_getm_notAfter(c), from + days * 86400);
	X509_set_pubkey(c, k);
	X509V3_set_ctx(&ctx, c, c, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier,
	    "hash");
	X509_add_ext(c, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	X509_add_ext(c, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(c, k, EVP_sha256()) > 0);
	(void)snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	assert_non_null(f = fopen(path, "w"));
	PEM_write_X509(f, c);
	fclose(f);
	X509_free(c);
	EVP_PKEY_free(k);
}

static int
setup(void **st)
{
	FILE *f;
	char path[256];

	assert_non_null(mkdtemp(dir));
	make_cert("signer", 0, -86400, 3650);
	make_cert("signer2", 0, -86400 * 800, 365);	/* expired */
	make_cert("root", 1, -86400, 3650);
	(void)snprintf(path, sizeof(path), "%s/garbage.pem", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	    f);
	fclose(f);
	return 0;
}

static int
teardown(void **st)
{
	char cmd[300];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ loading */

/* The policy as top-level sections; a case replaces or drops one. */
static const char *const base_keys[] = { "version", "signers",
	"device_roots", "curves", "lite_entries", "parts", "profiles",
	"subject", "manufacturers", "renewal", NULL };
static const char *const base_vals[] = {
	"version: 1\n",
	"signers:\n  - file: signer.pem\n  - file: signer2.pem\n",
	"device_roots:\n  - file: root.pem\n",
	"curves: [P-256, P-384]\n",
	"lite_entries: refuse\n",
	"parts:\n"
	"  - part_number: ATECC608C-TNGTLSU-B\n"
	"  - part_number: ATECC608A-MAH4I\n    model: ATECC608A\n"
	"  - part_number: TA100-TNGTLS\n    identity_kid: \"8100\"\n"
	"  - part_number: ATECC608B-NOCM\n    identity_kid: 2\n",
	"profiles: [device, device-long]\n",
	"subject: \"CN=sn${UNIQUEID}, O=Example OEM\"\n",
	"manufacturers:\n"
	"  - id: cm1\n    name: Assembly One\n    quota: 5\n"
	"    parts: [ATECC608C-TNGTLSU-B, ATECC608A-MAH4I, TA100-TNGTLS]\n"
	"  - id: cm2\n    quota: 100\n    parts: [ATECC608C-TNGTLSU-B]\n"
	"    profiles: [device-long]\n",
	"renewal:\n  allowed: true\n  proof: [current-cert]\n",
};

/* The base policy with up to two sections replaced (val NULL: dropped);
 * key "+" appends val. */
static char *
build2(const char *k1, const char *v1, const char *k2, const char *v2)
{
	static char buf[8192];
	size_t i, o = 0;

	for (i = 0; base_keys[i] != NULL; i++) {
		const char *v = base_vals[i];

		if (k1 != NULL && strcmp(k1, base_keys[i]) == 0)
			v = v1;
		if (k2 != NULL && strcmp(k2, base_keys[i]) == 0)
			v = v2;
		if (v == NULL)
			continue;
		assert_true(o + strlen(v) < sizeof(buf));
		memcpy(buf + o, v, strlen(v));
		o += strlen(v);
	}
	if (k1 != NULL && strcmp(k1, "+") == 0) {
		memcpy(buf + o, v1, strlen(v1));
		o += strlen(v1);
	}
	buf[o] = '\0';
	return buf;
}

static char *
build(const char *key, const char *val)
{
	return build2(key, val, NULL, NULL);
}

static struct kr_policy *
load(const char *key, const char *val, int *rc)
{
	struct kr_policy *p = NULL;
	char *b = build(key, val);

	*rc = kr_policy_parse("p.yaml", b, strlen(b), dir, &p);
	return p;
}

static void
test_load_ok(void **st)
{
	struct kr_policy *p;
	json_t *lint = NULL;
	struct kr_device d;
	char subj[256], *w;
	int rc;

	p = load(NULL, NULL, &rc);
	if (rc != 0)
		fprintf(stderr, "%s\n", kr_err_detail());
	assert_int_equal(rc, 0);
	assert_int_equal(kr_policy_trust(p)->nsigners, 2);
	assert_int_equal(kr_policy_trust(p)->curves,
	    KR_CURVE_P256 | KR_CURVE_P384);
	assert_string_equal(kr_policy_identity_kid(p, "ATECC608C-TNGTLSU-B"),
	    "0");
	assert_string_equal(kr_policy_identity_kid(p, "TA100-TNGTLS"), "8100");
	assert_string_equal(kr_policy_identity_kid(p, "ATECC608B-NOCM"), "2");
	assert_string_equal(kr_policy_profile(p, "cm1", NULL), "device");
	assert_string_equal(kr_policy_profile(p, "cm1", "device-long"),
	    "device-long");
	assert_null(kr_policy_profile(p, "cm2", "device"));
	assert_null(kr_policy_profile(p, "cm9", NULL));
	assert_int_equal(kr_policy_quota(p, "cm1"), 5);
	assert_int_equal(kr_policy_quota(p, "cm9"), -1);
	memset(&d, 0, sizeof(d));
	strcpy(d.unique_id, "0123f2408ea1fcf201");
	strcpy(d.part_number, "ATECC608C-TNGTLSU-B");
	assert_int_equal(kr_policy_subject(p, &d, subj, sizeof(subj)), 0);
	assert_string_equal(subj, "CN=sn0123F2408EA1FCF201, O=Example OEM");
	assert_int_equal(kr_policy_subject(p, &d, subj, 20), KR_ERR_TOO_LARGE);
	assert_int_equal(kr_policy_lint(p, &lint), 0);
	assert_int_equal(json_array_size(json_object_get(lint, "signers")), 2);
	assert_true(json_is_true(json_object_get(json_array_get(
	    json_object_get(lint, "signers"), 1), "expired")));
	/* ATECC608B-NOCM: allowed but nobody may build it */
	w = json_dumps(json_object_get(lint, "warnings"), 0);
	assert_non_null(w);
	assert_non_null(strstr(w, "ATECC608B-NOCM"));
	free(w);
	json_decref(lint);
	kr_policy_free(p);
}

/* SHA-256 of a file in dir. */
static void
file_sha(const char *name, uint8_t out[32])
{
	char path[256];
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(kr_read_file(path, 1 << 20, &buf, &len), 0);
	kr_sha256(buf, len, out);
	free(buf);
}

/*
 * The digest is what policy.h says, recomputed here from the bytes: an
 * auditor can do the same with sha256sum. Other YAML bytes or another
 * certificate under the same file name change it; the same files give
 * the same digest.
 */
static void
test_digest(void **st)
{
	static const char *const files[] = { "signer.pem", "signer2.pem",
	    "root.pem" };
	struct kr_policy *p = NULL;
	uint8_t d1[32], d2[32], want[32], h[32];
	char hex[65], *b;
	json_t *lint = NULL;
	EVP_MD_CTX *ctx;
	size_t i;
	int rc;

	b = build(NULL, NULL);
	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	EVP_DigestUpdate(ctx, "keyroom-policy-digest-v1\n", 25);
	kr_sha256(b, strlen(b), h);
	EVP_DigestUpdate(ctx, h, 32);
	for (i = 0; i < 3; i++) {
		EVP_DigestUpdate(ctx, files[i], strlen(files[i]) + 1);
		file_sha(files[i], h);
		EVP_DigestUpdate(ctx, h, 32);
	}
	assert_int_equal(EVP_DigestFinal_ex(ctx, want, NULL), 1);
	EVP_MD_CTX_free(ctx);

	p = load(NULL, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kr_policy_digest(p, d1), 0);
	assert_memory_equal(d1, want, 32);
	assert_int_equal(kr_policy_lint(p, &lint), 0);
	kr_hex(d1, 32, hex);
	assert_string_equal(json_string_value(json_object_get(lint, "digest")),
	    hex);
	json_decref(lint);
	kr_policy_free(p);

	p = load(NULL, NULL, &rc);	/* the same files again */
	assert_int_equal(rc, 0);
	assert_int_equal(kr_policy_digest(p, d2), 0);
	assert_memory_equal(d1, d2, 32);
	kr_policy_free(p);

	p = load("+", "# one comment more\n", &rc);	/* other YAML bytes */
	assert_int_equal(rc, 0);
	assert_int_equal(kr_policy_digest(p, d2), 0);
	assert_memory_not_equal(d1, d2, 32);
	kr_policy_free(p);

	make_cert("signer2", 0, -86400 * 800, 365);	/* same name, new key */
	p = load(NULL, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(kr_policy_digest(p, d2), 0);
	assert_memory_not_equal(d1, d2, 32);
	kr_policy_free(p);
}

/* One line per refusal: section replaced, expected message fragment. */
static void
test_load_refusals(void **st)
{
	static const struct {
		const char *key, *val;
		int rc;
		const char *msg;
	} v[] = {
		{ "+", "signer: x\n", KR_ERR_CONFIG, "unknown key 'signer'" },
		{ "version", "version: 2\n", KR_ERR_CONFIG, "version" },
		{ "version", NULL, KR_ERR_CONFIG, "version" },
		{ "signers", NULL, KR_ERR_CONFIG, "signers" },
		{ "signers", "signers: []\n", KR_ERR_CONFIG,
		    "non-empty list of pinned manifest signers" },
		{ "signers", "signers:\n  - file: nope.pem\n", KR_ERR_SYSTEM,
		    "nope.pem" },
		{ "signers", "signers:\n  - file: garbage.pem\n",
		    KR_ERR_CONFIG, "not a PEM certificate" },
		{ "signers", "signers:\n  - fle: signer.pem\n", KR_ERR_CONFIG,
		    "signers[0]: unknown key 'fle'" },
		{ "signers", "signers:\n  - file: signer.pem\n    pem: x\n",
		    KR_ERR_CONFIG, "exactly one of 'file' or 'pem'" },
		{ "signers", "signers:\n  - file: signer.pem\n"
		    "  - file: signer.pem\n", KR_ERR_CONFIG, "pinned twice" },
		{ "signers", "signers:\n  - file: signer.pem\n"
		    "    check_validity: maybe\n", KR_ERR_CONFIG,
		    "check_validity" },
		{ "device_roots", "device_roots:\n  - file: signer.pem\n",
		    KR_ERR_CONFIG, "not a self-signed CA certificate" },
		{ "curves", "curves: [P-256, X25519]\n", KR_ERR_CONFIG,
		    "unknown curve 'X25519'" },
		{ "curves", "curves: []\n", KR_ERR_CONFIG, "curves" },
		{ "lite_entries", "lite_entries: maybe\n", KR_ERR_CONFIG,
		    "lite_entries: 'refuse' or 'allow'" },
		{ "parts", "parts:\n  - part_number: A\n  - part_number: A\n",
		    KR_ERR_CONFIG, "part 'A' listed twice" },
		{ "parts", "parts:\n  - model: X\n", KR_ERR_CONFIG,
		    "part_number" },
		{ "parts", "parts:\n  - part_number: A\n    identity_kid: \"\"\n",
		    KR_ERR_CONFIG, "identity_kid" },
		{ "profiles", "profiles: []\n", KR_ERR_CONFIG, "profiles" },
		{ "subject", "subject: \"O=Example\"\n", KR_ERR_CONFIG,
		    "no CN=" },
		{ "subject", "subject: \"CN=${SERIAL}\"\n", KR_ERR_CONFIG,
		    "unknown variable at '${SERIAL}'" },
		{ "manufacturers", "manufacturers:\n  - id: cm1\n    quota: 1\n"
		    "    parts: [NOT-A-PART]\n", KR_ERR_CONFIG,
		    "'NOT-A-PART' is not one of the policy's parts" },
		{ "manufacturers", "manufacturers:\n  - id: cm1\n    quota: 1\n"
		    "    parts: [ATECC608C-TNGTLSU-B]\n    profiles: [web]\n",
		    KR_ERR_CONFIG, "'web' is not one of the policy's profiles" },
		{ "manufacturers", "manufacturers:\n  - id: cm1\n    quota: -1\n"
		    "    parts: [ATECC608C-TNGTLSU-B]\n", KR_ERR_CONFIG,
		    "quota" },
		{ "manufacturers", "manufacturers:\n  - id: cm1\n    qouta: 1\n"
		    "    parts: [ATECC608C-TNGTLSU-B]\n", KR_ERR_CONFIG,
		    "unknown key 'qouta'" },
		{ "manufacturers", "manufacturers:\n  - id: \"c m\"\n"
		    "    quota: 1\n    parts: [ATECC608C-TNGTLSU-B]\n",
		    KR_ERR_CONFIG, "id 'c m' must be" },
		{ "manufacturers", "manufacturers:\n  - id: a\n    quota: 1\n"
		    "    parts: [ATECC608C-TNGTLSU-B]\n  - id: a\n    quota: 1\n"
		    "    parts: [ATECC608C-TNGTLSU-B]\n", KR_ERR_CONFIG,
		    "id 'a' listed twice" },
		{ "renewal", "renewal:\n  allowed: true\n  proof: [trust-me]\n",
		    KR_ERR_CONFIG, "not current-cert or manifest-key" },
		{ "renewal", "renewal:\n  proof: [current-cert]\n",
		    KR_ERR_CONFIG, "allowed" },
		{ "+", "version: 1\n", KR_ERR_CONFIG, "duplicate key" },
		{ "+", "manifest_backdate_days: 5000\n", KR_ERR_CONFIG,
		    "manifest_backdate_days" },
	};
	struct kr_policy *p;
	size_t i;
	int rc;

	for (i = 0; i < KR_ARRAY_SIZE(v); i++) {
		p = load(v[i].key, v[i].val, &rc);
		if (rc != v[i].rc || strstr(kr_err_detail(), v[i].msg) == NULL)
			fprintf(stderr, "case %zu: rc %d, '%s'\n", i, rc,
			    kr_err_detail());
		assert_null(p);
		assert_int_equal(rc, v[i].rc);
		assert_non_null(strstr(kr_err_detail(), v[i].msg));
	}
	/* YAML syntax errors carry line:column */
	p = load("+", "curves: [P-256\n", &rc);
	assert_null(p);
	assert_int_equal(rc, KR_ERR_CONFIG);
	assert_non_null(strstr(kr_err_detail(), "p.yaml:"));
}

/* Errors found after parsing still carry the line of the offending node. */
static void
test_load_lines(void **st)
{
	static const struct {
		const char *key, *val, *needle, *path;
	} v[] = {
		{ "manufacturers", "manufacturers:\n  - id: cm1\n    quota: 1\n"
		    "    parts: [ATECC608C-TNGTLSU-B]\n    qouta: 2\n", "qouta",
		    "manufacturers[0]: unknown key 'qouta'" },
		{ "manufacturers", "manufacturers:\n  - id: cm1\n    quota: 1\n"
		    "    parts:\n      - ATECC608C-TNGTLSU-B\n      - NOPE\n",
		    "NOPE", "manufacturers[0].parts[1]: 'NOPE'" },
		{ "signers", "signers:\n  - file: signer.pem\n"
		    "  - file: garbage.pem\n", "garbage", "signers[1]" },
		{ "+", "colour: blue\n", "colour", "unknown key 'colour'" },
		{ "curves", "curves:\n  - P-256\n  - P-999\n", "P-999",
		    "curves[1]: unknown curve" },
	};
	struct kr_policy *p;
	char want[128], *b;
	size_t i, line;
	int rc;

	for (i = 0; i < KR_ARRAY_SIZE(v); i++) {
		const char *q;

		b = build(v[i].key, v[i].val);
		for (line = 1, q = b; q < strstr(b, v[i].needle); q++)
			line += *q == '\n';
		p = load(v[i].key, v[i].val, &rc);
		assert_null(p);
		assert_int_equal(rc, KR_ERR_CONFIG);
		(void)snprintf(want, sizeof(want), "p.yaml:%zu: %s", line,
		    v[i].path);
		if (strncmp(kr_err_detail(), want, strlen(want)) != 0)
			fprintf(stderr, "want '%s', got '%s'\n", want,
			    kr_err_detail());
		assert_int_equal(strncmp(kr_err_detail(), want, strlen(want)),
		    0);
	}
}

/* ----------------------------------------------------------- decision */

static EVP_PKEY *kA, *kB, *kT, *k384, *kEd;

static void
dev(struct kr_device *d, const char *id, const char *model,
    const char *part, const char *kid, EVP_PKEY *k)
{
	unsigned char *der = NULL;
	int dl;

	memset(d, 0, sizeof(*d));
	strcpy(d->unique_id, id);
	strcpy(d->model, model);
	strcpy(d->part_number, part);
	if (k == NULL)
		return;
	assert_true((dl = i2d_PUBKEY(k, &der)) > 0);
	d->nkeys = 1;
	strcpy(d->keys[0].kid, kid);
	memcpy(d->keys[0].spki, der, (size_t)dl);
	d->keys[0].spki_len = (size_t)dl;
	d->keys[0].curve = KR_CURVE_P256;
	OPENSSL_free(der);
}

enum { D_NONE, D_A, D_LITE, D_MAH4I, D_MAH4I_BADMODEL, D_TA, D_OTHERPART,
	D_NOCM, D_384 };

static void
test_decide_table(void **st)
{
	/* policy 0: base; 1: lite allowed, no renewals; 2: renewals by
	 * manifest key only, P-256 only */
	static const struct {
		const char *name;
		int pol;
		const char *mfr, *profile;
		int devi;
		EVP_PKEY **key;
		const char *cn;
		int pop, certified;
		uint64_t used;
		int renewal;
		enum kr_renewal_proof proof;
		enum kr_decision want;
	} t[] = {
	{ "good", 0, "cm1", NULL, D_A, &kA, NULL, 1, 0, 0, 0, 0, KR_DEC_ACCEPT },
	{ "good, CN sn+UPPER", 0, "cm1", NULL, D_A, &kA,
	    "sn0123AABBCCDDEEFF01", 1, 0, 4, 0, 0, KR_DEC_ACCEPT },
	{ "good, CN bare id", 0, "cm1", "device", D_A, &kA,
	    "0123aabbccddeeff01", 1, 0, 0, 0, 0, KR_DEC_ACCEPT },
	{ "no PoP", 0, "cm1", NULL, D_A, &kA, NULL, 0, 0, 0, 0, 0,
	    KR_DEC_BAD_CSR_SIGNATURE },
	{ "unknown manufacturer", 0, "cm9", NULL, D_A, &kA, NULL, 1, 0, 0, 0,
	    0, KR_DEC_MANUFACTURER_UNKNOWN },
	{ "no manufacturer", 0, NULL, NULL, D_A, &kA, NULL, 1, 0, 0, 0, 0,
	    KR_DEC_MANUFACTURER_UNKNOWN },
	{ "profile not in policy", 0, "cm1", "web", D_A, &kA, NULL, 1, 0, 0,
	    0, 0, KR_DEC_PROFILE_NOT_ALLOWED },
	{ "profile not for cm2", 0, "cm2", "device", D_A, &kA, NULL, 1, 0, 0,
	    0, 0, KR_DEC_PROFILE_NOT_ALLOWED },
	{ "cm2 default profile", 0, "cm2", NULL, D_A, &kA, NULL, 1, 0, 0, 0,
	    0, KR_DEC_ACCEPT },
	{ "grey market chip", 0, "cm1", NULL, D_NONE, &kB, NULL, 1, 0, 0, 0,
	    0, KR_DEC_NOT_IN_MANIFEST },
	{ "CN of another chip", 0, "cm1", NULL, D_A, &kA,
	    "sn0123AABBCCDDEEFF02", 1, 0, 0, 0, 0, KR_DEC_CN_MISMATCH },
	{ "CN garbage", 0, "cm1", NULL, D_A, &kA, "device", 1, 0, 0, 0, 0,
	    KR_DEC_CN_MISMATCH },
	{ "part not in policy", 0, "cm1", NULL, D_OTHERPART, &kA, NULL, 1, 0,
	    0, 0, 0, KR_DEC_PART_NOT_ALLOWED },
	{ "part not for cm2", 0, "cm2", NULL, D_MAH4I, &kA, NULL, 1, 0, 0, 0,
	    0, KR_DEC_PART_NOT_ALLOWED },
	{ "part for nobody", 0, "cm1", NULL, D_NOCM, &kA, NULL, 1, 0, 0, 0,
	    0, KR_DEC_PART_NOT_ALLOWED },
	{ "model differs", 0, "cm1", NULL, D_MAH4I_BADMODEL, &kA, NULL, 1, 0,
	    0, 0, 0, KR_DEC_MODEL_NOT_ALLOWED },
	{ "model matches", 0, "cm1", NULL, D_MAH4I, &kA, NULL, 1, 0, 0, 0, 0,
	    KR_DEC_ACCEPT },
	{ "lite refused", 0, "cm1", NULL, D_LITE, &kA, NULL, 1, 0, 0, 0, 0,
	    KR_DEC_NO_KEY },
	{ "lite allowed", 1, "cm1", NULL, D_LITE, &kA, NULL, 1, 0, 0, 0, 0,
	    KR_DEC_ACCEPT },
	{ "lite allowed, certified", 1, "cm1", NULL, D_LITE, &kA, NULL, 1, 1,
	    0, 0, 0, KR_DEC_ALREADY_CERTIFIED },
	{ "Ed25519 CSR key", 0, "cm1", NULL, D_A, &kEd, NULL, 1, 0, 0, 0, 0,
	    KR_DEC_CURVE_NOT_ALLOWED },
	{ "P-384 CSR, policy P-256", 2, "cm1", NULL, D_384, &k384, NULL, 1,
	    0, 0, 0, 0, KR_DEC_CURVE_NOT_ALLOWED },
	{ "P-384 CSR, policy P-384", 0, "cm1", NULL, D_384, &k384, NULL, 1,
	    0, 0, 0, 0, KR_DEC_ACCEPT },
	{ "cloned chip: other key", 0, "cm1", NULL, D_A, &kB, NULL, 1, 0, 0,
	    0, 0, KR_DEC_KEY_MISMATCH },
	{ "TA100 handle 8100", 0, "cm1", NULL, D_TA, &kT, NULL, 1, 0, 0, 0,
	    0, KR_DEC_ACCEPT },
	{ "TA100 key under kid 0 only", 0, "cm1", NULL, D_A, &kT, NULL, 1, 0,
	    0, 0, 0, KR_DEC_KEY_MISMATCH },
	{ "already certified", 0, "cm1", NULL, D_A, &kA, NULL, 1, 1, 0, 0, 0,
	    KR_DEC_ALREADY_CERTIFIED },
	{ "quota used up", 0, "cm1", NULL, D_A, &kA, NULL, 1, 0, 5, 0, 0,
	    KR_DEC_QUOTA_EXCEEDED },
	{ "quota last one", 0, "cm1", NULL, D_A, &kA, NULL, 1, 0, 4, 0, 0,
	    KR_DEC_ACCEPT },
	{ "renewal by current cert", 0, "cm1", NULL, D_A, &kB, NULL, 1, 1, 5,
	    1, KR_PROOF_CURRENT_CERT, KR_DEC_ACCEPT },
	{ "renewal without proof", 0, "cm1", NULL, D_A, &kB, NULL, 1, 1, 0,
	    1, KR_PROOF_NONE, KR_DEC_RENEWAL_BAD_PROOF },
	{ "renewal by manifest key, not accepted", 0, "cm1", NULL, D_A, &kB,
	    NULL, 1, 1, 0, 1, KR_PROOF_MANIFEST_KEY,
	    KR_DEC_RENEWAL_BAD_PROOF },
	{ "renewal by current cert, none", 0, "cm1", NULL, D_A, &kB, NULL, 1,
	    0, 0, 1, KR_PROOF_CURRENT_CERT, KR_DEC_RENEWAL_BAD_PROOF },
	{ "renewals off", 1, "cm1", NULL, D_A, &kB, NULL, 1, 1, 0, 1,
	    KR_PROOF_CURRENT_CERT, KR_DEC_RENEWAL_NOT_ALLOWED },
	{ "renewal by manifest key", 2, "cm1", NULL, D_A, &kB, NULL, 1, 1, 0,
	    1, KR_PROOF_MANIFEST_KEY, KR_DEC_ACCEPT },
	{ "renewal of lite by manifest key", 2, "cm1", NULL, D_LITE, &kB,
	    NULL, 1, 1, 0, 1, KR_PROOF_MANIFEST_KEY, KR_DEC_NO_KEY },
	};
	static const char *const pol_extra[3][4] = {
		{ NULL, NULL, NULL, NULL },
		{ "lite_entries", "lite_entries: allow\n", "renewal", NULL },
		{ "curves", "curves: [P-256]\n", "renewal",
		    "renewal:\n  allowed: true\n  proof: [manifest-key]\n" },
	};
	struct kr_policy *pol[3];
	struct kr_device devs[9];
	struct kr_request rq;
	struct kr_verdict v;
	unsigned char *der = NULL;
	size_t i;
	int rc, dl;

	for (i = 0; i < 3; i++) {
		char *b = build2(pol_extra[i][0], pol_extra[i][1],
		    pol_extra[i][2], pol_extra[i][3]);

		pol[i] = NULL;
		rc = kr_policy_parse("p.yaml", b, strlen(b), dir, &pol[i]);
		if (rc != 0)
			fprintf(stderr, "policy %zu: %s\n%s", i,
			    kr_err_detail(), b);
		assert_int_equal(rc, 0);
	}
	kA = EVP_EC_gen("P-256");
	kB = EVP_EC_gen("P-256");
	kT = EVP_EC_gen("P-256");
	k384 = EVP_EC_gen("P-384");
	kEd = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_true(kA && kB && kT && k384 && kEd);
	dev(&devs[D_A], "0123aabbccddeeff01", "ATECC608C",
	    "ATECC608C-TNGTLSU-B", "0", kA);
	dev(&devs[D_LITE], "0123aabbccddeeff03", "ATECC608C",
	    "ATECC608C-TNGTLSU-B", NULL, NULL);
	dev(&devs[D_MAH4I], "0123aabbccddeeff04", "ATECC608A",
	    "ATECC608A-MAH4I", "0", kA);
	dev(&devs[D_MAH4I_BADMODEL], "0123aabbccddeeff05", "ATECC608B",
	    "ATECC608A-MAH4I", "0", kA);
	dev(&devs[D_TA], "0123aabbccddeeff", "TA100", "TA100-TNGTLS", "8100",
	    kT);
	dev(&devs[D_OTHERPART], "0123aabbccddeeff06", "ATECC608A",
	    "ATECC608A-MAH22", "0", kA);
	dev(&devs[D_NOCM], "0123aabbccddeeff07", "ATECC608B",
	    "ATECC608B-NOCM", "2", kA);
	dev(&devs[D_384], "0123aabbccddeeff08", "ATECC608C",
	    "ATECC608C-TNGTLSU-B", "0", k384);
	devs[D_384].keys[0].curve = KR_CURVE_P384;
	/* Every device comes from a manifest by a signer the policies pin. */
	for (i = 0; i < KR_ARRAY_SIZE(devs); i++)
		memcpy(devs[i].signer, kr_policy_trust(pol[0])->signers[0].sha256,
		    32);
	for (i = 0; i < KR_ARRAY_SIZE(t); i++) {
		EVP_PKEY *k = *t[i].key;

		memset(&rq, 0, sizeof(rq));
		rq.manufacturer = t[i].mfr;
		rq.profile = t[i].profile;
		assert_true((dl = i2d_PUBKEY(k, &der)) > 0);
		/* alternate: key given as SPKI only, or as both */
		rq.pkey = (i % 2) ? k : NULL;
		rq.spki = der;
		rq.spki_len = (size_t)dl;
		rq.cn = t[i].cn;
		rq.pop_ok = t[i].pop;
		rq.dev = t[i].devi == D_NONE ? NULL : &devs[t[i].devi];
		rq.already_certified = t[i].certified;
		rq.quota_used = t[i].used;
		rq.renewal = t[i].renewal;
		rq.proof = t[i].proof;
		if (kr_policy_decide(pol[t[i].pol], &rq, &v) != t[i].want)
			fprintf(stderr, "case '%s': want %s, got %s: %s\n",
			    t[i].name, kr_decision_str(t[i].want),
			    kr_decision_str(v.decision), v.message);
		assert_int_equal(v.decision, t[i].want);
		assert_true(strlen(v.message) > 0);
		if (v.decision == KR_DEC_ACCEPT)
			assert_non_null(v.profile);
		else
			assert_null(v.profile);
		OPENSSL_free(der);
		der = NULL;
	}
	/* an unparseable key */
	memset(&rq, 0, sizeof(rq));
	rq.manufacturer = "cm1";
	rq.spki = (const uint8_t *)"\x30\x03\x02\x01\x00";
	rq.spki_len = 5;
	rq.pop_ok = 1;
	rq.dev = &devs[D_A];
	assert_int_equal(kr_policy_decide(pol[0], &rq, &v), KR_DEC_BAD_CSR);
	/* reason strings are stable */
	assert_string_equal(kr_decision_str(KR_DEC_NO_KEY),
	    "manifest-entry-no-key");
	assert_string_equal(kr_decision_str(KR_DEC_NOT_IN_MANIFEST),
	    "not-in-manifest");
	assert_string_equal(kr_decision_str(KR_DEC_NREASONS), "?");
	for (i = 0; i < 3; i++)
		kr_policy_free(pol[i]);
	EVP_PKEY_free(kA);
	EVP_PKEY_free(kB);
	EVP_PKEY_free(kT);
	EVP_PKEY_free(k384);
	EVP_PKEY_free(kEd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_ok),
		cmocka_unit_test(test_load_refusals),
		cmocka_unit_test(test_load_lines),
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_digest),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
