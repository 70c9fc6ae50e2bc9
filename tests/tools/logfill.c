/*
 * logfill.c - build audit logs for tests and the benchmark with an
 * in-memory Ed25519 checkpoint key (no HSM): an init entry, N assorted
 * entries committed in chunks, M certificate issuances (intent commit,
 * then issued + checkpoint commit), optionally open intents left behind
 * (a crash between intent and issued) or a recovery run.
 *
 * usage: logfill [-o ORIGIN] [-k KEY.pem] [-n N] [-c CHUNK] [-m CERTS]
 *                [-i OPEN_INTENTS] [-r] [-p] [-q] [-P] [-S STATE] [-O OUT] DIR
 * -P: last, a policy install (config-change with policy-digest 11..1), a
 * batch-begin under it, and two that are not (digest 22..2, and none).
 * -O: "release" each certificate as OUT/<device>.der only after its
 * issued entry committed; devices that already have a certificate in the
 * log are not issued again (their file is re-emitted from the log if
 * missing), so a crashed run can simply be run again.
 * -S: sign checkpoints with the state directory's HSM audit key
 * (SoftHSM2 through ca/hsm.h) instead of the in-memory key.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "audit/note.h"
#include "audit/signer_hsm.h"
#include "lib/util.h"

static EVP_PKEY *
load_or_make_key(const char *path)
{
	EVP_PKEY *pk = NULL;
	FILE *f;
	int fd;

	if ((f = fopen(path, "r")) != NULL) {
		pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		return pk;
	}
	if ((pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL)
		return NULL;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
	    (f = fdopen(fd, "w")) == NULL ||
	    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1) {
		EVP_PKEY_free(pk);
		return NULL;
	}
	fclose(f);
	return pk;
}

/* A small real certificate for device `dev`, serial `serial`. */
static int
make_cert(EVP_PKEY *pk, uint64_t serial, const char *dev, uint8_t **der,
    int *len)
{
	X509 *x = X509_new();
	X509_NAME *nm;
	int ok;

	*der = NULL;
	ok = x != NULL && X509_set_version(x, 2) &&
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) &&
	    (nm = X509_get_subject_name(x)) != NULL &&
	    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)dev, -1, -1, 0) &&
	    X509_set_issuer_name(x, nm) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365) &&
	    X509_set_pubkey(x, pk) && X509_sign(x, pk, NULL) > 0 &&
	    (*len = i2d_X509(x, der)) > 0;
	X509_free(x);
	return ok ? 0 : -1;
}

/* Write OUT/<dev>.der from the device's newest logged certificate. */
static int
emit_txn(struct kr_log *log, MDB_txn *t, const char *dev, const char *outdir)
{
	uint64_t *idx = NULL;
	const uint8_t *e;
	const char *v;
	uint8_t *der = NULL;
	size_t n, len, vl, dl;
	char path[4096];
	int r;

	if ((r = kr_log_device_certs(log, t, dev, &idx, &n)) != 0)
		goto out;
	if (n == 0) {
		r = KR_ERR_NOT_FOUND;
		goto out;
	}
	if ((r = kr_log_entry(log, t, idx[n - 1], &e, &len)) != 0 ||
	    (r = kr_entry_get(e, len, "cert", &v, &vl)) != 0)
		goto out;
	if ((der = malloc(vl)) == NULL ||
	    (r = kr_b64_decode(v, vl, der, vl, &dl)) != 0 ||
	    (r = kr_snprintf(path, sizeof(path), "%s/%s.der", outdir,
	    dev)) != 0)
		goto out;
	r = kr_write_new_file(path, der, dl, 0644);
	if (r == KR_ERR_EXISTS)
		r = 0;
 out:
	free(idx);
	free(der);
	return r;
}

static int
emit(struct kr_log *log, const char *dev, const char *outdir)
{
	MDB_txn *t;
	int r;

	if ((r = kr_log_read_begin(log, &t)) != 0)
		return r;
	r = emit_txn(log, t, dev, outdir);
	mdb_txn_abort(t);
	return r;
}

/* 1 if dev already has a certificate in the log (re-emitted), 0 if not. */
static int
already(struct kr_log *log, struct kr_ltx *ltx, const char *dev,
    const char *outdir)
{
	uint64_t *idx = NULL;
	size_t n;
	int r;

	if ((r = kr_log_device_certs(log, kr_ltx_mdb(ltx), dev, &idx,
	    &n)) != 0)
		return r;
	free(idx);
	if (n == 0)
		return 0;
	/* Re-emit if a crash came between commit and output. */
	if ((r = emit_txn(log, kr_ltx_mdb(ltx), dev, outdir)) != 0)
		return r;
	return 1;
}

static void __attribute__((noreturn))
die(const char *what, int r)
{
	fprintf(stderr, "logfill: %s: %s: %s\n", what, kr_err_detail(),
	    kr_strerror(r));
	exit(1);
}

int
main(int argc, char **argv)
{
	const char *origin = "keyroom.test/log", *keyf = NULL, *state = NULL, *outdir = NULL;
	struct kr_hsm_signer *hs = NULL;
	uint64_t n = 10, chunk = 100, certs = 0, openi = 0, i, j, base, idx;
	int recover = 0, print = 0, quiet = 0, policy = 0, ch, r, dl;
	struct kr_note_signer s;
	struct kr_log *log = NULL;
	struct kr_ltx *ltx = NULL;
	MDB_txn *rt;
	EVP_PKEY *pk;
	char path[4096], a[64], b[64], *note = NULL;
	uint64_t size, *ints;
	uint8_t *der;
	double t0;
	struct stat st;

	while ((ch = getopt(argc, argv, "o:k:n:c:m:i:rpqPS:O:")) != -1) {
		switch (ch) {
		case 'o': origin = optarg; break;
		case 'k': keyf = optarg; break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'c': chunk = strtoull(optarg, NULL, 10); break;
		case 'm': certs = strtoull(optarg, NULL, 10); break;
		case 'i': openi = strtoull(optarg, NULL, 10); break;
		case 'r': recover = 1; break;
		case 'p': print = 1; break;
		case 'q': quiet = 1; break;
		case 'P': policy = 1; break;
		case 'S': state = optarg; break;
		case 'O': outdir = optarg; break;
		default:
			fprintf(stderr, "usage: logfill [-o ORIGIN] [-k KEY] "
			    "[-n N] [-c CHUNK] [-m CERTS] [-i OPEN] [-r] [-p] "
			    "[-q] DIR\n");
			return 2;
		}
	}
	if (optind + 1 != argc || chunk == 0)
		return 2;
	if (keyf == NULL) {
		static char kp[4096];

		snprintf(kp, sizeof(kp), "%s.key", argv[optind]);
		keyf = kp;
	}
	if ((pk = load_or_make_key(keyf)) == NULL) {
		fprintf(stderr, "logfill: key %s\n", keyf);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/data.mdb", argv[optind]);
	if (stat(path, &st) != 0 &&
	    (r = kr_log_create(argv[optind], origin)) != 0)
		die("create", r);
	if ((r = kr_log_open(argv[optind], KR_LOG_WRITE, &log)) != 0)
		die("open", r);
	if (state != NULL)
		r = kr_hsm_signer_open_state(state, kr_log_origin(log), &s, &hs);
	else
		r = kr_signer_evp(&s, kr_log_origin(log), pk);
	if (r != 0)
		die("signer", r);
	if ((r = kr_log_read_begin(log, &rt)) != 0 ||
	    (r = kr_log_size(log, rt, &size)) != 0)
		die("size", r);
	mdb_txn_abort(rt);
	if (size == 0 && (r = kr_log_init(log, &s, "logfill", NULL, NULL, NULL,
	    NULL)) != 0)
		die("init", r);
	if (recover) {
		size_t nr;

		if ((r = kr_log_recover(log, &s, "keyroom", &nr)) != 0)
			die("recover", r);
		if (!quiet)
			fprintf(stderr, "logfill: %zu intents abandoned\n", nr);
	}
	t0 = kr_now();
	for (i = 0; i < n; i += chunk) {
		if ((r = kr_log_begin(log, &ltx)) != 0)
			die("begin", r);
		for (j = i; j < i + chunk && j < n; j++) {
			snprintf(a, sizeof(a), "csr/%06llu.csr",
			    (unsigned long long)j);
			snprintf(b, sizeof(b), "0123%014llx",
			    (unsigned long long)j);
			switch (j % 4) {
			case 0:
				r = kr_ltx_appendf(ltx, KR_E_REQUEST_REJECTED,
				    "operator alice", NULL, "batch",
				    "B-2026-11-25-01", "file", a, "device-id",
				    b, "reason", "public key does not match "
				    "manifest entry (kid 0)", NULL);
				break;
			case 1:
				r = kr_ltx_appendf(ltx, KR_E_REQUEST_APPROVED,
				    "operator alice", NULL, "batch",
				    "B-2026-11-25-01", "file", a, "device-id",
				    b, "approvers", "alice,bob", NULL);
				break;
			case 2:
				r = kr_ltx_appendf(ltx, KR_E_SELF_CHECK,
				    "keyroom", NULL, "check", "hsm-sign-verify",
				    "result", "ok", "detail", a, NULL);
				break;
			default:
				r = kr_ltx_appendf(ltx, KR_E_REQUEST_RECEIVED,
				    "operator alice", NULL, "batch",
				    "B-2026-11-25-01", "file", a, "device-id",
				    b, NULL);
				break;
			}
			if (r != 0)
				die("append", r);
		}
		if ((r = kr_ltx_commit(ltx, &s, NULL)) != 0)
			die("commit", r);
	}
	if (!quiet && n > 0)
		fprintf(stderr, "logfill: %llu entries in %.3fs: %.0f "
		    "entries/s (chunks of %llu)\n", (unsigned long long)n,
		    kr_now() - t0, (double)n / (kr_now() - t0),
		    (unsigned long long)chunk);
	if ((ints = calloc(chunk, sizeof(*ints))) == NULL)
		return 1;
	for (base = size * 1000 + 1, i = 0; i < certs; i += chunk) {
		struct kr_cert_intent ci;
		struct kr_cert_issued cs;
		uint64_t m = certs - i < chunk ? certs - i : chunk, nd = 0;
		uint64_t devs[4096];

		memset(&ci, 0, sizeof(ci));
		ci.issuer = "issuer-test";
		ci.batch = "B-2026-11-25-01";
		if (m > 4096)
			return 2;
		if ((r = kr_log_begin(log, &ltx)) != 0)
			die("begin", r);
		for (j = 0; j < m; j++) {
			snprintf(a, sizeof(a), "%llx",
			    (unsigned long long)(base + i + j));
			snprintf(b, sizeof(b), "dev%06llu",
			    (unsigned long long)(i + j));
			if (outdir != NULL && (r = already(log, ltx, b,
			    outdir)) != 0) {
				if (r < 0)
					die("device index", r);
				continue;	/* certified before */
			}
			ci.serial = a;
			ci.device_id = b;
			memset(ci.tbs_sha256, (int)j, 32);
			if ((r = kr_log_intent(ltx, "operator alice", &ci,
			    &ints[nd])) != 0)
				die("intent", r);
			devs[nd++] = i + j;
		}
		if ((r = kr_ltx_commit(ltx, &s, NULL)) != 0 ||
		    (r = kr_log_begin(log, &ltx)) != 0)
			die("intent commit", r);
		/* The HSM would sign here. */
		for (j = 0; j < nd; j++) {
			snprintf(b, sizeof(b), "dev%06llu",
			    (unsigned long long)devs[j]);
			if (make_cert(pk, base + devs[j], b, &der, &dl) != 0)
				return 1;
			memset(&cs, 0, sizeof(cs));
			cs.intent = ints[j];
			cs.der = der;
			cs.der_len = (size_t)dl;
			cs.device_id = b;
			cs.batch = "B-2026-11-25-01";
			r = kr_log_issued(ltx, "operator alice", &cs, &idx);
			OPENSSL_free(der);
			if (r != 0)
				die("issued", r);
		}
		if ((r = kr_ltx_commit(ltx, &s, NULL)) != 0)
			die("issued commit", r);
		/* Released only now that the log holds them. */
		for (j = 0; outdir != NULL && j < nd; j++) {
			snprintf(b, sizeof(b), "dev%06llu",
			    (unsigned long long)devs[j]);
			if ((r = emit(log, b, outdir)) != 0)
				die("output", r);
		}
	}
	if (openi > 0) {
		struct kr_cert_intent ci;

		memset(&ci, 0, sizeof(ci));
		ci.issuer = "issuer-test";
		if ((r = kr_log_begin(log, &ltx)) != 0)
			die("begin", r);
		for (j = 0; j < openi; j++) {
			snprintf(a, sizeof(a), "f%llx",
			    (unsigned long long)(size * 1000 + j));
			ci.serial = a;
			if ((r = kr_log_intent(ltx, "operator alice", &ci,
			    NULL)) != 0)
				die("intent", r);
		}
		if ((r = kr_ltx_commit(ltx, &s, NULL)) != 0)
			die("intent commit", r);
	}
	if (policy) {
		/* A policy installed, a batch under it, then two that were
		 * not: one under another digest, one naming none. */
		static const char d1[] = "1111111111111111111111111111111111111111111111111111111111111111";
		static const char d2[] = "2222222222222222222222222222222222222222222222222222222222222222";
		static const char sh[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

		if ((r = kr_log_begin(log, &ltx)) != 0 ||
		    (r = kr_ltx_appendf(ltx, KR_E_CONFIG_CHANGE, "ceremony",
		    NULL, "file", "policy.yaml", "sha256", sh, "policy-digest",
		    d1, NULL)) != 0 ||
		    (r = kr_ltx_appendf(ltx, KR_E_BATCH_BEGIN, "operator", NULL,
		    "batch", "P-in", "policy-digest", d1, NULL)) != 0 ||
		    (r = kr_ltx_appendf(ltx, KR_E_BATCH_BEGIN, "operator", NULL,
		    "batch", "P-other", "policy-digest", d2, NULL)) != 0 ||
		    (r = kr_ltx_appendf(ltx, KR_E_BATCH_BEGIN, "operator", NULL,
		    "batch", "P-none", NULL)) != 0 ||
		    (r = kr_ltx_commit(ltx, &s, NULL)) != 0)
			die("policy entries", r);
	}
	if (print) {
		if ((r = kr_log_read_begin(log, &rt)) != 0 ||
		    (r = kr_log_checkpoint(log, rt, &note, &size)) != 0)
			die("checkpoint", r);
		mdb_txn_abort(rt);
		fputs(note, stdout);
		free(note);
	}
	free(ints);
	if (getenv("LOGFILL_CRASH_POINTS") != NULL)
		fprintf(stderr, "crash points: %lu\n", kr_audit_crash_points());
	kr_log_close(log);
	kr_hsm_signer_close(hs);
	EVP_PKEY_free(pk);
	return 0;
}
