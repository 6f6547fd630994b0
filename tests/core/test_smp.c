/*
 * test_smp.c — the SPSC ring, cross-shard calls, sharded services and
 * foreign pointers, in both worlds.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/ring.h"
#include "core/sharded.h"
#include "core/smp.h"
#include "tests/harness.h"

static int backend_i;
#define WORLD t_backends[backend_i]

static int run_smp(unsigned shards, sc_main_fn fn, void *arg)
{
    struct sc_config cfg = t_config(WORLD);
    cfg.smp = shards;
    cfg.sim_defer_ready_pct = cfg.sim_shuffle_pct = cfg.sim_preempt_pct = 10;
    tr_step("run on %u shards, %s world", shards, t_backend_names[backend_i]);
    return sc_run(&cfg, fn, arg, 0, NULL);
}

/* ---- the ring by itself ---- */

START_TEST(ring_wraps_and_fills)
{
    tr_reset();
    struct sc_ring r;
    T_CHECK(sc_ring_init(&r, 3) == -EINVAL, "capacity must be a power of two");
    T_CHECK(sc_ring_init(&r, 8) == 0, "init");
    void *out[16];
    uintptr_t next_in = 1, next_out = 1;
    for (int round = 0; round < 50; round++) {
        int k = 1 + round % 8; /* push k, some of which may not fit */
        int pushed = 0;
        for (int i = 0; i < k; i++)
            if (sc_ring_push(&r, (void *)next_in)) {
                next_in++;
                pushed++;
            }
        T_CHECK(!sc_ring_readable(&r) || round > 0, "nothing is visible before a publish");
        tr_step("round %d: pushed %d, staged %zu", round, pushed, sc_ring_staged(&r));
        sc_ring_publish(&r);
        size_t n = sc_ring_pop(&r, out, (size_t)(round % 5 + 1));
        for (size_t i = 0; i < n; i++) {
            T_CHECK((uintptr_t)out[i] == next_out, "got %lu, expected %lu (order)",
                    (unsigned long)(uintptr_t)out[i], (unsigned long)next_out);
            next_out++;
        }
    }
    /* full: exactly capacity items fit */
    size_t n;
    while ((n = sc_ring_pop(&r, out, 16)) > 0)
        next_out += n;
    int fit = 0;
    while (sc_ring_push(&r, (void *)1))
        fit++;
    T_CHECK(fit == 8, "an empty ring of 8 takes 8 items, took %d", fit);
    T_CHECK(!sc_ring_readable(&r), "staged items are invisible before publish");
    T_CHECK(sc_ring_publish(&r) && sc_ring_readable(&r), "publish makes them visible");
    T_CHECK(!sc_ring_publish(&r), "nothing new to publish");
    sc_ring_destroy(&r);
}
END_TEST

/* Two real threads: every item arrives once, in order. */
#ifdef SC_SAN
#define STRESS_ITEMS 200000u /* sanitizers are ~10-50x slower */
#else
#define STRESS_ITEMS 2000000u
#endif

static void *stress_consumer(void *arg)
{
    struct sc_ring *r = arg;
    uintptr_t expect = 1;
    void *out[64];
    while (expect <= STRESS_ITEMS) {
        size_t n = sc_ring_pop(r, out, 64);
        for (size_t i = 0; i < n; i++) {
            if ((uintptr_t)out[i] != expect)
                return (void *)expect;
            expect++;
        }
    }
    return NULL;
}

START_TEST(ring_two_threads)
{
    tr_reset();
    struct sc_ring r;
    sc_ring_init(&r, 64);
    pthread_t t;
    pthread_create(&t, NULL, stress_consumer, &r);
    for (uintptr_t i = 1; i <= STRESS_ITEMS; i++) {
        while (!sc_ring_push(&r, (void *)i))
            sc_ring_publish(&r);
        if (i % 7 == 0)
            sc_ring_publish(&r);
    }
    sc_ring_publish(&r);
    void *bad;
    pthread_join(t, &bad);
    T_CHECK(bad == NULL, "consumer saw item out of order at %lu", (unsigned long)(uintptr_t)bad);
    sc_ring_destroy(&r);
}
END_TEST

/* ---- submit_to: values, errors, bad shards, self ---- */

static struct sc_future whoami(void *cap)
{
    intptr_t base = *(intptr_t *)cap;
    return sc_make_ready(base + sc_this_shard());
}

static struct sc_future fail_there(void *cap)
{
    (void)cap;
    return sc_make_error(-ENOSPC);
}

static intptr_t sum(intptr_t a, intptr_t b)
{
    return a + b;
}

/* The checks run once every answer is back. */
struct answers {
    struct sc_future fs[3];
};
static struct answers ans;

static struct sc_future verify(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    unsigned n = sc_shard_count();
    intptr_t x = -1;
    T_CHECK(sc_future_get(ans.fs[0], &x) == 0 && x == 100 + (intptr_t)(n - 1),
            "value from shard %u: %ld", n - 1, (long)x);
    T_CHECK(sc_future_get(ans.fs[1], &x) == -ENOSPC, "an error crosses shards");
    T_CHECK(sc_future_get(ans.fs[2], &x) == 0 &&
                x == 100 * (intptr_t)n + (intptr_t)(n * (n - 1) / 2),
            "map_reduce over %u shards gave %ld", n, (long)x);
    tr_step("answers checked on %u shards", n);
    return sc_make_ready(0);
}

static struct sc_future answers_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    unsigned n = sc_shard_count();
    intptr_t base = 100, v = 0;
    struct sc_future f = SC_SUBMIT_TO(0, whoami, base);
    T_CHECK(sc_future_get(f, &v) == 0 && v == 100, "submit to self runs at once");
    f = sc_smp_submit_to(n, whoami, &base, sizeof base);
    T_CHECK(sc_future_get(f, NULL) == -EINVAL, "an out-of-range shard is -EINVAL");
    ans.fs[0] = SC_SUBMIT_TO(n - 1, whoami, base);
    ans.fs[1] = sc_smp_submit_to(n - 1, fail_there, NULL, 0);
    ans.fs[2] = sc_smp_map_reduce(whoami, sum, 0, &base, sizeof base);
    return sc_then(sc_when_all(ans.fs, 3), verify, NULL, 0);
}

START_TEST(submit_to_values_errors_bad_shards)
{
    tr_reset();
    backend_i = _i % 2;
    unsigned shards = _i < 2 ? 2 : 4;
    T_CHECK(run_smp(shards, answers_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- a sharded counter: many increments from everywhere, exact total ---- */

#define INCS_PER_SHARD 3000
static uint64_t *counters; /* one per shard, each touched only by its shard */

static struct sc_future incr_here(void *cap)
{
    (void)cap;
    counters[sc_this_shard()]++;
    return sc_make_ready(0);
}

static struct sc_future blast(void *cap, size_t i)
{
    (void)cap;
    unsigned target = (unsigned)((i * 7 + sc_this_shard()) % sc_shard_count());
    return sc_smp_submit_to(target, incr_here, NULL, 0);
}

static struct sc_future blast_from_here(void *cap)
{
    (void)cap;
    return sc_parallel_for_each(INCS_PER_SHARD, blast, NULL, 0);
}

static struct sc_future read_counter(void *cap)
{
    (void)cap;
    return sc_make_ready((intptr_t)counters[sc_this_shard()]);
}

static struct sc_future total_check(void *cap, intptr_t total)
{
    (void)cap;
    intptr_t want = (intptr_t)INCS_PER_SHARD * sc_shard_count();
    tr_step("total %ld, expected %ld", (long)total, (long)want);
    T_CHECK(total == want, "the sharded counter lost or duplicated increments");
    return sc_make_ready(0);
}

static struct sc_future sum_counters(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(sc_smp_map_reduce(read_counter, sum, 0, NULL, 0), total_check, NULL, 0);
}

static struct sc_future counter_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    counters = calloc(sc_shard_count(), 64);
    return sc_then(sc_smp_invoke_on_all(blast_from_here, NULL, 0), sum_counters, NULL, 0);
}

START_TEST(sharded_counter_is_exact)
{
    tr_reset();
    backend_i = _i % 2;
    T_CHECK(run_smp(_i < 2 ? 2 : 3, counter_main, NULL) == 0, "run failed");
    free(counters);
}
END_TEST

/* ---- a full ring: messages wait locally, none is lost ---- */

#define BURST 2000
static struct sc_future burst[BURST];

static struct sc_future burst_done(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct sc_smp_stats st;
    sc_smp_stats(&st);
    tr_step("sent %llu, overflowed %llu, batches %llu", st.sent, st.overflowed, st.batches);
    /* In the simulator shard 1 cannot run during shard 0's task, so the ring
     * must fill; on real CPUs shard 1 may keep up. */
    if (sc_is_simulated())
        T_CHECK(st.overflowed > 0, "%d calls in one task must overflow a 256-slot ring", BURST);
    T_CHECK(counters[1] == BURST, "shard 1 counted %llu of %d", (unsigned long long)counters[1],
            BURST);
    return sc_make_ready(0);
}

static struct sc_future burst_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    counters = calloc(sc_shard_count(), 64);
    for (int i = 0; i < BURST; i++) /* one task, no yield: the ring must fill */
        burst[i] = sc_smp_submit_to(1, incr_here, NULL, 0);
    return sc_then(sc_when_all_succeed(burst, BURST), burst_done, NULL, 0);
}

START_TEST(full_ring_queues_locally)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_smp(2, burst_main, NULL) == 0, "run failed");
    free(counters);
}
END_TEST

/* ---- ping-pong chains across shards ---- */

struct ball {
    int hops_left;
};

static struct sc_future hit(void *cap);

static struct sc_future hit(void *cap)
{
    struct ball b = *(struct ball *)cap;
    if (b.hops_left == 0)
        return sc_make_ready((intptr_t)sc_this_shard());
    b.hops_left--;
    unsigned next = (sc_this_shard() + 1) % sc_shard_count();
    return SC_SUBMIT_TO(next, hit, b);
}

static struct sc_future pingpong_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct ball b = {999};
    return SC_SUBMIT_TO(1, hit, b);
}

START_TEST(pingpong_chain)
{
    tr_reset();
    backend_i = _i;
    /* 1000 hits starting on shard 1 on 2 shards: the last is on shard 0 */
    T_CHECK(run_smp(2, pingpong_main, NULL) == 0, "the ball ended on the wrong shard");
}
END_TEST

/* ---- sharded service and foreign pointer ---- */

struct kv {
    intptr_t sum;
    unsigned shard;
};

static struct sc_future kv_start(void *inst, unsigned shard, void *arg)
{
    struct kv *kv = inst;
    kv->shard = shard;
    kv->sum = (intptr_t)arg;
    return sc_make_ready(0);
}

static int stops;

static struct sc_future kv_stop(void *inst)
{
    (void)inst;
    __atomic_fetch_add(&stops, 1, __ATOMIC_RELAXED);
    return sc_sleep(SC_US(10));
}

static const struct sc_sharded_ops kv_ops = {sizeof(struct kv), kv_start, kv_stop};
static struct sc_sharded svc;

static struct sc_future kv_sum(void *cap, intptr_t v)
{
    (void)v;
    return sc_make_ready((*(struct kv **)cap)->sum);
}

static struct sc_future kv_add(void *inst, void *cap)
{
    struct kv *kv = inst;
    T_CHECK(kv->shard == sc_this_shard(), "an instance ran on a foreign shard");
    kv->sum += *(intptr_t *)cap;
    return SC_THEN(sc_sleep(SC_US(20)), kv_sum, kv); /* in flight for a while */
}

static int destroyed_on = -1;

static void destroy_obj(void *p)
{
    destroyed_on = (int)sc_this_shard();
    free(p);
}

static struct sc_future release_there(void *cap)
{
    struct sc_foreign_ptr fp = *(struct sc_foreign_ptr *)cap;
    return sc_foreign_ptr_release(&fp);
}

static struct sc_future after_stop(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    T_CHECK(stops == (int)sc_shard_count(), "stop ran on %d shards", stops);
    T_CHECK(sc_sharded_local(&svc) == NULL, "a stopped service has no local instance");
    /* a foreign pointer made here, released on the other shard, dies here */
    struct sc_foreign_ptr fp = sc_foreign_ptr_make(malloc(16), destroy_obj);
    return SC_SUBMIT_TO(1, release_there, fp);
}

static struct sc_future check_destroyed(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    T_CHECK(destroyed_on == 0, "the object died on shard %d, not its owner 0", destroyed_on);
    struct sc_foreign_ptr empty = {0};
    T_CHECK(sc_future_get(sc_foreign_ptr_release(&empty), NULL) == -EINVAL,
            "releasing an empty pointer is -EINVAL");
    return sc_make_ready(0);
}

static struct sc_future do_stop(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    intptr_t one = 1;
    /* calls in flight while stop begins: stop must wait for them */
    sc_future_ignore(sc_sharded_invoke_on(&svc, 1, kv_add, &one, sizeof one));
    struct sc_future f = sc_then(sc_sharded_stop(&svc), after_stop, NULL, 0);
    return sc_then(f, check_destroyed, NULL, 0);
}

static struct sc_future after_calls(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct kv *local = sc_sharded_local(&svc);
    T_CHECK(local && local->sum == 1000 + 5, "local sum %ld", local ? (long)local->sum : -1L);
    intptr_t one = 1;
    struct sc_future f = sc_sharded_invoke_on(&svc, 99, kv_add, &one, sizeof one);
    T_CHECK(sc_future_get(f, NULL) == -EINVAL, "bad shard is -EINVAL");
    return do_stop(NULL, 0);
}

static struct sc_future svc_started(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    intptr_t five = 5;
    return sc_then(sc_sharded_invoke_on_all(&svc, kv_add, &five, sizeof five), after_calls, NULL,
                   0);
}

static struct sc_future sharded_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    stops = 0;
    destroyed_on = -1;
    return sc_then(sc_sharded_start(&svc, &kv_ops, (void *)(intptr_t)1000), svc_started, NULL, 0);
}

START_TEST(sharded_service_and_foreign_ptr)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_smp(2, sharded_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- a deadlock across shards ends the run (exit 1) in both worlds ---- */

static struct sc_promise never_set;

static struct sc_future wait_forever(void *cap)
{
    (void)cap;
    sc_promise_init(&never_set);
    return sc_promise_get_future(&never_set);
}

static struct sc_future deadlock_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_smp_submit_to(1, wait_forever, NULL, 0);
}

START_TEST(cross_shard_deadlock_is_reported)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(run_smp(2, deadlock_main, NULL) == 1, "a deadlocked app must end with exit code 1");
}
END_TEST

/* ---- determinism with many shards ---- */

static uint64_t smp_trace(uint64_t seed)
{
    struct sc_config cfg = t_config(SC_BACKEND_SIM);
    cfg.seed = seed;
    cfg.smp = 3;
    cfg.sim_defer_ready_pct = cfg.sim_shuffle_pct = cfg.sim_preempt_pct = 10;
    struct sc_run_result r;
    counters = NULL;
    T_CHECK(sc_run_ex(&cfg, counter_main, NULL, 0, NULL, &r) == 0, "run failed");
    free(counters);
    return r.trace_hash;
}

START_TEST(smp_sim_is_deterministic)
{
    tr_reset();
    for (uint64_t seed = 1; seed <= 5; seed++) {
        uint64_t a = smp_trace(seed), b = smp_trace(seed);
        tr_step("seed %llu: %016llx %016llx", (unsigned long long)seed, (unsigned long long)a,
                (unsigned long long)b);
        T_CHECK(a == b, "same seed, different traces");
    }
    T_CHECK(smp_trace(1) != smp_trace(2), "different seeds, same trace");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("smp");
    TCase *ring = tcase_create("ring");
    tcase_set_timeout(ring, 60);
    tcase_add_test(ring, ring_wraps_and_fills);
    tcase_add_test(ring, ring_two_threads);
    suite_add_tcase(s, ring);
    TCase *tc = tcase_create("smp");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, submit_to_values_errors_bad_shards, 0, 4);
    tcase_add_loop_test(tc, sharded_counter_is_exact, 0, 4);
    tcase_add_loop_test(tc, full_ring_queues_locally, 0, 2);
    tcase_add_loop_test(tc, pingpong_chain, 0, 2);
    tcase_add_loop_test(tc, sharded_service_and_foreign_ptr, 0, 2);
    tcase_add_test(tc, smp_sim_is_deterministic);
    tcase_add_loop_test(tc, cross_shard_deadlock_is_reported, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
