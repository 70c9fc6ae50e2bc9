/*
 * csr.c - CSR intake: PEM or DER, size-capped, no trailing data, proof of
 * possession verified, key type classified once (and kept: OpenSSL 3.0 is
 * slow at re-decoding public keys).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/ca_int.h"
#include "lib/util.h"

struct kr_csr {
	char name[256];
	X509_REQ *req;
	EVP_PKEY *pub;		/* borrowed from req */
	enum kr_key_type type;
};

void
kr_csr_free(struct kr_csr *c)
{
	if (c == NULL)
		return;
	X509_REQ_free(c->req);
	free(c);
}

static int
only_space(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isspace(p[i]))
			return 0;
	return 1;
}

/* Describe a key we refuse ("RSA-2048", "EC secp521r1"). */
static void
key_desc(const EVP_PKEY *k, char *buf, size_t len)
{
	char group[64];
	size_t glen = 0;

	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	    EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group),
	    &glen))
		(void)snprintf(buf, len, "EC %s", group);
	else
		(void)snprintf(buf, len, "%s-%d", EVP_PKEY_get0_type_name(k) !=
		    NULL ? EVP_PKEY_get0_type_name(k) : "unknown",
		    EVP_PKEY_get_bits(k));
}

int
kr_csr_parse(const char *name, const uint8_t *buf, size_t len,
    struct kr_csr **out)
{
	static const char pem_tag[] = "-----BEGIN";
	struct kr_csr *c = NULL;
	const unsigned char *q;
	BIO *b = NULL;
	char desc[80];
	size_t skip = 0;
	int r;

	*out = NULL;
	if (len > KR_CSR_MAX)
		return kr_errf(KR_ERR_TOO_LARGE, "%s: %zu bytes, limit %d",
		    name, len, KR_CSR_MAX);
	if (len == 0)
		return kr_errf(KR_ERR_FORMAT, "%s: empty", name);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "csr");
	(void)snprintf(c->name, sizeof(c->name), "%s", name);
	while (skip < len && isspace(buf[skip]))
		skip++;
	if (len - skip >= sizeof(pem_tag) - 1 &&
	    memcmp(buf + skip, pem_tag, sizeof(pem_tag) - 1) == 0) {
		if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL) {
			r = kr_err_ssl("%s", name);
			goto out;
		}
		if ((c->req = PEM_read_bio_X509_REQ(b, NULL, NULL,
		    NULL)) == NULL) {
			ERR_clear_error();
			r = kr_errf(KR_ERR_FORMAT, "%s: not a PEM certificate "
			    "request (truncated or corrupt)", name);
			goto out;
		}
		/* Nothing but whitespace may follow. */
		{
			char *rest = NULL;
			long n = BIO_get_mem_data(b, &rest);

			if (n > 0 && !only_space((const uint8_t *)rest,
			    (size_t)n)) {
				r = kr_errf(KR_ERR_FORMAT, "%s: data after the "
				    "certificate request", name);
				goto out;
			}
		}
	} else {
		q = buf;
		if ((c->req = d2i_X509_REQ(NULL, &q, (long)len)) == NULL) {
			ERR_clear_error();
			r = kr_errf(KR_ERR_FORMAT, "%s: not a DER certificate "
			    "request (truncated or corrupt)", name);
			goto out;
		}
		if (q != buf + len) {
			r = kr_errf(KR_ERR_FORMAT, "%s: %zu bytes after the "
			    "certificate request", name,
			    (size_t)(buf + len - q));
			goto out;
		}
	}
	if ((c->pub = X509_REQ_get0_pubkey(c->req)) == NULL) {
		ERR_clear_error();
		r = kr_errf(KR_ERR_FORMAT, "%s: unreadable public key", name);
		goto out;
	}
	if (X509_REQ_verify(c->req, c->pub) != 1) {
		ERR_clear_error();
		r = kr_errf(KR_ERR_SIGNATURE, "%s: CSR signature does not "
		    "verify (no proof of possession)", name);
		goto out;
	}
	if ((c->type = kr_key_type_of(c->pub)) == KR_KEY_NONE) {
		key_desc(c->pub, desc, sizeof(desc));
		r = kr_errf(KR_ERR_UNSUPPORTED, "%s: key type %s not supported "
		    "(p256, p384, rsa3072, ed25519)", name, desc);
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
 out:
	BIO_free(b);
	kr_csr_free(c);
	return r;
}

int
kr_csr_load(const char *path, struct kr_csr **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = kr_read_file(path, KR_CSR_MAX, &buf, &len)) != 0)
		return r;
	r = kr_csr_parse(path, buf, len, out);
	free(buf);
	return r;
}

EVP_PKEY *
kr_csr_pubkey(const struct kr_csr *c)
{
	return c->pub;
}

X509_REQ *
kr_csr_req(const struct kr_csr *c)
{
	return c->req;
}

const char *
kr_csr_name(const struct kr_csr *c)
{
	return c->name;
}

enum kr_key_type
kr_csr_key_type(const struct kr_csr *c)
{
	return c->type;
}

int
kr_csr_check_profile(const struct kr_csr *c, const struct kr_profile *prof)
{
	char allowed[64] = "";
	size_t off = 0;
	int i;

	if (prof->algorithms & KR_KEY_BIT(c->type))
		return 0;
	for (i = KR_KEY_P256; i <= KR_KEY_ED25519; i++) {
		if (!(prof->algorithms & KR_KEY_BIT(i)))
			continue;
		(void)snprintf(allowed + off, sizeof(allowed) - off, "%s%s",
		    off > 0 ? ", " : "", kr_key_type_name((enum kr_key_type)i));
		off = strlen(allowed);
	}
	return kr_errf(KR_ERR_POLICY, "%s: key type %s not allowed by profile "
	    "device (allowed: %s)", c->name, kr_key_type_name(c->type),
	    allowed);
}
