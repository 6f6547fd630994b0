/*
 * app.c — the app runner: standard options, the choice of world, the exit code.
 *
 * This is the one place in core/ that names the simulator's engine: it picks
 * an engine by --backend and from then on talks to it only through struct
 * sc__engine (shard_impl.h). Nothing else in core/ knows sim/ exists.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/app.h"
#include "core/shard_impl.h"

void sc_config_default(struct sc_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->backend = SC_BACKEND_SIM;
    cfg->task_quota_ns = 500000;
    cfg->stall_threshold_ns = 25000000;
    cfg->sim_task_ns = 100;
    cfg->sim_poll_ns = 10;
    cfg->sim_net_latency_ns = 50000;
    cfg->idle_poll_ns = 200000;
    cfg->sim_step_tasks = 8;
}

int sc_run_ex(const struct sc_config *cfg, sc_main_fn fn, void *arg, int argc, char **argv,
              struct sc_run_result *out)
{
    if (sc__cur) {
        sc_log(SC_LOG_ERROR, "sc_run: a shard is already running on this thread");
        return 1;
    }
    const struct sc__engine *e =
        cfg->backend == SC_BACKEND_REAL ? &sc__real_engine : &sc__sim_engine;
    return e->run(cfg, fn, arg, argc, argv, out);
}

int sc_run(const struct sc_config *cfg, sc_main_fn fn, void *arg, int argc, char **argv)
{
    return sc_run_ex(cfg, fn, arg, argc, argv, NULL);
}

/* ---- option parsing ---- */

int sc__parse_cpuset(const char *v, int *cpus, int max)
{
    /* "0-3,6,8-9": ranges and single CPUs, ascending or not, no duplicates */
    int n = 0;
    const char *p = v;
    if (!*p)
        return -EINVAL;
    for (;;) {
        char *end;
        errno = 0;
        long a = strtol(p, &end, 10), b;
        if (errno || end == p || a < 0 || a >= CPU_SETSIZE_LIMIT)
            return -EINVAL;
        b = a;
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (errno || end == p + 1 || b < a || b >= CPU_SETSIZE_LIMIT)
                return -EINVAL;
            p = end;
        }
        for (long c = a; c <= b; c++) {
            for (int k = 0; k < n; k++)
                if (cpus[k] == c)
                    return -EINVAL;
            if (n == max)
                return -EINVAL;
            cpus[n++] = (int)c;
        }
        if (*p == 0)
            return n;
        if (*p != ',')
            return -EINVAL;
        p++;
    }
}

enum std_opt {
    O_BACKEND,
    O_SEED,
    O_QUOTA,
    O_STALL,
    O_DEFER,
    O_SHUFFLE,
    O_PREEMPT,
    O_CHAOS,
    O_TASK_NS,
    O_QUIET,
    O_SMP,
    O_CPUSET,
    O_IDLE_POLL,
    O_POLL_MODE,
    O_STEP_TASKS,
    O_MEMORY,
    O_RESERVE,
    O_MALLOC,
    O_ALLOC_FAIL,
    O_REACTOR,
    O_NETSTACK,
    O_IOPROPS,
    O_NET_LAT,
    O_NET_RESET,
    O_NET_STALL,
    O_DISK_EIO,
    O_HELP,
};

static const struct {
    const char *name;
    bool takes_value;
    const char *help;
} std_opts[] = {
    [O_BACKEND] = {"backend", true, "sim|real: the simulator (default) or the real machine"},
    [O_SEED] = {"seed", true, "N: the run's seed (sim: replays exactly; real: app randomness)"},
    [O_QUOTA] = {"task-quota-ms", true,
                 "X: how long tasks run before timers and I/O get a turn "
                 "(default 0.5)"},
    [O_STALL] = {"blocked-reactor-notify-ms", true,
                 "X: report a task that runs longer than this (default 25)"},
    [O_DEFER] = {"sim-defer-ready", true, "P: % of ready continuations sent through the queue"},
    [O_SHUFFLE] = {"sim-shuffle-tasks", true, "P: % of task picks that are not FIFO"},
    [O_PREEMPT] = {"sim-preempt-early", true, "P: % of quota checks that preempt early"},
    [O_CHAOS] = {"sim-chaos", false, "all three perturbations at 10%"},
    [O_TASK_NS] = {"sim-task-ns", true, "N: virtual CPU time charged per task (default 100)"},
    [O_QUIET] = {"quiet", false, "no start-up or summary lines"},
    [O_SMP] = {"smp", true, "N: number of shards (default: real, every usable CPU; sim, 2)"},
    [O_CPUSET] = {"cpuset", true, "LIST: CPUs for the shards, e.g. 0-3,6 (real world)"},
    [O_IDLE_POLL] = {"idle-poll-time-us", true, "N: busy-poll this long before sleeping (200)"},
    [O_POLL_MODE] = {"poll-mode", false, "never sleep: lowest latency, 100% CPU per shard"},
    [O_STEP_TASKS] = {"sim-step-tasks", true, "N: most tasks a shard runs per simulator step"},
    [O_MEMORY] = {"memory", true,
                  "SIZE: memory for all shards, e.g. 4G (default: real, RAM less "
                  "--reserve-memory; sim, 1G per shard)"},
    [O_RESERVE] = {"reserve-memory", true,
                   "SIZE: memory left to the OS (default: the larger of 1.5G and 7%)"},
    [O_MALLOC] = {"malloc", true,
                  "seacore|system: who serves malloc() on shards (default seacore; "
                  "sc_malloc() is always the shard's)"},
    [O_ALLOC_FAIL] = {"sim-alloc-fail-ppm", true,
                      "N: fail N of every million allocations on shards (sim, by seed)"},
    [O_REACTOR] = {"reactor-backend", true,
                   "linux-aio|epoll|io_uring: how shards reach the kernel for disk and "
                   "socket I/O (real world; default linux-aio)"},
    [O_NETSTACK] = {"network-stack", true, "posix|native: the network stack (real world)"},
    [O_IOPROPS] = {"io-properties-file", true,
                   "PATH: the disk model the I/O scheduler uses (written by seacore-iotune)"},
    [O_NET_LAT] = {"sim-net-latency-us", true, "N: one-way delay of the simulated network (50)"},
    [O_NET_RESET] = {"sim-net-reset-ppm", true, "N: simulated connections reset, per million sends"},
    [O_NET_STALL] = {"sim-net-stall-ppm", true, "N: simulated sends stalled, per million"},
    [O_DISK_EIO] = {"sim-disk-eio-ppm", true, "N: simulated disk requests failing with EIO, per million"},
    [O_HELP] = {"help", false, "this text"},
};

#define N_STD_OPTS (sizeof std_opts / sizeof std_opts[0])

static void usage(const char *prog, const char *about, const struct sc_app_opt *opts)
{
    printf("usage: %s [options] [args]\n", prog);
    if (about)
        printf("%s\n", about);
    printf("\nseacore options:\n");
    for (size_t i = 0; i < N_STD_OPTS; i++)
        printf("  --%-28s %s\n", std_opts[i].name, std_opts[i].help);
    if (opts && opts->name) {
        printf("\napp options:\n");
        for (; opts->name; opts++)
            printf("  --%-28s %s\n", opts->name, opts->help ? opts->help : "");
    }
}

static bool parse_u64(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*v < '0' || *v > '9') /* strtoull would skip blanks and accept a sign */
        return false;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end)
        return false;
    *out = x;
    return true;
}

/* A size: digits and an optional K, M, G or T (powers of 1024), > 0. */
static bool parse_size(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*v < '0' || *v > '9')
        return false;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || x == 0)
        return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    case 0:
        break;
    default:
        return false;
    }
    if (shift && end[1] != 0)
        return false;
    if (x > (1ull << 50) >> shift)
        return false; /* a petabyte is plenty */
    *out = (uint64_t)x << shift;
    return true;
}

/* Milliseconds as a decimal ("0.5", "25") into nanoseconds, > 0. */
static bool parse_ms(const char *v, uint64_t *ns)
{
    char *end;
    errno = 0;
    double ms = strtod(v, &end);
    if (errno || *end || !(ms >= 0.01) || ms > 3.6e6) /* under 10 us: a tick-signal storm */
        return false;
    *ns = (uint64_t)(ms * 1e6);
    return *ns > 0;
}

static bool parse_pct(const char *v, unsigned *out)
{
    uint64_t x;
    if (!parse_u64(v, &x) || x > 100)
        return false;
    *out = (unsigned)x;
    return true;
}

static int bad(const char *prog, const char *opt, const char *val, const char *why)
{
    if (val)
        fprintf(stderr, "%s: invalid value '%s' for --%s: %s\n", prog, val, opt, why);
    else
        fprintf(stderr, "%s: %s: --%s\n", prog, why, opt);
    fprintf(stderr, "%s: try --help\n", prog);
    return -EINVAL;
}

static int apply_std(const char *prog, enum std_opt o, const char *v, struct sc_config *cfg)
{
    const char *n = std_opts[o].name;
    switch (o) {
    case O_BACKEND:
        if (strcmp(v, "sim") == 0)
            cfg->backend = SC_BACKEND_SIM;
        else if (strcmp(v, "real") == 0)
            cfg->backend = SC_BACKEND_REAL;
        else
            return bad(prog, n, v, "expected 'sim' or 'real'");
        return 0;
    case O_SEED:
        if (!parse_u64(v, &cfg->seed))
            return bad(prog, n, v, "expected a non-negative integer");
        cfg->seed_given = true;
        return 0;
    case O_QUOTA:
        return parse_ms(v, &cfg->task_quota_ns) ? 0 : bad(prog, n, v, "expected milliseconds > 0");
    case O_STALL:
        return parse_ms(v, &cfg->stall_threshold_ns) ? 0
                                                     : bad(prog, n, v, "expected milliseconds > 0");
    case O_DEFER:
        return parse_pct(v, &cfg->sim_defer_ready_pct) ? 0 : bad(prog, n, v, "expected 0..100");
    case O_SHUFFLE:
        return parse_pct(v, &cfg->sim_shuffle_pct) ? 0 : bad(prog, n, v, "expected 0..100");
    case O_PREEMPT:
        return parse_pct(v, &cfg->sim_preempt_pct) ? 0 : bad(prog, n, v, "expected 0..100");
    case O_CHAOS:
        cfg->sim_defer_ready_pct = cfg->sim_shuffle_pct = cfg->sim_preempt_pct = 10;
        return 0;
    case O_TASK_NS:
        return parse_u64(v, &cfg->sim_task_ns) && cfg->sim_task_ns <= 1000000000ull
                   ? 0
                   : bad(prog, n, v, "expected nanoseconds, at most 1e9");
    case O_QUIET:
        cfg->quiet = true;
        return 0;
    case O_SMP: {
        uint64_t x;
        if (!parse_u64(v, &x) || x < 1 || x > SC_MAX_SHARDS)
            return bad(prog, n, v, "expected 1.." SC_STR(SC_MAX_SHARDS));
        cfg->smp = (unsigned)x;
        return 0;
    }
    case O_CPUSET: {
        int cpus[SC_MAX_SHARDS];
        if (sc__parse_cpuset(v, cpus, SC_MAX_SHARDS) <= 0)
            return bad(prog, n, v, "expected a CPU list like 0-3,6");
        cfg->cpuset = v;
        return 0;
    }
    case O_IDLE_POLL: {
        uint64_t us;
        if (!parse_u64(v, &us) || us > 10000000)
            return bad(prog, n, v, "expected microseconds (0..10000000)");
        cfg->idle_poll_ns = us * 1000;
        return 0;
    }
    case O_POLL_MODE:
        cfg->poll_mode = true;
        return 0;
    case O_STEP_TASKS: {
        uint64_t x;
        if (!parse_u64(v, &x) || x < 1 || x > 1000000)
            return bad(prog, n, v, "expected 1..1000000");
        cfg->sim_step_tasks = (unsigned)x;
        return 0;
    }
    case O_MEMORY:
        return parse_size(v, &cfg->memory) ? 0 : bad(prog, n, v, "expected a size like 512M or 4G");
    case O_RESERVE:
        return parse_size(v, &cfg->reserve_memory)
                   ? 0
                   : bad(prog, n, v, "expected a size like 512M or 2G");
    case O_MALLOC:
        if (strcmp(v, "seacore") == 0)
            cfg->system_malloc = false;
        else if (strcmp(v, "system") == 0)
            cfg->system_malloc = true;
        else
            return bad(prog, n, v, "expected 'seacore' or 'system'");
        return 0;
    case O_ALLOC_FAIL: {
        uint64_t x;
        if (!parse_u64(v, &x) || x > 1000000)
            return bad(prog, n, v, "expected 0..1000000 (per million)");
        cfg->sim_alloc_fail_ppm = (uint32_t)x;
        return 0;
    }
    case O_REACTOR:
        if (strcmp(v, "linux-aio") == 0)
            cfg->reactor_backend = SC_REACTOR_LINUX_AIO;
        else if (strcmp(v, "epoll") == 0)
            cfg->reactor_backend = SC_REACTOR_EPOLL;
        else if (strcmp(v, "io_uring") == 0)
            cfg->reactor_backend = SC_REACTOR_IO_URING;
        else
            return bad(prog, n, v, "expected 'linux-aio', 'epoll' or 'io_uring'");
        return 0;
    case O_NETSTACK:
        if (strcmp(v, "posix") == 0)
            cfg->network_stack = SC_NET_POSIX;
        else if (strcmp(v, "native") == 0)
            cfg->network_stack = SC_NET_NATIVE;
        else
            return bad(prog, n, v, "expected 'posix' or 'native'");
        return 0;
    case O_IOPROPS:
        if (!*v)
            return bad(prog, n, v, "expected a file name");
        cfg->io_properties_file = v;
        return 0;
    case O_NET_LAT: {
        uint64_t us;
        if (!parse_u64(v, &us) || us > 10000000)
            return bad(prog, n, v, "expected microseconds (0..10000000)");
        cfg->sim_net_latency_ns = us * 1000;
        return 0;
    }
    case O_NET_RESET:
    case O_NET_STALL:
    case O_DISK_EIO: {
        uint64_t x;
        if (!parse_u64(v, &x) || x > 1000000)
            return bad(prog, n, v, "expected 0..1000000 (per million)");
        uint32_t *dst = o == O_NET_RESET   ? &cfg->sim_net_reset_ppm
                        : o == O_NET_STALL ? &cfg->sim_net_stall_ppm
                                           : &cfg->sim_disk_eio_ppm;
        *dst = (uint32_t)x;
        return 0;
    }
    case O_HELP:
        return 1;
    }
    return -EINVAL;
}

static int apply_app(const char *prog, const struct sc_app_opt *o, const char *v)
{
    switch (o->type) {
    case SC_OPT_FLAG:
        *(bool *)o->dest = true;
        return 0;
    case SC_OPT_INT: {
        char *end;
        errno = 0;
        long x = strtol(v, &end, 0);
        if (errno || !*v || *end)
            return bad(prog, o->name, v, "expected an integer");
        *(long *)o->dest = x;
        return 0;
    }
    case SC_OPT_STRING:
        *(const char **)o->dest = v;
        return 0;
    }
    return -EINVAL;
}

int sc_config_parse(int *argc, char **argv, struct sc_config *cfg, const struct sc_app_opt *opts,
                    const char *about)
{
    sc_config_default(cfg);
    const char *prog = *argc > 0 ? argv[0] : "seacore";
    int out = *argc > 0 ? 1 : 0, help = 0;
    bool positional_only = false;
    for (int i = 1; i < *argc; i++) {
        char *a = argv[i];
        if (positional_only || a[0] != '-' || a[1] != '-' || a[2] == 0) {
            if (!positional_only && strcmp(a, "--") == 0) {
                positional_only = true;
                continue;
            }
            if (!positional_only && a[0] == '-' && a[1] != 0 && a[1] != '-') {
                fprintf(stderr, "%s: unknown option '%s' (options are --long)\n", prog, a);
                return -EINVAL;
            }
            argv[out++] = a;
            continue;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (len >= sizeof name) {
            fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
            return -EINVAL;
        }
        memcpy(name, a + 2, len);
        name[len] = 0;
        const char *val = eq ? eq + 1 : NULL;

        int found = -1;
        for (size_t k = 0; k < N_STD_OPTS; k++)
            if (strcmp(name, std_opts[k].name) == 0)
                found = (int)k;
        const struct sc_app_opt *ao = NULL;
        if (found < 0 && opts)
            for (const struct sc_app_opt *o = opts; o->name; o++)
                if (strcmp(name, o->name) == 0)
                    ao = o;
        if (found < 0 && !ao) {
            fprintf(stderr, "%s: unknown option '--%s'\n%s: try --help\n", prog, name, prog);
            return -EINVAL;
        }
        bool takes = ao ? ao->type != SC_OPT_FLAG : std_opts[found].takes_value;
        if (takes && !val) {
            if (i + 1 >= *argc)
                return bad(prog, name, NULL, "missing value");
            val = argv[++i];
        } else if (!takes && val) {
            return bad(prog, name, val, "this option takes no value");
        }
        int r = ao ? apply_app(prog, ao, val) : apply_std(prog, (enum std_opt)found, val, cfg);
        if (r < 0)
            return r;
        if (r == 1)
            help = 1;
    }
    argv[out] = NULL;
    *argc = out;
    if (help) {
        usage(prog, about, opts);
        return 1;
    }
    return 0;
}

int sc_app_run_opts(int argc, char **argv, const char *about, const struct sc_app_opt *opts,
                    sc_main_fn fn, void *arg)
{
    struct sc_config cfg;
    int r = sc_config_parse(&argc, argv, &cfg, opts, about);
    if (r == 1)
        return 0;
    if (r < 0)
        return 2;
    /* The app sees its positional arguments only, argv[0] excluded. */
    return argc > 0 ? sc_run(&cfg, fn, arg, argc - 1, argv + 1) : sc_run(&cfg, fn, arg, 0, argv);
}

int sc_app_run(int argc, char **argv, sc_main_fn fn)
{
    return sc_app_run_opts(argc, argv, NULL, NULL, fn, NULL);
}
