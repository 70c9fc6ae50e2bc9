#!/usr/bin/env bash
# image/hash.sh - print the image hashes for the paper record:
#   hash.sh OUTDIR KEYROOM_BIN
# The SHA-256 of every artifact, and that of the USB stick image and of the
# ISO also as words to read aloud, through `keyroom ceremony words` (the PGP
# word list of ceremony/) when the binary has it; otherwise hex in groups.
set -euo pipefail
OUT=$1 BIN=$2
echo "keyroom appliance image: $OUT"
sed 's/^/  /' "$OUT/SHA256SUMS"
have_words=0
if "$BIN" ceremony words 00 >/dev/null 2>&1; then have_words=1; fi
for f in keyroom-usb.img keyroom.iso; do
	h=$(sed -n "s/^\([0-9a-f]\{64\}\)  $f\$/\1/p" "$OUT/SHA256SUMS")
	echo "$f SHA-256 $h"
	if [ "$have_words" = 1 ]; then
		echo "  read aloud:"
		"$BIN" ceremony words "$h" | sed 's/^/    /'
	else
		echo "  (no word list in this keyroom build: read the hex in groups of four)"
		echo "  $(echo "$h" | sed 's/..../& /g')"
	fi
done
