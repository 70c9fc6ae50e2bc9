/*
 * test_ca_lint.c - kr_lint_cert: a well-formed root, intermediate and
 * device pass; each defect is caught by its named lint. Data-driven: one
 * line per case (extension overrides + a mutation) with the lint it must
 * trip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "ca/ca_int.h"
#include "lib/util.h"

static EVP_PKEY *ca_key, *dev_key, *p384_key;
static X509 *root;
static struct kr_config cfg;

enum mut {
	M_NONE, M_V1, M_SERIAL_NEG, M_SERIAL_ZERO, M_SERIAL_LONG, M_ORDER,
	M_BAD_TIME, M_GEN_2030, M_EMPTY_SUBJECT, M_ISSUER_NAME, M_SHA384,
	M_P384_KEY,
};

struct ext {
	const char *name;
	const char *value;	/* NULL: omit */
};

/* Baselines. */
static const struct ext root_exts[] = {
	{ "basicConstraints", "critical,CA:TRUE" },
	{ "keyUsage", "critical,keyCertSign,cRLSign" },
	{ "subjectKeyIdentifier", "hash" },
	{ NULL, NULL },
};
static const struct ext dev_exts[] = {
	{ "basicConstraints", "critical,CA:FALSE" },
	{ "keyUsage", "critical,digitalSignature" },
	{ "extendedKeyUsage", "clientAuth" },
	{ "subjectKeyIdentifier", "hash" },
	{ "authorityKeyIdentifier", "keyid:always" },
	{ NULL, NULL },
};

static void
set_time(ASN1_TIME *t, const char *s)
{
	assert_int_equal(ASN1_TIME_set_string_X509(t, s), 1);
}

/*
 * A certificate of `kind` for `pub`, issued by `issuer` (NULL: self) with
 * the baseline extensions, where `over` replaces ("name", "value"),
 * removes ("name", NULL) or, with a name starting '+', appends.
 */
static X509 *
mk(enum kr_cert_kind kind, const struct ext *over, enum mut m)
{
	const struct ext *base = kind == KR_CERT_DEVICE ? dev_exts : root_exts;
	EVP_PKEY *pub = kind == KR_CERT_DEVICE ? dev_key : ca_key;
	X509 *x = X509_new(), *iss = kind == KR_CERT_ROOT ? NULL : root;
	X509_NAME *subj = NULL;
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	const struct ext *b, *o;
	const char *v;
	uint8_t serial[KR_SERIAL_LEN] = { 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	BIGNUM *bn;
	ASN1_INTEGER *ai;

	if (m == M_P384_KEY)
		pub = p384_key;
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, m == M_V1 ? 0 : 2), 1);
	assert_int_equal(kr_ca_parse_dn(kind == KR_CERT_ROOT ? "/CN=Root" :
	    kind == KR_CERT_INTERMEDIATE ? "/CN=Int" : "/CN=dev", &subj), 0);
	if (m == M_EMPTY_SUBJECT) {
		X509_NAME_free(subj);
		subj = X509_NAME_new();
	}
	assert_int_equal(X509_set_subject_name(x, subj), 1);
	assert_int_equal(X509_set_issuer_name(x, iss != NULL ?
	    X509_get_subject_name(iss) : subj), 1);
	if (m == M_ISSUER_NAME) {
		X509_NAME *n = NULL;

		assert_int_equal(kr_ca_parse_dn("/CN=Someone else", &n), 0);
		assert_int_equal(X509_set_issuer_name(x, n), 1);
		X509_NAME_free(n);
	}
	X509_NAME_free(subj);
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (m == M_SERIAL_ZERO)
		BN_zero(bn);
	if (m == M_SERIAL_NEG)
		BN_set_negative(bn, 1);
	if (m == M_SERIAL_LONG)
		assert_int_equal(BN_lshift(bn, bn, 8 * 6), 1);	/* 22 octets */
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	assert_int_equal(X509_set_serialNumber(x, ai), 1);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	set_time(X509_getm_notBefore(x), "20261125000000Z");
	set_time(X509_getm_notAfter(x), "20361125000000Z");
	if (m == M_ORDER)
		set_time(X509_getm_notAfter(x), "20251125000000Z");
	if (m == M_BAD_TIME) {
		/* A UTCTime without seconds and zone: not RFC 5280. */
		X509_getm_notAfter(x)->type = V_ASN1_UTCTIME;
		assert_int_equal(ASN1_STRING_set(X509_getm_notAfter(x),
		    "3611250000", -1), 1);
	}
	if (m == M_GEN_2030)
		assert_int_equal(ASN1_GENERALIZEDTIME_set_string(
		    X509_getm_notAfter(x), "20300101000000Z"), 1);
	assert_int_equal(X509_set_pubkey(x, pub), 1);
	X509V3_set_ctx(&ctx, iss != NULL ? iss : x, x, NULL, NULL, 0);
	for (b = base; b->name != NULL; b++) {
		v = b->value;
		for (o = over; o != NULL && o->name != NULL; o++)
			if (strcmp(o->name, b->name) == 0)
				v = o->value;
		if (v == NULL)
			continue;
		assert_non_null(e = X509V3_EXT_conf(NULL, &ctx, b->name, v));
		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	for (o = over; o != NULL && o->name != NULL; o++) {
		if (o->name[0] != '+')
			continue;
		assert_non_null(e = X509V3_EXT_conf(NULL, &ctx, o->name + 1,
		    o->value));
		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, ca_key, m == M_SHA384 ? EVP_sha384() :
	    EVP_sha256()) > 0);
	return x;
}

static int
setup(void **s)
{
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	dev_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	p384_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	kr_config_defaults(&cfg);
	cfg.root.algorithm = KR_KEY_P256;
	cfg.root.algorithms = KR_KEY_BIT(KR_KEY_P256);
	root = mk(KR_CERT_ROOT, NULL, M_NONE);
	return ca_key && dev_key && p384_key && root ? 0 : -1;
}

static int
teardown(void **s)
{
	X509_free(root);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(dev_key);
	EVP_PKEY_free(p384_key);
	return 0;
}

static void
test_baselines_pass(void **s)
{
	static const struct ext inter[] = {
		{ "basicConstraints", "critical,CA:TRUE,pathlen:0" },
		{ "+authorityKeyIdentifier", "keyid:always" },
		{ NULL, NULL },
	};
	X509 *x;

	if (kr_lint_cert(root, &cfg.root, NULL) != 0)
		fail_msg("root: %s", kr_err_detail());
	x = mk(KR_CERT_DEVICE, NULL, M_NONE);
	if (kr_lint_cert(x, &cfg.device, root) != 0)
		fail_msg("device: %s", kr_err_detail());
	X509_free(x);
	x = mk(KR_CERT_INTERMEDIATE, inter, M_NONE);
	if (kr_lint_cert(x, &cfg.intermediate, root) != 0)
		fail_msg("intermediate: %s", kr_err_detail());
	X509_free(x);
}

struct dcase {
	const char *lint;	/* expected "lint <name>:" */
	struct ext over[3];
	enum mut m;
};

/* Device certificate defects, one per line. */
static const struct dcase device_cases[] = {
	{ "version", { { NULL, NULL } }, M_V1 },
	{ "serial.positive", { { NULL, NULL } }, M_SERIAL_NEG },
	{ "serial.positive", { { NULL, NULL } }, M_SERIAL_ZERO },
	{ "serial.length", { { NULL, NULL } }, M_SERIAL_LONG },
	{ "validity.order", { { NULL, NULL } }, M_ORDER },
	{ "validity.encoding", { { NULL, NULL } }, M_BAD_TIME },
	{ "validity.encoding", { { NULL, NULL } }, M_GEN_2030 },
	{ "subject.empty", { { NULL, NULL } }, M_EMPTY_SUBJECT },
	{ "issuer.match", { { NULL, NULL } }, M_ISSUER_NAME },
	{ "sigalg.issuer", { { NULL, NULL } }, M_SHA384 },
	{ "key.profile", { { NULL, NULL } }, M_P384_KEY },
	{ "bc.present", { { "basicConstraints", NULL } }, M_NONE },
	{ "bc.critical", { { "basicConstraints", "CA:FALSE" } }, M_NONE },
	{ "bc.ca", { { "basicConstraints", "critical,CA:TRUE" },
	    { "keyUsage", "critical,keyCertSign,cRLSign" } }, M_NONE },
	{ "ku.present", { { "keyUsage", NULL } }, M_NONE },
	{ "ku.critical", { { "keyUsage", "digitalSignature" } }, M_NONE },
	{ "ku.ca", { { "keyUsage", "critical,digitalSignature,keyCertSign" } },
	    M_NONE },
	{ "ku.device", { { "keyUsage", "critical,keyEncipherment" } }, M_NONE },
	{ "ku.device", { { "keyUsage",
	    "critical,digitalSignature,keyAgreement" } }, M_NONE },
	{ "eku.present", { { "extendedKeyUsage", NULL } }, M_NONE },
	{ "eku.critical", { { "extendedKeyUsage", "critical,clientAuth" } },
	    M_NONE },
	{ "eku.server", { { "extendedKeyUsage", "clientAuth,serverAuth" } },
	    M_NONE },
	{ "eku.client", { { "extendedKeyUsage", "serverAuth" } }, M_NONE },
	{ "eku.extra", { { "extendedKeyUsage", "clientAuth,codeSigning" } },
	    M_NONE },
	/* an OID OpenSSL's purpose cache has no bit for */
	{ "eku.extra", { { "extendedKeyUsage", "clientAuth,1.2.3.4" } },
	    M_NONE },
	/* well-placed extensions whose contents do not decode (DER NULL) */
	{ "ku.decode", { { "keyUsage", "critical,DER:0500" } }, M_NONE },
	{ "eku.decode", { { "extendedKeyUsage", "DER:0500" } }, M_NONE },
	{ "ski.decode", { { "subjectKeyIdentifier", "DER:0500" } }, M_NONE },
	{ "aki.match", { { "authorityKeyIdentifier", "DER:0500" } }, M_NONE },
	{ "ski.present", { { "subjectKeyIdentifier", NULL } }, M_NONE },
	{ "aki.present", { { "authorityKeyIdentifier", NULL } }, M_NONE },
	{ "ext.unknown", { { "+nsComment", "hello" } }, M_NONE },
	{ "ext.duplicate", { { "+extendedKeyUsage", "clientAuth" } }, M_NONE },
	{ "san.unexpected", { { "+subjectAltName", "DNS:dev.example" } },
	    M_NONE },
	{ "cdp.profile", { { "+crlDistributionPoints",
	    "URI:http://crl.example/x.crl" } }, M_NONE },
	{ "aia.profile", { { "+authorityInfoAccess",
	    "caIssuers;URI:http://ca.example/i.crt" } }, M_NONE },
};

static void
test_device_defects(void **s)
{
	char want[64];
	size_t i;
	X509 *x;
	int r;

	for (i = 0; i < KR_ARRAY_SIZE(device_cases); i++) {
		x = mk(KR_CERT_DEVICE, device_cases[i].over, device_cases[i].m);
		r = kr_lint_cert(x, &cfg.device, root);
		snprintf(want, sizeof(want), "lint %s:", device_cases[i].lint);
		if (r != KR_ERR_LINT || strncmp(kr_err_detail(), want,
		    strlen(want)) != 0)
			fail_msg("case %zu (%s): r=%d detail '%s'", i,
			    device_cases[i].lint, r, kr_err_detail());
		X509_free(x);
	}
}

/* AKI that is not the issuer's SKI. */
static void
test_aki_wrong_key(void **s)
{
	static const struct ext over[] = {
		{ "authorityKeyIdentifier", NULL },
		{ "+authorityKeyIdentifier", "keyid:always" },
		{ NULL, NULL },
	};
	X509 *x = mk(KR_CERT_DEVICE, over, M_NONE), *other;

	/* Lint against an issuer with the same name but another SKI. */
	other = mk(KR_CERT_ROOT, (const struct ext[]){
	    { "subjectKeyIdentifier", "00112233" }, { NULL, NULL } }, M_NONE);
	assert_int_equal(kr_lint_cert(x, &cfg.device, other), KR_ERR_LINT);
	assert_non_null(strstr(kr_err_detail(), "lint aki.match:"));
	X509_free(other);
	X509_free(x);
}

static void
test_profile_options(void **s)
{
	static const struct ext opt[] = {
		{ "keyUsage", "critical,digitalSignature,keyAgreement" },
		{ "extendedKeyUsage", "clientAuth,serverAuth" },
		{ "+crlDistributionPoints", "URI:http://crl.example/i.crl" },
		{ NULL, NULL },
	};
	struct kr_profile p = cfg.device;
	X509 *x = mk(KR_CERT_DEVICE, opt, M_NONE);

	p.key_agreement = 1;
	p.server_auth = 1;
	snprintf(p.crl_url, sizeof(p.crl_url), "http://crl.example/i.crl");
	if (kr_lint_cert(x, &p, root) != 0)
		fail_msg("%s", kr_err_detail());
	/* Another URL than the profile's. */
	snprintf(p.crl_url, sizeof(p.crl_url), "http://crl.example/j.crl");
	assert_int_equal(kr_lint_cert(x, &p, root), KR_ERR_LINT);
	assert_string_equal(kr_err_detail(), "lint cdp.profile: CRL "
	    "distribution point is not exactly URI http://crl.example/j.crl");
	snprintf(p.crl_url, sizeof(p.crl_url), "http://crl.example/i.crl");
	/* The profile wants HardwareModuleName: none present. */
	p.hw_module_name = 1;
	assert_int_equal(kr_lint_cert(x, &p, root), KR_ERR_LINT);
	assert_non_null(strstr(kr_err_detail(), "lint san.present:"));
	X509_free(x);
}

static void
test_ca_defects(void **s)
{
	static const struct ext no_pathlen[] = {
		{ "+authorityKeyIdentifier", "keyid:always" },
		{ NULL, NULL },
	};
	static const struct ext eku[] = {
		{ "basicConstraints", "critical,CA:TRUE,pathlen:0" },
		{ "+authorityKeyIdentifier", "keyid:always" },
		{ "+extendedKeyUsage", "clientAuth" },
		{ NULL, NULL },
	};
	static const struct ext ku[] = {
		{ "keyUsage", "critical,keyCertSign" },
		{ NULL, NULL },
	};
	X509 *x;

	x = mk(KR_CERT_INTERMEDIATE, no_pathlen, M_NONE);
	assert_int_equal(kr_lint_cert(x, &cfg.intermediate, root), KR_ERR_LINT);
	assert_non_null(strstr(kr_err_detail(), "lint bc.pathlen:"));
	X509_free(x);
	x = mk(KR_CERT_INTERMEDIATE, eku, M_NONE);
	assert_int_equal(kr_lint_cert(x, &cfg.intermediate, root), KR_ERR_LINT);
	assert_non_null(strstr(kr_err_detail(), "lint eku.ca:"));
	X509_free(x);
	x = mk(KR_CERT_ROOT, ku, M_NONE);
	assert_int_equal(kr_lint_cert(x, &cfg.root, NULL), KR_ERR_LINT);
	assert_non_null(strstr(kr_err_detail(), "lint ku.ca:"));
	X509_free(x);
	/* A P-256 root linted against the default P-384 root profile. */
	{
		struct kr_config d;

		kr_config_defaults(&d);
		assert_int_equal(kr_lint_cert(root, &d.root, NULL),
		    KR_ERR_LINT);
		assert_non_null(strstr(kr_err_detail(), "lint key.profile:"));
	}
}

/*
 * The throwaway lint key is made once, however many threads ask for it
 * at the same time (batch workers, no warm-up).
 */
#define LK_THREADS 8
static void *
lint_key_thread(void *arg)
{
	EVP_PKEY **out = arg;

	if (kr_ca_lint_key(KR_KEY_ED25519, out) != 0)
		*out = NULL;
	return NULL;
}

static void
test_lint_key_threads(void **s)
{
	pthread_t th[LK_THREADS];
	EVP_PKEY *got[LK_THREADS], *again = NULL;
	int i;

	for (i = 0; i < LK_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, lint_key_thread,
		    &got[i]), 0);
	for (i = 0; i < LK_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(kr_ca_lint_key(KR_KEY_ED25519, &again), 0);
	for (i = 0; i < LK_THREADS; i++)
		assert_ptr_equal(got[i], again);
	assert_int_equal(kr_key_type_of(again), KR_KEY_ED25519);
	assert_int_equal(kr_ca_lint_key(KR_KEY_NONE, &again),
	    KR_ERR_UNSUPPORTED);
	assert_null(again);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lint_key_threads),
		cmocka_unit_test(test_baselines_pass),
		cmocka_unit_test(test_device_defects),
		cmocka_unit_test(test_aki_wrong_key),
		cmocka_unit_test(test_profile_options),
		cmocka_unit_test(test_ca_defects),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
