/*
 * config.h - the state directory and its configuration <state>/keyroom.yaml
 * (PKCS#11 module, token labels, audit origin, certificate profiles).
 *
 * keyroom.yaml (every key optional; unknown keys are errors):
 *
 *   pkcs11:
 *     module: /usr/lib/x.so     # absent: embedded SoftHSM2 in <state>/tokens
 *   tokens:
 *     root: keyroom-root
 *     issuing: keyroom-issuing
 *     audit: keyroom-audit
 *   keys:
 *     root: root-ca             # key labels inside the tokens
 *     issuing: issuing-ca
 *   audit:
 *     origin: keyroom.example/log
 *     key_label: audit-key
 *   profiles:
 *     root:
 *       algorithm: p384            # p256 | p384 | rsa3072 | ed25519
 *       validity: 7300             # days, or "no-expiry" (99991231235959Z)
 *       subject: "/O=Example/CN=Example Root CA"
 *       crl_url: http://...        # optional CRL distribution point
 *       aia_url: http://...        # optional caIssuers URL
 *     intermediate: { ... same keys ... }
 *     device:
 *       algorithms: [p256, p384]   # CSR key types accepted
 *       validity: no-expiry
 *       key_agreement: false
 *       server_auth: false
 *       crl_url / aia_url          # optional
 *       hardware_module_name: true # SAN otherName (RFC 4108)
 *       hw_type: 1.3.6.1.4.1.xxx   # hwType OID in that name
 */
#ifndef KR_CA_CONFIG_H
#define KR_CA_CONFIG_H

#include <limits.h>
#include <stddef.h>

#include <jansson.h>

#include "ca/hsm.h"
#include "lib/err.h"

#define KR_CONFIG_FILE "keyroom.yaml"
#define KR_DN_MAX 512
#define KR_URL_MAX 512
#define KR_OID_MAX 128
#define KR_ORIGIN_MAX 256

/* Validity days meaning "no expiry": notAfter 99991231235959Z. */
#define KR_VALIDITY_NO_EXPIRY 0
#define KR_VALIDITY_MAX_DAYS 36500

enum kr_cert_kind {
	KR_CERT_ROOT = 1,
	KR_CERT_INTERMEDIATE = 2,
	KR_CERT_DEVICE = 3,
};

struct kr_profile {
	enum kr_cert_kind kind;
	/* root/intermediate: the key type generated in the token. */
	enum kr_key_type algorithm;
	/* device: mask of KR_KEY_BIT() types a CSR key may have. */
	unsigned int algorithms;
	int validity_days;		/* KR_VALIDITY_NO_EXPIRY or 1.. */
	char subject[KR_DN_MAX];	/* "/O=x/CN=y"; device: default template */
	char crl_url[KR_URL_MAX];	/* "" = none */
	char aia_url[KR_URL_MAX];	/* "" = none */
	int key_agreement;		/* device: add keyAgreement */
	int server_auth;		/* device: add serverAuth EKU */
	int hw_module_name;		/* device: SAN HardwareModuleName */
	char hw_type[KR_OID_MAX];	/* its hwType OID (dotted) */
};

struct kr_config {
	char module[PATH_MAX];		/* "" = embedded SoftHSM2 */
	char token_root[KR_TOKEN_LABEL_MAX + 1];
	char token_issuing[KR_TOKEN_LABEL_MAX + 1];
	char token_audit[KR_TOKEN_LABEL_MAX + 1];
	char key_root[KR_KEY_LABEL_MAX + 1];
	char key_issuing[KR_KEY_LABEL_MAX + 1];
	char audit_origin[KR_ORIGIN_MAX];
	char audit_key_label[KR_KEY_LABEL_MAX + 1];
	struct kr_profile root;
	struct kr_profile intermediate;
	struct kr_profile device;
};

/* Paths in the state directory (docs/STATE.md). */
struct kr_state_paths {
	char dir[PATH_MAX];
	char config[PATH_MAX];		/* keyroom.yaml */
	char policy[PATH_MAX];		/* policy.yaml */
	char softhsm_conf[PATH_MAX];	/* softhsm2.conf */
	char tokens[PATH_MAX];		/* tokens/ */
	char audit_pin[PATH_MAX];	/* audit-token.pin */
	char log[PATH_MAX];		/* log/ */
	char certs[PATH_MAX];		/* certs/ */
	char root_pem[PATH_MAX];	/* certs/root.pem */
	char intermediate_pem[PATH_MAX];/* certs/intermediate.pem */
	char chain_pem[PATH_MAX];	/* certs/chain.pem */
	char promote_mark[PATH_MAX];	/* certs/promote.inprogress */
};

/* Fill *p for statedir. KR_ERR_TOO_LARGE if a path does not fit. */
int kr_state_paths(const char *statedir, struct kr_state_paths *p) KR_WUR;

/*
 * KR_ERR_STATE if a root promotion (the rotation ceremony's promote step)
 * began and did not finish: keys and certificates may be half moved, so
 * nothing is issued until the promote.yaml ceremony finishes it.
 */
int kr_state_not_promoting(const struct kr_state_paths *p) KR_WUR;

/* Defaults: embedded SoftHSM2, P-384 root (20 y), P-256 intermediate
 * (10 y), device P-256 no-expiry clientAuth with HardwareModuleName. */
void kr_config_defaults(struct kr_config *cfg);

/*
 * Apply a parsed keyroom.yaml tree on top of the defaults in *cfg.
 * `name` prefixes messages ("keyroom.yaml: profiles.root: unknown key
 * 'algo'"). KR_ERR_CONFIG on unknown keys, wrong types, bad values.
 */
int kr_config_apply(const char *name, const json_t *root,
    struct kr_config *cfg) KR_WUR;

/* Parse YAML text (defaults + apply). For tests and kr_config_load. */
int kr_config_parse(const char *name, const char *buf, size_t len,
    struct kr_config *cfg) KR_WUR;

/*
 * Load <statedir>/keyroom.yaml. KR_ERR_STATE ("keyroom-state: not
 * initialised (run keyroom init)") if the state directory or file is
 * missing.
 */
int kr_config_load(const char *statedir, struct kr_config *cfg) KR_WUR;

/* Render cfg as keyroom.yaml text (malloc'd, NUL-terminated). */
int kr_config_render(const struct kr_config *cfg, char **out) KR_WUR;

/*
 * The PKCS#11 module to load for this state: cfg->module, or for the
 * embedded store the SoftHSM2 module after exporting
 * SOFTHSM2_CONF=<state>/softhsm2.conf (writing that file is init's job).
 */
int kr_config_module(const struct kr_config *cfg,
    const struct kr_state_paths *paths, char *module, size_t len) KR_WUR;

/*
 * Write <state>/softhsm2.conf (directories.tokendir = <state>/tokens,
 * objectstore.backend = file) and create tokens/ (0700).
 */
int kr_config_write_softhsm(const struct kr_state_paths *paths) KR_WUR;

/* The profile of a kind. */
const struct kr_profile *kr_config_profile(const struct kr_config *cfg,
    enum kr_cert_kind kind);

/*
 * Convenience for commands: load the config of statedir, load its module
 * and return both. *hsm freed with kr_hsm_free().
 */
int kr_state_open(const char *statedir, struct kr_config *cfg,
    struct kr_state_paths *paths, struct kr_hsm **hsm) KR_WUR;

#endif
