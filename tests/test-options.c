/* facetd's command line: values, ranges and the messages for bad input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "options.h"

/* Parses a NULL-terminated argument list; err/out captured in buffers. */
static int parse(struct options *o, char *errbuf, size_t len, const char **args)
{
	char *argv[16];
	int argc = 0, r;
	FILE *err = fmemopen(errbuf, len, "w"), *out = fopen("/dev/null", "w");

	argv[argc++] = (char *)"facetd";
	while (*args)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	options_defaults(o);
	r = options_parse(o, argc, argv, out, err);
	fclose(err);
	fclose(out);
	return r;
}

static void test_defaults_and_values(void)
{
	struct options o;
	char err[256] = "";

	T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ NULL }), OPTIONS_RUN);
	T_EQ_INT(o.res, 128);
	T_ASSERT(o.model == NULL);
	T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ "--res", "160", "-m", "x.fpw", "-v", NULL }), OPTIONS_RUN);
	T_EQ_INT(o.res, 160);
	T_ASSERT(strcmp(o.model, "x.fpw") == 0);
	T_EQ_INT(o.log_level, LOG_LVL_DEBUG);
	T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ "--log-level=warning", NULL }), OPTIONS_RUN);
	T_EQ_INT(o.log_level, LOG_LVL_WARN);
}

static void test_help_and_version(void)
{
	struct options o;
	char err[256] = "";

	T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ "--help", NULL }), OPTIONS_DONE);
	T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ "-V", NULL }), OPTIONS_DONE);
}

static void expect_error(const char **args, const char *want)
{
	struct options o;
	char err[256] = "";

	T_EQ_INT(parse(&o, err, sizeof(err), args), -EINVAL);
	T_STR_CONTAINS(err, want);
}

static void test_bad_input_named(void)
{
	expect_error((const char *[]){ "--res", "95", NULL }, "--res: '95' is not a whole number in [96, 256]");
	expect_error((const char *[]){ "--res", "12x", NULL }, "--res: '12x'");
	expect_error((const char *[]){ "--res", "", NULL }, "--res: ''");
	expect_error((const char *[]){ "--frobnicate", NULL }, "unknown option '--frobnicate'");
	expect_error((const char *[]){ "-r", NULL }, "missing argument for '-r'");
	expect_error((const char *[]){ "--log-level", "loud", NULL }, "--log-level: 'loud'");
	expect_error((const char *[]){ "--model", "", NULL }, "--model: empty value");
	expect_error((const char *[]){ "stray", NULL }, "unexpected argument 'stray'");
}

/* --format: the camera pixel formats facetd reads, auto by default. */
static void test_camera_format(void)
{
	struct options o;
	char err[256] = "";
	const char *names[] = { "yuyv", "mjpeg", "nv12", "auto" };

	T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ NULL }), OPTIONS_RUN);
	T_ASSERT(strcmp(o.format, "auto") == 0);
	for (int i = 0; i < 4; i++) {
		char arg[16];
		snprintf(arg, sizeof(arg), "%s", names[i]);
		T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ "--format", arg, NULL }),
			 OPTIONS_RUN);
		T_ASSERT(strcmp(o.format, names[i]) == 0);
		T_ASSERT(o.format != arg); /* the table's word: arg may go */
	}
	T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ "-f", "nv12", NULL }), OPTIONS_RUN);
	T_ASSERT(strcmp(o.format, "nv12") == 0);
	T_EQ_INT(options_set(&o, "format", "mjpeg", err, sizeof(err)), 0); /* a config key */
	T_ASSERT(strcmp(o.format, "mjpeg") == 0);
	T_EQ_INT(options_set(&o, "format", "YUYV", err, sizeof(err)), -EINVAL);
	T_STR_CONTAINS(err, "format: 'YUYV' is not auto, yuyv, mjpeg or nv12");
	T_EQ_INT(options_when((size_t)options_find("format")), OPTIONS_RESTART);
	expect_error((const char *[]){ "--format", "rgb3", NULL },
		     "--format: 'rgb3' is not auto, yuyv, mjpeg or nv12");
	expect_error((const char *[]){ "--format", "", NULL }, "--format: '' is not");
	expect_error((const char *[]){ "--format", NULL }, "missing argument for '--format'");
}

/* --stats-json takes a PATH, - for stdout; it was a flag, so an option
 * after it is not taken for the path. */
static void test_stats_json_path(void)
{
	struct options o;
	char err[256] = "";

	T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ NULL }), OPTIONS_RUN);
	T_ASSERT(o.stats_json == NULL);
	T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ "--stats-json", "/tmp/s.json", NULL }),
		 OPTIONS_RUN);
	T_ASSERT(strcmp(o.stats_json, "/tmp/s.json") == 0);
	T_EQ_INT(parse(&o, err, sizeof(err), (const char *[]){ "-j", "-", NULL }), OPTIONS_RUN);
	T_ASSERT(strcmp(o.stats_json, "-") == 0);
	T_EQ_INT(options_set(&o, "stats-json", "out/stats.json", err, sizeof(err)), 0);
	T_ASSERT(strcmp(o.stats_json, "out/stats.json") == 0);
	expect_error((const char *[]){ "--stats-json", NULL }, "missing argument for '--stats-json'");
	expect_error((const char *[]){ "--stats-json", "--preview", NULL },
		     "--stats-json: '--preview' is an option, not a PATH");
	expect_error((const char *[]){ "--stats-json", "", NULL }, "--stats-json: empty value");
}

T_MAIN(T_CASE(test_defaults_and_values),
       T_CASE(test_help_and_version),
       T_CASE(test_bad_input_named),
       T_CASE(test_camera_format),
       T_CASE(test_stats_json_path))
