/*
 * loadgen: a load generator for Server-Sent Events servers (ssehub, nginx +
 * Nchan, sse-starlette, flask-sse), for side-by-side benchmarks on loopback.
 *
 * Build: gcc -O2 -Wall -Wextra -o bench/loadgen bench/loadgen.c -lm
 * Usage: bench/loadgen --port 5000 --subscribers 1000 --events 100  (see --help)
 *
 * It opens N subscriber streams, publishes numbered, timestamped events over
 * keep-alive HTTP/1.1 connections, and prints loss, duplicates, ordering,
 * delivery latency and reconnect timings as one JSON object on stdout; phase
 * lines go to stderr as JSON with CLOCK_MONOTONIC times (Python's
 * time.monotonic()). It shares a 2-core machine with the server under test,
 * so it is one thread on epoll: level-triggered, one shared receive buffer,
 * incremental parsers that keep only a partial line per connection, and no
 * allocation per event.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

#define READ_BUF_BYTES (64 * 1024) /* shared by every connection: parsers copy out only partial lines */
#define ID_CAP 256                 /* Last-Event-ID kept up to 255 bytes (longer ids are not kept) */
#define HEAD_LINE_CAP 256          /* a publisher's response head line; longer lines are truncated */
#define HEAD_MAX_BYTES 65536       /* a response head longer than this is not HTTP we understand */
#define MAX_HEADERS 32
#define MAX_EVENTS 1024
#define MIN_PAYLOAD 48             /* "s=" + 10 digits + " c=" + 10 + " t=" + 20 */
#define MAX_PAYLOAD 60000          /* line lengths are 16-bit */
#define CONNECTS_PER_TURN 1000     /* so a burst of refused connects cannot starve the event loop */
#define PUB_CONNECT_RETRY_NS (100 * NS_PER_MS) /* a publisher whose connect failed waits this long */
#define TICK_NS (50 * NS_PER_MS)   /* longest sleep: bounds how late a timeout is noticed */

/* ------------------------------------------------------------------ options */

struct options {
    const char *host;
    int port;
    uint32_t subscribers, channels;
    const char *channel_prefix;
    double connect_rate;
    uint32_t max_connecting;
    const char *sub_path;
    const char *sub_headers[MAX_HEADERS];
    int sub_header_count;
    const char *source_ips;
    double connect_timeout, settle;
    uint32_t events;
    bool events_given;
    double duration, rate;
    uint32_t publishers;
    const char *pub_method, *pub_path, *pub_body;
    const char *pub_headers[MAX_HEADERS];
    int pub_header_count;
    double pub_timeout;
    uint32_t payload;
    double drain_timeout;
    bool reconnect, honour_retry;
    uint32_t retry_failed_ms;
    double hold;
};

static const char USAGE[] =
    "usage: loadgen --port P [options]\n"
    "\n"
    "Subscribers:\n"
    "  --host ADDR             server address (default 127.0.0.1)\n"
    "  --port P                server port (required)\n"
    "  --subscribers N         SSE streams to open (default 100)\n"
    "  --channels C            subscriber i listens on channel i %% C (default 1)\n"
    "  --channel-prefix S      channel names are S0, S1, ... (default c)\n"
    "  --sub-path T            stream path; {channel} is replaced (default /events?channel={channel})\n"
    "  --sub-header 'N: v'     extra request header for streams (repeatable)\n"
    "  --connect-rate R        connects started per second, 0 = no pacing (default 0)\n"
    "  --max-connecting M      connects in flight at most (default 500)\n"
    "  --connect-timeout S     stop waiting for all streams to be live after S s (default 60)\n"
    "  --source-ips A,B,...    bind client sockets round robin to these local addresses\n"
    "  --reconnect             reopen a stream when it ends, sending Last-Event-ID\n"
    "  --honour-retry          wait the server's retry: before reopening (default: at once)\n"
    "  --retry-failed-ms MS    wait after a failed connect before the next try (default 100)\n"
    "  --hold S                keep the streams open S s once all are live (default 0)\n"
    "\n"
    "Publishing:\n"
    "  --settle S              wait S s after all streams are live (default 1.0)\n"
    "  --events E              events per channel (default 100; 0 with --hold)\n"
    "  --duration S            publish for S s instead of a fixed --events\n"
    "  --rate M                publishes per second in total, 0 = as fast as acknowledged (default 0)\n"
    "  --publishers K          keep-alive publishing connections (default 1)\n"
    "  --pub-method M          (default POST)\n"
    "  --pub-path T            {channel} is replaced (default /publish)\n"
    "  --pub-body T            {channel} and {data} are replaced\n"
    "                          (default {\"channel\":\"{channel}\",\"data\":\"{data}\"})\n"
    "  --pub-header 'N: v'     publish request header (repeatable; default Content-Type: application/json)\n"
    "  --pub-timeout S         a publish unanswered after S s is an error (default 10)\n"
    "  --payload B             bytes of event data, at least 48 (default 110)\n"
    "  --drain-timeout S       wait at most S s for deliveries after the last publish (default 10)\n"
    "\n"
    "Event data is 's=<seq> c=<channel index> t=<CLOCK_MONOTONIC ns>' padded with x to B bytes.\n"
    "Phase lines go to stderr, the summary to stdout, both as JSON.\n";

static struct options O;

/* ------------------------------------------------------------------ state */

enum phase { PH_CONNECT, PH_HOLD, PH_SETTLE, PH_PUBLISH, PH_DRAIN, PH_DONE };

/* What comes next in an HTTP response being parsed. */
enum http_state {
    HS_STATUS, HS_HEADER,                       /* the head, a line at a time */
    HS_BODY_EOF, HS_BODY_LENGTH,                /* identity bodies */
    HS_CHUNK_SIZE, HS_CHUNK_EXT, HS_CHUNK_DATA, HS_CHUNK_DATA_END, HS_TRAILER,
    HS_DONE
};

/* What http_next found. */
enum http_event { HTTP_MORE, HTTP_HEAD, HTTP_BODY, HTTP_END, HTTP_BAD };

/* An incremental HTTP/1.x response parser: any split of the input works. */
struct http_in {
    uint8_t state;
    bool chunked;
    bool close;          /* the server will close after this response */
    uint8_t digits;      /* hex digits of the chunk size read so far */
    uint16_t status;
    uint16_t line_len, line_cap;
    uint32_t head_bytes;
    int64_t content_length; /* -1: none given */
    uint64_t remaining;     /* bytes left in the body or the chunk */
    char *line;             /* the head line being read (owner's buffer) */
};

/* A channel's publishing and receipt counts, indexed by seq. */
struct channel {
    char name[64];
    uint32_t subscribers; /* subscribers listening on it */
    uint32_t sent;        /* highest seq handed to a publisher */
    uint32_t cap;         /* entries of received[] and is_acked[] */
    uint32_t *received;   /* received[seq]: subscribers that have seq */
    uint8_t *is_acked;    /* is_acked[seq]: 1 once a 2xx answered its publish */
    uint64_t acked;
    char *sub_request;    /* a stream request up to where Last-Event-ID goes */
    size_t sub_request_len;
};

enum sub_state { SUB_WAITING, SUB_CONNECTING, SUB_HEAD, SUB_LIVE, SUB_DEAD };

/* One parsed payload. */
struct payload {
    uint32_t seq, channel;
    uint64_t sent_ns;
};

struct subscriber {
    int fd;
    uint8_t state;       /* enum sub_state */
    bool attempted;      /* connected before: the next connect is a reconnect */
    bool after_cr;       /* the last byte was CR: an LF next is part of that line break */
    bool line_overflow;  /* the line outgrew `line`: its tail was dropped */
    bool payload_ok;     /* the event's one data line is a payload, parsed into `event` */
    uint8_t last_id_len, id_buf_len;
    uint16_t line_len;
    uint32_t channel;
    uint32_t request_sent;
    uint32_t data_lines; /* data lines in the event being read */
    int32_t retry_ms;    /* the server's last retry:, -1 before any */
    uint32_t max_seq;    /* highest seq received, for out-of-order counting */
    uint32_t seen_bits;
    uint64_t *seen;      /* bitmap of seqs received, allocated at the first one */
    struct payload event;
    struct http_in http; /* its head line buffer is `line`: the head is done before SSE starts */
    char *line;          /* the SSE line being read, when it spans reads */
    char last_id[ID_CAP]; /* EventSource's last event ID string: sent when reconnecting */
    char id_buf[ID_CAP];  /* the parser's last event ID buffer: committed at dispatch */
};

enum pub_state { PUB_DOWN, PUB_IDLE, PUB_BUSY };

/* A growable byte string, for requests: reserved once, then reused. */
struct buf {
    char *data;
    size_t len, cap;
};

struct publisher {
    int fd;
    uint8_t state;     /* enum pub_state */
    bool connected;    /* the connect completed (a failure before that backs off) */
    bool want_out;     /* EPOLLOUT is registered */
    uint32_t channel, seq;
    uint64_t started;  /* when this publish was taken */
    uint64_t retry_at; /* PUB_DOWN after a failed connect: not before this */
    size_t sent;
    struct buf request;
    struct http_in http;
    char head_line[HEAD_LINE_CAP];
};

/* A subscriber due to connect at a time: the reconnect queue is a min-heap of these. */
struct wake {
    uint64_t due;
    uint32_t sub;
};

/*
 * Log-linear histogram of durations in ns: 128 sub-buckets per power of two
 * (under 0.8% error) from 2^10 ns (~1 us) to 2^37 ns (~137 s); values outside
 * are clamped. Fixed size, so recording never allocates.
 */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MIN_EXP 10
#define HIST_MAX_EXP 37
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_MIN_EXP + 1) * HIST_SUB)

struct histogram {
    uint64_t count, max;
    uint64_t bucket[HIST_BUCKETS];
};

struct run {
    int epoll;
    struct sockaddr_storage server;
    socklen_t server_len;
    struct sockaddr_storage *sources;
    socklen_t source_len;
    size_t source_count, next_source;
    char host_header[300];
    char *pub_header_block; /* the publish headers, each ending in CRLF */

    struct channel *channels;
    struct subscriber *subs;
    struct publisher *pubs;
    struct wake *heap;
    uint32_t heap_len;
    size_t line_cap;        /* of each subscriber's line buffer */
    uint32_t initial_seqs;  /* seqs to size per-channel and per-subscriber arrays for at first */
    char *scratch;          /* a stream request being built */
    char *payload;          /* a payload being built */
    struct buf body;        /* a publish body being built */
    char rbuf[READ_BUF_BYTES];

    enum phase phase;
    uint64_t deadline;      /* of the current phase, where it has one */

    /* connecting */
    uint64_t connect_start;
    uint32_t next_initial;  /* subscribers below this have started their first connect */
    uint32_t connecting;    /* connects in flight: started, no response head yet */
    uint32_t live;
    bool connects_left;     /* the last turn stopped at CONNECTS_PER_TURN */
    uint64_t connect_failures, reconnects;
    double connect_seconds;
    uint64_t *all_live;
    size_t all_live_count, all_live_cap;
    uint64_t first_drop;    /* 0: never */

    /* publishing */
    uint64_t publish_start, publish_until, publish_end;
    uint64_t issued, total_publishes, acked, publish_errors;
    struct histogram publish_latency;

    /* delivery */
    uint64_t expected;       /* sum over channels: acked events x subscribers */
    uint64_t have;           /* first receipts of acked events */
    uint64_t first_receipts; /* first receipts of any event sent */
    uint64_t duplicates, out_of_order, foreign, last_receipt;
    struct histogram latency;
};

static struct run R;

/* ------------------------------------------------------------------ utilities */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t seconds_to_ns(double seconds)
{
    return (uint64_t)(seconds * 1e9);
}

/* One line on stderr, then exit: what die() and usage_error() share. */
static void vfail(int status, const char *ending, const char *fmt, va_list args) __attribute__((noreturn));
static void vfail(int status, const char *ending, const char *fmt, va_list args)
{
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, args);
    fputs(ending, stderr);
    exit(status);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vfail(1, "\n", fmt, args);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vfail(2, " (see --help)\n", fmt, args);
}

static void *xrealloc(void *old, size_t size)
{
    void *p = realloc(old, size ? size : 1);
    if (!p)
        die("out of memory (%zu bytes)", size);
    return p;
}

static void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        die("out of memory (%zu x %zu bytes)", count, size);
    return p;
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* Append `template` with {channel} and {data} replaced (no escaping: the
 * payload is printable ASCII without quotes or backslashes). */
static void buf_expand(struct buf *b, const char *template, const char *channel, const char *data, size_t data_len)
{
    for (const char *t = template; *t;) {
        if (strncmp(t, "{channel}", 9) == 0) {
            buf_str(b, channel);
            t += 9;
        } else if (strncmp(t, "{data}", 6) == 0) {
            buf_add(b, data, data_len);
            t += 6;
        } else {
            buf_add(b, t++, 1);
        }
    }
}

/* A phase line on stderr: {"phase":..., "t":..., <extra>}. */
static void phase_line(const char *phase, uint64_t t, const char *extra, ...) __attribute__((format(printf, 3, 4)));
static void phase_line(const char *phase, uint64_t t, const char *extra, ...)
{
    va_list args;
    va_start(args, extra);
    fprintf(stderr, "{\"phase\":\"%s\",\"t\":%.6f", phase, t / 1e9);
    vfprintf(stderr, extra, args);
    fputs("}\n", stderr);
    va_end(args);
}

static void hist_record(struct histogram *h, uint64_t ns)
{
    size_t index;
    h->count++;
    if (ns > h->max)
        h->max = ns;
    if (ns < (1ull << HIST_MIN_EXP)) {
        index = 0;
    } else {
        int exp = 63 - __builtin_clzll(ns);
        if (exp > HIST_MAX_EXP)
            index = HIST_BUCKETS - 1;
        else
            index = (size_t)(exp - HIST_MIN_EXP) * HIST_SUB + ((ns >> (exp - HIST_SUB_BITS)) - HIST_SUB);
    }
    h->bucket[index]++;
}

/* The q-quantile in ms (the middle of its bucket, at most the maximum); NaN when empty. */
static double hist_quantile_ms(const struct histogram *h, double q)
{
    if (!h->count)
        return NAN;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            unsigned exp = HIST_MIN_EXP + (unsigned)(i / HIST_SUB);
            double width = (double)(1ull << (exp - HIST_SUB_BITS));
            double middle = (double)(HIST_SUB + i % HIST_SUB) * width + width / 2;
            return fmin(middle, (double)h->max) / 1e6;
        }
    }
    return (double)h->max / 1e6;
}

/* ------------------------------------------------------------------ epoll and sockets */

#define PUBLISHER_TAG (1ull << 32)

static void watch(int op, int fd, uint32_t events, uint64_t tag)
{
    struct epoll_event e = {.events = events, .data.u64 = tag};
    if (epoll_ctl(R.epoll, op, fd, &e) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

/* A non-blocking socket with a connect to the server under way; -1 with errno on failure. */
static int open_connection(void)
{
    int fd = socket(R.server.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (R.source_count) {
        const struct sockaddr_storage *source = &R.sources[R.next_source++ % R.source_count];
        /* Leave the port to connect(), which may reuse it towards another
         * destination: bind() alone would reserve it outright, capping each
         * source address at one ephemeral range in total. */
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (const struct sockaddr *)source, R.source_len) < 0)
            goto fail;
    }
    if (connect(fd, (const struct sockaddr *)&R.server, R.server_len) < 0 && errno != EINPROGRESS)
        goto fail;
    return fd;
fail:;
    int error = errno;
    close(fd);
    errno = error;
    return -1;
}

/* ------------------------------------------------------------------ HTTP responses */

static void http_reset(struct http_in *h)
{
    h->state = HS_STATUS;
    h->chunked = false;
    h->close = false;
    h->digits = 0;
    h->status = 0;
    h->line_len = 0;
    h->head_bytes = 0;
    h->content_length = -1;
    h->remaining = 0;
}

static bool contains_nocase(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(s + i, word, n) == 0)
            return true;
    return false;
}

/* If `line` is header `name`, point `value` at its value (leading blanks skipped). */
static bool header_value(const char *line, size_t len, const char *name, const char **value, size_t *value_len)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return false;
    const char *v = line + n + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    *value = v;
    *value_len = (size_t)(end - v);
    return true;
}

static bool http_status_line(struct http_in *h, const char *line, size_t len)
{
    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
        return false;
    uint16_t status = 0;
    for (int i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            return false;
        status = (uint16_t)(status * 10 + (line[i] - '0'));
    }
    h->status = status;
    h->close = line[7] == '0'; /* HTTP/1.0 closes unless it says keep-alive */
    return true;
}

static void http_header_line(struct http_in *h, const char *line, size_t len)
{
    const char *value;
    size_t value_len;
    if (header_value(line, len, "transfer-encoding", &value, &value_len)) {
        h->chunked = contains_nocase(value, value_len, "chunked");
    } else if (header_value(line, len, "content-length", &value, &value_len)) {
        int64_t n = 0;
        size_t i = 0;
        for (; i < value_len && value[i] >= '0' && value[i] <= '9' && n < (1ll << 50); i++)
            n = n * 10 + (value[i] - '0');
        if (i > 0)
            h->content_length = n;
    } else if (header_value(line, len, "connection", &value, &value_len)) {
        if (contains_nocase(value, value_len, "close"))
            h->close = true;
        else if (contains_nocase(value, value_len, "keep-alive"))
            h->close = false;
    }
}

/* How the body is framed, decided at the end of the head. */
static enum http_state http_body_state(struct http_in *h)
{
    if (h->status == 204 || h->status == 304)
        return HS_DONE;
    if (h->chunked)
        return HS_CHUNK_SIZE;
    if (h->content_length >= 0) {
        h->remaining = (uint64_t)h->content_length;
        return h->remaining ? HS_BODY_LENGTH : HS_DONE;
    }
    return HS_BODY_EOF;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The chunk-size line ended: a chunk's data follows, or the trailer after the last. */
static bool http_chunk_size_done(struct http_in *h)
{
    if (!h->digits)
        return false;
    h->digits = 0;
    h->line_len = 0;
    h->state = h->remaining ? HS_CHUNK_DATA : HS_TRAILER;
    return true;
}

/*
 * Consume input from *p (*n bytes) up to the next thing the caller must
 * act on: HTTP_HEAD (the head is complete: status and framing are known),
 * HTTP_BODY (body bytes, de-chunked, at *body), HTTP_END (the response is
 * complete; the rest of the input is not part of it), HTTP_BAD (not HTTP we
 * understand), or HTTP_MORE (all input consumed). Interim 1xx responses are
 * skipped.
 */
static enum http_event http_next(struct http_in *h, const char **p, size_t *n, const char **body, size_t *body_len)
{
    for (;;) {
        if (h->state == HS_DONE)
            return HTTP_END;
        if (*n == 0)
            return HTTP_MORE;
        if (h->state == HS_BODY_EOF || h->state == HS_BODY_LENGTH || h->state == HS_CHUNK_DATA) {
            size_t take = *n;
            if (h->state != HS_BODY_EOF && take > h->remaining)
                take = (size_t)h->remaining;
            *body = *p;
            *body_len = take;
            *p += take;
            *n -= take;
            if (h->state != HS_BODY_EOF) {
                h->remaining -= take;
                if (!h->remaining)
                    h->state = h->state == HS_CHUNK_DATA ? HS_CHUNK_DATA_END : HS_DONE;
            }
            return HTTP_BODY;
        }
        char c = **p;
        (*p)++;
        (*n)--;
        switch (h->state) {
        case HS_STATUS:
        case HS_HEADER: {
            if (++h->head_bytes > HEAD_MAX_BYTES)
                return HTTP_BAD;
            if (c != '\n') {
                if (h->line_len < h->line_cap)
                    h->line[h->line_len++] = c;
                break;
            }
            size_t len = h->line_len;
            h->line_len = 0;
            if (len && h->line[len - 1] == '\r')
                len--;
            if (h->state == HS_STATUS) {
                if (len == 0)
                    break; /* stray line break before the status line */
                if (!http_status_line(h, h->line, len))
                    return HTTP_BAD;
                h->state = HS_HEADER;
            } else if (len) {
                http_header_line(h, h->line, len);
            } else if (h->status < 200) {
                http_reset(h); /* 1xx: the real response follows */
            } else {
                h->state = http_body_state(h);
                return HTTP_HEAD;
            }
            break;
        }
        case HS_CHUNK_SIZE: {
            int v = hex_value(c);
            if (v >= 0) {
                if (h->remaining >> 40)
                    return HTTP_BAD;
                h->remaining = h->remaining * 16 + (uint64_t)v;
                h->digits++;
            } else if (c == '\n') {
                if (!http_chunk_size_done(h))
                    return HTTP_BAD;
            } else if (c == ';' || c == ' ' || c == '\t' || c == '\r') {
                h->state = HS_CHUNK_EXT;
            } else {
                return HTTP_BAD;
            }
            break;
        }
        case HS_CHUNK_EXT:
            if (c == '\n' && !http_chunk_size_done(h))
                return HTTP_BAD;
            break;
        case HS_CHUNK_DATA_END:
            if (c == '\n')
                h->state = HS_CHUNK_SIZE;
            else if (c != '\r')
                return HTTP_BAD;
            break;
        case HS_TRAILER:
            /* Trailer fields are skipped; an empty line ends the message. */
            if (c == '\n') {
                if (h->line_len == 0)
                    h->state = HS_DONE;
                h->line_len = 0;
            } else if (c != '\r') {
                h->line_len = 1;
            }
            break;
        default:
            return HTTP_BAD;
        }
    }
}

/* ------------------------------------------------------------------ bookkeeping */

/* Make room for seqs up to `seq` in a channel's per-seq arrays. */
static void channel_reserve(struct channel *ch, uint32_t seq)
{
    if (seq < ch->cap)
        return;
    uint32_t cap = ch->cap ? ch->cap : 64;
    while (cap <= seq)
        cap *= 2;
    ch->received = xrealloc(ch->received, (size_t)cap * sizeof *ch->received);
    ch->is_acked = xrealloc(ch->is_acked, cap);
    memset(ch->received + ch->cap, 0, (size_t)(cap - ch->cap) * sizeof *ch->received);
    memset(ch->is_acked + ch->cap, 0, cap - ch->cap);
    ch->cap = cap;
}

static void seen_reserve(struct subscriber *s, uint32_t seq)
{
    if (seq < s->seen_bits)
        return;
    uint32_t bits = s->seen_bits ? s->seen_bits : R.initial_seqs;
    while (bits <= seq)
        bits *= 2;
    size_t old_words = (s->seen_bits + 63) / 64, words = ((size_t)bits + 63) / 64;
    s->seen = xrealloc(s->seen, words * sizeof *s->seen);
    memset(s->seen + old_words, 0, (words - old_words) * sizeof *s->seen);
    s->seen_bits = (uint32_t)(words * 64);
}

/* A payload event arrived on a stream. */
static void deliver(struct subscriber *s, const struct payload *ev, uint64_t now)
{
    struct channel *ch = &R.channels[s->channel];
    if (ev->channel != s->channel || ev->seq == 0 || ev->seq > ch->sent) {
        R.foreign++;
        return;
    }
    seen_reserve(s, ev->seq);
    uint64_t *word = &s->seen[ev->seq / 64], bit = 1ull << (ev->seq % 64);
    if (*word & bit) {
        R.duplicates++;
        return;
    }
    *word |= bit;
    if (ev->seq < s->max_seq)
        R.out_of_order++;
    else
        s->max_seq = ev->seq;
    ch->received[ev->seq]++;
    if (ch->is_acked[ev->seq])
        R.have++;
    R.first_receipts++;
    R.last_receipt = now;
    hist_record(&R.latency, now > ev->sent_ns ? now - ev->sent_ns : 0);
}

/* A publish was acknowledged: its receipts so far now count as deliveries. */
static void acknowledge(uint32_t channel, uint32_t seq)
{
    struct channel *ch = &R.channels[channel];
    ch->is_acked[seq] = 1;
    ch->acked++;
    R.acked++;
    R.have += ch->received[seq];
    R.expected += ch->subscribers;
}

static void live_up(uint64_t now)
{
    if (++R.live < O.subscribers)
        return;
    if (R.all_live_count == R.all_live_cap) {
        R.all_live_cap = R.all_live_cap ? R.all_live_cap * 2 : 8;
        R.all_live = xrealloc(R.all_live, R.all_live_cap * sizeof *R.all_live);
    }
    R.all_live[R.all_live_count++] = now;
    if (isnan(R.connect_seconds))
        R.connect_seconds = (double)(now - R.connect_start) / 1e9;
    phase_line("all_live", now, ",\"live\":%" PRIu32, R.live);
}

static void live_down(uint64_t now)
{
    if (R.live-- == O.subscribers && !R.first_drop) {
        R.first_drop = now;
        phase_line("first_drop", now, ",\"live\":%" PRIu32, R.live);
    }
}

/* ------------------------------------------------------------------ reconnect queue */

static void heap_push(uint64_t due, uint32_t sub)
{
    uint32_t i = R.heap_len++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (R.heap[parent].due <= due)
            break;
        R.heap[i] = R.heap[parent];
        i = parent;
    }
    R.heap[i] = (struct wake){due, sub};
}

static uint32_t heap_pop(void)
{
    uint32_t top = R.heap[0].sub;
    struct wake last = R.heap[--R.heap_len];
    uint32_t i = 0;
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= R.heap_len)
            break;
        if (child + 1 < R.heap_len && R.heap[child + 1].due < R.heap[child].due)
            child++;
        if (last.due <= R.heap[child].due)
            break;
        R.heap[i] = R.heap[child];
        i = child;
    }
    R.heap[i] = last;
    return top;
}

/* ------------------------------------------------------------------ SSE parsing */

static bool take_number(const char **p, const char *end, uint64_t *out)
{
    const char *start = *p;
    uint64_t n = 0;
    while (*p < end && **p >= '0' && **p <= '9' && *p - start < 20)
        n = n * 10 + (uint64_t)(*(*p)++ - '0');
    *out = n;
    return *p > start;
}

static bool take_text(const char **p, const char *end, const char *text)
{
    size_t n = strlen(text);
    if ((size_t)(end - *p) < n || memcmp(*p, text, n) != 0)
        return false;
    *p += n;
    return true;
}

/* Is this event data one of our payloads ("s=.. c=.. t=.." padded with x to B bytes)? */
static bool parse_payload(const char *data, size_t len, struct payload *out)
{
    const char *p = data, *end = data + len;
    uint64_t seq, channel, sent;
    if (len != O.payload || !take_text(&p, end, "s=") || !take_number(&p, end, &seq) ||
        !take_text(&p, end, " c=") || !take_number(&p, end, &channel) || !take_text(&p, end, " t=") ||
        !take_number(&p, end, &sent) || seq > UINT32_MAX || channel > UINT32_MAX)
        return false;
    while (p < end)
        if (*p++ != 'x')
            return false;
    *out = (struct payload){(uint32_t)seq, (uint32_t)channel, sent};
    return true;
}

static bool field_is(const char *name, size_t len, const char *field)
{
    return strlen(field) == len && memcmp(name, field, len) == 0;
}

/* A blank line: dispatch the event, as EventSource does. */
static void sse_dispatch(struct subscriber *s, uint64_t now)
{
    /* The last event ID string follows the buffer even when no event fires
     * (an id-only block moves the resume point). */
    memcpy(s->last_id, s->id_buf, s->id_buf_len);
    s->last_id_len = s->id_buf_len;
    if (s->data_lines && s->payload_ok)
        deliver(s, &s->event, now);
    s->data_lines = 0;
    s->payload_ok = false;
}

/* One SSE line, its line break removed. `whole` is false if its tail was dropped. */
static void sse_line(struct subscriber *s, const char *line, size_t len, bool whole, uint64_t now)
{
    if (len == 0) {
        if (whole)
            sse_dispatch(s, now);
        return;
    }
    if (line[0] == ':')
        return; /* a comment: heartbeats and padding */
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = (size_t)(line + len - value);
    if (value_len && *value == ' ') {
        value++;
        value_len--;
    }
    if (field_is(line, name_len, "data")) {
        /* Data spread over several lines joins with LF, which a payload cannot contain. */
        s->data_lines++;
        s->payload_ok = whole && s->data_lines == 1 && parse_payload(value, value_len, &s->event);
    } else if (field_is(line, name_len, "id")) {
        if (whole && value_len < ID_CAP && !memchr(value, '\0', value_len)) {
            memcpy(s->id_buf, value, value_len);
            s->id_buf_len = (uint8_t)value_len;
        }
    } else if (field_is(line, name_len, "retry")) {
        int64_t ms = 0;
        size_t i = 0;
        for (; i < value_len && value[i] >= '0' && value[i] <= '9' && ms < INT32_MAX / 10; i++)
            ms = ms * 10 + (value[i] - '0');
        if (whole && i && i == value_len)
            s->retry_ms = (int32_t)ms;
    }
    /* "event" and other fields are ignored: payloads are recognised by their data. */
}

static void line_append(struct subscriber *s, const char *p, size_t n)
{
    size_t room = R.line_cap - s->line_len;
    if (n > room) {
        n = room;
        s->line_overflow = true;
    }
    memcpy(s->line + s->line_len, p, n);
    s->line_len = (uint16_t)(s->line_len + n);
}

/* Feed stream body bytes: lines end at LF, CRLF or CR, which may be split across reads. */
static void sse_feed(struct subscriber *s, const char *p, size_t n, uint64_t now)
{
    const char *end = p + n;
    while (p < end) {
        if (s->after_cr) {
            s->after_cr = false;
            if (*p == '\n') {
                p++;
                continue;
            }
        }
        const char *stop = p;
        while (stop < end && *stop != '\n' && *stop != '\r')
            stop++;
        if (stop == end) {
            line_append(s, p, (size_t)(stop - p));
            return;
        }
        if (s->line_len == 0 && !s->line_overflow) {
            sse_line(s, p, (size_t)(stop - p), true, now); /* the whole line is here: no copy */
        } else {
            line_append(s, p, (size_t)(stop - p));
            sse_line(s, s->line, s->line_len, !s->line_overflow, now);
            s->line_len = 0;
            s->line_overflow = false;
        }
        s->after_cr = *stop == '\r';
        p = stop + 1;
    }
}

/* A new stream: fresh parser state, the id buffer starting from the last id
 * (as browsers do, so an event without id: keeps the resume point). */
static void sse_reset(struct subscriber *s)
{
    s->line_len = 0;
    s->line_overflow = false;
    s->after_cr = false;
    s->data_lines = 0;
    s->payload_ok = false;
    memcpy(s->id_buf, s->last_id, s->last_id_len);
    s->id_buf_len = s->last_id_len;
}

/* ------------------------------------------------------------------ subscribers */

static uint32_t sub_index(const struct subscriber *s)
{
    return (uint32_t)(s - R.subs);
}

static void sub_close(struct subscriber *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* Disconnected: queue the next connect, or give up on this subscriber. */
static void sub_after_disconnect(struct subscriber *s, uint64_t now, bool failed)
{
    if (!O.reconnect) {
        s->state = SUB_DEAD;
        return;
    }
    uint64_t delay_ms = failed ? O.retry_failed_ms : 0;
    if (O.honour_retry && s->retry_ms >= 0)
        delay_ms = (uint64_t)s->retry_ms;
    s->state = SUB_WAITING;
    heap_push(now + delay_ms * NS_PER_MS, sub_index(s));
}

/* A connect that did not become a live stream. */
static void sub_failed(struct subscriber *s, uint64_t now)
{
    R.connect_failures++;
    R.connecting--;
    sub_close(s);
    sub_after_disconnect(s, now, true);
}

/* A live stream ended. */
static void sub_ended(struct subscriber *s, uint64_t now)
{
    live_down(now);
    sub_close(s);
    sub_after_disconnect(s, now, false);
}

/* The connection broke or the response was not a stream we understand. */
static void sub_broken(struct subscriber *s, uint64_t now)
{
    if (s->state == SUB_LIVE)
        sub_ended(s, now);
    else
        sub_failed(s, now);
}

static void sub_start_connect(struct subscriber *s, uint64_t now)
{
    if (s->attempted)
        R.reconnects++;
    s->attempted = true;
    R.connecting++;
    s->state = SUB_CONNECTING;
    s->request_sent = 0;
    http_reset(&s->http);
    s->fd = open_connection();
    if (s->fd < 0) {
        sub_failed(s, now);
        return;
    }
    watch(EPOLL_CTL_ADD, s->fd, EPOLLOUT, sub_index(s));
}

/* The stream request: the channel's fixed part, then Last-Event-ID if one is known. */
static size_t sub_request(const struct subscriber *s, char *out)
{
    const struct channel *ch = &R.channels[s->channel];
    char *at = out;
    memcpy(at, ch->sub_request, ch->sub_request_len);
    at += ch->sub_request_len;
    if (s->last_id_len) {
        at = stpcpy(at, "Last-Event-ID: ");
        memcpy(at, s->last_id, s->last_id_len);
        at = stpcpy(at + s->last_id_len, "\r\n");
    }
    at = stpcpy(at, "\r\n");
    return (size_t)(at - out);
}

/* Writable while connecting: the connect finished (or failed); send the request.
 * The request is rebuilt for a partial send: nothing it depends on changes meanwhile. */
static void sub_send_request(struct subscriber *s, uint64_t now)
{
    size_t len = sub_request(s, R.scratch);
    while (s->request_sent < len) {
        ssize_t n = send(s->fd, R.scratch + s->request_sent, len - s->request_sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                sub_failed(s, now);
            return;
        }
        s->request_sent += (uint32_t)n;
    }
    watch(EPOLL_CTL_MOD, s->fd, EPOLLIN, sub_index(s));
    s->state = SUB_HEAD;
}

/* Bytes from the server; false if the connection is gone. */
static bool sub_consume(struct subscriber *s, const char *p, size_t n, uint64_t now)
{
    const char *body;
    size_t body_len;
    for (;;) {
        switch (http_next(&s->http, &p, &n, &body, &body_len)) {
        case HTTP_MORE:
            return true;
        case HTTP_HEAD:
            if (s->http.status != 200) {
                sub_failed(s, now);
                return false;
            }
            R.connecting--;
            s->state = SUB_LIVE;
            sse_reset(s);
            live_up(now);
            break;
        case HTTP_BODY:
            sse_feed(s, body, body_len, now);
            break;
        case HTTP_END: /* the last chunk, or the end of a Content-Length body */
            sub_broken(s, now);
            return false;
        case HTTP_BAD:
            sub_broken(s, now);
            return false;
        }
    }
}

static void sub_read(struct subscriber *s)
{
    /* A few full buffers at most, so one busy stream cannot starve the rest. */
    for (int round = 0; round < 4; round++) {
        ssize_t n = recv(s->fd, R.rbuf, sizeof R.rbuf, 0);
        uint64_t now = now_ns();
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            sub_broken(s, now); /* EOF ends an identity body: the stream is over either way */
            return;
        }
        if (!sub_consume(s, R.rbuf, (size_t)n, now) || (size_t)n < sizeof R.rbuf)
            return;
    }
}

static void subscriber_event(struct subscriber *s, uint32_t events)
{
    /* Events for a connection closed earlier in this batch find it waiting or dead. */
    if (s->state == SUB_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            sub_send_request(s, now_ns());
        return;
    }
    if ((s->state == SUB_HEAD || s->state == SUB_LIVE) && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        sub_read(s);
}

/* Start due reconnects and paced first connects, up to the in-flight limit. */
static void start_connects(uint64_t now)
{
    uint32_t allowed = O.subscribers;
    if (O.connect_rate > 0) {
        double paced = (double)(now - R.connect_start) / 1e9 * O.connect_rate + 1;
        if (paced < allowed)
            allowed = (uint32_t)paced;
    }
    R.connects_left = false;
    for (int budget = CONNECTS_PER_TURN; R.connecting < O.max_connecting; budget--) {
        if (budget == 0) {
            R.connects_left = true;
            return;
        }
        if (R.heap_len && R.heap[0].due <= now)
            sub_start_connect(&R.subs[heap_pop()], now);
        else if (R.phase == PH_CONNECT && R.next_initial < allowed)
            sub_start_connect(&R.subs[R.next_initial++], now);
        else
            return;
    }
}

/* ------------------------------------------------------------------ publishers */

static uint32_t pub_index(const struct publisher *p)
{
    return (uint32_t)(p - R.pubs);
}

/* Claim the next publish: round robin over channels, seqs 1, 2, ... per channel. */
static void next_publish(uint32_t *channel, uint32_t *seq)
{
    uint64_t index = R.issued++;
    *channel = (uint32_t)(index % O.channels);
    *seq = (uint32_t)(index / O.channels + 1);
    struct channel *ch = &R.channels[*channel];
    channel_reserve(ch, *seq);
    ch->sent = *seq;
}

static void make_payload(char *out, uint32_t seq, uint32_t channel, uint64_t t)
{
    int n = snprintf(out, O.payload + 1, "s=%" PRIu32 " c=%" PRIu32 " t=%" PRIu64, seq, channel, t);
    memset(out + n, 'x', O.payload - (size_t)n);
}

static void build_publish_request(struct publisher *p, uint64_t now)
{
    const char *channel = R.channels[p->channel].name;
    char length[32];
    make_payload(R.payload, p->seq, p->channel, now);
    R.body.len = 0;
    buf_expand(&R.body, O.pub_body, channel, R.payload, O.payload);
    snprintf(length, sizeof length, "Content-Length: %zu\r\n\r\n", R.body.len);

    struct buf *b = &p->request;
    b->len = 0;
    buf_str(b, O.pub_method);
    buf_str(b, " ");
    buf_expand(b, O.pub_path, channel, R.payload, O.payload);
    buf_str(b, " HTTP/1.1\r\nHost: ");
    buf_str(b, R.host_header);
    buf_str(b, "\r\n");
    buf_str(b, R.pub_header_block);
    buf_str(b, length);
    buf_add(b, R.body.data, R.body.len);
}

static void pub_close(struct publisher *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->state = PUB_DOWN;
    p->connected = false;
    p->want_out = false;
}

/* The publish in hand failed; a failed connect backs off before the next. */
static void pub_failed(struct publisher *p, uint64_t now)
{
    R.publish_errors++;
    p->retry_at = p->connected ? now : now + PUB_CONNECT_RETRY_NS;
    pub_close(p);
}

/* The response to the publish in hand is complete. */
static void pub_answered(struct publisher *p, uint64_t now, bool must_close)
{
    if (p->http.status >= 200 && p->http.status < 300) {
        acknowledge(p->channel, p->seq);
        hist_record(&R.publish_latency, now - p->started);
    } else {
        R.publish_errors++;
    }
    p->state = PUB_IDLE;
    if (must_close || p->http.close)
        pub_close(p);
}

static void pub_want_out(struct publisher *p, bool want)
{
    if (p->want_out != want) {
        watch(EPOLL_CTL_MOD, p->fd, want ? EPOLLIN | EPOLLOUT : EPOLLIN, PUBLISHER_TAG | pub_index(p));
        p->want_out = want;
    }
}

static void pub_send(struct publisher *p, uint64_t now)
{
    while (p->sent < p->request.len) {
        ssize_t n = send(p->fd, p->request.data + p->sent, p->request.len - p->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                pub_want_out(p, true);
            else
                pub_failed(p, now);
            return;
        }
        p->connected = true;
        p->sent += (size_t)n;
    }
    pub_want_out(p, false);
}

/* Start the next publish on a free publisher, connecting first if needed. */
static void pub_take(struct publisher *p, uint64_t now)
{
    next_publish(&p->channel, &p->seq);
    p->started = now;
    p->sent = 0;
    build_publish_request(p, now);
    http_reset(&p->http);
    p->state = PUB_BUSY;
    if (p->fd >= 0) {
        pub_send(p, now);
        return;
    }
    p->fd = open_connection();
    if (p->fd < 0) {
        pub_failed(p, now);
        return;
    }
    watch(EPOLL_CTL_ADD, p->fd, EPOLLIN | EPOLLOUT, PUBLISHER_TAG | pub_index(p));
    p->want_out = true;
}

static void pub_read(struct publisher *p)
{
    for (;;) {
        ssize_t n = recv(p->fd, R.rbuf, sizeof R.rbuf, 0);
        uint64_t now = now_ns();
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (p->state != PUB_BUSY) {
            pub_close(p); /* closed while idle (or sent what nobody asked for) */
            return;
        }
        if (n == 0 && p->http.state == HS_BODY_EOF) {
            pub_answered(p, now, true); /* a body delimited by the close */
            return;
        }
        if (n <= 0) {
            pub_failed(p, now);
            return;
        }
        const char *at = R.rbuf, *body;
        size_t left = (size_t)n, body_len;
        enum http_event ev;
        while ((ev = http_next(&p->http, &at, &left, &body, &body_len)) == HTTP_HEAD || ev == HTTP_BODY)
            ;
        if (ev == HTTP_END) {
            /* Bytes past the response, or an answer before the whole request
             * went out, leave the connection in an unknown state. */
            pub_answered(p, now, left > 0 || p->sent < p->request.len);
            return;
        }
        if (ev == HTTP_BAD) {
            pub_failed(p, now);
            return;
        }
        if ((size_t)n < sizeof R.rbuf)
            return;
    }
}

static void publisher_event(struct publisher *p, uint32_t events)
{
    if (p->state == PUB_BUSY && p->sent < p->request.len && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        pub_send(p, now_ns());
    if (p->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        pub_read(p);
}

/* A publisher that can take a publish now: connected and idle first, then
 * disconnected (its retry time may not have come); NULL if all are busy. */
static struct publisher *free_publisher(void)
{
    struct publisher *best = NULL;
    for (uint32_t i = 0; i < O.publishers; i++) {
        struct publisher *p = &R.pubs[i];
        if (p->state == PUB_IDLE)
            return p;
        if (p->state == PUB_DOWN && (!best || p->retry_at < best->retry_at))
            best = p;
    }
    return best;
}

static bool publishing_over(uint64_t now)
{
    return O.duration > 0 ? now >= R.publish_until : R.issued >= R.total_publishes;
}

static bool publish_due(uint64_t now)
{
    if (publishing_over(now))
        return false;
    if (O.rate <= 0)
        return true;
    return (double)R.issued < (double)(now - R.publish_start) / 1e9 * O.rate + 1;
}

static void issue_publishes(uint64_t now)
{
    if (R.phase != PH_PUBLISH)
        return;
    while (publish_due(now)) {
        struct publisher *p = free_publisher();
        if (!p)
            return; /* all awaiting answers: the server sets the pace */
        if (p->state == PUB_DOWN && now < p->retry_at) {
            /* Every free connection failed to connect moments ago. At a fixed
             * rate this publish is due now, so it fails now (a server outage
             * costs rate x outage publishes); unpaced, wait for the retry. */
            if (O.rate <= 0)
                return;
            uint32_t channel, seq;
            next_publish(&channel, &seq);
            R.publish_errors++;
            continue;
        }
        pub_take(p, now);
    }
}

static bool publishers_busy(void)
{
    for (uint32_t i = 0; i < O.publishers; i++)
        if (R.pubs[i].state == PUB_BUSY)
            return true;
    return false;
}

static void expire_publishes(uint64_t now)
{
    uint64_t timeout = seconds_to_ns(O.pub_timeout);
    for (uint32_t i = 0; i < O.publishers; i++) {
        struct publisher *p = &R.pubs[i];
        if (p->state == PUB_BUSY && now - p->started > timeout)
            pub_failed(p, now);
    }
}

/* ------------------------------------------------------------------ phases */

static bool publishing_planned(void)
{
    return O.duration > 0 || O.events > 0;
}

static void enter_phase(enum phase phase, uint64_t now)
{
    R.phase = phase;
    switch (phase) {
    case PH_HOLD:
        R.deadline = now + seconds_to_ns(O.hold);
        break;
    case PH_SETTLE:
        R.deadline = now + seconds_to_ns(O.settle);
        break;
    case PH_PUBLISH:
        R.publish_start = now;
        R.publish_until = now + seconds_to_ns(O.duration);
        phase_line("publishing", now, ",\"live\":%" PRIu32, R.live);
        break;
    case PH_DRAIN:
        R.publish_end = now;
        R.deadline = now + seconds_to_ns(O.drain_timeout);
        phase_line("published", now, ",\"acked\":%" PRIu64 ",\"errors\":%" PRIu64, R.acked, R.publish_errors);
        break;
    case PH_CONNECT:
    case PH_DONE:
        break;
    }
}

/* Move to the next phase if this one is over; true if it moved. */
static bool advance_phase(uint64_t now)
{
    switch (R.phase) {
    case PH_CONNECT: {
        bool nothing_left = R.next_initial == O.subscribers && R.heap_len == 0 && R.connecting == 0;
        if (R.live < O.subscribers && !nothing_left && now < R.deadline)
            return false;
        if (R.live < O.subscribers)
            phase_line("connect_incomplete", now, ",\"live\":%" PRIu32, R.live);
        enter_phase(O.hold > 0 ? PH_HOLD : publishing_planned() ? PH_SETTLE : PH_DONE, now);
        return true;
    }
    case PH_HOLD:
        if (now < R.deadline)
            return false;
        enter_phase(publishing_planned() ? PH_SETTLE : PH_DONE, now);
        return true;
    case PH_SETTLE:
        if (now < R.deadline)
            return false;
        enter_phase(PH_PUBLISH, now);
        return true;
    case PH_PUBLISH:
        if (!publishing_over(now) || publishers_busy())
            return false;
        enter_phase(PH_DRAIN, now);
        return true;
    case PH_DRAIN:
        if (R.have < R.expected && now < R.deadline)
            return false;
        phase_line("drained", now, ",\"complete\":%s,\"delivered\":%" PRIu64 ",\"expected\":%" PRIu64,
                   R.have == R.expected ? "true" : "false", R.have, R.expected);
        enter_phase(PH_DONE, now);
        return true;
    case PH_DONE:
        return false;
    }
    return false;
}

/* How long epoll may sleep: until the next timed thing that is not waiting
 * on I/O anyway (things already due but blocked wait for an event). */
static int sleep_ms(uint64_t now)
{
    if (R.connects_left)
        return 0;
    uint64_t next = now + TICK_NS;
#define SOONER(t)                          \
    do {                                   \
        uint64_t t_ = (t);                 \
        if (t_ > now && t_ < next)         \
            next = t_;                     \
    } while (0)
    if (R.connecting < O.max_connecting) {
        if (R.heap_len)
            SOONER(R.heap[0].due);
        if (R.phase == PH_CONNECT && O.connect_rate > 0 && R.next_initial < O.subscribers)
            SOONER(R.connect_start + (uint64_t)((double)R.next_initial / O.connect_rate * 1e9));
    }
    if (R.phase == PH_CONNECT || R.phase == PH_HOLD || R.phase == PH_SETTLE || R.phase == PH_DRAIN)
        SOONER(R.deadline);
    if (R.phase == PH_PUBLISH) {
        if (O.duration > 0)
            SOONER(R.publish_until);
        if (O.rate > 0)
            SOONER(R.publish_start + (uint64_t)((double)R.issued / O.rate * 1e9));
        for (uint32_t i = 0; i < O.publishers; i++)
            if (R.pubs[i].state == PUB_DOWN)
                SOONER(R.pubs[i].retry_at);
    }
#undef SOONER
    return (int)((next - now + NS_PER_MS - 1) / NS_PER_MS);
}

static void run(void)
{
    static struct epoll_event events[MAX_EVENTS];
    R.connect_start = now_ns();
    R.deadline = R.connect_start + seconds_to_ns(O.connect_timeout);
    phase_line("connecting", R.connect_start, ",\"subscribers\":%" PRIu32, O.subscribers);
    for (;;) {
        uint64_t now = now_ns();
        start_connects(now);
        while (advance_phase(now))
            ;
        if (R.phase == PH_DONE)
            return;
        /* A fresh time: starting a burst of connects can take milliseconds,
         * and it is stamped into payloads for the latency. */
        now = now_ns();
        issue_publishes(now);
        expire_publishes(now);
        int n = epoll_wait(R.epoll, events, MAX_EVENTS, sleep_ms(now));
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag & PUBLISHER_TAG)
                publisher_event(&R.pubs[(uint32_t)tag], events[i].events);
            else
                subscriber_event(&R.subs[(uint32_t)tag], events[i].events);
        }
    }
}

/* ------------------------------------------------------------------ summary */

static bool first_field = true;

static void field_name(const char *name)
{
    printf("%s\"%s\":", first_field ? "{" : ",", name);
    first_field = false;
}

static void field_uint(const char *name, uint64_t value)
{
    field_name(name);
    printf("%" PRIu64, value);
}

/* A number with `decimals` places; NaN prints as null. */
static void field_real(const char *name, double value, int decimals)
{
    field_name(name);
    if (isnan(value))
        fputs("null", stdout);
    else
        printf("%.*f", decimals, value);
}

static void print_summary(void)
{
    double publish_seconds = R.publish_end ? (double)(R.publish_end - R.publish_start) / 1e9 : NAN;
    double delivery_seconds = R.last_receipt > R.publish_start ? (double)(R.last_receipt - R.publish_start) / 1e9 : NAN;
    uint32_t events_per_channel = 0;
    for (uint32_t c = 0; c < O.channels; c++)
        if (R.channels[c].sent > events_per_channel)
            events_per_channel = R.channels[c].sent;

    field_uint("subscribers", O.subscribers);
    field_uint("live_at_end", R.live);
    field_uint("channels", O.channels);
    field_uint("publishers", O.publishers);
    field_uint("payload_bytes", O.payload);
    field_uint("connect_failures", R.connect_failures);
    field_uint("reconnects", R.reconnects);
    field_real("connect_seconds", R.connect_seconds, 3);
    field_uint("events_per_channel", events_per_channel);
    field_uint("published_attempted", R.issued);
    field_uint("published_acked", R.acked);
    field_uint("publish_errors", R.publish_errors);
    field_real("publish_p50_ms", hist_quantile_ms(&R.publish_latency, 0.50), 3);
    field_real("publish_p99_ms", hist_quantile_ms(&R.publish_latency, 0.99), 3);
    field_real("publish_seconds", publish_seconds, 3);
    field_real("publish_rate", publish_seconds > 0 ? (double)R.acked / publish_seconds : NAN, 1);
    field_uint("expected_deliveries", R.expected);
    field_uint("delivered", R.have);
    field_uint("lost", R.expected - R.have);
    field_uint("duplicates", R.duplicates);
    field_uint("out_of_order", R.out_of_order);
    field_uint("unacked_received", R.first_receipts - R.have);
    field_uint("foreign", R.foreign);
    field_real("latency_p50_ms", hist_quantile_ms(&R.latency, 0.50), 3);
    field_real("latency_p99_ms", hist_quantile_ms(&R.latency, 0.99), 3);
    field_real("latency_max_ms", R.latency.count ? (double)R.latency.max / 1e6 : NAN, 3);
    field_real("deliveries_per_s", delivery_seconds > 0 ? (double)R.have / delivery_seconds : NAN, 1);
    field_name("all_live_times");
    putchar('[');
    for (size_t i = 0; i < R.all_live_count; i++)
        printf("%s%.6f", i ? "," : "", R.all_live[i] / 1e9);
    putchar(']');
    field_real("first_drop_time", R.first_drop ? R.first_drop / 1e9 : NAN, 6);
    puts("}");
}

/* ------------------------------------------------------------------ setup */

static double parse_real(const char *option, const char *text, double min)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < min)
        usage_error("--%s wants a number >= %g, not '%s'", option, min, text);
    return v;
}

static uint32_t parse_count(const char *option, const char *text, uint32_t min, uint32_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < min || v > max)
        usage_error("--%s wants a whole number from %" PRIu32 " to %" PRIu32 ", not '%s'", option, min, max, text);
    return (uint32_t)v;
}

static void add_header(const char **list, int *count, const char *option, const char *header)
{
    if (!strchr(header, ':') || strpbrk(header, "\r\n"))
        usage_error("--%s wants 'Name: value', not '%s'", option, header);
    if (*count == MAX_HEADERS)
        usage_error("at most %d --%s options", MAX_HEADERS, option);
    list[(*count)++] = header;
}

static void parse_options(int argc, char **argv)
{
    enum {
        OPT_HOST = 256, OPT_PORT, OPT_SUBSCRIBERS, OPT_CHANNELS, OPT_CHANNEL_PREFIX, OPT_SUB_PATH,
        OPT_SUB_HEADER, OPT_CONNECT_RATE, OPT_MAX_CONNECTING, OPT_CONNECT_TIMEOUT, OPT_SOURCE_IPS,
        OPT_RECONNECT, OPT_HONOUR_RETRY, OPT_RETRY_FAILED_MS, OPT_HOLD, OPT_SETTLE, OPT_EVENTS,
        OPT_DURATION, OPT_RATE, OPT_PUBLISHERS, OPT_PUB_METHOD, OPT_PUB_PATH, OPT_PUB_BODY,
        OPT_PUB_HEADER, OPT_PUB_TIMEOUT, OPT_PAYLOAD, OPT_DRAIN_TIMEOUT, OPT_HELP
    };
    static const struct option longopts[] = {
        {"host", required_argument, 0, OPT_HOST},
        {"port", required_argument, 0, OPT_PORT},
        {"subscribers", required_argument, 0, OPT_SUBSCRIBERS},
        {"channels", required_argument, 0, OPT_CHANNELS},
        {"channel-prefix", required_argument, 0, OPT_CHANNEL_PREFIX},
        {"sub-path", required_argument, 0, OPT_SUB_PATH},
        {"sub-header", required_argument, 0, OPT_SUB_HEADER},
        {"connect-rate", required_argument, 0, OPT_CONNECT_RATE},
        {"max-connecting", required_argument, 0, OPT_MAX_CONNECTING},
        {"connect-timeout", required_argument, 0, OPT_CONNECT_TIMEOUT},
        {"source-ips", required_argument, 0, OPT_SOURCE_IPS},
        {"reconnect", no_argument, 0, OPT_RECONNECT},
        {"honour-retry", no_argument, 0, OPT_HONOUR_RETRY},
        {"retry-failed-ms", required_argument, 0, OPT_RETRY_FAILED_MS},
        {"hold", required_argument, 0, OPT_HOLD},
        {"settle", required_argument, 0, OPT_SETTLE},
        {"events", required_argument, 0, OPT_EVENTS},
        {"duration", required_argument, 0, OPT_DURATION},
        {"rate", required_argument, 0, OPT_RATE},
        {"publishers", required_argument, 0, OPT_PUBLISHERS},
        {"pub-method", required_argument, 0, OPT_PUB_METHOD},
        {"pub-path", required_argument, 0, OPT_PUB_PATH},
        {"pub-body", required_argument, 0, OPT_PUB_BODY},
        {"pub-header", required_argument, 0, OPT_PUB_HEADER},
        {"pub-timeout", required_argument, 0, OPT_PUB_TIMEOUT},
        {"payload", required_argument, 0, OPT_PAYLOAD},
        {"drain-timeout", required_argument, 0, OPT_DRAIN_TIMEOUT},
        {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0},
    };
    O = (struct options){
        .host = "127.0.0.1",
        .subscribers = 100,
        .channels = 1,
        .channel_prefix = "c",
        .max_connecting = 500,
        .sub_path = "/events?channel={channel}",
        .connect_timeout = 60,
        .settle = 1.0,
        .events = 100,
        .publishers = 1,
        .pub_method = "POST",
        .pub_path = "/publish",
        .pub_body = "{\"channel\":\"{channel}\",\"data\":\"{data}\"}",
        .pub_timeout = 10,
        .payload = 110,
        .drain_timeout = 10,
        .retry_failed_ms = 100,
    };
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HOST: O.host = optarg; break;
        case OPT_PORT: O.port = (int)parse_count("port", optarg, 1, 65535); break;
        case OPT_SUBSCRIBERS: O.subscribers = parse_count("subscribers", optarg, 1, 10000000); break;
        case OPT_CHANNELS: O.channels = parse_count("channels", optarg, 1, 10000000); break;
        case OPT_CHANNEL_PREFIX: O.channel_prefix = optarg; break;
        case OPT_SUB_PATH: O.sub_path = optarg; break;
        case OPT_SUB_HEADER: add_header(O.sub_headers, &O.sub_header_count, "sub-header", optarg); break;
        case OPT_CONNECT_RATE: O.connect_rate = parse_real("connect-rate", optarg, 0); break;
        case OPT_MAX_CONNECTING: O.max_connecting = parse_count("max-connecting", optarg, 1, 1000000); break;
        case OPT_CONNECT_TIMEOUT: O.connect_timeout = parse_real("connect-timeout", optarg, 0); break;
        case OPT_SOURCE_IPS: O.source_ips = optarg; break;
        case OPT_RECONNECT: O.reconnect = true; break;
        case OPT_HONOUR_RETRY: O.honour_retry = true; break;
        case OPT_RETRY_FAILED_MS: O.retry_failed_ms = parse_count("retry-failed-ms", optarg, 0, 3600000); break;
        case OPT_HOLD: O.hold = parse_real("hold", optarg, 0); break;
        case OPT_SETTLE: O.settle = parse_real("settle", optarg, 0); break;
        case OPT_EVENTS:
            O.events = parse_count("events", optarg, 0, 1000000000);
            O.events_given = true;
            break;
        case OPT_DURATION: O.duration = parse_real("duration", optarg, 0); break;
        case OPT_RATE: O.rate = parse_real("rate", optarg, 0); break;
        case OPT_PUBLISHERS: O.publishers = parse_count("publishers", optarg, 1, 10000); break;
        case OPT_PUB_METHOD: O.pub_method = optarg; break;
        case OPT_PUB_PATH: O.pub_path = optarg; break;
        case OPT_PUB_BODY: O.pub_body = optarg; break;
        case OPT_PUB_HEADER: add_header(O.pub_headers, &O.pub_header_count, "pub-header", optarg); break;
        case OPT_PUB_TIMEOUT: O.pub_timeout = parse_real("pub-timeout", optarg, 0.001); break;
        case OPT_PAYLOAD: O.payload = parse_count("payload", optarg, MIN_PAYLOAD, MAX_PAYLOAD); break;
        case OPT_DRAIN_TIMEOUT: O.drain_timeout = parse_real("drain-timeout", optarg, 0); break;
        case OPT_HELP: fputs(USAGE, stdout); exit(0);
        default: usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (!O.port)
        usage_error("--port is required");
    if (O.duration > 0 && O.events_given)
        usage_error("give --events or --duration, not both");
    if (O.duration > 0 || (O.hold > 0 && !O.events_given))
        O.events = 0; /* --hold alone only holds; --duration publishes until the time is up */
    if (strlen(O.channel_prefix) > 40)
        usage_error("--channel-prefix is limited to 40 bytes");
    if (!O.pub_header_count)
        O.pub_headers[O.pub_header_count++] = "Content-Type: application/json";
}

/* Resolve a numeric or local address (loopback use: no DNS expected). */
static void resolve(const char *host, int port, struct sockaddr_storage *out, socklen_t *len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *found;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int error = getaddrinfo(host, service, &hints, &found);
    if (error)
        usage_error("cannot resolve '%s': %s", host, gai_strerror(error));
    memcpy(out, found->ai_addr, found->ai_addrlen);
    *len = found->ai_addrlen;
    freeaddrinfo(found);
}

static void setup_sources(void)
{
    if (!O.source_ips)
        return;
    char *list = strdup(O.source_ips), *save = NULL;
    for (char *ip = strtok_r(list, ",", &save); ip; ip = strtok_r(NULL, ",", &save)) {
        R.sources = xrealloc(R.sources, (R.source_count + 1) * sizeof *R.sources);
        resolve(ip, 0, &R.sources[R.source_count], &R.source_len);
        if (R.sources[R.source_count].ss_family != R.server.ss_family)
            usage_error("source address '%s' is not of the server's address family", ip);
        R.source_count++;
    }
    free(list);
    if (!R.source_count)
        usage_error("--source-ips lists no address");
}

/* Open as many files as allowed: every connection is one. */
static void raise_file_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    uint64_t needed = (uint64_t)O.subscribers + O.publishers + 16;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed)
        usage_error("%" PRIu64 " connections need more open files than the limit %llu (raise ulimit -Hn)", needed,
                    (unsigned long long)limit.rlim_cur);
}

static void setup_channels(void)
{
    struct buf fixed = {0}, request = {0};
    buf_str(&fixed, " HTTP/1.1\r\nHost: ");
    buf_str(&fixed, R.host_header);
    buf_str(&fixed, "\r\nAccept: text/event-stream\r\n");
    for (int i = 0; i < O.sub_header_count; i++) {
        buf_str(&fixed, O.sub_headers[i]);
        buf_str(&fixed, "\r\n");
    }
    size_t longest = 0;
    R.channels = xcalloc(O.channels, sizeof *R.channels);
    for (uint32_t c = 0; c < O.channels; c++) {
        struct channel *ch = &R.channels[c];
        snprintf(ch->name, sizeof ch->name, "%s%" PRIu32, O.channel_prefix, c);
        request.len = 0;
        buf_str(&request, "GET ");
        buf_expand(&request, O.sub_path, ch->name, "", 0);
        buf_add(&request, fixed.data, fixed.len);
        ch->sub_request = xrealloc(NULL, request.len);
        memcpy(ch->sub_request, request.data, request.len);
        ch->sub_request_len = request.len;
        if (request.len > longest)
            longest = request.len;
        channel_reserve(ch, R.initial_seqs);
    }
    for (uint32_t i = 0; i < O.subscribers; i++)
        R.channels[i % O.channels].subscribers++;
    R.scratch = xrealloc(NULL, longest + ID_CAP + 64);
    free(fixed.data);
    free(request.data);
}

static void setup_subscribers(void)
{
    /* Room for a data line with a whole payload, or an id: line of ID_CAP. */
    R.line_cap = O.payload + 64 > 320 ? O.payload + 64 : 320;
    char *lines = xcalloc(O.subscribers, R.line_cap);
    R.subs = xcalloc(O.subscribers, sizeof *R.subs);
    R.heap = xcalloc(O.subscribers, sizeof *R.heap);
    for (uint32_t i = 0; i < O.subscribers; i++) {
        struct subscriber *s = &R.subs[i];
        s->fd = -1;
        s->channel = i % O.channels;
        s->retry_ms = -1;
        s->line = lines + (size_t)i * R.line_cap;
        s->http.line = s->line;
        s->http.line_cap = (uint16_t)R.line_cap;
    }
}

static void setup_publishers(void)
{
    struct buf headers = {0};
    for (int i = 0; i < O.pub_header_count; i++) {
        buf_str(&headers, O.pub_headers[i]);
        buf_str(&headers, "\r\n");
    }
    buf_add(&headers, "", 1);
    R.pub_header_block = headers.data;
    R.payload = xcalloc(1, O.payload + 1);
    R.pubs = xcalloc(O.publishers, sizeof *R.pubs);
    for (uint32_t i = 0; i < O.publishers; i++) {
        struct publisher *p = &R.pubs[i];
        p->fd = -1;
        p->http.line = p->head_line;
        p->http.line_cap = HEAD_LINE_CAP;
        /* Build a request for the longest channel name once, so the buffers
         * already fit every later publish. */
        p->channel = O.channels - 1;
        p->seq = UINT32_MAX;
        build_publish_request(p, UINT64_MAX);
    }
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    resolve(O.host, O.port, &R.server, &R.server_len);
    setup_sources();
    raise_file_limit();
    snprintf(R.host_header, sizeof R.host_header, strchr(O.host, ':') ? "[%s]:%d" : "%s:%d", O.host, O.port);

    if (O.events)
        R.initial_seqs = O.events + 1;
    else if (O.duration > 0 && O.rate > 0)
        R.initial_seqs = (uint32_t)fmin(O.duration * O.rate / O.channels * 1.1 + 64, 1e8);
    else
        R.initial_seqs = 1024;
    R.total_publishes = (uint64_t)O.events * O.channels;
    R.connect_seconds = NAN;

    setup_channels();
    setup_subscribers();
    setup_publishers();
    R.epoll = epoll_create1(EPOLL_CLOEXEC);
    if (R.epoll < 0)
        die("epoll_create1: %s", strerror(errno));

    run();
    print_summary();
    return 0;
}
