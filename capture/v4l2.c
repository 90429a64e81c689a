/* V4L2 cameras through libv4l2: mmap streaming of YUYV, NV12 or MJPEG,
 * converted to RGBA in the capture thread (libyuv; MJPEG by TurboJPEG).
 *
 * Negotiation: the wanted size (default 640x480) and rate (default 30);
 * among the device's native formats, MJPEG is preferred above 640x480
 * (where USB cameras give YUYV at a few fps only), YUYV or NV12 otherwise.
 * The driver may adjust the size and rate; what was chosen is in the info.
 *
 * A camera that vanishes (ENODEV, unplug, suspend) makes capture_read()
 * return -ENODEV; later calls try to reopen it at most once a second and
 * deliver frames again when it is back.
 */
#include "capture-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <libv4l2.h>
#include <libyuv.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <turbojpeg.h>
#include <unistd.h>

#define V4L2_BUFFERS 4
#define REOPEN_NS 1000000000LL
#define WAIT_MS 2000

struct vbuf {
	void *start;
	size_t length;
};

struct v4l2 {
	int fd;
	char path[256];
	uint32_t fourcc;
	int width, height, bytesperline;
	struct vbuf bufs[V4L2_BUFFERS];
	unsigned n_bufs;
	int streaming;
	int lost;            /* the device is gone; reopen pending */
	int64_t next_reopen_ns;
	uint8_t *argb;       /* libyuv's ARGB before the swap to RGBA */
	tjhandle tj;
};

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = v4l2_ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static void fourcc_str(uint32_t f, char out[5])
{
	for (int i = 0; i < 4; i++)
		out[i] = (char)((f >> (8 * i)) & 0xff);
	out[4] = 0;
}

static int ioctl_fail(struct v4l2 *v, const char *name, int r, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s: %s", v->path, name, strerror(-r));
	return r;
}

static void stop_and_unmap(struct v4l2 *v)
{
	enum v4l2_buf_type t = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	struct v4l2_requestbuffers rb = { .count = 0, .type = t, .memory = V4L2_MEMORY_MMAP };

	if (v->fd < 0)
		return;
	if (v->streaming)
		xioctl(v->fd, VIDIOC_STREAMOFF, &t);
	v->streaming = 0;
	for (unsigned i = 0; i < v->n_bufs; i++)
		if (v->bufs[i].start)
			v4l2_munmap(v->bufs[i].start, v->bufs[i].length);
	if (v->n_bufs)
		xioctl(v->fd, VIDIOC_REQBUFS, &rb);
	v->n_bufs = 0;
}

static void close_device(struct v4l2 *v)
{
	stop_and_unmap(v);
	if (v->fd >= 0)
		v4l2_close(v->fd);
	v->fd = -1;
}

static int check_caps(struct v4l2 *v, char *err, size_t errlen)
{
	struct v4l2_capability cap;
	uint32_t caps;
	int r = xioctl(v->fd, VIDIOC_QUERYCAP, &cap);

	if (r < 0)
		return ioctl_fail(v, "VIDIOC_QUERYCAP", r, err, errlen);
	caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
	if (!(caps & V4L2_CAP_VIDEO_CAPTURE) || !(caps & V4L2_CAP_STREAMING)) {
		snprintf(err, errlen, "%s: not a streaming capture device (%s)", v->path,
			 (const char *)cap.card);
		return -ENODEV;
	}
	return 0;
}

static int format_rank(uint32_t f, int big)
{
	switch (f) {
	case V4L2_PIX_FMT_MJPEG: return big ? 3 : 1;
	case V4L2_PIX_FMT_YUYV: return big ? 2 : 3;
	case V4L2_PIX_FMT_NV12: return 2;
	default: return 0;
	}
}

/* The best native format for the wanted size; 0 if none is supported. */
static uint32_t pick_format(struct v4l2 *v, int w, int h)
{
	struct v4l2_fmtdesc d = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	uint32_t best = 0;
	int big = (long)w * h > 640L * 480, best_rank = 0;

	for (d.index = 0; xioctl(v->fd, VIDIOC_ENUM_FMT, &d) == 0; d.index++) {
		int rank = d.flags & V4L2_FMT_FLAG_EMULATED ? 0 : format_rank(d.pixelformat, big);
		if (rank > best_rank) {
			best_rank = rank;
			best = d.pixelformat;
		}
	}
	return best;
}

static int set_format(struct v4l2 *v, int w, int h, char *err, size_t errlen)
{
	struct v4l2_format f = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	char name[5];
	int r;

	v->fourcc = pick_format(v, w, h);
	if (!v->fourcc) {
		snprintf(err, errlen, "%s: offers none of MJPEG, YUYV, NV12", v->path);
		return -EINVAL;
	}
	f.fmt.pix.width = (uint32_t)w;
	f.fmt.pix.height = (uint32_t)h;
	f.fmt.pix.pixelformat = v->fourcc;
	f.fmt.pix.field = V4L2_FIELD_NONE;
	r = xioctl(v->fd, VIDIOC_S_FMT, &f);
	if (r < 0)
		return ioctl_fail(v, "VIDIOC_S_FMT", r, err, errlen);
	if (f.fmt.pix.pixelformat != v->fourcc || f.fmt.pix.width < 16 || f.fmt.pix.height < 16 ||
	    f.fmt.pix.width > 8192 || f.fmt.pix.height > 8192) {
		fourcc_str(f.fmt.pix.pixelformat, name);
		snprintf(err, errlen, "%s: driver chose %s %ux%u", v->path, name,
			 f.fmt.pix.width, f.fmt.pix.height);
		return -EINVAL;
	}
	v->width = (int)f.fmt.pix.width;
	v->height = (int)f.fmt.pix.height;
	v->bytesperline = (int)f.fmt.pix.bytesperline;
	return 0;
}

/* S_PARM with the wanted rate; the driver's answer goes into the info. */
static void set_rate(struct v4l2 *v, struct capture *c)
{
	struct v4l2_streamparm p = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	int num = c->want.fps_num ? c->want.fps_num : 30, den = c->want.fps_den ? c->want.fps_den : 1;

	p.parm.capture.timeperframe.numerator = (uint32_t)den;
	p.parm.capture.timeperframe.denominator = (uint32_t)num;
	if (xioctl(v->fd, VIDIOC_S_PARM, &p) == 0 && p.parm.capture.timeperframe.numerator) {
		c->info.fps_num = (int)p.parm.capture.timeperframe.denominator;
		c->info.fps_den = (int)p.parm.capture.timeperframe.numerator;
	} else {
		c->info.fps_num = num;
		c->info.fps_den = den;
	}
}

static int map_and_stream(struct v4l2 *v, char *err, size_t errlen)
{
	struct v4l2_requestbuffers rb = { .count = V4L2_BUFFERS,
					  .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
					  .memory = V4L2_MEMORY_MMAP };
	enum v4l2_buf_type t = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	int r = xioctl(v->fd, VIDIOC_REQBUFS, &rb);

	if (r < 0)
		return ioctl_fail(v, "VIDIOC_REQBUFS", r, err, errlen);
	if (rb.count < 2 || rb.count > V4L2_BUFFERS) {
		snprintf(err, errlen, "%s: driver gave %u buffers", v->path, rb.count);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < rb.count; i++) {
		struct v4l2_buffer b = { .type = t, .memory = V4L2_MEMORY_MMAP, .index = i };
		r = xioctl(v->fd, VIDIOC_QUERYBUF, &b);
		if (r < 0)
			return ioctl_fail(v, "VIDIOC_QUERYBUF", r, err, errlen);
		v->bufs[i].length = b.length;
		v->bufs[i].start = v4l2_mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED,
					     v->fd, b.m.offset);
		if (v->bufs[i].start == MAP_FAILED) {
			v->bufs[i].start = NULL;
			return ioctl_fail(v, "mmap", -errno, err, errlen);
		}
		v->n_bufs = i + 1;
		r = xioctl(v->fd, VIDIOC_QBUF, &b);
		if (r < 0)
			return ioctl_fail(v, "VIDIOC_QBUF", r, err, errlen);
	}
	r = xioctl(v->fd, VIDIOC_STREAMON, &t);
	if (r < 0)
		return ioctl_fail(v, "VIDIOC_STREAMON", r, err, errlen);
	v->streaming = 1;
	return 0;
}

/* Opens, negotiates and starts streaming. On failure the device is closed. */
static int open_device(struct capture *c, struct v4l2 *v, char *err, size_t errlen)
{
	int w = c->want.width ? c->want.width : 640, h = c->want.height ? c->want.height : 480;
	int r;

	v->fd = v4l2_open(v->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (v->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", v->path, strerror(errno));
		return r;
	}
	r = check_caps(v, err, errlen);
	r = r ? r : set_format(v, w, h, err, errlen);
	if (r == 0)
		set_rate(v, c);
	r = r ? r : map_and_stream(v, err, errlen);
	if (r < 0)
		close_device(v);
	return r;
}

static int convert(struct v4l2 *v, const uint8_t *src, size_t used, struct capture_frame *f)
{
	int w = v->width, h = v->height, r = 0;

	switch (v->fourcc) {
	case V4L2_PIX_FMT_YUYV:
		if (used < (size_t)v->bytesperline * h)
			return -EBADMSG;
		r = YUY2ToARGB(src, v->bytesperline, v->argb, w * 4, w, h);
		r = r ? r : ARGBToABGR(v->argb, w * 4, f->rgba, f->stride, w, h);
		break;
	case V4L2_PIX_FMT_NV12:
		if (used < (size_t)v->bytesperline * h * 3 / 2)
			return -EBADMSG;
		r = NV12ToABGR(src, v->bytesperline, src + (size_t)v->bytesperline * h,
			       v->bytesperline, f->rgba, f->stride, w, h);
		break;
	case V4L2_PIX_FMT_MJPEG:
		if (tjDecompress2(v->tj, src, (unsigned long)used, f->rgba, w, f->stride, h,
				  TJPF_RGBA, 0) != 0 && tjGetErrorCode(v->tj) == TJERR_FATAL)
			return -EBADMSG;
		break;
	}
	return r ? -EINVAL : 0;
}

/* Hands the dequeued buffer back to the driver. */
static int requeue(struct v4l2 *v, struct v4l2_buffer *b)
{
	return xioctl(v->fd, VIDIOC_QBUF, b);
}

static int lost(struct capture *c, struct v4l2 *v, int r, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: camera lost (%s)", v->path, strerror(-r));
	close_device(v);
	v->lost = 1;
	v->next_reopen_ns = capture_now_ns() + REOPEN_NS;
	(void)c;
	return -ENODEV;
}

/* Waits for a buffer or an interrupt: 0 ready, -EINTR, -EAGAIN (timeout). */
static int wait_frame(struct capture *c, struct v4l2 *v)
{
	struct pollfd p[2] = { { .fd = v->fd, .events = POLLIN }, { .fd = c->wake_fd, .events = POLLIN } };
	int n = poll(p, 2, WAIT_MS);

	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	if (p[1].revents || atomic_load(&c->interrupted))
		return -EINTR;
	return n == 0 ? -EAGAIN : 0;
}

static int try_reopen(struct capture *c, struct v4l2 *v, char *err, size_t errlen)
{
	struct pollfd p = { .fd = c->wake_fd, .events = POLLIN };
	int64_t wait = v->next_reopen_ns - capture_now_ns();
	int r;

	if (wait > 0 && poll(&p, 1, (int)(wait / 1000000) + 1) > 0)
		return -EINTR;
	v->next_reopen_ns = capture_now_ns() + REOPEN_NS;
	r = open_device(c, v, err, errlen);
	if (r < 0)
		return -ENODEV;
	if (v->width != c->info.width || v->height != c->info.height) {
		snprintf(err, errlen, "%s: came back at %dx%d instead of %dx%d", v->path,
			 v->width, v->height, c->info.width, c->info.height);
		close_device(v);
		return -ENODEV;
	}
	v->lost = 0;
	return 0;
}

static int cam_read(struct capture *c, struct capture_frame *f, char *err, size_t errlen)
{
	struct v4l2 *v = c->priv;
	struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP };
	int r;

	if (v->lost && (r = try_reopen(c, v, err, errlen)) < 0)
		return r;
	for (;;) {
		r = wait_frame(c, v);
		if (r == -EINTR)
			return r;
		r = xioctl(v->fd, VIDIOC_DQBUF, &b);
		if (r == 0)
			break;
		if (r != -EAGAIN)
			return lost(c, v, r, err, errlen);
	}
	if (b.index >= v->n_bufs || b.flags & V4L2_BUF_FLAG_ERROR) {
		requeue(v, &b);
		snprintf(err, errlen, "%s: frame %u: the driver flagged it broken", v->path, b.sequence);
		return -EBADMSG;
	}
	r = convert(v, v->bufs[b.index].start, b.bytesused, f);
	f->sequence = b.sequence;
	f->timestamp_ns = capture_now_ns();
	if (requeue(v, &b) < 0 && r == 0)
		return lost(c, v, -ENODEV, err, errlen);
	if (r < 0)
		snprintf(err, errlen, "%s: frame %u: corrupt %s data (%u bytes)", v->path, b.sequence,
			 c->info.format, b.bytesused);
	return r;
}

static void cam_destroy(struct capture *c)
{
	struct v4l2 *v = c->priv;

	if (!v)
		return;
	close_device(v);
	if (v->tj)
		tjDestroy(v->tj);
	free(v->argb);
	free(v);
}

static const struct capture_impl cam_impl = {
	.read = cam_read,
	.destroy = cam_destroy,
};

int capture_v4l2_probe(const char *path)
{
	struct v4l2_capability cap;
	uint32_t caps;
	int fd = v4l2_open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = xioctl(fd, VIDIOC_QUERYCAP, &cap);
	v4l2_close(fd);
	if (r < 0)
		return r;
	caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
	/* a loopback device (also an output) may be our own virtual camera */
	if (!(caps & V4L2_CAP_VIDEO_CAPTURE) || !(caps & V4L2_CAP_STREAMING) ||
	    (caps & V4L2_CAP_VIDEO_OUTPUT))
		return -ENODEV;
	return 0;
}

int capture_v4l2_open(struct capture *c, const char *path, char *err, size_t errlen)
{
	struct v4l2 *v = calloc(1, sizeof(*v));
	int r;

	if (!v)
		return -ENOMEM;
	v->fd = -1;
	c->priv = v;
	c->impl = &cam_impl;
	snprintf(v->path, sizeof(v->path), "%s", path);
	r = open_device(c, v, err, errlen);
	if (r < 0)
		goto fail;
	v->argb = malloc((size_t)v->width * v->height * 4);
	v->tj = tjInitDecompress();
	if (!v->argb || !v->tj) {
		r = -ENOMEM;
		goto fail;
	}
	c->info.width = v->width;
	c->info.height = v->height;
	snprintf(c->info.name, sizeof(c->info.name), "%.63s", path);
	fourcc_str(v->fourcc, c->info.format);
	return 0;
fail:
	cam_destroy(c);
	c->priv = NULL;
	return r;
}
