#include "ring.h"

#include <errno.h>
#include <stdlib.h>

int ring_init(struct ring *r, uint32_t capacity)
{
	if (capacity < 2 || capacity > 65536 || (capacity & (capacity - 1)))
		return -EINVAL;
	r->cells = calloc(capacity, sizeof(*r->cells));
	if (!r->cells)
		return -ENOMEM;
	r->mask = capacity - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return 0;
}

void ring_finish(struct ring *r)
{
	free(r->cells);
	r->cells = NULL;
}

bool ring_push(struct ring *r, uint32_t value)
{
	uint32_t head = (uint32_t)atomic_load_explicit(&r->head, memory_order_relaxed);
	/* acquire: the consumer has finished reading the cell it gave back */
	uint32_t tail = (uint32_t)atomic_load_explicit(&r->tail, memory_order_acquire);

	if (head - tail > r->mask)
		return false;
	r->cells[head & r->mask] = value;
	/* release: the cell's value is visible before the new head */
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return true;
}

bool ring_pop(struct ring *r, uint32_t *value)
{
	uint32_t tail = (uint32_t)atomic_load_explicit(&r->tail, memory_order_relaxed);
	/* acquire: pairs with the producer's release of head */
	uint32_t head = (uint32_t)atomic_load_explicit(&r->head, memory_order_acquire);

	if (head == tail)
		return false;
	*value = r->cells[tail & r->mask];
	/* release: our read of the cell happens before the producer reuses it */
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return true;
}

uint32_t ring_count(struct ring *r)
{
	uint32_t head = (uint32_t)atomic_load_explicit(&r->head, memory_order_acquire);
	uint32_t tail = (uint32_t)atomic_load_explicit(&r->tail, memory_order_acquire);

	return head - tail;
}
