/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * emu-serve: the worker's emulator front (daemon/worker/emu-front.h) on
 * libtpms in memory, listening on a Unix socket, for real clients of QEMU's
 * TPM emulator protocol: QEMU itself (-chardev socket -tpmdev emulator),
 * swtpm_ioctl and tpm2-tools (through emu-data). Not vtpmd: no state on disk,
 * no confinement; it tests the protocol the worker speaks.
 *
 *   emu-serve --socket PATH [--tpm 2.0|1.2] [--log FILE]
 *
 * Serves one control connection at a time, one after the other; the TPM (and
 * its power state) outlives the connections, as swtpm's does. Prints
 * "listening" on stdout once clients may connect; ends at SIGTERM or SIGINT.
 * --log FILE: one line per control request answered ("ctl NAME 0xRESULT")
 * and per data command ("tpm 0xORDINAL 0xRC"), for the tests to read.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "emu-front.h"
#include "emu-tpm.h"
#include "emulator.h"
#include "util.h"

static volatile sig_atomic_t quit;
static FILE *trace_file;


static void trace(void *userdata, bool control, uint32_t code, uint32_t result) {
        (void) userdata;
        if (!trace_file)
                return;
        if (control) {
                const char *name = emu_cmd_to_string(code);
                if (name)
                        fprintf(trace_file, "ctl %s 0x%x\n", name, result);
                else
                        fprintf(trace_file, "ctl 0x%x 0x%x\n", code, result);
        } else
                fprintf(trace_file, "tpm 0x%08x 0x%x\n", code, result);
        fflush(trace_file);
}

static void on_signal(int sig) {
        (void) sig;
        quit = 1;
}

static int listen_on(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        return fd;
}

/* Serves one connection until it ends. */
static void serve(int conn, EmuTpm *tpm, TpmFamily family) {
        EmuFront *f = NULL;
        EmuFrontConfig c = {
                .control_fd = conn,
                .family = family,
                .buffer_size = TPM_INSTANCE_BUFFER_SIZE,
                .ops = &emu_tpm_ops,
                .userdata = tpm,
                .trace = trace,
        };

        if (emu_front_new(&c, &f) < 0)
                return;
        while (!quit) {
                struct pollfd p[2] = {
                        { .fd = conn, .events = POLLIN },
                        { .fd = emu_front_data_fd(f), .events = POLLIN },
                };
                if (poll(p, emu_front_data_fd(f) >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents) {
                        int r = emu_front_on_control(f);
                        if (r != 0) {
                                fprintf(stderr, "emu-serve: control channel %s\n", r > 0 ? "ended" : strerror(-r));
                                break;
                        }
                }
                if (emu_front_data_fd(f) >= 0 && p[1].revents) {
                        int r = emu_front_on_data(f);
                        if (r != 0) {
                                /* The data channel alone ended: the control channel may bring another. */
                                fprintf(stderr, "emu-serve: data channel %s\n", r > 0 ? "ended" : strerror(-r));
                                if (r < 0)
                                        break;
                        }
                }
        }
        fprintf(stderr, "emu-serve: %" PRIu64 " commands, %" PRIu64 " refused\n", emu_front_commands(f),
                emu_front_rejected(f));
        emu_front_free(f);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "tpm", required_argument, NULL, 't' },
                { "log", required_argument, NULL, 'l' },
                {},
        };
        const char *path = NULL;
        TpmFamily family = TPM_FAMILY_2_0;
        TpmStore *store = NULL;
        EmuTpm *tpm = NULL;
        int c, lfd;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        path = optarg;
                        break;
                case 't':
                        if (tpm_family_from_string(optarg, &family) < 0) {
                                fprintf(stderr, "emu-serve: --tpm 2.0 or 1.2\n");
                                return 2;
                        }
                        break;
                case 'l':
                        trace_file = fopen(optarg, "ae");
                        if (!trace_file) {
                                fprintf(stderr, "emu-serve: %s: %s\n", optarg, strerror(errno));
                                return 1;
                        }
                        break;
                default:
                        return 2;
                }
        if (!path) {
                fprintf(stderr, "usage: emu-serve --socket PATH [--tpm 2.0|1.2]\n");
                return 2;
        }
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (tpm_store_memory_new(&store) < 0 || emu_tpm_new(family, store, &tpm) < 0)
                return 1;
        lfd = listen_on(path);
        if (lfd < 0) {
                fprintf(stderr, "emu-serve: %s: %s\n", path, strerror(-lfd));
                return 1;
        }
        printf("listening\n");
        fflush(stdout);
        while (!quit) {
                int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (conn < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                serve(conn, tpm, family);
                close(conn);
        }
        close(lfd);
        (void) unlink(path);
        emu_tpm_free(tpm);
        tpm_store_free(store);
        return 0;
}
