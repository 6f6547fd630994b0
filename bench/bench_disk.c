/*
 * bench_disk.c — latency isolation on a real disk: does a latency-sensitive
 * reader keep its latency while a bulk writer runs beside it? seacore's I/O
 * queue (disk/io.c: a fair queue with shares and a token bucket built from
 * the disk model) beside fio doing the same two jobs on the same file, in
 * one run.
 *
 * The two workloads, as issue 6 sets them:
 *
 *   A  4 KiB random reads, one at a time (depth 1), as fast as they come
 *      back: a scheduling group with 1000 shares;
 *   B  128 KiB sequential writes, 32 in flight: a group with 100 shares.
 *
 * Each runs alone, then both together, on one real shard (the app's main
 * fiber drives the phases; A and B are loops of futures in their groups).
 * A phase has a warm-up (not counted) and a measured window. For A the
 * bench times every read itself, from the call to sc_file_dma_read() to its
 * continuation (the app's view: time in the I/O queue counts), and takes
 * exact percentiles of the samples; for B it counts bytes.
 *
 * seacore runs in four configurations: --reactor-backend linux-aio and
 * io_uring, each with the disk model written by a quick seacore-iotune run
 * at the start (`aio`, `uring`) and without any model (`aio_nomodel`,
 * `uring_nomodel`: the queue then only caps requests in flight at 128, so
 * every request reaches the device at once, as in fio).
 *
 * Peer: fio (the Debian package), the same jobs (A: randread bs=4k
 * iodepth=1, no rate limit; B: write bs=128k iodepth=32; direct=1, same
 * file, same warm-up as ramp_time, same window as runtime) with
 * ioengine=libaio and io_uring, its JSON output parsed for A's completion
 * latency percentiles (clat_ns) and B's bandwidth (bw_bytes).
 *
 * Output: the common BENCH lines (bench/README.md lists them all). Time
 * units: ratio = peer_value / value; throughput and "% kept": ratio = value
 * / peer_value. Above 1, seacore is better. The targets of issue 6 go to
 * stderr with what was measured:
 *
 *   A's p99 under B / A's p99 alone       <= 1.5
 *   B's share kept                        >= 80 %
 *   A's p99 under B, fio's / seacore's    >= 2
 *   scheduler CPU per I/O                 <= 1 us
 *
 * "B's share" is the part of the disk B is owed while A runs: what A leaves
 * (1 - A's part, A's part being its reads per second times a read's cost in
 * the disk model), and never less than B's 100/1100 of the shares. "Kept"
 * is B's throughput under A over its throughput alone, over that share.
 *
 * CPU per I/O: the shard thread's CPU time (CLOCK_THREAD_CPUTIME_ID, user
 * and system from getrusage(RUSAGE_THREAD)) over the measured window of
 * A+B, per I/O completed. That is everything the thread did: the reactor,
 * the futures, the I/O queue, and the kernel's side of submitting and
 * reaping. The scheduler alone is measured without a device: requests of
 * two classes queued, dispatched and completed through the fair queue
 * (disk.fq_cost).
 *
 * Rounds: seacore's four configurations, then fio's two engines, per round;
 * values are medians over the rounds (3, or 1 with --quick, which also
 * shortens every phase and uses a smaller file). On a filesystem without
 * O_DIRECT (tmpfs /tmp) there is nothing to measure: a note, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "core/seacore.h"
#include "disk/fair_queue.h"
#include "disk/file.h"
#include "disk/io.h"

extern char **environ;

struct settings {
    int rounds;
    uint64_t file_size;
    uint64_t warmup_ms, window_ms;
    const char *iotune_size;
    const char *iotune_ms;
};

static const struct settings full_settings = {3, 1ull << 30, 250, 2000, "256M", "500"};
static const struct settings quick_settings = {1, 64ull << 20, 50, 200, "16M", "100"};
static const struct settings *set;

#define A_SHARES 1000
#define B_SHARES 100
#define A_BS     4096u
#define B_BS     (128u * 1024u)
#define B_DEPTH  32u
#define MAX_LAT  (1u << 20) /* A's latency samples per phase */

static int failed;

static void fail(const char *what)
{
    fprintf(stderr, "bench_disk: check failed: %s\n", what);
    failed = 1;
}

/* ------------------------------------------------------------------ */
/* What one configuration measured                                     */
/* ------------------------------------------------------------------ */

struct lat {
    double p50, p99, p999; /* us */
    double iops;
    double c50, c99, c999; /* fio only: its clat percentiles (after io_submit returned) */
};

struct result {
    struct lat a_alone, a_loaded;
    double b_alone, b_loaded;       /* MB/s */
    double cpu_ns, user_ns, sys_ns; /* per I/O, in A+B */
    double ioq_p99_loaded;          /* A's p99 from sc_io_stats (cross-check), us */
};

enum { C_AIO, C_URING, C_AIO_NOMODEL, C_URING_NOMODEL, N_CONF };
static const char *const conf_names[N_CONF] = {"aio", "uring", "aio_nomodel", "uring_nomodel"};
static const enum sc_reactor_backend conf_backend[N_CONF] = {
    SC_REACTOR_LINUX_AIO, SC_REACTOR_IO_URING, SC_REACTOR_LINUX_AIO, SC_REACTOR_IO_URING};
enum { F_LIBAIO, F_URING, N_FIO };
static const char *const fio_engines[N_FIO] = {"libaio", "io_uring"};

static struct result sc_res[N_CONF][MAX_ROUNDS];
static struct result fio_res[N_FIO][MAX_ROUNDS];
static bool have_fio = true;
static bool poll_mode;       /* --poll-mode: the shard never sleeps */
static const char *goal_opt; /* --latency-goal-us: passed to seacore-iotune */

static char dir[PATH_MAX], data_path[PATH_MAX + 16], model_path[PATH_MAX + 16];
static struct sc_disk_model model;

/* ------------------------------------------------------------------ */
/* seacore: the two loads                                               */
/* ------------------------------------------------------------------ */

struct load {
    struct sc_file *f;
    bool write;
    size_t bs;
    unsigned depth;
    char *bufs;
    uint64_t span, cursor;
    uint64_t count_from, deadline; /* the measured window */
    uint64_t ops, bytes;           /* completed inside it */
    uint64_t *lat;                 /* A: latencies of the window's reads, ns */
    size_t nlat;
    int err;
};

struct issued {
    struct load *l;
    uint64_t t;
};

static struct sc_future io_done(void *cap, intptr_t v, int err)
{
    struct issued *is = cap;
    struct load *l = is->l;
    uint64_t now = sc_now();
    if (err || (size_t)v != l->bs) {
        if (!l->err)
            l->err = err ? err : -EIO;
        return sc_make_ready(SC_STOP);
    }
    if (is->t >= l->count_from && now <= l->deadline) {
        l->ops++;
        l->bytes += l->bs;
        if (l->lat && l->nlat < MAX_LAT)
            l->lat[l->nlat++] = now - is->t;
    }
    return sc_make_ready(SC_CONTINUE);
}

struct worker {
    struct load *l;
    char *buf;
};

static struct sc_future io_step(void *cap)
{
    struct worker *w = cap;
    struct load *l = w->l;
    if (l->err || sc_now() >= l->deadline)
        return sc_make_ready(SC_STOP);
    uint64_t off;
    if (l->write) { /* sequential, wrapping at the end of the file */
        if (l->cursor + l->bs > l->span)
            l->cursor = 0;
        off = l->cursor;
        l->cursor += l->bs;
    } else {
        off = sc_random_below(l->span / l->bs) * l->bs;
    }
    struct issued is = {l, sc_now()};
    struct sc_future f = l->write ? sc_file_dma_write(l->f, off, w->buf, l->bs)
                                  : sc_file_dma_read(l->f, off, w->buf, l->bs);
    return sc_then_wrapped(f, io_done, &is, sizeof is);
}

static struct sc_future start_worker(void *cap, size_t i)
{
    struct load *l = *(struct load **)cap;
    struct worker w = {l, l->bufs + i * l->bs};
    return sc_repeat(io_step, &w, sizeof w);
}

/* Runs as a task of the load's group: everything it chains stays there. */
static struct sc_future start_load(void *cap, intptr_t v)
{
    (void)v;
    struct load *l = *(struct load **)cap;
    return sc_parallel_for_each(l->depth, start_worker, &l, sizeof l);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Exact percentiles (nearest rank) of n samples in ns, as us. */
static struct lat percentiles(uint64_t *v, size_t n, double secs)
{
    struct lat r = {.iops = (double)n / secs};
    if (!n)
        return r;
    qsort(v, n, sizeof *v, cmp_u64);
    double q[3] = {0.50, 0.99, 0.999}, *out[3] = {&r.p50, &r.p99, &r.p999};
    for (int i = 0; i < 3; i++) {
        size_t k = (size_t)(q[i] * (double)n + 0.999999);
        *out[i] = (double)v[k ? k - 1 : 0] / 1e3;
    }
    return r;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void thread_usage(uint64_t *user_ns, uint64_t *sys_ns)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    *user_ns = (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000;
    *sys_ns = (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000;
}

struct run_ctx {
    struct result *out;
    bool with_model;
};

static struct sc_sched_group group_a, group_b;
static uint64_t lat_buf[MAX_LAT];

/* One phase: A, B or both, warm-up then the window; in the main fiber. */
static int phase(struct load *a, struct load *b, struct result *out)
{
    uint64_t t0 = sc_now();
    struct load *ls[2] = {a, b};
    struct sc_future fs[2];
    size_t n = 0;
    for (int i = 0; i < 2; i++) {
        if (!ls[i])
            continue;
        ls[i]->count_from = t0 + SC_MS(set->warmup_ms);
        ls[i]->deadline = ls[i]->count_from + SC_MS(set->window_ms);
        ls[i]->ops = ls[i]->bytes = 0;
        ls[i]->nlat = 0;
        ls[i]->err = 0;
        fs[n++] =
            sc_sched_group_spawn(i == 0 ? group_a : group_b, start_load, &ls[i], sizeof ls[i]);
    }
    sc_await(sc_sleep(SC_MS(set->warmup_ms)), NULL);
    sc_io_stats_reset();
    uint64_t cpu0 = thread_cpu_ns(), u0, s0, u1, s1;
    thread_usage(&u0, &s0);
    sc_await(sc_sleep(SC_MS(set->window_ms)), NULL);
    uint64_t cpu1 = thread_cpu_ns();
    thread_usage(&u1, &s1);
    int rc = sc_await(sc_when_all_succeed(fs, n), NULL);
    for (int i = 0; i < 2 && rc == 0; i++)
        if (ls[i] && ls[i]->err)
            rc = ls[i]->err;
    if (rc < 0)
        return rc;
    if (a && b) {
        double ios = (double)(a->ops + b->ops);
        out->cpu_ns = (double)(cpu1 - cpu0) / ios;
        out->user_ns = (double)(u1 - u0) / ios;
        out->sys_ns = (double)(s1 - s0) / ios;
        struct sc_io_stats st;
        sc_io_stats(group_a, &st);
        out->ioq_p99_loaded = (double)st.p99_ns / 1e3;
    }
    return 0;
}

static int seacore_phases(struct sc_file *f, struct result *out)
{
    double secs = (double)set->window_ms / 1e3;
    char *bufs = sc_dma_alloc((B_DEPTH + 1) * B_BS);
    if (!bufs)
        return -ENOMEM;
    struct load a = {
        .f = f, .bs = A_BS, .depth = 1, .bufs = bufs, .span = set->file_size, .lat = lat_buf};
    struct load b = {.f = f,
                     .write = true,
                     .bs = B_BS,
                     .depth = B_DEPTH,
                     .bufs = bufs + B_BS,
                     .span = set->file_size};
    memset(bufs, 0x5a, (B_DEPTH + 1) * B_BS);
    int rc = phase(&a, NULL, out);
    if (rc == 0) {
        out->a_alone = percentiles(a.lat, a.nlat, secs);
        rc = phase(NULL, &b, out);
    }
    if (rc == 0) {
        out->b_alone = (double)b.bytes / secs / 1e6;
        rc = phase(&a, &b, out);
    }
    if (rc == 0) {
        out->a_loaded = percentiles(a.lat, a.nlat, secs);
        out->b_loaded = (double)b.bytes / secs / 1e6;
    }
    sc_dma_free(bufs);
    return rc;
}

static struct sc_future seacore_fiber(void *cap)
{
    struct run_ctx *c = cap;
    int rc = sc_sched_group_create("A", A_SHARES, &group_a);
    if (rc == 0)
        rc = sc_sched_group_create("B", B_SHARES, &group_b);
    if (rc < 0)
        return sc_make_error(rc);
    intptr_t v;
    rc = sc_await(sc_file_open(data_path, SC_FILE_READ | SC_FILE_WRITE), &v);
    if (rc < 0) {
        fprintf(stderr, "bench_disk: open %s: %s\n", data_path, sc_strerror(rc));
        return sc_make_error(rc);
    }
    struct sc_file *f = (struct sc_file *)v;
    struct sc_disk_model m;
    if ((sc_io_model(&m) == 0) != c->with_model) {
        fail("the run uses a disk model exactly when given one");
        rc = -EINVAL;
    }
    if (rc == 0 && !sc_file_is_direct(f)) {
        fail("the data file is opened with O_DIRECT");
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = seacore_phases(f, c->out);
    int rc2 = sc_await(sc_file_close(f), NULL);
    return rc < 0 ? sc_make_error(rc) : rc2 < 0 ? sc_make_error(rc2) : sc_make_ready(0);
}

static struct sc_future seacore_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    return sc_thread_spawn(seacore_fiber, arg, sizeof(struct run_ctx), NULL);
}

static bool seacore_run(int conf, int round)
{
    struct sc_config cfg;
    sc_config_default(&cfg);
    cfg.backend = SC_BACKEND_REAL;
    cfg.smp = 1;
    cfg.quiet = true;
    cfg.reactor_backend = conf_backend[conf];
    cfg.poll_mode = poll_mode;
    bool with_model = conf == C_AIO || conf == C_URING;
    cfg.io_properties_file = with_model ? model_path : NULL;
    struct run_ctx c = {&sc_res[conf][round], with_model};
    if (sc_run(&cfg, seacore_main, &c, 0, NULL) != 0) {
        fprintf(stderr, "bench_disk: the seacore run (%s) failed\n", conf_names[conf]);
        return false;
    }
    const struct result *r = c.out;
    if (r->a_alone.iops <= 0 || r->a_loaded.iops <= 0 || r->b_alone <= 0 || r->b_loaded <= 0)
        fail("every phase completed I/O");
    return true;
}

/* ------------------------------------------------------------------ */
/* fio                                                                  */
/* ------------------------------------------------------------------ */

/* Run a program, stdout and stderr to files; its exit status, or -1. */
static int spawn(char *const argv[], const char *out, const char *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        size_t got = fread(s, 1, (size_t)n, fp);
        s[got] = 0;
    }
    fclose(fp);
    return s;
}

/*
 * Just enough JSON for fio's output: find a key inside [from, end) and read
 * the number after its colon. fio prints one object per job, each starting
 * with "jobname"; inside it "read" comes before "write", and inside each
 * "clat_ns" holds "percentile" { "99.000000" : N, ... }.
 */
static const char *find_key(const char *from, const char *end, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(from, pat);
    return p && p < end ? p + strlen(pat) : NULL;
}

static bool number_after(const char *p, double *out)
{
    if (!p || !(p = strchr(p, ':')))
        return false;
    char *e;
    *out = strtod(p + 1, &e);
    return e != p + 1;
}

/* The job named `name`: [*start, *end). */
static bool fio_job(const char *json, const char *name, const char **start, const char **end)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"jobname\" : \"%s\"", name);
    const char *p = strstr(json, pat);
    if (!p)
        return false;
    const char *next = strstr(p + strlen(pat), "\"jobname\"");
    *start = p;
    *end = next ? next : p + strlen(p);
    return true;
}

/* The job's "read" or "write" object (not the word as a value, as in
 * "rw" : "write" among the job's options). */
static bool fio_dir(const char *s, const char *e, const char *dirname, const char **ds)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\" : {", dirname);
    const char *p = strstr(s, pat);
    *ds = p && p < e ? p + strlen(pat) : NULL;
    return *ds != NULL;
}

/* The 50th, 99th and 99.9th percentiles of one of fio's latency objects, in us. */
static bool fio_percentiles(const char *d, const char *e, const char *which, double *out)
{
    const char *o = find_key(d, e, which), *pc = o ? find_key(o, e, "percentile") : NULL;
    static const char *const keys[3] = {"50.000000", "99.000000", "99.900000"};
    for (int i = 0; i < 3; i++) {
        if (!pc || !number_after(find_key(pc, e, keys[i]), &out[i]))
            return false;
        out[i] /= 1e3;
    }
    return true;
}

/* fio's CPU time for one job (its usr_cpu and sys_cpu are percentages of
 * its runtime) and its I/Os, added to *cpu_ns and *ios. */
static void fio_cpu(const char *s, const char *e, const char *d, double *cpu_ns, double *ios)
{
    double usr, sys, rt, n;
    if (number_after(find_key(s, e, "usr_cpu"), &usr) &&
        number_after(find_key(s, e, "sys_cpu"), &sys) &&
        number_after(find_key(s, e, "job_runtime"), &rt) &&
        number_after(find_key(d, e, "total_ios"), &n)) {
        *cpu_ns += (usr + sys) / 100 * rt * 1e6;
        *ios += n;
    }
}

static bool fio_parse(const char *json, bool has_a, bool has_b, struct result *r, bool loaded)
{
    const char *s, *e, *d;
    double cpu_ns = 0, ios = 0;
    if (has_a) {
        struct lat l = {0};
        double p[3], c[3];
        if (!fio_job(json, "a", &s, &e) || !fio_dir(s, e, "read", &d) ||
            !fio_percentiles(d, e, "lat_ns", p) || !fio_percentiles(d, e, "clat_ns", c) ||
            !number_after(find_key(d, e, "iops"), &l.iops))
            return false;
        l.p50 = p[0], l.p99 = p[1], l.p999 = p[2];
        l.c50 = c[0], l.c99 = c[1], l.c999 = c[2];
        *(loaded ? &r->a_loaded : &r->a_alone) = l;
        fio_cpu(s, e, d, &cpu_ns, &ios);
    }
    if (has_b) {
        double v;
        if (!fio_job(json, "b", &s, &e) || !fio_dir(s, e, "write", &d) ||
            !number_after(find_key(d, e, "bw_bytes"), &v))
            return false;
        *(loaded ? &r->b_loaded : &r->b_alone) = v / 1e6;
        fio_cpu(s, e, d, &cpu_ns, &ios);
    }
    if (has_a && has_b && ios > 0)
        r->cpu_ns = cpu_ns / ios;
    return true;
}

/* One fio run of job A, B or both; false if fio is missing or failed. */
static bool fio_phase(int engine, bool a, bool b, struct result *r)
{
    char job[PATH_MAX + 64], out[PATH_MAX + 64], err[PATH_MAX + 64];
    snprintf(job, sizeof job, "%s/fio.job", dir);
    snprintf(out, sizeof out, "%s/fio.json", dir);
    snprintf(err, sizeof err, "%s/fio.err", dir);
    FILE *fp = fopen(job, "w");
    if (!fp)
        return false;
    fprintf(fp,
            "[global]\nfilename=%s\nsize=%" PRIu64 "\ndirect=1\nioengine=%s\n"
            "time_based=1\nramp_time=%" PRIu64 "ms\nruntime=%" PRIu64 "ms\nrandrepeat=0\n"
            "lat_percentiles=1\n",
            data_path, set->file_size, fio_engines[engine], set->warmup_ms, set->window_ms);
    if (a)
        fprintf(fp, "[a]\nrw=randread\nbs=4k\niodepth=1\n");
    if (b)
        fprintf(fp, "[b]\nrw=write\nbs=128k\niodepth=32\n");
    fclose(fp);
    char *argv[] = {"fio", "--output-format=json", "--output", out, job, NULL};
    int rc = spawn(argv, "/dev/null", err);
    if (rc != 0) {
        fprintf(stderr, "# bench_disk: fio (%s) %s; its peers are skipped\n", fio_engines[engine],
                rc < 0 ? "could not be started" : "failed");
        char *e = slurp(err);
        if (e && *e)
            fprintf(stderr, "%s", e);
        free(e);
        return false;
    }
    char *json = slurp(out);
    bool ok = json && fio_parse(json, a, b, r, a && b);
    if (!ok)
        fprintf(stderr, "# bench_disk: fio's JSON (%s) did not parse; its peers are skipped\n",
                out);
    free(json);
    return ok;
}

static void fio_run(int engine, int round)
{
    struct result *r = &fio_res[engine][round];
    struct result tmp;
    if (!fio_phase(engine, true, false, r) || !fio_phase(engine, false, true, r) ||
        !fio_phase(engine, true, true, &tmp)) {
        have_fio = false;
        return;
    }
    r->a_loaded = tmp.a_loaded;
    r->b_loaded = tmp.b_loaded;
    r->cpu_ns = tmp.cpu_ns;
}

/* ------------------------------------------------------------------ */
/* The scheduler alone: the fair queue without a device                 */
/* ------------------------------------------------------------------ */

#define FQ_BATCH 64

static double fq_cost(void)
{
    struct sc_fair_queue fq;
    if (sc_fq_init(&fq, &model, 0) != 0) {
        fail("the model is usable by the fair queue");
        return 0;
    }
    int ca = sc_fq_add_class(&fq, A_SHARES), cb = sc_fq_add_class(&fq, B_SHARES);
    struct sc_fq_entry e[FQ_BATCH], *got[FQ_BATCH];
    uint64_t now = 0, reqs = 0, iters = set == &quick_settings ? 2000 : 50000;
    uint64_t t0 = now_ns();
    for (uint64_t it = 0; it < iters; it++) {
        for (unsigned i = 0; i < FQ_BATCH; i++) {
            bool w = i % 4 == 3; /* one write of 128 KiB for three reads of 4 KiB */
            sc_fq_entry_init(&e[i], (unsigned)(w ? cb : ca), w ? SC_IO_WRITE : SC_IO_READ,
                             w ? B_BS : A_BS);
            sc_fq_queue(&fq, &e[i]);
        }
        unsigned n = 0;
        while (n < FQ_BATCH) {
            struct sc_fq_entry *x = sc_fq_dispatch(&fq, now);
            if (x)
                got[n++] = x;
            else /* the disk's time passes */
                now = sc_fq_next_ready(&fq, now) > now ? sc_fq_next_ready(&fq, now) : now + 1;
        }
        for (unsigned i = 0; i < n; i++)
            sc_fq_complete(&fq, got[i], now);
        reqs += n;
    }
    uint64_t t1 = now_ns();
    struct sc_fq_class_stats sa, sb;
    sc_fq_class_stats(&fq, (unsigned)ca, &sa);
    sc_fq_class_stats(&fq, (unsigned)cb, &sb);
    if (sa.completed + sb.completed != reqs || sa.in_flight || sb.in_flight)
        fail("fair queue: every request dispatched and completed");
    return (double)(t1 - t0) / (double)reqs;
}

/* ------------------------------------------------------------------ */
/* Setup: the directory, the data file, the model                       */
/* ------------------------------------------------------------------ */

/* Write the whole data file once (blocks never written read as zeros
 * without touching the device: the reads must meet real data). */
static int make_data_file(void)
{
    int fd = open(data_path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t chunk = 1u << 20;
    void *buf;
    if (posix_memalign(&buf, 4096, chunk) != 0) {
        close(fd);
        return -ENOMEM;
    }
    memset(buf, 0xa5, chunk);
    int rc = 0;
    for (uint64_t off = 0; off < set->file_size && rc == 0; off += chunk) {
        ssize_t n = pwrite(fd, buf, chunk, (off_t)off);
        if (n != (ssize_t)chunk)
            rc = n < 0 ? -errno : -EIO;
    }
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    free(buf);
    close(fd);
    return rc;
}

/* seacore-iotune from this build: <build>/bench/bench_disk -> <build>/bin/. */
static int run_iotune(void)
{
    char exe[PATH_MAX], tool[PATH_MAX + 32], err[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    *slash = 0;
    snprintf(tool, sizeof tool, "%s/../bin/seacore-iotune", exe);
    snprintf(err, sizeof err, "%s/iotune.err", dir);
    char *argv[] = {tool,
                    "--dir",
                    dir,
                    "--file-size",
                    (char *)set->iotune_size,
                    "--duration-ms",
                    (char *)set->iotune_ms,
                    "--output",
                    model_path,
                    "--latency-goal-us",
                    (char *)(goal_opt ? goal_opt : "750"),
                    NULL};
    int rc = spawn(argv, "/dev/null", err);
    if (rc != 0) {
        fprintf(stderr, "bench_disk: %s failed (exit %d)\n", tool, rc);
        char *e = slurp(err);
        if (e)
            fprintf(stderr, "%s", e);
        free(e);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Report                                                               */
/* ------------------------------------------------------------------ */

/* The median over the rounds of one field of a result (every field is a
 * double; off is its offsetof). */
static double med_at(const struct result *rs, size_t off)
{
    double v[MAX_ROUNDS];
    for (int r = 0; r < set->rounds; r++)
        memcpy(&v[r], (const char *)&rs[r] + off, sizeof v[r]);
    return median(v, set->rounds);
}
#define MED(rs, field) med_at((rs), offsetof(struct result, field))

static void line(const char *conf, const char *what, const char *unit, double v, const char *peer,
                 double pv, bool lower_better)
{
    printf("BENCH name=disk.%s.%s value=%.2f unit=%s", conf, what, v, unit);
    if (peer && pv > 0 && v > 0)
        printf(" peer=%s peer_value=%.2f ratio=%.2f", peer, pv, lower_better ? pv / v : v / pv);
    printf("\n");
}

/* What B was owed while A ran: the disk time A left, at least B's shares'
 * part. A's part is its reads per second times a read's modelled cost. */
static double b_owed(double a_iops)
{
    struct sc_fair_queue fq;
    sc_fq_init(&fq, &model, 0);
    double a_part = a_iops * (double)sc_fq_cost(&fq, SC_IO_READ, A_BS) / 1e9;
    double floor_ = (double)B_SHARES / (A_SHARES + B_SHARES);
    double owed = 1 - a_part;
    return owed > floor_ ? owed : floor_;
}

static double kept(double b_alone, double b_loaded, double a_iops)
{
    return b_alone > 0 ? 100 * (b_loaded / b_alone) / b_owed(a_iops) : 0;
}

struct summary {
    double a[3], l[3];   /* A's p50, p99, p99.9 alone and under B, us */
    double ac[3], lc[3]; /* fio only: the same from its clat */
    double a_iops, l_iops, b_alone, b_loaded, cpu, user, sys, ioq99;
};

static struct summary summarize(const struct result *rs)
{
    struct summary s = {{MED(rs, a_alone.p50), MED(rs, a_alone.p99), MED(rs, a_alone.p999)},
                        {MED(rs, a_loaded.p50), MED(rs, a_loaded.p99), MED(rs, a_loaded.p999)},
                        {MED(rs, a_alone.c50), MED(rs, a_alone.c99), MED(rs, a_alone.c999)},
                        {MED(rs, a_loaded.c50), MED(rs, a_loaded.c99), MED(rs, a_loaded.c999)},
                        MED(rs, a_alone.iops),
                        MED(rs, a_loaded.iops),
                        MED(rs, b_alone),
                        MED(rs, b_loaded),
                        MED(rs, cpu_ns),
                        MED(rs, user_ns),
                        MED(rs, sys_ns),
                        MED(rs, ioq_p99_loaded)};
    return s;
}

static void report_conf(int c)
{
    struct summary s = summarize(sc_res[c]);
    int fe = conf_backend[c] == SC_REACTOR_IO_URING ? F_URING : F_LIBAIO;
    struct summary p = have_fio ? summarize(fio_res[fe]) : (struct summary){0};
    char peer[32], cpeer[40];
    snprintf(peer, sizeof peer, "fio.%s", fio_engines[fe]);
    snprintf(cpeer, sizeof cpeer, "fio.%s.clat", fio_engines[fe]);
    const char *pn = have_fio ? peer : NULL, *cn = conf_names[c];
    static const char *const pct[3] = {"p50", "p99", "p999"};
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "a_alone_%s", pct[i]);
        line(cn, name, "us", s.a[i], pn, p.a[i], true);
        if (pn)
            line(cn, name, "us", s.a[i], cpeer, p.ac[i], true);
    }
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "a_loaded_%s", pct[i]);
        line(cn, name, "us", s.l[i], pn, p.l[i], true);
        if (pn)
            line(cn, name, "us", s.l[i], cpeer, p.lc[i], true);
    }
    line(cn, "a_loaded_iops", "IOPS", s.l_iops, pn, p.l_iops, false);
    line(cn, "b_alone", "MB/s", s.b_alone, pn, p.b_alone, false);
    line(cn, "b_loaded", "MB/s", s.b_loaded, pn, p.b_loaded, false);
    double ratio = s.a[1] > 0 ? s.l[1] / s.a[1] : 0, pratio = p.a[1] > 0 ? p.l[1] / p.a[1] : 0;
    line(cn, "a_p99_loaded_over_alone", "x", ratio, pn, pratio, true);
    double k = kept(s.b_alone, s.b_loaded, s.l_iops), pk = kept(p.b_alone, p.b_loaded, p.l_iops);
    line(cn, "b_share_kept", "%", k, pn, pk, false);
    line(cn, "cpu_per_io", "ns/io", s.cpu, pn, p.cpu, true);
    line(cn, "cpu_per_io_user", "ns/io", s.user, NULL, 0, true);
    line(cn, "cpu_per_io_sys", "ns/io", s.sys, NULL, 0, true);
    fflush(stdout); /* whole lines on both streams, even into one file */
    fprintf(stderr,
            "# %s: A p99 %.0f us alone, %.0f us under B (x%.2f, target <= 1.5: %s); B keeps %.0f%% "
            "of its share (target >= 80%%: %s)",
            cn, s.a[1], s.l[1], ratio, ratio <= 1.5 ? "met" : "MISSED", k,
            k >= 80 ? "met" : "MISSED");
    if (have_fio)
        fprintf(stderr, "; fio's A p99 under B is %.2fx ours (target >= 2: %s)", p.l[1] / s.l[1],
                p.l[1] / s.l[1] >= 2 ? "met" : "MISSED");
    fprintf(stderr,
            "; CPU %.0f ns/io (user %.0f, sys %.0f); the I/O queue's own p99 for A %.0f us\n",
            s.cpu, s.user, s.sys, s.ioq99);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_disk [--quick] [--dir DIR] [--model PATH] [--latency-goal-us N]\n"
                 "                  [--poll-mode] [--help]\n"
                 "  latency isolation on a real disk: 4 KiB random reads at depth 1 (1000 shares)\n"
                 "  beside 128 KiB sequential writes at depth 32 (100 shares), on linux-aio and\n"
                 "  io_uring, with and without a disk model, beside fio (see bench/README.md)\n"
                 "  --quick       1 short round on a small file (a smoke test, noisy)\n"
                 "  --dir DIR     where the test file goes (default /tmp; a disk, not tmpfs)\n"
                 "  --model PATH  use this disk model instead of running seacore-iotune first\n"
                 "  --latency-goal-us N  the model's latency goal (seacore-iotune's; default 750)\n"
                 "  --poll-mode   seacore's shard polls instead of sleeping (burns its CPU)\n");
}

int main(int argc, char **argv)
{
    set = &full_settings;
    const char *base = "/tmp", *model_opt = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            set = &quick_settings;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            base = argv[++i];
        } else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model_opt = argv[++i];
        } else if (strcmp(argv[i], "--latency-goal-us") == 0 && i + 1 < argc) {
            goal_opt = argv[++i];
        } else if (strcmp(argv[i], "--poll-mode") == 0) {
            poll_mode = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_disk: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    struct statfs sfs;
    if (statfs(base, &sfs) != 0) {
        fprintf(stderr, "bench_disk: %s: %s\n", base, strerror(errno));
        return 1;
    }
    if (sfs.f_type == 0x01021994) {
        fprintf(stderr,
                "# bench_disk: skipped: %s is tmpfs (no O_DIRECT, no disk to measure); "
                "give --dir on a disk filesystem\n",
                base);
        return 0;
    }
    snprintf(dir, sizeof dir, "%s/seacore-bench-disk.XXXXXX", base);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench_disk: mkdtemp in %s: %s\n", base, strerror(errno));
        return 1;
    }
    snprintf(data_path, sizeof data_path, "%s/data", dir);
    snprintf(model_path, sizeof model_path, "%s/io.conf", dir);
    int rc = 1;
    fprintf(stderr, "# bench_disk: writing a %" PRIu64 " MiB file in %s\n", set->file_size >> 20,
            dir);
    int e = make_data_file();
    if (e < 0) {
        fprintf(stderr, "bench_disk: cannot write %s: %s\n", data_path, strerror(-e));
        goto out;
    }
    if (model_opt) {
        snprintf(model_path, sizeof model_path, "%s", model_opt);
    } else {
        fprintf(stderr, "# bench_disk: measuring the disk with seacore-iotune (%s ms a phase)\n",
                set->iotune_ms);
        if (run_iotune() != 0)
            goto out;
    }
    if (sc_io_model_load(model_path, &model) != 0)
        goto out;
    fprintf(stderr,
            "# bench_disk: model: read %" PRIu64 " IOPS, write %" PRIu64 " IOPS, read %" PRIu64
            " MB/s, write %" PRIu64 " MB/s, latency goal %" PRIu64 " us\n",
            model.read_iops, model.write_iops, model.read_bw / 1000000, model.write_bw / 1000000,
            model.latency_goal_ns / 1000);
    fprintf(stderr,
            "# bench_disk: median of %d rounds; %" PRIu64 " ms warm-up + %" PRIu64
            " ms measured per phase\n",
            set->rounds, set->warmup_ms, set->window_ms);
    for (int r = 0; r < set->rounds; r++) {
        for (int c = 0; c < N_CONF; c++)
            if (!seacore_run(c, r))
                goto out;
        for (int f = 0; f < N_FIO && have_fio; f++)
            fio_run(f, r);
    }
    double fq_ns = fq_cost();
    if (failed)
        goto out;
    for (int c = 0; c < N_CONF; c++)
        report_conf(c);
    printf("BENCH name=disk.fq_cost value=%.2f unit=ns/req\n", fq_ns);
    fflush(stdout);
    fprintf(stderr,
            "# the scheduler alone (fair queue: queue + dispatch + complete): %.0f ns per "
            "request (target <= 1000: %s)\n",
            fq_ns, fq_ns <= 1000 ? "met" : "MISSED");
    rc = 0;
out:
    unlink(data_path);
    if (!model_opt)
        unlink(model_path);
    char p[PATH_MAX + 32];
    const char *junk[] = {"fio.job", "fio.json", "fio.err", "iotune.err"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, junk[i]);
        unlink(p);
    }
    rmdir(dir);
    return rc;
}
