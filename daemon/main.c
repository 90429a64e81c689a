/* facetd: wires the subsystems together. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "configfile.h"
#include "doctor.h"
#include "log.h"
#include "model.h"
#include "options.h"
#include "pipeline.h"
#include "service.h"

/* --doctor: 0 when the set-up is fine, 1 when it has problems. */
static int doctor(FILE *out)
{
#if HAVE_V4L2
	return doctor_run(out) > 0 ? 1 : 0;
#else
	fprintf(out, "facetd: built without V4L2 (-Dv4l2=disabled): nothing to check\n");
	return 1;
#endif
}

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

static enum capture_format camera_format(const char *name)
{
	enum capture_format f = CAPTURE_FORMAT_AUTO;

	capture_format_parse(name, &f); /* the option table took only these names */
	return f;
}

static void pipeline_config_from(const struct options *o, struct pipeline_config *c)
{
	*c = (struct pipeline_config){
		.source = o->source,
		.capture = { .width = o->width, .height = o->height, .fps_num = o->fps,
			     .fps_den = o->fps ? 1 : 0, .realtime = !o->no_pacing,
			     .format = camera_format(o->format) },
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
	/* On demand: the first virtual camera decides, unless a window shows. */
	for (int i = 0; i < o->n_outputs && !o->no_on_demand && !o->preview; i++)
		if (strncmp(o->outputs[i], "v4l2:", 5) == 0) {
			c->demand_path = o->outputs[i] + 5;
			break;
		}
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
	for (;;) {
		/* released on demand: fewer wake-ups (control requests and
		 * signals come at once anyway) */
		struct pipeline *p = service_pipeline(s);
		struct timespec tick = { 0, (p && pipeline_released(p) ? 500 : 100) * 1000 * 1000 };
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

/* Writes text and a newline to path: "-" is stdout; a new or regular file
 * is written as path.tmp and renamed, so that it is whole or absent; any
 * other path (a symbolic link, /dev/stderr, a pipe) is written through, as
 * a rename would replace the link or device node itself. */
static int write_text(const char *path, const char *text)
{
	char tmp[4096];
	struct stat sb;
	int direct, r = 0;
	FILE *f;

	if (strcmp(path, "-") == 0) {
		printf("%s\n", text);
		return fflush(stdout) == 0 ? 0 : -errno;
	}
	direct = lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(direct ? path : tmp, "we");
	if (!f)
		return -errno;
	if (fprintf(f, "%s\n", text) < 0 || fflush(f) != 0 || (!direct && fsync(fileno(f)) != 0))
		r = -errno;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (!direct && r == 0 && rename(tmp, path) != 0)
		r = -errno;
	if (!direct && r < 0)
		unlink(tmp);
	return r;
}

/* Logs the figures, and writes them as JSON where --stats-json says.
 * Returns 0, or -1 when they could not be written. */
static int report(struct pipeline *p, const struct options *o)
{
	struct pipeline_stats st;
	char json[2048];
	const char *why;
	int r;

	pipeline_get_stats(p, &st);
	why = pipeline_stop_reason_name(st.stop_reason);
	log_info("%s %dx%d (stopped: %s): %llu frames captured, %llu inferred, %llu written, "
		 "%llu dropped; inference %.1f fps, latency p50 %.1f ms", st.source, st.width,
		 st.height, why ? why : "running", (unsigned long long)st.captured,
		 (unsigned long long)st.inferred,
		 (unsigned long long)st.written,
		 (unsigned long long)(st.dropped_stale + st.dropped_capture), st.fps_inference,
		 st.latency_ms_p50);
	if (!o->stats_json)
		return 0;
	if (pipeline_stats_json(&st, json, sizeof(json)) < 0) {
		log_err("--stats-json: the figures do not fit in %zu bytes", sizeof(json));
		return -1;
	}
	r = write_text(o->stats_json, json);
	if (r < 0)
		log_err("--stats-json: cannot write %s: %s", o->stats_json, strerror(-r));
	return r < 0 ? -1 : 0;
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
	int r, sig, written = 0;

	options_defaults(&cli);
	r = options_parse(&cli, argc, argv, stdout, stderr);
	if (r == OPTIONS_DOCTOR)
		return doctor(stdout);
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
	service_stop(s, sig > 0 ? PIPELINE_STOP_SIGNAL : PIPELINE_STOP_REQUESTED);
	if (service_pipeline(s))
		written = report(service_pipeline(s), service_options(s));
	service_destroy(s);
	model_free(m);
	config_destroy(sp.config);
	return sig < 0 || written < 0 ? 1 : 0;
}
