#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- reader ---- */

struct cursor {
	const unsigned char *p, *start, *end;
	struct json_object *o;
	const char *why;
};

static int fail(struct cursor *c, const char *why)
{
	if (!c->why)
		c->why = why;
	return -EINVAL;
}

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int put_byte(struct cursor *c, unsigned char b)
{
	if (c->o->used >= JSON_MAX_TEXT)
		return fail(c, "request too large");
	c->o->store[c->o->used++] = (char)b;
	return 0;
}

static int put_utf8(struct cursor *c, uint32_t cp)
{
	unsigned char b[4];
	int n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xC0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xE0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		b[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xF0 | cp >> 18);
		b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
		b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		b[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	for (int i = 0; i < n; i++)
		if (put_byte(c, b[i]) < 0)
			return -EINVAL;
	return 0;
}

/* Length of the well-formed UTF-8 sequence at p (no overlongs, surrogates
 * or code points past U+10FFFF), 0 when there is none. */
static int utf8_len(const unsigned char *p, const unsigned char *end)
{
	int n = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : *p >= 0xC0 ? 2 : 0;
	uint32_t cp;

	if (n == 0 || *p > 0xF4 || end - p < n)
		return 0;
	cp = *p & (0x7F >> n);
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

static int hex4(struct cursor *c, uint32_t *out)
{
	*out = 0;
	if (c->end - c->p < 4)
		return fail(c, "bad \\u escape");
	for (int i = 0; i < 4; i++, c->p++) {
		unsigned char h = *c->p;
		int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
			: h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
		if (v < 0)
			return fail(c, "bad \\u escape");
		*out = *out << 4 | (uint32_t)v;
	}
	return 0;
}

/* \uXXXX, a surrogate pair as two of them; c->p is past the 'u'. */
static int unicode_escape(struct cursor *c)
{
	uint32_t cp, lo;

	if (hex4(c, &cp) < 0)
		return -EINVAL;
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
			return fail(c, "lone surrogate in \\u escape");
		c->p += 2;
		if (hex4(c, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
			return fail(c, "lone surrogate in \\u escape");
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
		return fail(c, "lone surrogate in \\u escape");
	}
	if (cp == 0)
		return fail(c, "\\u0000 in a string");
	return put_utf8(c, cp);
}

static int escape(struct cursor *c)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *hit;

	if (c->p == c->end)
		return fail(c, "unterminated string");
	if (*c->p == 'u') {
		c->p++;
		return unicode_escape(c);
	}
	hit = *c->p ? strchr(from, *c->p) : NULL;
	if (!hit)
		return fail(c, "bad escape in a string");
	c->p++;
	return put_byte(c, (unsigned char)to[hit - from]);
}

/* A string at c->p (the opening quote), decoded into the store. */
static int string(struct cursor *c, const char **out)
{
	*out = c->o->store + c->o->used;
	c->p++;
	while (c->p < c->end && *c->p != '"') {
		int r = 0, n;
		if (*c->p == '\\') {
			c->p++;
			r = escape(c);
		} else if (*c->p < 0x20) {
			r = fail(c, "control character in a string");
		} else if (*c->p < 0x80) {
			r = put_byte(c, *c->p++);
		} else if ((n = utf8_len(c->p, c->end)) == 0) {
			r = fail(c, "invalid UTF-8");
		} else {
			while (n-- && r == 0)
				r = put_byte(c, *c->p++);
		}
		if (r < 0)
			return r;
	}
	if (c->p == c->end)
		return fail(c, "unterminated string");
	c->p++;
	return put_byte(c, 0);
}

static void digits(struct cursor *c)
{
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
}

static bool at_digit(const struct cursor *c)
{
	return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int number(struct cursor *c, const char **out)
{
	const unsigned char *begin = c->p;

	if (*c->p == '-')
		c->p++;
	if (!at_digit(c))
		return fail(c, "bad number");
	if (*c->p++ != '0')
		digits(c);
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (!at_digit(c))
			return fail(c, "bad number");
		digits(c);
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (!at_digit(c))
			return fail(c, "bad number");
		digits(c);
	}
	if (c->p - begin > 64)
		return fail(c, "number too long");
	*out = c->o->store + c->o->used;
	for (const unsigned char *q = begin; q < c->p; q++)
		if (put_byte(c, *q) < 0)
			return -EINVAL;
	return put_byte(c, 0);
}

static int literal(struct cursor *c, struct json_member *m)
{
	static const char *const words[] = { "true", "false", "null" };

	for (int i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);
		if ((size_t)(c->end - c->p) >= n && memcmp(c->p, words[i], n) == 0) {
			c->p += n;
			m->value = words[i];
			m->type = i < 2 ? JSON_BOOL : JSON_NULL;
			return 0;
		}
	}
	return fail(c, "expected a value");
}

static int value(struct cursor *c, struct json_member *m)
{
	if (c->p == c->end)
		return fail(c, "expected a value");
	if (*c->p == '"') {
		m->type = JSON_STRING;
		return string(c, &m->value);
	}
	if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) {
		m->type = JSON_NUMBER;
		return number(c, &m->value);
	}
	if (*c->p == '{' || *c->p == '[')
		return fail(c, "nested objects and arrays are not accepted");
	return literal(c, m);
}

static int member(struct cursor *c)
{
	struct json_member *m;

	if (c->o->n == JSON_MAX_MEMBERS)
		return fail(c, "too many members");
	m = &c->o->m[c->o->n];
	skip_ws(c);
	if (c->p == c->end || *c->p != '"')
		return fail(c, "expected a key string");
	if (string(c, &m->key) < 0)
		return -EINVAL;
	if (json_get(c->o, m->key))
		return fail(c, "duplicate key");
	skip_ws(c);
	if (c->p == c->end || *c->p != ':')
		return fail(c, "expected ':'");
	c->p++;
	skip_ws(c);
	if (value(c, m) < 0)
		return -EINVAL;
	c->o->n++;
	skip_ws(c);
	return 0;
}

static int object(struct cursor *c)
{
	skip_ws(c);
	if (c->p == c->end || *c->p != '{')
		return fail(c, "expected an object");
	c->p++;
	skip_ws(c);
	if (c->p < c->end && *c->p == '}') {
		c->p++;
		return 0;
	}
	for (;;) {
		if (member(c) < 0)
			return -EINVAL;
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			return 0;
		}
		if (c->p == c->end || *c->p != ',')
			return fail(c, "expected ',' or '}'");
		c->p++;
	}
}

int json_parse(const char *text, size_t len, struct json_object *o, char *err, size_t errlen)
{
	struct cursor c = { (const unsigned char *)text, (const unsigned char *)text,
			    (const unsigned char *)text + len, o, NULL };

	o->n = 0;
	o->used = 0;
	if (object(&c) == 0) {
		skip_ws(&c);
		if (c.p == c.end)
			return 0;
		fail(&c, "trailing bytes after the object");
	}
	snprintf(err, errlen, "%s at byte %td", c.why, c.p - c.start);
	o->n = 0;
	return -EINVAL;
}

void json_copy(struct json_object *dst, const struct json_object *src)
{
	dst->n = src->n;
	dst->used = src->used;
	memcpy(dst->store, src->store, src->used);
	for (int i = 0; i < src->n; i++) {
		dst->m[i] = src->m[i];
		dst->m[i].key = dst->store + (src->m[i].key - src->store);
		if (src->m[i].type == JSON_STRING || src->m[i].type == JSON_NUMBER)
			dst->m[i].value = dst->store + (src->m[i].value - src->store);
		/* true, false and null point at static words */
	}
}

const struct json_member *json_get(const struct json_object *o, const char *key)
{
	for (int i = 0; i < o->n; i++)
		if (strcmp(o->m[i].key, key) == 0)
			return &o->m[i];
	return NULL;
}

const char *json_get_string(const struct json_object *o, const char *key)
{
	const struct json_member *m = json_get(o, key);

	return m && m->type == JSON_STRING ? m->value : NULL;
}

/* ---- writer ---- */

static void append(struct json_writer *w, const char *s, size_t n)
{
	if (w->overflow || w->len + n + 2 > w->cap) { /* room for '}' and NUL */
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

/* A string as JSON: escaped, and valid UTF-8 whatever it holds (a byte
 * that starts no well-formed sequence, such as what is left of a character
 * cut by snprintf, is written as U+FFFD). */
static void append_quoted(struct json_writer *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
	char esc[8];
	int n;

	append(w, "\"", 1);
	for (; p < end; p += n) {
		n = 1;
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			append(w, esc, 2);
		} else if (*p < 0x20 || *p == 0x7F) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			append(w, esc, 6);
		} else if (*p < 0x80) {
			append(w, (const char *)p, 1);
		} else if ((n = utf8_len(p, end)) > 0) {
			append(w, (const char *)p, (size_t)n);
		} else {
			n = 1;
			append(w, "\\ufffd", 6);
		}
	}
	append(w, "\"", 1);
}

static void key(struct json_writer *w, const char *k)
{
	if (w->members++)
		append(w, ", ", 2);
	append_quoted(w, k);
	append(w, ": ", 2);
}

void json_writer_init(struct json_writer *w, char *buf, size_t cap)
{
	*w = (struct json_writer){ .buf = buf, .cap = cap };
	if (cap)
		buf[0] = 0;
	append(w, "{", 1);
}

void json_put_string(struct json_writer *w, const char *k, const char *value)
{
	key(w, k);
	append_quoted(w, value);
}

void json_put_int(struct json_writer *w, const char *k, long long value)
{
	char num[32];

	key(w, k);
	append(w, num, (size_t)snprintf(num, sizeof(num), "%lld", value));
}

void json_put_double(struct json_writer *w, const char *k, double value, int decimals)
{
	char num[64];

	if (!isfinite(value) || fabs(value) > 1e15) {
		json_put_null(w, k);
		return;
	}
	key(w, k);
	append(w, num, (size_t)snprintf(num, sizeof(num), "%.*f", decimals, value));
}

void json_put_bool(struct json_writer *w, const char *k, bool value)
{
	key(w, k);
	append(w, value ? "true" : "false", value ? 4 : 5);
}

void json_put_null(struct json_writer *w, const char *k)
{
	key(w, k);
	append(w, "null", 4);
}

void json_put_members(struct json_writer *w, const char *object)
{
	const char *open = strchr(object, '{'), *close = strrchr(object, '}');

	if (!open || !close || close <= open) {
		w->overflow = true;
		return;
	}
	for (open++; open < close && (*open == ' ' || *open == '\n'); open++)
		;
	if (open == close)
		return;
	if (w->members++)
		append(w, ", ", 2);
	append(w, open, (size_t)(close - open));
}

int json_writer_finish(struct json_writer *w)
{
	if (w->overflow || w->len + 2 > w->cap)
		return -ENOSPC;
	w->buf[w->len++] = '}';
	w->buf[w->len] = 0;
	return (int)w->len;
}
