#!/usr/bin/env bash
# tests/fuzz/run.sh - build every libFuzzer harness (tests/fuzz/fuzz_*.c)
# with clang -fsanitize=fuzzer,address,undefined against the library, and
# run each for a bounded time on a scratch copy of its seed corpus
# (tests/fuzz/corpus/<name>/). TAP output, one line per harness.
#   FUZZ_TIME=20 (seconds per harness)  FUZZ_BUILD=build-fuzz
#   tests/fuzz/run.sh [NAME...]   (NAME = fuzz_manifest, ...)
# Crashes are kept in $FUZZ_BUILD/artifacts/<name>/.
set -u
cd "$(dirname "$0")/../.."
: "${FUZZ_TIME:=20}"
: "${FUZZ_BUILD:=build-fuzz}"
CLANG=${CLANG:-clang}
PKGS="libcrypto libp11 p11-kit-1 lmdb libqrencode libpng jansson yaml-0.1 libgfshare"
FFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

n=0; fail=0
tap() { n=$((n + 1)); echo "$1 $n - $2"; [ "$1" = ok ] || fail=$((fail + 1)); }

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "1..0 # SKIP clang not installed"; exit 0
fi
probe=$(mktemp -d)
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){return 0;}\n' >"$probe/p.c"
if ! "$CLANG" -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
	rm -rf "$probe"; echo "1..0 # SKIP clang has no libFuzzer runtime"; exit 0
fi
rm -rf "$probe"

# The library, instrumented (incremental: the Makefile's own rules).
mkdir -p "$FUZZ_BUILD"
if ! make -s BUILD="$FUZZ_BUILD" CC="$CLANG" SAN=1 SANFLAGS="$FFLAGS" \
    -j"${FUZZ_JOBS:-2}" "$FUZZ_BUILD/libkeyroom.a" >"$FUZZ_BUILD/lib.build.log" 2>&1; then
	tap "not ok" "build the instrumented library (see $FUZZ_BUILD/lib.build.log)"
	echo "1..$n"; exit 1
fi

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do names+=("$(basename "$f" .c)"); done
fi
for name in "${names[@]}"; do
	bin="$FUZZ_BUILD/fuzz/$name"; mkdir -p "$FUZZ_BUILD/fuzz"
	# shellcheck disable=SC2046
	if ! "$CLANG" -std=c11 -D_GNU_SOURCE -O1 -g -I. $(pkg-config --cflags $PKGS) \
	    -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=undefined -Wno-deprecated-declarations \
	    "tests/fuzz/$name.c" "$FUZZ_BUILD/libkeyroom.a" \
	    $(pkg-config --libs $PKGS) -ldl -lm -o "$bin" >"$bin.build.log" 2>&1; then
		tap "not ok" "$name: build (see $bin.build.log)"; continue
	fi
	work=$(mktemp -d "${TMPDIR:-/tmp}/keyroom-fuzz.XXXXXX")
	mkdir -p "$work/corpus" "$FUZZ_BUILD/artifacts/$name"
	[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/corpus/"
	if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    timeout $((FUZZ_TIME + 120)) "$bin" -max_total_time="$FUZZ_TIME" \
	    -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
	    -artifact_prefix="$FUZZ_BUILD/artifacts/$name/" \
	    "$work/corpus" >"$work/log" 2>&1; then
		runs=$(grep -Eo 'Done [0-9]+ runs' "$work/log" | grep -Eo '[0-9]+' | tail -1)
		tap ok "$name: ${runs:-?} runs in ${FUZZ_TIME}s, no crash"
	else
		tap "not ok" "$name: crashed or failed (artifacts in $FUZZ_BUILD/artifacts/$name/)"
		grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$work/log" | head -8 | sed 's/^/#   /'
	fi
	rm -rf "$work"
done
echo "1..$n"
[ $fail -eq 0 ]
