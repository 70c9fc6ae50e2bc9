#!/usr/bin/env bash
# keyroom-test: no-san
# image_boot.sh - the appliance image, built and booted under qemu (software
# emulation, no KVM, every boot under a timeout). One boot runs the
# unattended demo job on a fresh ext4 state disk (label KEYROOM-STATE) and a
# vfat USB stick (label KEYROOM-USB, on qemu-xhci) holding a fleetsim batch;
# the results are read off the stick image with mtools and verified on the
# host with openssl. The console menu is driven over the serial line. The
# UEFI stick image boots under OVMF, the hybrid ISO under SeaBIOS and OVMF;
# two builds give the same SHA-256. A UKI signed for Secure Boot boots under
# enforcing OVMF; unsigned, foreign-signed and tampered ones are refused.
# Last, the operators' whole path through the console menu: genesis,
# intermediate and install-policy ceremonies with share cards typed at the
# prompts, then a signing session and batch from a manufacturer's stick.
# Env (local iteration only): KEYROOM_IMAGE_QUICK=1 skips the second build
# and the UEFI and ISO boots.
. "$(dirname "$0")/../lib.sh"
scratch

if [ "${SAN:-}" = 1 ]; then
	skip "image boot" "the image ships the release build; booted in the normal pass, not under SAN=1"
	done_testing; exit
fi
for t in qemu-system-x86_64 mcopy mtype mkfs.vfat mke2fs openssl cpio xorriso; do
	if ! command -v "$t" >/dev/null; then
		skip "image boot" "$t missing (./scripts/deps.sh --image)"
		done_testing; exit
	fi
done
[ -x "$KEYROOM" ] || { nok "keyroom binary at $KEYROOM"; done_testing; exit 1; }

IMG="$TOP/$BUILD/image"
QTIMEOUT=${KEYROOM_QEMU_TIMEOUT:-300}

# --- 1. build (or reuse an up-to-date) image ---------------------------
if "$TOP/image/build.sh" --if-changed --keyroom "$KEYROOM" --out "$IMG" >"$T/build.log" 2>&1; then
	ok "image builds (kernel, initramfs, UKI, GPT stick, ISO)"
else
	nok "image builds"; sed 's/^/#   /' "$T/build.log" | tail -15; done_testing; exit 1
fi
check "SHA256SUMS verifies" sh -c "cd '$IMG' && sha256sum --quiet -c SHA256SUMS"
size_mib() { echo "$(( ($(stat -c %s "$1") + 524288) / 1048576 ))"; }
echo "# sizes: initramfs $(size_mib "$IMG/initramfs.cpio.gz") MiB, vmlinuz $(size_mib "$IMG/vmlinuz") MiB," \
    "UKI $(size_mib "$IMG/keyroom.efi") MiB, stick $(size_mib "$IMG/keyroom-usb.img") MiB, ISO $(size_mib "$IMG/keyroom.iso") MiB"

# The initramfs holds what the issue asks, found not hand-listed.
zcat "$IMG/initramfs.cpio.gz" | cpio -it --quiet 2>/dev/null | sort >"$T/files"
grep -qx usr/bin/keyroom "$T/files" && grep -qx usr/bin/busybox "$T/files" && grep -qx init "$T/files" &&
    grep -qx usr/sbin/keyroom-init "$T/files" && ok "initramfs: keyroom, busybox, /init, stage 2" ||
    nok "initramfs: keyroom, busybox, /init, stage 2"
grep -q 'softhsm/libsofthsm2.so$' "$T/files" && ok "initramfs: the dlopen()ed SoftHSM2 module and its libraries" ||
    nok "initramfs: SoftHSM2 module missing"
missing=""
for so in $(ldd /usr/lib/softhsm/libsofthsm2.so "$KEYROOM" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p' | sort -u); do
	b=$(basename "$so")
	grep -q "/$b\$" "$T/files" || missing="$missing $b"
done
[ -z "$missing" ] && ok "initramfs: every library ldd names for keyroom and the module" ||
    nok "initramfs: libraries missing:$missing"
grep -qE '(^|/)(getty|login|sshd|agetty)$' "$T/files" && nok "initramfs holds a getty/login" ||
    ok "initramfs: no getty, login or sshd"
grep -q 'kernel/drivers/net/' "$T/files" && nok "initramfs holds network drivers" ||
    ok "initramfs: no network driver modules"
nsig=0; nmod=0
mkdir -p "$T/x" && (cd "$T/x" && zcat "$IMG/initramfs.cpio.gz" | cpio -id --quiet 2>/dev/null)
for ko in $(find "$T/x" -name '*.ko'); do
	nmod=$((nmod + 1))
	tail -c 28 "$ko" | grep -q 'Module signature appended' && nsig=$((nsig + 1))
done
[ "$nmod" -gt 10 ] && [ "$nsig" = "$nmod" ] && ok "all $nmod modules keep their signatures" ||
    nok "module signatures: $nsig of $nmod"
# runas, the privilege drop every keyroom command goes through (run here
# from the extracted initramfs; it is static).
RA="$T/x/usr/libexec/keyroom/runas"
expect_fail "runas refuses uid 0" 'usage: runas UID GID' "$RA" 0 0 /usr/bin/id
expect_fail "runas refuses a relative program" 'usage: runas UID GID' "$RA" 1000 1000 id
expect_fail "runas refuses a non-numeric uid" 'usage: runas UID GID' "$RA" 1000x 1000 /usr/bin/id
if [ "$(id -u)" = 0 ]; then
	[ "$("$RA" 1000 1000 /usr/bin/id -u)" = 1000 ] && [ "$("$RA" 1000 1000 /usr/bin/id -G)" = 1000 ] &&
	    "$RA" 1000 1000 /usr/bin/grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status &&
	    ok "runas: uid 1000, only group 1000, no_new_privs" || nok "runas drops privileges"
else
	skip "runas privilege drop" "needs root on the host"
fi
grep -q 'lockdown=confidentiality module.sig_enforce=1 panic=10 oops=panic' "$IMG/cmdline" &&
    ok "hardened kernel command line" || nok "kernel command line: $(cat "$IMG/cmdline")"

# Build refusals, each with its reason.
printf 'vfat\nvirtio_net\n' >"$T/mods-net"
expect_fail "build refuses a network driver in modules.list (or one it pulls in)" 'drivers/net/[a-z_]+\.ko: network driver in the image' \
    "$TOP/image/build.sh" --keyroom "$KEYROOM" --out "$T/neg1" --modules "$T/mods-net"
printf 'vfat\nno_such_module\n' >"$T/mods-bad"
expect_fail "build refuses an unknown module" 'module no_such_module not in 6\.' \
    "$TOP/image/build.sh" --keyroom "$KEYROOM" --out "$T/neg2" --modules "$T/mods-bad"
expect_fail "build refuses a missing keyroom binary" 'not an executable' \
    "$TOP/image/build.sh" --keyroom "$T/nonexistent" --out "$T/neg3"
rm -rf "$T/neg1" "$T/neg2" "$T/neg3"

# --- 2. reproducible: a second build from the same inputs ---------------
QUICK=${KEYROOM_IMAGE_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	skip "reproducible build" "KEYROOM_IMAGE_QUICK=1"
else
	epoch=$(sed -n 's/^SOURCE_DATE_EPOCH //p' "$IMG/manifest.txt")
	if SOURCE_DATE_EPOCH=$epoch "$TOP/image/build.sh" --keyroom "$KEYROOM" --out "$T/repro" \
	    >"$T/repro.log" 2>&1 && cmp -s "$IMG/SHA256SUMS" "$T/repro/SHA256SUMS"; then
		ok "reproducible: a second build has the same SHA-256 for all five artifacts"
	else
		nok "reproducible build"; diff "$IMG/SHA256SUMS" "$T/repro/SHA256SUMS" | sed 's/^/#   /'
		tail -5 "$T/repro.log" | sed 's/^/#   /'
	fi
	rm -rf "$T/repro"
fi

# --- 3. disks: state (ext4 via mke2fs -d) and the batch stick (vfat) ----
mkdir -p "$T/statefs"
truncate -s 96M "$T/state.img"
mke2fs -q -t ext4 -L KEYROOM-STATE -d "$T/statefs" "$T/state.img"
truncate -s 64M "$T/stick.img"
mkfs.vfat -n KEYROOM-USB "$T/stick.img" >/dev/null
echo demo >"$T/keyroom-job"
mcopy -i "$T/stick.img" "$T/keyroom-job" ::/
have_batch=0
if [ -x "$TOOLS/fleetsim" ] && "$TOOLS/fleetsim" --out "$T/fleet" --seed 61 --devices 6 \
    --manifest-on-media --batch-id lot-vm >/dev/null 2>&1; then
	mkdir -p "$T/vendor"
	cp "$T/fleet/policy.yaml" "$T/fleet/signer.crt" "$T/vendor/"
	mcopy -i "$T/stick.img" -s "$T/vendor" ::/vendor
	mcopy -i "$T/stick.img" -s "$T/fleet/media" ::/batch
	have_batch=1
fi

# boot NAME LOG MARKER KILL_AT_MARKER QEMU_ARGS...: start qemu under a
# timeout, note the seconds until MARKER appears on the serial console;
# with KILL_AT_MARKER=1 stop it there, else wait for it to power off.
# Sets BOOT_RC, READY_S (empty if never), TOTAL_S.
boot() {
	local log=$2 marker=$3 killit=$4 start now pid
	shift 4
	start=$(date +%s%N); READY_S=""
	timeout "$QTIMEOUT" qemu-system-x86_64 -nic none -m 1024 -nographic -no-reboot \
	    -monitor none -serial stdio "$@" </dev/null >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if [ -z "$READY_S" ] && grep -aq "$marker" "$log" 2>/dev/null; then
			now=$(date +%s%N)
			READY_S=$(( (now - start) / 1000000 ))
			READY_S="$((READY_S / 1000)).$(printf %03d $((READY_S % 1000)))"
			[ "$killit" = 1 ] && kill "$pid" 2>/dev/null
		fi
		sleep 0.2
	done
	wait "$pid"; BOOT_RC=$?
	[ -z "$READY_S" ] && grep -aq "$marker" "$log" && READY_S="?"
	TOTAL_S=$(( ($(date +%s%N) - start) / 1000000000 ))
}

# --- 4. the unattended job under direct kernel boot ---------------------
boot job "$T/console.log" KEYROOM-READY 0 \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initramfs.cpio.gz" \
    -append "console=ttyS0 $(cat "$IMG/cmdline") keyroom.auto=1" \
    -drive "file=$T/state.img,if=virtio,format=raw" \
    -device qemu-xhci -drive "if=none,id=stick,file=$T/stick.img,format=raw" \
    -device usb-storage,drive=stick
echo "# job boot: ready after ${READY_S:-never}s (wall clock, qemu TCG;" \
    "$(grep -ao 'KEYROOM-READY uptime=[0-9.]*s' "$T/console.log" | head -1)), powered off after ${TOTAL_S}s, qemu rc $BOOT_RC"
[ -n "$READY_S" ] && ok "boots to the ready marker (${READY_S}s)" ||
    { nok "boots to the ready marker"; tail -25 "$T/console.log" | sed 's/^/#   /'; }
[ "$BOOT_RC" = 0 ] && ok "powers itself off after the job (no timeout, no panic)" ||
    { nok "power off after the job (qemu rc $BOOT_RC)"; grep -a -E 'FATAL|panic|keyroom:' "$T/console.log" | tail -10 | sed 's/^/#   /'; }

R="$T/res"
mkdir -p "$R"
if mcopy -i "$T/stick.img" -s -n ::/keyroom-results "$R/" 2>/dev/null && [ -f "$R/keyroom-results/results.txt" ]; then
	ok "results read off the stick image with mcopy"
else
	nok "results on the stick"; done_testing; exit 1
fi
RES="$R/keyroom-results/results.txt"
val() { sed -n "s/^$1=//p" "$RES" | tail -1; }
sed 's/^/#   /' "$RES" | grep -v -E '^#   (processes|time\.)' | head -60
echo "# in-VM uptime: ready $(val uptime_ready)s, job done $(val uptime_done)s; step seconds:" \
    "$(sed -n 's/^time\.//p' "$RES" | tr '\n' ' ')"

# In-VM checks recorded by the job.
[ "$(val net_ifaces)" = lo ] && ok "in VM: only lo in /sys/class/net" || nok "in VM: interfaces: $(val net_ifaces)"
for f in nodev nosuid noexec; do
	case ",$(val media_mount | cut -d' ' -f2)," in *",$f,"*) ok "in VM: stick mounted $f";; *) nok "in VM: stick not $f: $(val media_mount)";; esac
	case ",$(val state_mount | cut -d' ' -f2)," in *",$f,"*) ok "in VM: state disk mounted $f";; *) nok "in VM: state disk not $f: $(val state_mount)";; esac
done
[ "$(val modules_disabled)" = 1 ] && ok "in VM: /proc/sys/kernel/modules_disabled = 1" || nok "in VM: modules_disabled = $(val modules_disabled)"
val module_load_after_lockout | grep -q 'Operation not permitted' && ok "in VM: insmod after the lockout: EPERM" ||
    nok "in VM: insmod after lockout: $(val module_load_after_lockout)"
[ "$(val sig_enforce)" = Y ] && ok "in VM: module signatures enforced" || nok "in VM: sig_enforce = $(val sig_enforce)"
case ",$(val root_mount | cut -d' ' -f2)," in *,ro,*) ok "in VM: root mounted read-only";; *) nok "in VM: root: $(val root_mount)";; esac
[ "$(val root_write)" = denied ] && ok "in VM: writing to / is refused" || nok "in VM: root write $(val root_write)"
[ "$(val getty_login_procs)" = 0 ] && ok "in VM: no getty/login process" || nok "in VM: getty/login processes: $(val getty_login_procs)"
[ "$(val lockdown)" = "none integrity [confidentiality]" ] && ok "in VM: kernel lockdown = confidentiality" || nok "in VM: lockdown: $(val lockdown)"
[ "$(val keyroom_uid)" = 1000 ] && [ "$(val keyroom_nnp)" = 1 ] && ok "in VM: keyroom runs as uid 1000 with no_new_privs" ||
    nok "in VM: keyroom uid $(val keyroom_uid), nnp $(val keyroom_nnp)"
[ "$(val keyroom_core_limit)" = 0 ] && [ "$(val core_pattern)" = /dev/null ] && ok "in VM: core dumps off" ||
    nok "in VM: core limit $(val keyroom_core_limit), pattern $(val core_pattern)"

# The job's steps. A step is "absent" only if the binary lacks the command.
stepcheck() {
	local s v
	s=$1; v=$(val "step.$s")
	case "$v" in
	ok) ok "in VM: step $s succeeded" ;;
	"partial 3") ok "in VM: step $s: some requests rejected (exit 3)" ;;
	absent) skip "in VM: step $s" "keyroom has no such command yet" ;;
	"") skip "in VM: step $s" "${2:-not run}" ;;
	*) nok "in VM: step $s: $v"
	   awk -v h="### step $s:" 'index($0, h) == 1 { on = 1; next } /^### step / { on = 0 } on' \
	       "$R/keyroom-results/job.log" >"$T/step.log"
	   { grep -a 'keyroom[^ ]*: ' "$T/step.log" | grep -av '^keyroom: step' | tail -3; tail -2 "$T/step.log"; } |
	       sed 's/^/#   /' ;;
	esac
}
for s in init genesis intermediate; do stepcheck "$s"; done
if [ "$have_batch" = 1 ]; then
	stepcheck policy; stepcheck batch
else
	skip "in VM: batch" "fleetsim not built ($TOOLS/fleetsim)"
fi
for s in audit_verify audit_export; do stepcheck "$s"; done
[ "$(val job)" = ok ] && ok "in VM: the job succeeded" || nok "in VM: job = $(val job)"

# --- 5. verify the outputs on the host ---------------------------------
C="$R/keyroom-results/certs"
if [ -f "$C/root.pem" ] && [ -f "$C/intermediate.pem" ]; then
	openssl verify -x509_strict -CAfile "$C/root.pem" "$C/root.pem" >/dev/null 2>&1 &&
	    ok "host: root certificate verifies (openssl -x509_strict)" || nok "host: root does not verify"
	openssl verify -x509_strict -CAfile "$C/root.pem" "$C/intermediate.pem" >/dev/null 2>&1 &&
	    ok "host: intermediate verifies to the root" || nok "host: intermediate does not verify"
	openssl x509 -in "$C/root.pem" -noout -text | grep -q 'ASN1 OID: prime256v1' &&
	    ok "host: root key is EC P-256" || nok "host: root key not P-256"
else
	[ "$(val step.genesis)" = absent ] && skip "host: CA certificates" "no ceremony command" || nok "host: root/intermediate on the stick"
fi
# The genesis ceremony made the root of the appliance's real state: the
# root it exported to the stick is the one the state holds, and the
# intermediate ceremony's chain verifies to it.
CG="$R/keyroom-results/ceremony"
if [ "$(val step.genesis)" = ok ]; then
	[ -f "$CG/root.pem" ] && [ -f "$CG/chain.pem" ] && cmp -s "$CG/root.pem" "$C/root.pem" &&
	    ok "host: the state's root is the one the genesis ceremony exported" ||
	    nok "host: genesis root.pem missing or differs from the state's root"
	awk '/BEGIN/{n++} {print > "'"$T"'/cchain-" n ".pem"}' "$CG/chain.pem" 2>/dev/null
	openssl verify -x509_strict -CAfile "$CG/root.pem" "$T/cchain-1.pem" >/dev/null 2>&1 &&
	    cmp -s "$T/cchain-1.pem" "$C/intermediate.pem" &&
	    ok "host: the intermediate ceremony's certificate verifies to the genesis root (and is the state's)" ||
	    nok "host: ceremony chain does not verify to the genesis root"
	for c in genesis intermediate; do
		tr=$(ls "$CG"/$c-*.transcript.txt 2>/dev/null | head -1)
		# The final checkpoint block: the note after the heading, up to
		# and including its signature line.
		[ -n "$tr" ] && awk '/^Final signed audit checkpoint$/ { on = 1; next } on { print } on && /^— / { exit }' \
		    "$tr" >"$T/$c.ckpt"
		[ -n "$tr" ] && sed -n 1p "$T/$c.ckpt" | grep -qx 'keyroom.test/appliance' && grep -q '^— ' "$T/$c.ckpt" &&
		    ok "host: $c transcript on the stick, with the final signed checkpoint" ||
		    { nok "host: $c transcript with its final checkpoint"; ls "$CG" | sed 's/^/#   /'; }
	done
	# Share cards stay in RAM: nothing card-like anywhere on the stick.
	mdir -i "$T/stick.img" -/ -b :: >"$T/stick.ls" 2>/dev/null
	grep -qiE '\.card(\.png|\.svg)?$' "$T/stick.ls" && { nok "share cards were written to the stick"; grep -iE '\.card' "$T/stick.ls" | sed 's/^/#   /'; } ||
	    ok "host: no share card on the stick ($(wc -l <"$T/stick.ls") paths listed)"
fi

if [ "$have_batch" = 1 ] && [ "$(val step.batch)" != absent ]; then
	mcopy -i "$T/stick.img" -s -n ::/batch/keyroom-out "$R/" 2>/dev/null
	O="$R/keyroom-out/lot-vm"
	if [ -d "$O/certs" ] && [ -f "$O/report.json" ] && [ -f "$O/checkpoint" ] && [ -f "$O/SHA256SUMS" ]; then
		ok "host: batch output (certs, report, checkpoint, SHA256SUMS) on the stick"
		(cd "$O" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1) && ok "host: batch SHA256SUMS verifies" ||
		    nok "host: batch SHA256SUMS"
		awk '/BEGIN/{n++} {print > "'"$T"'/chain-" n ".pem"}' "$O/chain.pem"
		n=0; bad=0
		for c in "$O"/certs/*.pem; do
			n=$((n + 1))
			openssl verify -x509_strict -CAfile "$T/chain-2.pem" -untrusted "$T/chain-1.pem" "$c" >/dev/null 2>&1 ||
			    bad=$((bad + 1))
		done
		[ "$n" = 6 ] && [ "$bad" = 0 ] && ok "host: all 6 device certificates verify to the chain (openssl -x509_strict)" ||
		    nok "host: device certificates: $n present, $bad fail to verify"
		cmp -s "$T/chain-2.pem" "$C/root.pem" && ok "host: the batch chain ends in the root made in the VM" ||
		    nok "host: batch chain root differs from certs/root.pem"
		python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
recs = r["records"]
assert len(recs) == 6 and all(x["decision"] == "accept" and len(x["cert_sha256"]) == 64 for x in recs), recs
' "$O/report.json" 2>"$T/pyerr" && ok "host: report.json: 6 accepted records with certificate hashes" ||
		    { nok "host: report.json"; sed 's/^/#   /' "$T/pyerr" | tail -3; }
		# C2SP signed note: origin, size, root hash, blank, signature line(s).
		sed -n 1p "$O/checkpoint" | grep -q '^keyroom.test/appliance$' &&
		    sed -n 2p "$O/checkpoint" | grep -qE '^[0-9]+$' &&
		    sed -n 3p "$O/checkpoint" | base64 -d 2>/dev/null | wc -c | grep -qx 32 &&
		    grep -q '^— ' "$O/checkpoint" && ok "host: checkpoint is a signed note for origin keyroom.test/appliance" ||
		    { nok "host: checkpoint format"; sed 's/^/#   /' "$O/checkpoint"; }
	else
		nok "host: batch output on the stick"; ls -R "$R" | head -20 | sed 's/^/#   /'
	fi
fi
if [ "$(val step.audit_export)" = ok ]; then
	mcopy -i "$T/stick.img" -s -n ::/keyroom-audit "$R/" 2>/dev/null
	if [ -f "$R/keyroom-audit/checkpoint" ] && [ -f "$R/keyroom-audit/vkey" ]; then
		ok "host: audit export (tlog-tiles, vkey) read off the stick"
		"$KEYROOM" audit verify "$R/keyroom-audit" --vkey "$R/keyroom-audit/vkey" >"$T/av" 2>&1 &&
		    ok "host: keyroom audit verify accepts the exported log" ||
		    { nok "host: audit verify of the export"; sed 's/^/#   /' "$T/av" | head -5; }
		# The batch checkpoint's Ed25519 signature, checked with OpenSSL
		# alone: vkey = name+keyid+base64(0x01||key); the signed message
		# is the note text before the blank line.
		if [ -n "${O:-}" ] && [ -f "$O/checkpoint" ]; then
			vk=$(cat "$R/keyroom-audit/vkey")
			vk=${vk#*+}; vk=${vk#*+}	# name+keyid+key; the key may hold '+'
			{ printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'
			  echo "$vk" | base64 -d | tail -c 32; } >"$T/ed.der"
			sed '/^$/,$d' "$O/checkpoint" >"$T/note.msg"
			grep '^— ' "$O/checkpoint" | head -1 | awk '{ print $3 }' | base64 -d | tail -c 64 >"$T/note.sig"
			openssl pkeyutl -verify -pubin -keyform DER -inkey "$T/ed.der" -rawin -in "$T/note.msg" \
			    -sigfile "$T/note.sig" >"$T/pk.out" 2>&1 &&
			    ok "host: batch checkpoint signature verifies with openssl pkeyutl (Ed25519, exported vkey)" ||
			    { nok "host: checkpoint signature (openssl pkeyutl)"
			      { cat "$T/pk.out"; echo "vkey: $(cat "$R/keyroom-audit/vkey")"; cat "$O/checkpoint"
			        wc -c "$T/ed.der" "$T/note.sig"; } | sed 's/^/#   /'; }
		fi
		if [ -n "${O:-}" ] && [ -f "$O/checkpoint" ]; then
			"$KEYROOM" audit verify "$R/keyroom-audit" --vkey "$R/keyroom-audit/vkey" --checkpoint "$O/checkpoint" \
			    >"$T/av2" 2>&1 && ok "host: the exported log extends the batch's checkpoint" ||
			    { nok "host: export vs batch checkpoint"; sed 's/^/#   /' "$T/av2" | head -5; }
		fi
		for c in genesis intermediate; do
			[ -s "$T/$c.ckpt" ] || continue
			"$KEYROOM" audit verify "$R/keyroom-audit" --vkey "$R/keyroom-audit/vkey" --checkpoint "$T/$c.ckpt" \
			    >"$T/av-$c" 2>&1 && ok "host: the exported log extends the $c transcript's final checkpoint" ||
			    { nok "host: export vs the $c transcript's checkpoint"; sed 's/^/#   /' "$T/av-$c" | head -5; }
		done
		# The signing session in the exported LMDB copy: the operators'
		# quorum unlock, session open, the batch's 6 certificates, close.
		if [ -f "$R/keyroom-audit/log/data.mdb" ]; then
			mkdir -p "$T/auditcopy" && cp -r "$R/keyroom-audit/log" "$T/auditcopy/"
			"$KEYROOM" --state "$T/auditcopy" audit list >"$T/alist" 2>"$T/alist.err"
			awk '$3 == "quorum-unlock" && $4 == "session" { u = $1 } $3 == "session-open" { o = $1 }
			     $3 == "session-close" { c = $1 } $3 == "cert-issued" && o != "" && c == "" { n++ }
			     $3 == "batch-begin" && o != "" && c == "" { b++ }
			     END { exit !(u != "" && o != "" && c != "" && u < o && o < c && n == 6 && b == 1) }' "$T/alist" &&
			    ok "host: exported log: quorum-unlock, session-open, 6 certificates issued, session-close, in order" ||
			    { nok "host: session entries in the exported log"
			      { grep -E 'quorum|session|batch' "$T/alist"; cat "$T/alist.err"; } | sed 's/^/#   /' | head -12; }
			grep -Eq '^ *[0-9]+ +[^ ]+ +ceremony-end +ceremony:genesis' "$T/alist" &&
			    grep -Eq '^ *[0-9]+ +[^ ]+ +ceremony-end +ceremony:intermediate' "$T/alist" &&
			    ok "host: exported log: the genesis and intermediate ceremonies ended" ||
			    nok "host: ceremony-end entries missing from the exported log"
		else
			nok "host: the export holds no LMDB copy (log/data.mdb)"
		fi
	else
		nok "host: audit export on the stick"
	fi
fi

# --- 6. the console menu (no keyroom.auto): info, a refused debug shell,
# power off; driven over the serial line.
wait_for() { # wait_for LOG REGEX SECONDS
	local i=0
	while [ "$i" -lt "$(($3 * 5))" ]; do grep -aqE "$2" "$1" && return 0; sleep 0.2; i=$((i + 1)); done
	return 1
}
# Two refusals booted alongside the menu: no state disk (fatal, power
# off), and a stick naming a job that does not exist (nothing on it runs).
( boot nostate "$T/nostate.log" 'no state disk labelled KEYROOM-STATE' 0 \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initramfs.cpio.gz" \
    -append "console=ttyS0 $(cat "$IMG/cmdline") keyroom.auto=1"
  echo "${READY_S:-never} $BOOT_RC $TOTAL_S" >"$T/nostate.res" ) &
p_nostate=$!
truncate -s 32M "$T/state-badjob.img"
mke2fs -q -t ext4 -L KEYROOM-STATE "$T/state-badjob.img"
truncate -s 32M "$T/badjob.img"
mkfs.vfat -n KEYROOM-USB "$T/badjob.img" >/dev/null
printf 'sh /media/evil.sh\n' >"$T/keyroom-job"
printf 'touch /state/evil\n' >"$T/evil.sh"
mcopy -i "$T/badjob.img" "$T/keyroom-job" "$T/evil.sh" ::/
( boot badjob "$T/badjob.log" KEYROOM-READY 0 \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initramfs.cpio.gz" \
    -append "console=ttyS0 $(cat "$IMG/cmdline") keyroom.auto=1" \
    -drive "file=$T/state-badjob.img,if=virtio,format=raw" \
    -device qemu-xhci -drive "if=none,id=stick,file=$T/badjob.img,format=raw" -device usb-storage,drive=stick
  echo "${READY_S:-never} $BOOT_RC $TOTAL_S" >"$T/badjob.res" ) &
p_badjob=$!

mkfifo "$T/menu.in"
timeout "$QTIMEOUT" qemu-system-x86_64 -nic none -m 1024 -nographic -no-reboot -monitor none -serial stdio \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initramfs.cpio.gz" -append "console=ttyS0 $(cat "$IMG/cmdline")" \
    -drive "file=$T/state.img,if=virtio,format=raw" <"$T/menu.in" >"$T/menu.log" 2>&1 &
qpid=$!
exec 3>"$T/menu.in"
if wait_for "$T/menu.log" '^choice: ' 240; then
	printf 'd\n' >&3; wait_for "$T/menu.log" 'unknown choice' 30
	printf '5\n' >&3; wait_for "$T/menu.log" 'press Enter' 60
	printf '\n' >&3; sleep 1
	printf '0\n' >&3
fi
wait_for "$T/menu.log" 'reboot: Power down' 60
kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null
exec 3>&-
grep -aq '=== keyroom appliance ===' "$T/menu.log" && ok "menu: the console shows the appliance menu, no login prompt" ||
    { nok "menu on the console"; tail -15 "$T/menu.log" | sed 's/^/#   /'; }
grep -aq 'unknown choice' "$T/menu.log" && ! grep -aq 'DEBUG BUILD' "$T/menu.log" &&
    ok "menu: no debug shell in a release build" || nok "menu: debug shell offered or not refused"
grep -aqE 'network interfaces: lo[[:space:]]*$' "$T/menu.log" && grep -aq 'state disk: /dev/vda' "$T/menu.log" &&
    ok "menu: system information (only lo, state disk by label)" || nok "menu: system information"
grep -aq 'reboot: Power down' "$T/menu.log" && ok "menu: power off" || nok "menu: power off"
grep -aq 'login:' "$T/menu.log" && nok "a login prompt appeared" || ok "menu: no login prompt anywhere"

wait "$p_nostate" "$p_badjob"
read -r r rc tot <"$T/nostate.res"
[ "$r" != never ] && [ "$rc" = 0 ] && grep -aq 'FATAL: no state disk labelled KEYROOM-STATE' "$T/nostate.log" &&
    grep -aq 'reboot: Power down' "$T/nostate.log" &&
    ok "no state disk: 'FATAL: no state disk labelled KEYROOM-STATE', then power off (${tot}s)" ||
    { nok "no state disk: fatal and power off (rc $rc)"; grep -a -m3 -E 'Kernel panic|FATAL' "$T/nostate.log" | sed 's/^/#   /'; tail -4 "$T/nostate.log" | sed 's/^/#   /'; }
read -r r rc tot <"$T/badjob.res"
mcopy -i "$T/badjob.img" -n ::/keyroom-results/results.txt "$T/badjob-results.txt" 2>/dev/null
if [ "$rc" = 0 ] && grep -qx 'job.name=shmediaevilsh' "$T/badjob-results.txt" &&
    grep -qx 'job=fail unknown-job' "$T/badjob-results.txt" && ! grep -q '^step\.' "$T/badjob-results.txt" &&
    grep -aq "unknown or missing job 'shmediaevilsh'" "$T/badjob.log"; then
	ok "stick naming an unknown job: refused (job=fail unknown-job), no step run, power off"
else
	nok "unknown job refused (rc $rc)"; sed 's/^/#   /' "$T/badjob-results.txt" 2>/dev/null | tail -5
	grep -a -m3 -E 'Kernel panic|FATAL' "$T/badjob.log" | sed 's/^/#   /'
fi
debugfs -R 'stat /evil' "$T/state-badjob.img" 2>&1 | grep -q 'File not found' &&
    ok "nothing from the stick was executed (/state/evil absent)" || nok "the stick's evil.sh ran"

# --- 7. the boot media for real hardware, three boots side by side (each
# with its own state disk), each stopped at the ready marker: the GPT stick
# (UKI) under OVMF, the hybrid ISO under SeaBIOS (isolinux) and under OVMF.
OVMF=/usr/share/OVMF/OVMF_CODE.fd
if [ "$QUICK" = 1 ]; then
	skip "boot media" "KEYROOM_IMAGE_QUICK=1"; done_testing; exit
fi
# boot_bg NAME QEMU_ARGS...: boot in the background; $T/NAME.res gets
# "READY_S BOOT_RC" when done.
boot_bg() {
	local n=$1; shift
	truncate -s 32M "$T/state-$n.img"
	mke2fs -q -t ext4 -L KEYROOM-STATE "$T/state-$n.img"
	( boot "$n" "$T/$n.log" KEYROOM-READY 1 -drive "file=$T/state-$n.img,if=virtio,format=raw" "$@"
	  echo "${READY_S:-never} $BOOT_RC" >"$T/$n.res" ) &
}
have_ovmf=0
[ -f "$OVMF" ] && [ -f /usr/share/OVMF/OVMF_VARS.fd ] && have_ovmf=1
if [ "$have_ovmf" = 1 ]; then
	cp /usr/share/OVMF/OVMF_VARS.fd "$T/vars-uefi.fd"
	cp /usr/share/OVMF/OVMF_VARS.fd "$T/vars-isouefi.fd"
	cp "$IMG/keyroom-usb.img" "$T/boot.img"
	boot_bg uefi -drive "if=pflash,format=raw,readonly=on,file=$OVMF" \
	    -drive "if=pflash,format=raw,file=$T/vars-uefi.fd" \
	    -device qemu-xhci -drive "if=none,id=boot,file=$T/boot.img,format=raw" -device usb-storage,drive=boot
	boot_bg isouefi -drive "if=pflash,format=raw,readonly=on,file=$OVMF" \
	    -drive "if=pflash,format=raw,file=$T/vars-isouefi.fd" -cdrom "$IMG/keyroom.iso"
fi
boot_bg iso -cdrom "$IMG/keyroom.iso"
wait
media_check() { # NAME DESCRIPTION LOG-REGEX
	local r
	r=$(cut -d' ' -f1 "$T/$1.res" 2>/dev/null)
	echo "# $2: ready after ${r:-never}s"
	if [ -n "$r" ] && [ "$r" != never ] && grep -aq "$3" "$T/$1.log"; then
		ok "$2 reaches the ready marker (${r}s)"
	else
		nok "$2"; grep -a -m3 -E 'Kernel panic|FATAL' "$T/$1.log" | sed 's/^/#   /'
		tail -8 "$T/$1.log" | sed 's/^/#   /'
	fi
}
if [ "$have_ovmf" = 1 ]; then
	media_check uefi "UEFI (OVMF): the UKI on the GPT stick image" 'EFI stub'
	media_check isouefi "UEFI (OVMF): the hybrid ISO as a CD" 'EFI stub'
else
	skip "UEFI boots" "OVMF missing (ovmf package)"
fi
media_check iso "BIOS (SeaBIOS): the hybrid ISO through isolinux" ISOLINUX

# --- 8. Secure Boot: OVMF with Debian's test ("snakeoil") PK/KEK/db and
# the firmware enforcing. `build.sh --sb-key/--sb-cert` signs the UKI with
# the db key: it boots, and the kernel reports Secure Boot on. The firmware
# refuses the unsigned stick, a UKI signed by a key not in db, and the
# signed UKI with one byte changed.
SBCODE=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
SBVARS=/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd
SBPEM=/usr/share/ovmf/PkKek-1-snakeoil.pem
SBKEY=/usr/share/ovmf/PkKek-1-snakeoil.key	# PKCS#8, password "snakeoil"
if ! [ -f "$SBCODE" ] || ! [ -f "$SBVARS" ] || ! [ -f "$SBPEM" ] || ! [ -f "$SBKEY" ] ||
    ! command -v sbsign >/dev/null; then
	skip "Secure Boot" "ovmf snakeoil vars or sbsigntool missing (./scripts/deps.sh --image)"
	done_testing; exit
fi
openssl pkey -in "$SBKEY" -passin pass:snakeoil -out "$T/sb.key" 2>/dev/null
if "$TOP/image/build.sh" --keyroom "$KEYROOM" --out "$T/sb" --sb-key "$T/sb.key" \
    --sb-cert "$SBPEM" >"$T/sb-build.log" 2>&1; then
	ok "build.sh --sb-key/--sb-cert: the UKI signed for Secure Boot"
else
	nok "signed build"; tail -5 "$T/sb-build.log" | sed 's/^/#   /'; done_testing; exit 1
fi
check "sbverify: the UKI verifies with the db certificate" sbverify --cert "$SBPEM" "$T/sb/keyroom.efi"
if sbverify --cert "$SBPEM" "$IMG/keyroom.efi" >/dev/null 2>&1; then nok "the unsigned UKI verifies"
else ok "sbverify refuses the unsigned UKI"; fi
check "signing changes only the UKI and its media: kernel and initramfs are the same bytes" \
    sh -c "cmp -s '$T/sb/vmlinuz' '$IMG/vmlinuz' && cmp -s '$T/sb/initramfs.cpio.gz' '$IMG/initramfs.cpio.gz'"
# the db key held in an HSM (a SoftHSM2 token), named by a pkcs11: URI
mkdir -p "$T/sbtok"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$T/sbtok" >"$T/sbhsm.conf"
URI="pkcs11:token=sb-db;object=db;type=private;pin-value=1234"
if SOFTHSM2_CONF="$T/sbhsm.conf" softhsm2-util --init-token --free --label sb-db --so-pin 87654321 \
        --pin 1234 >/dev/null 2>&1 &&
    SOFTHSM2_CONF="$T/sbhsm.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label sb-db \
        --login --pin 1234 --keypairgen --key-type rsa:2048 --label db --id 01 >/dev/null 2>&1 &&
    SOFTHSM2_CONF="$T/sbhsm.conf" openssl req -engine pkcs11 -keyform engine -key "$URI" -new -x509 \
        -days 30 -subj "/CN=OEM db key in an HSM" -out "$T/hsmdb.pem" >/dev/null 2>&1; then
	SOFTHSM2_CONF="$T/sbhsm.conf" "$TOP/image/build.sh" --keyroom "$KEYROOM" --out "$T/sbhsm" \
	    --sb-key "$URI" --sb-cert "$T/hsmdb.pem" >"$T/sbhsm.log" 2>&1 &&
	    sbverify --cert "$T/hsmdb.pem" "$T/sbhsm/keyroom.efi" >/dev/null 2>&1 &&
	    ok "build.sh --sb-key pkcs11:URI: the UKI signed by a key that never leaves the token" ||
	    { nok "signing with a pkcs11: URI"; tail -5 "$T/sbhsm.log" | sed 's/^/#   /'; }
else
	nok "a SoftHSM2 token with a db key for the pkcs11: signing check"
fi
expect_fail "build.sh: --sb-key without --sb-cert" "go together" \
    "$TOP/image/build.sh" --keyroom "$KEYROOM" --out "$T/sbbad" --sb-key "$T/sb.key"
# a stick whose UKI is EFI (signed by another key, or tampered): media.sh
stick_with() { # NAME UKI: $T/NAME-stick/keyroom-usb.img holding UKI
	local d="$T/$1-stick"
	mkdir -p "$d/work"; cp "$IMG/vmlinuz" "$IMG/initramfs.cpio.gz" "$IMG/cmdline" "$d/"
	cp "$2" "$d/keyroom.efi"
	SOURCE_DATE_EPOCH=$(git -C "$TOP" log -1 --format=%ct 2>/dev/null || echo 1764028800) \
	    "$TOP/image/media.sh" "$d" "$d/work" >/dev/null 2>&1
}
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/other.key" -out "$T/other.pem" -days 30 \
    -subj "/CN=not in db" >/dev/null 2>&1
sbsign --key "$T/other.key" --cert "$T/other.pem" --output "$T/other.efi" "$IMG/keyroom.efi" >/dev/null 2>&1
stick_with other "$T/other.efi"
cp "$T/sb/keyroom.efi" "$T/tampered.efi"
off=$(( $(stat -c %s "$T/tampered.efi") / 2 ))
b=$(od -An -tu1 -j "$off" -N1 "$T/tampered.efi" | tr -d ' ')
printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$T/tampered.efi" bs=1 seek="$off" conv=notrunc status=none
stick_with tampered "$T/tampered.efi"
# sb_boot NAME STICK MARKER: boot the stick under enforcing OVMF, stop at MARKER
sb_boot() {
	cp "$SBVARS" "$T/vars-$1.fd"
	truncate -s 32M "$T/state-$1.img"
	mke2fs -q -t ext4 -L KEYROOM-STATE "$T/state-$1.img"
	boot "$1" "$T/$1.log" "$3" 1 -machine q35,smm=on \
	    -global driver=cfi.pflash01,property=secure,value=on \
	    -drive "if=pflash,format=raw,unit=0,readonly=on,file=$SBCODE" \
	    -drive "if=pflash,format=raw,unit=1,file=$T/vars-$1.fd" \
	    -drive "file=$T/state-$1.img,if=virtio,format=raw" \
	    -device qemu-xhci -drive "if=none,id=boot,file=$2,format=raw" -device usb-storage,drive=boot
	echo "${READY_S:-never}" >"$T/$1.res"
}
cp "$T/sb/keyroom-usb.img" "$T/sb-boot.img"
cp "$IMG/keyroom-usb.img" "$T/unsigned-boot.img"
( sb_boot sbok "$T/sb-boot.img" KEYROOM-READY ) &
( sb_boot sbunsigned "$T/unsigned-boot.img" 'Access Denied' ) &
wait
( sb_boot sbother "$T/other-stick/keyroom-usb.img" 'Access Denied' ) &
( sb_boot sbtampered "$T/tampered-stick/keyroom-usb.img" 'Access Denied' ) &
wait
r=$(cat "$T/sbok.res" 2>/dev/null)
if [ -n "$r" ] && [ "$r" != never ] && grep -aq 'UEFI Secure Boot is enabled' "$T/sbok.log" &&
    grep -aq 'secureboot: Secure boot enabled' "$T/sbok.log"; then
	ok "Secure Boot enforcing: the signed UKI boots to the ready marker (${r}s), the kernel sees Secure Boot on"
else
	nok "Secure Boot: the signed UKI"; tail -8 "$T/sbok.log" | sed 's/^/#   /'
fi
sb_refused() { # NAME DESCRIPTION
	if [ "$(cat "$T/$1.res" 2>/dev/null)" != never ] && grep -aq 'USB HARDDRIVE.*Access Denied' "$T/$1.log" &&
	    ! grep -aq 'KEYROOM-READY' "$T/$1.log" && ! grep -aq 'Linux version' "$T/$1.log"; then
		ok "Secure Boot: the firmware refuses $2 (Access Denied, no kernel started)"
	else
		nok "Secure Boot: $2 not refused"; strings "$T/$1.log" | grep -a -m3 -i 'denied\|linux\|ready' | sed 's/^/#   /'
	fi
}
sb_refused sbunsigned "the unsigned stick"
sb_refused sbother "a UKI signed by a key not in db"
sb_refused sbtampered "the signed UKI with one byte changed"


# --- 9. the operators' path through the console menu (no keyroom.auto) on
# a fresh state disk: genesis (its share cards are read off the console),
# intermediate and install-policy with cards typed line by line at the
# prompts, on the officers' stick; power off; a second boot with the
# contract manufacturer's stick: "sign a batch", two operators type their
# cards; the certificates on the stick verify on the host to the root the
# genesis ceremony put on the officers' stick.
# mcount LOG REGEX: how many times REGEX is on the console so far
mcount() { tr -d '\r' <"$1" | grep -aEc -- "$2"; }
# mwait LOG REGEX N SECONDS: until REGEX has been seen N times
mwait() {
	local i=0
	while [ "$i" -lt "$(($4 * 5))" ]; do
		[ "$(mcount "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.2; i=$((i + 1))
	done
	echo "# timeout waiting for /$2/ x$3 in $1"; tr -d '\r' <"$1" | tail -6 | sed 's/^/#   /'
	return 1
}
# menu_boot NAME STATE STICK: qemu with the menu on the serial line, fed
# from a fifo on fd 3; MLOG is its console.
menu_boot() {
	MLOG="$T/$1.log"; rm -f "$T/$1.in"; mkfifo "$T/$1.in"
	timeout "$QTIMEOUT" qemu-system-x86_64 -nic none -m 1024 -nographic -no-reboot -monitor none \
	    -serial stdio -kernel "$IMG/vmlinuz" -initrd "$IMG/initramfs.cpio.gz" \
	    -append "console=ttyS0 $(cat "$IMG/cmdline")" \
	    -drive "file=$2,if=virtio,format=raw" \
	    -device qemu-xhci -drive "if=none,id=stick,file=$3,format=raw" -device usb-storage,drive=stick \
	    <"$T/$1.in" >"$MLOG" 2>&1 &
	MPID=$!
	exec 3>"$T/$1.in"
	HY=0; HC=0; HL=0; HE=0; HM=0
}
say() { printf '%s\n' "$1" >&3; }
# menu_do CHOICE [CEREMONY]: one menu action, answering its prompts (yes to
# every confirmation; the next card of CARDS_<role> at each share prompt,
# a line at each "line N:" prompt) until "press Enter to continue".
menu_do() {
	local i=0 n role card= li=0
	mwait "$MLOG" '^choice: ' $((HM + 1)) 240 || return 1
	HM=$((HM + 1)); say "$1"
	if [ -n "${2:-}" ]; then
		mwait "$MLOG" 'ceremony \(name, empty to cancel\): ' 1 60 >/dev/null ||
			mwait "$MLOG" 'ceremony \(name, empty to cancel\): ' 1 60 || return 1
		say "$2"
	fi
	while [ "$i" -lt 1500 ]; do
		# one snapshot of the console for all the counts: a share
		# message and its first "line 1:" may arrive between two reads
		snap=$(tr -d '\r' <"$MLOG")
		if [ "$(grep -aEc -- 'press Enter to continue' <<<"$snap")" -gt "$HE" ]; then
			HE=$((HE + 1)); say ""; return 0
		fi
		n=$(grep -aEc -- 'type yes or no: ' <<<"$snap")
		if [ "$n" -gt "$HY" ]; then HY=$n; say yes; continue; fi
		n=$(grep -aEc -- 'share [0-9]+ of [0-9]+ for [a-z]+: type the card' <<<"$snap")
		if [ "$n" -gt "$HC" ]; then
			HC=$n
			role=$(grep -aEo 'for [a-z]+: type the card' <<<"$snap" | tail -1 | cut -d' ' -f2 | tr -d :)
			eval "q=\${CARDS_$role:-}"; card="$T/mc/$role-${q%% *}.txt"
			case "$q" in *" "*) q=${q#* };; *) q="";; esac
			eval "CARDS_$role=\$q"
			li=0
		fi
		n=$(grep -aEc -- 'line [1-6]: ' <<<"$snap")
		if [ "$n" -gt "$HL" ] && [ -n "$card" ] && [ "$li" -lt 6 ]; then
			HL=$n; li=$((li + 1)); say "$(sed -n "${li}p" "$card")"; continue
		fi
		sleep 0.2; i=$((i + 1))
	done
	echo "# menu action '$1 ${2:-}' did not end"; tr -d '\r' <"$MLOG" | tail -8 | sed 's/^/#   /'
	return 1
}
menu_off() {
	mwait "$MLOG" '^choice: ' $((HM + 1)) 120 && say 0
	mwait "$MLOG" 'reboot: Power down' 1 120 >/dev/null
	exec 3>&-
	wait "$MPID" 2>/dev/null
}

if [ "$have_batch" = 1 ]; then
	truncate -s 96M "$T/state-menu.img"
	mke2fs -q -t ext4 -L KEYROOM-STATE "$T/state-menu.img"
	truncate -s 32M "$T/officers.img"; mkfs.vfat -n KEYROOM-USB "$T/officers.img" >/dev/null
	mkdir -p "$T/offpol/policy"; cp "$T/fleet/policy.yaml" "$T/fleet/signer.crt" "$T/offpol/policy/"
	mcopy -i "$T/officers.img" -s "$T/offpol/policy" ::/policy
	truncate -s 32M "$T/cm.img"; mkfs.vfat -n KEYROOM-USB "$T/cm.img" >/dev/null
	(cd "$T/fleet/media" && mcopy -i "$T/cm.img" -s ./* ::/)
	mkdir -p "$T/mc"

	menu_boot officers "$T/state-menu.img" "$T/officers.img"
	if menu_do 1 genesis; then
		# the cards as the console showed them: token, share number, 6 lines
		tr -d '\r' <"$MLOG" | awk -v d="$T/mc" '
		    / token: +[a-z]+$/ { role = $2 }
		    / quorum: .* share [0-9]+ of [0-9]+$/ { share = $(NF - 2); f = d "/" role "-" share ".txt"; printf "" >f }
		    /^   [1-6]  [A-Z2-7][A-Z2-7][A-Z2-7][A-Z2-7] / && f != "" { sub(/^   [1-6]  /, ""); print >>f }'
		nc=0; for f in "$T"/mc/*.txt; do [ "$(wc -l <"$f")" = 6 ] && nc=$((nc + 1)); done
		[ "$nc" = 6 ] && ok "menu: genesis ran from the console; its 6 share cards shown there" ||
			nok "menu: genesis cards on the console ($nc of 6)"
	else
		nok "menu: genesis"
	fi
	CARDS_root="1 2"; CARDS_issuing="1 2"
	menu_do 1 intermediate && grep -aq 'done: intermediate' "$MLOG" &&
		ok "menu: intermediate ceremony, two custodians and two operators typing their cards" ||
		nok "menu: intermediate ceremony"
	CARDS_root="2 3"
	menu_do 1 install-policy && grep -aq 'policy installed' "$MLOG" &&
		ok "menu: install-policy from the officers' stick, custodians 2 and 3" || nok "menu: install-policy"
	menu_off
	grep -aq 'reboot: Power down' "$MLOG" && ok "menu: power off" || nok "menu: power off after the ceremonies"

	menu_boot sign "$T/state-menu.img" "$T/cm.img"
	CARDS_issuing="2 3"
	menu_do 2 && grep -aqE 'batch lot-vm: [0-9]+ signed' "$MLOG" &&
		ok "menu: sign a batch, operators 2 and 3 open the session" ||
		nok "menu: sign a batch"
	menu_off
	mkdir -p "$T/mo"
	mcopy -i "$T/officers.img" ::/root.pem "$T/mo/root.pem" 2>/dev/null
	mcopy -i "$T/cm.img" -s ::/keyroom-out "$T/mo/" 2>/dev/null
	n=0; bad=0
	for c in "$T"/mo/keyroom-out/lot-vm/certs/*.pem; do
		[ -f "$c" ] || continue
		n=$((n + 1))
		openssl verify -x509_strict -CAfile "$T/mo/root.pem" -untrusted "$T/mo/keyroom-out/lot-vm/chain.pem" \
		    "$c" >/dev/null 2>&1 || bad=$((bad + 1))
	done
	[ "$n" -gt 0 ] && [ "$bad" = 0 ] &&
		ok "menu: $n certificates on the manufacturer's stick verify to the root on the officers' stick" ||
		nok "menu: certificates on the stick ($bad of $n fail)"
	ntr=$(mdir -i "$T/officers.img" -b ::/ 2>/dev/null | grep -c 'transcript.txt$')
	[ "$ntr" = 3 ] && ok "menu: the three ceremonies' transcripts are on the officers' stick" ||
		nok "menu: transcripts on the officers' stick ($ntr)"
else
	skip "menu: the operators' path" "no fleetsim batch"
fi

done_testing
