/*
 * b64.c - the one strict base64 / base64url decoder (audit notes and log
 * entries, JOSE manifests): alphabet, length, padding and canonical
 * unused bits checked, then OpenSSL's EVP_DecodeBlock on a checked,
 * translated, padded copy.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

int
kr_b64_decode_alloc(const char *in, size_t len, int url, uint8_t **out,
    size_t *outlen)
{
	char *tmp = NULL;
	uint8_t *buf = NULL, *chk = NULL;
	size_t i, pad = 0, padded, n;
	int r = KR_ERR_FORMAT, dl;

	*out = NULL;
	*outlen = 0;
	if (len > KR_B64_DECODE_MAX)
		return kr_errf(KR_ERR_TOO_LARGE, "base64 text of %zu bytes",
		    len);
	if (!url) {
		/* Standard alphabet, padded to a multiple of 4. */
		if (len % 4 != 0)
			return kr_errf(KR_ERR_FORMAT, "base64 length %zu is "
			    "not a multiple of 4", len);
		while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
			pad++;
		len -= pad;
	}
	if (len % 4 == 1)
		return kr_errf(KR_ERR_FORMAT, "base64%s length %zu is "
		    "impossible", url ? "url" : "", len);
	padded = (len + 3) / 4 * 4;
	if (!url && padded - len != pad)
		return kr_errf(KR_ERR_FORMAT, "base64: wrong padding");
	if ((tmp = malloc(padded + 1)) == NULL ||
	    (buf = malloc(padded / 4 * 3 + 1)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "base64 buffer");
		goto out;
	}
	for (i = 0; i < len; i++) {
		char c = in[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9'))
			tmp[i] = c;
		else if (url && c == '-')
			tmp[i] = '+';
		else if (url && c == '_')
			tmp[i] = '/';
		else if (!url && (c == '+' || c == '/'))
			tmp[i] = c;
		else {
			r = kr_errf(KR_ERR_FORMAT, "base64%s: invalid "
			    "character 0x%02x at offset %zu", url ? "url" : "",
			    (unsigned char)c, i);
			goto out;
		}
	}
	for (; i < padded; i++)
		tmp[i] = '=';
	tmp[padded] = '\0';
	if (padded == 0) {
		*out = buf;
		buf = NULL;
		r = 0;
		goto out;
	}
	if ((dl = EVP_DecodeBlock(buf, (unsigned char *)tmp,
	    (int)padded)) < 0) {
		r = kr_errf(KR_ERR_FORMAT, "base64 does not decode");
		goto out;
	}
	n = (size_t)dl - (padded - len);
	/* Canonical: non-zero unused bits would let two texts mean one
	 * value; re-encode and compare. */
	if ((chk = malloc(padded + 1)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "base64 buffer");
		goto out;
	}
	if ((size_t)EVP_EncodeBlock(chk, buf, (int)n) != padded ||
	    memcmp(chk, tmp, padded) != 0) {
		r = kr_errf(KR_ERR_FORMAT, "base64%s: non-canonical "
		    "encoding (unused bits set)", url ? "url" : "");
		goto out;
	}
	*out = buf;
	*outlen = n;
	buf = NULL;
	r = 0;
out:
	free(tmp);
	free(buf);
	free(chk);
	return r;
}
