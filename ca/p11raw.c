/*
 * p11raw.c - the raw PKCS#11 layer: dlopen the module, token init, key
 * generation (EC, RSA, Ed25519), object lookup, public key export, C_Sign.
 * libp11 covers login-and-sign for ECDSA/RSA; this covers the rest.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include "ca/p11raw.h"
#include "ca/tokstore.h"
#include "lib/util.h"

#define MAX_SLOTS 256

int
kr_p11_session_lost(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	    rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
	    rv == CKR_USER_NOT_LOGGED_IN;
}

int
kr_p11_load(const char *module, struct kr_p11 *p)
{
	CK_C_GetFunctionList getfl;
	CK_C_INITIALIZE_ARGS args;
	const char *e;
	CK_RV rv;
	int r;

	memset(p, 0, sizeof(*p));
	if ((r = kr_snprintf(p->module, sizeof(p->module), "%s", module)) != 0)
		return kr_errctx(r, "PKCS#11 module path");
	if ((p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		e = dlerror();
		return kr_errf(KR_ERR_TOKEN, "PKCS#11 module %s: cannot load: "
		    "%s", module, e != NULL ? e : "unknown error");
	}
	*(void **)&getfl = dlsym(p->dl, "C_GetFunctionList");
	if (getfl == NULL) {
		r = kr_errf(KR_ERR_TOKEN, "PKCS#11 module %s: not a PKCS#11 "
		    "module (no C_GetFunctionList)", module);
		goto fail;
	}
	if ((rv = getfl(&p->f)) != CKR_OK || p->f == NULL) {
		r = kr_errf(KR_ERR_TOKEN, "PKCS#11 module %s: "
		    "C_GetFunctionList failed (%s)", module, kr_ckrv_name(rv));
		goto fail;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = p->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		r = kr_errf(KR_ERR_TOKEN, "PKCS#11 module %s: C_Initialize "
		    "failed (%s)", module, kr_ckrv_name(rv));
		goto fail;
	}
	p->initialized = (rv == CKR_OK);
	return 0;
 fail:
	dlclose(p->dl);
	p->dl = NULL;
	p->f = NULL;
	return r;
}

void
kr_p11_unload(struct kr_p11 *p, int finalize)
{
	if (p == NULL || p->dl == NULL)
		return;
	if (finalize && p->f != NULL)
		(void)p->f->C_Finalize(NULL);
	/*
	 * No dlclose: the module stays mapped (a module may keep threads or
	 * atexit handlers), and leak reports can then name it.
	 */
	p->dl = NULL;
	p->f = NULL;
}

/*
 * SoftHSM 2.6.1 leaks a few bytes per EdDSA C_SignInit (the curve OID of
 * the key). Not ours to fix: keep LeakSanitizer quiet about the module's
 * own allocations in SAN builds of every binary that links ca/. Matching
 * the module in a leak's stack needs the slow unwinder on malloc (OpenSSL
 * has no frame pointers); a short context keeps it affordable.
 */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0:malloc_context_size=12";
}

const char *__lsan_default_options(void);
const char *
__lsan_default_options(void)
{
	return "print_suppressions=0";
}

const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:libsofthsm2.so\n";
}

/* Token label without its blank padding. */
static void
token_label(const CK_TOKEN_INFO *ti, char out[33])
{
	size_t n = sizeof(ti->label);

	memcpy(out, ti->label, n);
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
		n--;
	out[n] = '\0';
}

static int
slot_list(struct kr_p11 *p, CK_SLOT_ID *slots, CK_ULONG *n)
{
	CK_RV rv;

	*n = MAX_SLOTS;
	if ((rv = p->f->C_GetSlotList(CK_TRUE, slots, n)) != CKR_OK)
		return kr_err_ckrv(rv, "PKCS#11 module %s: C_GetSlotList",
		    p->module);
	return 0;
}

int
kr_p11_find_token(struct kr_p11 *p, const char *label, CK_SLOT_ID *slot)
{
	CK_SLOT_ID slots[MAX_SLOTS];
	CK_TOKEN_INFO ti;
	CK_ULONG i, n;
	char l[33];
	int r;

	if ((r = slot_list(p, slots, &n)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		token_label(&ti, l);
		if (strcmp(l, label) == 0) {
			*slot = slots[i];
			return 0;
		}
	}
	return kr_errf(KR_ERR_NOT_FOUND, "token %s not found in PKCS#11 "
	    "module %s", label, p->module);
}

int
kr_p11_free_slot(struct kr_p11 *p, CK_SLOT_ID *slot)
{
	CK_SLOT_ID slots[MAX_SLOTS];
	CK_TOKEN_INFO ti;
	CK_ULONG i, n;
	int r;

	if ((r = slot_list(p, slots, &n)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
			*slot = slots[i];
			return 0;
		}
	}
	return kr_errf(KR_ERR_TOKEN, "PKCS#11 module %s: no slot with an "
	    "uninitialised token", p->module);
}

int
kr_p11_open(struct kr_p11 *p, CK_SLOT_ID slot, int rw, CK_SESSION_HANDLE *s,
    const char *what)
{
	CK_FLAGS fl = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
	CK_RV rv;

	if ((rv = p->f->C_OpenSession(slot, fl, NULL, NULL, s)) != CKR_OK)
		return kr_err_ckrv(rv, "token %s: C_OpenSession", what);
	return 0;
}

int
kr_p11_login(struct kr_p11 *p, CK_SESSION_HANDLE s, const char *pin,
    size_t pinlen, const char *what)
{
	CK_RV rv;

	rv = p->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)pin,
	    (CK_ULONG)pinlen);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return 0;
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID ||
	    rv == CKR_PIN_LEN_RANGE)
		return kr_errf(KR_ERR_PIN, "token %s: wrong PIN (%s)", what,
		    kr_ckrv_name(rv));
	if (rv == CKR_PIN_LOCKED)
		return kr_errf(KR_ERR_PIN, "token %s: PIN locked (%s)", what,
		    kr_ckrv_name(rv));
	if (rv == CKR_USER_PIN_NOT_INITIALIZED)
		return kr_errf(KR_ERR_TOKEN, "token %s: user PIN not "
		    "initialised (%s)", what, kr_ckrv_name(rv));
	return kr_err_ckrv(rv, "token %s: C_Login", what);
}

int
kr_p11_init_token(struct kr_p11 *p, CK_SLOT_ID slot, const char *label,
    const char *so_pin, size_t so_pinlen, const char *pin, size_t pinlen)
{
	CK_UTF8CHAR lab[32];
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	size_t n = strlen(label);
	CK_RV rv;
	int r;

	if (n == 0 || n > sizeof(lab))
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "token label '%s': "
		    "1..32 bytes", label);
	memset(lab, ' ', sizeof(lab));
	memcpy(lab, label, n);
	rv = p->f->C_InitToken(slot, (CK_UTF8CHAR_PTR)(uintptr_t)so_pin,
	    (CK_ULONG)so_pinlen, lab);
	if (rv != CKR_OK)
		return kr_err_ckrv(rv, "token %s: C_InitToken", label);
	/* SoftHSM moves an initialised token to a new slot id. */
	if ((r = kr_p11_find_token(p, label, &slot)) != 0)
		return kr_errctx(r, "after C_InitToken");
	if ((r = kr_p11_open(p, slot, 1, &s, label)) != 0)
		return r;
	rv = p->f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)(uintptr_t)so_pin,
	    (CK_ULONG)so_pinlen);
	if (rv != CKR_OK) {
		r = kr_err_ckrv(rv, "token %s: SO login", label);
		goto out;
	}
	rv = p->f->C_InitPIN(s, (CK_UTF8CHAR_PTR)(uintptr_t)pin,
	    (CK_ULONG)pinlen);
	if (rv != CKR_OK) {
		r = kr_err_ckrv(rv, "token %s: C_InitPIN", label);
		(void)p->f->C_Logout(s);
		goto out;
	}
	(void)p->f->C_Logout(s);
	r = kr_tokstore_sync();	/* the new token's files, copied now */
 out:
	(void)p->f->C_CloseSession(s);
	return r;
}

int
kr_p11_find(struct kr_p11 *p, CK_SESSION_HANDLE s, const char *label,
    CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *objs, size_t max, size_t *n)
{
	CK_ATTRIBUTE tmpl[2];
	CK_ULONG cnt = 0, nt = 0;
	CK_RV rv;

	*n = 0;
	tmpl[nt].type = CKA_LABEL;
	tmpl[nt].pValue = (void *)(uintptr_t)label;
	tmpl[nt++].ulValueLen = (CK_ULONG)strlen(label);
	if (cls != (CK_OBJECT_CLASS)-1) {
		tmpl[nt].type = CKA_CLASS;
		tmpl[nt].pValue = &cls;
		tmpl[nt++].ulValueLen = sizeof(cls);
	}
	if ((rv = p->f->C_FindObjectsInit(s, tmpl, nt)) != CKR_OK)
		return kr_err_ckrv(rv, "C_FindObjectsInit '%s'", label);
	rv = p->f->C_FindObjects(s, objs, (CK_ULONG)max, &cnt);
	(void)p->f->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return kr_err_ckrv(rv, "C_FindObjects '%s'", label);
	*n = cnt;
	return 0;
}

int
kr_p11_attr(struct kr_p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE t, uint8_t **val, size_t *len)
{
	CK_ATTRIBUTE a = { t, NULL, 0 };
	CK_RV rv;

	*val = NULL;
	*len = 0;
	if ((rv = p->f->C_GetAttributeValue(s, o, &a, 1)) != CKR_OK)
		return kr_err_ckrv(rv, "C_GetAttributeValue 0x%lx",
		    (unsigned long)t);
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 65536)
		return kr_errf(KR_ERR_PKCS11, "attribute 0x%lx unavailable",
		    (unsigned long)t);
	if ((a.pValue = malloc(a.ulValueLen + 1)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "attribute");
	if ((rv = p->f->C_GetAttributeValue(s, o, &a, 1)) != CKR_OK) {
		free(a.pValue);
		return kr_err_ckrv(rv, "C_GetAttributeValue 0x%lx",
		    (unsigned long)t);
	}
	*val = a.pValue;
	*len = a.ulValueLen;
	return 0;
}

int
kr_p11_attr_ulong(struct kr_p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE t, CK_ULONG *v)
{
	CK_ATTRIBUTE a = { t, v, sizeof(*v) };
	CK_RV rv;

	if ((rv = p->f->C_GetAttributeValue(s, o, &a, 1)) != CKR_OK)
		return kr_err_ckrv(rv, "C_GetAttributeValue 0x%lx",
		    (unsigned long)t);
	return 0;
}

/* DER of a curve OID from OpenSSL (never hand-written). */
static int
curve_oid_der(int nid, uint8_t **der, size_t *len)
{
	const ASN1_OBJECT *o = OBJ_nid2obj(nid);
	unsigned char *p = NULL;
	int n;

	if (o == NULL || (n = i2d_ASN1_OBJECT(o, &p)) <= 0)
		return kr_err_ssl("curve OID %d", nid);
	*der = p;
	*len = (size_t)n;
	return 0;
}

/* PrintableString "edwards25519", as SoftHSM also accepts. */
static int
printable_der(const char *s, uint8_t **der, size_t *len)
{
	ASN1_PRINTABLESTRING *ps = ASN1_PRINTABLESTRING_new();
	unsigned char *p = NULL;
	int n;

	if (ps == NULL || !ASN1_STRING_set(ps, s, -1) ||
	    (n = i2d_ASN1_PRINTABLESTRING(ps, &p)) <= 0) {
		ASN1_PRINTABLESTRING_free(ps);
		return kr_err_ssl("PrintableString %s", s);
	}
	ASN1_PRINTABLESTRING_free(ps);
	*der = p;
	*len = (size_t)n;
	return 0;
}

int
kr_p11_generate(struct kr_p11 *p, CK_SESSION_HANDLE s, enum kr_key_type type,
    const char *label, const uint8_t *id, size_t idlen,
    CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = 3072;
	CK_BYTE e65537[] = { 0x01, 0x00, 0x01 };
	CK_MECHANISM mech = { 0, NULL, 0 };
	CK_ATTRIBUTE pt[12], kt[12];
	CK_ULONG np = 0, nk = 0;
	uint8_t *params = NULL;
	size_t plen = 0;
	CK_RV rv;
	int r, attempt;

#define A(arr, n, t, v, l) do { (arr)[(n)].type = (t); \
	(arr)[(n)].pValue = (void *)(uintptr_t)(v); \
	(arr)[(n)++].ulValueLen = (CK_ULONG)(l); } while (0)
	for (attempt = 0; attempt < 2; attempt++) {
		np = nk = 0;
		free(params);
		params = NULL;
		switch (type) {
		case KR_KEY_P256:
		case KR_KEY_P384:
			if (attempt > 0)
				goto out_rv;
			mech.mechanism = CKM_EC_KEY_PAIR_GEN;
			if ((r = curve_oid_der(type == KR_KEY_P256 ?
			    NID_X9_62_prime256v1 : NID_secp384r1, &params,
			    &plen)) != 0)
				return r;
			A(pt, np, CKA_EC_PARAMS, params, plen);
			break;
		case KR_KEY_ED25519:
			mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
			/* The OID first, then SoftHSM's printable name. */
			r = attempt == 0 ?
			    curve_oid_der(NID_ED25519, &params, &plen) :
			    printable_der("edwards25519", &params, &plen);
			if (r != 0)
				return r;
			A(pt, np, CKA_EC_PARAMS, params, plen);
			break;
		case KR_KEY_RSA3072:
			if (attempt > 0)
				goto out_rv;
			mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
			A(pt, np, CKA_MODULUS_BITS, &bits, sizeof(bits));
			A(pt, np, CKA_PUBLIC_EXPONENT, e65537, sizeof(e65537));
			break;
		default:
			return kr_errf(KR_ERR_UNSUPPORTED, "key type %d",
			    (int)type);
		}
		A(pt, np, CKA_TOKEN, &yes, sizeof(yes));
		A(pt, np, CKA_PRIVATE, &no, sizeof(no));
		A(pt, np, CKA_VERIFY, &yes, sizeof(yes));
		A(pt, np, CKA_ENCRYPT, &no, sizeof(no));
		A(pt, np, CKA_WRAP, &no, sizeof(no));
		A(pt, np, CKA_LABEL, label, strlen(label));
		A(pt, np, CKA_ID, id, idlen);
		A(kt, nk, CKA_TOKEN, &yes, sizeof(yes));
		A(kt, nk, CKA_PRIVATE, &yes, sizeof(yes));
		A(kt, nk, CKA_SENSITIVE, &yes, sizeof(yes));
		A(kt, nk, CKA_EXTRACTABLE, &no, sizeof(no));
		A(kt, nk, CKA_SIGN, &yes, sizeof(yes));
		A(kt, nk, CKA_DECRYPT, &no, sizeof(no));
		A(kt, nk, CKA_UNWRAP, &no, sizeof(no));
		A(kt, nk, CKA_LABEL, label, strlen(label));
		A(kt, nk, CKA_ID, id, idlen);
		rv = p->f->C_GenerateKeyPair(s, &mech, pt, np, kt, nk, pub,
		    priv);
		if (rv == CKR_OK) {
			free(params);
			return 0;
		}
		if (type != KR_KEY_ED25519 ||
		    (rv != CKR_ATTRIBUTE_VALUE_INVALID &&
		    rv != CKR_CURVE_NOT_SUPPORTED &&
		    rv != CKR_DOMAIN_PARAMS_INVALID &&
		    rv != CKR_TEMPLATE_INCONSISTENT))
			break;
	}
#undef A
 out_rv:
	free(params);
	if (rv == CKR_MECHANISM_INVALID)
		return kr_errf(KR_ERR_UNSUPPORTED, "PKCS#11 module %s cannot "
		    "generate %s keys (%s)", p->module, kr_key_type_name(type),
		    kr_ckrv_name(rv));
	return kr_err_ckrv(rv, "C_GenerateKeyPair %s '%s'",
	    kr_key_type_name(type), label);
}

/* EC point: a DER OCTET STRING (SoftHSM, the standard) or raw bytes. */
static int
ec_point(const uint8_t *v, size_t len, ASN1_OCTET_STRING **os)
{
	const unsigned char *q = v;

	*os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)len);
	if (*os != NULL && q == v + len)
		return 0;
	ASN1_OCTET_STRING_free(*os);
	ERR_clear_error();
	if ((*os = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(*os, v, (int)len))
		return kr_err_ssl("EC point");
	return 0;
}

/* EC params: DER OID, or PrintableString name ("edwards25519"). */
static int
ec_params_nid(const uint8_t *v, size_t len, int *nid)
{
	const unsigned char *q = v;
	ASN1_OBJECT *o = NULL;
	ASN1_PRINTABLESTRING *ps = NULL;
	char name[64];
	int n;

	if ((o = d2i_ASN1_OBJECT(NULL, &q, (long)len)) != NULL &&
	    q == v + len) {
		*nid = OBJ_obj2nid(o);
		ASN1_OBJECT_free(o);
		return 0;
	}
	ASN1_OBJECT_free(o);
	q = v;
	if ((ps = d2i_ASN1_PRINTABLESTRING(NULL, &q, (long)len)) != NULL &&
	    q == v + len && (n = ASN1_STRING_length(ps)) > 0 &&
	    (size_t)n < sizeof(name)) {
		memcpy(name, ASN1_STRING_get0_data(ps), (size_t)n);
		name[n] = '\0';
		ASN1_PRINTABLESTRING_free(ps);
		ERR_clear_error();
		if (strcmp(name, "edwards25519") == 0)
			*nid = NID_ED25519;
		else if (strcmp(name, "edwards448") == 0)
			*nid = NID_ED448;
		else
			*nid = OBJ_sn2nid(name);
		return 0;
	}
	ASN1_PRINTABLESTRING_free(ps);
	ERR_clear_error();
	return kr_errf(KR_ERR_FORMAT, "CKA_EC_PARAMS: neither OID nor name");
}

static int
pkey_ec(int nid, const ASN1_OCTET_STRING *pt, EVP_PKEY **out)
{
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM params[3];
	int r = KR_ERR_LIBCRYPTO;

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)(uintptr_t)OBJ_nid2sn(nid), 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    (void *)(uintptr_t)ASN1_STRING_get0_data(pt),
	    (size_t)ASN1_STRING_length(pt));
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		r = kr_err_ssl("EC public key from token");
		goto out;
	}
	r = 0;
 out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

static int
pkey_rsa(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen,
    EVP_PKEY **out)
{
	OSSL_PARAM_BLD *b = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	int r = KR_ERR_LIBCRYPTO;

	if ((bn = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (be = BN_bin2bn(e, (int)elen, NULL)) == NULL ||
	    (b = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) ||
	    (params = OSSL_PARAM_BLD_to_param(b)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		r = kr_err_ssl("RSA public key from token");
		goto out;
	}
	r = 0;
 out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	BN_free(bn);
	BN_free(be);
	return r;
}

int
kr_p11_pubkey(struct kr_p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    enum kr_key_type *type, EVP_PKEY **out)
{
	CK_ULONG kt;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	ASN1_OCTET_STRING *pt = NULL;
	EVP_PKEY *pk = NULL;
	int nid = NID_undef, r;

	*out = NULL;
	*type = KR_KEY_NONE;
	if ((r = kr_p11_attr_ulong(p, s, o, CKA_KEY_TYPE, &kt)) != 0)
		goto out;
	if (kt == CKK_EC || kt == CKK_EC_EDWARDS) {
		if ((r = kr_p11_attr(p, s, o, CKA_EC_PARAMS, &a, &alen)) != 0 ||
		    (r = ec_params_nid(a, alen, &nid)) != 0 ||
		    (r = kr_p11_attr(p, s, o, CKA_EC_POINT, &b, &blen)) != 0 ||
		    (r = ec_point(b, blen, &pt)) != 0)
			goto out;
		if (nid == NID_ED25519) {
			if (ASN1_STRING_length(pt) != 32) {
				r = kr_errf(KR_ERR_FORMAT, "Ed25519 point of "
				    "%d bytes", ASN1_STRING_length(pt));
				goto out;
			}
			if ((pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
			    NULL, ASN1_STRING_get0_data(pt), 32)) == NULL) {
				r = kr_err_ssl("Ed25519 public key");
				goto out;
			}
		} else if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1) {
			if ((r = pkey_ec(nid, pt, &pk)) != 0)
				goto out;
		} else {
			r = kr_errf(KR_ERR_UNSUPPORTED, "curve %s",
			    nid == NID_undef ? "unknown" : OBJ_nid2sn(nid));
			goto out;
		}
	} else if (kt == CKK_RSA) {
		if ((r = kr_p11_attr(p, s, o, CKA_MODULUS, &a, &alen)) != 0 ||
		    (r = kr_p11_attr(p, s, o, CKA_PUBLIC_EXPONENT, &b,
		    &blen)) != 0 ||
		    (r = pkey_rsa(a, alen, b, blen, &pk)) != 0)
			goto out;
	} else {
		r = kr_errf(KR_ERR_UNSUPPORTED, "PKCS#11 key type 0x%lx",
		    (unsigned long)kt);
		goto out;
	}
	if ((*type = kr_key_type_of(pk)) == KR_KEY_NONE) {
		r = kr_errf(KR_ERR_UNSUPPORTED, "key type/size not supported");
		goto out;
	}
	*out = pk;
	pk = NULL;
	r = 0;
 out:
	EVP_PKEY_free(pk);
	ASN1_OCTET_STRING_free(pt);
	free(a);
	free(b);
	return r;
}

CK_RV
kr_p11_sign(struct kr_p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k,
    CK_MECHANISM_TYPE mech, const uint8_t *in, size_t inlen, uint8_t *sig,
    size_t *siglen)
{
	CK_MECHANISM m = { mech, NULL, 0 };
	CK_ULONG l = (CK_ULONG)*siglen;
	CK_RV rv;

	if ((rv = p->f->C_SignInit(s, &m, k)) != CKR_OK)
		return rv;
	rv = p->f->C_Sign(s, (CK_BYTE_PTR)(uintptr_t)in, (CK_ULONG)inlen, sig,
	    &l);
	if (rv == CKR_OK)
		*siglen = (size_t)l;
	return rv;
}
