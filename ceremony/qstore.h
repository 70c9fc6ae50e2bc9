/*
 * qstore.h - share sets in the LMDB DBI "quorum" of the audit environment
 * (docs/STATE.md). Rows:
 *   "set/<16 hex id>"   -> JSON of the set (ceremony/quorum.h)
 *   "active/<label>"    -> 16 hex id of the set that unlocks <label> now
 * Writes go through the caller's audit transaction (kr_ltx_mdb) so a set
 * and the log entry that explains it commit together.
 */
#ifndef KR_QSTORE_H
#define KR_QSTORE_H

#include <stddef.h>

#include <lmdb.h>

#include "audit/audit.h"
#include "ceremony/quorum.h"

#define KR_QUORUM_DBI "quorum"

/*
 * Store set (insert or replace its row); with make_active it becomes the
 * set that unlocks its label. Errors: KR_ERR_LMDB, KR_ERR_MAP_FULL, KR_ERR_ALLOC.
 */
int kr_qstore_put(struct kr_log *log, MDB_txn *txn, const struct kr_qset *set,
    int make_active) KR_WUR;

/* The set with this id (*out malloc'd). KR_ERR_NOT_FOUND if none. */
int kr_qstore_get(struct kr_log *log, MDB_txn *txn,
    const uint8_t id[KR_Q_ID_LEN], struct kr_qset **out) KR_WUR;

/*
 * The active set for label (*out malloc'd). KR_ERR_STATE "no share set
 * for token role 'root' (run the genesis ceremony)" if none.
 */
int kr_qstore_active(struct kr_log *log, MDB_txn *txn, const char *label,
    struct kr_qset **out) KR_WUR;

/* Every stored set (array of malloc'd sets; free with kr_qstore_free). */
int kr_qstore_all(struct kr_log *log, MDB_txn *txn, struct kr_qset ***out,
    size_t *n) KR_WUR;
void kr_qstore_free(struct kr_qset **v, size_t n);

#endif
