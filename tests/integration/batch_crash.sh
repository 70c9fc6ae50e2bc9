#!/usr/bin/env bash
# batch_crash.sh - kill -9 at random crash points of `keyroom batch sign`
# (KEYROOM_TEST_CRASH_AT=n: the process SIGKILLs itself at the n-th crash
# point: after the intent commit, after signing, after the issued commit,
# after the chunk's output, after batch-end, before sync / before and
# after the rename of the output, after the batch is marked done), then
# run the batch again and check: the output is absent or whole, the log
# verifies, no serial twice, every certificate in the output has its
# issued entry, every intent is resolved, no device certified twice.
. "$(dirname "$0")/../lib.sh"
scratch
S="$T/state"
kr_batch_setup "$S" || { nok "state"; done_testing; exit 1; }
"$TOOLS/fleetsim" --out "$T/f0" --seed 900 --devices 1 >/dev/null
cp "$T/f0/policy.yaml" "$T/f0/signer.crt" "$S/"
ok "state"

NPOINTS=21	# 8 CSRs in chunks of 2: 4 chunks x 4 points + 5 at the end
seed=${KEYROOM_CRASH_SEED:-$(date +%s)}
echo "# crash points drawn with seed $seed (KEYROOM_CRASH_SEED to repeat)"
points=$(python3 -c "import random; random.seed($seed); print(*random.sample(range(1, $NPOINTS + 1), 20))")

check_state() { # MEDIA BATCH [resolved]: invariants over the log and this output
	"$KEYROOM" --state "$S" --json audit list >"$T/all.json" 2>/dev/null &&
	python3 - "$1/keyroom-out/$2" "$T" "${3:-}" <<'EOF'
import base64, json, os, subprocess, sys, hashlib
out, t, resolved_wanted = sys.argv[1], sys.argv[2], sys.argv[3] == "resolved"
entries = json.load(open(f"{t}/all.json"))
of = lambda ty: [e for e in entries if e["type"] == ty]
intents, issued, abandoned = of("cert-intent"), of("cert-issued"), of("cert-abandoned")
serials = [(e["issuer"], e["serial"]) for e in intents]
assert len(serials) == len(set(serials)), "serial reserved twice"
resolved = [e["intent"] for e in issued] + [e["intent"] for e in abandoned]
assert len(resolved) == len(set(resolved)), "intent resolved twice"
assert set(resolved) <= {str(e["index"]) for e in intents}, "issued without intent"
if resolved_wanted:  # a restart turns open intents into abandoned ones
    assert {str(e["index"]) for e in intents} == set(resolved), "unresolved intent"
devs = [e["device-id"] for e in issued if "device-id" in e]
assert len(devs) == len(set(devs)), "a device certified twice"
hashes = {e["cert-sha256"] for e in issued}
if os.path.exists(out):
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=out, check=True)
    certs = os.listdir(out + "/certs")
    assert len(certs) == 8, f"{len(certs)} certificates in a whole output"
    for c in certs:
        pem = open(f"{out}/certs/{c}").read().split("-----")[2]
        der = base64.b64decode("".join(pem.split()))
        assert hashlib.sha256(der).hexdigest() in hashes, f"{c} not in the log"
EOF
}

i=0
for k in $points; do
	i=$((i + 1)); M="$T/m$i"
	"$TOOLS/fleetsim" --out "$M" --seed $((3000 + i)) --devices 8 --signer "$T/f0" \
	    --manifest-on-media --batch-id "crash-$i" >/dev/null
	(KEYROOM_TEST_CRASH_AT=$k exec "$KEYROOM" -q --state "$S" batch sign "$M/media" --chunk 2 \
	    --pin "file:$S.pin" >/dev/null 2>&1) 2>/dev/null; rc=$?
	if [ $rc -ne 137 ]; then nok "crash point $k: killed (rc=$rc)"; continue; fi
	if ! check_state "$M/media" "crash-$i" 2>"$T/why"; then
		nok "crash point $k: state after kill -9"; sed 's/^/#   /' "$T/why" | tail -3; continue
	fi
	"$KEYROOM" -q --state "$S" batch sign "$M/media" --chunk 2 --pin "file:$S.pin" >/dev/null 2>"$T/err"; rc=$?
	if [ $rc -ne 0 ] && ! { [ $rc -eq 4 ] && grep -q "already used" "$T/err" && [ -d "$M/media/keyroom-out/crash-$i" ]; }; then
		nok "crash point $k: re-run completes (rc=$rc: $(head -c 200 "$T/err"))"; continue
	fi
	if ! check_state "$M/media" "crash-$i" resolved 2>"$T/why" || [ ! -d "$M/media/keyroom-out/crash-$i" ] ||
	    [ -n "$(ls -A "$M/media/keyroom-out" | grep -v "^crash-$i\$")" ]; then
		nok "crash point $k: whole output, log consistent after re-run"; sed 's/^/#   /' "$T/why" | tail -3; continue
	fi
	ok "crash point $k: killed, re-run completed, no duplicate, every cert logged"
done
check "keyroom audit verify after $i crashes" "$KEYROOM" --state "$S" audit verify
done_testing
