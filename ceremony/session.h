/*
 * session.h - signing sessions: the operators' quorum unlocks the issuing
 * token for one `batch sign` run.
 *
 * `keyroom session run [--shares ...] [--timeout SEC] -- batch sign ARGS`
 * rebuilds the issuing PIN from the operators' shares (locked memory, one
 * process), records an open session (LMDB DBI "session" + session-open
 * entry), runs `keyroom batch sign --pin fd:3 ARGS` as its child with the
 * PIN written to that pipe and KEYROOM_SESSION=<id> in its environment,
 * and closes the session when the child exits or the timeout kills it
 * (session-close entry with the result). The PIN is never on disk.
 *
 * Rows: "s/<32 hex id>" -> {"id","token","share_set","opened","expires",
 * "pid","state":"open"|"closed","closed","result","purpose"}.
 */
#ifndef KR_SESSION_H
#define KR_SESSION_H

#include "audit/audit.h"
#include "lib/cli.h"

#define KR_SESSION_DBI "session"
#define KR_SESSION_ENV "KEYROOM_SESSION"
#define KR_SESSION_TIMEOUT_DEFAULT 3600	/* seconds */
#define KR_SESSION_TIMEOUT_MAX (24 * 3600)

/*
 * For `batch sign`: once the issuing token is under quorum (an active
 * share set for role "issuing" exists), signing needs the open, unexpired
 * session named by id (getenv(KR_SESSION_ENV)) whose runner is this
 * process's parent. Without a share set (a PIN-managed development state)
 * it returns 0. KR_ERR_STATE names what is missing: "the issuing token is
 * under quorum (share set X): run batch sign inside keyroom session run",
 * "session X is closed", "session X expired at T", "session X belongs to
 * another process".
 */
int kr_session_require(struct kr_log *log, const char *id) KR_WUR;

struct kr_shares_in;

struct kr_session_opts {
	struct kr_shares_in *shares;
	int timeout;			/* seconds */
	const char *purpose;
	char **argv;			/* after "--": "batch" "sign" ... */
	int argc;
};

/* Run one session (see above). *exit_code gets the child's exit code. */
int kr_session_run(struct kr_cli *cli, const struct kr_session_opts *o,
    int *exit_code) KR_WUR;

#endif
