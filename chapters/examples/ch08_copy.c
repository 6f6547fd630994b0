/*
 * ch08_copy.c — copy a file with the DMA API (chapter 8), keeping N reads
 * in flight ahead of the writer.
 *
 * A copy one block at a time waits for the disk twice per block: once for
 * the read, once for the write. Reading ahead overlaps the two: while block
 * b is being written, blocks b+1 .. b+N-1 are already on their way from the
 * source. Here one fiber keeps a ring of N buffers; slot b % N holds block
 * b. For each block in order it waits for that block's read, writes it out,
 * and hands the slot to the read of block b + N.
 *
 * O_DIRECT wants every offset, length and buffer aligned (sc_file_alignment,
 * 4096): the buffers come from sc_dma_alloc(), blocks are 128 KiB, and the
 * last block, shorter than that, is written rounded up to the alignment and
 * the copy is cut back to the source's size with sc_file_truncate().
 *
 * With no arguments it makes its own source: a file of 3 MiB + 1234 bytes
 * (an odd size on purpose) in a fresh directory under /tmp, copies it,
 * compares the two, and removes them. `--src A --dst B` copies A to B;
 * `--ahead N` sets the reads in flight (default 4).
 *
 *   build/bin/ch08_copy --backend real
 *   build/bin/ch08_copy --backend real --src big.bin --dst copy.bin --ahead 16
 *
 * The simulator has no disk yet (it comes with the sim disk of issue 6): in
 * the simulator, the example says so and exits 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/seacore.h"
#include "disk/file.h"

#define BLOCK     (128u * 1024u)
#define MAX_AHEAD 64

static const char *src_opt, *dst_opt;
static long ahead_opt = 4;
static char tmpdir[64];

static const struct sc_app_opt opts[] = {
    {"src", SC_OPT_STRING, &src_opt, "file to copy (default: make one, copy it, compare)"},
    {"dst", SC_OPT_STRING, &dst_opt, "where to copy it (with --src)"},
    {"ahead", SC_OPT_INT, &ahead_opt, "reads in flight ahead of the writer (default 4)"},
    {0},
};

/* Wait for a future in the fiber; its value, or the error (negative). */
static int64_t wait(struct sc_future f)
{
    intptr_t v = 0;
    int rc = sc_await(f, &v);
    return rc < 0 ? rc : (int64_t)v;
}

/* The copy itself: src and dst are open; size is the source's length. */
static int copy(struct sc_file *src, struct sc_file *dst, uint64_t size, unsigned ahead)
{
    uint64_t nblocks = (size + BLOCK - 1) / BLOCK;
    char *buf[MAX_AHEAD];
    struct sc_future reads[MAX_AHEAD];
    unsigned nbuf = 0;
    int rc = 0;
    for (; nbuf < ahead; nbuf++)
        if (!(buf[nbuf] = sc_dma_alloc(BLOCK))) {
            rc = -ENOMEM;
            goto out;
        }
    /* start the first `ahead` reads */
    for (uint64_t b = 0; b < ahead && b < nblocks; b++)
        reads[b] = sc_file_dma_read(src, b * BLOCK, buf[b], BLOCK);
    uint64_t align = sc_file_alignment(dst), b = 0;
    for (; b < nblocks; b++) {
        unsigned slot = (unsigned)(b % ahead);
        int64_t got = wait(reads[slot]); /* block b has arrived */
        if (got == 0)
            got = -EIO; /* the source shrank under us */
        if (got < 0) {
            rc = (int)got;
            break;
        }
        uint64_t len = ((uint64_t)got + align - 1) & ~(align - 1);
        int64_t put = wait(sc_file_dma_write(dst, b * BLOCK, buf[slot], len));
        if (put < 0) {
            rc = (int)put;
            break;
        }
        if (b + ahead < nblocks) /* the slot is free: read block b + ahead into it */
            reads[slot] = sc_file_dma_read(src, (b + ahead) * BLOCK, buf[slot], BLOCK);
    }
    /* after an error, the reads still in flight must finish before their
     * buffers go away (and their results are dropped) */
    for (uint64_t r = b + 1; r < nblocks && r < b + ahead; r++)
        wait(reads[r % ahead]);
    if (rc == 0)
        rc = (int)wait(sc_file_truncate(dst, size)); /* drop the last block's padding */
    if (rc == 0)
        rc = (int)wait(sc_file_flush(dst));
out:
    for (unsigned i = 0; i < nbuf; i++)
        sc_dma_free(buf[i]);
    return rc;
}

static int open_and_copy(const char *from, const char *to)
{
    int64_t s = wait(sc_file_open(from, SC_FILE_READ));
    if (s < 0) {
        printf("cannot open %s: %s\n", from, sc_strerror((int)s));
        return (int)s;
    }
    int64_t d = wait(sc_file_open(to, SC_FILE_WRITE | SC_FILE_CREATE | SC_FILE_TRUNCATE));
    if (d < 0) {
        printf("cannot create %s: %s\n", to, sc_strerror((int)d));
        wait(sc_file_close((struct sc_file *)s));
        return (int)d;
    }
    struct sc_file *src = (struct sc_file *)s, *dst = (struct sc_file *)d;
    int64_t size = wait(sc_file_size(src));
    uint64_t t0 = sc_now();
    int rc = size < 0 ? (int)size : copy(src, dst, (uint64_t)size, (unsigned)ahead_opt);
    uint64_t t1 = sc_now();
    if (rc == 0)
        printf("copied %" PRId64 " bytes in %" PRIu64 " blocks of %u KiB, %ld reads ahead, "
               "in %.2f ms (%s)\n",
               size, ((uint64_t)size + BLOCK - 1) / BLOCK, BLOCK / 1024, ahead_opt,
               (double)(t1 - t0) / 1e6, sc_file_is_direct(src) ? "O_DIRECT" : "page cache");
    else
        printf("copy failed: %s\n", sc_strerror(rc));
    wait(sc_file_close(src));
    wait(sc_file_close(dst));
    return rc;
}

/* ---- the self-contained demo: make a source, copy it, compare ---- */

#define DEMO_SIZE (3u * 1024u * 1024u + 1234u)

static int same(const char *a, const char *b)
{
    char *x = malloc(DEMO_SIZE), *y = malloc(DEMO_SIZE);
    int rc = x && y ? 0 : -ENOMEM;
    const char *paths[2] = {a, b};
    char *bufs[2] = {x, y};
    for (int i = 0; i < 2 && rc == 0; i++) {
        int64_t f = wait(sc_file_open(paths[i], SC_FILE_READ));
        if (f < 0) {
            rc = (int)f;
            break;
        }
        int64_t got = wait(sc_file_read_bulk((struct sc_file *)f, 0, bufs[i], DEMO_SIZE));
        int64_t size = wait(sc_file_size((struct sc_file *)f));
        wait(sc_file_close((struct sc_file *)f));
        if (got != DEMO_SIZE || size != DEMO_SIZE)
            rc = -EIO;
    }
    if (rc == 0 && memcmp(x, y, DEMO_SIZE) != 0)
        rc = -EIO;
    free(x);
    free(y);
    return rc;
}

static int demo(void)
{
    char src[96], dst[96];
    snprintf(src, sizeof src, "%s/src", tmpdir);
    snprintf(dst, sizeof dst, "%s/dst", tmpdir);
    int64_t f = wait(sc_file_open(src, SC_FILE_READ | SC_FILE_WRITE | SC_FILE_CREATE));
    if (f == -ENOSYS) {
        printf("this world has no disk yet (the simulator's disk comes later): nothing to copy\n");
        return 0;
    }
    if (f < 0) {
        printf("cannot create %s: %s\n", src, sc_strerror((int)f));
        return (int)f;
    }
    char *data = malloc(DEMO_SIZE);
    int rc = data ? 0 : -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < DEMO_SIZE; i++)
        data[i] = (char)(i * 2654435761u >> 24);
    if (rc == 0) /* any length, any offset: the bulk helper aligns for us */
        rc = (int)wait(sc_file_write_bulk((struct sc_file *)f, 0, data, DEMO_SIZE));
    /* ... writing whole blocks, so a new file ends at the next 4096: cut it */
    rc = rc < 0 ? rc : (int)wait(sc_file_truncate((struct sc_file *)f, DEMO_SIZE));
    rc = rc < 0 ? rc : (int)wait(sc_file_flush((struct sc_file *)f));
    wait(sc_file_close((struct sc_file *)f));
    free(data);
    if (rc == 0)
        rc = open_and_copy(src, dst);
    if (rc == 0) {
        rc = same(src, dst);
        printf("%s\n", rc == 0 ? "the copy is identical" : "the copy DIFFERS");
    }
    wait(sc_file_remove(src));
    wait(sc_file_remove(dst));
    return rc;
}

static struct sc_future copy_fiber(void *cap)
{
    (void)cap;
    int rc = src_opt ? open_and_copy(src_opt, dst_opt) : demo();
    return sc_make_ready(rc < 0 ? 1 : 0);
}

static struct sc_future app(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if ((src_opt == NULL) != (dst_opt == NULL) || ahead_opt < 1 || ahead_opt > MAX_AHEAD) {
        fprintf(stderr,
                "ch08_copy: give both --src and --dst (or neither), and --ahead in "
                "[1, %d]\n",
                MAX_AHEAD);
        return sc_make_ready(2);
    }
    return sc_thread_spawn(copy_fiber, NULL, 0, NULL);
}

int main(int argc, char **argv)
{
    /* the demo's directory is made before the shards start (here a blocking
     * call harms nobody) */
    strcpy(tmpdir, "/tmp/seacore-ch08-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("ch08_copy: mkdtemp");
        return 1;
    }
    int rc =
        sc_app_run_opts(argc, argv, "copy a file with the DMA API, reading ahead", opts, app, NULL);
    rmdir(tmpdir);
    return rc;
}
