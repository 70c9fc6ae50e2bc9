/*
 * crl.c - CRL v2: CRL number, AKI, thisUpdate/nextUpdate, revoked serials
 * with reason codes. Lint-signed with a throwaway key first, then signed
 * in the HSM, verified, and the TBS compared byte for byte.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "lib/util.h"

static const struct {
	const char *name;
	int code;
} reasons[] = {
	{ "unspecified", CRL_REASON_UNSPECIFIED },
	{ "keyCompromise", CRL_REASON_KEY_COMPROMISE },
	{ "cACompromise", CRL_REASON_CA_COMPROMISE },
	{ "affiliationChanged", CRL_REASON_AFFILIATION_CHANGED },
	{ "superseded", CRL_REASON_SUPERSEDED },
	{ "cessationOfOperation", CRL_REASON_CESSATION_OF_OPERATION },
	{ "certificateHold", CRL_REASON_CERTIFICATE_HOLD },
	{ "privilegeWithdrawn", CRL_REASON_PRIVILEGE_WITHDRAWN },
	{ "aACompromise", CRL_REASON_AA_COMPROMISE },
};

int
kr_crl_reason_parse(const char *s)
{
	size_t i;

	for (i = 0; i < KR_ARRAY_SIZE(reasons); i++)
		if (strcmp(reasons[i].name, s) == 0)
			return reasons[i].code;
	return -2;
}

int
kr_lint_crl(const X509_CRL *crl, const X509 *issuer)
{
	const ASN1_OCTET_STRING *ski = kr_ca_ski(issuer);
	AUTHORITY_KEYID *akid = NULL;
	ASN1_INTEGER *num = NULL;
	int crit = -1, day = 0, sec = 0, r = 0;

	if (X509_CRL_get_version(crl) != 1)
		return kr_errf(KR_ERR_LINT, "lint crl.version: not a v2 CRL");
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(issuer)) != 0)
		return kr_errf(KR_ERR_LINT, "lint crl.issuer: issuer differs");
	if (X509_CRL_get0_nextUpdate(crl) == NULL ||
	    !ASN1_TIME_diff(&day, &sec, X509_CRL_get0_lastUpdate(crl),
	    X509_CRL_get0_nextUpdate(crl)) || day < 0 || sec < 0 ||
	    (day == 0 && sec == 0))
		return kr_errf(KR_ERR_LINT, "lint crl.validity: nextUpdate not "
		    "after thisUpdate");
	if ((num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit,
	    NULL)) == NULL || crit != 0) {
		r = kr_errf(KR_ERR_LINT, "lint crl.number: missing or "
		    "critical");
		goto out;
	}
	if ((akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier,
	    &crit, NULL)) == NULL || crit != 0 || akid->keyid == NULL ||
	    ski == NULL || ASN1_OCTET_STRING_cmp(akid->keyid, ski) != 0) {
		r = kr_errf(KR_ERR_LINT, "lint crl.aki: AKI missing or not the "
		    "issuer's SKI");
		goto out;
	}
 out:
	ERR_clear_error();
	ASN1_INTEGER_free(num);
	AUTHORITY_KEYID_free(akid);
	return r;
}

static int
add_revoked(X509_CRL *crl, const struct kr_revoked *rv)
{
	X509_REVOKED *e = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;
	BIGNUM *bn = NULL;
	int r = KR_ERR_LIBCRYPTO;

	if (rv->len < 1 || rv->len > sizeof(rv->serial) ||
	    (rv->len > 0 && rv->serial[0] & 0x80))
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "revoked serial must be "
		    "1..20 octets, positive");
	if ((e = X509_REVOKED_new()) == NULL ||
	    (bn = BN_bin2bn(rv->serial, (int)rv->len, NULL)) == NULL ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_REVOKED_set_serialNumber(e, serial) ||
	    (when = ASN1_TIME_adj(NULL, rv->when, 0, 0)) == NULL ||
	    !X509_REVOKED_set_revocationDate(e, when))
		goto ssl;
	if (rv->reason >= 0) {
		if ((reason = ASN1_ENUMERATED_new()) == NULL ||
		    !ASN1_ENUMERATED_set(reason, rv->reason) ||
		    !X509_REVOKED_add1_ext_i2d(e, NID_crl_reason, reason, 0, 0))
			goto ssl;
	}
	if (!X509_CRL_add0_revoked(crl, e))
		goto ssl;
	e = NULL;
	r = 0;
	goto out;
 ssl:
	r = kr_err_ssl("revoked entry");
 out:
	X509_REVOKED_free(e);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(when);
	ASN1_ENUMERATED_free(reason);
	BN_free(bn);
	return r;
}

int
kr_ca_make_crl(const struct kr_issuer *iss, const struct kr_revoked *rv,
    size_t n, uint64_t number, time_t now, int next_days, X509_CRL **out)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *t = NULL;
	ASN1_INTEGER *num = NULL;
	AUTHORITY_KEYID *akid = NULL;
	const ASN1_OCTET_STRING *ski;
	unsigned char *tbs = NULL, *tbs2 = NULL;
	EVP_PKEY *lk;
	BIGNUM *bn = NULL;
	int tlen, tlen2, r;
	size_t i;

	*out = NULL;
	if (next_days < 1 || next_days > 3650)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "CRL nextUpdate: 1..3650 "
		    "days");
	if ((r = kr_issuer_check(iss)) != 0)
		return r;
	if ((ski = kr_ca_ski(iss->cert)) == NULL)
		return kr_errf(KR_ERR_LINT, "issuer certificate has no SKI");
	if ((crl = X509_CRL_new()) == NULL || !X509_CRL_set_version(crl, 1) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(iss->cert)) ||
	    (t = ASN1_TIME_adj(NULL, now, 0, 0)) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, t))
		goto ssl;
	ASN1_TIME_free(t);
	if ((t = ASN1_TIME_adj(NULL, now, next_days, 0)) == NULL ||
	    !X509_CRL_set1_nextUpdate(crl, t))
		goto ssl;
	for (i = 0; i < n; i++)
		if ((r = add_revoked(crl, &rv[i])) != 0)
			goto out;
	if (!X509_CRL_sort(crl) ||
	    (bn = BN_new()) == NULL || !BN_set_word(bn, (BN_ULONG)number) ||
	    (num = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) ||
	    (akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_dup(ski)) == NULL ||
	    !X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0,
	    0))
		goto ssl;
	/* Throwaway-key signature, lint, remember the TBS. */
	if ((r = kr_ca_lint_key(kr_key_type(iss->key), &lk)) != 0)
		goto out;
	if (X509_CRL_sign(crl, lk, kr_ca_md(kr_key_type(iss->key))) <= 0)
		goto ssl;
	if ((r = kr_lint_crl(crl, iss->cert)) != 0)
		goto out;
	if ((tlen = i2d_re_X509_CRL_tbs(crl, &tbs)) <= 0)
		goto ssl;
	if ((r = kr_ca_hsm_sign(iss->key, NULL, &crl)) != 0)
		goto out;
	if (X509_CRL_verify(crl, X509_get0_pubkey(iss->cert)) != 1) {
		ERR_clear_error();
		r = kr_errf(KR_ERR_SIGNATURE, "CRL signature does not verify "
		    "with the issuer key");
		goto out;
	}
	if ((tlen2 = i2d_re_X509_CRL_tbs(crl, &tbs2)) <= 0)
		goto ssl;
	if (tlen2 != tlen || memcmp(tbs, tbs2, (size_t)tlen) != 0) {
		r = kr_errf(KR_ERR_LINT, "signed CRL TBS differs from the "
		    "linted TBS");
		goto out;
	}
	if ((r = kr_lint_crl(crl, iss->cert)) != 0)
		goto out;
	*out = crl;
	crl = NULL;
	r = 0;
	goto out;
 ssl:
	r = kr_err_ssl("building CRL");
 out:
	OPENSSL_free(tbs);
	OPENSSL_free(tbs2);
	AUTHORITY_KEYID_free(akid);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	BN_free(bn);
	X509_CRL_free(crl);
	return r;
}
