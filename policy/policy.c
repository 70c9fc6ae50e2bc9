/*
 * policy.c - load, validate and lint policy.yaml (format in policy.h).
 * Strict: unknown keys, wrong types, dangling references (a manufacturer's
 * part that the policy does not allow), unreadable or unsuitable
 * certificates are errors. The loaded policy is immutable.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/util.h"
#include "lib/yaml.h"
#include "policy/policy_int.h"

#define CERT_MAX_BYTES (64 * 1024)

static const char *const top_keys[] = { "version", "signers",
	"device_roots", "curves", "lite_entries", "parts", "profiles",
	"subject", "manufacturers", "renewal", "manifest_backdate_days",
	NULL };
static const char *const top_required[] = { "version", "signers", "parts",
	"profiles", "subject", "manufacturers", NULL };

void
kr_policy_free(struct kr_policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nsigners; i++)
		X509_free(p->signers[i].cert);
	sk_X509_pop_free(p->roots, X509_free);
	free(p->parts);
	free(p->profiles);
	for (i = 0; i < p->nmfrs; i++) {
		free(p->mfrs[i].parts);
		free(p->mfrs[i].profiles);
	}
	free(p->mfrs);
	free(p->basedir);
	free(p->name);
	json_decref(p->doc);
	free(p);
}

/* One certificate from {file: PATH} or {pem: TEXT}; PEM or DER. */
static int
load_cert(struct kr_policy *p, const json_t *o, const char *where,
    const char *const *keys, X509 **out, char *src, size_t srclen)
{
	const char *file = NULL, *pem = NULL;
	char path[4096];
	uint8_t *buf = NULL;
	size_t len = 0;
	const unsigned char *q;
	BIO *bio = NULL;
	X509 *c = NULL;
	int r;

	if (!json_is_object(o))
		return kr_errf(KR_ERR_CONFIG, "%s: %s: not a mapping",
		    p->name, where);
	if ((r = kr_json_check_keys(o, where, keys, NULL)) != 0 ||
	    (r = kr_json_get_str(o, "file", where, 0, &file)) != 0 ||
	    (r = kr_json_get_str(o, "pem", where, 0, &pem)) != 0)
		return kr_errctx(r, "%s", p->name);
	if ((file == NULL) == (pem == NULL))
		return kr_errf(KR_ERR_CONFIG, "%s: %s: exactly one of 'file' "
		    "or 'pem' is needed", p->name, where);
	if (file != NULL) {
		if (file[0] == '/')
			r = kr_snprintf(path, sizeof(path), "%s", file);
		else if (p->basedir == NULL)
			return kr_errf(KR_ERR_CONFIG, "%s: %s: relative file "
			    "'%s' without a policy directory", p->name, where,
			    file);
		else
			r = kr_snprintf(path, sizeof(path), "%s/%s",
			    p->basedir, file);
		if (r != 0)
			return kr_errf(KR_ERR_CONFIG, "%s: %s: path too long",
			    p->name, where);
		if ((r = kr_read_file(path, CERT_MAX_BYTES, &buf, &len)) != 0)
			return kr_errctx(r, "%s: %s", p->name, where);
		(void)snprintf(src, srclen, "%s", file);
		if (p->nfiles >= KR_ARRAY_SIZE(p->files)) {
			free(buf);
			return kr_errf(KR_ERR_CONFIG, "%s: %s: too many "
			    "certificate files", p->name, where);
		}
		kr_sha256(buf, len, p->file_sha256[p->nfiles]);
		p->files[p->nfiles++] = file;	/* borrows p->doc */
	} else {
		len = strlen(pem);
		if ((buf = malloc(len + 1)) == NULL)
			return kr_errf(KR_ERR_ALLOC, "%s", where);
		memcpy(buf, pem, len + 1);
		(void)snprintf(src, srclen, "inline PEM (%s)", where);
	}
	if (len > 10 && memmem(buf, len, "-----BEGIN", 10) != NULL) {
		if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
		    (c = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
			r = kr_err_ssl("%s: %s: %s: not a PEM certificate",
			    p->name, where, src);
			r = KR_ERR_CONFIG;
			goto out;
		}
	} else {
		q = buf;
		if ((c = d2i_X509(NULL, &q, (long)len)) == NULL ||
		    q != buf + len) {
			(void)kr_err_ssl("x");
			r = kr_errf(KR_ERR_CONFIG, "%s: %s: %s: not a "
			    "certificate (PEM or DER)", p->name, where, src);
			goto out;
		}
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	BIO_free(bio);
	X509_free(c);
	free(buf);
	ERR_clear_error();
	return r;
}

static int
self_signed(X509 *c)
{
	EVP_PKEY *k = X509_get0_pubkey(c);

	return k != NULL && X509_check_issued(c, c) == X509_V_OK &&
	    X509_verify(c, k) == 1;
}

static int
load_signers(struct kr_policy *p, const json_t *a)
{
	static const char *const keys[] = { "file", "pem", "check_validity",
		NULL };
	char where[64];
	size_t i, j;
	int r, cv;

	if (!json_is_array(a) || json_array_size(a) == 0)
		return kr_errf(KR_ERR_CONFIG, "%s: signers: a non-empty list "
		    "of pinned manifest signers is needed", p->name);
	if (json_array_size(a) > KR_POLICY_MAX_SIGNERS)
		return kr_errf(KR_ERR_CONFIG, "%s: signers: more than %d",
		    p->name, KR_POLICY_MAX_SIGNERS);
	for (i = 0; i < json_array_size(a); i++) {
		struct kr_mf_signer *s = &p->signers[i];
		const json_t *o = json_array_get(a, i);
		unsigned char *der = NULL;
		char grp[64];
		int dl;
		EVP_PKEY *k;

		(void)snprintf(where, sizeof(where), "signers[%zu]", i);
		if ((r = load_cert(p, o, where, keys, &s->cert,
		    p->signer_src[i], sizeof(p->signer_src[i]))) != 0)
			return r;
		p->nsigners = i + 1;
		cv = 1;
		if ((r = kr_json_get_bool(o, "check_validity", where, 0,
		    &cv)) != 0)
			return kr_errctx(r, "%s", p->name);
		s->ignore_validity = !cv;
		if ((dl = i2d_X509(s->cert, &der)) <= 0)
			return kr_err_ssl("%s: %s", p->name, where);
		kr_sha256(der, (size_t)dl, s->sha256);
		OPENSSL_free(der);
		k = X509_get0_pubkey(s->cert);
		if (k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
		    EVP_PKEY_get_group_name(k, grp, sizeof(grp), NULL) != 1 ||
		    OBJ_txt2nid(grp) != NID_X9_62_prime256v1)
			return kr_errf(KR_ERR_CONFIG, "%s: %s (%s): a manifest "
			    "signer needs a P-256 key (ES256)", p->name, where,
			    p->signer_src[i]);
		if (X509_get0_subject_key_id(s->cert) == NULL)
			return kr_errf(KR_ERR_CONFIG, "%s: %s (%s): no subject "
			    "key identifier (the manifests' kid)", p->name,
			    where, p->signer_src[i]);
		for (j = 0; j < i; j++)
			if (memcmp(p->signers[j].sha256, s->sha256, 32) == 0)
				return kr_errf(KR_ERR_CONFIG, "%s: %s (%s): "
				    "pinned twice", p->name, where,
				    p->signer_src[i]);
	}
	ERR_clear_error();
	return 0;
}

static int
load_roots(struct kr_policy *p, const json_t *a)
{
	static const char *const keys[] = { "file", "pem", NULL };
	char where[64], src[256];
	size_t i;
	X509 *c = NULL;
	int r;

	if ((p->roots = sk_X509_new_null()) == NULL)
		return kr_errf(KR_ERR_ALLOC, "device_roots");
	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > KR_POLICY_MAX_ROOTS)
		return kr_errf(KR_ERR_CONFIG, "%s: device_roots: a list of at "
		    "most %d certificates is needed", p->name,
		    KR_POLICY_MAX_ROOTS);
	for (i = 0; i < json_array_size(a); i++) {
		(void)snprintf(where, sizeof(where), "device_roots[%zu]", i);
		if ((r = load_cert(p, json_array_get(a, i), where, keys, &c,
		    src, sizeof(src))) != 0)
			return r;
		if (X509_check_ca(c) < 1 || !self_signed(c)) {
			X509_free(c);
			ERR_clear_error();
			return kr_errf(KR_ERR_CONFIG, "%s: %s (%s): not a "
			    "self-signed CA certificate", p->name, where, src);
		}
		if (!sk_X509_push(p->roots, c)) {
			X509_free(c);
			return kr_errf(KR_ERR_ALLOC, "device_roots");
		}
		c = NULL;
	}
	ERR_clear_error();
	return 0;
}

static int
load_curves(struct kr_policy *p, const json_t *a)
{
	size_t i;
	unsigned b;

	p->curves = KR_CURVE_P256;
	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) == 0)
		return kr_errf(KR_ERR_CONFIG, "%s: curves: a non-empty list "
		    "of P-256, P-384, P-521 is needed", p->name);
	p->curves = 0;
	for (i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));

		if (s == NULL)
			return kr_errf(KR_ERR_CONFIG, "%s: curves[%zu]: not a "
			    "string", p->name, i);
		for (b = 1; b <= KR_CURVE_P521; b <<= 1)
			if (strcmp(kr_curve_name(b), s) == 0)
				break;
		if (b > KR_CURVE_P521)
			return kr_errf(KR_ERR_CONFIG, "%s: curves[%zu]: "
			    "unknown curve '%s' (P-256, P-384, P-521)",
			    p->name, i, s);
		p->curves |= b;
	}
	return 0;
}

static int
load_parts(struct kr_policy *p, const json_t *a)
{
	static const char *const keys[] = { "part_number", "model",
		"identity_kid", NULL };
	static const char *const req[] = { "part_number", NULL };
	char where[64];
	size_t i, j;
	int r;

	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > KR_POLICY_MAX_PARTS)
		return kr_errf(KR_ERR_CONFIG, "%s: parts: a list of 1-%d "
		    "allowed part numbers is needed", p->name,
		    KR_POLICY_MAX_PARTS);
	if ((p->parts = calloc(json_array_size(a), sizeof(*p->parts))) ==
	    NULL)
		return kr_errf(KR_ERR_ALLOC, "parts");
	for (i = 0; i < json_array_size(a); i++) {
		struct kr_pol_part *pt = &p->parts[i];
		const json_t *o = json_array_get(a, i), *k;

		(void)snprintf(where, sizeof(where), "parts[%zu]", i);
		if (!json_is_object(o))
			return kr_errf(KR_ERR_CONFIG, "%s: %s: not a mapping",
			    p->name, where);
		if ((r = kr_json_check_keys(o, where, keys, req)) != 0 ||
		    (r = kr_json_get_str(o, "part_number", where, 1,
		    &pt->part_number)) != 0 ||
		    (r = kr_json_get_str(o, "model", where, 0,
		    &pt->model)) != 0)
			return kr_errctx(r, "%s", p->name);
		k = json_object_get(o, "identity_kid");
		if (k == NULL)
			(void)snprintf(pt->identity_kid,
			    sizeof(pt->identity_kid), "0");
		else if (json_is_integer(k) && json_integer_value(k) >= 0)
			(void)snprintf(pt->identity_kid,
			    sizeof(pt->identity_kid), "%lld",
			    (long long)json_integer_value(k));
		else if (json_is_string(k) && json_string_length(k) > 0 &&
		    json_string_length(k) < sizeof(pt->identity_kid))
			memcpy(pt->identity_kid, json_string_value(k),
			    json_string_length(k) + 1);
		else
			return kr_errf(KR_ERR_CONFIG, "%s: %s: identity_kid: "
			    "a JWK kid (slot number or handle) is needed",
			    p->name, where);
		for (j = 0; j < i; j++)
			if (strcmp(p->parts[j].part_number,
			    pt->part_number) == 0)
				return kr_errf(KR_ERR_CONFIG, "%s: %s: part "
				    "'%s' listed twice", p->name, where,
				    pt->part_number);
		p->nparts = i + 1;
	}
	return 0;
}

/* A list of strings; each (optionally) must be in `among`. */
static int
str_list(struct kr_policy *p, const json_t *a, const char *where,
    size_t max, const char ***out, size_t *n, int (*valid)(
    const struct kr_policy *, const char *), const char *what)
{
	const char **l;
	size_t i, j;

	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > max)
		return kr_errf(KR_ERR_CONFIG, "%s: %s: a list of 1-%zu names "
		    "is needed", p->name, where, max);
	if ((l = calloc(json_array_size(a), sizeof(*l))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "%s", where);
	*out = l;
	for (i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));

		if (s == NULL || s[0] == '\0')
			return kr_errf(KR_ERR_CONFIG, "%s: %s[%zu]: not a "
			    "name", p->name, where, i);
		if (valid != NULL && !valid(p, s))
			return kr_errf(KR_ERR_CONFIG, "%s: %s[%zu]: '%s' is "
			    "not one of the policy's %s", p->name, where, i, s,
			    what);
		for (j = 0; j < i; j++)
			if (strcmp(l[j], s) == 0)
				return kr_errf(KR_ERR_CONFIG, "%s: %s[%zu]: "
				    "'%s' listed twice", p->name, where, i, s);
		l[i] = s;
		*n = i + 1;
	}
	return 0;
}

static int
is_part(const struct kr_policy *p, const char *s)
{
	return kr_pol_part(p, s) != NULL;
}

static int
is_profile(const struct kr_policy *p, const char *s)
{
	size_t i;

	for (i = 0; i < p->nprofiles; i++)
		if (strcmp(p->profiles[i], s) == 0)
			return 1;
	return 0;
}

static int
valid_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

static int
load_mfrs(struct kr_policy *p, const json_t *a)
{
	static const char *const keys[] = { "id", "name", "quota", "parts",
		"profiles", NULL };
	static const char *const req[] = { "id", "quota", "parts", NULL };
	char where[64], w2[80];
	size_t i, j;
	int r;

	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > KR_POLICY_MAX_MFRS)
		return kr_errf(KR_ERR_CONFIG, "%s: manufacturers: a list of "
		    "1-%d manufacturers is needed", p->name,
		    KR_POLICY_MAX_MFRS);
	if ((p->mfrs = calloc(json_array_size(a), sizeof(*p->mfrs))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "manufacturers");
	for (i = 0; i < json_array_size(a); i++) {
		struct kr_pol_mfr *m = &p->mfrs[i];
		const json_t *o = json_array_get(a, i);

		p->nmfrs = i + 1;
		(void)snprintf(where, sizeof(where), "manufacturers[%zu]", i);
		if (!json_is_object(o))
			return kr_errf(KR_ERR_CONFIG, "%s: %s: not a mapping",
			    p->name, where);
		if ((r = kr_json_check_keys(o, where, keys, req)) != 0 ||
		    (r = kr_json_get_str(o, "id", where, 1, &m->id)) != 0 ||
		    (r = kr_json_get_str(o, "name", where, 0,
		    &m->name)) != 0 ||
		    (r = kr_json_get_int(o, "quota", where, 1, 0,
		    (long long)1 << 40, &m->quota)) != 0)
			return kr_errctx(r, "%s", p->name);
		if (!valid_id(m->id))
			return kr_errf(KR_ERR_CONFIG, "%s: %s: id '%s' must be "
			    "1-64 of [A-Za-z0-9._-]", p->name, where, m->id);
		for (j = 0; j < i; j++)
			if (strcmp(p->mfrs[j].id, m->id) == 0)
				return kr_errf(KR_ERR_CONFIG, "%s: %s: id '%s' "
				    "listed twice", p->name, where, m->id);
		(void)snprintf(w2, sizeof(w2), "%s.parts", where);
		if ((r = str_list(p, json_object_get(o, "parts"), w2,
		    KR_POLICY_MAX_PARTS, &m->parts, &m->nparts, is_part,
		    "parts")) != 0)
			return r;
		(void)snprintf(w2, sizeof(w2), "%s.profiles", where);
		if (json_object_get(o, "profiles") != NULL &&
		    (r = str_list(p, json_object_get(o, "profiles"), w2,
		    KR_POLICY_MAX_PROFILES, &m->profiles, &m->nprofiles,
		    is_profile, "profiles")) != 0)
			return r;
	}
	return 0;
}

static int
load_renewal(struct kr_policy *p, const json_t *o)
{
	static const char *const keys[] = { "allowed", "proof", NULL };
	static const char *const req[] = { "allowed", NULL };
	const json_t *a;
	size_t i;
	int r;

	if (o == NULL)
		return 0;
	if (!json_is_object(o))
		return kr_errf(KR_ERR_CONFIG, "%s: renewal: not a mapping",
		    p->name);
	if ((r = kr_json_check_keys(o, "renewal", keys, req)) != 0 ||
	    (r = kr_json_get_bool(o, "allowed", "renewal", 1,
	    &p->renew_allowed)) != 0)
		return kr_errctx(r, "%s", p->name);
	if ((a = json_object_get(o, "proof")) == NULL) {
		p->renew_current = p->renew_manifest = 1;
		return 0;
	}
	if (!json_is_array(a) || json_array_size(a) == 0)
		return kr_errf(KR_ERR_CONFIG, "%s: renewal.proof: a list of "
		    "current-cert and/or manifest-key is needed", p->name);
	for (i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));

		if (s != NULL && strcmp(s, "current-cert") == 0)
			p->renew_current = 1;
		else if (s != NULL && strcmp(s, "manifest-key") == 0)
			p->renew_manifest = 1;
		else
			return kr_errf(KR_ERR_CONFIG, "%s: renewal.proof[%zu]: "
			    "not current-cert or manifest-key", p->name, i);
	}
	return 0;
}

/* Subject template: known ${VARS} only, CN= present, bounded. */
static int
check_subject(struct kr_policy *p)
{
	static const char *const vars[] = { "${UNIQUEID}", "${uniqueid}",
		"${PART}", "${MODEL}", NULL };
	const char *s = p->subject, *q;
	size_t k;

	if (strlen(s) == 0 || strlen(s) > 256)
		return kr_errf(KR_ERR_CONFIG, "%s: subject: 1-256 characters",
		    p->name);
	if (strncmp(s, "CN=", 3) != 0 && strstr(s, ", CN=") == NULL &&
	    strstr(s, ",CN=") == NULL)
		return kr_errf(KR_ERR_CONFIG, "%s: subject '%s': no CN=",
		    p->name, s);
	for (q = s; (q = strchr(q, '$')) != NULL; q++) {
		for (k = 0; vars[k] != NULL; k++)
			if (strncmp(q, vars[k], strlen(vars[k])) == 0)
				break;
		if (vars[k] == NULL)
			return kr_errf(KR_ERR_CONFIG, "%s: subject '%s': "
			    "unknown variable at '%.16s' (${UNIQUEID}, "
			    "${uniqueid}, ${PART}, ${MODEL})", p->name, s, q);
	}
	return 0;
}

int
kr_policy_parse(const char *name, const char *buf, size_t len,
    const char *basedir, struct kr_policy **out)
{
	struct kr_policy *p = NULL;
	const json_t *v;
	const char *s;
	long long ver;
	int r;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->name = strdup(name)) == NULL ||
	    (basedir != NULL && (p->basedir = strdup(basedir)) == NULL)) {
		r = kr_errf(KR_ERR_ALLOC, "%s", name);
		goto out;
	}
	kr_sha256(buf, len, p->yaml_sha256);
	if ((r = kr_yaml_parse(name, buf, len, &p->doc)) != 0)
		goto out;
	if (!json_is_object(p->doc)) {
		r = kr_errf(KR_ERR_CONFIG, "%s: not a mapping", name);
		goto out;
	}
	if ((r = kr_json_check_keys(p->doc, name, top_keys,
	    top_required)) != 0 ||
	    (r = kr_json_get_int(p->doc, "version", name, 1, 1, 1,
	    &ver)) != 0 ||
	    (r = load_signers(p, json_object_get(p->doc, "signers"))) != 0 ||
	    (r = load_roots(p, json_object_get(p->doc, "device_roots"))) ||
	    (r = load_curves(p, json_object_get(p->doc, "curves"))) != 0 ||
	    (r = load_parts(p, json_object_get(p->doc, "parts"))) != 0 ||
	    (r = str_list(p, json_object_get(p->doc, "profiles"), "profiles",
	    KR_POLICY_MAX_PROFILES, &p->profiles, &p->nprofiles, NULL,
	    NULL)) != 0 ||
	    (r = load_mfrs(p, json_object_get(p->doc, "manufacturers"))) ||
	    (r = load_renewal(p, json_object_get(p->doc, "renewal"))) != 0)
		goto out;
	if ((r = kr_json_get_str(p->doc, "subject", name, 1,
	    &p->subject)) != 0 || (r = check_subject(p)) != 0)
		goto out;
	v = json_object_get(p->doc, "lite_entries");
	if (v != NULL) {
		s = json_string_value(v);
		if (s != NULL && strcmp(s, "allow") == 0)
			p->lite_allowed = 1;
		else if (s == NULL || strcmp(s, "refuse") != 0) {
			r = kr_errf(KR_ERR_CONFIG, "%s: lite_entries: 'refuse' "
			    "or 'allow'", name);
			goto out;
		}
	}
	p->trust.signers = p->signers;
	p->trust.nsigners = p->nsigners;
	p->trust.device_roots = p->roots;
	p->trust.curves = p->curves;
	p->trust.backdate = 365LL * 86400;
	if (json_object_get(p->doc, "manifest_backdate_days") != NULL) {
		long long days;

		if ((r = kr_json_get_int(p->doc, "manifest_backdate_days",
		    name, 1, 0, 3650, &days)) != 0)
			goto out;
		p->trust.backdate = days * 86400;
	}
	*out = p;
	p = NULL;
	r = 0;
out:
	if (r == KR_ERR_CONFIG)
		kr_pol_add_line(name, buf, len);
	if (r != 0 && r != KR_ERR_CONFIG && r != KR_ERR_ALLOC &&
	    r != KR_ERR_TOO_LARGE && r != KR_ERR_SYSTEM &&
	    r != KR_ERR_UNSAFE_MEDIA)
		r = KR_ERR_CONFIG;
	kr_policy_free(p);
	return r;
}

int
kr_policy_load(const char *path, struct kr_policy **out)
{
	uint8_t *buf = NULL;
	char *dup = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = kr_read_file(path, KR_YAML_MAX_BYTES, &buf, &len)) != 0)
		return kr_errctx(r, "policy %s", path);
	if ((dup = strdup(path)) == NULL) {
		free(buf);
		return kr_errf(KR_ERR_ALLOC, "%s", path);
	}
	r = kr_policy_parse(path, (const char *)buf, len, dirname(dup), out);
	free(dup);
	free(buf);
	return r;
}

const char *
kr_policy_file(const struct kr_policy *p, size_t i)
{
	return i < p->nfiles ? p->files[i] : NULL;
}

int
kr_policy_digest(const struct kr_policy *p, uint8_t out[32])
{
	static const char tag[] = "keyroom-policy-digest-v1\n";
	EVP_MD_CTX *ctx;
	size_t i;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return kr_errf(KR_ERR_ALLOC, "policy digest");
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, tag, sizeof(tag) - 1) == 1 &&
	    EVP_DigestUpdate(ctx, p->yaml_sha256, 32) == 1;
	for (i = 0; ok && i < p->nfiles; i++)
		ok = EVP_DigestUpdate(ctx, p->files[i],
		    strlen(p->files[i]) + 1) == 1 &&
		    EVP_DigestUpdate(ctx, p->file_sha256[i], 32) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, out, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return kr_err_ssl("policy digest");
	return 0;
}

const struct kr_mf_trust *
kr_policy_trust(const struct kr_policy *p)
{
	return &p->trust;
}

const struct kr_pol_part *
kr_pol_part(const struct kr_policy *p, const char *part_number)
{
	size_t i;

	for (i = 0; i < p->nparts; i++)
		if (strcmp(p->parts[i].part_number, part_number) == 0)
			return &p->parts[i];
	return NULL;
}

const struct kr_pol_mfr *
kr_pol_mfr(const struct kr_policy *p, const char *id)
{
	size_t i;

	if (id == NULL)
		return NULL;
	for (i = 0; i < p->nmfrs; i++)
		if (strcmp(p->mfrs[i].id, id) == 0)
			return &p->mfrs[i];
	return NULL;
}

const char *
kr_policy_identity_kid(const struct kr_policy *p, const char *part_number)
{
	const struct kr_pol_part *pt = kr_pol_part(p, part_number);

	return pt != NULL ? pt->identity_kid : "0";
}

const char *
kr_policy_profile(const struct kr_policy *p, const char *mfr,
    const char *requested)
{
	const struct kr_pol_mfr *m = kr_pol_mfr(p, mfr);
	const char *const *l;
	size_t i, n;

	if (m == NULL)
		return NULL;
	l = m->nprofiles > 0 ? m->profiles : p->profiles;
	n = m->nprofiles > 0 ? m->nprofiles : p->nprofiles;
	if (requested == NULL)
		return l[0];
	for (i = 0; i < n; i++)
		if (strcmp(l[i], requested) == 0)
			return l[i];
	return NULL;
}

long long
kr_policy_quota(const struct kr_policy *p, const char *mfr)
{
	const struct kr_pol_mfr *m = kr_pol_mfr(p, mfr);

	return m != NULL ? m->quota : -1;
}

int
kr_policy_subject(const struct kr_policy *p, const struct kr_device *d,
    char *out, size_t outlen)
{
	const char *s = p->subject;
	char up[KR_MF_UNIQUEID_MAX + 1];
	size_t o = 0, i, vl;
	const char *val;

	for (i = 0; i < sizeof(up) - 1 && d->unique_id[i] != '\0'; i++)
		up[i] = (char)((d->unique_id[i] >= 'a' &&
		    d->unique_id[i] <= 'z') ? d->unique_id[i] - 32 :
		    d->unique_id[i]);
	up[i] = '\0';
	while (*s != '\0') {
		val = NULL;
		vl = 0;
		if (strncmp(s, "${UNIQUEID}", 11) == 0) {
			val = up;
			vl = 11;
		} else if (strncmp(s, "${uniqueid}", 11) == 0) {
			val = d->unique_id;
			vl = 11;
		} else if (strncmp(s, "${PART}", 7) == 0) {
			val = d->part_number;
			vl = 7;
		} else if (strncmp(s, "${MODEL}", 8) == 0) {
			val = d->model;
			vl = 8;
		}
		if (val != NULL) {
			/*
			 * Values come from the (vendor-signed) manifest:
			 * escape RFC 4514 specials so "M, O=X" stays one
			 * attribute value instead of adding an RDN.
			 */
			for (; *val != '\0'; val++) {
				if (strchr(",\\+\"<>;=", *val) != NULL) {
					if (o + 1 >= outlen)
						goto toolong;
					out[o++] = '\\';
				}
				if (o + 1 >= outlen)
					goto toolong;
				out[o++] = *val;
			}
			s += vl;
			continue;
		}
		if (o + 1 >= outlen)
			goto toolong;
		out[o++] = *s++;
	}
	if (o >= outlen)
		goto toolong;
	out[o] = '\0';
	return 0;
toolong:
	return kr_errf(KR_ERR_TOO_LARGE, "subject for %s longer than %zu",
	    d->unique_id, outlen);
}

/* The CN value of the expanded subject template. */
int
kr_pol_template_cn(const struct kr_policy *p, const struct kr_device *d,
    char *out, size_t outlen)
{
	char subj[KR_POLICY_SUBJECT_MAX];
	const char *c;
	size_t n;
	int r;

	if ((r = kr_policy_subject(p, d, subj, sizeof(subj))) != 0)
		return r;
	if (strncmp(subj, "CN=", 3) == 0)
		c = subj + 3;
	else if ((c = strstr(subj, ",CN=")) != NULL)
		c += 4;
	else if ((c = strstr(subj, ", CN=")) != NULL)
		c += 5;
	else
		return kr_errf(KR_ERR_CONFIG, "subject has no CN");
	/* Up to an unescaped ',', unescaping as the subject parser does. */
	for (n = 0; *c != '\0' && *c != ','; c++) {
		if (*c == '\\' && c[1] != '\0')
			c++;
		if (n + 1 >= outlen)
			return kr_errf(KR_ERR_TOO_LARGE, "CN");
		out[n++] = *c;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return 0;
}

int
kr_policy_lint(const struct kr_policy *p, json_t **out)
{
	json_t *o = NULL, *sa, *ra, *wa, *e;
	char hex[65], nb[32], na[32], subj[256];
	uint8_t dg[32];
	time_t now = time(NULL), tb, ta;
	size_t i, j;
	int r = KR_ERR_ALLOC;
	struct tm tm;

	*out = NULL;
	if ((o = json_object()) == NULL ||
	    json_object_set_new(o, "signers", sa = json_array()) != 0 ||
	    json_object_set_new(o, "device_roots", ra = json_array()) != 0 ||
	    json_object_set_new(o, "warnings", wa = json_array()) != 0)
		goto out;
	if ((r = kr_policy_digest(p, dg)) != 0)
		goto out;
	r = KR_ERR_ALLOC;
	kr_hex(dg, 32, hex);
	if (json_object_set_new(o, "digest", json_string(hex)) != 0)
		goto out;
	for (i = 0; i < p->nsigners; i++) {
		X509 *c = p->signers[i].cert;
		int expired;

		kr_hex(p->signers[i].sha256, 32, hex);
		X509_NAME_oneline(X509_get_subject_name(c), subj,
		    sizeof(subj));
		memset(&tm, 0, sizeof(tm));
		tb = ta = 0;
		if (ASN1_TIME_to_tm(X509_get0_notBefore(c), &tm) == 1)
			tb = timegm(&tm);
		memset(&tm, 0, sizeof(tm));
		if (ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm) == 1)
			ta = timegm(&tm);
		kr_time_rfc3339(tb, nb);
		kr_time_rfc3339(ta, na);
		expired = ta < now;
		e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b}",
		    "source", p->signer_src[i], "subject", subj,
		    "sha256", hex, "not_before", nb, "not_after", na,
		    "expired", expired,
		    "check_validity", !p->signers[i].ignore_validity);
		if (e == NULL || json_array_append_new(sa, e) != 0)
			goto out;
		if (p->signers[i].ignore_validity &&
		    json_array_append_new(wa, json_sprintf("signers[%zu] (%s):"
		    " check_validity is off: entries are accepted whatever "
		    "their provisioningTimestamp (test signers only)", i,
		    p->signer_src[i])) != 0)
			goto out;
		if (!self_signed(c) && json_array_append_new(wa,
		    json_sprintf("signers[%zu] (%s): not self-signed; it is "
		    "trusted only because it is pinned (its issuer is not "
		    "checked)", i, p->signer_src[i])) != 0)
			goto out;
		ERR_clear_error();
		if (X509_check_ca(c) >= 1 && json_array_append_new(wa,
		    json_sprintf("signers[%zu] (%s): is a CA certificate; "
		    "Microchip manifest signers are CA:FALSE", i,
		    p->signer_src[i])) != 0)
			goto out;
	}
	for (i = 0; i < (size_t)sk_X509_num(p->roots); i++) {
		X509 *c = sk_X509_value(p->roots, (int)i);

		X509_NAME_oneline(X509_get_subject_name(c), subj,
		    sizeof(subj));
		if (json_array_append_new(ra, json_pack("{s:s}", "subject",
		    subj)) != 0)
			goto out;
	}
	if (sk_X509_num(p->roots) == 0 && json_array_append_new(wa,
	    json_string("no device_roots: manifest entries carrying x5c "
	    "certificates will be refused")) != 0)
		goto out;
	for (i = 0; i < p->nparts; i++) {
		int used = 0;

		for (j = 0; j < p->nmfrs && !used; j++) {
			size_t k;

			for (k = 0; k < p->mfrs[j].nparts; k++)
				if (strcmp(p->mfrs[j].parts[k],
				    p->parts[i].part_number) == 0)
					used = 1;
		}
		if (!used && json_array_append_new(wa, json_sprintf("part %s "
		    "is allowed but no manufacturer may build it",
		    p->parts[i].part_number)) != 0)
			goto out;
	}
	for (j = 0; j < p->nmfrs; j++)
		if (p->mfrs[j].quota == 0 && json_array_append_new(wa,
		    json_sprintf("manufacturer %s has quota 0",
		    p->mfrs[j].id)) != 0)
			goto out;
	if (p->lite_allowed && json_array_append_new(wa, json_string(
	    "lite_entries: allow: chips whose manifest entry has no key are "
	    "certified on the CSR alone")) != 0)
		goto out;
	if (json_object_set_new(o, "parts", json_integer((json_int_t)
	    p->nparts)) != 0 || json_object_set_new(o, "manufacturers",
	    json_integer((json_int_t)p->nmfrs)) != 0 ||
	    json_object_set_new(o, "profiles", json_integer((json_int_t)
	    p->nprofiles)) != 0 || json_object_set_new(o, "subject",
	    json_string(p->subject)) != 0)
		goto out;
	*out = o;
	o = NULL;
	r = 0;
out:
	json_decref(o);
	if (r != 0)
		return kr_errf(r, "policy lint");
	return 0;
}
