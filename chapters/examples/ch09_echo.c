/*
 * ch09_echo.c — chapter 9: an echo server on every shard, and clients that
 * check it, in either world.
 *
 *   make && build/bin/ch09_echo [--backend sim|real] [--smp N] [--port N]
 *        [--clients N] [--lines N] [--forward] [--serve]
 *
 * Every shard listens on 127.0.0.1:PORT (SO_REUSEPORT in the posix stack,
 * or, with --forward, shard 0 accepts and hands connections round-robin to
 * the others). The server is written with continuations: read a line with
 * sc_istream_read_until(), write it back from where it lies in the input
 * buffer, and flush only when no other whole line is waiting, so pipelined
 * lines go back in one batch. The clients run on shard 0, one fiber each:
 * connect, send lines ten at a time, read them back and compare, half-close,
 * read the server's end of stream, close. At the end the program prints
 * how many connections each shard served and how many system calls the
 * clients' output streams made for their writes.
 *
 * With --serve there are no clients: the server runs until the process is
 * killed (try `nc 127.0.0.1 PORT`). A world without a network stack (the
 * simulator of a build without sim/net.c, --network-stack native) is
 * reported, and the program exits 0 having done nothing.
 *
 * Exit status 0 when every line came back intact, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "core/seacore.h"
#include "net/net.h"

#define MAX_SHARDS 256

static long port = 0;
static long nclients = 8;
static long nlines = 200;
static bool forward, serve;

static struct sc_listen_opts listen_opts;
static struct sc_server_socket *server[MAX_SHARDS];
static struct sc_gate handlers[MAX_SHARDS];
static unsigned served[MAX_SHARDS];

/* ==== the server: continuations ========================================= */

struct echo {
    struct sc_conn *c;
    size_t n; /* the line being answered */
};

static struct sc_future keep_going(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future echo_written(void *cap, intptr_t v)
{
    (void)v;
    struct echo *e = cap;
    struct sc_istream *in = sc_conn_input(e->c);
    sc_istream_consume(in, e->n);
    size_t more;
    const char *rest = sc_istream_data(in, &more);
    if (memchr(rest, '\n', more))
        return sc_make_ready(SC_CONTINUE); /* another request is here: same batch */
    return sc_then(sc_ostream_flush(sc_conn_output(e->c)), keep_going, NULL, 0);
}

static struct sc_future echo_line(void *cap, intptr_t n, int err)
{
    struct echo *e = cap;
    if (err || n == 0) /* end of stream, a last line without newline, or an error */
        return sc_make_ready(SC_STOP);
    e->n = (size_t)n;
    /* Written from the input buffer itself, and consumed only once the
     * output stream has taken it (a long line goes to the socket uncopied). */
    const char *line = sc_istream_data(sc_conn_input(e->c), NULL);
    return sc_then(sc_ostream_write(sc_conn_output(e->c), line, e->n), echo_written, e, sizeof *e);
}

static struct sc_future echo_step(void *cap)
{
    struct echo *e = cap;
    return sc_then_wrapped(sc_istream_read_until(sc_conn_input(e->c), '\n', 0), echo_line, e,
                           sizeof *e);
}

static struct sc_future close_conn(void *cap, intptr_t v, int err)
{
    (void)v, (void)err; /* a peer that vanished cannot be told anything: close anyway */
    return sc_conn_close(*(struct sc_conn **)cap);
}

static struct sc_future close_output(void *cap, intptr_t v, int err)
{
    (void)v, (void)err;
    struct sc_conn *c = *(struct sc_conn **)cap;
    return sc_then_wrapped(sc_ostream_close(sc_conn_output(c)), close_conn, &c, sizeof c);
}

/* One connection, start to end: runs inside the shard's gate. */
static struct sc_future echo_serve(void *cap, intptr_t v)
{
    (void)v;
    struct sc_conn *c = *(struct sc_conn **)cap;
    struct echo e = {c, 0};
    return sc_then_wrapped(sc_repeat(echo_step, &e, sizeof e), close_output, &c, sizeof c);
}

static struct sc_future accepted(void *cap, intptr_t v)
{
    (void)cap;
    struct sc_conn *c = (struct sc_conn *)v;
    served[sc_this_shard()]++;
    sc_future_ignore(sc_with_gate(&handlers[sc_this_shard()], echo_serve, &c, sizeof c));
    return sc_make_ready(0);
}

static struct sc_future accept_step(void *cap)
{
    (void)cap;
    return sc_then(sc_accept(server[sc_this_shard()]), accepted, NULL, 0);
}

static struct sc_future listen_here(void *cap)
{
    (void)cap;
    unsigned me = sc_this_shard();
    int rc = sc_listen(&listen_opts, &server[me]);
    if (rc < 0)
        return sc_make_error(rc);
    sc_gate_init(&handlers[me]);
    /* Accept until the socket is closed (the loop then ends with -ECONNABORTED). */
    sc_future_ignore(sc_keep_doing(accept_step, NULL, 0));
    return sc_make_ready(0);
}

static struct sc_future stop_here(void *cap)
{
    (void)cap;
    unsigned me = sc_this_shard();
    sc_server_close(server[me]);
    return sc_gate_close(&handlers[me]); /* every connection has ended */
}

/* ==== the clients: fibers ============================================== */

static unsigned bad_lines, good_lines, failed_clients;
static uint64_t app_writes, sink_writes;

static int line_of(char *buf, size_t cap, int client, int i)
{
    /* lines of 20 to about 300 bytes */
    return snprintf(buf, cap, "client %d says line %d %.*s\n", client, i, (i * 53) % 280,
                    "Shared-nothing: each core owns its data, its memory and its sockets, and "
                    "talks to the others only by messages. Nothing is locked, nothing waits for "
                    "another core, and the network stack is driven from the same loop that runs "
                    "the tasks. This sentence is long enough to be cut at many places.");
}

static struct sc_future client(void *cap)
{
    int id = *(int *)cap;
    intptr_t v;
    int err = sc_await(sc_connect(&listen_opts.addr), &v);
    if (err) {
        fprintf(stderr, "client %d: connect: %s\n", id, sc_strerror(err));
        failed_clients++;
        return sc_make_ready(0);
    }
    struct sc_conn *c = (struct sc_conn *)v;
    struct sc_istream *in = sc_conn_input(c);
    struct sc_ostream *out = sc_conn_output(c);
    char want[400];
    for (int i = 0; i < nlines && !err; i += 10) {
        for (int j = i; j < i + 10 && j < nlines && !err; j++) {
            int len = line_of(want, sizeof want, id, j);
            err = sc_await(sc_ostream_write(out, want, (size_t)len), NULL);
            app_writes++;
        }
        if (!err)
            err = sc_await(sc_ostream_flush(out), NULL);
        for (int j = i; j < i + 10 && j < nlines && !err; j++) {
            int len = line_of(want, sizeof want, id, j);
            err = sc_await(sc_istream_read_until(in, '\n', 0), &v);
            if (err)
                break;
            if (v == len && !memcmp(sc_istream_data(in, NULL), want, (size_t)len))
                good_lines++;
            else
                bad_lines++;
            sc_istream_consume(in, (size_t)v);
        }
    }
    sink_writes += out->sink_writes; /* a private counter: for this demonstration only */
    if (!err)
        err = sc_await(sc_conn_shutdown_output(c), NULL);
    if (!err && (err = sc_await(sc_istream_read(in), &v)) == 0 && v != 0)
        err = -EPROTO; /* the server should have ended its side */
    if (err) {
        fprintf(stderr, "client %d: %s\n", id, sc_strerror(err));
        failed_clients++;
    }
    sc_await(sc_conn_close(c), NULL);
    return sc_make_ready(0);
}

static struct sc_future run_clients(void *cap)
{
    (void)cap;
    struct sc_future fs[256];
    long n = nclients < 256 ? nclients : 256;
    for (int i = 0; i < n; i++)
        fs[i] = sc_thread_spawn(client, &i, sizeof i, NULL);
    return sc_when_all_succeed(fs, (size_t)n);
}

/* ==== main ============================================================ */

static struct sc_future report(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    printf("ch09_echo: %ld clients x %ld lines on the %s stack, %u shard(s), %s\n", nclients,
           nlines, sc_net_stack_name(), sc_shard_count(),
           forward ? "accept-and-forward" : "each shard accepts (SO_REUSEPORT)");
    for (unsigned i = 0; i < sc_shard_count(); i++)
        printf("  shard %u served %u connections\n", i, served[i]);
    printf("  %u lines came back intact, %u wrong; %u clients failed\n", good_lines, bad_lines,
           failed_clients);
    printf("  the clients' %llu writes took %llu system calls (batched by the output stream)\n",
           (unsigned long long)app_writes, (unsigned long long)sink_writes);
    bool ok = !err && !bad_lines && !failed_clients &&
              good_lines == (unsigned)(nclients < 256 ? nclients : 256) * (unsigned)nlines;
    return sc_make_ready(ok ? 0 : 1);
}

static struct sc_future stop_servers(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    int e = err;
    return sc_then_wrapped(sc_smp_invoke_on_all(stop_here, NULL, 0), report, &e, sizeof e);
}

static struct sc_future start_clients(void *cap, intptr_t v)
{
    (void)v;
    return run_clients(cap);
}

static struct sc_future forever(void *cap)
{
    (void)cap;
    return sc_sleep(SC_SEC(3600)); /* resolves with 0: SC_CONTINUE */
}

static struct sc_future serve_forever(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_repeat(forever, NULL, 0);
}

static struct sc_future echo_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "ch09_echo: --port must be in 0..65535\n");
        return sc_make_ready(2);
    }
    listen_opts = (struct sc_listen_opts){
        .addr = {0x7f000001, (uint16_t)port}, .reuse_addr = true, .accept_and_forward = forward};
    int err = sc_future_get(listen_here(NULL), NULL);
    if (err == -ENOSYS) {
        printf("ch09_echo: this world has no network stack (%s): nothing to do\n",
               sc_is_simulated() ? "the simulator's network model is not built in"
                                 : "--network-stack native is not built yet");
        return sc_make_ready(0);
    }
    if (err) {
        fprintf(stderr, "ch09_echo: listen: %s\n", sc_strerror(err));
        return sc_make_ready(1);
    }
    listen_opts.addr = sc_server_local_addr(server[0]); /* the port, if the stack chose it */
    struct sc_future others = sc_smp_invoke_on_others(listen_here, NULL, 0);
    if (serve) {
        char a[24];
        printf("ch09_echo: serving on %s with %u shard(s); try: nc 127.0.0.1 %u\n",
               sc_inet_addr_format(&listen_opts.addr, a, sizeof a), sc_shard_count(),
               listen_opts.addr.port);
        fflush(stdout);
        return sc_then(others, serve_forever, NULL, 0);
    }
    return sc_then_wrapped(sc_then(others, start_clients, NULL, 0), stop_servers, NULL, 0);
}

int main(int argc, char **argv)
{
    static const struct sc_app_opt opts[] = {
        {"port", SC_OPT_INT, &port, "N: the port (0: one the stack chooses)"},
        {"clients", SC_OPT_INT, &nclients, "N: clients at once, at most 256 (8)"},
        {"lines", SC_OPT_INT, &nlines, "N: lines each client sends (200)"},
        {"forward", SC_OPT_FLAG, &forward, "shard 0 accepts and hands connections out"},
        {"serve", SC_OPT_FLAG, &serve, "no clients: serve until killed"},
        {0},
    };
    return sc_app_run_opts(argc, argv, "An echo server on every shard, and clients that check it.",
                           opts, echo_main, NULL);
}
