/*
 * test_ceremony_script.c - ceremony script parser strictness
 * (ceremony/script.c): data-driven, one line per case with the exact
 * error it must give; the shipped scripts parse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ceremony/script.h"
#include "lib/util.h"

#define HEAD "ceremony: t\npurpose: test\n" \
    "quorums:\n  root: {m: 2, n: 3, custodians: [a, b, c]}\n"

static const struct {
	const char *yaml;
	const char *err;	/* NULL: must parse */
} cases[] = {
	{ HEAD "steps:\n  - do: split-pin\n    token: root\n", NULL },
	{ HEAD "steps:\n  - do: note\n    say: hello\n", NULL },
	{ HEAD "witnesses: [w1, w2]\nsteps:\n  - do: checkpoint\n", NULL },
	{ "ceremony: t\npurpose: p\nquorums:\n  root: {out_of_band: true}\n"
	  "steps:\n  - do: unlock\n    token: root\n", NULL },
	{ HEAD "steps:\n  - do: reshare\n    token: root\n    m: 3\n    n: 4\n"
	  "    custodians: [a, b, c, d]\n", NULL },
	{ HEAD "step:\n  - do: checkpoint\n", "unknown key 'step'" },
	{ HEAD "steps:\n  - do: checkpoint\n", NULL },
	{ HEAD "steps:\n  - do: chekpoint\n",
	  "step 1: unknown step type 'chekpoint'" },
	{ HEAD "steps:\n  - do: split-pin\n    tokn: root\n",
	  "step 1 (split-pin): unknown key 'tokn'" },
	{ HEAD "steps:\n  - do: split-pin\n",
	  "step 1 (split-pin): missing key 'token'" },
	{ HEAD "steps:\n  - do: split-pin\n    token: issuing\n",
	  "token 'issuing' has no quorum" },
	{ HEAD "steps:\n  - do: split-pin\n    token: audit\n",
	  "token must be one of: root, issuing" },
	{ HEAD "steps:\n  - do: generate-key\n    token: root\n"
	  "    algorithm: p521\n",
	  "algorithm must be one of: p256, p384, ed25519, rsa3072" },
	{ HEAD "steps:\n  - do: revoke\n    serial: xyz\n",
	  "serial must be 1..40 hex digits" },
	{ HEAD "steps:\n  - do: issue-crl\n    issuer: root\n    next_days: 0\n",
	  "next_days must be 1..3660" },
	{ HEAD "steps:\n  - do: reshare\n    token: root\n    m: 3\n    n: 2\n"
	  "    custodians: [a, b]\n", "3-of-2 with 2 custodians" },
	{ HEAD "steps:\n  - do: reshare\n    token: root\n    m: 2\n    n: 3\n"
	  "    custodians: [a, b]\n", "2-of-3 with 2 custodians" },
	{ HEAD "steps: []\n", "steps must be a list of 1..64 steps" },
	{ HEAD "steps:\n  - checkpoint\n", "step 1: must be a mapping" },
	{ "ceremony: t\npurpose: p\nquorums:\n  root: {m: 2, n: 3, "
	  "custodians: [a, b]}\nsteps:\n  - do: checkpoint\n",
	  "2-of-3 with 2 custodians" },
	{ "ceremony: t\npurpose: p\nquorums:\n  root: {m: 2, n: 2, "
	  "custodians: [a, a]}\nsteps:\n  - do: checkpoint\n",
	  "custodians: 'a' listed twice" },
	{ "ceremony: t\npurpose: p\nquorums:\n  root: {m: 1, n: 1, "
	  "custodians: [a], extra: 1}\nsteps:\n  - do: checkpoint\n",
	  "quorums.root: unknown key 'extra'" },
	{ "ceremony: t\npurpose: p\nquorums:\n  rooot: {m: 1, n: 1, "
	  "custodians: [a]}\nsteps:\n  - do: checkpoint\n",
	  "quorums.rooot: unknown token role" },
	{ "ceremony: t\npurpose: p\nquorums:\n  root: {out_of_band: true, "
	  "m: 1}\nsteps:\n  - do: checkpoint\n", "out_of_band takes no m" },
	{ "ceremony: Bad_Id\npurpose: p\nsteps:\n  - do: checkpoint\n",
	  "ceremony id 'Bad_Id' must be" },
	{ "ceremony: t\nsteps:\n  - do: checkpoint\n",
	  "missing key 'purpose'" },
	{ HEAD "steps:\n  - do: checkpoint\n  - do: checkpoint\n    do: note\n",
	  "duplicate key" },
	{ "- a\n- b\n", "a ceremony script is a mapping" },
	{ HEAD "steps:\n  - do: init-tokens\n    tokens: [root]\n"
	  "  - do: split-pin\n    token: root\n", NULL },
	{ HEAD "steps:\n  - do: init-tokens\n    tokens: [root]\n",
	  "token 'root' needs a later split-pin step" },
	{ HEAD "steps:\n  - do: split-pin\n    token: root\n"
	  "  - do: init-tokens\n    tokens: [root]\n",
	  "token 'root' needs a later split-pin step" },
};

static void
test_cases(void **state)
{
	struct kr_script *s = NULL;
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = kr_script_parse("t.yaml", (const uint8_t *)cases[i].yaml,
		    strlen(cases[i].yaml), &s);
		if (cases[i].err == NULL) {
			if (r != 0)
				fail_msg("case %zu: %s", i, kr_err_detail());
			kr_script_free(s);
			s = NULL;
			continue;
		}
		if (r != KR_ERR_CONFIG || strstr(kr_err_detail(),
		    cases[i].err) == NULL)
			fail_msg("case %zu: got %d '%s', want '%s'", i, r,
			    kr_err_detail(), cases[i].err);
		assert_null(s);
	}
}

static void
test_fields_and_hash(void **state)
{
	static const char y[] = HEAD "witnesses: [w1]\nsteps:\n"
	    "  - do: split-pin\n    say: read this\n    token: root\n"
	    "  - do: generate-key\n    token: root\n    algorithm: p384\n";
	struct kr_script *s = NULL;
	const struct kr_script_quorum *q;
	uint8_t h[32];

	assert_int_equal(kr_script_parse("t.yaml", (const uint8_t *)y,
	    strlen(y), &s), 0);
	assert_string_equal(s->id, "t");
	assert_string_equal(s->purpose, "test");
	assert_int_equal(s->nstep, 2);
	assert_int_equal(s->step[0].def->type, KR_STEP_SPLIT_PIN);
	assert_string_equal(s->step[0].say, "read this");
	assert_null(s->step[1].say);
	assert_string_equal(kr_step_str(&s->step[1], "algorithm", "x"),
	    "p384");
	assert_string_equal(kr_step_str(&s->step[1], "nope", "dflt"), "dflt");
	assert_non_null(q = kr_script_quorum_find(s, "root"));
	assert_int_equal(q->m, 2);
	assert_int_equal(q->n, 3);
	assert_string_equal(q->custodians[2], "c");
	assert_null(kr_script_quorum_find(s, "issuing"));
	assert_int_equal(s->nwitness, 1);
	kr_sha256(y, strlen(y), h);
	assert_memory_equal(h, s->sha256, 32);
	kr_script_free(s);
}

static void
test_table(void **state)
{
	size_t i;

	for (i = 0; i < KR_STEP__COUNT; i++) {
		assert_int_equal(kr_step_types[i].type, (int)i);
		assert_ptr_equal(kr_step_type_find(kr_step_types[i].name),
		    &kr_step_types[i]);
	}
	assert_null(kr_step_type_find("sudo"));
}

/* The scripts we ship parse (run from the repository top). */
static void
test_shipped_scripts(void **state)
{
	static const char *const names[] = { "genesis", "intermediate",
	    "revoke", "rotation", "reshare-root", "install-policy" };
	struct kr_script *s = NULL;
	char path[256];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "ceremony/scripts/%s.yaml",
		    names[i]);
		if (kr_script_load(path, &s) != 0)
			fail_msg("%s: %s", path, kr_err_detail());
		kr_script_free(s);
		s = NULL;
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_fields_and_hash),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_shipped_scripts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
