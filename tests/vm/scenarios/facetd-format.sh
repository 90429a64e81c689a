#!/bin/sh
# facetd-format: --format on vivid, whose native formats include YUYV and
# NV12 but not MJPEG. With --format nv12 facetd captures NV12 (its log says
# so, and vivid keeps NV12 as the format set), with --format yuyv YUYV;
# either way the frames are converted: the composed output (--effect none:
# the camera's picture) in a y4m file varies across the frame, and on the
# host each of its frames matches a frame v4l2-ctl read from vivid in that
# format. --format mjpeg falls back to facetd's own choice (YUYV at this
# size) with a warning that names what was asked and what the camera
# offers, and still runs. vivid's webcam input has 320x180 (not 320x240);
# the tiny test model keeps the inference under TCG short.
#@ timeout 150
#@ module vivid n_devs=1 node_types=0x1
#@ needs v4l2-ctl
#@ needs-build daemon/facetd
#@ needs-config HAVE_V4L2
#@ check facetcheck.py match yuyv.y4m vivid-yuyv.raw --ref-format yuyv --size 320x180
#@ check facetcheck.py match nv12.y4m vivid-nv12.raw --ref-format nv12 --size 320x180
#@ check facetcheck.py match mjpeg.y4m vivid-yuyv.raw --ref-format yuyv --size 320x180
. "$FVM_TOOLS/scenarios/lib.sh"

dev=$(video_node vivid-000-vid-cap)
model=$FVM_TOOLS/../fixtures/tiny.fpw

# grab NAME FORMAT: facetd --format FORMAT, 2 frames from vivid into
# $FVM_OUT/NAME.y4m; every one written, none broken.
grab() {
	rm -f "$FVM_OUT/$1.y4m"
	# shellcheck disable=SC2086
	run_facetd "$1" --source "v4l2:$dev" --size 320x180 --fps 5 --frames 2 --format "$2" \
		$FACETD_TCG --model "$model" --effect none --output "y4m:$FVM_OUT/$1.y4m"
	expect_json "$FVM_OUT/$1.json" source="$dev" frames_written=2 capture_errors=0 \
		output_errors=0 stop_reason=frame-limit
	size="$(json_value "$FVM_OUT/$1.json" width)x$(json_value "$FVM_OUT/$1.json" height)"
}

# expect_set FOURCC: the format facetd set on vivid, at the size it reports.
expect_set() {
	fmt=$(capture_format "$dev")
	[ "$fmt" = "$1 $size" ] || fail "facetd set $fmt on $dev, not $1 $size"
}

# varied FILE: FILE is a y4m stream of 2 frames at $size whose first frame's
# luma takes at least 4 values (vivid's 8 colour bars), not a constant or
# empty picture.
varied() {
	w=${size%x*}
	h=${size#*x}
	header=$(head -n 1 "$1" | wc -c)
	bytes=$(wc -c <"$1")
	[ "$bytes" -eq $((header + 2 * (6 + w * h * 3 / 2))) ] ||
		fail "$1: $bytes bytes, not 2 frames of $size"
	values=$(tail -c +$((header + 7)) "$1" | head -c $((w * h)) | od -An -v -tu1 |
		tr -s ' ' '\n' | sed '/^$/d' | sort -u | wc -l)
	say "$1: $values luma values in the first frame"
	[ "$values" -ge 4 ] || fail "$1: the first frame's luma has $values values only"
}

# reference FOURCC NAME: 2 frames as v4l2-ctl reads them from vivid, into
# $FVM_OUT/vivid-NAME.raw for the host's comparison.
reference() {
	v4l2-ctl -d "$dev" --set-fmt-video="width=320,height=180,pixelformat=$1" \
		--stream-mmap=4 --stream-count=2 --stream-to="$FVM_OUT/vivid-$2.raw" \
		>"$FVM_OUT/vivid-$2.log" 2>&1 || { cat "$FVM_OUT/vivid-$2.log"; fail "v4l2-ctl: $1 from $dev"; }
}

reference YUYV yuyv
reference NV12 nv12

grab yuyv yuyv
grep -q "capturing YUYV $size .*(--format yuyv)" "$FVM_OUT/yuyv.log" ||
	{ cat "$FVM_OUT/yuyv.log"; fail "no 'capturing YUYV' in the log"; }
expect_set YUYV
varied "$FVM_OUT/yuyv.y4m"

grab nv12 nv12
grep -q "capturing NV12 $size .*(--format nv12)" "$FVM_OUT/nv12.log" ||
	{ cat "$FVM_OUT/nv12.log"; fail "no 'capturing NV12' in the log"; }
! grep -q 'warning' "$FVM_OUT/nv12.log" || { cat "$FVM_OUT/nv12.log"; fail "a warning for nv12"; }
expect_set NV12
varied "$FVM_OUT/nv12.y4m"

# vivid keeps NV12 from the run before: YUYV now is facetd's own choice.
grab mjpeg mjpeg
grep -q "warning: $dev: --format mjpeg: the camera does not offer it (it offers yuyv, nv12); capturing YUYV instead" \
	"$FVM_OUT/mjpeg.log" || { cat "$FVM_OUT/mjpeg.log"; fail "no fallback warning for mjpeg"; }
grep 'warning' "$FVM_OUT/mjpeg.log"
expect_set YUYV
varied "$FVM_OUT/mjpeg.y4m"
