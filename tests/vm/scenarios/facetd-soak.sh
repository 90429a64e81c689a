#!/bin/sh
# facetd-soak: the whole pipeline for FACETD_SOAK_SECONDS (default 60): vivid
# at 320x180 and 10 fps -> facetd (the tiny test network, --no-on-demand:
# the camera stays in use) -> a v4l2loopback device (exclusive_caps=1) read
# by v4l2-ctl in a loop. Meanwhile vivid is unplugged (its disconnect
# button) every 5 s, 20 SIGHUPs come every 10 s (the config file's
# smoothing alternating between 40 and 50), and facetctl stats runs every
# 0.2 s. Every FACETD_SOAK_SAMPLE s (default 3, 10 in runs over 2 minutes)
# facetd's resident memory (VmRSS) and open fds go into soak.csv with its
# frame and error counters.
#
# The rule: neither grows. The samples are cut in thirds by number; the
# last third's largest RSS may exceed the first third's largest by at most
# 1024 kB, its largest fd count the first third's by at most 2 (a control
# client connected, a /proc scan open at the moment of a sample). Also
# checked: facetd runs to the end and exits 0, camera frames come in and
# frames go out during the last third, every facetctl request was
# answered, and each unplug was seen and recovered from. soak.txt has the
# figures.
#@ timeout 150 + FACETD_SOAK_SECONDS
#@ module vivid n_devs=1 node_types=0x1
#@ module v4l2loopback video_nr=10 max_buffers=4 exclusive_caps=1 card_label="facetd camera"
#@ needs v4l2-ctl
#@ needs-build daemon/facetd daemon/facetctl
#@ needs-config HAVE_V4L2
. "$FVM_TOOLS/scenarios/lib.sh"

seconds=${FACETD_SOAK_SECONDS:-60}
[ "$seconds" -ge 30 ] || fail "FACETD_SOAK_SECONDS=$seconds: at least 30"
sample=3
[ "$seconds" -le 120 ] || sample=10
sample=${FACETD_SOAK_SAMPLE:-$sample}
cam=$(video_node vivid-000-vid-cap)
vcam=/dev/video10
sock=/run/tmp/facetd.sock
log=$FVM_OUT/facetd.log
conf=/run/tmp/facetd.conf
csv=$FVM_OUT/soak.csv
report=$FVM_OUT/soak.txt
work=/run/tmp/soak
mkdir -p "$work"

alive() {
	kill -0 "$facetd_pid" 2>/dev/null && return 0
	rc=0
	wait "$facetd_pid" || rc=$?
	tail -n 20 "$log"
	fail "facetd is gone ($1; exit status $rc)"
}

# stats: facetd's figures now, into $S.
stats() {
	S=$("$FACETCTL" --socket "$sock" --json stats) || fail "facetctl stats failed"
}

# stat_of KEY: KEY's value in $S (a string without its quotes).
stat_of() {
	v=${S#*\""$1"\": }
	v=${v%%[,\}]*}
	v=${v#\"}
	echo "${v%\"}"
}

# rss_kb, fd_count: of facetd, read by the shell itself.
rss_kb() {
	while read -r key value _; do
		[ "$key" = VmRSS: ] && echo "$value" && return 0
	done </proc/"$facetd_pid"/status
	echo 0
}

fd_count() {
	set -- /proc/"$facetd_pid"/fd/*
	echo $#
}

# counter FILE: lines in FILE (the background loops' tallies), no fork.
counter() {
	c=0
	[ -f "$1" ] && while IFS= read -r _; do c=$((c + 1)); done <"$1"
	echo "$c"
}

log_count() {
	c=0
	while IFS= read -r line; do
		case $line in *"$1"*) c=$((c + 1)) ;; esac
	done <"$log"
	echo "$c"
}

echo "smoothing = 40" >"$conf"
say "facetd: $cam -> $vcam for $seconds s, a sample every $sample s"
# Below this script's priority: the samples are taken on time.
# shellcheck disable=SC2086
nice -n 10 "$FACETD" --stats-json "$FVM_OUT/facetd.json" --source "$cam" --size 320x180 \
	--fps 10 $FACETD_TCG --model "$FVM_TOOLS/../fixtures/tiny.fpw" --no-on-demand \
	--output "v4l2:$vcam" --config "$conf" --control "$sock" 2>"$log" &
facetd_pid=$!
n=0
until [ -S "$sock" ] && is_capture "$vcam"; do
	alive "the start"
	n=$((n + 1))
	[ "$n" -le 60 ] || fail "facetd did not start within 30 s"
	sleep 0.5
done

# ---- the load, in the background ----

# A reader of the virtual camera, 30 frames at a time.
reader() {
	while :; do
		if v4l2-ctl -d "$vcam" --stream-mmap=4 --stream-count=30 --stream-to=/dev/null \
			>/dev/null 2>>"$work/reader.log"; then
			echo 30 >>"$work/read"
		else
			echo x >>"$work/read-failed"
			sleep 0.5
		fi
	done
}

unplugger() {
	while sleep 5; do
		if v4l2-ctl -d "$cam" -c disconnect=1 2>/dev/null; then
			echo x >>"$work/unplugs"
		else
			echo x >>"$work/unplug-refused" # the node is still gone
		fi
	done
}

reloader() {
	s=40
	while sleep 10; do
		s=$((90 - s))
		echo "smoothing = $s" >"$conf"
		i=0
		while [ "$i" -lt 20 ]; do
			kill -HUP "$facetd_pid" 2>/dev/null || return 0
			i=$((i + 1))
		done
		echo x >>"$work/storms"
	done
}

control() {
	while sleep 0.2; do
		if "$FACETCTL" --socket "$sock" --json stats >/dev/null 2>>"$work/control.log"; then
			echo x >>"$work/control-ok"
		else
			echo x >>"$work/control-failed"
		fi
	done
}

background reader
background unplugger
background reloader
background control

# ---- the samples ----

echo "t_s,rss_kb,fds,camera_frames,frames_written,capture_errors,output_errors" >"$csv"
read -r t0 _ </proc/uptime
t0=${t0%.*}
end=$((t0 + seconds))
while :; do
	read -r now _ </proc/uptime
	now=${now%.*}
	alive "after $((now - t0)) s"
	rss=$(rss_kb)
	fds=$(fd_count)
	stats
	frames=$(($(stat_of frames_captured) + $(stat_of dropped_capture)))
	echo "$((now - t0)),$rss,$fds,$frames,$(stat_of frames_written)," \
		"$(stat_of capture_errors),$(stat_of output_errors)" | tr -d ' ' >>"$csv"
	[ "$now" -lt "$end" ] || break
	sleep "$sample"
done
stop_background
say "$seconds s done"
cat "$csv"

# back from the last unplug
n=0
until stats && [ "$(stat_of camera)" = streaming ]; do
	n=$((n + 1))
	[ "$n" -le 20 ] || { echo "$S"; fail "the camera is not back 10 s after the last unplug"; }
	sleep 0.5
done
final=$S
kill -TERM "$facetd_pid"
rc=0
wait "$facetd_pid" || rc=$?
[ "$rc" -eq 0 ] || { tail -n 20 "$log"; fail "facetd exited with status $rc"; }

# ---- the figures and the rule ----

S=$final
read=0
[ -f "$work/read" ] && read=$(($(counter "$work/read") * 30))
unplugs=$(counter "$work/unplugs")
{
	echo "soak of $seconds s, a sample every $sample s ($(($(counter "$csv") - 1)) samples)"
	awk -F, 'NR == 2 { print "start: RSS " $2 " kB, " $3 " fds" }
		END { print "end:   RSS " $2 " kB, " $3 " fds" }' "$csv"
	echo "frames: $(($(stat_of frames_captured) + $(stat_of dropped_capture))) from the camera," \
		"$(stat_of frames_inferred) parsed, $(stat_of frames_written) written," \
		"$read read by the readers ($(counter "$work/read-failed") reads failed)"
	echo "errors: capture_errors $(stat_of capture_errors), output_errors $(stat_of output_errors)," \
		"dropped_capture $(stat_of dropped_capture), dropped_stale $(stat_of dropped_stale)," \
		"overtaken $(stat_of overtaken)"
	echo "unplugs: $unplugs sent ($(counter "$work/unplug-refused") refused: the node was" \
		"still gone), 'camera lost' $(log_count 'camera lost') times, 'camera back'" \
		"$(log_count 'camera back') times"
	echo "reloads: $(counter "$work/storms") storms of 20 SIGHUPs, $(log_count 'reload:') reloads" \
		"logged, $(log_count 'reload: changed') with a change"
	echo "control: $(counter "$work/control-ok") stats answered," \
		"$(counter "$work/control-failed") failed"
} | tee "$report"

[ "$(counter "$work/control-failed")" -eq 0 ] || { cat "$work/control.log"; fail "facetctl requests failed"; }
[ "$unplugs" -ge $((seconds / 10)) ] || fail "only $unplugs unplugs in $seconds s"
[ "$(log_count 'camera back')" -ge "$unplugs" ] || fail "not every unplug was recovered from"
[ "$read" -gt 0 ] || { cat "$work/reader.log"; fail "the readers read nothing"; }
# the rule (see the top); also: frames came in and went out in the last third
awk -F, -v report="$report" '
	NR > 1 { n++; rss[n] = $2; fds[n] = $3; cam[n] = $4; out[n] = $5 }
	END {
		k = int(n / 3)
		if (k < 2) { print "too few samples: " n; exit 1 }
		for (i = 1; i <= k; i++) {
			if (rss[i] > r1) r1 = rss[i]
			if (fds[i] > f1) f1 = fds[i]
		}
		for (i = n - k + 1; i <= n; i++) {
			if (rss[i] > r3) r3 = rss[i]
			if (fds[i] > f3) f3 = fds[i]
		}
		msg = sprintf("largest RSS: first third %d kB, last third %d kB (%+d kB, allowed +1024); " \
			"largest fd count: %d, then %d (allowed +2)", r1, r3, r3 - r1, f1, f3)
		print msg
		print msg >>report
		bad = 0
		if (r3 > r1 + 1024) { print "FAIL: RSS grows"; bad = 1 }
		if (f3 > f1 + 2) { print "FAIL: open fds grow"; bad = 1 }
		if (cam[n] <= cam[n - k + 1]) { print "FAIL: no camera frames in the last third"; bad = 1 }
		if (out[n] <= out[n - k + 1]) { print "FAIL: no frames written in the last third"; bad = 1 }
		exit bad
	}' "$csv" || fail "the soak's rule (see above)"
