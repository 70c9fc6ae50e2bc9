/*
 * calog.h - the `keyroom init` / `keyroom ca` commands' use of the audit
 * log (audit/audit.h): "log before release". The checkpoint signer is the
 * audit token's Ed25519 key on the caller's struct kr_hsm.
 *
 *   device:  intent committed -> HSM signs -> issued + checkpoint
 *            committed -> only then the file is written
 *   root / intermediate: key-generate committed when the key exists;
 *            TBS built + linted with a throwaway key, intent committed
 *            -> HSM signs the same TBS -> issued + checkpoint committed
 *            (abandoned on failure) -> only then the file is written
 *   CRL:     crl-issued committed before the CRL is written
 */
#ifndef KR_CA_CALOG_H
#define KR_CA_CALOG_H

#include <stdint.h>

#include <openssl/x509.h>

#include "audit/audit.h"
#include "ca/ca.h"

struct kr_hsm_signer;

struct kr_calog {
	struct kr_log *log;
	struct kr_note_signer signer;
	struct kr_hsm_signer *hs;
	const char *actor;
	char issuer[65];	/* hex SHA-256 of the issuer's SPKI DER */
	const char *profile;	/* "root", "intermediate", "device" */
	uint64_t intent;	/* of the issuance in flight */
	int has_intent;
};

/*
 * Open the state's log for writing with the audit token's signer (PIN
 * from <state>/audit-token.pin) on hsm (borrowed, must outlive it), and
 * turn interrupted intents into abandoned entries. KR_ERR_NOT_FOUND
 * (from audit/) if the state has no log.
 */
int kr_calog_open(struct kr_calog *cl, struct kr_hsm *hsm,
    const struct kr_config *cfg, const struct kr_state_paths *paths,
    const char *actor) KR_WUR;
void kr_calog_close(struct kr_calog *cl);

/* The issuer id of a public key: hex SHA-256 of its SPKI DER. */
int kr_calog_issuer_id(EVP_PKEY *pub, char out[65]) KR_WUR;

/* kr_serial_used_fn for cl->issuer: the log's serial index. */
int kr_calog_serial_used(void *cl, const uint8_t *serial, size_t len);

/* A key-generate entry, committed with a checkpoint. */
int kr_calog_keygen(struct kr_calog *cl, const char *token,
    const char *label, enum kr_key_type type, EVP_PKEY *pub) KR_WUR;

/*
 * A root or intermediate certificate built and linted (throwaway-key
 * signature), not yet signed by the HSM. Owned by the caller; free with
 * kr_calog_caprep_free (also after a failed prepare).
 */
struct kr_caprep {
	X509 *x;
	uint8_t *tbs;			/* linted TBSCertificate DER */
	size_t tbslen;
	uint8_t tbs_sha256[32];		/* what the intent entry records */
	uint8_t serial[KR_SERIAL_LEN];
	const struct kr_profile *prof;	/* borrowed */
	const X509 *issuer;		/* borrowed; NULL for a root */
	int signed_once;
};

/*
 * Build + lint a CA certificate for `pub`: a root (issuer NULL; signer's
 * public key must be pub) or an intermediate (signer's key must be the
 * issuer certificate's). Same content as kr_ca_make_root /
 * kr_ca_make_intermediate. Errors: KR_ERR_INVALID_ARGUMENT (profile
 * kind), KR_ERR_POLICY (key type), KR_ERR_KEY_MISMATCH, KR_ERR_LINT.
 */
int kr_calog_prepare_ca(const struct kr_profile *prof, struct kr_key *signer,
    const X509 *issuer, EVP_PKEY *pub, const uint8_t serial[KR_SERIAL_LEN],
    time_t now, struct kr_caprep *out) KR_WUR;

/*
 * HSM-sign the prepared TBS with signer, verify with the issuer's key,
 * require the signed TBS == the prepared one, lint again. Once only
 * (KR_ERR_STATE after). *out is a new reference.
 */
int kr_calog_sign_ca(struct kr_caprep *p, struct kr_key *signer, X509 **out)
    KR_WUR;
void kr_calog_caprep_free(struct kr_caprep *p);

/*
 * Log before release for a CA certificate (cl->issuer and cl->profile
 * set first): prepare, intent committed, HSM signs, issued + checkpoint
 * committed (abandoned if signing or verification failed). The caller
 * writes the certificate only after this returns 0.
 */
int kr_calog_issue_ca(struct kr_calog *cl, const struct kr_profile *prof,
    struct kr_key *signer, const X509 *issuer, EVP_PKEY *pub,
    const uint8_t serial[KR_SERIAL_LEN], time_t now, X509 **out) KR_WUR;

/* The hook for kr_ca_issue_device (set cl->issuer first). */
void kr_calog_hook(struct kr_calog *cl, struct kr_issue_hook *out);

/*
 * The highest CRL number logged (crl-issued) for cl->issuer, 0 if none.
 * CRL numbers must increase (RFC 5280 5.2.3).
 */
int kr_calog_crl_last(struct kr_calog *cl, uint64_t *last) KR_WUR;

/* A crl-issued entry, committed. */
int kr_calog_crl(struct kr_calog *cl, X509_CRL *crl, uint64_t number)
    KR_WUR;

/*
 * For keyroom init: the first entries of a new log (init with the
 * checkpoint verifier key, key-generate of the audit key), signed with
 * `key` (the audit key just generated).
 */
int kr_calog_init(const char *logdir, const char *origin, struct kr_key *key,
    const char *token) KR_WUR;

#endif
