/* test_batch_desc.c - batch.json: one line per case, exact refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "media/media.h"

#define OKBODY "\"manufacturer\":\"cm-1\",\"profile\":\"device\"," \
    "\"expected_count\":3,\"part_numbers\":[\"P-1\",\"P-2\"]"

static const struct {
	const char *json;
	int code;
	const char *detail;	/* substring of the message */
} cases[] = {
	{ "{\"batch_id\":\"lot-1\"," OKBODY "}", 0, "" },
	{ "{\"batch_id\":\"lot.1_a\"," OKBODY ",\"comment\":\"x\"}", 0, "" },
	{ "{\"batch_id\":\"../x\"," OKBODY "}", KR_ERR_FORMAT,
	    "'batch_id' must be" },
	{ "{\"batch_id\":\".hidden\"," OKBODY "}", KR_ERR_FORMAT,
	    "'batch_id' must be" },
	{ "{\"batch_id\":\"-rf\"," OKBODY "}", KR_ERR_FORMAT,
	    "'batch_id' must be" },
	{ "{\"batch_id\":\"a b\"," OKBODY "}", KR_ERR_FORMAT,
	    "'batch_id' must be" },
	{ "{\"batch_id\":\"\"," OKBODY "}", KR_ERR_FORMAT,
	    "'batch_id' must be" },
	{ "{\"batch_id\":\"a\\u0000b\"," OKBODY "}", KR_ERR_FORMAT,
	    "\\u0000 is not allowed" },
	{ "{\"batch_id\":\"g\\u00e9\"," OKBODY "}", KR_ERR_FORMAT,
	    "'batch_id' must be" },
	{ "{\"batch_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
	    OKBODY "}", KR_ERR_FORMAT, "'batch_id' must be" },
	{ "{\"batch_id\":7," OKBODY "}", KR_ERR_FORMAT,
	    "'batch_id' must be a string" },
	{ "{\"batch_id\":\"x\",\"x\":1," OKBODY "}", KR_ERR_FORMAT,
	    "unknown key 'x'" },
	{ "{\"batch_id\":\"x\",\"batch_id\":\"y\"," OKBODY "}", KR_ERR_FORMAT,
	    "duplicate" },
	{ "{" OKBODY "}", KR_ERR_FORMAT, "batch_id" },
	{ "[]", KR_ERR_FORMAT, "not a JSON object" },
	{ "{\"batch_id\":\"x\"," OKBODY "} trailing", KR_ERR_FORMAT,
	    "batch.json:1:" },
	{ "{\"batch_id\":\"x\",\"manufacturer\":\"cm-1\",\"profile\":\"d\","
	    "\"expected_count\":0,\"part_numbers\":[\"P\"]}", KR_ERR_FORMAT,
	    "'expected_count' must be" },
	{ "{\"batch_id\":\"x\",\"manufacturer\":\"cm-1\",\"profile\":\"d\","
	    "\"expected_count\":\"3\",\"part_numbers\":[\"P\"]}", KR_ERR_FORMAT,
	    "'expected_count' must be" },
	{ "{\"batch_id\":\"x\",\"manufacturer\":\"cm-1\",\"profile\":\"d\","
	    "\"expected_count\":1,\"part_numbers\":[]}", KR_ERR_FORMAT,
	    "'part_numbers' must be" },
	{ "{\"batch_id\":\"x\",\"manufacturer\":\"cm-1\",\"profile\":\"d\","
	    "\"expected_count\":1,\"part_numbers\":[\"P\",\"P\"]}",
	    KR_ERR_FORMAT, "duplicate 'P'" },
	{ "{\"batch_id\":\"x\",\"manufacturer\":\"cm-1\",\"profile\":\"d\","
	    "\"expected_count\":1,\"part_numbers\":[\"P/../\"]}",
	    KR_ERR_FORMAT, "part_numbers[0]" },
	{ "{\"batch_id\":\"x\",\"manufacturer\":\"cm/1\",\"profile\":\"d\","
	    "\"expected_count\":1,\"part_numbers\":[\"P\"]}",
	    KR_ERR_FORMAT, "'manufacturer' must be" },
	{ "{\"batch_id\":\"x\"," OKBODY ",\"comment\":5}", KR_ERR_FORMAT,
	    "'comment' must be a string" },
};

static void
test_table(void **s)
{
	struct kr_batch_desc d;
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kr_err_clear();
		r = kr_batch_desc_parse("batch.json",
		    (const uint8_t *)cases[i].json, strlen(cases[i].json), &d);
		if (r != cases[i].code ||
		    strstr(kr_err_detail(), cases[i].detail) == NULL)
			fail_msg("case %zu: got %d '%s', wanted %d '%s'", i, r,
			    kr_err_detail(), cases[i].code, cases[i].detail);
	}
	assert_int_equal(kr_batch_desc_parse("batch.json", (const uint8_t *)
	    cases[0].json, strlen(cases[0].json), &d), 0);
	assert_string_equal(d.id, "lot-1");
	assert_string_equal(d.manufacturer, "cm-1");
	assert_int_equal(d.expected, 3);
	assert_int_equal(d.nparts, 2);
	assert_string_equal(d.parts[1], "P-2");
}

static void
test_paths(void **s)
{
	assert_true(kr_bundle_is_csr("csr/a.csr"));
	assert_true(kr_bundle_is_csr("csr/x/a.der"));
	assert_false(kr_bundle_is_csr("csr/a.csr.sig"));
	assert_false(kr_bundle_is_csr("manifest/a.csr"));
	assert_true(kr_bundle_is_manifest("manifest/m.json"));
	assert_false(kr_bundle_is_manifest("batch.json"));
	assert_false(kr_batch_id_ok(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
