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
 * PATH.tmp then renamed, so no partial file is ever left behind. Returns 0
 * or the negative errno of what failed (-ENOSPC: the disk is full). */
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

enum preview_mode { PREVIEW_OUTPUT, PREVIEW_LABELS, PREVIEW_OUTLINES };

/* What the keys toggle: o overlay text, l legend, m display mode (the
 * output's effect, labels, outlines), f face box. */
struct preview_view {
	int mode, hud, legend, face_box;
};

/* Keys whose effect is outside the window: +/- opacity, ]/[ (or PgUp,
 * PgDn) model resolution, e next effect, s screenshot, q/Esc quit. */
enum preview_action {
	PREVIEW_NONE, PREVIEW_QUIT, PREVIEW_ALPHA_UP, PREVIEW_ALPHA_DOWN,
	PREVIEW_RES_UP, PREVIEW_RES_DOWN, PREVIEW_SCREENSHOT, PREVIEW_EFFECT_NEXT,
};

/* The tuning overlay's figures. */
struct preview_hud {
	double fps_capture, fps_inference, latency_ms, encode_ms, decode_ms;
	double parts_age_ms;   /* how old the parts shown are (p50) */
	unsigned long long dropped;
	int res;
	float alpha;
	int box_x, box_y, box_w, box_h; /* face crop; box_w 0: none */
	char source[64], status[64];
};

/* Opens a width x height window (SDL_VIDEODRIVER=offscreen works too).
 * -ENODEV with a message when there is no display. */
int preview_open(int width, int height, struct preview **out, char *err, size_t errlen);
/* Shows a frame with the overlays: camera is the image as captured, output
 * the same with the effect applied (same stride); labels may be NULL. */
int preview_present(struct preview *pv, const uint8_t *camera, const uint8_t *output,
		    int stride, const uint8_t *labels, const struct preview_hud *hud);
/* Handles pending window events; returns the first action. */
enum preview_action preview_poll(struct preview *pv);
struct preview_view *preview_view(struct preview *pv);
/* SDL's renderer in use, for the log: "opengl", or "software (GL would
 * run on llvmpipe)" where GL has no hardware under it. */
const char *preview_renderer(const struct preview *pv);
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

/* ---- outputs: formats, label maps, the splash ----
 *
 * "v4l2:/dev/videoN" writes to a v4l2loopback device (V4L2 builds; else
 * -ENOTSUP): mmap streaming, frames paced at fps by a thread of the output,
 * which repeats the newest frame until another comes (and writes the
 * splash, or an empty label map, until the first). output_write() only
 * converts and hands the frame over; it never waits for the device and
 * returns -EIO while the device refuses frames. output_close() stops the
 * thread, STREAMOFF, closes. */

enum output_pixfmt { OUTPUT_YUYV, OUTPUT_I420 };

/* "yuyv" or "i420" (the --output-format words). -EINVAL otherwise. */
int output_parse_pixfmt(const char *name, enum output_pixfmt *fmt);
/* output_open() with a pixel format for v4l2 outputs (YUYV by default;
 * Y4M files are 4:2:0 whatever fmt says). */
int output_open_format(const char *spec, enum output_pixfmt fmt, int width, int height,
		       int fps_num, int fps_den, struct output **out, char *err, size_t errlen);
/* Opens a label-map output: one class id a pixel, as grey (Y4M "Cmono",
 * V4L2 GREY). Any width and height. Write it with output_write_labels(). */
int output_open_labels(const char *spec, int width, int height, int fps_num, int fps_den,
		       struct output **out, char *err, size_t errlen);
/* Writes one label map of the opened size (stride bytes a row). -EINVAL on
 * a colour output (and output_write() on a label output). */
int output_write_labels(struct output *o, const uint8_t *labels, int stride);

/* Draws the idle frame written while the camera is released or lost: a
 * calm dark frame with the facetd mark. */
void render_splash(uint8_t *rgba, int stride, int width, int height);

/* Idle pacing: a v4l2 output writes once a second instead of at its frame
 * rate (nobody reads it; the device stays attached); 0 goes back at once.
 * Any thread. No-op for other outputs. */
void output_set_idle(struct output *o, int idle);

/* ---- readers of an output: on-demand camera use ----
 *
 * Counts the processes other than this one that hold a file open (a
 * v4l2loopback node: the applications using the virtual camera). inotify
 * open/close events on the file say when to count again; the count itself
 * scans /proc, as fuser does (other users' processes are visible to root
 * only). One thread at a time. */
struct reader_watch;

int reader_watch_open(const char *path, struct reader_watch **out, char *err, size_t errlen);
/* Accepts NULL. */
void reader_watch_close(struct reader_watch *w);
/* The inotify fd: readable when the file was opened or closed. */
int reader_watch_fd(const struct reader_watch *w);
/* Consumes pending events without blocking: > 0 when some came, 0 when
 * none, or a negative errno. */
int reader_watch_drain(struct reader_watch *w);
/* Open fds on the file held by other processes, or a negative errno. */
int reader_watch_count(struct reader_watch *w);

/* ---- effects on composed frames ----
 *
 * An effect rewrites an RGBA frame in place from its label map (one byte a
 * pixel, width bytes a row). struct effect is read-only in effect_apply()
 * and its fields may be changed between calls (e.g. kind from a preview
 * key, alpha from the opacity keys); it owns its background image, so a
 * copy is a read-only view and only one of them is finished. Scratch
 * buffers belong to one thread: effect_apply() on one scratch is not
 * reentrant; different scratches run in parallel. */

enum effect_kind {
	EFFECT_NONE,     /* the camera image untouched */
	EFFECT_PARTS,    /* the part colours blended over (the preview's look) */
	EFFECT_BLUR,     /* background blurred, soft person edges */
	EFFECT_REPLACE,  /* background replaced by an image */
	EFFECT_RECOLOR,  /* hair and lips tinted, luminance kept */
	EFFECT_PRIVACY,  /* eyes (or the whole face) pixelated */
};

struct effect {
	enum effect_kind kind;
	float alpha;               /* parts: opacity, 0..1 (0.5) */
	int recolor_hair, recolor_lips; /* recolor: which parts (both) */
	uint8_t tint_hair[3];      /* recolor: RGB (copper) */
	uint8_t tint_lips[3];      /* recolor: RGB (rose) */
	float tint_amount;         /* recolor: 0 none .. 1 all tint (0.7) */
	int privacy_face;          /* privacy: the whole face, not only the eyes */
	struct image background;   /* replace: the image; owned, read-only */
	unsigned background_id;    /* replace: names the image to scratch caches */
};

/* Parses "none", "parts", "blur", "replace:IMAGE", "recolor",
 * "recolor:hair", "recolor:lips", "privacy", "privacy:eyes",
 * "privacy:face" into e, every field set (tints to their defaults).
 * replace loads IMAGE once (JPEG or PNG). Negative errno; err names the bad
 * part. On error e needs no effect_finish(). */
int effect_parse(const char *spec, struct effect *e, char *err, size_t errlen);
/* Frees the background image; accepts NULL and a zeroed struct. */
void effect_finish(struct effect *e);
/* The spec word of e ("blur", "privacy:face", ...): static storage. */
const char *effect_name(const struct effect *e);
/* "RRGGBB" or "#RRGGBB" (hex) into rgb. -EINVAL, err naming the text. */
int effect_parse_tint(const char *text, uint8_t rgb[3], char *err, size_t errlen);

/* Index where the running sum of hist[0..n) passes q (0..1) of total: the
 * extent of a group of pixels from its column or row counts, strays left
 * out. Used by the effects' eye boxes and the daemon's face tracker. */
int render_hist_quantile(const uint32_t *hist, int n, uint64_t total, double q);

/* Per-thread buffers of effect_apply(), sized for one frame size. Fields
 * are private to effects.c. A zeroed struct is valid (allocated on first
 * use); effect_apply() reallocates only when the frame size changes. */
struct effect_scratch {
	int width, height;         /* frame size the buffers are for; 0: none */
	int mw, mh;                /* mask resolution (1/4) */
	int sw, sh;                /* blur resolution (1/8) */
	uint8_t *mask;             /* (height, width): person alpha */
	uint8_t *msmall;           /* (mh, mw): person share, then its soft edge */
	uint16_t *sums;            /* box blur line: max(width, height) */
	uint8_t *small, *small2;   /* (sh, sw, 4) */
	uint8_t *bgw;              /* (sh, sw): background weight */
	int32_t *cumsum;           /* ARGBBlur table: (sh + 1, sw, 4), 16-aligned */
	uint32_t *hist;            /* privacy: 3 * (width + height) */
	uint8_t *back;             /* (height, width, 4): blurred background; lazy */
	uint8_t *replaced;         /* (height, width, 4): scaled image; lazy */
	unsigned replaced_id;      /* background_id held by replaced; 0: none */
	uint8_t ramp[256];         /* soft-edge curve */
};

/* Allocates s (zeroed or finished) for width x height frames. -EINVAL,
 * -ENOMEM. */
int effect_scratch_init(struct effect_scratch *s, int width, int height);
/* Frees the buffers and zeroes s; accepts NULL. */
void effect_scratch_finish(struct effect_scratch *s);

/* Applies e to rgba (R, G, B, A bytes; stride bytes a row) in place, from
 * labels (class ids, width bytes a row). Alpha bytes are left as they are.
 * Allocates only when s is new or the frame size changed. 0, -EINVAL (bad
 * arguments, no replacement image), -ENOMEM. */
int effect_apply(const struct effect *e, uint8_t *rgba, int stride, const uint8_t *labels,
		 int width, int height, struct effect_scratch *s);

#endif
