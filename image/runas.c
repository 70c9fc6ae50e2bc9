/*
 * image/runas.c - drop root and run one program, for the appliance's PID 1.
 *
 *   runas UID GID PROG [ARGS...]
 *
 * Clears supplementary groups, sets real/effective/saved GID then UID,
 * refuses to continue if root could be regained, sets no_new_privs, turns
 * core dumps off, then execv()s PROG (an absolute path; no PATH search).
 * Built statically by image/build.sh; it is not part of libkeyroom.
 * Exit codes: 126 bad usage or a failed privilege drop, 127 exec failed.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static int
parse_id(const char *s, unsigned long *out)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > 65534)
		return -1;
	*out = v;
	return 0;
}

int
main(int argc, char **argv)
{
	struct rlimit rl = { 0, 0 };
	unsigned long uid, gid;

	if (argc < 4 || parse_id(argv[1], &uid) != 0 ||
	    parse_id(argv[2], &gid) != 0 || argv[3][0] != '/') {
		fprintf(stderr, "usage: runas UID GID /ABS/PROG [ARGS...] "
		    "(UID, GID in 1..65534)\n");
		return 126;
	}
	if (setrlimit(RLIMIT_CORE, &rl) != 0 ||
	    setgroups(0, NULL) != 0 ||
	    setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0 ||
	    setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) {
		fprintf(stderr, "runas: dropping to %lu:%lu: %s\n", uid, gid,
		    strerror(errno));
		return 126;
	}
	/* Regaining root must be impossible now. */
	if (setuid(0) == 0 || seteuid(0) == 0) {
		fprintf(stderr, "runas: could regain root; refusing\n");
		return 126;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		fprintf(stderr, "runas: no_new_privs: %s\n", strerror(errno));
		return 126;
	}
	execv(argv[3], argv + 3);
	fprintf(stderr, "runas: %s: %s\n", argv[3], strerror(errno));
	return 127;
}
