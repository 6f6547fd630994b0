/*
 * seacore-demo — a restaurant kitchen on several shards: what `make run` shows.
 *
 * Each shard is a cooking station with its own ovens and its own tally; shard
 * 0 takes the orders and sends each one to a station with sc_smp_submit_to().
 * Each order is a chain of continuations: prep, cook (a timer), plate. Some
 * ovens fail (an error future, recovered by sc_handle_error with a retry),
 * some dishes take too long (sc_with_timeout turns them into refunds), a
 * periodic timer announces the time, and sc_parallel_for_each runs all orders
 * at once. Every decision comes from sc_random(), so a seed replays a whole
 * evening exactly in the simulator; the run ends with each station's memory
 * (its shard's allocator counters) and the trace hash.
 *
 * In the simulator a "minute" is a real virtual minute, and the evening takes
 * a few milliseconds of wall time. On the real machine (--backend real) a
 * "minute" is one millisecond, so the run stays short.
 *
 * Later issues grow this into the flagship demo (memcached).
 */
#include <inttypes.h>
#include <stdio.h>

#include "core/seacore.h"

static const char *dishes[] = {"soup", "risotto", "curry", "pie", "ramen", "tart", "stew"};
#define NDISHES (sizeof dishes / sizeof dishes[0])

static long orders_opt = 12;
static uint64_t minute; /* ns per demo minute */
static uint64_t t0;

/* Shard 0's books: served, refunded, revenue. */
struct kitchen {
    int served, refunded;
    intptr_t revenue;
};
static struct kitchen k;

/* Each station's tally, touched only by its own shard. */
struct station {
    _Alignas(64) int cooked, oven_failures;
};
static struct station stations[256];

static double minutes_now(void)
{
    return (double)(sc_now() - t0) / (double)minute;
}

struct order {
    int id;
    int dish;
    int attempt;
    uint64_t cook_minutes;
};

/* ---- one order: prep -> cook -> plate, with retries and a deadline ---- */

static struct sc_future plate(void *cap, intptr_t v)
{
    const struct order *o = cap;
    (void)v;
    printf("[%6.1f min] order %2d: %s plated at station %u\n", minutes_now(), o->id,
           dishes[o->dish], sc_this_shard());
    stations[sc_this_shard()].cooked++;
    return sc_make_ready(10 + o->dish);
}

static struct sc_future cook(void *cap, intptr_t v)
{
    struct order *o = cap;
    (void)v;
    if (sc_random_below(6) == 0) { /* the oven trips: an error, not a crash */
        printf("[%6.1f min] order %2d: oven failed at station %u (attempt %d)\n", minutes_now(),
               o->id, sc_this_shard(), o->attempt);
        return sc_make_error(-EIO);
    }
    return SC_THEN(sc_sleep(o->cook_minutes * minute), plate, *o);
}

static struct sc_future cook_with_retry(struct order o);

static struct sc_future retry(void *cap, int err)
{
    struct order o = *(struct order *)cap;
    stations[sc_this_shard()].oven_failures++;
    if (err != -EIO || o.attempt >= 3)
        return sc_make_error(err);
    o.attempt++;
    return cook_with_retry(o);
}

static struct sc_future cook_with_retry(struct order o)
{
    struct sc_future f = SC_THEN(sc_sleep(minute), cook, o); /* one minute of prep */
    return SC_HANDLE_ERROR(f, retry, o);
}

static struct sc_future bill(void *cap, intptr_t price, int err)
{
    const struct order *o = cap;
    if (err) {
        printf("[%6.1f min] order %2d: %s refunded (%s)\n", minutes_now(), o->id, dishes[o->dish],
               sc_strerror(err));
        k.refunded++;
    } else {
        k.served++;
        k.revenue += price;
    }
    return sc_make_ready(0);
}

/* Runs on the station's shard: the whole cooking chain lives there. */
static struct sc_future cook_at_station(void *cap)
{
    return cook_with_retry(*(struct order *)cap);
}

static struct sc_future one_order(void *cap, size_t i)
{
    (void)cap;
    struct order o = {
        .id = (int)i + 1,
        .dish = (int)sc_random_below(NDISHES),
        .attempt = 1,
        .cook_minutes = 5 + sc_random_below(30),
    };
    printf("[%6.1f min] order %2d: %s, needs %" PRIu64 " min in the oven\n", minutes_now(), o.id,
           dishes[o.dish], o.cook_minutes);
    /* the order goes to a station; a guest waits 30 minutes at most */
    unsigned station = (unsigned)(i % sc_shard_count());
    struct sc_future f = sc_with_timeout(SC_SUBMIT_TO(station, cook_at_station, o), 30 * minute);
    return SC_THEN_WRAPPED(f, bill, o);
}

/* ---- the wall clock announces itself every 10 minutes ---- */

static struct sc_timer clock_timer;

static void announce(void *arg)
{
    (void)arg;
    printf("[%6.1f min] -- clock: %d served, %d refunded so far --\n", minutes_now(), k.served,
           k.refunded);
    sc_timer_arm_in(&clock_timer, 10 * minute);
}

/* Each station reports its own tally (as a message, since shard 0 may not
 * read another shard's memory). */
static struct sc_future station_tally(void *cap)
{
    (void)cap;
    struct station *st = &stations[sc_this_shard()];
    return sc_make_ready(((intptr_t)st->cooked << 16) | st->oven_failures);
}

static struct sc_future print_tally(void *cap, intptr_t tally)
{
    unsigned shard = *(unsigned *)cap;
    printf("             station %u: %d cooked, %d oven failures\n", shard, (int)(tally >> 16),
           (int)(tally & 0xffff));
    return sc_make_ready(0);
}

/* On the station's own shard: what its memory looks like at closing time. */
static struct sc_future print_memory(void *cap)
{
    (void)cap;
    struct sc_memory_stats st;
    sc_memory_stats(&st);
    sc_memory_stats_print(stdout, &st);
    return sc_make_ready(0);
}

static struct sc_future ask_memory(void *cap, intptr_t v)
{
    (void)v;
    unsigned shard = *(unsigned *)cap;
    return sc_smp_submit_to(shard, print_memory, NULL, 0);
}

static struct sc_future ask_one(void *cap, intptr_t v)
{
    (void)v;
    unsigned shard = *(unsigned *)cap;
    struct sc_future f =
        SC_THEN(sc_smp_submit_to(shard, station_tally, NULL, 0), print_tally, shard);
    return SC_THEN(f, ask_memory, shard);
}

static struct sc_future verdict(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    /* every order ends served or refunded: anything else is a bug */
    return sc_make_ready(k.served + k.refunded == orders_opt ? 0 : 1);
}

static struct sc_future close_kitchen(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    sc_timer_cancel(&clock_timer);
    printf("[%6.1f min] closed: %d served, %d refunded, revenue %" PRIdPTR "\n", minutes_now(),
           k.served, k.refunded, k.revenue);
    sc_trace((uint64_t)k.revenue);
    /* one station at a time, so that the lines come out in order */
    struct sc_future f = sc_make_ready(0);
    for (unsigned i = 0; i < sc_shard_count(); i++)
        f = SC_THEN(f, ask_one, i);
    return sc_then(f, verdict, NULL, 0);
}

static struct sc_future demo_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argv;
    if (argc > 0) {
        fprintf(stderr, "seacore-demo: unexpected argument (try --help)\n");
        return sc_make_ready(2);
    }
    if (orders_opt < 1 || orders_opt > 100000) {
        fprintf(stderr, "seacore-demo: --orders must be 1..100000\n");
        return sc_make_ready(2);
    }
    minute = sc_is_simulated() ? SC_SEC(60) : SC_MS(1);
    t0 = sc_now();
    if (sc_shard_count() > 256) {
        fprintf(stderr, "seacore-demo: at most 256 stations (--smp)\n");
        return sc_make_ready(2);
    }
    printf("seacore-demo: a kitchen of %u stations, one per shard (%s world, seed %" PRIu64 ")\n",
           sc_shard_count(), sc_is_simulated() ? "simulated" : "real", sc_seed());
    sc_timer_init(&clock_timer, announce, NULL);
    sc_timer_arm_in(&clock_timer, 10 * minute);
    struct sc_future f = sc_parallel_for_each((size_t)orders_opt, one_order, NULL, 0);
    return sc_then(f, close_kitchen, NULL, 0);
}

int main(int argc, char **argv)
{
    static const struct sc_app_opt opts[] = {
        {"orders", SC_OPT_INT, &orders_opt, "N: how many orders tonight (default 12)"},
        {0},
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    return sc_app_run_opts(argc, argv,
                           "A kitchen of futures on several shards: orders travel to stations "
                           "with submit_to; chains, errors, retries, timeouts, timers.",
                           opts, demo_main, NULL);
}
