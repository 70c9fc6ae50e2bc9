/*
 * yaml.h - strict YAML loading into a jansson tree, and strict key checks.
 *
 * Configuration, policy and ceremony files are YAML, parsed by libyaml and
 * turned into json_t (mappings -> objects, sequences -> arrays, scalars ->
 * strings; plain scalars that look like integers or true/false become
 * integers / booleans; "null"/"~"/empty plain become null). Anchors,
 * aliases, tags other than the core ones, multiple documents and duplicate
 * keys are refused, so what a reviewer reads is what keyroom sees.
 */
#ifndef KR_YAML_H
#define KR_YAML_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"

/* Limits for configuration-sized input. */
#define KR_YAML_MAX_BYTES (1024 * 1024)
#define KR_YAML_MAX_DEPTH 32

/*
 * Parse buf[0..len) (one YAML document). `name` is used in messages
 * ("policy.yaml:12:3: duplicate key 'signers'"). *out is a new reference.
 * Errors: KR_ERR_CONFIG with line:column in the detail, KR_ERR_TOO_LARGE.
 */
int kr_yaml_parse(const char *name, const char *buf, size_t len,
    json_t **out) KR_WUR;

/* Read the file (bounded, O_NOFOLLOW) and parse it. */
int kr_yaml_load(const char *path, json_t **out) KR_WUR;

/*
 * Strict object check: every key of obj must appear in the NULL-terminated
 * `allowed` list, and every key in `required` (may be NULL) must be
 * present. `where` names the object in messages ("policy.yaml: signers[2]").
 * KR_ERR_CONFIG "policy.yaml: signers[2]: unknown key 'pem_fle'".
 */
int kr_json_check_keys(const json_t *obj, const char *where,
    const char *const *allowed, const char *const *required) KR_WUR;

/*
 * Typed getters with a path for messages. A missing optional key leaves
 * *out unchanged and returns 0; a present key of the wrong type is
 * KR_ERR_CONFIG.
 */
int kr_json_get_str(const json_t *obj, const char *key, const char *where,
    int required, const char **out) KR_WUR;
int kr_json_get_int(const json_t *obj, const char *key, const char *where,
    int required, long long min, long long max, long long *out) KR_WUR;
int kr_json_get_bool(const json_t *obj, const char *key, const char *where,
    int required, int *out) KR_WUR;

#endif
