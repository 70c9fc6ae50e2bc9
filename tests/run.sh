#!/usr/bin/env bash
# tests/run.sh - run every test and print "N passed, N failed".
# Unit tests (cmocka, TAP output) and integration tests (tests/integration/
# *.sh, TAP via tests/lib.sh) run two at a time; each one's output is kept in
# $BUILD/test-logs/. A test that dies without reporting counts as failed.
set -u
cd "$(dirname "$0")/.."
: "${BUILD:=build}"
export BUILD
logs="$BUILD/test-logs"
rm -rf "$logs"; mkdir -p "$logs"
jobs=${KEYROOM_TEST_JOBS:-2}
filter=${1:-}

list=()
for t in "$BUILD"/tests/test_*; do [ -x "$t" ] && list+=("$t"); done
for t in tests/integration/*.sh; do [ -f "$t" ] && list+=("$t"); done
if [ -n "$filter" ]; then
	f=(); for t in "${list[@]}"; do case "$t" in *"$filter"*) f+=("$t");; esac; done; list=("${f[@]}")
fi

run_one() {
	t="$1"; name=$(basename "$t"); log="$BUILD/test-logs/$name.log"
	start=$(date +%s)
	# Tests that do not exercise our binary's code paths (qemu boots the
	# image's own build; fuzzers build their own ASan harnesses) say
	# "keyroom-test: no-san" and run once, in the normal pass.
	if [ "${SAN:-}" = 1 ] && [ "${t##*.}" = sh ] && grep -q 'keyroom-test: no-san' "$t"; then
		echo "ok 1 - $name # SKIP runs in the normal pass only" >"$log"
		echo "# exit 0 after 0s" >>"$log"
		return
	fi
	if [ "${t##*.}" = sh ]; then
		timeout "${KEYROOM_TEST_TIMEOUT:-900}" bash "$t" >"$log" 2>&1
	else
		CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$t" >"$log" 2>&1
	fi
	rc=$?
	echo "# exit $rc after $(( $(date +%s) - start ))s" >>"$log"
}
export -f run_one
printf '%s\n' "${list[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {}

pass=0; fail=0; skipn=0
for t in "${list[@]}"; do
	name=$(basename "$t"); log="$logs/$name.log"
	# cmocka's skip() prints "not ok N - name # SKIP": a skip, not a failure.
	p=$(grep -cE '^ok [0-9]+' "$log" | head -1)
	s=$(grep -cE '^(not )?ok [0-9]+.*# ?SKIP' "$log" | head -1)
	s1=$(grep -cE '^ok [0-9]+.*# ?SKIP' "$log" | head -1)
	f=$(grep -E '^not ok [0-9]+' "$log" | grep -cvE '# ?SKIP' | head -1)
	rc=$(sed -n 's/^# exit \([0-9]*\) after.*/\1/p' "$log" | tail -1)
	p=$((p - s1))
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; echo "# $name exited $rc without a failing test: counted as a failure"; fi
	pass=$((pass + p)); fail=$((fail + f)); skipn=$((skipn + s))
	status=PASS; [ "$f" != 0 ] && status=FAIL
	printf '%-4s %-40s %3d passed %3d failed %3d skipped  (%s)\n' "$status" "$name" "$p" "$f" "$s" \
	    "$(sed -n 's/^# exit [0-9]* after \(.*\)/\1/p' "$log" | tail -1)"
	# A failure shows the diagnostics ("# ..." lines) the test printed
	# just before it, so a CI log says why, not only what.
	if [ "$f" != 0 ]; then grep -E -B6 -A6 '^not ok|^# exit|ERROR|Sanitizer|runtime error' "$log" | head -60 | sed 's/^/    /'; fi
done
echo "${SAN:+[SAN] }$pass passed, $fail failed${skipn:+ ($skipn skipped)}"
[ "$fail" -eq 0 ]
