/* The SPSC ring: order, capacity, wrap-around of the counters, and a
 * two-thread stress run (also built under ThreadSanitizer). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "ring.h"

static void test_fifo_and_capacity(void)
{
	struct ring r;
	uint32_t v;

	T_EQ_INT(ring_init(&r, 3), -EINVAL);
	T_EQ_INT(ring_init(&r, 1), -EINVAL);
	T_EQ_INT(ring_init(&r, 4), 0);
	T_ASSERT(!ring_pop(&r, &v));
	for (uint32_t i = 0; i < 4; i++)
		T_ASSERT(ring_push(&r, i + 10));
	T_ASSERT(!ring_push(&r, 99)); /* full */
	T_EQ_INT(ring_count(&r), 4);
	for (uint32_t i = 0; i < 4; i++) {
		T_ASSERT(ring_pop(&r, &v));
		T_EQ_INT(v, i + 10);
	}
	T_ASSERT(!ring_pop(&r, &v));
	ring_finish(&r);
}

static void test_counter_wraparound(void)
{
	struct ring r;
	uint32_t v;

	T_EQ_INT(ring_init(&r, 8), 0);
	atomic_store(&r.head, UINT32_MAX - 2);
	atomic_store(&r.tail, UINT32_MAX - 2);
	for (uint32_t i = 0; i < 100; i++) {
		T_ASSERT(ring_push(&r, i));
		T_ASSERT(ring_push(&r, i + 1000));
		T_EQ_INT(ring_count(&r), 2);
		T_ASSERT(ring_pop(&r, &v));
		T_EQ_INT(v, i);
		T_ASSERT(ring_pop(&r, &v));
		T_EQ_INT(v, i + 1000);
	}
	ring_finish(&r);
}

#define STRESS_N 500000u

static void *producer(void *arg)
{
	struct ring *r = arg;

	for (uint32_t i = 0; i < STRESS_N;) {
		if (ring_push(r, i))
			i++;
		else
			sched_yield();
	}
	return NULL;
}

/* Every value arrives once, in order, with a small ring that is full and
 * empty many times over. */
static void test_two_thread_stress(void)
{
	struct ring r;
	pthread_t th;
	uint32_t v, expect = 0;

	T_EQ_INT(ring_init(&r, 16), 0);
	pthread_create(&th, NULL, producer, &r);
	while (expect < STRESS_N) {
		if (!ring_pop(&r, &v)) {
			sched_yield();
			continue;
		}
		if (v != expect)
			t_fail(__FILE__, __LINE__, "got %u, expected %u", v, expect);
		expect++;
	}
	pthread_join(th, NULL);
	T_ASSERT(!ring_pop(&r, &v));
	ring_finish(&r);
}

T_MAIN(T_CASE(test_fifo_and_capacity),
       T_CASE(test_counter_wraparound),
       T_CASE(test_two_thread_stress))
