#!/usr/bin/env bash
# hostile_media.sh - the hostile-media suite: file-system attacks and bad
# batch descriptors refuse the whole medium (exit 4, a named reason, no
# certificate issued, the medium untouched); bad actors among the CSRs
# are each rejected with their own reason and get no certificate, while
# the good devices of the same batch are signed. Real binary, SoftHSM2,
# LMDB; fleetsim plays the vendor, the CM and the attacker.
. "$(dirname "$0")/../lib.sh"
scratch
S="$T/state"
kr_batch_setup "$S" || { nok "state"; done_testing; exit 1; }
"$TOOLS/fleetsim" --out "$T/f0" --seed 500 --devices 1 >/dev/null
cp "$T/f0/policy.yaml" "$T/f0/signer.crt" "$S/"
ok "state, policy pinning the simulated vendor"

issued() { "$KEYROOM" --state "$S" audit list --type cert-issued 2>/dev/null | wc -l; }
snap() { find "$1" -mindepth 1 -printf '%P|%y|%s|%T@\n' 2>/dev/null | sort; }
n=0
# mk ARGS...: a fresh medium $D/media with 2 good devices + ARGS.
mk() {
	n=$((n + 1)); D="$T/c$n"
	"$TOOLS/fleetsim" --out "$D" --seed $((1000 + n)) --devices 2 --signer "$T/f0" \
	    --manifest-on-media --batch-id "hostile-$n" "$@" >/dev/null 2>"$D.err" ||
	    { echo "# fleetsim failed: $(cat "$D.err")"; return 1; }
}
# refused NAME REGEX: the whole medium is refused with REGEX on stderr,
# exit 4, no certificate issued, nothing on the medium changed.
refused() {
	local name="$1" re="$2" out rc c0 c1 s0 s1
	c0=$(issued); s0=$(snap "$D/media")
	out=$("$KEYROOM" --state "$S" batch sign "$D/media" --pin "file:$S.pin" 2>&1 >/dev/null); rc=$?
	c1=$(issued); s1=$(snap "$D/media")
	if [ $rc -eq 4 ] && printf '%s' "$out" | grep -Eq -- "$re" && [ "$c0" = "$c1" ] && [ "$s0" = "$s1" ]; then
		ok "$name"
	else
		nok "$name"; echo "#   rc=$rc issued $c0->$c1 medium-changed=$([ "$s0" = "$s1" ] && echo no || echo yes)"
		echo "#   wanted /$re/, got: $out" | head -3
	fi
}

# --- file-system attacks: the medium is refused before anything is read
mk --attack symlink;    refused "symlink to /etc/passwd among the CSRs" "csr/zz-link.csr: symlink"
check "symlink target untouched" test -s /etc/passwd
mk --attack dirlink;    refused "directory symlink" "csr/zz-dir: symlink"
mk --attack batchlink;  refused "batch.json is a symlink" "batch.json: symlink"
mk --attack outlink;    refused "keyroom-out is a symlink (output redirection)" "keyroom-out: symlink"
check "nothing written through the keyroom-out symlink" test -z "$(ls -A "$D/elsewhere")"
mk --attack fifo;       refused "FIFO (would block a reader)" "csr/zz-fifo.csr: FIFO"
mk --attack socket;     refused "unix socket" "csr/zz-sock.csr: socket"
if [ "$(id -u)" = 0 ]; then
	mk --attack device; refused "character device node" "csr/zz-dev.csr: device node"
else
	skip "character device node" "needs root for mknod"
fi
mk --attack hardlink;   refused "hard link to a file elsewhere" "csr/zz-hard.csr: hard link"
mk --attack huge;       refused "16 GiB sparse file" "csr/zz-huge.csr: file too large"
mk --attack badname;    refused "non-UTF-8 file name" "csr/<entry>: name is not valid UTF-8"
mk --attack ctrlname;   refused "terminal escape in a file name" "control character in name"
mk --attack longname;   refused "over-long file name" "name too long"
mk --attack deep;       refused "directories nested too deep" "csr/d1/d2: directories nested too deep"
mk --attack unexpected; refused "autorun.inf at the top" "autorun.inf: unexpected entry"
mk --attack exe;        refused "executable among the CSRs" "csr/evil.exe: unexpected entry"

# --- the batch descriptor
mk --no-batch-json;     refused "no batch.json" "batch.json: missing"
mk; sed -i 's/"batch_id": "[^"]*"/"batch_id": "..\/..\/etc"/' "$D/media/batch.json"
refused "batch id with '/' and '..'" "'batch_id' must be"
mk; sed -i 's/^{/{"run": "rm -rf \/",/' "$D/media/batch.json"
refused "unknown key in batch.json" "unknown key 'run'"
mk; sed -i 's/^{/{"batch_id": "twice",/' "$D/media/batch.json"
refused "duplicate key in batch.json" "duplicate"
mk; printf '\x00\xffnot json' >"$D/media/batch.json.new"; mv "$D/media/batch.json.new" "$D/media/batch.json"
refused "batch.json is not JSON" "batch.json:"
mk --manufacturer cm-unknown; refused "manufacturer not in the policy" "manufacturer-unknown"
mk --profile server;    refused "profile not allowed for the manufacturer" "profile-not-allowed"
mk; sed -i 's/"expected_count": [0-9]*/"expected_count": -5/' "$D/media/batch.json"
refused "negative expected_count" "'expected_count' must be"

# --- bad actors among the CSRs: each its own reason, no certificate
mk --bad grey --bad clone --bad wrongslot --bad badsig --bad wrongkey --bad lite \
   --bad dup --bad cnmismatch --bad wrongpart --bad forged --bad garbage \
   --bad truncated --bad trailing --bad empty --bad rsa
head -c 20000 /dev/urandom >"$D/media/csr/bad-oversize-00.csr"
printf 'csr/bad-oversize-00.csr\tbad-csr\n' >>"$D/expect.tsv"
s0=$(snap "$D/media")
"$KEYROOM" --state "$S" --json batch sign "$D/media" --pin "file:$S.pin" >"$T/bad.json" 2>"$T/bad.err"; rc=$?
check "mixed batch: exit 3 (some rejected), no crash" test $rc -eq 3
s1=$(snap "$D/media" | grep -v '^keyroom-out')
check "mixed batch: nothing outside keyroom-out/ changed" test "$(printf '%s\n' "$s0" | grep -v '^keyroom-out')" = "$s1"
"$KEYROOM" --state "$S" --json audit list --type cert-issued >"$T/issued.json" 2>/dev/null
python3 - "$D/expect.tsv" "$D/media/keyroom-out/hostile-$n" "$T/issued.json" <<'EOF' >"$T/verdicts"
import json, os, sys
exp = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
out = sys.argv[2]
rep = json.load(open(out + "/report.json"))
recs = {r["file"]: r for r in rep["records"]}
issued = {}
for e in json.load(open(sys.argv[3])):
    issued.setdefault(e.get("device-id"), []).append(e)
for f, want in exp:
    r = recs.get(f)
    name = os.path.basename(f)
    if r is None:
        print(f"fail\t{name}\tno report record"); continue
    if want == "accept":
        ok = r["decision"] == "accept" and os.path.exists(f"{out}/certs/{r['uniqueId']}.pem")
    else:
        uid = r.get("uniqueId")
        accepted_elsewhere = any(x["decision"] == "accept" and x.get("uniqueId") == uid
                                 for x in rep["records"]) if uid else False
        ok = (r["decision"] == "reject" and r["reason"] == want and "serial" not in r
              and (uid is None or len(issued.get(uid, [])) == (1 if accepted_elsewhere else 0))
              and (uid is None or accepted_elsewhere or not os.path.exists(f"{out}/certs/{uid}.pem")))
    print(f"{'ok' if ok else 'fail'}\t{name}\t{want}\t{r.get('reason')}: {r.get('message','')}")
EOF
while IFS=$'\t' read -r res name want got; do
	[ "$res" = ok ] && ok "CSR $name: $want, no certificate" || { nok "CSR $name: wanted $want"; echo "#   got $got"; }
done <"$T/verdicts"
check "report.txt names every rejected file" sh -c "for f in \$(cut -f1 '$D/expect.tsv' | grep bad- | grep -v dup-00-a); do grep -q \"\$f\" '$D/media/keyroom-out/hostile-$n/report.txt' || exit 1; done"
check "forged manifest: its entry refused at import (unknown signer)" grep -q '1 entries refused' "$D/media/keyroom-out/hostile-$n/report.txt"
check "request-rejected entries in the audit log" test "$("$KEYROOM" --state "$S" audit list --type request-rejected | wc -l)" -ge 38
check "keyroom audit verify passes after the hostile suite" "$KEYROOM" --state "$S" audit verify
done_testing
