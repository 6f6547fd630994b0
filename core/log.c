/*
 * log.c — stderr logging with the shard id, error strings, assertion failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/shard_impl.h"

static enum sc_log_level log_level = SC_LOG_INFO;

void sc_log_set_level(enum sc_log_level level)
{
    log_level = level;
}

static const char *level_names[] = {"error", "warn", "info", "debug"};

static void vlog(enum sc_log_level level, const char *fmt, va_list ap)
{
    /* One fprintf per line: the line is built first so that two shards
     * logging at once never interleave inside a line. */
    char line[1024];
    int n;
    struct sc__shard *s = sc__shard();
    if (s)
        n = snprintf(line, sizeof line, "[shard %u] %s: ", s->id, level_names[level]);
    else
        n = snprintf(line, sizeof line, "[seacore] %s: ", level_names[level]);
    if (n < 0)
        return;
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    fprintf(stderr, "%s\n", line);
}

void sc_log(enum sc_log_level level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

const char *sc_strerror(int err)
{
    if (err > 0)
        err = -err;
    switch (err) {
    case SC_EBROKEN_PROMISE:
        return "broken promise (abandoned without a value)";
    case SC_ETIMEDOUT:
        return "timed out (with_timeout)";
    case SC_ELAB_TODO:
        return "lab region not implemented yet";
    case SC_EEOF:
        return "end of stream";
    case SC_EGATE_CLOSED:
        return "gate closed";
    case SC_EBROKEN:
        return "broken (semaphore, condition variable or queue)";
    case 0:
        return "success";
    default:
        return strerror(-err);
    }
}

void sc__assert_fail(const char *expr, const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct sc__shard *s = sc__shard();
    fprintf(stderr, "[shard %d] assertion failed at %s:%d: %s (%s)\n", s ? (int)s->id : -1, file,
            line, msg, expr);
    fflush(stderr);
    abort();
}
