/* SPDX-License-Identifier: BSD-3-Clause */
/* The emulator front: QEMU's TPM emulator protocol (emu-front.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "emu-front.h"
#include "emulator.h"
#include "log.h"
#include "util.h"

/* What this front implements (QEMU needs INIT, SHUTDOWN, GET/RESET_TPMESTABLISHED,
 * SET_LOCALITY, SET_DATAFD, STOP, SET_BUFFERSIZE; the state blobs make
 * migration and snapshots possible). No hashing (DRTM), no GET_INFO. */
#define EMU_FRONT_CAPS                                                                                        \
        (EMU_CAP_INIT | EMU_CAP_SHUTDOWN | EMU_CAP_GET_TPMESTABLISHED | EMU_CAP_SET_LOCALITY |               \
         EMU_CAP_CANCEL_TPM_CMD | EMU_CAP_STORE_VOLATILE | EMU_CAP_RESET_TPMESTABLISHED |                      \
         EMU_CAP_GET_STATEBLOB | EMU_CAP_SET_STATEBLOB | EMU_CAP_STOP | EMU_CAP_GET_CONFIG |                   \
         EMU_CAP_SET_DATAFD | EMU_CAP_SET_BUFFERSIZE | EMU_CAP_LOCK_STORAGE)

struct EmuFront {
        int control_fd;
        int data_fd;
        TpmFamily family;
        size_t buffer_size;
        const EmuFrontOps *ops;
        void *userdata;
        void (*trace)(void *userdata, bool control, uint32_t code, uint32_t result);
        uint32_t cmd_code; /* of the control request being answered */
        uint8_t locality;
        /* A data command being received. */
        uint8_t *cmd;
        size_t cmd_have;
        /* A SET_STATEBLOB whose data is still arriving. */
        uint8_t *blob;
        size_t blob_have, blob_size;
        EmuRequest blob_req;
        uint64_t commands, rejected;
};

int emu_front_new(const EmuFrontConfig *c, EmuFront **ret) {
        EmuFront *f;

        if (!c || !c->ops || c->control_fd < 0 || c->buffer_size < TPM_HEADER_SIZE)
                return -EINVAL;
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->cmd = malloc(c->buffer_size);
        if (!f->cmd) {
                free(f);
                return -ENOMEM;
        }
        f->control_fd = c->control_fd;
        f->data_fd = -1;
        f->family = c->family;
        f->buffer_size = c->buffer_size;
        f->ops = c->ops;
        f->userdata = c->userdata;
        f->trace = c->trace;
        *ret = f;
        return 0;
}

EmuFront *emu_front_free(EmuFront *f) {
        if (!f)
                return NULL;
        safe_close(f->data_fd);
        free(f->cmd);
        free(f->blob);
        free(f);
        return NULL;
}

int emu_front_data_fd(const EmuFront *f) {
        return f->data_fd;
}

uint64_t emu_front_commands(const EmuFront *f) {
        return f->commands;
}

uint64_t emu_front_rejected(const EmuFront *f) {
        return f->rejected;
}

static int send_all(int fd, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int reply(EmuFront *f, const uint8_t *p, size_t n) {
        /* Every answer but GET_CAPABILITY's starts with the result; a blob's data follows its header. */
        if (f->trace && f->cmd_code && n >= 4)
                f->trace(f->userdata, true, f->cmd_code, f->cmd_code == EMU_CMD_GET_CAPABILITY ? 0 : tpm_be32(p));
        f->cmd_code = 0;
        return send_all(f->control_fd, p, n);
}

static int reply_result(EmuFront *f, uint32_t res) {
        uint8_t out[EMU_RESPONSE_MAX];
        if (res != EMU_RES_SUCCESS)
                f->rejected++;
        return reply(f, out, emu_response_result(out, res));
}

static bool running(EmuFront *f) {
        return f->ops->powered(f->userdata);
}

static void power_off(EmuFront *f) {
        if (running(f))
                f->ops->power_off(f->userdata);
}

static int get_stateblob(EmuFront *f, const EmuRequest *r) {
        uint8_t hdr[EMU_STATEBLOB_HEADER_SIZE];
        _cleanup_free_ uint8_t *blob = NULL;
        size_t len = 0;
        int k;

        if (r->blob_type < EMU_BLOB_PERMANENT || r->blob_type > EMU_BLOB_SAVESTATE) {
                f->rejected++;
                return reply(f, hdr, emu_response_stateblob_header(hdr, EMU_RES_BAD_PARAMETER, 0, 0));
        }
        if (r->blob_type == EMU_BLOB_VOLATILE && !running(f)) {
                f->rejected++;
                return reply(f, hdr, emu_response_stateblob_header(hdr, EMU_RES_BAD_MODE, 0, 0));
        }
        k = f->ops->get_blob(f->userdata, r->blob_type, &blob, &len);
        if (k < 0 || len > UINT32_MAX) {
                f->rejected++;
                return reply(f, hdr, emu_response_stateblob_header(hdr, EMU_RES_FAIL, 0, 0));
        }
        /* The socket protocol sends the rest of the blob from the offset in one answer. */
        size_t off = r->blob_offset < len ? r->blob_offset : len;
        k = reply(f, hdr, emu_response_stateblob_header(hdr, EMU_RES_SUCCESS, 0, (uint32_t) (len - off)));
        if (k >= 0 && len > off)
                k = reply(f, blob + off, len - off);
        if (blob)
                explicit_wipe(blob, len);
        return k;
}

static int finish_stateblob(EmuFront *f) {
        const EmuRequest *r = &f->blob_req;
        int k;

        uint32_t res = EMU_RES_SUCCESS;
        if (r->blob_type < EMU_BLOB_PERMANENT || r->blob_type > EMU_BLOB_SAVESTATE ||
            (r->blob_flags & EMU_STATE_FLAG_ENCRYPTED))
                res = EMU_RES_BAD_PARAMETER; /* no migration key here: only blobs in the clear */
        else if (running(f))
                res = EMU_RES_BAD_MODE; /* QEMU sends STOP first */
        else if (f->ops->set_blob(f->userdata, r->blob_type, f->blob, f->blob_size) < 0)
                res = EMU_RES_FAIL;
        if (f->blob)
                explicit_wipe(f->blob, f->blob_size);
        free(f->blob);
        f->blob = NULL;
        f->blob_have = f->blob_size = 0;
        f->cmd_code = EMU_CMD_SET_STATEBLOB;
        k = reply_result(f, res);
        return k;
}

/* More of a SET_STATEBLOB's data. */
static int on_blob_data(EmuFront *f) {
        ssize_t n = read(f->control_fd, f->blob + f->blob_have, f->blob_size - f->blob_have);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : negative_errno();
        if (n == 0)
                return 1;
        f->blob_have += (size_t) n;
        return f->blob_have == f->blob_size ? finish_stateblob(f) : 0;
}

static int start_stateblob(EmuFront *f, const EmuRequest *r, const uint8_t *buf, size_t n) {
        size_t have = n - r->data_offset;

        if (have > r->length)
                have = r->length; /* bytes past the blob: not a request of their own (one read, one request) */
        f->blob_req = *r;
        f->blob_size = r->length;
        f->blob_have = have;
        f->blob = malloc(r->length ? r->length : 1);
        if (!f->blob)
                return reply_result(f, EMU_RES_FAIL);
        memcpy(f->blob, buf + r->data_offset, have);
        return f->blob_have == f->blob_size ? finish_stateblob(f) : 0;
}

/* One request: fds that came with anything but SET_DATAFD are closed. */
static int handle(EmuFront *f, const uint8_t *buf, size_t n, int fd) {
        uint8_t out[EMU_RESPONSE_MAX];
        _cleanup_close_ int passed = fd;
        EmuRequest r;
        bool est = false;
        int k;

        k = emu_request_parse(buf, n, &r);
        f->cmd_code = r.cmd ? r.cmd : UINT32_MAX;
        if (k == -EOPNOTSUPP)
                return reply_result(f, EMU_RES_BAD_ORDINAL);
        if (k == -EMSGSIZE)
                return reply_result(f, EMU_RES_SIZE);
        if (k < 0)
                return reply_result(f, EMU_RES_BAD_PARAMETER); /* shorter than its fixed part */

        switch (r.cmd) {
        case EMU_CMD_GET_CAPABILITY:
                return reply(f, out, emu_response_capability(out, EMU_FRONT_CAPS));
        case EMU_CMD_SET_DATAFD:
                if (passed < 0)
                        return reply_result(f, EMU_RES_FAIL);
                safe_close(f->data_fd);
                f->data_fd = TAKE_FD(passed);
                f->cmd_have = 0;
                return reply_result(f, EMU_RES_SUCCESS);
        case EMU_CMD_INIT:
                power_off(f);
                if (f->ops->power_on(f->userdata, r.init_flags & EMU_INIT_FLAG_DELETE_VOLATILE) < 0)
                        return reply_result(f, EMU_RES_FAIL);
                                return reply_result(f, EMU_RES_SUCCESS);
        case EMU_CMD_STOP:
                power_off(f);
                return reply_result(f, EMU_RES_SUCCESS);
        case EMU_CMD_SHUTDOWN:
                power_off(f);
                k = reply_result(f, EMU_RES_SUCCESS);
                return k < 0 ? k : 1;
        case EMU_CMD_SET_LOCALITY:
                if (r.locality > 4)
                        return reply_result(f, EMU_RES_BAD_PARAMETER);
                f->locality = r.locality;
                return reply_result(f, EMU_RES_SUCCESS);
        case EMU_CMD_GET_TPMESTABLISHED:
                if (!running(f) || f->ops->established(f->userdata, &est) < 0) {
                        f->rejected++;
                        return reply(f, out, emu_response_established(out, EMU_RES_FAIL, false));
                }
                return reply(f, out, emu_response_established(out, EMU_RES_SUCCESS, est));
        case EMU_CMD_RESET_TPMESTABLISHED:
                if (r.locality > 4)
                        return reply_result(f, EMU_RES_BAD_PARAMETER);
                if (!running(f) || f->ops->reset_established(f->userdata, r.locality) < 0)
                        return reply_result(f, EMU_RES_FAIL);
                return reply_result(f, EMU_RES_SUCCESS);
        case EMU_CMD_CANCEL_TPM_CMD:
                /* Commands run on this thread: none can be running while this is read. */
                return reply_result(f, EMU_RES_SUCCESS);
        case EMU_CMD_STORE_VOLATILE:
        case EMU_CMD_LOCK_STORAGE:
                /* State is written as it changes; the lock is held for as long as the front serves. */
                return reply_result(f, EMU_RES_SUCCESS);
        case EMU_CMD_SET_BUFFERSIZE:
                if (r.buffer_size != 0 && running(f))
                        return reply_result(f, EMU_RES_BAD_MODE);
                /* One size: whatever is asked, this is the one in use (swtpm answers so too). */
                return reply(f, out,
                             emu_response_buffer_size(out, EMU_RES_SUCCESS, (uint32_t) f->buffer_size,
                                                      (uint32_t) f->buffer_size, (uint32_t) f->buffer_size));
        case EMU_CMD_GET_CONFIG:
                return reply(f, out, emu_response_config(out, EMU_RES_SUCCESS, 0));
        case EMU_CMD_GET_STATEBLOB:
                return get_stateblob(f, &r);
        case EMU_CMD_SET_STATEBLOB:
                return start_stateblob(f, &r, buf, n);
        case EMU_CMD_HASH_START:
        case EMU_CMD_HASH_DATA:
        case EMU_CMD_HASH_END:
        case EMU_CMD_GET_INFO:
        default:
                return reply_result(f, EMU_RES_BAD_ORDINAL);
        }
}

int emu_front_on_control(EmuFront *f) {
        uint8_t buf[EMU_REQUEST_MAX + 16];
        union {
                struct cmsghdr h;
                uint8_t b[CMSG_SPACE(sizeof(int))];
        } cm;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm, .msg_controllen = sizeof(cm) };
        int fd = -1;
        ssize_t n;

        if (f->blob)
                return on_blob_data(f);
        n = recvmsg(f->control_fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : negative_errno();
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        int fds[4];
                        if (nfd > 4)
                                nfd = 4; /* MSG_CTRUNC: the rest were never received */
                        memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
                        for (size_t i = 0; i < nfd; i++) {
                                if (fd < 0)
                                        fd = fds[i];
                                else
                                        safe_close(fds[i]);
                        }
                }
        if (n == 0) {
                safe_close(fd);
                return 1;
        }
        return handle(f, buf, (size_t) n, fd);
}

static int data_send(EmuFront *f, const uint8_t *p, size_t n) {
        if (f->trace && n >= TPM_HEADER_SIZE)
                f->trace(f->userdata, false, tpm_be32(f->cmd + 6), tpm_be32(p + 6));
        return send_all(f->data_fd, p, n);
}

static int data_error(EmuFront *f, uint32_t rc) {
        uint8_t err[TPM_HEADER_SIZE];
        f->rejected++;
        tpm_error_response(f->family, rc, err);
        return data_send(f, err, sizeof(err));
}

int emu_front_on_data(EmuFront *f) {
        size_t want = TPM_HEADER_SIZE;
        TpmHeader h;
        ssize_t n;
        int k;

        if (f->data_fd < 0)
                return -EBADF;
        if (f->cmd_have >= TPM_HEADER_SIZE) {
                (void) tpm_header_parse(f->cmd, f->cmd_have, &h);
                want = h.size;
        }
        n = read(f->data_fd, f->cmd + f->cmd_have, want - f->cmd_have);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : negative_errno();
        if (n == 0)
                return 1;
        f->cmd_have += (size_t) n;
        if (f->cmd_have < TPM_HEADER_SIZE)
                return 0;
        (void) tpm_header_parse(f->cmd, f->cmd_have, &h);
        if (h.size < TPM_HEADER_SIZE || h.size > f->buffer_size) {
                /* The stream cannot be resynchronised after a bad size: answer, then end it. */
                f->cmd_have = 0;
                k = data_error(f, tpm_rc_command_size(f->family));
                return k < 0 ? k : 1;
        }
        if (f->cmd_have < h.size)
                return 0;
        f->cmd_have = 0;

        if (!running(f))
                /* QEMU's probes before INIT (TPM2_ReadClock, TPM 1.2 GetTicks) look only at the tag. */
                return data_error(f, f->family == TPM_FAMILY_2_0 ? TPM2_RC_INITIALIZE : TPM12_INVALID_POSTINIT);

        const uint8_t *resp = NULL;
        size_t len = 0;
        k = f->ops->process(f->userdata, f->cmd, h.size, f->locality, &resp, &len);
        if (k < 0 || !resp || len < TPM_HEADER_SIZE || len > f->buffer_size)
                return data_error(f, tpm_rc_failure(f->family));
        f->commands++;
        return data_send(f, resp, len);
}
