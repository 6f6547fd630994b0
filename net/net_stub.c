/*
 * net_stub.c — a stand-in for net/net.c, so that the simulated network and
 * its tests link before the real entry points land: it forwards every call
 * to the simulator's stack in the sim world and answers -ENOSYS in the real
 * one. The coordinator drops this file when net/net.c arrives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/reactor.h"
#include "net/net_impl.h"

static const struct sc__net_stack *stack(void)
{
    return sc_is_simulated() ? &sc__sim_stack : NULL;
}

int sc_inet_addr_parse(const char *s, struct sc_inet_addr *out)
{
    unsigned a = 0, b = 0, c = 0, d = 0, port = 0;
    int n = 0;
    if (s && s[0] == ':' && sscanf(s, ":%u%n", &port, &n) == 1 && !s[n] && port < 65536) {
        *out = (struct sc_inet_addr){.ip = 0, .port = (uint16_t)port};
        return 0;
    }
    if (!s || sscanf(s, "%u.%u.%u.%u%n", &a, &b, &c, &d, &n) != 4 || a > 255 || b > 255 ||
        c > 255 || d > 255)
        return -EINVAL;
    if (s[n] == ':') {
        int m = 0;
        if (sscanf(s + n, ":%u%n", &port, &m) != 1 || s[n + m] || port > 65535)
            return -EINVAL;
    } else if (s[n]) {
        return -EINVAL;
    }
    *out = (struct sc_inet_addr){.ip = a << 24 | b << 16 | c << 8 | d, .port = (uint16_t)port};
    return 0;
}

char *sc_inet_addr_format(const struct sc_inet_addr *a, char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u.%u.%u:%u", a->ip >> 24, a->ip >> 16 & 255, a->ip >> 8 & 255,
             a->ip & 255, a->port);
    return buf;
}

int sc_listen(const struct sc_listen_opts *opts, struct sc_server_socket **out)
{
    return stack() ? stack()->listen(opts, out) : -ENOSYS;
}

struct sc_future sc_accept(struct sc_server_socket *s)
{
    return s->stack->accept(s);
}

void sc_server_close(struct sc_server_socket *s)
{
    s->stack->server_close(s);
}

struct sc_inet_addr sc_server_local_addr(const struct sc_server_socket *s)
{
    return s->local;
}

struct sc_future sc_connect(const struct sc_inet_addr *to)
{
    return stack() ? stack()->connect(to) : sc_make_error(-ENOSYS);
}

struct sc_istream *sc_conn_input(struct sc_conn *c)
{
    return &c->in;
}

struct sc_ostream *sc_conn_output(struct sc_conn *c)
{
    return &c->out;
}

struct sc_future sc_conn_close(struct sc_conn *c)
{
    return c->ops->close(c);
}

static struct sc_future shut(void *cap, intptr_t v)
{
    (void)v;
    struct sc_conn *c = *(struct sc_conn **)cap;
    return c->ops->shutdown_output(c);
}

struct sc_future sc_conn_shutdown_output(struct sc_conn *c)
{
    return sc_then(sc_ostream_flush(&c->out), shut, &c, sizeof c);
}

int sc_conn_set_nodelay(struct sc_conn *c, bool on)
{
    return c->ops->set_nodelay(c, on);
}

int sc_conn_set_keepalive(struct sc_conn *c, bool on)
{
    return c->ops->set_keepalive(c, on);
}

struct sc_inet_addr sc_conn_local_addr(const struct sc_conn *c)
{
    return c->local;
}

struct sc_inet_addr sc_conn_peer_addr(const struct sc_conn *c)
{
    return c->peer;
}

int sc_udp_open(const struct sc_inet_addr *local, struct sc_udp_chan **out)
{
    return stack() ? stack()->udp_open(local, out) : -ENOSYS;
}

struct sc_future sc_udp_send(struct sc_udp_chan *ch, const struct sc_inet_addr *to, const void *buf,
                             size_t len)
{
    return ch->stack->udp_send(ch, to, buf, len);
}

struct sc_future sc_udp_recv(struct sc_udp_chan *ch)
{
    return ch->stack->udp_recv(ch);
}

void sc_datagram_free(struct sc_datagram *d)
{
    free(d);
}

struct sc_inet_addr sc_udp_local_addr(const struct sc_udp_chan *ch)
{
    return ch->local;
}

void sc_udp_close(struct sc_udp_chan *ch)
{
    ch->stack->udp_close(ch);
}

const char *sc_net_stack_name(void)
{
    return stack() ? stack()->name : "posix";
}
