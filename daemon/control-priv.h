/* The control socket's line protocol without the socket: shared by
 * control.c and the tests that feed it raw bytes. */
#ifndef FACETD_CONTROL_PRIV_H
#define FACETD_CONTROL_PRIV_H

#include "control.h"

/* One request line (its newline removed) as the I/O thread takes it:
 * 1 with the request in req when it goes on to the handler, 0 for a blank
 * line (no reply), -EINVAL when it is answered at once with an error
 * reply whose message is in why. */
int control_parse_line(const char *line, size_t len, struct json_object *req,
		       char *why, size_t whylen);

/* The reply line in buf (newline included, no NUL) from what a handler
 * wrote into w over buf; an error reply when that did not fit. Returns
 * its length. */
size_t control_finish_reply(struct json_writer *w, char *buf, size_t cap);

#endif
