#include "pipeline-util.h"

#include "harness.h"

struct model *pu_load_default(void)
{
	char err[512];
	struct model *m;

	if (model_load(t_path("../model/weights/default.fpw"), &m, err, sizeof(err)) < 0)
		t_fail(__FILE__, __LINE__, "%s", err);
	model_set_threads(1);
	return m;
}

struct pipeline *pu_start(const struct pipeline_config *cfg, const struct model *m)
{
	char err[512] = "";
	struct pipeline *p;

	if (pipeline_start(cfg, m, &p, err, sizeof(err)) < 0)
		t_fail(__FILE__, __LINE__, "pipeline_start: %s", err);
	return p;
}

void pu_run_to_end(struct pipeline *p, struct pipeline_stats *st)
{
	for (int i = 0; i < 1200 && !pipeline_wait(p, 100); i++)
		;
	pipeline_get_stats(p, st);
	T_ASSERT(st->finished);
}
