/*
 * fuzz_batch.c - libFuzzer harness for the batch descriptor (batch.json,
 * strict keys and charsets) and for the hostile-name checks of the media
 * scan (the input as one path component).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/media.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct kr_batch_desc d;
	char name[KR_MEDIA_MAX_NAME * 2 + 1];
	size_t i;

	if (kr_batch_desc_parse("batch.json", data, len, &d) == 0) {
		/* Whatever was accepted must be safe as a directory name. */
		if (!kr_batch_id_ok(d.id) || !kr_batch_id_ok(d.manufacturer) ||
		    strchr(d.id, '/') != NULL || d.nparts == 0 ||
		    d.nparts > KR_MEDIA_MAX_PARTS)
			abort();
		for (i = 0; i < d.nparts; i++)
			if (!kr_batch_id_ok(d.parts[i]))
				abort();
	}
	if (len < sizeof(name)) {
		memcpy(name, data, len);
		name[len] = 0;
		if (kr_media_name_problem(name, KR_MEDIA_MAX_NAME) == NULL &&
		    (strchr(name, '/') != NULL || strcmp(name, "..") == 0 ||
		    !kr_media_utf8_ok(name)))
			abort();
	}
	return 0;
}
