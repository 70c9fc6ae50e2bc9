/*
 * qr.c - QR codes from libqrencode as terminal half blocks, PNG
 * (libpng) and SVG text. Shared by audit checkpoints and ceremony cards.
 */
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/qr.h"

#define QUIET	4
#define MAX_QR_TEXT	2900	/* bytes; version 40-M holds 2331, L 2953 */

static int
encode(const char *text, QRcode **out)
{
	size_t n = strlen(text);

	*out = NULL;
	if (n == 0 || n > MAX_QR_TEXT)
		return kr_errf(KR_ERR_TOO_LARGE, "QR text of %zu bytes", n);
	*out = QRcode_encodeData((int)n, (const unsigned char *)text, 0,
	    QR_ECLEVEL_M);
	if (*out == NULL) {
		if (errno == ERANGE || errno == EINVAL)
			return kr_errf(KR_ERR_TOO_LARGE, "QR text of %zu bytes "
			    "does not fit a QR code", n);
		return kr_errf(KR_ERR_ALLOC, "QR encoding");
	}
	return 0;
}

/* Dark module at (x, y) including the quiet zone? */
static int
dark(const QRcode *q, int x, int y)
{
	x -= QUIET;
	y -= QUIET;
	if (x < 0 || y < 0 || x >= q->width || y >= q->width)
		return 0;
	return q->data[y * q->width + x] & 1;
}

int
kr_qr_print_terminal(FILE *f, const char *text)
{
	QRcode *q = NULL;
	int r, x, y, w, top, bot;

	if ((r = encode(text, &q)) != 0)
		return r;
	w = q->width + 2 * QUIET;
	for (y = 0; y < w; y += 2) {
		for (x = 0; x < w; x++) {
			/* Light modules are drawn, dark ones left blank. */
			top = !dark(q, x, y);
			bot = y + 1 < w ? !dark(q, x, y + 1) : 0;
			if (top && bot)
				fputs("\xe2\x96\x88", f);	/* full block */
			else if (top)
				fputs("\xe2\x96\x80", f);	/* upper half */
			else if (bot)
				fputs("\xe2\x96\x84", f);	/* lower half */
			else
				fputc(' ', f);
		}
		fputc('\n', f);
	}
	QRcode_free(q);
	if (ferror(f))
		return kr_err_sys("writing QR code");
	return 0;
}

/* libpng part, alone so that setjmp clobbers nothing of the caller. */
static int
png_emit(FILE *f, const QRcode *q, int scale, png_bytep row)
{
	png_structp png;
	png_infop info;
	int x, y, px = (q->width + 2 * QUIET) * scale;

	if ((png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL,
	    NULL)) == NULL)
		return -1;
	if ((info = png_create_info_struct(png)) == NULL) {
		png_destroy_write_struct(&png, NULL);
		return -1;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return -1;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)px, (png_uint_32)px, 8,
	    PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
	    PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (y = 0; y < px; y++) {
		for (x = 0; x < px; x++)
			row[x] = dark(q, x / scale, y / scale) ? 0 : 255;
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return 0;
}

int
kr_qr_write_png(const char *path, const char *text, int scale)
{
	return kr_qr_write_png_mode(path, text, scale, 0644);
}

int
kr_qr_write_png_mode(const char *path, const char *text, int scale,
    mode_t mode)
{
	QRcode *q = NULL;
	png_bytep row = NULL;
	FILE *f = NULL;
	int r, fd = -1, written = 0;

	if (scale < 1 || scale > 64)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "QR scale %d", scale);
	if ((r = encode(text, &q)) != 0)
		return r;
	if ((row = malloc((size_t)(q->width + 2 * QUIET) * (size_t)scale)) ==
	    NULL) {
		r = kr_errf(KR_ERR_ALLOC, "PNG");
		goto out;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode)) < 0) {
		r = errno == EEXIST ? kr_errf(KR_ERR_EXISTS, "%s: exists",
		    path) : kr_err_sys("%s", path);
		goto out;
	}
	written = 1;
	if ((f = fdopen(fd, "wb")) == NULL) {
		r = kr_err_sys("%s", path);
		goto out;
	}
	fd = -1;
	if (png_emit(f, q, scale, row) != 0) {
		r = kr_errf(KR_ERR_SYSTEM, "%s: PNG write failed", path);
		goto out;
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		r = kr_err_sys("%s", path);
		goto out;
	}
	r = 0;
 out:
	if (f != NULL && fclose(f) != 0 && r == 0)
		r = kr_err_sys("%s", path);
	if (fd >= 0)
		close(fd);
	if (r != 0 && written)
		(void)unlink(path);
	free(row);
	QRcode_free(q);
	return r;
}

int
kr_qr_svg(const char *text, int scale, char **out)
{
	QRcode *q = NULL;
	char *buf = NULL;
	size_t cap, off = 0;
	int r, x, y, w, n;

	*out = NULL;
	if (scale < 1 || scale > 64)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "QR scale %d", scale);
	if ((r = encode(text, &q)) != 0)
		return r;
	w = q->width + 2 * QUIET;
	cap = 512 + (size_t)q->width * (size_t)q->width * 40;
	if ((buf = malloc(cap)) == NULL) {
		QRcode_free(q);
		return kr_errf(KR_ERR_ALLOC, "SVG");
	}
	n = snprintf(buf, cap, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	    "height=\"%d\" viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">"
	    "\n<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n<path d=\"",
	    w * scale, w * scale, w, w, w, w);
	off = (size_t)n;
	for (y = 0; y < q->width; y++)
		for (x = 0; x < q->width; x++)
			if (q->data[y * q->width + x] & 1)
				off += (size_t)snprintf(buf + off, cap - off,
				    "M%d %dh1v1h-1z", x + QUIET, y + QUIET);
	off += (size_t)snprintf(buf + off, cap - off, "\" fill=\"#000\"/>\n"
	    "</svg>\n");
	QRcode_free(q);
	if (off >= cap) {
		free(buf);
		return kr_errf(KR_ERR_INTERNAL, "SVG buffer");
	}
	*out = buf;
	return 0;
}
