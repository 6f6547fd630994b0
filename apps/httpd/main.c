/*
 * seacore-httpd — an HTTP/1.1 server on every shard.
 *
 *   seacore-httpd --backend real --smp 2 --port 10000 [--address A] [--docroot DIR]
 *
 * Routes: / (hello), /stats (every shard's counters, JSON), /chunked?n=&size=,
 * /echo (POST or PUT: the body back), and with --docroot, the files under DIR
 * for every other path. Every shard listens on the port; a connection stays
 * on the shard that accepted it. SIGINT or SIGTERM (or --duration-s) stops it
 * cleanly: no more accepts, idle connections closed, replies in progress
 * finished.
 *
 * In the simulator (the default backend) there is no one to connect from
 * outside, so the server talks to simulated clients (apps/httpd/simload.c)
 * that check every reply, prints what both sides counted, and exits 0 when
 * they agree. The same seed gives the same run.
 *
 * The program's layers: http.c (the protocol, pure functions), server.c
 * (connections, replies, routing, start/stop), routes.c (the routes above),
 * static.c + fileio.c (files through the disk API, with a per-shard cache), simload.c (simulated
 * clients).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "apps/httpd/routes.h"
#include "apps/httpd/server.h"
#include "apps/httpd/simload.h"
#include "apps/httpd/static.h"

static long opt_port = 10000;
static const char *opt_address = "0.0.0.0";
static const char *opt_docroot;
static long opt_header_timeout_ms = 10000;
static long opt_duration_s;
static long opt_cache_mb = 16;
static long opt_cache_ms = 1000;
static long opt_sim_conns = 60;
static long opt_sim_batches = 4;
static bool opt_sim_no_faults;

static const struct sc_app_opt opts[] = {
    {"port", SC_OPT_INT, &opt_port, "N: TCP port (10000; 0: any free one, printed)"},
    {"address", SC_OPT_STRING, &opt_address, "A.B.C.D: address to listen on (0.0.0.0)"},
    {"docroot", SC_OPT_STRING, &opt_docroot, "DIR: serve the files under DIR (GET, HEAD)"},
    {"header-timeout-ms", SC_OPT_INT, &opt_header_timeout_ms,
     "N: a request's head (then its body) must arrive within N ms; idle connections close "
     "after it (10000)"},
    {"file-cache-mb", SC_OPT_INT, &opt_cache_mb,
     "N: MiB of small files cached per shard (16; 0: none, every request reads the file)"},
    {"file-cache-ms", SC_OPT_INT, &opt_cache_ms,
     "N: a cached file is read again after N ms (1000)"},
    {"duration-s", SC_OPT_INT, &opt_duration_s,
     "N: stop after N seconds (0: until SIGINT/SIGTERM)"},
    {"sim-conns", SC_OPT_INT, &opt_sim_conns, "N: simulated client connections (sim; 60)"},
    {"sim-batches", SC_OPT_INT, &opt_sim_batches,
     "N: most request batches per connection (sim; 4)"},
    {"sim-no-faults", SC_OPT_FLAG, &opt_sim_no_faults,
     "simulated clients send only well-formed requests (sim)"},
    {0},
};

static struct {
    struct httpd_server srv;
    struct httpd_routes routes;
    struct httpd_static files;
    struct simload_result load;
    struct httpd_stats final;
    uint64_t started_ns;
    int exit_code;
} A;

static atomic_int stop_signal;

static void on_signal(int sig)
{
    atomic_store(&stop_signal, sig);
}

/* ---- the end -------------------------------------------------------------------- */

static struct sc_future stopped(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    if (err)
        fprintf(stderr, "seacore-httpd: stop: %s\n", sc_strerror(err));
    httpd_routes_free(&A.routes);
    httpd_static_fini(&A.files);
    return sc_make_ready(A.exit_code);
}

static struct sc_future print_stats(void *cap, intptr_t v)
{
    (void)cap;
    struct httpd_stats *all = (struct httpd_stats *)v;
    size_t len;
    char *json = httpd_stats_json(all, sc_shard_count(), &len);
    free(all);
    if (json) {
        fprintf(stderr, "seacore-httpd: final counters: %s", json);
        free(json);
    }
    return sc_make_ready(0);
}

static struct sc_future stop_now(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    if (err)
        fprintf(stderr, "seacore-httpd: counters: %s\n", sc_strerror(err));
    return sc_then_wrapped(httpd_stop(&A.srv), stopped, NULL, 0);
}

/* Print every shard's counters, then stop the server. */
static struct sc_future shut_down(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct sc_future f = sc_then(httpd_stats_gather(&A.srv), print_stats, NULL, 0);
    return sc_then_wrapped(f, stop_now, NULL, 0);
}

/* ---- the real world: serve until a signal or --duration-s -------------------------- */

static struct sc_future again(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future watch_step(void *cap)
{
    (void)cap;
    int sig = atomic_load(&stop_signal);
    if (sig) {
        fprintf(stderr, "seacore-httpd: %s: stopping\n", strsignal(sig));
        return sc_make_ready(SC_STOP);
    }
    if (opt_duration_s && sc_now() - A.started_ns >= SC_SEC((uint64_t)opt_duration_s))
        return sc_make_ready(SC_STOP);
    return sc_then(sc_sleep(SC_MS(50)), again, NULL, 0);
}

/* ---- the simulator: serve simulated clients, compare both sides' counts ---------- */

static struct sc_future sim_report(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    const struct simload_result *r = &A.load;
    printf("simulated clients: %" PRIu64 " connections, %" PRIu64 " requests, %" PRIu64
           " replies checked (1xx %" PRIu64 ", 2xx %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64
           "), %" PRIu64 " malformed, %" PRIu64 " slow, %" PRIu64 " vanished, %" PRIu64 " wrong\n",
           r->connects, r->requests, r->replies, r->status[1], r->status[2], r->status[4],
           r->status[5], r->bad_sent, r->slow, r->vanished, r->violations);
    const struct httpd_stats *st = &A.final;
    printf("server: %" PRIu64 " connections, %" PRIu64 " requests, %" PRIu64 " flushes, %" PRIu64
           " refused, %" PRIu64 " timed out, %" PRIu64 " still open\n",
           st->accepted, st->requests, st->flushes, st->bad_requests, st->timeouts, st->open);
    int bad = simload_check(r, st);
    if (err) {
        fprintf(stderr, "seacore-httpd: the server did not close every connection (%s)\n",
                sc_strerror(err));
        bad++;
    }
    printf("%s\n", bad ? "MISMATCH: see above" : "both sides agree");
    A.exit_code = bad ? 1 : 0;
    return sc_make_ready(0);
}

static struct sc_future sim_settle(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    uint64_t wait = 3 * SC_MS((uint64_t)opt_header_timeout_ms) + SC_SEC(1);
    return simload_settle(&A.srv, &A.load, wait, &A.final);
}

static struct sc_future run_sim_clients(void)
{
    struct simload_cfg cfg = {
        .server = A.srv.bound,
        .conns = (unsigned)opt_sim_conns,
        .batches = (unsigned)opt_sim_batches,
        .faults = !opt_sim_no_faults,
        .header_timeout_ns = SC_MS((uint64_t)opt_header_timeout_ms),
    };
    if (!cfg.server.ip)
        cfg.server.ip = 0x7f000001;
    struct sc_future f = sc_then(simload_run(&cfg, &A.load), sim_settle, NULL, 0);
    return sc_then_wrapped(f, sim_report, NULL, 0);
}

/* ---- start ------------------------------------------------------------------------ */

static struct sc_future started(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    char addr[32];
    if (err) {
        fprintf(stderr, "seacore-httpd: cannot listen on %s:%ld: %s\n", opt_address, opt_port,
                sc_strerror(err));
        A.exit_code = 1;
        return stopped(NULL, 0, 0);
    }
    printf("seacore-httpd: listening on %s (%u shards, %s stack)\n",
           sc_inet_addr_format(&A.srv.bound, addr, sizeof addr), sc_shard_count(),
           sc_net_stack_name());
    fflush(stdout);
    struct sc_future f;
    if (sc_is_simulated())
        f = run_sim_clients();
    else
        f = sc_repeat(watch_step, NULL, 0);
    return sc_then(f, shut_down, NULL, 0);
}

static struct sc_future usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "seacore-httpd: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (see --help)\n");
    return sc_make_ready(2);
}

static struct sc_future app(void *arg, int argc, char **argv)
{
    (void)arg;
    if (argc > 0)
        return usage_error("unexpected argument '%s'", argv[0]);
    if (opt_port < 0 || opt_port > 65535)
        return usage_error("%s: expected a port number 0..65535", "--port");
    if (opt_header_timeout_ms <= 0 || opt_header_timeout_ms > 3600000)
        return usage_error("%s: expected 1..3600000 ms", "--header-timeout-ms");
    if (opt_cache_mb < 0 || opt_cache_mb > 65536 || opt_cache_ms < 0)
        return usage_error("%s: out of range", "--file-cache-mb/--file-cache-ms");
    if (opt_duration_s < 0 || opt_sim_conns < 0 || opt_sim_conns > 100000 || opt_sim_batches < 1 ||
        opt_sim_batches > 1000)
        return usage_error("%s: out of range", "--duration-s/--sim-conns/--sim-batches");
    struct sc_inet_addr addr;
    if (sc_inet_addr_parse(opt_address, &addr) != 0)
        return usage_error("--address: expected A.B.C.D, not '%s'", opt_address);
    addr.port = (uint16_t)opt_port;

    httpd_routes_init(&A.routes);
    int rc = httpd_add_builtin_routes(&A.routes, &A.srv);
    if (!rc && opt_docroot) {
        rc = httpd_static_init(&A.files, opt_docroot, (uint64_t)opt_cache_mb << 20,
                               SC_MS((uint64_t)opt_cache_ms));
        if (rc) {
            fprintf(stderr, "seacore-httpd: --docroot %s: %s\n", opt_docroot, sc_strerror(rc));
            httpd_routes_free(&A.routes);
            return sc_make_ready(1);
        }
        rc = httpd_routes_add(&A.routes, HTTPD_PREFIX, "/", httpd_static_handler, &A.files);
    }
    if (rc) {
        fprintf(stderr, "seacore-httpd: routes: %s\n", sc_strerror(rc));
        return stopped(NULL, 0, 0);
    }
    struct httpd_config cfg = {
        .addr = addr,
        .routes = &A.routes,
        .limits = http_limits_default(),
        .header_timeout_ns = SC_MS((uint64_t)opt_header_timeout_ms),
    };
    A.started_ns = sc_now();
    return sc_then_wrapped(httpd_start(&A.srv, &cfg), started, NULL, 0);
}

int main(int argc, char **argv)
{
    /* a stop request sets a flag that shard 0 looks at every 50 ms */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* a peer that went away is an error from write(), not the death of the server */
    signal(SIGPIPE, SIG_IGN);
    /* one descriptor per connection: take every one we are allowed */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return sc_app_run_opts(argc, argv, "an HTTP/1.1 server on every shard", opts, app, NULL);
}
