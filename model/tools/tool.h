/* Helpers shared by facet-parse, facet-eval and facet-bench. */
#ifndef FACETD_TOOL_H
#define FACETD_TOOL_H

#include "model.h"

/* Parses a whole decimal int in [lo, hi]; on error prints
 * "PROG: OPTION: ..." and returns -EINVAL. */
int tool_int(const char *prog, const char *option, const char *arg, int lo, int hi, int *out);

/* Parses "WxH" (each 1..16384). */
int tool_size(const char *prog, const char *option, const char *arg, int *w, int *h);

/* Loads path, or the default weights when path is NULL; prints the error. */
struct model *tool_load_model(const char *prog, const char *path);

double tool_now_ms(void);

/* p-th percentile (0..100) of n values; sorts v. */
double tool_percentile(double *v, int n, double p);

#endif
