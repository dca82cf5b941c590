/* settings.c - see settings.h */
#include <config.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/util/settings.h"

static const char *const log_levels[] = { "error", "warning", "notice", "info", "debug", NULL };

const struct ism_config_key ism_settings_schema[] = {
    { .name = "LogLevel", .type = ISM_CONFIG_CHOICE, .default_value = "notice",
      .choices = log_levels },
    { .name = "TopologyXML", .type = ISM_CONFIG_STRING },
    { .name = "NumaNodeAsSocket", .type = ISM_CONFIG_BOOL, .default_value = "no" },
    /* isthmusd(8) */
    { .name = "SlurmConf", .type = ISM_CONFIG_STRING },
    { .name = "Kubeconfig", .type = ISM_CONFIG_STRING },
    { .name = "KubeQPS", .type = ISM_CONFIG_INT, .default_value = "50", .min = 0, .max = 100000 },
    { .name = "KubeBurst", .type = ISM_CONFIG_INT, .default_value = "100", .min = 1,
      .max = 100000 },
    { .name = "Namespace", .type = ISM_CONFIG_STRING, .default_value = "isthmus-system" },
    { .name = "SlurmPollInterval", .type = ISM_CONFIG_INT, .default_value = "5", .min = 1,
      .max = 3600 },
    { .name = "SlurmNodePollInterval", .type = ISM_CONFIG_INT, .default_value = "30", .min = 1,
      .max = 3600 },
    { .name = "HttpListen", .type = ISM_CONFIG_STRING, .default_value = "0.0.0.0:9470" },
    { .name = "PidFile", .type = ISM_CONFIG_STRING, .default_value = "/run/isthmusd.pid" },
    { .name = "LeaderElection", .type = ISM_CONFIG_BOOL, .default_value = "yes" },
    { .name = "LeaseName", .type = ISM_CONFIG_STRING, .default_value = "isthmusd" },
    { .name = "LeaseDuration", .type = ISM_CONFIG_INT, .default_value = "15", .min = 2,
      .max = 3600 },
    { .name = "RenewDeadline", .type = ISM_CONFIG_INT, .default_value = "10", .min = 1,
      .max = 3600 },
    { .name = "RetryPeriod", .type = ISM_CONFIG_INT, .default_value = "2", .min = 1,
      .max = 3600 },
    { .name = "ReadyFailingTime", .type = ISM_CONFIG_INT, .default_value = "30", .min = 1,
      .max = 3600 },
    { .name = "TaintBridgedNodes", .type = ISM_CONFIG_BOOL, .default_value = "yes" },
    /* gangs: pods with schedulerName isthmus as Slurm allocations */
    { .name = "Gangs", .type = ISM_CONFIG_BOOL, .default_value = "yes" },
    { .name = "GangUser", .type = ISM_CONFIG_STRING },
    { .name = "GangPartition", .type = ISM_CONFIG_STRING },
    { .name = "GangAccount", .type = ISM_CONFIG_STRING },
    { .name = "GangQOS", .type = ISM_CONFIG_STRING },
    { .name = "GangTimeLimit", .type = ISM_CONFIG_STRING },
    { .name = "GangPolicy", .type = ISM_CONFIG_LIST },
    { .name = "GangWaitTimeout", .type = ISM_CONFIG_INT, .default_value = "300", .min = 0,
      .max = 86400 },
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
