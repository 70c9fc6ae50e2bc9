#!/usr/bin/env bash
# image/build.sh - build the keyroom appliance image, reproducibly, as an
# ordinary user, without loop mounts.
#
#   build.sh --keyroom BIN --out DIR [--cache DIR] [--debug] [--if-changed]
#            [--modules FILE] [--sb-key KEY --sb-cert CERT.pem]
#
# Outputs in DIR:
#   vmlinuz               the Debian kernel (from the .deb, never installed)
#   initramfs.cpio.gz     newc, sorted, fixed mtimes, owner 0:0, gzip -n
#   cmdline               the hardened kernel command line
#   keyroom.efi           UEFI unified kernel image (systemd-boot stub);
#                         with --sb-key/--sb-cert signed for Secure Boot
#                         (sbsign; KEY a PEM file or a pkcs11: URI)
#   keyroom-usb.img       GPT stick image: one FAT EFI system partition
#   keyroom.iso           hybrid BIOS (isolinux) / UEFI ISO
#   SHA256SUMS            of all the above
#   manifest.txt          what went into the initramfs (modules, libraries)
# Inputs: BIN, busybox-static, the host's shared libraries, the Debian
# kernel package (downloaded with apt-get into the cache when missing).
# SOURCE_DATE_EPOCH (default: the commit time of HEAD) fixes every date.
# --if-changed: do nothing when OUT was built from the same inputs (digest of
# BIN, image/, busybox, the cached kernel, the host's package database, the
# Secure Boot certificate).
# Signing is the one step that is not reproducible (the signature carries
# its signing time): two signed builds differ only in the UKI's signature
# and the media that hold it; the kernel and initramfs are the same bytes.
set -euo pipefail
export LC_ALL=C TZ=UTC

HERE=$(cd "$(dirname "$0")" && pwd)
KEYROOM_BIN=""
OUT=""
CACHE="$HERE/out"
DEBUG=0
IF_CHANGED=0
MODLIST=$HERE/modules.list
SB_KEY=""
SB_CERT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--keyroom) KEYROOM_BIN=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--cache) CACHE=$2; shift 2 ;;
	--debug) DEBUG=1; shift ;;
	--if-changed) IF_CHANGED=1; shift ;;
	--modules) MODLIST=$2; shift 2 ;;
	--sb-key) SB_KEY=$2; shift 2 ;;
	--sb-cert) SB_CERT=$2; shift 2 ;;
	-h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done
[ -n "$KEYROOM_BIN" ] && [ -n "$OUT" ] || { echo "usage: build.sh --keyroom BIN --out DIR" >&2; exit 2; }
[ -x "$KEYROOM_BIN" ] || { echo "build.sh: $KEYROOM_BIN: not an executable (run make first)" >&2; exit 1; }
KEYROOM_BIN=$(readlink -f "$KEYROOM_BIN")
if [ -n "$SB_KEY$SB_CERT" ]; then
	[ -n "$SB_KEY" ] && [ -n "$SB_CERT" ] ||
	    { echo "build.sh: --sb-key and --sb-cert go together" >&2; exit 2; }
	command -v sbsign >/dev/null ||
	    { echo "build.sh: sbsign missing (run ./scripts/deps.sh --image)" >&2; exit 1; }
	openssl x509 -in "$SB_CERT" -noout 2>/dev/null ||
	    { echo "build.sh: $SB_CERT: not a PEM certificate" >&2; exit 1; }
	case "$SB_KEY" in
	pkcs11:*) ;;
	*) [ -r "$SB_KEY" ] || { echo "build.sh: $SB_KEY: cannot read the key" >&2; exit 1; }
	   SB_KEY=$(readlink -f "$SB_KEY") ;;
	esac
	SB_CERT=$(readlink -f "$SB_CERT")
fi

die() { echo "build.sh: $*" >&2; exit 1; }
note() { echo "image: $*" >&2; }

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$HERE" log -1 --format=%ct 2>/dev/null || echo 1764028800)
fi
export SOURCE_DATE_EPOCH
for t in busybox cpio gzip depmod objcopy objdump mformat mcopy mmd sfdisk xorriso ldd cc; do
	command -v "$t" >/dev/null || die "missing tool $t (run ./scripts/deps.sh --image)"
done
BUSYBOX=$(command -v busybox)
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
	die "$BUSYBOX is not static (install busybox-static)"
STUB=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
ISOLINUX=/usr/lib/ISOLINUX/isolinux.bin
ISOHDPFX=/usr/lib/ISOLINUX/isohdpfx.bin
LDLINUX=/usr/lib/syslinux/modules/bios/ldlinux.c32
for f in "$STUB" "$ISOLINUX" "$ISOHDPFX" "$LDLINUX"; do
	[ -f "$f" ] || die "missing $f (run ./scripts/deps.sh --image)"
done

mkdir -p "$OUT" "$CACHE/deb"
OUT=$(cd "$OUT" && pwd)
inputs_digest() {
	{
		echo "epoch $SOURCE_DATE_EPOCH debug $DEBUG"
		[ -z "$SB_CERT" ] || echo "secure boot $(openssl x509 -in "$SB_CERT" -outform DER | sha256sum)"
		sha256sum "$KEYROOM_BIN" "$BUSYBOX" "$STUB" /var/lib/dpkg/status "$MODLIST"
		(cd "$HERE" && find . -path ./out -prune -o -type f -print | sort | xargs sha256sum)
		cat "$HERE"/../ceremony/scripts/*.yaml 2>/dev/null | sha256sum
		ls "$CACHE"/deb/
	} | sha256sum | cut -d' ' -f1
}
digest=$(inputs_digest)
if [ "$IF_CHANGED" = 1 ] && [ -f "$OUT/inputs.sha256" ] && [ -f "$OUT/SHA256SUMS" ] &&
    [ "$(cat "$OUT/inputs.sha256")" = "$digest" ] &&
    (cd "$OUT" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1); then
	note "up to date: $OUT"
	exit 0
fi
rm -f "$OUT/inputs.sha256"
WORK="$OUT/work"
rm -rf "$WORK"
mkdir -p "$WORK"

# ---------------------------------------------------------------- kernel
# The newest cached linux-image-<abi>-amd64 .deb; download when none is
# cached (a fresh CI machine). The cache makes rebuilds reproducible.
kdeb=$(ls "$CACHE"/deb/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$kdeb" ]; then
	note "downloading the Debian kernel package into $CACHE/deb"
	resolve() {
		apt-cache depends linux-image-amd64 2>/dev/null |
		    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1
	}
	kpkg=$(resolve)
	if [ -z "$kpkg" ]; then
		# empty package lists (fresh container): refresh them once
		sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
		$sudo apt-get update -q >&2 || true
		kpkg=$(resolve)
	fi
	[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
	(cd "$CACHE/deb" && apt-get download -q "$kpkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) ||
		die "apt-get download $kpkg failed"
	kdeb=$(ls "$CACHE"/deb/linux-image-[0-9]*-amd64_*.deb | sort -V | tail -1)
fi
note "kernel package $(basename "$kdeb")"
# Unpacked once per package into the cache (read-only afterwards).
KTREE="$CACHE/kernel/$(basename "$kdeb" .deb)"
if [ ! -f "$KTREE/.complete" ]; then
	rm -rf "$KTREE" "$KTREE.tmp.$$"
	mkdir -p "$KTREE.tmp.$$"
	dpkg-deb -x "$kdeb" "$KTREE.tmp.$$"
	kv=$(ls "$KTREE.tmp.$$/lib/modules" | head -1)
	[ -n "$kv" ] || die "no kernel modules in $kdeb"
	depmod -b "$KTREE.tmp.$$" "$kv"
	touch "$KTREE.tmp.$$/.complete"
	mv "$KTREE.tmp.$$" "$KTREE"
fi
KVER=$(ls "$KTREE/lib/modules" | head -1)
[ -n "$KVER" ] && [ -f "$KTREE/boot/vmlinuz-$KVER" ] || die "no kernel in $kdeb"
MODDIR="$KTREE/lib/modules/$KVER"

# ---------------------------------------------------------------- modules
# Resolve image/modules.list through modules.dep (and softdep pre:) into a
# load order, dependencies first, before anything else is built. Refused:
# unknown modules, network drivers, compressed or unsigned modules (each
# carries its appended signature, which module.sig_enforce=1 checks).
declare -A mdep=() mpath=() done_m=() msoft=()
while IFS=: read -r m deps; do
	n=${m##*/}; n=${n%.ko*}; n=${n//-/_}
	mpath[$n]=$m; mdep[$n]=$deps
done <"$MODDIR/modules.dep"
while read -r kw n rest; do
	[ "$kw" = softdep ] || continue
	n=${n//-/_}
	pre=$(echo "$rest" | sed -n 's/.*pre: *\([^:]*\)\( post:.*\)\{0,1\}$/\1/p')
	msoft[$n]=$pre
done < <(cat "$MODDIR/modules.softdep" 2>/dev/null)
order=()
visit() {
	local n=${1//-/_} d dn
	[ -n "${done_m[$n]:-}" ] && return 0
	[ -n "${mpath[$n]:-}" ] || { grep -qE "/${n//_/[-_]}\.ko" "$MODDIR/modules.builtin" && return 0; die "module $n not in $KVER"; }
	done_m[$n]=1
	for d in ${msoft[$n]:-}; do
		d=${d//-/_}
		if [ -n "${mpath[$d]:-}" ]; then visit "$d"; fi
	done
	for d in ${mdep[$n]}; do
		dn=${d##*/}; dn=${dn%.ko*}
		visit "$dn"
	done
	order+=("${mpath[$n]}")
}
while read -r m; do
	m=${m%%#*}; m=$(echo "$m" | tr -d '[:space:]')
	if [ -n "$m" ]; then visit "$m"; fi
done <"$MODLIST"
: >"$WORK/load.order"
for ko in "${order[@]}"; do
	case "$ko" in *.ko) ;; *) die "$ko: compressed modules are not handled";; esac
	case "$ko" in */drivers/net/*|*/net/wireless/*|*/net/bluetooth/*) die "$ko: network driver in the image";; esac
	tail -c 28 "$MODDIR/$ko" | grep -q 'Module signature appended' || die "$ko: no signature"
	echo "$ko" >>"$WORK/load.order"
done

# ---------------------------------------------------------------- rootfs
ROOT="$WORK/root"
mkdir -p "$ROOT"
for d in usr/bin usr/sbin usr/lib usr/lib64 usr/libexec/keyroom etc/softhsm etc/keyroom \
    dev proc sys tmp run state media newroot home; do
	mkdir -p "$ROOT/$d"
done
# merged /usr, as on the build host
for l in bin sbin lib lib64; do ln -s "usr/$l" "$ROOT/$l"; done
cp -a "$HERE/rootfs/." "$ROOT/"

# busybox: only the applets the appliance uses get a name.
install -m 0755 "$BUSYBOX" "$ROOT/usr/bin/busybox"
APPLETS="sh ash awk uniq cat chmod chown cp cut date dd df echo env false findfs grep head id insmod
 ip kill ln ls lsmod mkdir mount mv poweroff printf ps readlink reboot rm rmdir sed setsid
 cttyhack sha256sum sleep sort stat switch_root sync sysctl tail tee test timeout touch tr true
 umount uname usleep wc [ stty clear"
for a in $APPLETS; do ln -s busybox "$ROOT/usr/bin/$a"; done

HOSTCFLAGS="-std=c11 -D_GNU_SOURCE -Os -Wall -Wextra -Wshadow -Wformat=2 -Werror"
# shellcheck disable=SC2086
cc $HOSTCFLAGS -static -o "$ROOT/usr/libexec/keyroom/runas" "$HERE/runas.c"
# shellcheck disable=SC2086
cc $HOSTCFLAGS -o "$WORK/pefix" "$HERE/pefix.c"
export PEFIX="$WORK/pefix"
install -m 0755 "$KEYROOM_BIN" "$ROOT/usr/bin/keyroom"
# the reviewed ceremony scripts, as `make install` ships them
mkdir -p "$ROOT/usr/share/keyroom/ceremony"
if [ -d "$HERE/../ceremony/scripts" ]; then
	cp "$HERE"/../ceremony/scripts/*.yaml "$ROOT/usr/share/keyroom/ceremony/"
fi
chmod 0755 "$ROOT/init" "$ROOT/usr/sbin/keyroom-init" "$ROOT"/usr/libexec/keyroom/*
if [ "$DEBUG" = 1 ]; then echo "debug build: the menu offers a root shell" >"$ROOT/etc/keyroom/debug"; fi

# ------------------------------------------------------- shared libraries
# install_path P: copy P into the image at the same path, replicating every
# symlink on the way (merged /usr, soname links) so the loader finds it
# exactly where the host's ldd did.
install_path() {
	local p=$1 dir base target
	[ -e "$ROOT$p" ] || [ -L "$ROOT$p" ] && return 0
	dir=$(dirname "$p"); base=$(basename "$p")
	if [ "$(readlink -f "$dir")" != "$dir" ]; then
		install_path "$(readlink -f "$dir")/$base"
		return 0
	fi
	mkdir -p "$ROOT$dir"
	if [ -L "$p" ]; then
		target=$(readlink "$p")
		ln -s "$target" "$ROOT$p"
		case "$target" in
		/*) install_path "$target" ;;
		*) install_path "$dir/$target" ;;
		esac
	else
		cp "$p" "$ROOT$p"
	fi
}

# Roots: the binary, and every object it dlopen()s, which ldd cannot see.
# Those are found two ways, neither hand-listed: absolute *.so paths that
# the binary (or any library it pulls in) names, e.g. the default PKCS#11
# module; and, when the binary can run a throwaway `init`, the objects the
# dynamic loader really mapped (LD_DEBUG=files).
declare -A seen=()
queue=("$KEYROOM_BIN")
dlopened() {
	strings -n 6 "$1" | grep -E '^/[A-Za-z0-9_./+-]+\.so(\.[0-9]+)*$' | sort -u |
	    while read -r so; do if [ -f "$so" ]; then echo "$so"; fi; done
}
trace_dlopen() {
	local t
	t=$(mktemp -d)
	# shellcheck disable=SC2064
	if "$KEYROOM_BIN" help init >/dev/null 2>&1; then
		(cd "$t" && LD_DEBUG=files LD_DEBUG_OUTPUT="$t/ld" KEYROOM_STATE="$t/state" \
		    KEYROOM_NO_PROGRESS=1 timeout 60 "$KEYROOM_BIN" -q --yes init \
		    </dev/null >/dev/null 2>&1 || true)
		cat "$t"/ld.* 2>/dev/null | sed -n 's/.*file=\(\/[^ ]*\) *\[0\]; *generating link map.*/\1/p' |
		    sort -u
	fi
	rm -rf "$t"
}
while read -r so; do queue+=("$so"); done < <(trace_dlopen)
libs=()
while [ ${#queue[@]} -gt 0 ]; do
	obj=${queue[0]}; queue=("${queue[@]:1}")
	[ -n "${seen[$obj]:-}" ] && continue
	seen[$obj]=1
	[ "$obj" = "$KEYROOM_BIN" ] || libs+=("$obj")
	while read -r dep; do queue+=("$dep"); done < <(
		ldd "$obj" 2>/dev/null | sed -n -e 's/.*=> \(\/[^ ]*\) (.*/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'
		dlopened "$obj")
done
for l in $(printf '%s\n' "${libs[@]}" | sort -u); do install_path "$l"; done

# SoftHSM2 default configuration: the token store lives on the state disk.
cat >"$ROOT/etc/softhsm/softhsm2.conf" <<EOF
# keyroom appliance: SoftHSM2 token store on the state disk
directories.tokendir = /state/keyroom/tokens/
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
cat >"$ROOT/etc/passwd" <<EOF
root:x:0:0:root:/root:/usr/sbin/nologin
keyroom:x:1000:1000:keyroom appliance:/tmp/keyroom:/usr/sbin/nologin
EOF
cat >"$ROOT/etc/group" <<EOF
root:x:0:
tty:x:5:
keyroom:x:1000:
EOF
kv=$("$KEYROOM_BIN" --version 2>/dev/null | head -1 || echo keyroom)
cat >"$ROOT/etc/os-release" <<EOF
NAME="keyroom appliance"
ID=keyroom
PRETTY_NAME="keyroom appliance ($kv$([ "$DEBUG" = 1 ] && echo ", DEBUG build"))"
VERSION_ID="${kv#keyroom }"
BUILD_ID="$SOURCE_DATE_EPOCH"
EOF

# ---------------------------------------------------------------- modules
# (resolved and checked above; copied byte for byte)
while read -r ko; do
	mkdir -p "$ROOT/usr/lib/modules/$KVER/$(dirname "$ko")"
	cp "$MODDIR/$ko" "$ROOT/usr/lib/modules/$KVER/$ko"
done <"$WORK/load.order"
cp "$WORK/load.order" "$ROOT/usr/lib/modules/$KVER/load.order"

# ---------------------------------------------------------------- cmdline
# no_timer_check: under emulation on a loaded host the IO-APIC timer check
# can fail and panic at boot ("IO-APIC + timer doesn't work"), seen here
# with several qemu TCG guests at once; the check guards against broken
# timer routing on old chipsets, not against an attacker.
CMDLINE="lockdown=confidentiality module.sig_enforce=1 panic=10 oops=panic no_timer_check slab_nomerge init_on_alloc=1 init_on_free=1 page_alloc.shuffle=1 pti=on vsyscall=none debugfs=off randomize_kstack_offset=on mitigations=auto nosmt=force ipv6.disable=1 rdinit=/init"
echo "$CMDLINE" >"$OUT/cmdline"
# real hardware: the menu on the screen (last console), marker also on serial
echo "$CMDLINE console=ttyS0,115200 console=tty0" >"$WORK/cmdline.uki"

# ---------------------------------------------------------------- manifest
{
	echo "keyroom appliance image"
	echo "kernel $(basename "$kdeb") $KVER"
	echo "keyroom $(sha256sum "$KEYROOM_BIN" | cut -d' ' -f1) $kv"
	echo "busybox $(sha256sum "$BUSYBOX" | cut -d' ' -f1)"
	echo "SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH"
	echo "debug $DEBUG"
	echo "modules (load order):"; sed 's/^/  /' "$WORK/load.order"
	echo "libraries:"; (cd "$ROOT" && find usr/lib usr/lib64 -type f -name '*.so*' | sort | sed 's/^/  \//')
} >"$OUT/manifest.txt"

# ---------------------------------------------------------------- initramfs
# Reproducible newc: sorted names, fixed mtimes, owner 0:0, no inode/dev
# numbers, fixed modes, gzip without name or time.
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
find "$ROOT" -type d -exec chmod 0755 {} +
chmod 1777 "$ROOT/tmp"
chmod 0700 "$ROOT/state" "$ROOT/media"
(cd "$ROOT" && find . -print0 | sort -z |
    cpio --null -o -H newc -R 0:0 --reproducible --quiet) >"$WORK/initramfs.cpio"
gzip -n -9 <"$WORK/initramfs.cpio" >"$OUT/initramfs.cpio.gz"
cp "$KTREE/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
touch -d "@$SOURCE_DATE_EPOCH" "$OUT/vmlinuz" "$OUT/initramfs.cpio.gz"

# ---------------------------------------------------------------- UKI
# PE sections after the stub's last one, each aligned (systemd's
# documented objcopy recipe, with offsets computed instead of fixed).
"$HERE/uki.sh" "$STUB" "$ROOT/etc/os-release" "$WORK/cmdline.uki" "$OUT/vmlinuz" \
    "$OUT/initramfs.cpio.gz" "$OUT/keyroom.efi"
if [ -n "$SB_KEY" ]; then
	# Secure Boot: the firmware checks this signature against its db and
	# refuses the stick otherwise; the UKI carries the kernel, initramfs
	# and command line, so all three are covered by it.
	engine=()
	case "$SB_KEY" in pkcs11:*) engine=(--engine pkcs11) ;; esac
	sbsign "${engine[@]}" --key "$SB_KEY" --cert "$SB_CERT" \
	    --output "$WORK/keyroom-signed.efi" "$OUT/keyroom.efi" >&2 ||
	    die "sbsign failed"
	sbverify --cert "$SB_CERT" "$WORK/keyroom-signed.efi" >/dev/null 2>&1 ||
	    die "the signed UKI does not verify with $SB_CERT"
	mv "$WORK/keyroom-signed.efi" "$OUT/keyroom.efi"
	touch -d "@$SOURCE_DATE_EPOCH" "$OUT/keyroom.efi"
	note "UKI signed for Secure Boot by $(openssl x509 -in "$SB_CERT" -noout -subject)"
fi

# ---------------------------------------------------------------- media
"$HERE/media.sh" "$OUT" "$WORK"

(cd "$OUT" && sha256sum vmlinuz initramfs.cpio.gz keyroom.efi keyroom-usb.img keyroom.iso >SHA256SUMS)
rm -rf "$WORK"
echo "$digest" >"$OUT/inputs.sha256"
note "done: $OUT"
