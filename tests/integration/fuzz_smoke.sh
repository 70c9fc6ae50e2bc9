#!/usr/bin/env bash
# keyroom-test: no-san
# fuzz_smoke.sh - every libFuzzer harness in tests/fuzz/ builds and runs
# briefly (FUZZ_TIME, default 10 s each) on its seed corpus without a
# crash, leak or sanitizer report. SKIP when clang/libFuzzer is missing.
source "$(dirname "$0")/../lib.sh"
out=$(FUZZ_TIME=${FUZZ_TIME:-10} FUZZ_BUILD="$TOP/$BUILD-fuzz" "$TOP/tests/fuzz/run.sh" 2>&1)
rc=$?
if printf '%s\n' "$out" | grep -q '^1\.\.0 # SKIP'; then
	skip "fuzz harnesses" "$(printf '%s\n' "$out" | sed -n 's/^1\.\.0 # SKIP //p')"
	done_testing; exit
fi
while IFS= read -r line; do
	case "$line" in
	"ok "*) ok "${line#ok * - }" ;;
	"not ok "*) nok "${line#not ok * - }" ;;
	"#"*) echo "$line" ;;
	esac
done <<<"$out"
[ $rc -eq 0 ] || [ $_tapfail -gt 0 ] || nok "tests/fuzz/run.sh exited $rc"
done_testing
