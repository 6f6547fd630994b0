/*
 * fileio.c — see fileio.h.
 */
#include "apps/httpd/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

static struct sc_future close_then_fail(struct httpd_file *hf, int err);

struct opening {
    struct httpd_file *hf;
};

static struct sc_future got_stat(void *cap, intptr_t v, int err)
{
    (void)v;
    struct httpd_file *hf = ((struct opening *)cap)->hf;
    if (err)
        return close_then_fail(hf, err);
    hf->size = hf->st.size;
    hf->regular = S_ISREG(hf->st.mode);
    if (S_ISDIR(hf->st.mode))
        return close_then_fail(hf, -EISDIR);
    return sc_make_ready_ptr(hf);
}

static struct sc_future got_file(void *cap, intptr_t v, int err)
{
    struct httpd_file *hf = ((struct opening *)cap)->hf;
    if (err) {
        free(hf);
        return sc_make_error(err);
    }
    hf->f = (struct sc_file *)v;
    /* hf->st stays valid until the stat resolves: hf is ours until then */
    return sc_then_wrapped(sc_file_stat(hf->f, &hf->st), got_stat, cap, sizeof(struct opening));
}

struct sc_future httpd_file_open(const char *path)
{
    struct httpd_file *hf = calloc(1, sizeof *hf);
    if (!hf)
        return sc_make_error(-ENOMEM);
    struct opening o = {hf};
    return SC_THEN_WRAPPED(sc_file_open(path, SC_FILE_READ | SC_FILE_BUFFERED), got_file, o);
}

struct sc_future httpd_file_read(struct httpd_file *f, uint64_t off, void *buf, size_t len)
{
    return sc_file_read_bulk(f->f, off, buf, len);
}

struct sc_future httpd_file_close(struct httpd_file *hf)
{
    if (!hf)
        return sc_make_ready(0);
    struct sc_file *f = hf->f;
    free(hf);
    return f ? sc_file_close(f) : sc_make_ready(0);
}

struct fail {
    int err;
};

static struct sc_future fail_after_close(void *cap, intptr_t v, int err)
{
    (void)v, (void)err; /* the first error is the one worth reporting */
    return sc_make_error(((struct fail *)cap)->err);
}

static struct sc_future close_then_fail(struct httpd_file *hf, int err)
{
    struct fail fl = {err};
    return SC_THEN_WRAPPED(httpd_file_close(hf), fail_after_close, fl);
}
