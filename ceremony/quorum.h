/*
 * quorum.h - M-of-N quorum over a token PIN (DESIGN.md §5.5).
 *
 * A token PIN is a random secret (KR_Q_SECRET_LEN bytes from the HSM RNG,
 * given to C_Login as lower-case hex) split M-of-N with libgfshare. The
 * public description of a split is a share set (struct kr_qset): a random
 * set id, the label of the token it unlocks, M, N, custodian names, and one
 * commitment per share:
 *   commit[i] = SHA-256("keyroom share commitment v1\0" || set id ||
 *                       index || M || N || share)
 * Shares are uniformly random 32-byte strings, so a commitment reveals
 * nothing usable; it lets the appliance name every share good or bad the
 * moment it is entered. A share from another set names that set; a share
 * of a retired set (after a reshare) names the retirement; a forged share
 * (right set, right checksums, wrong bytes) fails its commitment.
 * Share sets live in the LMDB DBI "quorum" (ceremony/qstore.h).
 *
 * Secrets and shares live in kr_secure_alloc'd memory and are wiped.
 */
#ifndef KR_QUORUM_H
#define KR_QUORUM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"

#define KR_Q_SECRET_LEN	32	/* bytes of PIN secret and of each share */
#define KR_Q_PIN_LEN	(2 * KR_Q_SECRET_LEN)	/* hex PIN text */
#define KR_Q_ID_LEN	8	/* share-set id bytes */
#define KR_Q_ID_HEX	(2 * KR_Q_ID_LEN + 1)
#define KR_Q_MAX_N	32	/* most shares in a set */
#define KR_Q_NAME_MAX	64	/* custodian name incl. NUL */
#define KR_Q_LABEL_MAX	32	/* token label incl. NUL */

struct kr_qmember {
	char name[KR_Q_NAME_MAX];	/* custodian */
	uint8_t commit[32];
};

/* Public description of one split. No secret in here. */
struct kr_qset {
	uint8_t id[KR_Q_ID_LEN];
	char label[KR_Q_LABEL_MAX];	/* what it unlocks: "root", "issuing" */
	unsigned m, n;			/* 1 <= m <= n <= KR_Q_MAX_N */
	int oob;			/* authenticated out of band: no shares */
	int retired;
	/*
	 * Cards issued, token PIN not yet known to be changed (a reshare or
	 * takeover in flight). The next unlock settles it: this set's PIN
	 * logs in -> it becomes active; else it is retired (successor: the
	 * set that still unlocks).
	 */
	int pending;
	uint8_t successor[KR_Q_ID_LEN];	/* set that replaced it (if retired) */
	char created[32];		/* RFC 3339 */
	char retired_at[32];
	uint8_t secret_check[32];	/* SHA-256(domain || id || secret) */
	struct kr_qmember member[KR_Q_MAX_N];	/* member[i] is index i+1 */
};

/* One share as entered from a card. Keep in kr_secure_alloc'd memory. */
struct kr_share {
	uint8_t set_id[KR_Q_ID_LEN];
	uint8_t index;			/* libgfshare sharenr, 1..n */
	uint8_t m, n;
	uint8_t bytes[KR_Q_SECRET_LEN];
};

/* Set id as 16 lower-case hex characters. */
void kr_qset_id_hex(const uint8_t id[KR_Q_ID_LEN], char out[KR_Q_ID_HEX]);

/*
 * Split secret[KR_Q_SECRET_LEN] M-of-N for the custodians names[0..n).
 * A fresh random set id is drawn. *set_out is malloc'd (free with free());
 * *shares_out is an array of n kr_share in secure memory (free with
 * kr_shares_free(shares, n)). Errors: KR_ERR_INVALID_ARGUMENT (m, n, names
 * out of bounds or duplicated), KR_ERR_LIBCRYPTO (RNG), KR_ERR_ALLOC.
 */
int kr_quorum_split(const uint8_t *secret, const char *label, unsigned m,
    unsigned n, const char *const *names, struct kr_qset **set_out,
    struct kr_share **shares_out) KR_WUR;

/* A share set for an HSM that authenticates out of band (PIN-entry
 * device, protected authentication path): no shares, empty PIN. */
int kr_quorum_oob_set(const char *label, struct kr_qset **set_out) KR_WUR;

void kr_shares_free(struct kr_share *shares, unsigned n);

/*
 * Check one share against the set it must belong to, naming the fault:
 * KR_ERR_QUORUM with "share N belongs to share set X (label), not Y",
 * "... share set X was retired on T (replaced by Z)", "... unknown share
 * set X", "index N outside 1..n", "does not match its commitment".
 * `known` (may be NULL) lists every set the appliance knows, for naming
 * foreign and stale shares.
 */
int kr_quorum_check_share(const struct kr_qset *set,
    const struct kr_share *s, const struct kr_qset *const *known,
    size_t nknown) KR_WUR;

/* Collects verified shares of one set until M are present. */
struct kr_unlock;

int kr_unlock_new(const struct kr_qset *set, struct kr_unlock **out) KR_WUR;
/*
 * Check and keep a share (copied into secure memory). A duplicate index is
 * KR_ERR_QUORUM "share N already entered"; others as kr_quorum_check_share.
 * A refused share changes nothing.
 */
int kr_unlock_add(struct kr_unlock *u, const struct kr_share *s,
    const struct kr_qset *const *known, size_t nknown) KR_WUR;
/* How many shares are in; 1 when at least M. */
unsigned kr_unlock_count(const struct kr_unlock *u);
int kr_unlock_ready(const struct kr_unlock *u);
/* Indices entered, "1,3,4" (sorted). */
int kr_unlock_indices(const struct kr_unlock *u, char *buf, size_t len)
    KR_WUR;
/*
 * Rebuild the secret into secret[KR_Q_SECRET_LEN] (caller's secure
 * memory) and check it against the set's secret_check. Fewer than M shares
 * is KR_ERR_QUORUM "2 of 3 shares entered for share set X"; a mismatch is
 * KR_ERR_QUORUM. On error secret is wiped.
 */
int kr_unlock_combine(const struct kr_unlock *u, uint8_t *secret) KR_WUR;
void kr_unlock_free(struct kr_unlock *u);

/* The PIN text given to C_Login: lower-case hex of the secret, NUL-ended
 * (pin must hold KR_Q_PIN_LEN + 1 bytes of secure memory). */
void kr_quorum_pin_text(const uint8_t *secret, char *pin);

/* Does secret match set->secret_check (constant time)? */
int kr_quorum_secret_matches(const struct kr_qset *set,
    const uint8_t *secret);

/* JSON form of a set (stored in the quorum DBI and shown by `keyroom
 * quorum show --json`). from_json is strict: KR_ERR_FORMAT. */
int kr_qset_to_json(const struct kr_qset *set, json_t **out) KR_WUR;
int kr_qset_from_json(const json_t *j, struct kr_qset **out) KR_WUR;

#endif
