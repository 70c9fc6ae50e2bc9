/*
 * steps_policy.c - install-policy: the signing policy (pinned manifest
 * signers, device-PKI roots, parts, manufacturers and their quotas) taken
 * from the ceremony's media directory into the state directory, under the
 * quorum the script unlocked before it, and logged as a config-change
 * entry with the new and the previous file's SHA-256.
 *
 * <media>/policy/policy.yaml and the certificate files it names, as plain
 * names beside it. Everything is read and checked before anything is
 * written: the policy must load as `keyroom policy check` loads it; its
 * files must be plain names; a file the state already has must have the
 * same bytes (the policy in force may read it until the new one is in
 * place). The new files are written first, each atomically; the policy
 * is loaded once more from those very files (what was checked is what is
 * installed, whatever the stick did meanwhile) and written as
 * policy.yaml.new. The step's config-change entry (with the policy's
 * digest) and the installed-policy row (ceremony/polstore.h) commit in
 * one transaction, and only then is policy.yaml.new renamed over
 * policy.yaml (the runner's in_txn and committed hooks): at every instant the state holds one whole policy, and a
 * crash between the commit and the rename leaves a logged policy not yet
 * in force - batch sign refuses then, it never runs under a policy the
 * log does not name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ceremony/polstore.h"
#include "ceremony/run_int.h"
#include "lib/util.h"
#include "lib/yaml.h"
#include "policy/policy.h"

#define POLICY_DIR "policy"
#define CERT_FILE_MAX (256 * 1024)

/* A certificate file name that stays beside the policy: [A-Za-z0-9._-],
 * not starting with '.', ending in .crt, .pem or .der (so that no name of
 * the state's own files - keyroom.yaml, softhsm2.conf, *.pin - can be
 * one). */
static int
plain_name(const char *s)
{
	size_t n = strlen(s);
	const char *p;

	if (n < 5 || n > 128 || s[0] == '.' ||
	    (strcmp(s + n - 4, ".crt") != 0 && strcmp(s + n - 4, ".pem") != 0 &&
	    strcmp(s + n - 4, ".der") != 0))
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		    *p == '-'))
			return 0;
	return 1;
}

/* In the step's transaction: the installed-policy row names its
 * config-change entry (the step's only extra entry). */
static int
policy_record(struct crun *c, MDB_txn *txn, const uint64_t *extra_idx)
{
	return kr_polstore_put(c->a->log, txn, c->pol_digest, c->pol_sha256,
	    extra_idx[0]);
}

/*
 * Once that commits, policy.yaml.new replaces the policy in force. A
 * crash before this rename leaves the log naming a policy that is not in
 * force, and batch sign refuses until the ceremony is run again; never a
 * policy in force that the log does not name.
 */
static int
policy_into_force(struct crun *c)
{
	char tmp[PATH_MAX];
	int r;

	if ((r = kr_snprintf(tmp, sizeof(tmp), "%s.new",
	    c->a->paths.policy)) != 0)
		return r;
	kr_audit_crash_point("policy logged, not yet in force");
	if ((r = kr_rename_durable(tmp, c->a->paths.policy)) != 0)
		return kr_errctx(r, "the policy is logged as installed but is "
		    "not in force; run the ceremony again");
	return 0;
}

/* Not logged: the copy never comes into force. */
static void
policy_discard(struct crun *c)
{
	char tmp[PATH_MAX];

	if (kr_snprintf(tmp, sizeof(tmp), "%s.new", c->a->paths.policy) == 0)
		(void)unlink(tmp);
}

struct pfile {
	const char *name;
	uint8_t *buf;
	size_t len;
	int present;		/* already in the state, same bytes */
};

int
step_install_policy(struct crun *c, const struct kr_step *st)
{
	char dir[PATH_MAX], src[PATH_MAX], path[PATH_MAX], hex[65], ohex[65];
	char dhex[65];
	struct pfile f[KR_POLICY_MAX_SIGNERS + KR_POLICY_MAX_ROOTS];
	struct kr_policy *np = NULL;
	json_t *lint = NULL;
	uint8_t *yaml = NULL, *cur = NULL, h[32];
	const char *name;
	size_t ylen = 0, clen = 0, nf = 0, i, nwritten = 0;
	int r, had_old = 0;

	(void)st;
	memset(f, 0, sizeof(f));
	if (c->o->media == NULL)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "install-policy needs "
		    "--media DIR holding %s/policy.yaml", POLICY_DIR);
	if ((r = kr_snprintf(dir, sizeof(dir), "%s/%s", c->o->media,
	    POLICY_DIR)) != 0 ||
	    (r = kr_snprintf(src, sizeof(src), "%s/policy.yaml", dir)) != 0)
		return r;
	/* 1. read and check everything; nothing is written yet */
	if ((r = kr_read_file(src, KR_YAML_MAX_BYTES, &yaml, &ylen)) != 0) {
		r = kr_errctx(r, "install-policy");
		goto out;
	}
	if ((r = kr_policy_parse(src, (const char *)yaml, ylen, dir,
	    &np)) != 0) {
		r = kr_errctx(r, "install-policy: the new policy is refused");
		goto out;
	}
	for (i = 0; (name = kr_policy_file(np, i)) != NULL; i++) {
		size_t k;

		for (k = 0; k < nf && strcmp(f[k].name, name) != 0; k++)
			;
		if (k < nf)
			continue;	/* named twice */
		if (!plain_name(name)) {
			r = kr_errf(KR_ERR_POLICY, "install-policy: '%s': the "
			    "policy's certificate files must be plain names "
			    "(*.crt, *.pem, *.der) beside it in %s/", name,
			    POLICY_DIR);
			goto out;
		}
		f[nf].name = name;
		if ((r = kr_snprintf(path, sizeof(path), "%s/%s", dir,
		    name)) != 0 ||
		    (r = kr_read_file(path, CERT_FILE_MAX, &f[nf].buf,
		    &f[nf].len)) != 0)
			goto out;
		if ((r = kr_snprintf(path, sizeof(path), "%s/%s",
		    c->a->paths.dir, name)) != 0)
			goto out;
		if (access(path, F_OK) == 0) {
			free(cur);
			cur = NULL;
			if ((r = kr_read_file(path, CERT_FILE_MAX, &cur,
			    &clen)) != 0)
				goto out;
			if (clen != f[nf].len ||
			    memcmp(cur, f[nf].buf, clen) != 0) {
				r = kr_errf(KR_ERR_EXISTS, "install-policy: "
				    "the state already has a different %s, "
				    "which the policy in force may read: give "
				    "the new certificate a file name of its "
				    "own", name);
				goto out;
			}
			f[nf].present = 1;
		}
		nf++;
	}
	free(cur);
	cur = NULL;
	if (access(c->a->paths.policy, F_OK) == 0) {
		if ((r = kr_read_file(c->a->paths.policy, KR_YAML_MAX_BYTES,
		    &cur, &clen)) != 0)
			goto out;
		kr_sha256(cur, clen, h);
		kr_hex(h, 32, ohex);
		had_old = 1;
	}
	/* 2. the new certificate files, then policy.yaml in one rename */
	for (i = 0; i < nf; i++) {
		if (f[i].present)
			continue;
		if ((r = kr_snprintf(path, sizeof(path), "%s/%s",
		    c->a->paths.dir, f[i].name)) != 0 ||
		    (r = kr_write_new_file(path, f[i].buf, f[i].len,
		    0644)) != 0)
			goto out;
		nwritten++;
	}
	/*
	 * The policy once more, as it will be in force: these YAML bytes
	 * over the files now in the state (the certificates were read from
	 * the stick twice: by the first parse and for the copy).
	 */
	kr_policy_free(np);
	np = NULL;
	if ((r = kr_policy_parse(c->a->paths.policy, (const char *)yaml, ylen,
	    c->a->paths.dir, &np)) != 0) {
		r = kr_errctx(r, "install-policy: the copied files changed");
		goto out;
	}
	if ((r = kr_policy_lint(np, &lint)) != 0 ||
	    (r = kr_policy_digest(np, c->pol_digest)) != 0 ||
	    (r = kr_snprintf(path, sizeof(path), "%s.new",
	    c->a->paths.policy)) != 0 ||
	    (r = kr_write_replace_file(path, yaml, ylen, 0644)) != 0)
		goto out;
	kr_sha256(yaml, ylen, h);
	memcpy(c->pol_sha256, h, 32);
	kr_hex(h, 32, hex);
	kr_hex(c->pol_digest, 32, dhex);
	if ((r = crun_extra(c, KR_E_CONFIG_CHANGE, "file", c->a->paths.policy,
	    "sha256", hex, "previous-sha256", had_old ? ohex : NULL,
	    "policy-digest", dhex, NULL)) != 0) {
		(void)unlink(path);
		goto out;
	}
	c->in_txn = policy_record;
	c->committed = policy_into_force;
	c->aborted = policy_discard;
	crun_detail(c, "policy installed: %zu pinned signer(s), %zu "
	    "certificate file(s) (%zu new), %s%s", json_array_size(
	    json_object_get(lint, "signers")), nf, nwritten,
	    had_old ? "replacing policy sha256 " : "the first policy",
	    had_old ? ohex : "");
	crun_fingerprint(c, "policy.yaml", h);
 out:
	for (i = 0; i < KR_ARRAY_SIZE(f); i++)
		free(f[i].buf);
	json_decref(lint);
	kr_policy_free(np);
	free(cur);
	free(yaml);
	return r;
}
