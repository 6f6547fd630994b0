/*
 * ch06_pipeline.c — chapter 6: a producer, a pipe, a consumer, and a
 * semaphore that limits how much work runs at once.
 *
 *   make build/bin/ch06_pipeline && build/bin/ch06_pipeline [--backend sim|real]
 *
 * The producer writes 40 "requests" (numbers) into a pipe that holds 4: when
 * the pipe is full its write waits, so it can never run more than 4 ahead of
 * the consumer (backpressure). Then it closes its end. The consumer reads
 * until the end of the stream and hands each request to a worker, which
 * needs one of 3 units of a semaphore (sc_with_semaphore): at most 3 workers
 * run at once, the others wait their turn in FIFO order. A gate counts the
 * workers; closing it at the end waits for the last one. Every 7th request
 * fails, and its unit comes back all the same.
 *
 * Note what the semaphore limits: how many workers *run*, not how many
 * *wait* — the consumer does not wait for its workers, so requests pile up
 * on the semaphore instead of in the pipe. To push back on the producer,
 * the consumer would take the unit itself (sc_sem_wait) before reading on.
 *
 * Exit status 0 if every request was served exactly once, in order, with
 * never more than 3 workers at once and never more than 4 requests buffered.
 */
#include <stdio.h>

#include "core/seacore.h"

#define REQUESTS 40
#define PIPE_CAP 4
#define WORKERS  3

static struct sc_pipe pipe_;
static struct sc_sem workers;
static struct sc_gate inflight;

static struct {
    int written, read, served, failed, running, max_running;
    size_t max_buffered;
    bool out_of_order;
} stats;

/* ---- the producer: write, and wait whenever the pipe is full ---- */

static struct sc_future wrote(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    if (sc_pipe_size(&pipe_) > stats.max_buffered)
        stats.max_buffered = sc_pipe_size(&pipe_);
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future produce(void *cap)
{
    (void)cap;
    if (stats.written == REQUESTS) {
        printf("producer: wrote %d requests, closing the pipe\n", stats.written);
        sc_pipe_close_writer(&pipe_);
        return sc_make_ready(SC_STOP);
    }
    return sc_then(sc_pipe_write(&pipe_, (uintptr_t)stats.written++), wrote, NULL, 0);
}

/* ---- a worker: holds one unit of the semaphore while it runs ---- */

static struct sc_future work_done(void *cap, intptr_t v)
{
    (void)v;
    intptr_t req = *(intptr_t *)cap;
    stats.running--;
    if (req % 7 == 6)
        return sc_make_error(-EIO); /* a failing request: its unit still comes back */
    return sc_make_ready(req);
}

static struct sc_future work(void *cap, intptr_t v)
{
    (void)v;
    intptr_t req = *(intptr_t *)cap;
    if (++stats.running > stats.max_running)
        stats.max_running = stats.running;
    /* "work": a few hundred microseconds of (virtual, in the simulator) time */
    uint64_t ns = SC_US(100 + sc_random_below(400));
    return sc_then(sc_sleep(ns), work_done, &req, sizeof req);
}

static struct sc_future served(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    if (err)
        stats.failed++;
    else
        stats.served++;
    return sc_make_ready(0);
}

/* Inside the gate: wait for a unit, work, give the unit back. */
static struct sc_future worker(void *cap, intptr_t v)
{
    (void)v;
    struct sc_future f = sc_with_semaphore(&workers, 1, work, cap, sizeof(intptr_t));
    return sc_then_wrapped(f, served, NULL, 0);
}

/* ---- the consumer: read until the end of the stream ---- */

static struct sc_future got(void *cap, intptr_t v, int err)
{
    (void)cap;
    if (err == SC_EEOF) {
        printf("consumer: end of stream after %d requests\n", stats.read);
        return sc_make_ready(SC_STOP);
    }
    if (err)
        return sc_make_error(err);
    if (v != stats.read)
        stats.out_of_order = true;
    stats.read++;
    /* Do not wait for the worker: start it and read on. The gate keeps count. */
    sc_future_discard(sc_with_gate(&inflight, worker, &v, sizeof v));
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future consume(void *cap)
{
    (void)cap;
    return sc_then_wrapped(sc_pipe_read(&pipe_), got, NULL, 0);
}

/* ---- the end: wait for the last worker, then check ---- */

static struct sc_future report(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    printf("served %d, failed %d (every 7th), at most %d workers at once, at most %zu "
           "requests buffered, units back: %ld of %d\n",
           stats.served, stats.failed, stats.max_running, stats.max_buffered,
           (long)sc_sem_available(&workers), WORKERS);
    bool ok = stats.served + stats.failed == REQUESTS && stats.failed == REQUESTS / 7 &&
              !stats.out_of_order && stats.max_running <= WORKERS &&
              stats.max_buffered <= PIPE_CAP && sc_sem_available(&workers) == WORKERS;
    printf("%s\n", ok ? "ok" : "FAILED");
    sc_pipe_destroy(&pipe_);
    return sc_make_ready(ok ? 0 : 1);
}

static struct sc_future all_read(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(sc_gate_close(&inflight), report, NULL, 0);
}

static struct sc_future app(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (sc_pipe_init(&pipe_, PIPE_CAP) != 0)
        return sc_make_error(-ENOMEM);
    sc_sem_init(&workers, WORKERS);
    sc_gate_init(&inflight);
    struct sc_future both[2] = {sc_repeat(produce, NULL, 0), sc_repeat(consume, NULL, 0)};
    return sc_then(sc_when_all_succeed(both, 2), all_read, NULL, 0);
}

int main(int argc, char **argv)
{
    return sc_app_run_opts(argc, argv, "A producer, a pipe, a consumer, a semaphore.", NULL, app,
                           NULL);
}
