# Helpers for scenarios, sourced by them inside the VM (POSIX sh).
# Scenarios run as root in the host's root file system, read-only except for
# $FVM_OUT (the job folder, shared with the host), /run and /dev/shm.

set -eu

# The build's test programs, for the scenarios.
# shellcheck disable=SC2034
PROBE=${FACETD_VM_BIN:-}/v4l2-probe
# shellcheck disable=SC2034
WRITER=${FACETD_VM_BIN:-}/v4l2-writer
BG_PIDS=

say() {
	echo "== $*"
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# Runs a command in the background; it is stopped when the scenario exits.
background() {
	"$@" &
	BG_PIDS="$BG_PIDS $!"
}

stop_background() {
	for pid in $BG_PIDS; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $BG_PIDS; do
		wait "$pid" 2>/dev/null || true
	done
	BG_PIDS=
}

trap stop_background EXIT

# wait_file PATH SECONDS: waits until PATH exists.
wait_file() {
	n=0
	while [ ! -e "$1" ]; do
		n=$((n + 1))
		[ "$n" -le $(($2 * 10)) ] || fail "$1 did not appear within $2 s"
		sleep 0.1
	done
}

# video_node NAME: the /dev node whose sysfs name is NAME.
video_node() {
	for d in /sys/class/video4linux/*; do
		if [ "$(cat "$d/name")" = "$1" ]; then
			echo "/dev/${d##*/}"
			return 0
		fi
	done
	fail "no video device named '$1'"
}

# card_type DEVICE: the card type that VIDIOC_QUERYCAP reports.
card_type() {
	v4l2-ctl -d "$1" --info | sed -n 's/^[[:space:]]*Card type[[:space:]]*: //p'
}

# is_capture DEVICE: whether the device now shows as a capture device.
is_capture() {
	v4l2-ctl -d "$1" --info | sed -n '/Device Caps/,$p' | grep -q 'Video Capture'
}

# frames_match REF GOT [ARGS]: the frames in GOT are frames of REF (see
# framecheck.py; a raw file or a folder each).
frames_match() {
	python3 "$FVM_TOOLS/framecheck.py" "$@"
}
