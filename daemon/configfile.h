/* The config file: KEY = VALUE lines over the option table (options.h).
 *
 *   # comment (also ';')
 *   source = synthetic
 *   res = 160            # an unquoted value ends at " #"
 *   output = "y4m:/tmp/a b.y4m"    (quotes keep spaces and '#'; \" and \\)
 *   output = y4m:/tmp/c.y4m        (output is a list; other keys appear once)
 *   no-pacing = true     (flags take true/false, yes/no, on/off, 1/0)
 *
 * Keys are the long option names; every option but --help, --version and
 * --config has one. There are no sections. The effective settings are the
 * defaults, then the file, then the command line: an option given on the
 * command line replaces the file's value (a command-line --output replaces
 * the file's whole list).
 *
 * Thread: one thread at a time.
 */
#ifndef FACETD_CONFIGFILE_H
#define FACETD_CONFIGFILE_H

#include <stddef.h>

#include "options.h"

/* The config: the file's path, the command-line options, and the strings
 * that options read from files or set later point into. */
struct config;

/* Keeps a copy of cli (whose strings must outlive the config); the file is
 * cli->config, else the default path. NULL when out of memory. */
struct config *config_create(const struct options *cli);
/* Frees the config and every string it kept. Accepts NULL. */
void config_destroy(struct config *c);

/* The file in use, or NULL when there is none. */
const char *config_path(const struct config *c);

/* $XDG_CONFIG_HOME/facetd/facetd.conf, else $HOME/.config/facetd/facetd.conf.
 * -ENOENT when neither variable is set, -ENAMETOOLONG. */
int config_default_path(char *buf, size_t len);

/* Reads the file at path into o, over what o holds. Returns 0, or a
 * negative errno with "PATH:LINE: problem" or "PATH: problem" in err
 * (-ENOENT: no such file). o may be partly changed on failure. */
int config_read(struct config *c, const char *path, struct options *o,
		char *err, size_t errlen);

/* The effective settings into out: defaults, the file, the command line.
 * A missing default file is no error, a missing --config file is. On
 * failure out is untouched and err says what and where. */
int config_load(struct config *c, struct options *out, char *err, size_t errlen);

/* Sets key in o as `set KEY VALUE` does: value (copied) replaces the key's
 * value, a whole output list included. Errors as options_set(). */
int config_set(struct config *c, struct options *o, const char *key, const char *value,
	       char *err, size_t errlen);

#endif
