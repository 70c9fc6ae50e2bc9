#!/usr/bin/env bash
# batch_sign.sh - `keyroom batch sign` end to end with the real binary, a
# fresh SoftHSM2 token store and a real LMDB log: a simulated fleet and
# manifest (fleetsim), the whole output of DESIGN.md 5.3 checked with
# openssl, a replayed batch id refused, quotas holding across batches.
. "$(dirname "$0")/../lib.sh"
scratch
S="$T/state"
kr_batch_setup "$S" || { nok "state with root + intermediate + policy"; done_testing; exit 1; }
ok "state with root + intermediate + policy"

# --- 1. a clean batch: 8 P-256 + 2 P-384 devices, manifest on the stick
"$TOOLS/fleetsim" --out "$T/f1" --seed 11 --devices 8 --p384 2 \
    --quota 14 --manifest-on-media --batch-id lot-0001 >/dev/null
cp "$T/f1/policy.yaml" "$T/f1/signer.crt" "$S/"
M="$T/f1/media"
find "$M" -mindepth 1 -printf '%P %s %T@\n' | sort >"$T/before"
out=$("$KEYROOM" --state "$S" --json batch sign "$M" --pin "file:$S.pin" 2>"$T/err"); rc=$?
[ $rc -eq 0 ] && ok "batch sign exits 0 when every request is signed" ||
    { nok "batch sign exits 0 (rc=$rc)"; sed 's/^/#   /' "$T/err" | head; }
O="$M/keyroom-out/lot-0001"
check "--json reports 10 signed, 0 rejected" python3 -c '
import json,sys; j=json.loads(sys.argv[1]); assert j["signed"]==10 and j["rejected"]==0 and j["issued"]==10, j' "$out"
check "output directory has the 5.3 layout" test -d "$O/certs" -a -f "$O/chain.pem" -a -f "$O/report.json" \
    -a -f "$O/report.txt" -a -f "$O/checkpoint" -a -f "$O/SHA256SUMS" -a -f "$O/registration/aws-iot-bulk.jsonl" \
    -a -f "$O/registration/azure-dps-enrollments.json"
check "10 certificates, named by uniqueId" test "$(ls "$O/certs" | wc -l)" = 10
check "no temp directory left behind" test -z "$(ls -A "$M/keyroom-out" | grep -v '^lot-0001$')"
find "$M" -mindepth 1 -path "$M/keyroom-out" -prune -o -printf '%P %s %T@\n' | sort >"$T/after"
check "nothing on the medium changed outside keyroom-out/" diff <(grep -v '^keyroom-out' "$T/before") <(grep -v '^keyroom-out' "$T/after")
check "SHA256SUMS verifies" sh -c "cd '$O' && sha256sum --quiet -c SHA256SUMS"
awk '/BEGIN/{n++} {print > "'"$T"'/chain-" n ".pem"}' "$O/chain.pem"
bad=0
for c in "$O"/certs/*.pem; do
	openssl verify -x509_strict -CAfile "$T/chain-2.pem" -untrusted "$T/chain-1.pem" "$c" >/dev/null 2>&1 || bad=$((bad+1))
done
[ $bad -eq 0 ] && ok "every certificate verifies (openssl -x509_strict) to the chain" || nok "$bad certificates do not verify"
# Each certificate carries the key of the CSR of its device.
bad=0
for csr in "$M"/csr/*.csr; do
	cn=$(openssl req -in "$csr" -noout -subject -nameopt multiline | sed -n 's/ *commonName *= *sn//p')
	id=$(printf '%s' "$cn" | tr 'A-F' 'a-f')
	a=$(openssl req -in "$csr" -noout -pubkey | openssl pkey -pubin -outform der 2>/dev/null | sha256sum)
	b=$(openssl x509 -in "$O/certs/$id.pem" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform der 2>/dev/null | sha256sum)
	[ "$a" = "$b" ] || bad=$((bad+1))
done
[ $bad -eq 0 ] && ok "certificate key == CSR key for every device" || nok "$bad certificates with a foreign key"
check "subject from the policy template (CN=sn<UNIQUEID>, O=Fleetsim OEM)" sh -c \
    "openssl x509 -in \"\$(ls '$O'/certs/*.pem | head -1)\" -noout -subject | grep -q 'O = Fleetsim OEM, CN = sn[0-9A-F]*\$'"
check "report.json: 10 accept records with serial and cert sha256" python3 -c '
import json,sys,hashlib,subprocess
r=json.load(open(sys.argv[1]+"/report.json"))
assert r["batch"]["batch_id"]=="lot-0001"
recs=r["records"]; assert len(recs)==10
for x in recs:
    assert x["decision"]=="accept" and x["serial"] and len(x["cert_sha256"])==64
    der=subprocess.run(["openssl","x509","-in",sys.argv[1]+"/certs/"+x["uniqueId"]+".pem","-outform","der"],capture_output=True).stdout
    assert hashlib.sha256(der).hexdigest()==x["cert_sha256"]
assert r["summary"]["signed"]==10' "$O"
check "serials: 16 content octets, positive, pairwise distinct" python3 -c '
import glob,subprocess,sys
S=[subprocess.run(["openssl","x509","-in",c,"-noout","-serial"],capture_output=True,text=True).stdout.strip().split("=")[1]
   for c in glob.glob(sys.argv[1]+"/certs/*.pem")]
assert len(S)==10 and len(set(S))==10, S
assert all(len(x)==32 and 1<=int(x[:2],16)<=0x7f for x in S), S' "$O"
check "AWS IoT bulk registration: 10 JSON lines" python3 -c '
import json,sys
L=[json.loads(l) for l in open(sys.argv[1])]
assert len(L)==10 and all(set(x)=={"ThingName","SerialNumber","CertificatePem"} for x in L)' "$O/registration/aws-iot-bulk.jsonl"
check "Azure DPS enrollments: 10 x509 individual enrollments" python3 -c '
import json,sys
j=json.load(open(sys.argv[1])); e=j["enrollments"]
assert j["mode"]=="create" and len(e)==10
assert all(x["attestation"]["type"]=="x509" and x["registrationId"].startswith("sn") for x in e)' "$O/registration/azure-dps-enrollments.json"
check "report.txt summary" grep -q '^signed: *10$' "$O/report.txt"
check "checkpoint in the output is a signed note" grep -q '^— ' "$O/checkpoint"
check "keyroom audit verify passes" "$KEYROOM" --state "$S" audit verify

# --- 2. the same batch id again is refused, and nothing changes
cp -r "$T/f1/media" "$T/replay" && rm -rf "$T/replay/keyroom-out"
expect_fail "replayed batch id refused" "batch id 'lot-0001' was already used" \
    "$KEYROOM" --state "$S" batch sign "$T/replay" --pin "file:$S.pin"
"$KEYROOM" --state "$S" batch sign "$T/replay" --pin "file:$S.pin" >/dev/null 2>&1; rc=$?
check "replay exits 4" test $rc -eq 4
check "replay wrote no output" test ! -e "$T/replay/keyroom-out/lot-0001"
# Same batch id on the original stick: the output exists already too.
expect_fail "re-running on a stick that holds the output is refused" "already used" \
    "$KEYROOM" --state "$S" batch sign "$M" --pin "file:$S.pin"

# --- 3. quota holds across batches (policy quota 14; 10 used)
"$TOOLS/fleetsim" --out "$T/f2" --seed 11 --start 100 --devices 6 --quota 14 \
    --signer "$T/f1" --manifest-on-media --batch-id lot-0002 >/dev/null
"$KEYROOM" --state "$S" --json batch sign "$T/f2/media" --pin "file:$S.pin" >"$T/out2" 2>"$T/err2"; rc=$?
check "second batch over quota exits 3 (some rejected)" test $rc -eq 3
check "4 signed, 2 quota-exceeded" python3 -c '
import json,sys; r=json.load(open(sys.argv[1]+"/keyroom-out/lot-0002/report.json"))
d=[x["decision"] for x in r["records"]]; q=[x for x in r["records"] if x.get("reason")=="quota-exceeded"]
assert d.count("accept")==4 and len(q)==2, d' "$T/f2/media"
"$TOOLS/fleetsim" --out "$T/f3" --seed 11 --start 200 --devices 2 --quota 14 \
    --signer "$T/f1" --manifest-on-media --batch-id lot-0003 >/dev/null
"$KEYROOM" --state "$S" batch sign "$T/f3/media" --pin "file:$S.pin" >/dev/null 2>&1; rc=$?
check "third batch: quota used up, nothing signed, exit 4" test $rc -eq 4
check "third batch still gets its report" grep -q quota-exceeded "$T/f3/media/keyroom-out/lot-0003/report.json"
check "no certificate for the over-quota devices" test -z "$(ls -A "$T/f3/media/keyroom-out/lot-0003/certs")"

# --- 4. DER CSRs and an already-certified device in a later batch
"$TOOLS/fleetsim" --out "$T/f4" --seed 11 --start 0 --devices 1 --quota 14 --der \
    --signer "$T/f1" --batch-id lot-0004 >/dev/null
"$KEYROOM" --state "$S" --json batch sign "$T/f4/media" --pin "file:$S.pin" >/dev/null 2>&1; rc=$?
check "a device certified in an earlier batch is refused (already-certified)" sh -c \
    "[ $rc -eq 4 ] && grep -q already-certified '$T/f4/media/keyroom-out/lot-0004/report.json'"
# --- 5. progress bar on a terminal (count, rate, ETA), silent otherwise
"$TOOLS/fleetsim" --out "$T/f5" --seed 11 --start 300 --devices 3 --quota 14 \
    --signer "$T/f1" --manifest-on-media --batch-id lot-0005 >/dev/null
if command -v script >/dev/null; then
	script -qec "'$KEYROOM' --state '$S' batch sign '$T/f5/media' --chunk 1 --pin 'file:$S.pin'" /dev/null \
	    >"$T/tty.out" 2>&1
	check "progress bar with count, rate and ETA on a terminal" grep -Eq 'signing \[#+\.*\] [0-9]+/3 +[0-9]+/s +ETA' "$T/tty.out"
	# a manifest's length is known only once read: a count and a rate
	"$TOOLS/fleetsim" --out "$T/f5m" --seed 12 --start 5000 --devices 40 --signer "$T/f1" \
	    --batch-id lot-m >/dev/null
	script -qec "'$KEYROOM' --state '$S' manifest import '$T/f5m/manifest.json'" /dev/null >"$T/mtty.out" 2>&1
	tr '\r' '\n' <"$T/mtty.out" | grep -Eq '^importing 40 +[0-9]+/s *$' &&
		ok "manifest import counts its entries on a terminal" || nok "manifest import progress"
	script -qec "'$KEYROOM' -q --state '$S' manifest import '$T/f5m/manifest.json'" /dev/null >"$T/mq.out" 2>&1
	! grep -q importing "$T/mq.out" && ok "... and not with -q" || nok "manifest import progress with -q"
else
	skip "progress bar on a terminal" "no script(1)"
fi
"$TOOLS/fleetsim" --out "$T/f6" --seed 11 --start 400 --devices 1 --quota 14 \
    --signer "$T/f1" --manifest-on-media --batch-id lot-0006 >/dev/null
"$KEYROOM" --state "$S" batch sign "$T/f6/media" --pin "file:$S.pin" >/dev/null 2>"$T/quiet.err"
check "no progress output when stderr is not a terminal" test ! -s "$T/quiet.err"
check "batch list --json: lot-0001 done, quota 14 used" python3 -c '
import json,sys; j=json.loads(sys.argv[1])
assert j["batches"]["lot-0001"]["state"]=="done" and j["batches"]["lot-0001"]["issued"]==10
assert j["quota"]["cm-fleetsim"]==14, j["quota"]  # lot-0005/6: over quota' "$("$KEYROOM" --state "$S" --json batch list)"
check "keyroom audit verify still passes" "$KEYROOM" --state "$S" audit verify
done_testing
