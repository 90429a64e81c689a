/* A lock-free single-producer single-consumer queue of frame-slot indices.
 *
 * DESIGN: head and tail are free-running uint32_t counters (wrap-around is
 * harmless: head - tail is the fill level in unsigned arithmetic), each on
 * its own cache line. The producer alone writes head, the consumer alone
 * writes tail. The producer's release store of head publishes the slot
 * value written before it; the consumer's acquire load of head sees it.
 * Symmetrically the consumer's release store of tail hands the cell back.
 * No locks, no syscalls: safe to call from the frame path.
 */
#ifndef FACETD_RING_H
#define FACETD_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ring {
	alignas(64) atomic_uint_fast32_t head; /* producer only */
	alignas(64) atomic_uint_fast32_t tail; /* consumer only */
	alignas(64) uint32_t mask;             /* capacity - 1; set at init */
	uint32_t *cells;
};

/* capacity: a power of two, 2..65536. -EINVAL or -ENOMEM. */
int ring_init(struct ring *r, uint32_t capacity);
void ring_finish(struct ring *r);

/* Producer thread: false when full. */
bool ring_push(struct ring *r, uint32_t value);
/* Consumer thread: false when empty. */
bool ring_pop(struct ring *r, uint32_t *value);
/* Either thread: entries queued (a snapshot). */
uint32_t ring_count(struct ring *r);

#endif
