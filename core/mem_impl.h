/*
 * mem_impl.h — the per-shard allocator's private state, shared by
 * core/memory.c (arena, page spans, large objects, stats, engine hooks),
 * core/small.c (size classes and the cross-shard free path) and
 * core/malloc.c (the libc overrides). Not a public header.
 *
 * The picture. One PROT_NONE reservation per process (the arena) holds
 * SC_MAX_SHARDS slots of 64 GiB each; shard i allocates only from slot i,
 * so the owner of any pointer is (p - arena) >> 36. A slot starts with one
 * 32-byte descriptor per 4 KiB page of the slot (struct sc__page, 512 MiB of
 * address space, touched only as the slot grows); the slot's heap header
 * (struct sc__heap) sits in the first descriptors, which describe the
 * descriptor area itself and are never needed. Data pages follow.
 *
 *   slot: [ heap header | descriptors ............ | data pages ........ ]
 *          page 0        pages 1..SC__DATA_FIRST-1  SC__DATA_FIRST..hw-1
 *
 * Every page in [SC__DATA_FIRST, hw) belongs to exactly one span: free,
 * large (one allocation) or small (objects of one size class). A span's
 * first descriptor says what it is and how long; its last descriptor is
 * kept meaningful too (a free span repeats its length there), so freeing a
 * span can merge with both neighbours in O(1).
 */
#ifndef SC_MEM_IMPL_H
#define SC_MEM_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/memory.h"
#include "core/shard_impl.h"

#define SC__PAGE_SHIFT 12
#define SC__PAGE_SIZE  (1ul << SC__PAGE_SHIFT)
/* 64 GiB per slot, 256 slots: 16 TiB of the 128 TiB user address space. */
#define SC__SLOT_SHIFT 36
#define SC__SLOT_PAGES (1u << (SC__SLOT_SHIFT - SC__PAGE_SHIFT))
/* the first data page: the descriptors of every page come before it */
#define SC__DATA_FIRST ((uint32_t)((SC__SLOT_PAGES * sizeof(struct sc__page)) >> SC__PAGE_SHIFT))

#define SC__NCLASSES  SC_MEMORY_CLASSES /* 16..128 by 16, then 4 per power of two */
#define SC__SMALL_MAX 16384u            /* larger requests are page spans */
#define SC__LUT_MAX   1024u             /* sizes up to this find their class in a table */
#define SC__NBINS     25                /* free spans by floor(log2(pages)) */

/* What a page descriptor describes. */
enum sc__page_kind {
    SC__PG_NONE = 0,   /* never handed out, or inside a span */
    SC__PG_FREE,       /* first or last page of a free span */
    SC__PG_LARGE,      /* first page of a large allocation */
    SC__PG_SMALL,      /* first page of a small-object span */
    SC__PG_SMALL_TAIL, /* a later page of a small-object span: `off` leads to its head */
    SC__PG_TAIL,       /* last page of a large allocation */
};

#define SC__PF_CLEAN 1u /* free span: its pages were given back to the OS */
#define SC__PF_FULL  2u /* small span: no free object, so not on its class's list */

/* One per page of a slot; for a small span the head's descriptor is also
 * the span's allocation state. 32 bytes: two per cache line. */
struct sc__page {
    uint32_t pages;      /* span head (and a free span's last page): length in pages */
    uint8_t kind;        /* enum sc__page_kind */
    uint8_t cls;         /* small span: size class */
    uint8_t off;         /* SMALL_TAIL: pages back to the head */
    uint8_t flags;       /* SC__PF_* */
    uint32_t used;       /* small span: objects handed out and not yet freed here */
    uint32_t carved;     /* small span: objects cut from the span so far */
    uint32_t next, prev; /* list links as page indices (0: none) */
    void *free;          /* small span: free objects, linked through their first word */
};

/* A size class: the spans that have room, most recently useful first. */
struct sc__class {
    struct sc__page *cur; /* the span allocations come from (&sc__no_span: none) */
    uint32_t size;        /* object size */
    uint32_t cap;         /* objects per span */
};

/* Frees waiting to go home to one other shard: the objects themselves,
 * linked through their first word. */
struct sc__batch {
    void *head;
    uint32_t count;
};

/* A slot's allocator. Lives at the start of its slot; persists across runs.
 * Only the slot's shard touches it, except `remote` (any thread pushes). */
struct sc__heap {
    struct sc__class cls[SC__NCLASSES];
    struct sc__page *pages; /* == the slot's base: pages[i] describes page i */
    char *base;
    unsigned id;       /* the slot's index == the shard that owns it */
    uint32_t fail_ppm; /* sim: injected failures per million allocations */
    uint64_t fail_rng[4];

    /* the page-span allocator (memory.c) */
    uint32_t hw;        /* first page never handed out */
    uint32_t committed; /* pages below this are read-write (with their descriptors) */
    uint64_t budget_pages, in_use_pages, dirty_free_pages;
    uint32_t purge_turns;     /* reactor turns since the last purge (memory.c) */
    uint32_t bins[SC__NBINS]; /* free spans, heads, by floor(log2(pages)) */
    uint32_t bin_map;
    int node; /* NUMA node new memory is bound to, or -1 */

    /* frees of other shards' memory, waiting to be sent (small.c) */
    uint64_t out_map[SC_MAX_SHARDS / 64];
    struct sc__batch out[SC_MAX_SHARDS];

    /* counters (stats) */
    uint64_t foreign_sent, foreign_received;
    uint64_t alloc_failures, injected_failures;
    uint64_t released_pages; /* pages given back to the OS, in total */

    /* frees from threads that are not this slot's shard: a lock-free stack */
    _Alignas(64) _Atomic(void *) remote;
};

/* A class with no span: its free list is empty, so the fast path needs no
 * NULL check before falling through to the slow path. Never written. */
extern struct sc__page sc__no_span;

/* The class tables (small.c), filled once before the first slot opens. */
extern uint32_t sc__class_size[SC__NCLASSES];
extern uint8_t sc__class_pages[SC__NCLASSES];
extern uint8_t sc__class_lut[SC__LUT_MAX / 16 + 1];
void sc__small_classes_init(void);
unsigned sc__class_of(size_t size); /* size <= SC__SMALL_MAX */

static inline uint32_t sc__page_index(const struct sc__heap *h, const void *p)
{
    return (uint32_t)(((uintptr_t)p - (uintptr_t)h->base) >> SC__PAGE_SHIFT);
}

static inline char *sc__page_addr(const struct sc__heap *h, uint32_t idx)
{
    return h->base + ((size_t)idx << SC__PAGE_SHIFT);
}

/* ---- small objects and the cross-shard free path (small.c) ---- */

void *sc__small_alloc(struct sc__heap *h, unsigned cls);
void sc__small_free(struct sc__heap *h, struct sc__page *span, void *p);
void sc__small_class_reset(struct sc__heap *h);
/* Free p, owned by slot `owner`, from heap h (NULL: not on an active shard). */
void sc__free_foreign(struct sc__heap *h, unsigned owner, void *p);
void sc__remote_push(struct sc__heap *owner, void *p);
void sc__mem_flush(struct sc__heap *h);                 /* send every waiting batch it can */
bool sc__mem_drain(struct sc__heap *h);                 /* take back what others freed */
void sc__mem_free_list(struct sc__heap *h, void *list); /* free a linked batch here */

/* ---- page spans and the rest (memory.c) ---- */

/* n pages aligned to align_pages (a power of two); 0 when out of memory
 * (after draining foreign frees once). */
uint32_t sc__pages_get(struct sc__heap *h, uint32_t n, uint32_t align_pages);
void sc__pages_put(struct sc__heap *h, uint32_t idx);
void sc__heap_free_local(struct sc__heap *h, void *p); /* p belongs to h */
struct sc__heap *sc__slot_heap(unsigned slot);
/* The world's heap for a shard of this run, or NULL. */
struct sc__heap *sc__world_heap(unsigned shard);

/* Allocation on the calling shard's heap for runtime internals (the
 * continuation pool): never injected to fail; glibc off a shard. */
void *sc__mem_alloc(size_t size);
void sc__mem_free(void *p);

/* Shared by the public API and the libc overrides: h NULL means glibc. */
void *sc__alloc(struct sc__heap *h, size_t size);
void *sc__calloc(struct sc__heap *h, size_t n, size_t size);
void *sc__realloc(struct sc__heap *h, void *p, size_t size);
void *sc__aligned(struct sc__heap *h, size_t align, size_t size); /* align: a power of two */
void sc__free(void *p);
size_t sc__usable(void *p);
bool sc__in_arena(const void *p);

/* glibc's own allocator (exported by glibc for exactly this use). */
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void __libc_free(void *p);
size_t sc__libc_usable_size(void *p); /* malloc.c: glibc's malloc_usable_size */

/* ---- engine hooks ---- */

int sc__mem_world_init(struct sc__world *w, const struct sc_config *cfg);
void sc__mem_world_fini(struct sc__world *w);
void sc__mem_shard_start(struct sc__shard *s, int numa_node); /* on the shard's thread */
void sc__mem_shard_stop(struct sc__shard *s);
void sc__mem_poll(struct sc__shard *s); /* every reactor turn: flush out, drain in */

#endif
