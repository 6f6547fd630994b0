/*
 * bench_memcached.c — seacore-memcached beside Debian's memcached, one core
 * each, driven by the same loader in the same run.
 *
 * Each server runs on one CPU (seacore-memcached --smp 1 --cpuset A;
 * memcached -t 1, pinned to A with sched_setaffinity before exec) and this
 * program, the loader, runs on another CPU B: one thread, epoll, many
 * connections, each keeping `depth` requests in flight (pipelined gets and
 * sets over a fixed set of keys, 90% gets by default). A loader this cheap
 * (requests are precomputed, replies are counted by scanning for their
 * last line) keeps a one-core server busy; whether it did is visible in the
 * server's CPU use, which is measured too: the server's utime + stime from
 * /proc/PID/stat over the timed window, divided by the requests answered.
 * That figure — server CPU per request — is the fair one when a loader
 * cannot saturate a server, and the one the target is about.
 *
 * Rounds alternate the servers (seacore, memcached, seacore, ...) so that
 * both see the same machine; values are medians of the rounds.
 *
 *   BENCH name=memcached.requests value=<Kreq/s> unit=Kreq/s peer=memcached.t1 ...
 *   BENCH name=memcached.server_cpu_per_request value=<ns> unit=ns/req peer=memcached.t1 ...
 *
 * Options: --quick (short rounds, for tests), --rounds N, --seconds S,
 * --conns N, --depth N, --keys N, --value-size N, --get-percent P,
 * --server-cpu A, --loader-cpu B, --no-peer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_util.h"

static int rounds = 5, conns = 32, depth = 16, keys = 10000, value_size = 32, get_pct = 90;
static double seconds = 3.0;
static int server_cpu = -1, loader_cpu = -1;
static bool quick, no_peer;

/* ---- the servers ---- */

struct server {
    const char *name;
    pid_t pid;
    int port;
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bench_memcached: free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Start argv (which listens on s->port) on the server CPU; wait until it accepts. */
static bool start_server(struct server *s, char *const argv[])
{
    s->pid = fork();
    if (s->pid == 0) {
        if (server_cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(server_cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) { /* up to 10 s */
        int fd = connect_to(s->port);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid)
            return false;
        usleep(50000);
    }
    return false;
}

static void stop_server(struct server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

/* utime + stime of a process, in seconds (all its threads). */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return 0;
    unsigned long long ut = 0, st = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the loader ---- */

static char *reqs;      /* precomputed requests, back to back */
static size_t *req_off; /* where request i starts; req_off[nreq] = the end */
static int nreq;

static void make_requests(void)
{
    nreq = 8192;
    req_off = calloc((size_t)nreq + 1, sizeof *req_off);
    size_t cap = (size_t)nreq * (64 + (size_t)value_size);
    reqs = malloc(cap);
    char *value = malloc((size_t)value_size + 1);
    memset(value, 'v', (size_t)value_size);
    value[value_size] = 0;
    size_t n = 0;
    unsigned seed = 12345;
    for (int i = 0; i < nreq; i++) {
        req_off[i] = n;
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 8) % (unsigned)keys);
        if ((int)((seed >> 4) % 100) < get_pct)
            n += (size_t)sprintf(reqs + n, "get key:%08d\r\n", k);
        else
            n += (size_t)sprintf(reqs + n, "set key:%08d 0 0 %d\r\n%s\r\n", k, value_size, value);
    }
    req_off[nreq] = n;
    free(value);
}

struct lconn {
    int fd;
    int next; /* next request index */
    int inflight;
    char *out; /* bytes to send */
    size_t out_len, out_sent, out_cap;
    char in[65536];
    size_t in_len;
    size_t skip; /* value bytes still to skip */
    bool want_out;
};

/* Queue requests until `depth` are in flight. */
static void refill(struct lconn *c)
{
    while (c->inflight < depth) {
        size_t len = req_off[c->next + 1] - req_off[c->next];
        if (c->out_len + len > c->out_cap) {
            c->out_cap = 2 * (c->out_len + len);
            c->out = realloc(c->out, c->out_cap);
        }
        memcpy(c->out + c->out_len, reqs + req_off[c->next], len);
        c->out_len += len;
        c->next = (c->next + 1) % nreq;
        c->inflight++;
    }
}

/* Count complete replies in the input: END (a get) and STORED (a set). */
static uint64_t parse(struct lconn *c)
{
    uint64_t done = 0;
    size_t i = 0;
    for (;;) {
        if (c->skip) {
            size_t take = c->in_len - i < c->skip ? c->in_len - i : c->skip;
            i += take;
            c->skip -= take;
            if (c->skip)
                break;
        }
        char *nl = memchr(c->in + i, '\n', c->in_len - i);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (c->in + i)) + 1;
        if (len >= 5 && memcmp(c->in + i, "VALUE", 5) == 0) {
            unsigned bytes = 0;
            char *sp = memrchr(c->in + i, ' ', len);
            bytes = (unsigned)strtoul(sp + 1, NULL, 10);
            c->skip = bytes + 2;
        } else if (len >= 3 &&
                   (memcmp(c->in + i, "END", 3) == 0 || memcmp(c->in + i, "STORED", 6) == 0)) {
            done++;
        } else {
            fprintf(stderr, "bench_memcached: unexpected reply: %.*s", (int)len, c->in + i);
            exit(1);
        }
        i += len;
    }
    memmove(c->in, c->in + i, c->in_len - i);
    c->in_len -= i;
    c->inflight -= (int)done;
    return done;
}

static void flush_out(struct lconn *c, int ep)
{
    while (c->out_sent < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN)
                break;
            perror("bench_memcached: send");
            exit(1);
        }
        c->out_sent += (size_t)w;
    }
    if (c->out_sent == c->out_len)
        c->out_sent = c->out_len = 0;
    bool want = c->out_len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
}

/* Drive the server for `secs` seconds after `warm` seconds; requests answered in the window. */
static uint64_t load(struct server *s, double warm, double secs, double *cpu)
{
    int ep = epoll_create1(0);
    struct lconn *cs = calloc((size_t)conns, sizeof *cs);
    for (int i = 0; i < conns; i++) {
        cs[i].fd = connect_to(s->port);
        if (cs[i].fd < 0) {
            fprintf(stderr, "bench_memcached: cannot connect to %s\n", s->name);
            exit(1);
        }
        fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
        cs[i].next = (int)((size_t)i * (size_t)nreq / (size_t)conns);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
        refill(&cs[i]);
        flush_out(&cs[i], ep);
    }
    uint64_t t0 = now_ns(), start = t0 + (uint64_t)(warm * 1e9),
             end = start + (uint64_t)(secs * 1e9);
    uint64_t done = 0, counted = 0;
    bool measuring = false;
    double cpu0 = 0;
    struct epoll_event evs[256];
    for (;;) {
        uint64_t t = now_ns();
        if (!measuring && t >= start) {
            measuring = true;
            counted = done;
            cpu0 = cpu_seconds(s->pid);
        }
        if (t >= end)
            break;
        int n = epoll_wait(ep, evs, 256, 10);
        for (int e = 0; e < n; e++) {
            struct lconn *c = evs[e].data.ptr;
            if (evs[e].events & EPOLLIN) {
                for (;;) {
                    ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
                    if (r > 0) {
                        c->in_len += (size_t)r;
                        done += parse(c);
                        if (c->in_len == sizeof c->in) {
                            fprintf(stderr, "bench_memcached: a reply line too long\n");
                            exit(1);
                        }
                        continue;
                    }
                    if (r == 0 || errno != EAGAIN) {
                        fprintf(stderr, "bench_memcached: %s closed a connection\n", s->name);
                        exit(1);
                    }
                    break;
                }
                refill(c);
            }
            flush_out(c, ep);
        }
    }
    *cpu = cpu_seconds(s->pid) - cpu0;
    for (int i = 0; i < conns; i++) {
        close(cs[i].fd);
        free(cs[i].out);
    }
    free(cs);
    close(ep);
    return done - counted;
}

/* Fill the cache so that gets hit. */
static void preload(struct server *s)
{
    int fd = connect_to(s->port);
    char *value = malloc((size_t)value_size + 1);
    memset(value, 'v', (size_t)value_size);
    value[value_size] = 0;
    char line[256];
    for (int k = 0; k < keys; k++) {
        int n = snprintf(line, sizeof line, "set key:%08d 0 0 %d noreply\r\n", k, value_size);
        if (write(fd, line, (size_t)n) != n || write(fd, value, (size_t)value_size) != value_size ||
            write(fd, "\r\n", 2) != 2) {
            perror("bench_memcached: preload");
            exit(1);
        }
    }
    /* a last request with a reply: everything before it is stored */
    if (write(fd, "get key:00000000\r\n", 18) != 18)
        exit(1);
    char buf[4096];
    size_t have = 0;
    while (have < 5 || memcmp(buf + have - 5, "END\r\n", 5) != 0) {
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        if (have == sizeof buf)
            have = 0;
    }
    close(fd);
    free(value);
}

static void usage(void)
{
    printf(
        "usage: bench_memcached [--quick] [--rounds N] [--seconds S] [--conns N] [--depth N]\n"
        "       [--keys N] [--value-size N] [--get-percent P] [--server-cpu A] [--loader-cpu B]\n"
        "       [--no-peer]\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
#define OPT(name, var, conv)                                                                       \
    if (strcmp(a, name) == 0) {                                                                    \
        var = conv(v);                                                                             \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        if (strcmp(a, "--quick") == 0) {
            quick = true;
            continue;
        }
        if (strcmp(a, "--no-peer") == 0) {
            no_peer = true;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        OPT("--rounds", rounds, atoi)
        OPT("--seconds", seconds, atof)
        OPT("--conns", conns, atoi)
        OPT("--depth", depth, atoi)
        OPT("--keys", keys, atoi)
        OPT("--value-size", value_size, atoi)
        OPT("--get-percent", get_pct, atoi)
        OPT("--server-cpu", server_cpu, atoi)
        OPT("--loader-cpu", loader_cpu, atoi)
#undef OPT
        usage();
        return 2;
    }
    if (quick) {
        rounds = 1;
        seconds = 0.3;
        conns = 8;
        keys = 1000;
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || conns < 1 || depth < 1 || keys < 1 || value_size < 1 ||
        value_size > 100000) {
        usage();
        return 2;
    }
    /* the first two CPUs we may use: the server's, then the loader's */
    cpu_set_t mine;
    sched_getaffinity(0, sizeof mine, &mine);
    for (int c = 0; c < CPU_SETSIZE && (server_cpu < 0 || loader_cpu < 0); c++)
        if (CPU_ISSET(c, &mine)) {
            if (server_cpu < 0)
                server_cpu = c;
            else if (loader_cpu < 0 && c != server_cpu)
                loader_cpu = c;
        }
    if (loader_cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(loader_cpu, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    signal(SIGPIPE, SIG_IGN);
    make_requests();

    /* seacore-memcached sits in ../bin beside this program's folder */
    char self[4096], ours[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    snprintf(ours, sizeof ours, "%s/../bin/seacore-memcached", self);
    char cpu_arg[16], port_a[16], port_b[16];
    snprintf(cpu_arg, sizeof cpu_arg, "%d", server_cpu);

    struct server srv[2] = {{.name = "seacore-memcached"}, {.name = "memcached.t1"}};
    bool peer = !no_peer && access("/usr/bin/memcached", X_OK) == 0;
    if (!peer && !no_peer)
        fprintf(stderr, "bench_memcached: no /usr/bin/memcached (apt install memcached): "
                        "seacore alone\n");
    int nsrv = peer ? 2 : 1;
    double rps[2][MAX_ROUNDS], cpr[2][MAX_ROUNDS], busy[2][MAX_ROUNDS];
    for (int s = 0; s < nsrv; s++) {
        srv[s].port = free_port();
        snprintf(s == 0 ? port_a : port_b, 16, "%d", srv[s].port);
        char *const a0[] = {ours,       "--backend", "real",   "--smp", "1",
                            "--cpuset", cpu_arg,     "--port", port_a,  "--memory-limit",
                            "1024",     "--quiet",   NULL};
        char *const a1[] = {"/usr/bin/memcached",
                            "-t",
                            "1",
                            "-p",
                            port_b,
                            "-l",
                            "127.0.0.1",
                            "-U",
                            "0",
                            "-m",
                            "1024",
                            "-c",
                            "4096",
                            "-u",
                            "root",
                            NULL};
        if (!start_server(&srv[s], s == 0 ? a0 : a1)) {
            fprintf(stderr, "bench_memcached: %s did not start\n", srv[s].name);
            stop_server(&srv[0]);
            stop_server(&srv[1]);
            return 1;
        }
        preload(&srv[s]);
    }
    double warm = quick ? 0.1 : 0.5;
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < nsrv; s++) {
            double cpu = 0;
            uint64_t done = load(&srv[s], warm, seconds, &cpu);
            rps[s][r] = (double)done / seconds;
            cpr[s][r] = done ? cpu * 1e9 / (double)done : 0;
            busy[s][r] = cpu / seconds;
            fprintf(stderr,
                    "bench_memcached: round %d %-18s %9.0f req/s, server CPU %5.1f%%, "
                    "%6.0f ns CPU/request\n",
                    r + 1, srv[s].name, rps[s][r], 100 * busy[s][r], cpr[s][r]);
        }
    for (int s = 0; s < 2; s++)
        stop_server(&srv[s]);

    double a_rps = median(rps[0], rounds), a_cpr = median(cpr[0], rounds);
    if (!peer) {
        printf("BENCH name=memcached.requests value=%.1f unit=Kreq/s\n", a_rps / 1e3);
        printf("BENCH name=memcached.server_cpu_per_request value=%.0f unit=ns/req\n", a_cpr);
        return 0;
    }
    double b_rps = median(rps[1], rounds), b_cpr = median(cpr[1], rounds);
    printf("BENCH name=memcached.requests value=%.1f unit=Kreq/s peer=memcached.t1 "
           "peer_value=%.1f ratio=%.2f\n",
           a_rps / 1e3, b_rps / 1e3, a_rps / b_rps);
    printf("BENCH name=memcached.server_cpu_per_request value=%.0f unit=ns/req peer=memcached.t1 "
           "peer_value=%.0f ratio=%.2f\n",
           a_cpr, b_cpr, a_cpr > 0 ? b_cpr / a_cpr : 0);
    fprintf(
        stderr,
        "bench_memcached: %d conns x %d in flight, %d%% gets, %d keys of %d bytes, %d rounds of "
        "%.1f s; server on CPU %d, loader on CPU %d; server busy (median) %.0f%% / %.0f%%; "
        "target: CPU per request ratio >= 1.5: %s\n",
        conns, depth, get_pct, keys, value_size, rounds, seconds, server_cpu, loader_cpu,
        100 * median(busy[0], rounds), 100 * median(busy[1], rounds),
        a_cpr > 0 && b_cpr / a_cpr >= 1.5 ? "met" : "not met");
    return 0;
}
