/*
 * run_int.h - the ceremony runner's state, shared by run.c and the step
 * implementations (steps_tokens.c, steps_certs.c). Not a public API.
 */
#ifndef KR_RUN_INT_H
#define KR_RUN_INT_H

#include <stdio.h>

#include <openssl/x509.h>

#include "ceremony/appl.h"
#include "ceremony/ceremony.h"
#include "ceremony/qstore.h"

enum { ROLE_ROOT = 0, ROLE_ISSUING = 1, ROLE__COUNT };

struct crole {
	const char *name;		/* "root", "issuing" */
	uint8_t *secret;		/* new PIN secret (secure), until split */
	int existed;			/* token existed before init-tokens */
	struct kr_token *tok;		/* logged in */
	struct kr_key *key;		/* the role's CA key, found once */
	struct kr_key *next_key;	/* its successor (root rotation) */
	char *pin;			/* secure KR_PIN_MAX, while tok open */
	size_t pinlen;
};

/* A type-specific log entry committed with the step's entry. */
struct cextra {
	enum kr_etype type;
	size_t n;
	char k[8][32];
	char v[8][512];
};

struct tbuf {
	char *p;
	size_t len, cap;
};

struct crun {
	struct kr_cli *cli;
	struct kr_ceremony_opts *o;
	struct kr_appl *a;
	const struct kr_script *s;
	FILE *out;			/* human output */
	char actor[KR_SCRIPT_ID_MAX + 16];
	struct crole role[ROLE__COUNT];
	struct tbuf tr;			/* transcript */
	/* Filled by a step for the runner to show and log. */
	char detail[1024];
	uint8_t fp[32];
	int has_fp;
	char fp_what[64];
	/* Share set rows to commit with the step's entry. */
	struct kr_qset *put_set;	/* becomes active */
	struct kr_qset *retire_set;	/* marked retired */
	char *tr_more;			/* extra transcript text (malloc'd) */
	struct cextra extra[2];
	size_t nextra;
	/*
	 * Work a step leaves for after its entries, set by the step and
	 * cleared before the next: in_txn runs in the step's audit
	 * transaction after them (extra_idx: each extra entry's index);
	 * committed once that transaction has committed; aborted when it
	 * does not commit or the step failed.
	 */
	int (*in_txn)(struct crun *, MDB_txn *, const uint64_t *extra_idx);
	int (*committed)(struct crun *);
	void (*aborted)(struct crun *);
	uint8_t pol_digest[32], pol_sha256[32];	/* install-policy's */
	json_t *results;		/* --json: one object per step */
};

typedef int (*step_fn)(struct crun *, const struct kr_step *);

/* Step implementations (the table is in run.c). */
int step_note(struct crun *, const struct kr_step *);
int step_init_tokens(struct crun *, const struct kr_step *);
int step_split_pin(struct crun *, const struct kr_step *);
int step_unlock(struct crun *, const struct kr_step *);
int step_generate_key(struct crun *, const struct kr_step *);
int step_generate_audit_key(struct crun *, const struct kr_step *);
int step_reshare(struct crun *, const struct kr_step *);
int step_destroy_key(struct crun *, const struct kr_step *);
int step_self_sign_root(struct crun *, const struct kr_step *);
int step_sign_intermediate(struct crun *, const struct kr_step *);
int step_checkpoint(struct crun *, const struct kr_step *);
int step_export_cert(struct crun *, const struct kr_step *);
int step_revoke(struct crun *, const struct kr_step *);
int step_issue_crl(struct crun *, const struct kr_step *);
int step_cross_certify(struct crun *, const struct kr_step *);
int step_rotation_package(struct crun *, const struct kr_step *);
int step_print_transcript(struct crun *, const struct kr_step *);
int step_promote(struct crun *, const struct kr_step *);
int step_install_policy(struct crun *, const struct kr_step *);

/* Helpers (run.c). */
/* Is this step about the next generation (root rotation)? */
int crun_next(const struct kr_step *st);
/* Key label of a role's CA key: "root-ca" or "root-ca-next". */
int crun_key_label(struct crun *c, int role, int next, char *buf,
    size_t len) KR_WUR;
/* certs/<name>.pem or certs/<name>-next.pem. */
int crun_cert_path(struct crun *c, const char *name, int next, char *buf,
    size_t len) KR_WUR;
/* Drop the cached keys of a role (before its token is closed). */
void crun_forget_keys(struct crun *c, int role);
/* The role's CA key of a generation, found once (borrowed). */
int crun_role_key(struct crun *c, int role, int next, struct kr_key **key)
    KR_WUR;
int crun_role(const char *name);
/* Logged-in token of a role: open with the new PIN if this ceremony set
 * it, else a quorum unlock. */
int crun_token(struct crun *c, int role, struct kr_token **tok) KR_WUR;
void crun_detail(struct crun *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int tbuf_printf(struct tbuf *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Queue a log entry (key, value, ..., NULL) for the step's commit. */
int crun_extra(struct crun *c, enum kr_etype type, ...)
    __attribute__((sentinel)) KR_WUR;
/* Show a fingerprint (hex, words, QR) and keep it for the log. */
void crun_fingerprint(struct crun *c, const char *what, const uint8_t h[32]);
/* Write the transcript now (media/<id>-<time>.transcript.txt). */
int crun_write_transcript(struct crun *c, const char *final_note) KR_WUR;

#endif
