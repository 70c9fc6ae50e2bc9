/*
 * polstore.c - the policy the quorum installed (see polstore.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ceremony/polstore.h"
#include "ceremony/qstore.h"
#include "lib/util.h"

#define ROW "installed"

int
kr_polstore_put(struct kr_log *log, MDB_txn *txn, const uint8_t digest[32],
    const uint8_t sha256[32], uint64_t entry)
{
	char dg[65], sh[65], *txt = NULL;
	MDB_val k = { sizeof(ROW) - 1, (void *)ROW }, v;
	json_t *o;
	MDB_dbi d;
	int r, rc;

	if ((r = kr_log_dbi(log, txn, KR_POLICY_DBI, 0, &d)) != 0)
		return r;
	kr_hex(digest, 32, dg);
	kr_hex(sha256, 32, sh);
	if ((o = json_pack("{s:s,s:s,s:I}", "digest", dg, "sha256", sh,
	    "entry", (json_int_t)entry)) == NULL ||
	    (txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		json_decref(o);
		return kr_errf(KR_ERR_ALLOC, "policy row");
	}
	json_decref(o);
	v.mv_size = strlen(txt);
	v.mv_data = txt;
	rc = mdb_put(txn, d, &k, &v, 0);
	free(txt);
	if (rc == MDB_MAP_FULL)
		return kr_errf(KR_ERR_MAP_FULL, "policy row: LMDB map full");
	if (rc != 0)
		return kr_err_lmdb(rc, "policy row");
	return 0;
}

/* The row's digest and entry, checked against the entry it names. */
static int
installed_row(struct kr_log *log, MDB_txn *txn, MDB_dbi d, char dg[65],
    uint64_t *entry)
{
	MDB_val k = { sizeof(ROW) - 1, (void *)ROW }, v;
	const uint8_t *e;
	const char *s, *val;
	json_error_t je;
	json_int_t n;
	json_t *o;
	enum kr_etype t;
	size_t elen, vlen;
	int r, rc;

	if ((rc = mdb_get(txn, d, &k, &v)) == MDB_NOTFOUND)
		return KR_ERR_NOT_FOUND;
	if (rc != 0)
		return kr_err_lmdb(rc, "policy row");
	if ((o = json_loadb(v.mv_data, v.mv_size, 0, &je)) == NULL ||
	    json_unpack(o, "{s:s,s:I}", "digest", &s, "entry", &n) != 0 ||
	    strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64 || n < 0) {
		json_decref(o);
		return kr_errf(KR_ERR_STATE, "the installed-policy row of the "
		    "state is malformed");
	}
	memcpy(dg, s, 65);
	*entry = (uint64_t)n;
	json_decref(o);
	if ((r = kr_log_entry(log, txn, *entry, &e, &elen)) != 0 ||
	    (r = kr_entry_check(kr_log_origin(log), e, elen, &t)) != 0 ||
	    t != KR_E_CONFIG_CHANGE ||
	    kr_entry_get(e, elen, "policy-digest", &val, &vlen) != 0 ||
	    vlen != 64 || memcmp(val, dg, 64) != 0)
		return kr_errf(KR_ERR_STATE, "the installed-policy row names "
		    "log entry %llu, which is not the config-change that "
		    "installed policy digest %s", (unsigned long long)*entry,
		    dg);
	return 0;
}

int
kr_polstore_require(struct kr_log *log, const uint8_t digest[32])
{
	char want[65], have[65];
	uint64_t entry = 0;
	MDB_txn *txn = NULL;
	MDB_dbi d;
	int r;

	if ((r = kr_log_read_begin(log, &txn)) != 0)
		return r;
	if ((r = kr_log_dbi(log, txn, KR_POLICY_DBI, 0, &d)) == 0)
		r = installed_row(log, txn, d, want, &entry);
	if (r == KR_ERR_NOT_FOUND) {
		/* Never installed by the ceremony: a development state, unless
		 * the issuing token is under quorum. */
		struct kr_qset *set = NULL;
		char sid[KR_Q_ID_HEX];

		r = kr_qstore_active(log, txn, "issuing", &set);
		if (r == 0) {
			kr_qset_id_hex(set->id, sid);
			r = kr_errf(KR_ERR_STATE, "the issuing token is under "
			    "quorum (share set %s) but no policy was installed "
			    "by the install-policy ceremony: the policy in "
			    "force was put in place by hand", sid);
		} else if (r == KR_ERR_STATE)
			r = 0;
		free(set);
		mdb_txn_abort(txn);
		return r;
	}
	mdb_txn_abort(txn);
	if (r != 0)
		return r;
	kr_hex(digest, 32, have);
	if (strcmp(have, want) != 0)
		return kr_errf(KR_ERR_STATE, "the policy in force (digest %s) "
		    "is not the one the quorum installed (digest %s, log entry "
		    "%llu): policy.yaml or a certificate file it reads changed "
		    "outside the install-policy ceremony; restore it or install "
		    "the new one with that ceremony", have, want,
		    (unsigned long long)entry);
	return 0;
}
