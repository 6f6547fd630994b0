/*
 * sim_httpd.c — the HTTP server and simulated clients in one simulated run
 * (apps/httpd: server.c, routes.c, simload.c), over many seeds. 1 to 3
 * shards (chosen by the seed) each listen on the same address; clients on
 * every shard connect, send pipelined requests cut into pieces at random
 * places, malformed ones, slow heads, and hang up half-way, all decided by
 * the seed, under the simulator's schedule perturbations.
 *
 * Invariants checked on every run:
 *   - every reply is the right one, in order, byte for byte (the clients
 *     check: hello text, HEAD lengths, chunked bodies, echoed bodies, 404s,
 *     keep-alive and close as each request asked);
 *   - a malformed request gets its own status (400, 413, 414, 417, 431,
 *     501, 505) and then the end of the connection;
 *   - a client that stops inside a head is closed by the server, and not
 *     before the header timeout;
 *   - what the server counted (connections, complete requests, refusals,
 *     timeouts, replies by class) equals what the clients counted, and the
 *     server ends with no connection open;
 *   - no failed future is left unhandled (the sweep driver checks it).
 *
 * With --sim-net-reset-ppm or --sim-alloc-fail-ppm the run breaks
 * connections on purpose: then only wrong replies count (a missing one is
 * expected), and the run must still end with every connection closed.
 *
 *   build/bin/sim_httpd --seed 17      one seed (`make sim SIM=sim_httpd SEED=17`)
 *   build/bin/sim_httpd --sweep 200    seeds 1..200, each twice: same trace hash
 */
#include <inttypes.h>
#include <stdio.h>

#include "apps/httpd/routes.h"
#include "apps/httpd/server.h"
#include "apps/httpd/simload.h"
#include "core/shard_impl.h" /* the run's configuration: are faults injected? */
#include "tests/sim/sweep.h"

#define TIMEOUT_NS SC_MS(200)

static struct {
    bool lossy; /* the run breaks connections on purpose */
    struct httpd_server srv;
    struct httpd_routes routes;
    struct simload_result load;
    struct httpd_stats final;
    int bad;
} T;

static struct sc_future done(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    if (err && !(T.lossy && err == -ENOMEM)) {
        fprintf(stderr, "sim_httpd: stop failed: %s (seed %" PRIu64 ")\n", sc_strerror(err),
                sc_seed());
        T.bad++;
    }
    httpd_routes_free(&T.routes);
    return sc_make_ready(T.bad ? 1 : 0);
}

static struct sc_future settled(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    if (err) {
        fprintf(stderr,
                "sim_httpd: the server still has %" PRIu64 " connections open, %" PRIu64
                " of %" PRIu64 " accepted (seed %" PRIu64 ")\n",
                T.final.open, T.final.accepted, T.load.connects, sc_seed());
        T.bad++;
    }
    T.bad += simload_check(&T.load, &T.final);
    if (T.final.open) {
        fprintf(stderr, "sim_httpd: %" PRIu64 " connections left open (seed %" PRIu64 ")\n",
                T.final.open, sc_seed());
        T.bad++;
    }
    if (T.load.connects == 0 && !T.lossy) {
        fprintf(stderr, "sim_httpd: no client connected (seed %" PRIu64 ")\n", sc_seed());
        T.bad++;
    }
    return sc_then_wrapped(httpd_stop(&T.srv), done, NULL, 0);
}

static struct sc_future loaded(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct sc_future f = simload_settle(&T.srv, &T.load, 4 * TIMEOUT_NS, &T.final);
    return sc_then_wrapped(f, settled, NULL, 0);
}

static struct sc_future started(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct simload_cfg cfg = {
        .server = {.ip = 0x7f000001, .port = T.srv.bound.port},
        .conns = 8 + (unsigned)sc_random_below(40),
        .batches = 1 + (unsigned)sc_random_below(4),
        .faults = true,
        .header_timeout_ns = TIMEOUT_NS,
        .lossy = T.lossy,
    };
    return sc_then(simload_run(&cfg, &T.load), loaded, NULL, 0);
}

static struct sc_future workload(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    T.bad = 0;
    T.lossy = sc__shard()->cfg.sim_net_reset_ppm || sc__shard()->cfg.sim_alloc_fail_ppm;
    httpd_routes_init(&T.routes);
    if (httpd_add_builtin_routes(&T.routes, &T.srv) != 0)
        return sc_make_ready(1);
    struct httpd_config cfg = {
        .addr = {.ip = 0, .port = 8080},
        .routes = &T.routes,
        .limits = http_limits_default(),
        .header_timeout_ns = TIMEOUT_NS,
    };
    struct sc_future f = sc_then(httpd_start(&T.srv, &cfg), started, NULL, 0);
    return sc_then_wrapped(f, done, NULL, 0);
}

static unsigned smp_for_seed(uint64_t seed)
{
    return 1 + (unsigned)(seed % 3);
}

static void report(void)
{
    const struct simload_result *r = &T.load;
    printf("clients: %" PRIu64 " connections, %" PRIu64 " requests, %" PRIu64
           " replies checked, %" PRIu64 " malformed, %" PRIu64 " slow, %" PRIu64
           " vanished, %" PRIu64 " wrong; server: %" PRIu64 " requests, %" PRIu64
           " flushes, %" PRIu64 " timeouts\n",
           r->connects, r->requests, r->replies, r->bad_sent, r->slow, r->vanished, r->violations,
           T.final.requests, T.final.flushes, T.final.timeouts);
}

int main(int argc, char **argv)
{
    static const struct sim_test t = {
        .name = "sim_httpd",
        .about = "httpd and simulated HTTP clients, with invariants, over seeds",
        .main = workload,
        .max_smp = 8,
        .smp_for_seed = smp_for_seed,
        .report = report,
    };
    return sim_test_main(&t, argc, argv);
}
