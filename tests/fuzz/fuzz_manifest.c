/*
 * fuzz_manifest.c - libFuzzer harness for the manifest reader.
 * First byte even: the input is a whole manifest file (structure, base64url,
 * protected header, signer lookup). Odd: the rest is a JWS payload, which
 * the harness signs with a signer it pinned, so that the post-signature
 * parsing (uniqueId, timestamps, JWKs, x5c) is reached too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "lib/util.h"
#include "media/manifest.h"

static struct kr_mf_signer sg;
static struct kr_mf_trust tr;
static EVP_PKEY *key;
static char kid[64], x5t[64];

static void
init(void)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	unsigned char *der = NULL;
	int dl;

	key = EVP_EC_gen("P-256");
	sg.cert = X509_new();
	X509_set_version(sg.cert, 2);
	X509_gmtime_adj(X509_getm_notBefore(sg.cert), -86400L * 3650);
	X509_gmtime_adj(X509_getm_notAfter(sg.cert), 86400L * 3650);
	X509_set_pubkey(sg.cert, key);
	X509V3_set_ctx(&ctx, sg.cert, sg.cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier,
	    "hash");
	X509_add_ext(sg.cert, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(sg.cert, key, EVP_sha256());
	dl = i2d_X509(sg.cert, &der);
	kr_sha256(der, (size_t)dl, sg.sha256);
	OPENSSL_free(der);
	if (kr_jws_b64url_encode(sg.sha256, 32, x5t, sizeof(x5t)) != 0 ||
	    kr_jws_b64url_encode(ASN1_STRING_get0_data(X509_get0_subject_key_id(
	    sg.cert)), 20, kid, sizeof(kid)) != 0)
		abort();
	tr.signers = &sg;
	tr.nsigners = 1;
	tr.curves = KR_CURVE_P256 | KR_CURVE_P384 | KR_CURVE_P521;
	tr.backdate = 86400;
}

/* [{"payload":P,"protected":H,"header":{"uniqueId":"0123..."},"signature":S}] */
static char *
wrap(const uint8_t *pl, size_t n)
{
	char prot[256], ph[512], *p64, *in, *out, s64[100];
	unsigned char sig[80], rs[64];
	const unsigned char *q = sig;
	size_t sl = sizeof(sig), cap = n * 2 + 1024;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es;

	snprintf(prot, sizeof(prot), "{\"alg\":\"ES256\",\"kid\":\"%s\","
	    "\"x5t#S256\":\"%s\"}", kid, x5t);
	if (kr_jws_b64url_encode((const uint8_t *)prot, strlen(prot), ph,
	    sizeof(ph)) != 0 || (p64 = malloc(cap)) == NULL ||
	    kr_jws_b64url_encode(pl, n, p64, cap) != 0 ||
	    (in = malloc(cap * 2)) == NULL || (out = malloc(cap * 2)) == NULL)
		abort();
	snprintf(in, cap * 2, "%s.%s", ph, p64);
	EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key);
	EVP_DigestSign(md, sig, &sl, (unsigned char *)in, strlen(in));
	es = d2i_ECDSA_SIG(NULL, &q, (long)sl);
	BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32);
	BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32);
	if (kr_jws_b64url_encode(rs, 64, s64, sizeof(s64)) != 0)
		abort();
	snprintf(out, cap * 2, "[{\"payload\":\"%s\",\"protected\":\"%s\","
	    "\"header\":{\"uniqueId\":\"0123aabbccddeeff01\"},"
	    "\"signature\":\"%s\"}]", p64, ph, s64);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	free(p64);
	free(in);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kr_manifest *m = NULL;
	char *w;

	if (key == NULL)
		init();
	if (size < 1 || size > 64 * 1024)
		return 0;
	if ((data[0] & 1) == 0) {
		if (kr_manifest_parse(&tr, "fuzz", data + 1, size - 1, &m) == 0)
			kr_manifest_free(m);
		return 0;
	}
	w = wrap(data + 1, size - 1);
	if (kr_manifest_parse(&tr, "fuzz", (uint8_t *)w, strlen(w), &m) == 0)
		kr_manifest_free(m);
	free(w);
	return 0;
}
