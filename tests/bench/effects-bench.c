/* effects-bench: milliseconds per frame of each effect at 1280x720 (or
 * WxH from argv[1]) on a synthetic frame with a person-shaped label map,
 * and of the Y4M output's conversion. Prints figures; asserts nothing.
 *
 *   effects-bench [WxH] [FRAMES]
 */
#include <libyuv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "render.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int in_ellipse(int x, int y, double cx, double cy, double rx, double ry)
{
	double u = (x - cx) / rx, v = (y - cy) / ry;

	return u * u + v * v <= 1.0;
}

/* A head with hair, eyes and lips over shoulders, centred. */
static uint8_t synthetic_label(int x, int y, int w, int h)
{
	double cx = w / 2.0, cy = h * 0.42, r = h * 0.2;

	if (in_ellipse(x, y, cx - 0.35 * r, cy - 0.1 * r, 0.16 * r, 0.07 * r))
		return 4;
	if (in_ellipse(x, y, cx + 0.35 * r, cy - 0.1 * r, 0.16 * r, 0.07 * r))
		return 5;
	if (in_ellipse(x, y, cx, cy + 0.5 * r, 0.3 * r, 0.08 * r))
		return y < cy + 0.5 * r ? 11 : 12;
	if (in_ellipse(x, y, cx, cy, 0.8 * r, r))
		return 1;
	if (in_ellipse(x, y, cx, cy - 0.15 * r, r, 1.1 * r))
		return 13;
	if (y > cy + 0.9 * r && in_ellipse(x, y, cx, h, 2.4 * r, h - cy - 0.9 * r))
		return 18;
	return 0;
}

static void synthetic(uint8_t *rgba, uint8_t *labels, int w, int h)
{
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			uint8_t *p = rgba + ((size_t)y * w + x) * 4;
			p[0] = (uint8_t)(x * 255 / w);
			p[1] = (uint8_t)((x ^ y) & 0xff);
			p[2] = (uint8_t)(y * 255 / h);
			p[3] = 255;
			labels[(size_t)y * w + x] = synthetic_label(x, y, w, h);
		}
}

static double bench_effect(const char *spec, const uint8_t *src, uint8_t *rgba,
			   const uint8_t *labels, int w, int h, int frames,
			   struct effect_scratch *s)
{
	char err[256];
	struct effect e;
	double total = 0;

	if (effect_parse(spec, &e, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	for (int i = -3; i < frames; i++) { /* 3 warm-up frames */
		memcpy(rgba, src, (size_t)w * h * 4);
		double t0 = now_ms();
		if (effect_apply(&e, rgba, w * 4, labels, w, h, s) < 0) {
			fprintf(stderr, "%s: effect_apply failed\n", spec);
			effect_finish(&e);
			return -1;
		}
		if (i >= 0)
			total += now_ms() - t0;
	}
	effect_finish(&e);
	return total / frames;
}

/* A 1920x1080 replacement image in dir (scaled once by the effect). */
static int save_background(const char *dir, char *path, size_t len)
{
	struct image img;
	int r = image_alloc(&img, 1920, 1080);

	if (r < 0)
		return r;
	render_splash(img.rgba, 1920 * 4, 1920, 1080);
	snprintf(path, len, "%s/bg.png", dir);
	r = image_save_png(path, img.rgba, 1920 * 4, 1920, 1080, 4);
	image_free(&img);
	return r;
}

/* The v4l2 output's YUYV conversion (v4l2out.c does the same). */
static double bench_yuyv(const uint8_t *rgba, int w, int h, int frames)
{
	uint8_t *row = malloc((size_t)w * 4), *dst = malloc((size_t)w * h * 2);
	double t0 = now_ms();

	for (int i = 0; row && dst && i < frames; i++)
		for (int y = 0; y < h; y++) {
			ABGRToARGB(rgba + (size_t)y * w * 4, w * 4, row, w * 4, w, 1);
			ARGBToYUY2(row, w * 4, dst + (size_t)y * w * 2, w * 2, w, 1);
		}
	t0 = row && dst ? (now_ms() - t0) / frames : -1;
	free(row);
	free(dst);
	return t0;
}

static double bench_y4m(const uint8_t *rgba, int w, int h, int frames)
{
	char err[256];
	struct output *o;
	double t0;

	if (output_open("y4m:/dev/null", w, h, 30, 1, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	t0 = now_ms();
	for (int i = 0; i < frames; i++)
		output_write(o, rgba, w * 4);
	t0 = (now_ms() - t0) / frames;
	output_close(o);
	return t0;
}

int main(int argc, char **argv)
{
	static const char *const specs[] = { "none", "parts", "blur", "replace", "recolor",
					     "privacy", "privacy:face" };
	char dir[] = "/tmp/effects-bench-XXXXXX", image[64], replace[80];
	int w = 1280, h = 720, frames = argc > 2 ? atoi(argv[2]) : 60;
	struct effect_scratch s = { 0 };
	uint8_t *src, *rgba, *labels;

	if (argc > 1 && (sscanf(argv[1], "%dx%d", &w, &h) != 2 || w <= 0 || h <= 0 || (w | h) & 1)) {
		fprintf(stderr, "usage: effects-bench [WxH (even)] [FRAMES]\n");
		return 2;
	}
	frames = frames > 0 ? frames : 60;
	src = malloc((size_t)w * h * 4);
	rgba = malloc((size_t)w * h * 4);
	labels = malloc((size_t)w * h);
	if (!src || !rgba || !labels)
		return 1;
	synthetic(src, labels, w, h);
	if (!mkdtemp(dir) || save_background(dir, image, sizeof(image)) < 0) {
		fprintf(stderr, "cannot write a background image in /tmp\n");
		return 1;
	}
	snprintf(replace, sizeof(replace), "replace:%s", image);
	printf("effects at %dx%d, mean of %d frames (one thread)\n", w, h, frames);
	for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++)
		printf("  %-14s %7.2f ms\n", specs[k],
		       bench_effect(strcmp(specs[k], "replace") ? specs[k] : replace, src, rgba,
				    labels, w, h, frames, &s));
	printf("  %-14s %7.2f ms\n", "y4m write", bench_y4m(src, w, h, frames));
	printf("  %-14s %7.2f ms\n", "yuyv convert", bench_yuyv(src, w, h, frames));
	unlink(image);
	rmdir(dir);
	effect_scratch_finish(&s);
	free(src);
	free(rgba);
	free(labels);
	return 0;
}
