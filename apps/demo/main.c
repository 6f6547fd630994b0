#include <stdio.h>
#include "core/seacore.h"
static struct sc_future done(void *cap, intptr_t v) { (void)cap; printf("slept, v=%ld now=%llu\n", (long)v, (unsigned long long)sc_now()); return sc_make_ready(0); }
static struct sc_future demo_main(void *arg, int argc, char **argv) { (void)arg; (void)argc; (void)argv; return sc_then(sc_sleep(SC_SEC(3600)), done, NULL, 0); }
int main(int argc, char **argv) { return sc_app_run(argc, argv, demo_main); }
