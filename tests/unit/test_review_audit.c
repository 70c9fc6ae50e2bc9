/*
 * test_review_audit.c - defects found in review of audit/: each case
 * tampers with a real LMDB log (raw mdb_put on a closed log's files) or
 * feeds the strict parsers input they used to accept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/export.h"
#include "audit/verify.h"
#include "lib/util.h"

#define ORIGIN "keyroom.test/review"

static EVP_PKEY *key;
static struct kr_note_signer signer;
static char dir[256];

static int
setup(void **state)
{
	(void)state;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (key == NULL || kr_signer_evp(&signer, ORIGIN, key) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	return 0;
}

static void
rm_rf(const char *p)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", p);
	assert_int_equal(system(cmd), 0);
}

/* A log with init, key-generate and one issued certificate for dev1. */
static void
make_log(void)
{
	struct kr_log *log = NULL;
	struct kr_ltx *ltx;
	struct kr_cert_intent ci;
	struct kr_cert_issued cs;
	uint8_t der[64];
	uint64_t i1;

	snprintf(dir, sizeof(dir), "/tmp/kr-test-review.%d", (int)getpid());
	rm_rf(dir);
	assert_int_equal(kr_log_create(dir, ORIGIN), 0);
	assert_int_equal(kr_log_open(dir, KR_LOG_WRITE, &log), 0);
	assert_int_equal(kr_log_init(log, &signer, "test", NULL,
	    "keyroom-audit", "audit-key", NULL), 0);
	memset(&ci, 0, sizeof(ci));
	ci.issuer = "iss";
	ci.serial = "1a";
	ci.device_id = "dev1";
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	assert_int_equal(kr_log_intent(ltx, "op", &ci, &i1), 0);
	assert_int_equal(kr_ltx_commit(ltx, &signer, NULL), 0);
	memset(der, 0x30, sizeof(der));
	memset(&cs, 0, sizeof(cs));
	cs.intent = i1;
	cs.der = der;
	cs.der_len = sizeof(der);
	cs.device_id = "dev1";
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	assert_int_equal(kr_log_issued(ltx, "op", &cs, NULL), 0);
	assert_int_equal(kr_ltx_commit(ltx, &signer, NULL), 0);
	kr_log_close(log);
}

/* Raw write into a closed log, as someone holding a copy of the files. */
static void
raw_put(const char *dbname, unsigned int dbflags, const void *k, size_t kl,
    const void *v, size_t vl)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val mk = { kl, (void *)k }, mv = { vl, (void *)v };

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, KR_LOG_MAX_DBS), 0);
	assert_int_equal(mdb_env_set_mapsize(env, (size_t)64 << 20), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, dbname, dbflags, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &mk, &mv, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static int
verify_dir(struct kr_verify_report *rep)
{
	struct kr_log *log = NULL;
	struct kr_verify_opts o;
	int r;

	memset(&o, 0, sizeof(o));
	assert_int_equal(kr_log_open(dir, 0, &log), 0);
	r = kr_audit_verify(log, &o, rep);
	kr_log_close(log);
	return r;
}

/*
 * Defect: export wrote an entry longer than the 16-bit length prefix of
 * a tlog-tiles entry bundle (the prefix silently truncated) instead of
 * refusing the tampered log.
 */
static void
test_export_oversized_entry(void **state)
{
	struct kr_verify_report rep;
	struct kr_export_stats st;
	struct kr_log *log = NULL;
	uint8_t kb[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
	char out[300];
	size_t big = KR_LOG_MAX_ENTRY + 100;
	char *e;

	(void)state;
	make_log();
	assert_non_null(e = malloc(big));
	memset(e, 'a', big);
	raw_put("entries", 0, kb, 8, e, big);
	free(e);
	/* The verifier names it ... */
	assert_int_equal(verify_dir(&rep), KR_ERR_TAMPERED);
	assert_int_equal(rep.bad_index, 1);
	/* ... and export refuses to bundle it. */
	snprintf(out, sizeof(out), "%s.export", dir);
	rm_rf(out);
	assert_int_equal(kr_log_open(dir, 0, &log), 0);
	assert_int_equal(kr_audit_export(log, out, &st), KR_ERR_TAMPERED);
	assert_non_null(strstr(kr_err_detail(), "entry 1"));
	kr_log_close(log);
	rm_rf(out);
	rm_rf(dir);
}

/*
 * Defect: the verifier counted the serial, issued and intents indexes
 * against the log but not the device index, so a device record that no
 * cert-issued entry explains (a device made to look certified) passed.
 */
static void
test_verify_extra_device_record(void **state)
{
	struct kr_verify_report rep;
	uint8_t xb[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };

	(void)state;
	make_log();
	assert_int_equal(verify_dir(&rep), 0);
	assert_int_equal(rep.issued, 1);
	raw_put("devcerts", MDB_DUPSORT, "dev9", 4, xb, 8);
	assert_int_equal(verify_dir(&rep), KR_ERR_TAMPERED);
	assert_non_null(strstr(kr_err_detail(), "device index"));
	rm_rf(dir);
}

/*
 * Defect: the entry parser checked only the shape of "time" (digits in
 * the right places), so month 13 or hour 24 passed the verifier.
 */
static void
test_entry_time_ranges(void **state)
{
	static const char *bad[] = {
		"2026-13-18T08:26:40Z", "2026-00-18T08:26:40Z",
		"2026-11-00T08:26:40Z", "2026-11-32T08:26:40Z",
		"2026-02-30T08:26:40Z", "2026-11-18T24:26:40Z",
		"2026-11-18T08:60:40Z", "2026-11-18T08:26:61Z",
		"1969-12-31T23:59:59Z",
	};
	static const char *good[] = {
		"2026-11-18T08:26:40Z", "2028-02-29T23:59:59Z",
		"2026-12-31T00:00:00Z",
	};
	char e[256];
	enum kr_etype t;
	size_t i;

	(void)state;
	for (i = 0; i < KR_ARRAY_SIZE(good); i++) {
		snprintf(e, sizeof(e), ORIGIN " entry/v1\ntype shutdown\n"
		    "time %s\nactor a\n", good[i]);
		if (kr_entry_check(ORIGIN, (const uint8_t *)e, strlen(e),
		    &t) != 0)
			fail_msg("good time %s refused: %s", good[i],
			    kr_err_detail());
	}
	for (i = 0; i < KR_ARRAY_SIZE(bad); i++) {
		snprintf(e, sizeof(e), ORIGIN " entry/v1\ntype shutdown\n"
		    "time %s\nactor a\n", bad[i]);
		if (kr_entry_check(ORIGIN, (const uint8_t *)e, strlen(e),
		    &t) != KR_ERR_FORMAT)
			fail_msg("bad time %s accepted", bad[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_export_oversized_entry),
		cmocka_unit_test(test_verify_extra_device_record),
		cmocka_unit_test(test_entry_time_ranges),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
