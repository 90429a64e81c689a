#!/bin/sh
# facetd-faults: facetd streams from vivid (320x180 at 15 fps, the tiny test
# network: what it parses does not matter here) while faults are injected,
# one after the other. After each, facetd must still run, camera frames
# (frames_captured + dropped_capture) must come again once the fault is
# cleared, and the fault must be counted or logged by its name:
# - vivid's error injection (its controls, listed first into
#   vivid-controls.txt): a buffer flagged broken (capture_errors), every
#   buffer dropped for 2 s (no frames, then frames again), sequence number
#   and timestamp wrap (the stream runs past both), a fatal streaming error,
#   a refused VIDIOC_QBUF (the stream is restarted: capture_errors and the
#   call in the log), a refused VIDIOC_REQBUFS and VIDIOC_STREAMON when the
#   stream restarts (the call in the log, the camera back after a retry),
#   and the disconnect button;
# - the control socket flooded with garbage and with more clients than it
#   has slots (ctlflood.py: every reply valid JSON, the surplus refused with
#   a reply, no slot left taken afterwards);
# - 50 SIGHUPs at once: the changed config file applies, an invalid one is
#   refused and the running settings stay;
# - the weights file replaced by rename, then truncated in place (facetd
#   keeps parsing: it holds its own copy of the weights);
# - a snapshot onto a full tmpfs, and onto one with room for half of it:
#   "No space left on device", and neither the file nor its .tmp is left.
# faults.txt sums up what facetd did under each.
#@ timeout 150
#@ module vivid n_devs=1 node_types=0x1
#@ needs v4l2-ctl python3 truncate
#@ needs-build daemon/facetd daemon/facetctl
#@ needs-config HAVE_V4L2
. "$FVM_TOOLS/scenarios/lib.sh"

dev=$(video_node vivid-000-vid-cap)
sock=/run/tmp/facetd.sock
log=$FVM_OUT/facetd.log
conf=/run/tmp/facetd.conf
weights=/run/tmp/weights.fpw
small=/run/small
summary=$FVM_OUT/faults.txt
: >"$summary"

# ---- facetd's state (alive, stats, stat_of, camera_frames, wait_stat: lib.sh) ----

# flowing WHAT: facetd runs and camera frames come again (3 more).
flowing() {
	alive "$1"
	want=$(($(camera_frames) + 2))
	n=0
	until [ "$(camera_frames)" -gt "$want" ]; do
		n=$((n + 1))
		[ "$n" -le 60 ] || { echo "$S"; tail -n 20 "$log"; fail "$1: no camera frames for 15 s"; }
		sleep 0.25
	done
	alive "$1"
}

# inferring WHAT: facetd runs and parses frames (2 more).
inferring() {
	alive "$1"
	stats
	wait_stat frames_inferred $(($(stat_of frames_inferred) + 1)) 30 "$1: no frame parsed for 30 s"
}

# log_count TEXT: lines of facetd's log with TEXT.
log_count() {
	c=0
	while IFS= read -r line; do
		case $line in *"$1"*) c=$((c + 1)) ;; esac
	done <"$log"
	echo "$c"
}

# wait_more_log TEXT COUNT SECONDS: until more than COUNT lines have TEXT.
wait_more_log() {
	n=0
	until [ "$(log_count "$1")" -gt "$2" ]; do
		n=$((n + 1))
		[ "$n" -le $(($3 * 4)) ] || { tail -n 20 "$log"; fail "no new '$1' in the log within $3 s"; }
		sleep 0.25
	done
}

note() {
	echo "$*" | tee -a "$summary"
}

ctl() {
	v4l2-ctl -d "$dev" -c "$1" || fail "v4l2-ctl -c $1"
}

# ---- vivid's controls ----

v4l2-ctl -d "$dev" -L >"$FVM_OUT/vivid-controls.txt"
for c in inject_v4l2_buf_flag_error percentage_of_dropped_buffers wrap_sequence_number \
	wrap_timestamp inject_fatal_streaming_error inject_vidioc_qbuf_error \
	inject_vidioc_reqbufs_error inject_vidioc_streamon_error disconnect; do
	grep -qw "$c" "$FVM_OUT/vivid-controls.txt" || fail "vivid has no control $c (vivid-controls.txt)"
done

# The wraps count from the start of streaming: the sequence number starts
# 128 frames before 2^32, the timestamp 16 s before 2^32 s.
ctl wrap_sequence_number=1
ctl wrap_timestamp=2

cp "$FVM_TOOLS/../fixtures/tiny.fpw" "$weights"
echo "smoothing = 30" >"$conf"
say "facetd streams from $dev"
# At a lower priority than this script: its checks then run as soon as
# they are due, and facetd takes the rest of the CPU.
# shellcheck disable=SC2086
nice -n 10 "$FACETD" --stats-json "$FVM_OUT/facetd.json" --source "$dev" --size 320x180 --fps 15 \
	$FACETD_TCG --model "$weights" --config "$conf" --control "$sock" 2>"$log" &
pid=$!
read -r t_start _ </proc/uptime
n=0
while [ ! -S "$sock" ]; do
	alive "the start"
	n=$((n + 1))
	[ "$n" -le 300 ] || fail "$sock did not appear within 30 s"
	sleep 0.1
done
flowing "the start"
expect_json "$FVM_OUT/stats.json" camera=streaming smoothing=30

# ---- vivid's error injection, first what keeps the stream ----

say "a buffer flagged broken (V4L2_BUF_FLAG_ERROR)"
stats
errors=$(stat_of capture_errors)
ctl inject_v4l2_buf_flag_error=1
wait_stat capture_errors "$errors" 10 "a broken buffer was not counted in capture_errors"
grep -F 'a frame the driver flagged broken (V4L2_BUF_FLAG_ERROR)' "$log" || fail "no log line for the broken buffer"
flowing "a broken buffer"
note "V4L2_BUF_FLAG_ERROR: counted (capture_errors $errors -> $(stat_of capture_errors)), logged, streaming"

say "every buffer dropped for 2 s"
ctl percentage_of_dropped_buffers=100
sleep 0.5
f0=$(camera_frames)
sleep 2
f1=$(camera_frames)
ctl percentage_of_dropped_buffers=0
[ $((f1 - f0)) -le 1 ] || fail "vivid drops every buffer, yet facetd got $((f1 - f0)) frames in 2 s"
flowing "100 % dropped buffers"
note "100 % dropped buffers for 2 s: $((f1 - f0)) frames meanwhile, frames again after"

# ---- the control socket ----

say "the control socket flooded"
python3 "$FVM_TOOLS/ctlflood.py" "$sock" >"$FVM_OUT/flood.json" ||
	{ cat "$FVM_OUT/flood.json"; fail "ctlflood.py: malformed or missing replies"; }
cat "$FVM_OUT/flood.json"
grep -q '"too many clients"' "$FVM_OUT/flood.json" || fail "the surplus clients were not refused"
flowing "the control flood"
# facetctl's own connection only: every slot of the flood is free again
n=0
until stats && [ "$(stat_of clients)" = 1 ]; do
	n=$((n + 1))
	[ "$n" -le 20 ] || { cat "$FVM_OUT/stats.json"; fail "control slots still taken after the flood"; }
	sleep 0.25
done
note "control flood: $(cat "$FVM_OUT/flood.json"); then stats answered, clients 1, streaming"

# ---- reload storm ----

say "50 SIGHUPs"
echo "smoothing = 40" >"$conf"
reloads=$(log_count 'reload:')
read -r t0 _ </proc/uptime
i=0
while [ "$i" -lt 50 ]; do
	kill -HUP "$pid"
	i=$((i + 1))
done
read -r t1 _ </proc/uptime
wait_more_log 'reload: changed smoothing' 0 10
alive "the SIGHUP storm"
stats
expect_json "$FVM_OUT/stats.json" smoothing=40
n=$(($(log_count 'reload:') - reloads))
note "50 SIGHUPs in $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }') s: $n reloads (signals merge), smoothing 30 -> 40, running"
echo "smoothing = 400" >"$conf"
kill -HUP "$pid"
wait_more_log 'the running settings stay' 0 10
grep -F 'the running settings stay' "$log"
stats
expect_json "$FVM_OUT/stats.json" smoothing=40
echo "smoothing = 40" >"$conf"
flowing "the reloads"
note "invalid config on SIGHUP: refused, logged, smoothing stays 40"

# ---- the weights file ----

say "weights replaced by rename"
cp "$FVM_TOOLS/../fixtures/tiny.fpw" "$weights.new"
mv "$weights.new" "$weights"
inferring "the weights replaced by rename"
say "weights truncated in place"
truncate -s 0 "$weights"
inferring "the weights truncated in place"
note "weights replaced by rename, then truncated in place: parsing goes on (frames_inferred $(stat_of frames_inferred))"

# ---- the wraps ----

say "past the sequence and timestamp wraps"
read -r now _ </proc/uptime
left=$(echo "$t_start $now" | awk '{ s = 18 - ($2 - $1); print (s > 0 ? int(s) + 1 : 0) }')
sleep "$left"
f=$(camera_frames)
[ "$f" -gt 140 ] || fail "$f camera frames: not past the sequence wrap (128) yet"
! grep -E 'camera lost|restarting the stream' "$log" ||
	fail "the stream restarted: the wraps were not reached in one stream"
flowing "the wraps"
note "sequence wrap (32 bit) and timestamp wrap (32 bit s) in one stream of $f frames: streaming"

# ---- vivid's error injection: what breaks the stream ----

say "a fatal streaming error"
stats
errors=$(stat_of capture_errors)
ctl inject_fatal_streaming_error=1
# VIDIOC_DQBUF fails, or VIDIOC_QBUF when the error comes between the two
wait_more_log 'Input/output error; restarting the stream' 0 10
flowing "a fatal streaming error"
stats
[ "$(stat_of capture_errors)" -gt "$errors" ] || fail "the streaming error was not counted"
note "fatal streaming error: logged '$(grep -m1 -o 'VIDIOC_[A-Z]*: Input/output error; restarting the stream' "$log")', counted, streaming again"

say "VIDIOC_QBUF refused"
errors=$(stat_of capture_errors)
ctl inject_vidioc_qbuf_error=1
wait_more_log 'VIDIOC_QBUF: Invalid argument; restarting the stream' 0 10
flowing "a refused VIDIOC_QBUF"
stats
[ "$(stat_of capture_errors)" -gt "$errors" ] || fail "the refused VIDIOC_QBUF was not counted"
note "VIDIOC_QBUF refused: logged by name, counted, stream restarted, streaming"

for call in reqbufs streamon; do
	CALL=$(echo "$call" | tr '[:lower:]' '[:upper:]')
	say "VIDIOC_$CALL refused when the stream restarts"
	back=$(log_count 'camera back')
	ctl "inject_vidioc_${call}_error=1"
	ctl inject_fatal_streaming_error=1
	wait_more_log "VIDIOC_$CALL: Invalid argument; retrying every second" 0 10
	wait_more_log 'camera back' "$back" 10
	flowing "a refused VIDIOC_$CALL"
	note "VIDIOC_$CALL refused on the restart: logged by name, retried, camera back, streaming"
done

say "disconnect"
lost=$(log_count 'camera lost')
back=$(log_count 'camera back')
ctl disconnect=1
wait_more_log 'camera lost (No such device)' "$lost" 10
wait_more_log 'camera back' "$back" 20
flowing "the disconnect"
note "disconnect: camera lost, back, streaming"

# ---- a full disk under a snapshot ----

say "snapshots onto a full tmpfs"
mkdir -p "$small"
mount -t tmpfs -o size=256k tmpfs "$small" || fail "cannot mount a tmpfs on $small"
"$FACETCTL" --socket "$sock" snapshot "$small/fits.png" || fail "a snapshot onto an empty tmpfs failed"
size=$(wc -c <"$small/fits.png")
rm "$small/fits.png"
echo "a snapshot takes $size bytes"

# expect_full NAME: the snapshot fails for want of space, leaving nothing.
expect_full() {
	out=$FVM_OUT/snapshot-$1.txt
	if "$FACETCTL" --socket "$sock" snapshot "$small/$1.png" >"$out" 2>&1; then
		fail "a snapshot onto a full tmpfs succeeded"
	fi
	cat "$out"
	grep -q "$small/$1.png: No space left on device" "$out" || fail "unclear error: $(cat "$out")"
	left=$(ls -A "$small")
	[ "$left" = fill ] || fail "left behind on the full tmpfs: $left"
}

dd if=/dev/zero of="$small/fill" bs=4096 2>/dev/null || true
expect_full full
rm "$small/fill"
avail=$(($(stat -f -c '%a * %S' "$small")))
dd if=/dev/zero of="$small/fill" bs=4096 count=$(((avail - size / 2) / 4096)) 2>/dev/null ||
	fail "cannot fill $small"
expect_full half
"$FACETCTL" --socket "$sock" snapshot /run/tmp/after.png || fail "no snapshot after the full disk"
flowing "the full disk"
note "snapshot ($size bytes) onto a full tmpfs and onto one with room for half: 'No space left on device', no file, no .tmp; the next snapshot works"
umount "$small"

say "SIGTERM"
stats
cp "$FVM_OUT/stats.json" "$FVM_OUT/stats-end.json"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { tail -n 20 "$log"; fail "facetd exited with status $rc"; }
cat "$FVM_OUT/facetd.json"
note "end: $(sed -n 's/.*\("frames_captured[^}]*"output_errors": [0-9]*\).*/\1/p' "$FVM_OUT/facetd.json")"
say "summary"
cat "$summary"
