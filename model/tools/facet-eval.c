/* facet-eval: F1 of the face parser on a labelled set (model.md protocol:
 * predictions at the masks' size, one confusion matrix over the set). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "render.h"
#include "tool.h"

#define PROG "facet-eval"
#define K_MAX MODEL_MAX_CLASSES

static const int face10[10] = { 1, 2, 4, 5, 6, 7, 10, 11, 12, 13 };

struct eval_opts {
	const char *data, *model;
	int res, threads, refine, json;
};

struct eval_state {
	uint64_t conf[K_MAX][K_MAX]; /* [truth][prediction] */
	int images, k;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " --data DIR [options]\n"
		"DIR holds images/*.jpg and masks/*.png with matching names.\n\n"
		"  -d, --data DIR       the labelled set\n"
		"  -r, --res N          encoder input side (default 128)\n"
		"  -m, --model PATH     weights file (default: the shipped default)\n"
		"  -t, --threads N      BLAS threads (default 2)\n"
		"      --refine STEP    boundary refinement step, 1 = dense (default 1)\n"
		"  -j, --json           one JSON object instead of a table\n"
		"  -h, --help           this help\n"
		"  -V, --version        print the version\n");
}

static int parse_args(int argc, char **argv, struct eval_opts *o)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "res", required_argument, NULL, 'r' },
		{ "model", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "refine", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "d:r:m:t:jhV", longopts, NULL)) != -1) {
		int r = 0;
		switch (c) {
		case 'd': o->data = optarg; break;
		case 'r': r = tool_int(PROG, "--res", optarg, 16, 1024, &o->res); break;
		case 'm': o->model = optarg; break;
		case 't': r = tool_int(PROG, "--threads", optarg, 1, 64, &o->threads); break;
		case 'R': r = tool_int(PROG, "--refine", optarg, 1, 64, &o->refine); break;
		case 'j': o->json = 1; break;
		case 'h': usage(stdout); return 1;
		case 'V': printf(PROG " " FACETD_VERSION "\n"); return 1;
		default: usage(stderr); return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	if (!o->data || optind < argc) {
		fprintf(stderr, PROG ": %s\n", o->data ? "unexpected argument" : "--data DIR is required");
		return -EINVAL;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted stems of the .jpg files in DIR/images; *n gets the count. */
static char **list_stems(const char *data, int *n)
{
	char path[4096], **v = NULL;
	struct dirent *e;
	int cap = 0;
	DIR *d;

	*n = 0;
	snprintf(path, sizeof(path), "%s/images", data);
	d = opendir(path);
	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".jpg") != 0)
			continue;
		if (*n == cap) {
			char **nv = realloc(v, sizeof(*v) * (cap = cap ? 2 * cap : 256));
			if (!nv)
				break;
			v = nv;
		}
		v[*n] = strndup(e->d_name, len - 4);
		if (v[*n])
			(*n)++;
	}
	closedir(d);
	if (v)
		qsort(v, (size_t)*n, sizeof(*v), cmp_str);
	return v;
}

static int eval_one(const struct eval_opts *o, struct model_run *run,
		    struct eval_state *st, const char *stem)
{
	struct model_refine refine = { .step = o->refine };
	char path[4096], err[512];
	struct image img;
	uint8_t *mask = NULL, *pred = NULL;
	int w, h, r;

	snprintf(path, sizeof(path), "%s/masks/%s.png", o->data, stem);
	r = image_load_labels(path, &mask, &w, &h, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return r;
	}
	snprintf(path, sizeof(path), "%s/images/%s.jpg", o->data, stem);
	r = image_load(path, &img, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		free(mask);
		return r;
	}
	pred = malloc((size_t)w * h);
	r = pred ? model_encode_rgba(run, img.rgba, img.width * 4, img.width, img.height, o->res)
		 : -ENOMEM;
	r = r ? r : model_decode_labels(run, w, h, pred, w, &refine);
	for (size_t i = 0; r == 0 && i < (size_t)w * h; i++) {
		if (mask[i] >= st->k) {
			fprintf(stderr, PROG ": %s/masks/%s.png: label %d out of range\n",
				o->data, stem, mask[i]);
			r = -EINVAL;
			break;
		}
		st->conf[mask[i]][pred[i]]++;
	}
	st->images += r == 0;
	free(pred);
	free(mask);
	image_free(&img);
	return r;
}

static void f1_scores(const struct eval_state *st, double *f1)
{
	for (int c = 0; c < st->k; c++) {
		uint64_t tp = st->conf[c][c], gt = 0, pr = 0;
		for (int j = 0; j < st->k; j++) {
			gt += st->conf[c][j];
			pr += st->conf[j][c];
		}
		f1[c] = gt + pr ? 2.0 * (double)tp / (double)(gt + pr) : 0.0;
	}
}

static void report(const struct eval_opts *o, const struct model_info *info,
		   const struct eval_state *st)
{
	double f1[K_MAX], mean = 0, mean10 = 0;

	f1_scores(st, f1);
	for (int c = 1; c < st->k; c++)
		mean += f1[c] / (st->k - 1);
	for (int i = 0; i < 10; i++)
		mean10 += f1[face10[i]] / 10;
	if (o->json) {
		printf("{\"mean_f1\": %.6f, \"mean_f1_face10\": %.6f, \"images\": %d, \"res\": %d, "
		       "\"refine\": %d, \"per_class\": {", mean, mean10, st->images, o->res, o->refine);
		for (int c = 0; c < st->k; c++)
			printf("%s\"%s\": %.6f", c ? ", " : "", info->class_names[c], f1[c]);
		printf("}}\n");
		return;
	}
	for (int c = 0; c < st->k; c++)
		printf("%-12s %.4f\n", info->class_names[c], f1[c]);
	printf("mean F1 (18)  %.4f\nface-10 F1    %.4f\nimages        %d\n", mean, mean10, st->images);
}

int main(int argc, char **argv)
{
	struct eval_opts o = { .res = 128, .threads = 2, .refine = 1 };
	static struct eval_state st;
	struct model_run *run = NULL;
	struct model *m = NULL;
	char **stems = NULL;
	int n = 0, failed = 0, r;

	r = parse_args(argc, argv, &o);
	if (r != 0)
		return r < 0 ? 2 : 0;
	stems = list_stems(o.data, &n);
	if (n == 0) {
		fprintf(stderr, PROG ": %s/images: no .jpg images\n", o.data);
		free(stems);
		return 1;
	}
	m = tool_load_model(PROG, o.model);
	if (m) {
		model_set_threads(o.threads);
		run = model_run_create(m, o.res);
		if (!run)
			fprintf(stderr, PROG ": --res %d: outside what the weights allow\n", o.res);
	}
	if (run) {
		st.k = model_get_info(m)->num_classes;
		for (int i = 0; i < n; i++)
			failed += eval_one(&o, run, &st, stems[i]) < 0;
		report(&o, model_get_info(m), &st);
	}
	for (int i = 0; i < n; i++)
		free(stems[i]);
	free(stems);
	model_run_destroy(run);
	model_free(m);
	return !run || failed ? 1 : 0;
}
