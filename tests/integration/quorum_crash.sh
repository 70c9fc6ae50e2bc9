#!/usr/bin/env bash
# quorum_crash.sh - crash safety of a PIN change (reshare): the new share
# set is committed as pending and its cards are written before C_SetPIN.
# Killed right after C_SetPIN: the old cards are refused with a message
# naming the pending set, whose cards unlock and make it active (the old
# set retired). Killed before C_SetPIN: the pending set's cards are
# refused (its PIN was never set) and it is retired; the active cards
# still unlock. The log verifies throughout.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
S="$T/st"
SCR="$TOP/ceremony/scripts"
kr() { "$KEYROOM" -q --state "$S" "$@"; }
setid() { sed -n 's/^# share set \([0-9a-f]*\),.*/\1/p' "$1"; }

kr_init_state "$S" "$T/init.pin" || { nok "keyroom init"; done_testing; exit 1; }
kr --yes ceremony run "$SCR/genesis.yaml" --init-pin "file:$T/init.pin" --cards "$T/cards" \
	--media "$T/media" >"$T/g.out" 2>&1 && ok "genesis" || { nok "genesis"; tail "$T/g.out"; done_testing; exit 1; }
R1=$(kr_card "$T/cards" root 1); R2=$(kr_card "$T/cards" root 2)
set0=$(setid "$R1")
q='quorums:
  root: {m: 2, n: 3, custodians: [Custodian A, Custodian B, Custodian C]}'
printf 'ceremony: reshare-test\npurpose: reshare\n%s\nsteps:\n  - do: reshare\n    token: root\n    m: 2\n    n: 3\n    custodians: [X, Y, Z]\n' "$q" >"$T/re.yaml"
printf 'ceremony: unlock-test\npurpose: unlock\n%s\nsteps:\n  - do: unlock\n    token: root\n' "$q" >"$T/un.yaml"

# --- killed after C_SetPIN, before the step's commit -----------------------
KEYROOM_TEST_CEREMONY_CRASH=pin-changed kr --yes ceremony run "$T/re.yaml" --no-prompt \
	--shares "root=file:$R1" --shares "root=file:$R2" --cards "$T/c2" >"$T/r1.out" 2>&1
rc=$?
[ $rc = 137 ] && grep -q "test crash point: pin-changed" "$T/r1.out" && ok "killed after C_SetPIN" ||
	{ nok "crash point pin-changed (rc=$rc)"; tail -5 "$T/r1.out"; }
N1=$(kr_card "$T/c2" root 1); N2=$(kr_card "$T/c2" root 2)
[ -n "$N1" ] && [ -n "$N2" ] && ok "new cards were written before the PIN changed" || nok "new cards missing"
set1=$(setid "$N1")
kr quorum list >"$T/q1" 2>&1
grep "share set $set1" "$T/q1" | grep -q PENDING && grep "share set $set0" "$T/q1" | grep -vq RETIRED &&
	ok "quorum list: new set pending, old set still active" || { nok "quorum list after crash"; cat "$T/q1"; }
expect_fail "old cards refused, naming the pending set" \
	"share set $set0 no longer logs in: an interrupted PIN change took effect; the cards of pending share set $set1 unlock the token" \
	kr --yes ceremony run "$T/un.yaml" --no-prompt --shares "root=file:$R1" --shares "root=file:$R2"
kr --yes ceremony run "$T/un.yaml" --no-prompt --shares "root=file:$N1" --shares "root=file:$N2" >"$T/u1.out" 2>&1 &&
	ok "new cards unlock the token" || { nok "new cards unlock"; tail -5 "$T/u1.out"; }
kr quorum list >"$T/q2" 2>&1
grep "share set $set1" "$T/q2" | grep -vq "PENDING\|RETIRED" && grep "share set $set0" "$T/q2" | grep -q "RETIRED .*replaced by $set1" &&
	ok "pending set active, old set retired (replaced by it)" || { nok "quorum list after settling"; cat "$T/q2"; }
kr audit list 2>/dev/null | grep -q "self-check" && ok "settling logged (self-check pending-share-set)" || nok "settling logged"
expect_fail "old cards now named retired" "which was retired on .* \(replaced by $set1\)" \
	kr --yes ceremony run "$T/un.yaml" --no-prompt --shares "root=file:$R1" --shares "root=file:$R2"

# --- killed after the pending commit and the cards, before C_SetPIN ---------
KEYROOM_TEST_CEREMONY_CRASH=pending-committed kr --yes ceremony run "$T/re.yaml" --no-prompt \
	--shares "root=file:$N1" --shares "root=file:$N2" --cards "$T/c3" >"$T/r2.out" 2>&1
rc=$?
[ $rc = 137 ] && ok "killed before C_SetPIN" || { nok "crash point pending-committed (rc=$rc)"; tail -5 "$T/r2.out"; }
P1=$(kr_card "$T/c3" root 1); P2=$(kr_card "$T/c3" root 2)
set2=$(setid "$P1")
expect_fail "pending cards whose PIN was never set are refused" \
	"share set $set2 was pending and its PIN was never set \(an interrupted PIN change\): it is retired now; the cards of share set $set1 unlock the token" \
	kr --yes ceremony run "$T/un.yaml" --no-prompt --shares "root=file:$P1" --shares "root=file:$P2"
kr --yes ceremony run "$T/un.yaml" --no-prompt --shares "root=file:$N1" --shares "root=file:$N2" >/dev/null 2>&1 &&
	ok "the active cards still unlock" || nok "active cards unlock"
kr quorum list >"$T/q3" 2>&1
grep "share set $set2" "$T/q3" | grep -q "RETIRED .*replaced by $set1" && grep "share set $set1" "$T/q3" | grep -vq "RETIRED" &&
	ok "never-effective pending set retired" || { nok "quorum list after discard"; cat "$T/q3"; }
expect_fail "its cards are named retired afterwards" "which was retired on" \
	kr --yes ceremony run "$T/un.yaml" --no-prompt --shares "root=file:$P1" --shares "root=file:$P2"

# --- an uninterrupted reshare leaves nothing pending -------------------------
kr --yes ceremony run "$T/re.yaml" --no-prompt --shares "root=file:$N1" --shares "root=file:$N2" \
	--cards "$T/c4" >/dev/null 2>&1 && ok "reshare without a crash" || nok "reshare"
kr quorum list 2>&1 | grep -q PENDING && nok "nothing pending after a complete reshare" ||
	ok "nothing pending after a complete reshare"
verify_no_warning "audit log verifies" audit verify "$S/log"
done_testing
