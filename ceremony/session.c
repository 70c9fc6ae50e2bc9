/*
 * session.c - signing sessions (see session.h).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "ceremony/appl.h"
#include "ceremony/qstore.h"
#include "ceremony/session.h"
#include "ceremony/unlock.h"
#include "lib/util.h"

#define ID_LEN 16
#define PIN_FD 3
#define KILL_GRACE 5	/* seconds between SIGTERM and SIGKILL */

static int
row_key(const char *id, char *k, size_t len)
{
	if (strlen(id) != 2 * ID_LEN || strspn(id, "0123456789abcdef") !=
	    2 * ID_LEN)
		return kr_errf(KR_ERR_STATE, "session id '%.40s' is malformed",
		    id);
	return kr_snprintf(k, len, "s/%s", id);
}

static int
get_row(struct kr_log *log, MDB_txn *txn, const char *id, json_t **out)
{
	MDB_val key, val;
	MDB_dbi d;
	json_error_t e;
	char k[64];
	int r, rc;

	*out = NULL;
	if ((r = row_key(id, k, sizeof(k))) != 0)
		return r;
	if ((r = kr_log_dbi(log, txn, KR_SESSION_DBI, 0, &d)) != 0)
		return r == KR_ERR_NOT_FOUND ? kr_errf(KR_ERR_STATE, "session "
		    "%s unknown", id) : r;
	key.mv_size = strlen(k);
	key.mv_data = k;
	if ((rc = mdb_get(txn, d, &key, &val)) == MDB_NOTFOUND)
		return kr_errf(KR_ERR_STATE, "session %s unknown", id);
	if (rc != 0)
		return kr_err_lmdb(rc, "session %s", id);
	if ((*out = json_loadb(val.mv_data, val.mv_size, 0, &e)) == NULL ||
	    !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return kr_errf(KR_ERR_FORMAT, "session %s: bad row", id);
	}
	return 0;
}

static int
put_row(struct kr_log *log, MDB_txn *txn, const char *id, const json_t *j)
{
	MDB_val key, val;
	MDB_dbi d;
	char k[64], *s;
	int r, rc;

	if ((r = row_key(id, k, sizeof(k))) != 0 ||
	    (r = kr_log_dbi(log, txn, KR_SESSION_DBI, 0, &d)) != 0)
		return r;
	if ((s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "session row");
	key.mv_size = strlen(k);
	key.mv_data = k;
	val.mv_size = strlen(s);
	val.mv_data = s;
	rc = mdb_put(txn, d, &key, &val, 0);
	free(s);
	if (rc == MDB_MAP_FULL)
		return kr_errf(KR_ERR_MAP_FULL, "session %s", id);
	return rc != 0 ? kr_err_lmdb(rc, "session %s", id) : 0;
}

int
kr_session_require(struct kr_log *log, const char *id)
{
	struct kr_qset *set = NULL;
	MDB_txn *txn = NULL;
	json_t *row = NULL;
	char sid[KR_Q_ID_HEX], now[32];
	const char *state, *expires;
	long long pid;
	int r;

	if ((r = kr_log_read_begin(log, &txn)) != 0)
		return r;
	r = kr_qstore_active(log, txn, "issuing", &set);
	if (r == KR_ERR_STATE) {
		r = 0;	/* no quorum governs the issuing token */
		goto out;
	}
	if (r != 0)
		goto out;
	kr_qset_id_hex(set->id, sid);
	if (id == NULL || *id == '\0') {
		r = kr_errf(KR_ERR_STATE, "the issuing token is under quorum "
		    "(share set %s): run batch sign inside keyroom session run",
		    sid);
		goto out;
	}
	if ((r = get_row(log, txn, id, &row)) != 0)
		goto out;
	state = json_string_value(json_object_get(row, "state"));
	expires = json_string_value(json_object_get(row, "expires"));
	pid = json_integer_value(json_object_get(row, "pid"));
	kr_time_rfc3339(time(NULL), now);
	if (state == NULL || strcmp(state, "open") != 0)
		r = kr_errf(KR_ERR_STATE, "session %s is closed", id);
	else if (expires == NULL || strcmp(now, expires) >= 0)
		r = kr_errf(KR_ERR_STATE, "session %s expired at %s", id,
		    expires != NULL ? expires : "?");
	else if (pid != (long long)getppid())
		r = kr_errf(KR_ERR_STATE, "session %s belongs to another "
		    "process (run batch sign inside keyroom session run)", id);
 out:
	json_decref(row);
	free(set);
	mdb_txn_abort(txn);
	return r;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		k = write(fd, p, n);
		if (k == -1 && errno == EINTR)
			continue;
		if (k <= 0)
			return kr_err_sys("writing the PIN to the batch");
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Wait for the child; after `timeout` seconds terminate it. */
static int
wait_child(pid_t pid, int timeout, int *status, int *timed_out)
{
	double t0 = kr_now();
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	int termed = 0;
	pid_t w;

	*timed_out = 0;
	for (;;) {
		w = waitpid(pid, status, WNOHANG);
		if (w == pid)
			return 0;
		if (w == -1 && errno != EINTR)
			return kr_err_sys("waitpid");
		if (!termed && kr_now() - t0 > timeout) {
			*timed_out = 1;
			termed = 1;
			(void)kill(pid, SIGTERM);
		} else if (termed && kr_now() - t0 > timeout + KILL_GRACE)
			(void)kill(pid, SIGKILL);
		nanosleep(&ts, NULL);
	}
}

static int
open_session(struct kr_appl *a, const char *id, const char *label,
    const char *set_id, const struct kr_session_opts *o, json_t **row)
{
	struct kr_ltx *ltx = NULL;
	char opened[32], expires[32];
	time_t now = time(NULL);
	int r;

	kr_time_rfc3339(now, opened);
	/*
	 * Whole seconds, rounded up: the row never expires before the
	 * runner's own timeout (measured from after this) terminates the
	 * batch; truncated, a 1 s session could expire a few ms after it
	 * opened, before the batch even started.
	 */
	kr_time_rfc3339(now + 1 + o->timeout, expires);
	if ((*row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s}",
	    "id", id, "token", label, "share_set", set_id, "opened", opened,
	    "expires", expires, "pid", (json_int_t)getpid(), "state", "open",
	    "purpose", o->purpose)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "session row");
	if ((r = kr_log_begin(a->log, &ltx)) != 0)
		return r;
	if ((r = kr_ltx_appendf(ltx, KR_E_SESSION_OPEN, "session", NULL,
	    "session", id, "purpose", o->purpose, NULL)) != 0 ||
	    (r = put_row(a->log, kr_ltx_mdb(ltx), id, *row)) != 0) {
		kr_ltx_abort(ltx);
		return r;
	}
	return kr_ltx_commit(ltx, &a->signer, NULL);
}

static int
close_session(const char *state, const char *id, json_t *row,
    const char *result)
{
	struct kr_appl *a = NULL;
	struct kr_ltx *ltx = NULL;
	char closed[32];
	int r;

	kr_time_rfc3339(time(NULL), closed);
	json_object_set_new(row, "state", json_string("closed"));
	json_object_set_new(row, "closed", json_string(closed));
	json_object_set_new(row, "result", json_string(result));
	if ((r = kr_appl_open(state, 0, &a)) != 0)
		return r;
	if ((r = kr_log_begin(a->log, &ltx)) != 0)
		goto out;
	if ((r = kr_ltx_appendf(ltx, KR_E_SESSION_CLOSE, "session", NULL,
	    "session", id, "result", result, NULL)) != 0 ||
	    (r = put_row(a->log, kr_ltx_mdb(ltx), id, row)) != 0) {
		kr_ltx_abort(ltx);
		goto out;
	}
	r = kr_ltx_commit(ltx, &a->signer, NULL);
 out:
	kr_appl_close(a);
	return r;
}

int
kr_session_run(struct kr_cli *cli, const struct kr_session_opts *o,
    int *exit_code)
{
	struct kr_appl *a = NULL;
	struct kr_token *tok = NULL;
	struct kr_qset *set = NULL, **all = NULL;
	json_t *row = NULL;
	char *pin = NULL, **cargv = NULL, label[64], sid[KR_Q_ID_HEX];
	char id[2 * ID_LEN + 1], result[64], self[PATH_MAX];
	uint8_t raw[ID_LEN];
	size_t pinlen = 0, nall = 0;
	int fds[2] = { -1, -1 }, r, i, n, status = 0, timed_out = 0;
	FILE *msg = cli->json ? stderr : stdout;
	ssize_t sl;
	pid_t pid;

	*exit_code = KR_EXIT_ERROR;
	if (o->argc < 2 || strcmp(o->argv[0], "batch") != 0 ||
	    strcmp(o->argv[1], "sign") != 0)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "a session runs "
		    "'batch sign ...' (after --)");
	if ((sl = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
		return kr_err_sys("/proc/self/exe");
	self[sl] = '\0';
	if ((r = kr_appl_open(cli->state, 0, &a)) != 0)
		goto out;
	if ((r = kr_snprintf(label, sizeof(label), "%s",
	    a->cfg.token_issuing)) != 0 ||
	    (r = kr_quorum_load(a, "issuing", &set, &all, &nall)) != 0)
		goto out;
	kr_qset_id_hex(set->id, sid);
	fprintf(msg, "signing session: the operators' quorum unlocks token "
	    "%s\n", label);
	if ((r = kr_quorum_unlock_role(a, o->shares, "issuing", "session",
	    msg, &tok, &pin, &pinlen)) != 0)
		goto out;
	kr_token_close(tok);	/* the batch opens its own sessions */
	tok = NULL;
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		r = kr_err_ssl("session id");
		goto out;
	}
	kr_hex(raw, sizeof(raw), id);
	if ((r = open_session(a, id, label, sid, o, &row)) != 0)
		goto out;
	kr_appl_close(a);	/* the batch is the log's writer now */
	a = NULL;
	fprintf(msg, "session %s open until %s\n", id,
	    json_string_value(json_object_get(row, "expires")));
	fflush(NULL);
	/* keyroom --state S batch sign --pin fd:3 ARGS... */
	n = 0;
	if ((cargv = calloc((size_t)o->argc + 8, sizeof(*cargv))) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "argv");
		goto closeit;
	}
	cargv[n++] = self;
	cargv[n++] = (char *)"--state";
	cargv[n++] = (char *)cli->state;
	if (cli->json)
		cargv[n++] = (char *)"--json";
	if (cli->quiet)
		cargv[n++] = (char *)"-q";
	cargv[n++] = (char *)"batch";
	cargv[n++] = (char *)"sign";
	cargv[n++] = (char *)"--pin";
	cargv[n++] = (char *)"fd:3";
	for (i = 2; i < o->argc; i++)
		cargv[n++] = o->argv[i];
	cargv[n] = NULL;
	if (pipe(fds) == -1) {
		r = kr_err_sys("pipe");
		goto closeit;
	}
	if ((pid = fork()) == -1) {
		r = kr_err_sys("fork");
		goto closeit;
	}
	if (pid == 0) {
		close(fds[1]);
		if (fds[0] != PIN_FD) {
			if (dup2(fds[0], PIN_FD) == -1)
				_exit(KR_EXIT_ERROR);
			close(fds[0]);
		}
		setenv(KR_SESSION_ENV, id, 1);
		execv(self, cargv);
		_exit(127);
	}
	close(fds[0]);
	fds[0] = -1;
	r = write_all(fds[1], pin, pinlen);
	if (r == 0)
		r = write_all(fds[1], "\n", 1);
	close(fds[1]);
	fds[1] = -1;
	kr_secure_free(pin, KR_PIN_MAX);
	pin = NULL;
	if (r != 0) {
		(void)kill(pid, SIGTERM);
		(void)waitpid(pid, &status, 0);
		goto closeit;
	}
	if ((r = wait_child(pid, o->timeout, &status, &timed_out)) != 0)
		goto closeit;
	if (timed_out)
		snprintf(result, sizeof(result), "timeout after %ds",
		    o->timeout);
	else if (WIFEXITED(status)) {
		*exit_code = WEXITSTATUS(status);
		snprintf(result, sizeof(result), "batch exit %d", *exit_code);
	} else
		snprintf(result, sizeof(result), "batch killed by signal %d",
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (timed_out || !WIFEXITED(status))
		*exit_code = KR_EXIT_ERROR;
 closeit:
	{
		char saved[1024];
		int r2;

		snprintf(saved, sizeof(saved), "%s", kr_err_detail());
		if (r != 0)
			snprintf(result, sizeof(result), "failed");
		r2 = close_session(cli->state, id, row, result);
		if (r == 0)
			r = r2;
		else
			kr_errf(r, "%s", saved);
		if (r2 == 0)
			fprintf(msg, "session %s closed: %s\n", id, result);
	}
	if (r == 0 && timed_out)
		r = kr_errf(KR_ERR_INTERRUPTED, "session %s timed out after "
		    "%d s: batch terminated", id, o->timeout);
 out:
	if (fds[0] != -1)
		close(fds[0]);
	if (fds[1] != -1)
		close(fds[1]);
	free(cargv);
	json_decref(row);
	kr_secure_free(pin, KR_PIN_MAX);
	kr_token_close(tok);
	free(set);
	kr_qstore_free(all, nall);
	kr_appl_close(a);
	return r;
}
