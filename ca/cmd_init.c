/*
 * cmd_init.c - `keyroom init`: a new state directory with keyroom.yaml, the
 * embedded SoftHSM2 store (unless a module is configured), the root,
 * issuing and audit tokens, the audit token's random PIN and its Ed25519
 * checkpoint key. On failure the half-made state directory is removed.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ca/calog.h"
#include "ca/config.h"
#include "ca/hsm.h"
#include "lib/commands.h"
#include "lib/util.h"

#define AUDIT_PIN_BYTES 32

static const char usage_text[] =
    "usage: keyroom [--state DIR] init [--pin SPEC] [--so-pin SPEC] "
    "[--module PATH]\n"
    "                    [--origin ORIGIN]\n\n"
    "Create the appliance state directory DIR (default ./keyroom-state):\n"
    "keyroom.yaml, an embedded SoftHSM2 token store (unless --module names\n"
    "a PKCS#11 module), the tokens keyroom-root and keyroom-issuing (user\n"
    "PIN from --pin), and keyroom-audit (random PIN kept in\n"
    "audit-token.pin) holding the Ed25519 audit checkpoint key.\n\n"
    "  --pin SPEC     user PIN of the root and issuing tokens: file:PATH,\n"
    "                 fd:N or env:NAME; prompted without echo if absent\n"
    "  --so-pin SPEC  security officer PIN; absent: random and forgotten\n"
    "  --module PATH  use this PKCS#11 module instead of SoftHSM2\n"
    "  --origin O     audit log origin (checkpoint first line)\n\n"
    "An existing state directory is refused. Exit: 0 ok, 1 error (nothing\n"
    "left behind), 2 usage.\n";

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		return rmdir(path) == -1 ? -1 : 0;
	return unlink(path) == -1 ? -1 : 0;
}

/* Remove the state directory we created (depth first, no symlinks). */
static void
remove_state(const char *dir)
{
	(void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
read_pin(const char *spec, const char *what, char **pin, size_t *len)
{
	char prompt[96], *again = NULL;
	size_t alen = 0;
	int r;

	if ((r = kr_snprintf(prompt, sizeof(prompt), "%s: ", what)) != 0 ||
	    (r = kr_read_secret(spec, prompt, pin, len, KR_PIN_MAX)) != 0)
		return r;
	if (*len < 4) {
		r = kr_errf(KR_ERR_PIN, "%s: at least 4 characters", what);
		goto fail;
	}
	if (spec != NULL)
		return 0;
	if ((r = kr_snprintf(prompt, sizeof(prompt), "repeat %s: ",
	    what)) != 0 ||
	    (r = kr_read_secret(NULL, prompt, &again, &alen,
	    KR_PIN_MAX)) != 0)
		goto fail;
	if (alen != *len || CRYPTO_memcmp(again, *pin, alen) != 0) {
		kr_secure_free(again, KR_PIN_MAX);
		r = kr_errf(KR_ERR_PIN, "%s: the two entries differ", what);
		goto fail;
	}
	kr_secure_free(again, KR_PIN_MAX);
	return 0;
 fail:
	kr_secure_free(*pin, KR_PIN_MAX);
	*pin = NULL;
	return r;
}

/* A random PIN: hex of n bytes from the token RNG, in secure memory. */
static int
random_pin(struct kr_hsm *hsm, const char *token, char **out, size_t *len)
{
	uint8_t raw[AUDIT_PIN_BYTES];
	char *pin;
	int r;

	if ((pin = kr_secure_alloc(KR_PIN_MAX)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "secure memory");
	if ((r = kr_hsm_random_public(hsm, token, raw, sizeof(raw))) != 0) {
		kr_secure_free(pin, KR_PIN_MAX);
		return r;
	}
	kr_hex(raw, sizeof(raw), pin);
	OPENSSL_cleanse(raw, sizeof(raw));
	*out = pin;
	*len = 2 * sizeof(raw);
	return 0;
}

static int
do_init(struct kr_cli *cli, const char *pin_spec, const char *so_spec,
    const char *module_opt, const char *origin, json_t *report)
{
	struct kr_config cfg;
	struct kr_state_paths p;
	struct kr_hsm *hsm = NULL;
	struct kr_token *tok = NULL;
	struct kr_key *key = NULL;
	char *pin = NULL, *so = NULL, *apin = NULL, *yaml = NULL;
	char module[PATH_MAX], line[KR_PIN_MAX + 2];
	size_t pinlen = 0, solen = 0, apinlen = 0;
	const char *tokens[2];
	int r, i;

	kr_config_defaults(&cfg);
	if (module_opt != NULL && (r = kr_snprintf(cfg.module,
	    sizeof(cfg.module), "%s", module_opt)) != 0)
		return kr_errctx(r, "--module");
	if (origin != NULL && (origin[0] == '\0' || (r = kr_snprintf(
	    cfg.audit_origin, sizeof(cfg.audit_origin), "%s", origin)) != 0))
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "--origin: 1..%d bytes",
		    KR_ORIGIN_MAX - 1);
	if ((r = kr_state_paths(cli->state, &p)) != 0)
		return r;
	if (access(p.dir, F_OK) == 0)
		return kr_errf(KR_ERR_EXISTS, "%s: state directory exists; "
		    "refusing to initialise it again", p.dir);
	/* Check a configured module loads before asking for PINs. */
	if ((r = read_pin(pin_spec, "token user PIN", &pin, &pinlen)) != 0)
		goto out;
	if (so_spec != NULL &&
	    (r = read_pin(so_spec, "token SO PIN", &so, &solen)) != 0)
		goto out;
	if (mkdir(p.dir, 0700) == -1) {
		r = errno == EEXIST ? kr_errf(KR_ERR_EXISTS, "%s: state "
		    "directory exists; refusing to initialise it again",
		    p.dir) : kr_err_sys("mkdir %s", p.dir);
		goto out_keep;
	}
	/* keyroom.yaml is rendered now but written last: a directory
	 * without it is not a state directory (an interrupted init). */
	if ((r = kr_config_render(&cfg, &yaml)) != 0)
		goto out;
	if (cfg.module[0] == '\0' && (r = kr_config_write_softhsm(&p)) != 0)
		goto out;
	if (mkdir(p.certs, 0755) == -1) {
		r = kr_err_sys("mkdir %s", p.certs);
		goto out;
	}
	if ((r = kr_config_module(&cfg, &p, module, sizeof(module))) != 0 ||
	    (r = kr_hsm_load(module, &hsm)) != 0)
		goto out;
	tokens[0] = cfg.token_root;
	tokens[1] = cfg.token_issuing;
	if (so == NULL) {
		/* A random SO PIN nobody keeps (see keyroom-init(1)). */
		uint8_t raw[AUDIT_PIN_BYTES];

		if ((so = kr_secure_alloc(KR_PIN_MAX)) == NULL ||
		    RAND_bytes(raw, sizeof(raw)) != 1) {
			r = kr_errf(KR_ERR_ALLOC, "random SO PIN");
			goto out;
		}
		kr_hex(raw, sizeof(raw), so);
		solen = 2 * sizeof(raw);
		OPENSSL_cleanse(raw, sizeof(raw));
	}
	for (i = 0; i < 2; i++) {
		if ((r = kr_hsm_init_token(hsm, tokens[i], so, solen, pin,
		    pinlen)) != 0)
			goto out;
	}
	/* The audit token: random PIN from the HSM, kept 0600. */
	if ((r = random_pin(hsm, cfg.token_root, &apin, &apinlen)) != 0 ||
	    (r = kr_hsm_init_token(hsm, cfg.token_audit, so, solen, apin,
	    apinlen)) != 0)
		goto out;
	if ((r = kr_snprintf(line, sizeof(line), "%s\n", apin)) != 0 ||
	    (r = kr_write_new_file(p.audit_pin, line, strlen(line),
	    0600)) != 0)
		goto out;
	if ((r = kr_token_open(hsm, cfg.token_audit, apin, apinlen,
	    &tok)) != 0 ||
	    (r = kr_token_generate(tok, KR_KEY_ED25519, cfg.audit_key_label,
	    &key)) != 0)
		goto out;
	/* The LMDB log: init (verifier key) + key-generate, checkpointed. */
	if ((r = kr_calog_init(p.log, cfg.audit_origin, key,
	    cfg.token_audit)) != 0 ||
	    (r = kr_write_new_file(p.config, yaml, strlen(yaml), 0600)) != 0)
		goto out;
	json_object_set_new(report, "state", json_string(p.dir));
	json_object_set_new(report, "module", json_string(module));
	json_object_set_new(report, "embedded_softhsm",
	    json_boolean(cfg.module[0] == '\0'));
	json_object_set_new(report, "tokens", json_pack("[sss]",
	    cfg.token_root, cfg.token_issuing, cfg.token_audit));
	json_object_set_new(report, "audit_key", json_string(
	    cfg.audit_key_label));
	json_object_set_new(report, "audit_origin", json_string(
	    cfg.audit_origin));
	r = 0;
 out:
	if (r != 0 && access(p.dir, F_OK) == 0)
		remove_state(p.dir);
 out_keep:
	OPENSSL_cleanse(line, sizeof(line));
	kr_key_free(key);
	kr_token_close(tok);
	kr_hsm_free(hsm);
	kr_secure_free(pin, KR_PIN_MAX);
	kr_secure_free(so, KR_PIN_MAX);
	kr_secure_free(apin, KR_PIN_MAX);
	free(yaml);
	return r;
}

int
cmd_init(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin", required_argument, NULL, 'p' },
		{ "so-pin", required_argument, NULL, 's' },
		{ "module", required_argument, NULL, 'm' },
		{ "origin", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pin = NULL, *so = NULL, *module = NULL, *origin = NULL;
	json_t *rep = NULL;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p': pin = optarg; break;
		case 's': so = optarg; break;
		case 'm': module = optarg; break;
		case 'o': origin = optarg; break;
		case 'h':
			fputs(usage_text, stdout);
			return KR_EXIT_OK;
		default:
			fputs(usage_text, stderr);
			return KR_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(usage_text, stderr);
		return KR_EXIT_USAGE;
	}
	if ((rep = json_object()) == NULL)
		return kr_cli_fail(cli, kr_errf(KR_ERR_ALLOC, "json"));
	if ((r = do_init(cli, pin, so, module, origin, rep)) != 0) {
		json_decref(rep);
		return kr_cli_fail(cli, r);
	}
	if (cli->json) {
		kr_cli_json(json_incref(rep));
	} else if (!cli->quiet) {
		printf("initialised %s\n  PKCS#11 module: %s\n  tokens: "
		    "%s, %s, %s\n  audit key: %s (Ed25519)\n",
		    json_string_value(json_object_get(rep, "state")),
		    json_string_value(json_object_get(rep, "module")),
		    json_string_value(json_array_get(json_object_get(rep,
		    "tokens"), 0)),
		    json_string_value(json_array_get(json_object_get(rep,
		    "tokens"), 1)),
		    json_string_value(json_array_get(json_object_get(rep,
		    "tokens"), 2)),
		    json_string_value(json_object_get(rep, "audit_key")));
	}
	json_decref(rep);
	return KR_EXIT_OK;
}
