/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Feeds packets to ipc_decode(), the one choke point between supervisor and
 * worker. Every accepted packet must re-encode byte for byte (one encoding per
 * message) and decode again to the same message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *pkt, out[IPC_MAX_PACKET], again[IPC_MAX_PACKET];
        IpcMsg m, m2;
        size_t n;
        int r;

        pkt = fuzz_copy(data, size);
        r = ipc_decode(pkt, size, &m);
        free(pkt);
        if (r < 0) {
                if (r != -EBADMSG)
                        abort();
                return 0;
        }

        n = ipc_encode(&m, out);
        if (n != size || memcmp(out, data, size) != 0)
                abort();
        if (ipc_decode(out, n, &m2) < 0 || m2.type != m.type)
                abort();
        if (ipc_encode(&m2, again) != n || memcmp(again, out, n) != 0)
                abort();
        if (m.type == IPC_START && (m.start.uuid[IPC_UUID_LEN - 1] != '\0' ||
                                    m.start.platform[IPC_PLATFORM_MAX - 1] != '\0'))
                abort();
        if (m.type == IPC_FAILED && (m.failed.error >= 0 || !ipc_stage_to_string((IpcStage) m.failed.stage)))
                abort();
        if (m.type == IPC_START && (m.start.flags & IPC_START_RESTORE_VOLATILE) &&
            !(m.start.flags & IPC_START_DURABLE))
                abort();
        if (m.type == IPC_START && (m.start.flags & IPC_START_OFFLINE) &&
            (!(m.start.flags & IPC_START_DURABLE) ||
             ((m.start.flags & IPC_START_RESTORE_VOLATILE) && !(m.start.flags & IPC_START_PEEK)) ||
             m.start.domid || m.start.devid || m.start.ring_ref || m.start.evtchn_port))
                abort();
        if (m.type == IPC_START && (m.start.flags & IPC_START_PEEK) && !(m.start.flags & IPC_START_OFFLINE))
                abort();
        if ((m.type == IPC_COMMAND || m.type == IPC_RESPONSE) &&
            (m.tpm.len < 10 || m.tpm.len > IPC_TPM_MAX || m.tpm.len != size - IPC_HEADER_SIZE ||
             ((uint32_t) m.tpm.data[2] << 24 | (uint32_t) m.tpm.data[3] << 16 | (uint32_t) m.tpm.data[4] << 8 |
              m.tpm.data[5]) != m.tpm.len))
                abort();
        if (m.type == IPC_STATE &&
            ((m.state.kind != IPC_STATE_KIND_PERMANENT && m.state.kind != IPC_STATE_KIND_VOLATILE) ||
             m.state.error > 0 || (m.state.error != 0 && m.state.seq != 0)))
                abort();
        return 0;
}
