/* A fixed team of threads for the engine's parallel loops.
 *
 * DESIGN: pool_run() publishes one job (fn, arg, task count) under the
 * lock and bumps a generation number; the workers and the calling thread
 * then take task indices from one atomic counter until none are left, so a
 * participant that is preempted (the capture or output thread wants the
 * core) simply takes fewer tasks. The caller sleeps on `done` until every
 * worker has left the job. Jobs are a few hundred microseconds or more, so
 * a condition variable costs little next to them; BLAS runs single-threaded
 * inside each task.
 */
#include "model-priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct pool {
	int threads;            /* participants, the calling thread included */
	pthread_t *tid;         /* threads - 1 workers */
	int started;            /* workers created */
	pthread_mutex_t lock;
	pthread_cond_t go, done;
	/* fields below protected by lock */
	unsigned gen;           /* bumped once a job */
	int busy;               /* workers still inside the job */
	int quit;
	pool_fn fn;
	void *arg;
	int tasks;
	/* taken by every participant during a job */
	atomic_int next;
};

struct worker_arg {
	struct pool *pool;
	int index;
};

static void take_tasks(struct pool *p, pool_fn fn, void *arg, int tasks, int worker)
{
	int t;

	while ((t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed)) < tasks)
		fn(arg, t, worker);
}

static void *worker_main(void *v)
{
	struct worker_arg wa = *(struct worker_arg *)v;
	struct pool *p = wa.pool;
	unsigned seen = 0;

	free(v);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->gen == seen && !p->quit)
			pthread_cond_wait(&p->go, &p->lock);
		if (p->quit)
			break;
		seen = p->gen;
		pool_fn fn = p->fn;
		void *arg = p->arg;
		int tasks = p->tasks;
		pthread_mutex_unlock(&p->lock);
		take_tasks(p, fn, arg, tasks, wa.index);
		pthread_mutex_lock(&p->lock);
		if (--p->busy == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int start_worker(struct pool *p, int index)
{
	struct worker_arg *wa = malloc(sizeof(*wa));
	int r;

	if (!wa)
		return -ENOMEM;
	wa->pool = p;
	wa->index = index;
	r = pthread_create(&p->tid[index - 1], NULL, worker_main, wa);
	if (r != 0) {
		free(wa);
		return -r;
	}
	return 0;
}

struct pool *pool_create(int threads)
{
	struct pool *p;

	if (threads < 1 || threads > MODEL_MAX_THREADS)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->threads = threads;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	atomic_init(&p->next, 0);
	p->tid = calloc((size_t)threads, sizeof(pthread_t));
	if (!p->tid) {
		pool_destroy(p);
		return NULL;
	}
	for (int i = 1; i < threads; i++, p->started++) {
		if (start_worker(p, i) < 0) {
			pool_destroy(p);
			return NULL;
		}
	}
	return p;
}

void pool_destroy(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = 1;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->started; i++)
		pthread_join(p->tid[i], NULL);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->go);
	pthread_mutex_destroy(&p->lock);
	free(p->tid);
	free(p);
}

int pool_threads(const struct pool *p)
{
	return p->threads;
}

void pool_run(struct pool *p, int tasks, pool_fn fn, void *arg)
{
	if (tasks <= 0)
		return;
	if (p->threads == 1 || tasks == 1) {
		for (int t = 0; t < tasks; t++)
			fn(arg, t, 0);
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->fn = fn;
	p->arg = arg;
	p->tasks = tasks;
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	p->busy = p->threads - 1;
	p->gen++;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->lock);
	take_tasks(p, fn, arg, tasks, 0);
	pthread_mutex_lock(&p->lock);
	while (p->busy > 0)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}
