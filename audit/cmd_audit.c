/*
 * cmd_audit.c - `keyroom audit ...`: verify, export, show, list,
 * checkpoint, proof, vkey. All read-only: no HSM, no PIN.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "audit/entry.h"
#include "audit/export.h"
#include "audit/note.h"
#include "audit/qr.h"
#include "audit/signer_hsm.h"
#include "audit/verify.h"
#include "lib/cli.h"
#include "lib/commands.h"
#include "lib/util.h"

#define MAX_NOTE_FILE	8192
#define MAX_CERT_FILE	(1 << 20)

static int
is_file(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* A state dir, its log/ dir, an export dir, or a dir with data.mdb. */
static int
resolve_dir(const char *arg, char *out, size_t cap)
{
	char p[4096];
	int r;

	if ((r = kr_snprintf(p, sizeof(p), "%s/data.mdb", arg)) != 0)
		return r;
	if (is_file(p))
		return kr_snprintf(out, cap, "%s", arg);
	if ((r = kr_snprintf(p, sizeof(p), "%s/log/data.mdb", arg)) != 0)
		return r;
	if (is_file(p))
		return kr_snprintf(out, cap, "%s/log", arg);
	return kr_errf(KR_ERR_NOT_FOUND, "%s: no audit log (neither "
	    "%s/data.mdb nor %s/log/data.mdb)", arg, arg, arg);
}

static int
open_ro(struct kr_cli *cli, const char *arg, struct kr_log **log)
{
	char dir[4096];
	int r;

	if ((r = resolve_dir(arg != NULL ? arg : cli->state, dir,
	    sizeof(dir))) != 0)
		return r;
	return kr_log_open(dir, KR_LOG_RDONLY, log);
}

static int
help_requested(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}


/* ------------------------------------------------------------- verify */

static const char verify_usage[] =
    "[DIR] [--vkey FILE] [--checkpoint FILE]... [--json]";

static int
cmd_verify(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vkey", required_argument, NULL, 'k' },
		{ "checkpoint", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kr_verify_opts o;
	struct kr_verify_report rep;
	struct kr_log *log = NULL;
	char **notes = NULL, **names = NULL, *vkey = NULL, b64[48];
	char detail[2048];
	const char *vkf = NULL;
	size_t nn = 0, i, len;
	json_t *j, *types;
	int ch, r, ret, json = cli->json;

	if ((notes = calloc((size_t)argc, sizeof(*notes))) == NULL ||
	    (names = calloc((size_t)argc, sizeof(*names))) == NULL) {
		free(notes);
		return kr_cli_fail(cli, kr_errf(KR_ERR_ALLOC, "args"));
	}
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			vkf = optarg;
			break;
		case 'c':
			names[nn++] = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			printf("usage: keyroom audit verify %s\n\n"
			    "Recompute the whole Merkle tree from the entries, "
			    "check every stored checkpoint's\nsignature and root, "
			    "the log invariants (contiguous indexes, entry "
			    "format, every\nintent resolved, unique serials, "
			    "certificate hashes and index), and prove the\n"
			    "log extends each earlier checkpoint given with "
			    "--checkpoint.\n\nDIR: a state directory, its log/ "
			    "directory, an export, or any directory holding\n"
			    "a copied data.mdb (default: the state directory). "
			    "Needs no HSM and no PIN.\n--vkey FILE: the "
			    "verifier key on record; without it the key in "
			    "the log's init entry\nis used and reported.\n\n"
			    "exit: 0 verified, 5 tampered or "
			    "rollback/truncation, 1 other error, 2 usage\n",
			    verify_usage);
			ret = KR_EXIT_OK;
			goto out;
		default:
			ret = kr_cli_usage_error("audit verify", verify_usage);
			goto out;
		}
	}
	if (argc - optind > 1) {
		ret = kr_cli_usage_error("audit verify", verify_usage);
		goto out;
	}
	memset(&o, 0, sizeof(o));
	if (vkf != NULL) {
		if ((r = kr_read_file(vkf, 1024, (uint8_t **)&vkey, &len)) != 0) {
			ret = kr_cli_fail(cli, r);
			goto out;
		}
		o.vkey = vkey;
	}
	for (i = 0; i < nn; i++)
		if ((r = kr_read_file(names[i], MAX_NOTE_FILE,
		    (uint8_t **)&notes[i], &len)) != 0) {
			ret = kr_cli_fail(cli, r);
			goto out;
		}
	o.notes = (const char *const *)notes;
	o.note_names = (const char *const *)names;
	o.nnotes = nn;
	o.progress = !cli->quiet;
	if ((r = open_ro(cli, optind < argc ? argv[optind] : NULL,
	    &log)) != 0) {
		ret = kr_cli_fail(cli, r);
		goto out;
	}
	r = kr_audit_verify(log, &o, &rep);
	if (kr_b64_encode(rep.root, 32, b64, sizeof(b64)) != 0)
		b64[0] = '\0';
	if (json) {
		types = json_object();
		for (i = 0; i < KR_E__COUNT; i++)
			if (rep.counts[i] > 0)
				json_object_set_new(types,
				    kr_etype_name((enum kr_etype)i),
				    json_integer((json_int_t)rep.counts[i]));
		j = json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, "
		    "s:s, s:b, s:f, s:o}",
		    "ok", r == 0, "origin", kr_log_origin(log),
		    "entries", (json_int_t)rep.size,
		    "checkpoints", (json_int_t)rep.checkpoints,
		    "external_checkpoints", (json_int_t)rep.external,
		    "intents", (json_int_t)rep.intents,
		    "issued", (json_int_t)rep.issued,
		    "abandoned", (json_int_t)rep.abandoned,
		    "issued_with_intent", (json_int_t)rep.same_commit,
		    "root", r == 0 ? b64 : "", "vkey", rep.vkey,
		    "vkey_from_log", rep.vkey_from_log,
		    "seconds", rep.seconds, "types", types);
		if (j != NULL) {
			json_object_set_new(j, "batches_under_other_policy",
			    json_integer((json_int_t)rep.policy_mismatch));
			if (rep.policy_mismatch_first >= 0)
				json_object_set_new(j, "first_batch_under_other_"
				    "policy", json_integer(
				    rep.policy_mismatch_first));
		}
		if (r != 0 && j != NULL) {
			json_object_set_new(j, "error",
			    json_string(kr_strerror(r)));
			(void)snprintf(detail, sizeof(detail), "%s",
			    kr_err_detail());
			kr_utf8_sanitize(detail);
			json_object_set_new(j, "detail", json_string(detail));
			json_object_set_new(j, "code", json_integer(r));
			if (rep.bad_index >= 0)
				json_object_set_new(j, "bad_entry",
				    json_integer(rep.bad_index));
			if (rep.bad_checkpoint >= 0)
				json_object_set_new(j, "bad_checkpoint",
				    json_integer(rep.bad_checkpoint));
		}
		kr_cli_json(j);
		if (r != 0)
			fprintf(stderr, "keyroom: %s: %s\n", kr_err_detail(),
			    kr_strerror(r));
		ret = kr_exit_code(r);
		goto out;
	}
	if (r != 0) {
		printf("audit log %s: FAILED", kr_log_origin(log));
		if (rep.bad_index >= 0)
			printf(" at entry %lld", (long long)rep.bad_index);
		if (rep.bad_checkpoint >= 0)
			printf(" at checkpoint %lld",
			    (long long)rep.bad_checkpoint);
		printf("\n");
		ret = kr_cli_fail(NULL, r);
		goto out;
	}
	printf("audit log %s: OK\n"
	    "  entries       %llu\n"
	    "  checkpoints   %llu stored, all signatures and roots verified\n"
	    "  certificates  %llu issued, %llu abandoned, %llu intents\n"
	    "  root          %s\n"
	    "  vkey          %s%s\n",
	    kr_log_origin(log), (unsigned long long)rep.size,
	    (unsigned long long)rep.checkpoints,
	    (unsigned long long)rep.issued, (unsigned long long)rep.abandoned,
	    (unsigned long long)rep.intents, b64, rep.vkey,
	    rep.vkey_from_log ? "\n                (taken from the log's "
	    "init entry: compare it with your record, or pass --vkey)" : "");
	if (nn > 0)
		printf("  extends       %zu earlier checkpoint(s)\n", nn);
	if (rep.same_commit > 0)
		printf("  warning       %llu certificate(s) logged in the same "
		    "commit as their intent:\n                the log cannot show "
		    "the intent preceded the signature\n",
		    (unsigned long long)rep.same_commit);
	if (rep.policy_mismatch > 0)
		printf("  warning       %llu batch(es) ran under a policy other "
		    "than the one the quorum\n                installed last "
		    "(first: batch-begin entry %lld)\n",
		    (unsigned long long)rep.policy_mismatch,
		    (long long)rep.policy_mismatch_first);
	if (!cli->quiet)
		fprintf(stderr, "verified %llu entries in %.2fs (%.0f "
		    "entries/s)\n", (unsigned long long)rep.size, rep.seconds,
		    rep.seconds > 0 ? (double)rep.size / rep.seconds : 0.0);
	ret = KR_EXIT_OK;
 out:
	kr_log_close(log);
	for (i = 0; i < nn; i++)
		free(notes[i]);
	free(notes);
	free(names);
	free(vkey);
	return ret;
}

/* ------------------------------------------------------------- export */

/*
 * Record the export in the log it came from (BR: exports are events),
 * signed by the state's audit key. Never runs recovery: a batch may be
 * in flight.
 */
static int
log_export(struct kr_cli *cli, const char *dir,
    const struct kr_export_stats *st)
{
	struct kr_note_signer s;
	struct kr_hsm_signer *hs = NULL;
	struct kr_log *log = NULL;
	struct kr_ltx *ltx = NULL;
	char ldir[4096], path[4096], size[24], hex[65];
	uint8_t *sums = NULL, h[32];
	size_t len;
	int r;

	if ((r = resolve_dir(cli->state, ldir, sizeof(ldir))) != 0 ||
	    (r = kr_snprintf(path, sizeof(path), "%s/SHA256SUMS", dir)) != 0 ||
	    (r = kr_read_file(path, (size_t)1 << 30, &sums, &len)) != 0)
		goto out;
	kr_sha256(sums, len, h);
	kr_hex(h, 32, hex);
	if ((r = kr_snprintf(size, sizeof(size), "%llu",
	    (unsigned long long)st->size)) != 0 ||
	    (r = kr_log_open(ldir, KR_LOG_WRITE, &log)) != 0 ||
	    (r = kr_hsm_signer_open_state(cli->state, kr_log_origin(log), &s,
	    &hs)) != 0 ||
	    (r = kr_log_begin(log, &ltx)) != 0 ||
	    (r = kr_ltx_appendf(ltx, KR_E_EXPORT, "keyroom audit export", NULL,
	    "what", "audit-log", "dest", dir, "size", size, "sha256", hex,
	    NULL)) != 0)
		goto out;
	r = kr_ltx_commit(ltx, &s, NULL);
	ltx = NULL;
 out:
	kr_ltx_abort(ltx);
	kr_hsm_signer_close(hs);
	kr_log_close(log);
	free(sums);
	return r;
}

static int
cmd_export(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_export_stats st;
	struct kr_log *log = NULL;
	char cfg[4096];
	int r, nolog = 0;

	if (help_requested(argc, argv)) {
		printf("usage: keyroom audit export [--no-log] DIR\n\nWrite an "
		    "auditor's export to the new directory DIR, all from one "
		    "snapshot:\n"
		    "  checkpoint, tile/<L>/..., tile/entries/...  C2SP "
		    "tlog-tiles (with partial tiles)\n"
		    "  checkpoints/<size>   every checkpoint ever signed\n"
		    "  vkey                 the checkpoint verifier key\n"
		    "  proofs/<sha256>.tlog-proof  one C2SP tlog-proof per "
		    "certificate (extra = entry)\n"
		    "  log/data.mdb         compact LMDB copy "
		    "(keyroom audit verify DIR works on it)\n"
		    "  SHA256SUMS\nDIR must not exist. On an initialised state "
		    "directory the export is then\nrecorded as an 'export' "
		    "entry signed by the audit key (--no-log: not).\n");
		return KR_EXIT_OK;
	}
	if (argc == 3 && strcmp(argv[1], "--no-log") == 0) {
		nolog = 1;
		argv++;
		argc--;
	}
	if (argc != 2)
		return kr_cli_usage_error("audit export", "[--no-log] DIR");
	if ((r = open_ro(cli, NULL, &log)) != 0)
		return kr_cli_fail(cli, r);
	r = kr_audit_export(log, argv[1], &st);
	kr_log_close(log);
	if (r != 0)
		return kr_cli_fail(cli, kr_errctx(r, "export to %s", argv[1]));
	if (!nolog && kr_snprintf(cfg, sizeof(cfg), "%s/keyroom.yaml",
	    cli->state) == 0 && is_file(cfg) &&
	    (r = log_export(cli, argv[1], &st)) != 0)
		return kr_cli_fail(cli, kr_errctx(r, "export written to %s but "
		    "not recorded in the log", argv[1]));
	if (cli->json)
		kr_cli_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "dir",
		    argv[1], "size", (json_int_t)st.size, "checkpoints",
		    (json_int_t)st.checkpoints, "tiles", (json_int_t)st.tiles,
		    "proofs", (json_int_t)st.proofs, "files",
		    (json_int_t)st.files));
	else
		printf("exported %llu entries, %llu checkpoints, %llu tiles, "
		    "%llu proofs to %s\n", (unsigned long long)st.size,
		    (unsigned long long)st.checkpoints,
		    (unsigned long long)st.tiles,
		    (unsigned long long)st.proofs, argv[1]);
	return KR_EXIT_OK;
}

/* --------------------------------------------------------- show, list */

static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	*v = strtoull(s, &end, 10);
	return *end == '\0' ? 0 : -1;
}

static json_t *
entry_json(uint64_t idx, const uint8_t *e, size_t len)
{
	json_t *j = json_object();
	const char *s = (const char *)e, *end = s + len, *nl, *sp;
	char key[64];

	json_object_set_new(j, "index", json_integer((json_int_t)idx));
	if ((nl = memchr(s, '\n', len)) == NULL)
		return j;
	for (s = nl + 1; s < end; s = nl + 1) {
		if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL ||
		    (sp = memchr(s, ' ', (size_t)(nl - s))) == NULL ||
		    (size_t)(sp - s) >= sizeof(key))
			break;
		memcpy(key, s, (size_t)(sp - s));
		key[sp - s] = '\0';
		json_object_set_new(j, key, json_stringn(sp + 1,
		    (size_t)(nl - sp - 1)));
	}
	return j;
}

static int
cmd_show(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_log *log = NULL;
	MDB_txn *txn = NULL;
	const uint8_t *e;
	size_t len;
	uint64_t n;
	int r;

	if (help_requested(argc, argv)) {
		printf("usage: keyroom audit show N\n\nPrint log entry N "
		    "exactly as stored (--json: as an object).\n");
		return KR_EXIT_OK;
	}
	if (argc != 2 || parse_u64(argv[1], &n) != 0)
		return kr_cli_usage_error("audit show", "N");
	if ((r = open_ro(cli, NULL, &log)) != 0 ||
	    (r = kr_log_read_begin(log, &txn)) != 0 ||
	    (r = kr_log_entry(log, txn, n, &e, &len)) != 0)
		goto out;
	if (cli->json)
		kr_cli_json(entry_json(n, e, len));
	else
		fwrite(e, 1, len, stdout);
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_log_close(log);
	return r != 0 ? kr_cli_fail(cli, r) : KR_EXIT_OK;
}

static int
cmd_list(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kr_log *log = NULL;
	MDB_txn *txn = NULL;
	const uint8_t *e;
	const char *v, *tv;
	size_t len, vl, tl;
	uint64_t size, i;
	enum kr_etype want = KR_E__COUNT;
	int ch, r, json = cli->json, first = 1;
	char tm[32], *s;
	json_t *j;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (kr_etype_from_name(optarg, &want) != 0)
				return kr_cli_fail(cli, kr_errf(
				    KR_ERR_INVALID_ARGUMENT, "unknown entry "
				    "type '%s' (see keyroom audit list --help)",
				    optarg));
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			printf("usage: keyroom audit list [--type T] "
			    "[--json]\n\nOne line per entry: index, time, "
			    "type, actor. Entry types and their keys\n(fixed "
			    "order; [optional]):\n");
			kr_etype_print_table(stdout);
			return KR_EXIT_OK;
		default:
			return kr_cli_usage_error("audit list",
			    "[--type T] [--json]");
		}
	}
	if ((r = open_ro(cli, NULL, &log)) != 0 ||
	    (r = kr_log_read_begin(log, &txn)) != 0 ||
	    (r = kr_log_size(log, txn, &size)) != 0)
		goto out;
	if (json)
		printf("[");
	for (i = 0; i < size; i++) {
		if ((r = kr_log_entry(log, txn, i, &e, &len)) != 0)
			goto out;
		if (kr_entry_get(e, len, "type", &tv, &tl) != 0)
			continue;
		if (want != KR_E__COUNT &&
		    (strlen(kr_etype_name(want)) != tl ||
		    memcmp(kr_etype_name(want), tv, tl) != 0))
			continue;
		if (json) {
			j = entry_json(i, e, len);
			json_object_del(j, "cert");
			if ((s = json_dumps(j, JSON_COMPACT)) != NULL)
				printf("%s%s", first ? "" : ",\n", s);
			free(s);
			json_decref(j);
			first = 0;
			continue;
		}
		tm[0] = '\0';
		if (kr_entry_get(e, len, "time", &v, &vl) == 0 && vl < 32) {
			memcpy(tm, v, vl);
			tm[vl] = '\0';
		}
		printf("%8llu  %s  %-18.*s", (unsigned long long)i, tm,
		    (int)tl, tv);
		if (kr_entry_get(e, len, "actor", &v, &vl) == 0)
			printf("  %.*s", (int)(vl > 40 ? 40 : vl), v);
		printf("\n");
	}
	if (json)
		printf("]\n");
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_log_close(log);
	return r != 0 ? kr_cli_fail(cli, r) : KR_EXIT_OK;
}

/* ------------------------------------------------- checkpoint, vkey */

static int
cmd_checkpoint(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "qr", no_argument, NULL, 'q' },
		{ "png", required_argument, NULL, 'p' },
		{ "svg", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kr_log *log = NULL;
	MDB_txn *txn = NULL;
	const char *png = NULL, *svgf = NULL;
	char *note = NULL, *svg = NULL;
	uint64_t size;
	int ch, r, qr = 0;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			qr = 1;
			break;
		case 'p':
			png = optarg;
			break;
		case 's':
			svgf = optarg;
			break;
		case 'h':
			printf("usage: keyroom audit checkpoint [--qr] "
			    "[--png FILE] [--svg FILE]\n\nPrint the latest "
			    "signed checkpoint (C2SP signed note) for the "
			    "paper record;\n--qr also draws it as a QR code on "
			    "the terminal, --png/--svg write it to a new "
			    "file.\nKeep it: `keyroom audit verify "
			    "--checkpoint FILE` later proves the log still "
			    "extends it.\n");
			return KR_EXIT_OK;
		default:
			return kr_cli_usage_error("audit checkpoint",
			    "[--qr] [--png FILE] [--svg FILE]");
		}
	}
	if ((r = open_ro(cli, NULL, &log)) != 0 ||
	    (r = kr_log_read_begin(log, &txn)) != 0 ||
	    (r = kr_log_checkpoint(log, txn, &note, &size)) != 0)
		goto out;
	if (cli->json)
		kr_cli_json(json_pack("{s:s, s:I}", "checkpoint", note,
		    "size", (json_int_t)size));
	else
		fputs(note, stdout);
	if (qr && (r = kr_qr_print_terminal(stdout, note)) != 0)
		goto out;
	if (png != NULL && (r = kr_qr_write_png(png, note, 8)) != 0)
		goto out;
	if (svgf != NULL && ((r = kr_qr_svg(note, 8, &svg)) != 0 ||
	    (r = kr_write_new_file(svgf, svg, strlen(svg), 0644)) != 0))
		goto out;
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_log_close(log);
	free(note);
	free(svg);
	return r != 0 ? kr_cli_fail(cli, r) : KR_EXIT_OK;
}

static int
cmd_vkey(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_log *log = NULL;
	MDB_txn *txn = NULL;
	const uint8_t *e;
	size_t len;
	char vk[600];
	int r;

	if (help_requested(argc, argv)) {
		printf("usage: keyroom audit vkey\n\nPrint the checkpoint "
		    "verifier key (C2SP vkey) recorded in the init entry.\n");
		return KR_EXIT_OK;
	}
	if ((r = open_ro(cli, NULL, &log)) != 0 ||
	    (r = kr_log_read_begin(log, &txn)) != 0 ||
	    (r = kr_log_entry(log, txn, 0, &e, &len)) != 0 ||
	    (r = kr_entry_get_str(e, len, "vkey", vk, sizeof(vk))) != 0)
		goto out;
	if (cli->json)
		kr_cli_json(json_pack("{s:s}", "vkey", vk));
	else
		printf("%s\n", vk);
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_log_close(log);
	return r != 0 ? kr_cli_fail(cli, r) : KR_EXIT_OK;
}

/* -------------------------------------------------------------- proof */

static int
cert_der_hash(const char *path, uint8_t h[32])
{
	uint8_t *data = NULL, *der = NULL;
	size_t len;
	BIO *b = NULL;
	X509 *x = NULL;
	int r, dl;

	if ((r = kr_read_file(path, MAX_CERT_FILE, &data, &len)) != 0)
		return r;
	if (len > 10 && memcmp(data, "-----BEGIN", 10) == 0) {
		if ((b = BIO_new_mem_buf(data, (int)len)) == NULL ||
		    (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL ||
		    (dl = i2d_X509(x, &der)) <= 0) {
			r = kr_err_ssl("%s: not a PEM certificate", path);
			goto out;
		}
		kr_sha256(der, (size_t)dl, h);
	} else
		kr_sha256(data, len, h);
	r = 0;
 out:
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(b);
	free(data);
	return r;
}

static int
cmd_proof(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_log *log = NULL;
	MDB_txn *txn = NULL;
	uint8_t h[32];
	uint64_t idx;
	char *proof = NULL, hex[65];
	int r;

	if (help_requested(argc, argv)) {
		printf("usage: keyroom audit proof CERT\n\nPrint the C2SP "
		    "tlog-proof that certificate CERT (PEM or DER) is in the "
		    "log:\nits entry index, the inclusion proof, the latest "
		    "signed checkpoint, and the\nlog entry itself as "
		    "'extra' (base64).\n");
		return KR_EXIT_OK;
	}
	if (argc != 2)
		return kr_cli_usage_error("audit proof", "CERT");
	if ((r = cert_der_hash(argv[1], h)) != 0)
		return kr_cli_fail(cli, r);
	kr_hex(h, 32, hex);
	if ((r = open_ro(cli, NULL, &log)) != 0 ||
	    (r = kr_log_read_begin(log, &txn)) != 0)
		goto out;
	if ((r = kr_log_cert_lookup(log, txn, h, &idx)) != 0) {
		r = kr_errf(KR_ERR_NOT_FOUND, "%s (sha256 %s) is not in the "
		    "audit log", argv[1], hex);
		goto out;
	}
	if ((r = kr_audit_proof(log, txn, idx, &proof)) != 0)
		goto out;
	fputs(proof, stdout);
 out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_log_close(log);
	free(proof);
	return r != 0 ? kr_cli_fail(cli, r) : KR_EXIT_OK;
}

static const struct kr_cmd audit_cmds[] = {
	{ "verify", cmd_verify, verify_usage,
	    "verify the whole log (tree, checkpoints, invariants)" },
	{ "export", cmd_export, "[--no-log] DIR",
	    "auditor's export: tlog-tiles, checkpoints, proofs, LMDB copy" },
	{ "show", cmd_show, "N", "print entry N" },
	{ "list", cmd_list, "[--type T] [--json]", "list entries" },
	{ "checkpoint", cmd_checkpoint, "[--qr] [--png FILE] [--svg FILE]",
	    "print the latest signed checkpoint" },
	{ "proof", cmd_proof, "CERT", "tlog-proof for a certificate" },
	{ "vkey", cmd_vkey, "", "print the checkpoint verifier key" },
	{ NULL, NULL, NULL, NULL },
};

int
cmd_audit(struct kr_cli *cli, int argc, char **argv)
{
	return kr_cli_dispatch(cli, "keyroom audit", audit_cmds, argc - 1,
	    argv + 1);
}
