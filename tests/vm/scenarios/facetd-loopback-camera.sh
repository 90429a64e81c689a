#!/bin/sh
# facetd-loopback-camera: the real face clip served as a camera through
# v4l2loopback (by v4l2-writer) and captured by facetd itself:
# - YUYV 640x480 with the preview window (SDL's offscreen driver) and
#   --screenshot: the face is tracked, and the screenshot shows the skin
#   colour of the parts blended over the face (checked on the host against
#   the clip itself, where the criterion does not hold);
# - NV12 640x480, a camera that offers only NV12 (facetd-vivid cannot reach
#   NV12; libv4l2's conversion layer would hide it): --effect none into a
#   y4m file, whose frame must be a frame of the clip, converted right
#   (checked on the host).
# facetd-loopback-mjpeg does MJPEG at 1280x720.
#@ timeout 180
#@ module v4l2loopback devices=2 video_nr=10,11 max_buffers=4 exclusive_caps=1,1 card_label="facetd YUYV camera,facetd NV12 camera"
#@ needs-bin v4l2-writer
#@ needs-build daemon/facetd
#@ needs-config HAVE_V4L2 HAVE_SDL2
#@ prepare prepare-clip.sh yuyv 640x480 30
#@ prepare prepare-clip.sh nv12 640x480 30
#@ check facetcheck.py parts shot-yuyv.png --control clip-yuyv-640x480.raw
#@ check facetcheck.py match nv12.y4m clip-nv12-640x480.raw --ref-format nv12 --size 640x480
. "$FVM_TOOLS/scenarios/lib.sh"

# SDL's software renderer: under TCG, Mesa's llvmpipe behind the default
# one costs seconds of CPU that the inference needs.
export SDL_VIDEODRIVER=offscreen SDL_RENDER_DRIVER=software

serve YUYV 640x480 /dev/video10 "$FVM_OUT/clip-yuyv-640x480.raw"
# Two frames: the first is parsed whole; under TCG the second goes out with
# its parts while the next is parsed (face tracking is the host's test).
# shellcheck disable=SC2086
run_facetd yuyv --source v4l2:/dev/video10 --frames 2 $FACETD_TCG \
	--preview --screenshot "$FVM_OUT/shot-yuyv.png"
expect_json "$FVM_OUT/yuyv.json" source=/dev/video10 width=640 height=480 frames_written=2 \
	capture_errors=0
[ -s "$FVM_OUT/shot-yuyv.png" ] || fail "no screenshot"
stop_background

serve NV12 640x480 /dev/video11 "$FVM_OUT/clip-nv12-640x480.raw"
# Through libv4l2's conversion layer (v4l-utils 1.22) this camera would list
# only the emulated RGB3, BGR3, YU12 and YV12; facetd disables that layer
# and takes the NV12 itself.
# shellcheck disable=SC2086
run_facetd nv12 --source /dev/video11 --frames 1 $FACETD_TCG --effect none \
	--output "y4m:$FVM_OUT/nv12.y4m"
expect_json "$FVM_OUT/nv12.json" width=640 height=480 frames_written=1 frames_inferred=1 \
	capture_errors=0 state=stopped stop_reason=frame-limit
[ -s "$FVM_OUT/nv12.y4m" ] || fail "no frame written"
