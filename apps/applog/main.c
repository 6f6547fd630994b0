/*
 * seacore-applog — the append-only log of log.h as a program: open (and
 * recover) a log, append N records from several writer fibers, wait until
 * every one is durable, and print what it took: records, commits (how many
 * records each flush carried: group commit), blocks written, and the
 * latency of an acknowledgement.
 *
 *   seacore-applog                       the simulator: a simulated disk, virtual time
 *   seacore-applog --backend real        a real file (default /tmp/seacore-applog-PID.log)
 *   seacore-applog --records 5000 --writers 8 --size 200 --path my.log --keep
 *
 * In the simulator the disk starts empty on every run; on the real machine
 * the file is removed at the end unless --keep is given, and a second run
 * with --keep --path reuses (and recovers) it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "apps/applog/log.h"
#include "core/seacore.h"
#include "disk/file.h"

static long records_opt = 2000, writers_opt = 4, size_opt = 100;
static const char *path_opt;
static bool keep_opt;
static char path[256];

static struct {
    uint64_t recovered_bytes;
    uint64_t lat_sum, lat_max, acked, failed;
} R;

static void found(void *arg, uint64_t seq, const void *data, uint32_t len)
{
    (void)arg, (void)seq, (void)data;
    R.recovered_bytes += len;
}

struct writer {
    struct applog *log;
    long records;
};

static struct sc_future writer_fiber(void *cap)
{
    struct writer *w = cap;
    char data[APPLOG_MAX_PAYLOAD];
    for (long i = 0; i < w->records; i++) {
        uint32_t len = (uint32_t)size_opt;
        for (uint32_t j = 0; j < len; j++)
            data[j] = (char)('a' + (i + j) % 26);
        uint64_t t0 = sc_now();
        int rc = sc_await(applog_append(w->log, data, len, NULL), NULL);
        if (rc < 0) {
            R.failed++;
            continue;
        }
        uint64_t lat = sc_now() - t0;
        R.lat_sum += lat;
        R.lat_max = lat > R.lat_max ? lat : R.lat_max;
        R.acked++;
    }
    return sc_make_ready(0);
}

static struct sc_future app_fiber(void *cap)
{
    (void)cap;
    intptr_t v;
    uint64_t t0 = sc_now();
    int rc = sc_await(applog_open(path, NULL, found, NULL), &v);
    if (rc < 0) {
        fprintf(stderr, "seacore-applog: cannot open %s: %s\n", path, sc_strerror(rc));
        return sc_make_ready(1);
    }
    struct applog *log = (struct applog *)v;
    struct applog_stats st;
    applog_stats(log, &st);
    printf("opened %s: recovered %" PRIu64 " records (%" PRIu64 " payload bytes) in %.3f ms\n",
           path, st.recovered, R.recovered_bytes, (double)(sc_now() - t0) / 1e6);
    long nw = writers_opt;
    struct sc_future fs[64];
    t0 = sc_now();
    for (long i = 0; i < nw; i++) {
        struct writer w = {log, records_opt / nw + (i < records_opt % nw)};
        fs[i] = SC_THREAD_SPAWN(writer_fiber, w, NULL);
    }
    rc = sc_await(sc_when_all_succeed(fs, (size_t)nw), NULL);
    uint64_t took = sc_now() - t0;
    applog_stats(log, &st);
    int crc = sc_await(applog_close(log), NULL);
    if (rc < 0 || crc < 0) {
        fprintf(stderr, "seacore-applog: %s\n", sc_strerror(rc < 0 ? rc : crc));
        return sc_make_ready(1);
    }
    double secs = (double)took / 1e9;
    printf("appended %" PRIu64 " records of %ld bytes from %ld writers in %.3f ms%s\n", st.appended,
           size_opt, nw, secs * 1e3, sc_is_simulated() ? " (virtual)" : "");
    printf("  acknowledged %" PRIu64 ", failed %" PRIu64 "; %.0f records/s\n", R.acked, R.failed,
           secs > 0 ? (double)R.acked / secs : 0.0);
    printf("  commits %" PRIu64 " (%.1f records per flush), retries %" PRIu64
           ", blocks written %" PRIu64 "\n",
           st.commits, st.commits ? (double)st.acked / (double)st.commits : 0.0, st.retries,
           st.blocks_written);
    printf("  acknowledgement latency: mean %.1f us, max %.1f us\n",
           R.acked ? (double)R.lat_sum / (double)R.acked / 1e3 : 0.0, (double)R.lat_max / 1e3);
    if (!sc_is_simulated() && !keep_opt) {
        rc = sc_await(sc_file_remove(path), NULL);
        if (rc < 0)
            fprintf(stderr, "seacore-applog: cannot remove %s: %s\n", path, sc_strerror(rc));
    }
    return sc_make_ready(R.failed ? 1 : 0);
}

static struct sc_future app(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (records_opt < 1 || writers_opt < 1 || writers_opt > 64 || size_opt < 1 ||
        size_opt > (long)APPLOG_MAX_PAYLOAD) {
        fprintf(stderr, "seacore-applog: --records >= 1, --writers 1..64, --size 1..%u\n",
                APPLOG_MAX_PAYLOAD);
        return sc_make_ready(2);
    }
    if (path_opt)
        snprintf(path, sizeof path, "%s", path_opt);
    else if (sc_is_simulated())
        snprintf(path, sizeof path, "applog/demo.log");
    else
        snprintf(path, sizeof path, "/tmp/seacore-applog-%ld.log", (long)getpid());
    return sc_thread_spawn(app_fiber, NULL, 0, NULL);
}

int main(int argc, char **argv)
{
    static const struct sc_app_opt opts[] = {
        {"records", SC_OPT_INT, &records_opt, "N: records to append (default 2000)"},
        {"writers", SC_OPT_INT, &writers_opt, "N: writer fibers (default 4)"},
        {"size", SC_OPT_INT, &size_opt, "N: payload bytes per record (default 100)"},
        {"path", SC_OPT_STRING, &path_opt, "PATH: the log file"},
        {"keep", SC_OPT_FLAG, &keep_opt, "keep the file at the end (real world)"},
        {0},
    };
    return sc_app_run_opts(argc, argv, "An append-only log: records acknowledged once durable.",
                           opts, app, NULL);
}
