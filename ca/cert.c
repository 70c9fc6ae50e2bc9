/*
 * cert.c - certificates from profiles: names, serials, TBS building,
 * lint (no throwaway signature), HSM signing of the linted TBS bytes
 * (C_Sign + ASN.1 assembly), verify.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "lib/util.h"

#define NO_EXPIRY "99991231235959Z"
#define SERIAL_TRIES 8

struct kr_prepared {
	X509 *x;		/* signature algorithm set, linted */
	uint8_t *tbs;		/* the linted TBS DER */
	size_t tbslen;
	uint8_t tbs_sha256[32];	/* of tbs: the intent's, a P-256 C_Sign's */
	uint8_t serial[KR_SERIAL_LEN];
	const struct kr_profile *profile;
	int signed_once;
};

int
kr_ca_parse_dn(const char *s, X509_NAME **out)
{
	X509_NAME *n = NULL;
	char *buf = NULL, *p, *w, *field, *val;
	int r;

	*out = NULL;
	if (s == NULL || s[0] != '/')
		return kr_errf(KR_ERR_FORMAT, "subject '%s': must look like "
		    "/O=Org/CN=Name", s != NULL ? s : "");
	if ((buf = strdup(s)) == NULL || (n = X509_NAME_new()) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "subject");
		goto out;
	}
	p = buf + 1;
	while (*p != '\0') {
		/* One "type=value" up to an unescaped '/'. */
		field = p;
		val = NULL;
		for (w = p; *p != '\0' && *p != '/'; p++) {
			if (*p == '\\' && (p[1] == '/' || p[1] == '\\'))
				p++;
			else if (*p == '=' && val == NULL) {
				*w++ = '\0';
				val = w;
				continue;
			}
			*w++ = *p;
		}
		if (*p == '/')
			p++;
		*w = '\0';
		if (val == NULL || field[0] == '\0' || val[0] == '\0') {
			r = kr_errf(KR_ERR_FORMAT, "subject '%s': empty or "
			    "malformed attribute '%s'", s, field);
			goto out;
		}
		if (OBJ_txt2nid(field) == NID_undef ||
		    !X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
		    (const unsigned char *)val, -1, -1, 0)) {
			ERR_clear_error();
			r = kr_errf(KR_ERR_FORMAT, "subject '%s': bad attribute "
			    "%s=%s", s, field, val);
			goto out;
		}
	}
	if (X509_NAME_entry_count(n) == 0) {
		r = kr_errf(KR_ERR_FORMAT, "subject '%s' is empty", s);
		goto out;
	}
	*out = n;
	n = NULL;
	r = 0;
 out:
	X509_NAME_free(n);
	free(buf);
	return r;
}

int
kr_ca_random_serial(struct kr_token *tok, kr_serial_used_fn used, void *arg,
    uint8_t out[KR_SERIAL_LEN])
{
	int i, r;

	for (i = 0; i < SERIAL_TRIES; i++) {
		if ((r = kr_token_random(tok, out, KR_SERIAL_LEN)) != 0)
			return r;
		out[0] &= 0x7f;		/* positive */
		if (out[0] == 0)
			continue;	/* keep 16 content octets */
		if (used == NULL)
			return 0;
		if ((r = used(arg, out, KR_SERIAL_LEN)) < 0)
			return r;
		if (r == 0)
			return 0;
	}
	return kr_errf(KR_ERR_EXISTS, "no unused serial after %d draws",
	    SERIAL_TRIES);
}

int
kr_issuer_check(const struct kr_issuer *iss)
{
	return kr_hsm_check_pubkey(iss->key, X509_get0_pubkey(iss->cert));
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e;
	int ok;

	if ((e = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL)
		return kr_err_ssl("extension %s = %s", OBJ_nid2sn(nid), value);
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	if (!ok)
		return kr_err_ssl("adding %s", OBJ_nid2sn(nid));
	return 0;
}

static int
add_san_hw(X509 *x, const char *hw_type, const struct kr_hwname *hw)
{
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *g = NULL;
	int r;

	if ((r = kr_hwname_general_name(hw_type, hw->serial, hw->len, &g)) != 0)
		return r;
	if ((gens = sk_GENERAL_NAME_new_null()) == NULL ||
	    !sk_GENERAL_NAME_push(gens, g)) {
		GENERAL_NAME_free(g);
		r = kr_err_ssl("SAN");
		goto out;
	}
	if (!X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT)) {
		r = kr_err_ssl("adding SAN");
		goto out;
	}
	r = 0;
 out:
	GENERAL_NAMES_free(gens);
	return r;
}

static int
set_serial(X509 *x, const uint8_t serial[KR_SERIAL_LEN])
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	int r = 0;

	if ((bn = BN_bin2bn(serial, KR_SERIAL_LEN, NULL)) == NULL ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_set_serialNumber(x, ai))
		r = kr_err_ssl("serial");
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return r;
}

static int
set_validity(X509 *x, const struct kr_profile *prof, time_t now)
{
	ASN1_TIME *nb = NULL, *na = NULL;
	int r = 0;

	/* ASN1_TIME_adj picks UTCTime before 2050, as RFC 5280 requires. */
	if ((nb = ASN1_TIME_adj(NULL, now, 0, 0)) == NULL) {
		r = kr_err_ssl("notBefore");
		goto out;
	}
	if (prof->validity_days == KR_VALIDITY_NO_EXPIRY) {
		if ((na = ASN1_GENERALIZEDTIME_new()) == NULL ||
		    !ASN1_GENERALIZEDTIME_set_string(na, NO_EXPIRY)) {
			r = kr_err_ssl("notAfter");
			goto out;
		}
	} else if ((na = ASN1_TIME_adj(NULL, now, prof->validity_days,
	    0)) == NULL) {
		r = kr_err_ssl("notAfter");
		goto out;
	}
	if (!X509_set1_notBefore(x, nb) || !X509_set1_notAfter(x, na))
		r = kr_err_ssl("validity");
 out:
	ASN1_TIME_free(nb);
	ASN1_TIME_free(na);
	return r;
}

/*
 * The unsigned certificate for prof: subject, public key (pub, or the SPKI
 * spki copied as it stands), issuer (NULL: self), serial, validity,
 * extensions.
 */
int
kr_ca_build_tbs(const struct kr_profile *prof, const X509_NAME *subject,
    EVP_PKEY *pub,
    X509_PUBKEY *spki, const X509 *issuer, const uint8_t serial[KR_SERIAL_LEN],
    const struct kr_hwname *hw, time_t now, X509 **out)
{
	X509V3_CTX ctx;
	X509 *x = NULL;
	char buf[KR_URL_MAX + 32];
	int r;

	*out = NULL;
	if ((x = X509_new()) == NULL || !X509_set_version(x, 2) ||
	    !X509_set_subject_name(x, (X509_NAME *)(uintptr_t)subject) ||
	    !X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : (X509_NAME *)(uintptr_t)subject) ||
	    (spki == NULL && !X509_set_pubkey(x, pub))) {
		r = kr_err_ssl("building certificate");
		goto out;
	}
	if (spki != NULL && (r = kr_spki_copy(x, spki)) != 0)
		goto out;
	if ((r = set_serial(x, serial)) != 0 ||
	    (r = set_validity(x, prof, now)) != 0)
		goto out;
	X509V3_set_ctx(&ctx, issuer != NULL ? (X509 *)(uintptr_t)issuer : x,
	    x, NULL, NULL, 0);
	switch (prof->kind) {
	case KR_CERT_ROOT:
		if ((r = add_ext(x, &ctx, NID_basic_constraints,
		    "critical,CA:TRUE")) != 0 ||
		    (r = add_ext(x, &ctx, NID_key_usage,
		    "critical,keyCertSign,cRLSign")) != 0 ||
		    (r = add_ext(x, &ctx, NID_subject_key_identifier,
		    "hash")) != 0)
			goto out;
		break;
	case KR_CERT_INTERMEDIATE:
		if ((r = add_ext(x, &ctx, NID_basic_constraints,
		    "critical,CA:TRUE,pathlen:0")) != 0 ||
		    (r = add_ext(x, &ctx, NID_key_usage,
		    "critical,keyCertSign,cRLSign")) != 0 ||
		    (r = add_ext(x, &ctx, NID_subject_key_identifier,
		    "hash")) != 0 ||
		    (r = add_ext(x, &ctx, NID_authority_key_identifier,
		    "keyid:always")) != 0)
			goto out;
		break;
	case KR_CERT_DEVICE:
		if ((r = add_ext(x, &ctx, NID_basic_constraints,
		    "critical,CA:FALSE")) != 0 ||
		    (r = add_ext(x, &ctx, NID_key_usage, prof->key_agreement ?
		    "critical,digitalSignature,keyAgreement" :
		    "critical,digitalSignature")) != 0 ||
		    (r = add_ext(x, &ctx, NID_ext_key_usage, prof->server_auth ?
		    "clientAuth,serverAuth" : "clientAuth")) != 0 ||
		    (r = add_ext(x, &ctx, NID_subject_key_identifier,
		    "hash")) != 0 ||
		    (r = add_ext(x, &ctx, NID_authority_key_identifier,
		    "keyid:always")) != 0)
			goto out;
		if (prof->hw_module_name) {
			if (hw == NULL || hw->len == 0) {
				r = kr_errf(KR_ERR_INVALID_ARGUMENT, "profile "
				    "device wants a HardwareModuleName: give "
				    "the chip serial");
				goto out;
			}
			if ((r = add_san_hw(x, prof->hw_type, hw)) != 0)
				goto out;
		}
		break;
	default:
		r = kr_errf(KR_ERR_INTERNAL, "profile kind %d", prof->kind);
		goto out;
	}
	if (prof->kind != KR_CERT_ROOT && prof->crl_url[0] != '\0') {
		if ((r = kr_snprintf(buf, sizeof(buf), "URI:%s",
		    prof->crl_url)) != 0 ||
		    (r = add_ext(x, &ctx, NID_crl_distribution_points,
		    buf)) != 0)
			goto out;
	}
	if (prof->kind != KR_CERT_ROOT && prof->aia_url[0] != '\0') {
		if ((r = kr_snprintf(buf, sizeof(buf), "caIssuers;URI:%s",
		    prof->aia_url)) != 0 ||
		    (r = add_ext(x, &ctx, NID_info_access, buf)) != 0)
			goto out;
	}
	*out = x;
	x = NULL;
	r = 0;
 out:
	X509_free(x);
	return r;
}

/* i2d_re_X509_tbs into a malloc'd buffer. */
static int
tbs_der(X509 *x, uint8_t **out, size_t *len)
{
	unsigned char *p = NULL;
	int n;

	if ((n = i2d_re_X509_tbs(x, &p)) <= 0)
		return kr_err_ssl("encoding TBS");
	*out = p;
	*len = (size_t)n;
	return 0;
}

/*
 * Give x the issuer's signature algorithm (no signature yet), lint it,
 * keep the TBS DER. `issuer` NULL for a root (self-signed).
 */
static int
prepare(X509 *x, const struct kr_profile *prof, const X509 *issuer,
    enum kr_key_type issuer_type, struct kr_prepared *p)
{
	int r;

	if ((r = kr_ca_set_sigalg(x, issuer_type)) != 0)
		return r;
	if ((r = kr_lint_cert(x, prof, issuer)) != 0)
		return r;
	p->x = x;
	p->profile = prof;
	if ((r = tbs_der(x, &p->tbs, &p->tbslen)) != 0)
		return r;
	kr_sha256(p->tbs, p->tbslen, p->tbs_sha256);
	return 0;
}

/*
 * C_Sign TBS bytes whose signature AlgorithmIdentifier is alg, after
 * checking alg is the one key's type signs with. sha256: SHA-256 of the
 * bytes if known (a P-256 key signs it as it stands), or NULL.
 */
static int
hsm_sign_tbs(struct kr_key *key, const uint8_t *tbs, size_t tbslen,
    const uint8_t *sha256, const X509_ALGOR *alg, uint8_t *sig,
    size_t *siglen)
{
	enum kr_key_type t = kr_key_type(key);

	if (alg == NULL || OBJ_obj2nid(alg->algorithm) != kr_ca_sig_nid(t))
		return kr_errf(KR_ERR_INTERNAL, "TBS signature algorithm does "
		    "not match the %s key", kr_key_type_name(t));
	if (sha256 != NULL && t == KR_KEY_P256)
		return kr_hsm_sign_sha256(key, sha256, sig, siglen);
	return kr_hsm_sign_raw(key, tbs, tbslen, sig, siglen);
}

int
kr_ca_hsm_sign(struct kr_key *key, X509 **xp, X509_CRL **crlp)
{
	enum kr_key_type t = kr_key_type(key);
	uint8_t sig[KR_HSM_SIG_MAX], *der = NULL;
	unsigned char *tbs = NULL;
	const unsigned char *q;
	const X509_ALGOR *alg = NULL;
	size_t siglen = sizeof(sig), derlen = 0;
	X509 *nx = NULL;
	X509_CRL *ncrl = NULL;
	int n, r;

	if (t != KR_KEY_ED25519) {
		r = kr_hsm_x509_sign(key, xp != NULL ? *xp : NULL,
		    crlp != NULL ? *crlp : NULL, kr_ca_md(t));
		if (r != KR_ERR_UNSUPPORTED)
			return r;
		kr_err_clear();		/* libp11 cannot: sign raw below */
	}
	/*
	 * C_Sign the TBS as encoded (its signature AlgorithmIdentifier was
	 * set by the throwaway-key signature) and assemble the object.
	 */
	if (xp != NULL) {
		X509_get0_signature(NULL, &alg, *xp);
		n = i2d_re_X509_tbs(*xp, &tbs);
	} else {
		X509_CRL_get0_signature(*crlp, NULL, &alg);
		n = i2d_re_X509_CRL_tbs(*crlp, &tbs);
	}
	if (n <= 0)
		return kr_err_ssl("encoding TBS");
	if ((r = hsm_sign_tbs(key, tbs, (size_t)n, NULL, alg, sig,
	    &siglen)) != 0 ||
	    (r = kr_asn1_signed(tbs, (size_t)n, alg, sig, siglen, &der,
	    &derlen)) != 0)
		goto out;
	q = der;
	if (xp != NULL) {
		if ((nx = d2i_X509(NULL, &q, (long)derlen)) == NULL ||
		    q != der + derlen) {
			r = kr_err_ssl("parsing the signed certificate");
			goto out;
		}
		X509_free(*xp);
		*xp = nx;
		nx = NULL;
	} else {
		if ((ncrl = d2i_X509_CRL(NULL, &q, (long)derlen)) == NULL ||
		    q != der + derlen) {
			r = kr_err_ssl("parsing the signed CRL");
			goto out;
		}
		X509_CRL_free(*crlp);
		*crlp = ncrl;
		ncrl = NULL;
	}
	r = 0;
 out:
	X509_free(nx);
	X509_CRL_free(ncrl);
	OPENSSL_free(tbs);
	OPENSSL_free(der);
	return r;
}

int
kr_ca_verify_tbs(EVP_PKEY *pub, enum kr_key_type t, EVP_PKEY_CTX **cache,
    const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen)
{
	const EVP_MD *md = kr_ca_md(t);
	uint8_t dg[EVP_MAX_MD_SIZE];
	unsigned int dglen = 0;
	EVP_MD_CTX *mc = NULL;
	int ok;

	/* Ed25519 has no pre-hashed form: the one-shot verify, every time. */
	if (cache == NULL || md == NULL) {
		ok = (mc = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestVerifyInit(mc, NULL, md, NULL, pub) == 1 &&
		    EVP_DigestVerify(mc, sig, siglen, tbs, tbslen) == 1;
		EVP_MD_CTX_free(mc);
		return ok;
	}
	/* A context made once for this key; the verify itself is stateless. */
	if (*cache != NULL && EVP_PKEY_CTX_get0_pkey(*cache) != pub) {
		EVP_PKEY_CTX_free(*cache);
		*cache = NULL;
	}
	if (*cache == NULL && ((*cache = EVP_PKEY_CTX_new(pub, NULL)) == NULL ||
	    EVP_PKEY_verify_init(*cache) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(*cache, md) != 1)) {
		EVP_PKEY_CTX_free(*cache);
		*cache = NULL;
		return 0;
	}
	if (EVP_MD_get_type(md) == NID_sha256) {
		kr_sha256(tbs, tbslen, dg);
		dglen = 32;
	} else if (EVP_Digest(tbs, tbslen, dg, &dglen, md, NULL) != 1)
		return 0;
	return EVP_PKEY_verify(*cache, sig, siglen, dg, dglen) == 1;
}

/*
 * HSM-sign the linted TBS bytes themselves (C_Sign, kr_hsm_sign_raw),
 * verify that signature over them with issuer_pub, and assemble the
 * certificate DER from exactly those bytes: the TBS that leaves is the
 * one that was linted, by construction, with no re-encoding in between.
 * *der is OPENSSL_malloc'd.
 */
static int
sign_der(struct kr_prepared *p, struct kr_key *key, EVP_PKEY *issuer_pub,
    EVP_PKEY_CTX **vcache, uint8_t **der, size_t *derlen)
{
	enum kr_key_type t = kr_key_type(key);
	const X509_ALGOR *alg = NULL;
	uint8_t sig[KR_HSM_SIG_MAX];
	size_t siglen = sizeof(sig);
	int r;

	*der = NULL;
	*derlen = 0;
	if (p->signed_once)
		return kr_errf(KR_ERR_STATE, "prepared certificate already "
		    "signed");
	p->signed_once = 1;
	X509_get0_signature(NULL, &alg, p->x);
	if ((r = hsm_sign_tbs(key, p->tbs, p->tbslen, p->tbs_sha256, alg, sig,
	    &siglen)) != 0)
		return r;
	/* over the bytes that leave, hashed again */
	if (!kr_ca_verify_tbs(issuer_pub, t, vcache, p->tbs, p->tbslen, sig,
	    siglen)) {
		ERR_clear_error();
		return kr_errf(KR_ERR_SIGNATURE, "token %s: key '%s': HSM "
		    "signature does not verify with the issuer key",
		    kr_token_label(kr_key_token(key)), kr_key_label(key));
	}
	return kr_asn1_signed(p->tbs, p->tbslen, alg, sig, siglen, der,
	    derlen);
}

/* sign_der, then the certificate as an X509 (TBS checked once more). */
static int
finish(struct kr_prepared *p, struct kr_key *key, EVP_PKEY *issuer_pub,
    X509 **out)
{
	uint8_t *der = NULL, *tbs = NULL;
	const unsigned char *q;
	size_t derlen = 0, tbslen = 0;
	X509 *x = NULL;
	int r;

	*out = NULL;
	if ((r = sign_der(p, key, issuer_pub, NULL, &der, &derlen)) != 0)
		return r;
	q = der;
	if ((x = d2i_X509(NULL, &q, (long)derlen)) == NULL ||
	    q != der + derlen) {
		r = kr_err_ssl("parsing the signed certificate");
		goto out;
	}
	if ((r = tbs_der(x, &tbs, &tbslen)) != 0)
		goto out;
	if (tbslen != p->tbslen || memcmp(tbs, p->tbs, tbslen) != 0) {
		r = kr_errf(KR_ERR_LINT, "signed TBS differs from the linted "
		    "TBS");
		goto out;
	}
	*out = x;
	x = NULL;
 out:
	X509_free(x);
	OPENSSL_free(tbs);
	OPENSSL_free(der);
	return r;
}

void
kr_prepared_free(struct kr_prepared *p)
{
	if (p == NULL)
		return;
	X509_free(p->x);
	OPENSSL_free(p->tbs);
	free(p);
}

const uint8_t *
kr_prepared_tbs(const struct kr_prepared *p, size_t *len)
{
	*len = p->tbslen;
	return p->tbs;
}

void
kr_prepared_tbs_sha256(const struct kr_prepared *p, uint8_t out[32])
{
	memcpy(out, p->tbs_sha256, 32);
}

const uint8_t *
kr_prepared_serial(const struct kr_prepared *p)
{
	return p->serial;
}

int
kr_ca_make_root(const struct kr_profile *prof, struct kr_key *key,
    const uint8_t serial[KR_SERIAL_LEN], time_t now, X509 **out)
{
	struct kr_prepared p;
	X509_NAME *subj = NULL;
	X509 *x = NULL;
	int r;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	if (prof->kind != KR_CERT_ROOT)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "not a root profile");
	if (kr_key_type(key) != prof->algorithm)
		return kr_errf(KR_ERR_POLICY, "key '%s' is %s, profile root "
		    "wants %s", kr_key_label(key),
		    kr_key_type_name(kr_key_type(key)),
		    kr_key_type_name(prof->algorithm));
	if ((r = kr_ca_parse_dn(prof->subject, &subj)) != 0 ||
	    (r = kr_ca_build_tbs(prof, subj, kr_hsm_pubkey(key), NULL, NULL, serial, NULL, now,
	    &x)) != 0)
		goto out;
	memcpy(p.serial, serial, KR_SERIAL_LEN);
	if ((r = prepare(x, prof, NULL, kr_key_type(key), &p)) != 0)
		goto out;
	x = NULL;	/* owned by p */
	r = finish(&p, key, kr_hsm_pubkey(key), out);
 out:
	X509_free(p.x);
	OPENSSL_free(p.tbs);
	X509_free(x);
	X509_NAME_free(subj);
	return r;
}

int
kr_ca_make_intermediate(const struct kr_profile *prof,
    const struct kr_issuer *root, EVP_PKEY *pub,
    const uint8_t serial[KR_SERIAL_LEN], time_t now, X509 **out)
{
	struct kr_prepared p;
	X509_NAME *subj = NULL;
	X509 *x = NULL;
	int r;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	if (prof->kind != KR_CERT_INTERMEDIATE)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "not an intermediate "
		    "profile");
	if (kr_key_type_of(pub) != prof->algorithm)
		return kr_errf(KR_ERR_POLICY, "intermediate key is %s, profile "
		    "intermediate wants %s",
		    kr_key_type_name(kr_key_type_of(pub)),
		    kr_key_type_name(prof->algorithm));
	if ((r = kr_issuer_check(root)) != 0 ||
	    (r = kr_ca_parse_dn(prof->subject, &subj)) != 0 ||
	    (r = kr_ca_build_tbs(prof, subj, pub, NULL, root->cert, serial, NULL, now,
	    &x)) != 0)
		goto out;
	memcpy(p.serial, serial, KR_SERIAL_LEN);
	if ((r = prepare(x, prof, root->cert, kr_key_type(root->key),
	    &p)) != 0)
		goto out;
	x = NULL;
	r = finish(&p, root->key, X509_get0_pubkey(root->cert),
	    out);
 out:
	X509_free(p.x);
	OPENSSL_free(p.tbs);
	X509_free(x);
	X509_NAME_free(subj);
	return r;
}

int
kr_ca_prepare_device(const struct kr_profile *prof,
    const struct kr_issuer *iss, const struct kr_csr *csr,
    const X509_NAME *subject, const uint8_t serial[KR_SERIAL_LEN],
    const struct kr_hwname *hw, time_t now, struct kr_prepared **out)
{
	struct kr_prepared *p = NULL;
	X509 *x = NULL;
	int r;

	*out = NULL;
	if (prof->kind != KR_CERT_DEVICE)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "not a device profile");
	if (subject == NULL || X509_NAME_entry_count(subject) == 0)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "device subject is "
		    "empty");
	if ((r = kr_csr_check_profile(csr, prof)) != 0)
		return r;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "prepared");
	memcpy(p->serial, serial, KR_SERIAL_LEN);
	/* The CSR's SPKI as it stands (no provider encode/decode). */
	if ((r = kr_ca_build_tbs(prof, subject, NULL,
	    X509_REQ_get_X509_PUBKEY(kr_csr_req(csr)), iss->cert, serial, hw,
	    now, &x)) != 0)
		goto out;
	if ((r = prepare(x, prof, iss->cert, kr_key_type(iss->key), p)) != 0)
		goto out;
	x = NULL;
	*out = p;
	p = NULL;
 out:
	if (r != 0)
		r = kr_errctx(r, "%s", kr_csr_name(csr));
	X509_free(x);
	kr_prepared_free(p);
	return r;
}

int
kr_ca_sign_prepared(struct kr_prepared *p, const struct kr_issuer *iss,
    X509 **out)
{
	int r;

	*out = NULL;
	if ((r = kr_issuer_check(iss)) != 0)
		return r;
	return finish(p, iss->key, X509_get0_pubkey(iss->cert), out);
}

int
kr_ca_sign_prepared_der(struct kr_prepared *p, const struct kr_issuer *iss,
    EVP_PKEY_CTX **verify, uint8_t **der, size_t *len)
{
	int r;

	*der = NULL;
	*len = 0;
	if ((r = kr_issuer_check(iss)) != 0)
		return r;
	return sign_der(p, iss->key, X509_get0_pubkey(iss->cert), verify, der,
	    len);
}

int
kr_ca_issue_device(const struct kr_profile *prof,
    const struct kr_issuer *iss, const struct kr_csr *csr,
    const X509_NAME *subject, const uint8_t serial[KR_SERIAL_LEN],
    const struct kr_hwname *hw, time_t now,
    const struct kr_issue_hook *hook, X509 **out)
{
	struct kr_prepared *p = NULL;
	X509 *x = NULL;
	int r;

	*out = NULL;
	if ((r = kr_ca_prepare_device(prof, iss, csr, subject, serial, hw, now,
	    &p)) != 0)
		return r;
	if (hook != NULL && hook->intent != NULL &&
	    (r = hook->intent(hook->arg, p)) != 0)
		goto out;
	if ((r = kr_ca_sign_prepared(p, iss, &x)) != 0) {
		if (hook != NULL && hook->intent != NULL &&
		    hook->abandoned != NULL)
			hook->abandoned(hook->arg, p, r);
		goto out;
	}
	if (hook != NULL && hook->issued != NULL &&
	    (r = hook->issued(hook->arg, p, x)) != 0)
		goto out;
	*out = x;
	x = NULL;
 out:
	X509_free(x);
	kr_prepared_free(p);
	return r;
}

static int
pem_out(const X509 *x, const uint8_t *der, size_t derlen, char **out,
    size_t *len)
{
	BIO *b = NULL;
	char *data, *copy;
	long n;
	int r = KR_ERR_LIBCRYPTO;

	*out = NULL;
	*len = 0;
	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    !(x != NULL ? PEM_write_bio_X509(b, (X509 *)(uintptr_t)x) :
	    PEM_write_bio(b, PEM_STRING_X509, "", der, (long)derlen)) ||
	    (n = BIO_get_mem_data(b, &data)) <= 0) {
		r = kr_err_ssl("PEM");
		goto out;
	}
	if ((copy = malloc((size_t)n + 1)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "PEM");
		goto out;
	}
	memcpy(copy, data, (size_t)n);
	copy[n] = '\0';
	*out = copy;
	*len = (size_t)n;
	r = 0;
 out:
	BIO_free(b);
	return r;
}

int
kr_ca_cert_pem(const X509 *x, char **out, size_t *len)
{
	return pem_out(x, NULL, 0, out, len);
}

int
kr_ca_der_pem(const uint8_t *der, size_t derlen, char **out, size_t *len)
{
	return pem_out(NULL, der, derlen, out, len);
}

int
kr_ca_load_cert(const char *path, X509 **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *b = NULL;
	int r;

	*out = NULL;
	if ((r = kr_read_file(path, 65536, &buf, &len)) != 0)
		return r;
	if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (*out = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL)
		r = kr_err_ssl("%s: not a PEM certificate", path);
	BIO_free(b);
	free(buf);
	return r;
}

int
kr_ca_cert_sha256(const X509 *x, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n;

	if ((n = i2d_X509(x, &der)) <= 0)
		return kr_err_ssl("encoding certificate");
	kr_sha256(der, (size_t)n, out);
	OPENSSL_free(der);
	return 0;
}
