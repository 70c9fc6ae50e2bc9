/*
 * steps_certs.c - ceremony steps on certificates, CRLs and the log:
 * self-sign-root, sign-intermediate, export-cert, revoke, issue-crl,
 * checkpoint, print-transcript, cross-certify, rotation-package.
 * Log before release: every certificate's intent (serial + linted TBS
 * hash) is committed before the HSM signs, its issued entry + checkpoint
 * after sign + verify, and only then is its file written.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/qr.h"
#include "ca/ca.h"
#include "ca/calog.h"
#include "ceremony/run_int.h"
#include "ceremony/tokenops.h"
#include "lib/util.h"

#define MAX_REVOKED 100000

/* The log's issuer id: hex SHA-256 of the issuer's SPKI DER. */
static int
issuer_id_pk(EVP_PKEY *pk, char out[65])
{
	uint8_t *der = NULL, h[32];
	int len;

	if (pk == NULL || (len = i2d_PUBKEY(pk, &der)) <= 0)
		return kr_err_ssl("issuer public key");
	kr_sha256(der, (size_t)len, h);
	OPENSSL_free(der);
	kr_hex(h, 32, out);
	return 0;
}

static int
issuer_id(const X509 *x, char out[65])
{
	return issuer_id_pk(X509_get0_pubkey(x), out);
}

static int
issuer_id_of_key(const struct kr_key *key, char out[65])
{
	return issuer_id_pk(kr_hsm_pubkey(key), out);
}

/* Lower-case hex, no leading zeros ("0" for zero). */
static int
serial_hex(const uint8_t *b, size_t len, char *out, size_t cap)
{
	char full[2 * 20 + 1];
	const char *p;

	if (len == 0 || len > 20)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "serial length");
	kr_hex(b, len, full);
	for (p = full; *p == '0' && p[1] != '\0'; p++)
		;
	return kr_snprintf(out, cap, "%s", p);
}

static int
cert_serial_hex(const X509 *x, char *out, size_t cap)
{
	const ASN1_INTEGER *ai = X509_get0_serialNumber(x);
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	uint8_t b[20];
	int n;

	if (bn == NULL || (n = BN_num_bytes(bn)) > 20 || n < 1) {
		BN_free(bn);
		return kr_errf(KR_ERR_FORMAT, "certificate serial");
	}
	BN_bn2bin(bn, b);
	BN_free(bn);
	return serial_hex(b, (size_t)n, out, cap);
}

struct used_arg {
	struct crun *c;
	const char *issuer;
};

static int
serial_used(void *arg, const uint8_t *serial, size_t len)
{
	struct used_arg *u = arg;
	MDB_txn *txn = NULL;
	char hex[41];
	uint64_t idx;
	int r;

	if ((r = serial_hex(serial, len, hex, sizeof(hex))) != 0 ||
	    (r = kr_log_read_begin(u->c->a->log, &txn)) != 0)
		return r;
	r = kr_log_serial_lookup(u->c->a->log, txn, u->issuer, hex, &idx);
	mdb_txn_abort(txn);
	if (r == KR_ERR_NOT_FOUND)
		return 0;
	return r == 0 ? 1 : r;
}

/* Log before release, in two commits: the intent (before the HSM signs). */
static int
log_intent_only(struct crun *c, const uint8_t tbs_sha256[32],
    const char *serial, const char *issuer, uint64_t *intent)
{
	struct kr_cert_intent ci;
	struct kr_ltx *ltx = NULL;
	int r;

	memset(&ci, 0, sizeof(ci));
	ci.issuer = issuer;
	ci.serial = serial;
	memcpy(ci.tbs_sha256, tbs_sha256, 32);
	ci.profile = c->s->id;
	if ((r = kr_log_begin(c->a->log, &ltx)) != 0)
		return r;
	if ((r = kr_log_intent(ltx, c->actor, &ci, intent)) != 0) {
		kr_ltx_abort(ltx);
		return r;
	}
	return kr_ltx_commit(ltx, &c->a->signer, NULL);
}

/* ... then the issued entry (after sign + verify), or the abandonment. */
static int
log_issued_only(struct crun *c, const X509 *x, uint64_t intent)
{
	struct kr_cert_issued is;
	struct kr_ltx *ltx = NULL;
	uint8_t *der = NULL;
	int dlen, r;

	memset(&is, 0, sizeof(is));
	if ((dlen = i2d_X509(x, &der)) <= 0)
		return kr_err_ssl("certificate encoding");
	is.intent = intent;
	is.der = der;
	is.der_len = (size_t)dlen;
	if ((r = kr_log_begin(c->a->log, &ltx)) == 0) {
		if ((r = kr_log_issued(ltx, c->actor, &is, NULL)) != 0)
			kr_ltx_abort(ltx);
		else
			r = kr_ltx_commit(ltx, &c->a->signer, NULL);
	}
	OPENSSL_free(der);
	return r;
}

static void
log_abandon(struct crun *c, uint64_t intent, const char *why)
{
	struct kr_ltx *ltx = NULL;

	if (kr_log_begin(c->a->log, &ltx) != 0)
		return;
	if (kr_log_abandon(ltx, c->actor, intent, why, NULL) != 0)
		kr_ltx_abort(ltx);
	else if (kr_ltx_commit(ltx, &c->a->signer, NULL) != 0)
		return;
}

/*
 * A root (issuer NULL) or intermediate certificate, log before release:
 * TBS built and linted with a throwaway key, intent committed, the HSM
 * signs that TBS, verify, issued + checkpoint committed (abandoned on
 * failure). The caller writes files only after this returns 0.
 */
static int
issue_ca(struct crun *c, const struct kr_profile *prof, struct kr_key *signer,
    const X509 *issuer_cert, EVP_PKEY *pub, const char *issuer,
    const uint8_t serial[KR_SERIAL_LEN], X509 **out)
{
	struct kr_caprep p;
	char sh[41];
	uint64_t intent = 0;
	int r;

	*out = NULL;
	if ((r = serial_hex(serial, KR_SERIAL_LEN, sh, sizeof(sh))) != 0 ||
	    (r = kr_calog_prepare_ca(prof, signer, issuer_cert, pub, serial,
	    time(NULL), &p)) != 0)
		return r;
	if ((r = log_intent_only(c, p.tbs_sha256, sh, issuer, &intent)) != 0)
		goto out;
	if ((r = kr_calog_sign_ca(&p, signer, out)) != 0) {
		log_abandon(c, intent, r == KR_ERR_SIGNATURE || r == KR_ERR_LINT ?
		    "verify-failed" : "hsm-sign-failed");
		goto out;
	}
	if ((r = log_issued_only(c, *out, intent)) != 0) {
		X509_free(*out);
		*out = NULL;
	}
 out:
	kr_calog_caprep_free(&p);
	return r;
}

static int
write_pem(const char *path, const X509 *x, int replace)
{
	char *pem = NULL;
	size_t len = 0;
	int r;

	if ((r = kr_ca_cert_pem(x, &pem, &len)) != 0)
		return r;
	r = replace ? kr_write_replace_file(path, pem, len, 0644) :
	    kr_write_new_file(path, pem, len, 0644);
	free(pem);
	return r;
}

/*
 * A fresh serial (KR_SERIAL_LEN bytes, positive, first byte nonzero) from
 * the HSM RNG through a public session of the audit token, never used by
 * this issuer before.
 */
static int
new_serial(struct crun *c, const char *issuer, uint8_t out[KR_SERIAL_LEN])
{
	struct used_arg ua = { c, issuer };
	int tries, r;

	for (tries = 0; tries < 8; tries++) {
		if ((r = kr_hsm_random_public(c->a->hsm, c->a->cfg.token_audit,
		    out, KR_SERIAL_LEN)) != 0)
			return r;
		out[0] &= 0x7f;
		if (out[0] == 0)
			continue;
		if ((r = serial_used(&ua, out, KR_SERIAL_LEN)) < 0)
			return r;
		if (r == 0)
			return 0;
	}
	return kr_errf(KR_ERR_EXISTS, "no unused serial after 8 draws");
}

static void
cert_fingerprint(struct crun *c, const char *what, const X509 *x)
{
	uint8_t h[32];

	if (kr_ca_cert_sha256(x, h) == 0)
		crun_fingerprint(c, what, h);
}

int
step_self_sign_root(struct crun *c, const struct kr_step *st)
{
	struct kr_key *key = NULL;
	uint8_t serial[KR_SERIAL_LEN];
	char issuer[65], sh[41], path[PATH_MAX];
	int next = crun_next(st);
	X509 *x = NULL;
	int r;

	if ((r = crun_cert_path(c, "root", next, path, sizeof(path))) != 0)
		return r;
	if (access(path, F_OK) == 0)
		return kr_errf(KR_ERR_EXISTS, "%s exists: this state already "
		    "has a%s root", path, next ? " next" : "");
	if ((r = crun_role_key(c, ROLE_ROOT, next, &key)) != 0 ||
	    (r = issuer_id_of_key(key, issuer)) != 0)
		goto out;
	if ((r = new_serial(c, issuer, serial)) != 0 ||
	    (r = issue_ca(c, &c->a->cfg.root, key, NULL, kr_hsm_pubkey(key),
	    issuer, serial, &x)) != 0 ||
	    (r = write_pem(path, x, 0)) != 0 ||
	    (r = cert_serial_hex(x, sh, sizeof(sh))) != 0)
		goto out;
	crun_detail(c, "%sroot certificate serial %s written to %s", next ?
	    "next " : "", sh, path);
	cert_fingerprint(c, "root certificate", x);
 out:
	X509_free(x);
	return r;
}

int
step_sign_intermediate(struct crun *c, const struct kr_step *st)
{
	struct kr_key *rkey = NULL, *ikey = NULL;
	struct kr_issuer iss;
	uint8_t serial[KR_SERIAL_LEN];
	char issuer[65], sh[41], *p1 = NULL, *p2 = NULL, *chain = NULL;
	size_t l1 = 0, l2 = 0;
	X509 *root = NULL, *x = NULL;
	char rpath[PATH_MAX], ipath[PATH_MAX], cpath[PATH_MAX];
	int next = crun_next(st);
	int r;

	if ((r = crun_cert_path(c, "root", next, rpath, sizeof(rpath))) != 0 ||
	    (r = crun_cert_path(c, "intermediate", next, ipath,
	    sizeof(ipath))) != 0 ||
	    (r = crun_cert_path(c, "chain", next, cpath, sizeof(cpath))) != 0)
		return r;
	if (access(ipath, F_OK) == 0)
		return kr_errf(KR_ERR_EXISTS, "%s exists: this state already "
		    "has a%s intermediate", ipath, next ? " next" : "n");
	if ((r = kr_ca_load_cert(rpath, &root)) != 0 ||
	    (r = crun_role_key(c, ROLE_ROOT, next, &rkey)) != 0 ||
	    (r = crun_role_key(c, ROLE_ISSUING, next, &ikey)) != 0 ||
	    (r = issuer_id(root, issuer)) != 0)
		goto out;
	iss.cert = root;
	iss.key = rkey;
	if ((r = kr_issuer_check(&iss)) != 0 ||
	    (r = new_serial(c, issuer, serial)) != 0 ||
	    (r = issue_ca(c, &c->a->cfg.intermediate, rkey, root,
	    kr_hsm_pubkey(ikey), issuer, serial, &x)) != 0)
		goto out;
	if ((r = kr_ca_cert_pem(x, &p1, &l1)) != 0 ||
	    (r = kr_ca_cert_pem(root, &p2, &l2)) != 0)
		goto out;
	if ((chain = malloc(l1 + l2)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "chain");
		goto out;
	}
	memcpy(chain, p1, l1);
	memcpy(chain + l1, p2, l2);
	if ((r = kr_write_new_file(ipath, p1, l1, 0644)) != 0 ||
	    (r = kr_write_replace_file(cpath, chain, l1 + l2, 0644)) != 0 ||
	    (r = cert_serial_hex(x, sh, sizeof(sh))) != 0)
		goto out;
	crun_detail(c, "%sintermediate serial %s signed by the %sroot, "
	    "written to %s", next ? "next " : "", sh, next ? "next " : "",
	    ipath);
	cert_fingerprint(c, "intermediate certificate", x);
 out:
	free(p1);
	free(p2);
	free(chain);
	X509_free(root);
	X509_free(x);
	return r;
}

static int
crl_path(struct crun *c, const char *issuer, char *out, size_t cap)
{
	return kr_snprintf(out, cap, "%s/%s.crl.pem", c->a->paths.certs,
	    issuer);
}

int
step_export_cert(struct crun *c, const struct kr_step *st)
{
	const char *what = kr_step_str(st, "what", "");
	char src[PATH_MAX], dst[PATH_MAX];
	uint8_t *buf = NULL, h[32];
	size_t len = 0;
	const char *name;
	int r;

	if (c->o->media == NULL)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "export-cert %s needs "
		    "--media DIR", what);
	if (strcmp(what, "root") == 0) {
		r = kr_snprintf(src, sizeof(src), "%s", c->a->paths.root_pem);
		name = "root.pem";
	} else if (strcmp(what, "intermediate") == 0) {
		r = kr_snprintf(src, sizeof(src), "%s",
		    c->a->paths.intermediate_pem);
		name = "intermediate.pem";
	} else if (strcmp(what, "chain") == 0) {
		r = kr_snprintf(src, sizeof(src), "%s", c->a->paths.chain_pem);
		name = "chain.pem";
	} else if (strcmp(what, "root-crl") == 0) {
		r = crl_path(c, "root", src, sizeof(src));
		name = "root.crl.pem";
	} else {
		r = crl_path(c, "intermediate", src, sizeof(src));
		name = "intermediate.crl.pem";
	}
	if (r != 0 || (r = kr_read_file(src, 1024 * 1024, &buf, &len)) != 0 ||
	    (r = kr_mkdirs(c->o->media, 0755)) != 0 ||
	    (r = kr_snprintf(dst, sizeof(dst), "%s/%s", c->o->media,
	    name)) != 0 ||
	    (r = kr_write_new_file(dst, buf, len, 0644)) != 0)
		goto out;
	kr_sha256(buf, len, h);
	crun_detail(c, "%s exported to %s", what, dst);
	crun_fingerprint(c, name, h);
 out:
	free(buf);
	return r;
}

/* RFC 3339 "2026-11-25T08:13:35Z" to time_t. */
static time_t
parse_time(const char *s, size_t len)
{
	struct tm tm;
	char buf[32];

	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(&tm, 0, sizeof(tm));
	if (strptime(buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

static int
val_is(const uint8_t *e, size_t len, const char *key, const char *want)
{
	const char *v;
	size_t vl;

	return kr_entry_get(e, len, key, &v, &vl) == 0 &&
	    vl == strlen(want) && memcmp(v, want, vl) == 0;
}

/*
 * Scan the log for this issuer's revocations (and count its CRLs). The
 * log is the one record of revocations; a CRL is rebuilt from it.
 */
static int
scan_revoked(struct crun *c, const char *issuer, struct kr_revoked **out,
    size_t *n, const char *find_serial, int *found)
{
	struct kr_revoked *v = NULL, *nv;
	MDB_txn *txn = NULL;
	const uint8_t *e;
	const char *val;
	char sh[41];
	uint64_t size, i;
	size_t len, vl, cnt = 0, cap = 0;
	int r;

	*out = NULL;
	*n = 0;
	if (found != NULL)
		*found = 0;
	if ((r = kr_log_read_begin(c->a->log, &txn)) != 0)
		return r;
	if ((r = kr_log_size(c->a->log, txn, &size)) != 0)
		goto out;
	for (i = 0; i < size; i++) {
		if ((r = kr_log_entry(c->a->log, txn, i, &e, &len)) != 0)
			goto out;
		if (!val_is(e, len, "type", "revoked") ||
		    !val_is(e, len, "issuer", issuer))
			continue;
		if (kr_entry_get(e, len, "serial", &val, &vl) != 0 ||
		    vl == 0 || vl > 40) {
			r = kr_errf(KR_ERR_TAMPERED, "log entry %llu: revoked "
			    "without a serial", (unsigned long long)i);
			goto out;
		}
		memcpy(sh, val, vl);
		sh[vl] = '\0';
		if (find_serial != NULL && strcmp(sh, find_serial) == 0)
			*found = 1;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			if (cap > MAX_REVOKED || (nv = realloc(v, cap *
			    sizeof(*v))) == NULL) {
				r = kr_errf(KR_ERR_TOO_LARGE, "revocations");
				goto out;
			}
			v = nv;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		/* Even-length hex for the bytes. */
		{
			char ev[42];

			snprintf(ev, sizeof(ev), "%s%s", vl % 2 ? "0" : "", sh);
			v[cnt].len = strlen(ev) / 2;
			if (kr_unhex(ev, v[cnt].serial, v[cnt].len) != 0) {
				r = kr_errf(KR_ERR_TAMPERED, "log entry %llu: "
				    "bad serial", (unsigned long long)i);
				goto out;
			}
		}
		v[cnt].when = kr_entry_get(e, len, "time", &val, &vl) == 0 ?
		    parse_time(val, vl) : 0;
		v[cnt].reason = -1;
		if (kr_entry_get(e, len, "reason", &val, &vl) == 0 && vl < 40) {
			char rs[40];

			memcpy(rs, val, vl);
			rs[vl] = '\0';
			v[cnt].reason = kr_crl_reason_parse(rs);
			if (v[cnt].reason < -1)
				v[cnt].reason = -1;
		}
		cnt++;
	}
	*out = v;
	*n = cnt;
	v = NULL;
	r = 0;
 out:
	mdb_txn_abort(txn);
	free(v);
	return r;
}

static int
issuer_cert(struct crun *c, const char *which, X509 **x)
{
	return kr_ca_load_cert(strcmp(which, "root") == 0 ?
	    c->a->paths.root_pem : c->a->paths.intermediate_pem, x);
}

int
step_revoke(struct crun *c, const struct kr_step *st)
{
	const char *which = kr_step_str(st, "issuer", "intermediate");
	const char *reason = kr_step_str(st, "reason", "unspecified");
	const char *in = kr_step_str(st, "serial", "");
	struct kr_revoked *v = NULL;
	MDB_txn *txn = NULL;
	X509 *x = NULL;
	char issuer[65], serial[41];
	uint64_t idx;
	size_t n, i;
	int r, found = 0;

	/* Normalise: lower case, no leading zeros. */
	for (i = 0; in[i] == '0' && in[i + 1] != '\0'; i++)
		;
	if ((r = kr_snprintf(serial, sizeof(serial), "%s", in + i)) != 0)
		return r;
	for (i = 0; serial[i] != '\0'; i++)
		if (serial[i] >= 'A' && serial[i] <= 'F')
			serial[i] = (char)(serial[i] - 'A' + 'a');
	if (kr_crl_reason_parse(reason) < -1)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "revocation reason "
		    "'%s' unknown", reason);
	if ((r = issuer_cert(c, which, &x)) != 0 ||
	    (r = issuer_id(x, issuer)) != 0 ||
	    (r = kr_log_read_begin(c->a->log, &txn)) != 0)
		goto out;
	r = kr_log_serial_lookup(c->a->log, txn, issuer, serial, &idx);
	mdb_txn_abort(txn);
	if (r == KR_ERR_NOT_FOUND) {
		r = kr_errf(KR_ERR_NOT_FOUND, "serial %s was never issued by "
		    "the %s CA: nothing revoked", serial, which);
		goto out;
	}
	if (r != 0)
		goto out;
	if ((r = scan_revoked(c, issuer, &v, &n, serial, &found)) != 0)
		goto out;
	if (found) {
		r = kr_errf(KR_ERR_EXISTS, "serial %s of the %s CA is already "
		    "revoked", serial, which);
		goto out;
	}
	if ((r = crun_extra(c, KR_E_REVOKED, "issuer", issuer, "serial",
	    serial, "reason", reason, NULL)) != 0)
		goto out;
	crun_detail(c, "serial %s of the %s CA revoked (%s); issued in log "
	    "entry %llu", serial, which, reason, (unsigned long long)idx);
 out:
	free(v);
	X509_free(x);
	return r;
}

int
step_issue_crl(struct crun *c, const struct kr_step *st)
{
	const char *which = kr_step_str(st, "issuer", "intermediate");
	int days = (int)kr_step_int(st, "next_days", 30);
	int role = strcmp(which, "root") == 0 ? ROLE_ROOT : ROLE_ISSUING;
	struct kr_revoked *v = NULL;
	struct kr_key *key = NULL;
	struct kr_issuer iss;
	struct kr_calog cl;
	X509_CRL *crl = NULL;
	X509 *x = NULL;
	BIO *b = NULL;
	BUF_MEM *bm;
	char issuer[65], path[PATH_MAX], num[32], next[32], hex[65];
	uint64_t ncrl;
	uint8_t h[32];
	size_t n;
	time_t now = time(NULL);
	int r;

	if ((r = issuer_cert(c, which, &x)) != 0 ||
	    (r = issuer_id(x, issuer)) != 0 ||
	    (r = crun_role_key(c, role, 0, &key)) != 0)
		goto out;
	iss.cert = x;
	iss.key = key;
	if ((r = kr_issuer_check(&iss)) != 0 ||
	    (r = scan_revoked(c, issuer, &v, &n, NULL, NULL)) != 0)
		goto out;
	/*
	 * CRL numbers increase (RFC 5280 5.2.3): the highest number logged
	 * for this issuer (by a ceremony or `keyroom ca crl`) + 1, never a
	 * count of CRLs.
	 */
	memset(&cl, 0, sizeof(cl));
	cl.log = c->a->log;
	memcpy(cl.issuer, issuer, sizeof(cl.issuer));
	if ((r = kr_calog_crl_last(&cl, &ncrl)) != 0)
		goto out;
	if (ncrl == UINT64_MAX) {
		r = kr_errf(KR_ERR_STATE, "%s CRL numbers exhausted", which);
		goto out;
	}
	if ((r = kr_ca_make_crl(&iss, v, n, ncrl + 1, now, days, &crl)) != 0)
		goto out;
	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_CRL(b, crl) != 1) {
		r = kr_err_ssl("CRL PEM");
		goto out;
	}
	BIO_get_mem_ptr(b, &bm);
	kr_sha256(bm->data, bm->length, h);
	kr_hex(h, 32, hex);
	kr_time_rfc3339(now + (time_t)days * 86400, next);
	if ((r = kr_snprintf(num, sizeof(num), "%llu",
	    (unsigned long long)(ncrl + 1))) != 0 ||
	    (r = crun_extra(c, KR_E_CRL_ISSUED, "issuer", issuer,
	    "crl-number", num, "crl-sha256", hex, "next-update", next,
	    NULL)) != 0 ||
	    (r = crl_path(c, which, path, sizeof(path))) != 0 ||
	    (r = kr_write_replace_file(path, bm->data, bm->length,
	    0644)) != 0)
		goto out;
	crun_detail(c, "%s CRL number %s with %zu revoked, next update %s, "
	    "written to %s", which, num, n, next, path);
	crun_fingerprint(c, "CRL", h);
 out:
	BIO_free(b);
	X509_CRL_free(crl);
	X509_free(x);
	free(v);
	return r;
}

int
step_checkpoint(struct crun *c, const struct kr_step *st)
{
	MDB_txn *txn = NULL;
	char *note = NULL;
	uint64_t size = 0;
	uint8_t h[32];
	int r;

	(void)st;
	if ((r = kr_log_read_begin(c->a->log, &txn)) != 0)
		return r;
	r = kr_log_checkpoint(c->a->log, txn, &note, &size);
	mdb_txn_abort(txn);
	if (r != 0)
		return r;
	fprintf(c->out, "  latest signed checkpoint (tree size %llu):\n%s",
	    (unsigned long long)size, note);
	if (!c->cli->quiet && kr_qr_print_terminal(c->out, note) != 0)
		fprintf(c->out, "  (no QR: %s)\n", kr_err_detail());
	kr_sha256(note, strlen(note), h);
	crun_detail(c, "checkpoint at tree size %llu",
	    (unsigned long long)size);
	crun_fingerprint(c, "checkpoint note", h);
	free(c->tr_more);
	if ((c->tr_more = malloc(strlen(note) + 64)) != NULL)
		snprintf(c->tr_more, strlen(note) + 64, "  checkpoint:\n%s",
		    note);
	free(note);
	return 0;
}

int
step_print_transcript(struct crun *c, const struct kr_step *st)
{
	(void)st;
	crun_detail(c, "transcript is written when the ceremony ends%s",
	    c->o->media != NULL ? "" : " (no --media given: it will not be)");
	return 0;
}

/* ---------------------------------------------------------- root rotation */

static const EVP_MD *
md_for(const struct kr_key *key)
{
	return kr_key_type(key) == KR_KEY_P384 ? EVP_sha384() : EVP_sha256();
}

/*
 * A cross certificate: subject's name and key, issued and signed by
 * signer (CA:TRUE, keyCertSign + cRLSign, the subject's SKI, AKI of the
 * signer), valid until the earlier of both notAfters; signed in the HSM
 * and verified before it is returned.
 */
static int
make_cross(struct crun *c, X509 *signer, struct kr_key *skey, X509 *subject,
    const char *issuer, X509 **out)
{
	uint8_t serial[KR_SERIAL_LEN];
	X509V3_CTX ctx;
	X509_EXTENSION *e = NULL;
	ASN1_INTEGER *sn = NULL;
	BIGNUM *bn = NULL;
	EVP_PKEY *pk = NULL;
	const ASN1_TIME *na;
	X509 *x = NULL;
	EVP_PKEY *tmp = NULL;
	uint8_t *tbs = NULL, *tbs2 = NULL, th[32];
	char sh[41];
	uint64_t intent = 0;
	int r, i, tlen, tlen2;

	*out = NULL;
	if ((r = kr_hsm_check_pubkey(skey, X509_get0_pubkey(signer))) != 0 ||
	    (r = new_serial(c, issuer, serial)) != 0 ||
	    (r = kr_hsm_evp_private(skey, &pk)) != 0)
		return r;
	r = KR_ERR_LIBCRYPTO;
	na = ASN1_TIME_compare(X509_get0_notAfter(signer),
	    X509_get0_notAfter(subject)) < 0 ? X509_get0_notAfter(signer) :
	    X509_get0_notAfter(subject);
	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1 ||
	    (bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    X509_set_serialNumber(x, sn) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(signer)) != 1 ||
	    X509_set_subject_name(x, X509_get_subject_name(subject)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_set1_notAfter(x, na) != 1 ||
	    X509_set_pubkey(x, X509_get0_pubkey(subject)) != 1)
		goto ssl;
	X509V3_set_ctx(&ctx, signer, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
	    "critical,CA:TRUE")) == NULL || X509_add_ext(x, e, -1) != 1)
		goto ssl;
	X509_EXTENSION_free(e);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
	    "critical,keyCertSign,cRLSign")) == NULL ||
	    X509_add_ext(x, e, -1) != 1)
		goto ssl;
	X509_EXTENSION_free(e);
	e = NULL;
	/* The subject's own SKI, so paths through either certificate match. */
	if ((i = X509_get_ext_by_NID(subject, NID_subject_key_identifier,
	    -1)) < 0 || X509_add_ext(x, X509_get_ext(subject, i), -1) != 1)
		goto ssl;
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
	    "keyid:always")) == NULL || X509_add_ext(x, e, -1) != 1)
		goto ssl;
	/*
	 * Fix the TBS with a throwaway key of the same type, log the intent
	 * (its SHA-256), then let the HSM sign: the signed TBS must be the
	 * logged one, byte for byte.
	 */
	if ((tmp = EVP_EC_gen(kr_key_type(skey) == KR_KEY_P384 ? "P-384" :
	    "P-256")) == NULL || X509_sign(x, tmp, md_for(skey)) <= 0 ||
	    (tlen = i2d_re_X509_tbs(x, &tbs)) <= 0)
		goto ssl;
	kr_sha256(tbs, (size_t)tlen, th);
	if ((r = cert_serial_hex(x, sh, sizeof(sh))) != 0 ||
	    (r = log_intent_only(c, th, sh, issuer, &intent)) != 0)
		goto out;
	if (X509_sign(x, pk, md_for(skey)) <= 0) {
		r = kr_err_ssl("cross certificate: HSM signature");
		log_abandon(c, intent, "hsm-sign-failed");
		goto out;
	}
	OPENSSL_free(tbs2);
	if ((tlen2 = i2d_re_X509_tbs(x, &tbs2)) != tlen ||
	    memcmp(tbs, tbs2, (size_t)tlen) != 0 ||
	    X509_verify(x, X509_get0_pubkey(signer)) != 1) {
		r = kr_errf(KR_ERR_SIGNATURE, "cross certificate: the HSM "
		    "signature does not verify over the logged TBS");
		log_abandon(c, intent, "verify-failed");
		goto out;
	}
	if ((r = log_issued_only(c, x, intent)) != 0)
		goto out;
	*out = x;
	x = NULL;
	r = 0;
	goto out;
 ssl:
	r = kr_err_ssl("cross certificate");
 out:
	X509_EXTENSION_free(e);
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	EVP_PKEY_free(tmp);
	OPENSSL_free(tbs);
	OPENSSL_free(tbs2);
	X509_free(x);
	return r;
}

static int
copy_to_media(struct crun *c, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];
	int r;

	if (c->o->media == NULL)
		return 0;
	if ((r = kr_mkdirs(c->o->media, 0755)) != 0 ||
	    (r = kr_snprintf(path, sizeof(path), "%s/%s", c->o->media,
	    name)) != 0)
		return r;
	return kr_write_new_file(path, data, len, 0644);
}

int
step_cross_certify(struct crun *c, const struct kr_step *st)
{
	int old_signs = strcmp(kr_step_str(st, "direction", ""),
	    "old-to-new") == 0;
	char cur[PATH_MAX], nxt[PATH_MAX], path[PATH_MAX], issuer[65], sh[41];
	X509 *oldc = NULL, *newc = NULL, *x = NULL;
	struct kr_key *key = NULL;
	char *pem = NULL;
	size_t len = 0;
	int r;

	if ((r = crun_cert_path(c, "root", 0, cur, sizeof(cur))) != 0 ||
	    (r = crun_cert_path(c, "root", 1, nxt, sizeof(nxt))) != 0 ||
	    (r = kr_snprintf(path, sizeof(path), "%s/cross-%s.pem",
	    c->a->paths.certs, old_signs ? "old-to-new" : "new-to-old")) != 0)
		return r;
	if ((r = kr_ca_load_cert(cur, &oldc)) != 0 ||
	    (r = kr_ca_load_cert(nxt, &newc)) != 0 ||
	    (r = crun_role_key(c, ROLE_ROOT, !old_signs, &key)) != 0 ||
	    (r = issuer_id(old_signs ? oldc : newc, issuer)) != 0)
		goto out;
	if ((r = make_cross(c, old_signs ? oldc : newc, key, old_signs ?
	    newc : oldc, issuer, &x)) != 0 ||
	    (r = write_pem(path, x, 0)) != 0 ||
	    (r = kr_ca_cert_pem(x, &pem, &len)) != 0 ||
	    (r = copy_to_media(c, old_signs ? "cross-old-to-new.pem" :
	    "cross-new-to-old.pem", pem, len)) != 0 ||
	    (r = cert_serial_hex(x, sh, sizeof(sh))) != 0)
		goto out;
	crun_detail(c, "the %s root certifies the %s root: serial %s, written "
	    "to %s", old_signs ? "old" : "new", old_signs ? "new" : "old", sh,
	    path);
	cert_fingerprint(c, "cross certificate", x);
 out:
	free(pem);
	X509_free(oldc);
	X509_free(newc);
	X509_free(x);
	return r;
}

/*
 * The root-of-trust update for devices: the new root certificate (DER)
 * as CMS SignedData by the old root (openssl cms -verify -binary -inform
 * DER -CAfile old-root.pem -purpose any), checked here first.
 */
int
step_rotation_package(struct crun *c, const struct kr_step *st)
{
	char cur[PATH_MAX], nxt[PATH_MAX], path[PATH_MAX], hex[65];
	X509 *oldc = NULL, *newc = NULL;
	struct kr_key *key = NULL;
	CMS_ContentInfo *cms = NULL;
	X509_STORE *store = NULL;
	BIO *in = NULL, *out = NULL, *ver = NULL;
	EVP_PKEY *pk = NULL;
	uint8_t *der = NULL, *p7 = NULL, h[32];
	BUF_MEM *bm;
	int dlen, plen, r;

	(void)st;
	if ((r = crun_cert_path(c, "root", 0, cur, sizeof(cur))) != 0 ||
	    (r = crun_cert_path(c, "root", 1, nxt, sizeof(nxt))) != 0 ||
	    (r = kr_snprintf(path, sizeof(path), "%s/root-update.p7",
	    c->a->paths.certs)) != 0)
		return r;
	if ((r = kr_ca_load_cert(cur, &oldc)) != 0 ||
	    (r = kr_ca_load_cert(nxt, &newc)) != 0 ||
	    (r = crun_role_key(c, ROLE_ROOT, 0, &key)) != 0 ||
	    (r = kr_hsm_check_pubkey(key, X509_get0_pubkey(oldc))) != 0 ||
	    (r = kr_hsm_evp_private(key, &pk)) != 0)
		goto out;
	r = KR_ERR_LIBCRYPTO;
	if ((dlen = i2d_X509(newc, &der)) <= 0 ||
	    (in = BIO_new_mem_buf(der, dlen)) == NULL ||
	    (cms = CMS_sign(oldc, pk, NULL, in, CMS_BINARY |
	    CMS_NOSMIMECAP)) == NULL ||
	    (plen = i2d_CMS_ContentInfo(cms, &p7)) <= 0)
		goto ssl;
	/* Verify as a device would: old root as the only trust anchor. */
	if ((store = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(store, oldc) != 1 ||
	    X509_STORE_set_purpose(store, X509_PURPOSE_ANY) != 1 ||
	    (ver = BIO_new(BIO_s_mem())) == NULL ||
	    CMS_verify(cms, NULL, store, NULL, ver, CMS_BINARY) != 1)
		goto ssl;
	BIO_get_mem_ptr(ver, &bm);
	if (bm->length != (size_t)dlen || memcmp(bm->data, der, dlen) != 0) {
		r = kr_errf(KR_ERR_SIGNATURE, "rotation package does not carry "
		    "the new root");
		goto out;
	}
	if ((r = kr_write_new_file(path, p7, (size_t)plen, 0644)) != 0 ||
	    (r = copy_to_media(c, "root-update.p7", p7, (size_t)plen)) != 0)
		goto out;
	kr_sha256(p7, (size_t)plen, h);
	kr_hex(h, 32, hex);
	if ((r = crun_extra(c, KR_E_EXPORT, "what", "root-update-package",
	    "dest", path, "sha256", hex, NULL)) != 0)
		goto out;
	if (c->o->media != NULL) {
		char *pem = NULL;
		size_t len = 0;

		if ((r = kr_ca_cert_pem(newc, &pem, &len)) == 0)
			r = copy_to_media(c, "new-root.pem", pem, len);
		free(pem);
		if (r != 0)
			goto out;
	}
	crun_detail(c, "new root signed by the old root as CMS SignedData: %s",
	    path);
	crun_fingerprint(c, "root update package", h);
	r = 0;
	goto out;
 ssl:
	r = kr_err_ssl("rotation package");
 out:
	OPENSSL_free(der);
	OPENSSL_free(p7);
	BIO_free(in);
	BIO_free(ver);
	BIO_free(out);
	X509_STORE_free(store);
	CMS_ContentInfo_free(cms);
	X509_free(oldc);
	X509_free(newc);
	return r;
}

/*
 * Move certs/<name> aside as retired-<serial>-<name>. Idempotent, for a
 * promotion finished after an interruption: an existing retired copy
 * means done (a <name> beside it that is not the same file is the new
 * one, promoted since); a link left without its unlink is completed.
 */
static int
retire_file(struct crun *c, const char *name, const char *serial)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct stat sf, st;

	if (kr_snprintf(from, sizeof(from), "%s/%s", c->a->paths.certs,
	    name) != 0 || kr_snprintf(to, sizeof(to), "%s/retired-%s-%s",
	    c->a->paths.certs, serial, name) != 0)
		return KR_ERR_TOO_LARGE;
	if (lstat(from, &sf) != 0)
		return 0;
	if (lstat(to, &st) == 0) {
		if (sf.st_dev == st.st_dev && sf.st_ino == st.st_ino &&
		    unlink(from) == -1)
			return kr_err_sys("%s", from);
		return 0;
	}
	if (link(from, to) == -1)
		return kr_err_sys("%s", to);
	kr_audit_crash_point("promote: a file linked as retired");
	if (unlink(from) == -1)
		return kr_err_sys("%s", from);
	kr_audit_crash_point("promote: a file retired");
	return 0;
}

/* certs/<name>-next.pem becomes <name>.pem (done already if only the
 * latter exists). */
static int
promote_file(struct crun *c, const char *name)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (kr_snprintf(from, sizeof(from), "%s/%s-next.pem",
	    c->a->paths.certs, name) != 0 || kr_snprintf(to, sizeof(to),
	    "%s/%s.pem", c->a->paths.certs, name) != 0)
		return KR_ERR_TOO_LARGE;
	if (access(from, F_OK) != 0 && access(to, F_OK) == 0)
		return 0;
	if (rename(from, to) == -1)
		return kr_err_sys("%s -> %s", from, to);
	kr_audit_crash_point("promote: a file promoted");
	return 0;
}

/* The profile follows the key of the certificate now current. */
static int
profile_from_cert(const char *path, struct kr_profile *prof)
{
	enum kr_key_type t;
	X509 *x = NULL;
	int r;

	if ((r = kr_ca_load_cert(path, &x)) != 0)
		return r;
	t = kr_key_type_of(X509_get0_pubkey(x));
	X509_free(x);
	if (t == KR_KEY_NONE)
		return kr_errf(KR_ERR_UNSUPPORTED, "%s: key type", path);
	prof->algorithm = t;
	prof->algorithms = KR_KEY_BIT(t);
	return 0;
}

/* The promotion's entry committed: it is over. */
static int
promote_done(struct crun *c)
{
	kr_audit_crash_point("promote: logged, marker not yet removed");
	if (unlink(c->a->paths.promote_mark) == -1)
		return kr_err_sys("%s", c->a->paths.promote_mark);
	return kr_fsync_dir(c->a->paths.certs);
}

/*
 * The next root and intermediate become current. First the state
 * records, in certs/promote.inprogress, that a promotion has begun and
 * the old root's serial; every move after that can be done again
 * (relabel, retire, promote), so a promotion interrupted at any point is
 * finished by running this step once more (the promote.yaml script).
 * Until its entry commits the marker stays, and batch sign and ca issue
 * refuse to issue (promote_done removes it after the commit).
 */
int
step_promote(struct crun *c, const struct kr_step *st)
{
	char rnext[PATH_MAX], inext[PATH_MAX], cur[KR_KEY_LABEL_MAX + 8];
	char nxt[KR_KEY_LABEL_MAX + 8], sh[41], mark[PATH_MAX], *yaml = NULL;
	char mline[64];
	uint8_t *mbuf = NULL;
	size_t mlen = 0;
	X509 *oldroot = NULL;
	struct kr_token *tok;
	size_t n;
	int role, r, resume;

	(void)st;
	if ((r = kr_snprintf(mark, sizeof(mark), "%s",
	    c->a->paths.promote_mark)) != 0 ||
	    (r = crun_cert_path(c, "root", 1, rnext, sizeof(rnext))) != 0 ||
	    (r = crun_cert_path(c, "intermediate", 1, inext,
	    sizeof(inext))) != 0)
		return r;
	resume = access(mark, F_OK) == 0;
	if (resume) {
		if ((r = kr_read_file(mark, 128, &mbuf, &mlen)) != 0)
			goto out;
		if (mlen < 12 || memcmp(mbuf, "old-serial ", 11) != 0 ||
		    mlen - 11 > sizeof(sh) || mbuf[mlen - 1] != '\n' ||
		    strspn((char *)mbuf + 11, "0123456789abcdef") !=
		    mlen - 12) {
			r = kr_errf(KR_ERR_STATE, "%s: malformed", mark);
			goto out;
		}
		memcpy(sh, mbuf + 11, mlen - 12);
		sh[mlen - 12] = '\0';
	} else {
		if (access(rnext, F_OK) != 0 || access(inext, F_OK) != 0) {
			r = kr_errf(KR_ERR_STATE, "promote: %s and %s must exist "
			    "(self-sign-root and sign-intermediate, generation "
			    "next)", rnext, inext);
			goto out;
		}
		/* Nothing is moved unless all of it can be. */
		for (role = 0; role < ROLE__COUNT; role++) {
			size_t ncur, nnext;

			if ((r = crun_token(c, role, &tok)) != 0 ||
			    (r = crun_key_label(c, role, 0, cur,
			    sizeof(cur))) != 0 ||
			    (r = crun_key_label(c, role, 1, nxt,
			    sizeof(nxt))) != 0 ||
			    (r = kr_tokenop_count(c->a->module,
			    kr_token_label(tok), c->role[role].pin,
			    c->role[role].pinlen, cur, &ncur)) != 0 ||
			    (r = kr_tokenop_count(c->a->module,
			    kr_token_label(tok), c->role[role].pin,
			    c->role[role].pinlen, nxt, &nnext)) != 0)
				goto out;
			if (ncur != 0) {
				r = kr_errf(KR_ERR_EXISTS, "token %s: '%s' "
				    "still exists: destroy the old %s key "
				    "first (destroy-key)", kr_token_label(tok),
				    cur, c->role[role].name);
				goto out;
			}
			if (nnext == 0) {
				r = kr_errf(KR_ERR_NOT_FOUND, "token %s: no "
				    "next key '%s' (generate-key, generation "
				    "next)", kr_token_label(tok), nxt);
				goto out;
			}
		}
		if ((r = kr_ca_load_cert(c->a->paths.root_pem,
		    &oldroot)) != 0 ||
		    (r = cert_serial_hex(oldroot, sh, sizeof(sh))) != 0)
			goto out;
		snprintf(mline, sizeof(mline), "old-serial %s\n", sh);
		if ((r = kr_write_new_file(mark, mline, strlen(mline),
		    0600)) != 0)
			goto out;
		kr_audit_crash_point("promote: begun");
	}
	c->committed = promote_done;	/* the marker goes once logged */
	/* Keys: the next ones take the configured labels. */
	for (role = 0; role < ROLE__COUNT; role++) {
		if ((r = crun_token(c, role, &tok)) != 0 ||
		    (r = crun_key_label(c, role, 0, cur, sizeof(cur))) != 0 ||
		    (r = crun_key_label(c, role, 1, nxt, sizeof(nxt))) != 0)
			goto out;
		if ((r = kr_tokenop_relabel(c->a->module, kr_token_label(tok),
		    c->role[role].pin, c->role[role].pinlen, nxt, cur, resume,
		    &n)) != 0)
			goto out;
		if (c->role[role].next_key != NULL) {
			kr_key_free(c->role[role].key);
			c->role[role].key = c->role[role].next_key;
			c->role[role].next_key = NULL;
		}
	}
	/* Certificates: the old ones are kept under retired-<serial>-. */
	if ((r = retire_file(c, "root.pem", sh)) != 0 ||
	    (r = retire_file(c, "intermediate.pem", sh)) != 0 ||
	    (r = retire_file(c, "chain.pem", sh)) != 0 ||
	    (r = retire_file(c, "root.crl.pem", sh)) != 0 ||
	    (r = retire_file(c, "intermediate.crl.pem", sh)) != 0 ||
	    (r = promote_file(c, "root")) != 0 ||
	    (r = promote_file(c, "intermediate")) != 0 ||
	    (r = promote_file(c, "chain")) != 0 ||
	    (r = kr_fsync_dir(c->a->paths.certs)) != 0)
		goto out;
	/* The profiles follow the new keys' algorithms. */
	if ((r = profile_from_cert(c->a->paths.root_pem,
	    &c->a->cfg.root)) != 0 ||
	    (r = profile_from_cert(c->a->paths.intermediate_pem,
	    &c->a->cfg.intermediate)) != 0 ||
	    (r = kr_config_render(&c->a->cfg, &yaml)) != 0 ||
	    (r = kr_write_replace_file(c->a->paths.config, yaml, strlen(yaml),
	    0600)) != 0)
		goto out;
	kr_audit_crash_point("promote: keyroom.yaml written");
	{
		uint8_t h[32];
		char hex[65];

		kr_sha256(yaml, strlen(yaml), h);
		kr_hex(h, 32, hex);
		if ((r = crun_extra(c, KR_E_CONFIG_CHANGE, "file",
		    c->a->paths.config, "sha256", hex, NULL)) != 0)
			goto out;
	}
	crun_detail(c, "%sthe new root and intermediate are current; the old "
	    "root %s and its files are kept as retired-%s-*", resume ?
	    "an interrupted promotion finished: " : "", sh, sh);
 out:
	free(mbuf);
	free(yaml);
	X509_free(oldroot);
	return r;
}
