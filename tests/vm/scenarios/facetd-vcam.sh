#!/bin/sh
# facetd-vcam: facetd itself as the virtual camera. It writes the face clip
# (a y4m stream at 5 fps, looped) with the parts into a v4l2loopback device
# loaded with exclusive_caps=1 and a card label, and the label map into a
# second one. Checked:
# - the device shows as a capture device once facetd runs; format YUYV at
#   the clip's (even) size; the frame rate that VIDIOC_S_PARM set (the
#   source's: 5 fps);
# - the label stream: GREY at the same size, values 0..18, parts of the face
#   in it once a parsed frame went out (checked on the host);
# - v4l2-ctl reads 10 frames, paced at that rate, showing the skin colour of
#   the parts over the face (checked on the host); every frame of the
#   source goes out, with the newest parts (the inference takes seconds a
#   frame under TCG);
# - paused (`facetctl pause`: no new frame), the device goes on at its rate
#   repeating the last frame;
#   ffmpeg reads 5 frames;
# - SIGTERM, then facetd again at once: the device is not busy, frames flow;
# - --output-format i420 (and another size, from the synthetic source): the
#   device gives YU12 frames of that size.
#@ timeout 240
#@ module v4l2loopback devices=2 video_nr=10,11 max_buffers=4 exclusive_caps=1,1 card_label="facetd camera,facetd labels"
#@ needs v4l2-ctl ffmpeg
#@ needs-build daemon/facetd daemon/facetctl
#@ needs-config HAVE_V4L2
#@ prepare prepare-clip.sh y4m 640x480 30 5
#@ check facetcheck.py repeats stall.raw --frame-size 614400 --min-frames 10 --min-repeats 80
#@ check facetcheck.py parts vcam.raw --yuyv 640x480
#@ check facetcheck.py labels labels.raw --size 640x480 --min-frames 3 --min-parts 1
. "$FVM_TOOLS/scenarios/lib.sh"

cam=/dev/video10
labels=/dev/video11
clip=$FVM_OUT/clip-640x480.y4m

# start_facetd NAME ARGS...: facetd in the background (pid in $pid, log in
# $FVM_OUT/NAME.log), on the looped clip unless ARGS has a --source; returns
# once its outputs are open.
start_facetd() {
	name=$1
	shift
	say "facetd $*"
	case " $* " in
	*" --source "*)
		# shellcheck disable=SC2086
		"$FACETD" --stats-json "$FVM_OUT/$name.json" $FACETD_TCG "$@" \
			2>"$FVM_OUT/$name.log" &
		;;
	*)
		# shellcheck disable=SC2086
		loop_y4m "$clip" 2>/dev/null | "$FACETD" --stats-json "$FVM_OUT/$name.json" \
			--source y4m:- $FACETD_TCG "$@" 2>"$FVM_OUT/$name.log" &
		;;
	esac
	pid=$!
	wait_log "$FVM_OUT/$name.log" 'running:|error' 30
	grep -q 'running:' "$FVM_OUT/$name.log" ||
		{ cat "$FVM_OUT/$name.log"; fail "facetd did not start"; }
}

# stop_facetd NAME: SIGTERM; facetd must exit with status 0.
stop_facetd() {
	say "SIGTERM"
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$FVM_OUT/$1.log"; fail "facetd exited with status $rc"; }
	expect_json "$FVM_OUT/$1.json" output_errors=0
}

# read_frames DEVICE COUNT FILE: v4l2-ctl reads COUNT frames into FILE.
read_frames() {
	v4l2-ctl -d "$1" --stream-mmap=4 --stream-count="$2" --stream-to="$3" \
		>"$3.log" 2>&1 || { cat "$3.log"; fail "v4l2-ctl --stream-mmap from $1"; }
}

# expect_size FILE BYTES
expect_size() {
	got=$(wc -c <"$1")
	[ "$got" -eq "$2" ] || fail "$1: $got bytes, not $2"
}

card=$(card_type "$cam")
[ "$card" = "facetd camera" ] || fail "$cam: card type '$card'"
! is_capture "$cam" || fail "$cam: a capture device before facetd runs (exclusive_caps=1)"

sock=/run/tmp/vcam.sock
start_facetd first --output "v4l2:$cam" --output-labels "v4l2:$labels" --control "$sock"
is_capture "$cam" || fail "$cam: no capture device while facetd writes"
fmt=$(capture_format "$cam")
[ "$fmt" = "YUYV 640x480" ] || fail "$cam: $fmt, not YUYV 640x480"
fps=$(v4l2-ctl -d "$cam" --get-parm | sed -n 's/.*Frames per second: *\([0-9.]*\).*/\1/p')
[ "$fps" = "5.000" ] || fail "$cam: $fps frames per second, not 5 (the source's rate)"

say "the label stream"
fmt=$(capture_format "$labels")
[ "$fmt" = "GREY 640x480" ] || fail "$labels: $fmt, not GREY 640x480"
# The first parsed frame (whole, 640x480) takes 10-20 s under TCG.
wait_log "$FVM_OUT/first.log" 'ready: the first frame' 60
read_frames "$labels" 3 "$FVM_OUT/labels.raw"

say "v4l2-ctl reads 10 frames"
t0=$(cut -d' ' -f1 /proc/uptime)
read_frames "$cam" 10 "$FVM_OUT/vcam.raw"
t1=$(cut -d' ' -f1 /proc/uptime)
expect_size "$FVM_OUT/vcam.raw" $((10 * 614400))
# At 5 fps, 10 frames take 1.8 s from the first; unpaced output, far less.
ms=$(echo "$t0 $t1" | awk '{ printf "%d", ($2 - $1) * 1000 }')
echo "10 frames in $ms ms"
[ "$ms" -ge 1500 ] || fail "10 frames in $ms ms: faster than 5 fps"

say "paused: the last frame repeats"
"$FACETCTL" --socket "$sock" pause || fail "facetctl pause"
sleep 1
read_frames "$cam" 10 "$FVM_OUT/stall.raw"
"$FACETCTL" --socket "$sock" resume || fail "facetctl resume"

say "ffmpeg reads 5 frames"
ffmpeg -nostdin -hide_banner -loglevel error -f v4l2 -i "$cam" -frames:v 5 -c:v copy \
	-f rawvideo -y "$FVM_OUT/ffmpeg.raw" || fail "ffmpeg -f v4l2 from $cam"
expect_size "$FVM_OUT/ffmpeg.raw" $((5 * 614400))
stop_facetd first

# At once: the device must be free for the next writer (STREAMOFF and close
# on the way out).
start_facetd again --output "v4l2:$cam" --output-labels "v4l2:$labels"
read_frames "$cam" 3 "$FVM_OUT/again.raw"
expect_size "$FVM_OUT/again.raw" $((3 * 614400))
stop_facetd again

# Another format and size on the same device, from the synthetic source: a
# smaller frame, parsed faster (SIGTERM waits for the frame in inference).
start_facetd i420 --source synthetic --size 320x240 --fps 5 --output "v4l2:$cam" \
	--output-format i420
fmt=$(capture_format "$cam")
[ "$fmt" = "YU12 320x240" ] || fail "$cam: $fmt, not YU12 320x240"
read_frames "$cam" 3 "$FVM_OUT/i420.raw"
expect_size "$FVM_OUT/i420.raw" $((3 * 115200))
stop_facetd i420
