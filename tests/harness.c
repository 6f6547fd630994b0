/*
 * harness.c — see harness.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

#define TR_MAX  64
#define TR_LINE 160

static char transcript[TR_MAX][TR_LINE];
static unsigned tr_len, tr_dropped;

const enum sc_backend t_backends[2] = {SC_BACKEND_SIM, SC_BACKEND_REAL};
const char *const t_backend_names[2] = {"sim", "real"};

void tr_reset(void)
{
    tr_len = tr_dropped = 0;
}

void tr_step(const char *fmt, ...)
{
    /* Keep the last TR_MAX steps: the end of the story matters most. */
    if (tr_len == TR_MAX) {
        memmove(transcript[0], transcript[1], (TR_MAX - 1) * TR_LINE);
        tr_len--;
        tr_dropped++;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(transcript[tr_len++], TR_LINE, fmt, ap);
    va_end(ap);
}

void tr_dump(void)
{
    fprintf(stderr, "---- transcript (%u earlier steps not shown) ----\n", tr_dropped);
    for (unsigned i = 0; i < tr_len; i++)
        fprintf(stderr, "  %2u. %s\n", i + 1 + tr_dropped, transcript[i]);
    fprintf(stderr, "---- end of transcript ----\n");
}

struct sc_config t_config(enum sc_backend backend)
{
    struct sc_config cfg;
    sc_config_default(&cfg);
    cfg.backend = backend;
    cfg.seed = 1;
    cfg.seed_given = true;
    cfg.quiet = true;
    return cfg;
}

int t_run(enum sc_backend backend, sc_main_fn fn, void *arg)
{
    struct sc_config cfg = t_config(backend);
    tr_step("run on the %s backend", backend == SC_BACKEND_SIM ? "sim" : "real");
    return sc_run(&cfg, fn, arg, 0, NULL);
}

int t_main(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
