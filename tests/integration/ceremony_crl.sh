#!/usr/bin/env bash
# ceremony_crl.sh - CRL numbers in ceremonies come from the log: a state
# made with `keyroom ca` (known PIN) issues CRLs 1 and 7 with `ca crl`;
# a ceremony then takes the issuing token over (random PIN, 2-of-3 cards)
# and its issue-crl step must use 8 (highest logged + 1), not "count + 1"
# (3). The root and intermediate
# made by `keyroom ca` are logged intent-before-signature (no verify
# warning).
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
S="$T/st"
kr() { "$KEYROOM" -q --state "$S" "$@"; }
crlnum() { openssl crl -in "$1" -noout -text | grep -A1 "X509v3 CRL Number" | tail -1 | tr -d ' '; }

kr_ca_setup "$S" || { nok "init + ca root + ca intermediate"; done_testing; exit 1; }
ok "init + ca root + ca intermediate"
check "ca crl (number 1)" kr ca crl --pin "file:$S.pin" --out "$T/c1.pem"
check "ca crl --number 7" kr ca crl --pin "file:$S.pin" --number 7 --out "$T/c7.pem"
[ "$(crlnum "$T/c7.pem")" = 7 ] && ok "CRL number 7" || nok "CRL number 7: $(crlnum "$T/c7.pem")"

cat >"$T/crl.yaml" <<YAML
ceremony: crl-after-ca
purpose: take the issuing token over and issue its CRL
quorums:
  issuing: {m: 2, n: 3, custodians: [Operator A, Operator B, Operator C]}
steps:
  - do: init-tokens
    tokens: [issuing]
  - do: split-pin
    token: issuing
  - do: issue-crl
    issuer: intermediate
YAML
kr --yes ceremony run "$T/crl.yaml" --no-prompt --init-pin "file:$S.pin" --cards "$T/cards" \
	>"$T/run.out" 2>&1 && ok "ceremony issue-crl ran" || { nok "ceremony ran"; sed 's/^/# /' "$T/run.out" | tail -15; }
crl=$(ls "$S"/certs/*intermediate*.crl.pem "$S"/certs/*issuing*.crl.pem 2>/dev/null | head -1)
[ -n "$crl" ] && [ "$(crlnum "$crl")" = 8 ] && ok "ceremony CRL number 8: highest logged (7) + 1, not count + 1" ||
	nok "ceremony CRL number: ${crl:-no CRL} $( [ -n "$crl" ] && crlnum "$crl")"
[ -n "$crl" ] && check "ceremony CRL verifies (openssl crl)" \
	openssl crl -in "$crl" -CAfile "$S/certs/intermediate.pem" -noout
verify_no_warning "audit verify: no warning" --state "$S" audit verify
done_testing
