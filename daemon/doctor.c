/* facetd --doctor: what stands between facetd and a working virtual camera
 * (../README.md, "Virtual camera"), each problem with the command that
 * fixes it. Plain ioctl() on the nodes: what the kernel says, not libv4l2's
 * emulation. */
#include "doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/videodev2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_NODES 64
#define MODULE_DIR "/sys/module/v4l2loopback"
#define LOAD_OPTS "video_nr=10 card_label=\"facetd camera\" exclusive_caps=1"

struct doctor {
	FILE *out;
	int problems;
	int loopbacks, cameras, closed; /* closed: nodes this user cannot open */
	char first_loopback[32];
};

__attribute__((format(printf, 2, 3)))
static void ok(struct doctor *d, const char *fmt, ...)
{
	va_list ap;

	fputs("  ok       ", d->out);
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fputc('\n', d->out);
}

/* A problem and its fix (fix lines are indented under it). */
__attribute__((format(printf, 3, 4)))
static void problem(struct doctor *d, const char *fix, const char *fmt, ...)
{
	va_list ap;

	fputs("  PROBLEM  ", d->out);
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fprintf(d->out, "\n           fix: %s\n", fix);
	d->problems++;
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static void check_module(struct doctor *d)
{
	char version[64] = "";
	FILE *f;

	if (access(MODULE_DIR, F_OK) != 0) {
		problem(d, "sudo apt install v4l2loopback-dkms && sudo modprobe v4l2loopback "
			LOAD_OPTS "\n           at every boot: echo 'options v4l2loopback "
			LOAD_OPTS "' | sudo tee /etc/modprobe.d/facetd.conf; echo v4l2loopback | "
			"sudo tee /etc/modules-load.d/facetd.conf",
			"v4l2loopback is not loaded: no virtual camera to write to");
		return;
	}
	f = fopen(MODULE_DIR "/version", "r");
	if (f) {
		if (!fgets(version, sizeof(version), f))
			version[0] = '\0';
		version[strcspn(version, "\n")] = '\0';
		fclose(f);
	}
	ok(d, "v4l2loopback is loaded%s%s", version[0] ? ", version " : "", version);
}

/* The group that owns the node, for the usermod fix; a node of root's
 * group alone needs a udev rule first. */
static void no_access(struct doctor *d, const char *path, const struct stat *st)
{
	struct group *g = st->st_gid ? getgrgid(st->st_gid) : NULL;
	char fix[384];

	d->closed++;
	if (g)
		snprintf(fix, sizeof(fix), "sudo usermod -aG %s $USER, then log out and in again",
			 g->gr_name);
	else
		snprintf(fix, sizeof(fix), "echo 'KERNEL==\"video[0-9]*\", GROUP=\"video\", "
			 "MODE=\"0660\"' | sudo tee /etc/udev/rules.d/70-facetd.rules; sudo udevadm "
			 "trigger; sudo usermod -aG video $USER, then log out and in again");
	problem(d, fix, "%s: no access for this user", path);
}

static void loopback(struct doctor *d, const char *path, const struct v4l2_capability *cap,
		     uint32_t caps)
{
	int capture = !!(caps & V4L2_CAP_VIDEO_CAPTURE), output = !!(caps & V4L2_CAP_VIDEO_OUTPUT);

	if (d->loopbacks++ == 0)
		snprintf(d->first_loopback, sizeof(d->first_loopback), "%s", path);
	if (capture && output)
		problem(d, "load the module with exclusive_caps=1 (sudo modprobe -r v4l2loopback && "
			"sudo modprobe v4l2loopback " LOAD_OPTS ")",
			"%s: loopback \"%s\" without exclusive_caps: Chrome, Zoom and other "
			"WebRTC applications do not list it as a camera", path, (const char *)cap->card);
	else if (output)
		ok(d, "%s: loopback \"%s\", exclusive_caps=1, free: facetd --output v4l2:%s",
		   path, (const char *)cap->card, path);
	else
		ok(d, "%s: loopback \"%s\", exclusive_caps=1, a producer is writing to it "
		   "(facetd already running?)", path, (const char *)cap->card);
}

static int usable(uint32_t pixfmt)
{
	return pixfmt == V4L2_PIX_FMT_YUYV || pixfmt == V4L2_PIX_FMT_NV12 ||
	       pixfmt == V4L2_PIX_FMT_MJPEG;
}

/* "YUYV up to 1280x720, MJPG up to 1920x1080 (and 3 other formats)": each
 * format facetd reads, with its largest size. Returns how many. */
static int list_formats(int fd, char *buf, size_t len)
{
	struct v4l2_fmtdesc f = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	size_t n = 0;
	int shown = 0, other = 0;

	buf[0] = '\0';
	for (f.index = 0; xioctl(fd, VIDIOC_ENUM_FMT, &f) == 0 && n < len; f.index++) {
		if (!usable(f.pixelformat)) {
			other++;
			continue;
		}
		struct v4l2_frmsizeenum s = { .pixel_format = f.pixelformat };
		uint32_t w = 0, h = 0, p = f.pixelformat;
		for (s.index = 0; xioctl(fd, VIDIOC_ENUM_FRAMESIZES, &s) == 0; s.index++) {
			uint32_t sw = s.type == V4L2_FRMSIZE_TYPE_DISCRETE ? s.discrete.width : s.stepwise.max_width;
			uint32_t sh = s.type == V4L2_FRMSIZE_TYPE_DISCRETE ? s.discrete.height : s.stepwise.max_height;
			if ((uint64_t)sw * sh > (uint64_t)w * h)
				w = sw, h = sh;
			if (s.type != V4L2_FRMSIZE_TYPE_DISCRETE)
				break;
		}
		n += (size_t)snprintf(buf + n, len - n, "%s%c%c%c%c up to %ux%u", shown++ ? ", " : "",
				      p & 0xff, (p >> 8) & 0xff, (p >> 16) & 0xff, (p >> 24) & 0xff, w, h);
	}
	if (other && n < len)
		snprintf(buf + n, len - n, "%s%d other format(s)", shown ? ", and " : "", other);
	return shown;
}

static void camera(struct doctor *d, int fd, const char *path, const struct v4l2_capability *cap)
{
	char formats[512];

	d->cameras++;
	if (list_formats(fd, formats, sizeof(formats)) > 0)
		ok(d, "%s: camera \"%s\": %s", path, (const char *)cap->card, formats);
	else
		problem(d, "use another camera (facetd reads YUYV, NV12 and MJPEG)",
			"%s: camera \"%s\" gives none of YUYV, NV12, MJPEG: %s", path,
			(const char *)cap->card, formats);
}

static void check_node(struct doctor *d, const char *path)
{
	struct v4l2_capability cap;
	struct stat st;
	uint32_t caps;
	int fd;

	if (stat(path, &st) != 0 || !S_ISCHR(st.st_mode))
		return;
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == EACCES || errno == EPERM)
			no_access(d, path, &st);
		else
			ok(d, "%s: cannot open (%s): skipped", path, strerror(errno));
		return;
	}
	if (xioctl(fd, VIDIOC_QUERYCAP, &cap) == 0) {
		caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
		if (strcmp((const char *)cap.driver, "v4l2 loopback") == 0)
			loopback(d, path, &cap, caps);
		else if (caps & V4L2_CAP_VIDEO_CAPTURE && caps & V4L2_CAP_STREAMING)
			camera(d, fd, path, &cap);
	}
	close(fd);
}

int doctor_run(FILE *out)
{
	struct doctor d = { .out = out };
	char path[32];

	fprintf(out, "facetd doctor: the virtual camera set-up\n");
	check_module(&d);
	for (int i = 0; i < MAX_NODES; i++) {
		snprintf(path, sizeof(path), "/dev/video%d", i);
		check_node(&d, path);
	}
	if (d.loopbacks == 0 && d.closed == 0 && access(MODULE_DIR, F_OK) == 0)
		problem(&d, "sudo modprobe -r v4l2loopback && sudo modprobe v4l2loopback " LOAD_OPTS,
			"v4l2loopback is loaded but has no device");
	if (d.cameras == 0 && d.closed == 0)
		fprintf(out, "  note     no camera found: facetd can still read y4m:FILE or synthetic\n");
	if (d.problems)
		fprintf(out, "%d problem(s)\n", d.problems);
	else
		fprintf(out, "no problems: facetd --output v4l2:%s\n", d.first_loopback);
	return d.problems;
}
