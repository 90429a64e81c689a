/* facetctl: talks to a running facetd over its control socket. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "json.h"

#define REPLY_TIMEOUT_MS 15000

struct args {
	const char *socket;
	bool json, watch;
	const char *pos[4];   /* the command and its arguments */
	int n_pos;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: facetctl [--socket PATH] [--json] COMMAND [ARG]...\n"
		   "Talks to a running facetd.\n\n"
		   "Commands:\n"
		   "  stats [--watch]   the running figures (--watch: again every second)\n"
		   "  get [KEY]         the running settings, as config-file lines\n"
		   "  set KEY VALUE     changes a setting (live, or by restarting the capture)\n"
		   "  reload            reads the config file again\n"
		   "  snapshot PATH     writes the current output frame as a PNG\n"
		   "  pause, resume     stops and restarts parsing and output\n\n"
		   "Options:\n"
		   "  -s, --socket PATH  the control socket (default: facetd's, found in\n"
		   "                     $XDG_RUNTIME_DIR/facetd or /run/facetd)\n"
		   "  -j, --json         print facetd's JSON replies as they are\n"
		   "  -h, --help, -V, --version\n");
}

/* 0: run, 1: done (help/version), -1: usage error. */
static int parse_args(int argc, char **argv, struct args *a)
{
	bool rest = false;

	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!rest && (!strcmp(s, "-h") || !strcmp(s, "--help"))) {
			usage(stdout);
			return 1;
		} else if (!rest && (!strcmp(s, "-V") || !strcmp(s, "--version"))) {
			printf("facetctl %s\n", FACETD_VERSION);
			return 1;
		} else if (!rest && (!strcmp(s, "-j") || !strcmp(s, "--json"))) {
			a->json = true;
		} else if (!rest && (!strcmp(s, "-w") || !strcmp(s, "--watch"))) {
			a->watch = true;
		} else if (!rest && (!strcmp(s, "-s") || !strcmp(s, "--socket")) && i + 1 < argc) {
			a->socket = argv[++i];
		} else if (!rest && !strncmp(s, "--socket=", 9)) {
			a->socket = s + 9;
		} else if (!rest && !strcmp(s, "--")) {
			rest = true;
		} else if (!rest && s[0] == '-' && s[1] && a->n_pos == 0) {
			fprintf(stderr, "facetctl: unknown option '%s' (see --help)\n", s);
			return -1;
		} else if (a->n_pos < 4) {
			a->pos[a->n_pos++] = s;
		} else {
			fprintf(stderr, "facetctl: too many arguments (see --help)\n");
			return -1;
		}
	}
	return 0;
}

/* ---- the request ---- */

static const struct {
	const char *name;
	int n_args;          /* besides the command */
	const char *arg_keys[2];
} commands[] = {
	{ "stats", 0, { NULL } },
	{ "get", -1, { "key" } },  /* -1: the argument is optional */
	{ "set", 2, { "key", "value" } },
	{ "reload", 0, { NULL } },
	{ "snapshot", 1, { "path" } },
	{ "pause", 0, { NULL } },
	{ "resume", 0, { NULL } },
};

/* A snapshot path facetd can use: absolute. */
static const char *absolute(const char *path, char *buf, size_t len)
{
	char cwd[PATH_MAX];

	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return path;
	snprintf(buf, len, "%s/%s", cwd, path);
	return buf;
}

static int build_request(const struct args *a, char *buf, size_t len)
{
	char abs_path[PATH_MAX + 256];
	struct json_writer w;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		int want = commands[i].n_args, got = a->n_pos - 1;
		if (strcmp(a->pos[0], commands[i].name) != 0)
			continue;
		if (want >= 0 ? got != want : got > 1) {
			fprintf(stderr, "facetctl: %s: wrong number of arguments (see --help)\n",
				a->pos[0]);
			return -EINVAL;
		}
		json_writer_init(&w, buf, len);
		json_put_string(&w, "cmd", a->pos[0]);
		for (int k = 0; k < got; k++)
			json_put_string(&w, commands[i].arg_keys[k], strcmp(a->pos[0], "snapshot") ? a->pos[k + 1]
					: absolute(a->pos[k + 1], abs_path, sizeof(abs_path)));
		return json_writer_finish(&w) < 0 ? -ENOSPC : 0;
	}
	fprintf(stderr, "facetctl: unknown command '%s' (see --help)\n", a->pos[0]);
	return -EINVAL;
}

/* ---- the socket ---- */

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "facetctl: %s: path too long\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	fprintf(stderr, "facetctl: cannot connect to %s: %s (is facetd running?)\n", path,
		strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		s += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Reads one reply line (without its newline) into buf. */
static int read_reply(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, REPLY_TIMEOUT_MS) == 0)
			return -ETIMEDOUT;
		ssize_t k = recv(fd, buf + n, 1, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -ECONNRESET;
		if (buf[n] == '\n') {
			buf[n] = 0;
			return 0;
		}
		n++;
	}
	return -EMSGSIZE;
}

static int exchange(int fd, const char *request, char *reply, size_t len)
{
	char line[CONTROL_LINE_MAX + 1];
	int n = snprintf(line, sizeof(line), "%s\n", request), r;

	r = send_all(fd, line, (size_t)n);
	r = r ? r : read_reply(fd, reply, len);
	if (r < 0)
		fprintf(stderr, "facetctl: %s\n", r == -ECONNRESET ? "facetd closed the connection"
			: r == -ETIMEDOUT ? "no reply from facetd" : strerror(-r));
	return r;
}

/* ---- output ---- */

static void print_value(const struct json_member *m)
{
	fputs(m->type == JSON_NULL ? "-" : m->value, stdout);
}

static void print_stats(const struct json_object *o)
{
	for (int i = 0; i < o->n; i++) {
		if (strcmp(o->m[i].key, "ok") == 0)
			continue;
		printf("%-16s ", o->m[i].key);
		print_value(&o->m[i]);
		putchar('\n');
	}
}

static void print_settings(const struct json_object *o, const char *suffix)
{
	for (int i = 0; i < o->n; i++) {
		const struct json_member *m = &o->m[i];
		if (strcmp(m->key, "ok") == 0 || strcmp(m->key, "applied") == 0)
			continue;
		if (m->type == JSON_NULL)
			printf("# %s is not set\n", m->key);
		else if (strpbrk(m->value, " \t#\"") || !m->value[0])
			printf("%s = \"%s\"%s\n", m->key, m->value, suffix);
		else
			printf("%s = %s%s\n", m->key, m->value, suffix);
	}
}

static void print_human(const char *cmd, const struct json_object *o)
{
	const char *v;
	char suffix[64] = "";

	if (!strcmp(cmd, "stats")) {
		print_stats(o);
	} else if (!strcmp(cmd, "get")) {
		print_settings(o, "");
	} else if (!strcmp(cmd, "set")) {
		if ((v = json_get_string(o, "applied")))
			snprintf(suffix, sizeof(suffix), "   (%s)", v);
		print_settings(o, suffix);
	} else if (!strcmp(cmd, "reload")) {
		v = json_get_string(o, "changed");
		printf("reloaded %s: %s%s%s\n", json_get_string(o, "config") ? json_get_string(o, "config")
		       : "(no config file)", v && *v ? "changed " : "no changes", v ? v : "",
		       json_get(o, "restarted") && !strcmp(json_get(o, "restarted")->value, "true")
		       ? "; the pipeline restarted" : "");
	} else if (!strcmp(cmd, "snapshot")) {
		printf("wrote %s\n", json_get_string(o, "path"));
	} else {
		printf("%s\n", !strcmp(cmd, "pause") ? "paused" : "resumed");
	}
}

/* Shows a reply; 0 when facetd said ok. */
static int show(const struct args *a, const char *reply)
{
	static struct json_object o;
	const struct json_member *ok;
	char why[128];

	if (a->json) {
		printf("%s\n", reply);
		fflush(stdout);
	}
	if (json_parse(reply, strlen(reply), &o, why, sizeof(why)) < 0) {
		fprintf(stderr, "facetctl: unreadable reply (%s): %s\n", why, reply);
		return 1;
	}
	ok = json_get(&o, "ok");
	if (!ok || strcmp(ok->value, "true") != 0) {
		fprintf(stderr, "facetctl: %s\n", json_get_string(&o, "error") ?
			json_get_string(&o, "error") : "facetd refused the request");
		return 1;
	}
	if (!a->json)
		print_human(a->pos[0], &o);
	fflush(stdout);
	return 0;
}

static int watch(const struct args *a, int fd, const char *request)
{
	static char reply[CONTROL_REPLY_MAX];
	bool tty = isatty(STDOUT_FILENO);

	for (;;) {
		if (exchange(fd, request, reply, sizeof(reply)) < 0)
			return 1;
		if (tty && !a->json)
			fputs("\033[H\033[2J", stdout);
		if (show(a, reply) != 0)
			return 1;
		nanosleep(&(struct timespec){ 1, 0 }, NULL);
	}
}

int main(int argc, char **argv)
{
	static char reply[CONTROL_REPLY_MAX];
	char request[CONTROL_LINE_MAX], path[4096];
	struct args a = { 0 };
	int r, fd;

	r = parse_args(argc, argv, &a);
	if (r != 0)
		return r > 0 ? 0 : 2;
	if (a.n_pos == 0) {
		usage(stderr);
		return 2;
	}
	if (build_request(&a, request, sizeof(request)) < 0)
		return 2;
	if (!a.socket && control_find_path(path, sizeof(path)) < 0) {
		fprintf(stderr, "facetctl: no runtime directory to find facetd in; use --socket\n");
		return 1;
	}
	fd = connect_to(a.socket ? a.socket : path);
	if (fd < 0)
		return 1;
	if (a.watch && !strcmp(a.pos[0], "stats"))
		r = watch(&a, fd, request);
	else
		r = exchange(fd, request, reply, sizeof(reply)) < 0 ? 1 : show(&a, reply);
	close(fd);
	return r;
}
