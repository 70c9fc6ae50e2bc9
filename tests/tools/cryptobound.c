/*
 * cryptobound.c - the per-device crypto bound of a batch, measured in
 * process: 2 ECDSA P-256 verifies (the CSR's proof of possession, the
 * issued certificate against the issuer) + 1 ECDSA P-256 sign (the
 * certificate) with OpenSSL, on T threads for S seconds. Prints
 * "devices_per_second N" (all threads together).
 *
 * With --module/--token/--key/--pin the sign is a PKCS#11 C_Sign
 * (CKM_ECDSA over the SHA-256 digest) with that token's key, one session
 * per thread, as keyroom's batch workers sign: the bound that includes
 * the HSM's own per-signature cost (SoftHSM2 rebuilds the EC key on
 * every C_SignInit).
 *
 * usage: cryptobound [--threads T] [--seconds S]
 *                    [--module SO --token LABEL --key LABEL --pin SPEC]
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "ca/hsm.h"
#include "lib/err.h"
#include "lib/util.h"

struct th {
	double seconds;
	unsigned long n;
	struct kr_key *key;	/* NULL: sign with OpenSSL */
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
run(void *a)
{
	struct th *t = a;
	EVP_PKEY *k = EVP_EC_gen("P-256");
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	unsigned char msg[400] = { 1 }, sig[80], sig2[160];
	size_t sl = sizeof(sig), sl2;
	double t0, end;
	int i;

	if (k == NULL || mc == NULL ||
	    EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(mc, sig, &sl, msg, sizeof(msg)) != 1) {
		fprintf(stderr, "cryptobound: setup failed\n");
		exit(1);
	}
	t0 = now();
	end = t0 + t->seconds;
	while (now() < end) {
		for (i = 0; i < 2; i++)
			if (EVP_DigestVerifyInit(mc, NULL, EVP_sha256(), NULL,
			    k) != 1 || EVP_DigestVerify(mc, sig, sl, msg,
			    sizeof(msg)) != 1)
				exit(1);
		sl2 = sizeof(sig2);
		if (t->key != NULL) {
			if (kr_hsm_sign_raw(t->key, msg, sizeof(msg), sig2,
			    &sl2) != 0) {
				fprintf(stderr, "cryptobound: C_Sign: %s\n",
				    kr_err_detail());
				exit(1);
			}
		} else if (EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL,
		    k) != 1 || EVP_DigestSign(mc, sig2, &sl2, msg,
		    sizeof(msg)) != 1)
			exit(1);
		t->n++;
	}
	t->seconds = now() - t0;
	EVP_MD_CTX_free(mc);
	EVP_PKEY_free(k);
	return NULL;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "module", required_argument, NULL, 'm' },
		{ "token", required_argument, NULL, 'T' },
		{ "key", required_argument, NULL, 'k' },
		{ "pin", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct th t[64];
	struct kr_token *tok[64];
	pthread_t id[64];
	struct kr_hsm *hsm = NULL;
	const char *module = NULL, *token = NULL, *key = NULL, *pinspec = NULL;
	char *pin = NULL;
	size_t pinlen = 0;
	int nt = 2, ch, i;
	double secs = 2.0, rate = 0;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 't': nt = atoi(optarg); break;
		case 's': secs = atof(optarg); break;
		case 'm': module = optarg; break;
		case 'T': token = optarg; break;
		case 'k': key = optarg; break;
		case 'p': pinspec = optarg; break;
		default:
			fprintf(stderr, "usage: cryptobound [--threads T] "
			    "[--seconds S] [--module SO --token LABEL --key "
			    "LABEL --pin SPEC]\n");
			return 2;
		}
	}
	if (nt < 1 || nt > 64)
		nt = 2;
	for (i = 0; i < nt; i++) {
		t[i].seconds = secs;
		t[i].n = 0;
		t[i].key = NULL;
		tok[i] = NULL;
	}
	if (module != NULL) {
		if (token == NULL || key == NULL || pinspec == NULL) {
			fprintf(stderr, "cryptobound: --module needs --token, "
			    "--key and --pin\n");
			return 2;
		}
		if (kr_hsm_load(module, &hsm) != 0 ||
		    kr_read_secret(pinspec, "PIN: ", &pin, &pinlen,
		    KR_PIN_MAX) != 0) {
			fprintf(stderr, "cryptobound: %s\n", kr_err_detail());
			return 1;
		}
		/* one token session and key handle per thread */
		for (i = 0; i < nt; i++)
			if (kr_token_open(hsm, token, pin, pinlen, &tok[i]) !=
			    0 || kr_token_find_key(tok[i], key, &t[i].key) != 0) {
				fprintf(stderr, "cryptobound: %s\n",
				    kr_err_detail());
				return 1;
			}
	}
	for (i = 0; i < nt; i++)
		if (pthread_create(&id[i], NULL, run, &t[i]) != 0)
			return 1;
	for (i = 0; i < nt; i++) {
		pthread_join(id[i], NULL);
		rate += (double)t[i].n / t[i].seconds;
	}
	printf("devices_per_second %.0f\n", rate);
	for (i = 0; i < nt; i++) {
		kr_key_free(t[i].key);
		kr_token_close(tok[i]);
	}
	kr_hsm_free(hsm);
	if (pin != NULL)
		kr_secure_free(pin, KR_PIN_MAX);
	return 0;
}
