/*
 * kio.c — the reactor backends (linux-aio, epoll, io_uring) and the syscall
 * thread: how a real-world shard hands I/O to the kernel without blocking.
 * See core/kio.h for the contract.
 *
 * Every backend works the same way from the reactor's side:
 *   - sc__kio_submit() only appends to the shard's pending list;
 *   - sc__kio_poll(), called every reactor turn, submits the whole pending
 *     list in one system call and reaps whatever completed, running each
 *     request's done callback;
 *   - the backend owns one file descriptor in the shard's epoll set that
 *     becomes readable when a completion is waiting (an eventfd for aio and
 *     io_uring, an inner epoll set for the epoll backend), so an idle shard
 *     sleeps in epoll_wait and a finished read wakes it.
 */
#include <errno.h>
#include <libaio.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "core/kio.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/shard_impl.h"

#define AIO_DEPTH     1024 /* requests one shard may have at the kernel */
#define URING_DEPTH   1024
#define SUBMIT_BATCH  128
#define REAP_BATCH    128

/* k->state bits */
#define K_CANCEL 1u /* a POLL that was asked to finish early */

struct sysreq {
    struct sysreq *next;
    sc__syscall_fn fn;
    sc__syscall_done_fn done;
    void *arg;
    int64_t res;
    struct sc_task task; /* the simulator runs it as a task */
};

/* The syscall thread: requests go in under a mutex (the thread holds it only
 * to take the list), answers come back the same way with an eventfd in the
 * shard's epoll set to wake it. */
struct systhread {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sysreq *in_head, *in_tail;
    struct sysreq *out_head, *out_tail;
    _Atomic unsigned out_count;
    bool stop;
    int evfd;
    uint64_t outstanding; /* shard side: sent and not answered */
};

struct fdwait {
    struct sc__kio *rd, *wr;
    uint32_t registered; /* epoll events we asked for */
};

struct kio_shard {
    enum sc_reactor_backend backend;
    int shard_epfd;
    struct sc__kio *pend_head, *pend_tail;
    struct sc__kio *late_head, *late_tail; /* finished outside a turn: delivered in the next */
    uint64_t inflight;
    /* linux-aio (file I/O in the epoll backend too) */
    io_context_t aio;
    int aio_evfd;
    bool aio_ok;
    bool aio_no_fsync; /* the kernel refused IOCB_CMD_FDSYNC: fdatasync on the thread */
    /* io_uring */
    struct io_uring ring;
    bool ring_ok;
    int ring_evfd;
    /* epoll: socket readiness in an inner epoll set */
    int poll_epfd;
    struct fdwait *fds;
    unsigned nfds;
    struct systhread sys;
};

static struct kio_shard *ks(void)
{
    struct sc__shard *s = sc__shard();
    return s ? s->kio : NULL;
}

/* ---------------------------------------------------------------- submit */

int sc__kio_submit(struct sc__kio *k)
{
    struct kio_shard *q = ks();
    if (!q)
        return -ENOSYS;
    if (!k || !k->done || k->fd < 0)
        return -EINVAL;
    switch (k->op) {
    case SC__KIO_READ:
    case SC__KIO_WRITE:
        if (!k->buf && k->len)
            return -EINVAL;
        break;
    case SC__KIO_FDSYNC:
        break;
    case SC__KIO_POLL:
        if (!(k->events & (POLLIN | POLLOUT | POLLPRI | POLLRDHUP)))
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }
    k->state = 0;
    k->next = NULL;
    if (q->pend_tail)
        q->pend_tail->next = k;
    else
        q->pend_head = k;
    q->pend_tail = k;
    q->inflight++;
    return 0;
}

static void complete(struct kio_shard *q, struct sc__kio *k, int64_t res)
{
    q->inflight--;
    if (k->op == SC__KIO_POLL && (k->state & K_CANCEL) && res >= 0 &&
        !(res & (POLLIN | POLLOUT | POLLERR | POLLHUP | POLLPRI | POLLRDHUP)))
        res = -ECANCELED;
    k->done(k, res);
}

/* Finish k in the next turn: done callbacks never run inside the caller's call. */
static void complete_later(struct kio_shard *q, struct sc__kio *k, int64_t res)
{
    k->res = res;
    k->next = NULL;
    if (q->late_tail)
        q->late_tail->next = k;
    else
        q->late_head = k;
    q->late_tail = k;
}

static bool deliver_late(struct kio_shard *q)
{
    struct sc__kio *k = q->late_head;
    if (!k)
        return false;
    q->late_head = q->late_tail = NULL;
    while (k) {
        struct sc__kio *next = k->next;
        complete(q, k, k->res);
        k = next;
    }
    return true;
}

/* ---------------------------------------------------------------- the syscall thread */

static void *systhread_main(void *p)
{
    struct systhread *t = p;
    /* The thread was born pinned to its shard's CPU (threads inherit their
     * creator's mask). It blocks in the kernel most of its life; when it
     * runs, it should run wherever there is room, not steal the shard's CPU. */
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int c = 0; c < CPU_SETSIZE && c < get_nprocs_conf(); c++)
        CPU_SET(c, &all);
    pthread_setaffinity_np(pthread_self(), sizeof all, &all); /* best effort: a cpuset may refuse */
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->in_head && !t->stop)
            pthread_cond_wait(&t->cv, &t->mu);
        if (!t->in_head && t->stop)
            break;
        struct sysreq *r = t->in_head;
        t->in_head = r->next;
        if (!t->in_head)
            t->in_tail = NULL;
        pthread_mutex_unlock(&t->mu);
        r->res = r->fn(r->arg);
        pthread_mutex_lock(&t->mu);
        r->next = NULL;
        if (t->out_tail)
            t->out_tail->next = r;
        else
            t->out_head = r;
        t->out_tail = r;
        atomic_fetch_add_explicit(&t->out_count, 1, memory_order_release);
        uint64_t one = 1;
        ssize_t w = write(t->evfd, &one, sizeof one);
        (void)w;
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static int systhread_start(struct kio_shard *q)
{
    struct systhread *t = &q->sys;
    t->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t->evfd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = t->evfd};
    if (epoll_ctl(q->shard_epfd, EPOLL_CTL_ADD, t->evfd, &ev) != 0) {
        int e = -errno;
        close(t->evfd);
        t->evfd = -1;
        return e;
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    int rc = pthread_create(&t->thread, NULL, systhread_main, t);
    if (rc != 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        close(t->evfd);
        t->evfd = -1;
        return -rc;
    }
    t->started = true;
    return 0;
}

static void sim_syscall_task(struct sc_task *task)
{
    struct sysreq *r = SC_CONTAINER_OF(task, struct sysreq, task);
    int64_t res = r->fn(r->arg);
    r->done(r->arg, res);
    sc_free(r);
}

int sc__syscall(sc__syscall_fn fn, sc__syscall_done_fn done, void *arg)
{
    struct sysreq *r = sc_malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = (struct sysreq){.fn = fn, .done = done, .arg = arg};
    struct kio_shard *q = ks();
    if (!q) {
        /* the simulator (or a shard without a backend): run it as a task */
        r->task.run = sim_syscall_task;
        sc_task_schedule(&r->task);
        return 0;
    }
    struct systhread *t = &q->sys;
    if (!t->started) {
        int rc = systhread_start(q);
        if (rc < 0) {
            sc_free(r);
            sc_log(SC_LOG_ERROR, "kio: cannot start the syscall thread: %s", strerror(-rc));
            return rc;
        }
    }
    pthread_mutex_lock(&t->mu);
    if (t->in_tail)
        t->in_tail->next = r;
    else
        t->in_head = r;
    t->in_tail = r;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    t->outstanding++;
    q->inflight++;
    return 0;
}

static bool systhread_reap(struct kio_shard *q)
{
    struct systhread *t = &q->sys;
    if (!t->started || atomic_load_explicit(&t->out_count, memory_order_acquire) == 0)
        return false;
    pthread_mutex_lock(&t->mu);
    struct sysreq *r = t->out_head;
    t->out_head = t->out_tail = NULL;
    atomic_store_explicit(&t->out_count, 0, memory_order_relaxed);
    pthread_mutex_unlock(&t->mu);
    while (r) {
        struct sysreq *next = r->next;
        t->outstanding--;
        q->inflight--;
        r->done(r->arg, r->res);
        sc_free(r);
        r = next;
    }
    return true;
}

static void systhread_stop(struct kio_shard *q)
{
    struct systhread *t = &q->sys;
    if (!t->started)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    /* answers nobody will collect, and requests the thread never took */
    for (struct sysreq *r = t->out_head, *n; r; r = n) {
        n = r->next;
        sc_free(r);
    }
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    close(t->evfd);
    t->started = false;
}

/* fdatasync on the syscall thread, for kernels whose aio has no FDSYNC */
static int64_t fsync_on_thread(void *arg)
{
    struct sc__kio *k = arg;
    return fdatasync(k->fd) == 0 ? 0 : -errno;
}

static void fsync_done(void *arg, int64_t res)
{
    struct sc__kio *k = arg;
    complete(ks(), k, res); /* systhread_reap() uncounts the syscall itself */
}

/* ---------------------------------------------------------------- linux-aio */

static void aio_prep(struct kio_shard *q, struct sc__kio *k, struct iocb *cb)
{
    switch (k->op) {
    case SC__KIO_READ:
        io_prep_pread(cb, k->fd, k->buf, k->len, (long long)k->off);
        break;
    case SC__KIO_WRITE:
        io_prep_pwrite(cb, k->fd, k->buf, k->len, (long long)k->off);
        break;
    case SC__KIO_FDSYNC:
        io_prep_fdsync(cb, k->fd);
        break;
    case SC__KIO_POLL:
        io_prep_poll(cb, k->fd, (int)k->events);
        break;
    }
    cb->data = k;
    io_set_eventfd(cb, q->aio_evfd);
}

/* Hand one request that aio cannot take to where it can go. */
static void aio_reroute(struct kio_shard *q, struct sc__kio *k, int err)
{
    if (k->op == SC__KIO_FDSYNC && err == -EINVAL && !q->aio_no_fsync) {
        q->aio_no_fsync = true;
        sc_log(SC_LOG_INFO, "kio: this kernel's aio has no fdatasync; using the syscall thread");
    }
    if (k->op == SC__KIO_FDSYNC && q->aio_no_fsync) {
        int rc = sc__syscall(fsync_on_thread, fsync_done, k);
        if (rc == 0)
            return;
        err = rc;
    }
    complete(q, k, err);
}

static bool aio_submit_some(struct kio_shard *q, struct sc__kio **head)
{
    struct iocb *cbs[SUBMIT_BATCH];
    struct sc__kio *ks_[SUBMIT_BATCH];
    int n = 0;
    for (struct sc__kio *k = *head; k && n < SUBMIT_BATCH; k = k->next) {
        if (k->op == SC__KIO_FDSYNC && q->aio_no_fsync)
            break; /* handled below, one at a time */
        struct iocb *cb = (struct iocb *)k->priv;
        aio_prep(q, k, cb);
        cbs[n] = cb;
        ks_[n] = k;
        n++;
    }
    if (n == 0) {
        struct sc__kio *k = *head;
        *head = k->next;
        aio_reroute(q, k, -EINVAL);
        return true;
    }
    int r = io_submit(q->aio, n, cbs);
    if (r == -EAGAIN || r == 0)
        return false; /* the kernel is full: try again next turn */
    if (r < 0) {
        /* the first request is bad; the rest may be fine */
        struct sc__kio *k = ks_[0];
        *head = k->next;
        aio_reroute(q, k, r);
        return true;
    }
    *head = ks_[r - 1]->next;
    return true;
}

static bool aio_reap(struct kio_shard *q)
{
    struct io_event evs[REAP_BATCH];
    struct timespec zero = {0, 0};
    bool any = false;
    for (;;) {
        int n = io_getevents(q->aio, 0, REAP_BATCH, evs, &zero);
        if (n <= 0)
            break;
        any = true;
        for (int i = 0; i < n; i++) {
            struct sc__kio *k = evs[i].data;
            long res = (long)evs[i].res;
            if (k->op == SC__KIO_FDSYNC && res == -EINVAL) {
                aio_reroute(q, k, (int)res);
                continue;
            }
            complete(q, k, res);
        }
        if (n < REAP_BATCH)
            break;
    }
    return any;
}

/* ---------------------------------------------------------------- io_uring */

static bool uring_submit_some(struct kio_shard *q, struct sc__kio **head)
{
    bool any = false;
    while (*head) {
        struct sc__kio *k = *head;
        struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
        if (!sqe)
            break;
        switch (k->op) {
        case SC__KIO_READ:
            io_uring_prep_read(sqe, k->fd, k->buf, (unsigned)k->len, k->off);
            break;
        case SC__KIO_WRITE:
            io_uring_prep_write(sqe, k->fd, k->buf, (unsigned)k->len, k->off);
            break;
        case SC__KIO_FDSYNC:
            io_uring_prep_fsync(sqe, k->fd, IORING_FSYNC_DATASYNC);
            break;
        case SC__KIO_POLL:
            io_uring_prep_poll_add(sqe, k->fd, k->events);
            break;
        }
        io_uring_sqe_set_data(sqe, k);
        *head = k->next;
        any = true;
    }
    if (io_uring_sq_ready(&q->ring))
        io_uring_submit(&q->ring);
    return any;
}

static bool uring_reap(struct kio_shard *q)
{
    bool any = false;
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&q->ring, &cqe) == 0) {
        struct sc__kio *k = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&q->ring, cqe);
        if (!k)
            continue; /* a cancel request's own answer */
        if (k->op == SC__KIO_POLL && (k->state & K_CANCEL) && res == -ECANCELED) {
            complete(q, k, -ECANCELED);
        } else {
            complete(q, k, res);
        }
        any = true;
    }
    return any;
}

/* ---------------------------------------------------------------- epoll (socket readiness) */

static int fd_update(struct kio_shard *q, int fd)
{
    struct fdwait *w = &q->fds[fd];
    uint32_t want = (w->rd ? EPOLLIN | EPOLLRDHUP : 0) | (w->wr ? EPOLLOUT : 0);
    if (want == w->registered)
        return 0;
    struct epoll_event ev = {.events = want, .data.u64 = (uint64_t)fd};
    int op = !w->registered ? EPOLL_CTL_ADD : want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    if (epoll_ctl(q->poll_epfd, op, fd, &ev) != 0) {
        if (op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT)) {
            w->registered = 0; /* the fd was closed under us: the kernel dropped it */
            return 0;
        }
        return -errno;
    }
    w->registered = want;
    return 0;
}

static int fd_grow(struct kio_shard *q, int fd)
{
    if ((unsigned)fd < q->nfds)
        return 0;
    unsigned n = q->nfds ? q->nfds : 64;
    while (n <= (unsigned)fd)
        n *= 2;
    struct fdwait *nf = realloc(q->fds, n * sizeof *nf);
    if (!nf)
        return -ENOMEM;
    memset(nf + q->nfds, 0, (n - q->nfds) * sizeof *nf);
    q->fds = nf;
    q->nfds = n;
    return 0;
}

static void epoll_start_poll(struct kio_shard *q, struct sc__kio *k)
{
    int rc = fd_grow(q, k->fd);
    if (rc == 0) {
        struct fdwait *w = &q->fds[k->fd];
        bool rd = k->events & (POLLIN | POLLPRI | POLLRDHUP);
        struct sc__kio **slot = rd ? &w->rd : &w->wr;
        if (*slot) {
            rc = -EBUSY; /* one waiter per direction */
        } else {
            *slot = k;
            rc = fd_update(q, k->fd);
            if (rc < 0)
                *slot = NULL;
        }
    }
    if (rc < 0)
        complete(q, k, rc);
}

static bool epoll_reap(struct kio_shard *q)
{
    struct epoll_event evs[REAP_BATCH];
    int n = epoll_wait(q->poll_epfd, evs, REAP_BATCH, 0);
    for (int i = 0; i < n; i++) {
        int fd = (int)evs[i].data.u64;
        struct fdwait *w = &q->fds[fd];
        uint32_t e = evs[i].events;
        uint32_t revents = (e & EPOLLIN ? POLLIN : 0) | (e & EPOLLOUT ? POLLOUT : 0) |
                           (e & EPOLLERR ? POLLERR : 0) | (e & EPOLLHUP ? POLLHUP : 0) |
                           (e & EPOLLRDHUP ? POLLRDHUP : 0);
        struct sc__kio *rd = NULL, *wr = NULL;
        if (w->rd && (e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) {
            rd = w->rd;
            w->rd = NULL;
        }
        if (w->wr && (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            wr = w->wr;
            w->wr = NULL;
        }
        fd_update(q, fd);
        if (rd)
            complete(q, rd, revents);
        if (wr)
            complete(q, wr, revents);
    }
    return n > 0;
}

static int epoll_cancel(struct kio_shard *q, struct sc__kio *k)
{
    if ((unsigned)k->fd >= q->nfds)
        return -ENOENT;
    struct fdwait *w = &q->fds[k->fd];
    struct sc__kio **slot = w->rd == k ? &w->rd : w->wr == k ? &w->wr : NULL;
    if (!slot)
        return -ENOENT;
    *slot = NULL;
    fd_update(q, k->fd);
    k->state |= K_CANCEL;
    complete_later(q, k, -ECANCELED);
    return 0;
}

/* ---------------------------------------------------------------- the turn */

bool sc__kio_poll(struct sc__shard *s)
{
    struct kio_shard *q = s->kio;
    if (!q)
        return false;
    bool any = deliver_late(q);
    /* submit: socket polls of the epoll backend go to its epoll set, the
     * rest to aio or the ring */
    struct sc__kio *head = q->pend_head;
    q->pend_head = q->pend_tail = NULL;
    struct sc__kio *keep_head = NULL, **keep_tail = &keep_head;
    if (q->backend == SC_REACTOR_EPOLL) {
        struct sc__kio **pp = &head;
        while (*pp) {
            struct sc__kio *k = *pp;
            if (k->op == SC__KIO_POLL) {
                *pp = k->next;
                epoll_start_poll(q, k);
                any = true;
            } else {
                pp = &k->next;
            }
        }
    }
    while (head) {
        bool progress = q->backend == SC_REACTOR_IO_URING ? uring_submit_some(q, &head)
                                                            : aio_submit_some(q, &head);
        if (!progress)
            break;
        any = true;
    }
    /* whatever the kernel would not take waits for the next turn */
    if (head) {
        *keep_tail = head;
        while (head->next)
            head = head->next;
        keep_tail = &head->next;
        q->pend_head = keep_head;
        q->pend_tail = head;
    }
    if (q->backend == SC_REACTOR_IO_URING)
        any |= uring_reap(q);
    else
        any |= aio_reap(q);
    if (q->backend == SC_REACTOR_EPOLL)
        any |= epoll_reap(q);
    any |= systhread_reap(q);
    return any;
}

bool sc__kio_idle(struct sc__shard *s)
{
    struct kio_shard *q = s->kio;
    return !q || (!q->pend_head && !q->late_head);
}

uint64_t sc__kio_inflight_of(struct sc__shard *s)
{
    struct kio_shard *q = s ? s->kio : NULL;
    return q ? q->inflight : 0;
}

uint64_t sc__kio_inflight(void)
{
    return sc__kio_inflight_of(sc__shard());
}

bool sc__kio_buffered_async(void)
{
    struct kio_shard *q = ks();
    return q && q->backend == SC_REACTOR_IO_URING;
}

int sc__kio_cancel(struct sc__kio *k)
{
    struct kio_shard *q = ks();
    if (!q)
        return -ENOSYS;
    if (k->op != SC__KIO_POLL)
        return -EINVAL;
    /* still on the pending list: take it off and finish it */
    for (struct sc__kio **pp = &q->pend_head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            if (q->pend_tail == k)
                q->pend_tail = prev;
            k->state |= K_CANCEL;
            complete_later(q, k, -ECANCELED);
            return 0;
        }
    }
    if (k->state & K_CANCEL)
        return 0;
    switch (q->backend) {
    case SC_REACTOR_EPOLL:
        return epoll_cancel(q, k);
    case SC_REACTOR_LINUX_AIO: {
        k->state |= K_CANCEL;
        struct io_event ev;
        int rc = io_cancel(q->aio, (struct iocb *)k->priv, &ev);
        if (rc == 0)
            complete_later(q, k, -ECANCELED); /* the kernel handed the result back here */
        /* -EINPROGRESS: the completion arrives through the ring as usual */
        return 0;
    }
    case SC_REACTOR_IO_URING: {
        k->state |= K_CANCEL;
        struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
        if (!sqe) {
            io_uring_submit(&q->ring);
            sqe = io_uring_get_sqe(&q->ring);
        }
        if (!sqe)
            return -EAGAIN;
        io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)k);
        io_uring_sqe_set_data(sqe, NULL);
        io_uring_submit(&q->ring);
        return 0;
    }
    }
    return -EINVAL;
}

const char *sc__kio_backend_name(void)
{
    struct kio_shard *q = ks();
    if (!q)
        return "sim";
    switch (q->backend) {
    case SC_REACTOR_LINUX_AIO:
        return "linux-aio";
    case SC_REACTOR_EPOLL:
        return "epoll";
    case SC_REACTOR_IO_URING:
        return "io_uring";
    }
    return "?";
}

/* ---------------------------------------------------------------- set-up */

static int watch(int epfd, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static int aio_open(struct kio_shard *q)
{
    q->aio_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->aio_evfd < 0)
        return -errno;
    int rc = io_setup(AIO_DEPTH, &q->aio);
    if (rc < 0) {
        sc_log(SC_LOG_ERROR,
               "kio: io_setup(%d) failed: %s (raise /proc/sys/fs/aio-max-nr, or use "
               "--reactor-backend io_uring)",
               AIO_DEPTH, strerror(-rc));
        return rc;
    }
    q->aio_ok = true;
    return watch(q->shard_epfd, q->aio_evfd);
}

static int uring_open(struct kio_shard *q)
{
    int rc = io_uring_queue_init(URING_DEPTH, &q->ring, 0);
    if (rc < 0) {
        sc_log(SC_LOG_ERROR, "kio: io_uring_queue_init failed: %s", strerror(-rc));
        return rc;
    }
    q->ring_ok = true;
    q->ring_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->ring_evfd < 0)
        return -errno;
    rc = io_uring_register_eventfd(&q->ring, q->ring_evfd);
    if (rc < 0)
        return rc;
    return watch(q->shard_epfd, q->ring_evfd);
}

int sc__kio_shard_init(struct sc__shard *s, int epfd)
{
    struct kio_shard *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->backend = s->cfg.reactor_backend;
    q->shard_epfd = epfd;
    q->aio_evfd = q->ring_evfd = q->poll_epfd = q->sys.evfd = -1;
    s->kio = q;
    int rc;
    switch (q->backend) {
    case SC_REACTOR_IO_URING:
        rc = uring_open(q);
        break;
    case SC_REACTOR_EPOLL:
        q->poll_epfd = epoll_create1(EPOLL_CLOEXEC);
        rc = q->poll_epfd < 0 ? -errno : watch(epfd, q->poll_epfd);
        if (rc == 0)
            rc = aio_open(q);
        break;
    default:
        rc = aio_open(q);
        break;
    }
    if (rc < 0) {
        sc__kio_shard_fini(s);
        return rc;
    }
    return 0;
}

void sc__kio_shard_fini(struct sc__shard *s)
{
    struct kio_shard *q = s->kio;
    if (!q)
        return;
    systhread_stop(q);
    if (q->aio_ok)
        io_destroy(q->aio);
    if (q->ring_ok)
        io_uring_queue_exit(&q->ring);
    if (q->aio_evfd >= 0)
        close(q->aio_evfd);
    if (q->ring_evfd >= 0)
        close(q->ring_evfd);
    if (q->poll_epfd >= 0)
        close(q->poll_epfd);
    free(q->fds);
    free(q);
    s->kio = NULL;
}
