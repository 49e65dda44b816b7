/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "journal.h"
#include "util.h"

bool journal_is_stderr(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

void journal_log_sink(int level, const char *ident, uint32_t domid, uint32_t devid, const char *uuid,
                      const char *message) {
        _cleanup_free_ char *text = NULL;
        char priority[32], id[128], f_domid[32], f_devid[32], f_uuid[64];
        struct iovec iov[6];
        size_t n = 0;

        if (domid != UINT32_MAX && asprintf(&text, "MESSAGE=domid=%u devid=%u uuid=%s: %s", domid, devid,
                                            uuid ? uuid : "-", message) < 0)
                text = NULL;
        if (!text && asprintf(&text, "MESSAGE=%s", message) < 0)
                return;
        snprintf(priority, sizeof(priority), "PRIORITY=%i", level);
        snprintf(id, sizeof(id), "SYSLOG_IDENTIFIER=%s", ident);
        iov[n++] = (struct iovec){ text, strlen(text) };
        iov[n++] = (struct iovec){ priority, strlen(priority) };
        iov[n++] = (struct iovec){ id, strlen(id) };
        if (domid != UINT32_MAX) {
                snprintf(f_domid, sizeof(f_domid), "VTPM_DOMID=%u", domid);
                iov[n++] = (struct iovec){ f_domid, strlen(f_domid) };
        }
        if (devid != UINT32_MAX) {
                snprintf(f_devid, sizeof(f_devid), "VTPM_DEVID=%u", devid);
                iov[n++] = (struct iovec){ f_devid, strlen(f_devid) };
        }
        if (uuid) {
                snprintf(f_uuid, sizeof(f_uuid), "VTPM_UUID=%s", uuid);
                iov[n++] = (struct iovec){ f_uuid, strlen(f_uuid) };
        }
        (void) sd_journal_sendv(iov, (int) n);
}
