/* The control protocol's JSON: a strict reader for one flat object and a
 * writer for one.
 *
 * A request or reply is a single object whose values are strings, numbers,
 * true, false or null: {"cmd": "set", "key": "res", "value": 160}. The
 * reader rejects anything else (nesting, duplicate keys, trailing bytes,
 * invalid UTF-8, control characters in strings) with a short reason, so
 * arbitrary bytes from a socket are safe to hand it.
 *
 * Pure functions; no allocation.
 */
#ifndef FACETD_JSON_H
#define FACETD_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_MEMBERS 64
#define JSON_MAX_TEXT 16384  /* decoded keys and values, NULs included */

enum json_type { JSON_STRING, JSON_NUMBER, JSON_BOOL, JSON_NULL };

struct json_member {
	const char *key;      /* decoded, NUL-terminated, in the object's store */
	const char *value;    /* decoded string, or the literal text of a number,
			       * "true", "false" or "null" */
	enum json_type type;
};

struct json_object {
	int n;
	struct json_member m[JSON_MAX_MEMBERS];
	size_t used;
	char store[JSON_MAX_TEXT];
};

/* Parses text[0..len) as one flat object, white space around it allowed.
 * Returns 0, or -EINVAL with the reason (and byte offset) in err. */
int json_parse(const char *text, size_t len, struct json_object *o, char *err, size_t errlen);

/* Copies src into dst with dst's members pointing into dst's own store
 * (a plain struct copy would still point into src's). */
void json_copy(struct json_object *dst, const struct json_object *src);

/* The member named key, or NULL. */
const struct json_member *json_get(const struct json_object *o, const char *key);
/* The value of key when it is a string, else NULL. */
const char *json_get_string(const struct json_object *o, const char *key);

/* Writing: init, put members, finish. A member that does not fit makes
 * finish fail; the buffer always holds a NUL-terminated prefix. */
struct json_writer {
	char *buf;
	size_t cap, len;
	int members;
	bool overflow;
};

void json_writer_init(struct json_writer *w, char *buf, size_t cap);
/* Keys and values are written as valid UTF-8: a byte of value (or key)
 * that is not part of a well-formed sequence becomes U+FFFD. */
void json_put_string(struct json_writer *w, const char *key, const char *value);
void json_put_int(struct json_writer *w, const char *key, long long value);
/* Non-finite values are written as null. */
void json_put_double(struct json_writer *w, const char *key, double value, int decimals);
void json_put_bool(struct json_writer *w, const char *key, bool value);
void json_put_null(struct json_writer *w, const char *key);
/* Adds the members of object (JSON text "{...}") as they are. */
void json_put_members(struct json_writer *w, const char *object);
/* Closes the object. Returns its length, or -ENOSPC when it did not fit. */
int json_writer_finish(struct json_writer *w);

#endif
