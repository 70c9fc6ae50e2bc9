# image/rootfs/usr/libexec/keyroom/common.sh - shared by PID 1, the menu and
# the unattended job (sourced, busybox sh). Constants of the appliance and
# the few primitives they share: console messages, finding media by label,
# mounting media safely, running keyroom unprivileged, powering off.

KR_UID=1000
KR_GID=1000
KR_STATE=${KR_STATE:-/state/keyroom}
KR_MEDIA=/media
KR_BIN=/usr/bin/keyroom
KR_STATE_LABEL=KEYROOM-STATE
KR_MEDIA_LABEL=KEYROOM-USB

kr_say() { echo "keyroom: $*"; }
# kr_kmsg LEVEL MSG: to the kernel log, so it reaches every console.
kr_kmsg() { [ -w /dev/kmsg ] && echo "<$1>keyroom: $2" >/dev/kmsg; return 0; }

# kr_wait_label LABEL SECONDS: print the device holding LABEL; USB sticks
# enumerate asynchronously, so poll. Device names move, labels do not.
kr_wait_label() {
	_n=0
	while [ "$_n" -lt "$(( $2 * 2 ))" ]; do
		if _d=$(findfs "LABEL=$1" 2>/dev/null) && [ -b "$_d" ]; then
			echo "$_d"
			return 0
		fi
		usleep 500000
		_n=$((_n + 1))
	done
	return 1
}

# The ready marker: the console (and through the kernel log every console,
# so a serial line sees it even when the screen is the main console).
kr_ready() {
	_up=$(cut -d' ' -f1 /proc/uptime)
	kr_say "KEYROOM-READY uptime=${_up}s"
	kr_kmsg 4 "KEYROOM-READY uptime=${_up}s"
}

# Removable media: vfat, never executable, no devices, no setuid; files
# belong to the unprivileged keyroom user, who alone may write.
kr_mount_media() {
	_dev=$(kr_wait_label "$KR_MEDIA_LABEL" "${1:-30}") || {
		kr_say "no stick labelled $KR_MEDIA_LABEL"
		return 1
	}
	mount -t vfat -o "nodev,nosuid,noexec,noatime,uid=$KR_UID,gid=$KR_GID,fmask=0177,dmask=0077,shortname=mixed,utf8,flush" \
	    "$_dev" "$KR_MEDIA" || {
		kr_say "cannot mount $_dev (label $KR_MEDIA_LABEL) as vfat"
		return 1
	}
}
kr_umount_media() {
	sync
	umount "$KR_MEDIA" 2>/dev/null
	return 0
}

# kr_keyroom ARGS...: run keyroom as the unprivileged appliance user with
# the appliance state directory; no_new_privs, no core dumps.
kr_keyroom() {
	env -i PATH=/usr/bin HOME=/tmp/keyroom TMPDIR=/tmp/keyroom TERM="${TERM:-linux}" \
	    LANG=C.UTF-8 KEYROOM_STATE="$KR_STATE" SOFTHSM2_CONF="$(kr_softhsm_conf)" \
	    /usr/libexec/keyroom/runas "$KR_UID" "$KR_GID" "$KR_BIN" "$@"
}
# The state directory's own SoftHSM2 configuration once `keyroom init` has
# written one; before that the image's default (token store on the state disk).
kr_softhsm_conf() {
	if [ -f "$KR_STATE/softhsm2.conf" ]; then
		echo "$KR_STATE/softhsm2.conf"
	else
		echo /etc/softhsm/softhsm2.conf
	fi
}

kr_poweroff() {
	kr_say "powering off"
	kr_umount_media
	sync
	umount /state 2>/dev/null
	sync
	poweroff -f
	while :; do sleep 3600; done
}
