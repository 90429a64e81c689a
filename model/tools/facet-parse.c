/* facet-parse: face parts of image files, as label and overlay PNGs. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <libyuv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "render.h"
#include "tool.h"

#define PROG "facet-parse"

struct parse_opts {
	const char *outdir, *model;
	int res, w, h, threads, refine;
	float alpha;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " IMAGE... -o DIR [options]\n"
		"Writes DIR/NAME.labels.png (class ids 0..18) and DIR/NAME.overlay.png.\n\n"
		"  -o, --output DIR     where to write (must exist)\n"
		"  -r, --res N          encoder input side, 96..256 (default 128)\n"
		"  -s, --size WxH       output size (default: the image's own)\n"
		"  -m, --model PATH     weights file (default: the shipped default)\n"
		"  -t, --threads N      BLAS threads (default 2)\n"
		"      --refine STEP    boundary refinement step, 1 = dense (default 4)\n"
		"      --alpha A        overlay opacity in percent (default 55)\n"
		"  -h, --help           this help\n"
		"  -V, --version        print the version\n");
}

static int parse_args(int argc, char **argv, struct parse_opts *o)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "res", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 's' },
		{ "model", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "refine", required_argument, NULL, 'R' },
		{ "alpha", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c, pct = 55;

	while ((c = getopt_long(argc, argv, "o:r:s:m:t:hV", longopts, NULL)) != -1) {
		int r = 0;
		switch (c) {
		case 'o': o->outdir = optarg; break;
		case 'r': r = tool_int(PROG, "--res", optarg, 16, 1024, &o->res); break;
		case 's': r = tool_size(PROG, "--size", optarg, &o->w, &o->h); break;
		case 'm': o->model = optarg; break;
		case 't': r = tool_int(PROG, "--threads", optarg, 1, 64, &o->threads); break;
		case 'R': r = tool_int(PROG, "--refine", optarg, 1, 64, &o->refine); break;
		case 'a': r = tool_int(PROG, "--alpha", optarg, 0, 100, &pct); break;
		case 'h': usage(stdout); return 1;
		case 'V': printf(PROG " " FACETD_VERSION "\n"); return 1;
		default: usage(stderr); return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	o->alpha = pct / 100.0f;
	if (!o->outdir || optind >= argc) {
		fprintf(stderr, PROG ": %s\n", o->outdir ? "no IMAGE given" : "-o DIR is required");
		return -EINVAL;
	}
	return 0;
}

/* "dir/x/photo.jpg" -> "photo" */
static void stem_of(const char *path, char *buf, size_t len)
{
	const char *base = strrchr(path, '/');
	char *dot;

	snprintf(buf, len, "%s", base ? base + 1 : path);
	dot = strrchr(buf, '.');
	if (dot && dot != buf)
		*dot = 0;
}

static int write_outputs(const struct parse_opts *o, const char *path,
			 const struct image *img, const uint8_t *labels, int w, int h)
{
	char stem[256], out[4096];
	struct image view;
	int r;

	r = image_alloc(&view, w, h);
	if (r < 0)
		return r;
	ARGBScale(img->rgba, img->width * 4, img->width, img->height, view.rgba, w * 4,
		  w, h, kFilterBilinear);
	render_overlay(view.rgba, w * 4, labels, w, w, h, o->alpha);
	stem_of(path, stem, sizeof(stem));
	snprintf(out, sizeof(out), "%s/%s.labels.png", o->outdir, stem);
	r = image_save_png(out, labels, w, w, h, 1);
	if (r == 0) {
		snprintf(out, sizeof(out), "%s/%s.overlay.png", o->outdir, stem);
		r = image_save_png(out, view.rgba, w * 4, w, h, 4);
	}
	if (r < 0)
		fprintf(stderr, PROG ": %s: cannot write: %s\n", out, strerror(-r));
	image_free(&view);
	return r;
}

static int parse_one(const struct parse_opts *o, struct model_run *run, const char *path)
{
	struct model_refine refine = { .step = o->refine };
	struct image img;
	char err[512];
	uint8_t *labels;
	int w, h, r;

	r = image_load(path, &img, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return r;
	}
	w = o->w ? o->w : img.width;
	h = o->h ? o->h : img.height;
	labels = malloc((size_t)w * h);
	r = labels ? model_encode_rgba(run, img.rgba, img.width * 4, img.width, img.height, o->res)
		   : -ENOMEM;
	r = r ? r : model_decode_labels(run, w, h, labels, w, &refine);
	if (r < 0)
		fprintf(stderr, PROG ": %s: inference failed: %s\n", path, strerror(-r));
	else
		r = write_outputs(o, path, &img, labels, w, h);
	free(labels);
	image_free(&img);
	return r;
}

int main(int argc, char **argv)
{
	struct parse_opts o = { .res = 128, .threads = 2, .refine = 4 };
	struct model_run *run;
	struct model *m;
	int failed = 0;

	int r = parse_args(argc, argv, &o);

	if (r != 0)
		return r < 0 ? 2 : 0;
	m = tool_load_model(PROG, o.model);
	if (!m)
		return 1;
	model_set_threads(o.threads);
	run = model_run_create(m, o.res);
	if (!run) {
		fprintf(stderr, PROG ": --res %d: outside what the weights allow (%d..%d)\n",
			o.res, model_get_info(m)->res_min, model_get_info(m)->res_max);
		model_free(m);
		return 2;
	}
	for (int i = optind; i < argc; i++)
		failed += parse_one(&o, run, argv[i]) < 0;
	model_run_destroy(run);
	model_free(m);
	return failed ? 1 : 0;
}
