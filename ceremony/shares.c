/*
 * shares.c - M-of-N splitting of a token PIN secret with libgfshare, per
 * share commitments, and the unlock accumulator that names every share
 * good or bad as it is entered (see quorum.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libgfshare.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ceremony/quorum.h"
#include "lib/util.h"

static const char commit_domain[] = "keyroom share commitment v1";
static const char check_domain[] = "keyroom secret check v1";

struct kr_unlock {
	const struct kr_qset *set;
	unsigned count;
	uint8_t idx[KR_Q_MAX_N];
	uint8_t *shares;	/* secure: KR_Q_MAX_N * KR_Q_SECRET_LEN */
};

void
kr_qset_id_hex(const uint8_t id[KR_Q_ID_LEN], char out[KR_Q_ID_HEX])
{
	kr_hex(id, KR_Q_ID_LEN, out);
}

/* libgfshare draws its polynomial coefficients through this hook. */
static void
gf_rand(unsigned char *buf, unsigned int len)
{
	if (RAND_bytes(buf, (int)len) != 1)
		abort();	/* no safe way to continue a split */
}

static void
share_commit(const uint8_t id[KR_Q_ID_LEN], uint8_t index, uint8_t m,
    uint8_t n, const uint8_t *share, uint8_t out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t hdr[3] = { index, m, n };
	unsigned int olen = 32;

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, commit_domain, sizeof(commit_domain)) != 1 ||
	    EVP_DigestUpdate(c, id, KR_Q_ID_LEN) != 1 ||
	    EVP_DigestUpdate(c, hdr, sizeof(hdr)) != 1 ||
	    EVP_DigestUpdate(c, share, KR_Q_SECRET_LEN) != 1 ||
	    EVP_DigestFinal_ex(c, out, &olen) != 1)
		abort();	/* SHA-256 cannot fail but for memory */
	EVP_MD_CTX_free(c);
}

static void
secret_check(const uint8_t id[KR_Q_ID_LEN], const uint8_t *secret,
    uint8_t out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int olen = 32;

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, check_domain, sizeof(check_domain)) != 1 ||
	    EVP_DigestUpdate(c, id, KR_Q_ID_LEN) != 1 ||
	    EVP_DigestUpdate(c, secret, KR_Q_SECRET_LEN) != 1 ||
	    EVP_DigestFinal_ex(c, out, &olen) != 1)
		abort();
	EVP_MD_CTX_free(c);
}

int
kr_quorum_secret_matches(const struct kr_qset *set, const uint8_t *secret)
{
	uint8_t h[32];
	int ok;

	secret_check(set->id, secret, h);
	ok = CRYPTO_memcmp(h, set->secret_check, 32) == 0;
	OPENSSL_cleanse(h, sizeof(h));
	return ok;
}

static int
copy_str(char *dst, size_t cap, const char *src, const char *what)
{
	size_t l;

	if (src == NULL || (l = strlen(src)) == 0)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "%s is empty", what);
	if (l >= cap)
		return kr_errf(KR_ERR_TOO_LARGE, "%s '%.20s...' longer than "
		    "%zu bytes", what, src, cap - 1);
	memcpy(dst, src, l + 1);
	return 0;
}

static struct kr_qset *
new_set(void)
{
	struct kr_qset *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (RAND_bytes(s->id, KR_Q_ID_LEN) != 1) {
		free(s);
		return NULL;
	}
	kr_time_rfc3339(time(NULL), s->created);
	return s;
}

int
kr_quorum_split(const uint8_t *secret, const char *label, unsigned m,
    unsigned n, const char *const *names, struct kr_qset **set_out,
    struct kr_share **shares_out)
{
	struct kr_qset *set = NULL;
	struct kr_share *sh = NULL;
	gfshare_ctx *g = NULL;
	uint8_t nrs[KR_Q_MAX_N], *sec = NULL;
	unsigned i, j;
	int r;

	*set_out = NULL;
	*shares_out = NULL;
	if (n < 1 || n > KR_Q_MAX_N || m < 1 || m > n) {
		r = kr_errf(KR_ERR_INVALID_ARGUMENT, "quorum %u-of-%u: need "
		    "1 <= M <= N <= %d", m, n, KR_Q_MAX_N);
		goto out;
	}
	if ((set = new_set()) == NULL) {
		r = kr_err_ssl("share set id");
		goto out;
	}
	if ((r = copy_str(set->label, sizeof(set->label), label,
	    "share set label")) != 0)
		goto out;
	set->m = m;
	set->n = n;
	for (i = 0; i < n; i++) {
		if ((r = copy_str(set->member[i].name,
		    sizeof(set->member[i].name), names != NULL ? names[i] :
		    NULL, "custodian name")) != 0)
			goto out;
		for (j = 0; j < i; j++)
			if (strcmp(set->member[j].name, names[i]) == 0) {
				r = kr_errf(KR_ERR_INVALID_ARGUMENT,
				    "custodian '%s' listed twice", names[i]);
				goto out;
			}
		nrs[i] = (uint8_t)(i + 1);
	}
	sh = kr_secure_alloc(n * sizeof(*sh));
	sec = kr_secure_alloc(KR_Q_SECRET_LEN);
	if (sh == NULL || sec == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "secure memory for shares");
		goto out;
	}
	memcpy(sec, secret, KR_Q_SECRET_LEN);
	gfshare_fill_rand = gf_rand;
	if ((g = gfshare_ctx_init_enc(nrs, n, (unsigned char)m,
	    KR_Q_SECRET_LEN)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "libgfshare context");
		goto out;
	}
	gfshare_ctx_enc_setsecret(g, sec);
	for (i = 0; i < n; i++) {
		memcpy(sh[i].set_id, set->id, KR_Q_ID_LEN);
		sh[i].index = nrs[i];
		sh[i].m = (uint8_t)m;
		sh[i].n = (uint8_t)n;
		gfshare_ctx_enc_getshare(g, (unsigned char)i, sh[i].bytes);
		share_commit(set->id, sh[i].index, sh[i].m, sh[i].n,
		    sh[i].bytes, set->member[i].commit);
	}
	secret_check(set->id, secret, set->secret_check);
	*set_out = set;
	*shares_out = sh;
	set = NULL;
	sh = NULL;
	r = 0;
 out:
	/* gfshare_ctx_free overwrites its buffers via gfshare_fill_rand. */
	if (g != NULL)
		gfshare_ctx_free(g);
	kr_secure_free(sec, KR_Q_SECRET_LEN);
	kr_secure_free(sh, n * sizeof(*sh));
	free(set);
	return r;
}

int
kr_quorum_oob_set(const char *label, struct kr_qset **set_out)
{
	struct kr_qset *set = NULL;
	int r;

	*set_out = NULL;
	if ((set = new_set()) == NULL)
		return kr_err_ssl("share set id");
	if ((r = copy_str(set->label, sizeof(set->label), label,
	    "share set label")) != 0) {
		free(set);
		return r;
	}
	set->oob = 1;
	*set_out = set;
	return 0;
}

void
kr_shares_free(struct kr_share *shares, unsigned n)
{
	kr_secure_free(shares, n * sizeof(*shares));
}

static const struct kr_qset *
find_known(const uint8_t id[KR_Q_ID_LEN], const struct kr_qset *const *known,
    size_t nknown)
{
	size_t i;

	for (i = 0; known != NULL && i < nknown; i++)
		if (memcmp(known[i]->id, id, KR_Q_ID_LEN) == 0)
			return known[i];
	return NULL;
}

int
kr_quorum_check_share(const struct kr_qset *set, const struct kr_share *s,
    const struct kr_qset *const *known, size_t nknown)
{
	const struct kr_qset *other;
	char want[KR_Q_ID_HEX], got[KR_Q_ID_HEX], succ[KR_Q_ID_HEX];
	uint8_t c[32];
	int ok;

	kr_qset_id_hex(set->id, want);
	kr_qset_id_hex(s->set_id, got);
	if (set->oob)
		return kr_errf(KR_ERR_QUORUM, "share set %s (%s) is "
		    "authenticated out of band and takes no shares", want,
		    set->label);
	if (memcmp(s->set_id, set->id, KR_Q_ID_LEN) != 0) {
		other = find_known(s->set_id, known, nknown);
		if (other == NULL)
			return kr_errf(KR_ERR_QUORUM, "share %u belongs to "
			    "unknown share set %s, not %s (%s)", s->index, got,
			    want, set->label);
		if (other->retired) {
			kr_qset_id_hex(other->successor, succ);
			return kr_errf(KR_ERR_QUORUM, "share %u belongs to "
			    "share set %s (%s), which was retired on %s "
			    "(replaced by %s)", s->index, got, other->label,
			    other->retired_at, succ);
		}
		return kr_errf(KR_ERR_QUORUM, "share %u belongs to share set "
		    "%s (%s), not %s (%s)", s->index, got, other->label, want,
		    set->label);
	}
	if (set->retired) {
		kr_qset_id_hex(set->successor, succ);
		return kr_errf(KR_ERR_QUORUM, "share %u: share set %s (%s) "
		    "was retired on %s (replaced by %s)", s->index, want,
		    set->label, set->retired_at, succ);
	}
	if (s->index < 1 || s->index > set->n)
		return kr_errf(KR_ERR_QUORUM, "share index %u outside 1..%u "
		    "of share set %s", s->index, set->n, want);
	if (s->m != set->m || s->n != set->n)
		return kr_errf(KR_ERR_QUORUM, "share %u says %u-of-%u but "
		    "share set %s is %u-of-%u", s->index, s->m, s->n, want,
		    set->m, set->n);
	share_commit(set->id, s->index, s->m, s->n, s->bytes, c);
	ok = CRYPTO_memcmp(c, set->member[s->index - 1].commit, 32) == 0;
	if (!ok)
		return kr_errf(KR_ERR_QUORUM, "share %u of share set %s does "
		    "not match its commitment (forged, or altered after "
		    "printing)", s->index, want);
	return 0;
}

int
kr_unlock_new(const struct kr_qset *set, struct kr_unlock **out)
{
	struct kr_unlock *u;

	*out = NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "unlock");
	if ((u->shares = kr_secure_alloc(KR_Q_MAX_N * KR_Q_SECRET_LEN)) ==
	    NULL) {
		free(u);
		return kr_errf(KR_ERR_ALLOC, "secure memory for shares");
	}
	u->set = set;
	*out = u;
	return 0;
}

int
kr_unlock_add(struct kr_unlock *u, const struct kr_share *s,
    const struct kr_qset *const *known, size_t nknown)
{
	char id[KR_Q_ID_HEX];
	unsigned i;
	int r;

	if ((r = kr_quorum_check_share(u->set, s, known, nknown)) != 0)
		return r;
	for (i = 0; i < u->count; i++)
		if (u->idx[i] == s->index) {
			kr_qset_id_hex(u->set->id, id);
			return kr_errf(KR_ERR_QUORUM, "share %u of share set "
			    "%s already entered", s->index, id);
		}
	if (u->count >= KR_Q_MAX_N)
		return kr_errf(KR_ERR_INTERNAL, "too many shares");
	u->idx[u->count] = s->index;
	memcpy(u->shares + u->count * KR_Q_SECRET_LEN, s->bytes,
	    KR_Q_SECRET_LEN);
	u->count++;
	return 0;
}

unsigned
kr_unlock_count(const struct kr_unlock *u)
{
	return u->count;
}

int
kr_unlock_ready(const struct kr_unlock *u)
{
	return u->set->oob || u->count >= u->set->m;
}

int
kr_unlock_indices(const struct kr_unlock *u, char *buf, size_t len)
{
	uint8_t s[KR_Q_MAX_N], t;
	size_t off = 0;
	unsigned i, j;
	int r;

	memcpy(s, u->idx, u->count);
	for (i = 1; i < u->count; i++)
		for (j = i; j > 0 && s[j - 1] > s[j]; j--) {
			t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	if (len == 0)
		return kr_errf(KR_ERR_TOO_LARGE, "index list");
	buf[0] = '\0';
	for (i = 0; i < u->count; i++) {
		if ((r = kr_snprintf(buf + off, len - off, "%s%u",
		    i ? "," : "", s[i])) != 0)
			return r;
		off += strlen(buf + off);
	}
	return 0;
}

int
kr_unlock_combine(const struct kr_unlock *u, uint8_t *secret)
{
	gfshare_ctx *g = NULL;
	char id[KR_Q_ID_HEX];
	uint8_t nrs[KR_Q_MAX_N];
	unsigned i;
	int r;

	kr_qset_id_hex(u->set->id, id);
	if (u->set->oob)
		return kr_errf(KR_ERR_QUORUM, "share set %s is authenticated "
		    "out of band", id);
	if (u->count < u->set->m)
		return kr_errf(KR_ERR_QUORUM, "%u of %u shares entered for "
		    "share set %s (%s)", u->count, u->set->m, id,
		    u->set->label);
	memcpy(nrs, u->idx, u->count);
	gfshare_fill_rand = gf_rand;	/* also used by gfshare_ctx_free */
	if ((g = gfshare_ctx_init_dec(nrs, u->count, KR_Q_SECRET_LEN)) ==
	    NULL)
		return kr_errf(KR_ERR_ALLOC, "libgfshare context");
	for (i = 0; i < u->count; i++)
		gfshare_ctx_dec_giveshare(g, (unsigned char)i,
		    u->shares + i * KR_Q_SECRET_LEN);
	gfshare_ctx_dec_extract(g, secret);
	gfshare_ctx_free(g);
	r = 0;
	if (!kr_quorum_secret_matches(u->set, secret)) {
		OPENSSL_cleanse(secret, KR_Q_SECRET_LEN);
		r = kr_errf(KR_ERR_QUORUM, "shares of set %s rebuild a "
		    "secret that does not match the set's check", id);
	}
	return r;
}

void
kr_unlock_free(struct kr_unlock *u)
{
	if (u == NULL)
		return;
	kr_secure_free(u->shares, KR_Q_MAX_N * KR_Q_SECRET_LEN);
	OPENSSL_cleanse(u->idx, sizeof(u->idx));
	free(u);
}

void
kr_quorum_pin_text(const uint8_t *secret, char *pin)
{
	kr_hex(secret, KR_Q_SECRET_LEN, pin);
}
