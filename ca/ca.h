/*
 * ca.h - certificates from profiles, signed by HSM keys: CSR intake,
 * serials, root / intermediate / device certificates, pre-issuance lints,
 * sign-then-verify, CRLs.
 *
 * Issuance is two steps so that the audit log can record an "intent"
 * (serial + SHA-256 of the linted TBS) before the HSM signs:
 *
 *   kr_ca_prepare_device()  build TBS, set the signature algorithm, lint
 *   (audit: intent entry committed)
 *   kr_ca_sign_prepared()   HSM signs; verify with issuer key; final TBS
 *                           must equal the linted TBS byte for byte
 *   (audit: issued entry + checkpoint committed; only then write the cert)
 *
 * kr_ca_issue_device() runs the same sequence with an optional hook
 * (struct kr_issue_hook) for callers that just want one call.
 *
 * Everything here takes `now` (seconds since the epoch) explicitly.
 * Errors: KR_ERR_LINT (detail names the lint and the certificate),
 * KR_ERR_FORMAT / KR_ERR_TOO_LARGE / KR_ERR_SIGNATURE / KR_ERR_UNSUPPORTED
 * / KR_ERR_POLICY for CSRs, KR_ERR_SIGNATURE if the HSM signature does not
 * verify, plus the HSM layer's errors (ca/hsm.h).
 */
#ifndef KR_CA_CA_H
#define KR_CA_CA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "ca/config.h"
#include "ca/hsm.h"
#include "lib/err.h"

/* Size cap for one CSR (PEM or DER). */
#define KR_CSR_MAX 16384
/* Serials: 16 random bytes, top bit clear, first byte nonzero. */
#define KR_SERIAL_LEN 16
/* id-on-hardwareModuleName (RFC 4108). */
#define KR_OID_HW_MODULE_NAME "1.3.6.1.5.5.7.8.4"
/* Max chip serial carried in HardwareModuleName. */
#define KR_HWSERIAL_MAX 64

/* ---- CSR intake (ca/csr.c) ------------------------------------------ */

struct kr_csr;

/*
 * Parse a CSR (PEM "CERTIFICATE REQUEST"/"NEW CERTIFICATE REQUEST" or
 * DER), at most KR_CSR_MAX bytes, no trailing data, and verify its
 * self-signature (proof of possession). `name` (e.g. "csr/0042.csr")
 * prefixes messages. Errors: KR_ERR_TOO_LARGE, KR_ERR_FORMAT (truncated /
 * garbage), KR_ERR_SIGNATURE (bad proof of possession), KR_ERR_UNSUPPORTED
 * (key type keyroom does not certify). *out freed with kr_csr_free().
 */
int kr_csr_parse(const char *name, const uint8_t *buf, size_t len,
    struct kr_csr **out) KR_WUR;
/* Read a file (O_NOFOLLOW, size-capped) and kr_csr_parse it. */
int kr_csr_load(const char *path, struct kr_csr **out) KR_WUR;
void kr_csr_free(struct kr_csr *csr);

/* Borrowed views, valid while csr lives. */
EVP_PKEY *kr_csr_pubkey(const struct kr_csr *csr);
X509_REQ *kr_csr_req(const struct kr_csr *csr);
const char *kr_csr_name(const struct kr_csr *csr);
enum kr_key_type kr_csr_key_type(const struct kr_csr *csr);

/*
 * The CSR's key must be one of profile->algorithms. KR_ERR_POLICY
 * ("csr/1.csr: key type p384 not allowed by profile device (allowed:
 * p256)").
 */
int kr_csr_check_profile(const struct kr_csr *csr,
    const struct kr_profile *profile) KR_WUR;

/* ---- names and serials (ca/cert.c) ---------------------------------- */

/*
 * Parse "/C=DE/O=Acme GmbH/CN=dev 1" (OpenSSL -subj style; "\/" escapes a
 * slash) into a new X509_NAME. KR_ERR_FORMAT for empty names, unknown
 * attribute types, empty values.
 */
int kr_ca_parse_dn(const char *s, X509_NAME **out) KR_WUR;

/*
 * Serial-uniqueness callback: return 1 if this serial was ever issued
 * (the audit area's issued index), 0 if free, <0 a KR_ERR_* on failure.
 */
typedef int (*kr_serial_used_fn)(void *arg, const uint8_t *serial,
    size_t len);

/*
 * A fresh serial from the token RNG: KR_SERIAL_LEN bytes, top bit cleared,
 * first byte nonzero (so 16 content octets, positive, >= 64 bits of
 * entropy). `used` (may be NULL) is consulted; a collision draws again (up
 * to 8 times, then KR_ERR_EXISTS). `out` gets the raw big-endian bytes.
 */
int kr_ca_random_serial(struct kr_token *tok, kr_serial_used_fn used,
    void *arg, uint8_t out[KR_SERIAL_LEN]) KR_WUR;

/* ---- the issuer ----------------------------------------------------- */

/* A CA that signs: its certificate and its HSM key (both borrowed). */
struct kr_issuer {
	X509 *cert;
	struct kr_key *key;
};

/*
 * Check issuer->key's public key equals issuer->cert's public key.
 * KR_ERR_KEY_MISMATCH otherwise.
 */
int kr_issuer_check(const struct kr_issuer *issuer) KR_WUR;

/* ---- certificates (ca/cert.c) --------------------------------------- */

/*
 * Self-signed root for profile (kind ROOT) with key (in its token): build,
 * lint, C_Sign the linted TBS bytes, verify, assemble.
 * *out is a new X509.
 */
int kr_ca_make_root(const struct kr_profile *profile, struct kr_key *key,
    const uint8_t serial[KR_SERIAL_LEN], time_t now, X509 **out) KR_WUR;

/*
 * Intermediate (pathlen:0, AKI/SKI, optional CDP/AIA) for the public key
 * `pub` (the intermediate's HSM key), signed by `root`.
 */
int kr_ca_make_intermediate(const struct kr_profile *profile,
    const struct kr_issuer *root, EVP_PKEY *pub,
    const uint8_t serial[KR_SERIAL_LEN], time_t now, X509 **out) KR_WUR;

/* Optional HardwareModuleName content: the chip's serial number. */
struct kr_hwname {
	const uint8_t *serial;	/* hwSerialNum octets (e.g. the unique ID) */
	size_t len;		/* 1..KR_HWSERIAL_MAX */
};

/* A linted, not yet signed device certificate. */
struct kr_prepared;

/*
 * Build and lint a device certificate: subject from `subject` (never from
 * the CSR), the CSR's public key (CSR already verified by kr_csr_parse and
 * checked against the profile here), AKI from issuer's SKI, serial,
 * validity per profile, SAN HardwareModuleName if the profile wants it
 * (`hw` required then, ignored otherwise). *out freed with
 * kr_prepared_free(). Errors: KR_ERR_POLICY (key type), KR_ERR_LINT,
 * KR_ERR_INVALID_ARGUMENT.
 */
int kr_ca_prepare_device(const struct kr_profile *profile,
    const struct kr_issuer *issuer, const struct kr_csr *csr,
    const X509_NAME *subject, const uint8_t serial[KR_SERIAL_LEN],
    const struct kr_hwname *hw, time_t now, struct kr_prepared **out)
    KR_WUR;

/* The linted TBSCertificate DER (borrowed) and its SHA-256. */
const uint8_t *kr_prepared_tbs(const struct kr_prepared *p, size_t *len);
void kr_prepared_tbs_sha256(const struct kr_prepared *p, uint8_t out[32]);
/* The serial (borrowed, KR_SERIAL_LEN bytes). */
const uint8_t *kr_prepared_serial(const struct kr_prepared *p);
void kr_prepared_free(struct kr_prepared *p);

/*
 * Sign a prepared certificate with issuer->key: C_Sign over the linted
 * TBS bytes themselves (CKM_ECDSA on the digest, CKM_SHA256_RSA_PKCS,
 * CKM_EDDSA), verify the signature over those bytes with the issuer
 * certificate's public key, assemble the certificate from them. *out is
 * a new X509 (its TBS checked equal to the linted TBS). The prepared
 * object can be signed only once (KR_ERR_STATE after).
 */
int kr_ca_sign_prepared(struct kr_prepared *p,
    const struct kr_issuer *issuer, X509 **out) KR_WUR;
/*
 * The same, giving the certificate DER (OPENSSL_malloc'd) without
 * parsing it back: the batch's path (a parse costs as much as a verify
 * in OpenSSL 3.0). verify (may be NULL) keeps one thread's verify context
 * for the issuer key between calls: *verify NULL the first time, freed
 * by the caller with EVP_PKEY_CTX_free(); a context for another key is
 * replaced.
 */
int kr_ca_sign_prepared_der(struct kr_prepared *p,
    const struct kr_issuer *issuer, EVP_PKEY_CTX **verify, uint8_t **der,
    size_t *len) KR_WUR;

/*
 * Log hook around one issuance (all optional; NULL members skipped):
 * intent() after lint, before the HSM signs - an error aborts;
 * issued() after sign+verify, before anything is released - an error
 * means the certificate must not be released (the caller gets it);
 * abandoned() when signing failed after a successful intent().
 */
struct kr_issue_hook {
	int (*intent)(void *arg, const struct kr_prepared *p);
	int (*issued)(void *arg, const struct kr_prepared *p, const X509 *c);
	void (*abandoned)(void *arg, const struct kr_prepared *p, int err);
	void *arg;
};

/* prepare -> hook intent -> sign -> hook issued, in one call. */
int kr_ca_issue_device(const struct kr_profile *profile,
    const struct kr_issuer *issuer, const struct kr_csr *csr,
    const X509_NAME *subject, const uint8_t serial[KR_SERIAL_LEN],
    const struct kr_hwname *hw, time_t now,
    const struct kr_issue_hook *hook, X509 **out) KR_WUR;

/* ---- lints (ca/lint.c) ---------------------------------------------- */

/*
 * Lint a certificate against RFC 5280 and its profile: version 3, serial
 * 1..20 octets positive, signature algorithms match, validity order (and
 * GeneralizedTime only from 2050), subject/issuer non-empty, issuer name
 * == issuer's subject, required extensions present with the right
 * criticality and values (basicConstraints, keyUsage consistent with CA
 * flag and EKU, SKI, AKI == issuer SKI, EKU, SAN), no duplicate
 * extensions, key type fits the profile. `issuer` is NULL for a root.
 * KR_ERR_LINT with detail "lint <name>: <what>".
 */
int kr_lint_cert(const X509 *cert, const struct kr_profile *profile,
    const X509 *issuer) KR_WUR;

/* ---- CRLs (ca/crl.c) ------------------------------------------------ */

struct kr_revoked {
	uint8_t serial[20];
	size_t len;		/* 1..20 */
	time_t when;		/* revocation date */
	int reason;		/* CRL_REASON_* (-1: none) */
};

/*
 * A CRL v2 by issuer: thisUpdate now, nextUpdate now + next_days, CRL
 * number, AKI, revoked entries with reason codes. Signed like
 * certificates (HSM; verify after). *out is a new X509_CRL.
 */
int kr_ca_make_crl(const struct kr_issuer *issuer,
    const struct kr_revoked *revoked, size_t n, uint64_t crl_number,
    time_t now, int next_days, X509_CRL **out) KR_WUR;

/* "keyCompromise" etc. -> CRL_REASON_*; -2 if unknown. */
int kr_crl_reason_parse(const char *s);

/* ---- output helpers -------------------------------------------------- */

/* PEM of a certificate (malloc'd, *len set). */
int kr_ca_cert_pem(const X509 *cert, char **out, size_t *len) KR_WUR;
/* PEM of certificate DER, byte-identical to kr_ca_cert_pem's. */
int kr_ca_der_pem(const uint8_t *der, size_t derlen, char **out,
    size_t *len) KR_WUR;
/* Load one PEM certificate from a file (bounded). */
int kr_ca_load_cert(const char *path, X509 **out) KR_WUR;
/* SHA-256 of the certificate DER. */
int kr_ca_cert_sha256(const X509 *cert, uint8_t out[32]) KR_WUR;

#endif
