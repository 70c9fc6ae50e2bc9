/*
 * hsm.h - the HSM layer: PKCS#11 tokens through libp11, plus a thin raw
 * PKCS#11 layer (ca/p11raw.c) for what libp11 0.4.12 lacks: token
 * initialisation, EC/Ed25519 key generation and Ed25519 (CKM_EDDSA)
 * signing.
 *
 * Objects:
 *   struct kr_hsm    one loaded PKCS#11 module (one per process). The raw
 *                    layer calls C_Initialize first; libp11 loads the same
 *                    module afterwards and is the only side that calls
 *                    C_Finalize, last, in kr_hsm_free().
 *   struct kr_token  a token found by label and logged in as user. Keeps
 *                    the PIN in locked memory so that a lost session
 *                    (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
 *                    CKR_DEVICE_REMOVED, CKR_USER_NOT_LOGGED_IN) is reopened
 *                    and logged in again once, transparently.
 *   struct kr_key    a key pair in a token, found by label; holds its public
 *                    key (EVP_PKEY) and the private key handles.
 *
 * Not thread-safe: one thread per struct kr_hsm (batch signing opens one
 * kr_token per worker for parallel sessions). Several struct kr_hsm on the
 * same module in one process are fine: the module is finalized when the
 * last one is freed.
 *
 * Errors (negative KR_ERR_*, detail names module/token/label):
 *   KR_ERR_TOKEN  module missing/broken, token not found, slot problems
 *   KR_ERR_PIN    wrong PIN / PIN locked ("token keyroom-root: ...")
 *   KR_ERR_EXISTS a key or token label that already exists
 *   KR_ERR_NOT_FOUND  key label not in the token
 *   KR_ERR_KEY_MISMATCH  key's public key differs from the expected one
 *   KR_ERR_PKCS11 any other CK_RV (named in the detail)
 */
#ifndef KR_CA_HSM_H
#define KR_CA_HSM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/err.h"

/* Where Debian installs SoftHSM2 (first existing one is used). */
#define KR_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/* PKCS#11 token labels are at most 32 bytes; PINs we accept up to 255. */
#define KR_TOKEN_LABEL_MAX 32
#define KR_KEY_LABEL_MAX 64
#define KR_PIN_MAX 256

enum kr_key_type {
	KR_KEY_NONE = 0,
	KR_KEY_P256 = 1,	/* ECDSA secp256r1, signs with SHA-256 */
	KR_KEY_P384 = 2,	/* ECDSA secp384r1, signs with SHA-384 */
	KR_KEY_RSA3072 = 3,	/* RSA 3072, PKCS#1 v1.5 with SHA-256 */
	KR_KEY_ED25519 = 4,	/* Ed25519 (pure EdDSA) */
};
/* Bit for a key type in a mask of allowed types. */
#define KR_KEY_BIT(t) (1u << (t))

/* "p256", "p384", "rsa3072", "ed25519" <-> enum. KR_KEY_NONE if unknown. */
enum kr_key_type kr_key_type_parse(const char *name);
const char *kr_key_type_name(enum kr_key_type t);
/*
 * Classify an EVP_PKEY (e.g. a CSR's key). Other curves, RSA sizes other
 * than 3072 and other algorithms give KR_KEY_NONE.
 */
enum kr_key_type kr_key_type_of(const EVP_PKEY *pkey);

struct kr_hsm;
struct kr_token;
struct kr_key;

/*
 * Find the SoftHSM2 module on this system (KR_SOFTHSM_MODULE, the multiarch
 * path, then p11-kit's module dir). Writes the path into buf.
 * KR_ERR_TOKEN if none exists.
 */
int kr_hsm_find_softhsm(char *buf, size_t buflen) KR_WUR;

/*
 * Load and initialise a PKCS#11 module (dlopen + C_GetFunctionList +
 * C_Initialize, then libp11 PKCS11_CTX_load of the same path).
 * *out is freed with kr_hsm_free(). Errors: KR_ERR_TOKEN
 * ("PKCS#11 module /x.so: cannot load: ...").
 */
int kr_hsm_load(const char *module, struct kr_hsm **out) KR_WUR;
/*
 * Unload; the module's last user in the process finalizes it (through
 * libp11 if it was loaded). Tokens/keys must be freed first.
 */
void kr_hsm_free(struct kr_hsm *hsm);
const char *kr_hsm_module(const struct kr_hsm *hsm);

/*
 * Initialise a new token with `label` in the first slot holding an
 * uninitialised token, set the SO PIN and the user PIN. SoftHSM2 offers
 * a fresh free slot only after C_Initialize, so when none is left the
 * module is finalized and initialised again - only while this is its one
 * user in the process and libp11 has not loaded it (init tokens first).
 * KR_ERR_EXISTS if a token with that label exists; KR_ERR_TOKEN if no free
 * slot. PINs are not kept.
 */
int kr_hsm_init_token(struct kr_hsm *hsm, const char *label,
    const char *so_pin, size_t so_pinlen, const char *pin, size_t pinlen)
    KR_WUR;

/*
 * Random bytes from a token's RNG through a fresh public session on the
 * token `label` (no login needed). Used by `keyroom init` for the audit PIN.
 */
int kr_hsm_random_public(struct kr_hsm *hsm, const char *label,
    uint8_t *buf, size_t len) KR_WUR;

/*
 * Find the token by label, open a R/W session and log in as user.
 * The PIN is copied into locked memory (for re-login) and wiped on close.
 * Login state is per process: if the token is already open here, the PIN
 * is compared with that one (C_Login would accept any), and closing one
 * handle does not log the others out.
 * Errors: KR_ERR_TOKEN ("token keyroom-root not found in module ..."),
 * KR_ERR_PIN ("token keyroom-root: wrong PIN (CKR_PIN_INCORRECT)").
 */
int kr_token_open(struct kr_hsm *hsm, const char *label, const char *pin,
    size_t pinlen, struct kr_token **out) KR_WUR;
/* Log out, close the session, wipe the PIN. NULL-safe. */
void kr_token_close(struct kr_token *tok);
const char *kr_token_label(const struct kr_token *tok);

/* len bytes from C_GenerateRandom (reopens a lost session once). */
int kr_token_random(struct kr_token *tok, uint8_t *buf, size_t len) KR_WUR;

/*
 * Generate a key pair inside the token: private key CKA_TOKEN,
 * CKA_PRIVATE, CKA_SENSITIVE true, CKA_EXTRACTABLE false, CKA_SIGN; the
 * public key CKA_TOKEN, CKA_VERIFY; both with CKA_LABEL = label and the
 * same random 16-byte CKA_ID. KR_ERR_EXISTS ("token keyroom-root: key
 * label 'root-ca' already exists") if any object has that label.
 * *out is freed with kr_key_free() (it does not destroy the key).
 */
int kr_token_generate(struct kr_token *tok, enum kr_key_type type,
    const char *label, struct kr_key **out) KR_WUR;

/*
 * Find a key pair by label (exactly one private key, and its public key
 * object or, failing that, public attributes of the private key).
 * KR_ERR_NOT_FOUND if absent; KR_ERR_UNSUPPORTED for key types we do not
 * sign with.
 */
int kr_token_find_key(struct kr_token *tok, const char *label,
    struct kr_key **out) KR_WUR;
void kr_key_free(struct kr_key *key);

enum kr_key_type kr_key_type(const struct kr_key *key);
const char *kr_key_label(const struct kr_key *key);
struct kr_token *kr_key_token(const struct kr_key *key);

/* The key's public key. Borrowed: valid while the kr_key lives. */
EVP_PKEY *kr_hsm_pubkey(const struct kr_key *key);

/*
 * Check the key's public key equals `expected` (e.g. the public key of the
 * CA certificate it is about to sign for). KR_ERR_KEY_MISMATCH naming the
 * token and label otherwise.
 */
int kr_hsm_check_pubkey(const struct kr_key *key, const EVP_PKEY *expected)
    KR_WUR;

/*
 * Sign msg[0..len) with the private key, producing the signature in the
 * form X.509 carries it:
 *   Ed25519: CKM_EDDSA over the message, 64 bytes.
 *   P-256/P-384: SHA-256/SHA-384 of msg computed here, CKM_ECDSA, result
 *                DER ECDSA-Sig-Value.
 *   RSA-3072:  CKM_SHA256_RSA_PKCS, 384 bytes.
 * *siglen is in/out (buffer size in; KR_ERR_TOO_LARGE if too small;
 * KR_HSM_SIG_MAX always suffices). Reopens a lost session once.
 * The audit area signs checkpoints with this (Ed25519).
 */
#define KR_HSM_SIG_MAX 512
int kr_hsm_sign_raw(struct kr_key *key, const uint8_t *msg, size_t len,
    uint8_t *sig, size_t *siglen) KR_WUR;
/* The same for a P-256 key, given SHA-256(msg) (KR_ERR_UNSUPPORTED for
 * any other key type). */
int kr_hsm_sign_sha256(struct kr_key *key, const uint8_t dg[32],
    uint8_t *sig, size_t *siglen) KR_WUR;

/*
 * libp11's EVP_PKEY for the private key (ECDSA/RSA only) for X509_sign /
 * X509_CRL_sign. Borrowed: valid while the kr_key lives. KR_ERR_UNSUPPORTED
 * for Ed25519 (libp11 0.4.12 cannot sign it: use kr_hsm_sign_raw), and
 * when libp11 cannot list the token's keys or does not see this one
 * (libp11 0.4.12 fails on tokens that also hold EdDSA keys): callers then
 * fall back to kr_hsm_sign_raw, as ca/cert.c does.
 */
int kr_hsm_evp_private(struct kr_key *key, EVP_PKEY **out) KR_WUR;

/*
 * Sign a certificate (x) or a CRL (crl; x NULL) with libp11's key and md
 * (ECDSA/RSA). KR_ERR_UNSUPPORTED means "sign through kr_hsm_sign_raw
 * instead": Ed25519, a token libp11 cannot list, or a libp11 signing
 * failure (e.g. a lost session: libp11 0.4.12 cannot recover its cached
 * handles, so our session is recovered and the key stays on the raw
 * layer from then on). ca/cert.c does exactly that.
 */
int kr_hsm_x509_sign(struct kr_key *key, X509 *x, X509_CRL *crl,
    const EVP_MD *md) KR_WUR;

/*
 * Re-establish the token's sessions after a failure that invalidated them
 * (reopen + re-login with the kept PIN; libp11's slot too). Called
 * internally on CKR_SESSION_HANDLE_INVALID & co.; exposed for callers
 * that saw a libp11 signing failure.
 */
int kr_token_recover(struct kr_token *tok) KR_WUR;

/*
 * Test hook: close every session of the token's slot under us
 * (C_CloseAllSessions), as a device reset would. The next operation must
 * recover.
 */
void kr_token_test_drop_sessions(struct kr_token *tok);
/* Test hook: how often tok's session had to be re-established. */
unsigned kr_token_test_reopens(const struct kr_token *tok);

#endif
