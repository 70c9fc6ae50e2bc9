/*
 * test_ca_verify.c - the check after every HSM signature
 * (kr_ca_verify_tbs): a good signature passes with and without the
 * per-thread context cache; a flipped bit, another key's signature or
 * other bytes fail; a cache made for one key is replaced, not reused,
 * when the key changes; every key type takes its own path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>

#include "ca/ca.h"
#include "ca/ca_int.h"

static EVP_PKEY *
keygen(enum kr_key_type t)
{
	EVP_PKEY *k = NULL;

	switch (t) {
	case KR_KEY_P256:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case KR_KEY_P384:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case KR_KEY_RSA3072:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	case KR_KEY_ED25519:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	default:
		break;
	}
	assert_non_null(k);
	return k;
}

/* What the HSM returns: the signature over msg with k (t's digest). */
static size_t
sign(EVP_PKEY *k, enum kr_key_type t, const uint8_t *msg, size_t len,
    uint8_t *sig, size_t cap)
{
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	size_t n = cap;

	assert_non_null(mc);
	assert_int_equal(EVP_DigestSignInit(mc, NULL, kr_ca_md(t), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(mc, sig, &n, msg, len), 1);
	EVP_MD_CTX_free(mc);
	return n;
}

static void
test_types(void **state)
{
	static const enum kr_key_type types[] = { KR_KEY_P256, KR_KEY_P384,
	    KR_KEY_RSA3072, KR_KEY_ED25519 };
	static const uint8_t tbs[] = "a TBSCertificate stands here";
	static const uint8_t other[] = "a TBSCertificate stands there";
	uint8_t sig[512], sig2[512];
	EVP_PKEY_CTX *cache = NULL;
	size_t i, n, n2;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		enum kr_key_type t = types[i];
		EVP_PKEY *k = keygen(t), *k2 = keygen(t);

		n = sign(k, t, tbs, sizeof(tbs), sig, sizeof(sig));
		n2 = sign(k2, t, tbs, sizeof(tbs), sig2, sizeof(sig2));
		/* Good, twice through the cache, once without it. */
		assert_int_equal(kr_ca_verify_tbs(k, t, &cache, tbs,
		    sizeof(tbs), sig, n), 1);
		assert_int_equal(kr_ca_verify_tbs(k, t, &cache, tbs,
		    sizeof(tbs), sig, n), 1);
		assert_int_equal(kr_ca_verify_tbs(k, t, NULL, tbs,
		    sizeof(tbs), sig, n), 1);
		/* Other bytes, another key's signature. */
		assert_int_equal(kr_ca_verify_tbs(k, t, &cache, other,
		    sizeof(other), sig, n), 0);
		assert_int_equal(kr_ca_verify_tbs(k, t, &cache, tbs,
		    sizeof(tbs), sig2, n2), 0);
		/* A flipped bit anywhere in the signature. */
		sig[n / 2] ^= 0x10;
		assert_int_equal(kr_ca_verify_tbs(k, t, &cache, tbs,
		    sizeof(tbs), sig, n), 0);
		assert_int_equal(kr_ca_verify_tbs(k, t, NULL, tbs,
		    sizeof(tbs), sig, n), 0);
		sig[n / 2] ^= 0x10;
		/* The key changes: the cache follows it, both ways. */
		assert_int_equal(kr_ca_verify_tbs(k2, t, &cache, tbs,
		    sizeof(tbs), sig2, n2), 1);
		assert_int_equal(kr_ca_verify_tbs(k2, t, &cache, tbs,
		    sizeof(tbs), sig, n), 0);
		assert_int_equal(kr_ca_verify_tbs(k, t, &cache, tbs,
		    sizeof(tbs), sig, n), 1);
		if (t == KR_KEY_ED25519)
			assert_null(cache);	/* no pre-hashed form */
		else
			assert_non_null(cache);
		EVP_PKEY_free(k);
		EVP_PKEY_free(k2);
		EVP_PKEY_CTX_free(cache);	/* it holds its own reference */
		cache = NULL;
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
