/* facetd: wires the subsystems together. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "model.h"
#include "options.h"
#include "pipeline.h"

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
	log_info("model %s: %zu parameters, input %d..%d", path, in->params, in->res_min,
		 in->res_max);
	return m;
}

static void pipeline_config_from(const struct options *o, struct pipeline_config *c)
{
	*c = (struct pipeline_config){
		.source = o->source,
		.capture = { .width = o->width, .height = o->height, .fps_num = o->fps,
			     .fps_den = o->fps ? 1 : 0, .realtime = !o->no_pacing },
		.n_outputs = o->n_outputs,
		.res = o->res,
		.refine = o->refine,
		.threads = o->threads,
		.alpha = o->alpha / 100.0f,
		.max_frames = (uint64_t)o->frames,
		.preview = o->preview,
		.screenshot = o->screenshot,
	};
	for (int i = 0; i < o->n_outputs; i++)
		c->outputs[i] = o->outputs[i];
}

/* Runs until the pipeline finishes or SIGINT/SIGTERM; returns the signal
 * that stopped it, or 0. */
static int run_until_done(struct pipeline *p, const sigset_t *stop_set)
{
	struct timespec tick = { 0, 200 * 1000 * 1000 };

	for (;;) {
		int sig = sigtimedwait(stop_set, NULL, &tick);
		if (sig == SIGINT || sig == SIGTERM)
			return sig;
		if (pipeline_wait(p, 0))
			return 0;
	}
}

static void report(struct pipeline *p, const struct options *o)
{
	struct pipeline_stats st;
	char json[2048];

	pipeline_get_stats(p, &st);
	log_info("%s %dx%d: %llu frames captured, %llu inferred, %llu written, %llu dropped; "
		 "inference %.1f fps, latency p50 %.1f ms", st.source, st.width, st.height,
		 (unsigned long long)st.captured, (unsigned long long)st.inferred,
		 (unsigned long long)st.written,
		 (unsigned long long)(st.dropped_stale + st.dropped_capture), st.fps_inference,
		 st.latency_ms_p50);
	if (o->stats_json) {
		pipeline_stats_json(&st, json, sizeof(json));
		printf("%s\n", json);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	struct pipeline_config cfg;
	struct pipeline *p = NULL;
	struct options o;
	struct model *m;
	sigset_t stop_set;
	char err[512];
	int r, sig;

	options_defaults(&o);
	r = options_parse(&o, argc, argv, stdout, stderr);
	if (r != OPTIONS_RUN)
		return r < 0 ? 2 : 0;
	log_init(argv[0], o.log_level);
	/* Threads inherit the mask: the signals reach only sigtimedwait here. */
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGINT);
	sigaddset(&stop_set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

	m = load_model(&o);
	if (!m)
		return 1;
	model_set_threads(o.threads);
	pipeline_config_from(&o, &cfg);
	r = pipeline_start(&cfg, m, &p, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		model_free(m);
		return 1;
	}
	log_info("running: %s -> %d output(s), model input %d", o.source, o.n_outputs, o.res);
	sig = run_until_done(p, &stop_set);
	if (sig)
		log_info("%s: stopping", strsignal(sig));
	pipeline_request_stop(p);
	report(p, &o);
	pipeline_destroy(p);
	model_free(m);
	return 0;
}
