/*
 * qstore.c - share sets in the LMDB DBI "quorum" (see qstore.h).
 */
#include <stdlib.h>
#include <string.h>

#include "ceremony/qstore.h"
#include "lib/util.h"

#define KEY_MAX 64
#define ROW_MAX (64 * 1024)

static int
dbi(struct kr_log *log, MDB_txn *txn, MDB_dbi *d)
{
	return kr_log_dbi(log, txn, KR_QUORUM_DBI, 0, d);
}

static int
put(MDB_txn *txn, MDB_dbi d, const char *k, const char *v)
{
	MDB_val key = { strlen(k), (void *)k }, val = { strlen(v), (void *)v };
	int rc;

	if ((rc = mdb_put(txn, d, &key, &val, 0)) == MDB_MAP_FULL)
		return kr_errf(KR_ERR_MAP_FULL, "quorum: %s", k);
	if (rc != 0)
		return kr_err_lmdb(rc, "quorum: writing %s", k);
	return 0;
}

int
kr_qstore_put(struct kr_log *log, MDB_txn *txn, const struct kr_qset *set,
    int make_active)
{
	char k[KEY_MAX], id[KR_Q_ID_HEX], *s = NULL;
	json_t *j = NULL;
	MDB_dbi d;
	int r;

	kr_qset_id_hex(set->id, id);
	if ((r = dbi(log, txn, &d)) != 0 ||
	    (r = kr_qset_to_json(set, &j)) != 0)
		goto out;
	if ((s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "share set json");
		goto out;
	}
	if ((r = kr_snprintf(k, sizeof(k), "set/%s", id)) != 0 ||
	    (r = put(txn, d, k, s)) != 0)
		goto out;
	if (make_active && ((r = kr_snprintf(k, sizeof(k), "active/%s",
	    set->label)) != 0 || (r = put(txn, d, k, id)) != 0))
		goto out;
	r = 0;
 out:
	free(s);
	json_decref(j);
	return r;
}

static int
get_row(MDB_txn *txn, MDB_dbi d, const char *k, char **out)
{
	MDB_val key = { strlen(k), (void *)k }, val;
	char *s;
	int rc;

	*out = NULL;
	if ((rc = mdb_get(txn, d, &key, &val)) == MDB_NOTFOUND)
		return kr_errf(KR_ERR_NOT_FOUND, "quorum: no %s", k);
	if (rc != 0)
		return kr_err_lmdb(rc, "quorum: reading %s", k);
	if (val.mv_size > ROW_MAX)
		return kr_errf(KR_ERR_TOO_LARGE, "quorum: %s", k);
	if ((s = malloc(val.mv_size + 1)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "quorum row");
	memcpy(s, val.mv_data, val.mv_size);
	s[val.mv_size] = '\0';
	*out = s;
	return 0;
}

static int
parse_row(const char *k, const char *s, struct kr_qset **out)
{
	json_error_t e;
	json_t *j;
	int r;

	if ((j = json_loads(s, JSON_REJECT_DUPLICATES, &e)) == NULL)
		return kr_errf(KR_ERR_FORMAT, "quorum: %s: %s", k, e.text);
	r = kr_qset_from_json(j, out);
	json_decref(j);
	return r != 0 ? kr_errctx(r, "quorum: %s", k) : 0;
}

int
kr_qstore_get(struct kr_log *log, MDB_txn *txn, const uint8_t id[KR_Q_ID_LEN],
    struct kr_qset **out)
{
	char k[KEY_MAX], hex[KR_Q_ID_HEX], *s = NULL;
	MDB_dbi d;
	int r;

	*out = NULL;
	kr_qset_id_hex(id, hex);
	if ((r = dbi(log, txn, &d)) != 0) {
		if (r == KR_ERR_NOT_FOUND)
			r = kr_errf(KR_ERR_NOT_FOUND, "no share set %s", hex);
		return r;
	}
	if ((r = kr_snprintf(k, sizeof(k), "set/%s", hex)) != 0 ||
	    (r = get_row(txn, d, k, &s)) != 0)
		goto out;
	r = parse_row(k, s, out);
 out:
	free(s);
	return r;
}

int
kr_qstore_active(struct kr_log *log, MDB_txn *txn, const char *label,
    struct kr_qset **out)
{
	char k[KEY_MAX], *s = NULL;
	uint8_t id[KR_Q_ID_LEN];
	MDB_dbi d;
	int r;

	*out = NULL;
	if ((r = kr_snprintf(k, sizeof(k), "active/%s", label)) != 0)
		return r;
	r = dbi(log, txn, &d);
	if (r == 0)
		r = get_row(txn, d, k, &s);
	if (r == KR_ERR_NOT_FOUND) {
		r = kr_errf(KR_ERR_STATE, "no share set for token role '%s' "
		    "(run the genesis ceremony)", label);
		goto out;
	}
	if (r != 0)
		goto out;
	if (strlen(s) != 2 * KR_Q_ID_LEN || kr_unhex(s, id, KR_Q_ID_LEN) != 0) {
		r = kr_errf(KR_ERR_FORMAT, "quorum: %s: bad id", k);
		goto out;
	}
	r = kr_qstore_get(log, txn, id, out);
 out:
	free(s);
	return r;
}

int
kr_qstore_all(struct kr_log *log, MDB_txn *txn, struct kr_qset ***out,
    size_t *n)
{
	struct kr_qset **v = NULL, **nv, *one = NULL;
	MDB_cursor *c = NULL;
	MDB_val key, val;
	char k[KEY_MAX], *s = NULL;
	size_t cnt = 0;
	MDB_dbi d;
	int r, rc;

	*out = NULL;
	*n = 0;
	if ((r = dbi(log, txn, &d)) != 0)
		return r == KR_ERR_NOT_FOUND ? 0 : r;
	if ((rc = mdb_cursor_open(txn, d, &c)) != 0)
		return kr_err_lmdb(rc, "quorum: cursor");
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		if (key.mv_size < 4 || memcmp(key.mv_data, "set/", 4) != 0)
			continue;
		if (key.mv_size >= sizeof(k) || val.mv_size > ROW_MAX) {
			r = kr_errf(KR_ERR_FORMAT, "quorum: oversized row");
			goto out;
		}
		memcpy(k, key.mv_data, key.mv_size);
		k[key.mv_size] = '\0';
		if ((s = malloc(val.mv_size + 1)) == NULL) {
			r = kr_errf(KR_ERR_ALLOC, "quorum row");
			goto out;
		}
		memcpy(s, val.mv_data, val.mv_size);
		s[val.mv_size] = '\0';
		if ((r = parse_row(k, s, &one)) != 0)
			goto out;
		free(s);
		s = NULL;
		if ((nv = realloc(v, (cnt + 1) * sizeof(*v))) == NULL) {
			r = kr_errf(KR_ERR_ALLOC, "quorum sets");
			goto out;
		}
		v = nv;
		v[cnt++] = one;
		one = NULL;
	}
	if (rc != MDB_NOTFOUND) {
		r = kr_err_lmdb(rc, "quorum: cursor");
		goto out;
	}
	*out = v;
	*n = cnt;
	v = NULL;
	cnt = 0;
	r = 0;
 out:
	mdb_cursor_close(c);
	free(s);
	free(one);
	kr_qstore_free(v, cnt);
	return r;
}

void
kr_qstore_free(struct kr_qset **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}
