#!/bin/sh
# facetd-chromium: a real browser as the virtual camera's reader. facetd
# writes the face clip (looped) with the parts into a v4l2loopback device
# loaded with exclusive_caps=1 and card_label="facetd camera"; Debian's
# chromium (headless, from the host) opens a page that lists the cameras,
# picks the one labelled "facetd camera", gets its frames by getUserMedia,
# draws them to a canvas and counts the pixels in the face region that have
# the skin colour of the parts blended over the image; the page logs its
# result with console.log. Skips when chromium is not installed.
#@ timeout 280
#@ memory 3072
#@ module v4l2loopback video_nr=10 max_buffers=4 exclusive_caps=1 card_label="facetd camera"
#@ needs chromium
#@ needs-build daemon/facetd daemon/facetctl
#@ needs-config HAVE_V4L2
#@ prepare prepare-clip.sh y4m 320x240 30 5
. "$FVM_TOOLS/scenarios/lib.sh"

cam=/dev/video10
clip=$FVM_OUT/clip-320x240.y4m
sock=/run/tmp/facetd.sock
page=$FVM_OUT/page.html
log=$FVM_OUT/chromium.log

say "facetd writes the clip into $cam"
# shellcheck disable=SC2086
# --no-on-demand: the frame parsed before chromium comes is what it must
# see (on demand, with no reader yet, facetd would release the camera and
# write the splash).
loop_y4m "$clip" 2>/dev/null | "$FACETD" --source y4m:- $FACETD_TCG --output "v4l2:$cam" \
	--no-on-demand --control "$sock" 2>"$FVM_OUT/facetd.log" &
BG_PIDS="$BG_PIDS $!"
# The clip at 320x240: a parsed frame takes about 10 s under TCG. Then
# facetd is paused: its virtual camera repeats the last frame written at the
# source's rate. The frame already in inference goes on (and is dropped):
# chromium starts once it is done, to have the one CPU.
wait_log "$FVM_OUT/facetd.log" 'ready: the first frame' 90
"$FACETCTL" --socket "$sock" pause >/dev/null || fail "facetctl pause"
n=0
until "$FACETCTL" --socket "$sock" --json stats >"$FVM_OUT/stats.json" &&
	[ "$(json_value "$FVM_OUT/stats.json" frames_inferred)" -ge 2 ]; do
	n=$((n + 1))
	[ "$n" -le 60 ] || fail "facetd still infers after 60 s"
	sleep 1
done

cat >"$page" <<'EOF'
<!DOCTYPE html>
<html><body><script>
function log(s) { console.log("FACETD " + s); }
async function main() {
  // Labels are listed once the page has camera permission.
  const first = await navigator.mediaDevices.getUserMedia({video: true});
  first.getTracks().forEach(t => t.stop());
  const cams = (await navigator.mediaDevices.enumerateDevices())
    .filter(d => d.kind === "videoinput");
  log("cameras: " + JSON.stringify(cams.map(d => d.label)));
  const cam = cams.find(d => d.label.startsWith("facetd camera"));
  if (!cam) return log("RESULT fail: no camera labelled 'facetd camera'");
  const stream = await navigator.mediaDevices.getUserMedia(
    {video: {deviceId: {exact: cam.deviceId}}});
  const video = document.createElement("video");
  video.muted = true;
  video.srcObject = stream;
  await video.play();
  const canvas = document.createElement("canvas");
  const g = canvas.getContext("2d", {willReadFrequently: true});
  for (let i = 0; i < 60; i++) {
    await new Promise(r => setTimeout(r, 500));
    const w = video.videoWidth, h = video.videoHeight;
    if (!w) continue;
    canvas.width = w;
    canvas.height = h;
    g.drawImage(video, 0, 0, w, h);
    // the middle of the frame, where the clip's face is (as facetcheck.py)
    const x0 = Math.floor(0.3 * w), y0 = Math.floor(0.25 * h);
    const d = g.getImageData(x0, y0, Math.floor(0.7 * w) - x0,
                             Math.floor(0.85 * h) - y0).data;
    let skin = 0;
    for (let k = 0; k < d.length; k += 4)
      if (d[k] - d[k + 1] >= 100 && d[k] - d[k + 2] >= 100) skin++;
    const pct = 100 * skin / (d.length / 4);
    log(`frame ${w}x${h}: ${pct.toFixed(1)} % of the face region in the skin colour`);
    if (pct >= 10) return log("RESULT pass");
  }
  log("RESULT fail: no part colours in 30 s of frames");
}
main().catch(e => log("RESULT fail: " + e));
</script></body></html>
EOF

say "chromium opens the page"
setsid chromium --headless=new --no-sandbox --disable-gpu --use-fake-ui-for-media-stream \
	--autoplay-policy=no-user-gesture-required --allow-file-access-from-files \
	--enable-logging=stderr --log-level=0 --user-data-dir=/run/tmp/chromium \
	"file://$page" >/dev/null 2>"$log" &
browser=$!
# chromium does not exit by itself: it is killed, with its helper processes
# (its own process group), once the page has said; the VM goes anyway.
wait_log "$log" 'FACETD RESULT' 120
kill -KILL -- "-$browser" 2>/dev/null || true
sed -n 's/.*"FACETD \(.*\)", source: .*/\1/p' "$log"
grep -q 'FACETD RESULT pass' "$log" || fail "the page did not see facetd's parts"
grep -q 'FACETD cameras: .*facetd camera' "$log" || fail "no camera labelled 'facetd camera'"
