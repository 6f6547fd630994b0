/*
 * test_kio.c — the reactor backends (linux-aio, epoll, io_uring) and the
 * syscall thread: O_DIRECT writes, fdatasync and reads on ext4 under /tmp,
 * socket readiness, cancelled polls, errors from the kernel, and a shard
 * that sleeps while its I/O is in flight. Each test runs once per backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kio.h"
#include "core/memory.h"
#include "core/shard_impl.h"
#include "core/thread.h"
#include "tests/harness.h"

static const enum sc_reactor_backend backends[] = {SC_REACTOR_LINUX_AIO, SC_REACTOR_EPOLL,
                                                   SC_REACTOR_IO_URING};
static const char *const backend_names[] = {"linux-aio", "epoll", "io_uring"};
static int bi;

/* The fiber a run's main function starts (sc_main_fn's argument). */
struct fiber_arg {
    sc_thread_fn fn;
};

static struct sc_future fiber_main(void *a, int argc, char **argv)
{
    (void)argc, (void)argv;
    return sc_thread_spawn(((const struct fiber_arg *)a)->fn, NULL, 0, NULL);
}

/* Run fn in a fiber on one real shard with reactor backend number i. */
static int run_real(int i, sc_thread_fn fn)
{
    bi = i;
    struct sc_config cfg = t_config(SC_BACKEND_REAL);
    cfg.smp = 1;
    cfg.reactor_backend = backends[i];
    struct fiber_arg fa = {fn};
    return sc_run(&cfg, fiber_main, &fa, 0, NULL);
}

/* ---- a kio as a future ---- */

struct kwait {
    struct sc__kio k;
    struct sc_promise p;
};

static void kwait_done(struct sc__kio *k, int64_t res)
{
    struct kwait *w = SC_CONTAINER_OF(k, struct kwait, k);
    if (res < 0)
        sc_promise_set_error(&w->p, (int)res);
    else
        sc_promise_set_value(&w->p, (intptr_t)res);
}

static struct sc_future kstart(struct kwait *w)
{
    sc_promise_init(&w->p);
    struct sc_future f = sc_promise_get_future(&w->p);
    w->k.done = kwait_done;
    int rc = sc__kio_submit(&w->k);
    if (rc < 0)
        sc_promise_set_error(&w->p, rc);
    return f;
}

static int kdo(struct kwait *w, intptr_t *res)
{
    return sc_await(kstart(w), res);
}

static char dir[] = "/tmp/seacore-kio-XXXXXX";

static const char *make_dir(void)
{
    strcpy(dir, "/tmp/seacore-kio-XXXXXX");
    T_CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    return dir;
}

/* ---- O_DIRECT write, fdatasync, read back ---- */

static struct sc_future file_fiber(void *cap)
{
    (void)cap;
    T_CHECK(!strcmp(sc__kio_backend_name(), backend_names[bi]), "backend is %s",
            sc__kio_backend_name());
    char path[64];
    snprintf(path, sizeof path, "%s/f", make_dir());
    int fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
    T_CHECK(fd >= 0, "open O_DIRECT: %s", strerror(errno));
    char *buf = sc_aligned_alloc(4096, 16384);
    for (int i = 0; i < 16384; i++)
        buf[i] = (char)(i * 7 + 3);
    struct kwait w = {.k = {.op = SC__KIO_WRITE, .fd = fd, .buf = buf, .len = 16384, .off = 8192}};
    intptr_t res = 0;
    tr_step("write 16 KiB at 8 KiB");
    T_CHECK(kdo(&w, &res) == 0 && res == 16384, "write: %ld", (long)res);
    w = (struct kwait){.k = {.op = SC__KIO_FDSYNC, .fd = fd}};
    tr_step("fdatasync");
    T_CHECK(kdo(&w, &res) == 0 && res == 0, "fdatasync: %ld", (long)res);
    char *back = sc_aligned_alloc(4096, 16384);
    memset(back, 0, 16384);
    w = (struct kwait){.k = {.op = SC__KIO_READ, .fd = fd, .buf = back, .len = 16384, .off = 8192}};
    tr_step("read it back");
    T_CHECK(kdo(&w, &res) == 0 && res == 16384, "read: %ld", (long)res);
    T_CHECK(memcmp(buf, back, 16384) == 0, "the bytes read are the bytes written");
    tr_step("read past the end: 0 bytes");
    w = (struct kwait){.k = {.op = SC__KIO_READ, .fd = fd, .buf = back, .len = 4096, .off = 1 << 20}};
    T_CHECK(kdo(&w, &res) == 0 && res == 0, "read past end: %ld", (long)res);
    tr_step("a request on a closed descriptor: EBADF");
    int bad = dup(fd);
    close(bad);
    w = (struct kwait){.k = {.op = SC__KIO_READ, .fd = bad, .buf = back, .len = 4096, .off = 0}};
    int rc = kdo(&w, &res);
    T_CHECK(rc == -EBADF, "closed fd: %d", rc);
    tr_step("bad requests are refused at submit, and their callback never runs");
    struct sc__kio k = {.op = 99, .fd = fd, .done = kwait_done};
    T_CHECK(sc__kio_submit(&k) == -EINVAL, "bad op");
    k = (struct sc__kio){.op = SC__KIO_READ, .fd = -1, .done = kwait_done};
    T_CHECK(sc__kio_submit(&k) == -EINVAL, "bad fd");
    T_CHECK(sc__kio_inflight() == 0, "nothing in flight at the end");
    close(fd);
    unlink(path);
    rmdir(dir);
    sc_free(buf);
    sc_free(back);
    return sc_make_ready(0);
}

START_TEST(file_io)
{
    tr_reset();
    T_CHECK(run_real(_i, file_fiber) == 0, "run failed");
}
END_TEST

/* ---- many reads in flight at once ---- */

#define NREQ 64
static struct sc_future many_fiber(void *cap)
{
    (void)cap;
    char path[64];
    snprintf(path, sizeof path, "%s/m", make_dir());
    int fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
    T_CHECK(fd >= 0, "open");
    char *buf = sc_aligned_alloc(4096, NREQ * 4096);
    for (int i = 0; i < NREQ; i++)
        memset(buf + i * 4096, 'a' + i % 26, 4096);
    static struct kwait w[NREQ];
    struct sc_future f[NREQ];
    for (int i = 0; i < NREQ; i++) {
        w[i] = (struct kwait){.k = {.op = SC__KIO_WRITE, .fd = fd, .buf = buf + i * 4096,
                                    .len = 4096, .off = (uint64_t)i * 4096}};
        f[i] = kstart(&w[i]);
    }
    T_CHECK(sc__kio_inflight() == NREQ, "%d in flight", NREQ);
    T_CHECK(sc_await(sc_when_all_succeed(f, NREQ), NULL) == 0, "all writes");
    char *back = sc_aligned_alloc(4096, NREQ * 4096);
    for (int i = 0; i < NREQ; i++) {
        w[i] = (struct kwait){.k = {.op = SC__KIO_READ, .fd = fd, .buf = back + i * 4096,
                                    .len = 4096, .off = (uint64_t)i * 4096}};
        f[i] = kstart(&w[i]);
    }
    T_CHECK(sc_await(sc_when_all_succeed(f, NREQ), NULL) == 0, "all reads");
    T_CHECK(memcmp(buf, back, NREQ * 4096) == 0, "same bytes");
    close(fd);
    unlink(path);
    rmdir(dir);
    sc_free(buf);
    sc_free(back);
    return sc_make_ready(0);
}

START_TEST(many_in_flight)
{
    tr_reset();
    T_CHECK(run_real(_i, many_fiber) == 0, "run failed");
}
END_TEST

/* ---- readiness: a pipe, a cancelled poll, a shard that sleeps meanwhile ---- */

static int pfd[2];

static void *writer_thread(void *p)
{
    (void)p;
    usleep(20000);
    ssize_t n = write(pfd[1], "x", 1);
    (void)n;
    return NULL;
}

static struct sc_future poll_fiber(void *cap)
{
    (void)cap;
    T_CHECK(pipe2(pfd, O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
    struct kwait w = {.k = {.op = SC__KIO_POLL, .fd = pfd[1], .events = POLLOUT}};
    intptr_t res = 0;
    tr_step("an empty pipe is writable at once");
    T_CHECK(kdo(&w, &res) == 0 && (res & POLLOUT), "POLLOUT: %ld", (long)res);
    tr_step("the read end becomes readable when another thread writes, 20 ms later");
    struct sc_reactor_stats before, after;
    sc_reactor_stats(&before);
    pthread_t t;
    pthread_create(&t, NULL, writer_thread, NULL);
    w = (struct kwait){.k = {.op = SC__KIO_POLL, .fd = pfd[0], .events = POLLIN}};
    T_CHECK(kdo(&w, &res) == 0 && (res & POLLIN), "POLLIN: %ld", (long)res);
    pthread_join(t, NULL);
    sc_reactor_stats(&after);
    T_CHECK(after.sleeps > before.sleeps, "the shard slept while it waited (%llu sleeps)",
            (unsigned long long)(after.sleeps - before.sleeps));
    char c;
    T_CHECK(read(pfd[0], &c, 1) == 1, "drain");
    tr_step("a poll that is cancelled finishes with ECANCELED, once");
    w = (struct kwait){.k = {.op = SC__KIO_POLL, .fd = pfd[0], .events = POLLIN}};
    struct sc_future f = kstart(&w);
    T_CHECK(sc_await(sc_sleep(1000000), NULL) == 0, "let it reach the kernel");
    T_CHECK(sc__kio_cancel(&w.k) == 0, "cancel");
    T_CHECK(!sc_future_available(f), "the callback does not run inside cancel");
    T_CHECK(sc_await(f, &res) == -ECANCELED, "cancelled: %ld", (long)res);
    tr_step("cancel before it was even submitted");
    w = (struct kwait){.k = {.op = SC__KIO_POLL, .fd = pfd[0], .events = POLLIN}};
    f = kstart(&w);
    T_CHECK(sc__kio_cancel(&w.k) == 0, "cancel");
    T_CHECK(sc_await(f, &res) == -ECANCELED, "cancelled: %ld", (long)res);
    tr_step("only polls can be cancelled");
    struct sc__kio rd = {.op = SC__KIO_READ};
    T_CHECK(sc__kio_cancel(&rd) == -EINVAL, "read cannot be cancelled");
    tr_step("the peer closes: the reader sees POLLHUP");
    close(pfd[1]);
    w = (struct kwait){.k = {.op = SC__KIO_POLL, .fd = pfd[0], .events = POLLIN}};
    T_CHECK(kdo(&w, &res) == 0 && (res & (POLLHUP | POLLIN)), "HUP: %ld", (long)res);
    close(pfd[0]);
    T_CHECK(sc__kio_inflight() == 0, "nothing in flight at the end");
    return sc_make_ready(0);
}

START_TEST(readiness)
{
    tr_reset();
    T_CHECK(run_real(_i, poll_fiber) == 0, "run failed");
}
END_TEST

/* ---- the syscall thread ---- */

static pthread_t shard_thread;
static int64_t on_thread(void *arg)
{
    (void)arg;
    return pthread_equal(pthread_self(), shard_thread) ? -EDEADLK : 42;
}

struct sysw {
    struct sc_promise p;
    pthread_t ran_on;
};

static void sys_done(void *arg, int64_t res)
{
    struct sysw *w = arg;
    w->ran_on = pthread_self();
    sc_promise_set_value(&w->p, (intptr_t)res);
}

static struct sc_future sys_fiber(void *cap)
{
    (void)cap;
    shard_thread = pthread_self();
    for (int i = 0; i < 3; i++) {
        struct sysw w;
        sc_promise_init(&w.p);
        struct sc_future f = sc_promise_get_future(&w.p);
        T_CHECK(sc__syscall(on_thread, sys_done, &w) == 0, "queue a syscall");
        intptr_t v = 0;
        T_CHECK(sc_await(f, &v) == 0, "syscall answered");
        T_CHECK(v == (sc_is_simulated() ? -EDEADLK : 42),
                "real: it ran on another thread; sim: on the shard (%ld)", (long)v);
        T_CHECK(pthread_equal(w.ran_on, shard_thread), "the answer came back on the shard");
    }
    return sc_make_ready(0);
}

START_TEST(syscall_thread)
{
    tr_reset();
    T_CHECK(run_real(_i, sys_fiber) == 0, "real run failed");
    struct sc_config cfg = t_config(SC_BACKEND_SIM);
    struct fiber_arg fa = {sys_fiber};
    T_CHECK(sc_run(&cfg, fiber_main, &fa, 0, NULL) == 0, "sim run failed");
}
END_TEST

static struct sc_future sim_main(void *a, int argc, char **argv)
{
    (void)a, (void)argc, (void)argv;
    struct sc__kio k = {.op = SC__KIO_READ, .fd = 0, .done = kwait_done};
    T_CHECK(sc__kio_submit(&k) == -ENOSYS, "no kernel in the simulator");
    T_CHECK(!strcmp(sc__kio_backend_name(), "sim"), "named sim");
    return sc_make_ready(0);
}

START_TEST(sim_has_no_kernel)
{
    tr_reset();
    struct sc_config cfg = t_config(SC_BACKEND_SIM);
    T_CHECK(sc_run(&cfg, sim_main, NULL, 0, NULL) == 0, "run failed");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kio");
    TCase *tc = tcase_create("kio");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, file_io, 0, 3);
    tcase_add_loop_test(tc, many_in_flight, 0, 3);
    tcase_add_loop_test(tc, readiness, 0, 3);
    tcase_add_loop_test(tc, syscall_thread, 0, 3);
    tcase_add_test(tc, sim_has_no_kernel);
    suite_add_tcase(s, tc);
    return t_main(s);
}
