/*
 * disk_impl.h — what a disk backend implements: the real one (disk/real.c:
 * kernel files through the reactor backend and the syscall thread) and the
 * simulated one (sim/disk.c). Not a public header.
 *
 * disk/file.c holds the public calls. It checks arguments and alignment,
 * sends reads and writes through the shard's I/O queue (disk/io.c: fair
 * queue + token bucket), and forwards everything else straight to the
 * backend of the run (sim world: the sim disk; real world: kernel files).
 */
#ifndef SC_DISK_IMPL_H
#define SC_DISK_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/future.h"
#include "disk/file.h"

enum sc__dreq_op { SC__DREQ_READ = 1, SC__DREQ_WRITE = 2 };

/* The first member of every backend's open file. */
struct sc__bfile {
    uint32_t alignment; /* DMA alignment: offsets, lengths, buffers */
    bool direct;        /* opened with O_DIRECT (or the sim's equivalent) */
    bool readable, writable;
};

/* The I/O queue (disk/io.c), for disk/file.c. */
struct sc__ioq;
/* This shard's queue, made on first use; NULL with *err set (-ENOMEM, a bad
 * --io-properties-file: -EINVAL, no backend: -ENOSYS). */
struct sc__ioq *sc__ioq_get(int *err);
const struct sc__disk_backend *sc__ioq_backend(struct sc__ioq *q);
/* Requests of one file in the queue or at the device; close waits for 0. */
struct sc__inflight {
    uint32_t n;
    struct sc_promise *drained; /* resolved (value 0) when n drops to 0 */
};
/* Queue a read or write in the current scheduling group's class; the future
 * gives the bytes transferred. inflight (may be NULL) counts the request
 * until it completes, before its future resolves. */
struct sc_future sc__io_submit(struct sc__ioq *q, struct sc__bfile *f, enum sc__dreq_op op,
                               uint64_t off, void *buf, size_t len, struct sc__inflight *inflight);
/* A place for disk/file.c's per-shard state (freed by its own fini hook). */
void **sc__ioq_file_state(struct sc__ioq *q);

/* One read or write, as the backend sees it. The I/O queue owns it. */
struct sc__dreq {
    uint8_t op; /* enum sc__dreq_op */
    struct sc__bfile *file;
    uint64_t off;
    void *buf;
    size_t len;
    /* the backend calls this exactly once, later (never inside submit),
     * on the shard: res = bytes transferred or -errno */
    void (*done)(struct sc__dreq *r, int64_t res);
    void *backend_data; /* free for the backend's use */
};

/* A disk model (disk/fair_queue.h's struct sc_disk_model, when it lands)
 * is how fast the device is; the sim disk has one built in. */
struct sc_disk_model;

struct sc__disk_backend {
    const char *name;
    /* value: struct sc__bfile * (the backend's file, allocated by it) */
    struct sc_future (*open)(const char *path, unsigned flags);
    /* no request of f is in flight; frees f */
    struct sc_future (*close)(struct sc__bfile *f);
    void (*submit)(struct sc__dreq *r);
    struct sc_future (*flush)(struct sc__bfile *f);
    struct sc_future (*truncate)(struct sc__bfile *f, uint64_t len);
    struct sc_future (*allocate)(struct sc__bfile *f, uint64_t off, uint64_t len);
    struct sc_future (*stat)(struct sc__bfile *f, struct sc_file_stat *st);
    struct sc_future (*remove)(const char *path);
    struct sc_future (*rename)(const char *from, const char *to);
    struct sc_future (*sync_dir)(const char *dir);
    /* value: struct sc_dir_list * */
    struct sc_future (*list)(const char *dir);
    /* the model the I/O queue should assume when no --io-properties-file
     * is given (fills *m, returns true), or false: no model (no token
     * bucket, only a cap on requests in flight) */
    bool (*default_model)(struct sc_disk_model *m);
};

extern const struct sc__disk_backend sc__real_disk; /* disk/real.c */
extern const struct sc__disk_backend sc__sim_disk;  /* sim/disk.c */

#endif
