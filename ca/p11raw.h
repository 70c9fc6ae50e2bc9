/*
 * p11raw.h - internal to ca/: the thin raw PKCS#11 layer over a dlopen'd
 * module (what libp11 0.4.12 cannot do). Never calls C_Finalize: libp11,
 * loaded second, finalizes last (DESIGN.md section 6).
 */
#ifndef KR_CA_P11RAW_H
#define KR_CA_P11RAW_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>
#include <openssl/evp.h>

#include "ca/hsm.h"
#include "lib/err.h"

struct kr_p11 {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	char module[4096];
	int initialized;	/* we called C_Initialize successfully */
};

/* dlopen + C_GetFunctionList + C_Initialize. KR_ERR_TOKEN on failure. */
int kr_p11_load(const char *module, struct kr_p11 *p) KR_WUR;
/* Forget the module (C_Finalize only if finalize != 0; no dlclose). */
void kr_p11_unload(struct kr_p11 *p, int finalize);

/* Slot of the initialised token with this label. KR_ERR_NOT_FOUND. */
int kr_p11_find_token(struct kr_p11 *p, const char *label,
    CK_SLOT_ID *slot) KR_WUR;
/* First slot with an uninitialised token. KR_ERR_TOKEN if none. */
int kr_p11_free_slot(struct kr_p11 *p, CK_SLOT_ID *slot) KR_WUR;

int kr_p11_init_token(struct kr_p11 *p, CK_SLOT_ID slot, const char *label,
    const char *so_pin, size_t so_pinlen, const char *pin, size_t pinlen)
    KR_WUR;

int kr_p11_open(struct kr_p11 *p, CK_SLOT_ID slot, int rw,
    CK_SESSION_HANDLE *s, const char *what) KR_WUR;
/* C_Login as user; CKR_USER_ALREADY_LOGGED_IN is success. */
int kr_p11_login(struct kr_p11 *p, CK_SESSION_HANDLE s, const char *pin,
    size_t pinlen, const char *what) KR_WUR;

/* Up to max objects matching label (and class if cls != (CK_ULONG)-1). */
int kr_p11_find(struct kr_p11 *p, CK_SESSION_HANDLE s, const char *label,
    CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *objs, size_t max, size_t *n)
    KR_WUR;

/* Attribute value (malloc'd) of one object. */
int kr_p11_attr(struct kr_p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE t, uint8_t **val, size_t *len) KR_WUR;
int kr_p11_attr_ulong(struct kr_p11 *p, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t, CK_ULONG *v) KR_WUR;

int kr_p11_generate(struct kr_p11 *p, CK_SESSION_HANDLE s,
    enum kr_key_type type, const char *label, const uint8_t *id,
    size_t idlen, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv) KR_WUR;

/* Public key of a key object (public or private) as an EVP_PKEY. */
int kr_p11_pubkey(struct kr_p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    enum kr_key_type *type, EVP_PKEY **out) KR_WUR;

/* C_SignInit + C_Sign; returns CK_RV (0 ok) so callers can recover. */
CK_RV kr_p11_sign(struct kr_p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k,
    CK_MECHANISM_TYPE mech, const uint8_t *in, size_t inlen, uint8_t *sig,
    size_t *siglen);

/* Is this CK_RV a lost session (worth reopening once)? */
int kr_p11_session_lost(CK_RV rv);

#endif
