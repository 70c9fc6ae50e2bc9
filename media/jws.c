/*
 * jws.c - the JOSE pieces the manifest reader needs: bounded strict
 * base64url and base64 decoding (lib/b64.c) and ES256 verification of a
 * raw r||s signature.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "lib/util.h"
#include "media/manifest.h"

static int
b64_decode(const char *in, size_t len, int url, uint8_t **out,
    size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	if (len > KR_B64_MAX)
		return kr_errf(KR_ERR_TOO_LARGE, "base64 text of %zu bytes",
		    len);
	return kr_b64_decode_alloc(in, len, url, out, outlen);
}

int
kr_jws_b64url_decode(const char *in, size_t len, uint8_t **out, size_t *outlen)
{
	return b64_decode(in, len, 1, out, outlen);
}

int
kr_jws_b64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen)
{
	return b64_decode(in, len, 0, out, outlen);
}

int
kr_jws_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
	size_t need = (len + 2) / 3 * 4 + 1, i, n;

	if (len > KR_B64_MAX || outlen < need)
		return kr_errf(KR_ERR_TOO_LARGE, "base64url output buffer");
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	n = strlen(out);
	while (n > 0 && out[n - 1] == '=')
		out[--n] = '\0';
	for (i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return 0;
}

/*
 * ES256 through the EC_KEY API: OpenSSL 3.0's EVP_DigestVerifyInit
 * fetches algorithms from the provider on every call, several times the
 * cost of the verification itself at manifest sizes.
 */
int
kr_jws_es256_verify(EVP_PKEY *pub, const char *input, size_t inlen,
    const uint8_t *sig, size_t siglen)
{
	const EC_KEY *ec;
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	uint8_t dg[32];
	int r = KR_ERR_SIGNATURE, v;

	if (siglen != 64)
		return kr_errf(KR_ERR_SIGNATURE, "ES256 signature is %zu "
		    "bytes, not 64", siglen);
	/* ES256 is ECDSA on P-256 only, not any 256-bit curve. */
	if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC ||
	    (ec = EVP_PKEY_get0_EC_KEY(pub)) == NULL ||
	    EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) !=
	    NID_X9_62_prime256v1)
		return kr_errf(KR_ERR_SIGNATURE, "ES256 needs a P-256 key");
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(sig, 32, NULL)) == NULL ||
	    (bs = BN_bin2bn(sig + 32, 32, NULL)) == NULL) {
		r = kr_err_ssl("ES256 signature");
		goto out;
	}
	if (ECDSA_SIG_set0(es, br, bs) != 1) {
		r = kr_err_ssl("ES256 signature");
		goto out;
	}
	br = bs = NULL;
	kr_sha256(input, inlen, dg);
	v = ECDSA_do_verify(dg, sizeof(dg), es, (EC_KEY *)ec);
	if (v != 1) {
		ERR_clear_error();
		r = kr_errf(KR_ERR_SIGNATURE, "ES256 signature does not "
		    "verify");
		goto out;
	}
	r = 0;
out:
	ECDSA_SIG_free(es);
	BN_free(br);
	BN_free(bs);
	return r;
}
