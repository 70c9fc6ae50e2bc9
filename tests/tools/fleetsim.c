/*
 * fleetsim.c - the fleet simulator: plays the chip vendor (a manifest
 * signer and a signed manifest in the exact Microchip format, DESIGN.md
 * 5.1) and the contract manufacturer (a media directory of CSRs, 5.2),
 * plus bad actors and file-system attacks on request. Writes a policy.yaml
 * pinning its signer. Keys are derived from --seed, so two runs with the
 * same seed make the same devices (renewals use that).
 *
 * usage: fleetsim --out DIR [options]   (fleetsim --help)
 *
 * Output:
 *   DIR/signer.crt, signer.key     manifest signer (self-signed P-256,
 *                                  CA:FALSE, SKI), reused with --signer
 *   DIR/manifest.json              the vendor manifest (JSON array of JWS)
 *   DIR/policy.yaml                policy pinning the signer
 *   DIR/expect.tsv                 file <TAB> expected decision, per CSR
 *   DIR/media/batch.json, csr/, [manifest/]   the "USB stick"
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define PART_A "ATECC608C-TNGTLSU-B"	/* P-256, 18-hex ids, kid "0" */
#define MODEL_A "ATECC608C"
#define PART_T "TA100-TNGTLS-B"		/* P-384, 16-hex ids, handle */
#define MODEL_T "TA100"
#define KID_T "8101"
#define PART_X "ATECC608B-TFLXTLS"	/* in policy, not for our CM */
#define MODEL_X "ATECC608B"
#define PROV_TIME "2026-03-02T10:00:00.000Z"

static void
die(const char *what)
{
	fprintf(stderr, "fleetsim: %s", what);
	if (errno != 0)
		fprintf(stderr, ": %s", strerror(errno));
	fprintf(stderr, "\n");
	ERR_print_errors_fp(stderr);
	exit(1);
}

#define CHECK(x) do { if (!(x)) die(#x); } while (0)

struct opts {
	const char *out;
	const char *signer_dir;
	const char *batch_id;
	const char *mfr;
	const char *profile;
	unsigned long seed;
	long devices;
	long p384;
	long lite;
	long quota;
	long renew;
	long start;		/* index of the first device */
	int manifest_on_media;
	int der;
	int curves_p256_only;
	int no_batch_json;
	const char *bad[64];
	long badn[64];
	int nbad;
	const char *attack[64];
	int nattack;
};

struct sim {
	struct opts o;
	EVP_PKEY *skey;
	X509 *scert;
	char kid[64], x5t[64];
	FILE *mf;		/* manifest being written */
	size_t mfn;
	FILE *expect;
	char media[4096];
	long ndone;
};

/* ---------------------------------------------------------------- b64 */

static void
b64url(const unsigned char *in, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len), i, j;

	for (i = 0, j = 0; i < n; i++) {
		if (out[i] == '=')
			continue;
		out[j++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	}
	out[j] = 0;
}

static char *
b64url_str(const char *s)
{
	size_t len = strlen(s);
	char *o = malloc(len * 4 / 3 + 8);

	CHECK(o != NULL);
	b64url((const unsigned char *)s, len, o);
	return o;
}

/* ----------------------------------------------------------- keys */

/* Deterministic EC key for (seed, label, i) on curve nid. */
static EVP_PKEY *
det_key(unsigned long seed, const char *label, long i, int nid)
{
	EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
	const EC_GROUP *g;
	BIGNUM *d = BN_new();
	BN_CTX *ctx = BN_CTX_new();
	EC_POINT *pt;
	EVP_PKEY *pk = EVP_PKEY_new();
	unsigned char h[SHA512_DIGEST_LENGTH], in[128];
	unsigned ctr = 0;
	int n, blen = nid == NID_secp384r1 ? 48 : 32;

	CHECK(ec != NULL && d != NULL && ctx != NULL && pk != NULL);
	g = EC_KEY_get0_group(ec);
	for (;;) {
		n = snprintf((char *)in, sizeof(in), "fleetsim/%lu/%s/%ld/%u",
		    seed, label, i, ctr++);
		SHA512(in, (size_t)n, h);
		CHECK(BN_bin2bn(h, blen, d) != NULL);
		if (!BN_is_zero(d) && BN_cmp(d, EC_GROUP_get0_order(g)) < 0)
			break;
	}
	CHECK((pt = EC_POINT_new(g)) != NULL);
	CHECK(EC_POINT_mul(g, pt, d, NULL, NULL, ctx) == 1);
	CHECK(EC_KEY_set_private_key(ec, d) == 1);
	CHECK(EC_KEY_set_public_key(ec, pt) == 1);
	CHECK(EVP_PKEY_assign_EC_KEY(pk, ec) == 1);
	EC_POINT_free(pt);
	BN_clear_free(d);
	BN_CTX_free(ctx);
	return pk;
}

/* Random (non-derived) key: for grey-market and clone chips. */
static EVP_PKEY *
rnd_key(int nid)
{
	EVP_PKEY *pk = NULL;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);

	CHECK(c != NULL && EVP_PKEY_keygen_init(c) == 1);
	CHECK(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, nid) == 1);
	CHECK(EVP_PKEY_keygen(c, &pk) == 1);
	EVP_PKEY_CTX_free(c);
	return pk;
}

/* x, y of an EC key as base64url of fixed-length coordinates. */
static void
key_xy(EVP_PKEY *pk, char *x, char *y)
{
	const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(pk);
	const EC_GROUP *g = EC_KEY_get0_group(ec);
	unsigned char buf[200];
	size_t len, cl;

	len = EC_POINT_point2oct(g, EC_KEY_get0_public_key(ec),
	    POINT_CONVERSION_UNCOMPRESSED, buf, sizeof(buf), NULL);
	CHECK(len > 1);
	cl = (len - 1) / 2;
	b64url(buf + 1, cl, x);
	b64url(buf + 1 + cl, cl, y);
}

static void
write_pem_key(const char *path, EVP_PKEY *pk)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	CHECK(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1);
	fclose(f);
}

/* ----------------------------------------------------------- signer */

static void
add_ext(X509 *c, int nid, const char *val)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, c, c, NULL, NULL, 0);
	CHECK((e = X509V3_EXT_conf_nid(NULL, &ctx, nid, val)) != NULL);
	CHECK(X509_add_ext(c, e, -1) == 1);
	X509_EXTENSION_free(e);
}

static void
make_signer(struct sim *s)
{
	char path[4200];
	X509_NAME *nm;
	FILE *f;
	unsigned char der_h[32], *der = NULL;
	const ASN1_OCTET_STRING *ski;
	int dl;

	if (s->o.signer_dir != NULL) {
		snprintf(path, sizeof(path), "%s/signer.crt", s->o.signer_dir);
		CHECK((f = fopen(path, "r")) != NULL);
		CHECK((s->scert = PEM_read_X509(f, NULL, NULL, NULL)) != NULL);
		fclose(f);
		snprintf(path, sizeof(path), "%s/signer.key", s->o.signer_dir);
		CHECK((f = fopen(path, "r")) != NULL);
		CHECK((s->skey = PEM_read_PrivateKey(f, NULL, NULL, NULL)) !=
		    NULL);
		fclose(f);
	} else {
		s->skey = det_key(s->o.seed, "signer", 0, NID_X9_62_prime256v1);
		CHECK((s->scert = X509_new()) != NULL);
		CHECK(X509_set_version(s->scert, 2) == 1);
		CHECK(ASN1_INTEGER_set(X509_get_serialNumber(s->scert),
		    (long)(0x1000 + (s->o.seed & 0xffff))) == 1);
		nm = X509_get_subject_name(s->scert);
		CHECK(X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8,
		    (const unsigned char *)"Fleetsim Test Vendor", -1, -1,
		    0) == 1);
		CHECK(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
		    (const unsigned char *)"Manifest Signer FS", -1, -1,
		    0) == 1);
		CHECK(X509_set_issuer_name(s->scert, nm) == 1);
		CHECK(ASN1_TIME_set_string(X509_getm_notBefore(s->scert),
		    "20250101000000Z") == 1);
		CHECK(ASN1_TIME_set_string(X509_getm_notAfter(s->scert),
		    "99991231235959Z") == 1);
		CHECK(X509_set_pubkey(s->scert, s->skey) == 1);
		add_ext(s->scert, NID_subject_key_identifier, "hash");
		add_ext(s->scert, NID_authority_key_identifier,
		    "keyid:always");
		add_ext(s->scert, NID_basic_constraints, "critical,CA:FALSE");
		CHECK(X509_sign(s->scert, s->skey, EVP_sha256()) > 0);
	}
	snprintf(path, sizeof(path), "%s/signer.crt", s->o.out);
	CHECK((f = fopen(path, "w")) != NULL);
	CHECK(PEM_write_X509(f, s->scert) == 1);
	fclose(f);
	snprintf(path, sizeof(path), "%s/signer.key", s->o.out);
	write_pem_key(path, s->skey);
	CHECK((ski = X509_get0_subject_key_id(s->scert)) != NULL);
	b64url(ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski),
	    s->kid);
	CHECK((dl = i2d_X509(s->scert, &der)) > 0);
	SHA256(der, (size_t)dl, der_h);
	OPENSSL_free(der);
	b64url(der_h, 32, s->x5t);
}

/* ---------------------------------------------------------- manifest */

struct dev {
	char id[40];
	const char *part, *model;
	int nid;
	int lite;
	EVP_PKEY *k0;		/* identity key (kid "0" / KID_T) */
	EVP_PKEY *k1;		/* a second slot key, or NULL */
};

/*
 * Append one signed entry for d to the manifest file, signed by key
 * (normally the pinned signer) with protected kid / x5t.
 */
static void
mf_entry(FILE *mf, size_t *count, const struct dev *d, EVP_PKEY *key,
    const char *kid, const char *x5t)
{
	json_t *p, *keys, *jk, *org, *ent, *hdr, *prot;
	char x[100], y[100], *ps, *pb, *hs, *hb, *tbs, *es;
	unsigned char sig[160], rs[96];
	size_t siglen = sizeof(sig), cl;
	EVP_MD_CTX *mc;
	ECDSA_SIG *es_;
	const unsigned char *sp;

	org = json_pack("{s:s,s:s}", "organizationName", "Fleetsim Test "
	    "Vendor", "organizationalUnitName", "Secure Products Group");
	p = json_object();
	json_object_set_new(p, "version", json_integer(d->lite ? 2 : 1));
	json_object_set_new(p, "model", json_string(d->model));
	json_object_set_new(p, "partNumber", json_string(d->part));
	json_object_set(p, "manufacturer", org);
	json_object_set(p, "provisioner", org);
	json_object_set_new(p, "distributor", json_pack("{s:s,s:s}",
	    "organizationName", "Fleetsim Test Vendor",
	    "organizationalUnitName", "Direct"));
	json_decref(org);
	json_object_set_new(p, "groupId", json_string("FLEETSIM0GROUP01"));
	json_object_set_new(p, "provisioningTimestamp", json_string(PROV_TIME));
	json_object_set_new(p, "uniqueId", json_string(d->id));
	if (!d->lite) {
		keys = json_array();
		key_xy(d->k0, x, y);
		jk = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kid",
		    d->nid == NID_secp384r1 ? KID_T : "0", "kty", "EC", "crv",
		    d->nid == NID_secp384r1 ? "P-384" : "P-256", "x", x, "y", y);
		json_array_append_new(keys, jk);
		if (d->k1 != NULL) {
			key_xy(d->k1, x, y);
			json_array_append_new(keys, json_pack(
			    "{s:s,s:s,s:s,s:s,s:s}", "kid", "1", "kty", "EC",
			    "crv", d->nid == NID_secp384r1 ? "P-384" : "P-256",
			    "x", x, "y", y));
		}
		json_object_set_new(p, "publicKeySet",
		    json_pack("{s:o}", "keys", keys));
	}
	CHECK((ps = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER)));
	prot = json_pack("{s:s,s:s,s:s,s:s}", "alg", "ES256", "kid", kid,
	    "typ", "JWT", "x5t#S256", x5t);
	CHECK((hs = json_dumps(prot, JSON_COMPACT | JSON_PRESERVE_ORDER)));
	pb = b64url_str(ps);
	hb = b64url_str(hs);
	CHECK((tbs = malloc(strlen(pb) + strlen(hb) + 2)) != NULL);
	sprintf(tbs, "%s.%s", hb, pb);
	CHECK((mc = EVP_MD_CTX_new()) != NULL);
	CHECK(EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, key) == 1);
	CHECK(EVP_DigestSign(mc, sig, &siglen, (unsigned char *)tbs,
	    strlen(tbs)) == 1);
	EVP_MD_CTX_free(mc);
	sp = sig;
	CHECK((es_ = d2i_ECDSA_SIG(NULL, &sp, (long)siglen)) != NULL);
	cl = 32;
	CHECK(BN_bn2binpad(ECDSA_SIG_get0_r(es_), rs, (int)cl) == (int)cl);
	CHECK(BN_bn2binpad(ECDSA_SIG_get0_s(es_), rs + cl, (int)cl) ==
	    (int)cl);
	ECDSA_SIG_free(es_);
	CHECK((es = malloc(200)) != NULL);
	b64url(rs, 2 * cl, es);
	hdr = json_pack("{s:s}", "uniqueId", d->id);
	ent = json_pack("{s:s,s:s,s:o,s:s}", "payload", pb, "protected", hb,
	    "header", hdr, "signature", es);
	fputs(*count == 0 ? "[\n  " : ",\n  ", mf);
	CHECK(json_dumpf(ent, mf, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0);
	(*count)++;
	json_decref(ent);
	json_decref(prot);
	json_decref(p);
	free(ps);
	free(hs);
	free(pb);
	free(hb);
	free(tbs);
	free(es);
}

static void
mf_close(FILE *mf, size_t count)
{
	fputs(count == 0 ? "[]\n" : "\n]\n", mf);
	CHECK(fclose(mf) == 0);
}

/* ---------------------------------------------------------- CSRs */

/* CSR for key `pub` signed by `signkey`, subject CN (NULL: none). */
static X509_REQ *
make_req(EVP_PKEY *pub, EVP_PKEY *signkey, const char *cn)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *nm;
	int nid = EVP_PKEY_get_base_id(signkey);
	const EVP_MD *md = EVP_sha256();

	CHECK(r != NULL && X509_REQ_set_version(r, 0) == 1);
	nm = X509_REQ_get_subject_name(r);
	if (cn != NULL)
		CHECK(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
		    (const unsigned char *)cn, -1, -1, 0) == 1);
	CHECK(X509_REQ_set_pubkey(r, pub) == 1);
	if (nid == EVP_PKEY_EC && EVP_PKEY_get_bits(signkey) > 256)
		md = EVP_sha384();
	CHECK(X509_REQ_sign(r, signkey, md) > 0);
	return r;
}

static void
cn_of(const struct dev *d, char *cn)
{
	size_t i;

	strcpy(cn, "sn");
	for (i = 0; d->id[i]; i++)
		cn[2 + i] = (char)(d->id[i] >= 'a' && d->id[i] <= 'f' ?
		    d->id[i] - 32 : d->id[i]);
	cn[2 + i] = 0;
}

static void
write_bytes(const char *path, const void *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);

	CHECK(fd >= 0);
	CHECK(write(fd, b, len) == (ssize_t)len);
	CHECK(close(fd) == 0);
}

/* Write req as media/csr/<name> (PEM, or DER with --der). */
static void
write_req(struct sim *s, X509_REQ *r, const char *name, const char *expect)
{
	char path[4400];
	unsigned char *der = NULL;
	int len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/csr/%s", s->media, name);
	if (s->o.der) {
		CHECK((len = i2d_X509_REQ(r, &der)) > 0);
		write_bytes(path, der, (size_t)len);
		OPENSSL_free(der);
	} else {
		CHECK((f = fopen(path, "wx")) != NULL);
		CHECK(PEM_write_X509_REQ(f, r) == 1);
		CHECK(fclose(f) == 0);
	}
	fprintf(s->expect, "csr/%s\t%s\n", name, expect);
}

/* Make device i (deterministic). */
static void
make_dev(struct sim *s, long i, int p384, int lite, struct dev *d)
{
	unsigned char h[32], in[64];
	char hex[65];
	int n, k;

	memset(d, 0, sizeof(*d));
	n = snprintf((char *)in, sizeof(in), "fleetsim-id/%lu/%ld",
	    s->o.seed, i);
	SHA256(in, (size_t)n, h);
	for (k = 0; k < 32; k++)
		sprintf(hex + 2 * k, "%02x", h[k]);
	if (p384) {
		snprintf(d->id, sizeof(d->id), "%.16s", hex);
		d->part = PART_T;
		d->model = MODEL_T;
		d->nid = NID_secp384r1;
	} else {
		snprintf(d->id, sizeof(d->id), "0123%.12s01", hex);
		d->part = PART_A;
		d->model = MODEL_A;
		d->nid = NID_X9_62_prime256v1;
	}
	d->lite = lite;
	d->k0 = det_key(s->o.seed, "dev", i, d->nid);
}

static void
free_dev(struct dev *d)
{
	EVP_PKEY_free(d->k0);
	EVP_PKEY_free(d->k1);
	d->k0 = d->k1 = NULL;
}

/* ------------------------------------------------------ bad actors */

/* One bad actor of kind k, number j. */
static void
bad_actor(struct sim *s, const char *k, long j)
{
	struct dev d, d2;
	char name[128], cn[80], path[4400];
	X509_REQ *r = NULL;
	EVP_PKEY *other = NULL;
	static long calls;
	long base = 1000000 + 16 * calls++;	/* distinct devices per actor */

	snprintf(name, sizeof(name), "bad-%s-%02ld.csr", k, j);
	if (strcmp(k, "grey") == 0) {
		/* a genuine-looking chip that no manifest lists */
		make_dev(s, base, 0, 0, &d);
		cn_of(&d, cn);
		r = make_req(d.k0, d.k0, cn);
		write_req(s, r, name, "not-in-manifest");
		free_dev(&d);
	} else if (strcmp(k, "clone") == 0) {
		/* listed chip's id, other key */
		make_dev(s, base, 0, 0, &d);
		mf_entry(s->mf, &s->mfn, &d, s->skey, s->kid, s->x5t);
		cn_of(&d, cn);
		other = rnd_key(d.nid);
		r = make_req(other, other, cn);
		write_req(s, r, name, "key-mismatch");
		free_dev(&d);
	} else if (strcmp(k, "wrongslot") == 0) {
		/* CSR made with a listed key that is not the identity key */
		make_dev(s, base, 0, 0, &d);
		d.k1 = det_key(s->o.seed, "slot1", base, d.nid);
		mf_entry(s->mf, &s->mfn, &d, s->skey, s->kid, s->x5t);
		cn_of(&d, cn);
		r = make_req(d.k1, d.k1, cn);
		write_req(s, r, name, "key-mismatch");
		free_dev(&d);
	} else if (strcmp(k, "badsig") == 0 || strcmp(k, "wrongkey") == 0) {
		/* badsig: signature bytes flipped; wrongkey: CSR carries the
		 * device key but is signed by another key */
		make_dev(s, base, 0, 0, &d);
		mf_entry(s->mf, &s->mfn, &d, s->skey, s->kid, s->x5t);
		cn_of(&d, cn);
		if (strcmp(k, "wrongkey") == 0) {
			other = rnd_key(d.nid);
			r = make_req(d.k0, other, cn);
		} else {
			const ASN1_BIT_STRING *sig;

			r = make_req(d.k0, d.k0, cn);
			X509_REQ_get0_signature(r, &sig, NULL);
			((unsigned char *)ASN1_STRING_get0_data(sig))[10] ^=
			    0x55;
		}
		write_req(s, r, name, "bad-csr-signature");
		free_dev(&d);
	} else if (strcmp(k, "lite") == 0) {
		make_dev(s, base, 0, 1, &d);
		mf_entry(s->mf, &s->mfn, &d, s->skey, s->kid, s->x5t);
		cn_of(&d, cn);
		r = make_req(d.k0, d.k0, cn);
		write_req(s, r, name, "manifest-entry-no-key");
		free_dev(&d);
	} else if (strcmp(k, "dup") == 0) {
		/* the same device twice in one batch */
		make_dev(s, base, 0, 0, &d);
		mf_entry(s->mf, &s->mfn, &d, s->skey, s->kid, s->x5t);
		cn_of(&d, cn);
		r = make_req(d.k0, d.k0, cn);
		snprintf(name, sizeof(name), "bad-dup-%02ld-a.csr", j);
		write_req(s, r, name, "accept");
		X509_REQ_free(r);
		r = make_req(d.k0, d.k0, cn);
		snprintf(name, sizeof(name), "bad-dup-%02ld-b.csr", j);
		write_req(s, r, name, "already-certified");
		free_dev(&d);
	} else if (strcmp(k, "cnmismatch") == 0) {
		/* own key, another listed device's CN */
		make_dev(s, base, 0, 0, &d);
		make_dev(s, base + 1, 0, 0, &d2);
		mf_entry(s->mf, &s->mfn, &d, s->skey, s->kid, s->x5t);
		mf_entry(s->mf, &s->mfn, &d2, s->skey, s->kid, s->x5t);
		cn_of(&d2, cn);
		r = make_req(d.k0, d.k0, cn);
		write_req(s, r, name, "cn-mismatch");
		free_dev(&d);
		free_dev(&d2);
	} else if (strcmp(k, "wrongpart") == 0) {
		/* listed, but a part this manufacturer may not build */
		make_dev(s, base, 0, 0, &d);
		d.part = PART_X;
		d.model = MODEL_X;
		mf_entry(s->mf, &s->mfn, &d, s->skey, s->kid, s->x5t);
		cn_of(&d, cn);
		r = make_req(d.k0, d.k0, cn);
		write_req(s, r, name, "part-not-allowed");
		free_dev(&d);
	} else if (strcmp(k, "forged") == 0) {
		/* listed only in a manifest signed by an unpinned signer
		 * that travels on the medium */
		FILE *f;
		size_t n = 0;
		EVP_PKEY *fk = rnd_key(NID_X9_62_prime256v1);

		make_dev(s, base, 0, 0, &d);
		snprintf(path, sizeof(path), "%s/manifest/forged-%02ld.json",
		    s->media, j);
		CHECK((f = fopen(path, "wx")) != NULL);
		mf_entry(f, &n, &d, fk, "Zm9yZ2Vk",
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
		mf_close(f, n);
		cn_of(&d, cn);
		r = make_req(d.k0, d.k0, cn);
		write_req(s, r, name, "not-in-manifest");
		EVP_PKEY_free(fk);
		free_dev(&d);
	} else if (strcmp(k, "garbage") == 0 || strcmp(k, "truncated") == 0 ||
	    strcmp(k, "trailing") == 0 || strcmp(k, "empty") == 0) {
		unsigned char junk[700];
		BIO *b = BIO_new(BIO_s_mem());
		char *pem;
		long plen;

		make_dev(s, base, 0, 0, &d);
		mf_entry(s->mf, &s->mfn, &d, s->skey, s->kid, s->x5t);
		cn_of(&d, cn);
		r = make_req(d.k0, d.k0, cn);
		CHECK(b != NULL && PEM_write_bio_X509_REQ(b, r) == 1);
		plen = BIO_get_mem_data(b, &pem);
		snprintf(path, sizeof(path), "%s/csr/%s", s->media, name);
		if (strcmp(k, "garbage") == 0) {
			CHECK(RAND_bytes(junk, sizeof(junk)) == 1);
			write_bytes(path, junk, sizeof(junk));
		} else if (strcmp(k, "truncated") == 0)
			write_bytes(path, pem, (size_t)plen / 2);
		else if (strcmp(k, "empty") == 0)
			write_bytes(path, "", 0);
		else {
			char *t = malloc((size_t)plen + 32);

			CHECK(t != NULL);
			memcpy(t, pem, (size_t)plen);
			memcpy(t + plen, "#!/bin/sh\nrm -rf /\n", 19);
			write_bytes(path, t, (size_t)plen + 19);
			free(t);
		}
		fprintf(s->expect, "csr/%s\tbad-csr\n", name);
		BIO_free(b);
		free_dev(&d);
	} else if (strcmp(k, "rsa") == 0) {
		EVP_PKEY *rk = EVP_RSA_gen(2048);

		CHECK(rk != NULL);
		r = make_req(rk, rk, "snRSA");
		write_req(s, r, name, "bad-csr");
		EVP_PKEY_free(rk);
	} else {
		fprintf(stderr, "fleetsim: unknown bad actor '%s'\n", k);
		exit(2);
	}
	X509_REQ_free(r);
	EVP_PKEY_free(other);
}

/* ------------------------------------------------ file-system attacks */

static void
attack(struct sim *s, const char *k)
{
	char p[4400], q[4400];
	int fd;

	if (strcmp(k, "symlink") == 0) {
		snprintf(p, sizeof(p), "%s/csr/zz-link.csr", s->media);
		CHECK(symlink("/etc/passwd", p) == 0);
	} else if (strcmp(k, "dirlink") == 0) {
		snprintf(p, sizeof(p), "%s/csr/zz-dir", s->media);
		CHECK(symlink("/etc", p) == 0);
	} else if (strcmp(k, "batchlink") == 0) {
		snprintf(p, sizeof(p), "%s/batch.json", s->media);
		snprintf(q, sizeof(q), "%s/batch.real", s->o.out);
		CHECK(rename(p, q) == 0);
		CHECK(symlink(q, p) == 0);
	} else if (strcmp(k, "outlink") == 0) {
		snprintf(p, sizeof(p), "%s/keyroom-out", s->media);
		snprintf(q, sizeof(q), "%s/elsewhere", s->o.out);
		CHECK(mkdir(q, 0755) == 0);
		CHECK(symlink(q, p) == 0);
	} else if (strcmp(k, "fifo") == 0) {
		snprintf(p, sizeof(p), "%s/csr/zz-fifo.csr", s->media);
		CHECK(mkfifo(p, 0644) == 0);
	} else if (strcmp(k, "socket") == 0) {
		struct sockaddr_un sa;

		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		CHECK(snprintf(sa.sun_path, sizeof(sa.sun_path),
		    "%s/csr/zz-sock.csr", s->media) <
		    (int)sizeof(sa.sun_path));
		CHECK((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
		CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
		close(fd);
	} else if (strcmp(k, "device") == 0) {
		snprintf(p, sizeof(p), "%s/csr/zz-dev.csr", s->media);
		CHECK(mknod(p, S_IFCHR | 0600, makedev(1, 3)) == 0);
	} else if (strcmp(k, "hardlink") == 0) {
		snprintf(p, sizeof(p), "%s/csr/zz-hard.csr", s->media);
		snprintf(q, sizeof(q), "%s/hardlink-target", s->o.out);
		write_bytes(q, "x", 1);
		CHECK(link(q, p) == 0);
	} else if (strcmp(k, "huge") == 0) {
		snprintf(p, sizeof(p), "%s/csr/zz-huge.csr", s->media);
		CHECK((fd = open(p, O_CREAT | O_WRONLY | O_EXCL, 0644)) >= 0);
		CHECK(ftruncate(fd, (off_t)16 << 30) == 0);
		close(fd);
	} else if (strcmp(k, "badname") == 0) {
		snprintf(p, sizeof(p), "%s/csr/zz-\xff\xfe.csr", s->media);
		write_bytes(p, "x", 1);
	} else if (strcmp(k, "ctrlname") == 0) {
		snprintf(p, sizeof(p), "%s/csr/zz-\x1b[2J.csr", s->media);
		write_bytes(p, "x", 1);
	} else if (strcmp(k, "longname") == 0) {
		char n[201];

		memset(n, 'a', 200);
		n[200] = 0;
		memcpy(n + 196, ".csr", 4);
		snprintf(p, sizeof(p), "%s/csr/%s", s->media, n);
		write_bytes(p, "x", 1);
	} else if (strcmp(k, "deep") == 0) {
		snprintf(p, sizeof(p), "%s/csr/d1", s->media);
		CHECK(mkdir(p, 0755) == 0);
		snprintf(p, sizeof(p), "%s/csr/d1/d2", s->media);
		CHECK(mkdir(p, 0755) == 0);
		snprintf(p, sizeof(p), "%s/csr/d1/d2/x.csr", s->media);
		write_bytes(p, "x", 1);
	} else if (strcmp(k, "unexpected") == 0) {
		snprintf(p, sizeof(p), "%s/autorun.inf", s->media);
		write_bytes(p, "[autorun]\nopen=evil.exe\n", 24);
	} else if (strcmp(k, "exe") == 0) {
		snprintf(p, sizeof(p), "%s/csr/evil.exe", s->media);
		write_bytes(p, "MZ", 2);
	} else if (strcmp(k, "many") == 0) {
		long i;

		for (i = 0; i < 260000; i++) {
			snprintf(p, sizeof(p), "%s/csr/m%06ld.csr", s->media,
			    i);
			write_bytes(p, "", 0);
		}
	} else {
		fprintf(stderr, "fleetsim: unknown attack '%s'\n", k);
		exit(2);
	}
}

/* ------------------------------------------------------- policy, batch */

static void
write_policy(struct sim *s)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/policy.yaml", s->o.out);
	CHECK((f = fopen(path, "w")) != NULL);
	fprintf(f,
	    "# written by fleetsim (seed %lu)\n"
	    "version: 1\n"
	    "signers:\n"
	    "  - file: signer.crt\n"
	    "curves: [%s]\n"
	    "lite_entries: refuse\n"
	    "parts:\n"
	    "  - part_number: %s\n    model: %s\n    identity_kid: \"0\"\n"
	    "  - part_number: %s\n    model: %s\n    identity_kid: \"%s\"\n"
	    "  - part_number: %s\n    model: %s\n    identity_kid: \"0\"\n"
	    "profiles: [device]\n"
	    "subject: \"CN=sn${UNIQUEID}, O=Fleetsim OEM\"\n"
	    "manufacturers:\n"
	    "  - id: %s\n    name: Fleetsim Contract Manufacturing\n"
	    "    quota: %ld\n    parts: [%s, %s]\n    profiles: [device]\n"
	    "  - id: cm-other\n    name: Other CM\n    quota: 10\n"
	    "    parts: [%s]\n    profiles: [device]\n"
	    "renewal:\n  allowed: true\n"
	    "  proof: [current-cert, manifest-key]\n",
	    s->o.seed, s->o.curves_p256_only ? "P-256" : "P-256, P-384",
	    PART_A, MODEL_A, PART_T, MODEL_T, KID_T, PART_X, MODEL_X,
	    strcmp(s->o.mfr, "cm-unknown") == 0 ? "cm-fleetsim" : s->o.mfr,
	    s->o.quota, PART_A, PART_T, PART_X);
	CHECK(fclose(f) == 0);
}

static void
write_batch_json(struct sim *s, long count)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/batch.json", s->media);
	CHECK((f = fopen(path, "wx")) != NULL);
	fprintf(f, "{\n  \"batch_id\": \"%s\",\n  \"manufacturer\": \"%s\",\n"
	    "  \"profile\": \"%s\",\n  \"expected_count\": %ld,\n"
	    "  \"part_numbers\": [\"%s\", \"%s\"]\n}\n", s->o.batch_id,
	    s->o.mfr, s->o.profile, count > 0 ? count : 1, PART_A, PART_T);
	CHECK(fclose(f) == 0);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: fleetsim --out DIR [options]\n"
	    "  --seed N            key/id derivation seed (default 1)\n"
	    "  --devices N         P-256 ATECC608 devices (default 10)\n"
	    "  --p384 N            P-384 TA100 devices (default 0)\n"
	    "  --lite N            extra lite entries (no keys) in the manifest\n"
	    "  --start N           first device index (default 0)\n"
	    "  --batch-id ID       (default batch-<seed>)\n"
	    "  --manufacturer ID   (default cm-fleetsim)\n"
	    "  --profile NAME      (default device)\n"
	    "  --quota N           manufacturer quota in policy.yaml\n"
	    "  --p256-only         policy allows only P-256\n"
	    "  --manifest-on-media copy manifest.json to media/manifest/\n"
	    "  --der               CSRs as DER (*.der) instead of PEM\n"
	    "  --renew N           renewal requests for devices 0..N-1: a new\n"
	    "                      key, CSR and csr/<n>.csr.sig by the old key\n"
	    "  --signer DIR        reuse DIR/signer.crt and signer.key\n"
	    "  --no-batch-json     leave batch.json out\n"
	    "  --bad KIND[=N]      bad actors: grey clone wrongslot badsig\n"
	    "                      wrongkey lite dup cnmismatch wrongpart forged\n"
	    "                      garbage truncated trailing empty rsa\n"
	    "  --attack KIND       symlink dirlink batchlink outlink fifo\n"
	    "                      socket device hardlink huge badname ctrlname\n"
	    "                      longname deep unexpected exe many\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "seed", required_argument, NULL, 's' },
		{ "devices", required_argument, NULL, 'n' },
		{ "p384", required_argument, NULL, '3' },
		{ "lite", required_argument, NULL, 'l' },
		{ "start", required_argument, NULL, 'S' },
		{ "batch-id", required_argument, NULL, 'b' },
		{ "manufacturer", required_argument, NULL, 'm' },
		{ "profile", required_argument, NULL, 'P' },
		{ "quota", required_argument, NULL, 'q' },
		{ "p256-only", no_argument, NULL, '2' },
		{ "manifest-on-media", no_argument, NULL, 'M' },
		{ "der", no_argument, NULL, 'D' },
		{ "renew", required_argument, NULL, 'r' },
		{ "signer", required_argument, NULL, 'g' },
		{ "no-batch-json", no_argument, NULL, 'B' },
		{ "bad", required_argument, NULL, 'x' },
		{ "attack", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sim s;
	struct dev d;
	char path[4400], name[64], cn[80], bid[64];
	long i, total;
	int ch, k;
	X509_REQ *r;

	memset(&s, 0, sizeof(s));
	s.o.seed = 1;
	s.o.devices = 10;
	s.o.mfr = "cm-fleetsim";
	s.o.profile = "device";
	s.o.quota = 1000000;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'o': s.o.out = optarg; break;
		case 's': s.o.seed = strtoul(optarg, NULL, 10); break;
		case 'n': s.o.devices = atol(optarg); break;
		case '3': s.o.p384 = atol(optarg); break;
		case 'l': s.o.lite = atol(optarg); break;
		case 'S': s.o.start = atol(optarg); break;
		case 'b': s.o.batch_id = optarg; break;
		case 'm': s.o.mfr = optarg; break;
		case 'P': s.o.profile = optarg; break;
		case 'q': s.o.quota = atol(optarg); break;
		case '2': s.o.curves_p256_only = 1; break;
		case 'M': s.o.manifest_on_media = 1; break;
		case 'D': s.o.der = 1; break;
		case 'r': s.o.renew = atol(optarg); break;
		case 'g': s.o.signer_dir = optarg; break;
		case 'B': s.o.no_batch_json = 1; break;
		case 'x': {
			char *eq = strchr(optarg, '=');

			if (s.o.nbad == 64)
				die("too many --bad");
			s.o.badn[s.o.nbad] = eq ? atol(eq + 1) : 1;
			if (eq)
				*eq = 0;
			s.o.bad[s.o.nbad++] = optarg;
			break;
		}
		case 'a':
			if (s.o.nattack == 64)
				die("too many --attack");
			s.o.attack[s.o.nattack++] = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (s.o.out == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (s.o.batch_id == NULL) {
		snprintf(bid, sizeof(bid), "batch-%lu", s.o.seed);
		s.o.batch_id = bid;
	}
	errno = 0;
	if (mkdir(s.o.out, 0755) != 0 && errno != EEXIST)
		die(s.o.out);
	snprintf(s.media, sizeof(s.media), "%s/media", s.o.out);
	CHECK(mkdir(s.media, 0755) == 0);
	snprintf(path, sizeof(path), "%s/csr", s.media);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/manifest", s.media);
	CHECK(mkdir(path, 0755) == 0);
	make_signer(&s);
	snprintf(path, sizeof(path), "%s/manifest.json", s.o.out);
	CHECK((s.mf = fopen(path, "w")) != NULL);
	snprintf(path, sizeof(path), "%s/expect.tsv", s.o.out);
	CHECK((s.expect = fopen(path, "w")) != NULL);
	total = s.o.devices + s.o.p384;
	for (i = 0; i < total; i++) {
		long idx = s.o.start + i;

		make_dev(&s, idx, i >= s.o.devices, 0, &d);
		mf_entry(s.mf, &s.mfn, &d, s.skey, s.kid, s.x5t);
		cn_of(&d, cn);
		if (i < s.o.renew) {
			/* renewal: new key, CSR signed by it, plus a detached
			 * signature over the CSR file by the old key */
			EVP_PKEY *nk = det_key(s.o.seed, "renew", idx, d.nid);
			BIO *b = BIO_new(BIO_s_mem());
			char *pem;
			long plen;
			unsigned char sig[200];
			size_t slen = sizeof(sig);
			EVP_MD_CTX *mc = EVP_MD_CTX_new();

			r = make_req(nk, nk, cn);
			CHECK(b != NULL && mc != NULL &&
			    PEM_write_bio_X509_REQ(b, r) == 1);
			plen = BIO_get_mem_data(b, &pem);
			snprintf(name, sizeof(name), "%06ld.csr", idx);
			snprintf(path, sizeof(path), "%s/csr/%s", s.media,
			    name);
			write_bytes(path, pem, (size_t)plen);
			CHECK(EVP_DigestSignInit(mc, NULL, d.nid ==
			    NID_secp384r1 ? EVP_sha384() : EVP_sha256(),
			    NULL, d.k0) == 1);
			CHECK(EVP_DigestSign(mc, sig, &slen,
			    (unsigned char *)pem, (size_t)plen) == 1);
			snprintf(path, sizeof(path), "%s/csr/%s.sig", s.media,
			    name);
			write_bytes(path, sig, slen);
			fprintf(s.expect, "csr/%s\taccept\n", name);
			EVP_MD_CTX_free(mc);
			BIO_free(b);
			EVP_PKEY_free(nk);
		} else {
			r = make_req(d.k0, d.k0, cn);
			snprintf(name, sizeof(name), "%06ld.%s", idx,
			    s.o.der ? "der" : "csr");
			write_req(&s, r, name, "accept");
		}
		X509_REQ_free(r);
		free_dev(&d);
		if (i > 0 && i % 10000 == 0 && isatty(2))
			fprintf(stderr, "\rfleetsim: %ld/%ld devices", i,
			    total);
	}
	for (i = 0; i < s.o.lite; i++) {
		make_dev(&s, 2000000 + i, 0, 1, &d);
		mf_entry(s.mf, &s.mfn, &d, s.skey, s.kid, s.x5t);
		free_dev(&d);
	}
	for (k = 0; k < s.o.nbad; k++)
		for (i = 0; i < s.o.badn[k]; i++)
			bad_actor(&s, s.o.bad[k], i);
	mf_close(s.mf, s.mfn);
	CHECK(fclose(s.expect) == 0);
	if (s.o.manifest_on_media) {
		uint8_t buf[65536];
		size_t n;
		FILE *in, *out;

		snprintf(path, sizeof(path), "%s/manifest.json", s.o.out);
		CHECK((in = fopen(path, "r")) != NULL);
		snprintf(path, sizeof(path), "%s/manifest/vendor.json",
		    s.media);
		CHECK((out = fopen(path, "wx")) != NULL);
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			CHECK(fwrite(buf, 1, n, out) == n);
		fclose(in);
		CHECK(fclose(out) == 0);
	}
	write_policy(&s);
	if (!s.o.no_batch_json)
		write_batch_json(&s, total);
	for (k = 0; k < s.o.nattack; k++)
		attack(&s, s.o.attack[k]);
	if (isatty(2) && total >= 10000)
		fprintf(stderr, "\n");
	EVP_PKEY_free(s.skey);
	X509_free(s.scert);
	return 0;
}
