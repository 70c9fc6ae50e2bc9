/*
 * test_audit.c - audit entries (fixed key order, value rules, strict
 * parser), signed notes and vkeys, checkpoint bodies, tile paths, and
 * the LMDB log API: transactions, issuance index, duplicate serials,
 * recovery of open intents, poisoned transactions, map full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/entry.h"
#include "audit/export.h"
#include "audit/note.h"
#include "audit/qr.h"
#include "audit/verify.h"
#include "lib/util.h"

#define ORIGIN "keyroom.test/unit"
#define T0 1795000000	/* fixed time for golden entries */

static EVP_PKEY *key;
static struct kr_note_signer signer;

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

static int
enc(enum kr_etype t, const struct kr_kv *kv, size_t n, char *buf, size_t *len)
{
	return kr_entry_encode(ORIGIN, t, T0, "operator alice", kv, n, buf,
	    KR_LOG_MAX_ENTRY + 1, len);
}

static void
test_entry_golden(void **state)
{
	static char buf[KR_LOG_MAX_ENTRY + 1];
	/* Given out of order: the table order wins. */
	struct kr_kv kv[] = {
		{ "reason", "public key does not match manifest" },
		{ "file", "csr/0042.csr" }, { "batch", "B-1" },
		{ "device-id", NULL },
	};
	const char *want = ORIGIN " entry/v1\n"
	    "type request-rejected\n"
	    "time 2026-11-18T11:06:40Z\n"
	    "actor operator alice\n"
	    "batch B-1\n"
	    "file csr/0042.csr\n"
	    "reason public key does not match manifest\n";
	enum kr_etype t;
	size_t len;

	(void)state;
	assert_int_equal(enc(KR_E_REQUEST_REJECTED, kv, 4, buf, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	assert_int_equal(kr_entry_check(ORIGIN, (uint8_t *)buf, len, &t), 0);
	assert_int_equal(t, KR_E_REQUEST_REJECTED);
}

static void
test_entry_rejects(void **state)
{
	static char buf[KR_LOG_MAX_ENTRY + 1];
	static char big[40001];
	static const struct {
		const char *key, *value, *why;
	} bad[] = {
		{ "bogus", "x", "unknown key 'bogus'" },
		{ "reason", "two\nlines", "single-line" },
		{ "reason", "tab\there", "control" },
		{ "reason", "del\x7f", "control" },
		{ "reason", "", "non-empty" },
		{ "reason", "overlong \xc0\xaf", "UTF-8" },
		{ "reason", "lone \x80", "UTF-8" },
		{ "reason", "surrogate \xed\xa0\x80", "UTF-8" },
		{ "reason", "truncated \xe2\x82", "UTF-8" },
		{ "reason", "c1 \xc2\x85", "UTF-8" },
		{ "reason", "line sep \xe2\x80\xa8", "UTF-8" },
	};
	struct kr_kv kv[2];
	size_t i, len;

	(void)state;
	for (i = 0; i < KR_ARRAY_SIZE(bad); i++) {
		kv[0].key = bad[i].key;
		kv[0].value = bad[i].value;
		kv[1].key = "reason";
		kv[1].value = "ok";
		assert_int_equal(enc(KR_E_REQUEST_REJECTED, kv,
		    strcmp(bad[i].key, "reason") == 0 ? 1 : 2, buf, &len),
		    KR_ERR_INVALID_ARGUMENT);
	}
	/* Missing required key, duplicate key. */
	kv[0].key = "batch";
	kv[0].value = "B";
	assert_int_equal(enc(KR_E_REQUEST_REJECTED, kv, 1, buf, &len),
	    KR_ERR_INVALID_ARGUMENT);
	assert_non_null(strstr(kr_err_detail(), "missing key 'reason'"));
	kv[1] = kv[0];
	assert_int_equal(enc(KR_E_BATCH_BEGIN, kv, 2, buf, &len),
	    KR_ERR_INVALID_ARGUMENT);
	assert_non_null(strstr(kr_err_detail(), "duplicate key 'batch'"));
	/* Unicode is fine. */
	kv[0].key = "reason";
	kv[0].value = "clé périmée — ✓ 𝄞";
	assert_int_equal(enc(KR_E_REQUEST_REJECTED, kv, 1, buf, &len), 0);
	/* Too large: two values of 40,000 bytes. */
	memset(big, 'a', sizeof(big) - 1);
	{
		struct kr_kv k2[] = { { "ceremony", "c" }, { "step", "1" },
		    { "action", big }, { "result", "ok" }, { "detail", big } };

		assert_int_equal(enc(KR_E_CEREMONY_STEP, k2, 5, buf, &len),
		    KR_ERR_TOO_LARGE);
	}
	/* Bad actor. */
	assert_int_equal(kr_entry_encode(ORIGIN, KR_E_SHUTDOWN, T0, "a\nb",
	    NULL, 0, buf, sizeof(buf), &len), KR_ERR_INVALID_ARGUMENT);
}

static void
test_entry_check_strict(void **state)
{
	static const char *bad[] = {
		/* wrong origin */
		"other/log entry/v1\ntype shutdown\ntime 2026-11-18T08:26:40Z\n"
		"actor a\n",
		/* unknown type */
		ORIGIN " entry/v1\ntype reboot\ntime 2026-11-18T08:26:40Z\n"
		"actor a\n",
		/* bad time */
		ORIGIN " entry/v1\ntype shutdown\ntime 2026-11-18 08:26:40\n"
		"actor a\n",
		/* keys out of order */
		ORIGIN " entry/v1\ntype batch-end\ntime 2026-11-18T08:26:40Z\n"
		"actor a\nbatch B\nrejected 0\nsigned 1\nresult ok\n",
		/* missing required key */
		ORIGIN " entry/v1\ntype batch-end\ntime 2026-11-18T08:26:40Z\n"
		"actor a\nbatch B\nsigned 1\nrejected 0\n",
		/* extra key */
		ORIGIN " entry/v1\ntype shutdown\ntime 2026-11-18T08:26:40Z\n"
		"actor a\nreason x\nmore y\n",
		/* no final newline */
		ORIGIN " entry/v1\ntype shutdown\ntime 2026-11-18T08:26:40Z\n"
		"actor a",
		/* duplicate key */
		ORIGIN " entry/v1\ntype shutdown\ntime 2026-11-18T08:26:40Z\n"
		"actor a\nreason x\nreason y\n",
		/* empty value */
		ORIGIN " entry/v1\ntype shutdown\ntime 2026-11-18T08:26:40Z\n"
		"actor a\nreason \n",
	};
	const char *good = ORIGIN " entry/v1\ntype batch-end\n"
	    "time 2026-11-18T08:26:40Z\nactor a\nbatch B\nsigned 1\n"
	    "rejected 0\nresult ok\n";
	enum kr_etype t;
	size_t i;

	(void)state;
	assert_int_equal(kr_entry_check(ORIGIN, (const uint8_t *)good,
	    strlen(good), &t), 0);
	for (i = 0; i < KR_ARRAY_SIZE(bad); i++)
		if (kr_entry_check(ORIGIN, (const uint8_t *)bad[i],
		    strlen(bad[i]), &t) != KR_ERR_FORMAT)
			fail_msg("bad entry %zu accepted", i);
}

static void
test_note(void **state)
{
	uint8_t root[32], r2[32], pub2[32];
	char body[256], *note = NULL, vk[512], name[256];
	const char *b;
	size_t blen, nlen, bl;
	uint64_t size;
	EVP_PKEY *k2;
	struct kr_note_signer s2;

	(void)state;
	memset(root, 0xab, 32);
	assert_int_equal(kr_checkpoint_body(ORIGIN, 1234, root, body,
	    sizeof(body), &blen), 0);
	assert_string_equal(body, ORIGIN "\n1234\n"
	    "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n");
	assert_int_equal(kr_note_sign(&signer, body, blen, &note, &nlen), 0);
	assert_int_equal(memcmp(note, body, blen), 0);
	assert_memory_equal(note + blen, "\n\xe2\x80\x94 " ORIGIN " ",
	    strlen(ORIGIN) + 6);
	assert_int_equal(kr_note_verify(note, nlen, ORIGIN, signer.pub, &b,
	    &bl), 0);
	assert_int_equal(bl, blen);
	assert_int_equal(kr_checkpoint_parse(b, bl, name, sizeof(name), &size,
	    r2), 0);
	assert_int_equal(size, 1234);
	assert_memory_equal(r2, root, 32);
	/* vkey round trip. */
	assert_int_equal(kr_note_vkey(ORIGIN, signer.pub, vk, sizeof(vk)), 0);
	assert_int_equal(kr_note_vkey_parse(vk, name, sizeof(name), pub2), 0);
	assert_string_equal(name, ORIGIN);
	assert_memory_equal(pub2, signer.pub, 32);
	vk[strlen(ORIGIN) + 3] ^= 1;	/* key id digit */
	assert_int_not_equal(kr_note_vkey_parse(vk, name, sizeof(name), pub2),
	    0);
	/* Another key, another name: no signature by it. */
	k2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_int_equal(kr_signer_evp(&s2, ORIGIN, k2), 0);
	assert_int_equal(kr_note_verify(note, nlen, ORIGIN, s2.pub, NULL,
	    NULL), KR_ERR_SIGNATURE);
	assert_int_equal(kr_note_verify(note, nlen, "other", signer.pub, NULL,
	    NULL), KR_ERR_SIGNATURE);
	EVP_PKEY_free(k2);
	/* Body edited after signing. */
	note[strlen(ORIGIN) + 2] ^= 1;
	assert_int_equal(kr_note_verify(note, nlen, ORIGIN, signer.pub, NULL,
	    NULL), KR_ERR_SIGNATURE);
	note[strlen(ORIGIN) + 2] ^= 1;
	/* Signature edited. */
	note[nlen - 10] = note[nlen - 10] == 'A' ? 'B' : 'A';
	assert_int_not_equal(kr_note_verify(note, nlen, ORIGIN, signer.pub,
	    NULL, NULL), 0);
	free(note);
	/* Checkpoint bodies are parsed strictly. */
	assert_int_equal(kr_checkpoint_parse(ORIGIN "\n01\nq6urq6urq6urq6urq6"
	    "urq6urq6urq6urq6urq6urq6s=\n", strlen(ORIGIN) + 49, NULL, 0,
	    &size, r2), KR_ERR_FORMAT);
	assert_int_equal(kr_checkpoint_parse(ORIGIN "\n1\nq6urq6urq6urq6urq6"
	    "urq6urq6urq6urq6urq6urq6s=\next\n", strlen(ORIGIN) + 52, NULL,
	    0, &size, r2), KR_ERR_FORMAT);
	assert_int_equal(kr_note_sign(&signer, "a\n\nb\n", 5, &note, &nlen),
	    KR_ERR_INVALID_ARGUMENT);
}

static void
test_tile_path(void **state)
{
	char p[64];

	(void)state;
	assert_int_equal(kr_tile_path(0, p, sizeof(p)), 0);
	assert_string_equal(p, "000");
	assert_int_equal(kr_tile_path(5, p, sizeof(p)), 0);
	assert_string_equal(p, "005");
	assert_int_equal(kr_tile_path(1234, p, sizeof(p)), 0);
	assert_string_equal(p, "x001/234");
	assert_int_equal(kr_tile_path(1234067, p, sizeof(p)), 0);
	assert_string_equal(p, "x001/x234/067");
}

static char dir[256];

static struct kr_log *
fresh_log(void)
{
	struct kr_log *log = NULL;
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (dir[0] != '\0' && system(cmd) != 0)
		fail();
	snprintf(dir, sizeof(dir), "/tmp/kr-test-audit.%d", (int)getpid());
	assert_int_equal(kr_log_create(dir, ORIGIN), 0);
	assert_int_equal(kr_log_create(dir, ORIGIN), KR_ERR_EXISTS);
	assert_int_equal(kr_log_open(dir, KR_LOG_WRITE, &log), 0);
	assert_int_equal(kr_log_init(log, &signer, "test", NULL, "keyroom-audit",
	    "audit-key", NULL), 0);
	return log;
}

static void
rm_log(struct kr_log *log)
{
	char cmd[300];

	kr_log_close(log);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	dir[0] = '\0';
}

static uint64_t
log_size(struct kr_log *log)
{
	MDB_txn *t;
	uint64_t n;

	assert_int_equal(kr_log_read_begin(log, &t), 0);
	assert_int_equal(kr_log_size(log, t, &n), 0);
	mdb_txn_abort(t);
	return n;
}

static void
verify_ok(struct kr_log *log)
{
	struct kr_verify_opts o;
	struct kr_verify_report rep;

	memset(&o, 0, sizeof(o));
	if (kr_audit_verify(log, &o, &rep) != 0)
		fail_msg("verify: %s", kr_err_detail());
}

static void
test_log_issuance(void **state)
{
	struct kr_log *log = fresh_log();
	struct kr_ltx *ltx;
	struct kr_cert_intent ci;
	struct kr_cert_issued cs;
	uint64_t i1, i2, i3, idx, *list;
	uint8_t der[100], h[32];
	size_t n;
	MDB_txn *t;
	MDB_dbi mine;
	MDB_val k = { 3, (void *)"row" }, v = { 2, (void *)"ok" };
	char *note = NULL;

	(void)state;
	assert_int_equal(kr_log_init(log, &signer, "test", NULL, NULL, NULL,
	    NULL), KR_ERR_STATE);
	memset(&ci, 0, sizeof(ci));
	ci.issuer = "iss";
	ci.serial = "1a";
	ci.device_id = "dev1";
	/* Intent committed first, with another area's row. */
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	assert_int_equal(kr_log_dbi(log, kr_ltx_mdb(ltx), "entries", 0, &mine),
	    KR_ERR_INVALID_ARGUMENT);
	assert_int_equal(kr_log_dbi(log, kr_ltx_mdb(ltx), "registry", 0,
	    &mine), 0);
	assert_int_equal(mdb_put(kr_ltx_mdb(ltx), mine, &k, &v, 0), 0);
	assert_int_equal(kr_log_intent(ltx, "op", &ci, &i1), 0);
	ci.serial = "1b";
	assert_int_equal(kr_log_intent(ltx, "op", &ci, &i2), 0);
	ci.serial = "1c";
	assert_int_equal(kr_log_intent(ltx, "op", &ci, &i3), 0);
	assert_int_equal(kr_ltx_commit(ltx, &signer, &note), 0);
	assert_non_null(strstr(note, ORIGIN "\n5\n"));
	free(note);
	/* A duplicate serial aborts the whole transaction. */
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	assert_int_equal(kr_ltx_appendf(ltx, KR_E_BATCH_BEGIN, "op", NULL,
	    "batch", "B2", NULL), 0);
	ci.serial = "1a";
	assert_int_equal(kr_log_intent(ltx, "op", &ci, NULL), KR_ERR_EXISTS);
	assert_non_null(strstr(kr_err_detail(), "serial 1a of issuer iss"));
	/* Poisoned: nothing more, commit refuses. */
	assert_int_not_equal(kr_ltx_appendf(ltx, KR_E_SHUTDOWN, "op", NULL,
	    NULL), 0);
	assert_int_equal(kr_ltx_commit(ltx, &signer, NULL), KR_ERR_EXISTS);
	assert_int_equal(log_size(log), 5);
	/* Issue one, abandon one, leave one open. */
	memset(der, 0x30, sizeof(der));
	memset(&cs, 0, sizeof(cs));
	cs.intent = i1;
	cs.der = der;
	cs.der_len = sizeof(der);
	cs.device_id = "dev1";
	/* The certificate must be for the intent's device. */
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	cs.device_id = "dev2";
	assert_int_equal(kr_log_issued(ltx, "op", &cs, NULL),
	    KR_ERR_INVALID_ARGUMENT);
	assert_non_null(strstr(kr_err_detail(), "was for device dev1"));
	kr_ltx_abort(ltx);
	cs.device_id = "dev1";
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	assert_int_equal(kr_log_issued(ltx, "op", &cs, &idx), 0);
	assert_int_equal(kr_log_abandon(ltx, "op", i2, "HSM refused", NULL), 0);
	assert_int_equal(kr_ltx_commit(ltx, &signer, NULL), 0);
	/* Resolving twice / a non-intent fails. */
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	assert_int_equal(kr_log_issued(ltx, "op", &cs, NULL), KR_ERR_STATE);
	kr_ltx_abort(ltx);
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	cs.intent = 0;
	assert_int_equal(kr_log_issued(ltx, "op", &cs, NULL), KR_ERR_NOT_FOUND);
	kr_ltx_abort(ltx);
	/* Queries. */
	assert_int_equal(kr_log_read_begin(log, &t), 0);
	assert_int_equal(kr_log_serial_lookup(log, t, "iss", "1b", &idx), 0);
	assert_int_equal(idx, i2);
	assert_int_equal(kr_log_serial_lookup(log, t, "iss", "ff", &idx),
	    KR_ERR_NOT_FOUND);
	assert_int_equal(kr_log_device_certs(log, t, "dev1", &list, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0], 5);
	free(list);
	assert_int_equal(kr_log_device_certs(log, t, "dev9", &list, &n), 0);
	assert_int_equal(n, 0);
	kr_sha256(der, sizeof(der), h);
	assert_int_equal(kr_log_cert_lookup(log, t, h, &idx), 0);
	assert_int_equal(idx, 5);
	assert_int_equal(kr_log_dbi(log, t, "registry", 0, &mine), 0);
	assert_int_equal(mdb_get(t, mine, &k, &v), 0);
	mdb_txn_abort(t);
	/* The open intent fails verification until recovered. */
	{
		struct kr_verify_opts o;
		struct kr_verify_report rep;

		memset(&o, 0, sizeof(o));
		assert_int_equal(kr_audit_verify(log, &o, &rep),
		    KR_ERR_TAMPERED);
		assert_int_equal(rep.bad_index, (int64_t)i3);
	}
	assert_int_equal(kr_log_recover(log, &signer, "keyroom", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(kr_log_recover(log, &signer, "keyroom", &n), 0);
	assert_int_equal(n, 0);
	verify_ok(log);
	/* Intent and issued in one commit: verifies, but is reported. */
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	ci.serial = "2a";
	assert_int_equal(kr_log_intent(ltx, "op", &ci, &i1), 0);
	der[0] = 0x31;
	cs.intent = i1;
	assert_int_equal(kr_log_issued(ltx, "op", &cs, NULL), 0);
	assert_int_equal(kr_ltx_commit(ltx, &signer, NULL), 0);
	{
		struct kr_verify_opts o;
		struct kr_verify_report rep;

		memset(&o, 0, sizeof(o));
		assert_int_equal(kr_audit_verify(log, &o, &rep), 0);
		assert_int_equal(rep.issued, 2);
		assert_int_equal(rep.same_commit, 1);
	}
	/* Device index lists both certificates, oldest first. */
	assert_int_equal(kr_log_read_begin(log, &t), 0);
	assert_int_equal(kr_log_device_certs(log, t, "dev1", &list, &n), 0);
	assert_int_equal(n, 2);
	assert_true(list[0] < list[1]);
	free(list);
	mdb_txn_abort(t);
	rm_log(log);
}

static void
test_map_full(void **state)
{
	struct kr_log *log;
	struct kr_ltx *ltx;
	static char big[60000];
	uint64_t before;
	int r = 0, i;

	(void)state;
	setenv("KEYROOM_LOG_MAP_MAX", "1048576", 1);
	log = fresh_log();
	memset(big, 'x', sizeof(big) - 1);
	before = log_size(log);
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	for (i = 0; i < 40 && r == 0; i++)
		r = kr_ltx_appendf(ltx, KR_E_SELF_CHECK, "op", NULL, "check",
		    "fill", "result", big, NULL);
	if (r == 0)
		r = kr_ltx_commit(ltx, &signer, NULL);
	else
		kr_ltx_abort(ltx);
	assert_int_equal(r, KR_ERR_MAP_FULL);
	/* Nothing of it was kept; the log still verifies and takes more. */
	assert_int_equal(log_size(log), before);
	verify_ok(log);
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	assert_int_equal(kr_ltx_appendf(ltx, KR_E_SHUTDOWN, "op", NULL, NULL),
	    0);
	assert_int_equal(kr_ltx_commit(ltx, &signer, NULL), 0);
	verify_ok(log);
	unsetenv("KEYROOM_LOG_MAP_MAX");
	rm_log(log);
}

static long
fsize(const char *base, const char *rel)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", base, rel);
	return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* Export layout: full and partial hash tiles at two levels, bundles. */
static void
test_export_tiles(void **state)
{
	struct kr_log *log = fresh_log();	/* 2 entries: init, key */
	struct kr_export_stats st;
	struct kr_ltx *ltx;
	char out[300], cmd[400];
	int i;

	(void)state;
	assert_int_equal(kr_log_begin(log, &ltx), 0);
	for (i = 0; i < 299; i++)
		assert_int_equal(kr_ltx_appendf(ltx, KR_E_SELF_CHECK, "op",
		    NULL, "check", "tile", "result", "ok", NULL), 0);
	assert_int_equal(kr_ltx_commit(ltx, &signer, NULL), 0);
	snprintf(out, sizeof(out), "%s.export", dir);
	assert_int_equal(kr_audit_export(log, out, &st), 0);
	assert_int_equal(st.size, 301);
	assert_int_equal(st.checkpoints, 2);
	assert_int_equal(st.tiles, 3);
	assert_int_equal(fsize(out, "tile/0/000"), 256 * 32);
	assert_int_equal(fsize(out, "tile/0/001.p/45"), 45 * 32);
	assert_int_equal(fsize(out, "tile/1/000.p/1"), 32);
	assert_int_equal(fsize(out, "tile/0/001"), -1);
	assert_true(fsize(out, "tile/entries/000") > 256 * 2);
	assert_true(fsize(out, "tile/entries/001.p/45") > 45 * 2);
	assert_true(fsize(out, "checkpoints/2") > 0);
	assert_true(fsize(out, "checkpoints/301") > 0);
	assert_true(fsize(out, "log/data.mdb") > 0);
	assert_int_equal(fsize(out, "log/lock.mdb"), -1);
	assert_int_equal(kr_audit_export(log, out, &st), KR_ERR_EXISTS);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", out);
	assert_int_equal(system(cmd), 0);
	rm_log(log);
}

static void
test_qr(void **state)
{
	static char big[4000];
	char *svg = NULL, path[300], *buf = NULL;
	size_t len = 0;
	FILE *f;
	uint8_t sig[8];

	(void)state;
	assert_int_equal(kr_qr_svg("keyroom.example/log\n42\nabc=\n", 4,
	    &svg), 0);
	assert_non_null(strstr(svg, "<svg"));
	assert_non_null(strstr(svg, "h1v1h-1z"));
	free(svg);
	memset(big, 'A', sizeof(big) - 1);
	assert_int_equal(kr_qr_svg(big, 4, &svg), KR_ERR_TOO_LARGE);
	assert_int_equal(kr_qr_svg("x", 0, &svg), KR_ERR_INVALID_ARGUMENT);
	/* Terminal: half blocks, 2 modules per character row. */
	assert_non_null(f = open_memstream(&buf, &len));
	assert_int_equal(kr_qr_print_terminal(f, "hello"), 0);
	fclose(f);
	assert_non_null(strstr(buf, "\xe2\x96\x88"));
	free(buf);
	snprintf(path, sizeof(path), "/tmp/kr-test-qr.%d.png", (int)getpid());
	unlink(path);
	assert_int_equal(kr_qr_write_png(path, "hello", 4), 0);
	assert_non_null(f = fopen(path, "rb"));
	assert_int_equal(fread(sig, 1, 8, f), 8);
	fclose(f);
	assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
	assert_int_equal(kr_qr_write_png(path, "hello", 4), KR_ERR_EXISTS);
	unlink(path);
}

/* MDB_MAP_FULL: abort, the map grows, the caller's retry succeeds. */
static void
test_map_grows(void **state)
{
	struct kr_log *log;
	struct kr_ltx *ltx;
	static char big[60000];
	uint64_t before;
	int r = 0, i, attempt;

	(void)state;
	setenv("KEYROOM_LOG_MAP_INITIAL", "1048576", 1);
	setenv("KEYROOM_LOG_MAP_MAX", "67108864", 1);
	log = fresh_log();
	memset(big, 'y', sizeof(big) - 1);
	before = log_size(log);
	for (attempt = 0; attempt < 8; attempt++) {
		assert_int_equal(kr_log_begin(log, &ltx), 0);
		for (i = 0, r = 0; i < 40 && r == 0; i++)
			r = kr_ltx_appendf(ltx, KR_E_SELF_CHECK, "op", NULL,
			    "check", "fill", "result", big, NULL);
		if (r == 0)
			r = kr_ltx_commit(ltx, &signer, NULL);
		else
			kr_ltx_abort(ltx);
		if (r != KR_ERR_MAP_FULL)
			break;
	}
	assert_int_equal(r, 0);
	assert_true(attempt >= 1);	/* it did fill up first */
	assert_int_equal(log_size(log), before + 40);
	verify_ok(log);
	unsetenv("KEYROOM_LOG_MAP_INITIAL");
	unsetenv("KEYROOM_LOG_MAP_MAX");
	rm_log(log);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_golden),
		cmocka_unit_test(test_entry_rejects),
		cmocka_unit_test(test_entry_check_strict),
		cmocka_unit_test(test_note),
		cmocka_unit_test(test_tile_path),
		cmocka_unit_test(test_log_issuance),
		cmocka_unit_test(test_map_full),
		cmocka_unit_test(test_map_grows),
		cmocka_unit_test(test_export_tiles),
		cmocka_unit_test(test_qr),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
