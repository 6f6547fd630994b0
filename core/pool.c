/*
 * pool.c — the shard's continuation pool.
 *
 * Continuations, shared states and loop records are small and short-lived,
 * and each belongs to one shard. So each shard keeps free lists by size
 * class (16-byte steps up to 1 KiB) carved out of 64 KiB chunks: an
 * allocation is a pop, a free is a push, no locks and no atomics. Memory goes
 * back to the shard's allocator only when the shard ends: the pool is a
 * cache in front of it, shaped for continuations (the caller passes the
 * size back at free, so no lookup is needed).
 *
 * Chunks, and allocations over 1 KiB, come from the shard's allocator
 * (memory.c), so all of a shard's memory lies in its own region. Sanitizer
 * builds (SC_SAN) send every allocation there, which in those builds is the
 * C library's malloc, so that ASan sees each allocation and catches a use
 * after free. Allocations made that way (those, and anything over 1 KiB)
 * carry a small header linking them into the pool, so a shard that ends
 * with work still pending frees them all.
 */
#include "core/mem_impl.h"

struct chunk {
    struct chunk *next;
};

void sc__pool_init(struct sc__pool *p)
{
    *p = (struct sc__pool){0};
}

/* Header of an allocation served by the shard's allocator directly. */
struct sc__pool_big {
    struct sc__pool_big *prev, *next;
};

static void *big_alloc(struct sc__pool *p, size_t size)
{
    struct sc__pool_big *b = sc__mem_alloc(sizeof(struct sc__pool_big) + size);
    if (!b)
        return NULL;
    b->prev = NULL;
    b->next = p->bigs;
    if (b->next)
        b->next->prev = b;
    p->bigs = b;
    return b + 1;
}

static void big_free(struct sc__pool *p, void *mem)
{
    struct sc__pool_big *b = (struct sc__pool_big *)mem - 1;
    if (b->prev)
        b->prev->next = b->next;
    else
        p->bigs = b->next;
    if (b->next)
        b->next->prev = b->prev;
    sc__mem_free(b);
}

void sc__pool_destroy(struct sc__pool *p)
{
    while (p->bigs)
        big_free(p, p->bigs + 1);
    struct chunk *c = p->chunks;
    while (c) {
        struct chunk *next = c->next;
        sc__mem_free(c);
        c = next;
    }
    *p = (struct sc__pool){0};
}

static inline unsigned size_class(size_t size)
{
    return (unsigned)((size + SC__POOL_GRAIN - 1) / SC__POOL_GRAIN) - 1;
}

static bool injected_failure(struct sc__pool *p)
{
    if (!p->fail_every)
        return false;
    return ++p->fail_count % p->fail_every == 0;
}

#ifndef SC_SAN
static void *refill(struct sc__pool *p, size_t rounded)
{
    if ((size_t)(p->bump_end - p->bump) < rounded) {
        /* The tail of the old chunk is abandoned (at most 1 KiB of 64). */
        struct chunk *c = sc__mem_alloc(SC__POOL_CHUNK);
        if (!c)
            return NULL;
        c->next = p->chunks;
        p->chunks = c;
        p->bytes += SC__POOL_CHUNK;
        p->bump = (char *)c + 16; /* past the link; objects stay 16-byte aligned */
        p->bump_end = (char *)c + SC__POOL_CHUNK;
    }
    void *m = p->bump;
    p->bump += rounded;
    return m;
}
#endif

void *sc__pool_alloc_slow(size_t size)
{
    struct sc__shard *s = sc__shard();
    SC_ASSERT(s != NULL, "futures and continuations only exist on a shard");
    struct sc__pool *p = &s->pool;
    if (__builtin_expect(p->fail_every != 0, 0) && injected_failure(p))
        return NULL;
#ifdef SC_SAN
    void *m = big_alloc(p, size);
#else
    void *m;
    if (size > SC__POOL_MAX) {
        m = big_alloc(p, size);
    } else {
        unsigned c = size_class(size);
        m = p->free[c];
        if (m)
            p->free[c] = *(void **)m;
        else
            m = refill(p, (size_t)(c + 1) * SC__POOL_GRAIN);
    }
#endif
    if (m)
        p->live++;
    return m;
}

void sc__pool_free_slow(void *mem, size_t size)
{
    struct sc__pool *p = &sc__shard()->pool;
    p->live--;
#ifdef SC_SAN
    (void)size;
    big_free(p, mem);
#else
    if (size > SC__POOL_MAX) {
        big_free(p, mem);
        return;
    }
    unsigned c = size_class(size);
    *(void **)mem = p->free[c];
    p->free[c] = mem;
#endif
}
