/* cmd_version.c - `keyroom version`. */
#include <stdio.h>
#include <string.h>

#include <lmdb.h>
#include <openssl/crypto.h>

#include "commands.h"
#include "version.h"

int
cmd_version(struct kr_cli *cli, int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		printf("usage: keyroom version\n\nPrint keyroom's version and "
		    "the versions of the libraries it runs on.\n");
		return KR_EXIT_OK;
	}
	if (cli->json)
		printf("{\"keyroom\":\"%s\",\"openssl\":\"%s\",\"lmdb\":\"%s\"}"
		    "\n", KR_VERSION, OpenSSL_version(OPENSSL_VERSION_STRING),
		    mdb_version(NULL, NULL, NULL));
	else
		printf("keyroom %s\nOpenSSL %s\n%s\n", KR_VERSION,
		    OpenSSL_version(OPENSSL_VERSION_STRING),
		    mdb_version(NULL, NULL, NULL));
	return KR_EXIT_OK;
}
