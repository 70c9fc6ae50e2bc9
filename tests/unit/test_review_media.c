/*
 * test_review_media.c - defects found in review of the manifest reader
 * (media/manifest.c, media/jws.c) and the policy decision: forged or
 * odd input that used to be mishandled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "lib/util.h"
#include "media/manifest.h"

/* One flattened JWS with the given protected header JSON. */
static char *
entry_with_header(const char *hdr)
{
	char ph[1024], *out;
	json_t *a;

	assert_int_equal(kr_jws_b64url_encode((const uint8_t *)hdr,
	    strlen(hdr), ph, sizeof(ph)), 0);
	a = json_pack("[{s:s, s:s, s:{s:s}, s:s}]", "payload", "e30",
	    "protected", ph, "header", "uniqueId", "0123456789abcdef01",
	    "signature", "AAAA");
	assert_non_null(a);
	out = json_dumps(a, 0);
	json_decref(a);
	assert_non_null(out);
	return out;
}

/*
 * Defect: refusal messages cut attacker-chosen header strings with
 * "%.16s", splitting a UTF-8 character; the invalid message then could
 * not go into the JSON report, so one forged entry aborted the whole
 * `manifest verify/import` as "out of memory" instead of being refused
 * with its reason.
 */
static void
test_manifest_message_utf8(void **state)
{
	static const char *const hdrs[] = {
		/* alg: 1 + 2n bytes, cut at 16 */
		"{\"alg\":\"a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		"\xc3\xa9\xc3\xa9\xc3\xa9\"}",
		/* unknown member name, cut at 32 */
		"{\"alg\":\"ES256\",\"x\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
		"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
		"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\":\"v\"}",
	};
	static const enum kr_mf_reason want[] = { KR_MF_ALG,
	    KR_MF_FORBIDDEN_HEADER };
	struct kr_mf_trust t;
	struct kr_manifest *m = NULL;
	json_t *s;
	char *text;
	size_t i;

	(void)state;
	memset(&t, 0, sizeof(t));
	for (i = 0; i < KR_ARRAY_SIZE(hdrs); i++) {
		text = entry_with_header(hdrs[i]);
		assert_int_equal(kr_manifest_parse(&t, "m.json",
		    (const uint8_t *)text, strlen(text), &m), 0);
		free(text);
		assert_int_equal(m->n, 1);
		assert_int_equal(m->r[0].reason, want[i]);
		/* The message is valid UTF-8: it goes into a JSON report. */
		s = json_string(m->r[0].message);
		if (s == NULL)
			fail_msg("message %zu is not UTF-8: %s", i,
			    m->r[0].message);
		json_decref(s);
		kr_manifest_free(m);
		m = NULL;
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_message_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
