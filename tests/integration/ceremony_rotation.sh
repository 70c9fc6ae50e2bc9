#!/usr/bin/env bash
# ceremony_rotation.sh - the whole life with the real binary, SoftHSM2 and
# LMDB: genesis (P-256 root) -> intermediate -> signing session -> batch
# -> rotation to P-384 (cross certificates both ways, CMS update package,
# new intermediate, old keys destroyed under quorum) -> a batch under the
# new chain. Old devices' certificates keep verifying through the
# new-to-old cross certificate, and the package verifies with
# `openssl cms -verify` against the old root alone.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
S="$T/st"; C="$T/cards"; SCR="$TOP/ceremony/scripts"
kr() { "$KEYROOM" -q --state "$S" "$@"; }
[ -x "$TOOLS/fleetsim" ] || { skip "rotation" "fleetsim not built"; done_testing; exit 0; }
card() { kr_card "$C" "$1" "$2"; }
quorum() { kr_quorum_shares "$C"; }

kr_quorum_ca "$S" "$C" || { nok "genesis + intermediate"; done_testing; exit 1; }
ok "genesis + intermediate"
cp "$S/certs/root.pem" "$T/old-root.pem"; cp "$S/certs/intermediate.pem" "$T/old-int.pem"
openssl x509 -in "$T/old-root.pem" -noout -text | grep -q "NIST CURVE: P-256" && ok "old root is P-256" || nok "old root P-256"

batch() {	# batch N ID: a fleetsim batch (one vendor signer for all), its
		# policy installed by the root custodians, signed in a session
	local sg=; [ "$2" != lot-old ] && sg="--signer $T/lot-old"
	"$TOOLS/fleetsim" --out "$T/$2" --seed "$1" --devices 3 --quota 50 --manifest-on-media \
		$sg --batch-id "$2" >/dev/null &&
	kr_install_policy "$S" "$C" "$T/pol-$2" "$T/$2/policy.yaml" "$T/$2/signer.crt" &&
	kr session run --no-prompt --shares "file:$(card issuing 1)" --shares "file:$(card issuing 3)" \
		-- batch sign "$T/$2/media" >"$T/$2.out" 2>&1
}
batch 31 lot-old && ok "batch under the old chain" || { nok "batch under the old chain"; tail -5 "$T/lot-old.out"; }
olddev=$(ls "$T/lot-old/media/keyroom-out/lot-old/certs/"*.pem | head -1)

good=$(sha256sum "$SCR/rotation.yaml" | cut -d' ' -f1)
kr --yes ceremony run "$SCR/rotation.yaml" --expect-sha256 "$good" --no-prompt --media "$T/rot" $(quorum) \
	>"$T/r.out" 2>&1 && ok "rotation ceremony ran" || { nok "rotation ceremony"; grep -E "FAILED|keyroom:" "$T/r.out" | head -5; }
R="$T/rot"
openssl x509 -in "$S/certs/root.pem" -noout -text | grep -q "NIST CURVE: P-384" && ok "new root is P-384" || nok "new root P-384"
! cmp -s "$S/certs/root.pem" "$T/old-root.pem" && cmp -s "$R/new-root.pem" "$S/certs/root.pem" &&
	ok "certs/root.pem is the new root" || nok "root promoted"
ls "$S/certs"/retired-*-root.pem >/dev/null 2>&1 && ok "old root kept as retired-<serial>-root.pem" || nok "old root archived"

check "new root self-verifies (openssl -x509_strict)" openssl verify -x509_strict -CAfile "$S/certs/root.pem" "$S/certs/root.pem"
check "new intermediate verifies to the new root" openssl verify -x509_strict -CAfile "$S/certs/root.pem" "$S/certs/intermediate.pem"
check "old-to-new cross: new root key certified by the old root" \
	openssl verify -x509_strict -CAfile "$T/old-root.pem" "$R/cross-old-to-new.pem"
check "new-to-old cross: old root key certified by the new root" \
	openssl verify -x509_strict -CAfile "$S/certs/root.pem" "$R/cross-new-to-old.pem"
check "new intermediate via old root + cross (old-trusting devices)" \
	openssl verify -x509_strict -CAfile "$T/old-root.pem" -untrusted "$R/cross-old-to-new.pem" "$S/certs/intermediate.pem"
check "old device via new root + cross (new-trusting verifiers)" \
	openssl verify -x509_strict -CAfile "$S/certs/root.pem" -untrusted "$R/cross-new-to-old.pem" \
	-untrusted "$T/old-int.pem" "$olddev"
check "GnuTLS: new intermediate via old root + cross" sh -c \
	"cat '$S/certs/intermediate.pem' '$R/cross-old-to-new.pem' >'$T/c1.pem' &&
	 certtool --verify --load-ca-certificate '$T/old-root.pem' --infile '$T/c1.pem'"
if command -v certutil >/dev/null; then
	N="$T/nss"; mkdir "$N"; certutil -N -d "sql:$N" --empty-password
	certutil -A -d "sql:$N" -n oldroot -t "CT,C,C" -i "$T/old-root.pem"
	certutil -A -d "sql:$N" -n cross -t ",," -i "$R/cross-old-to-new.pem"
	certutil -A -d "sql:$N" -n newint -t ",," -i "$S/certs/intermediate.pem"
	certutil -V -d "sql:$N" -n newint -u L 2>&1 | grep -q "certificate is valid" &&
		ok "NSS: new intermediate valid for a database trusting only the old root" || nok "NSS cross path"
else skip "NSS" "certutil missing"; fi

# The update package: CMS SignedData by the old root carrying the new root.
openssl cms -verify -inform DER -in "$R/root-update.p7" -binary -CAfile "$T/old-root.pem" -purpose any \
	-out "$T/pkg-root.der" >/dev/null 2>&1 && ok "openssl cms -verify of the update package" || nok "cms -verify"
openssl x509 -in "$S/certs/root.pem" -outform der | cmp -s - "$T/pkg-root.der" &&
	ok "the package carries exactly the new root" || nok "package content"
check "GnuTLS certtool --p7-verify of the package against the old root" certtool --p7-verify \
	--load-ca-certificate "$T/old-root.pem" --infile "$R/root-update.p7" --inder
expect_fail "GnuTLS: the package does not verify against the new root" "." certtool --p7-verify \
	--load-ca-certificate "$S/certs/root.pem" --infile "$R/root-update.p7" --inder
if command -v cmsutil >/dev/null; then
	N2="$T/nss2"; mkdir "$N2"; certutil -N -d "sql:$N2" --empty-password
	certutil -A -d "sql:$N2" -n oldroot -t "CT,C,C" -i "$T/old-root.pem"
	# usage 11 = certUsageAnyCA: the signer is a CA certificate (no digitalSignature)
	cmsutil -D -u 11 -i "$R/root-update.p7" -d "sql:$N2" -o "$T/nss-root.der" >/dev/null 2>&1 &&
		cmp -s "$T/nss-root.der" "$T/pkg-root.der" && ok "NSS cmsutil verifies the package and yields the new root" ||
		nok "NSS cmsutil"
	N3="$T/nss3"; mkdir "$N3"; certutil -N -d "sql:$N3" --empty-password
	certutil -A -d "sql:$N3" -n newroot -t "CT,C,C" -i "$S/certs/root.pem"
	expect_fail "NSS: not trusted when only the new root is" "." \
		cmsutil -D -u 11 -i "$R/root-update.p7" -d "sql:$N3" -o /dev/null
else skip "NSS cmsutil" "missing"; fi
expect_fail "the package does not verify against the new root" "[Vv]erif" \
	openssl cms -verify -inform DER -in "$R/root-update.p7" -binary -CAfile "$S/certs/root.pem" -purpose any -out /dev/null

# Old keys destroyed under quorum, and logged.
kr_softhsm_env "$S"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label keyroom-root -O 2>/dev/null >"$T/objs"
[ "$(grep -c "^Public Key Object" "$T/objs")" = 1 ] && grep -q "EC_POINT 384 bits" "$T/objs" &&
	grep -q "label: *root-ca$" "$T/objs" && ok "root token: only the new P-384 key, labelled root-ca" ||
	{ nok "root token objects"; cat "$T/objs" | head -5; }
kr audit list >"$T/log" 2>/dev/null
[ "$(grep -c key-destroy "$T/log")" = 2 ] && ok "two key-destroy entries" || nok "key-destroy entries"
grep -q config-change "$T/log" && ok "config-change logged (profiles follow the new keys)" || nok "config-change"
grep -q "algorithm: p384" "$S/keyroom.yaml" && ok "keyroom.yaml profiles now P-384" || nok "keyroom.yaml algorithm"
batch 32 lot-new && ok "batch under the new chain" || { nok "batch under the new chain"; tail -5 "$T/lot-new.out"; }
bad=0; n=0
for c in "$T/lot-new/media/keyroom-out/lot-new/certs/"*.pem; do
	n=$((n+1))
	openssl verify -x509_strict -CAfile "$S/certs/root.pem" -untrusted "$S/certs/intermediate.pem" "$c" >/dev/null 2>&1 || bad=$((bad+1))
	openssl verify -x509_strict -CAfile "$T/old-root.pem" -untrusted "$S/certs/intermediate.pem" \
		-untrusted "$R/cross-old-to-new.pem" "$c" >/dev/null 2>&1 || bad=$((bad+1))
done
[ "$n" = 3 ] && [ $bad = 0 ] && ok "new devices verify to the new root, and to the old root via the cross" ||
	nok "new devices: $bad failures of $n"
verify_no_warning "audit log verifies after the rotation, no warning" audit verify "$S/log"
done_testing
