/* yaml.c - libyaml event stream -> jansson tree, strictly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "util.h"
#include "yaml.h"

struct ctx {
	yaml_parser_t p;
	const char *name;
};

static int
perr(struct ctx *c, const yaml_mark_t *m, const char *what)
{
	return kr_errf(KR_ERR_CONFIG, "%s:%zu:%zu: %s", c->name,
	    m->line + 1, m->column + 1, what);
}

static int
next(struct ctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->p, ev))
		return kr_errf(KR_ERR_CONFIG, "%s:%zu:%zu: %s", c->name,
		    c->p.problem_mark.line + 1, c->p.problem_mark.column + 1,
		    c->p.problem != NULL ? c->p.problem : "YAML syntax error");
	return 0;
}

static json_t *
scalar(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	char *end;
	long long n;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    ev->data.scalar.tag != NULL)
		return json_stringn(v, len);
	if (len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0)
		return json_null();
	if (strcmp(v, "true") == 0)
		return json_true();
	if (strcmp(v, "false") == 0)
		return json_false();
	if ((v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && len > 1)) {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno == 0 && *end == '\0' &&
		    !(v[0] == '0' && len > 1) && !(v[0] == '-' && v[1] == '0'))
			return json_integer(n);
	}
	return json_stringn(v, len);
}

static int node(struct ctx *, yaml_event_t *, int, json_t **);

static int
check_tag(struct ctx *c, const yaml_event_t *ev, const yaml_char_t *tag,
    const yaml_char_t *anchor)
{
	if (anchor != NULL)
		return perr(c, &ev->start_mark, "anchors are not allowed");
	if (tag != NULL && strcmp((const char *)tag, "tag:yaml.org,2002:str")
	    != 0)
		return perr(c, &ev->start_mark, "tags are not allowed");
	return 0;
}

static int
mapping(struct ctx *c, int depth, json_t **out)
{
	yaml_event_t ev;
	json_t *obj = json_object(), *val = NULL;
	char *key = NULL;
	int r;

	if (obj == NULL)
		return kr_errf(KR_ERR_ALLOC, "yaml");
	for (;;) {
		if ((r = next(c, &ev)) != 0)
			goto out;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			r = perr(c, &ev.start_mark, "mapping key must be a "
			    "scalar");
			yaml_event_delete(&ev);
			goto out;
		}
		if ((r = check_tag(c, &ev, ev.data.scalar.tag,
		    ev.data.scalar.anchor)) != 0) {
			yaml_event_delete(&ev);
			goto out;
		}
		if (strlen((char *)ev.data.scalar.value) !=
		    ev.data.scalar.length) {
			r = perr(c, &ev.start_mark, "NUL in key");
			yaml_event_delete(&ev);
			goto out;
		}
		if (json_object_get(obj, (char *)ev.data.scalar.value) !=
		    NULL) {
			char msg[300];

			snprintf(msg, sizeof(msg), "duplicate key '%.200s'",
			    (char *)ev.data.scalar.value);
			r = perr(c, &ev.start_mark, msg);
			yaml_event_delete(&ev);
			goto out;
		}
		key = strdup((char *)ev.data.scalar.value);
		yaml_event_delete(&ev);
		if (key == NULL) {
			r = kr_errf(KR_ERR_ALLOC, "yaml");
			goto out;
		}
		if ((r = next(c, &ev)) != 0)
			goto out;
		r = node(c, &ev, depth + 1, &val);
		yaml_event_delete(&ev);
		if (r != 0)
			goto out;
		if (json_object_set_new(obj, key, val) != 0) {
			val = NULL;
			r = kr_errf(KR_ERR_ALLOC, "yaml");
			goto out;
		}
		val = NULL;
		free(key);
		key = NULL;
	}
	*out = obj;
	obj = NULL;
	r = 0;
 out:
	free(key);
	json_decref(obj);
	return r;
}

static int
sequence(struct ctx *c, int depth, json_t **out)
{
	yaml_event_t ev;
	json_t *arr = json_array(), *val = NULL;
	int r;

	if (arr == NULL)
		return kr_errf(KR_ERR_ALLOC, "yaml");
	for (;;) {
		if ((r = next(c, &ev)) != 0)
			goto out;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		r = node(c, &ev, depth + 1, &val);
		yaml_event_delete(&ev);
		if (r != 0)
			goto out;
		if (json_array_append_new(arr, val) != 0) {
			r = kr_errf(KR_ERR_ALLOC, "yaml");
			goto out;
		}
	}
	*out = arr;
	arr = NULL;
	r = 0;
 out:
	json_decref(arr);
	return r;
}

static int
node(struct ctx *c, yaml_event_t *ev, int depth, json_t **out)
{
	int r;

	if (depth > KR_YAML_MAX_DEPTH)
		return perr(c, &ev->start_mark, "nested too deeply");
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		if ((r = check_tag(c, ev, ev->data.scalar.tag,
		    ev->data.scalar.anchor)) != 0)
			return r;
		/* C-string readers would see only the part before it. */
		if (memchr(ev->data.scalar.value, '\0',
		    ev->data.scalar.length) != NULL)
			return perr(c, &ev->start_mark, "NUL in value");
		if ((*out = scalar(ev)) == NULL)
			return kr_errf(KR_ERR_ALLOC, "yaml");
		return 0;
	case YAML_MAPPING_START_EVENT:
		if ((r = check_tag(c, ev, ev->data.mapping_start.tag,
		    ev->data.mapping_start.anchor)) != 0)
			return r;
		return mapping(c, depth, out);
	case YAML_SEQUENCE_START_EVENT:
		if ((r = check_tag(c, ev, ev->data.sequence_start.tag,
		    ev->data.sequence_start.anchor)) != 0)
			return r;
		return sequence(c, depth, out);
	case YAML_ALIAS_EVENT:
		return perr(c, &ev->start_mark, "aliases are not allowed");
	default:
		return perr(c, &ev->start_mark, "unexpected YAML event");
	}
}

int
kr_yaml_parse(const char *name, const char *buf, size_t len, json_t **out)
{
	struct ctx c;
	yaml_event_t ev;
	json_t *root = NULL;
	int r, state = 0;

	*out = NULL;
	if (len > KR_YAML_MAX_BYTES)
		return kr_errf(KR_ERR_TOO_LARGE, "%s: %zu bytes, limit %d",
		    name, len, KR_YAML_MAX_BYTES);
	memset(&c, 0, sizeof(c));
	c.name = name;
	if (!yaml_parser_initialize(&c.p))
		return kr_errf(KR_ERR_ALLOC, "yaml parser");
	yaml_parser_set_input_string(&c.p, (const unsigned char *)buf, len);
	/* stream-start, document-start, node, document-end, stream-end */
	for (;;) {
		if ((r = next(&c, &ev)) != 0)
			goto out;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (state != 0) {
				r = perr(&c, &ev.start_mark,
				    "only one YAML document allowed");
				yaml_event_delete(&ev);
				goto out;
			}
			state = 1;
			break;
		case YAML_DOCUMENT_END_EVENT:
			state = 2;
			break;
		case YAML_STREAM_END_EVENT:
			yaml_event_delete(&ev);
			goto done;
		default:
			if (state != 1 || root != NULL) {
				r = perr(&c, &ev.start_mark, "unexpected node");
				yaml_event_delete(&ev);
				goto out;
			}
			r = node(&c, &ev, 0, &root);
			if (r != 0) {
				yaml_event_delete(&ev);
				goto out;
			}
		}
		yaml_event_delete(&ev);
	}
 done:
	if (root == NULL) {
		r = kr_errf(KR_ERR_CONFIG, "%s: empty document", name);
		goto out;
	}
	*out = root;
	root = NULL;
	r = 0;
 out:
	json_decref(root);
	yaml_parser_delete(&c.p);
	return r;
}

int
kr_yaml_load(const char *path, json_t **out)
{
	uint8_t *buf = NULL;
	size_t len;
	int r;

	*out = NULL;
	if ((r = kr_read_file(path, KR_YAML_MAX_BYTES, &buf, &len)) != 0)
		return r;
	r = kr_yaml_parse(path, (const char *)buf, len, out);
	free(buf);
	return r;
}

static int
in_list(const char *k, const char *const *list)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(k, *list) == 0)
			return 1;
	return 0;
}

int
kr_json_check_keys(const json_t *obj, const char *where,
    const char *const *allowed, const char *const *required)
{
	const char *k;
	json_t *v;

	if (!json_is_object(obj))
		return kr_errf(KR_ERR_CONFIG, "%s: expected a mapping", where);
	json_object_foreach((json_t *)obj, k, v) {
		if (!in_list(k, allowed))
			return kr_errf(KR_ERR_CONFIG, "%s: unknown key '%s'",
			    where, k);
	}
	for (; required != NULL && *required != NULL; required++)
		if (json_object_get(obj, *required) == NULL)
			return kr_errf(KR_ERR_CONFIG, "%s: missing key '%s'",
			    where, *required);
	return 0;
}

int
kr_json_get_str(const json_t *obj, const char *key, const char *where,
    int required, const char **out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL) {
		if (required)
			return kr_errf(KR_ERR_CONFIG, "%s: missing key '%s'",
			    where, key);
		return 0;
	}
	if (!json_is_string(v))
		return kr_errf(KR_ERR_CONFIG, "%s: '%s' must be a string",
		    where, key);
	*out = json_string_value(v);
	return 0;
}

int
kr_json_get_int(const json_t *obj, const char *key, const char *where,
    int required, long long min, long long max, long long *out)
{
	json_t *v = json_object_get(obj, key);
	long long n;

	if (v == NULL) {
		if (required)
			return kr_errf(KR_ERR_CONFIG, "%s: missing key '%s'",
			    where, key);
		return 0;
	}
	if (!json_is_integer(v))
		return kr_errf(KR_ERR_CONFIG, "%s: '%s' must be an integer",
		    where, key);
	n = json_integer_value(v);
	if (n < min || n > max)
		return kr_errf(KR_ERR_CONFIG, "%s: '%s' = %lld out of range "
		    "[%lld, %lld]", where, key, n, min, max);
	*out = n;
	return 0;
}

int
kr_json_get_bool(const json_t *obj, const char *key, const char *where,
    int required, int *out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL) {
		if (required)
			return kr_errf(KR_ERR_CONFIG, "%s: missing key '%s'",
			    where, key);
		return 0;
	}
	if (!json_is_boolean(v))
		return kr_errf(KR_ERR_CONFIG, "%s: '%s' must be true or false",
		    where, key);
	*out = json_is_true(v);
	return 0;
}
