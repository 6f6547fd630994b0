/*
 * test_stream.c — the buffered streams of core/stream.h over in-memory
 * sources and sinks (tests/core/stream_fake.h): short reads, one byte at a
 * time, answers that wait, errors, end of stream in the middle of a line;
 * batching, the spare buffer, uncopied big writes, sticky errors, close.
 * Every check runs in a fiber, in both worlds.
 */
#include <stdio.h>
#include <string.h>

#include "core/seacore.h"
#include "core/stream.h"
#include "tests/core/stream_fake.h"
#include "tests/harness.h"

static int backend_i;
#define WORLD t_backends[backend_i]

/* The value of f, or its (negative) error. */
static intptr_t aw(struct sc_future f)
{
    intptr_t v = 0;
    int err = sc_await(f, &v);
    return err ? (intptr_t)err : v;
}

static sc_thread_fn test_body;

static struct sc_future fiber_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_thread_spawn(test_body, NULL, 0, NULL);
}

static void run_fiber(sc_thread_fn body)
{
    test_body = body;
    T_CHECK(t_run(WORLD, fiber_main, NULL) == 0, "the run failed");
}

/* The buffered bytes as a string (for messages and comparisons). */
static const char *peek(struct sc_istream *is, size_t n)
{
    static char buf[256];
    size_t have;
    const char *p = sc_istream_data(is, &have);
    if (n > have)
        n = have;
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* ---- input ---------------------------------------------------------------- */

/* Lines of many lengths, each "L<i>:" followed by filler, then '\n'. */
static size_t make_lines(char *out, size_t cap, int nlines)
{
    size_t n = 0;
    for (int i = 0; i < nlines; i++) {
        int len = snprintf(out + n, cap - n, "L%d:", i);
        n += (size_t)len;
        for (int k = 0; k < (i * 7) % 41; k++)
            out[n++] = (char)('a' + (i + k) % 26);
        out[n++] = '\n';
    }
    return n;
}

static struct sc_future read_until_lines(void *cap)
{
    (void)cap;
    static char text[8192];
    size_t len = make_lines(text, sizeof text, 120);
    static const size_t chunks[] = {1, 2, 7, 64, 0};
    static const unsigned waits[] = {0, 1, 3};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
        for (size_t w = 0; w < sizeof waits / sizeof waits[0]; w++) {
            struct fake_src src = {
                .data = text, .len = len, .chunk = chunks[c], .wait_every = waits[w]};
            struct sc_istream is;
            T_CHECK(sc_istream_init(&is, &fake_src_ops, &src, 64) == 0, "init");
            tr_step("chunk %zu, every %u-th read waits, buffer 64", chunks[c], waits[w]);
            size_t pos = 0;
            int line = 0;
            for (;;) {
                intptr_t n = aw(sc_istream_read_until(&is, '\n', 0));
                if (n == 0)
                    break;
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t want = (size_t)(nl - (text + pos)) + 1;
                T_CHECK(n == (intptr_t)want, "line %d: read_until gave %ld, expected %zu", line,
                        (long)n, want);
                size_t have;
                const char *p = sc_istream_data(&is, &have);
                T_CHECK(have >= want && memcmp(p, text + pos, want) == 0,
                        "line %d: bytes differ: \"%s\"", line, peek(&is, want));
                sc_istream_consume(&is, want);
                pos += want;
                line++;
            }
            T_CHECK(pos == len && line == 120, "read %zu of %zu bytes, %d lines", pos, len, line);
            T_CHECK(sc_istream_eof(&is), "eof after the last line");
            T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == 0, "still 0 at eof");
            T_CHECK(aw(sc_istream_read(&is)) == 0, "read: 0 at eof");
            sc_istream_close(&is);
            T_CHECK(src.closes == 1, "the source was closed once (%u)", src.closes);
        }
    return sc_make_ready(0);
}

START_TEST(istream_read_until_lines)
{
    tr_reset();
    backend_i = _i;
    run_fiber(read_until_lines);
}
END_TEST

static struct sc_future eof_mid_line(void *cap)
{
    (void)cap;
    static const char text[] = "first\nsecond\npartial";
    for (unsigned w = 0; w < 2; w++) {
        struct fake_src src = {.data = text, .len = strlen(text), .chunk = 1, .wait_every = w};
        struct sc_istream is;
        sc_istream_init(&is, &fake_src_ops, &src, 0);
        tr_step("\"first\\nsecond\\npartial\", one byte at a time, wait %u", w);
        T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == 6, "first");
        sc_istream_consume(&is, 6);
        T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == 7, "second");
        sc_istream_consume(&is, 7);
        T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == SC_EEOF, "eof inside a line: SC_EEOF");
        T_CHECK(!strcmp(peek(&is, 100), "partial"), "the partial line stays: \"%s\"",
                peek(&is, 100));
        T_CHECK(!sc_istream_eof(&is), "not eof while bytes are buffered");
        T_CHECK(aw(sc_istream_read(&is)) == 7, "read gives what is buffered");
        sc_istream_consume(&is, 7);
        T_CHECK(sc_istream_eof(&is), "eof once consumed");
        T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == 0, "then 0");
        sc_istream_close(&is);
    }
    return sc_make_ready(0);
}

START_TEST(istream_eof_in_the_middle_of_a_line)
{
    tr_reset();
    backend_i = _i;
    run_fiber(eof_mid_line);
}
END_TEST

static struct sc_future until_limits(void *cap)
{
    (void)cap;
    static char text[200];
    memset(text, 'x', 40);
    text[40] = '\n';
    strcpy(text + 41, "abcdefg\nabc\n");
    struct fake_src src = {.data = text, .len = strlen(text), .chunk = 5, .wait_every = 2};
    struct sc_istream is;
    sc_istream_init(&is, &fake_src_ops, &src, 32);
    tr_step("a 41-byte line through a 32-byte buffer");
    T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == -EMSGSIZE, "longer than the buffer");
    size_t have;
    sc_istream_data(&is, &have);
    T_CHECK(have == 32, "nothing consumed, the buffer is full (%zu)", have);
    sc_istream_consume(&is, have); /* the caller skips the long line */
    T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == 9, "its tail: 8 x and the newline");
    sc_istream_consume(&is, 9);
    tr_step("max 5 on \"abcdefg\\n\", then max 4 on \"abc\\n\"");
    T_CHECK(aw(sc_istream_read_until(&is, '\n', 5)) == -EMSGSIZE, "no newline within 5 bytes");
    T_CHECK(aw(sc_istream_read_until(&is, '\n', 8)) == 8, "within 8: found");
    sc_istream_consume(&is, 8);
    T_CHECK(aw(sc_istream_read_until(&is, '\n', 4)) == 4, "a line of exactly max bytes");
    sc_istream_consume(&is, 4);
    T_CHECK(aw(sc_istream_read_until(&is, '\n', 4)) == 0, "eof");
    sc_istream_close(&is);
    return sc_make_ready(0);
}

START_TEST(istream_read_until_limits)
{
    tr_reset();
    backend_i = _i;
    run_fiber(until_limits);
}
END_TEST

/* Lines that straddle the end of a small buffer: it must move its bytes. */
static struct sc_future until_compacts(void *cap)
{
    (void)cap;
    static char text[1000];
    size_t len = 0;
    for (int i = 0; i < 60; i++)
        len += (size_t)sprintf(text + len, "%09d\n", i * 7919 % 1000000000);
    static const size_t chunks[] = {1, 3, 16};
    for (size_t c = 0; c < 3; c++) {
        struct fake_src src = {.data = text, .len = len, .chunk = chunks[c], .wait_every = 2};
        struct sc_istream is;
        sc_istream_init(&is, &fake_src_ops, &src, 16);
        tr_step("10-byte lines through a 16-byte buffer, chunk %zu", chunks[c]);
        for (int i = 0; i < 60; i++) {
            T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == 10, "line %d", i);
            T_CHECK(!memcmp(peek(&is, 10), text + 10 * i, 10), "line %d: \"%s\"", i, peek(&is, 10));
            sc_istream_consume(&is, 10);
        }
        T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == 0, "eof");
        T_CHECK(is.bytes_read == len, "every byte read once (%llu of %zu)",
                (unsigned long long)is.bytes_read, len);
        sc_istream_close(&is);
    }
    return sc_make_ready(0);
}

START_TEST(istream_read_until_moves_the_buffer)
{
    tr_reset();
    backend_i = _i;
    run_fiber(until_compacts);
}
END_TEST

static struct sc_future exactly_and_skip(void *cap)
{
    (void)cap;
    static char text[10000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)(i % 251);
    struct fake_src src = {.data = text, .len = sizeof text, .chunk = 100, .wait_every = 3};
    struct sc_istream is;
    sc_istream_init(&is, &fake_src_ops, &src, 64);
    tr_step("read_exactly through a 64-byte buffer over 100-byte chunks");
    T_CHECK(aw(sc_istream_read_exactly(&is, 65)) == -EMSGSIZE, "65 > the buffer");
    T_CHECK(aw(sc_istream_read_exactly(&is, 64)) == 64, "64");
    sc_istream_consume(&is, 10);
    T_CHECK(aw(sc_istream_read_exactly(&is, 64)) == 64, "64 from offset 10 (a move)");
    size_t have;
    const char *p = sc_istream_data(&is, &have);
    T_CHECK(p[0] == (char)10 && p[63] == (char)73, "the right bytes");
    sc_istream_consume(&is, 54);
    tr_step("skip 5000 from offset 64");
    T_CHECK(aw(sc_istream_skip(&is, 5000)) == 5000, "skipped 5000");
    T_CHECK(aw(sc_istream_read_exactly(&is, 1)) == 1, "one more");
    p = sc_istream_data(&is, &have);
    T_CHECK(p[0] == (char)(5064 % 251), "the byte at 5064");
    T_CHECK(aw(sc_istream_skip(&is, 1000000)) == 10000 - 5064, "skip past the end: what was left");
    T_CHECK(sc_istream_eof(&is), "eof");
    T_CHECK(aw(sc_istream_read_exactly(&is, 5)) == 0, "read_exactly at eof: 0");
    T_CHECK(aw(sc_istream_skip(&is, 0)) == 0, "skip 0");
    sc_istream_close(&is);

    struct fake_src src2 = {.data = "abc", .len = 3, .chunk = 1};
    sc_istream_init(&is, &fake_src_ops, &src2, 16);
    T_CHECK(aw(sc_istream_read_exactly(&is, 5)) == 3, "short at eof: what is left");
    sc_istream_close(&is);
    return sc_make_ready(0);
}

START_TEST(istream_read_exactly_and_skip)
{
    tr_reset();
    backend_i = _i;
    run_fiber(exactly_and_skip);
}
END_TEST

static struct sc_future source_errors(void *cap)
{
    (void)cap;
    static const char text[] = "hello\nworld\nmore\n";
    for (unsigned w = 0; w < 2; w++) {
        struct fake_src src = {.data = text,
                               .len = strlen(text),
                               .chunk = 4,
                               .wait_every = w,
                               .err_at = 10,
                               .err = -ECONNRESET};
        struct sc_istream is;
        sc_istream_init(&is, &fake_src_ops, &src, 0);
        tr_step("the source fails after 10 bytes (wait %u)", w);
        T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == 6, "hello");
        sc_istream_consume(&is, 6);
        T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == -ECONNRESET, "the error, mid-line");
        unsigned reads = src.reads;
        T_CHECK(aw(sc_istream_read(&is)) == 4, "the bytes before the error still come first");
        sc_istream_consume(&is, 4);
        T_CHECK(aw(sc_istream_read(&is)) == -ECONNRESET, "then the error again (sticky)");
        T_CHECK(aw(sc_istream_skip(&is, 3)) == -ECONNRESET, "skip too");
        T_CHECK(src.reads == reads, "a sticky error does not ask the source again");
        sc_istream_close(&is);
    }
    return sc_make_ready(0);
}

START_TEST(istream_errors_are_sticky)
{
    tr_reset();
    backend_i = _i;
    run_fiber(source_errors);
}
END_TEST

static struct sc_future busy_and_close(void *cap)
{
    (void)cap;
    struct fake_src src = {.data = "abc\n", .len = 4, .wait_every = 1};
    struct sc_istream is;
    T_CHECK(sc_istream_init(NULL, &fake_src_ops, &src, 0) == -EINVAL, "no stream");
    T_CHECK(sc_istream_init(&is, NULL, &src, 0) == -EINVAL, "no ops");
    static const struct sc_source_ops no_read = {NULL, NULL};
    T_CHECK(sc_istream_init(&is, &no_read, &src, 0) == -EINVAL, "no read");
    T_CHECK(aw(sc_istream_read(&is)) == -EBADF, "read of a stream that is not set up");
    sc_istream_init(&is, &fake_src_ops, &src, 0);
    struct sc_future f1 = sc_istream_read(&is);
    T_CHECK(!sc_future_available(f1), "the source waits");
    T_CHECK(aw(sc_istream_read_until(&is, '\n', 0)) == -EBUSY, "a second read: -EBUSY");
    sc_istream_consume(&is, 1); /* refused with a log line */
    sc_istream_close(&is);
    T_CHECK(aw(f1) == -ECONNABORTED, "closed under the read: -ECONNABORTED");
    T_CHECK(src.closes == 1, "the source closed once it answered");
    T_CHECK(aw(sc_istream_read(&is)) == -EBADF, "read after close");
    sc_istream_close(&is); /* twice: nothing */
    T_CHECK(src.closes == 1, "closed once");
    return sc_make_ready(0);
}

START_TEST(istream_busy_and_close)
{
    tr_reset();
    backend_i = _i;
    run_fiber(busy_and_close);
}
END_TEST

/* ---- output ----------------------------------------------------------------- */

static struct sc_future small_writes(void *cap)
{
    (void)cap;
    struct fake_sink k = {0};
    struct sc_ostream os;
    T_CHECK(sc_ostream_init(&os, &fake_sink_ops, &k, 16) == 0, "init");
    tr_step("five 3-byte writes into a 16-byte batch");
    for (int i = 0; i < 5; i++) {
        struct sc_future f = sc_ostream_write(&os, "abc", 3);
        T_CHECK(sc_future_available(f) && aw(f) == 0, "write %d: ready", i);
    }
    T_CHECK(k.writes == 0 && sc_ostream_buffered(&os) == 15, "all batched, no sink call");
    T_CHECK(aw(sc_ostream_write_str(&os, "de")) == 0, "one more byte fills it");
    T_CHECK(k.writes == 1 && k.sizes[0] == 16, "the full batch went (%u writes)", k.writes);
    T_CHECK(sc_ostream_buffered(&os) == 1, "the rest starts the next batch");
    T_CHECK(aw(sc_ostream_flush(&os)) == 0, "flush");
    T_CHECK(k.writes == 2 && k.sizes[1] == 1, "flush sent the last byte");
    T_CHECK(aw(sc_ostream_flush(&os)) == 0 && k.writes == 2, "an empty flush costs nothing");
    T_CHECK(k.len == 17 && !memcmp(k.got, "abcabcabcabcabcde", 17), "bytes in order");
    T_CHECK(aw(sc_ostream_write(&os, NULL, 3)) == -EINVAL, "NULL bytes");
    T_CHECK(aw(sc_ostream_write(&os, NULL, 0)) == 0, "nothing");
    T_CHECK(aw(sc_ostream_write_str(&os, NULL)) == -EINVAL, "NULL string");
    T_CHECK(aw(sc_ostream_close(&os)) == 0, "close");
    T_CHECK(k.closes == 1, "the sink was closed");
    T_CHECK(aw(sc_ostream_write(&os, "x", 1)) == -EPIPE, "write after close");
    T_CHECK(aw(sc_ostream_flush(&os)) == -EPIPE, "flush after close");
    T_CHECK(aw(sc_ostream_close(&os)) == -EPIPE, "close twice");
    fake_sink_free(&k);
    return sc_make_ready(0);
}

START_TEST(ostream_batches_small_writes)
{
    tr_reset();
    backend_i = _i;
    run_fiber(small_writes);
}
END_TEST

/* A sink that waits on every write: the app fills the spare buffer meanwhile. */
static struct sc_future spare_buffer(void *cap)
{
    (void)cap;
    struct fake_sink k = {.wait_every = 1};
    struct sc_ostream os;
    sc_ostream_init(&os, &fake_sink_ops, &k, 8);
    char expect[64];
    size_t elen = 0;
    int ready = 0, waited = 0;
    for (int i = 0; i < 12; i++) {
        char b[3] = {(char)('a' + i), (char)('A' + i), (char)('0' + i % 10)};
        memcpy(expect + elen, b, 3);
        elen += 3;
        struct sc_future f = sc_ostream_write(&os, b, 3);
        bool now = sc_future_available(f);
        b[0] = b[1] = b[2] = '#'; /* the stream copied them, or holds its own copy */
        if (now)
            ready++;
        else
            waited++;
        tr_step("write %d: %s", i, now ? "ready" : "waits");
        if (i == 2)
            T_CHECK(now && k.writes == 1 && os.busy, "the first full batch is with the sink and "
                                                     "the write did not wait");
        if (i == 4)
            T_CHECK(now, "room in the second buffer: ready");
        if (i == 5)
            T_CHECK(!now, "both buffers in use: the write waits");
        T_CHECK(aw(f) == 0, "write %d", i);
    }
    T_CHECK(aw(sc_ostream_close(&os)) == 0, "close");
    T_CHECK(k.len == elen && !memcmp(k.got, expect, elen), "the bytes, in order (%zu of %zu)",
            k.len, elen);
    T_CHECK(k.overlap == 0, "the sink never had two writes at once");
    T_CHECK(ready >= 5 && waited >= 2, "%d writes ready, %d waited", ready, waited);
    fake_sink_free(&k);
    return sc_make_ready(0);
}

START_TEST(ostream_spare_buffer)
{
    tr_reset();
    backend_i = _i;
    run_fiber(spare_buffer);
}
END_TEST

static struct sc_future big_writes(void *cap)
{
    (void)cap;
    static char big[100];
    for (int i = 0; i < 100; i++)
        big[i] = (char)('A' + i % 26);
    for (unsigned w = 0; w < 2; w++) {
        struct fake_sink k = {.wait_every = w};
        struct sc_ostream os;
        sc_ostream_init(&os, &fake_sink_ops, &k, 16);
        tr_step("\"xy\", then 100 bytes through a 16-byte batch (wait %u)", w);
        T_CHECK(aw(sc_ostream_write(&os, "xy", 2)) == 0, "xy");
        T_CHECK(aw(sc_ostream_write(&os, big, 100)) == 0, "big");
        T_CHECK(k.writes == 2 && k.sizes[0] == 2 && k.sizes[1] == 100, "batch, then big");
        T_CHECK(k.ptrs[1] == big, "the big write went uncopied");
        T_CHECK(aw(sc_ostream_write(&os, big, 16)) == 0, "exactly a buffer: uncopied too");
        T_CHECK(k.writes == 3 && k.ptrs[2] == big, "straight to the sink");
        T_CHECK(aw(sc_ostream_close(&os)) == 0, "close");
        T_CHECK(k.len == 118 && !memcmp(k.got, "xy", 2) && !memcmp(k.got + 2, big, 100) &&
                    !memcmp(k.got + 102, big, 16),
                "in order");
        fake_sink_free(&k);
    }
    return sc_make_ready(0);
}

START_TEST(ostream_big_writes_uncopied)
{
    tr_reset();
    backend_i = _i;
    run_fiber(big_writes);
}
END_TEST

static struct sc_future sink_errors(void *cap)
{
    (void)cap;
    for (unsigned w = 0; w < 2; w++) {
        struct fake_sink k = {.wait_every = w, .fail_at = 2, .err = -ECONNRESET};
        struct sc_ostream os;
        sc_ostream_init(&os, &fake_sink_ops, &k, 4);
        tr_step("the sink's second write fails (wait %u)", w);
        T_CHECK(aw(sc_ostream_write(&os, "abcd", 4)) == 0, "first: fine");
        intptr_t r = aw(sc_ostream_write(&os, "efgh", 4));
        if (r == 0) /* the sink's answer may come after the write's */
            r = aw(sc_ostream_flush(&os));
        T_CHECK(r == -ECONNRESET, "the sink's error (%ld)", (long)r);
        T_CHECK(aw(sc_ostream_write(&os, "i", 1)) == -ECONNRESET, "sticky: write");
        T_CHECK(aw(sc_ostream_flush(&os)) == -ECONNRESET, "sticky: flush");
        T_CHECK(aw(sc_ostream_close(&os)) == -ECONNRESET, "close reports it");
        T_CHECK(k.closes == 1, "the sink is closed all the same");
        T_CHECK(aw(sc_ostream_write(&os, "i", 1)) == -EPIPE, "then -EPIPE");
        fake_sink_free(&k);
    }
    return sc_make_ready(0);
}

START_TEST(ostream_errors_are_sticky)
{
    tr_reset();
    backend_i = _i;
    run_fiber(sink_errors);
}
END_TEST

static struct sc_future busy_writes(void *cap)
{
    (void)cap;
    struct fake_sink k = {.wait_every = 1};
    struct sc_ostream os;
    T_CHECK(sc_ostream_init(&os, NULL, &k, 0) == -EINVAL, "no ops");
    T_CHECK(aw(sc_ostream_write(&os, "x", 1)) == -EBADF, "a stream that is not set up");
    T_CHECK(aw(sc_ostream_close(&os)) == -EBADF, "close of it");
    sc_ostream_init(&os, &fake_sink_ops, &k, 4);
    static char big[10] = "0123456789";
    struct sc_future f = sc_ostream_write(&os, big, 10);
    T_CHECK(!sc_future_available(f), "a big write waits for the sink");
    T_CHECK(aw(sc_ostream_write(&os, "x", 1)) == -EBUSY, "a second write: -EBUSY");
    T_CHECK(aw(sc_ostream_flush(&os)) == -EBUSY, "flush: -EBUSY");
    T_CHECK(aw(sc_ostream_close(&os)) == -EBUSY, "close: -EBUSY");
    T_CHECK(aw(f) == 0, "the big write");
    T_CHECK(aw(sc_ostream_close(&os)) == 0, "close");
    T_CHECK(k.len == 10 && !memcmp(k.got, big, 10), "sent");
    fake_sink_free(&k);
    return sc_make_ready(0);
}

START_TEST(ostream_one_write_at_a_time)
{
    tr_reset();
    backend_i = _i;
    run_fiber(busy_writes);
}
END_TEST

/* ---- both, at random: write random pieces, read them back as lines ---- */

static uint64_t rnd_state;
static uint64_t rnd(uint64_t bound)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return bound ? rnd_state % bound : 0;
}

static struct sc_future random_round_trip(void *cap)
{
    (void)cap;
    static char text[40000], piece[200];
    for (int round = 0; round < 20; round++) {
        rnd_state = 0x9e3779b97f4a7c15ull + (uint64_t)round;
        size_t bufsize = 8 + rnd(120);
        struct fake_sink k = {.wait_every = (unsigned)rnd(4)};
        struct sc_ostream os;
        sc_ostream_init(&os, &fake_sink_ops, &k, bufsize);
        size_t len = 0;
        while (len < sizeof text - sizeof piece) {
            size_t n = rnd(3 * bufsize);
            for (size_t i = 0; i < n; i++)
                piece[i % sizeof piece] = rnd(9) == 0 ? '\n' : (char)('a' + rnd(26));
            if (n > sizeof piece)
                n = sizeof piece;
            memcpy(text + len, piece, n);
            len += n;
            T_CHECK(aw(sc_ostream_write(&os, piece, n)) == 0, "write %zu", n);
            if (rnd(10) == 0)
                T_CHECK(aw(sc_ostream_flush(&os)) == 0, "flush");
        }
        T_CHECK(aw(sc_ostream_close(&os)) == 0, "close");
        tr_step("round %d: buffer %zu, %zu bytes in %u sink writes", round, bufsize, len, k.writes);
        T_CHECK(k.len == len && !memcmp(k.got, text, len), "round %d: the sink got other bytes",
                round);

        struct fake_src src = {
            .data = k.got, .len = k.len, .chunk = rnd(50), .wait_every = (unsigned)rnd(4)};
        struct sc_istream is;
        sc_istream_init(&is, &fake_src_ops, &src, 256);
        size_t pos = 0;
        while (pos < len) {
            unsigned op = (unsigned)rnd(3);
            if (op == 0) { /* a line */
                intptr_t n = aw(sc_istream_read_until(&is, '\n', 0));
                const char *nl = memchr(text + pos, '\n', len - pos);
                if (!nl) {
                    T_CHECK(n == SC_EEOF, "no newline left: SC_EEOF (%ld)", (long)n);
                    op = 1;
                } else if ((size_t)(nl - text - (ptrdiff_t)pos) + 1 > 256) {
                    T_CHECK(n == -EMSGSIZE, "a line longer than the buffer (%ld)", (long)n);
                    op = 1;
                } else {
                    size_t want = (size_t)(nl - (text + pos)) + 1;
                    T_CHECK(n == (intptr_t)want, "line at %zu: %ld, expected %zu", pos, (long)n,
                            want);
                    T_CHECK(!memcmp(sc_istream_data(&is, NULL), text + pos, want), "bytes");
                    sc_istream_consume(&is, want);
                    pos += want;
                }
            }
            if (op == 1) { /* some bytes */
                size_t want = 1 + rnd(300);
                if (want > 256)
                    want = 256;
                intptr_t n = aw(sc_istream_read_exactly(&is, want));
                size_t expect = len - pos < want ? len - pos : want;
                T_CHECK(n == (intptr_t)expect, "read_exactly(%zu) at %zu: %ld", want, pos, (long)n);
                T_CHECK(!memcmp(sc_istream_data(&is, NULL), text + pos, expect), "bytes");
                sc_istream_consume(&is, expect);
                pos += expect;
            }
            if (op == 2) {
                uint64_t n = rnd(500);
                intptr_t got = aw(sc_istream_skip(&is, n));
                size_t expect = len - pos < n ? len - pos : n;
                T_CHECK(got == (intptr_t)expect, "skip(%llu) at %zu: %ld", (unsigned long long)n,
                        pos, (long)got);
                pos += expect;
            }
        }
        T_CHECK(aw(sc_istream_read(&is)) == 0 && sc_istream_eof(&is), "eof at the end");
        sc_istream_close(&is);
        fake_sink_free(&k);
    }
    return sc_make_ready(0);
}

START_TEST(streams_random_round_trip)
{
    tr_reset();
    backend_i = _i;
    run_fiber(random_round_trip);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("stream");
    TCase *in = tcase_create("istream");
    tcase_set_timeout(in, 60);
    tcase_add_loop_test(in, istream_read_until_lines, 0, 2);
    tcase_add_loop_test(in, istream_eof_in_the_middle_of_a_line, 0, 2);
    tcase_add_loop_test(in, istream_read_until_limits, 0, 2);
    tcase_add_loop_test(in, istream_read_until_moves_the_buffer, 0, 2);
    tcase_add_loop_test(in, istream_read_exactly_and_skip, 0, 2);
    tcase_add_loop_test(in, istream_errors_are_sticky, 0, 2);
    tcase_add_loop_test(in, istream_busy_and_close, 0, 2);
    suite_add_tcase(s, in);
    TCase *out = tcase_create("ostream");
    tcase_set_timeout(out, 60);
    tcase_add_loop_test(out, ostream_batches_small_writes, 0, 2);
    tcase_add_loop_test(out, ostream_spare_buffer, 0, 2);
    tcase_add_loop_test(out, ostream_big_writes_uncopied, 0, 2);
    tcase_add_loop_test(out, ostream_errors_are_sticky, 0, 2);
    tcase_add_loop_test(out, ostream_one_write_at_a_time, 0, 2);
    tcase_add_loop_test(out, streams_random_round_trip, 0, 2);
    suite_add_tcase(s, out);
    return s;
}

int main(void)
{
    return t_main(suite());
}
