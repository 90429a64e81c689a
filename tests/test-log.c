/* Logging: plain lines on a terminal or file, "<N>" priorities when stderr
 * is the journal's stream, [file:line] at debug level. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "log.h"

/* Runs fn with stderr redirected to a file; returns what it wrote. */
static const char *capture(void (*fn)(void))
{
	static char buf[2048];
	char path[512];
	int saved = dup(STDERR_FILENO), fd;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/log.txt", t_tmpdir());
	f = fopen(path, "w+");
	T_ASSERT(f);
	fd = fileno(f);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	fseek(f, 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void emit_plain(void)
{
	unsetenv("JOURNAL_STREAM");
	log_init("facetd", LOG_LVL_INFO);
	log_warn("camera %s lost", "/dev/video0");
	log_debug("not shown");
	log_info("shown");
}

static void test_plain(void)
{
	const char *out = capture(emit_plain);

	T_STR_CONTAINS(out, "facetd: warning: camera /dev/video0 lost\n");
	T_STR_CONTAINS(out, "facetd: shown\n");
	T_ASSERT(strstr(out, "not shown") == NULL);
}

static void emit_journal(void)
{
	struct stat st;
	char env[64];

	fstat(STDERR_FILENO, &st);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_init("facetd", LOG_LVL_DEBUG);
	log_err("boom");
	log_debug("detail");
	unsetenv("JOURNAL_STREAM");
	log_init("facetd", LOG_LVL_INFO);
}

static void test_journal_prefix_and_debug_location(void)
{
	const char *out = capture(emit_journal);

	T_STR_CONTAINS(out, "<3>[test-log.c:");
	T_STR_CONTAINS(out, "] boom\n");
	T_STR_CONTAINS(out, "<7>[test-log.c:");
	T_ASSERT(strstr(out, "facetd:") == NULL);
}

static void emit_other_stream(void)
{
	setenv("JOURNAL_STREAM", "1:2", 1); /* a journal, but not our stderr */
	log_init("facetd", LOG_LVL_INFO);
	log_err("boom");
	unsetenv("JOURNAL_STREAM");
}

static void test_journal_of_another_stream_ignored(void)
{
	T_STR_CONTAINS(capture(emit_other_stream), "facetd: error: boom\n");
}

static void test_level_names(void)
{
	enum log_level l;

	T_EQ_INT(log_level_parse("debug", &l), 0);
	T_EQ_INT(l, LOG_LVL_DEBUG);
	T_CMP_INT(log_level_parse("verbose", &l), <, 0);
}

T_MAIN(T_CASE(test_plain),
       T_CASE(test_journal_prefix_and_debug_location),
       T_CASE(test_journal_of_another_stream_ignored),
       T_CASE(test_level_names))
