/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Daemon logging. To the journal with structured fields (VTPM_DOMID,
 * VTPM_DEVID, VTPM_UUID) when stderr is connected to it (JOURNAL_STREAM),
 * otherwise one line per message on stderr:
 *   vtpmd: <level>: domid=3 devid=0 uuid=...: message
 */
#pragma once

#include <stdarg.h>
#include <stdint.h>
#include <syslog.h>

#include "util.h"

void log_open(const char *ident);
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
