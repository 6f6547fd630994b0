/*
 * test_file.c — the DMA file API on real files (ext4 under /tmp), on every
 * reactor backend: read-your-writes, alignment errors that submit nothing,
 * bulk helpers at odd offsets, metadata calls, bad input (missing paths,
 * directories, closed files, a full device), the I/O queue's per-group
 * statistics, and the disk model file's parser.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/memory.h"
#include "core/sched.h"
#include "core/thread.h"
#include "disk/file.h"
#include "disk/io.h"
#include "tests/harness.h"

static const enum sc_reactor_backend backends[] = {SC_REACTOR_LINUX_AIO, SC_REACTOR_EPOLL,
                                                   SC_REACTOR_IO_URING};
static int bi;
static char dir[64];

static intptr_t ok(struct sc_future f, const char *what)
{
    intptr_t v = 0;
    int rc = sc_await(f, &v);
    T_CHECK(rc == 0, "%s failed: %s", what, sc_strerror(rc));
    return v;
}

static int fails(struct sc_future f)
{
    return sc_await(f, NULL);
}

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* The fiber a run's main function starts (sc_main_fn's argument). */
struct fiber_arg {
    sc_thread_fn fn;
};

static struct sc_future fiber_main(void *a, int argc, char **argv)
{
    (void)argc, (void)argv;
    return sc_thread_spawn(((const struct fiber_arg *)a)->fn, NULL, 0, NULL);
}

/* Run fn in a fiber on one real shard with reactor backend number i. */
static int run_real(int i, sc_thread_fn fn)
{
    bi = i;
    struct sc_config cfg = t_config(SC_BACKEND_REAL);
    cfg.smp = 1;
    cfg.reactor_backend = backends[i];
    struct fiber_arg fa = {fn};
    return sc_run(&cfg, fiber_main, &fa, 0, NULL);
}

static struct sc_future basics_fiber(void *cap)
{
    (void)cap;
    char p[128], p2[128];
    path_in(p, sizeof p, "a");
    tr_step("create %s", p);
    struct sc_file *f = (struct sc_file *)ok(
        sc_file_open(p, SC_FILE_READ | SC_FILE_WRITE | SC_FILE_CREATE | SC_FILE_EXCL), "open");
    T_CHECK(sc_file_is_direct(f), "ext4 takes O_DIRECT");
    uint32_t a = sc_file_alignment(f);
    T_CHECK(a == 4096, "alignment %u", a);
    char *buf = sc_dma_alloc(3 * a), *back = sc_dma_alloc(3 * a);
    T_CHECK(buf && back && ((uintptr_t)buf & (a - 1)) == 0, "aligned buffers");
    for (unsigned i = 0; i < 3 * a; i++)
        buf[i] = (char)(i * 13 + 1);
    tr_step("write 3 blocks at block 1, flush, read back");
    T_CHECK(ok(sc_file_dma_write(f, a, buf, 3 * a), "write") == 3 * a, "wrote all");
    ok(sc_file_flush(f), "flush");
    T_CHECK(ok(sc_file_dma_read(f, a, back, 3 * a), "read") == 3 * a, "read all");
    T_CHECK(memcmp(buf, back, 3 * a) == 0, "read your writes");
    T_CHECK(ok(sc_file_size(f), "size") == 4 * a, "size is 4 blocks");
    tr_step("misaligned buffer, offset and length: -EINVAL, nothing submitted");
    struct sc_io_stats st0, st1;
    sc_io_stats(sc_sched_group_main(), &st0);
    T_CHECK(fails(sc_file_dma_read(f, 0, back + 1, a)) == -EINVAL, "misaligned buffer");
    T_CHECK(fails(sc_file_dma_read(f, 7, back, a)) == -EINVAL, "misaligned offset");
    T_CHECK(fails(sc_file_dma_write(f, 0, buf, 100)) == -EINVAL, "misaligned length");
    sc_io_stats(sc_sched_group_main(), &st1);
    T_CHECK(st1.reads + st1.writes + st1.errors == st0.reads + st0.writes + st0.errors,
            "the I/O queue saw none of them");
    tr_step("bulk read and write at odd offsets and lengths");
    const char msg[] = "hello, unaligned world";
    T_CHECK(ok(sc_file_write_bulk(f, 4093, msg, sizeof msg), "bulk write") == sizeof msg, "len");
    char got[sizeof msg];
    T_CHECK(ok(sc_file_read_bulk(f, 4093, got, sizeof got), "bulk read") == sizeof got, "len");
    T_CHECK(memcmp(got, msg, sizeof msg) == 0, "bulk round trip");
    T_CHECK(ok(sc_file_dma_read(f, a, back, a), "read") == a, "read block 1");
    T_CHECK(memcmp(back + sizeof msg - 3, buf + sizeof msg - 3, a - sizeof msg + 3) == 0,
            "bytes around the bulk write survived the read-modify-write");
    tr_step("read past the end gives fewer bytes");
    T_CHECK(ok(sc_file_read_bulk(f, 4 * a - 10, got, sizeof got), "tail") == 10, "10 left");
    tr_step("truncate, allocate, stat");
    ok(sc_file_truncate(f, a), "truncate");
    T_CHECK(ok(sc_file_size(f), "size") == a, "truncated");
    ok(sc_file_allocate(f, 0, 16 * a), "allocate");
    struct sc_file_stat fst;
    ok(sc_file_stat(f, &fst), "stat");
    T_CHECK(fst.size == 16 * a && fst.blocks * 512 >= 16 * a, "allocated: size %llu blocks %llu",
            (unsigned long long)fst.size, (unsigned long long)fst.blocks);
    tr_step("close; a call on the closed file is -EBADF");
    ok(sc_file_close(f), "close");
    T_CHECK(fails(sc_file_dma_read(f, 0, back, a)) == -EBADF, "read after close");
    T_CHECK(fails(sc_file_flush(f)) == -EBADF, "flush after close");
    T_CHECK(fails(sc_file_close(f)) == -EBADF, "second close");
    tr_step("rename, list, remove, sync_dir");
    path_in(p2, sizeof p2, "b");
    ok(sc_file_rename(p, p2), "rename");
    struct sc_dir_list *l = (struct sc_dir_list *)ok(sc_file_list_directory(dir), "list");
    T_CHECK(l->count == 1 && !strcmp(l->names[0], "b"), "one file named b (%zu)", l->count);
    sc_dir_list_free(l);
    ok(sc_file_sync_dir(dir), "sync_dir");
    ok(sc_file_remove(p2), "remove");
    T_CHECK(fails(sc_file_remove(p2)) == -ENOENT, "removed twice");
    tr_step("bad input: missing path, a directory, no mode, EXCL on an existing file");
    T_CHECK(fails(sc_file_open(p, SC_FILE_READ)) == -ENOENT, "missing");
    T_CHECK(fails(sc_file_open(dir, SC_FILE_READ)) == -EISDIR, "a directory");
    T_CHECK(fails(sc_file_open(p, SC_FILE_CREATE)) == -EINVAL, "neither read nor write");
    T_CHECK(fails(sc_file_open("", SC_FILE_READ)) == -EINVAL, "empty path");
    T_CHECK(fails(sc_file_open(p, SC_FILE_READ | 0x4000)) == -EINVAL, "unknown flag");
    T_CHECK(fails(sc_file_list_directory("/nonexistent/seacore")) == -ENOENT, "list missing");
    f = (struct sc_file *)ok(sc_file_open(p, SC_FILE_WRITE | SC_FILE_CREATE), "create");
    T_CHECK(fails(sc_file_open(p, SC_FILE_WRITE | SC_FILE_CREATE | SC_FILE_EXCL)) == -EEXIST,
            "exclusive");
    T_CHECK(fails(sc_file_dma_read(f, 0, back, a)) == -EBADF, "read on a write-only file");
    ok(sc_file_close(f), "close");
    ok(sc_file_remove(p), "remove");
    tr_step("a full device: /dev/full answers writes with -ENOSPC");
    f = (struct sc_file *)ok(sc_file_open("/dev/full", SC_FILE_WRITE), "open /dev/full");
    T_CHECK(fails(sc_file_dma_write(f, 0, buf, a)) == -ENOSPC, "ENOSPC");
    ok(sc_file_close(f), "close");
    sc_dma_free(buf);
    sc_dma_free(back);
    return sc_make_ready(0);
}

static void make_dir(void)
{
    strcpy(dir, "/tmp/seacore-file-XXXXXX");
    T_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
}

START_TEST(basics)
{
    tr_reset();
    make_dir();
    T_CHECK(run_real(_i, basics_fiber) == 0, "run failed");
    rmdir(dir);
}
END_TEST

/* ---- close waits for what is in flight; groups get their own statistics ---- */

static struct sc_future inflight_fiber(void *cap)
{
    (void)cap;
    char p[128];
    path_in(p, sizeof p, "c");
    struct sc_file *f = (struct sc_file *)ok(
        sc_file_open(p, SC_FILE_READ | SC_FILE_WRITE | SC_FILE_CREATE), "open");
    char *buf = sc_dma_alloc(1 << 20);
    memset(buf, 'x', 1 << 20);
    struct sc_sched_group g;
    T_CHECK(sc_sched_group_create("bulk", 100, &g) == 0, "group");
    sc_io_stats_reset();
    struct sc_future w[8];
    for (int i = 0; i < 8; i++)
        w[i] = sc_file_dma_write(f, (uint64_t)i << 20, buf, 1 << 20);
    tr_step("close while 8 writes are in flight: it waits for them");
    struct sc_future c = sc_file_close(f);
    T_CHECK(fails(sc_file_dma_read(f, 0, buf, 4096)) == -EBADF, "no new request on a closing file");
    for (int i = 0; i < 8; i++)
        T_CHECK(ok(w[i], "write") == 1 << 20, "each write completed");
    ok(c, "close");
    struct sc_io_stats st;
    sc_io_stats(sc_sched_group_main(), &st);
    T_CHECK(st.writes == 8 && st.bytes == 8u << 20 && st.queued == 0 && st.in_flight == 0,
            "main's stats: %llu writes, %llu bytes", (unsigned long long)st.writes,
            (unsigned long long)st.bytes);
    T_CHECK(st.p50_ns > 0 && st.p50_ns <= st.p99_ns && st.p99_ns <= st.max_ns,
            "percentiles in order: %llu %llu %llu", (unsigned long long)st.p50_ns,
            (unsigned long long)st.p99_ns, (unsigned long long)st.max_ns);
    sc_io_stats(g, &st);
    T_CHECK(st.writes == 0 && st.shares == 100, "the other group did nothing");
    struct sc_sched_group bad = {.id = 99};
    T_CHECK(sc_io_stats(bad, &st) == -EINVAL, "no such group");
    sc_dma_free(buf);
    ok(sc_file_remove(p), "remove");
    sc_sched_group_destroy(g);
    return sc_make_ready(0);
}

START_TEST(close_waits)
{
    tr_reset();
    make_dir();
    T_CHECK(run_real(_i, inflight_fiber) == 0, "run failed");
    rmdir(dir);
}
END_TEST

/* ---- permission errors: a file only root may read, opened as nobody ---- */

static char secret[128];

static struct sc_future perm_fiber(void *cap)
{
    (void)cap;
    T_CHECK(sc_await(sc_file_open(secret, SC_FILE_READ), NULL) == -EACCES, "EACCES for nobody");
    T_CHECK(sc_await(sc_file_remove("/proc/version"), NULL) < 0, "cannot remove /proc/version");
    return sc_make_ready(0);
}

START_TEST(permission_denied)
{
    tr_reset();
    /* a fixed place: once we are nobody we cannot remove it, so reuse it */
    snprintf(secret, sizeof secret, "/tmp/seacore-file-perm");
    FILE *fp = fopen(secret, "w");
    T_CHECK(fp != NULL, "create");
    fclose(fp);
    T_CHECK(chmod(secret, 0600) == 0, "chmod");
    if (getuid() == 0) {
        /* Check runs each test in a child process: dropping root here is
         * local to this test */
        tr_step("drop from root to nobody");
        T_CHECK(setgid(65534) == 0 && setuid(65534) == 0, "setuid nobody");
    }
    T_CHECK(run_real(0, perm_fiber) == 0, "run failed");
}
END_TEST

/* ---- the disk model file ---- */

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    T_CHECK(fp != NULL, "fopen");
    fputs(text, fp);
    fclose(fp);
}

static struct sc_future model_main(void *a, int argc, char **argv)
{
    (void)a, (void)argc, (void)argv;
    struct sc_disk_model m;
    T_CHECK(sc_io_model(&m) == 0, "the model from the file is in use");
    T_CHECK(m.read_iops == 1000 && m.write_bw == 4000000 && m.latency_goal_ns == 2000000,
            "values: %llu %llu %llu", (unsigned long long)m.read_iops,
            (unsigned long long)m.write_bw, (unsigned long long)m.latency_goal_ns);
    return sc_make_ready(0);
}

START_TEST(model_file)
{
    tr_reset();
    make_dir();
    char p[128];
    path_in(p, sizeof p, "io.conf");
    struct sc_disk_model m;
    tr_step("a good file");
    write_text(p, "# measured\nread_iops: 1000\nwrite_iops: 900\nread_bandwidth: 5000000\n"
                  "write_bandwidth: 4000000\nlatency_goal_us: 2000\n");
    T_CHECK(sc_io_model_load(p, &m) == 0 && m.write_iops == 900, "parsed");
    struct sc_config cfg = t_config(SC_BACKEND_REAL);
    cfg.smp = 1;
    cfg.io_properties_file = p;
    T_CHECK(sc_run(&cfg, model_main, NULL, 0, NULL) == 0, "the run uses it");
    tr_step("bad files are refused with -EINVAL");
    write_text(p, "read_iops: 1000\n");
    T_CHECK(sc_io_model_load(p, &m) == -EINVAL, "missing rates");
    write_text(p, "read_iops: lots\n");
    T_CHECK(sc_io_model_load(p, &m) == -EINVAL, "not a number");
    write_text(p, "reed_iops: 1\nwrite_iops: 1\nread_bandwidth: 1\nwrite_bandwidth: 1\n");
    T_CHECK(sc_io_model_load(p, &m) == -EINVAL, "unknown key");
    write_text(p, "read_iops: 0\nwrite_iops: 1\nread_bandwidth: 1\nwrite_bandwidth: 1\n");
    T_CHECK(sc_io_model_load(p, &m) == -EINVAL, "zero rate");
    unlink(p);
    T_CHECK(sc_io_model_load(p, &m) == -ENOENT, "missing file");
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("file");
    TCase *tc = tcase_create("file");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, basics, 0, 3);
    tcase_add_loop_test(tc, close_waits, 0, 3);
    tcase_add_test(tc, model_file);
    tcase_add_test(tc, permission_denied);
    suite_add_tcase(s, tc);
    return t_main(s);
}
