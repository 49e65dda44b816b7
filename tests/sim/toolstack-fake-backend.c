/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A stand-in for vtpmd in toolstack tests: it runs the xenbus state machine of
 * a vtpm backend (research xen-protocol.md §8 item 3) without a data path, so
 * the toolstack and launcher can be tested before, and independently of, the
 * real daemon. It maps nothing and answers no TPM command.
 *
 *   toolstack-fake-backend [--platform SPEC] [--log-level L] [--no-initwait] [--no-close]
 *
 * --no-initwait never leaves Initialising; --no-close ignores the toolstack's
 * online=0/state=5 (so removal has to time out). Notifies READY=1 like vtpmd.
 * Every state it writes is logged to stderr as "be DOMID/DEVID A -> B".
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <xenstore.h>

#include "parse.h"
#include "util.h"

#define BACKEND_ROOT "/local/domain/0/backend/vtpm"

static volatile sig_atomic_t stop_requested;
static bool no_initwait, no_close;

static void on_term(int sig) {
        stop_requested = 1;
}

/* -1 when missing or not a number. */
static int read_int(struct xs_handle *xs, xs_transaction_t tx, const char *path) {
        _cleanup_free_ char *v = NULL;
        unsigned len;
        uint32_t n;

        v = xs_read(xs, tx, path, &len);
        if (!v || parse_u32_max(v, 255, &n) < 0)
                return -1;
        return (int) n;
}

static int next_state(int s, int online, int fe) {
        switch (s) {
        case 1:
                return no_initwait ? -1 : 2;
        case 2:
                if (online == 1 && (fe == 3 || fe == 4))
                        return 4;
                if (fe < 0 || online == 0)
                        return no_close ? -1 : 6;
                return -1;
        case 4:
                if (fe == 5)
                        return 5;
                if (fe == 6)
                        return online == 1 ? 2 : 6;
                if (fe < 0)
                        return no_close ? -1 : 6;
                return -1;
        case 5:
                if (online == 0 || fe < 0)
                        return no_close ? -1 : 6;
                if (fe == 6)
                        return 2;
                return -1;
        default:
                return -1;
        }
}

/* Moves one device on if its state calls for it. The write happens only if the
 * node still holds the state the decision was based on, so a dir the
 * toolstack just removed is never recreated. */
static void step_device(struct xs_handle *xs, uint32_t domid, const char *devid) {
        char be[128], p[192];
        _cleanup_free_ char *fe = NULL;
        unsigned len;
        int s, online, fs, ns;

        /* Bounded: two decimal u32 and a fixed prefix. */
        snprintf(be, sizeof(be), BACKEND_ROOT "/%u/%s", domid, devid);
        snprintf(p, sizeof(p), "%s/state", be);
        s = read_int(xs, XBT_NULL, p);
        if (s < 0)
                return;
        snprintf(p, sizeof(p), "%s/online", be);
        online = read_int(xs, XBT_NULL, p);
        snprintf(p, sizeof(p), "%s/frontend", be);
        fe = xs_read(xs, XBT_NULL, p, &len);
        fs = -1;
        if (fe) {
                _cleanup_free_ char *fp = NULL;
                if (asprintf(&fp, "%s/state", fe) >= 0)
                        fs = read_int(xs, XBT_NULL, fp);
        }
        ns = next_state(s, online, fs);
        if (ns < 0 || ns == s)
                return;

        for (;;) {
                xs_transaction_t tx = xs_transaction_start(xs);
                char v[8];

                if (tx == XBT_NULL)
                        return;
                snprintf(p, sizeof(p), "%s/state", be);
                if (read_int(xs, tx, p) != s) {
                        xs_transaction_end(xs, tx, true);
                        return;
                }
                if (ns == 2) {
                        char f[192];
                        snprintf(f, sizeof(f), "%s/feature-protocol-v2", be);
                        xs_write(xs, tx, f, "1", 1);
                }
                snprintf(v, sizeof(v), "%d", ns);
                xs_write(xs, tx, p, v, strlen(v));
                if (xs_transaction_end(xs, tx, false))
                        break;
                if (errno != EAGAIN)
                        return;
        }
        fprintf(stderr, "be %u/%s %d -> %d (fe=%d online=%d)\n", domid, devid, s, ns, fs, online);
        if (ns == 2) {
                /* Like vtpmd's --initwait-ms: libxl must be able to read exactly
                 * InitWait before a hot-attached frontend moves us on. */
                struct timespec dwell = { .tv_nsec = 100 * 1000 * 1000 };
                (void) nanosleep(&dwell, NULL);
        }
}

static void rescan(struct xs_handle *xs) {
        _cleanup_free_ char **doms = NULL;
        unsigned nd = 0;

        doms = xs_directory(xs, XBT_NULL, BACKEND_ROOT, &nd);
        for (unsigned i = 0; doms && i < nd; i++) {
                _cleanup_free_ char **devs = NULL;
                char p[96];
                unsigned nv = 0;
                uint32_t domid;

                if (parse_u32(doms[i], &domid) < 0)
                        continue;
                snprintf(p, sizeof(p), BACKEND_ROOT "/%u", domid);
                devs = xs_directory(xs, XBT_NULL, p, &nv);
                for (unsigned j = 0; devs && j < nv; j++) {
                        uint32_t devid;
                        if (parse_u32(devs[j], &devid) >= 0)
                                step_device(xs, domid, devs[j]);
                }
        }
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "platform", required_argument, NULL, 'p' },
                { "log-level", required_argument, NULL, 'l' },
                { "no-initwait", no_argument, NULL, 'I' },
                { "no-close", no_argument, NULL, 'C' },
                {}
        };
        struct xs_handle *xs;
        struct sigaction sa = { .sa_handler = on_term };
        sigset_t block, orig;
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'p':
                case 'l':
                        break;
                case 'I':
                        no_initwait = true;
                        break;
                case 'C':
                        no_close = true;
                        break;
                default:
                        return 2;
                }
        }

        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigprocmask(SIG_BLOCK, &block, &orig);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);

        xs = xs_open(0);
        if (!xs) {
                fprintf(stderr, "fake-backend: xs_open: %m\n");
                return 1;
        }
        /* dom0 sees every write under /local/domain, frontends included. */
        if (!xs_watch(xs, "/local/domain", "all")) {
                fprintf(stderr, "fake-backend: xs_watch: %m\n");
                return 1;
        }
        fprintf(stderr, "fake-backend: ready%s%s\n", no_initwait ? " no-initwait" : "",
                no_close ? " no-close" : "");
        sd_notify(0, "READY=1");

        struct pollfd pfd = { .fd = xs_fileno(xs), .events = POLLIN };
        while (!stop_requested) {
                char **ev;
                bool any = false;

                while ((ev = xs_check_watch(xs))) {
                        any = true;
                        free(ev);
                }
                if (any)
                        rescan(xs);
                if (ppoll(&pfd, 1, NULL, &orig) < 0 && errno != EINTR)
                        break;
                if (pfd.revents & (POLLERR | POLLHUP))
                        break;
        }
        fprintf(stderr, "fake-backend: exiting\n");
        xs_close(xs);
        return 0;
}
