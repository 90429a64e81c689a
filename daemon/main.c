/* facetd: wires the subsystems together. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "model.h"
#include "options.h"

static struct model *load_model(const struct options *o)
{
	char path[4096], err[512];
	struct model *m;

	if (o->model)
		snprintf(path, sizeof(path), "%s", o->model);
	else if (model_default_path(path, sizeof(path)) < 0) {
		log_err("no weights found: install facetd, set FACETD_MODEL or pass --model");
		return NULL;
	}
	if (model_load(path, &m, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return NULL;
	}
	const struct model_info *in = model_get_info(m);
	log_info("model %s: %zu parameters, %d classes, input %d..%d", path, in->params,
		 in->num_classes, in->res_min, in->res_max);
	return m;
}

int main(int argc, char **argv)
{
	struct options o;
	struct model *m;
	int r;

	options_defaults(&o);
	r = options_parse(&o, argc, argv, stdout, stderr);
	if (r != OPTIONS_RUN)
		return r < 0 ? 2 : 0;
	log_init(argv[0], o.log_level);
	m = load_model(&o);
	if (!m)
		return 1;
	if (o.res < model_get_info(m)->res_min || o.res > model_get_info(m)->res_max) {
		log_err("--res %d: the model takes %d..%d", o.res, model_get_info(m)->res_min,
			model_get_info(m)->res_max);
		model_free(m);
		return 2;
	}
	log_warn("the live pipeline (capture, preview, virtual camera) is not in this "
		 "version yet; facet-parse and facet-eval run the model on image files");
	model_free(m);
	return 0;
}
