/* slurm_agent.c - see slurm_agent.h. */
#include <config.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/backoff.h"
#include "lib/util/log.h"
#include "lib/slurm/slurm_agent.h"

struct queue {
    struct ism_slurm_request *head, *tail;
};

struct ism_slurm_agent {
    ism_slurm_t *slurm; /* used by the owner thread only */
    int efd;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    bool stop;
    struct queue todo, done;
    ism_backoff_t backoff;
};

static void push(struct queue *q, struct ism_slurm_request *r)
{
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
}

static struct ism_slurm_request *pop(struct queue *q)
{
    struct ism_slurm_request *r = q->head;

    if (r && !(q->head = r->next))
        q->tail = NULL;
    return r;
}

/* One call of the synchronous API for req. */
static void run_once(ism_slurm_t *s, struct ism_slurm_request *req)
{
    ism_error_clear(&req->err);
    req->attempts++;
    switch (req->op) {
    case ISM_SLURM_POLL_NODES:
        req->rc = ism_slurm_nodes_poll(s, &req->nodes, &req->err);
        break;
    case ISM_SLURM_POLL_JOBS:
        req->rc = ism_slurm_jobs_poll(s, &req->jobs, &req->err);
        break;
    case ISM_SLURM_ALLOCATE:
        req->rc = ism_slurm_allocate(s, &req->alloc_req, &req->alloc, &req->err);
        break;
    case ISM_SLURM_COMPLETE:
        req->rc = ism_slurm_complete(s, req->job_id, req->value, &req->err);
        break;
    case ISM_SLURM_CANCEL:
        req->rc = ism_slurm_cancel(s, req->job_id, &req->err);
        break;
    case ISM_SLURM_SIGNAL:
        req->rc = ism_slurm_signal(s, req->job_id, req->value, &req->err);
        break;
    default:
        req->rc = ism_err(&req->err, EINVAL, "unknown Slurm request %d", (int)req->op);
    }
    req->errnum = req->rc < 0 ? errno : 0;
}

static bool should_retry(const struct ism_slurm_request *req)
{
    return req->rc < 0 && req->op != ISM_SLURM_ALLOCATE &&
           ism_slurm_error_is_transient(req->errnum) &&
           (req->max_attempts <= 0 || req->attempts < req->max_attempts);
}

/* Sleep ms unless told to stop; true if stopping.  Called with lock held.
 * The condition variable waits on CLOCK_MONOTONIC (see create): a wall
 * clock set back by an hour must not stretch a retry by an hour. */
static bool wait_or_stop(ism_slurm_agent_t *a, int64_t ms)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!a->stop && pthread_cond_timedwait(&a->wake, &a->lock, &until) != ETIMEDOUT)
        ;
    return a->stop;
}

static void finish(ism_slurm_agent_t *a, struct ism_slurm_request *req)
{
    uint64_t one = 1;

    push(&a->done, req);
    /* A full counter (never in practice) still leaves the fd readable. */
    if (write(a->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        ism_log_error("slurm agent: cannot signal the event loop: %s", strerror(errno));
}

static void *owner_thread(void *arg)
{
    ism_slurm_agent_t *a = arg;
    struct ism_slurm_request *req;

    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->stop && !a->todo.head)
            pthread_cond_wait(&a->wake, &a->lock);
        if (a->stop || !(req = pop(&a->todo)))
            break;
        for (int failures = 1;; failures++) {
            int64_t delay;

            pthread_mutex_unlock(&a->lock);
            run_once(a->slurm, req);
            pthread_mutex_lock(&a->lock);
            if (!should_retry(req))
                break;
            delay = ism_backoff_delay(&a->backoff, failures);
            ism_log_warn("slurm: %s; retry %d in %lld ms", req->err.text, req->attempts,
                         (long long)delay);
            if (wait_or_stop(a, delay))
                break;
        }
        finish(a, req);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

ism_slurm_agent_t *ism_slurm_agent_create(const char *conf, ism_error_t *err)
{
    ism_slurm_agent_t *a = calloc(1, sizeof(*a));
    pthread_condattr_t attr;
    int rc;

    if (!a) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    a->efd = -1;
    a->backoff.base_ms = 100;
    a->backoff.cap_ms = 5000;
    pthread_mutex_init(&a->lock, NULL);
    if ((rc = pthread_condattr_init(&attr)) != 0) {
        ism_err(err, rc, "slurm agent: condition attributes: %s", strerror(rc));
        pthread_mutex_destroy(&a->lock);
        free(a);
        return NULL;
    }
    if ((rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) != 0 ||
        (rc = pthread_cond_init(&a->wake, &attr)) != 0) {
        ism_err(err, rc, "slurm agent: a condition on the monotonic clock: %s", strerror(rc));
        pthread_condattr_destroy(&attr);
        pthread_mutex_destroy(&a->lock);
        free(a);
        return NULL;
    }
    pthread_condattr_destroy(&attr);
    if (!(a->slurm = ism_slurm_create(conf, err)))
        goto error;
    if ((a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        ism_err(err, errno, "slurm agent: eventfd: %s", strerror(errno));
        goto error;
    }
    if ((rc = pthread_create(&a->thread, NULL, owner_thread, a)) != 0) {
        ism_err(err, rc, "slurm agent: cannot start its thread: %s", strerror(rc));
        goto error;
    }
    a->started = true;
    return a;
error:
    ism_slurm_agent_destroy(a);
    return NULL;
}

int ism_slurm_agent_set_backoff(ism_slurm_agent_t *a, int first_ms, int cap_ms,
                                ism_error_t *err)
{
    ism_backoff_t b = { first_ms, cap_ms };

    if (!a || ism_backoff_check(&b, "slurm agent backoff", err) < 0)
        return ism_err(err, EINVAL, "slurm agent: missing agent");
    pthread_mutex_lock(&a->lock);
    a->backoff = b;
    pthread_mutex_unlock(&a->lock);
    return 0;
}

int ism_slurm_agent_fd(const ism_slurm_agent_t *a)
{
    return a ? a->efd : -1;
}

int ism_slurm_agent_submit(ism_slurm_agent_t *a, struct ism_slurm_request *req,
                           ism_slurm_done_f done, void *arg, ism_error_t *err)
{
    if (!a || !req || !done)
        return ism_err(err, EINVAL, "slurm agent: missing agent, request or callback");
    req->rc = -1;
    req->errnum = 0;
    req->attempts = 0;
    req->nodes = NULL;
    req->jobs = NULL;
    memset(&req->alloc, 0, sizeof(req->alloc));
    ism_error_clear(&req->err);
    req->done = done;
    req->arg = arg;
    pthread_mutex_lock(&a->lock);
    if (a->stop) {
        pthread_mutex_unlock(&a->lock);
        return ism_err(err, ECANCELED, "slurm agent: stopping");
    }
    push(&a->todo, req);
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    return 0;
}

int ism_slurm_agent_dispatch(ism_slurm_agent_t *a)
{
    struct queue done;
    struct ism_slurm_request *req;
    uint64_t count;
    int n = 0;

    if (!a)
        return 0;
    /* Reset the counter first: a request finishing meanwhile writes again. */
    if (read(a->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        ism_log_error("slurm agent: reading its event fd: %s", strerror(errno));
    pthread_mutex_lock(&a->lock);
    done = a->done;
    a->done.head = a->done.tail = NULL;
    pthread_mutex_unlock(&a->lock);
    while ((req = pop(&done))) {
        req->done(req, req->arg);
        n++;
    }
    return n;
}

void ism_slurm_agent_destroy(ism_slurm_agent_t *a)
{
    int saved = errno;
    struct ism_slurm_request *req;

    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);
    if (a->started)
        pthread_join(a->thread, NULL);
    /* The thread is gone: no lock needed any more. */
    while ((req = pop(&a->todo))) {
        req->rc = ism_err(&req->err, ECANCELED, "slurm agent stopped before the request ran");
        req->errnum = ECANCELED;
        push(&a->done, req);
    }
    while ((req = pop(&a->done)))
        req->done(req, req->arg);
    if (a->efd >= 0)
        close(a->efd);
    ism_slurm_destroy(a->slurm);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a);
    errno = saved;
}
