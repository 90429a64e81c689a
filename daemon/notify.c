#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

int notify_send_to(const char *path, const char *state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(path);
	ssize_t sent;
	int fd, e;

	if (n < 2 || n >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
		return -EAFNOSUPPORT;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	e = sent < 0 ? errno : 0;
	close(fd);
	return sent < 0 ? -e : 1;
}

int notify_send(const char *state)
{
#if HAVE_SYSTEMD
	return sd_notify(0, state);
#else
	const char *path = getenv("NOTIFY_SOCKET");

	return path && *path ? notify_send_to(path, state) : 0;
#endif
}

int notify_sendf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return notify_send(buf);
}

uint64_t notify_watchdog_usec(void)
{
#if HAVE_SYSTEMD
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
#else
	const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (pid && *pid && strtol(pid, &end, 10) != (long)getpid())
		return 0;
	if (!us || !*us)
		return 0;
	errno = 0;
	v = strtoull(us, &end, 10);
	return errno || *end ? 0 : v;
#endif
}

void notify_watchdog_init(struct notify_watchdog *w, uint64_t usec, int64_t now_ns)
{
	*w = (struct notify_watchdog){
		.interval_ns = (int64_t)(usec / 2) * 1000,
		.last_ping_ns = now_ns,
	};
}

int notify_watchdog_tick(struct notify_watchdog *w, const struct notify_progress *p,
			 int64_t now_ns)
{
	int r;

	if (p->capture != w->seen.capture)
		w->moved_ns[0] = now_ns;
	if (p->inference != w->seen.inference)
		w->moved_ns[1] = now_ns;
	w->seen = *p;
	if (w->interval_ns <= 0 || now_ns - w->last_ping_ns < w->interval_ns)
		return 0;
	if (!p->idle && (w->moved_ns[0] <= w->last_ping_ns || w->moved_ns[1] <= w->last_ping_ns))
		return 0;
	r = notify_send("WATCHDOG=1");
	w->last_ping_ns = now_ns;
	return r < 0 ? r : 1;
}
