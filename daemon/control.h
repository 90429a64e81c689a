/* The control socket: a UNIX stream socket that takes one JSON request a
 * line and gives one JSON reply a line (json.h).
 *
 * The server is an I/O thread: it accepts clients, reads their lines,
 * parses them and answers malformed, oversized or cmd-less requests itself
 * with {"ok": false, "error": "..."}. Every other request is queued, the
 * owner's wake callback is called (from the I/O thread), and the owner
 * answers the queued requests on its own thread with control_dispatch().
 * So the handler never runs concurrently with itself, and everything it
 * touches is the owner thread's.
 *
 * A client has one request in flight: its next line is read only after the
 * reply to the previous one has been written, and replies are written
 * without blocking. A client that stops reading holds only its own slot; a
 * client that goes away mid-request is forgotten and its reply dropped.
 *
 * Access: the socket is created mode 0600 and each client's credentials
 * (SO_PEERCRED) must be facetd's effective uid or root; others get an
 * error reply and are disconnected.
 */
#ifndef FACETD_CONTROL_H
#define FACETD_CONTROL_H

#include <stddef.h>

#include "json.h"

#define CONTROL_LINE_MAX 4096     /* a request, newline included */
#define CONTROL_REPLY_MAX 16384   /* a reply, newline included */
#define CONTROL_CLIENTS_MAX 16

struct control;

/* I/O thread: requests are waiting for control_dispatch(). */
typedef void (*control_wake_fn)(void *ud);
/* Owner's thread: answer req by writing the members of the reply object
 * into w (init and finish are done by the caller). */
typedef void (*control_handler_fn)(void *ud, const struct json_object *req,
				   struct json_writer *w);

/* Where facetd puts its socket: $RUNTIME_DIRECTORY/control (the first
 * directory when there are several), else $XDG_RUNTIME_DIR/facetd/control,
 * else /run/facetd/control for root. With create, the facetd directory is
 * made (mode 0700). -ENOENT when there is no runtime directory. */
int control_default_path(char *buf, size_t len, int create);

/* For clients: the first of those sockets that exists, else the first
 * path that could be formed. -ENOENT when none can. */
int control_find_path(char *buf, size_t len);

/* Binds path (replacing a stale socket; -EADDRINUSE when a server answers
 * there) and starts the I/O thread. Negative errno with "PATH: problem" in
 * err. */
int control_create(const char *path, control_wake_fn wake, void *ud, struct control **out,
		   char *err, size_t errlen);

/* Stops the thread, disconnects the clients, removes the socket file.
 * Accepts NULL. */
void control_destroy(struct control *c);

/* Owner's thread: runs handler on each waiting request and hands the
 * replies to the I/O thread. Returns how many were answered. */
int control_dispatch(struct control *c, control_handler_fn handler, void *ud);

/* Connected clients. Any thread. */
int control_clients(struct control *c);

/* Handler helper: {"ok": false, "error": MESSAGE}. */
void control_reply_error(struct json_writer *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
