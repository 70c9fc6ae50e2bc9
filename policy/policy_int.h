/*
 * policy_int.h - the inside of struct kr_policy, shared by policy.c
 * (loading) and decide.c (the decision). Not for other folders: use
 * policy.h.
 */
#ifndef KR_POLICY_INT_H
#define KR_POLICY_INT_H

#include "policy/policy.h"

struct kr_pol_part {
	const char *part_number;	/* borrowed from doc */
	const char *model;		/* NULL: any model */
	char identity_kid[KR_MF_KID_MAX + 1];
};

struct kr_pol_mfr {
	const char *id;
	const char *name;
	long long quota;
	const char **parts;	/* array owned, strings borrowed */
	size_t nparts;
	const char **profiles;	/* NULL: every policy profile */
	size_t nprofiles;
};

struct kr_policy {
	json_t *doc;		/* the parsed file; strings borrow from it */
	char *name;
	char *basedir;
	struct kr_mf_signer signers[KR_POLICY_MAX_SIGNERS];
	char signer_src[KR_POLICY_MAX_SIGNERS][256];
	size_t nsigners;
	/* the file: names it reads, as written (signers and roots) */
	const char *files[KR_POLICY_MAX_SIGNERS + KR_POLICY_MAX_ROOTS];
	uint8_t file_sha256[KR_POLICY_MAX_SIGNERS + KR_POLICY_MAX_ROOTS][32];
	size_t nfiles;
	uint8_t yaml_sha256[32];	/* of the policy file's bytes */
	STACK_OF(X509) *roots;
	struct kr_mf_trust trust;
	unsigned curves;
	int lite_allowed;
	struct kr_pol_part *parts;
	size_t nparts;
	const char **profiles;
	size_t nprofiles;
	const char *subject;
	struct kr_pol_mfr *mfrs;
	size_t nmfrs;
	int renew_allowed;
	int renew_current;	/* proof by the currently certified key */
	int renew_manifest;	/* proof by a manifest-listed key */
};

const struct kr_pol_part *kr_pol_part(const struct kr_policy *p,
    const char *part_number);
const struct kr_pol_mfr *kr_pol_mfr(const struct kr_policy *p,
    const char *id);
int kr_pol_template_cn(const struct kr_policy *p, const struct kr_device *d,
    char *out, size_t outlen) KR_WUR;

/*
 * Rewrite the current KR_ERR_CONFIG detail "name: path: msg" as
 * "name:LINE: path: msg" when path (or path.key for "unknown key 'key'")
 * is found in the YAML text buf (policy/where.c).
 */
void kr_pol_add_line(const char *name, const char *buf, size_t len);

#endif
