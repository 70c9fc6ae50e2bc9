/*
 * rehearse.h - `keyroom ceremony run --rehearse`: the same script against
 * a throwaway state directory and SoftHSM2 token store. Scripts that need
 * an existing PKI (intermediate, revoke, rotation, reshare) first get one
 * from a silent bootstrap genesis with the script's own quorums, whose
 * share cards are offered to the rehearsal's unlock steps.
 */
#ifndef KR_REHEARSE_H
#define KR_REHEARSE_H

#include "ceremony/ceremony.h"

struct kr_rehearsal;

/* Point cli->state (and o's init PIN / cards) at a fresh throwaway
 * state. Undone and removed by kr_rehearsal_end. */
int kr_rehearsal_begin(struct kr_cli *cli, struct kr_ceremony_opts *o,
    const struct kr_script *s, struct kr_rehearsal **out) KR_WUR;
void kr_rehearsal_end(struct kr_rehearsal *r);

#endif
