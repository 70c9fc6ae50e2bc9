/*
 * manifest.h - the vendor manifest reader (Microchip secure-element format,
 * DESIGN.md §5.1).
 *
 * A manifest is a JSON array of flattened-JSON JWS objects, each with
 * exactly payload / protected / header / signature. An entry is accepted
 * only when its ES256 signature verifies under a PINNED signer (found by
 * x5t#S256, SKI == kid), and only then is its payload parsed. Every entry
 * gets either a verified `struct kr_device` or ONE named reason.
 *
 * Nothing here does I/O except kr_manifest_load (one bounded file read).
 * The device registry (LMDB) is in registry.h.
 */
#ifndef KR_MANIFEST_H
#define KR_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/err.h"

/* Named limits for manifest input. */
#define KR_MF_MAX_BYTES (256 * 1024 * 1024)	/* one manifest file */
#define KR_MF_MAX_ENTRIES 200000		/* entries per file */
#define KR_MF_MAX_ENTRY_BYTES (64 * 1024)	/* one JWS object's fields */
#define KR_MF_MAX_KEYS 16			/* JWKs per entry */
#define KR_MF_UNIQUEID_MAX 32			/* hex chars */
#define KR_MF_KID_MAX 64			/* JWK kid / TA100 handle */
#define KR_MF_STR_MAX 64			/* model, part number, ... */
#define KR_MF_SPKI_MAX 192			/* DER SubjectPublicKeyInfo */

/* Curve bits for allowed-curve masks (policy `curves:`). */
#define KR_CURVE_P256 0x1u
#define KR_CURVE_P384 0x2u
#define KR_CURVE_P521 0x4u

/* Curve bit for an OpenSSL NID (0 if not a supported curve). */
unsigned kr_curve_bit(int nid);
/* "P-256" etc. for a curve bit; "?" otherwise. */
const char *kr_curve_name(unsigned bit);

/* One public key of a device, as listed in the signed publicKeySet. */
struct kr_mf_key {
	char kid[KR_MF_KID_MAX + 1];	/* slot number / TA100 handle */
	unsigned curve;			/* KR_CURVE_* bit */
	uint8_t spki[KR_MF_SPKI_MAX];	/* DER SubjectPublicKeyInfo, */
	size_t spki_len;		/*   uncompressed named-curve point */
	int x5c_verified;		/* x5c present, chain + key checked */
};

/*
 * A verified manifest entry = one device record (also what the registry
 * stores and returns). Plain data, no heap pointers: copy freely.
 */
struct kr_device {
	char unique_id[KR_MF_UNIQUEID_MAX + 1];	/* signed payload.uniqueId */
	char model[KR_MF_STR_MAX + 1];
	char part_number[KR_MF_STR_MAX + 1];
	char group_id[KR_MF_STR_MAX + 1];	/* "" if absent */
	int version;				/* payload.version */
	time_t provisioned;			/* provisioningTimestamp */
	uint8_t signer[32];	/* SHA-256 of the signer cert DER (x5t#S256) */
	uint8_t manifest[32];	/* SHA-256 of the manifest file */
	/*
	 * Content fingerprint for duplicate detection: SHA-256 over uniqueId,
	 * model, part number and every (kid, SPKI). The same chip re-signed
	 * (new signature, new manifest) keeps it; another key changes it.
	 */
	uint8_t content[32];
	size_t nkeys;				/* 0 for "lite" entries */
	struct kr_mf_key keys[KR_MF_MAX_KEYS];
};

/* The key with this kid, or NULL. */
const struct kr_mf_key *kr_device_key(const struct kr_device *d,
    const char *kid);

/* Why an entry was refused. Short strings are stable (reports, tests). */
enum kr_mf_reason {
	KR_MF_OK = 0,
	KR_MF_MALFORMED,	/* "malformed": JSON / base64url / fields */
	KR_MF_ALG,		/* "alg-not-allowed": alg other than ES256 */
	KR_MF_FORBIDDEN_HEADER,	/* "forbidden-header": crit/jku/x5u/jwk/x5c/
				 *   unknown member in protected header */
	KR_MF_UNKNOWN_SIGNER,	/* "unknown-signer": x5t#S256 not pinned */
	KR_MF_KID_MISMATCH,	/* "kid-mismatch": kid != signer SKI */
	KR_MF_BAD_SIGNATURE,	/* "bad-signature" */
	KR_MF_ID_MISMATCH,	/* "uniqueid-mismatch": header vs payload */
	KR_MF_BAD_UNIQUEID,	/* "bad-uniqueid": not lower-case hex of the
				 *   model's length */
	KR_MF_TIME,		/* "timestamp-outside-signer-validity" */
	KR_MF_DUPLICATE,	/* "duplicate-different": same uniqueId,
				 *   different content */
	KR_MF_CURVE,		/* "curve-not-allowed": kty/crv refused */
	KR_MF_POINT,		/* "point-not-on-curve" */
	KR_MF_X5C,		/* "x5c-invalid": chain or key mismatch */
	KR_MF_NREASONS
};
const char *kr_mf_reason_str(enum kr_mf_reason r);

/* A pinned manifest signer (from the policy). */
struct kr_mf_signer {
	X509 *cert;		/* borrowed; self-signed vendor signer */
	uint8_t sha256[32];	/* SHA-256 of its DER = x5t#S256 */
	int ignore_validity;	/* policy `check_validity: false` (test
				 *   signers whose entries predate them) */
};

/* What a manifest is verified against; all pointers borrowed. */
struct kr_mf_trust {
	const struct kr_mf_signer *signers;
	size_t nsigners;
	STACK_OF(X509) *device_roots;	/* x5c anchors; NULL/empty: an entry
					 *   with x5c is refused */
	unsigned curves;		/* KR_CURVE_* mask; 0 = P-256 only */
	/*
	 * provisioningTimestamp must lie in [notBefore - backdate, notAfter]
	 * of the signer. Manifests are signed when chips are sold, after
	 * they were provisioned, so real entries predate a new signer (the
	 * spec's lite example by 52 days); policy manifest_backdate_days.
	 */
	long long backdate;		/* seconds */
};

/* Result for one array element, in file order. */
struct kr_mf_result {
	enum kr_mf_reason reason;	/* KR_MF_OK: dev is valid */
	int duplicate_same;		/* OK, but repeats an earlier entry */
	char id[KR_MF_UNIQUEID_MAX + 1];/* best-effort id for messages
					 *   (signed one if verified) */
	char message[256];		/* human message naming the entry */
	struct kr_device dev;
};

struct kr_manifest {
	size_t n;			/* number of array elements */
	size_t n_ok;			/* results with KR_MF_OK */
	uint8_t sha256[32];		/* SHA-256 of the file bytes */
	struct kr_mf_result *r;		/* n results */
	size_t cap;			/* allocated results (internal) */
};

/*
 * Verify every entry of buf[0..len) (a manifest file). `name` is used in
 * messages. *out is allocated (kr_manifest_free). Per-entry failures are
 * results, not errors. Errors (whole file): KR_ERR_FORMAT (not a JSON
 * array), KR_ERR_TOO_LARGE (over KR_MF_MAX_BYTES / KR_MF_MAX_ENTRIES),
 * KR_ERR_ALLOC.
 */
int kr_manifest_parse(const struct kr_mf_trust *t, const char *name,
    const uint8_t *buf, size_t len, struct kr_manifest **out) KR_WUR;

/*
 * Streaming form for large manifests: verify buf[0..len) one array element
 * at a time and call cb(res, index, arg) for each, in file order; res is
 * valid only during the call (copy res->dev to keep it). Memory stays one
 * entry deep. Duplicates within the file are NOT marked (the registry
 * refuses different content under one id). sha256 receives the file's
 * hash before the first call; *count (may be NULL) the number of
 * elements. A non-zero cb return stops and is returned. Whole-file
 * errors as kr_manifest_parse, possibly after some callbacks: callers
 * that record must do so in a transaction they abort on error.
 */
int kr_manifest_each(const struct kr_mf_trust *t, const char *name,
    const uint8_t *buf, size_t len, uint8_t sha256[32],
    int (*cb)(struct kr_mf_result *res, size_t index, void *arg), void *arg,
    size_t *count) KR_WUR;

/* Read path (bounded, O_NOFOLLOW) and kr_manifest_parse it. */
int kr_manifest_load(const struct kr_mf_trust *t, const char *path,
    struct kr_manifest **out) KR_WUR;

void kr_manifest_free(struct kr_manifest *m);

/*
 * JOSE helpers (media/jws.c), exposed for the tests and the fuzzer.
 * Decoders are strict: alphabet, length, padding (standard base64 must be
 * padded, base64url must not) and canonical unused bits; *out is malloc'd
 * (free()), NUL-free binary. KR_ERR_FORMAT, KR_ERR_TOO_LARGE.
 */
#define KR_B64_MAX (1024 * 1024)
int kr_jws_b64url_decode(const char *in, size_t len, uint8_t **out,
    size_t *outlen) KR_WUR;
int kr_jws_b64_decode(const char *in, size_t len, uint8_t **out,
    size_t *outlen) KR_WUR;
/* Unpadded base64url into out (outlen >= 4*ceil(len/3)+1). */
int kr_jws_b64url_encode(const uint8_t *in, size_t len, char *out,
    size_t outlen) KR_WUR;
/* RFC 3339 UTC "2020-06-09T22:49:52.470Z" (fraction dropped). -1 if bad. */
int kr_parse_rfc3339(const char *s, time_t *out) KR_WUR;
/* ES256: sig is 64 bytes r||s (high S accepted) over input[0..inlen).
 * KR_ERR_SIGNATURE, KR_ERR_LIBCRYPTO. */
int kr_jws_es256_verify(EVP_PKEY *pub, const char *input, size_t inlen,
    const uint8_t *sig, size_t siglen) KR_WUR;

#endif
