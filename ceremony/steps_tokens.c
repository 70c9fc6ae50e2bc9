/*
 * steps_tokens.c - ceremony steps on tokens and quorums: note,
 * init-tokens, split-pin, unlock, generate-key, generate-audit-key,
 * reshare, destroy-key.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "audit/qr.h"
#include "ceremony/card.h"
#include "ceremony/qstore.h"
#include "ceremony/run_int.h"
#include "ceremony/tokenops.h"
#include "lib/util.h"

int
step_note(struct crun *c, const struct kr_step *st)
{
	crun_detail(c, "%s", st->say != NULL ? "confirmed" : "done");
	return 0;
}

/* Secret bytes from the HSM's RNG (the audit token answers without a
 * login), in secure memory. */
static int
hsm_secret(struct crun *c, uint8_t **out)
{
	uint8_t *s;
	int r;

	*out = NULL;
	if ((s = kr_secure_alloc(KR_Q_SECRET_LEN)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "secure memory");
	if ((r = kr_hsm_random_public(c->a->hsm, c->a->cfg.token_audit, s,
	    KR_Q_SECRET_LEN)) != 0) {
		kr_secure_free(s, KR_Q_SECRET_LEN);
		return r;
	}
	*out = s;
	return 0;
}

static int
read_init_pin(struct crun *c, const char *label, char **pin, size_t *len)
{
	int r;

	if (c->o->init_pin == NULL && !c->o->shares.interactive)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "token %s exists (made "
		    "by keyroom init): give its initial PIN with --init-pin "
		    "SPEC", label);
	if ((r = kr_read_secret(c->o->init_pin, "initial token PIN (from "
	    "keyroom init): ", pin, len, KR_PIN_MAX)) != 0)
		return kr_errctx(r, "--init-pin");
	return 0;
}

int
step_init_tokens(struct crun *c, const struct kr_step *st)
{
	const json_t *toks = json_object_get(st->params, "tokens"), *t;
	const struct kr_script_quorum *q;
	char *ipin = NULL, so[2 * KR_Q_SECRET_LEN + 1], pin[KR_Q_PIN_LEN + 1];
	char done[256] = "";
	struct kr_token *probe = NULL;
	uint8_t *so_raw = NULL;
	size_t i, ilen = 0;
	const char *label;
	int r = 0, role, exists;

	/* First check everything, then change anything. */
	json_array_foreach(toks, i, t) {
		role = crun_role(json_string_value(t));
		label = kr_appl_token(c->a, c->role[role].name);
		q = kr_script_quorum_find(c->s, c->role[role].name);
		if (c->role[role].secret != NULL)
			return kr_errf(KR_ERR_STATE, "token %s initialised "
			    "twice in this ceremony", label);
		if (q->oob)
			continue;
		if ((r = kr_tokenop_exists(c->a->module, label, &exists)) != 0)
			return r;
		c->role[role].existed = exists;
		if (!exists || ipin != NULL)
			continue;
		if ((r = read_init_pin(c, label, &ipin, &ilen)) != 0)
			goto out;
	}
	json_array_foreach(toks, i, t) {
		role = crun_role(json_string_value(t));
		label = kr_appl_token(c->a, c->role[role].name);
		if (!c->role[role].existed)
			continue;
		/* The initial PIN must work before anything changes. */
		if ((r = kr_token_open(c->a->hsm, label, ipin, ilen,
		    &probe)) != 0)
			goto out;
		kr_token_close(probe);
		probe = NULL;
	}
	json_array_foreach(toks, i, t) {
		struct crole *cr;

		role = crun_role(json_string_value(t));
		cr = &c->role[role];
		label = kr_appl_token(c->a, cr->name);
		q = kr_script_quorum_find(c->s, cr->name);
		if (q->oob) {
			snprintf(done + strlen(done), sizeof(done) -
			    strlen(done), "%s%s: PIN-entry device", *done ?
			    ", " : "", label);
			continue;
		}
		if ((r = hsm_secret(c, &cr->secret)) != 0)
			goto out;
		if (!cr->existed) {
			if ((r = hsm_secret(c, &so_raw)) != 0)
				goto out;
			kr_hex(so_raw, KR_Q_SECRET_LEN, so);
			kr_quorum_pin_text(cr->secret, pin);
			r = kr_hsm_init_token(c->a->hsm, label, so,
			    strlen(so), pin, KR_Q_PIN_LEN);
			OPENSSL_cleanse(so, sizeof(so));
			OPENSSL_cleanse(pin, sizeof(pin));
			kr_secure_free(so_raw, KR_Q_SECRET_LEN);
			so_raw = NULL;
			if (r != 0)
				goto out;
		}
		/* Kept for split-pin: until then the new PIN is only here. */
		if ((cr->pin = kr_secure_alloc(KR_PIN_MAX)) == NULL) {
			r = kr_errf(KR_ERR_ALLOC, "secure memory");
			goto out;
		}
		if (cr->existed) {
			memcpy(cr->pin, ipin, ilen);
			cr->pinlen = ilen;
		} else {
			kr_quorum_pin_text(cr->secret, cr->pin);
			cr->pinlen = KR_Q_PIN_LEN;
		}
		snprintf(done + strlen(done), sizeof(done) - strlen(done),
		    "%s%s: %s", *done ? ", " : "", label, cr->existed ?
		    "taken over, new random PIN drawn" :
		    "initialised with a random PIN");
	}
	crun_detail(c, "%s", done);
 out:
	kr_token_close(probe);
	kr_secure_free(ipin, KR_PIN_MAX);
	return r;
}

/* "Custodian A" -> "Custodian-A" for a file name. */
static void
file_safe(const char *in, char *out, size_t cap)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < cap; i++)
		out[i] = isalnum((unsigned char)in[i]) ? in[i] : '-';
	out[i] = '\0';
}

/* The card's QR code as PNG and SVG next to its text file (0600). */
static int
card_qr_files(struct crun *c, const char *card, const struct kr_share *s)
{
	char compact[KR_CARD_TEXT_MAX], path[PATH_MAX], *svg = NULL;
	int r;

	(void)c;
	if ((r = kr_card_code(s, 1, compact, sizeof(compact))) != 0 ||
	    (r = kr_snprintf(path, sizeof(path), "%s.png", card)) != 0 ||
	    (r = kr_qr_write_png_mode(path, compact, 8, 0600)) != 0 ||
	    (r = kr_qr_svg(compact, 8, &svg)) != 0 ||
	    (r = kr_snprintf(path, sizeof(path), "%s.svg", card)) != 0 ||
	    (r = kr_write_new_file(path, svg, strlen(svg), 0600)) != 0)
		goto out;
 out:
	if (svg != NULL)
		kr_free_wipe(svg, strlen(svg));
	OPENSSL_cleanse(compact, sizeof(compact));
	return r;
}

static int
emit_cards(struct crun *c, const struct kr_qset *set,
    const struct kr_share *sh)
{
	char path[PATH_MAX], name[KR_Q_NAME_MAX], id[KR_Q_ID_HEX];
	char code[KR_CARD_TEXT_MAX], text[KR_CARD_TEXT_MAX + 512];
	unsigned i;
	int r = 0;

	kr_qset_id_hex(set->id, id);
	if (c->o->cards_dir == NULL) {
		for (i = 0; i < set->n && r == 0; i++)
			r = kr_card_print(c->out, set, &sh[i], !c->cli->quiet);
		return r;
	}
	if ((r = kr_mkdirs(c->o->cards_dir, 0700)) != 0)
		return r;
	for (i = 0; i < set->n; i++) {
		file_safe(set->member[i].name, name, sizeof(name));
		if ((r = kr_card_code(&sh[i], 0, code, sizeof(code))) != 0 ||
		    (r = kr_snprintf(text, sizeof(text), "# keyroom share card"
		    ": token role %s, custodian %s\n# share set %s, share %u "
		    "of %u, %u needed, created %s\n%s", set->label,
		    set->member[i].name, id, i + 1, set->n, set->m,
		    set->created, code)) != 0 ||
		    (r = kr_snprintf(path, sizeof(path), "%s/%s-%u-%s-%.8s.card",
		    c->o->cards_dir, set->label, i + 1, name, id)) != 0)
			break;
		r = kr_write_new_file(path, text, strlen(text), 0600);
		if (r != 0 || (r = card_qr_files(c, path, &sh[i])) != 0)
			break;
		fprintf(c->out, "  card for %s written: %s (+ .png, .svg)\n",
		    set->member[i].name, path);
	}
	OPENSSL_cleanse(code, sizeof(code));
	OPENSSL_cleanse(text, sizeof(text));
	return r;
}

/* Rebuild the secret from the first M shares: the cards are right. */
static int
selfcheck(const struct kr_qset *set, const struct kr_share *sh,
    const uint8_t *secret)
{
	struct kr_unlock *u = NULL;
	uint8_t *got = NULL;
	unsigned i;
	int r;

	if ((got = kr_secure_alloc(KR_Q_SECRET_LEN)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "secure memory");
	if ((r = kr_unlock_new(set, &u)) != 0)
		goto out;
	for (i = set->n - set->m; i < set->n && r == 0; i++)
		r = kr_unlock_add(u, &sh[i], NULL, 0);
	if (r == 0)
		r = kr_unlock_combine(u, got);
	if (r == 0 && CRYPTO_memcmp(got, secret, KR_Q_SECRET_LEN) != 0)
		r = kr_errf(KR_ERR_INTERNAL, "split does not recombine");
 out:
	kr_unlock_free(u);
	kr_secure_free(got, KR_Q_SECRET_LEN);
	return r;
}

static int
names_list(const struct kr_qset *set, char *buf, size_t len)
{
	size_t off = 0;
	unsigned i;
	int r;

	buf[0] = '\0';
	for (i = 0; i < set->n; i++) {
		if ((r = kr_snprintf(buf + off, len - off, "%s%u=%s", i ? ", " :
		    "", i + 1, set->member[i].name)) != 0)
			return r;
		off += strlen(buf + off);
	}
	return 0;
}

/*
 * Crash-test hook: with KEYROOM_TEST_CEREMONY_CRASH=<where> the process
 * SIGKILLs itself at that point of a PIN change ("pending-committed",
 * "pin-changed"). No-op otherwise.
 */
static void
crash_point(const char *where)
{
	const char *e = getenv("KEYROOM_TEST_CEREMONY_CRASH");

	if (e != NULL && strcmp(e, where) == 0) {
		fprintf(stderr, "keyroom: test crash point: %s\n", where);
		(void)kill(getpid(), SIGKILL);
	}
}

/* Commit set as pending (cards about to be issued, PIN not yet changed). */
static int
commit_pending(struct crun *c, struct kr_qset *set)
{
	struct kr_ltx *ltx = NULL;
	char id[KR_Q_ID_HEX], det[128];
	int r;

	set->pending = 1;
	kr_qset_id_hex(set->id, id);
	if ((r = kr_snprintf(det, sizeof(det), "share set %s (%s) pending: "
	    "cards next, then the token PIN changes", id, set->label)) != 0 ||
	    (r = kr_log_begin(c->a->log, &ltx)) != 0)
		return r;
	if ((r = kr_ltx_appendf(ltx, KR_E_CEREMONY_STEP, c->actor, NULL,
	    "ceremony", c->s->id, "step", "-", "action", "pin-change",
	    "result", "pending", "detail", det, NULL)) != 0 ||
	    (r = kr_qstore_put(c->a->log, kr_ltx_mdb(ltx), set, 0)) != 0) {
		kr_ltx_abort(ltx);
		return r;
	}
	return kr_ltx_commit(ltx, &c->a->signer, NULL);
}

/*
 * Split `secret` for role with (m, n, names), print the cards, move the
 * token from old_pin to the new PIN, and keep the token open.
 *
 * Crash safety of a PIN change: the new set is committed as pending,
 * then its cards are issued, then C_SetPIN; the step's commit makes it
 * active. A crash before C_SetPIN leaves the old cards working (the
 * pending set is retired at the next unlock with them, or when its own
 * cards fail to log in); a crash after it leaves the new cards working
 * (the next unlock with them makes the pending set active). Cards are
 * never lost: they exist before the PIN they rebuild is set.
 */
static int
split_and_set(struct crun *c, int role, const uint8_t *secret, unsigned m,
    unsigned n, const char *const *names, struct kr_qset **out)
{
	struct crole *cr = &c->role[role];
	const char *label = kr_appl_token(c->a, cr->name);
	struct kr_qset *set = NULL;
	struct kr_share *sh = NULL;
	char *pin = NULL;
	int r;

	*out = NULL;
	if ((r = kr_quorum_split(secret, cr->name, m, n, names, &set,
	    &sh)) != 0 || (r = selfcheck(set, sh, secret)) != 0)
		goto out;
	if ((pin = kr_secure_alloc(KR_PIN_MAX)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "secure memory");
		goto out;
	}
	kr_quorum_pin_text(secret, pin);
	if (cr->pinlen != KR_Q_PIN_LEN || CRYPTO_memcmp(cr->pin, pin,
	    KR_Q_PIN_LEN) != 0) {
		/*
		 * The token still has the old PIN: pending set, cards, then
		 * close, change, reopen.
		 */
		if ((r = commit_pending(c, set)) != 0 ||
		    (r = emit_cards(c, set, sh)) != 0)
			goto out;
		crash_point("pending-committed");
		crun_forget_keys(c, role);
		kr_token_close(cr->tok);
		cr->tok = NULL;
		if ((r = kr_tokenop_set_pin(c->a->module, label, cr->pin,
		    cr->pinlen, pin, KR_Q_PIN_LEN)) != 0)
			goto out;
		crash_point("pin-changed");
		memcpy(cr->pin, pin, KR_Q_PIN_LEN + 1);
		cr->pinlen = KR_Q_PIN_LEN;
		set->pending = 0;	/* the step's commit makes it active */
	} else if ((r = emit_cards(c, set, sh)) != 0)
		goto out;
	crun_forget_keys(c, role);
	kr_token_close(cr->tok);
	cr->tok = NULL;
	if ((r = kr_token_open(c->a->hsm, label, cr->pin, cr->pinlen,
	    &cr->tok)) != 0)
		goto out;
	*out = set;
	set = NULL;
 out:
	kr_secure_free(pin, KR_PIN_MAX);
	kr_shares_free(sh, n);
	free(set);
	return r;
}

int
step_split_pin(struct crun *c, const struct kr_step *st)
{
	const char *rname = kr_step_str(st, "token", "");
	int role = crun_role(rname);
	struct crole *cr = &c->role[role];
	const struct kr_script_quorum *q = kr_script_quorum_find(c->s, rname);
	struct kr_qset *set = NULL, *old = NULL;
	MDB_txn *txn = NULL;
	char id[KR_Q_ID_HEX], names[1024];
	int r;

	if ((r = kr_log_read_begin(c->a->log, &txn)) != 0)
		return r;
	r = kr_qstore_active(c->a->log, txn, rname, &old);
	mdb_txn_abort(txn);
	if (r == 0) {
		kr_qset_id_hex(old->id, id);
		free(old);
		return kr_errf(KR_ERR_EXISTS, "token role %s already has share "
		    "set %s: use a reshare ceremony", rname, id);
	}
	if (r != KR_ERR_STATE)
		return r;
	if (q->oob) {
		if ((r = kr_quorum_oob_set(rname, &set)) != 0)
			return r;
		kr_qset_id_hex(set->id, id);
		c->put_set = set;
		crun_detail(c, "share set %s: %s authenticated out of band "
		    "(PIN-entry device)", id, rname);
		return 0;
	}
	if (cr->secret == NULL)
		return kr_errf(KR_ERR_STATE, "split-pin %s: no new PIN was "
		    "drawn (init-tokens must come first)", rname);
	if ((r = split_and_set(c, role, cr->secret, q->m, q->n,
	    q->custodians, &set)) != 0)
		return r;
	kr_secure_free(cr->secret, KR_Q_SECRET_LEN);
	cr->secret = NULL;
	kr_qset_id_hex(set->id, id);
	if ((r = names_list(set, names, sizeof(names))) != 0) {
		free(set);
		return r;
	}
	c->put_set = set;
	crun_detail(c, "token %s: share set %s, %u of %u: %s",
	    kr_appl_token(c->a, rname), id, set->m, set->n, names);
	return 0;
}

int
step_unlock(struct crun *c, const struct kr_step *st)
{
	const char *rname = kr_step_str(st, "token", "");
	struct kr_token *tok;
	int r;

	if ((r = crun_token(c, crun_role(rname), &tok)) != 0)
		return r;
	crun_detail(c, "token %s logged in", kr_token_label(tok));
	return 0;
}

static int
spki_sha256(EVP_PKEY *pk, uint8_t h[32])
{
	uint8_t *der = NULL;
	int len;

	if ((len = i2d_PUBKEY(pk, &der)) <= 0)
		return kr_err_ssl("public key");
	kr_sha256(der, (size_t)len, h);
	OPENSSL_free(der);
	return 0;
}

int
step_generate_key(struct crun *c, const struct kr_step *st)
{
	const char *rname = kr_step_str(st, "token", "");
	int role = crun_role(rname);
	struct kr_profile *prof = role == ROLE_ROOT ? &c->a->cfg.root :
	    &c->a->cfg.intermediate;
	const char *alg = kr_step_str(st, "algorithm", NULL);
	struct kr_token *tok;
	struct kr_key *key = NULL, **slot;
	enum kr_key_type type = prof->algorithm;
	uint8_t h[32];
	char hex[65], klabel[KR_KEY_LABEL_MAX + 8];
	int next = crun_next(st), r;

	slot = next ? &c->role[role].next_key : &c->role[role].key;
	if ((r = crun_key_label(c, role, next, klabel, sizeof(klabel))) != 0)
		return r;
	if (alg != NULL && (type = kr_key_type_parse(alg)) == KR_KEY_NONE)
		return kr_errf(KR_ERR_UNSUPPORTED, "algorithm %s", alg);
	/* This ceremony's certificates use the key it generated. */
	prof->algorithm = type;
	prof->algorithms = KR_KEY_BIT(type);
	if ((r = crun_token(c, role, &tok)) != 0 ||
	    (r = kr_token_generate(tok, type, klabel, &key)) != 0 ||
	    (r = spki_sha256(kr_hsm_pubkey(key), h)) != 0)
		goto out;
	kr_hex(h, 32, hex);
	if ((r = crun_extra(c, KR_E_KEY_GENERATE, "token", kr_token_label(tok),
	    "label", klabel, "algorithm", kr_key_type_name(type),
	    "pubkey-sha256", hex, NULL)) != 0)
		goto out;
	crun_detail(c, "%s key '%s' in token %s", kr_key_type_name(type),
	    klabel, kr_token_label(tok));
	crun_fingerprint(c, "public key", h);
	kr_key_free(*slot);
	*slot = key;	/* kept for this ceremony's steps */
	key = NULL;
 out:
	kr_key_free(key);
	return r;
}

int
step_generate_audit_key(struct crun *c, const struct kr_step *st)
{
	char vkey[512];
	uint8_t h[32];
	int r;

	(void)st;
	if ((r = kr_note_vkey(c->a->signer.name, c->a->signer.pub, vkey,
	    sizeof(vkey))) != 0)
		return r;
	fprintf(c->out, "  audit checkpoint key (C2SP vkey):\n    %s\n", vkey);
	if (!c->cli->quiet && kr_qr_print_terminal(c->out, vkey) != 0)
		fprintf(c->out, "  (no QR: %s)\n", kr_err_detail());
	kr_sha256(c->a->signer.pub, 32, h);
	crun_detail(c, "Ed25519 audit key in token %s, vkey %s",
	    c->a->cfg.token_audit, vkey);
	crun_fingerprint(c, "audit public key", h);
	return 0;
}

int
step_reshare(struct crun *c, const struct kr_step *st)
{
	const char *rname = kr_step_str(st, "token", "");
	int role = crun_role(rname);
	const json_t *cl = json_object_get(st->params, "custodians"), *e;
	const char *names[KR_Q_MAX_N];
	struct kr_qset *old = NULL, *new = NULL;
	struct kr_token *tok;
	uint8_t *secret = NULL;
	char oid[KR_Q_ID_HEX], nid[KR_Q_ID_HEX], thr[32], list[1024];
	MDB_txn *txn = NULL;
	size_t i;
	int r;

	json_array_foreach(cl, i, e)
		names[i] = json_string_value(e);
	if ((r = kr_log_read_begin(c->a->log, &txn)) != 0)
		return r;
	r = kr_qstore_active(c->a->log, txn, rname, &old);
	mdb_txn_abort(txn);
	if (r != 0)
		return r;
	if (old->oob) {
		r = kr_errf(KR_ERR_STATE, "token role %s is authenticated out "
		    "of band: nothing to reshare", rname);
		goto out;
	}
	/* M of the current custodians (unless unlocked in this ceremony). */
	if ((r = crun_token(c, role, &tok)) != 0 ||
	    (r = hsm_secret(c, &secret)) != 0)
		goto out;
	if ((r = split_and_set(c, role, secret,
	    (unsigned)kr_step_int(st, "m", 0), (unsigned)kr_step_int(st, "n",
	    0), names, &new)) != 0)
		goto out;
	old->retired = 1;
	memcpy(old->successor, new->id, KR_Q_ID_LEN);
	kr_time_rfc3339(time(NULL), old->retired_at);
	kr_qset_id_hex(old->id, oid);
	kr_qset_id_hex(new->id, nid);
	if ((r = kr_snprintf(thr, sizeof(thr), "%u-of-%u", new->m,
	    new->n)) != 0 || (r = names_list(new, list, sizeof(list))) != 0 ||
	    (r = crun_extra(c, KR_E_RESHARE, "token", kr_appl_token(c->a,
	    rname), "old-share-set", oid, "new-share-set", nid, "threshold",
	    thr, "shares", list, NULL)) != 0)
		goto out;
	crun_detail(c, "token %s: share set %s retired, new share set %s %s: "
	    "%s", kr_appl_token(c->a, rname), oid, nid, thr, list);
	c->retire_set = old;
	c->put_set = new;
	old = new = NULL;
 out:
	kr_secure_free(secret, KR_Q_SECRET_LEN);
	free(old);
	free(new);
	return r;
}

int
step_destroy_key(struct crun *c, const struct kr_step *st)
{
	const char *rname = kr_step_str(st, "token", "");
	int role = crun_role(rname);
	struct kr_token *tok;
	struct kr_key *key = NULL;
	uint8_t h[32];
	char hex[65], reason[128], klabel[KR_KEY_LABEL_MAX + 8];
	size_t n = 0;
	int r;

	if ((r = crun_token(c, role, &tok)) != 0 ||
	    (r = crun_key_label(c, role, 0, klabel, sizeof(klabel))) != 0 ||
	    (r = crun_role_key(c, role, 0, &key)) != 0 ||
	    (r = spki_sha256(kr_hsm_pubkey(key), h)) != 0)
		return r;
	if ((r = kr_tokenop_destroy_key(c->a->module, kr_token_label(tok),
	    c->role[role].pin, c->role[role].pinlen, klabel, &n)) != 0)
		return r;
	kr_key_free(c->role[role].key);
	c->role[role].key = NULL;
	kr_hex(h, 32, hex);
	if ((r = kr_snprintf(reason, sizeof(reason), "retired by ceremony %s",
	    c->s->id)) != 0 ||
	    (r = crun_extra(c, KR_E_KEY_DESTROY, "token", kr_token_label(tok),
	    "label", klabel, "pubkey-sha256", hex, "reason", reason,
	    NULL)) != 0)
		return r;
	crun_detail(c, "key '%s' destroyed in token %s (%zu objects)", klabel,
	    kr_token_label(tok), n);
	crun_fingerprint(c, "destroyed public key", h);
	return 0;
}
