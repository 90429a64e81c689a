/* Effects on composed frames: parts, background blur and replacement,
 * hair and lip tint, eye or face pixelation.
 *
 * Background work runs at low resolution: the person mask (every
 * non-background class) at 1/4, the blurred background at 1/8 of the frame
 * (libyuv box scaling, ARGBBlur's cumulative-sum box blur), both scaled up
 * bilinearly. The blur is a normalised convolution: the background weight
 * rides in the alpha channel (attenuate, blur, unattenuate), so person
 * colours do not bleed into the blurred background as a halo.
 */
#include "render.h"

#include <errno.h>
#include <libyuv.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASK_SHIFT 2       /* mask resolution: 1/4 */
#define BLUR_SHIFT 3       /* background blur resolution: 1/8 */
#define MASK_RADIUS 1      /* low-resolution mask feather */
#define TINT_RADIUS 2      /* full-resolution tint feather */
#define HIST_GROUPS 3

enum {
	C_BACKGROUND = 0, C_SKIN = 1, C_NOSE = 2, C_EYE_G = 3, C_L_EYE = 4, C_R_EYE = 5,
	C_L_BROW = 6, C_R_BROW = 7, C_MOUTH = 10, C_U_LIP = 11, C_L_LIP = 12, C_HAIR = 13,
};

static const char effect_list[] =
	"none, parts, blur, replace:IMAGE, recolor[:hair|lips], privacy[:eyes|face]";

struct box {
	int x0, y0, x1, y1; /* [x0, x1) x [y0, y1) */
};

/* ---- descriptors ---- */

static void effect_defaults(struct effect *e)
{
	memset(e, 0, sizeof(*e));
	e->alpha = 0.5f;
	e->recolor_hair = e->recolor_lips = 1;
	e->tint_hair[0] = 0xb4, e->tint_hair[1] = 0x4a, e->tint_hair[2] = 0x2a;
	e->tint_lips[0] = 0xb0, e->tint_lips[1] = 0x30, e->tint_lips[2] = 0x4a;
	e->tint_amount = 0.7f;
}

static int parse_replace(const char *spec, const char *arg, struct effect *e, char *err,
			 size_t errlen)
{
	static atomic_uint next_id;
	char msg[512];
	int r;

	if (!arg || !*arg) {
		snprintf(err, errlen, "%s: needs an image (replace:IMAGE)", spec);
		return -EINVAL;
	}
	r = image_load(arg, &e->background, msg, sizeof(msg));
	if (r < 0) {
		snprintf(err, errlen, "replace: %.500s", msg);
		return r;
	}
	e->background_id = atomic_fetch_add(&next_id, 1) + 1;
	return 0;
}

static int parse_arg(const char *spec, const char *name, const char *arg, struct effect *e,
		     char *err, size_t errlen)
{
	if (e->kind == EFFECT_REPLACE)
		return parse_replace(spec, arg, e, err, errlen);
	if (!arg)
		return 0;
	if (e->kind == EFFECT_RECOLOR && (!strcmp(arg, "hair") || !strcmp(arg, "lips"))) {
		e->recolor_hair = !strcmp(arg, "hair");
		e->recolor_lips = !e->recolor_hair;
		return 0;
	}
	if (e->kind == EFFECT_PRIVACY && (!strcmp(arg, "eyes") || !strcmp(arg, "face"))) {
		e->privacy_face = !strcmp(arg, "face");
		return 0;
	}
	if (e->kind == EFFECT_RECOLOR || e->kind == EFFECT_PRIVACY)
		snprintf(err, errlen, "%s: '%s' is not %s", spec, arg,
			 e->kind == EFFECT_RECOLOR ? "hair or lips" : "eyes or face");
	else
		snprintf(err, errlen, "%s: %s takes no argument", spec, name);
	return -EINVAL;
}

int effect_parse(const char *spec, struct effect *e, char *err, size_t errlen)
{
	static const char *const names[] = {
		[EFFECT_NONE] = "none", [EFFECT_PARTS] = "parts", [EFFECT_BLUR] = "blur",
		[EFFECT_REPLACE] = "replace", [EFFECT_RECOLOR] = "recolor",
		[EFFECT_PRIVACY] = "privacy",
	};
	const char *colon;
	size_t len;
	int r;

	effect_defaults(e);
	if (!spec || !*spec) {
		snprintf(err, errlen, "empty effect (%s)", effect_list);
		return -EINVAL;
	}
	colon = strchr(spec, ':');
	len = colon ? (size_t)(colon - spec) : strlen(spec);
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		if (len != strlen(names[k]) || strncmp(spec, names[k], len) != 0)
			continue;
		e->kind = (enum effect_kind)k;
		r = parse_arg(spec, names[k], colon ? colon + 1 : NULL, e, err, errlen);
		if (r < 0)
			effect_finish(e);
		return r;
	}
	snprintf(err, errlen, "%.*s: unknown effect (%s)", (int)(len > 64 ? 64 : len), spec,
		 effect_list);
	return -EINVAL;
}

void effect_finish(struct effect *e)
{
	if (!e)
		return;
	image_free(&e->background);
	e->background_id = 0;
}

const char *effect_name(const struct effect *e)
{
	switch (e->kind) {
	case EFFECT_NONE: return "none";
	case EFFECT_PARTS: return "parts";
	case EFFECT_BLUR: return "blur";
	case EFFECT_REPLACE: return "replace";
	case EFFECT_RECOLOR:
		if (e->recolor_hair != e->recolor_lips)
			return e->recolor_hair ? "recolor:hair" : "recolor:lips";
		return "recolor";
	case EFFECT_PRIVACY: return e->privacy_face ? "privacy:face" : "privacy";
	}
	return "?";
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int effect_parse_tint(const char *text, uint8_t rgb[3], char *err, size_t errlen)
{
	const char *p = text && text[0] == '#' ? text + 1 : text;
	int d[6];

	for (int i = 0; p && i < 6; i++) {
		d[i] = hex_digit(p[i]);
		if (d[i] < 0)
			p = NULL;
	}
	if (!p || p[6] != '\0') {
		snprintf(err, errlen, "%.64s: not a colour (RRGGBB, hex)", text ? text : "");
		return -EINVAL;
	}
	for (int c = 0; c < 3; c++)
		rgb[c] = (uint8_t)(d[2 * c] << 4 | d[2 * c + 1]);
	return 0;
}

/* ---- scratch ---- */

static int ramp_value(int i)
{
	double t = i / 255.0;

	return (int)(255.0 * t * t * (3.0 - 2.0 * t) + 0.5);
}

int effect_scratch_init(struct effect_scratch *s, int width, int height)
{
	size_t n = (size_t)width * height, ms, ss;

	memset(s, 0, sizeof(*s));
	if (width <= 0 || height <= 0 || width > 16384 || height > 16384)
		return -EINVAL;
	s->mw = (width + (1 << MASK_SHIFT) - 1) >> MASK_SHIFT;
	s->mh = (height + (1 << MASK_SHIFT) - 1) >> MASK_SHIFT;
	s->sw = (width + (1 << BLUR_SHIFT) - 1) >> BLUR_SHIFT;
	s->sh = (height + (1 << BLUR_SHIFT) - 1) >> BLUR_SHIFT;
	ms = (size_t)s->mw * s->mh;
	ss = (size_t)s->sw * s->sh;
	s->mask = malloc(n);
	s->msmall = malloc(ms);
	s->sums = malloc(sizeof(uint16_t) * (size_t)(width > height ? width : height));
	s->small = malloc(ss * 4);
	s->small2 = malloc(ss * 4);
	s->bgw = malloc(ss);
	s->cumsum = aligned_alloc(16, ((size_t)s->sw * (s->sh + 1) * 16 + 15) & ~(size_t)15);
	s->hist = malloc(sizeof(uint32_t) * HIST_GROUPS * (size_t)(width + height));
	if (!s->mask || !s->msmall || !s->sums || !s->small || !s->small2 ||
	    !s->bgw || !s->cumsum || !s->hist) {
		effect_scratch_finish(s);
		return -ENOMEM;
	}
	for (int i = 0; i < 256; i++)
		s->ramp[i] = (uint8_t)ramp_value(i);
	s->width = width;
	s->height = height;
	return 0;
}

void effect_scratch_finish(struct effect_scratch *s)
{
	if (!s)
		return;
	free(s->mask);
	free(s->msmall);
	free(s->sums);
	free(s->small);
	free(s->small2);
	free(s->bgw);
	free(s->cumsum);
	free(s->hist);
	free(s->back);
	free(s->replaced);
	memset(s, 0, sizeof(*s));
}

/* A lazily allocated full-size RGBA buffer of s. */
static int scratch_frame(struct effect_scratch *s, uint8_t **buf)
{
	if (!*buf)
		*buf = malloc((size_t)s->width * s->height * 4);
	return *buf ? 0 : -ENOMEM;
}

/* ---- small image helpers ---- */

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

/* Box-blurs n samples step bytes apart, edges repeated. */
static void blur_line(uint8_t *p, ptrdiff_t step, int n, int r, uint16_t *tmp)
{
	int d = 2 * r + 1, sum = 0;

	for (int i = 0; i < n; i++)
		tmp[i] = p[i * step];
	for (int k = -r; k <= r; k++)
		sum += tmp[clampi(k, 0, n - 1)];
	for (int i = 0; i < n; i++) {
		p[i * step] = (uint8_t)((sum + d / 2) / d);
		sum += tmp[clampi(i + r + 1, 0, n - 1)] - tmp[clampi(i - r, 0, n - 1)];
	}
}

/* Separable box blur of a w x h plane in place; tmp holds max(w, h). */
static void blur_plane(uint8_t *p, int stride, int w, int h, int r, uint16_t *tmp)
{
	for (int y = 0; y < h; y++)
		blur_line(p + (ptrdiff_t)y * stride, 1, w, r, tmp);
	for (int x = 0; x < w; x++)
		blur_line(p + x, stride, h, r, tmp);
}

static uint32_t load32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void store32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* The alpha byte of a pixel read as a uint32 (byte order agnostic). */
static uint32_t alpha_mask(void)
{
	static const uint8_t a[4] = { 0, 0, 0, 0xff };

	return load32(a);
}

/* p * a + q * (256 - a), a 0..256, two channels at a time in 16-bit lanes;
 * the alpha of p kept. */
static uint32_t mix(uint32_t p, uint32_t q, uint32_t a, uint32_t amask)
{
	uint32_t na = 256 - a;
	uint32_t lo = (((p & 0x00ff00ff) * a + (q & 0x00ff00ff) * na) >> 8) & 0x00ff00ff;
	uint32_t hi = (((p >> 8) & 0x00ff00ff) * a + ((q >> 8) & 0x00ff00ff) * na) & 0xff00ff00;

	return ((lo | hi) & ~amask) | (p & amask);
}

/* One row of blend_back(): runs of 16 pixels wholly person (kept) or
 * wholly background (copied) skip the arithmetic. */
static void blend_row(uint8_t *px, const uint8_t *b, const uint8_t *m, int n, uint32_t amask)
{
	int x = 0;

	for (; x + 16 <= n; x += 16) {
		uint64_t m0, m1;
		memcpy(&m0, m + x, 8);
		memcpy(&m1, m + x + 8, 8);
		if ((m0 & m1) == ~(uint64_t)0)
			continue;
		for (int k = x; k < x + 16; k++) {
			uint32_t p = load32(px + 4 * k), q = load32(b + 4 * k);
			store32(px + 4 * k, (m0 | m1) ? mix(p, q, m[k] + (m[k] >> 7), amask) :
							 (q & ~amask) | (p & amask));
		}
	}
	for (; x < n; x++)
		store32(px + 4 * x, mix(load32(px + 4 * x), load32(b + 4 * x), m[x] + (m[x] >> 7),
					amask));
}

/* rgba = rgba * m + back * (1 - m), m the mask byte (255: rgba kept);
 * alpha kept. */
static void blend_back(uint8_t *rgba, int stride, const uint8_t *back, const uint8_t *mask,
		       int width, int height)
{
	uint32_t amask = alpha_mask();

	for (int y = 0; y < height; y++)
		blend_row(rgba + (size_t)y * stride, back + (size_t)y * width * 4,
			  mask + (size_t)y * width, width, amask);
}

/* ---- background: blur and replace ---- */

/* s->mask: the person (label != 0) with soft edges; s->bgw: the person's
 * share of each blur-resolution cell. */
static void person_mask(struct effect_scratch *s, const uint8_t *labels)
{
	int w = s->width, h = s->height;
	size_t n = (size_t)w * h, ms = (size_t)s->mw * s->mh;

	for (size_t i = 0; i < n; i++)
		s->mask[i] = labels[i] ? 255 : 0;
	ScalePlane(s->mask, w, w, h, s->msmall, s->mw, s->mw, s->mh, kFilterBox);
	ScalePlane(s->msmall, s->mw, s->mw, s->mh, s->bgw, s->sw, s->sw, s->sh, kFilterBox);
	blur_plane(s->msmall, s->mw, s->mw, s->mh, MASK_RADIUS, s->sums);
	for (size_t i = 0; i < ms; i++)
		s->msmall[i] = s->ramp[s->msmall[i]];
	ScalePlane(s->msmall, s->mw, s->mw, s->mh, s->mask, w, w, h, kFilterBilinear);
}

/* Box blur of s->small into s->small2 (twice: nearly Gaussian). */
static void blur_small(struct effect_scratch *s)
{
	int sw = s->sw, sh = s->sh, r = (sh + 12) / 24;

	r = r > sw / 2 - 1 ? sw / 2 - 1 : r;
	r = r > sh ? sh : r;
	if (r < 1 || sh < 2 ||
	    ARGBBlur(s->small, sw * 4, s->small2, sw * 4, s->cumsum, sw * 4, sw, sh, r) != 0 ||
	    ARGBBlur(s->small2, sw * 4, s->small, sw * 4, s->cumsum, sw * 4, sw, sh, r) != 0) {
		/* too small to blur: the downscale alone */
	}
	ARGBUnattenuate(s->small, sw * 4, s->small2, sw * 4, sw, sh);
}

/* s->back: the frame's background, blurred, weighted away from the person. */
static void blur_background(struct effect_scratch *s, const uint8_t *rgba, int stride)
{
	size_t ss = (size_t)s->sw * s->sh;

	ARGBScale(rgba, stride, s->width, s->height, s->small, s->sw * 4, s->sw, s->sh,
		  kFilterBox);
	for (size_t i = 0; i < ss; i++) {
		unsigned b = 255u - s->bgw[i];
		s->small[4 * i + 3] = (uint8_t)(b * b / 255);
	}
	ARGBAttenuate(s->small, s->sw * 4, s->small, s->sw * 4, s->sw, s->sh);
	blur_small(s);
	ARGBScale(s->small2, s->sw * 4, s->sw, s->sh, s->back, s->width * 4, s->width,
		  s->height, kFilterBilinear);
}

/* s->replaced: e's image scaled to cover the frame (centred, cropped). */
static int scale_replacement(const struct effect *e, struct effect_scratch *s)
{
	const struct image *im = &e->background;
	int w = s->width, h = s->height, cw = im->width, ch = im->height, x0 = 0, y0 = 0;
	int r;

	if (!im->rgba || im->width <= 0 || im->height <= 0)
		return -EINVAL;
	if (s->replaced_id == e->background_id && s->replaced)
		return 0;
	r = scratch_frame(s, &s->replaced);
	if (r < 0)
		return r;
	if ((int64_t)im->width * h > (int64_t)im->height * w)
		cw = (int)((int64_t)im->height * w / h), x0 = (im->width - cw) / 2;
	else
		ch = (int)((int64_t)im->width * h / w), y0 = (im->height - ch) / 2;
	cw = cw < 1 ? 1 : cw;
	ch = ch < 1 ? 1 : ch;
	ARGBScale(im->rgba + ((size_t)y0 * im->width + x0) * 4, im->width * 4, cw, ch,
		  s->replaced, w * 4, w, h, kFilterBox);
	s->replaced_id = e->background_id;
	return 0;
}

static int apply_background(const struct effect *e, uint8_t *rgba, int stride,
			    const uint8_t *labels, struct effect_scratch *s)
{
	const uint8_t *back;
	int r;

	if (e->kind == EFFECT_REPLACE) {
		r = scale_replacement(e, s);
		back = s->replaced;
	} else {
		r = scratch_frame(s, &s->back);
		back = s->back;
	}
	if (r < 0)
		return r;
	person_mask(s, labels);
	if (e->kind == EFFECT_BLUR)
		blur_background(s, rgba, stride);
	blend_back(rgba, stride, back, s->mask, s->width, s->height);
	return 0;
}

/* ---- recolor ---- */

static int tint_class(const struct effect *e, uint8_t l)
{
	if (l == C_HAIR)
		return e->recolor_hair ? 1 : 0;
	if (l == C_U_LIP || l == C_L_LIP)
		return e->recolor_lips ? 2 : 0;
	return 0;
}

/* The bounding box of the tinted pixels; false when there are none. */
static int tint_box(const struct effect *e, const uint8_t *labels, int w, int h, struct box *b)
{
	*b = (struct box){ w, h, 0, 0 };
	for (int y = 0; y < h; y++) {
		const uint8_t *l = labels + (size_t)y * w;
		for (int x = 0; x < w; x++) {
			if (l[x] != C_HAIR && l[x] != C_U_LIP && l[x] != C_L_LIP)
				continue;
			if (!tint_class(e, l[x]))
				continue;
			b->x0 = x < b->x0 ? x : b->x0, b->x1 = x >= b->x1 ? x + 1 : b->x1;
			b->y0 = y < b->y0 ? y : b->y0, b->y1 = y + 1;
		}
	}
	return b->x1 > b->x0;
}

/* lut[Y][c]: the tint with luminance Y (BT.601), channel c; a colour too
 * bright to keep the tint's hue moves toward grey (luminance kept) rather
 * than being clipped. */
static void tint_lut(const uint8_t tint[3], uint8_t lut[256][3])
{
	int yt = (77 * tint[0] + 150 * tint[1] + 29 * tint[2] + 128) >> 8;

	yt = yt < 1 ? 1 : yt;
	for (int y = 0; y < 256; y++) {
		int t[3], mx = 0;
		for (int c = 0; c < 3; c++) {
			t[c] = (tint[c] * y + yt / 2) / yt;
			mx = t[c] > mx ? t[c] : mx;
		}
		for (int c = 0; c < 3; c++) {
			if (mx > 255)
				t[c] = y + (t[c] - y) * (255 - y) / (mx - y);
			lut[y][c] = (uint8_t)clampi(t[c], 0, 255);
		}
	}
}

static void tint_row(uint8_t *px, const uint8_t *l, const uint8_t *m, int n, int amount,
		     const struct effect *e, uint8_t luts[2][256][3])
{
	for (int x = 0; x < n; x++, px += 4) {
		int k = tint_class(e, l[x]);
		if (!k)
			continue;
		unsigned a = (unsigned)(m[x] * amount + 127) / 255, na = 256 - a;
		int y = (77 * px[0] + 150 * px[1] + 29 * px[2] + 128) >> 8;
		const uint8_t *t = luts[k - 1][y];
		px[0] = (uint8_t)((px[0] * na + t[0] * a) >> 8);
		px[1] = (uint8_t)((px[1] * na + t[1] * a) >> 8);
		px[2] = (uint8_t)((px[2] * na + t[2] * a) >> 8);
	}
}

/* Tints hair and lip pixels only, less so near their borders. */
static void apply_recolor(const struct effect *e, uint8_t *rgba, int stride,
			  const uint8_t *labels, struct effect_scratch *s)
{
	int w = s->width, h = s->height, amount;
	uint8_t luts[2][256][3];
	struct box b;

	if (!tint_box(e, labels, w, h, &b))
		return;
	b.x0 = clampi(b.x0 - TINT_RADIUS, 0, w), b.x1 = clampi(b.x1 + TINT_RADIUS, 0, w);
	b.y0 = clampi(b.y0 - TINT_RADIUS, 0, h), b.y1 = clampi(b.y1 + TINT_RADIUS, 0, h);
	for (int y = b.y0; y < b.y1; y++)
		for (int x = b.x0; x < b.x1; x++)
			s->mask[(size_t)y * w + x] = tint_class(e, labels[(size_t)y * w + x]) ? 255 : 0;
	blur_plane(s->mask + (size_t)b.y0 * w + b.x0, w, b.x1 - b.x0, b.y1 - b.y0, TINT_RADIUS,
		   s->sums);
	tint_lut(e->tint_hair, luts[0]);
	tint_lut(e->tint_lips, luts[1]);
	amount = clampi((int)(e->tint_amount * 256.0f + 0.5f), 0, 256);
	for (int y = b.y0; y < b.y1; y++)
		tint_row(rgba + (size_t)y * stride + (size_t)b.x0 * 4,
			 labels + (size_t)y * w + b.x0, s->mask + (size_t)y * w + b.x0,
			 b.x1 - b.x0, amount, e, luts);
}

/* ---- privacy ---- */

int render_hist_quantile(const uint32_t *hist, int n, uint64_t total, double q)
{
	uint64_t want = (uint64_t)(q * (double)total), acc = 0;

	for (int i = 0; i < n; i++) {
		acc += hist[i];
		if (acc > want)
			return i;
	}
	return n - 1;
}

/* The 1 %..99 % extent of a group's pixels (stray labels ignored). */
static int group_box(const uint32_t *cols, int w, const uint32_t *rows, int h, struct box *b)
{
	uint64_t n = 0;

	for (int x = 0; x < w; x++)
		n += cols[x];
	if (n < 16)
		return 0;
	b->x0 = render_hist_quantile(cols, w, n, 0.01);
	b->x1 = render_hist_quantile(cols, w, n, 0.99) + 1;
	b->y0 = render_hist_quantile(rows, h, n, 0.01);
	b->y1 = render_hist_quantile(rows, h, n, 0.99) + 1;
	return 1;
}

/* Column and row histograms of the groups: group[l] is 0..2 or -1. */
static void group_hists(const uint8_t *labels, int w, int h, const int8_t group[256],
			uint32_t *hist)
{
	uint32_t *cols = hist, *rows = hist + HIST_GROUPS * w;

	memset(hist, 0, sizeof(uint32_t) * HIST_GROUPS * (size_t)(w + h));
	for (int y = 0; y < h; y++) {
		const uint8_t *l = labels + (size_t)y * w;
		for (int x = 0; x < w; x++) {
			int g = group[l[x]];
			if (g < 0)
				continue;
			cols[g * w + x]++;
			rows[g * h + y]++;
		}
	}
}

static int box_side(const struct box *b)
{
	int bw = b->x1 - b->x0, bh = b->y1 - b->y0;

	return bw > bh ? bw : bh;
}

/* A power of two near want, 4..64: steady while the face moves a little. */
static int block_size(int want)
{
	int b = 4;

	while (b * 3 / 2 < want && b < 64)
		b *= 2;
	return b;
}

/* Replaces each block x block cell of b (aligned to the frame's grid) by
 * its mean colour; b grows by margin and out to whole cells first. */
static void pixelate(uint8_t *rgba, int stride, int w, int h, struct box b, int margin,
		     int block)
{
	b.x0 = clampi((b.x0 - margin) / block * block, 0, w);
	b.y0 = clampi((b.y0 - margin) / block * block, 0, h);
	b.x1 = clampi((b.x1 + margin + block - 1) / block * block, 0, w);
	b.y1 = clampi((b.y1 + margin + block - 1) / block * block, 0, h);
	for (int y0 = b.y0; y0 < b.y1; y0 += block)
		for (int x0 = b.x0; x0 < b.x1; x0 += block) {
			int y1 = y0 + block < b.y1 ? y0 + block : b.y1;
			int x1 = x0 + block < b.x1 ? x0 + block : b.x1;
			uint32_t sum[3] = { 0 }, n = (uint32_t)((y1 - y0) * (x1 - x0));
			for (int y = y0; y < y1; y++)
				for (int x = x0; x < x1; x++)
					for (int c = 0; c < 3; c++)
						sum[c] += rgba[(size_t)y * stride + 4 * x + c];
			for (int y = y0; y < y1; y++)
				for (int x = x0; x < x1; x++)
					for (int c = 0; c < 3; c++)
						rgba[(size_t)y * stride + 4 * x + c] =
							(uint8_t)((sum[c] + n / 2) / n);
		}
}

static void privacy_face(uint8_t *rgba, int stride, const uint8_t *labels,
			 struct effect_scratch *s)
{
	static const uint8_t face[] = { C_SKIN, C_NOSE, C_EYE_G, C_L_EYE, C_R_EYE, C_L_BROW,
					C_R_BROW, C_MOUTH, C_U_LIP, C_L_LIP };
	int w = s->width, h = s->height;
	int8_t group[256];
	struct box b;

	memset(group, -1, sizeof(group));
	for (size_t i = 0; i < sizeof(face); i++)
		group[face[i]] = 0;
	group_hists(labels, w, h, group, s->hist);
	if (!group_box(s->hist, w, s->hist + HIST_GROUPS * w, h, &b))
		return;
	pixelate(rgba, stride, w, h, b, box_side(&b) * 6 / 100 + 2, block_size(box_side(&b) / 10));
}

static void privacy_eyes(uint8_t *rgba, int stride, const uint8_t *labels,
			 struct effect_scratch *s)
{
	int w = s->width, h = s->height, found[HIST_GROUPS], eye_side = 0, block;
	uint32_t *cols = s->hist, *rows = s->hist + HIST_GROUPS * w;
	struct box b[HIST_GROUPS];
	int8_t group[256];

	memset(group, -1, sizeof(group));
	group[C_L_EYE] = 0, group[C_R_EYE] = 1, group[C_EYE_G] = 2;
	group_hists(labels, w, h, group, s->hist);
	for (int g = 0; g < HIST_GROUPS; g++) {
		found[g] = group_box(cols + g * w, w, rows + g * h, h, &b[g]);
		if (found[g] && g < 2 && box_side(&b[g]) > eye_side)
			eye_side = box_side(&b[g]);
	}
	block = block_size(eye_side ? eye_side / 4 : (found[2] ? box_side(&b[2]) / 8 : 0));
	for (int g = 0; g < HIST_GROUPS; g++) {
		if (!found[g])
			continue;
		int margin = box_side(&b[g]) * (g < 2 ? 35 : 5) / 100 + 2;
		pixelate(rgba, stride, w, h, b[g], margin, block);
	}
}

/* ---- entry ---- */

int effect_apply(const struct effect *e, uint8_t *rgba, int stride, const uint8_t *labels,
		 int width, int height, struct effect_scratch *s)
{
	int r;

	if (!e || !rgba || !labels || !s || width <= 0 || height <= 0 || stride < width * 4)
		return -EINVAL;
	if (e->kind == EFFECT_NONE)
		return 0;
	if (e->kind == EFFECT_PARTS) {
		render_overlay(rgba, stride, labels, width, width, height, e->alpha);
		return 0;
	}
	if (s->width != width || s->height != height) {
		effect_scratch_finish(s);
		r = effect_scratch_init(s, width, height);
		if (r < 0)
			return r;
	}
	switch (e->kind) {
	case EFFECT_BLUR:
	case EFFECT_REPLACE:
		return apply_background(e, rgba, stride, labels, s);
	case EFFECT_RECOLOR:
		apply_recolor(e, rgba, stride, labels, s);
		return 0;
	case EFFECT_PRIVACY:
		if (e->privacy_face)
			privacy_face(rgba, stride, labels, s);
		else
			privacy_eyes(rgba, stride, labels, s);
		return 0;
	default:
		return -EINVAL;
	}
}
