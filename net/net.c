/*
 * net.c — the public entry points of net/net.h: check the arguments, pick
 * the run's stack, forward the call. Also the address helpers.
 *
 * Which stack: in the simulator, the engine's model of the network
 * (sc__sim_engine.net_stack, sim/net.c), so apps and tests run
 * deterministically; in the real world, --network-stack: posix (the
 * kernel's sockets, net/posix.c) or native (the userspace stack, a later
 * issue: every call fails with -ENOSYS and one log line says why).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/memory.h"
#include "core/shard_impl.h"
#include "core/stream_impl.h"
#include "net/net_impl.h"

#define UDP_MAX_PAYLOAD 65507u /* 65535 - 20 (IPv4 header) - 8 (UDP header) */

static const struct sc__net_stack *stack_or(int *err)
{
    struct sc__shard *s = sc__shard();
    if (!s) {
        *err = -EPERM; /* sockets belong to shards */
        return NULL;
    }
    const struct sc__net_stack *st = NULL;
    if (s->engine->simulated)
        st = s->engine->net_stack;
    else if (s->cfg.network_stack == SC_NET_POSIX)
        st = &sc__posix_stack;
    if (!st) {
        static atomic_flag said = ATOMIC_FLAG_INIT;
        if (!atomic_flag_test_and_set(&said))
            sc_log(SC_LOG_ERROR, "net: %s",
                   s->engine->simulated ? "this simulator has no network model"
                                        : "--network-stack native is not built yet "
                                          "(use --network-stack posix)");
        *err = -ENOSYS;
    }
    return st;
}

const char *sc_net_stack_name(void)
{
    int err = 0;
    const struct sc__net_stack *st = stack_or(&err);
    return st ? st->name : "none";
}

/* ---- addresses ---- */

/* Parse up to max decimal digits at *p into *v (at most limit). */
static bool parse_num(const char **p, unsigned max, unsigned long limit, unsigned long *v)
{
    unsigned n = 0;
    unsigned long x = 0;
    while (**p >= '0' && **p <= '9' && n < max) {
        x = x * 10 + (unsigned long)(**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || (**p >= '0' && **p <= '9') || x > limit)
        return false;
    *v = x;
    return true;
}

int sc_inet_addr_parse(const char *s, struct sc_inet_addr *out)
{
    if (!s || !out)
        return -EINVAL;
    struct sc_inet_addr a = {0, 0};
    const char *p = s;
    unsigned long v;
    if (*p != ':') {
        for (int i = 0; i < 4; i++) {
            if (i > 0 && *p++ != '.')
                return -EINVAL;
            if (!parse_num(&p, 3, 255, &v))
                return -EINVAL;
            a.ip = a.ip << 8 | (uint32_t)v;
        }
    }
    if (*p == ':') {
        p++;
        if (!parse_num(&p, 5, 65535, &v))
            return -EINVAL;
        a.port = (uint16_t)v;
    }
    if (*p != '\0')
        return -EINVAL;
    *out = a;
    return 0;
}

char *sc_inet_addr_format(const struct sc_inet_addr *a, char *buf, size_t len)
{
    if (!buf || !len)
        return buf;
    if (!a) {
        snprintf(buf, len, "(null)");
        return buf;
    }
    snprintf(buf, len, "%u.%u.%u.%u:%u", a->ip >> 24, (a->ip >> 16) & 255, (a->ip >> 8) & 255,
             a->ip & 255, a->port);
    return buf;
}

/* ---- TCP ---- */

int sc_listen(const struct sc_listen_opts *opts, struct sc_server_socket **out)
{
    if (!opts || !out || opts->backlog < 0)
        return -EINVAL;
    *out = NULL;
    int err = 0;
    const struct sc__net_stack *st = stack_or(&err);
    return st ? st->listen(opts, out) : err;
}

struct sc_future sc_accept(struct sc_server_socket *s)
{
    if (!s)
        return sc_make_error(-EINVAL);
    return s->stack->accept(s);
}

void sc_server_close(struct sc_server_socket *s)
{
    if (s)
        s->stack->server_close(s);
}

struct sc_inet_addr sc_server_local_addr(const struct sc_server_socket *s)
{
    struct sc_inet_addr none = {0, 0};
    return s ? s->local : none;
}

struct sc_future sc_connect(const struct sc_inet_addr *to)
{
    if (!to || to->port == 0)
        return sc_make_error(-EINVAL);
    int err = 0;
    const struct sc__net_stack *st = stack_or(&err);
    return st ? st->connect(to) : sc_make_error(err);
}

struct sc_istream *sc_conn_input(struct sc_conn *c)
{
    return c ? &c->in : NULL;
}

struct sc_ostream *sc_conn_output(struct sc_conn *c)
{
    return c ? &c->out : NULL;
}

struct sc_future sc_conn_close(struct sc_conn *c)
{
    if (!c)
        return sc_make_error(-EINVAL);
    return c->ops->close(c);
}

static struct sc_future shutdown_after_close(void *cap, intptr_t v, int err)
{
    (void)v;
    struct sc_conn *c = *(struct sc_conn **)cap;
    if (err && err != -EPIPE) /* -EPIPE: the app had closed the stream already */
        return sc_make_error(err);
    return c->ops->shutdown_output ? c->ops->shutdown_output(c) : sc_make_ready(0);
}

struct sc_future sc_conn_shutdown_output(struct sc_conn *c)
{
    if (!c)
        return sc_make_error(-EINVAL);
    return sc_then_wrapped(sc_ostream_close(&c->out), shutdown_after_close, &c, sizeof c);
}

int sc_conn_set_nodelay(struct sc_conn *c, bool on)
{
    if (!c)
        return -EINVAL;
    return c->ops->set_nodelay ? c->ops->set_nodelay(c, on) : -ENOTSUP;
}

int sc_conn_set_keepalive(struct sc_conn *c, bool on)
{
    if (!c)
        return -EINVAL;
    return c->ops->set_keepalive ? c->ops->set_keepalive(c, on) : -ENOTSUP;
}

struct sc_inet_addr sc_conn_local_addr(const struct sc_conn *c)
{
    struct sc_inet_addr none = {0, 0};
    return c ? c->local : none;
}

struct sc_inet_addr sc_conn_peer_addr(const struct sc_conn *c)
{
    struct sc_inet_addr none = {0, 0};
    return c ? c->peer : none;
}

/* ---- UDP ---- */

int sc_udp_open(const struct sc_inet_addr *local, struct sc_udp_chan **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    struct sc_inet_addr any = {0, 0};
    int err = 0;
    const struct sc__net_stack *st = stack_or(&err);
    return st ? st->udp_open(local ? local : &any, out) : err;
}

struct sc_future sc_udp_send(struct sc_udp_chan *ch, const struct sc_inet_addr *to, const void *buf,
                             size_t len)
{
    if (!ch || !to || (!buf && len) || to->port == 0)
        return sc_make_error(-EINVAL);
    if (len > UDP_MAX_PAYLOAD)
        return sc_make_error(-EMSGSIZE);
    return ch->stack->udp_send(ch, to, buf, len);
}

struct sc_future sc_udp_recv(struct sc_udp_chan *ch)
{
    if (!ch)
        return sc_make_error(-EINVAL);
    return ch->stack->udp_recv(ch);
}

void sc_datagram_free(struct sc_datagram *d)
{
    sc_free(d);
}

struct sc_inet_addr sc_udp_local_addr(const struct sc_udp_chan *ch)
{
    struct sc_inet_addr none = {0, 0};
    return ch ? ch->local : none;
}

void sc_udp_close(struct sc_udp_chan *ch)
{
    if (ch)
        ch->stack->udp_close(ch);
}

/* ---- helpers for the stacks ---- */

int sc__conn_init_streams(struct sc_conn *c, const struct sc_source_ops *src,
                          const struct sc_sink_ops *sink, void *impl)
{
    int rc = sc_istream_init(&c->in, src, impl, 0);
    if (rc < 0)
        return rc;
    rc = sc_ostream_init(&c->out, sink, impl, 0);
    if (rc < 0) {
        c->in.ops = NULL; /* a source that was never used: do not close it */
        sc_istream_close(&c->in);
        return rc;
    }
    return 0;
}

bool sc__conn_streams_idle(const struct sc_conn *c)
{
    return sc__streams_idle(&c->in, &c->out);
}

void sc__conn_release_streams(struct sc_conn *c)
{
    sc_istream_close(&c->in);
    sc__ostream_abandon(&c->out);
}
