/* Rendering: the part palette, overlays on camera images, image files.
 *
 * Images here are RGBA, 4 bytes a pixel in R, G, B, A memory order, with a
 * row stride in bytes. Label maps are one byte a pixel (class id).
 * Functions are pure and thread-agnostic unless stated.
 */
#ifndef FACETD_RENDER_H
#define FACETD_RENDER_H

#include <stddef.h>
#include <stdint.h>

#define RENDER_NUM_CLASSES 19

/* The CelebAMask-HQ palette, by class id. */
extern const uint8_t render_palette[RENDER_NUM_CLASSES][3];

struct image {
	uint8_t *rgba; /* owned; width * 4 bytes a row */
	int width, height;
};

/* Reads a JPEG or PNG file (by its content) into RGBA. Returns a negative
 * errno; err gets "PATH: problem". */
int image_load(const char *path, struct image *img, char *err, size_t errlen);
/* Reads the sample values of an 8-bit palette or grey PNG (a label map:
 * palette indices, not colours) into a malloc'd width * height buffer. */
int image_load_labels(const char *path, uint8_t **labels, int *width,
		      int *height, char *err, size_t errlen);
/* Allocates a w x h image, zeroed. -ENOMEM or -EINVAL. */
int image_alloc(struct image *img, int width, int height);
void image_free(struct image *img);

/* Writes an 8-bit PNG: RGBA (channels 4) or grey (channels 1), written to
 * PATH.tmp then renamed, so no partial file is ever left behind. */
int image_save_png(const char *path, const uint8_t *pixels, int stride,
		   int width, int height, int channels);

/* Blends each labelled pixel's palette colour over rgba with opacity alpha
 * (0..1); background (0) is left as it is. */
void render_overlay(uint8_t *rgba, int stride, const uint8_t *labels,
		    int lstride, int width, int height, float alpha);

/* Writes the palette colour of each label (opaque RGBA). */
void render_labels(uint8_t *rgba, int stride, const uint8_t *labels,
		   int lstride, int width, int height);

/* Draws the "camera lost" frame: a camera crossed out on dark grey. */
void render_camera_lost(uint8_t *rgba, int stride, int width, int height);

/* ---- the preview window (SDL2 builds) ----
 * All preview_* functions run on the thread that opened the preview. */

struct preview;

enum preview_mode { PREVIEW_OVERLAY, PREVIEW_LABELS, PREVIEW_OUTLINES };

/* What the keys toggle: o overlay text, l legend, m display mode,
 * f face box. */
struct preview_view {
	int mode, hud, legend, face_box;
	float alpha;
};

/* Keys whose effect is outside the window: +/- opacity, ]/[ (or PgUp,
 * PgDn) model resolution, s screenshot, q/Esc quit. */
enum preview_action {
	PREVIEW_NONE, PREVIEW_QUIT, PREVIEW_ALPHA_UP, PREVIEW_ALPHA_DOWN,
	PREVIEW_RES_UP, PREVIEW_RES_DOWN, PREVIEW_SCREENSHOT,
};

/* The tuning overlay's figures. */
struct preview_hud {
	double fps_capture, fps_inference, latency_ms, encode_ms, decode_ms;
	unsigned long long dropped;
	int res;
	float alpha;
	int box_x, box_y, box_w, box_h; /* face crop; box_w 0: none */
	char source[64], status[64];
};

/* Opens a width x height window (SDL_VIDEODRIVER=offscreen works too).
 * -ENODEV with a message when there is no display. */
int preview_open(int width, int height, struct preview **out, char *err, size_t errlen);
/* Shows a frame (labels may be NULL) with the overlays. */
int preview_present(struct preview *pv, const uint8_t *rgba, int stride,
		    const uint8_t *labels, const struct preview_hud *hud);
/* Handles pending window events; returns the first action. */
enum preview_action preview_poll(struct preview *pv);
struct preview_view *preview_view(struct preview *pv);
/* Writes the window's content as a PNG. */
int preview_screenshot(struct preview *pv, const char *path);
/* Accepts NULL. */
void preview_close(struct preview *pv);

/* ---- outputs of composed frames ---- */

struct output;

/* Opens an output by spec: "y4m:PATH" ("y4m:-" = stdout). Width and height
 * must be even. Negative errno, with a message naming the output in err. */
int output_open(const char *spec, int width, int height, int fps_num, int fps_den,
		struct output **out, char *err, size_t errlen);
/* Writes one RGBA frame of the opened size. -EIO when the write fails. */
int output_write(struct output *o, const uint8_t *rgba, int stride);
/* Flushes and closes; accepts NULL. */
void output_close(struct output *o);

#endif
