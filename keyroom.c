/*
 * keyroom.c - the command line entry: global options and the table of
 * top-level commands. Each folder owns its commands (ca/cmd_ca.c, ...).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cli.h"
#include "lib/util.h"
#include "lib/version.h"
#include "lib/commands.h"

static const struct kr_cmd commands[] = {
#define KR_COMMAND(name, fn, args, summary) { name, fn, args, summary },
#include "lib/commands.def"
#undef KR_COMMAND
	{ NULL, NULL, NULL, NULL },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "keyroom %s - offline CA signing appliance\n\n"
	    "usage: keyroom [--state DIR] [--json] [-q] [--yes] COMMAND "
	    "[ARGS]\n\n"
	    "global options:\n"
	    "  --state DIR   appliance state directory (default: "
	    "$KEYROOM_STATE, else ./keyroom-state)\n"
	    "  --json        machine-readable output on stdout\n"
	    "  -q, --quiet   no progress or chatter on stderr\n"
	    "  --yes         answer yes to confirmations (automation)\n"
	    "  --version     print the version\n\n", KR_VERSION);
	kr_cli_usage("keyroom", commands, f);
	fprintf(f, "\nexit codes: 0 success (batch: all signed), 1 error "
	    "(nothing changed), 2 usage,\n"
	    "  3 batch: some rejected, 4 batch: nothing signed, "
	    "5 audit log failed verification\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "yes", no_argument, NULL, 'y' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kr_cli cli;
	int ch;

	kr_harden_process();
	memset(&cli, 0, sizeof(cli));
	cli.prog = "keyroom";
	if ((cli.state = getenv("KEYROOM_STATE")) == NULL)
		cli.state = "keyroom-state";
	/* '+': stop at the first non-option, the command. */
	while ((ch = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			cli.state = optarg;
			break;
		case 'j':
			cli.json = 1;
			break;
		case 'q':
			cli.quiet = 1;
			break;
		case 'y':
			cli.yes = 1;
			break;
		case 'V':
			printf("keyroom %s\n", KR_VERSION);
			return KR_EXIT_OK;
		case 'h':
			usage(stdout);
			return KR_EXIT_OK;
		default:
			usage(stderr);
			return KR_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return KR_EXIT_USAGE;
	}
	if (strcmp(argv[0], "help") == 0 && argc == 1) {
		usage(stdout);
		return KR_EXIT_OK;
	}
	return kr_cli_dispatch(&cli, "keyroom", commands, argc, argv);
}
