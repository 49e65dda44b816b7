/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform.h"
#include "util.h"
#include "xenops-internal.h"

/* platform_describe() needs a string owned by the object; keeping it next to
 * the public struct avoids adding a field other code might have to fill. */
typedef struct PlatformImpl {
        Platform pub;
        char *description;
} PlatformImpl;

static PlatformImpl *impl_of(const Platform *p) {
        return (PlatformImpl *) ((char *) p - offsetof(PlatformImpl, pub));
}

static int make_absolute(const char *path, char **ret) {
        char *r = realpath(path, NULL);
        if (r) {
                *ret = r;
                return 0;
        }
        /* The directory may not exist yet: fall back to cwd + path. */
        if (path[0] == '/') {
                r = strdup(path);
                if (!r)
                        return -ENOMEM;
                *ret = r;
                return 0;
        }
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        if (!cwd)
                return negative_errno();
        if (asprintf(&r, "%s/%s", cwd, path) < 0)
                return -ENOMEM;
        *ret = r;
        return 0;
}

int platform_parse(const char *spec, uint32_t self_domid, Platform **ret) {
        if (!spec || !ret)
                return -EINVAL;

        _cleanup_free_ PlatformImpl *impl = calloc(1, sizeof(*impl));
        if (!impl)
                return -ENOMEM;
        impl->pub.self_domid = self_domid;

        if (streq(spec, "xen")) {
#if HAVE_XEN
                impl->pub.kind = PLATFORM_XEN;
                *ret = &TAKE_PTR(impl)->pub;
                return 0;
#else
                return -EOPNOTSUPP;
#endif
        }

        if (strncmp(spec, "sim:", 4) != 0 || spec[4] == '\0')
                return -EINVAL;
        if (self_domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;

        _cleanup_free_ char *dir = NULL;
        int r = make_absolute(spec + 4, &dir);
        if (r < 0)
                return r;
        _cleanup_free_ char *desc = NULL;
        if (asprintf(&desc, "sim:%s", dir) < 0)
                return -ENOMEM;

        impl->pub.kind = PLATFORM_SIM;
        impl->pub.sim_dir = TAKE_PTR(dir);
        impl->description = TAKE_PTR(desc);
        *ret = &TAKE_PTR(impl)->pub;
        return 0;
}

Platform *platform_free(Platform *p) {
        if (!p)
                return NULL;
        PlatformImpl *impl = impl_of(p);
        free(impl->pub.sim_dir);
        free(impl->description);
        free(impl);
        return NULL;
}

const char *platform_describe(const Platform *p) {
        if (!p)
                return "(none)";
        switch (p->kind) {
        case PLATFORM_XEN:
                return "xen";
        case PLATFORM_SIM:
                return impl_of(p)->description;
        }
        return "(unknown)";
}

int sim_hv_open(const Platform *p, int *ret_fd) {
        if (!p || p->kind != PLATFORM_SIM || !p->sim_dir)
                return -EINVAL;

        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/hv", p->sim_dir) < 0)
                return -ENOMEM;
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

int sim_lock_open(int hv_fd, int *ret_fd) {
        int fd = openat(hv_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

int sim_lock(int lock_fd, bool exclusive) {
        while (flock(lock_fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return 0;
}

void sim_unlock(int lock_fd) {
        (void) flock(lock_fd, LOCK_UN);
}

int platform_sim_destroy_domain(const Platform *p, uint32_t domid) {
        if (!p)
                return -EINVAL;
        switch (p->kind) {
        case PLATFORM_XEN:
                return -EOPNOTSUPP;
        case PLATFORM_SIM:
                break;
        }
        if (domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;

        _cleanup_close_ int hv_fd = -1, lock_fd = -1;
        int r = sim_hv_open(p, &hv_fd);
        if (r < 0)
                return r;
        r = sim_lock_open(hv_fd, &lock_fd);
        if (r < 0)
                return r;
        r = sim_lock(lock_fd, true);
        if (r < 0)
                return r;
        r = evtchn_sim_destroy_domain_locked(hv_fd, domid);
        int k = gnttab_sim_destroy_domain_locked(hv_fd, domid);
        sim_unlock(lock_fd);
        /* What xc_domain_getinfo would say about it: nothing. */
        int d = domain_sim_file_remove(hv_fd, domid);
        return r < 0 ? r : k < 0 ? k : d;
}
