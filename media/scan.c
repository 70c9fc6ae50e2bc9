/*
 * scan.c - hostile-media intake: walk the medium with openat(O_NOFOLLOW)
 * and fstat on every descriptor, refuse anything unsafe with a named
 * reason, and copy each allowed file once into private staging.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/util.h"
#include "media/media.h"

/*
 * Strings packed end to end in one buffer (NUL-separated), found by offset
 * while the buffer may still move. A medium of 100,000 files costs ~16
 * bytes a name here instead of a 32-byte malloc chunk each, and a large
 * buffer goes back to the system when freed.
 */
struct strpool {
	char *p;
	size_t len, cap;
};

static int
strpool_add(struct strpool *sp, const char *s, size_t *off)
{
	size_t n = strlen(s) + 1;

	if (sp->cap - sp->len < n) {
		size_t nc = sp->cap ? sp->cap : 4096;
		char *np;

		while (nc - sp->len < n)
			nc *= 2;
		if ((np = realloc(sp->p, nc)) == NULL)
			return kr_errf(KR_ERR_ALLOC, "name pool");
		sp->p = np;
		sp->cap = nc;
	}
	memcpy(sp->p + sp->len, s, n);
	*off = sp->len;
	sp->len += n;
	return 0;
}

struct kr_media {
	int sfd;			/* staging file */
	uint64_t total;
	size_t n, cap;
	struct kr_media_file *files;
	struct strpool paths;		/* every files[i].path */
	size_t *pathoff;		/* while staging: offsets in paths */
	size_t nentries;		/* files + dirs seen */
	struct kr_media_limits lim;
};

void
kr_media_limits_default(struct kr_media_limits *lim)
{
	lim->max_files = KR_MEDIA_MAX_FILES;
	lim->max_name = KR_MEDIA_MAX_NAME;
	lim->max_depth = KR_MEDIA_MAX_DEPTH;
	lim->max_file_bytes = KR_MEDIA_MAX_FILE_BYTES;
	lim->max_total_bytes = KR_MEDIA_MAX_TOTAL_BYTES;
}

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, <= U+10FFFF. */
static int
utf8_ok(const unsigned char *s)
{
	while (*s != 0) {
		unsigned c = *s, n, cp, i;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return 0;
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		/* C1 controls */
		if (cp >= 0x80 && cp <= 0x9f)
			return 0;
		s += n + 1;
	}
	return 1;
}

int
kr_media_utf8_ok(const char *s)
{
	return utf8_ok((const unsigned char *)s);
}

const char *
kr_media_name_problem(const char *name, size_t maxlen)
{
	size_t len = strlen(name), i;

	if (len == 0)
		return "empty name";
	if (len > maxlen)
		return "name too long";
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return "'..' or '.' in name";
	if (strchr(name, '/') != NULL)
		return "'/' in name";
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return "control character in name";
	if (!utf8_ok((const unsigned char *)name))
		return "name is not valid UTF-8";
	return NULL;
}

static int
has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Which kind of top-level tree a path is in. */
enum area { AREA_TOP, AREA_CSR, AREA_MANIFEST };

static int
cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct kr_media_file *)a)->path,
	    ((const struct kr_media_file *)b)->path);
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return kr_err_sys("staging: write");
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/*
 * Copy an open regular file into staging, bounded by its fstat size:
 * a file that grows or shrinks while read is refused.
 */
static int
stage_file(struct kr_media *m, int fd, const struct stat *st,
    const char *rel)
{
	uint8_t buf[65536];
	uint64_t want = (uint64_t)st->st_size, got = 0;
	size_t used = 0;	/* of buf: what the cleanse must cover */
	struct kr_media_file *f;
	int r;

	if (m->n == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 256;
		struct kr_media_file *nf;
		size_t *no;

		if ((nf = reallocarray(m->files, nc, sizeof(*nf))) == NULL)
			return kr_errf(KR_ERR_ALLOC, "staging index");
		m->files = nf;
		if ((no = reallocarray(m->pathoff, nc, sizeof(*no))) == NULL)
			return kr_errf(KR_ERR_ALLOC, "staging index");
		m->pathoff = no;
		m->cap = nc;
	}
	for (;;) {
		ssize_t rd = read(fd, buf, sizeof(buf));

		if (rd < 0 && errno == EINTR)
			continue;
		if (rd < 0)
			return kr_err_sys("%s: read", rel);
		if (rd == 0)
			break;
		if ((size_t)rd > used)
			used = (size_t)rd;
		if (got + (uint64_t)rd > want) {
			r = kr_errf(KR_ERR_UNSAFE_MEDIA,
			    "%s: file changed while read (grew)", rel);
			goto out;
		}
		if ((r = write_all(m->sfd, buf, (size_t)rd)) != 0)
			goto out;
		got += (uint64_t)rd;
	}
	if (got != want) {
		r = kr_errf(KR_ERR_UNSAFE_MEDIA,
		    "%s: file changed while read (shrank)", rel);
		goto out;
	}
	if ((r = strpool_add(&m->paths, rel, &m->pathoff[m->n])) != 0)
		goto out;
	f = &m->files[m->n];
	f->path = NULL;		/* set once the pool stops moving */
	f->off = m->total;
	f->len = got;
	m->total += got;
	m->n++;
	r = 0;
 out:
	OPENSSL_cleanse(buf, used);	/* a CSR is ~500 of these 65,536 */
	return r;
}

static int walk(struct kr_media *m, int dfd, const char *rel, size_t depth,
    enum area area);

static int
cmp_off(const void *a, const void *b, void *pool)
{
	const char *p = pool;

	return strcmp(p + *(const size_t *)a, p + *(const size_t *)b);
}

/* Handle one directory entry `name` of directory dfd (relative path rel). */
static int
entry(struct kr_media *m, int dfd, const char *dirrel, const char *name,
    size_t depth, enum area area)
{
	char rel[KR_MEDIA_MAX_PATH + 1];
	const char *why;
	struct stat st, st2;
	int pfd = -1, fd = -1, r;
	enum area sub = area;

	if ((why = kr_media_name_problem(name, m->lim.max_name)) != NULL) {
		/* Never print raw hostile bytes: the reason is enough. */
		return kr_errf(KR_ERR_UNSAFE_MEDIA, "%s%s<entry>: %s",
		    dirrel, *dirrel ? "/" : "", why);
	}
	if ((r = kr_snprintf(rel, sizeof(rel), "%s%s%s", dirrel,
	    *dirrel ? "/" : "", name)) != 0)
		return kr_errf(KR_ERR_UNSAFE_MEDIA, "%s/...: path too long",
		    dirrel);
	if (++m->nentries > m->lim.max_files)
		return kr_errf(KR_ERR_TOO_LARGE,
		    "%s: too many files on the medium (limit %zu)", rel,
		    m->lim.max_files);
	/* O_PATH: no open side effects on devices/FIFOs; O_NOFOLLOW: the
	 * descriptor is the link itself if it is one. */
	if ((pfd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		r = kr_err_sys("%s: open", rel);
		goto out;
	}
	if (fstat(pfd, &st) != 0) {
		r = kr_err_sys("%s: fstat", rel);
		goto out;
	}
	if (S_ISLNK(st.st_mode)) {
		r = kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: symlink", rel);
		goto out;
	}
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		r = kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: device node", rel);
		goto out;
	}
	if (S_ISFIFO(st.st_mode)) {
		r = kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: FIFO", rel);
		goto out;
	}
	if (S_ISSOCK(st.st_mode)) {
		r = kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: socket", rel);
		goto out;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		r = kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: not a regular file",
		    rel);
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
		r = kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: hard link (%lu links)",
		    rel, (unsigned long)st.st_nlink);
		goto out;
	}
	/* Where may this entry be? */
	if (area == AREA_TOP) {
		if (S_ISDIR(st.st_mode) && strcmp(name, "csr") == 0)
			sub = AREA_CSR;
		else if (S_ISDIR(st.st_mode) && strcmp(name, "manifest") == 0)
			sub = AREA_MANIFEST;
		else if (S_ISDIR(st.st_mode) &&
		    strcmp(name, KR_MEDIA_OUT_DIR) == 0) {
			r = 0;	/* our own output: a real dir, not read */
			goto out;
		} else if (!(S_ISREG(st.st_mode) &&
		    strcmp(name, "batch.json") == 0)) {
			r = kr_errf(KR_ERR_UNSAFE_MEDIA,
			    "%s: unexpected entry", rel);
			goto out;
		}
	} else if (S_ISREG(st.st_mode)) {
		int okname = area == AREA_CSR ?
		    (has_suffix(name, ".csr") || has_suffix(name, ".pem") ||
		    has_suffix(name, ".der") || has_suffix(name, ".sig")) :
		    has_suffix(name, ".json");

		if (!okname || name[0] == '.') {
			r = kr_errf(KR_ERR_UNSAFE_MEDIA,
			    "%s: unexpected entry", rel);
			goto out;
		}
	}
	if (S_ISDIR(st.st_mode)) {
		/* a directory at component count depth+1 could hold
		 * files deeper than the limit */
		if (depth + 1 >= m->lim.max_depth) {
			r = kr_errf(KR_ERR_UNSAFE_MEDIA,
			    "%s: directories nested too deep (limit %zu)",
			    rel, m->lim.max_depth);
			goto out;
		}
		fd = openat(dfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	} else {
		if ((uint64_t)st.st_size > m->lim.max_file_bytes) {
			r = kr_errf(KR_ERR_TOO_LARGE,
			    "%s: file too large (%lld bytes, limit %llu)",
			    rel, (long long)st.st_size,
			    (unsigned long long)m->lim.max_file_bytes);
			goto out;
		}
		if (m->total + (uint64_t)st.st_size > m->lim.max_total_bytes) {
			r = kr_errf(KR_ERR_TOO_LARGE,
			    "%s: medium content over the total limit (%llu "
			    "bytes)", rel,
			    (unsigned long long)m->lim.max_total_bytes);
			goto out;
		}
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_NOCTTY | O_CLOEXEC);
	}
	if (fd < 0) {
		r = errno == ELOOP ? kr_errf(KR_ERR_UNSAFE_MEDIA,
		    "%s: symlink", rel) : kr_err_sys("%s: open", rel);
		goto out;
	}
	/* The object opened must be the one inspected. */
	if (fstat(fd, &st2) != 0) {
		r = kr_err_sys("%s: fstat", rel);
		goto out;
	}
	if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino ||
	    (st2.st_mode & S_IFMT) != (st.st_mode & S_IFMT) ||
	    (S_ISREG(st2.st_mode) && (st2.st_size != st.st_size ||
	    st2.st_nlink != 1))) {
		r = kr_errf(KR_ERR_UNSAFE_MEDIA,
		    "%s: changed during the scan", rel);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = walk(m, fd, rel, depth + 1, sub);
		fd = -1;	/* walk took it */
	} else
		r = stage_file(m, fd, &st2, rel);
 out:
	if (pfd >= 0)
		close(pfd);
	if (fd >= 0)
		close(fd);
	return r;
}

/* Walk directory dfd (takes ownership of dfd). */
static int
walk(struct kr_media *m, int dfd, const char *rel, size_t depth,
    enum area area)
{
	DIR *d = NULL;
	struct dirent *de;
	struct strpool pool = { NULL, 0, 0 };
	size_t *names = NULL, *nn;	/* offsets in pool */
	size_t n = 0, cap = 0, i;
	int r;

	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return kr_err_sys("%s: opendir", *rel ? rel : ".");
	}
	/* Read all names first, sorted, so the order is deterministic. */
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0) {
				r = kr_err_sys("%s: readdir",
				    *rel ? rel : ".");
				goto out;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (m->nentries + n >= m->lim.max_files) {
			r = kr_errf(KR_ERR_TOO_LARGE,
			    "%s: too many files on the medium (limit %zu)",
			    *rel ? rel : ".", m->lim.max_files);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nn = reallocarray(names, cap, sizeof(*nn))) ==
			    NULL) {
				r = kr_errf(KR_ERR_ALLOC, "directory listing");
				goto out;
			}
			names = nn;
		}
		if ((r = strpool_add(&pool, de->d_name, &names[n])) != 0)
			goto out;
		n++;
	}
	if (n > 0)
		qsort_r(names, n, sizeof(*names), cmp_off, pool.p);
	for (i = 0; i < n; i++)
		if ((r = entry(m, dirfd(d), rel, pool.p + names[i], depth,
		    area)) != 0)
			goto out;
	r = 0;
 out:
	free(pool.p);
	free(names);
	closedir(d);
	return r;
}

static int
staging_open(const char *staging_dir)
{
	int fd = -1;

	if (staging_dir != NULL)
		fd = open(staging_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		fd = memfd_create("keyroom-staging", MFD_CLOEXEC);
	return fd;
}

int
kr_media_stage(const char *dir, const char *staging_dir,
    const struct kr_media_limits *lim, struct kr_media **out)
{
	struct kr_media *m = NULL;
	struct stat st;
	size_t i;
	int dfd = -1, r;

	*out = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "media");
	m->sfd = -1;
	if (lim != NULL)
		m->lim = *lim;
	else
		kr_media_limits_default(&m->lim);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		r = errno == ELOOP || errno == ENOTDIR ?
		    kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: not a directory "
		    "(or a symlink)", dir) : kr_err_sys("%s", dir);
		goto out;
	}
	if (fstat(dfd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		r = kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: not a directory", dir);
		goto out;
	}
	if ((m->sfd = staging_open(staging_dir)) < 0) {
		r = kr_err_sys("staging file");
		goto out;
	}
	r = walk(m, dfd, "", 0, AREA_TOP);
	dfd = -1;
	if (r != 0)
		goto out;
	for (i = 0; i < m->n; i++)
		m->files[i].path = m->paths.p + m->pathoff[i];
	free(m->pathoff);
	m->pathoff = NULL;
	if (m->n > 0)
		qsort(m->files, m->n, sizeof(*m->files), cmp_file);
	*out = m;
	m = NULL;
 out:
	if (dfd >= 0)
		close(dfd);
	kr_media_free(m);
	return r;
}

void
kr_media_free(struct kr_media *m)
{
	if (m == NULL)
		return;
	free(m->paths.p);
	free(m->pathoff);
	free(m->files);
	if (m->sfd >= 0)
		close(m->sfd);
	free(m);
}

size_t
kr_media_count(const struct kr_media *m)
{
	return m->n;
}

const struct kr_media_file *
kr_media_file(const struct kr_media *m, size_t i)
{
	return i < m->n ? &m->files[i] : NULL;
}

uint64_t
kr_media_total(const struct kr_media *m)
{
	return m->total;
}

long
kr_media_find(const struct kr_media *m, const char *path)
{
	struct kr_media_file key, *f;

	key.path = (char *)(uintptr_t)path;
	f = bsearch(&key, m->files, m->n, sizeof(*m->files), cmp_file);
	return f == NULL ? -1 : (long)(f - m->files);
}

int
kr_media_read(const struct kr_media *m, size_t i, size_t cap,
    uint8_t **out, size_t *outlen)
{
	const struct kr_media_file *f;
	uint8_t *buf = NULL;
	size_t got = 0;
	int r;

	*out = NULL;
	*outlen = 0;
	if (i >= m->n)
		return kr_errf(KR_ERR_INTERNAL, "staged file %zu", i);
	f = &m->files[i];
	if (f->len > cap)
		return kr_errf(KR_ERR_TOO_LARGE,
		    "%s: too large (%llu bytes, limit %zu)", f->path,
		    (unsigned long long)f->len, cap);
	if ((buf = malloc((size_t)f->len + 1)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "%s", f->path);
	while (got < f->len) {
		ssize_t rd = pread(m->sfd, buf + got, (size_t)f->len - got,
		    (off_t)(f->off + got));

		if (rd < 0 && errno == EINTR)
			continue;
		if (rd <= 0) {
			r = kr_err_sys("staging: %s", f->path);
			goto out;
		}
		got += (size_t)rd;
	}
	buf[got] = 0;
	*out = buf;
	*outlen = got;
	buf = NULL;
	r = 0;
 out:
	free(buf);
	return r;
}
