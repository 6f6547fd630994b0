/*
 * seacore-iotune — measure the disk under a directory and write the disk
 * model that `--io-properties-file` loads (disk/io.h, sc_io_model_load()).
 *
 * The I/O queue needs four numbers to price a request (disk/fair_queue.h):
 * how many 4 KiB random reads and writes the disk does per second, and how
 * many bytes per second it reads and writes sequentially. Nobody knows them
 * for a given machine, least of all a virtual one, so this tool measures
 * them the way the engine will use the disk: with the seacore file API
 * itself (O_DIRECT, the reactor backend of the run), with many requests in
 * flight so that the device, not the program, is the limit.
 *
 * What it does, on one real shard:
 *
 *   1. create a file in --dir (refusing tmpfs: it has no O_DIRECT, and a
 *      model of the page cache is a model of memory, not of the disk) and
 *      reserve --file-size for it (fallocate);
 *   2. sequential writes of 128 KiB for --duration-ms: write_bandwidth. If
 *      the file was not covered in that time, the rest is written too, not
 *      timed: reading never-written blocks would measure the filesystem
 *      (they read as zeros without touching the device);
 *   3. sequential reads of 128 KiB: read_bandwidth;
 *   4. random 4 KiB reads, --depth in flight: read_iops;
 *   5. random 4 KiB writes, --depth in flight: write_iops;
 *   6. remove the file, write the model (with a comment header saying what
 *      was measured, where and when) to --output or stdout, and, for a file,
 *      read it back with sc_io_model_load() to prove it loads.
 *
 * A measurement is the bytes (or requests) completed between a phase's start
 * and its deadline, over that time; workers stop issuing at the deadline and
 * what completes later is not counted.
 *
 * `--check-model PATH` loads a model file the way a run does (the parser,
 * then the engine with --io-properties-file) and prints it: what the test
 * uses, and a quick way to see whether a hand-edited file is right.
 *
 * Real world only: the simulator's disk is a model already. Exit codes: 0
 * done, 1 the measurement failed, 2 bad options (or the simulator).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "core/seacore.h"
#include "disk/file.h"
#include "disk/io.h"

#define SEQ_BS       (128u * 1024u)
#define RAND_BS      4096u
#define MAX_DEPTH    128u /* the I/O queue without a model admits 128 at most */
#define TMPFS_MAGIC_ 0x01021994L
#define RAMFS_MAGIC_ 0x858458f6L

/* ---- options ---- */

static const char *dir_opt, *size_opt = "1G", *output_opt, *check_opt;
static long duration_ms = 2000, depth_opt = 64, seq_depth_opt = 32, goal_us = 750;

static const struct sc_app_opt app_opts[] = {
    {"dir", SC_OPT_STRING, &dir_opt, "directory to measure (required; not tmpfs)"},
    {"file-size", SC_OPT_STRING, &size_opt, "size of the test file (default 1G; K, M, G suffixes)"},
    {"duration-ms", SC_OPT_INT, &duration_ms, "length of each of the 4 phases (default 2000)"},
    {"depth", SC_OPT_INT, &depth_opt, "random 4 KiB requests in flight (default 64, at most 128)"},
    {"seq-depth", SC_OPT_INT, &seq_depth_opt, "sequential 128 KiB requests in flight (default 32)"},
    {"latency-goal-us", SC_OPT_INT, &goal_us, "latency_goal_us written to the model (default 750)"},
    {"output", SC_OPT_STRING, &output_opt, "where to write the model (default stdout)"},
    {"check-model", SC_OPT_STRING, &check_opt,
     "load this model file as a run would, print it, exit"},
    {0},
};

static const char about[] =
    "seacore-iotune: measure the disk under --dir with O_DIRECT requests and write the disk model "
    "that --io-properties-file loads";

/* "64M" -> bytes; 0 if malformed. */
static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return 0;
    unsigned shift = 0;
    const char *units = "KMGT", *u = *end ? strchr(units, *end & ~0x20) : NULL;
    if (u) {
        shift = 10u * (unsigned)(u - units + 1);
        end++;
    }
    if (*end || v > (UINT64_MAX >> shift))
        return 0;
    return (uint64_t)v << shift;
}

static const char *fs_name(long type)
{
    switch (type) {
    case 0xEF53:
        return "ext2/3/4";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x2FC12FC1:
        return "zfs";
    case 0x6969:
        return "nfs";
    case 0x794c7630:
        return "overlayfs";
    default:
        return NULL;
    }
}

/* ---- what the shard measures ---- */

struct phase {
    const char *name;
    struct sc_file *f;
    bool write, sequential, wrap;
    size_t bs;
    unsigned depth;
    char *bufs;      /* depth buffers of bs bytes */
    uint64_t span;   /* bytes of the file the phase touches: [0, span) */
    uint64_t cursor; /* sequential: the next offset */
    bool wrapped;    /* sequential: went past the end at least once */
    uint64_t start, deadline;
    uint64_t ops, bytes; /* completed by the deadline */
    int err;
    /* results */
    double secs;
    uint64_t p50_ns, p99_ns;
};

struct worker {
    struct phase *ph;
    char *buf;
};

static struct sc_future step_done(void *cap, intptr_t v, int err)
{
    struct phase *ph = *(struct phase **)cap;
    if (err) {
        if (!ph->err)
            ph->err = err;
        return sc_make_ready(SC_STOP);
    }
    if ((size_t)v != ph->bs) {
        if (!ph->err)
            ph->err = -EIO; /* a short transfer inside the file: something is wrong */
        return sc_make_ready(SC_STOP);
    }
    if (sc_now() <= ph->deadline) {
        ph->ops++;
        ph->bytes += (uint64_t)v;
    }
    return sc_make_ready(SC_CONTINUE);
}

/* One request, then the next, until the deadline (or the end of the file,
 * for a sequential phase that does not wrap). */
static struct sc_future step(void *cap)
{
    struct worker *w = cap;
    struct phase *ph = w->ph;
    if (ph->err || sc_now() >= ph->deadline)
        return sc_make_ready(SC_STOP);
    uint64_t off;
    if (ph->sequential) {
        if (ph->cursor + ph->bs > ph->span) {
            if (!ph->wrap)
                return sc_make_ready(SC_STOP);
            ph->cursor = 0;
            ph->wrapped = true;
        }
        off = ph->cursor;
        ph->cursor += ph->bs;
    } else {
        off = sc_random_below(ph->span / ph->bs) * ph->bs;
    }
    struct sc_future f = ph->write ? sc_file_dma_write(ph->f, off, w->buf, ph->bs)
                                   : sc_file_dma_read(ph->f, off, w->buf, ph->bs);
    return sc_then_wrapped(f, step_done, &ph, sizeof ph);
}

static struct sc_future start_worker(void *cap, size_t i)
{
    struct phase *ph = *(struct phase **)cap;
    struct worker w = {ph, ph->bufs + i * ph->bs};
    return sc_repeat(step, &w, sizeof w);
}

/* Run one phase to its deadline; 0 or the first error. (In the fiber.) */
static int run_phase(struct phase *ph, uint64_t duration_ns)
{
    ph->ops = ph->bytes = 0;
    ph->err = 0;
    sc_io_stats_reset();
    ph->start = sc_now();
    ph->deadline = duration_ns == UINT64_MAX ? UINT64_MAX : ph->start + duration_ns;
    int rc = sc_await(sc_parallel_for_each(ph->depth, start_worker, &ph, sizeof ph), NULL);
    if (rc == 0)
        rc = ph->err;
    uint64_t end = duration_ns == UINT64_MAX ? sc_now() : ph->deadline;
    ph->secs = (double)(end - ph->start) / 1e9;
    struct sc_io_stats st;
    sc_io_stats(sc_sched_group_current(), &st);
    ph->p50_ns = st.p50_ns;
    ph->p99_ns = st.p99_ns;
    return rc;
}

struct results {
    uint64_t file_size;
    uint64_t write_bw, read_bw, read_iops, write_iops;
    struct phase seq_w, seq_r, rand_r, rand_w;
    bool filled;      /* the file was written past the timed phase */
    uint64_t fill_ns; /* how long that took */
    int rc;
};

struct measure_cap {
    struct results *res;
    const char *path;
};

static void setup(struct phase *ph, const struct phase *base, const char *name, bool write,
                  bool sequential)
{
    *ph = *base;
    ph->name = name;
    ph->write = write;
    ph->sequential = ph->wrap = sequential;
    ph->bs = sequential ? SEQ_BS : RAND_BS;
    ph->depth = (unsigned)(sequential ? seq_depth_opt : depth_opt);
    fprintf(stderr, "seacore-iotune: %s, %zu KiB x %u in flight\n", name, ph->bs / 1024, ph->depth);
}

/* The four phases on the open file f (in the fiber). */
static int run_phases(struct results *res, struct sc_file *f, char *bufs)
{
    uint64_t dur = SC_MS(duration_ms);
    struct phase base = {.f = f, .bufs = bufs, .span = res->file_size};
    int rc;
    setup(&res->seq_w, &base, "sequential write", true, true);
    if ((rc = run_phase(&res->seq_w, dur)) < 0)
        return rc;
    if (!res->seq_w.wrapped) {
        /* Fill the rest, untimed, so that the reads below meet real blocks. */
        struct phase fill = res->seq_w;
        fill.name = "fill";
        fill.wrap = false;
        fprintf(stderr, "seacore-iotune: writing the rest of the file (%" PRIu64 " MiB), untimed\n",
                (res->file_size - fill.cursor) >> 20);
        if ((rc = run_phase(&fill, UINT64_MAX)) < 0)
            return rc;
        res->filled = true;
        res->fill_ns = (uint64_t)(fill.secs * 1e9);
    }
    setup(&res->seq_r, &base, "sequential read", false, true);
    if ((rc = run_phase(&res->seq_r, dur)) < 0)
        return rc;
    setup(&res->rand_r, &base, "random read", false, false);
    if ((rc = run_phase(&res->rand_r, dur)) < 0)
        return rc;
    setup(&res->rand_w, &base, "random write", true, false);
    if ((rc = run_phase(&res->rand_w, dur)) < 0)
        return rc;
    res->write_bw = (uint64_t)((double)res->seq_w.bytes / res->seq_w.secs);
    res->read_bw = (uint64_t)((double)res->seq_r.bytes / res->seq_r.secs);
    res->read_iops = (uint64_t)((double)res->rand_r.ops / res->rand_r.secs);
    res->write_iops = (uint64_t)((double)res->rand_w.ops / res->rand_w.secs);
    if (!res->write_bw || !res->read_bw || !res->read_iops || !res->write_iops) {
        fprintf(stderr,
                "seacore-iotune: a phase completed nothing in %ld ms; try a longer --duration-ms\n",
                duration_ms);
        return -EIO;
    }
    return 0;
}

/* Reserve the file's space, with fallocate where the filesystem has it. */
static int reserve(struct sc_file *f, uint64_t size)
{
    fprintf(stderr, "seacore-iotune: reserving %" PRIu64 " MiB in %s\n", size >> 20, dir_opt);
    int rc = sc_await(sc_file_allocate(f, 0, size), NULL);
    if (rc == -EOPNOTSUPP) /* no fallocate: set the size; the first phase writes it all */
        rc = sc_await(sc_file_truncate(f, size), NULL);
    if (rc < 0)
        fprintf(stderr, "seacore-iotune: cannot reserve %" PRIu64 " bytes: %s\n", size,
                sc_strerror(rc));
    return rc;
}

/* Create the file, measure, remove it: 0 or a negative errno (in the fiber). */
static int measure(struct results *res, const char *path)
{
    intptr_t v;
    int rc = sc_await(
        sc_file_open(path, SC_FILE_READ | SC_FILE_WRITE | SC_FILE_CREATE | SC_FILE_EXCL), &v);
    if (rc < 0) {
        fprintf(stderr, "seacore-iotune: cannot create '%s': %s\n", path, sc_strerror(rc));
        return rc;
    }
    struct sc_file *f = (struct sc_file *)v;
    unsigned maxd = (unsigned)(depth_opt > seq_depth_opt ? depth_opt : seq_depth_opt);
    char *bufs = NULL;
    if (!sc_file_is_direct(f)) {
        fprintf(stderr,
                "seacore-iotune: '%s' refuses O_DIRECT, so every request would be served by the "
                "page cache; measure a directory on a disk filesystem (ext4, xfs)\n",
                path);
        rc = -EINVAL;
    } else if (!(bufs = sc_dma_alloc((size_t)maxd * SEQ_BS))) {
        rc = -ENOMEM;
    } else {
        /* Data that no layer below can compress, or skip as zeros. */
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < (size_t)maxd * SEQ_BS; i += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(bufs + i, &x, 8);
            if (i % SEQ_BS == 0)
                sc_thread_yield(); /* a long loop on a shard checks the quota */
        }
        rc = reserve(f, res->file_size);
        if (rc == 0 && (rc = run_phases(res, f, bufs)) < 0 && rc != -EIO)
            fprintf(stderr, "seacore-iotune: I/O failed: %s\n", sc_strerror(rc));
    }
    sc_dma_free(bufs);
    int rc2 = sc_await(sc_file_close(f), NULL);
    int rc3 = sc_await(sc_file_remove(path), NULL);
    if (rc3 < 0)
        fprintf(stderr, "seacore-iotune: could not remove '%s': %s\n", path, sc_strerror(rc3));
    return rc < 0 ? rc : rc2 < 0 ? rc2 : rc3;
}

static struct sc_future measure_fiber(void *cap)
{
    struct measure_cap *c = cap;
    c->res->rc = measure(c->res, c->path);
    return sc_make_ready(c->res->rc < 0 ? 1 : 0);
}

static struct sc_future measure_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    return sc_thread_spawn(measure_fiber, arg, sizeof(struct measure_cap), NULL);
}

/* ---- the model file ---- */

static void print_phase(FILE *out, const struct phase *ph, bool iops)
{
    /* truncated, as the numbers of the model below are */
    uint64_t rate =
        (uint64_t)(iops ? (double)ph->ops / ph->secs : (double)ph->bytes / ph->secs / 1e6);
    fprintf(out, "#   %-16s %3zu KiB x %-3u %10" PRIu64 " %-5s p50 %6.0f us, p99 %6.0f us\n",
            ph->name, ph->bs / 1024, ph->depth, rate, iops ? "IOPS" : "MB/s",
            (double)ph->p50_ns / 1e3, (double)ph->p99_ns / 1e3);
}

static void write_model(FILE *out, const struct results *r, const char *fs, const char *backend)
{
    char when[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(out, "# seacore disk model, written by seacore-iotune on %s\n", when);
    fprintf(out, "# measured in %s (%s), on a %" PRIu64 " MiB file with O_DIRECT,\n", dir_opt, fs,
            r->file_size >> 20);
    fprintf(out, "# %ld ms per phase, reactor backend %s, one shard:\n", duration_ms, backend);
    print_phase(out, &r->seq_w, false);
    print_phase(out, &r->seq_r, false);
    print_phase(out, &r->rand_r, true);
    print_phase(out, &r->rand_w, true);
    if (r->filled)
        fprintf(out,
                "# (the rest of the file was then written, untimed, in %.1f s, so that the "
                "reads met written blocks)\n",
                (double)r->fill_ns / 1e9);
    fprintf(out, "# Bandwidths are bytes/s. latency_goal_us is not measured: it is how much disk\n"
                 "# work the I/O queue lets into the device at once (its token bucket's burst).\n"
                 "# Load it with --io-properties-file.\n");
    fprintf(out, "read_iops: %" PRIu64 "\n", r->read_iops);
    fprintf(out, "write_iops: %" PRIu64 "\n", r->write_iops);
    fprintf(out, "read_bandwidth: %" PRIu64 "\n", r->read_bw);
    fprintf(out, "write_bandwidth: %" PRIu64 "\n", r->write_bw);
    fprintf(out, "latency_goal_us: %ld\n", goal_us);
}

/* ---- --check-model ---- */

static struct sc_disk_model parsed;

static struct sc_future check_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_disk_model m;
    int rc = sc_io_model(&m);
    if (rc < 0) {
        fprintf(stderr, "seacore-iotune: the engine did not take the model: %s\n", sc_strerror(rc));
        return sc_make_ready(1);
    }
    if (memcmp(&m, &parsed, sizeof m) != 0) {
        fprintf(stderr, "seacore-iotune: the engine's model differs from the file's\n");
        return sc_make_ready(1);
    }
    return sc_make_ready(0);
}

static int check_model(struct sc_config *cfg)
{
    int rc = sc_io_model_load(check_opt, &parsed);
    if (rc < 0) {
        fprintf(stderr, "seacore-iotune: '%s' does not load: %s\n", check_opt, sc_strerror(rc));
        return 1;
    }
    cfg->io_properties_file = check_opt;
    if (sc_run(cfg, check_main, NULL, 0, NULL) != 0)
        return 1;
    printf("read_iops: %" PRIu64 "\nwrite_iops: %" PRIu64 "\nread_bandwidth: %" PRIu64
           "\nwrite_bandwidth: %" PRIu64 "\nlatency_goal_us: %" PRIu64 "\n",
           parsed.read_iops, parsed.write_iops, parsed.read_bw, parsed.write_bw,
           parsed.latency_goal_ns / 1000);
    return 0;
}

/* ---- main ---- */

static int usage_error(const char *msg)
{
    fprintf(stderr, "seacore-iotune: %s (try --help)\n", msg);
    return 2;
}

/* The directory must exist and hold a filesystem with O_DIRECT. */
static int check_dir(const char **fs)
{
    struct stat st;
    struct statfs sfs;
    if (stat(dir_opt, &st) != 0 || statfs(dir_opt, &sfs) != 0) {
        fprintf(stderr, "seacore-iotune: cannot use --dir '%s': %s\n", dir_opt, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "seacore-iotune: --dir '%s' is not a directory\n", dir_opt);
        return 1;
    }
    if ((long)sfs.f_type == TMPFS_MAGIC_ || (long)sfs.f_type == RAMFS_MAGIC_) {
        fprintf(stderr,
                "seacore-iotune: '%s' is on tmpfs (memory, not a disk): it has no O_DIRECT and "
                "nothing to measure; give a directory on the disk the app will use\n",
                dir_opt);
        return 1;
    }
    static char other[32];
    *fs = fs_name((long)sfs.f_type);
    if (!*fs) {
        snprintf(other, sizeof other, "filesystem 0x%lx", (unsigned long)sfs.f_type);
        *fs = other;
    }
    return 0;
}

static const char *const reactor_names[] = {"linux-aio", "epoll", "io_uring"};

int main(int argc, char **argv)
{
    bool backend_given = false, smp_given = false;
    for (int i = 1; i < argc; i++) {
        backend_given |= !strncmp(argv[i], "--backend", 9);
        smp_given |= !strncmp(argv[i], "--smp", 5);
    }
    struct sc_config cfg;
    int prc = sc_config_parse(&argc, argv, &cfg, app_opts, about);
    if (prc == 1)
        return 0;
    if (prc < 0)
        return 2;
    if (argc > 1)
        return usage_error("unexpected argument");
    if (!backend_given)
        cfg.backend = SC_BACKEND_REAL;
    if (cfg.backend == SC_BACKEND_SIM) {
        fprintf(stderr, "seacore-iotune: measures a real disk; there is nothing to measure in "
                        "the simulator (its disk is a model already). Use --backend real.\n");
        return 2;
    }
    if (!smp_given)
        cfg.smp = 1;
    cfg.quiet = true;
    if (check_opt)
        return check_model(&cfg);
    if (!dir_opt)
        return usage_error("--dir is required");
    if (cfg.io_properties_file)
        return usage_error("--io-properties-file would throttle the measurement; leave it out");
    uint64_t size = parse_size(size_opt);
    if (size < (4u << 20) || size % RAND_BS)
        return usage_error("--file-size must be a multiple of 4096, at least 4M");
    if (duration_ms < 10 || duration_ms > 600000)
        return usage_error("--duration-ms must be in [10, 600000]");
    if (depth_opt < 1 || depth_opt > (long)MAX_DEPTH || seq_depth_opt < 1 ||
        seq_depth_opt > (long)MAX_DEPTH)
        return usage_error("--depth and --seq-depth must be in [1, 128]");
    if (goal_us < 1 || goal_us > 60000000)
        return usage_error("--latency-goal-us must be in [1, 60000000]");
    const char *fs;
    int rc = check_dir(&fs);
    if (rc)
        return rc;

    static struct results res;
    res.file_size = size - size % SEQ_BS;
    char path[4096];
    snprintf(path, sizeof path, "%s/seacore-iotune.%ld.tmp", dir_opt, (long)getpid());
    struct measure_cap cap = {&res, path};
    if (sc_run(&cfg, measure_main, &cap, 0, NULL) != 0 || res.rc < 0)
        return 1;

    const char *backend = reactor_names[cfg.reactor_backend];
    if (!output_opt) {
        write_model(stdout, &res, fs, backend);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    /* Write beside the target and rename: a reader never sees half a model. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", output_opt);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fprintf(stderr, "seacore-iotune: cannot write '%s': %s\n", tmp, strerror(errno));
        return 1;
    }
    write_model(out, &res, fs, backend);
    if (fclose(out) != 0 || rename(tmp, output_opt) != 0) {
        fprintf(stderr, "seacore-iotune: cannot write '%s': %s\n", output_opt, strerror(errno));
        unlink(tmp);
        return 1;
    }
    struct sc_disk_model m;
    if (sc_io_model_load(output_opt, &m) != 0 || m.read_iops != res.read_iops ||
        m.write_bw != res.write_bw) {
        fprintf(stderr, "seacore-iotune: '%s' does not read back as written\n", output_opt);
        return 1;
    }
    fprintf(stderr, "seacore-iotune: wrote %s\n", output_opt);
    return 0;
}
