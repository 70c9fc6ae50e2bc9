/*
 * image/pefix.c - make a PE image reproducible: set the COFF TimeDateStamp
 * to SOURCE_DATE_EPOCH and recompute the optional header CheckSum (objcopy
 * stamps the current time). Used by image/uki.sh on the unified kernel image.
 *
 *   pefix FILE.efi EPOCH
 *
 * Reads the whole file (bounded: 1 GiB), patches it in place. Exit 0 on
 * success, 1 on any error (message on stderr), 2 on usage.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEFIX_MAX (1024L * 1024 * 1024)

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

int
main(int argc, char **argv)
{
	FILE *f = NULL;
	unsigned char *buf = NULL;
	long len;
	uint32_t pe, sum = 0;
	unsigned long long epoch;
	char *end = NULL;
	size_t i;
	int rc = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: pefix FILE.efi EPOCH\n");
		return 2;
	}
	errno = 0;
	epoch = strtoull(argv[2], &end, 10);
	if (errno != 0 || end == argv[2] || *end != '\0' || epoch > UINT32_MAX) {
		fprintf(stderr, "pefix: bad epoch %s\n", argv[2]);
		return 2;
	}
	if ((f = fopen(argv[1], "r+b")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "pefix: %s: %s\n", argv[1], strerror(errno));
		goto out;
	}
	if (len < 0x40 || len > PEFIX_MAX || (buf = malloc((size_t)len)) == NULL ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "pefix: %s: cannot read (size %ld)\n", argv[1], len);
		goto out;
	}
	pe = le32(buf + 0x3c);
	if (buf[0] != 'M' || buf[1] != 'Z' || (long)pe + 24 + 68 > len ||
	    memcmp(buf + pe, "PE\0\0", 4) != 0) {
		fprintf(stderr, "pefix: %s: not a PE image\n", argv[1]);
		goto out;
	}
	put32(buf + pe + 8, (uint32_t)epoch);		/* TimeDateStamp */
	put32(buf + pe + 24 + 64, 0);			/* CheckSum */
	/* The PE checksum: 16-bit one's-complement-style sum, plus length. */
	for (i = 0; i + 1 < (size_t)len; i += 2) {
		sum += (uint32_t)buf[i] | (uint32_t)buf[i + 1] << 8;
		sum = (sum & 0xffff) + (sum >> 16);
	}
	if (len & 1) {
		sum += buf[len - 1];
		sum = (sum & 0xffff) + (sum >> 16);
	}
	sum = (sum & 0xffff) + (sum >> 16);
	put32(buf + pe + 24 + 64, sum + (uint32_t)len);
	if (fseek(f, 0, SEEK_SET) != 0 || fwrite(buf, 1, (size_t)len, f) != (size_t)len ||
	    fflush(f) != 0) {
		fprintf(stderr, "pefix: %s: write: %s\n", argv[1], strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(buf);
	if (f != NULL && fclose(f) != 0)
		rc = 1;
	return rc;
}
