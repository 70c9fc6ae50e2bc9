/*
 * tokenops.h - token operations for ceremonies beyond ca/hsm.h (see
 * tokenops.c). module is the PKCS#11 module path already loaded by the
 * process (kr_hsm_module()); label is the token label.
 */
#ifndef KR_TOKENOPS_H
#define KR_TOKENOPS_H

#include <stddef.h>

#include "lib/err.h"

/* *exists = 1 if an initialised token has this label. */
int kr_tokenop_exists(const char *module, const char *label, int *exists)
    KR_WUR;

/* C_SetPIN as the user: KR_ERR_PIN if old is wrong. */
int kr_tokenop_set_pin(const char *module, const char *label, const char *old,
    size_t oldlen, const char *new, size_t newlen) KR_WUR;

/*
 * C_DestroyObject on every object labelled key_label (private and public
 * key), then check none remains. *ndone: objects destroyed.
 * KR_ERR_NOT_FOUND if there was none.
 */
int kr_tokenop_destroy_key(const char *module, const char *label,
    const char *pin, size_t pinlen, const char *key_label, size_t *ndone)
    KR_WUR;

/* *n: how many objects in the token are labelled key_label. */
int kr_tokenop_count(const char *module, const char *label, const char *pin,
    size_t pinlen, const char *key_label, size_t *n) KR_WUR;

/*
 * Give every object labelled `from` the label `to` (root rotation: the
 * next key takes the configured label). KR_ERR_EXISTS if anything is
 * labelled `to` already; KR_ERR_NOT_FOUND if nothing is labelled `from`.
 * With resume (finishing an interrupted promotion): nothing labelled
 * `from` but something labelled `to` is success (*ndone 0), and objects
 * labelled `to` with the CKA_ID of those labelled `from` (a pair half
 * relabelled) do not count as existing.
 */
int kr_tokenop_relabel(const char *module, const char *label, const char *pin,
    size_t pinlen, const char *from, const char *to, int resume,
    size_t *ndone) KR_WUR;

#endif
