/*
 * cmd_ceremony.c - `keyroom ceremony ...` and `keyroom quorum ...`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "audit/qr.h"
#include "ceremony/card.h"
#include "ceremony/ceremony.h"
#include "ceremony/qstore.h"
#include "ceremony/session.h"
#include "ceremony/words.h"
#include "lib/commands.h"
#include "lib/util.h"

static int
wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

static const char run_usage[] =
    "usage: keyroom ceremony run SCRIPT [--expect-sha256 HEX] [--rehearse]\n"
    "         [--shares [ROLE=]SPEC]... [--media DIR] [--cards DIR]\n"
    "         [--init-pin SPEC] [--no-prompt]\n\n"
    "Run a ceremony script step by step: print its SHA-256 as words, refuse\n"
    "it if --expect-sha256 differs, show and confirm each step (--yes: no\n"
    "confirmations), execute it, show fingerprints as words and QR codes,\n"
    "log it, and write a transcript to the media directory.\n\n"
    "  --expect-sha256 HEX  the reviewed script's hash; any other is refused\n"
    "  --rehearse           run against a throwaway state and token store\n"
    "  --shares [ROLE=]SPEC a share card: file:PATH, fd:N, env:NAME or tty;\n"
    "                       ROLE (root, issuing) limits it to that quorum.\n"
    "                       Missing shares are asked for on the terminal.\n"
    "  --media DIR          transcript and exported certificates go here\n"
    "  --cards DIR          write new share cards to DIR (0600 files)\n"
    "                       instead of printing them\n"
    "  --init-pin SPEC      the PIN given to keyroom init (genesis takes the\n"
    "                       tokens over with random PINs)\n"
    "  --no-prompt          never ask for shares on the terminal\n\n"
    "Exit: 0 done, 1 failed (the failing step is logged; a refused share or\n"
    "hash changes nothing), 2 usage.\n";

static int
cer_run(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "expect-sha256", required_argument, NULL, 'e' },
		{ "rehearse", no_argument, NULL, 'r' },
		{ "shares", required_argument, NULL, 's' },
		{ "media", required_argument, NULL, 'm' },
		{ "cards", required_argument, NULL, 'c' },
		{ "init-pin", required_argument, NULL, 'i' },
		{ "no-prompt", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kr_ceremony_opts *o;
	int ch, r, noprompt = 0;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return kr_cli_fail(cli, kr_errf(KR_ERR_ALLOC, "options"));
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'e':
			o->expect_sha256 = optarg;
			break;
		case 'r':
			o->rehearse = 1;
			break;
		case 's':
			if ((r = kr_shares_add_arg(&o->shares, optarg)) != 0) {
				free(o);
				return kr_cli_fail(cli, r);
			}
			break;
		case 'm':
			o->media = optarg;
			break;
		case 'c':
			o->cards_dir = optarg;
			break;
		case 'i':
			o->init_pin = optarg;
			break;
		case 'n':
			noprompt = 1;
			break;
		case 'h':
			fputs(run_usage, stdout);
			free(o);
			return KR_EXIT_OK;
		default:
			free(o);
			return kr_cli_usage_error("ceremony run", "see keyroom "
			    "ceremony run --help");
		}
	}
	if (optind + 1 != argc) {
		free(o);
		return kr_cli_usage_error("ceremony run", "see keyroom "
		    "ceremony run --help");
	}
	if (o->expect_sha256 != NULL && (strlen(o->expect_sha256) != 64 ||
	    strspn(o->expect_sha256, "0123456789abcdefABCDEF") != 64)) {
		free(o);
		return kr_cli_fail(cli, kr_errf(KR_ERR_INVALID_ARGUMENT,
		    "--expect-sha256 wants 64 hex digits"));
	}
	o->script_path = argv[optind];
	o->shares.interactive = !noprompt && isatty(0);
	r = kr_ceremony_run(cli, o);
	free(o);
	return r == 0 ? KR_EXIT_OK : kr_cli_fail(cli, r);
}

static const char check_usage[] =
    "usage: keyroom ceremony check SCRIPT [--expect-sha256 HEX]\n\n"
    "Parse a script strictly and print its id, SHA-256 (hex and words) and\n"
    "steps, without touching the appliance. --json for a machine form.\n"
    "Exit: 0 valid (and hash matches), 1 invalid or hash differs, 2 usage.\n";

static int
cer_check(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "expect-sha256", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kr_script *s = NULL;
	const char *want = NULL;
	char hex[65], words[KR_WORDS_BUF(32)];
	json_t *j, *steps;
	size_t i;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'e')
			want = optarg;
		else if (ch == 'h') {
			fputs(check_usage, stdout);
			return KR_EXIT_OK;
		} else
			return kr_cli_usage_error("ceremony check",
			    check_usage);
	}
	if (optind + 1 != argc)
		return kr_cli_usage_error("ceremony check", check_usage);
	if ((r = kr_script_load(argv[optind], &s)) != 0)
		return kr_cli_fail(cli, r);
	kr_hex(s->sha256, 32, hex);
	if ((r = kr_words(s->sha256, 32, words, sizeof(words))) != 0)
		goto out;
	if (want != NULL && strcasecmp(want, hex) != 0) {
		r = kr_errf(KR_ERR_POLICY, "%s: SHA-256 %s differs from "
		    "--expect-sha256 %s: this is not the reviewed script",
		    argv[optind], hex, want);
		goto out;
	}
	if (cli->json) {
		steps = json_array();
		for (i = 0; i < s->nstep; i++)
			json_array_append_new(steps, json_string(
			    s->step[i].def->name));
		j = json_pack("{s:s, s:s, s:s, s:s, s:o}", "ceremony", s->id,
		    "purpose", s->purpose, "sha256", hex, "words", words,
		    "steps", steps);
		if (j != NULL) {
			char *d = json_dumps(j, JSON_INDENT(2));

			if (d != NULL)
				printf("%s\n", d);
			free(d);
			json_decref(j);
		}
	} else {
		printf("ceremony %s: %s\nSHA-256 %s\n", s->id, s->purpose, hex);
		if ((r = kr_words_print(stdout, "  ", s->sha256, 32)) != 0)
			goto out;
		for (i = 0; i < s->nstep; i++)
			printf("  %2zu. %s\n", i + 1, s->step[i].def->name);
	}
	r = 0;
 out:
	kr_script_free(s);
	return r == 0 ? KR_EXIT_OK : kr_cli_fail(cli, r);
}

static int
cer_steps(struct kr_cli *cli, int argc, char **argv)
{
	size_t i, k;

	if (wants_help(argc, argv)) {
		printf("usage: keyroom ceremony steps\n\nList the step types a "
		    "ceremony script may use, with their parameters.\n");
		return KR_EXIT_OK;
	}
	if (cli->json) {
		json_t *a = json_array(), *o, *ks;

		for (i = 0; a != NULL && i < KR_STEP__COUNT; i++) {
			o = json_pack("{s:s, s:s, s:[]}", "step",
			    kr_step_types[i].name, "summary",
			    kr_step_types[i].summary, "keys");
			ks = json_object_get(o, "keys");
			for (k = 0; ks != NULL && kr_step_types[i].keys[k] !=
			    NULL; k++)
				json_array_append_new(ks, json_string(
				    kr_step_types[i].keys[k]));
			json_array_append_new(a, o);
		}
		kr_cli_json(a);
		return KR_EXIT_OK;
	}
	for (i = 0; i < KR_STEP__COUNT; i++) {
		const struct kr_step_type_def *d = &kr_step_types[i];

		printf("%-20s %s\n", d->name, d->summary);
		for (k = 0; d->keys[k] != NULL; k++)
			printf("%-20s   %s\n", "", d->keys[k]);
	}
	return KR_EXIT_OK;
}

static const char words_usage[] =
    "usage: keyroom ceremony words (HEX | --file PATH)\n\n"
    "Print bytes (hex) or a file's SHA-256 as PGP words to read aloud.\n";

static int
cer_words(struct kr_cli *cli, int argc, char **argv)
{
	uint8_t buf[64], *file = NULL, h[32];
	size_t len, flen = 0;
	int r;

	if (wants_help(argc, argv)) {
		fputs(words_usage, stdout);
		return KR_EXIT_OK;
	}
	if (argc == 3 && strcmp(argv[1], "--file") == 0) {
		if ((r = kr_read_file(argv[2], 64 * 1024 * 1024, &file,
		    &flen)) != 0)
			return kr_cli_fail(cli, r);
		kr_sha256(file, flen, h);
		free(file);
		memcpy(buf, h, 32);
		len = 32;
	} else if (argc == 2) {
		len = strlen(argv[1]) / 2;
		if (len == 0 || len > sizeof(buf) || strlen(argv[1]) % 2 ||
		    kr_unhex(argv[1], buf, len) != 0)
			return kr_cli_fail(cli, kr_errf(KR_ERR_INVALID_ARGUMENT,
			    "want 1..64 bytes of hex"));
	} else
		return kr_cli_usage_error("ceremony words", words_usage);
	if (cli->json) {
		char hex[2 * sizeof(buf) + 1], words[KR_WORDS_BUF(sizeof(buf))];

		kr_hex(buf, len, hex);
		if ((r = kr_words(buf, len, words, sizeof(words))) != 0)
			return kr_cli_fail(cli, r);
		kr_cli_json(json_pack("{s:s, s:s}", "hex", hex, "words",
		    words));
		return KR_EXIT_OK;
	}
	if ((r = kr_words_print(stdout, "", buf, len)) != 0)
		return kr_cli_fail(cli, r);
	return KR_EXIT_OK;
}

static const struct kr_cmd ceremony_cmds[] = {
	{ "run", cer_run, "SCRIPT [options]", "run a ceremony script" },
	{ "check", cer_check, "SCRIPT [--expect-sha256 HEX]",
	    "check a script and print its hash as words" },
	{ "steps", cer_steps, "", "list the step types" },
	{ "words", cer_words, "HEX | --file PATH", "bytes as words" },
	{ NULL, NULL, NULL, NULL },
};

int
cmd_ceremony(struct kr_cli *cli, int argc, char **argv)
{
	return kr_cli_dispatch(cli, "keyroom ceremony", ceremony_cmds,
	    argc - 1, argv + 1);
}

/* ------------------------------------------------------------ quorum */

static int
open_log_ro(struct kr_cli *cli, struct kr_log **log)
{
	char path[4096];
	int r;

	if ((r = kr_snprintf(path, sizeof(path), "%s/log", cli->state)) != 0)
		return r;
	return kr_log_open(path, KR_LOG_RDONLY, log);
}

static void
print_set(const struct kr_qset *s)
{
	char id[KR_Q_ID_HEX], succ[KR_Q_ID_HEX];
	unsigned i;

	kr_qset_id_hex(s->id, id);
	printf("share set %s  token role %s  ", id, s->label);
	if (s->oob)
		printf("authenticated out of band");
	else
		printf("%u of %u", s->m, s->n);
	printf("  created %s", s->created);
	if (s->pending && !s->retired)
		printf("  PENDING (an interrupted PIN change: settled by the "
		    "next unlock)");
	if (s->retired) {
		kr_qset_id_hex(s->successor, succ);
		printf("  RETIRED %s (replaced by %s)", s->retired_at, succ);
	}
	printf("\n");
	for (i = 0; i < s->n; i++)
		printf("  %2u  %s\n", i + 1, s->member[i].name);
}

static const char qlist_usage[] =
    "usage: keyroom quorum list\n\n"
    "List every share set the appliance knows (active and retired), with\n"
    "custodians. --json prints the stored sets (commitments, no secrets).\n";

static int
q_list(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_log *log = NULL;
	struct kr_qset **all = NULL;
	MDB_txn *txn = NULL;
	size_t n = 0, i;
	json_t *arr = NULL, *j;
	int r;

	if (wants_help(argc, argv)) {
		fputs(qlist_usage, stdout);
		return KR_EXIT_OK;
	}
	if (argc != 1)
		return kr_cli_usage_error("quorum list", qlist_usage);
	if ((r = open_log_ro(cli, &log)) != 0 ||
	    (r = kr_log_read_begin(log, &txn)) != 0 ||
	    (r = kr_qstore_all(log, txn, &all, &n)) != 0)
		goto out;
	if (cli->json) {
		arr = json_array();
		for (i = 0; i < n; i++)
			if (kr_qset_to_json(all[i], &j) == 0)
				json_array_append_new(arr, j);
		{
			char *d = json_dumps(arr, JSON_INDENT(2));

			if (d != NULL)
				printf("%s\n", d);
			free(d);
		}
	} else {
		for (i = 0; i < n; i++)
			print_set(all[i]);
		if (n == 0)
			printf("no share sets (run the genesis ceremony)\n");
	}
 out:
	json_decref(arr);
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_qstore_free(all, n);
	kr_log_close(log);
	return r == 0 ? KR_EXIT_OK : kr_cli_fail(cli, r);
}

static const char qcheck_usage[] =
    "usage: keyroom quorum check-card [ROLE=]SPEC\n\n"
    "Check one share card against the appliance without unlocking anything:\n"
    "names a mistyped card, a card of another or a retired share set, or a\n"
    "card that does not match its commitment. SPEC: file:PATH, fd:N,\n"
    "env:NAME or tty. Exit 0 good, 1 refused.\n";

/* A share card given on the command line, checked against the stored
 * share sets (the part quorum check-card and show-card share). */
struct card {
	struct kr_shares_in in;
	struct kr_share *s;		/* secure memory */
	struct kr_log *log;
	MDB_txn *txn;
	struct kr_qset **all;
	size_t n;
	struct kr_qset *set;		/* the card's own set, in all[] */
};

/* Read the card ARG ([ROLE=]SPEC) and find its share set; an unknown set
 * is refused unless by_role and ARG names a ROLE (checked against it). */
static int
card_open(struct kr_cli *cli, const char *arg, int by_role, struct card *k)
{
	char id[KR_Q_ID_HEX];
	size_t i;
	int r;

	memset(k, 0, sizeof(*k));
	if ((r = kr_shares_add_arg(&k->in, arg)) != 0)
		return r;
	if ((k->s = kr_secure_alloc(sizeof(*k->s))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "secure memory");
	if ((r = kr_share_read(k->in.src[0].spec, k->s)) != 0 ||
	    (r = open_log_ro(cli, &k->log)) != 0 ||
	    (r = kr_log_read_begin(k->log, &k->txn)) != 0 ||
	    (r = kr_qstore_all(k->log, k->txn, &k->all, &k->n)) != 0)
		return r;
	for (i = 0; i < k->n; i++)
		if (memcmp(k->all[i]->id, k->s->set_id, KR_Q_ID_LEN) == 0)
			k->set = k->all[i];
	if (k->set == NULL && !(by_role && k->in.src[0].role[0] != '\0')) {
		kr_qset_id_hex(k->s->set_id, id);
		return kr_errf(KR_ERR_QUORUM, "share %u belongs to unknown "
		    "share set %s", k->s->index, id);
	}
	return 0;
}

static void
card_close(struct card *k)
{
	if (k->txn != NULL)
		mdb_txn_abort(k->txn);
	kr_secure_free(k->s, sizeof(*k->s));
	kr_qstore_free(k->all, k->n);
	kr_log_close(k->log);
	memset(k, 0, sizeof(*k));
}

static int
q_check(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_qset *set = NULL;
	struct card k;
	char id[KR_Q_ID_HEX];
	int r;

	if (wants_help(argc, argv)) {
		fputs(qcheck_usage, stdout);
		return KR_EXIT_OK;
	}
	if (argc != 2)
		return kr_cli_usage_error("quorum check-card", qcheck_usage);
	if ((r = card_open(cli, argv[1], 1, &k)) != 0)
		goto out;
	set = k.set;
	if (k.in.src[0].role[0] != '\0') {
		/* ROLE=: against the set that unlocks ROLE now */
		set = NULL;
		if ((r = kr_qstore_active(k.log, k.txn, k.in.src[0].role,
		    &set)) != 0)
			goto out;
	}
	if ((r = kr_quorum_check_share(set, k.s,
	    (const struct kr_qset *const *)k.all, k.n)) != 0)
		goto out;
	kr_qset_id_hex(set->id, id);
	if (cli->json)
		kr_cli_json(json_pack("{s:i, s:s, s:s, s:s, s:s}", "share",
		    (int)k.s->index, "share_set", id, "label", set->label,
		    "custodian", set->member[k.s->index - 1].name, "result",
		    "good"));
	else
		printf("share %u of share set %s (%s, %s): good\n", k.s->index,
		    id, set->label, set->member[k.s->index - 1].name);
 out:
	if (set != k.set)
		free(set);	/* kr_qstore_active's own copy */
	card_close(&k);
	return r == 0 ? KR_EXIT_OK : kr_cli_fail(cli, r);
}

static const char qshow_usage[] =
    "usage: keyroom quorum show-card SPEC\n\n"
    "Print a share card (custodian, set, M of N, the code lines and a QR\n"
    "code) from a card given as file:PATH, fd:N, env:NAME or tty, after\n"
    "checking it against the appliance.\n";

static int
q_show(struct kr_cli *cli, int argc, char **argv)
{
	struct card k;
	int r;

	if (wants_help(argc, argv)) {
		fputs(qshow_usage, stdout);
		return KR_EXIT_OK;
	}
	if (argc != 2)
		return kr_cli_usage_error("quorum show-card", "SPEC");
	if ((r = card_open(cli, argv[1], 0, &k)) == 0 &&
	    (r = kr_quorum_check_share(k.set, k.s,
	    (const struct kr_qset *const *)k.all, k.n)) == 0)
		r = kr_card_print(stdout, k.set, k.s, !cli->quiet);
	card_close(&k);
	return r == 0 ? KR_EXIT_OK : kr_cli_fail(cli, r);
}

static const struct kr_cmd quorum_cmds[] = {
	{ "show-card", q_show, "SPEC", "print a share card with its QR code" },
	{ "list", q_list, "", "list share sets and custodians" },
	{ "check-card", q_check, "[ROLE=]SPEC",
	    "check a share card against the appliance" },
	{ NULL, NULL, NULL, NULL },
};

int
cmd_quorum(struct kr_cli *cli, int argc, char **argv)
{
	return kr_cli_dispatch(cli, "keyroom quorum", quorum_cmds, argc - 1,
	    argv + 1);
}

/* ------------------------------------------------------------ session */

static const char srun_usage[] =
    "usage: keyroom session run [--shares [issuing=]SPEC]... [--timeout SEC]\n"
    "         [--purpose TEXT] [--no-prompt] -- batch sign MEDIA [ARGS]\n\n"
    "Open a signing session: the operators' quorum enters its shares, the\n"
    "issuing token's PIN is rebuilt in locked memory of this process, and\n"
    "`keyroom batch sign --pin fd:3 MEDIA ARGS` runs as a child that gets\n"
    "the PIN through a pipe. The session closes when the batch ends, or\n"
    "when the timeout (default 3600 s) terminates it; both ends are logged.\n"
    "Once the issuing token is under quorum, batch sign refuses to run\n"
    "outside a session.\n\n"
    "Exit: the batch's exit code (0 all signed, 3 some rejected, 4 none\n"
    "signed), 1 if the session could not open or timed out, 2 usage.\n";

static int
s_run(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "shares", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "purpose", required_argument, NULL, 'p' },
		{ "no-prompt", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kr_session_opts so;
	struct kr_shares_in *in;
	char *end;
	long t;
	int ch, r, ec = KR_EXIT_ERROR, noprompt = 0;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return kr_cli_fail(cli, kr_errf(KR_ERR_ALLOC, "shares"));
	memset(&so, 0, sizeof(so));
	so.shares = in;
	so.timeout = KR_SESSION_TIMEOUT_DEFAULT;
	so.purpose = "batch signing";
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if ((r = kr_shares_add_arg(in, optarg)) != 0) {
				free(in);
				return kr_cli_fail(cli, r);
			}
			break;
		case 't':
			t = strtol(optarg, &end, 10);
			if (*end != '\0' || t < 1 || t > KR_SESSION_TIMEOUT_MAX) {
				free(in);
				return kr_cli_fail(cli, kr_errf(
				    KR_ERR_INVALID_ARGUMENT, "--timeout: 1..%d "
				    "seconds", KR_SESSION_TIMEOUT_MAX));
			}
			so.timeout = (int)t;
			break;
		case 'p':
			so.purpose = optarg;
			break;
		case 'n':
			noprompt = 1;
			break;
		case 'h':
			fputs(srun_usage, stdout);
			free(in);
			return KR_EXIT_OK;
		default:
			free(in);
			return kr_cli_usage_error("session run", "see keyroom "
			    "session run --help");
		}
	}
	in->interactive = !noprompt && isatty(0);
	so.argc = argc - optind;
	so.argv = argv + optind;
	r = kr_session_run(cli, &so, &ec);
	free(in);
	if (r != 0)
		return kr_cli_fail(cli, r);
	return ec;
}

static const struct kr_cmd session_cmds[] = {
	{ "run", s_run, "[--shares SPEC]... -- batch sign MEDIA",
	    "unlock the issuing token by quorum for one batch" },
	{ NULL, NULL, NULL, NULL },
};

int
cmd_session(struct kr_cli *cli, int argc, char **argv)
{
	return kr_cli_dispatch(cli, "keyroom session", session_cmds, argc - 1,
	    argv + 1);
}
