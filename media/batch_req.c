/*
 * batch_req.c - one request of a batch: parse + proof of possession and
 * the log's facts about the device (registry by key then by CN, issued
 * certificates, renewal proof; a worker thread, on a read snapshot), the
 * decision (already certified in this run, quota, policy; the main
 * thread), the certificate build (worker thread), and the supersede
 * record of a renewal.
 */
#include <ctype.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/util.h"
#include "media/batch_int.h"
#include "media/registry.h"

/* ------------------------------------------------------------- idset */

/*
 * Device ids seen in this run, kept as the first 16 octets of their
 * SHA-256 (a collision would need 2^64 ids; 16 octets a slot instead of
 * 33: 4 MiB at 100,000 devices), open addressing, load <= 1/2. An empty
 * slot is all zero; an id whose digest starts with 16 zeros is not
 * findable, so it is stored as the digest with its last octet set.
 */
static void
idkey(const char *id, uint8_t key[KR_BATCH_IDKEY])
{
	uint8_t h[32];
	static const uint8_t zero[KR_BATCH_IDKEY];

	kr_sha256(id, strlen(id), h);
	memcpy(key, h, KR_BATCH_IDKEY);
	if (memcmp(key, zero, KR_BATCH_IDKEY) == 0)
		key[KR_BATCH_IDKEY - 1] = 1;
}

static size_t
idslot(const uint8_t key[KR_BATCH_IDKEY])
{
	uint64_t v;

	memcpy(&v, key, sizeof(v));
	return (size_t)v;
}

static int
idset_find(const struct kr_batch_idset *s, const uint8_t *key, size_t *at)
{
	static const uint8_t zero[KR_BATCH_IDKEY];
	size_t i;

	for (i = idslot(key) & (s->cap - 1); memcmp(s->slot[i], zero,
	    KR_BATCH_IDKEY) != 0; i = (i + 1) & (s->cap - 1))
		if (memcmp(s->slot[i], key, KR_BATCH_IDKEY) == 0) {
			*at = i;
			return 1;
		}
	*at = i;
	return 0;
}

int
kr_batch_idset_has(const struct kr_batch_idset *s, const char *id)
{
	uint8_t key[KR_BATCH_IDKEY];
	size_t at;

	if (s->cap == 0)
		return 0;
	idkey(id, key);
	return idset_find(s, key, &at);
}

int
kr_batch_idset_reserve(struct kr_batch_idset *s, size_t n)
{
	struct kr_batch_idset ns;
	size_t k, at;

	if ((n + 1) * 2 <= s->cap)
		return 0;
	for (ns.cap = 1024; ns.cap < (n + 1) * 2; ns.cap *= 2)
		;
	ns.n = s->n;
	if ((ns.slot = calloc(ns.cap, sizeof(*ns.slot))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "device id set");
	for (k = 0; k < s->cap; k++) {
		static const uint8_t zero[KR_BATCH_IDKEY];

		if (memcmp(s->slot[k], zero, KR_BATCH_IDKEY) == 0)
			continue;
		(void)idset_find(&ns, s->slot[k], &at);
		memcpy(ns.slot[at], s->slot[k], KR_BATCH_IDKEY);
	}
	free(s->slot);
	*s = ns;
	return 0;
}

int
kr_batch_idset_add(struct kr_batch_idset *s, const char *id)
{
	uint8_t key[KR_BATCH_IDKEY];
	size_t at;
	int r;

	if (strlen(id) > KR_MF_UNIQUEID_MAX || *id == 0)
		return kr_errf(KR_ERR_INTERNAL, "device id");
	if ((r = kr_batch_idset_reserve(s, s->n + 1)) != 0)
		return r;
	idkey(id, key);
	if (idset_find(s, key, &at))
		return 0;
	memcpy(s->slot[at], key, KR_BATCH_IDKEY);
	s->n++;
	return 1;
}

void
kr_batch_idset_free(struct kr_batch_idset *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = s->n = 0;
}

/* ----------------------------------------------------------- parsing */

static int
parse_one(struct batch *b, struct req *q, int keep_raw)
{
	uint8_t *buf = NULL, *p;
	size_t len;
	long si;
	char sigpath[KR_MEDIA_MAX_PATH + 8];
	int r, n;

	if ((r = kr_media_read(b->m, q->file, KR_CSR_MAX, &buf, &len)) != 0)
		goto out;
	if ((r = kr_csr_parse(q->path, buf, len, &q->csr)) != 0)
		goto out;
	if ((r = kr_bundle_csr_cn(kr_csr_req(q->csr), q->cn,
	    sizeof(q->cn))) != 0) {
		r = kr_errctx(r, "%s", q->path);
		goto out;
	}
	q->has_cn = q->cn[0] != 0;
	/*
	 * The SPKI as it stands in the request, re-encoded from its ASN.1
	 * structure: i2d_PUBKEY() would run OpenSSL 3's provider encoder
	 * (slow) on the decoded key. Compressed or explicit-curve forms are
	 * normalised later (find_device).
	 */
	p = NULL;
	if ((n = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(
	    kr_csr_req(q->csr)), &p)) <= 0) {
		r = kr_err_ssl("%s: public key", q->path);
		goto out;
	}
	if ((q->spki = malloc((size_t)n)) == NULL) {
		OPENSSL_free(p);
		r = kr_errf(KR_ERR_ALLOC, "%s: public key", q->path);
		goto out;
	}
	memcpy(q->spki, p, (size_t)n);
	OPENSSL_free(p);
	q->spki_len = (size_t)n;
	/* A renewal: csr/x.csr with its detached signature csr/x.csr.sig */
	if (kr_snprintf(sigpath, sizeof(sigpath), "%s.sig", q->path) == 0 &&
	    (si = kr_media_find(b->m, sigpath)) >= 0) {
		q->renewal = 1;
		if ((r = kr_media_read(b->m, (size_t)si, 512, &q->sig,
		    &q->sig_len)) != 0)
			goto out;
		keep_raw = 1;
	}
	if (keep_raw) {
		q->raw = buf;
		q->raw_len = len;
		buf = NULL;
	}
	r = 0;
 out:
	free(buf);
	ERR_clear_error();
	return r;
}

void
kr_batch_req_parse(struct batch *b, struct req *q)
{
	q->perr = parse_one(b, q, 0);
}

/* Drop what a parse made, to parse again. */
static void
clear_parse(struct req *q)
{
	kr_csr_free(q->csr);
	q->csr = NULL;
	free(q->spki);
	q->spki = NULL;
	free(q->raw);
	q->raw = NULL;
	free(q->sig);
	q->sig = NULL;
	q->renewal = q->has_cn = 0;
	q->cn[0] = 0;
}

void
kr_batch_req_clear(struct req *q)
{
	kr_csr_free(q->csr);
	free(q->spki);
	free(q->raw);
	free(q->sig);
	kr_prepared_free(q->prep);
	free(q->idx);
	X509_free(q->cert);
	OPENSSL_free(q->der);
	free(q->pem);
	free(q->rec[0]);
	free(q->rec[1]);
	free(q->rec[2]);
	memset(q, 0, sizeof(*q));
}

/* ------------------------------------------------------------- facts */

int
kr_batch_logged_cert(struct batch *b, MDB_txn *txn, uint64_t idx,
    uint8_t **der, size_t *len)
{
	const uint8_t *e;
	const char *v;
	size_t elen, vlen;
	uint8_t *out = NULL;
	int r, n;

	*der = NULL;
	*len = 0;
	if ((r = kr_log_entry(b->log, txn, idx, &e, &elen)) != 0 ||
	    (r = kr_entry_get(e, elen, "cert", &v, &vlen)) != 0)
		return kr_errctx(r, "log entry %llu", (unsigned long long)idx);
	if (vlen > KR_LOG_MAX_VALUE || (out = malloc(vlen)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "certificate");
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)v,
	    (int)vlen)) < 0) {
		free(out);
		return kr_errf(KR_ERR_FORMAT, "log entry %llu: certificate "
		    "base64", (unsigned long long)idx);
	}
	if (vlen >= 1 && v[vlen - 1] == '=')
		n--;
	if (vlen >= 2 && v[vlen - 2] == '=')
		n--;
	*der = out;
	*len = (size_t)n;
	return 0;
}

/* Is the entry at idx from this batch? */
static int
entry_batch_is(struct batch *b, MDB_txn *txn, uint64_t idx, int *is)
{
	const uint8_t *e;
	const char *v;
	size_t elen, vlen;
	int r;

	*is = 0;
	if ((r = kr_log_entry(b->log, txn, idx, &e, &elen)) != 0)
		return r;
	if (kr_entry_get(e, elen, "batch", &v, &vlen) == 0 &&
	    vlen == strlen(b->desc.id) && memcmp(v, b->desc.id, vlen) == 0)
		*is = 1;
	return 0;
}

/* Unique id from a CN "sn0123ABCD..." / "0123abcd..." or NULL. */
static int
id_from_cn(const char *cn, char *id)
{
	size_t i, n;

	if ((cn[0] == 's' || cn[0] == 'S') && (cn[1] == 'n' || cn[1] == 'N'))
		cn += 2;
	n = strlen(cn);
	if (n == 0 || n > KR_MF_UNIQUEID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)cn[i]))
			return 0;
		id[i] = (char)tolower((unsigned char)cn[i]);
	}
	id[n] = 0;
	return 1;
}

static int
find_device(struct batch *b, MDB_txn *txn, struct req *q)
{
	uint8_t canon[KR_MF_SPKI_MAX];
	const uint8_t *spki = q->spki;
	size_t slen = q->spki_len;
	char id[KR_MF_UNIQUEID_MAX + 1];
	int r;

	/* The registry holds named-curve uncompressed SPKIs (P-256: 91
	 * bytes, P-384: 120); anything else is normalised first. */
	if (slen != 91 && slen != 120) {
		if (kr_spki_canon(q->spki, q->spki_len, canon, &slen) == 0)
			spki = canon;
		else
			spki = NULL;
	}
	if (spki != NULL) {
		r = kr_registry_find_key(txn, b->dbi_reg, spki, slen, &q->dev,
		    NULL);
		if (r == 0) {
			q->have_dev = 1;
			return 0;
		}
		if (r != KR_ERR_NOT_FOUND)
			return r;
	}
	if (q->has_cn && id_from_cn(q->cn, id)) {
		r = kr_registry_get(txn, b->dbi_reg, id, &q->dev);
		if (r == 0) {
			q->have_dev = 1;
			return 0;
		}
		if (r != KR_ERR_NOT_FOUND)
			return r;
	}
	ERR_clear_error();
	return 0;
}

static int
verify_detached(EVP_PKEY *pk, const struct req *q)
{
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	const EVP_MD *md = EVP_PKEY_get_bits(pk) > 256 ? EVP_sha384() :
	    EVP_sha256();
	int ok = 0;

	if (mc != NULL && EVP_DigestVerifyInit(mc, NULL, md, NULL, pk) == 1 &&
	    EVP_DigestVerify(mc, q->sig, q->sig_len, q->raw,
	    q->raw_len) == 1)
		ok = 1;
	EVP_MD_CTX_free(mc);
	ERR_clear_error();
	return ok;
}

/* Which key proves the renewal: the current certificate's, a manifest
 * key, or none. */
static int
renewal_proof(struct batch *b, MDB_txn *txn, struct req *q,
    const uint64_t *idx, size_t n, enum kr_renewal_proof *proof)
{
	uint8_t *der = NULL;
	const unsigned char *p;
	size_t len, k;
	X509 *c = NULL;
	EVP_PKEY *pk;
	int r;

	*proof = KR_PROOF_NONE;
	if (q->sig == NULL || q->raw == NULL)
		return 0;
	if (n > 0) {
		if ((r = kr_batch_logged_cert(b, txn, idx[n - 1], &der,
		    &len)) != 0)
			return r;
		p = der;
		if ((c = d2i_X509(NULL, &p, (long)len)) != NULL &&
		    (pk = X509_get0_pubkey(c)) != NULL &&
		    verify_detached(pk, q))
			*proof = KR_PROOF_CURRENT_CERT;
		X509_free(c);
		free(der);
		if (*proof != KR_PROOF_NONE)
			return 0;
	}
	for (k = 0; k < q->dev.nkeys; k++) {
		p = q->dev.keys[k].spki;
		if ((pk = d2i_PUBKEY(NULL, &p,
		    (long)q->dev.keys[k].spki_len)) == NULL)
			continue;
		if (verify_detached(pk, q))
			*proof = KR_PROOF_MANIFEST_KEY;
		EVP_PKEY_free(pk);
		if (*proof != KR_PROOF_NONE)
			break;
	}
	ERR_clear_error();
	return 0;
}

static void
rejectf(struct req *q, const char *reason, const char *msg)
{
	q->state = REQ_REJECTED;
	snprintf(q->reason, sizeof(q->reason), "%s", reason);
	snprintf(q->msg, sizeof(q->msg), "%s", msg);
}

/*
 * Worker: the facts the log holds about q's device, read on a snapshot of
 * the worker's own: the device (registry, by key then by CN), its issued
 * entries, whether the last is this batch's (a resumed run hands that
 * certificate out again), and which key proves a renewal. What this run
 * adds meanwhile is the main thread's to weigh (the run's id set, the
 * quota held): the snapshot may predate the chunk still being logged.
 */
void
kr_batch_req_facts(struct batch *b, struct req *q)
{
	MDB_txn *txn = NULL;
	const unsigned char *p;
	int r;

	if (q->perr != 0)
		return;
	if ((r = kr_log_read_begin(b->log, &txn)) != 0)
		goto out;
	if ((r = find_device(b, txn, q)) != 0 || !q->have_dev)
		goto out;
	if ((r = kr_log_device_certs(b->log, txn, q->dev.unique_id, &q->idx,
	    &q->nidx)) != 0)
		goto out;
	if (q->nidx > 0 && (r = entry_batch_is(b, txn, q->idx[q->nidx - 1],
	    &q->same)) != 0)
		goto out;
	if (q->renewal && (r = renewal_proof(b, txn, q, q->idx, q->nidx,
	    &q->proof)) != 0)
		goto out;
	if (b->resume && q->nidx > 0 && q->same && !q->renewal) {
		if ((r = kr_batch_logged_cert(b, txn, q->idx[q->nidx - 1],
		    &q->der, &q->der_len)) != 0)
			goto out;
		p = q->der;
		if ((q->cert = d2i_X509(NULL, &p, (long)q->der_len)) == NULL ||
		    p != q->der + q->der_len) {
			r = kr_err_ssl("log entry %llu: certificate",
			    (unsigned long long)q->idx[q->nidx - 1]);
			goto out;
		}
	}
	r = 0;
 out:
	mdb_txn_abort(txn);
	if (r != 0) {
		q->ferr = r;
		snprintf(q->msg, sizeof(q->msg), "%s", kr_err_detail());
	}
	ERR_clear_error();
}

/* Drop the certificate of an earlier run fetched for a reuse not made. */
static void
drop_logged(struct req *q)
{
	X509_free(q->cert);
	q->cert = NULL;
	OPENSSL_free(q->der);
	q->der = NULL;
	q->der_len = 0;
}

/* Main thread: the decision, from the facts and the run's own state. */
int
kr_batch_req_decide(struct batch *b, struct req *q)
{
	struct kr_request rq;
	struct kr_verdict v;
	size_t k;
	int r, part_ok, reuse;
	enum kr_decision d;

	if (q->perr != 0) {
		/* Parse again here, single-threaded, for an exact message. */
		clear_parse(q);
		kr_err_clear();
		r = parse_one(b, q, 0);
		rejectf(q, r == KR_ERR_SIGNATURE ? "bad-csr-signature" :
		    "bad-csr", kr_err_detail());
		return 0;
	}
	if (q->ferr != 0)
		return kr_errf(q->ferr, "%s: %s", q->path, q->msg);
	memset(&rq, 0, sizeof(rq));
	rq.manufacturer = b->desc.manufacturer;
	rq.profile = b->profile_name;
	rq.pkey = kr_csr_pubkey(q->csr);
	rq.spki = q->spki;
	rq.spki_len = q->spki_len;
	rq.cn = q->has_cn ? q->cn : NULL;
	rq.pop_ok = 1;		/* kr_csr_parse verified it */
	rq.dev = q->have_dev ? &q->dev : NULL;
	rq.quota_used = b->quota_used + b->quota_pending;
	rq.renewal = q->renewal;
	/* An interrupted run of this very batch certified it: hand out that
	 * certificate again, never a second one. */
	reuse = q->have_dev && b->resume && q->nidx > 0 && q->same &&
	    !q->renewal && !kr_batch_idset_has(&b->seen, q->dev.unique_id);
	if (!reuse)
		drop_logged(q);
	if (q->have_dev) {
		rq.already_certified = (q->nidx > 0 && !reuse) ||
		    kr_batch_idset_has(&b->seen, q->dev.unique_id);
		rq.proof = q->proof;
	}
	d = kr_policy_decide(b->pol, &rq, &v);
	if (d != KR_DEC_ACCEPT) {
		drop_logged(q);
		rejectf(q, kr_decision_str(d), v.message);
		return 0;
	}
	for (k = 0, part_ok = 0; k < b->desc.nparts; k++)
		if (strcmp(b->desc.parts[k], q->dev.part_number) == 0)
			part_ok = 1;
	if (!part_ok) {
		drop_logged(q);
		snprintf(v.message, sizeof(v.message), "%s: part %s is not "
		    "among batch.json part_numbers", q->dev.unique_id,
		    q->dev.part_number);
		rejectf(q, kr_decision_str(KR_DEC_PART_NOT_ALLOWED),
		    v.message);
		return 0;
	}
	/* The CA's device profile has the last word on key types. */
	kr_err_clear();
	if ((r = kr_csr_check_profile(q->csr, kr_config_profile(&b->cfg,
	    KR_CERT_DEVICE))) != 0) {
		drop_logged(q);
		if (r != KR_ERR_POLICY)
			return r;
		rejectf(q, kr_decision_str(KR_DEC_CURVE_NOT_ALLOWED),
		    kr_err_detail());
		return 0;
	}
	if ((r = kr_batch_idset_add(&b->seen, q->dev.unique_id)) < 0)
		return r;
	snprintf(q->msg, sizeof(q->msg), "%s", v.message);
	if (reuse) {
		q->state = REQ_REUSED;
		return 0;
	}
	if (q->renewal && q->nidx > 0) {
		q->prev_issued = q->idx[q->nidx - 1];
		q->have_prev = 1;
	}
	if (!q->renewal)
		b->quota_pending++;
	q->state = REQ_ACCEPTED;
	return 0;
}

/* ----------------------------------------------------------- building */

/*
 * "CN=sn0123, O=Example OEM" (RFC 4514 order: most specific first, '\'
 * escapes) into an X509_NAME in X.500 order (O before CN).
 */
static int
subject_name(const char *s, X509_NAME **out)
{
	X509_NAME *nm = NULL;
	char type[32], val[KR_POLICY_SUBJECT_MAX];
	size_t tl, vl;
	int r;

	*out = NULL;
	if ((nm = X509_NAME_new()) == NULL)
		return kr_errf(KR_ERR_ALLOC, "subject");
	while (*s != 0) {
		while (*s == ' ')
			s++;
		for (tl = 0; *s != '=' && *s != 0 && tl < sizeof(type) - 1;)
			type[tl++] = *s++;
		type[tl] = 0;
		if (*s++ != '=' || tl == 0) {
			r = kr_errf(KR_ERR_CONFIG, "policy subject: expected "
			    "TYPE=value");
			goto out;
		}
		for (vl = 0; *s != 0 && *s != ',' && vl < sizeof(val) - 1;) {
			if (*s == '\\' && s[1] != 0)
				s++;
			val[vl++] = *s++;
		}
		while (vl > 0 && val[vl - 1] == ' ')
			vl--;
		val[vl] = 0;
		if (*s == ',')
			s++;
		if (vl == 0 || X509_NAME_add_entry_by_txt(nm, type,
		    MBSTRING_UTF8, (const unsigned char *)val, -1, 0, 0) != 1) {
			ERR_clear_error();
			r = kr_errf(KR_ERR_CONFIG, "policy subject: bad "
			    "attribute '%s'", type);
			goto out;
		}
	}
	*out = nm;
	nm = NULL;
	r = 0;
 out:
	X509_NAME_free(nm);
	return r;
}

void
kr_batch_req_prepare(struct batch *b, struct worker *w, struct req *q)
{
	char subj[KR_POLICY_SUBJECT_MAX];
	uint8_t hwbuf[KR_MF_UNIQUEID_MAX / 2];
	struct kr_hwname hw;
	X509_NAME *nm = NULL;
	size_t idlen = strlen(q->dev.unique_id);
	int r;

	if ((r = kr_policy_subject(b->pol, &q->dev, subj, sizeof(subj))) != 0 ||
	    (r = subject_name(subj, &nm)) != 0)
		goto out;
	memset(&hw, 0, sizeof(hw));
	if (idlen % 2 == 0 && idlen / 2 <= sizeof(hwbuf) &&
	    kr_unhex(q->dev.unique_id, hwbuf, idlen / 2) == 0) {
		hw.serial = hwbuf;
		hw.len = idlen / 2;
	} else {
		hw.serial = (const uint8_t *)q->dev.unique_id;
		hw.len = idlen;
	}
	/* serial: drawn from the token for the chunk (draw_serials) */
	r = kr_ca_prepare_device(kr_config_profile(&b->cfg, KR_CERT_DEVICE),
	    &w->iss, q->csr, nm, q->serial, &hw, b->now, &q->prep);
 out:
	if (r != 0) {
		q->err = r;
		snprintf(q->msg, sizeof(q->msg), "certificate not built: %s",
		    kr_strerror(r));
	}
	X509_NAME_free(nm);
	ERR_clear_error();
}

/* Record the certificate a renewal replaces as superseded. */
int
kr_batch_supersede(struct batch *b, struct kr_ltx *ltx, struct req *q)
{
	const uint8_t *e;
	const char *iv, *sv, *hv;
	size_t elen, il, sl, hl;
	char iss[256], ser[128], h[80];
	int r;

	if (!q->have_prev)
		return 0;
	if ((r = kr_log_entry(b->log, kr_ltx_mdb(ltx), q->prev_issued, &e,
	    &elen)) != 0 ||
	    (r = kr_entry_get(e, elen, "issuer", &iv, &il)) != 0 ||
	    (r = kr_entry_get(e, elen, "serial", &sv, &sl)) != 0 ||
	    (r = kr_entry_get(e, elen, "cert-sha256", &hv, &hl)) != 0)
		return kr_errctx(r, "superseded certificate");
	if (il >= sizeof(iss) || sl >= sizeof(ser) || hl >= sizeof(h))
		return kr_errf(KR_ERR_FORMAT, "superseded certificate entry");
	memcpy(iss, iv, il);
	iss[il] = 0;
	memcpy(ser, sv, sl);
	ser[sl] = 0;
	memcpy(h, hv, hl);
	h[hl] = 0;
	return kr_ltx_appendf(ltx, KR_E_REVOKED, b->o->actor, NULL, "issuer",
	    iss, "serial", ser, "reason", "superseded", "cert-sha256", h,
	    NULL);
}
