#!/bin/sh
# facetd-output-faults: the virtual camera refuses frames. facetd writes a
# synthetic source into a v4l2loopback device while, twice, every
# VIDIOC_QBUF of its output fails with EIO for 3 s (refuse-qbuf.so, an
# LD_PRELOAD shim: v4l2loopback injects no errors itself; all else is the
# real driver). Checked, each time:
# - facetd keeps running and keeps parsing frames;
# - each refused frame is counted in output_errors, and the log says once
#   which device refused and why, then that frames are accepted again;
# - once accepted again, a reader (v4l2-ctl) gets frames from the device
#   and output_errors stops growing.
# Then SIGTERM: exit status 0.
#@ timeout 150
#@ module v4l2loopback video_nr=10 max_buffers=4 exclusive_caps=1 card_label="facetd camera"
#@ needs v4l2-ctl
#@ needs-build daemon/facetd daemon/facetctl tests/vm/refuse-qbuf.so
#@ needs-config HAVE_V4L2
. "$FVM_TOOLS/scenarios/lib.sh"

vcam=/dev/video10
sock=/run/tmp/facetd.sock
log=$FVM_OUT/facetd.log
flag=/run/tmp/refuse-qbuf
model=$FVM_TOOLS/../fixtures/tiny.fpw

# log_count TEXT: lines of facetd's log with TEXT.
log_count() {
	c=0
	while IFS= read -r line; do
		case $line in *"$1"*) c=$((c + 1)) ;; esac
	done <"$log"
	echo "$c"
}

# reads COUNT: v4l2-ctl gets COUNT frames from the device within 20 s.
reads() {
	timeout 20 v4l2-ctl -d "$vcam" --stream-mmap=4 --stream-count="$1" \
		--stream-to="$FVM_OUT/read.raw" >"$FVM_OUT/read.log" 2>&1 ||
		{ cat "$FVM_OUT/read.log"; tail -n 20 "$log"; fail "v4l2-ctl read no $1 frames"; }
	[ "$(wc -c <"$FVM_OUT/read.raw")" -eq $(($1 * 160 * 120 * 2)) ] ||
		fail "$FVM_OUT/read.raw: not $1 YUYV frames of 160x120"
}

say "facetd writes to $vcam"
# shellcheck disable=SC2086
REFUSE_QBUF=$flag LD_PRELOAD=$FACETD_BUILD/tests/vm/refuse-qbuf.so \
	"$FACETD" --stats-json "$FVM_OUT/facetd.json" --source synthetic --size 160x120 \
	--fps 10 --output "v4l2:$vcam" --no-on-demand $FACETD_TCG --model "$model" \
	--control "$sock" 2>"$log" &
pid=$!
wait_log "$log" 'running:|error' 30
alive "the start"
wait_stat frames_written 2 30 "no frame written within 30 s"
reads 3

for round in 1 2; do
	say "round $round: VIDIOC_QBUF refused for 3 s"
	stats
	errors=$(stat_of output_errors)
	inferred=$(stat_of frames_inferred)
	: >"$flag"
	wait_stat output_errors "$errors" 10 "refused frames not counted in output_errors"
	sleep 3
	alive "frames refused"
	wait_stat frames_inferred "$inferred" 30 "no frame parsed while the output refused"
	[ "$(log_count "$vcam: frame refused: Input/output error")" -eq "$round" ] ||
		{ cat "$log"; fail "the refusal is not logged once a round"; }
	rm -f "$flag"
	wait_log "$log" "frames accepted again after [0-9]+ refused" 10
	[ "$(log_count "frames accepted again")" -eq "$round" ] || { cat "$log"; fail "round $round: recovery not logged once"; }
	reads 3
	stats
	errors=$(stat_of output_errors)
	sleep 1
	stats
	[ "$(stat_of output_errors)" -eq "$errors" ] || fail "output_errors still grows once frames are accepted"
	echo "round $round: output_errors $errors, $(grep 'accepted again' "$log" | tail -n 1)"
done

say "SIGTERM"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$log"; fail "facetd exited with status $rc"; }
cat "$FVM_OUT/facetd.json"
