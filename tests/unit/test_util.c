/* test_util.c - unit tests for lib/ (errors, files, hex, secrets). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "lib/err.h"
#include "lib/util.h"

static char tmpdir[] = "/tmp/kr-util-XXXXXX";

static void
test_hex_roundtrip(void **s)
{
	uint8_t in[4] = { 0x00, 0x9f, 0xa0, 0xff }, back[4];
	char hex[9];

	kr_hex(in, 4, hex);
	assert_string_equal(hex, "009fa0ff");
	assert_int_equal(kr_unhex("009FA0ff", back, 4), 0);
	assert_memory_equal(in, back, 4);
	assert_int_equal(kr_unhex("009fa0f", back, 4), KR_ERR_FORMAT);
	assert_int_equal(kr_unhex("009fa0fg", back, 4), KR_ERR_FORMAT);
}

static void
test_write_new_never_overwrites(void **s)
{
	char path[256];
	uint8_t *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/a", tmpdir);
	assert_int_equal(kr_write_new_file(path, "one", 3, 0600), 0);
	assert_int_equal(kr_write_new_file(path, "two", 3, 0600),
	    KR_ERR_EXISTS);
	assert_int_equal(kr_read_file(path, 100, &buf, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "one", 3);
	free(buf);
	assert_int_equal(kr_read_file(path, 2, &buf, &len), KR_ERR_TOO_LARGE);
	assert_null(buf);
}

static void
test_read_refuses_symlink_and_dir(void **s)
{
	char path[256], link[256];
	uint8_t *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/a", tmpdir);
	snprintf(link, sizeof(link), "%s/l", tmpdir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(kr_read_file(link, 100, &buf, &len),
	    KR_ERR_UNSAFE_MEDIA);
	assert_non_null(strstr(kr_err_detail(), "symbolic link"));
	assert_int_equal(kr_read_file(tmpdir, 100, &buf, &len),
	    KR_ERR_UNSAFE_MEDIA);
}

static void
test_snprintf_truncation(void **s)
{
	char b[4];

	assert_int_equal(kr_snprintf(b, sizeof(b), "%s", "abc"), 0);
	assert_int_equal(kr_snprintf(b, sizeof(b), "%s", "abcd"),
	    KR_ERR_TOO_LARGE);
}

static void
test_secret_from_env(void **s)
{
	char *sec;
	size_t len;

	setenv("KR_TEST_SECRET", "hunter2", 1);
	assert_int_equal(kr_read_secret("env:KR_TEST_SECRET", "pin", &sec,
	    &len, 64), 0);
	assert_int_equal(len, 7);
	assert_string_equal(sec, "hunter2");
	kr_secure_free(sec, 64);
	assert_int_equal(kr_read_secret("bogus:x", "pin", &sec, &len, 64),
	    KR_ERR_INVALID_ARGUMENT);
}

static void
test_error_context(void **s)
{
	assert_int_equal(kr_errf(KR_ERR_FORMAT, "bad tag"), KR_ERR_FORMAT);
	assert_int_equal(kr_errctx(KR_ERR_FORMAT, "csr/0001.csr"),
	    KR_ERR_FORMAT);
	assert_string_equal(kr_err_detail(), "csr/0001.csr: bad tag");
	assert_string_equal(kr_strerror(KR_ERR_ROLLBACK),
	    "rollback/truncation");
	assert_int_equal(kr_exit_code(KR_ERR_TAMPERED), KR_EXIT_VERIFY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_roundtrip),
		cmocka_unit_test(test_write_new_never_overwrites),
		cmocka_unit_test(test_read_refuses_symlink_and_dir),
		cmocka_unit_test(test_snprintf_truncation),
		cmocka_unit_test(test_secret_from_env),
		cmocka_unit_test(test_error_context),
	};
	int r;

	if (mkdtemp(tmpdir) == NULL)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	char a[300];
	snprintf(a, sizeof(a), "%s/a", tmpdir); unlink(a);
	snprintf(a, sizeof(a), "%s/l", tmpdir); unlink(a);
	rmdir(tmpdir);
	return r;
}
