/*
 * output.c - the batch output of DESIGN.md 5.3, written atomically:
 * everything goes into keyroom-out/.tmp-<batch>-<random>/ on the medium,
 * is made durable (syncfs + fsync of every directory), and only then is
 * the directory renamed to keyroom-out/<batch> and keyroom-out fsync'd.
 * A pulled stick holds either no <batch> directory or a whole one.
 * All paths are resolved with *at() calls relative to descriptors opened
 * with O_NOFOLLOW, so a symlink planted on the medium is never followed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lib/util.h"
#include "media/media.h"

struct stream {
	int fd;			/* -1: slot free */
	char *rel;
	EVP_MD_CTX *md;
	uint8_t buf[65536];
	size_t blen;
};

struct kr_out {
	int mfd;		/* <media> */
	int ofd;		/* <media>/keyroom-out */
	int tfd;		/* the temp dir */
	char tmpname[KR_MEDIA_MAX_ID + 32];
	char batch[KR_MEDIA_MAX_ID + 1];
	char final[4096];
	int hsums;		/* the SHA256SUMS stream, written as we go */
	int cfd;		/* the temp dir's certs/ (kept open) */
	struct stream st[KR_OUT_MAX_STREAMS];
	int committed;
};

/* ---- crash points (tests) ---- */

void
kr_media_crash_point(const char *where)
{
	static long n = -1, count;
	const char *e;

	if (n == -1) {
		e = getenv("KEYROOM_TEST_CRASH_AT");
		n = e != NULL ? atol(e) : 0;
	}
	if (n <= 0)
		return;
	if (++count == n) {
		if (getenv("KEYROOM_TEST_CRASH_VERBOSE") != NULL)
			fprintf(stderr, "keyroom: crash point %ld: %s\n",
			    count, where);
		(void)kill(getpid(), SIGKILL);
	}
}

/* Remove a tree below dfd/name without following symlinks. */
static int
rm_tree(int dfd, const char *name, int depth)
{
	DIR *d;
	struct dirent *de;
	int fd, r = 0;

	if (depth > 8)
		return kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: too deep to remove",
		    name);
	if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
			return 0;
		return kr_err_sys("%s: remove", name);
	}
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return kr_err_sys("%s: opendir", name);
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			continue;
		if ((r = rm_tree(dirfd(d), de->d_name, depth + 1)) != 0)
			break;
	}
	closedir(d);
	if (r == 0 && unlinkat(dfd, name, AT_REMOVEDIR) != 0 &&
	    errno != ENOENT)
		r = kr_err_sys("%s: rmdir", name);
	return r;
}

/* Remove stale keyroom-out/.tmp-<batch>-* left by an interrupted run. */
static int
remove_stale(struct kr_out *o)
{
	char prefix[KR_MEDIA_MAX_ID + 16];
	DIR *d;
	struct dirent *de;
	int fd, r = 0;

	if ((r = kr_snprintf(prefix, sizeof(prefix), ".tmp-%s-",
	    o->batch)) != 0)
		return r;
	if ((fd = dup(o->ofd)) < 0)
		return kr_err_sys("keyroom-out");
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return kr_err_sys("keyroom-out");
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 ||
		    strlen(de->d_name) != strlen(prefix) + 16)
			continue;
		if ((r = rm_tree(o->ofd, de->d_name, 0)) != 0)
			break;
	}
	closedir(d);
	return r;
}

static int
open_dir_at(int dfd, const char *name, const char *what, int create)
{
	struct stat st;
	int fd;

	if (create && mkdirat(dfd, name, 0755) != 0 && errno != EEXIST)
		return kr_err_sys("%s: mkdir", what);
	if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0)
		return errno == ELOOP || errno == ENOTDIR ?
		    kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: not a directory (or a "
		    "symlink)", what) : kr_err_sys("%s", what);
	if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: not a directory",
		    what);
	}
	return fd;
}

int
kr_out_begin(const char *media, const char *batch_id, struct kr_out **out)
{
	struct kr_out *o = NULL;
	struct stat st;
	uint8_t rnd[8];
	char hex[17];
	int r, i, fd;

	*out = NULL;
	if (!kr_batch_id_ok(batch_id))
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "bad batch id");
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "output");
	o->mfd = o->ofd = o->tfd = o->cfd = -1;
	for (i = 0; i < KR_OUT_MAX_STREAMS; i++)
		o->st[i].fd = -1;
	memcpy(o->batch, batch_id, strlen(batch_id) + 1);
	if ((r = kr_snprintf(o->final, sizeof(o->final), "%s/%s/%s", media,
	    KR_MEDIA_OUT_DIR, batch_id)) != 0)
		goto out;
	if ((o->mfd = open(media, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		r = kr_err_sys("%s", media);
		goto out;
	}
	if ((r = o->ofd = open_dir_at(o->mfd, KR_MEDIA_OUT_DIR,
	    KR_MEDIA_OUT_DIR, 1)) < 0)
		goto out;
	if (fstatat(o->ofd, batch_id, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		r = kr_errf(KR_ERR_EXISTS, "%s/%s: output exists; refusing "
		    "to overwrite", KR_MEDIA_OUT_DIR, batch_id);
		goto out;
	}
	if ((r = remove_stale(o)) != 0)
		goto out;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		r = kr_err_ssl("random");
		goto out;
	}
	kr_hex(rnd, sizeof(rnd), hex);
	if ((r = kr_snprintf(o->tmpname, sizeof(o->tmpname), ".tmp-%s-%s",
	    batch_id, hex)) != 0)
		goto out;
	if (mkdirat(o->ofd, o->tmpname, 0755) != 0) {
		r = kr_err_sys("%s/%s", KR_MEDIA_OUT_DIR, o->tmpname);
		goto out;
	}
	if ((r = o->tfd = open_dir_at(o->ofd, o->tmpname, o->tmpname, 0)) < 0)
		goto out;
	if ((r = o->cfd = open_dir_at(o->tfd, "certs", "certs", 1)) < 0)
		goto out;
	if ((r = fd = open_dir_at(o->tfd, "registration", "registration",
	    1)) < 0)
		goto out;
	close(fd);
	if ((r = o->hsums = kr_out_stream_open(o, "SHA256SUMS")) < 0)
		goto out;
	*out = o;
	o = NULL;
	r = 0;
 out:
	kr_out_free(o);
	return r;
}

const char *
kr_out_path(const struct kr_out *o)
{
	return o->final;
}

/* One SHA256SUMS line (sha256sum -c format), streamed: memory stays flat
 * however many certificates a batch has. */
static int
add_sum(struct kr_out *o, const char *rel, const uint8_t h[32])
{
	char hex[65];

	kr_hex(h, 32, hex);
	return kr_out_stream_printf(o, o->hsums, "%s  %s\n", hex, rel);
}

/* Open rel (O_EXCL) inside the temp dir; rel has at most one '/'. */
static int
open_new(struct kr_out *o, const char *rel)
{
	const char *slash = strchr(rel, '/');
	char dir[64];
	int dfd = o->tfd, fd, r;

	if (slash != NULL) {
		if (strchr(slash + 1, '/') != NULL ||
		    (size_t)(slash - rel) >= sizeof(dir))
			return kr_errf(KR_ERR_INVALID_ARGUMENT, "%s: bad "
			    "output path", rel);
		memcpy(dir, rel, (size_t)(slash - rel));
		dir[slash - rel] = 0;
		if (strcmp(dir, "certs") == 0)
			dfd = o->cfd;
		else if ((r = dfd = open_dir_at(o->tfd, dir, dir, 0)) < 0)
			return r;
	}
	fd = openat(dfd, slash ? slash + 1 : rel, O_WRONLY | O_CREAT |
	    O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		r = errno == EEXIST ? kr_errf(KR_ERR_EXISTS, "%s: refusing "
		    "to overwrite", rel) : kr_err_sys("%s", rel);
	else
		r = fd;
	if (dfd != o->tfd && dfd != o->cfd)
		close(dfd);
	return r;
}

static int
write_all(int fd, const void *data, size_t len, const char *rel)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return errno == ENOSPC ? kr_errf(KR_ERR_MAP_FULL,
			    "%s: medium full", rel) : kr_err_sys("%s", rel);
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int
kr_out_put(struct kr_out *o, const char *rel, const void *data, size_t len,
    uint8_t sha256[32])
{
	int fd, r;

	if (o->committed)
		return kr_errf(KR_ERR_STATE, "output already committed");
	if ((r = fd = open_new(o, rel)) < 0)
		return r;
	r = write_all(fd, data, len, rel);
	if (close(fd) != 0 && r == 0)
		r = kr_err_sys("%s: close", rel);
	if (r == 0)
		kr_sha256(data, len, sha256);
	return r;
}

int
kr_out_sum(struct kr_out *o, const char *rel, const uint8_t sha256[32])
{
	return add_sum(o, rel, sha256);
}

int
kr_out_write(struct kr_out *o, const char *rel, const void *data,
    size_t len)
{
	uint8_t h[32];
	int r;

	if ((r = kr_out_put(o, rel, data, len, h)) != 0)
		return r;
	return add_sum(o, rel, h);
}

int
kr_out_stream_open(struct kr_out *o, const char *rel)
{
	struct stream *s = NULL;
	int i, fd;

	for (i = 0; i < KR_OUT_MAX_STREAMS; i++)
		if (o->st[i].fd < 0) {
			s = &o->st[i];
			break;
		}
	if (s == NULL)
		return kr_errf(KR_ERR_INTERNAL, "too many output streams");
	if ((fd = open_new(o, rel)) < 0)
		return fd;
	if ((s->rel = strdup(rel)) == NULL ||
	    (s->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
		close(fd);
		free(s->rel);
		s->rel = NULL;
		EVP_MD_CTX_free(s->md);
		s->md = NULL;
		return kr_errf(KR_ERR_ALLOC, "%s", rel);
	}
	s->fd = fd;
	s->blen = 0;
	return i;
}

static int
stream_flush(struct stream *s)
{
	int r;

	if (s->blen == 0)
		return 0;
	r = write_all(s->fd, s->buf, s->blen, s->rel);
	s->blen = 0;
	return r;
}

int
kr_out_stream_write(struct kr_out *o, int h, const void *data, size_t len)
{
	struct stream *s;
	int r;

	if (h < 0 || h >= KR_OUT_MAX_STREAMS || o->st[h].fd < 0)
		return kr_errf(KR_ERR_INTERNAL, "bad output stream");
	s = &o->st[h];
	if (EVP_DigestUpdate(s->md, data, len) != 1)
		return kr_err_ssl("%s", s->rel);
	if (s->blen + len > sizeof(s->buf)) {
		if ((r = stream_flush(s)) != 0)
			return r;
		if (len > sizeof(s->buf))
			return write_all(s->fd, data, len, s->rel);
	}
	memcpy(s->buf + s->blen, data, len);
	s->blen += len;
	return 0;
}

int
kr_out_stream_printf(struct kr_out *o, int h, const char *fmt, ...)
{
	char small[1024], *p = small;
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return kr_errf(KR_ERR_INTERNAL, "format");
	if ((size_t)n >= sizeof(small)) {
		if ((p = malloc((size_t)n + 1)) == NULL)
			return kr_errf(KR_ERR_ALLOC, "format");
		va_start(ap, fmt);
		(void)vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	r = kr_out_stream_write(o, h, p, (size_t)n);
	if (p != small)
		free(p);
	return r;
}

int
kr_out_stream_close(struct kr_out *o, int h)
{
	struct stream *s;
	uint8_t dg[32];
	unsigned dl = 0;
	int r;

	if (h < 0 || h >= KR_OUT_MAX_STREAMS || o->st[h].fd < 0)
		return kr_errf(KR_ERR_INTERNAL, "bad output stream");
	s = &o->st[h];
	r = stream_flush(s);
	if (close(s->fd) != 0 && r == 0)
		r = kr_err_sys("%s: close", s->rel);
	s->fd = -1;
	if (r == 0 && EVP_DigestFinal_ex(s->md, dg, &dl) != 1)
		r = kr_err_ssl("%s", s->rel);
	if (r == 0 && h != o->hsums)
		r = add_sum(o, s->rel, dg);
	EVP_MD_CTX_free(s->md);
	s->md = NULL;
	free(s->rel);
	s->rel = NULL;
	return r;
}

static int
fsync_dir_at(int dfd, const char *name)
{
	int fd, r = 0;

	if ((fd = open_dir_at(dfd, name, name, 0)) < 0)
		return fd;
	if (fsync(fd) != 0 && errno != EINVAL)
		r = kr_err_sys("%s: fsync", name);
	close(fd);
	return r;
}

int
kr_out_commit(struct kr_out *o)
{
	int i, r;

	if (o->committed)
		return kr_errf(KR_ERR_STATE, "output already committed");
	for (i = 0; i < KR_OUT_MAX_STREAMS; i++)
		if (i != o->hsums && o->st[i].fd >= 0 &&
		    (r = kr_out_stream_close(o, i)) != 0)
			return r;
	if ((r = kr_out_stream_close(o, o->hsums)) != 0)
		return r;
	kr_media_crash_point("output: before sync");
	/* Every file written through this medium's file system, then the
	 * directories that name them. */
	if (syncfs(o->tfd) != 0)
		return kr_err_sys("%s: syncfs", o->tmpname);
	if ((r = fsync_dir_at(o->tfd, "certs")) != 0 ||
	    (r = fsync_dir_at(o->tfd, "registration")) != 0)
		return r;
	if (fsync(o->tfd) != 0)
		return kr_err_sys("%s: fsync", o->tmpname);
	kr_media_crash_point("output: before rename");
	if (renameat2(o->ofd, o->tmpname, o->ofd, o->batch,
	    RENAME_NOREPLACE) != 0)
		return errno == EEXIST ? kr_errf(KR_ERR_EXISTS, "%s: output "
		    "appeared meanwhile; refusing to overwrite", o->final) :
		    kr_err_sys("%s: rename", o->final);
	o->committed = 1;
	if (fsync(o->ofd) != 0)
		return kr_err_sys("%s: fsync", KR_MEDIA_OUT_DIR);
	kr_media_crash_point("output: after rename");
	return 0;
}

void
kr_out_free(struct kr_out *o)
{
	int i;

	if (o == NULL)
		return;
	for (i = 0; i < KR_OUT_MAX_STREAMS; i++) {
		if (o->st[i].fd >= 0)
			close(o->st[i].fd);
		EVP_MD_CTX_free(o->st[i].md);
		free(o->st[i].rel);
	}
	if (!o->committed && o->tfd >= 0 && o->ofd >= 0)
		(void)rm_tree(o->ofd, o->tmpname, 0);
	if (o->cfd >= 0)
		close(o->cfd);
	if (o->tfd >= 0)
		close(o->tfd);
	if (o->ofd >= 0)
		close(o->ofd);
	if (o->mfd >= 0)
		close(o->mfd);
	free(o);
}
