/*
 * signer_hsm.c - the checkpoint signer on the audit token: Ed25519 key
 * found through ca/hsm.h, signed with raw C_Sign / CKM_EDDSA there
 * (kr_hsm_sign_raw), every signature verified before use (note.c).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit/signer_hsm.h"
#include "ca/config.h"
#include "ca/hsm.h"
#include "lib/util.h"

#define DEFAULT_KEY_LABEL "audit-key"

struct kr_hsm_signer {
	struct kr_hsm *hsm;		/* owned, or NULL when borrowed */
	struct kr_token *tok;
	struct kr_key *key;
};

static int
key_sign(void *arg, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	uint8_t buf[KR_HSM_SIG_MAX];
	size_t sl = sizeof(buf);
	int r;

	if ((r = kr_hsm_sign_raw(arg, msg, len, buf, &sl)) != 0)
		return r;
	if (sl != 64)
		return kr_errf(KR_ERR_UNSUPPORTED, "audit key signature is %zu "
		    "bytes, not an Ed25519 signature", sl);
	memcpy(sig, buf, 64);
	return 0;
}

static int
pub_of(struct kr_key *key, uint8_t pub[32])
{
	size_t pl = 32;

	if (kr_key_type(key) != KR_KEY_ED25519)
		return kr_errf(KR_ERR_UNSUPPORTED, "token %s: key %s is %s, "
		    "not Ed25519", kr_token_label(kr_key_token(key)),
		    kr_key_label(key), kr_key_type_name(kr_key_type(key)));
	if (EVP_PKEY_get_raw_public_key(kr_hsm_pubkey(key), pub, &pl) != 1 ||
	    pl != 32)
		return kr_err_ssl("token %s: audit public key",
		    kr_token_label(kr_key_token(key)));
	return 0;
}

int
kr_signer_hsm_key(struct kr_key *key, const char *name,
    struct kr_note_signer *s)
{
	int r;

	memset(s, 0, sizeof(*s));
	if ((r = pub_of(key, s->pub)) != 0)
		return r;
	s->name = name;
	s->sign = key_sign;
	s->arg = key;
	return 0;
}

int
kr_hsm_signer_open_state(const char *state, const char *name,
    struct kr_note_signer *s, struct kr_hsm_signer **out)
{
	struct kr_state_paths p;
	struct kr_config cfg;
	char module[PATH_MAX], spec[PATH_MAX + 8];
	int r;

	*out = NULL;
	if ((r = kr_state_paths(state, &p)) != 0 ||
	    (r = kr_config_load(state, &cfg)) != 0 ||
	    (r = kr_config_module(&cfg, &p, module, sizeof(module))) != 0 ||
	    (r = kr_snprintf(spec, sizeof(spec), "file:%s", p.audit_pin)) != 0)
		return r;
	return kr_hsm_signer_open(module, cfg.token_audit,
	    cfg.audit_key_label[0] != '\0' ? cfg.audit_key_label : NULL, spec,
	    name, s, out);
}

static int
hsm_sign(void *arg, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	struct kr_hsm_signer *h = arg;

	return key_sign(h->key, msg, len, sig);
}

int
kr_hsm_signer_open_hsm(struct kr_hsm *hsm, const char *token,
    const char *key_label, const char *pin_spec, const char *name,
    struct kr_note_signer *s, struct kr_hsm_signer **out)
{
	struct kr_hsm_signer *h = NULL;
	char *pin = NULL;
	size_t pinlen = 0;
	int r;

	*out = NULL;
	memset(s, 0, sizeof(*s));
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "audit signer");
	if ((r = kr_read_secret(pin_spec, "audit token PIN: ", &pin, &pinlen,
	    KR_PIN_MAX)) != 0)
		goto out;
	if ((r = kr_token_open(hsm, token, pin, pinlen, &h->tok)) != 0)
		goto out;
	if ((r = kr_token_find_key(h->tok, key_label != NULL ? key_label :
	    DEFAULT_KEY_LABEL, &h->key)) != 0)
		goto out;
	if ((r = pub_of(h->key, s->pub)) != 0)
		goto out;
	s->name = name;
	s->sign = hsm_sign;
	s->arg = h;
	*out = h;
	h = NULL;
	r = 0;
 out:
	if (pin != NULL)
		kr_secure_free(pin, KR_PIN_MAX);
	if (h != NULL) {
		kr_key_free(h->key);
		kr_token_close(h->tok);
		free(h);
	}
	return r;
}

int
kr_hsm_signer_open(const char *module, const char *token,
    const char *key_label, const char *pin_spec, const char *name,
    struct kr_note_signer *s, struct kr_hsm_signer **out)
{
	struct kr_hsm *hsm = NULL;
	int r;

	*out = NULL;
	if ((r = kr_hsm_load(module, &hsm)) != 0)
		return r;
	if ((r = kr_hsm_signer_open_hsm(hsm, token, key_label, pin_spec,
	    name, s, out)) != 0) {
		kr_hsm_free(hsm);
		return r;
	}
	(*out)->hsm = hsm;
	return 0;
}

void
kr_hsm_signer_close(struct kr_hsm_signer *h)
{
	if (h == NULL)
		return;
	kr_key_free(h->key);
	kr_token_close(h->tok);
	kr_hsm_free(h->hsm);
	free(h);
}
