#!/bin/sh
# Prepare, once, what the V4L2 VM tests boot: Debian's kernel for this release,
# its media and 9p modules, v4l2loopback built against the matching headers,
# busybox-static and a small initramfs. Everything goes into the cache folder
# ($FACETD_VM_CACHE, default $XDG_CACHE_HOME/facetd-vm); a second run with the
# cache in place does nothing but check it.
#
# Usage: setup.sh            prepare (or check) the cache, write $cache/vm.env
#        setup.sh --print    also print vm.env
# Exit status: 0 ready, 77 cannot be had here (the reason on stderr), 1 error.
set -eu
PATH=$PATH:/usr/sbin:/sbin

here=$(cd "$(dirname "$0")" && pwd)
cache=${FACETD_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/facetd-vm}

# Modules that go into the initramfs (each with its dependencies). The 9p and
# virtio ones mount the host's root; the rest are drivers that scenarios load.
VM_MODULES="virtio_pci 9pnet_virtio 9p vivid v4l2loopback"

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

die() {
	echo "setup: $*" >&2
	exit 1
}

have() {
	command -v "$1" >/dev/null 2>&1
}

is_root() {
	[ "$(id -u)" -eq 0 ]
}

apt_install() {
	is_root || return 1
	echo "setup: apt-get install $*" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends -o DPkg::Lock::Timeout=600 "$@" \
		>"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; return 1; }
}

# The kernel ABI name that linux-image-amd64 depends on, e.g. 6.1.0-56-amd64.
kernel_abi() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n 1
}

find_kver() {
	if [ -n "${FACETD_VM_KVER:-}" ]; then
		echo "$FACETD_VM_KVER"
		return
	fi
	v=$(kernel_abi)
	if [ -z "$v" ] && is_root; then
		apt-get update -q >&2 || true
		v=$(kernel_abi)
	fi
	if [ -z "$v" ] && [ -f "$cache/current" ]; then
		v=$(cat "$cache/current")	# offline: use what was cached last
	fi
	echo "$v"
}

check_tools() {
	for t in apt-get dpkg-deb cpio gzip sha256sum; do
		have "$t" || skip "$t not found (install: $(pkg_of "$t"))"
	done
	if ! have depmod || ! have modprobe; then
		skip "depmod/modprobe not found (install: kmod)"
	fi
	bb=$(busybox_path) || skip "static busybox not found (install: busybox-static)"
}

pkg_of() {
	case $1 in
	apt-get) echo apt ;;
	dpkg-deb) echo dpkg ;;
	sha256sum) echo coreutils ;;
	*) echo "$1" ;;
	esac
}

busybox_path() {
	for b in /bin/busybox /usr/bin/busybox; do
		[ -x "$b" ] || continue
		# A dynamic busybox would need the host's libc inside the initramfs.
		if LC_ALL=C od -An -c -N 4096 "$b" | tr -d ' \n' | grep -q 'ld-linux'; then
			continue
		fi
		echo "$b"
		return 0
	done
	return 1
}

# apt-get download PKG into the current folder, unless a .deb is there.
download() {
	ls ./"$1"_*.deb >/dev/null 2>&1 && return 0
	echo "setup: apt-get download $1" >&2
	apt-get download -qq "$1" >/dev/null 2>&1 ||
		apt-get download -q "$1" >&2 ||
		skip "apt-get download $1 failed (no network or no apt lists)"
}

fetch_debs() {
	mkdir -p "$kdir/debs"
	(cd "$kdir/debs" && download "linux-image-$kver" && download v4l2loopback-dkms)
}

ensure_headers() {
	hdr=/usr/src/linux-headers-$kver
	[ -f "$hdr/Makefile" ] && return 0
	if ! is_root; then
		skip "linux-headers-$kver not installed and not root to install it"
	fi
	apt_install "linux-headers-$kver" || skip "cannot install linux-headers-$kver"
	[ -f "$hdr/Makefile" ] || skip "linux-headers-$kver has no $hdr/Makefile"
}

build_loopback() {
	[ -f "$kdir/v4l2loopback.ko" ] && return 0
	ensure_headers
	have make || skip "make not found (install: make)"
	dpkg-deb -x "$kdir"/debs/v4l2loopback-dkms_*.deb "$tmp/lb"
	src=$(echo "$tmp"/lb/usr/src/v4l2loopback-*)
	[ -f "$src/v4l2loopback.c" ] || die "no v4l2loopback source in the package"
	make -s -C "$hdr" M="$src" modules >"$tmp/lb.log" 2>&1 ||
		{ cat "$tmp/lb.log" >&2; die "building v4l2loopback against $hdr failed"; }
	cp "$src/v4l2loopback.ko" "$kdir/v4l2loopback.ko"
}

# QEMU boots an uncompressed ELF kernel through its PVH entry (CONFIG_PVH),
# which spares the guest the XZ decompression: 1-2 s under TCG. Without xz
# the bzImage is booted as it is.
unpack_vmlinux() {
	rm -f "$kdir/vmlinux"
	have xz || return 0
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$kdir/vmlinuz" | head -n 1 | cut -d: -f1)
	[ -n "$off" ] || return 0
	tail -c +"$((off + 1))" "$kdir/vmlinuz" | xz -dc --single-stream \
		>"$tmp/vmlinux" 2>/dev/null || return 0
	if [ "$(head -c 4 "$tmp/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ]; then
		mv "$tmp/vmlinux" "$kdir/vmlinux"
	fi
}

# Unpack the kernel package, add v4l2loopback, and keep only the modules in
# $VM_MODULES and their dependencies (plus one load-order list per module).
extract_kernel() {
	[ -f "$kdir/modules.done" ] && return 0
	dpkg-deb -x "$kdir"/debs/linux-image-"$kver"_*.deb "$tmp/img"
	cp "$tmp/img/boot/vmlinuz-$kver" "$kdir/vmlinuz"
	unpack_vmlinux
	mkdir -p "$tmp/img/lib/modules/$kver/updates"
	cp "$kdir/v4l2loopback.ko" "$tmp/img/lib/modules/$kver/updates/"
	depmod -b "$tmp/img" "$kver"
	rm -rf "$kdir/modules"
	mkdir -p "$kdir/modules/order"
	for m in $VM_MODULES; do
		modprobe -d "$tmp/img" -S "$kver" --show-depends "$m" >"$tmp/deps" ||
			die "module $m not found in linux-image-$kver"
		sed -n 's|^insmod '"$tmp/img"'/lib/modules/[^/]*/\([^ ]*\.ko\).*|\1|p' \
			"$tmp/deps" >"$tmp/order"
		: >"$kdir/modules/order/$m"
		while read -r rel; do
			mkdir -p "$kdir/modules/$(dirname "$rel")"
			cp "$tmp/img/lib/modules/$kver/$rel" "$kdir/modules/$rel"
			echo "/lib/modules/$rel" >>"$kdir/modules/order/$m"
		done <"$tmp/order"
	done
	touch "$kdir/modules.done"
	rm -f "$kdir"/debs/linux-image-*.deb	# 70 MB, no longer needed
}

# The initramfs depends on init.sh and the module set: name it by their hash.
build_initramfs() {
	sum=$( (cat "$here/init.sh"; echo "$VM_MODULES"; cd "$kdir/modules" && ls -R) |
		sha256sum | cut -c1-16)
	initrd=$kdir/initramfs-$sum.cpio.gz
	[ -f "$initrd" ] && return 0
	root=$tmp/root
	mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/host" \
		"$root/lib"
	cp "$bb" "$root/bin/busybox"
	cp "$here/init.sh" "$root/init"
	chmod 755 "$root/init"
	cp -R "$kdir/modules" "$root/lib/modules"
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) |
		gzip -1 >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	find "$kdir" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -name "${initrd##*/}" \
		-exec rm -f {} +
}

write_env() {
	kernel=$kdir/vmlinuz
	[ -f "$kdir/vmlinux" ] && kernel=$kdir/vmlinux
	cat >"$kdir/vm.env.tmp" <<EOF
FVM_KVER=$kver
FVM_KERNEL=$kernel
FVM_INITRD=$initrd
EOF
	mv "$kdir/vm.env.tmp" "$kdir/vm.env"
	cp "$kdir/vm.env" "$cache/vm.env"
	echo "$kver" >"$cache/current"
	# Kernels that Debian's linux-image-amd64 no longer points to.
	for old in "$cache"/*-amd64; do
		[ "$old" = "$kdir" ] || [ ! -d "$old" ] || rm -rf "$old"
	done
}

main() {
	check_tools
	mkdir -p "$cache" || skip "cannot create the cache folder $cache"
	exec 9>"$cache/.lock"
	if have flock; then
		flock 9
	fi
	kver=$(find_kver)
	[ -n "$kver" ] || skip "cannot tell the kernel version (apt-cache depends linux-image-amd64 gave nothing)"
	kdir=$cache/$kver
	mkdir -p "$kdir"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/facetd-vm-setup.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	trap 'exit 1' INT TERM
	if [ ! -f "$kdir/modules.done" ] || [ ! -f "$kdir/vmlinuz" ]; then
		rm -f "$kdir/modules.done"
		fetch_debs
		build_loopback
		extract_kernel
	fi
	build_initramfs
	write_env
	if [ "${1:-}" = "--print" ]; then
		cat "$kdir/vm.env"
	fi
}

main "$@"
