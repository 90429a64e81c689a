#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { T_PASS, T_FAIL, T_SKIP };

static jmp_buf t_jmp;
static char t_tmp[256];

_Noreturn void t_fail(const char *file, int line, const char *fmt, ...)
{
	const char *base = strrchr(file, '/');
	va_list ap;

	fprintf(stderr, "  %s:%d: ", base ? base + 1 : file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	longjmp(t_jmp, T_FAIL);
}

_Noreturn void t_skip(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "  skipped: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	longjmp(t_jmp, T_SKIP);
}

const char *t_path(const char *name)
{
	static char buf[8][4096];
	static int next;
	const char *dir = getenv("FACETD_TEST_DATA");
	char *out = buf[next++ % 8];

	snprintf(out, sizeof(buf[0]), "%s/%s", dir ? dir : FACETD_TEST_SRCDIR, name);
	return out;
}

static void remove_tmp(void)
{
	char cmd[512];

	if (t_tmp[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", t_tmp);
	}
}

const char *t_tmpdir(void)
{
	if (!t_tmp[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(t_tmp, sizeof(t_tmp), "%s/facetd-test-XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(t_tmp)) {
			t_tmp[0] = 0;
			t_fail(__FILE__, __LINE__, "mkdtemp failed");
		}
		atexit(remove_tmp);
	}
	return t_tmp;
}

static int run_case(const struct t_case *c)
{
	volatile int r = setjmp(t_jmp);

	if (r == 0)
		c->fn();
	return r;
}

int t_run(const struct t_case *cases, size_t n, int argc, char **argv)
{
	size_t passed = 0, failed = 0, skipped = 0;
	const char *only = argc > 1 ? argv[1] : NULL;

	for (size_t i = 0; i < n; i++) {
		if (only && strcmp(only, cases[i].name) != 0)
			continue;
		int r = run_case(&cases[i]);
		printf("%s %s\n", r == T_PASS ? "ok  " : r == T_SKIP ? "skip" : "FAIL", cases[i].name);
		fflush(stdout);
		passed += r == T_PASS;
		failed += r == T_FAIL;
		skipped += r == T_SKIP;
	}
	printf("%zu passed, %zu failed, %zu skipped\n", passed, failed, skipped);
	if (failed)
		return 1;
	return passed == 0 && skipped > 0 ? 77 : 0;
}
