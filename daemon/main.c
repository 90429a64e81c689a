/* facetd: wires the subsystems together. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "configfile.h"
#include "log.h"
#include "model.h"
#include "options.h"
#include "pipeline.h"
#include "service.h"

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
		.smoothing = o->smoothing,
		.alpha = o->alpha / 100.0f,
		.max_frames = (uint64_t)o->frames,
		.preview = o->preview,
		.screenshot = o->screenshot,
		.effect = o->effect,
		.tint_hair = o->tint_hair,
		.tint_lips = o->tint_lips,
		.output_format = o->output_format,
	};
	if (o->output_labels) {
		c->label_outputs[0] = o->output_labels;
		c->n_label_outputs = 1;
	}
	for (int i = 0; i < o->n_outputs; i++)
		c->outputs[i] = o->outputs[i];
}

/* Says what runs; "auto" without a camera is worth a warning. */
static void announce(struct service *s, const struct options *o)
{
	struct pipeline_stats st;

	pipeline_get_stats(service_pipeline(s), &st);
	if (strcmp(o->source, "auto") == 0 && strcmp(st.source, "synthetic") == 0)
		log_warn("no camera found: showing a test pattern (--source to choose)");
	log_info("running: %s %dx%d -> %d output(s), model input %d", st.source, st.width,
		 st.height, o->n_outputs, o->res);
}

static pthread_t main_thread;

/* Control thread: requests wait; SIGUSR1 wakes the loop below. */
static void wake_main(void *thread)
{
	pthread_kill(*(pthread_t *)thread, SIGUSR1);
}

/* Runs on a thread that does not block the signals: OpenBLAS starts its
 * threads before main(). Passes the signal on to the main thread, where it
 * waits for sigtimedwait(). */
static void forward_signal(int sig)
{
	pthread_kill(main_thread, sig);
}

/* SIGINT, SIGTERM (stop), SIGHUP (reload) and SIGUSR1 (control requests)
 * reach only sigtimedwait() in the main thread; threads made from now on
 * inherit the mask. */
static void take_signals(sigset_t *sigs)
{
	static const int list[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1 };
	struct sigaction sa = { .sa_handler = forward_signal };

	sigemptyset(sigs);
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
		sigaddset(sigs, list[i]);
	sa.sa_mask = *sigs;
	main_thread = pthread_self();
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
		sigaction(list[i], &sa, NULL);
}

/* Runs until the pipeline finishes or SIGINT/SIGTERM; SIGHUP reloads the
 * config. Returns the signal that stopped it, 0, or -1 on failure. */
static int run_until_done(struct service *s, const sigset_t *sigs)
{
	struct timespec tick = { 0, 100 * 1000 * 1000 };

	for (;;) {
		int sig = sigtimedwait(sigs, NULL, &tick), r;
		if (sig == SIGINT || sig == SIGTERM)
			return sig;
		if (sig == SIGHUP)
			service_reload(s);
		if (sig == SIGUSR1)
			service_dispatch(s);
		r = service_tick(s);
		if (r)
			return r < 0 ? -1 : 0;
	}
}

/* The effective settings: defaults, config file, command line. */
static struct config *load_config(const struct options *cli, struct options *o)
{
	struct config *conf = config_create(cli);
	char err[1024];

	if (!conf) {
		fprintf(stderr, "facetd: out of memory\n");
		return NULL;
	}
	if (config_load(conf, o, err, sizeof(err)) < 0) {
		fprintf(stderr, "facetd: %s\n", err);
		config_destroy(conf);
		return NULL;
	}
	return conf;
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
	struct service_params sp = { .pipeline_config = pipeline_config_from,
				     .wake = wake_main, .wake_ud = &main_thread };
	struct service *s = NULL;
	struct options cli, o;
	struct model *m;
	sigset_t sigs;
	char err[1024];
	int r, sig;

	options_defaults(&cli);
	r = options_parse(&cli, argc, argv, stdout, stderr);
	if (r != OPTIONS_RUN)
		return r < 0 ? 2 : 0;
	sp.config = load_config(&cli, &o);
	if (!sp.config)
		return 2;
	log_init(argv[0], o.log_level);
	take_signals(&sigs);

	m = load_model(&o);
	if (m) {
		model_set_threads(o.threads);
		sp.model = m;
		r = service_create(&sp, &o, &s, err, sizeof(err));
		if (r < 0)
			log_err("%s", err);
	}
	if (!s) {
		model_free(m);
		config_destroy(sp.config);
		return 1;
	}
	announce(s, &o);
	sig = run_until_done(s, &sigs);
	if (sig > 0)
		log_info("%s: stopping", strsignal(sig));
	service_stop(s);
	if (service_pipeline(s))
		report(service_pipeline(s), service_options(s));
	service_destroy(s);
	model_free(m);
	config_destroy(sp.config);
	return sig < 0 ? 1 : 0;
}
