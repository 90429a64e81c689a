#!/bin/sh
# prepare-clip.sh FORMAT WxH FRAMES [FPS]: converts a few frames of the real
# face clip, on the host (decoding H.264 under TCG would take most of a
# scenario's time), into the current folder:
#   yuyv   clip-yuyv-WxH.raw    frames back to back, YUYV 4:2:2
#   nv12   clip-nv12-WxH.raw    frames back to back, NV12 (Y, then UV)
#   mjpeg  clip-mjpeg-WxH/      one JPEG file per frame (sizes vary)
#   y4m    clip-WxH.y4m         YUV4MPEG2, 4:2:0, at FPS (default the clip's)
# The clip is $FACETD_VM_CLIP, else $FACETD_DATA/media/cap12_edit.mp4.
# Exit status 77 (with the reason) when the clip or ffmpeg is missing.
set -eu

[ $# -eq 3 ] || [ $# -eq 4 ] ||
	{ echo "usage: $0 yuyv|nv12|mjpeg|y4m WxH FRAMES [FPS]" >&2; exit 2; }
format=$1 size=$2 frames=$3 fps=${4:-}
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
nv12)
	decode -pix_fmt nv12 -f rawvideo "clip-nv12-$size.raw"
	;;
y4m)
	decode ${fps:+-r "$fps"} -pix_fmt yuv420p -f yuv4mpegpipe "clip-$size.y4m"
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
