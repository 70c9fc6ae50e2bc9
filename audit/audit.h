/*
 * audit.h - the append-only audit log (issue 3, DESIGN.md §5.4).
 *
 * One LMDB environment (<state>/log/) holds the log entries, the Merkle
 * tree hashes (RFC 6962 §2.1, golang.org/x/mod/sumdb/tlog storage order),
 * every signed checkpoint (C2SP tlog-checkpoint in a C2SP signed note,
 * Ed25519) and the issued index. Other areas keep their own named
 * databases in the same environment (kr_log_dbi) so that their rows
 * commit in the same transaction as the log entries that explain them.
 *
 * Write path:
 *	kr_log_open(dir, KR_LOG_WRITE, &log);
 *	kr_log_recover(log, signer, "keyroom");	   // once, at start
 *	kr_log_begin(log, &ltx);
 *	kr_ltx_append(ltx, KR_E_BATCH_BEGIN, actor, kv, nkv, &idx);
 *	... mdb_put(kr_ltx_mdb(ltx), mydbi, ...) ...
 *	r = kr_ltx_commit(ltx, signer);	// extends tree, signs, stores, commits
 * kr_ltx_commit and kr_ltx_abort always free ltx. Any failure inside a
 * transaction poisons it: the caller must kr_ltx_abort (nothing is kept).
 *
 * Entries never change: keys are big-endian u64 indexes written with
 * MDB_APPEND, and no function here updates or deletes one.
 *
 * Errors are negative KR_ERR_* codes with a detail naming the object
 * (see lib/err.h). KR_ERR_MAP_FULL: the map or disk filled; the
 * transaction was aborted, nothing of it is kept, the map was grown if
 * possible and the caller may retry the whole transaction.
 */
#ifndef KR_AUDIT_H
#define KR_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "lib/err.h"

#define KR_LOG_MAX_ENTRY	65535	/* bytes, whole encoded entry */
#define KR_LOG_MAX_VALUE	65000	/* bytes, one value (cert base64) */
#define KR_LOG_MAX_ORIGIN	200	/* bytes, log origin / key name */
#define KR_LOG_MAX_NOTE		4096	/* bytes, one signed checkpoint */
#define KR_LOG_MAX_DBS		32	/* named DBIs in the environment */
#define KR_HASH_LEN		32

struct kr_log;	/* opaque: an open environment */
struct kr_ltx;	/* opaque: one write transaction */

/* ---------------------------------------------------------------- signer */

/*
 * The checkpoint signer: Ed25519 (C2SP signed-note type 0x01). `name` is
 * the note key name (the log origin by convention). sign() signs msg
 * (the checkpoint body, exactly) and returns 0 or a KR_ERR_* code.
 * Implementations: kr_signer_evp (in-memory OpenSSL key: tests, tools),
 * kr_signer_hsm (audit/signer_hsm.h: the token's Ed25519 key via C_Sign).
 */
struct kr_note_signer {
	const char *name;
	uint8_t pub[32];
	int (*sign)(void *arg, const uint8_t *msg, size_t len,
	    uint8_t sig[64]);
	void *arg;
};

/*
 * Fill *s from an OpenSSL Ed25519 EVP_PKEY (borrowed: must outlive *s).
 * name is borrowed too. KR_ERR_UNSUPPORTED if pkey is not Ed25519.
 */
struct evp_pkey_st;
int kr_signer_evp(struct kr_note_signer *s, const char *name,
    struct evp_pkey_st *pkey) KR_WUR;

/* --------------------------------------------------------- environment */

enum {
	KR_LOG_RDONLY = 0x1,	/* MDB_RDONLY; verify/export/show */
	KR_LOG_WRITE = 0x2,	/* read-write */
};

/*
 * Create a new, empty log environment in dir (created 0700 if missing;
 * KR_ERR_EXISTS if dir already holds a log). origin is the checkpoint
 * origin line, e.g. "keyroom.example/oem-ca" (printable ASCII, no
 * spaces, <= KR_LOG_MAX_ORIGIN). The first entry (init) is appended by
 * the caller through a normal transaction.
 */
int kr_log_create(const char *dir, const char *origin) KR_WUR;

/*
 * Open the environment in dir. dir may be a state's log/ directory, or
 * a directory holding a copied data.mdb (export). Runs mdb_reader_check.
 * *out is freed with kr_log_close. Errors: KR_ERR_NOT_FOUND (no log),
 * KR_ERR_FORMAT (not a keyroom log), KR_ERR_LMDB.
 * The env var KEYROOM_LOG_MAP_MAX (bytes) caps the map (tests of the
 * map-full path), KEYROOM_LOG_MAP_INITIAL sets the first size; default
 * initial map 4 GiB, grown (doubling, after a KR_ERR_MAP_FULL) up to
 * 1 TiB.
 */
int kr_log_open(const char *dir, int flags, struct kr_log **out) KR_WUR;
void kr_log_close(struct kr_log *log);

/*
 * First transaction of a new log: the init entry carrying the signer's
 * vkey (the verifier trusts it when no --vkey is given), plus an
 * optional key-generate entry for the audit key (key_token/key_label
 * non-NULL), and the first checkpoint. KR_ERR_STATE if the log is not
 * empty. config_sha256 (hex) may be NULL.
 */
int kr_log_init(struct kr_log *log, const struct kr_note_signer *signer,
    const char *actor, const char *config_sha256, const char *key_token,
    const char *key_label, char **out_note) KR_WUR;

/* The log's origin (borrowed, valid until kr_log_close). */
const char *kr_log_origin(const struct kr_log *log);
/* The underlying env, for mdb_env_copy2 and the like (borrowed). */
MDB_env *kr_log_env(struct kr_log *log);

/*
 * A handle for the named database `name` owned by another area (see
 * docs/STATE.md). flags: MDB_DUPSORT etc.; MDB_CREATE is added when txn
 * is a write txn. The handle is valid for the rest of this txn and, once
 * the txn commits, for the life of the environment. KR_ERR_NOT_FOUND if
 * it does not exist and txn is read-only. Names owned by audit/ are
 * refused (KR_ERR_INVALID_ARGUMENT): meta entries hashes checkpoints
 * issued serials devcerts intents.
 */
int kr_log_dbi(struct kr_log *log, MDB_txn *txn, const char *name,
    unsigned int flags, MDB_dbi *out) KR_WUR;

/* A read-only snapshot (mdb_txn_abort it when done). */
int kr_log_read_begin(struct kr_log *log, MDB_txn **out) KR_WUR;

/*
 * Drop the pages of the map already read from our page tables (RSS):
 * they stay in the page cache and fault back in when touched. The first
 * call looks the mapping up; make it before other threads call it.
 */
void kr_log_drop_pages(struct kr_log *log);

/*
 * While other threads may hold read snapshots (hold 1), a map-full
 * failure does not remap (LMDB forbids it with transactions active in
 * the process); the grow happens at hold 0.
 */
void kr_log_hold_map(struct kr_log *log, int hold);

/* Number of entries in the snapshot txn. */
int kr_log_size(struct kr_log *log, MDB_txn *txn, uint64_t *size) KR_WUR;

/* ------------------------------------------------------------- entries */

/*
 * Entry types (BR §5.4.1). Each type has a FIXED key order (the table in
 * audit/entry.c; `keyroom audit list --help` prints it). Every entry is:
 *	<origin> entry/v1
 *	type <name>
 *	time <RFC 3339 UTC>
 *	actor <who>
 *	<type keys, in table order; optional ones omitted when NULL>
 * Every line ends in '\n'. Values: non-empty single-line UTF-8, no
 * control characters, <= KR_LOG_MAX_VALUE; whole entry <= 65,535 bytes.
 */
enum kr_etype {
	KR_E_INIT,		/* vkey [config-sha256] */
	KR_E_BOOT,		/* version [image-sha256] */
	KR_E_SHUTDOWN,		/* [reason] */
	KR_E_HSM_LOGIN,		/* token [user] */
	KR_E_HSM_LOGOUT,	/* token */
	KR_E_HSM_FAILURE,	/* token operation error */
	KR_E_KEY_GENERATE,	/* token label algorithm pubkey-sha256 */
	KR_E_KEY_DESTROY,	/* token label [pubkey-sha256] [reason] */
	KR_E_CERT_INTENT,	/* issuer serial tbs-sha256 [device-id] [batch] [profile] */
	KR_E_CERT_ISSUED,	/* issuer serial intent cert-sha256 [device-id] [batch] cert */
	KR_E_CERT_ABANDONED,	/* issuer serial intent reason */
	KR_E_REQUEST_RECEIVED,	/* batch file [device-id] */
	KR_E_REQUEST_APPROVED,	/* [batch] [file] [device-id] [approvers] */
	KR_E_REQUEST_REJECTED,	/* [batch] [file] [device-id] reason */
	KR_E_MANIFEST_IMPORTED,	/* file sha256 entries [signer] */
	KR_E_BATCH_BEGIN,	/* batch [manufacturer] [profile] [count]
				   [policy-digest] */
	KR_E_BATCH_END,		/* batch signed rejected result */
	KR_E_REVOKED,		/* issuer serial reason [cert-sha256] */
	KR_E_CRL_ISSUED,	/* issuer crl-number crl-sha256 [next-update] */
	KR_E_EXPORT,		/* what [dest] [size] [sha256] */
	KR_E_SELF_CHECK,	/* check result [detail] */
	KR_E_CONFIG_CHANGE,	/* file sha256 [previous-sha256] [policy-digest] */
	KR_E_CEREMONY_BEGIN,	/* ceremony script-sha256 [participants] */
	KR_E_CEREMONY_STEP,	/* ceremony step action result [detail] */
	KR_E_CEREMONY_END,	/* ceremony result [transcript-sha256] */
	KR_E_QUORUM_UNLOCK,	/* token share-set shares (e.g. "1,3,4") [threshold] */
	KR_E_RESHARE,		/* token old-share-set new-share-set threshold shares */
	KR_E_SESSION_OPEN,	/* session [purpose] */
	KR_E_SESSION_CLOSE,	/* session [result] */
	KR_E__COUNT
};

/* One field for kr_ltx_append. value NULL = optional field absent. */
struct kr_kv {
	const char *key;
	const char *value;
};

/* "cert-issued" etc.; NULL for an out-of-range type. */
const char *kr_etype_name(enum kr_etype t);
/* Inverse of kr_etype_name; KR_ERR_NOT_FOUND for an unknown name. */
int kr_etype_from_name(const char *name, enum kr_etype *out) KR_WUR;

/*
 * Encode an entry into buf (cap bytes, <= KR_LOG_MAX_ENTRY needed).
 * kv may list the type's keys in any order; the output uses the table
 * order. KR_ERR_INVALID_ARGUMENT: unknown key, duplicate key, missing
 * required key, bad value (newline, control character, invalid UTF-8,
 * empty); KR_ERR_TOO_LARGE: over a limit. time 0 means now.
 */
int kr_entry_encode(const char *origin, enum kr_etype type, int64_t time,
    const char *actor, const struct kr_kv *kv, size_t nkv, char *buf,
    size_t cap, size_t *len) KR_WUR;

/*
 * Strictly parse an entry (as the verifier does): origin line, known
 * type, keys exactly in table order, required keys present, valid
 * values. On success *type is set. KR_ERR_FORMAT with a detail naming
 * the line otherwise.
 */
int kr_entry_check(const char *origin, const uint8_t *e, size_t len,
    enum kr_etype *type) KR_WUR;

/*
 * Find the value of `key` in an entry (first match). *val points into e
 * (not NUL-terminated), *vlen its length. KR_ERR_NOT_FOUND if absent.
 */
int kr_entry_get(const uint8_t *e, size_t len, const char *key,
    const char **val, size_t *vlen) KR_WUR;

/* Read entry `index` from txn: *e points into the map (valid for txn). */
int kr_log_entry(struct kr_log *log, MDB_txn *txn, uint64_t index,
    const uint8_t **e, size_t *len) KR_WUR;

/* ---------------------------------------------------------- write txns */

/* Begin the one write transaction (LMDB allows one writer at a time). */
int kr_log_begin(struct kr_log *log, struct kr_ltx **out) KR_WUR;

/* The LMDB txn, for the caller's own rows (borrowed). */
MDB_txn *kr_ltx_mdb(struct kr_ltx *ltx);

/*
 * Append one entry (time = now). *index (may be NULL) gets its log
 * index. Errors as kr_entry_encode, plus KR_ERR_LMDB / KR_ERR_MAP_FULL.
 */
int kr_ltx_append(struct kr_ltx *ltx, enum kr_etype type, const char *actor,
    const struct kr_kv *kv, size_t nkv, uint64_t *index) KR_WUR;

/*
 * Convenience: key, value pairs as varargs ending with NULL:
 * kr_ltx_appendf(ltx, KR_E_SELF_CHECK, "operator", &i,
 *     "check", "hsm", "result", "ok", NULL);
 */
int kr_ltx_appendf(struct kr_ltx *ltx, enum kr_etype type, const char *actor,
    uint64_t *index, ...) __attribute__((sentinel)) KR_WUR;

/*
 * If entries were appended: compute the new tree head, sign the
 * checkpoint with signer, store it (keyed by tree size) and commit, all
 * in this LMDB txn. If out_note is not NULL it receives the signed note
 * (malloc'd, NUL-terminated; free()). With no new entries it commits
 * the caller's rows without a new checkpoint (*out_note NULL).
 * Always frees ltx; on failure nothing of the txn is kept.
 */
int kr_ltx_commit(struct kr_ltx *ltx, const struct kr_note_signer *signer,
    char **out_note) KR_WUR;

/* Abort and free (NULL-safe). */
void kr_ltx_abort(struct kr_ltx *ltx);

/* ------------------------------------------- issuance: log before release */

struct kr_cert_intent {
	const char *issuer;	/* issuer id, e.g. hex SHA-256 of issuer SPKI */
	const char *serial;	/* lower-case hex, no leading zeros */
	uint8_t tbs_sha256[32];	/* SHA-256 of the TBSCertificate DER */
	const char *device_id;	/* optional (NULL) */
	const char *batch;	/* optional */
	const char *profile;	/* optional */
};

/*
 * Reserve issuer+serial and append a cert-intent entry. Commit the txn
 * (kr_ltx_commit) BEFORE asking the HSM to sign. KR_ERR_EXISTS if the
 * serial was ever reserved (the txn must then be aborted).
 */
int kr_log_intent(struct kr_ltx *ltx, const char *actor,
    const struct kr_cert_intent *ci, uint64_t *index) KR_WUR;

struct kr_cert_issued {
	uint64_t intent;	/* index returned by kr_log_intent */
	const uint8_t *der;	/* the signed certificate */
	size_t der_len;
	const char *device_id;	/* optional; indexed for renewals */
	const char *batch;	/* optional */
};

/*
 * Append the cert-issued entry (certificate as base64 DER, its SHA-256)
 * resolving the intent, and index it (cert hash, device id). Issuer and
 * serial are taken from the intent entry. Release the certificate only
 * after kr_ltx_commit returns 0. KR_ERR_NOT_FOUND: no such intent;
 * KR_ERR_STATE: intent already resolved; KR_ERR_EXISTS: same
 * certificate already logged; KR_ERR_TOO_LARGE: certificate too big.
 */
int kr_log_issued(struct kr_ltx *ltx, const char *actor,
    const struct kr_cert_issued *ci, uint64_t *index) KR_WUR;

/* Abandon one open intent explicitly (e.g. the HSM refused to sign). */
int kr_log_abandon(struct kr_ltx *ltx, const char *actor, uint64_t intent,
    const char *reason, uint64_t *index) KR_WUR;

/*
 * At start (write mode): every intent without an issued/abandoned entry
 * gets a cert-abandoned entry ("reason interrupted"), committed with a
 * checkpoint. *n (may be NULL) gets the count. Repairs noted before the
 * log was open (kr_startup_note) become self-check entries in the same
 * commit.
 */
int kr_log_recover(struct kr_log *log, const struct kr_note_signer *signer,
    const char *actor, size_t *n) KR_WUR;

/* ------------------------------------------------------- index queries */
/* All take a txn: kr_ltx_mdb(ltx) or a kr_log_read_begin snapshot. */

/*
 * Was issuer+serial ever reserved? 0 and *intent set if so,
 * KR_ERR_NOT_FOUND if not.
 */
int kr_log_serial_lookup(struct kr_log *log, MDB_txn *txn,
    const char *issuer, const char *serial, uint64_t *intent) KR_WUR;

/*
 * Issued-entry indexes of certificates for device_id, oldest first.
 * *idx malloc'd (free()), *n count; *n == 0 (and 0 returned) if none.
 */
int kr_log_device_certs(struct kr_log *log, MDB_txn *txn,
    const char *device_id, uint64_t **idx, size_t *n) KR_WUR;

/* Issued-entry index of the certificate with this SHA-256 (of DER). */
int kr_log_cert_lookup(struct kr_log *log, MDB_txn *txn,
    const uint8_t sha256[32], uint64_t *index) KR_WUR;

/* ---------------------------------------------------------- checkpoints */

/*
 * The latest stored signed checkpoint (malloc'd, NUL-terminated) and
 * its tree size. KR_ERR_NOT_FOUND if none yet.
 */
int kr_log_checkpoint(struct kr_log *log, MDB_txn *txn, char **note,
    uint64_t *size) KR_WUR;

/* Tree head (root hash) of the first `size` entries, from stored hashes. */
int kr_log_tree_hash(struct kr_log *log, MDB_txn *txn, uint64_t size,
    uint8_t root[32]) KR_WUR;

/* The C2SP vkey line of a signer: "<name>+<hex keyid>+<base64(01||pub)>". */
int kr_note_vkey(const char *name, const uint8_t pub[32], char *out,
    size_t cap) KR_WUR;

/*
 * Crash-test hook: with KEYROOM_TEST_AUDIT_CRASH_AT=n the process
 * SIGKILLs itself at the n-th crash point of the audit write path
 * (after an entry is put, after the checkpoint is signed but before the
 * commit, right after the commit). No-op otherwise.
 * kr_audit_crash_points() tells how many points were passed.
 */
void kr_audit_crash_point(const char *where);
unsigned long kr_audit_crash_points(void);

#endif
