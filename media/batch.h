/*
 * batch.h - `keyroom batch sign`: one batch from removable media, end to
 * end (DESIGN.md 5.2-5.4):
 *
 *   stage the medium (media.h) -> batch.json -> refuse a replayed batch id
 *   -> import manifests on the medium -> per CSR: parse + proof of
 *   possession (ca/ca.h), find the device in the registry (by key, then by
 *   subject CN), renewal proof, already certified?, quota -> the policy's
 *   pure decision (policy/policy.h) -> in chunks: intent entries committed
 *   -> HSM signs on several sessions -> issued entries + checkpoint
 *   committed -> only then certificates are written to the output, which
 *   becomes visible by one rename at the end.
 *
 * LMDB named databases owned here (audit environment, written in the same
 * transactions as the log entries that explain them):
 *   "batches"  batch id -> JSON {"state":"open"|"done", ...}
 *   "quota"    manufacturer id -> u64 big-endian certificates issued
 *
 * A batch id in state "done" is never accepted again. A batch left "open"
 * by a crash may be run again: devices already certified in that batch
 * get their logged certificate back (no second issuance), the rest are
 * processed normally.
 */
#ifndef KR_MEDIA_BATCH_H
#define KR_MEDIA_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/err.h"
#include "media/media.h"

#define KR_BATCH_DBI "batches"
#define KR_QUOTA_DBI "quota"
#define KR_BATCH_CHUNK_DEFAULT 384	/* CSRs per log commit */
#define KR_BATCH_CHUNK_MAX 8192
#define KR_BATCH_SESSIONS_DEFAULT 2	/* PKCS#11 sessions / threads */
#define KR_BATCH_SESSIONS_MAX 16

struct kr_batch_opts {
	const char *state;	/* state directory */
	const char *media;	/* the medium (directory) */
	const char *pin_spec;	/* issuing token PIN: file:/fd:/env:, NULL
				 *   prompts */
	const char *actor;	/* for log entries ("operator") */
	unsigned chunk;		/* 0: default */
	unsigned sessions;	/* 0: default */
	int progress;		/* draw a progress bar (stderr is a tty) */
	time_t now;		/* 0: time(NULL) */
};

struct kr_batch_result {
	char batch_id[KR_MEDIA_MAX_ID + 1];
	size_t requests;	/* CSR files */
	size_t issued;		/* new certificates */
	size_t reused;		/* certificates of an interrupted run */
	size_t rejected;
	size_t manifests;	/* manifest files imported */
	size_t devices_added;	/* new registry entries */
	double seconds;		/* wall time of the signing part */
	char out[4096];		/* output directory */
	char checkpoint[1024];	/* first lines of the signed checkpoint */
};

/*
 * Run one batch. Returns 0 when the batch ran (some requests may have
 * been rejected: see *res), or a negative KR_ERR_* when the whole batch
 * was refused or failed (unsafe media, replayed batch id, bad batch.json,
 * unknown manufacturer, HSM/log failure); then nothing was issued and no
 * output directory appeared, and a request-rejected entry records the
 * refusal when the log was reachable.
 */
int kr_batch_sign(const struct kr_batch_opts *o, struct kr_batch_result *res)
    KR_WUR;

/* Exit code for a finished batch: 0 all signed, 3 some rejected, 4 none. */
int kr_batch_exit_code(const struct kr_batch_result *res);

#endif
