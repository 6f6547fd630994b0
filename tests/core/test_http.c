/*
 * test_http.c — apps/httpd's protocol code (http.c), as pure functions over
 * raw bytes: requests whole, split at every byte (into a buffer that moves
 * between calls), pipelined; every limit at its edge; malformed input and
 * the status it earns; keep-alive rules; chunked bodies; Expect; the
 * response writer, the Date header, the response parser; path resolution.
 * These need no shard: they run in the test process itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/httpd/http.h"
#include "tests/harness.h"

#define S(lit) ((struct http_str){(lit), sizeof(lit) - 1})

static struct http_parser P;

/* Parse @p req given whole. */
static long parse_whole(const char *req, size_t len)
{
    http_parser_init(&P, NULL);
    return http_parse(&P, req, len);
}

static long parse_str(const char *req)
{
    return parse_whole(req, strlen(req));
}

static bool str_is(struct http_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* ---- whole requests ---- */

START_TEST(simple_get)
{
    tr_reset();
    const char *r = "GET /index.html?x=1&y HTTP/1.1\r\nHost: example.com\r\n"
                    "User-Agent: test\r\nAccept:  */*  \r\n\r\n";
    tr_step("parse a GET with three headers");
    T_CHECK(parse_str(r) == (long)strlen(r), "complete at its length");
    struct http_request *q = &P.req;
    T_CHECK(q->method_id == HTTP_GET && str_is(q->method, "GET"), "method");
    T_CHECK(str_is(q->target, "/index.html?x=1&y"), "target");
    T_CHECK(str_is(q->path, "/index.html") && str_is(q->query, "x=1&y"), "path and query");
    T_CHECK(q->version == 11 && q->keep_alive && !q->chunked && q->content_length == 0,
            "1.1, keep-alive, no body");
    T_CHECK(q->nheaders == 3 && str_is(q->host, "example.com"), "3 headers, Host");
    const struct http_str *acc = http_header_get(q, "accept");
    T_CHECK(acc && str_is(*acc, "*/*"), "value trimmed, name case-insensitive");
    struct http_str v;
    T_CHECK(http_query_get(q->query, "x", &v) && str_is(v, "1"), "query x=1");
    T_CHECK(http_query_get(q->query, "y", &v) && v.len == 0, "query y (no value)");
    T_CHECK(!http_query_get(q->query, "z", &v), "no z");
}
END_TEST

START_TEST(targets_and_versions)
{
    tr_reset();
    struct {
        const char *req;
        long want; /* > 0: complete; < 0: status */
        const char *path;
    } cases[] = {
        {"GET http://h.example/a/b?q HTTP/1.1\r\nHost: h\r\n\r\n", 1, "/a/b"},
        {"GET http://h.example HTTP/1.1\r\nHost: h\r\n\r\n", 1, "/"},
        {"GET http://h.example?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", 1, "/"},
        {"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 1, "*"},
        {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", -400, NULL},
        {"CONNECT h.example:443 HTTP/1.1\r\nHost: h\r\n\r\n", 1, "h.example:443"},
        {"GET h.example/x HTTP/1.1\r\nHost: h\r\n\r\n", -400, NULL},
        {"GET /x#frag HTTP/1.1\r\nHost: h\r\n\r\n", -400, NULL},
        {"GET / HTTP/1.0\r\n\r\n", 1, "/"},
        {"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 1, "/"},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", -505, NULL},
        {"GET / HTTP/0.9\r\n\r\n", -505, NULL},
        {"GET / HTTP/1.1x\r\nHost: h\r\n\r\n", -400, NULL},
        {"GET / http/1.1\r\nHost: h\r\n\r\n", -400, NULL},
        {"GET /\r\n\r\n", -400, NULL},
        {"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 1, "/"}, /* empty lines first */
        {"GET / HTTP/1.1\nHost: h\n\n", 1, "/"},               /* bare LF */
        {"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", 1, "/pot"},  /* unknown method */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tr_step("case %zu: %.40s", i, cases[i].req);
        long r = parse_str(cases[i].req);
        if (cases[i].want > 0) {
            T_CHECK(r == (long)strlen(cases[i].req), "case %zu: complete, got %ld", i, r);
            T_CHECK(str_is(P.req.path, cases[i].path), "case %zu: path '%.*s'", i,
                    (int)P.req.path.len, P.req.path.p);
        } else {
            T_CHECK(r == cases[i].want, "case %zu: want %ld, got %ld", i, cases[i].want, r);
        }
    }
    T_CHECK(parse_str("BREW / HTTP/1.1\r\nHost: h\r\n\r\n") > 0 && P.req.method_id == HTTP_OTHER,
            "unknown method is HTTP_OTHER");
}
END_TEST

/* ---- malformed input: the status each earns ---- */

START_TEST(bad_requests)
{
    tr_reset();
    struct {
        const char *req;
        long want;
    } cases[] = {
        {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", -400},              /* two spaces */
        {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", -400},              /* trailing space */
        {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", -400},               /* not a token */
        {" GET / HTTP/1.1\r\nHost: h\r\n\r\n", -400},              /* leading space */
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", -400},              /* space before colon */
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", -400}, /* folding */
        {"GET / HTTP/1.1\r\n Host: h\r\n\r\n", -400},              /* folding on line 1 */
        {"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\rX\r\n\r\n", -400},         /* bare CR */
        {"GET / HTTP/1.1\r\nHost: h\x01\r\n\r\n", -400},        /* control byte */
        {"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", -400},        /* DEL in target */
        {"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", -400},    /* raw UTF-8 in target */
        {"GET / HTTP/1.1\r\n\r\n", -400},                       /* no Host */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -400}, /* two Hosts */
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         -400}, /* both: smuggling */
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", -501},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -501},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", -417},
        {"\x16\x03\x01\x02\x00", -400}, /* a TLS hello: refused at once */
        {"\x80", -400},
        {"GET\r\n", -400},
        {"\r\r", -400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tr_step("case %zu: %.50s", i, cases[i].req);
        long r = parse_str(cases[i].req);
        T_CHECK(r == cases[i].want, "case %zu: want %ld, got %ld", i, cases[i].want, r);
    }
    /* 1.0 ignores Expect (RFC 9110) */
    T_CHECK(parse_str("GET / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n") > 0, "1.0 ignores Expect");
    /* a NUL byte in a header value */
    const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    T_CHECK(parse_whole(nul, sizeof nul - 1) == -400, "NUL in a value");
}
END_TEST

/* ---- keep-alive ---- */

START_TEST(keep_alive_rules)
{
    tr_reset();
    struct {
        const char *req;
        bool keep;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: te, keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tr_step("case %zu", i);
        T_CHECK(parse_str(cases[i].req) > 0, "case %zu parses", i);
        T_CHECK(P.req.keep_alive == cases[i].keep, "case %zu: keep-alive %d", i, P.req.keep_alive);
    }
}
END_TEST

/* ---- bodies ---- */

START_TEST(bodies)
{
    tr_reset();
    const char *cl = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET";
    tr_step("Content-Length: 5, then the next request's first bytes");
    T_CHECK(parse_str(cl) == (long)strlen(cl) - 3, "stops after the body");
    T_CHECK(str_is(P.req.body, "hello") && P.req.content_length == 5, "body");

    const char *ch = "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
                     "5;name=value\r\nhello\r\n1\nX\n"
                     "0A \r\n0123456789\r\n0\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\nNEXT";
    tr_step("chunked with an extension, bare LFs, trailers");
    T_CHECK(parse_str(ch) == (long)strlen(ch) - 4, "stops after the trailers");
    T_CHECK(P.req.chunked && P.req.content_length == 16, "16 decoded bytes");
    char out[32];
    size_t n = http_chunked_decode(&P.req, out);
    T_CHECK(n == 16 && memcmp(out, "helloX0123456789", 16) == 0, "decoded body");

    const char *empty = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    T_CHECK(parse_str(empty) == (long)strlen(empty) && P.req.content_length == 0, "empty chunked");

    const char *bad[] = {
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nZ\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1 x\r\na\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tr_step("bad chunked %zu", i);
        T_CHECK(parse_str(bad[i]) == -400, "bad chunked %zu: 400", i);
    }
}
END_TEST

/* ---- limits at their edges ---- */

static char *make_request_line(size_t target_len)
{
    /* "GET /aaa... HTTP/1.1" of exactly 4 + target_len + 9 bytes */
    char *r = malloc(target_len + 64);
    memcpy(r, "GET /", 5);
    memset(r + 5, 'a', target_len - 1);
    strcpy(r + 4 + target_len, " HTTP/1.1\r\nHost: h\r\n\r\n");
    return r;
}

START_TEST(limits)
{
    tr_reset();
    /* request line: 8192 bytes without CRLF is fine, 8193 is 414 */
    char *ok = make_request_line(8192 - 13);
    char *big = make_request_line(8193 - 13);
    tr_step("request line of 8192 and 8193 bytes");
    T_CHECK(parse_str(ok) > 0, "8192: complete");
    T_CHECK(parse_str(big) == -414, "8193: 414");
    tr_step("8193 bytes and no LF yet: 414 without waiting for more");
    T_CHECK(parse_whole(big, 8193 + 1) == -414, "early 414");
    T_CHECK(parse_whole(ok, 8192 + 1) == 0, "8192 + CR: still waiting");
    free(ok);
    free(big);

    /* header block: 16384 bytes (blank line included) is fine, one more is 431 */
    for (int extra = 0; extra <= 1; extra++) {
        char *r = malloc(20000);
        size_t n = (size_t)sprintf(r, "GET / HTTP/1.1\r\n");
        size_t start = n;
        n += (size_t)sprintf(r + n, "Host: h\r\nX: ");
        size_t fill = 16384 - (n - start) - 4 + (size_t)extra; /* 4: "\r\n\r\n" */
        memset(r + n, 'v', fill);
        n += fill;
        memcpy(r + n, "\r\n\r\n", 5);
        n += 4;
        tr_step("header block of %zu bytes", n - start);
        long got = parse_whole(r, n);
        T_CHECK(extra ? got == -431 : got == (long)n, "block %zu: got %ld", n - start, got);
        tr_step("the same, never ending: 431 once over the limit");
        got = parse_whole(r, n - 4);
        T_CHECK(got == 0, "under the limit and incomplete: need more (%ld)", got);
        free(r);
    }
    {
        char *r = malloc(40000);
        size_t n = (size_t)sprintf(r, "GET / HTTP/1.1\r\nHost: h\r\n");
        memset(r + n, 'v', 17000);
        T_CHECK(parse_whole(r, n + 17000) == -431, "an endless header: 431 before its end");
        free(r);
    }

    /* 100 headers fine, 101 is 431 */
    for (int count = 100; count <= 101; count++) {
        char *r = malloc(8192);
        size_t n = (size_t)sprintf(r, "GET / HTTP/1.1\r\nHost: h\r\n");
        for (int i = 1; i < count; i++)
            n += (size_t)sprintf(r + n, "X-%d: %d\r\n", i, i);
        n += (size_t)sprintf(r + n, "\r\n");
        tr_step("%d headers", count);
        long got = parse_whole(r, n);
        T_CHECK(count == 100 ? got == (long)n : got == -431, "%d headers: got %ld", count, got);
        free(r);
    }

    /* body: 1 MiB fine, one more byte is 413 (known from the head) */
    T_CHECK(parse_str("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n") == 0,
            "1 MiB: waits for it");
    T_CHECK(parse_str("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n") == -413,
            "1 MiB + 1: 413");
    /* chunked: 413 as soon as the sizes add up past the limit */
    const char *c = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "80000\r\n";
    T_CHECK(parse_str(c) == 0, "a 512 KiB chunk announced: waiting");
    const char *c2 = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "100001\r\n";
    T_CHECK(parse_str(c2) == -413, "a chunk over 1 MiB: 413");
    const char *c3 = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "ffffffffffffffffff\r\n";
    T_CHECK(parse_str(c3) == -413, "an absurd chunk size: 413, no overflow");

    /* custom limits */
    struct http_limits lim = {.request_line = 16, .header_block = 64, .headers = 2, .body = 4};
    http_parser_init(&P, &lim);
    const char *l1 = "GET /0123456789ab HTTP/1.1\r\n";
    T_CHECK(http_parse(&P, l1, strlen(l1)) == -414, "custom request line limit");
    http_parser_init(&P, &lim);
    const char *l2 = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    T_CHECK(http_parse(&P, l2, strlen(l2)) == -431, "custom header count");
    http_parser_init(&P, &lim);
    const char *l3 = "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    T_CHECK(http_parse(&P, l3, strlen(l3)) == -413, "custom body limit");
}
END_TEST

/* ---- incremental: every split point, a buffer that moves ---- */

static const char *const incremental_cases[] = {
    "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /a?b=c HTTP/1.0\nUser-Agent: x\n\n",
    "\r\nPOST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
    "PUT /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n1;x=y\r\nd\r\n0\r\nT: 1\r\n\r\n",
    "POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nxyz",
};

START_TEST(split_at_every_byte)
{
    tr_reset();
    for (size_t c = 0; c < sizeof incremental_cases / sizeof incremental_cases[0]; c++) {
        const char *req = incremental_cases[c];
        size_t len = strlen(req);
        long whole = parse_whole(req, len);
        T_CHECK(whole == (long)len, "case %zu parses whole (%ld)", c, whole);
        struct http_request ref = P.req;
        /* feed it one byte more each time, from a fresh copy each call */
        http_parser_init(&P, NULL);
        bool saw_head_done = false;
        for (size_t n = 1; n <= len; n++) {
            char *copy = malloc(n);
            memcpy(copy, req, n);
            long r = http_parse(&P, copy, n);
            if (n < len) {
                T_CHECK(r == 0, "case %zu: %zu of %zu bytes: need more, got %ld", c, n, len, r);
                saw_head_done |= P.head_done;
            } else {
                T_CHECK(r == (long)len, "case %zu: complete at %zu, got %ld", c, len, r);
                T_CHECK(P.req.content_length == ref.content_length &&
                            P.req.keep_alive == ref.keep_alive && P.req.nheaders == ref.nheaders &&
                            P.req.version == ref.version && P.req.body.len == ref.body.len,
                        "case %zu: same request as parsed whole", c);
                T_CHECK(P.req.path.p >= copy && P.req.path.p < copy + n,
                        "case %zu: strings point into the last buffer", c);
                if (!P.req.chunked)
                    T_CHECK(memcmp(P.req.body.p, ref.body.p, ref.body.len) == 0,
                            "case %zu: same body", c);
            }
            free(copy);
        }
        if (ref.content_length && ref.body.len)
            T_CHECK(saw_head_done, "case %zu: head_done before the body arrived", c);
    }
    tr_step("Expect: 100-continue is visible once the head is in");
    const char *e = incremental_cases[4];
    http_parser_init(&P, NULL);
    T_CHECK(http_parse(&P, e, strlen(e) - 3) == 0 && P.head_done && P.req.expect_continue,
            "head done, body pending, expect_continue");
}
END_TEST

START_TEST(pipelined)
{
    tr_reset();
    char buf[4096];
    size_t len = 0;
    for (size_t c = 0; c < sizeof incremental_cases / sizeof incremental_cases[0]; c++)
        len += (size_t)sprintf(buf + len, "%s", incremental_cases[c]);
    size_t off = 0, count = 0;
    http_parser_init(&P, NULL);
    while (off < len) {
        long r = http_parse(&P, buf + off, len - off);
        T_CHECK(r > 0, "request %zu at offset %zu: got %ld", count, off, r);
        T_CHECK((size_t)r == strlen(incremental_cases[count]), "request %zu has its own length",
                count);
        off += (size_t)r;
        count++;
        http_parser_reset(&P);
    }
    T_CHECK(count == 5, "five requests");
}
END_TEST

START_TEST(trickle_is_linear)
{
    /* a head sent one byte at a time: the parser must not rescan what it saw
     * (scan never moves back); checked through the state it keeps */
    tr_reset();
    char *r = malloc(20000);
    size_t n = (size_t)sprintf(r, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < 500; i++)
        n += (size_t)sprintf(r + n, "X-%d: %d\r\n", i % 90, i);
    memcpy(r + n, "\r\n", 3);
    n += 2;
    http_parser_init(&P, NULL);
    size_t last_scan = 0;
    long got = 0;
    for (size_t k = 1; k <= n && got == 0; k++) {
        got = http_parse(&P, r, k);
        if (got == 0) {
            T_CHECK(P.scan >= last_scan, "scan went back at %zu", k);
            last_scan = P.scan;
        }
    }
    T_CHECK(got == -431, "500 headers: 431 (got %ld)", got);
    free(r);
}
END_TEST

/* ---- responses ---- */

START_TEST(response_writer)
{
    tr_reset();
    struct http_date_cache dc;
    http_date_cache_init(&dc);
    T_CHECK(strcmp(http_date(&dc, 784111777), "Sun, 06 Nov 1994 08:49:37 GMT") == 0,
            "RFC 9110's example date: %s", dc.str);
    const char *d1 = http_date(&dc, 784111777);
    T_CHECK(d1 == dc.str && dc.sec == 784111777, "cached for the same second");
    T_CHECK(strcmp(http_date(&dc, 1767225600), "Thu, 01 Jan 2026 00:00:00 GMT") == 0, "2026");

    char buf[512];
    struct http_head h = {.status = 200,
                          .version = 11,
                          .date = "D",
                          .server = "seacore",
                          .content_type = "text/plain",
                          .content_length = 5};
    size_t n = http_format_head(buf, sizeof buf, &h);
    const char *want = "HTTP/1.1 200 OK\r\nServer: seacore\r\nDate: D\r\n"
                       "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n";
    T_CHECK(n == strlen(want) && memcmp(buf, want, n) == 0, "head: %.*s", (int)n, buf);

    h = (struct http_head){
        .status = 404, .version = 10, .content_length = HTTP_LEN_CHUNKED, .extra = "X-A: b\r\n"};
    n = http_format_head(buf, sizeof buf, &h);
    want = "HTTP/1.0 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
           "X-A: b\r\n\r\n";
    T_CHECK(n == strlen(want) && memcmp(buf, want, n) == 0, "1.0 keep-alive: %.*s", (int)n, buf);

    h = (struct http_head){
        .status = 204, .version = 11, .content_length = HTTP_LEN_NONE, .close = true};
    n = http_format_head(buf, sizeof buf, &h);
    want = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    T_CHECK(n == strlen(want) && memcmp(buf, want, n) == 0, "204 close");

    tr_step("a buffer too small: the length needed comes back");
    char tiny[8];
    h = (struct http_head){.status = 200, .version = 11, .content_length = 0};
    n = http_format_head(tiny, sizeof tiny, &h);
    T_CHECK(n > sizeof tiny && n == strlen("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            "needed %zu", n);

    char ch[24];
    T_CHECK(http_chunk_header(ch, 0x1a2) == 5 && memcmp(ch, "1a2\r\n", 5) == 0, "chunk header");
    T_CHECK(http_chunk_header(ch, 0) == 3 && memcmp(ch, "0\r\n", 3) == 0, "chunk header 0");
    T_CHECK(strcmp(http_reason(431), "Request Header Fields Too Large") == 0, "reason");
    T_CHECK(strcmp(http_reason(299), "Unknown") == 0, "unknown reason");
}
END_TEST

START_TEST(response_parser)
{
    tr_reset();
    struct http_response r;
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1";
    T_CHECK(http_parse_response(a, strlen(a), false, false, &r) == (long)strlen(a) - 8,
            "length-framed");
    T_CHECK(r.status == 200 && r.keep_alive && str_is(r.body, "abc"), "fields");
    T_CHECK(http_parse_response(a, 20, false, false, &r) == 0, "partial");
    T_CHECK(http_parse_response(a, strlen(a) - 8, true, false, &r) == (long)strlen(a) - 11,
            "HEAD: no body");
    const char *c = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    "2\r\nab\r\n0\r\n\r\n";
    T_CHECK(http_parse_response(c, strlen(c), false, false, &r) == (long)strlen(c), "chunked");
    T_CHECK(r.chunked && r.body_len == 2 && !r.keep_alive, "chunked fields");
    const char *e = "HTTP/1.0 200 OK\r\n\r\nuntil the end";
    T_CHECK(http_parse_response(e, strlen(e), false, false, &r) == 0, "close-framed: waits");
    T_CHECK(http_parse_response(e, strlen(e), false, true, &r) == (long)strlen(e) &&
                r.body_len == 13,
            "close-framed at EOF");
    T_CHECK(http_parse_response("HTTP/1.1 100 Continue\r\n\r\n", 25, false, false, &r) == 25 &&
                r.status == 100,
            "1xx has no body");
    T_CHECK(http_parse_response("HTTP/1.1 2x0 OK\r\n\r\n", 19, false, false, &r) == -1, "bad");
    T_CHECK(http_parse_response("SSH-2.0\r\n\r\n", 11, false, false, &r) == -1, "not HTTP");
}
END_TEST

/* ---- static paths ---- */

START_TEST(paths)
{
    tr_reset();
    struct {
        const char *in;
        long want;
        const char *out;
        bool dir;
    } cases[] = {
        {"/", 0, "", true},
        {"/a/b.html", 8, "a/b.html", false},
        {"/a//b/./c/", 5, "a/b/c", true},
        {"/a/../b", 1, "b", false},
        {"/a/b/../../c", 1, "c", false},
        {"/..", -403, NULL, false},
        {"/a/../../etc/passwd", -403, NULL, false},
        {"/%2e%2e/etc/passwd", -403, NULL, false},
        {"/a/..%2f..%2fetc", -403, NULL, false},
        {"/a%20b", 3, "a b", false},
        {"/a%00b", -400, NULL, false},
        {"/a%zz", -400, NULL, false},
        {"/a%2", -400, NULL, false},
        {"/.hidden", 7, ".hidden", false},
        {"/...", 3, "...", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        bool dir = false;
        tr_step("path %s", cases[i].in);
        struct http_str p = {cases[i].in, strlen(cases[i].in)};
        long r = http_path_resolve(p, out, sizeof out, &dir);
        T_CHECK(r == cases[i].want, "%s: want %ld, got %ld", cases[i].in, cases[i].want, r);
        if (r >= 0)
            T_CHECK(strcmp(out, cases[i].out) == 0 && dir == cases[i].dir, "%s: '%s' dir=%d",
                    cases[i].in, out, dir);
    }
    char small[8];
    bool dir;
    T_CHECK(http_path_resolve(S("/0123456789"), small, sizeof small, &dir) == -414, "too long");
    T_CHECK(strcmp(http_content_type("a/b/INDEX.HTML"), "text/html; charset=utf-8") == 0, "html");
    T_CHECK(strcmp(http_content_type("x.tar.gz"), "application/gzip") == 0, "gz");
    T_CHECK(strcmp(http_content_type("dir.d/noext"), "application/octet-stream") == 0, "none");
    T_CHECK(strcmp(http_content_type("file."), "application/octet-stream") == 0, "trailing dot");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, simple_get);
    tcase_add_test(tc, targets_and_versions);
    tcase_add_test(tc, bad_requests);
    tcase_add_test(tc, keep_alive_rules);
    tcase_add_test(tc, bodies);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, split_at_every_byte);
    tcase_add_test(tc, pipelined);
    tcase_add_test(tc, trickle_is_linear);
    tcase_add_test(tc, response_writer);
    tcase_add_test(tc, response_parser);
    tcase_add_test(tc, paths);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
