#!/usr/bin/env bash
# ceremony/demo.sh - the quorum part of `make demo`: genesis with demo
# custodians and operators (their share cards printed), the intermediate
# under both quorums, a signing session that signs a simulated batch,
# a revocation with CRL, and a root rotation, all verified with OpenSSL.
#   ceremony/demo.sh [BUILD] [OUT]     (defaults: build, ./demo-out/ceremony)
# Demo only: the cards are written to files so the demo can run unattended;
# in a real ceremony they are printed and handed to their custodians.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD:-build}}
OUT=${2:-$PWD/demo-out/ceremony}
K="$PWD/$BUILD/keyroom"; SIM="$PWD/$BUILD/tools/fleetsim"; SCR="$PWD/ceremony/scripts"
[ -x "$K" ] || { echo "demo: $K missing: run make first" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
rm -rf "$OUT"; mkdir -p "$OUT"
S="$OUT/state"; C="$OUT/cards"; M="$OUT/media"
card() { ls "$C/$1-$2-"*.card | head -1; }
(umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$OUT/init.pin")

step "keyroom init (the initial PIN is replaced by random, split PINs in the genesis ceremony)"
"$K" -q --state "$S" init --pin "file:$OUT/init.pin"

step "genesis ceremony: script hash read aloud, tokens taken over, PINs split 2-of-3, P-256 root"
"$K" --state "$S" ceremony check "$SCR/genesis.yaml" | head -7
H=$(sha256sum "$SCR/genesis.yaml" | cut -d' ' -f1)
"$K" -q --state "$S" --yes ceremony run "$SCR/genesis.yaml" --expect-sha256 "$H" \
    --init-pin "file:$OUT/init.pin" --cards "$C" --media "$M" --no-prompt |
    grep -E "^--- Step|done:|card for|transcript"

step "a demo share card (custodian A of the root quorum)"
"$K" -q --state "$S" quorum show-card "file:$(card root 1)" | sed -n '1,17p'
echo "  (QR code: $(card root 1).png / .svg)"

step "intermediate ceremony: custodians A and C, operators B and C enter their cards"
"$K" -q --state "$S" --yes ceremony run "$SCR/intermediate.yaml" --no-prompt --media "$M" \
    --shares "root=file:$(card root 1)" --shares "root=file:$(card root 3)" \
    --shares "issuing=file:$(card issuing 2)" --shares "issuing=file:$(card issuing 3)" |
    grep -E "unlocked by|done: (p256|intermediate)"

if [ -x "$SIM" ]; then
	step "signing session: operators A and C unlock the issuing token for one batch"
	"$SIM" --out "$OUT/fleet" --seed 7 --devices 5 --quota 20 --manifest-on-media \
	    --batch-id demo-lot-1 >/dev/null
	cp "$OUT/fleet/policy.yaml" "$OUT/fleet/signer.crt" "$S/"
	if "$K" -q --state "$S" batch sign "$OUT/fleet/media" --pin "file:$OUT/init.pin" 2>&1; then
		echo "demo: batch sign ran outside a session!" >&2; exit 1
	fi
	"$K" -q --state "$S" session run --no-prompt --shares "file:$(card issuing 1)" \
	    --shares "file:$(card issuing 3)" -- batch sign "$OUT/fleet/media"
	for c in "$OUT/fleet/media/keyroom-out/demo-lot-1/certs/"*.pem; do
		openssl verify -x509_strict -CAfile "$S/certs/root.pem" \
		    -untrusted "$S/certs/intermediate.pem" "$c"
	done
fi

step "root rotation: new P-384 root, cross certificates, CMS update package, old keys destroyed"
cp "$S/certs/root.pem" "$OUT/old-root.pem"
"$K" -q --state "$S" --yes ceremony run "$SCR/rotation.yaml" --no-prompt --media "$OUT/rotation" \
    --shares "root=file:$(card root 2)" --shares "root=file:$(card root 3)" \
    --shares "issuing=file:$(card issuing 1)" --shares "issuing=file:$(card issuing 2)" |
    grep -E "done: (the|new|key|p384)"
openssl cms -verify -inform DER -in "$OUT/rotation/root-update.p7" -binary \
    -CAfile "$OUT/old-root.pem" -purpose any -out "$OUT/new-root.der"
openssl verify -x509_strict -CAfile "$OUT/old-root.pem" \
    -untrusted "$OUT/rotation/cross-old-to-new.pem" "$S/certs/intermediate.pem"

step "the audit log verifies; share sets"
"$K" --state "$S" audit verify "$S/log" || true
"$K" --state "$S" quorum list
cat <<EOT

  state           $S
  share cards     $C   (text, PNG, SVG; demo only)
  transcripts     $M/*.transcript.txt, $OUT/rotation/*.transcript.txt
  update package  $OUT/rotation/root-update.p7
EOT
