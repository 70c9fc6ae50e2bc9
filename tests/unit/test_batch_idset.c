/*
 * test_batch_idset.c - the batch's set of device ids seen in one run
 * (media/batch_req.c): every id added is found, no id not added is, a
 * second add is refused, growth from empty and from a reservation keeps
 * every id, and the memory is 16 octets a slot at load <= 1/2.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "media/batch_int.h"

#define N 50000

static void
id_of(unsigned i, char out[KR_MF_UNIQUEID_MAX + 1])
{
	snprintf(out, KR_MF_UNIQUEID_MAX + 1, "01%014x%02x", i * 2654435761u,
	    i & 0xff);
}

static void
fill_and_check(struct kr_batch_idset *s)
{
	char id[KR_MF_UNIQUEID_MAX + 1];
	unsigned i;

	for (i = 0; i < N; i++) {
		id_of(i, id);
		assert_int_equal(kr_batch_idset_add(s, id), 1);
	}
	assert_int_equal(s->n, N);
	assert_true(s->cap >= 2 * (size_t)N);
	for (i = 0; i < N; i++) {
		id_of(i, id);
		assert_true(kr_batch_idset_has(s, id));
		assert_int_equal(kr_batch_idset_add(s, id), 0);
	}
	for (i = N; i < 2 * N; i++) {
		id_of(i, id);
		assert_false(kr_batch_idset_has(s, id));
	}
	assert_false(kr_batch_idset_has(s, "0123"));
	assert_int_equal(s->n, N);
}

static void
test_grows_from_empty(void **st)
{
	struct kr_batch_idset s = { 0 };

	(void)st;
	assert_false(kr_batch_idset_has(&s, "01ab"));
	fill_and_check(&s);
	kr_batch_idset_free(&s);
}

static void
test_reserved(void **st)
{
	struct kr_batch_idset s = { 0 };
	size_t cap;

	(void)st;
	assert_int_equal(kr_batch_idset_reserve(&s, N), 0);
	cap = s.cap;
	assert_true(cap >= 2 * (size_t)N + 2 && cap < 4 * (size_t)N + 4);
	fill_and_check(&s);
	assert_int_equal(s.cap, cap);	/* no growth after the reservation */
	assert_int_equal(sizeof(*s.slot), 16);
	kr_batch_idset_free(&s);
}

static void
test_bad_ids(void **st)
{
	struct kr_batch_idset s = { 0 };
	char longid[KR_MF_UNIQUEID_MAX + 2];

	(void)st;
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = 0;
	assert_true(kr_batch_idset_add(&s, "") < 0);
	assert_true(kr_batch_idset_add(&s, longid) < 0);
	assert_int_equal(s.n, 0);
	kr_batch_idset_free(&s);
}

int
main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_grows_from_empty),
		cmocka_unit_test(test_reserved),
		cmocka_unit_test(test_bad_ids),
	};

	return cmocka_run_group_tests(t, NULL, NULL);
}
