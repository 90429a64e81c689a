#include "service-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

const char *svc_bin(const char *name)
{
	static char buf[4][4096];
	static int next;
	const char *dir = getenv("FACETD_BUILD_DIR");
	char *out = buf[next++ % 4];

	snprintf(out, sizeof(buf[0]), "%s/%s", dir ? dir : ".", name);
	return out;
}

static void msleep(int ms)
{
	nanosleep(&(struct timespec){ ms / 1000, (long)(ms % 1000) * 1000000 }, NULL);
}

void svc_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		t_fail(__FILE__, __LINE__, "cannot write %s", path);
}

static void read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = 0;
	if (f)
		fclose(f);
}

/* Child side: redirect, set the environment, exec. */
static _Noreturn void exec_child(const char *const *argv, const char *out, const char *err,
				 const char *const *env)
{
	int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
		_exit(127);
	for (; env && *env; env++)
		putenv((char *)*env);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

static pid_t spawn(const char *const *argv, const char *out, const char *err,
		   const char *const *env)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		t_fail(__FILE__, __LINE__, "fork failed");
	if (pid == 0)
		exec_child(argv, out, err, env);
	return pid;
}

/* Waits up to timeout_ms; the exit status, 128 + signal, or -1 still running. */
static int wait_exit(pid_t pid, int timeout_ms)
{
	int st;

	for (int t = 0; t <= timeout_ms; t += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		msleep(10);
	}
	return -1;
}

int svc_run(const char *const *argv, char *out, size_t outlen, char *err, size_t errlen,
	    int timeout_s)
{
	char o[512], e[512];
	pid_t pid;
	int st;

	snprintf(o, sizeof(o), "%s/run.out", t_tmpdir());
	snprintf(e, sizeof(e), "%s/run.err", t_tmpdir());
	pid = spawn(argv, o, e, NULL);
	st = wait_exit(pid, timeout_s * 1000);
	if (st < 0) {
		kill(pid, SIGTERM);
		st = wait_exit(pid, 10000);
	}
	read_file(o, out, outlen);
	read_file(e, err, errlen);
	return st;
}

int svc_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	e = errno;
	close(fd);
	return -e;
}

int svc_read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		if (recv(fd, buf + n, 1, 0) != 1)
			return -ECONNRESET;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
	return 0;
}

int svc_request(const char *sock, const char *request, char *reply, size_t len)
{
	int fd = svc_connect(sock), r;
	char line[8192];

	if (fd < 0)
		return fd;
	snprintf(line, sizeof(line), "%s\n", request);
	r = send(fd, line, strlen(line), MSG_NOSIGNAL) < 0 ? -errno : 0;
	r = r ? r : svc_read_line(fd, reply, len, 30000);
	close(fd);
	return r;
}

const char *svc_ask(const char *sock, const char *request)
{
	static char reply[16384];
	int r = svc_request(sock, request, reply, sizeof(reply));

	if (r < 0)
		t_fail(__FILE__, __LINE__, "%s: %s: %s", sock, request, strerror(-r));
	return reply;
}

const char *svc_log(const struct svc *d)
{
	static char buf[65536];

	read_file(d->log, buf, sizeof(buf));
	return buf;
}

void svc_start(struct svc *d, const char *name, const char *const *args, const char *const *env)
{
	const char *argv[40] = { svc_bin("facetd"), "--model",
				 t_path("../model/weights/default.fpw"), "--control", d->sock };
	int n = 5, st;
	char reply[16384];

	snprintf(d->sock, sizeof(d->sock), "%s/%s.sock", t_tmpdir(), name);
	snprintf(d->log, sizeof(d->log), "%s/%s.log", t_tmpdir(), name);
	snprintf(d->out, sizeof(d->out), "%s/%s.out", t_tmpdir(), name);
	while (args && *args && n < 38)
		argv[n++] = *args++;
	argv[n] = NULL;
	d->pid = spawn(argv, d->out, d->log, env);
	for (int t = 0; t < 600; t++) {
		if (svc_request(d->sock, "{\"cmd\": \"get\", \"key\": \"res\"}", reply,
				sizeof(reply)) == 0)
			return;
		if ((st = wait_exit(d->pid, 100)) >= 0)
			t_fail(__FILE__, __LINE__, "facetd exited (%d): %s", st, svc_log(d));
	}
	kill(d->pid, SIGKILL);
	t_fail(__FILE__, __LINE__, "facetd's socket never answered: %s", svc_log(d));
}

int svc_stop(struct svc *d, int sig)
{
	int st;

	kill(d->pid, sig);
	st = wait_exit(d->pid, 30000);
	if (st < 0) {
		kill(d->pid, SIGKILL);
		st = wait_exit(d->pid, 5000);
	}
	return st;
}
