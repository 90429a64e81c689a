/* facet-parse, facet-eval and facet-bench as a user runs them. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "render.h"

extern char **environ;

/* Runs argv with stdout and stderr into out (NUL-terminated); returns the
 * exit code. */
static int run(char *const argv[], char *out, size_t len)
{
	char path[512];
	posix_spawn_file_actions_t fa;
	int status, fd;
	pid_t pid;
	FILE *f;

	snprintf(path, sizeof(path), "%s/out.txt", t_tmpdir());
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	T_EQ_INT(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	T_EQ_INT(waitpid(pid, &status, 0), pid);
	f = fopen(path, "r");
	fd = f ? (int)fread(out, 1, len - 1, f) : 0;
	out[fd > 0 ? fd : 0] = 0;
	if (f)
		fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static const char *tool(const char *name)
{
	static char buf[4][512];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, 512, "%s/%s", getenv("FACETD_TOOLS_DIR"), name);
	return p;
}

static void test_parse_writes_labels_and_overlay(void)
{
	char out[4096], path[512], err[256];
	uint8_t *labels;
	struct image ov;
	int w, h, hist[256] = { 0 };

	T_EQ_INT(run((char *[]){ (char *)tool("facet-parse"), (char *)t_path("fixtures/face0.jpg"),
				 (char *)"-o", (char *)t_tmpdir(), (char *)"--size", (char *)"200x150",
				 (char *)"--model", (char *)t_path("../model/weights/default.fpw"), NULL },
		     out, sizeof(out)), 0);
	snprintf(path, sizeof(path), "%s/face0.labels.png", t_tmpdir());
	T_EQ_INT(image_load_labels(path, &labels, &w, &h, err, sizeof(err)), 0);
	T_EQ_INT(w, 200);
	T_EQ_INT(h, 150);
	for (int i = 0; i < w * h; i++)
		hist[labels[i]]++;
	for (int v = 19; v < 256; v++)
		T_EQ_INT(hist[v], 0);
	T_CMP_INT(hist[1], >, w * h / 20);  /* skin */
	T_CMP_INT(hist[0] + hist[13], >, w * h / 10); /* background, hair */
	free(labels);
	snprintf(path, sizeof(path), "%s/face0.overlay.png", t_tmpdir());
	T_EQ_INT(image_load(path, &ov, err, sizeof(err)), 0);
	T_EQ_INT(ov.width, 200);
	image_free(&ov);
}

static void test_parse_bad_input(void)
{
	char out[4096];

	T_EQ_INT(run((char *[]){ (char *)tool("facet-parse"), (char *)"x.jpg", NULL }, out, sizeof(out)), 2);
	T_STR_CONTAINS(out, "-o DIR is required");
	T_EQ_INT(run((char *[]){ (char *)tool("facet-parse"), (char *)"x.jpg", (char *)"-o", (char *)"/tmp",
				 (char *)"--size", (char *)"10y10", NULL }, out, sizeof(out)), 2);
	T_STR_CONTAINS(out, "--size: '10y10' is not WIDTHxHEIGHT");
	T_EQ_INT(run((char *[]){ (char *)tool("facet-parse"), (char *)"/nonexistent/x.jpg", (char *)"-o",
				 (char *)t_tmpdir(), NULL }, out, sizeof(out)), 1);
	T_STR_CONTAINS(out, "/nonexistent/x.jpg: cannot read");
	T_EQ_INT(run((char *[]){ (char *)tool("facet-parse"), (char *)t_path("fixtures/face0.jpg"),
				 (char *)"-o", (char *)t_tmpdir(), (char *)"--model",
				 (char *)t_path("fixtures/face0.jpg"), NULL }, out, sizeof(out)), 1);
	T_STR_CONTAINS(out, "not an FP-LIIF weights file");
}

/* A two-image set made of the fixtures: facet-eval's JSON has the keys,
 * and F1 is in [0, 1] with skin and hair found. */
static void test_eval_json(void)
{
	char out[8192], dir[512], cmd[8192];

	snprintf(dir, sizeof(dir), "%s/set", t_tmpdir());
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/images %s/masks && cp %s %s/images/a.jpg && cp %s %s/masks/a.png && "
		 "cp %s %s/images/b.jpg && cp %s %s/masks/b.png", dir, dir,
		 t_path("fixtures/face0.jpg"), dir, t_path("fixtures/face0-mask.png"), dir,
		 t_path("fixtures/face1.jpg"), dir, t_path("fixtures/face1-mask.png"), dir);
	T_EQ_INT(system(cmd), 0);
	T_EQ_INT(run((char *[]){ (char *)tool("facet-eval"), (char *)"--data", dir, (char *)"--json",
				 (char *)"--model", (char *)t_path("../model/weights/default.fpw"), NULL },
		     out, sizeof(out)), 0);
	T_STR_CONTAINS(out, "\"images\": 2");
	T_STR_CONTAINS(out, "\"res\": 128");
	T_STR_CONTAINS(out, "\"mean_f1_face10\": 0.");
	T_STR_CONTAINS(out, "\"per_class\": {\"background\": ");
	T_STR_CONTAINS(out, "\"hair\": 0.");
	double f1 = strtod(strstr(out, "\"skin\": ") + 8, NULL);
	T_CMP_DBL(f1, >, 0.5);
}

static void test_bench_json(void)
{
	char out[4096];

	T_EQ_INT(run((char *[]){ (char *)tool("facet-bench"), (char *)"--json", (char *)"-n", (char *)"2",
				 (char *)"--warmup", (char *)"1", (char *)"--res", (char *)"96",
				 (char *)"--model", (char *)t_path("fixtures/tiny.fpw"), NULL },
		     out, sizeof(out)), 0);
	T_STR_CONTAINS(out, "\"ms_p50\": ");
	T_STR_CONTAINS(out, "\"gflops\": ");
	T_STR_CONTAINS(out, "\"sgemm_gflops\": ");
	T_CMP_DBL(strtod(strstr(out, "\"sgemm_gflops\": ") + 16, NULL), >, 0.5);
	T_EQ_INT(run((char *[]){ (char *)tool("facet-bench"), (char *)"--res", (char *)"300",
				 (char *)"--model", (char *)t_path("fixtures/tiny.fpw"), NULL },
		     out, sizeof(out)), 1);
	T_STR_CONTAINS(out, "--res 300");
}

T_MAIN(T_CASE(test_parse_writes_labels_and_overlay),
       T_CASE(test_parse_bad_input),
       T_CASE(test_eval_json),
       T_CASE(test_bench_json))
