/* facet-bench: latency of the FP-LIIF engine, its GFLOP/s, and the
 * OpenBLAS sgemm GFLOP/s of this machine measured in the same run. */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "render.h"
#include "tool.h"

#define PROG "facet-bench"
#define MAX_ITERS 10000

struct bench_opts {
	const char *model, *image;
	int res, out, threads, iters, warmup, refine, finest, json;
};

struct samples {
	double *enc, *dec, *total, *ref;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [options]\n"
		"Times the encoder, dense decoding and refined decoding; prints p50/p90.\n\n"
		"  -r, --res N          encoder input side (default 128)\n"
		"  -o, --out N          output side decoded (default: same as --res)\n"
		"  -t, --threads N      BLAS threads (default 2)\n"
		"  -m, --model PATH     weights file (default: the shipped default)\n"
		"  -i, --image PATH     input photo (default: a synthetic pattern)\n"
		"  -n, --iters N        timed iterations (default 30)\n"
		"      --warmup N       untimed iterations first (default 3)\n"
		"      --refine STEP    refinement step measured (default 4)\n"
		"      --finest N       smallest cell refined: 1 pixels (default), 2 2x2 cells\n"
		"  -j, --json           one JSON object\n"
		"  -h, --help           this help\n"
		"  -V, --version        print the version\n");
}

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{ "res", required_argument, NULL, 'r' },
		{ "out", required_argument, NULL, 'o' },
		{ "threads", required_argument, NULL, 't' },
		{ "model", required_argument, NULL, 'm' },
		{ "image", required_argument, NULL, 'i' },
		{ "iters", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "refine", required_argument, NULL, 'R' },
		{ "finest", required_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "r:o:t:m:i:n:jhV", longopts, NULL)) != -1) {
		int r = 0;
		switch (c) {
		case 'r': r = tool_int(PROG, "--res", optarg, 16, 1024, &o->res); break;
		case 'o': r = tool_int(PROG, "--out", optarg, 1, 4096, &o->out); break;
		case 't': r = tool_int(PROG, "--threads", optarg, 1, 64, &o->threads); break;
		case 'm': o->model = optarg; break;
		case 'i': o->image = optarg; break;
		case 'n': r = tool_int(PROG, "--iters", optarg, 1, MAX_ITERS, &o->iters); break;
		case 'w': r = tool_int(PROG, "--warmup", optarg, 0, MAX_ITERS, &o->warmup); break;
		case 'R': r = tool_int(PROG, "--refine", optarg, 2, 64, &o->refine); break;
		case 'F': r = tool_int(PROG, "--finest", optarg, 1, 64, &o->finest); break;
		case 'j': o->json = 1; break;
		case 'h': usage(stdout); return 1;
		case 'V': printf(PROG " " FACETD_VERSION "\n"); return 1;
		default: usage(stderr); return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->out)
		o->out = o->res;
	return 0;
}

/* A smooth synthetic photo: an ellipse "face" on a gradient. */
static void synthetic_image(struct image *img)
{
	for (int y = 0; y < img->height; y++) {
		for (int x = 0; x < img->width; x++) {
			uint8_t *p = img->rgba + ((size_t)y * img->width + x) * 4;
			double u = (x - img->width / 2.0) / (img->width * 0.3);
			double v = (y - img->height / 2.0) / (img->height * 0.4);
			int in = u * u + v * v < 1.0;
			p[0] = (uint8_t)(in ? 220 : 40 + x % 64);
			p[1] = (uint8_t)(in ? 170 : 60 + y % 64);
			p[2] = (uint8_t)(in ? 140 : 90);
			p[3] = 255;
		}
	}
}

/* OpenBLAS sgemm on square n x n matrices with its own threads: best
 * GFLOP/s of a few runs. Call before model_run_create(), which sets
 * OpenBLAS back to one thread (the engine has threads of its own). */
static double sgemm_gflops(int n, int threads)
{
	float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n);
	float *c = malloc(sizeof(float) * n * n);
	double best = 0;

	if (!a || !b || !c)
		goto out;
	for (int i = 0; i < n * n; i++) {
		a[i] = (float)((i * 7) % 13) / 13.0f;
		b[i] = (float)((i * 5) % 11) / 11.0f;
	}
	openblas_set_num_threads(threads);
	for (int it = 0; it < 6; it++) {
		double t0 = tool_now_ms();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n,
			    b, n, 0.0f, c, n);
		double g = 2.0 * n * n * (double)n / ((tool_now_ms() - t0) * 1e6);
		best = it > 0 && g > best ? g : best; /* the first run warms up */
	}
out:
	free(a);
	free(b);
	free(c);
	return best;
}

static double agreement(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t same = 0;

	for (size_t i = 0; i < n; i++)
		same += a[i] == b[i];
	return (double)same / (double)n;
}

struct bench_result {
	double enc50, enc90, dec50, dec90, tot50, tot90, ref50, refdec50;
	double agree, saved, gflops, sgemm;
};

static int run_bench(const struct bench_opts *o, struct model *m, const struct image *img,
		     struct bench_result *res)
{
	int n = o->warmup + o->iters, side = o->out, r = 0;
	size_t px = (size_t)side * side;
	struct model_refine refine = { .step = o->refine, .finest = o->finest };
	struct model_run *run = model_run_create(m, o->res);
	uint8_t *dense = malloc(px), *refined = malloc(px);
	double *s = calloc(4 * (size_t)o->iters, sizeof(double));
	double e, d, t0, refdec_total = 0;

	if (!run || !dense || !refined || !s) {
		r = run ? -ENOMEM : -EINVAL;
		goto out;
	}
	r = model_run_reserve(run, side, side, o->refine);
	for (int i = 0; i < n && r == 0; i++) {
		t0 = tool_now_ms();
		r = model_encode_rgba(run, img->rgba, img->width * 4, img->width, img->height, o->res);
		r = r ? r : model_decode_labels(run, side, side, dense, side, NULL);
		model_run_timing(run, &e, &d);
		double total = tool_now_ms() - t0;
		t0 = tool_now_ms();
		r = r ? r : model_decode_labels(run, side, side, refined, side, &refine);
		double rd = tool_now_ms() - t0;
		if (i < o->warmup)
			continue;
		int k = i - o->warmup;
		s[k] = e;
		s[o->iters + k] = d;
		s[2 * o->iters + k] = total;
		s[3 * o->iters + k] = e + rd;
		refdec_total += rd;
	}
	if (r < 0)
		goto out;
	res->agree = agreement(dense, refined, px);
	res->saved = 1.0 - (double)refine.evaluated / (double)refine.pixels;
	res->enc50 = tool_percentile(s, o->iters, 50);
	res->enc90 = tool_percentile(s, o->iters, 90);
	res->dec50 = tool_percentile(s + o->iters, o->iters, 50);
	res->dec90 = tool_percentile(s + o->iters, o->iters, 90);
	res->tot50 = tool_percentile(s + 2 * o->iters, o->iters, 50);
	res->tot90 = tool_percentile(s + 2 * o->iters, o->iters, 90);
	res->ref50 = tool_percentile(s + 3 * o->iters, o->iters, 50);
	res->refdec50 = refdec_total / o->iters;
	res->gflops = 2.0 * (model_encoder_macs(m, o->res) +
			     model_decoder_macs_per_point(m) * (double)px) / (res->tot50 * 1e6);
out:
	free(s);
	free(dense);
	free(refined);
	model_run_destroy(run);
	return r;
}

static void print_result(const struct bench_opts *o, const struct model *m,
			 const struct bench_result *b)
{
	const struct model_info *in = model_get_info(m);
	double gmac = (model_encoder_macs(m, o->res) +
		       model_decoder_macs_per_point(m) * (double)o->out * o->out) / 1e9;

	if (o->json) {
		printf("{\"res\": %d, \"out\": %d, \"threads\": %d, \"params\": %zu, \"gmac\": %.4f, "
		       "\"encoder_ms_p50\": %.3f, \"encoder_ms_p90\": %.3f, "
		       "\"decoder_ms_p50\": %.3f, \"decoder_ms_p90\": %.3f, "
		       "\"ms_p50\": %.3f, \"ms_p90\": %.3f, \"refine_step\": %d, "
		       "\"refined_ms_p50\": %.3f, \"refined_decoder_ms_mean\": %.3f, "
		       "\"refine_agreement\": %.6f, \"refine_evals_saved\": %.4f, "
		       "\"gflops\": %.2f, \"sgemm_gflops\": %.2f, \"gflops_ratio\": %.3f}\n",
		       o->res, o->out, o->threads, in->params, gmac, b->enc50, b->enc90,
		       b->dec50, b->dec90, b->tot50, b->tot90, o->refine, b->ref50, b->refdec50,
		       b->agree, b->saved, b->gflops, b->sgemm, b->gflops / b->sgemm);
		return;
	}
	printf("model: %zu parameters, %.3f GMAC at %d in / %d out, %d threads\n",
	       in->params, gmac, o->res, o->out, o->threads);
	printf("encoder        p50 %8.2f ms  p90 %8.2f ms\n", b->enc50, b->enc90);
	printf("decoder dense  p50 %8.2f ms  p90 %8.2f ms\n", b->dec50, b->dec90);
	printf("total dense    p50 %8.2f ms  p90 %8.2f ms\n", b->tot50, b->tot90);
	printf("total refined  p50 %8.2f ms  (step %d: %.2f %% of evaluations saved, "
	       "%.3f %% labels agree with dense)\n", b->ref50, o->refine, 100 * b->saved,
	       100 * b->agree);
	printf("engine %.1f GFLOP/s, OpenBLAS sgemm %.1f GFLOP/s (%.0f %%)\n", b->gflops,
	       b->sgemm, 100 * b->gflops / b->sgemm);
}

int main(int argc, char **argv)
{
	struct bench_opts o = { .res = 128, .threads = 2, .iters = 30, .warmup = 3, .refine = 4 };
	struct bench_result b = { 0 };
	struct image img = { 0 };
	struct model *m;
	char err[512];
	int r;

	r = parse_args(argc, argv, &o);
	if (r != 0)
		return r < 0 ? 2 : 0;
	m = tool_load_model(PROG, o.model);
	if (!m)
		return 1;
	model_set_threads(o.threads);
	if (o.image)
		r = image_load(o.image, &img, err, sizeof(err));
	else if ((r = image_alloc(&img, 512, 512)) == 0)
		synthetic_image(&img);
	if (r < 0) {
		fprintf(stderr, PROG ": %s\n", o.image ? err : strerror(-r));
	} else {
		b.sgemm = sgemm_gflops(1024, o.threads);
		r = run_bench(&o, m, &img, &b);
		if (r < 0)
			fprintf(stderr, PROG ": --res %d: %s\n", o.res, strerror(-r));
		else
			print_result(&o, m, &b);
	}
	image_free(&img);
	model_free(m);
	return r < 0 ? 1 : 0;
}
