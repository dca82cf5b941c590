/* kube_config_show - print what ism_kube_config_load() makes of a
 * kubeconfig, in a form test_kube_config_kubectl.sh can compare with
 * `kubectl config view --minify --flatten`.
 *
 *   kube_config_show [-c CONTEXT] summary|ca|cert|key
 *
 * The files come from $KUBECONFIG.  summary prints one line:
 * context|server|namespace|token|insecure|tls-server-name|proxy-url|token-file
 * ca, cert and key print the PEM bytes, inline or read from the file. */
#include <config.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/kube/kube_config.h"

static const char *s(const char *v)
{
    return v ? v : "";
}

static int print_pem(const char *data, size_t len, const char *file)
{
    char buf[4096];
    size_t n;
    FILE *f;

    if (data)
        return fwrite(data, 1, len, stdout) == len ? 0 : 1;
    if (!file)
        return 0;
    if (!(f = fopen(file, "rb"))) {
        perror(file);
        return 1;
    }
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stdout);
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    ism_error_t err = ISM_ERROR_INIT;
    const char *context = NULL, *what;
    ism_kube_config_t *cfg;
    int opt, rc = 0;

    while ((opt = getopt(argc, argv, "c:")) != -1) {
        if (opt != 'c') {
            fprintf(stderr, "usage: kube_config_show [-c CONTEXT] summary|ca|cert|key\n");
            return 2;
        }
        context = optarg;
    }
    what = optind < argc ? argv[optind] : "summary";
    if (!(cfg = ism_kube_config_load(NULL, context, &err))) {
        fprintf(stderr, "kube_config_show: %s\n", err.text);
        return 1;
    }
    if (strcmp(what, "ca") == 0)
        rc = print_pem(cfg->ca_data, cfg->ca_data_len, cfg->ca_file);
    else if (strcmp(what, "cert") == 0)
        rc = print_pem(cfg->cert_data, cfg->cert_data_len, cfg->cert_file);
    else if (strcmp(what, "key") == 0)
        rc = print_pem(cfg->key_data, cfg->key_data_len, cfg->key_file);
    else
        printf("%s|%s|%s|%s|%s|%s|%s|%s\n", s(cfg->context), s(cfg->server), s(cfg->namespace_),
               s(cfg->token), cfg->insecure ? "true" : "false", s(cfg->tls_server_name),
               s(cfg->proxy_url), s(cfg->token_file));
    ism_kube_config_destroy(cfg);
    return rc;
}
