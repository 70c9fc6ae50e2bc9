/* util.c - bounded file I/O, atomic output, secrets, progress. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "util.h"

int
kr_read_file(const char *path, size_t maxlen, uint8_t **out, size_t *outlen)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t off = 0;
	ssize_t n;
	int fd = -1, r = KR_ERR_INTERNAL;

	*out = NULL;
	*outlen = 0;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1) {
		if (errno == ELOOP)
			r = kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: is a symbolic link",
			    path);
		else
			r = kr_err_sys("%s", path);
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		r = kr_err_sys("%s: fstat", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = kr_errf(KR_ERR_UNSAFE_MEDIA, "%s: not a regular file",
		    path);
		goto out;
	}
	if ((uint64_t)st.st_size > maxlen) {
		r = kr_errf(KR_ERR_TOO_LARGE, "%s: %lld bytes, limit %zu",
		    path, (long long)st.st_size, maxlen);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "%s", path);
		goto out;
	}
	/* Read at most st_size + 1 to notice growth while reading. */
	for (;;) {
		n = read(fd, buf + off, (size_t)st.st_size + 1 - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = kr_err_sys("%s: read", path);
			goto out;
		}
		if (n == 0)
			break;
		off += (size_t)n;
		if (off > (size_t)st.st_size) {
			r = kr_errf(KR_ERR_UNSAFE_MEDIA,
			    "%s: file grew while reading", path);
			goto out;
		}
	}
	buf[off] = '\0';
	*out = buf;
	*outlen = off;
	buf = NULL;
	r = 0;
 out:
	free(buf);
	if (fd != -1)
		close(fd);
	return r;
}

static int
write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
dir_of(const char *path, char *dir, size_t dirlen)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return kr_snprintf(dir, dirlen, ".");
	if (slash == path)
		return kr_snprintf(dir, dirlen, "/");
	return kr_snprintf(dir, dirlen, "%.*s", (int)(slash - path), path);
}

int
kr_fsync_dir(const char *path)
{
	int fd, r = 0;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return kr_err_sys("%s", path);
	if (fsync(fd) == -1 && errno != EINVAL)
		r = kr_err_sys("%s: fsync", path);
	close(fd);
	return r;
}

static int
write_tmp(const char *path, const void *data, size_t len, mode_t mode,
    char *tmp, size_t tmplen)
{
	int fd = -1, r;

	if ((r = kr_snprintf(tmp, tmplen, "%s.tmp.%ld", path,
	    (long)getpid())) != 0)
		return kr_errctx(r, "%s", path);
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode)) == -1)
		return kr_err_sys("%s", tmp);
	if (write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		r = kr_err_sys("%s: write", tmp);
		close(fd);
		(void)unlink(tmp);
		return r;
	}
	if (close(fd) == -1) {
		r = kr_err_sys("%s: close", tmp);
		(void)unlink(tmp);
		return r;
	}
	return 0;
}

int
kr_write_new_file(const char *path, const void *data, size_t len,
    mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int r;

	if ((r = dir_of(path, dir, sizeof(dir))) != 0)
		return r;
	if (access(path, F_OK) == 0)
		return kr_errf(KR_ERR_EXISTS, "%s: refusing to overwrite",
		    path);
	if ((r = write_tmp(path, data, len, mode, tmp, sizeof(tmp))) != 0)
		return r;
	/*
	 * Never replace an existing file: renameat2(RENAME_NOREPLACE) where
	 * the file system has it, else link(2) (ext4 without the flag, tmpfs
	 * on old kernels). FAT has neither hard links nor, on some kernels,
	 * the flag: there the name is checked and a plain rename follows;
	 * the appliance is the only writer of its output directories.
	 */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return kr_fsync_dir(dir);
	if (errno == EEXIST) {
		(void)unlink(tmp);
		return kr_errf(KR_ERR_EXISTS, "%s: refusing to overwrite",
		    path);
	}
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
		r = kr_err_sys("%s", path);
		(void)unlink(tmp);
		return r;
	}
	if (link(tmp, path) == 0) {
		(void)unlink(tmp);
		return kr_fsync_dir(dir);
	}
	if (errno == EEXIST) {
		(void)unlink(tmp);
		return kr_errf(KR_ERR_EXISTS, "%s: refusing to overwrite",
		    path);
	}
	if (errno != EPERM && errno != EOPNOTSUPP) {
		r = kr_err_sys("%s", path);
		(void)unlink(tmp);
		return r;
	}
	if (access(path, F_OK) == 0 || errno != ENOENT) {
		(void)unlink(tmp);
		return kr_errf(KR_ERR_EXISTS, "%s: refusing to overwrite",
		    path);
	}
	if (rename(tmp, path) == -1) {
		r = kr_err_sys("%s", path);
		(void)unlink(tmp);
		return r;
	}
	return kr_fsync_dir(dir);
}

int
kr_rename_durable(const char *from, const char *to)
{
	char dir[PATH_MAX];
	int r;

	if ((r = dir_of(to, dir, sizeof(dir))) != 0)
		return r;
	if (rename(from, to) == -1)
		return kr_err_sys("%s", to);
	return kr_fsync_dir(dir);
}

int
kr_write_replace_file(const char *path, const void *data, size_t len,
    mode_t mode)
{
	char tmp[PATH_MAX];
	int r;

	if ((r = write_tmp(path, data, len, mode, tmp, sizeof(tmp))) != 0)
		return r;
	if ((r = kr_rename_durable(tmp, path)) != 0)
		(void)unlink(tmp);
	return r;
}

int
kr_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	char *p;
	int r;

	if ((r = kr_snprintf(buf, sizeof(buf), "%s", path)) != 0)
		return kr_errctx(r, "mkdir");
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) == -1 && errno != EEXIST)
			return kr_err_sys("mkdir %s", buf);
		*p = '/';
	}
	if (mkdir(buf, mode) == -1 && errno != EEXIST)
		return kr_err_sys("mkdir %s", buf);
	return 0;
}

int
kr_snprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return kr_errf(KR_ERR_TOO_LARGE, "string longer than %zu", len);
	return 0;
}

void
kr_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
kr_unhex(const char *in, uint8_t *out, size_t outlen)
{
	size_t i;
	int hi, lo;

	if (strlen(in) != 2 * outlen)
		return kr_errf(KR_ERR_FORMAT, "hex string of length %zu, "
		    "want %zu", strlen(in), 2 * outlen);
	for (i = 0; i < outlen; i++) {
		hi = hexval(in[2 * i]);
		lo = hexval(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return kr_errf(KR_ERR_FORMAT, "invalid hex digit");
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

size_t
kr_utf8_next(const char *s, size_t n, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t need, k;
	uint32_t c;

	if (n == 0)
		return 0;
	if (u[0] < 0x80) {
		*cp = u[0];
		return 1;
	}
	if ((u[0] & 0xe0) == 0xc0) {
		need = 1;
		c = u[0] & 0x1f;
	} else if ((u[0] & 0xf0) == 0xe0) {
		need = 2;
		c = u[0] & 0x0f;
	} else if ((u[0] & 0xf8) == 0xf0) {
		need = 3;
		c = u[0] & 0x07;
	} else
		return 0;
	if (need >= n)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((u[k] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (u[k] & 0x3f);
	}
	if ((need == 1 && c < 0x80) || (need == 2 && c < 0x800) ||
	    (need == 3 && c < 0x10000) || c > 0x10ffff ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return need + 1;
}

void
kr_utf8_sanitize(char *s)
{
	size_t n = strlen(s), i = 0, k;
	uint32_t cp;

	while (i < n) {
		if ((k = kr_utf8_next(s + i, n - i, &cp)) == 0) {
			s[i++] = '?';
			continue;
		}
		if (cp < 0x20 || cp == 0x7f)
			s[i] = '?';
		i += k;
	}
}

void
kr_sha256(const void *data, size_t len, uint8_t out[32])
{
	SHA256_CTX c;

	/* Not SHA256(): in OpenSSL 3.0 it fetches the algorithm by name on
	 * every call, which costs more than hashing a certificate. */
	SHA256_Init(&c);
	SHA256_Update(&c, data, len);
	SHA256_Final(out, &c);
}

void
kr_free_wipe(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

void *
kr_secure_alloc(size_t len)
{
	void *p;

	if (len == 0)
		len = 1;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)mlock(p, len);	/* best effort: RLIMIT_MEMLOCK may refuse */
	(void)madvise(p, len, MADV_DONTDUMP);
	return p;
}

void
kr_secure_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	if (len == 0)
		len = 1;
	OPENSSL_cleanse(p, len);
	(void)munlock(p, len);
	(void)munmap(p, len);
}

void
kr_harden_process(void)
{
	struct rlimit rl = { 0, 0 };

	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static int
read_line_fd(int fd, char *buf, size_t cap, size_t *outlen)
{
	size_t n = 0;
	ssize_t k;
	char c;

	for (;;) {
		k = read(fd, &c, 1);
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1)
			return kr_err_sys("reading secret");
		if (k == 0 || c == '\n')
			break;
		if (n + 1 >= cap)
			return kr_errf(KR_ERR_TOO_LARGE,
			    "secret longer than %zu bytes", cap - 1);
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*outlen = n;
	return 0;
}

int
kr_read_secret(const char *spec, const char *prompt, char **out,
    size_t *outlen, size_t cap)
{
	struct termios old, noecho;
	char *buf = NULL;
	const char *v;
	int fd = -1, closefd = 0, tty = 0, r;
	char *end;
	long l;

	*out = NULL;
	*outlen = 0;
	if ((buf = kr_secure_alloc(cap)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "secure memory");
	if (spec != NULL && strncmp(spec, "file:", 5) == 0) {
		if ((fd = open(spec + 5, O_RDONLY | O_CLOEXEC)) == -1) {
			r = kr_err_sys("%s", spec + 5);
			goto out;
		}
		closefd = 1;
	} else if (spec != NULL && strncmp(spec, "fd:", 3) == 0) {
		errno = 0;
		l = strtol(spec + 3, &end, 10);
		if (errno != 0 || *end != '\0' || l < 0 || l > INT_MAX) {
			r = kr_errf(KR_ERR_INVALID_ARGUMENT,
			    "bad descriptor in %s", spec);
			goto out;
		}
		fd = (int)l;
	} else if (spec != NULL && strncmp(spec, "env:", 4) == 0) {
		if ((v = getenv(spec + 4)) == NULL) {
			r = kr_errf(KR_ERR_NOT_FOUND, "environment variable "
			    "%s not set", spec + 4);
			goto out;
		}
		if (strlen(v) >= cap) {
			r = kr_errf(KR_ERR_TOO_LARGE, "secret too long");
			goto out;
		}
		memcpy(buf, v, strlen(v) + 1);
		*outlen = strlen(v);
		*out = buf;
		return 0;
	} else if (spec != NULL) {
		r = kr_errf(KR_ERR_INVALID_ARGUMENT, "secret source '%s': "
		    "use file:PATH, fd:N or env:NAME", spec);
		goto out;
	} else {
		if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) == -1) {
			r = kr_errf(KR_ERR_INVALID_ARGUMENT, "no terminal to "
			    "prompt for %s; give it as file:, fd: or env:",
			    prompt);
			goto out;
		}
		closefd = 1;
		tty = 1;
		if (tcgetattr(fd, &old) == -1) {
			r = kr_err_sys("tcgetattr");
			goto out;
		}
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		noecho.c_lflag |= ECHONL;
		(void)tcsetattr(fd, TCSAFLUSH, &noecho);
		if (write(fd, prompt, strlen(prompt)) < 0) {
			/* nothing useful to do */
		}
	}
	r = read_line_fd(fd, buf, cap, outlen);
	if (tty)
		(void)tcsetattr(fd, TCSAFLUSH, &old);
	if (r != 0)
		goto out;
	*out = buf;
	buf = NULL;
 out:
	if (closefd)
		close(fd);
	kr_secure_free(buf, cap);
	return r;
}

int
kr_isatty_err(void)
{
	return isatty(STDERR_FILENO);
}

double
kr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
kr_time_rfc3339(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
kr_progress_start(struct kr_progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total;
	p->t0 = kr_now();
	p->active = kr_isatty_err() && getenv("KEYROOM_NO_PROGRESS") == NULL;
}

static void
progress_draw(struct kr_progress *p, double now)
{
	char bar[31];
	double el = now - p->t0, rate, eta;
	size_t fill = 0, i;

	rate = el > 0 ? (double)p->done / el : 0;
	eta = rate > 0 && p->total > p->done ?
	    (double)(p->total - p->done) / rate : 0;
	if (p->total > 0)
		fill = (size_t)(30.0 * (double)p->done / (double)p->total);
	if (fill > 30)
		fill = 30;
	if (p->total == 0) {	/* a stream of unknown length */
		fprintf(stderr, "\r%s %llu  %.0f/s ", p->label,
		    (unsigned long long)p->done, rate);
		fflush(stderr);
		return;
	}
	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r%s [%s] %llu/%llu  %.0f/s  ETA %d:%02d ",
	    p->label, bar, (unsigned long long)p->done,
	    (unsigned long long)p->total, rate, (int)eta / 60, (int)eta % 60);
	fflush(stderr);
}

void
kr_progress_update(struct kr_progress *p, uint64_t done)
{
	double now;

	p->done = done;
	if (!p->active)
		return;
	now = kr_now();
	if (now - p->last < 0.1 && done != p->total)
		return;
	p->last = now;
	progress_draw(p, now);
}

void
kr_progress_finish(struct kr_progress *p)
{
	if (!p->active)
		return;
	progress_draw(p, kr_now());
	fputc('\n', stderr);
	p->active = 0;
}

/* ------------------------------------------------------ start-up notes */

static struct {
	char check[32];
	char result[32];
	char detail[512];
} notes[KR_STARTUP_NOTES];
static size_t nnotes;

void
kr_startup_note(const char *check, const char *result, const char *detail)
{
	if (nnotes == KR_STARTUP_NOTES)
		return;
	snprintf(notes[nnotes].check, sizeof(notes[0].check), "%s", check);
	snprintf(notes[nnotes].result, sizeof(notes[0].result), "%s", result);
	snprintf(notes[nnotes].detail, sizeof(notes[0].detail), "%s", detail);
	nnotes++;
}

size_t
kr_startup_notes(const char **check, const char **result,
    const char **detail, size_t max)
{
	size_t i;

	for (i = 0; i < nnotes && i < max; i++) {
		check[i] = notes[i].check;
		result[i] = notes[i].result;
		detail[i] = notes[i].detail;
	}
	return i;
}

void
kr_startup_notes_clear(void)
{
	nnotes = 0;
}
