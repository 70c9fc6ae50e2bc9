/*
 * test_review_lib.c - defects found in review of lib/ (shared helpers):
 * each case is input the strict readers used to accept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/util.h"
#include "lib/yaml.h"

/*
 * Defect: a quoted YAML scalar with "\0" became a jansson string with an
 * embedded NUL, which every C-string reader then truncated: the file
 * said one thing, keyroom used another.
 */
static void
test_yaml_nul_in_value(void **state)
{
	static const char *bad[] = {
		"file: \"root.pem\\0.ignored\"\n",
		"list: [\"a\\0b\"]\n",
		"'k': 'v'\nx: \"\\0\"\n",
	};
	json_t *j = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < KR_ARRAY_SIZE(bad); i++) {
		if (kr_yaml_parse("t.yaml", bad[i], strlen(bad[i]), &j) !=
		    KR_ERR_CONFIG)
			fail_msg("value with NUL accepted: %s", bad[i]);
		assert_null(j);
		assert_non_null(strstr(kr_err_detail(), "NUL"));
	}
	/* Escapes that are not NUL still work. */
	assert_int_equal(kr_yaml_parse("t.yaml", "a: \"x\\ty\"\n",
	    strlen("a: \"x\\ty\"\n"), &j), 0);
	assert_string_equal(json_string_value(json_object_get(j, "a")),
	    "x\ty");
	json_decref(j);
}

/* The shared UTF-8 helpers (manifest messages, audit values). */
static void
test_utf8_sanitize(void **state)
{
	static const struct {
		const char *in, *out;
	} c[] = {
		{ "plain", "plain" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
		{ "cut \xc3", "cut ?" },
		{ "mid \xe2\x82, x", "mid ??, x" },
		{ "overlong \xc0\xaf", "overlong ??" },
		{ "surrogate \xed\xa0\x80", "surrogate ???" },
		{ "tab\tnl\n\x7f", "tab?nl??" },
		{ "\xf4\x90\x80\x80", "????" },
		{ "\xf0\x9f\x94\x91", "\xf0\x9f\x94\x91" },
	};
	char buf[64];
	uint32_t cp;
	size_t i;

	(void)state;
	for (i = 0; i < KR_ARRAY_SIZE(c); i++) {
		snprintf(buf, sizeof(buf), "%s", c[i].in);
		kr_utf8_sanitize(buf);
		assert_string_equal(buf, c[i].out);
	}
	assert_int_equal(kr_utf8_next("\xe2\x82\xac", 3, &cp), 3);
	assert_int_equal(cp, 0x20ac);
	assert_int_equal(kr_utf8_next("\xe2\x82\xac", 2, &cp), 0);
	assert_int_equal(kr_utf8_next("", 0, &cp), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_nul_in_value),
		cmocka_unit_test(test_utf8_sanitize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
