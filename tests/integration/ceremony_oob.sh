#!/usr/bin/env bash
# ceremony_oob.sh - "authenticated out of band" share sets (HSMs with their
# own quorum, PIN-entry devices): the set is recorded and logged as such,
# listed, printed in the transcript, cannot be reshared; logging in with
# the empty PIN is refused with a clear message on a token without
# CKF_PROTECTED_AUTHENTICATION_PATH (SoftHSM2 has none), and nothing is
# logged as unlocked.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
S="$T/st"
kr() { "$KEYROOM" -q --state "$S" "$@"; }

kr_init_state "$S" "$T/init.pin" || { nok "keyroom init"; done_testing; exit 1; }
ok "keyroom init"
cat >"$T/oob.yaml" <<'YAML'
ceremony: oob-setup
purpose: the issuing HSM authenticates its operators itself
quorums:
  issuing: {out_of_band: true}
steps:
  - do: split-pin
    token: issuing
YAML
kr --yes ceremony run "$T/oob.yaml" --no-prompt --media "$T/media" >"$T/run.out" 2>&1 &&
	ok "out-of-band share set recorded" || { nok "oob ceremony"; sed 's/^/# /' "$T/run.out" | tail; }
grep -q "authenticated out of band (PIN-entry device)" "$T/run.out" && ok "step result names the mode" ||
	nok "step result"
kr quorum list >"$T/q" 2>&1
grep -q "token role issuing  authenticated out of band" "$T/q" && ok "quorum list: authenticated out of band" ||
	{ nok "quorum list"; sed 's/^/# /' "$T/q"; }
tr=$(ls "$T/media"/oob-setup-*.transcript.txt 2>/dev/null | head -1)
[ -n "$tr" ] && grep -q "issuing: authenticated out of band (PIN-entry device)" "$tr" &&
	ok "transcript: authenticated out of band" || nok "transcript"
kr audit list >"$T/l1" 2>&1
grep -q "ceremony" "$T/l1" && ok "ceremony step logged" || nok "ceremony step logged"

# Login with the empty PIN: refused on a token without a protected path.
cat >"$T/use.yaml" <<'YAML'
ceremony: oob-use
purpose: unlock the issuing token through its PIN-entry device
quorums:
  issuing: {out_of_band: true}
steps:
  - do: unlock
    token: issuing
YAML
n0=$(kr audit list 2>/dev/null | grep -c quorum-unlock)
expect_fail "empty-PIN login refused: no protected authentication path" \
	"token keyroom-issuing: empty PIN, and the token has no protected authentication path \(CKF_PROTECTED_AUTHENTICATION_PATH\): out-of-band authentication is not possible" \
	kr --yes ceremony run "$T/use.yaml" --no-prompt
n1=$(kr audit list 2>/dev/null | grep -c quorum-unlock)
[ "$n0" = "$n1" ] && ok "no quorum-unlock logged for the refused login" || nok "quorum-unlock logged: $n0 -> $n1"

cat >"$T/re.yaml" <<'YAML'
ceremony: oob-reshare
purpose: reshare an out-of-band set
quorums:
  issuing: {m: 2, n: 3, custodians: [A, B, C]}
steps:
  - do: reshare
    token: issuing
    m: 2
    n: 3
    custodians: [A, B, C]
YAML
expect_fail "reshare of an out-of-band set refused" "token role issuing is authenticated out of band: nothing to reshare" \
	kr --yes ceremony run "$T/re.yaml" --no-prompt
verify_no_warning "audit verify" --state "$S" audit verify
done_testing
