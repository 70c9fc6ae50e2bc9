/*
 * cardprint.c - the printed share card: who, which set, M-of-N, the code
 * lines and a QR code of the compact code (audit/qr.h).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit/qr.h"
#include "ceremony/card.h"
#include "lib/util.h"

int
kr_card_print(FILE *f, const struct kr_qset *set, const struct kr_share *s,
    int qr)
{
	char code[KR_CARD_TEXT_MAX], compact[KR_CARD_TEXT_MAX];
	char id[KR_Q_ID_HEX];
	const char *p, *nl;
	unsigned l = 1;
	int r;

	if (s->index < 1 || s->index > set->n)
		return kr_errf(KR_ERR_INVALID_ARGUMENT, "share index %u",
		    s->index);
	if ((r = kr_card_code(s, 0, code, sizeof(code))) != 0 ||
	    (r = kr_card_code(s, 1, compact, sizeof(compact))) != 0)
		goto out;
	kr_qset_id_hex(set->id, id);
	fprintf(f, "==================================================\n"
	    " KEYROOM SHARE CARD                  KEEP SECRET\n"
	    "==================================================\n"
	    " token:      %s\n"
	    " custodian:  %s\n"
	    " share set:  %.4s %.4s %.4s %.4s\n"
	    " quorum:     %u of %u            share %u of %u\n"
	    " created:    %s\n\n",
	    set->label, set->member[s->index - 1].name, id, id + 4, id + 8,
	    id + 12, set->m, set->n, s->index, set->n, set->created);
	for (p = code; *p != '\0'; p = nl + 1, l++) {
		if ((nl = strchr(p, '\n')) == NULL)
			break;
		fprintf(f, "   %u  %.*s\n", l, (int)(nl - p), p);
	}
	fprintf(f, "\n Type the %d lines above when asked (spaces, case and"
	    "\n line numbers do not matter), or scan the QR code.\n",
	    KR_CARD_LINES);
	if (qr) {
		fputc('\n', f);
		if ((r = kr_qr_print_terminal(f, compact)) != 0)
			goto out;
	}
	fprintf(f, "==================================================\n");
	r = ferror(f) ? kr_err_sys("writing share card") : 0;
 out:
	OPENSSL_cleanse(code, sizeof(code));
	OPENSSL_cleanse(compact, sizeof(compact));
	return r;
}
