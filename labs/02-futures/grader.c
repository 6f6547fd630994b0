/*
 * grader.c — lab 02: the ready fast path and then-chaining (core/future.c).
 *
 * Each check is a short story told in both worlds (the simulator and the real
 * machine). The story is written down as it happens with tr_step(); when a
 * check fails, T_CHECK prints it, so the failure says how it got there.
 *
 * Runs use a long task quota. In the real world the quota is a timer signal,
 * and with the default 0.5 ms it could land between two lines of a check and
 * send a ready continuation through the task queue, which sc_then() is
 * allowed to do. One second keeps the fast path on for every check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

/* ---- running a story on a shard ------------------------------------------ */

/* Start the story of one check: its name (as Check prints it) and world. */
static void begin(const char *name, int w)
{
    tr_reset();
    tr_step("%s, %s world", name, t_backend_names[w]);
}

/* What a run reports: checked after the story's own checks, which say more. */
struct outcome {
    int code;
    uint64_t unhandled;
};

/* Run main_fn(arg) on a shard of world w. */
static struct outcome run_story(int w, sc_main_fn main_fn, void *arg)
{
    struct sc_config cfg = t_config(t_backends[w]);
    cfg.task_quota_ns = SC_SEC(1);
    struct sc_run_result res;
    memset(&res, 0, sizeof res);
    tr_step("run on the %s backend (seed %llu)", t_backend_names[w], (unsigned long long)cfg.seed);
    int code = sc_run_ex(&cfg, main_fn, arg, 0, NULL, &res);
    tr_step("the run ended with exit code %d, %llu unhandled error(s)", code,
            (unsigned long long)res.unhandled_errors);
    return (struct outcome){code, res.unhandled_errors};
}

/* The run finished (exit code 0) and no failed future was left unhandled. */
static void expect_clean(struct outcome o)
{
    T_CHECK(o.code == 0,
            "the run should end with exit code 0, not %d: its main future never resolved "
            "(the shard ran out of work) or resolved with an error",
            o.code);
    T_CHECK(o.unhandled == 0,
            "%llu failed future(s) were never handled: an error was dropped on the way",
            (unsigned long long)o.unhandled);
}

static uint64_t pool_allocs(void)
{
    struct sc_reactor_stats st;
    sc_reactor_stats(&st);
    return st.pool_allocs;
}

/* A future that should be available now: its value, or a failed check. */
static intptr_t value_now(struct sc_future f, const char *what)
{
    T_CHECK(sc_future_available(f), "%s should be available now, but it is pending", what);
    intptr_t v = -1;
    int err = sc_future_get(f, &v);
    T_CHECK(err == 0, "%s should hold a value, but it failed with %d (%s)", what, err,
            sc_strerror(err));
    return v;
}

/* A future that should have failed by now: its error code. */
static int error_now(struct sc_future f, const char *what)
{
    T_CHECK(sc_future_available(f), "%s should be available now, but it is pending", what);
    intptr_t v = 0;
    int err = sc_future_get(f, &v);
    T_CHECK(err != 0, "%s should have failed, but it holds the value %ld", what, (long)v);
    return err;
}

/* ---- a continuation that remembers how it was called -------------------- */

struct probe {
    int calls;
    intptr_t seen;        /* the value it was given */
    const void *cap;      /* the capture pointer it was given */
    bool then_returned;   /* set by the story right after sc_then() returns */
    bool ran_inside_then; /* the continuation ran before sc_then() returned */
};

struct probe_cap {
    struct probe *p;
    intptr_t add;
};

static struct sc_future probe_fn(void *cap, intptr_t v)
{
    struct probe_cap *c = cap;
    c->p->calls++;
    c->p->seen = v;
    c->p->cap = cap;
    c->p->ran_inside_then = !c->p->then_returned;
    tr_step("  the continuation runs with value %ld (capture at %p)", (long)v, cap);
    return sc_make_ready(v + c->add);
}

/* ---- 1. a ready future: the continuation is just a call ------------------ */

static struct sc_future ready_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct probe p = {0};
    struct probe_cap cap = {&p, 1};

    uint64_t before = pool_allocs();
    tr_step("sc_then(ready 41, add 1, &cap) with cap at %p; pool holds %llu allocation(s)",
            (void *)&cap, (unsigned long long)before);
    struct sc_future f = sc_then(sc_make_ready(41), probe_fn, &cap, sizeof cap);
    p.then_returned = true;
    uint64_t after = pool_allocs();
    tr_step("sc_then returned; the continuation ran %d time(s); pool holds %llu", p.calls,
            (unsigned long long)after);

    T_CHECK(p.calls == 1,
            "on a ready future the continuation should run inside sc_then(), once; "
            "it ran %d times before sc_then() returned",
            p.calls);
    T_CHECK(p.ran_inside_then, "the continuation should run before sc_then() returns");
    T_CHECK(p.cap == &cap,
            "on the ready path the continuation should get the caller's capture itself "
            "(%p), not a copy (%p): no copy, no allocation",
            (void *)&cap, p.cap);
    T_CHECK(p.seen == 41, "the continuation should see 41, not %ld", (long)p.seen);
    T_CHECK(after == before,
            "a ready future must cost no allocation: the pool went from %llu to %llu "
            "allocations",
            (unsigned long long)before, (unsigned long long)after);
    intptr_t v = value_now(f, "the future sc_then() returned");
    T_CHECK(v == 42, "the result should be 41 + 1 = 42, not %ld", (long)v);
    tr_step("the result is 42, available at once");
    return sc_make_ready(0);
}

START_TEST(then_on_ready_runs_at_once)
{
    begin("then_on_ready_runs_at_once", _i);
    expect_clean(run_story(_i, ready_main, NULL));
}
END_TEST

/* ---- 2. a promise set before its future is taken gives a ready future ---- */

static struct sc_future preset_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct probe p = {0};
    struct probe_cap cap = {&p, 100};
    struct sc_promise pr;
    sc_promise_init(&pr);

    tr_step("set a promise to 7 before taking its future");
    sc_promise_set_value(&pr, 7);
    struct sc_future f = sc_promise_get_future(&pr);
    uint64_t before = pool_allocs();
    tr_step("sc_then(its future, add 100)");
    struct sc_future r = sc_then(f, probe_fn, &cap, sizeof cap);
    p.then_returned = true;
    T_CHECK(p.calls == 1 && p.ran_inside_then,
            "the promise was already set, so its future is ready and the continuation "
            "should run inside sc_then(); it ran %d time(s) before it returned",
            p.calls);
    T_CHECK(p.cap == &cap, "the ready path should pass the caller's capture, not a copy");
    T_CHECK(pool_allocs() == before, "the ready path should not allocate");
    intptr_t v = value_now(r, "the result");
    T_CHECK(v == 107, "the result should be 7 + 100 = 107, not %ld", (long)v);

    tr_step("now the same with an error set before the future is taken");
    struct sc_promise pe;
    sc_promise_init(&pe);
    sc_promise_set_error(&pe, -ECONNRESET);
    p.calls = 0;
    p.then_returned = false;
    struct sc_future re = sc_then(sc_promise_get_future(&pe), probe_fn, &cap, sizeof cap);
    T_CHECK(p.calls == 0, "an error must skip the continuation, yet it ran");
    int err = error_now(re, "the result of sc_then() on a failed future");
    T_CHECK(err == -ECONNRESET, "the error should stay -ECONNRESET (%d), not %d (%s)", -ECONNRESET,
            err, sc_strerror(err));
    tr_step("the error passed through with its code");
    return sc_make_ready(0);
}

START_TEST(promise_set_before_future_taken)
{
    begin("promise_set_before_future_taken", _i);
    expect_clean(run_story(_i, preset_main, NULL));
}
END_TEST

/* ---- 3. errors skip then, and keep their code ---------------------------- */

struct err_story {
    struct probe p;
    struct sc_promise pr;   /* fails later: the pending path */
    struct sc_promise pr2;  /* succeeds, but its continuation fails */
    struct sc_future fs[2]; /* [0]: three thens after pr; [1]: the then after pr2 */
};

static struct sc_future fail_fn(void *cap, intptr_t v)
{
    struct probe_cap *c = cap;
    c->p->calls++;
    tr_step("  the continuation runs with %ld and returns the error -ENOENT", (long)v);
    return sc_make_error(-ENOENT);
}

/* Runs once both pending results are available (sc_when_all). */
static struct sc_future err_check(void *cap, intptr_t v, int err)
{
    (void)v;
    struct err_story *s = *(struct err_story **)cap;
    tr_step("both pending results are in (sc_when_all: error %d)", err);
    T_CHECK(s->p.calls == 1,
            "only the continuation after the successful promise should have run; "
            "continuations ran %d times",
            s->p.calls);
    err = error_now(s->fs[0], "the end of the chain of three thens after the failed promise");
    T_CHECK(err == -EPIPE, "the error should stay -EPIPE (%d) through the chain, not %d (%s)",
            -EPIPE, err, sc_strerror(err));
    err = error_now(s->fs[1], "the then whose continuation returned an error");
    T_CHECK(err == -ENOENT,
            "a continuation's error should become the result: -ENOENT (%d), not %d (%s)", -ENOENT,
            err, sc_strerror(err));
    tr_step("both errors arrived with their codes");
    return sc_make_ready(0);
}

static struct sc_future errors_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct err_story *s = arg;
    struct probe_cap cap = {&s->p, 1};

    tr_step("sc_then(a failed future (-EIO), add 1)");
    struct sc_future r = sc_then(sc_make_error(-EIO), probe_fn, &cap, sizeof cap);
    T_CHECK(s->p.calls == 0, "an error must skip the continuation, yet it ran");
    int err = error_now(r, "sc_then() of a failed future");
    T_CHECK(err == -EIO, "the error should stay -EIO (%d), not %d (%s)", -EIO, err,
            sc_strerror(err));

    tr_step("three thens after a pending promise, which then fails with -EPIPE");
    sc_promise_init(&s->pr);
    struct sc_future f = sc_promise_get_future(&s->pr);
    for (int i = 0; i < 3; i++)
        f = sc_then(f, probe_fn, &cap, sizeof cap);
    s->fs[0] = f;
    T_CHECK(s->p.calls == 0, "nothing should run before the promise is set");

    tr_step("a then after a promise that succeeds with 5; its continuation fails");
    sc_promise_init(&s->pr2);
    s->fs[1] = sc_then(sc_promise_get_future(&s->pr2), fail_fn, &cap, sizeof cap);

    sc_promise_set_error(&s->pr, -EPIPE);
    sc_promise_set_value(&s->pr2, 5);
    return SC_THEN_WRAPPED(sc_when_all(s->fs, 2), err_check, s);
}

START_TEST(errors_skip_then)
{
    begin("errors_skip_then", _i);
    struct err_story s;
    memset(&s, 0, sizeof s);
    expect_clean(run_story(_i, errors_main, &s));
}
END_TEST

/* ---- 4. a chain of thens on a pending future runs in order --------------- */

struct chain_story {
    char log[128];
    struct sc_promise pr;
    intptr_t final_value;
    int final_err;
    int collected;
    bool ran_inside_set;
};

struct step_cap {
    struct chain_story *s;
    char name;
    int op; /* 0: +1, 1: *2, 2: -3 */
};

static struct sc_future step_fn(void *cap, intptr_t v)
{
    struct step_cap *c = cap;
    size_t n = strlen(c->s->log);
    snprintf(c->s->log + n, sizeof c->s->log - n, "%s%c(%ld)", n ? " " : "", c->name, (long)v);
    intptr_t r = c->op == 0 ? v + 1 : c->op == 1 ? v * 2 : v - 3;
    tr_step("  continuation %c sees %ld, returns %ld", c->name, (long)v, (long)r);
    return sc_make_ready(r);
}

static struct sc_future collect_fn(void *cap, intptr_t v, int err)
{
    struct chain_story *s = *(struct chain_story **)cap;
    s->collected++;
    s->final_value = v;
    s->final_err = err;
    tr_step("the end of the chain resolves: value %ld, error %d", (long)v, err);
    return sc_make_ready(0);
}

static struct sc_future chain_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct chain_story *s = arg;
    sc_promise_init(&s->pr);
    struct sc_future f = sc_promise_get_future(&s->pr);
    tr_step("chain A (+1), B (*2), C (-3) after a pending promise");
    struct step_cap a = {s, 'A', 0}, b = {s, 'B', 1}, c = {s, 'C', 2};
    f = sc_then(f, step_fn, &a, sizeof a);
    f = sc_then(f, step_fn, &b, sizeof b);
    f = sc_then(f, step_fn, &c, sizeof c);
    T_CHECK(s->log[0] == 0, "nothing should run before the promise is set; ran: %s", s->log);
    tr_step("set the promise to 10");
    sc_promise_set_value(&s->pr, 10);
    s->ran_inside_set = s->log[0] != 0;
    return SC_THEN_WRAPPED(f, collect_fn, s);
}

START_TEST(chain_runs_in_order)
{
    begin("chain_runs_in_order", _i);
    struct chain_story s;
    memset(&s, 0, sizeof s);
    struct outcome o = run_story(_i, chain_main, &s);
    tr_step("continuations ran: %s", s.log[0] ? s.log : "(none)");
    T_CHECK(!s.ran_inside_set,
            "continuations are tasks: none may run inside "
            "sc_promise_set_value(), yet %s did",
            s.log);
    T_CHECK(strcmp(s.log, "A(10) B(11) C(22)") == 0,
            "the chain should run A(10) B(11) C(22): each continuation once, in order, "
            "seeing the previous value; it ran: %s",
            s.log[0] ? s.log : "(nothing)");
    T_CHECK(s.collected == 1 && s.final_err == 0 && s.final_value == 19,
            "the chain's future should resolve once with ((10 + 1) * 2) - 3 = 19; it resolved "
            "%d time(s), last with value %ld, error %d",
            s.collected, (long)s.final_value, s.final_err);
    expect_clean(o);
}
END_TEST

/* ---- 5. a continuation returning a pending future forwards its outcome --- */

struct fwd_story {
    struct sc_promise q; /* the input */
    struct sc_promise p; /* what the continuation returns, set later */
    struct sc_future r;  /* sc_then()'s result */
    int a_calls;
    struct sc_task t1, t2;
    struct sc_promise done;
};

static struct sc_future returns_pending(void *cap, intptr_t v)
{
    struct fwd_story *s = *(struct fwd_story **)cap;
    s->a_calls++;
    tr_step("  continuation A runs with %ld and returns the (pending) future of promise P",
            (long)v);
    sc_promise_init(&s->p);
    return sc_promise_get_future(&s->p);
}

static void fwd_t2(struct sc_task *t)
{
    struct fwd_story *s = SC_CONTAINER_OF(t, struct fwd_story, t2);
    intptr_t v = value_now(s->r, "the result of sc_then(), once P is set");
    T_CHECK(v == 77, "the result of sc_then() should be P's value 77, not %ld", (long)v);
    tr_step("the result of sc_then() holds P's value, 77");
    sc_promise_set_value(&s->done, 0);
}

static void fwd_t1(struct sc_task *t)
{
    struct fwd_story *s = SC_CONTAINER_OF(t, struct fwd_story, t1);
    tr_step("a later task: A ran %d time(s)", s->a_calls);
    T_CHECK(s->a_calls == 1, "continuation A should have run once by now, not %d times",
            s->a_calls);
    T_CHECK(!sc_future_available(s->r),
            "A returned a pending future (P), so the result of sc_then() must stay pending "
            "until P is set");
    tr_step("the result is still pending; set P to 77");
    sc_promise_set_value(&s->p, 77);
    s->t2.run = fwd_t2;
    sc_task_schedule(&s->t2);
}

static struct sc_future fwd_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct fwd_story *s = arg;
    sc_promise_init(&s->q);
    sc_promise_init(&s->done);
    tr_step("r = sc_then(pending future of Q, A)");
    s->r = SC_THEN(sc_promise_get_future(&s->q), returns_pending, s);
    T_CHECK(!sc_future_available(s->r), "r should be pending while Q is not set");
    tr_step("set Q to 1; A runs as a task");
    sc_promise_set_value(&s->q, 1);
    s->t1.run = fwd_t1;
    sc_task_schedule(&s->t1);
    return sc_promise_get_future(&s->done);
}

START_TEST(pending_result_is_forwarded)
{
    begin("pending_result_is_forwarded", _i);
    struct fwd_story s;
    memset(&s, 0, sizeof s);
    expect_clean(run_story(_i, fwd_main, &s));
}
END_TEST

/* ---- 6. the pending path captures by value ----------------------------- */

struct byval_cap {
    int n;
    char word[20];
};

struct byval_story {
    struct sc_promise pr;
    int calls;
    struct byval_cap seen;
    const void *seen_at;
    const void *original;
    uint64_t pool_before, pool_waiting;
};

static struct byval_story *byval_current;

static struct sc_future byval_fn(void *cap, intptr_t v)
{
    (void)v;
    struct byval_story *s = byval_current;
    s->calls++;
    memcpy(&s->seen, cap, sizeof s->seen);
    s->seen_at = cap;
    tr_step("  the continuation sees n=%d word=\"%.19s\" (capture at %p)", s->seen.n, s->seen.word,
            cap);
    return sc_make_ready(0);
}

static struct sc_future byval_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct byval_story *s = arg;
    byval_current = s;
    struct byval_cap cap = {1, "before"};
    s->original = &cap;
    sc_promise_init(&s->pr);
    struct sc_future f = sc_promise_get_future(&s->pr);
    s->pool_before = pool_allocs();
    tr_step("sc_then(pending future, fn, &cap) with cap = {1, \"before\"} at %p", (void *)&cap);
    struct sc_future r = sc_then(f, byval_fn, &cap, sizeof cap);
    s->pool_waiting = pool_allocs();
    tr_step("change the original to {2, \"after\"}, then set the promise");
    cap.n = 2;
    memset(cap.word, 'X', sizeof cap.word);
    memcpy(cap.word, "after", 6);
    T_CHECK(s->calls == 0, "the continuation should wait for the promise, yet it ran");
    sc_promise_set_value(&s->pr, 0);
    return r;
}

START_TEST(pending_captures_by_value)
{
    begin("pending_captures_by_value", _i);
    struct byval_story s;
    memset(&s, 0, sizeof s);
    struct outcome o = run_story(_i, byval_main, &s);
    T_CHECK(s.calls == 1, "the continuation should run once, not %d times", s.calls);
    T_CHECK(s.seen.n == 1 && strcmp(s.seen.word, "before") == 0,
            "the capture is copied when sc_then() is called: the continuation should see "
            "{1, \"before\"}, not {%d, \"%.19s\"}",
            s.seen.n, s.seen.word);
    T_CHECK(s.seen_at != s.original,
            "on the pending path the continuation should run on a copy of the capture, not on "
            "the caller's variable (which may be gone by then)");
    T_CHECK(s.pool_waiting == s.pool_before + 1,
            "a waiting continuation should take exactly one pool allocation (capture, task "
            "and result together); the pool went from %llu to %llu",
            (unsigned long long)s.pool_before, (unsigned long long)s.pool_waiting);
    expect_clean(o);
}
END_TEST

/* ---- the suite ------------------------------------------------------------ */

static Suite *suite(void)
{
    Suite *s = suite_create("lab 02: futures");
    TCase *tc = tcase_create("then");
    tcase_set_timeout(tc, 5);
    /* _i is the world: 0 the simulator, 1 the real machine. */
    tcase_add_loop_test(tc, then_on_ready_runs_at_once, 0, 2);
    tcase_add_loop_test(tc, promise_set_before_future_taken, 0, 2);
    tcase_add_loop_test(tc, errors_skip_then, 0, 2);
    tcase_add_loop_test(tc, chain_runs_in_order, 0, 2);
    tcase_add_loop_test(tc, pending_result_is_forwarded, 0, 2);
    tcase_add_loop_test(tc, pending_captures_by_value, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
