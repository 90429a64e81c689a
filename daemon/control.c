/* DESIGN
 *
 * One I/O thread polls the listening socket, an eventfd and the clients.
 * Each client slot moves through
 *
 *   FREE -> READING -> QUEUED -> RUNNING -> WRITING -> READING ... -> FREE
 *
 * The I/O thread owns the fds, the input buffers and every transition but
 * two: control_dispatch() (the owner's thread) takes QUEUED to RUNNING,
 * copying the request out, and RUNNING to WRITING, copying the reply in.
 * Fields below `lock` in struct client are protected by it. A slot's id
 * changes whenever it is freed, so a reply for a client that went away
 * while its request ran is dropped rather than sent to a newcomer.
 */
#include "control-priv.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

enum client_state { C_FREE, C_READING, C_QUEUED, C_RUNNING, C_WRITING };

struct client {
	/* I/O thread only */
	int fd;
	size_t in_len;
	bool discarding;         /* skipping the rest of an oversized line */
	char in[CONTROL_LINE_MAX];
	/* under control.lock; out* and req also belong to whoever holds the
	 * slot in its state: the I/O thread in READING and WRITING, the
	 * dispatcher in RUNNING */
	enum client_state state;
	uint64_t id;
	size_t out_len, out_off;
	char out[CONTROL_REPLY_MAX];
	struct json_object req;  /* parsed by the I/O thread while READING */
};

struct control {
	int listen_fd, wake_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool bound;
	uid_t uid;
	control_wake_fn wake;
	void *wake_ud;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	pthread_mutex_t lock;
	uint64_t next_id;
	struct client clients[CONTROL_CLIENTS_MAX];
	/* the dispatching thread's */
	struct json_object work_req;
	char work_out[CONTROL_REPLY_MAX];
};

/* ---- paths ---- */

/* Candidate i of the socket paths; 1 when formed, 0 when not, -1 past the end. */
static int candidate(int i, char *buf, size_t len, char *dir, size_t dirlen)
{
	const char *rt = getenv("RUNTIME_DIRECTORY"), *xdg = getenv("XDG_RUNTIME_DIR");
	size_t n;

	if (i == 0 && rt && *rt == '/') {
		n = strcspn(rt, ":");
		snprintf(dir, dirlen, "%.*s", (int)n, rt);
		return snprintf(buf, len, "%s/control", dir) < (int)len;
	}
	if (i == 1 && xdg && *xdg == '/') {
		snprintf(dir, dirlen, "%s/facetd", xdg);
		return snprintf(buf, len, "%s/control", dir) < (int)len;
	}
	if (i == 2 && geteuid() == 0) {
		snprintf(dir, dirlen, "/run/facetd");
		return snprintf(buf, len, "%s/control", dir) < (int)len;
	}
	return i > 2 ? -1 : 0;
}

int control_default_path(char *buf, size_t len, int create)
{
	char dir[4096];
	int r;

	for (int i = 0; (r = candidate(i, buf, len, dir, sizeof(dir))) >= 0; i++) {
		if (r == 0)
			continue;
		if (create && i > 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		return 0;
	}
	return -ENOENT;
}

int control_find_path(char *buf, size_t len)
{
	char dir[4096], first[4096] = "";
	struct stat st;
	int r;

	for (int i = 0; (r = candidate(i, buf, len, dir, sizeof(dir))) >= 0; i++) {
		if (r == 0)
			continue;
		if (stat(buf, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (!first[0])
			snprintf(first, sizeof(first), "%s", buf);
	}
	if (!first[0])
		return -ENOENT;
	snprintf(buf, len, "%s", first);
	return 0;
}

/* ---- replies ---- */

void control_reply_error(struct json_writer *w, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_put_bool(w, "ok", false);
	json_put_string(w, "error", msg);
}

size_t control_finish_reply(struct json_writer *w, char *buf, size_t cap)
{
	int n = json_writer_finish(w);

	if (n < 0 || (size_t)n + 1 >= cap) {
		json_writer_init(w, buf, cap);
		control_reply_error(w, "reply too long");
		n = json_writer_finish(w);
	}
	buf[n] = '\n';
	return (size_t)n + 1;
}

/* ---- clients (I/O thread) ---- */

static void wake_io(struct control *c)
{
	uint64_t one = 1;

	if (write(c->wake_fd, &one, sizeof(one)) < 0) {
		/* saturated: the thread wakes anyway */
	}
}

static void close_client(struct control *c, struct client *cl)
{
	close(cl->fd);
	cl->fd = -1;
	/* under the lock: the owner may be writing this client's reply */
	pthread_mutex_lock(&c->lock);
	cl->in_len = cl->out_off = cl->out_len = 0;
	cl->discarding = false;
	cl->state = C_FREE;
	cl->id = ++c->next_id;
	pthread_mutex_unlock(&c->lock);
}

/* Writes what is pending; false when the client is gone. */
static bool flush_client(struct control *c, struct client *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n <= 0)
			return false;
		cl->out_off += (size_t)n;
	}
	pthread_mutex_lock(&c->lock);
	cl->state = C_READING;
	cl->out_off = cl->out_len = 0;
	pthread_mutex_unlock(&c->lock);
	return true;
}

static enum client_state state_of(struct control *c, const struct client *cl)
{
	enum client_state s;

	pthread_mutex_lock(&c->lock);
	s = cl->state;
	pthread_mutex_unlock(&c->lock);
	return s;
}

/* The I/O thread's own error reply. */
static void reply_local(struct control *c, struct client *cl, const char *msg)
{
	struct json_writer w;

	pthread_mutex_lock(&c->lock);
	json_writer_init(&w, cl->out, sizeof(cl->out));
	control_reply_error(&w, "%s", msg);
	cl->out_len = control_finish_reply(&w, cl->out, sizeof(cl->out));
	cl->out_off = 0;
	cl->state = C_WRITING;
	pthread_mutex_unlock(&c->lock);
}

int control_parse_line(const char *line, size_t len, struct json_object *req,
		       char *why, size_t whylen)
{
	char reason[128];

	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return 0;
	if (json_parse(line, len, req, reason, sizeof(reason)) < 0) {
		snprintf(why, whylen, "bad request: %s", reason);
		return -EINVAL;
	}
	if (!json_get_string(req, "cmd")) {
		snprintf(why, whylen, "bad request: no \"cmd\" string");
		return -EINVAL;
	}
	return 1;
}

static void handle_line(struct control *c, struct client *cl, const char *line, size_t len)
{
	char why[160];
	int r = control_parse_line(line, len, &cl->req, why, sizeof(why));

	if (r < 0)
		reply_local(c, cl, why);
	if (r <= 0)
		return;
	pthread_mutex_lock(&c->lock);
	cl->state = C_QUEUED;
	pthread_mutex_unlock(&c->lock);
	if (c->wake)
		c->wake(c->wake_ud);
}

/* Handles the first line in the input buffer; false when there is no
 * whole line yet. An oversized line gets one error reply and is skipped up
 * to its newline. */
static bool take_line(struct control *c, struct client *cl)
{
	char *nl = memchr(cl->in, '\n', cl->in_len);
	size_t used = nl ? (size_t)(nl - cl->in) + 1 : cl->in_len;
	char msg[64];

	if (cl->in_len == 0 || (!nl && !cl->discarding && cl->in_len < sizeof(cl->in)))
		return false;
	if (!nl && !cl->discarding) {
		snprintf(msg, sizeof(msg), "request longer than %d bytes", CONTROL_LINE_MAX);
		reply_local(c, cl, msg);
	} else if (!cl->discarding) {
		handle_line(c, cl, cl->in, used - 1);
	}
	cl->discarding = !nl;
	memmove(cl->in, cl->in + used, cl->in_len - used);
	cl->in_len -= used;
	return true;
}

/* Reads what the client sent; false when it is gone. */
static bool read_client(struct client *cl)
{
	ssize_t n = recv(cl->fd, cl->in + cl->in_len, sizeof(cl->in) - cl->in_len, MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	cl->in_len += (size_t)n;
	return n > 0;
}

static void service_client(struct control *c, struct client *cl, short revents)
{
	enum client_state s = state_of(c, cl);
	bool alive = true;

	if (s == C_READING && (revents & (POLLIN | POLLHUP | POLLERR)))
		alive = read_client(cl);
	else if (s != C_WRITING && (revents & (POLLHUP | POLLERR)))
		alive = false; /* gone while its request is with the owner */
	while (alive && (s = state_of(c, cl)) != C_QUEUED && s != C_RUNNING) {
		if (s == C_WRITING) {
			alive = flush_client(c, cl);
			if (alive && state_of(c, cl) == C_WRITING)
				break; /* the socket is full: wait for POLLOUT */
		} else if (!take_line(c, cl)) {
			break;
		}
	}
	if (!alive)
		close_client(c, cl);
}

/* ---- accepting ---- */

static void refuse(int fd, const char *why)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "{\"ok\": false, \"error\": \"%s\"}\n", why);

	if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* it goes away anyway */
	}
	close(fd);
}

static bool peer_allowed(const struct control *c, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid == c->uid || cred.uid == 0)
		return true;
	log_debug("control: refused pid %d uid %u", (int)cred.pid, (unsigned)cred.uid);
	return false;
}

static struct client *free_slot(struct control *c)
{
	for (int i = 0; i < CONTROL_CLIENTS_MAX; i++)
		if (c->clients[i].fd < 0)
			return &c->clients[i];
	return NULL;
}

static void accept_clients(struct control *c)
{
	int fd;

	while ((fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct client *cl = free_slot(c);
		if (!peer_allowed(c, fd)) {
			refuse(fd, "permission denied");
			continue;
		}
		if (!cl) {
			refuse(fd, "too many clients");
			continue;
		}
		cl->fd = fd;
		pthread_mutex_lock(&c->lock);
		cl->state = C_READING;
		pthread_mutex_unlock(&c->lock);
	}
}

/* ---- the thread ---- */

static short wanted(enum client_state s)
{
	return s == C_READING ? POLLIN : s == C_WRITING ? POLLOUT : 0;
}

static int build_pollfds(struct control *c, struct pollfd *pfd, int *who)
{
	int n = 2;

	pfd[0] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = c->wake_fd, .events = POLLIN };
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < CONTROL_CLIENTS_MAX; i++) {
		if (c->clients[i].fd < 0)
			continue;
		pfd[n] = (struct pollfd){ .fd = c->clients[i].fd, .events = wanted(c->clients[i].state) };
		who[n++] = i;
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void *control_main(void *arg)
{
	struct control *c = arg;
	struct pollfd pfd[2 + CONTROL_CLIENTS_MAX];
	int who[2 + CONTROL_CLIENTS_MAX];
	uint64_t v;

	while (!atomic_load(&c->stop)) {
		int n = build_pollfds(c, pfd, who);
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("control: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents && read(c->wake_fd, &v, sizeof(v)) < 0) {
			/* cleared by an earlier read */
		}
		if (pfd[0].revents & POLLIN)
			accept_clients(c);
		for (int k = 2; k < n; k++)
			service_client(c, &c->clients[who[k]], pfd[k].revents);
	}
	return NULL;
}

/* ---- setup ---- */

/* -EADDRINUSE when something answers at path; removes a stale socket. */
static int clear_path(const char *path, const struct sockaddr_un *sa, socklen_t salen)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, salen);
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	return unlink(path) < 0 ? -errno : 0;
}

static int bind_socket(struct control *c, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t salen = sizeof(sa);
	mode_t old;
	int r;

	memcpy(sa.sun_path, c->path, strlen(c->path));
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0)
		return -errno;
	r = clear_path(c->path, &sa, salen);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", c->path, r == -EADDRINUSE ?
			 "another facetd is listening there" : r == -EEXIST ?
			 "exists and is not a socket" : strerror(-r));
		return r;
	}
	old = umask(0077);
	r = bind(c->listen_fd, (struct sockaddr *)&sa, salen) < 0 ? -errno : 0;
	umask(old);
	if (r == 0)
		c->bound = true;
	if (r == 0 && chmod(c->path, 0600) < 0)
		r = -errno;
	if (r == 0 && listen(c->listen_fd, 16) < 0)
		r = -errno;
	if (r < 0)
		snprintf(err, errlen, "%s: %s", c->path, strerror(-r));
	return r;
}

int control_create(const char *path, control_wake_fn wake, void *ud, struct control **out,
		   char *err, size_t errlen)
{
	struct control *c;
	int r;

	*out = NULL;
	if (strlen(path) >= sizeof(c->path) || !*path) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -ENAMETOOLONG;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->uid = geteuid();
	c->listen_fd = -1;
	c->wake = wake;
	c->wake_ud = ud;
	pthread_mutex_init(&c->lock, NULL);
	for (int i = 0; i < CONTROL_CLIENTS_MAX; i++)
		c->clients[i].fd = -1;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r = c->wake_fd < 0 ? -errno : bind_socket(c, err, errlen);
	if (c->wake_fd < 0)
		snprintf(err, errlen, "eventfd: %s", strerror(-r));
	if (r == 0 && pthread_create(&c->thread, NULL, control_main, c) != 0) {
		snprintf(err, errlen, "cannot start the control thread");
		r = -EAGAIN;
	}
	c->started = r == 0;
	if (r < 0) {
		control_destroy(c);
		return r;
	}
	*out = c;
	return 0;
}

void control_destroy(struct control *c)
{
	if (!c)
		return;
	if (c->started) {
		atomic_store(&c->stop, true);
		wake_io(c);
		pthread_join(c->thread, NULL);
	}
	for (int i = 0; i < CONTROL_CLIENTS_MAX; i++)
		if (c->clients[i].fd >= 0)
			close(c->clients[i].fd);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->bound)
		unlink(c->path);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---- the owner's side ---- */

/* Takes one QUEUED request into c->work_req; its slot, or NULL. The copy
 * is deep: once the lock is let go the slot may be freed and reused (its
 * client gone) and the I/O thread may parse a newcomer's request into it. */
static struct client *take_request(struct control *c, uint64_t *id)
{
	struct client *found = NULL;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < CONTROL_CLIENTS_MAX && !found; i++) {
		if (c->clients[i].state == C_QUEUED) {
			found = &c->clients[i];
			found->state = C_RUNNING;
			*id = found->id;
			json_copy(&c->work_req, &found->req);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

int control_dispatch(struct control *c, control_handler_fn handler, void *ud)
{
	struct client *cl;
	uint64_t id;
	int n = 0;

	while ((cl = take_request(c, &id))) {
		struct json_writer w;
		json_writer_init(&w, c->work_out, sizeof(c->work_out));
		handler(ud, &c->work_req, &w);
		size_t len = control_finish_reply(&w, c->work_out, sizeof(c->work_out));
		pthread_mutex_lock(&c->lock);
		if (cl->id == id && cl->state == C_RUNNING) {
			memcpy(cl->out, c->work_out, len);
			cl->out_len = len;
			cl->out_off = 0;
			cl->state = C_WRITING;
		}
		pthread_mutex_unlock(&c->lock);
		wake_io(c);
		n++;
	}
	return n;
}

int control_clients(struct control *c)
{
	int n = 0;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < CONTROL_CLIENTS_MAX; i++)
		n += c->clients[i].state != C_FREE;
	pthread_mutex_unlock(&c->lock);
	return n;
}
