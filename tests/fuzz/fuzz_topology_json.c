/* Fuzz target: the topology JSON decoder, fed whatever a Slurm node's Extra
 * field may hold.  Whatever decodes must re-encode and decode to an equal
 * topology. */
#include <config.h>
#include <stdlib.h>

#include "fuzz.h"
#include "lib/topology/topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    ism_topo_t *topo, *again;
    char *json;

    if (!text)
        return 0;
    if ((topo = ism_topo_decode(text, NULL))) {
        if (!(json = ism_topo_encode(topo, NULL)) || !(again = ism_topo_decode(json, NULL)) ||
            !ism_topo_equal(topo, again))
            abort();
        ism_topo_destroy(again);
        free(json);
        ism_topo_destroy(topo);
    }
    free(text);
    return 0;
}
