/*
 * note.c - C2SP signed notes and tlog checkpoints: formatting, signing
 * through a kr_note_signer, strict parsing and Ed25519 verification.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit/note.h"
#include "lib/util.h"

int
kr_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	size_t need = 4 * ((len + 2) / 3) + 1;

	if (len > (size_t)INT32_MAX / 2 || cap < need)
		return kr_errf(KR_ERR_TOO_LARGE, "base64 output too large");
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return 0;
}

int
kr_b64_encode_alloc(const uint8_t *in, size_t len, char **out)
{
	size_t need = 4 * ((len + 2) / 3) + 1;
	char *s;
	int r;

	*out = NULL;
	if ((s = malloc(need)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "base64 buffer");
	if ((r = kr_b64_encode(in, len, s, need)) != 0) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

int
kr_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t cap,
    size_t *outlen)
{
	uint8_t *tmp = NULL;
	size_t n = 0;
	int r;

	*outlen = 0;
	if ((r = kr_b64_decode_alloc(in, inlen, 0, &tmp, &n)) != 0)
		return r;
	if (n > cap) {
		free(tmp);
		return kr_errf(KR_ERR_TOO_LARGE, "base64 decodes to %zu bytes",
		    n);
	}
	memcpy(out, tmp, n);
	*outlen = n;
	free(tmp);
	return 0;
}

void
kr_note_keyid(const char *name, const uint8_t pub[32], uint8_t id[4])
{
	EVP_MD_CTX *c;
	uint8_t h[32];
	static const uint8_t sep[2] = { 0x0a, 0x01 };
	unsigned int hl = 0;

	memset(id, 0, 4);
	if ((c = EVP_MD_CTX_new()) == NULL)
		return;
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, name, strlen(name)) == 1 &&
	    EVP_DigestUpdate(c, sep, 2) == 1 &&
	    EVP_DigestUpdate(c, pub, 32) == 1 &&
	    EVP_DigestFinal_ex(c, h, &hl) == 1)
		memcpy(id, h, 4);
	EVP_MD_CTX_free(c);
}

/* A key name: non-empty, no spaces, no '+', no control characters. */
static int
name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > KR_LOG_MAX_ORIGIN)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == '+' ||
		    s[i] == 0x7f)
			return 0;
	return 1;
}

int
kr_note_vkey(const char *name, const uint8_t pub[32], char *out, size_t cap)
{
	uint8_t kb[33], id[4];
	char b64[64], hex[9];

	if (!name_ok(name, strlen(name)))
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "bad key name '%s'",
		    name);
	kb[0] = 0x01;
	memcpy(kb + 1, pub, 32);
	kr_note_keyid(name, pub, id);
	kr_hex(id, 4, hex);
	if (kr_b64_encode(kb, sizeof(kb), b64, sizeof(b64)) != 0)
		return KR_ERR_INTERNAL;
	return kr_snprintf(out, cap, "%s+%s+%s", name, hex, b64);
}

int
kr_note_vkey_parse(const char *vkey, char *name, size_t cap, uint8_t pub[32])
{
	const char *p1, *p2, *end;
	uint8_t kb[40], id[4], want[4];
	size_t n, kl;
	char hex[9];

	end = vkey + strlen(vkey);
	while (end > vkey && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if ((p1 = memchr(vkey, '+', (size_t)(end - vkey))) == NULL ||
	    (p2 = memchr(p1 + 1, '+', (size_t)(end - p1 - 1))) == NULL)
		return kr_errf(KR_ERR_FORMAT, "vkey: expected name+id+key");
	n = (size_t)(p1 - vkey);
	if (!name_ok(vkey, n) || n + 1 > cap)
		return kr_errf(KR_ERR_FORMAT, "vkey: bad key name");
	if (p2 - p1 - 1 != 8)
		return kr_errf(KR_ERR_FORMAT, "vkey: key id is not 8 hex digits");
	memcpy(hex, p1 + 1, 8);
	hex[8] = '\0';
	if (kr_unhex(hex, id, 4) != 0)
		return kr_errf(KR_ERR_FORMAT, "vkey: bad key id");
	if (kr_b64_decode(p2 + 1, (size_t)(end - p2 - 1), kb, sizeof(kb),
	    &kl) != 0)
		return kr_errctx(KR_ERR_FORMAT, "vkey");
	if (kl < 1 || kb[0] != 0x01)
		return kr_errf(KR_ERR_UNSUPPORTED,
		    "vkey: not an Ed25519 (type 0x01) key");
	if (kl != 33)
		return kr_errf(KR_ERR_FORMAT, "vkey: Ed25519 key is %zu bytes",
		    kl - 1);
	memcpy(name, vkey, n);
	name[n] = '\0';
	memcpy(pub, kb + 1, 32);
	kr_note_keyid(name, pub, want);
	if (memcmp(want, id, 4) != 0)
		return kr_errf(KR_ERR_KEY_MISMATCH,
		    "vkey: key id %s does not match the key", hex);
	return 0;
}

int
kr_checkpoint_body(const char *origin, uint64_t size, const uint8_t root[32],
    char *buf, size_t cap, size_t *len)
{
	char b64[48];
	int r;

	if (kr_b64_encode(root, 32, b64, sizeof(b64)) != 0)
		return KR_ERR_INTERNAL;
	if ((r = kr_snprintf(buf, cap, "%s\n%" PRIu64 "\n%s\n", origin, size,
	    b64)) != 0)
		return r;
	*len = strlen(buf);
	return 0;
}

int
kr_checkpoint_parse(const char *body, size_t len, char *origin, size_t cap,
    uint64_t *size, uint8_t root[32])
{
	const char *l1, *l2, *l3, *end = body + len;
	uint64_t v = 0;
	size_t rl;
	const char *p;

	if (len == 0 || body[len - 1] != '\n')
		return kr_errf(KR_ERR_FORMAT, "checkpoint: not newline-terminated");
	if ((l1 = memchr(body, '\n', len)) == NULL ||
	    (l2 = memchr(l1 + 1, '\n', (size_t)(end - l1 - 1))) == NULL ||
	    (l3 = memchr(l2 + 1, '\n', (size_t)(end - l2 - 1))) == NULL)
		return kr_errf(KR_ERR_FORMAT, "checkpoint: fewer than 3 lines");
	if (l3 + 1 != end)
		return kr_errf(KR_ERR_FORMAT,
		    "checkpoint: unexpected extension lines");
	if (!name_ok(body, (size_t)(l1 - body)))
		return kr_errf(KR_ERR_FORMAT, "checkpoint: bad origin line");
	p = l1 + 1;
	if (p == l2 || (*p == '0' && l2 - p > 1) || l2 - p > 20)
		return kr_errf(KR_ERR_FORMAT, "checkpoint: bad tree size");
	for (; p < l2; p++) {
		if (*p < '0' || *p > '9' ||
		    v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return kr_errf(KR_ERR_FORMAT,
			    "checkpoint: bad tree size");
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (kr_b64_decode(l2 + 1, (size_t)(l3 - l2 - 1), root, 32, &rl) != 0 ||
	    rl != 32)
		return kr_errf(KR_ERR_FORMAT, "checkpoint: bad root hash");
	if (origin != NULL) {
		if ((size_t)(l1 - body) + 1 > cap)
			return kr_errf(KR_ERR_TOO_LARGE, "checkpoint: origin");
		memcpy(origin, body, (size_t)(l1 - body));
		origin[l1 - body] = '\0';
	}
	*size = v;
	return 0;
}

int
kr_note_sign(const struct kr_note_signer *s, const char *body, size_t len,
    char **out, size_t *outlen)
{
	uint8_t sig[68];
	char b64[96], *buf = NULL;
	size_t cap;
	int r, n;

	*out = NULL;
	if (len == 0 || body[len - 1] != '\n' || memmem(body, len, "\n\n", 2))
		return kr_errf(KR_ERR_INVALID_ARGUMENT,
		    "note body must end in one newline");
	kr_note_keyid(s->name, s->pub, sig);
	if ((r = s->sign(s->arg, (const uint8_t *)body, len, sig + 4)) != 0)
		return kr_errctx(r, "signing checkpoint with %s", s->name);
	/* Sign, then verify before it leaves. */
	if ((r = kr_ed25519_verify(s->pub, (const uint8_t *)body, len,
	    sig + 4)) != 0)
		return kr_errctx(r, "checkpoint signature by %s", s->name);
	if (kr_b64_encode(sig, sizeof(sig), b64, sizeof(b64)) != 0)
		return KR_ERR_INTERNAL;
	cap = len + strlen(s->name) + strlen(b64) + 16;
	if ((buf = malloc(cap)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "note");
	memcpy(buf, body, len);
	n = snprintf(buf + len, cap - len, "\n" KR_NOTE_SIGPREFIX "%s %s\n",
	    s->name, b64);
	if (n < 0 || (size_t)n >= cap - len) {
		free(buf);
		return kr_errf(KR_ERR_INTERNAL, "note too long");
	}
	*out = buf;
	if (outlen != NULL)
		*outlen = len + (size_t)n;
	return 0;
}

int
kr_ed25519_verify(const uint8_t pub[32], const uint8_t *msg, size_t len,
    const uint8_t sig[64])
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *c = NULL;
	int ret = KR_ERR_SIGNATURE;

	if ((pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
	    32)) == NULL || (c = EVP_MD_CTX_new()) == NULL) {
		ret = kr_err_ssl("Ed25519 public key");
		goto out;
	}
	if (EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk) != 1) {
		ret = kr_err_ssl("Ed25519 verify init");
		goto out;
	}
	if (EVP_DigestVerify(c, sig, 64, msg, len) != 1) {
		ret = kr_errf(KR_ERR_SIGNATURE,
		    "Ed25519 signature does not verify");
		goto out;
	}
	ret = 0;
 out:
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(pk);
	return ret;
}

/* Find the last "\n\n" in s[0..len). */
static const char *
last_blank(const char *s, size_t len)
{
	size_t i;

	for (i = len; i >= 2; i--)
		if (s[i - 1] == '\n' && s[i - 2] == '\n')
			return s + i - 2;
	return NULL;
}

int
kr_note_verify(const char *note, size_t len, const char *name,
    const uint8_t pub[32], const char **body, size_t *bodylen)
{
	const char *sep, *p, *eol, *sp, *end = note + len;
	uint8_t id[4], raw[80];
	size_t blen, rl, nl = strlen(name), plen = strlen(KR_NOTE_SIGPREFIX);
	int found = 0, nsig = 0;

	if (len == 0 || note[len - 1] != '\n')
		return kr_errf(KR_ERR_FORMAT, "note: not newline-terminated");
	if (memchr(note, '\0', len) != NULL)
		return kr_errf(KR_ERR_FORMAT, "note: NUL byte");
	if ((sep = last_blank(note, len)) == NULL)
		return kr_errf(KR_ERR_FORMAT, "note: no signature block");
	blen = (size_t)(sep - note) + 1;
	kr_note_keyid(name, pub, id);
	for (p = sep + 2; p < end; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL || ++nsig > 100)
			return kr_errf(KR_ERR_FORMAT, "note: bad signature block");
		if ((size_t)(eol - p) < plen ||
		    memcmp(p, KR_NOTE_SIGPREFIX, plen) != 0)
			return kr_errf(KR_ERR_FORMAT,
			    "note: signature line without em dash");
		p += plen;
		if ((sp = memchr(p, ' ', (size_t)(eol - p))) == NULL ||
		    !name_ok(p, (size_t)(sp - p)))
			return kr_errf(KR_ERR_FORMAT,
			    "note: bad signature line name");
		if (kr_b64_decode(sp + 1, (size_t)(eol - sp - 1), raw,
		    sizeof(raw), &rl) != 0 || rl < 5)
			return kr_errf(KR_ERR_FORMAT,
			    "note: bad signature encoding");
		if ((size_t)(sp - p) != nl || memcmp(p, name, nl) != 0 ||
		    memcmp(raw, id, 4) != 0)
			continue;	/* someone else's signature */
		if (rl != 68)
			return kr_errf(KR_ERR_SIGNATURE,
			    "note: %s signature is %zu bytes", name, rl - 4);
		if (kr_ed25519_verify(pub, (const uint8_t *)note, blen,
		    raw + 4) != 0)
			return kr_errf(KR_ERR_SIGNATURE,
			    "note: signature by %s does not verify", name);
		found = 1;
	}
	if (!found)
		return kr_errf(KR_ERR_SIGNATURE, "note: no signature by %s",
		    name);
	if (body != NULL)
		*body = note;
	if (bodylen != NULL)
		*bodylen = blen;
	return 0;
}
