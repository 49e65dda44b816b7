/* SPDX-License-Identifier: BSD-3-Clause */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "hosttpm-swtpm.h"
#include "util.h"

#define START_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 5000

struct HostTpmSim {
        char *dir;
        char *sock;
        char *ctrl;
        char *log;
        char *tcti;
        pid_t pid;
};

static void pause_ms(long ms) {
        struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };
        nanosleep(&ts, NULL);
}

/* The socket file appears at bind(), before listen(): only a connect that
 * succeeds shows swtpm is ready. swtpm takes a bare connect and close in stride. */
static bool accepts(const char *p) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, r;

        if (strlen(p) >= sizeof(sa.sun_path))
                return false;
        strcpy(sa.sun_path, p);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        r = connect(fd, (struct sockaddr *) &sa, sizeof(sa));
        close(fd);
        return r == 0;
}

static int spawn(HostTpmSim *s) {
        _cleanup_free_ char *server = NULL, *ctrl = NULL, *state = NULL, *log = NULL;
        pid_t parent = getpid(), pid;
        uint64_t deadline;

        /* swtpm removes its sockets at exit; a stale one would end the wait early. */
        (void) unlink(s->sock);
        (void) unlink(s->ctrl);
        if (asprintf(&server, "type=unixio,path=%s", s->sock) < 0 || asprintf(&ctrl, "type=unixio,path=%s", s->ctrl) < 0 ||
            asprintf(&state, "dir=%s", s->dir) < 0 || asprintf(&log, "file=%s,level=20", s->log) < 0)
                return -ENOMEM;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                execlp("swtpm", "swtpm", "socket", "--tpm2", "--server", server, "--ctrl", ctrl, "--tpmstate",
                       state, "--flags", "startup-clear", "--log", log, (char *) NULL);
                _exit(127);
        }
        s->pid = pid;

        deadline = now_ms() + START_TIMEOUT_MS;
        for (;;) {
                int status;
                if (accepts(s->ctrl) && accepts(s->sock))
                        return 0;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        s->pid = -1;
                        fprintf(stderr, "swtpm exited at start (status 0x%x); see %s\n", status, s->log);
                        return -ECHILD;
                }
                if (now_ms() > deadline) {
                        fprintf(stderr, "swtpm did not create its sockets within %d ms\n", START_TIMEOUT_MS);
                        return -ETIMEDOUT;
                }
                pause_ms(1);
        }
}

static void reap(HostTpmSim *s) {
        uint64_t deadline;

        if (s->pid <= 0)
                return;
        (void) kill(s->pid, SIGTERM);
        deadline = now_ms() + STOP_TIMEOUT_MS;
        for (;;) {
                if (waitpid(s->pid, NULL, WNOHANG) == s->pid)
                        break;
                if (now_ms() > deadline) {
                        (void) kill(s->pid, SIGKILL);
                        (void) waitpid(s->pid, NULL, 0);
                        break;
                }
                pause_ms(1);
        }
        s->pid = -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        (void) remove(path);
        return 0;
}

HostTpmSim *hosttpm_sim_stop(HostTpmSim *s) {
        if (!s)
                return NULL;
        reap(s);
        if (s->dir)
                (void) nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(s->dir);
        free(s->sock);
        free(s->ctrl);
        free(s->log);
        free(s->tcti);
        free(s);
        return NULL;
}

int hosttpm_sim_start(HostTpmSim **ret) {
        const char *tmp = getenv("TMPDIR");
        HostTpmSim *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->pid = -1;
        if (asprintf(&s->dir, "%s/vtpm-hosttpm-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
                s->dir = NULL;
                hosttpm_sim_stop(s);
                return -ENOMEM;
        }
        if (!mkdtemp(s->dir)) {
                r = -errno;
                free(s->dir);
                s->dir = NULL;
                hosttpm_sim_stop(s);
                return r;
        }
        if (asprintf(&s->sock, "%s/tpm.sock", s->dir) < 0 || asprintf(&s->ctrl, "%s/tpm.sock.ctrl", s->dir) < 0 ||
            asprintf(&s->log, "%s/swtpm.log", s->dir) < 0 || asprintf(&s->tcti, "swtpm:path=%s", s->sock) < 0) {
                hosttpm_sim_stop(s);
                return -ENOMEM;
        }
        r = spawn(s);
        if (r < 0) {
                hosttpm_sim_stop(s);
                return r;
        }
        *ret = s;
        return 0;
}

int hosttpm_sim_restart(HostTpmSim *s) {
        reap(s);
        return spawn(s);
}

const char *hosttpm_sim_tcti(const HostTpmSim *s) {
        return s->tcti;
}

const char *hosttpm_sim_dir(const HostTpmSim *s) {
        return s->dir;
}

const char *hosttpm_sim_log_path(const HostTpmSim *s) {
        return s->log;
}

static int read_all(int fd, char **ret) {
        size_t len = 0, cap = 4096;
        char *buf = malloc(cap), *n;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;
                if (cap - len < 2) {
                        n = realloc(buf, cap * 2);
                        if (!n) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = n;
                        cap *= 2;
                }
                k = read(fd, buf + len, cap - len - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        free(buf);
                        return r;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        buf[len] = '\0';
        *ret = buf;
        return 0;
}

int hosttpm_sim_tool(HostTpmSim *s, const char *const *argv, char **ret_out) {
        const char *args[64];
        size_t n = 0;
        int p[2], status, r;
        char *out = NULL;
        pid_t pid;

        for (; argv[n]; n++)
                if (n >= ELEMENTSOF(args) - 3)
                        return -E2BIG;
        memcpy(args, argv, n * sizeof(*args));
        args[n++] = "-T";
        args[n++] = s->tcti;
        args[n] = NULL;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (pid == 0) {
                (void) dup2(p[1], STDOUT_FILENO);
                execvp(args[0], (char *const *) args);
                _exit(127);
        }
        close(p[1]);
        r = read_all(p[0], &out);
        close(p[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r < 0)
                return r;
        if (ret_out)
                *ret_out = out;
        else
                free(out);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* A dump line is " XX XX ... XX": only two-digit hex tokens. Appends its bytes. */
static bool parse_dump_line(const char *line, uint8_t *out, size_t *n) {
        size_t k = 0;
        const char *p = line;

        for (;;) {
                while (*p == ' ')
                        p++;
                if (*p == '\0' || *p == '\n')
                        break;
                if (hexval(p[0]) < 0 || hexval(p[1]) < 0 || (p[2] != ' ' && p[2] != '\n' && p[2] != '\0'))
                        return false;
                out[k++] = (uint8_t) (hexval(p[0]) << 4 | hexval(p[1]));
                p += 2;
        }
        if (k == 0)
                return false;
        *n = k;
        return true;
}

void hosttpm_sim_msgs_free(HostTpmSimMsg *m, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(m[i].data);
        free(m);
}

int hosttpm_sim_log_messages(HostTpmSim *s, HostTpmSimMsg **ret, size_t *ret_n) {
        _cleanup_fclose_ FILE *f = fopen(s->log, "re");
        HostTpmSimMsg *msgs = NULL, *cur = NULL;
        size_t n = 0, cap = 0, linecap = 0;
        char *line = NULL;
        ssize_t len;

        if (!f)
                return -errno;
        while ((len = getline(&line, &linecap, f)) >= 0) {
                uint8_t bytes[512];
                size_t k;

                if (strstr(line, "SWTPM_IO_Read:") || strstr(line, "SWTPM_IO_Write:")) {
                        if (n == cap) {
                                HostTpmSimMsg *g = realloc(msgs, (cap ? cap * 2 : 64) * sizeof(*g));
                                if (!g)
                                        goto oom;
                                msgs = g;
                                cap = cap ? cap * 2 : 64;
                        }
                        cur = &msgs[n++];
                        *cur = (HostTpmSimMsg){ .command = strstr(line, "SWTPM_IO_Read:") != NULL };
                        continue;
                }
                /* Each dump line holds 16 bytes; a long line cannot be a dump line. */
                if ((size_t) len < sizeof(bytes) && parse_dump_line(line, bytes, &k)) {
                        uint8_t *g;
                        if (!cur)
                                continue;
                        g = realloc(cur->data, cur->len + k);
                        if (!g)
                                goto oom;
                        memcpy(g + cur->len, bytes, k);
                        cur->data = g;
                        cur->len += k;
                        continue;
                }
                cur = NULL; /* anything else (ctrl channel, disconnects) ends a message */
        }
        free(line);
        *ret = msgs;
        *ret_n = n;
        return 0;
oom:
        free(line);
        hosttpm_sim_msgs_free(msgs, n);
        return -ENOMEM;
}
