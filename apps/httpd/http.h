/*
 * http.h — HTTP/1.1 as pure functions over a buffer: a request parser that
 * can be fed a request a few bytes at a time, a response-head writer, the
 * chunked encoding both ways, the Date header, and a small response parser
 * (for clients: the tests and the simulated load).
 *
 * Nothing here does I/O, allocates, or reads a clock: the server (server.c)
 * owns the buffers and the sockets, and passes in the time. That is what lets
 * test_http.c feed a request split at every byte and check each answer.
 *
 * The request parser is incremental. The caller keeps the bytes of the
 * current request in one buffer that starts at the request's first byte and
 * grows as bytes arrive (it may move between calls: the parser keeps offsets,
 * never pointers, across calls), and calls http_parse() after each arrival:
 *
 *   > 0   complete: the request is the first n bytes; p->req describes it
 *         (its strings point into the buffer of *this* call)
 *   0     need more bytes (p->head_done says whether the head is in, so that
 *         the caller can answer "Expect: 100-continue")
 *   < 0   an error status, negated: -400, -413, -414, -417, -431, -501, -505;
 *         the connection cannot go on (framing is lost): answer and close
 *
 * The work done per call is proportional to the new bytes, not to the whole
 * buffer: a client that sends its head one byte at a time costs O(n), not
 * O(n^2).
 */
#ifndef HTTPD_HTTP_H
#define HTTPD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A piece of the buffer: not NUL-terminated. */
struct http_str {
    const char *p;
    size_t len;
};

enum http_method {
    HTTP_OTHER = 0, /* a valid token we do not know (the route may still answer 405/501) */
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_PATCH,
    HTTP_TRACE,
    HTTP_CONNECT,
};

/* The most header fields a request may have (trailers of a chunked body count too). */
#define HTTP_MAX_HEADERS 100

struct http_header {
    struct http_str name;  /* as sent; compare with http_str_ieq() */
    struct http_str value; /* without the surrounding spaces */
};

/* Limits; http_limits_default() gives the ones below. */
struct http_limits {
    size_t request_line; /* bytes of the request line, CRLF excluded (8 KiB) -> 414 */
    size_t
        header_block; /* bytes of the header fields after it, blank line included (16 KiB) -> 431 */
    unsigned headers; /* header fields (100, at most HTTP_MAX_HEADERS) -> 431 */
    uint64_t body;    /* decoded body bytes (1 MiB) -> 413 */
};

struct http_request {
    struct http_str method; /* the token as sent */
    enum http_method method_id;
    struct http_str target;  /* the request target as sent */
    struct http_str path;    /* its path: "/" for an absolute URI with none; "*" for "*";
                                the authority for CONNECT */
    struct http_str query;   /* after '?', without it (len 0 if none) */
    unsigned version;        /* 10 for HTTP/1.0, 11 for HTTP/1.1 (and 1.x, x > 1) */
    bool keep_alive;         /* the connection may carry another request after this one */
    bool expect_continue;    /* "Expect: 100-continue" on an HTTP/1.1 request */
    bool chunked;            /* the body came with Transfer-Encoding: chunked */
    struct http_str host;    /* the Host header (len 0 if none: only HTTP/1.0 may omit it) */
    uint64_t content_length; /* the body's decoded length */
    size_t head_len;         /* request line + header fields + blank line, in bytes */
    size_t total_len;        /* the whole request in the buffer (head + body as sent) */
    /* Content-Length body: the bytes themselves. Chunked: the raw chunks
     * (use http_chunked_decode() to get the body). */
    struct http_str body;
    unsigned nheaders;
    struct http_header headers[HTTP_MAX_HEADERS];
};

/* What http_parse() keeps between calls for one request. */
struct http_parser {
    struct http_limits lim;
    size_t scan;     /* head: bytes known to hold no end of the head */
    size_t line_end; /* head: end of the request line (0 until found) */
    bool head_done;  /* the head is in and valid: p->req's head fields are set */
    /* chunked body: where the scanner stands */
    uint8_t cstate;     /* enum in http.c */
    size_t cpos;        /* offset of the next thing to read */
    uint64_t cleft;     /* bytes of the current chunk's data still to come */
    uint64_t cdecoded;  /* body bytes seen so far */
    unsigned ctrailers; /* trailer fields seen (they are checked, then dropped) */
    size_t tstart;      /* where the trailer section starts */
    struct http_request req;
};

/* The defaults: 8 KiB, 16 KiB, 100 headers, 1 MiB. */
struct http_limits http_limits_default(void);

/* Ready @p p for a new request with the limits @p lim (NULL: the defaults). */
void http_parser_init(struct http_parser *p, const struct http_limits *lim);

/* Forget the current request (keeps the limits). */
void http_parser_reset(struct http_parser *p);

/*
 * Parse the request at the start of buf[0, len). @p buf must start at the
 * same request as in the previous call on @p p, and hold at least the bytes
 * it held then (it may have moved). Returns the request's length when it is
 * complete, 0 when more bytes are needed, or a negated status code.
 */
long http_parse(struct http_parser *p, const char *buf, size_t len);

/*
 * Decode a complete chunked body (req->body of a chunked request) into @p out,
 * which has room for req->content_length bytes. Returns the bytes written.
 */
size_t http_chunked_decode(const struct http_request *req, char *out);

/* The value of header @p name (case-insensitive), or NULL. */
const struct http_str *http_header_get(const struct http_request *req, const char *name);

/* True if @p s equals the NUL-terminated @p lit, ignoring ASCII case. */
bool http_str_ieq(struct http_str s, const char *lit);

/* True if @p s equals @p lit exactly. */
bool http_str_eq(struct http_str s, const char *lit);

/*
 * The value of @p key in a query string ("a=1&b=2"), as sent (not decoded).
 * Returns true if the key is there (a key without '=' has an empty value).
 */
bool http_query_get(struct http_str query, const char *key, struct http_str *value);

/* The reason phrase of @p status ("OK", "Not Found", ...; "Unknown" if we do not know it). */
const char *http_reason(int status);

/* ---- paths ------------------------------------------------------------------ */

/*
 * Turn a request path into a path relative to the root: percent-decoded,
 * "." and empty segments dropped, ".." taking back one segment. Writes it,
 * NUL-terminated and without a leading '/', into out[0, cap) ("" for the
 * root itself). *dir says whether the request path ended with '/'.
 * Returns its length, or -400 (a bad %-escape, a NUL), -403 (".." above the
 * root), -414 (longer than @p cap).
 */
long http_path_resolve(struct http_str path, char *out, size_t cap, bool *dir);

/* The Content-Type for a file name, by its extension ("application/octet-stream" if unknown). */
const char *http_content_type(const char *name);

/* ---- responses ---------------------------------------------------------- */

/* The Date header's value for one second, recomputed when the second changes. */
struct http_date_cache {
    int64_t sec;  /* the Unix second str is for (-1: none yet) */
    char str[32]; /* "Sun, 06 Nov 1994 08:49:37 GMT" */
};

void http_date_cache_init(struct http_date_cache *c);

/* The IMF-fixdate for Unix second @p sec, formatted once per second. */
const char *http_date(struct http_date_cache *c, int64_t sec);

/* Body framing of a response head. */
#define HTTP_LEN_CHUNKED (-1) /* Transfer-Encoding: chunked */
#define HTTP_LEN_NONE    (-2) /* no body and no length (1xx, 204, 304) */

struct http_head {
    int status;
    unsigned version;         /* the request's (10 or 11): a 1.0 client gets no chunked */
    const char *date;         /* Date value, or NULL for none */
    const char *server;       /* Server value, or NULL for none */
    const char *content_type; /* or NULL for none */
    int64_t content_length;   /* >= 0, HTTP_LEN_CHUNKED or HTTP_LEN_NONE */
    bool close;               /* "Connection: close"; else keep-alive (said out loud to 1.0) */
    const char *extra;        /* more header lines, each ending "\r\n", or NULL */
};

/*
 * Write the status line and headers of @p h, with the blank line, into
 * buf[0, cap). Returns the length; if that is more than @p cap, nothing
 * useful was written and the caller needs a bigger buffer.
 */
size_t http_format_head(char *buf, size_t cap, const struct http_head *h);

/* The chunk-size line for a chunk of @p n bytes ("1a2\r\n"); @p buf has room for 20. */
size_t http_chunk_header(char *buf, size_t n);

/* The last chunk and the end of the body: "0\r\n\r\n". */
#define HTTP_LAST_CHUNK "0\r\n\r\n"

/* ---- a response parser (for clients) ------------------------------------ */

struct http_response {
    int status;
    unsigned version;
    bool keep_alive;
    bool chunked;
    int64_t content_length; /* -1 if none given */
    size_t head_len;
    size_t total_len;
    struct http_str body; /* Content-Length: the bytes; chunked: the raw chunks */
    uint64_t body_len;    /* decoded */
    unsigned nheaders;
    struct http_header headers[HTTP_MAX_HEADERS];
};

/*
 * Parse one response at the start of buf[0, len). @p head_only: the response
 * answers a HEAD request (no body whatever the headers say). A response with
 * neither length nor chunked framing is taken to end at the end of @p len
 * only if @p at_eof. Returns its length, 0 (need more), or -1 (malformed).
 * Not incremental: clients call it again on the grown buffer.
 */
long http_parse_response(const char *buf, size_t len, bool head_only, bool at_eof,
                         struct http_response *r);

/* The value of header @p name in a response, or NULL. */
const struct http_str *http_response_header(const struct http_response *r, const char *name);

#endif
