/*
 * verify.h - the auditor's verifier: recomputes the whole tree from the
 * entries (streaming; memory flat in log size), checks every stored
 * checkpoint, the log invariants and earlier printed checkpoints.
 */
#ifndef KR_VERIFY_H
#define KR_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"

struct kr_verify_opts {
	const char *vkey;		/* vkey text; NULL: from the init entry */
	const char *const *notes;	/* earlier signed checkpoints (text) */
	const char *const *note_names;	/* their file names, for messages */
	size_t nnotes;
	int progress;			/* progress bar on a terminal */
};

struct kr_verify_report {
	uint64_t size;			/* entries */
	uint64_t checkpoints;		/* stored checkpoints verified */
	uint64_t external;		/* --checkpoint files proven */
	uint64_t intents, issued, abandoned;
	/*
	 * cert-issued entries committed together with their intent: the log
	 * cannot prove the intent was logged before the HSM signed (a
	 * warning, not a failure).
	 */
	uint64_t same_commit;
	/*
	 * batch-begin entries after the first policy install whose
	 * policy-digest is not the one the latest config-change installed
	 * (a batch that ran under a policy the quorum did not install: a
	 * warning, the log itself is intact); the first such entry.
	 */
	uint64_t policy_mismatch;
	int64_t policy_mismatch_first;
	uint64_t counts[64];		/* entries per type */
	int vkey_from_log;		/* no --vkey: trusted the init entry */
	char vkey[512];
	uint8_t root[32];
	double seconds;
	/* On failure: where. */
	int64_t bad_index;		/* entry index or -1 */
	int64_t bad_checkpoint;		/* checkpoint tree size or -1 */
};

/*
 * Verify the log in one read snapshot. 0 if everything holds;
 * KR_ERR_TAMPERED (an entry, hash, index record or checkpoint is wrong:
 * report names bad_index / bad_checkpoint, kr_err_detail() says what),
 * KR_ERR_ROLLBACK ("rollback/truncation": the log does not extend an
 * earlier checkpoint), KR_ERR_SIGNATURE (a given checkpoint is not
 * signed by the key), KR_ERR_FORMAT (bad vkey / checkpoint file).
 */
int kr_audit_verify(struct kr_log *log, const struct kr_verify_opts *o,
    struct kr_verify_report *rep) KR_WUR;

#endif
