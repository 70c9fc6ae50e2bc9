/*
 * rehearse.c - throwaway state for rehearsals (see rehearse.h).
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "ceremony/rehearse.h"
#include "lib/commands.h"
#include "lib/util.h"

#define PIN_ENV "KEYROOM_REHEARSAL_INIT_PIN"

struct kr_rehearsal {
	struct kr_cli *cli;
	struct kr_ceremony_opts *o;
	const char *saved_state;
	const char *saved_cards;
	const char *saved_init_pin;
	size_t saved_nshares;
	char dir[PATH_MAX];
	char state[PATH_MAX];
	char cards[PATH_MAX];
	char specs[KR_SHARE_SRC_MAX][PATH_MAX + 16];
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static int
has_step(const struct kr_script *s, enum kr_step_type t)
{
	size_t i;

	for (i = 0; i < s->nstep; i++)
		if (s->step[i].def->type == t)
			return 1;
	return 0;
}

/* Does the script make the (current) intermediate itself? */
static int
has_current_intermediate(const struct kr_script *s)
{
	size_t i;

	for (i = 0; i < s->nstep; i++)
		if (s->step[i].def->type == KR_STEP_SIGN_INTERMEDIATE &&
		    strcmp(kr_step_str(&s->step[i], "generation", "current"),
		    "next") != 0)
			return 1;
	return 0;
}

/* A genesis (+ intermediate unless the script makes one) with the
 * script's quorums (or 1-of-1). */
static int
write_bootstrap(const struct kr_script *s, const char *path)
{
	static const char *const roles[] = { "root", "issuing" };
	struct tbuf_s { char b[8192]; size_t n; } t;
	const struct kr_script_quorum *q;
	size_t i, j;
	int k;

	t.n = 0;
#define ADD(...) do { \
	k = snprintf(t.b + t.n, sizeof(t.b) - t.n, __VA_ARGS__); \
	if (k < 0 || (size_t)k >= sizeof(t.b) - t.n) \
		return kr_errf(KR_ERR_TOO_LARGE, "bootstrap script"); \
	t.n += (size_t)k; } while (0)
	ADD("ceremony: rehearsal-bootstrap\npurpose: throwaway PKI for a "
	    "rehearsal\nquorums:\n");
	for (i = 0; i < 2; i++) {
		q = kr_script_quorum_find(s, roles[i]);
		if (q == NULL || q->oob) {
			ADD("  %s: {m: 1, n: 1, custodians: [rehearsal]}\n",
			    roles[i]);
			continue;
		}
		ADD("  %s:\n    m: %u\n    n: %u\n    custodians:\n", roles[i],
		    q->m, q->n);
		for (j = 0; j < q->n; j++)
			ADD("      - \"%s\"\n", q->custodians[j]);
	}
	ADD("steps:\n  - do: init-tokens\n    tokens: [root, issuing]\n"
	    "  - do: split-pin\n    token: root\n"
	    "  - do: split-pin\n    token: issuing\n"
	    "  - do: generate-key\n    token: root\n"
	    "  - do: self-sign-root\n");
	if (!has_current_intermediate(s))
		ADD("  - do: generate-key\n    token: issuing\n"
		    "  - do: sign-intermediate\n");
#undef ADD
	return kr_write_new_file(path, t.b, t.n, 0600);
}

/* Offer every bootstrap card to the rehearsal ("root-1-x.card"). */
static int
offer_cards(struct kr_rehearsal *rh)
{
	struct dirent *e;
	DIR *d;
	const char *dash;
	size_t n = 0, len;
	int r = 0;

	if ((d = opendir(rh->cards)) == NULL)
		return kr_err_sys("%s", rh->cards);
	while ((e = readdir(d)) != NULL && r == 0) {
		len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".card") != 0 ||
		    (dash = strchr(e->d_name, '-')) == NULL)
			continue;
		if (n >= KR_SHARE_SRC_MAX) {
			r = kr_errf(KR_ERR_TOO_LARGE, "too many cards");
			break;
		}
		if ((r = kr_snprintf(rh->specs[n], sizeof(rh->specs[n]),
		    "%.*s=file:%s/%s", (int)(dash - e->d_name), e->d_name,
		    rh->cards, e->d_name)) != 0)
			break;
		r = kr_shares_add_arg(&rh->o->shares, rh->specs[n]);
		n++;
	}
	closedir(d);
	return r;
}

int
kr_rehearsal_begin(struct kr_cli *cli, struct kr_ceremony_opts *o,
    const struct kr_script *s, struct kr_rehearsal **out)
{
	struct kr_rehearsal *rh = NULL;
	struct kr_ceremony_opts bo;
	struct kr_cli bcli;
	char *argv[4], pin[65], boot[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	uint8_t raw[32];
	int r, ec;

	*out = NULL;
	if ((rh = calloc(1, sizeof(*rh))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "rehearsal");
	rh->cli = cli;
	rh->o = o;
	rh->saved_state = cli->state;
	rh->saved_cards = o->cards_dir;
	rh->saved_init_pin = o->init_pin;
	rh->saved_nshares = o->shares.n;
	if ((r = kr_snprintf(rh->dir, sizeof(rh->dir), "%s/keyroom-rehearsal."
	    "XXXXXX", tmp != NULL ? tmp : "/tmp")) != 0)
		goto fail;
	if (mkdtemp(rh->dir) == NULL) {
		r = kr_err_sys("mkdtemp %s", rh->dir);
		goto fail;
	}
	if ((r = kr_snprintf(rh->state, sizeof(rh->state), "%s/state",
	    rh->dir)) != 0 || (r = kr_snprintf(rh->cards, sizeof(rh->cards),
	    "%s/cards", rh->dir)) != 0 || (r = kr_snprintf(boot, sizeof(boot),
	    "%s/bootstrap.yaml", rh->dir)) != 0)
		goto fail;
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		r = kr_err_ssl("rehearsal PIN");
		goto fail;
	}
	kr_hex(raw, sizeof(raw), pin);
	setenv(PIN_ENV, pin, 1);
	bcli = *cli;
	bcli.state = rh->state;
	bcli.json = 0;
	bcli.quiet = 1;
	bcli.yes = 1;
	argv[0] = (char *)"init";
	argv[1] = (char *)"--pin";
	argv[2] = (char *)"env:" PIN_ENV;
	argv[3] = NULL;
	optind = 0;
	fflush(stdout);
	if ((ec = cmd_init(&bcli, 3, argv)) != 0) {
		r = kr_errf(KR_ERR_STATE, "rehearsal: keyroom init of %s failed "
		    "(exit %d)", rh->state, ec);
		goto fail;
	}
	cli->state = rh->state;
	o->init_pin = "env:" PIN_ENV;
	o->cards_dir = rh->cards;
	if (!has_step(s, KR_STEP_INIT_TOKENS)) {
		memset(&bo, 0, sizeof(bo));
		bo.script_path = boot;
		bo.cards_dir = rh->cards;
		bo.init_pin = o->init_pin;
		if ((r = write_bootstrap(s, boot)) != 0 ||
		    (r = kr_ceremony_run(&bcli, &bo)) != 0) {
			r = kr_errctx(r, "rehearsal bootstrap");
			goto fail;
		}
		if ((r = offer_cards(rh)) != 0)
			goto fail;
		/* Cards of the script's own splits go elsewhere. */
		if ((r = kr_snprintf(rh->cards, sizeof(rh->cards),
		    "%s/cards-rehearsal", rh->dir)) != 0)
			goto fail;
	}
	fprintf(cli->json ? stderr : stdout, "REHEARSAL: throwaway state %s "
	    "(removed afterwards)\n", rh->state);
	*out = rh;
	return 0;
 fail:
	kr_rehearsal_end(rh);
	return r;
}

void
kr_rehearsal_end(struct kr_rehearsal *rh)
{
	if (rh == NULL)
		return;
	rh->cli->state = rh->saved_state;
	rh->o->cards_dir = rh->saved_cards;
	rh->o->init_pin = rh->saved_init_pin;
	rh->o->shares.n = rh->saved_nshares;
	unsetenv(PIN_ENV);
	if (rh->dir[0] != '\0' && getenv("KEYROOM_KEEP_REHEARSAL") == NULL)
		(void)nftw(rh->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(rh);
}
