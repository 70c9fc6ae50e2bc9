/*
 * script.h - declarative ceremony scripts (YAML, strict).
 *
 *   ceremony: genesis                 # id: [a-z0-9-]+
 *   purpose: "Create the OEM root ..."
 *   quorums:                          # token role -> its share set
 *     root:    { m: 2, n: 3, custodians: [alice, bob, carol] }
 *     issuing: { m: 2, n: 3, custodians: [dave, erin, frank] }
 *     # or   root: { out_of_band: true }   (PIN-entry device)
 *   witnesses: [ "Wendy Witness", "Walter Witness" ]
 *   steps:
 *     - do: init-tokens               # a type from the step table
 *       say: "The operator ..."       # optional text read aloud
 *       tokens: [root, issuing]       # the type's parameters
 *
 * Unknown keys anywhere (top level, quorum, step parameters per type) are
 * errors naming the file, step number and key. The script's SHA-256 is
 * over the file's bytes exactly: what was reviewed is what runs.
 */
#ifndef KR_SCRIPT_H
#define KR_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ceremony/quorum.h"

#define KR_SCRIPT_MAX_BYTES	(256 * 1024)
#define KR_SCRIPT_MAX_STEPS	64
#define KR_SCRIPT_MAX_WITNESSES	16
#define KR_SCRIPT_ID_MAX	64

enum kr_step_type {
	KR_STEP_NOTE,		/* a manual step: read aloud, confirm */
	KR_STEP_INIT_TOKENS,
	KR_STEP_SPLIT_PIN,
	KR_STEP_UNLOCK,
	KR_STEP_GENERATE_KEY,
	KR_STEP_SELF_SIGN_ROOT,
	KR_STEP_SIGN_INTERMEDIATE,
	KR_STEP_GENERATE_AUDIT_KEY,
	KR_STEP_CHECKPOINT,
	KR_STEP_EXPORT_CERT,
	KR_STEP_REVOKE,
	KR_STEP_ISSUE_CRL,
	KR_STEP_CROSS_CERTIFY,
	KR_STEP_ROTATION_PACKAGE,
	KR_STEP_DESTROY_KEY,
	KR_STEP_RESHARE,
	KR_STEP_PRINT_TRANSCRIPT,
	KR_STEP_PROMOTE,
	KR_STEP_INSTALL_POLICY,
	KR_STEP__COUNT
};

/* One row of the step table: name, parameters, what it does. */
struct kr_step_type_def {
	enum kr_step_type type;
	const char *name;
	const char *const *keys;	/* allowed parameters (NULL-ended) */
	const char *const *required;	/* required parameters (NULL-ended) */
	const char *summary;
};

/* The table (KR_STEP__COUNT rows, in enum order). */
extern const struct kr_step_type_def kr_step_types[KR_STEP__COUNT];
const struct kr_step_type_def *kr_step_type_find(const char *name);

struct kr_step {
	const struct kr_step_type_def *def;
	const char *say;		/* NULL if none; borrowed from tree */
	const json_t *params;		/* the step's mapping (borrowed) */
};

struct kr_script_quorum {
	char role[KR_Q_LABEL_MAX];	/* "root", "issuing" */
	unsigned m, n;
	int oob;
	const char *custodians[KR_Q_MAX_N];	/* borrowed from tree */
};

struct kr_script {
	char id[KR_SCRIPT_ID_MAX];
	const char *purpose;
	uint8_t sha256[32];		/* of the file bytes */
	json_t *tree;			/* owns every borrowed string */
	struct kr_script_quorum quorum[4];
	size_t nquorum;
	const char *witness[KR_SCRIPT_MAX_WITNESSES];
	size_t nwitness;
	struct kr_step step[KR_SCRIPT_MAX_STEPS];
	size_t nstep;
};

/*
 * Parse a script from buf (name used in messages). *out freed with
 * kr_script_free. Errors: KR_ERR_CONFIG naming the file, step and key;
 * KR_ERR_TOO_LARGE.
 */
int kr_script_parse(const char *name, const uint8_t *buf, size_t len,
    struct kr_script **out) KR_WUR;
/* Read (bounded, O_NOFOLLOW) and parse. */
int kr_script_load(const char *path, struct kr_script **out) KR_WUR;
void kr_script_free(struct kr_script *s);

/* The quorum declared for role, or NULL. */
const struct kr_script_quorum *kr_script_quorum_find(
    const struct kr_script *s, const char *role);

/* Step parameter getters (already validated by the parser). */
const char *kr_step_str(const struct kr_step *st, const char *key,
    const char *dflt);
long long kr_step_int(const struct kr_step *st, const char *key,
    long long dflt);

#endif
