/* log.c - see log.h */
#include <config.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "lib/util/log.h"

/* level is read by every ism_log call before it takes the lock (a dropped
 * line costs no lock), and may be set by another thread meanwhile (a
 * SIGHUP reload): it is only ever accessed atomically.  The rest is
 * guarded by lock. */
static struct {
    pthread_mutex_t lock;
    char ident[64];
    int level;
    enum ism_log_dest dest;
    ism_log_sink_f sink;
    void *sink_arg;
} logger = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .ident = "isthmus",
    .level = ISM_LOG_NOTICE,
    .dest = ISM_LOG_STDERR,
};

static const char *const level_names[] = {
    [ISM_LOG_ERR] = "error",   [ISM_LOG_WARNING] = "warning", [ISM_LOG_NOTICE] = "notice",
    [ISM_LOG_INFO] = "info",   [ISM_LOG_DEBUG] = "debug",
};

static bool level_valid(int level)
{
    return level >= ISM_LOG_ERR && level <= ISM_LOG_DEBUG;
}

void ism_log_open(const char *ident, enum ism_log_level level, enum ism_log_dest dest)
{
    pthread_mutex_lock(&logger.lock);
    snprintf(logger.ident, sizeof(logger.ident), "%s", ident ? ident : "isthmus");
    if (level_valid(level))
        __atomic_store_n(&logger.level, (int)level, __ATOMIC_RELAXED);
    logger.dest = dest;
    if (dest == ISM_LOG_SYSLOG)
        openlog(logger.ident, LOG_PID, LOG_DAEMON);
    pthread_mutex_unlock(&logger.lock);
}

void ism_log_close(void)
{
    pthread_mutex_lock(&logger.lock);
    if (logger.dest == ISM_LOG_SYSLOG)
        closelog();
    logger.dest = ISM_LOG_STDERR;
    pthread_mutex_unlock(&logger.lock);
}

void ism_log_set_level(enum ism_log_level level)
{
    if (level_valid(level))
        __atomic_store_n(&logger.level, (int)level, __ATOMIC_RELAXED);
}

enum ism_log_level ism_log_get_level(void)
{
    return (enum ism_log_level)__atomic_load_n(&logger.level, __ATOMIC_RELAXED);
}

void ism_log_set_sink(ism_log_sink_f sink, void *arg)
{
    pthread_mutex_lock(&logger.lock);
    logger.sink = sink;
    logger.sink_arg = arg;
    pthread_mutex_unlock(&logger.lock);
}

const char *ism_log_level_name(enum ism_log_level level)
{
    return level_valid(level) ? level_names[level] : "unknown";
}

int ism_log_level_parse(const char *s, enum ism_log_level *level, ism_error_t *err)
{
    if (!s || !level)
        return ism_err(err, EINVAL, "log level: missing argument");
    for (int l = ISM_LOG_ERR; l <= ISM_LOG_DEBUG; l++) {
        if (strcasecmp(s, level_names[l]) == 0) {
            *level = l;
            return 0;
        }
    }
    return ism_err(err, EINVAL,
                   "unknown log level '%s' (expected error, warning, notice, info or debug)", s);
}

void ism_log(enum ism_log_level level, const char *fmt, ...)
{
    int saved_errno = errno;
    char line[1024];
    va_list ap;

    if (!level_valid(level) || (int)level > __atomic_load_n(&logger.level, __ATOMIC_RELAXED))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&logger.lock);
    if (logger.sink)
        logger.sink(level, line, logger.sink_arg);
    else if (logger.dest == ISM_LOG_SYSLOG)
        syslog((int)level, "%s", line);
    else
        fprintf(stderr, "%s: %s: %s\n", logger.ident, level_names[level], line);
    pthread_mutex_unlock(&logger.lock);
    errno = saved_errno;
}
