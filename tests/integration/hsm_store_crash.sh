#!/usr/bin/env bash
# hsm_store_crash.sh - kill -9 inside SoftHSM2's own token file write.
# SoftHSM rewrites <token>/token.object on every C_Login (ftruncate, then
# write); strace's fault injection delivers SIGKILL on entry to that write,
# so the real module leaves the real torn file: an empty token.object, and
# a token SoftHSM no longer lists. The next keyroom command must put
# keyroom's copy back, say so, log it as a self-check, and carry on - for
# the audit, issuing and root tokens, and after a reshare with the new
# PIN, never the retired one. Without a copy: a clear error, no entry.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
command -v strace >/dev/null || { skip "torn token files" "strace not installed"; done_testing; exit 0; }
# fault injection needs ptrace (a container may forbid it)
strace -f -qq -o /dev/null -e trace=write -e inject=write:error=EIO:when=100 true 2>/dev/null ||
	{ skip "torn token files" "strace cannot trace here (ptrace not permitted?)"; done_testing; exit 0; }
S="$T/st"
kr() { "$KEYROOM" -q --state "$S" "$@"; }
entries() { "$KEYROOM" --state "$1" audit list 2>/dev/null | grep -c .; }
tokfile() { grep -l -- "$2" "$1"/tokens/*/token.object | head -1; }
# crash FILE N CMD...: run CMD, SIGKILLed as it enters its N-th write to FILE.
crash() {
	local f="$1" n="$2"; shift 2
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -qq -o /dev/null -P "$f" -e trace=write \
	    -e inject=write:signal=SIGKILL:when="$n" "$@" >/dev/null 2>&1
}
selfchecks() { "$KEYROOM" --state "$1" --json audit list 2>/dev/null |
	python3 -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin) if e["type"] == "self-check" and e.get("check") == "hsm-store" and e.get("result") == "repaired"))'; }

kr_ca_setup "$S" || { nok "state"; done_testing; exit 1; }
ok "state (init, root, intermediate)"
for lab in keyroom-audit keyroom-issuing keyroom-root; do
	f=$(tokfile "$S" "$lab")
	[ -s "$f" ] && [ "$(stat -c %s "$f")" = "$(stat -c %s "$f-keyroom-copy")" ] &&
		ok "$lab: keyroom keeps a copy of token.object" ||
		nok "$lab: copy of token.object"
done

n=0
for lab in keyroom-audit keyroom-issuing keyroom-root; do
	f=$(tokfile "$S" "$lab")
	root=; [ $lab = keyroom-root ] && root=--root
	before=$(entries "$S")
	crash "$f" 1 "$KEYROOM" -q --state "$S" ca crl $root --pin "file:$S.pin" --out "$T/x.crl"
	[ -f "$f" ] && [ ! -s "$f" ] && ok "$lab: kill -9 in SoftHSM's login write leaves token.object empty" ||
		nok "$lab: the kill did not tear token.object ($(stat -c %s "$f" 2>&1))"
	[ "$(entries "$S")" = "$before" ] && [ ! -e "$T/x.crl" ] && ok "$lab: the killed command wrote nothing" ||
		nok "$lab: the killed command left output"
	n=$((n + 1))
	kr ca crl $root --pin "file:$S.pin" --out "$T/crl-$lab.pem" >/dev/null 2>"$T/err" &&
		ok "$lab: the next command runs" || { nok "$lab: next command"; cat "$T/err"; }
	grep -q "warning: token store .*: token.object was empty (a SoftHSM write interrupted by a crash); restored from the copy of " "$T/err" &&
		ok "$lab: the repair is named on stderr" || { nok "$lab: repair message"; cat "$T/err"; }
	cmp -s -i 8:8 "$f" "$f-keyroom-copy" && ok "$lab: token.object restored" || nok "$lab: token.object restored"
	[ "$(selfchecks "$S")" = $n ] && ok "$lab: logged as self-check hsm-store repaired ($n so far)" ||
		nok "$lab: self-check entries: $(selfchecks "$S"), want $n"
done
for c in "$T"/crl-*.pem; do
	[ -s "$c" ] || continue
	certtool --crl-info --infile "$c" >/dev/null 2>&1 || nok "$c unreadable"
done
verify_no_warning "audit log verifies after three repairs" audit verify "$S/log"

# --- a PIN change: the copy follows it at once --------------------------------
# Reshare #1 runs under strace recording the root token's token.object
# writes and the renames of its copy: C_SetPIN's write is followed, in the
# same process, by a refresh of the copy, then by more logins. Reshare #2
# is killed at the first token write after that refresh: restored from a
# copy taken at process start, the token would have the old PIN and the
# new cards would fail.
Q="$T/q"; C="$T/cards"; SCR="$TOP/ceremony/scripts"
kq() { "$KEYROOM" -q --state "$Q" "$@"; }
# both reshares 2-of-3 -> 2-of-3, so they make the same token writes
cat >"$T/reshare.yaml" <<'YAML'
ceremony: reshare-root
purpose: new root cards for the same three custodians
quorums:
  root: {m: 2, n: 3, custodians: [Custodian A, Custodian B, Custodian C]}
steps:
  - do: reshare
    token: root
    m: 2
    n: 3
    custodians: [Custodian A, Custodian B, Custodian C]
YAML
kr_init_state "$Q" "$T/q.pin" &&
	kq --yes ceremony run "$SCR/genesis.yaml" --init-pin "file:$T/q.pin" --cards "$C" --no-prompt \
	    --media "$T/m0" >"$T/g.out" 2>&1 ||
	{ nok "genesis"; tail -5 "$T/g.out"; done_testing; exit 1; }
rf=$(tokfile "$Q" keyroom-root)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -qq -y -o "$T/w.txt" -e trace=write,rename \
	"$KEYROOM" -q --state "$Q" --yes ceremony run "$T/reshare.yaml" --no-prompt --cards "$T/cards2" \
	--shares "root=file:$(kr_card "$C" root 1)" --shares "root=file:$(kr_card "$C" root 2)" >"$T/r.out" 2>&1 &&
	ok "genesis + reshare #1 of the root token" || { nok "reshare #1"; tail -5 "$T/r.out"; }
# k: token.object writes before the first copy refresh that follows one
read -r k w < <(awk -v f="$rf" -v d="$(basename "$(dirname "$rf")")" \
	'index($0, " write(") && index($0, "<" f ">") { n++ }
	index($0, " rename(") && index($0, d "/token.object-keyroom-copy\"") && n > 0 && !k { k = n }
	END { print k + 0, n + 0 }' "$T/w.txt")
[ "$k" -gt 0 ] && [ "$k" -lt "$w" ] &&
	ok "the copy is refreshed after root write $k of $w (C_SetPIN), before the logins after it" ||
	nok "no copy refresh inside the reshare (k=$k w=$w)"
cmp -s -i 8:8 "$rf" "$rf-keyroom-copy" && ok "after the reshare the copy is the new token.object (past the generation)" ||
	nok "copy refreshed after C_SetPIN"
N1=$(kr_card "$T/cards2" root 1); N2=$(kr_card "$T/cards2" root 2); N3=$(kr_card "$T/cards2" root 3)
crash "$rf" $((k + 1)) "$KEYROOM" -q --state "$Q" --yes ceremony run "$T/reshare.yaml" --no-prompt \
	--cards "$T/cards3" --shares "root=file:$N1" --shares "root=file:$N2"
[ -f "$rf" ] && [ ! -s "$rf" ] && ok "reshare #2 killed -9 at root write $((k + 1)), after its C_SetPIN and refresh" ||
	nok "reshare #2 not torn"
cat >"$T/crl.yaml" <<'YAML'
ceremony: root-crl
purpose: a root CRL with the newest cards
quorums:
  root: {m: 2, n: 3, custodians: [Custodian A, Custodian B, Custodian C]}
steps:
  - do: issue-crl
    issuer: root
    next_days: 30
YAML
M1=$(kr_card "$T/cards3" root 1); M3=$(kr_card "$T/cards3" root 3)
kq --yes ceremony run "$T/crl.yaml" --no-prompt --shares "root=file:$M1" --shares "root=file:$M3" \
	>"$T/c.out" 2>"$T/c.err" && grep -q "restored from the copy" "$T/c.err" &&
	ok "restored: reshare #2's cards (its PIN) unlock the root" || { nok "newest cards after restore"; tail -5 "$T/c.err"; }
expect_fail "reshare #1's cards are retired" "was retired on" \
	kq --yes ceremony run "$T/crl.yaml" --no-prompt --shares "root=file:$N2" --shares "root=file:$N3"
verify_no_warning "that log verifies" audit verify "$Q/log"

# --- no copy: a clear error, nothing logged ------------------------------------
af=$(tokfile "$S" keyroom-audit)
: >"$af"; rm -f "$af-keyroom-copy"
before=$(entries "$S")
kr ca crl --pin "file:$S.pin" --out "$T/y.crl" >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "token.object is empty .* there is no copy to restore" "$T/err" &&
	grep -q "token keyroom-audit not found" "$T/err" &&
	ok "an empty token.object without a copy: named, then token not found (exit 1)" ||
	{ nok "no copy (rc=$rc)"; cat "$T/err"; }
[ "$(entries "$S")" = "$before" ] && [ ! -e "$T/y.crl" ] && ok "and nothing was written" || nok "written without a token"
done_testing
