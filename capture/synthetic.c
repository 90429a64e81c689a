/* A moving test pattern: a gradient that drifts and a face-coloured ellipse
 * that circles, at the wanted size and rate (default 640x480, 30 fps). */
#include "capture-priv.h"

#include <math.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>

/* Pixels [x0, x1) of a row of the gradient. */
static void gradient(uint8_t *p, int x0, int x1, int y, int shift)
{
	for (int x = x0; x < x1; x++, p += 4) {
		p[0] = (uint8_t)(x + shift);
		p[1] = (uint8_t)(y + shift / 2);
		p[2] = 96;
		p[3] = 255;
	}
}

/* The ellipse's span of each row is solved for, not tested per pixel: the
 * pattern is the source of the benchmarks at 1280x720 and should cost the
 * pipeline little next to a camera's conversion. */
static void draw(const struct capture_info *in, uint64_t n, uint8_t *rgba, int stride)
{
	static const uint8_t face[4] = { 224, 172, 140, 255 };
	double t = (double)n * in->fps_den / in->fps_num;
	double cx = in->width * (0.5 + 0.2 * cos(t)), cy = in->height * (0.5 + 0.15 * sin(t));
	double rx = in->width * 0.16, ry = in->height * 0.3;
	int shift = (int)(n * 2);

	for (int y = 0; y < in->height; y++) {
		uint8_t *row = rgba + (size_t)y * stride;
		double dy = (y - cy) / ry, half = dy * dy < 1.0 ? rx * sqrt(1.0 - dy * dy) : -1.0;
		/* the pixels with (x - cx)^2 < half^2 */
		int x0 = half < 0 ? in->width : (int)floor(cx - half) + 1;
		int x1 = half < 0 ? in->width : (int)ceil(cx + half);

		x0 = x0 < 0 ? 0 : x0 > in->width ? in->width : x0;
		x1 = x1 < x0 ? x0 : x1 > in->width ? in->width : x1;
		gradient(row, 0, x0, y, shift);
		for (int x = x0; x < x1; x++)
			memcpy(row + 4 * x, face, 4);
		gradient(row + 4 * x1, x1, in->width, y, shift);
	}
}

static int synthetic_read(struct capture *c, struct capture_frame *f, char *err, size_t errlen)
{
	int r = capture_pace(c);

	if (r < 0)
		return r;
	if (f->rgba)
		draw(&c->info, c->frames, f->rgba, f->stride);
	f->sequence = c->frames;
	f->timestamp_ns = capture_now_ns();
	return 0;
}

static const struct capture_impl synthetic_impl = {
	.read = synthetic_read,
};

int capture_synthetic_open(struct capture *c, char *err, size_t errlen)
{
	const struct capture_params *w = &c->want;

	if (w->width < 0 || w->height < 0 || w->width > 8192 || w->height > 8192 ||
	    w->fps_num < 0 || w->fps_den < 0) {
		snprintf(err, errlen, "synthetic: size or rate out of range");
		return -EINVAL;
	}
	c->impl = &synthetic_impl;
	snprintf(c->info.name, sizeof(c->info.name), "synthetic");
	snprintf(c->info.format, sizeof(c->info.format), "RGBA");
	c->info.width = w->width ? w->width : 640;
	c->info.height = w->height ? w->height : 480;
	c->info.fps_num = w->fps_num ? w->fps_num : 30;
	c->info.fps_den = w->fps_den ? w->fps_den : 1;
	return 0;
}
