#!/usr/bin/env bash
# audit_crash.sh - kill -9 at 20 points of certificate issuance (a
# deterministic crash hook in the audit write path, not sleep-and-hope):
# after restart the log verifies, no serial is duplicated, every
# certificate released to the output has an issued entry, intents are
# resolved, and running the batch again completes it without issuing a
# device twice.
source "$(dirname "$0")/../lib.sh"
# kill -9 loses no page-cache data: tmpfs is faithful here and spares fsyncs.
[ -w /dev/shm ] && export TMPDIR=/dev/shm
scratch
export KEYROOM_NO_PROGRESS=1
M=24
"$TOOLS/logfill" -q -n 10 "$T/base" >/dev/null 2>&1 || nok "base log"
# Count the crash points of one clean run.
mkdir "$T/o0"; cp -r "$T/base" "$T/l0"; cp "$T/base.key" "$T/l0.key"
total=$(LOGFILL_CRASH_POINTS=1 "$TOOLS/logfill" -q -n 0 -m $M -c 6 -O "$T/o0" "$T/l0" 2>&1 | sed -n 's/^crash points: //p')
[ "${total:-0}" -gt 40 ] && ok "clean run passes $total crash points" || nok "crash points: '$total'"
# 20 points spread over the run, pseudo-random but reproducible.
pts=$(python3 -c "import random; r=random.Random(3); print(' '.join(str(x) for x in sorted(r.sample(range(1, $total + 1), 20))))")
i=0
for p in $pts; do
	i=$((i + 1)); L="$T/l$i"; O="$T/o$i"
	cp -r "$T/base" "$L"; cp "$T/base.key" "$L.key"; mkdir "$O"
	# In a subshell that reports the SIGKILL itself, quietly.
	( KEYROOM_TEST_AUDIT_CRASH_AT=$p "$TOOLS/logfill" -q -n 0 -m $M -c 6 -O "$O" "$L"; echo $? >"$T/rc" ) >/dev/null 2>&1
	rc=$(cat "$T/rc")
	if [ $rc -ne 137 ]; then nok "crash point $p: killed (rc=$rc)"; continue; fi
	# Every certificate already released has an issued entry.
	bad=0
	logged() {	# every OUT file's SHA-256 is a logged cert-sha256
		"$KEYROOM" --state "$1" --json audit list --type cert-issued 2>/dev/null |
		    python3 -c "
import json, sys, hashlib, glob
have = {e['cert-sha256'] for e in json.load(sys.stdin)}
for f in glob.glob('$2/*.der'):
    assert hashlib.sha256(open(f, 'rb').read()).hexdigest() in have, f
"
	}
	logged "$L" "$O" || bad=$((bad + 1))
	# Restart: recover open intents, run the batch again.
	"$TOOLS/logfill" -q -r -n 0 -m $M -c 6 -O "$O" "$L" >/dev/null 2>&1 || bad=$((bad + 100))
	j=$("$KEYROOM" --json audit verify "$L" 2>/dev/null)
	n=$(ls "$O" | wc -l)
	logged "$L" "$O" || bad=$((bad + 10))
	if [ $bad -eq 0 ] && [ "$n" -eq $M ] && printf '%s' "$j" | python3 -c "
import json, sys
j = json.load(sys.stdin)
assert j['ok'], j
assert j['issued'] == $M, j            # no device issued twice
assert j['intents'] == j['issued'] + j['abandoned'], j
" 2>/dev/null; then
		ok "kill -9 at point $p: log verifies, $M devices once each, outputs all logged"
	else
		nok "kill -9 at point $p (bad=$bad files=$n): $j"
	fi
done
# Outputs of a re-run match the log: every file's proof verifies.
check "re-run outputs are all in the log" bash -c "for f in '$T/o$i'/*.der; do '$KEYROOM' --state '$T/l$i' audit proof \"\$f\" >/dev/null || exit 1; done"
done_testing
