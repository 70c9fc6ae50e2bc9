/*
 * script.c - the ceremony script parser and the step table (see
 * script.h). Parameters are checked by key name (one rule per key) after
 * the per-type allowed/required lists, so a new step type is one table
 * row.
 */
#include <string.h>

#include "ceremony/script.h"
#include "lib/util.h"
#include "lib/yaml.h"

#define K(...) (const char *const[]){ __VA_ARGS__, NULL }
#define NONE ((const char *const[]){ NULL })

const struct kr_step_type_def kr_step_types[KR_STEP__COUNT] = {
	{ KR_STEP_NOTE, "note", NONE, NONE,
	    "a manual step: read aloud and confirm" },
	{ KR_STEP_INIT_TOKENS, "init-tokens", K("tokens"), K("tokens"),
	    "initialise the tokens of these roles with random PINs" },
	{ KR_STEP_SPLIT_PIN, "split-pin", K("token"), K("token"),
	    "split the token's PIN M-of-N and print the share cards" },
	{ KR_STEP_UNLOCK, "unlock", K("token"), K("token"),
	    "the role's quorum enters its shares; log in to the token" },
	{ KR_STEP_GENERATE_KEY, "generate-key",
	    K("token", "algorithm", "generation"), K("token"),
	    "generate the CA key inside the token" },
	{ KR_STEP_SELF_SIGN_ROOT, "self-sign-root", K("generation"), NONE,
	    "self-sign the root certificate (root profile)" },
	{ KR_STEP_SIGN_INTERMEDIATE, "sign-intermediate", K("generation"),
	    NONE, "sign the intermediate certificate with the root key" },
	{ KR_STEP_GENERATE_AUDIT_KEY, "generate-audit-key", NONE, NONE,
	    "show the audit log's checkpoint key (created by keyroom init)" },
	{ KR_STEP_CHECKPOINT, "checkpoint", NONE, NONE,
	    "print the latest signed audit checkpoint (text and QR)" },
	{ KR_STEP_EXPORT_CERT, "export-cert", K("what"), K("what"),
	    "copy a certificate or CRL to the media directory" },
	{ KR_STEP_REVOKE, "revoke", K("issuer", "serial", "reason"),
	    K("serial"), "revoke a certificate by serial" },
	{ KR_STEP_ISSUE_CRL, "issue-crl", K("issuer", "next_days"),
	    K("issuer"), "issue a CRL" },
	{ KR_STEP_CROSS_CERTIFY, "cross-certify", K("direction"),
	    K("direction"), "cross-certify old and new roots" },
	{ KR_STEP_ROTATION_PACKAGE, "rotation-package", NONE, NONE,
	    "new root signed by the old root as CMS SignedData" },
	{ KR_STEP_DESTROY_KEY, "destroy-key", K("token"), K("token"),
	    "destroy the token's CA key under quorum" },
	{ KR_STEP_RESHARE, "reshare", K("token", "m", "n", "custodians"),
	    K("token", "m", "n", "custodians"),
	    "re-split the token's PIN to a new custodian list" },
	{ KR_STEP_PRINT_TRANSCRIPT, "print-transcript", NONE, NONE,
	    "write the transcript to the media directory now" },
	{ KR_STEP_PROMOTE, "promote", NONE, NONE,
	    "make the next root and intermediate current (old keys destroyed "
	    "first)" },
	{ KR_STEP_INSTALL_POLICY, "install-policy", NONE, NONE,
	    "install the signing policy from the media directory's policy/" },
};

static const char *const roles[] = { "root", "issuing", NULL };
static const char *const algorithms[] = { "p256", "p384", "ed25519",
    "rsa3072", NULL };
static const char *const whats[] = { "root", "intermediate", "chain",
    "root-crl", "intermediate-crl", NULL };
static const char *const issuers[] = { "root", "intermediate", NULL };
static const char *const directions[] = { "old-to-new", "new-to-old",
    NULL };
static const char *const generations[] = { "current", "next", NULL };

const struct kr_step_type_def *
kr_step_type_find(const char *name)
{
	size_t i;

	for (i = 0; i < KR_STEP__COUNT; i++)
		if (strcmp(kr_step_types[i].name, name) == 0)
			return &kr_step_types[i];
	return NULL;
}

static int
in_list(const char *v, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(v, *list) == 0)
			return 1;
	return 0;
}

static int
one_of(const char *where, const char *key, const json_t *v,
    const char *const *list)
{
	char opts[256] = "";
	size_t i;

	if (json_is_string(v) && in_list(json_string_value(v), list))
		return 0;
	for (i = 0; list[i] != NULL; i++) {
		strncat(opts, i ? ", " : "", sizeof(opts) - strlen(opts) - 1);
		strncat(opts, list[i], sizeof(opts) - strlen(opts) - 1);
	}
	return kr_errf(KR_ERR_CONFIG, "%s: %s must be one of: %s", where, key,
	    opts);
}

static int
short_str(const char *where, const char *key, const json_t *v, size_t max)
{
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) >= max)
		return kr_errf(KR_ERR_CONFIG, "%s: %s must be a string of 1..%zu "
		    "characters", where, key, max - 1);
	return 0;
}

static int
check_names(const char *where, const char *key, const json_t *v,
    size_t max_n)
{
	const json_t *e;
	size_t i, j;

	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > max_n)
		return kr_errf(KR_ERR_CONFIG, "%s: %s must be a list of 1..%zu "
		    "names", where, key, max_n);
	json_array_foreach(v, i, e) {
		if (short_str(where, key, e, KR_Q_NAME_MAX) != 0)
			return KR_ERR_CONFIG;
		for (j = 0; j < i; j++)
			if (json_equal(e, json_array_get(v, j)))
				return kr_errf(KR_ERR_CONFIG, "%s: %s: '%s' "
				    "listed twice", where, key,
				    json_string_value(e));
	}
	return 0;
}

/* One rule per parameter name. */
static int
check_param(const struct kr_script *s, const char *where, const char *key,
    const json_t *v)
{
	const json_t *e;
	size_t i;

	if (strcmp(key, "token") == 0) {
		if (one_of(where, key, v, roles) != 0)
			return KR_ERR_CONFIG;
		return 0;
	}
	if (strcmp(key, "tokens") == 0) {
		if (!json_is_array(v) || json_array_size(v) == 0)
			return kr_errf(KR_ERR_CONFIG, "%s: tokens must be a "
			    "list of roles", where);
		json_array_foreach(v, i, e)
			if (one_of(where, key, e, roles) != 0)
				return KR_ERR_CONFIG;
		return 0;
	}
	if (strcmp(key, "algorithm") == 0)
		return one_of(where, key, v, algorithms);
	if (strcmp(key, "what") == 0)
		return one_of(where, key, v, whats);
	if (strcmp(key, "issuer") == 0)
		return one_of(where, key, v, issuers);
	if (strcmp(key, "direction") == 0)
		return one_of(where, key, v, directions);
	if (strcmp(key, "generation") == 0)
		return one_of(where, key, v, generations);
	if (strcmp(key, "m") == 0 || strcmp(key, "n") == 0) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > KR_Q_MAX_N)
			return kr_errf(KR_ERR_CONFIG, "%s: %s must be 1..%d",
			    where, key, KR_Q_MAX_N);
		return 0;
	}
	if (strcmp(key, "next_days") == 0) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 3660)
			return kr_errf(KR_ERR_CONFIG, "%s: next_days must be "
			    "1..3660", where);
		return 0;
	}
	if (strcmp(key, "custodians") == 0)
		return check_names(where, key, v, KR_Q_MAX_N);
	if (strcmp(key, "serial") == 0) {
		const char *x = json_string_value(v);

		if (x == NULL || strlen(x) == 0 || strlen(x) > 40 ||
		    strspn(x, "0123456789abcdefABCDEF") != strlen(x))
			return kr_errf(KR_ERR_CONFIG, "%s: serial must be "
			    "1..40 hex digits", where);
		return 0;
	}
	if (strcmp(key, "reason") == 0)
		return short_str(where, key, v, 64);
	(void)s;
	return kr_errf(KR_ERR_INTERNAL, "%s: no rule for parameter %s", where,
	    key);
}

static int
parse_quorums(struct kr_script *s, const char *name, const json_t *q)
{
	static const char *const qkeys[] = { "m", "n", "custodians",
	    "out_of_band", NULL };
	struct kr_script_quorum *sq;
	const char *role;
	const json_t *v, *e;
	char where[160];
	long long m = 0, n = 0;
	int oob = 0;
	size_t i;

	if (!json_is_object(q))
		return kr_errf(KR_ERR_CONFIG, "%s: quorums must be a mapping",
		    name);
	json_object_foreach((json_t *)q, role, v) {
		if (kr_snprintf(where, sizeof(where), "%s: quorums.%s", name,
		    role) != 0)
			return KR_ERR_CONFIG;
		if (!in_list(role, roles))
			return kr_errf(KR_ERR_CONFIG, "%s: unknown token role "
			    "(root, issuing)", where);
		if (s->nquorum >= KR_ARRAY_SIZE(s->quorum))
			return kr_errf(KR_ERR_CONFIG, "%s: too many", where);
		if (!json_is_object(v))
			return kr_errf(KR_ERR_CONFIG, "%s: must be a mapping",
			    where);
		if (kr_json_check_keys(v, where, qkeys, NULL) != 0)
			return KR_ERR_CONFIG;
		if (kr_json_get_bool(v, "out_of_band", where, 0, &oob) != 0)
			return KR_ERR_CONFIG;
		sq = &s->quorum[s->nquorum++];
		memcpy(sq->role, role, strlen(role) + 1);
		sq->oob = oob;
		if (oob) {
			if (json_object_size(v) != 1)
				return kr_errf(KR_ERR_CONFIG, "%s: out_of_band "
				    "takes no m, n or custodians", where);
			continue;
		}
		if (kr_json_get_int(v, "m", where, 1, 1, KR_Q_MAX_N, &m) != 0 ||
		    kr_json_get_int(v, "n", where, 1, 1, KR_Q_MAX_N, &n) != 0)
			return KR_ERR_CONFIG;
		e = json_object_get(v, "custodians");
		if (e == NULL)
			return kr_errf(KR_ERR_CONFIG, "%s: missing key "
			    "'custodians'", where);
		if (check_names(where, "custodians", e, KR_Q_MAX_N) != 0)
			return KR_ERR_CONFIG;
		if (m > n || json_array_size(e) != (size_t)n)
			return kr_errf(KR_ERR_CONFIG, "%s: %lld-of-%lld with %zu "
			    "custodians: need M <= N and N names", where, m, n,
			    json_array_size(e));
		sq->m = (unsigned)m;
		sq->n = (unsigned)n;
		json_array_foreach(e, i, v)
			sq->custodians[i] = json_string_value(v);
	}
	return 0;
}

static int
parse_step(struct kr_script *s, const char *name, size_t i, const json_t *j)
{
	const struct kr_step_type_def *def;
	struct kr_step *st = &s->step[i];
	const char *type = NULL, *key;
	const json_t *v;
	char where[160];
	int known;
	size_t k;

	if (kr_snprintf(where, sizeof(where), "%s: step %zu", name, i + 1) != 0)
		return KR_ERR_CONFIG;
	if (!json_is_object(j))
		return kr_errf(KR_ERR_CONFIG, "%s: must be a mapping", where);
	if (kr_json_get_str(j, "do", where, 1, &type) != 0)
		return KR_ERR_CONFIG;
	if ((def = kr_step_type_find(type)) == NULL)
		return kr_errf(KR_ERR_CONFIG, "%s: unknown step type '%s' "
		    "(keyroom ceremony steps lists them)", where, type);
	if (kr_snprintf(where, sizeof(where), "%s: step %zu (%s)", name,
	    i + 1, type) != 0)
		return KR_ERR_CONFIG;
	if (kr_json_get_str(j, "say", where, 0, &st->say) != 0)
		return KR_ERR_CONFIG;
	json_object_foreach((json_t *)j, key, v) {
		if (strcmp(key, "do") == 0 || strcmp(key, "say") == 0)
			continue;
		for (k = 0, known = 0; def->keys[k] != NULL; k++)
			known |= strcmp(def->keys[k], key) == 0;
		if (!known)
			return kr_errf(KR_ERR_CONFIG, "%s: unknown key '%s'",
			    where, key);
		if (check_param(s, where, key, v) != 0)
			return KR_ERR_CONFIG;
	}
	for (k = 0; def->required[k] != NULL; k++)
		if (json_object_get(j, def->required[k]) == NULL)
			return kr_errf(KR_ERR_CONFIG, "%s: missing key '%s'",
			    where, def->required[k]);
	/* Steps that use a quorum need it declared. */
	if ((def->type == KR_STEP_SPLIT_PIN || def->type == KR_STEP_UNLOCK ||
	    def->type == KR_STEP_DESTROY_KEY) &&
	    kr_script_quorum_find(s, json_string_value(json_object_get(j,
	    "token"))) == NULL)
		return kr_errf(KR_ERR_CONFIG, "%s: token '%s' has no quorum "
		    "under quorums:", where,
		    json_string_value(json_object_get(j, "token")));
	if (def->type == KR_STEP_RESHARE) {
		long long m = json_integer_value(json_object_get(j, "m"));
		long long n = json_integer_value(json_object_get(j, "n"));
		size_t c = json_array_size(json_object_get(j, "custodians"));

		if (m > n || c != (size_t)n)
			return kr_errf(KR_ERR_CONFIG, "%s: %lld-of-%lld with %zu "
			    "custodians: need M <= N and N names", where, m, n,
			    c);
	}
	st->def = def;
	st->params = j;
	return 0;
}

/*
 * A token initialised here gets a random PIN that exists only in memory
 * until a later split-pin step of the same script shares it out: refuse
 * a script that would lose it.
 */
static int
check_pins_split(const struct kr_script *s, const char *name)
{
	const json_t *toks, *t;
	size_t i, j, k;
	int found;

	for (i = 0; i < s->nstep; i++) {
		if (s->step[i].def->type != KR_STEP_INIT_TOKENS)
			continue;
		toks = json_object_get(s->step[i].params, "tokens");
		json_array_foreach(toks, k, t) {
			for (j = i + 1, found = 0; j < s->nstep && !found; j++)
				found = s->step[j].def->type ==
				    KR_STEP_SPLIT_PIN && strcmp(kr_step_str(
				    &s->step[j], "token", ""),
				    json_string_value(t)) == 0;
			if (!found)
				return kr_errf(KR_ERR_CONFIG, "%s: step %zu "
				    "(init-tokens): token '%s' needs a later "
				    "split-pin step, or its PIN is lost", name,
				    i + 1, json_string_value(t));
			if (kr_script_quorum_find(s, json_string_value(t)) ==
			    NULL)
				return kr_errf(KR_ERR_CONFIG, "%s: step %zu "
				    "(init-tokens): token '%s' has no quorum "
				    "under quorums:", name, i + 1,
				    json_string_value(t));
		}
	}
	return 0;
}

int
kr_script_parse(const char *name, const uint8_t *buf, size_t len,
    struct kr_script **out)
{
	static const char *const keys[] = { "ceremony", "purpose", "quorums",
	    "witnesses", "steps", NULL };
	static const char *const req[] = { "ceremony", "purpose", "steps",
	    NULL };
	struct kr_script *s = NULL;
	const json_t *v, *e;
	const char *id = NULL;
	size_t i;
	int r;

	*out = NULL;
	if (len > KR_SCRIPT_MAX_BYTES)
		return kr_errf(KR_ERR_TOO_LARGE, "%s: larger than %d bytes",
		    name, KR_SCRIPT_MAX_BYTES);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "script");
	kr_sha256(buf, len, s->sha256);
	if ((r = kr_yaml_parse(name, (const char *)buf, len, &s->tree)) != 0)
		goto out;
	r = KR_ERR_CONFIG;
	if (!json_is_object(s->tree)) {
		kr_errf(r, "%s: a ceremony script is a mapping", name);
		goto out;
	}
	if (kr_json_check_keys(s->tree, name, keys, req) != 0 ||
	    kr_json_get_str(s->tree, "ceremony", name, 1, &id) != 0 ||
	    kr_json_get_str(s->tree, "purpose", name, 1, &s->purpose) != 0)
		goto out;
	if (strlen(id) == 0 || strlen(id) >= sizeof(s->id) ||
	    strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(id)) {
		kr_errf(r, "%s: ceremony id '%s' must be 1..%zu of [a-z0-9-]",
		    name, id, sizeof(s->id) - 1);
		goto out;
	}
	memcpy(s->id, id, strlen(id) + 1);
	if ((v = json_object_get(s->tree, "quorums")) != NULL &&
	    parse_quorums(s, name, v) != 0)
		goto out;
	if ((v = json_object_get(s->tree, "witnesses")) != NULL) {
		if (check_names(name, "witnesses", v,
		    KR_SCRIPT_MAX_WITNESSES) != 0)
			goto out;
		json_array_foreach(v, i, e)
			s->witness[s->nwitness++] = json_string_value(e);
	}
	v = json_object_get(s->tree, "steps");
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > KR_SCRIPT_MAX_STEPS) {
		kr_errf(r, "%s: steps must be a list of 1..%d steps", name,
		    KR_SCRIPT_MAX_STEPS);
		goto out;
	}
	json_array_foreach(v, i, e) {
		if (parse_step(s, name, i, e) != 0)
			goto out;
		s->nstep++;
	}
	if (check_pins_split(s, name) != 0)
		goto out;
	*out = s;
	s = NULL;
	r = 0;
 out:
	kr_script_free(s);
	return r;
}

int
kr_script_load(const char *path, struct kr_script **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = kr_read_file(path, KR_SCRIPT_MAX_BYTES, &buf, &len)) != 0)
		return r;
	r = kr_script_parse(path, buf, len, out);
	free(buf);
	return r;
}

void
kr_script_free(struct kr_script *s)
{
	if (s == NULL)
		return;
	json_decref(s->tree);
	free(s);
}

const struct kr_script_quorum *
kr_script_quorum_find(const struct kr_script *s, const char *role)
{
	size_t i;

	for (i = 0; role != NULL && i < s->nquorum; i++)
		if (strcmp(s->quorum[i].role, role) == 0)
			return &s->quorum[i];
	return NULL;
}

const char *
kr_step_str(const struct kr_step *st, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(st->params, key));

	return v != NULL ? v : dflt;
}

long long
kr_step_int(const struct kr_step *st, const char *key, long long dflt)
{
	const json_t *v = json_object_get(st->params, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}
