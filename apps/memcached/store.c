/*
 * store.c — see store.h.
 *
 * The hash table chains items in power-of-two bucket arrays indexed by the
 * low bits of the key's hash (the shard was chosen from the high bits, so
 * the two choices do not correlate). When it grows, it grows the way a
 * shard must: a new table twice the size is made, and the old one is
 * emptied into it a few buckets at a time — by every command and by the
 * sweep — instead of in one long pause. While that lasts a key lives in
 * exactly one of the two tables: in the old one if its old bucket has not
 * moved yet, otherwise in the new one.
 *
 * Dead items (expired, or older than a flush_all) are taken out lazily,
 * when a command finds one, by the LRU when it needs room, and by a sweep
 * that visits the table a slice at a time from a timer.
 */
#include <errno.h>
#include <string.h>

#include "apps/memcached/store.h"
#include "core/loop.h"
#include "core/memory.h"

#define DEFAULT_LIMIT   (UINT64_C(64) << 20)
#define INITIAL_BUCKETS 4096
#define MIGRATE_STEP    8        /* old buckets moved per command while growing */
#define ALLOC_RETRIES   16       /* LRU items given up before an allocation fails for good */
#define SWEEP_STEP_NS   SC_MS(1) /* between the steps of one sweep pass */

static const char *const result_texts[MC_RESULT__COUNT] = {
    [MC_STORED] = "STORED\r\n",
    [MC_NOT_STORED] = "NOT_STORED\r\n",
    [MC_EXISTS] = "EXISTS\r\n",
    [MC_NOT_FOUND] = "NOT_FOUND\r\n",
    [MC_DELETED] = "DELETED\r\n",
    [MC_TOUCHED] = "TOUCHED\r\n",
    [MC_OK] = "OK\r\n",
    [MC_ARITH_OK] = "",
    [MC_NON_NUMERIC] = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    [MC_NO_MEMORY] = "SERVER_ERROR out of memory storing object\r\n",
    [MC_TOO_LARGE] = "SERVER_ERROR object too large for cache\r\n",
};

const char *mc_result_text(enum mc_result r)
{
    return (unsigned)r < MC_RESULT__COUNT ? result_texts[r] : "SERVER_ERROR\r\n";
}

/* ---- the table ---- */

/* The slot that heads the chain a hash belongs in (old or new table). */
static struct mc_item **bucket_of(struct mc_store *s, uint64_t hash)
{
    if (s->old && (hash & s->old_mask) >= s->migrate_pos)
        return &s->old[hash & s->old_mask];
    return &s->table[hash & s->mask];
}

static void migrate(struct mc_store *s, unsigned n)
{
    while (s->old && n--) {
        struct mc_item *it = s->old[s->migrate_pos];
        while (it) {
            struct mc_item *next = it->hnext;
            struct mc_item **b = &s->table[it->hash & s->mask];
            it->hnext = *b;
            *b = it;
            it = next;
        }
        s->old[s->migrate_pos] = NULL;
        if (++s->migrate_pos > s->old_mask) {
            sc_free(s->old);
            s->old = NULL;
            s->old_mask = s->migrate_pos = 0;
        }
    }
}

/* Start growing when the table holds 1.5 items per bucket. A table that
 * cannot grow (no memory) keeps working with longer chains. */
static void maybe_grow(struct mc_store *s)
{
    uint64_t n = s->mask + 1;
    if (s->old || s->st.curr_items <= n + n / 2 || n >= (UINT64_C(1) << 40))
        return;
    struct mc_item **t = sc_calloc(2 * n, sizeof *t);
    if (!t)
        return;
    s->old = s->table;
    s->old_mask = s->mask;
    s->migrate_pos = 0;
    s->table = t;
    s->mask = 2 * n - 1;
}

/* The link that points at the item with this key (NULL if none). */
static struct mc_item **find_link(struct mc_store *s, const char *key, uint32_t klen, uint64_t hash)
{
    struct mc_item **link = bucket_of(s, hash);
    for (; *link; link = &(*link)->hnext) {
        struct mc_item *it = *link;
        if (it->hash == hash && it->nkey == klen && memcmp(it->data, key, klen) == 0)
            return link;
    }
    return NULL;
}

static struct mc_item **link_of(struct mc_store *s, const struct mc_item *victim)
{
    struct mc_item **link = bucket_of(s, victim->hash);
    while (*link != victim)
        link = &(*link)->hnext;
    return link;
}

static bool dead(const struct mc_store *s, const struct mc_item *it, uint64_t now)
{
    if (it->cas <= s->flushed_cas)
        return true;
    return it->deadline && (it->deadline == MC_EXPIRED || now >= it->deadline);
}

/* ---- the LRU ---- */

static void lru_remove(struct mc_store *s, struct mc_item *it)
{
    if (it->lru_prev)
        it->lru_prev->lru_next = it->lru_next;
    else
        s->lru_head = it->lru_next;
    if (it->lru_next)
        it->lru_next->lru_prev = it->lru_prev;
    else
        s->lru_tail = it->lru_prev;
    it->lru_prev = it->lru_next = NULL;
}

static void lru_push(struct mc_store *s, struct mc_item *it)
{
    it->lru_prev = NULL;
    it->lru_next = s->lru_head;
    if (s->lru_head)
        s->lru_head->lru_prev = it;
    else
        s->lru_tail = it;
    s->lru_head = it;
}

static void lru_bump(struct mc_store *s, struct mc_item *it)
{
    if (s->lru_head != it) {
        lru_remove(s, it);
        lru_push(s, it);
    }
}

/* ---- items ---- */

static uint32_t item_size(uint32_t klen, uint32_t vlen)
{
    size_t n = sizeof(struct mc_item) + klen + vlen + 2;
    return (uint32_t)((n + 15) & ~(size_t)15);
}

void mc_item_release(struct mc_store *s, struct mc_item *it)
{
    (void)s;
    if (--it->refs == 0)
        sc_free(it);
}

static void unlink_at(struct mc_store *s, struct mc_item **link)
{
    struct mc_item *it = *link;
    *link = it->hnext;
    it->hnext = NULL;
    lru_remove(s, it);
    it->linked = false;
    s->st.curr_items--;
    s->st.bytes -= it->size;
    mc_item_release(s, it);
}

static void link_item(struct mc_store *s, struct mc_item *it)
{
    struct mc_item **b = bucket_of(s, it->hash);
    it->hnext = *b;
    *b = it;
    lru_push(s, it);
    it->linked = true;
    s->st.curr_items++;
    s->st.total_items++;
    s->st.bytes += it->size;
    maybe_grow(s);
}

static uint64_t next_cas(struct mc_store *s)
{
    return ++s->seq * s->cfg.nshards + s->cfg.shard;
}

/* Take out the least recently used item for room: an eviction if it was
 * alive, a reclaim if it was dead already. */
static void evict(struct mc_store *s, struct mc_item *victim, uint64_t now)
{
    if (dead(s, victim, now)) {
        s->st.reclaimed++;
    } else {
        s->st.evictions++;
        if (s->cfg.on_evict)
            s->cfg.on_evict(s->cfg.evict_arg, victim, now);
    }
    unlink_at(s, link_of(s, victim));
}

/* Push out least recently used items until `size` more bytes fit. */
static void make_room(struct mc_store *s, uint64_t size, uint64_t now)
{
    while (s->lru_tail && s->st.bytes + size > s->cfg.limit_bytes) {
        struct mc_item *victim = s->lru_tail;
        evict(s, victim, now);
    }
}

/* A new unlinked item with room made for it; NULL when it cannot be had. */
static struct mc_item *alloc_item(struct mc_store *s, const char *key, uint32_t klen, uint64_t hash,
                                  uint32_t vlen, uint64_t now)
{
    uint32_t size = item_size(klen, vlen);
    if (size > s->cfg.limit_bytes)
        return NULL;
    make_room(s, size, now);
    struct mc_item *it;
    int tries = 0;
    /* The shard's allocator may say no before our own limit does (its
     * budget is shared with everything else on the shard): give up LRU
     * items and try again, a few times. */
    while (!(it = sc_malloc(size)) && tries++ < ALLOC_RETRIES && s->lru_tail) {
        evict(s, s->lru_tail, now);
    }
    if (!it)
        return NULL;
    memset(it, 0, sizeof *it);
    it->hash = hash;
    it->size = size;
    it->nkey = (uint8_t)klen;
    it->nbytes = vlen;
    it->refs = 1;
    memcpy(it->data, key, klen);
    it->data[klen + vlen] = '\r';
    it->data[klen + vlen + 1] = '\n';
    return it;
}

/* The live item with this key, its link in *linkp; a dead one is taken out. */
static struct mc_item *lookup(struct mc_store *s, const char *key, uint32_t klen, uint64_t hash,
                              uint64_t now, struct mc_item ***linkp, bool *was_dead)
{
    migrate(s, MIGRATE_STEP);
    s->st.ops++;
    struct mc_item **link = find_link(s, key, klen, hash);
    if (!link)
        return NULL;
    struct mc_item *it = *link;
    if (dead(s, it, now)) {
        if (was_dead)
            *was_dead = true;
        s->st.reclaimed++;
        unlink_at(s, link);
        return NULL;
    }
    if (linkp)
        *linkp = link;
    return it;
}

/* ---- the commands ---- */

int mc_store_init(struct mc_store *s, const struct mc_store_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    if (!s->cfg.limit_bytes)
        s->cfg.limit_bytes = DEFAULT_LIMIT;
    if (!s->cfg.max_item_size)
        s->cfg.max_item_size = MC_ITEM_MAX;
    if (!s->cfg.nshards)
        s->cfg.nshards = 1;
    if (!s->cfg.sweep_buckets)
        s->cfg.sweep_buckets = 1024;
    if (!s->cfg.sweep_period_ns)
        s->cfg.sweep_period_ns = UINT64_C(1000000000);
    sc_timer_init(&s->sweep_timer, NULL, NULL);
    sc_timer_init(&s->flush_timer, NULL, NULL);
    s->table = sc_calloc(INITIAL_BUCKETS, sizeof *s->table);
    if (!s->table)
        return -ENOMEM;
    s->mask = INITIAL_BUCKETS - 1;
    return 0;
}

void mc_store_destroy(struct mc_store *s)
{
    if (s->sweeping)
        sc_timer_cancel(&s->sweep_timer);
    sc_timer_cancel(&s->flush_timer);
    struct mc_item *it = s->lru_head;
    while (it) {
        struct mc_item *next = it->lru_next;
        sc_free(it);
        it = next;
    }
    sc_free(s->table);
    sc_free(s->old);
    memset(s, 0, sizeof *s);
}

struct mc_item *mc_store_get(struct mc_store *s, const char *key, uint32_t klen, uint64_t hash,
                             uint64_t now)
{
    bool was_dead = false;
    s->st.cmd_get++;
    struct mc_item *it = lookup(s, key, klen, hash, now, NULL, &was_dead);
    if (!it) {
        s->st.get_misses++;
        if (was_dead)
            s->st.get_expired++;
        return NULL;
    }
    s->st.get_hits++;
    lru_bump(s, it);
    return it;
}

enum mc_result mc_store_put(struct mc_store *s, enum mc_cmd cmd, const char *key, uint32_t klen,
                            uint64_t hash, uint32_t flags, uint64_t deadline, const char *value,
                            uint32_t vlen, uint64_t cas, uint64_t now)
{
    struct mc_item **link = NULL;
    s->st.cmd_set++;
    struct mc_item *old = lookup(s, key, klen, hash, now, &link, NULL);
    switch (cmd) {
    case MC_CMD_ADD:
        if (old) {
            lru_bump(s, old); /* as memcached: a refused add still counts as a use */
            return MC_NOT_STORED;
        }
        break;
    case MC_CMD_REPLACE:
    case MC_CMD_APPEND:
    case MC_CMD_PREPEND:
        if (!old)
            return MC_NOT_STORED;
        break;
    case MC_CMD_CAS:
        if (!old) {
            s->st.cas_misses++;
            return MC_NOT_FOUND;
        }
        if (old->cas != cas) {
            s->st.cas_badval++;
            return MC_EXISTS;
        }
        s->st.cas_hits++;
        break;
    case MC_CMD_SET:
        break;
    default:
        return MC_NOT_STORED;
    }
    bool join = cmd == MC_CMD_APPEND || cmd == MC_CMD_PREPEND;
    uint32_t total = vlen;
    if (join) {
        if ((uint64_t)old->nbytes + vlen > s->cfg.max_item_size)
            return MC_TOO_LARGE;
        total += old->nbytes;
        flags = old->flags; /* append and prepend keep the item's flags and deadline */
        deadline = old->deadline;
    }
    /* The old item leaves the table first (a reference keeps its bytes for
     * append/prepend), so that making room can never pull it out from under
     * us. If the new one cannot be had, the key is gone: like memcached, a
     * failed store leaves no stale value behind. */
    if (old) {
        mc_item_ref(old);
        unlink_at(s, link);
    }
    struct mc_item *it = alloc_item(s, key, klen, hash, total, now);
    if (it) {
        char *v = it->data + klen;
        if (cmd == MC_CMD_APPEND) {
            memcpy(v, mc_item_value(old), old->nbytes);
            memcpy(v + old->nbytes, value, vlen);
        } else if (cmd == MC_CMD_PREPEND) {
            memcpy(v, value, vlen);
            memcpy(v + vlen, mc_item_value(old), old->nbytes);
        } else {
            memcpy(v, value, vlen);
        }
        it->flags = flags;
        it->deadline = deadline;
        it->cas = next_cas(s);
    }
    if (old)
        mc_item_release(s, old);
    if (!it)
        return MC_NO_MEMORY;
    if (deadline == MC_EXPIRED) /* stored, and dead at once: nobody will see it */
        mc_item_release(s, it);
    else
        link_item(s, it);
    return MC_STORED;
}

enum mc_result mc_store_delete(struct mc_store *s, const char *key, uint32_t klen, uint64_t hash,
                               uint64_t now)
{
    struct mc_item **link = NULL;
    if (!lookup(s, key, klen, hash, now, &link, NULL)) {
        s->st.delete_misses++;
        return MC_NOT_FOUND;
    }
    s->st.delete_hits++;
    unlink_at(s, link);
    return MC_DELETED;
}

/* The number an item holds: digits, perhaps followed by spaces (memcached
 * pads shrunk numbers with spaces; a client may have stored such a value). */
static bool item_number(const struct mc_item *it, uint64_t *out)
{
    uint32_t n = it->nbytes;
    const char *v = mc_item_value(it);
    while (n > 0 && v[n - 1] == ' ')
        n--;
    return mc_parse_u64(v, n, out);
}

enum mc_result mc_store_arith(struct mc_store *s, bool decr, const char *key, uint32_t klen,
                              uint64_t hash, uint64_t delta, uint64_t now, uint64_t *value)
{
    struct mc_item **link = NULL;
    struct mc_item *it = lookup(s, key, klen, hash, now, &link, NULL);
    if (!it) {
        if (decr)
            s->st.decr_misses++;
        else
            s->st.incr_misses++;
        return MC_NOT_FOUND;
    }
    uint64_t v;
    if (!item_number(it, &v))
        return MC_NON_NUMERIC;
    if (decr) {
        s->st.decr_hits++;
        v = delta > v ? 0 : v - delta;
    } else {
        s->st.incr_hits++;
        v += delta; /* wraps at 2^64, as memcached */
    }
    *value = v;
    char digits[21];
    uint32_t n = (uint32_t)mc_format_u64(digits, v);
    if (it->refs == 1 && n <= it->nbytes) {
        /* In place: nobody else holds it, and the number fits. */
        memcpy(it->data + it->nkey, digits, n);
        it->data[it->nkey + n] = '\r';
        it->data[it->nkey + n + 1] = '\n';
        it->nbytes = n;
        it->cas = next_cas(s);
        lru_bump(s, it);
        return MC_ARITH_OK;
    }
    uint32_t flags = it->flags;
    uint64_t deadline = it->deadline;
    unlink_at(s, link);
    struct mc_item *fresh = alloc_item(s, key, klen, hash, n, now);
    if (!fresh)
        return MC_NO_MEMORY;
    memcpy(fresh->data + klen, digits, n);
    fresh->flags = flags;
    fresh->deadline = deadline;
    fresh->cas = next_cas(s);
    link_item(s, fresh);
    return MC_ARITH_OK;
}

enum mc_result mc_store_touch(struct mc_store *s, const char *key, uint32_t klen, uint64_t hash,
                              uint64_t deadline, uint64_t now)
{
    struct mc_item **link = NULL;
    s->st.cmd_touch++;
    struct mc_item *it = lookup(s, key, klen, hash, now, &link, NULL);
    if (!it) {
        s->st.touch_misses++;
        return MC_NOT_FOUND;
    }
    s->st.touch_hits++;
    if (deadline == MC_EXPIRED) {
        unlink_at(s, link);
        return MC_TOUCHED;
    }
    it->deadline = deadline;
    lru_bump(s, it);
    return MC_TOUCHED;
}

/* ---- flush_all and the sweep ---- */

static void sweep_step(void *arg);

static void flush_now(struct mc_store *s)
{
    s->flushed_cas = s->seq * s->cfg.nshards + s->cfg.shard;
    /* the dead items go soon, not at the next period */
    if (s->sweeping) {
        sc_timer_cancel(&s->sweep_timer);
        sc_timer_arm(&s->sweep_timer, sc_now());
    }
}

static void flush_fire(void *arg)
{
    flush_now(arg);
}

void mc_store_flush(struct mc_store *s, uint64_t at, uint64_t now)
{
    s->st.ops++;
    s->st.cmd_flush++;
    sc_timer_cancel(&s->flush_timer); /* the latest flush_all wins, as in memcached */
    if (at == 0 || at <= now) {
        flush_now(s);
        return;
    }
    sc_timer_init(&s->flush_timer, flush_fire, s);
    if (sc_timer_arm(&s->flush_timer, at) != 0)
        flush_now(s); /* no timer: flushing early beats never flushing */
}

size_t mc_store_sweep(struct mc_store *s, uint64_t now, uint32_t budget)
{
    migrate(s, budget);
    size_t taken = 0;
    for (uint32_t i = 0; i < budget; i++) {
        if (s->sweep_pos > s->mask)
            s->sweep_pos = 0;
        struct mc_item **link = &s->table[s->sweep_pos++];
        while (*link) {
            if (dead(s, *link, now)) {
                s->st.reclaimed++;
                s->st.expired_swept++;
                unlink_at(s, link);
                taken++;
            } else {
                link = &(*link)->hnext;
            }
        }
        if (s->sweep_pos > s->mask)
            break; /* a whole pass: the timer waits a period before the next */
    }
    return taken;
}

static void sweep_step(void *arg)
{
    struct mc_store *s = arg;
    uint64_t now = sc_now();
    mc_store_sweep(s, now, s->cfg.sweep_buckets);
    bool pass_done = s->sweep_pos > s->mask;
    if (pass_done)
        s->sweep_pos = 0;
    /* A pass is spread over steps 1 ms apart, so that one step is short. */
    sc_timer_arm(&s->sweep_timer, now + (pass_done ? s->cfg.sweep_period_ns : SWEEP_STEP_NS));
}

int mc_store_start_sweeper(struct mc_store *s)
{
    sc_timer_init(&s->sweep_timer, sweep_step, s);
    int err = sc_timer_arm_in(&s->sweep_timer, s->cfg.sweep_period_ns);
    if (err == 0)
        s->sweeping = true;
    return err;
}

/* ---- self-check ---- */

static int check_chain(const struct mc_store *s, struct mc_item *const *b, uint64_t idx,
                       uint64_t mask, uint64_t *items, uint64_t *bytes)
{
    for (const struct mc_item *it = *b; it; it = it->hnext) {
        if ((it->hash & mask) != idx || !it->linked || it->refs < 1)
            return -__LINE__;
        if (it->hash != mc_hash(it->data, it->nkey))
            return -__LINE__;
        if (it->data[it->nkey + it->nbytes] != '\r' || it->data[it->nkey + it->nbytes + 1] != '\n')
            return -__LINE__;
        (*items)++;
        *bytes += it->size;
    }
    (void)s;
    return 0;
}

int mc_store_check(const struct mc_store *s)
{
    uint64_t items = 0, bytes = 0;
    int r;
    for (uint64_t i = 0; i <= s->mask; i++)
        if ((r = check_chain(s, &s->table[i], i, s->mask, &items, &bytes)))
            return r;
    if (s->old)
        for (uint64_t i = 0; i <= s->old_mask; i++) {
            if (i < s->migrate_pos && s->old[i])
                return -__LINE__; /* a moved bucket must be empty */
            if ((r = check_chain(s, &s->old[i], i, s->old_mask, &items, &bytes)))
                return r;
        }
    if (items != s->st.curr_items || bytes != s->st.bytes)
        return -__LINE__;
    uint64_t n = 0;
    const struct mc_item *prev = NULL;
    for (const struct mc_item *it = s->lru_head; it; it = it->lru_next) {
        if (it->lru_prev != prev)
            return -__LINE__;
        prev = it;
        n++;
    }
    if (n != items || s->lru_tail != prev)
        return -__LINE__;
    if (bytes > s->cfg.limit_bytes)
        return -__LINE__;
    return 0;
}
