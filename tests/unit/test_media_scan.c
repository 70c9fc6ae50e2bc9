/* test_media_scan.c - hostile-media intake: every refusal of scan.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/util.h"
#include "media/media.h"

static char root[64];

static void
put(const char *rel, const char *content)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_non_null(f = fopen(p, "w"));
	fputs(content, f);
	fclose(f);
}

static void
mk(const char *rel)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static int
setup(void **s)
{
	strcpy(root, "/tmp/kr-scan-XXXXXX");
	assert_non_null(mkdtemp(root));
	put("batch.json", "{}");
	mk("csr");
	mk("manifest");
	put("csr/a.csr", "AAAA");
	put("csr/b.pem", "BB");
	put("manifest/m.json", "[]");
	return 0;
}

static int
teardown(void **s)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* Stage and expect code and a detail containing `want`. */
static void
expect(int code, const char *want, const struct kr_media_limits *lim)
{
	struct kr_media *m = NULL;
	int r = kr_media_stage(root, NULL, lim, &m);

	if (r != code || strstr(kr_err_detail(), want) == NULL)
		fail_msg("got %d '%s', wanted %d '%s'", r, kr_err_detail(),
		    code, want);
	assert_null(m);
}

static void
test_good(void **s)
{
	struct kr_media *m = NULL;
	uint8_t *b = NULL;
	size_t len;
	long i;

	mk("keyroom-out");
	put("keyroom-out/ignored", "x");
	assert_int_equal(kr_media_stage(root, "/tmp", NULL, &m), 0);
	assert_int_equal(kr_media_count(m), 4);
	assert_string_equal(kr_media_file(m, 0)->path, "batch.json");
	assert_string_equal(kr_media_file(m, 1)->path, "csr/a.csr");
	assert_int_equal(kr_media_total(m), 2 + 4 + 2 + 2);
	i = kr_media_find(m, "csr/b.pem");
	assert_true(i >= 0);
	assert_int_equal(kr_media_read(m, (size_t)i, 100, &b, &len), 0);
	assert_int_equal(len, 2);
	assert_string_equal((char *)b, "BB");
	free(b);
	assert_int_equal(kr_media_read(m, (size_t)i, 1, &b, &len),
	    KR_ERR_TOO_LARGE);
	assert_int_equal(kr_media_find(m, "nope"), -1);
	kr_media_free(m);
}

static void
test_symlink_file(void **s)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/csr/c.csr", root);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	expect(KR_ERR_UNSAFE_MEDIA, "csr/c.csr: symlink", NULL);
}

static void
test_symlink_dir(void **s)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/csr/sub", root);
	assert_int_equal(symlink("/etc", p), 0);
	expect(KR_ERR_UNSAFE_MEDIA, "csr/sub: symlink", NULL);
}

static void
test_symlink_outdir(void **s)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/keyroom-out", root);
	assert_int_equal(symlink("/tmp", p), 0);
	expect(KR_ERR_UNSAFE_MEDIA, "keyroom-out: symlink", NULL);
}

static void
test_fifo(void **s)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/csr/f.csr", root);
	assert_int_equal(mkfifo(p, 0644), 0);
	expect(KR_ERR_UNSAFE_MEDIA, "csr/f.csr: FIFO", NULL);
}

static void
test_socket(void **s)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/csr/s.csr", root);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	expect(KR_ERR_UNSAFE_MEDIA, "csr/s.csr: socket", NULL);
}

static void
test_device(void **s)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/csr/d.csr", root);
	if (mknod(p, S_IFCHR | 0600, makedev(1, 3)) != 0)
		skip();	/* needs CAP_MKNOD */
	expect(KR_ERR_UNSAFE_MEDIA, "csr/d.csr: device node", NULL);
}

static void
test_hardlink(void **s)
{
	char a[512], b[512];

	snprintf(a, sizeof(a), "%s/csr/a.csr", root);
	snprintf(b, sizeof(b), "%s/csr/h.csr", root);
	assert_int_equal(link(a, b), 0);
	expect(KR_ERR_UNSAFE_MEDIA, "csr/a.csr: hard link", NULL);
}

static void
test_non_utf8(void **s)
{
	put("csr/\xff\xfe.csr", "x");
	expect(KR_ERR_UNSAFE_MEDIA, "csr/<entry>: name is not valid UTF-8",
	    NULL);
}

static void
test_overlong_utf8(void **s)
{
	put("csr/\xc0\xaf.csr", "x");	/* overlong '/' */
	expect(KR_ERR_UNSAFE_MEDIA, "name is not valid UTF-8", NULL);
}

static void
test_control_char(void **s)
{
	put("csr/a\nb.csr", "x");
	expect(KR_ERR_UNSAFE_MEDIA, "control character in name", NULL);
}

static void
test_long_name(void **s)
{
	char n[200];

	memset(n, 'a', sizeof(n));
	memcpy(n, "csr/", 4);
	strcpy(n + 150, ".csr");
	put(n, "x");
	expect(KR_ERR_UNSAFE_MEDIA, "csr/<entry>: name too long", NULL);
}

static void
test_utf8_name_ok(void **s)
{
	struct kr_media *m = NULL;

	put("csr/g\xc3\xa9r\xc3\xa4t.csr", "x");
	assert_int_equal(kr_media_stage(root, NULL, NULL, &m), 0);
	kr_media_free(m);
}

static void
test_too_deep(void **s)
{
	mk("csr/a");
	mk("csr/a/b");
	put("csr/a/b/x.csr", "x");
	expect(KR_ERR_UNSAFE_MEDIA, "csr/a/b: directories nested too deep",
	    NULL);
}

static void
test_depth_ok(void **s)
{
	struct kr_media *m = NULL;

	mk("csr/a");
	put("csr/a/x.csr", "x");
	assert_int_equal(kr_media_stage(root, NULL, NULL, &m), 0);
	assert_true(kr_media_find(m, "csr/a/x.csr") >= 0);
	kr_media_free(m);
}

static void
test_unexpected_top(void **s)
{
	put("autorun.sh", "x");
	expect(KR_ERR_UNSAFE_MEDIA, "autorun.sh: unexpected entry", NULL);
}

static void
test_unexpected_suffix(void **s)
{
	put("csr/evil.exe", "x");
	expect(KR_ERR_UNSAFE_MEDIA, "csr/evil.exe: unexpected entry", NULL);
}

static void
test_unexpected_dotfile(void **s)
{
	put("manifest/.hidden.json", "x");
	expect(KR_ERR_UNSAFE_MEDIA, "manifest/.hidden.json: unexpected",
	    NULL);
}

static void
test_batch_json_dir(void **s)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/batch.json", root);
	assert_int_equal(unlink(p), 0);
	mk("batch.json");
	expect(KR_ERR_UNSAFE_MEDIA, "batch.json: unexpected entry", NULL);
}

static void
test_too_many(void **s)
{
	struct kr_media_limits lim;

	kr_media_limits_default(&lim);
	lim.max_files = 4;
	put("csr/c.csr", "x");
	expect(KR_ERR_TOO_LARGE, "too many files", &lim);
}

static void
test_file_too_large(void **s)
{
	struct kr_media_limits lim;

	kr_media_limits_default(&lim);
	lim.max_file_bytes = 3;
	expect(KR_ERR_TOO_LARGE, "csr/a.csr: file too large", &lim);
}

static void
test_sparse_huge(void **s)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/csr/huge.csr", root);
	assert_true((fd = open(p, O_CREAT | O_WRONLY, 0644)) >= 0);
	assert_int_equal(ftruncate(fd, (off_t)8 << 30), 0);
	close(fd);
	expect(KR_ERR_TOO_LARGE, "csr/huge.csr: file too large", NULL);
}

static void
test_total_too_large(void **s)
{
	struct kr_media_limits lim;

	kr_media_limits_default(&lim);
	lim.max_total_bytes = 7;
	expect(KR_ERR_TOO_LARGE, "over the total limit", &lim);
}

static void
test_not_dir(void **s)
{
	struct kr_media *m = NULL;
	char p[512];

	snprintf(p, sizeof(p), "%s/batch.json", root);
	assert_int_equal(kr_media_stage(p, NULL, NULL, &m),
	    KR_ERR_UNSAFE_MEDIA);
}

static void
test_name_problem(void **s)
{
	assert_null(kr_media_name_problem("ok.csr", 10));
	assert_string_equal(kr_media_name_problem("..", 10),
	    "'..' or '.' in name");
	assert_string_equal(kr_media_name_problem("a/b", 10), "'/' in name");
	assert_string_equal(kr_media_name_problem("", 10), "empty name");
	assert_string_equal(kr_media_name_problem("\xed\xa0\x80", 10),
	    "name is not valid UTF-8");	/* surrogate */
	assert_string_equal(kr_media_name_problem("\xc2\x85", 10),
	    "name is not valid UTF-8");	/* C1 control */
	assert_string_equal(kr_media_name_problem("\xe2\x82", 10),
	    "name is not valid UTF-8");	/* truncated */
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_good), T(test_symlink_file), T(test_symlink_dir),
		T(test_symlink_outdir), T(test_fifo), T(test_socket),
		T(test_device), T(test_hardlink), T(test_non_utf8),
		T(test_overlong_utf8), T(test_control_char),
		T(test_long_name), T(test_utf8_name_ok), T(test_too_deep),
		T(test_depth_ok), T(test_unexpected_top),
		T(test_unexpected_suffix), T(test_unexpected_dotfile),
		T(test_batch_json_dir), T(test_too_many),
		T(test_file_too_large), T(test_sparse_huge),
		T(test_total_too_large), T(test_not_dir),
		T(test_name_problem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
