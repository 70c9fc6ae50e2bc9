/*
 * export.h - the auditor's export (C2SP tlog-tiles directory, every
 * checkpoint, vkey, one .tlog-proof per certificate, a compact LMDB
 * copy, SHA256SUMS) and single C2SP tlog-proofs.
 */
#ifndef KR_EXPORT_H
#define KR_EXPORT_H

#include <stdint.h>

#include "audit/audit.h"

struct kr_export_stats {
	uint64_t size, checkpoints, tiles, proofs, files;
};

/*
 * Export into dir, which must not exist (KR_ERR_EXISTS). The LMDB copy
 * is made first (mdb_env_copy2 + MDB_CP_COMPACT) and everything else is
 * derived from that copy in one read transaction, so all files describe
 * the same snapshot.
 */
int kr_audit_export(struct kr_log *log, const char *dir,
    struct kr_export_stats *st) KR_WUR;

/*
 * The tlog-proof of entry `index` against the latest stored checkpoint
 * (malloc'd text, free()): "c2sp.org/tlog-proof@v1", "extra
 * <base64(entry)>", "index N", the inclusion proof hashes, a blank line
 * and the signed checkpoint.
 */
int kr_audit_proof(struct kr_log *log, MDB_txn *txn, uint64_t index,
    char **out) KR_WUR;

/* tlog-tiles path element of tile index n: "x001/x234/067". */
int kr_tile_path(uint64_t n, char *out, size_t cap) KR_WUR;

#endif
