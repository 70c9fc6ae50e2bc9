/* test_yaml.c - strict YAML loader. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/yaml.h"

static json_t *
parse(const char *s, int *r)
{
	json_t *j = NULL;

	*r = kr_yaml_parse("t.yaml", s, strlen(s), &j);
	return j;
}

static void
test_types(void **st)
{
	int r;
	json_t *j = parse("a: 1\nb: \"1\"\nc: true\nd: [x, 2]\ne:\n  f: ~\n"
	    "g: 0755\n", &r);

	assert_int_equal(r, 0);
	assert_true(json_is_integer(json_object_get(j, "a")));
	assert_true(json_is_string(json_object_get(j, "b")));
	assert_true(json_is_true(json_object_get(j, "c")));
	assert_int_equal(json_array_size(json_object_get(j, "d")), 2);
	assert_true(json_is_null(json_object_get(json_object_get(j, "e"),
	    "f")));
	/* leading zero stays a string: no octal surprises */
	assert_true(json_is_string(json_object_get(j, "g")));
	json_decref(j);
}

static void
test_refusals(void **st)
{
	int r;

	assert_null(parse("a: 1\na: 2\n", &r));
	assert_int_equal(r, KR_ERR_CONFIG);
	assert_non_null(strstr(kr_err_detail(), "t.yaml:2:1: duplicate key"));
	assert_null(parse("a: &x 1\nb: *x\n", &r));
	assert_int_equal(r, KR_ERR_CONFIG);
	assert_null(parse("a: !!python/object 1\n", &r));
	assert_int_equal(r, KR_ERR_CONFIG);
	assert_null(parse("a: 1\n---\nb: 2\n", &r));
	assert_int_equal(r, KR_ERR_CONFIG);
	assert_null(parse("a: [1, 2\n", &r));
	assert_int_equal(r, KR_ERR_CONFIG);
	assert_null(parse("", &r));
	assert_int_equal(r, KR_ERR_CONFIG);
}

static void
test_check_keys(void **st)
{
	static const char *const allowed[] = { "name", "size", NULL };
	static const char *const required[] = { "name", NULL };
	int r;
	json_t *j = parse("name: x\nsise: 3\n", &r);

	assert_int_equal(kr_json_check_keys(j, "t.yaml", allowed, required),
	    KR_ERR_CONFIG);
	assert_string_equal(kr_err_detail(), "t.yaml: unknown key 'sise'");
	json_decref(j);
	j = parse("size: 3\n", &r);
	assert_int_equal(kr_json_check_keys(j, "t.yaml", allowed, required),
	    KR_ERR_CONFIG);
	assert_string_equal(kr_err_detail(), "t.yaml: missing key 'name'");
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_check_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
