#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum opt_kind {
	OPT_BOOL,      /* int field: 1 when given on the command line */
	OPT_VERBOSE,   /* alias: log_level = debug */
	OPT_ACTION,    /* --help, --version: no field */
	OPT_INT,
	OPT_STRING,
	OPT_CHOICE,    /* a string field, one of the words of choices */
	OPT_PATH,      /* a string field: a file to write, - for stdout */
	OPT_LEVEL,
	OPT_OUTPUT,
	OPT_SIZE,
};

struct opt_def {
	const char *name;
	int letter;
	enum opt_kind kind;
	const char *arg;   /* argument name shown in help */
	const char *help;
	int lo, hi;        /* OPT_INT range; a value outside it means unset */
	size_t offset;     /* into struct options */
	enum options_when when;
	const char *const *choices; /* OPT_CHOICE: the words taken, NULL-terminated */
};

#define OFF(f) offsetof(struct options, f)
#define CLI OPTIONS_CLI_ONLY
#define START OPTIONS_AT_START
#define RESTART OPTIONS_RESTART
#define LIVE OPTIONS_LIVE

static const char *const camera_formats[] = { "auto", "yuyv", "mjpeg", "nv12", NULL };

static const struct opt_def opt_table[] = {
	{ "source", 's', OPT_STRING, "SPEC", "frames from: auto (the first camera, else synthetic; default), v4l2:DEVICE, y4m:PATH (- = stdin), synthetic", 0, 0, OFF(source), RESTART },
	{ "output", 'o', OPT_OUTPUT, "SPEC", "write composed frames to v4l2:DEVICE (a virtual camera) or y4m:PATH (- = stdout); repeatable", 0, 0, 0, RESTART },
	{ "output-labels", 'L', OPT_STRING, "SPEC", "write the label map (class ids, GREY) to v4l2:DEVICE or y4m:PATH", 0, 0, OFF(output_labels), RESTART },
	{ "output-format", 'Y', OPT_STRING, "FMT", "v4l2 output pixel format: yuyv or i420 (default yuyv)", 0, 0, OFF(output_format), RESTART },
	{ "effect", 'e', OPT_STRING, "NAME", "parts, blur, replace:IMAGE, recolor[:hair|:lips], privacy[:face], none (default parts)", 0, 0, OFF(effect), LIVE },
	{ "tint-hair", 'H', OPT_STRING, "RRGGBB", "recolor: the hair tint (default b87333)", 0, 0, OFF(tint_hair), LIVE },
	{ "tint-lips", 'K', OPT_STRING, "RRGGBB", "recolor: the lip tint (default d05a78)", 0, 0, OFF(tint_lips), LIVE },
	{ "size", 'S', OPT_SIZE, "WxH", "capture size wanted (default: the source's own)", 0, 0, 0, RESTART },
	{ "fps", 'F', OPT_INT, "N", "capture frame rate wanted, 1..240 (default: the source's own; files play at theirs)", 1, 240, OFF(fps), RESTART },
	{ "format", 'f', OPT_CHOICE, "FMT", "camera pixel format: yuyv, mjpeg or nv12 (default auto: YUYV up to 640x480, MJPEG above); a camera without it falls back to auto, with a warning", 0, 0, OFF(format), RESTART, camera_formats },
	{ "no-pacing", 'P', OPT_BOOL, NULL, "file and synthetic sources as fast as read, not at their rate", 0, 0, OFF(no_pacing), RESTART },
	{ "no-on-demand", 'D', OPT_BOOL, NULL, "keep the camera open while no application reads the v4l2 output (default: release it)", 0, 0, OFF(no_on_demand), RESTART },
	{ "frames", 'n', OPT_INT, "N", "stop after N output frames (default: run until stopped)", 1, 1 << 30, OFF(frames), START },
	{ "model", 'm', OPT_STRING, "PATH", "weights file (default: the shipped default model)", 0, 0, OFF(model), START },
	{ "res", 'r', OPT_INT, "N", "encoder input side in pixels, 96..256 (default 128)", 96, 256, OFF(res), LIVE },
	{ "threads", 't', OPT_INT, "N", "inference threads, 1..64 (default 2)", 1, 64, OFF(threads), LIVE },
	{ "refine", 'R', OPT_INT, "STEP", "boundary refinement step, 1 = dense decoding (default 4)", 1, 64, OFF(refine), LIVE },
	{ "smoothing", 'T', OPT_INT, "PCT", "temporal smoothing of the parts, 0 (off)..95 (default 50)", 0, 95, OFF(smoothing), LIVE },
	{ "alpha", 'a', OPT_INT, "PCT", "opacity of the coloured parts, 0..100 (default 55)", 0, 100, OFF(alpha), LIVE },
	{ "stats-json", 'j', OPT_PATH, "PATH", "write the run's figures as one JSON object to PATH at exit (- = stdout)", 0, 0, OFF(stats_json), LIVE },
	{ "preview", 'p', OPT_BOOL, NULL, "show the preview window (keys: o m l f e + - ] [ s q)", 0, 0, OFF(preview), RESTART },
	{ "screenshot", 'w', OPT_STRING, "PATH", "with --preview: save the window as PNG at exit", 0, 0, OFF(screenshot), START },
	{ "log-level", 'l', OPT_LEVEL, "LEVEL", "error, warning, info or debug (default info)", 0, 0, OFF(log_level), LIVE },
	{ "verbose", 'v', OPT_VERBOSE, NULL, "same as --log-level debug", 0, 0, OFF(log_level), LIVE },
	{ "config", 'c', OPT_STRING, "PATH", "config file (default $XDG_CONFIG_HOME/facetd/facetd.conf)", 0, 0, OFF(config), CLI },
	{ "control", 'C', OPT_STRING, "PATH", "control socket (default $RUNTIME_DIRECTORY/control or $XDG_RUNTIME_DIR/facetd/control)", 0, 0, OFF(control), START },
	{ "help", 'h', OPT_ACTION, NULL, "print this help and exit", 0, 0, 0, CLI },
	{ "version", 'V', OPT_ACTION, NULL, "print the version and exit", 0, 0, 0, CLI },
	{ "doctor", 'X', OPT_ACTION, NULL, "check the virtual-camera set-up, print the fixes, and exit", 0, 0, 0, CLI },
};

#define N_OPTS (sizeof(opt_table) / sizeof(opt_table[0]))
_Static_assert(N_OPTS <= 64, "options.given has 64 bits");

void options_defaults(struct options *o)
{
	*o = (struct options){
		.source = "auto",
		.res = 128,
		.threads = 2,
		.refine = 4,
		.alpha = 55,
		.smoothing = 50,
		.effect = "parts",
		.format = "auto",
		.output_format = "yuyv",
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
	fprintf(f, "\nEvery option but --help, --version and --config is also a config file key\n"
		   "(KEY = VALUE; flags take true or false); the command line overrides the file.\n");
}

/* ---- values ---- */

static void *field(const struct options *o, const struct opt_def *d)
{
	return (char *)o + d->offset;
}

static int parse_int(const struct opt_def *d, const char *arg, int *out, char *msg, size_t len)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < d->lo || v > d->hi) {
		snprintf(msg, len, "'%s' is not a whole number in [%d, %d]", arg, d->lo, d->hi);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

static int parse_size(const char *arg, int *w, int *h, char *msg, size_t len)
{
	int n = 0, pw, ph;

	if (sscanf(arg, "%dx%d%n", &pw, &ph, &n) != 2 || arg[n] || pw < 16 || ph < 16 ||
	    pw > 8192 || ph > 8192 || (pw | ph) & 1) {
		snprintf(msg, len, "'%s' is not WIDTHxHEIGHT (even, 16..8192)", arg);
		return -EINVAL;
	}
	*w = pw;
	*h = ph;
	return 0;
}

static int parse_bool(const char *arg, int *out, char *msg, size_t len)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcmp(arg, yes[i]) == 0 || strcmp(arg, no[i]) == 0) {
			*out = strcmp(arg, yes[i]) == 0;
			return 0;
		}
	}
	snprintf(msg, len, "'%s' is not true or false", arg);
	return -EINVAL;
}

/* Stores the table's own word, which outlives arg. */
static int parse_choice(const struct opt_def *d, const char *arg, const char **out, char *msg,
			size_t len)
{
	size_t n, i;

	for (i = 0; d->choices[i]; i++)
		if (strcmp(arg, d->choices[i]) == 0) {
			*out = d->choices[i];
			return 0;
		}
	n = (size_t)snprintf(msg, len, "'%s' is not", arg);
	for (size_t j = 0; j < i && n < len; j++)
		n += (size_t)snprintf(msg + n, len - n, "%s%s", j == 0 ? " " : j + 1 < i ? ", " : " or ",
				      d->choices[j]);
	return -EINVAL;
}

/* A file to write, or - for stdout. Another value that starts with '-' is
 * an option taken for the path (--stats-json used to be a flag). */
static int parse_path(const char *arg, const char **out, char *msg, size_t len)
{
	if (!*arg) {
		snprintf(msg, len, "empty value");
		return -EINVAL;
	}
	if (arg[0] == '-' && arg[1]) {
		snprintf(msg, len, "'%s' is an option, not a PATH (- for stdout, ./%s for that file)",
			 arg, arg);
		return -EINVAL;
	}
	*out = arg;
	return 0;
}

static int add_output(struct options *o, const char *arg, char *msg, size_t len)
{
	if (!*arg) {
		snprintf(msg, len, "empty value");
		return -EINVAL;
	}
	if (o->n_outputs == OPTIONS_MAX_OUTPUTS) {
		snprintf(msg, len, "at most %d outputs", OPTIONS_MAX_OUTPUTS);
		return -EINVAL;
	}
	o->outputs[o->n_outputs++] = arg;
	return 0;
}

/* Flags: arg NULL (command line) sets them, else arg is a boolean word. */
static int apply_flag(struct options *o, const struct opt_def *d, const char *arg,
		      char *msg, size_t len)
{
	int v = 1;

	if (arg && parse_bool(arg, &v, msg, len) < 0)
		return -EINVAL;
	if (d->kind == OPT_BOOL)
		*(int *)field(o, d) = v;
	else if (v)
		o->log_level = LOG_LVL_DEBUG;
	return 0;
}

/* Applies one option with its argument; the problem goes to msg. */
static int apply(struct options *o, const struct opt_def *d, const char *arg,
		 char *msg, size_t len)
{
	o->given |= 1ull << (d - opt_table);
	switch (d->kind) {
	case OPT_INT:
		return parse_int(d, arg, (int *)field(o, d), msg, len);
	case OPT_STRING:
		if (!*arg) {
			snprintf(msg, len, "empty value");
			return -EINVAL;
		}
		*(const char **)field(o, d) = arg;
		return 0;
	case OPT_CHOICE:
		return parse_choice(d, arg, (const char **)field(o, d), msg, len);
	case OPT_PATH:
		return parse_path(arg, (const char **)field(o, d), msg, len);
	case OPT_LEVEL:
		if (log_level_parse(arg, (enum log_level *)field(o, d)) < 0) {
			snprintf(msg, len, "'%s' is not error, warning, info or debug", arg);
			return -EINVAL;
		}
		return 0;
	case OPT_OUTPUT:
		return add_output(o, arg, msg, len);
	case OPT_SIZE:
		return parse_size(arg, &o->width, &o->height, msg, len);
	case OPT_BOOL:
	case OPT_VERBOSE:
		return apply_flag(o, d, arg, msg, len);
	case OPT_ACTION:
		break;
	}
	return 0;
}

/* ---- the command line ---- */

static void build_getopt(struct option *longopts, char *shortopts)
{
	size_t n = 0;

	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_def *d = &opt_table[i];
		int flag = d->kind == OPT_BOOL || d->kind == OPT_VERBOSE || d->kind == OPT_ACTION;
		longopts[i] = (struct option){ d->name, flag ? no_argument : required_argument,
					       NULL, d->letter };
		shortopts[n++] = (char)d->letter;
		if (!flag)
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
	char shortopts[2 * N_OPTS + 2], msg[256];
	int c, doctor = 0;

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
		if (c == 'X') {
			doctor = 1;
			continue;
		}
		if (c == '?' || c == ':' || !d) {
			fprintf(err, "facetd: %s '%s' (see --help)\n",
				c == ':' ? "missing argument for" : "unknown option",
				argv[optind - 1]);
			return -EINVAL;
		}
		if (apply(o, d, optarg, msg, sizeof(msg)) < 0) {
			fprintf(err, "facetd: --%s: %s\n", d->name, msg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(err, "facetd: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	return doctor ? OPTIONS_DOCTOR : OPTIONS_RUN;
}

/* ---- the table as settings ---- */

size_t options_count(void)
{
	return N_OPTS;
}

const char *options_name(size_t i)
{
	return i < N_OPTS ? opt_table[i].name : NULL;
}

enum options_when options_when(size_t i)
{
	return i < N_OPTS ? opt_table[i].when : OPTIONS_CLI_ONLY;
}

int options_find(const char *name)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (strcmp(opt_table[i].name, name) == 0)
			return (int)i;
	return -ENOENT;
}

int options_set(struct options *o, const char *key, const char *value,
		char *err, size_t errlen)
{
	int i = options_find(key);
	char msg[256];

	if (i < 0) {
		snprintf(err, errlen, "unknown key '%s'", key);
		return -ENOENT;
	}
	if (opt_table[i].when == OPTIONS_CLI_ONLY) {
		snprintf(err, errlen, "%s: not a setting (command line only)", key);
		return -EINVAL;
	}
	if (apply(o, &opt_table[i], value, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s: %s", key, msg);
		return -EINVAL;
	}
	return 0;
}

static const char *level_name(enum log_level l)
{
	switch (l) {
	case LOG_LVL_ERROR: return "error";
	case LOG_LVL_WARN: return "warning";
	case LOG_LVL_DEBUG: return "debug";
	default: return "info";
	}
}

static int join_outputs(const struct options *o, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (int i = 0; i < o->n_outputs && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "", o->outputs[i]);
	return n < len ? (o->n_outputs == 0) : -ENOSPC;
}

int options_get(const struct options *o, size_t i, char *buf, size_t len)
{
	const struct opt_def *d = &opt_table[i];
	int v, n = 0;

	buf[0] = 0;
	switch (d->kind) {
	case OPT_INT:
		v = *(const int *)field(o, d);
		if (v < d->lo || v > d->hi)
			return 1;
		n = snprintf(buf, len, "%d", v);
		break;
	case OPT_STRING:
	case OPT_CHOICE:
	case OPT_PATH:
		if (!*(const char *const *)field(o, d))
			return 1;
		n = snprintf(buf, len, "%s", *(const char *const *)field(o, d));
		break;
	case OPT_BOOL:
	case OPT_VERBOSE:
		v = d->kind == OPT_BOOL ? *(const int *)field(o, d) : o->log_level == LOG_LVL_DEBUG;
		n = snprintf(buf, len, "%s", v ? "true" : "false");
		break;
	case OPT_LEVEL:
		n = snprintf(buf, len, "%s", level_name(o->log_level));
		break;
	case OPT_OUTPUT:
		return join_outputs(o, buf, len);
	case OPT_SIZE:
		if (!o->width)
			return 1;
		n = snprintf(buf, len, "%dx%d", o->width, o->height);
		break;
	case OPT_ACTION:
		return 1;
	}
	return (size_t)n < len ? 0 : -ENOSPC;
}

uint64_t options_mask(enum options_when when)
{
	uint64_t m = 0;

	for (size_t i = 0; i < N_OPTS; i++)
		if (opt_table[i].when == when)
			m |= 1ull << i;
	return m;
}

static bool same_string(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_outputs(const struct options *a, const struct options *b)
{
	if (a->n_outputs != b->n_outputs)
		return false;
	for (int i = 0; i < a->n_outputs; i++)
		if (!same_string(a->outputs[i], b->outputs[i]))
			return false;
	return true;
}

static bool same(const struct options *a, const struct options *b, const struct opt_def *d)
{
	switch (d->kind) {
	case OPT_INT:
	case OPT_BOOL:
		return *(const int *)field(a, d) == *(const int *)field(b, d);
	case OPT_STRING:
	case OPT_CHOICE:
	case OPT_PATH:
		return same_string(*(const char *const *)field(a, d), *(const char *const *)field(b, d));
	case OPT_LEVEL:
		return a->log_level == b->log_level;
	case OPT_OUTPUT:
		return same_outputs(a, b);
	case OPT_SIZE:
		return a->width == b->width && a->height == b->height;
	case OPT_VERBOSE: /* an alias of log-level */
	case OPT_ACTION:
		break;
	}
	return true;
}

uint64_t options_diff(const struct options *a, const struct options *b)
{
	uint64_t m = 0;

	for (size_t i = 0; i < N_OPTS; i++)
		if (!same(a, b, &opt_table[i]))
			m |= 1ull << i;
	return m;
}

static void copy_one(struct options *dst, const struct options *src, const struct opt_def *d)
{
	switch (d->kind) {
	case OPT_INT:
	case OPT_BOOL:
		*(int *)field(dst, d) = *(const int *)field(src, d);
		break;
	case OPT_STRING:
	case OPT_CHOICE:
	case OPT_PATH:
		*(const char **)field(dst, d) = *(const char *const *)field(src, d);
		break;
	case OPT_LEVEL:
	case OPT_VERBOSE:
		dst->log_level = src->log_level;
		break;
	case OPT_OUTPUT:
		memcpy(dst->outputs, src->outputs, sizeof(dst->outputs));
		dst->n_outputs = src->n_outputs;
		break;
	case OPT_SIZE:
		dst->width = src->width;
		dst->height = src->height;
		break;
	case OPT_ACTION:
		break;
	}
}

void options_copy(struct options *dst, const struct options *src, uint64_t mask)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (mask & (1ull << i))
			copy_one(dst, src, &opt_table[i]);
	dst->given |= src->given & mask;
}

void options_names(uint64_t mask, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < N_OPTS && n < len; i++)
		if (mask & (1ull << i))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", opt_table[i].name);
}
