/* The FP-LIIF forward pass on cblas_sgemm.
 *
 * Activations are planar (C, H*W). A 3x3 conv is im2col over a band of
 * output rows then one sgemm into that band of the output (ldc = H*W), so
 * the column buffer stays a few MB at any input size. A residual block
 * accumulates conv2 straight into its input (beta = 1).
 *
 * Decoder rewrites (exact, model.md): the first pixel-MLP layer's feature
 * part runs on the coarse grid (P = W1f R), and its g part is folded into
 * P's bias, since bilinear weights sum to one; per query point only the
 * bilinear blend of P, the (x, y) term and the remaining layers are left.
 * P is stored (h*w, mh) so each corner is one contiguous vector. With the
 * group-1 skip, the layer's skip part runs on the group-1 grid the same way
 * (S = W1s G1, no bias) and each point adds the bilinear blend of S.
 */
#include "model-priv.h"

#include <cblas.h>
#include <errno.h>
#include <libyuv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TILE 2048                 /* query points per decoder batch */
#define COL_FLOATS (2u << 20)     /* im2col band budget, floats */

struct model_run {
	const struct model *m;
	int max_res, res;   /* res: side of the encoded input */
	int zh, zw;         /* coarse grid of P */
	float *act[3];      /* (C, H*W) activations: current, temp, group input */
	size_t act_floats;
	float *col;         /* im2col band */
	float *p;           /* (zh*zw, mh): first MLP layer on the coarse grid */
	int sh, sw;         /* grid of S */
	float *s;           /* (sh*sw, mh): its skip part on the group-1 grid */
	float *g;           /* (c3) pooled group-3 output */
	float *wq;          /* (2, mh): mlp.0 weight columns of x and y */
	float *h[2];        /* (TILE, mh) MLP activations */
	float *logits;      /* (TILE, K) */
	float *xy;          /* (TILE, 2) query points of a batch */
	int32_t *idx;       /* (TILE) output index of each query point */
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

void model_set_threads(int threads)
{
	openblas_set_num_threads(threads > 0 ? threads : 1);
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

static void add_bias(float *out, const float *b, int c, size_t hw)
{
	for (int i = 0; i < c; i++) {
		float *row = out + (size_t)i * hw;
		for (size_t j = 0; j < hw; j++)
			row[j] += b[i];
	}
}

static void relu(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* out = conv(in) + bias (+ out when accumulate), optional ReLU.
 * Returns the output side. */
int engine_conv(struct model_run *run, const struct conv *c, const float *in,
		    int is, float *out, int accumulate, int do_relu)
{
	int os = conv_out_size(is, c->stride);
	size_t hw = (size_t)os * os;
	int kk = c->cin * c->k * c->k;

	if (!accumulate)
		memset(out, 0, sizeof(float) * hw * c->cout);
	add_bias(out, c->b, c->cout, hw);
	if (c->k == 1) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, (int)hw,
			    c->cin, 1.0f, c->w, c->cin, in, (int)hw, 1.0f, out, (int)hw);
	} else {
		int band = (int)(COL_FLOATS / ((size_t)kk * os));
		band = band < 1 ? 1 : (band > os ? os : band);
		for (int y0 = 0; y0 < os; y0 += band) {
			int y1 = y0 + band < os ? y0 + band : os;
			int n = (y1 - y0) * os;
			im2col_band(in, c->cin, is, is, c->stride, os, y0, y1, run->col);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, n, kk,
				    1.0f, c->w, kk, run->col, n, 1.0f,
				    out + (size_t)y0 * os, (int)hw);
		}
	}
	if (do_relu)
		relu(out, hw * c->cout);
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

/* P (zh*zw, mh) = R^T W1f^T + (b1 + W1g g). */
static void first_layer_on_grid(struct model_run *run, const float *r)
{
	const struct model_info *in = &run->m->info;
	const struct linear *l0 = &run->m->mlp[0];
	int mh = in->mlp_hidden, rc = in->red_out, c3 = in->chans[2];
	int hw = run->zh * run->zw;
	float bias[4096];

	for (int j = 0; j < mh; j++) {
		const float *wg = l0->w + (size_t)j * l0->in + rc;
		float acc = l0->b[j];
		for (int k = 0; k < c3; k++)
			acc += wg[k] * run->g[k];
		bias[j] = acc;
	}
	for (int i = 0; i < hw; i++)
		memcpy(run->p + (size_t)i * mh, bias, sizeof(float) * mh);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, hw, mh, rc, 1.0f, r, hw,
		    l0->w, l0->in, 1.0f, run->p, mh);
}

/* S (sh*sw, mh) = G1^T W1s^T: the skip columns of layer 0 on the group-1
 * output g1 (c1, sh*sw). */
static void skip_on_grid(struct model_run *run, const float *g1, int side)
{
	const struct model_info *in = &run->m->info;
	const struct linear *l0 = &run->m->mlp[0];
	int hw = side * side;

	run->sh = run->sw = side;
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, hw, in->mlp_hidden, in->chans[0],
		    1.0f, g1, hw, l0->w + in->red_out + in->chans[2] + 2, l0->in, 0.0f,
		    run->s, in->mlp_hidden);
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
		for (int j = 0; j < mh; j++)
			out[j] = p.w[0] * p.v[0][j] + p.w[1] * p.v[1][j] + p.w[2] * p.v[2][j] +
				 p.w[3] * p.v[3][j] + x * wx[j] + y * wy[j];
		if (run->s) {
			corners_at(&s, run->s, run->sh, run->sw, mh, x, y);
			for (int j = 0; j < mh; j++)
				out[j] += s.w[0] * s.v[0][j] + s.w[1] * s.v[1][j] +
					  s.w[2] * s.v[2][j] + s.w[3] * s.v[3][j];
		}
		for (int j = 0; j < mh; j++)
			out[j] = out[j] > 0.0f ? out[j] : 0.0f;
	}
}

/* out (n, l->out) = in (n, l->in) W^T + b, optional ReLU. */
void engine_linear(const struct linear *l, const float *in, int n, float *out, int do_relu)
{
	for (int i = 0; i < n; i++)
		memcpy(out + (size_t)i * l->out, l->b, sizeof(float) * l->out);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, l->out, l->in, 1.0f,
		    in, l->in, l->w, l->in, 1.0f, out, l->out);
	if (do_relu)
		relu(out, (size_t)n * l->out);
}

/* Logits for n <= TILE points into run->logits. */
static void decode_tile(struct model_run *run, const float *xy, int n)
{
	const struct model *m = run->m;
	float *a = run->h[0], *b = run->h[1];

	engine_first_layer(run, xy, n, a);
	for (int j = 1; j < m->info.mlp_layers; j++) {
		engine_linear(&m->mlp[j], a, n, b, 1);
		swap(&a, &b);
	}
	engine_linear(&m->out, a, n, run->logits, 0);
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

int model_decode_points(struct model_run *run, const float *xy, int n, float *logits)
{
	int k = run->m->info.num_classes;
	double t0 = now_ms();

	if (run->res == 0 || n < 0)
		return -EINVAL;
	for (int i = 0; i < n; i += TILE) {
		int c = n - i < TILE ? n - i : TILE;
		decode_tile(run, xy + 2 * (size_t)i, c);
		memcpy(logits + (size_t)i * k, run->logits, sizeof(float) * c * k);
	}
	run->decode_ms += now_ms() - t0;
	return 0;
}

static inline float pixel_coord(double i, int n)
{
	return (float)(-1.0 + (2.0 * i + 1.0) / n);
}

/* Fills run->xy with the pixel centres of outputs [first, first + n) of a
 * w x h output. */
static void pixel_points(struct model_run *run, int w, int h, size_t first, int n)
{
	for (int i = 0; i < n; i++) {
		size_t o = first + (size_t)i;
		run->xy[2 * i] = pixel_coord((double)(o % (size_t)w), w);
		run->xy[2 * i + 1] = pixel_coord((double)(o / (size_t)w), h);
	}
}

int model_decode_logits(struct model_run *run, int w, int h, float *logits)
{
	int k = run->m->info.num_classes;
	size_t total = (size_t)w * h;
	double t0 = now_ms();

	if (run->res == 0 || w <= 0 || h <= 0)
		return -EINVAL;
	for (size_t i = 0; i < total; i += TILE) {
		int c = total - i < TILE ? (int)(total - i) : TILE;
		pixel_points(run, w, h, i, c);
		decode_tile(run, run->xy, c);
		for (int j = 0; j < c; j++)
			for (int q = 0; q < k; q++)
				logits[(size_t)q * total + i + j] = run->logits[(size_t)j * k + q];
	}
	run->decode_ms += now_ms() - t0;
	return 0;
}

static uint8_t argmax(const float *v, int k)
{
	int best = 0;

	for (int i = 1; i < k; i++)
		if (v[i] > v[best])
			best = i;
	return (uint8_t)best;
}

/* Decodes the n points queued in run->xy and writes each label to
 * labels[run->idx[i]]; nothing once the decoding is cancelled. */
static void flush_points(struct model_run *run, int n, uint8_t *labels)
{
	int k = run->m->info.num_classes;

	if (n == 0 || run->cancelled)
		return;
	if (run->cancel && atomic_load_explicit(run->cancel, memory_order_relaxed)) {
		run->cancelled = 1;
		return;
	}
	decode_tile(run, run->xy, n);
	for (int i = 0; i < n; i++)
		labels[run->idx[i]] = argmax(run->logits + (size_t)i * k, k);
}

static void decode_dense_labels(struct model_run *run, int w, int h,
				uint8_t *labels, int stride)
{
	int n = 0;

	for (int y = 0; y < h && !run->cancelled; y++) {
		for (int x = 0; x < w; x++) {
			run->xy[2 * n] = pixel_coord(x, w);
			run->xy[2 * n + 1] = pixel_coord(y, h);
			run->idx[n++] = y * stride + x;
			if (n == TILE) {
				flush_points(run, n, labels);
				n = 0;
			}
		}
	}
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

/* Labels of the coarse grid: the decoder at the centre of each step x step
 * cell of the full-resolution output. */
static void decode_coarse(struct model_run *run, int w, int h, int step, int cw, int ch)
{
	int n = 0;

	for (int cy = 0; cy < ch && !run->cancelled; cy++) {
		for (int cx = 0; cx < cw; cx++) {
			int x0 = cx * step, y0 = cy * step;
			int x1 = x0 + step < w ? x0 + step : w;
			int y1 = y0 + step < h ? y0 + step : h;
			run->xy[2 * n] = pixel_coord((x0 + x1 - 1) * 0.5, w);
			run->xy[2 * n + 1] = pixel_coord((y0 + y1 - 1) * 0.5, h);
			run->idx[n++] = cy * cw + cx;
			if (n == TILE) {
				flush_points(run, n, run->coarse);
				n = 0;
			}
		}
	}
	flush_points(run, n, run->coarse);
}

static int cell_uncertain(const uint8_t *c, int cw, int ch, int cx, int cy)
{
	uint8_t v = c[cy * cw + cx];

	for (int dy = -1; dy <= 1; dy++) {
		int y = cy + dy;
		if (y < 0 || y >= ch)
			continue;
		for (int dx = -1; dx <= 1; dx++) {
			int x = cx + dx;
			if (x >= 0 && x < cw && c[y * cw + x] != v)
				return 1;
		}
	}
	return 0;
}

/* Full-resolution pass over one coarse cell: fill it, or queue its pixels. */
static int refine_cell(struct model_run *run, int w, int h, int step, int cx, int cy,
		       int cw, int ch, uint8_t *labels, int stride, int n, size_t *evals)
{
	int x0 = cx * step, y0 = cy * step;
	int x1 = x0 + step < w ? x0 + step : w, y1 = y0 + step < h ? y0 + step : h;

	if (!cell_uncertain(run->coarse, cw, ch, cx, cy)) {
		for (int y = y0; y < y1; y++)
			memset(labels + (size_t)y * stride + x0, run->coarse[cy * cw + cx], x1 - x0);
		return n;
	}
	for (int y = y0; y < y1; y++) {
		for (int x = x0; x < x1; x++) {
			run->xy[2 * n] = pixel_coord(x, w);
			run->xy[2 * n + 1] = pixel_coord(y, h);
			run->idx[n++] = y * stride + x;
			if (n == TILE) {
				flush_points(run, n, labels);
				*evals += n;
				n = 0;
			}
		}
	}
	return n;
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
		int cw = (w + step - 1) / step, ch = (h + step - 1) / step, n = 0;
		if (reserve_coarse(run, (size_t)cw * ch) < 0)
			return -ENOMEM;
		decode_coarse(run, w, h, step, cw, ch);
		evals = (size_t)cw * ch;
		for (int cy = 0; cy < ch && !run->cancelled; cy++)
			for (int cx = 0; cx < cw; cx++)
				n = refine_cell(run, w, h, step, cx, cy, cw, ch, labels, stride, n, &evals);
		flush_points(run, n, labels);
		evals += n;
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
	return reserve_coarse(run, (size_t)((w + step - 1) / step) * ((h + step - 1) / step));
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

struct model_run *model_run_create(const struct model *m, int max_res)
{
	const struct model_info *in = &m->info;
	int mh = in->mlp_hidden, k = in->num_classes, s[3];
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
	run->col = alloc_floats(COL_FLOATS > 27u * s[0] ? COL_FLOATS : 27u * s[0]);
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
	run->h[0] = alloc_floats((size_t)TILE * mh);
	run->h[1] = alloc_floats((size_t)TILE * mh);
	run->logits = alloc_floats((size_t)TILE * k);
	run->xy = alloc_floats(2 * TILE);
	run->idx = malloc(sizeof(int32_t) * TILE);
	run->rgba = malloc((size_t)max_res * max_res * 4);
	run->input = alloc_floats(3 * (size_t)max_res * max_res);
	if (!run->act[0] || !run->act[1] || !run->act[2] || !run->col || !run->p || !run->p_prev ||
	    !run->g || !run->wq || !run->h[0] || !run->h[1] || !run->logits ||
	    !run->xy || !run->idx || !run->rgba || !run->input) {
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
	free(run->col);
	free(run->p);
	free(run->p_prev);
	free(run->s);
	free(run->s_prev);
	free(run->g);
	free(run->wq);
	free(run->h[0]);
	free(run->h[1]);
	free(run->logits);
	free(run->xy);
	free(run->idx);
	free(run->rgba);
	free(run->input);
	free(run->coarse);
	free(run);
}
