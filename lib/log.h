/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging, one module for every process (vtpmd, vtpmd-worker and the
 * manufacturing helper). Library code does not log above debug; the daemons
 * log once, where they decide.
 *
 * A line carries the guest it is about as fields (domid, devid, uuid). Where
 * it goes:
 *  - a sink, if one is set (vtpmd sets the journal's when its stderr is the
 *    journal stream, so that the fields become VTPM_DOMID, VTPM_DEVID and
 *    VTPM_UUID); lib/ itself never links the journal;
 *  - otherwise stderr, one write(2) per line so that the lines of several
 *    processes sharing the stream never interleave:
 *      LOG_STYLE_DAEMON   vtpmd: error: domid=3 devid=0 uuid=...: message
 *      LOG_STYLE_WORKER   vtpmd-worker[PID]: domid=3 devid=0 uuid=...: message
 *    (a worker serves one guest: its fields are set once, log_set_guest()).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "ratelimit.h"
#include "util.h"

typedef enum LogStyle {
        LOG_STYLE_DAEMON, /* "ident: level: " */
        LOG_STYLE_WORKER, /* "ident[pid]: ", no level */
} LogStyle;

/* domid/devid UINT32_MAX and uuid NULL when unknown. */
typedef void (*LogSink)(int level, const char *ident, uint32_t domid, uint32_t devid, const char *uuid,
                        const char *message);

void log_open(const char *ident, LogStyle style);
void log_set_sink(LogSink sink);
/* The guest every line of this process is about (a worker's), or none. */
void log_set_guest(uint32_t domid, uint32_t devid, const char *uuid);

void log_set_max_level(int level);
int log_get_max_level(void);
/* "err", "warning", "notice", "info", "debug" -> LOG_*; -EINVAL otherwise */
int log_level_from_string(const char *s);

void log_msg(int level, const char *fmt, ...) _printf_(2, 3);
/* domid/devid may be UINT32_MAX and uuid NULL when unknown. */
void log_dev(int level, uint32_t domid, uint32_t devid, const char *uuid, const char *fmt, ...) _printf_(5, 6);
void log_devv(int level, uint32_t domid, uint32_t devid, const char *uuid, const char *fmt, va_list ap);

/* Logs at LOG_ERR with ": <strerror>" appended and returns err (negative errno). */
int log_error_errno(int err, const char *fmt, ...) _printf_(2, 3);
/* The same at any level, about a guest; returns err. */
int log_dev_errno(int level, int err, uint32_t domid, uint32_t devid, const char *uuid, const char *fmt, ...)
        _printf_(6, 7);

/* Anything a guest can trigger goes through a RateLimit (protocol/ratelimit.h):
 * true if this line may be logged. When a window opens after drops, it first
 * logs at LOG_WARNING how many `kind` messages were suppressed (with the
 * process's guest fields, or these). */
bool log_ratelimit(RateLimit *rl, const char *kind, uint32_t domid, uint32_t devid, const char *uuid);

/* TPM payloads, only behind the trace switch: "trace: what (N bytes): hex". */
void log_hex(const char *what, const uint8_t *buf, size_t len);
