/*
 * coord_ev.h — what the tests of the coordination primitives share: a log
 * of events ("A", "B=7", "C!timeout") that continuations append to, checked
 * against the expected story. Every event also goes to the transcript, so a
 * failing check shows the order things happened in.
 */
#ifndef SC_TEST_COORD_EV_H
#define SC_TEST_COORD_EV_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/seacore.h"
#include "tests/harness.h"

static char ev_log[4096];

static inline void ev_reset(void)
{
    ev_log[0] = '\0';
}

static inline const char *ev_errname(int err)
{
    static char buf[32];
    switch (err) {
    case SC_ETIMEDOUT:
        return "timeout";
    case SC_EBROKEN:
        return "broken";
    case SC_EEOF:
        return "eof";
    case SC_EGATE_CLOSED:
        return "closed";
    case -ECANCELED:
        return "canceled";
    case -EPIPE:
        return "epipe";
    case -EBADF:
        return "ebadf";
    case -EIO:
        return "eio";
    case -ENOMEM:
        return "enomem";
    case -EINVAL:
        return "einval";
    case -EALREADY:
        return "ealready";
    default:
        snprintf(buf, sizeof buf, "%d", err);
        return buf;
    }
}

static inline void ev_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void ev_add(const char *fmt, ...)
{
    char one[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(one, sizeof one, fmt, ap);
    va_end(ap);
    tr_step("event: %s", one);
    size_t len = strlen(ev_log);
    snprintf(ev_log + len, sizeof ev_log - len, "%s%s", len ? " " : "", one);
}

/* then_wrapped continuation: log the outcome under the captured name. */
static inline struct sc_future ev_note(void *cap, intptr_t v, int err)
{
    const char *name = *(const char **)cap;
    if (err)
        ev_add("%s!%s", name, ev_errname(err));
    else if (v)
        ev_add("%s=%ld", name, (long)v);
    else
        ev_add("%s", name);
    return sc_make_ready(0);
}

/* Log f's outcome as `name` when it arrives; the result resolves (with 0) then. */
static inline struct sc_future ev_watched(struct sc_future f, const char *name)
{
    return sc_then_wrapped(f, ev_note, &name, sizeof name);
}

/* Log f's outcome as `name` when it arrives. */
static inline void ev_watch(struct sc_future f, const char *name)
{
    sc_future_ignore(ev_watched(f, name));
}

/* Check the log so far. */
#define EV_EXPECT(want)                                                                            \
    do {                                                                                           \
        tr_step("expect events \"%s\"", (want));                                                   \
        T_CHECK(strcmp(ev_log, (want)) == 0, "events were \"%s\", expected \"%s\"", ev_log,        \
                (want));                                                                           \
    } while (0)

/* Is `token` one of the logged events (in any position)? */
static inline bool ev_has(const char *token)
{
    size_t n = strlen(token);
    for (const char *p = ev_log; (p = strstr(p, token)); p += n)
        if ((p == ev_log || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* Check that `token` was logged, wherever (for events whose order is free). */
#define EV_HAS(token)                                                                              \
    do {                                                                                           \
        tr_step("expect event \"%s\" among \"%s\"", (token), ev_log);                              \
        T_CHECK(ev_has(token), "event \"%s\" missing from \"%s\"", (token), ev_log);               \
    } while (0)

/* The outcome of an available future, as ev_note would log it ("=7", "!eof", ""). */
static inline const char *ev_now(struct sc_future f)
{
    static char buf[64];
    if (!sc_future_available(f)) {
        sc_future_ignore(f);
        return "pending";
    }
    intptr_t v = 0;
    int err = sc_future_get(f, &v);
    if (err)
        snprintf(buf, sizeof buf, "!%s", ev_errname(err));
    else
        snprintf(buf, sizeof buf, "=%ld", (long)v);
    return buf;
}

/* ---- a test as a list of steps, with the woken continuations run between ---- */

typedef struct sc_future (*ev_step_fn)(void);

struct ev_steps {
    const ev_step_fn *fns;
    size_t n, i;
    int yields; /* rounds of the task queue left before the next step */
};

static inline struct sc_future ev_continue(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

/* One step, then a few rounds of the task queue (sc_yield goes to the back
 * of it), so that a woken waiter's continuation, and whatever that wakes in
 * turn, all run before the next step looks. */
static inline struct sc_future ev_steps_body(void *cap)
{
    struct ev_steps *st = cap;
    if (st->yields > 0) {
        st->yields--;
        return sc_then(sc_yield(), ev_continue, NULL, 0);
    }
    if (st->i == st->n)
        return sc_make_ready(SC_STOP);
    tr_step("step %zu", st->i + 1);
    struct sc_future f = st->fns[st->i++]();
    st->yields = 8;
    return sc_then(f, ev_continue, NULL, 0);
}

static inline struct sc_future ev_run_steps(const ev_step_fn *fns, size_t n)
{
    struct ev_steps st = {fns, n, 0, 0};
    return sc_repeat(ev_steps_body, &st, sizeof st);
}

#define EV_STEPS(...)                                                                              \
    ({                                                                                             \
        static const ev_step_fn ev_fns_[] = {__VA_ARGS__};                                         \
        ev_run_steps(ev_fns_, sizeof ev_fns_ / sizeof ev_fns_[0]);                                 \
    })

#endif
