/* The FP-LIIF forward pass on cblas_sgemm.
 *
 * Activations are planar (C, H*W). A 3x3 conv is im2col over a band of
 * output rows then one sgemm into that band of the output (ldc = H*W), so
 * the column buffer stays a few MB at any input size; the stride-1 3x3
 * convs (the res-blocks and the reduction) run as Winograd F(2x2, 3x3)
 * instead (below). A residual block accumulates conv2 straight into its
 * input.
 *
 * Decoder rewrites (exact, model.md): the first pixel-MLP layer's feature
 * part runs on the coarse grid (P = W1f R), and its g part is folded into
 * P's bias, since bilinear weights sum to one; per query point only the
 * bilinear blend of P, the (x, y) term and the remaining layers are left.
 * P is stored (h*w, mh) so each corner is one contiguous vector. With the
 * group-1 skip, the layer's skip part runs on the group-1 grid the same way
 * (S = W1s G1, no bias) and each point adds the bilinear blend of S.
 *
 * Threads: each step is split into tasks that the run's pool (pool.c)
 * shares out: bands of output rows of a conv, rows of the grids P and S,
 * tiles of TILE query points. BLAS runs single-threaded inside a task
 * (small products scale badly on OpenBLAS's own threads: its 2-thread
 * decoder was 1.07x its 1-thread one; split here it is 1.9x). Every output
 * element is written by one task, so no task waits for another.
 *
 * Refinement goes coarse to fine: labels at the centres of step x step
 * cells; while the side is even and above 2, the half-side cells under an
 * uncertain cell (one whose 3x3 neighbourhood holds another label) are
 * decoded and the rest inherit; then the pixels of the last level's
 * uncertain cells.
 */
#include "model-priv.h"

#include <cblas.h>
#include <errno.h>
#include <libyuv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TILE 2048                 /* query points per decoder task, at most */
#define MIN_CHUNK 256             /* and at least, unless fewer are left */
#define COL_FLOATS (2u << 20)     /* im2col band budget of all participants, floats */

struct scratch {                  /* one participant's buffers */
	float *col;                   /* im2col band, run->col_floats */
	float *h[2];                  /* (TILE, mh) MLP activations */
	float *logits;                /* (TILE, K) */
	float *xy;                    /* (TILE, 2) query points made by a task */
};

struct model_run {
	const struct model *m;
	int max_res, res;   /* res: side of the encoded input */
	int zh, zw;         /* coarse grid of P */
	float *act[3];      /* (C, H*W) activations: current, temp, group input */
	size_t act_floats;
	struct pool *pool;  /* threads participants */
	struct scratch *ws; /* (threads) */
	int threads;
	size_t col_floats;  /* im2col band of each participant */
	float *p;           /* (zh*zw, mh): first MLP layer on the coarse grid */
	int sh, sw;         /* grid of S */
	float *s;           /* (sh*sw, mh): its skip part on the group-1 grid */
	float *g;           /* (c3) pooled group-3 output */
	float *wq;          /* (2, mh): mlp.0 weight columns of x and y */
	int batch;          /* threads * TILE: query points gathered per dispatch */
	float *xy;          /* (batch, 2) query points of a batch */
	int32_t *idx;       /* (batch) output index of each query point */
	uint8_t *rgba;      /* (max_res^2 * 4) scaled input image */
	float *input;       /* (3, max_res^2) normalised input */
	uint8_t *coarse;    /* refinement grid labels, coarse_cap bytes */
	size_t coarse_cap;
	double encode_ms, decode_ms;
	float keep;         /* temporal smoothing: weight of the previous grid */
	float *p_prev;      /* (zh*zw, mh) grid of the previous encode */
	float *s_prev;      /* (sh*sw, mh) likewise */
	int prev_valid, prev_res;
	const atomic_bool *cancel; /* model_run_set_cancel(); NULL: never */
	int cancelled;      /* the current model_decode_labels() was cancelled */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static atomic_int default_threads = 1;

void model_set_threads(int threads)
{
	atomic_store(&default_threads, threads < 1 ? 1 :
		     (threads > MODEL_MAX_THREADS ? MODEL_MAX_THREADS : threads));
}

/* Side of each encoder stage for an input of side res. */
static void stage_sizes(const struct model_info *in, int res, int s[3])
{
	s[0] = conv_out_size(res, in->head_stride);
	s[1] = conv_out_size(s[0], 2);
	s[2] = conv_out_size(s[1], 2);
}

double model_encoder_macs(const struct model *m, int res)
{
	const struct model_info *in = &m->info;
	int s[3];
	double a[3], macs;

	stage_sizes(in, res, s);
	for (int i = 0; i < 3; i++)
		a[i] = (double)s[i] * s[i];
	macs = 27.0 * in->chans[0] * a[0];
	for (int i = 0; i < 3; i++)
		macs += 2.0 * in->blocks[i] * 9.0 * in->chans[i] * in->chans[i] * a[i];
	macs += 9.0 * in->chans[0] * in->chans[1] * a[1];
	macs += 9.0 * in->chans[1] * in->chans[2] * a[2];
	macs += 9.0 * in->chans[2] * in->red_hidden * a[2];
	macs += (double)in->red_hidden * in->red_out * a[2];
	macs += (double)in->red_out * in->mlp_hidden * a[2];
	if (in->skip)
		macs += (double)in->chans[0] * in->mlp_hidden * a[0];
	return macs;
}

double model_decoder_macs_per_point(const struct model *m)
{
	const struct model_info *in = &m->info;
	double mh = in->mlp_hidden;

	/* bilinear blends (4 each) and x, y terms (2) of layer 0, then the rest */
	return (in->skip ? 10.0 : 6.0) * mh + (in->mlp_layers - 1) * mh * mh +
	       mh * in->num_classes;
}

/* ---- encoder ---- */

/* One column row of a stride-1 3x3 conv: dst[ox] = src[ox + kx - 1], zero
 * outside the input row. */
static void im2col_row1(float *dst, const float *src, int iw, int ow, int kx)
{
	int lo = 1 - kx > 0 ? 1 - kx : 0;             /* first ox inside */
	int hi = iw + 1 - kx < ow ? iw + 1 - kx : ow;  /* one past the last */

	for (int ox = 0; ox < lo; ox++)
		dst[ox] = 0.0f;
	if (hi > lo)
		memcpy(dst + lo, src + lo + kx - 1, sizeof(float) * (size_t)(hi - lo));
	for (int ox = hi > lo ? hi : lo; ox < ow; ox++)
		dst[ox] = 0.0f;
}

/* Column band for a 3x3 pad-1 conv: rows [y0, y1) of the output. */
static void im2col_band(const float *in, int cin, int ih, int iw, int stride,
			int ow, int y0, int y1, float *col)
{
	size_t n = (size_t)(y1 - y0) * ow;

	for (int c = 0; c < cin; c++) {
		const float *plane = in + (size_t)c * ih * iw;
		for (int ky = 0; ky < 3; ky++) {
			for (int kx = 0; kx < 3; kx++, col += n) {
				for (int oy = y0; oy < y1; oy++) {
					float *dst = col + (size_t)(oy - y0) * ow;
					int iy = oy * stride + ky - 1;
					if (iy < 0 || iy >= ih) {
						memset(dst, 0, sizeof(float) * ow);
						continue;
					}
					const float *src = plane + (size_t)iy * iw;
					if (stride == 1) {
						im2col_row1(dst, src, iw, ow, kx);
						continue;
					}
					for (int ox = 0; ox < ow; ox++) {
						int ix = ox * stride + kx - 1;
						dst[ox] = (ix >= 0 && ix < iw) ? src[ix] : 0.0f;
					}
				}
			}
		}
	}
}

static void relu(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

struct conv_job {
	struct model_run *run;
	const struct conv *c;
	const float *in;    /* (cin, is, is) */
	float *out;         /* (cout, os, os) */
	int is, os, band;   /* band: output rows a task */
	int accumulate, relu;
};

/* Output rows [y0, y1) of every channel: bias (+ out), the product, ReLU. */
static void conv_task(void *arg, int task, int worker)
{
	const struct conv_job *j = arg;
	const struct conv *c = j->c;
	int y0 = task * j->band, y1 = y0 + j->band < j->os ? y0 + j->band : j->os;
	int hw = j->os * j->os, n = (y1 - y0) * j->os, kk = c->cin * c->k * c->k;
	float *out = j->out + (size_t)y0 * j->os, *col = j->run->ws[worker].col;

	for (int i = 0; i < c->cout; i++) {
		float *row = out + (size_t)i * hw;
		for (int x = 0; x < n; x++)
			row[x] = j->accumulate ? row[x] + c->b[i] : c->b[i];
	}
	if (c->k == 1) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, n, c->cin,
			    1.0f, c->w, c->cin, j->in + (size_t)y0 * j->os, hw, 1.0f, out, hw);
	} else {
		im2col_band(j->in, c->cin, j->is, j->is, c->stride, j->os, y0, y1, col);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, n, kk,
			    1.0f, c->w, kk, col, n, 1.0f, out, hw);
	}
	if (j->relu)
		for (int i = 0; i < c->cout; i++)
			relu(out + (size_t)i * hw, (size_t)n);
}

/* Rows a task of `rows`: at most `fit`, and at least two tasks a
 * participant when there are rows enough. */
static int band_of(const struct model_run *run, int rows, int fit)
{
	int share = (rows + 2 * run->threads - 1) / (2 * run->threads);

	return share < fit ? share : fit;
}

/* Rows of output a task: at most what a participant's column buffer holds
 * (one at least). */
static int conv_band(const struct model_run *run, const struct conv *c, int os)
{
	size_t kk = (size_t)c->cin * c->k * c->k;
	int fit = c->k == 1 ? os : (int)(run->col_floats / (kk * os));

	return band_of(run, os, fit < 1 ? 1 : fit);
}

/* ---- Winograd F(2x2, 3x3) for the stride-1 3x3 convs ----
 *
 * (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
 * 2016.) A 4x4 input tile d becomes V = B^T d B, the channels are summed
 * by 16 matrix products M[e] = U[e] V[e], one for each element e of the
 * tile, with U = G g G^T from the weights (at load, engine_wino_weights),
 * and the 2x2 output tile is A^T M A: 16 multiply-adds per output pair of
 * channels and 2x2 outputs where the direct conv makes 36. A task takes a
 * band of tile rows: the input transform of its tiles, the 16 products and
 * the output transform with bias, residual and ReLU, in its column buffer.
 */

int engine_wino_weights(struct conv *c)
{
	size_t kc = (size_t)c->cout * c->cin;

	if (c->k != 3 || c->stride != 1)
		return 0;
	c->wino = malloc(16 * kc * sizeof(float));
	if (!c->wino)
		return -ENOMEM;
	for (size_t i = 0; i < kc; i++) {
		const float *g = c->w + 9 * i;
		float t[4][3], u[4][4];
		for (int x = 0; x < 3; x++) { /* t = G g */
			t[0][x] = g[x];
			t[1][x] = 0.5f * (g[x] + g[3 + x] + g[6 + x]);
			t[2][x] = 0.5f * (g[x] - g[3 + x] + g[6 + x]);
			t[3][x] = g[6 + x];
		}
		for (int y = 0; y < 4; y++) { /* u = t G^T */
			u[y][0] = t[y][0];
			u[y][1] = 0.5f * (t[y][0] + t[y][1] + t[y][2]);
			u[y][2] = 0.5f * (t[y][0] - t[y][1] + t[y][2]);
			u[y][3] = t[y][2];
		}
		for (int e = 0; e < 16; e++)
			c->wino[e * kc + i] = u[e / 4][e % 4];
	}
	return 0;
}

/* Row y of plane (s x s) split into the even and odd samples of its
 * padded form (a zero each side): ev[t] = row[2t - 1], od[t] = row[2t],
 * t in [0, tw], zero outside, so that a tile's four columns are
 * ev[t], od[t], ev[t + 1], od[t + 1]. */
static void wino_split(const float *restrict plane, int s, int y, int tw,
		       float *restrict ev, float *restrict od)
{
	int ne = s / 2, no = (s + 1) / 2; /* ev[1..ne], od[0..no-1] in the row */

	if (y < 0 || y >= s) { /* the padding rows: no row pointer formed */
		memset(ev, 0, sizeof(float) * (tw + 1));
		memset(od, 0, sizeof(float) * (tw + 1));
		return;
	}
	const float *restrict row = plane + (size_t)y * s;
	ev[0] = 0.0f;
	for (int t = 1; t <= ne; t++)
		ev[t] = row[2 * t - 1];
	for (int t = ne + 1; t <= tw; t++)
		ev[t] = 0.0f;
	for (int t = 0; t < no; t++)
		od[t] = row[2 * t];
	for (int t = no; t <= tw; t++)
		od[t] = 0.0f;
}

/* h[q][t] = (d B)[q] of input row y for every tile t of a row. */
static void wino_rows(const float *plane, int s, int y, int tw, float *restrict tmp,
		      float *restrict h)
{
	float *restrict ev = tmp, *restrict od = tmp + tw + 1;

	wino_split(plane, s, y, tw, ev, od);
	for (int t = 0; t < tw; t++) {
		h[t] = ev[t] - ev[t + 1];
		h[tw + t] = od[t] + ev[t + 1];
		h[2 * tw + t] = ev[t + 1] - od[t];
		h[3 * tw + t] = od[t] - od[t + 1];
	}
}

/* B^T over four rows h[i * hs] into four planes v[i * vs], n tiles. */
static void wino_cols(const float *restrict h, size_t hs, float *restrict v, size_t vs, int n)
{
	const float *restrict h0 = h, *restrict h1 = h + hs;
	const float *restrict h2 = h + 2 * hs, *restrict h3 = h + 3 * hs;
	float *restrict v0 = v, *restrict v1 = v + vs, *restrict v2 = v + 2 * vs;
	float *restrict v3 = v + 3 * vs;

	for (int t = 0; t < n; t++) {
		v0[t] = h0[t] - h2[t];
		v1[t] = h1[t] + h2[t];
		v2[t] = h2[t] - h1[t];
		v3[t] = h1[t] - h3[t];
	}
}

/* V[e][c][t] = (B^T d B)[e] for the tiles t of tile rows [r0, r1); tmp
 * holds 18 * (tw + 1) floats. */
static void wino_input(const float *in, int cin, int s, int tw, int r0, int r1, float *v,
		       float *tmp)
{
	size_t nt = (size_t)(r1 - r0) * tw, plane_t = (size_t)cin * nt;
	float *h = tmp + 2 * (tw + 1); /* (4 rows, 4, tw) */

	for (int c = 0; c < cin; c++) {
		const float *plane = in + (size_t)c * s * s;
		for (int ty = r0; ty < r1; ty++) {
			float *vc = v + (size_t)c * nt + (size_t)(ty - r0) * tw;
			for (int i = 0; i < 4; i++)
				wino_rows(plane, s, 2 * ty - 1 + i, tw, tmp, h + (size_t)i * 4 * tw);
			for (int q = 0; q < 4; q++) /* B^T over the rows */
				wino_cols(h + q * tw, 4 * (size_t)tw, vc + q * plane_t, 4 * plane_t, tw);
		}
	}
}

/* One output row pair of a tile row from its 16 planes m[e] (stride ps):
 * y0, y1 (2 * tw each) = the rows of A^T m A, interleaved per tile. */
static void wino_rows_out(const float *restrict m, size_t ps, int tw, float *restrict y0,
			  float *restrict y1)
{
	for (int t = 0; t < tw; t++) {
		float r0[4], r1[4];
		for (int x = 0; x < 4; x++) {
			float a = m[x * ps + t], b = m[(4 + x) * ps + t];
			float c = m[(8 + x) * ps + t], d = m[(12 + x) * ps + t];
			r0[x] = a + b + c;
			r1[x] = b - c - d;
		}
		y0[2 * t] = r0[0] + r0[1] + r0[2];
		y0[2 * t + 1] = r0[1] - r0[2] - r0[3];
		y1[2 * t] = r1[0] + r1[1] + r1[2];
		y1[2 * t + 1] = r1[1] - r1[2] - r1[3];
	}
}

/* row[x] = y[x] + b (+ row[x]), ReLU when asked, x < n. */
static void wino_store(float *restrict row, const float *restrict y, int n, float b,
		       int accumulate, int do_relu)
{
	for (int x = 0; x < n; x++) {
		float v = y[x] + b + (accumulate ? row[x] : 0.0f);
		row[x] = do_relu ? (v > 0.0f ? v : 0.0f) : v;
	}
}

/* Output rows of tile rows [r0, r1): A^T M A + bias (+ out), ReLU; tmp
 * holds 4 * tw floats. */
static void wino_output(const struct conv_job *j, int tw, int r0, int r1, const float *mt,
			float *tmp)
{
	const struct conv *c = j->c;
	size_t nt = (size_t)(r1 - r0) * tw, plane_t = (size_t)c->cout * nt;
	int s = j->os;
	float *y0 = tmp, *y1 = tmp + 2 * tw;

	for (int k = 0; k < c->cout; k++) {
		float *plane = j->out + (size_t)k * s * s;
		for (int ty = r0; ty < r1; ty++) {
			int oy = 2 * ty;
			wino_rows_out(mt + (size_t)k * nt + (size_t)(ty - r0) * tw, plane_t, tw, y0, y1);
			wino_store(plane + (size_t)oy * s, y0, s, c->b[k], j->accumulate, j->relu);
			if (oy + 1 < s)
				wino_store(plane + (size_t)(oy + 1) * s, y1, s, c->b[k],
					   j->accumulate, j->relu);
		}
	}
}

static void wino_task(void *arg, int task, int worker)
{
	const struct conv_job *j = arg;
	const struct conv *c = j->c;
	int tw = (j->os + 1) / 2, th = tw, r0 = task * j->band;
	int r1 = r0 + j->band < th ? r0 + j->band : th, nt = (r1 - r0) * tw;
	float *v = j->run->ws[worker].col, *mt = v + (size_t)16 * c->cin * nt;
	float *tmp = mt + (size_t)16 * c->cout * nt;
	size_t kc = (size_t)c->cout * c->cin;

	wino_input(j->in, c->cin, j->is, tw, r0, r1, v, tmp);
	for (int e = 0; e < 16; e++)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, nt, c->cin, 1.0f,
			    c->wino + e * kc, c->cin, v + (size_t)e * c->cin * nt, nt, 0.0f,
			    mt + (size_t)e * c->cout * nt, nt);
	wino_output(j, tw, r0, r1, mt, tmp);
}

/* Tile rows a task: at most what a participant's buffer holds; 0 when
 * not one row fits. */
static int wino_band(const struct model_run *run, const struct conv *c, int os)
{
	int tw = (os + 1) / 2;
	size_t row = (size_t)16 * (c->cin + c->cout) * tw, tmp = 18 * ((size_t)tw + 1);
	int fit = run->col_floats > tmp ? (int)((run->col_floats - tmp) / row) : 0;

	return band_of(run, tw, fit);
}

/* out = conv(in) + bias (+ out when accumulate), optional ReLU, split in
 * bands of output rows over the participants. Returns the output side. */
int engine_conv(struct model_run *run, const struct conv *c, const float *in,
		    int is, float *out, int accumulate, int do_relu)
{
	int os = conv_out_size(is, c->stride);
	struct conv_job j = {
		.run = run, .c = c, .in = in, .out = out, .is = is, .os = os,
		.accumulate = accumulate, .relu = do_relu,
	};

	if (c->wino && (j.band = wino_band(run, c, os)) > 0) {
		int th = (os + 1) / 2; /* tile rows */
		pool_run(run->pool, (th + j.band - 1) / j.band, wino_task, &j);
		return os;
	}
	j.band = conv_band(run, c, os);
	pool_run(run->pool, (os + j.band - 1) / j.band, conv_task, &j);
	return os;
}

/* x <- x + blocks(x), each block x <- x + conv2(relu(conv1(x))). */
static void group_run(struct model_run *run, int g, float *x, int s)
{
	const struct model *m = run->m;
	size_t n = (size_t)m->info.chans[g] * s * s;
	float *t = run->act[1], *saved = run->act[2];

	if (m->info.blocks[g] == 0) {
		for (size_t i = 0; i < n; i++)
			x[i] += x[i];
		return;
	}
	memcpy(saved, x, n * sizeof(float));
	for (int b = 0; b < m->info.blocks[g]; b++) {
		engine_conv(run, &m->blocks[g][2 * b], x, s, t, 0, 1);
		engine_conv(run, &m->blocks[g][2 * b + 1], t, s, x, 1, 0);
	}
	for (size_t i = 0; i < n; i++)
		x[i] += saved[i];
}

static void swap(float **a, float **b)
{
	float *t = *a;
	*a = *b;
	*b = t;
}

/* A grid's rows of a layer-0 part: out (hw, mh) = bias + F^T W^T for the
 * features F (c, hw) and the weight columns W (mh, c) at stride ldw. */
struct grid_job {
	const float *f, *w, *bias; /* bias (mh) or NULL */
	float *out;
	int hw, c, mh, ldw, rows;  /* rows: grid rows a task */
};

static void grid_task(void *arg, int task, int worker)
{
	const struct grid_job *j = arg;
	int i0 = task * j->rows, n = i0 + j->rows < j->hw ? j->rows : j->hw - i0;
	float *out = j->out + (size_t)i0 * j->mh;

	for (int i = 0; i < n && j->bias; i++)
		memcpy(out + (size_t)i * j->mh, j->bias, sizeof(float) * j->mh);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, n, j->mh, j->c, 1.0f, j->f + i0,
		    j->hw, j->w, j->ldw, j->bias ? 1.0f : 0.0f, out, j->mh);
}

static void grid_run(struct model_run *run, struct grid_job *j)
{
	int tasks = 2 * run->threads;

	j->rows = (j->hw + tasks - 1) / tasks;
	pool_run(run->pool, (j->hw + j->rows - 1) / j->rows, grid_task, j);
}

/* P (zh*zw, mh) = R^T W1f^T + (b1 + W1g g). */
static void first_layer_on_grid(struct model_run *run, const float *r)
{
	const struct model_info *in = &run->m->info;
	const struct linear *l0 = &run->m->mlp[0];
	int mh = in->mlp_hidden, rc = in->red_out, c3 = in->chans[2];
	float bias[4096];

	for (int j = 0; j < mh; j++) {
		const float *wg = l0->w + (size_t)j * l0->in + rc;
		float acc = l0->b[j];
		for (int k = 0; k < c3; k++)
			acc += wg[k] * run->g[k];
		bias[j] = acc;
	}
	grid_run(run, &(struct grid_job){
		.f = r, .w = l0->w, .bias = bias, .out = run->p, .hw = run->zh * run->zw,
		.c = rc, .mh = mh, .ldw = l0->in,
	});
}

/* S (sh*sw, mh) = G1^T W1s^T: the skip columns of layer 0 on the group-1
 * output g1 (c1, sh*sw). */
static void skip_on_grid(struct model_run *run, const float *g1, int side)
{
	const struct model_info *in = &run->m->info;
	const struct linear *l0 = &run->m->mlp[0];

	run->sh = run->sw = side;
	grid_run(run, &(struct grid_job){
		.f = g1, .w = l0->w + in->red_out + in->chans[2] + 2, .out = run->s,
		.hw = side * side, .c = in->chans[0], .mh = in->mlp_hidden, .ldw = l0->in,
	});
}

static void blend_prev(float *cur, float *prev, size_t n, float keep, int valid)
{
	if (valid)
		for (size_t i = 0; i < n; i++)
			cur[i] = keep * prev[i] + (1 - keep) * cur[i];
	memcpy(prev, cur, n * sizeof(float));
}

/* Exponential average of the grids P and S over successive encodes: both
 * are linear in the encoder's outputs, so this smooths the decoder's first
 * layer in time. */
static void smooth_grid(struct model_run *run)
{
	size_t mh = (size_t)run->m->info.mlp_hidden;
	int valid = run->prev_valid && run->prev_res == run->res;

	if (run->keep <= 0)
		return;
	blend_prev(run->p, run->p_prev, (size_t)run->zh * run->zw * mh, run->keep, valid);
	if (run->s)
		blend_prev(run->s, run->s_prev, (size_t)run->sh * run->sw * mh, run->keep, valid);
	run->prev_valid = 1;
	run->prev_res = run->res;
}

void model_run_set_smoothing(struct model_run *run, float keep)
{
	run->keep = keep < 0 ? 0 : (keep > 0.95f ? 0.95f : keep);
	if (run->keep == 0)
		run->prev_valid = 0;
}

void model_run_reset_smoothing(struct model_run *run)
{
	run->prev_valid = 0;
}

int model_encode(struct model_run *run, const float *chw, int res)
{
	const struct model *m = run->m;
	const struct model_info *in = &m->info;
	int hi = in->res_max < run->max_res ? in->res_max : run->max_res;
	int s[3], c3 = in->chans[2];
	float *x, *t;
	double t0 = now_ms();

	if (res < in->res_min || res > hi)
		return -EINVAL;
	stage_sizes(in, res, s);
	x = run->act[0];
	t = run->act[1];
	engine_conv(run, &m->head, chw, res, x, 0, 0);
	group_run(run, 0, x, s[0]);
	if (in->skip)
		skip_on_grid(run, x, s[0]);
	engine_conv(run, &m->down1, x, s[0], t, 0, 0);
	swap(&x, &t);
	run->act[0] = x, run->act[1] = t;
	group_run(run, 1, x, s[1]);
	engine_conv(run, &m->down2, x, s[1], t, 0, 0);
	swap(&x, &t);
	run->act[0] = x, run->act[1] = t;
	group_run(run, 2, x, s[2]);

	size_t hw = (size_t)s[2] * s[2];
	for (int c = 0; c < c3; c++) {
		double acc = 0;
		for (size_t i = 0; i < hw; i++)
			acc += x[(size_t)c * hw + i];
		run->g[c] = (float)(acc / (double)hw);
	}
	engine_conv(run, &m->red1, x, s[2], t, 0, 1);
	engine_conv(run, &m->red2, t, s[2], run->act[2], 0, 0);
	run->zh = run->zw = s[2];
	first_layer_on_grid(run, run->act[2]);
	run->res = res;
	smooth_grid(run);
	run->encode_ms = now_ms() - t0;
	run->decode_ms = 0;
	return 0;
}

int model_encode_rgba(struct model_run *run, const uint8_t *rgba, int stride,
		      int width, int height, int res)
{
	const struct model_info *in = &run->m->info;
	size_t n = (size_t)res * res;
	int r;

	if (!rgba || width <= 0 || height <= 0 || res <= 0 || res > run->max_res)
		return -EINVAL;
	/* Byte order is irrelevant to scaling: libyuv's ARGB is 4 bytes a pixel. */
	r = ARGBScale(rgba, stride, width, height, run->rgba, res * 4, res, res, kFilterBox);
	if (r != 0)
		return -EINVAL;
	for (int c = 0; c < 3; c++) {
		float scale = 1.0f / (255.0f * in->std[c]);
		float shift = in->mean[c] / in->std[c];
		float *dst = run->input + c * n;
		for (size_t i = 0; i < n; i++)
			dst[i] = run->rgba[4 * i + c] * scale - shift;
	}
	return model_encode(run, run->input, res);
}

/* ---- decoder ---- */

/* The four corner vectors of grid (gh*gw, mh) around (x, y) and their
 * bilinear weights (grid_sample, align_corners=False, border clamp). */
struct corners {
	const float *v[4];
	float w[4];
};

static void corners_at(struct corners *c, const float *grid, int gh, int gw, int mh,
		       float x, float y)
{
	float fx = ((x + 1.0f) * gw - 1.0f) * 0.5f;
	float fy = ((y + 1.0f) * gh - 1.0f) * 0.5f;

	fx = fx < 0 ? 0 : (fx > gw - 1 ? gw - 1 : fx);
	fy = fy < 0 ? 0 : (fy > gh - 1 ? gh - 1 : fy);
	int x0 = (int)fx, y0 = (int)fy;
	int x1 = x0 + 1 < gw ? x0 + 1 : x0, y1 = y0 + 1 < gh ? y0 + 1 : y0;
	float ax = fx - x0, ay = fy - y0;

	c->w[0] = (1 - ax) * (1 - ay);
	c->w[1] = ax * (1 - ay);
	c->w[2] = (1 - ax) * ay;
	c->w[3] = ax * ay;
	c->v[0] = grid + ((size_t)y0 * gw + x0) * mh;
	c->v[1] = grid + ((size_t)y0 * gw + x1) * mh;
	c->v[2] = grid + ((size_t)y1 * gw + x0) * mh;
	c->v[3] = grid + ((size_t)y1 * gw + x1) * mh;
}

/* out = relu(blend of c + x wx + y wy): one point's layer 0 without skip. */
static void blend4(float *restrict out, const struct corners *c, float x,
		   const float *restrict wx, float y, const float *restrict wy, int mh)
{
	const float *restrict a = c->v[0], *restrict b = c->v[1];
	const float *restrict d = c->v[2], *restrict e = c->v[3];
	float wa = c->w[0], wb = c->w[1], wd = c->w[2], we = c->w[3];

	for (int j = 0; j < mh; j++) {
		float v = wa * a[j] + wb * b[j] + wd * d[j] + we * e[j] + x * wx[j] + y * wy[j];
		out[j] = v > 0.0f ? v : 0.0f;
	}
}

/* Likewise with the skip grid's blend s added. */
static void blend8(float *restrict out, const struct corners *c, const struct corners *s,
		   float x, const float *restrict wx, float y, const float *restrict wy, int mh)
{
	const float *restrict a = c->v[0], *restrict b = c->v[1];
	const float *restrict d = c->v[2], *restrict e = c->v[3];
	const float *restrict sa = s->v[0], *restrict sb = s->v[1];
	const float *restrict sd = s->v[2], *restrict se = s->v[3];
	float wa = c->w[0], wb = c->w[1], wd = c->w[2], we = c->w[3];
	float va = s->w[0], vb = s->w[1], vd = s->w[2], ve = s->w[3];

	for (int j = 0; j < mh; j++) {
		float v = wa * a[j] + wb * b[j] + wd * d[j] + we * e[j] + x * wx[j] + y * wy[j] +
			  (va * sa[j] + vb * sb[j] + vd * sd[j] + ve * se[j]);
		out[j] = v > 0.0f ? v : 0.0f;
	}
}

/* Layer 0 for n points: bilinear blend of P (and of S), plus x and y
 * terms, ReLU. */
void engine_first_layer(struct model_run *run, const float *xy, int n, float *h)
{
	int mh = run->m->info.mlp_hidden;
	const float *wx = run->wq, *wy = run->wq + mh;
	struct corners p, s;

	for (int i = 0; i < n; i++) {
		float x = xy[2 * i], y = xy[2 * i + 1];
		float *out = h + (size_t)i * mh;

		corners_at(&p, run->p, run->zh, run->zw, mh, x, y);
		if (run->s) {
			corners_at(&s, run->s, run->sh, run->sw, mh, x, y);
			blend8(out, &p, &s, x, wx, y, wy, mh);
		} else {
			blend4(out, &p, x, wx, y, wy, mh);
		}
	}
}

/* rows (n, cols) += b, then ReLU when asked. Branch-free and with the
 * sizes in locals, so that it vectorises: written as a test on the sign
 * per element it ran scalar, mispredicted on half the values, and was a
 * fifth of the decoder's time. */
static void add_bias(float *restrict rows, const float *restrict b, int n, int cols, int do_relu)
{
	for (int i = 0; i < n; i++) {
		float *restrict row = rows + (size_t)i * cols;
		if (do_relu) {
			for (int j = 0; j < cols; j++) {
				float v = row[j] + b[j];
				row[j] = v > 0.0f ? v : 0.0f;
			}
		} else {
			for (int j = 0; j < cols; j++)
				row[j] += b[j];
		}
	}
}

/* out (n, l->out) = in (n, l->in) W^T + b, optional ReLU. */
void engine_linear(const struct linear *l, const float *in, int n, float *out, int do_relu)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, l->out, l->in, 1.0f,
		    in, l->in, l->w, l->in, 0.0f, out, l->out);
	add_bias(out, l->b, n, l->out, do_relu);
}

/* Logits (n, K) for n <= TILE points, in w->logits. */
static const float *decode_tile(struct model_run *run, struct scratch *w, const float *xy, int n)
{
	const struct model *m = run->m;
	float *a = w->h[0], *b = w->h[1];

	engine_first_layer(run, xy, n, a);
	for (int j = 1; j < m->info.mlp_layers; j++) {
		engine_linear(&m->mlp[j], a, n, b, 1);
		swap(&a, &b);
	}
	engine_linear(&m->out, a, n, w->logits, 0);
	return w->logits;
}

const float *engine_grid(const struct model_run *run, int *zh, int *zw)
{
	*zh = run->zh;
	*zw = run->zw;
	return run->p;
}

const float *engine_skip_grid(const struct model_run *run, int *sh, int *sw)
{
	*sh = run->sh;
	*sw = run->sw;
	return run->s;
}

/* n query points split in tasks of at most TILE; each task decodes its points and
 * stores them in one of three ways. */
struct decode_job {
	struct model_run *run;
	const float *xy;        /* (n, 2), or NULL: pixel centres of a w x h output */
	size_t n;
	int chunk;              /* points a task, at most TILE */
	int w, h;
	float *logits;          /* (n, K) rows, or (K, n) planes when planar */
	int planar;
	const int32_t *idx;     /* with labels: labels[idx[i]] = argmax */
	uint8_t *labels;
};

static inline float pixel_coord(double i, int n)
{
	return (float)(-1.0 + (2.0 * i + 1.0) / n);
}

/* The pixel centres of outputs [first, first + n) of a w x h output. */
static void pixel_points(float *xy, int w, int h, size_t first, int n)
{
	for (int i = 0; i < n; i++) {
		size_t o = first + (size_t)i;
		xy[2 * i] = pixel_coord((double)(o % (size_t)w), w);
		xy[2 * i + 1] = pixel_coord((double)(o / (size_t)w), h);
	}
}

static uint8_t argmax(const float *v, int k)
{
	int best = 0;

	for (int i = 1; i < k; i++)
		if (v[i] > v[best])
			best = i;
	return (uint8_t)best;
}

static void decode_task(void *arg, int task, int worker)
{
	const struct decode_job *j = arg;
	struct scratch *w = &j->run->ws[worker];
	int k = j->run->m->info.num_classes;
	size_t first = (size_t)task * j->chunk;
	int n = j->n - first < (size_t)j->chunk ? (int)(j->n - first) : j->chunk;
	const float *xy = j->xy ? j->xy + 2 * first : w->xy;
	const float *lg;

	if (!j->xy)
		pixel_points(w->xy, j->w, j->h, first, n);
	lg = decode_tile(j->run, w, xy, n);
	if (j->labels) {
		for (int i = 0; i < n; i++)
			j->labels[j->idx[first + i]] = argmax(lg + (size_t)i * k, k);
	} else if (j->planar) {
		for (int i = 0; i < n; i++)
			for (int q = 0; q < k; q++)
				j->logits[(size_t)q * j->n + first + i] = lg[(size_t)i * k + q];
	} else {
		memcpy(j->logits + first * k, lg, sizeof(float) * (size_t)n * k);
	}
}

static void decode_run(struct model_run *run, struct decode_job *j)
{
	size_t share = (j->n + run->threads - 1) / run->threads;

	j->run = run;
	/* a batch smaller than the participants' tiles is still shared out */
	j->chunk = share < MIN_CHUNK ? MIN_CHUNK : (share < TILE ? (int)share : TILE);
	pool_run(run->pool, (int)((j->n + j->chunk - 1) / j->chunk), decode_task, j);
}

int model_decode_points(struct model_run *run, const float *xy, int n, float *logits)
{
	double t0 = now_ms();

	if (run->res == 0 || n < 0)
		return -EINVAL;
	decode_run(run, &(struct decode_job){ .xy = xy, .n = (size_t)n, .logits = logits });
	run->decode_ms += now_ms() - t0;
	return 0;
}

int model_decode_logits(struct model_run *run, int w, int h, float *logits)
{
	double t0 = now_ms();

	if (run->res == 0 || w <= 0 || h <= 0)
		return -EINVAL;
	decode_run(run, &(struct decode_job){
		.n = (size_t)w * h, .w = w, .h = h, .logits = logits, .planar = 1,
	});
	run->decode_ms += now_ms() - t0;
	return 0;
}

/* Decodes the n points queued in run->xy over the participants and writes
 * each label to labels[run->idx[i]]; nothing once the decoding is
 * cancelled. */
static void flush_points(struct model_run *run, int n, uint8_t *labels)
{
	if (n == 0 || run->cancelled)
		return;
	if (run->cancel && atomic_load_explicit(run->cancel, memory_order_relaxed)) {
		run->cancelled = 1;
		return;
	}
	decode_run(run, &(struct decode_job){
		.xy = run->xy, .n = (size_t)n, .idx = run->idx, .labels = labels,
	});
}

/* Queues query point (x, y), its label for dst[i], after the n queued;
 * decodes the batch when it is full. Returns the new queue length. */
static int queue_point(struct model_run *run, float x, float y, int32_t i, uint8_t *dst, int n)
{
	run->xy[2 * n] = x;
	run->xy[2 * n + 1] = y;
	run->idx[n++] = i;
	if (n == run->batch) {
		flush_points(run, n, dst);
		n = 0;
	}
	return n;
}

static void decode_dense_labels(struct model_run *run, int w, int h,
				uint8_t *labels, int stride)
{
	int n = 0;

	for (int y = 0; y < h && !run->cancelled; y++)
		for (int x = 0; x < w; x++)
			n = queue_point(run, pixel_coord(x, w), pixel_coord(y, h), y * stride + x,
					labels, n);
	flush_points(run, n, labels);
}

static int reserve_coarse(struct model_run *run, size_t bytes)
{
	uint8_t *p;

	if (bytes <= run->coarse_cap)
		return 0;
	p = realloc(run->coarse, bytes);
	if (!p)
		return -ENOMEM;
	run->coarse = p;
	run->coarse_cap = bytes;
	return 0;
}

/* Bytes of the refinement grids at w x h from this step: two grids of
 * the finest level above pixels (cells of 2 when halving, else step). */
static size_t grid_bytes(int w, int h, int step)
{
	int s = step % 2 == 0 ? 2 : step;

	return 2 * (size_t)((w + s - 1) / s) * ((h + s - 1) / s);
}

/* One level of the refinement: cells of side `step` over a w x h output,
 * cw x ch of them, their labels in lab. */
struct level {
	int step, cw, ch;
	uint8_t *lab;
};

static struct level level_of(int w, int h, int step, uint8_t *lab)
{
	return (struct level){ step, (w + step - 1) / step, (h + step - 1) / step, lab };
}

/* Queues the decoder at the centre of cell (cx, cy) of l (clipped to the
 * output) for l->lab; returns the new queue length. */
static int queue_cell(struct model_run *run, const struct level *l, int w, int h,
		      int cx, int cy, int n)
{
	int x0 = cx * l->step, y0 = cy * l->step;
	int x1 = x0 + l->step < w ? x0 + l->step : w;
	int y1 = y0 + l->step < h ? y0 + l->step : h;

	return queue_point(run, pixel_coord((x0 + x1 - 1) * 0.5, w),
			   pixel_coord((y0 + y1 - 1) * 0.5, h), cy * l->cw + cx, l->lab, n);
}

/* Every cell of l decoded at its centre. */
static size_t decode_level(struct model_run *run, const struct level *l, int w, int h)
{
	int n = 0;

	for (int cy = 0; cy < l->ch && !run->cancelled; cy++)
		for (int cx = 0; cx < l->cw; cx++)
			n = queue_cell(run, l, w, h, cx, cy, n);
	flush_points(run, n, l->lab);
	return (size_t)l->cw * l->ch;
}

static int cell_uncertain(const struct level *l, int cx, int cy)
{
	uint8_t v = l->lab[cy * l->cw + cx];

	for (int dy = -1; dy <= 1; dy++) {
		int y = cy + dy;
		if (y < 0 || y >= l->ch)
			continue;
		for (int dx = -1; dx <= 1; dx++) {
			int x = cx + dx;
			if (x >= 0 && x < l->cw && l->lab[y * l->cw + x] != v)
				return 1;
		}
	}
	return 0;
}

static int differs(const struct level *l, int cx, int cy, int x, int y)
{
	return x >= 0 && x < l->cw && y >= 0 && y < l->ch &&
	       l->lab[y * l->cw + x] != l->lab[cy * l->cw + cx];
}

/* Whether a point on the (sx, sy) side of cell (cx, cy)'s centre (signs
 * -1, 0, 1) may be labelled otherwise: it lies in the square between this
 * centre and the neighbours' on that side, and is uncertain when their
 * labels disagree (the assumption of marching squares). */
static int side_uncertain(const struct level *l, int cx, int cy, int sx, int sy)
{
	return (sx && differs(l, cx, cy, cx + sx, cy)) || (sy && differs(l, cx, cy, cx, cy + sy)) ||
	       (sx && sy && differs(l, cx, cy, cx + sx, cy + sy));
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

/* Twice the centre of cell (cx, cy) of l, clipped to the output, as
 * pixel coordinates (whole numbers at that scale). */
static void centre2(const struct level *l, int w, int h, int cx, int cy, int *x2, int *y2)
{
	int x0 = cx * l->step, y0 = cy * l->step;

	*x2 = x0 + (x0 + l->step < w ? x0 + l->step : w) - 1;
	*y2 = y0 + (y0 + l->step < h ? y0 + l->step : h) - 1;
}

/* The child (cx, cy) of cell (px, py) of l in f: decoded at its centre
 * when that lies where the parent is uncertain, else the parent's label. */
static int halve_child(struct model_run *run, const struct level *l, struct level *f,
		       int w, int h, int px, int py, int cx, int cy, int n, size_t *evals)
{
	int x2, y2, px2, py2;

	centre2(f, w, h, cx, cy, &x2, &y2);
	centre2(l, w, h, px, py, &px2, &py2);
	if (side_uncertain(l, px, py, sign(x2 - px2), sign(y2 - py2))) {
		(*evals)++;
		return queue_cell(run, f, w, h, cx, cy, n);
	}
	f->lab[cy * f->cw + cx] = l->lab[py * l->cw + px];
	return n;
}

/* The level of half the cell side, parent by parent: the children of a
 * parent whose neighbours all agree with it (most of them) take its label
 * at once, the others are tested one by one. */
static size_t halve_level(struct model_run *run, const struct level *l, struct level *f,
			  int w, int h)
{
	size_t evals = 0;
	int n = 0;

	for (int py = 0; py < l->ch && !run->cancelled; py++) {
		int cy1 = 2 * py + 2 < f->ch ? 2 * py + 2 : f->ch;
		for (int px = 0; px < l->cw; px++) {
			int cx1 = 2 * px + 2 < f->cw ? 2 * px + 2 : f->cw, sure = !cell_uncertain(l, px, py);
			uint8_t v = l->lab[py * l->cw + px];
			for (int cy = 2 * py; cy < cy1; cy++)
				for (int cx = 2 * px; cx < cx1; cx++) {
					if (sure)
						f->lab[cy * f->cw + cx] = v;
					else
						n = halve_child(run, l, f, w, h, px, py, cx, cy, n, &evals);
				}
		}
	}
	flush_points(run, n, f->lab);
	return evals;
}

/* Full-resolution pass over one cell of l: fill it, queueing the pixels
 * that lie where it is uncertain. */
static int refine_cell(struct model_run *run, const struct level *l, int w, int h,
		       int cx, int cy, uint8_t *labels, int stride, int n, size_t *evals)
{
	int x0 = cx * l->step, y0 = cy * l->step;
	int x1 = x0 + l->step < w ? x0 + l->step : w, y1 = y0 + l->step < h ? y0 + l->step : h;
	uint8_t v = l->lab[cy * l->cw + cx];
	int x2, y2;

	if (!cell_uncertain(l, cx, cy)) {
		for (int y = y0; y < y1; y++)
			memset(labels + (size_t)y * stride + x0, v, x1 - x0);
		return n;
	}
	centre2(l, w, h, cx, cy, &x2, &y2);
	for (int y = y0; y < y1; y++) {
		for (int x = x0; x < x1; x++) {
			if (!side_uncertain(l, cx, cy, sign(2 * x - x2), sign(2 * y - y2))) {
				labels[(size_t)y * stride + x] = v;
				continue;
			}
			n = queue_point(run, pixel_coord(x, w), pixel_coord(y, h), y * stride + x,
					labels, n);
			(*evals)++;
		}
	}
	return n;
}

/* Every pixel of l's cells with its cell's label: the first row of each
 * band of cells in runs, the band's other rows copied from it. */
static void fill_cells(const struct level *l, int w, int h, uint8_t *labels, int stride)
{
	for (int cy = 0; cy < l->ch; cy++) {
		const uint8_t *cells = l->lab + (size_t)cy * l->cw;
		int y0 = cy * l->step, y1 = y0 + l->step < h ? y0 + l->step : h;
		uint8_t *first = labels + (size_t)y0 * stride;

		for (int cx = 0; cx < l->cw; cx++) {
			int x0 = cx * l->step;
			memset(first + x0, cells[cx], (size_t)(x0 + l->step < w ? l->step : w - x0));
		}
		for (int y = y0 + 1; y < y1; y++)
			memcpy(labels + (size_t)y * stride, first, (size_t)w);
	}
}

/* Coarse to fine: the grid at `step`, then while the side is even and
 * above 2 and finest the half-side level (only where uncertain), then the
 * pixels of the last level where uncertain, or its cells as they are
 * when finest > 1. */
static size_t decode_refined(struct model_run *run, int w, int h, int step, int finest,
			     uint8_t *labels, int stride)
{
	struct level l = level_of(w, h, step, run->coarse), f;
	size_t evals = decode_level(run, &l, w, h), half = run->coarse_cap / 2;
	int n = 0;

	while (l.step > 2 && l.step > finest && l.step % 2 == 0 && !run->cancelled) {
		f = level_of(w, h, l.step / 2, l.lab == run->coarse ? run->coarse + half : run->coarse);
		evals += halve_level(run, &l, &f, w, h);
		l = f;
	}
	if (finest > 1) {
		fill_cells(&l, w, h, labels, stride);
		return evals;
	}
	for (int cy = 0; cy < l.ch && !run->cancelled; cy++)
		for (int cx = 0; cx < l.cw; cx++)
			n = refine_cell(run, &l, w, h, cx, cy, labels, stride, n, &evals);
	flush_points(run, n, labels);
	return evals;
}

int model_decode_labels(struct model_run *run, int w, int h, uint8_t *labels,
			int stride, struct model_refine *refine)
{
	int step = refine ? refine->step : 1;
	size_t evals = 0;
	double t0 = now_ms();

	if (run->res == 0 || w <= 0 || h <= 0 || stride < w || step > 64)
		return -EINVAL;
	run->cancelled = 0;
	if (step <= 1) {
		decode_dense_labels(run, w, h, labels, stride);
		evals = (size_t)w * h;
	} else {
		if (reserve_coarse(run, grid_bytes(w, h, step)) < 0)
			return -ENOMEM;
		evals = decode_refined(run, w, h, step, refine->finest, labels, stride);
	}
	run->decode_ms += now_ms() - t0;
	if (run->cancelled)
		return -ECANCELED;
	if (refine) {
		refine->evaluated = evals;
		refine->pixels = (size_t)w * h;
	}
	return 0;
}

void model_run_set_cancel(struct model_run *run, const atomic_bool *flag)
{
	run->cancel = flag;
}

int model_run_reserve(struct model_run *run, int w, int h, int step)
{
	if (step <= 1)
		return 0;
	return reserve_coarse(run, grid_bytes(w, h, 2)); /* the most of any step */
}

void model_run_timing(const struct model_run *run, double *encode_ms, double *decode_ms)
{
	if (encode_ms)
		*encode_ms = run->encode_ms;
	if (decode_ms)
		*decode_ms = run->decode_ms;
}

/* ---- run state ---- */

static size_t max_act_floats(const struct model_info *in, int res)
{
	int s[3];
	size_t m = 0, v;

	stage_sizes(in, res, s);
	for (int i = 0; i < 3; i++) {
		v = (size_t)in->chans[i] * s[i] * s[i];
		m = v > m ? v : m;
	}
	v = (size_t)in->red_hidden * s[2] * s[2];
	m = v > m ? v : m;
	v = (size_t)in->red_out * s[2] * s[2];
	return v > m ? v : m;
}

static void *alloc_floats(size_t n)
{
	return aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
}

static void scratch_free(struct scratch *ws, int n)
{
	for (int i = 0; ws && i < n; i++) {
		free(ws[i].col);
		free(ws[i].h[0]);
		free(ws[i].h[1]);
		free(ws[i].logits);
		free(ws[i].xy);
	}
	free(ws);
}

/* Floats of one participant's im2col band: its share of COL_FLOATS, and at
 * least one output row of the widest 3x3 conv. */
static size_t col_floats(const struct model_info *in, int max_res, int threads)
{
	int s[3], c = 3;
	size_t share = COL_FLOATS / (size_t)threads;

	stage_sizes(in, max_res, s);
	for (int i = 0; i < 3; i++)
		c = in->chans[i] > c ? in->chans[i] : c;
	return share > 9u * c * s[0] ? share : 9u * c * s[0];
}

static struct scratch *scratch_create(const struct model_info *in, size_t col, int n)
{
	struct scratch *ws = calloc((size_t)n, sizeof(*ws));
	size_t mh = (size_t)in->mlp_hidden;

	for (int i = 0; ws && i < n; i++) {
		ws[i].col = alloc_floats(col);
		ws[i].h[0] = alloc_floats(TILE * mh);
		ws[i].h[1] = alloc_floats(TILE * mh);
		ws[i].logits = alloc_floats((size_t)TILE * in->num_classes);
		ws[i].xy = alloc_floats(2 * TILE);
		if (!ws[i].col || !ws[i].h[0] || !ws[i].h[1] || !ws[i].logits || !ws[i].xy) {
			scratch_free(ws, i + 1);
			return NULL;
		}
	}
	return ws;
}

int model_run_set_threads(struct model_run *run, int threads)
{
	size_t col;
	struct pool *pool;
	struct scratch *ws;
	float *xy;
	int32_t *idx;

	if (threads < 1 || threads > MODEL_MAX_THREADS)
		return -EINVAL;
	if (threads == run->threads)
		return 0;
	col = col_floats(&run->m->info, run->max_res, threads);
	openblas_set_num_threads(1);
	pool = pool_create(threads);
	ws = scratch_create(&run->m->info, col, threads);
	xy = alloc_floats(2u * TILE * threads);
	idx = malloc(sizeof(int32_t) * TILE * threads);
	if (!pool || !ws || !xy || !idx) {
		pool_destroy(pool);
		scratch_free(ws, threads);
		free(xy);
		free(idx);
		return -ENOMEM;
	}
	pool_destroy(run->pool);
	scratch_free(run->ws, run->threads);
	free(run->xy);
	free(run->idx);
	run->pool = pool, run->ws = ws, run->xy = xy, run->idx = idx;
	run->threads = threads;
	run->col_floats = col;
	run->batch = TILE * threads;
	return 0;
}

struct model_run *model_run_create(const struct model *m, int max_res)
{
	const struct model_info *in = &m->info;
	int mh = in->mlp_hidden, s[3];
	struct model_run *run;
	size_t z;

	if (max_res < in->res_min || max_res > in->res_max)
		return NULL;
	run = calloc(1, sizeof(*run));
	if (!run)
		return NULL;
	run->m = m;
	run->max_res = max_res;
	stage_sizes(in, max_res, s);
	z = (size_t)s[2] * s[2];
	run->act_floats = max_act_floats(in, max_res);
	for (int i = 0; i < 3; i++)
		run->act[i] = alloc_floats(run->act_floats);
	run->p = alloc_floats(z * mh);
	run->p_prev = alloc_floats(z * mh);
	if (in->skip) {
		run->s = alloc_floats((size_t)s[0] * s[0] * mh);
		run->s_prev = alloc_floats((size_t)s[0] * s[0] * mh);
		if (!run->s || !run->s_prev) {
			model_run_destroy(run);
			return NULL;
		}
	}
	run->g = alloc_floats((size_t)in->chans[2]);
	run->wq = alloc_floats(2 * (size_t)mh);
	run->rgba = malloc((size_t)max_res * max_res * 4);
	run->input = alloc_floats(3 * (size_t)max_res * max_res);
	if (!run->act[0] || !run->act[1] || !run->act[2] || !run->p || !run->p_prev ||
	    !run->g || !run->wq || !run->rgba || !run->input ||
	    model_run_set_threads(run, atomic_load(&default_threads)) < 0) {
		model_run_destroy(run);
		return NULL;
	}
	for (int j = 0; j < mh; j++) {
		const float *row = m->mlp[0].w + (size_t)j * m->mlp[0].in;
		int xcol = in->red_out + in->chans[2];

		run->wq[j] = row[xcol];
		run->wq[mh + j] = row[xcol + 1];
	}
	return run;
}

void model_run_destroy(struct model_run *run)
{
	if (!run)
		return;
	for (int i = 0; i < 3; i++)
		free(run->act[i]);
	pool_destroy(run->pool);
	scratch_free(run->ws, run->threads);
	free(run->p);
	free(run->p_prev);
	free(run->s);
	free(run->s_prev);
	free(run->g);
	free(run->wq);
	free(run->xy);
	free(run->idx);
	free(run->rgba);
	free(run->input);
	free(run->coarse);
	free(run);
}
