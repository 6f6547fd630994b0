/*
 * grader.c — lab 09: read_until's scan-and-refill loop and the output
 * stream's batching decision (core/stream.c).
 *
 * The student writes two regions of core/stream.c:
 *
 *   1. until_run, the loop behind sc_istream_read_until(): look for the
 *      delimiter in the bytes not looked at yet, answer, fail, or make room
 *      and ask the source for more;
 *   2. the heart of sc_ostream_write(): copy a small write into the batch,
 *      hand a full batch to the sink (filling it first), or give a big
 *      write to the sink uncopied.
 *
 * The streams run over the in-memory source and sink of
 * tests/core/stream_fake.h, which can answer at once or later, one byte at
 * a time, fail, and record every call the stream makes (the pointers and
 * sizes the sink was given, whether two writes overlapped). The sink copies
 * a write's bytes only when that write finishes, so a stream that reuses a
 * buffer the sink still owns shows up as wrong bytes.
 *
 * Each check runs in a fiber (chapter 6), in both worlds.
 */
#include <stdio.h>
#include <string.h>

#include "core/seacore.h"
#include "core/stream.h"
#include "tests/core/stream_fake.h"
#include "tests/harness.h"

/* ---- running a story ---- */

static sc_thread_fn story_fn;

static struct sc_future story_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_thread_spawn(story_fn, NULL, 0, NULL);
}

static void run_story(const char *name, int w, sc_thread_fn fn)
{
    tr_reset();
    tr_step("%s, %s world", name, t_backend_names[w]);
    story_fn = fn;
    T_CHECK(t_run(t_backends[w], story_main, NULL) == 0, "the run failed");
}

/* The value of f, or its negative error. */
static intptr_t aw(struct sc_future f)
{
    intptr_t v = 0;
    int err = sc_await(f, &v);
    return err ? (intptr_t)err : v;
}

static const char *errname(intptr_t v)
{
    static char buf[48];
    if (v >= 0)
        snprintf(buf, sizeof buf, "%ld", (long)v);
    else if (v == SC_EEOF)
        return "SC_EEOF";
    else if (v == SC_ELAB_TODO)
        return "SC_ELAB_TODO (the region is still blank)";
    else
        snprintf(buf, sizeof buf, "%ld (%s)", (long)v, sc_strerror((int)v));
    return buf;
}

/* read_until, with the call and its outcome in the transcript. */
static intptr_t until(struct sc_istream *is, char delim, size_t max)
{
    intptr_t v = aw(sc_istream_read_until(is, delim, max));
    size_t have;
    sc_istream_data(is, &have);
    tr_step("read_until('%s', max %zu) -> %s; %zu bytes buffered", delim == '\n' ? "\\n" : "?", max,
            errname(v), have);
    return v;
}

/* ==== part 1: read_until ================================================ */

static struct sc_future lines_story(void *cap)
{
    (void)cap;
    static const char text[] = "GET / HTTP/1.1\nHost: x\n\nlast\n";
    static const size_t lens[] = {15, 8, 1, 5};
    static const size_t chunks[] = {0, 1, 4};
    for (int c = 0; c < 3; c++)
        for (unsigned wait = 0; wait < 2; wait++) {
            struct fake_src src = {
                .data = text, .len = strlen(text), .chunk = chunks[c], .wait_every = wait};
            struct sc_istream is;
            sc_istream_init(&is, &fake_src_ops, &src, 64);
            tr_step("source: chunks of %zu (0: all), %s", chunks[c],
                    wait ? "every read waits" : "answers at once");
            size_t pos = 0;
            for (int i = 0; i < 4; i++) {
                intptr_t n = until(&is, '\n', 0);
                T_CHECK(n == (intptr_t)lens[i], "line %d is %zu bytes with its newline; got %s", i,
                        lens[i], errname(n));
                T_CHECK(!memcmp(sc_istream_data(&is, NULL), text + pos, lens[i]),
                        "line %d: sc_istream_data() must point at the line's first byte", i);
                sc_istream_consume(&is, lens[i]);
                pos += lens[i];
            }
            intptr_t n = until(&is, '\n', 0);
            T_CHECK(n == 0, "at the end of the stream with nothing buffered: 0, not %s",
                    errname(n));
            sc_istream_close(&is);
        }
    return sc_make_ready(0);
}

START_TEST(until_finds_each_line)
{
    run_story("until_finds_each_line", _i, lines_story);
}
END_TEST

/* A source that, after the stream has looked at the first byte of a line,
 * changes that byte to the delimiter. A stream that looks only at new bytes
 * never sees it; one that scans from the start again every time does. */
struct sly_src {
    struct fake_src f;
    struct sc_istream *is;
};

static struct sc_future sly_read(void *impl, char *buf, size_t len)
{
    struct sly_src *s = impl;
    if (s->f.reads >= 1 && s->is->end > s->is->start)
        s->is->buf[s->is->start] = '\n';
    return fake_src_read(&s->f, buf, len);
}

static const struct sc_source_ops sly_ops = {sly_read, NULL};

static struct sc_future new_bytes_story(void *cap)
{
    (void)cap;
    static const char text[] = "abcdefghijklmnopqrstuvwxyz\n";
    for (unsigned wait = 0; wait < 2; wait++) {
        struct sly_src src = {
            .f = {.data = text, .len = strlen(text), .chunk = 1, .wait_every = wait}};
        struct sc_istream is;
        sc_istream_init(&is, &sly_ops, &src, 64);
        src.is = &is;
        tr_step("a 27-byte line, one byte per read (%s); after the first byte was looked at, "
                "the source plants a newline over it",
                wait ? "every read waits" : "answers at once");
        intptr_t n = until(&is, '\n', 0);
        T_CHECK(n == 27,
                "read_until must look at each byte once: after a refill, scan only the bytes the "
                "source just added (the loop's `scanned` count), not the whole buffer again; got "
                "%s (27 expected)",
                errname(n));
        T_CHECK(src.f.reads == 27, "one read per byte: %u reads", src.f.reads);
        sc_istream_close(&is);
    }
    return sc_make_ready(0);
}

START_TEST(until_scans_only_new_bytes)
{
    run_story("until_scans_only_new_bytes", _i, new_bytes_story);
}
END_TEST

static struct sc_future eof_story(void *cap)
{
    (void)cap;
    for (unsigned wait = 0; wait < 2; wait++) {
        struct fake_src src = {.data = "one\ntwo", .len = 7, .chunk = 2, .wait_every = wait};
        struct sc_istream is;
        sc_istream_init(&is, &fake_src_ops, &src, 16);
        tr_step("\"one\\ntwo\": the stream ends inside the second line");
        T_CHECK(until(&is, '\n', 0) == 4, "one");
        sc_istream_consume(&is, 4);
        intptr_t n = until(&is, '\n', 0);
        T_CHECK(n == SC_EEOF, "the stream ended inside a line: SC_EEOF, not %s", errname(n));
        size_t have;
        const char *p = sc_istream_data(&is, &have);
        T_CHECK(have == 3 && !memcmp(p, "two", 3),
                "the partial line stays buffered for the caller (%zu bytes)", have);
        sc_istream_consume(&is, 3);
        n = until(&is, '\n', 0);
        T_CHECK(n == 0, "then nothing is buffered: 0, not %s", errname(n));
        sc_istream_close(&is);
    }
    return sc_make_ready(0);
}

START_TEST(until_eof_inside_a_line)
{
    run_story("until_eof_inside_a_line", _i, eof_story);
}
END_TEST

static struct sc_future too_long_story(void *cap)
{
    (void)cap;
    static char text[64];
    memset(text, 'x', 40);
    strcpy(text + 40, "\nabcdef\n");
    struct fake_src src = {.data = text, .len = strlen(text), .chunk = 3, .wait_every = 2};
    struct sc_istream is;
    sc_istream_init(&is, &fake_src_ops, &src, 16);
    tr_step("a 41-byte line, then \"abcdef\\n\", through a 16-byte buffer");
    intptr_t n = until(&is, '\n', 0);
    T_CHECK(n == -EMSGSIZE, "a full buffer without a newline: -EMSGSIZE, not %s", errname(n));
    size_t have;
    sc_istream_data(&is, &have);
    T_CHECK(have == 16, "nothing is consumed: the buffer is full (%zu)", have);
    sc_istream_consume(&is, 16);
    T_CHECK(until(&is, '\n', 0) == -EMSGSIZE, "16 more x");
    sc_istream_consume(&is, 16);
    T_CHECK(until(&is, '\n', 0) == 9, "the line's last 8 x and its newline");
    sc_istream_consume(&is, 9);
    n = until(&is, '\n', 3);
    T_CHECK(n == -EMSGSIZE, "no newline within max = 3 bytes: -EMSGSIZE, not %s", errname(n));
    n = until(&is, '\n', 7);
    T_CHECK(n == 7, "a line of exactly max = 7 bytes is found: %s", errname(n));
    sc_istream_close(&is);
    return sc_make_ready(0);
}

START_TEST(until_too_long)
{
    run_story("until_too_long", _i, too_long_story);
}
END_TEST

static struct sc_future room_story(void *cap)
{
    (void)cap;
    static char text[400];
    size_t len = 0;
    for (int i = 0; i < 30; i++)
        len += (size_t)sprintf(text + len, "line:%04d\n", i);
    static const size_t chunks[] = {1, 7, 0};
    for (int c = 0; c < 3; c++) {
        struct fake_src src = {.data = text, .len = len, .chunk = chunks[c], .wait_every = 3};
        struct sc_istream is;
        sc_istream_init(&is, &fake_src_ops, &src, 16);
        tr_step("10-byte lines through a 16-byte buffer, chunks of %zu: after the first line "
                "the next one does not fit behind it",
                chunks[c]);
        for (int i = 0; i < 30; i++) {
            intptr_t n = until(&is, '\n', 0);
            T_CHECK(n == 10,
                    "line %d: %s; when the buffer's tail is full, move the unread bytes to the "
                    "front (rd_make_room) before asking the source for more",
                    i, errname(n));
            T_CHECK(!memcmp(sc_istream_data(&is, NULL), text + 10 * i, 10), "line %d's bytes", i);
            sc_istream_consume(&is, 10);
        }
        sc_istream_close(&is);
    }
    return sc_make_ready(0);
}

START_TEST(until_makes_room)
{
    run_story("until_makes_room", _i, room_story);
}
END_TEST

static struct sc_future until_err_story(void *cap)
{
    (void)cap;
    for (unsigned wait = 0; wait < 2; wait++) {
        struct fake_src src = {.data = "ok\nbroken line\n",
                               .len = 15,
                               .chunk = 4,
                               .wait_every = wait,
                               .err_at = 8,
                               .err = -ECONNRESET};
        struct sc_istream is;
        sc_istream_init(&is, &fake_src_ops, &src, 32);
        tr_step("the source fails after 8 bytes, inside the second line");
        T_CHECK(until(&is, '\n', 0) == 3, "ok");
        sc_istream_consume(&is, 3);
        intptr_t n = until(&is, '\n', 0);
        T_CHECK(n == -ECONNRESET, "the source's error: %s", errname(n));
        unsigned reads = src.reads;
        n = until(&is, '\n', 0);
        T_CHECK(n == -ECONNRESET && src.reads == reads,
                "the error is sticky: the source is not asked again (%s)", errname(n));
        sc_istream_close(&is);
    }
    return sc_make_ready(0);
}

START_TEST(until_source_error)
{
    run_story("until_source_error", _i, until_err_story);
}
END_TEST

/* ==== part 2: the output stream's batching ============================= */

static intptr_t wr(struct sc_ostream *os, const void *p, size_t n, bool *was_ready)
{
    struct sc_future f = sc_ostream_write(os, p, n);
    bool ready = sc_future_available(f);
    if (was_ready)
        *was_ready = ready;
    intptr_t v = aw(f);
    tr_step("write %zu bytes -> %s (%s); %zu batched", n, errname(v), ready ? "ready" : "waited",
            sc_ostream_buffered(os));
    return v;
}

static struct sc_future batch_story(void *cap)
{
    (void)cap;
    struct fake_sink k = {0};
    struct sc_ostream os;
    sc_ostream_init(&os, &fake_sink_ops, &k, 10);
    tr_step("a 10-byte batch, a sink that answers at once");
    bool ready;
    for (int i = 0; i < 3; i++) {
        T_CHECK(wr(&os, "abc", 3, &ready) == 0 && ready, "a small write is copied: ready");
        T_CHECK(k.writes == 0, "and costs no call to the sink (%u calls)", k.writes);
    }
    T_CHECK(sc_ostream_buffered(&os) == 9, "9 bytes batched");
    T_CHECK(wr(&os, "d", 1, &ready) == 0 && ready, "the 10th byte");
    T_CHECK(k.writes == 1 && k.sizes[0] == 10,
            "a batch that is full goes to the sink at once (%u calls)", k.writes);
    T_CHECK(wr(&os, "efgh", 4, &ready) == 0, "4 more");
    T_CHECK(aw(sc_ostream_flush(&os)) == 0, "flush");
    T_CHECK(k.len == 14 && !memcmp(k.got, "abcabcabcdefgh", 14), "the bytes, in order: %.*s",
            (int)k.len, k.got);
    sc_ostream_close(&os);
    fake_sink_free(&k);
    return sc_make_ready(0);
}

START_TEST(write_batches_small_writes)
{
    run_story("write_batches_small_writes", _i, batch_story);
}
END_TEST

static struct sc_future fill_story(void *cap)
{
    (void)cap;
    struct fake_sink k = {0};
    struct sc_ostream os;
    sc_ostream_init(&os, &fake_sink_ops, &k, 10);
    tr_step("writes of 7 bytes into a 10-byte batch: each one that does not fit fills the "
            "batch, which goes, and the rest starts the next");
    static const char seven[] = "0123456";
    for (int i = 0; i < 10; i++)
        T_CHECK(wr(&os, seven, 7, NULL) == 0, "write %d", i);
    T_CHECK(k.writes == 7, "70 bytes make 7 full batches (%u sink calls)", k.writes);
    for (unsigned i = 0; i < k.writes && i < 7; i++)
        T_CHECK(k.sizes[i] == 10,
                "sink call %u had %zu bytes: fill the batch to the brim before handing it over "
                "(a half-empty batch is a wasted system call)",
                i, k.sizes[i]);
    T_CHECK(sc_ostream_buffered(&os) == 0, "nothing left over");
    for (int i = 0; i < 70; i++)
        T_CHECK(k.got[i] == seven[i % 7], "byte %d", i);
    sc_ostream_close(&os);
    fake_sink_free(&k);
    return sc_make_ready(0);
}

START_TEST(write_fills_the_batch)
{
    run_story("write_fills_the_batch", _i, fill_story);
}
END_TEST

static struct sc_future big_story(void *cap)
{
    (void)cap;
    static char big[50];
    for (int i = 0; i < 50; i++)
        big[i] = (char)('A' + i % 26);
    for (unsigned wait = 0; wait < 2; wait++) {
        struct fake_sink k = {.wait_every = wait};
        struct sc_ostream os;
        sc_ostream_init(&os, &fake_sink_ops, &k, 10);
        tr_step("\"xyz\", then 50 bytes, then exactly 10, through a 10-byte batch (sink %s)",
                wait ? "waits" : "answers at once");
        T_CHECK(wr(&os, "xyz", 3, NULL) == 0, "xyz");
        T_CHECK(wr(&os, big, 50, NULL) == 0, "50 bytes");
        T_CHECK(k.writes == 2, "the batch, then the big write: 2 sink calls (%u)", k.writes);
        T_CHECK(k.sizes[0] == 3, "what was batched goes first, alone (%zu bytes)", k.sizes[0]);
        T_CHECK(k.ptrs[1] == big && k.sizes[1] == 50,
                "a write of at least the batch size goes to the sink as it is, uncopied: the sink "
                "got %p (%zu bytes), the caller's buffer is %p",
                (const void *)k.ptrs[1], k.sizes[1], (const void *)big);
        T_CHECK(wr(&os, big, 10, NULL) == 0 && k.writes == 3 && k.ptrs[2] == big,
                "exactly the batch size: uncopied too");
        T_CHECK(aw(sc_ostream_close(&os)) == 0, "close");
        T_CHECK(k.len == 63 && !memcmp(k.got, "xyz", 3) && !memcmp(k.got + 3, big, 50) &&
                    !memcmp(k.got + 53, big, 10),
                "the bytes, in order");
        fake_sink_free(&k);
    }
    return sc_make_ready(0);
}

START_TEST(big_write_goes_uncopied)
{
    run_story("big_write_goes_uncopied", _i, big_story);
}
END_TEST

static struct sc_future spare_story(void *cap)
{
    (void)cap;
    struct fake_sink k = {.wait_every = 1};
    struct sc_ostream os;
    sc_ostream_init(&os, &fake_sink_ops, &k, 8);
    tr_step("an 8-byte batch and a sink that takes a while for every write");
    char expect[128];
    size_t elen = 0;
    bool ready[16];
    for (int i = 0; i < 16; i++) {
        char b[3] = {(char)('a' + i), (char)('A' + i), (char)('0' + i % 10)};
        memcpy(expect + elen, b, 3);
        elen += 3;
        struct sc_future f = sc_ostream_write(&os, b, 3);
        ready[i] = sc_future_available(f);
        memset(b, '#', 3); /* the caller reuses its buffer at once: the stream has a copy */
        intptr_t v = aw(f);
        tr_step("write %d (3 bytes): %s, %s", i, ready[i] ? "ready" : "waited", errname(v));
        T_CHECK(v == 0, "write %d", i);
    }
    T_CHECK(ready[2] && k.writes >= 1,
            "the first full batch went to the sink and the write did not wait: the app fills "
            "the other buffer meanwhile");
    T_CHECK(!ready[5], "write 5 finds both buffers in use (one with the sink, one full): it "
                       "must wait for the sink");
    T_CHECK(aw(sc_ostream_flush(&os)) == 0, "flush");
    T_CHECK(k.overlap == 0, "the sink never had two writes at once (%u times)", k.overlap);
    T_CHECK(k.len == elen && !memcmp(k.got, expect, elen),
            "the sink got other bytes (%zu of %zu): a buffer the sink still owns was "
            "written to, or a small write kept the caller's pointer",
            k.len, elen);
    sc_ostream_close(&os);
    fake_sink_free(&k);
    return sc_make_ready(0);
}

START_TEST(spare_buffer_while_the_sink_works)
{
    run_story("spare_buffer_while_the_sink_works", _i, spare_story);
}
END_TEST

static struct sc_future sink_err_story(void *cap)
{
    (void)cap;
    struct fake_sink k = {.fail_at = 1, .err = -EPIPE};
    struct sc_ostream os;
    sc_ostream_init(&os, &fake_sink_ops, &k, 4);
    tr_step("the sink fails its first write");
    intptr_t v = wr(&os, "abcdef", 6, NULL);
    T_CHECK(v == -EPIPE, "the write that met the error fails with it: %s", errname(v));
    v = wr(&os, "g", 1, NULL);
    T_CHECK(v == -EPIPE, "so does every later one (sticky): %s", errname(v));
    T_CHECK(k.writes == 1, "without calling the sink again (%u calls)", k.writes);
    /* wait for the close: it frees the buffer when it resolves, which a
     * loaded machine may defer to a later task (the run must not end first) */
    sc_await(sc_ostream_close(&os), NULL);
    fake_sink_free(&k);
    return sc_make_ready(0);
}

START_TEST(write_errors_are_sticky)
{
    run_story("write_errors_are_sticky", _i, sink_err_story);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lab 09: read_until and the output stream's batching");
    TCase *in = tcase_create("read_until");
    tcase_set_timeout(in, 20);
    tcase_add_loop_test(in, until_finds_each_line, 0, 2);
    tcase_add_loop_test(in, until_scans_only_new_bytes, 0, 2);
    tcase_add_loop_test(in, until_eof_inside_a_line, 0, 2);
    tcase_add_loop_test(in, until_too_long, 0, 2);
    tcase_add_loop_test(in, until_makes_room, 0, 2);
    tcase_add_loop_test(in, until_source_error, 0, 2);
    suite_add_tcase(s, in);
    TCase *out = tcase_create("batching");
    tcase_set_timeout(out, 20);
    tcase_add_loop_test(out, write_batches_small_writes, 0, 2);
    tcase_add_loop_test(out, write_fills_the_batch, 0, 2);
    tcase_add_loop_test(out, big_write_goes_uncopied, 0, 2);
    tcase_add_loop_test(out, spare_buffer_while_the_sink_works, 0, 2);
    tcase_add_loop_test(out, write_errors_are_sticky, 0, 2);
    suite_add_tcase(s, out);
    return s;
}

int main(void)
{
    return t_main(suite());
}
