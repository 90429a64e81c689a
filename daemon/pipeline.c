/* DESIGN
 *
 * Slots: NSLOTS frame buffers (RGBA + labels). Four SPSC rings move slot
 * indices:  free (inference -> capture), filled (capture -> inference),
 * done (inference -> output), back (output -> inference). The inference
 * thread is the hub that returns slots to the free ring, so each ring has
 * exactly one producer and one consumer. Each ring holds every slot, so a
 * push never fails.
 *
 * Wake-ups go through eventfds (capture -> inference, output -> inference,
 * inference -> output); a thread waits in poll() with a timeout so that a
 * stop request is seen even without a wake-up.
 *
 * Ownership: a slot index is held by exactly one thread at a time; its
 * buffers are touched only by that thread. Counters are atomics; the
 * latency histogram is an array of atomic buckets.
 */
#include "pipeline.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "render.h"
#include "ring.h"

#define NSLOTS 8
#define LAT_BUCKETS 2000     /* 0.5 ms each: up to 1 s */
#define LAT_BUCKET_MS 0.5
#define LOST_AFTER 5         /* frames without a face before going wide */
#define CROP_MARGIN 1.5      /* crop wider than the portraits: shoulders for the effects */
#define CROP_DROP 0.08       /* and lower, by this share of the side: the body, not the sky */

struct slot {
	uint8_t *rgba;     /* width * height * 4 */
	uint8_t *labels;   /* width * height */
	uint64_t sequence;
	int64_t captured_ns;
	int splash;        /* a "camera lost" frame: nothing to infer */
	int box[4];        /* face crop x, y, w, h; w 0: whole frame */
};

/* Inference thread only. */
struct tracker {
	int have_face, lost;
	double cx, cy, side; /* smoothed crop, frame pixels */
};

struct crop {
	int x, y, w, h;
};

struct pipeline {
	struct pipeline_config cfg;
	const struct model *model;
	struct model_run *run;        /* inference thread */
	struct capture *cap;          /* capture thread */
	struct output *outs[PIPELINE_MAX_OUTPUTS]; /* output thread */
	int width, height;
	struct slot slots[NSLOTS];
	uint8_t *scratch;             /* capture thread: frames with no slot */
	uint8_t *composed;            /* output thread: the frame written out */
	struct effect fx;             /* output thread */
	struct effect_scratch fx_scratch; /* output thread */
	struct output *label_outs[PIPELINE_MAX_OUTPUTS]; /* output thread */
	pthread_mutex_t fx_lock;      /* guards fx_next */
	struct effect fx_next;        /* a new effect handed to the output thread */
	atomic_bool fx_pending;
	enum output_pixfmt out_format;
	struct preview *preview;      /* output thread */
	struct ring free_ring, filled, done, back;
	int wake_infer, wake_output, wake_main;
	pthread_t th_capture, th_infer, th_output;
	int started;
	struct tracker track;
	atomic_bool stop, capture_done, infer_done, output_done;
	atomic_uint_fast64_t captured, inferred, written, dropped_stale, dropped_capture;
	atomic_uint_fast64_t capture_errors, output_errors, encode_us, decode_us;
	atomic_int face_tracked;
	atomic_bool camera_lost;
	/* live settings: written by any thread, read by the inference thread */
	atomic_int set_res, set_refine, set_threads, set_alpha_pct, paused;
	int threads_applied;          /* inference thread */
	/* snapshot request: under snap_lock */
	pthread_mutex_t snap_lock;
	pthread_cond_t snap_cond;
	atomic_bool snap_pending;
	char snap_path[4096];
	int snap_result;
	atomic_uint_fast64_t latency[LAT_BUCKETS];
	int64_t start_ns;
	atomic_int debug_stall_ms;    /* pipeline_debug_stall() */
	/* temporal smoothing and its measure; the inference thread's */
	atomic_int set_smooth_pct;
	struct crop last_crop;
	int last_res;
	uint8_t *prev_labels;         /* labels of the previous inferred frame */
	int prev_valid;
	atomic_uint_fast64_t flicker_changed, flicker_pixels;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void wake(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* counter saturated: the fd is readable anyway */
	}
}

/* Waits for a wake-up or timeout_ms, then clears the eventfd. */
static void wait_wake(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, timeout_ms) > 0 && read(fd, &v, sizeof(v)) < 0) {
		/* raced with another reader: nothing to clear */
	}
}

/* ---- capture thread ---- */

static void *capture_main(void *arg)
{
	struct pipeline *p = arg;
	uint32_t idx = UINT32_MAX; /* slot held, if any */
	char err[512];

	while (!atomic_load(&p->stop)) {
		if (idx == UINT32_MAX && !ring_pop(&p->free_ring, &idx))
			idx = UINT32_MAX;
		struct slot *s = idx == UINT32_MAX ? NULL : &p->slots[idx];
		struct capture_frame f = { .rgba = s ? s->rgba : p->scratch, .stride = p->width * 4 };
		int r = capture_read(p->cap, &f, err, sizeof(err));
		if (r == -EINTR || r == -ENODATA) {
			if (r == -ENODATA)
				log_info("%s: end of stream", capture_get_info(p->cap)->name);
			break;
		}
		if (r == -ENODEV) {
			if (!atomic_exchange(&p->camera_lost, true))
				log_warn("%s; retrying every second", err);
			if (s) {
				render_camera_lost(s->rgba, p->width * 4, p->width, p->height);
				s->splash = 1;
				s->captured_ns = now_ns();
				ring_push(&p->filled, idx);
				idx = UINT32_MAX;
				wake(p->wake_infer);
			}
			continue;
		}
		if (atomic_exchange(&p->camera_lost, false) && r == 0)
			log_info("%s: camera back", capture_get_info(p->cap)->name);
		if (r < 0) {
			log_warn("%s", err);
			atomic_fetch_add(&p->capture_errors, 1);
			continue;
		}
		if (!s) {
			atomic_fetch_add(&p->dropped_capture, 1);
			continue;
		}
		s->sequence = f.sequence;
		s->captured_ns = f.timestamp_ns;
		s->splash = 0;
		ring_push(&p->filled, idx);
		idx = UINT32_MAX;
		atomic_fetch_add(&p->captured, 1);
		wake(p->wake_infer);
	}
	atomic_store(&p->capture_done, true);
	wake(p->wake_infer);
	return NULL;
}

/* ---- inference thread ---- */

static void debug_stall(struct pipeline *p);

/* Slots the output thread is done with go back to the capture thread. */
static void recycle(struct pipeline *p)
{
	uint32_t idx;

	while (ring_pop(&p->back, &idx))
		ring_push(&p->free_ring, idx);
}

static void apply_threads(struct pipeline *p)
{
	int t = atomic_load(&p->set_threads);

	if (t != p->threads_applied) {
		model_set_threads(t);
		p->threads_applied = t;
	}
}

/* The newest filled slot; older ones are dropped. false when none. */
static bool take_newest(struct pipeline *p, uint32_t *out)
{
	uint32_t idx;
	bool got = false;

	while (ring_pop(&p->filled, &idx)) {
		if (got) {
			ring_push(&p->free_ring, *out);
			atomic_fetch_add(&p->dropped_stale, 1);
		}
		*out = idx;
		got = true;
	}
	return got;
}

static struct crop choose_crop(const struct pipeline *p)
{
	const struct tracker *t = &p->track;
	int limit = p->width < p->height ? p->width : p->height;
	int side;
	struct crop c;

	if (!t->have_face)
		return (struct crop){ 0, 0, p->width, p->height };
	side = (int)lround(t->side);
	side = side < 32 ? 32 : (side > limit ? limit : side);
	c.x = (int)lround(t->cx - side / 2.0);
	c.y = (int)lround(t->cy - side / 2.0);
	c.x = c.x < 0 ? 0 : (c.x > p->width - side ? p->width - side : c.x);
	c.y = c.y < 0 ? 0 : (c.y > p->height - side ? p->height - side : c.y);
	c.w = c.h = side;
	return c;
}

static bool is_face_class(uint8_t l)
{
	/* skin, nose, eyes, brows, mouth, lips */
	return l == 1 || l == 2 || (l >= 4 && l <= 7) || (l >= 10 && l <= 12);
}

/* Updates the tracker from the face pixels of the labels in crop c: the
 * crop frames the face as the training portraits do (face box 0.50 of the
 * side wide, 0.70 high, centred 5.5 % below the middle), with a margin and lower, for the shoulders. */
static void track_face(struct pipeline *p, const uint8_t *labels, struct crop c,
		       uint32_t *cols, uint32_t *rows)
{
	struct tracker *t = &p->track;
	uint64_t n = 0;

	memset(cols, 0, sizeof(uint32_t) * p->width);
	memset(rows, 0, sizeof(uint32_t) * p->height);
	for (int y = c.y; y < c.y + c.h; y++) {
		const uint8_t *l = labels + (size_t)y * p->width;
		for (int x = c.x; x < c.x + c.w; x++) {
			if (is_face_class(l[x])) {
				cols[x]++;
				rows[y]++;
				n++;
			}
		}
	}
	if (n < (uint64_t)c.w * c.h / 200) {
		if (t->have_face && ++t->lost > LOST_AFTER)
			t->have_face = 0;
		return;
	}
	double x0 = render_hist_quantile(cols, p->width, n, 0.01);
	double x1 = render_hist_quantile(cols, p->width, n, 0.99);
	double y0 = render_hist_quantile(rows, p->height, n, 0.01);
	double y1 = render_hist_quantile(rows, p->height, n, 0.99);
	double side = CROP_MARGIN * fmax((x1 - x0 + 1) / 0.50, (y1 - y0 + 1) / 0.70);
	double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2 + (CROP_DROP - 0.055) * side;
	double a = t->have_face ? 0.35 : 1.0; /* exponential smoothing */
	t->cx += a * (cx - t->cx);
	t->cy += a * (cy - t->cy);
	t->side += a * (side - t->side);
	t->have_face = 1;
	t->lost = 0;
}

/* Smoothing blends successive encodes of the same view: a crop that moved
 * or changed size by more than 5 % of its side, or a new resolution, starts
 * afresh (and is not counted in the flicker measure). */
static int same_view(const struct pipeline *p, struct crop c, int res)
{
	const struct crop *l = &p->last_crop;
	int tol = (c.w > c.h ? c.w : c.h) / 20;

	return p->prev_valid && res == p->last_res && abs(c.x - l->x) <= tol &&
	       abs(c.y - l->y) <= tol && abs(c.w - l->w) <= tol && abs(c.h - l->h) <= tol;
}

/* Label flicker: the share of pixels whose label changed since the
 * previous frame of the same view. */
static void measure_flicker(struct pipeline *p, const uint8_t *labels, int same)
{
	size_t n = (size_t)p->width * p->height, changed = 0;

	if (same) {
		for (size_t i = 0; i < n; i++)
			changed += labels[i] != p->prev_labels[i];
		atomic_fetch_add(&p->flicker_changed, changed);
		atomic_fetch_add(&p->flicker_pixels, n);
	}
	memcpy(p->prev_labels, labels, n);
	p->prev_valid = 1;
}

static int infer_slot(struct pipeline *p, struct slot *s, uint32_t *cols, uint32_t *rows)
{
	if (s->splash) {
		memset(s->labels, 0, (size_t)p->width * p->height);
		s->box[2] = 0;
		p->prev_valid = 0;
		return 0;
	}
	struct crop c = choose_crop(p);
	struct model_refine refine = { .step = atomic_load(&p->set_refine) };
	int res = atomic_load(&p->set_res);
	const uint8_t *src = s->rgba + ((size_t)c.y * p->width + c.x) * 4;
	double enc, dec;
	int r, same = same_view(p, c, res);

	model_run_set_smoothing(p->run, atomic_load(&p->set_smooth_pct) / 100.0f);
	if (!same)
		model_run_reset_smoothing(p->run);
	p->last_crop = c;
	p->last_res = res;
	r = model_encode_rgba(p->run, src, p->width * 4, c.w, c.h, res);
	if (r < 0)
		return r;
	if (c.w != p->width || c.h != p->height)
		memset(s->labels, 0, (size_t)p->width * p->height);
	r = model_decode_labels(p->run, c.w, c.h, s->labels + (size_t)c.y * p->width + c.x,
				p->width, &refine);
	if (r < 0)
		return r;
	model_run_timing(p->run, &enc, &dec);
	atomic_fetch_add(&p->encode_us, (uint64_t)(enc * 1000));
	atomic_fetch_add(&p->decode_us, (uint64_t)(dec * 1000));
	atomic_store(&p->face_tracked, p->track.have_face);
	measure_flicker(p, s->labels, same);
	track_face(p, s->labels, c, cols, rows);
	s->box[0] = c.x, s->box[1] = c.y, s->box[2] = c.w, s->box[3] = c.h;
	return 0;
}

static void *infer_main(void *arg)
{
	struct pipeline *p = arg;
	uint32_t *cols = calloc((size_t)p->width, sizeof(uint32_t));
	uint32_t *rows = calloc((size_t)p->height, sizeof(uint32_t));
	uint32_t idx;

	while (cols && rows && !atomic_load(&p->stop)) {
		debug_stall(p);
		recycle(p);
		apply_threads(p);
		if (!take_newest(p, &idx)) {
			if (atomic_load(&p->capture_done) && ring_count(&p->filled) == 0)
				break;
			wait_wake(p->wake_infer, 100);
			continue;
		}
		if (atomic_load(&p->paused)) {
			ring_push(&p->free_ring, idx);
			atomic_fetch_add(&p->dropped_stale, 1);
			continue;
		}
		int r = infer_slot(p, &p->slots[idx], cols, rows);
		if (r < 0) {
			log_warn("inference failed on frame %llu: %s",
				 (unsigned long long)p->slots[idx].sequence, strerror(-r));
			ring_push(&p->free_ring, idx);
			continue;
		}
		ring_push(&p->done, idx);
		atomic_fetch_add(&p->inferred, 1);
		wake(p->wake_output);
	}
	if (!cols || !rows)
		log_err("inference: out of memory");
	free(cols);
	free(rows);
	atomic_store(&p->infer_done, true);
	wake(p->wake_output);
	return NULL;
}

/* ---- output thread ---- */

static void record_latency(struct pipeline *p, int64_t captured_ns)
{
	double ms = (now_ns() - captured_ns) / 1e6;
	int b = (int)(ms / LAT_BUCKET_MS);

	b = b < 0 ? 0 : (b >= LAT_BUCKETS ? LAT_BUCKETS - 1 : b);
	atomic_fetch_add(&p->latency[b], 1);
}

/* Takes a new effect handed over by pipeline_set_effect(). */
static void take_effect(struct pipeline *p)
{
	struct effect old;

	if (!atomic_load(&p->fx_pending))
		return;
	pthread_mutex_lock(&p->fx_lock);
	old = p->fx;
	p->fx = p->fx_next;
	atomic_store(&p->fx_pending, false);
	pthread_mutex_unlock(&p->fx_lock);
	effect_finish(&old);
}

/* The composed frame of the outputs: the effect applied to the image. */
static const uint8_t *compose(struct pipeline *p, const struct slot *s)
{
	size_t n = (size_t)p->width * p->height * 4;

	memcpy(p->composed, s->rgba, n);
	if (s->splash)
		return p->composed;
	take_effect(p);
	p->fx.alpha = atomic_load(&p->set_alpha_pct) / 100.0f;
	if (effect_apply(&p->fx, p->composed, p->width * 4, s->labels, p->width, p->height,
			 &p->fx_scratch) < 0)
		memcpy(p->composed, s->rgba, n); /* out of memory: the image as it is */
	return p->composed;
}

static void write_outputs(struct pipeline *p, const struct slot *s)
{
	const uint8_t *frame = compose(p, s);

	for (int i = 0; i < p->cfg.n_label_outputs; i++) {
		if (output_write_labels(p->label_outs[i], s->labels, p->width) < 0 &&
		    atomic_fetch_add(&p->output_errors, 1) == 0)
			log_err("%s: write failed", p->cfg.label_outputs[i]);
	}
	for (int i = 0; i < p->cfg.n_outputs; i++) {
		if (output_write(p->outs[i], frame, p->width * 4) < 0) {
			if (atomic_fetch_add(&p->output_errors, 1) == 0)
				log_err("%s: write failed", p->cfg.outputs[i]);
		}
	}
}

static void take_snapshot(struct pipeline *p, const struct slot *s)
{
	pthread_mutex_lock(&p->snap_lock);
	if (atomic_load(&p->snap_pending)) {
		p->snap_result = image_save_png(p->snap_path, s->rgba, p->width * 4, p->width,
						p->height, 4);
		atomic_store(&p->snap_pending, false);
		pthread_cond_broadcast(&p->snap_cond);
	}
	pthread_mutex_unlock(&p->snap_lock);
}

/* ---- the preview window: output thread ---- */

#if HAVE_SDL2
static void preview_start(struct pipeline *p)
{
	char err[256];

	if (!p->cfg.preview)
		return;
	if (preview_open(p->width, p->height, &p->preview, err, sizeof(err)) < 0)
		log_warn("%s; going on without it", err);
	else
		preview_view(p->preview)->face_box = 0;
}

static void fill_hud(struct pipeline *p, const struct slot *s, struct preview_hud *h)
{
	struct pipeline_stats st;

	pipeline_get_stats(p, &st);
	*h = (struct preview_hud){
		.fps_capture = st.fps_capture, .fps_inference = st.fps_inference,
		.latency_ms = st.latency_ms_p50, .encode_ms = st.encode_ms, .decode_ms = st.decode_ms,
		.dropped = st.dropped_stale + st.dropped_capture, .res = st.res, .alpha = st.alpha,
		.box_x = s->box[0], .box_y = s->box[1], .box_w = s->box[2], .box_h = s->box[3],
	};
	snprintf(h->source, sizeof(h->source), "%.40s %dx%d", st.source, st.width, st.height);
	snprintf(h->status, sizeof(h->status), "%s%s  effect %s", st.camera_lost ? "camera lost  " : "",
		 st.face_tracked ? "face tracked" : "whole image", effect_name(&p->fx));
}

static void preview_show(struct pipeline *p, const struct slot *s)
{
	struct preview_hud hud;

	if (!p->preview)
		return;
	fill_hud(p, s, &hud);
	preview_present(p->preview, s->rgba, p->composed, p->width * 4,
			s->splash ? NULL : s->labels, &hud);
}

static void screenshot(struct pipeline *p, const char *path)
{
	int r = preview_screenshot(p->preview, path);

	if (r < 0)
		log_warn("%s: cannot write the screenshot: %s", path, strerror(-r));
	else
		log_info("screenshot: %s", path);
}

/* The preview's e key: none, parts, blur, recolor, privacy, and replace
 * when an image was given. */
static void next_effect(struct pipeline *p)
{
	enum effect_kind k = p->fx.kind;

	do
		k = k == EFFECT_PRIVACY ? EFFECT_NONE : k + 1;
	while (k == EFFECT_REPLACE && !p->fx.background.rgba);
	p->fx.kind = k;
	log_info("effect: %s", effect_name(&p->fx));
}

static void preview_events(struct pipeline *p)
{
	static const int res_steps[] = { 96, 128, 160, 192, 224, 256 };
	int res = pipeline_get_res(p), pct = atomic_load(&p->set_alpha_pct), i = 0;
	char path[64];

	if (!p->preview)
		return;
	while (i < 5 && res_steps[i] < res)
		i++;
	switch (preview_poll(p->preview)) {
	case PREVIEW_QUIT: pipeline_request_stop(p); break;
	case PREVIEW_ALPHA_UP: pipeline_set_alpha(p, (pct < 90 ? pct + 10 : 100) / 100.0f); break;
	case PREVIEW_ALPHA_DOWN: pipeline_set_alpha(p, (pct > 10 ? pct - 10 : 0) / 100.0f); break;
	case PREVIEW_RES_UP: pipeline_set_res(p, res_steps[i < 5 ? i + 1 : 5]); break;
	case PREVIEW_RES_DOWN: pipeline_set_res(p, res_steps[i > 0 ? i - 1 : 0]); break;
	case PREVIEW_EFFECT_NEXT: next_effect(p); break;
	case PREVIEW_SCREENSHOT:
		snprintf(path, sizeof(path), "facetd-%lld.png", (long long)(now_ns() / 1000000));
		screenshot(p, path);
		break;
	case PREVIEW_NONE: break;
	}
}

static void preview_finish(struct pipeline *p)
{
	if (p->preview && p->cfg.screenshot)
		screenshot(p, p->cfg.screenshot);
	preview_close(p->preview);
	p->preview = NULL;
}
#else
static void preview_start(struct pipeline *p)
{
	if (p->cfg.preview)
		log_warn("this build has no preview window (-Dsdl2=enabled)");
}
static void preview_show(struct pipeline *p, const struct slot *s) { (void)p, (void)s; }
static void preview_events(struct pipeline *p) { (void)p; }
static void preview_finish(struct pipeline *p) { (void)p; }
#endif

static void *output_main(void *arg)
{
	struct pipeline *p = arg;
	uint32_t idx;

	preview_start(p);
	for (;;) {
		preview_events(p);
		if (!ring_pop(&p->done, &idx)) {
			if (atomic_load(&p->infer_done) && ring_count(&p->done) == 0)
				break;
			wait_wake(p->wake_output, p->preview ? 30 : 100);
			continue;
		}
		if (atomic_load(&p->paused)) {
			ring_push(&p->back, idx);
			continue;
		}
		write_outputs(p, &p->slots[idx]);
		preview_show(p, &p->slots[idx]);
		if (atomic_load(&p->snap_pending) && !atomic_load(&p->paused))
			take_snapshot(p, &p->slots[idx]);
		record_latency(p, p->slots[idx].captured_ns);
		ring_push(&p->back, idx);
		wake(p->wake_infer);
		uint64_t n = atomic_fetch_add(&p->written, 1) + 1;
		if (p->cfg.max_frames && n >= p->cfg.max_frames) {
			pipeline_request_stop(p);
			break;
		}
	}
	preview_finish(p);
	atomic_store(&p->output_done, true);
	wake(p->wake_main);
	return NULL;
}

/* ---- setup ---- */

static int alloc_slots(struct pipeline *p)
{
	size_t px = (size_t)p->width * p->height;
	int r;

	r = ring_init(&p->free_ring, NSLOTS);
	r = r ? r : ring_init(&p->filled, NSLOTS);
	r = r ? r : ring_init(&p->done, NSLOTS);
	r = r ? r : ring_init(&p->back, NSLOTS);
	if (r < 0)
		return r;
	p->scratch = malloc(px * 4);
	p->composed = malloc(px * 4);
	p->prev_labels = malloc(px);
	if (!p->scratch || !p->composed || !p->prev_labels)
		return -ENOMEM;
	for (uint32_t i = 0; i < NSLOTS; i++) {
		p->slots[i].rgba = malloc(px * 4);
		p->slots[i].labels = calloc(px, 1);
		if (!p->slots[i].rgba || !p->slots[i].labels)
			return -ENOMEM;
		ring_push(&p->free_ring, i);
	}
	return 0;
}

static int open_outputs(struct pipeline *p, char *err, size_t errlen)
{
	const struct capture_info *in = capture_get_info(p->cap);

	for (int i = 0; i < p->cfg.n_outputs; i++) {
		int r = output_open_format(p->cfg.outputs[i], p->out_format, p->width,
					   p->height, in->fps_num, in->fps_den, &p->outs[i], err, errlen);
		if (r < 0)
			return r;
	}
	for (int i = 0; i < p->cfg.n_label_outputs; i++) {
		int r = output_open_labels(p->cfg.label_outputs[i], p->width, p->height,
					   in->fps_num, in->fps_den, &p->label_outs[i], err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

static int start_threads(struct pipeline *p)
{
	if (pthread_create(&p->th_output, NULL, output_main, p) != 0)
		return -EAGAIN;
	p->started = 1;
	if (pthread_create(&p->th_infer, NULL, infer_main, p) != 0) {
		atomic_store(&p->infer_done, true);
		return -EAGAIN;
	}
	p->started = 2;
	if (pthread_create(&p->th_capture, NULL, capture_main, p) != 0) {
		atomic_store(&p->capture_done, true);
		return -EAGAIN;
	}
	p->started = 3;
	return 0;
}

/* An effect from its spec and tints (NULL: defaults). */
static int build_effect(const char *spec, const char *hair, const char *lips, struct effect *e,
			char *err, size_t errlen)
{
	int r = effect_parse(spec ? spec : "parts", e, err, errlen);

	if (r == 0 && hair)
		r = effect_parse_tint(hair, e->tint_hair, err, errlen);
	if (r == 0 && lips)
		r = effect_parse_tint(lips, e->tint_lips, err, errlen);
	if (r < 0)
		effect_finish(e);
	return r;
}

static int parse_format(const char *name, enum output_pixfmt *fmt, char *err, size_t errlen)
{
	if (!name || output_parse_pixfmt(name, fmt) == 0)
		return 0;
	snprintf(err, errlen, "output-format: '%s' is not yuyv or i420", name);
	return -EINVAL;
}

int pipeline_check_effect(const char *spec, const char *tint_hair, const char *tint_lips,
			  char *err, size_t errlen)
{
	struct effect e;
	int r = build_effect(spec, tint_hair, tint_lips, &e, err, errlen);

	if (r == 0)
		effect_finish(&e);
	return r;
}

int pipeline_start(const struct pipeline_config *cfg, const struct model *m,
		   struct pipeline **out, char *err, size_t errlen)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	int r;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->model = m;
	p->wake_infer = p->wake_output = p->wake_main = -1;
	pthread_mutex_init(&p->snap_lock, NULL);
	pthread_mutex_init(&p->fx_lock, NULL);
	pthread_cond_init(&p->snap_cond, NULL);
	atomic_init(&p->set_res, cfg->res);
	atomic_init(&p->set_refine, cfg->refine);
	atomic_init(&p->set_threads, cfg->threads);
	atomic_init(&p->set_smooth_pct, cfg->smoothing);
	atomic_init(&p->set_alpha_pct, (int)lroundf(cfg->alpha * 100));
	p->wake_infer = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->wake_output = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->wake_main = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->wake_infer < 0 || p->wake_output < 0 || p->wake_main < 0) {
		r = -errno;
		goto fail;
	}
	r = capture_open(cfg->source, &cfg->capture, &p->cap, err, errlen);
	if (r < 0)
		goto fail;
	p->width = capture_get_info(p->cap)->width & ~1;
	p->height = capture_get_info(p->cap)->height & ~1;
	p->run = cfg->res >= model_get_info(m)->res_min && cfg->res <= model_get_info(m)->res_max
		 ? model_run_create(m, model_get_info(m)->res_max) : NULL;
	if (!p->run) {
		snprintf(err, errlen, "--res %d: outside what the model takes", cfg->res);
		r = -EINVAL;
		goto fail;
	}
	r = model_run_reserve(p->run, p->width, p->height, cfg->refine);
	r = r ? r : alloc_slots(p);
	if (r < 0) {
		snprintf(err, errlen, "out of memory for %dx%d frames", p->width, p->height);
		goto fail;
	}
	r = build_effect(cfg->effect, cfg->tint_hair, cfg->tint_lips, &p->fx, err, errlen);
	r = r ? r : parse_format(cfg->output_format, &p->out_format, err, errlen);
	r = r ? r : effect_scratch_init(&p->fx_scratch, p->width, p->height);
	r = r ? r : open_outputs(p, err, errlen);
	if (r < 0)
		goto fail;
	p->start_ns = now_ns();
	r = start_threads(p);
	if (r < 0) {
		snprintf(err, errlen, "cannot start threads");
		goto fail;
	}
	*out = p;
	return 0;
fail:
	pipeline_destroy(p);
	return r;
}

void pipeline_request_stop(struct pipeline *p)
{
	atomic_store(&p->stop, true);
	if (p->cap)
		capture_interrupt(p->cap);
	wake(p->wake_infer);
	wake(p->wake_output);
	wake(p->wake_main);
}

int pipeline_wait(struct pipeline *p, int timeout_ms)
{
	if (atomic_load(&p->output_done))
		return 1;
	wait_wake(p->wake_main, timeout_ms);
	return atomic_load(&p->output_done) ? 1 : 0;
}

void pipeline_destroy(struct pipeline *p)
{
	if (!p)
		return;
	if (p->started) {
		pipeline_request_stop(p);
		if (p->started >= 3)
			pthread_join(p->th_capture, NULL);
		if (p->started >= 2)
			pthread_join(p->th_infer, NULL);
		pthread_join(p->th_output, NULL);
	}
	for (int i = 0; i < PIPELINE_MAX_OUTPUTS; i++) {
		output_close(p->outs[i]);
		output_close(p->label_outs[i]);
	}
	effect_finish(&p->fx);
	if (atomic_load(&p->fx_pending))
		effect_finish(&p->fx_next);
	effect_scratch_finish(&p->fx_scratch);
	pthread_mutex_destroy(&p->fx_lock);
	capture_close(p->cap);
	model_run_destroy(p->run);
	for (int i = 0; i < NSLOTS; i++) {
		free(p->slots[i].rgba);
		free(p->slots[i].labels);
	}
	free(p->scratch);
	free(p->composed);
	free(p->prev_labels);
	pthread_mutex_destroy(&p->snap_lock);
	pthread_cond_destroy(&p->snap_cond);
	if (p->free_ring.cells) {
		ring_finish(&p->free_ring);
		ring_finish(&p->filled);
		ring_finish(&p->done);
		ring_finish(&p->back);
	}
	for (int i = 0; i < 3; i++) {
		int fd = i == 0 ? p->wake_infer : (i == 1 ? p->wake_output : p->wake_main);
		if (fd >= 0)
			close(fd);
	}
	free(p);
}

/* ---- live settings ---- */

int pipeline_set_res(struct pipeline *p, int res)
{
	const struct model_info *in = model_get_info(p->model);

	if (res < in->res_min || res > in->res_max)
		return -EINVAL;
	atomic_store(&p->set_res, res);
	return 0;
}

int pipeline_set_effect(struct pipeline *p, const char *spec, const char *tint_hair,
			const char *tint_lips, char *err, size_t errlen)
{
	struct effect e;
	int r = build_effect(spec, tint_hair, tint_lips, &e, err, errlen);

	if (r < 0)
		return r;
	pthread_mutex_lock(&p->fx_lock);
	if (atomic_load(&p->fx_pending))
		effect_finish(&p->fx_next);
	p->fx_next = e;
	atomic_store(&p->fx_pending, true);
	pthread_mutex_unlock(&p->fx_lock);
	return 0;
}

int pipeline_set_smoothing(struct pipeline *p, int pct)
{
	if (pct < 0 || pct > 95)
		return -EINVAL;
	atomic_store(&p->set_smooth_pct, pct);
	return 0;
}

int pipeline_get_res(struct pipeline *p)
{
	return atomic_load(&p->set_res);
}

int pipeline_set_refine(struct pipeline *p, int step)
{
	if (step < 1 || step > 64)
		return -EINVAL;
	atomic_store(&p->set_refine, step);
	return 0;
}

int pipeline_set_threads(struct pipeline *p, int threads)
{
	if (threads < 1 || threads > 64)
		return -EINVAL;
	atomic_store(&p->set_threads, threads);
	return 0;
}

int pipeline_set_alpha(struct pipeline *p, float alpha)
{
	if (!(alpha >= 0.0f && alpha <= 1.0f))
		return -EINVAL;
	atomic_store(&p->set_alpha_pct, (int)lroundf(alpha * 100));
	return 0;
}

void pipeline_set_paused(struct pipeline *p, int paused)
{
	atomic_store(&p->paused, paused != 0);
}

int pipeline_snapshot(struct pipeline *p, const char *path, int timeout_ms)
{
	struct timespec until;
	int r = 0;

	if (strlen(path) >= sizeof(p->snap_path))
		return -ENAMETOOLONG;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->snap_lock);
	while (atomic_load(&p->snap_pending) && r == 0) /* another request first */
		r = pthread_cond_timedwait(&p->snap_cond, &p->snap_lock, &until);
	if (r == 0) {
		snprintf(p->snap_path, sizeof(p->snap_path), "%s", path);
		atomic_store(&p->snap_pending, true);
		while (atomic_load(&p->snap_pending) && r == 0)
			r = pthread_cond_timedwait(&p->snap_cond, &p->snap_lock, &until);
		if (r != 0 && atomic_load(&p->snap_pending))
			atomic_store(&p->snap_pending, false); /* give up: no frame came */
		else
			r = 0;
	}
	r = r ? -ETIMEDOUT : p->snap_result;
	pthread_mutex_unlock(&p->snap_lock);
	return r;
}

/* ---- stats ---- */

static double latency_quantile(struct pipeline *p, double q)
{
	uint64_t total = 0, acc = 0, want;

	for (int i = 0; i < LAT_BUCKETS; i++)
		total += atomic_load(&p->latency[i]);
	if (!total)
		return 0;
	want = (uint64_t)ceil(q * (double)total);
	for (int i = 0; i < LAT_BUCKETS; i++) {
		acc += atomic_load(&p->latency[i]);
		if (acc >= want)
			return (i + 0.5) * LAT_BUCKET_MS;
	}
	return LAT_BUCKETS * LAT_BUCKET_MS;
}

void pipeline_get_stats(struct pipeline *p, struct pipeline_stats *st)
{
	double secs = (now_ns() - p->start_ns) / 1e9;
	uint64_t inferred;

	memset(st, 0, sizeof(*st));
	snprintf(st->source, sizeof(st->source), "%s", capture_get_info(p->cap)->name);
	st->width = p->width;
	st->height = p->height;
	st->res = p->cfg.res;
	st->captured = atomic_load(&p->captured);
	st->inferred = inferred = atomic_load(&p->inferred);
	st->written = atomic_load(&p->written);
	st->dropped_stale = atomic_load(&p->dropped_stale);
	st->dropped_capture = atomic_load(&p->dropped_capture);
	st->capture_errors = atomic_load(&p->capture_errors);
	st->output_errors = atomic_load(&p->output_errors);
	st->fps_capture = secs > 0 ? st->captured / secs : 0;
	st->fps_inference = secs > 0 ? inferred / secs : 0;
	st->fps_output = secs > 0 ? st->written / secs : 0;
	st->latency_ms_p50 = latency_quantile(p, 0.50);
	st->latency_ms_p99 = latency_quantile(p, 0.99);
	st->encode_ms = inferred ? atomic_load(&p->encode_us) / 1000.0 / inferred : 0;
	st->decode_ms = inferred ? atomic_load(&p->decode_us) / 1000.0 / inferred : 0;
	st->face_tracked = atomic_load(&p->face_tracked);
	st->paused = atomic_load(&p->paused);
	st->camera_lost = atomic_load(&p->camera_lost);
	st->smoothing = atomic_load(&p->set_smooth_pct);
	uint64_t fp = atomic_load(&p->flicker_pixels);
	st->flicker_pct = fp ? 100.0 * atomic_load(&p->flicker_changed) / fp : 0;
	st->refine = atomic_load(&p->set_refine);
	st->threads = atomic_load(&p->set_threads);
	st->alpha = atomic_load(&p->set_alpha_pct) / 100.0f;
	st->res = atomic_load(&p->set_res);
	st->finished = atomic_load(&p->output_done);
}

int pipeline_stats_json(const struct pipeline_stats *st, char *buf, size_t len)
{
	return snprintf(buf, len,
			"{\"source\": \"%s\", \"width\": %d, \"height\": %d, \"res\": %d, "
			"\"frames_captured\": %llu, \"frames_inferred\": %llu, \"frames_written\": %llu, "
			"\"dropped_stale\": %llu, \"dropped_capture\": %llu, \"capture_errors\": %llu, "
			"\"output_errors\": %llu, \"fps_capture\": %.2f, \"fps_inference\": %.2f, "
			"\"fps_output\": %.2f, \"latency_ms_p50\": %.1f, \"latency_ms_p99\": %.1f, "
			"\"encode_ms\": %.2f, \"decode_ms\": %.2f, \"face_tracked\": %s, "
			"\"camera\": \"%s\", \"smoothing\": %d, \"flicker_pct\": %.3f}",
			st->source, st->width, st->height, st->res,
			(unsigned long long)st->captured, (unsigned long long)st->inferred,
			(unsigned long long)st->written, (unsigned long long)st->dropped_stale,
			(unsigned long long)st->dropped_capture, (unsigned long long)st->capture_errors,
			(unsigned long long)st->output_errors, st->fps_capture, st->fps_inference,
			st->fps_output, st->latency_ms_p50, st->latency_ms_p99, st->encode_ms,
			st->decode_ms, st->face_tracked ? "true" : "false",
			st->camera_lost ? "lost" : (st->finished ? "ended" : "streaming"),
			st->smoothing, st->flicker_pct);
}

/* ---- test hook ---- */

void pipeline_debug_stall(struct pipeline *p, int ms)
{
	atomic_store(&p->debug_stall_ms, ms);
}

/* Inference thread: sleeps as asked, in 10 ms steps so that stop ends it. */
static void debug_stall(struct pipeline *p)
{
	int ms = atomic_exchange(&p->debug_stall_ms, 0);

	for (; ms > 0 && !atomic_load(&p->stop); ms -= 10)
		usleep(10 * 1000);
}
