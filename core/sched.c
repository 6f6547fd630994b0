/*
 * sched.c — which scheduling group runs next: share-proportional selection
 * by virtual runtime.
 *
 * Each group keeps a virtual runtime: the CPU time it used, divided by its
 * shares (times a constant, so that integers keep the precision). The
 * reactor always runs the active group whose virtual runtime is the least,
 * for one task quota at most, then charges what it used and chooses again.
 * A group with twice the shares has its clock run half as fast, so it is
 * chosen until it has used twice the CPU: over time every busy group gets
 * CPU in proportion to its shares, and at any moment no busy group is ahead
 * of another by more than one slice's worth of virtual time.
 *
 * A group that was idle must not come back with a small virtual runtime and
 * then run alone until it catches up: that would be a burst that starves
 * everyone else, paid for with credit "saved" while it had nothing to do.
 * So a group that wakes up starts no lower than the least virtual runtime
 * of the groups that kept running (min_vruntime).
 *
 * This file is the whole policy; the queues and the clock reads are in
 * reactor.c. Lab 07 hands it to students.
 */
#include "core/sched_impl.h"

/* When virtual runtimes get this large, every group is moved back by the
 * same amount; only their differences matter. A group with 1 share reaches
 * it after about 53 days of CPU. */
#define REBASE_AT (UINT64_C(1) << 62)

unsigned sc__sched_pick(struct sc__sched *sc)
{
    /* LAB 07 BEGIN: least vruntime among the active, lowest id on a tie; raise min_vruntime */
    unsigned best = SC__SCHED_NONE;
    for (uint32_t m = sc->active; m; m &= m - 1) {
        unsigned g = (unsigned)__builtin_ctz(m);
        if (best == SC__SCHED_NONE || sc->acct[g].vruntime < sc->acct[best].vruntime)
            best = g;
    }
    if (sc->acct[best].vruntime > sc->min_vruntime)
        sc->min_vruntime = sc->acct[best].vruntime;
    return best;
    /* LAB 07 END: return (unsigned)__builtin_ctz(sc->active); */
}

static void rebase(struct sc__sched *sc)
{
    uint64_t base = sc->min_vruntime;
    for (unsigned g = 0; g < SC_SCHED_MAX_GROUPS; g++)
        sc->acct[g].vruntime = sc->acct[g].vruntime > base ? sc->acct[g].vruntime - base : 0;
    sc->min_vruntime = 0;
}

void sc__sched_charge(struct sc__sched *sc, unsigned g, uint64_t delta, unsigned shares)
{
    /* LAB 07 BEGIN: the vruntime grows by delta scaled by SC__SCHED_SCALE / shares */
    sc->acct[g].vruntime += delta * SC__SCHED_SCALE / shares;
    /* LAB 07 END: (void)g, (void)delta, (void)shares; */
    if (sc->min_vruntime >= REBASE_AT)
        rebase(sc);
}

void sc__sched_wake(struct sc__sched *sc, unsigned g)
{
    /* LAB 07 BEGIN: no credit for idle time: start no lower than min_vruntime */
    if (sc->acct[g].vruntime < sc->min_vruntime)
        sc->acct[g].vruntime = sc->min_vruntime;
    /* LAB 07 END: (void)sc, (void)g; */
}
