/* signer_evp.c - a kr_note_signer over an in-memory OpenSSL Ed25519 key. */
#include <string.h>

#include <openssl/evp.h>

#include "audit/audit.h"

static int
evp_sign(void *arg, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	EVP_PKEY *pk = arg;
	EVP_MD_CTX *c = NULL;
	size_t sl = 64;
	int ret = 0;

	if ((c = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(c, NULL, NULL, NULL, pk) != 1 ||
	    EVP_DigestSign(c, sig, &sl, msg, len) != 1 || sl != 64)
		ret = kr_err_ssl("Ed25519 sign");
	EVP_MD_CTX_free(c);
	return ret;
}

int
kr_signer_evp(struct kr_note_signer *s, const char *name,
    struct evp_pkey_st *pkey)
{
	size_t pl = 32;

	memset(s, 0, sizeof(*s));
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519)
		return kr_errf(KR_ERR_UNSUPPORTED, "checkpoint key is not "
		    "Ed25519");
	if (EVP_PKEY_get_raw_public_key(pkey, s->pub, &pl) != 1 || pl != 32)
		return kr_err_ssl("Ed25519 public key");
	s->name = name;
	s->sign = evp_sign;
	s->arg = pkey;
	return 0;
}
