/*
 * test_ca_config.c - keyroom.yaml: defaults, every key, strictness
 * (unknown keys, wrong types, bad values), render -> parse round trip,
 * state paths, and subject DN parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/config.h"
#include "lib/util.h"

static int
parse(const char *text, struct kr_config *c)
{
	return kr_config_parse("keyroom.yaml", text, strlen(text), c);
}

static void
test_defaults(void **s)
{
	struct kr_config c;

	/* lib/yaml refuses an empty document: "{}" means all defaults. */
	assert_int_equal(parse("", &c), KR_ERR_CONFIG);
	assert_int_equal(parse("{}\n", &c), 0);
	assert_string_equal(c.module, "");
	assert_string_equal(c.token_root, "keyroom-root");
	assert_string_equal(c.token_issuing, "keyroom-issuing");
	assert_string_equal(c.token_audit, "keyroom-audit");
	assert_int_equal(c.root.algorithm, KR_KEY_P384);
	assert_int_equal(c.intermediate.algorithm, KR_KEY_P256);
	assert_int_equal(c.device.algorithms, KR_KEY_BIT(KR_KEY_P256));
	assert_int_equal(c.device.validity_days, KR_VALIDITY_NO_EXPIRY);
	assert_int_equal(c.device.hw_module_name, 0);
}

static void
test_full(void **s)
{
	static const char y[] =
	    "pkcs11: {module: /opt/hsm/lib.so}\n"
	    "tokens: {root: r, issuing: i, audit: a}\n"
	    "keys: {root: rk, issuing: ik}\n"
	    "audit: {origin: example.com/log, key_label: ak}\n"
	    "profiles:\n"
	    "  root: {algorithm: ed25519, validity: 9000, subject: /CN=R}\n"
	    "  intermediate:\n"
	    "    algorithm: rsa3072\n"
	    "    validity: no-expiry\n"
	    "    subject: /O=X/CN=I\n"
	    "    crl_url: http://crl.example/i.crl\n"
	    "    aia_url: http://ca.example/r.crt\n"
	    "  device:\n"
	    "    algorithms: [p384, ed25519]\n"
	    "    validity: 365\n"
	    "    key_agreement: true\n"
	    "    server_auth: true\n"
	    "    hardware_module_name: true\n"
	    "    hw_type: 1.3.6.1.4.1.99999.2\n";
	struct kr_config c;

	if (parse(y, &c) != 0)
		fail_msg("%s", kr_err_detail());
	assert_string_equal(c.module, "/opt/hsm/lib.so");
	assert_string_equal(c.token_audit, "a");
	assert_string_equal(c.key_issuing, "ik");
	assert_string_equal(c.audit_origin, "example.com/log");
	assert_int_equal(c.root.algorithm, KR_KEY_ED25519);
	assert_int_equal(c.root.validity_days, 9000);
	assert_int_equal(c.intermediate.algorithm, KR_KEY_RSA3072);
	assert_int_equal(c.intermediate.validity_days, KR_VALIDITY_NO_EXPIRY);
	assert_string_equal(c.intermediate.crl_url, "http://crl.example/i.crl");
	assert_int_equal(c.device.algorithms,
	    KR_KEY_BIT(KR_KEY_P384) | KR_KEY_BIT(KR_KEY_ED25519));
	assert_int_equal(c.device.validity_days, 365);
	assert_true(c.device.key_agreement && c.device.server_auth &&
	    c.device.hw_module_name);
	assert_string_equal(c.device.hw_type, "1.3.6.1.4.1.99999.2");
}

/* One bad file per line, with the exact message. */
static const struct {
	const char *yaml;
	const char *msg;
} bad[] = {
	{ "profile: {}\n", "keyroom.yaml: unknown key 'profile'" },
	{ "tokens: {rot: x}\n", "keyroom.yaml: tokens: unknown key 'rot'" },
	{ "tokens: {root: \"\"}\n",
	    "keyroom.yaml: tokens: 'root' must not be empty" },
	{ "tokens: {root: 12}\n",
	    "keyroom.yaml: tokens: 'root' must be a string" },
	{ "tokens: {root: \"123456789012345678901234567890123\"}\n",
	    "keyroom.yaml: tokens: 'root' longer than 32 bytes" },
	{ "profiles: {root: {algo: p256}}\n",
	    "keyroom.yaml: profiles.root: unknown key 'algo'" },
	{ "profiles: {root: {algorithm: p521}}\n",
	    "keyroom.yaml: profiles.root: 'algorithm': unknown algorithm 'p521' "
	    "(p256, p384, rsa3072, ed25519)" },
	{ "profiles: {root: {algorithms: [p256]}}\n",
	    "keyroom.yaml: profiles.root: unknown key 'algorithms'" },
	{ "profiles: {device: {algorithms: []}}\n",
	    "keyroom.yaml: profiles.device: 'algorithms' must be a non-empty "
	    "list" },
	{ "profiles: {device: {validity: 0}}\n",
	    "keyroom.yaml: profiles.device: 'validity' must be 1..36500 days "
	    "or \"no-expiry\"" },
	{ "profiles: {device: {validity: forever}}\n",
	    "keyroom.yaml: profiles.device: 'validity' must be 1..36500 days "
	    "or \"no-expiry\"" },
	{ "profiles: {device: {server_auth: yes}}\n",
	    "keyroom.yaml: profiles.device: 'server_auth' must be true or false" },
	{ "profiles: {device: {hardware_module_name: true, hw_type: abc}}\n",
	    "keyroom.yaml: profiles.device: 'hw_type' 'abc' is not a dotted "
	    "OID" },
	{ "profiles: {intermediate: {subject: \"\"}}\n",
	    "keyroom.yaml: profiles.intermediate: 'subject' must not be empty" },
	{ "profiles: {root: {key_agreement: true}}\n",
	    "keyroom.yaml: profiles.root: unknown key 'key_agreement'" },
};

static void
test_strict(void **s)
{
	struct kr_config c;
	size_t i;
	int r;

	for (i = 0; i < KR_ARRAY_SIZE(bad); i++) {
		r = parse(bad[i].yaml, &c);
		if (r != KR_ERR_CONFIG || strcmp(kr_err_detail(),
		    bad[i].msg) != 0)
			fail_msg("case %zu: r=%d '%s'", i, r, kr_err_detail());
	}
}

static void
test_render_roundtrip(void **s)
{
	struct kr_config a, b;
	char *y = NULL;

	kr_config_defaults(&a);
	snprintf(a.module, sizeof(a.module), "/opt/p11 \"x\".so");
	snprintf(a.device.subject, sizeof(a.device.subject),
	    "/O=Acme \\\"q\\\"/CN={id}");
	a.device.algorithms = KR_KEY_BIT(KR_KEY_P256) | KR_KEY_BIT(KR_KEY_P384);
	a.device.hw_module_name = 1;
	a.intermediate.validity_days = 100;
	snprintf(a.intermediate.aia_url, sizeof(a.intermediate.aia_url),
	    "http://ca.example/r.crt");
	assert_int_equal(kr_config_render(&a, &y), 0);
	if (parse(y, &b) != 0)
		fail_msg("%s\n%s", kr_err_detail(), y);
	assert_memory_equal(&a, &b, sizeof(a));
	free(y);
	/* A control character cannot be rendered. */
	a.root.subject[1] = '\n';
	assert_int_equal(kr_config_render(&a, &y), KR_ERR_CONFIG);
}

static void
test_state_paths(void **s)
{
	struct kr_state_paths p;
	char longdir[5000];

	assert_int_equal(kr_state_paths("/st", &p), 0);
	assert_string_equal(p.config, "/st/keyroom.yaml");
	assert_string_equal(p.audit_pin, "/st/audit-token.pin");
	assert_string_equal(p.chain_pem, "/st/certs/chain.pem");
	memset(longdir, 'a', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	assert_int_equal(kr_state_paths(longdir, &p), KR_ERR_TOO_LARGE);
	assert_int_equal(kr_config_load("/nonexistent-state",
	    &(struct kr_config){ 0 }), KR_ERR_STATE);
}

static void
test_parse_dn(void **s)
{
	X509_NAME *n = NULL;
	char *t;

	assert_int_equal(kr_ca_parse_dn("/C=DE/O=Acme GmbH/CN=a\\/b", &n), 0);
	t = X509_NAME_oneline(n, NULL, 0);
	assert_string_equal(t, "/C=DE/O=Acme GmbH/CN=a\\/b");
	OPENSSL_free(t);
	assert_int_equal(X509_NAME_entry_count(n), 3);
	X509_NAME_free(n);
	n = NULL;
	assert_int_equal(kr_ca_parse_dn("CN=x", &n), KR_ERR_FORMAT);
	assert_int_equal(kr_ca_parse_dn("/", &n), KR_ERR_FORMAT);
	assert_int_equal(kr_ca_parse_dn("/CN=", &n), KR_ERR_FORMAT);
	assert_int_equal(kr_ca_parse_dn("/XX=y", &n), KR_ERR_FORMAT);
	assert_string_equal(kr_err_detail(), "subject '/XX=y': bad attribute "
	    "XX=y");
	assert_int_equal(kr_ca_parse_dn("/CN", &n), KR_ERR_FORMAT);
	assert_null(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_render_roundtrip),
		cmocka_unit_test(test_state_paths),
		cmocka_unit_test(test_parse_dn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
