/*
 * card.c - share cards: the share code (base32 with line checks and a
 * whole-card check byte) and its forgiving-but-strict parser (see card.h;
 * the printed card is in cardprint.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ceremony/card.h"
#include "lib/util.h"

#define BODY_LEN	44	/* ver, id[8], index, m, n, share[32] */
#define RAW_LEN		45	/* body + check byte */
#define B32_LEN		72	/* base32 characters of RAW_LEN bytes */
#define CARD_VERSION	0x01

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char card_domain[] = "keyroom card v1";
static const char line_domain[] = "keyroom card line v1";

void
kr_base32_encode(const uint8_t *in, size_t len, char *out)
{
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0;

	for (i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32[(acc << (5 - bits)) & 31];
	out[o] = '\0';
}

static int
b32val(char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(b32, c)) == NULL)
		return -1;
	return (int)(p - b32);
}

int
kr_base32_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0, v;

	if (inlen != (outlen * 8 + 4) / 5)
		return kr_errf(KR_ERR_FORMAT, "base32: %zu characters for %zu "
		    "bytes", inlen, outlen);
	for (i = 0; i < inlen; i++) {
		if ((v = b32val(in[i])) < 0)
			return kr_errf(KR_ERR_FORMAT, "base32: bad character "
			    "at %zu", i + 1);
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			if (o < outlen)
				out[o++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
		acc &= 0xff;
	}
	/* Leftover bits must be zero (canonical encoding). */
	if (o != outlen || (acc & ((1u << bits) - 1)) != 0)
		return kr_errf(KR_ERR_FORMAT, "base32: non-canonical "
		    "encoding");
	return 0;
}

static void
sha256_parts(const void *a, size_t alen, const void *b, size_t blen,
    const void *c, size_t clen, uint8_t out[32])
{
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	unsigned int olen = 32;

	if (x == NULL || EVP_DigestInit_ex(x, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(x, a, alen) != 1 ||
	    EVP_DigestUpdate(x, b, blen) != 1 ||
	    EVP_DigestUpdate(x, c, clen) != 1 ||
	    EVP_DigestFinal_ex(x, out, &olen) != 1)
		abort();
	EVP_MD_CTX_free(x);
}

static uint8_t
card_check(const uint8_t body[BODY_LEN])
{
	uint8_t h[32];

	sha256_parts(card_domain, sizeof(card_domain), body, BODY_LEN, "", 0,
	    h);
	return h[0];
}

/* Two base32 characters: 10 bits of the line hash. */
static void
line_check(unsigned lineno, const char *chars, char out[2])
{
	uint8_t h[32], n = (uint8_t)lineno;

	sha256_parts(line_domain, sizeof(line_domain), &n, 1, chars,
	    KR_CARD_LINE_CHARS, h);
	out[0] = b32[h[0] >> 3];
	out[1] = b32[((h[0] & 7) << 2) | (h[1] >> 6)];
}

int
kr_card_code(const struct kr_share *s, int compact, char *out, size_t len)
{
	uint8_t raw[RAW_LEN];
	char enc[B32_LEN + 1], chk[2];
	size_t o = 0, need;
	unsigned l;

	need = compact ? KR_CARD_CODE_LEN + 1 :
	    KR_CARD_LINES * (KR_CARD_LINE_CHARS + 3 + 3 + 1) + 1;
	if (len < need)
		return kr_errf(KR_ERR_TOO_LARGE, "share code buffer");
	raw[0] = CARD_VERSION;
	memcpy(raw + 1, s->set_id, KR_Q_ID_LEN);
	raw[9] = s->index;
	raw[10] = s->m;
	raw[11] = s->n;
	memcpy(raw + 12, s->bytes, KR_Q_SECRET_LEN);
	raw[BODY_LEN] = card_check(raw);
	kr_base32_encode(raw, RAW_LEN, enc);
	OPENSSL_cleanse(raw, sizeof(raw));
	for (l = 0; l < KR_CARD_LINES; l++) {
		const char *p = enc + l * KR_CARD_LINE_CHARS;

		line_check(l + 1, p, chk);
		if (compact) {
			memcpy(out + o, p, KR_CARD_LINE_CHARS);
			o += KR_CARD_LINE_CHARS;
			out[o++] = chk[0];
			out[o++] = chk[1];
		} else {
			/* "ABCD EFGH IJKL  XY\n" */
			memcpy(out + o, p, 4);
			out[o + 4] = ' ';
			memcpy(out + o + 5, p + 4, 4);
			out[o + 9] = ' ';
			memcpy(out + o + 10, p + 8, 4);
			out[o + 14] = ' ';
			out[o + 15] = ' ';
			out[o + 16] = chk[0];
			out[o + 17] = chk[1];
			out[o + 18] = '\n';
			o += 19;
		}
	}
	out[o] = '\0';
	OPENSSL_cleanse(enc, sizeof(enc));
	return 0;
}

/*
 * Normalise typed text into the 84 code characters: drop whitespace and
 * '-', lines starting with '#', a line number ("3 " or "3." or "3)") at the start of a line,
 * upper-case, read 0/1/8 as O/I/B.
 */
static int
normalise(const char *text, char *out, size_t *outlen)
{
	const char *p = text;
	size_t n = 0, pos = 0;
	int bol = 1;
	char c;

	for (; *p != '\0'; p++, pos++) {
		c = *p;
		if (c == '\n' || c == '\r') {
			bol = 1;
			continue;
		}
		if (bol && c == '#') {	/* a comment line (card files) */
			while (p[1] != '\0' && p[1] != '\n') {
				p++;
				pos++;
			}
			continue;
		}
		if (bol && c >= '1' && c <= '9' && (p[1] == ' ' ||
		    p[1] == '\t' || p[1] == '.' || p[1] == ')')) {
			p++;	/* a line number, and its separator */
			pos++;
			bol = 0;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '-')
			continue;
		bol = 0;
		c = (char)toupper((unsigned char)c);
		if (c == '0')
			c = 'O';
		else if (c == '1')
			c = 'I';
		else if (c == '8')
			c = 'B';
		if (b32val(c) < 0)
			return kr_errf(KR_ERR_FORMAT, "share card: character "
			    "'%c' (position %zu) is not on a share card",
			    isprint((unsigned char)*p) ? *p : '?', pos + 1);
		if (n >= KR_CARD_CODE_LEN)
			return kr_errf(KR_ERR_FORMAT, "share card: more than "
			    "%d characters (%d lines of %d)", KR_CARD_CODE_LEN,
			    KR_CARD_LINES, KR_CARD_LINE_CHARS + 2);
		out[n++] = c;
	}
	*outlen = n;
	return 0;
}

int
kr_card_parse(const char *text, struct kr_share *out)
{
	char norm[KR_CARD_CODE_LEN + 1], enc[B32_LEN + 1], chk[2];
	uint8_t raw[RAW_LEN];
	size_t n = 0;
	unsigned l;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = normalise(text, norm, &n)) != 0)
		goto out;
	if (n != KR_CARD_CODE_LEN) {
		r = kr_errf(KR_ERR_FORMAT, "share card: %zu characters, want "
		    "%d (%d lines of %d)%s", n, KR_CARD_CODE_LEN, KR_CARD_LINES,
		    KR_CARD_LINE_CHARS + 2, n < KR_CARD_CODE_LEN ?
		    ": a line is missing or short" : "");
		goto out;
	}
	for (l = 0; l < KR_CARD_LINES; l++) {
		const char *p = norm + l * (KR_CARD_LINE_CHARS + 2);

		line_check(l + 1, p, chk);
		if (chk[0] != p[KR_CARD_LINE_CHARS] ||
		    chk[1] != p[KR_CARD_LINE_CHARS + 1]) {
			r = kr_errf(KR_ERR_QUORUM, "share card line %u: "
			    "checksum %c%c does not match (mistyped?)", l + 1,
			    p[KR_CARD_LINE_CHARS], p[KR_CARD_LINE_CHARS + 1]);
			goto out;
		}
		memcpy(enc + l * KR_CARD_LINE_CHARS, p, KR_CARD_LINE_CHARS);
	}
	enc[B32_LEN] = '\0';
	if ((r = kr_base32_decode(enc, B32_LEN, raw, RAW_LEN)) != 0) {
		r = kr_errctx(KR_ERR_FORMAT, "share card");
		goto out;
	}
	if (raw[BODY_LEN] != card_check(raw)) {
		r = kr_errf(KR_ERR_QUORUM, "share card: checksum does not "
		    "match (mistyped or lines swapped?)");
		goto out;
	}
	if (raw[0] != CARD_VERSION) {
		r = kr_errf(KR_ERR_FORMAT, "share card: version %u not "
		    "supported", raw[0]);
		goto out;
	}
	memcpy(out->set_id, raw + 1, KR_Q_ID_LEN);
	out->index = raw[9];
	out->m = raw[10];
	out->n = raw[11];
	memcpy(out->bytes, raw + 12, KR_Q_SECRET_LEN);
	r = 0;
 out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(norm, sizeof(norm));
	OPENSSL_cleanse(enc, sizeof(enc));
	if (r != 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return r;
}
