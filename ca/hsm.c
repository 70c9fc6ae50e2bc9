/*
 * hsm.c - tokens and keys: module loading (raw layer first, then libp11),
 * token selection by label, login, key generation and lookup, signing,
 * lost-session recovery.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libp11.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "ca/hsm.h"
#include "ca/p11raw.h"
#include "lib/util.h"

struct kr_hsm {
	struct kr_p11 raw;
	int counted;		/* in modules[] */
	struct kr_token *open;	/* open tokens (login is per application) */
	PKCS11_CTX *ctx;
	int ctx_loaded;
	PKCS11_SLOT *slots;
	unsigned int nslots;
};

struct kr_token {
	struct kr_hsm *hsm;
	char label[KR_TOKEN_LABEL_MAX + 1];
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	char *pin;		/* kr_secure_alloc'd, NUL-terminated */
	size_t pinlen;
	PKCS11_SLOT *p11slot;	/* libp11's view, set up lazily */
	struct kr_token *next;	/* in hsm->open */
	unsigned reopens;	/* sessions re-established (tests) */
};

struct kr_key {
	struct kr_token *tok;
	char label[KR_KEY_LABEL_MAX + 1];
	enum kr_key_type type;
	uint8_t id[64];
	size_t idlen;
	CK_OBJECT_HANDLE priv;
	EVP_PKEY *pub;
	EVP_PKEY *p11priv;	/* libp11 EVP_PKEY (ECDSA/RSA), lazily */
	int p11_off;		/* libp11 failed once: sign raw from now on */
};

static const struct {
	enum kr_key_type t;
	const char *name;
} key_names[] = {
	{ KR_KEY_P256, "p256" },
	{ KR_KEY_P384, "p384" },
	{ KR_KEY_RSA3072, "rsa3072" },
	{ KR_KEY_ED25519, "ed25519" },
};

enum kr_key_type
kr_key_type_parse(const char *name)
{
	size_t i;

	for (i = 0; i < KR_ARRAY_SIZE(key_names); i++)
		if (strcmp(key_names[i].name, name) == 0)
			return key_names[i].t;
	return KR_KEY_NONE;
}

const char *
kr_key_type_name(enum kr_key_type t)
{
	size_t i;

	for (i = 0; i < KR_ARRAY_SIZE(key_names); i++)
		if (key_names[i].t == t)
			return key_names[i].name;
	return "unsupported";
}

enum kr_key_type
kr_key_type_of(const EVP_PKEY *pkey)
{
	char group[64];
	size_t glen = 0;

	if (pkey == NULL)
		return KR_KEY_NONE;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_ED25519:
		return KR_KEY_ED25519;
	case EVP_PKEY_RSA:
		return EVP_PKEY_get_bits(pkey) == 3072 ? KR_KEY_RSA3072 :
		    KR_KEY_NONE;
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_utf8_string_param(pkey,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen))
			return KR_KEY_NONE;
		if (strcmp(group, "prime256v1") == 0)
			return KR_KEY_P256;
		if (strcmp(group, "secp384r1") == 0)
			return KR_KEY_P384;
		return KR_KEY_NONE;
	default:
		return KR_KEY_NONE;
	}
}

int
kr_hsm_find_softhsm(char *buf, size_t buflen)
{
	static const char *const cands[] = {
		KR_SOFTHSM_MODULE,
		"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/lib/x86_64-linux-gnu/pkcs11/libsofthsm2.so",
		"/usr/lib/pkcs11/libsofthsm2.so",
		"/usr/local/lib/softhsm/libsofthsm2.so",
	};
	size_t i;

	for (i = 0; i < KR_ARRAY_SIZE(cands); i++)
		if (access(cands[i], R_OK) == 0)
			return kr_snprintf(buf, buflen, "%s", cands[i]);
	return kr_errf(KR_ERR_TOKEN, "SoftHSM2 module not found (looked for "
	    "%s; install softhsm2)", KR_SOFTHSM_MODULE);
}

/*
 * Live struct kr_hsm per module path in this process: the module is
 * initialised once and must be finalized only when the last user goes
 * (e.g. a ceremony's HSM next to the audit signer's).
 */
#define MAX_MODULES 8
#define MAX_DEFER 4
struct p11_defer {
	PKCS11_CTX *ctx;
	PKCS11_SLOT *slots;
	unsigned int nslots;
};
static struct {
	char path[4096];
	int live;
	/* libp11 state of earlier users, released by the last one */
	struct p11_defer defer[MAX_DEFER];
} modules[MAX_MODULES];
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;

/* Count a user of path in; returns the number of users, or -1. */
static int
module_ref(const char *path, int delta)
{
	int i, n = -1, freeslot = -1;

	pthread_mutex_lock(&modules_lock);
	for (i = 0; i < MAX_MODULES; i++) {
		if (modules[i].live > 0 && strcmp(modules[i].path, path) == 0)
			break;
		if (modules[i].live == 0 && freeslot < 0)
			freeslot = i;
	}
	if (i == MAX_MODULES && delta > 0 && freeslot >= 0 &&
	    strlen(path) < sizeof(modules[0].path)) {
		i = freeslot;
		memcpy(modules[i].path, path, strlen(path) + 1);
	}
	if (i < MAX_MODULES) {
		modules[i].live += delta;
		n = modules[i].live;
	}
	pthread_mutex_unlock(&modules_lock);
	return n;
}

/*
 * Releasing libp11's slots calls C_CloseAllSessions on every slot of the
 * module, which would close (and log out) the sessions of the module's
 * other users in this process. A user that is not the last parks its
 * libp11 context and slots here (1: parked); the last one releases them.
 */
static int
defer_push(const char *path, PKCS11_CTX *ctx, PKCS11_SLOT *slots,
    unsigned int n)
{
	int i, j, done = 0;

	pthread_mutex_lock(&modules_lock);
	for (i = 0; i < MAX_MODULES && !done; i++) {
		if (modules[i].live <= 0 || strcmp(modules[i].path, path) != 0)
			continue;
		for (j = 0; j < MAX_DEFER && !done; j++) {
			if (modules[i].defer[j].ctx != NULL)
				continue;
			modules[i].defer[j].ctx = ctx;
			modules[i].defer[j].slots = slots;
			modules[i].defer[j].nslots = n;
			done = 1;
		}
		break;
	}
	pthread_mutex_unlock(&modules_lock);
	return done;
}

/* Release what earlier users of path parked (by the last user). */
static void
defer_release(const char *path)
{
	struct p11_defer d[MAX_DEFER];
	int i, j;

	memset(d, 0, sizeof(d));
	pthread_mutex_lock(&modules_lock);
	for (i = 0; i < MAX_MODULES; i++) {
		if (strcmp(modules[i].path, path) != 0)
			continue;
		for (j = 0; j < MAX_DEFER; j++) {
			d[j] = modules[i].defer[j];
			memset(&modules[i].defer[j], 0, sizeof(d[j]));
		}
	}
	pthread_mutex_unlock(&modules_lock);
	for (j = 0; j < MAX_DEFER; j++) {
		if (d[j].ctx == NULL)
			continue;
		if (d[j].slots != NULL)
			PKCS11_release_all_slots(d[j].ctx, d[j].slots,
			    d[j].nslots);
		PKCS11_CTX_free(d[j].ctx);
	}
}

int
kr_hsm_load(const char *module, struct kr_hsm **out)
{
	struct kr_hsm *h = NULL;
	int r;

	*out = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "hsm");
	if ((r = kr_p11_load(module, &h->raw)) != 0)
		goto out;
	if (module_ref(h->raw.module, 1) < 0) {
		r = kr_errf(KR_ERR_TOKEN, "PKCS#11 module %s: too many modules "
		    "loaded", module);
		goto out;
	}
	h->counted = 1;
	*out = h;
	h = NULL;
	r = 0;
 out:
	kr_hsm_free(h);
	return r;
}

/*
 * libp11 is loaded on first use, after the raw layer: token initialisation
 * may need to re-initialise the module (below), which libp11 must not see.
 */
static int
ensure_libp11(struct kr_hsm *h)
{
	if (h->ctx_loaded)
		return 0;
	if (h->ctx == NULL && (h->ctx = PKCS11_CTX_new()) == NULL)
		return kr_err_ssl("PKCS11_CTX_new");
	if (PKCS11_CTX_load(h->ctx, h->raw.module) != 0) {
		ERR_clear_error();
		return kr_errf(KR_ERR_TOKEN, "PKCS#11 module %s: libp11 cannot "
		    "load it", h->raw.module);
	}
	h->ctx_loaded = 1;
	return 0;
}

void
kr_hsm_free(struct kr_hsm *h)
{
	int last;

	if (h == NULL)
		return;
	last = !h->counted || module_ref(h->raw.module, -1) == 0;
	if (h->slots != NULL && !last &&
	    defer_push(h->raw.module, h->ctx, h->slots, h->nslots)) {
		h->ctx = NULL;	/* parked, context and slots */
		h->ctx_loaded = 0;
		h->slots = NULL;
		kr_p11_unload(&h->raw, 0);
		free(h);
		return;
	}
	if (last)
		defer_release(h->raw.module);
	if (h->slots != NULL)
		PKCS11_release_all_slots(h->ctx, h->slots, h->nslots);
	if (h->ctx_loaded) {
		/*
		 * libp11 calls C_Finalize: only for the module's last user
		 * here (otherwise its context stays loaded, a small leak).
		 */
		if (last)
			PKCS11_CTX_unload(h->ctx);
		kr_p11_unload(&h->raw, 0);
	} else {
		kr_p11_unload(&h->raw, last);
	}
	if (h->ctx != NULL)
		PKCS11_CTX_free(h->ctx);
	free(h);
}

const char *
kr_hsm_module(const struct kr_hsm *h)
{
	return h->raw.module;
}

int
kr_hsm_init_token(struct kr_hsm *h, const char *label, const char *so_pin,
    size_t so_pinlen, const char *pin, size_t pinlen)
{
	CK_SLOT_ID slot;
	CK_RV rv;
	int r;

	if (strlen(label) == 0 || strlen(label) > KR_TOKEN_LABEL_MAX)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "token label '%s': "
		    "1..%d bytes", label, KR_TOKEN_LABEL_MAX);
	if ((r = kr_p11_find_token(&h->raw, label, &slot)) == 0)
		return kr_errf(KR_ERR_EXISTS, "token %s already exists in "
		    "PKCS#11 module %s", label, h->raw.module);
	if (r != KR_ERR_NOT_FOUND)
		return r;
	kr_err_clear();
	if ((r = kr_p11_free_slot(&h->raw, &slot)) != 0) {
		/*
		 * SoftHSM adds a fresh uninitialised slot only when it is
		 * initialised: finalize and initialise again (raw layer only,
		 * before libp11 has loaded the module), then look again.
		 */
		if (h->ctx_loaded || r != KR_ERR_TOKEN ||
		    module_ref(h->raw.module, 0) != 1)
			return r;
		kr_err_clear();
		(void)h->raw.f->C_Finalize(NULL);
		rv = h->raw.f->C_Initialize(NULL);
		if (rv != CKR_OK)
			return kr_err_ckrv(rv, "PKCS#11 module %s: C_Initialize",
			    h->raw.module);
		if ((r = kr_p11_free_slot(&h->raw, &slot)) != 0)
			return r;
	}
	return kr_p11_init_token(&h->raw, slot, label, so_pin, so_pinlen, pin,
	    pinlen);
}

static int
find_token(struct kr_hsm *h, const char *label, CK_SLOT_ID *slot)
{
	int r;

	if ((r = kr_p11_find_token(&h->raw, label, slot)) == KR_ERR_NOT_FOUND)
		return kr_errf(KR_ERR_TOKEN, "token %s not found in PKCS#11 "
		    "module %s", label, h->raw.module);
	return r;
}

int
kr_hsm_random_public(struct kr_hsm *h, const char *label, uint8_t *buf,
    size_t len)
{
	CK_SESSION_HANDLE s;
	CK_SLOT_ID slot;
	CK_RV rv;
	int r;

	if ((r = find_token(h, label, &slot)) != 0 ||
	    (r = kr_p11_open(&h->raw, slot, 0, &s, label)) != 0)
		return r;
	rv = h->raw.f->C_GenerateRandom(s, buf, (CK_ULONG)len);
	(void)h->raw.f->C_CloseSession(s);
	if (rv != CKR_OK)
		return kr_err_ckrv(rv, "token %s: C_GenerateRandom", label);
	return 0;
}

int
kr_token_open(struct kr_hsm *h, const char *label, const char *pin,
    size_t pinlen, struct kr_token **out)
{
	struct kr_token *t = NULL, *o;
	int r;

	*out = NULL;
	if (pinlen >= KR_PIN_MAX)
		return kr_errf(KR_ERR_PIN, "token %s: PIN must be 1..%d bytes",
		    label, KR_PIN_MAX - 1);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "token");
	t->hsm = h;
	t->s = CK_INVALID_HANDLE;
	if ((r = kr_snprintf(t->label, sizeof(t->label), "%s", label)) != 0) {
		r = kr_errf(KR_ERR_INVALID_ARGUMENT, "token label '%s' too "
		    "long", label);
		goto out;
	}
	if ((t->pin = kr_secure_alloc(KR_PIN_MAX)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "secure memory");
		goto out;
	}
	memcpy(t->pin, pin, pinlen);
	t->pin[pinlen] = '\0';
	t->pinlen = pinlen;
	if ((r = find_token(h, label, &t->slot)) != 0)
		goto out;
	/*
	 * Login state is per application: with the token already open here,
	 * C_Login would answer CKR_USER_ALREADY_LOGGED_IN for any PIN. Check
	 * the PIN against the open one instead.
	 */
	for (o = h->open; o != NULL; o = o->next) {
		if (o->slot != t->slot)
			continue;
		if (o->pinlen != t->pinlen ||
		    CRYPTO_memcmp(o->pin, t->pin, t->pinlen) != 0) {
			r = kr_errf(KR_ERR_PIN, "token %s: wrong PIN (differs "
			    "from the PIN of its open session)", label);
			goto out;
		}
		break;
	}
	/*
	 * An empty PIN is out-of-band authentication (the PIN-entry device
	 * asks for it): C_Login(NULL, 0), only on a token with a protected
	 * authentication path (PKCS#11 3.0 5.6).
	 */
	if (pinlen == 0) {
		CK_TOKEN_INFO ti;
		CK_RV rv = h->raw.f->C_GetTokenInfo(t->slot, &ti);

		if (rv != CKR_OK) {
			r = kr_err_ckrv(rv, "token %s: C_GetTokenInfo", label);
			goto out;
		}
		if (!(ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH)) {
			r = kr_errf(KR_ERR_PIN, "token %s: empty PIN, and the "
			    "token has no protected authentication path "
			    "(CKF_PROTECTED_AUTHENTICATION_PATH): "
			    "out-of-band authentication is not possible",
			    label);
			goto out;
		}
	}
	if ((r = kr_p11_open(&h->raw, t->slot, 1, &t->s, label)) != 0 ||
	    (r = kr_p11_login(&h->raw, t->s, pinlen == 0 ? NULL : t->pin,
	    t->pinlen, label)) != 0)
		goto out;
	t->next = h->open;
	h->open = t;
	*out = t;
	t = NULL;
	r = 0;
 out:
	kr_token_close(t);
	return r;
}

void
kr_token_close(struct kr_token *t)
{
	struct kr_token **pp, *o;
	int shared = 0;

	if (t == NULL)
		return;
	for (pp = &t->hsm->open; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	for (o = t->hsm->open; o != NULL; o = o->next)
		if (o->slot == t->slot)
			shared = 1;
	if (t->s != CK_INVALID_HANDLE) {
		/* Logging out would log out the other open handles too. */
		if (!shared)
			(void)t->hsm->raw.f->C_Logout(t->s);
		(void)t->hsm->raw.f->C_CloseSession(t->s);
	}
	kr_secure_free(t->pin, KR_PIN_MAX);
	free(t);
}

const char *
kr_token_label(const struct kr_token *t)
{
	return t->label;
}

/* libp11's slot with that id, if libp11 has listed the slots. */
static PKCS11_SLOT *
p11_find_slot(struct kr_hsm *h, CK_SLOT_ID id)
{
	unsigned int i;

	for (i = 0; h->slots != NULL && i < h->nslots; i++)
		if (PKCS11_get_slotid_from_slot(&h->slots[i]) ==
		    (unsigned long)id && h->slots[i].token != NULL)
			return &h->slots[i];
	return NULL;
}

/* libp11's slot for this token, logged in (lazily). */
static int
p11_slot(struct kr_token *t, int force)
{
	struct kr_hsm *h = t->hsm;
	int r;

	if (t->p11slot != NULL && !force)
		return 0;
	if ((r = ensure_libp11(h)) != 0)
		return r;
	/*
	 * One slot list for the life of the module (re-listing would move
	 * the slots other tokens point into); tokens are all initialised
	 * before libp11 is loaded.
	 */
	if (h->slots == NULL &&
	    PKCS11_enumerate_slots(h->ctx, &h->slots, &h->nslots) != 0)
		return kr_err_ssl("token %s: libp11 slot list", t->label);
	if ((t->p11slot = p11_find_slot(h, t->slot)) == NULL)
		return kr_errf(KR_ERR_TOKEN, "token %s: libp11 does not see "
		    "slot %lu", t->label, (unsigned long)t->slot);
	/*
	 * No PKCS11_open_session(): libp11 0.4.12 answers it with
	 * C_CloseAllSessions on the slot when the session mode changes (the
	 * first call always does), which closed our raw sessions and logged
	 * the token out under every other handle, and on later calls it
	 * forgets its session pool while other handles' signatures hold
	 * sessions from it. PKCS11_login takes a session from the pool
	 * (opened on demand, read-only: enough to list keys and sign) and
	 * is a no-op once the slot is logged in.
	 */
	if (PKCS11_login(t->p11slot, 0, t->pin) != 0) {
		t->p11slot = NULL;
		return kr_err_ssl("token %s: libp11 login", t->label);
	}
	return 0;
}

void
kr_token_test_drop_sessions(struct kr_token *t)
{
	(void)t->hsm->raw.f->C_CloseAllSessions(t->slot);
}

unsigned
kr_token_test_reopens(const struct kr_token *t)
{
	return t->reopens;
}

int
kr_token_random(struct kr_token *t, uint8_t *buf, size_t len)
{
	CK_RV rv;
	int r;

	rv = t->hsm->raw.f->C_GenerateRandom(t->s, buf, (CK_ULONG)len);
	if (kr_p11_session_lost(rv)) {
		if ((r = kr_token_recover(t)) != 0)
			return r;
		rv = t->hsm->raw.f->C_GenerateRandom(t->s, buf, (CK_ULONG)len);
	}
	if (rv != CKR_OK)
		return kr_err_ckrv(rv, "token %s: C_GenerateRandom", t->label);
	return 0;
}

void
kr_key_free(struct kr_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pub);
	EVP_PKEY_free(k->p11priv);
	free(k);
}

/* Fill k from the token's objects with k->label. */
static int
load_key(struct kr_token *t, struct kr_key *k)
{
	struct kr_p11 *p = &t->hsm->raw;
	CK_OBJECT_HANDLE privs[2], pubs[2];
	size_t npriv = 0, npub = 0;
	uint8_t *id = NULL;
	size_t idlen = 0;
	enum kr_key_type ty;
	int r;

	if ((r = kr_p11_find(p, t->s, k->label, CKO_PRIVATE_KEY, privs, 2,
	    &npriv)) != 0 ||
	    (r = kr_p11_find(p, t->s, k->label, CKO_PUBLIC_KEY, pubs, 2,
	    &npub)) != 0)
		goto out;
	if (npriv == 0) {
		r = kr_errf(KR_ERR_NOT_FOUND, "token %s: no private key "
		    "labelled '%s'", t->label, k->label);
		goto out;
	}
	if (npriv > 1 || npub > 1) {
		r = kr_errf(KR_ERR_EXISTS, "token %s: more than one key "
		    "labelled '%s'", t->label, k->label);
		goto out;
	}
	if (npub == 0) {
		r = kr_errf(KR_ERR_NOT_FOUND, "token %s: no public key "
		    "labelled '%s'", t->label, k->label);
		goto out;
	}
	k->priv = privs[0];
	if ((r = kr_p11_pubkey(p, t->s, pubs[0], &ty, &k->pub)) != 0) {
		r = kr_errctx(r, "token %s: key '%s'", t->label, k->label);
		goto out;
	}
	k->type = ty;
	if ((r = kr_p11_attr(p, t->s, privs[0], CKA_ID, &id, &idlen)) != 0)
		goto out;
	if (idlen > sizeof(k->id)) {
		r = kr_errf(KR_ERR_TOO_LARGE, "key '%s': CKA_ID", k->label);
		goto out;
	}
	memcpy(k->id, id, idlen);
	k->idlen = idlen;
	r = 0;
 out:
	free(id);
	return r;
}

/* Find k's private key handle again (same label and CKA_ID). */
static int
reload_handle(struct kr_token *t, struct kr_key *k)
{
	struct kr_p11 *p = &t->hsm->raw;
	CK_OBJECT_HANDLE privs[2];
	uint8_t *id = NULL;
	size_t n = 0, idlen = 0;
	int r;

	if ((r = kr_p11_find(p, t->s, k->label, CKO_PRIVATE_KEY, privs, 2,
	    &n)) != 0)
		return r;
	if (n != 1)
		return kr_errf(KR_ERR_NOT_FOUND, "token %s: key '%s' gone "
		    "after session recovery", t->label, k->label);
	if ((r = kr_p11_attr(p, t->s, privs[0], CKA_ID, &id, &idlen)) != 0)
		return r;
	if (idlen != k->idlen || memcmp(id, k->id, idlen) != 0) {
		free(id);
		return kr_errf(KR_ERR_KEY_MISMATCH, "token %s: key '%s' "
		    "changed during session recovery", t->label, k->label);
	}
	free(id);
	k->priv = privs[0];
	return 0;
}

static int
new_key(struct kr_token *t, const char *label, struct kr_key **out)
{
	struct kr_key *k;

	if (strlen(label) == 0 || strlen(label) > KR_KEY_LABEL_MAX)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "key label '%s': "
		    "1..%d bytes", label, KR_KEY_LABEL_MAX);
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "key");
	k->tok = t;
	memcpy(k->label, label, strlen(label) + 1);
	*out = k;
	return 0;
}

/* Is the token's session still open and logged in? */
static int
session_ok(struct kr_token *t)
{
	CK_SESSION_INFO si;

	return t->s != CK_INVALID_HANDLE &&
	    t->hsm->raw.f->C_GetSessionInfo(t->s, &si) == CKR_OK &&
	    (si.state == CKS_RW_USER_FUNCTIONS ||
	    si.state == CKS_RO_USER_FUNCTIONS);
}

/* Evaluate expr; on a PKCS#11 failure with a lost session, recover once
 * and evaluate it again. */
#define RETRY_LOST(t, expr) do { \
	if ((r = (expr)) == KR_ERR_PKCS11 && !session_ok(t)) { \
		kr_err_clear(); \
		if ((r = kr_token_recover(t)) == 0) \
			r = (expr); \
	} \
} while (0)

int
kr_token_recover(struct kr_token *t)
{
	struct kr_p11 *p = &t->hsm->raw;
	PKCS11_SLOT *ps;
	int r;

	if (!session_ok(t)) {
		/*
		 * Closing all sessions also logged us out everywhere, and
		 * libp11's session pool holds dead handles it would hand
		 * out again: make it forget them (same read-only mode, so
		 * no C_CloseAllSessions; before our session is reopened in
		 * any case) and log it in again with our new session.
		 */
		if ((ps = p11_find_slot(t->hsm, t->slot)) != NULL)
			(void)PKCS11_open_session(ps, 0);
		t->s = CK_INVALID_HANDLE;
		if ((r = find_token(t->hsm, t->label, &t->slot)) != 0 ||
		    (r = kr_p11_open(p, t->slot, 1, &t->s, t->label)) != 0 ||
		    (r = kr_p11_login(p, t->s, t->pin, t->pinlen,
		    t->label)) != 0)
			return kr_errctx(r, "reopening session");
		t->reopens++;
	}
	return 0;
}

int
kr_token_find_key(struct kr_token *t, const char *label, struct kr_key **out)
{
	struct kr_key *k = NULL;
	int r;

	*out = NULL;
	if ((r = new_key(t, label, &k)) != 0)
		return r;
	RETRY_LOST(t, load_key(t, k));
	if (r != 0)
		goto out;
	*out = k;
	k = NULL;
 out:
	kr_key_free(k);
	return r;
}

int
kr_token_generate(struct kr_token *t, enum kr_key_type type,
    const char *label, struct kr_key **out)
{
	struct kr_p11 *p = &t->hsm->raw;
	CK_OBJECT_HANDLE objs[1], pub, priv;
	struct kr_key *k = NULL;
	uint8_t id[16];
	size_t n = 0;
	int r;

	*out = NULL;
	if ((r = new_key(t, label, &k)) != 0)
		return r;
	RETRY_LOST(t, kr_p11_find(p, t->s, label, (CK_OBJECT_CLASS)-1, objs,
	    1, &n));
	if (r != 0)
		goto out;
	if (n != 0) {
		r = kr_errf(KR_ERR_EXISTS, "token %s: key label '%s' already "
		    "exists", t->label, label);
		goto out;
	}
	if ((r = kr_token_random(t, id, sizeof(id))) != 0 ||
	    (r = kr_p11_generate(p, t->s, type, label, id, sizeof(id), &pub,
	    &priv)) != 0) {
		r = kr_errctx(r, "token %s", t->label);
		goto out;
	}
	if ((r = load_key(t, k)) != 0)
		goto out;
	if (k->type != type) {
		r = kr_errf(KR_ERR_INTERNAL, "token %s: generated %s key "
		    "reads back as %s", t->label, kr_key_type_name(type),
		    kr_key_type_name(k->type));
		goto out;
	}
	*out = k;
	k = NULL;
 out:
	kr_key_free(k);
	return r;
}

enum kr_key_type
kr_key_type(const struct kr_key *k)
{
	return k->type;
}

const char *
kr_key_label(const struct kr_key *k)
{
	return k->label;
}

struct kr_token *
kr_key_token(const struct kr_key *k)
{
	return k->tok;
}

EVP_PKEY *
kr_hsm_pubkey(const struct kr_key *k)
{
	return k->pub;
}

int
kr_hsm_check_pubkey(const struct kr_key *k, const EVP_PKEY *expected)
{
	if (expected == NULL || EVP_PKEY_eq(k->pub, expected) != 1) {
		ERR_clear_error();
		return kr_errf(KR_ERR_KEY_MISMATCH, "token %s: key '%s' does "
		    "not match the expected public key", k->tok->label,
		    k->label);
	}
	return 0;
}

/* DER ECDSA-Sig-Value from the PKCS#11 r||s form. */
static int
ecdsa_der(const uint8_t *rs, size_t len, uint8_t *sig, size_t *siglen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *q = sig;
	int n, r = KR_ERR_LIBCRYPTO;

	if (len == 0 || len % 2 != 0)
		return kr_errf(KR_ERR_PKCS11, "ECDSA signature of %zu bytes",
		    len);
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(rs, (int)(len / 2), NULL)) == NULL ||
	    (bs = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL)) == NULL ||
	    !ECDSA_SIG_set0(es, br, bs)) {
		r = kr_err_ssl("ECDSA signature");
		goto out;
	}
	br = bs = NULL;
	if ((n = i2d_ECDSA_SIG(es, NULL)) <= 0 || (size_t)n > *siglen) {
		r = kr_errf(KR_ERR_TOO_LARGE, "ECDSA signature buffer");
		goto out;
	}
	if (i2d_ECDSA_SIG(es, &q) != n) {
		r = kr_err_ssl("i2d_ECDSA_SIG");
		goto out;
	}
	*siglen = (size_t)n;
	r = 0;
 out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

/* C_Sign `in` with mech; the session is reopened once if lost. */
static int
sign_mech(struct kr_key *k, CK_MECHANISM_TYPE mech, const uint8_t *in,
    size_t inlen, uint8_t *sig, size_t *siglen)
{
	struct kr_token *t = k->tok;
	struct kr_p11 *p = &t->hsm->raw;
	uint8_t buf[KR_HSM_SIG_MAX];
	size_t blen;
	CK_RV rv;
	int r;

	blen = sizeof(buf);
	rv = kr_p11_sign(p, t->s, k->priv, mech, in, inlen, buf, &blen);
	if (kr_p11_session_lost(rv) || rv == CKR_OBJECT_HANDLE_INVALID ||
	    rv == CKR_KEY_HANDLE_INVALID) {
		/* Private object handles do not survive a logout: find again. */
		if ((r = kr_token_recover(t)) != 0 ||
		    (r = reload_handle(t, k)) != 0)
			return r;
		blen = sizeof(buf);
		rv = kr_p11_sign(p, t->s, k->priv, mech, in, inlen, buf,
		    &blen);
	}
	if (rv != CKR_OK)
		return kr_err_ckrv(rv, "token %s: key '%s': C_Sign", t->label,
		    k->label);
	if (k->type == KR_KEY_P256 || k->type == KR_KEY_P384)
		return ecdsa_der(buf, blen, sig, siglen);
	if (blen > *siglen)
		return kr_errf(KR_ERR_TOO_LARGE, "signature buffer");
	memcpy(sig, buf, blen);
	*siglen = blen;
	return 0;
}

int
kr_hsm_sign_raw(struct kr_key *k, const uint8_t *msg, size_t len,
    uint8_t *sig, size_t *siglen)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	switch (k->type) {
	case KR_KEY_ED25519:
		return sign_mech(k, CKM_EDDSA, msg, len, sig, siglen);
	case KR_KEY_P256:
		kr_sha256(msg, len, md);
		return sign_mech(k, CKM_ECDSA, md, 32, sig, siglen);
	case KR_KEY_P384:
		if (!EVP_Digest(msg, len, md, &mdlen, EVP_sha384(), NULL))
			return kr_err_ssl("digest");
		return sign_mech(k, CKM_ECDSA, md, mdlen, sig, siglen);
	case KR_KEY_RSA3072:
		return sign_mech(k, CKM_SHA256_RSA_PKCS, msg, len, sig, siglen);
	default:
		return kr_errf(KR_ERR_UNSUPPORTED, "key '%s' type", k->label);
	}
}

int
kr_hsm_sign_sha256(struct kr_key *k, const uint8_t dg[32], uint8_t *sig,
    size_t *siglen)
{
	if (k->type != KR_KEY_P256)
		return kr_errf(KR_ERR_UNSUPPORTED, "key '%s': a SHA-256 digest "
		    "is signed only by a P-256 key", k->label);
	return sign_mech(k, CKM_ECDSA, dg, 32, sig, siglen);
}

int
kr_hsm_evp_private(struct kr_key *k, EVP_PKEY **out)
{
	struct kr_token *t = k->tok;
	PKCS11_KEY *keys = NULL;
	unsigned int n = 0, i;
	int r;

	*out = NULL;
	if (k->type == KR_KEY_ED25519)
		return kr_errf(KR_ERR_UNSUPPORTED, "token %s: key '%s': libp11 "
		    "cannot sign Ed25519", t->label, k->label);
	if (k->p11priv != NULL) {
		*out = k->p11priv;
		return 0;
	}
	if ((r = p11_slot(t, 0)) != 0)
		return r;
	if (PKCS11_enumerate_keys(t->p11slot->token, &keys, &n) != 0) {
		/* e.g. libp11 0.4.12 with an EdDSA key in the same token */
		ERR_clear_error();
		return kr_errf(KR_ERR_UNSUPPORTED, "token %s: libp11 cannot "
		    "list its keys", t->label);
	}
	for (i = 0; i < n; i++) {
		if (keys[i].label == NULL ||
		    strcmp(keys[i].label, k->label) != 0 ||
		    keys[i].id_len != k->idlen ||
		    memcmp(keys[i].id, k->id, k->idlen) != 0)
			continue;
		if ((k->p11priv = PKCS11_get_private_key(&keys[i])) == NULL)
			return kr_err_ssl("token %s: key '%s': libp11",
			    t->label, k->label);
		*out = k->p11priv;
		return 0;
	}
	return kr_errf(KR_ERR_UNSUPPORTED, "token %s: libp11 does not find "
	    "key '%s'", t->label, k->label);
}

int
kr_hsm_x509_sign(struct kr_key *k, X509 *x, X509_CRL *crl, const EVP_MD *md)
{
	EVP_PKEY *pk = NULL;
	int ok, r;

	if (k->p11_off)
		return kr_errf(KR_ERR_UNSUPPORTED, "token %s: key '%s': libp11 "
		    "off after a failure", k->tok->label, k->label);
	if ((r = kr_hsm_evp_private(k, &pk)) != 0)
		return r;
	ok = x != NULL ? X509_sign(x, pk, md) > 0 :
	    X509_CRL_sign(crl, pk, md) > 0;
	if (ok) {
		ERR_clear_error();
		return 0;
	}
	/*
	 * libp11 0.4.12 caches object handles and sessions and cannot be told
	 * that they died with a lost session. Recover our own session and
	 * let the caller sign through the raw layer (the result is verified
	 * against the issuer key either way).
	 */
	ERR_clear_error();
	k->p11_off = 1;
	if ((r = kr_token_recover(k->tok)) != 0)
		return r;
	return kr_errf(KR_ERR_UNSUPPORTED, "token %s: key '%s': libp11 "
	    "signing failed; use the raw layer", k->tok->label, k->label);
}
