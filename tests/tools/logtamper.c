/*
 * logtamper.c - the attacker in audit tests: raw LMDB edits that no
 * keyroom code path can make.
 *   logtamper truncate DIR K   drop the last K entries together with
 *                              their stored hashes and checkpoints, so
 *                              the rest is self-consistent (only an
 *                              earlier printed checkpoint catches it)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "audit/merkle.h"

static void
be64(uint64_t v, uint8_t o[8])
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		o[i] = (uint8_t)v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Delete every key >= from (big-endian u64 keys). */
static int
drop_from(MDB_txn *txn, MDB_dbi dbi, uint64_t from)
{
	MDB_cursor *c;
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	be64(from, kb);
	if (mdb_cursor_open(txn, dbi, &c) != 0)
		return -1;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT)) {
		if (mdb_cursor_del(c, 0) != 0)
			return -1;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : -1;
}

int
main(int argc, char **argv)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi de, dh, dc;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t size, keep, drop;

	if (argc != 4 || strcmp(argv[1], "truncate") != 0) {
		fprintf(stderr, "usage: logtamper truncate DIR K\n");
		return 2;
	}
	drop = strtoull(argv[3], NULL, 10);
	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 32) ||
	    mdb_env_set_mapsize(env, (size_t)1 << 32) ||
	    mdb_env_open(env, argv[2], 0, 0600) ||
	    mdb_txn_begin(env, NULL, 0, &txn) ||
	    mdb_dbi_open(txn, "entries", 0, &de) ||
	    mdb_dbi_open(txn, "hashes", 0, &dh) ||
	    mdb_dbi_open(txn, "checkpoints", 0, &dc) ||
	    mdb_cursor_open(txn, de, &c) ||
	    mdb_cursor_get(c, &k, &v, MDB_LAST)) {
		fprintf(stderr, "logtamper: cannot open %s\n", argv[2]);
		return 1;
	}
	size = get64(k.mv_data) + 1;
	mdb_cursor_close(c);
	if (drop >= size)
		return 2;
	keep = size - drop;
	if (drop_from(txn, de, keep) || drop_from(txn, dh,
	    kr_merkle_stored_count(keep)) || drop_from(txn, dc, keep + 1) ||
	    mdb_txn_commit(txn)) {
		fprintf(stderr, "logtamper: truncate failed\n");
		return 1;
	}
	mdb_env_close(env);
	printf("%llu\n", (unsigned long long)keep);
	return 0;
}
