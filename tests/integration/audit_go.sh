#!/usr/bin/env bash
# audit_go.sh - an auditor checks keyroom's audit export with the Go
# module's own transparency-log code (golang.org/x/mod/sumdb/note and
# sumdb/tlog, Debian's golang-golang-x-mod-dev, built offline by
# tests/tools/tlogcheck): checkpoint signatures, hash tiles against the
# root, every entry against its leaf, every checkpoint consistent with the
# latest, every certificate's tlog-proof. Then the same after a real batch:
# every certificate handed out on the medium has a proof the Go code
# accepts. And each kind of tampering is caught by it.
# keyroom-test: no-san (the checker is Go; keyroom's side runs in every
# other audit test under SAN)
. "$(dirname "$0")/../lib.sh"
scratch
export KEYROOM_NO_PROGRESS=1
X=/usr/share/gocode
if ! command -v go >/dev/null || [ ! -f "$X/src/golang.org/x/mod/sumdb/tlog/tlog.go" ]; then
	skip "Go cross-check" "go or golang-golang-x-mod-dev not installed (scripts/deps.sh)"
	done_testing; exit 0
fi
# GOPATH mode: Debian's source of x/mod, no module download, no network.
GO111MODULE=off GOPATH="$X" GOCACHE="$T/gocache" GOFLAGS= \
    go build -o "$T/tlogcheck" ./tests/tools/tlogcheck/ 2>"$T/goerr" &&
    ok "tlogcheck builds against golang.org/x/mod $(dpkg-query -W -f '${Version}' golang-golang-x-mod-dev 2>/dev/null)" ||
    { nok "tlogcheck builds"; sed 's/^/#   /' "$T/goerr"; done_testing; exit 1; }
G="$T/tlogcheck"

# --- 1. a filled log: 781 entries, 40 certificates, partial tiles
L="$T/log"
"$TOOLS/logfill" -q -k "$T/key.pem" -n 700 -c 100 -m 40 -c 25 -p "$L" >/dev/null 2>&1 || nok "logfill"
"$KEYROOM" --state "$L" audit vkey >"$T/vkey"
"$KEYROOM" --state "$L" audit export "$T/exp" >/dev/null 2>&1 || nok "export"
"$G" "$T/exp" "$T/vkey" >"$T/out" 2>&1 && ok "Go's note and tlog accept the export" ||
    { nok "Go's note and tlog accept the export"; sed 's/^/#   /' "$T/out"; }
check "... all 781 entries against their leaves" grep -q "entries: all 781 hash" "$T/out"
check "... every checkpoint consistent with the latest" grep -qE "checkpoints: [1-9][0-9]*, each signed and consistent" "$T/out"
check "... all 40 certificate proofs" grep -q "proofs: 40 certificates proven" "$T/out"

# tampered copies: each must make the Go check fail, with its reason
tamper() { # NAME REGEX SETUP-CMD: copy the export, run SETUP in it, expect a failure
	local name="$1" re="$2"; shift 2
	rm -rf "$T/bad"; cp -a "$T/exp" "$T/bad"
	(cd "$T/bad" && "$@") || { nok "$name (setup)"; return; }
	if "$G" "$T/bad" "$T/vkey" >"$T/bout" 2>&1; then
		nok "$name: accepted"
	elif grep -qE "$re" "$T/bout"; then
		ok "$name"
	else
		nok "$name: $(head -1 "$T/bout")"
	fi
}
flip() { # FILE OFFSET: flip the low bit of one byte
	local b; b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# first_char FILE LINE: change the first character of line LINE ("A" to
# "B", anything else to "A": always a change)
first_char() { sed -i -e "$2{s/^A/\x01/;s/^[^\x01]/A/;s/^\x01/B/}" "$1"; }
tamper "a hash in a full level-0 tile" "tiles|inconsistent" flip tile/0/000 100
tamper "a hash in the partial level-0 tile" "tiles|inconsistent" flip tile/0/003.p/13 5
tamper "a byte of an entry" "does not hash to its leaf|truncated|after its" flip tile/entries/001 300
tamper "an entry bundle cut short" "truncated|after its" truncate -s -1 tile/entries/000
tamper "the checkpoint's size" "does not verify" sed -i '2s/$/0/' checkpoint
tamper "the checkpoint's root hash" "does not verify" first_char checkpoint 3
p=$(ls "$T/exp/proofs" | head -1)
i=$(sed -n 's/^index //p' "$T/exp/proofs/$p")
# one less: still inside its checkpoint (a proof's entry is often the
# last one its checkpoint covers, so one more could be beyond it)
tamper "a proof's index" "inclusion" sed -i "s/^index $i\$/index $((i - 1))/" "proofs/$p"
tamper "a proof hash" "inclusion|proof hash" first_char "proofs/$p" 4
q=$(ls "$T/exp/proofs" | sed -n 2p)
tamper "a proof filed under another certificate" "SHA-256" cp "proofs/$p" "proofs/$q"
tamper "a certificate's proof missing" "has no proof" rm "proofs/$p"
# an earlier checkpoint edited: its signature no longer holds
c=$(ls "$T/exp/checkpoints" | sed -n 3p)
tamper "an earlier checkpoint edited" "does not verify" first_char "checkpoints/$c" 3
# a fork: another history under the same origin, signed with the same
# key, smaller than the log - every signature holds, only consistency
# (Go's tlog.ProveTree/CheckTree against the latest) can tell. Its entries
# part from the log's at entry 4 (certificates where the log has assorted
# entries), even when both are made within the same second.
"$TOOLS/logfill" -q -k "$T/key.pem" -n 3 -m 20 -c 10 -p "$T/fork" >/dev/null 2>&1
"$KEYROOM" --state "$T/fork" audit checkpoint >"$T/cpf" 2>/dev/null
check "the fork is signed with the log's own key" cmp -s <("$KEYROOM" --state "$T/fork" audit vkey) "$T/vkey"
tamper "a validly signed checkpoint of a forked history" "not consistent" cp "$T/cpf" checkpoints/zzz
# a second log with the same origin and its own key: its checkpoints are
# not this log's, whatever they say
"$TOOLS/logfill" -q -n 3 -p "$T/other" >/dev/null 2>&1
"$KEYROOM" --state "$T/other" audit vkey >"$T/vkey2" 2>/dev/null
if [ -s "$T/vkey2" ] && ! cmp -s "$T/vkey" "$T/vkey2"; then
	if "$G" "$T/exp" "$T/vkey2" >"$T/bout" 2>&1; then nok "another log's key: accepted"
	else check "another log's key is refused" grep -q "does not verify" "$T/bout"; fi
	"$KEYROOM" --state "$T/other" audit checkpoint >"$T/cp2" 2>/dev/null
	tamper "a checkpoint of another log with the same origin" "does not verify" \
	    cp "$T/cp2" checkpoints/zzz
else
	nok "a second log with a key of its own"
fi

# --- 2. a real batch: every certificate on the medium proven in the log
S="$T/state"
kr_batch_setup "$S" || { nok "state"; done_testing; exit 1; }
"$TOOLS/fleetsim" --out "$T/f" --seed 7 --devices 12 --p384 2 --bad grey=2 \
    --manifest-on-media --batch-id go-001 >/dev/null
cp "$T/f/policy.yaml" "$T/f/signer.crt" "$S/"
"$KEYROOM" --state "$S" batch sign "$T/f/media" --pin "file:$S.pin" >/dev/null 2>&1
O="$T/f/media/keyroom-out/go-001"
n=$(ls "$O/certs" 2>/dev/null | wc -l)
[ "$n" -ge 12 ] && ok "batch signed ($n certificates)" || nok "batch signed ($n certificates)"
"$KEYROOM" --state "$S" audit vkey >"$T/svkey"
"$KEYROOM" --state "$S" audit export "$T/sexp" >/dev/null 2>&1 || nok "export after the batch"
"$G" "$T/sexp" "$T/svkey" >"$T/sout" 2>&1 && ok "Go accepts the batch's log" ||
    { nok "Go accepts the batch's log"; sed 's/^/#   /' "$T/sout"; }
missing=0
for c in "$O"/certs/*.pem; do
	h=$(openssl x509 -in "$c" -outform DER | sha256sum | cut -c1-64)
	[ -f "$T/sexp/proofs/$h.tlog-proof" ] || missing=$((missing + 1))
done
[ $missing -eq 0 ] && ok "every certificate on the medium has a proof the Go code checked" ||
    nok "$missing certificates on the medium without a proof"
# the checkpoint handed out with the batch is one the Go code accepts and
# a prefix of the exported log
cmp -s "$O/checkpoint" "$T/sexp/checkpoint" && ok "the medium's checkpoint is the latest" ||
    check "the medium's checkpoint is among the exported ones" \
        bash -c "for f in '$T/sexp'/checkpoints/*; do cmp -s \"\$f\" '$O/checkpoint' && exit 0; done; exit 1"
done_testing
