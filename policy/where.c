/*
 * where.c - put line numbers on policy errors found after YAML parsing.
 * lib/yaml.c turns the file into a jansson tree, which has no positions;
 * messages name a path instead ("policy.yaml: manufacturers[1]: unknown
 * key 'qouta'"). This walks the YAML events once more to find the line of
 * that path and rewrites the message as "policy.yaml:14: manufacturers[1]:
 * unknown key 'qouta'".
 */
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "lib/util.h"
#include "policy/policy_int.h"

#define PATH_LEN 256
#define DEPTH_MAX 32

struct frame {
	int seq;		/* sequence (else mapping) */
	size_t cur, next;	/* sequence: current / next element index */
	int want_key;		/* mapping: the next node is a key */
	char key[128];		/* mapping: the current key */
};

/* "manufacturers[1].parts[0]" for the node under the top of the stack. */
static int
frames_path(const struct frame *st, size_t depth, char *out, size_t len)
{
	size_t i, o = 0;
	int n;

	out[0] = '\0';
	for (i = 0; i < depth; i++) {
		if (st[i].seq)
			n = snprintf(out + o, len - o, "[%zu]", st[i].cur);
		else
			n = snprintf(out + o, len - o, "%s%s", o > 0 ? "." : "",
			    st[i].key);
		if (n < 0 || (size_t)n >= len - o)
			return -1;
		o += (size_t)n;
	}
	return 0;
}

/* Line (1-based) of the node or key at `path`, 0 if not found. */
static size_t
path_line(const char *buf, size_t len, const char *path)
{
	yaml_parser_t ps;
	yaml_event_t ev;
	struct frame st[DEPTH_MAX];
	char cur[PATH_LEN];
	size_t depth = 0, line = 0;
	int end = 0;

	if (!yaml_parser_initialize(&ps))
		return 0;
	yaml_parser_set_input_string(&ps, (const unsigned char *)buf, len);
	while (!end && line == 0 && yaml_parser_parse(&ps, &ev)) {
		struct frame *top = depth > 0 ? &st[depth - 1] : NULL;
		size_t l = ev.start_mark.line + 1;

		switch (ev.type) {
		case YAML_SCALAR_EVENT:
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (top != NULL && !top->seq && top->want_key) {
				/* a key (lib/yaml.c allows scalar keys only) */
				if (ev.type != YAML_SCALAR_EVENT)
					break;
				(void)snprintf(top->key, sizeof(top->key), "%s",
				    (const char *)ev.data.scalar.value);
				top->want_key = 0;
				if (frames_path(st, depth, cur, sizeof(cur)) ==
				    0 && strcmp(cur, path) == 0)
					line = l;
				break;
			}
			if (top != NULL && top->seq)
				top->cur = top->next++;
			if (top != NULL && !top->seq)
				top->want_key = 1;	/* after this value */
			if (depth > 0 && frames_path(st, depth, cur,
			    sizeof(cur)) == 0 && strcmp(cur, path) == 0) {
				line = l;
				break;
			}
			if (ev.type == YAML_SCALAR_EVENT)
				break;
			if (depth == DEPTH_MAX) {
				end = 1;
				break;
			}
			memset(&st[depth], 0, sizeof(st[depth]));
			st[depth].seq = ev.type == YAML_SEQUENCE_START_EVENT;
			st[depth].want_key = !st[depth].seq;
			depth++;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		case YAML_STREAM_END_EVENT:
			end = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&ps);
	return line;
}

/* A key named in the message: "unknown key 'k'", "'k' must be", "'k' =". */
static int
named_key(const char *msg, char *key, size_t len)
{
	const char *p, *q;

	if ((p = strstr(msg, "unknown key '")) != NULL)
		p += 13;
	else if (msg[0] == '\'')
		p = msg + 1;
	else
		return 0;
	if ((q = strchr(p, '\'')) == NULL || (size_t)(q - p) >= len ||
	    q == p)
		return 0;
	memcpy(key, p, (size_t)(q - p));
	key[q - p] = '\0';
	return 1;
}

void
kr_pol_add_line(const char *name, const char *buf, size_t len)
{
	char msg[1024], path[PATH_LEN], key[128], full[PATH_LEN + 130];
	const char *rest, *after;
	size_t nl = strlen(name), pl = 0, line = 0;

	if (kr_snprintf(msg, sizeof(msg), "%s", kr_err_detail()) != 0 ||
	    strncmp(msg, name, nl) != 0 || strncmp(msg + nl, ": ", 2) != 0)
		return;		/* already "name:LINE:COL: ..." or other */
	rest = msg + nl + 2;
	while (pl < sizeof(path) - 1 && rest[pl] != '\0' &&
	    strchr("abcdefghijklmnopqrstuvwxyz_[]0123456789.", rest[pl]))
		pl++;
	/* a path is followed by ": ", " (" or " '" ("subject 'CN=x': ") */
	if (strncmp(rest + pl, ": ", 2) != 0 &&
	    strncmp(rest + pl, " (", 2) != 0 &&
	    strncmp(rest + pl, " '", 2) != 0)
		pl = 0;
	memcpy(path, rest, pl);
	path[pl] = '\0';
	after = rest + pl + (pl > 0 ? 2 : 0);
	if (named_key(after, key, sizeof(key))) {
		(void)snprintf(full, sizeof(full), "%s%s%s", path,
		    pl > 0 ? "." : "", key);
		line = path_line(buf, len, full);
	}
	if (line == 0 && pl > 0)
		line = path_line(buf, len, path);
	if (line == 0)
		return;
	(void)kr_errf(KR_ERR_CONFIG, "%s:%zu: %s", name, line, rest);
}
