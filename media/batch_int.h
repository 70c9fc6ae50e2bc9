/*
 * batch_int.h - internals shared by batch.c (flow), batch_req.c (facts
 * and decision for one request) and batch_emit.c (report, registration,
 * certificates into the output). Not a public API.
 */
#ifndef KR_MEDIA_BATCH_INT_H
#define KR_MEDIA_BATCH_INT_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>

#include <jansson.h>
#include <lmdb.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "audit/signer_hsm.h"
#include "ca/ca.h"
#include "ca/config.h"
#include "media/batch.h"
#include "media/manifest.h"
#include "policy/policy.h"

#define KR_BATCH_MAX_REJTXT 1000	/* rejected lines kept for report.txt */

/* Device ids seen in this run (16-octet digests, open addressing). */
#define KR_BATCH_IDKEY 16
struct kr_batch_idset {
	uint8_t (*slot)[KR_BATCH_IDKEY];
	size_t cap, n;
};
/* 1 if id was added, 0 if it was there, <0 on allocation failure. */
int kr_batch_idset_add(struct kr_batch_idset *s, const char *id) KR_WUR;
/* Room for n ids without growing (the batch knows its CSR count). */
int kr_batch_idset_reserve(struct kr_batch_idset *s, size_t n) KR_WUR;
int kr_batch_idset_has(const struct kr_batch_idset *s, const char *id);
void kr_batch_idset_free(struct kr_batch_idset *s);

struct worker {
	struct kr_token *tok;
	struct kr_key *key;
	struct kr_issuer iss;
	EVP_PKEY_CTX *verify;		/* the issuer key's, this thread's */
};

enum req_state {
	REQ_NEW = 0,
	REQ_ACCEPTED,		/* to be issued */
	REQ_REUSED,		/* issued by an interrupted run of this batch */
	REQ_REJECTED,
};

struct req {
	size_t file;			/* staged index */
	const char *path;		/* borrowed from the staging index */
	struct kr_csr *csr;
	int perr;			/* parse error (KR_ERR_*) */
	char cn[128];
	int has_cn;
	uint8_t *spki;			/* i2d_PUBKEY of the CSR key */
	size_t spki_len;
	uint8_t *raw;			/* CSR bytes (renewals only) */
	size_t raw_len;
	uint8_t *sig;			/* detached renewal signature */
	size_t sig_len;
	int renewal;
	struct kr_device dev;
	int have_dev;
	/* facts from the log (workers, kr_batch_req_facts) */
	int ferr;			/* reading them failed (KR_ERR_*) */
	uint64_t *idx;			/* the device's issued entries */
	size_t nidx;
	int same;			/* the last of them is this batch's */
	enum kr_renewal_proof proof;
	uint64_t prev_issued;		/* renewal: issued entry superseded */
	int have_prev;
	enum req_state state;
	char reason[48];		/* decision name when rejected */
	char msg[320];			/* human message */
	int err;			/* prepare / sign error */
	uint8_t serial[KR_SERIAL_LEN];	/* from the token (draw_serials) */
	struct kr_prepared *prep;
	uint64_t intent;
	X509 *cert;			/* reused requests only */
	uint8_t *der;			/* the certificate (signed or reused) */
	size_t der_len;
	char *pem;			/* written to certs/ (w_write) */
	size_t pem_len;
	uint8_t cert_sha[32];		/* SHA-256 of the DER */
	uint8_t file_sha[32];		/* SHA-256 of the PEM file */
	char *rec[3];			/* report, AWS, Azure records (JSON) */
	int werr;
};

struct batch {
	const struct kr_batch_opts *o;
	struct kr_batch_result *res;
	time_t now;
	struct kr_config cfg;
	struct kr_state_paths paths;
	char module[PATH_MAX];
	struct kr_policy *pol;
	struct kr_media *m;
	struct kr_batch_desc desc;
	const char *profile_name;
	uint8_t pol_digest[32];		/* kr_policy_digest of pol */
	size_t ncsr;
	struct kr_log *log;
	struct kr_note_signer signer;
	struct kr_hsm_signer *hsigner;
	MDB_dbi dbi_reg, dbi_batches, dbi_quota;
	struct kr_hsm *hsm;
	char *pin;
	size_t pinlen;
	struct worker w[KR_BATCH_SESSIONS_MAX];
	unsigned nw;
	struct kr_token *tok_main;	/* the main thread's session (serials) */
	X509 *icert;
	char issuer_id[65];
	int resume;
	int finished_before;
	uint64_t quota_used;		/* charged (LMDB) */
	uint64_t quota_pending;		/* accepted in this chunk */
	size_t mf_refused;		/* manifest entries refused */
	struct kr_batch_idset seen;
	struct kr_out *out;
	int h_report, h_aws, h_azure;
	size_t nrecords, nazure;
	size_t reasons[KR_DEC_NREASONS + 4];
	char *rejtxt;			/* first rejected lines, report.txt */
	size_t rejtxt_len, rejtxt_n;
	char *note;			/* latest signed checkpoint */
	json_t *prevrec;		/* batch record of an earlier run */
	double phase[8];		/* seconds per phase (timing) */
	atomic_ulong lookups;		/* random lookups in the map */
	int statm;			/* /proc/self/statm, or -1 */
};

/* batch_req.c */
void kr_batch_req_parse(struct batch *b, struct req *q);
/* Worker: what the log says of q's device, on a snapshot of its own. */
void kr_batch_req_facts(struct batch *b, struct req *q);
int kr_batch_req_decide(struct batch *b, struct req *q) KR_WUR;
void kr_batch_req_prepare(struct batch *b, struct worker *w, struct req *q);
void kr_batch_req_clear(struct req *q);
int kr_batch_supersede(struct batch *b, struct kr_ltx *ltx, struct req *q)
    KR_WUR;
/* Certificate DER of a logged cert-issued entry (malloc'd). */
int kr_batch_logged_cert(struct batch *b, MDB_txn *txn, uint64_t idx,
    uint8_t **der, size_t *len) KR_WUR;

/* batch_emit.c */
/* Worker: PEM, hashes and records of a certificate (in memory only). */
void kr_batch_emit_render(struct batch *b, struct req *q);
/* Worker: the certs/ file of an issued request (rendered first if not yet). */
void kr_batch_emit_write(struct batch *b, struct req *q);
int kr_batch_emit_begin(struct batch *b) KR_WUR;
int kr_batch_emit(struct batch *b, struct req *q) KR_WUR;
int kr_batch_emit_end(struct batch *b) KR_WUR;
void kr_batch_result_from_record(struct batch *b);

/* batch.c */
void kr_batch_sanitize(char *s);
/* Drop the LMDB map's pages from our page tables (RSS), see batch.c. */
void kr_batch_drop_map(struct batch *b);
/* Drop them if the resident set is over KR_BATCH_RSS_BUDGET (any thread). */
void kr_batch_trim(struct batch *b);
/* n more random lookups in the map (any thread): trims now and then. */
void kr_batch_looked(struct batch *b, unsigned n);

#endif
