/* The engine: each step against a naive reference, the whole forward pass
 * against golden logits exported from PyTorch, dense against refined
 * decoding, and the input range. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model-priv.h"
#include "render.h"

static uint32_t rng_state = 12345;

static float frand(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float *rand_floats(size_t n)
{
	float *v = malloc(n * sizeof(float));

	T_ASSERT(v);
	for (size_t i = 0; i < n; i++)
		v[i] = frand();
	return v;
}

/* max |a - b| / max |b|: the normalised error of ggml's op tests. */
static double norm_err(const float *a, const float *b, size_t n)
{
	double num = 0, den = 1e-12;

	for (size_t i = 0; i < n; i++) {
		num = fmax(num, fabs((double)a[i] - b[i]));
		den = fmax(den, fabs((double)b[i]));
	}
	return num / den;
}

static struct model *load(const char *name)
{
	char err[512];
	struct model *m;
	int r = model_load(t_path(name), &m, err, sizeof(err));

	if (r < 0)
		t_fail(__FILE__, __LINE__, "%s", err);
	return m;
}

static void naive_conv(const struct conv *c, const float *in, int is, float *out, int relu_out)
{
	int os = conv_out_size(is, c->stride), p = c->k / 2;

	for (int co = 0; co < c->cout; co++)
		for (int oy = 0; oy < os; oy++)
			for (int ox = 0; ox < os; ox++) {
				double acc = c->b[co];
				for (int ci = 0; ci < c->cin; ci++)
					for (int ky = 0; ky < c->k; ky++)
						for (int kx = 0; kx < c->k; kx++) {
							int iy = oy * c->stride + ky - p;
							int ix = ox * c->stride + kx - p;
							if (iy < 0 || iy >= is || ix < 0 || ix >= is)
								continue;
							acc += (double)c->w[((co * c->cin + ci) * c->k + ky) * c->k + kx] *
							       in[(ci * is + iy) * is + ix];
						}
				float v = (float)acc;
				out[(co * os + oy) * os + ox] = relu_out && v < 0 ? 0 : v;
			}
}

static void check_conv(struct model_run *run, int cin, int cout, int k, int stride, int is,
		       int relu_out)
{
	int os = conv_out_size(is, stride);
	float *w = rand_floats((size_t)cout * cin * k * k), *b = rand_floats(cout);
	float *in = rand_floats((size_t)cin * is * is);
	float *got = calloc((size_t)cout * os * os, sizeof(float));
	float *want = calloc((size_t)cout * os * os, sizeof(float));
	struct conv c = { w, b, cin, cout, k, stride };

	T_EQ_INT(engine_conv(run, &c, in, is, got, 0, relu_out), os);
	naive_conv(&c, in, is, want, relu_out);
	T_CMP_DBL(norm_err(got, want, (size_t)cout * os * os), <, 1e-5);
	/* the Winograd path of a stride-1 3x3 conv, as the model's convs run */
	T_EQ_INT(engine_wino_weights(&c), 0);
	T_EQ_INT(c.wino != NULL, k == 3 && stride == 1);
	memset(got, 0, sizeof(float) * (size_t)cout * os * os);
	T_EQ_INT(engine_conv(run, &c, in, is, got, 0, relu_out), os);
	T_CMP_DBL(norm_err(got, want, (size_t)cout * os * os), <, 1e-5);
	free(c.wino);
	free(w), free(b), free(in), free(got), free(want);
}

static void test_conv_against_naive(void)
{
	struct model *m = load("fixtures/tiny.fpw");
	struct model_run *run = model_run_create(m, 128);

	T_ASSERT(run);
	check_conv(run, 3, 8, 3, 1, 17, 0);
	check_conv(run, 3, 8, 3, 2, 17, 1);
	check_conv(run, 8, 12, 3, 2, 16, 0);
	check_conv(run, 12, 12, 3, 1, 9, 1);
	check_conv(run, 24, 8, 1, 1, 7, 0);
	/* 576 x 200 x 200 columns exceed the band budget: several bands */
	check_conv(run, 64, 16, 3, 1, 200, 0);
	model_run_destroy(run);
	model_free(m);
}

static void test_conv_accumulates(void)
{
	struct model *m = load("fixtures/tiny.fpw");
	struct model_run *run = model_run_create(m, 128);
	int c = 6, s = 11;
	size_t n = (size_t)c * s * s;
	float *w = rand_floats(9 * (size_t)c * c), *b = rand_floats(c), *in = rand_floats(n);
	float *acc = rand_floats(n), *want = malloc(n * sizeof(float));
	float *base = malloc(n * sizeof(float));
	struct conv cv = { w, b, c, c, 3, 1 };

	memcpy(base, acc, n * sizeof(float));
	naive_conv(&cv, in, s, want, 0);
	for (size_t i = 0; i < n; i++)
		want[i] += base[i];
	engine_conv(run, &cv, in, s, acc, 1, 0);
	T_CMP_DBL(norm_err(acc, want, n), <, 1e-5);
	/* and the Winograd path, on an odd side (a last tile half outside) */
	T_EQ_INT(engine_wino_weights(&cv), 0);
	memcpy(acc, base, n * sizeof(float));
	engine_conv(run, &cv, in, s, acc, 1, 0);
	T_CMP_DBL(norm_err(acc, want, n), <, 1e-5);
	free(cv.wino);
	free(w), free(b), free(in), free(acc), free(want), free(base);
	model_run_destroy(run);
	model_free(m);
}

static void test_linear_against_naive(void)
{
	int in = 37, out = 23, n = 50;
	float *w = rand_floats((size_t)in * out), *b = rand_floats(out);
	float *x = rand_floats((size_t)n * in), *got = malloc(sizeof(float) * n * out);
	float *want = malloc(sizeof(float) * n * out);
	struct linear l = { w, b, in, out };

	for (int relu_out = 0; relu_out < 2; relu_out++) {
		for (int i = 0; i < n; i++)
			for (int j = 0; j < out; j++) {
				double acc = b[j];
				for (int k = 0; k < in; k++)
					acc += (double)x[i * in + k] * w[j * in + k];
				want[i * out + j] = relu_out && acc < 0 ? 0 : (float)acc;
			}
		engine_linear(&l, x, n, got, relu_out);
		T_CMP_DBL(norm_err(got, want, (size_t)n * out), <, 1e-5);
	}
	free(w), free(b), free(x), free(got), free(want);
}

/* Channel j of grid (gh*gw, mh) sampled bilinearly at (x, y), border
 * clamp, align_corners=False: PyTorch's grid_sample, in doubles. */
static double naive_sample(const float *g, int gh, int gw, int mh, int j, double x, double y)
{
	double fx = fmin(fmax(((x + 1) * gw - 1) / 2, 0), gw - 1);
	double fy = fmin(fmax(((y + 1) * gh - 1) / 2, 0), gh - 1);
	int x0 = (int)floor(fx), y0 = (int)floor(fy);
	int x1 = x0 + 1 < gw ? x0 + 1 : x0, y1 = y0 + 1 < gh ? y0 + 1 : y0;
	double ax = fx - x0, ay = fy - y0;

	return (1 - ay) * ((1 - ax) * g[(y0 * gw + x0) * mh + j] + ax * g[(y0 * gw + x1) * mh + j]) +
	       ay * ((1 - ax) * g[(y1 * gw + x0) * mh + j] + ax * g[(y1 * gw + x1) * mh + j]);
}

/* The first pixel-MLP layer: bilinear blend of the grid (and of the skip
 * grid) plus the x, y terms, ReLU. */
static void check_first_layer(const char *weights)
{
	struct model *m = load(weights);
	const struct model_info *info = model_get_info(m);
	struct model_run *run = model_run_create(m, 128);
	int res = 100, mh = info->mlp_hidden, n = 64, zh, zw, sh = 0, sw = 0;
	float *in = rand_floats(3 * (size_t)res * res), xy[2 * 64];
	float *got = malloc(sizeof(float) * n * mh);
	const struct linear *l0 = &m->mlp[0];
	int xcol = info->red_out + info->chans[2];

	T_EQ_INT(model_encode(run, in, res), 0);
	for (int i = 0; i < 2 * n; i++)
		xy[i] = 1.3f * frand();
	engine_first_layer(run, xy, n, got);
	const float *p = engine_grid(run, &zh, &zw);
	const float *s = engine_skip_grid(run, &sh, &sw);
	T_EQ_INT(zh, 13); /* 100 -> 50 -> 25 -> 13 */
	T_EQ_INT(s != NULL, info->skip);
	if (s)
		T_EQ_INT(sh, 50);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < mh; j++) {
			double v = naive_sample(p, zh, zw, mh, j, xy[2 * i], xy[2 * i + 1]);
			if (s)
				v += naive_sample(s, sh, sw, mh, j, xy[2 * i], xy[2 * i + 1]);
			v += xy[2 * i] * l0->w[j * l0->in + xcol] + xy[2 * i + 1] * l0->w[j * l0->in + xcol + 1];
			T_NEAR(got[i * mh + j], v > 0 ? v : 0, 1e-4 * (1 + fabs(v)));
		}
	}
	free(in), free(got);
	model_run_destroy(run);
	model_free(m);
}

static void test_first_layer_against_naive(void)
{
	check_first_layer("fixtures/tiny.fpw");
	check_first_layer("fixtures/tiny-skip.fpw");
}

struct golden {
	int res, nq, k;
	float *input, *xy, *logits;
};

static int read_golden(const char *path, struct golden *g)
{
	FILE *f = fopen(path, "rb");
	uint32_t h[3];
	int ok;

	if (!f)
		return -errno;
	ok = fread(h, sizeof(h), 1, f) == 1 && h[0] <= 1024 && h[1] <= 100000 && h[2] <= 64;
	if (ok) {
		g->res = (int)h[0], g->nq = (int)h[1], g->k = (int)h[2];
		g->input = malloc(sizeof(float) * 3 * g->res * g->res);
		g->xy = malloc(sizeof(float) * 2 * g->nq);
		g->logits = malloc(sizeof(float) * g->nq * g->k);
		ok = g->input && g->xy && g->logits &&
		     fread(g->input, sizeof(float) * 3 * g->res * g->res, 1, f) == 1 &&
		     fread(g->xy, sizeof(float) * 2 * g->nq, 1, f) == 1 &&
		     fread(g->logits, sizeof(float) * g->nq * g->k, 1, f) == 1;
	}
	fclose(f);
	return ok ? 0 : -EINVAL;
}

static void check_golden(const char *weights, const char *golden)
{
	struct model *m = load(weights);
	struct golden g = { 0 };
	struct model_run *run;
	float *got;
	double maxerr = 0;

	T_EQ_INT(read_golden(t_path(golden), &g), 0);
	T_EQ_INT(g.k, model_get_info(m)->num_classes);
	run = model_run_create(m, g.res);
	T_ASSERT(run);
	got = malloc(sizeof(float) * g.nq * g.k);
	T_EQ_INT(model_encode(run, g.input, g.res), 0);
	T_EQ_INT(model_decode_points(run, g.xy, g.nq, got), 0);
	for (int i = 0; i < g.nq * g.k; i++)
		maxerr = fmax(maxerr, fabs((double)got[i] - g.logits[i]));
	printf("  %s: max abs logit error %.3g over %d points\n", weights, maxerr, g.nq);
	T_CMP_DBL(maxerr, <=, 1e-3);
	free(got), free(g.input), free(g.xy), free(g.logits);
	model_run_destroy(run);
	model_free(m);
}

static void test_golden_tiny(void)
{
	check_golden("fixtures/tiny.fpw", "fixtures/tiny-golden.bin");
}

/* The group-1 skip: its grid, blend and column layout against PyTorch. */
static void test_golden_tiny_skip(void)
{
	check_golden("fixtures/tiny-skip.fpw", "fixtures/tiny-skip-golden.bin");
}

static void test_golden_shipped(void)
{
	check_golden("../model/weights/default.fpw", "fixtures/default-golden.bin");
}

static void test_dense_equals_points(void)
{
	struct model *m = load("fixtures/tiny.fpw");
	struct model_run *run = model_run_create(m, 128);
	int w = 37, h = 23, k = model_get_info(m)->num_classes;
	float *in = rand_floats(3 * 96 * 96), *dense = malloc(sizeof(float) * w * h * k);
	float *pts = malloc(sizeof(float) * w * h * k), *xy = malloc(sizeof(float) * 2 * w * h);

	T_EQ_INT(model_encode(run, in, 96), 0);
	T_EQ_INT(model_decode_logits(run, w, h, dense), 0);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			xy[2 * (y * w + x)] = -1.0f + (2.0f * x + 1.0f) / w;
			xy[2 * (y * w + x) + 1] = -1.0f + (2.0f * y + 1.0f) / h;
		}
	T_EQ_INT(model_decode_points(run, xy, w * h, pts), 0);
	for (int i = 0; i < w * h; i++)
		for (int c = 0; c < k; c++)
			T_NEAR(dense[c * w * h + i], pts[i * k + c], 1e-5);
	free(in), free(dense), free(pts), free(xy);
	model_run_destroy(run);
	model_free(m);
}

/* Refined labels on a real face with the shipped weights: step 1 is dense
 * exactly; step 4 agrees with dense on at least 99.5 % of the pixels
 * and evaluates under a fifth of them; stopping at 2 x 2 cells, 98.5 %. */
static void test_refine_agrees_with_dense(void)
{
	struct model *m = load("../model/weights/default.fpw");
	struct model_run *run = model_run_create(m, 128);
	struct image img;
	char err[256];
	int w = 384, h = 384;
	uint8_t *dense = malloc((size_t)w * h), *ref = malloc((size_t)w * h);
	struct model_refine r1 = { .step = 1 }, r4 = { .step = 4 };
	size_t same = 0;

	T_EQ_INT(image_load(t_path("fixtures/face0.jpg"), &img, err, sizeof(err)), 0);
	T_EQ_INT(model_encode_rgba(run, img.rgba, img.width * 4, img.width, img.height, 128), 0);
	T_EQ_INT(model_decode_labels(run, w, h, dense, w, NULL), 0);
	T_EQ_INT(model_decode_labels(run, w, h, ref, w, &r1), 0);
	T_EQ_INT(memcmp(dense, ref, (size_t)w * h), 0);
	T_EQ_INT(r1.evaluated, (size_t)w * h);
	T_EQ_INT(model_decode_labels(run, w, h, ref, w, &r4), 0);
	for (size_t i = 0; i < (size_t)w * h; i++)
		same += dense[i] == ref[i];
	printf("  step 4: %.3f %% agree, %.1f %% of evaluations saved\n",
	       100.0 * same / ((double)w * h), 100.0 * (1 - (double)r4.evaluated / r4.pixels));
	T_CMP_DBL((double)same / ((double)w * h), >=, 0.995);
	T_CMP_INT(r4.evaluated, <, r4.pixels / 5);
	/* stopping at 2 x 2 cells: fewer evaluations, 98.5 % still agree */
	struct model_refine r42 = { .step = 4, .finest = 2 };
	T_EQ_INT(model_decode_labels(run, w, h, ref, w, &r42), 0);
	same = 0;
	for (size_t i = 0; i < (size_t)w * h; i++)
		same += dense[i] == ref[i];
	printf("  step 4, finest 2: %.3f %% agree, %.1f %% saved\n",
	       100.0 * same / ((double)w * h), 100.0 * (1 - (double)r42.evaluated / r42.pixels));
	T_CMP_DBL((double)same / ((double)w * h), >=, 0.985);
	T_CMP_INT(r42.evaluated, <, r4.evaluated * 3 / 4);
	free(dense), free(ref);
	image_free(&img);
	model_run_destroy(run);
	model_free(m);
}

static void test_encode_rgba_normalises(void)
{
	struct model *m = load("fixtures/tiny.fpw");
	const struct model_info *in = model_get_info(m);
	struct model_run *run = model_run_create(m, 128);
	int s = 96;
	uint8_t *rgba = malloc((size_t)s * s * 4);
	float *planar = malloc(sizeof(float) * 3 * s * s), a[19], b[19], xy[2] = { 0.1f, -0.3f };

	for (int i = 0; i < s * s * 4; i++)
		rgba[i] = (uint8_t)(i * 37 + (i >> 7));
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < s * s; i++)
			planar[c * s * s + i] = (rgba[4 * i + c] / 255.0f - in->mean[c]) / in->std[c];
	T_EQ_INT(model_encode(run, planar, s), 0);
	T_EQ_INT(model_decode_points(run, xy, 1, a), 0);
	T_EQ_INT(model_encode_rgba(run, rgba, s * 4, s, s, s), 0);
	T_EQ_INT(model_decode_points(run, xy, 1, b), 0);
	for (int c = 0; c < in->num_classes; c++)
		T_NEAR(a[c], b[c], 1e-4);
	free(rgba), free(planar);
	model_run_destroy(run);
	model_free(m);
}

/* A raised cancel flag stops model_decode_labels() before any batch of
 * query points, dense or refined; a lowered one changes nothing. */
static void test_decode_cancel(void)
{
	struct model *m = load("fixtures/tiny.fpw");
	struct model_run *run = model_run_create(m, 128);
	float *in = calloc(3 * 96 * 96, sizeof(float));
	int w = 100, h = 100;
	uint8_t *want = malloc((size_t)w * h), *got = malloc((size_t)w * h);
	struct model_refine r4 = { .step = 4 };
	atomic_bool flag = true;

	T_EQ_INT(model_encode(run, in, 96), 0);
	T_EQ_INT(model_decode_labels(run, w, h, want, w, NULL), 0);
	model_run_set_cancel(run, &flag);
	memset(got, 0xEE, (size_t)w * h);
	T_EQ_INT(model_decode_labels(run, w, h, got, w, NULL), -ECANCELED);
	T_EQ_INT(model_decode_labels(run, w, h, got, w, &r4), -ECANCELED);
	for (int i = 0; i < w * h; i++)
		T_EQ_INT(got[i], 0xEE); /* nothing decoded */
	atomic_store(&flag, false);
	T_EQ_INT(model_decode_labels(run, w, h, got, w, NULL), 0);
	T_EQ_INT(memcmp(got, want, (size_t)w * h), 0);
	atomic_store(&flag, true);
	model_run_set_cancel(run, NULL);
	T_EQ_INT(model_decode_labels(run, w, h, got, w, NULL), 0);
	free(in), free(want), free(got);
	model_run_destroy(run);
	model_free(m);
}

static void test_input_range(void)
{
	struct model *m = load("fixtures/tiny.fpw");
	struct model_run *run = model_run_create(m, 128);
	float *in = calloc(3 * 257 * 257, sizeof(float)), xy[2] = { 0, 0 }, out[32];

	T_ASSERT(run);
	T_ASSERT(model_run_create(m, 95) == NULL);
	T_ASSERT(model_run_create(m, 257) == NULL);
	T_EQ_INT(model_decode_points(run, xy, 1, out), -EINVAL); /* nothing encoded */
	T_EQ_INT(model_encode(run, in, 95), -EINVAL);
	T_EQ_INT(model_encode(run, in, 129), -EINVAL); /* above this run's max */
	T_EQ_INT(model_encode(run, in, 96), 0);
	T_EQ_INT(model_encode(run, in, 127), 0);
	free(in);
	model_run_destroy(run);
	model_free(m);
}

struct pool_count {
	atomic_int hits[1000];
	atomic_int bad_worker;
};

static void count_task(void *arg, int task, int worker)
{
	struct pool_count *c = arg;

	atomic_fetch_add(&c->hits[task], 1);
	if (worker < 0 || worker >= 3)
		atomic_fetch_add(&c->bad_worker, 1);
}

/* Every task of every job runs exactly once, on a participant in range. */
static void test_pool_runs_each_task_once(void)
{
	static struct pool_count c;
	struct pool *p = pool_create(3);
	int sizes[] = { 0, 1, 2, 3, 7, 1000 };

	T_ASSERT(p);
	T_EQ_INT(pool_threads(p), 3);
	T_ASSERT(pool_create(0) == NULL);
	for (int rep = 0; rep < 50; rep++) {
		int n = sizes[rep % 6];
		for (int i = 0; i < 1000; i++)
			atomic_store(&c.hits[i], 0);
		pool_run(p, n, count_task, &c);
		for (int i = 0; i < 1000; i++)
			T_EQ_INT(atomic_load(&c.hits[i]), i < n ? 1 : 0);
	}
	T_EQ_INT(atomic_load(&c.bad_worker), 0);
	pool_destroy(p);
	pool_destroy(NULL);
}

/* The same pass on one thread and on three: the same logits (each output
 * is one participant's sum either way) and the same refined labels. */
static void test_threads_agree(void)
{
	struct model *m = load("../model/weights/default.fpw");
	struct model_run *one = model_run_create(m, 128), *three = model_run_create(m, 128);
	int w = 150, h = 130, k = model_get_info(m)->num_classes, side = 384;
	float *a = malloc(sizeof(float) * w * h * k), *b = malloc(sizeof(float) * w * h * k);
	uint8_t *la = malloc((size_t)side * side), *lb = malloc((size_t)side * side);
	struct model_refine ra = { .step = 4 }, rb = { .step = 4 };
	struct image img;
	char err[256];
	double maxerr = 0;

	T_ASSERT(one && three);
	T_EQ_INT(model_run_set_threads(three, 0), -EINVAL);
	T_EQ_INT(model_run_set_threads(three, 65), -EINVAL);
	T_EQ_INT(model_run_set_threads(one, 1), 0);
	T_EQ_INT(model_run_set_threads(three, 3), 0);
	T_EQ_INT(image_load(t_path("fixtures/face0.jpg"), &img, err, sizeof(err)), 0);
	T_EQ_INT(model_encode_rgba(one, img.rgba, img.width * 4, img.width, img.height, 128), 0);
	T_EQ_INT(model_encode_rgba(three, img.rgba, img.width * 4, img.width, img.height, 128), 0);
	T_EQ_INT(model_decode_logits(one, w, h, a), 0);
	T_EQ_INT(model_decode_logits(three, w, h, b), 0);
	for (int i = 0; i < w * h * k; i++)
		maxerr = fmax(maxerr, fabs((double)a[i] - b[i]));
	printf("  1 vs 3 threads: max abs logit difference %.3g\n", maxerr);
	T_CMP_DBL(maxerr, <=, 1e-4);
	T_EQ_INT(model_decode_labels(one, side, side, la, side, &ra), 0);
	T_EQ_INT(model_decode_labels(three, side, side, lb, side, &rb), 0);
	T_EQ_INT(ra.evaluated, rb.evaluated);
	T_EQ_INT(memcmp(la, lb, (size_t)side * side), 0);
	free(a), free(b), free(la), free(lb);
	image_free(&img);
	model_run_destroy(one);
	model_run_destroy(three);
	model_free(m);
}

T_MAIN(T_CASE(test_pool_runs_each_task_once),
       T_CASE(test_threads_agree),
       T_CASE(test_conv_against_naive),
       T_CASE(test_conv_accumulates),
       T_CASE(test_linear_against_naive),
       T_CASE(test_first_layer_against_naive),
       T_CASE(test_golden_tiny),
       T_CASE(test_golden_tiny_skip),
       T_CASE(test_golden_shipped),
       T_CASE(test_dense_equals_points),
       T_CASE(test_refine_agrees_with_dense),
       T_CASE(test_encode_rgba_normalises),
       T_CASE(test_decode_cancel),
       T_CASE(test_input_range))
