/*
 * http.c — see http.h. The grammar is RFC 9112's, read strictly where
 * leniency lets two parsers disagree about where a request ends (the root
 * of request smuggling), and leniently where it cannot hurt:
 *
 *   strict   one space between the parts of the request line; no space
 *            before a header's colon; no folded lines; no control bytes;
 *            Content-Length is digits only, and several must agree; a
 *            request with both Content-Length and Transfer-Encoding, or
 *            with Transfer-Encoding twice, is refused (400);
 *   lenient  a bare LF ends a line as CRLF does; empty lines before a
 *            request are skipped (a client may send CRLF after a body);
 *            HTTP/1.2 and up are taken as 1.1.
 *
 * Only "chunked" is understood as a transfer coding: anything else is 501.
 */
#include "apps/httpd/http.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- character classes -------------------------------------------------- */

enum { C_TCHAR = 1, C_VALUE = 2, C_TARGET = 4, C_HEX = 8 };

/* Token characters, field-value characters (obs-text included), request
 * target characters (visible ASCII), hex digits. A constant table: shards on
 * several threads read it with no set-up. */
#define TVG  (C_TCHAR | C_VALUE | C_TARGET)
#define VG   (C_VALUE | C_TARGET)
#define TVGH (TVG | C_HEX)
static const uint8_t
    cclass[256] =
        {
            ['\t'] = C_VALUE,    [' '] = C_VALUE,      ['!'] = TVG,
            ['"'] = VG,          ['#'] = TVG,          ['$' ... '\''] = TVG,
            ['(' ... ')'] = VG,  ['*' ... '+'] = TVG,  [','] = VG,
            ['-' ... '.'] = TVG, ['/'] = VG,           ['0' ... '9'] = TVGH,
            [':' ... '@'] = VG,  ['A' ... 'F'] = TVGH, ['G' ... 'Z'] = TVG,
            ['[' ... ']'] = VG,  ['^' ... '`'] = TVG,  ['a' ... 'f'] = TVGH,
            ['g' ... 'z'] = TVG, ['{'] = VG,           ['|'] = TVG,
            ['}'] = VG,          ['~'] = TVG,          [0x80 ... 0xff] = C_VALUE,
};

static inline bool is(unsigned char c, int cls)
{
    return cclass[c] & cls;
}

static inline int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

bool http_str_ieq(struct http_str s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != lower((unsigned char)lit[i]))
            return false;
    return true;
}

bool http_str_eq(struct http_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

static struct http_str trim(struct http_str s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.len--;
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Calls fn on each element of a comma-separated list (empty ones skipped);
 * stops at the first non-zero return and returns it. */
static int each_token(struct http_str list, int (*fn)(struct http_str tok, void *arg), void *arg)
{
    size_t i = 0;
    while (i <= list.len) {
        size_t j = i;
        while (j < list.len && list.p[j] != ',')
            j++;
        struct http_str tok = trim((struct http_str){list.p + i, j - i});
        if (tok.len) {
            int r = fn(tok, arg);
            if (r)
                return r;
        }
        i = j + 1;
    }
    return 0;
}

/* ---- limits and parser state --------------------------------------------- */

struct http_limits http_limits_default(void)
{
    return (struct http_limits){
        .request_line = 8192, .header_block = 16384, .headers = 100, .body = 1u << 20};
}

void http_parser_init(struct http_parser *p, const struct http_limits *lim)
{
    p->lim = lim ? *lim : http_limits_default();
    if (p->lim.headers > HTTP_MAX_HEADERS)
        p->lim.headers = HTTP_MAX_HEADERS;
    http_parser_reset(p);
}

void http_parser_reset(struct http_parser *p)
{
    p->scan = 0;
    p->line_end = 0;
    p->head_done = false;
    p->cstate = 0;
    p->cpos = 0;
    p->cleft = 0;
    p->cdecoded = 0;
    p->ctrailers = 0;
    p->tstart = 0;
}

/* ---- the head -------------------------------------------------------------- */

static enum http_method method_id(struct http_str m)
{
    static const struct {
        const char *name;
        enum http_method id;
    } known[] = {
        {"GET", HTTP_GET},     {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
        {"PUT", HTTP_PUT},     {"DELETE", HTTP_DELETE}, {"OPTIONS", HTTP_OPTIONS},
        {"PATCH", HTTP_PATCH}, {"TRACE", HTTP_TRACE},   {"CONNECT", HTTP_CONNECT},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (http_str_eq(m, known[i].name))
            return known[i].id;
    return HTTP_OTHER;
}

/* Split the request target into path and query. Returns 0 or -400. */
static int parse_target(struct http_request *r)
{
    const char *t = r->target.p;
    size_t n = r->target.len;
    for (size_t i = 0; i < n; i++)
        if (!is((unsigned char)t[i], C_TARGET) || t[i] == '#')
            return -400;
    size_t pstart;
    if (t[0] == '/') {
        pstart = 0;
    } else if (n == 1 && t[0] == '*') {
        if (r->method_id != HTTP_OPTIONS)
            return -400;
        r->path = r->target;
        r->query = (struct http_str){t + n, 0};
        return 0;
    } else if (r->method_id == HTTP_CONNECT) {
        r->path = r->target; /* authority-form: host:port */
        r->query = (struct http_str){t + n, 0};
        return 0;
    } else {
        /* absolute-form: scheme "://" authority [path] */
        const char *sep = memmem(t, n, "://", 3);
        if (!sep || sep == t)
            return -400;
        for (const char *c = t; c < sep; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (c > t && ((*c >= '0' && *c <= '9') || *c == '+' || *c == '-' || *c == '.'))))
                return -400;
        pstart = (size_t)(sep - t) + 3;
        while (pstart < n && t[pstart] != '/' && t[pstart] != '?')
            pstart++;
        if (pstart == (size_t)(sep - t) + 3)
            return -400; /* no authority */
    }
    size_t q = pstart;
    while (q < n && t[q] != '?')
        q++;
    if (q == pstart)
        r->path = (struct http_str){"/", 1};
    else
        r->path = (struct http_str){t + pstart, q - pstart};
    r->query = q < n ? (struct http_str){t + q + 1, n - q - 1} : (struct http_str){t + n, 0};
    return 0;
}

/* "HTTP/" DIGIT "." DIGIT -> 10 or 11; -505 for other versions; -400 if malformed. */
static int parse_version(const char *v, size_t n)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return -400;
    if (v[5] != '1')
        return -505;
    return v[7] == '0' ? 10 : 11;
}

/* The request line buf[start, end) (line terminator excluded). */
static int parse_request_line(struct http_request *r, const char *buf, size_t start, size_t end)
{
    const char *l = buf + start;
    size_t n = end - start;
    size_t i = 0;
    while (i < n && is((unsigned char)l[i], C_TCHAR))
        i++;
    if (i == 0 || i >= n || l[i] != ' ')
        return -400;
    r->method = (struct http_str){l, i};
    r->method_id = method_id(r->method);
    size_t ts = ++i;
    while (i < n && l[i] != ' ')
        i++;
    if (i == ts || i >= n)
        return -400;
    r->target = (struct http_str){l + ts, i - ts};
    int v = parse_version(l + i + 1, n - i - 1);
    if (v < 0)
        return v;
    r->version = (unsigned)v;
    return parse_target(r);
}

/*
 * One header line buf[s, e) (terminator excluded) into h. Returns 0 or -400.
 * Folding (a line starting with a space) and a space before the colon are
 * refused.
 */
static int parse_header_line(const char *buf, size_t s, size_t e, struct http_header *h)
{
    const char *l = buf + s;
    size_t n = e - s;
    size_t i = 0;
    while (i < n && is((unsigned char)l[i], C_TCHAR))
        i++;
    if (i == 0 || i >= n || l[i] != ':')
        return -400;
    h->name = (struct http_str){l, i};
    for (size_t j = i + 1; j < n; j++)
        if (!is((unsigned char)l[j], C_VALUE))
            return -400;
    h->value = trim((struct http_str){l + i + 1, n - i - 1});
    return 0;
}

/* The end of the line that ends at the LF at buf[lf]: CR excluded. A CR
 * anywhere else in a line is refused by the character classes. */
static size_t line_stop(const char *buf, size_t from, size_t lf)
{
    return lf > from && buf[lf - 1] == '\r' ? lf - 1 : lf;
}

static int parse_content_length(struct http_str v, uint64_t *out)
{
    if (v.len == 0 || v.len > 18)
        return -400; /* 18 digits cannot overflow; the limit refuses far less */
    uint64_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -400;
        x = x * 10 + (uint64_t)(v.p[i] - '0');
    }
    *out = x;
    return 0;
}

static int conn_token(struct http_str tok, void *arg)
{
    int *c = arg;
    if (http_str_ieq(tok, "close"))
        *c |= 1;
    else if (http_str_ieq(tok, "keep-alive"))
        *c |= 2;
    return 0;
}

static int te_token(struct http_str tok, void *arg)
{
    int *n = arg;
    if (!http_str_ieq(tok, "chunked"))
        return -501;
    ++*n;
    return 0;
}

/* What the header fields say about the message, checked as a whole. */
static int interpret_headers(struct http_request *r, const struct http_limits *lim)
{
    bool have_cl = false;
    unsigned nhost = 0, nte = 0;
    int conn = 0;
    r->content_length = 0;
    r->chunked = false;
    r->expect_continue = false;
    r->host = (struct http_str){NULL, 0};
    for (unsigned i = 0; i < r->nheaders; i++) {
        const struct http_header *h = &r->headers[i];
        switch (lower((unsigned char)h->name.p[0])) {
        case 'c':
            if (http_str_ieq(h->name, "content-length")) {
                uint64_t v;
                if (parse_content_length(h->value, &v) < 0 || (have_cl && v != r->content_length))
                    return -400;
                have_cl = true;
                r->content_length = v;
            } else if (http_str_ieq(h->name, "connection")) {
                each_token(h->value, conn_token, &conn);
            }
            break;
        case 't':
            if (http_str_ieq(h->name, "transfer-encoding")) {
                int chunks = 0;
                int rc = each_token(h->value, te_token, &chunks);
                if (rc)
                    return rc;
                if (chunks != 1 || ++nte > 1)
                    return -400; /* "chunked" twice, or an empty list */
                r->chunked = true;
            }
            break;
        case 'h':
            if (http_str_ieq(h->name, "host"))
                nhost++, r->host = h->value;
            break;
        case 'e':
            if (http_str_ieq(h->name, "expect") && r->version >= 11) {
                /* RFC 9110: a 1.0 client's Expect is ignored */
                if (!http_str_ieq(h->value, "100-continue"))
                    return -417;
                r->expect_continue = true;
            }
            break;
        }
    }
    if (r->chunked && have_cl)
        return -400;
    if (r->version >= 11 ? nhost != 1 : nhost > 1)
        return -400;
    if (!r->chunked && r->content_length > lim->body)
        return -413;
    if (r->version >= 11)
        r->keep_alive = !(conn & 1);
    else
        r->keep_alive = (conn & 2) && !(conn & 1);
    return 0;
}

/*
 * Parse the whole head buf[0, head_len) (its end already found; line_end is
 * where the request line ends). Fills p->req's head fields.
 */
static int parse_head(struct http_parser *p, const char *buf, size_t head_len)
{
    struct http_request *r = &p->req;
    size_t start = 0;
    while (buf[start] == '\r' || buf[start] == '\n')
        start++; /* empty lines before the request (checked by find_line_end) */
    size_t lf = p->line_end - 1;
    int rc = parse_request_line(r, buf, start, line_stop(buf, start, lf));
    if (rc)
        return rc;
    r->nheaders = 0;
    size_t s = p->line_end;
    for (;;) {
        const char *nl = memchr(buf + s, '\n', head_len - s);
        size_t e = line_stop(buf, s, (size_t)(nl - buf));
        if (e == s)
            break; /* the blank line */
        if (r->nheaders == p->lim.headers)
            return -431;
        rc = parse_header_line(buf, s, e, &r->headers[r->nheaders]);
        if (rc)
            return rc;
        r->nheaders++;
        s = (size_t)(nl - buf) + 1;
    }
    r->head_len = head_len;
    return interpret_headers(r, &p->lim);
}

/* Find the end of the request line (skipping empty lines before it). */
static long find_line_end(struct http_parser *p, const char *buf, size_t len)
{
    size_t start = 0;
    while (start < len && (buf[start] == '\r' || buf[start] == '\n')) {
        if (buf[start] == '\r' && start + 1 < len && buf[start + 1] != '\n')
            return -400;
        start++;
    }
    if (start > p->lim.request_line)
        return -400; /* a stream of empty lines */
    size_t from = p->scan > start ? p->scan : start;
    const char *nl = memchr(buf + from, '\n', len - from);
    if (!nl) {
        p->scan = len;
        /* garbage (a TLS hello, a binary protocol) is refused at once, not
         * after 8 KiB or a timeout: the method must be a token */
        size_t m = start;
        while (m < len && is((unsigned char)buf[m], C_TCHAR))
            m++;
        if (m < len && (buf[m] != ' ' || m == start))
            return -400;
        /* the line so far, a CR that may precede its LF allowed for */
        size_t n = len - start;
        if (n > p->lim.request_line + 1 || (n == p->lim.request_line + 1 && buf[len - 1] != '\r'))
            return -414;
        return 0;
    }
    size_t lf = (size_t)(nl - buf);
    size_t stop = line_stop(buf, start, lf);
    if (stop - start > p->lim.request_line)
        return -414;
    /* judge the request line now, not after the headers */
    int rc = parse_request_line(&p->req, buf, start, stop);
    if (rc)
        return rc;
    p->line_end = lf + 1;
    p->scan = lf; /* the head's end is searched from the request line's LF */
    return 1;
}

/*
 * Find the blank line that ends the head. Returns the head's length, 0 to
 * need more, or -431 when the header block is over its limit.
 */
static long find_head_end(struct http_parser *p, const char *buf, size_t len)
{
    size_t i = p->scan; /* an LF not yet known to be the head's end, or where to look */
    for (;;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl) {
            i = len;
            break;
        }
        i = (size_t)(nl - buf);
        if (i + 1 >= len)
            break; /* what follows this LF has not arrived */
        if (buf[i + 1] == '\n') {
            i += 2;
            goto found;
        }
        if (buf[i + 1] == '\r') {
            if (i + 2 >= len)
                break;
            if (buf[i + 2] == '\n') {
                i += 3;
                goto found;
            }
        }
        i++;
    }
    p->scan = i;
    if (len - p->line_end > p->lim.header_block)
        return -431;
    return 0;
found:
    if (i - p->line_end > p->lim.header_block)
        return -431;
    return (long)i;
}

/* ---- chunked bodies --------------------------------------------------------- */

enum { CS_SIZE = 0, CS_DATA, CS_DATA_END, CS_TRAILER, CS_DONE };

#define CHUNK_LINE_MAX 4096 /* a chunk-size line with its extensions */

/* The chunk-size line buf[s, e): hex digits, optional extensions. */
static int parse_chunk_size(const char *buf, size_t s, size_t e, uint64_t *size)
{
    uint64_t x = 0;
    size_t i = s;
    while (i < e && is((unsigned char)buf[i], C_HEX)) {
        if (i - s == 15)
            return -413; /* 16 hex digits: far over any body limit */
        int c = lower((unsigned char)buf[i]);
        x = x * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
        i++;
    }
    if (i == s)
        return -400;
    while (i < e && (buf[i] == ' ' || buf[i] == '\t'))
        i++;
    if (i < e) {
        if (buf[i] != ';')
            return -400;
        for (; i < e; i++)
            if (!is((unsigned char)buf[i], C_VALUE))
                return -400;
    }
    *size = x;
    return 0;
}

/* Move the chunked scanner over buf[cpos, len). Returns the request's total
 * length once the last chunk and trailers are in, 0, or an error. */
static long scan_chunked(struct http_parser *p, const char *buf, size_t len)
{
    while (p->cpos < len) {
        switch (p->cstate) {
        case CS_SIZE: {
            const char *nl = memchr(buf + p->cpos, '\n', len - p->cpos);
            if (!nl)
                return len - p->cpos > CHUNK_LINE_MAX ? -400 : 0;
            size_t lf = (size_t)(nl - buf);
            if (lf - p->cpos > CHUNK_LINE_MAX)
                return -400;
            uint64_t size;
            int rc = parse_chunk_size(buf, p->cpos, line_stop(buf, p->cpos, lf), &size);
            if (rc)
                return rc;
            if (size > p->lim.body - p->cdecoded)
                return -413;
            p->cdecoded += size;
            p->cpos = lf + 1;
            if (size == 0) {
                p->cstate = CS_TRAILER;
                p->tstart = p->cpos;
            } else {
                p->cleft = size;
                p->cstate = CS_DATA;
            }
            break;
        }
        case CS_DATA: {
            size_t n = len - p->cpos;
            if (n > p->cleft)
                n = (size_t)p->cleft;
            p->cpos += n;
            p->cleft -= n;
            if (p->cleft == 0)
                p->cstate = CS_DATA_END;
            break;
        }
        case CS_DATA_END:
            if (buf[p->cpos] == '\n') {
                p->cpos++;
            } else if (buf[p->cpos] == '\r') {
                if (p->cpos + 1 >= len)
                    return 0;
                if (buf[p->cpos + 1] != '\n')
                    return -400;
                p->cpos += 2;
            } else {
                return -400;
            }
            p->cstate = CS_SIZE;
            break;
        case CS_TRAILER: {
            const char *nl = memchr(buf + p->cpos, '\n', len - p->cpos);
            if (!nl)
                return len - p->tstart > p->lim.header_block ? -431 : 0;
            size_t lf = (size_t)(nl - buf);
            size_t e = line_stop(buf, p->cpos, lf);
            if (lf + 1 - p->tstart > p->lim.header_block)
                return -431;
            if (e == p->cpos) {
                p->cpos = lf + 1;
                p->cstate = CS_DONE;
                return (long)p->cpos;
            }
            struct http_header h;
            if (parse_header_line(buf, p->cpos, e, &h))
                return -400;
            if (p->req.nheaders + ++p->ctrailers > p->lim.headers)
                return -431;
            p->cpos = lf + 1;
            break;
        }
        default:
            return (long)p->cpos;
        }
    }
    return 0;
}

size_t http_chunked_decode(const struct http_request *req, char *out)
{
    const char *b = req->body.p, *end = b + req->body.len;
    size_t n = 0;
    for (;;) {
        const char *nl = memchr(b, '\n', (size_t)(end - b));
        uint64_t size = 0;
        for (; b < nl && is((unsigned char)*b, C_HEX); b++) {
            int c = lower((unsigned char)*b);
            size = size * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        if (size == 0)
            return n;
        memcpy(out + n, nl + 1, size);
        n += size;
        b = nl + 1 + size;
        b += *b == '\r' ? 2 : 1;
    }
}

/* ---- the parser's entry point ----------------------------------------------- */

long http_parse(struct http_parser *p, const char *buf, size_t len)
{
    struct http_request *r = &p->req;
    if (!p->head_done) {
        long rc;
        if (!p->line_end && (rc = find_line_end(p, buf, len)) <= 0)
            return rc;
        rc = find_head_end(p, buf, len);
        if (rc <= 0)
            return rc;
        rc = parse_head(p, buf, (size_t)rc);
        if (rc)
            return rc;
        p->head_done = true;
        p->cpos = r->head_len;
    } else {
        /* the buffer may have moved: point the head's strings at this one */
        long rc = parse_head(p, buf, r->head_len);
        if (rc)
            return rc; /* cannot happen: the same bytes parsed before */
    }
    if (r->chunked) {
        long rc = scan_chunked(p, buf, len);
        if (rc <= 0)
            return rc;
        r->content_length = p->cdecoded;
        r->total_len = (size_t)rc;
    } else {
        if (len - r->head_len < r->content_length)
            return 0;
        r->total_len = r->head_len + (size_t)r->content_length;
    }
    r->body = (struct http_str){buf + r->head_len, r->total_len - r->head_len};
    return (long)r->total_len;
}

const struct http_str *http_header_get(const struct http_request *req, const char *name)
{
    for (unsigned i = 0; i < req->nheaders; i++)
        if (http_str_ieq(req->headers[i].name, name))
            return &req->headers[i].value;
    return NULL;
}

bool http_query_get(struct http_str query, const char *key, struct http_str *value)
{
    size_t klen = strlen(key), i = 0;
    while (i < query.len) {
        size_t j = i;
        while (j < query.len && query.p[j] != '&')
            j++;
        size_t eq = i;
        while (eq < j && query.p[eq] != '=')
            eq++;
        if (eq - i == klen && memcmp(query.p + i, key, klen) == 0) {
            *value = eq < j ? (struct http_str){query.p + eq + 1, j - eq - 1}
                            : (struct http_str){query.p + j, 0};
            return true;
        }
        i = j + 1;
    }
    return false;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* ---- paths ---------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long http_path_resolve(struct http_str path, char *out, size_t cap, bool *dir)
{
    /* decode first, so that "%2e%2e" and "..%2f" are seen for what they are */
    size_t n = 0;
    for (size_t i = 0; i < path.len; i++) {
        char c = path.p[i];
        if (c == '%') {
            int hi = i + 2 < path.len ? hexval(path.p[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(path.p[i + 2]) : -1;
            if (lo < 0)
                return -400;
            c = (char)(hi * 16 + lo);
            if (c == 0)
                return -400;
            i += 2;
        }
        if (n + 1 >= cap)
            return -414;
        out[n++] = c;
    }
    *dir = n == 0 || out[n - 1] == '/';
    /* then normalise in place: the write position never passes the read one */
    size_t w = 0, r = 0;
    while (r < n) {
        size_t s = r;
        while (r < n && out[r] != '/')
            r++;
        size_t len = r - s;
        r++; /* past the '/' */
        if (len == 0 || (len == 1 && out[s] == '.'))
            continue;
        if (len == 2 && out[s] == '.' && out[s + 1] == '.') {
            if (w == 0)
                return -403; /* above the root */
            while (w > 0 && out[w - 1] != '/')
                w--;
            if (w > 0)
                w--; /* the separator */
            continue;
        }
        if (w)
            out[w++] = '/';
        memmove(out + w, out + s, len);
        w += len;
    }
    out[w] = 0;
    return (long)w;
}

const char *http_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"txt", "text/plain; charset=utf-8"},
        {"md", "text/markdown; charset=utf-8"},
        {"csv", "text/csv; charset=utf-8"},
        {"xml", "application/xml"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"ico", "image/x-icon"},
        {"pdf", "application/pdf"},
        {"wasm", "application/wasm"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"mp4", "video/mp4"},
        {"webm", "video/webm"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
    };
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash + 1 : name, '.');
    if (dot && dot[1])
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* ---- responses ----------------------------------------------------------- */

void http_date_cache_init(struct http_date_cache *c)
{
    c->sec = -1;
    c->str[0] = 0;
}

const char *http_date(struct http_date_cache *c, int64_t sec)
{
    if (sec == c->sec)
        return c->str;
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof tm);
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999)
        year = 0;
    char *o = c->str;
    memcpy(o, days[(unsigned)tm.tm_wday % 7], 3);
    o[3] = ',', o[4] = ' ';
    o[5] = (char)('0' + tm.tm_mday / 10 % 10), o[6] = (char)('0' + tm.tm_mday % 10), o[7] = ' ';
    memcpy(o + 8, months[(unsigned)tm.tm_mon % 12], 3);
    o[11] = ' ';
    o[12] = (char)('0' + year / 1000), o[13] = (char)('0' + year / 100 % 10);
    o[14] = (char)('0' + year / 10 % 10), o[15] = (char)('0' + year % 10), o[16] = ' ';
    int hms[3] = {tm.tm_hour, tm.tm_min, tm.tm_sec};
    for (int i = 0; i < 3; i++) {
        o[17 + 3 * i] = (char)('0' + hms[i] / 10 % 10);
        o[18 + 3 * i] = (char)('0' + hms[i] % 10);
        o[19 + 3 * i] = i < 2 ? ':' : ' ';
    }
    memcpy(o + 26, "GMT", 4); /* 29 characters and the NUL */
    c->sec = sec;
    return c->str;
}

struct out {
    char *p;
    size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len < o->cap)
        memcpy(o->p + o->len, s, o->len + n <= o->cap ? n : o->cap - o->len);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof tmp - i);
}

static void put_header(struct out *o, const char *name, const char *value)
{
    puts_(o, name);
    put(o, ": ", 2);
    puts_(o, value);
    put(o, "\r\n", 2);
}

size_t http_format_head(char *buf, size_t cap, const struct http_head *h)
{
    struct out o = {buf, cap, 0};
    puts_(&o, h->version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ");
    int st = h->status >= 100 && h->status <= 999 ? h->status : 500;
    char code[4] = {(char)('0' + st / 100), (char)('0' + st / 10 % 10), (char)('0' + st % 10), ' '};
    put(&o, code, 4);
    puts_(&o, http_reason(st));
    put(&o, "\r\n", 2);
    if (h->server)
        put_header(&o, "Server", h->server);
    if (h->date)
        put_header(&o, "Date", h->date);
    if (h->content_type)
        put_header(&o, "Content-Type", h->content_type);
    if (h->content_length >= 0) {
        puts_(&o, "Content-Length: ");
        put_u64(&o, (uint64_t)h->content_length);
        put(&o, "\r\n", 2);
    } else if (h->content_length == HTTP_LEN_CHUNKED) {
        puts_(&o, "Transfer-Encoding: chunked\r\n");
    }
    if (h->close)
        puts_(&o, "Connection: close\r\n");
    else if (h->version < 11)
        puts_(&o, "Connection: keep-alive\r\n");
    if (h->extra)
        puts_(&o, h->extra);
    put(&o, "\r\n", 2);
    return o.len;
}

size_t http_chunk_header(char *buf, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[18];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = hex[n & 15];
        n >>= 4;
    } while (n);
    size_t len = sizeof tmp - i;
    memcpy(buf, tmp + i, len);
    memcpy(buf + len, "\r\n", 2);
    return len + 2;
}

/* ---- the response parser ---------------------------------------------------- */

const struct http_str *http_response_header(const struct http_response *r, const char *name)
{
    for (unsigned i = 0; i < r->nheaders; i++)
        if (http_str_ieq(r->headers[i].name, name))
            return &r->headers[i].value;
    return NULL;
}

long http_parse_response(const char *buf, size_t len, bool head_only, bool at_eof,
                         struct http_response *r)
{
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return len > 8192 ? -1 : 0;
    size_t le = line_stop(buf, 0, (size_t)(nl - buf));
    if (le < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[7] < '0' || buf[7] > '9' ||
        buf[8] != ' ' || (le > 12 && buf[12] != ' '))
        return -1;
    r->version = buf[7] == '0' ? 10 : 11;
    r->status = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        r->status = r->status * 10 + (buf[i] - '0');
    }
    /* the head's end */
    size_t s = (size_t)(nl - buf) + 1;
    r->nheaders = 0;
    int conn = 0;
    r->chunked = false;
    r->content_length = -1;
    for (;;) {
        const char *n2 = memchr(buf + s, '\n', len - s);
        if (!n2)
            return len > 65536 ? -1 : 0;
        size_t e = line_stop(buf, s, (size_t)(n2 - buf));
        if (e == s) {
            s = (size_t)(n2 - buf) + 1;
            break;
        }
        if (r->nheaders == HTTP_MAX_HEADERS)
            return -1;
        struct http_header *h = &r->headers[r->nheaders++];
        if (parse_header_line(buf, s, e, h))
            return -1;
        if (http_str_ieq(h->name, "content-length")) {
            uint64_t v;
            if (parse_content_length(h->value, &v))
                return -1;
            r->content_length = (int64_t)v;
        } else if (http_str_ieq(h->name, "transfer-encoding")) {
            r->chunked = http_str_ieq(h->value, "chunked");
            if (!r->chunked)
                return -1;
        } else if (http_str_ieq(h->name, "connection")) {
            each_token(h->value, conn_token, &conn);
        }
        s = (size_t)(n2 - buf) + 1;
    }
    r->head_len = s;
    r->keep_alive = r->version >= 11 ? !(conn & 1) : (conn & 2) && !(conn & 1);
    bool nobody = head_only || r->status / 100 == 1 || r->status == 204 || r->status == 304;
    if (nobody) {
        r->body = (struct http_str){buf + s, 0};
        r->body_len = 0;
        r->total_len = s;
        return (long)s;
    }
    if (r->chunked) {
        /* reuse the request parser's chunk scanner */
        struct http_parser p;
        http_parser_init(&p, NULL);
        p.lim.body = UINT64_MAX / 2;
        p.lim.header_block = 65536;
        p.req.nheaders = 0;
        p.cpos = s;
        long rc = scan_chunked(&p, buf, len);
        if (rc <= 0)
            return rc < 0 ? -1 : 0;
        r->body = (struct http_str){buf + s, (size_t)rc - s};
        r->body_len = p.cdecoded;
        r->total_len = (size_t)rc;
        return rc;
    }
    if (r->content_length >= 0) {
        if (len - s < (uint64_t)r->content_length)
            return 0;
        r->total_len = s + (size_t)r->content_length;
    } else {
        if (!at_eof)
            return 0;
        r->total_len = len;
    }
    r->body = (struct http_str){buf + s, r->total_len - s};
    r->body_len = r->body.len;
    return (long)r->total_len;
}
