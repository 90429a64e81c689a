/* Frame sources: a camera (V4L2), a YUV4MPEG2 file or pipe, a synthetic
 * test pattern, behind one interface.
 *
 * A source delivers frames converted to RGBA (R, G, B, A bytes in memory
 * order) into a buffer the caller owns, e.g. a slot of the frame ring.
 *
 * Threads: capture_read() is called by one thread at a time (the capture
 * thread); capture_interrupt() may be called from any thread and makes a
 * blocked or later capture_read() return -EINTR at once. Everything else is
 * for the thread that owns the source.
 */
#ifndef FACETD_CAPTURE_H
#define FACETD_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

struct capture;

/* A camera's pixel format. */
enum capture_format {
	CAPTURE_FORMAT_AUTO,  /* the source's own choice (v4l2.c: YUYV up to
			       * 640x480, MJPEG above, else NV12) */
	CAPTURE_FORMAT_YUYV,
	CAPTURE_FORMAT_MJPEG,
	CAPTURE_FORMAT_NV12,
};

struct capture_params {
	int width, height;   /* wanted size; 0: the source's own */
	int fps_num, fps_den; /* wanted rate; 0: the source's own */
	int realtime;        /* file sources: 1 = play at the file's rate, 0 = as fast as read */
	enum capture_format format; /* cameras: the pixel format wanted; one the camera
				     * does not give falls back to the source's own
				     * choice (info.format_fallback). Other sources
				     * ignore it. */
};

struct capture_info {
	char name[64];       /* "synthetic", "y4m:PATH", "/dev/video0", ... */
	int width, height;   /* size of the frames delivered */
	int fps_num, fps_den;
	char format[16];     /* what the source gives before conversion, e.g. "I420" */
	int file;            /* a file or pipe: it plays at its own rate (fps_* wanted
			      * is not applied) or as fast as read */
	int camera;          /* a device whose pixel format was negotiated */
	int format_fallback; /* a camera that did not give the format wanted:
			      * format is the source's own choice */
	char offered[32];    /* a camera: the formats it offers of those read,
			      * by capture_format_name, e.g. "yuyv, nv12" */
};

struct capture_frame {
	uint8_t *rgba;       /* caller's buffer: stride * height bytes; NULL: the
			      * frame is read (consumed) but not converted */
	int stride;
	uint64_t sequence;   /* from 0, as the source numbers frames */
	int64_t timestamp_ns; /* CLOCK_MONOTONIC when the frame was captured */
};

/* "yuyv", "mjpeg", "nv12" or "auto" to a format; -EINVAL for another name. */
int capture_format_parse(const char *name, enum capture_format *out);
/* The format's name, as capture_format_parse() takes it. */
const char *capture_format_name(enum capture_format f);

/* Opens a source by its spec: "synthetic", "y4m:PATH" ("y4m:-" = stdin),
 * "v4l2:/dev/videoN" (or just "/dev/videoN"), or "auto": the first camera
 * (a capture device that is not also an output), else "synthetic".
 * Returns a negative errno and a message naming the source and the problem
 * in err. */
int capture_open(const char *spec, const struct capture_params *want,
		 struct capture **out, char *err, size_t errlen);

/* Stops and frees; accepts NULL. */
void capture_close(struct capture *c);

const struct capture_info *capture_get_info(const struct capture *c);

/* Waits for the next frame and writes it into f->rgba (at least
 * info.width x info.height, f->stride bytes a row); with f->rgba NULL the
 * frame is taken from the source and dropped without the cost of its
 * conversion (sequence and timestamp are still set). Returns 0, -EINTR
 * after capture_interrupt(), -ENODATA at the end of a file, -ENODEV when a
 * device is gone, or another negative errno with a message in err (e.g. a
 * broken frame: the next call goes on with the following one). */
int capture_read(struct capture *c, struct capture_frame *f, char *err, size_t errlen);

/* Lets go of a camera (closes it: its LED goes off) until the next
 * capture_read(), which opens it again as after a loss (-ENODEV while it
 * cannot). Files and the synthetic source keep their place. Capture thread. */
void capture_release(struct capture *c);

/* Makes capture_read() return -EINTR until capture_resume(). Any thread. */
void capture_interrupt(struct capture *c);
void capture_resume(struct capture *c);

#endif
