/* settings.c - see settings.h */
#include <config.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "settings.h"

static const char *const log_levels[] = { "error", "warning", "notice", "info", "debug", NULL };

const struct ism_config_key ism_settings_schema[] = {
    { .name = "LogLevel", .type = ISM_CONFIG_CHOICE, .default_value = "notice",
      .choices = log_levels },
    { .name = "TopologyXML", .type = ISM_CONFIG_STRING },
    { .name = "NumaNodeAsSocket", .type = ISM_CONFIG_BOOL, .default_value = "no" },
    { .name = NULL },
};

ism_config_t *ism_settings_load(const char *path, ism_error_t *err)
{
    if (!path)
        path = getenv("ISTHMUS_CONF");
    if (path && *path)
        return ism_config_load(path, ism_settings_schema, err);
    if (access(ISM_CONF_DEFAULT_PATH, F_OK) == 0)
        return ism_config_load(ISM_CONF_DEFAULT_PATH, ism_settings_schema, err);
    return ism_config_defaults(ism_settings_schema, err);
}
