/*
 * test_pipe.c — queues and pipes, in both worlds: FIFO order, backpressure,
 * direct hand-over, abort, end-of-stream, broken pipe, a streamed pipeline,
 * bad input, out of memory, the end of a run with waiters queued.
 */
#include "core/shard_impl.h"
#include "tests/core/coord_ev.h"

static int backend_i;
#define WORLD t_backends[backend_i]

static struct sc_queue q;
static struct sc_pipe pipe_;

/* ---- the queue: order, backpressure, hand-over ---- */

static struct sc_future queue_1(void)
{
    ev_reset();
    T_CHECK(sc_queue_init(&q, 2) == 0, "init");
    T_CHECK(!strcmp(ev_now(sc_queue_push(&q, 1)), "=0"), "push 1: room");
    T_CHECK(sc_queue_try_push(&q, 2) == 0, "try_push 2: room");
    T_CHECK(sc_queue_try_push(&q, 9) == -EAGAIN, "try_push into a full queue");
    ev_watch(sc_queue_push(&q, 3), "P3"); /* full: waits */
    ev_watch(sc_queue_push(&q, 4), "P4");
    T_CHECK(sc_queue_size(&q) == 2 && sc_queue_waiting_pushers(&q) == 2, "2 in, 2 waiting");
    T_CHECK(!strcmp(ev_now(sc_queue_pop(&q)), "=1"), "pop the oldest: 1");
    return sc_make_ready(0);
}

static struct sc_future queue_2(void)
{
    EV_EXPECT("P3"); /* one slot freed: the oldest waiting push went in */
    uintptr_t item = 0;
    T_CHECK(sc_queue_try_pop(&q, &item) == 0 && item == 2, "then 2");
    T_CHECK(!strcmp(ev_now(sc_queue_pop(&q)), "=3"), "then 3");
    T_CHECK(!strcmp(ev_now(sc_queue_pop(&q)), "=4"), "then 4");
    T_CHECK(sc_queue_try_pop(&q, &item) == -EAGAIN, "empty");
    ev_watch(sc_queue_pop(&q), "R1");
    ev_watch(sc_queue_pop(&q), "R2");
    T_CHECK(sc_queue_waiting_poppers(&q) == 2, "2 pops wait");
    sc_queue_push(&q, 5); /* straight to R1 */
    T_CHECK(sc_queue_size(&q) == 0, "handed over, not buffered");
    return sc_make_ready(0);
}

static struct sc_future queue_3(void)
{
    EV_EXPECT("P3 P4 R1=5");
    /* abort: the waiting pop fails, so do later ones; buffered items go */
    sc_queue_abort(&q, -EIO);
    T_CHECK(!strcmp(ev_now(sc_queue_push(&q, 1)), "!eio"), "push after abort");
    T_CHECK(!strcmp(ev_now(sc_queue_pop(&q)), "!eio"), "pop after abort");
    sc_queue_destroy(&q);
    sc_queue_init(&q, 1);
    sc_queue_push(&q, 7);
    ev_watch(sc_queue_push(&q, 8), "P8");
    sc_queue_abort(&q, 0);
    T_CHECK(sc_queue_size(&q) == 0, "aborted: buffer dropped");
    return sc_make_ready(0);
}

static struct sc_future queue_4(void)
{
    EV_EXPECT("P3 P4 R1=5 R2!eio P8!broken");
    sc_queue_destroy(&q);
    return sc_make_ready(0);
}

static struct sc_future queue_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(queue_1, queue_2, queue_3, queue_4);
}

START_TEST(queue)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, queue_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- pipes: end of stream, broken pipe ---- */

static struct sc_future pipe_1(void)
{
    ev_reset();
    T_CHECK(sc_pipe_init(&pipe_, 1) == 0, "init");
    T_CHECK(!strcmp(ev_now(sc_pipe_write(&pipe_, 10)), "=0"), "write a: room");
    ev_watch(sc_pipe_write(&pipe_, 11), "Wb"); /* full: waits */
    T_CHECK(sc_pipe_close_writer(&pipe_) == 0, "close the writer");
    T_CHECK(sc_pipe_close_writer(&pipe_) == -EALREADY, "close the writer twice");
    T_CHECK(!strcmp(ev_now(sc_pipe_write(&pipe_, 12)), "!ebadf"), "write after close");
    /* the write that waited still goes in; the reader sees everything, then EOF */
    T_CHECK(!strcmp(ev_now(sc_pipe_read(&pipe_)), "=10"), "read a");
    return sc_make_ready(0);
}

static struct sc_future pipe_2(void)
{
    EV_EXPECT("Wb");
    T_CHECK(!strcmp(ev_now(sc_pipe_read(&pipe_)), "=11"), "read b");
    T_CHECK(!strcmp(ev_now(sc_pipe_read(&pipe_)), "!eof"), "then end of stream");
    T_CHECK(!strcmp(ev_now(sc_pipe_read(&pipe_)), "!eof"), "and again");
    sc_pipe_destroy(&pipe_);
    /* a read waiting when the writer closes sees EOF */
    sc_pipe_init(&pipe_, 4);
    ev_watch(sc_pipe_read(&pipe_), "R");
    sc_pipe_close_writer(&pipe_);
    return sc_make_ready(0);
}

static struct sc_future pipe_3(void)
{
    EV_EXPECT("Wb R!eof");
    sc_pipe_destroy(&pipe_);
    /* the reader closes: waiting and later writes fail with EPIPE */
    sc_pipe_init(&pipe_, 1);
    sc_pipe_write(&pipe_, 1);
    ev_watch(sc_pipe_write(&pipe_, 2), "W2");
    T_CHECK(sc_pipe_close_reader(&pipe_) == 0, "close the reader");
    T_CHECK(sc_pipe_close_reader(&pipe_) == -EALREADY, "close the reader twice");
    T_CHECK(sc_pipe_size(&pipe_) == 0, "buffered items dropped");
    T_CHECK(!strcmp(ev_now(sc_pipe_write(&pipe_, 3)), "!epipe"), "write to a closed reader");
    T_CHECK(!strcmp(ev_now(sc_pipe_read(&pipe_)), "!ebadf"), "read after closing the reader");
    sc_pipe_destroy(&pipe_);
    /* a read waiting when its own end closes fails with EBADF */
    sc_pipe_init(&pipe_, 1);
    ev_watch(sc_pipe_read(&pipe_), "R");
    sc_pipe_close_reader(&pipe_);
    return sc_make_ready(0);
}

static struct sc_future pipe_4(void)
{
    EV_EXPECT("Wb R!eof W2!epipe R!ebadf");
    sc_pipe_destroy(&pipe_);
    return sc_make_ready(0);
}

static struct sc_future pipe_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(pipe_1, pipe_2, pipe_3, pipe_4);
}

START_TEST(pipe_ends)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, pipe_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- a stream: producer and consumer loops, backpressure, EOF ---- */

#define STREAM_ITEMS 5000
#define STREAM_CAP   8

static uintptr_t next_out, next_in;
static size_t max_size;
static int stream_bad;

static struct sc_future after_write(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    if (sc_pipe_size(&pipe_) > max_size)
        max_size = sc_pipe_size(&pipe_);
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future dawdle(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_sleep(SC_US(10));
}

static struct sc_future producer(void *cap)
{
    (void)cap;
    if (next_out == STREAM_ITEMS) {
        sc_pipe_close_writer(&pipe_);
        return sc_make_ready(SC_STOP);
    }
    /* now and then the producer dawdles, so the reader waits on an empty pipe */
    struct sc_future f = sc_pipe_write(&pipe_, next_out++);
    if (next_out % 500 == 0)
        f = sc_then(f, dawdle, NULL, 0);
    return sc_then(f, after_write, NULL, 0);
}

static struct sc_future got_item(void *cap, intptr_t v, int err)
{
    (void)cap;
    if (err == SC_EEOF)
        return sc_make_ready(SC_STOP);
    if (err || (uintptr_t)v != next_in)
        stream_bad = 1;
    next_in++;
    if (err)
        return sc_make_error(err);
    /* now and then the consumer dawdles, so the writer meets a full pipe */
    if (next_in % 700 == 0)
        return sc_then(sc_sleep(SC_US(10)), ev_continue, NULL, 0);
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future consumer(void *cap)
{
    (void)cap;
    return sc_then_wrapped(sc_pipe_read(&pipe_), got_item, NULL, 0);
}

static struct sc_future stream_check(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    tr_step("stream: %lu written, %lu read, max buffered %zu", (unsigned long)next_out,
            (unsigned long)next_in, max_size);
    T_CHECK(!stream_bad, "items out of order or lost");
    T_CHECK(next_in == STREAM_ITEMS, "read %lu items, expected %d", (unsigned long)next_in,
            STREAM_ITEMS);
    T_CHECK(max_size <= STREAM_CAP, "the pipe never holds more than its capacity");
    sc_pipe_destroy(&pipe_);
    return sc_make_ready(0);
}

static struct sc_future stream_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    next_out = next_in = 0;
    max_size = 0;
    stream_bad = 0;
    sc_pipe_init(&pipe_, STREAM_CAP);
    struct sc_future fs[2] = {sc_repeat(producer, NULL, 0), sc_repeat(consumer, NULL, 0)};
    return sc_then(sc_when_all_succeed(fs, 2), stream_check, NULL, 0);
}

START_TEST(stream)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, stream_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- bad input, out of memory ---- */

static struct sc_future bad_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    T_CHECK(sc_queue_init(&q, 0) == -EINVAL, "capacity 0");
    T_CHECK(sc_queue_init(&q, SC_QUEUE_MAX_CAPACITY + 1) == -EINVAL, "capacity too big");
    T_CHECK(sc_pipe_init(&pipe_, 0) == -EINVAL, "pipe capacity 0");
    sc_queue_destroy(&q); /* harmless on a queue whose init failed */
    sc_queue_init(&q, 1);
    sc_queue_push(&q, 1);
    sc__shard()->pool.fail_every = 1;
    T_CHECK(!strcmp(ev_now(sc_queue_push(&q, 2)), "!enomem"), "a waiting push needs a record");
    T_CHECK(sc_queue_size(&q) == 1 && sc_queue_waiting_pushers(&q) == 0, "2 did not go in");
    T_CHECK(!strcmp(ev_now(sc_queue_pop(&q)), "=1"), "a ready pop needs nothing");
    T_CHECK(!strcmp(ev_now(sc_queue_pop(&q)), "!enomem"), "a waiting pop needs a record");
    struct sc_queue q2;
    T_CHECK(sc_queue_init(&q2, 4) == -ENOMEM, "the buffer comes from the pool");
    sc__shard()->pool.fail_every = 0;
    sc_queue_destroy(&q);
    /* a big buffer (past the pool's small sizes) works the same */
    T_CHECK(sc_queue_init(&q, 100000) == 0, "a big queue");
    for (uintptr_t i = 0; i < 100000; i++)
        T_CHECK(sc_queue_try_push(&q, i) == 0, "push %lu", (unsigned long)i);
    uintptr_t item = 1;
    T_CHECK(sc_queue_try_pop(&q, &item) == 0 && item == 0, "the oldest first");
    sc_queue_destroy(&q);
    return sc_make_ready(0);
}

START_TEST(bad_input_and_oom)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, bad_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- the end of a run with pushers and poppers waiting ---- */

static struct sc_future shutdown_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    static struct sc_queue full, empty;
    sc_queue_init(&full, 1);
    sc_queue_init(&empty, 1);
    sc_queue_push(&full, 1);
    sc_future_discard(sc_queue_push(&full, 2));
    sc_future_discard(sc_queue_pop(&empty));
    sc_pipe_init(&pipe_, 2);
    sc_future_discard(sc_pipe_read(&pipe_));
    return sc_make_ready(0); /* no destroy: the buffers go with the shard */
}

START_TEST(run_ends_with_waiters)
{
    tr_reset();
    backend_i = _i;
    struct sc_config cfg = t_config(WORLD);
    struct sc_run_result res;
    T_CHECK(sc_run_ex(&cfg, shutdown_main, NULL, 0, NULL, &res) == 0, "run failed");
    T_CHECK(res.unhandled_errors == 0, "dropped waiters are not errors");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pipe");
    TCase *tc = tcase_create("pipe");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, queue, 0, 2);
    tcase_add_loop_test(tc, pipe_ends, 0, 2);
    tcase_add_loop_test(tc, stream, 0, 2);
    tcase_add_loop_test(tc, bad_input_and_oom, 0, 2);
    tcase_add_loop_test(tc, run_ends_with_waiters, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
