#!/usr/bin/env bash
# image/media.sh - boot media for real hardware, without root or loop mounts:
#   media.sh OUTDIR WORKDIR
# From OUTDIR/{keyroom.efi,vmlinuz,initramfs.cpio.gz,cmdline} it makes
#   keyroom-usb.img  GPT disk image with one FAT32 EFI system partition
#                    holding the UKI as \EFI\BOOT\BOOTX64.EFI (UEFI boot)
#   keyroom.iso      hybrid ISO: isolinux (BIOS, CD or USB) and the same ESP
#                    as an appended EFI partition / El Torito EFI image
# Everything fixed: FAT serial, GPT GUIDs, ISO volume dates from
# SOURCE_DATE_EPOCH, file times, so two builds give the same bytes.
set -euo pipefail
export LC_ALL=C TZ=UTC
OUT=$1 WORK=$2
: "${SOURCE_DATE_EPOCH:?}"
MIB=$((1024 * 1024))
export MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=0

# ---- the ESP: FAT32, fixed serial and label, files with fixed times
uki=$OUT/keyroom.efi
esp_mib=$(( ($(stat -c %s "$uki") + MIB - 1) / MIB + 8 ))
[ "$esp_mib" -lt 40 ] && esp_mib=40
esp=$WORK/esp.img
rm -f "$esp"
truncate -s $((esp_mib * MIB)) "$esp"
mformat -i "$esp" -F -N 4b52424f -v KEYROOM-EFI -T $((esp_mib * MIB / 512)) -h 64 -s 32 ::
mkdir -p "$WORK/esp/EFI/BOOT"
cp "$uki" "$WORK/esp/EFI/BOOT/BOOTX64.EFI"
find "$WORK/esp" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mcopy -i "$esp" -s -m -Q "$WORK/esp/EFI" ::/

# ---- GPT stick image: 1 MiB in front, the ESP, 1 MiB for the backup GPT
img=$OUT/keyroom-usb.img
rm -f "$img"
truncate -s $(( (esp_mib + 2) * MIB )) "$img"
sfdisk -q --no-reread --no-tell-kernel "$img" <<EOT
label: gpt
label-id: 4B455952-4F4F-4D00-8000-000000000001
unit: sectors
first-lba: 2048
start=2048, size=$((esp_mib * MIB / 512)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=4B455952-4F4F-4D00-8000-000000000002, name="KEYROOM-EFI"
EOT
dd if="$esp" of="$img" bs=1M seek=1 conv=notrunc,fsync status=none
touch -d "@$SOURCE_DATE_EPOCH" "$img"

# ---- the El Torito EFI image for the ISO: the El Torito entry counts
# 512-byte sectors in 16 bits (32 MiB at most), so a small FAT (12/16) of
# its own rather than the stick's FAT32 ESP.
efiboot=$WORK/efiboot.img
eb_mib=$(( ($(stat -c %s "$uki") + MIB - 1) / MIB + 2 ))
[ "$eb_mib" -lt 31 ] || { echo "media.sh: UKI too large for an El Torito EFI image" >&2; exit 1; }
rm -f "$efiboot"
truncate -s $((eb_mib * MIB)) "$efiboot"
mformat -i "$efiboot" -N 4b52424e -v KEYROOM-EFI -T $((eb_mib * MIB / 512)) -h 64 -s 32 ::
mcopy -i "$efiboot" -s -m -Q "$WORK/esp/EFI" ::/

# ---- hybrid ISO
iso=$WORK/iso
mkdir -p "$iso/isolinux" "$iso/boot"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
cp "$OUT/vmlinuz" "$iso/boot/vmlinuz"
cp "$OUT/initramfs.cpio.gz" "$iso/boot/initrd.gz"
cat >"$iso/isolinux/isolinux.cfg" <<EOT
DEFAULT keyroom
PROMPT 0
TIMEOUT 0
NOESCAPE 1
ALLOWOPTIONS 0
LABEL keyroom
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.gz
  APPEND $(cat "$OUT/cmdline") console=ttyS0,115200 console=tty0
EOT
find "$iso" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
d=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S00)
rm -f "$OUT/keyroom.iso"
xorriso -report_about SORRY -as mkisofs -o "$OUT/keyroom.iso" \
    -V KEYROOM -volid KEYROOM -R -uid 0 -gid 0 -file-mode 0444 -dir-mode 0555 \
    --modification-date="$d" \
    -isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin \
    -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
    -append_partition 2 0xef "$efiboot" \
    -eltorito-alt-boot -e --interval:appended_partition_2:all:: -no-emul-boot -isohybrid-gpt-basdat \
    "$iso"
[ -s "$OUT/keyroom.iso" ] || { echo "media.sh: xorriso made no ISO" >&2; exit 1; }
touch -d "@$SOURCE_DATE_EPOCH" "$OUT/keyroom.iso"
