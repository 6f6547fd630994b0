/*
 * grader.c — lab 10: the key-sharding layer of seacore-memcached
 * (apps/memcached/shard.c).
 *
 * The student writes how a key finds its owner shard, how a request
 * travels there and back (a message the owner frees, a reply the asker
 * frees), how a multi-key get fans out over the owners and comes back in
 * request order, and the per-connection pipeline: replies in request order,
 * at most max_inflight requests waiting, a semaphore unit each.
 *
 * The checks need no network: they feed requests to a pipeline directly,
 * as a connection would, on a shard of their choosing, with the service (a
 * store per shard) running on 2 to 4 shards. They go from the smallest
 * piece to the whole:
 *
 *   1. mc_owner alone (no world): keys spread evenly, always the same owner
 *      for the same key, and not from the bits the owner's table uses;
 *   2. single-key requests from a shard that owns few of the keys: each
 *      key lands in its owner's store and nowhere else, and the answers
 *      come back;
 *   3. a mixed transcript across shards: every reply, byte for byte, in
 *      request order, including multi-key gets over several owners;
 *   4. the semaphore: with max_inflight 3, a fourth request waits for a
 *      unit; a local reply waits behind an earlier remote one; every unit
 *      comes back.
 *
 * Every wait has a deadline (5 s, virtual in the simulator), so a missing
 * piece fails a check instead of hanging it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/memcached/shard.h"
#include "core/seacore.h"
#include "tests/harness.h"

#define DEADLINE SC_SEC(5)

static void begin(const char *name, int w)
{
    tr_reset();
    if (w < 0)
        tr_step("%s (mc_owner alone: no world)", name);
    else
        tr_step("%s, %s world", name, t_backend_names[w]);
}

/* Wait for f inside a fiber, at most DEADLINE. */
static int await_t(struct sc_future f, intptr_t *v)
{
    return sc_await(sc_with_timeout(f, DEADLINE), v);
}

/* The i-th key "k<n>" (n = 0, 1, ...) owned by `shard` of `nshards`. */
static int key_of(unsigned shard, unsigned nshards, unsigned i, char *buf)
{
    unsigned found = 0;
    for (unsigned n = 0; n < 20000; n++) {
        int len = sprintf(buf, "k%u", n);
        if (mc_owner(mc_hash(buf, (size_t)len), nshards) == shard && found++ == i)
            return len;
    }
    T_CHECK(0, "no key among k0..k19999 is owned by shard %u of %u: mc_owner must spread keys",
            shard, nshards);
    return 0;
}

/* ---- 1. mc_owner alone ---- */

START_TEST(owner_spreads_keys)
{
    begin("owner_spreads_keys", -1);
    for (unsigned n = 1; n <= 8; n++) {
        unsigned count[8] = {0};
        const unsigned keys = 8000;
        for (unsigned i = 0; i < keys; i++) {
            char a[32], b[32];
            int len = sprintf(a, "user:%u", i);
            memcpy(b, a, (size_t)len + 1); /* the same key elsewhere in memory */
            uint64_t h = mc_hash(a, (size_t)len);
            unsigned o = mc_owner(h, n);
            T_CHECK(o < n, "mc_owner(hash of \"%s\", %u) = %u: out of range", a, n, o);
            T_CHECK(o == mc_owner(mc_hash(b, (size_t)len), n) && o == mc_owner(h, n),
                    "\"%s\" got two different owners: it must depend on the key's hash only", a);
            count[o]++;
        }
        tr_step("%u shards: %u keys spread as %u %u %u %u %u %u %u %u", n, keys, count[0], count[1],
                count[2], count[3], count[4], count[5], count[6], count[7]);
        for (unsigned s = 0; s < n; s++)
            T_CHECK(count[s] * n > keys * 8 / 10 && count[s] * n < keys * 12 / 10,
                    "%u shards: shard %u owns %u of %u keys; each should own about %u (within "
                    "20%%)",
                    n, s, count[s], keys, keys / n);
    }
}
END_TEST

START_TEST(owner_independent_of_bucket_bits)
{
    begin("owner_independent_of_bucket_bits", -1);
    /* The owner's table picks a bucket from the hash's low bits. If the
     * owner were chosen from the same bits (hash % n), every key of shard
     * 0 of 4 would have its two low bits at 0, and three buckets in four
     * of its table would stay empty. */
    unsigned low[4] = {0}, mine = 0;
    for (unsigned i = 0; i < 8000; i++) {
        char k[32];
        int len = sprintf(k, "item-%u", i);
        uint64_t h = mc_hash(k, (size_t)len);
        if (mc_owner(h, 4) == 0) {
            low[h & 3]++;
            mine++;
        }
    }
    tr_step("shard 0 of 4 owns %u keys; their hash's two low bits: %u %u %u %u", mine, low[0],
            low[1], low[2], low[3]);
    T_CHECK(mine > 1500 && mine < 2500, "shard 0 of 4 owns %u of 8000 keys, not about 2000", mine);
    for (unsigned b = 0; b < 4; b++)
        T_CHECK(low[b] * 100 > mine * 15,
                "among shard 0's keys, only %u of %u have low bits %u: choose the owner from "
                "bits the bucket does not use (the high half of the hash)",
                low[b], mine, b);
}
END_TEST

/* ---- running a story on a shard, with the service on every shard ---- */

typedef void (*story_fn)(void);

struct story {
    story_fn fn;
    unsigned on; /* the shard the story runs on (the "connection's" shard) */
};

static struct sc_future story_fiber(void *cap)
{
    (*(story_fn *)cap)();
    return sc_make_ready(0);
}

static struct sc_future story_spawn(void *cap)
{
    struct sc_thread_attr attr = {.stack_size = 256 * 1024};
    return sc_thread_spawn(story_fiber, cap, sizeof(story_fn), &attr);
}

static struct sc_future main_fiber(void *cap)
{
    const struct story *st = cap;
    struct mc_config cfg = {.memory_limit = 64u << 20, .max_inflight = 3};
    int err = await_t(mc_service_start(&cfg), NULL);
    T_CHECK(err == 0, "mc_service_start: %s", sc_strerror(err));
    err = await_t(sc_smp_submit_to(st->on, story_spawn, &st->fn, sizeof st->fn), NULL);
    T_CHECK(err == 0, "the story on shard %u ended with %s", st->on, sc_strerror(err));
    err = await_t(mc_service_stop(), NULL);
    T_CHECK(err == 0, "mc_service_stop: %s", sc_strerror(err));
    return sc_make_ready(0);
}

static struct sc_future story_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct sc_thread_attr attr = {.stack_size = 64 * 1024};
    return sc_thread_spawn(main_fiber, arg, sizeof(struct story), &attr);
}

/* smp shards in the simulator; two on the real machine (this one may have
 * no more CPUs than that, and two shards cross as much as four) */
static void run_story(int w, unsigned smp, unsigned on, story_fn fn)
{
    struct sc_config cfg = t_config(t_backends[w]);
    if (t_backends[w] == SC_BACKEND_REAL && smp > 2)
        smp = 2;
    if (on >= smp)
        on = smp - 1;
    cfg.smp = smp;
    struct story st = {fn, on};
    tr_step("service on %u shards; the requests come from shard %u", smp, on);
    int code = sc_run(&cfg, story_main, &st, 0, NULL);
    T_CHECK(code == 0, "the run failed (exit %d)", code);
}

/* Submit every request of `in` through p, then wait for every reply. */
static void pipe_all(struct mc_pipeline *p, const char *in)
{
    size_t len = strlen(in), off = 0;
    while (off < len) {
        struct mc_request r;
        uint64_t used;
        int st = mc_parse(in + off, len - off, NULL, &r, &used);
        T_CHECK(st == MC_PARSE_OK, "grader bug: unparsable request at \"%.30s\"", in + off);
        int err = await_t(mc_pipeline_admit(p), NULL);
        T_CHECK(err == 0, "mc_pipeline_admit: %s (after %zu bytes of requests)", sc_strerror(err),
                off);
        mc_pipeline_submit(p, &r);
        off += used;
    }
    int err = await_t(mc_pipeline_drain(p), NULL);
    T_CHECK(err == 0, "mc_pipeline_drain: %s: some replies never came (%u requests still wait)",
            sc_strerror(err), p->count);
}

static char outbuf[1 << 16];

static const char *out_text(const struct mc_pipeline *p)
{
    size_t n = p->out.len < sizeof outbuf - 1 ? p->out.len : sizeof outbuf - 1;
    memcpy(outbuf, p->out.p, n);
    outbuf[n] = 0;
    return outbuf;
}

/* ---- 2. single keys land on their owners ---- */

#define NKEYS 30

static struct sc_future count_here(void *cap)
{
    /* On each shard: how many of the keys its store holds, and whether
     * each one it holds is its own. */
    (void)cap;
    struct mc_shard *sh = mc_local();
    intptr_t held = 0;
    for (unsigned i = 0; i < NKEYS; i++) {
        char k[32];
        int len = sprintf(k, "user:%u", i);
        uint64_t h = mc_hash(k, (size_t)len);
        if (mc_store_get(&sh->store, k, (uint32_t)len, h, sc_now())) {
            if (mc_owner(h, sc_shard_count()) != sc_this_shard())
                return sc_make_ready(-1 - (intptr_t)i);
            held++;
        }
    }
    return sc_make_ready(held);
}

static void single_keys_story(void)
{
    struct mc_pipeline p;
    T_CHECK(mc_pipeline_init(&p, 3, NULL, NULL) == 0, "mc_pipeline_init");
    char req[8192], want[4096];
    size_t rn = 0, wn = 0;
    unsigned remote = 0;
    for (unsigned i = 0; i < NKEYS; i++) {
        char k[32];
        int len = sprintf(k, "user:%u", i);
        remote += mc_owner(mc_hash(k, (size_t)len), sc_shard_count()) != sc_this_shard();
        rn += (size_t)sprintf(req + rn, "set %s %u 0 %d\r\nvalue-of-%s\r\n", k, i, len + 9, k);
        wn += (size_t)sprintf(want + wn, "STORED\r\n");
    }
    tr_step("set %u keys from shard %u (%u of them owned elsewhere), through a pipeline of 3",
            NKEYS, sc_this_shard(), remote);
    pipe_all(&p, req);
    T_CHECK(strcmp(out_text(&p), want) == 0, "the replies to %u sets:\n%s\nwanted %u STORED", NKEYS,
            outbuf, NKEYS);
    /* each key in its owner's store, and only there */
    intptr_t total = 0;
    for (unsigned s = 0; s < sc_shard_count(); s++) {
        intptr_t held = 0;
        int err = await_t(sc_smp_submit_to(s, count_here, NULL, 0), &held);
        T_CHECK(err == 0, "asking shard %u: %s", s, sc_strerror(err));
        T_CHECK(held >= 0, "shard %u holds user:%d, which mc_owner gives to another shard", s,
                (int)(-1 - held));
        tr_step("shard %u holds %d of the keys", s, (int)held);
        total += held;
    }
    T_CHECK(total == NKEYS, "the stores hold %d keys in all, not %d", (int)total, NKEYS);
    T_CHECK(mc_local()->st.remote_sent == remote,
            "shard %u counted %llu requests sent to other shards; %u keys are owned elsewhere",
            sc_this_shard(), (unsigned long long)mc_local()->st.remote_sent, remote);
    /* read them back, one get each */
    p.out.len = 0;
    rn = wn = 0;
    for (unsigned i = 0; i < NKEYS; i++) {
        char k[32];
        int len = sprintf(k, "user:%u", i);
        rn += (size_t)sprintf(req + rn, "get %s\r\n", k);
        wn += (size_t)sprintf(want + wn, "VALUE %s %u %d\r\nvalue-of-%s\r\nEND\r\n", k, i, len + 9,
                              k);
    }
    pipe_all(&p, req);
    T_CHECK(strcmp(out_text(&p), want) == 0, "reading the keys back gave:\n%s\nwanted:\n%s", outbuf,
            want);
    mc_pipeline_destroy(&p);
}

START_TEST(keys_land_on_their_owner)
{
    begin("keys_land_on_their_owner", _i);
    run_story(_i, 3, 1, single_keys_story);
}
END_TEST

/* ---- 3. a mixed transcript, replies in request order ---- */

static void transcript_story(void)
{
    struct mc_pipeline p;
    T_CHECK(mc_pipeline_init(&p, 3, NULL, NULL) == 0, "mc_pipeline_init");
    unsigned n = sc_shard_count(), me = sc_this_shard();
    /* eight keys, taken from every shard in turn, so that neighbours have
     * different owners */
    char keys[8][32];
    unsigned nk = 0;
    for (unsigned i = 0; nk < 8; i++)
        for (unsigned s = 0; s < n && nk < 8; s++)
            key_of((s + me) % n, n, i, keys[nk++]);
    static char req[16384], want[16384];
    size_t rn = 0, wn = 0;
#define REQ(...)  (rn += (size_t)sprintf(req + rn, __VA_ARGS__))
#define WANT(...) (wn += (size_t)sprintf(want + wn, __VA_ARGS__))
    for (unsigned i = 0; i < nk; i++) {
        REQ("set %s %u 0 2\r\nv%u\r\n", keys[i], i, i);
        WANT("STORED\r\n");
    }
    /* a multi-key get over every owner, with a miss and a repeat in it */
    REQ("get");
    for (unsigned i = 0; i < nk; i++)
        REQ(" %s%s", keys[nk - 1 - i], i == 2 ? " no-such-key" : "");
    REQ(" %s\r\n", keys[0]);
    for (unsigned i = 0; i < nk; i++)
        WANT("VALUE %s %u 2\r\nv%u\r\n", keys[nk - 1 - i], nk - 1 - i, nk - 1 - i);
    WANT("VALUE %s 0 2\r\nv0\r\nEND\r\n", keys[0]);
    REQ("append %s 0 0 1\r\nX\r\n", keys[1]);
    WANT("STORED\r\n");
    REQ("delete %s\r\ndelete %s\r\n", keys[2], keys[2]);
    WANT("DELETED\r\nNOT_FOUND\r\n");
    REQ("add %s 0 0 1\r\nY\r\n", keys[3]);
    WANT("NOT_STORED\r\n");
    REQ("set %s 0 0 1\r\n5\r\nincr %s 10\r\ndecr %s 100\r\n", keys[4], keys[4], keys[4]);
    WANT("STORED\r\n15\r\n0\r\n");
    REQ("touch %s 100\r\ntouch no-such-key 1\r\n", keys[5]);
    WANT("TOUCHED\r\nNOT_FOUND\r\n");
    REQ("set %s 0 0 1 noreply\r\nZ\r\n", keys[6]);
    REQ("get %s %s %s\r\n", keys[1], keys[2], keys[6]);
    WANT("VALUE %s 1 3\r\nv1X\r\nVALUE %s 0 1\r\nZ\r\nEND\r\n", keys[1], keys[6]);
    REQ("version\r\n");
    WANT("VERSION " MC_VERSION "\r\n");
#undef REQ
#undef WANT
    tr_step("a transcript of %zu bytes over keys of all %u shards, from shard %u", rn, n, me);
    pipe_all(&p, req);
    T_CHECK(strcmp(out_text(&p), want) == 0,
            "the replies, in request order, should be:\n%s\ngot:\n%s", want, outbuf);
    T_CHECK(sc_sem_available(&p.inflight) == 3, "after the last reply, all 3 units are back (%lld)",
            (long long)sc_sem_available(&p.inflight));
    mc_pipeline_destroy(&p);
}

START_TEST(replies_in_request_order)
{
    begin("replies_in_request_order", _i);
    run_story(_i, 4, 2, transcript_story);
}
END_TEST

/* ---- 4. the semaphore ---- */

static void inflight_story(void)
{
    struct mc_pipeline p;
    T_CHECK(mc_pipeline_init(&p, 3, NULL, NULL) == 0, "mc_pipeline_init");
    unsigned me = sc_this_shard(), other = (me + 1) % sc_shard_count();
    char remote[4][32], local[32];
    for (unsigned i = 0; i < 4; i++)
        key_of(other, sc_shard_count(), i, remote[i]);
    key_of(me, sc_shard_count(), 0, local);
    char req[256];
    struct mc_request r;
    uint64_t used;
    /* a local key first, answered at once */
    sprintf(req, "set %s 0 0 1\r\nL\r\n", local);
    mc_parse(req, strlen(req), NULL, &r, &used);
    T_CHECK(await_t(mc_pipeline_admit(&p), NULL) == 0, "admit");
    mc_pipeline_submit(&p, &r);
    tr_step("set %s (owned here, shard %u): answered at once", local, me);
    T_CHECK(strcmp(out_text(&p), "STORED\r\n") == 0 && sc_sem_available(&p.inflight) == 3,
            "a local request with nothing before it: its reply is in `out` at once and its "
            "unit back (out \"%s\", units %lld)",
            outbuf, (long long)sc_sem_available(&p.inflight));
    p.out.len = 0;
    /* three remote requests: they take the three units */
    for (unsigned i = 0; i < 3; i++) {
        sprintf(req, "set %s 0 0 1\r\nR\r\n", remote[i]);
        mc_parse(req, strlen(req), NULL, &r, &used);
        struct sc_future a = mc_pipeline_admit(&p);
        T_CHECK(sc_future_available(a), "admission %u of 3 should not wait", i + 1);
        sc_future_get(a, NULL);
        mc_pipeline_submit(&p, &r);
    }
    tr_step("three sets of keys owned by shard %u submitted; none answered yet", other);
    T_CHECK(p.out.len == 0, "nothing can be answered before the owner replies (out \"%s\")",
            out_text(&p));
    T_CHECK(sc_sem_available(&p.inflight) == 0,
            "three requests wait for replies: no unit should be left (%lld)",
            (long long)sc_sem_available(&p.inflight));
    struct sc_future fourth = mc_pipeline_admit(&p);
    T_CHECK(!sc_future_available(fourth),
            "a fourth request must wait for a unit (max_inflight is 3): backpressure");
    tr_step("the fourth admission waits");
    T_CHECK(await_t(fourth, NULL) == 0, "the fourth admission never came");
    tr_step("the fourth admission came: replies are in (%zu bytes)", p.out.len);
    T_CHECK(p.out.len > 0, "a unit came back, so a reply must be in `out`");
    /* the fourth: a local get, after the remote ones */
    sprintf(req, "get %s\r\n", local);
    mc_parse(req, strlen(req), NULL, &r, &used);
    mc_pipeline_submit(&p, &r);
    T_CHECK(await_t(mc_pipeline_drain(&p), NULL) == 0, "drain");
    char want[256];
    sprintf(want, "STORED\r\nSTORED\r\nSTORED\r\nVALUE %s 0 1\r\nL\r\nEND\r\n", local);
    T_CHECK(strcmp(out_text(&p), want) == 0, "the replies in order:\n%s\ngot:\n%s", want, outbuf);
    T_CHECK(sc_sem_available(&p.inflight) == 3, "every unit back after the drain (%lld)",
            (long long)sc_sem_available(&p.inflight));
    /* a local reply behind a remote one waits its turn */
    p.out.len = 0;
    sprintf(req, "get %s\r\nget %s\r\n", remote[0], local);
    size_t off = 0, len = strlen(req);
    for (int i = 0; i < 2; i++) {
        mc_parse(req + off, len - off, NULL, &r, &used);
        T_CHECK(await_t(mc_pipeline_admit(&p), NULL) == 0, "admit");
        mc_pipeline_submit(&p, &r);
        off += used;
    }
    T_CHECK(p.out.len == 0,
            "a local get submitted after a remote one must not answer first (out \"%s\")",
            out_text(&p));
    T_CHECK(await_t(mc_pipeline_drain(&p), NULL) == 0, "drain");
    sprintf(want, "VALUE %s 0 1\r\nR\r\nEND\r\nVALUE %s 0 1\r\nL\r\nEND\r\n", remote[0], local);
    T_CHECK(strcmp(out_text(&p), want) == 0, "in order:\n%s\ngot:\n%s", want, outbuf);
    mc_pipeline_destroy(&p);
}

START_TEST(inflight_bounded)
{
    begin("inflight_bounded", _i);
    run_story(_i, 2, 0, inflight_story);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lab 10: the key-sharding layer of memcached");
    TCase *alone = tcase_create("owner");
    tcase_set_timeout(alone, 10);
    tcase_add_test(alone, owner_spreads_keys);
    tcase_add_test(alone, owner_independent_of_bucket_bits);
    suite_add_tcase(s, alone);
    TCase *shards = tcase_create("shards");
    tcase_set_timeout(shards, 30);
    tcase_add_loop_test(shards, keys_land_on_their_owner, 0, 2);
    tcase_add_loop_test(shards, replies_in_request_order, 0, 2);
    tcase_add_loop_test(shards, inflight_bounded, 0, 2);
    suite_add_tcase(s, shards);
    return s;
}

int main(void)
{
    return t_main(suite());
}
