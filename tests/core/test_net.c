/*
 * test_net.c — the network API on the posix stack, in the real world: echo
 * over loopback on one and two shards and on every reactor backend, many
 * connections at once, both ways of spreading connections over shards,
 * half-close, a peer's reset, refused connections, addresses in use, accept
 * after close, closing under a waiting read and write, big writes,
 * read_until over a slow writer, UDP, options and bad input. Every run
 * checks that it leaves no file descriptor behind (/proc/self/fd).
 *
 * The app side runs in fibers (sc_await) so each story reads top to
 * bottom. Peers that must misbehave (reset, never accept, write one byte at
 * a time) are plain kernel sockets.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/seacore.h"
#include "net/net.h"
#include "tests/harness.h"

#define LOOPBACK 0x7f000001u
#define MAXSH    4

static const enum sc_reactor_backend backends[] = {SC_REACTOR_LINUX_AIO, SC_REACTOR_EPOLL,
                                                   SC_REACTOR_IO_URING};
static const char *const backend_names[] = {"linux-aio", "epoll", "io_uring"};

/* ---- running a story ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

static sc_thread_fn body_fn;
static enum sc_network_stack stack_choice;

static struct sc_future net_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_thread_spawn(body_fn, NULL, 0, NULL);
}

/* Run body in a fiber on shard 0 of a real-world run; no fd may outlive it. */
static void run_net(unsigned smp, unsigned bi, sc_thread_fn body)
{
    struct sc_config cfg = t_config(SC_BACKEND_REAL);
    cfg.smp = smp;
    cfg.reactor_backend = backends[bi];
    cfg.network_stack = stack_choice;
    body_fn = body;
    tr_step("real world, %u shard(s), reactor backend %s", smp, backend_names[bi]);
    int before = count_fds();
    int rc = sc_run(&cfg, net_main, NULL, 0, NULL);
    int after = count_fds();
    T_CHECK(rc == 0, "the run failed (exit %d)", rc);
    T_CHECK(after == before, "file descriptors leaked: %d open before the run, %d after", before,
            after);
}

/* The value of f, or its (negative) error. */
static intptr_t aw(struct sc_future f)
{
    intptr_t v = 0;
    int err = sc_await(f, &v);
    return err ? (intptr_t)err : v;
}

static const char *addr_str(struct sc_inet_addr a)
{
    static char buf[4][24];
    static unsigned i;
    return sc_inet_addr_format(&a, buf[i++ % 4], 24);
}

/* ---- a server on every shard, one fiber per connection ---- */

enum srv_mode {
    SRV_ECHO,  /* lines back, until end of stream */
    SRV_ID,    /* "shard N\n", then close */
    SRV_COUNT, /* read to end of stream, answer "<bytes> <hash>\n" */
};

static struct srv_shard {
    struct sc_server_socket *s;
    int live;
    bool accepting;
    unsigned served;
    int last_err; /* the last error a connection of this shard ended with */
} srv[MAXSH];
static enum srv_mode srv_mode;
static struct sc_listen_opts srv_opts;

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}
#define FNV0 0xcbf29ce484222325ull

static struct sc_future srv_conn(void *cap)
{
    struct sc_conn *c = *(struct sc_conn **)cap;
    struct srv_shard *me = &srv[sc_this_shard()];
    struct sc_istream *in = sc_conn_input(c);
    struct sc_ostream *out = sc_conn_output(c);
    intptr_t err = 0;
    char line[64];
    if (srv_mode == SRV_ECHO) {
        for (;;) {
            intptr_t n = aw(sc_istream_read_until(in, '\n', 0));
            if (n <= 0) {
                err = n;
                break;
            }
            if ((err = aw(sc_ostream_write(out, sc_istream_data(in, NULL), (size_t)n))))
                break;
            sc_istream_consume(in, (size_t)n);
            size_t more;
            const char *rest = sc_istream_data(in, &more);
            if (!memchr(rest, '\n', more) && (err = aw(sc_ostream_flush(out))))
                break; /* flush unless another whole line is here already */
        }
    } else if (srv_mode == SRV_ID) {
        int len = snprintf(line, sizeof line, "shard %u\n", sc_this_shard());
        err = aw(sc_ostream_write(out, line, (size_t)len));
    } else {
        uint64_t total = 0, h = FNV0;
        intptr_t n;
        while ((n = aw(sc_istream_read(in))) > 0) {
            h = fnv(h, sc_istream_data(in, NULL), (size_t)n);
            total += (uint64_t)n;
            sc_istream_consume(in, (size_t)n);
        }
        err = n;
        int len = snprintf(line, sizeof line, "%llu %llx\n", (unsigned long long)total,
                           (unsigned long long)h);
        if (!err)
            err = aw(sc_ostream_write(out, line, (size_t)len));
    }
    intptr_t cerr = aw(sc_ostream_close(out));
    if (!err)
        err = cerr;
    T_CHECK(aw(sc_conn_close(c)) == 0, "the server's close");
    me->last_err = (int)err;
    me->served++;
    me->live--;
    return sc_make_ready(0);
}

static struct sc_future srv_accept_loop(void *cap)
{
    (void)cap;
    struct srv_shard *me = &srv[sc_this_shard()];
    for (;;) {
        intptr_t v = 0;
        if (sc_await(sc_accept(me->s), &v) != 0)
            break; /* -ECONNABORTED: closed */
        struct sc_conn *c = (struct sc_conn *)v;
        me->live++;
        sc_future_discard(sc_thread_spawn(srv_conn, &c, sizeof c, NULL));
    }
    me->accepting = false;
    return sc_make_ready(0);
}

static struct sc_future srv_start_here(void *cap)
{
    (void)cap;
    struct srv_shard *me = &srv[sc_this_shard()];
    memset(me, 0, sizeof *me);
    int rc = sc_listen(&srv_opts, &me->s);
    if (rc < 0)
        return sc_make_error(rc);
    me->accepting = true;
    sc_future_discard(sc_thread_spawn(srv_accept_loop, NULL, 0, NULL));
    return sc_make_ready(0);
}

/* Listen on 127.0.0.1 (a port of the kernel's choice) on every shard. */
static struct sc_inet_addr srv_start(enum srv_mode mode, bool forward)
{
    srv_mode = mode;
    srv_opts = (struct sc_listen_opts){
        .addr = {LOOPBACK, 0}, .reuse_addr = true, .accept_and_forward = forward};
    T_CHECK(aw(srv_start_here(NULL)) == 0, "listen on shard 0");
    srv_opts.addr = sc_server_local_addr(srv[0].s);
    T_CHECK(srv_opts.addr.ip == LOOPBACK && srv_opts.addr.port != 0, "bound to %s",
            addr_str(srv_opts.addr));
    if (sc_shard_count() > 1)
        T_CHECK(aw(sc_smp_invoke_on_others(srv_start_here, NULL, 0)) == 0, "listen on the others");
    tr_step("server (%s) on %s, %u shard(s), %s",
            mode == SRV_ECHO ? "echo"
            : mode == SRV_ID ? "id"
                             : "count",
            addr_str(srv_opts.addr), sc_shard_count(),
            forward ? "accept-and-forward" : "reuseport");
    return srv_opts.addr;
}

static bool srv_done_here(void *cap)
{
    (void)cap;
    struct srv_shard *me = &srv[sc_this_shard()];
    return !me->accepting && me->live == 0;
}

static struct sc_future nap(void *cap)
{
    (void)cap;
    return sc_sleep(SC_MS(1));
}

static struct sc_future srv_stop_here(void *cap)
{
    (void)cap;
    sc_server_close(srv[sc_this_shard()].s);
    return sc_do_until(srv_done_here, nap, NULL, 0);
}

static void srv_stop(void)
{
    T_CHECK(aw(sc_smp_invoke_on_all(srv_stop_here, NULL, 0)) == 0, "servers stopped");
}

/* ---- client helpers ---- */

static struct sc_conn *dial(struct sc_inet_addr to)
{
    intptr_t v = aw(sc_connect(&to));
    T_CHECK(v > 0, "connect to %s: %s", addr_str(to), sc_strerror((int)v));
    return (struct sc_conn *)v;
}

/* Read one line into buf (NUL-terminated, newline dropped); its length or the error. */
static intptr_t get_line(struct sc_conn *c, char *buf, size_t cap)
{
    struct sc_istream *in = sc_conn_input(c);
    intptr_t n = aw(sc_istream_read_until(in, '\n', 0));
    if (n <= 0)
        return n;
    size_t k = (size_t)n - 1 < cap - 1 ? (size_t)n - 1 : cap - 1;
    memcpy(buf, sc_istream_data(in, NULL), k);
    buf[k] = '\0';
    sc_istream_consume(in, (size_t)n);
    return (intptr_t)k;
}

/* Line j of client id, with its newline: 20 to about 520 bytes. */
static int talk_line(char *buf, size_t cap, int id, int j)
{
    char fill[501];
    int n = (j * 37) % 500;
    memset(fill, '.', (size_t)n);
    fill[n] = '\0';
    return snprintf(buf, cap, "client %d line %d %s\n", id, j, fill);
}

/* A client's conversation with the echo server: lines out, the same lines back. */
static void echo_talk(struct sc_conn *c, int id, int lines, int batch)
{
    struct sc_ostream *out = sc_conn_output(c);
    char want[600], got[600];
    for (int i = 0; i < lines; i += batch) {
        for (int j = i; j < i + batch && j < lines; j++) {
            int len = talk_line(want, sizeof want, id, j);
            T_CHECK(aw(sc_ostream_write(out, want, (size_t)len)) == 0, "write");
        }
        T_CHECK(aw(sc_ostream_flush(out)) == 0, "flush");
        for (int j = i; j < i + batch && j < lines; j++) {
            int len = talk_line(want, sizeof want, id, j) - 1; /* get_line drops the newline */
            intptr_t n = get_line(c, got, sizeof got);
            T_CHECK(n == len && !memcmp(got, want, (size_t)len),
                    "client %d, line %d: got %ld bytes \"%.40s...\"", id, j, (long)n, got);
        }
    }
}

/* Half-close, then the echo server ends too: end of stream, then close. */
static void finish(struct sc_conn *c)
{
    T_CHECK(aw(sc_conn_shutdown_output(c)) == 0, "half-close");
    T_CHECK(aw(sc_istream_read(sc_conn_input(c))) == 0, "the server's end of stream");
    T_CHECK(aw(sc_conn_close(c)) == 0, "close");
}

/* ---- plain kernel sockets for misbehaving peers ---- */

static int raw_listen(uint16_t port, uint16_t *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(LOOPBACK)};
    T_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 16) == 0,
            "raw listen: %s", strerror(errno));
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *bound = ntohs(sa.sin_port);
    return fd;
}

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(LOOPBACK)};
    T_CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "raw connect: %s",
            strerror(errno));
    return fd;
}

/* Close with a reset instead of a FIN. */
static void raw_reset(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* A port nobody listens on (bound, read, released). */
static uint16_t free_port(void)
{
    uint16_t port;
    int fd = raw_listen(0, &port);
    close(fd);
    return port;
}

/* ==== the stories ====================================================== */

static int bi_of(int i)
{
    return i % 3;
}

/* ---- echo: a few conversations, on one and two shards, every backend ---- */

static struct sc_future echo_story(void *cap)
{
    (void)cap;
    T_CHECK(!strcmp(sc_net_stack_name(), "posix"), "the posix stack (%s)", sc_net_stack_name());
    struct sc_inet_addr at = srv_start(SRV_ECHO, false);
    for (int k = 0; k < 3; k++) {
        struct sc_conn *c = dial(at);
        struct sc_inet_addr peer = sc_conn_peer_addr(c), local = sc_conn_local_addr(c);
        T_CHECK(peer.ip == at.ip && peer.port == at.port, "peer %s", addr_str(peer));
        T_CHECK(local.ip == LOOPBACK && local.port != 0, "local %s", addr_str(local));
        echo_talk(c, k, 60, k == 0 ? 1 : 20);
        finish(c);
    }
    srv_stop();
    unsigned served = 0;
    for (unsigned i = 0; i < sc_shard_count(); i++)
        served += srv[i].served;
    T_CHECK(served == 3, "3 connections served (%u)", served);
    return sc_make_ready(0);
}

START_TEST(echo_over_loopback)
{
    tr_reset();
    run_net(1 + (unsigned)_i / 3, (unsigned)bi_of(_i), echo_story);
}
END_TEST

/* ---- many connections at once ---- */

#define MANY 200
static int many_done;

static struct sc_future many_client(void *cap)
{
    int id = *(int *)cap;
    struct sc_conn *c = dial(srv_opts.addr);
    echo_talk(c, id, 5, 5);
    finish(c);
    many_done++;
    return sc_make_ready(0);
}

static struct sc_future many_story(void *cap)
{
    (void)cap;
    srv_start(SRV_ECHO, false);
    many_done = 0;
    struct sc_future fs[MANY];
    struct sc_thread_attr attr = {.stack_size = 32 * 1024};
    for (int i = 0; i < MANY; i++)
        fs[i] = sc_thread_spawn(many_client, &i, sizeof i, &attr);
    T_CHECK(aw(sc_when_all_succeed(fs, MANY)) == 0, "every client");
    T_CHECK(many_done == MANY, "%d of %d clients done", many_done, MANY);
    srv_stop();
    unsigned served = 0;
    for (unsigned i = 0; i < sc_shard_count(); i++)
        served += srv[i].served;
    T_CHECK(served == MANY, "%u served", served);
    return sc_make_ready(0);
}

START_TEST(many_connections)
{
    tr_reset();
    run_net(2, (unsigned)bi_of(_i), many_story);
}
END_TEST

/* ---- spreading connections: SO_REUSEPORT and accept-and-forward ---- */

static struct sc_future spread_story(void *cap)
{
    bool forward = *(bool *)cap;
    struct sc_inet_addr at = srv_start(SRV_ID, forward);
    unsigned per[MAXSH] = {0};
    char line[32];
    for (int i = 0; i < 40; i++) {
        struct sc_conn *c = dial(at);
        T_CHECK(get_line(c, line, sizeof line) > 0, "an answer");
        unsigned sh = 99;
        T_CHECK(sscanf(line, "shard %u", &sh) == 1 && sh < sc_shard_count(), "\"%s\"", line);
        per[sh]++;
        T_CHECK(aw(sc_istream_read(sc_conn_input(c))) == 0, "then end of stream");
        T_CHECK(aw(sc_conn_close(c)) == 0, "close");
    }
    srv_stop();
    tr_step("%s: shard 0 got %u, shard 1 got %u", forward ? "forward" : "reuseport", per[0],
            per[1]);
    if (forward)
        T_CHECK(per[0] == 20 && per[1] == 20, "round robin gives 20 each (%u, %u)", per[0], per[1]);
    else
        T_CHECK(per[0] + per[1] == 40 && per[0] && per[1], "the kernel spread them (%u, %u)",
                per[0], per[1]);
    T_CHECK(srv[0].served == per[0] && srv[1].served == per[1], "each shard served its own");
    return sc_make_ready(0);
}

static bool spread_forward;
static struct sc_future spread_body(void *cap)
{
    (void)cap;
    return spread_story(&spread_forward);
}

START_TEST(both_accept_modes)
{
    tr_reset();
    spread_forward = _i % 2;
    run_net(2, (unsigned)(_i / 2), spread_body);
}
END_TEST

/* ---- half-close, big writes ---- */

static struct sc_future half_close_story(void *cap)
{
    (void)cap;
    struct sc_inet_addr at = srv_start(SRV_COUNT, false);
    static char big[3 << 20];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 2654435761u >> 13);
    struct sc_conn *c = dial(at);
    struct sc_ostream *out = sc_conn_output(c);
    uint64_t h = FNV0, total = 0;
    /* small writes, a big uncopied one, a few more small ones */
    for (int i = 0; i < 1000; i++) {
        T_CHECK(aw(sc_ostream_write(out, big + i * 7, 7)) == 0, "small %d", i);
        h = fnv(h, big + i * 7, 7);
        total += 7;
    }
    T_CHECK(aw(sc_ostream_write(out, big, sizeof big)) == 0, "3 MiB at once");
    h = fnv(h, big, sizeof big);
    total += sizeof big;
    T_CHECK(aw(sc_ostream_write_str(out, "tail")) == 0, "tail");
    h = fnv(h, "tail", 4);
    total += 4;
    T_CHECK(out->sink_writes < 20, "batched: %llu sink writes",
            (unsigned long long)out->sink_writes);
    T_CHECK(aw(sc_conn_shutdown_output(c)) == 0, "half-close: the server reads end of stream");
    T_CHECK(aw(sc_ostream_write(out, "x", 1)) == -EPIPE, "no writing after the half-close");
    char line[64], want[64];
    snprintf(want, sizeof want, "%llu %llx", (unsigned long long)total, (unsigned long long)h);
    T_CHECK(get_line(c, line, sizeof line) > 0 && !strcmp(line, want),
            "we can still read: \"%s\", expected \"%s\"", line, want);
    T_CHECK(aw(sc_istream_read(sc_conn_input(c))) == 0, "then end of stream");
    T_CHECK(aw(sc_conn_close(c)) == 0, "close");
    srv_stop();
    return sc_make_ready(0);
}

START_TEST(half_close_and_big_writes)
{
    tr_reset();
    run_net(1 + (unsigned)_i / 3, (unsigned)bi_of(_i), half_close_story);
}
END_TEST

/* ---- a peer that resets ---- */

static struct sc_future reset_story(void *cap)
{
    (void)cap;
    /* our server side, their client resets */
    struct sc_server_socket *s;
    struct sc_listen_opts o = {.addr = {LOOPBACK, 0}};
    T_CHECK(sc_listen(&o, &s) == 0, "listen");
    int raw = raw_connect(sc_server_local_addr(s).port);
    struct sc_conn *c = (struct sc_conn *)aw(sc_accept(s));
    T_CHECK((intptr_t)c > 0, "accepted");
    T_CHECK(write(raw, "hi\n", 3) == 3, "raw write");
    T_CHECK(aw(sc_istream_read_until(sc_conn_input(c), '\n', 0)) == 3, "hi");
    sc_istream_consume(sc_conn_input(c), 3);
    raw_reset(raw);
    tr_step("the peer reset");
    T_CHECK(aw(sc_istream_read(sc_conn_input(c))) == -ECONNRESET, "read: -ECONNRESET");
    static char big[1 << 20];
    intptr_t w = aw(sc_ostream_write(sc_conn_output(c), big, sizeof big));
    T_CHECK(w == -EPIPE || w == -ECONNRESET, "write: %ld", (long)w);
    T_CHECK(aw(sc_conn_close(c)) == 0, "close");
    sc_server_close(s);

    /* our client side, their server resets */
    uint16_t port;
    int lfd = raw_listen(0, &port);
    struct sc_inet_addr to = {LOOPBACK, port};
    c = dial(to);
    int afd = accept(lfd, NULL, NULL);
    T_CHECK(afd >= 0, "raw accept");
    struct sc_future rd = sc_istream_read(sc_conn_input(c));
    T_CHECK(!sc_future_available(rd), "a read waits for data");
    raw_reset(afd);
    T_CHECK(aw(rd) == -ECONNRESET, "the waiting read: -ECONNRESET");
    T_CHECK(aw(sc_istream_read(sc_conn_input(c))) == -ECONNRESET, "sticky");
    T_CHECK(aw(sc_conn_close(c)) == 0, "close");
    close(lfd);
    return sc_make_ready(0);
}

START_TEST(peer_reset)
{
    tr_reset();
    run_net(1, (unsigned)bi_of(_i), reset_story);
}
END_TEST

/* ---- refused, in use, bad input ---- */

static struct sc_future errors_story(void *cap)
{
    (void)cap;
    struct sc_inet_addr to = {LOOPBACK, free_port()};
    T_CHECK(aw(sc_connect(&to)) == -ECONNREFUSED, "nobody listens: -ECONNREFUSED");
    to.port = 0;
    T_CHECK(aw(sc_connect(&to)) == -EINVAL, "port 0");
    T_CHECK(aw(sc_connect(NULL)) == -EINVAL, "NULL");

    uint16_t port;
    int raw = raw_listen(0, &port);
    struct sc_server_socket *s = NULL, *s2 = NULL;
    struct sc_listen_opts o = {.addr = {LOOPBACK, port}, .reuse_addr = true};
    T_CHECK(sc_listen(&o, &s) == -EADDRINUSE && !s, "taken by another socket: -EADDRINUSE");
    o.accept_and_forward = true;
    T_CHECK(sc_listen(&o, &s) == -EADDRINUSE, "forward mode too");
    close(raw);
    o.accept_and_forward = false;
    T_CHECK(sc_listen(&o, &s) == 0, "free again");
    T_CHECK(sc_listen(&o, &s2) == -EADDRINUSE, "this shard listens there already");
    o.addr.ip = 0;
    T_CHECK(sc_listen(&o, &s2) == -EADDRINUSE, "...on any address too");
    sc_server_close(s);
    o.addr.ip = LOOPBACK;
    o.accept_and_forward = true;
    T_CHECK(sc_listen(&o, &s) == 0, "forward mode");
    T_CHECK(sc_listen(&o, &s2) == -EADDRINUSE, "twice on one shard");
    sc_server_close(s);

    T_CHECK(sc_listen(NULL, &s) == -EINVAL, "no options");
    T_CHECK(sc_listen(&o, NULL) == -EINVAL, "no out");
    o.backlog = -1;
    T_CHECK(sc_listen(&o, &s) == -EINVAL, "negative backlog");
    T_CHECK(aw(sc_accept(NULL)) == -EINVAL, "accept NULL");
    sc_server_close(NULL);
    T_CHECK(aw(sc_conn_close(NULL)) == -EINVAL, "close NULL");
    T_CHECK(sc_conn_set_nodelay(NULL, true) == -EINVAL, "nodelay NULL");
    T_CHECK(sc_conn_input(NULL) == NULL && sc_conn_output(NULL) == NULL, "streams of NULL");
    return sc_make_ready(0);
}

START_TEST(refused_in_use_bad_input)
{
    tr_reset();
    run_net(1, (unsigned)bi_of(_i), errors_story);
}
END_TEST

/* ---- accept after close ---- */

static struct sc_future accept_close_story(void *cap)
{
    (void)cap;
    for (int forward = 0; forward < 2; forward++) {
        struct sc_server_socket *s;
        struct sc_listen_opts o = {
            .addr = {LOOPBACK, 0}, .reuse_addr = true, .accept_and_forward = forward};
        T_CHECK(sc_listen(&o, &s) == 0, "listen");
        struct sc_inet_addr at = sc_server_local_addr(s);
        tr_step("listening on %s (forward %d)", addr_str(at), forward);
        struct sc_future f = sc_accept(s);
        T_CHECK(!sc_future_available(f), "accept waits");
        T_CHECK(aw(sc_accept(s)) == -EBUSY, "a second accept: -EBUSY");
        sc_server_close(s);
        T_CHECK(aw(f) == -ECONNABORTED, "closed under the accept: -ECONNABORTED");
        T_CHECK(aw(sc_connect(&at)) == -ECONNREFUSED, "nobody listens any more");
        o.addr = at;
        T_CHECK(sc_listen(&o, &s) == 0, "the same port again");
        struct sc_conn *c = dial(at);
        struct sc_conn *a = (struct sc_conn *)aw(sc_accept(s));
        T_CHECK((intptr_t)a > 0, "accepted");
        struct sc_inet_addr ap = sc_conn_peer_addr(a), cl = sc_conn_local_addr(c);
        T_CHECK(ap.ip == cl.ip && ap.port == cl.port, "each end sees the other (%s, %s)",
                addr_str(ap), addr_str(cl));
        T_CHECK(sc_conn_set_nodelay(a, false) == 0 && sc_conn_set_nodelay(a, true) == 0, "nodelay");
        T_CHECK(sc_conn_set_keepalive(c, true) == 0, "keepalive");
        T_CHECK(aw(sc_conn_close(a)) == 0 && aw(sc_conn_close(c)) == 0, "both closed");
        sc_server_close(s);
    }
    return sc_make_ready(0);
}

START_TEST(accept_after_close)
{
    tr_reset();
    run_net(1, (unsigned)bi_of(_i), accept_close_story);
}
END_TEST

/* ---- closing under a waiting read and a waiting write ---- */

static struct sc_future close_waiting_story(void *cap)
{
    (void)cap;
    uint16_t port;
    int lfd = raw_listen(0, &port); /* never accepts: nothing is read at the other end */
    struct sc_inet_addr to = {LOOPBACK, port};
    struct sc_conn *c = dial(to);
    struct sc_future rd = sc_istream_read(sc_conn_input(c));
    static char big[64 << 20];
    struct sc_future wr = sc_ostream_write(sc_conn_output(c), big, sizeof big);
    T_CHECK(!sc_future_available(rd) && !sc_future_available(wr), "a read and a 64 MiB write wait");
    struct sc_future cl = sc_conn_close(c);
    T_CHECK(aw(sc_conn_close(c)) == -EALREADY, "closing twice: -EALREADY");
    T_CHECK(aw(rd) == -ECONNABORTED, "the read: -ECONNABORTED");
    T_CHECK(aw(wr) == -ECONNABORTED, "the write: -ECONNABORTED");
    T_CHECK(aw(cl) == 0, "the close");
    close(lfd);
    return sc_make_ready(0);
}

START_TEST(close_under_waiting_read_and_write)
{
    tr_reset();
    run_net(1, (unsigned)bi_of(_i), close_waiting_story);
}
END_TEST

/* ---- read_until over a slow writer ---- */

static uint16_t slow_port;

static void *slow_writer(void *arg)
{
    (void)arg;
    int fd = raw_connect(slow_port);
    char line[32];
    for (int i = 0; i < 20; i++) {
        int len = snprintf(line, sizeof line, "slow line %d\n", i);
        for (int k = 0; k < len; k++) {
            ssize_t w = write(fd, line + k, 1);
            (void)w;
            usleep(50);
        }
    }
    ssize_t w = write(fd, "no newline", 10);
    (void)w;
    close(fd);
    return NULL;
}

static struct sc_future slow_story(void *cap)
{
    (void)cap;
    struct sc_server_socket *s;
    struct sc_listen_opts o = {.addr = {LOOPBACK, 0}};
    T_CHECK(sc_listen(&o, &s) == 0, "listen");
    slow_port = sc_server_local_addr(s).port;
    pthread_t t;
    T_CHECK(pthread_create(&t, NULL, slow_writer, NULL) == 0, "writer thread");
    struct sc_conn *c = (struct sc_conn *)aw(sc_accept(s));
    char line[32], want[32];
    for (int i = 0; i < 20; i++) {
        snprintf(want, sizeof want, "slow line %d", i);
        T_CHECK(get_line(c, line, sizeof line) > 0 && !strcmp(line, want), "\"%s\"", line);
    }
    T_CHECK(aw(sc_istream_read_until(sc_conn_input(c), '\n', 0)) == SC_EEOF,
            "the last line ends without a newline: SC_EEOF");
    size_t have;
    const char *p = sc_istream_data(sc_conn_input(c), &have);
    T_CHECK(have == 10 && !memcmp(p, "no newline", 10), "it stays buffered");
    T_CHECK(aw(sc_conn_close(c)) == 0, "close");
    sc_server_close(s);
    pthread_join(t, NULL); /* it has written everything: this does not block */
    return sc_make_ready(0);
}

START_TEST(read_until_over_a_slow_writer)
{
    tr_reset();
    run_net(1, (unsigned)bi_of(_i), slow_story);
}
END_TEST

/* ---- UDP ---- */

static struct sc_future udp_story(void *cap)
{
    (void)cap;
    struct sc_udp_chan *a, *b;
    struct sc_inet_addr lo = {LOOPBACK, 0};
    T_CHECK(sc_udp_open(&lo, &a) == 0 && sc_udp_open(&lo, &b) == 0, "two channels");
    struct sc_inet_addr aa = sc_udp_local_addr(a), ba = sc_udp_local_addr(b);
    T_CHECK(aa.port && ba.port && aa.port != ba.port, "%s, %s", addr_str(aa), addr_str(ba));
    struct sc_future r = sc_udp_recv(b);
    T_CHECK(!sc_future_available(r), "nothing yet: the receive waits");
    T_CHECK(aw(sc_udp_recv(b)) == -EBUSY, "a second receive: -EBUSY");
    T_CHECK(aw(sc_udp_send(a, &ba, "hello", 5)) == 0, "send");
    struct sc_datagram *d = (struct sc_datagram *)aw(r);
    T_CHECK((intptr_t)d > 0 && d->len == 5 && !memcmp(d->data, "hello", 5), "received");
    T_CHECK(d->from.ip == LOOPBACK && d->from.port == aa.port, "from %s", addr_str(d->from));
    sc_datagram_free(d);

    static char big[65508];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)i;
    T_CHECK(aw(sc_udp_send(b, &aa, big, 65507)) == 0, "the largest datagram");
    d = (struct sc_datagram *)aw(sc_udp_recv(a));
    T_CHECK((intptr_t)d > 0 && d->len == 65507 && !memcmp(d->data, big, 65507), "intact");
    sc_datagram_free(d);
    T_CHECK(aw(sc_udp_send(b, &aa, big, 65508)) == -EMSGSIZE, "one byte more: -EMSGSIZE");
    struct sc_inet_addr nowhere = {LOOPBACK, 0};
    T_CHECK(aw(sc_udp_send(b, &nowhere, "x", 1)) == -EINVAL, "to port 0");
    T_CHECK(aw(sc_udp_send(b, &aa, "", 0)) == 0, "an empty datagram");
    d = (struct sc_datagram *)aw(sc_udp_recv(a));
    T_CHECK((intptr_t)d > 0 && d->len == 0, "received empty");
    sc_datagram_free(d);

    for (int i = 0; i < 100; i++) {
        char m[16];
        int len = snprintf(m, sizeof m, "dgram %d", i);
        T_CHECK(aw(sc_udp_send(a, &ba, m, (size_t)len)) == 0, "send %d", i);
    }
    for (int i = 0; i < 100; i++) {
        char m[16];
        int len = snprintf(m, sizeof m, "dgram %d", i);
        d = (struct sc_datagram *)aw(sc_udp_recv(b));
        T_CHECK((intptr_t)d > 0 && d->len == (size_t)len && !memcmp(d->data, m, (size_t)len),
                "datagram %d", i);
        sc_datagram_free(d);
    }
    r = sc_udp_recv(a);
    sc_udp_close(a);
    T_CHECK(aw(r) == -ECONNABORTED, "closed under the receive: -ECONNABORTED");
    sc_udp_close(b);
    T_CHECK(sc_udp_open(&lo, NULL) == -EINVAL, "no out");
    return sc_make_ready(0);
}

START_TEST(udp)
{
    tr_reset();
    run_net(1, (unsigned)bi_of(_i), udp_story);
}
END_TEST

/* ---- a socket the app forgot is closed when the run ends ---- */

static struct sc_future forgotten_story(void *cap)
{
    (void)cap;
    struct sc_server_socket *s;
    struct sc_listen_opts o = {.addr = {LOOPBACK, 0}, .accept_and_forward = true};
    T_CHECK(sc_listen(&o, &s) == 0, "listen");
    struct sc_conn *c = dial(sc_server_local_addr(s));
    (void)c;
    struct sc_udp_chan *u;
    struct sc_inet_addr lo = {LOOPBACK, 0};
    T_CHECK(sc_udp_open(&lo, &u) == 0, "udp");
    return sc_make_ready(0); /* run_net checks that their fds went */
}

START_TEST(forgotten_sockets_are_closed)
{
    tr_reset();
    run_net(2, (unsigned)bi_of(_i), forgotten_story);
    run_net(2, (unsigned)bi_of(_i), accept_close_story); /* and the next run starts clean */
}
END_TEST

/* ---- the native stack is not built yet ---- */

static struct sc_future native_story(void *cap)
{
    (void)cap;
    struct sc_server_socket *s;
    struct sc_listen_opts o = {.addr = {LOOPBACK, 0}};
    T_CHECK(sc_listen(&o, &s) == -ENOSYS, "listen: -ENOSYS");
    struct sc_inet_addr to = {LOOPBACK, 9};
    T_CHECK(aw(sc_connect(&to)) == -ENOSYS, "connect: -ENOSYS");
    struct sc_udp_chan *u;
    T_CHECK(sc_udp_open(NULL, &u) == -ENOSYS, "udp: -ENOSYS");
    T_CHECK(!strcmp(sc_net_stack_name(), "none"), "no stack");
    return sc_make_ready(0);
}

START_TEST(native_stack_is_enosys)
{
    tr_reset();
    stack_choice = SC_NET_NATIVE;
    run_net(1, 1, native_story);
    stack_choice = SC_NET_POSIX;
}
END_TEST

/* ---- addresses (no run needed) ---- */

START_TEST(address_parse_and_format)
{
    tr_reset();
    struct sc_inet_addr a;
    char buf[24];
    T_CHECK(sc_inet_addr_parse("127.0.0.1:8080", &a) == 0 && a.ip == LOOPBACK && a.port == 8080,
            "a.b.c.d:port");
    T_CHECK(!strcmp(sc_inet_addr_format(&a, buf, sizeof buf), "127.0.0.1:8080"), "%s", buf);
    T_CHECK(sc_inet_addr_parse("10.1.2.3", &a) == 0 && a.ip == 0x0a010203 && a.port == 0,
            "no port");
    T_CHECK(sc_inet_addr_parse(":11211", &a) == 0 && a.ip == 0 && a.port == 11211, ":port");
    T_CHECK(sc_inet_addr_parse("255.255.255.255:65535", &a) == 0 && a.ip == 0xffffffffu &&
                a.port == 65535,
            "the largest");
    T_CHECK(!strcmp(sc_inet_addr_format(&a, buf, sizeof buf), "255.255.255.255:65535"),
            "fits in 24 bytes");
    static const char *const bad[] = {"",
                                      "1.2.3",
                                      "1.2.3.4.5",
                                      "256.1.1.1",
                                      "1.2.3.4:",
                                      ":",
                                      ":65536",
                                      "1.2.3.4:x",
                                      "a.b.c.d",
                                      "1..2.3",
                                      " 1.2.3.4",
                                      "1.2.3.4 ",
                                      "1.2.3.4:80x",
                                      "1234.1.1.1",
                                      "-1.2.3.4",
                                      "1.2.3.4:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        T_CHECK(sc_inet_addr_parse(bad[i], &a) == -EINVAL, "\"%s\" is malformed", bad[i]);
    T_CHECK(sc_inet_addr_parse(NULL, &a) == -EINVAL &&
                sc_inet_addr_parse("1.2.3.4", NULL) == -EINVAL,
            "NULL");
    T_CHECK(sc_inet_addr_format(&a, buf, 5) == buf && strlen(buf) == 4, "truncated, terminated");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("net");
    TCase *addr = tcase_create("addr");
    tcase_add_test(addr, address_parse_and_format);
    suite_add_tcase(s, addr);
    TCase *tc = tcase_create("posix");
    tcase_set_timeout(tc, 120);
    /* _i: the backend is _i % 3; where it varies, --smp is 1 + _i / 3 */
    tcase_add_loop_test(tc, echo_over_loopback, 0, 6);
    tcase_add_loop_test(tc, many_connections, 0, 3);
    tcase_add_loop_test(tc, both_accept_modes, 0, 6);
    tcase_add_loop_test(tc, half_close_and_big_writes, 0, 6);
    tcase_add_loop_test(tc, peer_reset, 0, 3);
    tcase_add_loop_test(tc, refused_in_use_bad_input, 0, 3);
    tcase_add_loop_test(tc, accept_after_close, 0, 3);
    tcase_add_loop_test(tc, close_under_waiting_read_and_write, 0, 3);
    tcase_add_loop_test(tc, read_until_over_a_slow_writer, 0, 3);
    tcase_add_loop_test(tc, udp, 0, 3);
    tcase_add_loop_test(tc, forgotten_sockets_are_closed, 0, 3);
    tcase_add_test(tc, native_stack_is_enosys);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
