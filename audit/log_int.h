/* log_int.h - audit/ internal: the log and transaction structures. */
#ifndef KR_LOG_INT_H
#define KR_LOG_INT_H

#include "audit/audit.h"
#include "audit/merkle.h"

#define KR_LOG_FORMAT	"keyroom-log/1"

struct kr_log {
	MDB_env *env;
	int rdonly;
	size_t mapsize, mapmax;
	char origin[KR_LOG_MAX_ORIGIN + 1];
	MDB_dbi meta, entries, hashes, checkpoints;
	MDB_dbi issued, serials, devcerts, intents;
	unsigned long map_lo, map_hi;	/* data.mdb mapping (drop_pages) */
	int hold_map;			/* readers in other threads: no remap */
	int grow_wanted;		/* a grow deferred by hold_map */
};

struct kr_ltx {
	struct kr_log *log;
	MDB_txn *txn;
	uint64_t size0;			/* entries at begin */
	uint64_t nhash;			/* stored hashes so far */
	struct kr_merkle_range range;
	int err;			/* first failure: txn is poisoned */
	char *buf;			/* KR_LOG_MAX_ENTRY + 1 */
};

/* Big-endian u64 keys. */
void kr_be64(uint64_t v, uint8_t out[8]);
uint64_t kr_get_be64(const uint8_t in[8]);

/* kr_hash_reader over the hashes DBI; arg is struct kr_hash_rd. */
struct kr_hash_rd {
	MDB_txn *txn;
	MDB_dbi dbi;
};
int kr_log_read_hash(void *arg, uint64_t idx, uint8_t out[32]) KR_WUR;

/* Map an LMDB rc to KR_ERR_MAP_FULL / KR_ERR_LMDB with a detail. */
int kr_log_mdb_err(int rc, const char *what) KR_WUR;

/* Mark the txn failed (first error wins) and return r. */
int kr_ltx_fail(struct kr_ltx *ltx, int r);

/* Append raw encoded entry bytes (already checked). */
int kr_ltx_append_raw(struct kr_ltx *ltx, const char *e, size_t len,
    uint64_t *index) KR_WUR;

#endif
