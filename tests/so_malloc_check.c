/*
 * so_malloc_check.c — a program linked with libseacore.so (not the .a, as
 * every other test is): malloc, calloc, realloc and glibc's own callers
 * (strdup) must reach the shard's allocator through the shared library too,
 * and --malloc=system must keep them away from it. Exit 0 when both hold.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/seacore.h"

static struct sc_future check(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    bool system = *(bool *)arg;
    struct sc_memory_stats a, b;
    sc_memory_stats(&a);
    /* volatile: the compiler may not drop an allocation nobody reads */
    char *volatile s = strdup("through the shared library");
    void *volatile m = malloc(300);
    void *volatile c = calloc(3, 100);
    m = realloc(m, 600);
    sc_memory_stats(&b);
    uint64_t got = b.small_objects - a.small_objects, want = system ? 0 : 3;
    free(s), free(m), free(c);
    if (b.bypassed)
        return sc_make_ready(0); /* sanitizer build: the C library serves everything */
    if (got != want)
        fprintf(stderr,
                "so_malloc_check: --malloc=%s: %llu new objects on the shard, expected %llu\n",
                system ? "system" : "seacore", (unsigned long long)got, (unsigned long long)want);
    return sc_make_ready(got == want ? 0 : 1);
}

int main(void)
{
    int rc = 0;
    for (int world = 0; world < 2; world++)
        for (int system = 0; system < 2; system++) {
            struct sc_config cfg;
            sc_config_default(&cfg);
            cfg.backend = world ? SC_BACKEND_REAL : SC_BACKEND_SIM;
            cfg.quiet = true;
            cfg.smp = 1;
            cfg.system_malloc = system;
            bool arg = system;
            rc |= sc_run(&cfg, check, &arg, 0, NULL);
        }
    return rc;
}
