#!/usr/bin/env bash
# bench-audit.sh - audit log throughput and memory, measured in this run:
# append (chunked commits, in-memory Ed25519 checkpoint key, one signed
# checkpoint per chunk) and `keyroom audit verify` of the whole log at
# N (default 1,000,000) entries and at N/10 (memory must be flat), next to
# `openssl speed -seconds 2 sha256` of the same machine.
# Env: BUILD (build dir), BENCH_AUDIT_N, BENCH_AUDIT_CHUNK, BENCH_DIR.
set -eu
cd "$(dirname "$0")/.."
: "${BUILD:=build}" "${BENCH_AUDIT_N:=1000000}" "${BENCH_AUDIT_CHUNK:=1000}"
K="$BUILD/keyroom"; FILL="$BUILD/tools/logfill"
[ -x "$K" ] && [ -x "$FILL" ] || { echo "bench-audit: build first (make BUILD=$BUILD)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-audit: needs /usr/bin/time" >&2; exit 1; }
D=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/keyroom-bench-audit.XXXXXX")
trap 'rm -rf "$D"' EXIT
export KEYROOM_NO_PROGRESS=1
N=$BENCH_AUDIT_N; C=$BENCH_AUDIT_CHUNK; N10=$((N / 10))

# SHA-256 of this machine: 256-byte blocks ~ one log entry.
sha=$(openssl speed -seconds 2 sha256 2>/dev/null | awk '$1 == "sha256" { print $4 }' | tr -d k)
sha_hps=$(awk -v k="$sha" 'BEGIN { printf "%.0f", k * 1000 / 256 }')

fill() {	# fill DIR N -> "entries/s"
	"$FILL" -n "$2" -c "$C" "$1" 2>&1 | sed -n 's/.*: \([0-9]*\) entries\/s.*/\1/p'
}
verify() {	# verify DIR -> "wall user maxrss_kb"
	/usr/bin/time -f "%e %U %M" -o "$D/time" "$K" -q audit verify "$1" >/dev/null
	cat "$D/time"
}
app10=$(fill "$D/l10" "$N10"); read -r w10 u10 m10 <<<"$(verify "$D/l10")"
app=$(fill "$D/l" "$N"); read -r w u m <<<"$(verify "$D/l")"
size=$(du -sm "$D/l" | cut -f1)

rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%.0f", n / t; else print "inf" }'; }
printf '\naudit log benchmark (%s entries, ~%s bytes each, commits of %s, log %s MB)\n' \
	"$N" "$(awk -v s="$size" -v n="$N" 'BEGIN { printf "%.0f", s * 1048576 / n }')" "$C" "$size"
printf '%-40s %14s %12s\n' "measure" "value" "target"
printf '%-40s %14s %12s\n' "openssl sha256, 256-byte blocks" "$sha_hps/s" ""
printf '%-40s %14s %12s\n' "append, chunked commits (entries/s)" "$app" ""
printf '%-40s %14s %12s\n' "verify $N entries (entries/s, wall)" "$(rate "$N" "$w")" ">= 200000"
printf '%-40s %14s %12s\n' "verify $N entries (entries/CPU-s)" "$(rate "$N" "$u")" ""
printf '%-40s %14s %12s\n' "verify $N: peak RSS (MB)" "$((m / 1024))" "flat"
printf '%-40s %14s %12s\n' "verify $N10: peak RSS (MB)" "$((m10 / 1024))" "flat"
printf '%-40s %14s %12s\n' "verify $N10 entries (entries/s, wall)" "$(rate "$N10" "$w10")" ""
printf '%-40s %14s %12s\n' "append at $N10 (entries/s)" "$app10" ""
v=$(rate "$N" "$w")
if [ "$v" -ge 200000 ]; then echo "verify target met"; else echo "verify target NOT met (wall clock; see entries/CPU-s for load from other jobs)"; fi
