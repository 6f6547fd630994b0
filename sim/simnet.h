/**
 * @file simnet.h
 * @brief The simulated network's test hooks: its counters, and a switch that
 * cuts the network in two (a partition) and heals it.
 *
 * In the simulator the network API (net/net.h) runs over an in-memory
 * transport (sim/net.c): connections are pairs of one-way byte pipes between
 * endpoints on the simulated shards, with a seeded one-way delay
 * (`--sim-net-latency-us`, plus up to half of it again as jitter), a receive
 * window of 64 KiB per direction (a sender whose peer does not read waits),
 * and the run's faults: `--sim-net-reset-ppm` (a send resets its connection,
 * both ends then fail with -ECONNRESET) and `--sim-net-stall-ppm` (a send is
 * held 10 to 100 ms). Datagrams use the same delay; a datagram is lost with
 * the reset fault's probability (it is the transport's loss knob), and held
 * with the stall's.
 *
 * Apps never need this header; tests use it to look at what the network did
 * and to cut it.
 */
#ifndef SC_SIMNET_H
#define SC_SIMNET_H

#include <stdbool.h>
#include <stdint.h>

#include "core/future.h"

/** @brief What the simulated network did on one shard. @ingroup ch09 */
struct sc_sim_net_stats {
    uint64_t sends;     /**< stream writes handed to the network (each may reset or stall) */
    uint64_t bytes;     /**< payload bytes sent, streams and datagrams */
    uint64_t resets;    /**< connections reset by the fault (`--sim-net-reset-ppm`) */
    uint64_t stalls;    /**< sends held 10-100 ms by the fault (`--sim-net-stall-ppm`) */
    uint64_t refused;   /**< connects that failed with -ECONNREFUSED */
    uint64_t datagrams; /**< datagrams sent */
    uint64_t dropped;   /**< datagrams lost: the fault, no receiver, a full queue, a partition */
    uint64_t ends;      /**< connection ends alive on this shard now (a leak check) */
};

/**
 * @brief Copy the calling shard's counters into @p out (all zero outside the
 * simulator, or before the shard used the network).
 * @ingroup ch09
 */
void sc_sim_net_stats(struct sc_sim_net_stats *out);

/**
 * @brief Cut the simulated network (@p on true) or heal it (false), on every
 * shard.
 * @ingroup ch09
 *
 * While cut, nothing crosses: stream segments and connection attempts due for
 * delivery are held (as TCP would keep retransmitting them) and go out, in
 * their order, when the network heals; datagrams are lost. What was already
 * delivered stays delivered.
 * @return a future of 0 once every shard has applied the change; -ENOTSUP
 *         outside the simulator
 */
struct sc_future sc_sim_net_partition(bool on);

#endif
