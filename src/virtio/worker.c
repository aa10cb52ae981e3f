/* The thread a virtio device serves its queues on: a kick only marks the queue
 * and wakes it, so a vCPU never waits, and a reset waits until it lets go.
 * The poller is the same for a worker that also polls descriptors. */
#include "virtio/virtio.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <time.h>

int virtio_worker_start(struct virtio_worker *w, void *(*fn)(void *), void *arg, const char *name)
{
	pthread_condattr_t ca;
	int r;

	if (pthread_mutex_init(&w->lock, NULL))
		return -ENOMEM;
	/* Deadlines are util_now_ns()'s: they keep their pace when the wall clock jumps. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->idle, NULL);
	w->kicked = 0;
	w->busy = w->stop = false;
	r = util_start_worker(&w->thread, fn, arg, name);
	w->started = r == 0;
	if (r < 0) {
		pthread_cond_destroy(&w->idle);
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
	}
	return r;
}

bool virtio_worker_wait(struct virtio_worker *w, uint64_t deadline_ns, unsigned int *kicked)
{
	struct timespec ts = { (time_t)(deadline_ns / 1000000000ULL),
			       (long)(deadline_ns % 1000000000ULL) };
	bool run;

	pthread_mutex_lock(&w->lock);
	if (w->busy) {
		w->busy = false;
		pthread_cond_broadcast(&w->idle);
	}
	while (!w->kicked && !w->stop && util_now_ns() < deadline_ns) {
		if (deadline_ns == UINT64_MAX)
			pthread_cond_wait(&w->wake, &w->lock);
		else
			pthread_cond_timedwait(&w->wake, &w->lock, &ts);
	}
	run = !w->stop;
	*kicked = w->kicked;
	w->kicked = 0;
	w->busy = run;
	pthread_mutex_unlock(&w->lock);
	return run;
}

void virtio_worker_kick(struct virtio_worker *w, unsigned int q)
{
	pthread_mutex_lock(&w->lock);
	w->kicked |= 1u << q;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

void virtio_worker_quiesce(struct virtio_worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->kicked = 0;
	while (w->busy)
		pthread_cond_wait(&w->idle, &w->lock);
}

void virtio_worker_stop(struct virtio_worker *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	w->started = false;
}

int virtio_poller_init(struct virtio_poller *p)
{
	*p = (struct virtio_poller){ .kick_fd = -1 };
	if (pthread_mutex_init(&p->lock, NULL))
		return -ENOMEM;
	pthread_cond_init(&p->idle, NULL);
	pthread_cond_init(&p->resume, NULL);
	p->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return p->kick_fd < 0 ? -errno : 0;
}

int virtio_poller_start(struct virtio_poller *p, void *(*fn)(void *), void *arg, const char *name)
{
	int r = util_start_worker(&p->thread, fn, arg, name);

	p->started = r == 0;
	return r;
}

void virtio_poller_kick(struct virtio_poller *p)
{
	uint64_t one = 1;

	(void)!write(p->kick_fd, &one, sizeof(one));
}

void virtio_poller_reset(struct virtio_poller *p)
{
	pthread_mutex_lock(&p->lock);
	p->reset_gen++;
	while (p->busy)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
	virtio_poller_kick(p);
}

bool virtio_poller_begin(struct virtio_poller *p, bool kicked, bool *reset)
{
	uint64_t v;

	if (kicked)
		(void)!read(p->kick_fd, &v, sizeof(v));
	pthread_mutex_lock(&p->lock);
	while (p->held && !p->stop)
		pthread_cond_wait(&p->resume, &p->lock);
	if (p->stop) {
		pthread_mutex_unlock(&p->lock);
		return false;
	}
	p->busy = true;
	*reset = p->seen_reset_gen != p->reset_gen;
	p->seen_reset_gen = p->reset_gen;
	pthread_mutex_unlock(&p->lock);
	return true;
}

void virtio_poller_end(struct virtio_poller *p)
{
	pthread_mutex_lock(&p->lock);
	p->busy = false;
	pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
}

void virtio_poller_hold(struct virtio_poller *p)
{
	pthread_mutex_lock(&p->lock);
	p->held = true;
	while (p->busy)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void virtio_poller_release(struct virtio_poller *p)
{
	pthread_mutex_lock(&p->lock);
	p->held = false;
	pthread_cond_broadcast(&p->resume);
	pthread_mutex_unlock(&p->lock);
	virtio_poller_kick(p);
}

void virtio_poller_stop(struct virtio_poller *p)
{
	if (p->started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_mutex_unlock(&p->lock);
		virtio_poller_kick(p);
		pthread_join(p->thread, NULL);
		p->started = false;
	}
	if (p->kick_fd >= 0)
		close(p->kick_fd);
	p->kick_fd = -1;
	pthread_cond_destroy(&p->resume);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
}

void virtio_worker_hold(struct virtio_worker *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	while (w->busy)
		pthread_cond_wait(&w->idle, &w->lock);
}

void virtio_worker_release(struct virtio_worker *w)
{
	if (w->started)
		pthread_mutex_unlock(&w->lock);
}
