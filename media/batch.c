/*
 * batch.c - `keyroom batch sign`: the batch engine (see media/batch.h).
 * Owns the flow and the "batches" / "quota" databases; parsing is in
 * scan.c / bundle.c / ca/, decisions in policy/, the log in audit/, the
 * output in output.c, per-request facts in batch_req.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "audit/signer_hsm.h"
#include "ca/ca.h"
#include "ca/config.h"
#include "ca/hsm.h"
#include "ceremony/polstore.h"
#include "ceremony/session.h"
#include "lib/util.h"
#include "media/batch.h"
#include "media/batch_int.h"
#include "media/manifest.h"
#include "media/registry.h"
#include "policy/policy.h"

/* ------------------------------------------------------------ threads */

/*
 * The stages of a chunk that run on the workers, most urgent first: a
 * worker always takes the next item of the most urgent job there is, so
 * the chunk the log is waiting for goes ahead, and the background work
 * (the next chunk's parse, the last chunk's files) fills the time the
 * main thread spends alone in the log.
 */
enum job_kind { J_SIGN, J_BUILD, J_WRITE, J_PARSE, J_KINDS };

static const char *const job_name[J_KINDS] = {
	"sign", "build", "write", "parse"
};

/* One stage of one chunk: fn over v[0..n). */
struct job {
	enum job_kind kind;
	struct req **v;
	size_t n, next, done;
};

/*
 * A fixed pool of one thread per PKCS#11 session (worker w[i], its own
 * session, never shared). The main thread submits jobs and keeps the
 * single-threaded work to itself: decisions, log commits, the records.
 */
#define POOL_QUEUE (3 * J_KINDS)
struct pool {
	struct batch *b;
	pthread_mutex_t mu;
	pthread_cond_t work;	/* workers: a job was queued, or stop */
	pthread_cond_t fin;	/* main: a job finished */
	struct job *q[POOL_QUEUE];	/* jobs with items not yet taken */
	size_t nq;
	int stop;
	pthread_t th[KR_BATCH_SESSIONS_MAX];
	unsigned nth;
	struct pool_arg {
		struct pool *p;
		unsigned w;
		double busy[J_KINDS];	/* seconds in each kind of job */
	} arg[KR_BATCH_SESSIONS_MAX];
};

static void job_run(enum job_kind kind, struct batch *b, struct worker *w,
    struct req *q);

/* The most urgent queued job, first submitted first; NULL if none. */
static struct job *
pool_pick(struct pool *p)
{
	struct job *best = NULL;
	size_t i;

	for (i = 0; i < p->nq; i++)
		if (best == NULL || p->q[i]->kind < best->kind)
			best = p->q[i];
	return best;
}

static void
pool_unqueue(struct pool *p, struct job *j)
{
	size_t i;

	for (i = 0; i < p->nq; i++)
		if (p->q[i] == j) {
			memmove(&p->q[i], &p->q[i + 1],
			    (p->nq - i - 1) * sizeof(p->q[0]));
			p->nq--;
			return;
		}
}

#define WORKER_NICE 5

static void *
pool_run(void *a)
{
	struct pool_arg *pa = a;
	struct pool *p = pa->p;
	struct worker *w = &p->b->w[pa->w];
	struct job *j;
	struct req *q;
	double t;

	/*
	 * The main thread's log work is the chain every chunk waits on;
	 * with three threads on two cores the workers yield to it (a nice
	 * value, not SCHED_IDLE: they still get their share, so a lock one
	 * of them holds is never held for long).
	 */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), WORKER_NICE);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		if ((j = pool_pick(p)) == NULL) {
			if (p->stop)
				break;
			pthread_cond_wait(&p->work, &p->mu);
			continue;
		}
		q = j->v[j->next++];
		if (j->next == j->n)
			pool_unqueue(p, j);
		pthread_mutex_unlock(&p->mu);
		t = kr_now();
		job_run(j->kind, p->b, w, q);
		ERR_clear_error();
		pa->busy[j->kind] += kr_now() - t;
		pthread_mutex_lock(&p->mu);
		if (++j->done == j->n)
			pthread_cond_broadcast(&p->fin);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Start one thread per worker session; 0 or an error (nothing started). */
static int
pool_start(struct pool *p, struct batch *b)
{
	unsigned i;

	memset(p, 0, sizeof(*p));
	p->b = b;
	if (pthread_mutex_init(&p->mu, NULL) != 0 ||
	    pthread_cond_init(&p->work, NULL) != 0 ||
	    pthread_cond_init(&p->fin, NULL) != 0)
		return kr_errf(KR_ERR_ALLOC, "worker pool");
	for (i = 0; i < b->nw; i++) {
		p->arg[i].p = p;
		p->arg[i].w = i;
		if (pthread_create(&p->th[i], NULL, pool_run,
		    &p->arg[i]) != 0)
			break;
		p->nth++;
	}
	if (p->nth == 0)
		return kr_errf(KR_ERR_ALLOC, "no worker thread");
	return 0;
}

/* Queue fn's items of one stage (none: done at once). */
static void
pool_submit(struct pool *p, struct job *j, enum job_kind kind,
    struct req **v, size_t n)
{
	j->kind = kind;
	j->v = v;
	j->n = n;
	j->next = j->done = 0;
	if (n == 0)
		return;
	pthread_mutex_lock(&p->mu);
	p->q[p->nq++] = j;	/* at most 3 chunks x J_KINDS in flight */
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
}

static void
pool_wait(struct pool *p, const struct job *j)
{
	pthread_mutex_lock(&p->mu);
	while (j->done < j->n)
		pthread_cond_wait(&p->fin, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

/* Let every queued item finish, then stop and join the threads. */
static void
pool_stop(struct pool *p)
{
	unsigned i;

	if (p->nth == 0)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nth; i++)
		(void)pthread_join(p->th[i], NULL);
	p->nth = 0;
	pthread_cond_destroy(&p->fin);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
}

/* -------------------------------------------------------- small helpers */

/* Make hostile text safe for a log value / JSON string: printable UTF-8. */
void
kr_batch_sanitize(char *s)
{
	char *p;

	for (p = s; *p != 0; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (!kr_media_utf8_ok(s))
		for (p = s; *p != 0; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
	if (*s == 0) {
		s[0] = '-';
		s[1] = 0;
	}
}

static void
serial_hex(const uint8_t *serial, size_t len, char *out)
{
	char hex[2 * 32 + 1];
	const char *p;

	kr_hex(serial, len, hex);
	for (p = hex; *p == '0' && p[1] != 0; p++)
		;
	memcpy(out, p, strlen(p) + 1);
}

static int
put_json(MDB_txn *txn, MDB_dbi dbi, const char *key, json_t *v)
{
	MDB_val k, d;
	char *s;
	int rc;

	if ((s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "batch record");
	k.mv_data = (void *)(uintptr_t)key;
	k.mv_size = strlen(key);
	d.mv_data = s;
	d.mv_size = strlen(s);
	rc = mdb_put(txn, dbi, &k, &d, 0);
	free(s);
	return rc != 0 ? kr_err_lmdb(rc, "%s: %s", KR_BATCH_DBI, key) : 0;
}

/* Batch record or NULL (not found). */
static int
get_batch(MDB_txn *txn, MDB_dbi dbi, const char *id, json_t **out)
{
	MDB_val k, d;
	json_error_t je;
	int rc;

	*out = NULL;
	k.mv_data = (void *)(uintptr_t)id;
	k.mv_size = strlen(id);
	if ((rc = mdb_get(txn, dbi, &k, &d)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return kr_err_lmdb(rc, "%s: %s", KR_BATCH_DBI, id);
	if ((*out = json_loadb(d.mv_data, d.mv_size, 0, &je)) == NULL)
		return kr_errf(KR_ERR_FORMAT, "%s: %s: corrupt record",
		    KR_BATCH_DBI, id);
	return 0;
}

static int
get_quota(MDB_txn *txn, MDB_dbi dbi, const char *mfr, uint64_t *used)
{
	MDB_val k, d;
	const uint8_t *p;
	int rc, i;

	*used = 0;
	k.mv_data = (void *)(uintptr_t)mfr;
	k.mv_size = strlen(mfr);
	if ((rc = mdb_get(txn, dbi, &k, &d)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return kr_err_lmdb(rc, "%s: %s", KR_QUOTA_DBI, mfr);
	if (d.mv_size != 8)
		return kr_errf(KR_ERR_FORMAT, "%s: %s: corrupt record",
		    KR_QUOTA_DBI, mfr);
	for (p = d.mv_data, i = 0; i < 8; i++)
		*used = (*used << 8) | p[i];
	return 0;
}

static int
put_quota(MDB_txn *txn, MDB_dbi dbi, const char *mfr, uint64_t used)
{
	MDB_val k, d;
	uint8_t v[8];
	int rc, i;

	for (i = 7; i >= 0; i--, used >>= 8)
		v[i] = (uint8_t)used;
	k.mv_data = (void *)(uintptr_t)mfr;
	k.mv_size = strlen(mfr);
	d.mv_data = v;
	d.mv_size = 8;
	if ((rc = mdb_put(txn, dbi, &k, &d, 0)) != 0)
		return kr_err_lmdb(rc, "%s: %s", KR_QUOTA_DBI, mfr);
	return 0;
}

/* Log a refusal of the whole batch (best effort: the refusal stands). */
static void
log_refusal(struct batch *b, const char *file, int code)
{
	char reason[600], saved[512];
	struct kr_ltx *ltx = NULL;

	if (b->log == NULL || b->signer.sign == NULL)
		return;
	snprintf(saved, sizeof(saved), "%s", kr_err_detail());
	snprintf(reason, sizeof(reason), "batch refused: %s: %s", saved,
	    kr_strerror(code));
	kr_batch_sanitize(reason);
	if (kr_log_begin(b->log, &ltx) == 0) {
		if (kr_ltx_appendf(ltx, KR_E_REQUEST_REJECTED, b->o->actor,
		    NULL, "batch", b->desc.id[0] ? b->desc.id : NULL, "file",
		    file, "reason", reason, NULL) != 0)
			kr_ltx_abort(ltx);
		else if (kr_ltx_commit(ltx, &b->signer, NULL) != 0) {
			/* the refusal stands without its entry */
		}
	}
	/* The caller reports the original failure. */
	(void)kr_errf(code, "%s", saved);
}

/*
 * Keep the resident set flat in batch size. The LMDB map is a read-only
 * shared file mapping (no MDB_WRITEMAP; writes go through pwrite), and
 * every random registry / index lookup maps not one page but a whole
 * fault-around window (64 KiB) of it: 1,000 lookups leave ~64 MiB of the
 * file in our page tables, and a run that never let go of them would end
 * at ~120 MiB for 100,000 devices. So the map's pages are dropped (they
 * stay in the page cache and fault back in when needed) - but only when
 * the resident set has reached KR_BATCH_RSS_BUDGET: until then the upper
 * levels of the trees, which every lookup walks, stay mapped. Dropping on
 * a fixed count of lookups instead (every 16) cost ~7 % more CPU at
 * 10,000 and 100,000 devices, in faults, madvise and refaulted lookups. The
 * map does not move during the run (kr_log_hold_map).
 */
void
kr_batch_drop_map(struct batch *b)
{
	kr_log_drop_pages(b->log);
}

#define KR_BATCH_RSS_BUDGET (40UL << 20)

void
kr_batch_trim(struct batch *b)
{
	char buf[128];
	unsigned long size, pages;
	ssize_t n;

	/* Without /proc: drop every time (the budget cannot be read). */
	if (b->statm >= 0 && (n = pread(b->statm, buf, sizeof(buf) - 1,
	    0)) > 0) {
		buf[n] = 0;
		if (sscanf(buf, "%lu %lu", &size, &pages) == 2 &&
		    pages * (unsigned long)getpagesize() <
		    KR_BATCH_RSS_BUDGET)
			return;
	}
	kr_batch_drop_map(b);
}

/* n more random lookups in the map, by any thread: every 16 (each maps up
 * to 64 KiB), see whether the map must go. */
#define TRIM_EVERY 16
void
kr_batch_looked(struct batch *b, unsigned n)
{
	unsigned long v = atomic_fetch_add(&b->lookups, n);

	if ((v + n) / TRIM_EVERY != v / TRIM_EVERY)
		kr_batch_trim(b);
}

/* ------------------------------------------------------------ setup */

static int
open_state(struct batch *b)
{
	char pinspec[PATH_MAX + 8];
	int r;

	if ((r = kr_state_paths(b->o->state, &b->paths)) != 0 ||
	    (r = kr_state_not_promoting(&b->paths)) != 0 ||
	    (r = kr_config_load(b->o->state, &b->cfg)) != 0)
		return r;
	if ((r = kr_config_module(&b->cfg, &b->paths, b->module,
	    sizeof(b->module))) != 0)
		return r;
	if ((r = kr_log_open(b->paths.log, KR_LOG_WRITE, &b->log)) != 0)
		return kr_errctx(r, "audit log");
	/* Under quorum, only inside `keyroom session run` (ceremony/). */
	if ((r = kr_session_require(b->log, getenv(KR_SESSION_ENV))) != 0)
		return r;
	if ((r = kr_snprintf(pinspec, sizeof(pinspec), "file:%s",
	    b->paths.audit_pin)) != 0)
		return r;
	if ((r = kr_hsm_signer_open(b->module, b->cfg.token_audit,
	    b->cfg.audit_key_label[0] ? b->cfg.audit_key_label : NULL,
	    pinspec, kr_log_origin(b->log), &b->signer, &b->hsigner)) != 0)
		return kr_errctx(r, "audit signer");
	if ((r = kr_log_recover(b->log, &b->signer, b->o->actor, NULL)) != 0)
		return kr_errctx(r, "audit log recovery");
	return 0;
}

/* The policy in force; once the quorum installed one, only that one. */
static int
open_policy(struct batch *b)
{
	int r;

	if ((r = kr_policy_load(b->paths.policy, &b->pol)) != 0 ||
	    (r = kr_policy_digest(b->pol, b->pol_digest)) != 0)
		return r;
	return kr_polstore_require(b->log, b->pol_digest);
}

static int
open_hsm(struct batch *b)
{
	EVP_PKEY *pk;
	uint8_t *der = NULL, h[32];
	int len, r;
	unsigned i;

	if ((r = kr_ca_load_cert(b->paths.intermediate_pem, &b->icert)) != 0)
		return kr_errctx(r, "issuing CA certificate");
	if ((pk = X509_get0_pubkey(b->icert)) == NULL ||
	    (len = i2d_PUBKEY(pk, &der)) <= 0)
		return kr_err_ssl("%s", b->paths.intermediate_pem);
	kr_sha256(der, (size_t)len, h);
	OPENSSL_free(der);
	kr_hex(h, 32, b->issuer_id);
	if ((r = kr_hsm_load(b->module, &b->hsm)) != 0)
		return r;
	if ((r = kr_read_secret(b->o->pin_spec, "issuing token PIN: ",
	    &b->pin, &b->pinlen, KR_PIN_MAX)) != 0)
		return kr_errctx(r, "issuing token PIN");
	/*
	 * One token session and one key handle per worker: the workers
	 * C_Sign the linted TBS bytes directly (kr_hsm_sign_raw), each on
	 * its own PKCS#11 session, so no session is ever shared between
	 * threads. Login is per application: the first open logs in, the
	 * others check the PIN against it.
	 */
	for (i = 0; i < b->nw; i++) {
		if ((r = kr_token_open(b->hsm, b->cfg.token_issuing, b->pin,
		    b->pinlen, &b->w[i].tok)) != 0 ||
		    (r = kr_token_find_key(b->w[i].tok, b->cfg.key_issuing,
		    &b->w[i].key)) != 0)
			return r;
		b->w[i].iss.cert = b->icert;
		b->w[i].iss.key = b->w[i].key;
		if ((r = kr_issuer_check(&b->w[i].iss)) != 0)
			return r;
	}
	/* The main thread's own session: serials while the workers sign. */
	if ((r = kr_token_open(b->hsm, b->cfg.token_issuing, b->pin,
	    b->pinlen, &b->tok_main)) != 0)
		return r;
	/*
	 * libp11 sets up its slot list lazily and not thread-safely; a
	 * worker's session recovery reaches it, so it is set up here,
	 * single-threaded.
	 */
	if (kr_key_type(b->w[0].key) != KR_KEY_ED25519 &&
	    (r = kr_hsm_evp_private(b->w[0].key, &pk)) != 0)
		return r;
	kr_secure_free(b->pin, KR_PIN_MAX);
	b->pin = NULL;
	return 0;
}

static void
close_all(struct batch *b)
{
	unsigned i;

	for (i = 0; i < b->nw; i++) {
		EVP_PKEY_CTX_free(b->w[i].verify);
		kr_key_free(b->w[i].key);
		kr_token_close(b->w[i].tok);
	}
	kr_token_close(b->tok_main);
	kr_hsm_free(b->hsm);
	if (b->pin != NULL)
		kr_secure_free(b->pin, KR_PIN_MAX);
	X509_free(b->icert);
	kr_hsm_signer_close(b->hsigner);
	kr_log_close(b->log);
	kr_policy_free(b->pol);
	kr_media_free(b->m);
	kr_out_free(b->out);
	kr_batch_idset_free(&b->seen);
	if (b->statm >= 0)
		(void)close(b->statm);
	free(b->note);
	free(b->rejtxt);
	json_decref(b->prevrec);
}

/* ------------------------------------------------- manifests + begin */

static int
import_manifests(struct batch *b, struct kr_ltx *ltx)
{
	struct kr_manifest *mf = NULL;
	const struct kr_media_file *f;
	uint8_t *buf = NULL;
	size_t len, i, j, added;
	char hex[65], nbuf[32];
	int r = 0, a;

	for (i = 0; i < kr_media_count(b->m); i++) {
		f = kr_media_file(b->m, i);
		if (!kr_bundle_is_manifest(f->path))
			continue;
		if ((r = kr_media_read(b->m, i, KR_MF_MAX_BYTES, &buf,
		    &len)) != 0 ||
		    (r = kr_manifest_parse(kr_policy_trust(b->pol), f->path,
		    buf, len, &mf)) != 0)
			goto out;
		added = 0;
		for (j = 0; j < mf->n; j++) {
			if (mf->r[j].reason != KR_MF_OK)
				continue;
			if ((r = kr_registry_put(kr_ltx_mdb(ltx), b->dbi_reg,
			    &mf->r[j].dev, &a)) != 0) {
				/* a conflicting entry refuses the medium */
				r = kr_errctx(r, "%s", f->path);
				goto out;
			}
			added += (size_t)a;
		}
		kr_hex(mf->sha256, 32, hex);
		if ((r = kr_snprintf(nbuf, sizeof(nbuf), "%zu", mf->n_ok)) != 0)
			goto out;
		if ((r = kr_ltx_appendf(ltx, KR_E_MANIFEST_IMPORTED,
		    b->o->actor, NULL, "file", f->path, "sha256", hex,
		    "entries", nbuf, NULL)) != 0)
			goto out;
		b->res->manifests++;
		b->res->devices_added += added;
		b->mf_refused += mf->n - mf->n_ok;
		kr_manifest_free(mf);
		mf = NULL;
		free(buf);
		buf = NULL;
	}
 out:
	kr_manifest_free(mf);
	free(buf);
	return r;
}

/* The batch-begin transaction: dbis, replay check, manifests, record. */
static int
begin_batch(struct batch *b)
{
	struct kr_ltx *ltx = NULL;
	json_t *rec = NULL;
	const char *st;
	char cnt[32], now[32], dg[65];
	int r;

	if ((r = kr_log_begin(b->log, &ltx)) != 0)
		return r;
	if ((r = kr_log_dbi(b->log, kr_ltx_mdb(ltx), KR_REGISTRY_DBI, 0,
	    &b->dbi_reg)) != 0 ||
	    (r = kr_log_dbi(b->log, kr_ltx_mdb(ltx), KR_BATCH_DBI, 0,
	    &b->dbi_batches)) != 0 ||
	    (r = kr_log_dbi(b->log, kr_ltx_mdb(ltx), KR_QUOTA_DBI, 0,
	    &b->dbi_quota)) != 0)
		goto out;
	if ((r = get_batch(kr_ltx_mdb(ltx), b->dbi_batches, b->desc.id,
	    &rec)) != 0)
		goto out;
	if (rec != NULL) {
		st = json_string_value(json_object_get(rec, "state"));
		if (st == NULL || (strcmp(st, "open") != 0 &&
		    strcmp(st, "ending") != 0)) {
			r = kr_errf(KR_ERR_EXISTS, "batch id '%s' was already "
			    "used (%s); a batch id is never accepted twice",
			    b->desc.id, st != NULL ? st : "?");
			goto out;
		}
		b->resume = 1;
		b->prevrec = json_incref(rec);
	}
	if ((r = get_quota(kr_ltx_mdb(ltx), b->dbi_quota,
	    b->desc.manufacturer, &b->quota_used)) != 0)
		goto out;
	if ((r = import_manifests(b, ltx)) != 0)
		goto out;
	if ((r = kr_snprintf(cnt, sizeof(cnt), "%zu", b->ncsr)) != 0)
		goto out;
	kr_hex(b->pol_digest, 32, dg);
	if ((r = kr_ltx_appendf(ltx, KR_E_BATCH_BEGIN, b->o->actor, NULL,
	    "batch", b->desc.id, "manufacturer", b->desc.manufacturer,
	    "profile", b->profile_name, "count", cnt, "policy-digest", dg,
	    NULL)) != 0)
		goto out;
	if (rec == NULL) {
		kr_time_rfc3339(b->now, now);
		rec = json_pack("{s:s,s:s,s:s,s:I,s:s}", "state", "open",
		    "manufacturer", b->desc.manufacturer, "profile",
		    b->profile_name, "count", (json_int_t)b->ncsr, "begun",
		    now);
		if (rec == NULL) {
			r = kr_errf(KR_ERR_ALLOC, "batch record");
			goto out;
		}
		if ((r = put_json(kr_ltx_mdb(ltx), b->dbi_batches, b->desc.id,
		    rec)) != 0)
			goto out;
	}
	r = kr_ltx_commit(ltx, &b->signer, NULL);
	ltx = NULL;
 out:
	kr_ltx_abort(ltx);
	json_decref(rec);
	return r;
}

/* ------------------------------------------------------------ finish */

static int
end_batch(struct batch *b)
{
	struct kr_ltx *ltx = NULL;
	json_t *rec = NULL;
	char si[32], sr[32], now[32];
	const char *result;
	int r;

	result = b->res->issued + b->res->reused == 0 ? "none-signed" :
	    b->res->rejected > 0 ? "some-rejected" : "all-signed";
	if ((r = kr_snprintf(si, sizeof(si), "%zu", b->res->issued +
	    b->res->reused)) != 0 ||
	    (r = kr_snprintf(sr, sizeof(sr), "%zu", b->res->rejected)) != 0)
		return r;
	if ((r = kr_log_begin(b->log, &ltx)) != 0)
		return r;
	if ((r = kr_ltx_appendf(ltx, KR_E_BATCH_END, b->o->actor, NULL,
	    "batch", b->desc.id, "signed", si, "rejected", sr, "result",
	    result, NULL)) != 0)
		goto out;
	kr_time_rfc3339(b->now, now);
	if ((rec = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s}", "state",
	    "ending", "manufacturer", b->desc.manufacturer, "profile",
	    b->profile_name, "count", (json_int_t)b->ncsr, "issued",
	    (json_int_t)b->res->issued, "reused", (json_int_t)b->res->reused,
	    "rejected", (json_int_t)b->res->rejected, "begun", now)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "batch record");
		goto out;
	}
	if ((r = put_json(kr_ltx_mdb(ltx), b->dbi_batches, b->desc.id,
	    rec)) != 0)
		goto out;
	free(b->note);
	b->note = NULL;
	r = kr_ltx_commit(ltx, &b->signer, &b->note);
	ltx = NULL;
 out:
	kr_ltx_abort(ltx);
	json_decref(rec);
	return r;
}

/* After the output is whole: the batch id is used up for good. */
static int
mark_done(struct batch *b)
{
	struct kr_ltx *ltx = NULL;
	json_t *rec = NULL;
	int r;

	if ((r = kr_log_begin(b->log, &ltx)) != 0)
		return r;
	if ((r = get_batch(kr_ltx_mdb(ltx), b->dbi_batches, b->desc.id,
	    &rec)) != 0)
		goto out;
	if (rec == NULL) {
		r = kr_errf(KR_ERR_INTERNAL, "batch record vanished");
		goto out;
	}
	if (json_object_set_new(rec, "state", json_string("done")) != 0) {
		r = kr_errf(KR_ERR_ALLOC, "batch record");
		goto out;
	}
	if ((r = put_json(kr_ltx_mdb(ltx), b->dbi_batches, b->desc.id,
	    rec)) != 0)
		goto out;
	r = kr_ltx_commit(ltx, &b->signer, NULL);
	ltx = NULL;
 out:
	kr_ltx_abort(ltx);
	json_decref(rec);
	return r;
}

static int
read_batch_json(struct batch *b)
{
	uint8_t *buf = NULL;
	size_t len;
	long i;
	int r;

	if ((i = kr_media_find(b->m, "batch.json")) < 0)
		return kr_errf(KR_ERR_NOT_FOUND, "batch.json: missing on the "
		    "medium");
	if ((r = kr_media_read(b->m, (size_t)i, KR_MEDIA_MAX_BATCH_JSON,
	    &buf, &len)) != 0)
		return kr_errctx(r, "batch.json");
	r = kr_batch_desc_parse("batch.json", buf, len, &b->desc);
	free(buf);
	if (r != 0)
		return r;
	memcpy(b->res->batch_id, b->desc.id, sizeof(b->desc.id));
	if (kr_policy_quota(b->pol, b->desc.manufacturer) < 0)
		return kr_errf(KR_ERR_POLICY, "batch.json: manufacturer-unknown:"
		    " '%s' is not in the policy", b->desc.manufacturer);
	if ((b->profile_name = kr_policy_profile(b->pol, b->desc.manufacturer,
	    b->desc.profile)) == NULL)
		return kr_errf(KR_ERR_POLICY, "batch.json: profile-not-allowed:"
		    " profile '%s' is not allowed for manufacturer %s",
		    b->desc.profile, b->desc.manufacturer);
	return 0;
}

/* The next up to `chunk` CSRs of the medium from *i on, into reqs. */
static size_t
next_chunk(struct batch *b, struct req *reqs, unsigned chunk, size_t *i)
{
	size_t n = 0;

	for (; *i < kr_media_count(b->m) && n < chunk; (*i)++) {
		const struct kr_media_file *f = kr_media_file(b->m, *i);

		if (!kr_bundle_is_csr(f->path))
			continue;
		memset(&reqs[n], 0, sizeof(reqs[n]));
		reqs[n].file = *i;
		reqs[n].path = f->path;
		n++;
	}
	return n;
}

/* -------------------------------------------------------- the chunks */

/*
 * Where the main thread's seconds go (KEYROOM_BATCH_TIMING): its own
 * work, and its waits for the workers.
 */
enum { PH_DECIDE, PH_INTENTS, PH_ISSUED, PH_RECORDS, PH_WAIT_PARSE,
	PH_WAIT_BUILD, PH_WAIT_SIGN, PH_WAIT_WRITE };

static double
phase(struct batch *b, int k, double t)
{
	double t1 = kr_now();

	b->phase[k] += t1 - t;
	return t1;
}

/* A chunk in flight: its requests and one job per stage. */
struct chunk {
	struct req *reqs;
	size_t n;
	struct req **v[J_KINDS];
	struct job job[J_KINDS];
};

static void
job_run(enum job_kind kind, struct batch *b, struct worker *w, struct req *q)
{
	switch (kind) {
	case J_PARSE:
		kr_batch_req_parse(b, q);
		kr_batch_req_facts(b, q);
		kr_batch_looked(b, 3);	/* registry x2, device index */
		break;
	case J_BUILD:
		kr_batch_req_prepare(b, w, q);
		break;
	case J_SIGN:
		q->err = kr_ca_sign_prepared_der(q->prep, &w->iss, &w->verify,
		    &q->der, &q->der_len);
		if (q->err != 0)
			snprintf(q->msg, sizeof(q->msg), "HSM signing failed: "
			    "%s", kr_strerror(q->err));
		else {	/* in memory: nothing leaves before it is logged */
			kr_batch_emit_render(b, q);
			/* done with: freed here, not on the main thread */
			kr_prepared_free(q->prep);
			q->prep = NULL;
			kr_csr_free(q->csr);
			q->csr = NULL;
		}
		break;
	case J_WRITE:
		kr_batch_emit_write(b, q);
		break;
	case J_KINDS:
		break;
	}
}

static int
log_rejected(struct batch *b, struct kr_ltx *ltx, struct req *q)
{
	char reason[sizeof(q->msg) + 64];

	snprintf(reason, sizeof(reason), "%s: %s", q->reason, q->msg);
	kr_batch_sanitize(reason);
	return kr_ltx_appendf(ltx, KR_E_REQUEST_REJECTED, b->o->actor, NULL,
	    "batch", b->desc.id, "file", q->path, "device-id",
	    q->have_dev ? q->dev.unique_id : NULL, "reason", reason, NULL);
}

static void
reject(struct req *q, const char *reason)
{
	q->state = REQ_REJECTED;
	snprintf(q->reason, sizeof(q->reason), "%s", reason);
}

/*
 * Serials for the accepted requests of a chunk from the issuing token's
 * RNG: one C_GenerateRandom for the whole chunk (its cost vanishes), 16
 * octets each, positive with a nonzero first octet (>= 120 bits of
 * entropy), and checked against the issued-serial index of the log and
 * against the chunk itself; a clash (or a zero first octet) draws that
 * one again. On the main thread's own token session (no worker's).
 */
#define SERIAL_TRIES 8
static int
draw_serials(struct batch *b, MDB_txn *txn, struct req **v, size_t nv)
{
	uint8_t *pool = NULL;
	char hex[80];
	uint64_t idx;
	size_t i, j;
	int r, tries, clash;

	if (nv == 0)
		return 0;
	if ((pool = malloc(nv * KR_SERIAL_LEN)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "serials");
	if ((r = kr_token_random(b->tok_main, pool, nv * KR_SERIAL_LEN)) != 0)
		goto out;
	for (i = 0; i < nv; i++) {
		uint8_t *s = v[i]->serial;

		memcpy(s, pool + i * KR_SERIAL_LEN, KR_SERIAL_LEN);
		for (tries = 0;; tries++) {
			s[0] &= 0x7f;
			clash = s[0] == 0;
			if (!clash) {
				serial_hex(s, KR_SERIAL_LEN, hex);
				r = kr_log_serial_lookup(b->log, txn,
				    b->issuer_id, hex, &idx);
				if (r == 0)
					clash = 1;
				else if (r != KR_ERR_NOT_FOUND)
					goto out;
				kr_err_clear();
			}
			for (j = 0; j < i && !clash; j++)
				clash = memcmp(v[j]->serial, s,
				    KR_SERIAL_LEN) == 0;
			if (!clash)
				break;
			if (tries + 1 >= SERIAL_TRIES) {
				r = kr_errf(KR_ERR_EXISTS, "no unused serial "
				    "after %d draws", SERIAL_TRIES);
				goto out;
			}
			if ((r = kr_token_random(b->tok_main, s,
			    KR_SERIAL_LEN)) != 0)
				goto out;
		}
		kr_batch_looked(b, 1);	/* random serials: other pages */
	}
	r = 0;
 out:
	free(pool);
	return r;
}

/* The requests of c that want() (all, if want is NULL) into c->v[k]. */
static size_t
select_reqs(struct chunk *c, enum job_kind k, int (*want)(const struct req *))
{
	size_t i, nv = 0;

	for (i = 0; i < c->n; i++)
		if (want == NULL || want(&c->reqs[i]))
			c->v[k][nv++] = &c->reqs[i];
	return nv;
}

static int
is_accepted(const struct req *q)
{
	return q->state == REQ_ACCEPTED;
}

static int
is_output(const struct req *q)
{
	return (q->state == REQ_ACCEPTED && q->err == 0) ||
	    q->state == REQ_REUSED;
}

static void
submit(struct pool *p, struct chunk *c, enum job_kind k,
    int (*want)(const struct req *))
{
	pool_submit(p, &c->job[k], k, c->v[k], select_reqs(c, k, want));
}

/*
 * Facts and decisions (LMDB reads, in-run state), serials, build + lint
 * on the workers, then the intents and rejections committed: before
 * anything of this chunk is signed.
 */
static int
chunk_decide(struct batch *b, struct pool *p, struct chunk *c)
{
	struct kr_ltx *ltx = NULL;
	struct kr_cert_intent ci;
	char ser[80];
	size_t i;
	int r;
	double t = kr_now();

	if ((r = kr_log_begin(b->log, &ltx)) != 0)
		return r;
	for (i = 0; i < c->n; i++) {
		if ((r = kr_batch_req_decide(b, &c->reqs[i])) != 0)
			goto out;
	}
	if ((r = draw_serials(b, kr_ltx_mdb(ltx), c->v[J_BUILD],
	    select_reqs(c, J_BUILD, is_accepted))) != 0)
		goto out;
	t = phase(b, PH_DECIDE, t);
	submit(p, c, J_BUILD, is_accepted);
	pool_wait(p, &c->job[J_BUILD]);
	t = phase(b, PH_WAIT_BUILD, t);
	for (i = 0; i < c->n; i++) {
		struct req *q = &c->reqs[i];

		if (q->state == REQ_ACCEPTED && q->err != 0)
			reject(q, "lint-failed");
		if (q->state == REQ_REJECTED) {
			if ((r = log_rejected(b, ltx, q)) != 0)
				goto out;
			continue;
		}
		if (q->state != REQ_ACCEPTED)
			continue;
		memset(&ci, 0, sizeof(ci));
		serial_hex(kr_prepared_serial(q->prep), KR_SERIAL_LEN, ser);
		ci.issuer = b->issuer_id;
		ci.serial = ser;
		kr_prepared_tbs_sha256(q->prep, ci.tbs_sha256);
		ci.device_id = q->dev.unique_id;
		ci.batch = b->desc.id;
		ci.profile = b->profile_name;
		if ((r = kr_log_intent(ltx, b->o->actor, &ci,
		    &q->intent)) != 0)
			goto out;
		kr_batch_looked(b, 1);	/* the serial index */
	}
	r = kr_ltx_commit(ltx, &b->signer, NULL);
	ltx = NULL;
	if (r != 0)
		goto out;
	kr_media_crash_point("chunk: intents committed");
	kr_batch_trim(b);
	phase(b, PH_INTENTS, t);
 out:
	kr_ltx_abort(ltx);
	return r;
}

/* The issued (or abandoned) entries, the quota and a checkpoint, in one
 * transaction, once the workers have signed the chunk. */
static int
chunk_issued(struct batch *b, struct pool *p, struct chunk *c)
{
	struct kr_ltx *ltx = NULL;
	struct kr_cert_issued cis;
	const struct job *j = &c->job[J_SIGN];
	uint64_t charged = 0;
	size_t i;
	int r;
	double t = kr_now();

	pool_wait(p, j);
	t = phase(b, PH_WAIT_SIGN, t);
	kr_media_crash_point("chunk: signed");
	if ((r = kr_log_begin(b->log, &ltx)) != 0)
		return r;
	for (i = 0; i < j->n; i++) {
		struct req *q = j->v[i];

		if (q->err != 0) {
			if ((r = kr_log_abandon(ltx, b->o->actor, q->intent,
			    "signing failed", NULL)) != 0)
				goto out;
			reject(q, "signing-failed");
			continue;
		}
		memset(&cis, 0, sizeof(cis));
		cis.intent = q->intent;
		cis.device_id = q->dev.unique_id;
		cis.batch = b->desc.id;
		cis.der = q->der;
		cis.der_len = q->der_len;
		if ((r = kr_log_issued(ltx, b->o->actor, &cis, NULL)) != 0)
			goto out;
		if (q->renewal && (r = kr_batch_supersede(b, ltx, q)) != 0)
			goto out;
		if (!q->renewal)
			charged++;
		kr_batch_looked(b, 2);	/* issued and device indexes */
	}
	if (charged > 0 && (r = put_quota(kr_ltx_mdb(ltx), b->dbi_quota,
	    b->desc.manufacturer, b->quota_used + charged)) != 0)
		goto out;
	free(b->note);
	b->note = NULL;
	r = kr_ltx_commit(ltx, &b->signer, &b->note);
	ltx = NULL;
	if (r != 0)
		goto out;
	b->quota_used += charged;
	b->quota_pending = 0;	/* charged, or failed and never charged */
	kr_media_crash_point("chunk: issued committed");
	kr_batch_trim(b);
	phase(b, PH_ISSUED, t);
 out:
	kr_ltx_abort(ltx);
	return r;
}

/* The records, in the medium's order, once the chunk's files are out. */
static int
chunk_emit(struct batch *b, struct pool *p, struct chunk *c)
{
	size_t i;
	int r;
	double t = kr_now();

	pool_wait(p, &c->job[J_WRITE]);
	t = phase(b, PH_WAIT_WRITE, t);
	for (i = 0; i < c->n; i++)
		if ((r = kr_batch_emit(b, &c->reqs[i])) != 0)
			return r;
	kr_media_crash_point("chunk: output written");
	phase(b, PH_RECORDS, t);
	return 0;
}

static void
chunk_clear(struct chunk *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		kr_batch_req_clear(&c->reqs[i]);
	c->n = 0;
}

/*
 * Three chunks in flight: while the workers sign chunk k, the main thread
 * writes chunk k-1's records, and the parse of chunk k+1 and the files of
 * chunk k-1 fill the workers' time while the main thread decides and
 * commits. The order of the log is unchanged: chunk k's intents are
 * committed before it is signed, its issued entries before its files.
 */
static int
run_chunks(struct batch *b, struct pool *p, struct chunk cs[3],
    unsigned chunk, struct kr_progress *prog)
{
	struct chunk *cur = &cs[0], *nx, *prev = NULL;
	size_t i = 0, done = 0;
	unsigned k;
	int r = 0;
	double t;

	cur->n = next_chunk(b, cur->reqs, chunk, &i);
	submit(p, cur, J_PARSE, NULL);
	for (k = 0; cur->n > 0; k++) {
		nx = &cs[(k + 1) % 3];
		nx->n = next_chunk(b, nx->reqs, chunk, &i);
		t = kr_now();
		pool_wait(p, &cur->job[J_PARSE]);
		phase(b, PH_WAIT_PARSE, t);
		submit(p, nx, J_PARSE, NULL);
		if ((r = chunk_decide(b, p, cur)) != 0)
			break;
		submit(p, cur, J_SIGN, is_accepted);
		if (prev != NULL) {
			r = chunk_emit(b, p, prev);
			done += prev->n;
			chunk_clear(prev);
			prev = NULL;
			if (r != 0)
				break;
			if (b->o->progress)
				kr_progress_update(prog, done);
		}
		if ((r = chunk_issued(b, p, cur)) != 0)
			break;
		submit(p, cur, J_WRITE, is_output);
		prev = cur;
		cur = nx;
	}
	if (r == 0 && prev != NULL) {
		r = chunk_emit(b, p, prev);
		done += prev->n;
		if (r == 0 && b->o->progress)
			kr_progress_update(prog, done);
	}
	/* every queued item finishes before any request is freed */
	pool_stop(p);
	for (k = 0; k < 3; k++)
		chunk_clear(&cs[k]);
	return r;
}
int
kr_batch_sign(const struct kr_batch_opts *o, struct kr_batch_result *res)
{
	struct batch *b = NULL;
	struct req *reqs = NULL, **vs = NULL;
	struct chunk cs[3];
	struct kr_progress prog;
	struct pool pool;
	struct stat st;
	size_t i;
	unsigned chunk, k;
	int r;
	double t0, ts[6] = { kr_now(), 0, 0, 0, 0, 0 };

	memset(res, 0, sizeof(*res));
	memset(cs, 0, sizeof(cs));
	memset(&pool, 0, sizeof(pool));
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "batch");
	b->o = o;
	b->res = res;
	b->now = o->now != 0 ? o->now : time(NULL);
	b->nw = o->sessions != 0 ? o->sessions : KR_BATCH_SESSIONS_DEFAULT;
	if (b->nw > KR_BATCH_SESSIONS_MAX)
		b->nw = KR_BATCH_SESSIONS_MAX;
	chunk = o->chunk != 0 ? o->chunk : KR_BATCH_CHUNK_DEFAULT;
	if (chunk > KR_BATCH_CHUNK_MAX)
		chunk = KR_BATCH_CHUNK_MAX;
	b->h_report = b->h_aws = b->h_azure = -1;
	b->statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if ((r = open_state(b)) != 0)
		goto out;
	if ((r = open_policy(b)) != 0) {
		log_refusal(b, "-", r);
		goto out;
	}
	/* The medium: scanned and staged once, before anything else. */
	if ((r = kr_media_stage(o->media, b->paths.dir, NULL, &b->m)) != 0) {
		log_refusal(b, "-", r);
		goto out;
	}
	ts[1] = kr_now();
	if ((r = read_batch_json(b)) != 0) {
		log_refusal(b, "batch.json", r);
		goto out;
	}
	for (i = 0; i < kr_media_count(b->m); i++)
		if (kr_bundle_is_csr(kr_media_file(b->m, i)->path))
			b->ncsr++;
	res->requests = b->ncsr;
	if ((r = kr_batch_idset_reserve(&b->seen, b->ncsr)) != 0)
		goto out;
	if ((r = kr_snprintf(res->out, sizeof(res->out), "%s/%s/%s", o->media,
	    KR_MEDIA_OUT_DIR, b->desc.id)) != 0)
		goto out;
	/* HSM first: a wrong PIN must not leave an open batch behind. */
	if ((r = open_hsm(b)) != 0)
		goto out;
	if ((r = begin_batch(b)) != 0) {
		if (r == KR_ERR_EXISTS || r == KR_ERR_POLICY)
			log_refusal(b, "batch.json", r);
		goto out;
	}
	if (b->resume && lstat(res->out, &st) == 0) {
		/* Killed after the rename: the output is whole already. */
		r = mark_done(b);
		b->finished_before = 1;
		goto out;
	}
	if ((r = kr_out_begin(o->media, b->desc.id, &b->out)) != 0 ||
	    (r = kr_batch_emit_begin(b)) != 0)
		goto out;
	if ((reqs = calloc(3 * (size_t)chunk, sizeof(*reqs))) == NULL ||
	    (vs = calloc(3 * J_KINDS * (size_t)chunk, sizeof(*vs))) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "requests");
		goto out;
	}
	for (k = 0; k < 3; k++) {
		cs[k].reqs = reqs + (size_t)k * chunk;
		for (i = 0; i < J_KINDS; i++)
			cs[k].v[i] = vs + ((size_t)k * J_KINDS + i) * chunk;
	}
	ts[2] = kr_now();
	kr_progress_start(&prog, "signing", b->ncsr);
	prog.active = prog.active && o->progress;
	t0 = kr_now();
	/* the workers read the log too: the map stays where it is */
	kr_log_hold_map(b->log, 1);
	kr_batch_drop_map(b);
	if ((r = pool_start(&pool, b)) != 0)
		pool_stop(&pool);
	else
		r = run_chunks(b, &pool, cs, chunk, &prog);
	kr_log_hold_map(b->log, 0);
	if (r != 0)
		goto out;
	if (o->progress)
		kr_progress_finish(&prog);
	res->seconds = kr_now() - t0;
	ts[3] = kr_now();
	if ((r = end_batch(b)) != 0)
		goto out;
	kr_media_crash_point("batch: end committed");
	if ((r = kr_batch_emit_end(b)) != 0 || (r = kr_out_commit(b->out)) != 0)
		goto out;
	ts[4] = kr_now();
	if ((r = mark_done(b)) != 0)
		goto out;
	kr_media_crash_point("batch: done");
	ts[5] = kr_now();
	/* KEYROOM_BATCH_TIMING=1: where the seconds went (bench, tuning). */
	if (getenv("KEYROOM_BATCH_TIMING") != NULL) {
		double busy[J_KINDS] = { 0 };

		for (k = 0; k < b->nw; k++)
			for (i = 0; i < J_KINDS; i++)
				busy[i] += pool.arg[k].busy[i];
		fprintf(stderr, "keyroom: seconds: open+stage %.2f, setup %.2f, "
		    "chunks %.2f, end+sync %.2f, done %.2f\n"
		    "keyroom: main thread: decide %.2f, intents %.2f, issued "
		    "%.2f, records %.2f; waiting for parse %.2f, build %.2f, "
		    "sign %.2f, write %.2f\n", ts[1] - ts[0], ts[2] - ts[1],
		    ts[3] - ts[2], ts[4] - ts[3], ts[5] - ts[4],
		    b->phase[PH_DECIDE], b->phase[PH_INTENTS],
		    b->phase[PH_ISSUED], b->phase[PH_RECORDS],
		    b->phase[PH_WAIT_PARSE], b->phase[PH_WAIT_BUILD],
		    b->phase[PH_WAIT_SIGN], b->phase[PH_WAIT_WRITE]);
		fprintf(stderr, "keyroom: workers (%u), seconds busy:", b->nw);
		for (i = 0; i < J_KINDS; i++)
			fprintf(stderr, " %s %.2f", job_name[i], busy[i]);
		fprintf(stderr, "\n");
	}
	r = 0;
 out:
	if (b->note != NULL) {
		size_t nl = 0;
		const char *p;

		/* origin, size, root hash: the lines read aloud */
		for (p = b->note; *p != 0 && nl < 3; p++)
			if (*p == '\n')
				nl++;
		snprintf(res->checkpoint, sizeof(res->checkpoint), "%.*s",
		    (int)(p - b->note), b->note);
	}
	if (r == 0 && b->finished_before)
		kr_batch_result_from_record(b);
	free(vs);
	free(reqs);
	close_all(b);
	free(b);
	return r;
}

int
kr_batch_exit_code(const struct kr_batch_result *res)
{
	if (res->issued + res->reused == 0)
		return KR_EXIT_NONE;
	if (res->rejected > 0)
		return KR_EXIT_PARTIAL;
	return KR_EXIT_OK;
}
