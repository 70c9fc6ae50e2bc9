/*
 * cmd_ca.c - `keyroom ca root|intermediate|issue|crl`: the single-shot CA
 * commands over ca/ca.h. Outputs are never overwritten; every refusal
 * happens before anything is written.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "ca/ca.h"
#include "ca/calog.h"
#include "lib/cli.h"
#include "lib/commands.h"
#include "lib/util.h"

#define MAX_REVOKED 4096

/* Everything a CA command holds; freed by ctx_free(). */
struct ctx {
	struct kr_config cfg;
	struct kr_state_paths paths;
	struct kr_hsm *hsm;
	struct kr_token *tok, *tok2;
	struct kr_key *key, *key2;
	X509 *cert, *cert2, *out;
	char *pin, *pin2;
	size_t pinlen, pin2len;
	struct kr_calog log;
};

#define ACTOR "operator"

static void
ctx_free(struct ctx *c)
{
	kr_calog_close(&c->log);	/* before the hsm it borrows */
	X509_free(c->out);
	X509_free(c->cert);
	X509_free(c->cert2);
	kr_key_free(c->key);
	kr_key_free(c->key2);
	kr_token_close(c->tok);
	kr_token_close(c->tok2);
	kr_hsm_free(c->hsm);
	kr_secure_free(c->pin, KR_PIN_MAX);
	kr_secure_free(c->pin2, KR_PIN_MAX);
}

static int
open_token(struct ctx *c, const char *label, const char *spec, char **pin,
    size_t *pinlen, struct kr_token **tok)
{
	char prompt[80];
	int r;

	if (*pin == NULL) {
		if ((r = kr_snprintf(prompt, sizeof(prompt), "PIN of token "
		    "%s: ", label)) != 0 ||
		    (r = kr_read_secret(spec, prompt, pin, pinlen,
		    KR_PIN_MAX)) != 0)
			return r;
	}
	return kr_token_open(c->hsm, label, *pin, *pinlen, tok);
}

static void
hex_serial(const uint8_t *s, size_t n, char *out)
{
	kr_hex(s, n, out);
}

static int
write_pem_cert(const char *path, const X509 *x)
{
	char *pem = NULL;
	size_t len = 0;
	int r;

	if ((r = kr_ca_cert_pem(x, &pem, &len)) != 0)
		return r;
	r = kr_write_new_file(path, pem, len, 0644);
	free(pem);
	return r;
}

/*
 * Before any HSM or log work: the output must not exist and its directory
 * must be writable, so that a signed and logged object is never stranded.
 */
static int
refuse_existing(const char *path)
{
	char dir[PATH_MAX];
	const char *slash;

	if (access(path, F_OK) == 0)
		return kr_errf(KR_ERR_EXISTS, "%s: refusing to overwrite", path);
	if ((slash = strrchr(path, '/')) == NULL)
		(void)snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		(void)snprintf(dir, sizeof(dir), "/");
	else if (kr_snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path),
	    path) != 0)
		return kr_errctx(KR_ERR_TOO_LARGE, "%s", path);
	if (access(dir, W_OK | X_OK) != 0)
		return kr_err_sys("%s: output directory %s", path, dir);
	return 0;
}

/* Report one certificate (text or JSON). */
static void
report_cert(struct kr_cli *cli, const char *what, const char *path,
    const X509 *x, const char *token, const char *label)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	char serial[2 * 21 + 1], fp[65], *subj;
	uint8_t h[32];

	hex_serial(ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn) >
	    20 ? 20 : (size_t)ASN1_STRING_length(sn), serial);
	if (kr_ca_cert_sha256(x, h) != 0)
		memset(h, 0, sizeof(h));
	kr_hex(h, sizeof(h), fp);
	subj = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
	if (cli->json) {
		kr_cli_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s?}",
		    "kind", what, "file", path, "subject", subj != NULL ? subj :
		    "", "serial", serial, "sha256", fp, "token", token, "key",
		    label));
	} else if (!cli->quiet) {
		printf("%s certificate: %s\n  subject: %s\n  serial:  %s\n"
		    "  sha256:  %s\n", what, path, subj != NULL ? subj : "",
		    serial, fp);
		if (token != NULL)
			printf("  key:     %s in token %s\n", label, token);
	}
	OPENSSL_free(subj);
}

/* --algorithm ALG (NULL: keep the profile's): the key and the only
 * algorithm the profile then allows. */
static int
profile_algorithm(struct kr_profile *prof, const char *alg)
{
	if (alg == NULL)
		return 0;
	if ((prof->algorithm = kr_key_type_parse(alg)) == KR_KEY_NONE)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "--algorithm %s: p256, "
		    "p384, rsa3072 or ed25519", alg);
	prof->algorithms = KR_KEY_BIT(prof->algorithm);
	return 0;
}

static const char root_usage[] =
    "usage: keyroom ca root [--pin SPEC] [--algorithm ALG] [--label L]\n\n"
    "Generate the root key in the root token (never extractable) and write\n"
    "the self-signed root certificate to <state>/certs/root.pem.\n"
    "  --pin SPEC       root token PIN (file:PATH, fd:N, env:NAME; "
    "prompt)\n"
    "  --algorithm ALG  p256, p384, rsa3072 or ed25519 (default: profile)\n"
    "  --label L        key label (default: keys.root of keyroom.yaml)\n"
    "Exit: 0 ok, 1 error (nothing written), 2 usage.\n";

static int
ca_root(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin", required_argument, NULL, 'p' },
		{ "algorithm", required_argument, NULL, 'a' },
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *spec = NULL, *alg = NULL, *label = NULL;
	uint8_t serial[KR_SERIAL_LEN];
	struct kr_profile prof;
	struct ctx c;
	int ch, r;

	memset(&c, 0, sizeof(c));
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p': spec = optarg; break;
		case 'a': alg = optarg; break;
		case 'l': label = optarg; break;
		case 'h': fputs(root_usage, stdout); return KR_EXIT_OK;
		default: fputs(root_usage, stderr); return KR_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(root_usage, stderr);
		return KR_EXIT_USAGE;
	}
	if ((r = kr_state_open(cli->state, &c.cfg, &c.paths, &c.hsm)) != 0)
		goto out;
	prof = c.cfg.root;
	if ((r = profile_algorithm(&prof, alg)) != 0)
		goto out;
	if (label == NULL)
		label = c.cfg.key_root;
	if ((r = refuse_existing(c.paths.root_pem)) != 0 ||
	    (r = open_token(&c, c.cfg.token_root, spec, &c.pin, &c.pinlen,
	    &c.tok)) != 0 ||
	    (r = kr_calog_open(&c.log, c.hsm, &c.cfg, &c.paths, ACTOR)) != 0 ||
	    (r = kr_token_generate(c.tok, prof.algorithm, label,
	    &c.key)) != 0 ||
	    (r = kr_calog_keygen(&c.log, c.cfg.token_root, label,
	    prof.algorithm, kr_hsm_pubkey(c.key))) != 0 ||
	    (r = kr_calog_issuer_id(kr_hsm_pubkey(c.key), c.log.issuer)) != 0)
		goto out;
	c.log.profile = "root";
	if ((r = kr_ca_random_serial(c.tok, kr_calog_serial_used, &c.log,
	    serial)) != 0 ||
	    (r = kr_calog_issue_ca(&c.log, &prof, c.key, NULL,
	    kr_hsm_pubkey(c.key), serial, time(NULL), &c.out)) != 0)
		goto out;
	if ((r = write_pem_cert(c.paths.root_pem, c.out)) != 0)
		goto out;
	report_cert(cli, "root", c.paths.root_pem, c.out, c.cfg.token_root,
	    label);
 out:
	ctx_free(&c);
	return r != 0 ? kr_cli_fail(cli, r) : KR_EXIT_OK;
}

static const char int_usage[] =
    "usage: keyroom ca intermediate [--pin SPEC] [--root-pin SPEC] "
    "[--label L]\n"
    "                              [--algorithm ALG]\n\n"
    "Generate the issuing key in the issuing token and write the\n"
    "intermediate certificate signed by the root key to\n"
    "<state>/certs/intermediate.pem, and chain.pem (intermediate + root).\n"
    "  --pin SPEC       issuing token PIN (file:, fd:, env:; prompt)\n"
    "  --root-pin SPEC  root token PIN (default: the same PIN)\n"
    "  --label L        key label (default: keys.issuing)\n"
    "  --algorithm ALG  p256, p384, rsa3072 or ed25519 (default: profile)\n"
    "Exit: 0 ok, 1 error (nothing written), 2 usage.\n";

static int
ca_intermediate(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin", required_argument, NULL, 'p' },
		{ "root-pin", required_argument, NULL, 'r' },
		{ "label", required_argument, NULL, 'l' },
		{ "algorithm", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *spec = NULL, *rspec = NULL, *label = NULL, *alg = NULL;
	struct kr_profile prof;
	uint8_t serial[KR_SERIAL_LEN];
	struct kr_issuer root;
	struct ctx c;
	char *a = NULL, *b = NULL, *chain = NULL;
	size_t alen = 0, blen = 0;
	int ch, r;

	memset(&c, 0, sizeof(c));
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p': spec = optarg; break;
		case 'r': rspec = optarg; break;
		case 'l': label = optarg; break;
		case 'a': alg = optarg; break;
		case 'h': fputs(int_usage, stdout); return KR_EXIT_OK;
		default: fputs(int_usage, stderr); return KR_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(int_usage, stderr);
		return KR_EXIT_USAGE;
	}
	if ((r = kr_state_open(cli->state, &c.cfg, &c.paths, &c.hsm)) != 0)
		goto out;
	if (label == NULL)
		label = c.cfg.key_issuing;
	prof = c.cfg.intermediate;
	if ((r = profile_algorithm(&prof, alg)) != 0)
		goto out;
	if ((r = refuse_existing(c.paths.intermediate_pem)) != 0 ||
	    (r = refuse_existing(c.paths.chain_pem)) != 0)
		goto out;
	if (access(c.paths.root_pem, F_OK) != 0) {
		r = kr_errf(KR_ERR_STATE, "%s: no root certificate (run "
		    "keyroom ca root first)", c.paths.root_pem);
		goto out;
	}
	if ((r = kr_ca_load_cert(c.paths.root_pem, &c.cert)) != 0)
		goto out;
	/* The issuing PIN first; the root PIN defaults to it. */
	if ((r = kr_read_secret(spec, "PIN of the issuing token: ", &c.pin2,
	    &c.pin2len, KR_PIN_MAX)) != 0)
		goto out;
	if (rspec == NULL) {
		if ((c.pin = kr_secure_alloc(KR_PIN_MAX)) == NULL) {
			r = kr_errf(KR_ERR_ALLOC, "secure memory");
			goto out;
		}
		memcpy(c.pin, c.pin2, c.pin2len + 1);
		c.pinlen = c.pin2len;
	}
	if ((r = open_token(&c, c.cfg.token_root, rspec, &c.pin, &c.pinlen,
	    &c.tok)) != 0 ||
	    (r = kr_token_find_key(c.tok, c.cfg.key_root, &c.key)) != 0)
		goto out;
	root.cert = c.cert;
	root.key = c.key;
	if ((r = kr_issuer_check(&root)) != 0 ||
	    (r = open_token(&c, c.cfg.token_issuing, spec, &c.pin2,
	    &c.pin2len, &c.tok2)) != 0 ||
	    (r = kr_calog_open(&c.log, c.hsm, &c.cfg, &c.paths, ACTOR)) != 0 ||
	    (r = kr_calog_issuer_id(X509_get0_pubkey(c.cert),
	    c.log.issuer)) != 0 ||
	    (r = kr_token_generate(c.tok2, prof.algorithm, label,
	    &c.key2)) != 0 ||
	    (r = kr_calog_keygen(&c.log, c.cfg.token_issuing, label,
	    prof.algorithm, kr_hsm_pubkey(c.key2))) != 0)
		goto out;
	c.log.profile = "intermediate";
	if ((r = kr_ca_random_serial(c.tok, kr_calog_serial_used, &c.log,
	    serial)) != 0 ||
	    (r = kr_calog_issue_ca(&c.log, &prof, root.key, root.cert,
	    kr_hsm_pubkey(c.key2), serial, time(NULL), &c.out)) != 0)
		goto out;
	if ((r = kr_ca_cert_pem(c.out, &a, &alen)) != 0 ||
	    (r = kr_ca_cert_pem(c.cert, &b, &blen)) != 0)
		goto out;
	if ((chain = malloc(alen + blen + 1)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "chain");
		goto out;
	}
	memcpy(chain, a, alen);
	memcpy(chain + alen, b, blen + 1);
	if ((r = kr_write_new_file(c.paths.intermediate_pem, a, alen,
	    0644)) != 0 ||
	    (r = kr_write_new_file(c.paths.chain_pem, chain, alen + blen,
	    0644)) != 0)
		goto out;
	report_cert(cli, "intermediate", c.paths.intermediate_pem, c.out,
	    c.cfg.token_issuing, label);
 out:
	free(a);
	free(b);
	free(chain);
	ctx_free(&c);
	return r != 0 ? kr_cli_fail(cli, r) : KR_EXIT_OK;
}

/* The issuing CA: intermediate.pem + its key, checked. */
static int
open_issuer(struct ctx *c, struct kr_cli *cli, const char *spec,
    struct kr_issuer *iss, int use_root)
{
	const char *pem = use_root ? c->paths.root_pem :
	    c->paths.intermediate_pem;
	int r;

	if ((r = kr_state_open(cli->state, &c->cfg, &c->paths, &c->hsm)) != 0 ||
	    (r = kr_state_not_promoting(&c->paths)) != 0)
		return r;
	pem = use_root ? c->paths.root_pem : c->paths.intermediate_pem;
	if (access(pem, F_OK) != 0)
		return kr_errf(KR_ERR_STATE, "%s: no %s certificate (run "
		    "keyroom ca %s first)", pem, use_root ? "root" :
		    "intermediate", use_root ? "root" : "intermediate");
	if ((r = kr_ca_load_cert(pem, &c->cert)) != 0 ||
	    (r = open_token(c, use_root ? c->cfg.token_root :
	    c->cfg.token_issuing, spec, &c->pin, &c->pinlen, &c->tok)) != 0 ||
	    (r = kr_token_find_key(c->tok, use_root ? c->cfg.key_root :
	    c->cfg.key_issuing, &c->key)) != 0)
		return r;
	iss->cert = c->cert;
	iss->key = c->key;
	return kr_issuer_check(iss);
}

/* Replace every "{id}" in tmpl by id. */
static int
fill_subject(const char *tmpl, const char *id, char *out, size_t len)
{
	const char *p = tmpl, *q;
	size_t off = 0, n;

	while ((q = strstr(p, "{id}")) != NULL) {
		if (id == NULL)
			return kr_errf(KR_ERR_INVALID_ARGUMENT, "subject "
			    "template '%s' needs --id", tmpl);
		n = (size_t)(q - p);
		if (off + n + strlen(id) >= len)
			return kr_errf(KR_ERR_TOO_LARGE, "subject too long");
		memcpy(out + off, p, n);
		off += n;
		memcpy(out + off, id, strlen(id));
		off += strlen(id);
		p = q + 4;
	}
	if (off + strlen(p) >= len)
		return kr_errf(KR_ERR_TOO_LARGE, "subject too long");
	memcpy(out + off, p, strlen(p) + 1);
	return 0;
}

static const char issue_usage[] =
    "usage: keyroom ca issue CSR [--subject DN] [--id HEX] [--out FILE] "
    "[--pin SPEC]\n\n"
    "Issue one device certificate for the CSR (PEM or DER) with the device\n"
    "profile, signed by the issuing key. The subject is --subject (e.g.\n"
    "/O=Acme/CN=dev1) or the profile's template with {id} replaced by\n"
    "--id; never copied from the CSR. --id HEX is the chip serial, also\n"
    "carried in the SAN HardwareModuleName when the profile enables it.\n"
    "  --out FILE   default <state>/certs/<serial>.pem; never overwritten\n"
    "  --pin SPEC   issuing token PIN (file:, fd:, env:; prompt)\n"
    "Exit: 0 ok, 1 error (nothing written), 2 usage.\n";

static int
ca_issue(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "subject", required_argument, NULL, 's' },
		{ "id", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' },
		{ "pin", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *subject = NULL, *id = NULL, *outp = NULL, *spec = NULL;
	uint8_t serial[KR_SERIAL_LEN], hwser[KR_HWSERIAL_MAX];
	char dn[KR_DN_MAX], path[PATH_MAX], sx[2 * KR_SERIAL_LEN + 1];
	struct kr_hwname hw = { NULL, 0 };
	struct kr_issue_hook hook;
	struct kr_csr *csr = NULL;
	X509_NAME *name = NULL;
	struct kr_issuer iss;
	struct ctx c;
	int ch, r;

	memset(&c, 0, sizeof(c));
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 's': subject = optarg; break;
		case 'i': id = optarg; break;
		case 'o': outp = optarg; break;
		case 'p': spec = optarg; break;
		case 'h': fputs(issue_usage, stdout); return KR_EXIT_OK;
		default: fputs(issue_usage, stderr); return KR_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fputs(issue_usage, stderr);
		return KR_EXIT_USAGE;
	}
	if (id != NULL) {
		size_t n = strlen(id);

		if (n == 0 || n % 2 != 0 || n / 2 > sizeof(hwser) ||
		    kr_unhex(id, hwser, n / 2) != 0) {
			r = kr_errf(KR_ERR_INVALID_ARGUMENT, "--id '%s': 1..%d "
			    "bytes of hex", id, KR_HWSERIAL_MAX);
			goto out;
		}
		hw.serial = hwser;
		hw.len = n / 2;
	}
	/* The hostile input first, holding no PIN and no session. */
	if ((r = kr_csr_load(argv[optind], &csr)) != 0)
		goto out;
	if ((r = kr_state_paths(cli->state, &c.paths)) != 0 ||
	    (r = kr_config_load(cli->state, &c.cfg)) != 0 ||
	    (r = kr_csr_check_profile(csr, &c.cfg.device)) != 0)
		goto out;
	if (subject == NULL && (r = fill_subject(c.cfg.device.subject, id, dn,
	    sizeof(dn))) != 0)
		goto out;
	if ((r = kr_ca_parse_dn(subject != NULL ? subject : dn, &name)) != 0)
		goto out;
	if (c.cfg.device.hw_module_name && hw.len == 0) {
		r = kr_errf(KR_ERR_INVALID_ARGUMENT, "profile device carries a "
		    "HardwareModuleName: give the chip serial with --id HEX");
		goto out;
	}
	if (outp != NULL && (r = refuse_existing(outp)) != 0)
		goto out;
	if ((r = open_issuer(&c, cli, spec, &iss, 0)) != 0 ||
	    (r = kr_calog_open(&c.log, c.hsm, &c.cfg, &c.paths, ACTOR)) != 0 ||
	    (r = kr_calog_issuer_id(X509_get0_pubkey(c.cert),
	    c.log.issuer)) != 0)
		goto out;
	c.log.profile = "device";
	if ((r = kr_ca_random_serial(c.tok, kr_calog_serial_used, &c.log,
	    serial)) != 0)
		goto out;
	kr_hex(serial, sizeof(serial), sx);
	if (outp == NULL) {
		if ((r = kr_snprintf(path, sizeof(path), "%s/%s.pem",
		    c.paths.certs, sx)) != 0)
			goto out;
		outp = path;
		if ((r = refuse_existing(outp)) != 0)
			goto out;
	}
	/* Log before release: intent, sign, issued + checkpoint, write. */
	kr_calog_hook(&c.log, &hook);
	if ((r = kr_ca_issue_device(&c.cfg.device, &iss, csr, name, serial,
	    hw.len > 0 ? &hw : NULL, time(NULL), &hook, &c.out)) != 0 ||
	    (r = write_pem_cert(outp, c.out)) != 0)
		goto out;
	report_cert(cli, "device", outp, c.out, NULL, NULL);
 out:
	X509_NAME_free(name);
	kr_csr_free(csr);
	ctx_free(&c);
	return r != 0 ? kr_cli_fail(cli, r) : KR_EXIT_OK;
}

/* "SERIALHEX[:reason]" */
static int
parse_revoked(const char *s, time_t now, struct kr_revoked *rv)
{
	char hex[2 * 20 + 1];
	const char *colon = strchr(s, ':');
	size_t n = colon != NULL ? (size_t)(colon - s) : strlen(s);

	memset(rv, 0, sizeof(*rv));
	rv->when = now;
	rv->reason = -1;
	if (n == 0 || n % 2 != 0 || n > 40)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "--revoked '%s': serial "
		    "must be 1..20 bytes of hex", s);
	memcpy(hex, s, n);
	hex[n] = '\0';
	if (kr_unhex(hex, rv->serial, n / 2) != 0)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "--revoked '%s': bad "
		    "hex", s);
	rv->len = n / 2;
	if (colon != NULL && (rv->reason = kr_crl_reason_parse(colon + 1)) < 0)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "--revoked '%s': "
		    "unknown reason (keyCompromise, superseded, "
		    "cessationOfOperation, ...)", s);
	return 0;
}

static const char crl_usage[] =
    "usage: keyroom ca crl [--revoked SERIAL[:REASON]]... [--number N]\n"
    "                     [--days D] [--root] [--out FILE] [--pin SPEC]\n\n"
    "Issue a CRL signed by the issuing key (--root: by the root key, for\n"
    "intermediates). SERIAL is hex; REASON e.g. keyCompromise, superseded.\n"
    "  --number N  CRL number; must exceed every number logged for this\n"
    "              issuer (default: the highest logged + 1)\n"
    "  --days D    nextUpdate in D days (default 30)\n"
    "  --out FILE  default <state>/certs/crl-<issuing|root>-<N>.pem\n"
    "Exit: 0 ok, 1 error (nothing written), 2 usage.\n";

static int
ca_crl(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "revoked", required_argument, NULL, 'r' },
		{ "number", required_argument, NULL, 'n' },
		{ "days", required_argument, NULL, 'd' },
		{ "root", no_argument, NULL, 'R' },
		{ "out", required_argument, NULL, 'o' },
		{ "pin", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kr_revoked *rv = NULL;
	size_t nrv = 0;
	const char *outp = NULL, *spec = NULL;
	unsigned long long number = 0;	/* 0: the next one */
	uint64_t last = 0;
	long days = 30;
	int use_root = 0, ch, r;
	time_t now = time(NULL);
	char path[PATH_MAX], *end, *data;
	X509_CRL *crl = NULL;
	struct kr_issuer iss;
	struct ctx c;
	BIO *b = NULL;
	long blen;

	memset(&c, 0, sizeof(c));
	if ((rv = calloc(MAX_REVOKED, sizeof(*rv))) == NULL)
		return kr_cli_fail(cli, kr_errf(KR_ERR_ALLOC, "revoked"));
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (nrv == MAX_REVOKED) {
				r = kr_errf(KR_ERR_TOO_LARGE, "more than %d "
				    "--revoked", MAX_REVOKED);
				goto out;
			}
			if ((r = parse_revoked(optarg, now, &rv[nrv++])) != 0)
				goto out;
			break;
		case 'n':
			number = strtoull(optarg, &end, 10);
			if (*end != '\0' || optarg[0] == '\0' ||
			    optarg[0] == '-' || number == 0) {
				r = kr_errf(KR_ERR_INVALID_ARGUMENT, "--number "
				    "'%s'", optarg);
				goto out;
			}
			break;
		case 'd':
			days = strtol(optarg, &end, 10);
			if (*end != '\0' || days < 1 || days > 3650) {
				r = kr_errf(KR_ERR_INVALID_ARGUMENT, "--days "
				    "'%s': 1..3650", optarg);
				goto out;
			}
			break;
		case 'R': use_root = 1; break;
		case 'o': outp = optarg; break;
		case 'p': spec = optarg; break;
		case 'h':
			free(rv);
			fputs(crl_usage, stdout);
			return KR_EXIT_OK;
		default:
			free(rv);
			fputs(crl_usage, stderr);
			return KR_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		free(rv);
		fputs(crl_usage, stderr);
		return KR_EXIT_USAGE;
	}
	if ((r = kr_state_paths(cli->state, &c.paths)) != 0)
		goto out;
	if (outp != NULL && (r = refuse_existing(outp)) != 0)
		goto out;
	if ((r = open_issuer(&c, cli, spec, &iss, use_root)) != 0 ||
	    (r = kr_calog_open(&c.log, c.hsm, &c.cfg, &c.paths, ACTOR)) != 0 ||
	    (r = kr_calog_issuer_id(X509_get0_pubkey(c.cert),
	    c.log.issuer)) != 0 ||
	    (r = kr_calog_crl_last(&c.log, &last)) != 0)
		goto out;
	if (number == 0)
		number = last + 1;
	else if (number <= last) {
		r = kr_errf(KR_ERR_INVALID_ARGUMENT, "--number %llu: CRL "
		    "numbers must increase; %llu was already issued", number,
		    (unsigned long long)last);
		goto out;
	}
	if (outp == NULL) {
		if ((r = kr_snprintf(path, sizeof(path), "%s/crl-%s-%llu.pem",
		    c.paths.certs, use_root ? "root" : "issuing", number)) != 0)
			goto out;
		outp = path;
		if ((r = refuse_existing(outp)) != 0)
			goto out;
	}
	/* The crl-issued entry is committed before the CRL is written. */
	if ((r = kr_ca_make_crl(&iss, rv, nrv, number, now, (int)days,
	    &crl)) != 0 ||
	    (r = kr_calog_crl(&c.log, crl, number)) != 0)
		goto out;
	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_CRL(b, crl) ||
	    (blen = BIO_get_mem_data(b, &data)) <= 0) {
		r = kr_err_ssl("CRL PEM");
		goto out;
	}
	if ((r = kr_write_new_file(outp, data, (size_t)blen, 0644)) != 0)
		goto out;
	if (cli->json) {
		kr_cli_json(json_pack("{s:s, s:s, s:I, s:I, s:s}", "kind", "crl",
		    "file", outp, "number", (json_int_t)number, "revoked",
		    (json_int_t)nrv, "issuer", use_root ? "root" : "issuing"));
	} else if (!cli->quiet) {
		printf("CRL: %s\n  number: %llu\n  revoked: %zu\n  signed by: "
		    "%s\n", outp, number, nrv, use_root ? "root" : "issuing");
	}
 out:
	BIO_free(b);
	X509_CRL_free(crl);
	free(rv);
	ctx_free(&c);
	return r != 0 ? kr_cli_fail(cli, r) : KR_EXIT_OK;
}

static const struct kr_cmd ca_cmds[] = {
	{ "root", ca_root, "[--pin SPEC] [--algorithm ALG]",
	    "generate the root key and self-signed root certificate" },
	{ "intermediate", ca_intermediate, "[--pin SPEC]",
	    "generate the issuing key, sign it with the root" },
	{ "issue", ca_issue, "CSR [--subject DN] [--id HEX] [--out F]",
	    "issue one device certificate" },
	{ "crl", ca_crl, "[--revoked SERIAL[:REASON]]...",
	    "issue a CRL" },
	{ NULL, NULL, NULL, NULL },
};

int
cmd_ca(struct kr_cli *cli, int argc, char **argv)
{
	return kr_cli_dispatch(cli, "keyroom ca", ca_cmds, argc - 1, argv + 1);
}
