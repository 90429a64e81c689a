/* DESIGN
 *
 * The v4l2loopback writer: single-planar mmap streaming (REQBUFS, QBUF,
 * DQBUF, STREAMON, STREAMOFF) with plain ioctl(). Not write(): v4l2loopback
 * 0.12.7 (Debian 12) does not count a producer that only write()s as a
 * writer, so once it closes, a device loaded with exclusive_caps=1 shows
 * neither output nor capture and no producer can attach again until the
 * module is reloaded (seen in the VM bench). Streaming is handled the same
 * way by every version: STREAMOFF and close on every exit path leave the
 * device free for the next producer, and a crash (no STREAMOFF) still
 * leaves it open to a producer of the same format.
 *
 * Pacing: a writer thread of the output queues one frame per period of the
 * frame rate, on a CLOCK_MONOTONIC schedule, repeating the newest frame
 * when no new one came (consumers see a steady rate whatever the camera or
 * inference do). Frames move through three buffers: the caller converts
 * into `staging`, then swaps it with `ready` under the lock; the writer
 * swaps `ready` with `front` under the lock when `fresh`, and copies
 * `front` into a device buffer outside it. Nobody waits for anybody but for
 * a pointer swap. While nobody reads (output_set_idle), the writer ticks
 * once a second: the device keeps a producer at almost no cost.
 */
#include "output-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <libyuv.h>
#include <linux/videodev2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "render.h"

#define NBUFFERS 4
#define IDLE_PERIOD_NS 1000000000LL

struct v4l2out {
	int fd;
	enum v4l2out_format format;
	int width, height;
	size_t frame_size;
	int64_t period_ns;
	uint8_t *row;           /* caller: one BGRA row (YUYV conversion) */
	uint8_t *staging;       /* caller: the frame being converted */
	struct {
		void *start;    /* mmapped, or MAP_FAILED */
		size_t length;
	} buffers[NBUFFERS];
	unsigned n_buffers;
	bool streaming;
	pthread_t thread;
	bool started;
	/* fields below protected by lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;    /* CLOCK_MONOTONIC; signalled on stop and kick */
	uint8_t *ready;         /* the newest frame */
	bool fresh;             /* ready not yet taken by the writer */
	bool stop;
	bool idle;              /* tick once a second */
	bool kick;              /* idle changed: tick now */
	/* writer thread only */
	uint8_t *front;         /* the frame queued at each tick */
	unsigned queued;        /* buffers queued once: the others are free */
	/* any thread */
	atomic_int error;       /* the last tick's error (negative errno), 0 */
	char path[128];
};

static int xioctl(int fd, unsigned long request, void *arg)
{
	int r;

	do
		r = ioctl(fd, request, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static uint32_t fourcc_of(enum v4l2out_format f)
{
	return f == V4L2OUT_YUYV ? V4L2_PIX_FMT_YUYV :
	       f == V4L2OUT_I420 ? V4L2_PIX_FMT_YUV420 : V4L2_PIX_FMT_GREY;
}

static size_t frame_size_of(enum v4l2out_format f, int w, int h)
{
	size_t n = (size_t)w * h;

	return f == V4L2OUT_YUYV ? 2 * n : (f == V4L2OUT_I420 ? n * 3 / 2 : n);
}

/* src (RGBA, or labels for GREY) into dst, the device's format. */
static void convert(struct v4l2out *v, const uint8_t *src, int stride, uint8_t *dst)
{
	int w = v->width, h = v->height;

	switch (v->format) {
	case V4L2OUT_YUYV:
		/* libyuv's ARGB is B, G, R, A in memory: swap R and B first */
		for (int y = 0; y < h; y++) {
			ABGRToARGB(src + (size_t)y * stride, w * 4, v->row, w * 4, w, 1);
			ARGBToYUY2(v->row, w * 4, dst + (size_t)y * w * 2, w * 2, w, 1);
		}
		break;
	case V4L2OUT_I420: {
		uint8_t *u = dst + (size_t)w * h, *vv = u + (size_t)w * h / 4;
		ABGRToI420(src, stride, dst, w, u, w / 2, vv, w / 2, w, h);
		break;
	}
	case V4L2OUT_GREY:
		for (int y = 0; y < h; y++)
			memcpy(dst + (size_t)y * w, src + (size_t)y * stride, (size_t)w);
		break;
	}
}

/* ---- writer thread ---- */

/* A free device buffer: one never queued, else one back from DQBUF
 * (waiting up to half a period). -EAGAIN when none came back.
 * v4l2loopback 0.12.7 always hands back the buffer just queued, so a reader
 * still copying it would see the next frame written over it: the buffers
 * are taken in turn instead (it accepts QBUF of any of them), which leaves
 * a reader n_buffers - 1 frame periods to copy a frame. The DQBUF still
 * paces us: it tells that the driver has a free buffer. */
static int free_buffer(struct v4l2out *v, unsigned *index)
{
	struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_MMAP };
	struct pollfd p = { .fd = v->fd, .events = POLLOUT };
	int r;

	if (v->queued < v->n_buffers) {
		*index = v->queued++;
		return 0;
	}
	r = xioctl(v->fd, VIDIOC_DQBUF, &b);
	if (r == -EAGAIN && poll(&p, 1, (int)(v->period_ns / 2000000)) > 0)
		r = xioctl(v->fd, VIDIOC_DQBUF, &b);
	if (r == 0 && b.index >= v->n_buffers)
		r = -EBADMSG;
	*index = v->queued++ % v->n_buffers;
	return r;
}

static void queue_front(struct v4l2out *v)
{
	struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_MMAP };
	unsigned index;
	int r = free_buffer(v, &index);

	if (r == -EAGAIN)
		return; /* the reader side holds every buffer: skip a tick */
	if (r == 0) {
		memcpy(v->buffers[index].start, v->front, v->frame_size);
		b.index = index;
		b.bytesused = (uint32_t)v->frame_size;
		b.field = V4L2_FIELD_NONE;
		r = xioctl(v->fd, VIDIOC_QBUF, &b);
	}
	atomic_store(&v->error, r);
}

static void add_ns(struct timespec *t, int64_t ns)
{
	int64_t total = t->tv_nsec + ns;

	t->tv_sec += total / 1000000000;
	t->tv_nsec = total % 1000000000;
}

static int64_t diff_ns(const struct timespec *a, const struct timespec *b)
{
	return (int64_t)(a->tv_sec - b->tv_sec) * 1000000000 + (a->tv_nsec - b->tv_nsec);
}

/* The next tick after next; from now when more than a period late. */
static void schedule(int64_t period_ns, struct timespec *next)
{
	struct timespec now;

	add_ns(next, period_ns);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (diff_ns(&now, next) > period_ns) {
		*next = now;
		add_ns(next, period_ns);
	}
}

static void *writer_main(void *arg)
{
	struct v4l2out *v = arg;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&v->lock);
	while (!v->stop) {
		if (v->fresh) {
			uint8_t *t = v->front;
			v->front = v->ready;
			v->ready = t;
			v->fresh = false;
		}
		int64_t period = v->idle ? IDLE_PERIOD_NS : v->period_ns;
		pthread_mutex_unlock(&v->lock);
		queue_front(v);
		schedule(period, &next);
		pthread_mutex_lock(&v->lock);
		while (!v->stop && !v->kick &&
		       pthread_cond_timedwait(&v->cond, &v->lock, &next) != ETIMEDOUT) {
			/* woken early: only stop and kick signal */
		}
		if (v->kick) {
			v->kick = false;
			clock_gettime(CLOCK_MONOTONIC, &next);
		}
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

/* ---- device set-up ---- */

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t len, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return r;
}

static int check_caps(struct v4l2out *v, char *err, size_t errlen)
{
	struct v4l2_capability cap;
	uint32_t caps;
	int r = xioctl(v->fd, VIDIOC_QUERYCAP, &cap);

	if (r < 0)
		return fail(err, errlen, r == -ENOTTY ? -ENODEV : r, "%s: not a V4L2 device: %s",
			    v->path, strerror(-r));
	caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
	if (!(caps & V4L2_CAP_VIDEO_OUTPUT))
		return fail(err, errlen, -ENODEV,
			    "%s (%.32s): not a video output (another writer attached?)", v->path,
			    (const char *)cap.card);
	if (!(caps & V4L2_CAP_STREAMING))
		return fail(err, errlen, -ENOTSUP, "%s (%.32s): no streaming I/O", v->path,
			    (const char *)cap.card);
	return 0;
}

static int set_format(struct v4l2out *v, char *err, size_t errlen)
{
	struct v4l2_format f = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT };
	uint32_t fourcc = fourcc_of(v->format);
	int r;

	f.fmt.pix.width = (uint32_t)v->width;
	f.fmt.pix.height = (uint32_t)v->height;
	f.fmt.pix.pixelformat = fourcc;
	f.fmt.pix.field = V4L2_FIELD_NONE;
	f.fmt.pix.bytesperline = (uint32_t)(v->format == V4L2OUT_YUYV ? 2 * v->width : v->width);
	f.fmt.pix.sizeimage = (uint32_t)v->frame_size;
	f.fmt.pix.colorspace = V4L2_COLORSPACE_SRGB;
	f.fmt.pix.ycbcr_enc = V4L2_YCBCR_ENC_601;
	f.fmt.pix.quantization = v->format == V4L2OUT_GREY ? V4L2_QUANTIZATION_FULL_RANGE :
							     V4L2_QUANTIZATION_LIM_RANGE;
	r = xioctl(v->fd, VIDIOC_S_FMT, &f);
	if (r < 0)
		return fail(err, errlen, r, "%s: VIDIOC_S_FMT %dx%d: %s%s", v->path, v->width,
			    v->height, strerror(-r),
			    r == -EBUSY ? " (another writer, or a reader holds the format)" : "");
	if (f.fmt.pix.width != (uint32_t)v->width || f.fmt.pix.height != (uint32_t)v->height ||
	    f.fmt.pix.pixelformat != fourcc || f.fmt.pix.sizeimage < v->frame_size)
		return fail(err, errlen, -EINVAL, "%s: the device chose %ux%u %.4s, not %dx%d %.4s",
			    v->path, f.fmt.pix.width, f.fmt.pix.height,
			    (const char *)&f.fmt.pix.pixelformat, v->width, v->height,
			    (const char *)&fourcc);
	return 0;
}

/* The output frame rate readers see; best effort (not every driver has it). */
static void set_rate(struct v4l2out *v, int fps_num, int fps_den)
{
	struct v4l2_streamparm p = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT };

	p.parm.output.timeperframe.numerator = (uint32_t)fps_den;
	p.parm.output.timeperframe.denominator = (uint32_t)fps_num;
	(void)xioctl(v->fd, VIDIOC_S_PARM, &p);
}

static int map_buffers(struct v4l2out *v, char *err, size_t errlen)
{
	struct v4l2_requestbuffers rb = {
		.count = NBUFFERS, .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_MMAP,
	};
	int r = xioctl(v->fd, VIDIOC_REQBUFS, &rb);

	if (r < 0)
		return fail(err, errlen, r, "%s: VIDIOC_REQBUFS: %s", v->path, strerror(-r));
	if (rb.count == 0)
		return fail(err, errlen, -ENOMEM, "%s: VIDIOC_REQBUFS: no buffers", v->path);
	v->n_buffers = rb.count < NBUFFERS ? rb.count : NBUFFERS;
	for (unsigned i = 0; i < v->n_buffers; i++) {
		struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT,
					 .memory = V4L2_MEMORY_MMAP, .index = i };
		r = xioctl(v->fd, VIDIOC_QUERYBUF, &b);
		if (r < 0)
			return fail(err, errlen, r, "%s: VIDIOC_QUERYBUF: %s", v->path, strerror(-r));
		if (b.length < v->frame_size)
			return fail(err, errlen, -EINVAL, "%s: %u-byte buffers for %zu-byte frames",
				    v->path, b.length, v->frame_size);
		v->buffers[i].length = b.length;
		v->buffers[i].start = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED,
					   v->fd, b.m.offset);
		if (v->buffers[i].start == MAP_FAILED)
			return fail(err, errlen, -errno, "%s: mmap: %s", v->path, strerror(errno));
	}
	return 0;
}

static int stream_on(struct v4l2out *v, char *err, size_t errlen)
{
	int type = V4L2_BUF_TYPE_VIDEO_OUTPUT, r = xioctl(v->fd, VIDIOC_STREAMON, &type);

	if (r < 0)
		return fail(err, errlen, r, "%s: VIDIOC_STREAMON: %s", v->path, strerror(-r));
	v->streaming = true;
	return 0;
}

/* The three frame buffers, the first frame in front. */
static int alloc_frames(struct v4l2out *v)
{
	uint8_t *rgba = NULL;

	v->row = malloc((size_t)v->width * 4);
	v->staging = malloc(v->frame_size);
	v->ready = malloc(v->frame_size);
	v->front = calloc(1, v->frame_size);
	if (v->format != V4L2OUT_GREY)
		rgba = malloc((size_t)v->width * v->height * 4);
	if (!v->row || !v->staging || !v->ready || !v->front ||
	    (v->format != V4L2OUT_GREY && !rgba)) {
		free(rgba);
		return -ENOMEM;
	}
	if (rgba) {
		render_splash(rgba, v->width * 4, v->width, v->height);
		convert(v, rgba, v->width * 4, v->front);
		free(rgba);
	}
	return 0;
}

static int start_writer(struct v4l2out *v)
{
	pthread_condattr_t ca;
	int r;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	r = pthread_cond_init(&v->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (r != 0)
		return -r;
	r = pthread_create(&v->thread, NULL, writer_main, v);
	if (r != 0) {
		pthread_cond_destroy(&v->cond);
		return -r;
	}
	v->started = true;
	return 0;
}

int v4l2out_open(const char *path, enum v4l2out_format format, int width, int height,
		 int fps_num, int fps_den, struct v4l2out **out, char *err, size_t errlen)
{
	struct v4l2out *v;
	int r;

	*out = NULL;
	if (fps_num <= 0 || fps_den <= 0)
		fps_num = 30, fps_den = 1;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->format = format;
	v->width = width;
	v->height = height;
	v->frame_size = frame_size_of(format, width, height);
	v->period_ns = (int64_t)1000000000 * fps_den / fps_num;
	snprintf(v->path, sizeof(v->path), "%s", path);
	pthread_mutex_init(&v->lock, NULL);
	for (unsigned i = 0; i < NBUFFERS; i++)
		v->buffers[i].start = MAP_FAILED;
	v->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (v->fd < 0) {
		r = fail(err, errlen, -errno, "%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	if ((r = check_caps(v, err, errlen)) < 0 || (r = set_format(v, err, errlen)) < 0)
		goto fail;
	set_rate(v, fps_num, fps_den);
	if ((r = map_buffers(v, err, errlen)) < 0 || (r = stream_on(v, err, errlen)) < 0)
		goto fail;
	if ((r = alloc_frames(v)) < 0 || (r = start_writer(v)) < 0) {
		fail(err, errlen, r, "%s: %s", path, strerror(-r));
		goto fail;
	}
	*out = v;
	return 0;
fail:
	v4l2out_close(v);
	return r;
}

int v4l2out_write(struct v4l2out *v, const uint8_t *src, int stride)
{
	uint8_t *t;

	convert(v, src, stride, v->staging);
	pthread_mutex_lock(&v->lock);
	t = v->ready;
	v->ready = v->staging;
	v->staging = t;
	v->fresh = true;
	pthread_mutex_unlock(&v->lock);
	int e = atomic_load(&v->error);
	return e < 0 ? e : 0;
}

void v4l2out_set_idle(struct v4l2out *v, int idle)
{
	pthread_mutex_lock(&v->lock);
	if (v->idle != (idle != 0)) {
		v->idle = idle != 0;
		v->kick = true;
		pthread_cond_signal(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
}

void v4l2out_close(struct v4l2out *v)
{
	if (!v)
		return;
	if (v->started) {
		pthread_mutex_lock(&v->lock);
		v->stop = true;
		pthread_cond_signal(&v->cond);
		pthread_mutex_unlock(&v->lock);
		pthread_join(v->thread, NULL);
		pthread_cond_destroy(&v->cond);
	}
	if (v->streaming) {
		int type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
		(void)xioctl(v->fd, VIDIOC_STREAMOFF, &type);
	}
	for (unsigned i = 0; i < NBUFFERS; i++)
		if (v->buffers[i].start != MAP_FAILED)
			munmap(v->buffers[i].start, v->buffers[i].length);
	if (v->fd >= 0)
		close(v->fd);
	pthread_mutex_destroy(&v->lock);
	free(v->row);
	free(v->staging);
	free(v->ready);
	free(v->front);
	free(v);
}
