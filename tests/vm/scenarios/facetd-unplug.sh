#!/bin/sh
# facetd-unplug: facetd streams from vivid; vivid's "disconnect" control acts
# like pulling a USB camera. facetd must keep running, report the camera lost
# (its log, and "camera": "lost" from facetctl stats on the control socket),
# close its handle (vivid brings the node back once every handle is closed),
# reopen the device by itself and capture again: the camera frames it counts
# (frames_captured + dropped_capture) increase after the return; then it
# stops cleanly on SIGTERM.
#@ timeout 120
#@ module vivid n_devs=1 node_types=0x1
#@ needs v4l2-ctl
#@ needs-build daemon/facetd daemon/facetctl
#@ needs-config HAVE_V4L2
. "$FVM_TOOLS/scenarios/lib.sh"

dev=$(video_node vivid-000-vid-cap)
sock=/run/tmp/facetd.sock
log=$FVM_OUT/facetd.log

# (stats and camera_frames: lib.sh)

# wait_frames MORE_THAN SECONDS: until the camera frames exceed MORE_THAN.
wait_frames() {
	n=0
	while [ "$(camera_frames)" -le "$1" ]; do
		n=$((n + 1))
		[ "$n" -le $(($2 * 2)) ] || { cat "$FVM_OUT/stats.json"; fail "no camera frames"; }
		sleep 0.5
	done
}

say "facetd streams from $dev"
# shellcheck disable=SC2086
"$FACETD" --stats-json "$FVM_OUT/facetd.json" --source "$dev" --fps 5 $FACETD_TCG \
	--control "$sock" 2>"$log" &
pid=$!
wait_file "$sock" 20
wait_frames 2 20
expect_json "$FVM_OUT/stats.json" camera=streaming

say "disconnect"
# A handle of ours keeps the node away (vivid reconnects when the last one
# closes): without it facetd was back within its one-second retry, before a
# slow guest's facetctl asked.
exec 3<"$dev"
v4l2-ctl -d "$dev" -c disconnect=1 || fail "v4l2-ctl -c disconnect=1 on $dev"
wait_log "$log" 'camera lost' 10
grep 'camera lost' "$log"
stats
expect_json "$FVM_OUT/stats.json" camera=lost
kill -0 "$pid" 2>/dev/null || fail "facetd exited after the unplug"
cp "$FVM_OUT/stats.json" "$FVM_OUT/stats-lost.json"

say "the node comes back"
exec 3<&-
wait_log "$log" 'camera back' 20
grep 'camera back' "$log"
before=$(camera_frames)
expect_json "$FVM_OUT/stats.json" camera=streaming
wait_frames "$before" 10
after=$(camera_frames)
say "camera frames: $before, then $after"

say "SIGTERM"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$log"; fail "facetd exited with status $rc"; }
cat "$FVM_OUT/facetd.json"
# The unplug is a lost camera, not broken frames.
expect_json "$FVM_OUT/facetd.json" capture_errors=0
