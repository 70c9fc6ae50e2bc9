#!/usr/bin/env bash
# image/uki.sh - assemble a UEFI unified kernel image with objcopy:
#   uki.sh STUB OS_RELEASE CMDLINE_FILE VMLINUZ INITRD OUT.efi
# Sections .osrel, .cmdline, .initrd, .linux follow the stub's last section,
# each at the next SectionAlignment boundary (systemd-stub(7) / the objcopy
# recipe in the systemd docs, offsets computed rather than hard-coded);
# .linux last so the kernel may use the space after it.
# objcopy stamps the current time: $PEFIX (image/pefix.c) then sets the PE
# time stamp to SOURCE_DATE_EPOCH and recomputes the checksum.
set -euo pipefail
stub=$1 osrel=$2 cmdline=$3 linux=$4 initrd=$5 out=$6
align=$((16#$(objdump -p "$stub" | awk '$1 == "SectionAlignment" { print $2 }')))
[ "$align" -gt 0 ] || { echo "uki.sh: no SectionAlignment in $stub" >&2; exit 1; }
end=0
while read -r _ _ sz vma _; do
	e=$((16#$sz + 16#$vma))
	if [ "$e" -gt "$end" ]; then end=$e; fi
done < <(objdump -h "$stub" | awk 'NF == 7 && $1 ~ /^[0-9]+$/')
up() { echo $(( ($1 + align - 1) / align * align )); }
size() { stat -L -c %s "$1"; }
o_osrel=$(up "$end")
o_cmdline=$(up $((o_osrel + $(size "$osrel"))))
o_initrd=$(up $((o_cmdline + $(size "$cmdline"))))
o_linux=$(up $((o_initrd + $(size "$initrd"))))
rm -f "$out"
objcopy \
    --add-section .osrel="$osrel" --change-section-vma .osrel="$(printf 0x%x "$o_osrel")" \
    --add-section .cmdline="$cmdline" --change-section-vma .cmdline="$(printf 0x%x "$o_cmdline")" \
    --add-section .initrd="$initrd" --change-section-vma .initrd="$(printf 0x%x "$o_initrd")" \
    --add-section .linux="$linux" --change-section-vma .linux="$(printf 0x%x "$o_linux")" \
    "$stub" "$out"
"$PEFIX" "$out" "${SOURCE_DATE_EPOCH:-0}"
touch -d "@${SOURCE_DATE_EPOCH:-0}" "$out"
