/*
 * seacore-memcached — a memcached server on seacore: the text protocol,
 * keys sharded over the cores by hash, an LRU under a memory limit, expiry
 * on the shards' timers. What `make run` shows.
 *
 * In the simulator (the default) it starts the server on every shard and
 * then simulated clients (demo.c) that connect through the same network
 * API, run a seeded mix of requests, and check every answer; it prints the
 * load of each shard, the latency percentiles in virtual time, the verdict
 * and the trace hash, and exits (0 when no answer was wrong). On the real
 * machine (--backend real) it serves 127.0.0.1:11211 until killed — or, with
 * --clients N, runs the same checking clients against itself and exits.
 *
 * memcached's own short options work too: -p PORT, -l ADDR, -m MB,
 * -I SIZE, -t THREADS (shards).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/memcached/conn.h"
#include "apps/memcached/demo.h"
#include "apps/memcached/shard.h"
#include "core/seacore.h"
#include "net/net.h"

static long port_opt = 11211;
static const char *address_opt = "127.0.0.1";
static long memory_limit_opt = 64; /* MB */
static const char *max_item_opt = "1m";
static long max_inflight_opt = 64;
static long clients_opt = -1; /* -1: 16 in the simulator, none on the real machine */
static long ops_opt = 500;
static long keys_opt = 64;
static long counters_opt = 4;
static long depth_opt = 4;
static bool no_big_opt, no_garbage_opt;

struct run {
    struct mc_config cfg;
    struct sc_inet_addr addr;
    struct mc_demo_opts demo;
    struct mc_demo_report report;
};

static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return false;
    switch (*end) {
    case 'k':
    case 'K':
        v <<= 10, end++;
        break;
    case 'm':
    case 'M':
        v <<= 20, end++;
        break;
    case 0:
        break;
    default:
        return false;
    }
    if (*end)
        return false;
    *out = v;
    return true;
}

static struct sc_future serve_fiber(void *cap)
{
    struct run *r = *(struct run **)cap;
    int err = sc_await(mc_service_start(&r->cfg), NULL);
    if (err) {
        fprintf(stderr, "seacore-memcached: cannot start the cache: %s\n", sc_strerror(err));
        return sc_make_ready(1);
    }
    if ((err = sc_await(mc_server_start(&r->addr), NULL)) != 0) {
        char a[32];
        fprintf(stderr, "seacore-memcached: cannot listen on %s: %s%s\n",
                sc_inet_addr_format(&r->addr, a, sizeof a), sc_strerror(err),
                err == -EADDRINUSE ? " (another memcached? Debian's package starts one on "
                                     "11211: stop it, or use --port N)"
                                   : "");
        sc_await(mc_service_stop(), NULL);
        return sc_make_ready(1);
    }
    struct sc_inet_addr bound = {r->addr.ip, mc_server_port()};
    char a[32];
    sc_inet_addr_format(&bound, a, sizeof a);
    printf("seacore-memcached: %u shards listening on %s (%s stack, %s world), -m %" PRIu64
           " MB, -I %u bytes\n",
           sc_shard_count(), a, sc_net_stack_name(), sc_is_simulated() ? "simulated" : "real",
           r->cfg.memory_limit >> 20, r->cfg.max_item_size);
    if (r->demo.clients == 0) {
        uint32_t ip = r->addr.ip ? r->addr.ip : 0x7f000001; /* 0.0.0.0: try it locally */
        char host[16];
        snprintf(host, sizeof host, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
                 ip & 255);
        unsigned p = bound.port;
        printf("seacore-memcached: serving until killed (Ctrl-C). Try:\n"
               "  printf 'set greeting 0 0 5\\r\\nhello\\r\\nget greeting\\r\\n' | nc -q1 %s %u\n"
               "  memccp --servers=%s:%u README.md && memccat --servers=%s:%u README.md\n"
               "  memcstat --servers=%s:%u\n"
               "  printf 'stats shards\\r\\n' | nc -q1 %s %u\n",
               host, p, host, p, host, p, host, p, host, p);
        struct sc_promise forever;
        sc_promise_init(&forever);
        sc_await(sc_promise_get_future(&forever), NULL);
        return sc_make_ready(0);
    }
    r->demo.port = bound.port;
    printf("seacore-memcached: %u clients x %u requests (pipelined up to %u), %u keys each, "
           "%u shared counters, seed %" PRIu64 "\n",
           r->demo.clients, r->demo.ops, r->demo.depth, r->demo.keys, r->demo.counters, sc_seed());
    err = sc_await(mc_demo_run(&r->demo, &r->report), NULL);
    sc_await(mc_server_stop(), NULL);
    sc_await(mc_service_stop(), NULL);
    if (err) {
        fprintf(stderr, "seacore-memcached: the demo could not run: %s\n", sc_strerror(err));
        return sc_make_ready(1);
    }
    mc_demo_print(&r->report, sc_shard_count());
    sc_trace(r->report.ops ^ (r->report.hits << 20) ^ (r->report.violations << 40));
    if (sc_is_simulated())
        printf("trace hash: %016" PRIx64 " (seed %" PRIu64 "; the same seed gives the same hash: "
               "make run SEED=%" PRIu64 ")\n",
               sc_trace_hash(), sc_seed(), sc_seed());
    return sc_make_ready(r->report.violations ? 1 : 0);
}

static struct sc_future done(void *cap, intptr_t v, int err)
{
    struct run *r = *(struct run **)cap;
    free(r);
    return err ? sc_make_error(err) : sc_make_ready(v);
}

static struct sc_future app_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argv;
    if (argc > 0) {
        fprintf(stderr, "seacore-memcached: unexpected argument (try --help)\n");
        return sc_make_ready(2);
    }
    uint64_t max_item;
    if (!parse_size(max_item_opt, &max_item) || max_item < 1024 || max_item > (128u << 20)) {
        fprintf(stderr, "seacore-memcached: --max-item-size must be 1k..128m\n");
        return sc_make_ready(2);
    }
    if (port_opt < 0 || port_opt > 65535 || memory_limit_opt < 1 || memory_limit_opt > (1 << 20) ||
        max_inflight_opt < 1 || max_inflight_opt > 65536 || ops_opt < 1 || keys_opt < 1 ||
        keys_opt > 100000 || counters_opt < 0 || counters_opt > 1000 || depth_opt < 1 ||
        depth_opt > 8 || clients_opt > 10000) {
        fprintf(stderr, "seacore-memcached: an option is out of range (try --help)\n");
        return sc_make_ready(2);
    }
    if (sc_shard_count() > MC_DEMO_MAX_SHARDS) {
        fprintf(stderr, "seacore-memcached: at most %d shards\n", MC_DEMO_MAX_SHARDS);
        return sc_make_ready(2);
    }
    struct run *r = calloc(1, sizeof *r);
    if (!r)
        return sc_make_ready(1);
    r->cfg = (struct mc_config){
        .memory_limit = (uint64_t)memory_limit_opt << 20,
        .max_item_size = (uint32_t)max_item,
        .max_inflight = (unsigned)max_inflight_opt,
    };
    if (sc_inet_addr_parse(address_opt, &r->addr) != 0) {
        fprintf(stderr, "seacore-memcached: bad --address '%s'\n", address_opt);
        free(r);
        return sc_make_ready(2);
    }
    r->addr.port = (uint16_t)port_opt;
    long clients = clients_opt >= 0 ? clients_opt : sc_is_simulated() ? 16 : 0;
    if (clients == 0 && sc_is_simulated()) {
        fprintf(stderr, "seacore-memcached: the simulator needs clients (--clients N)\n");
        free(r);
        return sc_make_ready(2);
    }
    r->demo = (struct mc_demo_opts){
        .clients = (unsigned)clients,
        .ops = (unsigned)ops_opt,
        .keys = (unsigned)keys_opt,
        .counters = (unsigned)counters_opt,
        .depth = (unsigned)depth_opt,
        .big_values = !no_big_opt,
        .garbage = !no_garbage_opt,
    };
    r->cfg.track_evictions = clients > 0;
    struct sc_thread_attr attr = {.stack_size = 64 * 1024};
    struct sc_future f = sc_thread_spawn(serve_fiber, &r, sizeof r, &attr);
    return SC_THEN_WRAPPED(f, done, r);
}

/* memcached's short options, as the long ones they mean. */
static const char *const short_opts[][2] = {
    {"-p", "--port"},          {"-l", "--address"}, {"-m", "--memory-limit"},
    {"-I", "--max-item-size"}, {"-t", "--smp"},
};

int main(int argc, char **argv)
{
    static const struct sc_app_opt opts[] = {
        {"port", SC_OPT_INT, &port_opt, "N: TCP port (default 11211; 0: any free port)"},
        {"address", SC_OPT_STRING, &address_opt, "A: address to listen on (default 127.0.0.1)"},
        {"memory-limit", SC_OPT_INT, &memory_limit_opt,
         "MB: memory for items, all shards together (default 64; memcached -m)"},
        {"max-item-size", SC_OPT_STRING, &max_item_opt,
         "SIZE: largest value, e.g. 1m or 512k (default 1m; memcached -I)"},
        {"max-inflight", SC_OPT_INT, &max_inflight_opt,
         "N: requests in flight per connection before it stops reading (default 64)"},
        {"clients", SC_OPT_INT, &clients_opt,
         "N: run N checking clients against the server, then exit (simulator default 16)"},
        {"ops", SC_OPT_INT, &ops_opt, "N: requests per client (default 500)"},
        {"keys", SC_OPT_INT, &keys_opt, "N: keys each client owns (default 64)"},
        {"counters", SC_OPT_INT, &counters_opt, "N: counters all clients incr (default 4)"},
        {"depth", SC_OPT_INT, &depth_opt, "N: most requests a client pipelines (1..8, default 4)"},
        {"no-big-values", SC_OPT_FLAG, &no_big_opt, "clients send no 20 KiB values"},
        {"no-garbage", SC_OPT_FLAG, &no_garbage_opt, "clients send no protocol garbage"},
        {0},
    };
    for (int i = 1; i < argc; i++)
        for (size_t k = 0; k < sizeof short_opts / sizeof short_opts[0]; k++)
            if (strcmp(argv[i], short_opts[k][0]) == 0)
                argv[i] = (char *)short_opts[k][1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    return sc_app_run_opts(argc, argv,
                           "memcached's text protocol on seacore: keys sharded by hash over the "
                           "shards, LRU under a memory limit, expiry on timers.",
                           opts, app_main, NULL);
}
