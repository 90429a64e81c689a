#include "tool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tool_int(const char *prog, const char *option, const char *arg, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi) {
		fprintf(stderr, "%s: %s: '%s' is not a whole number in [%d, %d]\n",
			prog, option, arg, lo, hi);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

int tool_size(const char *prog, const char *option, const char *arg, int *w, int *h)
{
	char *end, *end2;
	long a, b;

	errno = 0;
	a = strtol(arg, &end, 10);
	if (errno || end == arg || (*end != 'x' && *end != 'X'))
		goto bad;
	b = strtol(end + 1, &end2, 10);
	if (errno || end2 == end + 1 || *end2 || a < 1 || b < 1 || a > 16384 || b > 16384)
		goto bad;
	*w = (int)a;
	*h = (int)b;
	return 0;
bad:
	fprintf(stderr, "%s: %s: '%s' is not WIDTHxHEIGHT (1..16384 each)\n", prog, option, arg);
	return -EINVAL;
}

struct model *tool_load_model(const char *prog, const char *path)
{
	char def[4096], err[512];
	struct model *m;

	if (!path) {
		if (model_default_path(def, sizeof(def)) < 0) {
			fprintf(stderr, "%s: no default weights found (set FACETD_MODEL or --model)\n", prog);
			return NULL;
		}
		path = def;
	}
	if (model_load(path, &m, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return NULL;
	}
	return m;
}

double tool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double tool_percentile(double *v, int n, double p)
{
	int i;

	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	i = (int)(p / 100.0 * (n - 1) + 0.5);
	return v[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}
