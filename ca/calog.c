/*
 * calog.c - audit log entries of the single-shot CA commands: key
 * generation, CA certificates and device issuance (intent before the HSM
 * signs, issued before release), CRLs, and the first entries of a new log.
 * Root / intermediate TBS preparation uses ca/cert.c's kr_ca_build_tbs,
 * so the logged path and kr_ca_make_root/intermediate build one TBS
 * (test_ceremony_caprep checks it byte for byte).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit/signer_hsm.h"
#include "ca/ca_int.h"
#include "ca/calog.h"
#include "lib/util.h"

int
kr_calog_issuer_id(EVP_PKEY *pub, char out[65])
{
	uint8_t *der = NULL, h[32];
	int len;

	if (pub == NULL || (len = i2d_PUBKEY(pub, &der)) <= 0)
		return kr_err_ssl("issuer public key");
	kr_sha256(der, (size_t)len, h);
	OPENSSL_free(der);
	kr_hex(h, sizeof(h), out);
	return 0;
}

/* Lower-case hex without leading zeros, as audit/ indexes serials. */
static int
serial_hex(const uint8_t *b, size_t len, char out[41])
{
	char full[2 * 20 + 1];
	const char *p;

	if (len == 0 || len > 20)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "serial of %zu bytes",
		    len);
	kr_hex(b, len, full);
	for (p = full; *p == '0' && p[1] != '\0'; p++)
		;
	return kr_snprintf(out, 41, "%s", p);
}

int
kr_calog_open(struct kr_calog *cl, struct kr_hsm *hsm,
    const struct kr_config *cfg, const struct kr_state_paths *p,
    const char *actor)
{
	char spec[PATH_MAX + 8];
	int r;

	memset(cl, 0, sizeof(*cl));
	cl->actor = actor;
	if ((r = kr_snprintf(spec, sizeof(spec), "file:%s", p->audit_pin)) != 0 ||
	    (r = kr_hsm_signer_open_hsm(hsm, cfg->token_audit,
	    cfg->audit_key_label, spec, cfg->audit_origin, &cl->signer,
	    &cl->hs)) != 0 ||
	    (r = kr_log_open(p->log, KR_LOG_WRITE, &cl->log)) != 0 ||
	    (r = kr_log_recover(cl->log, &cl->signer, actor, NULL)) != 0) {
		kr_calog_close(cl);
		return r;
	}
	return 0;
}

void
kr_calog_close(struct kr_calog *cl)
{
	kr_log_close(cl->log);
	kr_hsm_signer_close(cl->hs);
	cl->log = NULL;
	cl->hs = NULL;
}

int
kr_calog_serial_used(void *arg, const uint8_t *serial, size_t len)
{
	struct kr_calog *cl = arg;
	MDB_txn *txn = NULL;
	uint64_t idx;
	char hex[41];
	int r;

	if ((r = serial_hex(serial, len, hex)) != 0 ||
	    (r = kr_log_read_begin(cl->log, &txn)) != 0)
		return r;
	r = kr_log_serial_lookup(cl->log, txn, cl->issuer, hex, &idx);
	mdb_txn_abort(txn);
	if (r == KR_ERR_NOT_FOUND) {
		kr_err_clear();
		return 0;
	}
	return r == 0 ? 1 : r;
}

int
kr_calog_keygen(struct kr_calog *cl, const char *token, const char *label,
    enum kr_key_type type, EVP_PKEY *pub)
{
	struct kr_ltx *ltx = NULL;
	char id[65];
	int r;

	if ((r = kr_calog_issuer_id(pub, id)) != 0 ||
	    (r = kr_log_begin(cl->log, &ltx)) != 0)
		return r;
	if ((r = kr_ltx_appendf(ltx, KR_E_KEY_GENERATE, cl->actor, NULL,
	    "token", token, "label", label, "algorithm",
	    kr_key_type_name(type), "pubkey-sha256", id, NULL)) != 0) {
		kr_ltx_abort(ltx);
		return r;
	}
	return kr_ltx_commit(ltx, &cl->signer, NULL);
}

/* Hook: the intent (serial + TBS hash) is committed before signing. */
static int
hook_intent(void *arg, const struct kr_prepared *p)
{
	struct kr_calog *cl = arg;
	struct kr_cert_intent ci;
	struct kr_ltx *ltx = NULL;
	char serial[41];
	int r;

	memset(&ci, 0, sizeof(ci));
	if ((r = serial_hex(kr_prepared_serial(p), KR_SERIAL_LEN,
	    serial)) != 0)
		return r;
	ci.issuer = cl->issuer;
	ci.serial = serial;
	kr_prepared_tbs_sha256(p, ci.tbs_sha256);
	ci.profile = cl->profile;
	if ((r = kr_log_begin(cl->log, &ltx)) != 0)
		return r;
	if ((r = kr_log_intent(ltx, cl->actor, &ci, &cl->intent)) != 0) {
		kr_ltx_abort(ltx);
		return r;
	}
	if ((r = kr_ltx_commit(ltx, &cl->signer, NULL)) != 0)
		return r;
	cl->has_intent = 1;
	return 0;
}

/* Hook: issued entry + checkpoint, before anything is released. */
static int
hook_issued(void *arg, const struct kr_prepared *p, const X509 *x)
{
	struct kr_calog *cl = arg;
	struct kr_cert_issued is;
	struct kr_ltx *ltx = NULL;
	uint8_t *der = NULL;
	int dlen, r;

	(void)p;
	memset(&is, 0, sizeof(is));
	if ((dlen = i2d_X509(x, &der)) <= 0)
		return kr_err_ssl("certificate encoding");
	is.intent = cl->intent;
	is.der = der;
	is.der_len = (size_t)dlen;
	if ((r = kr_log_begin(cl->log, &ltx)) != 0)
		goto out;
	if ((r = kr_log_issued(ltx, cl->actor, &is, NULL)) != 0) {
		kr_ltx_abort(ltx);
		goto out;
	}
	r = kr_ltx_commit(ltx, &cl->signer, NULL);
	if (r == 0)
		cl->has_intent = 0;
 out:
	OPENSSL_free(der);
	return r;
}

/* Hook: the HSM failed after the intent: abandon it (best effort). */
static void
hook_abandoned(void *arg, const struct kr_prepared *p, int err)
{
	struct kr_calog *cl = arg;
	struct kr_ltx *ltx = NULL;

	(void)p;
	if (!cl->has_intent || kr_log_begin(cl->log, &ltx) != 0)
		return;
	if (kr_log_abandon(ltx, cl->actor, cl->intent, kr_strerror(err),
	    NULL) != 0) {
		kr_ltx_abort(ltx);
		return;
	}
	if (kr_ltx_commit(ltx, &cl->signer, NULL) == 0)
		cl->has_intent = 0;
	/* Otherwise the next kr_log_recover abandons it. */
}

void
kr_calog_hook(struct kr_calog *cl, struct kr_issue_hook *h)
{
	h->intent = hook_intent;
	h->issued = hook_issued;
	h->abandoned = hook_abandoned;
	h->arg = cl;
}

/* ---- CA certificates: log before release ---------------------------- */

int
kr_calog_prepare_ca(const struct kr_profile *prof, struct kr_key *signer,
    const X509 *issuer, EVP_PKEY *pub, const uint8_t serial[KR_SERIAL_LEN],
    time_t now, struct kr_caprep *out)
{
	enum kr_key_type st = kr_key_type(signer);
	X509_NAME *subj = NULL;
	EVP_PKEY *lk;
	unsigned char *tbs = NULL;
	int n, r;

	memset(out, 0, sizeof(*out));
	if (prof->kind != (issuer == NULL ? KR_CERT_ROOT :
	    KR_CERT_INTERMEDIATE))
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "profile kind %d does "
		    "not fit a %s certificate", prof->kind, issuer == NULL ?
		    "root" : "intermediate");
	if (kr_key_type_of(pub) != prof->algorithm)
		return kr_errf(KR_ERR_POLICY, "%s key is %s, profile %s wants "
		    "%s", issuer == NULL ? "root" : "intermediate",
		    kr_key_type_name(kr_key_type_of(pub)),
		    issuer == NULL ? "root" : "intermediate",
		    kr_key_type_name(prof->algorithm));
	if ((issuer == NULL && (r = kr_hsm_check_pubkey(signer, pub)) != 0) ||
	    (issuer != NULL && (r = kr_hsm_check_pubkey(signer,
	    X509_get0_pubkey(issuer))) != 0) ||
	    (r = kr_ca_parse_dn(prof->subject, &subj)) != 0 ||
	    (r = kr_ca_build_tbs(prof, subj, pub, NULL, issuer, serial, NULL, now,
	    &out->x)) != 0 ||
	    (r = kr_ca_lint_key(st, &lk)) != 0)
		goto out;
	/* The throwaway signature fixes the signature AlgorithmIdentifier. */
	if (X509_sign(out->x, lk, kr_ca_md(st)) <= 0) {
		r = kr_err_ssl("lint signing");
		goto out;
	}
	if ((r = kr_lint_cert(out->x, prof, issuer)) != 0)
		goto out;
	if ((n = i2d_re_X509_tbs(out->x, &tbs)) <= 0) {
		r = kr_err_ssl("encoding TBS");
		goto out;
	}
	out->tbs = tbs;
	out->tbslen = (size_t)n;
	kr_sha256(tbs, (size_t)n, out->tbs_sha256);
	out->prof = prof;
	out->issuer = issuer;
	memcpy(out->serial, serial, KR_SERIAL_LEN);
	r = 0;
 out:
	X509_NAME_free(subj);
	if (r != 0)
		kr_calog_caprep_free(out);
	return r;
}

int
kr_calog_sign_ca(struct kr_caprep *p, struct kr_key *signer, X509 **out)
{
	unsigned char *tbs = NULL;
	EVP_PKEY *ipub;
	int n, r;

	*out = NULL;
	if (p->x == NULL || p->signed_once)
		return kr_errf(KR_ERR_STATE, "CA certificate not prepared or "
		    "already signed");
	p->signed_once = 1;
	if ((r = kr_ca_hsm_sign(signer, &p->x, NULL)) != 0)
		return r;
	ipub = p->issuer != NULL ? X509_get0_pubkey(p->issuer) :
	    X509_get0_pubkey(p->x);
	if (X509_verify(p->x, ipub) != 1) {
		ERR_clear_error();
		return kr_errf(KR_ERR_SIGNATURE, "token %s: key '%s': HSM "
		    "signature does not verify with the issuer key",
		    kr_token_label(kr_key_token(signer)), kr_key_label(signer));
	}
	if ((n = i2d_re_X509_tbs(p->x, &tbs)) <= 0)
		return kr_err_ssl("encoding TBS");
	if ((size_t)n != p->tbslen || memcmp(tbs, p->tbs, p->tbslen) != 0) {
		OPENSSL_free(tbs);
		return kr_errf(KR_ERR_LINT, "signed TBS differs from the "
		    "logged TBS");
	}
	OPENSSL_free(tbs);
	if ((r = kr_lint_cert(p->x, p->prof, p->issuer)) != 0)
		return kr_errctx(r, "after signing");
	if (!X509_up_ref(p->x))
		return kr_err_ssl("X509_up_ref");
	*out = p->x;
	return 0;
}

void
kr_calog_caprep_free(struct kr_caprep *p)
{
	X509_free(p->x);
	OPENSSL_free(p->tbs);
	memset(p, 0, sizeof(*p));
}

/* Intent (serial + TBS hash) in its own commit, before the HSM signs. */
static int
log_intent(struct kr_calog *cl, const uint8_t *serial, size_t slen,
    const uint8_t tbs_sha256[32])
{
	struct kr_cert_intent ci;
	struct kr_ltx *ltx = NULL;
	char hex[41];
	int r;

	memset(&ci, 0, sizeof(ci));
	if ((r = serial_hex(serial, slen, hex)) != 0)
		return r;
	ci.issuer = cl->issuer;
	ci.serial = hex;
	memcpy(ci.tbs_sha256, tbs_sha256, 32);
	ci.profile = cl->profile;
	if ((r = kr_log_begin(cl->log, &ltx)) != 0)
		return r;
	if ((r = kr_log_intent(ltx, cl->actor, &ci, &cl->intent)) != 0) {
		kr_ltx_abort(ltx);
		return r;
	}
	if ((r = kr_ltx_commit(ltx, &cl->signer, NULL)) != 0)
		return r;
	cl->has_intent = 1;
	return 0;
}

int
kr_calog_issue_ca(struct kr_calog *cl, const struct kr_profile *prof,
    struct kr_key *signer, const X509 *issuer, EVP_PKEY *pub,
    const uint8_t serial[KR_SERIAL_LEN], time_t now, X509 **out)
{
	struct kr_caprep p;
	X509 *x = NULL;
	int r;

	*out = NULL;
	if ((r = kr_calog_prepare_ca(prof, signer, issuer, pub, serial, now,
	    &p)) != 0)
		return r;
	if ((r = log_intent(cl, serial, KR_SERIAL_LEN, p.tbs_sha256)) != 0)
		goto out;
	if ((r = kr_calog_sign_ca(&p, signer, &x)) != 0) {
		hook_abandoned(cl, NULL, r);
		goto out;
	}
	if ((r = hook_issued(cl, NULL, x)) != 0)
		goto out;
	*out = x;
	x = NULL;
 out:
	X509_free(x);
	kr_calog_caprep_free(&p);
	return r;
}

/* Does entry e have key == value exactly? */
static int
val_is(const uint8_t *e, size_t len, const char *key, const char *value)
{
	const char *v;
	size_t vl;

	return kr_entry_get(e, len, key, &v, &vl) == 0 &&
	    vl == strlen(value) && memcmp(v, value, vl) == 0;
}

int
kr_calog_crl_last(struct kr_calog *cl, uint64_t *last)
{
	MDB_txn *txn = NULL;
	const uint8_t *e;
	const char *v;
	char num[24];
	uint64_t size, i, n;
	size_t len, vl;
	char *end;
	int r;

	*last = 0;
	if ((r = kr_log_read_begin(cl->log, &txn)) != 0)
		return r;
	if ((r = kr_log_size(cl->log, txn, &size)) != 0)
		goto out;
	for (i = 0; i < size; i++) {
		if ((r = kr_log_entry(cl->log, txn, i, &e, &len)) != 0)
			goto out;
		if (!val_is(e, len, "type", "crl-issued") ||
		    !val_is(e, len, "issuer", cl->issuer))
			continue;
		if (kr_entry_get(e, len, "crl-number", &v, &vl) != 0 ||
		    vl == 0 || vl >= sizeof(num)) {
			r = kr_errf(KR_ERR_TAMPERED, "log entry %llu: "
			    "crl-issued without a crl-number",
			    (unsigned long long)i);
			goto out;
		}
		memcpy(num, v, vl);
		num[vl] = '\0';
		n = strtoull(num, &end, 10);
		if (*end != '\0') {
			r = kr_errf(KR_ERR_TAMPERED, "log entry %llu: bad "
			    "crl-number", (unsigned long long)i);
			goto out;
		}
		if (n > *last)
			*last = n;
	}
	r = 0;
 out:
	mdb_txn_abort(txn);
	return r;
}

int
kr_calog_crl(struct kr_calog *cl, X509_CRL *crl, uint64_t number)
{
	struct kr_ltx *ltx = NULL;
	uint8_t *der = NULL, h[32];
	char num[32], hex[65], next[32] = "";
	const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);
	struct tm tm;
	int dlen, r;

	if ((dlen = i2d_X509_CRL(crl, &der)) <= 0)
		return kr_err_ssl("CRL encoding");
	kr_sha256(der, (size_t)dlen, h);
	OPENSSL_free(der);
	kr_hex(h, sizeof(h), hex);
	(void)snprintf(num, sizeof(num), "%llu", (unsigned long long)number);
	if (nu != NULL && ASN1_TIME_to_tm(nu, &tm))
		kr_time_rfc3339(timegm(&tm), next);
	if ((r = kr_log_begin(cl->log, &ltx)) != 0)
		return r;
	if ((r = kr_ltx_appendf(ltx, KR_E_CRL_ISSUED, cl->actor, NULL,
	    "issuer", cl->issuer, "crl-number", num, "crl-sha256", hex,
	    "next-update", next[0] != '\0' ? next : NULL, NULL)) != 0) {
		kr_ltx_abort(ltx);
		return r;
	}
	return kr_ltx_commit(ltx, &cl->signer, NULL);
}

int
kr_calog_init(const char *logdir, const char *origin, struct kr_key *key,
    const char *token)
{
	struct kr_note_signer s;
	struct kr_log *log = NULL;
	struct kr_ltx *ltx = NULL;
	char vkey[512], id[65];
	int r;

	if ((r = kr_log_create(logdir, origin)) != 0 ||
	    (r = kr_signer_hsm_key(key, origin, &s)) != 0 ||
	    (r = kr_note_vkey(s.name, s.pub, vkey, sizeof(vkey))) != 0 ||
	    (r = kr_calog_issuer_id(kr_hsm_pubkey(key), id)) != 0 ||
	    (r = kr_log_open(logdir, KR_LOG_WRITE, &log)) != 0 ||
	    (r = kr_log_begin(log, &ltx)) != 0)
		goto out;
	if ((r = kr_ltx_appendf(ltx, KR_E_INIT, "init", NULL, "vkey", vkey,
	    NULL)) != 0 ||
	    (r = kr_ltx_appendf(ltx, KR_E_KEY_GENERATE, "init", NULL, "token",
	    token, "label", kr_key_label(key), "algorithm", "ed25519",
	    "pubkey-sha256", id, NULL)) != 0) {
		kr_ltx_abort(ltx);
		goto out;
	}
	r = kr_ltx_commit(ltx, &s, NULL);
 out:
	kr_log_close(log);
	return r;
}
