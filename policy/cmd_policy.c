/*
 * cmd_policy.c - `keyroom policy check FILE`: load the policy strictly
 * (every error named with its place in the file), then print what it
 * pins and the lint warnings.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "lib/cli.h"
#include "lib/commands.h"
#include "policy/policy.h"

static const char check_usage[] =
    "usage: keyroom [--json] policy check FILE\n\n"
    "Check a policy file: strict YAML (unknown keys, duplicate keys,\n"
    "anchors are errors), every pinned signer and device root file exists\n"
    "and parses (signers: P-256 with a subject key identifier; roots:\n"
    "self-signed CA), references between parts, profiles and manufacturers\n"
    "resolve. Warnings (expired signers, parts nobody may build, ...) do\n"
    "not fail the check. The digest covers the file and every certificate\n"
    "file it reads: the install-policy ceremony logs it, and a batch runs\n"
    "only under the digest last installed (keyroom-policy(5)).\n\n"
    "Exit: 0 valid, 1 invalid (the message names the place), 2 usage.\n";

static int
cmd_check(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_policy *p = NULL;
	json_t *lint = NULL, *e;
	size_t i;
	int r;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(check_usage, stdout);
		return KR_EXIT_OK;
	}
	if (argc != 2)
		return kr_cli_usage_error("policy check", "FILE");
	if ((r = kr_policy_load(argv[1], &p)) != 0 ||
	    (r = kr_policy_lint(p, &lint)) != 0) {
		r = kr_cli_fail(cli, r);
		goto out;
	}
	if (cli->json) {
		json_object_set_new(lint, "file", json_string(argv[1]));
		json_object_set_new(lint, "valid", json_true());
		json_dumpf(lint, stdout, JSON_INDENT(2));
		printf("\n");
	} else {
		printf("%s: valid\n", argv[1]);
		printf("  digest %s\n", json_string_value(json_object_get(lint,
		    "digest")));
		json_array_foreach(json_object_get(lint, "signers"), i, e)
			printf("  signer %s  %s  until %s%s\n",
			    json_string_value(json_object_get(e, "sha256")),
			    json_string_value(json_object_get(e, "subject")),
			    json_string_value(json_object_get(e,
			    "not_after")), json_is_true(json_object_get(e,
			    "expired")) ? " (expired)" : "");
		json_array_foreach(json_object_get(lint, "device_roots"), i, e)
			printf("  device root %s\n", json_string_value(
			    json_object_get(e, "subject")));
		printf("  %lld parts, %lld manufacturers, %lld profiles, "
		    "subject \"%s\"\n",
		    json_integer_value(json_object_get(lint, "parts")),
		    json_integer_value(json_object_get(lint,
		    "manufacturers")),
		    json_integer_value(json_object_get(lint, "profiles")),
		    json_string_value(json_object_get(lint, "subject")));
		json_array_foreach(json_object_get(lint, "warnings"), i, e)
			fprintf(stderr, "keyroom: warning: %s: %s\n", argv[1],
			    json_string_value(e));
	}
	r = KR_EXIT_OK;
out:
	json_decref(lint);
	kr_policy_free(p);
	return r;
}

static const struct kr_cmd policy_cmds[] = {
	{ "check", cmd_check, "FILE", "check a policy file and lint it" },
	{ NULL, NULL, NULL, NULL },
};

int
cmd_policy(struct kr_cli *cli, int argc, char **argv)
{
	return kr_cli_dispatch(cli, "keyroom policy", policy_cmds, argc - 1,
	    argv + 1);
}
