/*
 * tokenops.c - the few token operations a ceremony needs beyond ca/hsm.h:
 * does a token exist, change its user PIN (C_SetPIN), destroy a key pair
 * (C_DestroyObject). Each uses its own session on the already-initialised
 * module through the raw PKCS#11 layer (ca/p11raw.h) and closes it.
 */
#include <string.h>

#include "ca/p11raw.h"
#include "ca/tokstore.h"
#include "ceremony/tokenops.h"
#include "lib/util.h"

#define MAX_OBJS 8

int
kr_tokenop_exists(const char *module, const char *label, int *exists)
{
	struct kr_p11 p;
	CK_SLOT_ID slot;
	int r;

	*exists = 0;
	if ((r = kr_p11_load(module, &p)) != 0)
		return r;
	r = kr_p11_find_token(&p, label, &slot);
	if (r == 0)
		*exists = 1;
	else if (r == KR_ERR_NOT_FOUND)
		r = 0;
	kr_p11_unload(&p, 0);
	return r;
}

static int
session(struct kr_p11 *p, const char *module, const char *label,
    const char *pin, size_t pinlen, CK_SESSION_HANDLE *s)
{
	CK_SLOT_ID slot;
	int r;

	if ((r = kr_p11_load(module, p)) != 0)
		return r;
	if ((r = kr_p11_find_token(p, label, &slot)) != 0) {
		kr_p11_unload(p, 0);
		return r == KR_ERR_NOT_FOUND ? kr_errf(KR_ERR_TOKEN, "token %s "
		    "not found", label) : r;
	}
	if ((r = kr_p11_open(p, slot, 1, s, label)) != 0) {
		kr_p11_unload(p, 0);
		return r;
	}
	if ((r = kr_p11_login(p, *s, pin, pinlen, label)) != 0) {
		(void)p->f->C_CloseSession(*s);
		kr_p11_unload(p, 0);
		return r;
	}
	return 0;
}

int
kr_tokenop_set_pin(const char *module, const char *label, const char *old,
    size_t oldlen, const char *new, size_t newlen)
{
	struct kr_p11 p;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int r;

	if ((r = session(&p, module, label, old, oldlen, &s)) != 0)
		return r;
	rv = p.f->C_SetPIN(s, (CK_UTF8CHAR_PTR)(uintptr_t)old,
	    (CK_ULONG)oldlen, (CK_UTF8CHAR_PTR)(uintptr_t)new,
	    (CK_ULONG)newlen);
	r = rv == CKR_OK ? 0 : kr_err_ckrv(rv, "token %s: C_SetPIN", label);
	(void)p.f->C_CloseSession(s);
	kr_p11_unload(&p, 0);
	/* The copy must not keep the retired PIN (ca/tokstore.c). */
	if (r == 0)
		r = kr_tokstore_sync();
	return r;
}

int
kr_tokenop_destroy_key(const char *module, const char *label,
    const char *pin, size_t pinlen, const char *key_label, size_t *ndone)
{
	CK_OBJECT_HANDLE objs[MAX_OBJS];
	struct kr_p11 p;
	CK_SESSION_HANDLE s;
	size_t n = 0, i;
	CK_RV rv;
	int r;

	*ndone = 0;
	if ((r = session(&p, module, label, pin, pinlen, &s)) != 0)
		return r;
	if ((r = kr_p11_find(&p, s, key_label, (CK_ULONG)-1, objs, MAX_OBJS,
	    &n)) != 0)
		goto out;
	if (n == 0) {
		r = kr_errf(KR_ERR_NOT_FOUND, "token %s: no key labelled '%s'",
		    label, key_label);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((rv = p.f->C_DestroyObject(s, objs[i])) != CKR_OK) {
			r = kr_err_ckrv(rv, "token %s: C_DestroyObject '%s'",
			    label, key_label);
			goto out;
		}
		(*ndone)++;
	}
	/* Nothing with that label may remain. */
	if ((r = kr_p11_find(&p, s, key_label, (CK_ULONG)-1, objs, MAX_OBJS,
	    &n)) != 0)
		goto out;
	if (n != 0)
		r = kr_errf(KR_ERR_TOKEN, "token %s: '%s' still present after "
		    "C_DestroyObject", label, key_label);
 out:
	(void)p.f->C_CloseSession(s);
	kr_p11_unload(&p, 0);
	return r;
}

int
kr_tokenop_relabel(const char *module, const char *label, const char *pin,
    size_t pinlen, const char *from, const char *to, size_t *ndone)
{
	CK_OBJECT_HANDLE objs[MAX_OBJS];
	CK_ATTRIBUTE a;
	struct kr_p11 p;
	CK_SESSION_HANDLE s;
	size_t n = 0, i;
	CK_RV rv;
	int r;

	*ndone = 0;
	if ((r = session(&p, module, label, pin, pinlen, &s)) != 0)
		return r;
	if ((r = kr_p11_find(&p, s, to, (CK_ULONG)-1, objs, MAX_OBJS,
	    &n)) != 0)
		goto out;
	if (n != 0) {
		r = kr_errf(KR_ERR_EXISTS, "token %s: '%s' still exists", label,
		    to);
		goto out;
	}
	if ((r = kr_p11_find(&p, s, from, (CK_ULONG)-1, objs, MAX_OBJS,
	    &n)) != 0)
		goto out;
	if (n == 0) {
		r = kr_errf(KR_ERR_NOT_FOUND, "token %s: no key labelled '%s'",
		    label, from);
		goto out;
	}
	a.type = CKA_LABEL;
	a.pValue = (void *)(uintptr_t)to;
	a.ulValueLen = (CK_ULONG)strlen(to);
	for (i = 0; i < n; i++) {
		if ((rv = p.f->C_SetAttributeValue(s, objs[i], &a, 1)) !=
		    CKR_OK) {
			r = kr_err_ckrv(rv, "token %s: relabel '%s'", label,
			    from);
			goto out;
		}
		(*ndone)++;
	}
 out:
	(void)p.f->C_CloseSession(s);
	kr_p11_unload(&p, 0);
	return r;
}
