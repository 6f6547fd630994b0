/*
 * stream_impl.h — what the network stacks need from core/stream.c beyond
 * the public API. Not a public header.
 */
#ifndef SC_STREAM_IMPL_H
#define SC_STREAM_IMPL_H

#include "core/stream.h"

/*
 * Drop an output stream at once, without flushing and without closing its
 * sink (a connection closed both ways): free its buffers and make every
 * later call fail with -EPIPE. No write, flush or close may be waiting, and
 * the sink must have no write outstanding (os->busy false); if it has one,
 * the buffers are left to it (leaked) rather than freed under it.
 */
void sc__ostream_abandon(struct sc_ostream *os);

/* True when neither stream of a pair has anything outstanding: no read
 * waiting, no write, flush or close waiting, no sink write in flight. */
bool sc__streams_idle(const struct sc_istream *is, const struct sc_ostream *os);

#endif
