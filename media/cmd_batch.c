/*
 * cmd_batch.c - `keyroom batch`: sign a batch of device CSRs from
 * removable media (media/batch.h does the work).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/cli.h"
#include "lib/commands.h"
#include "lib/util.h"
#include "audit/audit.h"
#include "ca/config.h"
#include "media/batch.h"

static const char sign_usage[] =
    "usage: keyroom [--state DIR] [--json] [-q] batch sign MEDIA_DIR\n"
    "           [--pin SPEC] [--chunk N] [--sessions N]\n\n"
    "Sign the batch on the medium MEDIA_DIR (batch.json, csr/, optional\n"
    "manifest/) and write keyroom-out/<batch-id>/ on it: certs/, chain.pem,\n"
    "report.json, report.txt, registration/, checkpoint, SHA256SUMS.\n"
    "The medium is scanned and staged first; any unsafe object (symlink,\n"
    "device, FIFO, socket, hard link, bad name, over a limit) refuses the\n"
    "whole batch. Manifests on the medium are verified and imported, then\n"
    "each CSR is decided by the policy; accepted ones are logged (intent),\n"
    "signed in the HSM, logged (issued + checkpoint), and only then written.\n\n"
    "  --pin SPEC     issuing token PIN: file:PATH, fd:N or env:NAME\n"
    "                 (prompted without echo if absent)\n"
    "  --chunk N      CSRs per log commit (default 384)\n"
    "  --sessions N   PKCS#11 sessions / signing threads (default 2)\n\n"
    "Exit: 0 every request signed, 3 some rejected, 4 nothing signed or\n"
    "the batch was refused / failed, 2 usage.\n";

static int
batch_sign(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pin", required_argument, NULL, 'p' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "sessions", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kr_batch_opts o;
	struct kr_batch_result res;
	char *end;
	long v;
	int ch, r, ex;
	json_t *j;

	memset(&o, 0, sizeof(o));
	o.state = cli->state;
	o.actor = "operator";
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'p':
			o.pin_spec = optarg;
			break;
		case 'c':
		case 's':
			v = strtol(optarg, &end, 10);
			if (*end != 0 || v < 1 || v > (ch == 'c' ?
			    KR_BATCH_CHUNK_MAX : KR_BATCH_SESSIONS_MAX))
				return kr_cli_usage_error("batch sign",
				    ch == 'c' ? "--chunk 1..8192" :
				    "--sessions 1..16");
			if (ch == 'c')
				o.chunk = (unsigned)v;
			else
				o.sessions = (unsigned)v;
			break;
		case 'j':
			cli->json = 1;
			break;
		case 'h':
			fputs(sign_usage, stdout);
			return KR_EXIT_OK;
		default:
			fputs(sign_usage, stderr);
			return KR_EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return kr_cli_usage_error("batch sign", "MEDIA_DIR");
	o.media = argv[optind];
	o.progress = !cli->quiet && !cli->json && kr_isatty_err();
	if ((r = kr_batch_sign(&o, &res)) != 0) {
		(void)kr_cli_fail(cli, r);
		return r == KR_ERR_INVALID_ARGUMENT ? KR_EXIT_USAGE :
		    KR_EXIT_NONE;
	}
	ex = kr_batch_exit_code(&res);
	if (cli->json) {
		j = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:s,"
		    "s:s,s:i}", "batch_id", res.batch_id, "requests",
		    (json_int_t)res.requests, "signed",
		    (json_int_t)(res.issued + res.reused), "issued",
		    (json_int_t)res.issued, "reused", (json_int_t)res.reused,
		    "rejected", (json_int_t)res.rejected, "manifests",
		    (json_int_t)res.manifests, "devices_added",
		    (json_int_t)res.devices_added, "seconds", res.seconds,
		    "devices_per_second", res.seconds > 0 ?
		    (double)res.requests / res.seconds : 0.0, "output",
		    res.out, "checkpoint", res.checkpoint, "exit", ex);
		if (j != NULL) {
			json_dumpf(j, stdout, JSON_INDENT(2) |
			    JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			json_decref(j);
		}
		return ex;
	}
	printf("batch %s: %zu signed", res.batch_id, res.issued + res.reused);
	if (res.reused > 0)
		printf(" (%zu from an interrupted run)", res.reused);
	printf(", %zu rejected, %zu requests", res.rejected, res.requests);
	if (res.seconds > 0)
		printf(" in %.2f s (%.0f devices/s)", res.seconds,
		    (double)res.requests / res.seconds);
	printf("\noutput: %s\n", res.out);
	if (res.checkpoint[0] != 0)
		printf("checkpoint (read aloud, keep on paper):\n%s\n",
		    res.checkpoint);
	if (res.rejected > 0)
		printf("see %s/report.txt for the rejected requests\n",
		    res.out);
	return ex;
}

static const char list_usage[] =
    "usage: keyroom [--state DIR] [--json] batch list\n\n"
    "Every batch id the appliance has seen (state open, ending or done;\n"
    "a done id is never accepted again) and the certificates each\n"
    "manufacturer has used of its quota.\n"
    "Exit: 0 ok, 1 error, 2 usage.\n";

static int
batch_list(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_state_paths paths;
	struct kr_log *log = NULL;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_dbi dbi;
	MDB_val k, v;
	json_t *out = NULL, *arr, *rec;
	json_error_t je;
	const char *names[] = { KR_BATCH_DBI, KR_QUOTA_DBI };
	const char *keys[] = { "batches", "quota" };
	int r, i, rc;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(list_usage, stdout);
		return KR_EXIT_OK;
	}
	if (argc != 1)
		return kr_cli_usage_error("batch list", "");
	if ((r = kr_state_paths(cli->state, &paths)) != 0 ||
	    (r = kr_log_open(paths.log, KR_LOG_RDONLY, &log)) != 0 ||
	    (r = kr_log_read_begin(log, &txn)) != 0)
		goto out;
	if ((out = json_object()) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "list");
		goto out;
	}
	for (i = 0; i < 2; i++) {
		json_object_set_new(out, keys[i], arr = json_object());
		if ((r = kr_log_dbi(log, txn, names[i], 0, &dbi)) ==
		    KR_ERR_NOT_FOUND)
			continue;
		if (r != 0)
			goto out;
		if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
			r = kr_err_lmdb(rc, "%s", names[i]);
			goto out;
		}
		while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
			char key[KR_MEDIA_MAX_ID + 1];
			uint64_t n = 0;
			size_t j;

			if (k.mv_size > KR_MEDIA_MAX_ID)
				continue;
			memcpy(key, k.mv_data, k.mv_size);
			key[k.mv_size] = 0;
			if (i == 1) {
				for (j = 0; j < v.mv_size && j < 8; j++)
					n = (n << 8) | ((uint8_t *)v.mv_data)[j];
				rec = json_integer((json_int_t)n);
			} else
				rec = json_loadb(v.mv_data, v.mv_size, 0, &je);
			if (rec != NULL)
				json_object_set_new(arr, key, rec);
		}
		mdb_cursor_close(cur);
		cur = NULL;
	}
	if (cli->json) {
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
	} else {
		const char *key;
		json_t *val;

		json_object_foreach(json_object_get(out, "batches"), key, val)
			printf("batch %-24s %-6s %-16s issued %lld rejected "
			    "%lld  begun %s\n", key,
			    json_string_value(json_object_get(val, "state")),
			    json_string_value(json_object_get(val,
			    "manufacturer")),
			    (long long)json_integer_value(json_object_get(val,
			    "issued")),
			    (long long)json_integer_value(json_object_get(val,
			    "rejected")),
			    json_string_value(json_object_get(val, "begun")));
		json_object_foreach(json_object_get(out, "quota"), key, val)
			printf("quota %-24s used %lld\n", key,
			    (long long)json_integer_value(val));
	}
	r = 0;
 out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_log_close(log);
	json_decref(out);
	return r == 0 ? KR_EXIT_OK : kr_cli_fail(cli, r);
}

static const struct kr_cmd batch_cmds[] = {
	{ "list", batch_list, "", "batch ids seen and quota used (--json)" },
	{ "sign", batch_sign, "MEDIA_DIR [--pin SPEC] [--chunk N] "
	    "[--sessions N]", "sign a batch of CSRs from removable media" },
	{ NULL, NULL, NULL, NULL },
};

int
cmd_batch(struct kr_cli *cli, int argc, char **argv)
{
	return kr_cli_dispatch(cli, "keyroom batch", batch_cmds, argc - 1,
	    argv + 1);
}
