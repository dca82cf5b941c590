/* Fuzz target: the OCI state isthmus-oci-hook reads on stdin.  Whatever
 * parses must hold a positive pid and a printable, non-empty id. */
#include <config.h>
#include <string.h>

#include "dra/hook.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ism_oci_state st;
    ism_error_t err = ISM_ERROR_INIT;
    size_t i;

    if (ism_oci_state_parse((const char *)data, size, &st, &err) == 0) {
        if (st.pid <= 0 || !st.id[0] || err.text[0])
            abort();
        for (i = 0; st.id[i]; i++)
            if (st.id[i] < 0x21 || st.id[i] > 0x7e)
                abort();
    } else if (!err.text[0]) {
        abort();
    }
    return 0;
}
