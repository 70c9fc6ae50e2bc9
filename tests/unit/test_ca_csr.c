/*
 * test_ca_csr.c - CSR intake: PEM and DER accepted; bad signature,
 * truncation, trailing data, size cap, unsupported keys, profile misfit
 * each refused with its code and message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "ca/ca_int.h"
#include "lib/util.h"

/* A DER CSR for a fresh key of the named algorithm. */
static size_t
mkcsr(const char *alg, const char *param, uint8_t **der)
{
	EVP_PKEY *k = param != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, alg, param) :
	    EVP_PKEY_Q_keygen(NULL, NULL, alg);
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = NULL;
	int len;

	if (strcmp(alg, "RSA") == 0) {
		EVP_PKEY_free(k);
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	}
	assert_non_null(k);
	assert_int_equal(kr_ca_parse_dn("/CN=csr", &n), 0);
	assert_int_equal(X509_REQ_set_subject_name(req, n), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
	assert_true(X509_REQ_sign(req, k, strcmp(alg, "ED25519") == 0 ? NULL :
	    EVP_sha256()) > 0);
	*der = NULL;
	len = i2d_X509_REQ(req, der);
	assert_true(len > 0);
	X509_NAME_free(n);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return (size_t)len;
}

static char *
to_pem(const uint8_t *der, size_t len, size_t *plen)
{
	const unsigned char *q = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &q, (long)len);
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	assert_non_null(req);
	assert_int_equal(PEM_write_bio_X509_REQ(b, req), 1);
	n = BIO_get_mem_data(b, &data);
	out = malloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*plen = (size_t)n;
	BIO_free(b);
	X509_REQ_free(req);
	return out;
}

static void
test_good(void **s)
{
	struct kr_csr *c = NULL;
	struct kr_config cfg;
	uint8_t *der;
	size_t len = mkcsr("EC", "P-256", &der), plen;
	char *pem = to_pem(der, len, &plen), *pem2;

	kr_config_defaults(&cfg);
	assert_int_equal(kr_csr_parse("a.der", der, len, &c), 0);
	assert_int_equal(kr_csr_key_type(c), KR_KEY_P256);
	assert_int_equal(kr_csr_check_profile(c, &cfg.device), 0);
	assert_string_equal(kr_csr_name(c), "a.der");
	kr_csr_free(c);
	assert_int_equal(kr_csr_parse("a.pem", (uint8_t *)pem, plen, &c), 0);
	kr_csr_free(c);
	/* Whitespace around PEM is fine; anything else is not. */
	pem2 = malloc(plen + 8);
	memcpy(pem2, "\n\n", 2);
	memcpy(pem2 + 2, pem, plen);
	memcpy(pem2 + 2 + plen, "\n\n", 2);
	assert_int_equal(kr_csr_parse("b.pem", (uint8_t *)pem2, plen + 4, &c),
	    0);
	kr_csr_free(c);
	memcpy(pem2 + 2 + plen, "xx", 2);
	assert_int_equal(kr_csr_parse("c.pem", (uint8_t *)pem2, plen + 4, &c),
	    KR_ERR_FORMAT);
	assert_string_equal(kr_err_detail(), "c.pem: data after the "
	    "certificate request");
	free(pem2);
	free(pem);
	OPENSSL_free(der);
}

static void
test_refused(void **s)
{
	struct kr_csr *c = NULL;
	struct kr_config cfg;
	uint8_t *der, *big, *rsa, *p384, *ed;
	size_t len = mkcsr("EC", "P-256", &der), rlen, plen, elen;

	kr_config_defaults(&cfg);
	/* Bad signature: flip the last byte (inside the signature). */
	der[len - 1] ^= 1;
	assert_int_equal(kr_csr_parse("x", der, len, &c), KR_ERR_SIGNATURE);
	assert_string_equal(kr_err_detail(), "x: CSR signature does not verify "
	    "(no proof of possession)");
	der[len - 1] ^= 1;
	/* Truncated anywhere. */
	assert_int_equal(kr_csr_parse("x", der, len - 1, &c), KR_ERR_FORMAT);
	assert_int_equal(kr_csr_parse("x", der, 10, &c), KR_ERR_FORMAT);
	assert_string_equal(kr_err_detail(), "x: not a DER certificate request "
	    "(truncated or corrupt)");
	assert_int_equal(kr_csr_parse("x", der, 0, &c), KR_ERR_FORMAT);
	assert_string_equal(kr_err_detail(), "x: empty");
	/* Trailing data. */
	big = calloc(1, KR_CSR_MAX + 1);
	memcpy(big, der, len);
	assert_int_equal(kr_csr_parse("x", big, len + 3, &c), KR_ERR_FORMAT);
	assert_string_equal(kr_err_detail(), "x: 3 bytes after the certificate "
	    "request");
	/* Size cap. */
	assert_int_equal(kr_csr_parse("x", big, KR_CSR_MAX + 1, &c),
	    KR_ERR_TOO_LARGE);
	assert_string_equal(kr_err_detail(), "x: 16385 bytes, limit 16384");
	assert_null(c);
	/* Keys we never certify. */
	rlen = mkcsr("RSA", NULL, &rsa);
	assert_int_equal(kr_csr_parse("r", rsa, rlen, &c), KR_ERR_UNSUPPORTED);
	assert_string_equal(kr_err_detail(), "r: key type RSA-2048 not "
	    "supported (p256, p384, rsa3072, ed25519)");
	/* Supported, but not by the default device profile. */
	plen = mkcsr("EC", "P-384", &p384);
	assert_int_equal(kr_csr_parse("p", p384, plen, &c), 0);
	assert_int_equal(kr_spki_key_type(X509_REQ_get_X509_PUBKEY(
	    kr_csr_req(c))), KR_KEY_P384);
	assert_int_equal(kr_csr_check_profile(c, &cfg.device), KR_ERR_POLICY);
	assert_string_equal(kr_err_detail(), "p: key type p384 not allowed by "
	    "profile device (allowed: p256)");
	kr_csr_free(c);
	elen = mkcsr("ED25519", NULL, &ed);
	assert_int_equal(kr_csr_parse("e", ed, elen, &c), 0);
	assert_int_equal(kr_csr_key_type(c), KR_KEY_ED25519);
	/* The SPKI classifier (no key decoding) agrees with the decoder. */
	assert_int_equal(kr_spki_key_type(X509_REQ_get_X509_PUBKEY(
	    kr_csr_req(c))), KR_KEY_ED25519);
	cfg.device.algorithms |= KR_KEY_BIT(KR_KEY_ED25519);
	assert_int_equal(kr_csr_check_profile(c, &cfg.device), 0);
	kr_csr_free(c);
	free(big);
	OPENSSL_free(der);
	OPENSSL_free(rsa);
	OPENSSL_free(p384);
	OPENSSL_free(ed);
}

/*
 * The P-256/P-384 fast path (ca/csr.c) reads the same request as OpenSSL:
 * same subject, SPKI bytes, key and type; a bad signature falls through
 * to the full path and its message.
 */
static void
test_fast_path_same(void **s)
{
	static const char *const curves[] = { "P-256", "P-384" };
	uint8_t *der = NULL, *a = NULL, *b = NULL;
	const unsigned char *q;
	struct kr_csr *c = NULL;
	X509_REQ *ref = NULL;
	size_t len, i;
	int na, nb;

	for (i = 0; i < 2; i++) {
		len = mkcsr("EC", curves[i], &der);
		assert_int_equal(kr_csr_parse("f.csr", der, len, &c), 0);
		q = der;
		assert_non_null(ref = d2i_X509_REQ(NULL, &q, (long)len));
		assert_int_equal(X509_NAME_cmp(X509_REQ_get_subject_name(ref),
		    X509_REQ_get_subject_name(kr_csr_req(c))), 0);
		na = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(ref), &a);
		nb = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(kr_csr_req(c)),
		    &b);
		assert_true(na > 0 && na == nb);
		assert_memory_equal(a, b, (size_t)na);
		assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(ref),
		    kr_csr_pubkey(c)), 1);
		assert_int_equal(kr_csr_key_type(c), i == 0 ? KR_KEY_P256 :
		    KR_KEY_P384);
		assert_int_equal(kr_key_type_of(kr_csr_pubkey(c)),
		    kr_csr_key_type(c));
		kr_csr_free(c);
		c = NULL;
		/* one flipped bit in the signature */
		der[len - 3] ^= 0x01;
		assert_int_equal(kr_csr_parse("f.csr", der, len, &c),
		    KR_ERR_SIGNATURE);
		assert_string_equal(kr_err_detail(), "f.csr: CSR signature "
		    "does not verify (no proof of possession)");
		assert_null(c);
		OPENSSL_free(a);
		OPENSSL_free(b);
		a = b = NULL;
		X509_REQ_free(ref);
		OPENSSL_free(der);
		der = NULL;
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_fast_path_same),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
