/*
 * unlock.c - a quorum unlocks a token (see unlock.h).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
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

/* Check and add one share; print the verdict. */
static int
offer(struct kr_unlock *u, const struct kr_qset *set,
    const struct kr_qset *const *known, size_t nknown, const char *spec,
    FILE *msg)
{
	struct kr_share *s = NULL;
	char id[KR_Q_ID_HEX];
	int r;

	if ((s = kr_secure_alloc(sizeof(*s))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "secure memory");
	if ((r = kr_share_read(spec, s)) != 0)
		goto out;
	if ((r = kr_unlock_add(u, s, known, nknown)) != 0) {
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

int
kr_quorum_unlock_role(struct kr_appl *a, struct kr_shares_in *in,
    const char *role, const char *actor, FILE *msg, struct kr_token **tok,
    char **pin_out, size_t *pinlen_out)
{
	struct kr_qset *set = NULL, **all = NULL;
	struct kr_unlock *u = NULL;
	struct kr_token *t = NULL;
	uint8_t *secret = NULL;
	char *pin = NULL, id[KR_Q_ID_HEX], idx[KR_Q_MAX_N * 4], thr[16];
	const char *label;
	size_t nall = 0, i, pinlen = 0;
	int r, tries = 0;

	*tok = NULL;
	if (pin_out != NULL)
		*pin_out = NULL;
	if ((label = kr_appl_token(a, role)) == NULL)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "unknown role %s", role);
	if ((r = kr_quorum_load(a, role, &set, &all, &nall)) != 0)
		goto out;
	kr_qset_id_hex(set->id, id);
	secret = kr_secure_alloc(KR_Q_SECRET_LEN);
	pin = kr_secure_alloc(KR_PIN_MAX);
	if (secret == NULL || pin == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "secure memory");
		goto out;
	}
	if (set->oob) {
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
	if ((r = kr_unlock_new(set, &u)) != 0)
		goto out;
	if (msg != NULL)
		fprintf(msg, "  token %s (%s): share set %s needs %u of %u "
		    "shares\n", label, role, id, set->m, set->n);
	for (i = 0; i < in->n && !kr_unlock_ready(u); i++) {
		if (in->src[i].used || (in->src[i].role[0] != '\0' &&
		    strcmp(in->src[i].role, role) != 0))
			continue;
		in->src[i].used = 1;
		if ((r = offer(u, set, (const struct kr_qset *const *)all, nall,
		    in->src[i].spec, msg)) != 0)
			goto out;
	}
	while (!kr_unlock_ready(u) && in->interactive) {
		if (msg != NULL)
			fprintf(msg, "  share %u of %u for %s: type the card's "
			    "%d lines (not shown)\n", kr_unlock_count(u) + 1,
			    set->m, role, KR_CARD_LINES);
		if (msg != NULL)
			fflush(msg);
		if ((r = offer(u, set, (const struct kr_qset *const *)all, nall,
		    "tty", msg)) == 0)
			continue;
		if (++tries >= TTY_TRIES)
			goto out;
		if (msg != NULL)
			fprintf(msg, "  refused: %s: %s\n", kr_err_detail(),
			    kr_strerror(r));
		if (msg != NULL)
			fflush(msg);
	}
	if ((r = kr_unlock_combine(u, secret)) != 0)
		goto out;
	kr_quorum_pin_text(secret, pin);
	pinlen = KR_Q_PIN_LEN;
	if ((r = kr_token_open(a->hsm, label, pin, pinlen, &t)) != 0)
		goto out;
	if ((r = kr_unlock_indices(u, idx, sizeof(idx))) != 0 ||
	    (r = kr_snprintf(thr, sizeof(thr), "%u-of-%u", set->m,
	    set->n)) != 0)
		goto out;
	r = kr_appl_logf(a, KR_E_QUORUM_UNLOCK, actor, NULL, "token", label,
	    "share-set", id, "shares", idx, "threshold", thr, NULL);
	if (r == 0 && msg != NULL)
		fprintf(msg, "  token %s unlocked by shares %s\n", label, idx);
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
