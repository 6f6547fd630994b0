/*
 * proto.c — see proto.h. The rules follow memcached's own text protocol
 * handling (tokens split on spaces, "noreply" as a last token, the token
 * counts each command accepts); the code is ours.
 */
#include <string.h>

#include "apps/memcached/proto.h"

#define MAX_TOKENS 8 /* the most any non-get command takes, plus one to spot extras */

struct token {
    const char *p;
    uint32_t len;
};

static const char *const cmd_names[MC_CMD__COUNT] = {
    [MC_CMD_NONE] = "none",
    [MC_CMD_GET] = "get",
    [MC_CMD_GETS] = "gets",
    [MC_CMD_SET] = "set",
    [MC_CMD_ADD] = "add",
    [MC_CMD_REPLACE] = "replace",
    [MC_CMD_APPEND] = "append",
    [MC_CMD_PREPEND] = "prepend",
    [MC_CMD_CAS] = "cas",
    [MC_CMD_DELETE] = "delete",
    [MC_CMD_INCR] = "incr",
    [MC_CMD_DECR] = "decr",
    [MC_CMD_TOUCH] = "touch",
    [MC_CMD_FLUSH_ALL] = "flush_all",
    [MC_CMD_STATS] = "stats",
    [MC_CMD_VERSION] = "version",
    [MC_CMD_VERBOSITY] = "verbosity",
    [MC_CMD_QUIT] = "quit",
};

static const char *const error_texts[MC_ERR__COUNT] = {
    [MC_ERR_NONE] = "",
    [MC_ERR_UNKNOWN] = "ERROR\r\n",
    [MC_ERR_FORMAT] = "CLIENT_ERROR bad command line format\r\n",
    [MC_ERR_LINE_TOO_LONG] = "CLIENT_ERROR line too long\r\n",
    [MC_ERR_BAD_CHUNK] = "CLIENT_ERROR bad data chunk\r\n",
    [MC_ERR_TOO_LARGE] = "SERVER_ERROR object too large for cache\r\n",
    [MC_ERR_DELTA] = "CLIENT_ERROR invalid numeric delta argument\r\n",
    [MC_ERR_NON_NUMERIC] = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    [MC_ERR_EXPTIME] = "CLIENT_ERROR invalid exptime argument\r\n",
    [MC_ERR_DELETE_USAGE] =
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
    [MC_ERR_NO_MEMORY] = "SERVER_ERROR out of memory storing object\r\n",
    [MC_ERR_BUSY] = "SERVER_ERROR temporary failure\r\n",
};

const char *mc_cmd_name(enum mc_cmd cmd)
{
    return (unsigned)cmd < MC_CMD__COUNT ? cmd_names[cmd] : "?";
}

const char *mc_error_text(enum mc_error err)
{
    return (unsigned)err < MC_ERR__COUNT ? error_texts[err] : "SERVER_ERROR\r\n";
}

bool mc_error_reply(enum mc_error err, bool noreply)
{
    if (!noreply)
        return true;
    return err == MC_ERR_TOO_LARGE || err == MC_ERR_NO_MEMORY || err == MC_ERR_BUSY;
}

bool mc_cmd_is_storage(enum mc_cmd cmd)
{
    return cmd >= MC_CMD_SET && cmd <= MC_CMD_CAS;
}

/* ---- numbers ---- */

bool mc_parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_u32(const struct token *t, uint32_t *out)
{
    uint64_t v;
    if (!mc_parse_u64(t->p, t->len, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* A signed decimal in [-2^62, 2^62]: far beyond any exptime, and safe to add. */
static bool parse_i64(const struct token *t, int64_t *out)
{
    bool neg = t->len > 0 && t->p[0] == '-';
    uint64_t v;
    if (!mc_parse_u64(t->p + neg, t->len - neg, &v) || v > (UINT64_C(1) << 62))
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

size_t mc_format_u64(char *buf, uint64_t v)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

size_t mc_format_value_header(char *buf, const char *key, uint32_t key_len, uint32_t flags,
                              uint32_t bytes, bool with_cas, uint64_t cas)
{
    char *p = buf;
    memcpy(p, "VALUE ", 6);
    p += 6;
    memcpy(p, key, key_len);
    p += key_len;
    *p++ = ' ';
    p += mc_format_u64(p, flags);
    *p++ = ' ';
    p += mc_format_u64(p, bytes);
    if (with_cas) {
        *p++ = ' ';
        p += mc_format_u64(p, cas);
    }
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - buf);
}

/* ---- time ---- */

uint64_t mc_exptime_deadline(int64_t exptime, uint64_t now_ns, int64_t unix_now)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return MC_EXPIRED;
    int64_t rel = exptime;
    if (exptime > MC_REL_MAX) { /* an absolute unix time */
        if (exptime <= unix_now)
            return MC_EXPIRED;
        rel = exptime - unix_now;
    }
    uint64_t d = now_ns + (uint64_t)rel * UINT64_C(1000000000);
    return d <= MC_EXPIRED ? MC_EXPIRED + 1 : d;
}

/* ---- keys ---- */

uint64_t mc_hash(const char *key, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= UINT64_C(0x100000001b3); /* FNV prime */
    }
    /* FNV's low bits mix poorly; a 64-bit finalizer spreads every input
     * bit over the word, so that both the shard (from the high half) and
     * the bucket (from the low bits) are well distributed. */
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

/* A key is 1..250 bytes, none of them a control character or a space. */
static bool key_ok(const char *p, uint32_t len)
{
    if (len == 0 || len > MC_KEY_MAX)
        return false;
    for (uint32_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

bool mc_next_key(const struct mc_request *req, uint32_t *pos, const char **key, uint32_t *len)
{
    uint32_t i = *pos;
    while (i < req->keys_len && req->keys[i] == ' ')
        i++;
    if (i >= req->keys_len)
        return false;
    uint32_t start = i;
    while (i < req->keys_len && req->keys[i] != ' ')
        i++;
    *key = req->keys + start;
    *len = i - start;
    *pos = i;
    return true;
}

bool mc_check_chunk(const char *block, uint32_t value_len)
{
    return block[value_len] == '\r' && block[value_len + 1] == '\n';
}

/* ---- the parser ---- */

static uint32_t tokenize(const char *line, uint32_t len, struct token *t, uint32_t max)
{
    uint32_t n = 0, i = 0;
    while (i < len && n < max) {
        while (i < len && line[i] == ' ')
            i++;
        if (i == len)
            break;
        uint32_t s = i;
        while (i < len && line[i] != ' ')
            i++;
        t[n].p = line + s;
        t[n].len = i - s;
        n++;
    }
    return n;
}

static bool tok_is(const struct token *t, const char *s)
{
    size_t n = strlen(s);
    return t->len == n && memcmp(t->p, s, n) == 0;
}

static enum mc_cmd lookup_cmd(const struct token *t)
{
    for (int c = MC_CMD_GET; c < MC_CMD__COUNT; c++)
        if (tok_is(t, cmd_names[c]))
            return (enum mc_cmd)c;
    return MC_CMD_NONE;
}

static bool is_get_line(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && i < 100 && buf[i] == ' ')
        i++;
    return (len - i >= 4 && memcmp(buf + i, "get ", 4) == 0) ||
           (len - i >= 5 && memcmp(buf + i, "gets ", 5) == 0);
}

static int fail(struct mc_request *req, enum mc_error err, uint64_t *consumed, uint64_t n)
{
    req->error = err;
    *consumed = n;
    return MC_PARSE_ERROR;
}

/* "noreply" as the last token, whatever the count (as memcached decides it,
 * before it looks at the other tokens: an error in them is then not
 * answered). */
static void take_noreply(struct mc_request *req, const struct token *t, uint32_t n)
{
    if (n >= 2 && tok_is(&t[n - 1], "noreply"))
        req->noreply = true;
}

static int parse_get(struct mc_request *req, const struct token *t, uint32_t n, const char *line,
                     uint32_t len, uint64_t *consumed)
{
    if (n < 2)
        return fail(req, MC_ERR_UNKNOWN, consumed, req->line_len);
    req->keys = t[1].p;
    req->keys_len = (uint32_t)(line + len - t[1].p);
    req->key = t[1].p;
    req->key_len = t[1].len;
    uint32_t pos = 0, klen;
    const char *k;
    while (mc_next_key(req, &pos, &k, &klen)) {
        if (!key_ok(k, klen))
            return fail(req, MC_ERR_FORMAT, consumed, req->line_len);
        req->nkeys++;
    }
    *consumed = req->line_len;
    return MC_PARSE_OK;
}

static int parse_storage(struct mc_request *req, const struct token *t, uint32_t n, const char *buf,
                         size_t len, const struct mc_limits *lim, uint64_t *consumed)
{
    uint32_t base = req->cmd == MC_CMD_CAS ? 6 : 5; /* tokens without noreply */
    if (n != base && n != base + 1)
        return fail(req, MC_ERR_UNKNOWN, consumed, req->line_len);
    take_noreply(req, t, n);
    req->key = t[1].p;
    req->key_len = t[1].len;
    int64_t bytes;
    if (!key_ok(t[1].p, t[1].len) || !parse_u32(&t[2], &req->flags) ||
        !parse_i64(&t[3], &req->exptime) || !parse_i64(&t[4], &bytes) || bytes < 0 ||
        bytes > INT32_MAX || (req->cmd == MC_CMD_CAS && !mc_parse_u64(t[5].p, t[5].len, &req->cas)))
        return fail(req, MC_ERR_FORMAT, consumed, req->line_len); /* the block is not swallowed:
                                                                     its size is unknown */
    req->value_len = (uint32_t)bytes;
    uint64_t need = (uint64_t)req->line_len + req->value_len + 2;
    uint32_t max = lim && lim->max_item_size ? lim->max_item_size : MC_ITEM_MAX;
    if (req->value_len > max)
        return fail(req, MC_ERR_TOO_LARGE, consumed, need); /* swallow the block */
    if (len < need) {
        *consumed = 0;
        return MC_PARSE_MORE;
    }
    const char *block = buf + req->line_len;
    if (!mc_check_chunk(block, req->value_len))
        return fail(req, MC_ERR_BAD_CHUNK, consumed, need);
    req->value = block;
    *consumed = need;
    return MC_PARSE_OK;
}

static int parse_other(struct mc_request *req, const struct token *t, uint32_t n,
                       uint64_t *consumed)
{
    uint64_t ll = req->line_len;
    switch (req->cmd) {
    case MC_CMD_DELETE: /* delete <key> [0] [noreply] */
        if (n < 2 || n > 4)
            return fail(req, MC_ERR_UNKNOWN, consumed, ll);
        if (n > 2) {
            bool zero = tok_is(&t[2], "0");
            bool nr = tok_is(&t[n - 1], "noreply");
            if (!((n == 3 && (zero || nr)) || (n == 4 && zero && nr)))
                return fail(req, MC_ERR_DELETE_USAGE, consumed, ll);
            req->noreply = nr;
        }
        break;
    case MC_CMD_INCR:
    case MC_CMD_DECR: /* incr <key> <delta> [noreply] */
        if (n != 3 && n != 4)
            return fail(req, MC_ERR_UNKNOWN, consumed, ll);
        take_noreply(req, t, n);
        if (!mc_parse_u64(t[2].p, t[2].len, &req->delta))
            return fail(req, MC_ERR_DELTA, consumed, ll);
        break;
    case MC_CMD_TOUCH: /* touch <key> <exptime> [noreply] */
        if (n != 3 && n != 4)
            return fail(req, MC_ERR_UNKNOWN, consumed, ll);
        take_noreply(req, t, n);
        if (!parse_i64(&t[2], &req->exptime))
            return fail(req, MC_ERR_EXPTIME, consumed, ll);
        break;
    case MC_CMD_FLUSH_ALL: /* flush_all [delay] [noreply] */
        if (n > 3)
            return fail(req, MC_ERR_UNKNOWN, consumed, ll);
        if (n > 1 && tok_is(&t[n - 1], "noreply"))
            req->noreply = true;
        if (n - req->noreply == 2 && !parse_i64(&t[1], &req->delay))
            return fail(req, MC_ERR_FORMAT, consumed, ll);
        if (n == 3 && !req->noreply)
            return fail(req, MC_ERR_FORMAT, consumed, ll);
        break;
    case MC_CMD_VERBOSITY: /* verbosity <level> [noreply] */
        if (n != 2 && n != 3)
            return fail(req, MC_ERR_UNKNOWN, consumed, ll);
        take_noreply(req, t, n);
        if (!parse_u32(&t[1], &req->verbosity))
            return fail(req, MC_ERR_FORMAT, consumed, ll);
        break;
    case MC_CMD_STATS: /* stats [arg] */
        if (n >= 2) {
            req->arg = t[1].p;
            req->arg_len = t[1].len;
        }
        break;
    case MC_CMD_VERSION: /* memcached 1.6 ignores anything after "version" */
        break;
    case MC_CMD_QUIT:
        if (n != 1)
            return fail(req, MC_ERR_UNKNOWN, consumed, ll);
        break;
    default:
        return fail(req, MC_ERR_UNKNOWN, consumed, ll);
    }
    if (req->cmd == MC_CMD_DELETE || req->cmd == MC_CMD_INCR || req->cmd == MC_CMD_DECR ||
        req->cmd == MC_CMD_TOUCH) {
        req->key = t[1].p;
        req->key_len = t[1].len;
        if (!key_ok(req->key, req->key_len))
            return fail(req, MC_ERR_FORMAT, consumed, ll);
    }
    *consumed = ll;
    return MC_PARSE_OK;
}

int mc_parse(const char *buf, size_t len, const struct mc_limits *lim, struct mc_request *req,
             uint64_t *consumed)
{
    memset(req, 0, sizeof *req);
    *consumed = 0;
    size_t get_max = lim && lim->max_get_line > MC_LINE_MAX ? lim->max_get_line : MC_LINE_MAX;
    size_t scan = len < get_max ? len : get_max;
    const char *nl = memchr(buf, '\n', scan);
    if (!nl) {
        if (len < MC_LINE_MAX || (len < get_max && is_get_line(buf, len)))
            return MC_PARSE_MORE;
        req->close = true;
        return fail(req, MC_ERR_LINE_TOO_LONG, consumed, len);
    }
    req->line_len = (uint32_t)(nl - buf) + 1;
    if (req->line_len > MC_LINE_MAX && !is_get_line(buf, req->line_len)) {
        req->close = true;
        return fail(req, MC_ERR_LINE_TOO_LONG, consumed, req->line_len);
    }
    uint32_t ll = req->line_len - 1; /* without \n, then without \r */
    if (ll > 0 && buf[ll - 1] == '\r')
        ll--;
    struct token t[MAX_TOKENS];
    uint32_t n = tokenize(buf, ll, t, MAX_TOKENS);
    if (n == 0)
        return fail(req, MC_ERR_UNKNOWN, consumed, req->line_len);
    req->cmd = lookup_cmd(&t[0]);
    if (req->cmd == MC_CMD_GET || req->cmd == MC_CMD_GETS)
        return parse_get(req, t, n, buf, ll, consumed);
    if (n == MAX_TOKENS) /* more tokens than any command takes */
        return fail(req, MC_ERR_UNKNOWN, consumed, req->line_len);
    if (mc_cmd_is_storage(req->cmd))
        return parse_storage(req, t, n, buf, len, lim, consumed);
    return parse_other(req, t, n, consumed);
}
