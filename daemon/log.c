/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *log_ident = "vtpmd";
static bool to_journal;

static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

void log_open(const char *ident) {
        log_ident = ident;
        to_journal = stderr_is_journal();
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_level_from_string(const char *s) {
        static const struct {
                const char *name;
                int level;
        } levels[] = {
                { "emerg", LOG_EMERG }, { "alert", LOG_ALERT },   { "crit", LOG_CRIT },
                { "err", LOG_ERR },     { "error", LOG_ERR },     { "warning", LOG_WARNING },
                { "notice", LOG_NOTICE }, { "info", LOG_INFO },   { "debug", LOG_DEBUG },
        };
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (streq(s, levels[i].name))
                        return levels[i].level;
        return -EINVAL;
}

static const char *level_name(int level) {
        switch (level) {
        case LOG_EMERG:
        case LOG_ALERT:
        case LOG_CRIT:
        case LOG_ERR:
                return "error";
        case LOG_WARNING:
                return "warning";
        case LOG_NOTICE:
                return "notice";
        case LOG_INFO:
                return "info";
        default:
                return "debug";
        }
}

void log_devv(int level, uint32_t domid, uint32_t devid, const char *uuid, const char *fmt, va_list ap) {
        char msg[1024];
        int saved = errno;

        if (level > max_level)
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);

        if (to_journal) {
                char f_domid[32] = "", f_devid[32] = "", f_uuid[64] = "";
                if (domid != UINT32_MAX)
                        snprintf(f_domid, sizeof(f_domid), "VTPM_DOMID=%u", domid);
                if (devid != UINT32_MAX)
                        snprintf(f_devid, sizeof(f_devid), "VTPM_DEVID=%u", devid);
                if (uuid)
                        snprintf(f_uuid, sizeof(f_uuid), "VTPM_UUID=%s", uuid);
                if (domid != UINT32_MAX)
                        sd_journal_send("MESSAGE=domid=%u devid=%u uuid=%s: %s", domid, devid, strempty(uuid), msg,
                                        "PRIORITY=%i", level, "SYSLOG_IDENTIFIER=%s", log_ident, f_domid, f_devid,
                                        uuid ? f_uuid : NULL, NULL);
                else
                        sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%i", level, "SYSLOG_IDENTIFIER=%s", log_ident,
                                        NULL);
        } else if (domid != UINT32_MAX)
                fprintf(stderr, "%s: %s: domid=%u devid=%u uuid=%s: %s\n", log_ident, level_name(level), domid,
                        devid, uuid ? uuid : "-", msg);
        else
                fprintf(stderr, "%s: %s: %s\n", log_ident, level_name(level), msg);
        errno = saved;
}

void log_dev(int level, uint32_t domid, uint32_t devid, const char *uuid, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_devv(level, domid, devid, uuid, fmt, ap);
        va_end(ap);
}

void log_msg(int level, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_devv(level, UINT32_MAX, UINT32_MAX, NULL, fmt, ap);
        va_end(ap);
}

int log_error_errno(int err, const char *fmt, ...) {
        char msg[900];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_msg(LOG_ERR, "%s: %s", msg, strerror(err < 0 ? -err : err));
        return err < 0 ? err : -err;
}
