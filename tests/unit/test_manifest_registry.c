/*
 * test_manifest_registry.c - the device registry rows in a real LMDB
 * file: record, no-op re-import, clone refusal, lookup by id and by key
 * (also from a compressed-point SPKI), listing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/util.h"
#include "media/registry.h"

static char dir[] = "/tmp/kr-test-registry.XXXXXX";
static MDB_env *env;

static int
setup(void **st)
{
	assert_non_null(mkdtemp(dir));
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 16 << 20), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	return 0;
}

static int
teardown(void **st)
{
	char cmd[300];

	mdb_env_close(env);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
mkdev(struct kr_device *d, const char *id, EVP_PKEY *k0, EVP_PKEY *k1)
{
	EVP_PKEY *ks[2] = { k0, k1 };
	unsigned char *der;
	size_t i;
	int dl;

	memset(d, 0, sizeof(*d));
	strcpy(d->unique_id, id);
	strcpy(d->model, "ATECC608C");
	strcpy(d->part_number, "ATECC608C-TNGTLSU-B");
	strcpy(d->group_id, "G1");
	d->version = 1;
	d->provisioned = 1748808893;
	memset(d->signer, 0x55, 32);
	memset(d->manifest, 0x66, 32);
	for (i = 0; i < 2 && ks[i] != NULL; i++) {
		der = NULL;
		assert_true((dl = i2d_PUBKEY(ks[i], &der)) > 0);
		(void)snprintf(d->keys[i].kid, sizeof(d->keys[i].kid), "%zu",
		    i);
		memcpy(d->keys[i].spki, der, (size_t)dl);
		d->keys[i].spki_len = (size_t)dl;
		d->keys[i].curve = KR_CURVE_P256;
		d->keys[i].x5c_verified = i == 0;
		d->nkeys = i + 1;
		OPENSSL_free(der);
	}
	/* content fingerprint stand-in: ids and first key byte */
	kr_sha256(d, offsetof(struct kr_device, signer), d->content);
	if (d->nkeys > 0)
		d->content[0] ^= d->keys[0].spki[d->keys[0].spki_len - 1];
}

static int
count_cb(const struct kr_device *d, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void
test_registry(void **st)
{
	EVP_PKEY *a = EVP_EC_gen("P-256"), *b = EVP_EC_gen("P-256"),
	    *c = EVP_EC_gen("P-256");
	struct kr_device d1, d2, d1b, lite, got;
	MDB_txn *txn;
	MDB_dbi dbi;
	const char *kid = NULL;
	unsigned char *cdr = NULL;
	uint8_t canon[KR_MF_SPKI_MAX];
	size_t cl;
	int added, n = 0, dl;

	mkdev(&d1, "0123aabbccddeeff01", a, b);
	mkdev(&d2, "0123aabbccddeeff02", c, NULL);
	mkdev(&d1b, "0123aabbccddeeff01", c, NULL);	/* clone: other key */
	mkdev(&lite, "0123aabbccddeeff03", NULL, NULL);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, KR_REGISTRY_DBI, MDB_CREATE,
	    &dbi), 0);
	assert_int_equal(kr_registry_put(txn, dbi, &d1, &added), 0);
	assert_int_equal(added, 1);
	assert_int_equal(kr_registry_put(txn, dbi, &d1, &added), 0);
	assert_int_equal(added, 0);			/* no-op */
	assert_int_equal(kr_registry_put(txn, dbi, &d1b, &added),
	    KR_ERR_EXISTS);
	assert_non_null(strstr(kr_err_detail(), "0123aabbccddeeff01 is "
	    "already recorded"));
	assert_int_equal(kr_registry_put(txn, dbi, &lite, &added), 0);
	assert_int_equal(added, 1);
	assert_int_equal(mdb_txn_commit(txn), 0);

	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	/* another id carrying a key already recorded: a clone too */
	mkdev(&d2, "0123aabbccddeeff02", b, NULL);
	assert_int_equal(kr_registry_put(txn, dbi, &d2, &added),
	    KR_ERR_EXISTS);
	assert_non_null(strstr(kr_err_detail(), "already recorded for device "
	    "0123aabbccddeeff01"));
	mkdev(&d2, "0123aabbccddeeff02", c, NULL);
	assert_int_equal(kr_registry_put(txn, dbi, &d2, &added), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);

	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(kr_registry_get(txn, dbi, "0123aabbccddeeff01",
	    &got), 0);
	assert_string_equal(got.part_number, "ATECC608C-TNGTLSU-B");
	assert_string_equal(got.group_id, "G1");
	assert_int_equal(got.nkeys, 2);
	assert_int_equal(got.keys[0].x5c_verified, 1);
	assert_int_equal(got.keys[1].curve, KR_CURVE_P256);
	assert_memory_equal(got.content, d1.content, 32);
	assert_memory_equal(got.keys[1].spki, d1.keys[1].spki,
	    d1.keys[1].spki_len);
	assert_int_equal((long long)got.provisioned, 1748808893LL);
	assert_int_equal(kr_registry_get(txn, dbi, "0123aabbccddeeff09",
	    &got), KR_ERR_NOT_FOUND);
	/* by key (kid 1 of d1) */
	assert_int_equal(kr_registry_find_key(txn, dbi, d1.keys[1].spki,
	    d1.keys[1].spki_len, &got, &kid), 0);
	assert_string_equal(got.unique_id, "0123aabbccddeeff01");
	assert_string_equal(kid, "1");
	/* by key, given as a compressed point: canonicalise first */
	assert_int_equal(EVP_PKEY_set_utf8_string_param(b,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"), 1);
	assert_true((dl = i2d_PUBKEY(b, &cdr)) > 0);
	assert_int_equal(dl, 59);
	assert_int_equal(kr_registry_find_key(txn, dbi, cdr, (size_t)dl, &got,
	    NULL), KR_ERR_NOT_FOUND);
	assert_int_equal(kr_spki_canon(cdr, (size_t)dl, canon, &cl), 0);
	assert_int_equal(kr_registry_find_key(txn, dbi, canon, cl, &got,
	    &kid), 0);
	assert_string_equal(kid, "1");
	assert_int_equal(kr_spki_canon((const uint8_t *)"\x30\x00", 2, canon,
	    &cl), KR_ERR_FORMAT);
	OPENSSL_free(cdr);
	assert_int_equal(kr_registry_find_key(txn, dbi, d1b.keys[0].spki,
	    d1b.keys[0].spki_len, &got, &kid), 0);	/* c belongs to d2 */
	assert_string_equal(got.unique_id, "0123aabbccddeeff02");
	assert_int_equal(kr_registry_foreach(txn, dbi, count_cb, &n), 0);
	assert_int_equal(n, 3);
	mdb_txn_abort(txn);

	/* a corrupt or truncated record is refused, never half-read */
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	{
		MDB_val k = { 20, (void *)"d/0123aabbccddeeff01" }, v;
		uint8_t copy[8192];
		size_t full;

		assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
		full = v.mv_size;
		memcpy(copy, v.mv_data, full);
		v.mv_data = copy;
		v.mv_size = full - 1;
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
		assert_int_equal(kr_registry_get(txn, dbi,
		    "0123aabbccddeeff01", &got), KR_ERR_FORMAT);
		copy[0] = 9;	/* unknown format */
		v.mv_size = full;
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
		assert_int_equal(kr_registry_get(txn, dbi,
		    "0123aabbccddeeff01", &got), KR_ERR_FORMAT);
		assert_non_null(strstr(kr_err_detail(), "is corrupt"));
	}
	mdb_txn_abort(txn);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	EVP_PKEY_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
