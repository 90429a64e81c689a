/* sd_notify: the protocol to path and abstract sockets, harmless without
 * $NOTIFY_SOCKET, $WATCHDOG_USEC, the watchdog's progress rule, pings that
 * stop while the inference thread is stalled on purpose, and facetd's
 * READY, STATUS, WATCHDOG and STOPPING. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "model.h"
#include "notify.h"
#include "pipeline.h"
#include "service-util.h"

/* A datagram socket like systemd's: name is a path or "@abstract". */
static int listener(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = 0;
	unlink(name);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		t_fail(__FILE__, __LINE__, "cannot listen on %s: %s", name, strerror(errno));
	return fd;
}

/* The next message within timeout_ms, or "" after that. */
static const char *receive(int fd, int timeout_ms)
{
	static char buf[4096];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	buf[0] = 0;
	if (poll(&p, 1, timeout_ms) > 0 && (n = recv(fd, buf, sizeof(buf) - 1, 0)) >= 0)
		buf[n] = 0;
	return buf;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *tmp_name(const char *name)
{
	static char buf[4][512];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", t_tmpdir(), name);
	return p;
}

static void test_protocol(void)
{
	char abstract[64];
	const char *path = tmp_name("notify");
	int fd = listener(path);

	T_EQ_INT(notify_send_to(path, "READY=1"), 1);
	T_ASSERT(strcmp(receive(fd, 1000), "READY=1") == 0);
	close(fd);
	snprintf(abstract, sizeof(abstract), "@facetd-test-notify-%d", (int)getpid());
	fd = listener(abstract);
	T_EQ_INT(notify_send_to(abstract, "STATUS=abstract"), 1);
	T_ASSERT(strcmp(receive(fd, 1000), "STATUS=abstract") == 0);
	T_EQ_INT(notify_send_to("relative", "X=1"), -EAFNOSUPPORT);
	T_CMP_INT(notify_send_to("/nonexistent/notify", "X=1"), <, 0);
	close(fd);
}

static void test_environment(void)
{
	const char *path = tmp_name("notify-env");
	int fd = listener(path);
	char pid[32];

	setenv("NOTIFY_SOCKET", path, 1);
	T_EQ_INT(notify_sendf("STATUS=%d fps", 12), 1);
	T_ASSERT(strcmp(receive(fd, 1000), "STATUS=12 fps") == 0);
	unsetenv("NOTIFY_SOCKET");
	T_EQ_INT(notify_send("READY=1"), 0); /* not under systemd: nothing, no error */
	close(fd);

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_USEC", "600000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	T_EQ_INT(notify_watchdog_usec(), 600000);
	setenv("WATCHDOG_PID", "1", 1);
	T_EQ_INT(notify_watchdog_usec(), 0); /* meant for another process */
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	T_EQ_INT(notify_watchdog_usec(), 0);
}

/* The rule on made-up counters: 1 s watchdog, so a ping at most every 0.5 s. */
static void test_watchdog_rule(void)
{
	const char *path = tmp_name("notify-rule");
	int fd = listener(path);
	struct notify_watchdog w;
	struct notify_progress p = { 0, 0, 0 };
	const int64_t ms = 1000000;

	setenv("NOTIFY_SOCKET", path, 1);
	notify_watchdog_init(&w, 1000000, 0);
	T_EQ_INT(notify_watchdog_tick(&w, &p, 100 * ms), 0);
	p = (struct notify_progress){ 5, 5, 0 };
	T_EQ_INT(notify_watchdog_tick(&w, &p, 200 * ms), 0);   /* not yet due */
	T_EQ_INT(notify_watchdog_tick(&w, &p, 600 * ms), 1);   /* due, both moved */
	T_ASSERT(strcmp(receive(fd, 1000), "WATCHDOG=1") == 0);
	p.capture = 9;                                         /* inference stuck */
	T_EQ_INT(notify_watchdog_tick(&w, &p, 1200 * ms), 0);
	T_EQ_INT(notify_watchdog_tick(&w, &p, 1900 * ms), 0);
	p.inference = 6;                                       /* it moves again */
	T_EQ_INT(notify_watchdog_tick(&w, &p, 2000 * ms), 1);
	p.inference = 7;                                       /* capture stuck */
	T_EQ_INT(notify_watchdog_tick(&w, &p, 2600 * ms), 0);
	p.idle = 1;                                            /* camera released */
	T_EQ_INT(notify_watchdog_tick(&w, &p, 2700 * ms), 1);
	T_ASSERT(strcmp(receive(fd, 1000), "WATCHDOG=1") == 0);
	T_EQ_INT(notify_watchdog_tick(&w, &p, 3000 * ms), 0);  /* not yet due */
	T_EQ_INT(notify_watchdog_tick(&w, &p, 3300 * ms), 1);  /* due, idle */
	T_ASSERT(strcmp(receive(fd, 1000), "WATCHDOG=1") == 0);
	notify_watchdog_init(&w, 0, 0);                        /* no watchdog */
	p = (struct notify_progress){ 100, 100, 0 };
	T_EQ_INT(notify_watchdog_tick(&w, &p, 9000 * ms), 0);
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

/* Ticks every 50 ms for ms milliseconds; returns the WATCHDOG=1 received. */
static int run_watchdog(struct pipeline *p, struct notify_watchdog *w, int fd, int ms)
{
	struct pipeline_stats st;
	int pings = 0;

	for (int64_t end = now_ns() + (int64_t)ms * 1000000; now_ns() < end;) {
		pipeline_get_stats(p, &st);
		notify_watchdog_tick(w, &(struct notify_progress){
			.capture = st.captured + st.dropped_capture,
			.inference = st.inferred + st.dropped_stale }, now_ns());
		const char *m = receive(fd, 50);
		pings += strcmp(m, "WATCHDOG=1") == 0;
	}
	return pings;
}

/* The real pipeline with facetd's progress counters: pings while it runs
 * and while paused, none while the inference thread is stuck. */
static void test_watchdog_stall(void)
{
	const char *path = tmp_name("notify-stall");
	struct pipeline_config cfg = { .source = "synthetic",
				       .capture = { .width = 160, .height = 120, .realtime = 1 },
				       .res = 128, .refine = 4, .alpha = 0.5f };
	struct notify_watchdog w;
	struct pipeline *p;
	struct model *m;
	char err[512];
	int fd = listener(path);

	if (model_load(t_path("../model/weights/default.fpw"), &m, err, sizeof(err)) < 0)
		t_fail(__FILE__, __LINE__, "%s", err);
	model_set_threads(1);
	T_EQ_INT(pipeline_start(&cfg, m, &p, err, sizeof(err)), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	notify_watchdog_init(&w, 1000000, now_ns()); /* a ping every 0.5 s */
	T_CMP_INT(run_watchdog(p, &w, fd, 3000), >=, 3);

	pipeline_debug_stall(p, 5000);
	/* the frame in flight finishes first (under ThreadSanitizer it took
	 * over a second), and the last progress may still earn a ping */
	for (int i = 0; i < 400 && !pipeline_debug_stalled(p); i++)
		run_watchdog(p, &w, fd, 50);
	T_ASSERT(pipeline_debug_stalled(p));
	run_watchdog(p, &w, fd, 700);
	T_EQ_INT(run_watchdog(p, &w, fd, 2500), 0);
	T_CMP_INT(run_watchdog(p, &w, fd, 5000), >=, 1); /* the stall is over */

	pipeline_set_paused(p, 1);
	run_watchdog(p, &w, fd, 500);
	T_CMP_INT(run_watchdog(p, &w, fd, 2000), >=, 2);  /* paused still pings */
	unsetenv("NOTIFY_SOCKET");
	pipeline_destroy(p);
	model_free(m);
	close(fd);
}

/* facetd under a pretend systemd: READY=1 once a frame went through,
 * STATUS= with fps, WATCHDOG=1, STOPPING=1 at SIGTERM. */
static void test_facetd_notifies(void)
{
	char name[64], env_sock[96];
	const char *args[] = { "--source", "synthetic", "--size", "96x64", NULL };
	const char *env[] = { env_sock, "WATCHDOG_USEC=1000000", NULL };
	int fd, ready = 0, status = 0, watchdog = 0, stopping = 0;
	struct svc d;

	snprintf(name, sizeof(name), "@facetd-test-daemon-%d", (int)getpid());
	snprintf(env_sock, sizeof(env_sock), "NOTIFY_SOCKET=%s", name);
	fd = listener(name);
	svc_start(&d, "notify", args, env);
	for (int64_t end = now_ns() + 30000000000LL; now_ns() < end && !(ready && status && watchdog);) {
		const char *m = receive(fd, 200);
		ready += strcmp(m, "READY=1") == 0;
		status += strncmp(m, "STATUS=", 7) == 0 && strstr(m, " fps") != NULL;
		watchdog += strcmp(m, "WATCHDOG=1") == 0;
	}
	T_EQ_INT(ready, 1);
	T_CMP_INT(status, >=, 1);
	T_CMP_INT(watchdog, >=, 1);
	kill(d.pid, SIGTERM);
	for (int i = 0; i < 100 && !stopping; i++)
		stopping = strcmp(receive(fd, 200), "STOPPING=1") == 0;
	T_ASSERT(stopping);
	T_EQ_INT(svc_stop(&d, SIGTERM), 0);
	close(fd);
}

T_MAIN(T_CASE(test_protocol),
       T_CASE(test_environment),
       T_CASE(test_watchdog_rule),
       T_CASE(test_watchdog_stall),
       T_CASE(test_facetd_notifies))
