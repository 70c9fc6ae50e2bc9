/* entry.h - audit/ internal helpers around entries (see audit.h). */
#ifndef KR_ENTRY_H
#define KR_ENTRY_H

#include <stdint.h>
#include <stdio.h>

#include "audit/audit.h"

/* Non-empty single-line UTF-8 without control characters, bounded. */
int kr_entry_value_ok(const char *v, size_t n);
/* Value of key copied NUL-terminated into out. */
int kr_entry_get_str(const uint8_t *e, size_t len, const char *key,
    char *out, size_t cap) KR_WUR;
/* Value of key as a canonical decimal u64. */
int kr_entry_get_u64(const uint8_t *e, size_t len, const char *key,
    uint64_t *out) KR_WUR;
/* The type table, one line per type, for --help. */
void kr_etype_print_table(FILE *f);

#endif
