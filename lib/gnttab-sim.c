/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Simulated grant tables (design and differences from Xen: gnttab.h).
 *
 * DIR/hv/gnt-<domid>/table is the domain's grant table: one GrantEntry per
 * ref. DIR/hv/gnt-<domid>/<ref> is the granted page itself, a 4 KiB file
 * that both sides mmap MAP_SHARED, so each sees the other's writes at once.
 * Revoking a grant unlinks the file: a peer that still has it mapped keeps
 * the (now anonymous) page until it unmaps, and nobody can map it again.
 * Every change happens under the global lock (DIR/hv/lock).
 *
 * The directory is 0700 and its files 0600, owned by whoever created them
 * (root in the simulation): a worker maps its guest's page before it drops
 * to its own uid, and afterwards neither the mode nor its Landlock rules
 * (which leave out DIR/hv) let it open another domain's, as on Xen where
 * its restricted gntdev handle can map nothing more (docs/security.md).
 *
 * The granting handle holds a shared flock on each page it shares. Locks
 * vanish with their process, so a mapper that can take an exclusive lock
 * knows the granter died; Linux's gntalloc revokes grants on release too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gnttab.h"
#include "util.h"
#include "xenops-internal.h"

/* Linux keeps the first 8 refs (GNTTAB_NR_RESERVED_ENTRIES) for xenstore and
 * the console, so a frontend's refs start at 8. */
#define SIM_FIRST_REF 8u

enum {
        GRANT_IN_USE = 1u << 0,
        GRANT_WRITABLE = 1u << 1,
};

typedef struct GrantEntry {
        uint32_t flags;
        uint32_t domid; /* the domain allowed to map it */
        uint32_t gen;   /* bumped on every share, so a stale unshare is a no-op */
        uint32_t reserved;
} GrantEntry;

static void dir_name(char buf[static 32], uint32_t domid) {
        snprintf(buf, 32, "gnt-%" PRIu32, domid);
}
static void ref_name(char buf[static 16], uint32_t ref) {
        snprintf(buf, 16, "%" PRIu32, ref);
}

static int entry_read(int table_fd, uint32_t ref, GrantEntry *ret) {
        GrantEntry e = { 0 };
        ssize_t n = pread(table_fd, &e, sizeof(e), (off_t) ref * (off_t) sizeof(e));
        if (n < 0)
                return negative_errno();
        if (n != (ssize_t) sizeof(e))
                e = (GrantEntry){ 0 }; /* beyond the end: never used */
        *ret = e;
        return 0;
}

static int entry_write(int table_fd, uint32_t ref, const GrantEntry *e) {
        ssize_t n = pwrite(table_fd, e, sizeof(*e), (off_t) ref * (off_t) sizeof(*e));
        if (n < 0)
                return negative_errno();
        return n == (ssize_t) sizeof(*e) ? 0 : -EIO;
}

static int open_domain_dir(int hv_fd, uint32_t domid, bool create, int *ret_dfd, int *ret_tfd) {
        char name[32];
        dir_name(name, domid);
        if (create && mkdirat(hv_fd, name, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        _cleanup_close_ int dfd = openat(hv_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        int tfd = openat(dfd, "table", O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
        if (tfd < 0)
                return negative_errno();
        *ret_dfd = TAKE_FD(dfd);
        *ret_tfd = tfd;
        return 0;
}

/* Revokes ref if it is still the grant of generation gen (0: any). */
static void revoke_locked(int dfd, int tfd, uint32_t ref, uint32_t gen) {
        GrantEntry e;
        if (entry_read(tfd, ref, &e) < 0 || !(e.flags & GRANT_IN_USE) || (gen != 0 && e.gen != gen))
                return;
        e.flags = 0;
        (void) entry_write(tfd, ref, &e);
        char name[16], gone[24];
        ref_name(name, ref);
        /* A peer may still have the page mapped: keep the file as "<ref>.gone"
         * so the ref is not handed out again until the peer unmaps. */
        snprintf(gone, sizeof(gone), "%s.gone", name);
        if (renameat(dfd, name, dfd, gone) < 0)
                (void) unlinkat(dfd, name, 0);
}

/* Whether a revoked page of ref is still mapped by some peer (each mapping
 * holds an OFD read lock on the page file; flock(2) locks are separate). */
static bool revoked_still_mapped(int dfd, uint32_t ref) {
        char gone[24];
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
        int fd;
        bool mapped;

        snprintf(gone, sizeof(gone), "%" PRIu32 ".gone", ref);
        fd = openat(dfd, gone, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        mapped = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
        close(fd);
        if (!mapped)
                (void) unlinkat(dfd, gone, 0);
        return mapped;
}

/* ---- mapping side ---- */

typedef struct GnttabSim {
        Gnttab base;
        int hv_fd;
        int lock_fd;
        uint32_t self;
        bool restricted;
        uint32_t restrict_domid;
        void **maps;
        int *map_fds; /* each holds an OFD read lock on its page file while mapped */
        size_t n_maps;
} GnttabSim;

static Gnttab *sim_gnttab_close(Gnttab *g) {
        GnttabSim *s = (GnttabSim *) g;
        for (size_t i = 0; i < s->n_maps; i++) {
                munmap(s->maps[i], VTPM_XEN_PAGE_SIZE);
                safe_close(s->map_fds[i]);
        }
        free(s->maps);
        free(s->map_fds);
        safe_close(s->lock_fd);
        safe_close(s->hv_fd);
        free(s);
        return NULL;
}

static int sim_gnttab_map(Gnttab *g, uint32_t domid, uint32_t ref, bool writable, void **ret_addr) {
        GnttabSim *s = (GnttabSim *) g;
        if (domid >= VTPM_DOMID_FIRST_RESERVED || ref >= VTPM_SIM_GRANT_REFS)
                return -EINVAL;
        if (s->restricted && domid != s->restrict_domid)
                return -EPERM;

        void **n = realloc(s->maps, (s->n_maps + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        s->maps = n;
        int *nf = realloc(s->map_fds, (s->n_maps + 1) * sizeof(*nf));
        if (!nf)
                return -ENOMEM;
        s->map_fds = nf;

        int r = sim_lock(s->lock_fd, true);
        if (r < 0)
                return r;

        _cleanup_close_ int dfd = -1, tfd = -1, pfd = -1;
        void *addr = MAP_FAILED;
        GrantEntry e;
        r = open_domain_dir(s->hv_fd, domid, false, &dfd, &tfd);
        if (r < 0) {
                r = r == -ENOENT ? -EINVAL : r;
                goto out;
        }
        r = entry_read(tfd, ref, &e);
        if (r < 0)
                goto out;
        if (!(e.flags & GRANT_IN_USE)) {
                r = -EINVAL;
                goto out;
        }
        if (e.domid != s->self) {
                r = -EPERM;
                goto out;
        }
        if (writable && !(e.flags & GRANT_WRITABLE)) {
                r = -EACCES;
                goto out;
        }
        char name[16];
        ref_name(name, ref);
        pfd = openat(dfd, name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (pfd < 0) {
                r = errno == ENOENT ? -EINVAL : negative_errno();
                goto out;
        }
        if (flock(pfd, LOCK_EX | LOCK_NB) == 0) {
                /* Nobody holds the granter's lock: the granting process
                 * died, and with it (as with gntalloc) the grant. */
                revoke_locked(dfd, tfd, ref, e.gen);
                r = -EINVAL;
                goto out;
        }
        addr = mmap(NULL, VTPM_XEN_PAGE_SIZE, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, pfd, 0);
        if (addr == MAP_FAILED) {
                r = negative_errno();
                goto out;
        }
        struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
        if (fcntl(pfd, F_OFD_SETLK, &fl) < 0) {
                r = negative_errno();
                munmap(addr, VTPM_XEN_PAGE_SIZE);
                goto out;
        }
        r = 0;
out:
        sim_unlock(s->lock_fd);
        if (r < 0)
                return r;
        s->map_fds[s->n_maps] = TAKE_FD(pfd);
        s->maps[s->n_maps++] = addr;
        *ret_addr = addr;
        return 0;
}

static int sim_gnttab_unmap(Gnttab *g, void *addr) {
        GnttabSim *s = (GnttabSim *) g;
        for (size_t i = 0; i < s->n_maps; i++) {
                if (s->maps[i] != addr)
                        continue;
                if (munmap(addr, VTPM_XEN_PAGE_SIZE) < 0)
                        return negative_errno();
                safe_close(s->map_fds[i]);
                s->map_fds[i] = s->map_fds[s->n_maps - 1];
                s->maps[i] = s->maps[--s->n_maps];
                return 0;
        }
        return -EINVAL;
}

static int sim_gnttab_restrict(Gnttab *g, uint32_t domid) {
        GnttabSim *s = (GnttabSim *) g;
        if (s->restricted)
                return s->restrict_domid == domid ? 0 : -EPERM;
        if (domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        s->restricted = true;
        s->restrict_domid = domid;
        return 0;
}

static const GnttabOps sim_gnttab_ops = {
        .close = sim_gnttab_close,
        .map = sim_gnttab_map,
        .unmap = sim_gnttab_unmap,
        .restrict_domid = sim_gnttab_restrict,
};

int gnttab_sim_open(const Platform *p, Gnttab **ret) {
        if (p->self_domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        GnttabSim *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base.ops = &sim_gnttab_ops;
        s->hv_fd = s->lock_fd = -1;
        s->self = p->self_domid;
        int r = sim_hv_open(p, &s->hv_fd);
        if (r >= 0)
                r = sim_lock_open(s->hv_fd, &s->lock_fd);
        if (r < 0) {
                sim_gnttab_close(&s->base);
                return r;
        }
        *ret = &s->base;
        return 0;
}

/* ---- granting side ---- */

typedef struct Share {
        void *addr;
        int fd; /* holds the granter's shared flock */
        uint32_t ref;
        uint32_t gen;
} Share;

typedef struct GntshrSim {
        Gntshr base;
        int hv_fd;
        int lock_fd;
        uint32_t self;
        Share *shares;
        size_t n_shares;
} GntshrSim;

static void share_drop_locked(GntshrSim *s, size_t i) {
        Share *sh = &s->shares[i];
        int dfd = -1, tfd = -1;
        /* The directory is gone if the domain was destroyed meanwhile. */
        if (open_domain_dir(s->hv_fd, s->self, false, &dfd, &tfd) >= 0)
                revoke_locked(dfd, tfd, sh->ref, sh->gen);
        safe_close(dfd);
        safe_close(tfd);
        munmap(sh->addr, VTPM_XEN_PAGE_SIZE);
        safe_close(sh->fd);
        s->shares[i] = s->shares[--s->n_shares];
}

static Gntshr *sim_gntshr_close(Gntshr *g) {
        GntshrSim *s = (GntshrSim *) g;
        bool locked = s->lock_fd >= 0 && sim_lock(s->lock_fd, true) >= 0;
        while (s->n_shares > 0)
                share_drop_locked(s, s->n_shares - 1);
        if (locked)
                sim_unlock(s->lock_fd);
        free(s->shares);
        safe_close(s->lock_fd);
        safe_close(s->hv_fd);
        free(s);
        return NULL;
}

static int sim_gntshr_share(Gntshr *g, uint32_t domid, bool writable, uint32_t *ret_ref, void **ret_addr) {
        GntshrSim *s = (GntshrSim *) g;
        if (domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;

        Share *n = realloc(s->shares, (s->n_shares + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        s->shares = n;

        int r = sim_lock(s->lock_fd, true);
        if (r < 0)
                return r;

        _cleanup_close_ int dfd = -1, tfd = -1, pfd = -1;
        void *addr = MAP_FAILED;
        uint32_t ref = 0;
        GrantEntry e = { 0 };
        char name[16];
        r = open_domain_dir(s->hv_fd, s->self, true, &dfd, &tfd);
        if (r < 0)
                goto out;
        r = -ENOSPC;
        /* The lowest free ref, like Linux's grant allocator, except one whose
         * revoked page a peer still has mapped: Linux holds such a ref back
         * (gnttab_end_foreign_access defers), which is why a resumed frontend
         * publishes a new ring-ref while a re-attached one gets the old. */
        for (uint32_t i = SIM_FIRST_REF; i < VTPM_SIM_GRANT_REFS; i++) {
                GrantEntry c;
                int k = entry_read(tfd, i, &c);
                if (k < 0) {
                        r = k;
                        goto out;
                }
                if (!(c.flags & GRANT_IN_USE) && !revoked_still_mapped(dfd, i)) {
                        ref = i;
                        e = c;
                        r = 0;
                        break;
                }
        }
        if (r < 0)
                goto out;

        ref_name(name, ref);
        /* A revoked page may still be mapped by a peer: never reuse its
         * file, make a new one. */
        (void) unlinkat(dfd, name, 0);
        pfd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (pfd < 0) {
                r = negative_errno();
                goto out;
        }
        if (ftruncate(pfd, VTPM_XEN_PAGE_SIZE) < 0 || flock(pfd, LOCK_SH) < 0) {
                r = negative_errno();
                goto out_unlink;
        }
        addr = mmap(NULL, VTPM_XEN_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
        if (addr == MAP_FAILED) {
                r = negative_errno();
                goto out_unlink;
        }
        e.flags = GRANT_IN_USE | (writable ? GRANT_WRITABLE : 0);
        e.domid = domid;
        e.gen++;
        r = entry_write(tfd, ref, &e);
        if (r < 0) {
                munmap(addr, VTPM_XEN_PAGE_SIZE);
                goto out_unlink;
        }
        s->shares[s->n_shares++] = (Share){ .addr = addr, .fd = TAKE_FD(pfd), .ref = ref, .gen = e.gen };
        goto out;
out_unlink:
        (void) unlinkat(dfd, name, 0);
out:
        sim_unlock(s->lock_fd);
        if (r < 0)
                return r;
        *ret_ref = ref;
        *ret_addr = addr;
        return 0;
}

static int sim_gntshr_unshare(Gntshr *g, void *addr) {
        GntshrSim *s = (GntshrSim *) g;
        for (size_t i = 0; i < s->n_shares; i++) {
                if (s->shares[i].addr != addr)
                        continue;
                int r = sim_lock(s->lock_fd, true);
                if (r < 0)
                        return r;
                share_drop_locked(s, i);
                sim_unlock(s->lock_fd);
                return 0;
        }
        return -EINVAL;
}

static const GntshrOps sim_gntshr_ops = {
        .close = sim_gntshr_close,
        .share = sim_gntshr_share,
        .unshare = sim_gntshr_unshare,
};

int gntshr_sim_open(const Platform *p, Gntshr **ret) {
        if (p->self_domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        GntshrSim *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base.ops = &sim_gntshr_ops;
        s->hv_fd = s->lock_fd = -1;
        s->self = p->self_domid;
        int r = sim_hv_open(p, &s->hv_fd);
        if (r >= 0)
                r = sim_lock_open(s->hv_fd, &s->lock_fd);
        if (r < 0) {
                sim_gntshr_close(&s->base);
                return r;
        }
        *ret = &s->base;
        return 0;
}

int gnttab_sim_destroy_domain_locked(int hv_fd, uint32_t domid) {
        char name[32];
        dir_name(name, domid);
        int dfd = openat(hv_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return errno == ENOENT ? 0 : negative_errno();
        DIR *d = fdopendir(dfd);
        if (!d) {
                int r = negative_errno();
                safe_close(dfd);
                return r;
        }
        /* Unlinking revokes: mappers keep their pages until they unmap. */
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        if (unlinkat(hv_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}
