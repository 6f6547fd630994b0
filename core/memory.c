/*
 * memory.c — the per-shard allocator: the arena and its slots, the page-span
 * allocator, large and aligned allocations, budgets, statistics, and the
 * hooks the engines call. Small objects and the cross-shard free path are
 * in small.c; the libc overrides in malloc.c; the layout in mem_impl.h.
 *
 * The arena. At the first engine start the process reserves, once,
 * SC_MAX_SHARDS slots of 64 GiB of address space (PROT_NONE, MAP_NORESERVE:
 * no memory, no commit charge), aligned to 64 GiB. Shard i allocates from
 * slot i only, so `free` finds a pointer's owner with a subtraction and a
 * shift, and a pointer outside the arena is one comparison away from glibc.
 * The arena is never unmapped: memory allocated on a shard (stdio's buffer,
 * say) may outlive the run and be freed later, from any thread. A slot's
 * state persists across runs; a later run's shard i uses slot i again.
 *
 * Growing. A slot's pages become read-write in steps of SC__STEP pages as
 * its high-water mark grows, each step bound to the shard's NUMA node in
 * the real world (mbind, MPOL_PREFERRED); pages are touched only when used.
 * The shard's budget (`--memory` / shards) caps the pages handed out, not the
 * address range.
 *
 * Page spans. Free spans sit in bins by floor(log2(length)); allocation
 * takes a fitting span (first fit in the size's own bin, else any span of
 * a larger bin) or grows the high-water mark, and gives the remainder back.
 * Freeing merges with free neighbours through the boundary tags (a free
 * span's first and last descriptors both hold its length). When free pages
 * still backed by memory pass SC__RETAIN_PAGES, a freed run of at least
 * SC__RELEASE_MIN pages goes back to the OS (MADV_DONTNEED) — but not at
 * once: the reactor purges between tasks (sc__mem_poll, every
 * SC__PURGE_EVERY turns while too much is kept), largest spans first, down
 * to SC__RETAIN_PAGES. Releasing inside free() made a task that frees a
 * few MiB and allocates them again pay a system call and a page fault per
 * page, every time (bench_alloc's alloc.batch: 6x slower). Peak RSS does not
 * change: memory freed and reused within a task was never given back.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef SC_SAN
#include <numaif.h>
#endif

#include "core/mem_impl.h"

#define SC__STEP_PAGES   (16384u)     /* 64 MiB: how far a slot's read-write part grows at once */
#define SC__RETAIN_PAGES (1024u)      /* 4 MiB of free dirty pages kept before releasing */
#define SC__RELEASE_MIN  (16u)        /* release runs of at least 64 KiB */
#define SC__PURGE_EVERY  (16u)        /* reactor turns between purges */
#define SC__SIM_DEFAULT  (1ull << 30) /* the simulator's memory per shard */
#define SC__MAX_ALIGN    (1ul << 30)

/* ---- budgets (both builds) ---- */

static uint64_t default_memory(const struct sc_config *cfg, unsigned n, int *err)
{
    *err = 0;
    if (cfg->memory)
        return cfg->memory;
    if (cfg->backend == SC_BACKEND_SIM)
        return SC__SIM_DEFAULT * n; /* the same on every host: a seed replays anywhere */
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    uint64_t phys = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : (1ull << 32);
    uint64_t reserve = cfg->reserve_memory;
    if (!reserve) {
        reserve = phys / 100 * 7;
        if (reserve < (3ull << 29))
            reserve = 3ull << 29; /* 1.5 GiB */
        if (reserve >= phys)
            reserve = phys / 2; /* a small machine: keep half for the rest */
    }
    if (reserve >= phys) {
        *err = -EINVAL;
        return 0;
    }
    return phys - reserve;
}

static void stats_header(struct sc_memory_stats *out, unsigned shard, uint64_t budget_pages)
{
    memset(out, 0, sizeof *out);
    out->shard = shard;
    out->bytes_total = budget_pages << SC__PAGE_SHIFT;
}

void sc_memory_stats_print(FILE *f, const struct sc_memory_stats *st)
{
    if (st->bypassed) {
        fprintf(f, "memory[%u]: the C library's allocator (no shard allocator in this build)\n",
                st->shard);
        return;
    }
    fprintf(f,
            "memory[%u]: budget %llu KiB, in use %llu KiB (small %llu objects/%llu KiB, "
            "large %llu/%llu KiB), mapped %llu KiB, released %llu KiB, foreign frees "
            "sent %llu received %llu, failures %llu (+%llu injected)\n",
            st->shard, (unsigned long long)st->bytes_total >> 10,
            (unsigned long long)st->bytes_in_use >> 10, (unsigned long long)st->small_objects,
            (unsigned long long)st->small_bytes >> 10, (unsigned long long)st->large_allocs,
            (unsigned long long)st->large_bytes >> 10, (unsigned long long)st->bytes_mapped >> 10,
            (unsigned long long)st->bytes_released >> 10,
            (unsigned long long)st->foreign_frees_sent,
            (unsigned long long)st->foreign_frees_received, (unsigned long long)st->alloc_failures,
            (unsigned long long)st->injected_failures);
    bool any = false;
    for (unsigned c = 0; c < SC_MEMORY_CLASSES; c++) {
        const struct sc_memory_class_stats *k = &st->classes[c];
        if (!k->spans)
            continue;
        if (!any)
            fprintf(f, "memory[%u] classes in use:", st->shard);
        fprintf(f, "%s %u B x%llu (%llu span%s)", any ? "," : "", k->size,
                (unsigned long long)k->objects_in_use, (unsigned long long)k->spans,
                k->spans == 1 ? "" : "s");
        any = true;
    }
    if (any)
        fputc('\n', f);
}

#ifdef SC_SAN
/* ------------------------------------------------------------------ */
/* Sanitizer builds: the C library's allocator does everything, so ASan  */
/* and TSan see each allocation. The API still works; stats say so.     */
/* ------------------------------------------------------------------ */

void *sc_malloc(size_t size)
{
    return malloc(size);
}
void sc_free(void *p)
{
    free(p);
}
void *sc_calloc(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) /* NULL, as promised (ASan would abort) */
        return NULL;
    return calloc(n, size);
}
void *sc_realloc(void *p, size_t size)
{
    if (size == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, size);
}
void *sc_aligned_alloc(size_t align, size_t size)
{
    if (!align || (align & (align - 1)) || align > SC__MAX_ALIGN) {
        errno = EINVAL;
        return NULL;
    }
    void *p = NULL;
    if (align < sizeof(void *))
        align = sizeof(void *);
    return posix_memalign(&p, align, size ? size : 1) == 0 ? p : NULL;
}
size_t sc_usable_size(void *p)
{
    return p ? malloc_usable_size(p) : 0;
}
void *sc__mem_alloc(size_t size)
{
    return malloc(size);
}
void sc__mem_free(void *p)
{
    free(p);
}

static uint64_t san_budget_pages;

int sc__mem_world_init(struct sc__world *w, const struct sc_config *cfg)
{
    int err;
    uint64_t total = default_memory(cfg, w->n, &err);
    if (err) {
        sc_log(SC_LOG_ERROR, "--reserve-memory leaves no memory for the shards");
        return err;
    }
    w->mem_budget_pages = (total / w->n) >> SC__PAGE_SHIFT;
    san_budget_pages = w->mem_budget_pages;
    return 0;
}
void sc__mem_world_fini(struct sc__world *w)
{
    (void)w;
}
void sc__mem_shard_start(struct sc__shard *s, int node)
{
    (void)s, (void)node;
}
void sc__mem_shard_stop(struct sc__shard *s)
{
    (void)s;
}
void sc__mem_poll(struct sc__shard *s)
{
    (void)s;
}
void sc_memory_stats(struct sc_memory_stats *out)
{
    struct sc__shard *s = sc__shard();
    stats_header(out, s ? s->id : 0, san_budget_pages);
    out->bypassed = true;
}
int sc_memory_stats_of(unsigned shard, struct sc_memory_stats *out)
{
    if (shard >= SC_MAX_SHARDS)
        return -EINVAL;
    stats_header(out, shard, san_budget_pages);
    out->bypassed = true;
    return 0;
}

#else /* !SC_SAN */

/* malloc.c defines this: naming it here links the libc overrides into every
 * program that links the allocator, from the .a as from the .so. */
extern const int sc__malloc_overrides;
const int *const sc__malloc_overrides_used = &sc__malloc_overrides;

/* ---- the arena ---- */

static _Atomic uintptr_t arena_lo, arena_hi; /* hi is stored last, with release */
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static _Atomic bool slot_claimed[SC_MAX_SHARDS];
static _Atomic bool slot_ready[SC_MAX_SHARDS]; /* header read-write and initialised */

static void arena_reserve(void)
{
    size_t slot = (size_t)1 << SC__SLOT_SHIFT, total = slot * SC_MAX_SHARDS;
    char *m =
        mmap(NULL, total + slot, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        sc_log(SC_LOG_WARN,
               "cannot reserve the shards' address space (%s): shards use the C "
               "library's allocator",
               strerror(errno));
        return;
    }
    uintptr_t lo = ((uintptr_t)m + slot - 1) & ~(uintptr_t)(slot - 1);
    if (lo > (uintptr_t)m)
        munmap(m, lo - (uintptr_t)m);
    size_t tail = (uintptr_t)m + total + slot - (lo + total);
    if (tail)
        munmap((char *)(lo + total), tail);
    sc__small_classes_init();
    atomic_store_explicit(&arena_lo, lo, memory_order_relaxed);
    atomic_store_explicit(&arena_hi, lo + total, memory_order_release);
}

bool sc__in_arena(const void *p)
{
    uintptr_t hi = atomic_load_explicit(&arena_hi, memory_order_acquire);
    uintptr_t lo = atomic_load_explicit(&arena_lo, memory_order_relaxed);
    return (uintptr_t)p - lo < hi - lo;
}

struct sc__heap *sc__slot_heap(unsigned slot)
{
    return (struct sc__heap *)(atomic_load_explicit(&arena_lo, memory_order_relaxed) +
                               ((uintptr_t)slot << SC__SLOT_SHIFT));
}

struct sc__heap *sc__world_heap(unsigned shard)
{
    struct sc__world *w = sc__world;
    return w && w->heaps && shard < w->n ? w->heaps[shard] : NULL;
}

static void bind_node(struct sc__heap *h, void *addr, size_t len)
{
    if (h->node < 0)
        return;
    unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {0};
    if ((unsigned)h->node >= 8 * sizeof mask)
        return;
    mask[h->node / (8 * sizeof(unsigned long))] |= 1ul << (h->node % (8 * sizeof(unsigned long)));
    (void)mbind(addr, len, MPOL_PREFERRED, mask, 8 * sizeof mask, 0); /* a preference only */
}

/* Make the header of slot i usable (once per process). */
static struct sc__heap *slot_open(unsigned i)
{
    struct sc__heap *h = sc__slot_heap(i);
    if (atomic_load_explicit(&slot_ready[i], memory_order_acquire))
        return h;
    size_t head = (size_t)SC__DATA_FIRST * sizeof(struct sc__page); /* descriptors of descriptors */
    if (mprotect(h, head, PROT_READ | PROT_WRITE) != 0)
        return NULL;
    _Static_assert(sizeof(struct sc__heap) <= SC__DATA_FIRST * sizeof(struct sc__page),
                   "the heap header fits where unused descriptors are");
    memset(h, 0, sizeof *h);
    h->pages = (struct sc__page *)h;
    h->base = (char *)h;
    h->id = i;
    h->hw = h->committed = SC__DATA_FIRST;
    h->node = -1;
    atomic_init(&h->remote, NULL);
    sc__small_class_reset(h);
    atomic_store_explicit(&slot_ready[i], true, memory_order_release);
    return h;
}

/* Make pages below `upto` (and their descriptors) read-write. */
static int commit(struct sc__heap *h, uint64_t upto)
{
    if (upto <= h->committed)
        return 0;
    uint64_t to = (upto + SC__STEP_PAGES - 1) / SC__STEP_PAGES * SC__STEP_PAGES;
    if (to > SC__SLOT_PAGES)
        to = SC__SLOT_PAGES;
    char *data = sc__page_addr(h, h->committed);
    size_t len = (size_t)(to - h->committed) << SC__PAGE_SHIFT;
    char *desc = (char *)&h->pages[h->committed];
    size_t dlen = (size_t)(to - h->committed) * sizeof(struct sc__page);
    if (mprotect(data, len, PROT_READ | PROT_WRITE) != 0 ||
        mprotect(desc, dlen, PROT_READ | PROT_WRITE) != 0)
        return -ENOMEM;
    bind_node(h, data, len);
    bind_node(h, desc, dlen);
    h->committed = (uint32_t)to;
    return 0;
}

/* ---- page spans ---- */

static inline unsigned bin_of(uint32_t n)
{
    return 31u - (unsigned)__builtin_clz(n);
}

static void bin_insert(struct sc__heap *h, uint32_t idx, uint32_t n, bool clean)
{
    struct sc__page *d = &h->pages[idx], *t = &h->pages[idx + n - 1];
    d->kind = t->kind = SC__PG_FREE;
    d->pages = t->pages = n;
    d->flags = t->flags = clean ? SC__PF_CLEAN : 0;
    unsigned b = bin_of(n);
    d->prev = 0;
    d->next = h->bins[b];
    if (d->next)
        h->pages[d->next].prev = idx;
    h->bins[b] = idx;
    h->bin_map |= 1u << b;
    if (!clean)
        h->dirty_free_pages += n;
}

static void bin_remove(struct sc__heap *h, uint32_t idx)
{
    struct sc__page *d = &h->pages[idx];
    unsigned b = bin_of(d->pages);
    if (d->prev)
        h->pages[d->prev].next = d->next;
    else
        h->bins[b] = d->next;
    if (d->next)
        h->pages[d->next].prev = d->prev;
    if (!h->bins[b])
        h->bin_map &= ~(1u << b);
    if (!(d->flags & SC__PF_CLEAN))
        h->dirty_free_pages -= d->pages;
    h->pages[idx + d->pages - 1].kind = SC__PG_NONE;
    d->kind = SC__PG_NONE;
}

/* Give pages [idx, idx+n) back, merged with free neighbours; maybe release
 * the merged run to the OS. */
static void span_release(struct sc__heap *h, uint32_t idx, uint32_t n, bool clean, bool may_release)
{
    if (idx > SC__DATA_FIRST && h->pages[idx - 1].kind == SC__PG_FREE) {
        uint32_t left = idx - h->pages[idx - 1].pages;
        clean = clean && (h->pages[left].flags & SC__PF_CLEAN);
        bin_remove(h, left);
        n += idx - left;
        idx = left;
    }
    if (idx + n < h->hw && h->pages[idx + n].kind == SC__PG_FREE) {
        struct sc__page *r = &h->pages[idx + n];
        uint32_t rn = r->pages;
        clean = clean && (r->flags & SC__PF_CLEAN);
        bin_remove(h, idx + n);
        n += rn;
    }
    (void)may_release; /* releasing to the OS waits for purge() */
    bin_insert(h, idx, n, clean);
}

/* Give free pages back to the OS, largest spans first, until no more than
 * SC__RETAIN_PAGES free pages are still backed. Between tasks only. */
static void purge(struct sc__heap *h)
{
    for (unsigned b = SC__NBINS; b-- > 0 && h->dirty_free_pages > SC__RETAIN_PAGES;) {
        for (uint32_t idx = h->bins[b]; idx && h->dirty_free_pages > SC__RETAIN_PAGES;
             idx = h->pages[idx].next) {
            struct sc__page *d = &h->pages[idx];
            if ((d->flags & SC__PF_CLEAN) || d->pages < SC__RELEASE_MIN)
                continue;
            if (madvise(sc__page_addr(h, idx), (size_t)d->pages << SC__PAGE_SHIFT, MADV_DONTNEED) !=
                0)
                return;
            d->flags |= SC__PF_CLEAN;
            h->pages[idx + d->pages - 1].flags |= SC__PF_CLEAN;
            h->dirty_free_pages -= d->pages;
            h->released_pages += d->pages;
        }
    }
}

/* Take exactly `need` pages from the free bins; 0 when none fits. */
static uint32_t take_from_bins(struct sc__heap *h, uint32_t need)
{
    unsigned b = bin_of(need);
    uint32_t idx = h->bins[b];
    for (int k = 0; idx && k < 8; k++, idx = h->pages[idx].next)
        if (h->pages[idx].pages >= need)
            goto found;
    uint32_t above = b + 1 < 32 ? h->bin_map & ~((2u << b) - 1) : 0;
    if (!above)
        return 0;
    idx = h->bins[__builtin_ctz(above)];
found:;
    uint32_t len = h->pages[idx].pages;
    bool clean = h->pages[idx].flags & SC__PF_CLEAN;
    bin_remove(h, idx);
    if (len > need) {
        /* the taken part's last page must not look free (a stale tag from
         * an older merge would): the remainder is about to look at it */
        h->pages[idx + need - 1].kind = SC__PG_TAIL;
        span_release(h, idx + need, len - need, clean, false);
    }
    return idx;
}

/* Take `need` pages at the high-water mark (joining a free span that ends there). */
static uint32_t take_from_top(struct sc__heap *h, uint32_t need)
{
    uint32_t idx = h->hw, have = 0;
    if (h->hw > SC__DATA_FIRST && h->pages[h->hw - 1].kind == SC__PG_FREE) {
        have = h->pages[h->hw - 1].pages;
        idx = h->hw - have;
    }
    uint64_t grow = need - have;
    if ((uint64_t)h->hw + grow > SC__SLOT_PAGES || commit(h, h->hw + grow) != 0)
        return 0;
    if (have)
        bin_remove(h, idx);
    h->hw += (uint32_t)grow;
    return idx;
}

static uint32_t pages_try(struct sc__heap *h, uint32_t n, uint32_t align)
{
    if (h->in_use_pages + n > h->budget_pages)
        return 0;
    uint64_t need64 = (uint64_t)n + align - 1;
    if (need64 > SC__SLOT_PAGES)
        return 0;
    uint32_t need = (uint32_t)need64;
    uint32_t idx = take_from_bins(h, need);
    if (!idx)
        idx = take_from_top(h, need);
    if (!idx)
        return 0;
    if (align > 1) {
        uint32_t start = (idx + align - 1) & ~(align - 1);
        uint32_t pre = start - idx, post = need - pre - n;
        /* the kept part's ends must not look free while the trimmings merge */
        h->pages[start + n - 1].kind = SC__PG_TAIL;
        h->pages[start].kind = SC__PG_LARGE;
        if (post)
            span_release(h, start + n, post, false, false);
        if (pre)
            span_release(h, idx, pre, false, false);
        idx = start;
    }
    struct sc__page *d = &h->pages[idx];
    d->pages = n;
    d->flags = 0;
    if (n > 1)
        h->pages[idx + n - 1].kind = SC__PG_TAIL;
    h->in_use_pages += n;
    return idx;
}

uint32_t sc__pages_get(struct sc__heap *h, uint32_t n, uint32_t align)
{
    uint32_t idx = pages_try(h, n, align);
    if (!idx && sc__mem_drain(h)) /* frees on their way home may be enough */
        idx = pages_try(h, n, align);
    if (!idx)
        h->alloc_failures++;
    return idx;
}

void sc__pages_put(struct sc__heap *h, uint32_t idx)
{
    uint32_t n = h->pages[idx].pages;
    h->in_use_pages -= n;
    span_release(h, idx, n, false, true);
}

/* ---- large and aligned allocations ---- */

static void *large_alloc(struct sc__heap *h, size_t size, size_t align)
{
    size_t n = (size + SC__PAGE_SIZE - 1) >> SC__PAGE_SHIFT;
    if (size > ((size_t)SC__SLOT_PAGES << SC__PAGE_SHIFT) || n == 0) {
        h->alloc_failures++;
        return NULL;
    }
    uint32_t ap = align > SC__PAGE_SIZE ? (uint32_t)(align >> SC__PAGE_SHIFT) : 1;
    uint32_t idx = sc__pages_get(h, (uint32_t)n, ap);
    if (!idx)
        return NULL;
    h->pages[idx].kind = SC__PG_LARGE;
    return sc__page_addr(h, idx);
}

static void bad_free(void *p, const char *why)
{
    sc_log(SC_LOG_ERROR, "free(%p): %s; ignored", p, why);
}

void sc__heap_free_local(struct sc__heap *h, void *p)
{
    uint32_t idx = sc__page_index(h, p);
    if (__builtin_expect(idx < SC__DATA_FIRST || idx >= h->hw, 0)) {
        bad_free(p, "not an allocated pointer");
        return;
    }
    struct sc__page *d = &h->pages[idx];
    if (d->kind == SC__PG_SMALL_TAIL)
        d -= d->off;
    if (__builtin_expect(d->kind == SC__PG_SMALL, 1)) {
        sc__small_free(h, d, p);
        return;
    }
    if (d->kind == SC__PG_LARGE && sc__page_addr(h, idx) == (char *)p) {
        sc__pages_put(h, idx);
        return;
    }
    bad_free(p, d->kind == SC__PG_FREE ? "already free" : "not the start of an allocation");
}

/* ---- the entry points (h NULL: glibc) ---- */

static bool injected(struct sc__heap *h)
{
    struct sc__shard *s = sc__cur;
    /* only app work fails: the engines' own bookkeeping between tasks does not */
    if (!s->running_task)
        return false;
    if (sc__rng_next(h->fail_rng) % 1000000 >= h->fail_ppm)
        return false;
    h->injected_failures++;
    return true;
}

static inline void *heap_alloc(struct sc__heap *h, size_t size)
{
    if (size <= SC__LUT_MAX)
        return sc__small_alloc(h, sc__class_lut[(size + 15) >> 4]);
    if (size <= SC__SMALL_MAX)
        return sc__small_alloc(h, sc__class_of(size));
    return large_alloc(h, size, 1);
}

void *sc__alloc(struct sc__heap *h, size_t size)
{
    if (!h)
        return __libc_malloc(size);
    if (__builtin_expect(h->fail_ppm != 0, 0) && injected(h))
        return NULL;
    return heap_alloc(h, size);
}

void *sc__calloc(struct sc__heap *h, size_t n, size_t size)
{
    if (!h)
        return __libc_calloc(n, size);
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes))
        return NULL;
    void *p = sc__alloc(h, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void *sc__aligned(struct sc__heap *h, size_t align, size_t size)
{
    if (align <= 16)
        return sc__alloc(h, size);
    if (!h)
        return __libc_memalign(align, size);
    if (__builtin_expect(h->fail_ppm != 0, 0) && injected(h))
        return NULL;
    if (align <= SC__PAGE_SIZE && size <= SC__SMALL_MAX) {
        /* a class whose objects are multiples of align: spans start on a
         * page, so every object is aligned (512 B: 512, 1024, 1536, ...) */
        for (unsigned c = sc__class_of(size > align ? size : align); c < SC__NCLASSES; c++)
            if (sc__class_size[c] % align == 0)
                return sc__small_alloc(h, c);
    }
    return large_alloc(h, size, align);
}

size_t sc__usable(void *p)
{
    if (!p)
        return 0;
    if (!sc__in_arena(p))
        return sc__libc_usable_size(p);
    uintptr_t lo = atomic_load_explicit(&arena_lo, memory_order_relaxed);
    struct sc__heap *h = sc__slot_heap((unsigned)(((uintptr_t)p - lo) >> SC__SLOT_SHIFT));
    struct sc__page *d = &h->pages[sc__page_index(h, p)];
    if (d->kind == SC__PG_SMALL_TAIL)
        d -= d->off;
    if (d->kind == SC__PG_SMALL)
        return sc__class_size[d->cls];
    return (size_t)d->pages << SC__PAGE_SHIFT;
}

void sc__free(void *p)
{
    uintptr_t hi = atomic_load_explicit(&arena_hi, memory_order_acquire);
    uintptr_t lo = atomic_load_explicit(&arena_lo, memory_order_relaxed);
    if ((uintptr_t)p - lo >= hi - lo) {
        __libc_free(p); /* glibc's, or NULL */
        return;
    }
    unsigned owner = (unsigned)(((uintptr_t)p - lo) >> SC__SLOT_SHIFT);
    struct sc__shard *s = sc__cur;
    struct sc__heap *h = s ? s->heap : NULL;
    if (__builtin_expect(h && h->id == owner, 1))
        sc__heap_free_local(h, p);
    else
        sc__free_foreign(h, owner, p);
}

void *sc__realloc(struct sc__heap *h, void *p, size_t size)
{
    if (!p)
        return sc__alloc(h, size);
    if (size == 0) {
        sc__free(p);
        return NULL;
    }
    bool ours = sc__in_arena(p);
    if (!ours && !h)
        return __libc_realloc(p, size);
    size_t old = sc__usable(p);
    /* stays put: it fits, wastes at most half, and belongs to this shard */
    if (ours && h && size <= old && size >= old / 2 &&
        (((uintptr_t)p - (uintptr_t)h->base) >> SC__SLOT_SHIFT) == 0)
        return p;
    void *q = sc__alloc(h, size);
    if (!q)
        return NULL;
    memcpy(q, p, old < size ? old : size);
    sc__free(p);
    return q;
}

void *sc__mem_alloc(size_t size)
{
    struct sc__shard *s = sc__cur;
    return s && s->heap ? heap_alloc(s->heap, size) : __libc_malloc(size);
}

void sc__mem_free(void *p)
{
    sc__free(p);
}

/* ---- the public API ---- */

static inline struct sc__heap *my_heap(void)
{
    struct sc__shard *s = sc__cur;
    return s ? s->heap : NULL;
}

void *sc_malloc(size_t size)
{
    return sc__alloc(my_heap(), size);
}

void sc_free(void *p)
{
    sc__free(p);
}

void *sc_calloc(size_t n, size_t size)
{
    return sc__calloc(my_heap(), n, size);
}

void *sc_realloc(void *p, size_t size)
{
    return sc__realloc(my_heap(), p, size);
}

void *sc_aligned_alloc(size_t align, size_t size)
{
    if (!align || (align & (align - 1)) || align > SC__MAX_ALIGN) {
        errno = EINVAL;
        return NULL;
    }
    return sc__aligned(my_heap(), align, size);
}

size_t sc_usable_size(void *p)
{
    return sc__usable(p);
}

/* ---- statistics ---- */

static void heap_stats(struct sc__heap *h, struct sc_memory_stats *out)
{
    stats_header(out, h->id, h->budget_pages);
    out->bytes_in_use = h->in_use_pages << SC__PAGE_SHIFT;
    out->bytes_free = h->budget_pages > h->in_use_pages
                          ? (h->budget_pages - h->in_use_pages) << SC__PAGE_SHIFT
                          : 0;
    out->bytes_mapped = (uint64_t)(h->hw - SC__DATA_FIRST) << SC__PAGE_SHIFT;
    out->bytes_free_dirty = h->dirty_free_pages << SC__PAGE_SHIFT;
    out->bytes_released = h->released_pages << SC__PAGE_SHIFT;
    out->foreign_frees_sent = h->foreign_sent;
    out->foreign_frees_received = h->foreign_received;
    out->alloc_failures = h->alloc_failures;
    out->injected_failures = h->injected_failures;
    for (unsigned c = 0; c < SC__NCLASSES; c++) {
        out->classes[c].size = sc__class_size[c];
        out->classes[c].span_pages = sc__class_pages[c];
    }
    /* every page below the high-water mark is in exactly one span: walk them */
    for (uint32_t i = SC__DATA_FIRST; i < h->hw;) {
        struct sc__page *d = &h->pages[i];
        if (d->kind == SC__PG_SMALL) {
            struct sc_memory_class_stats *k = &out->classes[d->cls];
            k->objects_in_use += d->used;
            k->spans++;
            out->small_objects += d->used;
            out->small_bytes += (uint64_t)d->used * k->size;
        } else if (d->kind == SC__PG_LARGE) {
            out->large_allocs++;
            out->large_bytes += (uint64_t)d->pages << SC__PAGE_SHIFT;
        }
        SC_ASSERT(d->pages > 0, "page %u of shard %u's memory is in no span", i, h->id);
        i += d->pages;
    }
}

void sc_memory_stats(struct sc_memory_stats *out)
{
    struct sc__heap *h = my_heap();
    if (!h) {
        struct sc__shard *s = sc__cur;
        stats_header(out, s ? s->id : 0, 0);
        out->bypassed = true;
        return;
    }
    heap_stats(h, out);
}

int sc_memory_stats_of(unsigned shard, struct sc_memory_stats *out)
{
    if (shard >= SC_MAX_SHARDS)
        return -EINVAL;
    if (!atomic_load_explicit(&slot_ready[shard], memory_order_acquire)) {
        stats_header(out, shard, 0);
        return 0;
    }
    heap_stats(sc__slot_heap(shard), out);
    return 0;
}

/* ---- the engines' hooks ---- */

int sc__mem_world_init(struct sc__world *w, const struct sc_config *cfg)
{
    int err;
    uint64_t total = default_memory(cfg, w->n, &err);
    if (err) {
        sc_log(SC_LOG_ERROR, "--reserve-memory leaves no memory for the shards");
        return err;
    }
    uint64_t per = (total / w->n) >> SC__PAGE_SHIFT;
    if (per > SC__SLOT_PAGES - SC__DATA_FIRST)
        per = SC__SLOT_PAGES - SC__DATA_FIRST; /* a slot's limit: 63.5 GiB per shard */
    w->mem_budget_pages = per;
    pthread_once(&arena_once, arena_reserve);
    if (!atomic_load_explicit(&arena_hi, memory_order_acquire))
        return 0; /* no arena: every shard uses glibc */
    w->heaps = calloc(w->n, sizeof *w->heaps);
    if (!w->heaps)
        return -ENOMEM;
    for (unsigned i = 0; i < w->n; i++) {
        bool was = false;
        if (!atomic_compare_exchange_strong(&slot_claimed[i], &was, true))
            continue; /* another run in this process holds the slot: glibc for this shard */
        w->heaps[i] = slot_open(i);
        if (!w->heaps[i])
            atomic_store(&slot_claimed[i], false);
    }
    if (w->n > 1) {
        w->free_rings = aligned_alloc(64, sizeof(struct sc_ring) * w->n * w->n);
        if (!w->free_rings) {
            sc__mem_world_fini(w);
            return -ENOMEM;
        }
        memset(w->free_rings, 0, sizeof(struct sc_ring) * w->n * w->n);
        for (unsigned i = 0; i < w->n * w->n; i++)
            if (i / w->n != i % w->n && sc_ring_init(&w->free_rings[i], 64) != 0) {
                sc__mem_world_fini(w);
                return -ENOMEM;
            }
    }
    return 0;
}

/* After every shard stopped: whatever is still on its way goes home now. */
void sc__mem_world_fini(struct sc__world *w)
{
    if (!w->heaps)
        return;
    for (unsigned i = 0; i < w->n; i++) {
        struct sc__heap *h = w->heaps[i];
        if (!h)
            continue;
        for (unsigned o = 0; o < SC_MAX_SHARDS; o++) {
            struct sc__batch *b = &h->out[o];
            if (!b->head)
                continue;
            if (o < w->n && w->heaps[o])
                sc__mem_free_list(w->heaps[o], b->head);
            else
                for (void *p = b->head, *next; p; p = next) {
                    next = *(void **)p;
                    sc__remote_push(sc__slot_heap(o), p);
                }
            *b = (struct sc__batch){0};
        }
        memset(h->out_map, 0, sizeof h->out_map);
    }
    for (unsigned i = 0; i < w->n; i++)
        if (w->heaps[i])
            sc__mem_drain(w->heaps[i]);
    if (w->free_rings) {
        for (unsigned i = 0; i < w->n * w->n; i++)
            if (w->free_rings[i].slots)
                sc_ring_destroy(&w->free_rings[i]);
        free(w->free_rings);
        w->free_rings = NULL;
    }
    for (unsigned i = 0; i < w->n; i++)
        if (w->heaps[i])
            atomic_store(&slot_claimed[i], false);
    free(w->heaps);
    w->heaps = NULL;
}

void sc__mem_shard_start(struct sc__shard *s, int node)
{
    struct sc__heap *h = sc__world_heap(s->id);
    if (!h)
        return;
    h->budget_pages = sc__world->mem_budget_pages;
    if (s->engine->simulated)
        node = -1; /* the simulator's memory is plain mmap */
    if (node != h->node) {
        h->node = node;
        size_t n = (size_t)(h->committed - SC__DATA_FIRST) << SC__PAGE_SHIFT;
        if (n)
            bind_node(h, sc__page_addr(h, SC__DATA_FIRST), n);
    }
    h->fail_ppm = s->engine->simulated ? s->cfg.sim_alloc_fail_ppm : 0;
    /* a stream of its own, from the run's seed: the same seed fails the same allocations */
    sc__rng_seed(h->fail_rng, s->cfg.seed ^ ((uint64_t)s->id << 32) ^ 0x616c6c6f63ull);
    s->heap = h;
    s->libc_heap = s->cfg.system_malloc ? NULL : h;
    sc__mem_drain(h); /* frees that arrived while the slot was not running */
}

void sc__mem_shard_stop(struct sc__shard *s)
{
    s->heap = s->libc_heap = NULL;
}

void sc__mem_poll(struct sc__shard *s)
{
    struct sc__heap *h = s->heap;
    if (!h)
        return;
    sc__mem_flush(h);
    sc__mem_drain(h);
    if (h->dirty_free_pages > SC__RETAIN_PAGES && ++h->purge_turns >= SC__PURGE_EVERY) {
        h->purge_turns = 0;
        purge(h);
    }
}

#endif /* SC_SAN */
