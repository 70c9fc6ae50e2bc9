/*
 * cryptobound.c - the per-device crypto bound of a batch, measured in
 * process: 2 ECDSA P-256 verifies (the CSR's proof of possession, the
 * issued certificate against the issuer) + 1 ECDSA P-256 sign (the
 * certificate) with OpenSSL, on T threads for S seconds. Prints
 * "devices_per_second N" (all threads together).
 *
 * usage: cryptobound [--threads T] [--seconds S]
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

struct th {
	double seconds;
	unsigned long n;
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
	unsigned char msg[400] = { 1 }, sig[80], sig2[80];
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
		if (EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, k) != 1 ||
		    EVP_DigestSign(mc, sig2, &sl2, msg, sizeof(msg)) != 1)
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
		{ NULL, 0, NULL, 0 },
	};
	struct th t[64];
	pthread_t id[64];
	int nt = 2, ch, i;
	double secs = 2.0, rate = 0;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == 't')
			nt = atoi(optarg);
		else if (ch == 's')
			secs = atof(optarg);
		else {
			fprintf(stderr, "usage: cryptobound [--threads T] "
			    "[--seconds S]\n");
			return 2;
		}
	}
	if (nt < 1 || nt > 64)
		nt = 2;
	for (i = 0; i < nt; i++) {
		t[i].seconds = secs;
		t[i].n = 0;
		if (pthread_create(&id[i], NULL, run, &t[i]) != 0)
			return 1;
	}
	for (i = 0; i < nt; i++) {
		pthread_join(id[i], NULL);
		rate += (double)t[i].n / t[i].seconds;
	}
	printf("devices_per_second %.0f\n", rate);
	return 0;
}
