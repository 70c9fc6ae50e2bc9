/*
 * test_ceremony_words.c - PGP word list known answers (ceremony/words.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ceremony/words.h"
#include "lib/util.h"

static void
test_known_answer(void **state)
{
	/* The example fingerprint of the PGP word list's documentation. */
	static const char hex[] = "e58294f2e9a227486e8b061b31cc528fd7fa3f19";
	static const char want[] = "topmost Istanbul Pluto vagabond "
	    "treadmill Pacific brackish dictator goldfish Medusa afflict "
	    "bravado chatter revolver Dupont midsummer stopwatch whimsical "
	    "cowbell bottomless";
	uint8_t b[20], back[20];
	char out[KR_WORDS_BUF(20)];

	assert_int_equal(kr_unhex(hex, b, sizeof(b)), 0);
	assert_int_equal(kr_words(b, sizeof(b), out, sizeof(out)), 0);
	assert_string_equal(out, want);
	assert_int_equal(kr_words_decode(want, back, sizeof(back)), 0);
	assert_memory_equal(back, b, sizeof(b));
	assert_int_equal(kr_words_decode("TOPMOST istanbul, Pluto-vagabond "
	    "treadmill Pacific brackish dictator goldfish Medusa afflict "
	    "bravado chatter revolver Dupont midsummer stopwatch whimsical "
	    "cowbell\nbottomless", back, sizeof(back)), 0);
	assert_memory_equal(back, b, sizeof(b));
}

static void
test_known_answer_2(void **state)
{
	/* A second published example (Encode::Wordlist::PGP synopsis). */
	static const char hex[] = "41559711308f2a21b9d5072d621958afcb50b5f9";
	static const char want[] = "cranky equipment preshrunk Babylon "
	    "chairlift midsummer brickyard Camelot sentence specialist ahead "
	    "clergyman flagpole bottomless endorse pharmacy spheroid embezzle "
	    "scorecard Waterloo";
	uint8_t b[20];
	char out[KR_WORDS_BUF(20)];

	assert_int_equal(kr_unhex(hex, b, sizeof(b)), 0);
	assert_int_equal(kr_words(b, sizeof(b), out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void
test_ends_of_lists(void **state)
{
	assert_string_equal(kr_word(0x00, 0), "aardvark");
	assert_string_equal(kr_word(0x00, 1), "adroitness");
	assert_string_equal(kr_word(0xff, 0), "Zulu");
	assert_string_equal(kr_word(0xff, 1), "Yucatan");
	assert_string_equal(kr_word(0x17, 0), "banjo");
}

static void
test_all_distinct_round_trip(void **state)
{
	uint8_t b[256], back[256];
	char out[KR_WORDS_BUF(256)];
	size_t i, j;

	for (i = 0; i < 256; i++)
		b[i] = (uint8_t)i;
	assert_int_equal(kr_words(b, 256, out, sizeof(out)), 0);
	assert_int_equal(kr_words_decode(out, back, 256), 0);
	assert_memory_equal(back, b, 256);
	/* No word appears in both lists or twice in one. */
	for (i = 0; i < 512; i++)
		for (j = i + 1; j < 512; j++)
			assert_string_not_equal(kr_word((uint8_t)(i % 256),
			    i / 256), kr_word((uint8_t)(j % 256), j / 256));
}

static void
test_sha256_words(void **state)
{
	uint8_t h[32];
	char out[KR_WORDS_BUF(32)];

	/* SHA-256("abc") = ba7816bf...: 32 words, alternating lists. */
	kr_sha256("abc", 3, h);
	assert_int_equal(kr_words(h, 32, out, sizeof(out)), 0);
	assert_memory_equal(out, "shadow indigo ", 14);
	assert_int_equal(kr_words(h, 32, out, 20), KR_ERR_TOO_LARGE);
}

static void
test_decode_errors(void **state)
{
	uint8_t b[3];

	assert_int_equal(kr_words_decode("topmost Pluto vagabond", b, 3),
	    KR_ERR_FORMAT);
	assert_non_null(strstr(kr_err_detail(), "word 2 'Pluto' belongs at "
	    "an even position: a word was dropped"));
	assert_int_equal(kr_words_decode("topmost Istanbul zebra", b, 3),
	    KR_ERR_FORMAT);
	assert_non_null(strstr(kr_err_detail(), "word 3 'zebra' is not in"));
	assert_int_equal(kr_words_decode("topmost Istanbul", b, 3),
	    KR_ERR_FORMAT);
	assert_non_null(strstr(kr_err_detail(), "2 words, want 3"));
	assert_int_equal(kr_words_decode("topmost Istanbul Pluto vagabond",
	    b, 3), KR_ERR_FORMAT);
	assert_non_null(strstr(kr_err_detail(), "more than 3 words"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_known_answer_2),
		cmocka_unit_test(test_ends_of_lists),
		cmocka_unit_test(test_all_distinct_round_trip),
		cmocka_unit_test(test_sha256_words),
		cmocka_unit_test(test_decode_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
