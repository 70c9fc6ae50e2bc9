#!/usr/bin/env bash
# batch_renew.sh - renewal / re-key through a batch: a new CSR plus a
# detached signature over it by the device's current (certified or
# manifest) key is accepted per policy, the old certificate is recorded
# as superseded; a bad proof, or a new key without proof, is refused.
. "$(dirname "$0")/../lib.sh"
scratch
S="$T/state"
kr_batch_setup "$S" || { nok "state"; done_testing; exit 1; }
"$TOOLS/fleetsim" --out "$T/f1" --seed 21 --devices 3 --manifest-on-media --batch-id first >/dev/null
cp "$T/f1/policy.yaml" "$T/f1/signer.crt" "$S/"
check "first batch: 3 devices certified" "$KEYROOM" -q --state "$S" batch sign "$T/f1/media" --pin "file:$S.pin"
O1="$T/f1/media/keyroom-out/first"

# devices 0 and 1 re-key (new key, CSR + .sig by the old key); device 2
# sends a plain CSR again.
"$TOOLS/fleetsim" --out "$T/f2" --seed 21 --devices 3 --renew 2 --signer "$T/f1" --batch-id renew-1 >/dev/null
"$KEYROOM" --state "$S" batch sign "$T/f2/media" --pin "file:$S.pin" >/dev/null 2>&1; rc=$?
check "renewal batch exits 3 (2 renewed, 1 already certified)" test $rc -eq 3
O2="$T/f2/media/keyroom-out/renew-1"
check "report: 2 renewals accepted, the plain CSR already-certified" python3 -c '
import json,sys; r=json.load(open(sys.argv[1]+"/report.json"))["records"]
acc=[x for x in r if x["decision"]=="accept"]
assert len(acc)==2 and all(x["renewal"] for x in acc), r
assert [x["reason"] for x in r if x["decision"]=="reject"]==["already-certified"], r' "$O2"
bad=0
for c in "$O2"/certs/*.pem; do
	id=$(basename "$c" .pem)
	new=$(openssl x509 -in "$c" -noout -pubkey | sha256sum)
	old=$(openssl x509 -in "$O1/certs/$id.pem" -noout -pubkey | sha256sum)
	csr=$(grep -l . "$T/f2/media/csr/"*.csr | while read -r f; do
		s=$(openssl req -in "$f" -noout -subject | tr 'A-F' 'a-f'); case "$s" in *"$id"*) echo "$f";; esac; done)
	want=$(openssl req -in "$csr" -noout -pubkey | sha256sum)
	[ "$new" != "$old" ] && [ "$new" = "$want" ] || bad=$((bad + 1))
done
check "renewed certificates carry the new keys" test $bad -eq 0
"$KEYROOM" --state "$S" --json audit list --type revoked >"$T/rev.json" 2>/dev/null
check "the 2 old certificates are recorded as superseded" python3 -c '
import json,sys; r=json.load(open(sys.argv[1]))
assert len(r)==2 and all(x["reason"]=="superseded" for x in r), r' "$T/rev.json"

# a tampered proof
"$TOOLS/fleetsim" --out "$T/f3" --seed 21 --start 2 --devices 1 --renew 1 --signer "$T/f1" --batch-id renew-2 >/dev/null
# flip a bit of the signature's r (writing a fixed byte left it valid 1 time in 256)
f=$(ls "$T/f3/media/csr/"*.sig)
python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[12] ^= 0x01
open(p, "wb").write(b)' "$f"
"$KEYROOM" --state "$S" batch sign "$T/f3/media" --pin "file:$S.pin" >/dev/null 2>&1; rc=$?
check "tampered renewal proof: renewal-bad-proof, nothing signed" sh -c \
    "[ $rc -eq 4 ] && grep -q renewal-bad-proof '$T/f3/media/keyroom-out/renew-2/report.json'"
# a new key without any proof is not a renewal
"$TOOLS/fleetsim" --out "$T/f4" --seed 21 --start 2 --devices 1 --renew 1 --signer "$T/f1" --batch-id renew-3 >/dev/null
rm -f "$T/f4/media/csr/"*.sig
"$KEYROOM" --state "$S" batch sign "$T/f4/media" --pin "file:$S.pin" >/dev/null 2>&1; rc=$?
check "new key without proof: key-mismatch" sh -c \
    "[ $rc -eq 4 ] && grep -q key-mismatch '$T/f4/media/keyroom-out/renew-3/report.json'"
check "keyroom audit verify" "$KEYROOM" --state "$S" audit verify
done_testing
