/*
 * small.c — small objects (16 B to 16 KiB) and the way freed memory goes
 * home to the shard that owns it.
 *
 * Size classes. Sizes round up to one of 36 classes: multiples of 16 up to
 * 128, then four classes per power of two (160, 192, 224, 256, 320, ...,
 * 16384), so rounding wastes at most a fifth. Sizes up to 1 KiB find their
 * class in a table; larger ones by their highest bit.
 *
 * Spans. Each class takes whole runs of pages ("spans") from the shard's
 * page allocator (memory.c) and cuts them into objects. The span's state
 * lives in its first page descriptor: a free list of objects (linked
 * through their first word), how many objects are out (`used`) and how many
 * were ever cut (`carved`). A class keeps the spans that have room on a
 * list whose head, `cur`, serves allocations. So the hot paths are:
 *
 *   alloc: pop from cur's free list, used++          (no lock, no atomic)
 *   free:  push on the span's free list, used--      (the span comes from
 *          the page descriptor of the pointer)
 *
 * Everything else is the slow path: cutting more objects from the span,
 * dropping a full span from the list (and putting it back at its first
 * free), and giving an empty span's pages back — except the list's head, so
 * an alloc/free ping-pong never churns spans.
 *
 * Going home. A shard that frees another shard's object does not touch the
 * owner's lists: it links the object into a batch for that owner and, every
 * SC__BATCH objects or at the end of its reactor turn, pushes the batch's
 * head into the SPSC ring it shares with the owner (one ring per ordered
 * pair, core/ring.h). The owner drains its rings once per turn and frees
 * each object locally. A full ring only delays a batch: it stays here and
 * grows until the next try. Threads that are not shards of the run (and
 * shards of a run that does not include the owner) push onto the owner's
 * lock-free stack instead, which the owner empties in the same drain.
 */
#ifndef SC_SAN /* sanitizer builds leave allocation to the C library (memory.c) */

#include <string.h>

#include "core/mem_impl.h"

#define SC__BATCH 64 /* objects per batch sent home */

uint32_t sc__class_size[SC__NCLASSES];
uint8_t sc__class_pages[SC__NCLASSES];
uint8_t sc__class_lut[SC__LUT_MAX / 16 + 1];
struct sc__page sc__no_span;

/* ---- size classes ---- */

unsigned sc__class_of(size_t size)
{
    if (size <= 128)
        return size ? (unsigned)((size - 1) >> 4) : 0;
    unsigned k = 63u - (unsigned)__builtin_clzll(size - 1); /* size in (2^k, 2^(k+1)] */
    size_t step = (size_t)1 << (k - 2);
    unsigned j = (unsigned)((size - ((size_t)1 << k) + step - 1) / step); /* 1..4 */
    return 8 + (k - 7) * 4 + (j - 1);
}

void sc__small_classes_init(void)
{
    for (unsigned c = 0; c < SC__NCLASSES; c++) {
        uint32_t size =
            c < 8 ? 16 * (c + 1) : (1u << (7 + (c - 8) / 4)) * (4 + (c - 8) % 4 + 1) / 4;
        /* The fewest pages that hold at least 16 objects wasting at most an
         * eighth of the span: few trips to the page allocator, little waste. */
        uint32_t pages = 1;
        while (pages < 64) {
            uint32_t bytes = pages << SC__PAGE_SHIFT;
            if (bytes / size >= 16 && bytes % size <= bytes / 8)
                break;
            pages++;
        }
        sc__class_size[c] = size;
        sc__class_pages[c] = (uint8_t)pages;
    }
    for (unsigned i = 0; i <= SC__LUT_MAX / 16; i++)
        sc__class_lut[i] = (uint8_t)sc__class_of((size_t)i * 16);
}

void sc__small_class_reset(struct sc__heap *h)
{
    for (unsigned c = 0; c < SC__NCLASSES; c++) {
        h->cls[c].cur = &sc__no_span;
        h->cls[c].size = sc__class_size[c];
        h->cls[c].cap = (sc__class_pages[c] << SC__PAGE_SHIFT) / sc__class_size[c];
    }
}

/* ---- a class's list of spans with room ---- */

static inline uint32_t idx_of(struct sc__heap *h, struct sc__page *sp)
{
    return (uint32_t)(sp - h->pages);
}

static void list_unlink(struct sc__heap *h, struct sc__class *k, struct sc__page *sp)
{
    if (sp->prev)
        h->pages[sp->prev].next = sp->next;
    else
        k->cur = sp->next ? &h->pages[sp->next] : &sc__no_span;
    if (sp->next)
        h->pages[sp->next].prev = sp->prev;
}

/* New spans go first; spans that regain room go second, behind the span
 * that is serving allocations now (it keeps its cache lines warm). */
static void list_insert(struct sc__heap *h, struct sc__class *k, struct sc__page *sp, bool first)
{
    if (first || k->cur == &sc__no_span) {
        sp->prev = 0;
        sp->next = k->cur == &sc__no_span ? 0 : idx_of(h, k->cur);
        if (sp->next)
            h->pages[sp->next].prev = idx_of(h, sp);
        k->cur = sp;
        return;
    }
    struct sc__page *head = k->cur;
    sp->prev = idx_of(h, head);
    sp->next = head->next;
    if (sp->next)
        h->pages[sp->next].prev = idx_of(h, sp);
    head->next = idx_of(h, sp);
}

static bool new_span(struct sc__heap *h, unsigned c)
{
    uint32_t n = sc__class_pages[c];
    uint32_t idx = sc__pages_get(h, n, 1);
    if (!idx)
        return false;
    struct sc__page *sp = &h->pages[idx];
    *sp = (struct sc__page){.pages = n, .kind = SC__PG_SMALL, .cls = (uint8_t)c};
    for (uint32_t i = 1; i < n; i++) {
        h->pages[idx + i].kind = SC__PG_SMALL_TAIL;
        h->pages[idx + i].off = (uint8_t)i;
    }
    list_insert(h, &h->cls[c], sp, true);
    return true;
}

/* Cut up to a page's worth of fresh objects into the span's free list: the
 * span's memory is touched a page at a time, as it is needed. */
static void carve(struct sc__heap *h, struct sc__class *k, struct sc__page *sp)
{
    uint32_t n = (uint32_t)(SC__PAGE_SIZE / k->size);
    if (n == 0)
        n = 1;
    if (n > k->cap - sp->carved)
        n = k->cap - sp->carved;
    char *first = sc__page_addr(h, idx_of(h, sp)) + (size_t)sp->carved * k->size;
    for (uint32_t i = 0; i + 1 < n; i++)
        *(void **)(first + (size_t)i * k->size) = first + (size_t)(i + 1) * k->size;
    *(void **)(first + (size_t)(n - 1) * k->size) = sp->free;
    sp->free = first;
    sp->carved += n;
}

static void *alloc_slow(struct sc__heap *h, unsigned c)
{
    struct sc__class *k = &h->cls[c];
    for (;;) {
        struct sc__page *sp = k->cur;
        if (sp == &sc__no_span) {
            if (!new_span(h, c))
                return NULL;
            continue; /* (a drain inside new_span may also have refilled the list) */
        }
        if (!sp->free && sp->carved < k->cap)
            carve(h, k, sp);
        if (sp->free) {
            void *p = sp->free;
            sp->free = *(void **)p;
            sp->used++;
            return p;
        }
        list_unlink(h, k, sp); /* full: off the list until something is freed */
        sp->flags |= SC__PF_FULL;
    }
}

void *sc__small_alloc(struct sc__heap *h, unsigned c)
{
    /* LAB 05 BEGIN: pop from the class's current span (cur); alloc_slow() when it has none */
    struct sc__page *sp = h->cls[c].cur;
    void *p = sp->free;
    if (__builtin_expect(p != NULL, 1)) {
        sp->free = *(void **)p;
        sp->used++;
        return p;
    }
    return alloc_slow(h, c);
    /* LAB 05 END: (void)h, (void)c, (void)alloc_slow; return NULL; */
}

static void free_slow(struct sc__heap *h, struct sc__page *sp)
{
    struct sc__class *k = &h->cls[sp->cls];
    /* LAB 05 BEGIN: a full span regains room: back on the list; an empty one (not cur) goes home */
    if (sp->flags & SC__PF_FULL) {
        sp->flags &= (uint8_t)~SC__PF_FULL;
        list_insert(h, k, sp, false);
    }
    if (sp->used == 0 && sp != k->cur) {
        list_unlink(h, k, sp);
        sc__pages_put(h, idx_of(h, sp));
    }
    /* LAB 05 END: (void)k, (void)list_insert, (void)list_unlink; */
}

void sc__small_free(struct sc__heap *h, struct sc__page *sp, void *p)
{
    /* LAB 05 BEGIN: push p on its span's list; free_slow() if the span was full or is empty */
    *(void **)p = sp->free;
    sp->free = p;
    if (__builtin_expect(--sp->used == 0 || (sp->flags & SC__PF_FULL), 0))
        free_slow(h, sp);
    /* LAB 05 END: (void)h, (void)sp, (void)p, (void)free_slow; */
}

/* ---- frees that go home ---- */

void sc__remote_push(struct sc__heap *owner, void *p)
{
    void *old = atomic_load_explicit(&owner->remote, memory_order_relaxed);
    do
        *(void **)p = old; /* release below: the owner sees this link */
    while (!atomic_compare_exchange_weak_explicit(&owner->remote, &old, p, memory_order_release,
                                                  memory_order_relaxed));
}

static inline struct sc_ring *free_ring(struct sc__world *w, unsigned from, unsigned to)
{
    return &w->free_rings[from * w->n + to];
}

static void send(struct sc__heap *h, unsigned to)
{
    struct sc__batch *b = &h->out[to];
    struct sc_ring *r = free_ring(sc__world, h->id, to);
    if (!sc_ring_push(r, b->head))
        return; /* full: the batch waits (and grows) until the next try */
    sc_ring_publish(r);
    b->head = NULL;
    b->count = 0;
    h->out_map[to / 64] &= ~(1ull << (to % 64));
}

void sc__free_foreign(struct sc__heap *h, unsigned owner, void *p)
{
    if (h && sc__world_heap(owner)) {
        /* LAB 05 BEGIN: link p into owner's batch (sent++, out_map); send() at SC__BATCH */
        struct sc__batch *b = &h->out[owner];
        *(void **)p = b->head;
        b->head = p;
        h->foreign_sent++;
        if (b->count++ == 0)
            h->out_map[owner / 64] |= 1ull << (owner % 64);
        if (b->count >= SC__BATCH)
            send(h, owner);
        /* LAB 05 END: (void)send; */
        return;
    }
    if (h)
        h->foreign_sent++;
    sc__remote_push(sc__slot_heap(owner), p);
}

void sc__mem_flush(struct sc__heap *h)
{
    for (unsigned w = 0; w < SC_MAX_SHARDS / 64; w++) {
        uint64_t m = h->out_map[w];
        while (m) {
            unsigned bit = (unsigned)__builtin_ctzll(m);
            m &= m - 1;
            send(h, w * 64 + bit);
        }
    }
}

void sc__mem_free_list(struct sc__heap *h, void *list)
{
    while (list) {
        void *next = *(void **)list;
        sc__heap_free_local(h, list);
        h->foreign_received++;
        list = next;
    }
}

bool sc__mem_drain(struct sc__heap *h)
{
    struct sc__world *w = sc__world;
    bool got = false;
    if (w && w->free_rings && h->id < w->n && w->heaps[h->id] == h) {
        for (unsigned j = 0; j < w->n; j++) {
            if (j == h->id)
                continue;
            /* LAB 05 BEGIN: take every batch head in the ring from shard j; free each list here */
            void *heads[32];
            size_t n;
            while ((n = sc_ring_pop(free_ring(w, j, h->id), heads, 32)) > 0) {
                for (size_t i = 0; i < n; i++)
                    sc__mem_free_list(h, heads[i]);
                got = true;
            }
            /* LAB 05 END: (void)j; */
        }
    }
    if (atomic_load_explicit(&h->remote, memory_order_relaxed)) {
        sc__mem_free_list(h, atomic_exchange_explicit(&h->remote, NULL, memory_order_acquire));
        got = true;
    }
    return got;
}

#endif /* SC_SAN */
