/*
 * lint.c - our own pre- and post-issuance certificate lints: RFC 5280
 * structure and the keyroom profiles (root, intermediate, device). Each
 * failure names the lint: "lint ku.ca: keyCertSign missing".
 */
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "lib/util.h"

#define LINT(name, ...) kr_errf(KR_ERR_LINT, "lint " name ": " __VA_ARGS__)

/* Extensions a keyroom certificate may carry. */
static const int allowed_ext[] = {
	NID_basic_constraints, NID_key_usage, NID_ext_key_usage,
	NID_subject_key_identifier, NID_authority_key_identifier,
	NID_subject_alt_name, NID_crl_distribution_points, NID_info_access,
};

static int
time_ok(const ASN1_TIME *t, const char *which, struct tm *tm)
{
	int year;

	if (t == NULL || !ASN1_TIME_to_tm(t, tm))
		return LINT("validity.encoding", "%s unparsable", which);
	year = tm->tm_year + 1900;
	/* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime after. */
	if (year < 2050 && ASN1_STRING_type(t) != V_ASN1_UTCTIME)
		return LINT("validity.encoding", "%s in %d must be UTCTime",
		    which, year);
	if (year >= 2050 && ASN1_STRING_type(t) != V_ASN1_GENERALIZEDTIME)
		return LINT("validity.encoding", "%s in %d must be "
		    "GeneralizedTime", which, year);
	if (ASN1_TIME_check(t) != 1)
		return LINT("validity.encoding", "%s malformed", which);
	return 0;
}

static int
lint_serial(const X509 *x)
{
	const ASN1_INTEGER *s = X509_get0_serialNumber(x);
	int len;

	if (s == NULL)
		return LINT("serial.present", "no serial");
	if (ASN1_STRING_type(s) != V_ASN1_INTEGER)
		return LINT("serial.positive", "serial is negative");
	len = ASN1_STRING_length(s);
	/* Content octets of the DER INTEGER: a leading 0x00 counts. */
	if (len < 1)
		return LINT("serial.length", "empty serial");
	if (len + (ASN1_STRING_get0_data(s)[0] & 0x80 ? 1 : 0) > 20)
		return LINT("serial.length", "serial longer than 20 octets");
	if (len == 1 && ASN1_STRING_get0_data(s)[0] == 0)
		return LINT("serial.positive", "serial is zero");
	return 0;
}

static int
lint_ext_set(const X509 *x)
{
	const X509_EXTENSION *e;
	int i, j, n, nid, seen[KR_ARRAY_SIZE(allowed_ext)];

	memset(seen, 0, sizeof(seen));
	n = X509_get_ext_count(x);
	for (i = 0; i < n; i++) {
		e = X509_get_ext(x, i);
		nid = OBJ_obj2nid(X509_EXTENSION_get_object(
		    (X509_EXTENSION *)(uintptr_t)e));
		for (j = 0; j < (int)KR_ARRAY_SIZE(allowed_ext); j++)
			if (allowed_ext[j] == nid)
				break;
		if (j == (int)KR_ARRAY_SIZE(allowed_ext))
			return LINT("ext.unknown", "unexpected extension %s",
			    nid == NID_undef ? "(unknown OID)" :
			    OBJ_nid2sn(nid));
		if (seen[j]++)
			return LINT("ext.duplicate", "duplicate extension %s",
			    OBJ_nid2sn(nid));
	}
	return 0;
}

static int
ext_crit(const X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);

	if (i < 0)
		return -1;
	return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

/*
 * The extensions are decoded one by one here, not through OpenSSL's
 * extension cache (X509_get_key_usage() and friends), which also hashes
 * the whole certificate: a lint runs on every certificate of a batch.
 */

/* keyUsage as KU_* bits (first two octets of the BIT STRING). */
static int
key_usage(const X509 *x, uint32_t *ku)
{
	ASN1_BIT_STRING *bs;

	if ((bs = X509_get_ext_d2i(x, NID_key_usage, NULL, NULL)) == NULL) {
		ERR_clear_error();
		return LINT("ku.decode", "keyUsage malformed");
	}
	*ku = 0;
	if (ASN1_STRING_length(bs) > 0)
		*ku = ASN1_STRING_get0_data(bs)[0];
	if (ASN1_STRING_length(bs) > 1)
		*ku |= (uint32_t)ASN1_STRING_get0_data(bs)[1] << 8;
	ASN1_BIT_STRING_free(bs);
	return 0;
}

/* extendedKeyUsage as XKU_SSL_CLIENT / XKU_SSL_SERVER, and *other. */
static int
ext_key_usage(const X509 *x, uint32_t *xku, int *other)
{
	EXTENDED_KEY_USAGE *eku;
	int i;

	if ((eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL,
	    NULL)) == NULL) {
		ERR_clear_error();
		return LINT("eku.decode", "extendedKeyUsage malformed");
	}
	*xku = 0;
	*other = 0;
	for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++)
		switch (OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i))) {
		case NID_client_auth:
			*xku |= XKU_SSL_CLIENT;
			break;
		case NID_server_auth:
			*xku |= XKU_SSL_SERVER;
			break;
		default:
			*other = 1;
		}
	EXTENDED_KEY_USAGE_free(eku);
	return 0;
}

static int
lint_bc_ku(const X509 *x, const struct kr_profile *prof)
{
	BASIC_CONSTRAINTS *bc = NULL;
	uint32_t ku = 0;
	long pathlen;
	int ca, crit, r = 0;

	if ((crit = ext_crit(x, NID_basic_constraints)) < 0)
		return LINT("bc.present", "basicConstraints missing");
	if (!crit)
		return LINT("bc.critical", "basicConstraints not critical");
	if ((bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL,
	    NULL)) == NULL) {
		ERR_clear_error();
		return LINT("bc.decode", "basicConstraints malformed");
	}
	ca = bc->ca != 0;
	pathlen = bc->pathlen != NULL ? ASN1_INTEGER_get(bc->pathlen) : -1;
	BASIC_CONSTRAINTS_free(bc);
	if (prof->kind == KR_CERT_DEVICE && ca)
		return LINT("bc.ca", "device certificate with CA:TRUE");
	if (prof->kind != KR_CERT_DEVICE && !ca)
		return LINT("bc.ca", "CA certificate without CA:TRUE");
	if (prof->kind == KR_CERT_INTERMEDIATE && pathlen != 0)
		return LINT("bc.pathlen", "intermediate pathlen must be 0");
	if (prof->kind == KR_CERT_DEVICE && pathlen != -1)
		return LINT("bc.pathlen", "pathlen on a non-CA certificate");

	if ((crit = ext_crit(x, NID_key_usage)) < 0)
		return LINT("ku.present", "keyUsage missing");
	if (!crit)
		return LINT("ku.critical", "keyUsage not critical");
	if ((r = key_usage(x, &ku)) != 0)
		return r;
	if (ca) {
		if (!(ku & KU_KEY_CERT_SIGN) || !(ku & KU_CRL_SIGN))
			return LINT("ku.ca", "CA without keyCertSign+cRLSign");
		if (ku & ~(uint32_t)(KU_KEY_CERT_SIGN | KU_CRL_SIGN |
		    KU_DIGITAL_SIGNATURE))
			return LINT("ku.ca", "CA key usage beyond keyCertSign, "
			    "cRLSign, digitalSignature");
	} else {
		if (ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN))
			return LINT("ku.ca", "keyCertSign/cRLSign without "
			    "CA:TRUE");
		if (!(ku & KU_DIGITAL_SIGNATURE))
			return LINT("ku.device", "digitalSignature missing");
		if (!!(ku & KU_KEY_AGREEMENT) != !!prof->key_agreement)
			return LINT("ku.device", "keyAgreement %s by profile",
			    prof->key_agreement ? "required" : "not allowed");
		if (ku & ~(uint32_t)(KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT))
			return LINT("ku.device", "key usage beyond "
			    "digitalSignature, keyAgreement");
	}
	return r;
}

static int
lint_eku(const X509 *x, const struct kr_profile *prof)
{
	uint32_t xku = 0;
	int other = 0, r, crit = ext_crit(x, NID_ext_key_usage);

	if (prof->kind != KR_CERT_DEVICE) {
		if (crit >= 0)
			return LINT("eku.ca", "extendedKeyUsage on a CA");
		return 0;
	}
	if (crit < 0)
		return LINT("eku.present", "extendedKeyUsage missing");
	if (crit)
		return LINT("eku.critical", "extendedKeyUsage critical");
	if ((r = ext_key_usage(x, &xku, &other)) != 0)
		return r;
	if (!(xku & XKU_SSL_CLIENT))
		return LINT("eku.client", "clientAuth missing");
	if (!!(xku & XKU_SSL_SERVER) != !!prof->server_auth)
		return LINT("eku.server", "serverAuth %s by profile",
		    prof->server_auth ? "required" : "not allowed");
	if (other)
		return LINT("eku.extra", "unexpected extended key usage");
	return 0;
}

static int
lint_keyids(const X509 *x, const struct kr_profile *prof, const X509 *issuer)
{
	ASN1_OCTET_STRING *ski = NULL;
	AUTHORITY_KEYID *akid = NULL;
	const ASN1_OCTET_STRING *want;
	int crit, r = 0;

	if ((crit = ext_crit(x, NID_subject_key_identifier)) < 0)
		return LINT("ski.present", "subjectKeyIdentifier missing");
	if (crit)
		return LINT("ski.critical", "subjectKeyIdentifier critical");
	if ((ski = X509_get_ext_d2i(x, NID_subject_key_identifier, NULL,
	    NULL)) == NULL || ASN1_STRING_length(ski) == 0) {
		r = LINT("ski.decode", "subjectKeyIdentifier malformed");
		goto out;
	}
	crit = ext_crit(x, NID_authority_key_identifier);
	if (crit > 0) {
		r = LINT("aki.critical", "authorityKeyIdentifier critical");
		goto out;
	}
	if (crit < 0) {
		if (prof->kind != KR_CERT_ROOT)
			r = LINT("aki.present", "authorityKeyIdentifier "
			    "missing");
		goto out;
	}
	akid = X509_get_ext_d2i(x, NID_authority_key_identifier, NULL, NULL);
	if (prof->kind == KR_CERT_ROOT) {
		if (akid == NULL || akid->keyid == NULL ||
		    ASN1_OCTET_STRING_cmp(akid->keyid, ski) != 0)
			r = LINT("aki.root", "root AKI differs from its SKI");
		goto out;
	}
	want = kr_ca_ski(issuer);
	if (akid == NULL || akid->keyid == NULL || want == NULL ||
	    ASN1_OCTET_STRING_cmp(akid->keyid, want) != 0)
		r = LINT("aki.match", "authorityKeyIdentifier differs from "
		    "the issuer's subjectKeyIdentifier");
 out:
	ERR_clear_error();
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(akid);
	return r;
}

static int
lint_san(const X509 *x, const struct kr_profile *prof)
{
	GENERAL_NAMES *gens = NULL;
	KR_HWMODNAME *h = NULL;
	ASN1_OBJECT *want = NULL;
	int i, crit, found = 0, r = 0, k;

	crit = ext_crit(x, NID_subject_alt_name);
	if (prof->kind != KR_CERT_DEVICE || !prof->hw_module_name) {
		if (crit >= 0)
			return LINT("san.unexpected", "subjectAltName not in "
			    "profile");
		return 0;
	}
	if (crit < 0)
		return LINT("san.present", "subjectAltName with "
		    "HardwareModuleName missing");
	if (crit)
		return LINT("san.critical", "subjectAltName critical with a "
		    "non-empty subject");
	if ((gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL)) == NULL) {
		ERR_clear_error();
		return LINT("san.decode", "subjectAltName malformed");
	}
	if ((want = OBJ_txt2obj(prof->hw_type, 1)) == NULL) {
		ERR_clear_error();
		r = LINT("san.hwtype", "profile hw_type '%s' not an OID",
		    prof->hw_type);
		goto out;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		k = kr_hwname_decode(sk_GENERAL_NAME_value(gens, i), &h);
		if (k < 0) {
			r = LINT("san.hwname", "%s", kr_err_detail());
			goto out;
		}
		if (k == 0)
			continue;
		if (OBJ_cmp(h->hw_type, want) != 0) {
			r = LINT("san.hwtype", "hwType differs from profile");
			goto out;
		}
		if (ASN1_STRING_length(h->hw_serial) < 1 ||
		    ASN1_STRING_length(h->hw_serial) > KR_HWSERIAL_MAX) {
			r = LINT("san.hwserial", "hwSerialNum length %d",
			    ASN1_STRING_length(h->hw_serial));
			goto out;
		}
		KR_HWMODNAME_free(h);
		h = NULL;
		found++;
	}
	if (found != 1)
		r = LINT("san.hwname", "%d HardwareModuleName entries, want 1",
		    found);
 out:
	KR_HWMODNAME_free(h);
	ASN1_OBJECT_free(want);
	GENERAL_NAMES_free(gens);
	return r;
}

/* Is gen exactly the URI url? */
static int
uri_is(const GENERAL_NAME *gen, const char *url)
{
	const ASN1_IA5STRING *u;
	int type;

	u = GENERAL_NAME_get0_value(gen, &type);
	return type == GEN_URI && u != NULL &&
	    (size_t)ASN1_STRING_length(u) == strlen(url) &&
	    memcmp(ASN1_STRING_get0_data(u), url, strlen(url)) == 0;
}

/* The CDP is one full-name URI, the profile's. */
static int
cdp_is(const X509 *x, const char *url)
{
	STACK_OF(DIST_POINT) *dps;
	DIST_POINT *dp;
	int ok = 0;

	if ((dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL,
	    NULL)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	if (sk_DIST_POINT_num(dps) == 1 &&
	    (dp = sk_DIST_POINT_value(dps, 0))->distpoint != NULL &&
	    dp->distpoint->type == 0 && dp->reasons == NULL &&
	    dp->CRLissuer == NULL &&
	    sk_GENERAL_NAME_num(dp->distpoint->name.fullname) == 1)
		ok = uri_is(sk_GENERAL_NAME_value(dp->distpoint->name.fullname,
		    0), url);
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	return ok;
}

/* The AIA is one caIssuers URI, the profile's. */
static int
aia_is(const X509 *x, const char *url)
{
	AUTHORITY_INFO_ACCESS *aia;
	ACCESS_DESCRIPTION *ad;
	int ok = 0;

	if ((aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	if (sk_ACCESS_DESCRIPTION_num(aia) == 1 &&
	    OBJ_obj2nid((ad = sk_ACCESS_DESCRIPTION_value(aia, 0))->method) ==
	    NID_ad_ca_issuers)
		ok = uri_is(ad->location, url);
	AUTHORITY_INFO_ACCESS_free(aia);
	return ok;
}

/* CDP / AIA present exactly when the profile names a URL, and it. */
static int
lint_urls(const X509 *x, const struct kr_profile *prof)
{
	int want_cdp = prof->kind != KR_CERT_ROOT && prof->crl_url[0] != '\0';
	int want_aia = prof->kind != KR_CERT_ROOT && prof->aia_url[0] != '\0';
	int cdp = ext_crit(x, NID_crl_distribution_points);
	int aia = ext_crit(x, NID_info_access);

	if ((cdp >= 0) != want_cdp)
		return LINT("cdp.profile", "CRL distribution point %s",
		    want_cdp ? "missing" : "not in profile");
	if ((aia >= 0) != want_aia)
		return LINT("aia.profile", "authorityInfoAccess %s",
		    want_aia ? "missing" : "not in profile");
	if (cdp > 0 || aia > 0)
		return LINT("ext.critical", "CDP/AIA must not be critical");
	if (want_cdp && !cdp_is(x, prof->crl_url))
		return LINT("cdp.profile", "CRL distribution point is not "
		    "exactly URI %s", prof->crl_url);
	if (want_aia && !aia_is(x, prof->aia_url))
		return LINT("aia.profile", "authorityInfoAccess is not exactly "
		    "caIssuers URI %s", prof->aia_url);
	return 0;
}

int
kr_lint_cert(const X509 *x, const struct kr_profile *prof,
    const X509 *issuer)
{
	const X509_ALGOR *outer = NULL, *inner;
	const ASN1_BIT_STRING *sig = NULL;
	const X509 *iss = issuer != NULL ? issuer : x;
	enum kr_key_type kt, it;
	struct tm nb, na;
	int r, diff_day = 0, diff_sec = 0;

	if (X509_get_version(x) != 2)
		return LINT("version", "not a v3 certificate");
	if ((r = lint_serial(x)) != 0)
		return r;
	X509_get0_signature(&sig, &outer, x);
	inner = X509_get0_tbs_sigalg(x);
	if (outer == NULL || inner == NULL || X509_ALGOR_cmp(outer, inner) != 0)
		return LINT("sigalg.match", "outer and TBS signature "
		    "algorithms differ");
	it = kr_key_type_of(X509_get0_pubkey(iss));
	if (OBJ_obj2nid(inner->algorithm) != kr_ca_sig_nid(it))
		return LINT("sigalg.issuer", "signature algorithm %s does not "
		    "fit the issuer's %s key",
		    OBJ_nid2sn(OBJ_obj2nid(inner->algorithm)),
		    kr_key_type_name(it));
	if ((r = time_ok(X509_get0_notBefore(x), "notBefore", &nb)) != 0 ||
	    (r = time_ok(X509_get0_notAfter(x), "notAfter", &na)) != 0)
		return r;
	if (!ASN1_TIME_diff(&diff_day, &diff_sec, X509_get0_notBefore(x),
	    X509_get0_notAfter(x)) || diff_day < 0 || diff_sec < 0 ||
	    (diff_day == 0 && diff_sec == 0))
		return LINT("validity.order", "notAfter is not after "
		    "notBefore");
	if (X509_NAME_entry_count(X509_get_subject_name(x)) == 0)
		return LINT("subject.empty", "empty subject");
	if (X509_NAME_entry_count(X509_get_issuer_name(x)) == 0)
		return LINT("issuer.empty", "empty issuer");
	if (X509_NAME_cmp(X509_get_issuer_name(x),
	    X509_get_subject_name(iss)) != 0)
		return LINT("issuer.match", "issuer name differs from the "
		    "issuer's subject");
	if (X509_get0_extensions(x) == NULL)
		return LINT("ext.present", "no extensions");
	if ((r = lint_ext_set(x)) != 0 || (r = lint_bc_ku(x, prof)) != 0 ||
	    (r = lint_eku(x, prof)) != 0 ||
	    (r = lint_keyids(x, prof, iss)) != 0 ||
	    (r = lint_san(x, prof)) != 0 || (r = lint_urls(x, prof)) != 0)
		return r;
	kt = kr_spki_key_type(X509_get_X509_PUBKEY(x));
	if (kt == KR_KEY_NONE || !(prof->algorithms & KR_KEY_BIT(kt)))
		return LINT("key.profile", "subject key %s not allowed by the "
		    "profile", kr_key_type_name(kt));
	if (prof->kind != KR_CERT_DEVICE && kt != prof->algorithm)
		return LINT("key.profile", "CA key %s, profile wants %s",
		    kr_key_type_name(kt), kr_key_type_name(prof->algorithm));
	return 0;
}
