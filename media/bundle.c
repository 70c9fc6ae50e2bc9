/*
 * bundle.c - the batch bundle of DESIGN.md 5.2 read from staging:
 * batch.json (strict), which files are CSRs / manifests, the subject CN.
 * CSR parsing and proof of possession are ca/ca.h kr_csr_parse().
 */
#include <ctype.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "lib/util.h"
#include "lib/yaml.h"
#include "media/media.h"

int
kr_batch_id_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == 0 || *s == '.' || *s == '-')
		return 0;
	for (; *s != 0; s++, n++)
		if (!(isascii((unsigned char)*s) &&
		    (isalnum((unsigned char)*s) || *s == '.' || *s == '_' ||
		    *s == '-')))
			return 0;
	return n <= KR_MEDIA_MAX_ID;
}

static int
has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcmp(s + a - b, suf) == 0;
}

int
kr_bundle_is_csr(const char *path)
{
	return strncmp(path, "csr/", 4) == 0 && (has_suffix(path, ".csr") ||
	    has_suffix(path, ".pem") || has_suffix(path, ".der"));
}

int
kr_bundle_is_manifest(const char *path)
{
	return strncmp(path, "manifest/", 9) == 0 &&
	    has_suffix(path, ".json");
}

static int
get_id(const json_t *o, const char *key, const char *name, char *out)
{
	const json_t *v = json_object_get(o, key);
	const char *s;

	if (!json_is_string(v))
		return kr_errf(KR_ERR_FORMAT, "%s: '%s' must be a string",
		    name, key);
	s = json_string_value(v);
	if (!kr_batch_id_ok(s) || strlen(s) != json_string_length(v))
		return kr_errf(KR_ERR_FORMAT, "%s: '%s' must be 1..%d of "
		    "[A-Za-z0-9._-], not starting with '.' or '-'", name, key,
		    KR_MEDIA_MAX_ID);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int
kr_batch_desc_parse(const char *name, const uint8_t *buf, size_t len,
    struct kr_batch_desc *out)
{
	static const char *const allowed[] = { "batch_id", "manufacturer",
	    "profile", "expected_count", "part_numbers", "comment", NULL };
	static const char *const required[] = { "batch_id", "manufacturer",
	    "profile", "expected_count", "part_numbers", NULL };
	json_t *root = NULL, *v;
	json_error_t jerr;
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > KR_MEDIA_MAX_BATCH_JSON)
		return kr_errf(KR_ERR_TOO_LARGE, "%s: over %u bytes", name,
		    KR_MEDIA_MAX_BATCH_JSON);
	if ((root = json_loadb((const char *)buf, len,
	    JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		r = kr_errf(KR_ERR_FORMAT, "%s:%d:%d: %s", name, jerr.line,
		    jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		r = kr_errf(KR_ERR_FORMAT, "%s: not a JSON object", name);
		goto out;
	}
	if (kr_json_check_keys(root, name, allowed, required) != 0) {
		r = KR_ERR_FORMAT;	/* detail set by the check */
		goto out;
	}
	if ((r = get_id(root, "batch_id", name, out->id)) != 0 ||
	    (r = get_id(root, "manufacturer", name, out->manufacturer)) != 0 ||
	    (r = get_id(root, "profile", name, out->profile)) != 0)
		goto out;
	v = json_object_get(root, "comment");
	if (v != NULL && !json_is_string(v)) {
		r = kr_errf(KR_ERR_FORMAT, "%s: 'comment' must be a string",
		    name);
		goto out;
	}
	v = json_object_get(root, "expected_count");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > KR_MEDIA_MAX_FILES) {
		r = kr_errf(KR_ERR_FORMAT, "%s: 'expected_count' must be an "
		    "integer 1..%d", name, KR_MEDIA_MAX_FILES);
		goto out;
	}
	out->expected = json_integer_value(v);
	v = json_object_get(root, "part_numbers");
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > KR_MEDIA_MAX_PARTS) {
		r = kr_errf(KR_ERR_FORMAT, "%s: 'part_numbers' must be an "
		    "array of 1..%d strings", name, KR_MEDIA_MAX_PARTS);
		goto out;
	}
	for (i = 0; i < json_array_size(v); i++) {
		const json_t *p = json_array_get(v, i);
		const char *s = json_string_value(p);
		size_t j;

		if (!json_is_string(p) || !kr_batch_id_ok(s) ||
		    strlen(s) != json_string_length(p)) {
			r = kr_errf(KR_ERR_FORMAT, "%s: part_numbers[%zu]: "
			    "must be 1..%d of [A-Za-z0-9._-]", name, i,
			    KR_MEDIA_MAX_ID);
			goto out;
		}
		for (j = 0; j < i; j++)
			if (strcmp(out->parts[j], s) == 0) {
				r = kr_errf(KR_ERR_FORMAT, "%s: part_numbers"
				    "[%zu]: duplicate '%s'", name, i, s);
				goto out;
			}
		memcpy(out->parts[i], s, strlen(s) + 1);
		out->nparts = i + 1;
	}
	r = 0;
 out:
	json_decref(root);
	return r;
}

int
kr_bundle_csr_cn(X509_REQ *req, char *out, size_t outlen)
{
	const X509_NAME *nm = X509_REQ_get_subject_name(req);
	const X509_NAME_ENTRY *e;
	unsigned char *u = NULL;
	int i, len, r;

	out[0] = 0;
	if (nm == NULL)
		return 0;
	if ((i = X509_NAME_get_index_by_NID(nm, NID_commonName, -1)) < 0)
		return 0;
	if (X509_NAME_get_index_by_NID(nm, NID_commonName, i) >= 0)
		return kr_errf(KR_ERR_FORMAT, "more than one subject CN");
	e = X509_NAME_get_entry(nm, i);
	if ((len = ASN1_STRING_to_UTF8(&u,
	    X509_NAME_ENTRY_get_data(e))) < 0) {
		ERR_clear_error();
		return kr_errf(KR_ERR_FORMAT, "subject CN not decodable");
	}
	if ((size_t)len >= outlen || memchr(u, 0, (size_t)len) != NULL) {
		r = kr_errf(KR_ERR_FORMAT, "subject CN too long or has NUL");
		goto out;
	}
	memcpy(out, u, (size_t)len);
	out[len] = 0;
	r = 0;
 out:
	OPENSSL_free(u);
	return r;
}
