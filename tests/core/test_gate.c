/*
 * test_gate.c — gates and sc_with_gate, in both worlds: close waits for
 * everyone inside, refuses newcomers, a second close is an error, leave on
 * both paths, out of memory, the end of a run with a close pending.
 */
#include "core/shard_impl.h"
#include "tests/core/coord_ev.h"

static int backend_i;
#define WORLD t_backends[backend_i]

static struct sc_gate gate;

static struct sc_future close_1(void)
{
    ev_reset();
    sc_gate_init(&gate);
    T_CHECK(sc_gate_enter(&gate) == 0 && sc_gate_enter(&gate) == 0, "two enter");
    struct sc_future c = sc_gate_close(&gate);
    T_CHECK(!sc_future_available(c), "close waits while 2 are inside");
    ev_watch(c, "closed");
    T_CHECK(sc_gate_is_closed(&gate), "closed from now on");
    T_CHECK(sc_gate_enter(&gate) == SC_EGATE_CLOSED, "a newcomer is refused");
    T_CHECK(!strcmp(ev_now(sc_gate_close(&gate)), "!ealready"), "closing twice is an error");
    T_CHECK(sc_gate_leave(&gate) == 0, "leave");
    return sc_make_ready(0);
}

static struct sc_future close_2(void)
{
    EV_EXPECT(""); /* one is still inside */
    T_CHECK(sc_gate_count(&gate) == 1, "1 inside");
    sc_gate_leave(&gate);
    return sc_make_ready(0);
}

static struct sc_future close_3(void)
{
    EV_EXPECT("closed");
    T_CHECK(sc_gate_leave(&gate) == -EINVAL, "a leave without an enter is an error");
    T_CHECK(sc_gate_count(&gate) == 0, "count stays 0");
    sc_gate_init(&gate);
    T_CHECK(!strcmp(ev_now(sc_gate_close(&gate)), "=0"), "closing an empty gate: ready");
    return sc_make_ready(0);
}

static struct sc_future close_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(close_1, close_2, close_3);
}

START_TEST(close_waits_and_refuses)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, close_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- with_gate ---- */

static int ran;

static struct sc_future op_end(void *cap, intptr_t v)
{
    (void)v;
    intptr_t outcome = *(intptr_t *)cap;
    return outcome < 0 ? sc_make_error((int)outcome) : sc_make_ready(outcome);
}

/* cap: the outcome (< 0: an error); pending when |outcome| >= 100 */
static struct sc_future op(void *cap, intptr_t v)
{
    (void)v;
    intptr_t outcome = *(intptr_t *)cap;
    ran++;
    if (outcome >= 100 || outcome <= -100)
        return sc_then(sc_sleep(SC_US(50)), op_end, &outcome, sizeof outcome);
    return op_end(cap, 0);
}

static struct sc_future with_1(void)
{
    ev_reset();
    sc_gate_init(&gate);
    intptr_t out = 3;
    T_CHECK(!strcmp(ev_now(SC_WITH_GATE(&gate, op, out)), "=3"), "inline op");
    out = -EIO;
    T_CHECK(!strcmp(ev_now(SC_WITH_GATE(&gate, op, out)), "!eio"), "inline error");
    T_CHECK(sc_gate_count(&gate) == 0, "left on both paths");
    out = 100;
    ev_watch(SC_WITH_GATE(&gate, op, out), "ok");
    out = -100;
    ev_watch(SC_WITH_GATE(&gate, op, out), "bad");
    T_CHECK(sc_gate_count(&gate) == 2, "2 in flight");
    /* close waits for both, whatever their outcome */
    return ev_watched(sc_gate_close(&gate), "closed");
}

static struct sc_future with_2(void)
{
    EV_HAS("ok=100");
    EV_HAS("bad!-100");
    T_CHECK(ev_has("closed") && strcmp(ev_log + strlen(ev_log) - 6, "closed") == 0,
            "the close resolves last: \"%s\"", ev_log);
    ran = 0;
    intptr_t out = 1;
    T_CHECK(!strcmp(ev_now(SC_WITH_GATE(&gate, op, out)), "!closed"), "with_gate on a closed gate");
    T_CHECK(ran == 0, "its function never runs");
    /* out of memory: the function never runs and the gate is left */
    sc_gate_init(&gate);
    sc__shard()->pool.fail_every = 1;
    out = 100;
    T_CHECK(!strcmp(ev_now(SC_WITH_GATE(&gate, op, out)), "!enomem"), "with_gate out of memory");
    T_CHECK(ran == 0 && sc_gate_count(&gate) == 0, "nothing ran, nobody inside");
    sc_gate_enter(&gate);
    T_CHECK(!strcmp(ev_now(sc_gate_close(&gate)), "!enomem"), "close out of memory");
    sc__shard()->pool.fail_every = 0;
    T_CHECK(!sc_gate_is_closed(&gate) && sc_gate_enter(&gate) == 0, "the gate stays open");
    return sc_make_ready(0);
}

static struct sc_future with_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(with_1, with_2);
}

START_TEST(with_gate)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, with_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- the end of a run with a close pending ---- */

static bool cont_ran;

static struct sc_future shutdown_cont(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v, (void)err;
    cont_ran = true;
    return sc_make_ready(0);
}

static struct sc_future shutdown_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc_gate_init(&gate);
    sc_gate_enter(&gate);
    sc_future_ignore(sc_then_wrapped(sc_gate_close(&gate), shutdown_cont, NULL, 0));
    return sc_make_ready(0);
}

START_TEST(run_ends_while_closing)
{
    tr_reset();
    backend_i = _i;
    struct sc_config cfg = t_config(WORLD);
    struct sc_run_result res;
    cont_ran = false;
    T_CHECK(sc_run_ex(&cfg, shutdown_main, NULL, 0, NULL, &res) == 0, "run failed");
    T_CHECK(res.unhandled_errors == 0 && !cont_ran, "a pending close is dropped silently");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gate");
    TCase *tc = tcase_create("gate");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, close_waits_and_refuses, 0, 2);
    tcase_add_loop_test(tc, with_gate, 0, 2);
    tcase_add_loop_test(tc, run_ends_while_closing, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
