/*
 * test_simnet.c — the simulated network (sim/net.c) through the network API:
 * echo across shards, many connections spread over listening shards (by the
 * seed, and round-robin with accept_and_forward), byte order within a
 * connection, the receive window holding back a writer, refused connects
 * and bad input, the reset and stall faults, half-close, close with and
 * without unread data, a partition, UDP, and the same trace for the same
 * seed. The sim stack exists only in the simulator, so these run there
 * (plus one look at the hooks from the real world).
 *
 * Test bodies are fibers: they read top to bottom, with sc_await where a
 * continuation chain would need a new function. Times checked are virtual.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/seacore.h"
#include "net/net.h"
#include "sim/simnet.h"
#include "tests/harness.h"

#define LAT SC_US(50) /* the default one-way delay */

/* ---- running a body ---- */

static struct sc_config cfg;

static struct sc_future body_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    return sc_thread_spawn((sc_thread_fn)arg, NULL, 0, NULL);
}

static void cfg_reset(unsigned smp)
{
    cfg = t_config(SC_BACKEND_SIM);
    cfg.smp = smp;
}

static int run_ex(sc_thread_fn body, struct sc_run_result *res)
{
    tr_step("run on the sim world: %u shards, seed %llu, latency %llu ns, reset %u ppm, stall %u "
            "ppm",
            cfg.smp, (unsigned long long)cfg.seed, (unsigned long long)cfg.sim_net_latency_ns,
            cfg.sim_net_reset_ppm, cfg.sim_net_stall_ppm);
    struct sc_run_result r;
    int rc = sc_run_ex(&cfg, body_main, (void *)body, 0, NULL, &r);
    T_CHECK(r.unhandled_errors == 0, "%llu failed future(s) left unhandled",
            (unsigned long long)r.unhandled_errors);
    if (res)
        *res = r;
    return rc;
}

static void run(sc_thread_fn body)
{
    int rc = run_ex(body, NULL);
    T_CHECK(rc == 0, "the run failed (exit %d)", rc);
}

/* ---- helpers for fibers ---- */

static intptr_t ok(struct sc_future f, const char *what)
{
    intptr_t v = 0;
    int err = sc_await(f, &v);
    T_CHECK(err == 0, "%s: failed with %d (%s)", what, err, sc_strerror(err));
    return v;
}

static int fails(struct sc_future f)
{
    intptr_t v = 0;
    return sc_await(f, &v);
}

/* Run fn(cap) as a fiber on `shard`; the future resolves there and back. */
struct on_cap {
    sc_thread_fn fn;
    char cap[96];
    size_t size;
};

static struct sc_future spawn_here(void *cap)
{
    struct on_cap *o = cap;
    return sc_thread_spawn(o->fn, o->cap, o->size, NULL);
}

static struct sc_future on_shard(unsigned shard, sc_thread_fn fn, const void *cap, size_t size)
{
    struct on_cap o = {.fn = fn, .size = size};
    if (size)
        memcpy(o.cap, cap, size);
    return sc_smp_submit_to(shard, spawn_here, &o, sizeof o);
}

static struct sc_inet_addr addr(const char *s)
{
    struct sc_inet_addr a;
    T_CHECK(sc_inet_addr_parse(s, &a) == 0, "parse %s", s);
    return a;
}

static struct sc_server_socket *listen_on(const char *where, bool forward)
{
    struct sc_listen_opts o = {
        .addr = addr(where), .reuse_addr = true, .accept_and_forward = forward};
    struct sc_server_socket *s = NULL;
    int r = sc_listen(&o, &s);
    T_CHECK(r == 0, "listen on %s: %d", where, r);
    return s;
}

static struct sc_conn *connect_to(const char *where)
{
    struct sc_inet_addr a = addr(where);
    return (struct sc_conn *)ok(sc_connect(&a), "connect");
}

static void send_all(struct sc_conn *c, const void *p, size_t n)
{
    ok(sc_ostream_write(sc_conn_output(c), p, n), "write");
    ok(sc_ostream_flush(sc_conn_output(c)), "flush");
}

/* Read exactly n bytes (fewer only at end of stream); returns the count. */
static size_t recv_n(struct sc_conn *c, char *out, size_t n)
{
    struct sc_istream *in = sc_conn_input(c);
    size_t got = 0;
    while (got < n) {
        intptr_t have = ok(sc_istream_read(in), "read");
        if (have == 0)
            break;
        size_t len;
        const char *p = sc_istream_data(in, &len);
        size_t k = len < n - got ? len : n - got;
        memcpy(out + got, p, k);
        sc_istream_consume(in, k);
        got += k;
    }
    return got;
}

static bool at_eof(struct sc_conn *c)
{
    return ok(sc_istream_read(sc_conn_input(c)), "read to the end") == 0;
}

static void close_conn(struct sc_conn *c)
{
    ok(sc_conn_close(c), "close");
}

static uint64_t ends_here(void)
{
    struct sc_sim_net_stats st;
    sc_sim_net_stats(&st);
    return st.ends;
}

static struct sc_future ends_of(void *cap)
{
    (void)cap;
    return sc_make_ready((intptr_t)ends_here());
}

static intptr_t sum(intptr_t a, intptr_t b)
{
    return a + b;
}

/* Every shard's live ends, summed: 0 once everything is closed. */
static intptr_t ends_everywhere(void)
{
    return ok(sc_smp_map_reduce(ends_of, sum, 0, NULL, 0), "count ends");
}

/* ---- echo across shards ---- */

static struct sc_future echo_server(void *cap)
{
    struct sc_server_socket *s = *(struct sc_server_socket **)cap;
    struct sc_conn *c = (struct sc_conn *)ok(sc_accept(s), "accept");
    char buf[64];
    struct sc_istream *in = sc_conn_input(c);
    intptr_t n = ok(sc_istream_read_until(in, '\n', sizeof buf), "read a line");
    size_t len;
    memcpy(buf, sc_istream_data(in, &len), (size_t)n);
    sc_istream_consume(in, (size_t)n);
    send_all(c, buf, (size_t)n);
    T_CHECK(at_eof(c), "the client half-closed: end of stream");
    struct sc_inet_addr local = sc_conn_local_addr(c);
    T_CHECK(local.ip == 0x0a000001 && local.port == 7, "server's local address is 10.0.0.1:7");
    struct sc_inet_addr peer = sc_conn_peer_addr(c);
    close_conn(c);
    sc_server_close(s);
    return sc_make_ready((intptr_t)peer.port);
}

static struct sc_future echo_client(void *cap)
{
    (void)cap;
    uint64_t t0 = sc_now();
    struct sc_conn *c = connect_to("10.0.0.1:7");
    T_CHECK(sc_now() - t0 >= LAT, "a connect takes at least one delay (took %llu ns)",
            (unsigned long long)(sc_now() - t0));
    struct sc_inet_addr peer = sc_conn_peer_addr(c);
    T_CHECK(peer.ip == 0x0a000001 && peer.port == 7, "client's peer is 10.0.0.1:7");
    T_CHECK(sc_conn_set_nodelay(c, true) == 0 && sc_conn_set_keepalive(c, true) == 0, "options");
    send_all(c, "hello, shard\n", 13);
    ok(sc_conn_shutdown_output(c), "half-close");
    char buf[32];
    T_CHECK(recv_n(c, buf, 13) == 13 && !memcmp(buf, "hello, shard\n", 13), "the echo");
    T_CHECK(at_eof(c), "the server closed: end of stream");
    struct sc_inet_addr local = sc_conn_local_addr(c);
    close_conn(c);
    return sc_make_ready((intptr_t)local.port);
}

static struct sc_future echo_body(void *cap)
{
    (void)cap;
    T_CHECK(!strcmp(sc_net_stack_name(), "sim"), "the sim world uses the sim stack");
    struct sc_server_socket *s = listen_on("10.0.0.1:7", false);
    T_CHECK(sc_server_local_addr(s).port == 7, "bound to port 7");
    tr_step("shard 0 listens on 10.0.0.1:7; a client on shard 1 says hello, half-closes");
    struct sc_future server = sc_thread_spawn(echo_server, &s, sizeof s, NULL);
    intptr_t client_port = ok(on_shard(1, echo_client, NULL, 0), "the client");
    intptr_t seen_port = ok(server, "the server");
    T_CHECK(client_port == seen_port && client_port >= 32768,
            "the server saw the client's port (%ld, %ld)", (long)seen_port, (long)client_port);
    ok(sc_sleep(SC_MS(1)), "let the last FIN land");
    T_CHECK(ends_everywhere() == 0, "every end is freed after both closes");
    return sc_make_ready(0);
}

START_TEST(echo_across_shards)
{
    tr_reset();
    cfg_reset(2);
    run(echo_body);
}
END_TEST

/* ---- many connections over many listening shards ---- */

#define SPREAD_SHARDS 4
#define SPREAD_CONNS  64

static struct sc_server_socket *lsn[SPREAD_SHARDS];
static unsigned served[SPREAD_SHARDS];  /* connections each shard handled */
static unsigned handled[SPREAD_SHARDS]; /* ... and finished with */
static unsigned answered_by[SPREAD_SHARDS];

static struct sc_future spread_handler(void *cap)
{
    struct sc_conn *c = *(struct sc_conn **)cap;
    uint32_t id;
    T_CHECK(recv_n(c, (char *)&id, 4) == 4, "a client's id");
    uint8_t me = (uint8_t)sc_this_shard();
    send_all(c, &me, 1);
    T_CHECK(at_eof(c), "the client half-closed");
    close_conn(c);
    handled[sc_this_shard()]++;
    return sc_make_ready(0);
}

static struct sc_future accept_loop(void *cap)
{
    (void)cap;
    unsigned me = sc_this_shard();
    for (;;) {
        intptr_t v = 0;
        int err = sc_await(sc_accept(lsn[me]), &v);
        if (err == -ECONNABORTED)
            break; /* the listener closed */
        T_CHECK(err == 0, "accept: %d", err);
        served[me]++;
        struct sc_conn *c = (struct sc_conn *)v;
        sc_future_discard(sc_thread_spawn(spread_handler, &c, sizeof c, NULL));
    }
    return sc_make_ready(0);
}

static struct sc_future start_listening(void *cap)
{
    bool forward = *(bool *)cap;
    lsn[sc_this_shard()] = listen_on(":80", forward);
    sc_future_discard(sc_thread_spawn(accept_loop, NULL, 0, NULL));
    return sc_make_ready(0);
}

static struct sc_future stop_listening(void *cap)
{
    (void)cap;
    sc_server_close(lsn[sc_this_shard()]);
    return sc_make_ready(0);
}

static struct sc_future spread_client(void *cap)
{
    uint32_t id = *(uint32_t *)cap;
    struct sc_conn *c = connect_to("127.0.0.1:80");
    send_all(c, &id, 4);
    uint8_t who = 0xff;
    T_CHECK(recv_n(c, (char *)&who, 1) == 1 && who < SPREAD_SHARDS, "the answer names a shard");
    ok(sc_conn_shutdown_output(c), "half-close");
    T_CHECK(at_eof(c), "the server closed");
    close_conn(c);
    return sc_make_ready(who);
}

static struct sc_future spread(bool forward)
{
    memset(served, 0, sizeof served);
    memset(handled, 0, sizeof handled);
    memset(answered_by, 0, sizeof answered_by);
    /* one shard after the other, so that shard 0 listens first */
    for (unsigned i = 0; i < SPREAD_SHARDS; i++)
        ok(on_shard(i, start_listening, &forward, sizeof forward), "listen");
    struct sc_future fs[SPREAD_CONNS];
    for (uint32_t k = 0; k < SPREAD_CONNS; k++)
        fs[k] = on_shard(k % SPREAD_SHARDS, spread_client, &k, sizeof k);
    for (uint32_t k = 0; k < SPREAD_CONNS; k++)
        answered_by[ok(fs[k], "a client")]++;
    for (unsigned i = 0; i < SPREAD_SHARDS; i++)
        ok(on_shard(i, stop_listening, NULL, 0), "stop listening");
    ok(sc_sleep(SC_MS(1)), "let the accept loops end");
    unsigned total = 0;
    for (unsigned i = 0; i < SPREAD_SHARDS; i++) {
        tr_step("shard %u served %u connections", i, served[i]);
        T_CHECK(served[i] == answered_by[i] && handled[i] == served[i],
                "shard %u: served %u, answered %u, finished %u", i, served[i], answered_by[i],
                handled[i]);
        total += served[i];
    }
    T_CHECK(total == SPREAD_CONNS, "every connection was served once (%u)", total);
    T_CHECK(ends_everywhere() == 0, "every end is freed");
    return sc_make_ready(0);
}

static struct sc_future spread_seeded(void *cap)
{
    (void)cap;
    ok(spread(false), "spread");
    for (unsigned i = 0; i < SPREAD_SHARDS; i++)
        T_CHECK(served[i] > 0, "shard %u got a share", i);
    return sc_make_ready(0);
}

static struct sc_future spread_forwarded(void *cap)
{
    (void)cap;
    ok(spread(true), "spread");
    for (unsigned i = 0; i < SPREAD_SHARDS; i++)
        T_CHECK(served[i] == SPREAD_CONNS / SPREAD_SHARDS, "round-robin: shard %u got %u of %u", i,
                served[i], SPREAD_CONNS);
    return sc_make_ready(0);
}

START_TEST(many_connections_spread_by_the_seed)
{
    tr_reset();
    cfg_reset(SPREAD_SHARDS);
    run(spread_seeded);
}
END_TEST

START_TEST(many_connections_forwarded_round_robin)
{
    tr_reset();
    cfg_reset(SPREAD_SHARDS);
    run(spread_forwarded);
}
END_TEST

/* ---- order within a connection, several connections at once ---- */

#define ORDER_CONNS 4
#define ORDER_BYTES (256u * 1024u)

static uint8_t pattern(uint32_t conn, uint64_t i)
{
    return (uint8_t)(conn * 7 + i * 31 + (i >> 9));
}

static struct sc_future order_reader(void *cap)
{
    struct sc_conn *c = *(struct sc_conn **)cap;
    uint32_t conn;
    T_CHECK(recv_n(c, (char *)&conn, 4) == 4, "the connection's number");
    struct sc_istream *in = sc_conn_input(c);
    uint64_t i = 0;
    for (;;) {
        intptr_t have = ok(sc_istream_read(in), "read");
        if (have == 0)
            break;
        size_t len;
        const uint8_t *p = (const uint8_t *)sc_istream_data(in, &len);
        for (size_t k = 0; k < len; k++, i++)
            T_CHECK(p[k] == pattern(conn, i), "connection %u: byte %llu out of order", conn,
                    (unsigned long long)i);
        sc_istream_consume(in, len);
    }
    T_CHECK(i == ORDER_BYTES, "connection %u: %llu bytes, not %u", conn, (unsigned long long)i,
            ORDER_BYTES);
    close_conn(c);
    return sc_make_ready(0);
}

static struct sc_future order_server(void *cap)
{
    struct sc_server_socket *s = *(struct sc_server_socket **)cap;
    struct sc_future rs[ORDER_CONNS];
    for (int k = 0; k < ORDER_CONNS; k++) {
        struct sc_conn *c = (struct sc_conn *)ok(sc_accept(s), "accept");
        rs[k] = sc_thread_spawn(order_reader, &c, sizeof c, NULL);
    }
    for (int k = 0; k < ORDER_CONNS; k++)
        ok(rs[k], "a reader");
    sc_server_close(s);
    return sc_make_ready(0);
}

static struct sc_future order_writer(void *cap)
{
    uint32_t conn = *(uint32_t *)cap;
    struct sc_conn *c = connect_to("10.0.0.1:9000");
    send_all(c, &conn, 4);
    static uint8_t bufs[ORDER_CONNS][20000];
    uint8_t *buf = bufs[conn];
    uint64_t i = 0;
    while (i < ORDER_BYTES) {
        size_t n = 1 + sc_random_below(sizeof bufs[0]);
        if (n > ORDER_BYTES - i)
            n = ORDER_BYTES - i;
        for (size_t k = 0; k < n; k++)
            buf[k] = pattern(conn, i + k);
        ok(sc_ostream_write(sc_conn_output(c), buf, n), "write");
        ok(sc_ostream_flush(sc_conn_output(c)), "flush"); /* buf is reused */
        i += n;
    }
    ok(sc_conn_shutdown_output(c), "half-close");
    T_CHECK(at_eof(c), "the reader closed");
    close_conn(c);
    return sc_make_ready(0);
}

static struct sc_future order_body(void *cap)
{
    (void)cap;
    struct sc_server_socket *s = listen_on("10.0.0.1:9000", false);
    struct sc_future server = sc_thread_spawn(order_server, &s, sizeof s, NULL);
    struct sc_future ws[ORDER_CONNS];
    for (uint32_t k = 0; k < ORDER_CONNS; k++)
        ws[k] = on_shard(1 + k % 2, order_writer, &k, sizeof k);
    for (int k = 0; k < ORDER_CONNS; k++)
        ok(ws[k], "a writer");
    ok(server, "the server");
    ok(sc_sleep(SC_MS(1)), "let the last FIN land");
    T_CHECK(ends_everywhere() == 0, "every end is freed");
    return sc_make_ready(0);
}

START_TEST(bytes_arrive_in_order)
{
    tr_reset();
    cfg_reset(3);
    run(order_body);
}
END_TEST

/* ---- backpressure: the window holds a writer back ---- */

#define BP_BYTES (1024u * 1024u)
static char bp_buf[BP_BYTES];

static struct sc_future bp_server(void *cap)
{
    struct sc_server_socket *s = *(struct sc_server_socket **)cap;
    struct sc_conn *c = (struct sc_conn *)ok(sc_accept(s), "accept");
    ok(sc_sleep(SC_MS(100)), "do not read for a while");
    static char got[BP_BYTES];
    T_CHECK(recv_n(c, got, BP_BYTES) == BP_BYTES, "everything arrives once read");
    T_CHECK(!memcmp(got, bp_buf, BP_BYTES), "intact");
    T_CHECK(at_eof(c), "then the end");
    close_conn(c);
    sc_server_close(s);
    return sc_make_ready(0);
}

static struct sc_future bp_client(void *cap)
{
    (void)cap;
    struct sc_conn *c = connect_to("10.0.0.1:9001");
    struct sc_sim_net_stats before, during;
    sc_sim_net_stats(&before);
    struct sc_future w = sc_ostream_write(sc_conn_output(c), bp_buf, BP_BYTES);
    ok(sc_sleep(SC_MS(50)), "wait while the server does not read");
    T_CHECK(!sc_future_available(w), "the 1 MiB write waits for the reader");
    sc_sim_net_stats(&during);
    uint64_t sent = during.bytes - before.bytes;
    tr_step("sent %llu bytes while the peer did not read", (unsigned long long)sent);
    T_CHECK(sent > 0 && sent <= 64 * 1024, "at most one window is out (%llu bytes)",
            (unsigned long long)sent);
    ok(w, "the write completes once the server reads");
    ok(sc_conn_shutdown_output(c), "half-close");
    T_CHECK(at_eof(c), "the server closed");
    close_conn(c);
    return sc_make_ready(0);
}

static struct sc_future bp_body(void *cap)
{
    (void)cap;
    for (size_t i = 0; i < BP_BYTES; i++)
        bp_buf[i] = (char)(i * 13 + (i >> 12));
    struct sc_server_socket *s = listen_on("10.0.0.1:9001", false);
    struct sc_future server = sc_thread_spawn(bp_server, &s, sizeof s, NULL);
    ok(on_shard(1, bp_client, NULL, 0), "the client");
    ok(server, "the server");
    return sc_make_ready(0);
}

START_TEST(window_holds_back_a_writer)
{
    tr_reset();
    cfg_reset(2);
    run(bp_body);
}
END_TEST

/* ---- refused, bad input, accept and listen errors ---- */

static struct sc_future errors_body(void *cap)
{
    (void)cap;
    struct sc_inet_addr nobody = addr("10.9.9.9:1234");
    uint64_t t0 = sc_now();
    T_CHECK(fails(sc_connect(&nobody)) == -ECONNREFUSED, "nobody listens: refused");
    T_CHECK(sc_now() - t0 >= LAT, "after one delay");
    struct sc_sim_net_stats st;
    sc_sim_net_stats(&st);
    T_CHECK(st.refused == 1, "counted as refused");
    struct sc_inet_addr zero = addr("10.0.0.1");
    T_CHECK(fails(sc_connect(&zero)) == -EINVAL, "port 0: -EINVAL");
    T_CHECK(fails(sc_connect(NULL)) == -EINVAL, "no address: -EINVAL");

    struct sc_server_socket *s = listen_on("127.0.0.1:5000", false), *s2 = NULL;
    struct sc_listen_opts o = {.addr = addr("127.0.0.1:5000")};
    T_CHECK(sc_listen(&o, &s2) == -EADDRINUSE, "the same address twice on a shard");
    o.addr = addr(":5000");
    T_CHECK(sc_listen(&o, &s2) == -EADDRINUSE, "any address overlaps");
    o.addr = addr(":5001");
    o.backlog = -1;
    T_CHECK(sc_listen(&o, &s2) == -EINVAL, "a negative backlog");
    T_CHECK(sc_listen(NULL, &s2) == -EINVAL, "no options");

    /* accept: one at a time; closing the listener aborts the waiting one */
    struct sc_future a = sc_accept(s);
    T_CHECK(fails(sc_accept(s)) == -EBUSY, "a second outstanding accept");
    sc_server_close(s);
    T_CHECK(fails(a) == -ECONNABORTED, "close aborts the waiting accept");
    struct sc_inet_addr gone = addr("127.0.0.1:5000");
    T_CHECK(fails(sc_connect(&gone)) == -ECONNREFUSED, "a closed listener refuses");

    /* port 0: the stack picks one, and it works */
    o.addr = addr("127.0.0.1:0");
    o.backlog = 1;
    T_CHECK(sc_listen(&o, &s) == 0, "listen on port 0");
    struct sc_inet_addr picked = sc_server_local_addr(s);
    T_CHECK(picked.port != 0, "a port was chosen (%u)", picked.port);
    struct sc_conn *c1 = (struct sc_conn *)ok(sc_connect(&picked), "connect to it");
    T_CHECK(fails(sc_connect(&picked)) == -ECONNREFUSED, "backlog 1: the second is refused");
    struct sc_conn *c1s = (struct sc_conn *)ok(sc_accept(s), "accept the first");
    sc_server_close(s);
    close_conn(c1);
    struct sc_future closing = sc_conn_close(c1s);
    T_CHECK(fails(sc_conn_close(c1s)) == -EALREADY, "a second close, while the first runs");
    ok(closing, "the first close");
    ok(sc_sleep(SC_MS(1)), "let the FINs land");
    T_CHECK(ends_everywhere() == 0, "every end is freed");
    return sc_make_ready(0);
}

START_TEST(refused_and_bad_input)
{
    tr_reset();
    cfg_reset(2);
    run(errors_body);
}
END_TEST

/* ---- the reset fault ---- */

static struct sc_future reset_server(void *cap)
{
    struct sc_server_socket *s = *(struct sc_server_socket **)cap;
    struct sc_conn *c = (struct sc_conn *)ok(sc_accept(s), "accept");
    sc_server_close(s);
    T_CHECK(fails(sc_istream_read(sc_conn_input(c))) == -ECONNRESET,
            "the server's read sees the reset");
    T_CHECK(fails(sc_ostream_write(sc_conn_output(c), "x", 1)) == -ECONNRESET ||
                fails(sc_ostream_flush(sc_conn_output(c))) == -ECONNRESET,
            "so does its write");
    close_conn(c);
    return sc_make_ready(0);
}

static struct sc_future reset_client(void *cap)
{
    (void)cap;
    struct sc_conn *c = connect_to("10.0.0.1:9002");
    ok(sc_ostream_write(sc_conn_output(c), "doomed", 6), "a small write is only batched");
    T_CHECK(fails(sc_ostream_flush(sc_conn_output(c))) == -ECONNRESET, "the send resets");
    T_CHECK(fails(sc_istream_read(sc_conn_input(c))) == -ECONNRESET, "and the read sees it");
    struct sc_sim_net_stats st;
    sc_sim_net_stats(&st);
    T_CHECK(st.resets == 1 && st.sends == 1, "one send, one reset (%llu, %llu)",
            (unsigned long long)st.sends, (unsigned long long)st.resets);
    close_conn(c);
    return sc_make_ready(0);
}

static struct sc_future reset_body(void *cap)
{
    (void)cap;
    struct sc_server_socket *s = listen_on("10.0.0.1:9002", false);
    struct sc_future server = sc_thread_spawn(reset_server, &s, sizeof s, NULL);
    ok(on_shard(1, reset_client, NULL, 0), "the client");
    ok(server, "the server");
    ok(sc_sleep(SC_MS(1)), "let the RST land");
    T_CHECK(ends_everywhere() == 0, "every end is freed");
    return sc_make_ready(0);
}

START_TEST(reset_fault_reaches_both_ends)
{
    tr_reset();
    cfg_reset(2);
    cfg.sim_net_reset_ppm = 1000000; /* every send */
    run(reset_body);
}
END_TEST

/* ---- the stall fault ---- */

static uint64_t stall_sent_at;

static struct sc_future stall_server(void *cap)
{
    struct sc_server_socket *s = *(struct sc_server_socket **)cap;
    struct sc_conn *c = (struct sc_conn *)ok(sc_accept(s), "accept");
    sc_server_close(s);
    char b[4];
    T_CHECK(recv_n(c, b, 4) == 4 && !memcmp(b, "late", 4), "the stalled bytes arrive");
    uint64_t took = sc_now() - stall_sent_at;
    tr_step("a stalled send took %llu ns", (unsigned long long)took);
    T_CHECK(took >= SC_MS(10) && took <= SC_MS(100) + 2 * LAT + SC_US(100),
            "held 10-100 ms (%llu ns)", (unsigned long long)took);
    T_CHECK(at_eof(c), "then the end");
    close_conn(c);
    return sc_make_ready(0);
}

static struct sc_future stall_client(void *cap)
{
    (void)cap;
    struct sc_conn *c = connect_to("10.0.0.1:9003");
    stall_sent_at = sc_now();
    send_all(c, "late", 4);
    struct sc_sim_net_stats st;
    sc_sim_net_stats(&st);
    T_CHECK(st.stalls == 1, "counted as a stall");
    ok(sc_conn_shutdown_output(c), "half-close");
    T_CHECK(at_eof(c), "the server closed");
    close_conn(c);
    return sc_make_ready(0);
}

static struct sc_future stall_body(void *cap)
{
    (void)cap;
    struct sc_server_socket *s = listen_on("10.0.0.1:9003", false);
    struct sc_future server = sc_thread_spawn(stall_server, &s, sizeof s, NULL);
    ok(on_shard(1, stall_client, NULL, 0), "the client");
    ok(server, "the server");
    return sc_make_ready(0);
}

START_TEST(stall_fault_holds_a_send)
{
    tr_reset();
    cfg_reset(2);
    cfg.sim_net_stall_ppm = 1000000;
    run(stall_body);
}
END_TEST

/* ---- half-close, and close with and without unread data ---- */

static struct sc_future half_server(void *cap)
{
    struct sc_server_socket *s = *(struct sc_server_socket **)cap;
    struct sc_conn *c = (struct sc_conn *)ok(sc_accept(s), "accept 1");
    char b[8];
    T_CHECK(recv_n(c, b, 3) == 3 && !memcmp(b, "abc", 3), "the request");
    T_CHECK(at_eof(c), "the client half-closed: end of stream");
    send_all(c, "xyz", 3); /* we can still write */
    close_conn(c);

    /* second connection: closed with data unread, which resets the peer */
    c = (struct sc_conn *)ok(sc_accept(s), "accept 2");
    ok(sc_sleep(SC_MS(1)), "let the data arrive, and leave it unread");
    close_conn(c);

    /* third: a read waiting when we close fails with -ECONNABORTED */
    c = (struct sc_conn *)ok(sc_accept(s), "accept 3");
    struct sc_future rd = sc_istream_read(sc_conn_input(c));
    struct sc_future cl = sc_conn_close(c);
    T_CHECK(fails(rd) == -ECONNABORTED, "close aborts the waiting read");
    ok(cl, "and completes");
    sc_server_close(s);
    return sc_make_ready(0);
}

static int write_err(struct sc_conn *c, const char *s)
{
    int err = fails(sc_ostream_write(sc_conn_output(c), s, strlen(s)));
    return err ? err : fails(sc_ostream_flush(sc_conn_output(c)));
}

static struct sc_future half_body(void *cap)
{
    (void)cap;
    struct sc_server_socket *s = listen_on("10.0.0.1:9004", false);
    struct sc_future server = sc_thread_spawn(half_server, &s, sizeof s, NULL);

    struct sc_conn *c = connect_to("10.0.0.1:9004");
    send_all(c, "abc", 3);
    ok(sc_conn_shutdown_output(c), "half-close");
    T_CHECK(write_err(c, "more") == -EPIPE, "writing after the half-close: -EPIPE");
    char b[8];
    T_CHECK(recv_n(c, b, 3) == 3 && !memcmp(b, "xyz", 3), "the reply after our half-close");
    T_CHECK(at_eof(c), "the server closed with nothing unread: end of stream");
    close_conn(c);

    c = connect_to("10.0.0.1:9004");
    send_all(c, "never read", 10);
    T_CHECK(fails(sc_istream_read(sc_conn_input(c))) == -ECONNRESET,
            "the server closed with our bytes unread: reset");
    T_CHECK(write_err(c, "x") == -ECONNRESET, "writes see it too");
    close_conn(c);

    c = connect_to("10.0.0.1:9004");
    T_CHECK(at_eof(c), "the server closed (its read aborted): end of stream");
    close_conn(c);
    ok(server, "the server");
    ok(sc_sleep(SC_MS(1)), "let the last FIN land");
    T_CHECK(ends_everywhere() == 0, "every end is freed");
    return sc_make_ready(0);
}

START_TEST(half_close_and_close)
{
    tr_reset();
    cfg_reset(2);
    run(half_body);
}
END_TEST

/* ---- a partition holds everything until it heals ---- */

static bool part_got;

static struct sc_future part_server(void *cap)
{
    struct sc_server_socket *s = *(struct sc_server_socket **)cap;
    struct sc_conn *c = (struct sc_conn *)ok(sc_accept(s), "accept");
    char b[4];
    T_CHECK(recv_n(c, b, 4) == 4 && !memcmp(b, "ping", 4), "ping");
    part_got = true;
    T_CHECK(at_eof(c), "the end");
    close_conn(c);
    c = (struct sc_conn *)ok(sc_accept(s), "accept the one made during the cut");
    T_CHECK(at_eof(c), "the end");
    close_conn(c);
    sc_server_close(s);
    return sc_make_ready(0);
}

static struct sc_future part_body(void *cap)
{
    (void)cap;
    part_got = false;
    struct sc_server_socket *s = listen_on("10.0.0.1:9005", false);
    struct sc_future server = sc_thread_spawn(part_server, &s, sizeof s, NULL);
    struct sc_conn *c = connect_to("10.0.0.1:9005");
    ok(sc_sim_net_partition(true), "cut");
    send_all(c, "ping", 4);
    struct sc_inet_addr a = addr("10.0.0.1:9005");
    struct sc_future later = sc_connect(&a);
    ok(sc_sleep(SC_MS(20)), "wait while cut");
    T_CHECK(!part_got, "nothing crosses a cut network");
    T_CHECK(!sc_future_available(later), "a connect waits too");
    ok(sc_sim_net_partition(false), "heal");
    ok(sc_sleep(SC_MS(1)), "a delay");
    T_CHECK(part_got, "the held bytes arrive after the heal");
    struct sc_conn *c2 = (struct sc_conn *)ok(later, "the held connect completes");
    ok(sc_conn_shutdown_output(c), "half-close");
    ok(sc_conn_shutdown_output(c2), "half-close");
    T_CHECK(at_eof(c) && at_eof(c2), "the server closed both");
    close_conn(c);
    close_conn(c2);
    ok(server, "the server");
    return sc_make_ready(0);
}

START_TEST(partition_holds_until_healed)
{
    tr_reset();
    cfg_reset(2);
    run(part_body);
}
END_TEST

/* ---- UDP ---- */

static struct sc_future udp_peer(void *cap)
{
    (void)cap;
    struct sc_inet_addr me = addr("10.0.0.2:53");
    struct sc_udp_chan *ch = NULL, *dup = NULL;
    T_CHECK(sc_udp_open(&me, &ch) == 0, "open 10.0.0.2:53");
    T_CHECK(sc_udp_open(&me, &dup) == -EADDRINUSE, "twice on a shard: -EADDRINUSE");
    unsigned seen = 0;
    struct sc_inet_addr from = {0};
    for (int k = 0; k < 3; k++) {
        struct sc_datagram *d = (struct sc_datagram *)ok(sc_udp_recv(ch), "recv");
        T_CHECK(d->len == 5 && !memcmp(d->data, "dgra", 4), "payload");
        seen |= 1u << (d->data[4] - '0');
        from = d->from;
        sc_datagram_free(d);
    }
    T_CHECK(seen == 7, "three datagrams, once each (in any order)");
    ok(sc_udp_send(ch, &from, "pong", 4), "answer the sender");
    struct sc_future r = sc_udp_recv(ch);
    T_CHECK(fails(sc_udp_recv(ch)) == -EBUSY, "one receive at a time");
    sc_udp_close(ch);
    T_CHECK(fails(r) == -ECONNABORTED, "close aborts the waiting receive");
    return sc_make_ready(0);
}

static struct sc_future udp_body(void *cap)
{
    (void)cap;
    struct sc_udp_chan *ch = NULL;
    struct sc_inet_addr any = {0};
    T_CHECK(sc_udp_open(&any, &ch) == 0, "open on any port");
    T_CHECK(sc_udp_local_addr(ch).port != 0, "a port was chosen");
    struct sc_future peer = on_shard(1, udp_peer, NULL, 0);
    ok(sc_sleep(SC_US(10)), "let the peer open its channel");
    struct sc_inet_addr to = addr("10.0.0.2:53");
    char msg[5] = {'d', 'g', 'r', 'a', '0'};
    for (int k = 0; k < 3; k++) {
        msg[4] = (char)('0' + k);
        ok(sc_udp_send(ch, &to, msg, sizeof msg), "send");
    }
    struct sc_datagram *d = (struct sc_datagram *)ok(sc_udp_recv(ch), "the answer");
    T_CHECK(d->len == 4 && !memcmp(d->data, "pong", 4) && d->from.port == 53, "pong from :53");
    sc_datagram_free(d);
    ok(peer, "the peer");

    static char big[65508];
    T_CHECK(fails(sc_udp_send(ch, &to, big, sizeof big)) == -EMSGSIZE, "too big");
    struct sc_sim_net_stats before, after;
    sc_sim_net_stats(&before);
    struct sc_inet_addr nobody = addr("10.0.0.3:99");
    ok(sc_udp_send(ch, &nobody, "lost", 4), "a send to nobody succeeds");
    ok(sc_sleep(SC_MS(1)), "a delay");
    sc_sim_net_stats(&after);
    T_CHECK(after.dropped == before.dropped + 1, "and the datagram is dropped");
    sc_udp_close(ch);
    return sc_make_ready(0);
}

START_TEST(udp_datagrams)
{
    tr_reset();
    cfg_reset(2);
    run(udp_body);
}
END_TEST

/* ---- the same seed, the same run ---- */

START_TEST(same_seed_same_trace)
{
    tr_reset();
    uint64_t h[3];
    uint64_t seeds[3] = {5, 5, 6};
    for (int k = 0; k < 3; k++) {
        cfg_reset(SPREAD_SHARDS);
        cfg.seed = seeds[k];
        cfg.sim_shuffle_pct = cfg.sim_defer_ready_pct = 10;
        struct sc_run_result r;
        T_CHECK(run_ex(spread_seeded, &r) == 0, "run %d", k);
        h[k] = r.trace_hash;
        tr_step("seed %llu: trace %016llx", (unsigned long long)seeds[k], (unsigned long long)h[k]);
    }
    T_CHECK(h[0] == h[1], "the same seed gives the same trace");
    T_CHECK(h[0] != h[2], "another seed, another trace");
}
END_TEST

/* ---- the hooks outside the simulator ---- */

static struct sc_future real_body(void *cap)
{
    (void)cap;
    struct sc_sim_net_stats st;
    memset(&st, 0xff, sizeof st);
    sc_sim_net_stats(&st);
    T_CHECK(st.sends == 0 && st.ends == 0, "no counters in the real world");
    T_CHECK(fails(sc_sim_net_partition(true)) == -ENOTSUP, "no partition in the real world");
    return sc_make_ready(0);
}

START_TEST(hooks_in_the_real_world)
{
    tr_reset();
    cfg = t_config(SC_BACKEND_REAL);
    cfg.smp = 1;
    run(real_body);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("simnet");
    TCase *tc = tcase_create("simnet");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, echo_across_shards);
    tcase_add_test(tc, many_connections_spread_by_the_seed);
    tcase_add_test(tc, many_connections_forwarded_round_robin);
    tcase_add_test(tc, bytes_arrive_in_order);
    tcase_add_test(tc, window_holds_back_a_writer);
    tcase_add_test(tc, refused_and_bad_input);
    tcase_add_test(tc, reset_fault_reaches_both_ends);
    tcase_add_test(tc, stall_fault_holds_a_send);
    tcase_add_test(tc, half_close_and_close);
    tcase_add_test(tc, partition_holds_until_healed);
    tcase_add_test(tc, udp_datagrams);
    tcase_add_test(tc, same_seed_same_trace);
    tcase_add_test(tc, hooks_in_the_real_world);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
