/*
 * harness.h — what every Check test in seacore shares: running a function on
 * a shard in either world, and a transcript of steps that a failing
 * assertion prints, so a failure explains how it got there.
 */
#ifndef SC_TEST_HARNESS_H
#define SC_TEST_HARNESS_H

#include <check.h>
#include <stdint.h>

#include "core/app.h"
#include "core/future.h"
#include "core/loop.h"
#include "core/reactor.h"

/* Record one step of the test's story (printf-style). */
void tr_step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Forget the story (each test starts with an empty one). */
void tr_reset(void);
/* Print the story to stderr. */
void tr_dump(void);

/* Fail the test with a message, after printing the transcript. */
#define T_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            tr_dump();                                                                             \
            ck_abort_msg(__VA_ARGS__);                                                             \
        }                                                                                          \
    } while (0)

/* A quiet configuration for the given world (seed 1). */
struct sc_config t_config(enum sc_backend backend);

/* Run fn on a shard of the given world; returns its exit code. */
int t_run(enum sc_backend backend, sc_main_fn fn, void *arg);

/* Both worlds, for tests that loop over them. */
extern const enum sc_backend t_backends[2];
extern const char *const t_backend_names[2];

/* Run a Check suite; returns the process exit code. */
int t_main(Suite *s);

#endif
