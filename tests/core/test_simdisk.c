/*
 * test_simdisk.c — the simulated disk (sim/disk.c, sim/simdisk.h) through
 * the file API: read-your-writes, alignment (in the API and again in the
 * backend), injected EIO, a full disk, names (create, rename, remove, list,
 * and the errors of each), the timing model, and what a power cut leaves:
 * writes after it are lost, flushed data survives, unflushed writes tear at
 * sector granularity for some seeds, unsynced names may vanish; and the same
 * seed gives the same run.
 *
 * The sim disk exists only in the simulator, so these cases run there only
 * (test_file.c covers the real world's files). Each body is a fiber.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/memory.h"
#include "core/smp.h"
#include "core/thread.h"
#include "disk/disk_impl.h"
#include "disk/file.h"
#include "disk/io.h"
#include "sim/simdisk.h"
#include "tests/harness.h"

#define BLK 4096u

static struct sc_future body_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    return sc_thread_spawn((sc_thread_fn)(uintptr_t)arg, NULL, 0, NULL);
}

/* Run fn as a fiber in the simulator with this seed and EIO rate. */
static int run_with(uint64_t seed, uint32_t eio_ppm, sc_thread_fn fn, struct sc_run_result *res)
{
    struct sc_config cfg = t_config(SC_BACKEND_SIM);
    cfg.seed = seed;
    cfg.sim_disk_eio_ppm = eio_ppm;
    struct sc_run_result r;
    int rc = sc_run_ex(&cfg, body_main, (void *)(uintptr_t)fn, 0, NULL, res ? res : &r);
    T_CHECK((res ? res : &r)->unhandled_errors == 0, "a failed future was left unhandled");
    return rc;
}

static int run(uint64_t seed, sc_thread_fn fn)
{
    return run_with(seed, 0, fn, NULL);
}

static intptr_t ok(struct sc_future f, const char *what)
{
    intptr_t v = 0;
    int rc = sc_await(f, &v);
    T_CHECK(rc == 0, "%s failed: %s", what, sc_strerror(rc));
    return v;
}

static int err_of(struct sc_future f)
{
    return sc_await(f, NULL);
}

static struct sc_file *open_f(const char *path, unsigned flags)
{
    return (struct sc_file *)ok(sc_file_open(path, flags), path);
}

#define RW     (SC_FILE_READ | SC_FILE_WRITE)
#define CREATE (SC_FILE_READ | SC_FILE_WRITE | SC_FILE_CREATE)

static void fill(char *b, size_t n, int tag)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(tag * 31 + (int)(i % 251));
}

/* Write `blocks` blocks tagged `tag` at block `at`. */
static void put(struct sc_file *f, unsigned at, unsigned blocks, int tag)
{
    char *b = sc_dma_alloc(blocks * BLK);
    fill(b, blocks * BLK, tag);
    intptr_t n = ok(sc_file_dma_write(f, (uint64_t)at * BLK, b, blocks * BLK), "write");
    T_CHECK(n == (intptr_t)(blocks * BLK), "write gave %ld", (long)n);
    sc_dma_free(b);
}

/* Does block `at` hold exactly tag's bytes? */
static bool holds(struct sc_file *f, unsigned at, int tag)
{
    char *b = sc_dma_alloc(BLK), *want = malloc(BLK);
    fill(want, BLK, tag);
    intptr_t n = ok(sc_file_dma_read(f, (uint64_t)at * BLK, b, BLK), "read");
    bool same = n == BLK && memcmp(b, want, BLK) == 0;
    sc_dma_free(b);
    free(want);
    return same;
}

/* ---- read your writes ---- */

static struct sc_future ryw_body(void *cap)
{
    (void)cap;
    struct sc_file *f = open_f("data/a", CREATE | SC_FILE_EXCL);
    T_CHECK(sc_file_alignment(f) == 4096, "alignment %u", sc_file_alignment(f));
    T_CHECK(sc_file_is_direct(f), "the sim disk acts as O_DIRECT");
    tr_step("write blocks 0-2 with tag 1, block 1 again with tag 2");
    put(f, 0, 3, 1);
    put(f, 1, 1, 2);
    T_CHECK(holds(f, 1, 2), "the later write wins");
    char *b = sc_dma_alloc(3 * BLK), *want = malloc(BLK);
    ok(sc_file_dma_read(f, 0, b, 3 * BLK), "read 3");
    fill(want, BLK, 1);
    T_CHECK(!memcmp(b, want, BLK), "block 0 holds tag 1");
    tr_step("read past the end gives 0; size is 3 blocks");
    T_CHECK(ok(sc_file_dma_read(f, 8 * BLK, b, BLK), "read past end") == 0, "past end: 0");
    T_CHECK(ok(sc_file_size(f), "size") == 3 * BLK, "size is 3 blocks");
    tr_step("truncate to 5000 bytes: a read of 2 blocks gives 5000");
    ok(sc_file_truncate(f, 5000), "truncate");
    T_CHECK(ok(sc_file_dma_read(f, 0, b, 2 * BLK), "read") == 5000, "short read at end");
    tr_step("truncate up to 3 blocks again: the cut bytes read as zeroes");
    ok(sc_file_truncate(f, 3 * BLK), "truncate up");
    ok(sc_file_dma_read(f, 2 * BLK, b, BLK), "read");
    memset(want, 0, BLK);
    T_CHECK(!memcmp(b, want, BLK), "zeroes after truncate");
    struct sc_file_stat st;
    ok(sc_file_stat(f, &st), "stat");
    T_CHECK(st.size == 3 * BLK && st.alignment == 4096 && st.blocks >= 3 * BLK / 512,
            "stat: size %llu blocks %llu", (unsigned long long)st.size,
            (unsigned long long)st.blocks);
    tr_step("a second open of the same file sees the data; a read-only one cannot write");
    struct sc_file *g = open_f("data/a", SC_FILE_READ);
    T_CHECK(holds(g, 0, 1), "second handle reads the data");
    T_CHECK(err_of(sc_file_dma_write(g, 0, b, BLK)) == -EBADF, "read-only file refuses writes");
    ok(sc_file_close(g), "close g");
    ok(sc_file_allocate(f, 0, 6 * BLK), "allocate");
    T_CHECK(ok(sc_file_size(f), "size") == 6 * BLK, "allocate grows the file (posix_fallocate)");
    ok(sc_file_close(f), "close");
    T_CHECK(err_of(sc_file_dma_read(f, 0, b, BLK)) == -EBADF, "closed file: -EBADF");
    sc_dma_free(b);
    free(want);
    return sc_make_ready(0);
}

/* A later run (no reboot) sees what the first one wrote. */
static struct sc_future ryw_again(void *cap)
{
    (void)cap;
    struct sc_file *f = open_f("data/a", SC_FILE_READ);
    T_CHECK(holds(f, 0, 1), "block 0 still holds tag 1");
    T_CHECK(ok(sc_file_size(f), "size") == 6 * BLK, "size kept");
    ok(sc_file_close(f), "close");
    return sc_make_ready(0);
}

START_TEST(read_your_writes)
{
    tr_reset();
    sc_sim_disk_reset();
    T_CHECK(run(1, ryw_body) == 0, "body failed");
    tr_step("files live across runs: a second run reads them");
    T_CHECK(run(2, ryw_again) == 0, "second run failed");
}
END_TEST

/* ---- alignment: in the API, and again in the backend ---- */

struct direct {
    struct sc__dreq r;
    int64_t res;
    int calls;
    bool inside_submit;
};
static bool in_submit;

static void direct_done(struct sc__dreq *r, int64_t res)
{
    struct direct *d = SC_CONTAINER_OF(r, struct direct, r);
    d->res = res;
    d->calls++;
    d->inside_submit = in_submit;
}

static struct sc_future align_body(void *cap)
{
    (void)cap;
    struct sc_file *f = open_f("al", CREATE);
    char *b = sc_dma_alloc(2 * BLK);
    tr_step("misaligned offset, length, buffer through the API: -EINVAL");
    T_CHECK(err_of(sc_file_dma_write(f, 512, b, BLK)) == -EINVAL, "offset 512");
    T_CHECK(err_of(sc_file_dma_write(f, 0, b, 1000)) == -EINVAL, "length 1000");
    T_CHECK(err_of(sc_file_dma_write(f, 0, b + 8, BLK)) == -EINVAL, "buffer + 8");
    T_CHECK(err_of(sc_file_dma_read(f, 100, b, BLK)) == -EINVAL, "read offset 100");
    T_CHECK(ok(sc_file_size(f), "size") == 0, "nothing was written");
    tr_step("the bulk helpers do any alignment");
    ok(sc_file_write_bulk(f, 100, "hello", 5), "bulk write");
    char out[5];
    T_CHECK(ok(sc_file_read_bulk(f, 100, out, 5), "bulk read") == 5 && !memcmp(out, "hello", 5),
            "bulk round trip");
    tr_step("the backend checks again: a misaligned request straight to submit");
    struct sc__bfile *bf = (struct sc__bfile *)ok(sc__sim_disk.open("al", SC_FILE_READ), "open");
    struct direct d = {.r = {.op = SC__DREQ_READ,
                             .file = bf,
                             .off = 512,
                             .buf = b,
                             .len = BLK,
                             .done = direct_done}};
    in_submit = true;
    sc__sim_disk.submit(&d.r);
    in_submit = false;
    T_CHECK(d.calls == 0, "done must not run inside submit");
    ok(sc_sleep(SC_MS(1)), "sleep");
    T_CHECK(d.calls == 1 && d.res == -EINVAL && !d.inside_submit, "backend: -EINVAL once, later");
    tr_step("a write on a file opened read-only, straight to the backend: -EBADF");
    d = (struct direct){
        .r = {
            .op = SC__DREQ_WRITE, .file = bf, .off = 0, .buf = b, .len = BLK, .done = direct_done}};
    sc__sim_disk.submit(&d.r);
    ok(sc_sleep(SC_MS(1)), "sleep");
    T_CHECK(d.calls == 1 && d.res == -EBADF, "backend: -EBADF, got %lld", (long long)d.res);
    ok(sc__sim_disk.close(bf), "close bf");
    ok(sc_file_close(f), "close");
    sc_dma_free(b);
    return sc_make_ready(0);
}

START_TEST(alignment)
{
    tr_reset();
    sc_sim_disk_reset();
    T_CHECK(run(1, align_body) == 0, "body failed");
}
END_TEST

/* ---- injected EIO ---- */

static int eio_writes, eio_flushes;

static struct sc_future eio_body(void *cap)
{
    (void)cap;
    struct sc_file *f = open_f("eio", CREATE);
    char *b = sc_dma_alloc(BLK);
    fill(b, BLK, 3);
    for (int i = 0; i < 200; i++) {
        int rc = err_of(sc_file_dma_write(f, (uint64_t)(i % 16) * BLK, b, BLK));
        T_CHECK(rc == 0 || rc == -EIO, "write: %s", sc_strerror(rc));
        eio_writes += rc == -EIO;
        rc = err_of(sc_file_flush(f));
        T_CHECK(rc == 0 || rc == -EIO, "flush: %s", sc_strerror(rc));
        eio_flushes += rc == -EIO;
    }
    ok(sc_file_close(f), "close");
    sc_dma_free(b);
    return sc_make_ready(0);
}

START_TEST(eio_injection)
{
    tr_reset();
    sc_sim_disk_reset();
    tr_step("200 writes and 200 flushes at 100000 ppm (10%%)");
    T_CHECK(run_with(5, 100000, eio_body, NULL) == 0, "body failed");
    struct sc_sim_disk_stats st;
    sc_sim_disk_stats(&st);
    tr_step("writes failed: %d, flushes failed: %d, counted %llu", eio_writes, eio_flushes,
            (unsigned long long)st.eio);
    T_CHECK(eio_writes >= 5 && eio_writes <= 50, "about 20 writes should fail");
    T_CHECK(eio_flushes >= 5 && eio_flushes <= 50, "about 20 flushes should fail");
    T_CHECK(st.eio == (uint64_t)(eio_writes + eio_flushes), "the counter counts them");
    tr_step("without the option, nothing fails");
    eio_writes = eio_flushes = 0;
    T_CHECK(run_with(5, 0, eio_body, NULL) == 0 && eio_writes == 0 && eio_flushes == 0,
            "no faults at 0 ppm");
}
END_TEST

/* ---- a full disk ---- */

static struct sc_future enospc_body(void *cap)
{
    (void)cap;
    struct sc_file *f = open_f("full", CREATE);
    tr_step("16 blocks fit in 64 KiB");
    put(f, 0, 16, 1);
    char *b = sc_dma_alloc(BLK);
    tr_step("the 17th block: -ENOSPC; rewriting a block already there is fine");
    T_CHECK(err_of(sc_file_dma_write(f, 16 * BLK, b, BLK)) == -ENOSPC, "17th block");
    put(f, 3, 1, 2);
    T_CHECK(err_of(sc_file_truncate(f, 20 * BLK)) == -ENOSPC, "truncate up");
    T_CHECK(err_of(sc_file_allocate(f, 0, 20 * BLK)) == -ENOSPC, "allocate");
    struct sc_file *g = open_f("other", CREATE);
    T_CHECK(err_of(sc_file_dma_write(g, 0, b, BLK)) == -ENOSPC, "another file");
    tr_step("cut the first file to 8 blocks: the other file gets room");
    ok(sc_file_truncate(f, 8 * BLK), "truncate down");
    put(g, 0, 8, 3);
    T_CHECK(err_of(sc_file_dma_write(g, 8 * BLK, b, BLK)) == -ENOSPC, "full again");
    ok(sc_file_close(f), "close");
    ok(sc_file_close(g), "close");
    tr_step("remove the first file: room again");
    ok(sc_file_remove("full"), "remove");
    g = open_f("other", RW);
    put(g, 8, 8, 4);
    ok(sc_file_close(g), "close");
    sc_dma_free(b);
    return sc_make_ready(0);
}

START_TEST(enospc)
{
    tr_reset();
    sc_sim_disk_reset();
    sc_sim_disk_set_capacity(64 * 1024);
    T_CHECK(run(1, enospc_body) == 0, "body failed");
    struct sc_sim_disk_stats st;
    sc_sim_disk_stats(&st);
    T_CHECK(st.enospc >= 5 && st.used_bytes <= 64 * 1024, "enospc %llu used %llu",
            (unsigned long long)st.enospc, (unsigned long long)st.used_bytes);
}
END_TEST

/* ---- names ---- */

static void expect_list(const char *dir, const char *const *want, size_t n)
{
    struct sc_dir_list *l = (struct sc_dir_list *)ok(sc_file_list_directory(dir), dir);
    bool same = l->count == n;
    for (size_t i = 0; same && i < n; i++)
        same = !strcmp(l->names[i], want[i]);
    if (!same) {
        for (size_t i = 0; i < l->count; i++)
            tr_step("  %s has '%s'", dir, l->names[i]);
    }
    sc_dir_list_free(l);
    T_CHECK(same, "listing of %s is not what was expected", dir);
}

static struct sc_future names_body(void *cap)
{
    (void)cap;
    tr_step("create d/x, d/y, d/sub/z, /abs/q");
    ok(sc_file_close(open_f("d/x", CREATE)), "x");
    ok(sc_file_close(open_f("d/y", CREATE)), "y");
    ok(sc_file_close(open_f("./d//sub/z", CREATE)), "z");
    ok(sc_file_close(open_f("/abs/q", CREATE)), "q");
    expect_list("d", (const char *const[]){"sub", "x", "y"}, 3);
    expect_list("d/sub/", (const char *const[]){"z"}, 1);
    expect_list(".", (const char *const[]){"d"}, 1);
    expect_list("/", (const char *const[]){"abs"}, 1);
    tr_step("rename d/x -> d/w, replace d/y with d/w's file; remove d/sub/z");
    ok(sc_file_rename("d/x", "d/w"), "rename");
    expect_list("d", (const char *const[]){"sub", "w", "y"}, 3);
    ok(sc_file_rename("d/w", "d/y"), "rename over");
    expect_list("d", (const char *const[]){"sub", "y"}, 2);
    ok(sc_file_remove("d/sub/z"), "remove");
    expect_list("d/sub", NULL, 0);
    tr_step("errors");
    T_CHECK(err_of(sc_file_open("d/nope", RW)) == -ENOENT, "missing: -ENOENT");
    T_CHECK(err_of(sc_file_open("d", RW)) == -EISDIR, "a directory: -EISDIR");
    T_CHECK(err_of(sc_file_open("d/y", CREATE | SC_FILE_EXCL)) == -EEXIST, "EXCL: -EEXIST");
    T_CHECK(err_of(sc_file_open("d/y/q", CREATE)) == -ENOTDIR, "under a file: -ENOTDIR");
    T_CHECK(err_of(sc_file_open("../up", CREATE)) == -EINVAL, "above the root: -EINVAL");
    T_CHECK(err_of(sc_file_remove("d/nope")) == -ENOENT, "remove missing");
    T_CHECK(err_of(sc_file_remove("d")) == -EISDIR, "remove a directory");
    T_CHECK(err_of(sc_file_rename("d/nope", "d/a")) == -ENOENT, "rename missing");
    T_CHECK(err_of(sc_file_rename("d/y", "d/sub")) == -EISDIR, "rename onto a directory");
    T_CHECK(err_of(sc_file_list_directory("d/y")) == -ENOTDIR, "list a file");
    T_CHECK(err_of(sc_file_list_directory("nodir")) == -ENOENT, "list nothing");
    T_CHECK(err_of(sc_file_sync_dir("nodir")) == -ENOENT, "sync nothing");
    T_CHECK(err_of(sc_file_sync_dir("d/y")) == -ENOTDIR, "sync a file");
    ok(sc_file_sync_dir("d"), "sync d");
    tr_step("an open file outlives its name");
    struct sc_file *f = open_f("d/y", RW);
    ok(sc_file_remove("d/y"), "remove open file");
    put(f, 0, 1, 9);
    T_CHECK(holds(f, 0, 9), "still readable");
    ok(sc_file_close(f), "close");
    expect_list("d", (const char *const[]){"sub"}, 1);
    return sc_make_ready(0);
}

START_TEST(names)
{
    tr_reset();
    sc_sim_disk_reset();
    T_CHECK(run(1, names_body) == 0, "body failed");
}
END_TEST

/* ---- the timing model ---- */

static uint64_t t_one, t_eight;

struct reads {
    struct sc_file *f;
    char *b; /* 8 blocks: one per read */
};

static struct sc_future one_read(void *cap, size_t i)
{
    const struct reads *r = cap;
    return sc_file_dma_read(r->f, 0, r->b + i * BLK, BLK);
}

static struct sc_future timing_body(void *cap)
{
    (void)cap;
    struct sc_file *f = open_f("t", CREATE);
    put(f, 0, 1, 1);
    struct sc_disk_model m;
    T_CHECK(sc_io_model(&m) == 0, "the sim disk gives the I/O queue a model");
    tr_step("model: %llu read iops, %llu write iops, %llu B/s read, %llu B/s write",
            (unsigned long long)m.read_iops, (unsigned long long)m.write_iops,
            (unsigned long long)m.read_bw, (unsigned long long)m.write_bw);
    T_CHECK(m.read_iops > 1000 && m.write_iops > m.read_iops && m.read_bw > m.write_bw,
            "a plausible SSD");
    struct reads r = {f, sc_dma_alloc(8 * BLK)};
    uint64_t t0 = sc_now();
    ok(one_read(&r, 0), "read");
    t_one = sc_now() - t0;
    t0 = sc_now();
    ok(sc_parallel_for_each(8, one_read, &r, sizeof r), "8 reads");
    t_eight = sc_now() - t0;
    sc_dma_free(r.b);
    ok(sc_file_close(f), "close");
    return sc_make_ready(0);
}

START_TEST(timing)
{
    tr_reset();
    sc_sim_disk_reset();
    T_CHECK(run(3, timing_body) == 0, "body failed");
    tr_step("one 4 KiB read: %llu ns; eight at once: %llu ns", (unsigned long long)t_one,
            (unsigned long long)t_eight);
    T_CHECK(t_one >= 50000 && t_one <= 400000, "one read takes about 70 us of virtual time");
    T_CHECK(t_eight < 6 * t_one + 100000, "the channels serve reads in parallel");
    T_CHECK(t_eight > t_one, "eight reads on four channels take longer than one");
}
END_TEST

/* ---- power cuts ---- */

static bool block0_ok, block1_new, block1_old, block1_torn;

/* Part 1: a durable block 0, then block 1 unflushed. */
static struct sc_future crash_write(void *cap)
{
    (void)cap;
    struct sc_file *f = open_f("c/log", CREATE);
    ok(sc_file_sync_dir("c"), "sync_dir");
    put(f, 0, 1, 1);
    ok(sc_file_flush(f), "flush");
    put(f, 1, 1, 2);
    ok(sc_file_close(f), "close");
    return sc_make_ready(0);
}

/* After the reboot: what is in block 1? */
static struct sc_future crash_read(void *cap)
{
    (void)cap;
    struct sc_file *f = open_f("c/log", SC_FILE_READ);
    block0_ok = holds(f, 0, 1);
    char *b = sc_dma_alloc(BLK), *want = malloc(BLK), *zero = calloc(1, BLK);
    fill(want, BLK, 2);
    intptr_t n = ok(sc_file_dma_read(f, BLK, b, BLK), "read block 1");
    unsigned news = 0, olds = 0;
    for (unsigned s = 0; s < BLK / 512; s++) {
        if (n >= (intptr_t)((s + 1) * 512) && !memcmp(b + s * 512, want + s * 512, 512))
            news++;
        else if (n <= (intptr_t)(s * 512) || !memcmp(b + s * 512, zero, 512))
            olds++;
    }
    T_CHECK(news + olds == BLK / 512, "every sector is old or new, never mixed");
    block1_new = news == BLK / 512;
    block1_old = olds == BLK / 512;
    block1_torn = news && olds;
    sc_dma_free(b);
    free(want);
    free(zero);
    ok(sc_file_close(f), "close");
    return sc_make_ready(0);
}

START_TEST(flushed_survives_unflushed_may_not)
{
    tr_reset();
    int news = 0, olds = 0, torn = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        sc_sim_disk_reset();
        T_CHECK(run(seed, crash_write) == 0, "write run failed");
        T_CHECK(sc_sim_disk_reboot() == 0, "reboot");
        T_CHECK(run(seed, crash_read) == 0, "read run failed");
        T_CHECK(block0_ok, "seed %llu: the flushed block must survive", (unsigned long long)seed);
        news += block1_new;
        olds += block1_old;
        torn += block1_torn;
    }
    tr_step("40 seeds: unflushed block came back whole %d, lost %d, torn %d", news, olds, torn);
    T_CHECK(news > 0 && olds > 0 && torn > 0, "each outcome must happen for some seed");
    struct sc_sim_disk_stats st;
    sc_sim_disk_stats(&st);
    T_CHECK(st.reboots == 1 && st.sectors_new + st.sectors_old == 8, "the last reboot's counters");
}
END_TEST

/* A power cut before the second write: it is never durable. */
static struct sc_future cut_then_write(void *cap)
{
    (void)cap;
    struct sc_file *f = open_f("c/log", CREATE);
    ok(sc_file_sync_dir("c"), "sync_dir");
    put(f, 0, 1, 1);
    ok(sc_file_flush(f), "flush");
    sc_sim_disk_crash_at(sc_now());
    tr_step("power cut at %llu ns; then write block 1 and flush it", (unsigned long long)sc_now());
    put(f, 1, 1, 2);
    ok(sc_file_flush(f), "flush after the cut (nobody hears it)");
    T_CHECK(holds(f, 1, 2), "the app still reads what it wrote");
    ok(sc_file_close(f), "close");
    ok(sc_file_close(open_f("c/late", CREATE)), "a file created after the cut");
    ok(sc_file_sync_dir("c"), "sync_dir after the cut");
    return sc_make_ready(0);
}

START_TEST(crash_loses_later_writes)
{
    tr_reset();
    for (uint64_t seed = 1; seed <= 10; seed++) {
        sc_sim_disk_reset();
        T_CHECK(run(seed, cut_then_write) == 0, "write run failed");
        T_CHECK(sc_sim_disk_reboot() == 0, "reboot");
        T_CHECK(run(seed, crash_read) == 0, "read run failed");
        T_CHECK(block0_ok && block1_old, "seed %llu: block 0 durable, block 1 lost",
                (unsigned long long)seed);
        struct sc_sim_disk_stats st;
        sc_sim_disk_stats(&st);
        T_CHECK(st.crashes == 1 && st.files == 1, "the late file is gone (%llu files)",
                (unsigned long long)st.files);
    }
}
END_TEST

/* Names: a synced file always survives; an unsynced one may vanish; a
 * rename lands whole or not at all. */
static struct sc_future names_write(void *cap)
{
    (void)cap;
    ok(sc_file_close(open_f("n/kept", CREATE)), "kept");
    ok(sc_file_close(open_f("n/old", CREATE)), "old");
    ok(sc_file_sync_dir("n"), "sync");
    ok(sc_file_close(open_f("m/unsynced", CREATE)), "unsynced");
    ok(sc_file_rename("n/old", "n/new"), "rename");
    return sc_make_ready(0);
}

static bool has_old, has_new, has_kept, has_unsynced;

static struct sc_future names_read(void *cap)
{
    (void)cap;
    has_old = has_new = has_kept = has_unsynced = false;
    struct sc_dir_list *l = (struct sc_dir_list *)ok(sc_file_list_directory("n"), "list");
    for (size_t i = 0; i < l->count; i++) {
        has_old |= !strcmp(l->names[i], "old");
        has_new |= !strcmp(l->names[i], "new");
        has_kept |= !strcmp(l->names[i], "kept");
    }
    sc_dir_list_free(l);
    intptr_t v;
    int rc = sc_await(sc_file_open("m/unsynced", SC_FILE_READ), &v);
    if (rc == 0) {
        has_unsynced = true;
        ok(sc_file_close((struct sc_file *)v), "close");
    }
    return sc_make_ready(0);
}

START_TEST(names_after_crash)
{
    tr_reset();
    int renamed = 0, vanished = 0;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        sc_sim_disk_reset();
        T_CHECK(run(seed, names_write) == 0, "write run failed");
        T_CHECK(sc_sim_disk_reboot() == 0, "reboot");
        T_CHECK(run(seed, names_read) == 0, "read run failed");
        tr_step("seed %llu: kept %d old %d new %d unsynced %d", (unsigned long long)seed, has_kept,
                has_old, has_new, has_unsynced);
        T_CHECK(has_kept, "a synced file survives");
        T_CHECK(has_old != has_new, "a rename is atomic: exactly one name");
        renamed += has_new;
        vanished += !has_unsynced;
    }
    T_CHECK(renamed > 0 && renamed < 30, "the unsynced rename lands for some seeds only");
    T_CHECK(vanished > 0 && vanished < 30, "the unsynced file vanishes for some seeds only");
}
END_TEST

/* ---- determinism ---- */

static struct sc_future busy_body(void *cap)
{
    (void)cap;
    struct sc_file *f = open_f("busy", CREATE);
    char *b = sc_dma_alloc(8 * BLK);
    fill(b, 8 * BLK, 7);
    for (int i = 0; i < 50; i++) {
        uint64_t off = sc_random_below(64) * BLK;
        size_t len = (1 + sc_random_below(8)) * BLK;
        sc_future_ignore(sc_file_dma_write(f, off, b, len));
        int rc = err_of(sc_file_dma_read(f, sc_random_below(64) * BLK, b, BLK));
        T_CHECK(rc >= 0 || rc == -EIO, "read: %s", sc_strerror(rc));
        if (i % 8 == 0)
            sc_future_ignore(sc_file_flush(f));
    }
    ok(sc_sleep(SC_MS(5)), "drain");
    ok(sc_file_close(f), "close");
    sc_dma_free(b);
    return sc_make_ready(0);
}

START_TEST(determinism)
{
    tr_reset();
    struct sc_run_result a, b, c;
    sc_sim_disk_reset();
    T_CHECK(run_with(11, 50000, busy_body, &a) == 0, "run a");
    sc_sim_disk_reset();
    T_CHECK(run_with(11, 50000, busy_body, &b) == 0, "run b");
    sc_sim_disk_reset();
    T_CHECK(run_with(12, 50000, busy_body, &c) == 0, "run c");
    tr_step("seed 11: %016llx at %llu ns, then %016llx at %llu ns; seed 12: %016llx",
            (unsigned long long)a.trace_hash, (unsigned long long)a.end_ns,
            (unsigned long long)b.trace_hash, (unsigned long long)b.end_ns,
            (unsigned long long)c.trace_hash);
    T_CHECK(a.trace_hash == b.trace_hash && a.end_ns == b.end_ns, "same seed, same run");
    T_CHECK(a.trace_hash != c.trace_hash, "another seed, another run");
}
END_TEST

/* ---- bad calls outside and inside a run ---- */

static int inside_rc;

static struct sc_future inside_body(void *cap)
{
    (void)cap;
    ok(sc_file_close(open_f("x", CREATE)), "x");
    inside_rc = sc_sim_disk_reboot();
    T_CHECK(sc_sim_disk_reset() == -EBUSY, "reset inside a run: -EBUSY");
    return sc_make_ready(0);
}

START_TEST(controls_inside_a_run)
{
    tr_reset();
    sc_sim_disk_reset();
    T_CHECK(run(1, inside_body) == 0, "body failed");
    T_CHECK(inside_rc == -EBUSY, "reboot inside a run: -EBUSY");
    T_CHECK(sc_sim_disk_reset() == 0, "reset after the run");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("simdisk");
    TCase *tc = tcase_create("simdisk");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, read_your_writes);
    tcase_add_test(tc, alignment);
    tcase_add_test(tc, eio_injection);
    tcase_add_test(tc, enospc);
    tcase_add_test(tc, names);
    tcase_add_test(tc, timing);
    tcase_add_test(tc, flushed_survives_unflushed_may_not);
    tcase_add_test(tc, crash_loses_later_writes);
    tcase_add_test(tc, names_after_crash);
    tcase_add_test(tc, determinism);
    tcase_add_test(tc, controls_inside_a_run);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
