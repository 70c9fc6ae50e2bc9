/*
 * log.c - the LMDB environment of the audit log: create/open, named
 * databases, write transactions that append entries, extend the Merkle
 * tree and store a signed checkpoint in the same commit.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/entry.h"
#include "audit/log_int.h"
#include "audit/note.h"
#include "lib/util.h"

#define MAP_INITIAL	((size_t)4 << 30)	/* 4 GiB */
#define MAP_MAX		((size_t)1 << 40)	/* 1 TiB */

static const char *const own_dbs[] = {
	"meta", "entries", "hashes", "checkpoints", "issued", "serials",
	"devcerts", "intents",
};

static unsigned long crash_count;

void
kr_audit_crash_point(const char *where)
{
	static long at = -1;
	const char *e;

	if (at == -1) {
		e = getenv("KEYROOM_TEST_AUDIT_CRASH_AT");
		at = e != NULL ? atol(e) : 0;
	}
	crash_count++;
	if (getenv("KEYROOM_TEST_CRASH_TRACE") != NULL)
		fprintf(stderr, "keyroom: crash point %lu: %s\n", crash_count,
		    where);
	if (at > 0 && crash_count == (unsigned long)at) {
		if (getenv("KEYROOM_TEST_CRASH_VERBOSE") != NULL)
			fprintf(stderr, "keyroom: audit crash point %lu: %s\n",
			    crash_count, where);
		(void)kill(getpid(), SIGKILL);
	}
}

unsigned long
kr_audit_crash_points(void)
{
	return crash_count;
}

void
kr_be64(uint64_t v, uint8_t out[8])
{
	int i;

	for (i = 7; i >= 0; i--) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t
kr_get_be64(const uint8_t in[8])
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | in[i];
	return v;
}

int
kr_log_mdb_err(int rc, const char *what)
{
	if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT)
		return kr_errf(KR_ERR_MAP_FULL, "audit log: %s: %s", what,
		    mdb_strerror(rc));
	return kr_err_lmdb(rc, "audit log: %s", what);
}

int
kr_log_read_hash(void *arg, uint64_t idx, uint8_t out[32])
{
	struct kr_hash_rd *h = arg;
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	kr_be64(idx, kb);
	if ((rc = mdb_get(h->txn, h->dbi, &k, &v)) == MDB_NOTFOUND)
		return kr_errf(KR_ERR_TAMPERED, "stored hash %llu is missing",
		    (unsigned long long)idx);
	if (rc != 0)
		return kr_log_mdb_err(rc, "reading stored hash");
	if (v.mv_size != 32)
		return kr_errf(KR_ERR_TAMPERED,
		    "stored hash %llu is %zu bytes", (unsigned long long)idx,
		    v.mv_size);
	memcpy(out, v.mv_data, 32);
	return 0;
}

static void
map_limits(size_t *initial, size_t *max)
{
	const char *s = getenv("KEYROOM_LOG_MAP_MAX");
	unsigned long long v;
	char *end;

	*initial = MAP_INITIAL;
	*max = MAP_MAX;
	if (s != NULL && *s != '\0') {
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno == 0 && *end == '\0' && v >= 65536)
			*max = (size_t)v;
	}
	/* Tests of the grow-and-retry path start small. */
	s = getenv("KEYROOM_LOG_MAP_INITIAL");
	if (s != NULL && *s != '\0') {
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno == 0 && *end == '\0' && v >= 65536)
			*initial = (size_t)v;
	}
	if (*initial > *max)
		*initial = *max;
}

static int
env_open(const char *dir, int rdonly, struct kr_log *log)
{
	unsigned int fl = MDB_NOTLS;
	int rc, dead;

	map_limits(&log->mapsize, &log->mapmax);
	if ((rc = mdb_env_create(&log->env)) != 0)
		return kr_err_lmdb(rc, "audit log %s: env", dir);
	if ((rc = mdb_env_set_maxdbs(log->env, KR_LOG_MAX_DBS)) != 0 ||
	    (rc = mdb_env_set_mapsize(log->env, log->mapsize)) != 0)
		return kr_err_lmdb(rc, "audit log %s: env setup", dir);
	if (rdonly)
		fl |= MDB_RDONLY;
	rc = mdb_env_open(log->env, dir, fl, 0600);
	if (rc != 0 && rdonly && (rc == EACCES || rc == EROFS)) {
		/* A copy on read-only media: no lock file possible. */
		mdb_env_close(log->env);
		log->env = NULL;
		if ((rc = mdb_env_create(&log->env)) != 0 ||
		    (rc = mdb_env_set_maxdbs(log->env, KR_LOG_MAX_DBS)) != 0)
			return kr_err_lmdb(rc, "audit log %s: env", dir);
		rc = mdb_env_open(log->env, dir, fl | MDB_NOLOCK, 0600);
	}
	if (rc != 0)
		return kr_err_lmdb(rc, "audit log %s: open", dir);
	/* Clear reader slots of dead processes (best effort read-only). */
	if ((rc = mdb_reader_check(log->env, &dead)) != 0 && !rdonly)
		return kr_err_lmdb(rc, "audit log %s: reader check", dir);
	log->rdonly = rdonly;
	return 0;
}

static int
open_own_dbis(struct kr_log *log, MDB_txn *txn, unsigned int fl)
{
	MDB_dbi *d[] = { &log->meta, &log->entries, &log->hashes,
	    &log->checkpoints, &log->issued, &log->serials, &log->devcerts,
	    &log->intents };
	size_t i;
	int rc;

	for (i = 0; i < KR_ARRAY_SIZE(d); i++) {
		rc = mdb_dbi_open(txn, own_dbs[i], fl |
		    (d[i] == &log->devcerts ? MDB_DUPSORT : 0), d[i]);
		if (rc == MDB_NOTFOUND)
			return kr_errf(KR_ERR_FORMAT,
			    "not a keyroom audit log: no '%s' database",
			    own_dbs[i]);
		if (rc != 0)
			return kr_err_lmdb(rc, "audit log: database %s",
			    own_dbs[i]);
	}
	return 0;
}

static int
put_str(MDB_txn *txn, MDB_dbi dbi, const char *key, const char *val)
{
	MDB_val k = { strlen(key), (void *)key };
	MDB_val v = { strlen(val), (void *)val };
	int rc;

	if ((rc = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE)) != 0)
		return kr_log_mdb_err(rc, key);
	return 0;
}

int
kr_log_create(const char *dir, const char *origin)
{
	struct kr_log log;
	MDB_txn *txn = NULL;
	struct stat st;
	char path[4096];
	size_t i;
	int r, rc;

	memset(&log, 0, sizeof(log));
	for (i = 0; origin[i] != '\0'; i++)
		if ((unsigned char)origin[i] <= 0x20 || origin[i] == '+' ||
		    origin[i] == 0x7f)
			break;
	if (i == 0 || origin[i] != '\0' || i > KR_LOG_MAX_ORIGIN)
		return kr_errf(KR_ERR_INVALID_ARGUMENT,
		    "audit log origin '%s': must be 1-%d printable "
		    "characters without spaces or '+'", origin,
		    KR_LOG_MAX_ORIGIN);
	if ((r = kr_mkdirs(dir, 0700)) != 0)
		return r;
	if ((r = kr_snprintf(path, sizeof(path), "%s/data.mdb", dir)) != 0)
		return r;
	if (lstat(path, &st) == 0)
		return kr_errf(KR_ERR_EXISTS, "%s: audit log already exists",
		    path);
	if ((r = env_open(dir, 0, &log)) != 0)
		goto out;
	if ((rc = mdb_txn_begin(log.env, NULL, 0, &txn)) != 0) {
		r = kr_log_mdb_err(rc, "begin");
		goto out;
	}
	if ((r = open_own_dbis(&log, txn, MDB_CREATE)) != 0 ||
	    (r = put_str(txn, log.meta, "format", KR_LOG_FORMAT)) != 0 ||
	    (r = put_str(txn, log.meta, "origin", origin)) != 0)
		goto out;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		r = kr_log_mdb_err(rc, "commit");
		goto out;
	}
	r = 0;
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (log.env != NULL)
		mdb_env_close(log.env);
	return r;
}

static int
get_meta(struct kr_log *log, MDB_txn *txn, const char *key, char *out,
    size_t cap)
{
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc;

	if ((rc = mdb_get(txn, log->meta, &k, &v)) == MDB_NOTFOUND)
		return kr_errf(KR_ERR_FORMAT, "audit log: no meta '%s'", key);
	if (rc != 0)
		return kr_log_mdb_err(rc, key);
	if (v.mv_size + 1 > cap)
		return kr_errf(KR_ERR_FORMAT, "audit log: meta '%s' too long",
		    key);
	memcpy(out, v.mv_data, v.mv_size);
	out[v.mv_size] = '\0';
	return 0;
}

int
kr_log_open(const char *dir, int flags, struct kr_log **out)
{
	struct kr_log *log = NULL;
	MDB_txn *txn = NULL;
	struct stat st;
	char path[4096], fmt[64];
	int r, rc;

	*out = NULL;
	if ((r = kr_snprintf(path, sizeof(path), "%s/data.mdb", dir)) != 0)
		return r;
	if (stat(path, &st) != 0)
		return kr_errf(KR_ERR_NOT_FOUND, "%s: no audit log", dir);
	if (!S_ISREG(st.st_mode))
		return kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: not a regular file",
		    path);
	if ((log = calloc(1, sizeof(*log))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "audit log");
	if ((r = env_open(dir, (flags & KR_LOG_WRITE) == 0, log)) != 0)
		goto out;
	if ((rc = mdb_txn_begin(log->env, NULL, MDB_RDONLY, &txn)) != 0) {
		r = kr_log_mdb_err(rc, "begin");
		goto out;
	}
	if ((r = open_own_dbis(log, txn, 0)) != 0 ||
	    (r = get_meta(log, txn, "format", fmt, sizeof(fmt))) != 0 ||
	    (r = get_meta(log, txn, "origin", log->origin,
	    sizeof(log->origin))) != 0)
		goto out;
	if (strcmp(fmt, KR_LOG_FORMAT) != 0) {
		r = kr_errf(KR_ERR_FORMAT, "%s: log format '%s' unsupported",
		    dir, fmt);
		goto out;
	}
	/* Commit (not abort) keeps the DBI handles open. */
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		r = kr_log_mdb_err(rc, "open databases");
		goto out;
	}
	*out = log;
	log = NULL;
	r = 0;
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_log_close(log);
	return r;
}

void
kr_log_close(struct kr_log *log)
{
	if (log == NULL)
		return;
	if (log->env != NULL)
		mdb_env_close(log->env);
	free(log);
}

const char *
kr_log_origin(const struct kr_log *log)
{
	return log->origin;
}

MDB_env *
kr_log_env(struct kr_log *log)
{
	return log->env;
}

int
kr_log_dbi(struct kr_log *log, MDB_txn *txn, const char *name,
    unsigned int flags, MDB_dbi *out)
{
	size_t i;
	int rc;

	for (i = 0; i < KR_ARRAY_SIZE(own_dbs); i++)
		if (strcmp(name, own_dbs[i]) == 0)
			return kr_errf(KR_ERR_INVALID_ARGUMENT,
			    "database '%s' belongs to the audit log", name);
	rc = mdb_dbi_open(txn, name, flags & ~(unsigned int)MDB_CREATE, out);
	if (rc == MDB_NOTFOUND && !log->rdonly)
		rc = mdb_dbi_open(txn, name, flags | MDB_CREATE, out);
	if (rc == MDB_NOTFOUND || rc == EACCES)
		return kr_errf(KR_ERR_NOT_FOUND, "database '%s'", name);
	if (rc != 0)
		return kr_log_mdb_err(rc, name);
	return 0;
}

static int
txn_begin(struct kr_log *log, unsigned int fl, MDB_txn **txn)
{
	int rc;

	rc = mdb_txn_begin(log->env, NULL, fl, txn);
	if (rc == MDB_MAP_RESIZED) {
		/* Another process grew the map: adopt its size. */
		if ((rc = mdb_env_set_mapsize(log->env, 0)) == 0)
			rc = mdb_txn_begin(log->env, NULL, fl, txn);
	}
	if (rc != 0)
		return kr_log_mdb_err(rc, "begin transaction");
	return 0;
}

int
kr_log_read_begin(struct kr_log *log, MDB_txn **out)
{
	return txn_begin(log, MDB_RDONLY, out);
}

int
kr_log_size(struct kr_log *log, MDB_txn *txn, uint64_t *size)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rc;

	*size = 0;
	if ((rc = mdb_cursor_open(txn, log->entries, &c)) != 0)
		return kr_log_mdb_err(rc, "entries cursor");
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return kr_log_mdb_err(rc, "last entry");
	if (k.mv_size != 8)
		return kr_errf(KR_ERR_TAMPERED, "entry key of %zu bytes",
		    k.mv_size);
	*size = kr_get_be64(k.mv_data) + 1;
	return 0;
}

int
kr_log_entry(struct kr_log *log, MDB_txn *txn, uint64_t index,
    const uint8_t **e, size_t *len)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	kr_be64(index, kb);
	if ((rc = mdb_get(txn, log->entries, &k, &v)) == MDB_NOTFOUND)
		return kr_errf(KR_ERR_NOT_FOUND, "log entry %llu",
		    (unsigned long long)index);
	if (rc != 0)
		return kr_log_mdb_err(rc, "reading entry");
	*e = v.mv_data;
	*len = v.mv_size;
	return 0;
}

int
kr_log_begin(struct kr_log *log, struct kr_ltx **out)
{
	struct kr_ltx *ltx = NULL;
	struct kr_hash_rd rd;
	int r;

	*out = NULL;
	if (log->rdonly)
		return kr_errf(KR_ERR_STATE, "audit log opened read-only");
	if ((ltx = calloc(1, sizeof(*ltx))) == NULL ||
	    (ltx->buf = malloc(KR_LOG_MAX_ENTRY + 1)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "audit transaction");
		goto out;
	}
	ltx->log = log;
	if ((r = txn_begin(log, 0, &ltx->txn)) != 0)
		goto out;
	if ((r = kr_log_size(log, ltx->txn, &ltx->size0)) != 0)
		goto out;
	rd.txn = ltx->txn;
	rd.dbi = log->hashes;
	if ((r = kr_merkle_range_load(&ltx->range, ltx->size0,
	    kr_log_read_hash, &rd)) != 0) {
		r = kr_errctx(r, "audit log: loading tree head");
		goto out;
	}
	ltx->nhash = kr_merkle_stored_count(ltx->size0);
	*out = ltx;
	ltx = NULL;
	r = 0;
 out:
	kr_ltx_abort(ltx);
	return r;
}

MDB_txn *
kr_ltx_mdb(struct kr_ltx *ltx)
{
	return ltx->txn;
}

int
kr_ltx_fail(struct kr_ltx *ltx, int r)
{
	if (ltx->err == 0)
		ltx->err = r;
	return r;
}

int
kr_ltx_append_raw(struct kr_ltx *ltx, const char *e, size_t len,
    uint64_t *index)
{
	uint8_t kb[8], leaf[32], hs[65][32];
	MDB_val k = { 8, kb }, v = { len, (void *)e };
	uint64_t idx = ltx->range.size;
	int n, i, rc;

	if (ltx->err != 0)
		return kr_errf(ltx->err, "audit transaction already failed");
	kr_be64(idx, kb);
	if ((rc = mdb_put(ltx->txn, ltx->log->entries, &k, &v,
	    MDB_APPEND)) != 0)
		return kr_ltx_fail(ltx, kr_log_mdb_err(rc, "append entry"));
	kr_merkle_leaf(e, len, leaf);
	n = kr_merkle_range_append(&ltx->range, leaf, hs);
	for (i = 0; i < n; i++) {
		kr_be64(ltx->nhash, kb);
		v.mv_size = 32;
		v.mv_data = hs[i];
		if ((rc = mdb_put(ltx->txn, ltx->log->hashes, &k, &v,
		    MDB_APPEND)) != 0)
			return kr_ltx_fail(ltx,
			    kr_log_mdb_err(rc, "append hash"));
		ltx->nhash++;
	}
	if (index != NULL)
		*index = idx;
	kr_audit_crash_point("entry appended");
	return 0;
}

int
kr_ltx_append(struct kr_ltx *ltx, enum kr_etype type, const char *actor,
    const struct kr_kv *kv, size_t nkv, uint64_t *index)
{
	size_t len;
	int r;

	if (ltx->err != 0)
		return kr_errf(ltx->err, "audit transaction already failed");
	if ((r = kr_entry_encode(ltx->log->origin, type, 0, actor, kv, nkv,
	    ltx->buf, KR_LOG_MAX_ENTRY + 1, &len)) != 0)
		return kr_ltx_fail(ltx, r);
	return kr_ltx_append_raw(ltx, ltx->buf, len, index);
}

int
kr_ltx_appendf(struct kr_ltx *ltx, enum kr_etype type, const char *actor,
    uint64_t *index, ...)
{
	struct kr_kv kv[16];
	const char *key;
	size_t n = 0;
	va_list ap;

	va_start(ap, index);
	while ((key = va_arg(ap, const char *)) != NULL) {
		if (n == KR_ARRAY_SIZE(kv)) {
			va_end(ap);
			return kr_ltx_fail(ltx, kr_errf(KR_ERR_INVALID_ARGUMENT,
			    "too many fields"));
		}
		kv[n].key = key;
		kv[n].value = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	return kr_ltx_append(ltx, type, actor, kv, n, index);
}

/* After a map-full failure: grow the map for the caller's retry. */
static void
grow_map(struct kr_log *log)
{
	size_t want = log->mapsize * 2;

	if (log->hold_map) {
		log->grow_wanted = 1;
		return;
	}
	if (want > log->mapmax)
		want = log->mapmax;
	if (want > log->mapsize && mdb_env_set_mapsize(log->env, want) == 0) {
		log->mapsize = want;
		log->map_lo = log->map_hi = 0;	/* it may have moved */
	}
}

void
kr_log_hold_map(struct kr_log *log, int hold)
{
	log->hold_map = hold;
	if (!hold && log->grow_wanted) {
		log->grow_wanted = 0;
		grow_map(log);
	}
}

void
kr_ltx_abort(struct kr_ltx *ltx)
{
	if (ltx == NULL)
		return;
	if (ltx->txn != NULL)
		mdb_txn_abort(ltx->txn);
	if (ltx->err == KR_ERR_MAP_FULL)
		grow_map(ltx->log);
	free(ltx->buf);
	free(ltx);
}

int
kr_ltx_commit(struct kr_ltx *ltx, const struct kr_note_signer *signer,
    char **out_note)
{
	uint8_t root[32], kb[8];
	char body[KR_LOG_MAX_ORIGIN + 80], *note = NULL;
	size_t blen, nlen;
	MDB_val k = { 8, kb }, v;
	int r, rc;

	if (out_note != NULL)
		*out_note = NULL;
	if (ltx->err != 0) {
		r = kr_errf(ltx->err, "audit transaction failed earlier");
		goto out;
	}
	if (ltx->range.size > ltx->size0) {
		if (signer == NULL) {
			r = kr_ltx_fail(ltx, kr_errf(KR_ERR_INVALID_ARGUMENT,
			    "audit log: a checkpoint signer is required"));
			goto out;
		}
		kr_merkle_range_root(&ltx->range, root);
		if ((r = kr_checkpoint_body(ltx->log->origin, ltx->range.size,
		    root, body, sizeof(body), &blen)) != 0 ||
		    (r = kr_note_sign(signer, body, blen, &note, &nlen)) != 0) {
			kr_ltx_fail(ltx, r);
			goto out;
		}
		kr_be64(ltx->range.size, kb);
		v.mv_size = nlen;
		v.mv_data = note;
		if ((rc = mdb_put(ltx->txn, ltx->log->checkpoints, &k, &v,
		    MDB_APPEND)) != 0) {
			r = kr_ltx_fail(ltx,
			    kr_log_mdb_err(rc, "store checkpoint"));
			goto out;
		}
	}
	kr_audit_crash_point("checkpoint signed, before commit");
	rc = mdb_txn_commit(ltx->txn);
	ltx->txn = NULL;
	if (rc != 0) {
		r = kr_ltx_fail(ltx, kr_log_mdb_err(rc, "commit"));
		goto out;
	}
	kr_audit_crash_point("committed");
	if (out_note != NULL) {
		*out_note = note;
		note = NULL;
	}
	r = 0;
 out:
	free(note);
	kr_ltx_abort(ltx);
	return r;
}

int
kr_log_checkpoint(struct kr_log *log, MDB_txn *txn, char **note,
    uint64_t *size)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	char *s;
	int rc;

	*note = NULL;
	if ((rc = mdb_cursor_open(txn, log->checkpoints, &c)) != 0)
		return kr_log_mdb_err(rc, "checkpoints cursor");
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return kr_errf(KR_ERR_NOT_FOUND, "no checkpoint yet");
	if (rc != 0)
		return kr_log_mdb_err(rc, "last checkpoint");
	if (k.mv_size != 8 || v.mv_size > KR_LOG_MAX_NOTE)
		return kr_errf(KR_ERR_TAMPERED, "malformed checkpoint record");
	if ((s = malloc(v.mv_size + 1)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "checkpoint");
	memcpy(s, v.mv_data, v.mv_size);
	s[v.mv_size] = '\0';
	*note = s;
	*size = kr_get_be64(k.mv_data);
	return 0;
}

int
kr_log_tree_hash(struct kr_log *log, MDB_txn *txn, uint64_t size,
    uint8_t root[32])
{
	struct kr_hash_rd rd = { txn, log->hashes };

	return kr_merkle_tree_hash(size, kr_log_read_hash, &rd, root);
}

int
kr_log_init(struct kr_log *log, const struct kr_note_signer *signer,
    const char *actor, const char *config_sha256, const char *key_token,
    const char *key_label, char **out_note)
{
	struct kr_ltx *ltx = NULL;
	uint8_t h[32];
	char vk[512], hex[65];
	int r;

	if ((r = kr_note_vkey(signer->name, signer->pub, vk, sizeof(vk))) != 0)
		return r;
	if ((r = kr_log_begin(log, &ltx)) != 0)
		return r;
	if (ltx->size0 != 0) {
		kr_ltx_abort(ltx);
		return kr_errf(KR_ERR_STATE, "audit log already initialised");
	}
	if ((r = kr_ltx_appendf(ltx, KR_E_INIT, actor, NULL, "vkey", vk,
	    "config-sha256", config_sha256, NULL)) != 0)
		goto fail;
	if (key_token != NULL && key_label != NULL) {
		kr_sha256(signer->pub, 32, h);
		kr_hex(h, 32, hex);
		if ((r = kr_ltx_appendf(ltx, KR_E_KEY_GENERATE, actor, NULL,
		    "token", key_token, "label", key_label, "algorithm",
		    "ed25519", "pubkey-sha256", hex, NULL)) != 0)
			goto fail;
	}
	return kr_ltx_commit(ltx, signer, out_note);
 fail:
	kr_ltx_abort(ltx);
	return r;
}

/*
 * Keep long scans (verify, export) flat in memory: pages of the (read-only, shared)
 * map already streamed are dropped from our page tables; they stay in
 * the page cache and fault back in if touched again. LMDB does not
 * expose the map address (me_mapaddr is set only with MDB_FIXEDMAP), so
 * the mapping of data.mdb is found in /proc/self/maps by inode.
 */
void
kr_log_drop_pages(struct kr_log *log)
{
	unsigned long a, b, ino;
	struct stat st;
	char line[512];
	FILE *f;
	int fd;

	if (log->map_lo == 0) {
		if (mdb_env_get_fd(log->env, &fd) != 0 || fstat(fd, &st) != 0 ||
		    (f = fopen("/proc/self/maps", "re")) == NULL)
			return;
		/* The mapping of this env's data.mdb: same inode, shared. */
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &a, &b,
			    &ino) == 3 && ino == (unsigned long)st.st_ino &&
			    strstr(line, " r--s ") != NULL &&
			    strstr(line, "data.mdb") != NULL) {
				log->map_lo = a;
				log->map_hi = b;
				break;
			}
		fclose(f);
		if (log->map_lo == 0)
			return;
	}
	(void)madvise((void *)log->map_lo, log->map_hi - log->map_lo,
	    MADV_DONTNEED);
}
