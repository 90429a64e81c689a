/* The capture subsystem's internals: the backend vtable. */
#ifndef FACETD_CAPTURE_PRIV_H
#define FACETD_CAPTURE_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>

#include "capture.h"

struct capture_impl {
	/* Capture thread: the next frame into f (see capture_read). */
	int (*read)(struct capture *c, struct capture_frame *f, char *err, size_t errlen);
	/* Owner thread: frees the backend's state. */
	void (*destroy)(struct capture *c);
};

struct capture {
	const struct capture_impl *impl;
	struct capture_info info;
	struct capture_params want;
	int wake_fd;            /* eventfd: readable while interrupted */
	atomic_bool interrupted;
	uint64_t frames;        /* frames delivered so far */
	int64_t next_due_ns;    /* pacing of file and synthetic sources */
	void *priv;             /* backend state */
};

int capture_synthetic_open(struct capture *c, char *err, size_t errlen);
/* 0 when path is a streaming capture device that is not also an output. */
int capture_v4l2_probe(const char *path);
int capture_v4l2_open(struct capture *c, const char *path, char *err, size_t errlen);
int capture_y4m_open(struct capture *c, const char *path, char *err, size_t errlen);

/* Sleeps until the next frame is due at the source's rate; -EINTR when
 * interrupted meanwhile. */
int capture_pace(struct capture *c);

int64_t capture_now_ns(void);

#endif
