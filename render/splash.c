/* The idle frame: a calm dark frame with the facetd mark (a face outline,
 * two eyes and a mouth in muted part colours), anti-aliased. */
#include "render.h"

#include <math.h>

struct shade {
	uint8_t rgb[3];
};

/* Coverage (0..1) of a pixel at signed distance d from an edge. */
static float cover(float d)
{
	return d <= -0.5f ? 1.0f : (d >= 0.5f ? 0.0f : 0.5f - d);
}

static void put(uint8_t *px, const struct shade *c, float a)
{
	for (int k = 0; k < 3; k++)
		px[k] = (uint8_t)(px[k] + (c->rgb[k] - px[k]) * a + 0.5f);
}

/* A ring (thickness t) or, with t 0, a disc of radius r at (cx, cy). */
static void circle(uint8_t *rgba, int stride, int w, int h, float cx, float cy, float r,
		   float t, const struct shade *c)
{
	int x0 = (int)(cx - r - 2), x1 = (int)(cx + r + 2), y0 = (int)(cy - r - 2), y1 = (int)(cy + r + 2);

	x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
	x1 = x1 > w ? w : x1, y1 = y1 > h ? h : y1;
	for (int y = y0; y < y1; y++)
		for (int x = x0; x < x1; x++) {
			float d = hypotf(x + 0.5f - cx, y + 0.5f - cy) - r;
			float a = t > 0 ? cover(fabsf(d + t / 2) - t / 2) : cover(d);
			if (a > 0)
				put(rgba + (size_t)y * stride + 4 * x, c, a);
		}
}

/* A horizontal bar with round ends from x0 to x1 at height cy. */
static void bar(uint8_t *rgba, int stride, int w, int h, float x0, float x1, float cy,
		float r, const struct shade *c)
{
	for (int y = (int)(cy - r - 2); y < (int)(cy + r + 2); y++)
		for (int x = (int)(x0 - r - 2); x < (int)(x1 + r + 2); x++) {
			if (x < 0 || y < 0 || x >= w || y >= h)
				continue;
			float px = x + 0.5f, qx = px < x0 ? x0 : (px > x1 ? x1 : px);
			float a = cover(hypotf(px - qx, y + 0.5f - cy) - r);
			if (a > 0)
				put(rgba + (size_t)y * stride + 4 * x, c, a);
		}
}

void render_splash(uint8_t *rgba, int stride, int width, int height)
{
	static const struct shade ring = { { 86, 104, 122 } }, eye = { { 104, 112, 168 } },
		lips = { { 150, 84, 96 } };
	float s = (float)(width < height ? width : height), cx = width / 2.0f, cy = height / 2.0f;
	float r = s * 0.16f;

	for (int y = 0; y < height; y++) {
		uint8_t *px = rgba + (size_t)y * stride;
		int v = 30 - 12 * y / (height > 1 ? height - 1 : 1); /* 30 at the top, 18 below */
		for (int x = 0; x < width; x++, px += 4)
			px[0] = (uint8_t)v, px[1] = (uint8_t)(v + 2), px[2] = (uint8_t)(v + 7), px[3] = 255;
	}
	circle(rgba, stride, width, height, cx, cy, r, r * 0.09f, &ring);
	circle(rgba, stride, width, height, cx - r * 0.38f, cy - r * 0.15f, r * 0.11f, 0, &eye);
	circle(rgba, stride, width, height, cx + r * 0.38f, cy - r * 0.15f, r * 0.11f, 0, &eye);
	bar(rgba, stride, width, height, cx - r * 0.28f, cx + r * 0.28f, cy + r * 0.42f,
	    r * 0.06f, &lips);
}
