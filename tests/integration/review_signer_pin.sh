#!/usr/bin/env bash
# review_signer_pin.sh - a device is certified only on the word of a
# manifest signer the state's policy pins. Entries recorded in the
# registry under another policy (`manifest import --policy OTHER`, here
# pinning a signer of the attacker's own) used to make their chips
# certifiable by `batch sign`; they must be refused as not-in-manifest.
. "$(dirname "$0")/../lib.sh"
scratch
S="$T/state"
kr_batch_setup "$S" || { nok "state with root + intermediate + policy"; done_testing; exit 1; }
ok "state with root + intermediate + policy"

# The state pins fleet 1's signer; fleet 2 has a signer of its own.
"$TOOLS/fleetsim" --out "$T/f1" --seed 31 --devices 2 --batch-id lot-pin-1 >/dev/null
"$TOOLS/fleetsim" --out "$T/f2" --seed 32 --devices 3 --batch-id lot-pin-2 >/dev/null
cp "$T/f1/policy.yaml" "$T/f1/signer.crt" "$S/"
J() { python3 -c 'import json,sys; d=json.load(sys.stdin); print('"$1"')'; }

# --- fleet 2's manifest, imported under a policy that pins its signer
out=$("$KEYROOM" --state "$S" --json manifest import --policy "$T/f2/policy.yaml" \
    "$T/f2/manifest.json" 2>"$T/err"); rc=$?
a=$(printf '%s' "$out" | J 'd["manifests"][0]["added"]' 2>/dev/null)
[ "$rc" = 0 ] && [ "$a" = 3 ] && ok "import under another policy records 3 entries" ||
    { nok "import --policy: rc=$rc added=$a"; sed 's/^/#   /' "$T/err" | head -3; }

# --- ... but the state's policy does not vouch for them
out=$("$KEYROOM" --state "$S" --json batch sign "$T/f2/media" --pin "file:$S.pin" 2>"$T/err"); rc=$?
check "batch of unpinned-signer devices exits 4 (nothing signed)" test "$rc" = 4
O="$T/f2/media/keyroom-out/lot-pin-2"
check "report: 3 rejected, none signed, all not-in-manifest" python3 -c '
import json,sys
r=json.load(open(sys.argv[1]+"/report.json"))
recs=r["records"]; assert len(recs)==3, recs
assert all(x["decision"]=="reject" and x["reason"]=="not-in-manifest" for x in recs), recs
assert all("not pinned by the policy" in x["message"] for x in recs), recs
assert r["summary"]["signed"]==0' "$O"
check "no certificate written" test -z "$(ls -A "$O/certs" 2>/dev/null)"

# --- control: fleet 1, imported under the state's policy, is signed
out=$("$KEYROOM" --state "$S" --json manifest import "$T/f1/manifest.json" 2>"$T/err"); rc=$?
check "fleet 1 imports under the state policy" test "$rc" = 0
out=$("$KEYROOM" --state "$S" --json batch sign "$T/f1/media" --pin "file:$S.pin" 2>"$T/err"); rc=$?
[ "$rc" = 0 ] && ok "pinned-signer devices are signed (exit 0)" ||
    { nok "fleet 1 batch: rc=$rc"; sed 's/^/#   /' "$T/err" | head -3; }
check "keyroom audit verify passes" "$KEYROOM" --state "$S" audit verify
done_testing
