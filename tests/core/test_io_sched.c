/*
 * test_io_sched.c — the I/O scheduler's promise, checked in the simulator
 * where the disk and the clock are exact: a latency-sensitive group (4 KiB
 * random reads at depth 1, 1000 shares) beside a bulk writer (128 KiB
 * writes at depth 32, 100 shares). With the two in separate groups, the
 * reader's p99 stays near its latency alone; with both in one group (no
 * scheduler to tell them apart), it must be much worse — so the test can
 * fail, and shows why the fair queue exists. Also: shares divide the disk
 * between two busy groups in proportion.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "core/memory.h"
#include "core/sched.h"
#include "core/thread.h"
#include "disk/file.h"
#include "disk/io.h"
#include "sim/simdisk.h"
#include "tests/harness.h"

#define FILE_BLOCKS 4096 /* 16 MiB of 4 KiB blocks for the reader */
#define RUN_NS      200000000ull /* 200 ms of virtual time */

struct job {
    struct sc_file *f;
    bool stop;
    uint64_t ops, bytes;
};

static struct sc_future reader(void *cap)
{
    struct job *j = *(struct job **)cap;
    char *buf = sc_dma_alloc(4096);
    while (!j->stop) {
        uint64_t blk = sc_random_below(FILE_BLOCKS);
        T_CHECK(sc_await(sc_file_dma_read(j->f, blk * 4096, buf, 4096), NULL) == 0, "read");
        j->ops++;
    }
    sc_dma_free(buf);
    return sc_make_ready(0);
}

struct wcap {
    struct job *j;
    unsigned slot;
};

static struct sc_future writer(void *cap)
{
    struct wcap *c = cap;
    char *buf = sc_dma_alloc(128 * 1024);
    memset(buf, 'w', 128 * 1024);
    uint64_t off = (uint64_t)c->slot * 128 * 1024;
    while (!c->j->stop) {
        T_CHECK(sc_await(sc_file_dma_write(c->j->f, (16u << 20) + off, buf, 128 * 1024), NULL) == 0,
                "write");
        c->j->ops++;
        c->j->bytes += 128 * 1024;
        off = (off + 32u * 128 * 1024) % (64u << 20);
    }
    sc_dma_free(buf);
    return sc_make_ready(0);
}

enum mode { READER_ALONE, SEPARATE_GROUPS, ONE_GROUP, TWO_WRITERS };
static enum mode mode;
static struct sc_io_stats a_stats, b_stats;
static uint64_t b_bytes, c_bytes;

static struct sc_future run_fiber(void *cap)
{
    (void)cap;
    struct sc_file *f = NULL;
    T_CHECK(sc_await(sc_file_open("/data/f", SC_FILE_READ | SC_FILE_WRITE | SC_FILE_CREATE),
                     (intptr_t *)&f) == 0,
            "open");
    T_CHECK(sc_await(sc_file_truncate(f, 96u << 20), NULL) == 0, "size the file");
    struct sc_sched_group ga = sc_sched_group_main(), gb = sc_sched_group_main(), gc;
    if (mode != ONE_GROUP) {
        T_CHECK(sc_sched_group_create("latency", 1000, &ga) == 0, "group A");
        T_CHECK(sc_sched_group_create("bulk", 100, &gb) == 0, "group B");
    }
    struct job a = {.f = f}, b = {.f = f}, c = {.f = f};
    struct sc_future fs[70];
    size_t n = 0;
    struct sc_thread_attr at = {.group = &ga}, bt = {.group = &gb};
    struct job *pa = &a;
    if (mode != TWO_WRITERS)
        fs[n++] = sc_thread_spawn(reader, &pa, sizeof pa, &at);
    if (mode != READER_ALONE)
        for (unsigned i = 0; i < 32; i++) {
            struct wcap w = {&b, i};
            fs[n++] = sc_thread_spawn(writer, &w, sizeof w, &bt);
        }
    if (mode == TWO_WRITERS) {
        T_CHECK(sc_sched_group_create("bulk2", 300, &gc) == 0, "group C");
        struct sc_thread_attr ct = {.group = &gc};
        for (unsigned i = 0; i < 32; i++) {
            struct wcap w = {&c, 32 + i};
            fs[n++] = sc_thread_spawn(writer, &w, sizeof w, &ct);
        }
    }
    T_CHECK(sc_await(sc_sleep(RUN_NS / 10), NULL) == 0, "warm up");
    sc_io_stats_reset();
    uint64_t b0 = b.bytes, c0 = c.bytes;
    T_CHECK(sc_await(sc_sleep(RUN_NS), NULL) == 0, "run");
    sc_io_stats(ga, &a_stats);
    sc_io_stats(gb, &b_stats);
    b_bytes = b.bytes - b0;
    c_bytes = c.bytes - c0;
    a.stop = b.stop = c.stop = true;
    T_CHECK(sc_await(sc_when_all_succeed(fs, n), NULL) == 0, "jobs end");
    T_CHECK(sc_await(sc_file_close(f), NULL) == 0, "close");
    return sc_make_ready(0);
}

static struct sc_future run_main(void *x, int argc, char **argv)
{
    (void)x, (void)argc, (void)argv;
    return sc_thread_spawn(run_fiber, NULL, 0, NULL);
}

static void run(enum mode m)
{
    mode = m;
    T_CHECK(sc_sim_disk_reset() == 0, "reset the sim disk");
    struct sc_config cfg = t_config(SC_BACKEND_SIM);
    cfg.smp = 1;
    T_CHECK(sc_run(&cfg, run_main, NULL, 0, NULL) == 0, "run failed");
}

START_TEST(latency_isolation)
{
    tr_reset();
    run(READER_ALONE);
    struct sc_io_stats alone = a_stats;
    tr_step("A alone: p50 %llu ns, p99 %llu ns, %llu reads",
            (unsigned long long)alone.p50_ns, (unsigned long long)alone.p99_ns,
            (unsigned long long)alone.reads);
    run(SEPARATE_GROUPS);
    struct sc_io_stats sep = a_stats;
    uint64_t sep_b = b_bytes;
    tr_step("A beside B in its own group: p50 %llu p99 %llu; B %llu MB/s",
            (unsigned long long)sep.p50_ns, (unsigned long long)sep.p99_ns,
            (unsigned long long)(sep_b * 1000000000ull / RUN_NS / 1000000));
    run(ONE_GROUP);
    struct sc_io_stats one = a_stats;
    tr_step("A and B in one group: p50 %llu p99 %llu; B %llu MB/s",
            (unsigned long long)one.p50_ns, (unsigned long long)one.p99_ns,
            (unsigned long long)(b_bytes * 1000000000ull / RUN_NS / 1000000));
    T_CHECK(alone.reads > 1000 && sep.reads > 100, "the reader ran");
    T_CHECK(sep.p99_ns * 4 < one.p99_ns,
            "separate groups protect the reader: p99 %llu vs %llu in one group",
            (unsigned long long)sep.p99_ns, (unsigned long long)one.p99_ns);
    T_CHECK(sep.p99_ns < 3 * alone.p99_ns, "A's p99 under load stays within 3x of alone (%llu vs %llu)",
            (unsigned long long)sep.p99_ns, (unsigned long long)alone.p99_ns);
    T_CHECK(sep_b * 10 >= b_bytes * 7,
            "B keeps most of its throughput beside A (%llu vs %llu bytes in one group)",
            (unsigned long long)sep_b, (unsigned long long)b_bytes);
    if (getenv("SC_TEST_VERBOSE"))
        tr_dump();
}
END_TEST

START_TEST(shares_divide_the_disk)
{
    tr_reset();
    run(TWO_WRITERS);
    tr_step("B (100 shares) wrote %llu bytes, C (300 shares) %llu", (unsigned long long)b_bytes,
            (unsigned long long)c_bytes);
    double ratio = (double)c_bytes / (double)b_bytes;
    T_CHECK(ratio > 2.5 && ratio < 3.5, "300:100 shares give about 3x the bytes (%.2f)", ratio);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io_sched");
    TCase *tc = tcase_create("io_sched");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, latency_isolation);
    tcase_add_test(tc, shares_divide_the_disk);
    suite_add_tcase(s, tc);
    return t_main(s);
}
