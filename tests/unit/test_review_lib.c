/*
 * test_review_lib.c - defects found in review of lib/ (shared helpers):
 * each case is input the strict readers used to accept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/cli.h"
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

/*
 * Defect: under --json a failure whose detail held a split UTF-8
 * character (a hostile name cut by "%.40s") printed no JSON at all:
 * json_pack refused the string and scripts got an empty stdout.
 */
static void
test_cli_fail_json_utf8(void **state)
{
	struct kr_cli cli;
	char path[] = "/tmp/kr-review-cli.XXXXXX", buf[512];
	json_t *j;
	json_error_t je;
	FILE *f;
	int fd, saved;
	size_t n;

	(void)state;
	memset(&cli, 0, sizeof(cli));
	cli.json = 1;
	assert_true((fd = mkstemp(path)) >= 0);
	fflush(stdout);
	assert_true((saved = dup(STDOUT_FILENO)) >= 0);
	assert_true(dup2(fd, STDOUT_FILENO) >= 0);
	(void)kr_errf(KR_ERR_FORMAT, "csr/caf\xc3: bad");
	assert_int_equal(kr_cli_fail(&cli, KR_ERR_FORMAT),
	    kr_exit_code(KR_ERR_FORMAT));
	fflush(stdout);
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	close(fd);
	assert_non_null(f = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
	if ((j = json_loads(buf, 0, &je)) == NULL)
		fail_msg("no JSON on stdout: '%s'", buf);
	assert_string_equal(json_string_value(json_object_get(j, "detail")),
	    "csr/caf?: bad");
	assert_int_equal(json_integer_value(json_object_get(j, "code")),
	    KR_ERR_FORMAT);
	json_decref(j);
}

/* The one strict base64 decoder (folded from audit/ and media/). */
static void
test_b64_strict(void **state)
{
	static const struct {
		const char *in;
		int url, ok;
		size_t n;
	} c[] = {
		{ "", 0, 1, 0 }, { "", 1, 1, 0 },
		{ "AAAA", 0, 1, 3 }, { "AA==", 0, 1, 1 }, { "AAA=", 0, 1, 2 },
		{ "AB==", 0, 0, 0 },		/* unused bits set */
		{ "AA", 0, 0, 0 },		/* standard: unpadded */
		{ "A===", 0, 0, 0 }, { "AA=A", 0, 0, 0 }, { "A", 1, 0, 0 },
		{ " AAA", 0, 0, 0 }, { "AAA\n", 0, 0, 0 },
		{ "-_8", 1, 1, 2 }, { "-_8=", 1, 0, 0 }, { "+/8=", 1, 0, 0 },
		{ "-_8=", 0, 0, 0 }, { "AB", 1, 0, 0 }, { "AA", 1, 1, 1 },
	};
	uint8_t *out;
	size_t i, n;
	int r;

	(void)state;
	for (i = 0; i < KR_ARRAY_SIZE(c); i++) {
		r = kr_b64_decode_alloc(c[i].in, strlen(c[i].in), c[i].url,
		    &out, &n);
		if (c[i].ok) {
			if (r != 0 || n != c[i].n)
				fail_msg("'%s' (url %d): r=%d n=%zu", c[i].in,
				    c[i].url, r, n);
			free(out);
		} else {
			if (r != KR_ERR_FORMAT)
				fail_msg("'%s' (url %d) accepted", c[i].in,
				    c[i].url);
			assert_null(out);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_nul_in_value),
		cmocka_unit_test(test_utf8_sanitize),
		cmocka_unit_test(test_cli_fail_json_utf8),
		cmocka_unit_test(test_b64_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
