#!/bin/sh
# loopback-roundtrip: our writer (v4l2-writer, on libv4l2) feeds 30 frames of a
# real face clip (converted on the host) into a v4l2loopback device loaded
# with exclusive_caps=1 and a card label; v4l2-ctl and ffmpeg read it back and
# every frame they read must equal a frame written, in order.
#@ timeout 90
#@ module v4l2loopback video_nr=10 max_buffers=4 exclusive_caps=1 card_label="facetd test camera"
#@ needs v4l2-ctl ffmpeg python3
#@ needs-bin v4l2-writer
#@ prepare prepare-clip.sh yuyv 640x480 30
. "$FVM_TOOLS/scenarios/lib.sh"

dev=/dev/video10
clip=$FVM_OUT/clip-yuyv-640x480.raw
frame_size=$((640 * 480 * 2))

card=$(card_type "$dev")
[ "$card" = "facetd test camera" ] || fail "$dev: card type '$card'"
! is_capture "$dev" || fail "$dev: a capture device before any writer (exclusive_caps=1)"

background "$WRITER" -d "$dev" -f YUYV -s 640x480 -r 15 -i "$clip" --ready /run/tmp/writing
wait_file /run/tmp/writing 20
is_capture "$dev" || fail "$dev: no capture device while a writer streams"

say "v4l2-ctl reads"
v4l2-ctl -d "$dev" --stream-mmap --stream-count=20 --stream-to="$FVM_OUT/v4l2-ctl.raw" \
	>"$FVM_OUT/v4l2-ctl.log" 2>&1 ||
	{ cat "$FVM_OUT/v4l2-ctl.log"; fail "v4l2-ctl --stream-mmap from $dev"; }
frames_match "$clip" "$FVM_OUT/v4l2-ctl.raw" --frame-size "$frame_size" --min 20 \
	--label v4l2-ctl

say "ffmpeg reads"
ffmpeg -nostdin -hide_banner -loglevel error -f v4l2 -i "$dev" -frames:v 20 \
	-c:v copy -f rawvideo -y "$FVM_OUT/ffmpeg.raw" || fail "ffmpeg -f v4l2 from $dev"
frames_match "$clip" "$FVM_OUT/ffmpeg.raw" --frame-size "$frame_size" --min 20 \
	--label ffmpeg
