/* FP-LIIF face parsing on the CPU: weights, run state, encoder, decoder.
 *
 * Weights (struct model) are read-only pointers into a validated copy of
 * the weights file in memory (model/FORMAT.md; the file itself may change
 * or vanish once loaded) and may be shared by any number of run states.
 * A run state (struct model_run) owns every buffer a forward pass needs,
 * sized once for a largest input and decode tile; encoding and decoding
 * allocate nothing. One run state is used by one thread at a time; its
 * own worker threads (model_run_set_threads) are internal.
 *
 *   struct model *m;  model_load(path, &m, err, sizeof(err));
 *   struct model_run *run = model_run_create(m, 128);
 *   model_input_rgba(run, pixels, stride, w, h, 128);   (or model_encode)
 *   model_decode_labels(run, out_w, out_h, labels, out_w, &refine);
 *
 * Errors are negative errno values; constructors return NULL.
 */
#ifndef FACETD_MODEL_H
#define FACETD_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_MAX_CLASSES 32
#define MODEL_NAME_LEN 16

struct model;
struct model_run;

struct model_info {
	int num_classes;
	int res_train, res_min, res_max; /* input side, in pixels */
	int head_stride;
	int chans[3], blocks[3];
	int red_hidden, red_out, mlp_hidden, mlp_layers;
	int skip;              /* 1: group-1 features also feed the pixel MLP */
	float mean[3], std[3]; /* input normalisation, RGB in [0, 1] */
	char class_names[MODEL_MAX_CLASSES][MODEL_NAME_LEN];
	size_t params;     /* number of weights */
	size_t file_size;
};

/* Reads and validates a weights file. On failure returns a negative errno
 * (-ENOENT, -EINVAL for a malformed file, -EBADMSG for a checksum mismatch,
 * -EPROTO for another format version, ...) and writes a message naming the
 * file and the problem into err. */
int model_load(const char *path, struct model **out, char *err, size_t errlen);
/* Accepts NULL. */
void model_free(struct model *m);
const struct model_info *model_get_info(const struct model *m);

/* Multiply-accumulates of one encoder pass at input side res, and of one
 * decoder evaluation (one query point). */
double model_encoder_macs(const struct model *m, int res);
double model_decoder_macs_per_point(const struct model *m);

/* The default weights: $FACETD_MODEL, the source tree (when run from the
 * build dir) or the installed data dir. Writes the path; -ENOENT if none. */
int model_default_path(char *buf, size_t len);

/* Run state for inputs up to max_res x max_res. Returns NULL on failure
 * (out of memory, max_res outside the weights' range). */
struct model_run *model_run_create(const struct model *m, int max_res);
void model_run_destroy(struct model_run *run);

/* Threads of the run states created from now on (default 1, at most 64). */
void model_set_threads(int threads);

/* Threads of this run state: the calling thread and threads - 1 workers
 * of its own, each step split over them with BLAS single-threaded inside
 * (this and model_run_create set OpenBLAS to one thread). Call between
 * passes, from the thread that uses the run state; it allocates. -EINVAL
 * outside [1, 64], -ENOMEM (the old count stays). */
int model_run_set_threads(struct model_run *run, int threads);

/* Encodes a normalised input, planar RGB (3, res, res). After this the
 * decoder can be queried any number of times. -EINVAL for a res outside
 * [res_min, min(res_max, max_res)]. */
int model_encode(struct model_run *run, const float *chw, int res);

/* Scales an RGBA image (R, G, B, A bytes in memory order) to res x res by
 * area averaging, normalises it and encodes it. */
int model_encode_rgba(struct model_run *run, const uint8_t *rgba, int stride,
		      int width, int height, int res);

/* Logits (n, K) at n query points xy (n, 2) as (x, y) in [-1, 1] over the
 * encoded input. */
int model_decode_points(struct model_run *run, const float *xy, int n,
			float *logits);

/* Dense logits (K, h, w) at pixel centres of a w x h output. */
int model_decode_logits(struct model_run *run, int w, int h, float *logits);

struct model_refine {
	int step;          /* coarse grid = every step-th pixel; <= 1: dense */
	int finest;        /* smallest cell side decoded: <= 1 pixels, 2 stops at
			    * cells of 2 x 2 pixels (labels on a half-resolution
			    * grid near boundaries) */
	size_t evaluated;  /* out: decoder evaluations made */
	size_t pixels;     /* out: w * h */
};

/* Class labels (argmax) of a w x h output into labels (row stride given).
 * With refine && refine->step > 1: decodes densely at the centres of cells
 * of side `step`; then, while the side is even and above refine->finest
 * (and 2), the cells of half the side whose centre lies where its parent
 * is uncertain: between the parent's centre and a neighbour's of another
 * label, in the parent's quadrant that holds it (the others take their
 * parent's label); then the pixels of the last level's cells that lie
 * where it is uncertain, unless finest is 2 or more. refine may be NULL
 * (dense). */
int model_decode_labels(struct model_run *run, int w, int h, uint8_t *labels,
			int stride, struct model_refine *refine);

/* Cancellation for live use: while *flag is true, model_decode_labels()
 * stops before its next batch of query points (a few ms of work) and
 * returns -ECANCELED, its labels partly written. flag may be set from any
 * thread and must outlive the run state; NULL (the default): never. */
void model_run_set_cancel(struct model_run *run, const atomic_bool *flag);

/* Temporal smoothing for video: each encode blends the decoder's first
 * layer on the coarse grid with the previous encode's, keeping `keep`
 * (0 = off, at most 0.95) of the old. Reset it when the input jumps (a new
 * crop, a new scene). */
void model_run_set_smoothing(struct model_run *run, float keep);
void model_run_reset_smoothing(struct model_run *run);

/* Makes model_decode_labels at w x h or less allocation free with any
 * refinement step, when step > 1 (it otherwise grows its grids the first
 * time it meets a larger output). -ENOMEM on failure. */
int model_run_reserve(struct model_run *run, int w, int h, int step);

/* Time spent in the last encode and in decoding since that encode, ms. */
void model_run_timing(const struct model_run *run, double *encode_ms,
		      double *decode_ms);

#endif
