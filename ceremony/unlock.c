/*
 * unlock.c - a quorum unlocks a token (see unlock.h).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ceremony/card.h"
#include "ceremony/qstore.h"
#include "ceremony/unlock.h"
#include "lib/util.h"

#define TTY_TRIES 3

int
kr_shares_add_arg(struct kr_shares_in *in, const char *arg)
{
	struct kr_share_src *s;
	const char *eq = strchr(arg, '='), *colon = strchr(arg, ':');
	size_t rl = 0;

	if (in->n >= KR_SHARE_SRC_MAX)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "more than %d --shares",
		    KR_SHARE_SRC_MAX);
	s = &in->src[in->n];
	memset(s, 0, sizeof(*s));
	/* ROLE= prefix only before the source's own "kind:" */
	if (eq != NULL && (colon == NULL || eq < colon)) {
		rl = (size_t)(eq - arg);
		if (rl == 0 || rl >= sizeof(s->role))
			return kr_errf(KR_ERR_INVALID_ARGUMENT, "--shares %s: "
			    "bad role", arg);
		memcpy(s->role, arg, rl);
		s->role[rl] = '\0';
		arg = eq + 1;
	}
	if (strncmp(arg, "file:", 5) != 0 && strncmp(arg, "fd:", 3) != 0 &&
	    strncmp(arg, "env:", 4) != 0 && strcmp(arg, "tty") != 0)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "--shares %s: use "
		    "[ROLE=]file:PATH, fd:N, env:NAME or tty", arg);
	s->spec = arg;
	in->n++;
	return 0;
}

static int
read_fd_all(int fd, char *buf, size_t cap, const char *spec)
{
	size_t n = 0;
	ssize_t k;

	for (;;) {
		k = read(fd, buf + n, cap - 1 - n);
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1)
			return kr_err_sys("%s", spec);
		if (k == 0)
			break;
		n += (size_t)k;
		if (n >= cap - 1)
			return kr_errf(KR_ERR_TOO_LARGE, "%s: more than %zu "
			    "bytes", spec, cap - 1);
	}
	buf[n] = '\0';
	return 0;
}

/* Up to KR_CARD_LINES lines typed without echo. */
static int
read_tty(char *buf, size_t cap)
{
	char *line = NULL, prompt[64];
	size_t len = 0, off = 0, nonsp, i;
	unsigned l;
	int r = 0;

	buf[0] = '\0';
	for (l = 1; l <= KR_CARD_LINES; l++) {
		if ((r = kr_snprintf(prompt, sizeof(prompt), "  line %u: ",
		    l)) != 0 ||
		    (r = kr_read_secret(NULL, prompt, &line, &len, 512)) != 0)
			break;
		if (off + len + 2 > cap) {
			r = kr_errf(KR_ERR_TOO_LARGE, "share text");
			break;
		}
		memcpy(buf + off, line, len);
		off += len;
		buf[off++] = '\n';
		buf[off] = '\0';
		for (nonsp = 0, i = 0; i < len; i++)
			nonsp += !isspace((unsigned char)line[i]);
		kr_secure_free(line, 512);
		line = NULL;
		if (nonsp >= KR_CARD_CODE_LEN)	/* a scanner: all in one */
			break;
	}
	kr_secure_free(line, 512);
	return r;
}

int
kr_share_read(const char *spec, struct kr_share *s)
{
	uint8_t *file = NULL;
	char *buf = NULL;
	const char *v;
	size_t len = 0;
	long fd;
	char *end;
	int r;

	if ((buf = kr_secure_alloc(KR_SHARE_TEXT_MAX)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "secure memory");
	if (strncmp(spec, "file:", 5) == 0) {
		if ((r = kr_read_file(spec + 5, KR_SHARE_TEXT_MAX - 1, &file,
		    &len)) != 0)
			goto out;
		memcpy(buf, file, len);
		buf[len] = '\0';
	} else if (strncmp(spec, "fd:", 3) == 0) {
		errno = 0;
		fd = strtol(spec + 3, &end, 10);
		if (errno != 0 || *end != '\0' || fd < 0 || fd > INT_MAX) {
			r = kr_errf(KR_ERR_INVALID_ARGUMENT, "bad descriptor");
			goto out;
		}
		if ((r = read_fd_all((int)fd, buf, KR_SHARE_TEXT_MAX,
		    spec)) != 0)
			goto out;
	} else if (strncmp(spec, "env:", 4) == 0) {
		if ((v = getenv(spec + 4)) == NULL) {
			r = kr_errf(KR_ERR_NOT_FOUND, "environment variable %s "
			    "not set", spec + 4);
			goto out;
		}
		if (strlen(v) >= KR_SHARE_TEXT_MAX) {
			r = kr_errf(KR_ERR_TOO_LARGE, "share text");
			goto out;
		}
		memcpy(buf, v, strlen(v) + 1);
	} else if (strcmp(spec, "tty") == 0) {
		if ((r = read_tty(buf, KR_SHARE_TEXT_MAX)) != 0)
			goto out;
	} else {
		r = kr_errf(KR_ERR_INVALID_ARGUMENT, "share source '%s'", spec);
		goto out;
	}
	r = kr_card_parse(buf, s);
 out:
	if (file != NULL)
		kr_free_wipe(file, len);
	kr_secure_free(buf, KR_SHARE_TEXT_MAX);
	return r != 0 ? kr_errctx(r, "share from %s", spec) : 0;
}

int
kr_quorum_load(struct kr_appl *a, const char *role, struct kr_qset **set,
    struct kr_qset ***all, size_t *nall)
{
	MDB_txn *txn = NULL;
	int r;

	*set = NULL;
	*all = NULL;
	*nall = 0;
	if ((r = kr_log_read_begin(a->log, &txn)) != 0)
		return r;
	if ((r = kr_qstore_active(a->log, txn, role, set)) == 0 &&
	    (r = kr_qstore_all(a->log, txn, all, nall)) != 0) {
		free(*set);
		*set = NULL;
	}
	mdb_txn_abort(txn);
	return r;
}

/* A pending (not retired) set of role with this id, or NULL. */
static struct kr_qset *
pending_set(struct kr_qset **all, size_t nall, const char *role,
    const uint8_t id[KR_Q_ID_LEN])
{
	size_t i;

	for (i = 0; i < nall; i++)
		if (all[i]->pending && !all[i]->retired &&
		    strcmp(all[i]->label, role) == 0 &&
		    (id == NULL || memcmp(all[i]->id, id, KR_Q_ID_LEN) == 0))
			return all[i];
	return NULL;
}

/*
 * Check and add one share; print the verdict. The first share may come
 * from a pending set of the role (an interrupted PIN change): the unlock
 * then switches to that set (*setp, *up replaced).
 */
static int
offer(struct kr_unlock **up, const struct kr_qset **setp,
    struct kr_qset **all, size_t nall, const char *spec, FILE *msg)
{
	const struct kr_qset *const *known = (const struct kr_qset *const *)all;
	const struct kr_qset *set = *setp;
	struct kr_qset *p;
	struct kr_unlock *u = *up;
	struct kr_share *s = NULL;
	char id[KR_Q_ID_HEX];
	int r;

	if ((s = kr_secure_alloc(sizeof(*s))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "secure memory");
	if ((r = kr_share_read(spec, s)) != 0)
		goto out;
	if (memcmp(s->set_id, set->id, KR_Q_ID_LEN) != 0 &&
	    kr_unlock_count(u) == 0 &&
	    (p = pending_set(all, nall, set->label, s->set_id)) != NULL) {
		if ((r = kr_unlock_new(p, up)) != 0)
			goto out;
		kr_unlock_free(u);
		u = *up;
		*setp = set = p;
		kr_qset_id_hex(p->id, id);
		if (msg != NULL)
			fprintf(msg, "  share set %s is pending (a PIN change "
			    "was interrupted): trying its cards\n", id);
	}
	if ((r = kr_unlock_add(u, s, known, nall)) != 0) {
		r = kr_errctx(r, "share from %s", spec);
		goto out;
	}
	kr_qset_id_hex(set->id, id);
	if (msg != NULL)
		fprintf(msg, "  share %u of set %s (%s): good - %u of %u "
		    "needed\n", s->index, id, set->member[s->index - 1].name,
		    kr_unlock_count(u), set->m);
 out:
	kr_secure_free(s, sizeof(*s));
	return r;
}

/* A self-check entry about a pending set (in the caller's ltx). */
static int
log_pending(struct kr_ltx *ltx, const char *actor, const char *result,
    const struct kr_qset *p, const char *label)
{
	char id[KR_Q_ID_HEX], det[160];
	int r;

	kr_qset_id_hex(p->id, id);
	if ((r = kr_snprintf(det, sizeof(det), "token %s: share set %s (%s) "
	    "%s", label, id, p->label, strcmp(result, "activated") == 0 ?
	    "logs in: the interrupted PIN change had taken effect" :
	    "does not log in: the interrupted PIN change never took "
	    "effect")) != 0)
		return r;
	return kr_ltx_appendf(ltx, KR_E_SELF_CHECK, actor, NULL, "check",
	    "pending-share-set", "result", result, "detail", det, NULL);
}

/* Retire set (not replaced: successor `by`, may be NULL) in ltx. */
static int
retire_in(struct kr_appl *a, struct kr_ltx *ltx, struct kr_qset *set,
    const struct kr_qset *by)
{
	set->retired = 1;
	if (by != NULL)
		memcpy(set->successor, by->id, KR_Q_ID_LEN);
	kr_time_rfc3339(time(NULL), set->retired_at);
	return kr_qstore_put(a->log, kr_ltx_mdb(ltx), set, 0);
}

/*
 * The unlock by `cur` succeeded: one commit with the quorum-unlock entry
 * and the settling of pending sets: cur pending -> active (the old
 * active set retired, replaced by it); every other pending set of the
 * role -> retired (its PIN change never took effect).
 */
static int
commit_unlock(struct kr_appl *a, const char *actor, const char *label,
    struct kr_qset *cur, struct kr_qset *active, struct kr_qset **all,
    size_t nall, const char *idx, const char *thr)
{
	struct kr_ltx *ltx = NULL;
	char id[KR_Q_ID_HEX];
	size_t i;
	int r;

	kr_qset_id_hex(cur->id, id);
	if ((r = kr_log_begin(a->log, &ltx)) != 0)
		return r;
	if ((r = kr_ltx_appendf(ltx, KR_E_QUORUM_UNLOCK, actor, NULL, "token",
	    label, "share-set", id, "shares", idx, "threshold", thr,
	    NULL)) != 0)
		goto fail;
	if (cur->pending) {
		cur->pending = 0;
		if ((r = log_pending(ltx, actor, "activated", cur,
		    label)) != 0 ||
		    (r = kr_qstore_put(a->log, kr_ltx_mdb(ltx), cur, 1)) != 0 ||
		    (active != NULL && (r = retire_in(a, ltx, active,
		    cur)) != 0))
			goto fail;
	}
	for (i = 0; i < nall; i++) {
		if (all[i] == cur || !all[i]->pending || all[i]->retired ||
		    strcmp(all[i]->label, cur->label) != 0)
			continue;
		if ((r = log_pending(ltx, actor, "discarded", all[i],
		    label)) != 0 ||
		    (r = retire_in(a, ltx, all[i], cur)) != 0)
			goto fail;
	}
	return kr_ltx_commit(ltx, &a->signer, NULL);
 fail:
	kr_ltx_abort(ltx);
	return r;
}

/* A pending set's PIN does not log in: retire it (one commit). */
static int
discard_pending(struct kr_appl *a, const char *actor, const char *label,
    struct kr_qset *p, const struct kr_qset *active)
{
	struct kr_ltx *ltx = NULL;
	int r;

	if ((r = kr_log_begin(a->log, &ltx)) != 0)
		return r;
	if ((r = log_pending(ltx, actor, "discarded", p, label)) != 0 ||
	    (r = retire_in(a, ltx, p, active)) != 0) {
		kr_ltx_abort(ltx);
		return r;
	}
	return kr_ltx_commit(ltx, &a->signer, NULL);
}

int
kr_quorum_unlock_role(struct kr_appl *a, struct kr_shares_in *in,
    const char *role, const char *actor, FILE *msg, struct kr_token **tok,
    char **pin_out, size_t *pinlen_out)
{
	struct kr_qset *set = NULL, **all = NULL, *pend;
	const struct kr_qset *cur;
	struct kr_unlock *u = NULL;
	struct kr_token *t = NULL;
	uint8_t *secret = NULL;
	char *pin = NULL, id[KR_Q_ID_HEX], idx[KR_Q_MAX_N * 4], thr[16];
	char pid[KR_Q_ID_HEX];
	const char *label;
	size_t nall = 0, i, pinlen = 0;
	int r, tries = 0;

	*tok = NULL;
	if (pin_out != NULL)
		*pin_out = NULL;
	if ((label = kr_appl_token(a, role)) == NULL)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "unknown role %s", role);
	if ((r = kr_quorum_load(a, role, &set, &all, &nall)) == KR_ERR_STATE) {
		/* No active set: a takeover interrupted after its cards? */
		MDB_txn *txn = NULL;
		int r2;

		if ((r2 = kr_log_read_begin(a->log, &txn)) != 0) {
			r = r2;
			goto out;
		}
		r2 = kr_qstore_all(a->log, txn, &all, &nall);
		mdb_txn_abort(txn);
		if (r2 != 0) {
			r = r2;
			goto out;
		}
		if (pending_set(all, nall, role, NULL) == NULL) {
			r = kr_errf(KR_ERR_STATE, "no share set for token role "
			    "'%s' (run the genesis ceremony)", role);
			goto out;
		}
		kr_err_clear();
		r = 0;
	}
	if (r != 0)
		goto out;
	pend = pending_set(all, nall, role, NULL);
	cur = set != NULL ? set : pend;
	secret = kr_secure_alloc(KR_Q_SECRET_LEN);
	pin = kr_secure_alloc(KR_PIN_MAX);
	if (secret == NULL || pin == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "secure memory");
		goto out;
	}
	kr_qset_id_hex(cur->id, id);
	if (cur->oob) {
		if (msg != NULL)
			fprintf(msg, "  token %s: authenticated out of band "
			    "(PIN-entry device)\n", label);
		if ((r = kr_token_open(a->hsm, label, "", 0, &t)) != 0)
			goto out;
		r = kr_appl_logf(a, KR_E_QUORUM_UNLOCK, actor, NULL,
		    "token", label, "share-set", id, "shares",
		    "authenticated-out-of-band", NULL);
		goto done;
	}
	if ((r = kr_unlock_new(cur, &u)) != 0)
		goto out;
	if (msg != NULL)
		fprintf(msg, "  token %s (%s): share set %s needs %u of %u "
		    "shares\n", label, role, id, cur->m, cur->n);
	for (i = 0; i < in->n && !kr_unlock_ready(u); i++) {
		if (in->src[i].used || (in->src[i].role[0] != '\0' &&
		    strcmp(in->src[i].role, role) != 0))
			continue;
		in->src[i].used = 1;
		if ((r = offer(&u, &cur, all, nall, in->src[i].spec,
		    msg)) != 0)
			goto out;
	}
	while (!kr_unlock_ready(u) && in->interactive) {
		if (msg != NULL)
			fprintf(msg, "  share %u of %u for %s: type the card's "
			    "%d lines (not shown)\n", kr_unlock_count(u) + 1,
			    cur->m, role, KR_CARD_LINES);
		if (msg != NULL)
			fflush(msg);
		if ((r = offer(&u, &cur, all, nall, "tty", msg)) == 0)
			continue;
		if (++tries >= TTY_TRIES)
			goto out;
		if (msg != NULL)
			fprintf(msg, "  refused: %s: %s\n", kr_err_detail(),
			    kr_strerror(r));
		if (msg != NULL)
			fflush(msg);
	}
	kr_qset_id_hex(cur->id, id);
	if ((r = kr_unlock_combine(u, secret)) != 0)
		goto out;
	kr_quorum_pin_text(secret, pin);
	pinlen = KR_Q_PIN_LEN;
	if ((r = kr_token_open(a->hsm, label, pin, pinlen, &t)) == KR_ERR_PIN &&
	    cur->pending) {
		/* Its PIN was never set: the old cards still unlock. */
		pend = (struct kr_qset *)(uintptr_t)cur;
		if ((r = discard_pending(a, actor, label, pend, set)) != 0)
			goto out;
		kr_qset_id_hex(set != NULL ? set->id : cur->id, pid);
		r = kr_errf(KR_ERR_QUORUM, "token %s: share set %s was pending "
		    "and its PIN was never set (an interrupted PIN change): "
		    "it is retired now; the cards of share set %s unlock the "
		    "token", label, id, set != NULL ? pid : "(none)");
		goto out;
	}
	if (r == KR_ERR_PIN && pend != NULL) {
		kr_qset_id_hex(pend->id, pid);
		r = kr_errf(KR_ERR_QUORUM, "token %s: share set %s no longer "
		    "logs in: an interrupted PIN change took effect; the cards "
		    "of pending share set %s unlock the token", label, id, pid);
		goto out;
	}
	if (r != 0)
		goto out;
	if ((r = kr_unlock_indices(u, idx, sizeof(idx))) != 0 ||
	    (r = kr_snprintf(thr, sizeof(thr), "%u-of-%u", cur->m,
	    cur->n)) != 0)
		goto out;
	r = commit_unlock(a, actor, label, (struct kr_qset *)(uintptr_t)cur,
	    set, all, nall, idx, thr);
	if (r == 0 && msg != NULL)
		fprintf(msg, "  token %s unlocked by shares %s of share set "
		    "%s\n", label, idx, id);
 done:
	if (r != 0)
		goto out;
	*tok = t;
	t = NULL;
	if (pin_out != NULL) {
		*pin_out = pin;
		*pinlen_out = pinlen;
		pin = NULL;
	}
 out:
	kr_token_close(t);
	kr_unlock_free(u);
	kr_secure_free(secret, KR_Q_SECRET_LEN);
	kr_secure_free(pin, KR_PIN_MAX);
	free(set);
	kr_qstore_free(all, nall);
	return r;
}
