#!/usr/bin/env bash
# scripts/demo.sh - the main job of keyroom, end to end, on the embedded
# defaults (SoftHSM2 token store + LMDB log in ./demo-out/state):
#   make demo        (or: BUILD=build ./scripts/demo.sh)
#
#  1. init: state directory, SoftHSM2 tokens, the audit log and its key
#  2. genesis ceremony: random token PINs split 2-of-3 (custodians for the
#     root, operators for the issuing token), root key born in the token,
#     share cards printed (text + QR)
#  3. intermediate ceremony under both quorums
#  4. a simulated chip vendor (signed Microchip-format manifest) and a
#     contract manufacturer's USB stick of CSRs, with bad actors mixed in;
#     the signing policy installed by two root custodians (install-policy)
#  5. a signing session opened by two operators' cards: batch sign
#  6. the report: accepted and rejected devices with reasons
#  7. root rotation to a new algorithm, with the devices' update package
#  8. the auditor's view: audit verify, the checkpoint as text + QR, export
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BUILD:=build}"
K="$PWD/$BUILD/keyroom"
SIM="$PWD/$BUILD/tools/fleetsim"
OUT="${DEMO_OUT:-$PWD/demo-out}"
SCR="$PWD/ceremony/scripts"
[ -x "$K" ] && [ -x "$SIM" ] || { echo "demo: $K or $SIM missing: run make first" >&2; exit 1; }
export KEYROOM_NO_PROGRESS=${KEYROOM_NO_PROGRESS:-}
B=; N=; if [ -t 1 ]; then B=$(tput bold 2>/dev/null || true); N=$(tput sgr0 2>/dev/null || true); fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
t0=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"
S="$OUT/state"; C="$OUT/cards"
kr() { "$K" --state "$S" "$@"; }
card() { ls "$C/$1-$2-"*.card | head -1; }

step "1. keyroom init: state directory, SoftHSM2 token store, audit log and its Ed25519 key"
# The PIN used only to take over the fresh tokens; genesis replaces it with
# random PINs that nobody sees, split among custodians and operators.
(umask 077; head -c 24 /dev/urandom | base64 >"$OUT/init.pin")
kr -q init --pin "file:$OUT/init.pin"
echo "state: $S"

step "2. genesis ceremony ($SCR/genesis.yaml)"
# Everyone compares the script's hash, read aloud as words, with the
# reviewed copy; the run refuses a script whose hash differs.
kr ceremony check "$SCR/genesis.yaml" | head -7
H=$(sha256sum "$SCR/genesis.yaml" | cut -d' ' -f1)
kr --yes ceremony run "$SCR/genesis.yaml" --expect-sha256 "$H" --init-pin "file:$OUT/init.pin" \
    --cards "$C" --media "$OUT/ceremony-genesis" --no-prompt
rm -f "$OUT/init.pin"
echo
echo "Share cards (text, PNG and SVG; one per custodian/operator) are in $C. The first one:"
kr -q quorum show-card "file:$(card root 1)"

step "3. intermediate ceremony: two custodians and two operators bring their cards"
kr --yes ceremony run "$SCR/intermediate.yaml" --no-prompt --media "$OUT/ceremony-intermediate" \
    --shares "root=file:$(card root 1)" --shares "root=file:$(card root 3)" \
    --shares "issuing=file:$(card issuing 1)" --shares "issuing=file:$(card issuing 2)"

step "4. the chip vendor's signed manifest and the contract manufacturer's USB stick"
# 24 genuine chips (20 P-256 ATECC608, 4 P-384 TA100) in a vendor-signed
# manifest, plus bad actors: a grey-market chip, a cloned chip, a CSR with a
# bad signature, a CSR with someone else's key, a "lite" chip without a key,
# a duplicate, and a garbage file.
"$SIM" --out "$OUT/fleet" --seed 7 --devices 20 --p384 4 --quota 100 \
    --manifest-on-media --batch-id lot-2026-11-25-a --manufacturer cm-acme \
    --bad grey --bad clone --bad badsig --bad wrongkey --bad lite --bad dup \
    --bad garbage >/dev/null
# The signing policy (the vendor's pinned manifest signer, parts, the
# manufacturer and its quota) comes in on the officers' stick and is
# installed only by two root custodians; its digest is logged.
mkdir -p "$OUT/ceremony-policy/policy"
cp "$OUT/fleet/policy.yaml" "$OUT/fleet/signer.crt" "$OUT/ceremony-policy/policy/"
kr --yes ceremony run "$SCR/install-policy.yaml" --no-prompt --media "$OUT/ceremony-policy" \
    --shares "root=file:$(card root 2)" --shares "root=file:$(card root 3)" |
    grep -E "policy installed|unlocked by|done" || true
kr -q policy check "$S/policy.yaml" | head -2
sed -i -e 's/^    algorithms: \[p256\]$/    algorithms: [p256, p384]/' "$S/keyroom.yaml"
M="$OUT/fleet/media"
echo "USB stick: $M"
ls "$M" "$M/csr" | head -12; echo "  ... $(ls "$M/csr" | wc -l) files in csr/"

step "5. signing session: operators 2 and 3 unlock the issuing token; batch sign"
set +e
kr session run --no-prompt --shares "issuing=file:$(card issuing 2)" \
    --shares "issuing=file:$(card issuing 3)" -- batch sign "$M"
rc=$?
set -e
echo "batch sign exit code: $rc (0 all signed, 3 some rejected, 4 nothing signed)"
[ "$rc" = 0 ] || [ "$rc" = 3 ] || { echo "demo: batch failed" >&2; exit 1; }

O="$M/keyroom-out/lot-2026-11-25-a"
step "6. the report ($O/report.txt)"
cat "$O/report.txt"
echo
echo "Every certificate checked with OpenSSL against the ceremony's root:"
ok=0; bad=0
for c in "$O"/certs/*.pem; do
	if openssl verify -x509_strict -CAfile "$S/certs/root.pem" \
	    -untrusted "$S/certs/intermediate.pem" "$c" >/dev/null 2>&1; then
		ok=$((ok + 1)); else bad=$((bad + 1)); fi
done
echo "  $ok verify, $bad fail"
(cd "$O" && sha256sum --quiet -c SHA256SUMS) && echo "  SHA256SUMS of the output verifies"
[ "$bad" = 0 ]

step "7. root rotation (crypto-agility): new P-384 root, cross certificates, CMS update package for devices"
cp "$S/certs/root.pem" "$OUT/old-root.pem"
kr -q --yes ceremony run "$SCR/rotation.yaml" --no-prompt --media "$OUT/ceremony-rotation" \
    --shares "root=file:$(card root 2)" --shares "root=file:$(card root 3)" \
    --shares "issuing=file:$(card issuing 1)" --shares "issuing=file:$(card issuing 3)" |
    grep -E "^--- Step|done:" | sed 's/^/  /'
openssl cms -verify -inform DER -in "$OUT/ceremony-rotation/root-update.p7" -binary \
    -CAfile "$OUT/old-root.pem" -purpose any -out "$OUT/new-root.der" 2>&1 | sed 's/^/  openssl cms: /'
echo "  the old root's devices accept the new root: $OUT/ceremony-rotation/root-update.p7"

step "8. the auditor's view"
kr audit verify
kr audit checkpoint --qr
kr -q audit export "$OUT/audit-export" >/dev/null
echo "auditor's export (C2SP tlog-tiles, checkpoints, vkey, proofs, LMDB copy): $OUT/audit-export"
echo "verifier key: $(kr audit vkey)"

step "done in $(( $(date +%s) - t0 ))s"
cat <<EOT
  state directory         $S
  share cards             $C
  ceremony transcripts    $OUT/ceremony-*/
  root update package     $OUT/ceremony-rotation/root-update.p7
  root / intermediate     $S/certs/root.pem, $S/certs/intermediate.pem
  batch output            $O
  audit export            $OUT/audit-export
Try: $K --state $S audit list | tail
     $K --state $S manifest list | head
EOT
