/*
 * fileio.h — the file operations the static-file handler needs (open with
 * its size, read, close), as futures over the disk API (disk/file.h).
 *
 * Files are opened buffered (SC_FILE_BUFFERED): a web server reads the same
 * files again and again, and the page cache is what makes a miss of the
 * handler's own cache (static.c) cheap. The open and the stat run on the
 * shard's syscall thread, the reads through the reactor backend or that
 * thread: nothing here blocks the shard.
 *
 * Paths given here are already normalised (http_path_resolve(): no "..",
 * no empty or "." segments), so they cannot climb out of the document root
 * by themselves. A symbolic link inside the root is followed, wherever it
 * points, as nginx does by default: who can make links in the document root
 * decides what it serves.
 */
#ifndef HTTPD_FILEIO_H
#define HTTPD_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/future.h"
#include "disk/file.h"

struct httpd_file {
    struct sc_file *f;
    struct sc_file_stat st;
    uint64_t size;
    bool regular; /* a regular file (not a device, a FIFO, a socket) */
};

/*
 * Open @p path for reading and learn its size. Returns a future of a
 * `struct httpd_file *` (httpd_file_close() it), or -ENOENT, -ENOTDIR,
 * -EACCES, -EISDIR (a directory), -ENAMETOOLONG, -ENOMEM, ...
 */
struct sc_future httpd_file_open(const char *path);

/* Read up to @p len bytes at @p off into @p buf: a future of the count (fewer only at the end). */
struct sc_future httpd_file_read(struct httpd_file *f, uint64_t off, void *buf, size_t len);

/* Close and free @p f (which may be NULL); a future of 0 or the close error. */
struct sc_future httpd_file_close(struct httpd_file *f);

#endif
