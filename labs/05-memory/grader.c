/*
 * grader.c — lab 05: small objects and frees that go home (core/small.c).
 *
 * Every check runs a seacore app, in the simulator and on the real machine:
 *
 *   1. one shard: memory from sc_malloc() is usable, aligned and distinct;
 *      a freed object is the next one handed out (a span's free list is a
 *      stack); the stats count every object out and back; a span that
 *      empties gives its pages back; random sizes against a model keep
 *      their contents; a small budget runs out with NULL, not a crash;
 *   2. several shards: objects allocated on one shard and freed on another
 *      reach home during the run (the batches and the rings), and nothing is
 *      lost when the run ends with frees still on the way.
 *
 * Each check tells its story with tr_step; a failing T_CHECK prints the last
 * steps. Random choices come from fixed seeds.
 *
 * The runs use `--malloc system`, so that only sc_malloc()/sc_free() reach
 * your code: the grader and Check keep a working malloc() whatever happens.
 *
 * Under the sanitizers (SC_SAN) seacore leaves allocation to the C library,
 * so there is nothing of yours to grade there: the checks say so and pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "core/memory.h"
#include "core/smp.h"
#include "tests/harness.h"

/* ---- helpers -------------------------------------------------------------- */

static int world;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static bool bypassed(void)
{
    struct sc_memory_stats st;
    sc_memory_stats(&st);
    if (st.bypassed)
        tr_step("this build bypasses seacore's allocator (sanitizers): nothing to grade");
    return st.bypassed;
}

static void stats(struct sc_memory_stats *st)
{
    sc_memory_stats(st);
}

static int run(sc_main_fn fn, unsigned smp, uint64_t memory)
{
    struct sc_config cfg = t_config(t_backends[world]);
    cfg.smp = smp;
    if (memory)
        cfg.memory = memory;
    /* --malloc system: malloc() stays the C library's (Check itself calls it
     * to report a failure); sc_malloc() is your allocator either way */
    cfg.system_malloc = true;
    tr_step("run on the %s world, %u shard(s)", t_backend_names[world], smp);
    return sc_run(&cfg, fn, NULL, 0, NULL);
}

/* ---- 1. usable, aligned, distinct ------------------------------------------ */

static const size_t SIZES[] = {1, 16, 24, 48, 100, 128, 200, 1000, 1500, 4000, 9000, 16384};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])
#define PER    40

static struct sc_future usable_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (bypassed())
        return sc_make_ready(0);
    static unsigned char *p[NSIZES][PER];
    for (unsigned i = 0; i < NSIZES; i++)
        for (unsigned k = 0; k < PER; k++) {
            p[i][k] = sc_malloc(SIZES[i]);
            T_CHECK(p[i][k] != NULL, "sc_malloc(%zu) #%u returned NULL with plenty of memory",
                    SIZES[i], k);
            T_CHECK(((uintptr_t)p[i][k] & 15) == 0, "sc_malloc(%zu) gave %p: not 16-byte aligned",
                    SIZES[i], (void *)p[i][k]);
            size_t u = sc_usable_size(p[i][k]);
            T_CHECK(u >= SIZES[i], "sc_usable_size says %zu for a %zu-byte request", u, SIZES[i]);
            memset(p[i][k], (int)(i * PER + k) & 0xff, SIZES[i]);
        }
    tr_step("allocated %u objects of each of %zu sizes, each filled with its own byte", PER,
            NSIZES);
    for (unsigned i = 0; i < NSIZES; i++)
        for (unsigned k = 0; k < PER; k++)
            for (size_t b = 0; b < SIZES[i]; b++)
                T_CHECK(p[i][k][b] == ((i * PER + k) & 0xff),
                        "object #%u of %zu bytes changed at byte %zu (0x%02x, expected 0x%02x): "
                        "two objects overlap",
                        k, SIZES[i], b, p[i][k][b], (i * PER + k) & 0xff);
    for (unsigned i = 0; i < NSIZES; i++)
        for (unsigned k = 0; k < PER; k++)
            sc_free(p[i][k]);
    return sc_make_ready(0);
}

START_TEST(alloc_is_usable_aligned_distinct)
{
    tr_reset();
    world = _i;
    T_CHECK(run(usable_main, 1, 0) == 0, "the run failed");
}
END_TEST

/* ---- 2. a freed object comes back first ------------------------------------- */

static struct sc_future reuse_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (bypassed())
        return sc_make_ready(0);
    void *a = sc_malloc(64), *b = sc_malloc(64);
    tr_step("a = sc_malloc(64) = %p, b = sc_malloc(64) = %p", a, b);
    T_CHECK(a && b && a != b, "two live 64-byte objects must differ (%p, %p)", a, b);
    sc_free(a);
    void *c = sc_malloc(64);
    tr_step("sc_free(a); c = sc_malloc(64) = %p", c);
    T_CHECK(c == a,
            "the object just freed (%p) should be the next one handed out (got %p): "
            "a span's free list is a stack",
            a, c);
    sc_free(b);
    sc_free(c);
    return sc_make_ready(0);
}

START_TEST(free_then_alloc_reuses)
{
    tr_reset();
    world = _i;
    T_CHECK(run(reuse_main, 1, 0) == 0, "the run failed");
}
END_TEST

/* ---- 3. the stats count every object out and back --------------------------- */

static struct sc_future count_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (bypassed())
        return sc_make_ready(0);
    enum { N = 3000 };
    static void *p[N];
    struct sc_memory_stats st0, st1, st2;
    stats(&st0);
    for (unsigned i = 0; i < N; i++) {
        p[i] = sc_malloc(48);
        T_CHECK(p[i] != NULL, "sc_malloc(48) #%u returned NULL", i);
    }
    stats(&st1);
    tr_step("%u objects of 48 B: small objects in use %llu -> %llu", N,
            (unsigned long long)st0.small_objects, (unsigned long long)st1.small_objects);
    T_CHECK(st1.small_objects == st0.small_objects + N,
            "after %u allocations the stats should count %llu small objects, not %llu "
            "(is `used` counted on every pop?)",
            N, (unsigned long long)(st0.small_objects + N), (unsigned long long)st1.small_objects);
    for (unsigned i = 0; i < N; i += 2)
        sc_free(p[i]);
    for (unsigned i = 1; i < N; i += 2)
        sc_free(p[i]);
    stats(&st2);
    tr_step("freed them all (every other one first): small objects in use %llu",
            (unsigned long long)st2.small_objects);
    T_CHECK(st2.small_objects == st0.small_objects,
            "after freeing everything the stats should be back at %llu small objects, not %llu",
            (unsigned long long)st0.small_objects, (unsigned long long)st2.small_objects);
    return sc_make_ready(0);
}

START_TEST(objects_all_come_back)
{
    tr_reset();
    world = _i;
    T_CHECK(run(count_main, 1, 0) == 0, "the run failed");
}
END_TEST

/* ---- 4. a span that empties gives its pages back ---------------------------- */

static struct sc_future span_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (bypassed())
        return sc_make_ready(0);
    enum { N = 20000 };
    static void *p[N];
    struct sc_memory_stats st0, st1, st2;
    stats(&st0);
    for (unsigned i = 0; i < N; i++) {
        p[i] = sc_malloc(256);
        T_CHECK(p[i] != NULL, "sc_malloc(256) #%u returned NULL", i);
    }
    stats(&st1);
    tr_step("%u objects of 256 B: bytes in use %llu -> %llu", N,
            (unsigned long long)st0.bytes_in_use, (unsigned long long)st1.bytes_in_use);
    for (unsigned i = N; i-- > 0;)
        sc_free(p[i]);
    stats(&st2);
    tr_step("freed them all: bytes in use %llu", (unsigned long long)st2.bytes_in_use);
    /* one span may stay (the class's current one): 64 KiB is more than any */
    T_CHECK(st2.bytes_in_use <= st0.bytes_in_use + 64 * 1024,
            "after freeing all %u objects, %llu bytes of pages are still held (%llu before): "
            "spans that empty must give their pages back (except the class's current span)",
            N, (unsigned long long)st2.bytes_in_use, (unsigned long long)st0.bytes_in_use);
    return sc_make_ready(0);
}

START_TEST(empty_spans_give_pages_back)
{
    tr_reset();
    world = _i;
    T_CHECK(run(span_main, 1, 0) == 0, "the run failed");
}
END_TEST

/* ---- 5. random sizes against a model ---------------------------------------- */

static struct sc_future model_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (bypassed())
        return sc_make_ready(0);
    enum { SLOTS = 512, OPS = 30000 };
    static unsigned char *p[SLOTS];
    static size_t len[SLOTS];
    static unsigned char tag[SLOTS];
    uint64_t s = 0x5EEDull;
    struct sc_memory_stats st0, st1;
    stats(&st0);
    for (unsigned op = 0; op < OPS; op++) {
        unsigned i = (unsigned)(rnd(&s) % SLOTS);
        if (p[i]) {
            for (size_t b = 0; b < len[i]; b++)
                T_CHECK(p[i][b] == tag[i],
                        "op %u: a %zu-byte object changed at byte %zu (0x%02x, expected "
                        "0x%02x): it overlaps another object, or was handed out twice",
                        op, len[i], b, p[i][b], tag[i]);
            sc_free(p[i]);
            p[i] = NULL;
            continue;
        }
        uint64_t r = rnd(&s);
        len[i] = r % 4 == 0 ? 1 + (size_t)(r >> 8) % 16384 : 1 + (size_t)(r >> 8) % 512;
        tag[i] = (unsigned char)(op * 7 + 1);
        p[i] = sc_malloc(len[i]);
        T_CHECK(p[i] != NULL, "op %u: sc_malloc(%zu) returned NULL", op, len[i]);
        memset(p[i], tag[i], len[i]);
    }
    for (unsigned i = 0; i < SLOTS; i++)
        sc_free(p[i]);
    stats(&st1);
    tr_step("%u random operations on %u slots; small objects %llu -> %llu", OPS, SLOTS,
            (unsigned long long)st0.small_objects, (unsigned long long)st1.small_objects);
    T_CHECK(st1.small_objects == st0.small_objects,
            "everything was freed, but the stats count %lld more small objects",
            (long long)(st1.small_objects - st0.small_objects));
    return sc_make_ready(0);
}

START_TEST(random_sizes_match_a_model)
{
    tr_reset();
    world = _i;
    T_CHECK(run(model_main, 1, 0) == 0, "the run failed");
}
END_TEST

/* ---- 6. a small budget runs out with NULL ----------------------------------- */

static struct sc_future exhaust_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (bypassed())
        return sc_make_ready(0);
    enum { MAX = 40000 };
    void **p = sc_malloc(MAX * sizeof *p); /* large: not from your classes */
    T_CHECK(p != NULL, "the index array");
    unsigned n = 0;
    while (n < MAX && (p[n] = sc_malloc(1000)) != NULL)
        n++;
    tr_step("with --memory 16M, %u objects of 1000 B before NULL", n);
    T_CHECK(n < MAX, "40000 objects of 1000 B fit in a 16 MiB shard: the budget is not enforced");
    T_CHECK(n > 4000, "only %u objects of 1000 B fit in 16 MiB", n);
    for (unsigned i = 0; i < n; i++)
        sc_free(p[i]);
    void *again = sc_malloc(1000);
    tr_step("freed them all; sc_malloc(1000) -> %p", again);
    T_CHECK(again != NULL, "after freeing everything, the shard must allocate again");
    sc_free(again);
    sc_free(p);
    return sc_make_ready(0);
}

START_TEST(exhaustion_gives_null)
{
    tr_reset();
    world = _i;
    T_CHECK(run(exhaust_main, 1, 16u << 20) == 0, "the run failed");
}
END_TEST

/* ---- 7. frees on other shards go home -------------------------------------- */

#define XN    2000 /* objects each shard sends to the next */
#define MAXSH 4

static struct sc_memory_stats base[MAXSH], after[MAXSH];
static unsigned nshards;

struct parcel {
    void **objs;
    unsigned n;
};

static struct sc_future free_parcel(void *cap)
{
    struct parcel *pc = cap;
    for (unsigned i = 0; i < pc->n; i++) {
        unsigned char *o = pc->objs[i];
        if (o[0] != (unsigned char)(i & 0xff))
            return sc_make_error(-EIO); /* contents changed on the way */
        sc_free(o);
    }
    return sc_make_ready(0);
}

static void *objs[MAXSH][XN];

static struct sc_future snapshot(void *cap)
{
    (void)cap;
    sc_memory_stats(&base[sc_this_shard()]);
    return sc_make_ready(0);
}

static struct sc_future send_parcel(void *cap)
{
    (void)cap;
    unsigned me = sc_this_shard();
    for (unsigned i = 0; i < XN; i++) {
        unsigned char *o = sc_malloc(16 + (i % 40) * 8);
        if (!o)
            return sc_make_error(-ENOMEM);
        o[0] = (unsigned char)(i & 0xff);
        objs[me][i] = o;
    }
    struct parcel pc = {objs[me], XN};
    return sc_smp_submit_to((me + 1) % sc_shard_count(), free_parcel, &pc, sizeof pc);
}

static struct sc_future send_all(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_smp_invoke_on_all(send_parcel, NULL, 0);
}

static struct sc_future settle_then_look(void *cap, intptr_t v);

static struct sc_future look(void *cap)
{
    (void)cap;
    sc_memory_stats(&after[sc_this_shard()]);
    return sc_make_ready(0);
}

static struct sc_future looked(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    unsigned long long sent = 0, got = 0;
    for (unsigned s = 0; s < nshards; s++) {
        sent += after[s].foreign_frees_sent - base[s].foreign_frees_sent;
        got += after[s].foreign_frees_received - base[s].foreign_frees_received;
        tr_step(
            "shard %u: sent %llu, received %llu, small objects %llu -> %llu", s,
            (unsigned long long)(after[s].foreign_frees_sent - base[s].foreign_frees_sent),
            (unsigned long long)(after[s].foreign_frees_received - base[s].foreign_frees_received),
            (unsigned long long)base[s].small_objects, (unsigned long long)after[s].small_objects);
    }
    T_CHECK(sent == (unsigned long long)XN * nshards,
            "each of %u shards freed %u objects of its neighbour: the stats should count %u sent, "
            "not %llu",
            nshards, XN, XN * nshards, sent);
    T_CHECK(got == sent,
            "a few ms after the last free, %llu of %llu foreign frees have reached home: batches "
            "must go out (every SC__BATCH objects, and at the end of each turn) and be drained",
            got, sent);
    for (unsigned s = 0; s < nshards; s++)
        /* a few objects are the run's own (timers, messages); 2000 are not */
        T_CHECK(after[s].small_objects <= base[s].small_objects + 16,
                "shard %u holds %llu more small objects than before: frees that came home were "
                "not freed",
                s, (unsigned long long)(after[s].small_objects - base[s].small_objects));
    return sc_make_ready(0);
}

static struct sc_future settle_then_look(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(sc_smp_invoke_on_all(look, NULL, 0), looked, NULL, 0);
}

static struct sc_future sent_all(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(sc_sleep(SC_MS(5)), settle_then_look, NULL, 0);
}

static struct sc_future cross_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (bypassed())
        return sc_make_ready(0);
    nshards = sc_shard_count();
    tr_step("every shard allocates %u objects and has the next shard free them", XN);
    struct sc_future f = sc_then(sc_smp_invoke_on_all(snapshot, NULL, 0), send_all, NULL, 0);
    return sc_then(f, sent_all, NULL, 0);
}

START_TEST(foreign_frees_go_home)
{
    tr_reset();
    world = _i;
    unsigned counts[] = {2, 3, 4};
    for (unsigned k = 0; k < 3; k++)
        T_CHECK(run(cross_main, counts[k], 0) == 0, "the run with %u shards failed", counts[k]);
}
END_TEST

/* ---- 8. the end of a run loses nothing ------------------------------------- */

static struct sc_future free_and_quit(void *cap)
{
    struct parcel *pc = cap;
    for (unsigned i = 0; i < pc->n; i++)
        sc_free(pc->objs[i]);
    return sc_make_ready(0);
}

static void *late[XN];

static struct sc_future late_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (bypassed())
        return sc_make_ready(0);
    sc_memory_stats(&base[0]);
    for (unsigned i = 0; i < XN; i++) {
        late[i] = sc_malloc(32 + (i % 7) * 16);
        T_CHECK(late[i] != NULL, "sc_malloc(%u) #%u returned NULL", 32 + (i % 7) * 16, i);
    }
    struct parcel pc = {late, XN};
    tr_step("shard 0 allocates %u objects; shard 1 frees them and the run ends at once", XN);
    return sc_smp_submit_to(1, free_and_quit, &pc, sizeof pc);
}

START_TEST(nothing_lost_at_shutdown)
{
    tr_reset();
    world = _i;
    T_CHECK(run(late_main, 2, 0) == 0, "the run failed");
    struct sc_memory_stats st;
    if (sc_memory_stats_of(0, &st) != 0 || st.bypassed)
        return;
    tr_step("after the run, shard 0's slot: small objects %llu (before: %llu)",
            (unsigned long long)st.small_objects, (unsigned long long)base[0].small_objects);
    T_CHECK(st.small_objects <= base[0].small_objects + 16,
            "after the run, shard 0 still counts %llu more small objects: frees in flight when "
            "the run ended were lost",
            (unsigned long long)(st.small_objects - base[0].small_objects));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lab 05: small objects and frees that go home");
    TCase *tc = tcase_create("memory");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, alloc_is_usable_aligned_distinct, 0, 2);
    tcase_add_loop_test(tc, free_then_alloc_reuses, 0, 2);
    tcase_add_loop_test(tc, objects_all_come_back, 0, 2);
    tcase_add_loop_test(tc, empty_spans_give_pages_back, 0, 2);
    tcase_add_loop_test(tc, random_sizes_match_a_model, 0, 2);
    tcase_add_loop_test(tc, exhaustion_gives_null, 0, 2);
    tcase_add_loop_test(tc, foreign_frees_go_home, 0, 2);
    tcase_add_loop_test(tc, nothing_lost_at_shutdown, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
