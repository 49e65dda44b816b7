/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpm-bench: the measuring side of `make bench` (tests/bench/run-bench.sh
 * drives it). Each subcommand prints one JSON object on stdout.
 *
 *   vtpm-bench latency --op OP --count N [--warmup N] (--socket PATH | --inproc)
 *       round trips of one command (bench-cmds.h), acting as the guest's TPM
 *       user on a TPM data socket, or calling libtpms in this process; with
 *       --dir, each command is followed by a bare durable write (as fsync
 *       below) timed on its own, so the two share the disk's moment
 *   vtpm-bench throughput --duration-ms MS SOCKET...
 *       one thread per socket sending GetRandom(8) back to back; total commands/s
 *   vtpm-bench fsync --dir DIR --size BYTES --count N
 *       a bare durable file replacement: write, fsync, rename, fsync the directory
 *   vtpm-bench watch-connect --xs-socket PATH --guests N [--timeout-ms MS]
 *       watches a (simulated) xenstore until N domains' vTPM frontends read
 *       Connected; per domain, from its first node to frontend Connected
 *   vtpm-bench hops --relays K --count N [--warmup N]
 *       the bare transport floor: round trips of a 12-byte message through K
 *       relay processes to an echo process over SOCK_SEQPACKET pairs, that is
 *       2(K+1) process wake-ups and no work (K = 0: swtpm's shape, client and
 *       server; K = 1: the simulation's, client, guest and worker)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include "bench-cmds.h"
#include "parse.h"
#include "tpm-client.h"
#include "tpm-instance.h"
#include "util.h"

/* Xen's DOMID_FIRST_RESERVED: no guest domid is at or above it. */
#define DOMID_LIMIT 0x7ff0u

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* Sorts t and prints the summary fields (no braces), in unit (ns per unit). */
static void print_summary(uint64_t *t, size_t n, double unit, const char *suffix) {
        double sum = 0;

        qsort(t, n, sizeof(*t), cmp_u64);
        for (size_t i = 0; i < n; i++)
                sum += (double) t[i];
        printf("\"count\":%zu,\"p50_%s\":%.3f,\"p99_%s\":%.3f,\"mean_%s\":%.3f,\"min_%s\":%.3f,\"max_%s\":%.3f", n,
               suffix, t[n / 2] / unit, suffix, t[n * 99 / 100] / unit, suffix, sum / n / unit, suffix, t[0] / unit,
               suffix, t[n - 1] / unit);
}

/* ---- contenders: a TPM data socket, or libtpms in this process ---- */

typedef struct Target {
        int fd;
        TpmStore *store;
        TpmInstance *tpm;
} Target;

static int target_open(const char *socket_path, Target *ret) {
        Target t = { .fd = -1 };
        int r;

        if (socket_path) {
                t.fd = tpm_client_connect(socket_path);
                if (t.fd < 0)
                        return t.fd;
        } else {
                r = tpm_store_memory_new(&t.store);
                if (r < 0)
                        return r;
                r = tpm_instance_new(TPM_FAMILY_2_0, t.store, &t.tpm);
                if (r < 0) {
                        tpm_store_free(t.store);
                        return r;
                }
                r = tpm_instance_startup(t.tpm, NULL);
                if (r < 0) {
                        tpm_instance_free(t.tpm);
                        tpm_store_free(t.store);
                        return r;
                }
        }
        *ret = t;
        return 0;
}

static void target_close(Target *t) {
        t->fd = safe_close(t->fd);
        t->tpm = tpm_instance_free(t->tpm);
        t->store = tpm_store_free(t->store);
}

/* One command; the TPM's response code in *ret_rc. */
static int target_transact(Target *t, const uint8_t *cmd, size_t len, uint8_t *resp, size_t max, size_t *ret_len,
                           uint32_t *ret_rc) {
        size_t n;
        int r;

        if (t->tpm)
                r = tpm_instance_process(t->tpm, cmd, len, resp, max, &n, 0);
        else
                r = tpm_client_transact(t->fd, cmd, len, resp, max, &n);
        if (r < 0)
                return r;
        if (n < TPM_HEADER_SIZE)
                return -EBADMSG;
        *ret_len = n;
        *ret_rc = tpm_be32(resp + 6);
        return 0;
}

static int durable_replace(int dfd, const uint8_t *buf, size_t size);

/* bare_dir: after each command, a bare durable write of bare_size bytes there,
 * timed on its own, so both see the same moment of the disk. */
static int cmd_latency(const char *op_name, unsigned long count, unsigned long warmup, const char *socket_path,
                       const char *bare_dir, unsigned long bare_size) {
        uint8_t cmd[BENCH_CMD_MAX], flush[BENCH_CMD_MAX], resp[TPM_MAX_PACKET];
        _cleanup_free_ uint64_t *t = NULL, *tb = NULL;
        _cleanup_free_ uint8_t *bare = NULL;
        _cleanup_close_ int bare_fd = -1;
        uint32_t seq0 = (uint32_t) now_ns() * 2654435761u;
        Target tg;
        BenchOp op;
        size_t rlen;
        uint32_t rc;
        int len, r;

        if (bench_op_from_string(op_name, &op) < 0) {
                fprintf(stderr, "vtpm-bench: unknown --op '%s'\n", op_name);
                return 2;
        }
        len = bench_build_op(op, 0, cmd, sizeof(cmd));
        t = calloc(count, sizeof(*t));
        if (len < 0 || !t)
                return 1;
        if (bare_dir) {
                bare_fd = open(bare_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                tb = calloc(count, sizeof(*tb));
                bare = calloc(1, bare_size ?: 1);
                if (bare_fd < 0 || !tb || !bare) {
                        fprintf(stderr, "vtpm-bench: %s: %m\n", bare_dir);
                        return 1;
                }
        }
        r = target_open(socket_path, &tg);
        if (r < 0) {
                fprintf(stderr, "vtpm-bench: %s: %s\n", socket_path ?: "libtpms in-process", strerror(-r));
                return 1;
        }
        if (op == BENCH_OP_NV_WRITE) {
                int dlen = bench_build_nv_define(flush, sizeof(flush));
                r = dlen < 0 ? dlen : target_transact(&tg, flush, (size_t) dlen, resp, sizeof(resp), &rlen, &rc);
                if (r < 0 || (rc != TPM2_RC_SUCCESS && rc != TPM2_RC_NV_DEFINED)) {
                        fprintf(stderr, "vtpm-bench: NV_DefineSpace failed: %s, rc 0x%x\n",
                                r < 0 ? strerror(-r) : "TPM error", r < 0 ? 0 : rc);
                        target_close(&tg);
                        return 1;
                }
        }
        for (unsigned long i = 0; i < warmup + count; i++) {
                uint64_t begin, end;

                /* A run starts from a random value so that no write of it repeats the index's contents. */
                if (op == BENCH_OP_NV_WRITE)
                        len = bench_build_op(op, seq0 + (uint32_t) i, cmd, sizeof(cmd));
                begin = now_ns();
                r = target_transact(&tg, cmd, (size_t) len, resp, sizeof(resp), &rlen, &rc);
                end = now_ns();
                if (r < 0 || rc != TPM2_RC_SUCCESS) {
                        fprintf(stderr, "vtpm-bench: %s #%lu failed: %s, rc 0x%x\n", op_name, i,
                                r < 0 ? strerror(-r) : "TPM error", r < 0 ? 0 : rc);
                        target_close(&tg);
                        return 1;
                }
                if (i >= warmup)
                        t[i - warmup] = end - begin;
                if (bare_dir) {
                        bare[0] = (uint8_t) i;
                        begin = now_ns();
                        r = durable_replace(bare_fd, bare, bare_size);
                        end = now_ns();
                        if (r < 0) {
                                fprintf(stderr, "vtpm-bench: durable write in %s: %s\n", bare_dir, strerror(-r));
                                target_close(&tg);
                                return 1;
                        }
                        if (i >= warmup)
                                tb[i - warmup] = end - begin;
                }
                if (op == BENCH_OP_CREATE_PRIMARY) {
                        /* Untimed: the object handle follows the header. */
                        int flen = rlen >= 14 ? bench_build_flush(tpm_be32(resp + 10), flush, sizeof(flush)) : -EBADMSG;
                        r = flen < 0 ? flen : target_transact(&tg, flush, (size_t) flen, resp, sizeof(resp), &rlen, &rc);
                        if (r < 0 || rc != TPM2_RC_SUCCESS) {
                                fprintf(stderr, "vtpm-bench: FlushContext failed\n");
                                target_close(&tg);
                                return 1;
                        }
                }
        }
        target_close(&tg);
        printf("{\"op\":\"%s\",\"target\":\"%s\",", op_name, socket_path ? "socket" : "inproc");
        print_summary(t, count, 1000.0, "us");
        if (bare_dir) {
                (void) unlinkat(bare_fd, "bench.dat", 0);
                printf(",\"bare\":{\"bytes\":%lu,", bare_size);
                print_summary(tb, count, 1000.0, "us");
                printf("}");
        }
        printf("}\n");
        return 0;
}

/* ---- throughput ---- */

typedef struct Client {
        const char *path;
        pthread_t thread;
        pthread_barrier_t *barrier;
        atomic_bool *stop;
        uint64_t done;
        int error;
} Client;

static void *client_run(void *arg) {
        Client *c = arg;
        uint8_t cmd[BENCH_CMD_MAX], resp[TPM_MAX_PACKET];
        _cleanup_close_ int fd = tpm_client_connect(c->path);
        int len = bench_build_op(BENCH_OP_GET_RANDOM, 0, cmd, sizeof(cmd));

        if (fd < 0)
                c->error = fd;
        else if (len < 0)
                c->error = len;
        pthread_barrier_wait(c->barrier);
        while (c->error == 0 && !atomic_load(c->stop)) {
                size_t rlen;
                int r = tpm_client_transact(fd, cmd, (size_t) len, resp, sizeof(resp), &rlen);

                if (r < 0)
                        c->error = r;
                else if (tpm_be32(resp + 6) != TPM2_RC_SUCCESS)
                        c->error = -EIO;
                else
                        c->done++;
        }
        return NULL;
}

static int cmd_throughput(unsigned long duration_ms, char **paths, size_t n) {
        _cleanup_free_ Client *c = calloc(n, sizeof(*c));
        pthread_barrier_t barrier;
        atomic_bool stop = false;
        struct timespec d = { .tv_sec = (time_t) (duration_ms / 1000), .tv_nsec = (long) (duration_ms % 1000) * 1000000 };
        uint64_t begin, end, total = 0;
        size_t started = 0;
        int ret = 0;

        if (!c || pthread_barrier_init(&barrier, NULL, (unsigned) n + 1) != 0)
                return 1;
        for (; started < n; started++) {
                c[started] = (Client) { .path = paths[started], .barrier = &barrier, .stop = &stop };
                if (pthread_create(&c[started].thread, NULL, client_run, &c[started]) != 0) {
                        fputs("vtpm-bench: cannot start a client thread\n", stderr);
                        /* The barrier needs n + 1 arrivals; run the rest as failed. */
                        for (size_t i = started; i < n; i++)
                                pthread_barrier_wait(&barrier);
                        atomic_store(&stop, true);
                        ret = 1;
                        break;
                }
        }
        if (ret == 0)
                pthread_barrier_wait(&barrier);
        begin = now_ns();
        /* A fixed measuring window, not synchronisation: the clients stop at the flag. */
        if (ret == 0)
                while (nanosleep(&d, &d) < 0 && errno == EINTR)
                        ;
        atomic_store(&stop, true);
        for (size_t i = 0; i < started; i++)
                pthread_join(c[i].thread, NULL);
        end = now_ns();
        pthread_barrier_destroy(&barrier);
        for (size_t i = 0; i < started; i++) {
                if (c[i].error < 0) {
                        fprintf(stderr, "vtpm-bench: client of %s: %s\n", c[i].path, strerror(-c[i].error));
                        ret = 1;
                }
                total += c[i].done;
        }
        if (ret)
                return ret;
        printf("{\"clients\":%zu,\"commands\":%llu,\"seconds\":%.6f,\"cmds_per_s\":%.1f}\n", n,
               (unsigned long long) total, (double) (end - begin) / 1e9, (double) total * 1e9 / (double) (end - begin));
        return 0;
}

/* ---- the bare durable write ---- */

static int durable_replace(int dfd, const uint8_t *buf, size_t size) {
        _cleanup_close_ int fd = openat(dfd, "bench.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        size_t off = 0;

        if (fd < 0)
                return negative_errno();
        while (off < size) {
                ssize_t k = write(fd, buf + off, size - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                off += (size_t) k;
        }
        if (fsync(fd) < 0)
                return negative_errno();
        fd = safe_close(fd);
        if (renameat(dfd, "bench.tmp", dfd, "bench.dat") < 0)
                return negative_errno();
        if (fsync(dfd) < 0)
                return negative_errno();
        return 0;
}

static int cmd_fsync(const char *dir, unsigned long size, unsigned long count) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ uint8_t *buf = malloc(size ?: 1);
        _cleanup_free_ uint64_t *t = calloc(count, sizeof(*t));

        if (dfd < 0) {
                fprintf(stderr, "vtpm-bench: %s: %m\n", dir);
                return 1;
        }
        if (!buf || !t)
                return 1;
        for (size_t i = 0; i < size; i++)
                buf[i] = (uint8_t) (i * 131u);
        for (unsigned long i = 0; i < count; i++) {
                uint64_t begin = now_ns();
                int r;

                buf[0] = (uint8_t) i;
                r = durable_replace(dfd, buf, size);
                if (r < 0) {
                        fprintf(stderr, "vtpm-bench: durable write in %s: %s\n", dir, strerror(-r));
                        return 1;
                }
                t[i] = now_ns() - begin;
        }
        (void) unlinkat(dfd, "bench.dat", 0);
        printf("{\"bytes\":%lu,", size);
        print_summary(t, count, 1000.0, "us");
        printf("}\n");
        return 0;
}

/* ---- attach at scale ---- */

typedef struct DomTimes {
        uint64_t first, connected;
} DomTimes;

/* Which domain a watch path belongs to (a guest's own tree, or its devices'
 * backend dirs); 0 if none. *ret_fe_state: the path is a vtpm frontend's state. */
static uint32_t path_domid(const char *p, bool *ret_fe_state) {
        static const char fe[] = "/local/domain/", be[] = "/local/domain/0/backend/vtpm/";
        char num[16];
        const char *s, *e;
        uint32_t d;

        *ret_fe_state = false;
        if (strncmp(p, be, sizeof(be) - 1) == 0)
                s = p + sizeof(be) - 1;
        else if (strncmp(p, fe, sizeof(fe) - 1) == 0)
                s = p + sizeof(fe) - 1;
        else
                return 0;
        e = strchrnul(s, '/');
        if ((size_t) (e - s) >= sizeof(num))
                return 0;
        memcpy(num, s, (size_t) (e - s));
        num[e - s] = '\0';
        if (parse_u32(num, &d) < 0 || d == 0 || d >= DOMID_LIMIT)
                return 0;
        if (s == p + sizeof(fe) - 1) {
                unsigned dev;
                int n = 0;
                if (sscanf(e, "/device/vtpm/%u/state%n", &dev, &n) == 1 && n > 0 && e[n] == '\0')
                        *ret_fe_state = true;
        }
        return d;
}

static int cmd_watch_connect(const char *xs_socket, unsigned long guests, unsigned long timeout_ms) {
        _cleanup_free_ DomTimes *dom = calloc(DOMID_LIMIT, sizeof(*dom));
        _cleanup_free_ uint64_t *per = calloc(guests, sizeof(*per));
        uint64_t begin = now_ns(), deadline = begin + timeout_ms * 1000000ull, t_first = 0, t_last = 0;
        struct xs_handle *xs = NULL;
        unsigned long connected = 0, early = 0;
        size_t n = 0;

        if (!dom || !per)
                return 1;
        if (setenv("XENSTORED_PATH", xs_socket, 1) < 0)
                return 1;
        /* The harness starts us before the simulation: wait for its xenstored. */
        while (!(xs = xs_open(0))) {
                struct timespec tick = { .tv_nsec = 2 * 1000 * 1000 };
                if (now_ns() >= deadline) {
                        fprintf(stderr, "vtpm-bench: no xenstore at %s\n", xs_socket);
                        return 1;
                }
                nanosleep(&tick, NULL);
        }
        if (!xs_watch(xs, "/local/domain", "bench")) {
                fprintf(stderr, "vtpm-bench: xs_watch: %m\n");
                xs_close(xs);
                return 1;
        }
        {
                unsigned int num = 0;
                _cleanup_free_ char **ents = xs_directory(xs, XBT_NULL, "/local/domain", &num);
                for (unsigned i = 0; ents && i < num; i++)
                        if (!streq(ents[i], "0"))
                                early++;
        }
        while (connected < guests) {
                uint64_t now = now_ns();
                struct pollfd p = { .fd = xs_fileno(xs), .events = POLLIN };
                char **vec;

                if (now >= deadline) {
                        fprintf(stderr, "vtpm-bench: %lu of %lu guests Connected after %lu ms\n", connected, guests,
                                timeout_ms);
                        xs_close(xs);
                        return 1;
                }
                if (poll(&p, 1, (int) ((deadline - now) / 1000000u) + 1) <= 0)
                        continue;
                while ((vec = xs_check_watch(xs))) {
                        bool fe_state;
                        uint32_t d = path_domid(vec[XS_WATCH_PATH], &fe_state);
                        uint64_t t = now_ns();

                        if (d != 0 && dom[d].first == 0)
                                dom[d].first = t;
                        if (d != 0 && fe_state && dom[d].connected == 0) {
                                unsigned int len = 0;
                                _cleanup_free_ char *v = xs_read(xs, XBT_NULL, vec[XS_WATCH_PATH], &len);
                                if (v && streq(v, "4")) {
                                        dom[d].connected = t;
                                        connected++;
                                }
                        }
                        free(vec);
                }
        }
        xs_close(xs);
        for (uint32_t d = 1; d < DOMID_LIMIT && n < guests; d++) {
                if (dom[d].connected == 0)
                        continue;
                per[n++] = dom[d].connected - dom[d].first;
                if (t_first == 0 || dom[d].first < t_first)
                        t_first = dom[d].first;
                if (dom[d].connected > t_last)
                        t_last = dom[d].connected;
        }
        printf("{\"guests\":%zu,\"domains_before_watch\":%lu,\"all_connected_ms\":%.3f,", n, early,
               (double) (t_last - t_first) / 1e6);
        print_summary(per, n, 1e6, "ms");
        printf("}\n");
        return 0;
}

/* ---- bare transport floor ---- */

/* Relays between left and right, or echoes on left if right < 0, until left closes. */
_noreturn_ static void hop_serve(int left, int right) {
        uint8_t b[64];

        for (;;) {
                ssize_t n = read(left, b, sizeof(b));
                if (n <= 0)
                        _exit(n == 0 ? 0 : 1);
                if (right >= 0) {
                        if (write(right, b, (size_t) n) != n)
                                _exit(1);
                        n = read(right, b, sizeof(b));
                        if (n <= 0)
                                _exit(1);
                }
                if (write(left, b, (size_t) n) != n)
                        _exit(1);
        }
}

#define HOPS_MAX_RELAYS 4

static int cmd_hops(unsigned long relays, unsigned long count, unsigned long warmup) {
        int link[HOPS_MAX_RELAYS + 1][2];
        pid_t pid[HOPS_MAX_RELAYS + 1];
        _cleanup_free_ uint64_t *t = calloc(count, sizeof(*t));
        uint8_t msg[12] = { 0x80, 0x01 }, back[64];
        int r = 0;

        if (!t || relays > HOPS_MAX_RELAYS)
                return 1;
        for (unsigned long k = 0; k <= relays; k++)
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, link[k]) < 0)
                        return 1;
        /* Process k+1 sits on link k's far end and link k+1's near end. */
        for (unsigned long k = 0; k <= relays; k++) {
                pid[k] = fork();
                if (pid[k] < 0)
                        return 1;
                if (pid[k] == 0) {
                        for (unsigned long j = 0; j <= relays; j++) {
                                if (j != k)
                                        safe_close(link[j][1]);
                                if (j != k + 1)
                                        safe_close(link[j][0]);
                        }
                        hop_serve(link[k][1], k < relays ? link[k + 1][0] : -1);
                }
        }
        for (unsigned long k = 0; k <= relays; k++) {
                safe_close(link[k][1]);
                if (k > 0)
                        safe_close(link[k][0]);
        }
        for (unsigned long i = 0; i < warmup + count && r == 0; i++) {
                uint64_t begin = now_ns();
                if (write(link[0][0], msg, sizeof(msg)) != (ssize_t) sizeof(msg) ||
                    read(link[0][0], back, sizeof(back)) != (ssize_t) sizeof(msg))
                        r = -EIO;
                else if (i >= warmup)
                        t[i - warmup] = now_ns() - begin;
        }
        safe_close(link[0][0]); /* the chain exits on EOF */
        for (unsigned long k = 0; k <= relays; k++)
                while (waitpid(pid[k], NULL, 0) < 0 && errno == EINTR)
                        ;
        if (r < 0) {
                fprintf(stderr, "vtpm-bench: hops: a relay failed\n");
                return 1;
        }
        printf("{\"relays\":%lu,\"wakeups\":%lu,", relays, 2 * (relays + 1));
        print_summary(t, count, 1000.0, "us");
        printf("}\n");
        return 0;
}

_noreturn_ static void usage(int code) {
        fputs("usage: vtpm-bench latency --op getrandom|pcrextend|nvwrite|createprimary --count N [--warmup N]\n"
              "                          (--socket PATH | --inproc) [--dir DIR --size BYTES]\n"
              "       vtpm-bench throughput --duration-ms MS SOCKET...\n"
              "       vtpm-bench fsync --dir DIR --size BYTES --count N\n"
              "       vtpm-bench watch-connect --xs-socket PATH --guests N [--timeout-ms MS]\n"
              "       vtpm-bench hops --relays K --count N [--warmup N]\n",
              code ? stderr : stdout);
        exit(code);
}

static unsigned long num_arg(const char *name, const char *s, unsigned long max) {
        uint32_t v;

        if (parse_u32_max(s, max > UINT32_MAX ? UINT32_MAX : (uint32_t) max, &v) < 0) {
                fprintf(stderr, "vtpm-bench: invalid %s '%s'\n", name, s);
                exit(2);
        }
        return v;
}

int main(int argc, char **argv) {
        enum { OPT_OP = 1, OPT_COUNT, OPT_WARMUP, OPT_SOCKET, OPT_INPROC, OPT_DURATION, OPT_DIR, OPT_SIZE,
               OPT_XS, OPT_GUESTS, OPT_TIMEOUT, OPT_RELAYS };
        static const struct option opts[] = {
                { "op", required_argument, NULL, OPT_OP },
                { "count", required_argument, NULL, OPT_COUNT },
                { "warmup", required_argument, NULL, OPT_WARMUP },
                { "socket", required_argument, NULL, OPT_SOCKET },
                { "inproc", no_argument, NULL, OPT_INPROC },
                { "duration-ms", required_argument, NULL, OPT_DURATION },
                { "dir", required_argument, NULL, OPT_DIR },
                { "size", required_argument, NULL, OPT_SIZE },
                { "xs-socket", required_argument, NULL, OPT_XS },
                { "guests", required_argument, NULL, OPT_GUESTS },
                { "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
                { "relays", required_argument, NULL, OPT_RELAYS },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *cmd, *op = NULL, *sock = NULL, *dir = NULL, *xs = NULL;
        unsigned long count = 0, warmup = 0, duration = 0, size = 0, guests = 0, timeout = 60000, relays = 0;
        bool inproc = false;
        int c;

        if (argc < 2)
                usage(2);
        cmd = argv[1];
        if (streq(cmd, "--help") || streq(cmd, "-h"))
                usage(0);
        optind = 2;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case OPT_OP:
                        op = optarg;
                        break;
                case OPT_COUNT:
                        count = num_arg("--count", optarg, 10000000);
                        break;
                case OPT_WARMUP:
                        warmup = num_arg("--warmup", optarg, 1000000);
                        break;
                case OPT_SOCKET:
                        sock = optarg;
                        break;
                case OPT_INPROC:
                        inproc = true;
                        break;
                case OPT_DURATION:
                        duration = num_arg("--duration-ms", optarg, 3600000);
                        break;
                case OPT_DIR:
                        dir = optarg;
                        break;
                case OPT_SIZE:
                        size = num_arg("--size", optarg, 64u << 20);
                        break;
                case OPT_XS:
                        xs = optarg;
                        break;
                case OPT_GUESTS:
                        guests = num_arg("--guests", optarg, DOMID_LIMIT - 1);
                        break;
                case OPT_TIMEOUT:
                        timeout = num_arg("--timeout-ms", optarg, 3600000);
                        break;
                case OPT_RELAYS:
                        relays = num_arg("--relays", optarg, HOPS_MAX_RELAYS);
                        break;
                case 'h':
                        usage(0);
                default:
                        usage(2);
                }
        }

        if (streq(cmd, "latency")) {
                if (!op || count == 0 || optind != argc || (!!sock == inproc))
                        usage(2);
                return cmd_latency(op, count, warmup, sock, dir, size);
        }
        if (streq(cmd, "throughput")) {
                if (duration == 0 || optind >= argc)
                        usage(2);
                return cmd_throughput(duration, argv + optind, (size_t) (argc - optind));
        }
        if (streq(cmd, "fsync")) {
                if (!dir || count == 0 || optind != argc)
                        usage(2);
                return cmd_fsync(dir, size, count);
        }
        if (streq(cmd, "watch-connect")) {
                if (!xs || guests == 0 || optind != argc)
                        usage(2);
                return cmd_watch_connect(xs, guests, timeout);
        }
        if (streq(cmd, "hops")) {
                if (count == 0 || optind != argc)
                        usage(2);
                return cmd_hops(relays, count, warmup);
        }
        usage(2);
}
