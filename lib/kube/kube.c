/* kube.c - the client: connections, the event loop, timers, the rate
 * limiter and synchronous requests with retries.  See kube.h.
 *
 * Every transfer, request or watch stream, is an easy handle on the one
 * multi handle.  A synchronous request drives the multi handle until its
 * own transfer is done; streams that make progress meanwhile only buffer,
 * and what they buffered is dispatched from ism_kube_run.
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
#include "lib/util/log.h"
#include "lib/util/random.h"

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
};

struct ism_kube_timer {
    int64_t due;
    ism_kube_timer_f fn;
    void *arg;
    struct ism_kube_timer *next;
};

struct ism_kube {
    ism_kube_config_t *cfg;    /* our own copy */
    ism_kube_options_t opts;
    char *user_agent;
    CURLM *multi;
    transfer_t *transfers;
    ism_kube_timer_t *timers;  /* sorted by due time */
    struct {
        ism_kube_dispatch_f fn;
        void *arg;
    } dispatch[MAX_DISPATCHERS];
    /* rate limiter: a token bucket */
    double tokens;
    int64_t tokens_at;
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

int64_t ism_kube_jitter(int64_t n)
{
    return ism_random_below(n);
}

/* ------------------------------------------------------------------ timers */

ism_kube_timer_t *ism_kube_timer_add(ism_kube_t *k, int64_t delay_ms, ism_kube_timer_f fn,
                                     void *arg)
{
    ism_kube_timer_t *t, **pp;

    if (!k || !fn) {
        errno = EINVAL;
        return NULL;
    }
    if (!(t = calloc(1, sizeof(*t))))
        return NULL;
    t->due = ism_kube_now_ms() + (delay_ms > 0 ? delay_ms : 0);
    t->fn = fn;
    t->arg = arg;
    for (pp = &k->timers; *pp && (*pp)->due <= t->due; pp = &(*pp)->next)
        ;
    t->next = *pp;
    *pp = t;
    return t;
}

void ism_kube_timer_cancel(ism_kube_t *k, ism_kube_timer_t *t)
{
    if (!k || !t)
        return;
    for (ism_kube_timer_t **pp = &k->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            free(t);
            return;
        }
    }
}

/* Run the timers that are due now (not those they add). */
static void run_timers(ism_kube_t *k)
{
    int64_t now = ism_kube_now_ms();
    ism_kube_timer_t *due = NULL, **tail = &due;

    while (k->timers && k->timers->due <= now) {
        ism_kube_timer_t *t = k->timers;
        k->timers = t->next;
        t->next = NULL;
        *tail = t;
        tail = &t->next;
    }
    while (due) {
        ism_kube_timer_t *t = due;
        due = t->next;
        t->fn(k, t->arg);
        free(t);
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
    curl_multi_setopt(k->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    k->tokens = opts->burst;
    k->tokens_at = ism_kube_now_ms();
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
    while (k->timers) {
        ism_kube_timer_t *t = k->timers;
        k->timers = t->next;
        free(t);
    }
    if (k->multi)
        curl_multi_cleanup(k->multi);
    ism_kube_config_destroy(k->cfg);
    free(k->user_agent);
    if (k->token)
        memset(k->token, 0, strlen(k->token));
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

/* Re-read the token file when it changed (a projected service-account
 * token is rotated by kubelet by replacing the file). */
static int refresh_token(ism_kube_t *k, ism_error_t *err)
{
    struct stat sb;
    FILE *f;
    char buf[16384];
    size_t n;

    if (!k->cfg->token_file)
        return 0;
    if (stat(k->cfg->token_file, &sb) < 0)
        return ism_err(err, errno, "token file %s: %s", k->cfg->token_file, strerror(errno));
    if (k->token && sb.st_ino == k->token_stat.st_ino && sb.st_size == k->token_stat.st_size &&
        sb.st_mtim.tv_sec == k->token_stat.st_mtim.tv_sec &&
        sb.st_mtim.tv_nsec == k->token_stat.st_mtim.tv_nsec)
        return 0;
    if (!(f = fopen(k->cfg->token_file, "r")))
        return ism_err(err, errno, "token file %s: %s", k->cfg->token_file, strerror(errno));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    if (n == 0 || strpbrk(buf, "\r\n"))
        return ism_err(err, EINVAL, "token file %s: empty or not one line", k->cfg->token_file);
    free(k->token);
    if (!(k->token = strdup(buf)))
        return ism_err(err, ENOMEM, "out of memory");
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

/* TLS, credentials and connection options shared by every transfer. */
static int setup_tls(ism_kube_t *k, CURL *e, transfer_t *t, ism_error_t *err)
{
    const ism_kube_config_t *c = k->cfg;

    if (c->insecure) {
        if (!k->warned_insecure)
            ism_log_warn("kube client: TLS verification is off for %s "
                         "(insecure-skip-tls-verify in the kubeconfig)", c->server);
        k->warned_insecure = true;
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (c->ca_data) {
        struct curl_blob blob = { c->ca_data, c->ca_data_len, CURL_BLOB_COPY };
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    } else if (c->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    }
    if (c->cert_data) {
        struct curl_blob blob = { c->cert_data, c->cert_data_len, CURL_BLOB_COPY };
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
    } else if (c->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
    }
    if (c->key_data) {
        struct curl_blob blob = { c->key_data, c->key_data_len, CURL_BLOB_COPY };
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
    } else if (c->key_file) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
    }
    if (c->proxy_url)
        curl_easy_setopt(e, CURLOPT_PROXY, c->proxy_url);
    if (refresh_token(k, err) < 0)
        return -1;
    const char *token = c->token ? c->token : k->token;
    if (token) {
        char *line = NULL;
        if (asprintf(&line, "Authorization: Bearer %s", token) < 0)
            return ism_err(err, ENOMEM, "out of memory");
        bool ok = add_header(t, line);
        memset(line, 0, strlen(line));
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
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, *connect_to);
    } else if (asprintf(&url, "%s%s", k->cfg->server, path) < 0) {
        return ism_err(err, ENOMEM, "out of memory");
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    free(url);
    return 0;
}

/* A new transfer for method and path, registered with the client but not
 * yet added to the multi handle. */
static transfer_t *transfer_new(ism_kube_t *k, const char *method, const char *path,
                                const char *body, const char *content_type, long timeout_ms,
                                ism_error_t *err)
{
    transfer_t *t = calloc(1, sizeof(*t));
    char ct[128];

    if (!t || !(t->easy = curl_easy_init())) {
        free(t);
        ism_err(err, ENOMEM, "out of memory");
        return NULL;
    }
    t->k = k;
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, k->user_agent);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    }
    snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : "application/json");
    if (!add_header(t, "Accept: application/json") || (body && !add_header(t, ct))) {
        ism_err(err, ENOMEM, "out of memory");
        goto error;
    }
    if (setup_tls(k, e, t, err) < 0 || setup_url(k, e, path, &t->connect_to, err) < 0)
        goto error;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
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

ism_kube_stream_t *ism_kube_stream_start(ism_kube_t *k, const char *path, long timeout_ms,
                                         ism_kube_data_f on_data, ism_kube_done_f on_done,
                                         void *arg, ism_error_t *err)
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
    if (!(t = transfer_new(k, "GET", path, NULL, NULL, timeout_ms, err))) {
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

/* ------------------------------------------------------------------ the loop */

int ism_kube_run(ism_kube_t *k, struct pollfd *extra, unsigned n_extra, int timeout_ms,
                 ism_error_t *err)
{
    struct curl_waitfd w[16];
    int wait_ms = timeout_ms < 0 ? 3600 * 1000 : timeout_ms;

    if (!k || n_extra > 16 || (n_extra && !extra))
        return ism_err(err, EINVAL, "ism_kube_run: bad arguments");
    if (k->timers) {
        int64_t until = k->timers->due - ism_kube_now_ms();
        if (until < wait_ms)
            wait_ms = until < 0 ? 0 : (int)until;
    }
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
    for (int i = 0; i < MAX_DISPATCHERS; i++)
        if (k->dispatch[i].fn)
            k->dispatch[i].fn(k, k->dispatch[i].arg);
    finish_streams(k);
    run_timers(k);
    return 0;
}

/* ------------------------------------------------------------------ requests */

/* Wait while driving the loop (streams keep buffering) for ms. */
static int wait_driving(ism_kube_t *k, int64_t ms, ism_error_t *err)
{
    int64_t until = ism_kube_now_ms() + ms;
    for (int64_t now = ism_kube_now_ms(); now < until; now = ism_kube_now_ms())
        if (drive(k, NULL, 0, (int)(until - now), err) < 0)
            return -1;
    return 0;
}

/* Take one token from the bucket, waiting for it if need be. */
static int rate_limit(ism_kube_t *k, ism_error_t *err)
{
    if (k->opts.qps <= 0)
        return 0;
    for (;;) {
        int64_t now = ism_kube_now_ms();
        k->tokens += (double)(now - k->tokens_at) * k->opts.qps / 1000.0;
        if (k->tokens > k->opts.burst)
            k->tokens = k->opts.burst;
        k->tokens_at = now;
        if (k->tokens >= 1.0) {
            k->tokens -= 1.0;
            return 0;
        }
        int64_t ms = (int64_t)((1.0 - k->tokens) * 1000.0 / k->opts.qps) + 1;
        if (wait_driving(k, ms, err) < 0)
            return -1;
    }
}

/* One try: send, wait for the answer, decode.  Returns the transfer (for
 * its body), or NULL after filling st for a transport failure. */
static transfer_t *attempt(ism_kube_t *k, const char *method, const char *path,
                           const char *body, const char *content_type, int64_t deadline,
                           ism_kube_status_t *st, bool *sent, ism_error_t *err)
{
    int64_t timeout = k->opts.timeout_ms;
    if (deadline && deadline - ism_kube_now_ms() < timeout)
        timeout = deadline - ism_kube_now_ms();
    transfer_t *t = transfer_new(k, method, path, body, content_type, timeout > 0 ? timeout : 1,
                                 err);
    long code = 0;

    *sent = false;
    if (!t)
        return NULL;
    if (curl_multi_add_handle(k->multi, t->easy) != CURLM_OK) {
        unlink_transfer(k, t);
        transfer_free(t);
        ism_err(err, EIO, "kube client: cannot add the transfer");
        return NULL;
    }
    while (!t->done)
        if (drive(k, NULL, 0, 1000, err) < 0)
            break;
    unlink_transfer(k, t);
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    if (!t->done || (t->result != CURLE_OK && !t->too_big)) {
        /* Past connecting, a write may have reached the server. */
        *sent = t->result != CURLE_COULDNT_CONNECT && t->result != CURLE_COULDNT_RESOLVE_HOST &&
                t->result != CURLE_SSL_CONNECT_ERROR && t->result != CURLE_PEER_FAILED_VERIFICATION;
        transport_status(t, st);
        transfer_free(t);
        return NULL;
    }
    *sent = true;
    if (deadline && ism_kube_now_ms() > deadline) {
        /* Done, but after this process stopped being allowed to write:
         * whatever the answer says, nobody may count on it. */
        st->reason = ISM_KUBE_TIMEOUT;
        st->http_code = code;
        snprintf(st->message, sizeof(st->message),
                 "the write guard's deadline passed during the request; it may or may not "
                 "have been applied");
        transfer_free(t);
        return NULL;
    }
    if (t->too_big) {
        st->reason = ISM_KUBE_BAD_RESPONSE;
        st->http_code = code;
        snprintf(st->message, sizeof(st->message), "answer larger than %u MiB", MAX_BODY >> 20);
        transfer_free(t);
        return NULL;
    }
    ism_kube_status_decode(code, t->body, t->len, st);
    if (t->retry_after > st->retry_after)
        st->retry_after = (int)t->retry_after;
    return t;
}

/* Whether a failed try is worth another. */
static bool retryable(const char *method, const ism_kube_status_t *st, bool sent)
{
    bool write = strcmp(method, "GET") != 0;
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

/* Decode a 2xx body into *out. */
static int decode_body(transfer_t *t, json_t **out, ism_kube_status_t *st, ism_error_t *err)
{
    json_error_t je;
    json_t *j;

    if (!out)
        return 0;
    j = json_loadb(t->body ? t->body : "", t->len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        st->reason = ISM_KUBE_BAD_RESPONSE;
        snprintf(st->message, sizeof(st->message), "answer is not a JSON object: %s", je.text);
        return ism_err(err, EBADMSG, "%s", st->message);
    }
    *out = j;
    return 0;
}

int ism_kube_request(ism_kube_t *k, const char *method, const char *path, const json_t *body,
                     const char *content_type, json_t **out, ism_kube_status_t *st,
                     ism_error_t *err)
{
    ism_kube_status_t local;
    char *text = NULL;
    int rc = -1;

    if (!st)
        st = &local;
    memset(st, 0, sizeof(*st));
    if (out)
        *out = NULL;
    if (!k || !method || !path || path[0] != '/')
        return ism_err(err, EINVAL, "kube request: bad arguments");
    if (body && !(text = json_dumps(body, JSON_COMPACT)))
        return ism_err(err, ENOMEM, "%s %s: cannot encode the body", method, path);
    for (int try = 0;; try++) {
        bool sent;
        int64_t deadline = 0;
        if (rate_limit(k, err) < 0)
            break;
        if (strcmp(method, "GET") != 0 && k->guard) {
            int64_t left = k->guard(k->guard_arg);
            if (left <= 0) {
                st->reason = ISM_KUBE_NOT_LEADER;
                snprintf(st->message, sizeof(st->message), "not the leader: write refused");
                ism_err(err, EPERM, "%s %s: not the leader, write refused", method, path);
                break;
            }
            deadline = ism_kube_now_ms() + left;
        }
        st->attempts = try + 1;
        k->stats.requests++;
        k->stats.writes += strcmp(method, "GET") != 0;
        k->stats.retries += try > 0;
        transfer_t *t = attempt(k, method, path, text, content_type, deadline, st, &sent, err);
        if (t && st->reason == ISM_KUBE_OK) {
            rc = decode_body(t, out, st, err);
            transfer_free(t);
            break;
        }
        transfer_free(t);
        if (try >= k->opts.max_retries || !retryable(method, st, sent)) {
            k->stats.failures++;
            ism_err(err, ism_kube_reason_errno(st->reason), "%s %s: %s%s%s (HTTP %ld)",
                    method, path, ism_kube_reason_name(st->reason), st->message[0] ? ": " : "",
                    st->message, st->http_code);
            break;
        }
        int64_t cap = (int64_t)k->opts.backoff_base_ms << (try < 20 ? try : 20);
        if (cap > k->opts.backoff_cap_ms)
            cap = k->opts.backoff_cap_ms;
        int64_t ms = ism_kube_jitter(cap + 1);
        if (st->retry_after * 1000LL > ms)
            ms = st->retry_after * 1000LL;
        ism_log_debug("%s %s: %s, retry %d in %lld ms", method, path,
                      ism_kube_reason_name(st->reason), try + 1, (long long)ms);
        if (wait_driving(k, ms, err) < 0)
            break;
    }
    free(text);
    return rc;
}
