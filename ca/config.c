/*
 * config.c - <state>/keyroom.yaml: defaults, strict loading, rendering,
 * state paths, the embedded SoftHSM2 store's softhsm2.conf.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#include "ca/config.h"
#include "ca/tokstore.h"
#include "lib/util.h"
#include "lib/yaml.h"

#define NO_EXPIRY_WORD "no-expiry"

int
kr_state_paths(const char *d, struct kr_state_paths *p)
{
	int r;

	memset(p, 0, sizeof(*p));
	if ((r = kr_snprintf(p->dir, sizeof(p->dir), "%s", d)) != 0 ||
	    (r = kr_snprintf(p->config, sizeof(p->config), "%s/%s", d,
	    KR_CONFIG_FILE)) != 0 ||
	    (r = kr_snprintf(p->policy, sizeof(p->policy), "%s/policy.yaml",
	    d)) != 0 ||
	    (r = kr_snprintf(p->softhsm_conf, sizeof(p->softhsm_conf),
	    "%s/softhsm2.conf", d)) != 0 ||
	    (r = kr_snprintf(p->tokens, sizeof(p->tokens), "%s/tokens",
	    d)) != 0 ||
	    (r = kr_snprintf(p->audit_pin, sizeof(p->audit_pin),
	    "%s/audit-token.pin", d)) != 0 ||
	    (r = kr_snprintf(p->log, sizeof(p->log), "%s/log", d)) != 0 ||
	    (r = kr_snprintf(p->certs, sizeof(p->certs), "%s/certs", d)) != 0 ||
	    (r = kr_snprintf(p->root_pem, sizeof(p->root_pem),
	    "%s/certs/root.pem", d)) != 0 ||
	    (r = kr_snprintf(p->intermediate_pem, sizeof(p->intermediate_pem),
	    "%s/certs/intermediate.pem", d)) != 0 ||
	    (r = kr_snprintf(p->chain_pem, sizeof(p->chain_pem),
	    "%s/certs/chain.pem", d)) != 0 ||
	    (r = kr_snprintf(p->promote_mark, sizeof(p->promote_mark),
	    "%s/certs/promote.inprogress", d)) != 0)
		return kr_errctx(r, "state directory %s", d);
	return 0;
}

int
kr_state_not_promoting(const struct kr_state_paths *p)
{
	if (access(p->promote_mark, F_OK) != 0)
		return 0;
	return kr_errf(KR_ERR_STATE, "a root promotion began and did not "
	    "finish (%s): nothing is issued until the promote.yaml ceremony "
	    "finishes it", p->promote_mark);
}

/* Constants that always fit their buffers. */
static void
set(char *dst, size_t len, const char *s)
{
	size_t n = strlen(s);

	if (n >= len)
		n = len - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

void
kr_config_defaults(struct kr_config *c)
{
	memset(c, 0, sizeof(*c));
	set(c->token_root, sizeof(c->token_root), "keyroom-root");
	set(c->token_issuing, sizeof(c->token_issuing), "keyroom-issuing");
	set(c->token_audit, sizeof(c->token_audit), "keyroom-audit");
	set(c->key_root, sizeof(c->key_root), "root-ca");
	set(c->key_issuing, sizeof(c->key_issuing), "issuing-ca");
	set(c->audit_origin, sizeof(c->audit_origin), "keyroom.example/log");
	set(c->audit_key_label, sizeof(c->audit_key_label), "audit-key");

	c->root.kind = KR_CERT_ROOT;
	c->root.algorithm = KR_KEY_P384;
	c->root.algorithms = KR_KEY_BIT(KR_KEY_P384);
	c->root.validity_days = 7300;
	set(c->root.subject, sizeof(c->root.subject),
	    "/O=keyroom/CN=keyroom Root CA");

	c->intermediate.kind = KR_CERT_INTERMEDIATE;
	c->intermediate.algorithm = KR_KEY_P256;
	c->intermediate.algorithms = KR_KEY_BIT(KR_KEY_P256);
	c->intermediate.validity_days = 3650;
	set(c->intermediate.subject, sizeof(c->intermediate.subject),
	    "/O=keyroom/CN=keyroom Issuing CA");

	c->device.kind = KR_CERT_DEVICE;
	c->device.algorithm = KR_KEY_P256;
	c->device.algorithms = KR_KEY_BIT(KR_KEY_P256);
	c->device.validity_days = KR_VALIDITY_NO_EXPIRY;
	set(c->device.subject, sizeof(c->device.subject),
	    "/O=keyroom/CN={id}");
	/* PEN 32473 is the documentation example (RFC 5612): set your own. */
	set(c->device.hw_type, sizeof(c->device.hw_type),
	    "1.3.6.1.4.1.32473.1");
}

/* Copy an optional string key into a fixed buffer. */
static int
get_str(const json_t *o, const char *key, const char *where, char *dst,
    size_t len)
{
	const char *s = NULL;
	int r;

	if ((r = kr_json_get_str(o, key, where, 0, &s)) != 0 || s == NULL)
		return r;
	if (strlen(s) >= len)
		return kr_errf(KR_ERR_CONFIG, "%s: '%s' longer than %zu bytes",
		    where, key, len - 1);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int
get_label(const json_t *o, const char *key, const char *where, char *dst,
    size_t len)
{
	int r;

	if ((r = get_str(o, key, where, dst, len)) != 0)
		return r;
	if (dst[0] == '\0')
		return kr_errf(KR_ERR_CONFIG, "%s: '%s' must not be empty",
		    where, key);
	return 0;
}

static int
get_alg(const json_t *v, const char *where, const char *key,
    enum kr_key_type *t)
{
	if (!json_is_string(v))
		return kr_errf(KR_ERR_CONFIG, "%s: '%s' must be a string",
		    where, key);
	if ((*t = kr_key_type_parse(json_string_value(v))) == KR_KEY_NONE)
		return kr_errf(KR_ERR_CONFIG, "%s: '%s': unknown algorithm "
		    "'%s' (p256, p384, rsa3072, ed25519)", where, key,
		    json_string_value(v));
	return 0;
}

static int
apply_profile(const char *name, const json_t *o, const char *pname,
    struct kr_profile *p)
{
	static const char *const ca_keys[] = { "algorithm", "validity",
	    "subject", "crl_url", "aia_url", NULL };
	static const char *const dev_keys[] = { "algorithms", "validity",
	    "subject", "crl_url", "aia_url", "key_agreement", "server_auth",
	    "hardware_module_name", "hw_type", NULL };
	enum kr_key_type t;
	const json_t *v, *e;
	char where[128];
	ASN1_OBJECT *obj;
	size_t i;
	int r;

	if ((r = kr_snprintf(where, sizeof(where), "%s: profiles.%s", name,
	    pname)) != 0)
		return r;
	if ((r = kr_json_check_keys(o, where, p->kind == KR_CERT_DEVICE ?
	    dev_keys : ca_keys, NULL)) != 0)
		return r;
	if ((v = json_object_get(o, "algorithm")) != NULL) {
		if ((r = get_alg(v, where, "algorithm", &t)) != 0)
			return r;
		p->algorithm = t;
		p->algorithms = KR_KEY_BIT(t);
	}
	if ((v = json_object_get(o, "algorithms")) != NULL) {
		if (!json_is_array(v) || json_array_size(v) == 0)
			return kr_errf(KR_ERR_CONFIG, "%s: 'algorithms' must be "
			    "a non-empty list", where);
		p->algorithms = 0;
		json_array_foreach(v, i, e) {
			if ((r = get_alg(e, where, "algorithms", &t)) != 0)
				return r;
			p->algorithms |= KR_KEY_BIT(t);
			if (i == 0)
				p->algorithm = t;
		}
	}
	if ((v = json_object_get(o, "validity")) != NULL) {
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), NO_EXPIRY_WORD) == 0)
			p->validity_days = KR_VALIDITY_NO_EXPIRY;
		else if (json_is_integer(v) && json_integer_value(v) >= 1 &&
		    json_integer_value(v) <= KR_VALIDITY_MAX_DAYS)
			p->validity_days = (int)json_integer_value(v);
		else
			return kr_errf(KR_ERR_CONFIG, "%s: 'validity' must be "
			    "1..%d days or \"%s\"", where,
			    KR_VALIDITY_MAX_DAYS, NO_EXPIRY_WORD);
	}
	if ((r = get_str(o, "subject", where, p->subject,
	    sizeof(p->subject))) != 0 ||
	    (r = get_str(o, "crl_url", where, p->crl_url,
	    sizeof(p->crl_url))) != 0 ||
	    (r = get_str(o, "aia_url", where, p->aia_url,
	    sizeof(p->aia_url))) != 0 ||
	    (r = kr_json_get_bool(o, "key_agreement", where, 0,
	    &p->key_agreement)) != 0 ||
	    (r = kr_json_get_bool(o, "server_auth", where, 0,
	    &p->server_auth)) != 0 ||
	    (r = kr_json_get_bool(o, "hardware_module_name", where, 0,
	    &p->hw_module_name)) != 0 ||
	    (r = get_str(o, "hw_type", where, p->hw_type,
	    sizeof(p->hw_type))) != 0)
		return r;
	if (p->kind != KR_CERT_DEVICE && p->subject[0] == '\0')
		return kr_errf(KR_ERR_CONFIG, "%s: 'subject' must not be "
		    "empty", where);
	if (p->hw_module_name) {
		if ((obj = OBJ_txt2obj(p->hw_type, 1)) == NULL) {
			ERR_clear_error();
			return kr_errf(KR_ERR_CONFIG, "%s: 'hw_type' '%s' is "
			    "not a dotted OID", where, p->hw_type);
		}
		ASN1_OBJECT_free(obj);
	}
	return 0;
}

int
kr_config_apply(const char *name, const json_t *root, struct kr_config *c)
{
	static const char *const top[] = { "pkcs11", "tokens", "keys",
	    "audit", "profiles", NULL };
	static const char *const pk[] = { "module", NULL };
	static const char *const tk[] = { "root", "issuing", "audit", NULL };
	static const char *const kk[] = { "root", "issuing", NULL };
	static const char *const ak[] = { "origin", "key_label", NULL };
	static const char *const prk[] = { "root", "intermediate", "device",
	    NULL };
	const json_t *o;
	char where[128];
	int r;

	if (json_is_null(root))
		return 0;	/* an empty file: all defaults */
	if ((r = kr_json_check_keys(root, name, top, NULL)) != 0)
		return r;
#define SECTION(key, allowed) \
	((o = json_object_get(root, key)) != NULL && !json_is_null(o) && \
	((r = kr_snprintf(where, sizeof(where), "%s: %s", name, key)) != 0 || \
	(r = kr_json_check_keys(o, where, allowed, NULL)) != 0))
	if (SECTION("pkcs11", pk))
		return r;
	if (o != NULL && !json_is_null(o) && (r = get_str(o, "module", where,
	    c->module, sizeof(c->module))) != 0)
		return r;
	if (SECTION("tokens", tk))
		return r;
	if (o != NULL && !json_is_null(o) &&
	    ((r = get_label(o, "root", where, c->token_root,
	    sizeof(c->token_root))) != 0 ||
	    (r = get_label(o, "issuing", where, c->token_issuing,
	    sizeof(c->token_issuing))) != 0 ||
	    (r = get_label(o, "audit", where, c->token_audit,
	    sizeof(c->token_audit))) != 0))
		return r;
	if (SECTION("keys", kk))
		return r;
	if (o != NULL && !json_is_null(o) &&
	    ((r = get_label(o, "root", where, c->key_root,
	    sizeof(c->key_root))) != 0 ||
	    (r = get_label(o, "issuing", where, c->key_issuing,
	    sizeof(c->key_issuing))) != 0))
		return r;
	if (SECTION("audit", ak))
		return r;
	if (o != NULL && !json_is_null(o) &&
	    ((r = get_label(o, "origin", where, c->audit_origin,
	    sizeof(c->audit_origin))) != 0 ||
	    (r = get_label(o, "key_label", where, c->audit_key_label,
	    sizeof(c->audit_key_label))) != 0))
		return r;
	if (SECTION("profiles", prk))
		return r;
#undef SECTION
	if (o != NULL && !json_is_null(o)) {
		const json_t *p;

		if ((p = json_object_get(o, "root")) != NULL &&
		    (r = apply_profile(name, p, "root", &c->root)) != 0)
			return r;
		if ((p = json_object_get(o, "intermediate")) != NULL &&
		    (r = apply_profile(name, p, "intermediate",
		    &c->intermediate)) != 0)
			return r;
		if ((p = json_object_get(o, "device")) != NULL &&
		    (r = apply_profile(name, p, "device", &c->device)) != 0)
			return r;
	}
	if (c->root.algorithms != KR_KEY_BIT(c->root.algorithm) ||
	    c->intermediate.algorithms != KR_KEY_BIT(c->intermediate.algorithm))
		return kr_errf(KR_ERR_CONFIG, "%s: root/intermediate profiles "
		    "take one 'algorithm'", name);
	return 0;
}

int
kr_config_parse(const char *name, const char *buf, size_t len,
    struct kr_config *c)
{
	json_t *root = NULL;
	int r;

	kr_config_defaults(c);
	if ((r = kr_yaml_parse(name, buf, len, &root)) != 0)
		return r;
	r = kr_config_apply(name, root, c);
	json_decref(root);
	return r;
}

int
kr_config_load(const char *statedir, struct kr_config *c)
{
	struct kr_state_paths p;
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = kr_state_paths(statedir, &p)) != 0)
		return r;
	if (stat(p.dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    stat(p.config, &st) == -1)
		return kr_errf(KR_ERR_STATE, "%s: not an initialised state "
		    "directory (run keyroom init; a directory left by an "
		    "interrupted init has no keyroom.yaml: remove it first)",
		    statedir);
	if ((r = kr_read_file(p.config, KR_YAML_MAX_BYTES, &buf, &len)) != 0)
		return r;
	r = kr_config_parse(KR_CONFIG_FILE, (const char *)buf, len, c);
	free(buf);
	return r;
}

/* Append s to a growing buffer. */
struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void
sb_add(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);
	char *np;

	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		if ((np = realloc(b->p, b->cap)) == NULL) {
			b->err = 1;
			return;
		}
		b->p = np;
	}
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

/* A YAML double-quoted scalar. Control characters are refused. */
static void
sb_quoted(struct sbuf *b, const char *s)
{
	char c[3] = { 0, 0, 0 };

	sb_add(b, "\"");
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			b->err = 1;
			return;
		}
		c[0] = *s;
		c[1] = '\0';
		if (*s == '"' || *s == '\\') {
			c[0] = '\\';
			c[1] = *s;
		}
		sb_add(b, c);
	}
	sb_add(b, "\"");
}

static void
sb_kv(struct sbuf *b, const char *indent, const char *key, const char *v)
{
	sb_add(b, indent);
	sb_add(b, key);
	sb_add(b, ": ");
	sb_quoted(b, v);
	sb_add(b, "\n");
}

static void
sb_profile(struct sbuf *b, const char *name, const struct kr_profile *p)
{
	char num[32];
	int i, first = 1;

	sb_add(b, "  ");
	sb_add(b, name);
	sb_add(b, ":\n");
	if (p->kind == KR_CERT_DEVICE) {
		sb_add(b, "    algorithms: [");
		for (i = KR_KEY_P256; i <= KR_KEY_ED25519; i++) {
			if (!(p->algorithms & KR_KEY_BIT(i)))
				continue;
			sb_add(b, first ? "" : ", ");
			sb_add(b, kr_key_type_name((enum kr_key_type)i));
			first = 0;
		}
		sb_add(b, "]\n");
	} else {
		sb_add(b, "    algorithm: ");
		sb_add(b, kr_key_type_name(p->algorithm));
		sb_add(b, "\n");
	}
	if (p->validity_days == KR_VALIDITY_NO_EXPIRY)
		sb_add(b, "    validity: " NO_EXPIRY_WORD "\n");
	else {
		(void)snprintf(num, sizeof(num), "%d", p->validity_days);
		sb_add(b, "    validity: ");
		sb_add(b, num);
		sb_add(b, "\n");
	}
	sb_kv(b, "    ", "subject", p->subject);
	if (p->crl_url[0] != '\0')
		sb_kv(b, "    ", "crl_url", p->crl_url);
	if (p->aia_url[0] != '\0')
		sb_kv(b, "    ", "aia_url", p->aia_url);
	if (p->kind == KR_CERT_DEVICE) {
		sb_add(b, p->key_agreement ? "    key_agreement: true\n" :
		    "    key_agreement: false\n");
		sb_add(b, p->server_auth ? "    server_auth: true\n" :
		    "    server_auth: false\n");
		sb_add(b, p->hw_module_name ?
		    "    hardware_module_name: true\n" :
		    "    hardware_module_name: false\n");
		sb_kv(b, "    ", "hw_type", p->hw_type);
	}
}

int
kr_config_render(const struct kr_config *c, char **out)
{
	struct sbuf b = { NULL, 0, 0, 0 };

	*out = NULL;
	sb_add(&b, "# keyroom state configuration (see keyroom-init(1)).\n");
	if (c->module[0] != '\0') {
		sb_add(&b, "pkcs11:\n");
		sb_kv(&b, "  ", "module", c->module);
	} else {
		sb_add(&b, "# pkcs11: {module: PATH}   absent: embedded "
		    "SoftHSM2 in tokens/\n");
	}
	sb_add(&b, "tokens:\n");
	sb_kv(&b, "  ", "root", c->token_root);
	sb_kv(&b, "  ", "issuing", c->token_issuing);
	sb_kv(&b, "  ", "audit", c->token_audit);
	sb_add(&b, "keys:\n");
	sb_kv(&b, "  ", "root", c->key_root);
	sb_kv(&b, "  ", "issuing", c->key_issuing);
	sb_add(&b, "audit:\n");
	sb_kv(&b, "  ", "origin", c->audit_origin);
	sb_kv(&b, "  ", "key_label", c->audit_key_label);
	sb_add(&b, "profiles:\n");
	sb_profile(&b, "root", &c->root);
	sb_profile(&b, "intermediate", &c->intermediate);
	sb_profile(&b, "device", &c->device);
	if (b.err) {
		free(b.p);
		return kr_errf(KR_ERR_CONFIG, "cannot render configuration "
		    "(control character in a value?)");
	}
	*out = b.p;
	return 0;
}

int
kr_config_module(const struct kr_config *c, const struct kr_state_paths *p,
    char *module, size_t len)
{
	char apath[PATH_MAX];
	int r;

	if (c->module[0] != '\0')
		return kr_snprintf(module, len, "%s", c->module);
	if (realpath(p->softhsm_conf, apath) == NULL)
		return kr_errf(KR_ERR_TOKEN, "%s: %s (embedded SoftHSM2 store "
		    "missing)", p->softhsm_conf, strerror(errno));
	if (setenv("SOFTHSM2_CONF", apath, 1) == -1)
		return kr_err_sys("setenv SOFTHSM2_CONF");
	if ((r = kr_tokstore_check(p->tokens)) != 0)
		return kr_errctx(r, "SoftHSM2 token store");
	return kr_hsm_find_softhsm(module, len);
}

int
kr_config_write_softhsm(const struct kr_state_paths *p)
{
	char conf[PATH_MAX + 256], apath[PATH_MAX];
	int r;

	if (mkdir(p->tokens, 0700) == -1 && errno != EEXIST)
		return kr_err_sys("mkdir %s", p->tokens);
	/* SoftHSM resolves tokendir against its own cwd: make it absolute. */
	if (realpath(p->tokens, apath) == NULL)
		return kr_err_sys("%s", p->tokens);
	if ((r = kr_snprintf(conf, sizeof(conf),
	    "# SoftHSM2 store of this keyroom state directory.\n"
	    "directories.tokendir = %s\n"
	    "objectstore.backend = file\n"
	    "log.level = ERROR\n"
	    "slots.removable = false\n", apath)) != 0)
		return r;
	return kr_write_new_file(p->softhsm_conf, conf, strlen(conf), 0600);
}

const struct kr_profile *
kr_config_profile(const struct kr_config *c, enum kr_cert_kind kind)
{
	switch (kind) {
	case KR_CERT_ROOT:
		return &c->root;
	case KR_CERT_INTERMEDIATE:
		return &c->intermediate;
	default:
		return &c->device;
	}
}

int
kr_state_open(const char *statedir, struct kr_config *c,
    struct kr_state_paths *p, struct kr_hsm **hsm)
{
	char module[PATH_MAX];
	int r;

	*hsm = NULL;
	if ((r = kr_state_paths(statedir, p)) != 0 ||
	    (r = kr_config_load(statedir, c)) != 0 ||
	    (r = kr_config_module(c, p, module, sizeof(module))) != 0)
		return r;
	return kr_hsm_load(module, hsm);
}
