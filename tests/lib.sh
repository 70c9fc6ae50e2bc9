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

# --- ca/ helpers -------------------------------------------------------
# kr_init_state DIR [PINFILE]: a fresh state (embedded SoftHSM2) with user
# PIN from PINFILE (created with "123456" if absent). Prints nothing.
kr_init_state() {
	local s="$1" pin="${2:-${1}.pin}"
	[ -f "$pin" ] || echo 123456 >"$pin"
	"$KEYROOM" -q --state "$s" init --pin "file:$pin" >/dev/null
}
# kr_ca_setup DIR [ROOTALG] [INTALG]: init + root + intermediate.
kr_ca_setup() {
	local s="$1"
	kr_init_state "$s" &&
	"$KEYROOM" -q --state "$s" ca root --pin "file:${s}.pin" ${2:+--algorithm "$2"} &&
	"$KEYROOM" -q --state "$s" ca intermediate --pin "file:${s}.pin" ${3:+--algorithm "$3"}
}
# kr_softhsm_env DIR: point pkcs11-tool & co at DIR's embedded SoftHSM2.
kr_softhsm_env() { export SOFTHSM2_CONF="$1/softhsm2.conf"; }
SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so

# --- media/ helpers ----------------------------------------------------
# kr_batch_setup DIR: kr_ca_setup, with a device profile that takes P-256
# and P-384 CSRs and carries the chip id as HardwareModuleName.
kr_batch_setup() {
	kr_ca_setup "$1" || return 1
	sed -i -e 's/^    algorithms: \[p256\]$/    algorithms: [p256, p384]/' \
	    -e 's/^    hardware_module_name: false$/    hardware_module_name: true/' "$1/keyroom.yaml"
}

# --- ceremony/ helpers -----------------------------------------------------
# kr_lsan_softhsm: under SAN=1, ignore leaks inside the SoftHSM2 module
# (its Ed25519 C_Sign leaks OpenSSL objects; the module is dlclose'd before
# LeakSanitizer reports, so its frames show as <unknown module> under our
# kr_p11_sign). Our own leaks are still reported.
kr_lsan_softhsm() {
	[ -n "${T:-}" ] || return 0
	printf 'leak:kr_p11_sign\n' >"$T/lsan.supp"
	export LSAN_OPTIONS="suppressions=$T/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
	# full stacks, so the suppression sees kr_p11_sign below libcrypto
	export ASAN_OPTIONS="fast_unwind_on_malloc=0:malloc_context_size=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
}
# kr_card SETDIR ROLE INDEX: path of a share card written by --cards SETDIR.
kr_card() { ls "$1/$2-$3-"*.card 2>/dev/null | head -1; }
# kr_quorum_shares CARDS: --shares for both quorums (root cards 1 and 3,
# issuing cards 2 and 3), as the rotation and intermediate ceremonies take.
kr_quorum_shares() {
	echo --shares "root=file:$(kr_card "$1" root 1)" --shares "root=file:$(kr_card "$1" root 3)" \
	    --shares "issuing=file:$(kr_card "$1" issuing 2)" --shares "issuing=file:$(kr_card "$1" issuing 3)"
}
# kr_quorum_ca STATE CARDS: keyroom init, the genesis ceremony (its cards in
# CARDS) and the intermediate ceremony under both quorums; the ceremonies'
# media and output beside STATE (STATE.genesis/, STATE.genesis.out, ...).
# On failure the outputs' last lines are printed as TAP comments.
kr_quorum_ca() {
	local s="$1" c="$2" scr="$TOP/ceremony/scripts"
	kr_init_state "$s" "$s.pin" &&
	"$KEYROOM" -q --state "$s" --yes ceremony run "$scr/genesis.yaml" --init-pin "file:$s.pin" \
	    --cards "$c" --media "$s.genesis" --no-prompt >"$s.genesis.out" 2>&1 &&
	"$KEYROOM" -q --state "$s" --yes ceremony run "$scr/intermediate.yaml" --no-prompt \
	    --media "$s.intermediate" $(kr_quorum_shares "$c") >"$s.intermediate.out" 2>&1 ||
	{ tail -5 "$s.genesis.out" "$s.intermediate.out" 2>/dev/null | sed 's/^/#   /'; return 1; }
}
# kr_install_policy STATE CARDS STICK FILES...: the install-policy ceremony
# (root custodians 1 and 2 of CARDS) taking FILES from STICK/policy/; its
# output goes to STICK/install.out.
kr_install_policy() {
	local s="$1" c="$2" d="$3"; shift 3
	rm -rf "$d"; mkdir -p "$d/policy" && cp "$@" "$d/policy/" &&
	"$KEYROOM" -q --state "$s" --yes ceremony run "$TOP/ceremony/scripts/install-policy.yaml" \
	    --no-prompt --media "$d" --shares "root=file:$(kr_card "$c" root 1)" \
	    --shares "root=file:$(kr_card "$c" root 2)" >"$d/install.out" 2>&1
}

# verify_no_warning NAME ARGS...: `keyroom ARGS` (an audit verify) succeeds
# and prints no warning (e.g. certificates logged in the same commit as
# their intent).
verify_no_warning() {
	local n="$1" o; shift
	if o=$("$KEYROOM" "$@" 2>&1) && ! printf '%s' "$o" | grep -qi 'warning'; then ok "$n"
	else nok "$n"; printf '%s\n' "$o" | sed 's/^/# /'; fi
}
