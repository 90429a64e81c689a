#include "render.h"

const uint8_t render_palette[RENDER_NUM_CLASSES][3] = {
	{ 0, 0, 0 },       /* background */
	{ 204, 0, 0 },     /* skin */
	{ 76, 153, 0 },    /* nose */
	{ 204, 204, 0 },   /* eye_g */
	{ 51, 51, 255 },   /* l_eye */
	{ 204, 0, 204 },   /* r_eye */
	{ 0, 255, 255 },   /* l_brow */
	{ 255, 204, 204 }, /* r_brow */
	{ 102, 51, 0 },    /* l_ear */
	{ 255, 0, 0 },     /* r_ear */
	{ 102, 204, 0 },   /* mouth */
	{ 255, 255, 0 },   /* u_lip */
	{ 0, 0, 153 },     /* l_lip */
	{ 0, 0, 204 },     /* hair */
	{ 255, 51, 153 },  /* hat */
	{ 0, 204, 204 },   /* ear_r */
	{ 0, 51, 0 },      /* neck_l */
	{ 255, 153, 51 },  /* neck */
	{ 0, 204, 0 },     /* cloth */
};

void render_overlay(uint8_t *rgba, int stride, const uint8_t *labels,
		    int lstride, int width, int height, float alpha)
{
	int a = (int)(alpha * 256.0f + 0.5f);

	a = a < 0 ? 0 : (a > 256 ? 256 : a);
	for (int y = 0; y < height; y++) {
		uint8_t *px = rgba + (size_t)y * stride;
		const uint8_t *l = labels + (size_t)y * lstride;
		for (int x = 0; x < width; x++, px += 4) {
			if (l[x] == 0 || l[x] >= RENDER_NUM_CLASSES)
				continue;
			const uint8_t *c = render_palette[l[x]];
			for (int k = 0; k < 3; k++)
				px[k] = (uint8_t)((px[k] * (256 - a) + c[k] * a) >> 8);
		}
	}
}

void render_labels(uint8_t *rgba, int stride, const uint8_t *labels,
		   int lstride, int width, int height)
{
	for (int y = 0; y < height; y++) {
		uint8_t *px = rgba + (size_t)y * stride;
		const uint8_t *l = labels + (size_t)y * lstride;
		for (int x = 0; x < width; x++, px += 4) {
			const uint8_t *c = render_palette[l[x] < RENDER_NUM_CLASSES ? l[x] : 0];
			px[0] = c[0];
			px[1] = c[1];
			px[2] = c[2];
			px[3] = 255;
		}
	}
}

static void fill_rect(uint8_t *rgba, int stride, int w, int h, int x0, int y0, int x1, int y1,
		      const uint8_t c[3])
{
	x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
	x1 = x1 > w ? w : x1, y1 = y1 > h ? h : y1;
	for (int y = y0; y < y1; y++)
		for (int x = x0; x < x1; x++) {
			uint8_t *p = rgba + (size_t)y * stride + 4 * x;
			p[0] = c[0], p[1] = c[1], p[2] = c[2], p[3] = 255;
		}
}

void render_camera_lost(uint8_t *rgba, int stride, int width, int height)
{
	static const uint8_t bg[3] = { 32, 32, 36 }, fg[3] = { 150, 150, 160 }, red[3] = { 220, 40, 40 };
	int u = (width < height ? width : height) / 24, cx = width / 2, cy = height / 2;

	fill_rect(rgba, stride, width, height, 0, 0, width, height, bg);
	/* camera body, lens and viewfinder */
	fill_rect(rgba, stride, width, height, cx - 5 * u, cy - 3 * u, cx + 5 * u, cy + 4 * u, fg);
	fill_rect(rgba, stride, width, height, cx - 2 * u, cy - 5 * u, cx + 2 * u, cy - 3 * u, fg);
	fill_rect(rgba, stride, width, height, cx - 2 * u, cy - 1 * u, cx + 2 * u, cy + 3 * u, bg);
	/* crossed out */
	for (int t = -6 * u; t <= 6 * u; t++)
		for (int k = -u / 2; k <= u / 2; k++) {
			fill_rect(rgba, stride, width, height, cx + t + k, cy + t, cx + t + k + 1, cy + t + 1, red);
			fill_rect(rgba, stride, width, height, cx + t + k, cy - t, cx + t + k + 1, cy - t + 1, red);
		}
}
