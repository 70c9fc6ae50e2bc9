#!/usr/bin/env bash
# policy_check.sh - `keyroom policy check` and `keyroom manifest verify`
# with no shared samples: a signer made here with openssl, a policy that
# pins it (file and inline PEM), a manifest signed by it (python + openssl),
# and one refusal per policy mistake, each with its message.
. "$(dirname "$0")/../lib.sh"
scratch
K="$KEYROOM"
cd "$T" || exit 1

openssl ecparam -name prime256v1 -genkey -noout -out signer.key 2>/dev/null
openssl req -x509 -new -key signer.key -subj "/O=Test Vendor/CN=Test Signer" -days 3650 \
    -addext basicConstraints=critical,CA:FALSE -addext subjectKeyIdentifier=hash \
    -out signer.crt 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out dev.key 2>/dev/null
openssl ecparam -name secp384r1 -genkey -noout -out dev384.key 2>/dev/null
[ -s signer.crt ] && ok "test signer made" || nok "openssl signer"

cat >policy.yaml <<'EOF'
version: 1
signers:
  - file: signer.crt
curves: [P-256]
parts:
  - part_number: ATECC608C-TNGTLSU-B
    model: ATECC608C
profiles: [device]
subject: "CN=sn${UNIQUEID}, O=Example OEM"
manufacturers:
  - id: cm1
    quota: 10
    parts: [ATECC608C-TNGTLSU-B]
EOF
check "policy check: valid" "$K" policy check policy.yaml
w=$("$K" policy check policy.yaml 2>&1 >/dev/null)
printf '%s' "$w" | grep -q "no device_roots" && ok "warning: no device roots" || nok "warning: $w"
v=$("$K" --json policy check policy.yaml | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["valid"], d["parts"], d["signers"][0]["expired"])')
[ "$v" = "True 1 False" ] && ok "policy check --json" || nok "policy check --json: $v"

# inline PEM instead of a file
{ sed -n '1,2p' policy.yaml; echo "  - pem: |"; sed 's/^/      /' signer.crt; sed -n '4,$p' policy.yaml; } >inline.yaml
check "policy check: inline PEM signer" "$K" policy check inline.yaml

# one line per mistake: sed expression, expected message
while IFS='|' read -r name expr re; do
	[ -n "$name" ] || continue
	sed "$expr" policy.yaml >bad.yaml
	expect_fail "refused: $name" "$re" "$K" policy check bad.yaml
done <<'EOF'
unknown top-level key|s/^curves:/curvez:/|unknown key 'curvez'
unknown manufacturer key|s/quota: 10/qouta: 10/|manufacturers\[0\]: unknown key 'qouta'
manufacturer part not allowed|s/parts: \[ATECC608C-TNGTLSU-B\]/parts: [TA100]/|'TA100' is not one of the policy's parts
bad curve|s/curves: \[P-256\]/curves: [P-255]/|unknown curve 'P-255'
missing signer file|s/signer.crt/absent.crt/|absent.crt
signer is not a certificate|s/signer.crt/signer.key/|signers\[0\].*not a PEM certificate
unknown template variable|s/\${UNIQUEID}/${SERIAL}/|unknown variable
no CN in subject|s/CN=sn/SN=sn/|no CN=
negative quota|s/quota: 10/quota: -5/|quota
wrong version|s/version: 1/version: 7/|version
tab indentation|s/^  - id: cm1/\t- id: cm1/|bad.yaml:[0-9]+:[0-9]+
EOF

# a manifest signed by the test signer: good, lite, P-384 (refused), forged
python3 - <<'PY'
import base64, hashlib, json, subprocess
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
def der(args, inp=None):
    return subprocess.run(args, input=inp, capture_output=True, check=True).stdout
cert = der(["openssl", "x509", "-in", "signer.crt", "-outform", "DER"])
ski = der(["openssl", "x509", "-in", "signer.crt", "-noout", "-ext",
    "subjectKeyIdentifier"]).decode().split("\n")[1].strip().replace(":", "")
prot = b(json.dumps({"alg": "ES256", "kid": b(bytes.fromhex(ski)),
    "x5t#S256": b(hashlib.sha256(cert).digest())}).encode())
def xy(key, n):
    pub = der(["openssl", "ec", "-in", key, "-pubout", "-outform", "DER"])
    return b(pub[-2 * n:-n]), b(pub[-n:])
def entry(uid, keys, hid=None):
    pl = {"version": 1, "model": "ATECC608C", "partNumber": "ATECC608C-TNGTLSU-B",
        "manufacturer": {"organizationName": "V"}, "provisioner": {"organizationName": "V"},
        "distributor": {"organizationName": "V"},
        "provisioningTimestamp": "2026-01-02T03:04:05.678Z", "uniqueId": uid}
    if keys: pl["publicKeySet"] = {"keys": keys}
    p = b(json.dumps(pl).encode())
    sig = der(["openssl", "dgst", "-sha256", "-sign", "signer.key"], (prot + "." + p).encode())
    i = 2 + (sig[1] == 0x81); rl = sig[i + 1]; r = sig[i + 2:i + 2 + rl]
    j = i + 2 + rl; sl = sig[j + 1]; s = sig[j + 2:j + 2 + sl]
    rs = r.lstrip(b"\0").rjust(32, b"\0") + s.lstrip(b"\0").rjust(32, b"\0")
    return {"payload": p, "protected": prot, "header": {"uniqueId": hid or uid}, "signature": b(rs)}
x, y = xy("dev.key", 32); x3, y3 = xy("dev384.key", 48)
m = [entry("0123aabbccddeeff01", [{"kid": "0", "kty": "EC", "crv": "P-256", "x": x, "y": y}]),
     entry("0123aabbccddeeff02", None),
     entry("0123aabbccddeeff03", [{"kid": "0", "kty": "EC", "crv": "P-384", "x": x3, "y": y3}]),
     entry("0123aabbccddeeff04", None, hid="0123aabbccddeeff05")]
json.dump(m, open("manifest.json", "w"))
PY
out=$("$K" --json manifest verify --policy policy.yaml manifest.json); rc=$?
v=$(printf '%s' "$out" | python3 -c 'import json,sys; m=json.load(sys.stdin)["manifests"][0]; print(m["verified"], ",".join(e["reason"] for e in m["refused"]))')
[ "$rc" = 3 ] && [ "$v" = "2 curve-not-allowed,uniqueid-mismatch" ] &&
    ok "manifest verify: 2 verified, P-384 and header id refused" || nok "verify: rc=$rc $v"
sed -i 's/curves: \[P-256\]/curves: [P-256, P-384]/' policy.yaml
v=$("$K" --json manifest verify --policy policy.yaml manifest.json | python3 -c 'import json,sys; m=json.load(sys.stdin)["manifests"][0]; print(m["verified"])')
[ "$v" = 3 ] && ok "P-384 accepted once the policy allows it" || nok "P-384: $v"
sed 's/signer.crt/other.crt/' policy.yaml >other.yaml
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
    -subj /CN=Other -days 30 -addext subjectKeyIdentifier=hash -out other.crt 2>/dev/null
v=$("$K" --json manifest verify --policy other.yaml manifest.json | python3 -c 'import json,sys; m=json.load(sys.stdin)["manifests"][0]; print(m["verified"], len([e for e in m["refused"] if e["reason"]=="unknown-signer"]))')
[ "$v" = "0 4" ] && ok "another pinned signer: every entry unknown-signer" || nok "other signer: $v"
expect_fail "manifest verify: missing file" "absent.json" "$K" manifest verify --policy policy.yaml absent.json
"$K" manifest verify >/dev/null 2>&1; [ $? = 2 ] && ok "manifest verify: usage exit 2" || nok "usage"
done_testing
