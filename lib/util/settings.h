/* settings.h - the keys of isthmus.conf(5).
 *
 * One schema for every isthmus program, so a key means the same thing
 * everywhere and an admin keeps one file.  Add a key here, in
 * doc/isthmus.conf.5 and in the test of the example file together.
 */
#ifndef ISTHMUS_SETTINGS_H
#define ISTHMUS_SETTINGS_H

#include "lib/util/conffile.h"

#ifndef ISM_SYSCONFDIR
#define ISM_SYSCONFDIR "/etc"
#endif
#define ISM_CONF_DEFAULT_PATH ISM_SYSCONFDIR "/isthmus/isthmus.conf"

extern const struct ism_config_key ism_settings_schema[];

/* Load the config file: path if given (it must exist), else the default
 * path if it exists, else the defaults.  Also the environment variable
 * ISTHMUS_CONF names the file when path is NULL. */
ism_config_t *ism_settings_load(const char *path, ism_error_t *err);

#endif
