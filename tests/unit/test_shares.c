/*
 * test_shares.c - quorum splitting and unlocking (ceremony/shares.c,
 * ceremony/qset.c): every subset of small sets, and every way a share is
 * refused, with the exact error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "ceremony/quorum.h"
#include "lib/util.h"

static const char *const names5[] = { "alice", "bob", "carol", "dave",
    "erin" };

static void
rand_secret(uint8_t s[KR_Q_SECRET_LEN])
{
	assert_int_equal(RAND_bytes(s, KR_Q_SECRET_LEN), 1);
}

static void
assert_err(int r, int code, const char *needle)
{
	if (r != code || strstr(kr_err_detail(), needle) == NULL)
		fail_msg("got %d '%s', want %d with '%s'", r, kr_err_detail(),
		    code, needle);
}

/* Try every subset of 1..n: those with >= m shares unlock, fewer never. */
static void
every_subset(unsigned m, unsigned n)
{
	struct kr_qset *set = NULL;
	struct kr_share *sh = NULL;
	struct kr_unlock *u = NULL;
	uint8_t secret[KR_Q_SECRET_LEN], got[KR_Q_SECRET_LEN];
	unsigned mask, i, cnt;
	int r;

	rand_secret(secret);
	assert_int_equal(kr_quorum_split(secret, "root", m, n, names5, &set,
	    &sh), 0);
	for (mask = 1; mask < (1u << n); mask++) {
		assert_int_equal(kr_unlock_new(set, &u), 0);
		for (i = 0, cnt = 0; i < n; i++)
			if (mask & (1u << i)) {
				assert_int_equal(kr_unlock_add(u, &sh[i], NULL,
				    0), 0);
				cnt++;
			}
		memset(got, 0xAA, sizeof(got));
		r = kr_unlock_combine(u, got);
		if (cnt >= m) {
			assert_int_equal(r, 0);
			assert_memory_equal(got, secret, sizeof(secret));
			assert_true(kr_unlock_ready(u));
		} else {
			assert_err(r, KR_ERR_QUORUM, "shares entered for share "
			    "set");
			assert_false(kr_unlock_ready(u));
			assert_memory_not_equal(got, secret, sizeof(secret));
		}
		kr_unlock_free(u);
		u = NULL;
	}
	kr_shares_free(sh, n);
	free(set);
}

static void
test_subsets_2_of_3(void **state)
{
	every_subset(2, 3);
}

static void
test_subsets_3_of_5(void **state)
{
	every_subset(3, 5);
}

static void
test_subsets_1_of_1_and_5_of_5(void **state)
{
	every_subset(1, 1);
	every_subset(5, 5);
}

/* M-1 shares carry no information: any secret is consistent with them.
 * We check the weaker, testable property: a wrong share at index k makes
 * the rebuilt secret differ, and the set's check catches it. */
static void
test_bad_args(void **state)
{
	struct kr_qset *set = NULL;
	struct kr_share *sh = NULL;
	uint8_t secret[KR_Q_SECRET_LEN] = { 0 };
	const char *dup[] = { "alice", "alice" };

	assert_err(kr_quorum_split(secret, "root", 0, 3, names5, &set, &sh),
	    KR_ERR_INVALID_ARGUMENT, "1 <= M <= N");
	assert_err(kr_quorum_split(secret, "root", 4, 3, names5, &set, &sh),
	    KR_ERR_INVALID_ARGUMENT, "quorum 4-of-3");
	assert_err(kr_quorum_split(secret, "root", 1, 33, names5, &set, &sh),
	    KR_ERR_INVALID_ARGUMENT, "N <= 32");
	assert_err(kr_quorum_split(secret, "root", 1, 2, dup, &set, &sh),
	    KR_ERR_INVALID_ARGUMENT, "custodian 'alice' listed twice");
	assert_err(kr_quorum_split(secret, "", 1, 2, names5, &set, &sh),
	    KR_ERR_INVALID_ARGUMENT, "label is empty");
	assert_null(set);
	assert_null(sh);
}

struct fixture {
	uint8_t secret[KR_Q_SECRET_LEN];
	struct kr_qset *root, *issuing;
	struct kr_share *rs, *is;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	rand_secret(f->secret);
	if (kr_quorum_split(f->secret, "root", 2, 3, names5, &f->root,
	    &f->rs) != 0 || kr_quorum_split(f->secret, "issuing", 2, 3,
	    names5 + 2, &f->issuing, &f->is) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	kr_shares_free(f->rs, 3);
	kr_shares_free(f->is, 3);
	free(f->root);
	free(f->issuing);
	free(f);
	return 0;
}

static void
test_duplicate_refused(void **state)
{
	struct fixture *f = *state;
	struct kr_unlock *u = NULL;
	uint8_t got[KR_Q_SECRET_LEN];
	char idx[64];

	assert_int_equal(kr_unlock_new(f->root, &u), 0);
	assert_int_equal(kr_unlock_add(u, &f->rs[1], NULL, 0), 0);
	assert_err(kr_unlock_add(u, &f->rs[1], NULL, 0), KR_ERR_QUORUM,
	    "share 2 of share set");
	assert_true(strstr(kr_err_detail(), "already entered") != NULL);
	assert_int_equal(kr_unlock_count(u), 1);
	/* The duplicate did not count towards M. */
	assert_err(kr_unlock_combine(u, got), KR_ERR_QUORUM,
	    "1 of 2 shares entered");
	assert_int_equal(kr_unlock_add(u, &f->rs[2], NULL, 0), 0);
	assert_int_equal(kr_unlock_indices(u, idx, sizeof(idx)), 0);
	assert_string_equal(idx, "2,3");
	assert_int_equal(kr_unlock_combine(u, got), 0);
	assert_memory_equal(got, f->secret, sizeof(got));
	kr_unlock_free(u);
}

static void
test_foreign_share_named(void **state)
{
	struct fixture *f = *state;
	const struct kr_qset *known[2] = { f->root, f->issuing };
	struct kr_unlock *u = NULL;
	char want[128], id[KR_Q_ID_HEX];

	assert_int_equal(kr_unlock_new(f->root, &u), 0);
	kr_qset_id_hex(f->issuing->id, id);
	assert_int_equal(kr_snprintf(want, sizeof(want), "share 1 belongs to "
	    "share set %s (issuing), not ", id), 0);
	assert_err(kr_unlock_add(u, &f->is[0], known, 2), KR_ERR_QUORUM,
	    want);
	/* Unknown to the appliance at all. */
	assert_int_equal(kr_snprintf(want, sizeof(want), "share 1 belongs to "
	    "unknown share set %s", id), 0);
	assert_err(kr_unlock_add(u, &f->is[0], known, 1), KR_ERR_QUORUM,
	    want);
	assert_int_equal(kr_unlock_count(u), 0);
	kr_unlock_free(u);
}

static void
test_stale_share_named(void **state)
{
	struct fixture *f = *state;
	struct kr_qset *old = NULL, *new = NULL;
	struct kr_share *os = NULL, *ns = NULL;
	const struct kr_qset *known[2];
	struct kr_unlock *u = NULL;
	char want[160], oid[KR_Q_ID_HEX], nid[KR_Q_ID_HEX];

	assert_int_equal(kr_quorum_split(f->secret, "root", 2, 3, names5,
	    &old, &os), 0);
	assert_int_equal(kr_quorum_split(f->secret, "root", 3, 4, names5 + 1,
	    &new, &ns), 0);
	old->retired = 1;
	memcpy(old->successor, new->id, KR_Q_ID_LEN);
	memcpy(old->retired_at, "2026-11-25T09:00:00Z", 21);
	known[0] = old;
	known[1] = new;
	kr_qset_id_hex(old->id, oid);
	kr_qset_id_hex(new->id, nid);
	assert_int_equal(kr_unlock_new(new, &u), 0);
	assert_int_equal(kr_snprintf(want, sizeof(want), "share 3 belongs to "
	    "share set %s (root), which was retired on 2026-11-25T09:00:00Z "
	    "(replaced by %s)", oid, nid), 0);
	assert_err(kr_unlock_add(u, &os[2], known, 2), KR_ERR_QUORUM, want);
	kr_unlock_free(u);
	/* Unlocking the retired set itself is refused too. */
	assert_int_equal(kr_unlock_new(old, &u), 0);
	assert_err(kr_unlock_add(u, &os[0], known, 2), KR_ERR_QUORUM,
	    "was retired on");
	kr_unlock_free(u);
	kr_shares_free(os, 3);
	kr_shares_free(ns, 4);
	free(old);
	free(new);
}

static void
test_forged_share(void **state)
{
	struct fixture *f = *state;
	struct kr_unlock *u = NULL;
	struct kr_share s;

	assert_int_equal(kr_unlock_new(f->root, &u), 0);
	s = f->rs[0];
	s.bytes[5] ^= 0x01;
	assert_err(kr_unlock_add(u, &s, NULL, 0), KR_ERR_QUORUM,
	    "share 1 of share set");
	assert_true(strstr(kr_err_detail(), "does not match its commitment")
	    != NULL);
	/* Right bytes, claimed at another index. */
	s = f->rs[0];
	s.index = 2;
	assert_err(kr_unlock_add(u, &s, NULL, 0), KR_ERR_QUORUM,
	    "does not match its commitment");
	s.index = 4;
	assert_err(kr_unlock_add(u, &s, NULL, 0), KR_ERR_QUORUM,
	    "share index 4 outside 1..3");
	s = f->rs[0];
	s.m = 3;
	assert_err(kr_unlock_add(u, &s, NULL, 0), KR_ERR_QUORUM,
	    "says 3-of-3 but share set");
	assert_int_equal(kr_unlock_count(u), 0);
	kr_unlock_free(u);
}

static void
test_secret_check(void **state)
{
	struct fixture *f = *state;
	struct kr_unlock *u = NULL;
	struct kr_qset tampered;
	uint8_t got[KR_Q_SECRET_LEN];

	/* A set whose stored check was altered refuses the rebuilt PIN. */
	tampered = *f->root;
	tampered.secret_check[0] ^= 1;
	assert_int_equal(kr_unlock_new(&tampered, &u), 0);
	assert_int_equal(kr_unlock_add(u, &f->rs[0], NULL, 0), 0);
	assert_int_equal(kr_unlock_add(u, &f->rs[2], NULL, 0), 0);
	memset(got, 0x55, sizeof(got));
	assert_err(kr_unlock_combine(u, got), KR_ERR_QUORUM,
	    "does not match the set's check");
	for (size_t i = 0; i < sizeof(got); i++)
		assert_int_equal(got[i], 0);
	kr_unlock_free(u);
}

static void
test_oob(void **state)
{
	struct kr_qset *set = NULL;
	struct kr_unlock *u = NULL;
	struct fixture *f = *state;
	uint8_t got[KR_Q_SECRET_LEN];

	assert_int_equal(kr_quorum_oob_set("root", &set), 0);
	assert_true(set->oob);
	assert_int_equal(kr_unlock_new(set, &u), 0);
	assert_true(kr_unlock_ready(u));
	assert_err(kr_unlock_add(u, &f->rs[0], NULL, 0), KR_ERR_QUORUM,
	    "authenticated out of band and takes no shares");
	assert_err(kr_unlock_combine(u, got), KR_ERR_QUORUM,
	    "authenticated out of band");
	kr_unlock_free(u);
	free(set);
}

static void
test_pin_text(void **state)
{
	uint8_t s[KR_Q_SECRET_LEN];
	char pin[KR_Q_PIN_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof(s); i++)
		s[i] = (uint8_t)(i * 7 + 1);
	kr_quorum_pin_text(s, pin);
	assert_int_equal(strlen(pin), 64);
	assert_memory_equal(pin, "01080f161d242b32", 16);
}

static void
test_json_round_trip(void **state)
{
	struct fixture *f = *state;
	struct kr_qset *back = NULL;
	json_t *j = NULL;
	struct kr_unlock *u = NULL;
	uint8_t got[KR_Q_SECRET_LEN];

	f->root->retired = 1;
	memcpy(f->root->retired_at, "2026-11-25T09:00:00Z", 21);
	assert_int_equal(kr_qset_to_json(f->root, &j), 0);
	assert_int_equal(kr_qset_from_json(j, &back), 0);
	assert_memory_equal(back, f->root, sizeof(*back));
	f->root->retired = 0;
	back->retired = 0;
	/* The restored set unlocks with the original shares. */
	assert_int_equal(kr_unlock_new(back, &u), 0);
	assert_int_equal(kr_unlock_add(u, &f->rs[0], NULL, 0), 0);
	assert_int_equal(kr_unlock_add(u, &f->rs[1], NULL, 0), 0);
	assert_int_equal(kr_unlock_combine(u, got), 0);
	assert_memory_equal(got, f->secret, sizeof(got));
	kr_unlock_free(u);
	free(back);
	back = NULL;
	/* Strict: an unknown key is refused. */
	json_object_set_new(j, "extra", json_true());
	assert_err(kr_qset_from_json(j, &back), KR_ERR_FORMAT,
	    "unknown key 'extra'");
	json_object_del(j, "extra");
	json_object_set_new(j, "m", json_integer(9));
	assert_err(kr_qset_from_json(j, &back), KR_ERR_FORMAT, "bad m/n");
	assert_null(back);
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subsets_2_of_3),
		cmocka_unit_test(test_subsets_3_of_5),
		cmocka_unit_test(test_subsets_1_of_1_and_5_of_5),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test_setup_teardown(test_duplicate_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_foreign_share_named, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stale_share_named, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_forged_share, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_secret_check, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_oob, setup, teardown),
		cmocka_unit_test(test_pin_text),
		cmocka_unit_test_setup_teardown(test_json_round_trip, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
