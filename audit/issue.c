/*
 * issue.c - "log before release": certificate intents, issued and
 * abandoned entries, recovery of interrupted intents, and the issued
 * index (issuer+serial, certificate hash, device id) kept in the same
 * transactions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/entry.h"
#include "audit/log_int.h"
#include "audit/note.h"
#include "lib/util.h"

#define MAX_ID	256	/* issuer, serial, device id, batch */

/* Key "issuer\0serial" into buf. */
static int
serial_key(const char *issuer, const char *serial, char *buf, size_t cap,
    size_t *len)
{
	size_t il = strlen(issuer), sl = strlen(serial);

	if (il == 0 || sl == 0 || il + 1 + sl > cap || il > MAX_ID ||
	    sl > MAX_ID)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "bad issuer/serial");
	memcpy(buf, issuer, il);
	buf[il] = '\0';
	memcpy(buf + il + 1, serial, sl);
	*len = il + 1 + sl;
	return 0;
}

int
kr_log_intent(struct kr_ltx *ltx, const char *actor,
    const struct kr_cert_intent *ci, uint64_t *index)
{
	struct kr_log *log = ltx->log;
	char key[2 * MAX_ID + 2], tbs[65];
	uint8_t ib[8];
	MDB_val k, v = { 8, ib }, e = { 0, (void *)"" };
	uint64_t idx;
	size_t kl;
	int r, rc;

	if (ltx->err != 0)
		return kr_errf(ltx->err, "audit transaction already failed");
	if ((r = serial_key(ci->issuer, ci->serial, key, sizeof(key),
	    &kl)) != 0)
		return kr_ltx_fail(ltx, r);
	kr_hex(ci->tbs_sha256, 32, tbs);
	{
		struct kr_kv kv[] = {
			{ "issuer", ci->issuer }, { "serial", ci->serial },
			{ "tbs-sha256", tbs }, { "device-id", ci->device_id },
			{ "batch", ci->batch }, { "profile", ci->profile },
		};
		if ((r = kr_ltx_append(ltx, KR_E_CERT_INTENT, actor, kv,
		    KR_ARRAY_SIZE(kv), &idx)) != 0)
			return r;
	}
	kr_be64(idx, ib);
	k.mv_size = kl;
	k.mv_data = key;
	rc = mdb_put(ltx->txn, log->serials, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return kr_ltx_fail(ltx, kr_errf(KR_ERR_EXISTS,
		    "serial %s of issuer %s was already used", ci->serial,
		    ci->issuer));
	if (rc != 0)
		return kr_ltx_fail(ltx, kr_log_mdb_err(rc, "serial index"));
	k.mv_size = 8;
	k.mv_data = ib;
	if ((rc = mdb_put(ltx->txn, log->intents, &k, &e, MDB_APPEND)) != 0)
		return kr_ltx_fail(ltx, kr_log_mdb_err(rc, "open intents"));
	if (index != NULL)
		*index = idx;
	return 0;
}

/* Check that intent is an open cert-intent; copy issuer and serial. */
static int
open_intent(struct kr_ltx *ltx, uint64_t intent, char *issuer,
    char *serial, char *device)
{
	const uint8_t *e;
	size_t len;
	uint8_t ib[8];
	MDB_val k = { 8, ib }, v;
	enum kr_etype t;
	int r, rc;

	if ((r = kr_log_entry(ltx->log, ltx->txn, intent, &e, &len)) != 0)
		return r;
	if ((r = kr_entry_check(ltx->log->origin, e, len, &t)) != 0)
		return kr_errctx(r, "log entry %llu",
		    (unsigned long long)intent);
	if (t != KR_E_CERT_INTENT)
		return kr_errf(KR_ERR_NOT_FOUND,
		    "log entry %llu is not a cert-intent",
		    (unsigned long long)intent);
	kr_be64(intent, ib);
	if ((rc = mdb_get(ltx->txn, ltx->log->intents, &k, &v)) ==
	    MDB_NOTFOUND)
		return kr_errf(KR_ERR_STATE,
		    "cert-intent %llu is already resolved",
		    (unsigned long long)intent);
	if (rc != 0)
		return kr_log_mdb_err(rc, "open intents");
	if ((r = kr_entry_get_str(e, len, "issuer", issuer, MAX_ID + 1)) != 0 ||
	    (r = kr_entry_get_str(e, len, "serial", serial, MAX_ID + 1)) != 0)
		return r;
	if (device != NULL && kr_entry_get_str(e, len, "device-id", device,
	    MAX_ID + 1) != 0)
		device[0] = '\0';
	return 0;
}

static int
resolve_intent(struct kr_ltx *ltx, uint64_t intent)
{
	uint8_t ib[8];
	MDB_val k = { 8, ib };
	int rc;

	kr_be64(intent, ib);
	if ((rc = mdb_del(ltx->txn, ltx->log->intents, &k, NULL)) != 0)
		return kr_log_mdb_err(rc, "resolving intent");
	return 0;
}

int
kr_log_issued(struct kr_ltx *ltx, const char *actor,
    const struct kr_cert_issued *ci, uint64_t *index)
{
	struct kr_log *log = ltx->log;
	char issuer[MAX_ID + 1], serial[MAX_ID + 1], hex[65], ibuf[24];
	char idev[MAX_ID + 1], *b64 = NULL;
	uint8_t h[32], xb[8];
	MDB_val k, v = { 8, xb };
	uint64_t idx;
	int r, rc;

	if (ltx->err != 0)
		return kr_errf(ltx->err, "audit transaction already failed");
	if (ci->der == NULL || ci->der_len == 0 ||
	    ci->der_len > KR_LOG_MAX_VALUE / 4 * 3 - 3000) {
		r = kr_errf(KR_ERR_TOO_LARGE,
		    "certificate of %zu bytes cannot be logged", ci->der_len);
		goto out;
	}
	if ((r = open_intent(ltx, ci->intent, issuer, serial, idev)) != 0)
		goto out;
	if (idev[0] != '\0' && (ci->device_id == NULL ||
	    strcmp(idev, ci->device_id) != 0)) {
		r = kr_errf(KR_ERR_INVALID_ARGUMENT, "cert-intent %llu was for "
		    "device %s, not %s", (unsigned long long)ci->intent, idev,
		    ci->device_id != NULL ? ci->device_id : "(none)");
		goto out;
	}
	kr_sha256(ci->der, ci->der_len, h);
	kr_hex(h, 32, hex);
	if ((r = kr_snprintf(ibuf, sizeof(ibuf), "%llu",
	    (unsigned long long)ci->intent)) != 0 ||
	    (r = kr_b64_encode_alloc(ci->der, ci->der_len, &b64)) != 0)
		goto out;
	{
		struct kr_kv kv[] = {
			{ "issuer", issuer }, { "serial", serial },
			{ "intent", ibuf }, { "cert-sha256", hex },
			{ "device-id", ci->device_id }, { "batch", ci->batch },
			{ "cert", b64 },
		};
		if ((r = kr_ltx_append(ltx, KR_E_CERT_ISSUED, actor, kv,
		    KR_ARRAY_SIZE(kv), &idx)) != 0)
			goto out;
	}
	kr_be64(idx, xb);
	k.mv_size = 32;
	k.mv_data = h;
	rc = mdb_put(ltx->txn, log->issued, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		r = kr_errf(KR_ERR_EXISTS, "certificate %s already logged",
		    hex);
		goto out;
	}
	if (rc != 0) {
		r = kr_log_mdb_err(rc, "issued index");
		goto out;
	}
	if (ci->device_id != NULL) {
		k.mv_size = strlen(ci->device_id);
		k.mv_data = (void *)ci->device_id;
		if (k.mv_size == 0 || k.mv_size > MAX_ID) {
			r = kr_errf(KR_ERR_INVALID_ARGUMENT, "bad device id");
			goto out;
		}
		if ((rc = mdb_put(ltx->txn, log->devcerts, &k, &v,
		    MDB_NODUPDATA)) != 0) {
			r = kr_log_mdb_err(rc, "device index");
			goto out;
		}
	}
	if ((r = resolve_intent(ltx, ci->intent)) != 0)
		goto out;
	if (index != NULL)
		*index = idx;
	r = 0;
 out:
	free(b64);
	if (r != 0)
		kr_ltx_fail(ltx, r);
	return r;
}

int
kr_log_abandon(struct kr_ltx *ltx, const char *actor, uint64_t intent,
    const char *reason, uint64_t *index)
{
	char issuer[MAX_ID + 1], serial[MAX_ID + 1], ibuf[24];
	int r;

	if (ltx->err != 0)
		return kr_errf(ltx->err, "audit transaction already failed");
	if ((r = open_intent(ltx, intent, issuer, serial, NULL)) != 0 ||
	    (r = kr_snprintf(ibuf, sizeof(ibuf), "%llu",
	    (unsigned long long)intent)) != 0)
		return kr_ltx_fail(ltx, r);
	if ((r = kr_ltx_appendf(ltx, KR_E_CERT_ABANDONED, actor, index,
	    "issuer", issuer, "serial", serial, "intent", ibuf,
	    "reason", reason, NULL)) != 0)
		return r;
	if ((r = resolve_intent(ltx, intent)) != 0)
		return kr_ltx_fail(ltx, r);
	return 0;
}

int
kr_log_recover(struct kr_log *log, const struct kr_note_signer *signer,
    const char *actor, size_t *n)
{
	struct kr_ltx *ltx = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint64_t *list = NULL, *nl;
	const char *nck[KR_STARTUP_NOTES], *nres[KR_STARTUP_NOTES];
	const char *ndet[KR_STARTUP_NOTES];
	size_t cnt = 0, cap = 0, i, nn;
	int r, rc;

	if (n != NULL)
		*n = 0;
	if ((r = kr_log_begin(log, &ltx)) != 0)
		goto out;
	/* Collect first: the cursor must not see our own deletes. */
	if ((rc = mdb_cursor_open(ltx->txn, log->intents, &c)) != 0) {
		r = kr_log_mdb_err(rc, "open intents");
		goto out;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8) {
			r = kr_errf(KR_ERR_TAMPERED, "bad open-intent key");
			goto out;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nl = reallocarray(list, cap, sizeof(*list))) ==
			    NULL) {
				r = kr_errf(KR_ERR_ALLOC, "intents");
				goto out;
			}
			list = nl;
		}
		list[cnt++] = kr_get_be64(k.mv_data);
	}
	mdb_cursor_close(c);
	c = NULL;
	if (rc != MDB_NOTFOUND) {
		r = kr_log_mdb_err(rc, "open intents");
		goto out;
	}
	for (i = 0; i < cnt; i++)
		if ((r = kr_log_abandon(ltx, actor, list[i],
		    "interrupted before the certificate was logged",
		    NULL)) != 0)
			goto out;
	/* Repairs made before the log was open (lib/util.h). */
	nn = kr_startup_notes(nck, nres, ndet, KR_STARTUP_NOTES);
	for (i = 0; i < nn; i++)
		if ((r = kr_ltx_appendf(ltx, KR_E_SELF_CHECK, actor, NULL,
		    "check", nck[i], "result", nres[i], "detail", ndet[i],
		    NULL)) != 0)
			goto out;
	r = kr_ltx_commit(ltx, signer, NULL);
	ltx = NULL;
	if (r != 0)
		goto out;
	kr_startup_notes_clear();
	if (n != NULL)
		*n = cnt;
 out:
	if (c != NULL)
		mdb_cursor_close(c);
	kr_ltx_abort(ltx);
	free(list);
	return r;
}

int
kr_log_serial_lookup(struct kr_log *log, MDB_txn *txn, const char *issuer,
    const char *serial, uint64_t *intent)
{
	char key[2 * MAX_ID + 2];
	MDB_val k, v;
	size_t kl;
	int r, rc;

	if ((r = serial_key(issuer, serial, key, sizeof(key), &kl)) != 0)
		return r;
	k.mv_size = kl;
	k.mv_data = key;
	if ((rc = mdb_get(txn, log->serials, &k, &v)) == MDB_NOTFOUND)
		return kr_errf(KR_ERR_NOT_FOUND, "serial %s of %s", serial,
		    issuer);
	if (rc != 0)
		return kr_log_mdb_err(rc, "serial index");
	if (v.mv_size != 8)
		return kr_errf(KR_ERR_TAMPERED, "serial index record");
	*intent = kr_get_be64(v.mv_data);
	return 0;
}

int
kr_log_device_certs(struct kr_log *log, MDB_txn *txn, const char *device_id,
    uint64_t **idx, size_t *n)
{
	MDB_cursor *c = NULL;
	MDB_val k = { strlen(device_id), (void *)device_id }, v;
	uint64_t *list = NULL, *nl;
	size_t cnt = 0, cap = 0;
	int r, rc;

	*idx = NULL;
	*n = 0;
	if (k.mv_size == 0 || k.mv_size > MAX_ID)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "bad device id");
	if ((rc = mdb_cursor_open(txn, log->devcerts, &c)) != 0)
		return kr_log_mdb_err(rc, "device index");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
		if (v.mv_size != 8) {
			r = kr_errf(KR_ERR_TAMPERED, "device index record");
			goto out;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 4;
			if ((nl = reallocarray(list, cap, sizeof(*list))) ==
			    NULL) {
				r = kr_errf(KR_ERR_ALLOC, "device certs");
				goto out;
			}
			list = nl;
		}
		list[cnt++] = kr_get_be64(v.mv_data);
	}
	if (rc != MDB_NOTFOUND) {
		r = kr_log_mdb_err(rc, "device index");
		goto out;
	}
	*idx = list;
	list = NULL;
	*n = cnt;
	r = 0;
 out:
	mdb_cursor_close(c);
	free(list);
	return r;
}

int
kr_log_cert_lookup(struct kr_log *log, MDB_txn *txn,
    const uint8_t sha256[32], uint64_t *index)
{
	MDB_val k = { 32, (void *)sha256 }, v;
	int rc;

	if ((rc = mdb_get(txn, log->issued, &k, &v)) == MDB_NOTFOUND)
		return kr_errf(KR_ERR_NOT_FOUND, "certificate not in the log");
	if (rc != 0)
		return kr_log_mdb_err(rc, "issued index");
	if (v.mv_size != 8)
		return kr_errf(KR_ERR_TAMPERED, "issued index record");
	*index = kr_get_be64(v.mv_data);
	return 0;
}
