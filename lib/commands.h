/* commands.h - prototypes of the top-level commands in commands.def. */
#ifndef KR_COMMANDS_H
#define KR_COMMANDS_H

#include "cli.h"

int cmd_version(struct kr_cli *, int, char **);
int cmd_init(struct kr_cli *, int, char **);
int cmd_ca(struct kr_cli *, int, char **);
int cmd_audit(struct kr_cli *, int, char **);
int cmd_batch(struct kr_cli *, int, char **);
int cmd_manifest(struct kr_cli *, int, char **);
int cmd_policy(struct kr_cli *, int, char **);
int cmd_ceremony(struct kr_cli *, int, char **);
int cmd_quorum(struct kr_cli *, int, char **);
int cmd_session(struct kr_cli *, int, char **);

#endif
