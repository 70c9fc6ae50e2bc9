/*
 * verify.c - the auditor's verifier. One read snapshot; entries and
 * stored hashes are streamed with two cursors side by side, the tree is
 * rebuilt in a compact range (<= 64 hashes), so memory stays flat in the
 * size of the log. Only open (unresolved) intents are held in memory.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit/entry.h"
#include "audit/log_int.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/verify.h"
#include "lib/util.h"

#define MAX_ID	256

/* Sorted set of open intent indexes (appended in increasing order). */
struct openset {
	uint64_t *v;
	size_t n, cap;
};

static int
os_add(struct openset *s, uint64_t x)
{
	uint64_t *nv;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		if ((nv = reallocarray(s->v, s->cap, sizeof(*nv))) == NULL)
			return kr_errf(KR_ERR_ALLOC, "open intents");
		s->v = nv;
	}
	s->v[s->n++] = x;
	return 0;
}

static int
os_del(struct openset *s, uint64_t x)
{
	size_t lo = 0, hi = s->n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (s->v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == s->n || s->v[lo] != x)
		return -1;
	memmove(s->v + lo, s->v + lo + 1, (s->n - lo - 1) * sizeof(*s->v));
	s->n--;
	return 0;
}

struct ext {			/* an earlier checkpoint given on the CLI */
	uint64_t size;
	uint8_t root[32];
	const char *name;
};

static int
ext_cmp(const void *a, const void *b)
{
	const struct ext *x = a, *y = b;

	return x->size < y->size ? -1 : x->size > y->size;
}

struct vstate {
	struct kr_log *log;
	MDB_txn *txn;
	struct kr_verify_report *rep;
	char name[KR_LOG_MAX_ORIGIN + 1];
	uint8_t pub[32];
	struct openset open;
	uint64_t nserials, nissued, ndevcerts;
	uint64_t last_cp;	/* size of the last checkpoint seen */
	char policy[65];	/* policy-digest last installed, "" none */
};

/* config-change entries that install a policy name its digest; every
 * batch-begin after the first names the one it ran under. */
static void
check_policy(struct vstate *st, uint64_t i, enum kr_etype t,
    const uint8_t *e, size_t len)
{
	char dg[65];

	if (kr_entry_get_str(e, len, "policy-digest", dg, sizeof(dg)) != 0)
		dg[0] = '\0';
	if (t == KR_E_CONFIG_CHANGE) {
		if (dg[0] != '\0')
			memcpy(st->policy, dg, sizeof(dg));
		return;
	}
	if (st->policy[0] == '\0' || strcmp(dg, st->policy) == 0)
		return;
	if (st->rep->policy_mismatch++ == 0)
		st->rep->policy_mismatch_first = (int64_t)i;
}

/* The current detail, copied: kr_errf must not read its own buffer. */
static const char *
detail_copy(void)
{
	static char d[512];

	snprintf(d, sizeof(d), "%s", kr_err_detail());
	return d;
}

#define BAD_ENTRY(st, i, ...) \
	((st)->rep->bad_index = (int64_t)(i), \
	kr_errf(KR_ERR_TAMPERED, __VA_ARGS__))

static int
vkey_from_init(struct vstate *st)
{
	const uint8_t *e;
	size_t len;
	enum kr_etype t;
	char vk[512];
	int r;

	if ((r = kr_log_entry(st->log, st->txn, 0, &e, &len)) != 0)
		return BAD_ENTRY(st, 0, "entry 0 is missing");
	if (kr_entry_check(st->log->origin, e, len, &t) != 0 ||
	    t != KR_E_INIT ||
	    kr_entry_get_str(e, len, "vkey", vk, sizeof(vk)) != 0)
		return BAD_ENTRY(st, 0, "entry 0 is not an init entry with a "
		    "vkey");
	if ((r = kr_note_vkey_parse(vk, st->name, sizeof(st->name),
	    st->pub)) != 0)
		return BAD_ENTRY(st, 0, "entry 0: bad vkey: %s",
		    detail_copy());
	snprintf(st->rep->vkey, sizeof(st->rep->vkey), "%s", vk);
	st->rep->vkey_from_log = 1;
	return 0;
}

/* Issuer and serial of cert-intent `intent`; KR_ERR_TAMPERED if not one. */
static int
intent_of(struct vstate *st, uint64_t at, uint64_t intent, char *issuer,
    char *serial, char *device)
{
	const uint8_t *e;
	size_t len;
	enum kr_etype t;

	if (intent >= at || kr_log_entry(st->log, st->txn, intent, &e,
	    &len) != 0 || kr_entry_check(st->log->origin, e, len, &t) != 0 ||
	    t != KR_E_CERT_INTENT ||
	    kr_entry_get_str(e, len, "issuer", issuer, MAX_ID + 1) != 0 ||
	    kr_entry_get_str(e, len, "serial", serial, MAX_ID + 1) != 0)
		return BAD_ENTRY(st, at, "entry %llu: intent %llu is not an "
		    "earlier cert-intent", (unsigned long long)at,
		    (unsigned long long)intent);
	if (kr_entry_get_str(e, len, "device-id", device, MAX_ID + 1) != 0)
		device[0] = '\0';
	return 0;
}

static int
check_serial(struct vstate *st, uint64_t i, const uint8_t *e, size_t len)
{
	char issuer[MAX_ID + 1], serial[MAX_ID + 1];
	uint64_t got;
	int r;

	if (kr_entry_get_str(e, len, "issuer", issuer, sizeof(issuer)) != 0 ||
	    kr_entry_get_str(e, len, "serial", serial, sizeof(serial)) != 0)
		return BAD_ENTRY(st, i, "entry %llu: bad issuer/serial",
		    (unsigned long long)i);
	r = kr_log_serial_lookup(st->log, st->txn, issuer, serial, &got);
	if (r != 0)
		return BAD_ENTRY(st, i, "entry %llu: serial %s of %s is "
		    "missing from the serial index", (unsigned long long)i,
		    serial, issuer);
	if (got != i)
		return BAD_ENTRY(st, i, "entry %llu: serial %s of %s is "
		    "reserved twice (the index names entry %llu): duplicate "
		    "serial", (unsigned long long)i, serial, issuer,
		    (unsigned long long)got);
	st->nserials++;
	return os_add(&st->open, i);
}

/* cert-issued or cert-abandoned entry i resolving an intent. */
static int
check_resolve(struct vstate *st, uint64_t i, enum kr_etype t,
    const uint8_t *e, size_t len)
{
	char issuer[MAX_ID + 1], serial[MAX_ID + 1];
	char ei[MAX_ID + 1], es[MAX_ID + 1], hex[65], dev[MAX_ID + 1];
	char idev[MAX_ID + 1];
	uint8_t *der = NULL, h[32], want[32], xb[8];
	const char *cv;
	size_t cl, dl;
	uint64_t intent, got;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int r;

	if (kr_entry_get_u64(e, len, "intent", &intent) != 0 ||
	    kr_entry_get_str(e, len, "issuer", ei, sizeof(ei)) != 0 ||
	    kr_entry_get_str(e, len, "serial", es, sizeof(es)) != 0)
		return BAD_ENTRY(st, i, "entry %llu: bad intent reference",
		    (unsigned long long)i);
	if ((r = intent_of(st, i, intent, issuer, serial, idev)) != 0)
		return r;
	if (strcmp(issuer, ei) != 0 || strcmp(serial, es) != 0)
		return BAD_ENTRY(st, i, "entry %llu: issuer/serial differ "
		    "from intent %llu", (unsigned long long)i,
		    (unsigned long long)intent);
	if (os_del(&st->open, intent) != 0)
		return BAD_ENTRY(st, i, "entry %llu: intent %llu was already "
		    "resolved", (unsigned long long)i,
		    (unsigned long long)intent);
	if (t == KR_E_CERT_ABANDONED) {
		st->rep->abandoned++;
		return 0;
	}
	st->rep->issued++;
	/* Log before release: a checkpoint must lie between intent and issue. */
	if (st->last_cp <= intent)
		st->rep->same_commit++;
	if (kr_entry_get(e, len, "cert", &cv, &cl) != 0 ||
	    (der = malloc(cl / 4 * 3 + 3)) == NULL ||
	    kr_b64_decode(cv, cl, der, cl / 4 * 3 + 3, &dl) != 0 ||
	    kr_entry_get_str(e, len, "cert-sha256", hex, sizeof(hex)) != 0 ||
	    kr_unhex(hex, want, 32) != 0) {
		free(der);
		return BAD_ENTRY(st, i, "entry %llu: bad certificate field",
		    (unsigned long long)i);
	}
	kr_sha256(der, dl, h);
	free(der);
	if (memcmp(h, want, 32) != 0)
		return BAD_ENTRY(st, i, "entry %llu: certificate does not "
		    "match its cert-sha256", (unsigned long long)i);
	if (kr_log_cert_lookup(st->log, st->txn, h, &got) != 0 || got != i)
		return BAD_ENTRY(st, i, "entry %llu: certificate %s is not "
		    "indexed to this entry", (unsigned long long)i, hex);
	st->nissued++;
	if (kr_entry_get_str(e, len, "device-id", dev, sizeof(dev)) != 0)
		dev[0] = '\0';
	if (idev[0] != '\0' && strcmp(idev, dev) != 0)
		return BAD_ENTRY(st, i, "entry %llu: certificate for device "
		    "'%s' but intent %llu was for '%s'", (unsigned long long)i,
		    dev, (unsigned long long)intent, idev);
	if (dev[0] != '\0') {
		kr_be64(i, xb);
		k.mv_size = strlen(dev);
		k.mv_data = dev;
		v.mv_size = 8;
		v.mv_data = xb;
		r = mdb_cursor_open(st->txn, st->log->devcerts, &c);
		if (r == 0)
			r = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH);
		mdb_cursor_close(c);
		if (r != 0)
			return BAD_ENTRY(st, i, "entry %llu: device %s is not "
			    "indexed to this certificate",
			    (unsigned long long)i, dev);
		st->ndevcerts++;
	}
	return 0;
}

static uint64_t
db_entries(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_stat s;

	if (mdb_stat(txn, dbi, &s) != 0)
		return UINT64_MAX;
	return s.ms_entries;
}

/* Verify stored checkpoint `note` for tree size n with root. */
static int
check_stored_cp(struct vstate *st, uint64_t n, const MDB_val *v,
    const uint8_t root[32])
{
	const char *body;
	char origin[KR_LOG_MAX_ORIGIN + 1];
	uint8_t croot[32];
	uint64_t csize;
	size_t blen;

	st->rep->bad_checkpoint = (int64_t)n;
	if (v->mv_size > KR_LOG_MAX_NOTE)
		return kr_errf(KR_ERR_TAMPERED, "checkpoint %llu: too large",
		    (unsigned long long)n);
	if (kr_note_verify(v->mv_data, v->mv_size, st->name, st->pub, &body,
	    &blen) != 0)
		return kr_errf(KR_ERR_TAMPERED, "checkpoint %llu: %s",
		    (unsigned long long)n, detail_copy());
	if (kr_checkpoint_parse(body, blen, origin, sizeof(origin), &csize,
	    croot) != 0)
		return kr_errf(KR_ERR_TAMPERED, "checkpoint %llu: %s",
		    (unsigned long long)n, detail_copy());
	if (strcmp(origin, st->log->origin) != 0 || csize != n)
		return kr_errf(KR_ERR_TAMPERED, "checkpoint %llu: signed for "
		    "%s size %llu", (unsigned long long)n, origin,
		    (unsigned long long)csize);
	if (memcmp(croot, root, 32) != 0)
		return kr_errf(KR_ERR_TAMPERED, "checkpoint %llu: root hash "
		    "differs from the recomputed tree", (unsigned long long)n);
	st->rep->bad_checkpoint = -1;
	st->rep->checkpoints++;
	st->last_cp = n;
	return 0;
}

static int
load_externals(struct vstate *st, const struct kr_verify_opts *o,
    struct ext *ex)
{
	const char *body;
	char origin[KR_LOG_MAX_ORIGIN + 1];
	size_t i, blen;
	int r;

	for (i = 0; i < o->nnotes; i++) {
		ex[i].name = o->note_names ? o->note_names[i] : "checkpoint";
		if ((r = kr_note_verify(o->notes[i], strlen(o->notes[i]),
		    st->name, st->pub, &body, &blen)) != 0)
			return kr_errctx(r, "%s", ex[i].name);
		if ((r = kr_checkpoint_parse(body, blen, origin,
		    sizeof(origin), &ex[i].size, ex[i].root)) != 0)
			return kr_errctx(r, "%s", ex[i].name);
		if (strcmp(origin, st->log->origin) != 0)
			return kr_errf(KR_ERR_FORMAT, "%s: checkpoint of log "
			    "'%s', not '%s'", ex[i].name, origin,
			    st->log->origin);
	}
	qsort(ex, o->nnotes, sizeof(*ex), ext_cmp);
	return 0;
}

int
kr_audit_verify(struct kr_log *log, const struct kr_verify_opts *o,
    struct kr_verify_report *rep)
{
	struct vstate st;
	struct kr_merkle_range range;
	struct kr_progress pr;
	struct ext *ex = NULL;
	MDB_cursor *ce = NULL, *ch = NULL, *cc = NULL;
	MDB_val ek, ev, hk, hv, ck, cv;
	uint8_t leaf[32], hs[65][32], root[32];
	uint64_t i, hidx = 0, cpsize = UINT64_MAX, size;
	size_t xi = 0;
	enum kr_etype t;
	double t0 = kr_now();
	int r, rc, hrc, crc, k, j;

	memset(rep, 0, sizeof(*rep));
	memset(&st, 0, sizeof(st));
	memset(&pr, 0, sizeof(pr));
	rep->bad_index = rep->bad_checkpoint = -1;
	rep->policy_mismatch_first = -1;
	st.log = log;
	st.rep = rep;
	if ((r = kr_log_read_begin(log, &st.txn)) != 0)
		return r;
	if ((r = kr_log_size(log, st.txn, &size)) != 0)
		goto out;
	if (size == 0) {
		r = kr_errf(KR_ERR_TAMPERED, "the log has no entries");
		goto out;
	}
	if (o->vkey != NULL) {
		if ((r = kr_note_vkey_parse(o->vkey, st.name, sizeof(st.name),
		    st.pub)) != 0)
			goto out;
		snprintf(rep->vkey, sizeof(rep->vkey), "%s", o->vkey);
		rep->vkey[strcspn(rep->vkey, "\r\n")] = '\0';
	} else if ((r = vkey_from_init(&st)) != 0)
		goto out;
	if (o->nnotes > 0) {
		if ((ex = calloc(o->nnotes, sizeof(*ex))) == NULL) {
			r = kr_errf(KR_ERR_ALLOC, "checkpoints");
			goto out;
		}
		if ((r = load_externals(&st, o, ex)) != 0)
			goto out;
	}
	if ((rc = mdb_cursor_open(st.txn, log->entries, &ce)) != 0 ||
	    (rc = mdb_cursor_open(st.txn, log->hashes, &ch)) != 0 ||
	    (rc = mdb_cursor_open(st.txn, log->checkpoints, &cc)) != 0) {
		r = kr_log_mdb_err(rc, "cursors");
		goto out;
	}
	crc = mdb_cursor_get(cc, &ck, &cv, MDB_FIRST);
	if (crc == 0) {
		if (ck.mv_size != 8) {
			r = kr_errf(KR_ERR_TAMPERED, "bad checkpoint key");
			goto out;
		}
		cpsize = kr_get_be64(ck.mv_data);
	}
	if (o->progress)
		kr_progress_start(&pr, "verify", size);
	kr_merkle_range_init(&range);
	hrc = mdb_cursor_get(ch, &hk, &hv, MDB_FIRST);
	i = 0;
	for (rc = mdb_cursor_get(ce, &ek, &ev, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(ce, &ek, &ev, MDB_NEXT), i++) {
		r = 0;
		if (ek.mv_size != 8 || kr_get_be64(ek.mv_data) != i) {
			r = BAD_ENTRY(&st, i, "entry %llu is missing: indexes "
			    "are not contiguous", (unsigned long long)i);
			goto out;
		}
		if (kr_entry_check(log->origin, ev.mv_data, ev.mv_size,
		    &t) != 0) {
			r = BAD_ENTRY(&st, i, "entry %llu: %s",
			    (unsigned long long)i, detail_copy());
			goto out;
		}
		if (i == 0 && t != KR_E_INIT) {
			r = BAD_ENTRY(&st, i, "entry 0 is not init");
			goto out;
		}
		rep->counts[t]++;
		if (t == KR_E_CERT_INTENT) {
			rep->intents++;
			r = check_serial(&st, i, ev.mv_data, ev.mv_size);
		} else if (t == KR_E_CERT_ISSUED || t == KR_E_CERT_ABANDONED)
			r = check_resolve(&st, i, t, ev.mv_data, ev.mv_size);
		else if (t == KR_E_CONFIG_CHANGE || t == KR_E_BATCH_BEGIN)
			check_policy(&st, i, t, ev.mv_data, ev.mv_size);
		if (r != 0)
			goto out;
		kr_merkle_leaf(ev.mv_data, ev.mv_size, leaf);
		k = kr_merkle_range_append(&range, leaf, hs);
		for (j = 0; j < k; j++, hidx++) {
			if (hrc != 0 || hk.mv_size != 8 ||
			    kr_get_be64(hk.mv_data) != hidx) {
				r = BAD_ENTRY(&st, i, "entry %llu: stored hash "
				    "%llu is missing", (unsigned long long)i,
				    (unsigned long long)hidx);
				goto out;
			}
			if (hv.mv_size != 32 || memcmp(hv.mv_data, hs[j],
			    32) != 0) {
				r = BAD_ENTRY(&st, i, "entry %llu: stored hash "
				    "%llu does not match the entry (edited "
				    "entry or hash)", (unsigned long long)i,
				    (unsigned long long)hidx);
				goto out;
			}
			hrc = mdb_cursor_get(ch, &hk, &hv, MDB_NEXT);
		}
		if (i + 1 == cpsize || (xi < o->nnotes &&
		    ex[xi].size == i + 1))
			kr_merkle_range_root(&range, root);
		if (i + 1 == cpsize) {
			if ((r = check_stored_cp(&st, cpsize, &cv, root)) != 0)
				goto out;
			crc = mdb_cursor_get(cc, &ck, &cv, MDB_NEXT);
			cpsize = UINT64_MAX;
			if (crc == 0) {
				if (ck.mv_size != 8 ||
				    kr_get_be64(ck.mv_data) <= i + 1) {
					rep->bad_checkpoint = (int64_t)i + 1;
					r = kr_errf(KR_ERR_TAMPERED,
					    "checkpoint after %llu has a bad "
					    "key", (unsigned long long)i + 1);
					goto out;
				}
				cpsize = kr_get_be64(ck.mv_data);
			}
		}
		while (xi < o->nnotes && ex[xi].size == i + 1) {
			if (memcmp(ex[xi].root, root, 32) != 0) {
				rep->bad_checkpoint = (int64_t)ex[xi].size;
				r = kr_errf(KR_ERR_ROLLBACK, "%s: the log's first "
				    "%llu entries differ from that checkpoint "
				    "(forked or rewritten log)", ex[xi].name,
				    (unsigned long long)ex[xi].size);
				goto out;
			}
			rep->external++;
			xi++;
		}
		while (xi < o->nnotes && ex[xi].size == 0)
			xi++;	/* an empty tree is extended by anything */
		if ((i & 4095) == 0 && o->progress)
			kr_progress_update(&pr, i);
		if ((i & 16383) == 16383)
			kr_log_drop_pages(log);
	}
	if (rc != MDB_NOTFOUND) {
		r = kr_log_mdb_err(rc, "reading entries");
		goto out;
	}
	rep->size = i;
	kr_merkle_range_root(&range, rep->root);
	if (xi < o->nnotes) {
		rep->bad_checkpoint = (int64_t)ex[xi].size;
		r = kr_errf(KR_ERR_ROLLBACK, "%s: signed for %llu entries but "
		    "the log holds only %llu", ex[xi].name,
		    (unsigned long long)ex[xi].size, (unsigned long long)i);
		goto out;
	}
	if (hrc == 0) {
		r = BAD_ENTRY(&st, i, "stored hash %llu beyond the last entry "
		    "(entries removed?)", (unsigned long long)hidx);
		goto out;
	}
	if (cpsize != UINT64_MAX) {
		rep->bad_checkpoint = (int64_t)cpsize;
		r = kr_errf(KR_ERR_ROLLBACK, "checkpoint %llu signs more "
		    "entries than the log holds (%llu)",
		    (unsigned long long)cpsize, (unsigned long long)i);
		goto out;
	}
	if (rep->checkpoints == 0) {
		r = kr_errf(KR_ERR_TAMPERED, "no signed checkpoint");
		goto out;
	}
	/*
	 * Belt and braces for earlier checkpoints: besides the recomputed
	 * root at their size, an RFC 9162 consistency proof from them to the
	 * current tree (built from the stored hashes, all checked above)
	 * must verify.
	 */
	for (xi = 0; xi < o->nnotes; xi++) {
		struct kr_hash_rd hr = { st.txn, log->hashes };
		uint8_t proof[KR_MERKLE_MAX_PROOF][32];
		size_t pn;

		if (ex[xi].size == 0)
			continue;
		if ((r = kr_merkle_consistency_proof(ex[xi].size, i,
		    kr_log_read_hash, &hr, proof, &pn)) != 0 ||
		    (r = kr_merkle_verify_consistency(ex[xi].size, i,
		    ex[xi].root, rep->root, (const uint8_t (*)[32])proof,
		    pn)) != 0) {
			rep->bad_checkpoint = (int64_t)ex[xi].size;
			r = kr_errf(KR_ERR_ROLLBACK, "%s: no consistency proof "
			    "to the current tree: %s", ex[xi].name,
			    detail_copy());
			goto out;
		}
	}
	/* The newest checkpoint must cover the whole log. */
	{
		MDB_val lk, lv;

		if (mdb_cursor_get(cc, &lk, &lv, MDB_LAST) != 0 ||
		    kr_get_be64(lk.mv_data) != i) {
			r = BAD_ENTRY(&st, kr_get_be64(lk.mv_data),
			    "entries from %llu on are not covered by a signed "
			    "checkpoint", (unsigned long long)
			    kr_get_be64(lk.mv_data));
			goto out;
		}
	}
	if (st.open.n > 0) {
		r = BAD_ENTRY(&st, st.open.v[0], "cert-intent %llu (and %zu "
		    "more) not resolved by an issued or abandoned entry",
		    (unsigned long long)st.open.v[0], st.open.n - 1);
		goto out;
	}
	if (db_entries(st.txn, log->serials) != st.nserials ||
	    db_entries(st.txn, log->issued) != st.nissued ||
	    db_entries(st.txn, log->intents) != 0) {
		r = kr_errf(KR_ERR_TAMPERED, "the issued index holds records "
		    "that no log entry explains");
		goto out;
	}
	if (db_entries(st.txn, log->devcerts) != st.ndevcerts) {
		r = kr_errf(KR_ERR_TAMPERED, "the device index holds records "
		    "that no cert-issued entry explains");
		goto out;
	}
	r = 0;
 out:
	if (o->progress)
		kr_progress_finish(&pr);
	rep->seconds = kr_now() - t0;
	if (ce != NULL)
		mdb_cursor_close(ce);
	if (ch != NULL)
		mdb_cursor_close(ch);
	if (cc != NULL)
		mdb_cursor_close(cc);
	mdb_txn_abort(st.txn);
	free(st.open.v);
	free(ex);
	return r;
}
