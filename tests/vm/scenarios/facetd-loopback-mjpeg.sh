#!/bin/sh
# facetd-loopback-mjpeg: the real face clip, scaled to 1280x720 and encoded
# as MJPEG on the host, served as a camera through v4l2loopback (JPEG frames
# of varying size, as USB cameras give above 640x480) and captured by facetd
# with the preview window (SDL's offscreen driver): one frame decoded by
# TurboJPEG and parsed, no capture error, and the screenshot shows the skin
# colour of the parts blended over the face (checked on the host).
#@ timeout 180
#@ module v4l2loopback video_nr=10 max_buffers=4 exclusive_caps=1 card_label="facetd MJPEG camera"
#@ needs-bin v4l2-writer
#@ needs-build daemon/facetd
#@ needs-config HAVE_V4L2 HAVE_SDL2
#@ prepare prepare-clip.sh mjpeg 1280x720 30
#@ check facetcheck.py parts shot-mjpeg.png
. "$FVM_TOOLS/scenarios/lib.sh"

# SDL's software renderer: under TCG, Mesa's llvmpipe behind the default
# one costs seconds of CPU that the inference needs.
export SDL_VIDEODRIVER=offscreen SDL_RENDER_DRIVER=software

# One frame a second: facetd decodes every frame it gets, and under TCG a
# 1280x720 JPEG takes a good part of a second.
serve MJPG 1280x720 /dev/video10 "$FVM_OUT/clip-mjpeg-1280x720" 1
# shellcheck disable=SC2086
run_facetd mjpeg --source /dev/video10 --size 1280x720 --frames 1 $FACETD_TCG \
	--preview --screenshot "$FVM_OUT/shot-mjpeg.png"
expect_json "$FVM_OUT/mjpeg.json" width=1280 height=720 frames_written=1 capture_errors=0
[ -s "$FVM_OUT/shot-mjpeg.png" ] || fail "no screenshot"
