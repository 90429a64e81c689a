#!/bin/busybox sh
# /init of the test VM (busybox, from the initramfs that setup.sh builds).
#
# Kernel arguments: fvm.out=DIR  the job folder: a host folder, shared
#                                writable under the 9p tag "vmout";
#                   fvm.probe=1  print FVM-PROBE-OK and power off at once.
# The job folder holds `modules` (lines "NAME OPTIONS...", loaded in order)
# and `job.sh`, which runs as root in a chroot into the host's root file
# system (9p tag "hostroot", read-only). There DIR is at its host path and
# /run (with /run/tmp) and /dev/shm are empty tmpfs. The job's output goes to
# DIR/scenario.log, its exit status to DIR/exit-code and to the console line
# "FVM-EXIT <status>" (125: the VM could not be set up); then the VM powers
# off.

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

arg() {
	for a in $(cat /proc/cmdline); do
		case $a in
		fvm.$1=*) echo "${a#*=}" ;;
		esac
	done
}

uptime_s() {
	cut -d' ' -f1 /proc/uptime
}

finish() {
	echo "FVM-EXIT $1"
	[ -n "$out" ] && [ -d "/host$out" ] && echo "$1" >"/host$out/exit-code"
	sync
	poweroff -f
}

# load NAME [OPTIONS]: insmod NAME's dependencies, then NAME with OPTIONS.
# OPTIONS is one string, passed as is, so that quoted values such as
# card_label="A camera" reach the kernel's parser with their quotes.
load() {
	list=/lib/modules/order/$1
	if [ ! -f "$list" ]; then
		echo "fvm: module $1 is not in the initramfs"
		return 1
	fi
	last=$(tail -n 1 "$list")
	while read -r ko; do
		[ -d "/sys/module/$(basename "$ko" .ko | tr - _)" ] && continue
		if [ "$ko" = "$last" ] && [ -n "$2" ]; then
			insmod "$ko" "$2" || return 1
		else
			insmod "$ko" || return 1
		fi
	done <"$list"
}

out=
t_boot=$(uptime_s)
if [ -n "$(arg probe)" ]; then
	echo "FVM-PROBE-OK"
	poweroff -f
fi

for m in virtio_pci 9pnet_virtio 9p; do
	load $m || finish 125
done
p9=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$p9,ro,cache=loose" hostroot /host || finish 125
mount --bind /dev /host/dev
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
# Writable scratch space: /run and /dev/shm. The host's /tmp stays as it is
# (read-only), since build and job folders may live there.
mount -t tmpfs tmpfs /host/run
mkdir -p /host/run/tmp
mkdir -p /host/dev/shm && mount -t tmpfs tmpfs /host/dev/shm
out=$(arg out)
mkdir -p "/host$out" 2>/dev/null
mount -t 9p -o "$p9" vmout "/host$out" || finish 125

while read -r name opts; do
	case $name in
	'' | '#'*) continue ;;
	esac
	echo "fvm: load $name $opts"
	load "$name" "$opts" || finish 125
done <"/host$out/modules"

t_ready=$(uptime_s)
chroot /host /bin/sh "$out/job.sh" >"/host$out/scenario.log" 2>&1 </dev/null
rc=$?
echo "FVM-T boot=$t_boot ready=$t_ready done=$(uptime_s)"
finish $rc
