#include "v4l2-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <libv4l2.h>

static bool is_capture(const struct vdev *d)
{
	return d->type == V4L2_BUF_TYPE_VIDEO_CAPTURE;
}

int vdev_xioctl(int fd, unsigned long request, void *arg)
{
	int r;

	do
		r = v4l2_ioctl(fd, request, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

int vdev_ioctl_logged(struct vdev *d, unsigned long request, const char *name,
		      void *arg)
{
	int r = vdev_xioctl(d->fd, request, arg);

	if (r < 0)
		fprintf(stderr, "%s: %s: %s\n", d->path, name, strerror(-r));
	return r;
}

static int check_caps(struct vdev *d)
{
	struct v4l2_capability cap;
	uint32_t caps, need;
	int r;

	memset(&cap, 0, sizeof(cap));
	r = VDEV_IOCTL(d, VIDIOC_QUERYCAP, &cap);
	if (r < 0)
		return r;
	caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps
							  : cap.capabilities;
	need = V4L2_CAP_STREAMING |
	       (is_capture(d) ? V4L2_CAP_VIDEO_CAPTURE : V4L2_CAP_VIDEO_OUTPUT);
	if ((caps & need) != need) {
		fprintf(stderr, "%s: VIDIOC_QUERYCAP: '%s' (%s) is no %s streaming "
			"device (device caps 0x%08x)\n", d->path,
			(const char *)cap.card, (const char *)cap.driver,
			is_capture(d) ? "video capture" : "video output", caps);
		return -EOPNOTSUPP;
	}
	return 0;
}

int vdev_open(struct vdev *d, const char *path, enum v4l2_buf_type type)
{
	int r;

	memset(d, 0, sizeof(*d));
	d->path = path;
	d->type = type;
	d->fd = v4l2_open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (d->fd < 0) {
		r = -errno;
		fprintf(stderr, "%s: open: %s\n", path, strerror(-r));
		return r;
	}
	r = check_caps(d);
	if (r < 0)
		vdev_close(d);
	return r;
}

static void unmap_buffers(struct vdev *d)
{
	for (unsigned int i = 0; i < d->n_buffers; i++) {
		if (d->buffers[i].start)
			v4l2_munmap(d->buffers[i].start, d->buffers[i].length);
		d->buffers[i].start = NULL;
	}
	d->n_buffers = 0;
}

void vdev_close(struct vdev *d)
{
	if (d->fd < 0)
		return;
	if (d->streaming) {
		enum v4l2_buf_type type = d->type;

		vdev_xioctl(d->fd, VIDIOC_STREAMOFF, &type);
		d->streaming = false;
	}
	unmap_buffers(d);
	v4l2_close(d->fd);
	d->fd = -1;
}

int vdev_set_format(struct vdev *d, uint32_t fourcc, uint32_t width,
		    uint32_t height, uint32_t sizeimage)
{
	struct v4l2_format f;
	struct v4l2_pix_format *pix = &f.fmt.pix;
	char want[5], got[5];
	int r;

	memset(&f, 0, sizeof(f));
	f.type = d->type;
	pix->width = width;
	pix->height = height;
	pix->pixelformat = fourcc;
	pix->field = V4L2_FIELD_NONE;
	if (vdev_is_compressed(fourcc))
		pix->sizeimage = sizeimage;
	r = VDEV_IOCTL(d, VIDIOC_S_FMT, &f);
	if (r < 0)
		return r;
	if (pix->pixelformat != fourcc || pix->width != width ||
	    pix->height != height) {
		fprintf(stderr, "%s: VIDIOC_S_FMT: asked for %s %ux%u, the driver "
			"set %s %ux%u\n", d->path, vdev_fourcc_str(fourcc, want),
			width, height, vdev_fourcc_str(pix->pixelformat, got),
			pix->width, pix->height);
		return -EINVAL;
	}
	d->fmt = f;
	return 0;
}

int vdev_set_fps(struct vdev *d, unsigned int fps, double *actual)
{
	struct v4l2_streamparm p;
	struct v4l2_fract *tpf;
	int r;

	memset(&p, 0, sizeof(p));
	p.type = d->type;
	tpf = is_capture(d) ? &p.parm.capture.timeperframe
			    : &p.parm.output.timeperframe;
	tpf->numerator = 1;
	tpf->denominator = fps;
	*actual = 0;
	r = vdev_xioctl(d->fd, VIDIOC_S_PARM, &p);
	if (r == -ENOTTY)
		return r;
	if (r < 0) {
		fprintf(stderr, "%s: VIDIOC_S_PARM: %s\n", d->path, strerror(-r));
		return r;
	}
	if (tpf->numerator)
		*actual = (double)tpf->denominator / tpf->numerator;
	return 0;
}

static int map_buffer(struct vdev *d, unsigned int index)
{
	struct v4l2_buffer b;
	void *p;
	int r;

	memset(&b, 0, sizeof(b));
	b.type = d->type;
	b.memory = V4L2_MEMORY_MMAP;
	b.index = index;
	r = VDEV_IOCTL(d, VIDIOC_QUERYBUF, &b);
	if (r < 0)
		return r;
	p = v4l2_mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
		      b.m.offset);
	if (p == MAP_FAILED) {
		r = -errno;
		fprintf(stderr, "%s: mmap of buffer %u: %s\n", d->path, index,
			strerror(-r));
		return r;
	}
	d->buffers[index].start = p;
	d->buffers[index].length = b.length;
	return 0;
}

int vdev_map_buffers(struct vdev *d, unsigned int count)
{
	struct v4l2_requestbuffers rb;
	int r;

	memset(&rb, 0, sizeof(rb));
	rb.count = count;
	rb.type = d->type;
	rb.memory = V4L2_MEMORY_MMAP;
	r = VDEV_IOCTL(d, VIDIOC_REQBUFS, &rb);
	if (r < 0)
		return r;
	if (rb.count == 0 || rb.count > VDEV_MAX_BUFFERS) {
		fprintf(stderr, "%s: VIDIOC_REQBUFS: asked for %u buffers, got %u\n",
			d->path, count, rb.count);
		return -ENOMEM;
	}
	d->n_buffers = rb.count;
	for (unsigned int i = 0; i < rb.count; i++) {
		r = map_buffer(d, i);
		if (r < 0) {
			unmap_buffers(d);
			return r;
		}
	}
	return 0;
}

int vdev_queue(struct vdev *d, unsigned int index, uint32_t bytesused)
{
	struct v4l2_buffer b;

	memset(&b, 0, sizeof(b));
	b.type = d->type;
	b.memory = V4L2_MEMORY_MMAP;
	b.index = index;
	b.bytesused = bytesused;
	b.field = V4L2_FIELD_NONE;
	return vdev_xioctl(d->fd, VIDIOC_QBUF, &b);
}

int vdev_dequeue(struct vdev *d, struct v4l2_buffer *buf)
{
	memset(buf, 0, sizeof(*buf));
	buf->type = d->type;
	buf->memory = V4L2_MEMORY_MMAP;
	return vdev_xioctl(d->fd, VIDIOC_DQBUF, buf);
}

int vdev_stream(struct vdev *d, bool on)
{
	enum v4l2_buf_type type = d->type;
	int r;

	if (on)
		r = VDEV_IOCTL(d, VIDIOC_STREAMON, &type);
	else
		r = VDEV_IOCTL(d, VIDIOC_STREAMOFF, &type);
	if (r == 0)
		d->streaming = on;
	return r;
}

int vdev_wait(struct vdev *d, int timeout_ms)
{
	struct pollfd p = {
		.fd = d->fd,
		.events = is_capture(d) ? POLLIN : POLLOUT,
	};
	int r = poll(&p, 1, timeout_ms);

	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

uint32_t vdev_fourcc(const char *s)
{
	if (strlen(s) != 4)
		return 0;
	return v4l2_fourcc(s[0], s[1], s[2], s[3]);
}

const char *vdev_fourcc_str(uint32_t fourcc, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)((fourcc >> (8 * i)) & 0xff);

		out[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	out[4] = '\0';
	return out;
}

bool vdev_is_compressed(uint32_t fourcc)
{
	return fourcc == V4L2_PIX_FMT_MJPEG || fourcc == V4L2_PIX_FMT_JPEG;
}

int vdev_parse_size(const char *s, uint32_t *width, uint32_t *height)
{
	unsigned int w, h;
	char end;

	if (sscanf(s, "%ux%u%c", &w, &h, &end) != 2 || w == 0 || h == 0)
		return -EINVAL;
	*width = w;
	*height = h;
	return 0;
}

int vdev_touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

double vdev_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
