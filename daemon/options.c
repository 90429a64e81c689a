#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum opt_kind { OPT_FLAG, OPT_INT, OPT_STRING, OPT_LEVEL, OPT_OUTPUT, OPT_SIZE };

struct opt_def {
	const char *name;
	int letter;
	enum opt_kind kind;
	const char *arg;   /* argument name shown in help */
	const char *help;
	int lo, hi;        /* OPT_INT range */
	size_t offset;     /* into struct options */
};

#define OFF(f) offsetof(struct options, f)

static const struct opt_def opt_table[] = {
	{ "source", 's', OPT_STRING, "SPEC", "frames from: synthetic, y4m:PATH (y4m:- = stdin) (default synthetic)", 0, 0, OFF(source) },
	{ "output", 'o', OPT_OUTPUT, "SPEC", "write composed frames to y4m:PATH (y4m:- = stdout); repeatable", 0, 0, 0 },
	{ "size", 'S', OPT_SIZE, "WxH", "capture size wanted (default: the source's own)", 0, 0, 0 },
	{ "fps", 'F', OPT_INT, "N", "capture frame rate wanted, 1..240 (default: the source's own)", 1, 240, OFF(fps) },
	{ "no-pacing", 'P', OPT_FLAG, NULL, "file and synthetic sources as fast as read, not at their rate", 0, 0, 0 },
	{ "frames", 'n', OPT_INT, "N", "stop after N output frames (default: run until stopped)", 1, 1 << 30, OFF(frames) },
	{ "model", 'm', OPT_STRING, "PATH", "weights file (default: the shipped default model)", 0, 0, OFF(model) },
	{ "res", 'r', OPT_INT, "N", "encoder input side in pixels, 96..256 (default 128)", 96, 256, OFF(res) },
	{ "threads", 't', OPT_INT, "N", "inference threads, 1..64 (default 2)", 1, 64, OFF(threads) },
	{ "refine", 'R', OPT_INT, "STEP", "boundary refinement step, 1 = dense decoding (default 4)", 1, 64, OFF(refine) },
	{ "alpha", 'a', OPT_INT, "PCT", "opacity of the coloured parts, 0..100 (default 55)", 0, 100, OFF(alpha) },
	{ "stats-json", 'j', OPT_FLAG, NULL, "print the run's figures as one JSON line at exit", 0, 0, 0 },
	{ "preview", 'p', OPT_FLAG, NULL, "show the preview window (keys: o m l f + - ] [ s q)", 0, 0, 0 },
	{ "screenshot", 'w', OPT_STRING, "PATH", "with --preview: save the window as PNG at exit", 0, 0, OFF(screenshot) },
	{ "log-level", 'l', OPT_LEVEL, "LEVEL", "error, warning, info or debug (default info)", 0, 0, OFF(log_level) },
	{ "verbose", 'v', OPT_FLAG, NULL, "same as --log-level debug", 0, 0, 0 },
	{ "help", 'h', OPT_FLAG, NULL, "print this help and exit", 0, 0, 0 },
	{ "version", 'V', OPT_FLAG, NULL, "print the version and exit", 0, 0, 0 },
};

#define N_OPTS (sizeof(opt_table) / sizeof(opt_table[0]))

void options_defaults(struct options *o)
{
	*o = (struct options){
		.source = "synthetic",
		.res = 128,
		.threads = 2,
		.refine = 4,
		.alpha = 55,
		.log_level = LOG_LVL_INFO,
	};
}

void options_usage(FILE *f)
{
	fprintf(f, "Usage: facetd [OPTION]...\n"
		   "Parses faces live: every pixel labelled skin, brow, eye, nose, lip, hair, ...\n\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_def *d = &opt_table[i];
		char left[40];
		snprintf(left, sizeof(left), "-%c, --%s%s%s", d->letter, d->name,
			 d->arg ? " " : "", d->arg ? d->arg : "");
		fprintf(f, "  %-26s %s\n", left, d->help);
	}
}

static int parse_int(const struct opt_def *d, const char *arg, int *out, FILE *err)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < d->lo || v > d->hi) {
		fprintf(err, "facetd: --%s: '%s' is not a whole number in [%d, %d]\n",
			d->name, arg, d->lo, d->hi);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

static int parse_size(const struct opt_def *d, const char *arg, int *w, int *h, FILE *err)
{
	int n = 0;

	if (sscanf(arg, "%dx%d%n", w, h, &n) != 2 || arg[n] || *w < 16 || *h < 16 ||
	    *w > 8192 || *h > 8192 || (*w | *h) & 1) {
		fprintf(err, "facetd: --%s: '%s' is not WIDTHxHEIGHT (even, 16..8192)\n", d->name, arg);
		return -EINVAL;
	}
	return 0;
}

/* Applies one option with its argument (NULL for flags). */
static int apply(struct options *o, const struct opt_def *d, const char *arg, FILE *err)
{
	char *field = (char *)o + d->offset;

	switch (d->kind) {
	case OPT_INT:
		return parse_int(d, arg, (int *)(void *)field, err);
	case OPT_STRING:
		if (!*arg) {
			fprintf(err, "facetd: --%s: empty value\n", d->name);
			return -EINVAL;
		}
		*(const char **)(void *)field = arg;
		return 0;
	case OPT_LEVEL:
		if (log_level_parse(arg, (enum log_level *)(void *)field) < 0) {
			fprintf(err, "facetd: --%s: '%s' is not error, warning, info or debug\n",
				d->name, arg);
			return -EINVAL;
		}
		return 0;
	case OPT_OUTPUT:
		if (o->n_outputs == OPTIONS_MAX_OUTPUTS) {
			fprintf(err, "facetd: --%s: at most %d outputs\n", d->name, OPTIONS_MAX_OUTPUTS);
			return -EINVAL;
		}
		o->outputs[o->n_outputs++] = arg;
		return 0;
	case OPT_SIZE:
		return parse_size(d, arg, &o->width, &o->height, err);
	case OPT_FLAG:
		break;
	}
	if (d->letter == 'v')
		o->log_level = LOG_LVL_DEBUG;
	else if (d->letter == 'P')
		o->no_pacing = 1;
	else if (d->letter == 'j')
		o->stats_json = 1;
	else if (d->letter == 'p')
		o->preview = 1;
	return 0;
}

static void build_getopt(struct option *longopts, char *shortopts)
{
	size_t n = 0;

	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_def *d = &opt_table[i];
		longopts[i] = (struct option){ d->name, d->kind == OPT_FLAG ? no_argument
					       : required_argument, NULL, d->letter };
		shortopts[n++] = (char)d->letter;
		if (d->kind != OPT_FLAG)
			shortopts[n++] = ':';
	}
	longopts[N_OPTS] = (struct option){ 0 };
	shortopts[n] = 0;
}

static const struct opt_def *find_letter(int c)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (opt_table[i].letter == c)
			return &opt_table[i];
	return NULL;
}

int options_parse(struct options *o, int argc, char **argv, FILE *out, FILE *err)
{
	struct option longopts[N_OPTS + 1];
	char shortopts[2 * N_OPTS + 2];
	int c;

	build_getopt(longopts, shortopts + 1);
	shortopts[0] = ':'; /* report a missing argument as ':' */
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct opt_def *d = find_letter(c);
		if (c == 'h') {
			options_usage(out);
			return OPTIONS_DONE;
		}
		if (c == 'V') {
			fprintf(out, "facetd %s\n", FACETD_VERSION);
			return OPTIONS_DONE;
		}
		if (c == '?' || c == ':' || !d) {
			fprintf(err, "facetd: %s '%s' (see --help)\n",
				c == ':' ? "missing argument for" : "unknown option",
				argv[optind - 1]);
			return -EINVAL;
		}
		if (apply(o, d, optarg, err) < 0)
			return -EINVAL;
	}
	if (optind < argc) {
		fprintf(err, "facetd: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	return OPTIONS_RUN;
}
