/*
 * proto.h — memcached's text protocol as pure functions over a buffer: find
 * one request, check it, and say what to answer. No I/O, no shard, no
 * allocation: the connection code (conn.c) feeds it the bytes of its input
 * stream and the unit tests feed it raw transcripts.
 *
 * A request is a command line ending in "\n" (normally "\r\n"), and for the
 * storage commands a data block of exactly <bytes> bytes followed by "\r\n".
 * mc_parse() looks at the front of a buffer and says one of three things:
 *
 *   MC_PARSE_OK     a whole request is there: *req describes it (its key and
 *                   value point into the buffer) and it takes `consumed`
 *                   bytes;
 *   MC_PARSE_MORE   not yet: read more input. If the command line itself was
 *                   complete (req->cmd != MC_CMD_NONE), req->line_len and
 *                   req->value_len say how much the whole request needs, so
 *                   a caller whose buffer is too small for a large value can
 *                   gather the data block elsewhere (mc_check_chunk());
 *   MC_PARSE_ERROR  answer mc_error_text(req->error) (unless noreply hides
 *                   it, mc_error_reply()), then drop `consumed` bytes — which
 *                   may be more than the buffer holds, when a refused data
 *                   block must be swallowed — and close the connection if
 *                   req->close says so.
 *
 * What memcached does is the reference for every answer, with two choices
 * of our own, both documented where they are made: a non-get line over
 * MC_LINE_MAX bytes gets "CLIENT_ERROR line too long" before the connection
 * closes (memcached closes silently), and incr/decr store the new number
 * without memcached's trailing-space padding.
 */
#ifndef MC_PROTO_H
#define MC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_KEY_MAX       250                 /* longest key, as memcached */
#define MC_LINE_MAX      2048                /* longest command line (get lines may be longer) */
#define MC_ITEM_MAX      (1024u * 1024u)     /* default largest value (-I) */
#define MC_REL_MAX       (60 * 60 * 24 * 30) /* exptimes above this are absolute unix times */
#define MC_EXPIRED       UINT64_C(1)         /* a deadline that has already passed */
#define MC_VALUE_HDR_MAX (6 + MC_KEY_MAX + 3 * 21 + 4) /* "VALUE k flags bytes cas\r\n" */

enum mc_cmd {
    MC_CMD_NONE = 0,
    MC_CMD_GET,
    MC_CMD_GETS,
    MC_CMD_SET,
    MC_CMD_ADD,
    MC_CMD_REPLACE,
    MC_CMD_APPEND,
    MC_CMD_PREPEND,
    MC_CMD_CAS,
    MC_CMD_DELETE,
    MC_CMD_INCR,
    MC_CMD_DECR,
    MC_CMD_TOUCH,
    MC_CMD_FLUSH_ALL,
    MC_CMD_STATS,
    MC_CMD_VERSION,
    MC_CMD_VERBOSITY,
    MC_CMD_QUIT,
    MC_CMD__COUNT
};

/* Protocol errors, each with its own reply line (mc_error_text()). */
enum mc_error {
    MC_ERR_NONE = 0,
    MC_ERR_UNKNOWN,       /* "ERROR": unknown command, wrong token count, empty line */
    MC_ERR_FORMAT,        /* "CLIENT_ERROR bad command line format" */
    MC_ERR_LINE_TOO_LONG, /* "CLIENT_ERROR line too long" (then close) */
    MC_ERR_BAD_CHUNK,     /* "CLIENT_ERROR bad data chunk": the block did not end in \r\n */
    MC_ERR_TOO_LARGE,     /* "SERVER_ERROR object too large for cache" (block swallowed) */
    MC_ERR_DELTA,         /* "CLIENT_ERROR invalid numeric delta argument" */
    MC_ERR_NON_NUMERIC,   /* "CLIENT_ERROR cannot increment or decrement non-numeric value" */
    MC_ERR_EXPTIME,       /* "CLIENT_ERROR invalid exptime argument" */
    MC_ERR_DELETE_USAGE,  /* "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
                           */
    MC_ERR_NO_MEMORY,     /* "SERVER_ERROR out of memory storing object" */
    MC_ERR_BUSY,          /* "SERVER_ERROR temporary failure" (the owner shard could not answer) */
    MC_ERR__COUNT
};

enum mc_parse_status { MC_PARSE_OK = 0, MC_PARSE_MORE = 1, MC_PARSE_ERROR = 2 };

/* What the parser enforces. */
struct mc_limits {
    uint32_t max_item_size; /* largest value accepted (memcached -I); 0: MC_ITEM_MAX */
    uint32_t max_get_line;  /* longest get/gets line (with many keys); at least MC_LINE_MAX */
};

/* One parsed request. Pointers point into the caller's buffer. */
struct mc_request {
    enum mc_cmd cmd;
    enum mc_error error; /* MC_PARSE_ERROR: what to answer */
    bool noreply;        /* the last token was "noreply" */
    bool close;          /* MC_PARSE_ERROR: close the connection after the answer */
    const char *key;     /* single-key commands; get/gets: the first key */
    uint32_t key_len;
    const char *keys; /* get/gets: the keys, separated by spaces (see mc_next_key()) */
    uint32_t keys_len;
    uint32_t nkeys;     /* get/gets: how many */
    uint32_t flags;     /* storage commands */
    int64_t exptime;    /* storage commands, touch */
    uint32_t value_len; /* storage commands: <bytes> */
    const char *value;  /* storage commands, MC_PARSE_OK: the data block (no \r\n) */
    uint64_t cas;       /* cas: <cas unique> */
    uint64_t delta;     /* incr/decr */
    int64_t delay;      /* flush_all [delay] (0: now) */
    uint32_t verbosity; /* verbosity <level> */
    const char *arg;    /* stats <arg> (NULL: plain stats) */
    uint32_t arg_len;
    uint32_t line_len; /* bytes of the command line, its "\n" included */
};

/*
 * Look at the request at the front of buf[0, len). Returns an mc_parse_status;
 * *consumed is how many bytes the request (or the error) takes.
 */
int mc_parse(const char *buf, size_t len, const struct mc_limits *lim, struct mc_request *req,
             uint64_t *consumed);

/* The data block of a storage command once gathered: true if it ends in "\r\n". */
bool mc_check_chunk(const char *block, uint32_t value_len);

/* Iterate the keys of a get: start with *pos = 0; false when done. */
bool mc_next_key(const struct mc_request *req, uint32_t *pos, const char **key, uint32_t *len);

/* True for commands that store a data block. */
bool mc_cmd_is_storage(enum mc_cmd cmd);

/* The command's name ("get", "set", ...). */
const char *mc_cmd_name(enum mc_cmd cmd);

/* The reply line of an error, "\r\n" included. */
const char *mc_error_text(enum mc_error err);

/* Whether an error is answered on a noreply request: only server errors are
 * (memcached sends those whatever the client asked). */
bool mc_error_reply(enum mc_error err, bool noreply);

/*
 * A memcached exptime as a deadline on the shard clock: 0 never expires;
 * MC_EXPIRED is already dead (a negative exptime, or an absolute time not in
 * the future); otherwise now_ns plus the seconds left. Exptimes up to 30
 * days are relative; larger ones are unix times, read against unix_now.
 */
uint64_t mc_exptime_deadline(int64_t exptime, uint64_t now_ns, int64_t unix_now);

/* Format "VALUE <key> <flags> <bytes>[ <cas>]\r\n" into buf (MC_VALUE_HDR_MAX
 * bytes are enough); returns its length. with_cas: gets. */
size_t mc_format_value_header(char *buf, const char *key, uint32_t key_len, uint32_t flags,
                              uint32_t bytes, bool with_cas, uint64_t cas);

/* Parse a whole decimal number (digits only) into *out; false on anything else or overflow. */
bool mc_parse_u64(const char *s, size_t len, uint64_t *out);

/* Format v in decimal into buf (21 bytes are enough); returns the length. */
size_t mc_format_u64(char *buf, uint64_t v);

/* 64-bit hash of a key: FNV-1a, then a final mix so every bit depends on
 * every input bit. Fixed, and never computed from a pointer. */
uint64_t mc_hash(const char *key, size_t len);

#endif
