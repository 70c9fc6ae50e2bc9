/*
 * asn1.c - OpenSSL ASN.1 templates keyroom needs beyond OpenSSL's own:
 * RFC 4108 HardwareModuleName, and the SEQUENCE { tbs, algid, BIT STRING }
 * of a signed certificate/CRL whose signature came from C_Sign. Also the
 * throwaway lint keys and the digest per key type.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "ca/ca_int.h"
#include "lib/util.h"

ASN1_SEQUENCE(KR_HWMODNAME) = {
	ASN1_SIMPLE(KR_HWMODNAME, hw_type, ASN1_OBJECT),
	ASN1_SIMPLE(KR_HWMODNAME, hw_serial, ASN1_OCTET_STRING),
} ASN1_SEQUENCE_END(KR_HWMODNAME)
IMPLEMENT_ASN1_FUNCTIONS(KR_HWMODNAME)

/* Certificate / CertificateList with the TBS kept as its DER. */
typedef struct {
	ASN1_TYPE *tbs;
	X509_ALGOR *alg;
	ASN1_BIT_STRING *sig;
} KR_SIGNED;
ASN1_SEQUENCE(KR_SIGNED) = {
	ASN1_SIMPLE(KR_SIGNED, tbs, ASN1_ANY),
	ASN1_SIMPLE(KR_SIGNED, alg, X509_ALGOR),
	ASN1_SIMPLE(KR_SIGNED, sig, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(KR_SIGNED)
DECLARE_ASN1_FUNCTIONS(KR_SIGNED)
IMPLEMENT_ASN1_FUNCTIONS(KR_SIGNED)

int
kr_hwname_general_name(const char *hw_type, const uint8_t *serial, size_t len,
    GENERAL_NAME **out)
{
	KR_HWMODNAME *h = NULL;
	ASN1_TYPE *val = NULL;
	ASN1_STRING *seq = NULL;
	ASN1_OBJECT *oid = NULL;
	GENERAL_NAME *gen = NULL;
	unsigned char *der = NULL;
	int n, r = KR_ERR_LIBCRYPTO;

	*out = NULL;
	if (len == 0 || len > KR_HWSERIAL_MAX)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "hardware serial of "
		    "%zu bytes (1..%d)", len, KR_HWSERIAL_MAX);
	if ((h = KR_HWMODNAME_new()) == NULL)
		goto ssl;
	ASN1_OBJECT_free(h->hw_type);
	if ((h->hw_type = OBJ_txt2obj(hw_type, 1)) == NULL) {
		r = kr_errf(KR_ERR_CONFIG, "hw_type '%s' is not an OID",
		    hw_type);
		ERR_clear_error();
		goto out;
	}
	if (!ASN1_OCTET_STRING_set(h->hw_serial, serial, (int)len) ||
	    (n = i2d_KR_HWMODNAME(h, &der)) <= 0 ||
	    (seq = ASN1_STRING_new()) == NULL ||
	    !ASN1_STRING_set(seq, der, n) ||
	    (val = ASN1_TYPE_new()) == NULL)
		goto ssl;
	ASN1_TYPE_set(val, V_ASN1_SEQUENCE, seq);
	seq = NULL;
	if ((oid = OBJ_txt2obj(KR_OID_HW_MODULE_NAME, 1)) == NULL ||
	    (gen = GENERAL_NAME_new()) == NULL ||
	    !GENERAL_NAME_set0_othername(gen, oid, val))
		goto ssl;
	oid = NULL;
	val = NULL;
	*out = gen;
	gen = NULL;
	r = 0;
	goto out;
 ssl:
	r = kr_err_ssl("HardwareModuleName");
 out:
	GENERAL_NAME_free(gen);
	ASN1_OBJECT_free(oid);
	ASN1_TYPE_free(val);
	ASN1_STRING_free(seq);
	OPENSSL_free(der);
	KR_HWMODNAME_free(h);
	return r;
}

int
kr_hwname_decode(const GENERAL_NAME *gen, KR_HWMODNAME **out)
{
	ASN1_OBJECT *oid = NULL;
	ASN1_TYPE *val = NULL;
	const unsigned char *p;
	KR_HWMODNAME *h;
	char buf[64];
	long len;

	*out = NULL;
	if (!GENERAL_NAME_get0_otherName(gen, &oid, &val))
		return 0;
	if (OBJ_obj2txt(buf, sizeof(buf), oid, 1) <= 0 ||
	    strcmp(buf, KR_OID_HW_MODULE_NAME) != 0)
		return 0;
	if (val == NULL || val->type != V_ASN1_SEQUENCE)
		return kr_errf(KR_ERR_FORMAT, "HardwareModuleName is not a "
		    "SEQUENCE");
	p = val->value.sequence->data;
	len = val->value.sequence->length;
	if ((h = d2i_KR_HWMODNAME(NULL, &p, len)) == NULL ||
	    p != val->value.sequence->data + len) {
		KR_HWMODNAME_free(h);
		ERR_clear_error();
		return kr_errf(KR_ERR_FORMAT, "HardwareModuleName malformed");
	}
	*out = h;
	return 1;
}

int
kr_asn1_signed(const uint8_t *tbs, size_t tbslen, const X509_ALGOR *alg,
    const uint8_t *sig, size_t siglen, uint8_t **der, size_t *derlen)
{
	KR_SIGNED *s = NULL;
	ASN1_STRING *seq = NULL;
	unsigned char *out = NULL;
	int n, r = KR_ERR_LIBCRYPTO;

	*der = NULL;
	*derlen = 0;
	if ((s = KR_SIGNED_new()) == NULL ||
	    (seq = ASN1_STRING_new()) == NULL ||
	    !ASN1_STRING_set(seq, tbs, (int)tbslen))
		goto ssl;
	ASN1_TYPE_set(s->tbs, V_ASN1_SEQUENCE, seq);
	seq = NULL;
	X509_ALGOR_free(s->alg);
	if ((s->alg = X509_ALGOR_dup(alg)) == NULL ||
	    !ASN1_BIT_STRING_set(s->sig, (unsigned char *)
	    (uintptr_t)sig, (int)siglen))
		goto ssl;
	/* No unused bits (as ASN1_item_sign sets it). */
	s->sig->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	s->sig->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	if ((n = i2d_KR_SIGNED(s, &out)) <= 0)
		goto ssl;
	*der = out;
	*derlen = (size_t)n;
	out = NULL;
	r = 0;
	goto out;
 ssl:
	r = kr_err_ssl("assembling signed object");
 out:
	OPENSSL_free(out);
	ASN1_STRING_free(seq);
	KR_SIGNED_free(s);
	return r;
}

int
kr_ca_sig_nid(enum kr_key_type t)
{
	switch (t) {
	case KR_KEY_P256:
		return NID_ecdsa_with_SHA256;
	case KR_KEY_P384:
		return NID_ecdsa_with_SHA384;
	case KR_KEY_RSA3072:
		return NID_sha256WithRSAEncryption;
	case KR_KEY_ED25519:
		return NID_ED25519;
	default:
		return NID_undef;
	}
}

const EVP_MD *
kr_ca_md(enum kr_key_type t)
{
	switch (t) {
	case KR_KEY_P384:
		return EVP_sha384();
	case KR_KEY_ED25519:
		return NULL;
	default:
		return EVP_sha256();
	}
}

/*
 * Set x's signature AlgorithmIdentifier (in the TBS and outside it) for
 * an issuer key of type t, as X509_sign would (ECDSA and Ed25519 without
 * parameters, RSA PKCS#1 v1.5 with NULL), and an empty placeholder
 * signature: the TBS can then be encoded and linted without a throwaway
 * signature; the certificate that leaves is assembled from that TBS and
 * the HSM's signature. OpenSSL 3.0 has no setter for the TBS algorithm,
 * so this writes through its getters' pointers, as X509_sign does
 * internally.
 */
int
kr_ca_set_sigalg(X509 *x, enum kr_key_type t)
{
	X509_ALGOR *algs[2];
	const X509_ALGOR *outer = NULL;
	const ASN1_BIT_STRING *sig = NULL;
	int nid = kr_ca_sig_nid(t), i;

	if (nid == NID_undef)
		return kr_errf(KR_ERR_UNSUPPORTED, "signature algorithm for "
		    "key type %d", (int)t);
	X509_get0_signature(&sig, &outer, x);
	algs[0] = (X509_ALGOR *)(uintptr_t)X509_get0_tbs_sigalg(x);
	algs[1] = (X509_ALGOR *)(uintptr_t)outer;
	for (i = 0; i < 2; i++)
		if (algs[i] == NULL || !X509_ALGOR_set0(algs[i],
		    OBJ_nid2obj(nid), t == KR_KEY_RSA3072 ? V_ASN1_NULL :
		    V_ASN1_UNDEF, NULL))
			return kr_err_ssl("signature algorithm");
	if (sig == NULL || !ASN1_BIT_STRING_set((ASN1_BIT_STRING *)
	    (uintptr_t)sig, NULL, 0))
		return kr_err_ssl("placeholder signature");
	return 0;
}

/*
 * Cached throwaway keys, made once per process: each type's key is
 * generated under its own pthread_once, so the threads of a batch can ask
 * for it concurrently without a warm-up and without a lock per call (an
 * EVP_PKEY is then only read: signing with it is thread-safe). They live
 * until exit.
 */
static EVP_PKEY *lint_keys[KR_KEY_ED25519 + 1];
static pthread_once_t lint_once[KR_KEY_ED25519 + 1] = {
	PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
	PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
};

static void
lint_gen(enum kr_key_type t)
{
	switch (t) {
	case KR_KEY_P256:
		lint_keys[t] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case KR_KEY_P384:
		lint_keys[t] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case KR_KEY_RSA3072:
		lint_keys[t] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
		    (size_t)3072);
		break;
	case KR_KEY_ED25519:
		lint_keys[t] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	default:
		break;
	}
}

static void lint_gen_p256(void) { lint_gen(KR_KEY_P256); }
static void lint_gen_p384(void) { lint_gen(KR_KEY_P384); }
static void lint_gen_rsa(void) { lint_gen(KR_KEY_RSA3072); }
static void lint_gen_ed25519(void) { lint_gen(KR_KEY_ED25519); }

int
kr_ca_lint_key(enum kr_key_type t, EVP_PKEY **out)
{
	static void (*const gen[KR_KEY_ED25519 + 1])(void) = {
		[KR_KEY_P256] = lint_gen_p256,
		[KR_KEY_P384] = lint_gen_p384,
		[KR_KEY_RSA3072] = lint_gen_rsa,
		[KR_KEY_ED25519] = lint_gen_ed25519,
	};

	*out = NULL;
	if (t <= KR_KEY_NONE || t > KR_KEY_ED25519)
		return kr_errf(KR_ERR_UNSUPPORTED, "lint key type %d", (int)t);
	if (pthread_once(&lint_once[t], gen[t]) != 0 || lint_keys[t] == NULL)
		return kr_err_ssl("throwaway %s key", kr_key_type_name(t));
	*out = lint_keys[t];
	return 0;
}

enum kr_key_type
kr_spki_key_type(X509_PUBKEY *pub)
{
	const ASN1_OBJECT *obj = NULL;
	const unsigned char *pk = NULL;
	const void *pval = NULL;
	X509_ALGOR *alg = NULL;
	int pklen = 0, ptype = 0, nid;

	if (pub == NULL ||
	    !X509_PUBKEY_get0_param((ASN1_OBJECT **)(uintptr_t)&obj, &pk,
	    &pklen, &alg, pub))
		return KR_KEY_NONE;
	switch (OBJ_obj2nid(obj)) {
	case NID_ED25519:
		return pklen == 32 ? KR_KEY_ED25519 : KR_KEY_NONE;
	case NID_X9_62_id_ecPublicKey:
		X509_ALGOR_get0(NULL, &ptype, &pval, alg);
		if (ptype != V_ASN1_OBJECT)	/* named curves only */
			return KR_KEY_NONE;
		nid = OBJ_obj2nid(pval);
		if (nid == NID_X9_62_prime256v1 && ((pklen == 65 &&
		    pk[0] == 4) || (pklen == 33 && (pk[0] | 1) == 3)))
			return KR_KEY_P256;
		if (nid == NID_secp384r1 && ((pklen == 97 && pk[0] == 4) ||
		    (pklen == 49 && (pk[0] | 1) == 3)))
			return KR_KEY_P384;
		return KR_KEY_NONE;
	case NID_rsaEncryption:
		/* The modulus size needs the key decoded (cached in pub). */
		return kr_key_type_of(X509_PUBKEY_get0(pub));
	default:
		return KR_KEY_NONE;
	}
}

int
kr_spki_copy(X509 *x, X509_PUBKEY *from)
{
	const ASN1_OBJECT *obj = NULL;
	const unsigned char *pk = NULL;
	const void *pval = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_OBJECT *o = NULL;
	void *pv = NULL;
	unsigned char *enc = NULL;
	int pklen = 0, ptype = 0;

	if (!X509_PUBKEY_get0_param((ASN1_OBJECT **)(uintptr_t)&obj, &pk,
	    &pklen, &alg, from) || pklen <= 0)
		return kr_err_ssl("SPKI");
	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	if ((o = OBJ_dup(obj)) == NULL)
		goto fail;
	switch (ptype) {
	case V_ASN1_OBJECT:
		if ((pv = OBJ_dup(pval)) == NULL)
			goto fail;
		break;
	case V_ASN1_NULL:
	case V_ASN1_UNDEF:
		break;
	default:
		ASN1_OBJECT_free(o);
		return kr_errf(KR_ERR_UNSUPPORTED, "SPKI with explicit "
		    "parameters");
	}
	if ((enc = OPENSSL_memdup(pk, (size_t)pklen)) == NULL ||
	    !X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), o, ptype, pv, enc,
	    pklen))
		goto fail;
	return 0;
 fail:
	OPENSSL_free(enc);
	ASN1_OBJECT_free(pv);
	ASN1_OBJECT_free(o);
	return kr_err_ssl("copying SPKI");
}

const ASN1_OCTET_STRING *
kr_ca_ski(const X509 *x)
{
	return X509_get0_subject_key_id((X509 *)(uintptr_t)x);
}
