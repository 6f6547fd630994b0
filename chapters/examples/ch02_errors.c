/*
 * ch02_errors.c — chapter 2: errors in futures.
 *
 *   make build/bin/ch02_errors && build/bin/ch02_errors [--backend sim|real]
 *
 * Five short demonstrations, run one after the other:
 *   1. an error skips every sc_then() and reaches sc_handle_error();
 *   2. sc_then_wrapped() sees the value or the error, whichever came;
 *   3. sc_finally() runs its cleanup on both paths and passes the outcome on;
 *   4. a promise resolved with an error later, and an abandoned promise;
 *   5. the error ledger: a failed future dropped on purpose is reported on
 *      stderr with the file and line that made it.
 * Exit status 0 if everything happened as described, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/seacore.h"

static int failures;

static void expect(bool ok, const char *what)
{
    printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        failures++;
}

/* sc_when_all() writes the outcomes back into this array when it resolves,
 * so the array must outlive the wait: it is static, not on a stack. */
static struct sc_future outcomes[2];

/* Take the outcome of outcomes[i]: its value, or its error as a negative number. */
static intptr_t take(int i)
{
    intptr_t v = 0;
    int err = sc_future_get(outcomes[i], &v);
    return err ? err : v;
}

/* ---- 1. errors skip sc_then() ------------------------------------------ */

static int then_calls; /* how many times a sc_then() continuation ran */

static struct sc_future count_then(void *cap, intptr_t value)
{
    (void)cap;
    then_calls++;
    return sc_make_ready(value + 1);
}

struct recover_cap {
    intptr_t fallback;
};

static struct sc_future recover(void *cap, int err)
{
    const struct recover_cap *c = cap;
    printf("  handle_error got %d (%s); answers %ld instead\n", err, sc_strerror(err),
           (long)c->fallback);
    return sc_make_ready(c->fallback);
}

static struct sc_future skip_then(void)
{
    printf("1. an error skips sc_then() and reaches sc_handle_error()\n");
    struct recover_cap rc = {.fallback = -1};
    struct sc_future f = sc_make_error(-ENOENT);
    f = sc_then(f, count_then, NULL, 0);
    f = sc_then(f, count_then, NULL, 0);
    return SC_HANDLE_ERROR(f, recover, rc);
}

/* ---- 2. then_wrapped ----------------------------------------------------- */

static struct sc_future fail_with_eio(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    return sc_make_error(-EIO);
}

/* Sees both outcomes. Whatever it returns replaces the input's outcome, so
 * here it turns "value or error" into a plain number: the error, or 0. */
static struct sc_future inspect(void *cap, intptr_t value, int err)
{
    const char *name = *(const char *const *)cap;
    if (err)
        printf("  then_wrapped(%s): error %d (%s)\n", name, err, sc_strerror(err));
    else
        printf("  then_wrapped(%s): value %ld\n", name, (long)value);
    return sc_make_ready(err);
}

static struct sc_future wrapped(void *cap, intptr_t recovered)
{
    (void)cap;
    expect(then_calls == 0, "neither sc_then() continuation ran");
    expect(recovered == -1, "the handler's value became the chain's value");
    printf("2. sc_then_wrapped() sees value and error alike\n");
    const char *good = "a read that works", *bad = "a read that fails";
    outcomes[0] = SC_THEN_WRAPPED(sc_sleep(SC_MS(1)), inspect, good);
    outcomes[1] =
        SC_THEN_WRAPPED(sc_then(sc_sleep(SC_MS(2)), fail_with_eio, NULL, 0), inspect, bad);
    /* Both wrapped futures succeed: their values are what inspect() returned. */
    return sc_when_all(outcomes, 2);
}

/* ---- 3. finally ------------------------------------------------------------ */

static int open_connections;

struct conn_cap {
    int id;
};

static struct sc_future close_conn(void *cap)
{
    const struct conn_cap *c = cap;
    open_connections--;
    printf("  finally: connection %d closed (%d still open)\n", c->id, open_connections);
    return sc_make_ready(0);
}

static struct sc_future plus_one(void *cap, intptr_t value)
{
    (void)cap;
    return sc_make_ready(value + 1);
}

/* Open a pretend connection, run one request on it, close it whatever happens. */
static struct sc_future use_conn(int id, bool fail)
{
    struct conn_cap c = {.id = id};
    open_connections++;
    printf("  connection %d opened; its request will %s\n", id, fail ? "fail" : "succeed");
    struct sc_future f = sc_sleep(SC_MS(id));
    f = sc_then(f, fail ? fail_with_eio : plus_one, NULL, 0);
    return SC_FINALLY(f, close_conn, c);
}

static struct sc_future finally_demo(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    intptr_t good = take(0), bad = take(1);
    expect(good == 0 && bad == -EIO, "then_wrapped saw a value once and -EIO once");
    printf("3. sc_finally() cleans up on both paths\n");
    outcomes[0] = use_conn(1, false);
    outcomes[1] = use_conn(2, true);
    return sc_when_all(outcomes, 2);
}

/* ---- 4. promises that fail ------------------------------------------------- */

/* A pretend socket read: a promise kept by the caller (static here) and a
 * timer that resolves it with an error. */
struct pending_read {
    struct sc_promise p;
    struct sc_timer t;
};

static struct pending_read rd;
static struct sc_promise lost;

static void connection_reset(void *arg)
{
    struct pending_read *r = arg;
    sc_promise_set_error(&r->p, -ECONNRESET);
}

static struct sc_future promises(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    intptr_t good = take(0), bad = take(1);
    expect(good == 1 && bad == -EIO, "each outcome passed through sc_finally() unchanged");
    expect(open_connections == 0, "both connections were closed");

    printf("4. a promise resolved with an error, and an abandoned one\n");
    sc_promise_init(&rd.p);
    outcomes[0] = sc_promise_get_future(&rd.p);
    sc_timer_init(&rd.t, connection_reset, &rd);
    if (sc_timer_arm_in(&rd.t, SC_MS(1)) != 0)
        sc_promise_set_error(&rd.p, -ENOMEM);

    sc_promise_init(&lost);
    outcomes[1] = sc_promise_get_future(&lost);
    sc_promise_abandon(&lost); /* its producer gave up without a value */
    return sc_when_all(outcomes, 2);
}

/* ---- 5. the ledger ---------------------------------------------------------- */

static uint64_t unhandled(void)
{
    struct sc_reactor_stats st;
    sc_reactor_stats(&st);
    return st.unhandled_errors;
}

static uint64_t unhandled_before;

static struct sc_future ledger_check(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    uint64_t n = unhandled() - unhandled_before;
    printf("  unhandled errors reported: %llu\n", (unsigned long long)n);
    expect(n == 2, "both discarded errors were reported, the ignored one was not");
    printf("ch02_errors: %s\n", failures ? "SOMETHING WENT WRONG" : "all as described");
    return sc_make_ready(failures ? 1 : 0);
}

static struct sc_future ledger(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    intptr_t reset = take(0), broken = take(1);
    printf("  the read failed with %ld (%s)\n", (long)reset, sc_strerror((int)reset));
    printf("  the abandoned promise failed with %ld (%s)\n", (long)broken,
           sc_strerror((int)broken));
    expect(reset == -ECONNRESET && broken == SC_EBROKEN_PROMISE,
           "both promises delivered their errors");

    printf("5. the error ledger (two warnings on stderr are expected here)\n");
    fflush(stdout); /* keep the order readable when stdout and stderr share a terminal */
    unhandled_before = unhandled();
    /* A failed future dropped on purpose: reported at once, with this line. */
    sc_future_discard(sc_make_error(-EIO));
    /* A pending one: reported when it fails, with the line in fail_with_eio(). */
    sc_future_discard(sc_then(sc_sleep(SC_MS(1)), fail_with_eio, NULL, 0));
    /* sc_future_ignore() drops an error silently: say so only when you mean it. */
    sc_future_ignore(sc_make_error(-EAGAIN));
    return sc_then(sc_sleep(SC_MS(2)), ledger_check, NULL, 0);
}

static struct sc_future errors_main(void *arg, int argc, char **argv)
{
    (void)arg;
    (void)argc;
    (void)argv;
    struct sc_future f = skip_then();
    f = sc_then(f, wrapped, NULL, 0);
    f = sc_then(f, finally_demo, NULL, 0);
    f = sc_then(f, promises, NULL, 0);
    return sc_then(f, ledger, NULL, 0);
}

int main(int argc, char **argv)
{
    return sc_app_run(argc, argv, errors_main);
}
