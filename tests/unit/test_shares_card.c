/*
 * test_shares_card.c - share card codes (ceremony/card.c): base32 known
 * answers, round trip, and the forgiving-but-strict parser: spaces, case,
 * line numbers and look-alike digits are fine; every typo is a named
 * checksum error. The card's PNG is created 0600.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/qr.h"
#include "ceremony/card.h"
#include "lib/util.h"

#define GOLDEN "AGQKDIVDUSS2G6NJYCAIBQKEQ7OHFQ4UMU3ANV5IC4PFFBV254RVPCJ7" \
    "576ASFRDGA6UUFUV3EOF7IXGDV4C"

static void
assert_err(int r, int code, const char *needle)
{
	if (r != code || strstr(kr_err_detail(), needle) == NULL)
		fail_msg("got %d '%s', want %d with '%s'", r, kr_err_detail(),
		    code, needle);
}

static void
test_base32_rfc4648(void **state)
{
	/* RFC 4648 §10 test vectors (without padding). */
	static const struct { const char *in, *out; } v[] = {
		{ "", "" }, { "f", "MY" }, { "fo", "MZXQ" },
		{ "foo", "MZXW6" }, { "foob", "MZXW6YQ" },
		{ "fooba", "MZXW6YTB" }, { "foobar", "MZXW6YTBOI" },
	};
	char out[32];
	uint8_t back[8];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		kr_base32_encode((const uint8_t *)v[i].in, strlen(v[i].in),
		    out);
		assert_string_equal(out, v[i].out);
		assert_int_equal(kr_base32_decode(out, strlen(out), back,
		    strlen(v[i].in)), 0);
		assert_memory_equal(back, v[i].in, strlen(v[i].in));
	}
	/* Non-canonical trailing bits. */
	assert_err(kr_base32_decode("MZ", 2, back, 1), KR_ERR_FORMAT,
	    "non-canonical");
	assert_err(kr_base32_decode("M!", 2, back, 1), KR_ERR_FORMAT,
	    "bad character");
}

static void
sample(struct kr_share *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < KR_Q_ID_LEN; i++)
		s->set_id[i] = (uint8_t)(0xa0 + i);
	s->index = 2;
	s->m = 2;
	s->n = 3;
	for (i = 0; i < KR_Q_SECRET_LEN; i++)
		s->bytes[i] = (uint8_t)(i * 13 + 5);
}

static void
test_round_trip(void **state)
{
	struct kr_share s, back;
	char code[KR_CARD_TEXT_MAX], compact[KR_CARD_TEXT_MAX];

	sample(&s);
	assert_int_equal(kr_card_code(&s, 0, code, sizeof(code)), 0);
	assert_int_equal(kr_card_code(&s, 1, compact, sizeof(compact)), 0);
	assert_int_equal(strlen(compact), KR_CARD_CODE_LEN);
	assert_int_equal(strlen(code), 6 * 19);
	assert_true(code[4] == ' ' && code[9] == ' ' && code[14] == ' ' &&
	    code[15] == ' ' && code[18] == '\n');
	assert_int_equal(kr_card_parse(code, &back), 0);
	assert_memory_equal(&back, &s, sizeof(s));
	assert_int_equal(kr_card_parse(compact, &back), 0);
	assert_memory_equal(&back, &s, sizeof(s));
	/* Golden: the code is stable across builds (a printed card must
	 * parse forever). */
	printf("# code: %s\n", compact);
	assert_string_equal(compact, GOLDEN);
}

/* Upper-case, remove separators: what the parser compares. */
static void
test_forgiving(void **state)
{
	struct kr_share s, back;
	char code[KR_CARD_TEXT_MAX], typed[512];
	size_t i, o = 0;
	unsigned line = 1;

	sample(&s);
	assert_int_equal(kr_card_code(&s, 0, code, sizeof(code)), 0);
	/* lower case, dashes instead of spaces, line numbers "1." */
	o += (size_t)snprintf(typed + o, sizeof(typed) - o, "%u. ", line++);
	for (i = 0; code[i] != '\0'; i++) {
		char c = code[i];

		if (c == '\n') {
			typed[o++] = '\n';
			if (code[i + 1] != '\0')
				o += (size_t)snprintf(typed + o,
				    sizeof(typed) - o, "%u. ", line++);
			continue;
		}
		if (c == ' ')
			c = '-';
		else if (c == 'O')
			c = '0';	/* look-alike digits */
		else if (c == 'I')
			c = '1';
		else
			c = (char)tolower((unsigned char)c);
		typed[o++] = c;
	}
	typed[o] = '\0';
	assert_int_equal(kr_card_parse(typed, &back), 0);
	assert_memory_equal(&back, &s, sizeof(s));
}

static void
test_every_single_typo_caught(void **state)
{
	struct kr_share s, back;
	char compact[KR_CARD_TEXT_MAX], bad[KR_CARD_TEXT_MAX];
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	size_t i, k;
	char want[64];
	int r;

	sample(&s);
	assert_int_equal(kr_card_code(&s, 1, compact, sizeof(compact)), 0);
	/* Every position, every substitute character: the line is named. */
	for (i = 0; i < KR_CARD_CODE_LEN; i++)
		for (k = 0; k < 32; k++) {
			if (alpha[k] == compact[i])
				continue;
			memcpy(bad, compact, sizeof(bad));
			bad[i] = alpha[k];
			r = kr_card_parse(bad, &back);
			if (r == 0)
				continue;	/* counted below */
			snprintf(want, sizeof(want), "share card line %zu: "
			    "checksum", i / 14 + 1);
			/* 1 in 1024 typos pass the line check and are
			 * then caught by the whole-card check. */
			if (strstr(kr_err_detail(), "checksum does not "
			    "match (mistyped") == NULL)
				assert_err(r, KR_ERR_QUORUM, want);
		}
	/* With 10-bit line checks some substitutions must be caught; we
	 * require that none slips through for this card. */
	for (i = 0; i < KR_CARD_CODE_LEN; i++)
		for (k = 0; k < 32; k++) {
			if (alpha[k] == compact[i])
				continue;
			memcpy(bad, compact, sizeof(bad));
			bad[i] = alpha[k];
			assert_int_not_equal(kr_card_parse(bad, &back), 0);
		}
}

static void
test_swapped_lines_and_length(void **state)
{
	struct kr_share s, back;
	char compact[KR_CARD_TEXT_MAX], bad[2 * KR_CARD_TEXT_MAX];

	sample(&s);
	assert_int_equal(kr_card_code(&s, 1, compact, sizeof(compact)), 0);
	/* Lines 2 and 3 swapped: line checks include the line number. */
	memcpy(bad, compact, sizeof(compact));
	memcpy(bad + 14, compact + 28, 14);
	memcpy(bad + 28, compact + 14, 14);
	assert_err(kr_card_parse(bad, &back), KR_ERR_QUORUM,
	    "share card line 2: checksum");
	/* A missing line. */
	memcpy(bad, compact, sizeof(compact));
	bad[70] = '\0';
	assert_err(kr_card_parse(bad, &back), KR_ERR_FORMAT,
	    "70 characters, want 84");
	/* Too long. */
	snprintf(bad, sizeof(bad), "%sAB", compact);
	assert_err(kr_card_parse(bad, &back), KR_ERR_FORMAT,
	    "more than 84 characters");
	/* Not on a card. */
	snprintf(bad, sizeof(bad), "%s", compact);
	bad[3] = '9';
	assert_err(kr_card_parse(bad, &back), KR_ERR_FORMAT,
	    "character '9' (position 4)");
	assert_err(kr_card_parse("", &back), KR_ERR_FORMAT,
	    "0 characters, want 84");
}

/*
 * The card PNG is created 0600 (not chmod'ed afterwards): with umask 0 a
 * file opened 0644 would be world-readable; the new file's mode shows
 * the open(2) mode. An existing file is never overwritten.
 */
static void
test_card_png_mode(void **state)
{
	char dir[] = "/tmp/test_card_png.XXXXXX", path[PATH_MAX];
	struct stat st;
	mode_t old;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/card.png", dir);
	old = umask(0);
	assert_int_equal(kr_qr_write_png_mode(path, "AGQKDIVDUSS2", 4, 0600),
	    0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_err(kr_qr_write_png_mode(path, "AGQKDIVDUSS2", 4, 0600),
	    KR_ERR_EXISTS, "exists");
	umask(old);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base32_rfc4648),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_forgiving),
		cmocka_unit_test(test_every_single_typo_caught),
		cmocka_unit_test(test_swapped_lines_and_length),
		cmocka_unit_test(test_card_png_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
