/* log.h - leveled logging to stderr (default) or syslog.
 *
 * One line per call, written whole, safe from several threads.  A process
 * sets its identity and level once with ism_log_open(); components living
 * inside another program (the SPANK plugin in slurmstepd) install a sink
 * with ism_log_set_sink() so lines go where the host program logs.
 */
#ifndef ISTHMUS_LOG_H
#define ISTHMUS_LOG_H

#include <stdbool.h>
#include "lib/util/error.h"

enum ism_log_level {
    ISM_LOG_ERR = 3,     /* same numbers as syslog(3) priorities */
    ISM_LOG_WARNING = 4,
    ISM_LOG_NOTICE = 5,
    ISM_LOG_INFO = 6,
    ISM_LOG_DEBUG = 7,
};

enum ism_log_dest {
    ISM_LOG_STDERR,
    ISM_LOG_SYSLOG,
};

typedef void (*ism_log_sink_f)(enum ism_log_level level, const char *line, void *arg);

/* Set the identity (copied), threshold and destination.  Lines above the
 * threshold are dropped.  Calling it again changes all three. */
void ism_log_open(const char *ident, enum ism_log_level level, enum ism_log_dest dest);
void ism_log_close(void);
void ism_log_set_level(enum ism_log_level level);
enum ism_log_level ism_log_get_level(void);

/* Route every line to sink (NULL restores the destination of ism_log_open). */
void ism_log_set_sink(ism_log_sink_f sink, void *arg);

/* Parse "error", "warning", "notice", "info" or "debug" (any case). */
int ism_log_level_parse(const char *s, enum ism_log_level *level, ism_error_t *err);
const char *ism_log_level_name(enum ism_log_level level);

void ism_log(enum ism_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ism_log_error(...) ism_log(ISM_LOG_ERR, __VA_ARGS__)
#define ism_log_warn(...) ism_log(ISM_LOG_WARNING, __VA_ARGS__)
#define ism_log_notice(...) ism_log(ISM_LOG_NOTICE, __VA_ARGS__)
#define ism_log_info(...) ism_log(ISM_LOG_INFO, __VA_ARGS__)
#define ism_log_debug(...) ism_log(ISM_LOG_DEBUG, __VA_ARGS__)

#endif
