/*
 * test_mc_proto.c — memcached's text protocol parser (apps/memcached/proto.c)
 * on raw transcripts: every command and its token counts, noreply, the
 * data block's "\r\n", values too large (swallowed), lines too long,
 * partial input, pipelined requests, keys, numbers, exptimes, the hash.
 *
 * The parser is pure (no shard, no I/O), so these checks run once, outside
 * any world. Each parse is described as one line of text, and a check
 * compares that line with what memcached would make of the same bytes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "apps/memcached/proto.h"
#include "tests/harness.h"

static const char *status_name(int st)
{
    return st == MC_PARSE_OK ? "ok" : st == MC_PARSE_MORE ? "more" : "error";
}

/* One parse of `in`, described: "ok set key=k flags=1 ... used=N" etc. */
static char desc[4096];
static size_t dlen;

static void add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void add(const char *fmt, ...)
{
    if (dlen >= sizeof desc - 1)
        return; /* full: the rest is cut */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(desc + dlen, sizeof desc - dlen, fmt, ap);
    va_end(ap);
    if (n > 0)
        dlen += (size_t)n < sizeof desc - dlen ? (size_t)n : sizeof desc - 1 - dlen;
}

static const char *parse_desc(const char *in, size_t len, const struct mc_limits *lim)
{
    struct mc_request r;
    uint64_t used = 0;
    int st = mc_parse(in, len, lim, &r, &used);
    dlen = 0;
    desc[0] = 0;
    add("%s", status_name(st));
    if (st == MC_PARSE_ERROR) {
        const char *t = mc_error_text(r.error);
        add(" %.*s", (int)strlen(t) - 2, t);
        if (r.close)
            add(" close");
        if (r.noreply)
            add(" noreply");
        add(" used=%llu", (unsigned long long)used);
        tr_step("parse \"%.60s\" -> %.120s", in, desc);
        return desc;
    }
    if (r.cmd != MC_CMD_NONE)
        add(" %s", mc_cmd_name(r.cmd));
    if (st == MC_PARSE_MORE && r.cmd != MC_CMD_NONE)
        add(" line=%u bytes=%u", r.line_len, r.value_len);
    if (st == MC_PARSE_OK) {
        if (r.cmd == MC_CMD_GET || r.cmd == MC_CMD_GETS) {
            add(" n=%u keys=", r.nkeys);
            uint32_t pos = 0, kl;
            const char *k;
            bool first = true;
            while (mc_next_key(&r, &pos, &k, &kl)) {
                add("%s%.*s", first ? "" : ",", (int)kl, k);
                first = false;
            }
        } else if (r.key) {
            add(" key=%.*s", (int)r.key_len, r.key);
        }
        if (mc_cmd_is_storage(r.cmd))
            add(" flags=%u exp=%lld value=%.*s", r.flags, (long long)r.exptime, (int)r.value_len,
                r.value);
        if (r.cmd == MC_CMD_CAS)
            add(" cas=%llu", (unsigned long long)r.cas);
        if (r.cmd == MC_CMD_INCR || r.cmd == MC_CMD_DECR)
            add(" delta=%llu", (unsigned long long)r.delta);
        if (r.cmd == MC_CMD_TOUCH)
            add(" exp=%lld", (long long)r.exptime);
        if (r.cmd == MC_CMD_FLUSH_ALL)
            add(" delay=%lld", (long long)r.delay);
        if (r.cmd == MC_CMD_VERBOSITY)
            add(" level=%u", r.verbosity);
        if (r.cmd == MC_CMD_STATS && r.arg)
            add(" arg=%.*s", (int)r.arg_len, r.arg);
        if (r.noreply)
            add(" noreply");
        add(" used=%llu", (unsigned long long)used);
    }
    tr_step("parse \"%.60s\" -> %.120s", in, desc);
    return desc;
}

#define EXPECT(in, want)                                                                           \
    do {                                                                                           \
        const char *got_ = parse_desc((in), strlen(in), NULL);                                     \
        T_CHECK(strcmp(got_, (want)) == 0, "parse of \"%s\":\n  got  %s\n  want %s", (in), got_,   \
                (want));                                                                           \
    } while (0)

START_TEST(retrieval)
{
    tr_reset();
    EXPECT("get a\r\n", "ok get n=1 keys=a used=7");
    EXPECT("get a b  c\r\n", "ok get n=3 keys=a,b,c used=12");
    EXPECT("gets foo\r\n", "ok gets n=1 keys=foo used=10");
    EXPECT("get a\n", "ok get n=1 keys=a used=6"); /* a bare \n ends a line too */
    EXPECT("  get   a  \r\n", "ok get n=1 keys=a used=13");
    EXPECT("get\r\n", "error ERROR used=5");
    EXPECT("get \r\n", "error ERROR used=6");
    EXPECT("GET a\r\n", "error ERROR used=7"); /* commands are case-sensitive */
    char line[400];
    memset(line, 'k', sizeof line);
    memcpy(line, "get ", 4);
    memcpy(line + 4 + 250, "\r\n", 3);
    T_CHECK(strncmp(parse_desc(line, strlen(line), NULL), "ok get n=1", 10) == 0,
            "a 250-byte key is fine: %s", desc);
    memcpy(line + 4 + 251, "\r\n", 3);
    line[4 + 250] = 'k';
    EXPECT(line, "error CLIENT_ERROR bad command line format used=257");
    EXPECT("get a\tb\r\n", "error CLIENT_ERROR bad command line format used=9");
    EXPECT("get a \x01\r\n", "error CLIENT_ERROR bad command line format used=9");
}
END_TEST

START_TEST(storage)
{
    tr_reset();
    EXPECT("set k 5 0 3\r\nabc\r\n", "ok set key=k flags=5 exp=0 value=abc used=18");
    EXPECT("set k 5 0 3 noreply\r\nabc\r\n",
           "ok set key=k flags=5 exp=0 value=abc noreply used=26");
    /* memcached ignores a last token that is not "noreply" */
    EXPECT("set k 5 0 3 junk\r\nabc\r\n", "ok set key=k flags=5 exp=0 value=abc used=23");
    EXPECT("add k 0 -1 0\r\n\r\n", "ok add key=k flags=0 exp=-1 value= used=16");
    EXPECT("replace k 4294967295 100 1\r\nx\r\n",
           "ok replace key=k flags=4294967295 exp=100 value=x used=31");
    EXPECT("append k 0 0 2\r\nzz\r\n", "ok append key=k flags=0 exp=0 value=zz used=20");
    EXPECT("prepend k 0 0 2\r\nzz\r\n", "ok prepend key=k flags=0 exp=0 value=zz used=21");
    EXPECT("cas k 0 0 1 77\r\nv\r\n", "ok cas key=k flags=0 exp=0 value=v cas=77 used=19");
    EXPECT("cas k 0 0 1 77 noreply\r\nv\r\n",
           "ok cas key=k flags=0 exp=0 value=v cas=77 noreply used=27");
    /* the block may hold \r\n and NULs: only its length counts */
    const char bin[] = "set b 0 0 4\r\na\r\n\0\r\n";
    struct mc_request rb;
    uint64_t used_b;
    T_CHECK(mc_parse(bin, sizeof bin - 1, NULL, &rb, &used_b) == MC_PARSE_OK && rb.value_len == 4 &&
                memcmp(rb.value, "a\r\n\0", 4) == 0 && used_b == 19,
            "a binary block");
    /* wrong token counts */
    EXPECT("set k 0 0\r\n", "error ERROR used=11");
    EXPECT("set k 0 0 1 noreply x\r\nv\r\n", "error ERROR used=23");
    EXPECT("cas k 0 0 1\r\nv\r\n", "error ERROR used=13");
    /* bad numbers: the block's size is unknown, nothing is swallowed */
    EXPECT("set k x 0 1\r\nv\r\n", "error CLIENT_ERROR bad command line format used=13");
    EXPECT("set k 0 0 -1\r\n", "error CLIENT_ERROR bad command line format used=14");
    EXPECT("set k 4294967296 0 1\r\nv\r\n", "error CLIENT_ERROR bad command line format used=22");
    EXPECT("cas k 0 0 1 -5\r\nv\r\n", "error CLIENT_ERROR bad command line format used=16");
    /* noreply hides a client error */
    struct mc_request r;
    uint64_t used;
    T_CHECK(mc_parse("set k x 0 1 noreply\r\n", 21, NULL, &r, &used) == MC_PARSE_ERROR &&
                r.noreply && !mc_error_reply(r.error, r.noreply),
            "a client error on a noreply request is not answered");
}
END_TEST

START_TEST(data_block)
{
    tr_reset();
    /* partial input: the line, then the block */
    EXPECT("set k 0 0 3\r", "more");
    EXPECT("set k 0 0 3\r\n", "more set line=13 bytes=3");
    EXPECT("set k 0 0 3\r\nab", "more set line=13 bytes=3");
    EXPECT("set k 0 0 3\r\nabc\r", "more set line=13 bytes=3");
    /* the block must end in \r\n: the whole block goes, the error is said */
    EXPECT("set k 0 0 3\r\nabcd\r\n", "error CLIENT_ERROR bad data chunk used=18");
    EXPECT("set k 0 0 3\r\nabc\n\n", "error CLIENT_ERROR bad data chunk used=18");
    /* too large: answered, and the block is swallowed even beyond the buffer */
    struct mc_limits lim = {.max_item_size = 10};
    const char *big = "set k 0 0 11\r\nhello";
    const char *got = parse_desc(big, strlen(big), &lim);
    T_CHECK(strcmp(got, "error SERVER_ERROR object too large for cache used=27") == 0,
            "too large: %s", got);
    got = parse_desc("set k 0 0 2000000\r\n", 19, NULL);
    T_CHECK(strcmp(got, "error SERVER_ERROR object too large for cache used=2000021") == 0,
            "over the 1 MiB default: %s", got);
    struct mc_request r;
    uint64_t used;
    T_CHECK(mc_parse("set k 0 0 11 noreply\r\n", 22, &lim, &r, &used) == MC_PARSE_ERROR &&
                mc_error_reply(r.error, r.noreply),
            "a server error is answered even with noreply");
    lim.max_item_size = 11;
    got = parse_desc("set k 0 0 11\r\nhello world\r\n", 27, &lim);
    T_CHECK(strncmp(got, "ok set", 6) == 0, "exactly at the limit: %s", got);
    T_CHECK(mc_check_chunk("ab\r\n", 2) && !mc_check_chunk("ab\n\r", 2), "mc_check_chunk");
}
END_TEST

START_TEST(other_commands)
{
    tr_reset();
    EXPECT("delete k\r\n", "ok delete key=k used=10");
    EXPECT("delete k 0\r\n", "ok delete key=k used=12");
    EXPECT("delete k noreply\r\n", "ok delete key=k noreply used=18");
    EXPECT("delete k 0 noreply\r\n", "ok delete key=k noreply used=20");
    EXPECT("delete k 5\r\n", "error CLIENT_ERROR bad command line format.  Usage: delete <key> "
                             "[noreply] used=12");
    EXPECT("delete\r\n", "error ERROR used=8");
    EXPECT("incr n 5\r\n", "ok incr key=n delta=5 used=10");
    EXPECT("decr n 18446744073709551615 noreply\r\n",
           "ok decr key=n delta=18446744073709551615 noreply used=37");
    EXPECT("incr n 18446744073709551616\r\n",
           "error CLIENT_ERROR invalid numeric delta argument used=29");
    EXPECT("incr n -1\r\n", "error CLIENT_ERROR invalid numeric delta argument used=11");
    EXPECT("incr n\r\n", "error ERROR used=8");
    EXPECT("touch k 10\r\n", "ok touch key=k exp=10 used=12");
    EXPECT("touch k -1 noreply\r\n", "ok touch key=k exp=-1 noreply used=20");
    EXPECT("touch k soon\r\n", "error CLIENT_ERROR invalid exptime argument used=14");
    EXPECT("flush_all\r\n", "ok flush_all delay=0 used=11");
    EXPECT("flush_all 30\r\n", "ok flush_all delay=30 used=14");
    EXPECT("flush_all noreply\r\n", "ok flush_all delay=0 noreply used=19");
    EXPECT("flush_all 30 noreply\r\n", "ok flush_all delay=30 noreply used=22");
    EXPECT("flush_all later\r\n", "error CLIENT_ERROR bad command line format used=17");
    EXPECT("version\r\n", "ok version used=9");
    EXPECT("version 2\r\n", "ok version used=11"); /* memcached 1.6 ignores the rest */
    EXPECT("verbosity noreply\r\n", "error CLIENT_ERROR bad command line format noreply used=19");
    EXPECT("incr n noreply\r\n",
           "error CLIENT_ERROR invalid numeric delta argument noreply used=16");
    EXPECT("verbosity 1\r\n", "ok verbosity level=1 used=13");
    EXPECT("verbosity 1 noreply\r\n", "ok verbosity level=1 noreply used=21");
    EXPECT("verbosity\r\n", "error ERROR used=11");
    EXPECT("stats\r\n", "ok stats used=7");
    EXPECT("stats shards\r\n", "ok stats arg=shards used=14");
    EXPECT("quit\r\n", "ok quit used=6");
    EXPECT("\r\n", "error ERROR used=2");
    EXPECT("bogus command here\r\n", "error ERROR used=20");
    EXPECT("set k 0 0 1 noreply a b c d\r\n", "error ERROR used=29");
}
END_TEST

START_TEST(long_lines)
{
    tr_reset();
    static char buf[70000];
    /* a line still coming, short of the limit: wait */
    memset(buf, 'x', 2047);
    T_CHECK(strcmp(parse_desc(buf, 2047, NULL), "more") == 0, "2047 bytes, no newline: %s", desc);
    /* at the limit without a newline: answered, then the connection closes */
    memset(buf, 'x', 3000);
    T_CHECK(strcmp(parse_desc(buf, 2048, NULL),
                   "error CLIENT_ERROR line too long close used=2048") == 0,
            "2048 bytes, no newline: %s", desc);
    /* a newline past the limit on a non-get line: too long as well */
    memcpy(buf, "set ", 4);
    buf[2500] = '\n';
    T_CHECK(strcmp(parse_desc(buf, 2501, NULL),
                   "error CLIENT_ERROR line too long close used=2501") == 0,
            "a 2501-byte set line: %s", desc);
    /* get lines with many keys may be longer, up to max_get_line */
    struct mc_limits lim = {.max_get_line = 65536};
    size_t n = 0;
    n += (size_t)sprintf(buf, "get");
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(buf + n, " key:%04d", i);
    T_CHECK(n > 9000, "the get line is long (%zu bytes)", n);
    T_CHECK(strcmp(parse_desc(buf, n, &lim), "more") == 0, "a long get line, unfinished: %s", desc);
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    const char *got = parse_desc(buf, n, &lim);
    T_CHECK(strncmp(got, "ok get n=1000 keys=key:0000,key:0001", 36) == 0, "a 1000-key get: %.80s",
            got);
    got = parse_desc(buf, n, NULL);
    T_CHECK(strcmp(got, "error CLIENT_ERROR line too long close used=9005") == 0,
            "the same get over the default get limit (MC_LINE_MAX): %s", got);
}
END_TEST

START_TEST(pipelined)
{
    tr_reset();
    const char *in = "set a 0 0 1\r\n1\r\nget a b\r\ndelete a noreply\r\nincr";
    size_t len = strlen(in), off = 0;
    const char *want[] = {"ok set key=a flags=0 exp=0 value=1 used=16",
                          "ok get n=2 keys=a,b used=9", "ok delete key=a noreply used=18", "more"};
    for (int i = 0; i < 4; i++) {
        struct mc_request r;
        uint64_t used;
        const char *got = parse_desc(in + off, len - off, NULL);
        T_CHECK(strcmp(got, want[i]) == 0, "request %d of the pipeline:\n  got  %s\n  want %s", i,
                got, want[i]);
        mc_parse(in + off, len - off, NULL, &r, &used);
        off += used;
    }
    T_CHECK(off == len - 4, "all but the unfinished \"incr\" consumed (%zu of %zu)", off, len);
}
END_TEST

START_TEST(numbers_and_time)
{
    tr_reset();
    uint64_t v;
    T_CHECK(mc_parse_u64("0", 1, &v) && v == 0, "0");
    T_CHECK(mc_parse_u64("18446744073709551615", 20, &v) && v == UINT64_MAX, "2^64-1");
    T_CHECK(!mc_parse_u64("18446744073709551616", 20, &v), "2^64 overflows");
    T_CHECK(!mc_parse_u64("", 0, &v) && !mc_parse_u64("1a", 2, &v) && !mc_parse_u64("+1", 2, &v),
            "only digits");
    char buf[24];
    buf[mc_format_u64(buf, UINT64_MAX)] = 0;
    T_CHECK(strcmp(buf, "18446744073709551615") == 0, "format 2^64-1: %s", buf);
    buf[mc_format_u64(buf, 0)] = 0;
    T_CHECK(strcmp(buf, "0") == 0, "format 0: %s", buf);
    size_t n = mc_format_value_header(buf, "k", 1, 7, 3, true, 99);
    T_CHECK(n == 16 && memcmp(buf, "VALUE k 7 3 99\r\n", 16) == 0, "value header: %.*s", (int)n,
            buf);

    const uint64_t now = 5000000000ull, s = 1000000000ull;
    const int64_t unix_now = 1700000000;
    T_CHECK(mc_exptime_deadline(0, now, unix_now) == 0, "0 never expires");
    T_CHECK(mc_exptime_deadline(-1, now, unix_now) == MC_EXPIRED, "negative: already dead");
    T_CHECK(mc_exptime_deadline(10, now, unix_now) == now + 10 * s, "10 s from now");
    T_CHECK(mc_exptime_deadline(MC_REL_MAX, now, unix_now) == now + (uint64_t)MC_REL_MAX * s,
            "30 days is still relative");
    T_CHECK(mc_exptime_deadline(MC_REL_MAX + 1, now, unix_now) == MC_EXPIRED,
            "30 days + 1 s is a unix time, long past");
    T_CHECK(mc_exptime_deadline(unix_now, now, unix_now) == MC_EXPIRED, "the unix time now: dead");
    T_CHECK(mc_exptime_deadline(unix_now + 60, now, unix_now) == now + 60 * s,
            "a unix time a minute ahead");
    T_CHECK(mc_exptime_deadline(1, 0, unix_now) == s, "from a clock at 0");
}
END_TEST

START_TEST(hash)
{
    tr_reset();
    /* the hash is part of the layout of every run: pinned */
    T_CHECK(mc_hash("", 0) == mc_hash("", 0), "deterministic");
    char a[] = "user:1", b[] = "user:1";
    T_CHECK(mc_hash(a, 6) == mc_hash(b, 6), "the bytes count, not where they are");
    T_CHECK(mc_hash("user:1", 6) != mc_hash("user:2", 6), "different keys");
    /* every bit of output flips about half the time when one input bit does */
    unsigned flips[64] = {0};
    for (int i = 0; i < 2000; i++) {
        char k[16];
        int len = snprintf(k, sizeof k, "k%d", i);
        uint64_t h = mc_hash(k, (size_t)len);
        k[0] ^= 1;
        uint64_t d = h ^ mc_hash(k, (size_t)len);
        for (int bit = 0; bit < 64; bit++)
            flips[bit] += (d >> bit) & 1;
    }
    for (int bit = 0; bit < 64; bit++)
        T_CHECK(flips[bit] > 800 && flips[bit] < 1200, "bit %d flipped %u of 2000 times", bit,
                flips[bit]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mc_proto");
    TCase *tc = tcase_create("proto");
    tcase_add_test(tc, retrieval);
    tcase_add_test(tc, storage);
    tcase_add_test(tc, data_block);
    tcase_add_test(tc, other_commands);
    tcase_add_test(tc, long_lines);
    tcase_add_test(tc, pipelined);
    tcase_add_test(tc, numbers_and_time);
    tcase_add_test(tc, hash);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
