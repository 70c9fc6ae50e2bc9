#!/usr/bin/env bash
# bench-batch.sh - batch signing throughput and memory, measured in one run
# on this machine: `keyroom batch sign` (SoftHSM2, real LMDB, 2 sessions)
# next to `openssl ca -batch -infiles` with the same issuing key in the
# same SoftHSM2 token through the pkcs11 engine, next to the per-device
# crypto bound (2 ECDSA P-256 verifies + 1 sign, in-process OpenSSL, on as
# many threads as keyroom uses). Devices come from fleetsim; the vendor
# manifest is imported beforehand (not timed: reported on its own line).
#
# usage: scripts/bench-batch.sh [N...]     (default: 10000 100000)
# env:   BUILD (default build), BENCH_DIR (default a temp dir), KEEP=1
set -eu
cd "$(dirname "$0")/.."
: "${BUILD:=build}"
TOP=$(pwd)
K="$TOP/$BUILD/keyroom"
TOOLS="$TOP/$BUILD/tools"
SESSIONS=${SESSIONS:-2}
sizes=${*:-10000 100000}
for f in "$K" "$TOOLS/fleetsim" "$TOOLS/cryptobound"; do
	[ -x "$f" ] || { echo "bench-batch: $f missing (make BUILD=$BUILD)" >&2; exit 1; }
done
ENGINE=$(find /usr/lib -path '*engines-3/pkcs11.so' 2>/dev/null | head -1)
W=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/keyroom-bench.XXXXXX")}
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$W"' EXIT
PIN=123456

# rss_kib / wall seconds from /usr/bin/time -v output
tv() { sed -n "s/^[[:space:]]*$1: //p" "$2" | tail -1; }
calc() { awk "BEGIN { printf \"%.${2:-0}f\", $1 }"; }
# CPU (user + system) per device in microseconds, from a time -v file
cpu_us() { awk -v n="$2" -F': ' '/User time|System time/ { s += $2 }
	END { printf "%.0f", s * 1e6 / n }' "$1"; }
secs() { # h:mm:ss or m:ss.cc -> seconds
	echo "$1" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'
}

# cb, hb: the crypto bound and the HSM bound now (devices/s), for state $S
measure_bounds() {
	cb=$("$TOOLS/cryptobound" --threads "$SESSIONS" --seconds 3 | awk '{print $2}')
	hb=$(SOFTHSM2_CONF="$S/softhsm2.conf" "$TOOLS/cryptobound" --threads "$SESSIONS" --seconds 3 \
	    --module /usr/lib/softhsm/libsofthsm2.so --token keyroom-issuing --key issuing-ca \
	    --pin "file:$S.pin" | awk '{print $2}')
}

rows=(); notes=()
ROW='%8s  %-37s %8s %10s %8s %10s %9s %9s'
for n in $sizes; do
	d="$W/n$n"; S="$d/state"; mkdir -p "$d"
	echo "bench-batch: $n devices: setting up (state, fleet, manifest import)" >&2
	echo $PIN >"$S.pin"
	"$K" -q --state "$S" init --pin "file:$S.pin" >/dev/null
	"$K" -q --state "$S" ca root --pin "file:$S.pin" >/dev/null
	"$K" -q --state "$S" ca intermediate --pin "file:$S.pin" >/dev/null
	"$TOOLS/fleetsim" --out "$d/f" --seed 42 --devices "$n" --batch-id "bench-$n" >/dev/null
	cp "$d/f/policy.yaml" "$d/f/signer.crt" "$S/"
	# the bounds, measured right before and right after keyroom's run
	# (this machine's speed drifts from minute to minute; the mean of the
	# two is the bound): OpenSSL in process, and the same with the
	# token's own C_Sign (one session a thread)
	measure_bounds
	b1=$cb; h1=$hb
	t0=$(date +%s.%N)
	"$K" -q --state "$S" manifest import "$d/f/manifest.json" >/dev/null
	imp=$(calc "$(date +%s.%N) - $t0" 1)

	echo "bench-batch: $n devices: keyroom batch sign" >&2
	/usr/bin/time -v "$K" -q --state "$S" batch sign "$d/f/media" --sessions "$SESSIONS" \
	    --pin "file:$S.pin" >"$d/kr.out" 2>"$d/kr.time" || true
	grep -q "$n signed, 0 rejected" "$d/kr.out" || { echo "bench-batch: keyroom did not sign all $n:" >&2; cat "$d/kr.out" "$d/kr.time" >&2; exit 1; }
	measure_bounds
	bound=$(( (b1 + cb) / 2 )); hbound=$(( (h1 + hb) / 2 ))
	notes+=("$(printf '%8s  bounds before / after keyroom: crypto %s / %s, HSM %s / %s' "$n" "$b1" "$cb" "$h1" "$hb")")
	kw=$(secs "$(tv 'Elapsed (wall clock) time (h:mm:ss or m:ss)' "$d/kr.time")")
	kr=$(tv 'Maximum resident set size (kbytes)' "$d/kr.time")
	kcpu=$(cpu_us "$d/kr.time" "$n")

	ow="-"; orate="-"; orss="-"; ocpu="-"
	if [ -n "$ENGINE" ]; then
		echo "bench-batch: $n devices: openssl ca -batch -infiles (pkcs11 engine)" >&2
		o="$d/ossl"; mkdir -p "$o/newcerts"; : >"$o/index.txt"; echo 1000 >"$o/serial"
		cat >"$o/openssl.cnf" <<EOF
openssl_conf = conf
[conf]
engines = engines
[engines]
pkcs11 = pkcs11
[pkcs11]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = /usr/lib/softhsm/libsofthsm2.so
init = 0
[ca]
default_ca = dflt
[dflt]
dir = $o
database = $o/index.txt
new_certs_dir = $o/newcerts
serial = $o/serial
default_md = sha256
policy = pol
unique_subject = no
default_days = 3650
x509_extensions = ext
[pol]
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
		(cd "$d/f/media/csr" && SOFTHSM2_CONF="$S/softhsm2.conf" OPENSSL_CONF="$o/openssl.cnf" \
		    /usr/bin/time -v sh -c "ls | xargs -n 20000 openssl ca -batch -notext -engine pkcs11 \
		    -keyform engine -keyfile 'pkcs11:token=keyroom-issuing;object=issuing-ca;type=private;pin-value=$PIN' \
		    -cert '$S/certs/intermediate.pem' -out /dev/null -infiles" >/dev/null 2>"$d/ossl.time") || true
		got=$(ls "$o/newcerts" | wc -l)
		if [ "$got" = "$n" ]; then
			ow=$(secs "$(tv 'Elapsed (wall clock) time (h:mm:ss or m:ss)' "$d/ossl.time")")
			orate=$(calc "$n / $ow")
			orss=$(( $(tv 'Maximum resident set size (kbytes)' "$d/ossl.time") / 1024 ))
			ocpu=$(cpu_us "$d/ossl.time" "$n")
		else
			echo "bench-batch: openssl ca signed $got of $n (see $d/ossl.time)" >&2
		fi
	fi
	krate=$(calc "$n / $kw")
	rows+=("$(printf "$ROW" "$n" "keyroom batch sign ($SESSIONS sessions)" "$kw" "$krate" \
	    "$((kr / 1024))" "$kcpu" "$(calc "100 * $krate / $bound")%" "$(calc "100 * $krate / $hbound")%")")
	rows+=("$(printf "$ROW" "$n" "openssl ca -infiles (pkcs11 engine)" "$ow" "$orate" "$orss" "$ocpu" \
	    "$([ "$orate" = - ] && echo - || echo "$(calc "100 * $orate / $bound")%")" \
	    "$([ "$orate" = - ] && echo - || echo "$(calc "100 * $orate / $hbound")%")")")
	rows+=("$(printf "$ROW" "$n" "(manifest import, not timed above)" "$imp" \
	    "$(calc "$n / $imp")" "-" "-" "-" "-")")
	# a bound's CPU a device: its threads, all busy, over its rate
	rows+=("$(printf "$ROW" "$n" "crypto bound: 2 verify + 1 sign P-256" "-" \
	    "$bound" "-" "$(calc "$SESSIONS * 1e6 / $bound")" "100%" "-")")
	rows+=("$(printf "$ROW" "$n" "HSM bound: 2 verify + 1 C_Sign" "-" \
	    "$hbound" "-" "$(calc "$SESSIONS * 1e6 / $hbound")" "$(calc "100 * $hbound / $bound")%" "100%")")
	# Nothing is deleted until the end (the trap): on ext4 without a
	# journal (these machines' root file system) a new inode is never
	# one freed in the last minute (six, if not yet written back): each
	# creation scans past every recently deleted one. Removing a size's
	# 10,000-file output here made the next run's file creations its
	# largest cost (write jobs 0.2 s -> 3.5 s for 10,000 certificates).
done
printf '\nbatch signing, %s, %s cores, SoftHSM2 %s\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" \
    "$(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null || echo '?')"
printf "$ROW\n" devices tool seconds devices/s "RSS MiB" "CPU us/dev" "of bound" "of HSM b."
for r in "${rows[@]}"; do echo "$r"; done
for r in "${notes[@]}"; do echo "$r"; done
printf '          (bounds: the mean of runs just before and just after keyroom, on %s threads: OpenSSL\n' "$SESSIONS"
printf '           in process; the same with SoftHSM2 C_Sign on the issuing key, one session a thread;\n'
printf '           CPU us/dev: user + system time of the whole run over its devices; a bound'"'"'s,\n'
printf '           its threads over its rate. Targets: keyroom >= 70%% of the crypto bound,\n'
printf '           RSS <= 64 MiB. The HSM bound'"'"'s "of bound" is the ceiling of any keyroom that\n'
printf '           signs with SoftHSM2 and verifies CSR and certificate: the crypto it cannot skip)\n'
