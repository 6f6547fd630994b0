/*
 * ch01_sharing.c — what sharing costs, measured on the machine you run it on.
 *
 * Chapter 1 of the seacore textbook (chapters/01-why-shared-nothing.md) argues
 * that a server should give each core its own thread and its own data, and
 * talk between cores only by explicit messages. That argument rests on a few
 * numbers: what an increment costs when nobody else touches the counter, what
 * it costs once a second core shares it (with a lock, with an atomic, or by
 * accident through a shared cache line), what it costs to move one cache line
 * from core to core, and what it costs to ask the kernel to switch threads.
 * This program measures each of them so the chapter can quote real figures.
 *
 * It is standalone on purpose: only libc and pthreads, no seacore headers.
 *
 * Build and run (the project's Makefile does the same):
 *
 *     gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -pthread \
 *         -o ch01_sharing ch01_sharing.c
 *     ./ch01_sharing            # a few seconds, stable numbers
 *     ./ch01_sharing --quick    # well under a second, same lines, noisier
 *
 * Output: one line per measurement in the project's bench format,
 *
 *     BENCH name=ch01.<what> value=<v> unit=ns/op [peer=<p> peer_value=<v> ratio=<r>]
 *
 * where ratio = peer_value / value (the project-wide convention: above 1 means
 * this line is cheaper than its peer; below 1, costlier) and the peer is another line of the same run
 * (its name without the "ch01." prefix). Notes (which CPUs were used, pinning
 * problems) go to stderr, so stdout stays machine-readable.
 *
 * How to read the two-thread numbers: both threads do n operations at the same
 * time, and value = (wall time for both to finish) / n. So it is the cost of one
 * operation *as seen by the thread doing it*. If two cores scaled perfectly, a
 * two-thread line would equal its one-thread peer (ratio 1.0): each core does
 * its own n operations in the time one core alone would.
 *
 * Every counter that two threads can see is a C11 atomic, read and written
 * with memory_order_relaxed where ordering does not matter. Relaxed atomics
 * compile to the same plain loads and stores as ordinary variables on x86, so
 * they do not change what we measure, but they make the program race-free by
 * the C memory model: ThreadSanitizer stays quiet and the compiler may not
 * optimise the loops away.
 */

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* Settings                                                                  */
/* ------------------------------------------------------------------------- */

/*
 * Each measurement is first calibrated (run with a growing n until it takes a
 * noticeable time), then run `reps` times for about `target_ns` each; we report
 * the median. The median ignores the odd run that the hypervisor or another
 * process disturbed, where the mean would be dragged by it.
 */
struct settings {
    uint64_t target_ns; /* wall time aimed at for one repetition */
    int reps;           /* repetitions; the median is reported */
};

static const struct settings full_settings = {.target_ns = 40 * 1000 * 1000, .reps = 7};
static const struct settings quick_settings = {.target_ns = 2 * 1000 * 1000, .reps = 3};

/*
 * A cache line is 64 bytes on every x86-64 and most ARM cores. When we want
 * two counters to be *truly* independent we space them 128 bytes apart: some
 * cores fetch lines in aligned pairs (the "adjacent line prefetcher"), and two
 * counters in such a pair can still disturb each other a little.
 */
#define CACHE_LINE 64
#define SEPARATE   128

/* ------------------------------------------------------------------------- */
/* Small helpers: time, fatal errors, spinning                               */
/* ------------------------------------------------------------------------- */

/* CLOCK_MONOTONIC never jumps backwards when the wall clock is adjusted. */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "ch01_sharing: %s: %s\n", what, strerror(err));
    exit(1);
}

/*
 * A polite busy-wait step. PAUSE tells an x86 core "I am spinning": it saves
 * power and avoids a costly pipeline flush when the awaited value arrives.
 */
static int spin_must_yield;     /* set before any thread starts; read-only after */
static atomic_int pin_failures; /* written by workers, read by main at the end */

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
    /*
     * With one CPU (or if pinning failed and both threads may share one), the
     * thread we wait for cannot run while we spin: give it the CPU.
     */
    if (spin_must_yield || atomic_load_explicit(&pin_failures, memory_order_relaxed) != 0)
        sched_yield();
}

/* ------------------------------------------------------------------------- */
/* Choosing and pinning CPUs                                                 */
/* ------------------------------------------------------------------------- */

/*
 * We take the first two CPUs this process may run on (a container may not
 * allow CPU 0). "Same CPU" tests put both threads on cpu_a; "two CPU" tests put
 * one thread on cpu_a and one on cpu_b. Pinning matters: without it the kernel
 * may move threads between cores in the middle of a measurement, or put both
 * "cross-core" threads on one core.
 */
static int cpu_a = -1;
static int cpu_b = -1;

static void pick_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        fprintf(stderr, "# note: sched_getaffinity failed (%s); threads will not be pinned\n",
                strerror(errno));
        return;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set))
            continue;
        if (cpu_a < 0)
            cpu_a = cpu;
        else if (cpu_b < 0)
            cpu_b = cpu;
    }
    if (cpu_b < 0) {
        fprintf(stderr, "# note: only one CPU available; the \"two CPU\" lines run both threads on"
                        " one CPU and measure time slicing, not cache coherence\n");
        cpu_b = cpu_a;
        spin_must_yield = 1;
    }
    fprintf(stderr, "# ch01_sharing: cpu_a=%d cpu_b=%d\n", cpu_a, cpu_b);
}

static void pin_self(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        atomic_fetch_add_explicit(&pin_failures, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------------- */
/* Running one or two timed threads                                          */
/* ------------------------------------------------------------------------- */

/*
 * A body does n operations on arg. The harness pins the thread, waits at a
 * barrier so that both threads start together, and times the body.
 */
typedef void (*body_fn)(void *arg, uint64_t n);

struct worker {
    pthread_t tid;
    int cpu;
    body_fn body;
    void *arg;
    uint64_t n;
    pthread_barrier_t *start;
    uint64_t t0, t1; /* written by the worker, read by main after join */
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    pin_self(w->cpu);
    pthread_barrier_wait(w->start);
    w->t0 = now_ns();
    w->body(w->arg, w->n);
    w->t1 = now_ns();
    return NULL;
}

/*
 * Runs `count` (1 or 2) threads and returns the wall time from the first start
 * to the last finish. pthread_join makes the workers' t0/t1 visible to us.
 */
static uint64_t run_threads(int count, const int cpus[], const body_fn bodies[], void *const args[],
                            uint64_t n)
{
    struct worker w[2];
    pthread_barrier_t start;
    int err = pthread_barrier_init(&start, NULL, (unsigned)count);
    if (err != 0)
        die("pthread_barrier_init", err);
    for (int i = 0; i < count; i++) {
        w[i] = (struct worker){
            .cpu = cpus[i], .body = bodies[i], .arg = args[i], .n = n, .start = &start};
        err = pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
        if (err != 0)
            die("pthread_create", err);
    }
    uint64_t first = UINT64_MAX, last = 0;
    for (int i = 0; i < count; i++) {
        pthread_join(w[i].tid, NULL);
        first = w[i].t0 < first ? w[i].t0 : first;
        last = w[i].t1 > last ? w[i].t1 : last;
    }
    pthread_barrier_destroy(&start);
    return last - first;
}

static uint64_t run_one(int cpu, body_fn body, void *arg, uint64_t n)
{
    int cpus[1] = {cpu};
    body_fn bodies[1] = {body};
    void *args[1] = {arg};
    return run_threads(1, cpus, bodies, args, n);
}

static uint64_t run_two(int cpu0, body_fn body0, void *arg0, int cpu1, body_fn body1, void *arg1,
                        uint64_t n)
{
    int cpus[2] = {cpu0, cpu1};
    body_fn bodies[2] = {body0, body1};
    void *args[2] = {arg0, arg1};
    return run_threads(2, cpus, bodies, args, n);
}

/* A counter alone on its own pair of cache lines. */
struct slot {
    _Alignas(SEPARATE) _Atomic uint64_t v;
};

static void check(const char *what, uint64_t got, uint64_t want)
{
    if (got != want) {
        fprintf(stderr, "ch01_sharing: %s: counter is %llu, expected %llu\n", what,
                (unsigned long long)got, (unsigned long long)want);
        exit(1);
    }
}

/* ------------------------------------------------------------------------- */
/* 1. The baseline: a counter that only one thread ever touches              */
/* ------------------------------------------------------------------------- */

/*
 * `load; add 1; store` on memory the core already owns. This is what `x++` on
 * a private variable costs when it must really live in memory (the compiler
 * cannot keep it in a register). Each increment waits for the previous store,
 * so this is roughly the store-to-load forwarding latency: a nanosecond or two.
 * Every other line in this program is judged against this one.
 */
static void body_private_inc(void *arg, uint64_t n)
{
    _Atomic uint64_t *c = arg;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
        atomic_store_explicit(c, v + 1, memory_order_relaxed);
    }
}

static struct slot private_counter;

static double bench_private(uint64_t n)
{
    atomic_store(&private_counter.v, 0);
    uint64_t t = run_one(cpu_a, body_private_inc, &private_counter.v, n);
    check("private", atomic_load(&private_counter.v), n);
    return (double)t / (double)n;
}

/* ------------------------------------------------------------------------- */
/* 2. What a lock costs when nobody else wants it                            */
/* ------------------------------------------------------------------------- */

/*
 * Even an uncontended pthread mutex is two atomic read-modify-write
 * instructions (lock and unlock) plus a function call each. On x86 an atomic
 * RMW ("lock"-prefixed instruction) also drains the store buffer, so it is much
 * slower than a plain store even when the cache line never leaves this core.
 */
struct locked_counter {
    pthread_mutex_t m;
    uint64_t v; /* protected by m: a plain variable is race-free here */
};

static struct locked_counter locked = {.m = PTHREAD_MUTEX_INITIALIZER};

static void body_mutex_inc(void *arg, uint64_t n)
{
    struct locked_counter *lc = arg;
    for (uint64_t i = 0; i < n; i++) {
        pthread_mutex_lock(&lc->m);
        lc->v++;
        pthread_mutex_unlock(&lc->m);
    }
}

static double bench_mutex_alone(uint64_t n)
{
    locked.v = 0;
    uint64_t t = run_one(cpu_a, body_mutex_inc, &locked, n);
    check("mutex_alone", locked.v, n);
    return (double)t / (double)n;
}

/* The same with one atomic fetch_add ("lock add" / "lock xadd" on x86). */
static void body_atomic_inc(void *arg, uint64_t n)
{
    _Atomic uint64_t *c = arg;
    for (uint64_t i = 0; i < n; i++)
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static struct slot shared_counter;

static double bench_atomic_alone(uint64_t n)
{
    atomic_store(&shared_counter.v, 0);
    uint64_t t = run_one(cpu_a, body_atomic_inc, &shared_counter.v, n);
    check("atomic_alone", atomic_load(&shared_counter.v), n);
    return (double)t / (double)n;
}

/* ------------------------------------------------------------------------- */
/* 3. One counter, two cores                                                 */
/* ------------------------------------------------------------------------- */

/*
 * Now two threads on two CPUs increment the same counter. With the mutex, a
 * thread that finds the lock taken goes to sleep in the kernel (futex) and
 * must be woken: the cost jumps from "a few atomics" to "system calls and
 * wake-ups". With the atomic there is no sleeping, but the cache line holding
 * the counter must travel to whichever core increments next: each increment
 * waits for the line to arrive from the other core.
 */
static double bench_mutex_shared(uint64_t n)
{
    locked.v = 0;
    uint64_t t = run_two(cpu_a, body_mutex_inc, &locked, cpu_b, body_mutex_inc, &locked, n);
    check("mutex_shared", locked.v, 2 * n);
    return (double)t / (double)n;
}

static double bench_atomic_shared(uint64_t n)
{
    atomic_store(&shared_counter.v, 0);
    uint64_t t = run_two(cpu_a, body_atomic_inc, &shared_counter.v, cpu_b, body_atomic_inc,
                         &shared_counter.v, n);
    check("atomic_shared", atomic_load(&shared_counter.v), 2 * n);
    return (double)t / (double)n;
}

/* ------------------------------------------------------------------------- */
/* 4. False sharing: nothing is shared, yet the cores fight                  */
/* ------------------------------------------------------------------------- */

/*
 * Each thread increments ITS OWN counter, exactly like the private baseline.
 * The program is logically shared-nothing. The only difference between the two
 * tests below is where the counters sit in memory:
 *
 *   padded:  each counter on its own cache line(s)  -> should match the baseline
 *   packed:  both counters inside one 64-byte line -> the line bounces between
 *            the cores on every write, although no data is shared at all
 *
 * Caches keep coherence per line, not per variable; the hardware cannot know
 * that the two threads touch different bytes of the line.
 */
static struct slot padded[2];

struct packed_pair {
    _Alignas(CACHE_LINE) _Atomic uint64_t a; /* a and b: same 64-byte line */
    _Atomic uint64_t b;
};

static struct packed_pair packed;

static double bench_padded(uint64_t n)
{
    atomic_store(&padded[0].v, 0);
    atomic_store(&padded[1].v, 0);
    uint64_t t =
        run_two(cpu_a, body_private_inc, &padded[0].v, cpu_b, body_private_inc, &padded[1].v, n);
    check("padded", atomic_load(&padded[0].v), n);
    check("padded", atomic_load(&padded[1].v), n);
    return (double)t / (double)n;
}

static double bench_false_sharing(uint64_t n)
{
    atomic_store(&packed.a, 0);
    atomic_store(&packed.b, 0);
    uint64_t t = run_two(cpu_a, body_private_inc, &packed.a, cpu_b, body_private_inc, &packed.b, n);
    check("false_sharing", atomic_load(&packed.a), n);
    check("false_sharing", atomic_load(&packed.b), n);
    return (double)t / (double)n;
}

/*
 * The plain increments above are partly shielded by the store buffer: a core
 * queues its stores, reads its own counter back from that queue, and writes
 * several queued stores at once each time it wins the line back. An atomic
 * read-modify-write cannot hide that way (it must own the line while it runs),
 * so per-thread statistics counters kept with atomic_fetch_add -- a common
 * pattern -- feel false sharing at full strength. Same layouts, atomic bodies:
 */
static double bench_padded_atomic(uint64_t n)
{
    atomic_store(&padded[0].v, 0);
    atomic_store(&padded[1].v, 0);
    uint64_t t =
        run_two(cpu_a, body_atomic_inc, &padded[0].v, cpu_b, body_atomic_inc, &padded[1].v, n);
    check("padded_atomic", atomic_load(&padded[0].v), n);
    check("padded_atomic", atomic_load(&padded[1].v), n);
    return (double)t / (double)n;
}

static double bench_false_sharing_atomic(uint64_t n)
{
    atomic_store(&packed.a, 0);
    atomic_store(&packed.b, 0);
    uint64_t t = run_two(cpu_a, body_atomic_inc, &packed.a, cpu_b, body_atomic_inc, &packed.b, n);
    check("false_sharing_atomic", atomic_load(&packed.a), n);
    check("false_sharing_atomic", atomic_load(&packed.b), n);
    return (double)t / (double)n;
}

/* ------------------------------------------------------------------------- */
/* 5. Cache-line ping-pong: the price of one message between cores           */
/* ------------------------------------------------------------------------- */

/*
 * The smallest possible conversation between two cores: thread A writes a
 * flag, thread B spins until it sees the new value and writes an answer, A
 * spins until it sees the answer. Each round trip moves the line to B and back.
 * This is the floor under ANY cross-core communication, including seacore's
 * own cross-shard queues (chapter 4): they are built so that one such transfer
 * carries a whole batch of messages rather than one.
 *
 * Release/acquire ordering makes everything written before the flag visible
 * to the reader of the flag; on x86 it costs nothing extra.
 */
static struct slot flag;

static void body_ping(void *arg, uint64_t n)
{
    _Atomic uint64_t *f = arg;
    for (uint64_t i = 0; i < n; i++) {
        atomic_store_explicit(f, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(f, memory_order_acquire) != 2 * i + 2)
            cpu_relax();
    }
}

static void body_pong(void *arg, uint64_t n)
{
    _Atomic uint64_t *f = arg;
    for (uint64_t i = 0; i < n; i++) {
        while (atomic_load_explicit(f, memory_order_acquire) != 2 * i + 1)
            cpu_relax();
        atomic_store_explicit(f, 2 * i + 2, memory_order_release);
    }
}

static double bench_pingpong(uint64_t n)
{
    atomic_store(&flag.v, 0);
    uint64_t t = run_two(cpu_a, body_ping, &flag.v, cpu_b, body_pong, &flag.v, n);
    return (double)t / (double)n; /* ns per round trip */
}

/* ------------------------------------------------------------------------- */
/* 6. Context switches: letting the kernel hand the CPU to another thread    */
/* ------------------------------------------------------------------------- */

/*
 * Two threads pass a one-byte token through two pipes: A writes to B and
 * blocks reading B's answer; B, blocked reading, wakes, and answers. Each
 * hand-off is one write(), one read(), and a wake-up of a sleeping thread.
 *
 *   same CPU: both threads pinned to one CPU, so every hand-off is a real
 *             context switch (save one thread's registers, pick the next thread
 *             in the scheduler, load its registers and address space state).
 *   two CPUs: the sleeper runs on the other CPU, which is idle; waking it
 *             needs an inter-processor interrupt, and in a virtual machine
 *             the hypervisor gets involved as well.
 *
 * A third line, pipe_no_switch, does the same write()+read() in ONE thread
 * (the byte is already there, so read() never blocks). Subtracting it from a
 * hand-off leaves what the sleep and wake-up themselves cost.
 */
struct pipes {
    int ab[2]; /* A -> B: [0] read end, [1] write end */
    int ba[2]; /* B -> A */
};

static void xwrite(int fd)
{
    char c = 'x';
    for (;;) {
        ssize_t r = write(fd, &c, 1);
        if (r == 1)
            return;
        if (r < 0 && errno != EINTR)
            die("write", errno);
    }
}

static void xread(int fd)
{
    char c;
    for (;;) {
        ssize_t r = read(fd, &c, 1);
        if (r == 1)
            return;
        if (r == 0)
            die("read", EPIPE);
        if (errno != EINTR)
            die("read", errno);
    }
}

static void body_token_a(void *arg, uint64_t n)
{
    struct pipes *p = arg;
    for (uint64_t i = 0; i < n; i++) {
        xwrite(p->ab[1]);
        xread(p->ba[0]);
    }
}

static void body_token_b(void *arg, uint64_t n)
{
    struct pipes *p = arg;
    for (uint64_t i = 0; i < n; i++) {
        xread(p->ab[0]);
        xwrite(p->ba[1]);
    }
}

static void body_pipe_self(void *arg, uint64_t n)
{
    struct pipes *p = arg;
    for (uint64_t i = 0; i < n; i++) {
        xwrite(p->ab[1]);
        xread(p->ab[0]);
    }
}

static struct pipes token_pipes;

static void open_pipes(void)
{
    if (pipe(token_pipes.ab) != 0 || pipe(token_pipes.ba) != 0)
        die("pipe", errno);
}

static double bench_pipe_no_switch(uint64_t n)
{
    uint64_t t = run_one(cpu_a, body_pipe_self, &token_pipes, n);
    return (double)t / (double)n;
}

/* n round trips are 2n hand-offs; we report ns per hand-off (per switch). */
static double bench_switch_same_cpu(uint64_t n)
{
    uint64_t t = run_two(cpu_a, body_token_a, &token_pipes, cpu_a, body_token_b, &token_pipes, n);
    return (double)t / (double)(2 * n);
}

static double bench_switch_cross_cpu(uint64_t n)
{
    uint64_t t = run_two(cpu_a, body_token_a, &token_pipes, cpu_b, body_token_b, &token_pipes, n);
    return (double)t / (double)(2 * n);
}

/* ------------------------------------------------------------------------- */
/* Calibration, medians, output                                              */
/* ------------------------------------------------------------------------- */

typedef double (*bench_fn)(uint64_t n);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * Find an n for which one run takes about target_ns (the growing runs double as
 * a warm-up: caches, page faults, CPU frequency), then run reps times and
 * return the median ns/op.
 */
static double measure(bench_fn bench, const struct settings *s)
{
    uint64_t n = 64;
    double per_op = bench(n);
    while (per_op * (double)n < (double)s->target_ns / 8) {
        n *= 4;
        per_op = bench(n);
    }
    if (per_op <= 0)
        per_op = 0.01;
    double want = (double)s->target_ns / per_op;
    n = want < 64 ? 64 : (uint64_t)want;

    double results[16];
    int reps = s->reps < 16 ? s->reps : 16;
    for (int i = 0; i < reps; i++)
        results[i] = bench(n);
    qsort(results, (size_t)reps, sizeof results[0], cmp_double);
    return results[reps / 2];
}

static void report(const char *name, double value, const char *peer, double peer_value)
{
    printf("BENCH name=ch01.%s value=%.2f unit=ns/op", name, value);
    if (peer != NULL)
        printf(" peer=%s peer_value=%.2f ratio=%.4f", peer, peer_value, peer_value / value);
    printf("\n");
    fflush(stdout);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ch01_sharing [--quick] [--help]\n"
            "\n"
            "Measures what sharing data between cores costs on this machine\n"
            "(chapter 1 of the seacore textbook). Prints one line per measurement:\n"
            "  BENCH name=ch01.<what> value=<ns> unit=ns/op [peer=<p> peer_value=<ns> ratio=<r>]\n"
            "\n"
            "  private           increment a counter only one thread touches (the baseline)\n"
            "  mutex_alone       the same inside pthread_mutex_lock/unlock, one thread\n"
            "  atomic_alone      the same with atomic fetch_add (lock add), one thread\n"
            "  mutex_shared      two threads on two CPUs, one counter, a mutex\n"
            "  atomic_shared     two threads on two CPUs, one counter, atomic fetch_add\n"
            "  padded            two threads, each its own counter on its own cache line\n"
            "  false_sharing     two threads, each its own counter, both in one cache line\n"
            "  padded_atomic     as padded, but each increment is an atomic fetch_add\n"
            "  false_sharing_atomic  as false_sharing, with atomic fetch_add\n"
            "  pingpong          one cache line bounced between two CPUs, ns per round trip\n"
            "  pipe_no_switch    write()+read() of one byte on a pipe, one thread\n"
            "  switch_same_cpu   token passed through pipes between two threads on one CPU,\n"
            "                    ns per hand-off (one context switch each)\n"
            "  switch_cross_cpu  the same with the threads on two CPUs (a wake-up each)\n"
            "\n"
            "Two-thread values are wall time / operations per thread: the cost of one\n"
            "operation as seen by the thread doing it (ratio 1.0 = perfect scaling).\n"
            "\n"
            "options:\n"
            "  --quick   short runs (well under a second), same lines, noisier numbers\n"
            "  --help    show this text\n");
}

int main(int argc, char **argv)
{
    const struct settings *s = &full_settings;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            s = &quick_settings;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ch01_sharing: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }

    pick_cpus();
    open_pipes();
    fprintf(stderr, "# ch01_sharing: median of %d runs of ~%llu ms each\n", s->reps,
            (unsigned long long)(s->target_ns / 1000000));

    double private_v = measure(bench_private, s);
    report("private", private_v, NULL, 0);
    report("mutex_alone", measure(bench_mutex_alone, s), "private", private_v);
    report("atomic_alone", measure(bench_atomic_alone, s), "private", private_v);
    report("mutex_shared", measure(bench_mutex_shared, s), "private", private_v);
    report("atomic_shared", measure(bench_atomic_shared, s), "private", private_v);

    double padded_v = measure(bench_padded, s);
    report("padded", padded_v, "private", private_v);
    report("false_sharing", measure(bench_false_sharing, s), "padded", padded_v);
    double padded_atomic = measure(bench_padded_atomic, s);
    report("padded_atomic", padded_atomic, "private", private_v);
    report("false_sharing_atomic", measure(bench_false_sharing_atomic, s), "padded_atomic",
           padded_atomic);

    report("pingpong", measure(bench_pingpong, s), NULL, 0);

    double no_switch = measure(bench_pipe_no_switch, s);
    report("pipe_no_switch", no_switch, NULL, 0);
    double same = measure(bench_switch_same_cpu, s);
    report("switch_same_cpu", same, "pipe_no_switch", no_switch);
    report("switch_cross_cpu", measure(bench_switch_cross_cpu, s), "switch_same_cpu", same);

    int failures = atomic_load(&pin_failures);
    if (failures > 0)
        fprintf(stderr,
                "# note: pthread_setaffinity_np failed %d times; threads ran where the "
                "kernel put them, so the same-CPU/two-CPU lines may not mean what they say\n",
                failures);
    return 0;
}
