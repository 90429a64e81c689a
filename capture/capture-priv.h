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
	/* Capture thread, optional: lets go of the device until the next read. */
	void (*release)(struct capture *c);
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

/* The format to ask a camera for at width x height, of the n it lists
 * (CAPTURE_FORMAT_AUTO for one not read here): want when listed, else the
 * best by rank: YUYV up to 640x480 and MJPEG above (where USB cameras give
 * YUYV at a few fps only), NV12 between; the first listed of equal rank.
 * CAPTURE_FORMAT_AUTO when none is read here. */
enum capture_format capture_format_choose(const enum capture_format *listed, size_t n,
					  int width, int height, enum capture_format want);
/* Writes the formats read here among the n listed, each once, as
 * "yuyv, nv12" (capture_format_name) into buf; "" when none. */
void capture_format_list(const enum capture_format *listed, size_t n, char *buf, size_t len);

/* Decodes one MJPEG buffer of len bytes into a width x height RGBA frame
 * (stride bytes a row) with tj, a TurboJPEG decompressor
 * (tjInitDecompress). -EBADMSG when it is not a JPEG of exactly that size
 * or cannot be decoded; a frame cut short decodes as far as it goes. */
int capture_mjpeg_decode(void *tj, const uint8_t *src, size_t len, int width,
			 int height, uint8_t *rgba, int stride);

/* Sleeps until the next frame is due at the source's rate; -EINTR when
 * interrupted meanwhile. */
int capture_pace(struct capture *c);

int64_t capture_now_ns(void);

#endif
