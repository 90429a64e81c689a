/* Backends of output.c other than Y4M files. */
#ifndef FACETD_OUTPUT_PRIV_H
#define FACETD_OUTPUT_PRIV_H

#include <stddef.h>
#include <stdint.h>

/* A v4l2loopback device (v4l2out.c, V4L2 builds). */
enum v4l2out_format { V4L2OUT_YUYV, V4L2OUT_I420, V4L2OUT_GREY };

struct v4l2out;

/* Opens path, sets the format and frame rate, and starts the writer
 * thread, which writes a first frame at once (the splash, or an empty
 * label map). Negative errno with a message naming the device. */
int v4l2out_open(const char *path, enum v4l2out_format format, int width, int height,
		 int fps_num, int fps_den, struct v4l2out **out, char *err, size_t errlen);
/* Converts a frame (RGBA, or labels for GREY) and hands it to the writer
 * thread. One thread at a time. -EIO while the device refuses writes. */
int v4l2out_write(struct v4l2out *v, const uint8_t *src, int stride);
/* Ticks once a second (idle) or at the frame rate again. Any thread. */
void v4l2out_set_idle(struct v4l2out *v, int idle);
/* Stops the writer, STREAMOFF, closes; accepts NULL. */
void v4l2out_close(struct v4l2out *v);

#endif
