/* test_media_output.c - atomic, never-overwriting batch output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/util.h"
#include "media/media.h"

static char root[64];

static int
setup(void **s)
{
	strcpy(root, "/tmp/kr-out-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int
teardown(void **s)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

static int
exists(const char *rel)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return lstat(p, &st) == 0;
}

static void
test_commit(void **s)
{
	struct kr_out *o = NULL;
	char cmd[600];
	int h;

	assert_int_equal(kr_out_begin(root, "b-1", &o), 0);
	assert_int_equal(kr_out_write(o, "certs/a.pem", "A\n", 2), 0);
	assert_int_equal(kr_out_write(o, "certs/a.pem", "B\n", 2),
	    KR_ERR_EXISTS);
	assert_true((h = kr_out_stream_open(o, "report.json")) >= 0);
	assert_int_equal(kr_out_stream_printf(o, h, "{\"n\":%d}\n", 1), 0);
	assert_int_equal(kr_out_stream_close(o, h), 0);
	assert_true((h = kr_out_stream_open(o, "registration/x.jsonl")) >= 0);
	assert_int_equal(kr_out_stream_write(o, h, "{}\n", 3), 0);
	/* not whole yet */
	assert_false(exists("keyroom-out/b-1"));
	assert_int_equal(kr_out_commit(o), 0);
	kr_out_free(o);
	assert_true(exists("keyroom-out/b-1/certs/a.pem"));
	assert_true(exists("keyroom-out/b-1/SHA256SUMS"));
	snprintf(cmd, sizeof(cmd), "cd %s/keyroom-out/b-1 && sha256sum "
	    "--quiet -c SHA256SUMS && test $(wc -l < SHA256SUMS) = 3", root);
	assert_int_equal(system(cmd), 0);
	/* never again */
	assert_int_equal(kr_out_begin(root, "b-1", &o), KR_ERR_EXISTS);
	assert_null(o);
}

static void
test_abandon_and_stale(void **s)
{
	struct kr_out *o = NULL;
	char cmd[600];

	assert_int_equal(kr_out_begin(root, "b-2", &o), 0);
	assert_int_equal(kr_out_write(o, "certs/a.pem", "A", 1), 0);
	kr_out_free(o);	/* abandoned: temp removed */
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s/keyroom-out)\"",
	    root);
	assert_int_equal(system(cmd), 0);
	/* a stale temp dir from a killed run is removed on the next run */
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/keyroom-out/"
	    ".tmp-b-2-0123456789abcdef/certs && touch %s/keyroom-out/"
	    ".tmp-b-2-0123456789abcdef/certs/x.pem", root, root);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(kr_out_begin(root, "b-2", &o), 0);
	assert_false(exists("keyroom-out/.tmp-b-2-0123456789abcdef"));
	assert_int_equal(kr_out_commit(o), 0);
	kr_out_free(o);
	assert_true(exists("keyroom-out/b-2/SHA256SUMS"));
}

static void
test_symlinked_outdir(void **s)
{
	struct kr_out *o = NULL;
	char p[512];

	snprintf(p, sizeof(p), "%s/keyroom-out", root);
	assert_int_equal(symlink("/tmp", p), 0);
	assert_int_equal(kr_out_begin(root, "b-3", &o), KR_ERR_UNSAFE_MEDIA);
	assert_null(o);
}

static void
test_bad_paths(void **s)
{
	struct kr_out *o = NULL;

	assert_int_equal(kr_out_begin(root, "../x", &o),
	    KR_ERR_INVALID_ARGUMENT);
	assert_int_equal(kr_out_begin(root, "b-4", &o), 0);
	assert_int_equal(kr_out_write(o, "certs/../../x", "A", 1),
	    KR_ERR_INVALID_ARGUMENT);
	assert_int_equal(kr_out_write(o, "nodir/x", "A", 1), KR_ERR_SYSTEM);
	kr_out_free(o);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_commit), T(test_abandon_and_stale),
		T(test_symlinked_outdir), T(test_bad_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
