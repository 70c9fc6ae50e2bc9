/*
 * appl.c - open/close the appliance state for ceremonies and sessions
 * (see appl.h).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/signer_hsm.h"
#include "ceremony/appl.h"
#include "lib/util.h"

#define MAX_KV 16

/* An empty log gets its first entry: init, with the checkpoint key. */
static int
first_entry(struct kr_appl *a)
{
	struct kr_ltx *ltx = NULL;
	MDB_txn *txn = NULL;
	uint64_t size = 0;
	char vkey[512];
	int r;

	if ((r = kr_log_read_begin(a->log, &txn)) != 0)
		return r;
	r = kr_log_size(a->log, txn, &size);
	mdb_txn_abort(txn);
	if (r != 0 || size != 0)
		return r;
	if ((r = kr_note_vkey(a->signer.name, a->signer.pub, vkey,
	    sizeof(vkey))) != 0 || (r = kr_log_begin(a->log, &ltx)) != 0)
		return r;
	if ((r = kr_ltx_appendf(ltx, KR_E_INIT, "ceremony", NULL, "vkey", vkey,
	    NULL)) != 0) {
		kr_ltx_abort(ltx);
		return r;
	}
	return kr_ltx_commit(ltx, &a->signer, NULL);
}

static int
create_log(struct kr_appl *a)
{
	int r;

	if ((r = kr_log_create(a->paths.log, a->cfg.audit_origin)) != 0)
		return r;
	return kr_log_open(a->paths.log, KR_LOG_WRITE, &a->log);
}

int
kr_appl_open(const char *state, int create, struct kr_appl **out)
{
	struct kr_appl *a = NULL;
	char spec[PATH_MAX + 8];
	int r;

	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return kr_errf(KR_ERR_ALLOC, "appliance");
	if ((r = kr_state_open(state, &a->cfg, &a->paths, &a->hsm)) != 0)
		goto out;
	if ((r = kr_snprintf(a->module, sizeof(a->module), "%s",
	    kr_hsm_module(a->hsm))) != 0 ||
	    (r = kr_snprintf(spec, sizeof(spec), "file:%s",
	    a->paths.audit_pin)) != 0)
		goto out;
	if ((r = kr_hsm_signer_open(a->module, a->cfg.token_audit,
	    a->cfg.audit_key_label, spec, a->cfg.audit_origin, &a->signer,
	    &a->hsigner)) != 0)
		goto out;
	r = kr_log_open(a->paths.log, KR_LOG_WRITE, &a->log);
	if (r == KR_ERR_NOT_FOUND && create && access(a->paths.log, F_OK) != 0)
		r = create_log(a);
	if (r != 0 || (create && (r = first_entry(a)) != 0))
		goto out;
	if ((r = kr_log_recover(a->log, &a->signer, "ceremony", NULL)) != 0)
		goto out;
	*out = a;
	a = NULL;
 out:
	kr_appl_close(a);
	return r;
}

void
kr_appl_close(struct kr_appl *a)
{
	if (a == NULL)
		return;
	kr_log_close(a->log);
	kr_hsm_signer_close(a->hsigner);
	kr_hsm_free(a->hsm);
	free(a);
}

const char *
kr_appl_token(const struct kr_appl *a, const char *role)
{
	if (strcmp(role, "root") == 0)
		return a->cfg.token_root;
	if (strcmp(role, "issuing") == 0)
		return a->cfg.token_issuing;
	if (strcmp(role, "audit") == 0)
		return a->cfg.token_audit;
	return NULL;
}

int
kr_appl_logf(struct kr_appl *a, enum kr_etype type, const char *actor,
    char **note, ...)
{
	struct kr_kv kv[MAX_KV];
	struct kr_ltx *ltx = NULL;
	const char *k;
	size_t n = 0;
	va_list ap;
	int r;

	if (note != NULL)
		*note = NULL;
	va_start(ap, note);
	while ((k = va_arg(ap, const char *)) != NULL && n < MAX_KV) {
		kv[n].key = k;
		kv[n].value = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	if ((r = kr_log_begin(a->log, &ltx)) != 0)
		return r;
	if ((r = kr_ltx_append(ltx, type, actor, kv, n, NULL)) != 0) {
		kr_ltx_abort(ltx);
		return r;
	}
	return kr_ltx_commit(ltx, &a->signer, note);
}
