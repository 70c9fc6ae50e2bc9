/*
 * policy.h - the signing policy (policy.yaml) and the decision for one
 * device certificate request.
 *
 * The policy names who may be trusted (pinned manifest signers, device-PKI
 * roots), what may be certified (models / part numbers, identity key kid,
 * curves, lite entries), how (profiles, subject template), for whom
 * (manufacturers, quotas) and renewal rules. Loading reads the file and
 * the PEM files it names; everything else here is pure (no I/O).
 *
 * File format (strict YAML, unknown keys are errors), see
 * docs/policy.example.yaml and keyroom-policy(1):
 *   version: 1
 *   signers:        [{file: PATH | pem: TEXT, check_validity: bool}]
 *   device_roots:   [{file: PATH | pem: TEXT}]
 *   curves:         [P-256, P-384]            (default [P-256])
 *   lite_entries:   refuse | allow            (default refuse)
 *   parts:          [{part_number: S, model: S, identity_kid: S}]
 *   profiles:       [NAME, ...]               (first = default)
 *   subject:        "CN=sn${UNIQUEID}, O=Example OEM"
 *   manufacturers:  [{id, name, quota, parts: [...], profiles: [...]}]
 *   renewal:        {allowed: bool, proof: [current-cert, manifest-key]}
 *   manifest_backdate_days: N  (default 365; see struct kr_mf_trust)
 * Relative file paths are relative to the policy file's directory.
 */
#ifndef KR_POLICY_H
#define KR_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "lib/err.h"
#include "media/manifest.h"

/* Named limits. */
#define KR_POLICY_MAX_SIGNERS 64
#define KR_POLICY_MAX_ROOTS 64
#define KR_POLICY_MAX_PARTS 256
#define KR_POLICY_MAX_MFRS 256
#define KR_POLICY_MAX_PROFILES 32
#define KR_POLICY_SUBJECT_MAX 512	/* expanded subject, bytes */

struct kr_policy;	/* opaque */

/*
 * Load and validate path (bounded, O_NOFOLLOW; PEM files likewise).
 * *out is allocated (kr_policy_free). Errors: KR_ERR_CONFIG with
 * "policy.yaml:12:3: ..." or "policy.yaml: manufacturers[1]: unknown key
 * 'qouta'" detail; KR_ERR_SYSTEM / KR_ERR_NOT_FOUND for missing files.
 */
int kr_policy_load(const char *path, struct kr_policy **out) KR_WUR;

/* Same from a buffer; basedir resolves relative file: paths (may be
 * NULL: file: entries are then refused). */
int kr_policy_parse(const char *name, const char *buf, size_t len,
    const char *basedir, struct kr_policy **out) KR_WUR;

void kr_policy_free(struct kr_policy *p);

/* The i-th certificate file the policy reads (its file: value as
 * written: relative to the policy's directory, or absolute), NULL past the
 * last. */
const char *kr_policy_file(const struct kr_policy *p, size_t i);

/*
 * What a loaded policy is, in 32 bytes: SHA-256 over
 * "keyroom-policy-digest-v1\n", the SHA-256 of the policy file's bytes,
 * then for each certificate file it read, in the order it read them (see
 * kr_policy_file): the name as written, a NUL byte, the SHA-256 of the
 * file's bytes. Two policies with the same digest decide alike; a
 * certificate file changed under the same name changes it. The
 * install-policy ceremony logs it; batch sign compares it (see
 * ceremony/polstore.h) and logs it in batch-begin.
 */
int kr_policy_digest(const struct kr_policy *p, uint8_t out[32]) KR_WUR;

/*
 * Lint a loaded policy: warnings that are not errors (expired signer,
 * a manufacturer with no parts, check_validity off, ...). *out is a new
 * JSON object {"signers":[{"subject","sha256","not_after","expired"}],
 * "device_roots":[...], "parts":N, "manufacturers":N, "warnings":[...]}.
 */
int kr_policy_lint(const struct kr_policy *p, json_t **out) KR_WUR;

/* Trust anchors for kr_manifest_parse; valid while p lives. */
const struct kr_mf_trust *kr_policy_trust(const struct kr_policy *p);

/* The identity key kid for a part number ("0" unless the policy says). */
const char *kr_policy_identity_kid(const struct kr_policy *p,
    const char *part_number);

/*
 * Profile to use for manufacturer mfr when the batch asks for `requested`
 * (NULL: the manufacturer's first allowed profile). NULL if not allowed
 * or unknown manufacturer.
 */
const char *kr_policy_profile(const struct kr_policy *p, const char *mfr,
    const char *requested);

/* Manufacturer's quota (-1 unknown manufacturer, 0 none left at all). */
long long kr_policy_quota(const struct kr_policy *p, const char *mfr);

/*
 * Expand the subject template for device d into out: ${UNIQUEID}
 * (upper-case hex), ${uniqueid}, ${PART}, ${MODEL}. KR_ERR_TOO_LARGE.
 * The result is an RFC 4514-like "CN=..., O=..." string.
 */
int kr_policy_subject(const struct kr_policy *p, const struct kr_device *d,
    char *out, size_t outlen) KR_WUR;

/* The decision for one request: accept or ONE reason. */
enum kr_decision {
	KR_DEC_ACCEPT = 0,		/* "accept" */
	KR_DEC_BAD_CSR,			/* "bad-csr": key unparseable */
	KR_DEC_BAD_CSR_SIGNATURE,	/* "bad-csr-signature": no PoP */
	KR_DEC_MANUFACTURER_UNKNOWN,	/* "manufacturer-unknown" */
	KR_DEC_PROFILE_NOT_ALLOWED,	/* "profile-not-allowed" */
	KR_DEC_NOT_IN_MANIFEST,		/* "not-in-manifest" */
	KR_DEC_CN_MISMATCH,		/* "cn-mismatch" */
	KR_DEC_PART_NOT_ALLOWED,	/* "part-not-allowed": globally or for
					 *   this manufacturer */
	KR_DEC_MODEL_NOT_ALLOWED,	/* "model-not-allowed" */
	KR_DEC_NO_KEY,			/* "manifest-entry-no-key": lite */
	KR_DEC_CURVE_NOT_ALLOWED,	/* "curve-not-allowed" */
	KR_DEC_KEY_MISMATCH,		/* "key-mismatch": CSR key is not the
					 *   identity JWK */
	KR_DEC_ALREADY_CERTIFIED,	/* "already-certified" */
	KR_DEC_RENEWAL_NOT_ALLOWED,	/* "renewal-not-allowed" */
	KR_DEC_RENEWAL_BAD_PROOF,	/* "renewal-bad-proof" */
	KR_DEC_QUOTA_EXCEEDED,		/* "quota-exceeded" */
	KR_DEC_NREASONS
};
const char *kr_decision_str(enum kr_decision d);

/* Which key a renewal's detached signature verified with. */
enum kr_renewal_proof {
	KR_PROOF_NONE = 0,		/* absent or did not verify */
	KR_PROOF_CURRENT_CERT,		/* the currently certified key */
	KR_PROOF_MANIFEST_KEY,		/* a key listed in the manifest */
};

/* Facts about one request; everything borrowed. */
struct kr_request {
	const char *manufacturer;	/* batch manufacturer id */
	const char *profile;		/* batch profile, NULL = default */
	EVP_PKEY *pkey;			/* CSR key, parsed once (may be NULL
					 *   if only spki is given) */
	const uint8_t *spki;		/* CSR key as DER SPKI (i2d_PUBKEY) */
	size_t spki_len;
	const char *cn;			/* subject CN or NULL */
	int pop_ok;			/* CSR self-signature verified */
	const struct kr_device *dev;	/* registry entry found, or NULL */
	int already_certified;		/* device holds a live certificate */
	uint64_t quota_used;		/* certs this manufacturer already
					 *   got (earlier batches + this one) */
	int renewal;			/* request is a renewal / re-key */
	enum kr_renewal_proof proof;
};

struct kr_verdict {
	enum kr_decision decision;
	const char *profile;		/* accepted: profile to use */
	char message[256];		/* human message naming the device */
};

/*
 * Decide. Pure: no I/O, no state. Checks in this order: CSR key, PoP,
 * manufacturer, profile, manifest entry (present, and signed by a signer
 * this policy pins: else "not-in-manifest"), CN, part/model (global, then for
 * the manufacturer), lite, curve, key == identity JWK, already certified /
 * renewal rules, quota. Fills *v and returns v->decision.
 * CN rule: when present it must equal (ASCII case-insensitive) the CN of
 * the subject template, "sn<uniqueId>" or "<uniqueId>".
 */
enum kr_decision kr_policy_decide(const struct kr_policy *p,
    const struct kr_request *rq, struct kr_verdict *v);

#endif
