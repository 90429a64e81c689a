#include "capture-priv.h"

#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

int64_t capture_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* "auto": the first /dev/videoN that can capture, else the test pattern. */
static const char *auto_source(void)
{
#if HAVE_V4L2
	static char path[32];

	for (int i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "/dev/video%d", i);
		if (access(path, F_OK) == 0 && capture_v4l2_probe(path) == 0)
			return path;
	}
#endif
	return "synthetic";
}

static int open_v4l2(struct capture *c, const char *path, char *err, size_t errlen)
{
#if HAVE_V4L2
	return capture_v4l2_open(c, path, err, errlen);
#else
	snprintf(err, errlen, "%s: this build has no V4L2 support (-Dv4l2=enabled)", path);
	return -ENOTSUP;
#endif
}

int capture_open(const char *spec, const struct capture_params *want,
		 struct capture **out, char *err, size_t errlen)
{
	struct capture *c;
	int r;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (want)
		c->want = *want;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0) {
		r = -errno;
		free(c);
		return r;
	}
	if (strcmp(spec, "auto") == 0)
		spec = auto_source();
	if (strcmp(spec, "synthetic") == 0) {
		r = capture_synthetic_open(c, err, errlen);
	} else if (strncmp(spec, "y4m:", 4) == 0) {
		r = capture_y4m_open(c, spec + 4, err, errlen);
	} else if (strncmp(spec, "v4l2:", 5) == 0 || strncmp(spec, "/dev/", 5) == 0) {
		r = open_v4l2(c, spec[0] == '/' ? spec : spec + 5, err, errlen);
	} else {
		snprintf(err, errlen, "%s: unknown source (synthetic, y4m:PATH or v4l2:DEVICE)", spec);
		r = -EINVAL;
	}
	if (r < 0) {
		close(c->wake_fd);
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

void capture_close(struct capture *c)
{
	if (!c)
		return;
	if (c->impl && c->impl->destroy)
		c->impl->destroy(c);
	close(c->wake_fd);
	free(c);
}

const struct capture_info *capture_get_info(const struct capture *c)
{
	return &c->info;
}

int capture_read(struct capture *c, struct capture_frame *f, char *err, size_t errlen)
{
	int r;

	if (atomic_load(&c->interrupted))
		return -EINTR;
	if (f->rgba && f->stride < c->info.width * 4)
		return -EINVAL;
	r = c->impl->read(c, f, err, errlen);
	if (r == 0)
		c->frames++;
	return r;
}

void capture_release(struct capture *c)
{
	if (c->impl->release)
		c->impl->release(c);
}

void capture_interrupt(struct capture *c)
{
	uint64_t one = 1;

	atomic_store(&c->interrupted, true);
	if (write(c->wake_fd, &one, sizeof(one)) < 0) {
		/* The counter is already set: the fd stays readable. */
	}
}

void capture_resume(struct capture *c)
{
	uint64_t v;

	atomic_store(&c->interrupted, false);
	if (read(c->wake_fd, &v, sizeof(v)) < 0) {
		/* Nothing was pending. */
	}
}

int capture_pace(struct capture *c)
{
	int64_t now = capture_now_ns(), period;
	struct pollfd p = { .fd = c->wake_fd, .events = POLLIN };

	if (!c->want.realtime || c->info.fps_num <= 0)
		return 0;
	period = (int64_t)1000000000 * c->info.fps_den / c->info.fps_num;
	if (c->next_due_ns == 0 || now - c->next_due_ns > 4 * period)
		c->next_due_ns = now; /* first frame, or we fell far behind: restart */
	while (now < c->next_due_ns) {
		int ms = (int)((c->next_due_ns - now + 999999) / 1000000);
		if (poll(&p, 1, ms) > 0 || atomic_load(&c->interrupted))
			return -EINTR;
		now = capture_now_ns();
	}
	c->next_due_ns += period;
	return 0;
}
