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
 * Shards. One pthread per shard (shard 0 on the caller's thread), each
 * pinned to its CPU with pthread_setaffinity_np and preferring its CPU's
 * NUMA node for memory (libnuma). An idle shard polls for
 * --idle-poll-time-us, then sleeps in epoll_wait until its next timer or
 * until another shard writes its eventfd (see the handshake in smp.c).
 */
#include <execinfo.h>
#include <numa.h>
#include <sched.h>
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

#include "core/kio.h"
#include "core/mem_impl.h"
#include "core/shard_impl.h"

#define TICK_SIGNAL (SIGRTMIN + 2)

struct real_shard {
    int epfd;
    int timerfd; /* wakes epoll_wait at the next timer's deadline */
    int wakefd;  /* eventfd: other threads wake this shard (used from the SMP issue on) */
    timer_t tick;
    bool tick_running;
    bool tick_created; /* timer_t 0 is a valid id (the process's first timer) */
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
    (void)uc;
    sc__preempt = 1;
    struct sc__shard *s = sc__cur;
    if (!s || !s->engine_data)
        return;
    int saved_errno = errno; /* write() below may fail: the interrupted task must not see it */
    struct real_shard *d = s->engine_data;
    uint64_t started = s->tasks_started;
    if (!s->running_task || started != d->last_started) {
        d->last_started = started;
        d->stall_ticks = 0;
        d->reported = false;
        errno = saved_errno;
        return;
    }
    /* Ticks that came due while this thread was off the CPU arrive as one
     * signal; the timer's overrun count says how many it stands for. */
    d->stall_ticks +=
        1 + (si && si->si_code == SI_TIMER && si->si_overrun > 0 ? (uint64_t)si->si_overrun : 0);
    if (!d->reported && d->stall_ticks * d->tick_ns >= s->cfg.stall_threshold_ns) {
        d->reported = true;
        report_stall(s, d);
    }
    errno = saved_errno;
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
    int rc = sc__kio_shard_init(s, d->epfd);
    if (rc < 0)
        return rc;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = TICK_SIGNAL;
    sev._sigev_un._tid = gettid(); /* glibc 2.36 names no macro for this field */
    if (timer_create(CLOCK_MONOTONIC, &sev, &d->tick) != 0)
        return -errno;
    d->tick_created = true;
    return 0;
}

static void real_shard_close(struct real_shard *d)
{
    if (d->tick_running)
        tick_set(d, false);
    if (d->tick_created)
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

/* ---- one shard's loop ---- */

static void real_loop(struct sc__shard *s, struct real_shard *d)
{
    struct sc__world *w = sc__world;
    uint64_t idle_since = 0;
    while (!s->stopping && !atomic_load_explicit(&w->stopping, memory_order_relaxed)) {
        sc__preempt = 0;
#ifdef SC_TSAN
        s->batch_start = real_now(s); /* see sc__tsan_poll_quota() */
#endif
        sc__run_timers(s, real_now(s));
        sc__run_tasks(s);
        bool busy = sc__run_pollers(s);
        busy |= sc__kio_poll(s);
        busy |= sc__smp_poll(s);
        if (s->sched.active || busy || s->stopping) {
            idle_since = 0;
            continue;
        }
        /* Pollers are polled, not slept on; --poll-mode never sleeps; and a
         * message stuck behind a full ring needs us to keep trying. */
        if (s->active_pollers || s->cfg.poll_mode || sc__smp_pending_out(s) || !sc__kio_idle(s))
            continue;
        uint64_t now = real_now(s), deadline = sc__next_deadline(s);
        if (deadline <= now)
            continue;
        if (w->n == 1 && deadline == UINT64_MAX && sc__kio_inflight_of(s) == 0) {
            sc_log(SC_LOG_ERROR, "real engine: the app has not finished, but nothing is left "
                                 "that could wake it (no task, no timer, no poller, no I/O)");
            s->exit_code = 1;
            break;
        }
        /* With other shards around, a message may be on its way: poll a
         * little (--idle-poll-time-us) before paying for a sleep and a wake. */
        if (w->n > 1) {
            if (!idle_since)
                idle_since = now;
            if (now - idle_since < s->cfg.idle_poll_ns)
                continue;
        }
        if (!sc__smp_prepare_sleep(s, deadline == UINT64_MAX && sc__kio_inflight_of(s) == 0))
            continue;
        real_sleep(s, d, deadline);
        sc__smp_end_sleep(s);
        idle_since = 0;
    }
}

/* A modelled long computation: spin on the clock. */
static void real_spend(struct sc__shard *s, uint64_t ns)
{
    uint64_t end = real_now(s) + ns;
    while (real_now(s) < end)
        __asm__ __volatile__("" ::: "memory");
}

static void real_wake(struct sc__shard *t)
{
    struct real_shard *d = t->engine_data;
    uint64_t one = 1;
    ssize_t r = write(d->wakefd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already non-zero, the shard will wake */
}

/* ---- the run: one pinned thread per shard ---- */

/* A one-shot barrier that a thread may also pass for someone else (the
 * caller stands in for shards whose threads could not be started, so that
 * the others do not wait forever). */
struct once_barrier {
    pthread_mutex_t m;
    pthread_cond_t c;
    unsigned arrived, n;
};

static void barrier_init(struct once_barrier *b, unsigned n)
{
    pthread_mutex_init(&b->m, NULL);
    pthread_cond_init(&b->c, NULL);
    b->arrived = 0;
    b->n = n;
}

static void barrier_arrive(struct once_barrier *b, unsigned count, bool wait)
{
    pthread_mutex_lock(&b->m);
    b->arrived += count;
    if (b->arrived >= b->n)
        pthread_cond_broadcast(&b->c);
    while (wait && b->arrived < b->n)
        pthread_cond_wait(&b->c, &b->m);
    pthread_mutex_unlock(&b->m);
}

static void barrier_destroy(struct once_barrier *b)
{
    pthread_mutex_destroy(&b->m);
    pthread_cond_destroy(&b->c);
}

struct real_run {
    struct sc__shard *shards;
    struct real_shard *rs;
    int cpus[SC_MAX_SHARDS];
    int nodes[SC_MAX_SHARDS]; /* NUMA node of each CPU, or -1 (looked up once, up front:
                                 libnuma's lookup is not safe from several threads) */
    int ncpus;
    struct once_barrier opened, stopped;
    _Atomic bool open_failed;
    sc_main_fn fn;
    void *arg;
    int argc;
    char **argv;
};

struct shard_arg {
    struct real_run *run;
    unsigned id;
};

static void pin(struct real_run *run, unsigned id)
{
    unsigned k = id % (unsigned)run->ncpus;
    int cpu = run->cpus[k];
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int err = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (err)
        sc_log(SC_LOG_WARN, "cannot pin shard %u to CPU %d: %s", id, cpu, strerror(err));
    /* Memory follows the shard: prefer the NUMA node of its CPU. */
    if (run->nodes[k] >= 0)
        numa_set_preferred(run->nodes[k]);
}

static void run_shard(struct real_run *run, unsigned id)
{
    struct sc__shard *s = &run->shards[id];
    struct real_shard *d = &run->rs[id];
    pin(run, id);
    sc__cur = s;
    /* on the shard's own thread, after pinning: its memory's first touch
     * lands on its node */
    sc__mem_shard_start(s, run->nodes[id % (unsigned)run->ncpus]);
    int err = real_shard_open(s, d);
    if (err) {
        sc_log(SC_LOG_ERROR, "real engine: cannot start the reactor: %s", sc_strerror(err));
        atomic_store(&run->open_failed, true);
    }
    s->engine_data = d;
    barrier_arrive(&run->opened, 1, true); /* every shard can now receive messages */
    if (!atomic_load(&run->open_failed)) {
        if (id == 0)
            sc__shard_start_main(s, run->fn, run->arg, run->argc, run->argv);
        tick_set(d, true);
        real_loop(s, d);
        tick_set(d, false);
        if (id == 0 && atomic_load(&sc__world->deadlocked)) {
            sc_log(SC_LOG_ERROR, "real engine: deadlock: the app has not finished, and no shard "
                                 "has a task, a timer or a message left");
            s->exit_code = 1;
        }
        if (id == 0)
            sc__world_stop(); /* the app is done: every shard stops */
    } else {
        s->exit_code = 1;
    }
    barrier_arrive(&run->stopped, 1, true); /* no ring is touched after this */
    sc__ledger_report_all();
    sc__kio_shard_fini(s);
    real_shard_close(d);
    sc__preempt = 0;
}

static void *shard_thread(void *p)
{
    struct shard_arg *a = p;
    run_shard(a->run, a->id);
    return NULL;
}

/* The CPUs the shards may use: --cpuset, or the process's affinity mask. */
static int usable_cpus(const struct sc_config *c, int *cpus)
{
    if (c->cpuset)
        return sc__parse_cpuset(c->cpuset, cpus, SC_MAX_SHARDS);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -errno;
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < SC_MAX_SHARDS; cpu++)
        if (CPU_ISSET(cpu, &set))
            cpus[n++] = cpu;
    return n;
}

static int real_run(const struct sc_config *cfg, sc_main_fn fn, void *arg, int argc, char **argv,
                    struct sc_run_result *out)
{
    struct sc_config c = *cfg;
    if (!c.seed_given) {
        if (getrandom(&c.seed, sizeof c.seed, 0) != (ssize_t)sizeof c.seed)
            c.seed = real_now(NULL);
    }
    struct real_run *run = calloc(1, sizeof *run);
    if (!run) {
        sc_log(SC_LOG_ERROR, "out of memory starting the real engine");
        return 1;
    }
    run->ncpus = usable_cpus(&c, run->cpus);
    if (run->ncpus <= 0) {
        sc_log(SC_LOG_ERROR, "real engine: no usable CPU");
        free(run);
        return 1;
    }
    int herr = install_handler(); /* process-wide: once, before any shard thread */
    if (herr) {
        sc_log(SC_LOG_ERROR, "real engine: cannot install the tick handler: %s", sc_strerror(herr));
        free(run);
        return 1;
    }
    bool numa = numa_available() >= 0;
    for (int k = 0; k < run->ncpus; k++)
        run->nodes[k] = numa ? numa_node_of_cpu(run->cpus[k]) : -1;
    unsigned n = c.smp ? c.smp : (unsigned)run->ncpus;
    if (n > (unsigned)run->ncpus)
        sc_log(SC_LOG_WARN, "--smp %u is more than the %d CPUs available: shards will share CPUs",
               n, run->ncpus);
    struct sc__world world;
    /* struct sc__shard is cache-line aligned (see `sleeping`): so is the array */
    run->shards = aligned_alloc(64, n * sizeof *run->shards);
    if (run->shards)
        memset(run->shards, 0, n * sizeof *run->shards);
    run->rs = calloc(n, sizeof *run->rs);
    struct shard_arg *args = calloc(n, sizeof *args);
    pthread_t *threads = calloc(n, sizeof *threads);
    if (!run->shards || !run->rs || !args || !threads || sc__world_init(&world, n) != 0) {
        sc_log(SC_LOG_ERROR, "out of memory starting the real engine");
        free(run->shards), free(run->rs), free(args), free(threads), free(run);
        return 1;
    }
    if (sc__mem_world_init(&world, &c) != 0) {
        sc_log(SC_LOG_ERROR, "real engine: cannot set up the shards' memory");
        sc__world_destroy(&world);
        free(run->shards), free(run->rs), free(args), free(threads), free(run);
        return 1;
    }
    sc__world = &world;
    for (unsigned i = 0; i < n; i++) {
        world.shards[i] = &run->shards[i];
        sc__shard_init(&run->shards[i], i, &sc__real_engine, &c);
    }
    run->fn = fn, run->arg = arg, run->argc = argc, run->argv = argv;
    atomic_init(&run->open_failed, false);
    barrier_init(&run->opened, n);
    barrier_init(&run->stopped, n);

    /* Shard 0 runs on the caller's thread, pinned like the others for the
     * run; the caller's own affinity comes back afterwards. */
    cpu_set_t saved;
    bool have_saved = sched_getaffinity(0, sizeof saved, &saved) == 0;
    unsigned started = 1;
    for (unsigned i = 1; i < n; i++) {
        args[i] = (struct shard_arg){run, i};
        if (pthread_create(&threads[i], NULL, shard_thread, &args[i]) != 0) {
            sc_log(SC_LOG_ERROR, "real engine: cannot start shard %u's thread", i);
            atomic_store(&run->open_failed, true);
            /* stand in for the shards that will never arrive */
            barrier_arrive(&run->opened, n - i, false);
            barrier_arrive(&run->stopped, n - i, false);
            break;
        }
        started++;
    }
    run_shard(run, 0);
    for (unsigned i = 1; i < started; i++)
        pthread_join(threads[i], NULL);
    if (have_saved)
        sched_setaffinity(0, sizeof saved, &saved);

    struct sc__shard *s0 = &run->shards[0];
    sc__cur = s0;
    sc__print_summary(s0);
    sc__fill_result(s0, out);
    int code = s0->exit_code;
    for (unsigned i = 0; i < n; i++) {
        sc__cur = &run->shards[i];
        sc__shard_fini(&run->shards[i]);
    }
    sc__cur = NULL;
    sc__mem_world_fini(&world); /* frees still on their way go home */
    sc__world_destroy(&world);
    sc__world = NULL;
    barrier_destroy(&run->opened);
    barrier_destroy(&run->stopped);
    free(run->shards), free(run->rs), free(args), free(threads), free(run);
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
    .spend = real_spend,
    .wake = real_wake,
    .run = real_run,
};
