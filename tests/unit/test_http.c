/* Unit tests: bridge/metrics.c (Prometheus text) and bridge/http.c (the
 * health and metrics server), the server driven by real HTTP requests
 * from libcurl on a second thread while this thread runs the poll loop. */
#include <config.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bridge/http.h"
#include "bridge/metrics.h"
#include "unit.h"

/* --- metrics writer ------------------------------------------------------ */

struct sample {
    const char *name;
    const char *type;
    const char *help;
    const char *labels;
    double value;
};

#define MAX_SAMPLES 4
#define HDR(n, t, h) "# HELP " n " " h "\n# TYPE " n " " t "\n"

static const struct {
    struct sample in[MAX_SAMPLES]; /* up to the first with a NULL name */
    const char *out;
} texts[] = {
    { { { "isthmus_leader", "gauge", "1 on the leader.", NULL, 1 } },
      HDR("isthmus_leader", "gauge", "1 on the leader.") "isthmus_leader 1\n" },
    /* samples of one metric: HELP and TYPE once */
    { { { "req_total", "counter", "Requests.", "verb=\"GET\"", 12 },
        { "req_total", "counter", "Requests.", "verb=\"PUT\",code=\"409\"", 3 } },
      HDR("req_total", "counter", "Requests.") "req_total{verb=\"GET\"} 12\n"
                                               "req_total{verb=\"PUT\",code=\"409\"} 3\n" },
    { { { "a", "gauge", "A.", NULL, 1 }, { "b", "counter", "B.", "", 2 } },
      HDR("a", "gauge", "A.") "a 1\n" HDR("b", "counter", "B.") "b 2\n" },
    /* integers exactly: counters are uint64 in the daemon */
    { { { "n", "counter", "N.", "k=\"53\"", 9007199254740992.0 },
        { "n", "counter", "N.", "k=\"32\"", 4294967296.0 },
        { "n", "counter", "N.", "k=\"15\"", 1e15 },
        { "n", "counter", "N.", "k=\"62\"", 4611686018427387904.0 } },
      HDR("n", "counter", "N.") "n{k=\"53\"} 9007199254740992\n"
                                "n{k=\"32\"} 4294967296\n"
                                "n{k=\"15\"} 1000000000000000\n"
                                "n{k=\"62\"} 4611686018427387904\n" },
    { { { "g", "gauge", "G.", "x=\"0\"", 0 },
        { "g", "gauge", "G.", "x=\"-0\"", -0.0 },
        { "g", "gauge", "G.", "x=\"-7\"", -7 },
        { "g", "gauge", "G.", "x=\"2^64\"", 18446744073709551616.0 } },
      HDR("g", "gauge", "G.") "g{x=\"0\"} 0\n"
                              "g{x=\"-0\"} 0\n"
                              "g{x=\"-7\"} -7\n"
                              "g{x=\"2^64\"} 1.8446744073709552e+19\n" },
    /* fractions: shortest text that reads back the same */
    { { { "f", "gauge", "F.", "x=\"a\"", 0.5 },
        { "f", "gauge", "F.", "x=\"b\"", 0.1 },
        { "f", "gauge", "F.", "x=\"c\"", 1.0 / 3 },
        { "f", "gauge", "F.", "x=\"d\"", -2.25e-7 } },
      HDR("f", "gauge", "F.") "f{x=\"a\"} 0.5\n"
                              "f{x=\"b\"} 0.1\n"
                              "f{x=\"c\"} 0.3333333333333333\n"
                              "f{x=\"d\"} -2.25e-07\n" },
    { { { "s", "gauge", "S.", "x=\"nan\"", NAN },
        { "s", "gauge", "S.", "x=\"inf\"", INFINITY },
        { "s", "gauge", "S.", "x=\"-inf\"", -INFINITY } },
      HDR("s", "gauge", "S.") "s{x=\"nan\"} NaN\n"
                              "s{x=\"inf\"} +Inf\n"
                              "s{x=\"-inf\"} -Inf\n" },
    /* HELP escapes backslash and newline (not quotes) */
    { { { "h", "gauge", "a\\b\nc \"q\"", NULL, 1 } },
      "# HELP h a\\\\b\\nc \"q\"\n# TYPE h gauge\nh 1\n" },
    /* no help, no HELP line; the help of later samples is ignored */
    { { { "x:y_z", "counter", NULL, NULL, 1 }, { "x:y_z", "counter", "late", NULL, 2 },
        { "_u", "gauge", "", NULL, 3 } },
      "# TYPE x:y_z counter\nx:y_z 1\nx:y_z 2\n# TYPE _u gauge\n_u 3\n" },
};

START_TEST(metrics_text)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_metrics_t *m = ism_metrics_create(&err);

    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(ism_metrics_text(m), "");
    for (int i = 0; i < MAX_SAMPLES && texts[_i].in[i].name; i++) {
        const struct sample *s = &texts[_i].in[i];
        ck_assert_int_eq(ism_metric(m, s->name, s->type, s->help, s->labels, s->value), 0);
    }
    ck_assert_str_eq(ism_metrics_text(m), texts[_i].out);
    ck_assert_uint_eq(ism_metrics_len(m), strlen(texts[_i].out));
    ism_metrics_destroy(m);
}
END_TEST

/* Calls refused after "a" (gauge) then "b" (counter) were written. */
static const struct sample refused[] = {
    { NULL, "gauge", "x", NULL, 1 },
    { "", "gauge", "x", NULL, 1 },
    { "1a", "gauge", "x", NULL, 1 },
    { "a-b", "gauge", "x", NULL, 1 },
    { "a b", "gauge", "x", NULL, 1 },
    { "c", NULL, "x", NULL, 1 },
    { "c", "histogram", "x", NULL, 1 },
    { "c", "Gauge", "x", NULL, 1 },
    { "b", "gauge", "x", NULL, 1 }, /* b is a counter */
    { "a", "gauge", "x", NULL, 1 }, /* a's block is closed */
};

START_TEST(metrics_refused)
{
    ism_metrics_t *m = ism_metrics_create(NULL);
    const struct sample *s = &refused[_i];
    char *before;

    ck_assert_int_eq(ism_metric(m, "a", "gauge", "A.", NULL, 1), 0);
    ck_assert_int_eq(ism_metric(m, "b", "counter", "B.", NULL, 2), 0);
    before = strdup(ism_metrics_text(m));
    errno = 0;
    ck_assert_int_eq(ism_metric(m, s->name, s->type, s->help, s->labels, s->value), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(ism_metrics_text(m), before);
    /* and the writer carries on */
    ck_assert_int_eq(ism_metric(m, "b", "counter", "B.", "k=\"v\"", 3), 0);
    free(before);
    ism_metrics_destroy(m);
}
END_TEST

START_TEST(metrics_histogram)
{
    ism_metrics_t *m = ism_metrics_create(NULL);
    const double bounds[] = { 0.1, 1 };
    const uint64_t counts[] = { 2, 3 };

    ck_assert_int_eq(ism_metric(m, "a", "gauge", NULL, NULL, 1), 0);
    ck_assert_int_eq(ism_metric_histogram(m, "h_seconds", "H.", bounds, counts, 2, 1.5, 4), 0);
    ck_assert_str_eq(ism_metrics_text(m), "# TYPE a gauge\na 1\n"
                                          "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
                                          "h_seconds_bucket{le=\"0.1\"} 2\n"
                                          "h_seconds_bucket{le=\"1\"} 3\n"
                                          "h_seconds_bucket{le=\"+Inf\"} 4\n"
                                          "h_seconds_sum 1.5\nh_seconds_count 4\n");
    /* a name already written, a bad name, missing buckets */
    ck_assert_int_eq(ism_metric_histogram(m, "a", NULL, bounds, counts, 2, 0, 0), -1);
    ck_assert_int_eq(ism_metric_histogram(m, "b c", NULL, bounds, counts, 2, 0, 0), -1);
    ck_assert_int_eq(ism_metric_histogram(m, "d", NULL, NULL, counts, 2, 0, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ism_metrics_destroy(m);
}
END_TEST

START_TEST(metrics_reset_and_growth)
{
    ism_metrics_t *m = ism_metrics_create(NULL);
    char labels[32];

    errno = 0;
    ck_assert_int_eq(ism_metric(NULL, "a", "gauge", NULL, NULL, 1), -1);
    ck_assert_int_eq(errno, EINVAL);
    for (int i = 0; i < 5000; i++) {
        snprintf(labels, sizeof(labels), "i=\"%d\"", i);
        ck_assert_int_eq(ism_metric(m, "many", "counter", "Many.", labels, i), 0);
    }
    ck_assert_ptr_nonnull(strstr(ism_metrics_text(m), "\nmany{i=\"4999\"} 4999\n"));
    ck_assert_uint_eq(strlen(ism_metrics_text(m)), ism_metrics_len(m));
    ism_metrics_reset(m);
    ck_assert_str_eq(ism_metrics_text(m), "");
    ck_assert_uint_eq(ism_metrics_len(m), 0);
    /* a new scrape may use every name again */
    ck_assert_int_eq(ism_metric(m, "many", "gauge", NULL, NULL, 1), 0);
    ck_assert_str_eq(ism_metrics_text(m), "# TYPE many gauge\nmany 1\n");
    ism_metrics_destroy(m);
    ism_metrics_destroy(NULL);
    ism_metrics_reset(NULL);
    ck_assert_str_eq(ism_metrics_text(NULL), "");
}
END_TEST

static const struct {
    const char *in;
    const char *out;
} escapes[] = {
    { "", "" },
    { "node1", "node1" },
    { "a\\b", "a\\\\b" },
    { "say \"hi\"", "say \\\"hi\\\"" },
    { "two\nlines", "two\\nlines" },
    { "\\\"\n", "\\\\\\\"\\n" },
    { "ünï", "ünï" },
};

START_TEST(metrics_label_escape)
{
    char *s = ism_metrics_label_escape(escapes[_i].in);

    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, escapes[_i].out);
    free(s);
}
END_TEST

START_TEST(metrics_label_escape_null)
{
    errno = 0;
    ck_assert_ptr_null(ism_metrics_label_escape(NULL));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* --- listen strings ------------------------------------------------------ */

static const struct {
    const char *listen;
    const char *reason;
} bad_listen[] = {
    { NULL, "no listen address" },
    { "", "expected HOST:PORT" },
    { "9470", "expected HOST:PORT" },
    { "127.0.0.1", "expected HOST:PORT" },
    { "127.0.0.1:", "not a number" },
    { "127.0.0.1:http", "not a number" },
    { "127.0.0.1:65536", "not a number" },
    { "127.0.0.1:100000", "not a number" },
    { "127.0.0.1:-1", "not a number" },
    { "127.0.0.1:+80", "not a number" },
    { "127.0.0.1: 80", "not a number" },
    { "localhost:80", "not an IPv4 address" },
    { "127.0.0:80", "not an IPv4 address" },
    { "256.0.0.1:80", "not an IPv4 address" },
    { "[::1]:80", "not an IPv4 address" },
    { "**:80", "not an IPv4 address" },
    { "a-very-long-host-name.example:80", "not an IPv4 address" },
};

START_TEST(listen_refused)
{
    ism_error_t err = ISM_ERROR_INIT;

    errno = 0;
    ck_assert_ptr_null(ism_http_create(bad_listen[_i].listen, NULL, &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err.text, bad_listen[_i].reason), "'%s': %s", bad_listen[_i].listen,
                  err.text);
}
END_TEST

static const char *const good_listen[] = { "127.0.0.1:0", ":0", "*:0", "0.0.0.0:0" };

START_TEST(listen_accepted)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_http_t *s = ism_http_create(good_listen[_i], NULL, &err);

    ck_assert_msg(s != NULL, "%s: %s", good_listen[_i], err.text);
    ck_assert_int_gt(ism_http_port(s), 0);
    ck_assert_int_ge(ism_http_fd(s), 0);
    /* nothing going on: no reason to wake up */
    ck_assert_int_eq(ism_http_timeout_ms(s), -1);
    ck_assert_int_eq(ism_http_run(s), 0);
    ism_http_destroy(s);
}
END_TEST

START_TEST(listen_port_taken)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_http_t *a = ism_http_create("127.0.0.1:0", NULL, &err);
    char listen[32];

    ck_assert_ptr_nonnull(a);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", ism_http_port(a));
    errno = 0;
    ck_assert_ptr_null(ism_http_create(listen, NULL, &err));
    ck_assert_int_eq(errno, EADDRINUSE);
    ck_assert_msg(strstr(err.text, listen), "%s", err.text);
    ck_assert_msg(strstr(err.text, strerror(EADDRINUSE)), "%s", err.text);
    ism_http_destroy(a);
    ism_http_destroy(NULL);
    ck_assert_int_eq(ism_http_fd(NULL), -1);
    ck_assert_int_eq(ism_http_port(NULL), -1);
    ck_assert_int_eq(ism_http_timeout_ms(NULL), -1);
    ck_assert_int_eq(ism_http_run(NULL), -1);
}
END_TEST

/* --- the server, through real requests ----------------------------------- */

/* The daemon's side: what the handlers answer, and where they ran. */
struct daemon_state {
    bool healthy;
    bool ready;
    const char *why; /* NULL: leave the reason empty */
    int metrics_rc;
    pthread_t loop;
    int calls;
    int off_thread; /* handler calls not on the loop's thread */
};

static void note_call(struct daemon_state *d)
{
    d->calls++;
    if (!pthread_equal(pthread_self(), d->loop))
        d->off_thread++;
}

static bool check(struct daemon_state *d, bool ok, char *why, size_t n)
{
    note_call(d);
    if (!ok && d->why)
        snprintf(why, n, "%s", d->why);
    return ok;
}

static bool healthy(void *arg, char *why, size_t n)
{
    struct daemon_state *d = arg;
    return check(d, d->healthy, why, n);
}

static bool ready(void *arg, char *why, size_t n)
{
    struct daemon_state *d = arg;
    return check(d, d->ready, why, n);
}

static int metrics(void *arg, ism_metrics_t *m)
{
    struct daemon_state *d = arg;
    int rc = 0;

    note_call(d);
    rc |= ism_metric(m, "isthmus_leader", "gauge", "1 on the leader.", NULL, 1);
    rc |= ism_metric(m, "isthmus_kube_requests_total", "counter", "Requests.", "verb=\"GET\"",
                     (double)(1ULL << 53));
    return rc < 0 ? -1 : d->metrics_rc;
}

#define METRICS_BODY                                                                         \
    "# HELP isthmus_leader 1 on the leader.\n# TYPE isthmus_leader gauge\nisthmus_leader 1\n" \
    "# HELP isthmus_kube_requests_total Requests.\n"                                         \
    "# TYPE isthmus_kube_requests_total counter\n"                                           \
    "isthmus_kube_requests_total{verb=\"GET\"} 9007199254740992\n"

/* One request made by the client thread, and what came back. */
struct request {
    int port;
    const char *method;
    const char *path;
    long status;
    char body[2048];
    size_t body_len;
    char headers[2048];
    size_t headers_len;
    char curl_error[CURL_ERROR_SIZE];
    atomic_bool done;
};

static size_t collect(char *buf, size_t len, size_t *used, const char *data, size_t n)
{
    size_t room = len - 1 - *used;
    size_t take = n < room ? n : room;

    memcpy(buf + *used, data, take);
    *used += take;
    buf[*used] = '\0';
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct request *r = arg;
    return collect(r->body, sizeof(r->body), &r->body_len, data, size * nmemb);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct request *r = arg;
    return collect(r->headers, sizeof(r->headers), &r->headers_len, data, size * nmemb);
}

static void *client(void *arg)
{
    struct request *r = arg;
    CURL *c = curl_easy_init();
    char url[256];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", r->port, r->path);
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_error);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        if (strcmp(r->method, "HEAD") == 0)
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else if (strcmp(r->method, "POST") == 0)
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
        else if (strcmp(r->method, "GET") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_cleanup(c);
    }
    atomic_store(&r->done, true);
    return NULL;
}

/* The daemon's loop: poll the server's descriptor with its timeout (and
 * a short one of our own, to notice the client is done), then run. */
static void pump_until(ism_http_t *s, atomic_bool *done)
{
    for (int i = 0; i < 20 * 100 && !atomic_load(done); i++) {
        struct pollfd p = { .fd = ism_http_fd(s), .events = POLLIN };
        int t = ism_http_timeout_ms(s);

        ck_assert_int_ge(poll(&p, 1, t < 0 || t > 10 ? 10 : t), 0);
        ck_assert_int_eq(ism_http_run(s), 0);
    }
    ck_assert_msg(atomic_load(done), "the client did not finish");
}

static void fetch(ism_http_t *s, const char *method, const char *path, struct request *r)
{
    pthread_t t;

    memset(r, 0, sizeof(*r));
    r->port = ism_http_port(s);
    r->method = method;
    r->path = path;
    ck_assert_int_eq(pthread_create(&t, NULL, client, r), 0);
    pump_until(s, &r->done);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
}

#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

static const struct {
    const char *method;
    const char *path;
    bool healthy, ready;
    const char *why;
    int metrics_rc;
    long status;
    const char *body;
    const char *header; /* a header line the answer must carry */
} routes[] = {
    { "GET", "/healthz", true, true, NULL, 0, 200, "ok\n", "Content-Type: " TEXT_TYPE },
    { "GET", "/healthz", false, true, "slurmctld unreachable for 120 s", 0, 503,
      "slurmctld unreachable for 120 s\n", NULL },
    { "GET", "/healthz", false, true, NULL, 0, 503, "not healthy\n", NULL },
    { "GET", "/healthz", false, true, "first line\nsecond", 0, 503, "first line\n", NULL },
    { "HEAD", "/healthz", true, true, NULL, 0, 200, "", NULL },
    { "HEAD", "/healthz", false, true, "down", 0, 503, "", NULL },
    { "GET", "/readyz", true, true, NULL, 0, 200, "ok\n", NULL },
    { "GET", "/readyz", true, false, "caches not synced", 0, 503, "caches not synced\n", NULL },
    { "GET", "/readyz", true, false, NULL, 0, 503, "not ready\n", NULL },
    { "GET", "/readyz?verbose", true, true, NULL, 0, 200, "ok\n", NULL },
    { "GET", "/metrics", true, true, NULL, 0, 200, METRICS_BODY, "Content-Type: " PROM_TYPE },
    { "GET", "/metrics", false, false, NULL, 0, 200, METRICS_BODY, NULL },
    { "HEAD", "/metrics", true, true, NULL, 0, 200, "", "Content-Type: " PROM_TYPE },
    { "GET", "/metrics", true, true, NULL, -1, 500, "metrics unavailable\n", NULL },
    { "GET", "/", true, true, NULL, 0, 404, "not found\n", NULL },
    { "GET", "/healthz/", true, true, NULL, 0, 404, "not found\n", NULL },
    { "GET", "/metricsx", true, true, NULL, 0, 404, "not found\n", NULL },
    { "GET", "/HEALTHZ", true, true, NULL, 0, 404, "not found\n", NULL },
    { "POST", "/healthz", true, true, NULL, 0, 405, "method not allowed\n", "Allow: GET, HEAD" },
    { "PUT", "/metrics", true, true, NULL, 0, 405, "method not allowed\n", "Allow: GET, HEAD" },
    { "DELETE", "/readyz", true, true, NULL, 0, 405, "method not allowed\n", NULL },
    { "OPTIONS", "/healthz", true, true, NULL, 0, 405, "method not allowed\n", NULL },
    { "POST", "/nowhere", true, true, NULL, 0, 405, "method not allowed\n", NULL },
};

START_TEST(route)
{
    struct daemon_state d = { .healthy = routes[_i].healthy, .ready = routes[_i].ready,
                              .why = routes[_i].why, .metrics_rc = routes[_i].metrics_rc,
                              .loop = pthread_self() };
    ism_http_handlers_t h = { healthy, ready, metrics, &d };
    ism_error_t err = ISM_ERROR_INIT;
    ism_http_t *s = ism_http_create("127.0.0.1:0", &h, &err);
    struct request *r = calloc(1, sizeof(*r));

    ck_assert_msg(s != NULL, "%s", err.text);
    fetch(s, routes[_i].method, routes[_i].path, r);
    ck_assert_msg(r->status == routes[_i].status, "%s %s: status %ld, want %ld (%s)",
                  routes[_i].method, routes[_i].path, r->status, routes[_i].status,
                  r->curl_error);
    ck_assert_str_eq(r->body, routes[_i].body);
    if (routes[_i].header)
        ck_assert_msg(strcasestr(r->headers, routes[_i].header), "no '%s' in\n%s",
                      routes[_i].header, r->headers);
    ck_assert_int_eq(d.off_thread, 0);
    /* handlers run only for their routes and methods */
    ck_assert_int_eq(d.calls, routes[_i].status == 404 || routes[_i].status == 405 ? 0 : 1);
    free(r);
    ism_http_destroy(s);
}
END_TEST

/* Handlers left NULL: healthy, ready, no metrics. */
START_TEST(no_handlers)
{
    ism_http_t *s = ism_http_create("127.0.0.1:0", NULL, NULL);
    struct request *r = calloc(1, sizeof(*r));

    ck_assert_ptr_nonnull(s);
    fetch(s, "GET", "/healthz", r);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "ok\n");
    fetch(s, "GET", "/readyz", r);
    ck_assert_int_eq(r->status, 200);
    fetch(s, "GET", "/metrics", r);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "");
    free(r);
    ism_http_destroy(s);
}
END_TEST

/* A client that connects and sends half a request holds a connection,
 * not the loop: others are still answered, and the server asks to be
 * run again before the idle connection's timeout. */
START_TEST(slow_client)
{
    struct daemon_state d = { .healthy = true, .ready = true, .loop = pthread_self() };
    ism_http_handlers_t h = { healthy, ready, metrics, &d };
    ism_http_t *s = ism_http_create("127.0.0.1:0", &h, NULL);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    struct request *r = calloc(1, sizeof(*r));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int t;

    ck_assert_ptr_nonnull(s);
    sa.sin_port = htons((uint16_t)ism_http_port(s));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(write(fd, "GET /healthz HTTP/1.1\r\nHo", 25), 25);
    for (int i = 0; i < 10; i++) {
        struct pollfd p = { .fd = ism_http_fd(s), .events = POLLIN };
        poll(&p, 1, 10);
        ism_http_run(s);
    }
    t = ism_http_timeout_ms(s);
    ck_assert_int_gt(t, 0);
    ck_assert_int_le(t, ISM_HTTP_TIMEOUT_S * 1000);
    for (int i = 0; i < 3; i++) {
        fetch(s, "GET", "/readyz", r);
        ck_assert_int_eq(r->status, 200);
    }
    ck_assert_int_eq(d.off_thread, 0);
    close(fd);
    free(r);
    ism_http_destroy(s);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("metrics");

    tcase_add_loop_test(tc, metrics_text, 0, ARRAY_SIZE(texts));
    tcase_add_loop_test(tc, metrics_refused, 0, ARRAY_SIZE(refused));
    tcase_add_test(tc, metrics_reset_and_growth);
    tcase_add_test(tc, metrics_histogram);
    tcase_add_loop_test(tc, metrics_label_escape, 0, ARRAY_SIZE(escapes));
    tcase_add_test(tc, metrics_label_escape_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("server");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, listen_refused, 0, ARRAY_SIZE(bad_listen));
    tcase_add_loop_test(tc, listen_accepted, 0, ARRAY_SIZE(good_listen));
    tcase_add_test(tc, listen_port_taken);
    tcase_add_loop_test(tc, route, 0, ARRAY_SIZE(routes));
    tcase_add_test(tc, no_handlers);
    tcase_add_test(tc, slow_client);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return EXIT_FAILURE;
    rc = run_suite(http_suite());
    curl_global_cleanup();
    return rc;
}
