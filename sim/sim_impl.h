/*
 * sim_impl.h — what the simulator's engine (sim/engine.c) calls in the other
 * parts of sim/. Not a public header.
 */
#ifndef SC_SIM_IMPL_H
#define SC_SIM_IMPL_H

struct sc__shard;

/* Free what the simulated network still holds on shard s (connections,
 * listeners, channels, packets in flight) at the end of a run. Runs on s
 * (sc__cur == s), after the last task and before sc__shard_fini(). */
void sc__sim_net_shard_fini(struct sc__shard *s);

#endif
