/*
 * fuzz_policy.c - libFuzzer harness for the policy parser: strict YAML,
 * key checks, inline PEM certificates, references, subject template, lint.
 * No base directory, so file: entries are refused without any I/O.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/util.h"
#include "media/manifest.h"
#include "policy/policy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kr_policy *p = NULL;
	struct kr_device d;
	json_t *lint = NULL;
	char subj[KR_POLICY_SUBJECT_MAX];

	if (size > 64 * 1024)
		return 0;
	if (kr_policy_parse("fuzz.yaml", (const char *)data, size, NULL,
	    &p) != 0)
		return 0;
	if (kr_policy_lint(p, &lint) == 0)
		json_decref(lint);
	memset(&d, 0, sizeof(d));
	strcpy(d.unique_id, "0123aabbccddeeff01");
	strcpy(d.part_number, "ATECC608C-TNGTLSU-B");
	strcpy(d.model, "ATECC608C");
	(void)kr_policy_subject(p, &d, subj, sizeof(subj));
	(void)kr_policy_identity_kid(p, d.part_number);
	(void)kr_policy_profile(p, "cm1", NULL);
	kr_policy_free(p);
	return 0;
}
