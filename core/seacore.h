/**
 * @file seacore.h
 * @brief One include for an app: every public header of core/.
 */
#ifndef SC_SEACORE_H
#define SC_SEACORE_H

#include "core/abort.h"
#include "core/app.h"
#include "core/cond.h"
#include "core/future.h"
#include "core/gate.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/pipe.h"
#include "core/memory.h"
#include "core/reactor.h"
#include "core/sched.h"
#include "core/sem.h"
#include "core/sharded.h"
#include "core/smp.h"
#include "core/waitq.h"
#include "core/thread.h"
#include "sim/simnet.h"

#endif
