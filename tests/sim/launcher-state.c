/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest record format (DIR/sim/guests/NAME), one key per line:
 *   name=guest1
 *   domain-uuid=<uuid>
 *   domid=3                  (0: not running)
 *   pid=1234 98765           (pid and start time; "0 0": none)
 *   vtpm=0 <uuid> 2.0        (devid, vTPM uuid, family; one line per device)
 *   saved=/path/FILE         (only while the guest is saved there by
 *                             vtpm-sim save and not restored yet)
 */
#include "../common/testlib.h"
#include "launcher-state.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "parse.h"
#include "util.h"

bool sim_name_valid(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || n > SIM_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) name[i]) && name[i] != '-' && name[i] != '_')
                        return false;
        return true;
}

int sim_uuid_random(char ret[static 37]) {
        uint8_t b[16];

        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b))
                return -EIO;
        b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        snprintf(ret, 37,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                 b[12], b[13], b[14], b[15]);
        return 0;
}

SimGuest *sim_guest_free(SimGuest *g) {
        if (!g)
                return NULL;
        free(g->vtpms);
        free(g->saved_image);
        free(g);
        return NULL;
}

int sim_guest_new(const char *name, SimGuest **ret) {
        SimGuest *g;
        int r;

        if (!sim_name_valid(name))
                return -EINVAL;
        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        snprintf(g->name, sizeof(g->name), "%s", name);
        r = sim_uuid_random(g->domain_uuid);
        if (r < 0) {
                sim_guest_free(g);
                return r;
        }
        *ret = g;
        return 0;
}

int sim_guest_add_vtpm(SimGuest *g, uint32_t devid, const char *uuid, const char *family) {
        SimVtpm *v;
        char canon[37];

        if (parse_uuid(uuid, canon) < 0 || (!streq(family, "2.0") && !streq(family, "1.2")))
                return -EINVAL;
        v = reallocarray(g->vtpms, g->n_vtpms + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        g->vtpms = v;
        v = &g->vtpms[g->n_vtpms++];
        *v = (SimVtpm) { .devid = devid };
        memcpy(v->uuid, canon, sizeof(v->uuid));
        snprintf(v->family, sizeof(v->family), "%s", family);
        return 0;
}

void sim_guest_remove_vtpm(SimGuest *g, size_t index) {
        if (index >= g->n_vtpms)
                return;
        memmove(&g->vtpms[index], &g->vtpms[index + 1],
                (g->n_vtpms - index - 1) * sizeof(g->vtpms[0]));
        g->n_vtpms--;
}

/* Opens path (NULL: its allocation failed) for reading. */
static int fopen_read(const char *path, FILE **ret) {
        if (!path)
                return -ENOMEM;
        *ret = fopen(path, "re");
        return *ret ? 0 : negative_errno();
}

static char *guest_path(const char *dir, const char *name) {
        char *p;

        if (asprintf(&p, "%s/sim/guests/%s", dir, name) < 0)
                return NULL;
        return p;
}

int sim_write_file_atomic(const char *path, const char *data) {
        return write_file_atomic(path, data);
}

int sim_guest_save(const char *dir, const SimGuest *g) {
        _cleanup_free_ char *path = guest_path(dir, g->name);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        if (!path)
                return -ENOMEM;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "name=%s\ndomain-uuid=%s\ndomid=%u\npid=%d %llu\n", g->name, g->domain_uuid,
                g->domid, (int) g->proc.pid, g->proc.starttime);
        for (size_t i = 0; i < g->n_vtpms; i++)
                fprintf(f, "vtpm=%u %s %s\n", g->vtpms[i].devid, g->vtpms[i].uuid,
                        g->vtpms[i].family);
        if (g->saved_image)
                fprintf(f, "saved=%s\n", g->saved_image);
        if (g->tcp_port)
                fprintf(f, "tcp-port=%u\n", g->tcp_port);
        if (fclose(f) != 0)
                return -ENOMEM;
        r = sim_write_file_atomic(path, buf);
        return r;
}

int sim_guest_load(const char *dir, const char *name, SimGuest **ret) {
        _cleanup_free_ char *path = NULL, *line = NULL;
        _cleanup_(sim_guest_freep) SimGuest *g = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t cap = 0;
        bool have_uuid = false;
        int r;

        if (!sim_name_valid(name))
                return -EINVAL;
        path = guest_path(dir, name);
        r = fopen_read(path, &f);
        if (r < 0)
                return r;
        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        snprintf(g->name, sizeof(g->name), "%s", name);

        while (getline(&line, &cap, f) > 0) {
                char *eq, *v;

                line[strcspn(line, "\n")] = '\0';
                eq = strchr(line, '=');
                if (!eq)
                        return -EBADMSG;
                *eq = '\0';
                v = eq + 1;
                if (streq(line, "name")) {
                        if (!streq(v, name))
                                return -EBADMSG;
                } else if (streq(line, "domain-uuid")) {
                        if (parse_uuid(v, g->domain_uuid) < 0)
                                return -EBADMSG;
                        have_uuid = true;
                } else if (streq(line, "domid")) {
                        if (parse_u32(v, &g->domid) < 0)
                                return -EBADMSG;
                } else if (streq(line, "pid")) {
                        int pid;
                        if (sscanf(v, "%d %llu", &pid, &g->proc.starttime) != 2 || pid < 0)
                                return -EBADMSG;
                        g->proc.pid = pid;
                } else if (streq(line, "vtpm")) {
                        char uuid[64], fam[8];
                        unsigned devid;
                        if (sscanf(v, "%u %63s %7s", &devid, uuid, fam) != 3 ||
                            sim_guest_add_vtpm(g, devid, uuid, fam) < 0)
                                return -EBADMSG;
                } else if (streq(line, "saved")) {
                        if (sim_guest_set_saved(g, v) < 0)
                                return -ENOMEM;
                } else if (streq(line, "tcp-port")) {
                        if (parse_u32(v, &g->tcp_port) < 0 || g->tcp_port == 0 || g->tcp_port > 65534)
                                return -EBADMSG;
                }
                /* Unknown keys are ignored so later versions can add some. */
        }
        if (!have_uuid)
                return -EBADMSG;
        *ret = TAKE_PTR(g);
        return 0;
}

int sim_guest_set_saved(SimGuest *g, const char *image) {
        char *c = NULL;

        if (image && !(c = strdup(image)))
                return -ENOMEM;
        free(g->saved_image);
        g->saved_image = c;
        return 0;
}

int sim_guest_delete(const char *dir, const char *name) {
        _cleanup_free_ char *path = NULL;

        if (!sim_name_valid(name))
                return -EINVAL;
        path = guest_path(dir, name);
        if (!path)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int sim_guest_list(const char *dir, char ***ret) {
        _cleanup_free_ char *path = NULL;
        char **names = NULL;
        size_t n = 0;
        DIR *d;
        struct dirent *de;

        if (asprintf(&path, "%s/sim/guests", dir) < 0)
                return -ENOMEM;
        d = opendir(path);
        if (!d && errno != ENOENT)
                return negative_errno();
        while (d && (de = readdir(d))) {
                char **nn;
                if (!sim_name_valid(de->d_name))
                        continue; /* ".", "..", temporary files */
                nn = reallocarray(names, n + 2, sizeof(*names));
                if (!nn)
                        goto oom;
                names = nn;
                names[n] = strdup(de->d_name);
                if (!names[n])
                        goto oom;
                names[++n] = NULL;
        }
        if (d)
                closedir(d);
        if (!names) {
                names = calloc(1, sizeof(*names));
                if (!names)
                        return -ENOMEM;
        }
        qsort(names, n, sizeof(*names), cmp_str);
        *ret = names;
        return 0;
oom:
        if (d)
                closedir(d);
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return -ENOMEM;
}

static char *key_path(const char *dir, const char *key) {
        char *p;

        if (asprintf(&p, "%s/sim/%s", dir, key) < 0)
                return NULL;
        return p;
}

int sim_proc_load(const char *dir, const char *key, SimProc *ret) {
        _cleanup_free_ char *p = key_path(dir, key);
        _cleanup_fclose_ FILE *f = NULL;
        int pid;
        unsigned long long st;
        int r;

        r = fopen_read(p, &f);
        if (r < 0)
                return r;
        if (fscanf(f, "%d %llu", &pid, &st) != 2 || pid < 0)
                return -EBADMSG;
        *ret = (SimProc) { .pid = pid, .starttime = st };
        return 0;
}

int sim_proc_save(const char *dir, const char *key, const SimProc *proc) {
        _cleanup_free_ char *p = key_path(dir, key);
        char buf[64];

        if (!p)
                return -ENOMEM;
        snprintf(buf, sizeof(buf), "%d %llu\n", (int) proc->pid, proc->starttime);
        return sim_write_file_atomic(p, buf);
}

int sim_u32_load(const char *dir, const char *key, uint32_t *ret) {
        _cleanup_free_ char *p = key_path(dir, key);
        _cleanup_fclose_ FILE *f = NULL;
        char buf[32] = "";
        int r;

        r = fopen_read(p, &f);
        if (r < 0)
                return r;
        if (!fgets(buf, sizeof(buf), f))
                return -EBADMSG;
        buf[strcspn(buf, "\n")] = '\0';
        return parse_u32(buf, ret) < 0 ? -EBADMSG : 0;
}

int sim_u32_save(const char *dir, const char *key, uint32_t v) {
        _cleanup_free_ char *p = key_path(dir, key);
        char buf[32];

        if (!p)
                return -ENOMEM;
        snprintf(buf, sizeof(buf), "%u\n", v);
        return sim_write_file_atomic(p, buf);
}

int sim_proc_from_pid(pid_t pid, SimProc *ret) {
        char path[64], buf[1024];
        _cleanup_close_ int fd = -1;
        ssize_t n;
        char *p, state;
        unsigned long long st;

        if (pid <= 0)
                return -ESRCH;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        /* The stat line is far shorter than this; comm is at most 16 bytes. */
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -ESRCH;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (!p)
                return -EBADMSG;
        /* After ")": state is field 3, starttime field 22. */
        if (sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                   &state, &st) != 2)
                return -EBADMSG;
        if (state == 'Z' || state == 'X' || state == 'x')
                return -ESRCH;
        *ret = (SimProc) { .pid = pid, .starttime = st };
        return 0;
}

bool sim_proc_alive(const SimProc *p) {
        SimProc now;

        if (p->pid <= 0)
                return false;
        if (sim_proc_from_pid(p->pid, &now) < 0)
                return false;
        return now.starttime == p->starttime;
}

int sim_str_load(const char *dir, const char *key, char **ret) {
        _cleanup_free_ char *p = key_path(dir, key), *line = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t cap = 0;
        int r;

        r = fopen_read(p, &f);
        if (r < 0)
                return r;
        if (getline(&line, &cap, f) < 0)
                return -EBADMSG;
        line[strcspn(line, "\n")] = '\0';
        *ret = TAKE_PTR(line);
        return 0;
}

int sim_str_save(const char *dir, const char *key, const char *value) {
        _cleanup_free_ char *p = key_path(dir, key), *buf = NULL;

        if (!p)
                return -ENOMEM;
        if (strchr(value, '\n'))
                return -EINVAL;
        if (asprintf(&buf, "%s\n", value) < 0)
                return -ENOMEM;
        return sim_write_file_atomic(p, buf);
}

void sim_strv_free(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
}

int sim_strv_load(const char *dir, const char *key, char ***ret) {
        _cleanup_free_ char *p = key_path(dir, key), *line = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char **l = NULL;
        size_t cap = 0, n = 0;
        int r;

        r = fopen_read(p, &f);
        if (r < 0)
                return r;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        while (getline(&line, &cap, f) > 0) {
                char **nl;

                line[strcspn(line, "\n")] = '\0';
                nl = reallocarray(l, n + 2, sizeof(*l));
                if (!nl)
                        goto oom;
                l = nl;
                l[n] = strdup(line);
                if (!l[n])
                        goto oom;
                l[++n] = NULL;
        }
        *ret = l;
        return 0;
oom:
        sim_strv_free(l);
        return -ENOMEM;
}

int sim_strv_save(const char *dir, const char *key, char *const *l) {
        _cleanup_free_ char *p = key_path(dir, key), *buf = NULL;
        size_t len = 0;
        FILE *f;

        if (!p)
                return -ENOMEM;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; l[i]; i++) {
                if (strchr(l[i], '\n')) {
                        fclose(f);
                        return -EINVAL;
                }
                fprintf(f, "%s\n", l[i]);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        return sim_write_file_atomic(p, buf);
}
