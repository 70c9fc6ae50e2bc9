/*
 * qr.h - QR code rendering helpers on libqrencode (checkpoints, share
 * cards, fingerprints). Shared with ceremony/.
 *
 * Text is encoded byte mode, error correction level M, smallest version
 * that fits. All functions return 0 or a negative KR_ERR_* code:
 * KR_ERR_TOO_LARGE (text does not fit a QR code), KR_ERR_ALLOC,
 * KR_ERR_SYSTEM (write failure).
 */
#ifndef KR_QR_H
#define KR_QR_H

#include <stddef.h>
#include <sys/types.h>
#include <stdio.h>

#include "lib/err.h"

/*
 * Draw the code on f with UTF-8 half blocks (two modules per character
 * cell), with a 4-module quiet zone, dark modules as spaces on a light
 * background so phones can read it from a dark terminal.
 */
int kr_qr_print_terminal(FILE *f, const char *text) KR_WUR;

/*
 * Write a PNG (8-bit greyscale, `scale` pixels per module, 4-module
 * quiet zone) to path, never overwriting an existing file
 * (KR_ERR_EXISTS).
 */
int kr_qr_write_png(const char *path, const char *text, int scale) KR_WUR;
/*
 * The same, the file created with `mode` from the start (O_CREAT|O_EXCL,
 * e.g. 0600 for share cards: never readable by others, not even briefly;
 * the umask may only narrow it).
 */
int kr_qr_write_png_mode(const char *path, const char *text, int scale,
    mode_t mode) KR_WUR;

/*
 * SVG text of the code (malloc'd, NUL-terminated; free()), `scale`
 * user units per module.
 */
int kr_qr_svg(const char *text, int scale, char **out) KR_WUR;

#endif
