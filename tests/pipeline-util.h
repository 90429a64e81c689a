/* Helpers of the pipeline tests: the shipped model, a started pipeline,
 * a run to its end. Each fails the current test case on error. */
#ifndef FACETD_TESTS_PIPELINE_UTIL_H
#define FACETD_TESTS_PIPELINE_UTIL_H

#include "model.h"
#include "pipeline.h"

/* The default weights, BLAS on one thread. */
struct model *pu_load_default(void);
struct pipeline *pu_start(const struct pipeline_config *cfg, const struct model *m);
/* Waits (up to 2 minutes) until the pipeline finishes; its stats in st. */
void pu_run_to_end(struct pipeline *p, struct pipeline_stats *st);

#endif
