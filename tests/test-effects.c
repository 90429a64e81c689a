/* Effects on a real face frame (face0 and its mask at 256x256): each one
 * changes the pixels it should and no others; effect and tint parsing; the
 * label-map and effect frames through the Y4M output; the splash. */
#include <errno.h>
#include <libyuv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "harness.h"
#include "render.h"

#define W 256
#define H 256
#define FAR 16 /* pixels from the person's edge: beyond the soft edge */

struct frame {
	uint8_t rgba[W * H * 4];
	uint8_t labels[W * H];
};

/* face0 and its labels, scaled to W x H (labels nearest). */
static struct frame *load_face(void)
{
	static struct frame f;
	static int loaded;
	char err[512];
	struct image img;
	uint8_t *m;
	int w, h;

	if (!loaded) {
		if (image_load(t_path("fixtures/face0.jpg"), &img, err, sizeof(err)) < 0)
			t_fail(__FILE__, __LINE__, "%s", err);
		if (image_load_labels(t_path("fixtures/face0-mask.png"), &m, &w, &h, err,
				      sizeof(err)) < 0)
			t_fail(__FILE__, __LINE__, "%s", err);
		ARGBScale(img.rgba, img.width * 4, img.width, img.height, f.rgba, W * 4, W, H,
			  kFilterBilinear);
		ScalePlane(m, w, w, h, f.labels, W, W, H, kFilterNone);
		image_free(&img);
		free(m);
		loaded = 1;
	}
	return &f;
}

/* A copy of the face frame with e applied. */
static struct frame *applied(const struct effect *e)
{
	static struct effect_scratch s;
	struct frame *out = malloc(sizeof(*out));

	T_ASSERT(out);
	memcpy(out, load_face(), sizeof(*out));
	T_EQ_INT(effect_apply(e, out->rgba, W * 4, out->labels, W, H, &s), 0);
	return out;
}

static struct frame *applied_spec(const char *spec)
{
	char err[256];
	struct effect e;
	struct frame *f;

	if (effect_parse(spec, &e, err, sizeof(err)) < 0)
		t_fail(__FILE__, __LINE__, "%s: %s", spec, err);
	f = applied(&e);
	effect_finish(&e);
	return f;
}

static int changed(const struct frame *a, int i)
{
	const uint8_t *p = a->rgba + 4 * i, *q = load_face()->rgba + 4 * i;

	return memcmp(p, q, 4) != 0;
}

static int absdiff(const struct frame *a, int i)
{
	const uint8_t *p = a->rgba + 4 * i, *q = load_face()->rgba + 4 * i;
	int d = 0;

	for (int c = 0; c < 3; c++)
		d += abs(p[c] - q[c]);
	return d;
}

/* far[i]: no pixel of the other side (person / background) within FAR. */
static void far_from_edge(const uint8_t *labels, uint8_t *far)
{
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			int person = labels[y * W + x] != 0, ok = 1;
			for (int v = y - FAR; ok && v <= y + FAR; v++)
				for (int u = x - FAR; ok && u <= x + FAR; u++)
					if (u >= 0 && v >= 0 && u < W && v < H &&
					    (labels[v * W + u] != 0) != person)
						ok = 0;
			far[y * W + x] = (uint8_t)ok;
		}
}

/* ---- parsing ---- */

static void test_parse(void)
{
	static const struct {
		const char *spec;
		enum effect_kind kind;
		const char *name;
	} ok[] = {
		{ "none", EFFECT_NONE, "none" },
		{ "parts", EFFECT_PARTS, "parts" },
		{ "blur", EFFECT_BLUR, "blur" },
		{ "recolor", EFFECT_RECOLOR, "recolor" },
		{ "recolor:lips", EFFECT_RECOLOR, "recolor:lips" },
		{ "privacy", EFFECT_PRIVACY, "privacy" },
		{ "privacy:eyes", EFFECT_PRIVACY, "privacy" },
		{ "privacy:face", EFFECT_PRIVACY, "privacy:face" },
	};
	char err[256];
	struct effect e;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		T_EQ_INT(effect_parse(ok[i].spec, &e, err, sizeof(err)), 0);
		T_EQ_INT(e.kind, ok[i].kind);
		T_STR_CONTAINS(effect_name(&e), ok[i].name);
		T_EQ_INT(strcmp(effect_name(&e), ok[i].name), 0);
		effect_finish(&e);
	}
	T_EQ_INT(effect_parse("privacy:face", &e, err, sizeof(err)), 0);
	T_EQ_INT(e.privacy_face, 1);
	T_EQ_INT(effect_parse("recolor:hair", &e, err, sizeof(err)), 0);
	T_ASSERT(e.recolor_hair && !e.recolor_lips);
}

static void test_parse_errors(void)
{
	static const struct {
		const char *spec, *msg;
		int r;
	} bad[] = {
		{ "", "empty effect", -EINVAL },
		{ "blurr", "blurr: unknown effect", -EINVAL },
		{ "Blur", "Blur: unknown effect", -EINVAL },
		{ "blur:3", "blur takes no argument", -EINVAL },
		{ "none:x", "none takes no argument", -EINVAL },
		{ "privacy:nose", "'nose' is not eyes or face", -EINVAL },
		{ "recolor:teeth", "'teeth' is not hair or lips", -EINVAL },
		{ "replace", "needs an image", -EINVAL },
		{ "replace:", "needs an image", -EINVAL },
		{ "replace:/nonexistent/bg.jpg", "/nonexistent/bg.jpg", -ENOENT },
	};
	char err[256];
	struct effect e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		T_EQ_INT(effect_parse(bad[i].spec, &e, err, sizeof(err)), bad[i].r);
		T_STR_CONTAINS(err, bad[i].msg);
		T_ASSERT(e.background.rgba == NULL);
	}
	T_EQ_INT(effect_parse(NULL, &e, err, sizeof(err)), -EINVAL);
}

static void test_tint_parse(void)
{
	static const char *const bad[] = { "", "ff80", "ff800g", "ff80000", "#", "0xff8000", "red" };
	char err[256];
	uint8_t rgb[3];

	T_EQ_INT(effect_parse_tint("ff8000", rgb, err, sizeof(err)), 0);
	T_ASSERT(rgb[0] == 255 && rgb[1] == 128 && rgb[2] == 0);
	T_EQ_INT(effect_parse_tint("#00Fa10", rgb, err, sizeof(err)), 0);
	T_ASSERT(rgb[0] == 0 && rgb[1] == 250 && rgb[2] == 16);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_EQ_INT(effect_parse_tint(bad[i], rgb, err, sizeof(err)), -EINVAL);
		T_STR_CONTAINS(err, "not a colour");
	}
}

/* ---- each effect on the face ---- */

static void test_none(void)
{
	struct frame *f = applied_spec("none");

	T_EQ_INT(memcmp(f, load_face(), sizeof(*f)), 0);
	free(f);
}

static void test_parts(void)
{
	const struct frame *in = load_face();
	struct frame *f = applied_spec("parts");
	int labelled = 0, moved = 0;

	for (int i = 0; i < W * H; i++) {
		if (in->labels[i] == 0) {
			T_ASSERT(!changed(f, i));
			continue;
		}
		labelled++;
		moved += changed(f, i);
	}
	T_CMP_INT(moved, >, labelled * 95 / 100);
	free(f);
}

/* Background and replacement: the person far from the edge untouched,
 * alpha untouched everywhere. */
static void check_person_kept(const struct frame *f, const uint8_t *far)
{
	const struct frame *in = load_face();
	int n = 0;

	for (int i = 0; i < W * H; i++) {
		T_EQ_INT(f->rgba[4 * i + 3], in->rgba[4 * i + 3]);
		if (in->labels[i] && far[i]) {
			T_ASSERT(!changed(f, i));
			n++;
		}
	}
	T_CMP_INT(n, >, 5000);
}

static void test_blur(void)
{
	const struct frame *in = load_face();
	struct frame *f = applied_spec("blur");
	static uint8_t far[W * H];
	long diff = 0, n = 0, moved = 0;

	far_from_edge(in->labels, far);
	check_person_kept(f, far);
	for (int i = 0; i < W * H; i++) {
		if (in->labels[i] || !far[i])
			continue;
		n++;
		moved += changed(f, i);
		diff += absdiff(f, i);
	}
	T_CMP_INT(n, >, 2000);
	T_CMP_INT(moved, >, n * 8 / 10);
	T_CMP_DBL((double)diff / n, >, 6.0); /* mean |change| of R + G + B */
	free(f);
}

static void test_replace(void)
{
	const struct frame *in = load_face();
	static uint8_t far[W * H];
	char path[512], spec[600], err[512];
	struct image bg;
	struct effect e;
	struct frame *f;
	int n = 0;

	T_EQ_INT(image_alloc(&bg, W, H), 0);
	for (int i = 0; i < W * H; i++) {
		bg.rgba[4 * i + 0] = (uint8_t)(i % W);
		bg.rgba[4 * i + 1] = (uint8_t)(i / W);
		bg.rgba[4 * i + 2] = 200;
		bg.rgba[4 * i + 3] = 255;
	}
	snprintf(path, sizeof(path), "%s/bg.png", t_tmpdir());
	T_EQ_INT(image_save_png(path, bg.rgba, W * 4, W, H, 4), 0);
	snprintf(spec, sizeof(spec), "replace:%s", path);
	if (effect_parse(spec, &e, err, sizeof(err)) < 0)
		t_fail(__FILE__, __LINE__, "%s", err);
	T_EQ_INT(e.kind, EFFECT_REPLACE);
	f = applied(&e);
	far_from_edge(in->labels, far);
	check_person_kept(f, far);
	for (int i = 0; i < W * H; i++) {
		if (in->labels[i] || !far[i])
			continue;
		T_EQ_INT(memcmp(f->rgba + 4 * i, bg.rgba + 4 * i, 3), 0);
		n++;
	}
	T_CMP_INT(n, >, 2000);
	effect_finish(&e);
	effect_finish(&e); /* twice: harmless */
	image_free(&bg);
	free(f);
}

/* A scaled replacement image is cropped to the frame's shape, not stretched. */
static void test_replace_covers(void)
{
	char path[512], spec[600], err[512];
	struct image bg;
	struct effect e;
	struct frame *f;

	T_EQ_INT(image_alloc(&bg, 3 * W, H), 0); /* left, middle, right thirds */
	for (int i = 0; i < 3 * W * H; i++)
		bg.rgba[4 * i + (i % (3 * W)) / W] = 255;
	snprintf(path, sizeof(path), "%s/wide.png", t_tmpdir());
	T_EQ_INT(image_save_png(path, bg.rgba, 3 * W * 4, 3 * W, H, 4), 0);
	snprintf(spec, sizeof(spec), "replace:%s", path);
	if (effect_parse(spec, &e, err, sizeof(err)) < 0)
		t_fail(__FILE__, __LINE__, "%s", err);
	f = applied(&e);
	/* the top-left corner is background: the middle third shows (green) */
	T_CMP_INT(f->rgba[1], >, 250);
	T_CMP_INT(f->rgba[0], <, 5);
	effect_finish(&e);
	image_free(&bg);
	free(f);
}

static int is_tinted(uint8_t l, int hair, int lips)
{
	return (hair && l == 13) || (lips && (l == 11 || l == 12));
}

/* Mean green share g / (r + g + b) of the pixels of classes. */
static double green_share(const uint8_t *rgba, const uint8_t *labels, int hair, int lips)
{
	double sum = 0;
	int n = 0;

	for (int i = 0; i < W * H; i++) {
		if (!is_tinted(labels[i], hair, lips))
			continue;
		const uint8_t *p = rgba + 4 * i;
		sum += (p[1] + 1.0) / (p[0] + p[1] + p[2] + 3.0);
		n++;
	}
	T_CMP_INT(n, >, 50);
	return sum / n;
}

static void check_recolor(const char *spec, int hair, int lips)
{
	const struct frame *in = load_face();
	char err[256];
	struct effect e;
	struct frame *f;
	long dy = 0, n = 0;

	T_EQ_INT(effect_parse(spec, &e, err, sizeof(err)), 0);
	T_EQ_INT(effect_parse_tint("20d040", e.tint_hair, err, sizeof(err)), 0);
	T_EQ_INT(effect_parse_tint("20d040", e.tint_lips, err, sizeof(err)), 0);
	f = applied(&e);
	for (int i = 0; i < W * H; i++) {
		if (!changed(f, i))
			continue;
		T_ASSERT(is_tinted(in->labels[i], hair, lips));
		const uint8_t *p = f->rgba + 4 * i, *q = in->rgba + 4 * i;
		dy += abs((77 * p[0] + 150 * p[1] + 29 * p[2]) - (77 * q[0] + 150 * q[1] + 29 * q[2]));
		n++;
	}
	T_CMP_INT(n, >, 50);
	T_CMP_DBL((double)dy / n / 256, <, 12.0); /* luminance kept (clipping aside) */
	if (hair)
		T_CMP_DBL(green_share(f->rgba, in->labels, 1, 0), >,
			  green_share(in->rgba, in->labels, 1, 0) + 0.1);
	if (lips)
		T_CMP_DBL(green_share(f->rgba, in->labels, 0, 1), >,
			  green_share(in->rgba, in->labels, 0, 1) + 0.1);
	effect_finish(&e);
	free(f);
}

static void test_recolor(void)
{
	check_recolor("recolor", 1, 1);
}

static void test_recolor_one_part(void)
{
	check_recolor("recolor:hair", 1, 0);
	check_recolor("recolor:lips", 0, 1);
}

/* The box of classes in labels: false when there is none. */
static int label_box(const uint8_t *labels, const uint8_t *classes, int n, int box[4])
{
	box[0] = W, box[1] = H, box[2] = -1, box[3] = -1;
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			for (int k = 0; k < n; k++)
				if (labels[y * W + x] == classes[k]) {
					box[0] = x < box[0] ? x : box[0];
					box[1] = y < box[1] ? y : box[1];
					box[2] = x > box[2] ? x : box[2];
					box[3] = y > box[3] ? y : box[3];
				}
	return box[2] >= 0;
}

static int in_box(const int box[4], int x, int y, int margin)
{
	return x >= box[0] - margin && x <= box[2] + margin && y >= box[1] - margin &&
	       y <= box[3] + margin;
}

/* Share of horizontal neighbours inside box that are equal. */
static double flat_share(const uint8_t *rgba, const int box[4])
{
	int same = 0, n = 0;

	for (int y = box[1]; y <= box[3]; y++)
		for (int x = box[0]; x < box[2]; x++) {
			same += memcmp(rgba + 4 * (y * W + x), rgba + 4 * (y * W + x + 1), 3) == 0;
			n++;
		}
	return (double)same / (n ? n : 1);
}

static void test_privacy_eyes(void)
{
	static const uint8_t left[] = { 4 }, right[] = { 5 }, eyes[] = { 3, 4, 5 };
	const struct frame *in = load_face();
	struct frame *f = applied_spec("privacy");
	int lb[4], rb[4], all[4], margin;

	T_ASSERT(label_box(in->labels, left, 1, lb));
	T_ASSERT(label_box(in->labels, right, 1, rb));
	T_ASSERT(label_box(in->labels, eyes, 3, all));
	margin = (all[3] - all[1] + 1) + 32; /* the effect's margin and block rounding */
	for (int i = 0; i < W * H; i++)
		if (changed(f, i))
			T_ASSERT(in_box(all, i % W, i / W, margin));
	T_CMP_DBL(flat_share(in->rgba, lb), <, 0.3);
	T_CMP_DBL(flat_share(f->rgba, lb), >, 0.7);
	T_CMP_DBL(flat_share(f->rgba, rb), >, 0.7);
	/* the mouth and the hair are left alone */
	for (int i = 0; i < W * H; i++)
		if (in->labels[i] == 11 || in->labels[i] == 12 || in->labels[i] == 10)
			T_ASSERT(!changed(f, i));
	free(f);
}

static void test_privacy_face(void)
{
	static const uint8_t face[] = { 1, 2, 3, 4, 5, 6, 7, 10, 11, 12 };
	const struct frame *in = load_face();
	struct frame *f = applied_spec("privacy:face");
	int fb[4], inner[4], margin, n = 0, moved = 0;

	T_ASSERT(label_box(in->labels, face, 10, fb));
	margin = (fb[2] - fb[0]) / 8 + 64;
	for (int i = 0; i < W * H; i++) {
		if (changed(f, i))
			T_ASSERT(in_box(fb, i % W, i / W, margin));
		if (in->labels[i] == 1 || in->labels[i] == 2) {
			n++;
			moved += changed(f, i);
		}
	}
	T_CMP_INT(moved, >, n * 8 / 10);
	inner[0] = fb[0] + (fb[2] - fb[0]) / 4, inner[2] = fb[2] - (fb[2] - fb[0]) / 4;
	inner[1] = fb[1] + (fb[3] - fb[1]) / 4, inner[3] = fb[3] - (fb[3] - fb[1]) / 4;
	T_CMP_DBL(flat_share(f->rgba, inner), >, 0.8);
	free(f);
}

/* No face in the labels: nothing to pixelate, tint; blur takes everything. */
static void test_no_face(void)
{
	static const char *const specs[] = { "privacy", "privacy:face", "recolor", "parts" };
	static struct frame f;
	static struct effect_scratch s;
	char err[256];
	struct effect e;

	for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
		memcpy(f.rgba, load_face()->rgba, sizeof(f.rgba));
		memset(f.labels, 0, sizeof(f.labels));
		T_EQ_INT(effect_parse(specs[k], &e, err, sizeof(err)), 0);
		T_EQ_INT(effect_apply(&e, f.rgba, W * 4, f.labels, W, H, &s), 0);
		T_EQ_INT(memcmp(f.rgba, load_face()->rgba, sizeof(f.rgba)), 0);
	}
	effect_scratch_finish(&s);
}

/* One scratch follows frame-size changes; odd sizes and strides work. */
static void test_scratch_sizes(void)
{
	static const int sizes[][2] = { { 256, 256 }, { 64, 48 }, { 33, 17 }, { 1, 1 }, { 640, 360 } };
	static const char *const specs[] = { "blur", "privacy", "privacy:face", "recolor" };
	struct effect_scratch s = { 0 };
	char err[256];
	struct effect e;

	T_EQ_INT(effect_parse("blur", &e, err, sizeof(err)), 0);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		int w = sizes[k][0], h = sizes[k][1], stride = w * 4 + 12;
		uint8_t *rgba = calloc((size_t)stride, (size_t)h), *labels = calloc((size_t)w, (size_t)h);
		T_ASSERT(rgba && labels);
		for (int i = 0; i < w * h / 2; i++)
			labels[i] = 1;
		for (size_t j = 0; j < sizeof(specs) / sizeof(specs[0]); j++) {
			T_EQ_INT(effect_parse(specs[j], &e, err, sizeof(err)), 0);
			T_EQ_INT(effect_apply(&e, rgba, stride, labels, w, h, &s), 0);
		}
		T_EQ_INT(s.width, w);
		T_EQ_INT(s.height, h);
		free(rgba);
		free(labels);
	}
	T_EQ_INT(effect_apply(&e, NULL, 16, NULL, 4, 4, &s), -EINVAL);
	e.kind = EFFECT_REPLACE; /* no image */
	{
		uint8_t px[16 * 4] = { 0 }, l[16] = { 0 };
		T_EQ_INT(effect_apply(&e, px, 16, l, 4, 4, &s), -EINVAL);
	}
	effect_scratch_finish(&s);
	effect_scratch_finish(&s);
	effect_scratch_finish(NULL);
}

/* ---- through the Y4M output ---- */

static struct capture *open_y4m(const char *path, int *w, int *h, const char *format)
{
	char spec[600], err[512];
	struct capture_params p = { 0 };
	struct capture *c;

	snprintf(spec, sizeof(spec), "y4m:%s", path);
	if (capture_open(spec, &p, &c, err, sizeof(err)) < 0)
		t_fail(__FILE__, __LINE__, "%s", err);
	*w = capture_get_info(c)->width;
	*h = capture_get_info(c)->height;
	T_EQ_INT(strcmp(capture_get_info(c)->format, format), 0);
	return c;
}

/* 2x2 block (bx, by) of a differs from b's. */
static int block_differs(const uint8_t *a, const uint8_t *b, int bx, int by)
{
	for (int y = 2 * by; y < 2 * by + 2; y++)
		if (memcmp(a + 4 * (y * W + 2 * bx), b + 4 * (y * W + 2 * bx), 8) != 0)
			return 1;
	return 0;
}

/* Each effect's frames read back from the Y4M output differ from the
 * untouched frame's exactly in the 4:2:0 blocks the effect changed. */
static void test_effects_through_y4m(void)
{
	static const char *const specs[] = { "none", "parts", "blur", "recolor", "privacy",
					     "privacy:face" };
	enum { N = sizeof(specs) / sizeof(specs[0]) };
	static uint8_t back[N][W * H * 4];
	struct frame *frames[N];
	char path[512], spec[600], err[512];
	struct output *o;
	struct capture *c;
	int w, h;

	snprintf(path, sizeof(path), "%s/effects.y4m", t_tmpdir());
	snprintf(spec, sizeof(spec), "y4m:%s", path);
	T_EQ_INT(output_open(spec, W, H, 30, 1, &o, err, sizeof(err)), 0);
	for (int k = 0; k < N; k++) {
		frames[k] = applied_spec(specs[k]);
		T_EQ_INT(output_write(o, frames[k]->rgba, W * 4), 0);
	}
	T_EQ_INT(output_write_labels(o, frames[0]->labels, W), -EINVAL);
	output_close(o);
	c = open_y4m(path, &w, &h, "I420");
	T_EQ_INT(w, W);
	T_EQ_INT(h, H);
	for (int k = 0; k < N; k++) {
		struct capture_frame cf = { .rgba = back[k], .stride = W * 4 };
		T_EQ_INT(capture_read(c, &cf, err, sizeof(err)), 0);
	}
	capture_close(c);
	for (int k = 1; k < N; k++) {
		int changed_blocks = 0, seen = 0;
		for (int by = 0; by < H / 2; by++)
			for (int bx = 0; bx < W / 2; bx++) {
				int d = block_differs(back[k], back[0], bx, by);
				if (!block_differs(frames[k]->rgba, frames[0]->rgba, bx, by)) {
					T_ASSERT(!d);
					continue;
				}
				changed_blocks++;
				seen += d;
			}
		T_CMP_INT(changed_blocks, >, 100);
		T_CMP_INT(seen, >, changed_blocks / 2);
	}
	for (int k = 0; k < N; k++)
		free(frames[k]);
}

static void test_labels_through_y4m(void)
{
	const struct frame *in = load_face();
	static uint8_t second[W * H], back[W * H + 64];
	char path[512], spec[600], err[512], header[128];
	struct output *o;
	struct capture *c;
	FILE *f;
	int w, h;

	for (int i = 0; i < W * H; i++)
		second[i] = (uint8_t)(i % RENDER_NUM_CLASSES);
	snprintf(path, sizeof(path), "%s/labels.y4m", t_tmpdir());
	snprintf(spec, sizeof(spec), "y4m:%s", path);
	T_EQ_INT(output_open_labels(spec, W, H, 30, 1, &o, err, sizeof(err)), 0);
	T_EQ_INT(output_write(o, in->rgba, W * 4), -EINVAL);
	T_EQ_INT(output_write_labels(o, in->labels, W), 0);
	T_EQ_INT(output_write_labels(o, second, W), 0);
	output_close(o);

	f = fopen(path, "rb");
	T_ASSERT(f);
	T_ASSERT(fgets(header, sizeof(header), f));
	T_STR_CONTAINS(header, "Cmono");
	T_STR_CONTAINS(header, "W256 H256 F30:1");
	for (int k = 0; k < 2; k++) {
		T_ASSERT(fgets(header, sizeof(header), f));
		T_EQ_INT(strcmp(header, "FRAME\n"), 0);
		T_EQ_INT(fread(back, 1, W * H, f), W * H);
		T_EQ_INT(memcmp(back, k ? second : in->labels, W * H), 0);
	}
	T_EQ_INT(fread(back, 1, 1, f), 0);
	fclose(f);

	c = open_y4m(path, &w, &h, "GREY"); /* the capture reader takes it */
	T_EQ_INT(w, W);
	capture_close(c);

	/* label maps may have odd sizes, colour frames not */
	snprintf(spec, sizeof(spec), "y4m:%s/odd.y4m", t_tmpdir());
	T_EQ_INT(output_open_labels(spec, 33, 17, 30, 1, &o, err, sizeof(err)), 0);
	T_EQ_INT(output_write_labels(o, second, 33), 0);
	output_close(o);
	T_EQ_INT(output_open(spec, 33, 17, 30, 1, &o, err, sizeof(err)), -EINVAL);
	T_STR_CONTAINS(err, "even");
}

static void test_output_specs(void)
{
	char spec[600], err[512];
	enum output_pixfmt fmt;
	struct output *o;
	FILE *f;
	int r;

	T_EQ_INT(output_parse_pixfmt("yuyv", &fmt), 0);
	T_EQ_INT(fmt, OUTPUT_YUYV);
	T_EQ_INT(output_parse_pixfmt("i420", &fmt), 0);
	T_EQ_INT(fmt, OUTPUT_I420);
	T_EQ_INT(output_parse_pixfmt("nv12", &fmt), -EINVAL);
	T_EQ_INT(output_open("png:x", 64, 48, 30, 1, &o, err, sizeof(err)), -EINVAL);
	T_STR_CONTAINS(err, "unknown output");
	T_ASSERT(o == NULL);

	/* a plain file is no V4L2 device */
	snprintf(spec, sizeof(spec), "%s/not-a-device", t_tmpdir());
	f = fopen(spec, "wb");
	T_ASSERT(f);
	fclose(f);
	snprintf(spec, sizeof(spec), "v4l2:%s/not-a-device", t_tmpdir());
	r = output_open_format(spec, OUTPUT_I420, 64, 48, 30, 1, &o, err, sizeof(err));
	T_ASSERT(o == NULL);
	if (r == -ENOTSUP) { /* built without V4L2 */
		T_STR_CONTAINS(err, "without V4L2");
		return;
	}
	T_EQ_INT(r, -ENODEV);
	T_STR_CONTAINS(err, "not a V4L2 device");
	T_STR_CONTAINS(err, "not-a-device");
	T_EQ_INT(output_open("v4l2:/nonexistent/video9", 64, 48, 30, 1, &o, err, sizeof(err)), -ENOENT);
	T_STR_CONTAINS(err, "/nonexistent/video9");
	T_EQ_INT(output_open_labels("v4l2:/nonexistent/video9", 64, 48, 30, 1, &o, err, sizeof(err)),
		 -ENOENT);
}

static void test_splash(void)
{
	static const int sizes[][2] = { { 1280, 720 }, { 64, 48 }, { 1, 1 } };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		int w = sizes[k][0], h = sizes[k][1], stride = w * 4 + 8, max = 0;
		uint8_t *rgba = malloc((size_t)stride * h);
		long sum = 0;
		T_ASSERT(rgba);
		render_splash(rgba, stride, w, h);
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++) {
				const uint8_t *p = rgba + (size_t)y * stride + 4 * x;
				T_EQ_INT(p[3], 255);
				sum += p[0] + p[1] + p[2];
				max = p[1] > max ? p[1] : max;
			}
		free(rgba);
		if (w < 64)
			continue;
		T_CMP_INT(sum / (3L * w * h), <, 40); /* dark */
		T_CMP_INT(max, >, 80); /* with a mark */
	}
}

T_MAIN(T_CASE(test_parse),
       T_CASE(test_parse_errors),
       T_CASE(test_tint_parse),
       T_CASE(test_none),
       T_CASE(test_parts),
       T_CASE(test_blur),
       T_CASE(test_replace),
       T_CASE(test_replace_covers),
       T_CASE(test_recolor),
       T_CASE(test_recolor_one_part),
       T_CASE(test_privacy_eyes),
       T_CASE(test_privacy_face),
       T_CASE(test_no_face),
       T_CASE(test_scratch_sizes),
       T_CASE(test_effects_through_y4m),
       T_CASE(test_labels_through_y4m),
       T_CASE(test_output_specs),
       T_CASE(test_splash))
