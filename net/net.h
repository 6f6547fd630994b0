/**
 * @file net.h
 * @brief The network API: listen, accept, connect, connected sockets with
 * input and output streams, UDP. One interface over several stacks.
 *
 * Which stack answers is chosen when the run starts:
 *
 * - in the real world, `--network-stack posix` (the default) drives the
 *   kernel's sockets from the reactor: every shard listens on the same port
 *   with SO_REUSEPORT, and a socket's readiness reaches the reactor through
 *   the reactor backend (`--reactor-backend epoll|linux-aio|io_uring`);
 *   `--network-stack native` is the userspace TCP/IP stack (a later issue);
 * - in the simulator, an in-memory transport with seeded latency, stalls and
 *   resets takes the same calls, so an app and its tests run unchanged and
 *   deterministically.
 *
 * Addresses are IPv4 (address and port in host byte order).
 *
 * A socket belongs to the shard that made it (listen/accept/connect); its
 * streams are used only there. Listening on the same address from every
 * shard spreads connections over the shards (sc_listen()).
 */
#ifndef SC_NET_H
#define SC_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/future.h"
#include "core/stream.h"

/** @brief An IPv4 address and port, both in host byte order. @ingroup ch09 */
struct sc_inet_addr {
    uint32_t ip;   /**< e.g. 0x7f000001 for 127.0.0.1; 0 for any */
    uint16_t port; /**< 0 lets the stack choose (listen) */
};

/**
 * @brief Parse "a.b.c.d:port", "a.b.c.d" (port 0) or ":port" (any address).
 * @ingroup ch09
 * @retval 0 parsed into @p out
 * @retval -EINVAL malformed
 */
int sc_inet_addr_parse(const char *s, struct sc_inet_addr *out);

/**
 * @brief Format @p a as "a.b.c.d:port" into @p buf (24 bytes is enough).
 * @ingroup ch09
 * @return @p buf
 */
char *sc_inet_addr_format(const struct sc_inet_addr *a, char *buf, size_t len);

/** @brief Options for sc_listen(). @ingroup ch09 */
struct sc_listen_opts {
    struct sc_inet_addr addr; /**< where to listen */
    int backlog;              /**< accept queue length (0: 1024) */
    bool reuse_addr;          /**< SO_REUSEADDR (true is what servers want) */
    /**
     * How connections are spread over the shards that listen on @p addr:
     * false (default) — each listening shard gets its own (SO_REUSEPORT in
     * the posix stack: the kernel hashes connections); true — only the
     * calling shard accepts, and connections are handed round-robin to the
     * shards that listen with the same address (see chapter 9 for which
     * balances better).
     */
    bool accept_and_forward;
};

/** @brief A listening socket. Opaque. @ingroup ch09 */
struct sc_server_socket;
/** @brief A connected stream socket. Opaque; its streams are sc_conn_input() and sc_conn_output(). @ingroup ch09 */
struct sc_conn;
/** @brief A UDP channel. Opaque. @ingroup ch09 */
struct sc_udp_chan;

/**
 * @brief Start listening on this shard.
 * @ingroup ch09
 * @param out the listening socket
 * @retval 0 listening
 * @retval -EADDRINUSE the address is taken (by another process, or by this
 *         shard already)
 * @retval -EACCES a privileged port
 * @retval -EINVAL bad options
 * @retval -ENOMEM, other negative errno from the stack
 */
int sc_listen(const struct sc_listen_opts *opts, struct sc_server_socket **out);

/**
 * @brief The next connection.
 * @ingroup ch09
 * @return a future of a `struct sc_conn *` (owned by the caller: close it
 *         with sc_conn_close()); -ECONNABORTED once the socket is closed;
 *         -EBUSY if an accept is already outstanding
 */
struct sc_future sc_accept(struct sc_server_socket *s);

/**
 * @brief Stop listening. An outstanding accept fails with -ECONNABORTED;
 * the socket is freed once that accept has resolved.
 * @ingroup ch09
 */
void sc_server_close(struct sc_server_socket *s);

/** @brief The address a listening socket is bound to (its port, if 0 was asked). @ingroup ch09 */
struct sc_inet_addr sc_server_local_addr(const struct sc_server_socket *s);

/**
 * @brief Connect to @p to.
 * @ingroup ch09
 * @return a future of a `struct sc_conn *`; -ECONNREFUSED, -ETIMEDOUT,
 *         -ENETUNREACH, -EINVAL, -ENOMEM
 */
struct sc_future sc_connect(const struct sc_inet_addr *to);

/** @brief The connection's input stream (reads return 0 at the peer's close). @ingroup ch09 */
struct sc_istream *sc_conn_input(struct sc_conn *c);

/** @brief The connection's output stream; closing it half-closes the connection. @ingroup ch09 */
struct sc_ostream *sc_conn_output(struct sc_conn *c);

/**
 * @brief Close both directions and free @p c once pending reads and writes
 * have resolved (they fail with -ECONNABORTED if still waiting). Buffered
 * output is not flushed: close the output stream first for a graceful end.
 * @ingroup ch09
 * @return a future of 0 when @p c is gone
 */
struct sc_future sc_conn_close(struct sc_conn *c);

/**
 * @brief Half-close: the peer reads end of stream; we can still read.
 * Buffered output is flushed first.
 * @ingroup ch09
 */
struct sc_future sc_conn_shutdown_output(struct sc_conn *c);

/** @brief TCP_NODELAY on or off (default on). @ingroup ch09 @retval 0 @retval -errno */
int sc_conn_set_nodelay(struct sc_conn *c, bool on);
/** @brief SO_KEEPALIVE on or off. @ingroup ch09 @retval 0 @retval -errno */
int sc_conn_set_keepalive(struct sc_conn *c, bool on);
/** @brief Our end's address. @ingroup ch09 */
struct sc_inet_addr sc_conn_local_addr(const struct sc_conn *c);
/** @brief The peer's address. @ingroup ch09 */
struct sc_inet_addr sc_conn_peer_addr(const struct sc_conn *c);

/** @brief A received datagram, owned by the caller until sc_datagram_free(). @ingroup ch09 */
struct sc_datagram {
    struct sc_inet_addr from; /**< the sender */
    size_t len;               /**< bytes in @p data */
    char data[];              /**< the payload */
};

/**
 * @brief Open a UDP channel bound to @p local (port 0: any).
 * @ingroup ch09
 * @retval 0 open
 * @retval -EADDRINUSE, -EINVAL, -ENOMEM, other negative errno
 */
int sc_udp_open(const struct sc_inet_addr *local, struct sc_udp_chan **out);

/**
 * @brief Send one datagram (@p buf may be reused when the future resolves).
 * @ingroup ch09
 * @return a future of 0; -EMSGSIZE (over 65507 bytes); other errors
 */
struct sc_future sc_udp_send(struct sc_udp_chan *ch, const struct sc_inet_addr *to,
                             const void *buf, size_t len);

/**
 * @brief The next datagram.
 * @ingroup ch09
 * @return a future of a `struct sc_datagram *`; -ECONNABORTED once closed
 */
struct sc_future sc_udp_recv(struct sc_udp_chan *ch);

/** @brief Free a datagram from sc_udp_recv(). @ingroup ch09 */
void sc_datagram_free(struct sc_datagram *d);

/** @brief The address a channel is bound to. @ingroup ch09 */
struct sc_inet_addr sc_udp_local_addr(const struct sc_udp_chan *ch);

/** @brief Close; an outstanding receive fails with -ECONNABORTED. @ingroup ch09 */
void sc_udp_close(struct sc_udp_chan *ch);

/** @brief The name of the stack this run uses: "posix", "sim" (later "native"). @ingroup ch09 */
const char *sc_net_stack_name(void);

#endif
