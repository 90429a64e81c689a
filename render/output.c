/* Outputs of composed frames. Here: YUV4MPEG2 files ("y4m:PATH", "y4m:-"
 * for stdout), 4:2:0, written frame by frame. */
#include "render.h"

#include <errno.h>
#include <libyuv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct output {
	FILE *f;
	int own;
	int width, height;
	uint8_t *yuv;  /* I420 frame */
	uint64_t frames;
	char name[256];
};

int output_open(const char *spec, int width, int height, int fps_num, int fps_den,
		struct output **out, char *err, size_t errlen)
{
	struct output *o;
	const char *path;

	*out = NULL;
	if (strncmp(spec, "y4m:", 4) != 0) {
		snprintf(err, errlen, "%s: unknown output (y4m:PATH)", spec);
		return -EINVAL;
	}
	if (width <= 0 || height <= 0 || (width | height) & 1) {
		snprintf(err, errlen, "%s: %dx%d: width and height must be even", spec, width, height);
		return -EINVAL;
	}
	path = spec + 4;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->yuv = malloc((size_t)width * height * 3 / 2);
	o->own = strcmp(path, "-") != 0;
	o->f = o->own ? fopen(path, "wbe") : stdout;
	if (!o->yuv || !o->f) {
		int r = o->f ? -ENOMEM : -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		output_close(o);
		return r;
	}
	o->width = width;
	o->height = height;
	snprintf(o->name, sizeof(o->name), "%s", spec);
	fprintf(o->f, "YUV4MPEG2 W%d H%d F%d:%d Ip A1:1 C420jpeg\n", width, height,
		fps_num > 0 ? fps_num : 25, fps_den > 0 ? fps_den : 1);
	*out = o;
	return 0;
}

int output_write(struct output *o, const uint8_t *rgba, int stride)
{
	int w = o->width, h = o->height;
	uint8_t *y = o->yuv, *u = y + (size_t)w * h, *v = u + (size_t)w * h / 4;

	ABGRToJ420(rgba, stride, y, w, u, w / 2, v, w / 2, w, h);
	if (fputs("FRAME\n", o->f) < 0 || fwrite(o->yuv, 1, (size_t)w * h * 3 / 2, o->f) !=
	    (size_t)w * h * 3 / 2)
		return -EIO;
	o->frames++;
	return 0;
}

void output_close(struct output *o)
{
	if (!o)
		return;
	if (o->f) {
		fflush(o->f);
		if (o->own)
			fclose(o->f);
	}
	free(o->yuv);
	free(o);
}
