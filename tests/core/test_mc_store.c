/*
 * test_mc_store.c — one shard's cache (apps/memcached/store.c) and the
 * execution of requests on it (exec.c), on raw transcripts: what a client
 * sends, what it must read back. Then what transcripts cannot show: LRU
 * eviction under the memory limit, expiry by time and by the sweep,
 * flush_all now and later (a timer), the table growing a few buckets at a
 * time, references that outlive an unlink, cas values unique per shard.
 *
 * The store takes time as an argument, so most checks move a fake clock by
 * hand; they run on a shard of each world all the same, since the store
 * allocates from the shard and its timers belong to one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/memcached/exec.h"
#include "apps/memcached/store.h"
#include "core/seacore.h"
#include "tests/harness.h"

static int backend_i;
#define WORLD t_backends[backend_i]
#define SEC   UINT64_C(1000000000)

static struct mc_store st;
static uint64_t now_ns;
static const int64_t unix_base = 1700000000;
static char outbuf[1 << 16];

/* Run every complete request of `in` on the store; the bytes a client would read. */
static const char *run(const char *in)
{
    struct mc_buf out = {0};
    size_t len = strlen(in), off = 0;
    int64_t unix_now = unix_base + (int64_t)(now_ns / SEC);
    while (off < len) {
        struct mc_request r;
        uint64_t used;
        int s = mc_parse(in + off, len - off, NULL, &r, &used);
        if (s == MC_PARSE_MORE)
            break;
        if (s == MC_PARSE_ERROR) {
            if (mc_error_reply(r.error, r.noreply))
                mc_buf_puts(&out, mc_error_text(r.error));
        } else if (r.cmd == MC_CMD_GET || r.cmd == MC_CMD_GETS) {
            uint32_t pos = 0, kl;
            const char *k;
            while (mc_next_key(&r, &pos, &k, &kl))
                mc_exec_get(&st, r.cmd == MC_CMD_GETS, k, kl, mc_hash(k, kl), now_ns, &out);
            mc_buf_puts(&out, "END\r\n");
        } else if (r.cmd == MC_CMD_FLUSH_ALL) {
            uint64_t at = r.delay > 0 ? mc_exptime_deadline(r.delay, now_ns, unix_now) : 0;
            mc_store_flush(&st, at, now_ns);
            if (!r.noreply)
                mc_buf_puts(&out, "OK\r\n");
        } else {
            mc_exec_key(&st, &r, mc_hash(r.key, r.key_len), now_ns, unix_now, &out);
        }
        off += used;
    }
    T_CHECK(!out.failed, "the reply buffer could not grow");
    size_t n = out.len < sizeof outbuf - 1 ? out.len : sizeof outbuf - 1;
    if (n)
        memcpy(outbuf, out.p, n);
    outbuf[n] = 0;
    mc_buf_free(&out);
    tr_step("t=%llus  %.70s  ->  %.70s", (unsigned long long)(now_ns / SEC), in, outbuf);
    return outbuf;
}

#define SAYS(in, want)                                                                             \
    do {                                                                                           \
        const char *got_ = run(in);                                                                \
        T_CHECK(strcmp(got_, (want)) == 0, "sent %s\ngot:\n%s\nwanted:\n%s", (in), got_, (want));  \
        T_CHECK(mc_store_check(&st) == 0, "store inconsistent (rule at line %d)",                  \
                -mc_store_check(&st));                                                             \
    } while (0)

static void fresh(uint64_t limit, unsigned shard, unsigned nshards)
{
    struct mc_store_config cfg = {
        .limit_bytes = limit, .shard = shard, .nshards = nshards, .max_item_size = 1024 * 1024};
    now_ns = 10 * SEC;
    T_CHECK(mc_store_init(&st, &cfg) == 0, "mc_store_init");
    tr_step("a fresh store: limit %llu bytes, shard %u of %u", (unsigned long long)limit, shard,
            nshards);
}

/* The cas a gets reports for key (0 when missing). */
static uint64_t cas_of(const char *key)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "gets %s\r\n", key);
    const char *r = run(cmd);
    unsigned long long cas = 0;
    unsigned flags, bytes;
    char k[260];
    if (sscanf(r, "VALUE %259s %u %u %llu", k, &flags, &bytes, &cas) != 4)
        return 0;
    return cas;
}

/* ---- transcripts ---- */

static struct sc_future commands_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    fresh(1 << 20, 0, 1);
    SAYS("get a\r\n", "END\r\n");
    SAYS("set a 5 0 3\r\nabc\r\n", "STORED\r\n");
    SAYS("get a\r\n", "VALUE a 5 3\r\nabc\r\nEND\r\n");
    SAYS("get a b a\r\n", "VALUE a 5 3\r\nabc\r\nVALUE a 5 3\r\nabc\r\nEND\r\n");
    SAYS("add a 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
    SAYS("add b 7 0 1\r\nx\r\n", "STORED\r\n");
    SAYS("replace c 0 0 1\r\ny\r\n", "NOT_STORED\r\n");
    SAYS("replace b 8 0 1\r\ny\r\n", "STORED\r\n");
    SAYS("append a 99 0 2\r\nde\r\n", "STORED\r\n");
    SAYS("prepend a 99 0 2\r\n<<\r\n", "STORED\r\n");
    SAYS("get a b\r\n", "VALUE a 5 7\r\n<<abcde\r\nVALUE b 8 1\r\ny\r\nEND\r\n"); /* flags kept */
    SAYS("append zz 0 0 1\r\nq\r\n", "NOT_STORED\r\n");
    /* cas: the value gets gave, then a stale one, then a missing key */
    uint64_t cas = cas_of("a");
    T_CHECK(cas != 0, "gets a gave a cas");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "cas a 1 0 2 %llu\r\nhi\r\n", (unsigned long long)cas);
    SAYS(cmd, "STORED\r\n");
    SAYS(cmd, "EXISTS\r\n");
    SAYS("cas nope 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n");
    T_CHECK(cas_of("a") != cas, "a store changes the cas");
    /* delete, noreply */
    SAYS("delete b\r\ndelete b\r\n", "DELETED\r\nNOT_FOUND\r\n");
    SAYS("set n 0 0 2 noreply\r\n10\r\nincr n 5\r\n", "15\r\n");
    SAYS("decr n 100\r\nincr n 18446744073709551615\r\nincr n 2\r\n",
         "0\r\n18446744073709551615\r\n1\r\n");
    SAYS("incr a 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    SAYS("incr a 1 noreply\r\n", "");
    SAYS("incr missing 1\r\ndecr missing 1\r\n", "NOT_FOUND\r\nNOT_FOUND\r\n");
    /* a number stored with trailing spaces (memcached pads that way) still counts */
    SAYS("set p 0 0 4\r\n9   \r\nincr p 1\r\nget p\r\n",
         "STORED\r\n10\r\nVALUE p 0 2\r\n10\r\nEND\r\n");
    /* a longer number than the item holds makes a new item */
    SAYS("set q 3 0 1\r\n9\r\nincr q 991\r\nget q\r\n",
         "STORED\r\n1000\r\nVALUE q 3 4\r\n1000\r\nEND\r\n");
    SAYS("touch q 100\r\ntouch nope 1\r\n", "TOUCHED\r\nNOT_FOUND\r\n");
    SAYS("set e 0 0 0\r\n\r\nget e\r\n", "STORED\r\nVALUE e 0 0\r\n\r\nEND\r\n");
    SAYS("delete a noreply\r\nget a\r\n", "END\r\n");
    SAYS("flush_all noreply\r\nget q p n\r\n", "END\r\n");
    SAYS("set q 0 0 1\r\nz\r\nget q\r\n", "STORED\r\nVALUE q 0 1\r\nz\r\nEND\r\n");
    mc_store_destroy(&st);
    return sc_make_ready(0);
}

START_TEST(commands)
{
    tr_reset();
    backend_i = _i;
    tr_step("commands, %s world", t_backend_names[_i]);
    T_CHECK(t_run(WORLD, commands_main, NULL) == 0, "run failed");
}
END_TEST

static struct sc_future expiry_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    fresh(1 << 20, 0, 1);
    SAYS("set t 0 10 1\r\nx\r\n", "STORED\r\n");
    now_ns += 9 * SEC;
    SAYS("get t\r\n", "VALUE t 0 1\r\nx\r\nEND\r\n");
    now_ns += 1 * SEC;
    SAYS("get t\r\n", "END\r\n"); /* at its deadline: gone */
    T_CHECK(st.st.get_expired == 1 && st.st.curr_items == 0, "counted as expired and taken out");
    SAYS("set t 0 -1 1\r\nx\r\nget t\r\n", "STORED\r\nEND\r\n"); /* negative: dead at once */
    SAYS("add t 0 0 1\r\ny\r\n", "STORED\r\n");                  /* ...so add finds no item */
    /* absolute unix times: past and future */
    char cmd[128];
    int64_t unix_now = unix_base + (int64_t)(now_ns / SEC);
    snprintf(cmd, sizeof cmd, "set u 0 %lld 1\r\nx\r\nget u\r\n", (long long)(unix_now - 5));
    SAYS(cmd, "STORED\r\nEND\r\n");
    snprintf(cmd, sizeof cmd, "set u 0 %lld 1\r\nx\r\nget u\r\n", (long long)(unix_now + 5));
    SAYS(cmd, "STORED\r\nVALUE u 0 1\r\nx\r\nEND\r\n");
    now_ns += 5 * SEC;
    SAYS("get u\r\n", "END\r\n");
    /* touch moves the deadline; touch with a negative time kills */
    SAYS("set v 0 2 1\r\nx\r\ntouch v 100\r\n", "STORED\r\nTOUCHED\r\n");
    now_ns += 50 * SEC;
    SAYS("get v\r\n", "VALUE v 0 1\r\nx\r\nEND\r\n");
    SAYS("touch v -1\r\nget v\r\n", "TOUCHED\r\nEND\r\n");
    /* the sweep takes out what nobody asks for */
    for (int i = 0; i < 100; i++) {
        snprintf(cmd, sizeof cmd, "set s%d 0 %d 1\r\nx\r\n", i, 1 + i % 2);
        run(cmd);
    }
    run("set keep 0 0 1\r\nk\r\n");
    uint64_t before = st.st.curr_items;
    now_ns += 3 * SEC;
    size_t taken = 0;
    for (int pass = 0; pass < 8; pass++)
        taken += mc_store_sweep(&st, now_ns, 1024);
    T_CHECK(taken == 100 && st.st.curr_items == before - 100,
            "the sweep took %zu dead items (want 100); %llu left", taken,
            (unsigned long long)st.st.curr_items);
    SAYS("get keep\r\n", "VALUE keep 0 1\r\nk\r\nEND\r\n");
    T_CHECK(mc_store_check(&st) == 0, "consistent after the sweep");
    mc_store_destroy(&st);
    return sc_make_ready(0);
}

START_TEST(expiry)
{
    tr_reset();
    backend_i = _i;
    tr_step("expiry, %s world", t_backend_names[_i]);
    T_CHECK(t_run(WORLD, expiry_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- the memory limit ---- */

static struct sc_future lru_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    const uint64_t limit = 64 * 1024;
    fresh(limit, 0, 1);
    char cmd[1200], val[1001];
    memset(val, 'v', 1000);
    val[1000] = 0;
    /* 200 items of ~1 KiB in 64 KiB: most must go; key 0 is read after
     * every store, so it stays the most recently used and must survive */
    for (int i = 0; i < 200; i++) {
        snprintf(cmd, sizeof cmd, "set key%d 0 0 1000\r\n%s\r\n", i, val);
        T_CHECK(strcmp(run(cmd), "STORED\r\n") == 0, "store %d: %s", i, outbuf);
        T_CHECK(strncmp(run("get key0\r\n"), "VALUE key0", 10) == 0, "key0 evicted at store %d", i);
        T_CHECK(st.st.bytes <= limit, "bytes %llu over the limit", (unsigned long long)st.st.bytes);
    }
    T_CHECK(st.st.evictions > 100 && st.st.evictions < 200, "evictions: %llu",
            (unsigned long long)st.st.evictions);
    T_CHECK(st.st.curr_items + st.st.evictions == 200, "every item is stored or evicted");
    /* the newest survive, the oldest unread went first */
    snprintf(cmd, sizeof cmd, "VALUE key199 0 1000\r\n%s\r\nEND\r\n", val);
    SAYS("get key199\r\n", cmd);
    SAYS("get key1\r\n", "END\r\n");
    /* an item larger than the whole limit cannot be stored; the old value goes */
    static char big[80 * 1024 + 64];
    int n = snprintf(big, sizeof big, "set key199 0 0 %d\r\n", 70 * 1024);
    memset(big + n, 'b', 70 * 1024);
    memcpy(big + n + 70 * 1024, "\r\n", 3);
    SAYS(big, "SERVER_ERROR out of memory storing object\r\n");
    SAYS("get key199\r\n", "END\r\n");
    /* dead items at the tail are reclaimed, not counted as evictions */
    uint64_t ev = st.st.evictions;
    run("flush_all\r\n");
    for (int i = 0; i < 70; i++) {
        snprintf(cmd, sizeof cmd, "set new%d 0 0 1000 noreply\r\n%s\r\n", i, val);
        run(cmd);
    }
    T_CHECK(st.st.evictions > ev && st.st.reclaimed > 0,
            "after a flush the old items are reclaimed first (evictions %llu -> %llu, reclaimed "
            "%llu)",
            (unsigned long long)ev, (unsigned long long)st.st.evictions,
            (unsigned long long)st.st.reclaimed);
    T_CHECK(mc_store_check(&st) == 0, "consistent");
    /* append past the item size limit */
    st.cfg.max_item_size = 1500;
    snprintf(cmd, sizeof cmd, "append new69 0 0 1000\r\n%s\r\n", val);
    SAYS(cmd, "SERVER_ERROR object too large for cache\r\n");
    mc_store_destroy(&st);
    return sc_make_ready(0);
}

START_TEST(lru)
{
    tr_reset();
    backend_i = _i;
    tr_step("lru, %s world", t_backend_names[_i]);
    T_CHECK(t_run(WORLD, lru_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- growth, references, cas ---- */

static struct sc_future growth_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    fresh(UINT64_C(256) << 20, 0, 1);
    char key[32];
    const int n = 20000;
    uint64_t first_mask = st.mask;
    bool saw_growing = false;
    for (int i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof key, "g%d", i);
        char v[16];
        int vl = snprintf(v, sizeof v, "%d", i * 7);
        T_CHECK(mc_store_put(&st, MC_CMD_SET, key, (uint32_t)kl, mc_hash(key, (size_t)kl), 0, 0, v,
                             (uint32_t)vl, 0, now_ns) == MC_STORED,
                "set %s", key);
        saw_growing |= st.old != NULL;
        if (i % 997 == 0) {
            T_CHECK(mc_store_check(&st) == 0, "consistent at %d items (rule at line %d)", i + 1,
                    -mc_store_check(&st));
            /* every key so far is found, whichever table it is in */
            for (int j = 0; j <= i; j += 41) {
                int kj = snprintf(key, sizeof key, "g%d", j);
                struct mc_item *it =
                    mc_store_get(&st, key, (uint32_t)kj, mc_hash(key, (size_t)kj), now_ns);
                T_CHECK(it && (uint32_t)atoi(mc_item_value(it)) == (uint32_t)(j * 7),
                        "g%d lost while the table grows (%d items)", j, i + 1);
            }
        }
    }
    T_CHECK(saw_growing && st.mask > first_mask, "the table grew (%llu -> %llu buckets)",
            (unsigned long long)first_mask + 1, (unsigned long long)st.mask + 1);
    /* a reference outlives the unlink */
    struct mc_item *it = mc_store_get(&st, "g5", 2, mc_hash("g5", 2), now_ns);
    T_CHECK(it != NULL, "g5");
    mc_item_ref(it);
    T_CHECK(mc_store_delete(&st, "g5", 2, mc_hash("g5", 2), now_ns) == MC_DELETED, "delete g5");
    T_CHECK(!it->linked && memcmp(mc_item_value(it), "35\r\n", 4) == 0,
            "the referenced item is unlinked and still readable");
    mc_item_release(&st, it); /* freed here (ASan would see a leak or a double free) */
    T_CHECK(mc_store_check(&st) == 0, "consistent at the end");
    mc_store_destroy(&st);

    /* cas values are unique across shards: shard 3 of 4 makes 4k+3 */
    fresh(1 << 20, 3, 4);
    for (int i = 0; i < 5; i++) {
        run("set c 0 0 1\r\nx\r\n");
        uint64_t cas = cas_of("c");
        T_CHECK(cas % 4 == 3, "cas %llu on shard 3 of 4", (unsigned long long)cas);
    }
    mc_store_destroy(&st);
    return sc_make_ready(0);
}

START_TEST(growth_refs_cas)
{
    tr_reset();
    backend_i = _i;
    tr_step("growth, %s world", t_backend_names[_i]);
    T_CHECK(t_run(WORLD, growth_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- flush_all later, on the shard's timer ---- */

static struct sc_future delayed_2(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    now_ns = sc_now();
    SAYS("get a\r\n", "END\r\n"); /* the timer fired: flushed */
    SAYS("set b 0 0 1\r\ny\r\nget b\r\n", "STORED\r\nVALUE b 0 1\r\ny\r\nEND\r\n");
    mc_store_destroy(&st);
    return sc_make_ready(0);
}

static struct sc_future delayed_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    fresh(1 << 20, 0, 1);
    now_ns = sc_now();
    SAYS("set a 0 0 1\r\nx\r\n", "STORED\r\n");
    mc_store_flush(&st, now_ns + SC_MS(200), now_ns);
    SAYS("get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n"); /* not yet */
    return sc_then(sc_sleep(SC_MS(300)), delayed_2, NULL, 0);
}

START_TEST(delayed_flush)
{
    tr_reset();
    backend_i = _i;
    tr_step("delayed flush, %s world", t_backend_names[_i]);
    T_CHECK(t_run(WORLD, delayed_main, NULL) == 0, "run failed");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mc_store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, commands, 0, 2);
    tcase_add_loop_test(tc, expiry, 0, 2);
    tcase_add_loop_test(tc, lru, 0, 2);
    tcase_add_loop_test(tc, growth_refs_cas, 0, 2);
    tcase_add_loop_test(tc, delayed_flush, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
