/*
 * registry.c - the device registry rows in LMDB (registry.h): one JSON
 * record per device under "d/<uniqueId>", one index row per public key
 * under "k/<SHA-256(SPKI)>" holding the uniqueId. All writes happen in the
 * caller's (audit) transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/util.h"
#include "media/registry.h"

#define REC_MAX (64 * 1024)

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

static json_t *
hexstr(const uint8_t *b, size_t n)
{
	char h[2 * KR_MF_SPKI_MAX + 1];

	if (n > KR_MF_SPKI_MAX)
		return NULL;
	kr_hex(b, n, h);
	return json_string(h);
}

static int
encode(const struct kr_device *d, char **out)
{
	json_t *o = NULL, *ka, *k;
	size_t i;
	int r = KR_ERR_ALLOC;

	*out = NULL;
	if ((o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:o, s:o, s:o}",
	    "uniqueId", d->unique_id, "model", d->model, "partNumber",
	    d->part_number, "groupId", d->group_id, "version", d->version,
	    "provisioned", (json_int_t)d->provisioned,
	    "signer", hexstr(d->signer, 32), "manifest",
	    hexstr(d->manifest, 32), "content", hexstr(d->content, 32))) ==
	    NULL || json_object_set_new(o, "keys", ka = json_array()) != 0)
		goto out;
	for (i = 0; i < d->nkeys; i++) {
		k = json_pack("{s:s, s:s, s:o, s:b}", "kid", d->keys[i].kid,
		    "crv", kr_curve_name(d->keys[i].curve), "spki",
		    hexstr(d->keys[i].spki, d->keys[i].spki_len), "x5c",
		    d->keys[i].x5c_verified);
		if (k == NULL || json_array_append_new(ka, k) != 0)
			goto out;
	}
	if ((*out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		goto out;
	r = 0;
out:
	json_decref(o);
	return r == 0 ? 0 : kr_errf(r, "registry record for %s",
	    d->unique_id);
}

static int
unhex_field(const json_t *o, const char *key, uint8_t *out, size_t max,
    size_t *n)
{
	const char *s = json_string_value(json_object_get(o, key));
	size_t l;

	if (s == NULL || (l = strlen(s)) % 2 != 0 || l / 2 > max ||
	    kr_unhex(s, out, l / 2) != 0)
		return -1;
	if (n != NULL)
		*n = l / 2;
	else if (l / 2 != max)
		return -1;
	return 0;
}

static int
copy_str(const json_t *o, const char *key, char *out, size_t len)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (s == NULL || strlen(s) >= len)
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int
decode(const MDB_val *v, struct kr_device *d)
{
	json_t *o = NULL, *ka, *k;
	json_error_t je;
	size_t i;
	unsigned b;
	int r = KR_ERR_FORMAT;

	memset(d, 0, sizeof(*d));
	if (v->mv_size > REC_MAX || (o = json_loadb(v->mv_data, v->mv_size,
	    0, &je)) == NULL)
		goto out;
	if (copy_str(o, "uniqueId", d->unique_id, sizeof(d->unique_id)) ||
	    copy_str(o, "model", d->model, sizeof(d->model)) ||
	    copy_str(o, "partNumber", d->part_number,
	    sizeof(d->part_number)) ||
	    copy_str(o, "groupId", d->group_id, sizeof(d->group_id)) ||
	    unhex_field(o, "signer", d->signer, 32, NULL) ||
	    unhex_field(o, "manifest", d->manifest, 32, NULL) ||
	    unhex_field(o, "content", d->content, 32, NULL))
		goto out;
	d->version = (int)json_integer_value(json_object_get(o, "version"));
	d->provisioned = (time_t)json_integer_value(json_object_get(o,
	    "provisioned"));
	ka = json_object_get(o, "keys");
	if (!json_is_array(ka) || json_array_size(ka) > KR_MF_MAX_KEYS)
		goto out;
	for (i = 0; i < json_array_size(ka); i++) {
		struct kr_mf_key *mk = &d->keys[i];

		k = json_array_get(ka, i);
		if (copy_str(k, "kid", mk->kid, sizeof(mk->kid)) ||
		    unhex_field(k, "spki", mk->spki, sizeof(mk->spki),
		    &mk->spki_len))
			goto out;
		for (b = 1; b <= KR_CURVE_P521; b <<= 1)
			if (strcmp(kr_curve_name(b), json_string_value(
			    json_object_get(k, "crv")) != NULL ?
			    json_string_value(json_object_get(k, "crv")) :
			    "") == 0)
				mk->curve = b;
		mk->x5c_verified = json_is_true(json_object_get(k, "x5c"));
	}
	d->nkeys = json_array_size(ka);
	r = 0;
out:
	json_decref(o);
	if (r != 0)
		return kr_errf(r, "registry record %.*s is corrupt",
		    (int)(v->mv_size < 40 ? v->mv_size : 40),
		    (const char *)v->mv_data);
	return 0;
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
	char kb[KR_MF_UNIQUEID_MAX + 8], hx[17], *rec = NULL;
	uint8_t ib[34];
	MDB_val k, v;
	size_t i;
	int r;

	*added = 0;
	r = kr_registry_get(txn, dbi, d->unique_id, &old);
	if (r == 0) {
		if (memcmp(old.content, d->content, 32) == 0)
			return 0;	/* the same chip again: no-op */
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
		/* the same key twice within one entry */
		if (kr_device_key(d, d->keys[i].kid) != &d->keys[i])
			return kr_errf(KR_ERR_EXISTS, "device %s: kid %s "
			    "twice", d->unique_id, d->keys[i].kid);
	}
	if ((r = encode(d, &rec)) != 0)
		return r;
	if ((r = dkey(d->unique_id, kb, sizeof(kb), &k)) != 0)
		goto out;
	v.mv_data = rec;
	v.mv_size = strlen(rec);
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
	free(rec);
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
