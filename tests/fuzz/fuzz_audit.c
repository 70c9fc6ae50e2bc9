/*
 * fuzz_audit.c - libFuzzer harness for the audit parsers an auditor
 * feeds untrusted text to: log entries (strict parser and key lookup),
 * signed notes, checkpoint bodies, vkeys and base64. The first byte
 * picks the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/entry.h"
#include "audit/note.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t pub[32] = { 1, 2, 3 };
	char *s, name[KR_LOG_MAX_ORIGIN + 1], tmp[64];
	const char *v;
	size_t vl, bl;
	uint8_t root[32], key[32], out[256];
	uint64_t n;
	enum kr_etype t;

	if (size < 1 || size > 70000)
		return 0;
	if ((s = malloc(size)) == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 5) {
	case 0:
		if (kr_entry_check("keyroom.example/log", data + 1, size - 1,
		    &t) == 0)
			(void)kr_entry_get_u64(data + 1, size - 1, "intent", &n);
		(void)kr_entry_get(data + 1, size - 1, "cert", &v, &vl);
		(void)kr_entry_get_str(data + 1, size - 1, "serial", tmp,
		    sizeof(tmp));
		break;
	case 1:
		(void)kr_note_verify(s, size - 1, "keyroom.example/log", pub,
		    &v, &bl);
		break;
	case 2:
		(void)kr_checkpoint_parse(s, size - 1, name, sizeof(name), &n,
		    root);
		break;
	case 3:
		(void)kr_note_vkey_parse(s, name, sizeof(name), key);
		break;
	default:
		(void)kr_b64_decode(s, size - 1, out, sizeof(out), &vl);
		break;
	}
	free(s);
	return 0;
}
