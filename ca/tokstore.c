/*
 * tokstore.c - keep the embedded SoftHSM2 token store usable after a crash.
 *
 * SoftHSM's file backend rewrites <token>/token.object in place on every
 * C_Login (open, lock, ftruncate to 0, unlock, write). A process killed
 * between the ftruncate and the write - kill -9, a power cut, a batch
 * terminated at its session timeout - leaves the file empty, and SoftHSM
 * then silently drops the token from its slot list: "token keyroom-audit
 * not found", with every key object still on disk.
 *
 * So keyroom keeps a copy of each token.object next to it
 * (token.object-keyroom-copy: SoftHSM loads only names ending in
 * ".object") and, before the module is loaded, puts the copy back where a
 * token.object is empty. The copy is refreshed whenever token.object is
 * whole and differs from it, and right after keyroom itself changes a
 * PIN (kr_tokstore_sync), so a restore never brings back a retired PIN
 * except when the PIN change itself was the interrupted write - the case
 * the quorum's pending share set already handles.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "ca/tokstore.h"
#include "lib/util.h"

#define OBJ_MAX (1 << 20)	/* a token.object is a few hundred bytes */
#define COPY_NAME "token.object-keyroom-copy"
#define GRACE_MS 200		/* a live writer's unlock-to-write gap */

static char store[PATH_MAX];	/* the embedded store seen last */

static int
lock_fd(int fd, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	while (fcntl(fd, type == F_UNLCK ? F_SETLK : F_SETLKW, &fl) == -1)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* Open, lock and fstat token.object; *fd = -1 when there is none. */
static int
open_obj(const char *path, int *fd, struct stat *st)
{
	*fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd == -1)
		return errno == ENOENT ? 0 : kr_err_sys("%s", path);
	if (lock_fd(*fd, F_RDLCK) == -1 || fstat(*fd, st) == -1) {
		int r = kr_err_sys("%s", path);

		close(*fd);
		*fd = -1;
		return r;
	}
	if (!S_ISREG(st->st_mode) || st->st_size > OBJ_MAX) {
		close(*fd);
		*fd = -1;
		return kr_errf(KR_ERR_TOKEN, "%s: not a SoftHSM token file",
		    path);
	}
	return 0;
}

/* Read the locked file whole; 0 with *len = 0 if it changed under us. */
static int
read_obj(int fd, const char *path, const struct stat *st, uint8_t **out,
    size_t *len)
{
	struct stat st2;
	uint8_t *b;
	size_t got = 0;
	ssize_t k;

	*out = NULL;
	*len = 0;
	if ((b = malloc((size_t)st->st_size + 1)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "%s", path);
	while (got <= (size_t)st->st_size) {
		k = pread(fd, b + got, (size_t)st->st_size + 1 - got,
		    (off_t)got);
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1) {
			free(b);
			return kr_err_sys("%s", path);
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	/* Same size and mtime before and after: not a torn read. */
	if (fstat(fd, &st2) == -1 || got != (size_t)st->st_size ||
	    st2.st_size != st->st_size ||
	    st2.st_mtim.tv_sec != st->st_mtim.tv_sec ||
	    st2.st_mtim.tv_nsec != st->st_mtim.tv_nsec) {
		free(b);
		return 0;
	}
	*out = b;
	*len = got;
	return 0;
}

static int
restore(const char *tdir, const char *name, const char *obj)
{
	char copy[PATH_MAX], when[32], detail[512];
	struct stat st;
	uint8_t *c = NULL;
	size_t clen = 0;
	int r;

	if ((r = kr_snprintf(copy, sizeof(copy), "%s/%s", tdir,
	    COPY_NAME)) != 0)
		return r;
	if (lstat(copy, &st) == -1 || (r = kr_read_file(copy, OBJ_MAX, &c,
	    &clen)) != 0 || clen == 0) {
		free(c);
		fprintf(stderr, "keyroom: warning: token store %s: "
		    "token.object is empty (a SoftHSM write was interrupted) "
		    "and there is no copy to restore: that token is lost "
		    "to SoftHSM\n", name);
		kr_err_clear();
		return 0;
	}
	r = kr_write_replace_file(obj, c, clen, 0600);
	kr_free_wipe(c, clen);
	if (r != 0)
		return kr_errctx(r, "restoring %s", obj);
	kr_time_rfc3339(st.st_mtim.tv_sec, when);
	snprintf(detail, sizeof(detail), "token store %s: token.object was "
	    "empty (a SoftHSM write interrupted by a crash); restored from "
	    "the copy of %s", name, when);
	fprintf(stderr, "keyroom: warning: %s\n", detail);
	kr_startup_note("hsm-store", "repaired", detail);
	return 0;
}

/* One token directory: restore an empty token.object, refresh the copy. */
static int
check_one(const char *tdir, const char *name)
{
	char obj[PATH_MAX], copy[PATH_MAX];
	struct stat st;
	uint8_t *b = NULL, *c = NULL;
	size_t len = 0, clen = 0;
	int fd = -1, r, tries;

	if ((r = kr_snprintf(obj, sizeof(obj), "%s/token.object", tdir)) != 0 ||
	    (r = kr_snprintf(copy, sizeof(copy), "%s/%s", tdir,
	    COPY_NAME)) != 0)
		return r;
	for (tries = 0; tries < 2; tries++) {
		if ((r = open_obj(obj, &fd, &st)) != 0 || fd == -1)
			return r;	/* none: not (yet) a token */
		if (st.st_size != 0)
			break;
		close(fd);	/* drops the lock */
		fd = -1;
		if (tries == 0) {
			/* Maybe a live SoftHSM between ftruncate and write. */
			struct timespec ts = { 0, GRACE_MS * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (fd == -1)
		return restore(tdir, name, obj);
	r = read_obj(fd, obj, &st, &b, &len);
	close(fd);
	if (r != 0 || len == 0)
		return r;	/* changing under us: the next start copies */
	if (kr_read_file(copy, OBJ_MAX, &c, &clen) != 0)
		kr_err_clear();
	if (c == NULL || clen != len || memcmp(b, c, len) != 0)
		r = kr_write_replace_file(copy, b, len, 0600);
	kr_free_wipe(b, len);
	if (c != NULL)
		kr_free_wipe(c, clen);
	return r;
}

static int
check_all(const char *tokendir)
{
	char tdir[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int r = 0;

	if ((d = opendir(tokendir)) == NULL)
		return errno == ENOENT ? 0 : kr_err_sys("%s", tokendir);
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((r = kr_snprintf(tdir, sizeof(tdir), "%s/%s", tokendir,
		    de->d_name)) != 0)
			break;
		if (lstat(tdir, &st) == -1 || !S_ISDIR(st.st_mode))
			continue;
		r = check_one(tdir, de->d_name);
	}
	closedir(d);
	return r;
}

int
kr_tokstore_check(const char *tokendir)
{
	int r;

	if ((r = kr_snprintf(store, sizeof(store), "%s", tokendir)) != 0)
		return r;
	return check_all(store);
}

int
kr_tokstore_sync(void)
{
	if (store[0] == '\0')
		return 0;	/* a configured module: not ours to mind */
	return check_all(store);
}
