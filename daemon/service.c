#include "service.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "notify.h"

#define SNAPSHOT_TIMEOUT_MS 3000

struct service {
	struct service_params sp;
	struct options run;          /* the running settings */
	struct pipeline *pipe;
	struct control *control;
	struct notify_watchdog wd;
	int paused, ready;
	int64_t start_ns;
	/* figures over the last second, for STATUS= and stats */
	int64_t status_ns;
	uint64_t status_written;
	double fps_now, cpu_percent, cpu_s;
	struct json_object stats_base; /* cmd_stats' scratch */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- the pipeline ---- */

static int start_pipeline(struct service *s, const struct options *o, char *err, size_t errlen)
{
	struct pipeline_config pc;
	int r;

	s->sp.pipeline_config(o, &pc);
	r = pipeline_start(&pc, s->sp.model, &s->pipe, err, errlen);
	if (r < 0)
		return r;
	pipeline_set_paused(s->pipe, s->paused);
	s->status_ns = now_ns();
	s->status_written = 0;
	return 0;
}

/* Stops the pipeline and starts one with next; on failure the running
 * settings' pipeline again. */
static int restart(struct service *s, const struct options *next, char *err, size_t errlen)
{
	char again[512];
	int r;

	log_info("restarting the pipeline");
	pipeline_destroy(s->pipe);
	s->pipe = NULL;
	r = start_pipeline(s, next, err, errlen);
	if (r < 0 && start_pipeline(s, &s->run, again, sizeof(again)) < 0)
		log_err("cannot start the previous pipeline again either: %s", again);
	return r;
}

/* The live settings' values the table's ranges cannot check. */
static int check_live(const struct service *s, const struct options *o, char *err, size_t errlen)
{
	const struct model_info *in = model_get_info(s->sp.model);

	if (o->res < in->res_min || o->res > in->res_max) {
		snprintf(err, errlen, "res: %d is outside what the model takes (%d..%d)", o->res,
			 in->res_min, in->res_max);
		return -EINVAL;
	}
	return pipeline_check_effect(o->effect, o->tint_hair, o->tint_lips, err, errlen);
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_effect(const struct options *a, const struct options *b)
{
	return same_str(a->effect, b->effect) && same_str(a->tint_hair, b->tint_hair) &&
	       same_str(a->tint_lips, b->tint_lips);
}

/* Every live setting's way into the running facetd. */
static void apply_live(struct service *s, const struct options *o)
{
	pipeline_set_res(s->pipe, o->res);
	pipeline_set_refine(s->pipe, o->refine);
	pipeline_set_threads(s->pipe, o->threads);
	pipeline_set_alpha(s->pipe, o->alpha / 100.0f);
	pipeline_set_smoothing(s->pipe, o->smoothing);
	if (!same_effect(&s->run, o)) {
		char err[256];
		if (pipeline_set_effect(s->pipe, o->effect, o->tint_hair, o->tint_lips, err,
					sizeof(err)) < 0)
			log_warn("%s", err); /* checked before: only out of memory */
	}
	log_set_level(o->log_level);
}

/* Makes next the running settings (see service.h). *changed gets what
 * changed, *restarted whether the pipeline restarted. */
static int adopt(struct service *s, struct options *next, uint64_t *changed, bool *restarted,
		 char *err, size_t errlen)
{
	uint64_t at_start = options_diff(&s->run, next) & options_mask(OPTIONS_AT_START);
	uint64_t diff;
	char names[512];
	int r;

	if (at_start) {
		options_names(at_start, names, sizeof(names));
		log_warn("%s: changed; takes effect when facetd starts again", names);
		options_copy(next, &s->run, at_start);
	}
	diff = options_diff(&s->run, next);
	*restarted = (diff & options_mask(OPTIONS_RESTART)) != 0;
	r = check_live(s, next, err, errlen);
	if (r == 0 && *restarted)
		r = restart(s, next, err, errlen);
	if (r < 0)
		return r;
	apply_live(s, next);
	s->run = *next;
	*changed = diff;
	return 0;
}

static int reload(struct service *s, uint64_t *changed, bool *restarted, char *err, size_t errlen)
{
	struct options next;
	int r;

	r = config_load(s->sp.config, &next, err, errlen);
	return r < 0 ? r : adopt(s, &next, changed, restarted, err, errlen);
}

int service_reload(struct service *s)
{
	uint64_t changed;
	bool restarted;
	char err[1024], names[512];
	int r = reload(s, &changed, &restarted, err, sizeof(err));

	if (r < 0) {
		log_err("reload: %s; the running settings stay", err);
		return r;
	}
	options_names(changed, names, sizeof(names));
	log_info("reload: %s%s", changed ? "changed " : "no changes", names);
	return 0;
}

/* ---- commands ---- */

/* The keys of --stats-json, then the service's own figures (those the
 * pipeline does not give already). */
static void cmd_stats(struct service *s, const struct json_object *req, struct json_writer *w)
{
	struct json_object *base = &s->stats_base;
	struct pipeline_stats st;
	char json[4096], why[128];

	pipeline_get_stats(s->pipe, &st);
	pipeline_stats_json(&st, json, sizeof(json));
	if (json_parse(json, strlen(json), base, why, sizeof(why)) < 0) {
		control_reply_error(w, "stats: %s", why);
		return;
	}
	json_put_bool(w, "ok", true);
	json_put_members(w, json);
	if (!json_get(base, "fps"))
		json_put_double(w, "fps", s->fps_now, 2);
	if (!json_get(base, "cpu_percent"))
		json_put_double(w, "cpu_percent", s->cpu_percent, 1);
	if (!json_get(base, "paused"))
		json_put_bool(w, "paused", s->paused);
	if (!json_get(base, "clients"))
		json_put_int(w, "clients", control_clients(s->control));
	if (!json_get(base, "uptime_s"))
		json_put_double(w, "uptime_s", (now_ns() - s->start_ns) / 1e9, 1);
}

static void put_setting(struct json_writer *w, const struct options *o, size_t i)
{
	char value[2048];
	int r = options_get(o, i, value, sizeof(value));

	if (r == 0)
		json_put_string(w, options_name(i), value);
	else
		json_put_null(w, options_name(i));
}

static void cmd_get(struct service *s, const struct json_object *req, struct json_writer *w)
{
	const char *key = json_get_string(req, "key");
	int i = key ? options_find(key) : 0;

	if (json_get(req, "key") && !key) {
		control_reply_error(w, "\"key\" must be a string");
		return;
	}
	if (key && (i < 0 || options_when((size_t)i) == OPTIONS_CLI_ONLY)) {
		control_reply_error(w, "unknown key '%s'", key);
		return;
	}
	json_put_bool(w, "ok", true);
	for (size_t k = 0; k < options_count(); k++)
		if (key ? k == (size_t)i : options_when(k) != OPTIONS_CLI_ONLY)
			put_setting(w, &s->run, k);
}

static const char *applied_how(uint64_t changed, bool restarted)
{
	return !changed ? "unchanged" : restarted ? "restarted" : "live";
}

static void cmd_set(struct service *s, const struct json_object *req, struct json_writer *w)
{
	const char *key = json_get_string(req, "key");
	const struct json_member *v = json_get(req, "value");
	struct options next = s->run;
	uint64_t changed;
	bool restarted;
	char err[1024];
	int i = key ? options_find(key) : -1;

	if (!key || !v || v->type == JSON_NULL) {
		control_reply_error(w, "set needs \"key\" and \"value\"");
		return;
	}
	if (i >= 0 && options_when((size_t)i) == OPTIONS_AT_START) {
		control_reply_error(w, "%s: read at start only; change it in the config file "
				    "and restart facetd", key);
		return;
	}
	if (config_set(s->sp.config, &next, key, v->value, err, sizeof(err)) < 0 ||
	    adopt(s, &next, &changed, &restarted, err, sizeof(err)) < 0) {
		control_reply_error(w, "%s", err);
		return;
	}
	log_info("set %s = %s (%s)", key, v->value, applied_how(changed, restarted));
	json_put_bool(w, "ok", true);
	put_setting(w, &s->run, (size_t)i);
	json_put_string(w, "applied", applied_how(changed, restarted));
}

static void cmd_reload(struct service *s, const struct json_object *req, struct json_writer *w)
{
	const char *path = config_path(s->sp.config);
	uint64_t changed;
	bool restarted;
	char err[1024], names[512];

	if (reload(s, &changed, &restarted, err, sizeof(err)) < 0) {
		log_err("reload: %s; the running settings stay", err);
		control_reply_error(w, "%s", err);
		return;
	}
	options_names(changed, names, sizeof(names));
	log_info("reload: %s%s", changed ? "changed " : "no changes", names);
	json_put_bool(w, "ok", true);
	if (path)
		json_put_string(w, "config", path);
	else
		json_put_null(w, "config");
	json_put_string(w, "changed", names);
	json_put_bool(w, "restarted", changed && restarted);
}

static void cmd_snapshot(struct service *s, const struct json_object *req, struct json_writer *w)
{
	const char *path = json_get_string(req, "path");
	int r;

	if (!path || path[0] != '/') {
		control_reply_error(w, "snapshot needs an absolute \"path\"");
		return;
	}
	if (s->paused) {
		control_reply_error(w, "paused: no frame to take");
		return;
	}
	r = pipeline_snapshot(s->pipe, path, SNAPSHOT_TIMEOUT_MS);
	if (r < 0) {
		control_reply_error(w, "%s: %s", path, r == -ETIMEDOUT ? "no frame came" : strerror(-r));
		return;
	}
	json_put_bool(w, "ok", true);
	json_put_string(w, "path", path);
}

static void set_paused(struct service *s, int paused, struct json_writer *w)
{
	if (s->paused != paused)
		log_info("%s", paused ? "paused" : "resumed");
	s->paused = paused;
	pipeline_set_paused(s->pipe, paused);
	json_put_bool(w, "ok", true);
	json_put_bool(w, "paused", paused);
}

static void cmd_pause(struct service *s, const struct json_object *req, struct json_writer *w)
{
	set_paused(s, 1, w);
}

static void cmd_resume(struct service *s, const struct json_object *req, struct json_writer *w)
{
	set_paused(s, 0, w);
}

static const struct command {
	const char *name;
	const char *args;    /* the members it takes besides "cmd" */
	void (*run)(struct service *s, const struct json_object *req, struct json_writer *w);
} commands[] = {
	{ "stats", "", cmd_stats },
	{ "get", "key", cmd_get },
	{ "set", "key value", cmd_set },
	{ "reload", "", cmd_reload },
	{ "snapshot", "path", cmd_snapshot },
	{ "pause", "", cmd_pause },
	{ "resume", "", cmd_resume },
};

/* The first member neither "cmd" nor one of args, or NULL. */
static const char *stray_member(const struct json_object *req, const char *args)
{
	for (int i = 0; i < req->n; i++) {
		const char *k = req->m[i].key, *hit = strstr(args, k);
		size_t n = strlen(k);
		if (strcmp(k, "cmd") != 0 && !(n && hit && (hit == args || hit[-1] == ' ') &&
					       (hit[n] == 0 || hit[n] == ' ')))
			return k;
	}
	return NULL;
}

static void handle(void *ud, const struct json_object *req, struct json_writer *w)
{
	struct service *s = ud;
	const char *cmd = json_get_string(req, "cmd"), *stray;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name) != 0)
			continue;
		if ((stray = stray_member(req, commands[i].args)))
			control_reply_error(w, "%s: unexpected member '%s'", cmd, stray);
		else if (!s->pipe)
			control_reply_error(w, "no pipeline is running");
		else
			commands[i].run(s, req, w);
		return;
	}
	control_reply_error(w, "unknown command '%s' (stats, get, set, reload, snapshot, "
			    "pause, resume)", cmd);
}

void service_dispatch(struct service *s)
{
	if (s->control)
		control_dispatch(s->control, handle, s);
}

/* ---- what systemd is told ---- */

static void update_figures(struct service *s, const struct pipeline_stats *st, int64_t now)
{
	double dt = (now - s->status_ns) / 1e9, cpu = cpu_seconds();

	s->fps_now = (double)(st->written - s->status_written) / dt;
	s->cpu_percent = 100.0 * (cpu - s->cpu_s) / dt;
	s->cpu_s = cpu;
	s->status_written = st->written;
	s->status_ns = now;
	if (s->paused)
		notify_send("STATUS=paused");
	else
		notify_sendf("STATUS=%.1f fps, model input %d", s->fps_now, st->res);
}

int service_tick(struct service *s)
{
	struct pipeline_stats st;
	int64_t now = now_ns();

	if (!s->pipe)
		return -EIO;
	pipeline_get_stats(s->pipe, &st);
	if (!s->ready && st.written > 0) {
		s->ready = 1;
		notify_send("READY=1");
		log_info("ready: the first frame went through");
	}
	if (now - s->status_ns >= 1000000000)
		update_figures(s, &st, now);
	notify_watchdog_tick(&s->wd, &(struct notify_progress){
		.capture = st.captured + st.dropped_capture,
		.inference = st.inferred + st.dropped_stale, .idle = st.released }, now);
	return st.finished ? 1 : 0;
}

/* ---- setup ---- */

static int open_control(struct service *s, char *err, size_t errlen)
{
	char path[4096];
	int r;

	if (s->run.control)
		return control_create(s->run.control, s->sp.wake, s->sp.wake_ud, &s->control,
				      err, errlen);
	r = control_default_path(path, sizeof(path), 1);
	if (r < 0) {
		log_info("no runtime directory: no control socket (see --control)");
		return 0;
	}
	r = control_create(path, s->sp.wake, s->sp.wake_ud, &s->control, err, errlen);
	if (r < 0)
		log_warn("%s; going on without a control socket", err);
	return 0;
}

int service_create(const struct service_params *sp, const struct options *o,
		   struct service **out, char *err, size_t errlen)
{
	struct service *s = calloc(1, sizeof(*s));
	int r;

	*out = NULL;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->sp = *sp;
	s->run = *o;
	s->start_ns = now_ns();
	s->cpu_s = cpu_seconds();
	r = check_live(s, o, err, errlen);
	r = r ? r : start_pipeline(s, o, err, errlen);
	r = r ? r : open_control(s, err, errlen);
	if (r < 0) {
		service_destroy(s);
		return r;
	}
	notify_watchdog_init(&s->wd, notify_watchdog_usec(), s->start_ns);
	if (s->wd.interval_ns)
		log_debug("watchdog: pinging every %.2f s while frames flow", s->wd.interval_ns / 1e9);
	*out = s;
	return 0;
}

void service_stop(struct service *s, enum pipeline_stop_reason why)
{
	notify_send("STOPPING=1");
	if (s->pipe)
		pipeline_stop(s->pipe, why);
}

void service_destroy(struct service *s)
{
	if (!s)
		return;
	control_destroy(s->control);
	pipeline_destroy(s->pipe);
	free(s);
}

struct pipeline *service_pipeline(struct service *s)
{
	return s->pipe;
}

const struct options *service_options(const struct service *s)
{
	return &s->run;
}
