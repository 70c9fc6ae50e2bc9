#!/usr/bin/env bash
# ca_chain.sh - root, intermediate, device certificates and CRLs from the
# real keyroom binary on a fresh SoftHSM2 store per algorithm, checked by
# OpenSSL (-x509_strict, CRLs), GnuTLS certtool, NSS, and pkcs11-tool
# (private keys sensitive and never extractable).
. "$(dirname "$0")/../lib.sh"
scratch

K="$KEYROOM"
csr() { # csr OUT ALG
	case "$2" in
	p256) openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$1.key" -subj /CN=from-csr -out "$1" 2>/dev/null ;;
	p384) openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes \
	    -keyout "$1.key" -subj /CN=from-csr -out "$1" 2>/dev/null ;;
	ed25519) openssl req -new -newkey ed25519 -nodes -keyout "$1.key" \
	    -subj /CN=from-csr -out "$1" 2>/dev/null ;;
	esac
}

for alg in p256 p384 rsa3072 ed25519; do
	S="$T/$alg"
	if kr_ca_setup "$S" "$alg" "$alg"; then ok "$alg: init, root, intermediate"
	else nok "$alg: init, root, intermediate"; continue; fi
	P="file:$S.pin"
	R="$S/certs/root.pem"; I="$S/certs/intermediate.pem"
	# The device profile: for the p256 run carry every option.
	if [ "$alg" = p256 ]; then
		sed -i -e 's/hardware_module_name: false/hardware_module_name: true/' \
		    -e 's/server_auth: false/server_auth: true/' \
		    -e 's/key_agreement: false/key_agreement: true/' "$S/keyroom.yaml"
	fi
	devalg=p256
	if [ "$alg" = ed25519 ]; then
		sed -i 's/algorithms: \[p256\]/algorithms: [p256, ed25519]/' "$S/keyroom.yaml"
		devalg=ed25519
	fi
	csr "$T/$alg-a.csr" "$devalg"; csr "$T/$alg-b.csr" p256
	out=$("$K" --json --state "$S" ca issue "$T/$alg-a.csr" --id 0123f2408ea1fcf201 \
	    --out "$T/$alg-a.pem" --pin "$P" 2>&1)
	if [ -f "$T/$alg-a.pem" ] && printf '%s' "$out" | python3 -c \
	    'import json,sys; d=json.load(sys.stdin); assert d["kind"]=="device" and len(d["serial"])==32' 2>/dev/null
	then ok "$alg: issue $devalg device (--json)"; else nok "$alg: issue $devalg device"; echo "# $out"; fi
	check "$alg: issue second device" "$K" -q --state "$S" ca issue "$T/$alg-b.csr" \
	    --subject "/O=Acme/CN=device b" --id 01 --out "$T/$alg-b.pem" --pin "$P"

	check "$alg: openssl verify -x509_strict intermediate" \
	    openssl verify -x509_strict -CAfile "$R" "$I"
	check "$alg: openssl verify -x509_strict device chain" \
	    openssl verify -x509_strict -purpose sslclient -CAfile "$R" -untrusted "$I" "$T/$alg-a.pem"
	subj=$(openssl x509 -in "$T/$alg-a.pem" -noout -subject -nameopt compat)
	if [ "$subj" = "subject=/O=keyroom/CN=0123f2408ea1fcf201" ]; then ok "$alg: subject from template, not CSR"
	else nok "$alg: subject from template ($subj)"; fi
	end=$(openssl x509 -in "$T/$alg-a.pem" -noout -enddate)
	if [ "$end" = "notAfter=Dec 31 23:59:59 9999 GMT" ]; then ok "$alg: 802.1AR no-expiry notAfter"
	else nok "$alg: no-expiry ($end)"; fi
	if openssl asn1parse -in "$T/$alg-a.pem" | grep -q 'GENERALIZEDTIME.*:99991231235959Z'
	then ok "$alg: notAfter GeneralizedTime 99991231235959Z"; else nok "$alg: GeneralizedTime"; fi

	cat "$T/$alg-a.pem" "$I" "$R" >"$T/$alg-chain.pem"
	if certtool --verify-chain --infile "$T/$alg-chain.pem" 2>&1 | grep -q 'Chain verification output: Verified'
	then ok "$alg: GnuTLS certtool --verify-chain"; else nok "$alg: GnuTLS certtool"; fi

	if [ "$alg" = ed25519 ]; then
		skip "$alg: NSS chain" "NSS 3.87 (Debian 12) has no Ed25519 certificate support"
	else
		N="$T/$alg-nss"; mkdir "$N"
		certutil -N -d "sql:$N" --empty-password &&
		certutil -A -d "sql:$N" -n root -t "CT,C,C" -i "$R" &&
		certutil -A -d "sql:$N" -n int -t ",," -i "$I" &&
		certutil -A -d "sql:$N" -n dev -t ",," -i "$T/$alg-a.pem"
		check "$alg: NSS certutil -V -u C (client)" certutil -V -d "sql:$N" -n dev -u C
		if vfychain -d "sql:$N" -u 0 -a "$T/$alg-a.pem" 2>&1 | grep -q 'Chain is good'
		then ok "$alg: NSS vfychain"; else nok "$alg: NSS vfychain"; fi
	fi

	# CRLs: the issuing CA revokes device a; the root issues an empty CRL.
	sa=$(openssl x509 -in "$T/$alg-a.pem" -noout -serial | cut -d= -f2)
	check "$alg: crl (issuing, revokes a)" "$K" -q --state "$S" ca crl --pin "$P" \
	    --revoked "$sa:keyCompromise" --number 7 --out "$T/$alg-crl.pem"
	check "$alg: crl (root)" "$K" -q --state "$S" ca crl --root --pin "$P" --out "$T/$alg-rcrl.pem"
	if openssl crl -in "$T/$alg-crl.pem" -noout -CAfile "$I" 2>&1 | grep -q 'verify OK' &&
	    openssl crl -in "$T/$alg-rcrl.pem" -noout -CAfile "$R" 2>&1 | grep -q 'verify OK'
	then ok "$alg: openssl crl: signatures verify"; else nok "$alg: openssl crl verify"; fi
	V=(openssl verify -x509_strict -crl_check_all -CRLfile "$T/$alg-crl.pem" -CRLfile "$T/$alg-rcrl.pem"
	    -CAfile "$R" -untrusted "$I")
	check "$alg: -crl_check_all: b good" "${V[@]}" "$T/$alg-b.pem"
	if "${V[@]}" "$T/$alg-a.pem" 2>&1 | grep -q 'certificate revoked'
	then ok "$alg: -crl_check_all: a revoked"; else nok "$alg: a revoked"; fi
	if openssl crl -in "$T/$alg-crl.pem" -noout -text | grep -A1 'CRL Number' | grep -q '^ *7$' &&
	    openssl crl -in "$T/$alg-crl.pem" -noout -text | grep -q 'Key Compromise'
	then ok "$alg: CRL number and reason"; else nok "$alg: CRL number and reason"; fi
	if certtool --verify-crl --infile "$T/$alg-crl.pem" --load-ca-certificate "$I" 2>&1 |
	    grep -q 'Verified' && certtool --verify-crl --infile "$T/$alg-rcrl.pem" \
	    --load-ca-certificate "$R" 2>&1 | grep -q 'Verified'
	then ok "$alg: GnuTLS verifies the CRL"; else nok "$alg: GnuTLS CRL"; fi

	# Everything above went through the audit log first.
	check "$alg: audit verify" "$K" --state "$S" audit verify
	if "$K" --state "$S" audit proof "$T/$alg-a.pem" >"$T/$alg-a.proof" 2>&1 && [ -s "$T/$alg-a.proof" ]
	then ok "$alg: device certificate has a log inclusion proof"; else nok "$alg: audit proof"; fi
	n=$("$K" --json --state "$S" audit list 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
e = d["entries"] if isinstance(d, dict) else d
print(sum(1 for x in e if x.get("type") == "cert-issued"))' 2>/dev/null)
	if [ "$n" = 4 ]; then ok "$alg: 4 cert-issued entries (root, intermediate, 2 devices)"
	else nok "$alg: cert-issued entries: $n"; fi

	# The private keys: sensitive, never extractable.
	kr_softhsm_env "$S"
	for tok in keyroom-root keyroom-issuing; do
		o=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$tok" --login \
		    --pin "$(cat "$S.pin")" -O --type privkey 2>/dev/null)
		if printf '%s' "$o" | grep -q 'Access:.*sensitive.*never extractable' &&
		    [ "$(printf '%s' "$o" | grep -c 'Private Key Object')" = 1 ]
		then ok "$alg: $tok private key sensitive, never extractable"
		else nok "$alg: $tok key attributes"; echo "$o" | sed 's/^/# /'; fi
	done
	unset SOFTHSM2_CONF
done

# CRL distribution point and AIA from the profile (intermediate and device).
S="$T/urls"
if kr_init_state "$S"; then
	python3 - "$S/keyroom.yaml" <<'PY'
import sys
p = sys.argv[1]; y = open(p).read()
for prof in ("intermediate", "device"):
    y = y.replace("  %s:\n" % prof, "  %s:\n    crl_url: \"http://pki.example/%s.crl\"\n"
                  "    aia_url: \"http://pki.example/%s.crt\"\n" % (prof, prof, prof), 1)
open(p, "w").write(y)
PY
	"$K" -q --state "$S" ca root --pin "file:$S.pin" --algorithm p256 &&
	"$K" -q --state "$S" ca intermediate --pin "file:$S.pin" &&
	csr "$T/u.csr" p256 &&
	"$K" -q --state "$S" ca issue "$T/u.csr" --id 0a --out "$T/u.pem" --pin "file:$S.pin"
	XI=$(openssl x509 -in "$S/certs/intermediate.pem" -noout -text 2>/dev/null)
	XD=$(openssl x509 -in "$T/u.pem" -noout -text 2>/dev/null)
	if printf '%s' "$XI" | grep -q 'URI:http://pki.example/intermediate.crl' &&
	    printf '%s' "$XI" | grep -q 'CA Issuers - URI:http://pki.example/intermediate.crt'
	then ok "intermediate: CDP and AIA from the profile"; else nok "intermediate: CDP/AIA"; fi
	if printf '%s' "$XD" | grep -q 'URI:http://pki.example/device.crl' &&
	    printf '%s' "$XD" | grep -q 'CA Issuers - URI:http://pki.example/device.crt'
	then ok "device: CDP and AIA from the profile"; else nok "device: CDP/AIA"; fi
	check "urls: openssl verify -x509_strict" openssl verify -x509_strict -CAfile "$S/certs/root.pem" \
	    -untrusted "$S/certs/intermediate.pem" "$T/u.pem"
else
	nok "urls: init"
fi

# The p256 device carried every option of the profile.
X=$(openssl x509 -in "$T/p256-a.pem" -noout -text)
for want in 'TLS Web Client Authentication, TLS Web Server Authentication' \
    'Digital Signature, Key Agreement' 'CA:FALSE' 'X509v3 Authority Key Identifier' \
    'X509v3 Subject Alternative Name'; do
	if printf '%s' "$X" | grep -q "$want"; then ok "p256 device: $want"
	else nok "p256 device: $want"; fi
done
if openssl asn1parse -in "$T/p256-a.pem" -strparse "$(openssl asn1parse -in "$T/p256-a.pem" |
    awk '/X509v3 Subject Alternative Name/{getline; print $1+0; exit}' | tr -d :)" 2>/dev/null |
    grep -q '1.3.6.1.5.5.7.8.4\|hardwareModuleName' ; then ok "p256 device: SAN otherName id-on-hardwareModuleName"
else
	# Fall back to a DER search for the OID's encoding.
	if openssl x509 -in "$T/p256-a.pem" -outform der | od -An -tx1 | tr -d ' \n' |
	    grep -q '06082b06010505070804'; then ok "p256 device: SAN otherName id-on-hardwareModuleName"
	else nok "p256 device: HardwareModuleName OID"; fi
fi
# hwSerialNum carries the --id bytes.
if openssl x509 -in "$T/p256-a.pem" -outform der | od -An -tx1 | tr -d ' \n' |
    grep -q '04090123f2408ea1fcf201'; then ok "p256 device: hwSerialNum = chip serial"
else nok "p256 device: hwSerialNum"; fi
done_testing
