/*
 * grader.c — lab 03: the timer heap (core/timer.c).
 *
 * Every check arms timers through the public API (sc_timer_arm and friends)
 * and watches them fire from the reactor, in both worlds: the simulator
 * (virtual time) and the real machine (CLOCK_MONOTONIC, epoll). Deadlines
 * are absolute and stay a few milliseconds ahead, so the order the grader
 * expects is exact in both worlds and each check takes a few ms of real time.
 *
 * The story of each check is written down as it happens (tr_step); a failing
 * T_CHECK prints its last steps. Random choices come from sc_random(), and
 * the seed is printed: every run with the same seed makes the same choices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

/* ---- helpers -------------------------------------------------------------- */

/* Start the story of one check: its name (as Check prints it) and world. */
static void begin(const char *name, int w)
{
    tr_reset();
    tr_step("%s, %s world", name, t_backend_names[w]);
}

/* Run main_fn(arg) on a shard of world w; it must finish with exit code 0. */
static void run_story(int w, sc_main_fn main_fn, void *arg)
{
    int code = t_run(t_backends[w], main_fn, arg);
    tr_step("the run ended with exit code %d", code);
    T_CHECK(code == 0,
            "the run should end with exit code 0, not %d. If the shard said it had nothing "
            "left to do, a timer that should have fired never did",
            code);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    ck_assert_msg(p != NULL, "out of memory");
    return p;
}

/* (deadline, arming order) as the heap compares them */
static bool before(uint64_t d1, uint64_t s1, uint64_t d2, uint64_t s2)
{
    return d1 < d2 || (d1 == d2 && s1 < s2);
}

/* ---- a field of timers whose firing is recorded ------------------------ */

/*
 * Timer i of a field is armed in order i (so its arming order is i) at
 * deadline[i]. When one fires, the field checks that it is not early, not
 * cancelled, and not out of order against the timer that fired before it.
 * A sentinel timer, armed after the others at a later deadline, ends the run.
 */
struct field;

struct slot {
    struct field *f;
    unsigned i;
};

struct field {
    unsigned n;
    struct sc_timer *t;
    struct slot *slots;
    uint64_t *deadline;
    bool *cancelled;
    bool *hit;             /* fired already */
    unsigned *fired_order; /* indices in firing order */
    unsigned fired;
    uint64_t base;
    struct sc_timer sentinel;
    unsigned expect_fired; /* how many should have fired when the sentinel does */
    struct sc_promise done;
};

static void field_fire(void *arg)
{
    struct slot *sl = arg;
    struct field *f = sl->f;
    unsigned i = sl->i;
    uint64_t now = sc_now();
    T_CHECK(!f->cancelled[i], "timer #%u was cancelled, yet it fired", i);
    T_CHECK(!f->hit[i], "timer #%u fired twice (it was armed once)", i);
    f->hit[i] = true;
    T_CHECK(now >= f->deadline[i], "timer #%u fired early: at +%llu ns, its deadline is +%llu ns",
            i, (unsigned long long)(now - f->base), (unsigned long long)(f->deadline[i] - f->base));
    T_CHECK(!sc_timer_armed(&f->t[i]), "timer #%u should be disarmed when its callback runs", i);
    if (f->fired) {
        unsigned p = f->fired_order[f->fired - 1];
        T_CHECK(before(f->deadline[p], p, f->deadline[i], i),
                "timers fire in (deadline, arming order): timer #%u (deadline +%llu ns, armed "
                "%s) fired after timer #%u (deadline +%llu ns, armed %s)",
                i, (unsigned long long)(f->deadline[i] - f->base), i < p ? "earlier" : "later", p,
                (unsigned long long)(f->deadline[p] - f->base), i < p ? "later" : "earlier");
    }
    f->fired_order[f->fired++] = i;
}

static void field_end(void *arg)
{
    struct field *f = arg;
    tr_step("the sentinel fires at +%llu ns: %u of %u timers fired, %zu still armed",
            (unsigned long long)(sc_now() - f->base), f->fired, f->n, sc_timer_count());
    T_CHECK(f->fired == f->expect_fired,
            "by the sentinel's deadline (after every other), %u timers should have fired, "
            "not %u",
            f->expect_fired, f->fired);
    T_CHECK(sc_timer_count() == 0, "no timer should be armed at the end, yet %zu are",
            sc_timer_count());
    sc_promise_set_value(&f->done, 0);
}

static void field_init(struct field *f, unsigned n)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->t = xcalloc(n, sizeof *f->t);
    f->slots = xcalloc(n, sizeof *f->slots);
    f->deadline = xcalloc(n, sizeof *f->deadline);
    f->cancelled = xcalloc(n, sizeof *f->cancelled);
    f->hit = xcalloc(n, sizeof *f->hit);
    f->fired_order = xcalloc(n, sizeof *f->fired_order);
    f->expect_fired = n;
}

static void field_free(struct field *f)
{
    free(f->t);
    free(f->slots);
    free(f->deadline);
    free(f->cancelled);
    free(f->hit);
    free(f->fired_order);
}

/* Arm every timer of the field at base + offset[i], then the sentinel after
 * them all; returns the future that resolves when the sentinel has fired. */
static struct sc_future field_arm(struct field *f, const uint64_t *offset)
{
    f->base = sc_now();
    uint64_t last = 0;
    for (unsigned i = 0; i < f->n; i++) {
        f->slots[i] = (struct slot){f, i};
        sc_timer_init(&f->t[i], field_fire, &f->slots[i]);
        f->deadline[i] = f->base + offset[i];
        int rc = sc_timer_arm(&f->t[i], f->deadline[i]);
        T_CHECK(rc == 0, "arming idle timer #%u should return 0, not %d", i, rc);
        T_CHECK(sc_timer_count() == i + 1u, "after arming %u timer(s), sc_timer_count() says %zu",
                i + 1, sc_timer_count());
        if (offset[i] > last)
            last = offset[i];
    }
    sc_promise_init(&f->done);
    sc_timer_init(&f->sentinel, field_end, f);
    int rc = sc_timer_arm(&f->sentinel, f->base + last + SC_US(500));
    T_CHECK(rc == 0, "arming the sentinel should return 0, not %d", rc);
    return sc_promise_get_future(&f->done);
}

/* ---- 1. deadline order ------------------------------------------------------ */

#define MANY 1000

static struct sc_future order_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct field *f = arg;
    uint64_t off[MANY];
    for (unsigned i = 0; i < MANY; i++)
        off[i] = SC_US(1) + sc_random_below(SC_MS(2));
    tr_step("arm %d timers at random deadlines in the next 2 ms (seed %llu)", MANY,
            (unsigned long long)sc_seed());
    return field_arm(f, off);
}

START_TEST(fire_in_deadline_order)
{
    begin("fire_in_deadline_order", _i);
    struct field f;
    field_init(&f, MANY);
    run_story(_i, order_main, &f);
    field_free(&f);
}
END_TEST

/* ---- 2. same deadline: arming order ---------------------------------------- */

static struct sc_future ties_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct field *f = arg;
    uint64_t off[300];
    for (unsigned i = 0; i < 300; i++)
        off[i] = SC_MS(1) + SC_MS(1) * sc_random_below(3);
    tr_step("arm 300 timers, each at one of three deadlines (+1, +2, +3 ms) chosen at random");
    return field_arm(f, off);
}

START_TEST(same_deadline_fires_in_arming_order)
{
    begin("same_deadline_fires_in_arming_order", _i);
    struct field f;
    field_init(&f, 300);
    run_story(_i, ties_main, &f);
    /* field_fire checked every neighbour pair; check the whole sequence too. */
    for (unsigned k = 0; k < f.n; k++) {
        unsigned want = k; /* the k-th timer in (deadline, index) order */
        unsigned rank = 0;
        for (unsigned j = 0; j < f.n; j++)
            rank += before(f.deadline[j], j, f.deadline[f.fired_order[k]], f.fired_order[k]);
        T_CHECK(rank == want, "the %u-th timer to fire (#%u) should have been the %u-th", k,
                f.fired_order[k], rank);
    }
    field_free(&f);
}
END_TEST

/* ---- 3. cancelled timers never fire -------------------------------------- */

static struct sc_future cancel_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct field *f = arg;
    uint64_t off[MANY];
    for (unsigned i = 0; i < MANY; i++)
        off[i] = SC_US(1) + sc_random_below(SC_MS(2));
    tr_step("arm %d timers at random deadlines in the next 2 ms", MANY);
    struct sc_future done = field_arm(f, off);

    /* Cancel a random half: shuffle the indices, cancel the first half. */
    unsigned idx[MANY];
    for (unsigned i = 0; i < MANY; i++)
        idx[i] = i;
    for (unsigned i = MANY - 1; i > 0; i--) {
        unsigned j = (unsigned)sc_random_below(i + 1);
        unsigned x = idx[i];
        idx[i] = idx[j];
        idx[j] = x;
    }
    tr_step("cancel a random half of them (%d timers)", MANY / 2);
    for (unsigned k = 0; k < MANY / 2; k++) {
        unsigned i = idx[k];
        bool was = sc_timer_cancel(&f->t[i]);
        f->cancelled[i] = true;
        T_CHECK(was, "sc_timer_cancel(armed timer #%u) should return true", i);
        T_CHECK(!sc_timer_armed(&f->t[i]), "timer #%u should be disarmed once cancelled", i);
        /* +1: the sentinel */
        T_CHECK(sc_timer_count() == MANY - k,
                "after cancelling %u of %d timers, sc_timer_count() should be %u (with the "
                "sentinel), not %zu",
                k + 1, MANY, MANY - k, sc_timer_count());
        T_CHECK(!sc_timer_cancel(&f->t[i]), "cancelling timer #%u twice should return false", i);
    }
    f->expect_fired = MANY - MANY / 2;
    tr_step("%zu timers are still armed (with the sentinel)", sc_timer_count());
    return done;
}

START_TEST(cancelled_timers_never_fire)
{
    begin("cancelled_timers_never_fire", _i);
    struct field f;
    field_init(&f, MANY);
    run_story(_i, cancel_main, &f);
    field_free(&f);
}
END_TEST

/* ---- 4. a callback re-arms its own timer --------------------------------- */

struct rearm_story {
    struct sc_timer a, b, end;
    uint64_t base;
    int a_fires;
    char log[64];
    struct sc_promise done;
};

static void log_fire(struct rearm_story *s, const char *name, uint64_t deadline)
{
    T_CHECK(sc_now() >= deadline, "%s fired %llu ns before its deadline", name,
            (unsigned long long)(deadline - sc_now()));
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "%s%s", n ? " " : "", name);
    tr_step("  %s fires at +%llu us; so far: %s", name,
            (unsigned long long)((sc_now() - s->base) / 1000), s->log);
}

static void rearm_a(void *arg)
{
    struct rearm_story *s = arg;
    log_fire(s, "A", s->base + SC_MS(1) * (uint64_t)(s->a_fires + 1));
    T_CHECK(!sc_timer_armed(&s->a), "A should be disarmed when its callback runs");
    size_t armed = sc_timer_count();
    if (++s->a_fires < 5) {
        uint64_t next = s->base + SC_MS(1) * (uint64_t)(s->a_fires + 1);
        int rc = sc_timer_arm(&s->a, next);
        T_CHECK(rc == 0, "re-arming A from its own callback should return 0, not %d", rc);
        T_CHECK(sc_timer_armed(&s->a), "A should be armed again");
        T_CHECK(sc_timer_count() == armed + 1,
                "re-arming A should add one timer: sc_timer_count() went from %zu to %zu", armed,
                sc_timer_count());
    }
}

static void rearm_b(void *arg)
{
    struct rearm_story *s = arg;
    log_fire(s, "B", s->base + SC_US(3500));
}

static void rearm_end(void *arg)
{
    struct rearm_story *s = arg;
    log_fire(s, "END", s->base + SC_MS(8));
    sc_promise_set_value(&s->done, 0);
}

static struct sc_future rearm_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct rearm_story *s = arg;
    s->base = sc_now();
    sc_timer_init(&s->a, rearm_a, s);
    sc_timer_init(&s->b, rearm_b, s);
    sc_timer_init(&s->end, rearm_end, s);
    sc_promise_init(&s->done);
    tr_step("A at +1 ms re-arms itself 1 ms later, 4 times; B at +3.5 ms; END at +8 ms");
    int rc = sc_timer_arm(&s->end, s->base + SC_MS(8));
    rc |= sc_timer_arm(&s->a, s->base + SC_MS(1));
    rc |= sc_timer_arm(&s->b, s->base + SC_US(3500));
    T_CHECK(rc == 0, "arming three idle timers should succeed");
    return sc_promise_get_future(&s->done);
}

START_TEST(rearm_from_callback)
{
    begin("rearm_from_callback", _i);
    struct rearm_story s;
    memset(&s, 0, sizeof s);
    run_story(_i, rearm_main, &s);
    if (t_backends[_i] == SC_BACKEND_SIM) {
        T_CHECK(strcmp(s.log, "A A A B A A END") == 0,
                "expected the firings A A A B A A END (A at 1, 2, 3, 4, 5 ms, B at 3.5 ms), "
                "got: %s",
                s.log);
    } else {
        /* On a real machine a stall of a few ms can make several deadlines
         * expire at once. A timer re-armed inside a batch waits for the next
         * turn, so B may then pass A's re-armed firings, but never A's first
         * (an earlier deadline in the same batch) nor A's 4th (armed only
         * after B expired). None may fire early (checked in the callbacks). */
        T_CHECK(strcmp(s.log, "A A A B A A END") == 0 || strcmp(s.log, "A A B A A A END") == 0 ||
                    strcmp(s.log, "A B A A A A END") == 0,
                "expected A five times and B once (A at 1, 2, 3, 4, 5 ms, B at 3.5 ms), END last, "
                "got: %s",
                s.log);
    }
}
END_TEST

/* ---- 5. sc_timer_count() follows arm and cancel -------------------------- */

struct count_story {
    struct sc_timer t[10];
    unsigned fired;
    size_t expect_count; /* what sc_timer_count() should say in the next callback */
    struct sc_promise done;
};

static void count_fire(void *arg)
{
    struct count_story *s = arg;
    s->fired++;
    s->expect_count--;
    T_CHECK(sc_timer_count() == s->expect_count,
            "when the %u-th timer fires, %zu should still be armed; sc_timer_count() says %zu",
            s->fired, s->expect_count, sc_timer_count());
    if (s->expect_count == 0)
        sc_promise_set_value(&s->done, 0);
}

static struct sc_future count_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct count_story *s = arg;
    uint64_t base = sc_now();
    sc_promise_init(&s->done);
    tr_step("sc_timer_count() with nothing armed: %zu", sc_timer_count());
    T_CHECK(sc_timer_count() == 0, "no timer is armed yet, but sc_timer_count() says %zu",
            sc_timer_count());
    for (unsigned i = 0; i < 10; i++) {
        sc_timer_init(&s->t[i], count_fire, s);
        int rc = sc_timer_arm(&s->t[i], base + SC_US(100) * (10 - i));
        T_CHECK(rc == 0, "arming idle timer #%u should return 0, not %d", i, rc);
        T_CHECK(sc_timer_count() == i + 1u, "after arming %u timer(s), sc_timer_count() says %zu",
                i + 1, sc_timer_count());
    }
    tr_step("armed 10 timers (deadlines in reverse order); count %zu", sc_timer_count());
    unsigned cancel[3] = {0, 9, 4}; /* the latest deadline, the top, one in between */
    for (unsigned k = 0; k < 3; k++) {
        bool was = sc_timer_cancel(&s->t[cancel[k]]);
        tr_step("cancel #%u -> %s; count %zu", cancel[k], was ? "true" : "false", sc_timer_count());
        T_CHECK(was, "cancelling armed timer #%u should return true", cancel[k]);
        T_CHECK(sc_timer_count() == 9 - k, "after %u cancels, sc_timer_count() should be %u", k + 1,
                9 - k);
    }
    bool again = sc_timer_cancel(&s->t[4]);
    T_CHECK(!again, "cancelling timer #4 a second time should return false");
    T_CHECK(sc_timer_count() == 7, "a second cancel must not change the count (7), it says %zu",
            sc_timer_count());
    int rc = sc_timer_arm(&s->t[4], base + SC_US(50));
    tr_step("re-arm cancelled #4 (now the earliest) -> %d; count %zu", rc, sc_timer_count());
    T_CHECK(rc == 0 && sc_timer_count() == 8,
            "re-arming a cancelled timer should work (rc %d) and count 8 (count %zu)", rc,
            sc_timer_count());
    s->expect_count = 8;
    return sc_promise_get_future(&s->done);
}

START_TEST(count_tracks_arm_and_cancel)
{
    begin("count_tracks_arm_and_cancel", _i);
    struct count_story s;
    memset(&s, 0, sizeof s);
    run_story(_i, count_main, &s);
    T_CHECK(s.fired == 8, "8 timers should have fired, not %u", s.fired);
}
END_TEST

/* ---- 6. arming an armed timer is -EBUSY ------------------------------------ */

struct busy_story {
    struct sc_timer t, end;
    uint64_t deadline;
    int fired;
    uint64_t fired_at;
    struct sc_promise done;
};

static void busy_fire(void *arg)
{
    struct busy_story *s = arg;
    s->fired++;
    s->fired_at = sc_now();
}

static void busy_end(void *arg)
{
    struct busy_story *s = arg;
    sc_promise_set_value(&s->done, 0);
}

static struct sc_future busy_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct busy_story *s = arg;
    uint64_t base = sc_now();
    s->deadline = base + SC_MS(1);
    sc_promise_init(&s->done);
    sc_timer_init(&s->t, busy_fire, s);
    sc_timer_init(&s->end, busy_end, s);
    int rc = sc_timer_arm(&s->t, s->deadline);
    tr_step("arm T at +1 ms -> %d", rc);
    T_CHECK(rc == 0, "arming an idle timer should return 0, not %d", rc);
    rc = sc_timer_arm(&s->t, base);
    tr_step("arm T again, at +0 -> %d (%s)", rc, rc ? sc_strerror(rc) : "ok");
    T_CHECK(rc == -EBUSY, "arming an armed timer should return -EBUSY (%d), not %d", -EBUSY, rc);
    T_CHECK(sc_timer_armed(&s->t) && sc_timer_count() == 1,
            "T should still be armed once (sc_timer_count() %zu)", sc_timer_count());
    rc = sc_timer_arm(&s->end, base + SC_MS(2));
    T_CHECK(rc == 0, "arming the END timer should return 0, not %d", rc);
    return sc_promise_get_future(&s->done);
}

START_TEST(arm_armed_timer_is_ebusy)
{
    begin("arm_armed_timer_is_ebusy", _i);
    struct busy_story s;
    memset(&s, 0, sizeof s);
    run_story(_i, busy_main, &s);
    T_CHECK(s.fired == 1, "T should fire exactly once, not %d times", s.fired);
    T_CHECK(s.fired_at >= s.deadline,
            "T should fire at its first deadline (+1 ms): the refused arm must not move it");
}
END_TEST

/* ---- 7. a deadline in the past fires on the next turn ------------------- */

struct past_story {
    struct sc_timer later[50], past;
    uint64_t polls_at_arm;
    uint64_t polls_at_fire;
    int past_fired, later_fired;
    struct sc_promise done;
};

static uint64_t polls(void)
{
    struct sc_reactor_stats st;
    sc_reactor_stats(&st);
    return st.polls;
}

static void past_fire(void *arg)
{
    struct past_story *s = arg;
    s->past_fired++;
    s->polls_at_fire = polls();
    tr_step("  the past-deadline timer fires (reactor turn %llu; %d later timers fired before it)",
            (unsigned long long)s->polls_at_fire, s->later_fired);
    T_CHECK(s->later_fired == 0,
            "the timer with the past deadline is the earliest, yet %d later timers fired first",
            s->later_fired);
}

static void later_fire(void *arg)
{
    struct past_story *s = arg;
    if (++s->later_fired == 50)
        sc_promise_set_value(&s->done, 0);
}

static struct sc_future past_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct past_story *s = arg;
    uint64_t base = sc_now();
    sc_promise_init(&s->done);
    for (unsigned i = 0; i < 50; i++) {
        sc_timer_init(&s->later[i], later_fire, s);
        int rc = sc_timer_arm(&s->later[i], base + SC_US(100) + sc_random_below(SC_MS(1)));
        T_CHECK(rc == 0, "arming idle timer #%u should return 0, not %d", i, rc);
    }
    sc_timer_init(&s->past, past_fire, s);
    s->polls_at_arm = polls();
    int rc = sc_timer_arm(&s->past, 0);
    tr_step("50 timers armed in the next 1.1 ms; arm one more at deadline 0 (the past) -> %d, "
            "in reactor turn %llu",
            rc, (unsigned long long)s->polls_at_arm);
    T_CHECK(rc == 0, "arming a timer in the past should return 0, not %d", rc);
    return sc_promise_get_future(&s->done);
}

START_TEST(past_deadline_fires_next_turn)
{
    begin("past_deadline_fires_next_turn", _i);
    struct past_story s;
    memset(&s, 0, sizeof s);
    run_story(_i, past_main, &s);
    T_CHECK(s.past_fired == 1, "the timer with a past deadline should fire once, not %d times",
            s.past_fired);
    T_CHECK(s.polls_at_fire == s.polls_at_arm + 1,
            "a deadline in the past fires on the next reactor turn: armed in turn %llu, it "
            "fired in turn %llu",
            (unsigned long long)s.polls_at_arm, (unsigned long long)s.polls_at_fire);
}
END_TEST

/* ---- 8. sc_sleep: many sleepers wake in order ----------------------------- */

#define SLEEPERS 200

struct sleep_story {
    uint64_t ns[SLEEPERS];
    uint64_t lo[SLEEPERS], hi[SLEEPERS]; /* the deadline lies in [lo, hi] */
    unsigned woke;
    uint64_t floor; /* the largest lo of the sleepers woken so far */
    unsigned last;  /* the sleeper that woke last */
    bool simulated;
    struct sc_future fs[SLEEPERS];
};

struct sleeper_cap {
    struct sleep_story *s;
    unsigned i;
};

static struct sc_future sleeper_wakes(void *cap, intptr_t v)
{
    (void)v;
    struct sleeper_cap *c = cap;
    struct sleep_story *s = c->s;
    unsigned i = c->i;
    T_CHECK(sc_now() >= s->lo[i], "sleeper #%u (sc_sleep(%llu ns)) woke early", i,
            (unsigned long long)s->ns[i]);
    /* Its deadline is at most hi[i]; one that woke before it is at least
     * floor. In the real world the clock moves while sleepers are created, so
     * only an order that no deadline in [lo, hi] explains is wrong. */
    T_CHECK(s->hi[i] >= s->floor,
            "sleeper #%u (sc_sleep(%llu us)) woke after a sleeper with a later deadline", i,
            (unsigned long long)(s->ns[i] / 1000));
    if (s->simulated && s->woke) {
        unsigned p = s->last;
        T_CHECK(before(s->lo[p], p, s->lo[i], i),
                "sleeper #%u (deadline %llu ns) woke after sleeper #%u (deadline %llu ns): "
                "sleepers wake in (deadline, call order)",
                i, (unsigned long long)s->lo[i], p, (unsigned long long)s->lo[p]);
    }
    if (s->lo[i] > s->floor)
        s->floor = s->lo[i];
    s->last = i;
    s->woke++;
    return sc_make_ready(0);
}

static struct sc_future sleep_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct sleep_story *s = arg;
    s->simulated = sc_is_simulated();
    tr_step("start %d sleepers, each sc_sleep(k * 100 us) with k random in [1, 20]", SLEEPERS);
    for (unsigned i = 0; i < SLEEPERS; i++) {
        struct sleeper_cap cap = {s, i};
        s->ns[i] = SC_US(100) * (1 + sc_random_below(20));
        s->lo[i] = sc_now() + s->ns[i];
        struct sc_future f = sc_sleep(s->ns[i]);
        s->hi[i] = sc_now() + s->ns[i];
        s->fs[i] = sc_then(f, sleeper_wakes, &cap, sizeof cap);
    }
    tr_step("%zu timers armed; wait for all sleepers", sc_timer_count());
    return sc_when_all_succeed(s->fs, SLEEPERS);
}

START_TEST(sleepers_wake_in_order)
{
    begin("sleepers_wake_in_order", _i);
    struct sleep_story *s = xcalloc(1, sizeof *s);
    run_story(_i, sleep_main, s);
    T_CHECK(s->woke == SLEEPERS, "all %d sleepers should wake, not %u", SLEEPERS, s->woke);
    free(s);
}
END_TEST

/* ---- 9. a randomized model check: arm, cancel, fire, interleaved ---------- */

/*
 * The model is a sorted list of the armed timers' (deadline, arming order).
 * Every fired timer must be the model's first; after each firing (and first
 * from the main task) a few random operations arm, cancel and query timers,
 * and every answer must match the model. The mix (60% arm, 20% cancel, 20%
 * query, over 256 timers) keeps about 60 timers armed, so the heap is deep
 * enough for a cancel in the middle to need its sift up or down.
 */
#define MC_TIMERS 256
#define MC_OPS    4000

struct mc;

struct mc_slot {
    struct mc *m;
    unsigned id;
};

struct mc {
    struct sc_timer t[MC_TIMERS];
    struct mc_slot slots[MC_TIMERS];
    uint64_t deadline[MC_TIMERS], seq[MC_TIMERS];
    unsigned list[MC_TIMERS]; /* the model: armed timers sorted by (deadline, seq) */
    unsigned len;
    uint64_t armed_turn[MC_TIMERS]; /* the reactor turn in which each timer was armed */
    uint64_t turn;                  /* counted by a poller: pollers end every turn */
    uint64_t next_seq;
    uint64_t base;
    unsigned ops, fires, arms, cancels;
    bool finished;
    struct sc_promise done;
};

static bool mc_armed(const struct mc *m, unsigned id)
{
    for (unsigned k = 0; k < m->len; k++)
        if (m->list[k] == id)
            return true;
    return false;
}

static void mc_insert(struct mc *m, unsigned id)
{
    unsigned k = m->len++;
    while (k > 0 && before(m->deadline[id], m->seq[id], m->deadline[m->list[k - 1]],
                           m->seq[m->list[k - 1]])) {
        m->list[k] = m->list[k - 1];
        k--;
    }
    m->list[k] = id;
}

static void mc_erase(struct mc *m, unsigned id)
{
    unsigned k = 0;
    while (m->list[k] != id)
        k++;
    memmove(&m->list[k], &m->list[k + 1], (m->len - k - 1) * sizeof m->list[0]);
    m->len--;
}

static void mc_check_count(const struct mc *m)
{
    T_CHECK(sc_timer_count() == m->len, "sc_timer_count() says %zu, but %u timers are armed",
            sc_timer_count(), m->len);
}

/* One random operation on a random timer. */
static void mc_op(struct mc *m)
{
    unsigned id = (unsigned)sc_random_below(MC_TIMERS);
    unsigned what = (unsigned)sc_random_below(10);
    bool armed = mc_armed(m, id);
    uint64_t now = sc_now();
    m->ops++;
    if (what < 6) {
        /* Deadlines on a 2 us grid from the start, so that ties are common
         * in both worlds; one in eight lies a little in the past. */
        uint64_t slot = (now - m->base) / SC_US(2);
        if (sc_random_below(8) == 0)
            slot -= slot < 3 ? slot : 3;
        else
            slot += sc_random_below(64);
        uint64_t d = m->base + SC_US(2) * slot;
        int rc = sc_timer_arm(&m->t[id], d);
        tr_step("op %u: arm #%u at %+lld ns -> %d", m->ops, id, (long long)(d - m->base), rc);
        if (armed) {
            T_CHECK(rc == -EBUSY, "timer #%u is armed: arming it again should be -EBUSY, not %d",
                    id, rc);
        } else {
            T_CHECK(rc == 0, "arming idle timer #%u should return 0, not %d", id, rc);
            m->deadline[id] = d;
            m->seq[id] = ++m->next_seq;
            m->armed_turn[id] = m->turn;
            mc_insert(m, id);
            m->arms++;
        }
    } else if (what < 8) {
        bool was = sc_timer_cancel(&m->t[id]);
        tr_step("op %u: cancel #%u -> %s", m->ops, id, was ? "true" : "false");
        T_CHECK(was == armed, "sc_timer_cancel(#%u) should return %s: the timer is %s", id,
                armed ? "true" : "false", armed ? "armed" : "idle");
        if (armed) {
            mc_erase(m, id);
            m->cancels++;
        }
    } else {
        T_CHECK(sc_timer_armed(&m->t[id]) == armed, "sc_timer_armed(#%u) should say %s", id,
                armed ? "true" : "false");
    }
    mc_check_count(m);
}

/* A few random operations; keep something armed until the budget is spent. */
static void mc_ops(struct mc *m, unsigned n)
{
    for (unsigned k = 0; k < n && m->ops < MC_OPS; k++)
        mc_op(m);
    if (m->len == 0 && !m->finished) {
        if (m->ops < MC_OPS) {
            unsigned id = (unsigned)sc_random_below(MC_TIMERS);
            m->deadline[id] = sc_now() + SC_US(10);
            m->seq[id] = ++m->next_seq;
            m->armed_turn[id] = m->turn;
            int rc = sc_timer_arm(&m->t[id], m->deadline[id]);
            tr_step("nothing armed: arm #%u at %+lld ns -> %d", id,
                    (long long)(m->deadline[id] - m->base), rc);
            T_CHECK(rc == 0, "arming idle timer #%u should return 0, not %d", id, rc);
            mc_insert(m, id);
            m->arms++;
            mc_check_count(m);
        } else {
            m->finished = true;
            tr_step("all %u operations done and every timer has fired or been cancelled", m->ops);
            sc_promise_set_value(&m->done, 0);
        }
    }
}

static void mc_fire(void *arg)
{
    struct mc_slot *sl = arg;
    struct mc *m = sl->m;
    unsigned id = sl->id;
    uint64_t now = sc_now();
    tr_step("fire #%u (deadline %+lld ns) at %+lld ns", id, (long long)(m->deadline[id] - m->base),
            (long long)(now - m->base));
    T_CHECK(m->len > 0, "timer #%u fired, but no timer is armed", id);
    /* The earliest timer armed before this turn began fires first; one armed
     * by a callback in this turn waits for the next turn (reactor.h), even
     * with a deadline in the past. */
    unsigned want = m->list[0];
    for (unsigned k = 0; k < m->len; k++) {
        if (m->armed_turn[m->list[k]] < m->turn) {
            want = m->list[k];
            break;
        }
    }
    T_CHECK(id == want,
            "timer #%u (deadline %+lld ns%s) fired, but #%u (deadline %+lld ns) is armed "
            "and due first",
            id, (long long)(m->deadline[id] - m->base),
            mc_armed(m, id) ? "" : ", not armed: cancelled or fired already", want,
            (long long)(m->deadline[want] - m->base));
    T_CHECK(now >= m->deadline[id], "timer #%u fired early", id);
    T_CHECK(!sc_timer_armed(&m->t[id]), "timer #%u should be disarmed in its callback", id);
    mc_erase(m, id);
    m->fires++;
    mc_check_count(m);
    mc_ops(m, 1 + (unsigned)sc_random_below(4));
}

static bool mc_count_turn(void *arg)
{
    ((struct mc *)arg)->turn++;
    return false;
}

static struct sc_future mc_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct mc *m = arg;
    m->base = sc_now();
    T_CHECK(sc_poller_add(mc_count_turn, m) >= 0, "sc_poller_add failed");
    sc_promise_init(&m->done);
    for (unsigned i = 0; i < MC_TIMERS; i++) {
        m->slots[i] = (struct mc_slot){m, i};
        sc_timer_init(&m->t[i], mc_fire, &m->slots[i]);
    }
    tr_step("model check: %d timers, %d random operations (seed %llu)", MC_TIMERS, MC_OPS,
            (unsigned long long)sc_seed());
    mc_ops(m, 128);
    return sc_promise_get_future(&m->done);
}

START_TEST(heap_matches_model)
{
    begin("heap_matches_model", _i);
    struct mc *m = xcalloc(1, sizeof *m);
    run_story(_i, mc_main, m);
    tr_step("%u operations: %u arms, %u cancels, %u fires", m->ops, m->arms, m->cancels, m->fires);
    T_CHECK(m->finished && m->ops == MC_OPS, "the model check should finish its %d operations",
            MC_OPS);
    T_CHECK(m->fires > MC_OPS / 10, "only %u timers fired: too few to test anything", m->fires);
    free(m);
}
END_TEST

/* ---- the suite -------------------------------------------------------------- */

static Suite *suite(void)
{
    Suite *s = suite_create("lab 03: the timer heap");
    TCase *tc = tcase_create("timers");
    tcase_set_timeout(tc, 5);
    /* _i is the world: 0 the simulator, 1 the real machine. */
    tcase_add_loop_test(tc, fire_in_deadline_order, 0, 2);
    tcase_add_loop_test(tc, same_deadline_fires_in_arming_order, 0, 2);
    tcase_add_loop_test(tc, cancelled_timers_never_fire, 0, 2);
    tcase_add_loop_test(tc, rearm_from_callback, 0, 2);
    tcase_add_loop_test(tc, count_tracks_arm_and_cancel, 0, 2);
    tcase_add_loop_test(tc, arm_armed_timer_is_ebusy, 0, 2);
    tcase_add_loop_test(tc, past_deadline_fires_next_turn, 0, 2);
    tcase_add_loop_test(tc, sleepers_wake_in_order, 0, 2);
    tcase_add_loop_test(tc, heap_matches_model, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
