/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

/* A message is cut at this length: it is one line of a log. */
#define LOG_LINE_MAX 1024

static int max_level = LOG_INFO;
static const char *log_ident = "vtpmd";
static LogStyle log_style = LOG_STYLE_DAEMON;
static LogSink log_sink;
/* log_set_guest(): "domid=D devid=N uuid=U" of this process, or none. */
static struct {
        bool set;
        uint32_t domid, devid;
        char uuid[40];
} guest;
/* LOG_STYLE_WORKER: "ident[pid]", bounded by the ident and 10 digits. */
static char worker_prefix[96];

void log_open(const char *ident, LogStyle style) {
        log_ident = ident;
        log_style = style;
        if (style == LOG_STYLE_WORKER)
                snprintf(worker_prefix, sizeof(worker_prefix), "%s[%d]", ident, (int) getpid());
}

void log_set_sink(LogSink sink) {
        log_sink = sink;
}

void log_set_guest(uint32_t domid, uint32_t devid, const char *uuid) {
        guest.set = uuid != NULL;
        guest.domid = domid;
        guest.devid = devid;
        snprintf(guest.uuid, sizeof(guest.uuid), "%s", strempty(uuid));
        /* A worker forked by the fork server has a pid of its own. */
        if (log_style == LOG_STYLE_WORKER)
                snprintf(worker_prefix, sizeof(worker_prefix), "%s[%d]", log_ident, (int) getpid());
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

static void write_stderr(int level, uint32_t domid, uint32_t devid, const char *uuid, const char *msg) {
        char head[256];
        int n;

        if (log_style == LOG_STYLE_WORKER)
                n = domid != UINT32_MAX ? snprintf(head, sizeof(head), "%s: domid=%u devid=%u uuid=%s: ",
                                                   worker_prefix, domid, devid, uuid ? uuid : "-")
                                        : snprintf(head, sizeof(head), "%s: ", worker_prefix);
        else
                n = domid != UINT32_MAX ? snprintf(head, sizeof(head), "%s: %s: domid=%u devid=%u uuid=%s: ",
                                                   log_ident, level_name(level), domid, devid, uuid ? uuid : "-")
                                        : snprintf(head, sizeof(head), "%s: %s: ", log_ident, level_name(level));
        if (n < 0)
                return;
        struct iovec iov[3] = {
                { head, (size_t) n < sizeof(head) ? (size_t) n : sizeof(head) - 1 },
                { (char *) msg, strlen(msg) },
                { (char *) "\n", 1 },
        };
        (void) !writev(STDERR_FILENO, iov, ELEMENTSOF(iov));
}

void log_devv(int level, uint32_t domid, uint32_t devid, const char *uuid, const char *fmt, va_list ap) {
        char msg[LOG_LINE_MAX];
        int saved = errno;

        if (level > max_level)
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (domid == UINT32_MAX && !uuid && guest.set) {
                domid = guest.domid;
                devid = guest.devid;
                uuid = guest.uuid;
        }
        if (log_sink)
                log_sink(level, log_ident, domid, devid, uuid, msg);
        else
                write_stderr(level, domid, devid, uuid, msg);
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

static int log_errno_v(int level, int err, uint32_t domid, uint32_t devid, const char *uuid, const char *fmt,
                       va_list ap) {
        char msg[LOG_LINE_MAX - 64];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        log_dev(level, domid, devid, uuid, "%s: %s", msg, strerror(err < 0 ? -err : err));
        return err < 0 ? err : -err;
}

int log_error_errno(int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_errno_v(LOG_ERR, err, UINT32_MAX, UINT32_MAX, NULL, fmt, ap);
        va_end(ap);
        return r;
}

int log_dev_errno(int level, int err, uint32_t domid, uint32_t devid, const char *uuid, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_errno_v(level, err, domid, devid, uuid, fmt, ap);
        va_end(ap);
        return r;
}

bool log_ratelimit(RateLimit *rl, const char *kind, uint32_t domid, uint32_t devid, const char *uuid) {
        unsigned suppressed = 0;
        bool ok = ratelimit_below(rl, now_ns(), &suppressed);

        if (suppressed)
                log_dev(LOG_WARNING, domid, devid, uuid, "suppressed %u %s message(s)", suppressed, kind);
        return ok;
}

void log_hex(const char *what, const uint8_t *buf, size_t len) {
        _cleanup_free_ char *hex = malloc(len * 2 + 1);

        if (!hex)
                return;
        for (size_t i = 0; i < len; i++)
                snprintf(hex + 2 * i, 3, "%02x", buf[i]);
        hex[2 * len] = 0;
        /* Longer than a line (LOG_LINE_MAX): logged in pieces so that nothing is cut. */
        size_t off = 0, n = 2 * len;
        do {
                int piece = (int) (n - off < 900 ? n - off : 900);
                log_msg(LOG_DEBUG, "trace: %s (%zu bytes)%s%.*s", what, len, off ? ", continued: " : ": ", piece,
                        hex + off);
                off += 900;
        } while (off < n);
}
