/* Telling the service manager how facetd is doing (sd_notify).
 *
 * With libsystemd (HAVE_SYSTEMD) messages go through sd_notify(); without
 * it, through the protocol itself: one datagram on the AF_UNIX socket named
 * by $NOTIFY_SOCKET ('@' first: the abstract namespace). Without
 * $NOTIFY_SOCKET (not started by systemd) nothing is sent and nothing fails.
 *
 * The watchdog: systemd sets $WATCHDOG_USEC (and $WATCHDOG_PID); facetd
 * must send WATCHDOG=1 more often than that or be restarted. facetd pings
 * at half the period, and only while the pipeline makes progress:
 *
 *   the capture thread counts a frame (captured or dropped for want of a
 *   slot), and the inference thread counts a frame (inferred, or dropped
 *   because a newer one came or because the pipeline is paused)
 *
 * both since the previous ping. Paused, both threads still turn every
 * frame over, so a paused facetd keeps pinging; a thread stuck in a call,
 * or a camera that gives no frames at all, stops the pings and systemd
 * restarts facetd. The ticks come from the main thread, so a stuck main
 * thread stops them too.
 *
 * Thread: all of this is for one thread (facetd's main thread).
 */
#ifndef FACETD_NOTIFY_H
#define FACETD_NOTIFY_H

#include <stdint.h>

/* Sends state ("READY=1", "STATUS=...", newline-separated assignments).
 * Returns 1 when sent, 0 when there is no $NOTIFY_SOCKET, or a negative
 * errno. */
int notify_send(const char *state);
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The protocol itself, to the socket at path ("/..." or "@abstract"); what
 * notify_send() uses when built without libsystemd. 1 or negative errno. */
int notify_send_to(const char *path, const char *state);

/* $WATCHDOG_USEC when the watchdog is on for this process ($WATCHDOG_PID
 * unset or ours), else 0. */
uint64_t notify_watchdog_usec(void);

/* Progress counters; only their changes matter. */
struct notify_progress {
	uint64_t capture;    /* frames the capture thread turned over */
	uint64_t inference;  /* frames the inference thread turned over */
	int idle;            /* nothing is due to move (the camera is released on
			      * demand): the interval alone decides */
};

struct notify_watchdog {
	int64_t interval_ns;       /* half of WATCHDOG_USEC; 0: off */
	int64_t last_ping_ns;
	int64_t moved_ns[2];       /* when capture / inference last moved */
	struct notify_progress seen;
};

/* Starts the watchdog clock at now_ns; usec 0 turns it off. */
void notify_watchdog_init(struct notify_watchdog *w, uint64_t usec, int64_t now_ns);

/* Call often (at least a few times per interval) with the counters: sends
 * WATCHDOG=1 when an interval has passed since the last ping and both
 * counters moved since (or p->idle). Returns 1 when it pinged, 0 when not, or the
 * negative errno of sending. */
int notify_watchdog_tick(struct notify_watchdog *w, const struct notify_progress *p,
			 int64_t now_ns);

#endif
