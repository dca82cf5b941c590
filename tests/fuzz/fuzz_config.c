/* Fuzz target: the isthmus.conf reader, on the real schema.  The input is
 * written to a file because the reader takes paths (and follows Includes:
 * an Include of a missing file must fail cleanly). */
#include <config.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "lib/util/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    ism_config_t *cfg;
    FILE *f;

    if (!path[0])
        snprintf(path, sizeof(path), "/tmp/isthmus-fuzz-config-%d.conf", (int)getpid());
    if (!(f = fopen(path, "w")))
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    if ((cfg = ism_config_load(path, ism_settings_schema, NULL))) {
        for (int i = 0; ism_settings_schema[i].name; i++)
            (void)ism_config_get(cfg, ism_settings_schema[i].name);
        ism_config_destroy(cfg);
    }
    unlink(path);
    return 0;
}
