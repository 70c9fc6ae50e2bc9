/*
 * merkle.h - RFC 6962 §2.1 Merkle tree hashing, the
 * golang.org/x/mod/sumdb/tlog storage order for stored hashes, and
 * RFC 9162 §2.1.3-2.1.4 inclusion and consistency proofs.
 *
 * Hashes are 32-byte SHA-256. Proof generation reads stored hashes
 * through a callback so the same code works on LMDB and in memory.
 */
#ifndef KR_MERKLE_H
#define KR_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define KR_MERKLE_MAX_PROOF	64	/* hashes in any proof (2^64 leaves) */

/* SHA-256(0x00 || data). */
void kr_merkle_leaf(const void *data, size_t len, uint8_t out[32]);
/* SHA-256(0x01 || l || r); out may alias l or r. */
void kr_merkle_node(const uint8_t l[32], const uint8_t r[32],
    uint8_t out[32]);
/* Root of the empty tree: SHA-256(""). */
void kr_merkle_empty(uint8_t out[32]);

/* tlog StoredHashIndex: storage index of the n'th hash at `level`. */
uint64_t kr_merkle_stored_index(int level, uint64_t n);
/* Number of stored hashes for a tree of n leaves: 2n - popcount(n). */
uint64_t kr_merkle_stored_count(uint64_t n);

/*
 * Compact range: the roots of the perfect subtrees covering [0, size),
 * largest first (at most 64). Appending a leaf returns the hashes that
 * get stored for it, in storage order (leaf, then each completed
 * parent): `out` gets 1 + trailing ones of the old size hashes.
 */
struct kr_merkle_range {
	uint64_t size;
	int n;			/* subtree roots held */
	uint8_t h[64][32];	/* h[0] largest subtree */
};
void kr_merkle_range_init(struct kr_merkle_range *r);
/* Returns the number of hashes written to out (<= 65). */
int kr_merkle_range_append(struct kr_merkle_range *r,
    const uint8_t leaf[32], uint8_t out[65][32]);
/* Root hash of the range (the empty-tree hash for size 0). */
void kr_merkle_range_root(const struct kr_merkle_range *r, uint8_t out[32]);

/* Reads the stored hash with storage index idx. 0 or KR_ERR_*. */
typedef int (*kr_hash_reader)(void *arg, uint64_t idx, uint8_t out[32]);

/*
 * Load the compact range of a tree of `size` leaves from stored hashes.
 */
int kr_merkle_range_load(struct kr_merkle_range *r, uint64_t size,
    kr_hash_reader rd, void *arg) KR_WUR;

/* Root of the first `size` leaves from stored hashes. */
int kr_merkle_tree_hash(uint64_t size, kr_hash_reader rd, void *arg,
    uint8_t out[32]) KR_WUR;

/*
 * Inclusion proof (RFC 9162 §2.1.3.1) of leaf `index` in the tree of
 * `size` leaves. proof holds KR_MERKLE_MAX_PROOF hashes; *n is set.
 */
int kr_merkle_inclusion_proof(uint64_t index, uint64_t size,
    kr_hash_reader rd, void *arg, uint8_t proof[][32], size_t *n) KR_WUR;

/* Consistency proof (RFC 9162 §2.1.4.1) from size1 to size2. */
int kr_merkle_consistency_proof(uint64_t size1, uint64_t size2,
    kr_hash_reader rd, void *arg, uint8_t proof[][32], size_t *n) KR_WUR;

/*
 * Verify an inclusion proof (RFC 9162 §2.1.3.2). 0 if it verifies,
 * KR_ERR_TAMPERED (with detail) otherwise, KR_ERR_INVALID_ARGUMENT for
 * index >= size.
 */
int kr_merkle_verify_inclusion(uint64_t index, uint64_t size,
    const uint8_t leaf[32], const uint8_t (*proof)[32], size_t n,
    const uint8_t root[32]) KR_WUR;

/*
 * Verify a consistency proof (RFC 9162 §2.1.4.2). Stricter than the
 * RFC on the edge cases: size1 == 0 is refused, size1 == size2 needs an
 * empty proof and equal roots. 0, or KR_ERR_TAMPERED /
 * KR_ERR_INVALID_ARGUMENT.
 */
int kr_merkle_verify_consistency(uint64_t size1, uint64_t size2,
    const uint8_t root1[32], const uint8_t root2[32],
    const uint8_t (*proof)[32], size_t n) KR_WUR;

#endif
