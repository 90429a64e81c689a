#!/bin/sh
# unplug: vivid's "disconnect" control, sent by another process while our
# capture program streams, acts like pulling a USB camera. The reader must see
# the device vanish (ENODEV, or an error from DQBUF/QBUF/poll), and once every
# handle is closed it must be able to reopen the device and stream again.
#@ timeout 60
#@ module vivid n_devs=1 node_types=0x1
#@ needs v4l2-ctl
#@ needs-bin v4l2-probe
. "$FVM_TOOLS/scenarios/lib.sh"

dev=$(video_node vivid-000-vid-cap)
ready=/run/tmp/streaming
"$PROBE" -d "$dev" -f YUYV -s 640x480 -r 15 -n 150 -b 8 --max-drops 2 --ready "$ready" \
	--expect-gone --reopen 10 >"$FVM_OUT/probe.log" 2>&1 &
pid=$!
wait_file "$ready" 20
sleep 0.5
say "disconnect"
v4l2-ctl -d "$dev" -c disconnect=1 || fail "v4l2-ctl -c disconnect=1 on $dev"
rc=0
wait "$pid" || rc=$?
cat "$FVM_OUT/probe.log"
[ "$rc" -eq 0 ] || fail "the reader did not see the unplug and come back (status $rc)"
grep -q 'device gone' "$FVM_OUT/probe.log" || fail "no unplug reported"
grep -q 'after reopening' "$FVM_OUT/probe.log" || fail "no capture after reopening"
