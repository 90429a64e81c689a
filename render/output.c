/* Outputs of composed frames. Here: YUV4MPEG2 files ("y4m:PATH", "y4m:-"
 * for stdout), 4:2:0 or mono (label maps), written frame by frame; and the
 * dispatch to the v4l2loopback writer ("v4l2:PATH", v4l2out.c). */
#include "render.h"

#include <errno.h>
#include <libyuv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "output-priv.h"

struct output {
	FILE *f;
	int own;
	int width, height;
	int labels;            /* a label-map output */
	uint8_t *yuv;          /* I420 frame */
	uint64_t frames;
	struct v4l2out *v4l2;  /* a v4l2 output: the fields above unused */
	char name[256];
};

int output_parse_pixfmt(const char *name, enum output_pixfmt *fmt)
{
	if (strcmp(name, "yuyv") == 0)
		*fmt = OUTPUT_YUYV;
	else if (strcmp(name, "i420") == 0)
		*fmt = OUTPUT_I420;
	else
		return -EINVAL;
	return 0;
}

static int open_v4l2(struct output *o, const char *path, enum v4l2out_format fmt,
		     int fps_num, int fps_den, char *err, size_t errlen)
{
#if HAVE_V4L2
	return v4l2out_open(path, fmt, o->width, o->height, fps_num, fps_den, &o->v4l2, err,
			    errlen);
#else
	snprintf(err, errlen, "%s: built without V4L2 output", o->name);
	return -ENOTSUP;
#endif
}

static int open_y4m(struct output *o, const char *path, int fps_num, int fps_den,
		    char *err, size_t errlen)
{
	int w = o->width, h = o->height;

	if (!o->labels)
		o->yuv = malloc((size_t)w * h * 3 / 2);
	o->own = strcmp(path, "-") != 0;
	o->f = o->own ? fopen(path, "wbe") : stdout;
	if ((!o->labels && !o->yuv) || !o->f) {
		int r = o->f ? -ENOMEM : -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	fprintf(o->f, "YUV4MPEG2 W%d H%d F%d:%d Ip A1:1 %s\n", w, h,
		fps_num > 0 ? fps_num : 25, fps_den > 0 ? fps_den : 1,
		o->labels ? "Cmono" : "C420jpeg");
	return 0;
}

static int open_any(const char *spec, enum v4l2out_format fmt, int width, int height,
		    int fps_num, int fps_den, struct output **out, char *err, size_t errlen)
{
	int v4l2 = strncmp(spec, "v4l2:", 5) == 0, labels = fmt == V4L2OUT_GREY;
	struct output *o;
	int r;

	*out = NULL;
	if (!v4l2 && strncmp(spec, "y4m:", 4) != 0) {
		snprintf(err, errlen, "%s: unknown output (y4m:PATH, v4l2:DEVICE)", spec);
		return -EINVAL;
	}
	if (width <= 0 || height <= 0 || (!labels && (width | height) & 1)) {
		snprintf(err, errlen, "%s: %dx%d: width and height must be even", spec, width, height);
		return -EINVAL;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->width = width;
	o->height = height;
	o->labels = labels;
	snprintf(o->name, sizeof(o->name), "%s", spec);
	if (v4l2)
		r = open_v4l2(o, spec + 5, fmt, fps_num, fps_den, err, errlen);
	else
		r = open_y4m(o, spec + 4, fps_num, fps_den, err, errlen);
	if (r < 0) {
		output_close(o);
		return r;
	}
	*out = o;
	return 0;
}

int output_open(const char *spec, int width, int height, int fps_num, int fps_den,
		struct output **out, char *err, size_t errlen)
{
	return open_any(spec, V4L2OUT_YUYV, width, height, fps_num, fps_den, out, err, errlen);
}

int output_open_format(const char *spec, enum output_pixfmt fmt, int width, int height,
		       int fps_num, int fps_den, struct output **out, char *err, size_t errlen)
{
	return open_any(spec, fmt == OUTPUT_I420 ? V4L2OUT_I420 : V4L2OUT_YUYV, width, height,
			fps_num, fps_den, out, err, errlen);
}

int output_open_labels(const char *spec, int width, int height, int fps_num, int fps_den,
		       struct output **out, char *err, size_t errlen)
{
	return open_any(spec, V4L2OUT_GREY, width, height, fps_num, fps_den, out, err, errlen);
}

int output_write(struct output *o, const uint8_t *rgba, int stride)
{
	int w = o->width, h = o->height;
	uint8_t *y = o->yuv, *u = y + (size_t)w * h, *v = u + (size_t)w * h / 4;

	if (o->labels)
		return -EINVAL;
#if HAVE_V4L2
	if (o->v4l2)
		return v4l2out_write(o->v4l2, rgba, stride);
#endif
	ABGRToI420(rgba, stride, y, w, u, w / 2, v, w / 2, w, h);
	errno = 0;
	if (fputs("FRAME\n", o->f) < 0 || fwrite(o->yuv, 1, (size_t)w * h * 3 / 2, o->f) !=
	    (size_t)w * h * 3 / 2)
		return errno ? -errno : -EIO;
	o->frames++;
	return 0;
}

int output_write_labels(struct output *o, const uint8_t *labels, int stride)
{
	if (!o->labels)
		return -EINVAL;
#if HAVE_V4L2
	if (o->v4l2)
		return v4l2out_write(o->v4l2, labels, stride);
#endif
	errno = 0;
	if (fputs("FRAME\n", o->f) < 0)
		return errno ? -errno : -EIO;
	for (int y = 0; y < o->height; y++)
		if (fwrite(labels + (size_t)y * stride, 1, (size_t)o->width, o->f) != (size_t)o->width)
			return errno ? -errno : -EIO;
	o->frames++;
	return 0;
}

void output_set_idle(struct output *o, int idle)
{
#if HAVE_V4L2
	if (o->v4l2)
		v4l2out_set_idle(o->v4l2, idle);
#else
	(void)o, (void)idle;
#endif
}

void output_close(struct output *o)
{
	if (!o)
		return;
#if HAVE_V4L2
	v4l2out_close(o->v4l2);
#endif
	if (o->f) {
		fflush(o->f);
		if (o->own)
			fclose(o->f);
	}
	free(o->yuv);
	free(o);
}
