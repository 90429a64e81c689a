#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "facetd";
static atomic_int log_max = LOG_LVL_INFO;
static bool log_journal;

/* True when stderr is the stream systemd's journal gave us. */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void log_init(const char *progname, enum log_level max_level)
{
	if (progname) {
		const char *slash = strrchr(progname, '/');
		log_prog = slash ? slash + 1 : progname;
	}
	atomic_store(&log_max, max_level);
	log_journal = stderr_is_journal();
}

void log_set_level(enum log_level max_level)
{
	atomic_store(&log_max, max_level);
}

enum log_level log_get_level(void)
{
	return atomic_load(&log_max);
}

int log_level_parse(const char *name, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{ "error", LOG_LVL_ERROR },
		{ "warning", LOG_LVL_WARN },
		{ "info", LOG_LVL_INFO },
		{ "debug", LOG_LVL_DEBUG },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *level_word(enum log_level level)
{
	switch (level) {
	case LOG_LVL_ERROR: return "error: ";
	case LOG_LVL_WARN: return "warning: ";
	case LOG_LVL_DEBUG: return "debug: ";
	default: return "";
	}
}

static size_t put_prefix(char *buf, size_t size, enum log_level level,
			 const char *file, int line)
{
	const char *base = strrchr(file, '/');
	int n;

	base = base ? base + 1 : file;
	if (log_journal)
		n = snprintf(buf, size, "<%d>", (int)level);
	else
		n = snprintf(buf, size, "%s: %s", log_prog, level_word(level));
	if (n >= 0 && (size_t)n < size && atomic_load(&log_max) >= LOG_LVL_DEBUG)
		n += snprintf(buf + n, size - (size_t)n, "[%s:%d] ", base, line);
	return n < 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
}

void log_vprintf(enum log_level level, const char *file, int line,
		 const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;
	int m;
	int saved = errno;

	if ((int)level > atomic_load(&log_max))
		return;
	n = put_prefix(buf, sizeof(buf) - 1, level, file, line);
	m = vsnprintf(buf + n, sizeof(buf) - 1 - n, fmt, ap);
	if (m > 0)
		n += (size_t)m < sizeof(buf) - 1 - n ? (size_t)m : sizeof(buf) - 2 - n;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* Nowhere left to report it. */
	}
	errno = saved;
}

void log_printf(enum log_level level, const char *file, int line,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprintf(level, file, line, fmt, ap);
	va_end(ap);
}
