/*
 * decide.c - the decision for one device certificate request: accept, or
 * one named reason. Pure: reads only the loaded policy and the request
 * facts the caller gathered (CSR, registry entry, issuance state, quota).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "lib/util.h"
#include "policy/policy_int.h"

static const char *const dec_str[KR_DEC_NREASONS] = {
	[KR_DEC_ACCEPT] = "accept",
	[KR_DEC_BAD_CSR] = "bad-csr",
	[KR_DEC_BAD_CSR_SIGNATURE] = "bad-csr-signature",
	[KR_DEC_MANUFACTURER_UNKNOWN] = "manufacturer-unknown",
	[KR_DEC_PROFILE_NOT_ALLOWED] = "profile-not-allowed",
	[KR_DEC_NOT_IN_MANIFEST] = "not-in-manifest",
	[KR_DEC_CN_MISMATCH] = "cn-mismatch",
	[KR_DEC_PART_NOT_ALLOWED] = "part-not-allowed",
	[KR_DEC_MODEL_NOT_ALLOWED] = "model-not-allowed",
	[KR_DEC_NO_KEY] = "manifest-entry-no-key",
	[KR_DEC_CURVE_NOT_ALLOWED] = "curve-not-allowed",
	[KR_DEC_KEY_MISMATCH] = "key-mismatch",
	[KR_DEC_ALREADY_CERTIFIED] = "already-certified",
	[KR_DEC_RENEWAL_NOT_ALLOWED] = "renewal-not-allowed",
	[KR_DEC_RENEWAL_BAD_PROOF] = "renewal-bad-proof",
	[KR_DEC_QUOTA_EXCEEDED] = "quota-exceeded",
};

const char *
kr_decision_str(enum kr_decision d)
{
	if ((unsigned)d >= KR_DEC_NREASONS)
		return "?";
	return dec_str[d];
}

static enum kr_decision
verdict(struct kr_verdict *v, enum kr_decision d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum kr_decision
verdict(struct kr_verdict *v, enum kr_decision d, const char *fmt, ...)
{
	va_list ap;

	v->decision = d;
	va_start(ap, fmt);
	(void)vsnprintf(v->message, sizeof(v->message), fmt, ap);
	va_end(ap);
	/* "%.64s" of a hostile CN or batch field may split a character. */
	kr_utf8_sanitize(v->message);
	if (d != KR_DEC_ACCEPT)
		v->profile = NULL;
	return d;
}

/* CN rule (policy.h): template CN, "sn<id>" or "<id>", any case. */
static int
cn_matches(const struct kr_policy *p, const struct kr_device *d,
    const char *cn)
{
	char want[KR_POLICY_SUBJECT_MAX];

	if (strcasecmp(cn, d->unique_id) == 0)
		return 1;
	if (strncasecmp(cn, "sn", 2) == 0 &&
	    strcasecmp(cn + 2, d->unique_id) == 0)
		return 1;
	if (kr_pol_template_cn(p, d, want, sizeof(want)) == 0 &&
	    strcasecmp(cn, want) == 0)
		return 1;
	return 0;
}

static int
in(const char *const *l, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(l[i], s) == 0)
			return 1;
	return 0;
}

/* Is x5t (SHA-256 of a signer certificate) one of the pinned signers? */
static int
signer_pinned(const struct kr_policy *p, const uint8_t x5t[32])
{
	size_t i;

	for (i = 0; i < p->nsigners; i++)
		if (memcmp(p->signers[i].sha256, x5t, 32) == 0)
			return 1;
	return 0;
}

/* Does the request's key equal the manifest key mk? */
static int
key_equal(EVP_PKEY *pk, const uint8_t *spki, size_t spki_len,
    const struct kr_mf_key *mk)
{
	const unsigned char *q = mk->spki;
	EVP_PKEY *m;
	int eq;

	if (spki != NULL && spki_len == mk->spki_len &&
	    memcmp(spki, mk->spki, spki_len) == 0)
		return 1;
	/* Other encodings of the same point (compressed, ...). */
	if ((m = d2i_PUBKEY(NULL, &q, (long)mk->spki_len)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	eq = EVP_PKEY_eq(pk, m) == 1;
	EVP_PKEY_free(m);
	ERR_clear_error();
	return eq;
}

enum kr_decision
kr_policy_decide(const struct kr_policy *p, const struct kr_request *rq,
    struct kr_verdict *v)
{
	const struct kr_device *d = rq->dev;
	const struct kr_pol_mfr *m;
	const struct kr_pol_part *pt;
	const struct kr_mf_key *mk;
	const unsigned char *q;
	EVP_PKEY *pk = rq->pkey, *own = NULL;
	const char *id = d != NULL ? d->unique_id : "(unknown device)";
	const char *kid;
	char gname[64], hx[17];
	unsigned bit = 0;
	enum kr_decision r;

	memset(v, 0, sizeof(*v));
	if (pk == NULL && rq->spki != NULL) {
		q = rq->spki;
		if ((own = d2i_PUBKEY(NULL, &q, (long)rq->spki_len)) == NULL ||
		    q != rq->spki + rq->spki_len) {
			ERR_clear_error();
			r = verdict(v, KR_DEC_BAD_CSR, "CSR public key does not "
			    "parse");
			goto out;
		}
		pk = own;
	}
	if (pk == NULL) {
		r = verdict(v, KR_DEC_BAD_CSR, "CSR has no public key");
		goto out;
	}
	if (!rq->pop_ok) {
		r = verdict(v, KR_DEC_BAD_CSR_SIGNATURE, "CSR signature does "
		    "not verify with its own key (no proof of possession)");
		goto out;
	}
	if ((m = kr_pol_mfr(p, rq->manufacturer)) == NULL) {
		r = verdict(v, KR_DEC_MANUFACTURER_UNKNOWN, "manufacturer "
		    "'%.64s' is not in the policy",
		    rq->manufacturer != NULL ? rq->manufacturer : "");
		goto out;
	}
	if ((v->profile = kr_policy_profile(p, m->id, rq->profile)) == NULL) {
		r = verdict(v, KR_DEC_PROFILE_NOT_ALLOWED, "profile '%.64s' "
		    "is not allowed for manufacturer %s",
		    rq->profile != NULL ? rq->profile : "", m->id);
		goto out;
	}
	if (d == NULL) {
		r = verdict(v, KR_DEC_NOT_IN_MANIFEST, "%s%.64s: no "
		    "manifest entry lists this device or its key",
		    rq->cn != NULL ? "CN " : "CSR key", rq->cn != NULL ?
		    rq->cn : "");
		goto out;
	}
	/*
	 * The registry may hold entries verified under another policy
	 * (manifest import --policy) or a signer unpinned since: only a
	 * manifest signed by a signer this policy pins vouches for a chip.
	 */
	if (!signer_pinned(p, d->signer)) {
		kr_hex(d->signer, 8, hx);
		r = verdict(v, KR_DEC_NOT_IN_MANIFEST, "%s: its manifest "
		    "signer %s... is not pinned by the policy", id, hx);
		goto out;
	}
	if (rq->cn != NULL && !cn_matches(p, d, rq->cn)) {
		r = verdict(v, KR_DEC_CN_MISMATCH, "%s: CSR subject CN '%.64s' "
		    "does not name this device", id, rq->cn);
		goto out;
	}
	if ((pt = kr_pol_part(p, d->part_number)) == NULL) {
		r = verdict(v, KR_DEC_PART_NOT_ALLOWED, "%s: part %s is not "
		    "allowed by the policy", id, d->part_number);
		goto out;
	}
	if (pt->model != NULL && strcmp(pt->model, d->model) != 0) {
		r = verdict(v, KR_DEC_MODEL_NOT_ALLOWED, "%s: model %s is not "
		    "the policy's model %s for part %s", id, d->model,
		    pt->model, d->part_number);
		goto out;
	}
	if (!in(m->parts, m->nparts, d->part_number)) {
		r = verdict(v, KR_DEC_PART_NOT_ALLOWED, "%s: manufacturer %s "
		    "may not build part %s", id, m->id, d->part_number);
		goto out;
	}
	if (d->nkeys == 0 && !p->lite_allowed) {
		r = verdict(v, KR_DEC_NO_KEY, "%s: manifest entry has no key "
		    "(lite entry) and the policy refuses lite entries", id);
		goto out;
	}
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(pk, gname, sizeof(gname), NULL) == 1)
		bit = kr_curve_bit(OBJ_txt2nid(gname));
	if (bit == 0 || !(bit & p->curves)) {
		ERR_clear_error();
		r = verdict(v, KR_DEC_CURVE_NOT_ALLOWED, "%s: CSR key type or "
		    "curve is not allowed by the policy", id);
		goto out;
	}
	if (rq->renewal) {
		if (!p->renew_allowed) {
			r = verdict(v, KR_DEC_RENEWAL_NOT_ALLOWED, "%s: the "
			    "policy does not allow renewals", id);
			goto out;
		}
		if (rq->proof == KR_PROOF_NONE ||
		    (rq->proof == KR_PROOF_CURRENT_CERT &&
		    (!p->renew_current || !rq->already_certified)) ||
		    (rq->proof == KR_PROOF_MANIFEST_KEY &&
		    (!p->renew_manifest || d->nkeys == 0))) {
			r = verdict(v, KR_DEC_RENEWAL_BAD_PROOF, "%s: renewal "
			    "is not proven by a key the policy accepts "
			    "(%s)", id, rq->proof == KR_PROOF_NONE ?
			    "no valid proof" : rq->proof ==
			    KR_PROOF_CURRENT_CERT ? "current-cert" :
			    "manifest-key");
			goto out;
		}
		/* Renewals re-certify a chip already built: no quota. */
		r = verdict(v, KR_DEC_ACCEPT, "%s: renewal accepted "
		    "(profile %s)", id, v->profile);
		goto out;
	}
	if (d->nkeys > 0) {
		kid = pt->identity_kid;
		if ((mk = kr_device_key(d, kid)) == NULL) {
			r = verdict(v, KR_DEC_KEY_MISMATCH, "%s: manifest entry "
			    "has no identity key kid %s", id, kid);
			goto out;
		}
		if (!key_equal(pk, rq->spki, rq->spki_len, mk)) {
			r = verdict(v, KR_DEC_KEY_MISMATCH, "%s: CSR public "
			    "key does not match manifest entry (kid %s)", id,
			    kid);
			goto out;
		}
	}
	if (rq->already_certified) {
		r = verdict(v, KR_DEC_ALREADY_CERTIFIED, "%s: already holds a "
		    "certificate (not a renewal)", id);
		goto out;
	}
	if (rq->quota_used >= (uint64_t)m->quota) {
		r = verdict(v, KR_DEC_QUOTA_EXCEEDED, "%s: manufacturer %s "
		    "has used its quota of %lld", id, m->id, m->quota);
		goto out;
	}
	r = verdict(v, KR_DEC_ACCEPT, "%s: accepted (part %s, profile %s)", id,
	    d->part_number, v->profile);
out:
	EVP_PKEY_free(own);
	return r;
}
