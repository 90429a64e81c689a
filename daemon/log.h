/* Logging for every part of facetd.
 *
 * One line per message on stderr. When stderr is the journal (systemd sets
 * JOURNAL_STREAM to its device:inode), each line starts with the sd-daemon
 * "<N>" priority prefix and carries no timestamp; otherwise lines look like
 * "facetd: warning: ...". At debug level the source "[file:line]" is added.
 *
 * Thread-safe: each message is formatted into one buffer and written with a
 * single write(2).
 */
#ifndef FACETD_LOG_H
#define FACETD_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERROR = 3, /* the sd-daemon / syslog priorities */
	LOG_LVL_WARN = 4,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

/* Sets the program name used as prefix and the most verbose level shown;
 * reads JOURNAL_STREAM. Call once from main before threads start. */
void log_init(const char *progname, enum log_level max_level);
void log_set_level(enum log_level max_level);
enum log_level log_get_level(void);

/* Parses "error", "warning", "info" or "debug"; returns -EINVAL otherwise. */
int log_level_parse(const char *name, enum log_level *out);

void log_printf(enum log_level level, const char *file, int line,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void log_vprintf(enum log_level level, const char *file, int line,
		 const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

#define log_err(...) log_printf(LOG_LVL_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_printf(LOG_LVL_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_printf(LOG_LVL_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_printf(LOG_LVL_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
