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

# say WORDS: a step, with the guest's uptime.
say() {
	echo "== $(cut -d' ' -f1 /proc/uptime) s: $*"
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

# (Its loop variable is not "pid", which scenarios use for facetd's.)
stop_background() {
	for bg_pid in $BG_PIDS; do
		kill "$bg_pid" 2>/dev/null || true
	done
	for bg_pid in $BG_PIDS; do
		wait "$bg_pid" 2>/dev/null || true
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

# ---- facetd ----

# facetd and facetctl of the build ($FACETD_BUILD, set by meson).
# shellcheck disable=SC2034
FACETD=${FACETD_BUILD:-}/daemon/facetd
# shellcheck disable=SC2034
FACETCTL=${FACETD_BUILD:-}/daemon/facetctl
# Under TCG (no AVX) one inferred frame takes facetd 5-15 s: about 2.5 s for
# the encoder at --res 96 and the rest for the decoder, which grows with the
# frame's size and the parts' borders (tests/vm/TIMINGS.md). Scenarios ask
# for few frames, with these settings. facetd --frames N starts no frame
# once N are on their way out, and a stop cuts the frame in inference short
# (within a batch of the decoder).
# shellcheck disable=SC2034
FACETD_TCG="--res 96 --threads 1 --refine 8"

# json_value FILE KEY: KEY's value in the last line of FILE that has it (a
# --stats-json file or facetctl --json's reply); strings without quotes.
json_value() {
	sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" "$1" | tail -n 1
}

# ---- a running facetd, over its control socket ----
# For a facetd started in the background with its pid in $pid, its log in
# $log and --control "$sock". Under TCG facetd takes the guest's one CPU
# and each program started costs: these parse with the shell's own means.

# alive WHAT: facetd still runs, else fail naming WHAT it did not survive.
# shellcheck disable=SC2154
alive() {
	kill -0 "$pid" 2>/dev/null && return 0
	rc=0
	wait "$pid" || rc=$?
	tail -n 20 "$log"
	fail "facetd is gone after: $1 (exit status $rc; 135 is SIGBUS, 139 SIGSEGV)"
}

# stats: facetd's figures now, into $S and $FVM_OUT/stats.json.
# shellcheck disable=SC2154
stats() {
	S=$("$FACETCTL" --socket "$sock" --json stats) || fail "facetctl stats failed"
	echo "$S" >"$FVM_OUT/stats.json"
}

# stat_of KEY: KEY's value in $S (a string without its quotes).
stat_of() {
	v=${S#*\""$1"\": }
	v=${v%%[,\}]*}
	v=${v#\"}
	echo "${v%\"}"
}

# camera_frames: the frames facetd got from the camera, with or without a
# slot free for them (under TCG the inference holds the slots).
camera_frames() {
	stats
	echo $(($(stat_of frames_captured) + $(stat_of dropped_capture)))
}

# wait_stat KEY MORE_THAN SECONDS WHAT: until KEY in the stats exceeds
# MORE_THAN; else fail with WHAT.
wait_stat() {
	n=0
	until stats && [ "$(stat_of "$1")" -gt "$2" ]; do
		n=$((n + 1))
		[ "$n" -le $(($3 * 4)) ] || { echo "$S"; tail -n 20 "$log"; fail "$4"; }
		sleep 0.25
	done
}

# expect_json FILE KEY=VALUE...: each KEY has VALUE in FILE.
expect_json() {
	file=$1
	shift
	for kv in "$@"; do
		got=$(json_value "$file" "${kv%%=*}")
		[ "$got" = "${kv#*=}" ] ||
			fail "$file: ${kv%%=*} is '$got', not '${kv#*=}'"
	done
}

# wait_log FILE PATTERN SECONDS: waits until FILE has a line matching PATTERN
# (grep -E).
wait_log() {
	n=0
	until grep -Eq "$2" "$1" 2>/dev/null; do
		n=$((n + 1))
		[ "$n" -le $(($3 * 10)) ] || { cat "$1"; fail "no '$2' in $1 within $3 s"; }
		sleep 0.1
	done
}

# run_facetd NAME ARGS...: runs facetd to its end with --stats-json: the
# figures go to $FVM_OUT/NAME.json, the log to $FVM_OUT/NAME.log.
run_facetd() {
	name=$1
	shift
	say "facetd $*"
	rm -f "$FVM_OUT/$name.json"
	rc=0
	"$FACETD" --stats-json "$FVM_OUT/$name.json" "$@" 2>"$FVM_OUT/$name.log" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$FVM_OUT/$name.log"; fail "facetd exited with status $rc"; }
	[ -s "$FVM_OUT/$name.json" ] || fail "facetd wrote no $FVM_OUT/$name.json"
	cat "$FVM_OUT/$name.json"
}

# capture_format DEVICE: "FOURCC WxH" of the device's current capture format
# (drivers keep the last one set, so this tells what facetd chose).
capture_format() {
	v4l2-ctl -d "$1" --get-fmt-video | sed -n \
		-e "s/^[[:space:]]*Width\/Height[[:space:]]*: \([0-9]*\)\/\([0-9]*\)/\1x\2/p" \
		-e "s/^[[:space:]]*Pixel Format[[:space:]]*: '\([^']*\)'.*/\1/p" |
		tr '\n' ' ' | sed 's/ $//' | awk '{ print $2, $1 }'
}

# serve FOURCC WxH DEVICE INPUT [FPS]: v4l2-writer streams INPUT (the clip)
# into DEVICE in a loop, at FPS (default 2: facetd converts every frame it
# gets, and under TCG the CPU is better spent on the inference); returns once
# it streams. Stopped by stop_background or at the end.
serve() {
	background "$WRITER" -d "$3" -f "$1" -s "$2" -r "${5:-2}" -i "$4" \
		--ready "/run/tmp/serving-${3##*/}"
	wait_file "/run/tmp/serving-${3##*/}" 20
}

# loop_y4m FILE: FILE (YUV4MPEG2) as an endless stream on stdout, its header
# once: an endless source for facetd --source y4m:-.
loop_y4m() {
	header=$(head -n 1 "$1" | wc -c)
	cat "$1" && while tail -c +$((header + 1)) "$1"; do :; done
}
