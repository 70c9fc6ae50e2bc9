/*
 * registry.c - the device registry rows in LMDB (registry.h): one JSON
 * record per device under "d/<uniqueId>", one index row per public key
 * under "k/<SHA-256(SPKI)>" holding the uniqueId. All writes happen in the
 * caller's (audit) transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/util.h"
#include "media/registry.h"

#define REC_MAX 8192	/* a record is at most ~4.6 KB (16 keys) */

static int
dkey(const char *id, char *buf, size_t len, MDB_val *k)
{
	if (kr_snprintf(buf, len, "d/%s", id) != 0)
		return kr_errf(KR_ERR_TOO_LARGE, "registry key for %.40s", id);
	k->mv_data = buf;
	k->mv_size = strlen(buf);
	return 0;
}

static void
kkey(const uint8_t *spki, size_t len, uint8_t buf[34], MDB_val *k)
{
	buf[0] = 'k';
	buf[1] = '/';
	kr_sha256(spki, len, buf + 2);
	k->mv_data = buf;
	k->mv_size = 34;
}

/*
 * Record format (binary, big-endian, every length checked on decode):
 *   u8 format (1)
 *   str uniqueId, model, partNumber, groupId     (u8 length + bytes)
 *   u32 version, u64 provisioned
 *   32 signer, 32 manifest, 32 content
 *   u8 nkeys, then per key: str kid, u8 curve, u8 x5c, u8 len + SPKI
 * A batch looks a device up per CSR: this decodes in about a microsecond,
 * where a JSON record with hex keys cost ~60 us.
 */
#define REC_FORMAT 1

struct wbuf {
	uint8_t *p;
	size_t len, cap;
};

static int
put(struct wbuf *w, const void *d, size_t n)
{
	if (n > w->cap - w->len)
		return -1;
	memcpy(w->p + w->len, d, n);
	w->len += n;
	return 0;
}

static int
put_u8(struct wbuf *w, unsigned v)
{
	uint8_t b = (uint8_t)v;

	return v > 255 ? -1 : put(w, &b, 1);
}

static int
put_str(struct wbuf *w, const char *s)
{
	size_t n = strlen(s);

	return n > 255 || put_u8(w, (unsigned)n) != 0 ? -1 : put(w, s, n);
}

static int
put_be(struct wbuf *w, uint64_t v, size_t n)
{
	uint8_t b[8];
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return put(w, b, n);
}

static int
encode(const struct kr_device *d, uint8_t *buf, size_t cap, size_t *len)
{
	struct wbuf w = { buf, 0, cap };
	size_t i;

	if (put_u8(&w, REC_FORMAT) || put_str(&w, d->unique_id) ||
	    put_str(&w, d->model) || put_str(&w, d->part_number) ||
	    put_str(&w, d->group_id) || put_be(&w, (uint32_t)d->version, 4) ||
	    put_be(&w, (uint64_t)(int64_t)d->provisioned, 8) ||
	    put(&w, d->signer, 32) || put(&w, d->manifest, 32) ||
	    put(&w, d->content, 32) || put_u8(&w, (unsigned)d->nkeys))
		goto bad;
	for (i = 0; i < d->nkeys; i++)
		if (put_str(&w, d->keys[i].kid) ||
		    put_u8(&w, d->keys[i].curve) ||
		    put_u8(&w, d->keys[i].x5c_verified ? 1 : 0) ||
		    put_u8(&w, (unsigned)d->keys[i].spki_len) ||
		    put(&w, d->keys[i].spki, d->keys[i].spki_len))
			goto bad;
	*len = w.len;
	return 0;
bad:
	return kr_errf(KR_ERR_TOO_LARGE, "registry record for %s",
	    d->unique_id);
}

struct rbuf {
	const uint8_t *p;
	size_t len, off;
};

static int
get(struct rbuf *r, void *d, size_t n)
{
	if (n > r->len - r->off)
		return -1;
	memcpy(d, r->p + r->off, n);
	r->off += n;
	return 0;
}

static int
get_u8(struct rbuf *r, unsigned *v)
{
	uint8_t b;

	if (get(r, &b, 1) != 0)
		return -1;
	*v = b;
	return 0;
}

static int
get_str(struct rbuf *r, char *out, size_t cap)
{
	unsigned n;

	if (get_u8(r, &n) != 0 || n >= cap || get(r, out, n) != 0 ||
	    memchr(out, '\0', n) != NULL)
		return -1;
	out[n] = '\0';
	return 0;
}

static int
get_be(struct rbuf *r, uint64_t *v, size_t n)
{
	uint8_t b[8];
	size_t i;

	if (get(r, b, n) != 0)
		return -1;
	for (*v = 0, i = 0; i < n; i++)
		*v = *v << 8 | b[i];
	return 0;
}

static int
decode(const MDB_val *v, struct kr_device *d)
{
	struct rbuf r = { v->mv_data, v->mv_size, 0 };
	unsigned fmt, nk, u, x, sl;
	uint64_t ver, t;
	size_t i;

	memset(d, 0, sizeof(*d));
	if (get_u8(&r, &fmt) || fmt != REC_FORMAT ||
	    get_str(&r, d->unique_id, sizeof(d->unique_id)) ||
	    get_str(&r, d->model, sizeof(d->model)) ||
	    get_str(&r, d->part_number, sizeof(d->part_number)) ||
	    get_str(&r, d->group_id, sizeof(d->group_id)) ||
	    get_be(&r, &ver, 4) || get_be(&r, &t, 8) ||
	    get(&r, d->signer, 32) || get(&r, d->manifest, 32) ||
	    get(&r, d->content, 32) || get_u8(&r, &nk) ||
	    nk > KR_MF_MAX_KEYS)
		goto bad;
	d->version = (int)(uint32_t)ver;
	d->provisioned = (time_t)(int64_t)t;
	for (i = 0; i < nk; i++) {
		struct kr_mf_key *k = &d->keys[i];

		if (get_str(&r, k->kid, sizeof(k->kid)) || get_u8(&r, &u) ||
		    get_u8(&r, &x) || get_u8(&r, &sl) ||
		    sl > sizeof(k->spki) || get(&r, k->spki, sl))
			goto bad;
		k->curve = u;
		k->x5c_verified = x != 0;
		k->spki_len = sl;
	}
	d->nkeys = nk;
	if (r.off != r.len)
		goto bad;
	return 0;
bad:
	return kr_errf(KR_ERR_FORMAT, "registry record %.*s is corrupt",
	    (int)(v->mv_size < 40 ? v->mv_size : 40),
	    (const char *)v->mv_data);
}

int
kr_registry_get(MDB_txn *txn, MDB_dbi dbi, const char *unique_id,
    struct kr_device *out)
{
	char kb[KR_MF_UNIQUEID_MAX + 8];
	MDB_val k, v;
	int r;

	if ((r = dkey(unique_id, kb, sizeof(kb), &k)) != 0)
		return r;
	if ((r = mdb_get(txn, dbi, &k, &v)) == MDB_NOTFOUND)
		return kr_errf(KR_ERR_NOT_FOUND, "device %.40s is not in the "
		    "registry", unique_id);
	if (r != 0)
		return kr_err_lmdb(r, "registry get %.40s", unique_id);
	return decode(&v, out);
}

int
kr_registry_find_key(MDB_txn *txn, MDB_dbi dbi, const uint8_t *spki,
    size_t spki_len, struct kr_device *out, const char **kid)
{
	uint8_t kb[34];
	char id[KR_MF_UNIQUEID_MAX + 1];
	MDB_val k, v;
	size_t i;
	int r;

	kkey(spki, spki_len, kb, &k);
	if ((r = mdb_get(txn, dbi, &k, &v)) == MDB_NOTFOUND)
		return kr_errf(KR_ERR_NOT_FOUND, "no device in the registry "
		    "has this public key");
	if (r != 0)
		return kr_err_lmdb(r, "registry key lookup");
	if (v.mv_size == 0 || v.mv_size >= sizeof(id))
		return kr_errf(KR_ERR_FORMAT, "registry key index is corrupt");
	memcpy(id, v.mv_data, v.mv_size);
	id[v.mv_size] = '\0';
	if ((r = kr_registry_get(txn, dbi, id, out)) != 0)
		return r;
	for (i = 0; i < out->nkeys; i++)
		if (out->keys[i].spki_len == spki_len &&
		    memcmp(out->keys[i].spki, spki, spki_len) == 0) {
			if (kid != NULL)
				*kid = out->keys[i].kid;
			return 0;
		}
	return kr_errf(KR_ERR_FORMAT, "registry key index for %s is stale",
	    id);
}

int
kr_registry_put(MDB_txn *txn, MDB_dbi dbi, const struct kr_device *d,
    int *added)
{
	struct kr_device old;
	char kb[KR_MF_UNIQUEID_MAX + 8], hx[17];
	uint8_t rec[REC_MAX];
	size_t reclen = 0;
	uint8_t ib[34];
	MDB_val k, v;
	size_t i, j;
	int r;

	*added = 0;
	r = kr_registry_get(txn, dbi, d->unique_id, &old);
	if (r == 0) {
		if (memcmp(old.content, d->content, 32) == 0 &&
		    memcmp(old.signer, d->signer, 32) == 0)
			return 0;	/* the same chip again: no-op */
		if (memcmp(old.content, d->content, 32) == 0) {
			/*
			 * The same chip, now vouched for by another signer
			 * (a re-signed manifest): the latest verified import
			 * is the one the policy's pinned signers are checked
			 * against. Keys are equal, so the index stands.
			 */
			if ((r = encode(d, rec, sizeof(rec), &reclen)) != 0 ||
			    (r = dkey(d->unique_id, kb, sizeof(kb), &k)) != 0)
				return r;
			v.mv_data = rec;
			v.mv_size = reclen;
			if ((r = mdb_put(txn, dbi, &k, &v, 0)) != 0)
				return r == MDB_MAP_FULL ? kr_errf(
				    KR_ERR_MAP_FULL, "registry") : kr_err_lmdb(r,
				    "registry put %s", d->unique_id);
			return 0;
		}
		kr_hex(old.manifest, 8, hx);
		return kr_errf(KR_ERR_EXISTS, "device %s is already recorded "
		    "(from manifest %s...) with different content (part or "
		    "keys differ)", d->unique_id, hx);
	}
	if (r != KR_ERR_NOT_FOUND)
		return r;
	for (i = 0; i < d->nkeys; i++) {
		kkey(d->keys[i].spki, d->keys[i].spki_len, ib, &k);
		if ((r = mdb_get(txn, dbi, &k, &v)) == 0)
			return kr_errf(KR_ERR_EXISTS, "device %s: key kid %s is "
			    "already recorded for device %.*s", d->unique_id,
			    d->keys[i].kid, (int)(v.mv_size > 40 ? 40 :
			    v.mv_size), (const char *)v.mv_data);
		if (r != MDB_NOTFOUND)
			return kr_err_lmdb(r, "registry key lookup");
		/* the same kid or key twice within one entry */
		if (kr_device_key(d, d->keys[i].kid) != &d->keys[i])
			return kr_errf(KR_ERR_EXISTS, "device %s: kid %s "
			    "twice", d->unique_id, d->keys[i].kid);
		for (j = 0; j < i; j++)
			if (d->keys[j].spki_len == d->keys[i].spki_len &&
			    memcmp(d->keys[j].spki, d->keys[i].spki,
			    d->keys[i].spki_len) == 0)
				return kr_errf(KR_ERR_EXISTS, "device %s: two "
				    "keys are equal (kid %s, kid %s)",
				    d->unique_id, d->keys[j].kid,
				    d->keys[i].kid);
	}
	if ((r = encode(d, rec, sizeof(rec), &reclen)) != 0)
		return r;
	if ((r = dkey(d->unique_id, kb, sizeof(kb), &k)) != 0)
		goto out;
	v.mv_data = rec;
	v.mv_size = reclen;
	if ((r = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE)) != 0) {
		r = r == MDB_MAP_FULL ? kr_errf(KR_ERR_MAP_FULL, "registry") :
		    kr_err_lmdb(r, "registry put %s", d->unique_id);
		goto out;
	}
	for (i = 0; i < d->nkeys; i++) {
		kkey(d->keys[i].spki, d->keys[i].spki_len, ib, &k);
		v.mv_data = (void *)d->unique_id;
		v.mv_size = strlen(d->unique_id);
		if ((r = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE)) != 0) {
			r = r == MDB_KEYEXIST ? kr_errf(KR_ERR_EXISTS,
			    "device %s: two keys are equal", d->unique_id) :
			    r == MDB_MAP_FULL ? kr_errf(KR_ERR_MAP_FULL,
			    "registry") : kr_err_lmdb(r, "registry put key");
			goto out;
		}
	}
	*added = 1;
	r = 0;
out:
	return r;
}

int
kr_registry_foreach(MDB_txn *txn, MDB_dbi dbi,
    int (*cb)(const struct kr_device *d, void *arg), void *arg)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct kr_device d;
	int r, op = MDB_SET_RANGE;

	if ((r = mdb_cursor_open(txn, dbi, &c)) != 0)
		return kr_err_lmdb(r, "registry cursor");
	k.mv_data = (void *)"d/";
	k.mv_size = 2;
	for (;;) {
		if ((r = mdb_cursor_get(c, &k, &v, op)) == MDB_NOTFOUND) {
			r = 0;
			break;
		}
		op = MDB_NEXT;
		if (r != 0) {
			r = kr_err_lmdb(r, "registry cursor");
			break;
		}
		if (k.mv_size < 2 || memcmp(k.mv_data, "d/", 2) != 0) {
			r = 0;
			break;
		}
		if ((r = decode(&v, &d)) != 0 || (r = cb(&d, arg)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return r;
}

int
kr_spki_canon(const uint8_t *spki, size_t len, uint8_t out[KR_MF_SPKI_MAX],
    size_t *outlen)
{
	const unsigned char *q = spki;
	unsigned char *der = NULL;
	EVP_PKEY *pk = NULL;
	char g[64];
	int dl, r = KR_ERR_FORMAT;

	if ((pk = d2i_PUBKEY(NULL, &q, (long)len)) == NULL ||
	    q != spki + len || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(pk, g, sizeof(g), NULL) != 1 ||
	    kr_curve_bit(OBJ_txt2nid(g)) == 0)
		goto out;
	if (EVP_PKEY_set_utf8_string_param(pk,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "uncompressed") != 1 ||
	    (dl = i2d_PUBKEY(pk, &der)) <= 0 || (size_t)dl > KR_MF_SPKI_MAX)
		goto out;
	memcpy(out, der, (size_t)dl);
	*outlen = (size_t)dl;
	r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	OPENSSL_free(der);
	return r == 0 ? 0 : kr_errf(r, "public key is not an EC key on a "
	    "supported curve");
}
