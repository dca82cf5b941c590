/* Fuzz target: the kubeconfig reader (YAML, schema, base64, merging rules
 * of one file).  Relative paths point into a directory that does not
 * exist, so file checks fail the same way every run. */
#include <config.h>
#include <stdint.h>

#include "fuzz.h"
#include "lib/kube/kube_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const contexts[] = { NULL, "c" };

    for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++) {
        ism_error_t err = ISM_ERROR_INIT;
        ism_kube_config_t *cfg = ism_kube_config_parse((const char *)data, size, "fuzz.yaml",
                                                       "/nonexistent-isthmus-fuzz", contexts[i],
                                                       &err);

        /* Whatever loads must be whole: a server, a namespace. */
        if (cfg && (!cfg->server || !cfg->namespace_))
            abort();
        if (!cfg && !err.text[0])
            abort();
        ism_kube_config_destroy(cfg);
    }
    return 0;
}
