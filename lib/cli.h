/*
 * cli.h - the command table shape shared by every folder's commands.
 *
 * A command is `int fn(struct kr_cli *cli, int argc, char **argv)` returning
 * a process exit code (KR_EXIT_*); argv[0] is the command's own name, so
 * getopt_long works unchanged (reset optind = 0 first; the dispatcher
 * does). Nested tables (`keyroom ca root`) use kr_cli_dispatch().
 */
#ifndef KR_CLI_H
#define KR_CLI_H

#include "err.h"

struct kr_cli {
	const char *state;	/* --state DIR, KEYROOM_STATE, or default */
	int json;		/* --json: machine-readable output on stdout */
	int quiet;		/* -q */
	int yes;		/* --yes: no confirmations (automation) */
	const char *prog;	/* "keyroom" */
};

struct kr_cmd {
	const char *name;
	int (*fn)(struct kr_cli *, int, char **);
	const char *args;	/* one-line argument synopsis */
	const char *summary;	/* one-line description */
};

/*
 * Run argv[0] of argv from table. Handles "help", "--help", "-h" and
 * "help SUB". `group` is the full name of the table ("keyroom ca").
 */
int kr_cli_dispatch(struct kr_cli *cli, const char *group,
    const struct kr_cmd *table, int argc, char **argv);

/* Print a table's usage to f. */
void kr_cli_usage(const char *group, const struct kr_cmd *table, void *f);

/*
 * Report a failure on stderr ("keyroom: <detail>: <kr_strerror(code)>"),
 * or as {"error":..., "code":...} on stdout under --json. Returns the exit
 * code for it.
 */
int kr_cli_fail(struct kr_cli *cli, int code);

/* "keyroom CMD: usage: ..." on stderr; returns KR_EXIT_USAGE. */
int kr_cli_usage_error(const char *cmd, const char *usage);

/* Print a JSON value (a json_t *, which this takes over; NULL prints
 * nothing) on stdout, one line. */
void kr_cli_json(void *o);

#endif
