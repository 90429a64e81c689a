/* The config file: syntax, values through the option table, errors named
 * PATH:LINE, the command line over the file, facetd refusing a bad file,
 * and reloads (SIGHUP and `reload`) with good and bad files. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "configfile.h"
#include "harness.h"
#include "json.h"
#include "options.h"
#include "service-util.h"

static const char *tmp_file(const char *name, const char *text)
{
	static char path[8][512];
	static int next;
	char *p = path[next++ % 8];

	snprintf(p, sizeof(path[0]), "%s/%s", t_tmpdir(), name);
	svc_write_file(p, text);
	return p;
}

/* Defaults, then the file. */
static int read_into(struct config *c, const char *path, struct options *o, char *err,
		     size_t len)
{
	options_defaults(o);
	return config_read(c, path, o, err, len);
}

static void test_file_values(void)
{
	struct options cli, o;
	char err[512] = "";

	options_defaults(&cli);
	struct config *c = config_create(&cli);
	const char *path = tmp_file("good.conf",
		"# facetd\n"
		"; also a comment\n"
		"\n"
		"  source = y4m:/tmp/in.y4m   \n"
		"res=160\n"
		"alpha = 30 # opacity\n"
		"output = \"y4m:/tmp/a b#c.y4m\"  # quoted\n"
		"output = y4m:/tmp/x#y.y4m\n"
		"no-pacing = yes\n"
		"size = 320x240\r\n"
		"format = nv12\n"
		"stats-json = /tmp/facetd stats.json\n"
		"log-level = warning\n");

	T_EQ_INT(read_into(c, path, &o, err, sizeof(err)), 0);
	T_ASSERT(strcmp(o.source, "y4m:/tmp/in.y4m") == 0);
	T_EQ_INT(o.res, 160);
	T_EQ_INT(o.alpha, 30);
	T_EQ_INT(o.n_outputs, 2);
	T_ASSERT(strcmp(o.outputs[0], "y4m:/tmp/a b#c.y4m") == 0);
	T_ASSERT(strcmp(o.outputs[1], "y4m:/tmp/x#y.y4m") == 0);
	T_EQ_INT(o.no_pacing, 1);
	T_EQ_INT(o.width, 320);
	T_EQ_INT(o.height, 240);
	T_EQ_INT(o.log_level, LOG_LVL_WARN);
	T_ASSERT(strcmp(o.format, "nv12") == 0);
	T_ASSERT(strcmp(o.stats_json, "/tmp/facetd stats.json") == 0);
	T_EQ_INT(o.threads, 2); /* untouched: the default */
	config_destroy(c);
}

static void expect_line_error(const char *text, const char *want)
{
	struct options cli, o;
	char err[512] = "", full[600];

	options_defaults(&cli);
	struct config *c = config_create(&cli);
	const char *path = tmp_file("bad.conf", text);
	T_EQ_INT(read_into(c, path, &o, err, sizeof(err)), -EINVAL);
	snprintf(full, sizeof(full), "%s:%s", path, want);
	T_STR_CONTAINS(err, full);
	config_destroy(c);
}

static void test_bad_lines_named(void)
{
	expect_line_error("res = 160\nbogus\n", "2: expected KEY = VALUE");
	expect_line_error("res: 160\n", "1: expected KEY = VALUE");
	expect_line_error("frobnicate = 1\n", "1: unknown key 'frobnicate'");
	expect_line_error("\n\nres = 95\n", "3: res: '95' is not a whole number in [96, 256]");
	expect_line_error("res = 160\nres = 192\n", "2: res: given twice (first on line 1)");
	expect_line_error("source = \"synthetic\n", "1: unterminated quoted value");
	expect_line_error("source = \"a\" b\n", "1: text after the quoted value");
	expect_line_error("[facetd]\n", "1: sections are not used");
	expect_line_error("config = /etc/x.conf\n", "1: config: not a setting");
	expect_line_error("help = true\n", "1: help: not a setting");
	expect_line_error("res =\n", "1: res: no value");
	expect_line_error("no-pacing = maybe\n", "1: no-pacing: 'maybe' is not true or false");
	expect_line_error("size = 10x10\n", "1: size: '10x10' is not WIDTHxHEIGHT");
	expect_line_error("log-level = loud\n", "1: log-level: 'loud'");
	expect_line_error("format = mjpg\n", "1: format: 'mjpg' is not auto, yuyv, mjpeg or nv12");
}

static void test_nul_byte_line(void)
{
	struct options cli, o;
	char err[512] = "", path[512];

	snprintf(path, sizeof(path), "%s/nul.conf", t_tmpdir());
	FILE *f = fopen(path, "w");
	fwrite("res = 160\nalpha = 3\0000\n", 1, 23, f);
	fclose(f);
	options_defaults(&cli);
	struct config *c = config_create(&cli);
	T_EQ_INT(read_into(c, path, &o, err, sizeof(err)), -EINVAL);
	T_STR_CONTAINS(err, ":2: NUL byte in the line");
	config_destroy(c);
}

static int parse_cli(struct options *o, const char **args)
{
	char *argv[32];
	int argc = 0;
	FILE *null = fopen("/dev/null", "w");

	argv[argc++] = (char *)"facetd";
	while (*args)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	options_defaults(o);
	int r = options_parse(o, argc, argv, null, null);
	fclose(null);
	return r;
}

static void test_command_line_wins(void)
{
	struct options cli, o;
	char err[512] = "";
	const char *path = tmp_file("cli.conf", "res = 160\nalpha = 30\noutput = y4m:/tmp/a.y4m\n"
					"output = y4m:/tmp/b.y4m\nlog-level = error\n");
	const char *args[] = { "--config", path, "--res", "200", "-o", "y4m:/tmp/c.y4m", "-v", NULL };

	T_EQ_INT(parse_cli(&cli, args), OPTIONS_RUN);
	struct config *c = config_create(&cli);
	T_ASSERT(strcmp(config_path(c), path) == 0);
	T_EQ_INT(config_load(c, &o, err, sizeof(err)), 0);
	T_EQ_INT(o.res, 200);
	T_EQ_INT(o.alpha, 30);
	T_EQ_INT(o.n_outputs, 1);
	T_ASSERT(strcmp(o.outputs[0], "y4m:/tmp/c.y4m") == 0);
	T_EQ_INT(o.log_level, LOG_LVL_DEBUG);
	config_destroy(c);
}

static void test_missing_files(void)
{
	struct options cli, o;
	char err[512] = "", path[4096], dir[512];
	const char *args[] = { "--config", "/nonexistent/facetd.conf", NULL };

	T_EQ_INT(parse_cli(&cli, args), OPTIONS_RUN);
	struct config *c = config_create(&cli);
	o.res = 1;
	T_EQ_INT(config_load(c, &o, err, sizeof(err)), -ENOENT);
	T_STR_CONTAINS(err, "/nonexistent/facetd.conf: cannot open");
	T_EQ_INT(o.res, 1); /* untouched on failure */
	config_destroy(c);

	snprintf(dir, sizeof(dir), "%s/xdg", t_tmpdir());
	setenv("XDG_CONFIG_HOME", dir, 1);
	T_EQ_INT(config_default_path(path, sizeof(path)), 0);
	T_STR_CONTAINS(path, "/xdg/facetd/facetd.conf");
	options_defaults(&cli);
	c = config_create(&cli);
	T_EQ_INT(config_load(c, &o, err, sizeof(err)), 0); /* a missing default is fine */
	T_EQ_INT(o.res, 128);
	config_destroy(c);
	unsetenv("XDG_CONFIG_HOME");
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", "/home/someone", 1);
	T_EQ_INT(config_default_path(path, sizeof(path)), 0);
	T_ASSERT(strcmp(path, "/home/someone/.config/facetd/facetd.conf") == 0);
	if (home)
		setenv("HOME", home, 1);
	free(home);
}

static void test_set_replaces_and_copies(void)
{
	struct options cli, o;
	char err[512] = "", value[64];

	options_defaults(&cli);
	struct config *c = config_create(&cli);
	options_defaults(&o);
	T_EQ_INT(options_set(&o, "output", "y4m:/tmp/a.y4m", err, sizeof(err)), 0);
	T_EQ_INT(options_set(&o, "output", "y4m:/tmp/b.y4m", err, sizeof(err)), 0);
	T_EQ_INT(o.n_outputs, 2);
	snprintf(value, sizeof(value), "y4m:/tmp/c.y4m");
	T_EQ_INT(config_set(c, &o, "output", value, err, sizeof(err)), 0);
	memset(value, 'x', sizeof(value) - 1);
	T_EQ_INT(o.n_outputs, 1);
	T_ASSERT(strcmp(o.outputs[0], "y4m:/tmp/c.y4m") == 0);
	T_EQ_INT(config_set(c, &o, "res", "300", err, sizeof(err)), -EINVAL);
	T_STR_CONTAINS(err, "res: '300'");
	T_EQ_INT(o.res, 128);
	T_EQ_INT(config_set(c, &o, "nope", "1", err, sizeof(err)), -ENOENT);
	config_destroy(c);
}

/* Every setting's value, written by options_get, reads back the same. */
static void test_table_round_trip(void)
{
	struct options a, b;
	char err[512], buf[512];
	const char *args[] = { "-s", "y4m:/tmp/x.y4m", "-S", "320x240", "-F", "25", "-P", "-n", "9",
			       "-r", "192", "-a", "10", "-j", "/tmp/s.json", "-f", "mjpeg", "-l",
			       "warning", NULL };

	T_EQ_INT(parse_cli(&a, args), OPTIONS_RUN);
	options_defaults(&b);
	struct config *c = config_create(&b);
	for (size_t i = 0; i < options_count(); i++) {
		if (options_when(i) == OPTIONS_CLI_ONLY || strcmp(options_name(i), "verbose") == 0)
			continue;
		int r = options_get(&a, i, buf, sizeof(buf));
		T_CMP_INT(r, >=, 0);
		if (r == 0 && config_set(c, &b, options_name(i), buf, err, sizeof(err)) < 0)
			t_fail(__FILE__, __LINE__, "%s = %s: %s", options_name(i), buf, err);
	}
	T_EQ_INT(options_diff(&a, &b), 0);
	b.res = 160;
	b.width = 640;
	options_names(options_diff(&a, &b), buf, sizeof(buf));
	T_ASSERT(strcmp(buf, "size, res") == 0);
	options_copy(&b, &a, options_mask(OPTIONS_LIVE));
	T_EQ_INT(b.res, 192);
	T_EQ_INT(b.width, 640); /* size restarts: not in the live mask */
	config_destroy(c);
}

/* ---- facetd itself ---- */

static void test_facetd_refuses_bad_file(void)
{
	char out[4096], err[4096];
	const char *path = tmp_file("refused.conf", "res = 160\nsize = 320*240\n");
	const char *argv[] = { svc_bin("facetd"), "--config", path, NULL };

	T_EQ_INT(svc_run(argv, out, sizeof(out), err, sizeof(err), 60), 2);
	T_STR_CONTAINS(err, path);
	T_STR_CONTAINS(err, ":2: size: '320*240' is not WIDTHxHEIGHT");
}

static void test_facetd_runs_with_file(void)
{
	char out[4096], err[8192];
	const char *path = tmp_file("run.conf", "source = synthetic\nsize = 96x64\nres = 160\n"
					"no-pacing = true\nframes = 3\nstats-json = -\n");
	const char *argv[] = { svc_bin("facetd"), "--config", path, "--model",
			       t_path("../model/weights/default.fpw"), "--control",
			       "/nonexistent/dir/sock", NULL, NULL, NULL };

	/* the control socket path is bad: facetd says so and refuses to start */
	T_EQ_INT(svc_run(argv, out, sizeof(out), err, sizeof(err), 120), 1);
	T_STR_CONTAINS(err, "/nonexistent/dir/sock");
	argv[5] = "--frames";
	argv[6] = "2";
	argv[7] = NULL;
	T_EQ_INT(svc_run(argv, out, sizeof(out), err, sizeof(err), 120), 0);
	T_STR_CONTAINS(out, "\"width\": 96, \"height\": 64, \"res\": 160");
	T_STR_CONTAINS(out, "\"frames_written\": 2,"); /* the command line's --frames */
}

/* A grey 64x48 y4m file of n frames at fps, at dir/name. */
static const char *grey_y4m(const char *name, int fps, int n)
{
	static char text[256 * 1024];
	size_t len = (size_t)snprintf(text, sizeof(text), "YUV4MPEG2 W64 H48 F%d:1 C420jpeg\n", fps);

	for (int i = 0; i < n && len + 6 + 64 * 48 * 3 / 2 < sizeof(text); i++) {
		len += (size_t)snprintf(text + len, sizeof(text) - len, "FRAME\n");
		memset(text + len, 100, 64 * 48); /* no NUL: the file is written as text */
		memset(text + len + 64 * 48, 128, 64 * 48 / 2);
		len += 64 * 48 * 3 / 2;
	}
	text[len] = 0;
	return tmp_file(name, text);
}

/* A file with --size and --fps: its frames are scaled to the size, its own
 * rate is kept, which the log says once, and the stats say it ended. */
static void test_facetd_file_size_and_rate(void)
{
	char out[8192], err[8192], spec[600], sock[600];
	const char *argv[] = { svc_bin("facetd"), "--model", t_path("../model/weights/default.fpw"),
			       "--control", sock, "--source", spec, "--size", "96x80", "--fps", "10",
			       "--stats-json", "-", NULL };
	const char *note;

	snprintf(spec, sizeof(spec), "y4m:%s", grey_y4m("rate.y4m", 25, 3));
	snprintf(sock, sizeof(sock), "%s/rate.sock", t_tmpdir());
	T_EQ_INT(svc_run(argv, out, sizeof(out), err, sizeof(err), 120), 0);
	T_STR_CONTAINS(out, "\"width\": 96, \"height\": 80");
	T_STR_CONTAINS(out, "\"state\": \"stopped\", \"stop_reason\": \"source-ended\"");
	note = strstr(err, "rate.y4m: --fps is not applied to a file: it plays at its own 25 fps");
	T_ASSERT(note);
	T_ASSERT(!strstr(note + strlen("rate.y4m: --fps"), "--fps is not applied")); /* once */
}

/* An output that refuses every frame (a y4m file on /dev/full): facetd
 * runs to its end, counts each refusal, says why once, and the other
 * output gets every frame. */
static void test_facetd_output_refuses(void)
{
	char out[8192], err[8192], sock[600], good[640], path[600];
	const char *argv[] = { svc_bin("facetd"), "--model", t_path("../model/weights/default.fpw"),
			       "--control", sock, "--source", "synthetic", "--size", "96x64",
			       "--output", "y4m:/dev/full", "--output", good, "--frames", "6",
			       "--stats-json", "-", NULL };
	const char *said;
	FILE *f;
	long bytes;
	char line[128];

	snprintf(sock, sizeof(sock), "%s/full.sock", t_tmpdir());
	snprintf(path, sizeof(path), "%s/good.y4m", t_tmpdir());
	snprintf(good, sizeof(good), "y4m:%s", path);
	T_EQ_INT(svc_run(argv, out, sizeof(out), err, sizeof(err), 120), 0);
	T_STR_CONTAINS(out, "\"output_errors\": 6");
	T_STR_CONTAINS(out, "\"stop_reason\": \"frame-limit\"");
	said = strstr(err, "/dev/full: frame refused: No space left on device");
	T_ASSERT(said);
	T_ASSERT(!strstr(said + strlen("/dev/full: frame refused"), "frame refused")); /* once */
	f = fopen(path, "rb");
	T_ASSERT(f && fgets(line, sizeof(line), f)); /* the header */
	T_ASSERT(fseek(f, 0, SEEK_END) == 0);
	bytes = ftell(f) - (long)strlen(line);
	fclose(f);
	T_EQ_INT(bytes, 6 * (long)(strlen("FRAME\n") + 96 * 64 * 3 / 2));
}

/* SIGTERM: the --stats-json file is written once every thread has ended,
 * whole (one JSON object and a newline, no PATH.tmp left), and says so and
 * why; a source path with quotes and a backslash is escaped. */
static void test_facetd_sigterm_stats(void)
{
	static struct json_object o;
	char spec[600], path[600], tmp[620], line[8192] = "", why[256];
	const char *args[] = { "--source", spec, "--stats-json", path, NULL };
	struct svc d;
	size_t len;
	FILE *f;

	snprintf(spec, sizeof(spec), "y4m:%s", grey_y4m("q\"uo\\te.y4m", 5, 50)); /* 10 s */
	snprintf(path, sizeof(path), "%s/sigterm stats.json", t_tmpdir());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(path);
	svc_start(&d, "sigterm", args, NULL);
	for (int i = 0; i < 600 && strstr(svc_ask(d.sock, "{\"cmd\": \"stats\"}"),
					  "\"frames_written\": 0,"); i++)
		usleep(100 * 1000);
	T_ASSERT(access(path, F_OK) != 0); /* written at exit */
	T_EQ_INT(svc_stop(&d, SIGTERM), 0);
	T_ASSERT(access(tmp, F_OK) != 0);
	f = fopen(path, "r");
	T_ASSERT(f);
	len = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[len] = 0;
	T_ASSERT(len > 2 && line[len - 1] == '\n' && !strchr(line, '\n')[1]); /* one line */
	line[len - 1] = 0;
	if (json_parse(line, strlen(line), &o, why, sizeof(why)) < 0)
		t_fail(__FILE__, __LINE__, "%s: %s", line, why);
	T_ASSERT(strcmp(json_get_string(&o, "source"), spec) == 0);
	T_ASSERT(strcmp(json_get_string(&o, "state"), "stopped") == 0);
	T_ASSERT(strcmp(json_get_string(&o, "stop_reason"), "signal") == 0);
	T_ASSERT(strcmp(json_get(&o, "frames_written")->value, "0") != 0);
	f = fopen(d.out, "r"); /* nothing on stdout */
	T_ASSERT(f && fgetc(f) == EOF);
	fclose(f);
}

/* --stats-json: a path that cannot be written (its folder does not exist)
 * is an error at exit that names it, and the exit status says so; - is
 * stdout, and a path that is not a regular file (/dev/stdout) is written as
 * it is. */
static void test_facetd_stats_json_paths(void)
{
	char out[8192], err[8192], bad[600], want[700], sock[600];
	const char *argv[] = { svc_bin("facetd"), "--model", t_path("fixtures/tiny.fpw"),
			       "--control", sock, "--source", "synthetic", "--size", "64x48",
			       "--no-pacing", "--frames", "1", "--stats-json", bad, NULL };

	snprintf(bad, sizeof(bad), "%s/no such folder/stats.json", t_tmpdir());
	snprintf(sock, sizeof(sock), "%s/paths.sock", t_tmpdir());
	T_EQ_INT(svc_run(argv, out, sizeof(out), err, sizeof(err), 120), 1);
	snprintf(want, sizeof(want), "--stats-json: cannot write %s: No such file or directory", bad);
	T_STR_CONTAINS(err, want);
	T_ASSERT(out[0] == 0);
	for (int i = 0; i < 2; i++) {
		snprintf(bad, sizeof(bad), "%s", i ? "/dev/stdout" : "-");
		T_EQ_INT(svc_run(argv, out, sizeof(out), err, sizeof(err), 120), 0);
		T_ASSERT(strncmp(out, "{\"source\": \"synthetic\", \"width\": 64,", 36) == 0);
		T_STR_CONTAINS(out, "\"frames_written\": 1,");
		T_ASSERT(strchr(out, '\n') && strchr(out, '\n')[1] == 0);
	}
}

static const char *get(const char *sock, const char *key)
{
	char req[256];

	snprintf(req, sizeof(req), "{\"cmd\": \"get\", \"key\": \"%s\"}", key);
	return svc_ask(sock, req);
}

/* Waits for a SIGHUP's reload to show in `get`. */
static void wait_get(const char *sock, const char *key, const char *want)
{
	for (int i = 0; i < 100 && !strstr(get(sock, key), want); i++)
		usleep(100 * 1000);
	T_STR_CONTAINS(get(sock, key), want);
}

static void test_reload_good_and_bad(void)
{
	struct svc d;
	const char *path = tmp_file("live.conf", "source = synthetic\nsize = 160x120\nres = 128\n");
	const char *args[] = { "--config", path, "--alpha", "20", NULL };

	svc_start(&d, "reload", args, NULL);
	svc_write_file(path, "source = synthetic\nsize = 160x120\nres = 160\nalpha = 70\n"
		       "refine = 2\n");
	kill(d.pid, SIGHUP);
	wait_get(d.sock, "res", "\"res\": \"160\"");
	T_STR_CONTAINS(get(d.sock, "refine"), "\"2\"");
	T_STR_CONTAINS(get(d.sock, "alpha"), "\"20\""); /* the command line still wins */

	svc_write_file(path, "res = 192\nrefine = 0\n");
	kill(d.pid, SIGHUP);
	/* signals are asynchronous: wait for this one's outcome before the
	 * file changes again */
	for (int i = 0; i < 100 && !strstr(svc_log(&d), "the running settings stay"); i++)
		usleep(100 * 1000);
	T_STR_CONTAINS(svc_log(&d), "reload: ");
	T_STR_CONTAINS(svc_log(&d), ":2: refine: '0' is not a whole number in [1, 64]; "
		       "the running settings stay");
	const char *r = svc_ask(d.sock, "{\"cmd\": \"reload\"}");
	T_STR_CONTAINS(r, "\"ok\": false");
	T_STR_CONTAINS(r, ":2: refine: '0' is not a whole number");
	T_STR_CONTAINS(get(d.sock, "res"), "\"160\""); /* untouched */

	svc_write_file(path, "source = synthetic\nsize = 192x144\nres = 160\nframes = 5\n");
	r = svc_ask(d.sock, "{\"cmd\": \"reload\"}");
	T_STR_CONTAINS(r, "\"ok\": true");
	T_STR_CONTAINS(r, "\"changed\": \"size, refine\"");
	T_STR_CONTAINS(r, "\"restarted\": true");
	T_STR_CONTAINS(svc_ask(d.sock, "{\"cmd\": \"stats\"}"), "\"width\": 192");
	T_STR_CONTAINS(get(d.sock, "frames"), "null"); /* read at start only */
	T_STR_CONTAINS(svc_log(&d), "frames: changed; takes effect when facetd starts again");

	svc_write_file(path, "source = y4m:/nonexistent.y4m\n");
	r = svc_ask(d.sock, "{\"cmd\": \"reload\"}");
	T_STR_CONTAINS(r, "/nonexistent.y4m");
	T_STR_CONTAINS(svc_ask(d.sock, "{\"cmd\": \"stats\"}"), "\"width\": 192");
	int st = svc_stop(&d, SIGTERM);
	if (st != 0)
		t_fail(__FILE__, __LINE__, "facetd exited with %d: %s", st, svc_log(&d));
}

T_MAIN(T_CASE(test_file_values),
       T_CASE(test_bad_lines_named),
       T_CASE(test_nul_byte_line),
       T_CASE(test_command_line_wins),
       T_CASE(test_missing_files),
       T_CASE(test_set_replaces_and_copies),
       T_CASE(test_table_round_trip),
       T_CASE(test_facetd_refuses_bad_file),
       T_CASE(test_facetd_runs_with_file),
       T_CASE(test_facetd_file_size_and_rate),
       T_CASE(test_facetd_output_refuses),
       T_CASE(test_facetd_sigterm_stats),
       T_CASE(test_facetd_stats_json_paths),
       T_CASE(test_reload_good_and_bad))
