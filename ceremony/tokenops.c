/*
 * tokenops.c - the few token operations a ceremony needs beyond ca/hsm.h:
 * does a token exist, change its user PIN (C_SetPIN), destroy a key pair
 * (C_DestroyObject). Each uses its own session on the already-initialised
 * module through the raw PKCS#11 layer (ca/p11raw.h) and closes it.
 */
#include <string.h>

#include "audit/audit.h"
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
kr_tokenop_count(const char *module, const char *label, const char *pin,
    size_t pinlen, const char *key_label, size_t *n)
{
	CK_OBJECT_HANDLE objs[MAX_OBJS];
	struct kr_p11 p;
	CK_SESSION_HANDLE s;
	int r;

	*n = 0;
	if ((r = session(&p, module, label, pin, pinlen, &s)) != 0)
		return r;
	r = kr_p11_find(&p, s, key_label, (CK_ULONG)-1, objs, MAX_OBJS, n);
	(void)p.f->C_CloseSession(s);
	kr_p11_unload(&p, 0);
	return r;
}

/* CKA_ID of an object into id (cap bytes); *len 0 if it has none. */
static int
obj_id(struct kr_p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    unsigned char *id, size_t cap, size_t *len)
{
	CK_ATTRIBUTE a = { CKA_ID, NULL, 0 };
	CK_RV rv;

	*len = 0;
	if ((rv = p->f->C_GetAttributeValue(s, o, &a, 1)) != CKR_OK ||
	    a.ulValueLen == (CK_ULONG)-1 || a.ulValueLen > cap)
		return rv == CKR_OK ? kr_errf(KR_ERR_TOKEN, "CKA_ID too long") :
		    kr_err_ckrv(rv, "CKA_ID");
	a.pValue = id;
	if ((rv = p->f->C_GetAttributeValue(s, o, &a, 1)) != CKR_OK)
		return kr_err_ckrv(rv, "CKA_ID");
	*len = a.ulValueLen;
	return 0;
}

/* 1 if every object in `done` has the CKA_ID of an object in `left`
 * (the same key pair, half relabelled), 0 if not. */
static int
same_pair(struct kr_p11 *p, CK_SESSION_HANDLE s, const CK_OBJECT_HANDLE *done,
    size_t nd, const CK_OBJECT_HANDLE *left, size_t nl, int *same)
{
	unsigned char a[256], b[256];
	size_t i, j, la, lb;
	int r, found;

	*same = 0;
	for (i = 0; i < nd; i++) {
		if ((r = obj_id(p, s, done[i], a, sizeof(a), &la)) != 0)
			return r;
		for (j = 0, found = 0; j < nl && !found; j++) {
			if ((r = obj_id(p, s, left[j], b, sizeof(b), &lb)) != 0)
				return r;
			found = la != 0 && la == lb && memcmp(a, b, la) == 0;
		}
		if (!found)
			return 0;
	}
	*same = 1;
	return 0;
}

int
kr_tokenop_relabel(const char *module, const char *label, const char *pin,
    size_t pinlen, const char *from, const char *to, int resume,
    size_t *ndone)
{
	CK_OBJECT_HANDLE objs[MAX_OBJS], tos[MAX_OBJS];
	CK_ATTRIBUTE a;
	struct kr_p11 p;
	CK_SESSION_HANDLE s;
	size_t n = 0, nto = 0, i;
	CK_RV rv;
	int r, same = 0;

	*ndone = 0;
	if ((r = session(&p, module, label, pin, pinlen, &s)) != 0)
		return r;
	if ((r = kr_p11_find(&p, s, to, (CK_ULONG)-1, tos, MAX_OBJS,
	    &nto)) != 0 ||
	    (r = kr_p11_find(&p, s, from, (CK_ULONG)-1, objs, MAX_OBJS,
	    &n)) != 0)
		goto out;
	if (nto != 0 && resume && n == 0)
		goto out;	/* done before the interruption */
	if (nto != 0 && resume && (r = same_pair(&p, s, tos, nto, objs, n,
	    &same)) != 0)
		goto out;
	if (nto != 0 && !(resume && same)) {
		r = kr_errf(KR_ERR_EXISTS, "token %s: '%s' still exists", label,
		    to);
		goto out;
	}
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
		kr_audit_crash_point("promote: a key object relabelled");
	}
 out:
	(void)p.f->C_CloseSession(s);
	kr_p11_unload(&p, 0);
	return r;
}
