#!/usr/bin/env bash
# audit_tamper.sh - the real binary against tampered copies of a real LMDB
# log: single-byte edits of entries, stored hashes and checkpoints (every
# copy of the bytes in the file, so the live page is hit) must fail
# verification naming the entry or checkpoint; truncation and an older
# copy must fail against a previously printed checkpoint with
# "rollback/truncation" (exit 5).
source "$(dirname "$0")/../lib.sh"
scratch
export KEYROOM_NO_PROGRESS=1
L="$T/log"
"$TOOLS/logfill" -q -n 400 -c 50 -m 30 -p "$L" >"$T/cp1" 2>/dev/null || { nok "logfill"; done_testing; exit 1; }
check "fresh log verifies" "$KEYROOM" audit verify "$L"
"$KEYROOM" --state "$L" audit vkey >"$T/vkey"
check "verifies with --vkey and its own printed checkpoint" \
	"$KEYROOM" audit verify "$L" --vkey "$T/vkey" --checkpoint "$T/cp1"

# flip FILE HEXPATTERN OFFSET: XOR 0x01 into byte OFFSET of every
# occurrence of the byte pattern; prints the count.
flip() {
	python3 - "$@" <<'PY'
import sys
f, pat, off = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3])
d = bytearray(open(f, 'rb').read())
n, i = 0, d.find(pat)
while i >= 0:
    d[i + off] ^= 0x01; n += 1
    i = d.find(pat, i + 1)
open(f, 'wb').write(bytes(d))
print(n)
PY
}
hexof() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

# tamper NAME HEXPAT OFFSET REGEX: on a fresh copy, flip, verify must exit 5
# with stderr matching REGEX.
tamper() {
	local name="$1" pat="$2" off="$3" re="$4" c="$T/copy" n out rc
	rm -rf "$c"; mkdir "$c"; cp "$L/data.mdb" "$c/"
	n=$(flip "$c/data.mdb" "$pat" "$off")
	if [ "$n" = 0 ]; then nok "$name (pattern not found)"; return; fi
	out=$("$KEYROOM" audit verify "$c" --vkey "$T/vkey" 2>&1 >/dev/null); rc=$?
	if [ $rc -eq 5 ] && printf '%s' "$out" | grep -Eq -- "$re"; then ok "$name"
	else nok "$name"; echo "#   rc=$rc, wanted /$re/, got: $out"; fi
}

# Entry j+1 holds "csr/%06d.csr" (logfill): edits at a spread of positions.
for j in 0 1 57 200 399; do
	idx=$((j + 1)); f=$(printf 'csr/%06d.csr' "$j")
	tamper "entry $idx: byte in its file name" "$(hexof "$f")" 5 "entry $idx[^0-9]"
done
tamper "entry 1: byte of the type value" "$(hexof "type request-rejected")" 7 "entry 1[^0-9]"
tamper "entry 0: byte in the init entry's vkey" "$(hexof "vkey keyroom.test/log+")" 9 "entry 0[^0-9]|checkpoint"
# Entry 401+ are cert-intent/issued; edit a byte inside a certificate.
"$KEYROOM" --state "$L" audit show 431 >"$T/e431"
certb64=$(sed -n 's/^cert //p' "$T/e431")
tamper "entry 431: byte inside the logged certificate" "$(hexof "${certb64:20:24}")" 3 "entry 431[^0-9]"
tamper "entry 431: byte of its cert-sha256" "$(hexof "$(sed -n 's/^cert-sha256 //p' "$T/e431")")" 10 "entry 431[^0-9]"
# A sweep: whole entries at a spread of indexes, a byte at a spread of
# offsets in each (first line, type, time, actor, values, final newline).
for idx in 0 3 128 255 256 399 402 445 460; do
	"$KEYROOM" --state "$L" audit show $idx >"$T/e"
	pat=$(od -An -v -tx1 "$T/e" | tr -d ' \n'); len=$(stat -c %s "$T/e")
	for off in 0 $((len / 7)) $((len / 3)) $((len / 2)) $((len * 5 / 6)) $((len - 1)); do
		tamper "entry $idx, byte $off of $len" "$pat" "$off" "entry $idx[^0-9]"
	done
done
# Stored hashes: the leaf hash of entry 7 and of the last entry.
for idx in 7 460; do
	"$KEYROOM" --state "$L" audit show $idx >"$T/e"
	lh=$( (printf '\0'; cat "$T/e") | openssl dgst -sha256 -binary | od -An -v -tx1 | tr -d ' \n')
	tamper "stored leaf hash of entry $idx" "$lh" 17 "entry $idx[^0-9].*stored hash"
done
# Checkpoints: a byte of the signature and of the root of the last one.
sig=$(sed -n 's/^— [^ ]* //p' "$T/cp1")
tamper "latest checkpoint: byte of its signature" "$(hexof "${sig:8:24}")" 6 "checkpoint 461"
root=$(sed -n 3p "$T/cp1")
tamper "latest checkpoint: byte of its root hash" "$(hexof "$root")" 4 "checkpoint 461"
# Older stored checkpoints too (every one is kept and checked).
"$KEYROOM" --state "$L" audit export --no-log "$T/x" >/dev/null 2>&1
for n in 1 251 401; do
	sig=$(sed -n 's/^— [^ ]* //p' "$T/x/checkpoints/$n")
	tamper "stored checkpoint $n: byte of its signature" "$(hexof "${sig:30:20}")" 9 "checkpoint $n[^0-9]"
	tamper "stored checkpoint $n: byte of its size line" "$(hexof "$(sed -n 2,3p "$T/x/checkpoints/$n")")" 0 "checkpoint $n[^0-9]"
done
"$KEYROOM" --state "$L" audit verify --json "$L" >/dev/null 2>&1 && ok "original untouched" || nok "original untouched"

# Rollback: keep a copy, grow the log, print the new checkpoint, restore.
mkdir "$T/old"; cp "$L/data.mdb" "$T/old/"
"$TOOLS/logfill" -q -n 100 -c 50 -p "$L" >"$T/cp2" 2>/dev/null
check "grown log extends the first checkpoint" "$KEYROOM" audit verify "$L" --vkey "$T/vkey" --checkpoint "$T/cp1" --checkpoint "$T/cp2"
expect_fail "older copy vs later checkpoint: rollback/truncation" "rollback/truncation" \
	"$KEYROOM" audit verify "$T/old" --vkey "$T/vkey" --checkpoint "$T/cp2"
"$KEYROOM" audit verify "$T/old" --vkey "$T/vkey" --checkpoint "$T/cp2" >/dev/null 2>&1
[ $? -eq 5 ] && ok "rollback exits 5" || nok "rollback exits 5"
check "older copy alone still verifies (rollback is only visible from outside)" \
	"$KEYROOM" audit verify "$T/old" --vkey "$T/vkey"
# Truncation to an earlier checkpoint boundary, consistent inside.
mkdir "$T/trunc"; cp "$L/data.mdb" "$T/trunc/"
"$TOOLS/logtamper" truncate "$T/trunc" 50 >/dev/null
check "truncated log is self-consistent" "$KEYROOM" audit verify "$T/trunc" --vkey "$T/vkey"
expect_fail "truncated log vs printed checkpoint: rollback/truncation" \
	"signed for 561 entries but the log holds only 511.*rollback/truncation" \
	"$KEYROOM" audit verify "$T/trunc" --vkey "$T/vkey" --checkpoint "$T/cp2"
# A fork: a different log with the same key and origin at the same size.
"$TOOLS/logfill" -q -k "$L.key" -n 400 -c 50 -m 30 -p "$T/fork" >/dev/null 2>&1
expect_fail "forked log (same key, other entries) fails against cp1" "differ from that checkpoint.*rollback/truncation" \
	"$KEYROOM" audit verify "$T/fork" --vkey "$T/vkey" --checkpoint "$T/cp1"
# Wrong key.
"$TOOLS/logfill" -q -n 1 -p "$T/other" >"$T/other.cp" 2>/dev/null
"$KEYROOM" --state "$T/other" audit vkey >"$T/vkey2"
expect_fail "wrong vkey: checkpoints do not verify" "checkpoint 1: note: no signature by keyroom.test/log: audit log tampered" \
	"$KEYROOM" audit verify "$L" --vkey "$T/vkey2"
expect_fail "checkpoint signed by another key is refused" "other.cp: note: no signature by keyroom.test/log" \
	"$KEYROOM" audit verify "$L" --vkey "$T/vkey" --checkpoint "$T/other.cp"
printf 'garbage\n' >"$T/bad.cp"
expect_fail "malformed checkpoint file is refused" "bad.cp: note: no signature block" \
	"$KEYROOM" audit verify "$L" --vkey "$T/vkey" --checkpoint "$T/bad.cp"
printf 'keyroom.test/log+00000000+AT/4QOFaQ1LRYjjmGvsIYBrfLE37q12EDBsY8tH0JYbv\n' >"$T/badvkey"
expect_fail "vkey with a wrong key id is refused" "key id 00000000 does not match" \
	"$KEYROOM" audit verify "$L" --vkey "$T/badvkey"
done_testing
