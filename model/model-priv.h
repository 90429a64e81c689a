/* The model subsystem's internals, shared by weights.c and engine.c only. */
#ifndef FACETD_MODEL_PRIV_H
#define FACETD_MODEL_PRIV_H

#include "model.h"

#define MODEL_MAX_MLP 16
#define MODEL_MAX_BLOCKS 64
#define MODEL_MAX_THREADS 64

struct conv {
	const float *w; /* (cout, cin, k, k) */
	const float *b; /* (cout) */
	int cin, cout, k, stride;
	float *wino;    /* (16, cout, cin) Winograd weights of a stride-1 3x3
			   conv (engine_wino_weights), or NULL: im2col */
};

struct linear {
	const float *w; /* (out, in) */
	const float *b; /* (out) */
	int in, out;
};

struct model {
	void *data;       /* the whole file, read into memory */
	size_t size;
	struct model_info info;
	struct conv head, down1, down2, red1, red2;
	struct conv blocks[3][2 * MODEL_MAX_BLOCKS]; /* conv1, conv2 per block */
	struct linear mlp[MODEL_MAX_MLP];            /* mlp[0]: (mh, rc + c3 + 2 [+ c1]) */
	struct linear out;                           /* (K, mh) */
};

/* Engine steps, exposed for the tests that check each against a naive
 * reference (engine.c). */
int engine_conv(struct model_run *run, const struct conv *c, const float *in,
		int in_side, float *out, int accumulate, int relu);
void engine_linear(const struct linear *l, const float *in, int n, float *out,
		   int relu);
/* Sets c->wino for a stride-1 3x3 conv (nothing for others); -ENOMEM. */
int engine_wino_weights(struct conv *c);
/* Layer 0 of the pixel MLP at n points, after model_encode. */
void engine_first_layer(struct model_run *run, const float *xy, int n, float *h);
/* The coarse grid P (zh * zw, mh) of the last encode. */
const float *engine_grid(const struct model_run *run, int *zh, int *zw);
/* The skip grid S (sh * sw, mh) of the last encode; NULL without skip. */
const float *engine_skip_grid(const struct model_run *run, int *sh, int *sw);

/* A team of `threads` participants for parallel loops (pool.c): the
 * calling thread and threads - 1 workers. pool_run() calls fn(arg, task,
 * worker) for every task in [0, tasks), each once, worker in [0, threads)
 * naming the participant (for its scratch buffers), and returns when all
 * are done. One thread calls pool_run() at a time. NULL on failure. */
typedef void (*pool_fn)(void *arg, int task, int worker);
struct pool *pool_create(int threads);
void pool_destroy(struct pool *p);
int pool_threads(const struct pool *p);
void pool_run(struct pool *p, int tasks, pool_fn fn, void *arg);

/* Output side of a 3x3 pad-1 (or 1x1) conv with this stride. */
static inline int conv_out_size(int in, int stride)
{
	return (in - 1) / stride + 1;
}

#endif
