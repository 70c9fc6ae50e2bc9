/*
 * tokstore.h - crash repair for the embedded SoftHSM2 token store (see
 * tokstore.c: SoftHSM rewrites token.object in place on every login, and
 * a kill at the wrong instant empties it).
 */
#ifndef KR_CA_TOKSTORE_H
#define KR_CA_TOKSTORE_H

#include "lib/err.h"

/*
 * Before the module is loaded: for every token directory under tokendir,
 * put keyroom's copy back over an empty token.object (a warning on stderr
 * and a kr_startup_note, logged by kr_log_recover) and refresh the copy
 * of a whole one. Remembers tokendir for kr_tokstore_sync.
 */
int kr_tokstore_check(const char *tokendir) KR_WUR;

/* After this process changed a PIN: refresh the copies now. */
int kr_tokstore_sync(void) KR_WUR;

#endif
