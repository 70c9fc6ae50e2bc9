/*
 * test_review_media.c - defects found in review of the manifest reader
 * (media/manifest.c, media/jws.c) and the policy decision: forged or
 * odd input that used to be mishandled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/util.h"
#include "media/manifest.h"
#include "media/registry.h"
#include "policy/policy.h"

/* One flattened JWS with the given protected header JSON. */
static char *
entry_with_header(const char *hdr)
{
	char ph[1024], *out;
	json_t *a;

	assert_int_equal(kr_jws_b64url_encode((const uint8_t *)hdr,
	    strlen(hdr), ph, sizeof(ph)), 0);
	a = json_pack("[{s:s, s:s, s:{s:s}, s:s}]", "payload", "e30",
	    "protected", ph, "header", "uniqueId", "0123456789abcdef01",
	    "signature", "AAAA");
	assert_non_null(a);
	out = json_dumps(a, 0);
	json_decref(a);
	assert_non_null(out);
	return out;
}

/*
 * Defect: refusal messages cut attacker-chosen header strings with
 * "%.16s", splitting a UTF-8 character; the invalid message then could
 * not go into the JSON report, so one forged entry aborted the whole
 * `manifest verify/import` as "out of memory" instead of being refused
 * with its reason.
 */
static void
test_manifest_message_utf8(void **state)
{
	static const char *const hdrs[] = {
		/* alg: 1 + 2n bytes, cut at 16 */
		"{\"alg\":\"a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		"\xc3\xa9\xc3\xa9\xc3\xa9\"}",
		/* unknown member name, cut at 32 */
		"{\"alg\":\"ES256\",\"x\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
		"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
		"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\":\"v\"}",
	};
	static const enum kr_mf_reason want[] = { KR_MF_ALG,
	    KR_MF_FORBIDDEN_HEADER };
	struct kr_mf_trust t;
	struct kr_manifest *m = NULL;
	json_t *s;
	char *text;
	size_t i;

	(void)state;
	memset(&t, 0, sizeof(t));
	for (i = 0; i < KR_ARRAY_SIZE(hdrs); i++) {
		text = entry_with_header(hdrs[i]);
		assert_int_equal(kr_manifest_parse(&t, "m.json",
		    (const uint8_t *)text, strlen(text), &m), 0);
		free(text);
		assert_int_equal(m->n, 1);
		assert_int_equal(m->r[0].reason, want[i]);
		/* The message is valid UTF-8: it goes into a JSON report. */
		s = json_string(m->r[0].message);
		if (s == NULL)
			fail_msg("message %zu is not UTF-8: %s", i,
			    m->r[0].message);
		json_decref(s);
		kr_manifest_free(m);
		m = NULL;
	}
}

/* A self-signed CA:FALSE certificate with SKI for key k, as PEM. */
static char *
cert_pem(EVP_PKEY *k)
{
	X509 *c = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	assert_non_null(c);
	assert_non_null(b);
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 9);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN",
	    MBSTRING_ASC, (const unsigned char *)"k1 signer", -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(c));
	X509_gmtime_adj(X509_getm_notBefore(c), -86400);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400L * 3650);
	X509_set_pubkey(c, k);
	X509V3_set_ctx(&ctx, c, c, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier,
	    "hash");
	X509_add_ext(c, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(c, k, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509(b, c), 1);
	n = BIO_get_mem_data(b, &data);
	assert_non_null(out = strndup(data, (size_t)n));
	BIO_free(b);
	X509_free(c);
	return out;
}

static int policy_with_subject(const char *pem, const char *subject,
    struct kr_policy **p);

/* A policy whose only signer is the PEM text. */
static int
policy_with_signer(const char *pem, struct kr_policy **p)
{
	return policy_with_subject(pem, "CN=sn${UNIQUEID}", p);
}

static int
policy_with_subject(const char *pem, const char *subject,
    struct kr_policy **p)
{
	char buf[4096], ind[3000];
	size_t i, o = 0;

	for (i = 0; pem[i] != '\0'; i++) {
		if (i == 0 || pem[i - 1] == '\n') {
			memcpy(ind + o, "      ", 6);
			o += 6;
		}
		ind[o++] = pem[i];
	}
	ind[o] = '\0';
	snprintf(buf, sizeof(buf), "version: 1\nsigners:\n  - pem: |\n%s"
	    "parts:\n  - part_number: P1\nprofiles: [device]\n"
	    "subject: \"%s\"\nmanufacturers:\n"
	    "  - id: cm1\n    quota: 5\n    parts: [P1]\n", ind, subject);
	return kr_policy_parse("p.yaml", buf, strlen(buf), NULL, p);
}

/*
 * Defect: "ES256" was taken as "any 256-bit EC key": a pinned signer on
 * secp256k1 (or brainpoolP256r1) was loaded, and its signatures were
 * verified as ES256, which is ECDSA on P-256 only (RFC 7518 3.4).
 */
static void
test_es256_is_p256_only(void **state)
{
	static const char msg[] = "eyJhbGciOiJFUzI1NiJ9.e30";
	EVP_PKEY *k1 = NULL, *p256 = NULL;
	EVP_MD_CTX *mc;
	ECDSA_SIG *es;
	const unsigned char *q;
	unsigned char der[80], raw[64];
	size_t dl = sizeof(der);
	struct kr_policy *pol = NULL;
	char *pem;

	(void)state;
	assert_non_null(k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
	    "secp256k1"));
	assert_non_null(mc = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, k1),
	    1);
	assert_int_equal(EVP_DigestSign(mc, der, &dl, (const uint8_t *)msg,
	    strlen(msg)), 1);
	EVP_MD_CTX_free(mc);
	q = der;
	assert_non_null(es = d2i_ECDSA_SIG(NULL, &q, (long)dl));
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
	ECDSA_SIG_free(es);
	assert_int_equal(kr_jws_es256_verify(k1, msg, strlen(msg), raw, 64),
	    KR_ERR_SIGNATURE);
	/* The policy refuses to pin it. */
	pem = cert_pem(k1);
	assert_int_equal(policy_with_signer(pem, &pol), KR_ERR_CONFIG);
	assert_non_null(strstr(kr_err_detail(), "P-256"));
	free(pem);
	/* A P-256 signer still loads. */
	assert_non_null(p256 = EVP_EC_gen("P-256"));
	pem = cert_pem(p256);
	if (policy_with_signer(pem, &pol) != 0)
		fail_msg("P-256 signer refused: %s", kr_err_detail());
	kr_policy_free(pol);
	free(pem);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(k1);
}

/*
 * Defect: verdict messages quote the batch's manufacturer / profile and
 * the CSR's CN (hostile media) with "%.64s", which can split a UTF-8
 * character; the message is meant for JSON reports.
 */
static void
test_verdict_message_utf8(void **state)
{
	struct kr_policy *pol = NULL;
	struct kr_request rq;
	struct kr_verdict v;
	EVP_PKEY *k;
	char mfr[128], *pem;
	json_t *js;
	size_t i;

	(void)state;
	assert_non_null(k = EVP_EC_gen("P-256"));
	pem = cert_pem(k);
	assert_int_equal(policy_with_signer(pem, &pol), 0);
	free(pem);
	mfr[0] = 'x';
	for (i = 0; i < 40; i++)
		memcpy(mfr + 1 + 2 * i, "\xc3\xa9", 2);
	mfr[81] = '\0';
	memset(&rq, 0, sizeof(rq));
	rq.manufacturer = mfr;
	rq.pkey = k;
	rq.pop_ok = 1;
	assert_int_equal(kr_policy_decide(pol, &rq, &v),
	    KR_DEC_MANUFACTURER_UNKNOWN);
	if ((js = json_string(v.message)) == NULL)
		fail_msg("verdict message is not UTF-8: %s", v.message);
	json_decref(js);
	kr_policy_free(pol);
	EVP_PKEY_free(k);
}

/*
 * Defect: the decision trusted any registry entry, but the registry can
 * hold entries verified under another policy (`manifest import --policy
 * FILE` pinning any signer) or under a signer the policy no longer pins:
 * a forged manifest imported that way made its chips certifiable.
 */
static void
test_decide_requires_pinned_signer(void **state)
{
	struct kr_policy *pol = NULL;
	struct kr_device d;
	struct kr_request rq;
	struct kr_verdict v;
	EVP_PKEY *k;
	char *pem;

	(void)state;
	assert_non_null(k = EVP_EC_gen("P-256"));
	pem = cert_pem(k);
	assert_int_equal(policy_with_signer(pem, &pol), 0);
	free(pem);
	memset(&d, 0, sizeof(d));
	strcpy(d.unique_id, "0123456789abcdef01");
	strcpy(d.model, "ATECC608B");
	strcpy(d.part_number, "P1");
	memset(d.signer, 0xab, 32);	/* some other signer */
	memset(&rq, 0, sizeof(rq));
	rq.manufacturer = "cm1";
	rq.pkey = k;
	rq.pop_ok = 1;
	rq.dev = &d;
	assert_int_equal(kr_policy_decide(pol, &rq, &v),
	    KR_DEC_NOT_IN_MANIFEST);
	assert_non_null(strstr(v.message, "abababab"));
	assert_non_null(strstr(v.message, "not pinned"));
	/* Renewals too. */
	rq.renewal = 1;
	rq.proof = KR_PROOF_CURRENT_CERT;
	rq.already_certified = 1;
	assert_int_equal(kr_policy_decide(pol, &rq, &v),
	    KR_DEC_NOT_IN_MANIFEST);
	/* Signed by the pinned signer: decided on (lite entry: no key). */
	memcpy(d.signer, kr_policy_trust(pol)->signers[0].sha256, 32);
	rq.renewal = 0;
	rq.already_certified = 0;
	assert_int_equal(kr_policy_decide(pol, &rq, &v), KR_DEC_NO_KEY);
	kr_policy_free(pol);
	EVP_PKEY_free(k);
}

/*
 * Follow-up of the pinned-signer rule: the same chip re-signed by another
 * (pinned) signer was a no-op in the registry, so a device imported under
 * a signer later unpinned stayed uncertifiable for good.
 */
static void
test_registry_resigned_takes_new_signer(void **state)
{
	char dir[] = "/tmp/kr-review-reg.XXXXXX", cmd[64];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	struct kr_device d, got;
	int added;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, KR_REGISTRY_DBI, MDB_CREATE, &dbi),
	    0);
	memset(&d, 0, sizeof(d));
	strcpy(d.unique_id, "0123456789abcdef01");
	strcpy(d.model, "ATECC608B");
	strcpy(d.part_number, "P1");
	memset(d.content, 0x11, 32);
	memset(d.signer, 0xaa, 32);
	memset(d.manifest, 0x01, 32);
	assert_int_equal(kr_registry_put(txn, dbi, &d, &added), 0);
	assert_int_equal(added, 1);
	assert_int_equal(kr_registry_put(txn, dbi, &d, &added), 0);
	assert_int_equal(added, 0);
	memset(d.signer, 0xbb, 32);	/* re-signed, same content */
	memset(d.manifest, 0x02, 32);
	assert_int_equal(kr_registry_put(txn, dbi, &d, &added), 0);
	assert_int_equal(added, 0);
	assert_int_equal(kr_registry_get(txn, dbi, d.unique_id, &got), 0);
	assert_memory_equal(got.signer, d.signer, 32);
	assert_memory_equal(got.manifest, d.manifest, 32);
	/* Other content is still refused. */
	memset(d.content, 0x22, 32);
	assert_int_equal(kr_registry_put(txn, dbi, &d, &added),
	    KR_ERR_EXISTS);
	/*
	 * Defect: an entry listing one key under two kids was refused only
	 * after its record and first key row were written, so the caller
	 * reported it refused while the registry held it.
	 */
	strcpy(d.unique_id, "0123456789abcdef02");
	d.nkeys = 2;
	strcpy(d.keys[0].kid, "0");
	strcpy(d.keys[1].kid, "1");
	memset(d.keys[0].spki, 0x5a, 91);
	memset(d.keys[1].spki, 0x5a, 91);
	d.keys[0].spki_len = d.keys[1].spki_len = 91;
	assert_int_equal(kr_registry_put(txn, dbi, &d, &added),
	    KR_ERR_EXISTS);
	assert_int_equal(added, 0);
	assert_int_equal(kr_registry_get(txn, dbi, d.unique_id, &got),
	    KR_ERR_NOT_FOUND);
	assert_int_equal(kr_registry_find_key(txn, dbi, d.keys[0].spki, 91,
	    &got, NULL), KR_ERR_NOT_FOUND);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/*
 * Defect: ${MODEL} / ${PART} were pasted into the subject unescaped; the
 * subject is split on ',' (batch), so a signed model "M, O=Evil" added
 * an O= attribute to the certificate, and in "O=${MODEL}, CN=..." a
 * model "a, CN=z" made the CSR's CN check compare against "z".
 */
static void
test_subject_values_escaped(void **state)
{
	struct kr_policy *pol = NULL;
	struct kr_device d;
	struct kr_request rq;
	struct kr_verdict v;
	EVP_PKEY *k;
	char *pem, out[512];

	(void)state;
	assert_non_null(k = EVP_EC_gen("P-256"));
	pem = cert_pem(k);
	memset(&d, 0, sizeof(d));
	strcpy(d.unique_id, "0123456789abcdef01");
	strcpy(d.model, "M, O=Evil");
	strcpy(d.part_number, "P1");
	assert_int_equal(policy_with_subject(pem,
	    "CN=sn${UNIQUEID}, OU=${MODEL}", &pol), 0);
	assert_int_equal(kr_policy_subject(pol, &d, out, sizeof(out)), 0);
	assert_string_equal(out, "CN=sn0123456789ABCDEF01, OU=M\\, O\\=Evil");
	kr_policy_free(pol);
	pol = NULL;
	/* The CN the CSR is held to is the template's, not an injected one. */
	assert_int_equal(policy_with_subject(pem,
	    "O=${MODEL}, CN=sn${UNIQUEID}", &pol), 0);
	strcpy(d.model, "a, CN=z");
	memcpy(d.signer, kr_policy_trust(pol)->signers[0].sha256, 32);
	memset(&rq, 0, sizeof(rq));
	rq.manufacturer = "cm1";
	rq.pkey = k;
	rq.pop_ok = 1;
	rq.dev = &d;
	rq.cn = "z";
	assert_int_equal(kr_policy_decide(pol, &rq, &v), KR_DEC_CN_MISMATCH);
	rq.cn = "sn0123456789ABCDEF01";
	assert_int_equal(kr_policy_decide(pol, &rq, &v), KR_DEC_NO_KEY);
	kr_policy_free(pol);
	free(pem);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_message_utf8),
		cmocka_unit_test(test_es256_is_p256_only),
		cmocka_unit_test(test_verdict_message_utf8),
		cmocka_unit_test(test_decide_requires_pinned_signer),
		cmocka_unit_test(test_registry_resigned_takes_new_signer),
		cmocka_unit_test(test_subject_values_escaped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
