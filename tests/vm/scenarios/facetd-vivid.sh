#!/bin/sh
# facetd-vivid: facetd itself captures from vivid, the kernel's virtual test
# camera, at 640x480 and 1280x720 (--frames N --stats-json PATH): every
# frame asked for is written, at the size asked for, with no capture error,
# and the format facetd negotiated is the one its rule gives: YUYV up to
# 640x480, MJPEG above when the camera has it, else YUYV again (vivid has no
# MJPEG). vivid lists YUYV before NV12 and facetd ranks them equal above
# 640x480, so NV12 is not chosen here: facetd-format asks for it with
# --format, facetd-loopback-camera covers an NV12-only camera.
#@ timeout 150
#@ module vivid n_devs=1 node_types=0x1
#@ needs v4l2-ctl
#@ needs-build daemon/facetd
#@ needs-config HAVE_V4L2
. "$FVM_TOOLS/scenarios/lib.sh"

dev=$(video_node vivid-000-vid-cap)

# vivid at 5 fps: its frame generation and facetd's conversion of frames it
# has no slot for take CPU from the inference under TCG.
# shellcheck disable=SC2086
run_facetd vga --source "v4l2:$dev" --fps 5 --frames 2 $FACETD_TCG
expect_json "$FVM_OUT/vga.json" source="$dev" width=640 height=480 frames_written=2 \
	capture_errors=0 output_errors=0 camera=ended
# the first frame out is a parsed one; the next may carry its parts
[ "$(json_value "$FVM_OUT/vga.json" frames_inferred)" -ge 1 ] || fail "no frame parsed"
fmt=$(capture_format "$dev")
[ "$fmt" = "YUYV 640x480" ] || fail "facetd set $fmt on $dev, not YUYV 640x480"

# shellcheck disable=SC2086
run_facetd hd --source "$dev" --size 1280x720 --fps 5 --frames 1 $FACETD_TCG
expect_json "$FVM_OUT/hd.json" width=1280 height=720 frames_written=1 capture_errors=0 \
	output_errors=0 camera=ended
fmt=$(capture_format "$dev")
[ "$fmt" = "YUYV 1280x720" ] || fail "facetd set $fmt on $dev, not YUYV 1280x720"
