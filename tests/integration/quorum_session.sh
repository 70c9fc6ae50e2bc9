#!/usr/bin/env bash
# quorum_session.sh - signing sessions with the real binary, SoftHSM2 and
# LMDB: after genesis + intermediate ceremonies the issuing token is under
# the operators' 2-of-3 quorum; batch sign refuses to run outside a
# session; too few / wrong shares open no session; a session with two
# operator cards signs a fleetsim batch whose certificates verify; the
# session's open/close and quorum unlock are logged and its id is useless
# afterwards; a device is then revoked by ceremony and the intermediate
# CRL makes OpenSSL refuse it.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
S="$T/st"; C="$T/cards"; SCR="$TOP/ceremony/scripts"
kr() { "$KEYROOM" -q --state "$S" "$@"; }
[ -x "$TOOLS/fleetsim" ] || { skip "sessions" "fleetsim not built"; done_testing; exit 0; }

kr_init_state "$S" "$T/init.pin" &&
	sed -i -e 's/^    algorithms: \[p256\]$/    algorithms: [p256, p384]/' \
	    -e 's/^    hardware_module_name: false$/    hardware_module_name: true/' "$S/keyroom.yaml" &&
	kr --yes ceremony run "$SCR/genesis.yaml" --init-pin "file:$T/init.pin" --cards "$C" \
	    --media "$T/m0" --no-prompt >"$T/g.out" 2>&1 &&
	kr --yes ceremony run "$SCR/intermediate.yaml" --no-prompt --media "$T/m1" \
	    --shares "root=file:$(kr_card "$C" root 1)" --shares "root=file:$(kr_card "$C" root 2)" \
	    --shares "issuing=file:$(kr_card "$C" issuing 1)" --shares "issuing=file:$(kr_card "$C" issuing 2)" \
	    >"$T/i.out" 2>&1 ||
	{ nok "genesis + intermediate ceremonies"; tail -5 "$T/g.out" "$T/i.out"; done_testing; exit 1; }
ok "genesis + intermediate ceremonies"
O1=$(kr_card "$C" issuing 1); O2=$(kr_card "$C" issuing 2); O3=$(kr_card "$C" issuing 3)
R1=$(kr_card "$C" root 1); R2=$(kr_card "$C" root 2)
iset=$(sed -n 's/^# share set \([0-9a-f]*\),.*/\1/p' "$O1")

"$TOOLS/fleetsim" --out "$T/f1" --seed 21 --devices 6 --quota 20 --manifest-on-media \
	--batch-id lot-q1 >/dev/null || nok "fleetsim"
M="$T/f1/media"
sessions() { kr audit list 2>/dev/null | grep -c "session-open"; }

# Under quorum the policy comes only through the install-policy ceremony.
cp "$T/f1/policy.yaml" "$T/f1/signer.crt" "$S/"
expect_fail "under quorum, a policy put in place by hand signs nothing" \
	"the issuing token is under quorum \(share set $iset\) but no policy was installed by the install-policy ceremony" \
	kr session run --no-prompt --shares "issuing=file:$O1" --shares "issuing=file:$O2" -- batch sign "$M"
[ ! -e "$M/keyroom-out" ] && ok "... and wrote nothing" || nok "hand-placed policy: output written"
rm -f "$S/policy.yaml" "$S/signer.crt"
kr_install_policy "$S" "$C" "$T/p1" "$T/f1/policy.yaml" "$T/f1/signer.crt" &&
	ok "the policy installed by two root custodians" || { nok "install-policy"; tail -5 "$T/p1/install.out"; }

expect_fail "batch sign outside a session is refused" \
	"the issuing token is under quorum \(share set $iset\): run batch sign inside keyroom session run" \
	kr batch sign "$M" --pin "file:$T/init.pin"
KEYROOM_SESSION=0123456789abcdef0123456789abcdef expect_fail "a made-up session id is refused" \
	"session 0123456789abcdef0123456789abcdef unknown" kr batch sign "$M" --pin "file:$T/init.pin"
expect_fail "one operator card opens no session" "1 of 2 shares entered for share set $iset \(issuing\)" \
	kr session run --no-prompt --shares "issuing=file:$O1" -- batch sign "$M"
expect_fail "a root card is not an operator card" "share 1 belongs to share set [0-9a-f]{16} \(root\), not $iset \(issuing\)" \
	kr session run --no-prompt --shares "file:$R1" --shares "file:$O2" -- batch sign "$M"
expect_fail "the same operator card twice" "share 2 of share set $iset already entered" \
	kr session run --no-prompt --shares "file:$O2" --shares "file:$O2" -- batch sign "$M"
expect_fail "a session runs only batch sign" "a session runs 'batch sign \.\.\.'" \
	kr session run --no-prompt --shares "file:$O2" --shares "file:$O3" -- ca issue x.csr
[ "$(sessions)" = 1 ] && [ ! -e "$M/keyroom-out" ] && ok "refusals opened no other session and signed nothing" ||
	nok "refusals changed state"

kr session run --no-prompt --shares "issuing=file:$O3" --shares "issuing=file:$O1" -- batch sign "$M" \
	>"$T/s.out" 2>&1; rc=$?
[ $rc = 0 ] && ok "session with operators 3 and 1 signs the batch (exit 0)" || { nok "session (rc=$rc)"; tail -5 "$T/s.out"; }
sid=$(sed -n 's/^session \([0-9a-f]*\) open until.*/\1/p' "$T/s.out")
grep -q "token keyroom-issuing unlocked by shares 1,3" "$T/s.out" && ok "unlock names shares 1,3" || nok "unlock names shares"
grep -q "session $sid closed: batch exit 0" "$T/s.out" && ok "session closed when the batch ended" || nok "session closed"
O="$M/keyroom-out/lot-q1"
bad=0; n=0
for c in "$O"/certs/*.pem; do
	n=$((n+1))
	openssl verify -x509_strict -CAfile "$S/certs/root.pem" -untrusted "$S/certs/intermediate.pem" "$c" >/dev/null 2>&1 || bad=$((bad+1))
done
[ $n = 6 ] && [ $bad = 0 ] && ok "6 device certificates verify to the ceremony's root" || nok "$bad of $n certificates fail"
kr audit list >"$T/log" 2>/dev/null
grep -q "session-open" "$T/log" && grep -q "session-close" "$T/log" && grep -q "quorum-unlock" "$T/log" &&
	ok "quorum-unlock, session-open and session-close logged" || nok "session entries"
KEYROOM_SESSION=$sid expect_fail "a closed session's id signs nothing" "session $sid is closed" \
	kr batch sign "$M" --pin "file:$T/init.pin"

# --- a session ends on its timeout -------------------------------------------
"$TOOLS/fleetsim" --out "$T/f2" --seed 22 --devices 300 --quota 1000 --manifest-on-media \
	--signer "$T/f1" --batch-id lot-q2 >/dev/null &&
	kr_install_policy "$S" "$C" "$T/p2" "$T/f2/policy.yaml" "$T/f2/signer.crt" || nok "second policy installed"
"$KEYROOM" -q --state "$S" session run --timeout 1 --no-prompt --shares "file:$O1" --shares "file:$O2" \
	-- batch sign "$T/f2/media" >"$T/to.out" 2>&1 &
sp=$!; child=
for i in $(seq 1 500); do child=$(pgrep -P $sp | head -1); [ -n "$child" ] && break; sleep 0.01; done
[ -n "$child" ] && kill -STOP "$child" 2>/dev/null	# a batch that never finishes
wait $sp; rc=$?
[ $rc = 1 ] && grep -q "session [0-9a-f]* closed: timeout after 1s" "$T/to.out" &&
	grep -q "timed out after 1 s: batch terminated" "$T/to.out" &&
	ok "a stuck batch is terminated at the session timeout (exit 1)" || { nok "timeout (rc=$rc)"; tail -3 "$T/to.out"; }
[ ! -e "$T/f2/media/keyroom-out/lot-q2" ] && ok "the terminated batch released nothing" || nok "timeout released output"
kr audit list 2>/dev/null | grep session-close | tail -1 | grep -q . && ok "timeout session-close logged" || nok "close logged"

# --- revoke one device, intermediate CRL ------------------------------------
dev=$(ls "$O"/certs/*.pem | head -1)
serial=$(openssl x509 -in "$dev" -noout -serial | cut -d= -f2 | tr A-F a-f)
cat >"$T/revoke.yaml" <<YAML
ceremony: revoke-device
purpose: revoke one device
quorums:
  issuing: {m: 2, n: 3, custodians: [Operator A, Operator B, Operator C]}
steps:
  - do: revoke
    issuer: intermediate
    serial: "$serial"
    reason: keyCompromise
  - do: issue-crl
    issuer: intermediate
    next_days: 7
  - do: export-cert
    what: intermediate-crl
YAML
kr --yes ceremony run "$T/revoke.yaml" --no-prompt --media "$T/m2" \
	--shares "issuing=file:$O2" --shares "issuing=file:$O3" >"$T/r.out" 2>&1 &&
	ok "revoke ceremony (operators' quorum)" || { nok "revoke ceremony"; tail -5 "$T/r.out"; }
cat "$S/certs/root.pem" "$S/certs/intermediate.pem" >"$T/cas.pem"
check "intermediate CRL verifies (openssl crl -CAfile)" openssl crl -in "$T/m2/intermediate.crl.pem" -CAfile "$T/cas.pem" -noout
expect_fail "the revoked device fails openssl verify -crl_check" "certificate revoked" \
	openssl verify -x509_strict -crl_check -CAfile "$S/certs/root.pem" -untrusted "$S/certs/intermediate.pem" \
	-CRLfile "$T/m2/intermediate.crl.pem" "$dev"
other=$(ls "$O"/certs/*.pem | sed -n 2p)
check "another device still verifies with the CRL" openssl verify -x509_strict -crl_check -CAfile "$S/certs/root.pem" \
	-untrusted "$S/certs/intermediate.pem" -CRLfile "$T/m2/intermediate.crl.pem" "$other"
if command -v crlutil >/dev/null; then
	N="$T/nss"; mkdir "$N"; certutil -N -d "sql:$N" --empty-password
	certutil -A -d "sql:$N" -n root -t "CT,C,C" -i "$S/certs/root.pem"
	certutil -A -d "sql:$N" -n int -t ",," -i "$S/certs/intermediate.pem"
	openssl crl -in "$T/m2/intermediate.crl.pem" -outform der -out "$T/crl.der"
	check "NSS crlutil imports the intermediate CRL" crlutil -I -d "sql:$N" -i "$T/crl.der" -B
else skip "NSS crlutil" "not installed"; fi
check "certtool reads the CRL and checks its signature" certtool --crl-info --infile "$T/m2/intermediate.crl.pem" \
	--load-ca-certificate "$S/certs/intermediate.pem"
verify_no_warning "audit log verifies, no warning" audit verify "$S/log"
done_testing
