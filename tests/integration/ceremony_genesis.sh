#!/usr/bin/env bash
# ceremony_genesis.sh - the shipped ceremonies end to end with the real
# binary, a fresh SoftHSM2 store and LMDB log: genesis (tokens taken over
# with random PINs split 2-of-3), a reviewed-hash mismatch refused,
# wrong / duplicate / foreign / mistyped / too few shares refused with
# named errors and no key or certificate made, the intermediate under both
# quorums, root CRL revoking nothing then the intermediate, reshare (old
# cards named as retired), rehearsal leaving the real state alone. Every
# certificate and CRL is checked with OpenSSL, GnuTLS and NSS.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
S="$T/st"
SCR="$TOP/ceremony/scripts"
kr() { "$KEYROOM" -q --state "$S" "$@"; }
logsize() { kr audit list 2>/dev/null | grep -c 'ceremony\|init\|key-\|cert-\|quorum\|revoked\|crl'; }

kr_init_state "$S" "$T/init.pin" || { nok "keyroom init"; done_testing; exit 1; }
ok "keyroom init"

# --- genesis ---------------------------------------------------------------
good=$(sha256sum "$SCR/genesis.yaml" | cut -d' ' -f1)
bad=$(printf '%064d' 0)
before=$(logsize)
expect_fail "script with another hash refused" \
	"SHA-256 $good differs from --expect-sha256 0{64}: this is not the reviewed script" \
	kr --yes ceremony run "$SCR/genesis.yaml" --expect-sha256 "$bad" \
	--init-pin "file:$T/init.pin" --cards "$T/cards" --media "$T/media"
[ ! -e "$S/certs/root.pem" ] && [ ! -e "$T/cards" ] && [ "$(logsize)" = "$before" ] &&
	ok "refused script changed nothing (no cards, no root, no log entry)" ||
	nok "refused script changed nothing"
cp "$SCR/genesis.yaml" "$T/edited.yaml"; printf '  - do: note\n    say: "one more step"\n' >>"$T/edited.yaml"
expect_fail "an edited script is not the reviewed one" "differs from --expect-sha256 $good" \
	kr --yes ceremony run "$T/edited.yaml" --expect-sha256 "$good" --init-pin "file:$T/init.pin"
expect_fail "genesis needs the initial PIN when tokens exist" "give its initial PIN with --init-pin" \
	kr --yes ceremony run "$SCR/genesis.yaml" --no-prompt --cards "$T/c0"
kr --yes ceremony run "$SCR/genesis.yaml" --expect-sha256 "$good" \
	--init-pin "file:$T/init.pin" --cards "$T/cards" --media "$T/media" >"$T/genesis.out" 2>&1 &&
	ok "genesis ran" || { nok "genesis ran"; tail -20 "$T/genesis.out"; }
grep -q "SHA-256 $good" "$T/genesis.out" && ok "script hash printed" || nok "script hash printed"
n=$(ls "$T/cards"/root-*.card 2>/dev/null | wc -l); m=$(ls "$T/cards"/issuing-*.card 2>/dev/null | wc -l)
[ "$n" = 3 ] && [ "$m" = 3 ] && ok "3 root and 3 issuing share cards" || nok "cards: $n root, $m issuing"
[ "$(stat -c %a "$T/cards/$(ls "$T/cards" | head -1)")" = 600 ] && ok "cards are 0600" || nok "cards are 0600"
expect_fail "the initial PIN no longer opens the root token" "wrong PIN|CKR_PIN_INCORRECT" \
	kr ca intermediate --pin "file:$T/init.pin"
check "root verifies (openssl -x509_strict)" openssl verify -x509_strict -CAfile "$T/media/root.pem" "$T/media/root.pem"
cmp -s "$T/media/root.pem" "$S/certs/root.pem" && ok "exported root equals certs/root.pem" || nok "exported root"
tr=$(ls "$T/media"/genesis-*.transcript.txt 2>/dev/null | head -1)
[ -n "$tr" ] && grep -q "^Final signed audit checkpoint" "$tr" && grep -q "^Signatures" "$tr" &&
	grep -q "Witness Witness 1" "$tr" && grep -q "self-sign-root" "$tr" &&
	ok "transcript with steps, checkpoint and signature lines" || nok "transcript"
kr quorum list >"$T/q" && grep -q "token role root  2 of 3" "$T/q" && grep -q "token role issuing  2 of 3" "$T/q" &&
	ok "quorum list shows both share sets" || nok "quorum list"
verify_no_warning "audit log verifies after genesis, no same-commit warning" audit verify "$S/log"

R1=$(kr_card "$T/cards" root 1); R2=$(kr_card "$T/cards" root 2); R3=$(kr_card "$T/cards" root 3)
I1=$(kr_card "$T/cards" issuing 1); I2=$(kr_card "$T/cards" issuing 2); I3=$(kr_card "$T/cards" issuing 3)
rootset=$(sed -n 's/^# share set \([0-9a-f]*\),.*/\1/p' "$R1")
issset=$(sed -n 's/^# share set \([0-9a-f]*\),.*/\1/p' "$I1")

# --- refused shares: named, and no key or certificate made ----------------
INT="$SCR/intermediate.yaml"
run_int() { kr --yes ceremony run "$INT" --no-prompt "$@"; }
expect_fail "too few shares" "1 of 2 shares entered for share set $rootset \(root\)" \
	run_int --shares "root=file:$R1" --shares "issuing=file:$I1" --shares "issuing=file:$I2"
expect_fail "duplicate share" "share 1 of share set $rootset already entered" \
	run_int --shares "root=file:$R1" --shares "root=file:$R1"
expect_fail "share of the other quorum" "share 1 belongs to share set $issset \(issuing\), not $rootset \(root\)" \
	run_int --shares "root=file:$I1" --shares "root=file:$R2"
sed '4s/^\(.\)/\1/; 4y/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567/BCDEFGHIJKLMNOPQRSTUVWXYZ234567A/' "$R2" >"$T/typo.card"
expect_fail "mistyped card names its line" "share card line 2: checksum [A-Z2-7]{2} does not match \(mistyped\?\)" \
	run_int --shares "root=file:$R1" --shares "root=file:$T/typo.card"
expect_fail "check-card names a mistyped card" "line 2: checksum" kr quorum check-card "file:$T/typo.card"
check "check-card accepts a good card" kr quorum check-card "root=file:$R3"
kr quorum check-card "file:$R3" 2>&1 | grep -q "^share 3 of share set $rootset (root, .*): good\$" &&
	ok "check-card without a role finds the card's own set" || nok "check-card without a role"
expect_fail "check-card of an operator card as a root card" \
	"share 1 belongs to share set $issset \(issuing\), not $rootset \(root\)" kr quorum check-card "root=file:$I1"
kr quorum show-card "file:$I1" 2>/dev/null | grep -q "token: *issuing" &&
	ok "show-card prints a checked card" || nok "show-card"
expect_fail "show-card names a mistyped card" "line 2: checksum" kr quorum show-card "file:$T/typo.card"
"$KEYROOM" -q --state "$S" --json quorum check-card "file:$R3" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["share"] == 3 and d["label"] == "root" and d["result"] == "good" and d["share_set"] == sys.argv[1], d
' "$rootset" && ok "check-card --json: share, set, label, custodian, result" || nok "check-card --json"
v=$(kr audit vkey); vj=$("$KEYROOM" -q --state "$S" --json audit vkey | python3 -c 'import json,sys; print(json.load(sys.stdin)["vkey"])')
[ -n "$v" ] && [ "$v" = "$vj" ] && ok "audit vkey --json carries the same vkey" || nok "audit vkey --json ('$v' / '$vj')"
w=$(kr ceremony words 00ff10 | sed 's/^ *[0-9]* *//' | tr -s ' \n' ' ' | sed 's/ *$//')
wj=$("$KEYROOM" -q --json ceremony words 00ff10 | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["hex"] == "00ff10"; print(d["words"])')
[ -n "$w" ] && [ "$w" = "$wj" ] && ok "ceremony words --json: the same words ($wj)" || nok "ceremony words --json ('$w' / '$wj')"
"$KEYROOM" -q --json ceremony steps | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = {e["step"]: e["keys"] for e in d}
assert "install-policy" in s and "promote" in s and "token" in s["unlock"], s
' && ok "ceremony steps --json lists every step with its keys" || nok "ceremony steps --json"
if command -v zbarimg >/dev/null; then
	code=$(zbarimg -q --raw "$R2.png" 2>/dev/null | head -1)
	[ ${#code} = 84 ] && KR_SCANNED="$code" kr quorum check-card "root=env:KR_SCANNED" >/dev/null 2>&1 &&
		ok "the card's PNG QR scans (zbarimg) to a code the appliance accepts" || nok "QR scan of the card"
else skip "QR scan" "zbarimg missing"; fi
python3 -c 'import sys,xml.dom.minidom as m; d=m.parse(sys.argv[1]); assert d.documentElement.tagName=="svg"' "$R2.svg" &&
	ok "the card's SVG QR is an SVG document" || nok "card SVG"
[ ! -e "$S/certs/intermediate.pem" ] && ! kr audit list 2>/dev/null | grep -q "key-generate.*intermediate" &&
	ok "refused shares: no intermediate key or certificate" || nok "refused shares changed state"

# --- intermediate -------------------------------------------------------------
run_int --shares "root=file:$R3" --shares "root=file:$R1" --shares "issuing=file:$I2" \
	--shares "issuing=file:$I3" --media "$T/media" >"$T/int.out" 2>&1 &&
	ok "intermediate ceremony ran" || { nok "intermediate ceremony"; tail -20 "$T/int.out"; }
grep -q "token keyroom-root unlocked by shares 1,3" "$T/int.out" && ok "unlock names the share indices" || nok "unlock indices"
check "intermediate verifies (openssl -x509_strict)" openssl verify -x509_strict -CAfile "$S/certs/root.pem" "$S/certs/intermediate.pem"
check "intermediate verifies (GnuTLS certtool)" certtool --verify --load-ca-certificate "$S/certs/root.pem" --infile "$S/certs/intermediate.pem"
if command -v certutil >/dev/null && command -v vfychain >/dev/null; then
	N="$T/nss"; mkdir "$N"; certutil -N -d "sql:$N" --empty-password
	certutil -A -d "sql:$N" -n root -t "CT,C,C" -i "$S/certs/root.pem"
	certutil -A -d "sql:$N" -n int -t ",," -i "$S/certs/intermediate.pem"
	certutil -V -d "sql:$N" -n int -u L 2>&1 | grep -q "certificate is valid" &&
		ok "intermediate verifies as a CA (NSS certutil -V -u L)" || nok "NSS certutil -V -u L"
else skip "NSS" "certutil missing"; fi
kr audit list 2>/dev/null | grep -q quorum-unlock && ok "quorum-unlock logged" || nok "quorum-unlock logged"

# --- revoke the intermediate on the root CRL -------------------------------
iserial=$(openssl x509 -in "$S/certs/intermediate.pem" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^0*//')
cat >"$T/rev.yaml" <<YAML
ceremony: revoke-test
purpose: CRLs
quorums:
  root: {m: 2, n: 3, custodians: [Custodian A, Custodian B, Custodian C]}
steps:
  - do: issue-crl
    issuer: root
  - do: revoke
    issuer: root
    serial: "$iserial"
    reason: superseded
  - do: issue-crl
    issuer: root
    next_days: 365
YAML
kr --yes ceremony run "$T/rev.yaml" --no-prompt --shares "root=file:$R2" --shares "root=file:$R3" >"$T/rev.out" 2>&1 &&
	ok "revoke ceremony ran" || { nok "revoke ceremony"; tail -10 "$T/rev.out"; }
check "root CRL verifies (openssl crl)" openssl crl -in "$S/certs/root.crl.pem" -CAfile "$S/certs/root.pem" -noout
openssl crl -in "$S/certs/root.crl.pem" -noout -text >"$T/crl.txt"
grep -qi "Serial Number: *0*$iserial" "$T/crl.txt" && grep -q "CRL Number: *$" "$T/crl.txt" -A1 &&
	ok "root CRL lists the intermediate" || nok "root CRL lists the intermediate"
grep -A1 "X509v3 CRL Number" "$T/crl.txt" | grep -q "^ *2$" && ok "CRL number 2" || nok "CRL number 2"
expect_fail "chain with the revoked intermediate fails" "certificate revoked" \
	openssl verify -x509_strict -crl_check -CAfile "$S/certs/root.pem" -CRLfile "$S/certs/root.crl.pem" "$S/certs/intermediate.pem"
sed -i 's/reason: superseded/reason: keyCompromise/' "$T/rev.yaml"
expect_fail "revoking twice refused" "already revoked" \
	kr --yes ceremony run "$T/rev.yaml" --no-prompt --shares "root=file:$R2" --shares "root=file:$R3"
sed -i "s/serial: \".*\"/serial: \"0abc\"/" "$T/rev.yaml"
expect_fail "revoking an unknown serial refused" "serial abc was never issued by the root CA" \
	kr --yes ceremony run "$T/rev.yaml" --no-prompt --shares "root=file:$R2" --shares "root=file:$R3"

# --- reshare: new cards; the old ones are named as retired ------------------
kr --yes ceremony run "$SCR/reshare-root.yaml" --no-prompt --shares "root=file:$R1" \
	--shares "root=file:$R2" --cards "$T/cards2" >"$T/reshare.out" 2>&1 &&
	ok "reshare ran" || { nok "reshare"; tail -10 "$T/reshare.out"; }
[ "$(ls "$T/cards2"/root-*.card 2>/dev/null | wc -l)" = 4 ] && ok "4 new root cards" || nok "4 new root cards"
expect_fail "old card after reshare: retired" "share 3 belongs to share set $rootset \(root\), which was retired on .* \(replaced by [0-9a-f]{16}\)" \
	kr quorum check-card "root=file:$R3"
N1=$(kr_card "$T/cards2" root 1); N2=$(kr_card "$T/cards2" root 2); N4=$(kr_card "$T/cards2" root 4)
kr --yes ceremony run "$T/rev.yaml" --no-prompt --shares "root=file:$R1" --shares "root=file:$R3" >/dev/null 2>"$T/err"
grep -q "was retired on" "$T/err" && ok "old cards no longer unlock the root" || nok "old cards refused"
sed -i '/^  - do: revoke/,/reason/d' "$T/rev.yaml"
kr --yes ceremony run "$T/rev.yaml" --no-prompt --shares "root=file:$N1" --shares "root=file:$N2" \
	--shares "root=file:$N4" >/dev/null 2>&1 && ok "3 of the new 4 cards unlock the root" || nok "new cards unlock"
verify_no_warning "audit log verifies at the end, no warning" audit verify "$S/log"

# --- rehearsal: throwaway state ----------------------------------------------
before=$(logsize)
kr --yes ceremony run "$INT" --rehearse --no-prompt --media "$T/rmedia" >"$T/reh.out" 2>&1 &&
	ok "intermediate rehearsed" || { nok "rehearsal"; tail -10 "$T/reh.out"; }
[ "$(logsize)" = "$before" ] && ls "$T/rmedia"/*-rehearsal.transcript.txt >/dev/null 2>&1 &&
	ok "rehearsal left the real log alone and wrote a rehearsal transcript" || nok "rehearsal isolation"
done_testing
