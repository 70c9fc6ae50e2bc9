#!/usr/bin/env bash
# demo_run.sh - `make demo`'s script runs end to end (into a scratch
# directory) and does what it says: ceremonies, a batch with the simulated
# bad actors rejected for their reasons, certificates that verify, an audit
# log that verifies, an auditor's export.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
DEMO_OUT="$T/demo" KEYROOM_NO_PROGRESS=1 bash "$TOP/scripts/demo.sh" >"$T/out" 2>&1; rc=$?
[ $rc = 0 ] && ok "demo exits 0" || { nok "demo exits 0 (rc=$rc)"; tail -20 "$T/out" | sed 's/^/#   /'; }
check "25 certificates signed, 7 requests rejected" grep -q 'batch lot-2026-11-25-a: 25 signed, 7 rejected' "$T/out"
for r in bad-csr-signature key-mismatch already-certified bad-csr not-in-manifest manifest-entry-no-key; do
	check "rejection reason '$r' reported" grep -qE "^  $r +[0-9]+$" "$T/out"
done
check "every certificate verifies with OpenSSL" grep -q '25 verify, 0 fail' "$T/out"
check "audit log verifies" grep -q 'audit log keyroom.example/log: OK' "$T/out"
check "share cards printed" test "$(ls "$T/demo/cards" | grep -c '\.card$')" = 6
check "auditor's export has a checkpoint and a vkey" test -s "$T/demo/audit-export/checkpoint" -a -s "$T/demo/audit-export/vkey"
check "export verifies on its own" "$KEYROOM" audit verify "$T/demo/audit-export"
done_testing
