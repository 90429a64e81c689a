/* DESIGN
 *
 * Who reads the virtual camera. v4l2loopback keeps no count of its readers,
 * so facetd looks the way fuser(1) does: every /proc/PID/fd/N of another
 * process that stats to the same device (or file) is one reader. inotify
 * IN_OPEN / IN_CLOSE on the device node says when to look again, so an idle
 * daemon sleeps in poll() until an application opens the camera. The events
 * are only a trigger: inotify merges identical events that are queued
 * unread, so counting opens and closes would drift.
 *
 * Processes of other users are invisible to an unprivileged scan (their fd
 * directories are not readable): a user service sees the user's own
 * applications, a system service sees all. The caller adds a periodic
 * rescan for what the events miss.
 */
#include "render.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

struct reader_watch {
	int fd;         /* inotify, non-blocking */
	dev_t dev;      /* the file's st_dev and st_ino, or its st_rdev */
	ino_t ino;
	dev_t rdev;
	int is_chr;
	pid_t self;
	char path[256];
};

int reader_watch_open(const char *path, struct reader_watch **out, char *err, size_t errlen)
{
	struct reader_watch *w;
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->is_chr = S_ISCHR(st.st_mode);
	w->dev = st.st_dev;
	w->ino = st.st_ino;
	w->rdev = st.st_rdev;
	w->self = getpid();
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0 || inotify_add_watch(w->fd, path, IN_OPEN | IN_CLOSE) < 0) {
		int r = -errno;
		snprintf(err, errlen, "%s: cannot watch for readers: %s", path, strerror(errno));
		reader_watch_close(w);
		return r;
	}
	*out = w;
	return 0;
}

void reader_watch_close(struct reader_watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}

int reader_watch_fd(const struct reader_watch *w)
{
	return w->fd;
}

int reader_watch_drain(struct reader_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int events = 0;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0)
		events++;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	return events;
}

static int same_file(const struct reader_watch *w, const struct stat *st)
{
	if (w->is_chr)
		return S_ISCHR(st->st_mode) && st->st_rdev == w->rdev;
	return st->st_dev == w->dev && st->st_ino == w->ino;
}

/* Open fds of process pid on the watched file; 0 when its fds are hidden. */
static int count_in_process(const struct reader_watch *w, const char *pid)
{
	char dir[64], link[320];
	struct dirent *e;
	struct stat st;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		if (stat(link, &st) == 0 && same_file(w, &st))
			n++;
	}
	closedir(d);
	return n;
}

int reader_watch_count(struct reader_watch *w)
{
	struct dirent *e;
	int n = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0 || pid == w->self)
			continue;
		n += count_in_process(w, e->d_name);
	}
	closedir(d);
	return n;
}
