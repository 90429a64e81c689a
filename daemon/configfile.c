#include "configfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 4096

struct config {
	struct options cli;
	char path[4096];      /* "" when there is no file */
	int explicit_path;    /* given with --config */
	char **strings;       /* kept until destroy; deduplicated */
	size_t n_strings, cap_strings;
};

int config_default_path(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && *xdg == '/')
		n = snprintf(buf, len, "%s/facetd/facetd.conf", xdg);
	else if (home && *home == '/')
		n = snprintf(buf, len, "%s/.config/facetd/facetd.conf", home);
	else
		return -ENOENT;
	return (size_t)n < len ? 0 : -ENAMETOOLONG;
}

struct config *config_create(const struct options *cli)
{
	struct config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cli = *cli;
	if (cli->config) {
		snprintf(c->path, sizeof(c->path), "%s", cli->config);
		c->explicit_path = 1;
	} else if (config_default_path(c->path, sizeof(c->path)) < 0) {
		c->path[0] = 0;
	}
	return c;
}

void config_destroy(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_strings; i++)
		free(c->strings[i]);
	free(c->strings);
	free(c);
}

const char *config_path(const struct config *c)
{
	return c->path[0] ? c->path : NULL;
}

/* A copy of s that lives as long as c; equal strings share one copy. */
static const char *keep(struct config *c, const char *s)
{
	char *copy;

	for (size_t i = 0; i < c->n_strings; i++)
		if (strcmp(c->strings[i], s) == 0)
			return c->strings[i];
	if (c->n_strings == c->cap_strings) {
		size_t cap = c->cap_strings ? 2 * c->cap_strings : 16;
		char **grown = realloc(c->strings, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		c->strings = grown;
		c->cap_strings = cap;
	}
	copy = strdup(s);
	if (copy)
		c->strings[c->n_strings++] = copy;
	return copy;
}

/* ---- one line ---- */

static char *skip_space(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static void trim_end(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = 0;
}

/* Unquotes the value at s (on its opening quote) in place. */
static int unquote(char *s, const char **why)
{
	char *in = s + 1, *out = s;

	while (*in && *in != '"') {
		if (*in == '\\' && (in[1] == '"' || in[1] == '\\'))
			in++;
		*out++ = *in++;
	}
	if (*in != '"') {
		*why = "unterminated quoted value";
		return -EINVAL;
	}
	in = skip_space(in + 1);
	*out = 0;
	if (*in && *in != '#') {
		*why = "text after the quoted value";
		return -EINVAL;
	}
	return 0;
}

static void cut_comment(char *s)
{
	for (char *p = s; *p; p++) {
		if (*p == '#' && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = 0;
			break;
		}
	}
	trim_end(s);
}

static int is_key_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
}

/* Splits "key = value" in place. 1: a setting, 0: blank or comment,
 * -EINVAL with the problem in why. */
static int split_line(char *s, char **key, char **value, const char **why)
{
	char *p, *key_end;

	s = skip_space(s);
	trim_end(s);
	if (!*s || *s == '#' || *s == ';')
		return 0;
	*why = *s == '[' ? "sections are not used: write KEY = VALUE" : "expected KEY = VALUE";
	for (p = s; is_key_char(*p); p++)
		;
	key_end = p;
	p = skip_space(p);
	if (key_end == s || *p != '=')
		return -EINVAL;
	*key = s;
	*key_end = 0;
	*value = skip_space(p + 1);
	if (**value == '"')
		return unquote(*value, why) < 0 ? -EINVAL : 1;
	cut_comment(*value);
	return 1;
}

/* ---- the file ---- */

struct reader {
	struct config *c;
	const char *path;
	struct options *o;
	int line;
	int first_line[64];   /* where each key was set in this file */
	char *err;
	size_t errlen;
};

static int line_error(struct reader *rd, const char *msg)
{
	snprintf(rd->err, rd->errlen, "%s:%d: %s", rd->path, rd->line, msg);
	return -EINVAL;
}

static int apply_line(struct reader *rd, const char *key, const char *value)
{
	int i = options_find(key);
	char msg[512];
	const char *kept;

	if (i >= 0 && rd->first_line[i] && strcmp(key, "output") != 0) {
		snprintf(msg, sizeof(msg), "%s: given twice (first on line %d)", key,
			 rd->first_line[i]);
		return line_error(rd, msg);
	}
	if (!*value) {
		snprintf(msg, sizeof(msg), "%s: no value", key);
		return line_error(rd, msg);
	}
	kept = keep(rd->c, value);
	if (!kept)
		return -ENOMEM;
	if (options_set(rd->o, key, kept, msg, sizeof(msg)) < 0)
		return line_error(rd, msg);
	rd->first_line[i] = rd->line;
	return 0;
}

static int read_line(struct reader *rd, char *s, size_t len)
{
	const char *why = NULL;
	char *key, *value;
	int r;

	if (strlen(s) != len)
		return line_error(rd, "NUL byte in the line");
	if (len > LINE_MAX_BYTES)
		return line_error(rd, "line too long");
	r = split_line(s, &key, &value, &why);
	if (r < 0)
		return line_error(rd, why);
	return r ? apply_line(rd, key, value) : 0;
}

int config_read(struct config *c, const char *path, struct options *o,
		char *err, size_t errlen)
{
	struct reader rd = { .c = c, .path = path, .o = o, .err = err, .errlen = errlen };
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;

	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	while (r == 0 && (n = getline(&line, &cap, f)) >= 0) {
		rd.line++;
		r = read_line(&rd, line, (size_t)n);
	}
	if (r == 0 && ferror(f)) {
		r = -EIO;
		snprintf(err, errlen, "%s: read error", path);
	}
	if (r == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory", path);
	free(line);
	fclose(f);
	return r;
}

int config_load(struct config *c, struct options *out, char *err, size_t errlen)
{
	struct options o;
	int r;

	options_defaults(&o);
	if (c->path[0]) {
		r = config_read(c, c->path, &o, err, errlen);
		if (r < 0 && !(r == -ENOENT && !c->explicit_path))
			return r;
	}
	options_copy(&o, &c->cli, c->cli.given);
	*out = o;
	return 0;
}

int config_set(struct config *c, struct options *o, const char *key, const char *value,
	       char *err, size_t errlen)
{
	struct options defaults, next = *o;
	const char *kept = keep(c, value);
	int i = options_find(key);

	if (!kept) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (i >= 0) {
		options_defaults(&defaults);
		options_copy(&next, &defaults, 1ull << i); /* replace, not add to a list */
	}
	int r = options_set(&next, key, kept, err, errlen);
	if (r == 0)
		*o = next;
	return r;
}
