# tests/lib.sh - shared helpers for integration tests (sourced).
# Each test prints TAP lines: "ok N - name", "not ok N - name",
# "ok N - name # SKIP reason". tests/run.sh counts them.
set -u
: "${BUILD:=build}"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KEYROOM="$TOP/$BUILD/keyroom"
TOOLS="$TOP/$BUILD/tools"
SHARED="$TOP/../shared"
SAMPLES="$SHARED/samples/microchip"
VECTORS="$SHARED/vectors/rfc6962"
_tapn=0
_tapfail=0

ok()   { _tapn=$((_tapn + 1)); echo "ok $_tapn - $*"; }
nok()  { _tapn=$((_tapn + 1)); _tapfail=$((_tapfail + 1)); echo "not ok $_tapn - $*"; }
skip() { _tapn=$((_tapn + 1)); echo "ok $_tapn - $1 # SKIP ${2:-}"; }
# check NAME CMD...: ok if CMD succeeds.
check() { local n="$1"; shift; if "$@" >/dev/null 2>&1; then ok "$n"; else nok "$n"; fi; }
# expect_fail NAME REGEX CMD...: ok if CMD fails and stderr matches REGEX.
expect_fail() {
	local n="$1" re="$2" out rc; shift 2
	out=$("$@" 2>&1 >/dev/null); rc=$?
	if [ $rc -ne 0 ] && printf '%s' "$out" | grep -Eq -- "$re"; then ok "$n"
	else nok "$n"; echo "#   rc=$rc, wanted /$re/, got: $out" | head -5; fi
}
# A fresh scratch directory removed at exit.
scratch() { T=$(mktemp -d "${TMPDIR:-/tmp}/keyroom-test.XXXXXX"); trap 'rm -rf "$T"' EXIT; }
done_testing() { echo "1..$_tapn"; [ $_tapfail -eq 0 ]; }
