#!/usr/bin/env bash
# scripts/demo.sh - the main job end to end on the embedded defaults (first
# version: the CA; later issues add manifests, batches, quorum, the log).
#   make demo            (or: BUILD=build ./scripts/demo.sh)
# Creates ./demo-out/ afresh: a state directory with a SoftHSM2 token store,
# a root and an intermediate whose keys never leave the tokens, device
# certificates for CSRs made here with OpenSSL, verified with OpenSSL.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BUILD:=build}"
K="$PWD/$BUILD/keyroom"
OUT="$PWD/demo-out"
[ -x "$K" ] || { echo "demo: $K missing: run make first" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }
t0=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT/csr" "$OUT/device-keys" "$OUT/certs"
# A demo PIN in a file (a real ceremony reads PINs without echo or from
# quorum shares).
(umask 077; echo "demo-pin-1234" >"$OUT/pin")
S="$OUT/state"

step "keyroom init: state directory, SoftHSM2 store, tokens, audit key"
"$K" --state "$S" init --pin "file:$OUT/pin"

step "keyroom ca root: P-384 root key generated inside keyroom-root"
"$K" --state "$S" ca root --pin "file:$OUT/pin"

step "keyroom ca intermediate: P-256 issuing key in keyroom-issuing, signed by the root"
"$K" --state "$S" ca intermediate --pin "file:$OUT/pin"

step "device CSRs (as a contract manufacturer would bring them)"
ids="0123a1b2c3d4e5f601 0123a1b2c3d4e5f602 0123a1b2c3d4e5f603"
for id in $ids; do
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$OUT/device-keys/$id.key" -subj "/CN=whatever-the-cm-wrote" \
	    -out "$OUT/csr/$id.csr" 2>/dev/null
	echo "  $OUT/csr/$id.csr"
done

step "keyroom ca issue: one device certificate per CSR (subject from the profile, not the CSR)"
for id in $ids; do
	"$K" --state "$S" ca issue "$OUT/csr/$id.csr" --id "$id" \
	    --out "$OUT/certs/$id.pem" --pin "file:$OUT/pin"
done

step "keyroom ca crl: an empty CRL from the issuing CA"
"$K" --state "$S" ca crl --pin "file:$OUT/pin" --out "$OUT/certs/issuing.crl.pem"

step "verify with OpenSSL (-x509_strict, chain and CRL)"
for id in $ids; do
	openssl verify -x509_strict -purpose sslclient -crl_check \
	    -CRLfile "$OUT/certs/issuing.crl.pem" -CAfile "$S/certs/root.pem" \
	    -untrusted "$S/certs/intermediate.pem" "$OUT/certs/$id.pem"
done

step "the keys stayed in the HSM (pkcs11-tool: sensitive, never extractable)"
SOFTHSM2_CONF="$S/softhsm2.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
    --token-label keyroom-root --login --pin "$(cat "$OUT/pin")" -O --type privkey 2>/dev/null |
    sed -n 's/^/  /p'

step "done in $(( $(date +%s) - t0 )) s. Files:"
cat <<EOF
  state directory      $S   (keyroom.yaml, tokens/, log/, audit-token.pin)
  root certificate     $S/certs/root.pem
  intermediate         $S/certs/intermediate.pem
  chain                $S/certs/chain.pem
  device certificates  $OUT/certs/<id>.pem
  CRL                  $OUT/certs/issuing.crl.pem
  inspect one:         openssl x509 -noout -text -in $OUT/certs/0123a1b2c3d4e5f601.pem
EOF
