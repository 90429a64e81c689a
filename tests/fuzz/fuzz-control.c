/* The control socket's protocol without the socket: the bytes a client
 * sends, cut into lines as the I/O thread cuts them, each through
 * control_parse_line() and answered the way facetd answers.
 *
 * A refused line gets {"ok": false, "error": WHY}; a request goes to a
 * handler that answers as facetd does an unknown command, and to one that
 * echoes every member back. Every reply must be one line our own reader
 * parses, saying what was written. */
#include <errno.h>
#include <string.h>

#include "control-priv.h"
#include "fuzz-util.h"

static struct json_object req, reply;
static char out[CONTROL_REPLY_MAX];

/* Parses a reply line; its object into reply. */
static void parse_reply(size_t n)
{
	char why[128];

	FUZZ_CHECK(n >= 3 && n <= sizeof(out) && out[n - 1] == '\n');
	FUZZ_CHECK(memchr(out, '\n', n - 1) == NULL);
	FUZZ_CHECK(json_parse(out, n - 1, &reply, why, sizeof(why)) == 0);
}

static int is_error_reply(const char *message)
{
	const struct json_member *ok = json_get(&reply, "ok");
	const char *error = json_get_string(&reply, "error");

	return reply.n == 2 && ok && strcmp(ok->value, "false") == 0 && error &&
	       (!message || strcmp(error, message) == 0);
}

static void check_refused(const char *why)
{
	struct json_writer w;

	json_writer_init(&w, out, sizeof(out));
	control_reply_error(&w, "%s", why);
	parse_reply(control_finish_reply(&w, out, sizeof(out)));
	FUZZ_CHECK(is_error_reply(why));
}

static void check_unknown_command(void)
{
	const char *cmd = json_get_string(&req, "cmd");
	struct json_writer w;

	FUZZ_CHECK(cmd);
	json_writer_init(&w, out, sizeof(out));
	control_reply_error(&w, "unknown command '%s' (stats, get, set, reload, snapshot, "
			    "pause, resume)", cmd);
	parse_reply(control_finish_reply(&w, out, sizeof(out)));
	FUZZ_CHECK(is_error_reply(NULL));
}

static void put_member(struct json_writer *w, const struct json_member *m)
{
	if (m->type == JSON_BOOL)
		json_put_bool(w, m->key, strcmp(m->value, "true") == 0);
	else if (m->type == JSON_NULL)
		json_put_null(w, m->key);
	else
		json_put_string(w, m->key, m->value); /* a number as its text */
}

/* Every member back under its own key (one reply, or "reply too long"). */
static void check_echo(void)
{
	struct json_writer w;

	json_writer_init(&w, out, sizeof(out));
	for (int i = 0; i < req.n; i++)
		put_member(&w, &req.m[i]);
	parse_reply(control_finish_reply(&w, out, sizeof(out)));
	if (is_error_reply("reply too long"))
		return;
	FUZZ_CHECK(reply.n == req.n);
	for (int i = 0; i < req.n; i++) {
		const struct json_member *a = &req.m[i], *b = &reply.m[i];
		FUZZ_CHECK(strcmp(a->key, b->key) == 0 && strcmp(a->value, b->value) == 0);
		FUZZ_CHECK(a->type == b->type || (a->type == JSON_NUMBER && b->type == JSON_STRING));
	}
}

static int blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			return 0;
	return 1;
}

static void take_line(const char *line, size_t len)
{
	char why[256];
	int r = control_parse_line(line, len, &req, why, sizeof(why));

	if (r == 0) {
		FUZZ_CHECK(blank(line, len));
		return;
	}
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		check_refused(why);
		return;
	}
	FUZZ_CHECK(r == 1);
	check_unknown_command();
	check_echo();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	/* a last line without its newline is never taken */
	for (const char *nl; (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1) {
		size_t len = (size_t)(nl - p);
		if (len < CONTROL_LINE_MAX) /* longer: refused unread */
			take_line(p, len);
	}
	return 0;
}
