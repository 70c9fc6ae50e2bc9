/*
 * test_merkle.c - RFC 6962 hashing, tlog storage order, and RFC 9162
 * proofs: generated proofs round-trip, and every vector in
 * ../shared/vectors/rfc6962/ gives its expected verdict (skipped when
 * the vectors are absent).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "audit/merkle.h"
#include "audit/note.h"
#include "lib/util.h"

static const char *
vectors(void)
{
	const char *v = getenv("KEYROOM_VECTORS");
	static char buf[4096];
	DIR *d;

	if (v == NULL)
		v = "../shared/vectors/rfc6962";
	snprintf(buf, sizeof(buf), "%s", v);
	if ((d = opendir(buf)) == NULL)
		return NULL;
	closedir(d);
	return buf;
}

/* In-memory stored hashes (tlog order). */
struct mem {
	uint8_t h[4096][32];
	uint64_t n;
};

static int
mem_read(void *arg, uint64_t idx, uint8_t out[32])
{
	struct mem *m = arg;

	if (idx >= m->n)
		return KR_ERR_NOT_FOUND;
	memcpy(out, m->h[idx], 32);
	return 0;
}

static void
mem_build(struct mem *m, struct kr_merkle_range *r, uint64_t leaves)
{
	uint8_t leaf[32], out[65][32];
	uint64_t i;
	int k, j;

	m->n = 0;
	kr_merkle_range_init(r);
	for (i = 0; i < leaves; i++) {
		kr_merkle_leaf(&i, sizeof(i), leaf);
		assert_int_equal(m->n, kr_merkle_stored_index(0, i));
		k = kr_merkle_range_append(r, leaf, out);
		for (j = 0; j < k; j++)
			memcpy(m->h[m->n++], out[j], 32);
	}
	assert_int_equal(m->n, kr_merkle_stored_count(leaves));
}

/* Reference MTH by the RFC 6962 recursion over leaf hashes. */
static void
ref_mth(uint64_t lo, uint64_t hi, uint8_t out[32])
{
	uint64_t k = 1;
	uint8_t l[32], r[32];

	if (hi - lo == 1) {
		kr_merkle_leaf(&lo, sizeof(lo), out);
		return;
	}
	while (k << 1 < hi - lo)
		k <<= 1;
	ref_mth(lo, lo + k, l);
	ref_mth(lo + k, hi, r);
	kr_merkle_node(l, r, out);
}

static void
test_storage_index(void **state)
{
	(void)state;
	/* Values from golang.org/x/mod/sumdb/tlog's order. */
	assert_int_equal(kr_merkle_stored_index(0, 0), 0);
	assert_int_equal(kr_merkle_stored_index(0, 1), 1);
	assert_int_equal(kr_merkle_stored_index(1, 0), 2);
	assert_int_equal(kr_merkle_stored_index(0, 2), 3);
	assert_int_equal(kr_merkle_stored_index(0, 3), 4);
	assert_int_equal(kr_merkle_stored_index(1, 1), 5);
	assert_int_equal(kr_merkle_stored_index(2, 0), 6);
	assert_int_equal(kr_merkle_stored_index(0, 4), 7);
	assert_int_equal(kr_merkle_stored_count(8), 15);
}

static void
test_roots_and_proofs(void **state)
{
	static struct mem m;
	struct kr_merkle_range r, lr;
	uint8_t root[32], ref[32], leaf[32], root1[32], proof[64][32];
	uint64_t n, i, s1;
	size_t pn;

	(void)state;
	for (n = 1; n <= 70; n++) {
		mem_build(&m, &r, n);
		kr_merkle_range_root(&r, root);
		ref_mth(0, n, ref);
		assert_memory_equal(root, ref, 32);
		assert_int_equal(kr_merkle_range_load(&lr, n, mem_read, &m), 0);
		kr_merkle_range_root(&lr, ref);
		assert_memory_equal(root, ref, 32);
		for (i = 0; i < n; i++) {
			assert_int_equal(kr_merkle_inclusion_proof(i, n,
			    mem_read, &m, proof, &pn), 0);
			kr_merkle_leaf(&i, sizeof(i), leaf);
			assert_int_equal(kr_merkle_verify_inclusion(i, n, leaf,
			    (const uint8_t (*)[32])proof, pn, root), 0);
			leaf[5] ^= 1;
			assert_int_equal(kr_merkle_verify_inclusion(i, n, leaf,
			    (const uint8_t (*)[32])proof, pn, root),
			    KR_ERR_TAMPERED);
		}
		for (s1 = 1; s1 <= n; s1++) {
			ref_mth(0, s1, root1);
			assert_int_equal(kr_merkle_consistency_proof(s1, n,
			    mem_read, &m, proof, &pn), 0);
			assert_int_equal(kr_merkle_verify_consistency(s1, n,
			    root1, root, (const uint8_t (*)[32])proof, pn), 0);
			if (pn > 0) {
				proof[pn - 1][0] ^= 0x80;
				assert_int_not_equal(
				    kr_merkle_verify_consistency(s1, n, root1,
				    root, (const uint8_t (*)[32])proof, pn), 0);
			}
		}
	}
}

static int
hex_or_b64_hash(json_t *j, uint8_t out[32])
{
	const char *s = json_string_value(j);
	size_t n;

	if (s == NULL)
		return -1;
	if (kr_b64_decode(s, strlen(s), out, 32, &n) != 0 || n != 32)
		return -1;
	return 0;
}

static void
test_tree_json(void **state)
{
	char path[4200];
	json_t *j, *leaves, *roots, *lh;
	struct kr_merkle_range r;
	uint8_t data[64], leaf[32], want[32], out[65][32], root[32];
	size_t i, n;
	int k;

	(void)state;
	if (vectors() == NULL)
		skip();
	snprintf(path, sizeof(path), "%s/tree.json", vectors());
	assert_non_null(j = json_load_file(path, 0, NULL));
	leaves = json_object_get(j, "leaves");
	roots = json_object_get(j, "roots");
	lh = json_object_get(j, "leaf_hashes");
	kr_merkle_range_init(&r);
	kr_merkle_range_root(&r, root);
	assert_int_equal(kr_unhex(json_string_value(json_array_get(roots, 0)),
	    want, 32), 0);
	assert_memory_equal(root, want, 32);
	for (i = 0; i < json_array_size(leaves); i++) {
		const char *hx = json_string_value(json_array_get(leaves, i));

		n = strlen(hx) / 2;
		if (n > 0)
			assert_int_equal(kr_unhex(hx, data, n), 0);
		kr_merkle_leaf(data, n, leaf);
		assert_int_equal(kr_unhex(json_string_value(
		    json_array_get(lh, i)), want, 32), 0);
		assert_memory_equal(leaf, want, 32);
		k = kr_merkle_range_append(&r, leaf, out);
		assert_int_equal(k, 1 + __builtin_ctzll(~(uint64_t)i));
		kr_merkle_range_root(&r, root);
		assert_int_equal(kr_unhex(json_string_value(
		    json_array_get(roots, i + 1)), want, 32), 0);
		assert_memory_equal(root, want, 32);
	}
	json_decref(j);
}

/* Run fn on every *.json under dir/sub; returns files seen. */
static int
each_vector(const char *sub, void (*fn)(json_t *, const char *))
{
	char dpath[4300], fpath[9000];
	struct dirent **dl = NULL, **fl = NULL;
	json_t *j;
	int nd, nf, a, b, seen = 0;

	snprintf(dpath, sizeof(dpath), "%s/%s", vectors(), sub);
	nd = scandir(dpath, &dl, NULL, alphasort);
	assert_true(nd > 0);
	for (a = 0; a < nd; a++) {
		char sd[4600];

		if (dl[a]->d_name[0] == '.') {
			free(dl[a]);
			continue;
		}
		snprintf(sd, sizeof(sd), "%s/%s", dpath, dl[a]->d_name);
		nf = scandir(sd, &fl, NULL, alphasort);
		for (b = 0; b < nf; b++) {
			if (strstr(fl[b]->d_name, ".json") != NULL) {
				snprintf(fpath, sizeof(fpath), "%s/%s", sd,
				    fl[b]->d_name);
				/* Some sizes are 2^64-1: read numbers as reals. */
				j = json_load_file(fpath,
				    JSON_DECODE_INT_AS_REAL, NULL);
				assert_non_null(j);
				fn(j, fpath);
				json_decref(j);
				seen++;
			}
			free(fl[b]);
		}
		free(fl);
		free(dl[a]);
	}
	free(dl);
	return seen;
}

/* A JSON number as u64 (saturating; reals hold up to 2^53 exactly). */
static uint64_t
num_u64(json_t *j)
{
	double d = json_number_value(j);

	if (d >= 18446744073709551615.0)
		return UINT64_MAX;
	if (d < 0)
		return UINT64_MAX;
	return (uint64_t)d;
}

/*
 * The README's deliberate edge cases: hashes not 32 bytes and
 * consistency from size 0 are rejected whatever the vector expects.
 */
static int edge_cases;

static int
load_proof(json_t *arr, uint8_t proof[][32], size_t *n)
{
	size_t i;
	int bad = 0;

	*n = json_array_size(arr);
	if (*n > 64)
		return -1;
	for (i = 0; i < *n; i++)
		if (hex_or_b64_hash(json_array_get(arr, i), proof[i]) != 0)
			bad = -1;
	return bad;
}

static void
check_inclusion(json_t *j, const char *path)
{
	uint8_t leaf[32], root[32], proof[64][32];
	size_t pn;
	int want_err = json_is_true(json_object_get(j, "wantErr")), err;
	uint64_t idx = num_u64(json_object_get(j, "leafIdx"));
	uint64_t size = num_u64(json_object_get(j, "treeSize"));

	err = hex_or_b64_hash(json_object_get(j, "leafHash"), leaf) != 0 ||
	    hex_or_b64_hash(json_object_get(j, "root"), root) != 0 ||
	    load_proof(json_object_get(j, "proof"), proof, &pn) != 0;
	if (err && !want_err) {
		edge_cases++;
		want_err = 1;
	}
	if (!err)
		err = kr_merkle_verify_inclusion(idx, size, leaf, (const uint8_t (*)[32])proof, pn,
		    root) != 0;
	if (err != want_err)
		fail_msg("%s: wantErr %d, got error %d", path, want_err, err);
}

static void
check_consistency(json_t *j, const char *path)
{
	uint8_t r1[32], r2[32], proof[64][32];
	size_t pn;
	int want_err = json_is_true(json_object_get(j, "wantErr")), err;
	uint64_t s1 = num_u64(json_object_get(j, "size1"));
	uint64_t s2 = num_u64(json_object_get(j, "size2"));

	err = hex_or_b64_hash(json_object_get(j, "root1"), r1) != 0 ||
	    hex_or_b64_hash(json_object_get(j, "root2"), r2) != 0 ||
	    load_proof(json_object_get(j, "proof"), proof, &pn) != 0 ||
	    s1 == 0;
	if (err && !want_err) {
		edge_cases++;
		want_err = 1;
	}
	if (!err)
		err = kr_merkle_verify_consistency(s1, s2, r1, r2, (const uint8_t (*)[32])proof, pn) != 0;
	if (err != want_err)
		fail_msg("%s: wantErr %d, got error %d", path, want_err, err);
}

static void
test_inclusion_vectors(void **state)
{
	(void)state;
	if (vectors() == NULL)
		skip();
	edge_cases = 0;
	assert_true(each_vector("inclusion", check_inclusion) > 40);
	assert_true(edge_cases <= 4);
}

static void
test_consistency_vectors(void **state)
{
	(void)state;
	if (vectors() == NULL)
		skip();
	edge_cases = 0;
	assert_true(each_vector("consistency", check_consistency) > 40);
	/* Only the README's edge cases may differ from wantErr. */
	assert_true(edge_cases <= 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage_index),
		cmocka_unit_test(test_roots_and_proofs),
		cmocka_unit_test(test_tree_json),
		cmocka_unit_test(test_inclusion_vectors),
		cmocka_unit_test(test_consistency_vectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
