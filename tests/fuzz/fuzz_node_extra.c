/* Fuzz target: merging our key into a node's Extra field, fed whatever an
 * admin may have typed there.  Whatever merges must read back equal, and
 * merging again must ask for no update.  A value that reads as a reference
 * must format back to the same reference, and a table of nodes holding the
 * text must give every node a share. */
#include <config.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lib/topology/extra_table.h"
#include "lib/topology/node_extra.h"

static const char topo[] = "{\"version\":1,\"cores\":[[0,0,0,0,0,\"0-1\",\"standard\"]]}";

static void check_holds_topo(const char *extra)
{
    char *got = ism_extra_get(extra, NULL);
    json_t *a = got ? json_loads(got, 0, NULL) : NULL, *b = json_loads(topo, 0, NULL);

    if (!a || !json_equal(a, b))
        abort();
    json_decref(a);
    json_decref(b);
    free(got);
}

static void check_reference(const char *extra)
{
    char *value = ism_extra_get(extra, NULL), *again;
    char digest[ISM_EXTRA_DIGEST_LEN + 1], back[ISM_EXTRA_DIGEST_LEN + 1];

    if (value && ism_extra_ref_parse(value, digest, NULL) == 1) {
        if (!(again = ism_extra_ref_format(digest, NULL)) ||
            ism_extra_ref_parse(again, back, NULL) != 1 || strcmp(digest, back) != 0)
            abort();
        free(again);
    }
    free(value);
}

static void check_table(const char *extra)
{
    const char *names[] = { "a", "b" }, *extras[] = { extra, extra };
    struct ism_topo_share *shares[2] = { NULL, NULL };
    ism_extra_table_t *t = ism_extra_table_create();

    if (t && ism_extra_table_update(t, 2, names, extras, shares) == 0) {
        if (!shares[0] || shares[0]->topo != shares[1]->topo)
            abort();
        ism_topo_share_put(shares[0]);
        ism_topo_share_put(shares[1]);
    }
    ism_extra_table_destroy(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte says whether to force. */
    bool force = size > 0 && (data[0] & 1);
    char *text = fuzz_text(size ? data + 1 : data, size ? size - 1 : 0), *merged = NULL;
    char *again = NULL;
    int rc;

    if (!text)
        return 0;
    free(ism_extra_get(text, NULL));
    check_reference(text);
    check_table(text);
    rc = ism_extra_merge(text, topo, force, &merged, NULL);
    if (rc == 1) {
        check_holds_topo(merged);
        if (ism_extra_merge(merged, topo, false, &again, NULL) != 0 || again)
            abort();
    } else if (rc == 0) {
        if (merged)
            abort();
        check_holds_topo(text);
    } else if (merged) {
        abort();
    }
    free(merged);
    free(text);
    return 0;
}
