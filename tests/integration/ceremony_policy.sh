#!/usr/bin/env bash
# ceremony_policy.sh - the signing policy changes only through the
# install-policy ceremony (two root custodians), from <stick>/policy/:
# refused policies (unknown key, a file outside policy/, a missing file, a
# changed certificate under a name the policy in force reads, too few
# shares) change nothing and log no config-change; an accepted one is the
# stick's bytes in the state, logged with its SHA-256 (and the previous
# one's), and the batch signs under it.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
S="$T/st"; C="$T/cards"; SCR="$TOP/ceremony/scripts"
kr() { "$KEYROOM" -q --state "$S" "$@"; }
[ -x "$TOOLS/fleetsim" ] || { skip "install-policy" "fleetsim not built"; done_testing; exit 0; }
card() { kr_card "$C" "$1" "$2"; }

kr_init_state "$S" "$T/init.pin" &&
	kr --yes ceremony run "$SCR/genesis.yaml" --init-pin "file:$T/init.pin" --cards "$C" \
	    --media "$T/m0" --no-prompt >"$T/g.out" 2>&1 &&
	kr --yes ceremony run "$SCR/intermediate.yaml" --no-prompt --media "$T/m1" \
	    --shares "root=file:$(card root 1)" --shares "root=file:$(card root 2)" \
	    --shares "issuing=file:$(card issuing 1)" --shares "issuing=file:$(card issuing 2)" \
	    >"$T/i.out" 2>&1 ||
	{ nok "genesis + intermediate"; tail -5 "$T/g.out" "$T/i.out"; done_testing; exit 1; }
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
kr session run --no-prompt --shares "issuing=file:$(card issuing 1)" --shares "issuing=file:$(card issuing 3)" \
    -- batch sign "$T/f/media" >"$T/b.out" 2>&1
check "the batch signs under the installed policy" grep -q "5 signed, 0 rejected" "$T/b.out"

# --- a new signer certificate under the name the policy in force reads
"$TOOLS/fleetsim" --out "$T/g" --seed 32 --devices 2 --batch-id pol-2 >/dev/null
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
done_testing
