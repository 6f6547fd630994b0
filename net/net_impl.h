/*
 * net_impl.h — what a network stack implements (net/posix.c, sim/net.c,
 * later the native stack). Not a public header.
 *
 * net/net.c holds the public entry points: it picks the run's stack (the
 * engine's net_stack in the simulator; --network-stack in the real world:
 * posix, or native, which is not built yet and answers -ENOSYS) and
 * forwards each call through struct sc__net_stack. A stack's sockets embed
 * the common parts below as their first member, so net.c can reach the
 * streams and the stack's per-socket operations without knowing the stack.
 *
 * net.c checks the arguments it can (NULL pointers, a port of 0 to connect
 * to, a datagram over 65507 bytes) before calling the stack.
 */
#ifndef SC_NET_IMPL_H
#define SC_NET_IMPL_H

#include "core/stream.h"
#include "net/net.h"

struct sc__conn_ops {
    /* Close both directions, fail what waits with -ECONNABORTED, free the
     * connection once its streams are idle (sc__conn_streams_idle) — use
     * sc__conn_release_streams() to drop them — and resolve then. */
    struct sc_future (*close)(struct sc_conn *c);
    /* Half-close, called by sc_conn_shutdown_output() after the output
     * stream was flushed and closed. The sink's own close (which that
     * stream close calls) should half-close already; this one must then be
     * harmless (idempotent). May be NULL. */
    struct sc_future (*shutdown_output)(struct sc_conn *c);
    int (*set_nodelay)(struct sc_conn *c, bool on);   /* may be NULL: -ENOTSUP */
    int (*set_keepalive)(struct sc_conn *c, bool on); /* may be NULL: -ENOTSUP */
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
extern const struct sc__net_stack sc__sim_stack;   /* sim/net.c: the sim engine's net_stack */

/* ---- helpers for the stacks (net/net.c) ---- */

/* Set up c's two streams over a stack's source and sink (0: default
 * buffer sizes). Returns 0, -EINVAL or -ENOMEM (then nothing is held). */
int sc__conn_init_streams(struct sc_conn *c, const struct sc_source_ops *src,
                          const struct sc_sink_ops *sink, void *impl);

/* Nothing outstanding on c's streams: no read, no write/flush/close waiting. */
bool sc__conn_streams_idle(const struct sc_conn *c);

/* Drop c's streams at once, unflushed, without calling the sink's close
 * (the connection is going away both ways). Streams must be idle. */
void sc__conn_release_streams(struct sc_conn *c);

#endif
