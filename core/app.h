/**
 * @file app.h
 * @brief The app runner: parse the standard options, start the shard in the
 * chosen world (simulator or real machine), run the app's main function,
 * return its exit code.
 */
#ifndef SC_APP_H
#define SC_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/future.h"

/**
 * @brief The app's main function. Runs on shard 0 as its first task; the
 * value of its future is the process exit code (an error gives 1).
 * @ingroup ch03
 * @param arg the app's own pointer (sc_app_run_opts() / sc_run())
 * @param argc number of positional arguments left after option parsing
 * @param argv those arguments
 */
typedef struct sc_future (*sc_main_fn)(void *arg, int argc, char **argv);

/** @brief Which world a run uses. @ingroup ch03 */
enum sc_backend {
    SC_BACKEND_SIM = 0, /**< the deterministic simulator: virtual time, seeded */
    SC_BACKEND_REAL = 1 /**< the real machine: a pinned thread, CLOCK_MONOTONIC, epoll */
};

/**
 * @brief How a real-world shard talks to the kernel for I/O: disk requests,
 * socket readiness, and sleeping until something completes.
 * @ingroup ch03
 */
enum sc_reactor_backend {
    SC_REACTOR_LINUX_AIO = 0, /**< libaio: io_submit for disk and socket polls, an eventfd into epoll */
    SC_REACTOR_EPOLL = 1,     /**< epoll for sockets; disk still through linux-aio */
    SC_REACTOR_IO_URING = 2,  /**< io_uring (liburing) for disk and socket polls */
};

/** @brief Which network stack a real-world run uses. @ingroup ch03 */
enum sc_network_stack {
    SC_NET_POSIX = 0,  /**< the kernel's sockets, driven by the reactor */
    SC_NET_NATIVE = 1, /**< the userspace TCP/IP stack (not yet built: listen fails with -ENOSYS) */
};

/**
 * @brief Everything the standard options set. sc_config_default() fills in
 * the defaults; tests build one directly and call sc_run().
 * @ingroup ch03
 */
struct sc_config {
    enum sc_backend backend;      /**< `--backend sim|real` (default sim) */
    uint64_t seed;                /**< `--seed N`; 0 draws one (real) or means 1 (sim) */
    bool seed_given;              /**< true when `--seed` was on the command line */
    uint64_t task_quota_ns;       /**< `--task-quota-ms X` (default 0.5 ms) */
    uint64_t stall_threshold_ns;  /**< `--blocked-reactor-notify-ms X` (default 25 ms) */
    unsigned sim_defer_ready_pct; /**< `--sim-defer-ready P`: % of ready continuations queued */
    unsigned sim_shuffle_pct;     /**< `--sim-shuffle-tasks P`: % of task picks not FIFO */
    unsigned sim_preempt_pct;     /**< `--sim-preempt-early P`: % of quota checks that say yes */
    uint64_t sim_task_ns;         /**< `--sim-task-ns N`: virtual CPU time per task (default 100) */
    uint64_t sim_poll_ns;         /**< virtual CPU time per quota check (default 10) */
    bool quiet;                   /**< `--quiet`: no start/summary lines */
    unsigned smp;                 /**< `--smp N`: shards (0: real = every usable CPU, sim = 2) */
    const char *cpuset;           /**< `--cpuset LIST` (e.g. "0-3,6"): CPUs for the shards */
    uint64_t idle_poll_ns;        /**< `--idle-poll-time-us N`: poll this long before sleeping */
    bool poll_mode;               /**< `--poll-mode`: never sleep (lowest latency, 100% CPU) */
    unsigned sim_step_tasks;      /**< `--sim-step-tasks N`: most tasks per simulator step (8) */
    uint64_t memory;              /**< `--memory SIZE`: bytes for all shards (0: the default) */
    uint64_t reserve_memory;      /**< `--reserve-memory SIZE`: left to the OS (0: the default) */
    bool system_malloc;           /**< `--malloc system`: malloc() stays glibc's on shards */
    uint32_t sim_alloc_fail_ppm;  /**< `--sim-alloc-fail-ppm N`: injected allocation failures */
    enum sc_reactor_backend reactor_backend; /**< `--reactor-backend` (default linux-aio) */
    enum sc_network_stack network_stack;     /**< `--network-stack posix|native` (real world) */
    const char *io_properties_file; /**< `--io-properties-file PATH`: the disk model (iotune) */
    uint64_t sim_net_latency_ns;    /**< `--sim-net-latency-us N`: one-way delay (default 50 us) */
    uint32_t sim_net_reset_ppm;     /**< `--sim-net-reset-ppm N`: connections reset, per million sends */
    uint32_t sim_net_stall_ppm;     /**< `--sim-net-stall-ppm N`: sends stalled 10-100 ms, per million */
    uint32_t sim_disk_eio_ppm;      /**< `--sim-disk-eio-ppm N`: disk requests failing with EIO */
};

/** @brief Fill @p cfg with the defaults. @ingroup ch03 */
void sc_config_default(struct sc_config *cfg);

/** @brief Kinds of app-defined options. @ingroup ch03 */
enum sc_opt_type {
    SC_OPT_FLAG,   /**< `--name`: sets a `bool` to true */
    SC_OPT_INT,    /**< `--name N`: a `long` */
    SC_OPT_STRING, /**< `--name S`: a `const char *` into argv */
};

/**
 * @brief An app-defined command-line option; a table of them ends with a
 * zeroed entry.
 * @ingroup ch03
 */
struct sc_app_opt {
    const char *name;      /**< without the leading dashes */
    enum sc_opt_type type; /**< what @p dest points at */
    void *dest;            /**< `bool *`, `long *` or `const char **` */
    const char *help;      /**< one line for `--help` */
};

/**
 * @brief Parse the standard options and run @p fn on a shard.
 * @ingroup ch03
 *
 * Standard options: `--backend sim|real`, `--seed N`, `--task-quota-ms X`,
 * `--blocked-reactor-notify-ms X`, `--sim-defer-ready P`,
 * `--sim-shuffle-tasks P`, `--sim-preempt-early P`, `--sim-chaos` (all three
 * at 10%), `--sim-task-ns N`, `--quiet`, `--smp N`, `--cpuset LIST`,
 * `--idle-poll-time-us N`, `--poll-mode`, `--sim-step-tasks N`, `--memory
 * SIZE`, `--reserve-memory SIZE` (sizes take a K, M, G or T suffix),
 * `--malloc seacore|system`, `--sim-alloc-fail-ppm N`, `--reactor-backend
 * linux-aio|epoll|io_uring`, `--network-stack posix|native`,
 * `--io-properties-file PATH`, `--sim-net-latency-us N`, `--sim-net-reset-ppm
 * N`, `--sim-net-stall-ppm N`, `--sim-disk-eio-ppm N`, `--help`. Values may
 * be given as `--opt V` or `--opt=V`.
 *
 * @return @p fn's exit code; 0 after `--help`; 2 for an unknown or malformed
 *         option (with a message on stderr, and @p fn never runs); 1 if @p fn
 *         failed or the engine could not start
 */
int sc_app_run(int argc, char **argv, sc_main_fn fn);

/**
 * @brief sc_app_run() with app-defined options (@p opts, may be NULL), a
 * one-line description for `--help`, and an argument for @p fn.
 * @ingroup ch03
 */
int sc_app_run_opts(int argc, char **argv, const char *about, const struct sc_app_opt *opts,
                    sc_main_fn fn, void *arg);

/**
 * @brief Run @p fn with an explicit configuration (no option parsing).
 * @ingroup ch03
 * @return @p fn's exit code; 1 if it failed or the engine could not start
 */
int sc_run(const struct sc_config *cfg, sc_main_fn fn, void *arg, int argc, char **argv);

/** @brief What a finished run reports (sc_run_ex()). @ingroup ch03 */
struct sc_run_result {
    int exit_code;             /**< the app's exit code */
    uint64_t seed;             /**< the seed actually used */
    uint64_t trace_hash;       /**< the trace hash at the end of the run */
    uint64_t end_ns;           /**< the shard clock at the end (virtual ns in the simulator) */
    uint64_t tasks_run;        /**< tasks run */
    uint64_t unhandled_errors; /**< failed futures reported as never handled */
};

/**
 * @brief sc_run(), and fill @p out (may be NULL) with what the run reports.
 * @ingroup ch03
 * @return @p fn's exit code; 1 if it failed or the engine could not start
 */
int sc_run_ex(const struct sc_config *cfg, sc_main_fn fn, void *arg, int argc, char **argv,
              struct sc_run_result *out);

/**
 * @brief Parse the standard options into @p cfg, leaving the rest in place.
 * @ingroup ch03
 * @param argc in: count; out: count of the arguments left
 * @param argv in/out: the arguments (compacted in place)
 * @param cfg filled with defaults first, then the options found
 * @param opts app-defined options, or NULL
 * @param about a one-line description of the app for `--help`, or NULL
 * @retval 0 parsed
 * @retval 1 `--help` was given (usage printed to stdout)
 * @retval -EINVAL an unknown or malformed option (message printed to stderr)
 */
int sc_config_parse(int *argc, char **argv, struct sc_config *cfg, const struct sc_app_opt *opts,
                    const char *about);

#endif
