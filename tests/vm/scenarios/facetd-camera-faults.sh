#!/bin/sh
# facetd-camera-faults: facetd captures from a loopback camera (v4l2-writer
# feeding v4l2loopback the face clip as MJPEG at 320x180, the tiny test
# network: what it parses does not matter here) that misbehaves, one fault
# after the other. After each, facetd must still run, and its stats and log
# must say what happened:
# - corrupt frames among good ones (v4l2-writer --corrupt: garbage, and
#   JPEG headers cut short): each counted in capture_errors, with a log line
#   naming the device and the frame; the good frames after them are taken;
# - the camera stalls for 4 s (the writer stopped by SIGSTOP): no frames
#   and no errors meanwhile, little CPU, facetd still streaming, frames
#   again once it goes on;
# - the camera changes its size (the writer ends, a new one streams
#   256x144 JPEGs: v4l2loopback keeps the 320x180 format facetd set while
#   it holds the device, hence --any-size): facetd drops each such frame,
#   counted, with "a 256x144 JPEG in a 320x180 stream: the camera changed
#   its size", keeps its size, neither ends nor spins, and captures again
#   once the camera is back at 320x180.
# camera-faults.txt sums up what facetd did under each.
#@ timeout 90
#@ module v4l2loopback video_nr=10 max_buffers=4 exclusive_caps=1 card_label="facetd flaky camera"
#@ needs-bin v4l2-writer
#@ needs-build daemon/facetd daemon/facetctl
#@ needs-config HAVE_V4L2
#@ prepare prepare-clip.sh mjpeg 320x180 10
#@ prepare prepare-clip.sh mjpeg 256x144 10
. "$FVM_TOOLS/scenarios/lib.sh"

dev=/dev/video10
sock=/run/tmp/facetd.sock
log=$FVM_OUT/facetd.log
summary=$FVM_OUT/camera-faults.txt
: >"$summary"

# ---- facetd's state (alive, stats, stat_of, camera_frames, wait_stat: lib.sh) ----

# flowing WHAT: facetd runs and good frames come again (2 more captured).
flowing() {
	alive "$1"
	stats
	wait_stat frames_captured $(($(stat_of frames_captured) + 1)) 15 "$1: no frame captured for 15 s"
	alive "$1"
}

# log_count TEXT: lines of facetd's log with TEXT.
log_count() {
	c=0
	while IFS= read -r line; do
		case $line in *"$1"*) c=$((c + 1)) ;; esac
	done <"$log"
	echo "$c"
}

# wait_more_log TEXT COUNT SECONDS: until more than COUNT lines have TEXT.
wait_more_log() {
	n=0
	until [ "$(log_count "$1")" -gt "$2" ]; do
		n=$((n + 1))
		[ "$n" -le $(($3 * 4)) ] || { tail -n 20 "$log"; fail "no new '$1' in the log within $3 s"; }
		sleep 0.25
	done
}

# cpu_ticks: facetd's CPU time so far (user + system, in clock ticks).
cpu_ticks() {
	read -r st </proc/"$pid"/stat
	# shellcheck disable=SC2086 # its fields, split
	set -- ${st#*) }
	echo $((${12} + ${13}))
}

note() {
	echo "$*" | tee -a "$summary"
}

# writer NAME WxH [ARGS]: v4l2-writer streams the MJPEG clip at WxH, 5 fps,
# into the camera (its output into writer-NAME.log); $wpid is its pid.
writer() {
	rm -f /run/tmp/serving
	name=$1 size=$2
	shift 2
	"$WRITER" -d "$dev" -f MJPG -s "$size" -r 5 -i "$FVM_OUT/clip-mjpeg-$size" \
		--ready /run/tmp/serving "$@" >"$FVM_OUT/writer-$name.log" 2>&1 &
	wpid=$!
	BG_PIDS="$BG_PIDS $wpid"
	wait_file /run/tmp/serving 20
}

# ---- corrupt frames among good ones ----

# every 4th frame corrupt: garbage and a JPEG cut short by turns
writer corrupt 320x180 --corrupt 4
say "facetd captures $dev"
# At a lower priority than this script: its checks then run as soon as
# they are due, and facetd takes the rest of the CPU.
# shellcheck disable=SC2086
nice -n 10 "$FACETD" --stats-json "$FVM_OUT/facetd.json" --source "$dev" --size 320x180 \
	--format mjpeg $FACETD_TCG --model "$FVM_TOOLS/../fixtures/tiny.fpw" \
	--control "$sock" 2>"$log" &
pid=$!
n=0
while [ ! -S "$sock" ]; do
	alive "the start"
	n=$((n + 1))
	[ "$n" -le 300 ] || fail "$sock did not appear within 30 s"
	sleep 0.1
done

say "corrupt frames among good ones"
wait_stat capture_errors 1 15 "corrupt frames were not counted in capture_errors"
flowing "corrupt frames"
expect_json "$FVM_OUT/stats.json" camera=streaming width=320 height=180
cat "$FVM_OUT/writer-corrupt.log"
grep -E "$dev: frame [0-9]+ \(sequence [0-9]+\): corrupt MJPG data \(64 bytes\)" "$log" ||
	fail "no log line for the cut frames"
grep -E "$dev: frame [0-9]+ \(sequence [0-9]+\): corrupt MJPG data \([0-9]{3,} bytes\)" "$log" ||
	fail "no log line for the garbage frames"
! grep -F 'changed its size' "$log" || fail "corrupt frames taken for a size change"
grep -q 'garbage' "$FVM_OUT/writer-corrupt.log" || fail "the writer sent no garbage"
grep -q 'cut to' "$FVM_OUT/writer-corrupt.log" || fail "the writer sent no frame cut short"
note "corrupt MJPEG frames (garbage, cut headers; every 4th): capture_errors $(stat_of capture_errors), logged '$(grep -m1 -o "$dev: frame .*corrupt.*" "$log")', good frames after them (frames_captured $(stat_of frames_captured))"

# ---- the camera stalls ----

say "the camera stalls for 4 s"
kill -STOP "$wpid"
sleep 0.5
f0=$(camera_frames)
errors=$(stat_of capture_errors)
t0=$(cpu_ticks)
sleep 4
t1=$(cpu_ticks)
f1=$(camera_frames)
alive "the stall"
expect_json "$FVM_OUT/stats.json" camera=streaming
[ $((f1 - f0)) -le 1 ] || fail "the writer is stopped, yet facetd got $((f1 - f0)) frames in 4 s"
[ "$(stat_of capture_errors)" = "$errors" ] || fail "errors counted while the camera stalls"
[ $((t1 - t0)) -le 100 ] || fail "facetd took $((t1 - t0)) ticks of CPU in 4 s while no frame came"
kill -CONT "$wpid"
flowing "the stall"
note "stall of 4 s: $((f1 - f0)) frames meanwhile, $((t1 - t0)) ticks of CPU, still streaming, frames again after"

# ---- the camera changes its size ----

say "the camera changes its size to 256x144"
stats
errors=$(stat_of capture_errors)
sized=$(log_count 'a 256x144 JPEG in a 320x180 stream: the camera changed its size')
kill "$wpid"
wait "$wpid" 2>/dev/null || true
# v4l2loopback keeps the format facetd set while facetd holds the device:
# the new writer's 256x144 JPEGs go into it as they are
writer resized 256x144 --any-size
cat "$FVM_OUT/writer-resized.log"
wait_more_log 'a 256x144 JPEG in a 320x180 stream: the camera changed its size' "$sized" 15
wait_stat capture_errors $((errors + 2)) 15 "the resized frames were not counted in capture_errors"
t0=$(cpu_ticks)
f0=$(stat_of frames_captured)
sleep 3
t1=$(cpu_ticks)
alive "the size change"
stats
expect_json "$FVM_OUT/stats.json" camera=streaming width=320 height=180
[ "$(stat_of frames_captured)" = "$f0" ] || fail "frames of another size were captured"
[ $((t1 - t0)) -le 150 ] || fail "facetd took $((t1 - t0)) ticks of CPU in 3 s of resized frames"
grep -m1 -F 'the camera changed its size' "$log"
note "size change to 256x144: every frame counted (capture_errors $errors -> $(stat_of capture_errors)) and logged '$(grep -m1 -o "$dev: frame .*changed its size.*" "$log")', $((t1 - t0)) ticks of CPU in 3 s, still 320x180 and streaming"

say "the camera back at 320x180"
kill "$wpid"
wait "$wpid" 2>/dev/null || true
writer back 320x180
flowing "the camera back at 320x180"
expect_json "$FVM_OUT/stats.json" camera=streaming width=320 height=180
note "back at 320x180: frames captured again (frames_captured $(stat_of frames_captured))"

say "SIGTERM"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { tail -n 20 "$log"; fail "facetd exited with status $rc"; }
cat "$FVM_OUT/facetd.json"
say "summary"
cat "$summary"
