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
 * Errors are negative errno values: a call that returns an int gives it
 * directly, a call that returns a future fails with it. A world without a
 * stack (the native stack, not built yet; a simulator without its network
 * model) answers -ENOSYS, with one log line saying why.
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
/**
 * @brief A connected stream socket. Opaque; its streams are sc_conn_input()
 * and sc_conn_output().
 * @ingroup ch09
 */
struct sc_conn;
/** @brief A UDP channel. Opaque. @ingroup ch09 */
struct sc_udp_chan;

/**
 * @brief Start listening on this shard.
 * @ingroup ch09
 *
 * In the posix stack with SO_REUSEPORT (the default), another process of
 * the same user that also listens with SO_REUSEPORT shares the address
 * instead of getting -EADDRINUSE: that is the kernel's rule. With
 * accept_and_forward, the first shard to listen on an address owns the
 * listening socket and accepts for all; when it stops listening, the
 * others get no more connections until a shard listens there again.
 *
 * @param opts where and how (read during the call only)
 * @param out the listening socket
 * @retval 0 listening
 * @retval -EADDRINUSE the address is taken (by another process, or by this
 *         shard already)
 * @retval -EACCES a privileged port
 * @retval -EINVAL bad options
 * @retval -ENOSYS no stack in this world
 * @retval -ENOMEM, other negative errno from the stack
 */
int sc_listen(const struct sc_listen_opts *opts, struct sc_server_socket **out);

/**
 * @brief The next connection.
 * @ingroup ch09
 * @return a future of a `struct sc_conn *` (owned by the caller: close it
 *         with sc_conn_close()); -ECONNABORTED once the socket is closed;
 *         -EBUSY if an accept is already outstanding; -EMFILE or another
 *         error of the kernel's accept (the socket stays usable: call again);
 *         -EINVAL for a NULL socket
 */
struct sc_future sc_accept(struct sc_server_socket *s);

/**
 * @brief Stop listening. New connections are refused from now on, an
 * outstanding accept fails with -ECONNABORTED, and connections accepted by
 * the kernel but not yet by the app are dropped. The socket is freed once
 * nothing refers to it: do not use @p s again. NULL is ignored.
 * @ingroup ch09
 */
void sc_server_close(struct sc_server_socket *s);

/** @brief The address a listening socket is bound to (its port, if 0 was asked). @ingroup ch09 */
struct sc_inet_addr sc_server_local_addr(const struct sc_server_socket *s);

/**
 * @brief Connect to @p to.
 * @ingroup ch09
 * @return a future of a `struct sc_conn *` (owned by the caller: close it
 *         with sc_conn_close()); -ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH;
 *         -EINVAL for a NULL address or port 0; -ENOMEM; -ENOSYS
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
 * Do not use @p c, or its streams, once the future resolves.
 * @ingroup ch09
 * @return a future of 0 when @p c is gone; -EALREADY if a close is already
 *         under way; -EINVAL for NULL
 */
struct sc_future sc_conn_close(struct sc_conn *c);

/**
 * @brief Half-close: the peer reads end of stream; we can still read.
 * Buffered output is flushed first; the output stream is closed (later
 * writes fail with -EPIPE). Calling it after closing the output stream
 * yourself is harmless.
 * @ingroup ch09
 * @return a future of 0; the output stream's error (its sticky error, or
 *         the flush's); -EINVAL for NULL
 */
struct sc_future sc_conn_shutdown_output(struct sc_conn *c);

/**
 * @brief TCP_NODELAY on or off (default on: the output stream already
 * batches, so Nagle's delay would only add latency).
 * @ingroup ch09
 * @retval 0 done
 * @retval -EBADF the connection is closing
 * @retval -ENOTSUP the stack has no such option
 * @retval -EINVAL @p c is NULL
 */
int sc_conn_set_nodelay(struct sc_conn *c, bool on);
/**
 * @brief SO_KEEPALIVE on or off (default off).
 * @ingroup ch09
 * @retval 0 done
 * @retval -EBADF, -ENOTSUP, -EINVAL as for sc_conn_set_nodelay()
 */
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
 * @brief Open a UDP channel bound to @p local (port 0: any; NULL: any
 * address and port).
 * @ingroup ch09
 * @retval 0 open
 * @retval -EADDRINUSE, -EINVAL, -ENOMEM, -ENOSYS, other negative errno
 */
int sc_udp_open(const struct sc_inet_addr *local, struct sc_udp_chan **out);

/**
 * @brief Send one datagram (@p buf may be reused when the future resolves).
 * Sends that must wait for room in the socket go out in the order they
 * were made.
 * @ingroup ch09
 * @return a future of 0; -EMSGSIZE (over 65507 bytes); -EINVAL (NULL, port
 *         0); -ECONNABORTED once the channel is closed; other errors
 */
struct sc_future sc_udp_send(struct sc_udp_chan *ch, const struct sc_inet_addr *to, const void *buf,
                             size_t len);

/**
 * @brief The next datagram.
 * @ingroup ch09
 * @return a future of a `struct sc_datagram *` (free it with
 *         sc_datagram_free()); -ECONNABORTED once closed; -EBUSY if a
 *         receive is already outstanding
 */
struct sc_future sc_udp_recv(struct sc_udp_chan *ch);

/** @brief Free a datagram from sc_udp_recv(). @ingroup ch09 */
void sc_datagram_free(struct sc_datagram *d);

/** @brief The address a channel is bound to. @ingroup ch09 */
struct sc_inet_addr sc_udp_local_addr(const struct sc_udp_chan *ch);

/**
 * @brief Close; an outstanding receive and waiting sends fail with
 * -ECONNABORTED. Do not use @p ch again. NULL is ignored.
 * @ingroup ch09
 */
void sc_udp_close(struct sc_udp_chan *ch);

/**
 * @brief The name of the stack this run uses: "posix", "sim" (later
 * "native"); "none" when this world has none.
 * @ingroup ch09
 */
const char *sc_net_stack_name(void);

#endif
