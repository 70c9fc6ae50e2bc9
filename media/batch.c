/*
 * batch.c - `keyroom batch sign`: the batch engine (see media/batch.h).
 * Owns the flow and the "batches" / "quota" databases; parsing is in
 * scan.c / bundle.c / ca/, decisions in policy/, the log in audit/, the
 * output in output.c, per-request facts in batch_req.c.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
#include "ceremony/session.h"
#include "lib/util.h"
#include "media/batch.h"
#include "media/batch_int.h"
#include "media/manifest.h"
#include "media/registry.h"
#include "policy/policy.h"

/* ------------------------------------------------------------ threads */

struct pfor {
	struct batch *b;
	void (*fn)(struct batch *, struct worker *, struct req *);
	struct req **v;
	size_t n;
	atomic_size_t next;
	unsigned w;
};

struct pfor_arg {
	struct pfor *pf;
	unsigned w;
};

static void *
pfor_run(void *a)
{
	struct pfor_arg *pa = a;
	struct pfor *pf = pa->pf;
	size_t i;

	while ((i = atomic_fetch_add(&pf->next, 1)) < pf->n)
		pf->fn(pf->b, &pf->b->w[pa->w], pf->v[i]);
	ERR_clear_error();
	return NULL;
}

/* Run fn over v[0..n) on every worker (the calling thread is worker 0). */
static void
parallel(struct batch *b, void (*fn)(struct batch *, struct worker *,
    struct req *), struct req **v, size_t n)
{
	struct pfor pf;
	struct pfor_arg pa[KR_BATCH_SESSIONS_MAX];
	pthread_t th[KR_BATCH_SESSIONS_MAX];
	int started[KR_BATCH_SESSIONS_MAX];
	unsigned i, nw = b->nw;

	if (n == 0)
		return;
	memset(&pf, 0, sizeof(pf));
	pf.b = b;
	pf.fn = fn;
	pf.v = v;
	pf.n = n;
	atomic_init(&pf.next, 0);
	if (nw > n)
		nw = (unsigned)n;
	for (i = 0; i < nw; i++) {
		pa[i].pf = &pf;
		pa[i].w = i;
		started[i] = 0;
	}
	for (i = 1; i < nw; i++)
		started[i] = pthread_create(&th[i], NULL, pfor_run,
		    &pa[i]) == 0;
	(void)pfor_run(&pa[0]);
	for (i = 1; i < nw; i++)
		if (started[i])
			(void)pthread_join(th[i], NULL);
}

/*
 * The next chunk's CSRs are parsed (and their proofs of possession
 * checked) in the background while this chunk decides, commits, signs
 * and writes, by a SCHED_IDLE thread: it runs only on a core that would
 * otherwise wait (the single-threaded log phases, fsync), never taking
 * time from the signing workers. Parsing is pure: it reads the staged
 * medium and touches no log, output or in-run state. Whatever is left
 * when the chunk comes up is parsed by every worker at once.
 */
struct prefetch {
	struct batch *b;
	struct req *reqs;
	size_t n;
	atomic_size_t next;
	pthread_t th;
	int running;
};

static void
prefetch_loop(struct prefetch *pf)
{
	size_t i;

	while ((i = atomic_fetch_add(&pf->next, 1)) < pf->n)
		kr_batch_req_parse(pf->b, &pf->reqs[i]);
	ERR_clear_error();
}

static void *
prefetch_idle(void *a)
{
	struct sched_param sp = { .sched_priority = 0 };

	(void)sched_setscheduler(0, SCHED_IDLE, &sp);	/* this thread */
	prefetch_loop(a);
	return NULL;
}

static void *
prefetch_help(void *a)
{
	prefetch_loop(a);
	return NULL;
}

static void
prefetch_start(struct prefetch *pf, struct batch *b, struct req *reqs,
    size_t n)
{
	pf->b = b;
	pf->reqs = reqs;
	pf->n = n;
	atomic_init(&pf->next, 0);
	pf->running = n > 0 && pthread_create(&pf->th, NULL, prefetch_idle,
	    pf) == 0;
}

/* Parse what is left on every worker, then join the idle thread. */
static void
prefetch_finish(struct prefetch *pf, unsigned nw)
{
	pthread_t th[KR_BATCH_SESSIONS_MAX];
	int started[KR_BATCH_SESSIONS_MAX];
	unsigned i;

	for (i = 1; i < nw; i++)
		started[i] = pthread_create(&th[i], NULL, prefetch_help,
		    pf) == 0;
	prefetch_loop(pf);
	for (i = 1; i < nw; i++)
		if (started[i])
			(void)pthread_join(th[i], NULL);
	if (pf->running)
		(void)pthread_join(pf->th, NULL);
	pf->running = 0;
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
 * file in our page tables. Those pages can be dropped from our mapping at
 * any time: they stay in the page cache and fault back in when needed.
 * mdb_env_info() gives no address without MDB_FIXEDMAP, so the mapping
 * of data.mdb is looked up in /proc/self/maps (once per chunk: it moves
 * when the map grows, which happens only between transactions).
 */
static void
find_map(struct batch *b)
{
	char line[PATH_MAX + 128], want[PATH_MAX + 16], real[PATH_MAX];
	unsigned long lo, hi;
	FILE *f;
	int n;

	b->map_lo = b->map_len = 0;
	if (realpath(b->paths.log, real) == NULL ||
	    kr_snprintf(want, sizeof(want), "%s/data.mdb", real) != 0 ||
	    (f = fopen("/proc/self/maps", "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char perm[8];

		n = 0;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perm,
		    &n) != 3 || n == 0 || perm[3] != 's')
			continue;
		line[strcspn(line, "\n")] = 0;
		if (strcmp(line + n, want) == 0) {
			b->map_lo = lo;
			b->map_len = hi - lo;
		}
	}
	fclose(f);
}

void
kr_batch_drop_map(struct batch *b)
{
	if (b->map_len != 0)
		(void)madvise((void *)b->map_lo, b->map_len, MADV_DONTNEED);
}

/* ------------------------------------------------------------ setup */

static int
open_state(struct batch *b)
{
	char pinspec[PATH_MAX + 8];
	int r;

	if ((r = kr_state_paths(b->o->state, &b->paths)) != 0 ||
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
	if ((r = kr_policy_load(b->paths.policy, &b->pol)) != 0)
		return r;
	return 0;
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
		kr_key_free(b->w[i].key);
		kr_token_close(b->w[i].tok);
	}
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
	char cnt[32], now[32];
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
	if ((r = kr_ltx_appendf(ltx, KR_E_BATCH_BEGIN, b->o->actor, NULL,
	    "batch", b->desc.id, "manufacturer", b->desc.manufacturer,
	    "profile", b->profile_name, "count", cnt, NULL)) != 0)
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

/* --------------------------------------------------------- one chunk */

static void
w_prepare(struct batch *b, struct worker *w, struct req *q)
{
	kr_batch_req_prepare(b, w, q);
}

static void
w_sign(struct batch *b, struct worker *w, struct req *q)
{
	q->err = kr_ca_sign_prepared_der(q->prep, &w->iss, &q->der,
	    &q->der_len);
	if (q->err != 0)
		snprintf(q->msg, sizeof(q->msg), "HSM signing failed: %s",
		    kr_strerror(q->err));
}

static void
w_write(struct batch *b, struct worker *w, struct req *q)
{
	(void)w;
	kr_batch_emit_write(b, q);
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
 * one again. Runs on the main thread between the parallel phases, so the
 * token's raw session is not shared.
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
	if ((r = kr_token_random(b->w[0].tok, pool, nv * KR_SERIAL_LEN)) != 0)
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
			if ((r = kr_token_random(b->w[0].tok, s,
			    KR_SERIAL_LEN)) != 0)
				goto out;
		}
		/* random serials: every lookup lands on another page */
		if (i % 64 == 63)
			kr_batch_drop_map(b);
	}
	r = 0;
 out:
	free(pool);
	return r;
}

static int
run_chunk(struct batch *b, struct req *reqs, size_t n, struct prefetch *pf,
    struct req *next, size_t nnext)
{
	struct req *v[KR_BATCH_CHUNK_MAX];
	struct kr_ltx *ltx = NULL;
	struct kr_cert_intent ci;
	struct kr_cert_issued cis;
	size_t i, nv;
	uint64_t charged = 0;
	char ser[80];
	int r;

	double t = kr_now();

	/* KEYROOM_BATCH_TIMING: seconds per phase, summed over chunks. */
#define PHASE(k) do { double t1 = kr_now(); b->phase[k] += t1 - t; \
	t = t1; } while (0)
	for (i = 0; i < n; i++)
		v[i] = &reqs[i];
	/* 1. parse + proof of possession: what the idle thread left, in
	 * parallel; then the next chunk starts in the background */
	prefetch_finish(pf, b->nw);
	prefetch_start(pf, b, next, nnext);
	PHASE(0);
	/* 2. facts + decision (serial: LMDB reads, in-run state) */
	if ((r = kr_log_begin(b->log, &ltx)) != 0)
		return r;
	find_map(b);
	for (i = 0; i < n; i++) {
		if ((r = kr_batch_req_decide(b, kr_ltx_mdb(ltx), &reqs[i])) != 0)
			goto out;
		if (i % 64 == 63)
			kr_batch_drop_map(b);
	}
	kr_batch_drop_map(b);
	/* 3. serials from the token (one draw), build + lint in parallel */
	for (i = nv = 0; i < n; i++)
		if (reqs[i].state == REQ_ACCEPTED)
			v[nv++] = &reqs[i];
	if ((r = draw_serials(b, kr_ltx_mdb(ltx), v, nv)) != 0)
		goto out;
	PHASE(1);
	parallel(b, w_prepare, v, nv);
	PHASE(2);
	/* 4. intents and rejections committed before anything is signed */
	for (i = 0; i < n; i++) {
		struct req *q = &reqs[i];

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
		if (i % 64 == 63)
			kr_batch_drop_map(b);
	}
	r = kr_ltx_commit(ltx, &b->signer, NULL);
	ltx = NULL;
	if (r != 0)
		goto out;
	kr_media_crash_point("chunk: intents committed");
	kr_batch_drop_map(b);
	/* 5. the HSM signs, on every session */
	for (i = nv = 0; i < n; i++)
		if (reqs[i].state == REQ_ACCEPTED)
			v[nv++] = &reqs[i];
	PHASE(3);
	parallel(b, w_sign, v, nv);
	PHASE(4);
	kr_media_crash_point("chunk: signed");
	/* 6. issued entries + checkpoint in one transaction */
	if ((r = kr_log_begin(b->log, &ltx)) != 0)
		goto out;
	for (i = 0; i < nv; i++) {
		struct req *q = v[i];

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
		if (i % 64 == 63)
			kr_batch_drop_map(b);
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
	kr_batch_drop_map(b);
	/* 7. only now: the certificates go to the output (files in
	 * parallel, then the records in order) */
	for (i = nv = 0; i < n; i++)
		if ((reqs[i].state == REQ_ACCEPTED && reqs[i].err == 0) ||
		    reqs[i].state == REQ_REUSED)
			v[nv++] = &reqs[i];
	PHASE(5);
	parallel(b, w_write, v, nv);
	PHASE(6);
	for (i = 0; i < n; i++)
		if ((r = kr_batch_emit(b, &reqs[i])) != 0)
			goto out;
	PHASE(7);
	kr_media_crash_point("chunk: output written");
	kr_batch_drop_map(b);
	r = 0;
 out:
	kr_ltx_abort(ltx);
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

int
kr_batch_sign(const struct kr_batch_opts *o, struct kr_batch_result *res)
{
	struct batch *b = NULL;
	struct req *reqs = NULL;
	struct kr_progress prog;
	struct prefetch pf;
	struct stat st;
	size_t i, k, n, done = 0;
	unsigned chunk, cur;
	int r;
	double t0, ts[6] = { kr_now(), 0, 0, 0, 0, 0 };

	memset(res, 0, sizeof(*res));
	memset(&pf, 0, sizeof(pf));
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
	if ((r = open_state(b)) != 0)
		goto out;
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
	if ((reqs = calloc(2 * (size_t)chunk, sizeof(*reqs))) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "requests");
		goto out;
	}
	ts[2] = kr_now();
	kr_progress_start(&prog, "signing", b->ncsr);
	prog.active = prog.active && o->progress;
	t0 = kr_now();
	/* Chunks alternate between the two halves of reqs. */
	i = 0;
	n = next_chunk(b, reqs, chunk, &i);
	prefetch_start(&pf, b, reqs, n);
	for (cur = 0; n > 0; cur ^= 1) {
		struct req *rq = reqs + (size_t)cur * chunk;
		struct req *nx = reqs + (size_t)(cur ^ 1) * chunk;
		size_t nn = next_chunk(b, nx, chunk, &i);

		r = run_chunk(b, rq, n, &pf, nx, nn);
		for (k = 0; k < n; k++)
			kr_batch_req_clear(&rq[k]);
		if (r != 0) {
			prefetch_finish(&pf, 1);
			for (k = 0; k < nn; k++)
				kr_batch_req_clear(&nx[k]);
			goto out;
		}
		done += n;
		if (o->progress)
			kr_progress_update(&prog, done);
		n = nn;
	}
	prefetch_finish(&pf, 1);
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
	if (getenv("KEYROOM_BATCH_TIMING") != NULL)
		fprintf(stderr, "keyroom: seconds: open+stage %.2f, setup %.2f, "
		    "chunks %.2f (parse %.2f, decide %.2f, build %.2f, intents "
		    "%.2f, sign %.2f, issued %.2f, files %.2f, records %.2f), "
		    "end+sync %.2f, done %.2f\n", ts[1] - ts[0], ts[2] - ts[1],
		    ts[3] - ts[2], b->phase[0], b->phase[1], b->phase[2],
		    b->phase[3], b->phase[4], b->phase[5], b->phase[6],
		    b->phase[7], ts[4] - ts[3], ts[5] - ts[4]);
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
