#!/bin/sh
# vivid-capture: our capture program (v4l2-probe, on libv4l2) streams from
# vivid, the kernel's virtual test camera, in YUYV and NV12 at 640x480 and
# 1280x720: the format is the one asked for, the frame count is reached, every
# buffer is full, sequence numbers increase (at most two frames dropped).
#@ timeout 60
#@ module vivid n_devs=1 node_types=0x1
#@ needs-bin v4l2-probe
. "$FVM_TOOLS/scenarios/lib.sh"

dev=$(video_node vivid-000-vid-cap)
# vivid's webcam input allows up to 25 fps at 640x480, 12.5 at 1280x720.
# vivid drops a frame when it finds no queued buffer; eight buffers give the
# reader half a second, and up to two drops are let pass: under TCG on a
# loaded host the reader can be descheduled for longer.
for fmt in YUYV NV12; do
	say "$fmt 640x480"
	"$PROBE" -d "$dev" -f "$fmt" -s 640x480 -r 15 -n 20 -b 8 --max-drops 2 ||
		fail "$fmt 640x480 from $dev"
	say "$fmt 1280x720"
	"$PROBE" -d "$dev" -f "$fmt" -s 1280x720 -r 10 -n 10 -b 8 --max-drops 2 ||
		fail "$fmt 1280x720 from $dev"
done
# One frame of each kind comes back to the host, for a look.
"$PROBE" -d "$dev" -f YUYV -s 640x480 -n 1 -o "$FVM_OUT/vivid-yuyv-640x480.raw"
"$PROBE" -d "$dev" -f NV12 -s 1280x720 -n 1 -o "$FVM_OUT/vivid-nv12-1280x720.raw"
