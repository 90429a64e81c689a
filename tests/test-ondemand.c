/* On-demand capture: the reader count of a watched file, and a pipeline
 * that stops capturing while no other process has it open and starts again
 * when one opens it. A regular file stands in for the loopback node (the
 * VM bench does it with the real device). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "pipeline-util.h"
#include "render.h"

static char *watched_file(const char *name)
{
	static char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", t_tmpdir(), name);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	T_ASSERT(fd >= 0);
	close(fd);
	return path;
}

/* A child process holding path open until killed. */
static pid_t reader(const char *path)
{
	int ready[2];
	char c;
	pid_t pid;

	T_EQ_INT(pipe(ready), 0);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_RDONLY);
		if (write(ready[1], fd >= 0 ? "y" : "n", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	T_EQ_INT(read(ready[0], &c, 1), 1);
	close(ready[0]);
	T_EQ_INT(c, 'y');
	return pid;
}

static void stop_reader(pid_t pid)
{
	kill(pid, SIGKILL);
	T_EQ_INT(waitpid(pid, NULL, 0), pid);
}

static void test_count_readers(void)
{
	char *path = watched_file("node"), err[256];
	struct reader_watch *w;
	int own;

	T_EQ_INT(reader_watch_open(path, &w, err, sizeof(err)), 0);
	T_EQ_INT(reader_watch_count(w), 0);
	own = open(path, O_RDONLY); /* this process's own fds do not count */
	T_EQ_INT(reader_watch_count(w), 0);
	T_CMP_INT(reader_watch_drain(w), >, 0); /* but its open is an event */
	T_EQ_INT(reader_watch_drain(w), 0);
	close(own); /* (children would inherit it) */
	pid_t a = reader(path), b = reader(path);
	T_EQ_INT(reader_watch_count(w), 2);
	T_CMP_INT(reader_watch_drain(w), >, 0);
	stop_reader(a);
	T_EQ_INT(reader_watch_count(w), 1);
	stop_reader(b);
	T_EQ_INT(reader_watch_count(w), 0);
	reader_watch_close(w);
	T_EQ_INT(reader_watch_open("/nonexistent/video9", &w, err, sizeof(err)), -ENOENT);
	T_STR_CONTAINS(err, "/nonexistent/video9");
}

/* Polls the stats until cond holds for them, up to ms; returns it. */
static int wait_for(struct pipeline *p, struct pipeline_stats *st, int ms,
		    int (*cond)(const struct pipeline_stats *))
{
	for (int t = 0; t < ms; t += 20) {
		pipeline_get_stats(p, st);
		if (cond(st))
			return 1;
		usleep(20 * 1000);
	}
	pipeline_get_stats(p, st);
	return cond(st);
}

static int is_released(const struct pipeline_stats *st) { return st->released; }
static int is_capturing(const struct pipeline_stats *st) { return !st->released; }

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_pipeline_on_demand(void)
{
	struct model *m = pu_load_default();
	char *path = watched_file("vcam"), out[512], spec[600];
	struct pipeline_config cfg = {
		.source = "synthetic", .capture = { .width = 160, .height = 120, .realtime = 1 },
		.n_outputs = 1, .res = 96, .refine = 4, .alpha = 0.5f,
		.demand_path = path, .demand_linger_ms = 300,
	};
	struct pipeline_stats st;

	snprintf(out, sizeof(out), "%s/ondemand.y4m", t_tmpdir());
	snprintf(spec, sizeof(spec), "y4m:%s", out);
	cfg.outputs[0] = spec;
	struct pipeline *p = pu_start(&cfg, m);

	/* nobody reads: released after the linger, and capture stops */
	T_ASSERT(wait_for(p, &st, 3000, is_released));
	T_EQ_INT(st.readers, 0);
	uint64_t idle_captured = st.captured;
	usleep(500 * 1000);
	pipeline_get_stats(p, &st);
	T_EQ_INT(st.captured, idle_captured);
	T_ASSERT(st.released);

	/* a process that opens it for a moment (listing cameras) changes nothing */
	stop_reader(reader(path));
	usleep(600 * 1000);
	pipeline_get_stats(p, &st);
	T_ASSERT(st.released);
	T_EQ_INT(st.captured, idle_captured);

	/* a reader comes: capturing again within a second */
	double t0 = now_s();
	pid_t r = reader(path);
	T_ASSERT(wait_for(p, &st, 1000, is_capturing));
	double reacquire = now_s() - t0;
	printf("  camera back %.0f ms after a reader opened\n", reacquire * 1e3);
	T_CMP_DBL(reacquire, <, 1.0);
	T_EQ_INT(st.readers, 1);
	usleep(400 * 1000);
	pipeline_get_stats(p, &st);
	T_CMP_INT(st.captured, >, idle_captured);
	T_ASSERT(!st.released); /* the reader stays past the linger */

	/* it leaves: released again */
	stop_reader(r);
	T_ASSERT(wait_for(p, &st, 3000, is_released));
	T_EQ_INT(st.readers, 0);
	T_EQ_INT(st.capture_errors + st.output_errors, 0);

	/* a stop request ends the idle wait at once */
	t0 = now_s();
	pipeline_destroy(p);
	T_CMP_DBL(now_s() - t0, <, 1.0);
	model_free(m);
}

T_MAIN(T_CASE(test_count_readers),
       T_CASE(test_pipeline_on_demand))
