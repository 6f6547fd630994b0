/*
 * sim_memory.c — a simulation test of the per-shard allocator: random
 * allocations on 1 to 4 shards (chosen by the seed), blocks handed to random
 * shards that check, resize and free them there, and injected allocation
 * failures (--sim-alloc-fail-ppm, 3000 unless given).
 *
 * Invariants:
 *   - during the run: every block holds the pattern its allocator wrote,
 *     whichever shard looks at it, after any realloc (no overlap, nothing
 *     lost); usable size >= asked; alignment as asked; a refused allocation
 *     is NULL, never a crash;
 *   - after the run (everything drained): frees sent home == frees taken
 *     back, and every shard holds as many objects as before the run.
 *
 *   build/bin/sim_memory --seed 17     one seed (`make sim SIM=sim_memory SEED=17`)
 *   build/bin/sim_memory --sweep 300   seeds 1..300, each run twice: same trace hash
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/seacore.h"
#include "tests/sim/sweep.h"

#define MAX_SHARDS 4
#define ROUNDS     60 /* per shard */
#define PER_ROUND  12 /* blocks per round */

static int violations;
static uint64_t refused;

/* Blocks a shard keeps from parcels, freed only at the very end: those
 * frees are still on their way home when the run stops. */
#define ADOPT_MAX 128
static struct adopted {
    _Alignas(64) unsigned char *p[ADOPT_MAX];
    unsigned n;
} adopted[MAX_SHARDS];

struct hdr { /* at the start of every block */
    uint32_t size;
    uint8_t tag;
};

static void mark(unsigned char *p, size_t size, uint8_t tag)
{
    struct hdr h = {(uint32_t)size, tag};
    memcpy(p, &h, sizeof h);
    memset(p + sizeof h, tag, size - sizeof h);
}

static bool marked(const unsigned char *p)
{
    struct hdr h;
    memcpy(&h, p, sizeof h);
    for (size_t i = sizeof h; i < h.size; i++)
        if (p[i] != h.tag)
            return false;
    return true;
}

static void violation(const char *what, const void *p)
{
    fprintf(stderr, "INVARIANT (shard %u): %s (block %p)\n", sc_this_shard(), what, p);
    violations++;
}

static unsigned char *new_block(void)
{
    size_t size = sizeof(struct hdr) + (size_t)sc_random_below(sc_random_below(8) ? 700 : 70000);
    unsigned char *p;
    size_t align = 16;
    switch (sc_random_below(4)) {
    case 0:
        align = (size_t)1 << (9 + sc_random_below(4)); /* 512 B .. 4 KiB: DMA buffers */
        p = sc_aligned_alloc(align, size);
        break;
    case 1:
        p = sc_calloc(1, size);
        if (p && p[size - 1] != 0)
            violation("calloc memory not zeroed", p);
        break;
    default:
        p = sc_malloc(size);
    }
    sc_trace(size ^ (p ? 0 : 1ull << 40));
    if (!p) {
        refused++;
        return NULL;
    }
    if ((uintptr_t)p % align)
        violation("misaligned", p);
    if (sc_usable_size(p) < size)
        violation("usable size below the request", p);
    mark(p, size, (uint8_t)(1 + sc_random_below(255)));
    return p;
}

struct parcel {
    unsigned char *p[PER_ROUND];
    unsigned n;
};

/* On the receiving shard: check, maybe grow (the copy is this shard's), free. */
static struct sc_future receive(void *cap)
{
    struct parcel *pc = cap;
    for (unsigned i = 0; i < pc->n; i++) {
        unsigned char *p = pc->p[i];
        if (!marked(p))
            violation("a block changed on its way", p);
        if (sc_random_below(3) == 0) {
            struct hdr h;
            memcpy(&h, p, sizeof h);
            size_t nsize = h.size + (size_t)sc_random_below(3000);
            unsigned char *q = sc_realloc(p, nsize);
            if (!q) {
                refused++;
            } else {
                if (!marked(q))
                    violation("realloc lost the contents", q);
                mark(q, nsize, h.tag);
                p = q;
            }
        }
        struct adopted *a = &adopted[sc_this_shard()];
        if (sc_random_below(4) == 0 && a->n < ADOPT_MAX)
            a->p[a->n++] = p;
        else
            sc_free(p);
    }
    return sc_make_ready(0);
}

static struct sc_future round_fn(void *cap, size_t i)
{
    (void)cap, (void)i;
    struct parcel pc = {.n = 0};
    unsigned char *keep[PER_ROUND];
    unsigned nkeep = 0;
    for (unsigned k = 0; k < PER_ROUND; k++) {
        unsigned char *p = new_block();
        if (!p)
            continue;
        if (sc_random_below(2))
            pc.p[pc.n++] = p;
        else
            keep[nkeep++] = p;
    }
    for (unsigned k = 0; k < nkeep; k++) {
        if (!marked(keep[k]))
            violation("a kept block changed (overlap?)", keep[k]);
        sc_free(keep[k]);
    }
    unsigned to = (unsigned)sc_random_below(sc_shard_count());
    return SC_SUBMIT_TO(to, receive, pc);
}

static struct sc_future traffic(void *cap)
{
    (void)cap;
    return sc_parallel_for_each(ROUNDS, round_fn, NULL, 0);
}

static struct sc_future release_adopted(void *cap)
{
    (void)cap;
    struct adopted *a = &adopted[sc_this_shard()];
    for (unsigned i = 0; i < a->n; i++) {
        if (!marked(a->p[i]))
            violation("an adopted block changed", a->p[i]);
        sc_free(a->p[i]);
    }
    a->n = 0;
    return sc_make_ready(0);
}

static struct sc_future verdict(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(violations ? 1 : 0);
}

static struct sc_future release_all(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(sc_smp_invoke_on_all(release_adopted, NULL, 0), verdict, NULL, 0);
}

static struct sc_future mem_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    violations = 0;
    refused = 0;
    for (unsigned i = 0; i < MAX_SHARDS; i++)
        adopted[i].n = 0;
    return sc_then(sc_smp_invoke_on_all(traffic, NULL, 0), release_all, NULL, 0);
}

/* ---- after the run: everything went home ---- */

struct totals {
    uint64_t sent, received, small, large;
    bool bypassed;
};

static struct totals before;

static struct totals totals(void)
{
    struct totals t = {0};
    for (unsigned i = 0; i < MAX_SHARDS; i++) {
        struct sc_memory_stats st;
        sc_memory_stats_of(i, &st);
        t.sent += st.foreign_frees_sent;
        t.received += st.foreign_frees_received;
        t.small += st.small_objects;
        t.large += st.large_allocs;
        t.bypassed |= st.bypassed;
    }
    return t;
}

static void before_run(void)
{
    before = totals();
}

static int after_run(void)
{
    struct totals a = totals();
    if (a.bypassed) /* sanitizer build: the C library's allocator */
        return 0;
    if (a.sent - before.sent != a.received - before.received) {
        fprintf(stderr, "INVARIANT: %" PRIu64 " frees sent home, %" PRIu64 " taken back\n",
                a.sent - before.sent, a.received - before.received);
        return 1;
    }
    if (a.small != before.small || a.large != before.large) {
        fprintf(stderr,
                "INVARIANT: objects %" PRIu64 " -> %" PRIu64 ", large %" PRIu64 " -> %" PRIu64
                " after the run\n",
                before.small, a.small, before.large, a.large);
        return 1;
    }
    return 0;
}

static void report(void)
{
    struct totals a = totals();
    printf("sim_memory: %" PRIu64 " foreign frees sent, %" PRIu64 " taken back, %" PRIu64
           " allocations refused\n",
           a.sent - before.sent, a.received - before.received, refused);
}

static unsigned smp_for_seed(uint64_t seed)
{
    return 1 + (unsigned)(seed % MAX_SHARDS);
}

int main(int argc, char **argv)
{
    static const struct sim_test t = {
        .name = "sim_memory",
        .about = "The per-shard allocator under the simulator.",
        .main = mem_main,
        .max_smp = MAX_SHARDS,
        .smp_for_seed = smp_for_seed,
        .report = report,
        .before_run = before_run,
        .after_run = after_run,
    };
    /* injected failures are part of this test unless the command line says otherwise */
    char *args[argc + 2];
    int n = 0;
    bool given = false;
    for (int i = 0; i < argc; i++) {
        given |= strncmp(argv[i], "--sim-alloc-fail-ppm", 20) == 0;
        args[n++] = argv[i];
    }
    if (!given)
        args[n++] = "--sim-alloc-fail-ppm=3000";
    args[n] = NULL;
    return sim_test_main(&t, n, args);
}
