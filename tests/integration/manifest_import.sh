#!/usr/bin/env bash
# manifest_import.sh - `keyroom policy check` and `keyroom manifest
# verify|import|show|list` with the real binary, a fresh SoftHSM2 state and
# a real LMDB log, on the REAL Microchip samples (SKIP when absent), plus
# forged manifests signed with the test signer's published key: each
# refusal with its reason, nothing recorded for it, re-import a no-op.
. "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm	# SAN=1: SoftHSM2's own Ed25519 C_Sign leak
K="$KEYROOM"

if [ ! -f "$SAMPLES/README.md" ]; then
	skip "manifest import" "samples absent: $SAMPLES"
	done_testing; exit
fi
S="$T/st"
J() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

policy() { # policy FILE [extra signer lines]
	cat >"$1" <<EOF
version: 1
signers:
  - file: $SAMPLES/signers/manifest-signer-1.crt
  - file: $SAMPLES/signers/manifest-signer-2.crt
  - file: $SAMPLES/signers/manifest-signer-3.crt
  - file: $SAMPLES/signers/manifest-signer-4.crt
  - file: $SAMPLES/signers/manifest-signer-5.crt
${2:-}
device_roots:
  - file: $SAMPLES/device-pki/root-ca-002.crt
parts:
  - part_number: ATECC608C-TNGTLSU-B
profiles: [device]
subject: "CN=sn\${UNIQUEID}, O=Example OEM"
manufacturers:
  - id: cm1
    quota: 100
    parts: [ATECC608C-TNGTLSU-B]
EOF
}

if kr_init_state "$S"; then ok "init a fresh state"; else nok "init"; done_testing; exit; fi
policy "$S/policy.yaml"

# --- policy check
check "policy check: valid" "$K" policy check "$S/policy.yaml"
n=$("$K" --json policy check "$S/policy.yaml" | J 'len(d["signers"])')
[ "$n" = 5 ] && ok "policy check --json lists 5 signers" || nok "policy check --json ($n)"
sed 's/^parts:/partz:/' "$S/policy.yaml" >"$T/bad1.yaml"
expect_fail "policy check: unknown key" "unknown key 'partz'" "$K" policy check "$T/bad1.yaml"
sed 's#manifest-signer-5.crt#manifest-signer-9.crt#' "$S/policy.yaml" >"$T/bad2.yaml"
expect_fail "policy check: missing signer file" "signers\[4\].*manifest-signer-9.crt" \
    "$K" policy check "$T/bad2.yaml"
printf 'version: 1\nversion: 1\n' >"$T/bad3.yaml"
expect_fail "policy check: duplicate key with line" "bad3.yaml:2:1: duplicate key" \
    "$K" policy check "$T/bad3.yaml"
expect_fail "policy check: no such file" "nope.yaml" "$K" policy check "$T/nope.yaml"
"$K" policy check >/dev/null 2>&1; [ $? = 2 ] && ok "policy check: usage exit 2" || nok "usage"
mkdir -p "$T/ex"; cp "$TOP/docs/policy.example.yaml" "$T/ex/"; ln -s "$SAMPLES" "$T/ex/microchip"
check "docs/policy.example.yaml is a valid policy" "$K" policy check "$T/ex/policy.example.yaml"
check "policy check --help" "$K" policy check --help
check "manifest --help" "$K" manifest --help
check "manifest import --help" "$K" manifest import --help

# --- verify: all 24 vendor-signed entries, nothing recorded
out=$("$K" --json --state "$S" manifest verify "$SAMPLES"/manifests/*.json); rc=$?
v=$(printf '%s' "$out" | J 'sum(m["verified"] for m in d["manifests"])')
r=$(printf '%s' "$out" | J '",".join(e["reason"] for m in d["manifests"] for e in m["refused"])')
[ "$rc" = 3 ] && [ "$v" = 24 ] && [ "$r" = unknown-signer ] &&
    ok "verify: 24 vendor entries verify, self-signed one refused (unknown-signer)" ||
    nok "verify: rc=$rc verified=$v refused=$r"
n=$("$K" --json --state "$S" manifest list | J 'len(d["devices"])')
[ "$n" = 0 ] && ok "verify records nothing" || nok "verify recorded $n"

# --- import
out=$("$K" --json --state "$S" manifest import "$SAMPLES"/manifests/*.json); rc=$?
a=$(printf '%s' "$out" | J 'sum(m["added"] for m in d["manifests"])')
r=$(printf '%s' "$out" | J '",".join(sorted(e["reason"] for m in d["manifests"] for e in m["refused"]))')
# The spec's lite example reuses the spec example's uniqueId with other
# content: the registry refuses the second one.
[ "$rc" = 3 ] && [ "$a" = 23 ] && [ "$r" = duplicate-different,unknown-signer ] &&
    ok "import: 23 added; clone of a recorded id and unknown signer refused" ||
    nok "import: rc=$rc added=$a refused=$r"
out=$("$K" --json --state "$S" manifest import "$SAMPLES/manifests/ECC608C-TNGTLSU-B.json"); rc=$?
a=$(printf '%s' "$out" | J 'd["manifests"][0]["added"], d["manifests"][0]["already"]')
[ "$rc" = 0 ] && [ "$a" = "0 10" ] && ok "re-import is a no-op (0 added, 10 already)" ||
    nok "re-import: rc=$rc $a"
n=$("$K" --json --state "$S" manifest list | J 'len(d["devices"])')
[ "$n" = 23 ] && ok "list --json: 23 devices" || nok "list: $n"
out=$("$K" --json --state "$S" manifest show 0123f2408ea1fcf201)
v=$(printf '%s' "$out" | J 'd["partNumber"], len(d["keys"]), d["keys"][0]["x5c"], d["lite"]')
[ "$v" = "ATECC608C-TNGTLSU-B 5 True False" ] && ok "show: part, 5 keys, x5c verified" ||
    nok "show: $v"
v=$("$K" --json --state "$S" manifest show 01230cac6606e99401 | J 'd["lite"], len(d["keys"])')
[ "$v" = "True 0" ] && ok "show: lite entry has no keys" || nok "show lite: $v"
"$K" --state "$S" manifest show 0123f2408ea1fcf201 | grep -q '^key 0 .*x5c-verified' &&
    ok "show (text)" || nok "show (text)"
expect_fail "show: unknown id" "0123ffffffffffff01 is not in the registry" \
    "$K" --state "$S" manifest show 0123ffffffffffff01
n=$("$K" --json --state "$S" audit list | J 'sum(1 for e in d if e["type"]=="manifest-imported")')
[ "$n" = 7 ] && ok "one manifest-imported log entry per file (7)" || nok "log entries: $n"

# --- the self-signed test manifest, with its signer pinned
policy "$T/test-policy.yaml" "  - file: $SAMPLES/test-signer/example-signer-FFFF.crt"
out=$("$K" --json --state "$S" manifest import --policy "$T/test-policy.yaml" \
    "$SAMPLES/manifests/selfsigned-test-manifest.json"); rc=$?
a=$(printf '%s' "$out" | J 'd["manifests"][0]["added"]')
[ "$rc" = 0 ] && [ "$a" = 1 ] && ok "self-signed test manifest imports when pinned" ||
    nok "self-signed: rc=$rc added=$a"

# --- forged manifests (python: JSON edits; openssl: the test key signs)
forge() { # forge OUT MODE: tampered copies of the ECC608C manifest
	python3 - "$SAMPLES" "$1" "$2" <<'PY'
import base64, hashlib, json, subprocess, sys
S, out, mode = sys.argv[1:4]
m = json.load(open(S + "/manifests/ECC608C-TNGTLSU-B.json"))
e = m[0]
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
d = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def resign(ent, prot, payload):
    ent["protected"] = b(json.dumps(prot).encode())
    ent["payload"] = b(json.dumps(payload).encode())
    msg = (ent["protected"] + "." + ent["payload"]).encode()
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign",
        S + "/test-signer/example-signer-FFFF.key"], input=msg,
        capture_output=True, check=True).stdout
    # DER ECDSA-Sig-Value -> r||s
    i = 2 + (der[1] == 0x81); rl = der[i + 1]; r = der[i + 2:i + 2 + rl]
    j = i + 2 + rl; sl = der[j + 1]; s = der[j + 2:j + 2 + sl]
    ent["signature"] = b(r.lstrip(b"\0").rjust(32, b"\0") + s.lstrip(b"\0").rjust(32, b"\0"))
prot = json.loads(d(e["protected"])); pl = json.loads(d(e["payload"]))
fp = open(S + "/test-signer/example-signer-FFFF.crt").read()
der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=fp.encode(),
    capture_output=True, check=True).stdout
tprot = {"alg": "ES256", "kid": "r0ilsj2HElzkBUngypulRz4_EGk",
    "x5t#S256": b(hashlib.sha256(der).digest())}
if mode == "flip":
    p = list(e["payload"]); p[40] = "A" if p[40] != "A" else "B"; e["payload"] = "".join(p)
elif mode == "header-id":
    e["header"]["uniqueId"] = "0123f2408ea1fcf202"
elif mode == "crit":
    prot["crit"] = ["b64"]; e["protected"] = b(json.dumps(prot).encode())
elif mode == "clone":   # a recorded id with another key, validly signed
    other = json.loads(d(m[2]["payload"]))["publicKeySet"]["keys"][1]
    k = pl["publicKeySet"]["keys"][0]; k.pop("x5c")
    k["x"], k["y"] = other["x"], other["y"]
    pl["publicKeySet"]["keys"] = [k]; resign(e, tprot, pl)
elif mode == "alg":
    tprot["alg"] = "HS256"; resign(e, tprot, pl)
elif mode == "garbage":
    open(out, "w").write('{"not": "an array"}'); sys.exit(0)
json.dump([e], open(out, "w"))
PY
}
for c in "flip:bad-signature" "header-id:uniqueid-mismatch" "crit:forbidden-header" \
    "alg:alg-not-allowed" "clone:duplicate-different"; do
	mode=${c%%:*}; want=${c#*:}
	if ! forge "$T/$mode.json" "$mode"; then nok "forge $mode"; continue; fi
	out=$("$K" --json --state "$S" manifest import --policy "$T/test-policy.yaml" \
	    "$T/$mode.json" 2>&1); rc=$?
	r=$(printf '%s' "$out" | J '",".join(e["reason"] for e in d["manifests"][0]["refused"])' 2>/dev/null)
	a=$(printf '%s' "$out" | J 'd["manifests"][0]["added"]' 2>/dev/null)
	[ "$rc" = 3 ] && [ "$r" = "$want" ] && [ "$a" = 0 ] &&
	    ok "forged ($mode): refused with $want, nothing added" ||
	    nok "forged ($mode): rc=$rc reason=$r added=$a"
done
forge "$T/garbage.json" garbage
expect_fail "not a JSON array: whole file refused" "garbage.json: not a JSON array" \
    "$K" --state "$S" manifest import "$T/garbage.json"
n=$("$K" --json --state "$S" manifest list | J 'len(d["devices"])')
[ "$n" = 24 ] && ok "registry unchanged by forgeries (24 = 23 + self-signed)" || nok "registry: $n"
v=$("$K" --json --state "$S" manifest show 0123f2408ea1fcf201 | J 'd["keys"][0]["x5c"]')
[ "$v" = True ] && ok "clone did not replace the recorded device" || nok "clone: $v"

# --- missing policy
rm "$S/policy.yaml"
expect_fail "import without a policy names policy.yaml" "policy.yaml" \
    "$K" --state "$S" manifest import "$SAMPLES/manifests/ECC608C-TNGTLSU-B.json"
done_testing
