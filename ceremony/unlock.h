/*
 * unlock.h - a quorum unlocks a token: shares are read from their sources
 * (files, descriptors, environment, or typed at the terminal), each named
 * good or bad as it is entered, the PIN is rebuilt in locked memory, used
 * for C_Login and logged as a quorum-unlock entry (which indices).
 */
#ifndef KR_UNLOCK_H
#define KR_UNLOCK_H

#include <stdio.h>

#include "ceremony/appl.h"
#include "ceremony/quorum.h"

#define KR_SHARE_SRC_MAX 64
#define KR_SHARE_TEXT_MAX 4096	/* one share card file */

struct kr_share_src {
	char role[KR_Q_LABEL_MAX];	/* "" = offered to any role */
	const char *spec;		/* file:PATH, fd:N, env:NAME, tty */
	int used;
};

struct kr_shares_in {
	struct kr_share_src src[KR_SHARE_SRC_MAX];
	size_t n;
	int interactive;	/* prompt on the terminal for missing shares */
};

/* Add "[ROLE=]SPEC" from the command line. KR_ERR_INVALID_ARGUMENT. */
int kr_shares_add_arg(struct kr_shares_in *in, const char *arg) KR_WUR;

/*
 * Read and parse one share from a source (spec as above). *s is the
 * caller's secure memory. Errors name the source.
 */
int kr_share_read(const char *spec, struct kr_share *s) KR_WUR;

/*
 * The active share set of `role` unlocks its token: offered shares are
 * checked one by one (progress on `msg`), then the PIN is rebuilt and the
 * token opened. The quorum-unlock entry (token, set, indices, threshold)
 * is committed before returning. *tok is the logged-in token; if pin is
 * not NULL it gets the PIN text (kr_secure_alloc(KR_PIN_MAX), free with
 * kr_secure_free(*pin, KR_PIN_MAX)) and *pinlen its length. A refused or
 * missing share is KR_ERR_QUORUM naming it; nothing is logged or changed.
 */
int kr_quorum_unlock_role(struct kr_appl *a, struct kr_shares_in *in,
    const char *role, const char *actor, FILE *msg, struct kr_token **tok,
    char **pin, size_t *pinlen) KR_WUR;

/* Load the active set of role and every known set (read txn). */
int kr_quorum_load(struct kr_appl *a, const char *role, struct kr_qset **set,
    struct kr_qset ***all, size_t *nall) KR_WUR;

#endif
