#!/bin/sh
# Install the Debian packages keyroom needs to build, test, demo and make its image.
# Idempotent: installs only what is missing; runs `apt-get update` at most once.
set -eu

BUILD="build-essential pkg-config libssl-dev libp11-dev libp11-kit-dev softhsm2 liblmdb-dev lmdb-utils
 libqrencode-dev libpng-dev libgfshare-dev libjansson-dev libyaml-dev libcmocka-dev"
TEST="openssl strace libengine-pkcs11-openssl gnutls-bin libnss3-tools opensc tmux zbar-tools python3 clang libclang-rt-14-dev
 golang-go golang-golang-x-mod-dev"
IMAGE="busybox-static cpio qemu-system-x86 mtools e2fsprogs dosfstools xorriso systemd-boot-efi
 ovmf binutils gzip zstd kmod fdisk isolinux syslinux-common sbsigntool"

want="$BUILD $TEST"
case "${1:-}" in
  --image|--all) want="$want $IMAGE" ;;
esac

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "keyroom: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/periodic/keyroom-update-stamp
if [ ! -e "$stamp" ]; then
  $SUDO apt-get update -q
  $SUDO mkdir -p "$(dirname "$stamp")" && $SUDO touch "$stamp"
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
