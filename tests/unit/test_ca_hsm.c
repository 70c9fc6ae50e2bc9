/*
 * test_ca_hsm.c - the HSM layer against a real SoftHSM2 store in a fresh
 * temporary directory: token init, login errors, key generation and label
 * clashes, lookups, raw and libp11 signing, lost-session recovery,
 * serials from the token RNG.
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
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "ca/ca_int.h"
#include "ca/hsm.h"
#include "lib/util.h"

static char dir[] = "/tmp/kr-hsm-XXXXXX";
static struct kr_hsm *hsm;
static struct kr_token *tok;

static int
setup(void **s)
{
	char conf[512], path[600], module[512];
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tokens", dir);
	if (mkdir(path, 0700) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	if ((f = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\n"
	    "log.level = ERROR\n", path);
	fclose(f);
	setenv("SOFTHSM2_CONF", conf, 1);
	if (kr_hsm_find_softhsm(module, sizeof(module)) != 0 ||
	    kr_hsm_load(module, &hsm) != 0)
		return -1;
	/* Two tokens: the second needs SoftHSM's re-initialisation path. */
	if (kr_hsm_init_token(hsm, "t1", "so-pin-1", 8, "1234", 4) != 0 ||
	    kr_hsm_init_token(hsm, "t2", "so-pin-2", 8, "5678", 4) != 0)
		return -1;
	return kr_token_open(hsm, "t1", "1234", 4, &tok) == 0 ? 0 : -1;
}

static int
teardown(void **s)
{
	char cmd[128];

	kr_token_close(tok);
	kr_hsm_free(hsm);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_token_errors(void **s)
{
	struct kr_token *t = NULL;

	assert_int_equal(kr_hsm_init_token(hsm, "t1", "x", 1, "y", 1),
	    KR_ERR_EXISTS);
	assert_non_null(strstr(kr_err_detail(), "token t1 already exists"));
	assert_int_equal(kr_token_open(hsm, "t1", "9999", 4, &t), KR_ERR_PIN);
	/* t1 is open (logged in) here: the PIN is checked against it. */
	assert_string_equal(kr_err_detail(),
	    "token t1: wrong PIN (differs from the PIN of its open session)");
	assert_null(t);
	assert_int_equal(kr_token_open(hsm, "t2", "9999", 4, &t), KR_ERR_PIN);
	assert_string_equal(kr_err_detail(),
	    "token t2: wrong PIN (CKR_PIN_INCORRECT)");
	assert_int_equal(kr_token_open(hsm, "t1", "1234", 4, &t), 0);
	kr_token_close(t);	/* must not log out tok */
	t = NULL;
	assert_int_equal(kr_token_open(hsm, "nosuch", "1234", 4, &t),
	    KR_ERR_TOKEN);
	assert_non_null(strstr(kr_err_detail(), "token nosuch not found in "
	    "PKCS#11 module"));
	assert_int_equal(kr_token_open(hsm, "t2", "5678", 4, &t), 0);
	kr_token_close(t);
}

static void
test_load_errors(void **s)
{
	struct kr_hsm *h = NULL;

	assert_int_equal(kr_hsm_load("/nonexistent/p11.so", &h), KR_ERR_TOKEN);
	assert_non_null(strstr(kr_err_detail(), "PKCS#11 module "
	    "/nonexistent/p11.so: cannot load"));
	assert_null(h);
}

static void
test_generate_find_clash(void **s)
{
	struct kr_key *k = NULL, *k2 = NULL;

	assert_int_equal(kr_token_generate(tok, KR_KEY_P256, "gen1", &k), 0);
	assert_int_equal(kr_key_type(k), KR_KEY_P256);
	assert_int_equal(kr_key_type_of(kr_hsm_pubkey(k)), KR_KEY_P256);
	assert_int_equal(kr_token_generate(tok, KR_KEY_P384, "gen1", &k2),
	    KR_ERR_EXISTS);
	assert_string_equal(kr_err_detail(),
	    "token t1: key label 'gen1' already exists");
	assert_int_equal(kr_token_find_key(tok, "gen1", &k2), 0);
	assert_int_equal(kr_hsm_check_pubkey(k2, kr_hsm_pubkey(k)), 0);
	kr_key_free(k2);
	k2 = NULL;
	assert_int_equal(kr_token_find_key(tok, "nope", &k2), KR_ERR_NOT_FOUND);
	assert_string_equal(kr_err_detail(),
	    "token t1: no private key labelled 'nope'");
	assert_int_equal(kr_token_generate(tok, KR_KEY_ED25519, "gen2", &k2),
	    0);
	assert_int_equal(kr_hsm_check_pubkey(k2, kr_hsm_pubkey(k)),
	    KR_ERR_KEY_MISMATCH);
	kr_key_free(k);
	kr_key_free(k2);
}

static void
verify_raw(struct kr_key *k, const uint8_t *msg, size_t len,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const EVP_MD *d = kr_key_type(k) == KR_KEY_ED25519 ? NULL :
	    kr_key_type(k) == KR_KEY_P384 ? EVP_sha384() : EVP_sha256();

	assert_non_null(md);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, d, NULL,
	    kr_hsm_pubkey(k)), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, siglen, msg, len), 1);
	EVP_MD_CTX_free(md);
}

static void
test_sign_raw_all_types(void **s)
{
	static const enum kr_key_type types[] = { KR_KEY_P256, KR_KEY_P384,
	    KR_KEY_ED25519 };
	static const uint8_t msg[] = "checkpoint body\n";
	uint8_t sig[KR_HSM_SIG_MAX];
	struct kr_key *k = NULL;
	char label[32];
	size_t i, siglen;

	for (i = 0; i < KR_ARRAY_SIZE(types); i++) {
		snprintf(label, sizeof(label), "raw-%zu", i);
		assert_int_equal(kr_token_generate(tok, types[i], label, &k), 0);
		siglen = sizeof(sig);
		assert_int_equal(kr_hsm_sign_raw(k, msg, sizeof(msg), sig,
		    &siglen), 0);
		if (types[i] == KR_KEY_ED25519)
			assert_int_equal(siglen, 64);
		verify_raw(k, msg, sizeof(msg), sig, siglen);
		kr_key_free(k);
		k = NULL;
	}
}

/* A P-256 key signs a given SHA-256 digest as kr_hsm_sign_raw signs the
 * message; other key types refuse a digest. */
static void
test_sign_sha256(void **s)
{
	static const uint8_t msg[] = "tbs bytes";
	uint8_t sig[KR_HSM_SIG_MAX], dg[32];
	struct kr_key *k = NULL, *k384 = NULL;
	size_t siglen;

	assert_int_equal(kr_token_generate(tok, KR_KEY_P256, "dg-256", &k), 0);
	assert_int_equal(kr_token_generate(tok, KR_KEY_P384, "dg-384", &k384),
	    0);
	kr_sha256(msg, sizeof(msg), dg);
	siglen = sizeof(sig);
	assert_int_equal(kr_hsm_sign_sha256(k, dg, sig, &siglen), 0);
	verify_raw(k, msg, sizeof(msg), sig, siglen);
	/* a digest of other bytes gives a signature over those bytes only */
	dg[0] ^= 1;
	siglen = sizeof(sig);
	assert_int_equal(kr_hsm_sign_sha256(k, dg, sig, &siglen), 0);
	{
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(),
		    NULL, kr_hsm_pubkey(k)), 1);
		assert_int_not_equal(EVP_DigestVerify(md, sig, siglen, msg,
		    sizeof(msg)), 1);
		EVP_MD_CTX_free(md);
	}
	siglen = sizeof(sig);
	assert_int_equal(kr_hsm_sign_sha256(k384, dg, sig, &siglen),
	    KR_ERR_UNSUPPORTED);
	kr_key_free(k);
	kr_key_free(k384);
}

/*
 * Regression: two handles on one token with libp11 in use. libp11 0.4.12
 * closes every session of the slot (C_CloseAllSessions) when it first
 * opens its own, which also killed our raw session and logged the token
 * out; a second open then signed through a dead libp11 pool and crashed.
 */
static X509 *
small_cert(EVP_PKEY *pub)
{
	X509 *x = X509_new();
	X509_NAME *n = NULL;

	assert_non_null(x);
	assert_int_equal(kr_ca_parse_dn("/CN=two handles", &n), 0);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	assert_int_equal(X509_set_issuer_name(x, n), 1);
	assert_int_equal(X509_set_pubkey(x, pub), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 60));
	X509_NAME_free(n);
	return x;
}

static void
test_two_handles_libp11(void **s)
{
	static const uint8_t msg[] = "two handles";
	uint8_t sig[KR_HSM_SIG_MAX], rnd[16];
	struct kr_token *a = NULL, *b = NULL;
	struct kr_key *ka = NULL, *kb = NULL;
	size_t siglen;
	X509 *x = NULL;
	int i;

	assert_int_equal(kr_token_open(hsm, "t2", "5678", 4, &a), 0);
	assert_int_equal(kr_token_generate(a, KR_KEY_P256, "two-ec", &ka), 0);
	x = small_cert(kr_hsm_pubkey(ka));
	if (kr_hsm_x509_sign(ka, x, NULL, EVP_sha256()) != 0)
		fail_msg("%s", kr_err_detail());
	assert_int_equal(X509_verify(x, kr_hsm_pubkey(ka)), 1);
	/* The raw session survived libp11's login (no recovery needed). */
	siglen = sizeof(sig);
	if (kr_hsm_sign_raw(ka, msg, sizeof(msg), sig, &siglen) != 0)
		fail_msg("%s", kr_err_detail());
	verify_raw(ka, msg, sizeof(msg), sig, siglen);
	assert_int_equal(kr_token_test_reopens(a), 0);
	/* A second handle on the same token, libp11 and raw. */
	for (i = 0; i < 3; i++) {
		assert_int_equal(kr_token_open(hsm, "t2", "5678", 4, &b), 0);
		assert_int_equal(kr_token_find_key(b, "two-ec", &kb), 0);
		if (kr_hsm_x509_sign(kb, x, NULL, EVP_sha256()) != 0)
			fail_msg("%s", kr_err_detail());
		assert_int_equal(X509_verify(x, kr_hsm_pubkey(kb)), 1);
		siglen = sizeof(sig);
		if (kr_hsm_sign_raw(kb, msg, sizeof(msg), sig, &siglen) != 0)
			fail_msg("%s", kr_err_detail());
		assert_int_equal(kr_token_test_reopens(b), 0);
		kr_key_free(kb);
		kb = NULL;
		kr_token_close(b);
		b = NULL;
		/* ...and the first handle still signs both ways. */
		if (kr_hsm_x509_sign(ka, x, NULL, EVP_sha256()) != 0)
			fail_msg("%s", kr_err_detail());
		assert_int_equal(X509_verify(x, kr_hsm_pubkey(ka)), 1);
		siglen = sizeof(sig);
		if (kr_hsm_sign_raw(ka, msg, sizeof(msg), sig, &siglen) != 0)
			fail_msg("%s", kr_err_detail());
		assert_int_equal(kr_token_test_reopens(a), 0);
	}
	/* A reset under libp11: both layers recover (no crash). */
	kr_token_test_drop_sessions(a);
	if (kr_token_recover(a) != 0)
		fail_msg("%s", kr_err_detail());
	assert_int_equal(kr_token_test_reopens(a), 1);
	assert_int_equal(kr_token_random(a, rnd, sizeof(rnd)), 0);
	if (kr_ca_hsm_sign(ka, &x, NULL) != 0)
		fail_msg("%s", kr_err_detail());
	assert_int_equal(X509_verify(x, kr_hsm_pubkey(ka)), 1);
	X509_free(x);
	kr_key_free(ka);
	kr_token_close(a);
}

/* Closing every session under the token: the next operation recovers. */
static void
test_lost_session_recovers(void **s)
{
	static const uint8_t msg[] = "after a reset";
	uint8_t sig[KR_HSM_SIG_MAX], rnd[16];
	struct kr_key *ed = NULL, *ec = NULL, *ec2 = NULL;
	struct kr_token *t2 = NULL;
	EVP_PKEY *lk = NULL;
	size_t siglen = sizeof(sig);
	X509 *x = NULL;
	X509_NAME *n = NULL;

	assert_int_equal(kr_token_generate(tok, KR_KEY_ED25519, "lost-ed",
	    &ed), 0);
	assert_int_equal(kr_token_generate(tok, KR_KEY_P256, "lost-ec", &ec),
	    0);
	/* Raw C_Sign (Ed25519). */
	kr_token_test_drop_sessions(tok);
	if (kr_hsm_sign_raw(ed, msg, sizeof(msg), sig, &siglen) != 0)
		fail_msg("%s", kr_err_detail());
	verify_raw(ed, msg, sizeof(msg), sig, siglen);
	/* C_GenerateRandom. */
	kr_token_test_drop_sessions(tok);
	assert_int_equal(kr_token_random(tok, rnd, sizeof(rnd)), 0);
	/* Key lookup. */
	kr_token_test_drop_sessions(tok);
	kr_key_free(ed);
	ed = NULL;
	assert_int_equal(kr_token_find_key(tok, "lost-ed", &ed), 0);
	/*
	 * libp11 0.4.12 cannot list a token that also holds EdDSA keys:
	 * kr_hsm_x509_sign says so (callers then sign raw).
	 */
	assert_non_null(x = X509_new());
	assert_int_equal(kr_ca_parse_dn("/CN=lost session", &n), 0);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	assert_int_equal(X509_set_issuer_name(x, n), 1);
	assert_int_equal(X509_set_pubkey(x, kr_hsm_pubkey(ec)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 60));
	assert_int_equal(kr_hsm_x509_sign(ec, x, NULL, EVP_sha256()),
	    KR_ERR_UNSUPPORTED);
	/* libp11 X509_sign (ECDSA) on t2, once before and after a reset. */
	assert_int_equal(kr_token_open(hsm, "t2", "5678", 4, &t2), 0);
	assert_int_equal(kr_token_generate(t2, KR_KEY_P256, "p11-ec", &ec2),
	    0);
	assert_int_equal(X509_set_pubkey(x, kr_hsm_pubkey(ec2)), 1);
	if (kr_hsm_x509_sign(ec2, x, NULL, EVP_sha256()) != 0)
		fail_msg("%s", kr_err_detail());
	assert_int_equal(X509_verify(x, kr_hsm_pubkey(ec2)), 1);
	/* After a reset libp11 is out; kr_ca_hsm_sign signs raw. */
	kr_token_test_drop_sessions(t2);
	if (kr_ca_hsm_sign(ec2, &x, NULL) != 0)
		fail_msg("%s", kr_err_detail());
	assert_int_equal(X509_verify(x, kr_hsm_pubkey(ec2)), 1);
	kr_token_test_drop_sessions(t2);
	if (kr_ca_hsm_sign(ec2, &x, NULL) != 0)
		fail_msg("%s", kr_err_detail());
	assert_int_equal(X509_verify(x, kr_hsm_pubkey(ec2)), 1);
	/* Ed25519 + EC token: raw signing from the start. */
	assert_int_equal(X509_set_pubkey(x, kr_hsm_pubkey(ed)), 1);
	if (kr_ca_hsm_sign(ec, &x, NULL) != 0)
		fail_msg("%s", kr_err_detail());
	assert_int_equal(X509_verify(x, kr_hsm_pubkey(ec)), 1);
	/* The AlgorithmIdentifier must fit the key: */
	assert_int_equal(kr_ca_hsm_sign(ed, &x, NULL), KR_ERR_INTERNAL);
	assert_int_equal(kr_ca_lint_key(KR_KEY_ED25519, &lk), 0);
	assert_true(X509_sign(x, lk, NULL) > 0);
	if (kr_ca_hsm_sign(ed, &x, NULL) != 0)
		fail_msg("%s", kr_err_detail());
	assert_int_equal(X509_verify(x, kr_hsm_pubkey(ed)), 1);
	kr_key_free(ec2);
	kr_token_close(t2);
	/* And raw ECDSA after another reset. */
	kr_token_test_drop_sessions(tok);
	siglen = sizeof(sig);
	assert_int_equal(kr_hsm_sign_raw(ec, msg, sizeof(msg), sig, &siglen),
	    0);
	verify_raw(ec, msg, sizeof(msg), sig, siglen);
	X509_NAME_free(n);
	X509_free(x);
	kr_key_free(ed);
	kr_key_free(ec);
}

static int used_calls;
static int
used_first(void *arg, const uint8_t *serial, size_t len)
{
	(void)arg;
	(void)serial;
	(void)len;
	return used_calls++ == 0;	/* the first draw "was issued" */
}

static int
used_always(void *arg, const uint8_t *serial, size_t len)
{
	(void)arg;
	(void)serial;
	(void)len;
	return 1;
}

static void
test_serials(void **s)
{
	uint8_t a[KR_SERIAL_LEN], b[KR_SERIAL_LEN];
	int i;

	for (i = 0; i < 500; i++) {
		assert_int_equal(kr_ca_random_serial(tok, NULL, NULL, a), 0);
		assert_true(a[0] >= 1 && a[0] <= 0x7f);
	}
	assert_int_equal(kr_ca_random_serial(tok, NULL, NULL, b), 0);
	assert_memory_not_equal(a, b, KR_SERIAL_LEN);
	used_calls = 0;
	assert_int_equal(kr_ca_random_serial(tok, used_first, NULL, a), 0);
	assert_true(used_calls == 2);
	assert_int_equal(kr_ca_random_serial(tok, used_always, NULL, a),
	    KR_ERR_EXISTS);
}

/*
 * Two struct kr_hsm on one module (runs last): freeing the one that
 * initialised the module must not finalize it under the other.
 */
static void
test_two_instances(void **s)
{
	struct kr_hsm *h2 = NULL;
	struct kr_token *t = NULL;
	uint8_t rnd[8];

	assert_int_equal(kr_hsm_load(kr_hsm_module(hsm), &h2), 0);
	assert_int_equal(kr_token_open(h2, "t2", "5678", 4, &t), 0);
	kr_token_close(tok);
	tok = NULL;
	kr_hsm_free(hsm);	/* the first user */
	hsm = NULL;
	if (kr_token_random(t, rnd, sizeof(rnd)) != 0)
		fail_msg("%s", kr_err_detail());
	kr_token_close(t);
	kr_hsm_free(h2);	/* the last user finalizes */
}

static void
test_key_type_names(void **s)
{
	assert_int_equal(kr_key_type_parse("p256"), KR_KEY_P256);
	assert_int_equal(kr_key_type_parse("ed25519"), KR_KEY_ED25519);
	assert_int_equal(kr_key_type_parse("P256"), KR_KEY_NONE);
	assert_string_equal(kr_key_type_name(KR_KEY_RSA3072), "rsa3072");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_type_names),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_token_errors),
		cmocka_unit_test(test_generate_find_clash),
		cmocka_unit_test(test_sign_raw_all_types),
		cmocka_unit_test(test_sign_sha256),
		cmocka_unit_test(test_two_handles_libp11),
		cmocka_unit_test(test_lost_session_recovers),
		cmocka_unit_test(test_serials),
		cmocka_unit_test(test_two_instances),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
