/*
 * csr.c - CSR intake: PEM or DER, size-capped, no trailing data, proof of
 * possession verified, key type classified once (and kept: OpenSSL 3.0 is
 * slow at re-decoding public keys).
 *
 * Fast path for P-256/P-384 (batch throughput): OpenSSL 3.0's d2i of an
 * X509_REQ decodes its key through a freshly built provider decoder
 * context, which costs several times an ECDSA verify. The fast path
 * parses the request with an ASN.1 template whose key is plain
 * AlgorithmIdentifier + BIT STRING, builds the EC key from a cached group,
 * verifies the self-signature over the request info as encoded, and
 * assembles the X509_REQ callers read (subject, SPKI as-is, attributes).
 * It only ever accepts; anything it does not positively verify (other
 * key types, explicit curves, odd encodings, a bad signature) goes through
 * the full OpenSSL path, which gives the verdict and the error message.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/ca_int.h"
#include "lib/util.h"

struct kr_csr {
	char name[256];
	X509_REQ *req;
	EVP_PKEY *pub;		/* borrowed from req, or own (fast path) */
	int own_pub;
	enum kr_key_type type;
};

/* ---- the fast path's ASN.1: PKCS#10 with an undecoded key ---------- */
typedef struct {
	X509_ALGOR *alg;
	ASN1_BIT_STRING *key;
} KR_SPKI;

ASN1_SEQUENCE(KR_SPKI) = {
	ASN1_SIMPLE(KR_SPKI, alg, X509_ALGOR),
	ASN1_SIMPLE(KR_SPKI, key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(KR_SPKI)

typedef struct {
	ASN1_ENCODING enc;	/* the request info as received */
	ASN1_INTEGER *version;
	X509_NAME *subject;
	KR_SPKI *spki;
	STACK_OF(X509_ATTRIBUTE) *attrs;
} KR_REQ_INFO;

ASN1_SEQUENCE_enc(KR_REQ_INFO, enc, 0) = {
	ASN1_SIMPLE(KR_REQ_INFO, version, ASN1_INTEGER),
	ASN1_SIMPLE(KR_REQ_INFO, subject, X509_NAME),
	ASN1_SIMPLE(KR_REQ_INFO, spki, KR_SPKI),
	ASN1_IMP_SET_OF_OPT(KR_REQ_INFO, attrs, X509_ATTRIBUTE, 0),
} ASN1_SEQUENCE_END_enc(KR_REQ_INFO, KR_REQ_INFO)

typedef struct {
	KR_REQ_INFO *info;
	X509_ALGOR *sigalg;
	ASN1_BIT_STRING *sig;
} KR_REQ;

ASN1_SEQUENCE(KR_REQ) = {
	ASN1_SIMPLE(KR_REQ, info, KR_REQ_INFO),
	ASN1_SIMPLE(KR_REQ, sigalg, X509_ALGOR),
	ASN1_SIMPLE(KR_REQ, sig, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(KR_REQ)

/* Named groups, made once (EC_GROUP_new_by_curve_name is not cheap). */
static EC_GROUP *fast_groups[2];
static pthread_once_t fast_once = PTHREAD_ONCE_INIT;

static void
fast_init(void)
{
	fast_groups[0] = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	fast_groups[1] = EC_GROUP_new_by_curve_name(NID_secp384r1);
}

/* Digests of the ECDSA signature algorithms, fetched once. */
static const EVP_MD *
fast_md(int signid)
{
	switch (signid) {
	case NID_ecdsa_with_SHA256:
		return EVP_sha256();
	case NID_ecdsa_with_SHA384:
		return EVP_sha384();
	case NID_ecdsa_with_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/*
 * The X509_REQ callers read, from the parsed parts: version, subject, the
 * SPKI exactly as received (X509_PUBKEY_set0_param, no key encoding) and
 * the attributes.
 */
static X509_REQ *
fast_req(const KR_REQ *k)
{
	const KR_SPKI *sp = k->info->spki;
	const ASN1_OBJECT *aobj = NULL;
	const void *apar = NULL;
	ASN1_OBJECT *o = NULL, *po = NULL;
	unsigned char *enc = NULL;
	X509_REQ *req = NULL;
	int ptype = 0, i;

	X509_ALGOR_get0(&aobj, &ptype, &apar, sp->alg);
	if (ptype != V_ASN1_OBJECT ||
	    (req = X509_REQ_new()) == NULL ||
	    !X509_REQ_set_version(req, ASN1_INTEGER_get(k->info->version)) ||
	    !X509_REQ_set_subject_name(req, k->info->subject) ||
	    (o = OBJ_dup(aobj)) == NULL ||
	    (po = OBJ_dup(apar)) == NULL ||
	    (enc = OPENSSL_memdup(sp->key->data, (size_t)sp->key->length)) ==
	    NULL)
		goto err;
	if (!X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(req), o,
	    V_ASN1_OBJECT, po, enc, sp->key->length))
		goto err;
	o = po = NULL;
	enc = NULL;
	for (i = 0; i < sk_X509_ATTRIBUTE_num(k->info->attrs); i++)
		if (!X509_REQ_add1_attr(req,
		    sk_X509_ATTRIBUTE_value(k->info->attrs, i)))
			goto err;
	return req;
 err:
	ASN1_OBJECT_free(o);
	ASN1_OBJECT_free(po);
	OPENSSL_free(enc);
	X509_REQ_free(req);
	return NULL;
}

/*
 * DER request -> *out if it is a P-256/P-384 request whose self-signature
 * verifies. Nonzero (no error recorded) for anything else.
 */
static int
parse_fast(const char *name, const uint8_t *der, size_t len,
    struct kr_csr **out)
{
	const unsigned char *q = der;
	const ASN1_OBJECT *aobj = NULL, *sobj = NULL;
	const void *apar = NULL, *spar = NULL;
	const EVP_MD *md;
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	int ptype = 0, sptype = 0, gi, ok = 0;
	struct kr_csr *c = NULL;
	EC_KEY *ec = NULL;
	KR_REQ *k = NULL;

	if (pthread_once(&fast_once, fast_init) != 0)
		return -1;
	if (len > KR_CSR_MAX ||
	    (k = (KR_REQ *)ASN1_item_d2i(NULL, &q, (long)len,
	    ASN1_ITEM_rptr(KR_REQ))) == NULL || q != der + len)
		goto out;
	/* id-ecPublicKey on a named P-256/P-384 curve, whole octets */
	X509_ALGOR_get0(&aobj, &ptype, &apar, k->info->spki->alg);
	if (OBJ_obj2nid(aobj) != NID_X9_62_id_ecPublicKey ||
	    ptype != V_ASN1_OBJECT ||
	    (k->info->spki->key->flags & 0x7) != 0)
		goto out;
	switch (OBJ_obj2nid(apar)) {
	case NID_X9_62_prime256v1:
		gi = 0;
		break;
	case NID_secp384r1:
		gi = 1;
		break;
	default:
		goto out;
	}
	/* ecdsa-with-SHA2, no parameters, whole-octet signature */
	X509_ALGOR_get0(&sobj, &sptype, &spar, k->sigalg);
	if ((md = fast_md(OBJ_obj2nid(sobj))) == NULL ||
	    sptype != V_ASN1_UNDEF || (k->sig->flags & 0x7) != 0 ||
	    k->info->enc.enc == NULL || k->info->enc.modified)
		goto out;
	if (fast_groups[gi] == NULL || (ec = EC_KEY_new()) == NULL ||
	    !EC_KEY_set_group(ec, fast_groups[gi]) ||
	    !EC_KEY_oct2key(ec, k->info->spki->key->data,
	    (size_t)k->info->spki->key->length, NULL))
		goto out;
	if (!EVP_Digest(k->info->enc.enc, k->info->enc.len, dgst, &dlen, md,
	    NULL) ||
	    ECDSA_verify(0, dgst, (int)dlen, k->sig->data, k->sig->length,
	    ec) != 1)
		goto out;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	(void)snprintf(c->name, sizeof(c->name), "%s", name);
	if ((c->req = fast_req(k)) == NULL || (c->pub = EVP_PKEY_new()) ==
	    NULL || !EVP_PKEY_assign_EC_KEY(c->pub, ec))
		goto out;
	ec = NULL;	/* owned by c->pub */
	c->own_pub = 1;
	c->type = gi == 0 ? KR_KEY_P256 : KR_KEY_P384;
	*out = c;
	c = NULL;
	ok = 1;
 out:
	kr_csr_free(c);
	EC_KEY_free(ec);
	ASN1_item_free((ASN1_VALUE *)k, ASN1_ITEM_rptr(KR_REQ));
	ERR_clear_error();
	return ok ? 0 : -1;
}

void
kr_csr_free(struct kr_csr *c)
{
	if (c == NULL)
		return;
	X509_REQ_free(c->req);
	if (c->own_pub)
		EVP_PKEY_free(c->pub);
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

/* The fast path on a PEM or DER buffer (same framing rules as below). */
static int
parse_fast_any(const char *name, const uint8_t *buf, size_t len,
    struct kr_csr **out)
{
	static const char pem_tag[] = "-----BEGIN";
	unsigned char *der = NULL;
	char *rest = NULL;
	long dlen = 0, n;
	size_t skip = 0;
	BIO *b = NULL;
	int r = -1;

	while (skip < len && isspace(buf[skip]))
		skip++;
	if (!(len - skip >= sizeof(pem_tag) - 1 &&
	    memcmp(buf + skip, pem_tag, sizeof(pem_tag) - 1) == 0))
		return parse_fast(name, buf, len, out);
	if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    !PEM_bytes_read_bio(&der, &dlen, NULL, PEM_STRING_X509_REQ, b,
	    NULL, NULL))
		goto out;
	n = BIO_get_mem_data(b, &rest);
	if (n > 0 && !only_space((const uint8_t *)rest, (size_t)n))
		goto out;
	r = parse_fast(name, der, (size_t)dlen, out);
 out:
	OPENSSL_free(der);
	BIO_free(b);
	ERR_clear_error();
	return r;
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
	if (parse_fast_any(name, buf, len, out) == 0)
		return 0;
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
