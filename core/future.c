/*
 * future.c — futures, promises, continuations and the error ledger.
 *
 * Read future_impl.h first: it says how a shared state passes one outcome
 * from one producer to one consumer. This file builds the public API on it:
 * sc_then and its siblings allocate a continuation record that holds, in one
 * pool allocation, the captured state, the task that will run it, and the
 * shared state of the future it returns.
 */
#include <stdlib.h>
#include <string.h>

#include "core/future_impl.h"
#include "core/loop.h"

/* ------------------------------------------------------------------ */
/* The error ledger                                                     */
/* ------------------------------------------------------------------ */

/*
 * Every failed future names an entry here (file, line, error). Handling the
 * error releases the entry; an entry still live at shutdown, or one that
 * reaches sc_future_discard(), is reported with where it was made. Only the
 * error path pays for this: successful futures never touch the ledger.
 * An id is (generation << 32 | index), so a released entry that is used
 * again is caught as a double use.
 */

#define LEDGER_NONE UINT32_MAX

uintptr_t sc__ledger_add(int err, const char *file, int line)
{
    struct sc__ledger *l = &sc__shard()->ledger;
    uint32_t i;
    if (l->free_head != LEDGER_NONE && l->cap) {
        i = l->free_head;
        l->free_head = l->e[i].next_free;
    } else {
        if (l->used == l->cap) {
            uint32_t ncap = l->cap ? l->cap * 2 : 64;
            struct sc__ledger_entry *ne = realloc(l->e, ncap * sizeof *ne);
            if (!ne) {
                /* Without an entry the error still travels; it just cannot
                 * say where it came from. Index 0 of generation 0 is never
                 * valid, and release() ignores it. */
                return 0;
            }
            l->e = ne;
            l->cap = ncap;
        }
        i = l->used++;
    }
    if (++l->gen == 0)
        l->gen = 1;
    l->e[i] = (struct sc__ledger_entry){
        .file = file, .line = line, .err = err, .gen = l->gen, .next_free = LEDGER_NONE};
    l->live++;
    return ((uintptr_t)l->gen << 32) | i;
}

static struct sc__ledger_entry *ledger_find(uintptr_t id)
{
    struct sc__ledger *l = &sc__shard()->ledger;
    uint32_t i = (uint32_t)id, gen = (uint32_t)(id >> 32);
    if (gen == 0)
        return NULL; /* the entry could not be recorded (out of memory) */
    SC_ASSERT(i < l->used && l->e[i].gen == gen,
              "failed future used twice (or not made by this shard)");
    return &l->e[i];
}

void sc__ledger_take(uintptr_t id, const char **file, int *line)
{
    struct sc__ledger_entry *e = ledger_find(id);
    *file = e ? e->file : "(unknown: the ledger was out of memory)";
    *line = e ? e->line : 0;
    sc__ledger_release(id);
}

void sc__ledger_release(uintptr_t id)
{
    struct sc__ledger_entry *e = ledger_find(id);
    if (!e)
        return;
    struct sc__ledger *l = &sc__shard()->ledger;
    e->gen = 0;
    e->next_free = l->free_head;
    l->free_head = (uint32_t)(e - l->e);
    l->live--;
}

void sc__ledger_log(uintptr_t id, int level, const char *why)
{
    struct sc__ledger_entry *e = ledger_find(id);
    if (e)
        sc_log((enum sc_log_level)level, "%s: error %d (%s), made at %s:%d", why, e->err,
               sc_strerror(e->err), e->file, e->line);
    else
        sc_log((enum sc_log_level)level, "%s (origin unknown: the ledger was out of memory)", why);
    sc__ledger_release(id);
}

void sc__ledger_report(uintptr_t id, const char *why)
{
    sc__shard()->stats.unhandled_errors++;
    sc__ledger_log(id, SC_LOG_WARN, why);
}

void sc__ledger_report_all(void)
{
    struct sc__ledger *l = &sc__shard()->ledger;
    for (uint32_t i = 0; i < l->used; i++)
        if (l->e[i].gen)
            sc__ledger_report(((uintptr_t)l->e[i].gen << 32) | i,
                              "failed future was never handled");
}

struct sc_future sc__make_error(int err, const char *file, int line)
{
    if (err > 0)
        err = -err;
    if (err == 0)
        err = -EINVAL;
    return sc__failed(sc__ledger_add(err, file, line), err);
}

/* ------------------------------------------------------------------ */
/* Shared states                                                        */
/* ------------------------------------------------------------------ */

static void forward_wake(struct sc__waiter *w, intptr_t value, int err);

void sc__fstate_init(struct sc__fstate *st, size_t mem_size, size_t offset)
{
    struct sc__shard *s = sc__shard();
    if (++s->fstate_gen == 0)
        s->fstate_gen = 1;
    st->fwd.wake = forward_wake;
    st->waiter = NULL;
    st->value = 0;
    st->err = 0;
    st->gen = s->fstate_gen;
    st->mem_size = (uint32_t)mem_size;
    st->offset = (uint16_t)offset;
    st->resolved = 0;
}

struct sc__fstate *sc__fstate_new(void)
{
    struct sc__fstate *st = sc__pool_alloc(sizeof *st);
    if (st)
        sc__fstate_init(st, sizeof *st, 0);
    return st;
}

static void fstate_free(struct sc__fstate *st)
{
    st->gen = 0; /* a stale future that still points here now fails its check */
    sc__pool_free((char *)st - st->offset, st->mem_size);
}

struct sc_future sc__fstate_future(struct sc__fstate *st)
{
    struct sc_future f = {.st = st, .err = 0, .gen = st->gen};
    return f;
}

static struct sc__fstate *checked_state(struct sc_future f)
{
    SC_ASSERT(f.st->gen == f.gen, "future used twice (its state is gone)");
    SC_ASSERT(f.st->waiter == NULL, "future used twice (it already has a consumer)");
    return f.st;
}

/*
 * Producer side. A forward (a continuation returned a pending future, whose
 * outcome must become our outcome) is followed in a loop rather than by
 * recursion, so a long chain of forwards cannot overflow the stack.
 */
void sc__fstate_resolve(struct sc__fstate *st, intptr_t value, int err)
{
    for (;;) {
        SC_ASSERT(!st->resolved, "shared state resolved twice");
        struct sc__waiter *w = st->waiter;
        if (!w) {
            st->value = value;
            st->err = err;
            st->resolved = 1;
            return; /* the consumer will pick it up and free the state */
        }
        fstate_free(st);
        if (w->wake != forward_wake) {
            w->wake(w, value, err);
            return;
        }
        st = SC_CONTAINER_OF(w, struct sc__fstate, fwd);
    }
}

static void forward_wake(struct sc__waiter *w, intptr_t value, int err)
{
    sc__fstate_resolve(SC_CONTAINER_OF(w, struct sc__fstate, fwd), value, err);
}

void sc__future_settle(struct sc_future *f)
{
    if (f->gen == 0)
        return;
    struct sc__fstate *st = checked_state(*f);
    if (!st->resolved)
        return;
    struct sc_future r = {.value = st->value, .err = st->err, .gen = 0};
    fstate_free(st);
    *f = r;
}

void sc__future_attach(struct sc_future f, struct sc__waiter *w)
{
    if (f.gen == 0) {
        w->wake(w, f.value, f.err);
        return;
    }
    struct sc__fstate *st = checked_state(f);
    if (st->resolved) {
        intptr_t value = st->value;
        int err = st->err;
        fstate_free(st);
        w->wake(w, value, err);
        return;
    }
    st->waiter = w;
}

void sc__future_forward(struct sc_future f, struct sc__fstate *target)
{
    if (f.gen == 0)
        sc__fstate_resolve(target, f.value, f.err); /* the common case: no forward link */
    else
        sc__future_attach(f, &target->fwd);
}

/* ------------------------------------------------------------------ */
/* Inspecting and dropping futures                                      */
/* ------------------------------------------------------------------ */

bool sc_future_available(struct sc_future f)
{
    if (f.gen == 0)
        return true;
    SC_ASSERT(f.st->gen == f.gen, "future used after it was consumed");
    return f.st->resolved;
}

bool sc_future_failed(struct sc_future f)
{
    if (f.gen == 0)
        return f.err != 0;
    SC_ASSERT(f.st->gen == f.gen, "future used after it was consumed");
    return f.st->resolved && f.st->err != 0;
}

int sc_future_get(struct sc_future f, intptr_t *value)
{
    sc__future_settle(&f);
    SC_ASSERT(f.gen == 0, "sc_future_get() on a future that is not available yet");
    if (f.err) {
        sc__ledger_release(f.ledger);
        return f.err;
    }
    if (value)
        *value = f.value;
    return 0;
}

static void discard_wake(struct sc__waiter *w, intptr_t value, int err)
{
    (void)w;
    if (err)
        sc__ledger_report((uintptr_t)value, "failed future was discarded");
}

static void ignore_wake(struct sc__waiter *w, intptr_t value, int err)
{
    (void)w;
    if (err)
        sc__ledger_release((uintptr_t)value);
}

/* Waiters that need no memory of their own: one shared, read-only copy. */
static struct sc__waiter discard_waiter = {discard_wake};
static struct sc__waiter ignore_waiter = {ignore_wake};

void sc_future_discard(struct sc_future f)
{
    sc__future_attach(f, &discard_waiter);
}

void sc_future_ignore(struct sc_future f)
{
    sc__future_attach(f, &ignore_waiter);
}

/* ------------------------------------------------------------------ */
/* Continuations                                                        */
/* ------------------------------------------------------------------ */

enum cont_kind { CONT_THEN, CONT_WRAPPED, CONT_FINALLY, CONT_HANDLE };

struct cont {
    struct sc__fstate result; /* the future sc_then() returned */
    struct sc__waiter w;      /* attached to the input future */
    struct sc_task task;      /* runs the continuation */
    void *fn;
    intptr_t in_value; /* the input's outcome, once it arrived */
    int32_t in_err;
    uint8_t kind;
    _Alignas(16) unsigned char cap[]; /* the captured state, copied */
};

static void cont_wake(struct sc__waiter *w, intptr_t value, int err);
static void cont_run(struct sc_task *t);

static struct cont *cont_new(enum cont_kind kind, void *fn, const void *cap, size_t cap_size)
{
    size_t size = sizeof(struct cont) + cap_size;
    struct cont *c = sc__pool_alloc(size);
    if (!c)
        return NULL;
    sc__fstate_init(&c->result, size, 0);
    c->w.wake = cont_wake;
    c->task.run = cont_run;
    /* A continuation runs in the group that made it, whoever resolves its input. */
    c->task.group = sc__shard()->sched.current;
    c->fn = fn;
    c->kind = (uint8_t)kind;
    if (cap_size == sizeof(void *)) /* the common capture: one pointer; skip memcpy's call */
        memcpy(c->cap, cap, sizeof(void *));
    else if (cap_size)
        memcpy(c->cap, cap, cap_size);
    return c;
}

/* The continuation could not be allocated: consume the input quietly (its
 * own error, if any, is superseded) and fail with -ENOMEM. */
static struct sc_future no_memory(struct sc_future f)
{
    sc_future_ignore(f);
    return sc_make_error(-ENOMEM);
}

static void cont_wake(struct sc__waiter *w, intptr_t value, int err)
{
    struct cont *c = SC_CONTAINER_OF(w, struct cont, w);
    c->in_value = value;
    c->in_err = err;
    sc__task_enqueue(sc__shard(), &c->task);
}

/* sc_finally: the cleanup's future has resolved; pass on the original. */
static void finally_done(struct sc__waiter *w, intptr_t value, int err)
{
    struct cont *c = SC_CONTAINER_OF(w, struct cont, w);
    if (err && c->in_err) {
        sc__ledger_report((uintptr_t)value, "error in sc_finally cleanup (original error kept)");
        err = 0;
    }
    if (err)
        sc__fstate_resolve(&c->result, value, err);
    else
        sc__fstate_resolve(&c->result, c->in_value, c->in_err);
}

static void cont_run(struct sc_task *t)
{
    struct cont *c = SC_CONTAINER_OF(t, struct cont, task);
    struct sc_future r;
    switch (c->kind) {
    case CONT_THEN:
        /* LAB 02 BEGIN: run the continuation, or pass the input's error on */
        if (c->in_err)
            r = sc__failed((uintptr_t)c->in_value, c->in_err);
        else
            r = ((sc_then_fn)c->fn)(c->cap, c->in_value);
        /* LAB 02 END: r = sc_make_error(SC_ELAB_TODO); */
        break;
    case CONT_WRAPPED:
        if (c->in_err) {
            sc__ledger_release((uintptr_t)c->in_value);
            c->in_value = 0;
        }
        r = ((sc_wrapped_fn)c->fn)(c->cap, c->in_value, c->in_err);
        break;
    case CONT_HANDLE:
        if (c->in_err) {
            sc__ledger_release((uintptr_t)c->in_value);
            r = ((sc_error_fn)c->fn)(c->cap, c->in_err);
        } else {
            r = sc_make_ready(c->in_value);
        }
        break;
    default: /* CONT_FINALLY: wait for the cleanup, then pass the input on */
        r = ((sc_finally_fn)c->fn)(c->cap);
        c->w.wake = finally_done;
        sc__future_attach(r, &c->w);
        return;
    }
    /* LAB 02 BEGIN: hand r's outcome to the future sc_then() returned */
    sc__future_forward(r, &c->result);
    /* LAB 02 END */
}

/*
 * sc_then is split in two so that the common case compiles to almost
 * nothing: when the input is ready with a value and the quota word is clear,
 * the continuation is a tail call on the caller's captured state. Everything
 * else — a pending input, an error, a spent quota (which may still let the
 * continuation run at once: sc__defer_ready decides) — goes to then_slow.
 */
static struct sc_future then_slow(struct sc_future f, sc_then_fn fn, const void *cap,
                                  size_t cap_size) __attribute__((noinline));

static struct sc_future then_slow(struct sc_future f, sc_then_fn fn, const void *cap,
                                  size_t cap_size)
{
    /* LAB 02 BEGIN: a settled input runs at once (errors pass through); else a record */
    sc__future_settle(&f);
    if (f.gen == 0) {
        if (f.err)
            return f;
        if (!sc__defer_ready())
            return fn((void *)cap, f.value);
    }
    struct cont *c = cont_new(CONT_THEN, (void *)fn, cap, cap_size);
    if (!c)
        return no_memory(f);
    sc__future_attach(f, &c->w);
    return sc__fstate_future(&c->result);
    /* LAB 02 END: return sc_make_error(SC_ELAB_TODO); */
}

struct sc_future sc_then(struct sc_future f, sc_then_fn fn, const void *cap, size_t cap_size)
{
    /* LAB 02 BEGIN: the ready fast path (no allocation, no task) */
    if (__builtin_expect(f.gen == 0 && f.err == 0 && sc__preempt == 0, 1))
        return fn((void *)cap, f.value);
    /* LAB 02 END */
    return then_slow(f, fn, cap, cap_size);
}

struct sc_future sc_then_wrapped(struct sc_future f, sc_wrapped_fn fn, const void *cap,
                                 size_t cap_size)
{
    sc__future_settle(&f);
    if (f.gen == 0 && !sc__defer_ready()) {
        if (f.err) {
            sc__ledger_release(f.ledger);
            f.value = 0;
        }
        return fn((void *)cap, f.value, f.err);
    }
    struct cont *c = cont_new(CONT_WRAPPED, (void *)fn, cap, cap_size);
    if (!c)
        return no_memory(f);
    sc__future_attach(f, &c->w);
    return sc__fstate_future(&c->result);
}

struct sc_future sc_handle_error(struct sc_future f, sc_error_fn fn, const void *cap,
                                 size_t cap_size)
{
    sc__future_settle(&f);
    if (f.gen == 0) {
        if (!f.err)
            return f;
        if (!sc__defer_ready()) {
            sc__ledger_release(f.ledger);
            return fn((void *)cap, f.err);
        }
    }
    struct cont *c = cont_new(CONT_HANDLE, (void *)fn, cap, cap_size);
    if (!c)
        return no_memory(f);
    sc__future_attach(f, &c->w);
    return sc__fstate_future(&c->result);
}

struct sc_future sc_finally(struct sc_future f, sc_finally_fn fn, const void *cap, size_t cap_size)
{
    /* The cleanup's future may be pending even when f is ready, so finally
     * always takes a record: it must remember f's outcome while waiting. */
    struct cont *c = cont_new(CONT_FINALLY, (void *)fn, cap, cap_size);
    if (!c)
        return no_memory(f);
    sc__future_attach(f, &c->w);
    return sc__fstate_future(&c->result);
}

/* ------------------------------------------------------------------ */
/* Promises                                                             */
/* ------------------------------------------------------------------ */

/*
 * A promise's shared state is allocated when its future is taken. Before
 * that, an outcome set early is kept in the state pointer's place: the
 * future taken afterwards is simply ready.
 */
enum {
    PROMISE_EMPTY,   /* nothing yet */
    PROMISE_WAITING, /* the future was taken; the state waits for the outcome */
    PROMISE_SET,     /* the outcome came first; the future is not taken yet */
    PROMISE_DONE,    /* outcome and future met; setting again is a bug */
    PROMISE_LOST,    /* the future could not be made (out of memory): outcomes are dropped */
};

void sc_promise_init(struct sc_promise *p)
{
    p->st = NULL;
    p->value = 0;
    p->err = 0;
    p->phase = PROMISE_EMPTY;
}

struct sc_future sc_promise_get_future(struct sc_promise *p)
{
    SC_ASSERT(p->phase == PROMISE_EMPTY || p->phase == PROMISE_SET,
              "sc_promise_get_future() called twice");
    if (p->phase == PROMISE_SET) {
        p->phase = PROMISE_DONE;
        struct sc_future f = {.value = p->value, .err = p->err, .gen = 0};
        return f;
    }
    p->st = sc__fstate_new();
    if (!p->st) {
        p->phase = PROMISE_LOST;
        return sc_make_error(-ENOMEM);
    }
    p->phase = PROMISE_WAITING;
    return sc__fstate_future(p->st);
}

static void promise_settle(struct sc_promise *p, intptr_t value, int err)
{
    switch (p->phase) {
    case PROMISE_EMPTY:
        p->value = value;
        p->err = err;
        p->phase = PROMISE_SET;
        return;
    case PROMISE_WAITING: {
        struct sc__fstate *st = p->st;
        p->st = NULL;
        p->phase = PROMISE_DONE;
        sc__fstate_resolve(st, value, err);
        return;
    }
    case PROMISE_LOST:
        if (err)
            sc__ledger_release((uintptr_t)value);
        return;
    default:
        SC_ASSERT(0, "promise set twice");
    }
}

void sc_promise_set_value(struct sc_promise *p, intptr_t value)
{
    promise_settle(p, value, 0);
}

void sc__promise_set_error(struct sc_promise *p, int err, const char *file, int line)
{
    struct sc_future f = sc__make_error(err, file, line);
    promise_settle(p, (intptr_t)f.ledger, f.err);
}

void sc_promise_abandon(struct sc_promise *p)
{
    if (p->phase == PROMISE_WAITING) {
        sc__promise_set_error(p, SC_EBROKEN_PROMISE, __FILE__, __LINE__);
    } else if (p->phase == PROMISE_SET) {
        if (p->err)
            sc__ledger_release((uintptr_t)p->value);
        p->phase = PROMISE_DONE;
    } else if (p->phase == PROMISE_EMPTY) {
        p->phase = PROMISE_DONE;
    } /* WAITING handled above; DONE and LOST have nothing left to give up */
}

/* ------------------------------------------------------------------ */
/* Spawning                                                             */
/* ------------------------------------------------------------------ */

struct sc_future sc__spawn_in(uint32_t group, sc_then_fn fn, const void *cap, size_t cap_size)
{
    struct cont *c = cont_new(CONT_THEN, (void *)fn, cap, cap_size);
    if (!c)
        return sc_make_error(-ENOMEM);
    c->in_value = 0;
    c->in_err = 0;
    c->task.group = group;
    sc__task_enqueue(sc__shard(), &c->task);
    return sc__fstate_future(&c->result);
}

struct sc_future sc_spawn(sc_then_fn fn, const void *cap, size_t cap_size)
{
    return sc__spawn_in(sc__shard()->sched.current, fn, cap, cap_size);
}

static struct sc_future yield_done(void *cap, intptr_t value)
{
    (void)cap;
    return sc_make_ready(value);
}

struct sc_future sc_yield(void)
{
    return sc_spawn(yield_done, NULL, 0);
}
