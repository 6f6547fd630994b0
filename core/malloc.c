/*
 * malloc.c — the C library's allocation functions, served by the shard's
 * allocator on shard threads.
 *
 * A program linked with seacore (the .a or the .so) defines malloc and
 * friends itself, so every caller in the process — the app, seacore, and
 * glibc's own internals (strdup, fopen, getline, printf's buffers) — comes
 * here. The rules:
 *
 *   - allocation on a shard whose run allows it (not --malloc=system):
 *     the shard's allocator; anywhere else (before the engine starts, on
 *     other threads, after the run): glibc, through the __libc_* entry
 *     points glibc exports for exactly this purpose;
 *   - free, realloc and malloc_usable_size look at the pointer, not the
 *     thread: an arena pointer is ours (from any thread: it goes home), any
 *     other pointer is glibc's. realloc between the two copies
 *     min(old usable size, new size).
 *
 * glibc exports no __libc_ name for malloc_usable_size, so its own is found
 * once with dlsym(RTLD_NEXT) (the next definition after ours: glibc's).
 *
 * Sanitizer builds (SC_SAN) leave all of this out: ASan and TSan replace
 * malloc themselves, and they must see every allocation.
 */
#ifndef SC_SAN

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/mem_impl.h"

/* memory.c refers to this, which pulls this file into every link */
const int sc__malloc_overrides = 1;

static inline struct sc__heap *libc_heap(void)
{
    struct sc__shard *s = sc__cur;
    return s ? s->libc_heap : NULL;
}

static inline void *enomem(void *p)
{
    if (!p)
        errno = ENOMEM;
    return p;
}

void *malloc(size_t size)
{
    return enomem(sc__alloc(libc_heap(), size));
}

void free(void *p)
{
    sc__free(p);
}

void *calloc(size_t n, size_t size)
{
    return enomem(sc__calloc(libc_heap(), n, size));
}

void *realloc(void *p, size_t size)
{
    void *q = sc__realloc(libc_heap(), p, size);
    if (!q && size)
        errno = ENOMEM;
    return q;
}

static bool valid_align(size_t align)
{
    return align && !(align & (align - 1)) && align <= (1ul << 30);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (!valid_align(align) || align % sizeof(void *))
        return EINVAL;
    void *p = sc__aligned(libc_heap(), align, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size)
{
    if (!valid_align(align)) {
        errno = EINVAL;
        return NULL;
    }
    return enomem(sc__aligned(libc_heap(), align, size));
}

void *memalign(size_t align, size_t size)
{
    return aligned_alloc(align, size);
}

void *valloc(size_t size)
{
    return aligned_alloc((size_t)sysconf(_SC_PAGESIZE), size);
}

void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return aligned_alloc(page, (size + page - 1) & ~(page - 1));
}

size_t malloc_usable_size(void *p)
{
    return sc__usable(p);
}

size_t sc__libc_usable_size(void *p)
{
    static size_t (*glibc_usable)(void *);
    size_t (*fn)(void *) = __atomic_load_n(&glibc_usable, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
        if (!fn || fn == malloc_usable_size)
            return 0; /* cannot happen with glibc; 0 is the safe answer */
        __atomic_store_n(&glibc_usable, fn, __ATOMIC_RELEASE);
    }
    return fn(p);
}

#endif /* SC_SAN */
