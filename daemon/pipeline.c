/* DESIGN
 *
 * Slots: NSLOTS frame buffers (RGBA + labels). Five SPSC rings move slot
 * indices: filled (capture -> inference), done (inference -> output),
 * direct (capture -> output), and back to the capture thread free
 * (inference -> capture: frames it dropped) and back (output -> capture).
 * Each ring has exactly one producer and one consumer and holds every
 * slot, so a push never fails.
 *
 * Every frame of a live source is shown: the capture thread hands a frame
 * to the inference thread when that is free for it, and otherwise straight
 * to the output thread, which composes it with the newest parts it has
 * (the camera's rate is kept however slow the inference; the parts lag by
 * the inference time, which the stats give as labels_age). The output
 * never goes back in time: an inferred frame older than one already shown
 * gives its parts only; while that happens (infer_slow), a frame handed to
 * the inference also goes out at once as a copy, so that none is missing. A source read as fast as it goes (--no-pacing)
 * hands every frame to the inference thread, which takes the newest: every
 * frame shown is then parsed.
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
#include "json.h"
#include "log.h"
#include "render.h"
#include "ring.h"

#define NSLOTS 12
#define RING_CAP 16          /* a power of two: each ring can hold every slot */
#define LAT_BUCKETS 2000     /* 0.5 ms each: up to 1 s */
#define LAT_BUCKET_MS 0.5
#define LOST_AFTER 5         /* frames without a face before going wide */
#define CROP_MARGIN 1.5      /* crop wider than the portraits: shoulders for the effects */
#define CROP_DROP 0.08       /* and lower, by this share of the side: the body, not the sky */
#define COPIES_WAITING 2     /* copies of frames shown waiting for the inference */
#define FINE_MAX 512         /* crops wider on screen: boundaries refined to 2x2 cells */
#define REFINE_CELLS 40      /* the refinement starts with at least this many cells across */

struct slot {
	uint8_t *rgba;     /* width * height * 4 */
	uint8_t *labels;   /* width * height */
	uint64_t sequence;
	int64_t captured_ns;
	int splash;        /* a "camera lost" frame: nothing to infer */
	int direct;        /* not inferred: shown with the newest parts */
	int copied;        /* inferred; a copy went out direct: parts only */
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
	uint64_t out_refused[PIPELINE_MAX_OUTPUTS]; /* frames refused in a row */
	int width, height;
	struct slot slots[NSLOTS];
	uint8_t *composed;            /* output thread: the frame written out */
	struct effect fx;             /* output thread */
	struct effect_scratch fx_scratch; /* output thread */
	struct output *label_outs[PIPELINE_MAX_OUTPUTS]; /* output thread */
	uint64_t label_refused[PIPELINE_MAX_OUTPUTS];
	pthread_mutex_t fx_lock;      /* guards fx_next */
	struct effect fx_next;        /* a new effect handed to the output thread */
	atomic_bool fx_pending;
	enum output_pixfmt out_format;
	struct preview *preview;      /* output thread */
	struct ring free_ring, filled, done, back;
	int wake_infer, wake_output, wake_main;
	pthread_t th_capture, th_infer, th_output;
	int started;
	int joined;                   /* owner thread: the threads are joined */
	struct tracker track;
	atomic_bool stop, capture_done, infer_done, output_done;
	atomic_int stop_reason;       /* enum pipeline_stop_reason: the first recorded */
	atomic_bool source_ended;     /* the capture thread met the end of the file */
	atomic_uint_fast64_t unwritten; /* inferred frames the output thread let go (paused, overtaken) */
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
	atomic_uint_fast64_t labels_age[LAT_BUCKETS]; /* capture of the parts' frame to output */
	struct ring direct;
	bool live;                    /* frames come at their own pace: show every one */
	atomic_bool infer_busy;       /* the inference thread holds a frame */
	atomic_bool infer_slow;       /* inferred frames get overtaken: copy them out */
	atomic_uint_fast64_t overtaken;
	/* output thread: the newest parts and what was shown */
	uint8_t *parts;               /* width * height labels */
	int parts_box[4];
	int64_t parts_ns;             /* capture time of their frame; 0: none yet */
	int64_t shown_ns;             /* capture time of the last frame shown */
	int64_t start_ns;
	atomic_int debug_stall_ms;    /* pipeline_debug_stall() */
	atomic_bool debug_stalled;    /* the inference thread sleeps in it */
	/* temporal smoothing and its measure; the inference thread's */
	atomic_int set_smooth_pct;
	struct crop last_crop;
	int last_res;
	uint8_t *prev_labels;         /* labels of the previous inferred frame */
	int prev_valid;
	atomic_uint_fast64_t flicker_changed, flicker_pixels;
	/* on demand (cfg.demand_path): the capture thread's, but for the atomics */
	struct reader_watch *watch;
	int wake_capture;             /* eventfd: a stop request ends the idle wait */
	int64_t unread_since_ns;      /* no reader since; 0: there are readers */
	int64_t read_since_ns;        /* readers since; 0: none */
	int64_t next_scan_ns;
	atomic_int readers;           /* -1: not watched */
	atomic_bool released;
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

/* ---- stopping: any thread ---- */

/* Why it stops: what was recorded (every stop request records a reason),
 * else, once it finished by itself, what the flags tell. */
static enum pipeline_stop_reason current_reason(struct pipeline *p)
{
	int why = atomic_load(&p->stop_reason);

	if (why != PIPELINE_RUNNING)
		return (enum pipeline_stop_reason)why;
	if (atomic_load(&p->output_done))
		return atomic_load(&p->source_ended) ? PIPELINE_STOP_SOURCE_ENDED
						     : PIPELINE_STOP_ERROR;
	return PIPELINE_RUNNING;
}

/* Records why it stops, unless a reason is known already. */
static void record_stop(struct pipeline *p, enum pipeline_stop_reason why)
{
	enum pipeline_stop_reason known = current_reason(p);
	int none = PIPELINE_RUNNING;

	atomic_compare_exchange_strong(&p->stop_reason, &none,
				       (int)(known != PIPELINE_RUNNING ? known : why));
}

static void stop_for(struct pipeline *p, enum pipeline_stop_reason why)
{
	record_stop(p, why);
	pipeline_request_stop(p);
}

/* ---- capture thread ---- */

static bool take_free(struct pipeline *p, uint32_t *idx);

#define DEMAND_RESCAN_MS 5000 /* recount readers this often without events */
#define DEMAND_LINGER_MS 3000
/* A reader must stay this long: an application listing cameras (v4l2-ctl
 * --info, a browser's device enumeration) opens each for a moment only. */
#define DEMAND_CONFIRM_MS 200

/* Recounts the readers when the node was opened or closed, or after
 * DEMAND_RESCAN_MS (inotify merges events; other users' opens may be
 * invisible to the scan but not to inotify), or when forced. */
static void demand_update(struct pipeline *p, int64_t now, bool force)
{
	int events = reader_watch_drain(p->watch), n;

	if (events == 0 && now < p->next_scan_ns && !force)
		return;
	n = reader_watch_count(p->watch);
	p->next_scan_ns = now + (int64_t)DEMAND_RESCAN_MS * 1000000;
	if (n < 0)
		log_debug("%s: cannot count readers: %s", p->cfg.demand_path, strerror(-n));
	else if (n != atomic_load(&p->readers))
		log_debug("%s: %d reader(s)", p->cfg.demand_path, n);
	atomic_store(&p->readers, n);
	if (n != 0) {
		p->unread_since_ns = 0; /* readers, or unknown: keep the camera */
		if (p->read_since_ns == 0)
			p->read_since_ns = now;
	} else {
		p->read_since_ns = 0;
		if (p->unread_since_ns == 0)
			p->unread_since_ns = now;
	}
}

static void outputs_idle(struct pipeline *p, int idle)
{
	for (int i = 0; i < p->cfg.n_outputs; i++)
		output_set_idle(p->outs[i], idle);
	for (int i = 0; i < p->cfg.n_label_outputs; i++)
		output_set_idle(p->label_outs[i], idle);
}

/* Releases the camera and sends the splash down the pipeline in the slot
 * held (*idx) or a free one. */
static void demand_release(struct pipeline *p, uint32_t *idx)
{
	capture_release(p->cap);
	if (*idx != UINT32_MAX || take_free(p, idx)) {
		struct slot *s = &p->slots[*idx];
		render_splash(s->rgba, p->width * 4, p->width, p->height);
		s->splash = 1;
		s->captured_ns = now_ns();
		ring_push(&p->filled, *idx);
		*idx = UINT32_MAX;
		wake(p->wake_infer);
	}
	outputs_idle(p, 1);
	atomic_store(&p->released, true);
	log_info("%s: no application reads it: camera released", p->cfg.demand_path);
}

/* Until the node is opened or closed, a stop request, the next rescan, or
 * (a reader came) the end of its confirmation. */
static void demand_wait(struct pipeline *p, int64_t now)
{
	struct pollfd fds[2] = { { .fd = reader_watch_fd(p->watch), .events = POLLIN },
				 { .fd = p->wake_capture, .events = POLLIN } };
	int ms = DEMAND_RESCAN_MS;

	if (p->read_since_ns) {
		int64_t left = p->read_since_ns + (int64_t)DEMAND_CONFIRM_MS * 1000000 - now;
		ms = left > 0 ? (int)(left / 1000000) + 1 : 0;
		p->next_scan_ns = now; /* count again when it is over */
	}
	(void)poll(fds, 2, ms);
}

/* On demand: returns true while the camera stays released (the caller
 * goes round again), false to capture. */
static bool on_demand(struct pipeline *p, uint32_t *idx)
{
	int64_t now = now_ns();
	int linger = p->cfg.demand_linger_ms > 0 ? p->cfg.demand_linger_ms : DEMAND_LINGER_MS;
	bool idle, released = atomic_load(&p->released);

	demand_update(p, now, false);
	if (released)
		idle = p->read_since_ns == 0 ||
		       now - p->read_since_ns < (int64_t)DEMAND_CONFIRM_MS * 1000000;
	else
		idle = p->unread_since_ns && now - p->unread_since_ns >= (int64_t)linger * 1000000;
	if (idle && !released) {
		demand_update(p, now, true); /* a last count, not one 3 s old */
		idle = p->unread_since_ns != 0;
	}
	if (idle && !released)
		demand_release(p, idx);
	if (!idle && released) {
		atomic_store(&p->released, false);
		outputs_idle(p, 0);
		log_info("%s: %d reader(s): camera on", p->cfg.demand_path, atomic_load(&p->readers));
	}
	if (idle)
		demand_wait(p, now);
	return idle;
}

/* A free slot from either thread that gives them back; false: none. */
static bool take_free(struct pipeline *p, uint32_t *idx)
{
	return ring_pop(&p->free_ring, idx) || ring_pop(&p->back, idx);
}

/* A copy of s's image in a free slot, as a frame of its own; false when
 * no slot is free. */
static bool clone_slot(struct pipeline *p, const struct slot *s, uint32_t *c)
{
	struct slot *t;

	if (!take_free(p, c))
		return false;
	t = &p->slots[*c];
	memcpy(t->rgba, s->rgba, (size_t)p->width * p->height * 4);
	t->sequence = s->sequence;
	t->captured_ns = s->captured_ns;
	t->splash = 0;
	t->direct = 0;
	t->copied = 0;
	return true;
}

/* While inferred frames get overtaken (the inference is slower than the
 * source), a frame for the inference thread also goes out at once, as a
 * copy, so that none is missing from the output. */
static void copy_out(struct pipeline *p, struct slot *s)
{
	uint32_t c;

	s->copied = 0;
	if (!atomic_load(&p->infer_slow) || !clone_slot(p, s, &c))
		return;
	p->slots[c].direct = 1;
	s->copied = 1;
	ring_push(&p->direct, c);
	wake(p->wake_output);
}

/* A frame that goes out while the inference is busy also goes to it, as a
 * copy that gives its parts only: when the inference is done, a recent
 * frame is there at once rather than a frame period later at worst (at
 * 1280x720 that wait was a quarter of the inference's time). At most
 * COPIES_WAITING wait, so that a stalled inference leaves the camera its
 * slots. */
static void copy_in(struct pipeline *p, const struct slot *s)
{
	uint32_t c;

	if (atomic_load(&p->inferred) == 0 || atomic_load(&p->paused) ||
	    ring_count(&p->filled) >= COPIES_WAITING ||
	    !clone_slot(p, s, &c))
		return; /* the first inference (a slow one) leaves the slots to the start */
	p->slots[c].copied = 1;
	ring_push(&p->filled, c);
	wake(p->wake_infer);
}

/* A captured frame goes to the inference thread when that is free for it
 * (or always, from a source read as fast as it goes); otherwise straight
 * to the output thread, and a copy to the inference. */
static void hand_over(struct pipeline *p, uint32_t idx)
{
	struct slot *s = &p->slots[idx];

	s->copied = 0;
	s->direct = p->live && !s->splash &&
		    (atomic_load(&p->infer_busy) || ring_count(&p->filled) > 0);
	if (s->direct) {
		copy_in(p, s);
		ring_push(&p->direct, idx);
		wake(p->wake_output);
		return;
	}
	if (p->live && !s->splash)
		copy_out(p, s);
	ring_push(&p->filled, idx);
	wake(p->wake_infer);
}

static void *capture_main(void *arg)
{
	struct pipeline *p = arg;
	uint32_t idx = UINT32_MAX; /* slot held, if any */
	char err[512];

	while (!atomic_load(&p->stop)) {
		if (p->watch && on_demand(p, &idx))
			continue;
		if (idx == UINT32_MAX && !take_free(p, &idx))
			idx = UINT32_MAX;
		struct slot *s = idx == UINT32_MAX ? NULL : &p->slots[idx];
		/* no free slot: the frame is read and dropped unconverted */
		struct capture_frame f = { .rgba = s ? s->rgba : NULL, .stride = p->width * 4 };
		int r = capture_read(p->cap, &f, err, sizeof(err));
		if (r == -EINTR || r == -ENODATA) {
			if (r == -ENODATA) {
				log_info("%s: end of stream", capture_get_info(p->cap)->name);
				atomic_store(&p->source_ended, true);
			}
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
		atomic_fetch_add(&p->captured, 1);
		hand_over(p, idx);
		idx = UINT32_MAX;
	}
	atomic_store(&p->capture_done, true);
	wake(p->wake_infer);
	return NULL;
}

/* ---- inference thread ---- */

static void debug_stall(struct pipeline *p);

static void apply_threads(struct pipeline *p)
{
	int t = atomic_load(&p->set_threads);

	if (t != p->threads_applied && model_run_set_threads(p->run, t) == 0)
		p->threads_applied = t;
}

/* The newest filled slot; older ones are dropped. false when none. */
/* A frame the inference thread will not parse back to the capture
 * thread; counted unless it was a copy (its frame went out). */
static void drop_frame(struct pipeline *p, uint32_t idx)
{
	if (!p->slots[idx].copied)
		atomic_fetch_add(&p->dropped_stale, 1);
	ring_push(&p->free_ring, idx);
}

static bool take_newest(struct pipeline *p, uint32_t *out)
{
	uint32_t idx;
	bool got = false;

	while (ring_pop(&p->filled, &idx)) {
		if (got)
			drop_frame(p, *out);
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

/* 1 for the face's classes: skin, nose, eyes, brows, mouth, lips. */
static const uint8_t face_class[256] = {
	[1] = 1, [2] = 1, [4] = 1, [5] = 1, [6] = 1, [7] = 1, [10] = 1, [11] = 1, [12] = 1,
};

/* Updates the tracker from the face pixels of the labels in crop c: the
 * crop frames the face as the training portraits do (face box 0.50 of the
 * side wide, 0.70 high, centred 5.5 % below the middle), with a margin and lower, for the shoulders.
 * The counts are sums of a table lookup, without a branch a pixel. */
static void track_face(struct pipeline *p, const uint8_t *labels, struct crop c,
		       uint32_t *cols, uint32_t *rows)
{
	struct tracker *t = &p->track;
	uint64_t n = 0;

	memset(cols, 0, sizeof(uint32_t) * p->width);
	memset(rows, 0, sizeof(uint32_t) * p->height);
	for (int y = c.y; y < c.y + c.h; y++) {
		const uint8_t *l = labels + (size_t)y * p->width;
		uint32_t row = 0;
		for (int x = c.x; x < c.x + c.w; x++) {
			uint32_t f = face_class[l[x]];
			cols[x] += f;
			row += f;
		}
		rows[y] = row;
		n += row;
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
		/* labels change on a few per cent of the pixels: skip equal runs */
		for (size_t i = 0; i < n; i += 64) {
			size_t e = n - i < 64 ? n - i : 64;
			if (memcmp(labels + i, p->prev_labels + i, e) == 0)
				continue;
			for (size_t k = i; k < i + e; k++)
				changed += labels[k] != p->prev_labels[k];
		}
		atomic_fetch_add(&p->flicker_changed, changed);
		atomic_fetch_add(&p->flicker_pixels, n);
	}
	memcpy(p->prev_labels, labels, n);
	p->prev_valid = 1;
}

/* The first level of the refinement for a w x h crop: the set step,
 * doubled while the grid keeps REFINE_CELLS cells across, so that the
 * dense start costs about the same at any size (it was a third of the
 * decoder at 1280x720; the labels agree with dense decoding all the same). */
static int coarse_step(int step, int w, int h)
{
	int side = w > h ? w : h;

	while (step > 1 && step * 2 <= 64 && side / (step * 2) >= REFINE_CELLS)
		step *= 2;
	return step;
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
	struct model_refine refine = { .step = coarse_step(atomic_load(&p->set_refine), c.w, c.h),
				       .finest = (c.w > c.h ? c.w : c.h) > FINE_MAX ? 2 : 1 };
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
	if (atomic_load(&p->stop))
		return -ECANCELED;
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

/* max_frames: that many frames are written or on their way out, so no new
 * frame is started (the output thread stops the pipeline at the last). */
static bool frames_enough(struct pipeline *p)
{
	uint64_t max = p->cfg.max_frames;

	return max && atomic_load(&p->inferred) - atomic_load(&p->unwritten) >= max;
}

static void *infer_main(void *arg)
{
	struct pipeline *p = arg;
	uint32_t *cols = calloc((size_t)p->width, sizeof(uint32_t));
	uint32_t *rows = calloc((size_t)p->height, sizeof(uint32_t));
	uint32_t idx = UINT32_MAX; /* set by take_newest() */

	while (cols && rows && !atomic_load(&p->stop)) {
		apply_threads(p);
		atomic_store(&p->infer_busy, false);
		if (!take_newest(p, &idx)) {
			if (atomic_load(&p->capture_done) && ring_count(&p->filled) == 0)
				break;
			wait_wake(p->wake_infer, atomic_load(&p->released) ? 1000 : 100);
			continue;
		}
		atomic_store(&p->infer_busy, true);
		debug_stall(p);
		if (atomic_load(&p->paused) || frames_enough(p)) {
			/* counted even when a copy: the watchdog's progress while paused */
			ring_push(&p->free_ring, idx);
			atomic_fetch_add(&p->dropped_stale, 1);
			continue;
		}
		int r = infer_slot(p, &p->slots[idx], cols, rows);
		if (r == -ECANCELED) { /* a stop request came mid-frame */
			ring_push(&p->free_ring, idx);
			break;
		}
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

/* One sample of now - since_ns into a histogram of LAT_BUCKETS. */
static void record_age(atomic_uint_fast64_t *hist, int64_t since_ns)
{
	double ms = (now_ns() - since_ns) / 1e6;
	int b = (int)(ms / LAT_BUCKET_MS);

	b = b < 0 ? 0 : (b >= LAT_BUCKETS ? LAT_BUCKETS - 1 : b);
	atomic_fetch_add(&hist[b], 1);
}

/* An inferred frame's parts become the newest; a frame that was not
 * inferred gets the newest parts. Returns false for a frame not to be
 * shown: one not inferred while there are no parts yet (shown as it is, it
 * would defeat the privacy effect), or one inferred but older than a frame
 * already shown (frames sent straight on overtook it). */
static bool take_parts(struct pipeline *p, struct slot *s)
{
	size_t n = (size_t)p->width * p->height;

	if (!s->direct && !s->splash) {
		memcpy(p->parts, s->labels, n);
		memcpy(p->parts_box, s->box, sizeof(p->parts_box));
		p->parts_ns = s->captured_ns;
	} else if (s->direct && p->parts_ns) {
		memcpy(s->labels, p->parts, n);
		memcpy(s->box, p->parts_box, sizeof(s->box));
	} else if (s->direct) {
		atomic_fetch_add(&p->dropped_stale, 1);
		return false;
	}
	if (s->copied) {
		/* its copy went out: whether nothing newer did says whether the
		 * inference keeps up with the source */
		atomic_store(&p->infer_slow, s->captured_ns < p->shown_ns);
		return false;
	}
	if (s->captured_ns <= p->shown_ns) {
		atomic_fetch_add(&p->overtaken, 1);
		atomic_store(&p->infer_slow, true);
		return false;
	}
	p->shown_ns = s->captured_ns;
	return true;
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

/* Counts a refused frame; an output's refusals are logged once, with the
 * reason, and again when it takes frames again (it is retried each frame). */
static void written(struct pipeline *p, const char *name, uint64_t *refused, int r)
{
	if (r < 0) {
		atomic_fetch_add(&p->output_errors, 1);
		if ((*refused)++ == 0)
			log_err("%s: frame refused: %s (counted in output_errors; retried with each frame)",
				name, strerror(-r));
	} else if (*refused) {
		log_info("%s: frames accepted again after %llu refused", name,
			 (unsigned long long)*refused);
		*refused = 0;
	}
}

static void write_outputs(struct pipeline *p, const struct slot *s)
{
	const uint8_t *frame = compose(p, s);

	for (int i = 0; i < p->cfg.n_label_outputs; i++)
		written(p, p->cfg.label_outputs[i], &p->label_refused[i],
			output_write_labels(p->label_outs[i], s->labels, p->width));
	for (int i = 0; i < p->cfg.n_outputs; i++)
		written(p, p->cfg.outputs[i], &p->out_refused[i],
			output_write(p->outs[i], frame, p->width * 4));
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
	else {
		preview_view(p->preview)->face_box = 0;
		log_info("preview: %dx%d, SDL renderer %s", p->width, p->height,
			 preview_renderer(p->preview));
	}
}

static void fill_hud(struct pipeline *p, const struct slot *s, struct preview_hud *h)
{
	struct pipeline_stats st;

	pipeline_get_stats(p, &st);
	*h = (struct preview_hud){
		.fps_capture = st.fps_capture, .fps_inference = st.fps_inference,
		.latency_ms = st.latency_ms_p50, .parts_age_ms = st.labels_age_ms_p50,
		.encode_ms = st.encode_ms, .decode_ms = st.decode_ms,
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
		if (!ring_pop(&p->done, &idx) && !ring_pop(&p->direct, &idx)) {
			if (atomic_load(&p->infer_done) && ring_count(&p->done) == 0 &&
			    ring_count(&p->direct) == 0)
				break;
			wait_wake(p->wake_output, p->preview ? 30 : (atomic_load(&p->released) ? 1000 : 100));
			continue;
		}
		if (atomic_load(&p->paused)) {
			atomic_fetch_add(&p->unwritten, 1);
			ring_push(&p->back, idx);
			continue;
		}
		if (!take_parts(p, &p->slots[idx])) {
			/* an inferred frame not shown is no longer on its way out:
			 * uncounted, a --frames limit waited for it for ever */
			if (!p->slots[idx].direct)
				atomic_fetch_add(&p->unwritten, 1);
			ring_push(&p->back, idx);
			continue;
		}
		write_outputs(p, &p->slots[idx]);
		preview_show(p, &p->slots[idx]);
		if (atomic_load(&p->snap_pending) && !atomic_load(&p->paused))
			take_snapshot(p, &p->slots[idx]);
		record_age(p->latency, p->slots[idx].captured_ns);
		if (!p->slots[idx].splash)
			record_age(p->labels_age, p->parts_ns);
		ring_push(&p->back, idx);
		uint64_t n = atomic_fetch_add(&p->written, 1) + 1;
		if (p->cfg.max_frames && n >= p->cfg.max_frames) {
			stop_for(p, PIPELINE_STOP_FRAMES);
			break;
		}
	}
	preview_finish(p);
	atomic_store(&p->output_done, true);
	wake(p->wake_main);
	return NULL;
}

/* ---- setup ---- */

/* A file plays at its own rate: a rate asked for is not applied, which is
 * worth saying once. */
static void note_file_rate(const struct capture_info *in, const struct capture_params *want)
{
	if (!in->file || want->fps_num <= 0)
		return;
	if (want->realtime)
		log_info("%s: --fps is not applied to a file: it plays at its own %.4g fps",
			 in->name, (double)in->fps_num / in->fps_den);
	else
		log_info("%s: --fps is not applied to a file: it plays as fast as it is read",
			 in->name);
}

/* The pixel format a camera gives, with a warning when it is not the one
 * asked for; other sources have none to choose, which is said once. */
static void note_format(const struct capture_info *in, const struct capture_params *want)
{
	const char *asked = capture_format_name(want->format);
	int given = want->format != CAPTURE_FORMAT_AUTO;

	if (!in->camera && given)
		log_info("%s: --format %s is not applied: it is for cameras", in->name, asked);
	if (!in->camera)
		return;
	if (in->format_fallback && !strstr(in->offered, asked))
		log_warn("%s: --format %s: the camera does not offer it (it offers %s); "
			 "capturing %s instead", in->name, asked, in->offered, in->format);
	else if (in->format_fallback)
		log_warn("%s: --format %s: the driver set %s instead", in->name, asked, in->format);
	else
		log_info("%s: capturing %s %dx%d at %.4g fps%s%s%s", in->name, in->format, in->width,
			 in->height, (double)in->fps_num / in->fps_den,
			 given ? " (--format " : "", given ? asked : "", given ? ")" : "");
}

/* Zeroed memory whose pages are faulted in now, not mid-stream: a frame
 * buffer first used when the pipeline gets busy (a slot, a copy sent out)
 * would otherwise cost page faults on the frame path, and the resident
 * size would step up long after the start. NULL when out of memory. */
static void *alloc_touched(size_t n)
{
	void *b = malloc(n);

	if (b)
		memset(b, 0, n);
	return b;
}

static int alloc_slots(struct pipeline *p)
{
	size_t px = (size_t)p->width * p->height;
	int r;

	r = ring_init(&p->free_ring, RING_CAP);
	r = r ? r : ring_init(&p->filled, RING_CAP);
	r = r ? r : ring_init(&p->done, RING_CAP);
	r = r ? r : ring_init(&p->back, RING_CAP);
	r = r ? r : ring_init(&p->direct, RING_CAP);
	if (r < 0)
		return r;
	p->composed = alloc_touched(px * 4);
	p->prev_labels = alloc_touched(px);
	p->parts = alloc_touched(px);
	if (!p->composed || !p->prev_labels || !p->parts)
		return -ENOMEM;
	for (uint32_t i = 0; i < NSLOTS; i++) {
		p->slots[i].rgba = alloc_touched(px * 4);
		p->slots[i].labels = alloc_touched(px);
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
	p->wake_infer = p->wake_output = p->wake_main = p->wake_capture = -1;
	atomic_init(&p->readers, -1);
	pthread_mutex_init(&p->snap_lock, NULL);
	pthread_mutex_init(&p->fx_lock, NULL);
	pthread_cond_init(&p->snap_cond, NULL);
	atomic_init(&p->set_res, cfg->res);
	atomic_init(&p->set_refine, cfg->refine);
	atomic_init(&p->set_threads, cfg->threads);
	atomic_init(&p->set_smooth_pct, cfg->smoothing);
	atomic_init(&p->set_alpha_pct, (int)lroundf(cfg->alpha * 100));
	atomic_init(&p->debug_stall_ms, cfg->debug_stall_ms);
	p->wake_infer = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->wake_output = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->wake_main = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->wake_capture = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->wake_infer < 0 || p->wake_output < 0 || p->wake_main < 0 || p->wake_capture < 0) {
		r = -errno;
		goto fail;
	}
	r = capture_open(cfg->source, &cfg->capture, &p->cap, err, errlen);
	if (r < 0)
		goto fail;
	note_file_rate(capture_get_info(p->cap), &cfg->capture);
	note_format(capture_get_info(p->cap), &cfg->capture);
	p->live = cfg->capture.realtime || capture_get_info(p->cap)->camera;
	p->width = capture_get_info(p->cap)->width & ~1;
	p->height = capture_get_info(p->cap)->height & ~1;
	p->run = cfg->res >= model_get_info(m)->res_min && cfg->res <= model_get_info(m)->res_max
		 ? model_run_create(m, model_get_info(m)->res_max) : NULL;
	if (!p->run) {
		snprintf(err, errlen, "--res %d: outside what the model takes", cfg->res);
		r = -EINVAL;
		goto fail;
	}
	model_run_set_cancel(p->run, &p->stop); /* stop requests end a decode */
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
	if (r == 0 && cfg->demand_path)
		r = reader_watch_open(cfg->demand_path, &p->watch, err, errlen);
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
	record_stop(p, PIPELINE_STOP_REQUESTED);
	atomic_store(&p->stop, true);
	if (p->cap)
		capture_interrupt(p->cap);
	wake(p->wake_infer);
	wake(p->wake_output);
	wake(p->wake_main);
	wake(p->wake_capture);
}

int pipeline_wait(struct pipeline *p, int timeout_ms)
{
	if (atomic_load(&p->output_done))
		return 1;
	wait_wake(p->wake_main, timeout_ms);
	return atomic_load(&p->output_done) ? 1 : 0;
}

void pipeline_stop(struct pipeline *p, enum pipeline_stop_reason why)
{
	stop_for(p, why);
	if (!p->started || p->joined)
		return;
	if (p->started >= 3)
		pthread_join(p->th_capture, NULL);
	if (p->started >= 2)
		pthread_join(p->th_infer, NULL);
	pthread_join(p->th_output, NULL);
	p->joined = 1;
}

const char *pipeline_stop_reason_name(enum pipeline_stop_reason why)
{
	switch (why) {
	case PIPELINE_STOP_REQUESTED: return "requested";
	case PIPELINE_STOP_SIGNAL: return "signal";
	case PIPELINE_STOP_FRAMES: return "frame-limit";
	case PIPELINE_STOP_SOURCE_ENDED: return "source-ended";
	case PIPELINE_STOP_ERROR: return "error";
	case PIPELINE_RUNNING: break;
	}
	return NULL;
}

void pipeline_destroy(struct pipeline *p)
{
	if (!p)
		return;
	if (p->started)
		pipeline_stop(p, PIPELINE_STOP_REQUESTED);
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
	free(p->composed);
	free(p->prev_labels);
	free(p->parts);
	pthread_mutex_destroy(&p->snap_lock);
	pthread_cond_destroy(&p->snap_cond);
	if (p->free_ring.cells) {
		ring_finish(&p->free_ring);
		ring_finish(&p->filled);
		ring_finish(&p->done);
		ring_finish(&p->back);
	}
	if (p->direct.cells)
		ring_finish(&p->direct);
	reader_watch_close(p->watch);
	int fds[] = { p->wake_infer, p->wake_output, p->wake_main, p->wake_capture };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
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

static double latency_quantile(atomic_uint_fast64_t *hist, double q)
{
	uint64_t total = 0, acc = 0, want;

	for (int i = 0; i < LAT_BUCKETS; i++)
		total += atomic_load(&hist[i]);
	if (!total)
		return 0;
	want = (uint64_t)ceil(q * (double)total);
	for (int i = 0; i < LAT_BUCKETS; i++) {
		acc += atomic_load(&hist[i]);
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
	st->overtaken = atomic_load(&p->overtaken);
	st->capture_errors = atomic_load(&p->capture_errors);
	st->output_errors = atomic_load(&p->output_errors);
	st->fps_capture = secs > 0 ? st->captured / secs : 0;
	st->fps_inference = secs > 0 ? inferred / secs : 0;
	st->fps_output = secs > 0 ? st->written / secs : 0;
	st->latency_ms_p50 = latency_quantile(p->latency, 0.50);
	st->latency_ms_p99 = latency_quantile(p->latency, 0.99);
	st->labels_age_ms_p50 = latency_quantile(p->labels_age, 0.50);
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
	st->stopped = atomic_load(&p->capture_done) && atomic_load(&p->infer_done) &&
		      atomic_load(&p->output_done);
	st->stop_reason = current_reason(p);
	st->readers = atomic_load(&p->readers);
	st->released = atomic_load(&p->released);
}

int pipeline_released(struct pipeline *p)
{
	return atomic_load(&p->released);
}

static const char *camera_state(const struct pipeline_stats *st)
{
	if (st->camera_lost)
		return "lost";
	if (st->finished)
		return "ended";
	return st->released ? "released" : "streaming";
}

/* The camera, readers, state and stop_reason members. */
static void put_state(struct json_writer *w, const struct pipeline_stats *st)
{
	const char *why = pipeline_stop_reason_name(st->stop_reason);

	json_put_string(w, "camera", camera_state(st));
	if (st->readers >= 0)
		json_put_int(w, "readers", st->readers);
	else
		json_put_null(w, "readers");
	json_put_string(w, "state", st->stopped ? "stopped" : (why ? "stopping" : "running"));
	if (why)
		json_put_string(w, "stop_reason", why);
	else
		json_put_null(w, "stop_reason");
}

int pipeline_stats_json(const struct pipeline_stats *st, char *buf, size_t len)
{
	struct json_writer w;

	json_writer_init(&w, buf, len);
	json_put_string(&w, "source", st->source);
	json_put_int(&w, "width", st->width);
	json_put_int(&w, "height", st->height);
	json_put_int(&w, "res", st->res);
	json_put_int(&w, "frames_captured", (long long)st->captured);
	json_put_int(&w, "frames_inferred", (long long)st->inferred);
	json_put_int(&w, "frames_written", (long long)st->written);
	json_put_int(&w, "dropped_stale", (long long)st->dropped_stale);
	json_put_int(&w, "dropped_capture", (long long)st->dropped_capture);
	json_put_int(&w, "overtaken", (long long)st->overtaken);
	json_put_int(&w, "capture_errors", (long long)st->capture_errors);
	json_put_int(&w, "output_errors", (long long)st->output_errors);
	json_put_double(&w, "fps_capture", st->fps_capture, 2);
	json_put_double(&w, "fps_inference", st->fps_inference, 2);
	json_put_double(&w, "fps_output", st->fps_output, 2);
	json_put_double(&w, "latency_ms_p50", st->latency_ms_p50, 1);
	json_put_double(&w, "latency_ms_p99", st->latency_ms_p99, 1);
	json_put_double(&w, "labels_age_ms_p50", st->labels_age_ms_p50, 1);
	json_put_double(&w, "encode_ms", st->encode_ms, 2);
	json_put_double(&w, "decode_ms", st->decode_ms, 2);
	json_put_bool(&w, "face_tracked", st->face_tracked);
	put_state(&w, st);
	json_put_int(&w, "smoothing", st->smoothing);
	json_put_double(&w, "flicker_pct", st->flicker_pct, 3);
	return json_writer_finish(&w);
}

/* ---- test hook ---- */

void pipeline_debug_stall(struct pipeline *p, int ms)
{
	atomic_store(&p->debug_stall_ms, ms);
}

bool pipeline_debug_stalled(struct pipeline *p)
{
	return atomic_load(&p->debug_stalled);
}

/* Inference thread: sleeps as asked, in 10 ms steps so that stop ends it. */
static void debug_stall(struct pipeline *p)
{
	int ms = atomic_exchange(&p->debug_stall_ms, 0);

	if (ms <= 0)
		return;
	atomic_store(&p->debug_stalled, true);
	for (; ms > 0 && !atomic_load(&p->stop); ms -= 10)
		usleep(10 * 1000);
	atomic_store(&p->debug_stalled, false);
}
