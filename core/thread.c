/*
 * thread.c — the bookkeeping of fibers: spawning, stacks, counters and what
 * happens to fibers still suspended when a shard ends. The switch and await
 * themselves are in fiber_switch.c (and switch_<arch>.S).
 *
 * A fiber's memory is one stack mapping:
 *
 *     lo - page         lo                              top = lo + size
 *     | guard page      | ...stack grows down <- | cap | struct sc__fiber |
 *
 * The guard page is mapped PROT_NONE: a fiber that runs off the end of its
 * stack faults there (SIGSEGV) instead of writing over a neighbour. Stacks
 * come from the shard's allocator (stack_alloc/stack_free). A shard keeps a few freed stacks and
 * hands them to the next spawn of the same size, so a spawn in a steady
 * state makes no system call.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/memory.h"
#include "core/thread_impl.h"

#ifdef SC__ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef SC__TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* ---- stacks ---- */

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE); /* read from the auxiliary vector: no system call */
}

/* `size` usable bytes above a guard page; returns the lowest usable byte.
 * The memory is the shard's own (page-aligned, from its allocator), so a
 * fiber's stack sits on the shard's NUMA node and counts in its memory
 * stats; the guard page is made PROT_NONE for as long as the stack lives.
 * Sanitizer builds map stacks directly: ASan's heap must not hold pages
 * whose protection changes under it. */
static char *stack_alloc(size_t size)
{
    size_t page = page_size();
#ifdef SC_SAN
    char *m = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
#else
    char *m = sc_aligned_alloc(page, size + page);
    if (!m)
        return NULL;
#endif
    if (mprotect(m, page, PROT_NONE) != 0) {
#ifdef SC_SAN
        munmap(m, size + page);
#else
        sc_free(m);
#endif
        return NULL;
    }
    return m + page;
}

static void stack_free(char *lo, size_t size)
{
    size_t page = page_size();
#ifdef SC_SAN
    munmap(lo - page, size + page);
#else
    /* the guard page becomes ordinary memory again before it goes back */
    int rc = mprotect(lo - page, page, PROT_READ | PROT_WRITE);
    SC_ASSERT(rc == 0, "cannot unprotect a fiber's guard page");
    (void)size;
    sc_free(lo - page);
#endif
}

/* A stack for a new fiber: the cache first, then the system. */
static char *stack_get(struct sc__fibers *fs, size_t size)
{
    for (unsigned i = fs->ncached; i-- > 0;) {
        if (fs->cache[i].size == size) {
            char *lo = fs->cache[i].lo;
            fs->cache[i] = fs->cache[--fs->ncached];
            return lo;
        }
    }
    char *lo = stack_alloc(size);
    if (lo)
        fs->stats.stacks_mapped++;
    return lo;
}

static void stack_put(struct sc__fibers *fs, char *lo, size_t size)
{
#ifdef SC__ASAN
    /* A fiber that ended suspended left its frames' redzones poisoned:
     * the next owner of this memory must not trip over them. */
    __asan_unpoison_memory_region(lo, size);
#endif
    if (fs && fs->ncached < SC__STACK_CACHE) {
        fs->cache[fs->ncached++] = (struct sc__stack){lo, size};
        return;
    }
    stack_free(lo, size);
}

/* ---- the shard's fibers ---- */

static struct sc__fibers *fibers_get(void)
{
    struct sc__shard *s = sc__shard();
    SC_ASSERT(s != NULL, "fibers only exist on a shard");
    if (!s->fibers)
        s->fibers = calloc(1, sizeof *s->fibers);
    return s->fibers;
}

static void live_unlink(struct sc__fibers *fs, struct sc__fiber *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        fs->live = f->next;
    if (f->next)
        f->next->prev = f->prev;
    fs->stats.live--;
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

struct sc_future sc_thread_spawn(sc_thread_fn fn, const void *cap, size_t cap_size,
                                 const struct sc_thread_attr *attr)
{
    size_t size = attr && attr->stack_size ? attr->stack_size : SC_THREAD_STACK_DEFAULT;
    if (!fn || size < SC_THREAD_STACK_MIN || size > SC_THREAD_STACK_MAX)
        return sc_make_error(-EINVAL);
    size = round_up(size, page_size());
    size_t fiber_bytes = round_up(sizeof(struct sc__fiber), 64);
    size_t cap_bytes = round_up(cap_size, 16);
    if (cap_size > size / 2 || (cap_size && !cap))
        return sc_make_error(-EINVAL);
    struct sc_sched_group group = sc_sched_group_current();
    if (attr && attr->group) {
        struct sc_sched_group_stats gs;
        if (sc_sched_group_stats(*attr->group, &gs) != 0)
            return sc_make_error(-EINVAL);
        group = *attr->group;
    }

    struct sc__fibers *fs = fibers_get();
    if (!fs)
        return sc_make_error(-ENOMEM);
    char *lo = stack_get(fs, size);
    if (!lo)
        return sc_make_error(-ENOMEM);
    struct sc__fstate *result = sc__fstate_new();
    if (!result) {
        stack_put(fs, lo, size);
        return sc_make_error(-ENOMEM);
    }

    struct sc__fiber *f = (struct sc__fiber *)(lo + size - fiber_bytes);
    memset(f, 0, sizeof *f);
    f->cap = (char *)f - cap_bytes;
    if (cap_size)
        memcpy(f->cap, cap, cap_size);
    f->fn = fn;
    f->result = result;
    f->lo = lo;
    f->size = size;
    f->task.group = group.id; /* kept for life: every wake-up queues it there */
#ifdef SC__TSAN
    f->tsan = __tsan_create_fiber(0);
#endif
    f->next = fs->live;
    if (f->next)
        f->next->prev = f;
    fs->live = f;
    fs->stats.spawned++;
    fs->stats.live++;

    sc__fiber_start(f, f->cap);
    return sc__fstate_future(result);
}

void sc__fiber_release(struct sc__fiber *f)
{
    struct sc__fibers *fs = sc__fibers();
    char *lo = f->lo;
    size_t size = f->size;
    live_unlink(fs, f);
    fs->stats.finished++;
#ifdef SC__TSAN
    __tsan_destroy_fiber(f->tsan);
#endif
    stack_put(fs, lo, size); /* f itself is on that stack: not touched after this */
}

/* The shard is ending: free every stack, the suspended fibers' included. Their
 * functions never continue; the futures they held are the pool's and the
 * ledger's business (an unhandled error among them is reported by then). */
void sc__thread_shard_fini(struct sc__shard *s)
{
    struct sc__fibers *fs = s->fibers;
    if (!fs)
        return;
    while (fs->live) {
        struct sc__fiber *f = fs->live;
        char *lo = f->lo;
        size_t size = f->size;
        live_unlink(fs, f);
#ifdef SC__TSAN
        __tsan_destroy_fiber(f->tsan);
#endif
        stack_put(NULL, lo, size);
    }
    for (unsigned i = 0; i < fs->ncached; i++)
        stack_free(fs->cache[i].lo, fs->cache[i].size);
    free(fs);
    s->fibers = NULL;
}

/* ---- questions a fiber may ask ---- */

bool sc_thread_running(void)
{
    struct sc__fibers *fs = sc__fibers();
    return fs && fs->current;
}

size_t sc_thread_stack_left(void)
{
    struct sc__fibers *fs = sc__fibers();
    if (!fs || !fs->current)
        return 0;
    /* the frame address, not a local's: under ASan a local may live elsewhere */
    char *here = __builtin_frame_address(0);
    return (size_t)(here - fs->current->lo);
}

void sc_thread_stats(struct sc_thread_stats *out)
{
    struct sc__fibers *fs = sc__fibers();
    if (fs) {
        *out = fs->stats;
        out->stacks_cached = fs->ncached;
    } else {
        memset(out, 0, sizeof *out);
    }
}
