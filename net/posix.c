/*
 * posix.c — the posix stack: the kernel's TCP and UDP sockets, driven by the
 * reactor.
 *
 * Every socket is non-blocking, and every operation follows one pattern:
 * try the system call; if the kernel says EAGAIN, submit a POLL request to
 * the shard's reactor backend (core/kio.h: epoll, linux-aio or io_uring)
 * and try again when it says the socket is ready. A socket has at most one
 * poll per direction in flight: one for reading (recv, accept, recvfrom)
 * and one for writing (send, connect, sendto), which is all the epoll
 * backend allows.
 *
 * A socket's file descriptor is closed only after every poll on it has
 * finished (a cancelled poll still runs its done callback, with
 * -ECANCELED), so a number the kernel hands out again is never confused
 * with the old socket.
 *
 * Spreading connections over shards, two ways (sc_listen_opts):
 *   - SO_REUSEPORT: each shard has its own listening socket on the same
 *     address and the kernel picks one per connection, by a hash of the
 *     connection's addresses and ports;
 *   - accept-and-forward: the first shard to listen owns the only
 *     listening socket and accepts everything; each connection's file
 *     descriptor goes to the next listening shard in turn (submit_to), which
 *     wraps it into a connection when its app calls sc_accept(). The shards
 *     listening on an address are found in a small process-wide table under
 *     a mutex, touched when a shard starts or stops listening and once per
 *     forwarded connection; no shard ever touches another shard's socket.
 *
 * Every socket is also on its shard's list, so that the ones an app forgot
 * to close are closed when the shard ends (no file descriptor outlives a
 * run).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/kio.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/memory.h"
#include "core/shard_impl.h"
#include "core/smp.h"
#include "net/net_impl.h"

#define UDP_MAX_DATAGRAM 65536
#define FWD_BATCH        64 /* connections accepted per readiness before polling again */
#define ACCEPT_RETRY_NS  SC_MS(10)

/* ==== the shard's sockets ================================================ */

enum pkind { P_CONN, P_SERVER, P_UDP };

struct pnode {
    struct pnode *prev, *next;
    uint8_t kind;
};

struct pshard {
    struct pnode all; /* every socket of this shard (a ring with this head) */
};

static void pshard_fini(struct sc__shard *s);

static struct pshard *pshard_get(void)
{
    struct sc__shard *s = sc__shard();
    if (s->net)
        return s->net;
    struct pshard *sh = sc_calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    if (sc__shard_on_fini(s, pshard_fini) < 0) {
        sc_free(sh);
        return NULL;
    }
    sh->all.prev = sh->all.next = &sh->all;
    s->net = sh;
    return sh;
}

static void pnode_link(struct pshard *sh, struct pnode *n, enum pkind kind)
{
    n->kind = (uint8_t)kind;
    n->next = &sh->all;
    n->prev = sh->all.prev;
    n->prev->next = n;
    sh->all.prev = n;
}

static void pnode_unlink(struct pnode *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* ---- addresses ---- */

static struct sockaddr_in to_sockaddr(const struct sc_inet_addr *a)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(a->ip);
    sa.sin_port = htons(a->port);
    return sa;
}

static struct sc_inet_addr from_sockaddr(const struct sockaddr_in *sa)
{
    struct sc_inet_addr a = {ntohl(sa->sin_addr.s_addr), ntohs(sa->sin_port)};
    return a;
}

static struct sc_inet_addr sock_name(int fd, bool peer)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    int rc = peer ? getpeername(fd, (struct sockaddr *)&sa, &len)
                  : getsockname(fd, (struct sockaddr *)&sa, &len);
    if (rc != 0) {
        struct sc_inet_addr none = {0, 0};
        return none;
    }
    return from_sockaddr(&sa);
}

/* Submit a readiness poll on fd. */
static int poll_submit(struct sc__kio *k, int fd, uint32_t events, sc__kio_done_fn done)
{
    memset(k, 0, sizeof *k);
    k->op = SC__KIO_POLL;
    k->fd = fd;
    k->events = events;
    k->done = done;
    return sc__kio_submit(k);
}

/* ==== connections ======================================================== */

struct pconn {
    struct sc_conn c; /* first: net.c sees this */
    struct pnode node;
    int fd;
    bool closing;
    bool shut_wr;
    bool close_wanted; /* cp waits for the last poll to finish */
    /* reading: one recv waiting for POLLIN */
    bool rspec; /* try recv before polling: the last recv filled its buffer */
    struct sc__kio rk;
    bool rk_armed;
    struct sc_promise rp;
    char *rbuf;
    size_t rlen;
    /* writing: one send (or the connect) waiting for POLLOUT */
    struct sc__kio wk;
    bool wk_armed;
    struct sc_promise wp;
    const char *wbuf;
    size_t wlen;
    struct sc_promise cp; /* close: every poll has finished */
};

static const struct sc__conn_ops pconn_ops;
static const struct sc_source_ops pconn_source;
static const struct sc_sink_ops pconn_sink;

/* Free a connection whose streams are idle or were never set up. */
static void pconn_destroy(struct pconn *pc)
{
    pnode_unlink(&pc->node);
    if (pc->fd >= 0)
        close(pc->fd);
    sc_free(pc);
}

static struct pconn *pconn_alloc(int fd)
{
    struct pshard *sh = pshard_get();
    struct pconn *pc = sh ? sc_calloc(1, sizeof *pc) : NULL;
    if (!pc)
        return NULL;
    pc->fd = fd;
    pnode_link(sh, &pc->node, P_CONN);
    return pc;
}

/* fd is connected: make it a connection (nodelay on, streams, addresses). */
static int pconn_setup(struct pconn *pc)
{
    int one = 1;
    setsockopt(pc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pc->c.ops = &pconn_ops;
    pc->rspec = true; /* a new connection may have data waiting already */
    pc->c.local = sock_name(pc->fd, false);
    pc->c.peer = sock_name(pc->fd, true);
    return sc__conn_init_streams(&pc->c, &pconn_source, &pconn_sink, pc);
}

/* Wrap an accepted fd; on failure the fd is closed. */
static struct sc_conn *pconn_wrap(int fd, int *err)
{
    struct pconn *pc = pconn_alloc(fd);
    if (!pc) {
        close(fd);
        *err = -ENOMEM;
        return NULL;
    }
    int rc = pconn_setup(pc);
    if (rc < 0) {
        pconn_destroy(pc);
        *err = rc;
        return NULL;
    }
    return &pc->c;
}

/* A poll of a closing connection finished: when it was the last, the close goes on. */
static void pconn_poll_ended(struct pconn *pc)
{
    if (pc->close_wanted && !pc->rk_armed && !pc->wk_armed) {
        pc->close_wanted = false;
        sc_promise_set_value(&pc->cp, 0);
    }
}

/* ---- the source: recv into the input stream's buffer ---- */

static ssize_t recv_some(int fd, char *buf, size_t len)
{
    ssize_t n;
    do
        n = recv(fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static void pconn_readable(struct sc__kio *k, int64_t res);

static int arm_read(struct pconn *pc)
{
    int rc = poll_submit(&pc->rk, pc->fd, POLLIN, pconn_readable);
    if (rc == 0)
        pc->rk_armed = true;
    return rc;
}

static void pconn_readable(struct sc__kio *k, int64_t res)
{
    struct pconn *pc = SC_CONTAINER_OF(k, struct pconn, rk);
    pc->rk_armed = false;
    if (pc->closing) {
        sc_promise_set_error(&pc->rp, -ECONNABORTED);
        pconn_poll_ended(pc);
        return;
    }
    ssize_t n = res < 0 ? (ssize_t)res : recv_some(pc->fd, pc->rbuf, pc->rlen);
    if (n == -EAGAIN && (n = arm_read(pc)) == 0)
        return; /* woken for nothing: wait again */
    pc->rspec = n > 0 && (size_t)n == pc->rlen;
    if (n < 0)
        sc_promise_set_error(&pc->rp, (int)n);
    else
        sc_promise_set_value(&pc->rp, n);
}

static struct sc_future pconn_read(void *impl, char *buf, size_t len)
{
    struct pconn *pc = impl;
    if (pc->closing)
        return sc_make_error(-ECONNABORTED);
    /* Speculation, as Seastar does it: a recv that filled the buffer
     * suggests more is waiting, so try again at once; a short one says the
     * socket is drained, so a recv now would almost always be EAGAIN — a
     * wasted system call per request for a request/response server. Poll
     * first instead. */
    if (pc->rspec) {
        ssize_t n = recv_some(pc->fd, buf, len);
        if (n >= 0) {
            pc->rspec = (size_t)n == len;
            return sc_make_ready(n);
        }
        if (n != -EAGAIN)
            return sc_make_error((int)n);
    }
    pc->rbuf = buf;
    pc->rlen = len;
    int rc = arm_read(pc);
    if (rc < 0)
        return sc_make_error(rc);
    sc_promise_init(&pc->rp);
    return sc_promise_get_future(&pc->rp);
}

/* ---- the sink: send until all is gone ---- */

/* Send pc->wbuf[0, wlen); 0 when all went, -EAGAIN, or the error. */
static int send_rest(struct pconn *pc)
{
    while (pc->wlen) {
        ssize_t n = send(pc->fd, pc->wbuf, pc->wlen, MSG_NOSIGNAL);
        if (n > 0) {
            pc->wbuf += n;
            pc->wlen -= (size_t)n;
        } else if (n < 0 && errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

static void pconn_writable(struct sc__kio *k, int64_t res);

static int arm_write(struct pconn *pc, sc__kio_done_fn done)
{
    int rc = poll_submit(&pc->wk, pc->fd, POLLOUT, done);
    if (rc == 0)
        pc->wk_armed = true;
    return rc;
}

static void pconn_writable(struct sc__kio *k, int64_t res)
{
    struct pconn *pc = SC_CONTAINER_OF(k, struct pconn, wk);
    pc->wk_armed = false;
    if (pc->closing) {
        sc_promise_set_error(&pc->wp, -ECONNABORTED);
        pconn_poll_ended(pc);
        return;
    }
    int rc = res < 0 ? (int)res : send_rest(pc);
    if (rc == -EAGAIN && (rc = arm_write(pc, pconn_writable)) == 0)
        return;
    if (rc < 0)
        sc_promise_set_error(&pc->wp, rc);
    else
        sc_promise_set_value(&pc->wp, 0);
}

static struct sc_future pconn_write(void *impl, const char *buf, size_t len)
{
    struct pconn *pc = impl;
    if (pc->closing)
        return sc_make_error(-ECONNABORTED);
    if (pc->shut_wr)
        return sc_make_error(-EPIPE);
    pc->wbuf = buf;
    pc->wlen = len;
    int rc = send_rest(pc);
    if (rc == 0)
        return sc_make_ready(0);
    if (rc != -EAGAIN)
        return sc_make_error(rc);
    rc = arm_write(pc, pconn_writable);
    if (rc < 0)
        return sc_make_error(rc);
    sc_promise_init(&pc->wp);
    return sc_promise_get_future(&pc->wp);
}

/* The output stream's close: the peer reads end of stream. */
static struct sc_future pconn_sink_close(void *impl)
{
    struct pconn *pc = impl;
    if (pc->closing || pc->shut_wr)
        return sc_make_ready(0);
    pc->shut_wr = true;
    if (shutdown(pc->fd, SHUT_WR) != 0)
        return sc_make_error(-errno);
    return sc_make_ready(0);
}

static const struct sc_source_ops pconn_source = {pconn_read, NULL};
static const struct sc_sink_ops pconn_sink = {pconn_write, pconn_sink_close};

/* ---- the connection's own operations ---- */

static bool pconn_idle(void *cap)
{
    struct pconn *pc = *(struct pconn **)cap;
    return !pc->rk_armed && !pc->wk_armed && sc__conn_streams_idle(&pc->c);
}

static struct sc_future yield_once(void *cap)
{
    (void)cap;
    return sc_yield();
}

static struct sc_future pconn_free(void *cap, intptr_t v)
{
    (void)v;
    struct pconn *pc = *(struct pconn **)cap;
    sc__conn_release_streams(&pc->c);
    pconn_destroy(pc);
    return sc_make_ready(0);
}

/*
 * Every poll has finished, so the streams' waiting reads and writes have
 * been failed; their continuations are queued and run before this one
 * (same group) or soon after (another group): wait for them, then free.
 */
static struct sc_future pconn_polls_done(void *cap, intptr_t v)
{
    (void)v;
    return sc_then(sc_do_until(pconn_idle, yield_once, cap, sizeof(struct pconn *)), pconn_free,
                   cap, sizeof(struct pconn *));
}

static struct sc_future pconn_close(struct sc_conn *c)
{
    struct pconn *pc = (struct pconn *)c;
    if (pc->closing)
        return sc_make_error(-EALREADY);
    pc->closing = true;
    if (pc->rk_armed)
        sc__kio_cancel(&pc->rk);
    if (pc->wk_armed)
        sc__kio_cancel(&pc->wk);
    struct sc_future f = sc_make_ready(0);
    if (pc->rk_armed || pc->wk_armed) {
        sc_promise_init(&pc->cp);
        pc->close_wanted = true;
        f = sc_promise_get_future(&pc->cp);
    }
    return sc_then(f, pconn_polls_done, &pc, sizeof pc);
}

static struct sc_future pconn_shutdown_output(struct sc_conn *c)
{
    return pconn_sink_close(c);
}

static int set_flag(struct pconn *pc, int level, int opt, bool on)
{
    if (pc->closing)
        return -EBADF;
    int v = on;
    return setsockopt(pc->fd, level, opt, &v, sizeof v) == 0 ? 0 : -errno;
}

static int pconn_set_nodelay(struct sc_conn *c, bool on)
{
    return set_flag((struct pconn *)c, IPPROTO_TCP, TCP_NODELAY, on);
}

static int pconn_set_keepalive(struct sc_conn *c, bool on)
{
    return set_flag((struct pconn *)c, SOL_SOCKET, SO_KEEPALIVE, on);
}

static const struct sc__conn_ops pconn_ops = {
    .close = pconn_close,
    .shutdown_output = pconn_shutdown_output,
    .set_nodelay = pconn_set_nodelay,
    .set_keepalive = pconn_set_keepalive,
};

/* ---- connect ---- */

static struct sc_future connect_finish(struct pconn *pc)
{
    int rc = pconn_setup(pc);
    if (rc < 0) {
        pconn_destroy(pc);
        return sc_make_error(rc);
    }
    return sc_make_ready_ptr(&pc->c);
}

static void connect_ready(struct sc__kio *k, int64_t res)
{
    struct pconn *pc = SC_CONTAINER_OF(k, struct pconn, wk);
    pc->wk_armed = false;
    int err = (int)res;
    if (res >= 0) {
        socklen_t len = sizeof err;
        if (getsockopt(pc->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        err = -err;
    }
    if (err == 0) {
        err = pconn_setup(pc);
        if (err == 0) {
            sc_promise_set_value(&pc->wp, (intptr_t)&pc->c);
            return;
        }
    }
    sc_promise_set_error(&pc->wp, err);
    pconn_destroy(pc);
}

static struct sc_future ps_connect(const struct sc_inet_addr *to)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sc_make_error(-errno);
    struct pconn *pc = pconn_alloc(fd);
    if (!pc) {
        close(fd);
        return sc_make_error(-ENOMEM);
    }
    struct sockaddr_in sa = to_sockaddr(to);
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return connect_finish(pc);
    int err = errno == EINPROGRESS ? arm_write(pc, connect_ready) : -errno;
    if (err < 0) {
        pconn_destroy(pc);
        return sc_make_error(err);
    }
    sc_promise_init(&pc->wp);
    return sc_promise_get_future(&pc->wp);
}

/* ==== listening ========================================================== */

struct fwd_entry;

struct pserver {
    struct sc_server_socket s; /* first: net.c sees this */
    struct pnode node;
    int fd; /* the kernel's listening socket; -1 on a shard that only gets forwarded fds */
    bool forward;
    bool closing;
    int backlog;
    struct fwd_entry *entry; /* accept-and-forward: the address's table entry */
    /* the accept poll (and, when forwarding, the accept loop's) */
    struct sc__kio k;
    bool k_armed;
    struct sc_timer retry; /* the accept loop after an error (out of fds...) */
    /* the app's accept */
    struct sc_promise ap;
    bool accept_waiting;
    /* accept-and-forward: fds handed to this shard, not yet accepted */
    int *q;
    unsigned qhead, qlen, qcap;
    uint64_t dropped;
};

/* The shards listening on one address in accept-and-forward mode. */
struct fwd_entry {
    struct fwd_entry *next;
    struct sc_inet_addr addr;
    int acceptor;                          /* the shard that owns the listening socket, or -1 */
    unsigned rr;                           /* the next shard to try */
    unsigned members;                      /* shards listening */
    struct pserver *member[SC_MAX_SHARDS]; /* member[i] belongs to shard i (and only it reads it) */
};

static pthread_mutex_t fwd_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fwd_entry *fwd_list;

static int make_listener(const struct sc_inet_addr *a, int backlog, bool reuse_addr,
                         bool reuse_port, int *out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    struct sockaddr_in sa = to_sockaddr(a);
    if ((reuse_addr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) ||
        (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, backlog) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *out = fd;
    return 0;
}

/* Does this shard listen on a's port already (on a's address, or any)? */
static bool listens_here(struct pshard *sh, const struct sc_inet_addr *a)
{
    for (struct pnode *n = sh->all.next; n != &sh->all; n = n->next) {
        if (n->kind != P_SERVER)
            continue;
        struct pserver *ps = SC_CONTAINER_OF(n, struct pserver, node);
        if (!ps->closing && ps->s.local.port == a->port &&
            (ps->s.local.ip == a->ip || !ps->s.local.ip || !a->ip))
            return true;
    }
    return false;
}

static void server_destroy(struct pserver *ps)
{
    pnode_unlink(&ps->node);
    sc_timer_cancel(&ps->retry);
    if (ps->fd >= 0)
        close(ps->fd);
    for (unsigned i = 0; i < ps->qlen; i++)
        close(ps->q[(ps->qhead + i) % ps->qcap]);
    sc_free(ps->q);
    sc_free(ps);
}

/* ---- accept, the plain way ---- */

static int accept_one(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        /* a connection reset before we took it: take the next */
        if (errno != EINTR && errno != ECONNABORTED)
            return -errno;
    }
}

static void accept_ready(struct sc__kio *k, int64_t res);

static int arm_accept(struct pserver *ps, sc__kio_done_fn done)
{
    int rc = poll_submit(&ps->k, ps->fd, POLLIN, done);
    if (rc == 0)
        ps->k_armed = true;
    return rc;
}

static void accept_ready(struct sc__kio *k, int64_t res)
{
    struct pserver *ps = SC_CONTAINER_OF(k, struct pserver, k);
    ps->k_armed = false;
    if (ps->closing) {
        server_destroy(ps); /* its accept was failed when it closed */
        return;
    }
    int fd = res < 0 ? (int)res : accept_one(ps->fd);
    if (fd == -EAGAIN && (fd = arm_accept(ps, accept_ready)) == 0)
        return;
    ps->accept_waiting = false;
    int err = fd;
    struct sc_conn *c = fd >= 0 ? pconn_wrap(fd, &err) : NULL;
    if (c)
        sc_promise_set_value(&ps->ap, (intptr_t)c);
    else
        sc_promise_set_error(&ps->ap, err);
}

/* ---- accept-and-forward ---- */

/* Take one forwarded fd on this shard: to the waiting accept, or the queue. */
static void fwd_take(struct pserver *ps, int fd)
{
    if (ps->accept_waiting) {
        ps->accept_waiting = false;
        int err = 0;
        struct sc_conn *c = pconn_wrap(fd, &err);
        if (c)
            sc_promise_set_value(&ps->ap, (intptr_t)c);
        else
            sc_promise_set_error(&ps->ap, err);
        return;
    }
    if (ps->qlen == ps->qcap) {
        if (!ps->dropped++)
            sc_log(SC_LOG_WARN,
                   "net: shard %u: %u forwarded connections wait for sc_accept(); "
                   "dropping more",
                   sc_this_shard(), ps->qcap);
        close(fd);
        return;
    }
    ps->q[(ps->qhead + ps->qlen++) % ps->qcap] = fd;
}

struct fwd_msg {
    int fd;
    struct sc_inet_addr addr;
};

/* Runs on the target shard. */
static struct sc_future fwd_deliver(void *cap)
{
    struct fwd_msg *m = cap;
    struct pshard *sh = sc__shard()->net;
    for (struct pnode *n = sh ? sh->all.next : NULL; n && n != &sh->all; n = n->next) {
        struct pserver *ps = SC_CONTAINER_OF(n, struct pserver, node);
        if (n->kind == P_SERVER && ps->forward && !ps->closing && ps->s.local.ip == m->addr.ip &&
            ps->s.local.port == m->addr.port) {
            fwd_take(ps, m->fd);
            return sc_make_ready(0);
        }
    }
    close(m->fd); /* it stopped listening meanwhile */
    return sc_make_ready(0);
}

static struct sc_future fwd_sent(void *cap, intptr_t v, int err)
{
    (void)v;
    if (err) /* the message never went: the fd is still ours */
        close(*(int *)cap);
    return sc_make_ready(0);
}

static void fwd_send(struct pserver *ps, int fd)
{
    struct fwd_entry *e = ps->entry;
    unsigned n = sc_shard_count();
    int target = -1;
    pthread_mutex_lock(&fwd_mu);
    for (unsigned i = 0; i < n && target < 0; i++) {
        unsigned t = (e->rr + i) % n;
        if (e->member[t]) {
            target = (int)t;
            e->rr = t + 1;
        }
    }
    pthread_mutex_unlock(&fwd_mu);
    if (target < 0 || (unsigned)target == sc_this_shard()) {
        fwd_take(ps, fd); /* the acceptor is always a member while it accepts */
        return;
    }
    struct fwd_msg m = {fd, ps->s.local};
    struct sc_future f = sc_smp_submit_to((unsigned)target, fwd_deliver, &m, sizeof m);
    sc_future_ignore(sc_then_wrapped(f, fwd_sent, &fd, sizeof fd));
}

static void fwd_ready(struct sc__kio *k, int64_t res);

/* The acceptor's loop: accept what is waiting, hand it out, poll again. */
static void fwd_pump(struct pserver *ps)
{
    int fd = 0;
    for (int i = 0; i < FWD_BATCH && (fd = accept_one(ps->fd)) >= 0; i++)
        fwd_send(ps, fd);
    if (fd >= 0 || fd == -EAGAIN)
        fd = arm_accept(ps, fwd_ready);
    if (fd < 0) {
        /* out of file descriptors, say: the socket stays readable, so
         * polling again at once would spin; try again a little later */
        sc_log(SC_LOG_WARN, "net: accept on %u: %s; retrying in 10 ms", ps->s.local.port,
               sc_strerror(fd));
        sc_timer_arm_in(&ps->retry, ACCEPT_RETRY_NS);
    }
}

static void fwd_retry(void *arg)
{
    struct pserver *ps = arg;
    if (!ps->closing && !ps->k_armed)
        fwd_pump(ps);
}

static void fwd_ready(struct sc__kio *k, int64_t res)
{
    struct pserver *ps = SC_CONTAINER_OF(k, struct pserver, k);
    ps->k_armed = false;
    if (ps->closing) {
        server_destroy(ps);
        return;
    }
    if (res < 0) {
        sc_log(SC_LOG_WARN, "net: poll of the listening socket: %s", sc_strerror((int)res));
        sc_timer_arm_in(&ps->retry, ACCEPT_RETRY_NS);
        return;
    }
    fwd_pump(ps);
}

static int fwd_listen(struct pserver *ps, const struct sc_listen_opts *o)
{
    unsigned me = sc_this_shard();
    struct fwd_entry *e = NULL;
    int rc = 0;
    pthread_mutex_lock(&fwd_mu);
    if (o->addr.port)
        for (e = fwd_list; e; e = e->next)
            if (e->addr.ip == o->addr.ip && e->addr.port == o->addr.port)
                break;
    if (e && e->member[me]) {
        rc = -EADDRINUSE;
    } else if (!e || e->acceptor < 0) {
        struct fwd_entry *ne = e ? NULL : sc_calloc(1, sizeof *ne);
        if (!e && !ne)
            rc = -ENOMEM;
        else
            rc = make_listener(&o->addr, ps->backlog, o->reuse_addr, false, &ps->fd);
        if (rc == 0) {
            if (!e) {
                e = ne;
                e->addr = sock_name(ps->fd, false);
                e->next = fwd_list;
                fwd_list = e;
            }
            e->acceptor = (int)me;
        } else {
            sc_free(ne);
        }
    }
    if (rc == 0) {
        e->member[me] = ps;
        e->members++;
        ps->entry = e;
        ps->s.local = e->addr;
    }
    pthread_mutex_unlock(&fwd_mu);
    if (rc == 0 && ps->fd >= 0)
        fwd_pump(ps);
    return rc;
}

/* Leave the address's table entry (and free it when nobody is left). */
static void fwd_leave(struct pserver *ps)
{
    struct fwd_entry *e = ps->entry;
    if (!e)
        return;
    unsigned me = sc_this_shard();
    pthread_mutex_lock(&fwd_mu);
    e->member[me] = NULL;
    e->members--;
    if (e->acceptor == (int)me)
        e->acceptor = -1; /* the others get no more connections until one listens again */
    if (!e->members) {
        for (struct fwd_entry **pp = &fwd_list; *pp; pp = &(*pp)->next)
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        sc_free(e);
    }
    pthread_mutex_unlock(&fwd_mu);
    ps->entry = NULL;
}

/* ---- the stack's listen, accept, close ---- */

static int ps_listen(const struct sc_listen_opts *o, struct sc_server_socket **out)
{
    struct pshard *sh = pshard_get();
    if (!sh)
        return -ENOMEM;
    if (o->addr.port && listens_here(sh, &o->addr))
        return -EADDRINUSE;
    struct pserver *ps = sc_calloc(1, sizeof *ps);
    if (!ps)
        return -ENOMEM;
    ps->s.stack = &sc__posix_stack;
    ps->fd = -1;
    ps->backlog = o->backlog ? o->backlog : 1024;
    ps->forward = o->accept_and_forward;
    sc_timer_init(&ps->retry, fwd_retry, ps);
    int rc;
    if (ps->forward) {
        ps->qcap = (unsigned)ps->backlog;
        ps->q = sc_malloc(ps->qcap * sizeof *ps->q);
        rc = ps->q ? fwd_listen(ps, o) : -ENOMEM;
    } else {
        rc = make_listener(&o->addr, ps->backlog, o->reuse_addr, true, &ps->fd);
        if (rc == 0)
            ps->s.local = sock_name(ps->fd, false);
    }
    if (rc < 0) {
        if (ps->fd >= 0)
            close(ps->fd);
        sc_free(ps->q);
        sc_free(ps);
        return rc;
    }
    pnode_link(sh, &ps->node, P_SERVER);
    *out = &ps->s;
    return 0;
}

static struct sc_future ps_accept(struct sc_server_socket *s)
{
    struct pserver *ps = (struct pserver *)s;
    if (ps->closing)
        return sc_make_error(-ECONNABORTED);
    if (ps->accept_waiting)
        return sc_make_error(-EBUSY);
    int fd = -EAGAIN, err;
    if (ps->forward) {
        if (ps->qlen) {
            fd = ps->q[ps->qhead];
            ps->qhead = (ps->qhead + 1) % ps->qcap;
            ps->qlen--;
        }
    } else {
        fd = accept_one(ps->fd);
    }
    if (fd >= 0) {
        struct sc_conn *c = pconn_wrap(fd, &err);
        return c ? sc_make_ready_ptr(c) : sc_make_error(err);
    }
    if (fd != -EAGAIN)
        return sc_make_error(fd);
    if (!ps->forward && (err = arm_accept(ps, accept_ready)) < 0)
        return sc_make_error(err);
    ps->accept_waiting = true;
    sc_promise_init(&ps->ap);
    return sc_promise_get_future(&ps->ap);
}

static void ps_server_close(struct sc_server_socket *s)
{
    struct pserver *ps = (struct pserver *)s;
    if (ps->closing)
        return;
    ps->closing = true;
    /* Stop listening now: the fd itself stays ours until its poll has
     * ended, but connections are refused from here on. */
    if (ps->fd >= 0)
        shutdown(ps->fd, SHUT_RDWR);
    fwd_leave(ps);
    sc_timer_cancel(&ps->retry);
    if (ps->accept_waiting) {
        ps->accept_waiting = false;
        sc_promise_set_error(&ps->ap, -ECONNABORTED);
    }
    if (ps->k_armed)
        sc__kio_cancel(&ps->k); /* freed when the poll ends */
    else
        server_destroy(ps);
}

/* ==== UDP ================================================================ */

struct usend {
    struct usend *next;
    struct sockaddr_in to;
    const void *buf;
    size_t len;
    struct sc_promise p;
};

struct pudp {
    struct sc_udp_chan ch; /* first: net.c sees this */
    struct pnode node;
    int fd;
    bool closing;
    struct sc__kio rk;
    bool rk_armed;
    bool recv_waiting;
    struct sc_promise rp;
    struct sc__kio wk;
    bool wk_armed;
    struct usend *sq_head, *sq_tail; /* sends waiting for room, in order */
    char *scratch;                   /* one datagram, before it gets a home of its size */
};

static void udp_destroy(struct pudp *u)
{
    pnode_unlink(&u->node);
    while (u->sq_head) {
        struct usend *s = u->sq_head;
        u->sq_head = s->next;
        sc_promise_set_error(&s->p, -ECONNABORTED);
        sc_free(s);
    }
    if (u->fd >= 0)
        close(u->fd);
    sc_free(u->scratch);
    sc_free(u);
}

static int ps_udp_open(const struct sc_inet_addr *local, struct sc_udp_chan **out)
{
    struct pshard *sh = pshard_get();
    struct pudp *u = sh ? sc_calloc(1, sizeof *u) : NULL;
    if (!u)
        return -ENOMEM;
    u->fd = -1;
    u->scratch = sc_malloc(UDP_MAX_DATAGRAM);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = to_sockaddr(local);
    int rc = !u->scratch                                        ? -ENOMEM
             : fd < 0                                           ? -errno
             : bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ? -errno
                                                                : 0;
    u->fd = fd;
    if (rc < 0) {
        udp_destroy(u);
        return rc;
    }
    u->ch.stack = &sc__posix_stack;
    u->ch.local = sock_name(fd, false);
    pnode_link(sh, &u->node, P_UDP);
    *out = &u->ch;
    return 0;
}

/* One datagram from the socket, in a home of its own size. */
static int udp_take(struct pudp *u, struct sc_datagram **out)
{
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t n;
    do
        n = recvfrom(u->fd, u->scratch, UDP_MAX_DATAGRAM, 0, (struct sockaddr *)&from, &flen);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    struct sc_datagram *d = sc_malloc(sizeof *d + (size_t)n);
    if (!d)
        return -ENOMEM;
    d->from = from_sockaddr(&from);
    d->len = (size_t)n;
    memcpy(d->data, u->scratch, (size_t)n);
    *out = d;
    return 0;
}

static void udp_readable(struct sc__kio *k, int64_t res)
{
    struct pudp *u = SC_CONTAINER_OF(k, struct pudp, rk);
    u->rk_armed = false;
    if (u->closing) {
        if (!u->wk_armed)
            udp_destroy(u);
        return;
    }
    struct sc_datagram *d = NULL;
    int rc = res < 0 ? (int)res : udp_take(u, &d);
    if (rc == -EAGAIN && (rc = poll_submit(&u->rk, u->fd, POLLIN, udp_readable)) == 0) {
        u->rk_armed = true;
        return;
    }
    u->recv_waiting = false;
    if (rc < 0)
        sc_promise_set_error(&u->rp, rc);
    else
        sc_promise_set_value(&u->rp, (intptr_t)d);
}

static struct sc_future ps_udp_recv(struct sc_udp_chan *ch)
{
    struct pudp *u = (struct pudp *)ch;
    if (u->closing)
        return sc_make_error(-ECONNABORTED);
    if (u->recv_waiting)
        return sc_make_error(-EBUSY);
    struct sc_datagram *d = NULL;
    int rc = udp_take(u, &d);
    if (rc == 0)
        return sc_make_ready_ptr(d);
    if (rc != -EAGAIN)
        return sc_make_error(rc);
    rc = poll_submit(&u->rk, u->fd, POLLIN, udp_readable);
    if (rc < 0)
        return sc_make_error(rc);
    u->rk_armed = true;
    u->recv_waiting = true;
    sc_promise_init(&u->rp);
    return sc_promise_get_future(&u->rp);
}

static int udp_send_one(struct pudp *u, const struct sockaddr_in *to, const void *buf, size_t len)
{
    for (;;) {
        ssize_t n = sendto(u->fd, buf, len, MSG_NOSIGNAL, (const struct sockaddr *)to, sizeof *to);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

static void udp_writable(struct sc__kio *k, int64_t res)
{
    struct pudp *u = SC_CONTAINER_OF(k, struct pudp, wk);
    u->wk_armed = false;
    if (u->closing) {
        if (!u->rk_armed)
            udp_destroy(u);
        return;
    }
    /* send the queue in order, until the socket is full again */
    while (u->sq_head) {
        struct usend *s = u->sq_head;
        int rc = res < 0 ? (int)res : udp_send_one(u, &s->to, s->buf, s->len);
        if (rc == -EAGAIN) {
            rc = poll_submit(&u->wk, u->fd, POLLOUT, udp_writable);
            if (rc == 0) {
                u->wk_armed = true;
                return;
            }
        }
        u->sq_head = s->next;
        if (!u->sq_head)
            u->sq_tail = NULL;
        if (rc < 0)
            sc_promise_set_error(&s->p, rc);
        else
            sc_promise_set_value(&s->p, 0);
        sc_free(s);
    }
}

static struct sc_future ps_udp_send(struct sc_udp_chan *ch, const struct sc_inet_addr *to,
                                    const void *buf, size_t len)
{
    struct pudp *u = (struct pudp *)ch;
    if (u->closing)
        return sc_make_error(-ECONNABORTED);
    struct sockaddr_in sa = to_sockaddr(to);
    if (!u->sq_head) {
        int rc = udp_send_one(u, &sa, buf, len);
        if (rc != -EAGAIN)
            return rc ? sc_make_error(rc) : sc_make_ready(0);
    }
    /* the socket's buffer is full (or others wait before us): queue */
    struct usend *s = sc_malloc(sizeof *s);
    if (!s)
        return sc_make_error(-ENOMEM);
    *s = (struct usend){.to = sa, .buf = buf, .len = len};
    if (!u->wk_armed) {
        int rc = poll_submit(&u->wk, u->fd, POLLOUT, udp_writable);
        if (rc < 0) {
            sc_free(s);
            return sc_make_error(rc);
        }
        u->wk_armed = true;
    }
    if (u->sq_tail)
        u->sq_tail->next = s;
    else
        u->sq_head = s;
    u->sq_tail = s;
    sc_promise_init(&s->p);
    return sc_promise_get_future(&s->p);
}

static void ps_udp_close(struct sc_udp_chan *ch)
{
    struct pudp *u = (struct pudp *)ch;
    if (u->closing)
        return;
    u->closing = true;
    if (u->recv_waiting) {
        u->recv_waiting = false;
        sc_promise_set_error(&u->rp, -ECONNABORTED);
    }
    while (u->sq_head) {
        struct usend *s = u->sq_head;
        u->sq_head = s->next;
        sc_promise_set_error(&s->p, -ECONNABORTED);
        sc_free(s);
    }
    u->sq_tail = NULL;
    if (u->rk_armed)
        sc__kio_cancel(&u->rk);
    if (u->wk_armed)
        sc__kio_cancel(&u->wk);
    if (!u->rk_armed && !u->wk_armed)
        udp_destroy(u);
}

/* ==== the end of a shard: what the app left open ========================= */

static void pshard_fini(struct sc__shard *s)
{
    struct pshard *sh = s->net;
    if (!sh)
        return;
    unsigned left = 0;
    while (sh->all.next != &sh->all) {
        struct pnode *n = sh->all.next;
        left++;
        if (n->kind == P_CONN) {
            struct pconn *pc = SC_CONTAINER_OF(n, struct pconn, node);
            sc_free(pc->c.in.buf);
            sc_free(pc->c.out.buf);
            sc_free(pc->c.out.spare);
            pconn_destroy(pc);
        } else if (n->kind == P_SERVER) {
            struct pserver *ps = SC_CONTAINER_OF(n, struct pserver, node);
            fwd_leave(ps);
            server_destroy(ps);
        } else {
            struct pudp *u = SC_CONTAINER_OF(n, struct pudp, node);
            while (u->sq_head) { /* no promises now: the shard is gone */
                struct usend *q = u->sq_head;
                u->sq_head = q->next;
                sc_free(q);
            }
            udp_destroy(u);
        }
    }
    if (left)
        sc_log(SC_LOG_DEBUG, "net: shard %u ended with %u sockets open: closed them", s->id, left);
    sc_free(sh);
    s->net = NULL;
}

const struct sc__net_stack sc__posix_stack = {
    .name = "posix",
    .listen = ps_listen,
    .accept = ps_accept,
    .server_close = ps_server_close,
    .connect = ps_connect,
    .udp_open = ps_udp_open,
    .udp_send = ps_udp_send,
    .udp_recv = ps_udp_recv,
    .udp_close = ps_udp_close,
};
