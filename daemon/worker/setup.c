/* SPDX-License-Identifier: BSD-3-Clause */
/* The worker's privileged set-up and confinement, and its event channel (setup.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "confine.h"
#include "evtchn.h"
#include "gnttab.h"
#include "log.h"
#include "platform.h"
#include "setup.h"
#include "tpmif.h"
#include "util.h"

#define WORKER_OPEN_FILES_MAX 64u
#define WORKER_FILE_SIZE_MAX (16u << 20)

struct Setup {
        IpcStart *start;
        TpmFamily family;
        int ipc_fd;

        Platform *platform;
        Gnttab *gnttab;
        Evtchn *evtchn;
        uint8_t *page; /* the guest's page: it changes under us */
        uint32_t local_port;
        bool bound;

        WorkerState *state;
        TpmThread *tpm;
        PageServer *server;
};

static bool setup_offline(const Setup *s) {
        return s->start->flags & IPC_START_OFFLINE;
}

int setup_new(IpcStart *start, int ipc_fd, int state_fd, Setup **ret) {
        _cleanup_close_ int fd = state_fd;
        _cleanup_free_ Setup *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->start = start;
        s->ipc_fd = ipc_fd;
        int r = worker_state_new(start, ipc_fd, TAKE_FD(fd), &s->state);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

Setup *setup_free(Setup *s) {
        if (!s)
                return NULL;
        s->tpm = tpm_thread_free(s->tpm);
        s->state = worker_state_free(s->state);
        s->server = page_server_free(s->server);
        if (s->page) {
                int r = gnttab_unmap(s->gnttab, s->page);
                if (r < 0)
                        log_msg(LOG_INFO, "unmapping grant %u failed: %s", s->start->ring_ref, strerror(-r));
                s->page = NULL;
        }
        if (s->bound) {
                int r = evtchn_unbind(s->evtchn, s->local_port);
                if (r < 0)
                        log_msg(LOG_INFO, "unbinding port %u failed: %s", s->local_port, strerror(-r));
                s->bound = false;
        }
        s->evtchn = evtchn_close(s->evtchn);
        s->gnttab = gnttab_close(s->gnttab);
        s->platform = platform_free(s->platform);
        free(s);
        return NULL;
}

PageServer *setup_server(Setup *s) {
        return s->server;
}

TpmThread *setup_tpm(Setup *s) {
        return s->tpm;
}

WorkerState *setup_state(Setup *s) {
        return s->state;
}

uint32_t setup_local_port(const Setup *s) {
        return s->local_port;
}

int setup_event_fd(Setup *s) {
        return evtchn_fd(s->evtchn);
}

/* Pending -> unmask -> only then look at the page (research §7: a change
 * after our look then raises a new event). */
int setup_on_event(Setup *s, uint64_t *events) {
        uint32_t port;
        int r = evtchn_pending(s->evtchn, &port);
        if (r == -EAGAIN || r == -EINTR)
                return 0;
        if (r < 0)
                return r;
        (*events)++;
        r = evtchn_unmask(s->evtchn, port);
        if (r < 0)
                return r;
        if (port == s->local_port)
                page_server_check(s->server);
        return 0;
}

static int page_run(void *userdata, const uint8_t *cmd, size_t len, uint8_t locality, bool quick,
                    const uint8_t **ret_resp, size_t *ret_len) {
        Setup *s = userdata;
        return tpm_thread_page_run(s->tpm, cmd, len, locality, quick, ret_resp, ret_len);
}

static void page_cancel(void *userdata) {
        Setup *s = userdata;
        tpm_thread_cancel(s->tpm);
}

static void page_notify(void *userdata) {
        Setup *s = userdata;
        int r = evtchn_notify(s->evtchn, s->local_port);
        if (r < 0)
                log_msg(LOG_INFO, "notify on port %u failed: %s", s->local_port, strerror(-r));
}

static const PageServerOps page_ops = {
        .run = page_run,
        .cancel = page_cancel,
        .notify = page_notify,
};

/* Everything privileged is done (grant mapped, event channel bound, state
 * read, libtpms and OpenSSL initialised); nothing the guest wrote has been
 * read yet. From here on the worker holds only what lib/confine.h leaves.
 * Every failure is logged here. */
static int setup_confine(Setup *s) {
        _cleanup_close_ int san_fd = -1;
        ConfinePolicy p = {
                .uid = s->start->uid,
                .gid = s->start->gid,
                .address_space_max = s->start->memory_max,
                /* ~10 in use: IPC, signalfd, eventfd, event channel, grant,
                 * state directory and its lock, a state file being replaced. */
                .open_files_max = WORKER_OPEN_FILES_MAX,
                /* The largest state file is a few hundred KiB (libtpms NV). */
                .file_size_max = WORKER_FILE_SIZE_MAX,
                .seccomp = true,
                /* Its disk budget: only the files that exist now, each up to file_size_max. */
                .no_create = worker_state_files_fixed(s->state),
        };
        ConfineResult res = {};
        int r;

        int dir_fd = worker_state_dir_fd(s->state);
        if (dir_fd >= 0)
                p.dir_fds[p.n_dir_fds++] = dir_fd;
        /* Not the simulated hypervisor's directory: its event channel, the
         * sockets it wakes and the grant are open already, and everything
         * else in there is other guests' (docs/security.md). */
#ifdef VTPMD_SANITIZED
        /* Sanitizer reports must reach their log directory (tests only). */
        const char *san = getenv("VTPMD_SANITIZER_LOG_DIR");
        if (san && (san_fd = open(san, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0)
                p.dir_fds[p.n_dir_fds++] = san_fd;
        /* A report is a file the sanitizer creates there: in these builds the
         * disk budget gives way to the reports (test-disk-budget skips). */
        p.no_create = false;
#endif
        /* Read now: getuid is not on the allow-list. */
        unsigned uid = p.uid != 0 ? p.uid : (unsigned) getuid(), gid = p.uid != 0 ? p.gid : (unsigned) getgid();
        r = confine_apply(&p, &res);
        if (r < 0) {
                log_msg(LOG_INFO, "confinement failed: %s", strerror(-r));
                return r;
        }
        log_msg(LOG_INFO, "confined: uid %u gid %u, Landlock %s%.0d, seccomp allow-list of %zu system calls, %s", uid,
                 gid, res.landlock_abi > 0 ? "ABI " : "unavailable (file-system view not reduced)",
                 res.landlock_abi, res.n_syscalls, p.no_create ? "no new files" : "may create files");
        return 0;
}

static int setup_fail(SetupFailure *ret, IpcStage stage, int error, bool logged) {
        *ret = (SetupFailure){ .stage = stage, .error = error, .logged = logged };
        return error;
}

/* The grant mapped and the event channel bound, both restricted to the guest first. */
static int setup_connect(Setup *s, SetupFailure *ret_failure) {
        const IpcStart *st = s->start;
        void *addr = NULL;
        int r;

        r = gnttab_open(s->platform, &s->gnttab);
        if (r < 0)
                return setup_fail(ret_failure, IPC_STAGE_MAP, r, false);
        r = evtchn_open(s->platform, &s->evtchn);
        if (r < 0)
                return setup_fail(ret_failure, IPC_STAGE_BIND, r, false);
        /* Before a single guest byte is read, the handles reach only this guest. */
        r = gnttab_restrict(s->gnttab, st->domid);
        if (r >= 0)
                r = evtchn_restrict(s->evtchn, st->domid);
        if (r < 0)
                return setup_fail(ret_failure, IPC_STAGE_CONFINE, r, false);

        r = gnttab_map(s->gnttab, st->domid, st->ring_ref, true, &addr);
        if (r < 0)
                return setup_fail(ret_failure, IPC_STAGE_MAP, r, false);
        s->page = addr;

        r = evtchn_bind_interdomain(s->evtchn, st->domid, st->evtchn_port, &s->local_port);
        if (r < 0)
                return setup_fail(ret_failure, IPC_STAGE_BIND, r, false);
        s->bound = true;
        return 0;
}

/* libtpms from the state, powered on unless it resumed, and the TPM thread's
 * hand-off (not yet the thread: that comes after confinement). */
static int setup_start_tpm(Setup *s, SetupFailure *ret_failure) {
        TpmInstance *tpm = NULL;
        IpcStage stage = IPC_STAGE_TPM;
        int r;

        int resumed = worker_state_restore(s->state, s->family, &tpm, &stage);
        if (resumed < 0)
                return setup_fail(ret_failure, stage, resumed, stage == IPC_STAGE_STATE);
        r = tpm_thread_new(s->family, tpm, s->state, &s->tpm);
        if (r < 0) {
                tpm_instance_free(tpm);
                return setup_fail(ret_failure, IPC_STAGE_TPM, r, false);
        }
        if (!resumed && s->family == TPM_FAMILY_2_0 && (s->start->flags & IPC_START_TPM_STARTUP)) {
                /* The Linux frontend never sends TPM2_Startup (research §2.9). */
                uint32_t rc = 0;
                r = tpm_instance_startup(tpm, &rc);
                if (r < 0) {
                        log_msg(LOG_INFO, "TPM2_Startup(CLEAR) answered 0x%x", rc);
                        return setup_fail(ret_failure, IPC_STAGE_TPM, r, true);
                }
        }
        if (setup_offline(s))
                return 0;

        r = tpm_thread_open_done(s->tpm);
        if (r < 0)
                return setup_fail(ret_failure, IPC_STAGE_TPM, r, false);
        PageServerConfig pc = {
                .page = s->page,
                .page_size = VTPM_XEN_PAGE_SIZE,
                .command_max = TPM_INSTANCE_BUFFER_SIZE,
                .family = s->family,
                .trace = s->start->flags & IPC_START_TRACE,
                .ops = &page_ops,
                .userdata = s,
        };
        r = page_server_new(&pc, &s->server);
        if (r < 0)
                return setup_fail(ret_failure, IPC_STAGE_TPM, r, false);
        return 0;
}

int setup_run(Setup *s, SetupFailure *ret_failure) {
        IpcStart *st = s->start;
        int r;

        /* ipc_decode() checked it; a wire value is still not trusted blindly. */
        if (st->family != TPM_FAMILY_2_0 && st->family != TPM_FAMILY_1_2)
                return setup_fail(ret_failure, IPC_STAGE_PARAMS, -EINVAL, false);
        s->family = (TpmFamily) st->family;

        if (!setup_offline(s)) {
                r = platform_parse(st->platform, 0, &s->platform);
                if (r < 0)
                        return setup_fail(ret_failure, IPC_STAGE_PARAMS, r, false);
        }

        /* Before the guest's page: a vTPM whose state is refused is not started. */
        if (st->flags & IPC_START_DURABLE) {
                r = worker_state_load(s->state, st->data_key);
                if (r < 0)
                        return setup_fail(ret_failure, IPC_STAGE_STATE, r, true);
        }

        if (!setup_offline(s)) {
                r = setup_connect(s, ret_failure);
                if (r < 0)
                        return r;
        }

        r = setup_start_tpm(s, ret_failure);
        if (r < 0)
                return r;

        r = setup_confine(s);
        if (r < 0)
                return setup_fail(ret_failure, IPC_STAGE_CONFINE, r, true);

        /* Offline, the I/O thread runs each command itself: there is no
         * guest to stay responsive to, and no cancel. */
        if (setup_offline(s))
                return 0;

        /* After confinement: the TPM thread inherits it (Landlock and
         * seccomp apply per thread, from creation on). */
        r = tpm_thread_start(s->tpm);
        if (r < 0)
                return setup_fail(ret_failure, IPC_STAGE_TPM, r, false);
        return 0;
}
