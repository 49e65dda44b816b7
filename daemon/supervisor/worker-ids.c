/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "subid.h"
#include "util.h"
#include "worker-ids.h"

/* /etc/subuid holds one short line per user: a few MiB is far beyond any real one. */
#define SUBID_FILE_MAX (16u << 20)
/* Groups of earlier ranges vtpmd joins at most; each range is one group. */
#define PREVIOUS_GROUPS_MAX 16

static int read_small_file(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;

        if (fd < 0)
                return negative_errno();
        for (;;) {
                if (len == cap) {
                        if (cap >= SUBID_FILE_MAX)
                                return -EFBIG;
                        cap = cap ? cap * 2 : 4096;
                        char *p = realloc(buf, cap);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int check_file(const VtpmdConfig *c, const char *path, const char *what) {
        _cleanup_free_ char *buf = NULL;
        SubidOverlap o;
        size_t len = 0;
        int r;

        r = read_small_file(path, &buf, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Cannot read %s to check WorkerIDs=%u-%u against its %s", path,
                                       c->worker_id_first, c->worker_id_last, what);
        if (subid_find_overlap(buf, len, c->worker_id_first, c->worker_id_last, &o) == 0)
                return 0;
        log_msg(LOG_ERR, "%s:%u: WorkerIDs=%u-%u overlaps %s's %s %u-%u: choose another WorkerIDs= (vtpmd.conf(5)); "
                "not starting", path, o.line, c->worker_id_first, c->worker_id_last, o.name, what, o.first, o.last);
        return -ENOTUNIQ;
}

int worker_ids_check(const VtpmdConfig *c) {
        int r;

        if (!c->worker_id_first)
                return 0;
        r = check_file(c, c->subuid_path, "subordinate uids");
        if (r < 0)
                return r;
        return check_file(c, c->subgid_path, "subordinate gids");
}

int worker_ids_check_instances(const VtpmdConfig *c, const char *dir, const char *prefix, const char *own_path) {
        _cleanup_close_ int dfd = -1;
        DIR *d;
        int r = 0;

        if (!c->worker_id_first || geteuid() != 0)
                return 0;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return 0;
        d = fdopendir(dfd);
        if (!d)
                return 0;
        dfd = -1; /* d's now */
        const char *own = strrchr(own_path, '/') ? strrchr(own_path, '/') + 1 : own_path;
        for (struct dirent *de; r == 0 && (de = readdir(d));) {
                size_t n = strlen(de->d_name);
                if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || n < 5 || !streq(de->d_name + n - 5, ".lock") ||
                    streq(de->d_name, own))
                        continue;
                _cleanup_close_ int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0)
                        continue;
                /* Not held: a vtpmd that is gone. */
                if (flock(fd, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
                        continue;
                char line[PATH_MAX + 128] = "";
                ssize_t k = pread(fd, line, sizeof(line) - 1, 0);
                line[k > 0 ? k : 0] = 0;
                line[strcspn(line, "\n")] = 0;
                const char *w = strstr(line, "workers ");
                uint32_t a, b;
                char range[32];
                if (!w || sscanf(w + 8, "%31[0-9-]", range) != 1 || parse_u32_range(range, &a, &b) < 0)
                        continue; /* none, or a vtpmd that does not say */
                if (a > c->worker_id_last || b < c->worker_id_first)
                        continue;
                log_msg(LOG_ERR, "WorkerIDs=%u-%u overlaps the workers of another vtpmd on this host (%s, lock %s/%s): "
                        "give each vtpmd its own WorkerIDs= (vtpmd.conf(5)); not starting", c->worker_id_first,
                        c->worker_id_last, line, dir, de->d_name);
                r = -ENOTUNIQ;
        }
        closedir(d);
        return r;
}

static bool have_gid(const gid_t *g, size_t n, gid_t gid) {
        for (size_t i = 0; i < n; i++)
                if (g[i] == gid)
                        return true;
        return false;
}

/* The groups of the vTPM directories in root that are not 0 and not ours:
 * only names and inodes are looked at (fstatat), so a directory vtpmd
 * cannot open yet is seen too. A root that does not exist yet has none. */
static void previous_groups(const char *root, gid_t ours, gid_t *g, size_t *n) {
        _cleanup_close_ int fd = -1;
        DIR *d;

        if (!root)
                return;
        fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d)
                return;
        fd = -1; /* d's now */
        for (struct dirent *de; (de = readdir(d));) {
                char canon[37];
                struct stat st;
                if (parse_uuid(de->d_name, canon) < 0 || !streq(canon, de->d_name))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (st.st_gid == 0 || st.st_gid == ours || have_gid(g, *n, st.st_gid))
                        continue;
                if (*n == PREVIOUS_GROUPS_MAX) {
                        log_msg(LOG_WARNING, "More than %u earlier WorkerIDs= groups own vTPM directories in %s; "
                                "vtpmd may not be able to open some of them", PREVIOUS_GROUPS_MAX, root);
                        break;
                }
                g[(*n)++] = st.st_gid;
        }
        closedir(d);
}

int worker_ids_join_groups(VtpmdConfig *c) {
        gid_t extra[1 + 2 * PREVIOUS_GROUPS_MAX];
        _cleanup_free_ char *pool_vtpms = NULL;
        size_t n_extra = 0;

        if (!c->worker_id_first)
                return 0;
        if (geteuid() != 0) {
                log_msg(LOG_NOTICE, "Not running as root: workers keep uid %u (WorkerIDs= needs root)",
                        (unsigned) geteuid());
                c->worker_id_first = c->worker_id_last = 0;
                return 0;
        }
        gid_t gid = (gid_t) c->worker_id_first;
        extra[n_extra++] = gid;
        if (c->state.pool_dir && asprintf(&pool_vtpms, "%s/vtpms", c->state.pool_dir) < 0) {
                pool_vtpms = NULL;
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        size_t n_prev = 0;
        previous_groups(c->state.state_dir, gid, extra + n_extra, &n_prev);
        n_extra += n_prev;
        n_prev = 0;
        previous_groups(pool_vtpms, gid, extra + n_extra, &n_prev);
        n_extra += n_prev;
        for (size_t i = 1; i < n_extra; i++)
                log_msg(LOG_NOTICE, "vTPM directories of group %u (an earlier WorkerIDs=) are taken back by "
                        "WorkerIDs=%u-%u when their guests next start", (unsigned) extra[i], c->worker_id_first,
                        c->worker_id_last);

        int n = getgroups(0, NULL);
        if (n < 0)
                return log_error_errno(-errno, "Cannot read the supplementary groups");
        _cleanup_free_ gid_t *groups = calloc((size_t) n + n_extra, sizeof(gid_t));
        if (!groups)
                return log_error_errno(-ENOMEM, "Out of memory");
        n = getgroups(n, groups);
        if (n < 0)
                return log_error_errno(-errno, "Cannot read the supplementary groups");
        size_t total = (size_t) n;
        for (size_t i = 0; i < n_extra; i++)
                if (!have_gid(groups, total, extra[i]))
                        groups[total++] = extra[i];
        if (total == (size_t) n)
                return 0;
        if (setgroups(total, groups) < 0)
                return log_error_errno(-errno, "Cannot join group %u, the workers' group (WorkerIDs=%u-%u; "
                                       "vtpmd.service needs CAP_SETGID)", (unsigned) gid, c->worker_id_first,
                                       c->worker_id_last);
        return 0;
}
