/**
 * @file seacore.h
 * @brief One include for an app: every public header of core/.
 */
#ifndef SC_SEACORE_H
#define SC_SEACORE_H

#include "core/app.h"
#include "core/future.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/memory.h"
#include "core/reactor.h"
#include "core/sharded.h"
#include "core/smp.h"

#endif
