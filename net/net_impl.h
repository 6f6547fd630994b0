/*
 * net_impl.h — what a network stack implements (net/posix.c, sim/net.c,
 * later the native stack). Not a public header.
 *
 * net/net.c holds the public entry points: it picks the run's stack (the
 * simulator's transport in the sim world; --network-stack in the real world)
 * and forwards each call through struct sc__net_stack. A stack's sockets
 * embed the common parts below as their first member, so net.c can reach the
 * streams and the stack's per-socket operations without knowing the stack.
 */
#ifndef SC_NET_IMPL_H
#define SC_NET_IMPL_H

#include "core/stream.h"
#include "net/net.h"

struct sc__conn_ops {
    struct sc_future (*close)(struct sc_conn *c);           /* both directions, then free */
    struct sc_future (*shutdown_output)(struct sc_conn *c); /* after the stream flushed */
    int (*set_nodelay)(struct sc_conn *c, bool on);
    int (*set_keepalive)(struct sc_conn *c, bool on);
};

/* The first member of every stack's connection. */
struct sc_conn {
    const struct sc__conn_ops *ops;
    struct sc_istream in;  /* over the stack's source */
    struct sc_ostream out; /* over the stack's sink */
    struct sc_inet_addr local, peer;
};

struct sc_server_socket {
    const struct sc__net_stack *stack;
    struct sc_inet_addr local;
};

struct sc_udp_chan {
    const struct sc__net_stack *stack;
    struct sc_inet_addr local;
};

struct sc__net_stack {
    const char *name;
    int (*listen)(const struct sc_listen_opts *o, struct sc_server_socket **out);
    struct sc_future (*accept)(struct sc_server_socket *s);
    void (*server_close)(struct sc_server_socket *s);
    struct sc_future (*connect)(const struct sc_inet_addr *to);
    int (*udp_open)(const struct sc_inet_addr *local, struct sc_udp_chan **out);
    struct sc_future (*udp_send)(struct sc_udp_chan *ch, const struct sc_inet_addr *to,
                                 const void *buf, size_t len);
    struct sc_future (*udp_recv)(struct sc_udp_chan *ch);
    void (*udp_close)(struct sc_udp_chan *ch);
};

extern const struct sc__net_stack sc__posix_stack; /* net/posix.c */
extern const struct sc__net_stack sc__sim_stack;   /* sim/net.c */

#endif
