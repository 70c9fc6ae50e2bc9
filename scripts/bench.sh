#!/bin/sh
# make bench: run every benchmark of the repo and print their tables.
# Numbers are measured here, in this run, next to the bounds they compare to.
set -eu
cd "$(dirname "$0")/.."
: "${BUILD:=build}"
export BUILD
for b in scripts/bench-*.sh; do
	[ -x "$b" ] || continue
	echo "=== $b"
	"$b"
done
