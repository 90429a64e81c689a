#!/bin/sh
# facetd-ondemand: the camera is used only while an application reads the
# virtual camera. facetd captures from vivid and writes to a v4l2loopback
# device loaded with exclusive_caps=1. Checked:
# - v4l2-ctl --info on the loopback device (a program listing cameras)
#   does not wake the camera;
# - with no reader, facetd releases vivid (no fd of facetd on it, "camera":
#   "released" in its stats) and keeps the loopback device a capture device
#   (the splash frame, written once a second);
# - idle, facetd uses under 1 % of a CPU (CPU time over 10 s of wall time,
#   from /proc/PID/stat; under TCG this is an upper bound);
# - a reader opens the loopback device: facetd opens vivid again (within a
#   second on real CPUs: the host test ondemand holds that bound, about
#   200 ms; here, under TCG on a busy host, within 2 s), and frames flow to
#   v4l2-ctl;
# - the reader leaves: vivid is released again;
# - --no-on-demand keeps vivid open with no reader.
#@ timeout 180
#@ module vivid n_devs=1 node_types=0x1
#@ module v4l2loopback video_nr=10 max_buffers=4 exclusive_caps=1 card_label="facetd camera"
#@ needs v4l2-ctl
#@ needs-build daemon/facetd daemon/facetctl
#@ needs-config HAVE_V4L2
. "$FVM_TOOLS/scenarios/lib.sh"

cam=$(video_node vivid-000-vid-cap)
# What is parsed does not matter here: the tiny test network keeps each
# frame short under TCG.
model=$FVM_TOOLS/../fixtures/tiny.fpw
vcam=/dev/video10
sock=/run/tmp/facetd.sock
log=$FVM_OUT/facetd.log

# wait_stats KEY VALUE SECONDS: until facetd's stats (lib.sh) say so (the
# count follows open and close events between frames).
wait_stats() {
	n=0
	until stats && [ "$(stat_of "$1")" = "$2" ]; do
		n=$((n + 1))
		[ "$n" -le $(($3 * 4)) ] || { cat "$FVM_OUT/stats.json"; fail "stats: $1 is not $2"; }
		sleep 0.25
	done
}

# holds_camera: whether facetd has an fd on vivid's node.
holds_camera() {
	for fd in /proc/"$pid"/fd/*; do
		[ "$(readlink "$fd")" = "$cam" ] && return 0
	done
	return 1
}

# log_has TEXT: whether facetd's log has a line with TEXT (no fork: under
# TCG a grep a poll would blur the figure measured).
log_has() {
	while IFS= read -r line; do
		case $line in *"$1"*) return 0 ;; esac
	done <"$log"
	return 1
}

# cpu_ticks: facetd's user + system time in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' /proc/"$pid"/stat
}

say "facetd: $cam -> $vcam, on demand"
# shellcheck disable=SC2086
"$FACETD" --stats-json "$FVM_OUT/facetd.json" --source "$cam" --size 320x240 --fps 10 \
	$FACETD_TCG --model "$model" --log-level debug --control "$sock" --output "v4l2:$vcam" \
	2>"$log" &
pid=$!
wait_file "$sock" 30
wait_log "$log" 'camera released' 20
stats
expect_json "$FVM_OUT/stats.json" camera=released readers=0
! holds_camera || fail "facetd still holds $cam after releasing it"
is_capture "$vcam" || fail "$vcam: not a capture device while facetd idles"

# cpu_percent SECONDS: facetd's CPU time over that much wall time.
hz=$(getconf CLK_TCK)
cpu_percent() {
	c0=$(cpu_ticks)
	t0=$(cut -d' ' -f1 /proc/uptime)
	sleep "$1"
	c1=$(cpu_ticks)
	t1=$(cut -d' ' -f1 /proc/uptime)
	echo "$c0 $c1 $t0 $t1 $hz" | awk '{ printf "%.2f", 100 * ($2 - $1) / $5 / ($4 - $3) }'
}

# The frame in inference when the camera went (seconds under TCG) is still
# parsed: wait for a quiet 2 s, then measure.
say "waiting for the frame in flight"
n=0
until [ "$(cpu_percent 2 | cut -d. -f1)" -lt 5 ]; do
	n=$((n + 1))
	[ "$n" -le 30 ] || fail "facetd still busy 60 s after releasing the camera"
done
stats
expect_json "$FVM_OUT/stats.json" camera=released
! holds_camera || fail "v4l2-ctl --info woke the camera"

say "idle CPU over 10 s"
pct=$(cpu_percent 10)
echo "idle: $pct % of a CPU (upper bound: TCG)"
echo "$pct" >"$FVM_OUT/idle-cpu-percent"
awk -v p="$pct" 'BEGIN { exit !(p < 1.0) }' || fail "idle facetd uses $pct % of a CPU"

say "a reader opens $vcam"
captured0=$(json_value "$FVM_OUT/stats.json" frames_captured)
# The reader: a process of its own holding the device open (not this
# shell: every child of it would share the fd and count as one more).
# shellcheck disable=SC2217 # the fd is the point, not the input
sleep 600 <"$vcam" &
holder=$!
read -r t0 _ </proc/uptime
n=0
until log_has 'camera on'; do
	n=$((n + 1))
	[ "$n" -le 250 ] || fail "no 'camera on' within 5 s of a reader"
	sleep 0.02
done
read -r t1 _ </proc/uptime
ms=$(echo "$t0 $t1" | awk '{ printf "%d", ($2 - $1) * 1000 }')
echo "camera on $ms ms after a reader opened $vcam"
echo "$ms" >"$FVM_OUT/reacquire-ms"
[ "$ms" -le 2000 ] || fail "camera on after $ms ms (more than 2 s, even under TCG)"
holds_camera || fail "facetd says camera on but holds no fd on $cam"
read_to=$FVM_OUT/reader.raw
v4l2-ctl -d "$vcam" --stream-mmap=4 --stream-count=20 --stream-to="$read_to" \
	>"$FVM_OUT/reader.log" 2>&1 || { cat "$FVM_OUT/reader.log"; fail "v4l2-ctl reads $vcam"; }
[ "$(wc -c <"$read_to")" -eq $((20 * 320 * 180 * 2)) ] || fail "$read_to: not 20 YUYV frames"
wait_stats readers 1 10
expect_json "$FVM_OUT/stats.json" camera=streaming
captured1=$(json_value "$FVM_OUT/stats.json" frames_captured)
dropped1=$(json_value "$FVM_OUT/stats.json" dropped_capture)
[ $((captured1 + dropped1)) -gt "$captured0" ] ||
	fail "no camera frames while a reader reads ($captured0 -> $captured1 + $dropped1)"

say "the reader leaves"
kill "$holder"
wait "$holder" 2>/dev/null || true
n=0
while holds_camera; do
	n=$((n + 1))
	[ "$n" -le 100 ] || fail "facetd holds $cam 10 s after the reader left"
	sleep 0.1
done
kill -TERM "$pid"
wait "$pid" || fail "facetd exited with status $?"

say "--no-on-demand keeps the camera"
# shellcheck disable=SC2086
"$FACETD" --source "$cam" --size 320x240 --fps 10 $FACETD_TCG --model "$model" --no-on-demand \
	--output "v4l2:$vcam" >/dev/null 2>"$FVM_OUT/keep.log" &
pid=$!
wait_log "$FVM_OUT/keep.log" 'running:' 30
sleep 5
holds_camera || fail "--no-on-demand: facetd let go of $cam"
! grep -q 'camera released' "$FVM_OUT/keep.log" || fail "--no-on-demand: camera released"
kill -TERM "$pid"
wait "$pid" || fail "facetd --no-on-demand exited with status $?"
