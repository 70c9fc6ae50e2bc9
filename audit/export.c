/*
 * export.c - audit export: C2SP tlog-tiles (hash tiles and entry
 * bundles, full and partial), checkpoints, vkey, tlog-proofs, compact
 * LMDB copy and SHA256SUMS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit/entry.h"
#include "audit/export.h"
#include "audit/log_int.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "lib/util.h"

#define TILE_H	8
#define TILE_W	256

int
kr_tile_path(uint64_t n, char *out, size_t cap)
{
	char tmp[64], grp[8];
	uint64_t g[8];
	int k = 0, i;

	do {
		g[k++] = n % 1000;
		n /= 1000;
	} while (n > 0);
	tmp[0] = '\0';
	for (i = k - 1; i >= 0; i--) {
		snprintf(grp, sizeof(grp), "%s%03llu%s", i > 0 ? "x" : "",
		    (unsigned long long)g[i], i > 0 ? "/" : "");
		strcat(tmp, grp);
	}
	return kr_snprintf(out, cap, "%s", tmp);
}

int
kr_audit_proof(struct kr_log *log, MDB_txn *txn, uint64_t index, char **out)
{
	struct kr_hash_rd rd = { txn, log->hashes };
	uint8_t proof[KR_MERKLE_MAX_PROOF][32], leaf[32], root[32];
	const uint8_t *e;
	const char *body;
	char *note = NULL, *extra = NULL, *buf = NULL, b64[48];
	size_t pn, len, cap, off, i, blen;
	uint64_t size, csize;
	char origin[KR_LOG_MAX_ORIGIN + 1];
	int r, n;

	*out = NULL;
	if ((r = kr_log_checkpoint(log, txn, &note, &size)) != 0 ||
	    (r = kr_log_entry(log, txn, index, &e, &len)) != 0)
		goto out;
	if (index >= size) {
		r = kr_errf(KR_ERR_STATE, "entry %llu is not covered by the "
		    "latest checkpoint", (unsigned long long)index);
		goto out;
	}
	if ((r = kr_merkle_inclusion_proof(index, size, kr_log_read_hash,
	    &rd, proof, &pn)) != 0)
		goto out;
	/* Check our own proof against the signed root before handing out. */
	if ((body = strstr(note, "\n\n")) == NULL) {
		r = kr_errf(KR_ERR_TAMPERED, "stored checkpoint malformed");
		goto out;
	}
	blen = (size_t)(body - note) + 1;
	if ((r = kr_checkpoint_parse(note, blen, origin, sizeof(origin),
	    &csize, root)) != 0)
		goto out;
	kr_merkle_leaf(e, len, leaf);
	if (csize != size || (r = kr_merkle_verify_inclusion(index, size,
	    leaf, (const uint8_t (*)[32])proof, pn, root)) != 0) {
		r = kr_errf(KR_ERR_TAMPERED, "inclusion proof for entry %llu "
		    "does not verify against checkpoint %llu",
		    (unsigned long long)index, (unsigned long long)size);
		goto out;
	}
	if ((r = kr_b64_encode_alloc(e, len, &extra)) != 0)
		goto out;
	cap = strlen(extra) + strlen(note) + pn * 46 + 128;
	if ((buf = malloc(cap)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "proof");
		goto out;
	}
	n = snprintf(buf, cap, "c2sp.org/tlog-proof@v1\nextra %s\nindex %llu\n",
	    extra, (unsigned long long)index);
	if (n < 0 || (size_t)n >= cap) {
		r = kr_errf(KR_ERR_INTERNAL, "proof buffer");
		goto out;
	}
	off = (size_t)n;
	for (i = 0; i < pn; i++) {
		if ((r = kr_b64_encode(proof[i], 32, b64, sizeof(b64))) != 0)
			goto out;
		off += (size_t)snprintf(buf + off, cap - off, "%s\n", b64);
	}
	n = snprintf(buf + off, cap - off, "\n%s", note);
	if (n < 0 || (size_t)n >= cap - off) {
		r = kr_errf(KR_ERR_INTERNAL, "proof buffer");
		goto out;
	}
	*out = buf;
	buf = NULL;
	r = 0;
 out:
	free(note);
	free(extra);
	free(buf);
	return r;
}

/* --- files */

struct sums {
	char *buf;
	size_t len, cap;
	uint64_t files;
};

struct exp {
	const char *dir;
	struct sums sums;
	struct kr_export_stats *st;
};

static int
mkdir_p_under(const char *root, const char *rel)
{
	char path[4096], *p;
	int r;

	if ((r = kr_snprintf(path, sizeof(path), "%s/%s", root, rel)) != 0)
		return r;
	if ((p = strrchr(path, '/')) == NULL)
		return 0;
	*p = '\0';
	return kr_mkdirs(path, 0755);
}

static int
xfile(struct exp *x, const char *rel, const void *data, size_t len)
{
	char path[4096], hex[65];
	uint8_t h[32];
	size_t need;
	char *nb;
	ssize_t w;
	size_t off = 0;
	int fd, r;

	if ((r = mkdir_p_under(x->dir, rel)) != 0 ||
	    (r = kr_snprintf(path, sizeof(path), "%s/%s", x->dir, rel)) != 0)
		return r;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644)) < 0)
		return kr_err_sys("%s", path);
	while (off < len) {
		if ((w = write(fd, (const char *)data + off, len - off)) < 0) {
			if (errno == EINTR)
				continue;
			r = kr_err_sys("%s", path);
			close(fd);
			return r;
		}
		off += (size_t)w;
	}
	if (close(fd) != 0)
		return kr_err_sys("%s", path);
	kr_sha256(data, len, h);
	kr_hex(h, 32, hex);
	need = strlen(rel) + 70;
	if (x->sums.len + need > x->sums.cap) {
		x->sums.cap = (x->sums.cap + need) * 2;
		if ((nb = realloc(x->sums.buf, x->sums.cap)) == NULL)
			return kr_errf(KR_ERR_ALLOC, "SHA256SUMS");
		x->sums.buf = nb;
	}
	x->sums.len += (size_t)snprintf(x->sums.buf + x->sums.len,
	    x->sums.cap - x->sums.len, "%s  %s\n", hex, rel);
	x->st->files++;
	return 0;
}

/* Stream a big file (the LMDB copy) into SHA256SUMS. */
static int
sums_add_file(struct exp *x, const char *path, const char *rel)
{
	EVP_MD_CTX *c = NULL;
	uint8_t h[32], *buf = NULL;
	char hex[65], *nb;
	ssize_t n;
	int fd = -1, r = 0;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return kr_err_sys("%s", path);
	if ((buf = malloc(1 << 20)) == NULL || (c = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		r = kr_errf(KR_ERR_ALLOC, "sha256");
		goto out;
	}
	while ((n = read(fd, buf, 1 << 20)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = kr_err_sys("%s", path);
			goto out;
		}
		if (EVP_DigestUpdate(c, buf, (size_t)n) != 1) {
			r = kr_err_ssl("sha256");
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(c, h, NULL) != 1) {
		r = kr_err_ssl("sha256");
		goto out;
	}
	kr_hex(h, 32, hex);
	if ((nb = realloc(x->sums.buf, x->sums.len + strlen(rel) + 70)) ==
	    NULL) {
		r = kr_errf(KR_ERR_ALLOC, "SHA256SUMS");
		goto out;
	}
	x->sums.buf = nb;
	x->sums.cap = x->sums.len + strlen(rel) + 70;
	x->sums.len += (size_t)snprintf(x->sums.buf + x->sums.len,
	    x->sums.cap - x->sums.len, "%s  %s\n", hex, rel);
 out:
	EVP_MD_CTX_free(c);
	free(buf);
	close(fd);
	return r;
}

static int
export_tiles(struct exp *x, struct kr_log *log, MDB_txn *txn, uint64_t size)
{
	struct kr_hash_rd rd = { txn, log->hashes };
	uint8_t *buf = NULL;
	char rel[256], tp[64];
	uint64_t cnt, nt, t, k, w;
	int level, r = 0;

	if ((buf = malloc(TILE_W * 32)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "tile");
	for (level = 0; (cnt = size >> (TILE_H * level)) > 0; level++) {
		nt = (cnt + TILE_W - 1) / TILE_W;
		for (t = 0; t < nt; t++) {
			w = cnt - t * TILE_W < TILE_W ? cnt - t * TILE_W :
			    TILE_W;
			for (k = 0; k < w; k++)
				if ((r = kr_log_read_hash(&rd,
				    kr_merkle_stored_index(TILE_H * level,
				    t * TILE_W + k), buf + k * 32)) != 0)
					goto out;
			if ((r = kr_tile_path(t, tp, sizeof(tp))) != 0)
				goto out;
			if (w == TILE_W)
				r = kr_snprintf(rel, sizeof(rel), "tile/%d/%s",
				    level, tp);
			else
				r = kr_snprintf(rel, sizeof(rel),
				    "tile/%d/%s.p/%llu", level, tp,
				    (unsigned long long)w);
			if (r != 0 || (r = xfile(x, rel, buf, w * 32)) != 0)
				goto out;
			x->st->tiles++;
			if ((t & 63) == 63)
				kr_log_drop_pages(log);
		}
	}
 out:
	free(buf);
	return r;
}

static int
export_entries(struct exp *x, struct kr_log *log, MDB_txn *txn,
    uint64_t size)
{
	uint8_t *buf = NULL;
	const uint8_t *e;
	size_t len, off;
	char rel[256], tp[64];
	uint64_t t, k, w, nt = (size + TILE_W - 1) / TILE_W;
	int r = 0;

	if ((buf = malloc((size_t)TILE_W * (KR_LOG_MAX_ENTRY + 2))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "entry bundle");
	for (t = 0; t < nt; t++) {
		w = size - t * TILE_W < TILE_W ? size - t * TILE_W : TILE_W;
		off = 0;
		for (k = 0; k < w; k++) {
			if ((r = kr_log_entry(log, txn, t * TILE_W + k, &e,
			    &len)) != 0)
				goto out;
			/* The bundle's 16-bit length prefix bounds it. */
			if (len > KR_LOG_MAX_ENTRY) {
				r = kr_errf(KR_ERR_TAMPERED, "entry %llu is "
				    "%zu bytes (limit %d)", (unsigned long long)
				    (t * TILE_W + k), len, KR_LOG_MAX_ENTRY);
				goto out;
			}
			buf[off] = (uint8_t)(len >> 8);
			buf[off + 1] = (uint8_t)len;
			memcpy(buf + off + 2, e, len);
			off += 2 + len;
		}
		if ((r = kr_tile_path(t, tp, sizeof(tp))) != 0)
			goto out;
		if (w == TILE_W)
			r = kr_snprintf(rel, sizeof(rel), "tile/entries/%s",
			    tp);
		else
			r = kr_snprintf(rel, sizeof(rel),
			    "tile/entries/%s.p/%llu", tp,
			    (unsigned long long)w);
		if (r != 0 || (r = xfile(x, rel, buf, off)) != 0)
			goto out;
		if ((t & 63) == 63)
			kr_log_drop_pages(log);
	}
 out:
	free(buf);
	return r;
}

static int
export_checkpoints(struct exp *x, struct kr_log *log, MDB_txn *txn)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	char rel[64];
	int r = 0, rc;

	if ((rc = mdb_cursor_open(txn, log->checkpoints, &c)) != 0)
		return kr_log_mdb_err(rc, "checkpoints");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8) {
			r = kr_errf(KR_ERR_TAMPERED, "checkpoint key");
			break;
		}
		if ((r = kr_snprintf(rel, sizeof(rel), "checkpoints/%llu",
		    (unsigned long long)kr_get_be64(k.mv_data))) != 0 ||
		    (r = xfile(x, rel, v.mv_data, v.mv_size)) != 0)
			break;
		x->st->checkpoints++;
	}
	mdb_cursor_close(c);
	return r;
}

static int
export_proofs(struct exp *x, struct kr_log *log, MDB_txn *txn)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	char rel[128], hex[65], *proof = NULL;
	int r = 0, rc;

	if ((rc = mdb_cursor_open(txn, log->issued, &c)) != 0)
		return kr_log_mdb_err(rc, "issued index");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 32 || v.mv_size != 8) {
			r = kr_errf(KR_ERR_TAMPERED, "issued index record");
			break;
		}
		kr_hex(k.mv_data, 32, hex);
		if ((r = kr_audit_proof(log, txn, kr_get_be64(v.mv_data),
		    &proof)) != 0 ||
		    (r = kr_snprintf(rel, sizeof(rel),
		    "proofs/%s.tlog-proof", hex)) != 0 ||
		    (r = xfile(x, rel, proof, strlen(proof))) != 0)
			break;
		free(proof);
		proof = NULL;
		x->st->proofs++;
	}
	free(proof);
	mdb_cursor_close(c);
	return r;
}

static int
export_vkey(struct exp *x, struct kr_log *log, MDB_txn *txn)
{
	const uint8_t *e;
	size_t len;
	char vk[600];
	int r;

	if ((r = kr_log_entry(log, txn, 0, &e, &len)) != 0 ||
	    (r = kr_entry_get_str(e, len, "vkey", vk, sizeof(vk) - 1)) != 0)
		return kr_errctx(r, "vkey of the init entry");
	strcat(vk, "\n");
	return xfile(x, "vkey", vk, strlen(vk));
}

int
kr_audit_export(struct kr_log *log, const char *dir,
    struct kr_export_stats *st)
{
	struct kr_log *copy = NULL;
	struct exp x;
	MDB_txn *txn = NULL;
	char path[4096], *note = NULL;
	struct stat sb;
	uint64_t size, csize;
	int r, rc, fd;

	memset(st, 0, sizeof(*st));
	memset(&x, 0, sizeof(x));
	x.dir = dir;
	x.st = st;
	if (lstat(dir, &sb) == 0)
		return kr_errf(KR_ERR_EXISTS, "%s: already exists", dir);
	if ((r = kr_snprintf(path, sizeof(path), "%s/log", dir)) != 0 ||
	    (r = kr_mkdirs(path, 0755)) != 0)
		return r;
	if ((rc = mdb_env_copy2(log->env, path, MDB_CP_COMPACT)) != 0)
		return kr_log_mdb_err(rc, "compact copy");
	kr_log_drop_pages(log);
	if ((r = kr_log_open(path, KR_LOG_RDONLY, &copy)) != 0 ||
	    (r = kr_log_read_begin(copy, &txn)) != 0 ||
	    (r = kr_log_size(copy, txn, &size)) != 0 ||
	    (r = kr_log_checkpoint(copy, txn, &note, &csize)) != 0)
		goto out;
	st->size = csize;
	if ((r = xfile(&x, "checkpoint", note, strlen(note))) != 0 ||
	    (r = export_vkey(&x, copy, txn)) != 0 ||
	    (r = export_checkpoints(&x, copy, txn)) != 0 ||
	    (r = export_tiles(&x, copy, txn, csize)) != 0 ||
	    (r = export_entries(&x, copy, txn, csize)) != 0 ||
	    (r = export_proofs(&x, copy, txn)) != 0)
		goto out;
	mdb_txn_abort(txn);
	txn = NULL;
	kr_log_close(copy);
	copy = NULL;
	/* The lock file is the copy's, not part of the record. */
	if ((r = kr_snprintf(path, sizeof(path), "%s/log/lock.mdb", dir)) != 0)
		goto out;
	(void)unlink(path);
	if ((r = kr_snprintf(path, sizeof(path), "%s/log/data.mdb", dir)) != 0)
		goto out;
	if ((r = sums_add_file(&x, path, "log/data.mdb")) != 0)
		goto out;
	if ((r = xfile(&x, "SHA256SUMS", x.sums.buf, x.sums.len)) != 0)
		goto out;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
		if (syncfs(fd) != 0)
			r = kr_err_sys("%s: sync", dir);
		close(fd);
	}
	(void)size;
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_log_close(copy);
	free(note);
	free(x.sums.buf);
	return r;
}
