/*
 * engine_real.c — the real world: a shard on an OS thread, CLOCK_MONOTONIC,
 * sleeping in epoll_wait when idle, and a timer signal for preemption and
 * stall detection.
 *
 * Preemption. A POSIX timer sends a real-time signal to the shard's thread
 * every task-quota period while the shard is busy. The handler only stores 1
 * into the thread-local word sc__preempt, which sc_need_preempt() reads: the
 * check in every loop costs one load, no system call, no clock read. The
 * reactor clears the word at the start of each turn. When the shard goes
 * idle the timer is stopped, so an idle shard gets no signals at all.
 *
 * Stall detection. The same handler counts how many ticks in a row found the
 * same task still running (the shard bumps tasks_started for every task).
 * Past --blocked-reactor-notify-ms it writes a report and a backtrace of the
 * shard — from inside the handler, so the backtrace shows where the task is
 * stuck. Only async-signal-safe calls are used there (write, backtrace after
 * a warm-up call at start).
 *
 * This issue runs one shard, on the caller's thread; the SMP issue adds one
 * pinned pthread per shard on the same pieces.
 */
#include <execinfo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/shard_impl.h"

#define TICK_SIGNAL (SIGRTMIN + 2)

struct real_shard {
    int epfd;
    int timerfd; /* wakes epoll_wait at the next timer's deadline */
    int wakefd;  /* eventfd: other threads wake this shard (used from the SMP issue on) */
    timer_t tick;
    bool tick_running;
    uint64_t tick_ns;
    /* stall detector state, touched only by the signal handler */
    uint64_t last_started;
    uint64_t stall_ticks;
    bool reported;
};

static uint64_t real_now(struct sc__shard *s)
{
    (void)s;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool real_need_preempt(struct sc__shard *s)
{
    (void)s;
    return true; /* the word is only ever set by the quota timer */
}

/* ---- the signal handler: preemption tick and stall detector ---- */

/* Format an unsigned number into buf (async-signal-safe). */
static size_t fmt_u64(char *buf, uint64_t v)
{
    char tmp[24];
    size_t n = 0, i = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        buf[i++] = tmp[--n];
    return i;
}

static void report_stall(struct sc__shard *s, struct real_shard *d)
{
    char msg[160];
    size_t n = 0;
    const char *a = "[shard ";
    const char *b = "] warn: reactor stalled: one task has run for ";
    const char *c = " ms (--blocked-reactor-notify-ms); backtrace:\n";
    memcpy(msg + n, a, strlen(a));
    n += strlen(a);
    n += fmt_u64(msg + n, s->id);
    memcpy(msg + n, b, strlen(b));
    n += strlen(b);
    n += fmt_u64(msg + n, d->stall_ticks * d->tick_ns / 1000000);
    memcpy(msg + n, c, strlen(c));
    n += strlen(c);
    ssize_t w = write(STDERR_FILENO, msg, n);
    (void)w;
    void *frames[32];
    int nf = backtrace(frames, 32);
    backtrace_symbols_fd(frames, nf, STDERR_FILENO);
    s->stats.stalls++;
}

static void tick_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    sc__preempt = 1;
    struct sc__shard *s = sc__cur;
    if (!s || !s->engine_data)
        return;
    struct real_shard *d = s->engine_data;
    uint64_t started = s->tasks_started;
    if (!s->running_task || started != d->last_started) {
        d->last_started = started;
        d->stall_ticks = 0;
        d->reported = false;
        return;
    }
    d->stall_ticks++;
    if (!d->reported && d->stall_ticks * d->tick_ns >= s->cfg.stall_threshold_ns) {
        d->reported = true;
        report_stall(s, d);
    }
}

static int install_handler(void)
{
    static bool installed;
    if (installed)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = tick_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(TICK_SIGNAL, &sa, NULL) != 0)
        return -errno;
    /* backtrace() loads its unwinder on first use, which is not safe inside a
     * signal handler; use it once here so that the handler's call is. */
    void *warm[2];
    (void)backtrace(warm, 2);
    installed = true;
    return 0;
}

static void tick_set(struct real_shard *d, bool on)
{
    if (d->tick_running == on)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (on) {
        its.it_value.tv_sec = (time_t)(d->tick_ns / 1000000000ull);
        its.it_value.tv_nsec = (long)(d->tick_ns % 1000000000ull);
        its.it_interval = its.it_value;
    }
    timer_settime(d->tick, 0, &its, NULL);
    d->tick_running = on;
}

/* ---- set-up and tear-down ---- */

static int real_shard_open(struct sc__shard *s, struct real_shard *d)
{
    memset(d, 0, sizeof *d);
    d->epfd = d->timerfd = d->wakefd = -1;
    d->tick_ns = s->cfg.task_quota_ns ? s->cfg.task_quota_ns : 500000;
    int err = install_handler();
    if (err)
        return err;
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    d->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->epfd < 0 || d->timerfd < 0 || d->wakefd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = d->timerfd};
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->timerfd, &ev) != 0)
        return -errno;
    ev.data.fd = d->wakefd;
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wakefd, &ev) != 0)
        return -errno;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = TICK_SIGNAL;
    sev._sigev_un._tid = gettid(); /* glibc 2.36 names no macro for this field */
    if (timer_create(CLOCK_MONOTONIC, &sev, &d->tick) != 0)
        return -errno;
    return 0;
}

static void real_shard_close(struct real_shard *d)
{
    if (d->tick_running)
        tick_set(d, false);
    if (d->tick)
        timer_delete(d->tick);
    if (d->epfd >= 0)
        close(d->epfd);
    if (d->timerfd >= 0)
        close(d->timerfd);
    if (d->wakefd >= 0)
        close(d->wakefd);
}

/* ---- idle: sleep in epoll_wait until the next timer or a wake-up ---- */

static void drain(int fd)
{
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
}

static void real_sleep(struct sc__shard *s, struct real_shard *d, uint64_t deadline)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (deadline != UINT64_MAX) {
        its.it_value.tv_sec = (time_t)(deadline / 1000000000ull);
        its.it_value.tv_nsec = (long)(deadline % 1000000000ull);
    }
    timerfd_settime(d->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
    tick_set(d, false);
    s->stats.sleeps++;
    struct epoll_event evs[8];
    int n = epoll_wait(d->epfd, evs, 8, -1);
    for (int i = 0; i < n; i++)
        drain(evs[i].data.fd);
    tick_set(d, true);
}

static int real_run(const struct sc_config *cfg, sc_main_fn fn, void *arg, int argc, char **argv,
                    struct sc_run_result *out)
{
    struct sc__shard *s = malloc(sizeof *s);
    struct real_shard *d = malloc(sizeof *d);
    if (!s || !d) {
        free(s);
        free(d);
        sc_log(SC_LOG_ERROR, "out of memory starting the real engine");
        return 1;
    }
    struct sc_config c = *cfg;
    if (!c.seed_given) {
        if (getrandom(&c.seed, sizeof c.seed, 0) != (ssize_t)sizeof c.seed)
            c.seed = real_now(NULL);
    }
    sc__shard_init(s, 0, &sc__real_engine, &c);
    int err = real_shard_open(s, d);
    if (err) {
        sc_log(SC_LOG_ERROR, "real engine: cannot start the reactor: %s", sc_strerror(err));
        real_shard_close(d);
        sc__shard_fini(s);
        free(s);
        free(d);
        return 1;
    }
    sc__cur = s;
    s->engine_data = d;
    sc__shard_start_main(s, fn, arg, argc, argv);
    tick_set(d, true);

    while (!s->stopping) {
        sc__preempt = 0;
#ifdef SC_TSAN
        s->batch_start = real_now(s); /* see sc__tsan_poll_quota() */
#endif
        sc__run_timers(s, real_now(s));
        sc__run_tasks(s);
        bool busy = sc__run_pollers(s);
        if (s->tq_head || busy || s->stopping)
            continue;
        if (s->active_pollers)
            continue; /* pollers are polled, not slept on (the SMP issue adds their sleep protocol)
                       */
        uint64_t deadline = sc__next_deadline(s);
        if (deadline == UINT64_MAX) {
            sc_log(SC_LOG_ERROR, "real engine: the app has not finished, but nothing is left "
                                 "that could wake it (no task, no timer, no poller)");
            s->exit_code = 1;
            break;
        }
        if (deadline > real_now(s))
            real_sleep(s, d, deadline);
    }

    tick_set(d, false);
    s->engine_data = NULL;
    sc__ledger_report_all();
    sc__print_summary(s);
    sc__fill_result(s, out);
    int code = s->exit_code;
    real_shard_close(d);
    sc__shard_fini(s);
    sc__cur = NULL;
    sc__preempt = 0;
    free(s);
    free(d);
    return code;
}

static bool real_defer_ready(struct sc__shard *s)
{
    (void)s;
    return true; /* only asked when the quota word is set: the quota is spent */
}

const struct sc__engine sc__real_engine = {
    .name = "real",
    .simulated = false,
    .now = real_now,
    .need_preempt = real_need_preempt,
    .defer_ready = real_defer_ready,
    .pick_task = NULL,
    .on_task = NULL,
    .run = real_run,
};
