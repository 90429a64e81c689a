#!/bin/sh
# loopback-as-camera: the face clip served through v4l2loopback the way
# cameras give it: MJPEG (JPEG frames of varying size) on one device, YUYV on
# another. Our capture program (v4l2-probe, on libv4l2) reads both, and the
# frames must equal the clip's; ffmpeg decodes one MJPEG frame into face.png.
#@ timeout 90
#@ module v4l2loopback devices=2 video_nr=10,11 max_buffers=4 exclusive_caps=1,1 card_label="facetd MJPEG camera,facetd YUYV camera"
#@ needs ffmpeg python3
#@ needs-bin v4l2-writer v4l2-probe
#@ prepare prepare-clip.sh mjpeg 640x480 30
#@ prepare prepare-clip.sh yuyv 640x480 30
. "$FVM_TOOLS/scenarios/lib.sh"

mjpeg=$FVM_OUT/clip-mjpeg-640x480
yuyv=$FVM_OUT/clip-yuyv-640x480.raw

background "$WRITER" -d /dev/video10 -f MJPG -s 640x480 -r 15 -i "$mjpeg" --ready /run/tmp/w10
background "$WRITER" -d /dev/video11 -f YUYV -s 640x480 -r 15 -i "$yuyv" --ready /run/tmp/w11
wait_file /run/tmp/w10 20
wait_file /run/tmp/w11 20

# v4l2loopback 0.12.7 leaves the sequence number of mmap-written frames at 0.
say "MJPEG"
"$PROBE" -d /dev/video10 -f MJPG -s 640x480 -n 20 --any-sequence -O "$FVM_OUT/got-mjpeg" ||
	fail "MJPEG capture from /dev/video10"
frames_match "$mjpeg" "$FVM_OUT/got-mjpeg" --min 20 --label "MJPEG capture"

say "YUYV"
"$PROBE" -d /dev/video11 -f YUYV -s 640x480 -n 20 --any-sequence -o "$FVM_OUT/got-yuyv.raw" ||
	fail "YUYV capture from /dev/video11"
frames_match "$yuyv" "$FVM_OUT/got-yuyv.raw" --frame-size $((640 * 480 * 2)) --min 20 \
	--label "YUYV capture"

say "ffmpeg decodes MJPEG"
ffmpeg -nostdin -hide_banner -loglevel error -f v4l2 -input_format mjpeg -i /dev/video10 \
	-frames:v 1 -y "$FVM_OUT/face.png" || fail "ffmpeg could not decode MJPEG from /dev/video10"
