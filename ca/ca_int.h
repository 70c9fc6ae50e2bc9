/*
 * ca_int.h - internal to ca/: ASN.1 templates (HardwareModuleName,
 * signed-object assembly), throwaway lint keys, digests per key type.
 */
#ifndef KR_CA_INT_H
#define KR_CA_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1t.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"

/* HardwareModuleName ::= SEQUENCE { hwType OID, hwSerialNum OCTET STRING } */
typedef struct {
	ASN1_OBJECT *hw_type;
	ASN1_OCTET_STRING *hw_serial;
} KR_HWMODNAME;
DECLARE_ASN1_FUNCTIONS(KR_HWMODNAME)

/*
 * A GENERAL_NAME otherName holding a HardwareModuleName. *out new.
 */
int kr_hwname_general_name(const char *hw_type, const uint8_t *serial,
    size_t len, GENERAL_NAME **out) KR_WUR;
/*
 * If gen is an otherName id-on-hardwareModuleName, decode it (*out new)
 * and return 1; 0 if it is another kind of name; <0 if malformed.
 */
int kr_hwname_decode(const GENERAL_NAME *gen, KR_HWMODNAME **out);

/*
 * Assemble SEQUENCE { tbs, alg (copied), BIT STRING sig } - a Certificate
 * or CertificateList - into *der (OPENSSL_malloc'd).
 */
int kr_asn1_signed(const uint8_t *tbs, size_t tbslen, const X509_ALGOR *alg,
    const uint8_t *sig, size_t siglen, uint8_t **der, size_t *derlen) KR_WUR;

/* Signature algorithm NID of an issuer key type. */
int kr_ca_sig_nid(enum kr_key_type t);

/* Digest an issuer key type signs with (NULL for Ed25519). */
const EVP_MD *kr_ca_md(enum kr_key_type t);

/*
 * 1 if sig is pub's signature (key type t) over tbs, else 0. cache (may
 * be NULL) keeps a verify context for pub between calls of one thread:
 * *cache NULL at first, replaced when pub changes, freed by the caller
 * with EVP_PKEY_CTX_free(). Ed25519 never uses it.
 */
int kr_ca_verify_tbs(EVP_PKEY *pub, enum kr_key_type t, EVP_PKEY_CTX **cache,
    const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen);

/*
 * A throwaway in-memory key of type t for pre-issuance lint signing,
 * generated once per process and cached (borrowed; thread-safe).
 */
/* Signature AlgorithmIdentifiers for a type-t issuer, no signature. */
int kr_ca_set_sigalg(X509 *x, enum kr_key_type t) KR_WUR;
int kr_ca_lint_key(enum kr_key_type t, EVP_PKEY **out) KR_WUR;

/*
 * Key type of an SPKI from its AlgorithmIdentifier and key length, without
 * decoding the key (OpenSSL 3.0 decoders are slow; RSA is decoded for its
 * size). KR_KEY_NONE for anything else (explicit EC parameters included).
 */
enum kr_key_type kr_spki_key_type(X509_PUBKEY *pub);

/*
 * Put a copy of the SPKI `from` (e.g. a CSR's, as it stands) into x,
 * without OpenSSL's encode-and-decode round trip of X509_set_pubkey.
 */
int kr_spki_copy(X509 *x, X509_PUBKEY *from) KR_WUR;

/* Subject key identifier bytes of a certificate (borrowed) or NULL. */
const ASN1_OCTET_STRING *kr_ca_ski(const X509 *x);

/*
 * Sign the TBS of *x (or *crl) with an HSM key: libp11 for ECDSA/RSA when
 * it can, else C_Sign + assembly (replacing *x / *crl). The object must
 * already carry the key's signature AlgorithmIdentifier (from the
 * throwaway-key signature); KR_ERR_INTERNAL otherwise.
 */
int kr_ca_hsm_sign(struct kr_key *key, X509 **x, X509_CRL **crl) KR_WUR;

/*
 * The unsigned certificate for prof (root, intermediate or device):
 * subject, public key (pub, or the SPKI spki copied as it stands), issuer
 * (NULL: self-signed), serial, validity, the profile's extensions; hw is
 * the chip serial for a device HardwareModuleName (else NULL). *out is a
 * new X509 with no signature. Used by cert.c and by calog.c's
 * log-before-release path for CA certificates, so both build one TBS.
 */
int kr_ca_build_tbs(const struct kr_profile *prof, const X509_NAME *subject,
    EVP_PKEY *pub, X509_PUBKEY *spki, const X509 *issuer,
    const uint8_t serial[KR_SERIAL_LEN], const struct kr_hwname *hw,
    time_t now, X509 **out) KR_WUR;

/* CRL lint (crl.c). */
int kr_lint_crl(const X509_CRL *crl, const X509 *issuer) KR_WUR;

#endif
