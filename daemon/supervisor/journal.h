/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd's log sink (lib/log.h) for the journal: when stderr is connected to
 * it (JOURNAL_STREAM), every line goes through sd_journal_send() with the
 * guest as structured fields VTPM_DOMID, VTPM_DEVID and VTPM_UUID.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* True when stderr is the journal's stream (systemd sets JOURNAL_STREAM). */
bool journal_is_stderr(void);
void journal_log_sink(int level, const char *ident, uint32_t domid, uint32_t devid, const char *uuid,
                      const char *message);
