/*
 * kio.h — the real world's door to the kernel for I/O: disk reads and
 * writes, fdatasync, and socket readiness, through the shard's reactor
 * backend (--reactor-backend linux-aio | epoll | io_uring). Not a public
 * header: disk/ and net/ build their APIs on it; apps never see it.
 *
 * A request is submitted on the shard and completes on the shard: its done
 * callback runs from the reactor, never inside sc__kio_submit(). Requests
 * submitted during a reactor turn go to the kernel together at the end of
 * the turn (one io_submit / io_uring_enter for the batch). Completions are
 * reaped every turn, and when the shard has nothing else to do it sleeps in
 * epoll_wait with the backend's completion eventfd in the set, so a
 * finished disk read wakes it.
 *
 * The three backends:
 *   linux-aio  io_submit: IOCB_CMD_PREAD/PWRITE/FDSYNC for files, and
 *              IOCB_CMD_POLL for socket readiness; completions raise an
 *              eventfd (IOCB_FLAG_RESFD) that the reactor sleeps on.
 *   epoll      socket readiness through the shard's epoll set (per-fd
 *              registration, one waiter per direction); file I/O still
 *              through linux-aio, as Seastar does.
 *   io_uring   one ring per shard: READ/WRITE/FSYNC/POLL_ADD; completions
 *              raise a registered eventfd.
 *
 * In the simulator there is no kernel: sc__kio_submit() returns -ENOSYS
 * (the sim disk and sim network have their own models).
 */
#ifndef SC_KIO_H
#define SC_KIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sc__kio_op {
    SC__KIO_READ = 1,  /* pread into buf: res = bytes or -errno */
    SC__KIO_WRITE,     /* pwrite from buf: res = bytes or -errno */
    SC__KIO_FDSYNC,    /* fdatasync: res = 0 or -errno */
    SC__KIO_POLL,      /* wait for readiness: res = revents (POLLIN...) or -errno */
};

struct sc__kio;
typedef void (*sc__kio_done_fn)(struct sc__kio *k, int64_t res);

struct sc__kio {
    uint8_t op;         /* enum sc__kio_op */
    int fd;
    void *buf;          /* READ/WRITE */
    size_t len;         /* READ/WRITE */
    uint64_t off;       /* READ/WRITE: file offset */
    uint32_t events;    /* POLL: POLLIN and/or POLLOUT */
    sc__kio_done_fn done;
    /* private to the backend */
    struct sc__kio *next;
    uint32_t state;
    int64_t res; /* a result waiting to be delivered next turn */
    _Alignas(8) unsigned char priv[64]; /* linux-aio: the struct iocb lives here */
};

/*
 * Submit k. Returns 0 (done will run later, exactly once, on this shard),
 * -EINVAL (bad op/fd), -ENOSYS (simulator, or the backend cannot do this
 * op); on an error done never runs.
 */
int sc__kio_submit(struct sc__kio *k);

/*
 * Ask a POLL request to finish early; its done runs later with -ECANCELED
 * (or with its result, if it had completed already). Other ops cannot be
 * cancelled: returns -EINVAL, and they complete normally.
 */
int sc__kio_cancel(struct sc__kio *k);

/* The backend this shard uses ("linux-aio", "epoll", "io_uring"; "sim"). */
const char *sc__kio_backend_name(void);

/* Requests submitted and not yet completed on this shard. */
uint64_t sc__kio_inflight(void);

/*
 * True if READ/WRITE on a file opened without O_DIRECT really run
 * asynchronously here (io_uring). linux-aio runs them inside io_submit,
 * blocking the shard in the page cache (or refuses them, for character
 * devices), so callers send buffered I/O to the syscall thread instead.
 */
bool sc__kio_buffered_async(void);

/*
 * Run fn(arg) on this shard's syscall thread (a helper thread that does the
 * blocking calls a shard must not: open, stat, fsync, rename, ...). done(res)
 * runs back on the shard with fn's return value. Requests run one at a time
 * in the order given. In the simulator there is no thread: fn runs from a
 * task on the shard itself (sim-world callers model their own delays).
 * Returns 0, or -ENOMEM (done never runs).
 */
typedef int64_t (*sc__syscall_fn)(void *arg);
typedef void (*sc__syscall_done_fn)(void *arg, int64_t res);
int sc__syscall(sc__syscall_fn fn, sc__syscall_done_fn done, void *arg);

/* ---- for the engines (core/engine_real.c) ---- */
struct sc__shard;
int sc__kio_shard_init(struct sc__shard *s, int epfd); /* after the shard's epoll set exists */
void sc__kio_shard_fini(struct sc__shard *s);
/* Submit the batch, reap completions (running done callbacks); true if any work was done. */
bool sc__kio_poll(struct sc__shard *s);
/* Requests (and syscalls) of shard s not yet completed. */
uint64_t sc__kio_inflight_of(struct sc__shard *s);
/* Nothing is waiting to be submitted (the shard may sleep). */
bool sc__kio_idle(struct sc__shard *s);

#endif
