/*
 * appl.h - the appliance as a ceremony or signing session sees it: the
 * state's configuration, the PKCS#11 module, the audit log and its HSM
 * checkpoint signer, opened together and closed in the right order.
 */
#ifndef KR_APPL_H
#define KR_APPL_H

#include <limits.h>

#include "audit/audit.h"
#include "ca/config.h"
#include "ca/hsm.h"

struct kr_hsm_signer;

struct kr_appl {
	struct kr_config cfg;
	struct kr_state_paths paths;
	char module[PATH_MAX];
	struct kr_hsm *hsm;
	struct kr_log *log;
	struct kr_note_signer signer;
	struct kr_hsm_signer *hsigner;
};

/*
 * Open <state>: config, module, log (created with its init entry when
 * missing and create_log is set), audit signer. Errors: KR_ERR_STATE (not
 * initialised), the HSM and audit layers' errors. Free with
 * kr_appl_close.
 */
int kr_appl_open(const char *state, int create_log, struct kr_appl **out)
    KR_WUR;
void kr_appl_close(struct kr_appl *a);

/* The token label of a role ("root" -> cfg.token_root). NULL if unknown. */
const char *kr_appl_token(const struct kr_appl *a, const char *role);

/*
 * Append one entry (key, value pairs ending in NULL) and commit it with a
 * new signed checkpoint. *note (may be NULL) gets the checkpoint.
 */
int kr_appl_logf(struct kr_appl *a, enum kr_etype type, const char *actor,
    char **note, ...) __attribute__((sentinel)) KR_WUR;

#endif
