/* The live pipeline: capture thread -> inference thread -> output thread.
 *
 * Frames live in a fixed set of slots; the threads pass slot indices
 * through lock-free SPSC rings (ring.h). The inference thread takes the
 * newest captured frame; from a live source (a camera, or a file played at
 * its rate) the frames that come while it is busy go straight to the
 * output, composed with the newest parts, so that the output keeps the
 * source's rate (labels_age_ms says how old the parts are). It tracks the
 * face: the first frames run on the whole image, later ones on a square
 * crop framed like the training portraits around the face of the previous
 * label map, and back to the whole image when the face is lost.
 *
 * A stop request is seen between the decoder's batches of query points, so
 * stopping waits for a few milliseconds of work, not for a whole frame; with
 * max_frames, no new frame is started once that many are on their way out.
 *
 * pipeline_* functions are for the thread that created the pipeline, except
 * pipeline_request_stop() and pipeline_get_stats(), which any thread may call.
 */
#ifndef FACETD_PIPELINE_H
#define FACETD_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture.h"
#include "model.h"

#define PIPELINE_MAX_OUTPUTS 4

struct pipeline;

/* Why the pipeline stopped (or is stopping). */
enum pipeline_stop_reason {
	PIPELINE_RUNNING,           /* not stopping */
	PIPELINE_STOP_REQUESTED,    /* pipeline_request_stop(): the preview's quit key, ... */
	PIPELINE_STOP_SIGNAL,       /* pipeline_stop() for SIGINT or SIGTERM */
	PIPELINE_STOP_FRAMES,       /* max_frames were written */
	PIPELINE_STOP_SOURCE_ENDED, /* the end of a file or pipe */
	PIPELINE_STOP_ERROR,        /* the inference thread could not go on */
};

struct pipeline_config {
	const char *source;                 /* capture spec */
	struct capture_params capture;
	const char *outputs[PIPELINE_MAX_OUTPUTS];
	int n_outputs;
	int res;                            /* encoder input side */
	int refine;                         /* decoder refinement step */
	int threads;                        /* BLAS threads; 0: as they are */
	int smoothing;                      /* temporal smoothing, percent kept, 0..95 */
	float alpha;                        /* overlay opacity */
	uint64_t max_frames;                /* stop after this many outputs; 0: never */
	const char *label_outputs[PIPELINE_MAX_OUTPUTS]; /* label-map streams */
	int n_label_outputs;
	const char *output_format;          /* v4l2 outputs: "yuyv" or "i420"; NULL: yuyv */
	const char *effect;                 /* effect spec; NULL: "parts" */
	const char *tint_hair, *tint_lips;  /* RRGGBB; NULL: the defaults */
	int preview;                        /* show the SDL2 preview window */
	const char *screenshot;             /* write the window as PNG here at the end */
	/* On demand: while no other process has this file open (the virtual
	 * camera's device node), the camera is released, nothing is inferred
	 * and the outputs tick the splash once a second. NULL: always on. */
	const char *demand_path;
	int demand_linger_ms;               /* release this long after the last reader; 0: 3000 */
	int debug_stall_ms;                 /* tests: pipeline_debug_stall() from the start */
};

struct pipeline_stats {
	char source[64];
	int width, height, res;
	uint64_t captured, inferred, written;
	uint64_t dropped_stale;    /* newer frame came before inference took it */
	uint64_t dropped_capture;  /* no free slot when the frame came */
	uint64_t overtaken;        /* inferred, but newer frames were shown meanwhile:
				    * only its parts were used */
	uint64_t capture_errors, output_errors;
	double fps_capture, fps_inference, fps_output; /* over the run so far */
	double latency_ms_p50, latency_ms_p99;         /* capture to output */
	double labels_age_ms_p50;  /* capture of the frame whose parts were shown, to output */
	double encode_ms, decode_ms;                    /* means */
	int face_tracked;          /* the last frame ran on a face crop */
	int paused, refine, threads;
	int camera_lost;           /* the camera vanished; reopening */
	int smoothing;             /* percent */
	double flicker_pct;        /* pixels whose label changed frame to frame */
	float alpha;
	int finished;              /* the source ended or max_frames was reached */
	int stopped;               /* every thread has ended: the figures are final */
	enum pipeline_stop_reason stop_reason; /* PIPELINE_RUNNING while running */
	int readers;               /* on demand: processes reading the output; -1: not watched */
	int released;              /* on demand: the camera is released (no reader) */
};

/* Opens the source and outputs and starts the threads. The model must
 * outlive the pipeline. Negative errno with a message in err. */
int pipeline_start(const struct pipeline_config *cfg, const struct model *m,
		   struct pipeline **out, char *err, size_t errlen);

/* Waits up to timeout_ms for the pipeline to finish by itself; returns 1
 * when it has, 0 otherwise. */
int pipeline_wait(struct pipeline *p, int timeout_ms);

/* Any thread: asks every thread to stop soon (interrupts the capture). */
void pipeline_request_stop(struct pipeline *p);

/* Asks every thread to stop, for why (unless the pipeline already stopped
 * or is stopping for another reason, which the stats keep), and waits until
 * they have all ended: the stats are final from then on. */
void pipeline_stop(struct pipeline *p, enum pipeline_stop_reason why);

/* "signal", "frame-limit", "source-ended", ...; NULL for PIPELINE_RUNNING. */
const char *pipeline_stop_reason_name(enum pipeline_stop_reason why);

/* Stops, joins the threads, closes source and outputs, frees. Accepts NULL. */
void pipeline_destroy(struct pipeline *p);

/* Live settings, any thread; the inference thread applies them from its
 * next frame on. -EINVAL for a value out of range (res: what the model
 * takes; refine 1..64; threads 1..64; alpha 0..1). */
int pipeline_set_res(struct pipeline *p, int res);
int pipeline_set_refine(struct pipeline *p, int step);
int pipeline_set_threads(struct pipeline *p, int threads);
int pipeline_set_alpha(struct pipeline *p, float alpha);
/* Paused: frames are still captured (and counted as dropped) but neither
 * inferred nor written. */
int pipeline_set_smoothing(struct pipeline *p, int pct);
/* Parses an effect spec (render.h effect_parse) with its tints (RRGGBB, or
 * NULL for the defaults) and hands it to the output thread, which applies
 * it from its next frame. Negative errno, message in err. */
int pipeline_set_effect(struct pipeline *p, const char *spec, const char *tint_hair,
			const char *tint_lips, char *err, size_t errlen);
/* Checks an effect spec and tints as pipeline_set_effect() would take them. */
int pipeline_check_effect(const char *spec, const char *tint_hair, const char *tint_lips,
			  char *err, size_t errlen);
void pipeline_set_paused(struct pipeline *p, int paused);
int pipeline_get_res(struct pipeline *p);

/* Any thread but the pipeline's own: writes the next composed frame as a
 * PNG to path (via path.tmp and rename). Waits up to timeout_ms; -ETIMEDOUT
 * when no frame came, or the write's negative errno. */
int pipeline_snapshot(struct pipeline *p, const char *path, int timeout_ms);

/* Any thread: whether the camera is released on demand (cheap). */
int pipeline_released(struct pipeline *p);

/* Any thread: a snapshot of the counters. */
void pipeline_get_stats(struct pipeline *p, struct pipeline_stats *st);

/* Formats stats as one JSON object (no newline), strings escaped. Returns
 * its length, or -ENOSPC when it does not fit in len bytes. */
int pipeline_stats_json(const struct pipeline_stats *st, char *buf, size_t len);


/* Test hook, any thread: the inference thread sleeps ms milliseconds
 * holding the next frame it takes, as a stuck thread would (a stop request
 * ends the sleep). For the tests; facetd itself never calls it. */
void pipeline_debug_stall(struct pipeline *p, int ms);

/* Test hook: whether the inference thread is in such a sleep now. */
bool pipeline_debug_stalled(struct pipeline *p);

#endif
