#!/usr/bin/env bash
# audit_export.sh - export, proofs and checkpoints checked with tools we
# did not write (openssl pkeyutl -rawin, sha256sum) and an independent
# Python re-computation of RFC 6962 roots and RFC 9162 inclusion proofs
# from the tlog-tiles; recovery of open intents; map full through the CLI;
# the checkpoint key inside a real SoftHSM2 token.
source "$(dirname "$0")/../lib.sh"
scratch
export KEYROOM_NO_PROGRESS=1
L="$T/log"
"$TOOLS/logfill" -q -n 700 -c 100 -m 40 -c 25 -p "$L" >"$T/cp" 2>/dev/null || nok "logfill"
"$KEYROOM" --state "$L" audit vkey >"$T/vkey"

# openssl_check VKEY NOTE: verify a signed note with plain OpenSSL.
openssl_check() {
	local vk note="$2" d="$T/ossl"; rm -rf "$d"; mkdir "$d"
	vk=$(cat "$1"); vk=${vk#*+}; vk=${vk#*+}	# name+id+key; key may hold "+"
	printf '%s' "$vk" | base64 -d | tail -c 32 >"$d/pub.raw"
	{ printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'; cat "$d/pub.raw"; } >"$d/pub.der"
	openssl pkey -pubin -inform DER -in "$d/pub.der" -out "$d/pub.pem" 2>/dev/null || return 1
	sed -n '1,/^$/p' "$note" | sed '$d' >"$d/body"
	sed -n 's/^— [^ ]* //p' "$note" | head -1 | base64 -d | tail -c 64 >"$d/sig"
	openssl pkeyutl -verify -pubin -inkey "$d/pub.pem" -rawin -in "$d/body" -sigfile "$d/sig" >/dev/null 2>&1
}
check "checkpoint verifies with openssl pkeyutl -verify -rawin" openssl_check "$T/vkey" "$T/cp"
sed 's/^\([0-9]*\)$/9\1/' "$T/cp" >"$T/cp.bad"
if openssl_check "$T/vkey" "$T/cp.bad"; then nok "openssl rejects an edited checkpoint"; else ok "openssl rejects an edited checkpoint"; fi

"$KEYROOM" --state "$L" audit export "$T/exp" >/dev/null 2>&1; rc=$?
[ $rc -eq 0 ] && ok "export" || nok "export (rc=$rc)"
expect_fail "export never overwrites" "already exists" "$KEYROOM" --state "$L" audit export "$T/exp"
check "SHA256SUMS of the export" bash -c "cd '$T/exp' && sha256sum --quiet -c SHA256SUMS"
check "export: vkey and checkpoint match the log" bash -c "cmp -s '$T/exp/vkey' '$T/vkey' && cmp -s '$T/exp/checkpoint' '$T/cp'"
check "export's LMDB copy verifies" "$KEYROOM" audit verify "$T/exp" --vkey "$T/vkey" --checkpoint "$T/cp"
n=$(ls "$T/exp/checkpoints" | wc -l); [ "$n" -gt 10 ] && ok "all checkpoints exported ($n)" || nok "all checkpoints exported ($n)"
n=$(ls "$T/exp/proofs" | wc -l); [ "$n" -eq 40 ] && ok "one tlog-proof per certificate ($n)" || nok "one tlog-proof per certificate ($n)"
check "tile layout: full and partial tiles" test -f "$T/exp/tile/0/000" -a -f "$T/exp/tile/0/003.p/13" -a -f "$T/exp/tile/1/000.p/3" -a -f "$T/exp/tile/entries/003.p/13"

# Independent recomputation from the tiles alone (Python, not our C).
cat >"$T/tiles.py" <<'PY'
import base64, hashlib, os, sys
d = sys.argv[1]
cp = open(os.path.join(d, 'checkpoint')).read().split('\n')
size, root = int(cp[1]), base64.b64decode(cp[2])
def tp(n):
    g = []
    while True:
        g.append(n % 1000); n //= 1000
        if n == 0: break
    g.reverse()
    return '/'.join(('x%03d' if i < len(g) - 1 else '%03d') % v for i, v in enumerate(g))
def tile(path_prefix, n, w):
    p = os.path.join(d, path_prefix, tp(n)) + ('' if w == 256 else '.p/%d' % w)
    return open(p, 'rb').read()
leaves = []
for t in range((size + 255) // 256):
    w = min(256, size - t * 256)
    b, off = tile('tile/entries', t, w), 0
    for k in range(w):
        l = int.from_bytes(b[off:off + 2], 'big'); e = b[off + 2:off + 2 + l]; off += 2 + l
        leaves.append(hashlib.sha256(b'\0' + e).digest())
    assert off == len(b)
    h = tile('tile/0', t, w)
    assert h == b''.join(leaves[t * 256:t * 256 + w]), 'tile/0/%d' % t
def mth(hs):
    if len(hs) == 1: return hs[0]
    k = 1
    while k * 2 < len(hs): k *= 2
    return hashlib.sha256(b'\1' + mth(hs[:k]) + mth(hs[k:])).digest()
assert len(leaves) == size
assert mth(leaves) == root, 'root'
# level-1 tile: hashes of each full 256-leaf subtree
l1 = [mth(leaves[i * 256:(i + 1) * 256]) for i in range(size // 256)]
assert tile('tile/1', 0, len(l1)) == b''.join(l1), 'tile/1'
print('ok', size)
PY
check "tiles rebuild the checkpoint's root (independent Python)" python3 "$T/tiles.py" "$T/exp"

cat >"$T/proof.py" <<'PY'
import base64, hashlib, sys
text = open(sys.argv[1]).read()
head, note = text.split('\n\n', 1)
lines = head.split('\n')
assert lines[0] == 'c2sp.org/tlog-proof@v1'
assert lines[1].startswith('extra ') and lines[2].startswith('index ')
entry = base64.b64decode(lines[1][6:]); idx = int(lines[2][6:])
proof = [base64.b64decode(x) for x in lines[3:]]
cp = note.split('\n'); size, root = int(cp[1]), base64.b64decode(cp[2])
# RFC 9162 2.1.3.2
fn, sn, r = idx, size - 1, hashlib.sha256(b'\0' + entry).digest()
for p in proof:
    assert sn != 0
    if fn & 1 or fn == sn:
        r = hashlib.sha256(b'\1' + p + r).digest()
        while fn & 1 == 0 and fn != 0: fn >>= 1; sn >>= 1
    else:
        r = hashlib.sha256(b'\1' + r + p).digest()
    fn >>= 1; sn >>= 1
assert sn == 0 and r == root, 'inclusion'
f = dict(l.split(' ', 1) for l in entry.decode().split('\n')[1:] if l)
assert f['type'] == 'cert-issued'
der = base64.b64decode(f['cert'])
assert hashlib.sha256(der).hexdigest() == f['cert-sha256'] == sys.argv[2]
open(sys.argv[3], 'wb').write(der)
open(sys.argv[4], 'w').write(note)
PY
p=$(ls "$T/exp/proofs" | sed -n 7p); h=${p%.tlog-proof}
check "a .tlog-proof verifies independently (inclusion, entry, cert hash)" \
	python3 "$T/proof.py" "$T/exp/proofs/$p" "$h" "$T/cert.der" "$T/proof-cp"
check "the proof's checkpoint verifies with openssl" openssl_check "$T/vkey" "$T/proof-cp"
openssl x509 -inform DER -in "$T/cert.der" -out "$T/cert.pem" 2>/dev/null
"$KEYROOM" --state "$L" audit proof "$T/cert.pem" >"$T/p1" 2>/dev/null
check "audit proof CERT (PEM) equals the exported proof" cmp -s "$T/p1" "$T/exp/proofs/$p"
"$KEYROOM" --state "$L" audit proof "$T/cert.der" >"$T/p2" 2>/dev/null
check "audit proof CERT (DER) too" cmp -s "$T/p2" "$T/exp/proofs/$p"
printf 'not a cert' >"$T/nc.der"
expect_fail "audit proof of a certificate not in the log" "is not in the audit log" \
	"$KEYROOM" --state "$L" audit proof "$T/nc.der"
expect_fail "audit show of a missing entry" "log entry 99999: not found" "$KEYROOM" --state "$L" audit show 99999
expect_fail "audit list of an unknown type" "unknown entry type 'bogus'" "$KEYROOM" --state "$L" audit list --type bogus
n=$("$KEYROOM" --state "$L" audit list --type cert-issued | wc -l)
[ "$n" -eq 40 ] && ok "audit list --type cert-issued" || nok "audit list --type ($n)"
"$KEYROOM" --state "$L" --json audit list --type cert-intent | python3 -c 'import json,sys; a=json.load(sys.stdin); assert len(a)==40 and a[0]["type"]=="cert-intent"' \
	&& ok "audit list --json" || nok "audit list --json"
"$KEYROOM" --state "$L" audit checkpoint --png "$T/cp.png" --svg "$T/cp.svg" --qr >"$T/cpq" 2>/dev/null
check "checkpoint --qr/--png/--svg" bash -c "head -c 8 '$T/cp.png' | od -An -c | grep -q 'P   N   G' && grep -q '<svg' '$T/cp.svg' && grep -q '█' '$T/cpq'"
expect_fail "checkpoint --png never overwrites" "exists" "$KEYROOM" --state "$L" audit checkpoint --png "$T/cp.png"
mkdir "$T/empty"
expect_fail "verify of a directory without a log" "no audit log" "$KEYROOM" audit verify "$T/empty"

# Open intents (crash between intent and issued) and their recovery.
"$TOOLS/logfill" -q -n 0 -i 3 "$L" >/dev/null 2>&1
expect_fail "open intents fail verification" "cert-intent [0-9]+ \(and 2 more\) not resolved" "$KEYROOM" audit verify "$L"
"$TOOLS/logfill" -q -n 0 -r "$L" >/dev/null 2>&1
"$KEYROOM" --json audit verify "$L" 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["ok"] and j["abandoned"]==3 and j["issued"]==40, j' \
	&& ok "recovery turns them into cert-abandoned entries; log verifies" || nok "recovery"

# Map full while writing: fails cleanly, nothing half-committed.
KEYROOM_LOG_MAP_MAX=1048576 "$TOOLS/logfill" -q -n 100 -c 100 "$T/small" >/dev/null 2>&1
before=$("$KEYROOM" --json audit verify "$T/small" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
out=$(KEYROOM_LOG_MAP_MAX=1048576 "$TOOLS/logfill" -q -n 20000 -c 20000 "$T/small" 2>&1); rc=$?
[ $rc -ne 0 ] && printf '%s' "$out" | grep -q "storage full" && ok "map full: the append fails with 'storage full'" || nok "map full ($rc: $out)"
after=$("$KEYROOM" --json audit verify "$T/small" 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["entries"] if j["ok"] else -1)')
[ "$before" = "$after" ] && ok "map full: log unchanged ($after entries) and verifies" || nok "map full: $before -> $after"

# The real thing: the checkpoint key in a SoftHSM2 token (keyroom init).
S="$T/state"
if PIN=123456 "$KEYROOM" --state "$S" init --pin env:PIN >/dev/null 2>&1; then
	"$TOOLS/logfill" -q -S "$S" -n 50 -c 10 -m 5 -p "$S/log" >"$T/hcp" 2>"$T/herr"
	check "HSM-signed log verifies" "$KEYROOM" --state "$S" audit verify
	"$KEYROOM" --state "$S" audit vkey >"$T/hvkey"
	check "HSM-signed checkpoint verifies with openssl pkeyutl" openssl_check "$T/hvkey" "$T/hcp"
	"$KEYROOM" --state "$S" audit export "$T/hexp" >"$T/hexp.out" 2>&1 || cat "$T/hexp.out"
	check "export of a state dir verifies and is itself logged" bash -c "
		'$KEYROOM' audit verify '$T/hexp' >/dev/null 2>&1 &&
		'$KEYROOM' --state '$S' audit list --type export | grep -q export &&
		'$KEYROOM' --state '$S' audit verify >/dev/null 2>&1"
	rm -f "$S/audit-token.pin"; echo wrongpin >"$S/audit-token.pin"
	expect_fail "wrong audit token PIN is refused" "PIN|login" "$TOOLS/logfill" -q -S "$S" -n 1 "$S/log"
else
	nok "keyroom init (SoftHSM2)"
fi
done_testing
