/*
 * run.c - the ceremony runner: script hash check, step table dispatch,
 * confirmation, audit entries per step, transcript (see ceremony.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit/qr.h"
#include "ceremony/rehearse.h"
#include "ceremony/run_int.h"
#include "ceremony/words.h"
#include "lib/util.h"

#define TRANSCRIPT_MAX (1024 * 1024)

/* The step table: one runner per type, in enum kr_step_type order. */
static const step_fn runners[KR_STEP__COUNT] = {
	[KR_STEP_NOTE] = step_note,
	[KR_STEP_INIT_TOKENS] = step_init_tokens,
	[KR_STEP_SPLIT_PIN] = step_split_pin,
	[KR_STEP_UNLOCK] = step_unlock,
	[KR_STEP_GENERATE_KEY] = step_generate_key,
	[KR_STEP_SELF_SIGN_ROOT] = step_self_sign_root,
	[KR_STEP_SIGN_INTERMEDIATE] = step_sign_intermediate,
	[KR_STEP_GENERATE_AUDIT_KEY] = step_generate_audit_key,
	[KR_STEP_CHECKPOINT] = step_checkpoint,
	[KR_STEP_EXPORT_CERT] = step_export_cert,
	[KR_STEP_REVOKE] = step_revoke,
	[KR_STEP_ISSUE_CRL] = step_issue_crl,
	[KR_STEP_CROSS_CERTIFY] = step_cross_certify,
	[KR_STEP_ROTATION_PACKAGE] = step_rotation_package,
	[KR_STEP_DESTROY_KEY] = step_destroy_key,
	[KR_STEP_RESHARE] = step_reshare,
	[KR_STEP_PRINT_TRANSCRIPT] = step_print_transcript,
	[KR_STEP_PROMOTE] = step_promote,
	[KR_STEP_INSTALL_POLICY] = step_install_policy,
};

int
tbuf_printf(struct tbuf *t, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *np;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return kr_errf(KR_ERR_INTERNAL, "transcript format");
	need = t->len + (size_t)n + 1;
	if (need > TRANSCRIPT_MAX)
		return kr_errf(KR_ERR_TOO_LARGE, "transcript over %d bytes",
		    TRANSCRIPT_MAX);
	if (need > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;

		while (cap < need)
			cap *= 2;
		if ((np = realloc(t->p, cap)) == NULL)
			return kr_errf(KR_ERR_ALLOC, "transcript");
		t->p = np;
		t->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
	return 0;
}

void
crun_detail(struct crun *c, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
	for (p = c->detail; *p != '\0'; p++)	/* log values are one line */
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
}

int
crun_role(const char *name)
{
	if (strcmp(name, "root") == 0)
		return ROLE_ROOT;
	if (strcmp(name, "issuing") == 0)
		return ROLE_ISSUING;
	return -1;
}

int
crun_next(const struct kr_step *st)
{
	return strcmp(kr_step_str(st, "generation", "current"), "next") == 0;
}

int
crun_key_label(struct crun *c, int role, int next, char *buf, size_t len)
{
	return kr_snprintf(buf, len, "%s%s", role == ROLE_ROOT ?
	    c->a->cfg.key_root : c->a->cfg.key_issuing, next ? "-next" : "");
}

int
crun_cert_path(struct crun *c, const char *name, int next, char *buf,
    size_t len)
{
	return kr_snprintf(buf, len, "%s/%s%s.pem", c->a->paths.certs, name,
	    next ? "-next" : "");
}

/*
 * libp11 opens its own session with C_CloseAllSessions on first use,
 * after which the token's raw session is gone: keys are found once per
 * ceremony and kept, and nothing touches a CA token's raw session after
 * it has signed.
 */
int
crun_role_key(struct crun *c, int role, int next, struct kr_key **key)
{
	struct kr_key **slot = next ? &c->role[role].next_key :
	    &c->role[role].key;
	struct kr_token *tok;
	char label[KR_KEY_LABEL_MAX + 8];
	int r;

	*key = NULL;
	if (*slot == NULL && (r = crun_token(c, role, &tok)) != 0)
		return r;
	/* Opening the token found the keys that exist (precache). */
	if (*slot == NULL && ((r = crun_key_label(c, role, next, label,
	    sizeof(label))) != 0 || (r = kr_token_find_key(tok, label,
	    slot)) != 0))
		return r;
	*key = *slot;
	return 0;
}

void
crun_forget_keys(struct crun *c, int role)
{
	kr_key_free(c->role[role].key);
	kr_key_free(c->role[role].next_key);
	c->role[role].key = NULL;
	c->role[role].next_key = NULL;
}

/* Find the role's existing CA keys while the raw session is fresh. */
static void
precache(struct crun *c, int role, struct kr_token *tok)
{
	char label[KR_KEY_LABEL_MAX + 8];
	int next;

	for (next = 0; next < 2; next++) {
		struct kr_key **slot = next ? &c->role[role].next_key :
		    &c->role[role].key;

		if (*slot != NULL || crun_key_label(c, role, next, label,
		    sizeof(label)) != 0)
			continue;
		if (kr_token_find_key(tok, label, slot) != 0)
			*slot = NULL;	/* not there (yet) */
	}
	kr_err_clear();
}

int
crun_token(struct crun *c, int role, struct kr_token **tok)
{
	struct crole *cr = &c->role[role];
	const char *label = kr_appl_token(c->a, cr->name);
	int r;

	*tok = NULL;
	if (cr->tok != NULL) {
		*tok = cr->tok;
		return 0;
	}
	if (cr->pin == NULL) {
		/* Not unlocked in this ceremony: the quorum enters shares. */
		if ((r = kr_quorum_unlock_role(c->a, &c->o->shares, cr->name,
		    c->actor, c->out, &cr->tok, &cr->pin, &cr->pinlen)) != 0)
			return r;
	} else if ((r = kr_token_open(c->a->hsm, label, cr->pin, cr->pinlen,
	    &cr->tok)) != 0)
		return r;
	precache(c, role, cr->tok);
	*tok = cr->tok;
	return 0;
}

int
crun_extra(struct crun *c, enum kr_etype type, ...)
{
	struct cextra *e;
	const char *k, *v;
	va_list ap;
	int r = 0;

	if (c->nextra >= KR_ARRAY_SIZE(c->extra))
		return kr_errf(KR_ERR_INTERNAL, "too many extra entries");
	e = &c->extra[c->nextra];
	memset(e, 0, sizeof(*e));
	e->type = type;
	va_start(ap, type);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (e->n >= KR_ARRAY_SIZE(e->k)) {
			r = kr_errf(KR_ERR_INTERNAL, "extra entry too long");
			break;
		}
		if (v == NULL)
			continue;
		if ((r = kr_snprintf(e->k[e->n], sizeof(e->k[0]), "%s",
		    k)) != 0 || (r = kr_snprintf(e->v[e->n], sizeof(e->v[0]),
		    "%s", v)) != 0)
			break;
		e->n++;
	}
	va_end(ap);
	if (r == 0)
		c->nextra++;
	return r;
}

static void
qr_to(FILE *f, const char *text)
{
	if (kr_qr_print_terminal(f, text) != 0)
		fprintf(f, "  (no QR code: %s)\n", kr_err_detail());
}

void
crun_fingerprint(struct crun *c, const char *what, const uint8_t h[32])
{
	char hex[65];

	memcpy(c->fp, h, 32);
	c->has_fp = 1;
	snprintf(c->fp_what, sizeof(c->fp_what), "%s", what);
	kr_hex(h, 32, hex);
	fprintf(c->out, "  %s SHA-256: %s\n  read aloud:\n", what, hex);
	if (kr_words_print(c->out, "    ", h, 32) != 0)
		return;
	if (!c->cli->quiet)
		qr_to(c->out, hex);
}

/* yes / no from the terminal. */
static int
confirm(struct crun *c, const char *what)
{
	char line[32];
	FILE *tty;
	int ok;

	if (c->cli->yes)
		return 0;
	fflush(c->out);	/* show the step before asking about it */
	if ((tty = fopen("/dev/tty", "r+")) == NULL)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "no terminal to confirm "
		    "%s; run with --yes for automation", what);
	fprintf(tty, "  Proceed with %s? type yes or no: ", what);
	fflush(tty);
	if (fgets(line, sizeof(line), tty) == NULL)
		line[0] = '\0';
	fclose(tty);
	line[strcspn(line, "\r\n")] = '\0';
	ok = strcasecmp(line, "yes") == 0 || strcasecmp(line, "y") == 0;
	if (!ok)
		return kr_errf(KR_ERR_INTERRUPTED, "%s declined", what);
	return 0;
}

/* A failed or unlogged step: its after-entries work is undone, not done. */
static void
step_abort(struct crun *c)
{
	if (c->aborted != NULL)
		c->aborted(c);
	c->in_txn = NULL;
	c->committed = NULL;
	c->aborted = NULL;
}

static int
commit_step(struct crun *c, size_t i, const struct kr_step *st,
    const char *result)
{
	struct kr_ltx *ltx = NULL;
	char num[16], det[sizeof(c->detail) + 200], fp[65];
	uint64_t idx[KR_ARRAY_SIZE(c->extra)];
	int (*done)(struct crun *);
	size_t k;
	int r;

	if ((r = kr_snprintf(num, sizeof(num), "%zu", i + 1)) != 0)
		return r;
	if (c->has_fp) {
		kr_hex(c->fp, 32, fp);
		snprintf(det, sizeof(det), "%s%s%s sha256 %s", c->detail,
		    c->detail[0] ? "; " : "", c->fp_what, fp);
	} else
		snprintf(det, sizeof(det), "%s", c->detail);
	if ((r = kr_log_begin(c->a->log, &ltx)) != 0)
		return r;
	if ((r = kr_ltx_appendf(ltx, KR_E_CEREMONY_STEP, c->actor, NULL,
	    "ceremony", c->s->id, "step", num, "action", st->def->name,
	    "result", result, "detail", det[0] ? det : NULL, NULL)) != 0)
		goto fail;
	for (k = 0; k < c->nextra; k++) {
		struct kr_kv kv[8];
		size_t j;

		for (j = 0; j < c->extra[k].n; j++) {
			kv[j].key = c->extra[k].k[j];
			kv[j].value = c->extra[k].v[j];
		}
		if ((r = kr_ltx_append(ltx, c->extra[k].type, c->actor, kv,
		    c->extra[k].n, &idx[k])) != 0)
			goto fail;
	}
	if (c->retire_set != NULL && (r = kr_qstore_put(c->a->log,
	    kr_ltx_mdb(ltx), c->retire_set, 0)) != 0)
		goto fail;
	if (c->put_set != NULL && (r = kr_qstore_put(c->a->log,
	    kr_ltx_mdb(ltx), c->put_set, 1)) != 0)
		goto fail;
	if (c->in_txn != NULL && (r = c->in_txn(c, kr_ltx_mdb(ltx), idx)) != 0)
		goto fail;
	if ((r = kr_ltx_commit(ltx, &c->a->signer, NULL)) != 0) {
		step_abort(c);
		return r;
	}
	c->in_txn = NULL;
	c->aborted = NULL;
	if ((done = c->committed) != NULL) {
		c->committed = NULL;
		return done(c);
	}
	return 0;
 fail:
	kr_ltx_abort(ltx);
	step_abort(c);
	return r;
}

static int
transcript_step(struct crun *c, size_t i, const struct kr_step *st,
    const char *result, int err)
{
	char t[32], fp[65], words[KR_WORDS_BUF(32)];
	int r;

	kr_time_rfc3339(time(NULL), t);
	if ((r = tbuf_printf(&c->tr, "\nStep %zu of %zu   %s   %s\n", i + 1,
	    c->s->nstep, t, st->def->name)) != 0 ||
	    (st->say != NULL && (r = tbuf_printf(&c->tr, "  say:    %s\n",
	    st->say)) != 0) ||
	    (r = tbuf_printf(&c->tr, "  result: %s\n", result)) != 0 ||
	    (c->detail[0] && (r = tbuf_printf(&c->tr, "  detail: %s\n",
	    c->detail)) != 0) ||
	    (err != 0 && (r = tbuf_printf(&c->tr, "  error:  %s: %s\n",
	    kr_err_detail(), kr_strerror(err))) != 0))
		return r;
	if (c->has_fp) {
		kr_hex(c->fp, 32, fp);
		if ((r = kr_words(c->fp, 32, words, sizeof(words))) != 0 ||
		    (r = tbuf_printf(&c->tr, "  %s SHA-256:\n    %s\n"
		    "    %s\n", c->fp_what, fp, words)) != 0)
			return r;
	}
	if (c->tr_more != NULL && (r = tbuf_printf(&c->tr, "%s",
	    c->tr_more)) != 0)
		return r;
	return tbuf_printf(&c->tr, "  checked by: ________________\n");
}

static void
reset_step(struct crun *c)
{
	c->detail[0] = '\0';
	c->has_fp = 0;
	c->fp_what[0] = '\0';
	free(c->put_set);
	free(c->retire_set);
	c->put_set = NULL;
	c->retire_set = NULL;
	c->nextra = 0;
	free(c->tr_more);
	c->tr_more = NULL;
	c->in_txn = NULL;
	c->committed = NULL;
	c->aborted = NULL;
}


static int
run_step(struct crun *c, size_t i)
{
	const struct kr_step *st = &c->s->step[i];
	char what[64], keyline[512] = "";
	const char *k;
	json_t *v, *res;
	int r, r2;

	fprintf(c->out, "\n--- Step %zu of %zu: %s ---\n  %s\n", i + 1,
	    c->s->nstep, st->def->name, st->def->summary);
	if (st->say != NULL)
		fprintf(c->out, "  Read aloud: %s\n", st->say);
	json_object_foreach((json_t *)st->params, k, v) {
		char *d;

		if (strcmp(k, "do") == 0 || strcmp(k, "say") == 0)
			continue;
		if ((d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT)) ==
		    NULL)
			continue;
		fprintf(c->out, "  %s: %s\n", k, d);
		snprintf(keyline + strlen(keyline), sizeof(keyline) -
		    strlen(keyline), "%s%s=%s", keyline[0] ? " " : "", k, d);
		free(d);
	}
	(void)keyline;
	snprintf(what, sizeof(what), "step %zu (%s)", i + 1, st->def->name);
	reset_step(c);
	if ((r = confirm(c, what)) == 0)
		r = runners[st->def->type](c, st);
	if (r != 0) {
		char saved[1024];

		snprintf(saved, sizeof(saved), "%s", kr_err_detail());
		fprintf(c->out, "  FAILED: %s: %s\n", saved, kr_strerror(r));
		crun_detail(c, "%s: %s", saved, kr_strerror(r));
		free(c->put_set);
		free(c->retire_set);
		c->put_set = c->retire_set = NULL;
		c->nextra = 0;
		step_abort(c);
		(void)transcript_step(c, i, st, "failed", 0);
		if ((r2 = commit_step(c, i, st, r == KR_ERR_INTERRUPTED ?
		    "declined" : "failed")) != 0)
			fprintf(c->out, "  (could not log the failure: %s)\n",
			    kr_err_detail());
		kr_errf(r, "%s", saved);
		return r;
	}
	if ((r = commit_step(c, i, st, "ok")) != 0)
		return kr_errctx(r, "logging %s", what);
	fprintf(c->out, "  done%s%s\n", c->detail[0] ? ": " : "", c->detail);
	if (c->results != NULL && (res = json_pack("{s:i, s:s, s:s, s:s}",
	    "step", (int)(i + 1), "action", st->def->name, "result", "ok",
	    "detail", c->detail)) != NULL) {
		if (c->has_fp) {
			char fp[65];

			kr_hex(c->fp, 32, fp);
			json_object_set_new(res, "sha256", json_string(fp));
			json_object_set_new(res, "sha256_of",
			    json_string(c->fp_what));
		}
		json_array_append_new(c->results, res);
	}
	return transcript_step(c, i, st, "ok", 0);
}

int
crun_write_transcript(struct crun *c, const char *note)
{
	char path[PATH_MAX], t[32], ts[32], *qr = NULL;
	size_t qlen = 0, i, j;
	struct tbuf out = { NULL, 0, 0 };
	FILE *mf;
	int r;

	if (c->o->media == NULL) {
		fprintf(c->out, "  (no --media: transcript not written)\n");
		return 0;
	}
	if ((r = tbuf_printf(&out, "%.*s", (int)c->tr.len, c->tr.p ?
	    c->tr.p : "")) != 0)
		goto out;
	if (note != NULL) {
		if ((mf = open_memstream(&qr, &qlen)) == NULL) {
			r = kr_err_sys("memstream");
			goto out;
		}
		qr_to(mf, note);
		fclose(mf);
		if ((r = tbuf_printf(&out, "\nFinal signed audit checkpoint\n"
		    "%s\n%s", note, qr)) != 0)
			goto out;
	}
	if ((r = tbuf_printf(&out, "\nSignatures\n")) != 0 ||
	    (r = tbuf_printf(&out, "  Ceremony administrator: "
	    "______________________  date: __________\n")) != 0)
		goto out;
	for (i = 0; i < c->s->nwitness; i++)
		if ((r = tbuf_printf(&out, "  Witness %-16s ______________________"
		    "  date: __________\n", c->s->witness[i])) != 0)
			goto out;
	for (i = 0; i < c->s->nquorum; i++)
		for (j = 0; j < c->s->quorum[i].n; j++)
			if ((r = tbuf_printf(&out, "  %s custodian %-14s "
			    "______________________\n", c->s->quorum[i].role,
			    c->s->quorum[i].custodians[j])) != 0)
				goto out;
	kr_time_rfc3339(time(NULL), t);
	/* File names: no ':' (FAT media). */
	for (i = 0, j = 0; t[i] != '\0' && j + 1 < sizeof(ts); i++)
		if (t[i] != ':' && t[i] != '-')
			ts[j++] = t[i];
	ts[j] = '\0';
	if ((r = kr_mkdirs(c->o->media, 0755)) != 0)
		goto out;
	/* Never over another transcript: a ceremony refused and run again
	 * within the same second gets "-2", "-3", ... */
	for (i = 1; i <= 99; i++) {
		char nth[8] = "";

		if (i > 1)
			(void)snprintf(nth, sizeof(nth), "-%zu", i);
		if ((r = kr_snprintf(path, sizeof(path),
		    "%s/%s-%s%s%s.transcript.txt", c->o->media, c->s->id, ts,
		    nth, c->o->rehearse ? "-rehearsal" : "")) != 0)
			goto out;
		if ((r = kr_write_new_file(path, out.p, out.len, 0644)) !=
		    KR_ERR_EXISTS)
			break;
		kr_err_clear();
	}
	if (r != 0)
		goto out;
	fprintf(c->out, "  transcript written: %s\n", path);
 out:
	free(qr);
	free(out.p);
	return r;
}

static int
transcript_head(struct crun *c, const char *path)
{
	char hex[65], words[KR_WORDS_BUF(32)], t[32];
	size_t i, j;
	int r;

	kr_hex(c->s->sha256, 32, hex);
	kr_time_rfc3339(time(NULL), t);
	if ((r = kr_words(c->s->sha256, 32, words, sizeof(words))) != 0 ||
	    (r = tbuf_printf(&c->tr, "KEYROOM CEREMONY TRANSCRIPT%s\n\n"
	    "ceremony:  %s\npurpose:   %s\nscript:    %s\nsha256:    %s\n"
	    "words:     %s\nstate:     %s\nstarted:   %s\n",
	    c->o->rehearse ? " (REHEARSAL - throwaway token and state)" : "",
	    c->s->id, c->s->purpose, path, hex, words, c->cli->state,
	    t)) != 0)
		return r;
	if ((r = tbuf_printf(&c->tr, "\nParticipants\n")) != 0)
		return r;
	for (i = 0; i < c->s->nquorum; i++) {
		const struct kr_script_quorum *q = &c->s->quorum[i];

		if (q->oob) {
			if ((r = tbuf_printf(&c->tr, "  %s: authenticated out "
			    "of band (PIN-entry device)\n", q->role)) != 0)
				return r;
			continue;
		}
		if ((r = tbuf_printf(&c->tr, "  %s quorum %u of %u:", q->role,
		    q->m, q->n)) != 0)
			return r;
		for (j = 0; j < q->n; j++)
			if ((r = tbuf_printf(&c->tr, "%s %s", j ? "," : "",
			    q->custodians[j])) != 0)
				return r;
		if ((r = tbuf_printf(&c->tr, "\n")) != 0)
			return r;
	}
	for (i = 0; i < c->s->nwitness; i++)
		if ((r = tbuf_printf(&c->tr, "  witness: %s\n",
		    c->s->witness[i])) != 0)
			return r;
	return 0;
}

static void
print_head(struct crun *c, const char *path)
{
	char hex[65];
	size_t i;

	kr_hex(c->s->sha256, 32, hex);
	fprintf(c->out, "=== keyroom ceremony: %s%s ===\n%s\n\n"
	    "script %s\nSHA-256 %s\nRead the script's hash aloud and compare it "
	    "with the reviewed copy:\n", c->s->id, c->o->rehearse ?
	    " (REHEARSAL)" : "", c->s->purpose, path, hex);
	if (kr_words_print(c->out, "  ", c->s->sha256, 32) != 0)
		return;
	fprintf(c->out, "\n%zu steps:\n", c->s->nstep);
	for (i = 0; i < c->s->nstep; i++)
		fprintf(c->out, "  %2zu. %-20s %s\n", i + 1,
		    c->s->step[i].def->name, c->s->step[i].def->summary);
}

static int
participants(const struct kr_script *s, char *buf, size_t len)
{
	size_t i, j, off = 0;
	int r;

	buf[0] = '\0';
	for (i = 0; i < s->nquorum; i++)
		for (j = 0; j < s->quorum[i].n; j++) {
			if ((r = kr_snprintf(buf + off, len - off, "%s%s:%s",
			    off ? ", " : "", s->quorum[i].role,
			    s->quorum[i].custodians[j])) != 0)
				return r;
			off += strlen(buf + off);
		}
	for (i = 0; i < s->nwitness; i++) {
		if ((r = kr_snprintf(buf + off, len - off, "%switness:%s",
		    off ? ", " : "", s->witness[i])) != 0)
			return r;
		off += strlen(buf + off);
	}
	return 0;
}

static void
crun_free_roles(struct crun *c)
{
	int i;

	for (i = 0; i < ROLE__COUNT; i++) {
		kr_key_free(c->role[i].key);
		c->role[i].key = NULL;
		kr_key_free(c->role[i].next_key);
		c->role[i].next_key = NULL;
		kr_token_close(c->role[i].tok);
		c->role[i].tok = NULL;
		kr_secure_free(c->role[i].pin, KR_PIN_MAX);
		c->role[i].pin = NULL;
		kr_secure_free(c->role[i].secret, KR_Q_SECRET_LEN);
		c->role[i].secret = NULL;
	}
}

static int
check_hash(const struct kr_script *s, const char *path, const char *want)
{
	char hex[65];

	kr_hex(s->sha256, 32, hex);
	if (want != NULL && strcasecmp(hex, want) != 0)
		return kr_errf(KR_ERR_POLICY, "%s: SHA-256 %s differs from "
		    "--expect-sha256 %s: this is not the reviewed script",
		    path, hex, want);
	return 0;
}

int
kr_ceremony_run(struct kr_cli *cli, struct kr_ceremony_opts *o)
{
	struct kr_script *s = NULL;
	struct crun c;
	struct kr_rehearsal *reh = NULL;
	char hex[65], people[2048], *note = NULL;
	const char *result = "ok";
	size_t i;
	int r, r2, begun = 0;

	memset(&c, 0, sizeof(c));
	c.cli = cli;
	c.o = o;
	c.out = cli->json ? stderr : stdout;
	c.role[ROLE_ROOT].name = "root";
	c.role[ROLE_ISSUING].name = "issuing";
	if ((r = kr_script_load(o->script_path, &s)) != 0)
		goto out;
	c.s = s;
	print_head(&c, o->script_path);
	if ((r = check_hash(s, o->script_path, o->expect_sha256)) != 0)
		goto out;
	if (o->rehearse && (r = kr_rehearsal_begin(cli, o, s, &reh)) != 0)
		goto out;
	if ((r = kr_snprintf(c.actor, sizeof(c.actor), "ceremony:%s",
	    s->id)) != 0 || (r = transcript_head(&c, o->script_path)) != 0 ||
	    (r = participants(s, people, sizeof(people))) != 0)
		goto out;
	if (cli->json && (c.results = json_array()) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "json");
		goto out;
	}
	if ((r = kr_appl_open(cli->state, 1, &c.a)) != 0)
		goto out;
	if ((r = confirm(&c, "the ceremony")) != 0)
		goto out;
	kr_hex(s->sha256, 32, hex);
	if ((r = kr_appl_logf(c.a, KR_E_CEREMONY_BEGIN, c.actor, NULL,
	    "ceremony", s->id, "script-sha256", hex, "participants",
	    people[0] ? people : NULL, NULL)) != 0)
		goto out;
	begun = 1;
	for (i = 0; i < s->nstep; i++)
		if ((r = run_step(&c, i)) != 0)
			break;
	result = r == 0 ? "ok" : r == KR_ERR_INTERRUPTED ? "declined" :
	    "failed";
 out:
	crun_free_roles(&c);
	if (begun) {
		char saved[1024];

		snprintf(saved, sizeof(saved), "%s", kr_err_detail());
		r2 = kr_appl_logf(c.a, KR_E_CEREMONY_END, c.actor, &note,
		    "ceremony", s->id, "result", result, NULL);
		if (r2 == 0 && note != NULL) {
			fprintf(c.out, "\n=== Final signed audit checkpoint "
			    "===\n%s", note);
			if (!cli->quiet)
				qr_to(c.out, note);
		}
		if (r == 0)
			r = r2;
		if (r == 0)
			r = crun_write_transcript(&c, note);
		else {
			if (crun_write_transcript(&c, note) != 0)
				fprintf(c.out, "  transcript not written: %s\n",
				    kr_err_detail());
			kr_errf(r, "%s", saved);
		}
	}
	if (cli->json && c.results != NULL) {
		json_t *j = json_pack("{s:s, s:s, s:O, s:s?}", "ceremony",
		    s != NULL ? s->id : "", "result", r == 0 ? "ok" : result,
		    "steps", c.results, "checkpoint", note);
		char *d = j != NULL ? json_dumps(j, JSON_INDENT(2)) : NULL;

		if (r == 0 && d != NULL)
			printf("%s\n", d);
		free(d);
		json_decref(j);
	}
	json_decref(c.results);
	reset_step(&c);
	free(c.tr.p);
	free(note);
	kr_appl_close(c.a);
	kr_rehearsal_end(reh);
	kr_script_free(s);
	return r;
}
