/*
 * fuzz_csr.c - libFuzzer harness for CSR intake as a batch does it: the
 * CA's parser (PEM or DER, proof of possession), then what batch_req.c
 * takes from a parsed request: the subject CN, the SPKI as it stands and
 * its canonical registry form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "media/media.h"
#include "media/registry.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct kr_csr *csr = NULL;
	unsigned char *spki = NULL;
	uint8_t canon[KR_MF_SPKI_MAX];
	size_t clen;
	char cn[128];
	int n;

	if (kr_csr_parse("csr/fuzz.csr", data, len, &csr) != 0)
		goto out;
	if (kr_bundle_csr_cn(kr_csr_req(csr), cn, sizeof(cn)) == 0 &&
	    strlen(cn) >= sizeof(cn))
		abort();
	n = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(kr_csr_req(csr)), &spki);
	if (n > 0 && kr_spki_canon(spki, (size_t)n, canon, &clen) == 0 &&
	    clen > sizeof(canon))
		abort();
 out:
	OPENSSL_free(spki);
	kr_csr_free(csr);
	ERR_clear_error();
	return 0;
}
