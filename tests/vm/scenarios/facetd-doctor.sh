#!/bin/sh
# facetd-doctor: `facetd --doctor` against the real drivers. Two loopback
# devices, one with exclusive_caps=1 and one without, and vivid as the
# camera. Checked: the module is seen; the first device is reported free
# with exclusive_caps=1, the second as a problem with the modprobe fix; the
# camera with its formats; exit status 1 while a problem is left; a user
# without access to the nodes gets the usermod fix; once facetd writes to
# the first device, it is reported as in use.
#@ timeout 90
#@ module vivid n_devs=1 node_types=0x1
#@ module v4l2loopback devices=2 video_nr=10,11 max_buffers=4 exclusive_caps=1,0 card_label="facetd camera,plain loopback"
#@ needs v4l2-ctl setpriv
#@ needs-build daemon/facetd
#@ needs-config HAVE_V4L2
. "$FVM_TOOLS/scenarios/lib.sh"

cam=$(video_node vivid-000-vid-cap)
out=$FVM_OUT/doctor.txt

# doctor NAME [COMMAND PREFIX...]: facetd --doctor into $FVM_OUT/NAME.txt,
# its exit status in $rc.
doctor() {
	name=$1
	shift
	rc=0
	"$@" "$FACETD" --doctor >"$FVM_OUT/$name.txt" 2>&1 || rc=$?
	cat "$FVM_OUT/$name.txt"
}

# has NAME TEXT: the report NAME has a line with TEXT.
has() {
	grep -qF -- "$2" "$FVM_OUT/$1.txt" || fail "$1: no line with '$2'"
}

say "facetd --doctor as root"
doctor root env
[ "$rc" -eq 1 ] || fail "exit status $rc with a problem left, not 1"
has root "ok       v4l2loopback is loaded"
has root '/dev/video10: loopback "facetd camera", exclusive_caps=1, free: facetd --output v4l2:/dev/video10'
has root 'PROBLEM  /dev/video11: loopback "plain loopback" without exclusive_caps'
has root 'exclusive_caps=1'
has root "$cam: camera \"vivid"
has root "YUYV up to 3840x2160, NV12 up to 3840x2160, and "
has root "1 problem(s)"

say "a user without access"
doctor user setpriv --reuid=65534 --regid=65534 --clear-groups
has user "/dev/video10: no access for this user"
if [ "$(stat -c %g /dev/video10)" -eq 0 ]; then
	# no udev here: the nodes are root's alone
	has user 'KERNEL=="video[0-9]*", GROUP="video", MODE="0660"'
else
	has user "sudo usermod -aG $(stat -c %G /dev/video10) \$USER"
fi
! grep -q "has no device" "$FVM_OUT/user.txt" || fail "user: devices it cannot open called missing"

say "while facetd writes to /dev/video10"
"$FACETD" --source synthetic --size 160x120 --fps 5 --res 96 --threads 1 --no-on-demand \
	--model "$FVM_TOOLS/../fixtures/tiny.fpw" --output v4l2:/dev/video10 \
	>/dev/null 2>"$FVM_OUT/facetd.log" &
pid=$!
wait_log "$FVM_OUT/facetd.log" 'running:' 30
doctor busy env
has busy '/dev/video10: loopback "facetd camera", exclusive_caps=1, a producer is writing to it'
kill -TERM "$pid"
wait "$pid" || fail "facetd exited with status $?"
