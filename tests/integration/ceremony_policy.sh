#!/usr/bin/env bash
# ceremony_policy.sh - the signing policy changes only through the
# install-policy ceremony (two root custodians), from <stick>/policy/:
# refused policies (unknown key, a file outside policy/, a missing file, a
# changed certificate under a name the policy in force reads, too few
# shares) change nothing and log no config-change; an accepted one is the
# stick's bytes in the state, logged with its SHA-256 (and the previous
# one's) and its digest, and the batch signs under it - and only under it:
# an edit by hand, or a crash between the commit and the rename, stops
# signing until the installed bytes are back or the ceremony runs again.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
S="$T/st"; C="$T/cards"; SCR="$TOP/ceremony/scripts"
kr() { "$KEYROOM" -q --state "$S" "$@"; }
[ -x "$TOOLS/fleetsim" ] || { skip "install-policy" "fleetsim not built"; done_testing; exit 0; }
card() { kr_card "$C" "$1" "$2"; }

kr_quorum_ca "$S" "$C" || { nok "genesis + intermediate"; done_testing; exit 1; }
ok "genesis + intermediate"

"$TOOLS/fleetsim" --out "$T/f" --seed 31 --devices 5 --quota 40 --manifest-on-media \
    --batch-id pol-1 >/dev/null || nok "fleetsim"
# stick DIR FILES...: an officers' stick with FILES in DIR/policy/
stick() { local d="$1"; shift; rm -rf "$d"; mkdir -p "$d/policy"; cp "$@" "$d/policy/"; }
install() { # STICK [root card numbers...]: the ceremony, two custodians
	local m="$1" a="${2:-1}" b="${3-3}"
	kr --yes ceremony run "$SCR/install-policy.yaml" --no-prompt --media "$m" \
	    --shares "root=file:$(card root "$a")" ${b:+--shares "root=file:$(card root "$b")"}
}
changes() { kr audit list --type config-change 2>/dev/null | wc -l; }
unchanged() { # NAME: nothing of a refused install reached the state or the log
	if [ ! -e "$S/policy.yaml" ] && [ ! -e "$S/signer.crt" ] && [ ! -e "$S/evil.crt" ] &&
	    [ "$(changes)" = "$c0" ]; then ok "$1: nothing installed, no config-change logged"
	else nok "$1: the state or the log changed"; fi
}
c0=$(changes)

# --- refusals, on a state without any policy
sed 's/^curves:/curvez:/' "$T/f/policy.yaml" >"$T/bad-key.yaml"
stick "$T/s1" "$T/f/signer.crt"; cp "$T/bad-key.yaml" "$T/s1/policy/policy.yaml"
expect_fail "a policy with an unknown key is refused" "the new policy is refused.*unknown key 'curvez'" install "$T/s1"
unchanged "unknown key"
stick "$T/s2" "$T/f/signer.crt"
sed 's#file: signer.crt#file: ../evil.crt#' "$T/f/policy.yaml" >"$T/s2/policy/policy.yaml"
cp "$T/f/signer.crt" "$T/s2/evil.crt"
expect_fail "a certificate file outside policy/ is refused" "'../evil.crt': the policy's certificate files must be plain names" \
    install "$T/s2"
unchanged "../ name"
stick "$T/s2b" "$T/f/signer.crt"
sed 's#file: signer.crt#file: keyroom.yaml#' "$T/f/policy.yaml" >"$T/s2b/policy/policy.yaml"
cp "$T/f/signer.crt" "$T/s2b/policy/keyroom.yaml"
expect_fail "a certificate file named like a state file is refused" "'keyroom.yaml': the policy's certificate files must be plain names \(\*.crt" \
    install "$T/s2b"
unchanged "a state file's name"
stick "$T/s3" "$T/f/policy.yaml"
expect_fail "a missing certificate file is refused" "signer.crt" install "$T/s3"
unchanged "missing file"
stick "$T/s4" "$T/f/policy.yaml" "$T/f/signer.crt"
expect_fail "one custodian cannot change the policy" "1 of 2 shares entered" install "$T/s4" 1 ""
unchanged "one custodian"
expect_fail "install-policy without a stick" "needs --media DIR" \
    kr --yes ceremony run "$SCR/install-policy.yaml" --no-prompt \
    --shares "root=file:$(card root 1)" --shares "root=file:$(card root 2)"
unchanged "no stick"

# --- a batch before any policy is installed is refused
expect_fail "no batch without a policy" "policy" \
    kr session run --no-prompt --shares "issuing=file:$(card issuing 1)" \
    --shares "issuing=file:$(card issuing 3)" -- batch sign "$T/f/media"

# --- the install
install "$T/s4" >"$T/ok.out" 2>&1 && ok "install-policy with two custodians" ||
    { nok "install-policy"; tail -15 "$T/ok.out" | sed 's/^/#   /'; }
h=$(sha256sum "$T/f/policy.yaml" | cut -d' ' -f1)
check "the state's policy.yaml is the stick's bytes" cmp -s "$S/policy.yaml" "$T/f/policy.yaml"
# the refused one-custodian run and this one used the same stick, often in
# the same second: both transcripts are there, neither overwritten
n=$(ls "$T/s4"/install-policy-*.transcript.txt 2>/dev/null | wc -l)
[ "$n" = 2 ] && ok "both runs' transcripts are on the stick" || nok "transcripts on the stick: $n"
check "its signer certificate came with it" cmp -s "$S/signer.crt" "$T/f/signer.crt"
check "the new policy's SHA-256 is printed to read aloud" grep -q "policy.yaml SHA-256: $h" "$T/ok.out"
[ "$(changes)" = $((c0 + 1)) ] && ok "one config-change entry" || nok "config-change entries: $(changes), was $c0"
n=$(kr audit list --type config-change | tail -1 | awk '{print $1}')
kr audit show "$n" >"$T/entry"
check "... naming policy.yaml and its SHA-256, no previous one" \
    sh -c "grep -q '^file .*policy.yaml\$' '$T/entry' && grep -q '^sha256 $h\$' '$T/entry' && ! grep -q previous '$T/entry'"
check "audit verify" kr audit verify
signb() { kr session run --no-prompt --shares "issuing=file:$(card issuing 1)" \
    --shares "issuing=file:$(card issuing 3)" -- batch sign "$1"; }
signb "$T/f/media" >"$T/b.out" 2>&1
check "the batch signs under the installed policy" grep -q "5 signed, 0 rejected" "$T/b.out"
dg=$(kr --json policy check "$S/policy.yaml" | sed -n 's/^ *"digest": "\([0-9a-f]\{64\}\)".*/\1/p')
[ ${#dg} = 64 ] && grep -q "^policy-digest $dg\$" "$T/entry" && ok "the config-change names the policy's digest (policy check's)" ||
    nok "policy-digest in the config-change ('$dg')"
bb=$(kr audit list --type batch-begin | tail -1 | awk '{print $1}')
kr audit show "$bb" | grep -q "^policy-digest $dg\$" && ok "the batch-begin entry names the digest it ran under" ||
    nok "policy-digest in batch-begin"

# --- edits outside the ceremony stop signing until the bytes come back
cp "$S/policy.yaml" "$T/inforce.yaml"; cp "$S/signer.crt" "$T/inforce.crt"
begins() { kr audit list --type batch-begin 2>/dev/null | wc -l; }
b0=$(begins)
printf '# an edit by hand\n' >>"$S/policy.yaml"
expect_fail "a hand-edited policy.yaml signs nothing" \
    "the policy in force \(digest [0-9a-f]{64}\) is not the one the quorum installed \(digest $dg, log entry $n\)" \
    signb "$T/f/media"
rj=$(kr audit list --type request-rejected | tail -1 | awk '{print $1}')
[ "$(begins)" = "$b0" ] && kr audit show "$rj" | grep -q "^reason batch refused: the policy in force .* is not the one the quorum installed" &&
	ok "... no batch begun, the refusal logged with its reason" || nok "refusal of a hand-edited policy in the log"
cp "$T/inforce.yaml" "$S/policy.yaml"
"$TOOLS/fleetsim" --out "$T/g" --seed 32 --devices 2 --batch-id pol-2 >/dev/null
cp "$T/g/signer.crt" "$S/signer.crt"
expect_fail "a signer certificate swapped by hand under the same name signs nothing" \
    "is not the one the quorum installed \(digest $dg" signb "$T/f/media"
cp "$T/inforce.crt" "$S/signer.crt"
expect_fail "the installed bytes back: the policy passes (the batch is refused only as a replay)" \
    "batch id 'pol-1' was already" signb "$T/f/media"

# --- a new signer certificate under the name the policy in force reads
stick "$T/s5" "$T/f/policy.yaml" "$T/g/signer.crt"
expect_fail "a changed certificate under an installed name is refused" \
    "the state already has a different signer.crt" install "$T/s5"
check "... the installed policy and certificate stay" sh -c "cmp -s '$S/policy.yaml' '$T/f/policy.yaml' && cmp -s '$S/signer.crt' '$T/f/signer.crt'"
[ "$(changes)" = $((c0 + 1)) ] && ok "... and no config-change" || nok "config-change after a refusal"

# --- the next policy: a second signer under its own name, another quota
cp "$T/g/signer.crt" "$T/signer-b.crt"
sed -e 's/quota: 40$/quota: 45/' -e 's#^  - file: signer.crt#  - file: signer.crt\n  - file: signer-b.crt#' \
    "$T/f/policy.yaml" >"$T/p2.yaml"
grep -q "signer-b.crt" "$T/p2.yaml" && grep -q "quota: 45" "$T/p2.yaml" || nok "second policy prepared"
stick "$T/s6" "$T/f/signer.crt" "$T/signer-b.crt"; cp "$T/p2.yaml" "$T/s6/policy/policy.yaml"
install "$T/s6" 2 3 >"$T/ok2.out" 2>&1 && ok "the next policy, custodians 2 and 3" ||
    { nok "second install"; tail -15 "$T/ok2.out" | sed 's/^/#   /'; }
check "... in force, with both signer certificates" sh -c "cmp -s '$S/policy.yaml' '$T/p2.yaml' && cmp -s '$S/signer-b.crt' '$T/signer-b.crt' && cmp -s '$S/signer.crt' '$T/f/signer.crt'"
n=$(kr audit list --type config-change | tail -1 | awk '{print $1}')
kr audit show "$n" >"$T/entry2"
check "... logged with the previous policy's SHA-256" \
    sh -c "grep -q '^sha256 $(sha256sum "$T/p2.yaml" | cut -d' ' -f1)\$' '$T/entry2' && grep -q '^previous-sha256 $h\$' '$T/entry2'"
check "kr policy check accepts what was installed" kr policy check "$S/policy.yaml"
check "audit verify" kr audit verify

# --- kill -9 around the commit of the next install: before it, nothing
# changed; after it, the log names a policy not yet in force and batches
# stop until the ceremony runs again - never a policy in force unlogged.
sed 's/quota: 45$/quota: 50/' "$T/p2.yaml" >"$T/p3.yaml"
stick "$T/s7" "$T/f/signer.crt" "$T/signer-b.crt"; cp "$T/p3.yaml" "$T/s7/policy/policy.yaml"
h3=$(sha256sum "$T/p3.yaml" | cut -d' ' -f1)
cp -a "$S" "$T/st.bak"
at=; pre=
for N in $(seq 1 120); do
	rm -rf "$S"; cp -a "$T/st.bak" "$S"
	KEYROOM_TEST_AUDIT_CRASH_AT=$N KEYROOM_TEST_CRASH_VERBOSE=1 install "$T/s7" >"$T/crash.out" 2>&1
	grep -q "audit crash point $N: checkpoint signed, before commit" "$T/crash.out" && pre=$N
	grep -q "audit crash point $N: policy logged, not yet in force" "$T/crash.out" && { at=$N; break; }
done
if [ -n "$at" ] && [ -n "$pre" ]; then
	ok "the install has a crash point after its commit ($at) and one before it ($pre)"
	check "... killed after the commit: the policy in force is still the previous one" cmp -s "$S/policy.yaml" "$T/p2.yaml"
	kr audit show "$(kr audit list --type config-change | tail -1 | awk '{print $1}')" | grep -q "^sha256 $h3\$" &&
		ok "... and the log names the new one" || nok "the new policy's config-change after the crash"
	expect_fail "... so a batch is refused, naming the installed digest" "is not the one the quorum installed" signb "$T/f/media"
	check "... audit verify" kr audit verify
	install "$T/s7" >"$T/again.out" 2>&1 && cmp -s "$S/policy.yaml" "$T/p3.yaml" && [ ! -e "$S/policy.yaml.new" ] &&
		ok "... the ceremony run again puts it in force" || nok "install after the crash"
	expect_fail "... and batches pass the policy again" "batch id 'pol-1' was already" signb "$T/f/media"
	rm -rf "$S"; cp -a "$T/st.bak" "$S"; c1=$(changes)
	KEYROOM_TEST_AUDIT_CRASH_AT=$pre install "$T/s7" >/dev/null 2>&1
	cmp -s "$S/policy.yaml" "$T/p2.yaml" && [ "$(changes)" = "$c1" ] &&
		ok "killed before the commit: the previous policy in force, nothing logged" || nok "crash before the commit"
	expect_fail "... and it still signs (refused only as a replay)" "batch id 'pol-1' was already" signb "$T/f/media"
else
	nok "crash points of the install not found (after: '$at', before: '$pre')"
fi

# --- the auditor's side: audit verify names batches that ran under a
# policy other than the one installed last (only a bypassed appliance can
# log one; logfill -P writes such a log: a batch under the installed
# digest, one under another, one naming none)
n=$("$KEYROOM" -q --state "$S" --json audit verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["batches_under_other_policy"])')
[ "$n" = 0 ] && ok "audit verify: every batch of this log ran under the policy installed last" ||
	nok "audit verify counts $n batches under another policy"
if [ -x "$TOOLS/logfill" ]; then
	mkdir -p "$T/lf"; "$TOOLS/logfill" -q -n 3 -P "$T/lf"
	"$KEYROOM" -q audit verify "$T/lf" >"$T/lf.out" 2>&1; rc=$?
	[ $rc = 0 ] && grep -q "warning       2 batch(es) ran under a policy other than the one the quorum" "$T/lf.out" &&
		grep -q "(first: batch-begin entry 6)" "$T/lf.out" &&
		ok "audit verify warns of 2 batches under another policy, from entry 6 (the log itself verifies)" ||
		{ nok "audit verify policy warning (rc $rc)"; sed 's/^/#   /' "$T/lf.out"; }
fi
done_testing
