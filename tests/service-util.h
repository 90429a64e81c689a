/* Helpers for the service tests: run the facetd and facetctl just built
 * ($FACETD_BUILD_DIR), talk to a control socket. Failures end the current
 * case through t_fail(). */
#ifndef FACETD_SERVICE_UTIL_H
#define FACETD_SERVICE_UTIL_H

#include <stddef.h>
#include <sys/types.h>

struct svc {
	pid_t pid;
	char sock[256];     /* its control socket */
	char log[512];      /* its stderr */
	char out[512];      /* its stdout */
};

/* Path of a built program: $FACETD_BUILD_DIR/name. */
const char *svc_bin(const char *name);

/* Starts facetd with the shipped model, --control dir/name.sock and args
 * (NULL-terminated), env entries "KEY=VALUE" added (env may be NULL), and
 * waits until its socket answers. */
void svc_start(struct svc *d, const char *name, const char *const *args, const char *const *env);
/* Sends sig and waits for the exit; returns the exit status (128 + signal
 * when killed). */
int svc_stop(struct svc *d, int sig);
/* What facetd wrote to stderr so far (static buffer). */
const char *svc_log(const struct svc *d);

/* One request line (newline added) and its reply line (without it).
 * Returns 0 or a negative errno. */
int svc_request(const char *sock, const char *request, char *reply, size_t len);
/* The reply, which must exist; static buffer. */
const char *svc_ask(const char *sock, const char *request);

/* Runs argv to its end (killed after timeout_s), stdout and stderr into out
 * and err. Returns the exit status (128 + signal when killed). */
int svc_run(const char *const *argv, char *out, size_t outlen, char *err, size_t errlen,
	    int timeout_s);

/* Connects to a UNIX stream socket; -errno on failure. */
int svc_connect(const char *path);
/* Reads one line from fd within timeout_ms; 0, -ETIMEDOUT or -ECONNRESET. */
int svc_read_line(int fd, char *buf, size_t len, int timeout_ms);

/* Writes text to path. */
void svc_write_file(const char *path, const char *text);

#endif
