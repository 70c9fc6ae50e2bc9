/*
 * ceremony.h - running a ceremony script (`keyroom ceremony run`).
 *
 * The runner prints the script's SHA-256 as words, refuses a script whose
 * hash differs from the reviewed one (--expect-sha256), then for each step
 * shows what it will do, asks for confirmation (unless --yes), executes it
 * through the step table, shows its result (fingerprints as words and a
 * QR code) and commits a ceremony-step entry to the audit log. It begins
 * with a ceremony-begin entry and ends with ceremony-end; the transcript
 * (every step, time, result, fingerprint, the final signed checkpoint as
 * text and QR, lines for witnesses' signatures) is written atomically to
 * the media directory. --rehearse runs the same script against a
 * throwaway state and SoftHSM token store.
 */
#ifndef KR_CEREMONY_H
#define KR_CEREMONY_H

#include "ceremony/script.h"
#include "ceremony/unlock.h"
#include "lib/cli.h"

struct kr_ceremony_opts {
	const char *script_path;
	const char *expect_sha256;	/* hex, or NULL */
	const char *media;		/* transcript + exports; NULL: none */
	const char *cards_dir;		/* write share cards here (0600) */
	const char *init_pin;		/* PIN given to `keyroom init` */
	int rehearse;
	struct kr_shares_in shares;
};

/*
 * Run a ceremony. Returns 0 or a KR_ERR_* code; the step that failed is
 * logged (result failed) and the ceremony ends (ceremony-end failed).
 * KR_ERR_POLICY: --expect-sha256 mismatch (nothing run, nothing logged).
 * KR_ERR_INTERRUPTED: a participant declined a step.
 */
int kr_ceremony_run(struct kr_cli *cli, struct kr_ceremony_opts *o) KR_WUR;

#endif
