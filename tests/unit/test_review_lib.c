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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_nul_in_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
