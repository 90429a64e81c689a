/* The control socket: the JSON reader and writer, every command against a
 * running facetd, garbage and fuzz, clients that vanish or never read, too
 * many clients, other users refused, and facetctl as a user runs it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "json.h"
#include "render.h"
#include "service-util.h"

/* ---- JSON ---- */

static int parse(const char *text, struct json_object *o, char *why)
{
	return json_parse(text, strlen(text), o, why, 128);
}

static void test_json_reader(void)
{
	static struct json_object o;
	char why[128];

	T_EQ_INT(parse(" {\"cmd\" : \"set\", \"key\":\"res\", \"value\": -1.5e+3, \"b\": true,"
		       "\"n\": null, \"u\": \"\\u00e9\\ud83d\\ude00\\n\\\"\"}\r\n", &o, why), 0);
	T_EQ_INT(o.n, 6);
	T_ASSERT(strcmp(json_get_string(&o, "cmd"), "set") == 0);
	T_ASSERT(strcmp(json_get(&o, "value")->value, "-1.5e+3") == 0);
	T_EQ_INT(json_get(&o, "value")->type, JSON_NUMBER);
	T_EQ_INT(json_get(&o, "b")->type, JSON_BOOL);
	T_EQ_INT(json_get(&o, "n")->type, JSON_NULL);
	T_ASSERT(strcmp(json_get_string(&o, "u"), "\xc3\xa9\xf0\x9f\x98\x80\n\"") == 0);
	T_ASSERT(json_get_string(&o, "b") == NULL);
	T_EQ_INT(parse("{}", &o, why), 0);
	T_EQ_INT(o.n, 0);
}

/* A copy stands on its own: parsing another text into the original (as
 * the I/O thread does into a freed slot) leaves it whole. */
static void test_json_copy(void)
{
	static struct json_object o, copy;
	char why[128];

	T_EQ_INT(parse("{\"cmd\": \"set\", \"key\": \"alpha\", \"value\": 30, \"b\": false}", &o, why), 0);
	json_copy(&copy, &o);
	T_EQ_INT(parse("{\"xxx\": \"yyyyyyyyyyyyyyy\", \"zz\": 123456789}", &o, why), 0);
	T_EQ_INT(copy.n, 4);
	T_ASSERT(strcmp(json_get_string(&copy, "cmd"), "set") == 0);
	T_ASSERT(strcmp(json_get_string(&copy, "key"), "alpha") == 0);
	T_ASSERT(strcmp(json_get(&copy, "value")->value, "30") == 0);
	T_ASSERT(strcmp(json_get(&copy, "b")->value, "false") == 0);
	T_ASSERT(json_get(&copy, "xxx") == NULL);
}

static void expect_bad(const char *text, const char *want)
{
	static struct json_object o;
	char why[128] = "";

	if (parse(text, &o, why) != -EINVAL)
		t_fail(__FILE__, __LINE__, "accepted: %s", text);
	T_STR_CONTAINS(why, want);
}

static void test_json_rejects(void)
{
	expect_bad("", "expected an object");
	expect_bad("[1]", "expected an object");
	expect_bad("{\"a\": {\"b\": 1}}", "nested");
	expect_bad("{\"a\": [1]}", "nested");
	expect_bad("{\"a\": 1, \"a\": 2}", "duplicate key");
	expect_bad("{\"a\": 1} x", "trailing bytes");
	expect_bad("{\"a\": 01}", "expected ',' or '}'");
	expect_bad("{\"a\": 1.}", "bad number");
	expect_bad("{\"a\": -}", "bad number");
	expect_bad("{\"a\": tru}", "expected a value");
	expect_bad("{\"a\": \"x}", "unterminated string");
	expect_bad("{\"a\": \"\x01\"}", "control character");
	expect_bad("{\"a\": \"\xc3\x28\"}", "invalid UTF-8");
	expect_bad("{\"a\": \"\xed\xa0\x80\"}", "invalid UTF-8"); /* a surrogate */
	expect_bad("{\"a\": \"\xc0\xaf\"}", "invalid UTF-8");      /* overlong */
	expect_bad("{\"a\": \"\\ud800\"}", "lone surrogate");
	expect_bad("{\"a\": \"\\u0000\"}", "\\u0000");
	expect_bad("{\"a\": \"\\x\"}", "bad escape");
	expect_bad("{a: 1}", "expected a key string");
	expect_bad("{\"a\" 1}", "expected ':'");
	expect_bad("{\"a\": 1,}", "expected a key string");
}

static void test_json_writer(void)
{
	static struct json_object o;
	char buf[256], small[24], why[128];
	struct json_writer w;

	json_writer_init(&w, buf, sizeof(buf));
	json_put_bool(&w, "ok", true);
	json_put_string(&w, "s", "a\"b\\c\n\x01");
	json_put_int(&w, "i", -42);
	json_put_double(&w, "d", 1.0 / 0.0, 2);
	json_put_members(&w, "{\"x\": 1, \"y\": \"z\"}");
	json_put_members(&w, "{}");
	T_CMP_INT(json_writer_finish(&w), >, 0);
	T_ASSERT(strcmp(buf, "{\"ok\": true, \"s\": \"a\\\"b\\\\c\\u000a\\u0001\", \"i\": -42, "
			"\"d\": null, \"x\": 1, \"y\": \"z\"}") == 0);
	T_EQ_INT(parse(buf, &o, why), 0);
	T_ASSERT(strcmp(json_get_string(&o, "s"), "a\"b\\c\n\x01") == 0);
	json_writer_init(&w, small, sizeof(small));
	json_put_string(&w, "key", "a value that does not fit");
	T_EQ_INT(json_writer_finish(&w), -ENOSPC);
}

/* ---- a running facetd ---- */

static struct svc facetd;
static int daemon_up;

static const char *sock(void)
{
	const char *args[] = { "--source", "synthetic", "--size", "160x120", "--alpha", "50", NULL };

	if (!daemon_up) {
		svc_start(&facetd, "control", args, NULL);
		daemon_up = 1;
	}
	return facetd.sock;
}

static const char *ask(const char *request)
{
	return svc_ask(sock(), request);
}

static void expect(const char *request, const char *want)
{
	const char *reply = ask(request);

	if (!strstr(reply, want))
		t_fail(__FILE__, __LINE__, "%s -> %s: no '%s'", request, reply, want);
}

static void test_socket_mode(void)
{
	struct stat st;

	T_EQ_INT(stat(sock(), &st), 0);
	T_ASSERT(S_ISSOCK(st.st_mode));
	T_EQ_INT(st.st_mode & 0777, 0600);
}

static void test_stats_and_get(void)
{
	static const char *const keys[] = {
		"\"ok\": true", "\"source\": \"synthetic\"", "\"width\": 160", "\"res\": 128",
		"\"frames_captured\": ", "\"fps_inference\": ", "\"latency_ms_p50\": ",
		"\"cpu_percent\": ", "\"camera\": ", "\"readers\": ", "\"paused\": false",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		expect("{\"cmd\": \"stats\"}", keys[i]);
	expect("{\"cmd\": \"get\"}", "\"res\": \"128\"");
	expect("{\"cmd\": \"get\"}", "\"alpha\": \"50\"");
	expect("{\"cmd\": \"get\"}", "\"fps\": null");
	expect("{\"cmd\":\"get\",\"key\":\"size\"}", "{\"ok\": true, \"size\": \"160x120\"}");
}

static void test_set(void)
{
	expect("{\"cmd\": \"set\", \"key\": \"res\", \"value\": 160}", "\"applied\": \"live\"");
	expect("{\"cmd\": \"get\", \"key\": \"res\"}", "\"res\": \"160\"");
	expect("{\"cmd\": \"stats\"}", "\"res\": 160");
	expect("{\"cmd\": \"set\", \"key\": \"alpha\", \"value\": \"30\"}", "\"alpha\": \"30\"");
	expect("{\"cmd\": \"set\", \"key\": \"alpha\", \"value\": \"30\"}", "\"applied\": \"unchanged\"");
	expect("{\"cmd\": \"set\", \"key\": \"size\", \"value\": \"192x144\"}", "\"applied\": \"restarted\"");
	expect("{\"cmd\": \"stats\"}", "\"width\": 192");
	expect("{\"cmd\": \"set\", \"key\": \"res\", \"value\": 95}", "res: '95' is not a whole number");
	expect("{\"cmd\": \"set\", \"key\": \"res\", \"value\": true}", "res: 'true'");
	expect("{\"cmd\": \"set\", \"key\": \"bogus\", \"value\": 1}", "unknown key 'bogus'");
	expect("{\"cmd\": \"set\", \"key\": \"model\", \"value\": \"x\"}", "model: read at start only");
	expect("{\"cmd\": \"set\", \"key\": \"config\", \"value\": \"x\"}", "config: not a setting");
	expect("{\"cmd\": \"set\", \"key\": \"res\"}", "set needs \\\"key\\\" and \\\"value\\\"");
	expect("{\"cmd\": \"set\", \"key\": \"source\", \"value\": \"y4m:/nonexistent.y4m\"}",
	       "/nonexistent.y4m: cannot open");
	expect("{\"cmd\": \"get\", \"key\": \"source\"}", "\"source\": \"synthetic\""); /* kept */
	expect("{\"cmd\": \"get\", \"key\": \"help\"}", "unknown key 'help'");
	expect("{\"cmd\": \"get\", \"key\": 1}", "\\\"key\\\" must be a string");
}

static void test_pause_resume_snapshot(void)
{
	char path[512], err[256];
	struct image img;

	snprintf(path, sizeof(path), "{\"cmd\": \"snapshot\", \"path\": \"%s/snap.png\"}", t_tmpdir());
	expect("{\"cmd\": \"pause\"}", "{\"ok\": true, \"paused\": true}");
	expect("{\"cmd\": \"stats\"}", "\"paused\": true");
	expect(path, "paused: no frame to take");
	expect("{\"cmd\": \"resume\"}", "{\"ok\": true, \"paused\": false}");
	expect(path, "\"ok\": true");
	snprintf(path, sizeof(path), "%s/snap.png", t_tmpdir());
	T_EQ_INT(image_load(path, &img, err, sizeof(err)), 0);
	T_CMP_INT(img.width, >=, 160);
	image_free(&img);
	expect("{\"cmd\": \"snapshot\", \"path\": \"relative.png\"}", "absolute \\\"path\\\"");
	expect("{\"cmd\": \"snapshot\", \"path\": \"/nonexistent/dir/x.png\"}", "/nonexistent/dir/x.png: ");
}

static void test_garbage_requests(void)
{
	expect("hello", "bad request: expected an object at byte 0");
	expect("[\"stats\"]", "bad request: expected an object");
	expect("{\"cmd\": {\"x\": 1}}", "bad request: nested");
	expect("{\"cmd\": \"stats\"", "bad request: expected ',' or '}'");
	expect("{\"cmd\": 1}", "bad request: no \\\"cmd\\\" string");
	expect("{}", "bad request: no \\\"cmd\\\" string");
	expect("{\"cmd\": \"launch\"}", "unknown command 'launch'");
	expect("{\"cmd\": \"stats\", \"verbose\": true}", "stats: unexpected member 'verbose'");
	expect("{\"cmd\": \"st\xffts\"}", "invalid UTF-8");
	expect("{\"cmd\": \"stats\"} {\"cmd\": \"stats\"}", "trailing bytes");
}

/* Sends lines on one connection, one reply each. */
static void exchange(int fd, const char *line, size_t len, char *reply, size_t cap)
{
	T_EQ_INT(send(fd, line, len, MSG_NOSIGNAL), (long long)len);
	int r = svc_read_line(fd, reply, cap, 30000);
	if (r < 0)
		t_fail(__FILE__, __LINE__, "no reply after %zu bytes: %s", len, strerror(-r));
}

static void test_oversized_and_pipelined(void)
{
	static char big[10000];
	char reply[16384];
	int fd = svc_connect(sock());

	T_CMP_INT(fd, >=, 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	exchange(fd, big, sizeof(big), reply, sizeof(reply));
	T_STR_CONTAINS(reply, "request longer than 4096 bytes");
	const char *get = "{\"cmd\": \"get\", \"key\": \"res\"}\n";
	exchange(fd, get, strlen(get), reply, sizeof(reply));
	T_STR_CONTAINS(reply, "\"ok\": true");
	/* two requests in one write, blank lines ignored: two replies in order */
	const char *two = "\n{\"cmd\": \"pause\"}\r\n  \n{\"cmd\": \"resume\"}\n";
	exchange(fd, two, strlen(two), reply, sizeof(reply));
	T_STR_CONTAINS(reply, "\"paused\": true");
	T_EQ_INT(svc_read_line(fd, reply, sizeof(reply), 30000), 0);
	T_STR_CONTAINS(reply, "\"paused\": false");
	close(fd);
}

/* Random bytes, broken JSON and mutated requests: one reply a line, and
 * facetd still answers afterwards. */
static void test_fuzz(void)
{
	static char line[6000];
	static const char *const seeds[] = { "{\"cmd\": \"stats\"}", "{\"cmd\": \"get\", \"key\": \"res\"}" };
	char reply[16384];
	int fd = svc_connect(sock());

	srand(1234);
	T_CMP_INT(fd, >=, 0);
	for (int i = 0; i < 400; i++) {
		size_t n;
		if (i % 2) {
			n = 1 + (size_t)rand() % (i % 10 == 1 ? 5500 : 300);
			for (size_t k = 0; k < n; k++)
				line[k] = (char)(rand() % 256);
		} else {
			n = strlen(seeds[i % 4 / 2]);
			memcpy(line, seeds[i % 4 / 2], n);
			for (int k = 0; k < 1 + rand() % 3; k++)
				line[rand() % n] = (char)(rand() % 256);
		}
		for (size_t k = 0; k < n; k++)
			if (line[k] == '\n')
				line[k] = '#';
		line[0] = line[0] == ' ' || line[0] == '\t' || line[0] == '\r' ? '#' : line[0];
		line[n - 1] = line[n - 1] == '\r' ? '#' : line[n - 1];
		line[n] = '\n';
		exchange(fd, line, n + 1, reply, sizeof(reply));
		T_STR_CONTAINS(reply, "{\"ok\": ");
	}
	close(fd);
	expect("{\"cmd\": \"get\", \"key\": \"res\"}", "\"ok\": true");
}

/* Waits until facetd answers with ok (slots of clients gone are freed
 * as the I/O thread notices). */
static void wait_answer(const char *request, char *reply, size_t len)
{
	for (int i = 0; i < 100; i++) {
		if (svc_request(sock(), request, reply, len) == 0 && strstr(reply, "\"ok\": true"))
			return;
		usleep(100 * 1000);
	}
	t_fail(__FILE__, __LINE__, "no answer to %s: %s", request, reply);
}

static void test_vanishing_and_silent_clients(void)
{
	char reply[16384];
	int fd;

	/* half a request, then gone */
	fd = svc_connect(sock());
	T_EQ_INT(send(fd, "{\"cmd\": \"sta", 12, MSG_NOSIGNAL), 12);
	close(fd);
	/* a whole request, gone before the reply */
	for (int i = 0; i < 20; i++) {
		fd = svc_connect(sock());
		if (fd >= 0 && send(fd, "{\"cmd\": \"stats\"}\n", 17, MSG_NOSIGNAL) < 0)
			t_fail(__FILE__, __LINE__, "send: %s", strerror(errno));
		close(fd);
	}
	wait_answer("{\"cmd\": \"get\", \"key\": \"res\"}", reply, sizeof(reply));
	/* one that asks and asks but never reads */
	int silent = svc_connect(sock());
	fcntl(silent, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 100000; i++)
		if (send(silent, "{\"cmd\": \"get\"}\n", 15, MSG_NOSIGNAL) < 0)
			break;
	for (int i = 0; i < 5; i++) {
		T_EQ_INT(svc_request(sock(), "{\"cmd\": \"stats\"}", reply, sizeof(reply)), 0);
		T_STR_CONTAINS(reply, "\"clients\": 2"); /* the silent one and this one */
	}
	close(silent);
	wait_answer("{\"cmd\": \"get\", \"key\": \"res\"}", reply, sizeof(reply));
}

static void test_too_many_clients(void)
{
	int fds[24], refused = 0;
	char reply[1024];

	for (int i = 0; i < 24; i++)
		fds[i] = svc_connect(sock());
	usleep(300 * 1000);
	for (int i = 0; i < 24; i++) {
		if (fds[i] >= 0 && svc_read_line(fds[i], reply, sizeof(reply), 200) == 0) {
			T_STR_CONTAINS(reply, "too many clients");
			refused++;
		}
	}
	T_CMP_INT(refused, >=, 24 - 16);
	for (int i = 0; i < 24; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	wait_answer("{\"cmd\": \"get\", \"key\": \"res\"}", reply, sizeof(reply));
}

/* Child as nobody: 0 refused as expected, 1 when let in. */
static int try_as_nobody(const char *path, int want_errno)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		char reply[512];
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		int fd = svc_connect(path);
		if (fd < 0)
			_exit(fd == -want_errno ? 0 : 4);
		if (send(fd, "{\"cmd\": \"stats\"}\n", 17, MSG_NOSIGNAL) < 0)
			_exit(0);
		if (svc_read_line(fd, reply, sizeof(reply), 5000) < 0)
			_exit(0);
		_exit(strstr(reply, "permission denied") ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 9;
}

static void test_other_users_refused(void)
{
	char dir[512];

	if (geteuid() != 0)
		t_skip("needs root to act as another user");
	/* a socket in a directory anyone may enter, so that only the socket's
	 * own mode and the credentials check stand in the way */
	snprintf(dir, sizeof(dir), "%s/open", t_tmpdir());
	T_EQ_INT(mkdir(dir, 0755), 0);
	T_EQ_INT(chmod(t_tmpdir(), 0711), 0);
	const char *args[] = { "--source", "synthetic", "--size", "96x64", NULL };
	struct svc d;
	svc_start(&d, "open/other", args, NULL);
	T_EQ_INT(try_as_nobody(d.sock, EACCES), 0);      /* mode 0600 */
	T_EQ_INT(chmod(d.sock, 0666), 0);
	T_EQ_INT(try_as_nobody(d.sock, 0), 0);           /* SO_PEERCRED */
	T_STR_CONTAINS(svc_ask(d.sock, "{\"cmd\": \"get\", \"key\": \"res\"}"), "\"ok\": true");
	T_EQ_INT(svc_stop(&d, SIGTERM), 0);
}

/* ---- facetctl ---- */

static int facetctl(char *out, size_t outlen, char *err, size_t errlen, const char *a1,
		    const char *a2, const char *a3, const char *a4)
{
	const char *argv[] = { svc_bin("facetctl"), "--socket", sock(), a1, a2, a3, a4, NULL };

	return svc_run(argv, out, outlen, err, errlen, 60);
}

static void test_facetctl(void)
{
	static char out[65536];
	char err[4096];

	T_EQ_INT(facetctl(out, sizeof(out), err, sizeof(err), "stats", NULL, NULL, NULL), 0);
	T_STR_CONTAINS(out, "frames_captured");
	T_STR_CONTAINS(out, "cpu_percent");
	T_EQ_INT(facetctl(out, sizeof(out), err, sizeof(err), "--json", "get", "res", NULL), 0);
	T_STR_CONTAINS(out, "{\"ok\": true, \"res\": ");
	T_EQ_INT(facetctl(out, sizeof(out), err, sizeof(err), "set", "alpha", "20", NULL), 0);
	T_STR_CONTAINS(out, "alpha = 20   (live)");
	T_EQ_INT(facetctl(out, sizeof(out), err, sizeof(err), "get", NULL, NULL, NULL), 0);
	T_STR_CONTAINS(out, "alpha = 20\n");
	T_STR_CONTAINS(out, "# fps is not set\n");
	T_EQ_INT(facetctl(out, sizeof(out), err, sizeof(err), "set", "res", "9", NULL), 1);
	T_STR_CONTAINS(err, "facetctl: res: '9' is not a whole number");
	T_EQ_INT(facetctl(out, sizeof(out), err, sizeof(err), "pause", NULL, NULL, NULL), 0);
	T_STR_CONTAINS(out, "paused");
	T_EQ_INT(facetctl(out, sizeof(out), err, sizeof(err), "resume", NULL, NULL, NULL), 0);
	T_EQ_INT(facetctl(out, sizeof(out), err, sizeof(err), "reload", NULL, NULL, NULL), 0);
	T_STR_CONTAINS(out, "reloaded ");
	T_EQ_INT(facetctl(out, sizeof(out), err, sizeof(err), "launch", NULL, NULL, NULL), 2);
	T_STR_CONTAINS(err, "unknown command 'launch'");
	T_EQ_INT(facetctl(out, sizeof(out), err, sizeof(err), "set", "res", NULL, NULL), 2);

	const char *argv[] = { svc_bin("facetctl"), "--socket", "/nonexistent.sock", "stats", NULL };
	T_EQ_INT(svc_run(argv, out, sizeof(out), err, sizeof(err), 30), 1);
	T_STR_CONTAINS(err, "cannot connect to /nonexistent.sock");
}

static void test_facetctl_watch(void)
{
	static char out[65536];
	char err[4096];
	const char *argv[] = { svc_bin("facetctl"), "--socket", sock(), "stats", "--watch", NULL };

	/* killed after its time: the exit status is 128 + SIGTERM */
	T_EQ_INT(svc_run(argv, out, sizeof(out), err, sizeof(err), 3), 128 + SIGTERM);
	const char *second = strstr(out, "frames_captured");
	T_ASSERT(second && strstr(second + 1, "frames_captured"));
}

static void test_daemon_stops_cleanly(void)
{
	sock();
	int st = svc_stop(&facetd, SIGTERM);
	daemon_up = 0;
	if (st != 0)
		t_fail(__FILE__, __LINE__, "facetd exited with %d: %s", st, svc_log(&facetd));
	T_ASSERT(access(facetd.sock, F_OK) != 0); /* the socket is removed */
}

T_MAIN(T_CASE(test_json_reader),
       T_CASE(test_json_copy),
       T_CASE(test_json_rejects),
       T_CASE(test_json_writer),
       T_CASE(test_socket_mode),
       T_CASE(test_stats_and_get),
       T_CASE(test_set),
       T_CASE(test_pause_resume_snapshot),
       T_CASE(test_garbage_requests),
       T_CASE(test_oversized_and_pipelined),
       T_CASE(test_fuzz),
       T_CASE(test_vanishing_and_silent_clients),
       T_CASE(test_too_many_clients),
       T_CASE(test_other_users_refused),
       T_CASE(test_facetctl),
       T_CASE(test_facetctl_watch),
       T_CASE(test_daemon_stops_cleanly))
