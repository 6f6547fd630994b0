/*
 * sim_net.c — a simulation test of the simulated network (sim/net.c): every
 * shard listens on the same port and runs an echo server; every shard runs
 * a few clients, each on its own connection, that stream a random number of
 * patterned bytes in random-sized writes and read the echo back at the same
 * time (so both directions fill their windows); every shard also sends
 * datagrams to a channel on shard 0. The seed picks the shard count (1-4),
 * the delay, the accept mode (spread by the seed or accept_and_forward),
 * and the faults: resets, stalls and a partition of a few milliseconds,
 * unless the command line sets them. The schedule perturbations are on.
 *
 * Invariants, checked as the run goes and at its end:
 *   - every byte that arrives is the right byte at the right place (the
 *     pattern of its connection and offset): nothing is lost, duplicated or
 *     reordered inside a connection;
 *   - a connection that was not reset echoes every byte sent on it, once,
 *     then ends: the client reads end of stream, the server saw its total;
 *   - the only error a connection may see is -ECONNRESET, and only when the
 *     reset fault is on;
 *   - connects succeed (every shard listens before any client starts);
 *   - datagrams arrive intact and at most once, and received + dropped ==
 *     sent, summed over the shards;
 *   - at the end no connection end is left on any shard, and every server
 *     handler has finished.
 *
 *   build/bin/sim_net --seed 17      one seed (`make sim SIM=sim_net SEED=17`)
 *   build/bin/sim_net --sweep 300    seeds 1..300, each run twice: same trace hash
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/seacore.h"
#include "core/shard_impl.h"
#include "net/net.h"
#include "sim/simnet.h"
#include "tests/sim/sweep.h"

#define MAX_SHARDS  4
#define MAX_CLIENTS 5      /* per shard */
#define MAX_BYTES   120000 /* per connection */
#define MAX_WRITE   9000   /* a write: sometimes past the stream's 8 KiB batch */
#define DGRAMS      20     /* per shard */
#define PORT        7000
#define UDP_PORT    7001

struct shard_state {
    uint64_t conns, resets, clean, bytes_echoed;
    uint64_t handlers, handlers_done;
    uint64_t dgrams_sent, dgrams_got;
    uint8_t dgram_seen[MAX_SHARDS][DGRAMS];
    struct sc_server_socket *lsn;
    struct sc_udp_chan *chan;
    int violations;
};

static struct shard_state state[MAX_SHARDS];
static bool faults_reset; /* the reset fault is on in this run */

static struct shard_state *me(void)
{
    return &state[sc_this_shard()];
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "INVARIANT (shard %u, seed %" PRIu64 "): %s\n", sc_this_shard(), sc_seed(),
            msg);
    me()->violations++;
}

static uint8_t pattern(uint64_t conn, uint64_t i)
{
    return (uint8_t)(conn * 131 + i * 7 + (i >> 10));
}

/* An error a connection may see: a reset, when resets are injected. */
static bool allowed(int err)
{
    if (err == -ECONNRESET && faults_reset)
        return true;
    violation("unexpected error %d (%s)", err, sc_strerror(err));
    return false;
}

/* ---- the echo server ---- */

static struct sc_future echo_handler(void *cap)
{
    struct sc_conn *c = *(struct sc_conn **)cap;
    struct sc_istream *in = sc_conn_input(c);
    struct sc_ostream *out = sc_conn_output(c);
    uint64_t total = 0, echoed = 0;
    intptr_t v = 0;
    int err = sc_await(sc_istream_read_exactly(in, 16), &v);
    if (!err && v == 16) {
        size_t len;
        const char *p = sc_istream_data(in, &len);
        memcpy(&total, p + 8, 8);
    }
    while (!err && v > 0) {
        size_t len;
        const char *p = sc_istream_data(in, &len);
        err = sc_await(sc_ostream_write(out, p, len), NULL);
        if (!err)
            err = sc_await(sc_ostream_flush(out), NULL);
        if (err)
            break;
        sc_istream_consume(in, len);
        echoed += len;
        err = sc_await(sc_istream_read(in), &v);
    }
    if (err)
        allowed(err);
    else if (echoed != total + 16)
        violation("server: echoed %" PRIu64 " of %" PRIu64 " bytes before the end", echoed,
                  total + 16);
    me()->bytes_echoed += echoed;
    sc_await(sc_conn_close(c), NULL);
    me()->handlers_done++;
    return sc_make_ready(0);
}

static struct sc_future accept_loop(void *cap)
{
    (void)cap;
    for (;;) {
        intptr_t v = 0;
        int err = sc_await(sc_accept(me()->lsn), &v);
        if (err == -ECONNABORTED)
            return sc_make_ready(0);
        if (err) {
            violation("accept: %d", err);
            return sc_make_ready(0);
        }
        me()->handlers++;
        struct sc_conn *c = (struct sc_conn *)v;
        sc_future_discard(sc_thread_spawn(echo_handler, &c, sizeof c, NULL));
    }
}

/* ---- the clients ---- */

struct client {
    uint64_t conn; /* shard << 8 | number: names the pattern */
    uint64_t total;
    struct sc_conn *c;
    bool reset; /* set by whichever side saw a reset */
};

static struct sc_future client_reader(void *cap)
{
    struct client *cl = *(struct client **)cap;
    struct sc_istream *in = sc_conn_input(cl->c);
    uint64_t got = 0, want = cl->total + 16;
    for (;;) {
        intptr_t v = 0;
        int err = sc_await(sc_istream_read(in), &v);
        if (err) {
            if (allowed(err))
                cl->reset = true;
            break;
        }
        if (v == 0)
            break;
        size_t len;
        const uint8_t *p = (const uint8_t *)sc_istream_data(in, &len);
        for (size_t k = 0; k < len; k++, got++) {
            if (got < 16)
                continue; /* the header: checked by the server */
            if (got >= want || p[k] != pattern(cl->conn, got - 16)) {
                violation("client %" PRIx64 ": byte %" PRIu64 " is wrong (of %" PRIu64 ")",
                          cl->conn, got, want);
                return sc_make_ready(0);
            }
        }
        sc_istream_consume(in, len);
    }
    if (!cl->reset && got != want)
        violation("client %" PRIx64 ": the echo ended after %" PRIu64 " of %" PRIu64 " bytes",
                  cl->conn, got, want);
    return sc_make_ready(0);
}

static int client_write(struct client *cl)
{
    struct sc_ostream *out = sc_conn_output(cl->c);
    uint64_t hdr[2] = {cl->conn, cl->total};
    int err = sc_await(sc_ostream_write(out, hdr, sizeof hdr), NULL);
    /* one buffer per client: a large write is sent uncopied, and is out of
     * the buffer once its future resolves */
    static char bufs[MAX_SHARDS][MAX_CLIENTS][MAX_WRITE];
    char *buf = bufs[sc_this_shard()][cl->conn & 0xff];
    uint64_t i = 0;
    while (!err && i < cl->total) {
        size_t n = 1 + sc_random_below(MAX_WRITE);
        if (n > cl->total - i)
            n = cl->total - i;
        for (size_t k = 0; k < n; k++)
            buf[k] = (char)pattern(cl->conn, i + k);
        err = sc_await(sc_ostream_write(out, buf, n), NULL);
        if (!err && sc_random_below(3) == 0)
            err = sc_await(sc_ostream_flush(out), NULL);
        i += n;
    }
    if (!err)
        err = sc_await(sc_conn_shutdown_output(cl->c), NULL);
    return err;
}

static struct sc_future client(void *cap)
{
    struct client cl = {.conn = *(uint64_t *)cap};
    cl.total = sc_random_below(MAX_BYTES + 1);
    struct sc_inet_addr to = {.ip = 0x7f000001, .port = PORT};
    intptr_t v = 0;
    int err = sc_await(sc_connect(&to), &v);
    if (err) {
        violation("connect: %d (%s)", err, sc_strerror(err));
        return sc_make_ready(0);
    }
    cl.c = (struct sc_conn *)v;
    me()->conns++;
    struct client *p = &cl; /* the reader shares cl: it lives on this fiber's stack */
    struct sc_future reader = sc_thread_spawn(client_reader, &p, sizeof p, NULL);
    err = client_write(&cl);
    if (err && allowed(err))
        cl.reset = true;
    sc_await(reader, NULL);
    if (cl.reset)
        me()->resets++;
    else
        me()->clean++;
    sc_await(sc_conn_close(cl.c), NULL);
    return sc_make_ready(0);
}

/* ---- datagrams ---- */

static struct sc_future udp_receiver(void *cap)
{
    (void)cap;
    for (;;) {
        intptr_t v = 0;
        int err = sc_await(sc_udp_recv(me()->chan), &v);
        if (err == -ECONNABORTED)
            return sc_make_ready(0);
        if (err) {
            violation("udp recv: %d", err);
            return sc_make_ready(0);
        }
        struct sc_datagram *d = (struct sc_datagram *)v;
        unsigned from = (unsigned char)d->data[0], k = (unsigned char)d->data[1];
        bool intact = d->len == 2 + k && from < MAX_SHARDS && k < DGRAMS;
        for (size_t i = 2; intact && i < d->len; i++)
            intact = d->data[i] == (char)(from + i);
        if (!intact)
            violation("a datagram arrived damaged (%zu bytes)", d->len);
        else if (me()->dgram_seen[from][k]++)
            violation("datagram %u from shard %u arrived twice", k, from);
        me()->dgrams_got++;
        sc_datagram_free(d);
    }
}

static struct sc_future udp_sender(void *cap)
{
    (void)cap;
    struct sc_inet_addr any = {0}, to = {.ip = 0x7f000001, .port = UDP_PORT};
    struct sc_udp_chan *ch = NULL;
    int r = sc_udp_open(&any, &ch);
    if (r) {
        violation("udp open: %d", r);
        return sc_make_ready(0);
    }
    char buf[2 + DGRAMS];
    for (unsigned k = 0; k < DGRAMS; k++) {
        buf[0] = (char)sc_this_shard();
        buf[1] = (char)k;
        for (unsigned i = 2; i < 2 + k; i++)
            buf[i] = (char)(sc_this_shard() + i);
        int err = sc_await(sc_udp_send(ch, &to, buf, 2 + k), NULL);
        if (err)
            violation("udp send: %d", err);
        me()->dgrams_sent++;
        sc_await(sc_sleep(SC_US(sc_random_below(200))), NULL);
    }
    sc_udp_close(ch);
    return sc_make_ready(0);
}

/* ---- the run ---- */

/* Per seed, unless the command line chose: the delay and the faults. */
static struct sc_future setup_shard(void *cap)
{
    const uint64_t *knobs = cap;
    struct sc_config *c = &sc__shard()->cfg;
    if (c->sim_net_latency_ns == 50000) /* the default */
        c->sim_net_latency_ns = knobs[0];
    if (!c->sim_net_reset_ppm)
        c->sim_net_reset_ppm = (uint32_t)knobs[1];
    if (!c->sim_net_stall_ppm)
        c->sim_net_stall_ppm = (uint32_t)knobs[2];
    memset(me(), 0, sizeof *me());
    return sc_make_ready(c->sim_net_reset_ppm != 0);
}

static struct sc_future start_shard(void *cap)
{
    bool forward = *(bool *)cap;
    struct sc_listen_opts o = {.addr = {.port = PORT}, .accept_and_forward = forward};
    int r = sc_listen(&o, &me()->lsn);
    if (r) {
        violation("listen: %d", r);
        return sc_make_error(r);
    }
    sc_future_discard(sc_thread_spawn(accept_loop, NULL, 0, NULL));
    if (sc_this_shard() == 0) {
        struct sc_inet_addr a = {.ip = 0, .port = UDP_PORT};
        r = sc_udp_open(&a, &me()->chan);
        if (r) {
            violation("udp open: %d", r);
            return sc_make_error(r);
        }
        sc_future_discard(sc_thread_spawn(udp_receiver, NULL, 0, NULL));
    }
    return sc_make_ready(0);
}

/* The clients of one shard, then its datagrams; waits for all. */
static struct sc_future shard_clients(void *cap)
{
    (void)cap;
    unsigned n = 1 + (unsigned)sc_random_below(MAX_CLIENTS);
    struct sc_future fs[MAX_CLIENTS + 1];
    for (unsigned k = 0; k < n; k++) {
        uint64_t conn = (uint64_t)sc_this_shard() << 8 | k;
        fs[k] = sc_thread_spawn(client, &conn, sizeof conn, NULL);
    }
    fs[n] = sc_thread_spawn(udp_sender, NULL, 0, NULL);
    for (unsigned k = 0; k <= n; k++)
        sc_await(fs[k], NULL);
    return sc_make_ready(0);
}

static struct sc_future spawn_clients(void *cap)
{
    (void)cap;
    return sc_thread_spawn(shard_clients, NULL, 0, NULL);
}

static struct sc_future stop_shard(void *cap)
{
    (void)cap;
    sc_server_close(me()->lsn);
    if (me()->chan)
        sc_udp_close(me()->chan);
    return sc_make_ready(0);
}

struct totals {
    uint64_t sent, got, dropped, ends, handlers, handlers_done;
};

static struct sc_future count_shard(void *cap)
{
    struct totals *t = *(struct totals **)cap; /* read and written on each shard in turn */
    struct sc_sim_net_stats st;
    sc_sim_net_stats(&st);
    t->sent += me()->dgrams_sent;
    t->got += me()->dgrams_got;
    t->dropped += st.dropped;
    t->ends += st.ends;
    t->handlers += me()->handlers;
    t->handlers_done += me()->handlers_done;
    return sc_make_ready(0);
}

static struct sc_future partition_later(void *cap)
{
    uint64_t at = ((uint64_t *)cap)[0], len = ((uint64_t *)cap)[1];
    sc_await(sc_sleep(at), NULL);
    sc_await(sc_sim_net_partition(true), NULL);
    sc_await(sc_sleep(len), NULL);
    sc_await(sc_sim_net_partition(false), NULL);
    return sc_make_ready(0);
}

static struct sc_future net_body(void *cap)
{
    (void)cap;
    uint64_t seed = sc_seed();
    uint64_t knobs[3] = {
        SC_US(1 + sc_random_below(200)),
        seed % 3 == 0 ? 500 + sc_random_below(3000) : 0,
        seed % 4 == 0 ? 500 + sc_random_below(5000) : 0,
    };
    unsigned n = sc_shard_count();
    faults_reset = false;
    for (unsigned i = 0; i < n; i++) {
        intptr_t v = 0;
        sc_await(sc_smp_submit_to(i, setup_shard, knobs, sizeof knobs), &v);
        faults_reset |= v != 0;
    }
    bool forward = seed % 2 == 0;
    /* one shard after the other: shard 0 listens first (the forwarder) */
    for (unsigned i = 0; i < n; i++)
        if (sc_await(sc_smp_submit_to(i, start_shard, &forward, sizeof forward), NULL))
            return sc_make_ready(1);
    struct sc_future cut = sc_make_ready(0);
    if (seed % 5 == 0) {
        uint64_t when[2] = {SC_US(sc_random_below(5000)), SC_US(1000 + sc_random_below(20000))};
        cut = sc_thread_spawn(partition_later, when, sizeof when, NULL);
    }
    sc_await(sc_smp_invoke_on_all(spawn_clients, NULL, 0), NULL);
    sc_await(cut, NULL);
    /* the last datagrams and FINs: a stall holds a send up to 100 ms */
    sc_await(sc_sleep(SC_MS(250)), NULL);
    sc_await(sc_smp_invoke_on_all(stop_shard, NULL, 0), NULL);
    sc_await(sc_sleep(SC_MS(1)), NULL);

    struct totals t = {0}, *tp = &t;
    for (unsigned i = 0; i < n; i++)
        sc_await(sc_smp_submit_to(i, count_shard, &tp, sizeof tp), NULL);
    if (t.got + t.dropped != t.sent)
        violation("datagrams: %" PRIu64 " sent, %" PRIu64 " received, %" PRIu64 " dropped", t.sent,
                  t.got, t.dropped);
    if (t.ends)
        violation("%" PRIu64 " connection end(s) left at the end", t.ends);
    if (t.handlers_done != t.handlers)
        violation("%" PRIu64 " of %" PRIu64 " server handlers finished", t.handlers_done,
                  t.handlers);
    int bad = 0;
    for (unsigned i = 0; i < n; i++)
        bad += state[i].violations;
    return sc_make_ready(bad ? 1 : 0);
}

static struct sc_future net_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_thread_spawn(net_body, NULL, 0, NULL);
}

static unsigned smp_for_seed(uint64_t seed)
{
    return 1 + (unsigned)(seed % MAX_SHARDS);
}

static void report(void)
{
    uint64_t conns = 0, resets = 0, clean = 0, bytes = 0, dg = 0, got = 0;
    for (unsigned i = 0; i < MAX_SHARDS; i++) {
        conns += state[i].conns;
        resets += state[i].resets;
        clean += state[i].clean;
        bytes += state[i].bytes_echoed;
        dg += state[i].dgrams_sent;
        got += state[i].dgrams_got;
    }
    printf("sim_net: connections=%" PRIu64 " clean=%" PRIu64 " reset=%" PRIu64
           " bytes_echoed=%" PRIu64 " datagrams=%" PRIu64 " received=%" PRIu64 "\n",
           conns, clean, resets, bytes, dg, got);
}

static void before_run(void)
{
    memset(state, 0, sizeof state);
}

int main(int argc, char **argv)
{
    static const struct sim_test t = {
        .name = "sim_net",
        .about = "Echo clients and servers on every shard over the simulated network.",
        .main = net_main,
        .max_smp = MAX_SHARDS,
        .smp_for_seed = smp_for_seed,
        .report = report,
        .before_run = before_run,
    };
    return sim_test_main(&t, argc, argv);
}
