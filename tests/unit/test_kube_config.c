/* Unit tests: lib/kube_config.c (kubeconfig files and in-cluster config).
 *
 * Every kubeconfig text below may use "@/" for the test's scratch
 * directory, which holds ca.crt, client.crt, client.key and token. */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/kube/kube_config.h"
#include "unit.h"

#define CA_PEM "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
#define CERT_B64                                                                                  \
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNMSUVOVAotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg=="
#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"
#define KEY_B64 "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCktFWQotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0tCg=="

/* A minimal valid file around a cluster body, a user body and extras. */
#define KC(cluster, user)                                                                         \
    "apiVersion: v1\nkind: Config\ncurrent-context: c\n"                                         \
    "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"                                   \
    "clusters:\n- name: k\n  cluster:\n" cluster "users:\n- name: u\n  user:\n" user

static char dir[] = "/tmp/isthmus-kubeconfig-XXXXXX";
static char *saved_home;

static char *write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static void setup(void)
{
    char sub[600];

    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_file("ca.crt", CA_PEM);
    write_file("client.crt", CERT_PEM);
    write_file("client.key", KEY_PEM);
    write_file("token", "tok\n");
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof(sub), "%s/%c", dir, 'a' + i);
        ck_assert_int_eq(mkdir(sub, 0700), 0);
    }
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    strcpy(dir, "/tmp/isthmus-kubeconfig-XXXXXX");
    if (saved_home)
        setenv("HOME", saved_home, 1);
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    ck_assert_int_eq(chdir("/"), 0);
}

/* text with every "@/" replaced by the scratch directory (static buffer). */
static const char *expand(const char *text)
{
    static char out[8192];
    size_t n = 0;

    for (const char *p = text; *p; p++) {
        if (p[0] == '@' && p[1] == '/') {
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", dir);
            continue;
        }
        ck_assert_uint_lt(n, sizeof(out) - 1);
        out[n++] = *p;
    }
    out[n] = '\0';
    return out;
}

struct want {
    const char *server, *context, *ns;
    const char *ca_file, *ca_data, *sni, *proxy;
    bool insecure;
    const char *cert_file, *cert_data, *key_file, *key_data;
    const char *token, *token_file;
};

static void check_str(const char *field, const char *got, const char *want)
{
    if (!want) {
        ck_assert_msg(got == NULL, "%s: got '%s', want NULL", field, got);
        return;
    }
    ck_assert_msg(got != NULL, "%s: got NULL, want '%s'", field, expand(want));
    ck_assert_msg(strcmp(got, expand(want)) == 0, "%s: got '%s', want '%s'", field, got,
                  expand(want));
}

static void check_data(const char *field, const char *got, size_t len, const char *want)
{
    check_str(field, got, want);
    if (want)
        ck_assert_uint_eq(len, strlen(want));
}

static void check_cfg(const ism_kube_config_t *cfg, const struct want *w)
{
    check_str("server", cfg->server, w->server);
    check_str("context", cfg->context, w->context);
    check_str("namespace", cfg->namespace_, w->ns ? w->ns : "default");
    check_str("ca_file", cfg->ca_file, w->ca_file);
    check_data("ca_data", cfg->ca_data, cfg->ca_data_len, w->ca_data);
    check_str("tls_server_name", cfg->tls_server_name, w->sni);
    check_str("proxy_url", cfg->proxy_url, w->proxy);
    ck_assert_int_eq(cfg->insecure, w->insecure);
    check_str("cert_file", cfg->cert_file, w->cert_file);
    check_data("cert_data", cfg->cert_data, cfg->cert_data_len, w->cert_data);
    check_str("key_file", cfg->key_file, w->key_file);
    check_data("key_data", cfg->key_data, cfg->key_data_len, w->key_data);
    check_str("token", cfg->token, w->token);
    check_str("token_file", cfg->token_file, w->token_file);
}

/* Kubeconfigs that load (parsed with dir = the scratch directory). */
static const struct {
    const char *text;
    const char *context; /* asked for; NULL: current-context */
    struct want want;
} good[] = {
    /* bearer token, CA file relative to the kubeconfig */
    { KC("    server: https://k.example:6443\n    certificate-authority: ca.crt\n",
         "    token: abc.def\n"),
      NULL,
      { .server = "https://k.example:6443", .context = "c", .ca_file = "@/ca.crt",
        .token = "abc.def" } },
    /* everything inline as base64 */
    { KC("    server: https://k:1\n    certificate-authority-data: " CA_B64 "\n",
         "    client-certificate-data: " CERT_B64 "\n    client-key-data: " KEY_B64 "\n"),
      NULL,
      { .server = "https://k:1", .context = "c", .ca_data = CA_PEM, .cert_data = CERT_PEM,
        .key_data = KEY_PEM } },
    /* client certificate files, absolute CA path */
    { KC("    server: https://k:1\n    certificate-authority: @/ca.crt\n",
         "    client-certificate: client.crt\n    client-key: @/client.key\n"),
      NULL,
      { .server = "https://k:1", .context = "c", .ca_file = "@/ca.crt",
        .cert_file = "@/client.crt", .key_file = "@/client.key" } },
    /* token file, insecure, SNI, proxy; system CAs */
    { KC("    server: https://10.0.0.1:443/\n    insecure-skip-tls-verify: true\n"
         "    tls-server-name: api.internal\n    proxy-url: http://proxy:3128\n",
         "    tokenFile: token\n"),
      NULL,
      { .server = "https://10.0.0.1:443", .context = "c", .sni = "api.internal",
        .proxy = "http://proxy:3128", .insecure = true, .token_file = "@/token" } },
    /* YAML 1.1 boolean, bare host:port means https, path prefix kept */
    { KC("    server: k.example:8443/prefix//\n    insecure-skip-tls-verify: yes\n", "    {}\n"),
      NULL, { .server = "https://k.example:8443/prefix", .context = "c", .insecure = true } },
    /* false is false; http is kept as the user wrote it */
    { KC("    server: HTTP://k:80\n    insecure-skip-tls-verify: false\n", "    token: t\n"), NULL,
      { .server = "HTTP://k:80", .context = "c", .token = "t" } },
    /* a named context other than the current one, with a namespace */
    { "current-context: c\n"
      "contexts:\n- name: c\n  context: {cluster: k}\n"
      "- name: other\n  context: {cluster: k2, user: u2, namespace: team-a}\n"
      "clusters:\n- name: k\n  cluster: {server: 'https://one'}\n"
      "- name: k2\n  cluster: {server: \"https://two\"}\n"
      "users:\n- name: u2\n  user: {token: two}\n",
      "other",
      { .server = "https://two", .context = "other", .ns = "team-a", .token = "two" } },
    /* context without a user: no credentials */
    { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\n"
      "clusters:\n- name: k\n  cluster: {server: 'https://one'}\n",
      NULL, { .server = "https://one", .context = "c" } },
    /* flow style throughout */
    { "{current-context: f, contexts: [{name: f, context: {cluster: k, user: u, namespace: n}}], "
      "clusters: [{name: k, cluster: {server: 'https://flow:1', certificate-authority-data: " CA_B64
      "}}], users: [{name: u, user: {token: ft}}]}",
      NULL,
      { .server = "https://flow:1", .context = "f", .ns = "n", .ca_data = CA_PEM, .token = "ft" } },
    /* JSON, as kubectl config view -o json writes it */
    { "{\"kind\":\"Config\",\"apiVersion\":\"v1\",\"preferences\":{},\n"
      "\"clusters\":[{\"name\":\"k\",\"cluster\":{\"server\":\"https://json:2\","
      "\"insecure-skip-tls-verify\":true}}],\n"
      "\"users\":[{\"name\":\"u\",\"user\":{\"client-certificate-data\":\"" CERT_B64
      "\",\"client-key-data\":\"" KEY_B64 "\"}}],\n"
      "\"contexts\":[{\"name\":\"j\",\"context\":{\"cluster\":\"k\",\"user\":\"u\"}}],\n"
      "\"current-context\":\"j\"}\n",
      NULL,
      { .server = "https://json:2", .context = "j", .insecure = true, .cert_data = CERT_PEM,
        .key_data = KEY_PEM } },
    /* anchors and aliases are resolved: a scalar and a whole mapping */
    { "x-server: &srv https://alias:3\n"
      "x-user: &usr {token: aliased}\n"
      "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n"
      "clusters:\n- name: k\n  cluster: {server: *srv}\n"
      "users:\n- name: u\n  user: *usr\n",
      NULL, { .server = "https://alias:3", .context = "c", .token = "aliased" } },
    /* base64 split over lines (a literal block), unknown keys, nulls */
    { KC("    server: https://k:1\n    certificate-authority-data: |\n      LS0tLS1CRUdJTiBDRVJU\n"
         "      SUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K\n"
         "    certificate-authority: null\n    future-field: {a: [1, 2]}\n"
         "    extensions:\n    - name: e\n      extension: {x: 1}\n",
         "    token: ''\n    tokenFile: ~\n    as: ''\n    exec: null\n    whatever: 1\n"),
      NULL, { .server = "https://k:1", .context = "c", .ca_data = CA_PEM } },
    /* a context's own extensions and preferences are ignored */
    { "preferences: {colors: true}\ncurrent-context: c\n"
      "contexts:\n- name: c\n  context:\n    cluster: k\n    extensions: []\n"
      "clusters:\n- name: k\n  cluster: {server: 'https://p', disable-compression: true}\n",
      NULL, { .server = "https://p", .context = "c" } },
};

START_TEST(parse_good)
{
    ism_error_t err = ISM_ERROR_INIT;
    const char *text = expand(good[_i].text);
    ism_kube_config_t *cfg =
        ism_kube_config_parse(text, strlen(text), "test.yaml", dir, good[_i].context, &err);

    ck_assert_msg(cfg != NULL, "case %d: %s", _i, err.text);
    check_cfg(cfg, &good[_i].want);
    ism_kube_config_destroy(cfg);
}
END_TEST

/* Kubeconfigs that must be refused, with the errno and the message. */
static const struct {
    const char *text;
    const char *context;
    int errnum;
    const char *message;
} bad[] = {
    /* types, with the line */
    { "clusters: {}\n", NULL, EINVAL, "test.yaml:1: clusters: expected a sequence, got a mapping" },
    { KC("    server: [https://a]\n", "    {}\n"), NULL, EINVAL,
      "test.yaml:10: server: expected a string, got a sequence" },
    { KC("    server: https://a\n    insecure-skip-tls-verify: \"true\"\n", "    {}\n"), NULL,
      EINVAL, "test.yaml:11: insecure-skip-tls-verify: expected true or false, got 'true'" },
    { KC("    server: https://a\n    insecure-skip-tls-verify: maybe\n", "    {}\n"), NULL, EINVAL,
      ":11: insecure-skip-tls-verify: expected true or false, got 'maybe'" },
    { KC("    server: https://a\n", "    exec: [a]\n"), NULL, EINVAL,
      "test.yaml:14: exec: expected a mapping, got a sequence" },
    { "contexts:\n- just-a-string\n", NULL, EINVAL,
      "test.yaml:2: contexts[0]: expected a mapping, got a scalar" },
    { "users:\n- name: u\n  user: token-here\n", NULL, EINVAL,
      "test.yaml:3: user: expected a mapping, got a scalar" },
    { "current-context: {a: b}\n", NULL, EINVAL,
      "test.yaml:1: current-context: expected a string, got a mapping" },
    /* a type error in an entry that is not used still fails, as in kubectl */
    { KC("    server: https://a\n", "    {}\n") "- name: other\n  user: {token: [x]}\n", NULL,
      EINVAL, "test.yaml:16: token: expected a string, got a sequence" },
    /* base64 */
    { KC("    server: https://a\n    certificate-authority-data: abc!\n", "    {}\n"), NULL,
      EINVAL, "test.yaml:11: certificate-authority-data: not valid base64 (at byte 3)" },
    { KC("    server: https://a\n    certificate-authority-data: abc\n", "    {}\n"), NULL, EINVAL,
      "certificate-authority-data: not valid base64 (at byte 3)" },
    { KC("    server: https://a\n", "    client-key-data: YQ==YQ==\n"), NULL, EINVAL,
      "client-key-data: not valid base64 (at byte 4)" },
    { KC("    server: https://a\n", "    client-certificate-data: Y===\n"), NULL, EINVAL,
      "client-certificate-data: not valid base64 (at byte 1)" },
    { KC("    server: https://a\n    certificate-authority-data: bm90IHBlbSBhdCBhbGw=\n",
         "    {}\n"),
      NULL, EINVAL, ":11: certificate-authority-data of cluster 'k': does not decode to PEM text" },
    /* unsupported credentials, naming the user */
    { KC("    server: https://a\n", "    exec: {command: aws}\n"), NULL, ENOTSUP,
      "test.yaml:14: user 'u': exec credential plugins are not supported" },
    { KC("    server: https://a\n", "    auth-provider: {name: oidc}\n"), NULL, ENOTSUP,
      "user 'u': auth-provider plugins are not supported" },
    { KC("    server: https://a\n", "    username: admin\n    password: secret\n"), NULL, ENOTSUP,
      "user 'u': basic authentication (username/password) is not supported" },
    { KC("    server: https://a\n", "    token: t\n    as: someone\n"), NULL, ENOTSUP,
      "user 'u': impersonation (as) is not supported" },
    /* names */
    { KC("    server: https://a\n", "    {}\n"), "nope", EINVAL, "test.yaml: context 'nope' not found" },
    { "contexts:\n- name: c\n  context: {cluster: k}\n", NULL, EINVAL,
      "test.yaml: no current-context is set and no context was named" },
    { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: gone}\n", NULL, EINVAL,
      "test.yaml:4: cluster 'gone' of context 'c' not found in test.yaml" },
    { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: gone}\n"
      "clusters:\n- name: k\n  cluster: {server: https://a}\n",
      NULL, EINVAL, "test.yaml:4: user 'gone' of context 'c' not found" },
    { "current-context: c\ncontexts:\n- name: c\n  context: {namespace: x}\n", NULL, EINVAL,
      "test.yaml:3: context 'c' names no cluster" },
    { "current-context: c\ncontexts:\n- name: c\n", NULL, EINVAL, "context 'c' names no cluster" },
    { KC("    certificate-authority: ca.crt\n", "    {}\n"), NULL, EINVAL,
      "test.yaml:8: cluster 'k' has no server" },
    { "clusters:\n- name: k\n  cluster: {server: a}\n- name: j\n- name: k\n", NULL, EINVAL,
      "test.yaml:5: clusters: the name 'k' is used twice (also at line 2)" },
    /* contradictions */
    { KC("    server: https://a\n    certificate-authority: ca.crt\n    certificate-authority-data: " CA_B64
         "\n",
         "    {}\n"),
      NULL, EINVAL,
      "cluster 'k' sets both certificate-authority and certificate-authority-data" },
    { KC("    server: https://a\n    certificate-authority: ca.crt\n"
         "    insecure-skip-tls-verify: true\n",
         "    {}\n"),
      NULL, EINVAL, "cluster 'k' sets insecure-skip-tls-verify and a certificate authority" },
    { KC("    server: https://a\n", "    client-certificate: client.crt\n"), NULL, EINVAL,
      "user 'u' has a client certificate without a client key" },
    { KC("    server: https://a\n", "    client-key-data: " KEY_B64 "\n"), NULL, EINVAL,
      "user 'u' has a client key without a client certificate" },
    { KC("    server: https://a\n", "    token: t\n    tokenFile: token\n"), NULL, EINVAL,
      "user 'u' sets both token and tokenFile" },
    /* values that would end up in a header, a URL or a path */
    { KC("    server: https://a\n", "    token: \"a\\r\\nX-Evil: 1\"\n"), NULL, EINVAL,
      "test.yaml:14: token of user 'u': contains a space or control character" },
    { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, namespace: ../../x}\n"
      "clusters:\n- name: k\n  cluster: {server: https://a}\n",
      NULL, EINVAL, "test.yaml:4: namespace of context 'c': '../../x' is not a namespace name" },
    { "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, namespace: Team-A}\n"
      "clusters:\n- name: k\n  cluster: {server: https://a}\n",
      NULL, EINVAL, "'Team-A' is not a namespace name" },
    { KC("    server: \"https://a\\0b\"\n", "    {}\n"), NULL, EINVAL,
      "test.yaml:10: server: contains a NUL byte" },
    { KC("    server: ftp://a\n", "    {}\n"), NULL, EINVAL,
      "server of cluster 'k': 'ftp://a' is not an http(s) URL" },
    { KC("    server: https://\n", "    {}\n"), NULL, EINVAL, "'https://' has no host" },
    { KC("    server: https://a\n    certificate-authority: missing.crt\n", "    {}\n"), NULL,
      ENOENT, "test.yaml:11: certificate-authority of cluster 'k': @/missing.crt: No such file" },
    { KC("    server: https://a\n", "    tokenFile: nope/token\n"), NULL, ENOENT,
      "tokenFile of user 'u': @/nope/token: No such file" },
    /* YAML */
    { KC("    server: https://a\n    server: https://b\n", "    {}\n"), NULL, EINVAL,
      "test.yaml:11: server is given twice (first at line 10)" },
    { "base: &b {server: https://a}\nclusters:\n- name: k\n  cluster:\n    <<: *b\n", NULL, EINVAL,
      "test.yaml:5: merge keys (<<) are not supported" },
    { "a: &a [1, *a]\n", NULL, EINVAL, "test.yaml:1: alias *a refers to a node that contains it" },
    { "a: *nope\n", NULL, EINVAL, "test.yaml:1: alias *nope names no anchor" },
    { "a: 1\n---\nb: 2\n", NULL, EINVAL, "test.yaml:2: more than one YAML document" },
    { "- a\n- b\n", NULL, EINVAL, "test.yaml:1: expected a mapping at the top, got a sequence" },
    { "just text\n", NULL, EINVAL, "expected a mapping at the top, got a scalar" },
    { "clusters: [a, b\n", NULL, EINVAL, "test.yaml:2: YAML: did not find expected" },
    { "a: b: c\n", NULL, EINVAL, "test.yaml:1: YAML: mapping values are not allowed" },
    { "\tclusters: []\n", NULL, EINVAL, "test.yaml:1: YAML: found character that cannot start" },
    { "a: \"\xff\"\n", NULL, EINVAL, "YAML: invalid" },
};

START_TEST(parse_bad)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *text = strdup(expand(bad[_i].text));
    char *want = strdup(expand(bad[_i].message));
    ism_kube_config_t *cfg =
        ism_kube_config_parse(text, strlen(text), "test.yaml", dir, bad[_i].context, &err);

    ck_assert_msg(cfg == NULL, "case %d loaded", _i);
    ck_assert_msg(strstr(err.text, want) != NULL, "case %d: message '%s' lacks '%s'", _i,
                  err.text, want);
    ck_assert_msg(errno == bad[_i].errnum, "case %d: errno %d, want %d", _i, errno,
                  bad[_i].errnum);
    /* The same failure without an error buffer. */
    errno = 0;
    ck_assert_ptr_null(
        ism_kube_config_parse(text, strlen(text), "test.yaml", dir, bad[_i].context, NULL));
    ck_assert_int_eq(errno, bad[_i].errnum);
    free(want);
    free(text);
}
END_TEST

static void expect_parse_error(const char *text, size_t len, int errnum, const char *message)
{
    ism_error_t err = ISM_ERROR_INIT;

    ck_assert_ptr_null(ism_kube_config_parse(text, len, "big.yaml", dir, NULL, &err));
    ck_assert_int_eq(errno, errnum);
    ck_assert_msg(strstr(err.text, message) != NULL, "message '%s' lacks '%s'", err.text,
                  message);
}

/* Hostile input: deep nesting, alias bombs, many anchors, huge files. */
START_TEST(limits)
{
    size_t size = 1024 * 1024 + 1;
    char *text = malloc(size + 1);
    size_t n;

    /* 64 levels are fine, 65 are not. */
    n = (size_t)sprintf(text, "a: ");
    for (int i = 0; i < 63; i++)
        text[n++] = '[';
    for (int i = 0; i < 63; i++)
        text[n++] = ']';
    text[n] = '\0';
    expect_parse_error(text, n, EINVAL, "no current-context");
    n = (size_t)sprintf(text, "a: ");
    for (int i = 0; i < 100000; i++)
        text[n++] = '[';
    text[n] = '\0';
    expect_parse_error(text, n, EINVAL, "big.yaml:1: nested more than 64 levels deep");

    /* Billion laughs: 10 levels of 10 aliases each. */
    n = (size_t)sprintf(text, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++)
        n += (size_t)sprintf(text + n, "l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, "
                                       "*l%d, *l%d]\n",
                             i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
                             i - 1);
    expect_parse_error(text, n, EINVAL, "too many aliases");

    n = 0;
    for (int i = 0; i < 101; i++)
        n += (size_t)sprintf(text + n, "k%d: &a%d v\n", i, i);
    expect_parse_error(text, n, EINVAL, "big.yaml:101: more than 100 anchors");

    memset(text, ' ', size);
    text[size] = '\0';
    expect_parse_error(text, size, EFBIG, "big.yaml: larger than 1048576 bytes");
    /* the same size as a file */
    write_file("big.yaml", text);
    ck_assert_ptr_null(ism_kube_config_load(expand("@/big.yaml"), NULL, NULL));
    ck_assert_int_eq(errno, EFBIG);
    free(text);
}
END_TEST

START_TEST(null_arguments)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_kube_config_t *cfg;
    const char *text = "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
                       "clusters: [{name: k, cluster: {server: https://k, "
                       "certificate-authority: ca.crt}}]\n";

    ck_assert_ptr_null(ism_kube_config_parse(NULL, 0, "x", NULL, NULL, &err));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(err.text, "no kubeconfig text given");
    ism_kube_config_destroy(NULL);
    errno = EBUSY;
    ism_kube_config_destroy(NULL);
    ck_assert_int_eq(errno, EBUSY);

    /* No origin, no dir: messages say "kubeconfig", paths are relative to
     * the current directory, made absolute. */
    ism_error_t err2 = ISM_ERROR_INIT;
    ck_assert_int_eq(chdir(dir), 0);
    cfg = ism_kube_config_parse(text, strlen(text), NULL, NULL, NULL, &err2);
    ck_assert_msg(cfg != NULL, "%s", err2.text);
    check_str("ca_file", cfg->ca_file, "@/ca.crt");
    ism_kube_config_destroy(cfg);
    ck_assert_ptr_null(ism_kube_config_parse("a: [", 4, NULL, NULL, NULL, &err2));
    ck_assert_msg(strncmp(err2.text, "kubeconfig:2: YAML:", 19) == 0, "%s", err2.text);

    /* An empty document is an empty config. */
    ism_error_t err3 = ISM_ERROR_INIT;
    ck_assert_ptr_null(ism_kube_config_parse("", 0, "e", NULL, NULL, &err3));
    ck_assert_str_eq(err3.text, "e: no current-context is set and no context was named");
    errno = 0;
    ck_assert_ptr_null(ism_kube_config_parse("", 0, "e", NULL, "c", NULL));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ---- several files ---------------------------------------------------- */

static const char *file_a = "current-context: a-ctx\n"
                            "contexts:\n"
                            "- name: a-ctx\n  context: {cluster: common, user: ua}\n"
                            "- name: shared\n  context: {cluster: common, user: ua, namespace: from-a}\n"
                            "clusters:\n"
                            "- name: common\n  cluster: {server: 'https://a', certificate-authority: ca.crt}\n"
                            "users:\n- name: ua\n  user: {token: token-a}\n";
static const char *file_b = "current-context: b-ctx\n"
                            "contexts:\n"
                            "- name: shared\n  context: {cluster: cb, user: ub, namespace: from-b}\n"
                            "- name: b-ctx\n  context: {cluster: common, user: ub}\n"
                            "- name: b-own\n  context: {cluster: cb, user: ua}\n"
                            "clusters:\n"
                            "- name: common\n  cluster: {server: 'https://b-common'}\n"
                            "- name: cb\n  cluster: {server: 'https://b', certificate-authority: ca.crt}\n"
                            "users:\n- name: ua\n  user: {token: token-b-ua}\n"
                            "- name: ub\n  user: {tokenFile: token}\n";
static const char *file_c = "current-context: ''\n"
                            "contexts:\n"
                            "- name: c-ctx\n  context: {cluster: cc, user: uc}\n"
                            "clusters:\n- name: cc\n  cluster: {server: 'https://c'}\n"
                            "users:\n- name: uc\n  user: {client-certificate: client.crt, "
                            "client-key: client.key}\n";

static const struct {
    const char *paths; /* "A", "B", "C" stand for @/a/config, @/b/config, @/c/config */
    const char *context;
    struct want want;
} merges[] = {
    /* current-context from the first file; first cluster/user of a name wins */
    { "A:B", NULL,
      { .server = "https://a", .context = "a-ctx", .ca_file = "@/a/ca.crt", .token = "token-a" } },
    { "B:A", NULL,
      { .server = "https://b-common", .context = "b-ctx", .token_file = "@/b/token" } },
    { "A:B", "shared",
      { .server = "https://a", .context = "shared", .ns = "from-a", .ca_file = "@/a/ca.crt",
        .token = "token-a" } },
    { "B:A", "shared",
      { .server = "https://b", .context = "shared", .ns = "from-b", .ca_file = "@/b/ca.crt",
        .token_file = "@/b/token" } },
    /* a context of B whose user name A also defines: A's user */
    { "A:B", "b-own",
      { .server = "https://b", .context = "b-own", .ca_file = "@/b/ca.crt", .token = "token-a" } },
    /* three files; C sets no current-context (empty) */
    { "C:A:B", NULL,
      { .server = "https://a", .context = "a-ctx", .ca_file = "@/a/ca.crt", .token = "token-a" } },
    { "B:C:A", "c-ctx",
      { .server = "https://c", .context = "c-ctx", .cert_file = "@/c/client.crt",
        .key_file = "@/c/client.key" } },
    /* empty entries and missing files are skipped */
    { "::@/missing:C::B:", NULL,
      { .server = "https://b-common", .context = "b-ctx", .token_file = "@/b/token" } },
};

/* "A:B" -> "<dir>/a/config:<dir>/b/config" */
static char *merge_paths(const char *spec)
{
    static char out[4096];
    size_t n = 0;

    for (const char *p = expand(spec); *p; p++) {
        if (*p >= 'A' && *p <= 'C' && (p[1] == ':' || !p[1]))
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s/%c/config", dir, *p - 'A' + 'a');
        else
            out[n++] = *p;
    }
    out[n] = '\0';
    return out;
}

static void write_merge_files(void)
{
    const char *texts[] = { file_a, file_b, file_c };

    for (int i = 0; i < 3; i++) {
        char name[32];

        snprintf(name, sizeof(name), "%c/config", 'a' + i);
        write_file(name, texts[i]);
        snprintf(name, sizeof(name), "%c/ca.crt", 'a' + i);
        write_file(name, CA_PEM);
        snprintf(name, sizeof(name), "%c/token", 'a' + i);
        write_file(name, "t\n");
        snprintf(name, sizeof(name), "%c/client.crt", 'a' + i);
        write_file(name, CERT_PEM);
        snprintf(name, sizeof(name), "%c/client.key", 'a' + i);
        write_file(name, KEY_PEM);
    }
}

START_TEST(merge)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_kube_config_t *cfg;

    write_merge_files();
    cfg = ism_kube_config_load(merge_paths(merges[_i].paths), merges[_i].context, &err);
    ck_assert_msg(cfg != NULL, "case %d: %s", _i, err.text);
    check_cfg(cfg, &merges[_i].want);
    ism_kube_config_destroy(cfg);

    /* The same through $KUBECONFIG. */
    setenv("KUBECONFIG", merge_paths(merges[_i].paths), 1);
    cfg = ism_kube_config_load(NULL, merges[_i].context, &err);
    ck_assert_msg(cfg != NULL, "case %d: %s", _i, err.text);
    check_cfg(cfg, &merges[_i].want);
    ism_kube_config_destroy(cfg);
}
END_TEST

START_TEST(load_errors)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *want;

    write_merge_files();
    /* nothing exists */
    ck_assert_ptr_null(ism_kube_config_load(expand("@/x:@/y"), NULL, &err));
    ck_assert_int_eq(errno, ENOENT);
    want = strdup(expand("no kubeconfig: @/x:@/y do not exist"));
    ck_assert_str_eq(err.text, want);
    free(want);
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_kube_config_load("::", NULL, &err));
    ck_assert_int_eq(errno, ENOENT);

    /* a broken second file fails the whole load, naming that file */
    write_file("b/config", "clusters: [\n");
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_kube_config_load(merge_paths("A:B"), NULL, &err));
    ck_assert_int_eq(errno, EINVAL);
    want = strdup(expand("@/b/config:2: YAML:"));
    ck_assert_msg(strncmp(err.text, want, strlen(want)) == 0, "%s", err.text);
    free(want);

    /* a name missing from every file names all of them */
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_kube_config_load(merge_paths("A:C"), "zz", &err));
    want = strdup(merge_paths("A:C"));
    ck_assert_msg(strstr(err.text, want) && strstr(err.text, "context 'zz' not found"), "%s",
                  err.text);
    free(want);

    /* a directory is not a kubeconfig */
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_kube_config_load(expand("@/a"), NULL, &err));
    ck_assert_int_eq(errno, EISDIR);
    ck_assert_msg(strstr(err.text, "not a regular file"), "%s", err.text);

    /* a relative kubeconfig path: its paths still come out absolute */
    ism_kube_config_t *cfg;
    ck_assert_int_eq(chdir(dir), 0);
    ck_assert_ptr_nonnull(cfg = ism_kube_config_load("a/config", NULL, NULL));
    check_str("ca_file", cfg->ca_file, "@/a/ca.crt");
    ism_kube_config_destroy(cfg);
}
END_TEST

/* ---- in-cluster ------------------------------------------------------- */

static const struct {
    const char *host, *port;
    const char *ns_file; /* NULL: no namespace file */
    bool ca;
    const char *server, *ns;
} pods[] = {
    { "10.96.0.1", "443", "kube-system\n", true, "https://10.96.0.1:443", "kube-system" },
    { "fd00:10:96::1", "6443", "ns", true, "https://[fd00:10:96::1]:6443", "ns" },
    { "kubernetes.default.svc", "443", NULL, true, "https://kubernetes.default.svc:443",
      "default" },
    { "10.0.0.1", "443", "\n", false, "https://10.0.0.1:443", "default" },
};

START_TEST(in_cluster)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_kube_config_t *cfg;

    write_file("a/token", "jwt\n");
    if (pods[_i].ca)
        write_file("a/ca.crt", CA_PEM);
    if (pods[_i].ns_file)
        write_file("a/namespace", pods[_i].ns_file);
    setenv("KUBERNETES_SERVICE_HOST", pods[_i].host, 1);
    setenv("KUBERNETES_SERVICE_PORT", pods[_i].port, 1);
    cfg = ism_kube_config_in_cluster(expand("@/a"), &err);
    ck_assert_msg(cfg != NULL, "%s", err.text);
    check_cfg(cfg, &(struct want){ .server = pods[_i].server, .ns = pods[_i].ns,
                                   .ca_file = pods[_i].ca ? "@/a/ca.crt" : NULL,
                                   .token_file = "@/a/token" });
    ism_kube_config_destroy(cfg);
}
END_TEST

static const struct {
    const char *host, *port, *ns_file;
    bool token;
    int errnum;
    const char *message;
} pods_bad[] = {
    { NULL, NULL, NULL, true, ENOENT, "not running in a pod" },
    { "10.0.0.1", NULL, NULL, true, ENOENT, "not running in a pod" },
    { "", "443", NULL, true, ENOENT, "not running in a pod" },
    { "10.0.0.1", "0", NULL, true, EINVAL, "KUBERNETES_SERVICE_PORT='0' is not a port number" },
    { "10.0.0.1", "65536", NULL, true, EINVAL, "KUBERNETES_SERVICE_PORT='65536'" },
    { "10.0.0.1", "44x", NULL, true, EINVAL, "KUBERNETES_SERVICE_PORT='44x'" },
    { "10.0.0.1", "-1", NULL, true, EINVAL, "KUBERNETES_SERVICE_PORT='-1'" },
    { "a/b", "443", NULL, true, EINVAL, "KUBERNETES_SERVICE_HOST='a/b' is not a host" },
    { "a b", "443", NULL, true, EINVAL, "KUBERNETES_SERVICE_HOST='a b'" },
    { "10.0.0.1", "443", NULL, false, ENOENT, "service-account token @/a/token: No such file" },
    { "10.0.0.1", "443", "Bad_NS", true, EINVAL, "@/a/namespace: 'Bad_NS' is not a namespace" },
    { "10.0.0.1", "443", "-x\n", true, EINVAL, "@/a/namespace: '-x' is not a namespace" },
};

START_TEST(in_cluster_bad)
{
    ism_error_t err = ISM_ERROR_INIT;
    char *want = strdup(expand(pods_bad[_i].message));

    if (pods_bad[_i].token)
        write_file("a/token", "jwt\n");
    if (pods_bad[_i].ns_file)
        write_file("a/namespace", pods_bad[_i].ns_file);
    if (pods_bad[_i].host)
        setenv("KUBERNETES_SERVICE_HOST", pods_bad[_i].host, 1);
    if (pods_bad[_i].port)
        setenv("KUBERNETES_SERVICE_PORT", pods_bad[_i].port, 1);
    ck_assert_ptr_null(ism_kube_config_in_cluster(expand("@/a"), &err));
    ck_assert_int_eq(errno, pods_bad[_i].errnum);
    ck_assert_msg(strstr(err.text, want), "message '%s' lacks '%s'", err.text, want);
    free(want);
}
END_TEST

/* ism_kube_config_default: $KUBECONFIG, then ~/.kube/config, then the pod. */
START_TEST(default_order)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_kube_config_t *cfg;
    char home[600];

    write_merge_files();
    snprintf(home, sizeof(home), "%s/home", dir);
    ck_assert_int_eq(mkdir(home, 0700), 0);
    setenv("HOME", home, 1);

    /* nothing at all */
    ck_assert_ptr_null(ism_kube_config_default(NULL, &err));
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_msg(strstr(err.text, "no kubeconfig") && strstr(err.text, "not running in a pod"),
                  "%s", err.text);
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_kube_config_default("x", &err));
    ck_assert_msg(strstr(err.text, "context 'x' named, but there is no kubeconfig"), "%s",
                  err.text);

    /* in a pod */
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    write_file("a/token", "jwt\n");
    /* the real service-account directory is absent here, so this fails
     * on the token, proving the in-cluster path was taken */
    ism_error_clear(&err);
    cfg = ism_kube_config_default(NULL, &err);
    if (cfg) /* a test machine that is itself a pod */
        ism_kube_config_destroy(cfg);
    else
        ck_assert_msg(strstr(err.text, "service-account token " ISM_KUBE_SA_DIR), "%s", err.text);

    /* ~/.kube/config wins over the pod */
    snprintf(home, sizeof(home), "%s/home/.kube", dir);
    ck_assert_int_eq(mkdir(home, 0700), 0);
    write_file("home/.kube/config", file_c);
    write_file("home/.kube/client.crt", CERT_PEM);
    write_file("home/.kube/client.key", KEY_PEM);
    ism_error_clear(&err);
    cfg = ism_kube_config_default("c-ctx", &err);
    ck_assert_msg(cfg != NULL, "%s", err.text);
    ck_assert_str_eq(cfg->server, "https://c");
    ism_kube_config_destroy(cfg);
    /* and load(NULL) reads it too */
    ck_assert_ptr_nonnull(cfg = ism_kube_config_load(NULL, "c-ctx", NULL));
    ism_kube_config_destroy(cfg);

    /* $KUBECONFIG wins over both */
    setenv("KUBECONFIG", merge_paths("B"), 1);
    ck_assert_ptr_nonnull(cfg = ism_kube_config_default(NULL, NULL));
    ck_assert_str_eq(cfg->server, "https://b-common");
    ism_kube_config_destroy(cfg);

    /* no HOME, no KUBECONFIG */
    unsetenv("KUBECONFIG");
    unsetenv("HOME");
    ism_error_clear(&err);
    ck_assert_ptr_null(ism_kube_config_load(NULL, NULL, &err));
    ck_assert_str_eq(err.text, "no kubeconfig: KUBECONFIG and HOME are not set");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kube_config");
    TCase *tc = tcase_create("kube_config");

    if (getenv("HOME"))
        saved_home = strdup(getenv("HOME"));
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, parse_good, 0, ARRAY_SIZE(good));
    tcase_add_loop_test(tc, parse_bad, 0, ARRAY_SIZE(bad));
    tcase_add_test(tc, limits);
    tcase_add_test(tc, null_arguments);
    tcase_add_loop_test(tc, merge, 0, ARRAY_SIZE(merges));
    tcase_add_test(tc, load_errors);
    tcase_add_loop_test(tc, in_cluster, 0, ARRAY_SIZE(pods));
    tcase_add_loop_test(tc, in_cluster_bad, 0, ARRAY_SIZE(pods_bad));
    tcase_add_test(tc, default_order);
    suite_add_tcase(s, tc);
    int rc = run_suite(s);
    free(saved_home);
    return rc;
}
