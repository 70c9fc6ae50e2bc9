/*
 * polstore.h - which policy the quorum installed: the LMDB DBI "policy" of
 * the audit environment (docs/STATE.md). One row:
 *   "installed" -> {"digest": 64 hex, "sha256": 64 hex, "entry": N}
 * written by the install-policy ceremony in the audit transaction that
 * logs config-change entry N, which carries the same policy-digest (the
 * row is a pointer; the entry it points to is what the Merkle tree and
 * the auditors cover).
 *
 * Once a policy has been installed so, `batch sign` runs only under that
 * very policy (kr_policy_digest): an edit of policy.yaml or of a
 * certificate file it reads, made outside the ceremony, stops signing
 * until the quorum installs a policy again. Once the issuing token is
 * under quorum, a policy must have been installed so. Only a development
 * state (no share set for the issuing token, PINs managed by hand) runs
 * under whatever policy.yaml holds; each batch-begin entry names the
 * digest it ran under either way.
 */
#ifndef KR_POLSTORE_H
#define KR_POLSTORE_H

#include <stdint.h>

#include <lmdb.h>

#include "audit/audit.h"

#define KR_POLICY_DBI "policy"

/* Record, in the caller's audit transaction, that log entry `entry`
 * installed the policy with this digest and policy.yaml SHA-256. */
int kr_polstore_put(struct kr_log *log, MDB_txn *txn,
    const uint8_t digest[32], const uint8_t sha256[32], uint64_t entry)
    KR_WUR;

/*
 * For batch sign, with the digest of the policy in force
 * (kr_policy_digest): 0 if it is the installed one, or if none was ever
 * installed and the issuing token is not under quorum. KR_ERR_STATE
 * otherwise: "the policy in force (digest X) is not the one the quorum
 * installed (digest Y, log entry N): ...", "the issuing token is under
 * quorum (share set S) but no policy was installed by the install-policy
 * ceremony ...", or a malformed row, or a row whose entry is not a
 * config-change carrying its digest.
 */
int kr_polstore_require(struct kr_log *log, const uint8_t digest[32])
    KR_WUR;

#endif
