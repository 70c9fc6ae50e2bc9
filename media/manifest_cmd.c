/*
 * manifest_cmd.c - `keyroom manifest verify|import|show|list`: verify
 * vendor manifests against the policy and record their entries in the
 * device registry, in the same audit transaction as the
 * "manifest-imported" log entry.
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/signer_hsm.h"
#include "ca/config.h"
#include "lib/cli.h"
#include "lib/commands.h"
#include "lib/util.h"
#include "media/manifest.h"
#include "media/registry.h"
#include "policy/policy.h"

#define MAX_FILES 256

static int
load_policy(struct kr_cli *cli, const char *file, struct kr_policy **out)
{
	struct kr_state_paths paths;
	int r;

	if (file != NULL)
		return kr_policy_load(file, out);
	if ((r = kr_state_paths(cli->state, &paths)) != 0)
		return r;
	return kr_policy_load(paths.policy, out);
}

static json_t *
device_json(const struct kr_device *d)
{
	json_t *o, *ka;
	char hx[2 * KR_MF_SPKI_MAX + 1], ts[32];
	size_t i;

	kr_time_rfc3339(d->provisioned, ts);
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "uniqueId",
	    d->unique_id, "model", d->model, "partNumber", d->part_number,
	    "groupId", d->group_id, "version", d->version, "provisioned", ts);
	if (o == NULL)
		return NULL;
	kr_hex(d->signer, 32, hx);
	json_object_set_new(o, "signer", json_string(hx));
	kr_hex(d->manifest, 32, hx);
	json_object_set_new(o, "manifest", json_string(hx));
	json_object_set_new(o, "lite", json_boolean(d->nkeys == 0));
	json_object_set_new(o, "keys", ka = json_array());
	for (i = 0; i < d->nkeys; i++) {
		kr_hex(d->keys[i].spki, d->keys[i].spki_len, hx);
		json_array_append_new(ka, json_pack("{s:s, s:s, s:s, s:b}",
		    "kid", d->keys[i].kid, "crv",
		    kr_curve_name(d->keys[i].curve), "spki", hx, "x5c",
		    d->keys[i].x5c_verified));
	}
	return o;
}

/*
 * One file, streamed (kr_manifest_each): refused entries go straight into
 * the report; verified ones are recorded (import) or remembered compactly
 * for the in-file duplicate check (verify).
 */
struct seen {
	char id[KR_MF_UNIQUEID_MAX + 1];
	uint8_t content[32];
	size_t index;
};

struct fctx {
	json_t *refused;
	MDB_txn *txn;			/* import: the audit txn, else NULL */
	MDB_dbi dbi;
	size_t verified, added, already, nsigners;
	char signers[4 * 65 + 4];
	struct seen *seen;		/* verify only */
	size_t nseen, cap;
	struct kr_progress prog;	/* entries, on a terminal */
};

static int
refuse(struct fctx *c, size_t index, const char *id, enum kr_mf_reason why,
    const char *msg)
{
	if (json_array_append_new(c->refused, json_pack("{s:I, s:s, s:s, "
	    "s:s}", "index", (json_int_t)index, "uniqueId", id, "reason",
	    kr_mf_reason_str(why), "message", msg)) != 0)
		return kr_errf(KR_ERR_ALLOC, "report");
	return 0;
}

static int
entry_cb(struct kr_mf_result *res, size_t index, void *arg)
{
	struct fctx *c = arg;
	struct seen *ns;
	char hx[65];
	int r, a;

	kr_progress_update(&c->prog, index + 1);
	if (res->reason != KR_MF_OK)
		return refuse(c, index, res->id, res->reason, res->message);
	if (c->txn == NULL) {
		if (c->nseen == c->cap) {
			c->cap = c->cap == 0 ? 256 : c->cap * 2;
			if ((ns = reallocarray(c->seen, c->cap,
			    sizeof(*ns))) == NULL)
				return kr_errf(KR_ERR_ALLOC, "report");
			c->seen = ns;
		}
		memcpy(c->seen[c->nseen].id, res->dev.unique_id,
		    sizeof(res->dev.unique_id));
		memcpy(c->seen[c->nseen].content, res->dev.content, 32);
		c->seen[c->nseen++].index = index;
		c->verified++;
		return 0;
	}
	r = kr_registry_put(c->txn, c->dbi, &res->dev, &a);
	if (r == KR_ERR_EXISTS) {
		r = refuse(c, index, res->id, KR_MF_DUPLICATE,
		    kr_err_detail());
		kr_err_clear();
		return r;
	}
	if (r != 0)
		return r;
	c->verified++;
	if (a)
		c->added++;
	else
		c->already++;
	kr_hex(res->dev.signer, 32, hx);
	if (strstr(c->signers, hx) == NULL && c->nsigners < 4) {
		if (c->nsigners++ > 0)
			strcat(c->signers, ",");
		strcat(c->signers, hx);
	}
	return 0;
}

static int
cmp_seen(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* verify: the same id twice with different content, as import refuses. */
static int
seen_dups(struct fctx *c)
{
	size_t i, first = 0;
	int r;

	if (c->nseen < 2)
		return 0;
	qsort(c->seen, c->nseen, sizeof(*c->seen), cmp_seen);
	for (i = 1; i < c->nseen; i++) {
		if (strcmp(c->seen[first].id, c->seen[i].id) != 0) {
			first = i;
			continue;
		}
		if (memcmp(c->seen[first].content, c->seen[i].content,
		    32) == 0)
			continue;
		if ((r = refuse(c, c->seen[i].index, c->seen[i].id,
		    KR_MF_DUPLICATE, "uniqueId listed again with different "
		    "content")) != 0)
			return r;
		c->verified--;
	}
	return 0;
}

/*
 * Verify (txn NULL) or import one file; append its report to rep and,
 * for import, its manifest-imported log entry to ltx.
 */
static int
do_file(struct kr_cli *cli, struct kr_policy *pol, const char *path,
    struct kr_ltx *ltx, MDB_dbi dbi, json_t *rep)
{
	struct fctx c;
	uint8_t *buf = NULL, sha[32];
	char hx[65], entries[32], *dup = NULL;
	size_t n = 0;
	json_t *fr;
	int r;

	memset(&c, 0, sizeof(c));
	c.txn = ltx != NULL ? kr_ltx_mdb(ltx) : NULL;
	c.dbi = dbi;
	if ((c.refused = json_array()) == NULL)
		return kr_errf(KR_ERR_ALLOC, "report");
	if ((r = kr_read_file(path, KR_MF_MAX_BYTES, &buf, &n)) != 0) {
		r = kr_errctx(r, "%s", path);
		goto out;
	}
	kr_progress_start(&c.prog, ltx != NULL ? "importing" : "verifying", 0);
	if (cli->quiet)
		c.prog.active = 0;
	r = kr_manifest_each(kr_policy_trust(pol), path, buf, n, sha,
	    entry_cb, &c, &n);
	kr_progress_finish(&c.prog);
	if (r != 0)
		goto out;
	if (ltx == NULL && (r = seen_dups(&c)) != 0)
		goto out;
	kr_hex(sha, 32, hx);
	fr = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:O}", "file", path,
	    "sha256", hx, "entries", (json_int_t)n, "verified",
	    (json_int_t)c.verified, "added", (json_int_t)c.added, "already",
	    (json_int_t)c.already, "refused", c.refused);
	if (fr == NULL || json_array_append_new(rep, fr) != 0) {
		r = kr_errf(KR_ERR_ALLOC, "report");
		goto out;
	}
	if (ltx != NULL) {
		(void)snprintf(entries, sizeof(entries), "%zu", c.added);
		if ((dup = strdup(path)) == NULL) {
			r = kr_errf(KR_ERR_ALLOC, "%s", path);
			goto out;
		}
		r = kr_ltx_appendf(ltx, KR_E_MANIFEST_IMPORTED, "operator",
		    NULL, "file", basename(dup), "sha256", hx, "entries",
		    entries, "signer", c.nsigners > 0 ? c.signers : NULL,
		    NULL);
	}
out:
	free(dup);
	free(buf);
	free(c.seen);
	json_decref(c.refused);
	return r;
}

static void
print_report(struct kr_cli *cli, json_t *files, const char *verb)
{
	size_t i, j;
	json_t *f, *e;

	if (cli->json) {
		json_t *o = json_pack("{s:O}", "manifests", files);

		json_dumpf(o, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(o);
		return;
	}
	json_array_foreach(files, i, f) {
		printf("%s: %lld entries, %lld verified",
		    json_string_value(json_object_get(f, "file")),
		    json_integer_value(json_object_get(f, "entries")),
		    json_integer_value(json_object_get(f, "verified")));
		if (strcmp(verb, "import") == 0)
			printf(", %lld added, %lld already recorded",
			    json_integer_value(json_object_get(f, "added")),
			    json_integer_value(json_object_get(f, "already")));
		printf(", %zu refused\n", json_array_size(json_object_get(f,
		    "refused")));
		json_array_foreach(json_object_get(f, "refused"), j, e)
			printf("  entry %lld %s: %s: %s\n",
			    json_integer_value(json_object_get(e, "index")),
			    json_string_value(json_object_get(e, "uniqueId")),
			    json_string_value(json_object_get(e, "reason")),
			    json_string_value(json_object_get(e, "message")));
	}
}

static int
count_refused(json_t *files)
{
	size_t i;
	json_t *f;
	int n = 0;

	json_array_foreach(files, i, f)
		n += (int)json_array_size(json_object_get(f, "refused"));
	return n;
}

static const char verify_usage[] =
    "usage: keyroom manifest verify [--policy FILE] MANIFEST...\n\n"
    "Verify vendor manifests (Microchip format) against the pinned signers\n"
    "and device roots of the policy, changing nothing. Every refused entry\n"
    "is listed with its reason.\n\n"
    "  --policy FILE  policy file (default <state>/policy.yaml)\n\n"
    "Exit: 0 every entry verified, 3 some entries refused, 1 error, 2 "
    "usage.\n";

static const char import_usage[] =
    "usage: keyroom manifest import [--policy FILE] MANIFEST...\n\n"
    "Verify vendor manifests and record their verified entries in the\n"
    "device registry, with one manifest-imported audit entry per file, all\n"
    "in one transaction. Re-importing the same entry is a no-op; the same\n"
    "uniqueId (or key) with different content is refused.\n\n"
    "  --policy FILE  policy file (default <state>/policy.yaml)\n\n"
    "Exit: 0 every entry recorded or already there, 3 some entries\n"
    "refused (the others are recorded), 1 error (nothing recorded), 2 "
    "usage.\n";

static int
parse_opts(int argc, char **argv, const char *usage, const char **policy)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			*policy = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			return -1;
		}
	}
	return 0;
}

static int
cmd_verify(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_policy *pol = NULL;
	const char *policy = NULL;
	json_t *rep = NULL;
	int r, i, n;

	if ((r = parse_opts(argc, argv, verify_usage, &policy)) != 0)
		return r > 0 ? KR_EXIT_OK : kr_cli_usage_error("manifest "
		    "verify", "[--policy FILE] MANIFEST...");
	n = argc - optind;
	if (n < 1 || n > MAX_FILES)
		return kr_cli_usage_error("manifest verify",
		    "[--policy FILE] MANIFEST... (1-256 files)");
	if ((rep = json_array()) == NULL)
		return kr_cli_fail(cli, kr_errf(KR_ERR_ALLOC, "report"));
	if ((r = load_policy(cli, policy, &pol)) != 0)
		goto fail;
	for (i = 0; i < n; i++)
		if ((r = do_file(cli, pol, argv[optind + i], NULL, 0, rep)) != 0)
			goto fail;
	print_report(cli, rep, "verify");
	r = count_refused(rep) > 0 ? KR_EXIT_PARTIAL : KR_EXIT_OK;
	goto out;
fail:
	r = kr_cli_fail(cli, r);
out:
	kr_policy_free(pol);
	json_decref(rep);
	return r;
}

/* The audit signer of the state (HSM audit key). */
static int
open_signer(struct kr_cli *cli, struct kr_state_paths *paths,
    struct kr_config *cfg, struct kr_note_signer *ns,
    struct kr_hsm_signer **hs)
{
	char module[4096], pin[4200];
	int r;

	if ((r = kr_config_load(cli->state, cfg)) != 0 ||
	    (r = kr_state_paths(cli->state, paths)) != 0 ||
	    (r = kr_config_module(cfg, paths, module, sizeof(module))) != 0)
		return r;
	if ((r = kr_snprintf(pin, sizeof(pin), "file:%s", paths->audit_pin)))
		return r;
	return kr_hsm_signer_open(module, cfg->token_audit,
	    cfg->audit_key_label[0] != '\0' ? cfg->audit_key_label : NULL,
	    pin, cfg->audit_origin, ns, hs);
}

static int
cmd_import(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_policy *pol = NULL;
	struct kr_state_paths paths;
	struct kr_config cfg;
	struct kr_note_signer ns;
	struct kr_hsm_signer *hs = NULL;
	struct kr_log *log = NULL;
	struct kr_ltx *ltx = NULL;
	const char *policy = NULL;
	json_t *rep = NULL;
	MDB_dbi dbi;
	int r, i, n;

	if ((r = parse_opts(argc, argv, import_usage, &policy)) != 0)
		return r > 0 ? KR_EXIT_OK : kr_cli_usage_error("manifest "
		    "import", "[--policy FILE] MANIFEST...");
	n = argc - optind;
	if (n < 1 || n > MAX_FILES)
		return kr_cli_usage_error("manifest import",
		    "[--policy FILE] MANIFEST... (1-256 files)");
	if ((rep = json_array()) == NULL)
		return kr_cli_fail(cli, kr_errf(KR_ERR_ALLOC, "report"));
	if ((r = load_policy(cli, policy, &pol)) != 0 ||
	    (r = open_signer(cli, &paths, &cfg, &ns, &hs)) != 0 ||
	    (r = kr_log_open(paths.log, KR_LOG_WRITE, &log)) != 0 ||
	    (r = kr_log_begin(log, &ltx)) != 0 ||
	    (r = kr_log_dbi(log, kr_ltx_mdb(ltx), KR_REGISTRY_DBI, 0,
	    &dbi)) != 0)
		goto fail;
	/* All files in one transaction: any whole-file error, nothing. */
	for (i = 0; i < n; i++)
		if ((r = do_file(cli, pol, argv[optind + i], ltx, dbi, rep)) != 0)
			goto fail;
	r = kr_ltx_commit(ltx, &ns, NULL);
	ltx = NULL;
	if (r != 0)
		goto fail;
	print_report(cli, rep, "import");
	r = count_refused(rep) > 0 ? KR_EXIT_PARTIAL : KR_EXIT_OK;
	goto out;
fail:
	r = kr_cli_fail(cli, r);
out:
	kr_ltx_abort(ltx);
	kr_log_close(log);
	kr_hsm_signer_close(hs);
	kr_policy_free(pol);
	json_decref(rep);
	return r;
}

/* Read-only registry access. */
static int
open_ro(struct kr_cli *cli, struct kr_log **log, MDB_txn **txn,
    MDB_dbi *dbi, int *empty)
{
	struct kr_state_paths paths;
	int r;

	*empty = 0;
	if ((r = kr_state_paths(cli->state, &paths)) != 0 ||
	    (r = kr_log_open(paths.log, KR_LOG_RDONLY, log)) != 0 ||
	    (r = kr_log_read_begin(*log, txn)) != 0)
		return r;
	r = kr_log_dbi(*log, *txn, KR_REGISTRY_DBI, 0, dbi);
	if (r == KR_ERR_NOT_FOUND) {
		*empty = 1;
		kr_err_clear();
		return 0;
	}
	return r;
}

static void
print_device(const struct kr_device *d)
{
	char hx[2 * KR_MF_SPKI_MAX + 1], ts[32];
	size_t i;

	kr_time_rfc3339(d->provisioned, ts);
	printf("uniqueId     %s\nmodel        %s\npartNumber   %s\n",
	    d->unique_id, d->model, d->part_number);
	if (d->group_id[0] != '\0')
		printf("groupId      %s\n", d->group_id);
	printf("provisioned  %s\n", ts);
	kr_hex(d->signer, 32, hx);
	printf("signer       %s\n", hx);
	kr_hex(d->manifest, 32, hx);
	printf("manifest     %s\n", hx);
	if (d->nkeys == 0)
		printf("keys         none (lite entry)\n");
	for (i = 0; i < d->nkeys; i++) {
		kr_hex(d->keys[i].spki, d->keys[i].spki_len, hx);
		printf("key %-8s %s%s %s\n", d->keys[i].kid,
		    kr_curve_name(d->keys[i].curve),
		    d->keys[i].x5c_verified ? " x5c-verified" : "", hx);
	}
}

static int
cmd_show(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_log *log = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	struct kr_device d;
	int r, empty;

	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		printf("usage: keyroom manifest show UNIQUEID\n\nShow the "
		    "registry record of one device (lower-case hex id).\n"
		    "Exit: 0 shown, 1 not found / error, 2 usage.\n");
		return KR_EXIT_OK;
	}
	if (argc != 2)
		return kr_cli_usage_error("manifest show", "UNIQUEID");
	if ((r = open_ro(cli, &log, &txn, &dbi, &empty)) != 0)
		goto fail;
	if (empty) {
		r = kr_errf(KR_ERR_NOT_FOUND, "device %.40s is not in the "
		    "registry", argv[1]);
		goto fail;
	}
	if ((r = kr_registry_get(txn, dbi, argv[1], &d)) != 0)
		goto fail;
	if (cli->json) {
		json_t *o = device_json(&d);

		json_dumpf(o, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(o);
	} else
		print_device(&d);
	r = KR_EXIT_OK;
	goto out;
fail:
	r = kr_cli_fail(cli, r);
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_log_close(log);
	return r;
}

static int
list_cb(const struct kr_device *d, void *arg)
{
	json_t *a = arg;
	char hx[17];

	if (a != NULL)
		return json_array_append_new(a, device_json(d)) == 0 ? 0 :
		    KR_ERR_ALLOC;
	kr_hex(d->signer, 8, hx);
	printf("%-20s %-24s %-10s %-5zu %s\n", d->unique_id, d->part_number,
	    d->model, d->nkeys, hx);
	return 0;
}

static int
cmd_list(struct kr_cli *cli, int argc, char **argv)
{
	struct kr_log *log = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	json_t *a = NULL;
	int r, empty;

	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		printf("usage: keyroom [--json] manifest list\n\nList the "
		    "devices in the registry: uniqueId, part number, model,\n"
		    "number of keys (0: lite entry), signer (SHA-256 prefix).\n"
		    "Exit: 0 ok, 1 error, 2 usage.\n");
		return KR_EXIT_OK;
	}
	if (argc != 1)
		return kr_cli_usage_error("manifest list", "");
	if ((r = open_ro(cli, &log, &txn, &dbi, &empty)) != 0)
		goto fail;
	if (cli->json)
		a = json_array();
	else
		printf("%-20s %-24s %-10s %-5s %s\n", "UNIQUEID", "PART",
		    "MODEL", "KEYS", "SIGNER");
	if (!empty && (r = kr_registry_foreach(txn, dbi, list_cb, a)) != 0)
		goto fail;
	if (a != NULL) {
		json_t *o = json_pack("{s:O}", "devices", a);

		json_dumpf(o, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(o);
	}
	r = KR_EXIT_OK;
	goto out;
fail:
	r = kr_cli_fail(cli, r);
out:
	json_decref(a);
	if (txn != NULL)
		mdb_txn_abort(txn);
	kr_log_close(log);
	return r;
}

static const struct kr_cmd manifest_cmds[] = {
	{ "verify", cmd_verify, "[--policy F] FILE...",
	    "verify manifests against the policy (no changes)" },
	{ "import", cmd_import, "[--policy F] FILE...",
	    "verify and record entries in the device registry" },
	{ "show", cmd_show, "UNIQUEID", "show one device of the registry" },
	{ "list", cmd_list, "", "list the devices in the registry" },
	{ NULL, NULL, NULL, NULL },
};

int
cmd_manifest(struct kr_cli *cli, int argc, char **argv)
{
	return kr_cli_dispatch(cli, "keyroom manifest", manifest_cmds,
	    argc - 1, argv + 1);
}
