/*
 * qset.c - the JSON form of a share set (struct kr_qset), as stored in the
 * LMDB DBI "quorum" and printed by `keyroom quorum show --json`. Strict on
 * the way in: unknown keys, wrong types and out-of-range values are
 * KR_ERR_FORMAT.
 */
#include <string.h>

#include "ceremony/quorum.h"
#include "lib/util.h"
#include "lib/yaml.h"

/* Re-code the current error as KR_ERR_FORMAT, keeping its detail. */
static int
as_format(void)
{
	char d[512];

	snprintf(d, sizeof(d), "%s", kr_err_detail());
	return kr_errf(KR_ERR_FORMAT, "%s", d);
}

static int
put_hex(json_t *o, const char *k, const uint8_t *b, size_t n)
{
	char h[2 * 32 + 1];

	kr_hex(b, n, h);
	return json_object_set_new(o, k, json_string(h)) == 0 ? 0 :
	    kr_errf(KR_ERR_ALLOC, "json");
}

int
kr_qset_to_json(const struct kr_qset *s, json_t **out)
{
	json_t *o = NULL, *mem = NULL, *e;
	unsigned i;
	int r = KR_ERR_ALLOC;

	*out = NULL;
	if ((o = json_object()) == NULL || (mem = json_array()) == NULL)
		goto out;
	if ((r = put_hex(o, "id", s->id, KR_Q_ID_LEN)) != 0)
		goto out;
	r = KR_ERR_ALLOC;
	if (json_object_set_new(o, "label", json_string(s->label)) != 0 ||
	    json_object_set_new(o, "m", json_integer(s->m)) != 0 ||
	    json_object_set_new(o, "n", json_integer(s->n)) != 0 ||
	    json_object_set_new(o, "oob", json_boolean(s->oob)) != 0 ||
	    json_object_set_new(o, "retired", json_boolean(s->retired)) != 0 ||
	    json_object_set_new(o, "created", json_string(s->created)) != 0 ||
	    (s->pending && json_object_set_new(o, "pending",
	    json_true()) != 0))
		goto out;
	if (s->retired && (json_object_set_new(o, "retired_at",
	    json_string(s->retired_at)) != 0 || put_hex(o, "successor",
	    s->successor, KR_Q_ID_LEN) != 0))
		goto out;
	if (!s->oob && put_hex(o, "secret_check", s->secret_check, 32) != 0)
		goto out;
	for (i = 0; i < s->n; i++) {
		if ((e = json_object()) == NULL || json_array_append_new(mem,
		    e) != 0)
			goto out;
		if (json_object_set_new(e, "index", json_integer(i + 1)) != 0 ||
		    json_object_set_new(e, "name",
		    json_string(s->member[i].name)) != 0 ||
		    put_hex(e, "commit", s->member[i].commit, 32) != 0)
			goto out;
	}
	if (json_object_set_new(o, "members", mem) != 0) {
		mem = NULL;
		goto out;
	}
	mem = NULL;
	*out = o;
	o = NULL;
	r = 0;
 out:
	if (r == KR_ERR_ALLOC)
		r = kr_errf(KR_ERR_ALLOC, "share set json");
	json_decref(mem);
	json_decref(o);
	return r;
}

static int
get_hex(const json_t *o, const char *k, int req, uint8_t *b, size_t n,
    const char *where)
{
	const char *v = NULL;

	if (kr_json_get_str(o, k, where, req, &v) != 0)
		return as_format();
	if (v == NULL)
		return 0;
	if (strlen(v) != 2 * n || kr_unhex(v, b, n) != 0)
		return kr_errf(KR_ERR_FORMAT, "%s: %s: want %zu hex bytes",
		    where, k, n);
	return 0;
}

static int
get_str(const json_t *o, const char *k, int req, char *dst, size_t cap,
    const char *where)
{
	const char *v = NULL;

	if (kr_json_get_str(o, k, where, req, &v) != 0)
		return as_format();
	if (v == NULL)
		return 0;
	if (strlen(v) >= cap)
		return kr_errf(KR_ERR_FORMAT, "%s: %s too long", where, k);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

int
kr_qset_from_json(const json_t *j, struct kr_qset **out)
{
	static const char *const keys[] = { "id", "label", "m", "n", "oob",
	    "retired", "created", "retired_at", "successor", "secret_check",
	    "members", "pending", NULL };
	static const char *const req[] = { "id", "label", "m", "n",
	    "members", NULL };
	static const char *const mkeys[] = { "index", "name", "commit",
	    NULL };
	struct kr_qset *s = NULL;
	const json_t *mem, *e;
	const char *w = "share set";
	long long m = 0, n = 0, idx = 0;
	size_t i;
	int r;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "share set");
	if (!json_is_object(j)) {
		r = kr_errf(KR_ERR_FORMAT, "share set: not an object");
		goto out;
	}
	if (kr_json_check_keys(j, w, keys, req) != 0) {
		r = as_format();
		goto out;
	}
	if ((r = get_hex(j, "id", 1, s->id, KR_Q_ID_LEN, w)) != 0 ||
	    (r = get_str(j, "label", 1, s->label, sizeof(s->label), w)) != 0 ||
	    (r = get_str(j, "created", 0, s->created, sizeof(s->created),
	    w)) != 0 ||
	    (r = get_str(j, "retired_at", 0, s->retired_at,
	    sizeof(s->retired_at), w)) != 0 ||
	    (r = get_hex(j, "successor", 0, s->successor, KR_Q_ID_LEN,
	    w)) != 0 ||
	    (r = get_hex(j, "secret_check", 0, s->secret_check, 32, w)) != 0)
		goto out;
	if (kr_json_get_int(j, "m", w, 1, 0, KR_Q_MAX_N, &m) != 0 ||
	    kr_json_get_int(j, "n", w, 1, 0, KR_Q_MAX_N, &n) != 0 ||
	    kr_json_get_bool(j, "oob", w, 0, &s->oob) != 0 ||
	    kr_json_get_bool(j, "retired", w, 0, &s->retired) != 0 ||
	    kr_json_get_bool(j, "pending", w, 0, &s->pending) != 0) {
		r = as_format();
		goto out;
	}
	s->m = (unsigned)m;
	s->n = (unsigned)n;
	mem = json_object_get(j, "members");
	if (!json_is_array(mem) || json_array_size(mem) != s->n ||
	    (!s->oob && (m < 1 || m > n))) {
		r = kr_errf(KR_ERR_FORMAT, "share set: bad m/n/members");
		goto out;
	}
	json_array_foreach(mem, i, e) {
		if (!json_is_object(e) || kr_json_check_keys(e, "member",
		    mkeys, mkeys) != 0 || kr_json_get_int(e, "index", "member",
		    1, 1, KR_Q_MAX_N, &idx) != 0 || idx != (long long)i + 1) {
			r = kr_errf(KR_ERR_FORMAT, "share set: member %zu", i);
			goto out;
		}
		if ((r = get_str(e, "name", 1, s->member[i].name,
		    sizeof(s->member[i].name), "member")) != 0 ||
		    (r = get_hex(e, "commit", 1, s->member[i].commit, 32,
		    "member")) != 0)
			goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
 out:
	free(s);
	return r;
}
