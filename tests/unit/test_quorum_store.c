/*
 * test_quorum_store.c - share sets in a real LMDB log (ceremony/qstore.c)
 * and the session requirement of batch sign (ceremony/session.c): store,
 * reload, activate, retire, list; every refusal of kr_session_require.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ceremony/qstore.h"
#include "ceremony/session.h"
#include "lib/util.h"

struct fx {
	char dir[256];
	struct kr_log *log;
	EVP_PKEY *key;
	struct kr_note_signer signer;
};

static const char *const names[] = { "alice", "bob", "carol", "dave" };

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	EVP_PKEY_CTX *kc;

	snprintf(f->dir, sizeof(f->dir), "%s/kr-qstore.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	strncat(f->dir, "/log", sizeof(f->dir) - strlen(f->dir) - 1);
	if ((kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) == NULL ||
	    EVP_PKEY_keygen_init(kc) != 1 || EVP_PKEY_keygen(kc, &f->key) != 1)
		return -1;
	EVP_PKEY_CTX_free(kc);
	if (kr_log_create(f->dir, "test.example/log") != 0 ||
	    kr_log_open(f->dir, KR_LOG_WRITE, &f->log) != 0 ||
	    kr_signer_evp(&f->signer, "test.example/log",
	    (struct evp_pkey_st *)f->key) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[600];

	kr_log_close(f->log);
	EVP_PKEY_free(f->key);
	f->dir[strlen(f->dir) - 4] = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Store sets (and optionally a raw session row) in one commit. */
static void
commit(struct fx *f, struct kr_qset *a, int act_a, struct kr_qset *b,
    int act_b, const char *skey, const char *sval)
{
	struct kr_ltx *ltx = NULL;
	MDB_dbi d;
	MDB_val k, v;

	assert_int_equal(kr_log_begin(f->log, &ltx), 0);
	assert_int_equal(kr_ltx_appendf(ltx, KR_E_SELF_CHECK, "test", NULL,
	    "check", "quorum", "result", "ok", NULL), 0);
	if (a != NULL)
		assert_int_equal(kr_qstore_put(f->log, kr_ltx_mdb(ltx), a,
		    act_a), 0);
	if (b != NULL)
		assert_int_equal(kr_qstore_put(f->log, kr_ltx_mdb(ltx), b,
		    act_b), 0);
	if (skey != NULL) {
		assert_int_equal(kr_log_dbi(f->log, kr_ltx_mdb(ltx),
		    KR_SESSION_DBI, 0, &d), 0);
		k.mv_size = strlen(skey);
		k.mv_data = (void *)skey;
		v.mv_size = strlen(sval);
		v.mv_data = (void *)sval;
		assert_int_equal(mdb_put(kr_ltx_mdb(ltx), d, &k, &v, 0), 0);
	}
	assert_int_equal(kr_ltx_commit(ltx, &f->signer, NULL), 0);
}

static void
test_store_and_retire(void **state)
{
	struct fx *f = *state;
	struct kr_qset *s1 = NULL, *s2 = NULL, *got = NULL, **all = NULL;
	struct kr_share *sh1 = NULL, *sh2 = NULL;
	uint8_t secret[KR_Q_SECRET_LEN];
	MDB_txn *txn = NULL;
	size_t n = 0;

	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	assert_int_equal(kr_log_read_begin(f->log, &txn), 0);
	assert_int_equal(kr_qstore_active(f->log, txn, "root", &got),
	    KR_ERR_STATE);
	assert_non_null(strstr(kr_err_detail(), "no share set for token role "
	    "'root' (run the genesis ceremony)"));
	assert_int_equal(kr_qstore_all(f->log, txn, &all, &n), 0);
	assert_int_equal(n, 0);
	mdb_txn_abort(txn);

	assert_int_equal(kr_quorum_split(secret, "root", 2, 3, names, &s1,
	    &sh1), 0);
	commit(f, s1, 1, NULL, 0, NULL, NULL);
	assert_int_equal(kr_log_read_begin(f->log, &txn), 0);
	assert_int_equal(kr_qstore_active(f->log, txn, "root", &got), 0);
	assert_memory_equal(got, s1, sizeof(*s1));
	free(got);
	mdb_txn_abort(txn);

	/* Reshare: new set active, old one retired, both listed. */
	assert_int_equal(kr_quorum_split(secret, "root", 3, 4, names, &s2,
	    &sh2), 0);
	s1->retired = 1;
	memcpy(s1->successor, s2->id, KR_Q_ID_LEN);
	kr_time_rfc3339(time(NULL), s1->retired_at);
	commit(f, s1, 0, s2, 1, NULL, NULL);
	assert_int_equal(kr_log_read_begin(f->log, &txn), 0);
	assert_int_equal(kr_qstore_active(f->log, txn, "root", &got), 0);
	assert_memory_equal(got->id, s2->id, KR_Q_ID_LEN);
	free(got);
	assert_int_equal(kr_qstore_get(f->log, txn, s1->id, &got), 0);
	assert_true(got->retired);
	assert_memory_equal(got->successor, s2->id, KR_Q_ID_LEN);
	free(got);
	assert_int_equal(kr_qstore_all(f->log, txn, &all, &n), 0);
	assert_int_equal(n, 2);
	/* An old share is named as retired against the stored sets. */
	assert_int_equal(kr_quorum_check_share(s2, &sh1[0],
	    (const struct kr_qset *const *)all, n), KR_ERR_QUORUM);
	assert_non_null(strstr(kr_err_detail(), "which was retired on"));
	kr_qstore_free(all, n);
	mdb_txn_abort(txn);
	kr_shares_free(sh1, 3);
	kr_shares_free(sh2, 4);
	free(s1);
	free(s2);
}

/*
 * A pending set (PIN change in flight) round-trips with its flag, is
 * listed, and is not the active set; without the flag the row is as
 * before (no "pending" key).
 */
static void
test_pending_set(void **state)
{
	struct fx *f = *state;
	struct kr_qset *s1 = NULL, *s2 = NULL, *got = NULL, **all = NULL;
	struct kr_share *sh1 = NULL, *sh2 = NULL;
	uint8_t secret[KR_Q_SECRET_LEN];
	MDB_txn *txn = NULL;
	size_t n = 0, i, npend = 0;

	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	assert_int_equal(kr_quorum_split(secret, "root", 2, 3, names, &s1,
	    &sh1), 0);
	assert_int_equal(kr_quorum_split(secret, "root", 2, 3, names, &s2,
	    &sh2), 0);
	commit(f, s1, 1, NULL, 0, NULL, NULL);
	s2->pending = 1;
	commit(f, s2, 0, NULL, 0, NULL, NULL);
	assert_int_equal(kr_log_read_begin(f->log, &txn), 0);
	assert_int_equal(kr_qstore_active(f->log, txn, "root", &got), 0);
	assert_memory_equal(got->id, s1->id, KR_Q_ID_LEN);
	assert_false(got->pending);
	free(got);
	assert_int_equal(kr_qstore_get(f->log, txn, s2->id, &got), 0);
	assert_true(got->pending);
	assert_false(got->retired);
	free(got);
	assert_int_equal(kr_qstore_all(f->log, txn, &all, &n), 0);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++)
		npend += all[i]->pending != 0;
	assert_int_equal(npend, 1);
	kr_qstore_free(all, n);
	mdb_txn_abort(txn);
	/* Settled: active, no longer pending. */
	s2->pending = 0;
	commit(f, s2, 1, NULL, 0, NULL, NULL);
	assert_int_equal(kr_log_read_begin(f->log, &txn), 0);
	assert_int_equal(kr_qstore_active(f->log, txn, "root", &got), 0);
	assert_memory_equal(got->id, s2->id, KR_Q_ID_LEN);
	assert_false(got->pending);
	free(got);
	mdb_txn_abort(txn);
	kr_shares_free(sh1, 3);
	kr_shares_free(sh2, 3);
	free(s1);
	free(s2);
}

static void
assert_state(int r, const char *needle)
{
	if (r != KR_ERR_STATE || strstr(kr_err_detail(), needle) == NULL)
		fail_msg("got %d '%s', want '%s'", r, kr_err_detail(), needle);
}

static void
test_session_require(void **state)
{
	struct fx *f = *state;
	struct kr_qset *set = NULL;
	struct kr_share *sh = NULL;
	uint8_t secret[KR_Q_SECRET_LEN] = { 1 };
	char row[512], id[KR_Q_ID_HEX], future[32], past[32];
	static const char sid[] = "00112233445566778899aabbccddeeff";

	/* No quorum over the issuing token: no session needed. */
	assert_int_equal(kr_session_require(f->log, NULL), 0);
	assert_int_equal(kr_quorum_split(secret, "issuing", 1, 1, names, &set,
	    &sh), 0);
	commit(f, set, 1, NULL, 0, NULL, NULL);
	kr_qset_id_hex(set->id, id);
	assert_state(kr_session_require(f->log, NULL), "the issuing token is "
	    "under quorum");
	assert_non_null(strstr(kr_err_detail(), id));
	assert_state(kr_session_require(f->log, "xyz"), "malformed");
	assert_state(kr_session_require(f->log, sid), "unknown");
	kr_time_rfc3339(time(NULL) + 3600, future);
	kr_time_rfc3339(time(NULL) - 10, past);
	snprintf(row, sizeof(row), "{\"id\":\"%s\",\"state\":\"open\","
	    "\"expires\":\"%s\",\"pid\":%ld}", sid, future, (long)getppid());
	commit(f, NULL, 0, NULL, 0, "s/00112233445566778899aabbccddeeff", row);
	assert_int_equal(kr_session_require(f->log, sid), 0);
	snprintf(row, sizeof(row), "{\"id\":\"%s\",\"state\":\"open\","
	    "\"expires\":\"%s\",\"pid\":%ld}", sid, future, (long)getppid() + 1);
	commit(f, NULL, 0, NULL, 0, "s/00112233445566778899aabbccddeeff", row);
	assert_state(kr_session_require(f->log, sid), "belongs to another "
	    "process");
	snprintf(row, sizeof(row), "{\"id\":\"%s\",\"state\":\"open\","
	    "\"expires\":\"%s\",\"pid\":%ld}", sid, past, (long)getppid());
	commit(f, NULL, 0, NULL, 0, "s/00112233445566778899aabbccddeeff", row);
	assert_state(kr_session_require(f->log, sid), "expired at");
	snprintf(row, sizeof(row), "{\"id\":\"%s\",\"state\":\"closed\","
	    "\"expires\":\"%s\",\"pid\":%ld}", sid, future, (long)getppid());
	commit(f, NULL, 0, NULL, 0, "s/00112233445566778899aabbccddeeff", row);
	assert_state(kr_session_require(f->log, sid), "is closed");
	kr_shares_free(sh, 1);
	free(set);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_and_retire, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pending_set, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_require, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
