/* cli.c - subcommand dispatch and error reporting. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "util.h"

void
kr_cli_usage(const char *group, const struct kr_cmd *t, void *fp)
{
	FILE *f = fp;

	fprintf(f, "usage: %s COMMAND [ARGS]\n\ncommands:\n", group);
	for (; t->name != NULL; t++)
		fprintf(f, "  %-12s %-34s %s\n", t->name,
		    t->args != NULL ? t->args : "", t->summary);
	fprintf(f, "\nRun '%s help COMMAND' or '%s COMMAND --help' for "
	    "details.\n", group, group);
}

static const struct kr_cmd *
lookup(const struct kr_cmd *t, const char *name)
{
	for (; t->name != NULL; t++)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

int
kr_cli_dispatch(struct kr_cli *cli, const char *group,
    const struct kr_cmd *table, int argc, char **argv)
{
	const struct kr_cmd *c;
	char *helpv[3];

	if (argc < 1) {
		kr_cli_usage(group, table, stderr);
		return KR_EXIT_USAGE;
	}
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
	    (strcmp(argv[0], "help") == 0 && argc == 1)) {
		kr_cli_usage(group, table, stdout);
		return KR_EXIT_OK;
	}
	if (strcmp(argv[0], "help") == 0) {
		if ((c = lookup(table, argv[1])) == NULL) {
			fprintf(stderr, "%s: unknown command '%s'\n", group,
			    argv[1]);
			return KR_EXIT_USAGE;
		}
		helpv[0] = argv[1];
		helpv[1] = (char *)"--help";
		helpv[2] = NULL;
		optind = 0;
		return c->fn(cli, 2, helpv);
	}
	if ((c = lookup(table, argv[0])) == NULL) {
		fprintf(stderr, "%s: unknown command '%s'\n", group, argv[0]);
		kr_cli_usage(group, table, stderr);
		return KR_EXIT_USAGE;
	}
	optind = 0;
	return c->fn(cli, argc, argv);
}

int
kr_cli_fail(struct kr_cli *cli, int code)
{
	const char *d = kr_err_detail();
	char clean[2048];

	if (cli != NULL && cli->json) {
		/* A detail cut mid-character must not lose the JSON. */
		(void)snprintf(clean, sizeof(clean), "%s", d);
		kr_utf8_sanitize(clean);
		kr_cli_json(json_pack("{s:s, s:s, s:i}", "error",
		    kr_strerror(code), "detail", clean, "code", code));
	}
	if (d[0] != '\0')
		fprintf(stderr, "keyroom: %s: %s\n", d, kr_strerror(code));
	else
		fprintf(stderr, "keyroom: %s\n", kr_strerror(code));
	return kr_exit_code(code);
}

int
kr_cli_usage_error(const char *cmd, const char *usage)
{
	fprintf(stderr, "usage: keyroom %s %s\n", cmd, usage);
	return KR_EXIT_USAGE;
}

void
kr_cli_json(void *v)
{
	json_t *o = v;
	char *d;

	if (o != NULL && (d = json_dumps(o, JSON_COMPACT |
	    JSON_ENCODE_ANY)) != NULL) {
		printf("%s\n", d);
		free(d);
	}
	json_decref(o);
}
