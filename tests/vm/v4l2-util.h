/*
 * Shared helpers of the VM test programs: one V4L2 device opened through
 * libv4l2 (O_NONBLOCK | O_CLOEXEC), single-planar mmap streaming, poll.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure. Functions marked "logs" print one line naming the device and the
 * failing ioctl to stderr; the others leave reporting to the caller, because
 * some of their errors (EAGAIN, ENODEV after an unplug) are expected.
 * Single-threaded: a struct vdev belongs to one thread.
 */
#ifndef FACETD_TESTS_VM_V4L2_UTIL_H
#define FACETD_TESTS_VM_V4L2_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/videodev2.h>

#define VDEV_MAX_BUFFERS 8

struct vdev_buffer {
	void *start;		/* v4l2_mmap()ed, or NULL */
	size_t length;
};

struct vdev {
	int fd;			/* -1 when closed */
	const char *path;	/* borrowed; for messages */
	enum v4l2_buf_type type;	/* VIDEO_CAPTURE or VIDEO_OUTPUT */
	struct v4l2_format fmt;	/* as the driver set it */
	struct vdev_buffer buffers[VDEV_MAX_BUFFERS];
	unsigned int n_buffers;
	bool streaming;
};

/* ioctl through libv4l2, retried on EINTR. */
int vdev_xioctl(int fd, unsigned long request, void *arg);

/* Like vdev_xioctl on d, and logs a failure as "<path>: <NAME>: <error>". */
int vdev_ioctl_logged(struct vdev *d, unsigned long request, const char *name,
		      void *arg);
#define VDEV_IOCTL(d, request, arg) \
	vdev_ioctl_logged((d), (request), #request, (arg))

/* Opens path and checks that it can stream in the direction of type (device_caps
 * preferred when present). Logs. */
int vdev_open(struct vdev *d, const char *path, enum v4l2_buf_type type);

/* STREAMOFF (errors ignored), unmaps the buffers, closes. Accepts a closed or
 * half-opened d. */
void vdev_close(struct vdev *d);

/* S_FMT; fails with -EINVAL when the driver picked another size or format.
 * For compressed formats sizeimage is a request (0: the driver's choice).
 * Logs. */
int vdev_set_format(struct vdev *d, uint32_t fourcc, uint32_t width,
		    uint32_t height, uint32_t sizeimage);

/* S_PARM with 1/fps; *actual gets the frame rate the driver chose (0 when it
 * does not tell). -ENOTTY when the driver has no S_PARM. Logs other errors. */
int vdev_set_fps(struct vdev *d, unsigned int fps, double *actual);

/* REQBUFS(count, MMAP), QUERYBUF and mmap of each. Logs. */
int vdev_map_buffers(struct vdev *d, unsigned int count);

/* QBUF of buffer index with bytesused (0 for capture). Not logged. */
int vdev_queue(struct vdev *d, unsigned int index, uint32_t bytesused);

/* DQBUF into *buf; -EAGAIN when none is ready. Not logged. */
int vdev_dequeue(struct vdev *d, struct v4l2_buffer *buf);

/* STREAMON / STREAMOFF. Logs. */
int vdev_stream(struct vdev *d, bool on);

/* Waits up to timeout_ms for a buffer to dequeue (POLLIN for capture, POLLOUT
 * for output). 0: ready, or POLLERR / POLLHUP set (DQBUF then tells the
 * error); -ETIMEDOUT; another -errno from poll. Not logged. */
int vdev_wait(struct vdev *d, int timeout_ms);

/* "YUYV" -> V4L2_PIX_FMT_YUYV; 0 when s is not four characters. */
uint32_t vdev_fourcc(const char *s);

/* Writes the four characters of fourcc and a NUL into out; returns out. */
const char *vdev_fourcc_str(uint32_t fourcc, char out[5]);

/* True for the compressed formats these tests use (MJPG, JPEG). */
bool vdev_is_compressed(uint32_t fourcc);

/* Parses "640x480". -EINVAL when malformed. */
int vdev_parse_size(const char *s, uint32_t *width, uint32_t *height);

/* Creates an empty file at path (a "ready" marker for scripts). */
int vdev_touch(const char *path);

/* Monotonic time in seconds. */
double vdev_now(void);

#endif
