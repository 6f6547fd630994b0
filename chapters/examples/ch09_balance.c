/*
 * ch09_balance.c — chapter 9: how evenly do connections spread over the
 * shards? SO_REUSEPORT (the kernel picks a shard by a hash) against
 * accept-and-forward (shard 0 accepts, and deals connections round-robin).
 *
 *   make && build/bin/ch09_balance --backend real [--smp N]
 *        [--connections N] [--rounds N]
 *
 * Every shard listens on 127.0.0.1:PORT and answers each connection with
 * one byte, its shard number, then closes. A client thread outside the
 * shards (plain blocking sockets, like a real client) opens the
 * connections two ways:
 *   one by one  connect, read the byte, close, next;
 *   all at once connect all N, then read every byte (they wait in the
 *               accept queues together).
 * For each way and each mode it counts the connections per shard, over
 * several rounds, and prints the spread (the busiest shard against the
 * mean) and how many connections crossed shards to get there (in
 * accept-and-forward, all but the acceptor's share: a message each way).
 *
 * This is a real-world measurement: the client is an OS thread, which the
 * simulator does not allow. With --backend sim it says so and exits 0.
 * Exit status 0 when every connection got its answer, 1 otherwise.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/seacore.h"
#include "net/net.h"

#define MAX_SHARDS 64

static long nconn = 400;
static long nrounds = 5;

/* ==== the server: one byte, then close ================================== */

static struct sc_listen_opts listen_opts;
static struct sc_server_socket *server[MAX_SHARDS];
static struct sc_gate handlers[MAX_SHARDS];

static struct sc_future answer_closed(void *cap, intptr_t v, int err)
{
    (void)v, (void)err;
    return sc_conn_close(*(struct sc_conn **)cap);
}

static struct sc_future answer(void *cap, intptr_t v)
{
    (void)v;
    struct sc_conn *c = *(struct sc_conn **)cap;
    char id = (char)sc_this_shard();
    struct sc_ostream *out = sc_conn_output(c);
    sc_future_ignore(sc_ostream_write(out, &id, 1)); /* batched: ready */
    return sc_then_wrapped(sc_ostream_close(out), answer_closed, &c, sizeof c);
}

static struct sc_future accepted(void *cap, intptr_t v)
{
    (void)cap;
    struct sc_conn *c = (struct sc_conn *)v;
    sc_future_ignore(sc_with_gate(&handlers[sc_this_shard()], answer, &c, sizeof c));
    return sc_make_ready(0);
}

static struct sc_future accept_step(void *cap)
{
    (void)cap;
    /* the server may have been closed between two accepts (stop_here):
     * a closed socket is freed, so ask before touching it */
    struct sc_server_socket *s = server[sc_this_shard()];
    if (!s)
        return sc_make_error(-ECONNABORTED);
    return sc_then(sc_accept(s), accepted, NULL, 0);
}

static struct sc_future listen_here(void *cap)
{
    (void)cap;
    unsigned me = sc_this_shard();
    int rc = sc_listen(&listen_opts, &server[me]);
    if (rc < 0)
        return sc_make_error(rc);
    sc_gate_init(&handlers[me]);
    sc_future_ignore(sc_keep_doing(accept_step, NULL, 0));
    return sc_make_ready(0);
}

static struct sc_future stop_here(void *cap)
{
    (void)cap;
    sc_server_close(server[sc_this_shard()]);
    server[sc_this_shard()] = NULL;
    return sc_gate_close(&handlers[sc_this_shard()]);
}

/* ==== the client thread ================================================= */

static struct {
    uint16_t port;
    bool all_at_once;
    unsigned count[MAX_SHARDS];
    unsigned failed;
    _Atomic bool done;
} cl;

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static void take_answer(int fd)
{
    unsigned char id;
    if (fd >= 0 && read(fd, &id, 1) == 1 && id < MAX_SHARDS)
        cl.count[id]++;
    else
        cl.failed++;
    if (fd >= 0)
        close(fd);
}

static void *client_thread(void *arg)
{
    (void)arg;
    if (cl.all_at_once) {
        int *fds = malloc((size_t)nconn * sizeof *fds);
        for (long i = 0; i < nconn; i++)
            fds[i] = fds ? dial(cl.port) : -1;
        for (long i = 0; fds && i < nconn; i++)
            take_answer(fds[i]);
        free(fds);
    } else {
        for (long i = 0; i < nconn; i++)
            take_answer(dial(cl.port));
    }
    atomic_store(&cl.done, true);
    return NULL;
}

/* ==== one round, in a fiber on shard 0 ================================== */

struct result {
    double worst_ratio, sum_ratio; /* busiest shard / mean, over the rounds */
    unsigned min_share, max_share; /* fewest and most connections one shard got in a round */
    double crossed; /* connections served by a shard other than the one that accepted them */
    unsigned failed;
};

static int round_trip(bool forward, bool all_at_once, struct result *r, int round)
{
    unsigned n = sc_shard_count();
    listen_opts = (struct sc_listen_opts){
        .addr = {0x7f000001, 0}, .reuse_addr = true, .accept_and_forward = forward};
    int err = sc_await(sc_smp_submit_to(0, listen_here, NULL, 0), NULL);
    if (err)
        return err;
    listen_opts.addr = sc_server_local_addr(server[0]);
    if ((err = sc_await(sc_smp_invoke_on_others(listen_here, NULL, 0), NULL)))
        return err;
    memset(&cl, 0, sizeof cl);
    cl.port = listen_opts.addr.port;
    cl.all_at_once = all_at_once;
    pthread_t t;
    if (pthread_create(&t, NULL, client_thread, NULL) != 0)
        return -EAGAIN;
    while (!atomic_load(&cl.done))
        sc_await(sc_sleep(SC_MS(1)), NULL);
    pthread_join(t, NULL);
    if ((err = sc_await(sc_smp_invoke_on_all(stop_here, NULL, 0), NULL)))
        return err;
    unsigned max = 0, min = UINT32_MAX, total = 0;
    printf("  %-10s %-11s %d |", forward ? "forward" : "reuseport",
           all_at_once ? "all at once" : "one by one", round);
    for (unsigned i = 0; i < n; i++) {
        printf(" %5u", cl.count[i]);
        max = cl.count[i] > max ? cl.count[i] : max;
        min = cl.count[i] < min ? cl.count[i] : min;
        total += cl.count[i];
    }
    double ratio = total ? (double)max * n / total : 0;
    printf(" | %.3f\n", ratio);
    r->worst_ratio = ratio > r->worst_ratio ? ratio : r->worst_ratio;
    r->sum_ratio += ratio;
    r->min_share = min < r->min_share ? min : r->min_share;
    r->max_share = max > r->max_share ? max : r->max_share;
    /* forwarded: everything but shard 0's share went through submit_to (a
     * message there with the fd, and one back) */
    r->crossed += forward && total ? (double)(total - cl.count[0]) / total : 0;
    r->failed += cl.failed;
    return 0;
}

static struct sc_future balance(void *cap)
{
    (void)cap;
    unsigned n = sc_shard_count();
    if (n > MAX_SHARDS) {
        fprintf(stderr, "ch09_balance: at most %d shards\n", MAX_SHARDS);
        return sc_make_ready(2);
    }
    printf("ch09_balance: %ld connections per round, %ld rounds, %u shards, 127.0.0.1\n", nconn,
           nrounds, n);
    printf("  %-10s %-11s r | connections per shard | busiest/mean\n", "mode", "pattern");
    struct result res[2][2];
    unsigned failed = 0;
    for (int fw = 0; fw < 2; fw++)
        for (int all = 0; all < 2; all++) {
            struct result *r = &res[fw][all];
            *r = (struct result){.min_share = UINT32_MAX};
            for (int i = 1; i <= nrounds; i++) {
                int err = round_trip(fw, all, r, i);
                if (err) {
                    fprintf(stderr, "ch09_balance: %s\n", sc_strerror(err));
                    return sc_make_ready(1);
                }
            }
            failed += r->failed;
        }
    printf("summary over %ld rounds (mean share %.1f):\n", nrounds, (double)nconn / n);
    for (int fw = 0; fw < 2; fw++)
        for (int all = 0; all < 2; all++) {
            struct result *r = &res[fw][all];
            printf("  %-10s %-11s busiest/mean: mean %.3f, worst %.3f; one shard got %u..%u; "
                   "%.0f%% crossed shards\n",
                   fw ? "forward" : "reuseport", all ? "all at once" : "one by one",
                   r->sum_ratio / (double)nrounds, r->worst_ratio, r->min_share, r->max_share,
                   100 * r->crossed / (double)nrounds);
        }
    if (failed)
        printf("%u connections got no answer\n", failed);
    return sc_make_ready(failed ? 1 : 0);
}

static struct sc_future balance_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (sc_is_simulated()) {
        printf("ch09_balance: a real-world measurement (its client is an OS thread); "
               "run it with --backend real\n");
        return sc_make_ready(0);
    }
    if (nconn < 1 || nconn > 20000 || nrounds < 1) {
        fprintf(stderr, "ch09_balance: --connections 1..20000, --rounds >= 1\n");
        return sc_make_ready(2);
    }
    return sc_thread_spawn(balance, NULL, 0, NULL);
}

int main(int argc, char **argv)
{
    static const struct sc_app_opt opts[] = {
        {"connections", SC_OPT_INT, &nconn, "N: connections per round (400)"},
        {"rounds", SC_OPT_INT, &nrounds, "N: rounds per mode and pattern (5)"},
        {0},
    };
    return sc_app_run_opts(argc, argv,
                           "Connections per shard: SO_REUSEPORT against accept-and-forward.", opts,
                           balance_main, NULL);
}
