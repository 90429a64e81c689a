/* V4L2 cameras through libv4l2: mmap streaming of YUYV, NV12 or MJPEG,
 * converted to RGBA in the capture thread (libyuv; MJPEG by TurboJPEG).
 *
 * libv4l2's own format conversion is disabled (v4l2_fd_open with
 * V4L2_DISABLE_CONVERSION): with it, a camera whose formats libv4lconvert
 * knows lists only the emulated ones (an NV12-only camera: RGB3, BGR3, YU12,
 * YV12) and frames would be converted twice. The device's own formats are
 * negotiated and converted here.
 *
 * Negotiation: the wanted size (default 640x480) and rate (default 30);
 * the wanted format when the device lists it natively, else (or without
 * one) capture_format_choose()'s rank: MJPEG above 640x480 (where USB
 * cameras give YUYV at a few fps only), YUYV or NV12 otherwise. The driver
 * may adjust the size and rate; what was chosen is in the info.
 *
 * A camera that vanishes (ENODEV, unplug, suspend) makes capture_read()
 * return -ENODEV; later calls try to reopen it at most once a second and
 * deliver frames again when it is back. A stream that fails while the
 * device stays (VIDIOC_DQBUF or VIDIOC_QBUF refused with another error: a
 * fatal streaming error) makes it return -EIO once, and the stream is
 * restarted the same way.
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
#define MAX_FORMATS 64
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
	int fallback;        /* the wanted format was not to be had */
	char offered[32];    /* capture_format_list() of the native formats */
	struct vbuf bufs[V4L2_BUFFERS];
	unsigned n_bufs;
	int streaming;
	unsigned long long dequeued; /* buffers taken from the driver: frame numbers */
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

/* Opens a device for libv4l2 without its conversion layer; fd or -errno. */
static int open_native(const char *path)
{
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	errno = 0;
	if (v4l2_fd_open(fd, V4L2_DISABLE_CONVERSION) < 0) {
		r = errno ? -errno : -ENODEV;
		close(fd); /* left open by v4l2_fd_open on failure */
		return r;
	}
	return fd;
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

/* CAPTURE_FORMAT_AUTO for a format not read here. */
static enum capture_format from_fourcc(uint32_t f)
{
	switch (f) {
	case V4L2_PIX_FMT_YUYV: return CAPTURE_FORMAT_YUYV;
	case V4L2_PIX_FMT_MJPEG: return CAPTURE_FORMAT_MJPEG;
	case V4L2_PIX_FMT_NV12: return CAPTURE_FORMAT_NV12;
	default: return CAPTURE_FORMAT_AUTO;
	}
}

static uint32_t to_fourcc(enum capture_format f)
{
	switch (f) {
	case CAPTURE_FORMAT_YUYV: return V4L2_PIX_FMT_YUYV;
	case CAPTURE_FORMAT_MJPEG: return V4L2_PIX_FMT_MJPEG;
	case CAPTURE_FORMAT_NV12: return V4L2_PIX_FMT_NV12;
	default: return 0;
	}
}

/* The device's native formats in its order, as capture formats; how many. */
static size_t list_native(struct v4l2 *v, enum capture_format *out, size_t max)
{
	struct v4l2_fmtdesc d = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };

	for (d.index = 0; d.index < max && xioctl(v->fd, VIDIOC_ENUM_FMT, &d) == 0; d.index++)
		out[d.index] = d.flags & V4L2_FMT_FLAG_EMULATED ? CAPTURE_FORMAT_AUTO
								: from_fourcc(d.pixelformat);
	return d.index;
}

/* "YU12 RGB3 ...": the formats the device lists, for a message. */
static void list_formats(struct v4l2 *v, char *buf, size_t len)
{
	struct v4l2_fmtdesc d = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	size_t n = 0;
	char name[5];

	buf[0] = 0;
	for (d.index = 0; n + 6 < len && xioctl(v->fd, VIDIOC_ENUM_FMT, &d) == 0; d.index++) {
		fourcc_str(d.pixelformat, name);
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? " " : "", name);
	}
	if (!n)
		snprintf(buf, len, "nothing");
}

/* Bytes a row at least, for the formats whose rows are read. */
static int min_bytesperline(uint32_t fourcc, int w)
{
	return fourcc == V4L2_PIX_FMT_YUYV ? 2 * w : (fourcc == V4L2_PIX_FMT_NV12 ? w : 0);
}

static int set_format(struct v4l2 *v, int w, int h, enum capture_format want, char *err,
		      size_t errlen)
{
	struct v4l2_format f = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	enum capture_format listed[MAX_FORMATS];
	size_t n = list_native(v, listed, MAX_FORMATS);
	char name[5], asked[5], offered[128];
	int r;

	capture_format_list(listed, n, v->offered, sizeof(v->offered));
	v->fourcc = to_fourcc(capture_format_choose(listed, n, w, h, want));
	if (!v->fourcc) {
		list_formats(v, offered, sizeof(offered));
		snprintf(err, errlen, "%s: offers none of MJPEG, YUYV, NV12 (it lists: %s)",
			 v->path, offered);
		return -EINVAL;
	}
	f.fmt.pix.width = (uint32_t)w;
	f.fmt.pix.height = (uint32_t)h;
	f.fmt.pix.pixelformat = v->fourcc;
	f.fmt.pix.field = V4L2_FIELD_NONE;
	r = xioctl(v->fd, VIDIOC_S_FMT, &f);
	if (r < 0)
		return ioctl_fail(v, "VIDIOC_S_FMT", r, err, errlen);
	/* the driver may answer with another format: fine if it is one we take */
	if (from_fourcc(f.fmt.pix.pixelformat) == CAPTURE_FORMAT_AUTO || f.fmt.pix.width < 16 ||
	    f.fmt.pix.height < 16 || f.fmt.pix.width > 8192 || f.fmt.pix.height > 8192) {
		fourcc_str(f.fmt.pix.pixelformat, name);
		fourcc_str(v->fourcc, asked);
		snprintf(err, errlen, "%s: asked for %s %dx%d, the driver set %s %ux%u", v->path,
			 asked, w, h, name, f.fmt.pix.width, f.fmt.pix.height);
		return -EINVAL;
	}
	v->fourcc = f.fmt.pix.pixelformat;
	v->fallback = want != CAPTURE_FORMAT_AUTO && from_fourcc(v->fourcc) != want;
	v->width = (int)f.fmt.pix.width;
	v->height = (int)f.fmt.pix.height;
	v->bytesperline = (int)f.fmt.pix.bytesperline;
	if (v->bytesperline < min_bytesperline(v->fourcc, v->width))
		v->bytesperline = min_bytesperline(v->fourcc, v->width);
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

	v->fd = open_native(v->path);
	if (v->fd < 0) {
		r = v->fd;
		v->fd = -1;
		snprintf(err, errlen, "%s: cannot open: %s", v->path, strerror(-r));
		return r;
	}
	r = check_caps(v, err, errlen);
	r = r ? r : set_format(v, w, h, c->want.format, err, errlen);
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
		return capture_mjpeg_decode(v->tj, src, used, w, h, f->rgba, f->stride);
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

/* The stream broke but the device stays (a fatal streaming error, a buffer
 * the driver would not take back): closed like a lost camera and opened
 * again by the next read, at most once a second. */
static int stream_failed(struct v4l2 *v, const char *call, int r, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s: %s; restarting the stream", v->path, call, strerror(-r));
	close_device(v);
	v->lost = 1;
	v->next_reopen_ns = capture_now_ns() + REOPEN_NS;
	return -EIO;
}

/* A refused VIDIOC_DQBUF or VIDIOC_QBUF: the device is gone, or its stream. */
static int queue_failed(struct capture *c, struct v4l2 *v, const char *call, int r, char *err,
			size_t errlen)
{
	return r == -ENODEV ? lost(c, v, r, err, errlen) : stream_failed(v, call, r, err, errlen);
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

/* Why frame n (its buffer b) could not be read, into err: a JPEG of another
 * size than the stream's (a loopback camera's writer changed its size: the
 * driver keeps the format its reader set) or corrupt data. Frames are named
 * by their number in facetd's count and the driver's sequence number
 * (v4l2loopback's stays 0). */
static void frame_error(struct capture *c, struct v4l2 *v, const struct v4l2_buffer *b,
			unsigned long long n, char *err, size_t errlen)
{
	/* TurboJPEG may accept a header cut short before its size and leave
	 * these as they were */
	int w = 0, h = 0, subsamp, colorspace;

	if (v->fourcc == V4L2_PIX_FMT_MJPEG &&
	    tjDecompressHeader3(v->tj, v->bufs[b->index].start, b->bytesused, &w, &h, &subsamp,
				&colorspace) == 0 &&
	    w > 0 && h > 0 && (w != v->width || h != v->height))
		snprintf(err, errlen,
			 "%s: frame %llu (sequence %u): a %dx%d JPEG in a %dx%d stream: the camera "
			 "changed its size; dropped (facetd keeps %dx%d)",
			 v->path, n, b->sequence, w, h, v->width, v->height, v->width, v->height);
	else
		snprintf(err, errlen, "%s: frame %llu (sequence %u): corrupt %s data (%u bytes)",
			 v->path, n, b->sequence, c->info.format, b->bytesused);
}

static int cam_read(struct capture *c, struct capture_frame *f, char *err, size_t errlen)
{
	struct v4l2 *v = c->priv;
	struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP };
	unsigned long long n;
	int r, q;

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
			return queue_failed(c, v, "VIDIOC_DQBUF", r, err, errlen);
	}
	n = ++v->dequeued;
	if (b.index >= v->n_bufs || b.flags & V4L2_BUF_FLAG_ERROR) {
		r = requeue(v, &b);
		if (r < 0)
			return queue_failed(c, v, "VIDIOC_QBUF", r, err, errlen);
		/* (its sequence number may be 0: vivid's is) */
		snprintf(err, errlen, "%s: a frame the driver flagged broken (V4L2_BUF_FLAG_ERROR)",
			 v->path);
		return -EBADMSG;
	}
	r = f->rgba ? convert(v, v->bufs[b.index].start, b.bytesused, f) : 0;
	f->sequence = b.sequence;
	f->timestamp_ns = capture_now_ns();
	if (r < 0) /* (before the buffer goes back) */
		frame_error(c, v, &b, n, err, errlen);
	/* a buffer not queued again is lost to the stream, which would starve */
	q = requeue(v, &b);
	if (q < 0)
		return queue_failed(c, v, "VIDIOC_QBUF", q, err, errlen);
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

/* Closed as if lost, with the reopen due at once. */
static void cam_release(struct capture *c)
{
	struct v4l2 *v = c->priv;

	if (v->lost)
		return;
	close_device(v);
	v->lost = 1;
	v->next_reopen_ns = 0;
}

static const struct capture_impl cam_impl = {
	.read = cam_read,
	.destroy = cam_destroy,
	.release = cam_release,
};

int capture_v4l2_probe(const char *path)
{
	struct v4l2_capability cap;
	uint32_t caps;
	int fd = open_native(path), r;

	if (fd < 0)
		return fd;
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
	c->info.camera = 1;
	c->info.format_fallback = v->fallback;
	snprintf(c->info.offered, sizeof(c->info.offered), "%s", v->offered);
	return 0;
fail:
	cam_destroy(c);
	c->priv = NULL;
	return r;
}
