#!/usr/bin/env bash
# rotation_crash.sh - kill -9 at every crash point of the rotation
# ceremony's promote step (from the marker it writes first to the removal
# of that marker after its entry commits): while the promotion is
# unfinished nothing is issued; the promote.yaml ceremony then finishes
# it, and the state is the one an uninterrupted rotation leaves - the new
# P-384 root and intermediate current, the old ones retired, a batch signs
# and its certificates verify to the new root, the audit log verifies.
# Also: a promote refused before it moves anything (old key not destroyed)
# leaves no marker.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
S="$T/st"; C="$T/cards"; SCR="$TOP/ceremony/scripts"
kr() { "$KEYROOM" -q --state "$S" "$@"; }
[ -x "$TOOLS/fleetsim" ] || { skip "rotation crash" "fleetsim not built"; done_testing; exit 0; }
quorum() { kr_quorum_shares "$C"; }

kr_quorum_ca "$S" "$C" &&
	"$TOOLS/fleetsim" --out "$T/f" --seed 41 --devices 3 --quota 500 --manifest-on-media \
	    --batch-id rc >/dev/null &&
	kr_install_policy "$S" "$C" "$T/pol" "$T/f/policy.yaml" "$T/f/signer.crt" ||
	{ nok "genesis, intermediate, policy"; done_testing; exit 1; }
ok "genesis, intermediate and policy"
cp "$S/certs/root.pem" "$T/old-root.pem"
cp -a "$S" "$T/base"
restore() { rm -rf "$S"; cp -a "$T/base" "$S"; }
rotate() { # MEDIA [env...]: the rotation ceremony
	local m="$1"; shift
	env "$@" "$KEYROOM" -q --state "$S" --yes ceremony run "$SCR/rotation.yaml" --no-prompt \
	    --media "$m" $(quorum)
}
signs() { # ID: a copy of the fleet's stick, signed in a session; prints the certificates' directory
	rm -rf "$T/media-$1"; cp -r "$T/f/media" "$T/media-$1"
	kr session run --no-prompt --shares "issuing=file:$(kr_card "$C" issuing 1)" \
	    --shares "issuing=file:$(kr_card "$C" issuing 2)" -- batch sign "$T/media-$1" >"$T/b-$1.out" 2>&1
}
# state_ok MEDIA: the state an uninterrupted rotation leaves
state_ok() {
	local m="$1" bad=0 c
	cmp -s "$S/certs/root.pem" "$m/new-root.pem" || { echo "# root.pem is not the new root"; bad=1; }
	openssl x509 -in "$S/certs/root.pem" -noout -text 2>/dev/null | grep -q "NIST CURVE: P-384" || bad=1
	openssl verify -x509_strict -CAfile "$S/certs/root.pem" "$S/certs/intermediate.pem" >/dev/null 2>&1 ||
		{ echo "# intermediate.pem does not verify to root.pem"; bad=1; }
	cmp -s "$(ls "$S/certs"/retired-*-root.pem 2>/dev/null | head -1)" "$T/old-root.pem" ||
		{ echo "# the old root is not retired"; bad=1; }
	[ ! -e "$S/certs/root-next.pem" ] && [ ! -e "$S/certs/intermediate-next.pem" ] &&
		[ ! -e "$S/certs/promote.inprogress" ] || { echo "# next files or the marker left"; bad=1; }
	[ "$(grep -c '^    algorithm: p384$' "$S/keyroom.yaml")" = 2 ] ||
		{ echo "# keyroom.yaml: root and intermediate profiles not p384"; bad=1; }
	kr audit verify >/dev/null 2>&1 || { echo "# audit verify"; bad=1; }
	return $bad
}
certs_ok() { # ID: the batch signed 3 and they verify to the current root
	local n=0 c
	grep -q "3 signed, 0 rejected" "$T/b-$1.out" || return 1
	for c in "$T/media-$1/keyroom-out/rc/certs/"*.pem; do
		openssl verify -x509_strict -CAfile "$S/certs/root.pem" -untrusted "$S/certs/intermediate.pem" \
		    "$c" >/dev/null 2>&1 && n=$((n + 1))
	done
	[ "$n" = 3 ]
}

# --- the uninterrupted rotation, traced: the promote step's crash points
rotate "$T/rot0" KEYROOM_TEST_CRASH_TRACE=1 >"$T/trace.out" 2>&1 && state_ok "$T/rot0" &&
	ok "an uninterrupted rotation" || { nok "uninterrupted rotation"; tail -5 "$T/trace.out"; }
signs ref && certs_ok ref && ok "... signs under the new root" || { nok "batch after the rotation"; tail -3 "$T/b-ref.out"; }
first=$(sed -n 's/^keyroom: crash point \([0-9]*\): promote: begun$/\1/p' "$T/trace.out" | head -1)
last=$(sed -n 's/^keyroom: crash point \([0-9]*\): promote: logged, marker not yet removed$/\1/p' "$T/trace.out" | head -1)
if [ -z "$first" ] || [ -z "$last" ] || [ "$last" -le "$first" ]; then
	nok "the promote step's crash points ('$first'..'$last')"; done_testing; exit 1
fi
kinds=$(sed -n 's/^keyroom: crash point \([0-9]*\): \(.*\)$/\1 \2/p' "$T/trace.out" |
	awk -v a="$first" -v b="$last" '$1 >= a && $1 <= b { $1 = ""; print substr($0, 2) }' |
	sort | uniq -c | sed 's/^ *//' | paste -sd';' | sed 's/;/; /g')
ok "the promote step has crash points $first..$last: $kinds"

# --- kill -9 at each of them, then the promote.yaml ceremony
refused=0; finished=0; fails=
for N in $(seq "$first" "$last"); do
	restore
	rotate "$T/rot$N" KEYROOM_TEST_AUDIT_CRASH_AT=$N >"$T/r$N.out" 2>&1 && { fails="$fails $N(not-killed)"; continue; }
	[ -e "$S/certs/promote.inprogress" ] || { fails="$fails $N(no-marker)"; continue; }
	rm -rf "$T/media-x$N"; cp -r "$T/f/media" "$T/media-x$N"
	out=$(kr session run --no-prompt --shares "issuing=file:$(kr_card "$C" issuing 1)" \
	    --shares "issuing=file:$(kr_card "$C" issuing 2)" -- batch sign "$T/media-x$N" 2>&1)
	if printf '%s' "$out" | grep -q "a root promotion began and did not finish" &&
	    [ ! -e "$T/media-x$N/keyroom-out" ]; then refused=$((refused + 1)); else fails="$fails $N(not-refused)"; continue; fi
	"$KEYROOM" -q --state "$S" --yes ceremony run "$SCR/promote.yaml" --no-prompt --media "$T/rot$N" \
	    $(quorum) >"$T/p$N.out" 2>&1 || { fails="$fails $N(promote)"; tail -3 "$T/p$N.out" | sed 's/^/#   /'; continue; }
	state_ok "$T/rot$N" >"$T/s$N.out" || { fails="$fails $N(state)"; cat "$T/s$N.out"; continue; }
	signs "$N" && certs_ok "$N" || { fails="$fails $N(batch)"; tail -3 "$T/b-$N.out" | sed 's/^/#   /'; continue; }
	finished=$((finished + 1))
done
total=$((last - first + 1))
[ "$refused" = "$total" ] && ok "killed at each of the $total points: nothing issued while the promotion is unfinished" ||
	nok "issuance refused at $refused of $total points:$fails"
[ "$finished" = "$total" ] &&
	ok "... and promote.yaml finishes each: new root and intermediate current, old retired, a batch verifies, audit verify" ||
	nok "finished at $finished of $total points:$fails"

# --- a promote that cannot move everything moves nothing
restore
sed '/do: destroy-key/,+2d' "$SCR/rotation.yaml" | sed 's/^ceremony: rotation$/ceremony: rotation-keep/' >"$T/keep.yaml"
grep -q destroy-key "$T/keep.yaml" && nok "test script still destroys keys"
expect_fail "promote with the old keys still in the tokens is refused" \
    "'[^']*' still exists: destroy the old root key first \(destroy-key\)" \
    "$KEYROOM" -q --state "$S" --yes ceremony run "$T/keep.yaml" --no-prompt --media "$T/keep" $(quorum)
[ ! -e "$S/certs/promote.inprogress" ] && cmp -s "$S/certs/root.pem" "$T/old-root.pem" &&
	ok "... no marker, the old root current" || nok "refused promote left a marker or moved the root"
signs keep && grep -q "3 signed, 0 rejected" "$T/b-keep.out" && ok "... and signing goes on under the old root" ||
	{ nok "signing after a refused promote"; tail -3 "$T/b-keep.out"; }
done_testing
