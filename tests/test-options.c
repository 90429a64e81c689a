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

T_MAIN(T_CASE(test_defaults_and_values),
       T_CASE(test_help_and_version),
       T_CASE(test_bad_input_named))
