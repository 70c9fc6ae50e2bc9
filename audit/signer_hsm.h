/*
 * signer_hsm.h - the checkpoint signer backed by the HSM: the Ed25519
 * key of the audit token, signed with raw C_Sign / CKM_EDDSA (libp11
 * 0.4.12 has no EdDSA).
 */
#ifndef KR_SIGNER_HSM_H
#define KR_SIGNER_HSM_H

#include "audit/audit.h"

struct kr_hsm_signer;

/*
 * Open the PKCS#11 module `module` (path), find the token labelled
 * `token` (e.g. "keyroom-audit"), log in as user with the PIN read by
 * kr_read_secret(pin_spec) (e.g. "file:<state>/audit-token.pin"), find
 * its Ed25519 key pair (key_label, or "audit-key" when NULL) and
 * the public key (CKA_EC_POINT raw or DER OCTET STRING; CKA_EC_PARAMS
 * "edwards25519" string or OID 1.3.101.112). Fills *s (name borrowed)
 * and returns a handle to free with kr_hsm_signer_close after the last
 * signature. Errors: KR_ERR_TOKEN (no such token/key), KR_ERR_PIN,
 * KR_ERR_PKCS11, KR_ERR_UNSUPPORTED (not Ed25519).
 */
int kr_hsm_signer_open(const char *module, const char *token,
    const char *key_label, const char *pin_spec, const char *name,
    struct kr_note_signer *s, struct kr_hsm_signer **out) KR_WUR;
void kr_hsm_signer_close(struct kr_hsm_signer *h);

/*
 * The same on a module the caller has already loaded (ca/hsm.h allows
 * one struct kr_hsm per process): hsm is borrowed and must outlive *out.
 */
struct kr_hsm;
int kr_hsm_signer_open_hsm(struct kr_hsm *hsm, const char *token,
    const char *key_label, const char *pin_spec, const char *name,
    struct kr_note_signer *s, struct kr_hsm_signer **out) KR_WUR;

/*
 * A signer around an audit key the caller already holds (e.g. keyroom
 * init right after generating it): key is borrowed and must outlive *s.
 * KR_ERR_UNSUPPORTED if the key is not Ed25519.
 */
struct kr_key;
int kr_signer_hsm_key(struct kr_key *key, const char *name,
    struct kr_note_signer *s) KR_WUR;

/*
 * The state directory's audit signer: keyroom.yaml's module (or the
 * embedded SoftHSM2), audit token and key label, PIN from
 * <state>/audit-token.pin, key name = name (the log origin).
 */
int kr_hsm_signer_open_state(const char *state, const char *name,
    struct kr_note_signer *s, struct kr_hsm_signer **out) KR_WUR;

#endif
