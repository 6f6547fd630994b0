/*
 * test_file_stream.c — files as streams: write 5 MiB through the output
 * stream in odd-sized pieces (write-behind), read it back through the input
 * stream (read-ahead) from odd offsets, lines with read_until, and the
 * exact length after close. Real world (ext4 under /tmp), every reactor
 * backend.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/memory.h"
#include "core/thread.h"
#include "disk/file.h"
#include "disk/file_stream.h"
#include "tests/harness.h"

static const enum sc_reactor_backend backends[] = {SC_REACTOR_LINUX_AIO, SC_REACTOR_EPOLL,
                                                   SC_REACTOR_IO_URING};
static char dir[64];
#define TOTAL (5u * 1024u * 1024u + 777u)

static intptr_t ok(struct sc_future f, const char *what)
{
    intptr_t v = 0;
    int rc = sc_await(f, &v);
    T_CHECK(rc == 0, "%s failed: %s", what, sc_strerror(rc));
    return v;
}

static char byte_at(uint64_t i)
{
    return (char)((i * 2654435761u) >> 13);
}

static struct sc_future fiber(void *cap)
{
    (void)cap;
    char p[128];
    snprintf(p, sizeof p, "%s/s", dir);
    struct sc_file *f = (struct sc_file *)ok(
        sc_file_open(p, SC_FILE_READ | SC_FILE_WRITE | SC_FILE_CREATE | SC_FILE_TRUNCATE), "open");
    struct sc_ostream os;
    struct sc_file_output_opts oo = {.block_size = 64 * 1024, .write_behind = 3};
    T_CHECK(sc_file_output_stream(f, &oo, &os) == 0, "output stream");
    tr_step("write %u bytes in pieces of 1..4999 bytes", TOTAL);
    char piece[5000];
    uint64_t done = 0;
    unsigned k = 1;
    while (done < TOTAL) {
        size_t n = 1 + (k++ * 7919u) % 4999u;
        if (n > TOTAL - done)
            n = TOTAL - done;
        for (size_t i = 0; i < n; i++)
            piece[i] = byte_at(done + i);
        ok(sc_ostream_write(&os, piece, n), "write");
        done += n;
    }
    ok(sc_ostream_close(&os), "close the output stream");
    T_CHECK(ok(sc_file_size(f), "size") == TOTAL, "the file is exactly as long as written");
    tr_step("read it all back through the input stream");
    struct sc_istream is;
    T_CHECK(sc_file_input_stream(f, NULL, &is) == 0, "input stream");
    uint64_t pos = 0;
    for (;;) {
        intptr_t n = ok(sc_istream_read(&is), "read");
        if (n == 0)
            break;
        size_t len;
        const char *d = sc_istream_data(&is, &len);
        for (size_t i = 0; i < len; i++)
            T_CHECK(d[i] == byte_at(pos + i), "byte %llu differs", (unsigned long long)(pos + i));
        pos += len;
        sc_istream_consume(&is, len);
    }
    T_CHECK(pos == TOTAL, "read %llu bytes", (unsigned long long)pos);
    sc_istream_close(&is);
    tr_step("a window at an odd offset, with read-ahead 8");
    struct sc_file_input_opts io = {.offset = 123457, .length = 300001, .read_ahead = 8,
                                    .block_size = 16384};
    T_CHECK(sc_file_input_stream(f, &io, &is) == 0, "input stream");
    pos = 0;
    for (;;) {
        intptr_t n = ok(sc_istream_read(&is), "read");
        if (n == 0)
            break;
        size_t len;
        const char *d = sc_istream_data(&is, &len);
        for (size_t i = 0; i < len; i++)
            T_CHECK(d[i] == byte_at(io.offset + pos + i), "window byte %llu differs",
                    (unsigned long long)(pos + i));
        pos += len;
        sc_istream_consume(&is, len);
    }
    T_CHECK(pos == io.length, "window of %llu bytes", (unsigned long long)pos);
    sc_istream_close(&is);
    tr_step("close the input stream early, with reads in flight");
    T_CHECK(sc_file_input_stream(f, NULL, &is) == 0, "input stream");
    ok(sc_istream_read(&is), "one read");
    sc_istream_close(&is);
    tr_step("lines through read_until");
    ok(sc_file_truncate(f, 0), "truncate");
    T_CHECK(sc_file_output_stream(f, NULL, &os) == 0, "output stream");
    for (int i = 0; i < 1000; i++) {
        char line[32];
        snprintf(line, sizeof line, "line %d\n", i);
        ok(sc_ostream_write_str(&os, line), "write line");
    }
    ok(sc_ostream_close(&os), "close");
    T_CHECK(sc_file_input_stream(f, NULL, &is) == 0, "input stream");
    for (int i = 0; i < 1000; i++) {
        intptr_t n = ok(sc_istream_read_until(&is, '\n', 64), "read_until");
        char want[32];
        int wl = snprintf(want, sizeof want, "line %d\n", i);
        size_t len;
        const char *d = sc_istream_data(&is, &len);
        T_CHECK(n == wl && memcmp(d, want, (size_t)wl) == 0, "line %d", i);
        sc_istream_consume(&is, (size_t)n);
    }
    T_CHECK(ok(sc_istream_read(&is), "eof") == 0, "end of file after the last line");
    sc_istream_close(&is);
    tr_step("bad options");
    struct sc_file_output_opts bad = {.block_size = 1000};
    T_CHECK(sc_file_output_stream(f, &bad, &os) == -EINVAL, "unaligned block");
    bad = (struct sc_file_output_opts){.offset = 12};
    T_CHECK(sc_file_output_stream(f, &bad, &os) == -EINVAL, "unaligned offset");
    ok(sc_file_close(f), "close");
    ok(sc_file_remove(p), "remove");
    return sc_make_ready(0);
}

static struct sc_future run_main(void *a, int argc, char **argv)
{
    (void)a, (void)argc, (void)argv;
    return sc_thread_spawn(fiber, NULL, 0, NULL);
}

START_TEST(round_trip)
{
    tr_reset();
    strcpy(dir, "/tmp/seacore-fstream-XXXXXX");
    T_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    struct sc_config cfg = t_config(SC_BACKEND_REAL);
    cfg.smp = 1;
    cfg.reactor_backend = backends[_i];
    T_CHECK(sc_run(&cfg, run_main, NULL, 0, NULL) == 0, "run failed");
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("file_stream");
    TCase *tc = tcase_create("file_stream");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, round_trip, 0, 3);
    suite_add_tcase(s, tc);
    return t_main(s);
}
