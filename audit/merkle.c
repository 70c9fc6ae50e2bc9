/*
 * merkle.c - RFC 6962 tree hashing, tlog stored-hash order, RFC 9162
 * inclusion and consistency proofs (generation and verification).
 */
#include <string.h>

#include <openssl/sha.h>

#include "audit/merkle.h"
#include "lib/util.h"

void
kr_merkle_leaf(const void *data, size_t len, uint8_t out[32])
{
	static const uint8_t zero = 0x00;
	SHA256_CTX c;

	SHA256_Init(&c);
	SHA256_Update(&c, &zero, 1);
	SHA256_Update(&c, data, len);
	SHA256_Final(out, &c);
}

void
kr_merkle_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t buf[65];

	buf[0] = 0x01;
	memcpy(buf + 1, l, 32);
	memcpy(buf + 33, r, 32);
	kr_sha256(buf, sizeof(buf), out);
}

void
kr_merkle_empty(uint8_t out[32])
{
	SHA256((const uint8_t *)"", 0, out);
}

uint64_t
kr_merkle_stored_index(int level, uint64_t n)
{
	uint64_t i = 0;
	int l;

	/* Level L's n'th hash is written right after level L+1's 2n+1'th. */
	for (l = level; l > 0; l--)
		n = 2 * n + 1;
	/* Level 0's n'th hash is at n + n/2 + n/4 + ... */
	for (; n > 0; n >>= 1)
		i += n;
	return i + (uint64_t)level;
}

uint64_t
kr_merkle_stored_count(uint64_t n)
{
	return 2 * n - (uint64_t)__builtin_popcountll(n);
}

void
kr_merkle_range_init(struct kr_merkle_range *r)
{
	memset(r, 0, sizeof(*r));
}

int
kr_merkle_range_append(struct kr_merkle_range *r, const uint8_t leaf[32],
    uint8_t out[65][32])
{
	uint64_t s = r->size;
	uint8_t h[32];
	int k = 0;

	memcpy(h, leaf, 32);
	memcpy(out[k++], h, 32);
	/* Each trailing 1 bit of the old size completes a subtree. */
	while (s & 1) {
		kr_merkle_node(r->h[r->n - 1], h, h);
		r->n--;
		memcpy(out[k++], h, 32);
		s >>= 1;
	}
	memcpy(r->h[r->n++], h, 32);
	r->size++;
	return k;
}

void
kr_merkle_range_root(const struct kr_merkle_range *r, uint8_t out[32])
{
	uint8_t h[32];
	int i;

	if (r->n == 0) {
		kr_merkle_empty(out);
		return;
	}
	memcpy(h, r->h[r->n - 1], 32);
	for (i = r->n - 2; i >= 0; i--)
		kr_merkle_node(r->h[i], h, h);
	memcpy(out, h, 32);
}

int
kr_merkle_range_load(struct kr_merkle_range *r, uint64_t size,
    kr_hash_reader rd, void *arg)
{
	uint64_t start = 0;
	int level, ret;

	kr_merkle_range_init(r);
	for (level = 63; level >= 0; level--) {
		if ((size >> level & 1) == 0)
			continue;
		ret = rd(arg, kr_merkle_stored_index(level, start >> level),
		    r->h[r->n]);
		if (ret != 0)
			return ret;
		r->n++;
		start += (uint64_t)1 << level;
	}
	r->size = size;
	return 0;
}

int
kr_merkle_tree_hash(uint64_t size, kr_hash_reader rd, void *arg,
    uint8_t out[32])
{
	struct kr_merkle_range r;
	int ret;

	if ((ret = kr_merkle_range_load(&r, size, rd, arg)) != 0)
		return ret;
	kr_merkle_range_root(&r, out);
	return 0;
}

/* Largest power of two strictly less than n (n >= 2). */
static uint64_t
split_point(uint64_t n)
{
	uint64_t k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

/* MTH(D[lo:hi]) from stored hashes: perfect aligned subtrees are stored. */
static int
subtree_hash(uint64_t lo, uint64_t hi, kr_hash_reader rd, void *arg,
    uint8_t out[32])
{
	uint64_t n = hi - lo, k;
	uint8_t l[32], r[32];
	int level, ret;

	if (n == 0)
		return kr_errf(KR_ERR_INTERNAL, "empty subtree");
	if ((n & (n - 1)) == 0 && (lo & (n - 1)) == 0) {
		level = __builtin_ctzll(n);
		return rd(arg, kr_merkle_stored_index(level, lo >> level), out);
	}
	k = split_point(n);
	if ((ret = subtree_hash(lo, lo + k, rd, arg, l)) != 0 ||
	    (ret = subtree_hash(lo + k, hi, rd, arg, r)) != 0)
		return ret;
	kr_merkle_node(l, r, out);
	return 0;
}

/* PATH(m, D[lo:hi]); appends to proof in RFC order (leaf side first). */
static int
path(uint64_t m, uint64_t lo, uint64_t hi, kr_hash_reader rd, void *arg,
    uint8_t proof[][32], size_t *n)
{
	uint64_t k;
	int ret;

	if (hi - lo == 1)
		return 0;
	if (*n >= KR_MERKLE_MAX_PROOF)
		return kr_errf(KR_ERR_INTERNAL, "proof too long");
	k = split_point(hi - lo);
	if (m < k) {
		if ((ret = path(m, lo, lo + k, rd, arg, proof, n)) != 0)
			return ret;
		return subtree_hash(lo + k, hi, rd, arg, proof[(*n)++]);
	}
	if ((ret = path(m - k, lo + k, hi, rd, arg, proof, n)) != 0)
		return ret;
	return subtree_hash(lo, lo + k, rd, arg, proof[(*n)++]);
}

int
kr_merkle_inclusion_proof(uint64_t index, uint64_t size, kr_hash_reader rd,
    void *arg, uint8_t proof[][32], size_t *n)
{
	*n = 0;
	if (index >= size)
		return kr_errf(KR_ERR_INVALID_ARGUMENT,
		    "leaf %llu not in tree of size %llu",
		    (unsigned long long)index, (unsigned long long)size);
	return path(index, 0, size, rd, arg, proof, n);
}

/* SUBPROOF(m, D[lo:hi], b). */
static int
subproof(uint64_t m, uint64_t lo, uint64_t hi, int b, kr_hash_reader rd,
    void *arg, uint8_t proof[][32], size_t *n)
{
	uint64_t k, sz = hi - lo;
	int ret;

	if (*n >= KR_MERKLE_MAX_PROOF)
		return kr_errf(KR_ERR_INTERNAL, "proof too long");
	if (m == sz) {
		if (b)
			return 0;
		return subtree_hash(lo, hi, rd, arg, proof[(*n)++]);
	}
	k = split_point(sz);
	if (m <= k) {
		if ((ret = subproof(m, lo, lo + k, b, rd, arg, proof, n)) != 0)
			return ret;
		return subtree_hash(lo + k, hi, rd, arg, proof[(*n)++]);
	}
	if ((ret = subproof(m - k, lo + k, hi, 0, rd, arg, proof, n)) != 0)
		return ret;
	return subtree_hash(lo, lo + k, rd, arg, proof[(*n)++]);
}

int
kr_merkle_consistency_proof(uint64_t size1, uint64_t size2,
    kr_hash_reader rd, void *arg, uint8_t proof[][32], size_t *n)
{
	*n = 0;
	if (size1 == 0 || size1 > size2)
		return kr_errf(KR_ERR_INVALID_ARGUMENT,
		    "no consistency proof from size %llu to %llu",
		    (unsigned long long)size1, (unsigned long long)size2);
	if (size1 == size2)
		return 0;
	return subproof(size1, 0, size2, 1, rd, arg, proof, n);
}

int
kr_merkle_verify_inclusion(uint64_t index, uint64_t size,
    const uint8_t leaf[32], const uint8_t (*proof)[32], size_t n,
    const uint8_t root[32])
{
	uint64_t fn = index, sn;
	uint8_t r[32];
	size_t i;

	if (index >= size)
		return kr_errf(KR_ERR_INVALID_ARGUMENT,
		    "leaf index %llu not below tree size %llu",
		    (unsigned long long)index, (unsigned long long)size);
	sn = size - 1;
	memcpy(r, leaf, 32);
	for (i = 0; i < n; i++) {
		if (sn == 0)
			return kr_errf(KR_ERR_TAMPERED,
			    "inclusion proof too long");
		if ((fn & 1) || fn == sn) {
			kr_merkle_node(proof[i], r, r);
			if ((fn & 1) == 0)
				while (fn != 0 && (fn & 1) == 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else
			kr_merkle_node(r, proof[i], r);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return kr_errf(KR_ERR_TAMPERED, "inclusion proof too short");
	if (memcmp(r, root, 32) != 0)
		return kr_errf(KR_ERR_TAMPERED,
		    "inclusion proof does not lead to the root");
	return 0;
}

int
kr_merkle_verify_consistency(uint64_t size1, uint64_t size2,
    const uint8_t root1[32], const uint8_t root2[32],
    const uint8_t (*proof)[32], size_t n)
{
	uint64_t fn, sn;
	uint8_t fr[32], sr[32];
	const uint8_t *c;
	size_t i = 0;

	if (size1 == 0)
		return kr_errf(KR_ERR_INVALID_ARGUMENT,
		    "consistency from an empty tree is refused");
	if (size1 > size2)
		return kr_errf(KR_ERR_ROLLBACK,
		    "tree size %llu is smaller than earlier size %llu",
		    (unsigned long long)size2, (unsigned long long)size1);
	if (size1 == size2) {
		if (n != 0)
			return kr_errf(KR_ERR_TAMPERED,
			    "non-empty consistency proof for equal sizes");
		if (memcmp(root1, root2, 32) != 0)
			return kr_errf(KR_ERR_TAMPERED,
			    "different roots for the same tree size %llu",
			    (unsigned long long)size1);
		return 0;
	}
	if (n == 0)
		return kr_errf(KR_ERR_TAMPERED, "empty consistency proof");
	fn = size1 - 1;
	sn = size2 - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	/* A power-of-two first tree is its own first proof node. */
	if ((size1 & (size1 - 1)) == 0) {
		memcpy(fr, root1, 32);
	} else {
		memcpy(fr, proof[0], 32);
		i = 1;
	}
	memcpy(sr, fr, 32);
	for (; i < n; i++) {
		c = proof[i];
		if (sn == 0)
			return kr_errf(KR_ERR_TAMPERED,
			    "consistency proof too long");
		if ((fn & 1) || fn == sn) {
			kr_merkle_node(c, fr, fr);
			kr_merkle_node(c, sr, sr);
			if ((fn & 1) == 0)
				while (fn != 0 && (fn & 1) == 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else
			kr_merkle_node(sr, c, sr);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return kr_errf(KR_ERR_TAMPERED, "consistency proof too short");
	if (memcmp(fr, root1, 32) != 0)
		return kr_errf(KR_ERR_TAMPERED,
		    "consistency proof does not lead to the first root");
	if (memcmp(sr, root2, 32) != 0)
		return kr_errf(KR_ERR_TAMPERED,
		    "consistency proof does not lead to the second root");
	return 0;
}
