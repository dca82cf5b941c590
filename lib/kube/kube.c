/* kube.c - the client: connections, the event loop, timers, the rate
 * limiter and asynchronous calls with retries.  See kube.h.
 *
 * Every transfer, a try of a call or a watch stream, is an easy handle on
 * the one multi handle.  A call is a small state machine advanced by
 * advance(): QUEUED (waiting for its time: a backoff, a rate-limit token)
 * -> SENDING (a transfer on the multi handle) -> back to QUEUED for a retry
 * or the next page, or DONE (on the client's done list until ism_kube_run
 * hands it to its callback, or until ism_kube_wait collects it).  advance()
 * never runs a caller's callback, so it may run anywhere: in ism_kube_run
 * and in ism_kube_wait.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/kube/kube_internal.h"
#include "lib/util/backoff.h"
#include "lib/util/file.h"
#include "lib/util/log.h"

#define MAX_BODY (64u << 20)   /* a bigger answer is hostile or a bug */
#define MAX_DISPATCHERS 8

typedef struct transfer {
    ism_kube_t *k;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to; /* tls-server-name mapping, or NULL */
    char *body;                /* buffered answer (requests) */
    size_t len, cap;
    bool too_big;
    long retry_after;          /* Retry-After header, seconds */
    bool done;
    CURLcode result;
    ism_kube_stream_t *stream; /* set for streams */
    struct transfer *next;     /* the client's list of live transfers */
} transfer_t;

struct ism_kube_stream {
    transfer_t *t;
    ism_kube_data_f on_data;
    ism_kube_done_f on_done;
    void *arg;
    ism_kube_status_t st;     /* the answer's code, decoded when it ends */
    char head[512];            /* first bytes of an error answer */
    size_t head_len;
    bool open;                 /* the server answered 2xx: the stream runs */
};

typedef enum { CALL_QUEUED, CALL_SENDING, CALL_DONE } call_state_t;

struct ism_kube_call {
    ism_kube_t *k;
    char *method, *path, *body, *content_type;
    char *accept;              /* Accept header, NULL for application/json */
    bool write;
    ism_kube_call_f done;      /* NULL: collected by ism_kube_wait */
    void *arg;
    call_state_t state;
    int64_t not_before;        /* QUEUED: monotonic ms of the next try */
    int64_t deadline;          /* SENDING: the write guard's, or 0 */
    int tries;                 /* of the current request */
    int max_retries;
    long timeout_ms;
    bool unguarded;
    ism_kube_lane_t lane;      /* which bucket it waits for */
    transfer_t *t;             /* SENDING */
    ism_kube_page_f page;      /* a call of several requests */
    void (*page_free)(void *);
    void *page_state;
    /* the outcome */
    int rc;
    int errnum;
    ism_kube_status_t st;
    ism_error_t err;
    json_t *answer;
    struct ism_kube_call *next;
};

struct ism_kube {
    ism_kube_config_t *cfg;    /* our own copy */
    ism_kube_options_t opts;
    char *user_agent;
    CURLM *multi;
    transfer_t *transfers;
    ism_kube_call_t *calls;    /* QUEUED and SENDING, in submission order */
    ism_kube_call_t *done, **done_tail; /* DONE, callbacks not run yet */
    size_t n_calls;            /* on either list */
    ism_kube_timer_t *timers;  /* armed, sorted by due time */
    uint64_t timer_gen;        /* run_timers passes */
    int64_t failing_since;     /* first try without an answer (or a 5xx) in a row, or 0 */
    struct {
        ism_kube_dispatch_f fn;
        void *arg;
    } dispatch[MAX_DISPATCHERS];
    /* rate limiter: a token bucket for Events, one for everything else */
    struct bucket {
        double tokens;
        int64_t at;
    } bucket[2];
    /* bearer token from a file, re-read when the file changes */
    char *token;
    struct stat token_stat;
    bool warned_insecure;
    ism_kube_guard_f guard;
    void *guard_arg;
    ism_kube_stats_t stats;
};

/* ------------------------------------------------------------------ time */

int64_t ism_kube_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ timers */

void ism_kube_timer_init(ism_kube_timer_t *t, ism_kube_timer_f fn, void *arg)
{
    if (!t)
        return;
    memset(t, 0, sizeof(*t));
    t->fn = fn;
    t->arg = arg;
}

bool ism_kube_timer_armed(const ism_kube_timer_t *t)
{
    return t && t->armed;
}

void ism_kube_timer_disarm(ism_kube_t *k, ism_kube_timer_t *t)
{
    if (!k || !t || !t->armed)
        return;
    for (ism_kube_timer_t **pp = &k->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    t->armed = false;
    t->next = NULL;
}

void ism_kube_timer_arm(ism_kube_t *k, ism_kube_timer_t *t, int64_t delay_ms)
{
    ism_kube_timer_t **pp;

    if (!k || !t || !t->fn)
        return;
    ism_kube_timer_disarm(k, t);
    t->due = ism_kube_now_ms() + (delay_ms > 0 ? delay_ms : 0);
    for (pp = &k->timers; *pp && (*pp)->due <= t->due; pp = &(*pp)->next)
        ;
    t->next = *pp;
    *pp = t;
    t->armed = true;
    t->gen = k->timer_gen;
}

/* Run the timers that are due now, not those they arm: a timer armed
 * during this pass has this pass's generation, and sorts after every timer
 * that was due when the pass began. */
static void run_timers(ism_kube_t *k)
{
    int64_t now = ism_kube_now_ms();
    uint64_t gen = ++k->timer_gen;

    while (k->timers && k->timers->due <= now && k->timers->gen != gen) {
        ism_kube_timer_t *t = k->timers;
        k->timers = t->next;
        t->next = NULL;
        t->armed = false;
        t->fn(k, t->arg);
    }
}

/* ------------------------------------------------------------------ client */

static int check_options(const ism_kube_options_t *o, ism_error_t *err)
{
    if (o->burst < 1 || o->max_retries < 0 || o->backoff_base_ms < 1 ||
        o->backoff_cap_ms < o->backoff_base_ms || o->timeout_ms < 1)
        return ism_err(err, EINVAL, "kube client: bad options (burst %d, retries %d, "
                       "backoff %d..%d ms, timeout %d ms)", o->burst, o->max_retries,
                       o->backoff_base_ms, o->backoff_cap_ms, o->timeout_ms);
    return 0;
}

ism_kube_t *ism_kube_create(const ism_kube_config_t *cfg, const ism_kube_options_t *opts,
                            ism_error_t *err)
{
    static const ism_kube_options_t defaults = ISM_KUBE_OPTIONS_DEFAULT;
    ism_kube_t *k = NULL;

    if (!cfg || !cfg->server || strncmp(cfg->server, "https://", 8) != 0) {
        ism_err(err, EINVAL, "kube client: the server must be an https:// URL");
        return NULL;
    }
    if (!opts)
        opts = &defaults;
    if (check_options(opts, err) < 0)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ism_err(err, EIO, "kube client: libcurl failed to initialise");
        return NULL;
    }
    if (!(k = calloc(1, sizeof(*k))))
        goto nomem;
    k->opts = *opts;
    if (!(k->cfg = ism_kube_config_copy(cfg)))
        goto nomem;
    if (!(k->user_agent = strdup(opts->user_agent ? opts->user_agent
                                                  : "isthmus/" PACKAGE_VERSION)))
        goto nomem;
    k->opts.user_agent = k->user_agent;
    if (!(k->multi = curl_multi_init()))
        goto nomem;
    if (curl_multi_setopt(k->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != CURLM_OK) {
        ism_err(err, EIO, "kube client: libcurl cannot multiplex (HTTP/2)");
        ism_kube_destroy(k);
        return NULL;
    }
    k->done_tail = &k->done;
    for (int i = 0; i < 2; i++)
        k->bucket[i] = (struct bucket){ opts->burst, ism_kube_now_ms() };
    return k;
nomem:
    ism_err(err, ENOMEM, "kube client: out of memory");
    ism_kube_destroy(k);
    return NULL;
}

static void transfer_free(transfer_t *t);

void ism_kube_destroy(ism_kube_t *k)
{
    int saved = errno;

    if (!k)
        return;
    while (k->transfers) {
        transfer_t *t = k->transfers;
        k->transfers = t->next;
        free(t->stream);
        transfer_free(t);
    }
    while (k->calls || k->done) {
        ism_kube_call_t *c = k->calls ? k->calls : k->done;
        ism_kube_cancel(k, c);
    }
    while (k->timers) { /* the owners' structs: only unlink them */
        ism_kube_timer_t *t = k->timers;
        k->timers = t->next;
        t->next = NULL;
        t->armed = false;
    }
    if (k->multi)
        curl_multi_cleanup(k->multi);
    ism_kube_config_destroy(k->cfg);
    free(k->user_agent);
    if (k->token)
        explicit_bzero(k->token, strlen(k->token));
    free(k->token);
    free(k);
    errno = saved;
}

const char *ism_kube_namespace(const ism_kube_t *k)
{
    if (!k)
        return NULL;
    return k->cfg->namespace_ ? k->cfg->namespace_ : "default";
}

void ism_kube_stats(const ism_kube_t *k, ism_kube_stats_t *out)
{
    if (k && out)
        *out = k->stats;
}

void ism_kube_set_write_guard(ism_kube_t *k, ism_kube_guard_f guard, void *arg)
{
    if (!k)
        return;
    k->guard = guard;
    k->guard_arg = arg;
}

int ism_kube_add_dispatcher(ism_kube_t *k, ism_kube_dispatch_f fn, void *arg)
{
    for (int i = 0; i < MAX_DISPATCHERS; i++) {
        if (!k->dispatch[i].fn) {
            k->dispatch[i].fn = fn;
            k->dispatch[i].arg = arg;
            return 0;
        }
    }
    errno = ENOSPC;
    return -1;
}

void ism_kube_remove_dispatcher(ism_kube_t *k, ism_kube_dispatch_f fn, void *arg)
{
    for (int i = 0; i < MAX_DISPATCHERS; i++)
        if (k->dispatch[i].fn == fn && k->dispatch[i].arg == arg)
            k->dispatch[i].fn = NULL;
}

/* ------------------------------------------------------------------ credentials */

/* A bearer token is a few hundred bytes to a few KiB; more is not a token. */
#define TOKEN_MAX 16384

/* Re-read the token file when it changed (a projected service-account
 * token is rotated by kubelet by replacing the file).  The file may hold
 * one line; every copy of the secret is wiped before it is freed. */
static int refresh_token(ism_kube_t *k, ism_error_t *err)
{
    struct stat sb;
    char *fresh;
    size_t n;

    if (!k->cfg->token_file)
        return 0;
    if (stat(k->cfg->token_file, &sb) < 0)
        return ism_err(err, errno, "token file %s: %s", k->cfg->token_file, strerror(errno));
    if (k->token && sb.st_ino == k->token_stat.st_ino && sb.st_size == k->token_stat.st_size &&
        sb.st_mtim.tv_sec == k->token_stat.st_mtim.tv_sec &&
        sb.st_mtim.tv_nsec == k->token_stat.st_mtim.tv_nsec)
        return 0;
    if (!(fresh = ism_file_read(k->cfg->token_file, TOKEN_MAX, &n, err)))
        return ism_errprefix(err, "token file");
    while (n > 0 && (fresh[n - 1] == '\n' || fresh[n - 1] == '\r' || fresh[n - 1] == ' '))
        n--;
    fresh[n] = '\0';
    if (n == 0 || strlen(fresh) != n || strpbrk(fresh, "\r\n")) {
        explicit_bzero(fresh, n);
        free(fresh);
        return ism_err(err, EINVAL, "token file %s: empty or not one line", k->cfg->token_file);
    }
    if (k->token)
        explicit_bzero(k->token, strlen(k->token));
    free(k->token);
    k->token = fresh;
    k->token_stat = sb;
    return 0;
}

/* ------------------------------------------------------------------ transfers */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    transfer_t *t = arg;
    size_t len = size * nmemb;

    if (t->stream) {
        ism_kube_stream_t *s = t->stream;
        long code = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300)
            return s->on_data(data, len, s->arg);
        /* An error answer: keep its head for the Status. */
        size_t room = sizeof(s->head) - s->head_len;
        size_t take = len < room ? len : room;
        memcpy(s->head + s->head_len, data, take);
        s->head_len += take;
        return len;
    }
    if (t->len + len > MAX_BODY) {
        t->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (t->len + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 16384;
        while (cap < t->len + len + 1)
            cap *= 2;
        char *p = realloc(t->body, cap);
        if (!p)
            return 0;
        t->body = p;
        t->cap = cap;
    }
    memcpy(t->body + t->len, data, len);
    t->len += len;
    t->body[t->len] = '\0';
    return len;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    transfer_t *t = arg;
    size_t len = size * nmemb;
    static const char name[] = "retry-after:";

    if (t->stream && len <= 2) { /* the blank line that ends the headers */
        long code = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
        t->stream->open = code >= 200 && code < 300;
    }
    if (len > sizeof(name) && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        char buf[32];
        size_t n = len - (sizeof(name) - 1);
        if (n >= sizeof(buf))
            n = sizeof(buf) - 1;
        memcpy(buf, data + sizeof(name) - 1, n);
        buf[n] = '\0';
        long v = strtol(buf, NULL, 10); /* seconds; an HTTP date reads as 0 */
        t->retry_after = v > 0 && v < 86400 ? v : 0;
    }
    return len;
}

static void transfer_free(transfer_t *t)
{
    if (!t)
        return;
    if (t->easy) {
        curl_multi_remove_handle(t->k->multi, t->easy);
        curl_easy_cleanup(t->easy);
    }
    curl_slist_free_all(t->headers);
    curl_slist_free_all(t->connect_to);
    free(t->body);
    free(t);
}

static void unlink_transfer(ism_kube_t *k, transfer_t *t)
{
    for (transfer_t **pp = &k->transfers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            return;
        }
    }
}

/* Add one header line; false when out of memory. */
static bool add_header(transfer_t *t, const char *line)
{
    struct curl_slist *l = curl_slist_append(t->headers, line);
    if (!l)
        return false;
    t->headers = l;
    return true;
}

/* curl_easy_setopt, remembering the first failure in *bad (an option
 * this libcurl lacks, or out of memory for the copy of a string or blob). */
#define SETOPT(e, opt, val, bad)                                \
    do {                                                        \
        if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)    \
            *(bad) = *(bad) ? *(bad) : #opt;                    \
    } while (0)

/* TLS, credentials and connection options shared by every transfer. */
static int setup_tls(ism_kube_t *k, CURL *e, transfer_t *t, ism_error_t *err)
{
    const ism_kube_config_t *c = k->cfg;
    const char *bad = NULL;

    if (c->insecure) {
        if (!k->warned_insecure)
            ism_log_warn("kube client: TLS verification is off for %s "
                         "(insecure-skip-tls-verify in the kubeconfig)", c->server);
        k->warned_insecure = true;
        SETOPT(e, CURLOPT_SSL_VERIFYPEER, 0L, &bad);
        SETOPT(e, CURLOPT_SSL_VERIFYHOST, 0L, &bad);
    } else if (c->ca_data) {
        struct curl_blob blob = { c->ca_data, c->ca_data_len, CURL_BLOB_COPY };
        SETOPT(e, CURLOPT_CAINFO_BLOB, &blob, &bad);
    } else if (c->ca_file) {
        SETOPT(e, CURLOPT_CAINFO, c->ca_file, &bad);
    }
    if (c->cert_data) {
        struct curl_blob blob = { c->cert_data, c->cert_data_len, CURL_BLOB_COPY };
        SETOPT(e, CURLOPT_SSLCERT_BLOB, &blob, &bad);
    } else if (c->cert_file) {
        SETOPT(e, CURLOPT_SSLCERT, c->cert_file, &bad);
    }
    if (c->key_data) {
        struct curl_blob blob = { c->key_data, c->key_data_len, CURL_BLOB_COPY };
        SETOPT(e, CURLOPT_SSLKEY_BLOB, &blob, &bad);
    } else if (c->key_file) {
        SETOPT(e, CURLOPT_SSLKEY, c->key_file, &bad);
    }
    if (c->proxy_url)
        SETOPT(e, CURLOPT_PROXY, c->proxy_url, &bad);
    if (bad)
        return ism_err(err, EIO, "kube client: libcurl refused %s (TLS or proxy settings)", bad);
    if (refresh_token(k, err) < 0)
        return -1;
    const char *token = c->token ? c->token : k->token;
    if (token) {
        char *line = NULL;
        if (asprintf(&line, "Authorization: Bearer %s", token) < 0)
            return ism_err(err, ENOMEM, "out of memory");
        bool ok = add_header(t, line);
        explicit_bzero(line, strlen(line));
        free(line);
        if (!ok)
            return ism_err(err, ENOMEM, "out of memory");
    }
    return 0;
}

/* The URL for path.  With tls-server-name, curl connects to the real
 * server but verifies (and sends SNI for) the configured name: the URL
 * carries the name and CONNECT_TO maps it to the server. */
static int setup_url(ism_kube_t *k, CURL *e, const char *path, struct curl_slist **connect_to,
                     ism_error_t *err)
{
    char *url = NULL;
    int rc = -1;

    if (k->cfg->tls_server_name) {
        CURLU *u = curl_url();
        char *host = NULL, *port = NULL, *map = NULL;
        if (u && curl_url_set(u, CURLUPART_URL, k->cfg->server, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
            curl_url_set(u, CURLUPART_HOST, k->cfg->tls_server_name, 0) == CURLUE_OK &&
            asprintf(&map, "%s:%s:%s:%s", k->cfg->tls_server_name, port, host, port) >= 0) {
            char *base = NULL;
            if (curl_url_get(u, CURLUPART_URL, &base, 0) == CURLUE_OK) {
                size_t bl = strlen(base);
                if (bl && base[bl - 1] == '/')
                    base[bl - 1] = '\0';
                if (asprintf(&url, "%s%s", base, path) >= 0 &&
                    (*connect_to = curl_slist_append(NULL, map)))
                    rc = 0;
                curl_free(base);
            }
        }
        curl_free(host);
        curl_free(port);
        free(map);
        curl_url_cleanup(u);
        if (rc < 0) {
            free(url);
            return ism_err(err, EINVAL, "cannot combine server %s with tls-server-name %s",
                           k->cfg->server, k->cfg->tls_server_name);
        }
        if (curl_easy_setopt(e, CURLOPT_CONNECT_TO, *connect_to) != CURLE_OK) {
            free(url);
            return ism_err(err, EIO, "kube client: libcurl refused CURLOPT_CONNECT_TO");
        }
    } else if (asprintf(&url, "%s%s", k->cfg->server, path) < 0) {
        return ism_err(err, ENOMEM, "out of memory");
    }
    CURLcode rc_url = curl_easy_setopt(e, CURLOPT_URL, url);
    free(url);
    if (rc_url != CURLE_OK)
        return ism_err(err, rc_url == CURLE_OUT_OF_MEMORY ? ENOMEM : EINVAL,
                       "kube client: libcurl refused the URL of %s", path);
    return 0;
}

/* A new transfer for method and path, registered with the client but not
 * yet added to the multi handle. */
static transfer_t *transfer_new(ism_kube_t *k, const char *method, const char *path,
                                const char *body, const char *content_type, const char *accept,
                                long timeout_ms, ism_error_t *err)
{
    transfer_t *t = calloc(1, sizeof(*t));
    char ct[128], ac[256];

    if (!t || !(t->easy = curl_easy_init())) {
        free(t);
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    t->k = k;
    CURL *e = t->easy;
    const char *bad = NULL;
    SETOPT(e, CURLOPT_PRIVATE, t, &bad);
    SETOPT(e, CURLOPT_NOSIGNAL, 1L, &bad);
    SETOPT(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS, &bad);
    SETOPT(e, CURLOPT_PIPEWAIT, 1L, &bad);
    SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L, &bad);
    SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L, &bad);
    SETOPT(e, CURLOPT_PROTOCOLS_STR, "https", &bad);
    SETOPT(e, CURLOPT_USERAGENT, k->user_agent, &bad);
    SETOPT(e, CURLOPT_WRITEFUNCTION, on_body, &bad);
    SETOPT(e, CURLOPT_WRITEDATA, t, &bad);
    SETOPT(e, CURLOPT_HEADERFUNCTION, on_header, &bad);
    SETOPT(e, CURLOPT_HEADERDATA, t, &bad);
    SETOPT(e, CURLOPT_ACCEPT_ENCODING, "", &bad);
    if (timeout_ms > 0)
        SETOPT(e, CURLOPT_TIMEOUT_MS, timeout_ms, &bad);
    if (strcmp(method, "GET") != 0)
        SETOPT(e, CURLOPT_CUSTOMREQUEST, method, &bad);
    if (body) {
        SETOPT(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body), &bad);
        SETOPT(e, CURLOPT_COPYPOSTFIELDS, body, &bad);
    }
    if (bad) {
        ism_err(err, EIO, "kube client: libcurl refused %s", bad);
        goto error;
    }
    snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : "application/json");
    snprintf(ac, sizeof(ac), "Accept: %s", accept ? accept : "application/json");
    if (!add_header(t, ac) || (body && !add_header(t, ct))) {
        ism_err(err, ENOMEM, "out of memory");
        goto error;
    }
    if (setup_tls(k, e, t, err) < 0 || setup_url(k, e, path, &t->connect_to, err) < 0)
        goto error;
    if (curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers) != CURLE_OK) {
        ism_err(err, EIO, "kube client: libcurl refused the headers");
        goto error;
    }
    t->next = k->transfers;
    k->transfers = t;
    return t;
error:
    transfer_free(t);
    return NULL;
}

/* Read curl's finished transfers: mark them done.  Streams are finished
 * by finish_streams() from ism_kube_run, never here. */
static void collect_done(ism_kube_t *k)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(k->multi, &left))) {
        transfer_t *t = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t) {
            long conns = 0, version = 0;
            t->done = true;
            t->result = m->data.result;
            curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &conns);
            curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &version);
            k->stats.connections += (uint64_t)(conns > 0 ? conns : 0);
            k->stats.http2 += version == CURL_HTTP_VERSION_2_0;
        }
    }
}

/* Let curl work for up to wait_ms (0: just what is ready). */
static int drive(ism_kube_t *k, struct curl_waitfd *extra, unsigned n_extra, int wait_ms,
                 ism_error_t *err)
{
    int running, numfds;
    long curl_ms = -1;
    CURLMcode mc;

    curl_multi_timeout(k->multi, &curl_ms);
    if (curl_ms >= 0 && curl_ms < wait_ms)
        wait_ms = (int)curl_ms;
    mc = curl_multi_poll(k->multi, extra, n_extra, wait_ms < 0 ? 0 : wait_ms, &numfds);
    if (mc == CURLM_OK)
        mc = curl_multi_perform(k->multi, &running);
    if (mc != CURLM_OK)
        return ism_err(err, EIO, "kube client: %s", curl_multi_strerror(mc));
    collect_done(k);
    return 0;
}

/* ------------------------------------------------------------------ streams */

ism_kube_stream_t *ism_kube_stream_start(ism_kube_t *k, const char *path, const char *accept,
                                         long timeout_ms, ism_kube_data_f on_data,
                                         ism_kube_done_f on_done, void *arg, ism_error_t *err)
{
    ism_kube_stream_t *s;
    transfer_t *t;

    if (!k || !path || !on_data || !on_done) {
        ism_err(err, EINVAL, "kube stream: bad arguments");
        return NULL;
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    if (!(t = transfer_new(k, "GET", path, NULL, NULL, accept, timeout_ms, err))) {
        free(s);
        return NULL;
    }
    s->t = t;
    s->on_data = on_data;
    s->on_done = on_done;
    s->arg = arg;
    t->stream = s;
    k->stats.requests++;
    if (curl_multi_add_handle(k->multi, t->easy) != CURLM_OK) {
        unlink_transfer(k, t);
        transfer_free(t);
        free(s);
        ism_err(err, EIO, "kube stream: cannot add the transfer");
        return NULL;
    }
    return s;
}

bool ism_kube_stream_open(const ism_kube_stream_t *s)
{
    return s && s->open;
}

void ism_kube_stream_cancel(ism_kube_t *k, ism_kube_stream_t *s)
{
    if (!k || !s)
        return;
    unlink_transfer(k, s->t);
    transfer_free(s->t);
    free(s);
}

/* Describe a transport failure. */
static void transport_status(transfer_t *t, ism_kube_status_t *st)
{
    st->reason = ISM_KUBE_TRANSPORT;
    st->http_code = 0;
    st->retry_after = 0;
    snprintf(st->message, sizeof(st->message), "%s", curl_easy_strerror(t->result));
}

/* Hand every finished stream its outcome, then free it. */
static void finish_streams(ism_kube_t *k)
{
    transfer_t **pp = &k->transfers;
    while (*pp) {
        transfer_t *t = *pp;
        if (!t->stream || !t->done) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        ism_kube_stream_t *s = t->stream;
        long code = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
        if (t->result != CURLE_OK && code == 0)
            transport_status(t, &s->st);
        else
            ism_kube_status_decode(code, s->head, s->head_len, &s->st);
        if (t->result != CURLE_OK && s->st.reason == ISM_KUBE_OK) {
            /* The stream broke after a good start: a transport failure. */
            transport_status(t, &s->st);
            s->st.http_code = code;
        }
        s->on_done(k, &s->st, s->st.message, s->arg);
        transfer_free(t);
        free(s);
    }
}

/* ------------------------------------------------------------------ calls */

static void call_free(ism_kube_call_t *c)
{
    if (!c)
        return;
    if (c->t) {
        unlink_transfer(c->k, c->t);
        transfer_free(c->t);
    }
    if (c->page_free)
        c->page_free(c->page_state);
    free(c->method);
    free(c->path);
    free(c->body);
    free(c->content_type);
    free(c->accept);
    json_decref(c->answer);
    free(c);
}

/* Take c off whichever list holds it (none for a collected sync call). */
static void unlink_call(ism_kube_t *k, ism_kube_call_t *c)
{
    ism_kube_call_t **pp;

    for (pp = &k->calls; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            c->next = NULL;
            return;
        }
    }
    for (pp = &k->done; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            if (k->done_tail == &c->next)
                k->done_tail = pp;
            c->next = NULL;
            return;
        }
    }
}

/* The call is over: keep its outcome; a call with a callback waits on the
 * done list for ism_kube_run, a sync call for its ism_kube_wait. */
static void complete(ism_kube_t *k, ism_kube_call_t *c, int rc, int errnum)
{
    unlink_call(k, c);
    c->state = CALL_DONE;
    c->rc = rc;
    c->errnum = rc < 0 ? (errnum ? errnum : EIO) : 0;
    ism_log_debug("%s %s: %s after %d %s", c->method, c->path,
                  rc < 0 ? ism_kube_reason_name(c->st.reason) : "done", c->tries,
                  c->tries == 1 ? "try" : "tries");
    if (c->done) {
        *k->done_tail = c;
        k->done_tail = &c->next;
    }
}

/* Failed for good with the status in c->st. */
static void fail(ism_kube_t *k, ism_kube_call_t *c)
{
    const ism_kube_status_t *st = &c->st;
    int errnum = ism_kube_reason_errno(st->reason);

    k->stats.failures++;
    ism_err(&c->err, errnum, "%s %s: %s%s%s (HTTP %ld)", c->method, c->path,
            ism_kube_reason_name(st->reason), st->message[0] ? ": " : "", st->message,
            st->http_code);
    complete(k, c, -1, errnum);
}

/* A lane's bucket: Events have their own, so a gang's Events never take
 * the tokens its commit needs (kube-scheduler too sends Events through a
 * client of their own). */
static struct bucket *bucket_of(ism_kube_t *k, ism_kube_lane_t lane)
{
    return &k->bucket[lane == ISM_KUBE_LANE_EVENTS];
}

/* The level below which a lane waits: an urgent call may borrow up to one
 * burst, which the calls after it pay back at the sustained rate. */
static double floor_of(const ism_kube_t *k, ism_kube_lane_t lane)
{
    return lane == ISM_KUBE_LANE_URGENT ? 1.0 - k->opts.burst : 1.0;
}

/* Refill the lane's bucket; true (a token taken) when one is there. */
static bool take_token(ism_kube_t *k, ism_kube_lane_t lane, int64_t now)
{
    struct bucket *b = bucket_of(k, lane);

    if (k->opts.qps <= 0)
        return true;
    b->tokens += (double)(now - b->at) * k->opts.qps / 1000.0;
    if (b->tokens > k->opts.burst)
        b->tokens = k->opts.burst;
    b->at = now;
    if (b->tokens < floor_of(k, lane))
        return false;
    b->tokens -= 1.0;
    return true;
}

/* When the lane's bucket has a token again (monotonic ms). */
static int64_t token_due(const ism_kube_t *k, ism_kube_lane_t lane)
{
    const struct bucket *b = &k->bucket[lane == ISM_KUBE_LANE_EVENTS];
    double want = floor_of(k, lane);

    if (k->opts.qps <= 0 || b->tokens >= want)
        return 0;
    return b->at + (int64_t)((want - b->tokens) * 1000.0 / k->opts.qps) + 1;
}

/* Start one try of c: ask the write guard, add a transfer. */
static void start_try(ism_kube_t *k, ism_kube_call_t *c, int64_t now)
{
    long timeout = c->timeout_ms;
    transfer_t *t;

    c->deadline = 0;
    if (c->write && k->guard && !c->unguarded) {
        int64_t left = k->guard(k->guard_arg);
        if (left <= 0) {
            c->st.reason = ISM_KUBE_NOT_LEADER;
            c->st.http_code = 0;
            snprintf(c->st.message, sizeof(c->st.message), "not the leader: write refused");
            ism_err(&c->err, EPERM, "%s %s: not the leader, write refused", c->method, c->path);
            complete(k, c, -1, EPERM);
            return;
        }
        c->deadline = now + left;
        if (left < timeout)
            timeout = (long)left;
    }
    c->tries++;
    c->st.attempts = c->tries;
    k->stats.requests++;
    k->stats.writes += c->write;
    k->stats.retries += c->tries > 1;
    t = transfer_new(k, c->method, c->path, c->body, c->content_type, c->accept,
                     timeout > 0 ? timeout : 1, &c->err);
    if (t && curl_multi_add_handle(k->multi, t->easy) != CURLM_OK) {
        unlink_transfer(k, t);
        transfer_free(t);
        t = NULL;
        ism_err(&c->err, EIO, "%s %s: cannot add the transfer", c->method, c->path);
    }
    if (!t) {
        c->st.reason = ISM_KUBE_TRANSPORT;
        k->stats.failures++;
        complete(k, c, -1, errno);
        return;
    }
    c->t = t;
    c->state = CALL_SENDING;
    ism_log_debug("%s %s: try %d (timeout %ld ms)", c->method, c->path, c->tries, timeout);
}

/* Whether a failed try is worth another. */
static bool retryable(bool write, const ism_kube_status_t *st, bool sent)
{
    switch (st->reason) {
    case ISM_KUBE_TRANSPORT:
        return !write || !sent;
    case ISM_KUBE_TOO_MANY_REQUESTS:
        return true;
    case ISM_KUBE_TIMEOUT:
        /* A write that timed out may still be applied. */
        return !write;
    case ISM_KUBE_SERVER_ERROR:
        return st->http_code != 501;
    default:
        return false;
    }
}

/* A 2xx answer: decode it, then finish the call or go on to its next page. */
static void answered(ism_kube_t *k, ism_kube_call_t *c, transfer_t *t)
{
    json_error_t je;
    json_t *j = NULL, *final = NULL;
    char *next = NULL;

    if (t->len > 0) {
        j = json_loadb(t->body, t->len, 0, &je);
        if (!json_is_object(j)) {
            json_decref(j);
            c->st.reason = ISM_KUBE_BAD_RESPONSE;
            snprintf(c->st.message, sizeof(c->st.message), "answer is not a JSON object: %s",
                     je.text);
            k->stats.failures++;
            ism_err(&c->err, EBADMSG, "%s %s: %s", c->method, c->path, c->st.message);
            complete(k, c, -1, EBADMSG);
            return;
        }
    }
    if (!c->page) {
        c->answer = j;
        complete(k, c, 0, 0);
        return;
    }
    if (c->page(c->page_state, j, &next, &final, &c->err) < 0) {
        int errnum = errno;
        json_decref(j);
        c->st.reason = ISM_KUBE_BAD_RESPONSE;
        k->stats.failures++;
        complete(k, c, -1, errnum);
        return;
    }
    json_decref(j);
    if (next) {
        free(c->path);
        c->path = next;
        c->tries = 0;
        c->state = CALL_QUEUED;
        c->not_before = 0;
        return;
    }
    c->answer = final;
    complete(k, c, 0, 0);
}

/* The transfer of c's try is over. */
static void finish_try(ism_kube_t *k, ism_kube_call_t *c, int64_t now)
{
    transfer_t *t = c->t;
    ism_kube_status_t *st = &c->st;
    int attempts = st->attempts;
    long code = 0;
    bool sent = true;

    c->t = NULL;
    unlink_transfer(k, t);
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    memset(st, 0, sizeof(*st));
    st->attempts = attempts;
    if (t->result != CURLE_OK && !t->too_big) {
        /* Past connecting, a write may have reached the server. */
        sent = t->result != CURLE_COULDNT_CONNECT && t->result != CURLE_COULDNT_RESOLVE_HOST &&
               t->result != CURLE_SSL_CONNECT_ERROR && t->result != CURLE_PEER_FAILED_VERIFICATION;
        transport_status(t, st);
    } else if (c->deadline && now > c->deadline) {
        /* Done, but after this process stopped being allowed to write:
         * whatever the answer says, nobody may count on it. */
        st->reason = ISM_KUBE_TIMEOUT;
        st->http_code = code;
        snprintf(st->message, sizeof(st->message),
                 "the write guard's deadline passed during the request; it may or may not "
                 "have been applied");
    } else if (t->too_big) {
        st->reason = ISM_KUBE_BAD_RESPONSE;
        st->http_code = code;
        snprintf(st->message, sizeof(st->message), "answer larger than %u MiB", MAX_BODY >> 20);
    } else {
        ism_kube_status_decode(code, t->body, t->len, st);
        if (t->retry_after > st->retry_after)
            st->retry_after = (int)t->retry_after;
    }
    if (code == 0 || code >= 500) {
        if (!k->failing_since)
            k->failing_since = now;
    } else {
        k->failing_since = 0; /* the server answers */
    }
    if (st->reason == ISM_KUBE_OK) {
        answered(k, c, t);
    } else if (c->tries > c->max_retries || !retryable(c->write, st, sent)) {
        fail(k, c);
    } else {
        ism_backoff_t b = { k->opts.backoff_base_ms, k->opts.backoff_cap_ms };
        int64_t ms = ism_backoff_delay(&b, c->tries);
        if (st->retry_after * 1000LL > ms)
            ms = st->retry_after * 1000LL;
        ism_log_debug("%s %s: %s, retry %d in %lld ms", c->method, c->path,
                      ism_kube_reason_name(st->reason), c->tries, (long long)ms);
        c->state = CALL_QUEUED;
        c->not_before = now + ms;
    }
    transfer_free(t);
}

/* Move every call on: finished tries are decoded (retried, continued or
 * completed), and queued calls whose time came are started, urgent ones
 * first, then in order, as long as their lane has tokens.  Never runs a
 * caller's callback. */
static void advance(ism_kube_t *k)
{
    int64_t now = ism_kube_now_ms();
    bool blocked[ISM_KUBE_LANES] = { false };
    ism_kube_call_t *c, *next;

    collect_done(k);
    for (c = k->calls; c; c = next) {
        next = c->next;
        if (c->state == CALL_SENDING && c->t->done)
            finish_try(k, c, now);
    }
    for (int urgent = 1; urgent >= 0; urgent--)
        for (c = k->calls; c; c = next) {
            next = c->next;
            if (c->state != CALL_QUEUED || c->not_before > now ||
                (c->lane == ISM_KUBE_LANE_URGENT) != urgent)
                continue;
            if (c->unguarded) /* the elector's: see ism_kube_call_tune */
                start_try(k, c, now);
            else if (!blocked[c->lane] && take_token(k, c->lane, now))
                start_try(k, c, now);
            else
                blocked[c->lane] = true;
        }
}

/* ms until a queued call may start (-1: none queued; 0: now). */
static int64_t calls_due(const ism_kube_t *k)
{
    int64_t now = ism_kube_now_ms(), best = -1;

    for (const ism_kube_call_t *c = k->calls; c; c = c->next) {
        if (c->state != CALL_QUEUED)
            continue;
        int64_t token = c->unguarded ? 0 : token_due(k, c->lane);
        int64_t due = c->not_before > token ? c->not_before : token;
        int64_t in = due > now ? due - now : 0;
        if (best < 0 || in < best)
            best = in;
    }
    return best;
}

/* Queue a call whose body is text (taken: freed on failure too). */
static ism_kube_call_t *call_queue(ism_kube_t *k, const char *method, const char *path,
                                   char *text, const char *content_type, ism_kube_call_f done,
                                   void *arg, ism_error_t *err)
{
    ism_kube_call_t *c, **pp;

    if (!k || !method || !path || path[0] != '/') {
        free(text);
        ism_err(err, EINVAL, "kube request: bad arguments");
        return NULL;
    }
    if (!(c = calloc(1, sizeof(*c))) || !(c->method = strdup(method)) ||
        !(c->path = strdup(path)) ||
        (content_type && !(c->content_type = strdup(content_type)))) {
        free(text);
        call_free(c);
        ism_err(err, ENOMEM, "%s %s: out of memory", method, path);
        return NULL;
    }
    c->body = text;
    c->k = k;
    c->write = strcmp(method, "GET") != 0;
    c->done = done;
    c->arg = arg;
    c->max_retries = k->opts.max_retries;
    c->timeout_ms = k->opts.timeout_ms;
    c->state = CALL_QUEUED;
    for (pp = &k->calls; *pp; pp = &(*pp)->next)
        ;
    *pp = c;
    k->n_calls++;
    return c;
}

ism_kube_call_t *ism_kube_request_async(ism_kube_t *k, const char *method, const char *path,
                                        const json_t *body, const char *content_type,
                                        ism_kube_call_f done, void *arg, ism_error_t *err)
{
    char *text = NULL;

    if (body && !(text = json_dumps(body, JSON_COMPACT))) {
        ism_err(err, ENOMEM, "%s %s: cannot encode the body", method ? method : "?",
                path ? path : "?");
        return NULL;
    }
    return call_queue(k, method, path, text, content_type, done, arg, err);
}

ism_kube_call_t *ism_kube_request_text_async(ism_kube_t *k, const char *method, const char *path,
                                             const char *text, const char *content_type,
                                             ism_kube_call_f done, void *arg, ism_error_t *err)
{
    char *copy = NULL;

    if (text && !(copy = strdup(text))) {
        ism_err(err, ENOMEM, "%s %s: out of memory", method ? method : "?", path ? path : "?");
        return NULL;
    }
    return call_queue(k, method, path, copy, content_type, done, arg, err);
}

int ism_kube_call_accept(ism_kube_call_t *c, const char *accept)
{
    char *copy = accept ? strdup(accept) : NULL;

    if (!c || (accept && !copy)) {
        free(copy);
        errno = c ? ENOMEM : EINVAL;
        return -1;
    }
    free(c->accept);
    c->accept = copy;
    return 0;
}

void ism_kube_call_tune(ism_kube_call_t *c, int max_retries, long timeout_ms, bool unguarded)
{
    if (!c)
        return;
    if (max_retries >= 0)
        c->max_retries = max_retries;
    if (timeout_ms > 0)
        c->timeout_ms = timeout_ms;
    c->unguarded = unguarded;
}

void ism_kube_call_lane(ism_kube_call_t *c, ism_kube_lane_t lane)
{
    if (c && (int)lane >= 0 && lane < ISM_KUBE_LANES)
        c->lane = lane;
}

void ism_kube_call_pages(ism_kube_call_t *c, ism_kube_page_f page, void (*free_fn)(void *),
                         void *state)
{
    if (!c)
        return;
    c->page = page;
    c->page_free = free_fn;
    c->page_state = state;
}

void ism_kube_cancel(ism_kube_t *k, ism_kube_call_t *c)
{
    if (!k || !c)
        return;
    unlink_call(k, c);
    k->n_calls--;
    call_free(c);
}

int64_t ism_kube_failing_ms(const ism_kube_t *k)
{
    if (!k || !k->failing_since)
        return 0;
    int64_t ms = ism_kube_now_ms() - k->failing_since;
    return ms > 0 ? ms : 1;
}

size_t ism_kube_calls(const ism_kube_t *k)
{
    return k ? k->n_calls : 0;
}

/* Hand the calls that were done when this began to their callbacks (a
 * callback may cancel one still waiting: it leaves the list). */
static void run_done(ism_kube_t *k)
{
    size_t n = 0;

    for (ism_kube_call_t *c = k->done; c; c = c->next)
        n++;
    while (n-- > 0 && k->done) {
        ism_kube_call_t *c = k->done;
        k->done = c->next;
        if (!k->done)
            k->done_tail = &k->done;
        c->next = NULL;
        k->n_calls--;
        errno = c->errnum;
        c->done(k, c->arg, c->rc, &c->st, c->rc == 0 ? c->answer : NULL, &c->err);
        call_free(c);
    }
}

int ism_kube_wait(ism_kube_t *k, ism_kube_call_t *c, json_t **out, ism_kube_status_t *st,
                  ism_error_t *err)
{
    int rc, errnum;

    if (out)
        *out = NULL;
    if (!c)
        return -1;
    if (!k || c->done) {
        ism_kube_cancel(k, c);
        return ism_err(err, EINVAL, "ism_kube_wait: not a call to wait for");
    }
    for (;;) {
        advance(k);
        if (c->state == CALL_DONE)
            break;
        int64_t due = calls_due(k);
        int wait = due >= 0 && due < 1000 ? (int)due : 1000;
        if (drive(k, NULL, 0, wait, err) < 0) {
            ism_kube_cancel(k, c);
            return -1;
        }
    }
    rc = c->rc;
    errnum = c->errnum;
    if (st)
        *st = c->st;
    if (rc == 0 && out)
        *out = json_incref(c->answer);
    if (rc < 0)
        ism_err(err, errnum, "%s", c->err.text);
    k->n_calls--;
    call_free(c);
    if (rc < 0)
        errno = errnum;
    return rc;
}

int ism_kube_request(ism_kube_t *k, const char *method, const char *path, const json_t *body,
                     const char *content_type, json_t **out, ism_kube_status_t *st,
                     ism_error_t *err)
{
    if (st)
        memset(st, 0, sizeof(*st));
    return ism_kube_wait(k, ism_kube_request_async(k, method, path, body, content_type, NULL,
                                                   NULL, err),
                         out, st, err);
}

/* ------------------------------------------------------------------ the loop */

int ism_kube_run(ism_kube_t *k, struct pollfd *extra, unsigned n_extra, int timeout_ms,
                 ism_error_t *err)
{
    struct curl_waitfd w[16];
    int wait_ms = timeout_ms < 0 ? 3600 * 1000 : timeout_ms;
    int64_t due;

    if (!k || n_extra > 16 || (n_extra && !extra))
        return ism_err(err, EINVAL, "ism_kube_run: bad arguments");
    advance(k); /* start what was queued since the last turn */
    if (k->timers) {
        int64_t until = k->timers->due - ism_kube_now_ms();
        if (until < wait_ms)
            wait_ms = until < 0 ? 0 : (int)until;
    }
    if ((due = calls_due(k)) >= 0 && due < wait_ms)
        wait_ms = (int)due;
    if (k->done)
        wait_ms = 0;
    for (unsigned i = 0; i < n_extra; i++) {
        w[i].fd = extra[i].fd;
        w[i].events = (short)(((extra[i].events & POLLIN) ? CURL_WAIT_POLLIN : 0) |
                              ((extra[i].events & POLLPRI) ? CURL_WAIT_POLLPRI : 0) |
                              ((extra[i].events & POLLOUT) ? CURL_WAIT_POLLOUT : 0));
        w[i].revents = 0;
    }
    if (drive(k, w, n_extra, wait_ms, err) < 0)
        return -1;
    for (unsigned i = 0; i < n_extra; i++)
        extra[i].revents = (short)(((w[i].revents & CURL_WAIT_POLLIN) ? POLLIN : 0) |
                                   ((w[i].revents & CURL_WAIT_POLLPRI) ? POLLPRI : 0) |
                                   ((w[i].revents & CURL_WAIT_POLLOUT) ? POLLOUT : 0));
    advance(k);
    for (int i = 0; i < MAX_DISPATCHERS; i++)
        if (k->dispatch[i].fn)
            k->dispatch[i].fn(k, k->dispatch[i].arg);
    finish_streams(k);
    run_done(k);
    run_timers(k);
    advance(k); /* send what the callbacks and timers queued */
    return 0;
}
