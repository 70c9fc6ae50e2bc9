#!/usr/bin/env bash
# ca_reject.sh - every rejection of `keyroom init` / `keyroom ca` gets its
# exact message and a non-zero exit, and writes nothing: the state
# directory's files (outside the token store and the LMDB lock) and the
# HSM's objects are unchanged, no output file appears.
. "$(dirname "$0")/../lib.sh"
scratch

K="$KEYROOM"
S="$T/st"
P="file:$S.pin"
echo 000000 >"$T/wrong.pin"

# Files of the state (not tokens/, whose lock files a login touches).
snap() { (cd "$1" && find . -path ./tokens -prune -o -name lock.mdb -prune -o -type f -print0 |
	sort -z | xargs -0 sha256sum); }
# Objects in a token of state $S (needs the PIN).
objs() {
	SOFTHSM2_CONF="$S/softhsm2.conf" pkcs11-tool --module "$SOFTHSM_MODULE" \
	    --token-label "$1" --login --pin "$(cat "$S.pin")" -O 2>/dev/null | grep -c 'Object;'
}
# reject NAME REGEX CMD...: fails with REGEX on stderr, state unchanged.
reject() {
	local n="$1" re="$2" before after o1 o2; shift 2
	before=$(snap "$S"); o1="$(objs keyroom-root)/$(objs keyroom-issuing)"
	expect_fail "$n" "$re" "$@"
	after=$(snap "$S"); o2="$(objs keyroom-root)/$(objs keyroom-issuing)"
	if [ "$before" = "$after" ] && [ "$o1" = "$o2" ]; then ok "$n: nothing written"
	else nok "$n: nothing written"; diff <(echo "$before") <(echo "$after") | head -5 | sed 's/^/# /'
		echo "# objects $o1 -> $o2"; fi
}

# --- init -------------------------------------------------------------
kr_init_state "$S"
expect_fail "init: existing state dir" \
    "keyroom: $S: state directory exists; refusing to initialise it again: already exists" \
    "$K" --state "$S" init --pin "$P"
expect_fail "init: missing module" \
    "keyroom: PKCS#11 module /nonexistent/libp11mod.so: cannot load: .*No such file.*: token error" \
    "$K" --state "$T/m1" init --pin "$P" --module /nonexistent/libp11mod.so
if [ ! -e "$T/m1" ]; then ok "init: missing module leaves no state dir"; else nok "init: m1 left behind"; fi
printf 'not an ELF file\n' >"$T/broken.so"
expect_fail "init: broken module (not ELF)" \
    "keyroom: PKCS#11 module $T/broken.so: cannot load: .*: token error" \
    "$K" --state "$T/m2" init --pin "$P" --module "$T/broken.so"
if [ ! -e "$T/m2" ]; then ok "init: broken module leaves no state dir"; else nok "init: m2 left behind"; fi
libz=$(ls /usr/lib/x86_64-linux-gnu/libz.so.1 /lib/x86_64-linux-gnu/libz.so.1 2>/dev/null | head -1)
if [ -n "$libz" ]; then
	expect_fail "init: library that is no PKCS#11 module" \
	    "keyroom: PKCS#11 module $libz: not a PKCS#11 module \(no C_GetFunctionList\): token error" \
	    "$K" --state "$T/m3" init --pin "$P" --module "$libz"
else skip "init: library that is no PKCS#11 module" "no libz.so.1"; fi
printf '12\n' >"$T/short.pin"
expect_fail "init: PIN too short" "keyroom: token user PIN: at least 4 characters: login failed" \
    "$K" --state "$T/m4" init --pin "file:$T/short.pin"
if [ ! -e "$T/m4" ]; then ok "init: short PIN leaves no state dir"; else nok "init: m4 left behind"; fi
perm=$(stat -c %a "$S"); pinperm=$(stat -c %a "$S/audit-token.pin")
if [ "$perm" = 700 ] && [ "$pinperm" = 600 ]; then ok "init: state 0700, audit-token.pin 0600"
else nok "init: modes $perm $pinperm"; fi

# --- root ---------------------------------------------------------------
reject "root: wrong PIN" \
    "keyroom: token keyroom-root: wrong PIN \(CKR_PIN_INCORRECT\): login failed" \
    "$K" --state "$S" ca root --pin "file:$T/wrong.pin"
reject "intermediate before root" \
    "keyroom: $S/certs/root.pem: no root certificate \(run keyroom ca root first\): wrong state" \
    "$K" --state "$S" ca intermediate --pin "$P"
reject "root: unknown algorithm" "keyroom: --algorithm p521: p256, p384, rsa3072 or ed25519: invalid argument" \
    "$K" --state "$S" ca root --pin "$P" --algorithm p521
check "root: succeeds after the rejections" "$K" --state "$S" ca root --pin "$P"
mv "$S/certs/root.pem" "$T/root.saved"
reject "root: key label clash" \
    "keyroom: token keyroom-root: key label 'root-ca' already exists: already exists" \
    "$K" --state "$S" ca root --pin "$P"
mv "$T/root.saved" "$S/certs/root.pem"
reject "root: existing root.pem" "keyroom: $S/certs/root.pem: refusing to overwrite: already exists" \
    "$K" --state "$S" ca root --pin "$P" --label other

# --- token / module from keyroom.yaml -----------------------------------
cp "$S/keyroom.yaml" "$T/keyroom.yaml.saved"
sed -i 's/  root: "keyroom-root"/  root: "no-such-token"/' "$S/keyroom.yaml"
reject "token not found" \
    "keyroom: token no-such-token not found in PKCS#11 module /.*libsofthsm2.so: token error" \
    "$K" --state "$S" ca intermediate --pin "$P"
cp "$T/keyroom.yaml.saved" "$S/keyroom.yaml"
printf 'pkcs11:\n  module: /nonexistent/mod.so\n' >>"$S/keyroom.yaml"
reject "configured module missing" \
    "keyroom: PKCS#11 module /nonexistent/mod.so: cannot load: .*: token error" \
    "$K" --state "$S" ca intermediate --pin "$P"
cp "$T/keyroom.yaml.saved" "$S/keyroom.yaml"
sed -i 's/key_agreement: false/key_agrement: false/' "$S/keyroom.yaml"
reject "config: unknown key" \
    "keyroom: keyroom.yaml: profiles.device: unknown key 'key_agrement': bad configuration" \
    "$K" --state "$S" ca intermediate --pin "$P"
cp "$T/keyroom.yaml.saved" "$S/keyroom.yaml"

# --- key mismatch: a root.pem whose key is not the token's ---------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$T/o.key" \
    -subj "/O=keyroom/CN=keyroom Root CA" -out "$T/other-root.pem" -days 10 2>/dev/null
mv "$S/certs/root.pem" "$T/root.saved"; cp "$T/other-root.pem" "$S/certs/root.pem"
reject "intermediate: root.pem does not match the root key" \
    "keyroom: token keyroom-root: key 'root-ca' does not match the expected public key: key mismatch" \
    "$K" --state "$S" ca intermediate --pin "$P"
rm "$S/certs/root.pem"; mv "$T/root.saved" "$S/certs/root.pem"
check "intermediate: succeeds" "$K" --state "$S" ca intermediate --pin "$P"
reject "intermediate: wrong PIN" \
    "keyroom: token keyroom-root: wrong PIN \(CKR_PIN_INCORRECT\): login failed" \
    "$K" --state "$S" ca crl --root --pin "file:$T/wrong.pin" --out "$T/never.crl"

# --- CSRs ----------------------------------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/k" \
    -subj /CN=x -outform DER -out "$T/good.der" 2>/dev/null
openssl req -in "$T/good.der" -inform DER -out "$T/good.pem"
# Flip the last byte (inside the signature's s): still DER, bad signature.
python3 - "$T/good.der" "$T/badsig.der" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); b[-1] ^= 0x01
open(sys.argv[2], 'wb').write(b)
EOF
head -c 100 "$T/good.der" >"$T/trunc.der"
head -n 3 "$T/good.pem" >"$T/trunc.pem"
{ cat "$T/good.der"; printf 'JUNK'; } >"$T/trailing.der"
head -c 17000 /dev/zero >"$T/huge.csr"
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/k2" -subj /CN=x -out "$T/rsa2048.csr" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$T/k3" \
    -subj /CN=x -out "$T/p384.csr" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:secp256k1 -nodes -keyout "$T/k4" \
    -subj /CN=x -out "$T/k1.csr" 2>/dev/null

O="$T/out.pem"
reject "csr: bad signature" \
    "keyroom: $T/badsig.der: CSR signature does not verify \(no proof of possession\): bad signature" \
    "$K" --state "$S" ca issue "$T/badsig.der" --id 01 --out "$O" --pin "$P"
reject "csr: truncated DER" \
    "keyroom: $T/trunc.der: not a DER certificate request \(truncated or corrupt\): malformed input" \
    "$K" --state "$S" ca issue "$T/trunc.der" --id 01 --out "$O" --pin "$P"
reject "csr: truncated PEM" \
    "keyroom: $T/trunc.pem: not a PEM certificate request \(truncated or corrupt\): malformed input" \
    "$K" --state "$S" ca issue "$T/trunc.pem" --id 01 --out "$O" --pin "$P"
reject "csr: trailing data" \
    "keyroom: $T/trailing.der: 4 bytes after the certificate request: malformed input" \
    "$K" --state "$S" ca issue "$T/trailing.der" --id 01 --out "$O" --pin "$P"
reject "csr: oversized" "keyroom: $T/huge.csr: 17000 bytes, limit 16384: too large" \
    "$K" --state "$S" ca issue "$T/huge.csr" --id 01 --out "$O" --pin "$P"
reject "csr: unsupported key type (RSA-2048)" \
    "keyroom: $T/rsa2048.csr: key type RSA-2048 not supported \(p256, p384, rsa3072, ed25519\): unsupported" \
    "$K" --state "$S" ca issue "$T/rsa2048.csr" --id 01 --out "$O" --pin "$P"
reject "csr: unsupported curve (secp256k1)" \
    "keyroom: $T/k1.csr: key type EC secp256k1 not supported .*: unsupported" \
    "$K" --state "$S" ca issue "$T/k1.csr" --id 01 --out "$O" --pin "$P"
reject "csr: key does not fit the profile (P-384)" \
    "keyroom: $T/p384.csr: key type p384 not allowed by profile device \(allowed: p256\): refused by policy" \
    "$K" --state "$S" ca issue "$T/p384.csr" --id 01 --out "$O" --pin "$P"
reject "issue: template needs --id" \
    "keyroom: subject template '/O=keyroom/CN=\{id\}' needs --id: invalid argument" \
    "$K" --state "$S" ca issue "$T/good.pem" --out "$O" --pin "$P"
reject "issue: malformed subject" "keyroom: subject 'CN=x': must look like /O=Org/CN=Name: malformed input" \
    "$K" --state "$S" ca issue "$T/good.pem" --subject CN=x --out "$O" --pin "$P"
reject "issue: bad --id" "keyroom: --id 'xyz': 1..64 bytes of hex: invalid argument" \
    "$K" --state "$S" ca issue "$T/good.pem" --id xyz --out "$O" --pin "$P"
reject "issue: wrong PIN" \
    "keyroom: token keyroom-issuing: wrong PIN \(CKR_PIN_INCORRECT\): login failed" \
    "$K" --state "$S" ca issue "$T/good.pem" --id 01 --out "$O" --pin "file:$T/wrong.pin"
if [ ! -e "$O" ]; then ok "csr rejections: no output file"; else nok "csr rejections wrote $O"; fi
check "issue: good DER CSR" "$K" --state "$S" ca issue "$T/good.der" --id 01 --out "$O" --pin "$P"
check "issue: good PEM CSR" "$K" --state "$S" ca issue "$T/good.pem" --id 02 --out "$T/out2.pem" --pin "$P"
reject "issue: output directory missing" \
    "keyroom: $T/no/such/dir/x.pem: output directory $T/no/such/dir: No such file or directory: system error" \
    "$K" --state "$S" ca issue "$T/good.pem" --id 01 --out "$T/no/such/dir/x.pem" --pin "$P"
reject "issue: existing output" "keyroom: $O: refusing to overwrite: already exists" \
    "$K" --state "$S" ca issue "$T/good.pem" --id 01 --out "$O" --pin "$P"
reject "crl: bad reason" "keyroom: --revoked '01:stolen': unknown reason .*: invalid argument" \
    "$K" --state "$S" ca crl --revoked 01:stolen --pin "$P"
reject "crl: bad serial" "keyroom: --revoked 'zz': bad hex: invalid argument" \
    "$K" --state "$S" ca crl --revoked zz --pin "$P"
reject "crl: serial too long" "keyroom: --revoked '$(printf '%042d' 1)': serial must be 1..20 bytes of hex: invalid argument" \
    "$K" --state "$S" ca crl --revoked "$(printf '%042d' 1)" --pin "$P"

# CRL numbers increase per issuer: default = highest logged + 1.
check "crl: first (number 1)" "$K" -q --state "$S" ca crl --pin "$P" --out "$T/c1.pem"
if openssl crl -in "$T/c1.pem" -noout -crlnumber | grep -Eq '=(0x)?0*1$'; then ok "crl: default number 1"
else nok "crl: default number: $(openssl crl -in "$T/c1.pem" -noout -crlnumber)"; fi
reject "crl: number not increasing" \
    "keyroom: --number 1: CRL numbers must increase; 1 was already issued: invalid argument" \
    "$K" --state "$S" ca crl --pin "$P" --number 1 --out "$T/c1b.pem"
if [ ! -e "$T/c1b.pem" ]; then ok "crl: refused CRL not written"; else nok "crl: c1b written"; fi
check "crl: next default" "$K" -q --state "$S" ca crl --pin "$P" --out "$T/c2.pem"
if openssl crl -in "$T/c2.pem" -noout -crlnumber | grep -Eq '=(0x)?0*2$'; then ok "crl: then number 2"
else nok "crl: second number"; fi

# Exit codes: 1 for errors, 2 for usage.
"$K" --state "$S" ca issue "$T/badsig.der" --id 01 --out "$O" --pin "$P" 2>/dev/null; rc=$?
"$K" --state "$S" ca issue 2>/dev/null; urc=$?
if [ $rc = 1 ] && [ $urc = 2 ]; then ok "exit codes: error 1, usage 2"; else nok "exit codes $rc $urc"; fi
# --json errors.
j=$("$K" --json --state "$S" ca issue "$T/badsig.der" --id 01 --out "$O" --pin "$P" 2>/dev/null)
if printf '%s' "$j" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["error"]=="bad signature" and d["code"]==-12'
then ok "--json error object"; else nok "--json error object: $j"; fi
for c in "init --help" "ca --help" "ca root --help" "ca intermediate --help" "ca issue --help" "ca crl --help" "help ca"; do
	# shellcheck disable=SC2086
	if "$K" $c | grep -q '^usage: keyroom'; then ok "help: keyroom $c"; else nok "help: keyroom $c"; fi
done
done_testing
