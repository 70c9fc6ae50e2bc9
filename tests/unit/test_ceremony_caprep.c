/*
 * test_ceremony_caprep.c - the log-before-release preparation of CA
 * certificates (ca/calog.h kr_calog_prepare_ca / kr_calog_sign_ca, used
 * by `keyroom ca root|intermediate` and the ceremony steps) on a real
 * SoftHSM2 token: the prepared TBS equals, byte for byte, the TBS that
 * kr_ca_make_root / kr_ca_make_intermediate sign for the same inputs (so
 * the logged intent matches what the CA core would issue), the HSM
 * signature is over exactly the prepared TBS, a prepared certificate is
 * signed once, and the refusals are named.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509.h>

#include "ca/ca.h"
#include "ca/calog.h"
#include "ca/config.h"
#include "ca/hsm.h"
#include "lib/util.h"

static char dir[] = "/tmp/kr-caprep-XXXXXX";
static struct kr_hsm *hsm;
static struct kr_token *tok;
static struct kr_key *rkey, *ikey;
static struct kr_config cfg;

static int
setup(void **s)
{
	char conf[512], path[600], module[512];
	FILE *f;

	(void)s;
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
	kr_config_defaults(&cfg);
	cfg.root.algorithm = KR_KEY_P256;
	cfg.root.algorithms = KR_KEY_BIT(KR_KEY_P256);
	cfg.intermediate.algorithm = KR_KEY_P256;
	cfg.intermediate.algorithms = KR_KEY_BIT(KR_KEY_P256);
	snprintf(cfg.intermediate.crl_url, sizeof(cfg.intermediate.crl_url),
	    "http://crl.example/int.crl");
	snprintf(cfg.intermediate.aia_url, sizeof(cfg.intermediate.aia_url),
	    "http://ca.example/root.crt");
	if (kr_hsm_find_softhsm(module, sizeof(module)) != 0 ||
	    kr_hsm_load(module, &hsm) != 0 ||
	    kr_hsm_init_token(hsm, "t", "so-pin-1", 8, "1234", 4) != 0 ||
	    kr_token_open(hsm, "t", "1234", 4, &tok) != 0 ||
	    kr_token_generate(tok, KR_KEY_P256, "root", &rkey) != 0 ||
	    kr_token_generate(tok, KR_KEY_P256, "int", &ikey) != 0)
		return -1;
	return 0;
}

static int
teardown(void **s)
{
	char cmd[128];

	(void)s;
	kr_key_free(rkey);
	kr_key_free(ikey);
	kr_token_close(tok);
	kr_hsm_free(hsm);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
assert_tbs_equal(X509 *a, const uint8_t *tbs, size_t len)
{
	unsigned char *p = NULL;
	int n = i2d_re_X509_tbs(a, &p);

	assert_true(n > 0);
	assert_int_equal((size_t)n, len);
	assert_memory_equal(p, tbs, len);
	OPENSSL_free(p);
}

static void
test_root_and_intermediate(void **s)
{
	uint8_t serial[KR_SERIAL_LEN] = { 0x11, 2, 3, 4, 5, 6, 7, 8, 9, 10,
	    11, 12, 13, 14, 15, 16 };
	uint8_t serial2[KR_SERIAL_LEN] = { 0x22, 2, 3 };
	struct kr_caprep p, q;
	struct kr_issuer iss;
	X509 *core = NULL, *root = NULL, *icore = NULL, *inter = NULL;
	time_t now = 1795000000;	/* fixed: same validity both ways */

	(void)s;
	assert_int_equal(kr_ca_make_root(&cfg.root, rkey, serial, now,
	    &core), 0);
	assert_int_equal(kr_calog_prepare_ca(&cfg.root, rkey, NULL,
	    kr_hsm_pubkey(rkey), serial, now, &p), 0);
	assert_tbs_equal(core, p.tbs, p.tbslen);
	assert_int_equal(kr_calog_sign_ca(&p, rkey, &root), 0);
	assert_tbs_equal(root, p.tbs, p.tbslen);
	assert_int_equal(X509_verify(root, kr_hsm_pubkey(rkey)), 1);
	/* Once only. */
	X509_free(root);
	root = NULL;
	assert_int_equal(kr_calog_sign_ca(&p, rkey, &root), KR_ERR_STATE);
	assert_null(root);
	assert_int_equal(kr_calog_sign_ca(&p, rkey, &root), KR_ERR_STATE);
	kr_calog_caprep_free(&p);

	iss.cert = core;
	iss.key = rkey;
	assert_int_equal(kr_ca_make_intermediate(&cfg.intermediate, &iss,
	    kr_hsm_pubkey(ikey), serial2, now, &icore), 0);
	assert_int_equal(kr_calog_prepare_ca(&cfg.intermediate, rkey, core,
	    kr_hsm_pubkey(ikey), serial2, now, &q), 0);
	assert_tbs_equal(icore, q.tbs, q.tbslen);
	assert_int_equal(kr_calog_sign_ca(&q, rkey, &inter), 0);
	assert_int_equal(X509_verify(inter, X509_get0_pubkey(core)), 1);
	assert_int_equal(kr_lint_cert(inter, &cfg.intermediate, core), 0);
	kr_calog_caprep_free(&q);
	X509_free(inter);
	X509_free(icore);
	X509_free(core);
}

static void
assert_err(int r, int code, const char *needle)
{
	if (r != code || strstr(kr_err_detail(), needle) == NULL)
		fail_msg("got %d '%s', want %d with '%s'", r, kr_err_detail(),
		    code, needle);
}

static void
test_refusals(void **s)
{
	uint8_t serial[KR_SERIAL_LEN] = { 0x33, 1 };
	struct kr_profile prof = cfg.root;
	struct kr_caprep p;
	X509 *root = NULL;

	(void)s;
	/* An intermediate profile for a root. */
	assert_err(kr_calog_prepare_ca(&cfg.intermediate, rkey, NULL,
	    kr_hsm_pubkey(rkey), serial, time(NULL), &p),
	    KR_ERR_INVALID_ARGUMENT, "does not fit a root certificate");
	/* Key type other than the profile's. */
	prof.algorithm = KR_KEY_P384;
	assert_err(kr_calog_prepare_ca(&prof, rkey, NULL, kr_hsm_pubkey(rkey),
	    serial, time(NULL), &p), KR_ERR_POLICY,
	    "root key is p256, profile root wants p384");
	/* A root whose signer is another key. */
	assert_int_equal(kr_calog_prepare_ca(&cfg.root, ikey, NULL,
	    kr_hsm_pubkey(rkey), serial, time(NULL), &p), KR_ERR_KEY_MISMATCH);
	/* An intermediate signed by a key that is not the issuer's. */
	assert_int_equal(kr_ca_make_root(&cfg.root, rkey, serial, time(NULL),
	    &root), 0);
	assert_int_equal(kr_calog_prepare_ca(&cfg.intermediate, ikey, root,
	    kr_hsm_pubkey(ikey), serial, time(NULL), &p), KR_ERR_KEY_MISMATCH);
	X509_free(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_and_intermediate),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
