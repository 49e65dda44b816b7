/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Domain information (domain.h): the simulated hypervisor's domain files and
 * the dispatch to libxenctrl (domain-xen.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domain.h"
#include "platform.h"
#include "statefile.h"
#include "util.h"
#include "xenops-internal.h"

#define DOMAIN_FILE_MAX 256u

struct DomainCtl {
        PlatformKind kind;
        const Platform *platform;
        void *xen; /* domain-xen.c's handle */
};

static const char *const shutdown_names[] = {
        [DOMAIN_SHUTDOWN_POWEROFF] = "poweroff", [DOMAIN_SHUTDOWN_REBOOT] = "reboot",
        [DOMAIN_SHUTDOWN_SUSPEND] = "suspend",   [DOMAIN_SHUTDOWN_CRASH] = "crash",
        [DOMAIN_SHUTDOWN_WATCHDOG] = "watchdog", [DOMAIN_SHUTDOWN_SOFT_RESET] = "soft_reset",
};

const char *domain_shutdown_to_string(DomainShutdown r) {
        if ((unsigned) r < ELEMENTSOF(shutdown_names))
                return shutdown_names[r];
        return "unknown";
}

int domain_shutdown_from_string(const char *s, DomainShutdown *ret) {
        for (unsigned i = 0; i < ELEMENTSOF(shutdown_names); i++)
                if (streq(s, shutdown_names[i])) {
                        *ret = (DomainShutdown) i;
                        return 0;
                }
        return -EINVAL;
}

bool domain_info_suspended(const DomainInfo *i) {
        return i->shutdown && i->reason == DOMAIN_SHUTDOWN_SUSPEND && !i->dying;
}

static int domain_file_name(uint32_t domid, char *buf, size_t size) {
        if (domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        snprintf(buf, size, "domain-%" PRIu32, domid);
        return 0;
}

/* The file's text: every line known, both keys present. */
static int domain_sim_parse(char *text, DomainInfo *ret) {
        DomainInfo info = { 0 };
        bool have_uuid = false, have_shutdown = false;

        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '=');
                if (!eq)
                        return -EBADMSG;
                *eq = '\0';
                const char *value = eq + 1;
                if (streq(line, "uuid")) {
                        if (statefile_uuid_from_string(value, info.handle) < 0)
                                return -EBADMSG;
                        have_uuid = true;
                } else if (streq(line, "shutdown")) {
                        if (streq(value, "none"))
                                info.shutdown = false;
                        else if (domain_shutdown_from_string(value, &info.reason) == 0)
                                info.shutdown = true;
                        else
                                return -EBADMSG;
                        have_shutdown = true;
                } else
                        return -EBADMSG;
        }
        if (!have_uuid || !have_shutdown)
                return -EBADMSG;
        *ret = info;
        return 0;
}

static int domain_sim_info(const Platform *p, uint32_t domid, DomainInfo *ret) {
        _cleanup_close_ int hv_fd = -1, fd = -1;
        char name[32], text[DOMAIN_FILE_MAX + 1];
        ssize_t n;
        int r;

        r = domain_file_name(domid, name, sizeof(name));
        if (r < 0)
                return -ENOENT;
        r = sim_hv_open(p, &hv_fd);
        if (r < 0)
                return r;
        fd = openat(hv_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        n = read(fd, text, DOMAIN_FILE_MAX + 1);
        if (n < 0)
                return negative_errno();
        if ((size_t) n > DOMAIN_FILE_MAX)
                return -EBADMSG;
        text[n] = '\0';
        return domain_sim_parse(text, ret);
}

int domain_sim_set(const Platform *p, uint32_t domid, const DomainInfo *info) {
        _cleanup_close_ int hv_fd = -1, fd = -1;
        char name[32], tmp[48], uuid[37], text[DOMAIN_FILE_MAX];
        int r, len;

        if (!p || p->kind != PLATFORM_SIM)
                return -EOPNOTSUPP;
        r = domain_file_name(domid, name, sizeof(name));
        if (r < 0)
                return r;
        r = sim_hv_open(p, &hv_fd);
        if (r < 0)
                return r;
        statefile_uuid_to_string(info->handle, uuid);
        len = snprintf(text, sizeof(text), "uuid=%s\nshutdown=%s\n", uuid,
                       info->shutdown ? domain_shutdown_to_string(info->reason) : "none");
        snprintf(tmp, sizeof(tmp), "%s.tmp", name);
        fd = openat(hv_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return negative_errno();
        ssize_t k = write(fd, text, (size_t) len);
        if (k != len)
                r = k < 0 ? negative_errno() : -EIO;
        else if (renameat(hv_fd, tmp, hv_fd, name) < 0)
                r = negative_errno();
        else
                return 0;
        (void) unlinkat(hv_fd, tmp, 0);
        return r;
}

int domain_sim_file_remove(int hv_fd, uint32_t domid) {
        char name[32];
        int r = domain_file_name(domid, name, sizeof(name));

        if (r < 0)
                return r;
        if (unlinkat(hv_fd, name, 0) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

int domain_sim_remove(const Platform *p, uint32_t domid) {
        _cleanup_close_ int hv_fd = -1;
        int r;

        if (!p || p->kind != PLATFORM_SIM)
                return -EOPNOTSUPP;
        r = sim_hv_open(p, &hv_fd);
        if (r < 0)
                return r;
        return domain_sim_file_remove(hv_fd, domid);
}

int domainctl_open(const Platform *p, DomainCtl **ret) {
        _cleanup_free_ DomainCtl *d = calloc(1, sizeof(*d));
        int r;

        if (!d)
                return -ENOMEM;
        if (!p)
                return -EINVAL;
        d->kind = p->kind;
        d->platform = p;
        switch (p->kind) {
        case PLATFORM_SIM:
                break;
        case PLATFORM_XEN:
#if HAVE_XENCTRL
                r = domain_xen_open(&d->xen);
                if (r < 0)
                        return r;
                break;
#else
                (void) r;
                return -EOPNOTSUPP;
#endif
        }
        *ret = TAKE_PTR(d);
        return 0;
}

DomainCtl *domainctl_free(DomainCtl *d) {
        if (!d)
                return NULL;
#if HAVE_XENCTRL
        if (d->xen)
                domain_xen_close(d->xen);
#endif
        free(d);
        return NULL;
}

int domainctl_info(DomainCtl *d, uint32_t domid, DomainInfo *ret) {
        switch (d->kind) {
        case PLATFORM_SIM:
                return domain_sim_info(d->platform, domid, ret);
        case PLATFORM_XEN:
#if HAVE_XENCTRL
                return domain_xen_info(d->xen, domid, ret);
#else
                return -EOPNOTSUPP;
#endif
        }
        return -EINVAL;
}
