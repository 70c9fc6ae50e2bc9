/*
 * registry.h - the device registry in LMDB: verified manifest entries
 * (struct kr_device) by uniqueId, and an index by public key, since a CSR
 * may carry no CN.
 */
#ifndef KR_REGISTRY_H
#define KR_REGISTRY_H

#include <lmdb.h>

#include "media/manifest.h"

/*
 * Device registry: one LMDB named database KR_REGISTRY_DBI (owned by
 * media/policy, opened by the caller through the audit transaction,
 * audit/audit.h kr_log_dbi). Records are keyed "d/<uniqueId>"; an index
 * "k/<SHA-256(SPKI)>" -> uniqueId finds a device by any of its keys.
 */
#define KR_REGISTRY_DBI "registry"

/*
 * Record d. *added = 1 if new, 0 if the same content was already there
 * (no-op; if another signer vouches for it now, the record takes the new
 * signer and manifest hash: the policy decision checks the signer).
 * KR_ERR_EXISTS (message names both manifests) if the uniqueId or one of
 * its keys is recorded with different content. KR_ERR_LMDB.
 */
int kr_registry_put(MDB_txn *txn, MDB_dbi dbi, const struct kr_device *d,
    int *added) KR_WUR;

/* Look up by uniqueId (lower-case hex). KR_ERR_NOT_FOUND, KR_ERR_LMDB. */
int kr_registry_get(MDB_txn *txn, MDB_dbi dbi, const char *unique_id,
    struct kr_device *out) KR_WUR;

/*
 * Look up by public key: spki is the DER SubjectPublicKeyInfo as
 * i2d_PUBKEY writes it for the CSR's key (named curve, uncompressed point,
 * which is how manifest keys are stored; kr_spki_canon() normalises any
 * other encoding). *kid (optional) points into out->keys.
 * KR_ERR_NOT_FOUND, KR_ERR_LMDB.
 */
int kr_registry_find_key(MDB_txn *txn, MDB_dbi dbi, const uint8_t *spki,
    size_t spki_len, struct kr_device *out, const char **kid) KR_WUR;

/* Call cb for every device in uniqueId order; stops on a non-zero rc. */
int kr_registry_foreach(MDB_txn *txn, MDB_dbi dbi,
    int (*cb)(const struct kr_device *d, void *arg), void *arg) KR_WUR;

/*
 * Re-encode a DER SPKI as named-curve, uncompressed (the registry's form).
 * KR_ERR_FORMAT if it is not an EC key on a supported curve.
 */
int kr_spki_canon(const uint8_t *spki, size_t len,
    uint8_t out[KR_MF_SPKI_MAX], size_t *outlen) KR_WUR;

#endif
