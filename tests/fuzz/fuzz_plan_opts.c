/* Fuzz target: the layout option parser (--isthmus-bind=, plugstack.conf).
 * A failed parse leaves the options untouched and says why; a text that
 * parses, written back in canonical words, parses to the same options. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "lib/topology/planner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ism_plan_opts o = ISM_PLAN_OPTS_INIT, before = o, again = ISM_PLAN_OPTS_INIT;
    ism_error_t err = ISM_ERROR_INIT;
    char *text = fuzz_text(data, size), canon[128];

    if (!text)
        return 0;
    if (ism_plan_opts_parse(text, &o, &err) < 0) {
        if (err.text[0] == '\0' || memcmp(&o, &before, sizeof(o)) != 0)
            abort();
    } else {
        snprintf(canon, sizeof(canon), "layout=%s,mem=%s%s", ism_layout_name(o.layout),
                 ism_mem_name(o.mem), o.verbose ? ",verbose" : "");
        if (ism_plan_opts_parse(canon, &again, NULL) < 0 || again.layout != o.layout ||
            again.mem != o.mem || again.verbose != o.verbose)
            abort();
    }
    free(text);
    return 0;
}
