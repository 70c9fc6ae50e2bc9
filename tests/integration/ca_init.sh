#!/usr/bin/env bash
# ca_init.sh - keyroom init: the embedded SoftHSM2 store, an external
# PKCS#11 module (SoftHSM2 through its own SOFTHSM2_CONF, standing in for
# a real HSM), the SO PIN option, the audit token's random PIN, the log's
# first entries, and --json.
. "$(dirname "$0")/../lib.sh"
scratch

K="$KEYROOM"
echo 24680 >"$T/pin"; echo so-secret-1 >"$T/so"

# Embedded store.
S="$T/emb"
out=$("$K" --json --state "$S" init --pin "file:$T/pin" --so-pin "file:$T/so" \
    --origin example.net/ca-log 2>&1)
if printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin)
assert d["embedded_softhsm"] is True and d["tokens"] == ["keyroom-root","keyroom-issuing","keyroom-audit"]
assert d["audit_origin"] == "example.net/ca-log"'; then ok "init --json"; else nok "init --json: $out"; fi
for f in keyroom.yaml softhsm2.conf tokens audit-token.pin log certs; do
	if [ -e "$S/$f" ]; then ok "embedded: $f"; else nok "embedded: $f missing"; fi
done
if grep -q "^directories.tokendir = $S/tokens\$" "$S/softhsm2.conf" || grep -q "tokendir = .*/emb/tokens" "$S/softhsm2.conf"
then ok "softhsm2.conf points into the state dir"; else nok "softhsm2.conf"; fi
apin=$(head -1 "$S/audit-token.pin")
if [ ${#apin} = 64 ] && [[ "$apin" =~ ^[0-9a-f]+$ ]]; then ok "audit PIN: 32 random bytes (hex)"
else nok "audit PIN format"; fi
kr_softhsm_env "$S"
o=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label keyroom-audit --login --pin "$apin" -O 2>&1)
if printf '%s' "$o" | grep -q 'Private Key Object; EC_EDWARDS' &&
    printf '%s' "$o" | grep -q 'never extractable'; then ok "audit token: Ed25519 key, never extractable"
else nok "audit token key"; fi
check "SO PIN from --so-pin works" pkcs11-tool --module "$SOFTHSM_MODULE" --token-label keyroom-root \
    --session-rw --login --login-type so --so-pin "$(cat "$T/so")" -O
expect_fail "a wrong SO PIN does not" "CKR_PIN_INCORRECT" pkcs11-tool --module "$SOFTHSM_MODULE" \
    --token-label keyroom-root --session-rw --login --login-type so --so-pin wrong -O
unset SOFTHSM2_CONF
if "$K" --state "$S" audit verify >"$T/v" 2>&1 && "$K" --state "$S" audit list 2>/dev/null | grep -q ' init ' &&
    "$K" --state "$S" audit vkey 2>/dev/null | grep -q '^example.net/ca-log+'
then ok "log: init entry with the verifier key, verifies"; else nok "log first entries"; cat "$T/v"; fi

# An external module: keyroom.yaml names it, no embedded store is made.
E="$T/ext"; mkdir -p "$T/hsm/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$T/hsm/tokens" >"$T/hsm/softhsm2.conf"
export SOFTHSM2_CONF="$T/hsm/softhsm2.conf"
check "init --module (external)" "$K" -q --state "$E" init --pin "file:$T/pin" --module "$SOFTHSM_MODULE"
if grep -q "module: \"$SOFTHSM_MODULE\"" "$E/keyroom.yaml" && [ ! -e "$E/softhsm2.conf" ] && [ ! -e "$E/tokens" ]
then ok "external: module in keyroom.yaml, no embedded store"; else nok "external: layout"; fi
if [ -n "$(ls "$T/hsm/tokens")" ]; then ok "external: tokens created in the module's own store"
else nok "external: no tokens in the module's store"; fi
check "external: root" "$K" -q --state "$E" ca root --pin "file:$T/pin"
check "external: intermediate" "$K" -q --state "$E" ca intermediate --pin "file:$T/pin"
check "external: chain verifies" openssl verify -x509_strict -CAfile "$E/certs/root.pem" "$E/certs/intermediate.pem"
verify_no_warning "external: audit verify, root + intermediate logged intent before signature (no warning)" \
    --state "$E" audit verify
# The intent of each CA certificate is its own commit, before its issued entry.
"$K" --state "$E" audit list >"$T/list" 2>/dev/null
if python3 - "$T/list" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
types = [l.split()[2] for l in lines if len(l.split()) > 2 and l.split()[0].isdigit()]
i = [k for k, t in enumerate(types) if t in ("cert-intent", "cert-issued")]
assert [types[k] for k in i] == ["cert-intent", "cert-issued"] * 2, types
PY
then ok "external: intent, issued for root then intermediate"; else nok "external: log order"; sed 's/^/# /' "$T/list"; fi
# A second state on the same external module: its token labels exist.
expect_fail "external: second init refuses existing token labels" \
    "keyroom: token keyroom-root already exists in PKCS#11 module $SOFTHSM_MODULE: already exists" \
    "$K" --state "$T/ext2" init --pin "file:$T/pin" --module "$SOFTHSM_MODULE"
if [ ! -e "$T/ext2" ]; then ok "external: failed init leaves nothing"; else nok "external: ext2 left"; fi
unset SOFTHSM2_CONF

# A directory without keyroom.yaml (e.g. an interrupted init) is no state.
mkdir -p "$T/partial/tokens"
expect_fail "a directory without keyroom.yaml is not a state" \
    "keyroom: $T/partial: not an initialised state directory \(run keyroom init; a directory left by an interrupted init has no keyroom.yaml: remove it first\): wrong state" \
    "$K" --state "$T/partial" ca root --pin "file:$T/pin"
done_testing
