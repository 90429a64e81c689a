/* The running facetd as a service: its settings, the pipeline they
 * configure, the control socket's commands, and what systemd is told.
 *
 * Changing settings (reload, `set`): each option's table row (options.h)
 * says when a change takes effect. Live settings go to the running
 * pipeline; a change of source, size, rate or outputs restarts the
 * pipeline (if the new one cannot start, the previous settings are started
 * again and the change is refused); settings read only at start (model,
 * frames, control) are kept and a warning says so. A refused change leaves
 * the running settings as they were. A reload makes the running settings
 * what the file and the command line say, so it undoes `set`s; pausing is
 * state, not a setting, and survives both.
 *
 * Thread: every function is for the thread that created the service
 * (facetd's main thread). The wake callback is called from the control
 * socket's thread.
 */
#ifndef FACETD_SERVICE_H
#define FACETD_SERVICE_H

#include <stddef.h>

#include "configfile.h"
#include "control.h"
#include "model.h"
#include "options.h"
#include "pipeline.h"

struct service;

struct service_params {
	struct config *config;       /* outlives the service */
	const struct model *model;   /* outlives the service */
	/* The pipeline's configuration for these settings. */
	void (*pipeline_config)(const struct options *o, struct pipeline_config *out);
	/* Control requests wait: call service_dispatch() soon. */
	control_wake_fn wake;
	void *wake_ud;
};

/* Starts the pipeline with o and opens the control socket (o->control,
 * else the default path when there is a runtime directory). Negative errno
 * with a message in err. */
int service_create(const struct service_params *sp, const struct options *o,
		   struct service **out, char *err, size_t errlen);

/* Stops the control socket and the pipeline, frees. Accepts NULL. */
void service_destroy(struct service *s);

/* SIGHUP: reads the config file again and applies it; logs the outcome.
 * An invalid file changes nothing. Returns 0 or a negative errno. */
int service_reload(struct service *s);

/* Answers the control requests waiting. */
void service_dispatch(struct service *s);

/* Call every ~100 ms: READY=1 after the first frame went through, STATUS=
 * once a second, WATCHDOG=1 (notify.h). Returns 0 while running, 1 when the
 * pipeline finished by itself, -EIO when no pipeline runs (a restart
 * failed twice). */
int service_tick(struct service *s);

/* STOPPING=1, then stops the pipeline for why (see pipeline_stop) and
 * waits for its threads: its stats are final from then on. */
void service_stop(struct service *s, enum pipeline_stop_reason why);

/* The running pipeline (NULL after a failed restart) and settings. */
struct pipeline *service_pipeline(struct service *s);
const struct options *service_options(const struct service *s);

#endif
