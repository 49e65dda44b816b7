/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Messages between the supervisor (vtpmd) and a worker, over an inherited
 * SOCK_SEQPACKET socketpair (the worker's fd 3). One message per packet.
 *
 * Every packet is: u32 type, u32 payload size, payload; host byte order (both
 * ends are the same binary on the same host). ipc_decode() is the one choke
 * point: it checks the exact size for the type and every field, and is
 * fuzzed. The encoder cannot fail for valid input.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "tpm.h"

#define IPC_HEADER_SIZE 8u
#define IPC_TPM_MAX 4096u /* TPM_MAX_PACKET: a command or response of an OFFLINE worker */
#define IPC_MAX_PACKET (IPC_HEADER_SIZE + IPC_TPM_MAX)
#define IPC_PLATFORM_MAX 256u /* "xen" or "sim:DIR", NUL-terminated */
#define IPC_UUID_LEN 37u      /* canonical 36 chars + NUL */
#define IPC_DATA_KEY_SIZE 32u /* AES-256 (statefile.h) */

typedef enum IpcType {
        /* supervisor -> worker */
        IPC_START = 1, /* IpcStart: map, bind, start the TPM; answer READY or FAILED */
        IPC_STOP = 2,  /* IpcStop: shut the instance down and exit 0 */
        IPC_STATS_REQ = 3,
        IPC_COMMAND = 5, /* IpcTpm: one TPM command, answered by one RESPONSE; serving a guest, only
                          * TPM2_PCR_Read (vtpmd-ctl pcrread), between the guest's commands */
        /* worker -> supervisor */
        IPC_READY = 16,  /* IpcReady: mapped, bound, TPM running; the supervisor may write Connected */
        IPC_FAILED = 17, /* IpcFailed: could not start; the worker exits after sending it */
        IPC_STATS = 18,  /* IpcStats */
        IPC_STOPPED = 19,
        IPC_STATE = 20,  /* IpcState: a state blob was written durably (or could not be) */
        IPC_RESPONSE = 22, /* IpcTpm: the TPM's answer to the last COMMAND */
} IpcType;

typedef enum IpcStartFlags {
        IPC_START_TPM_STARTUP = 1u << 0, /* TPM 2.0: send TPM2_Startup(CLEAR) ourselves (fresh power-on) */
        IPC_START_TRACE = 1u << 1,       /* log TPM payloads at debug level */
        IPC_START_DURABLE = 1u << 2,     /* the START packet carries the vTPM's state directory fd
                                          * (SCM_RIGHTS) and data_key; without it, state is in memory */
        IPC_START_RESTORE_VOLATILE = 1u << 3, /* resume from the saved volatile state (seq == vol_seq)
                                               * instead of a fresh power-on */
        IPC_START_OFFLINE = 1u << 4, /* no guest: the supervisor sends TPM commands itself (COMMAND/
                                      * RESPONSE, locality 0) to manufacture the vTPM; needs DURABLE */
        IPC_START_PEEK = 1u << 5,    /* with OFFLINE: read-only (vtpmd-ctl pcrread of a detached vTPM).
                                      * The state is read and checked as usual, then the TPM runs on a
                                      * copy in memory: nothing in the state directory is written or
                                      * removed, a saved volatile state (RESTORE_VOLATILE) is kept */
} IpcStartFlags;

typedef struct IpcStart {
        uint32_t domid;
        uint32_t devid;
        uint32_t ring_ref;
        uint32_t evtchn_port; /* the guest's (remote) port */
        uint32_t family;      /* TpmFamily */
        uint32_t flags;       /* IpcStartFlags */
        char uuid[IPC_UUID_LEN];
        char platform[IPC_PLATFORM_MAX];
        uint8_t data_key[IPC_DATA_KEY_SIZE]; /* DURABLE: the vTPM's data key (wiped after use by both ends) */
        uint64_t min_perm_seq;  /* DURABLE: refuse a permall blob older than this (rollback) */
        uint64_t vol_seq;       /* RESTORE_VOLATILE: the volatile blob must have exactly this seq */
        uint32_t uid, gid;      /* the worker runs as uid:gid once confined; 0:0 keeps its ids */
        uint64_t memory_max;    /* the worker's address-space limit in bytes; 0: none */
} IpcStart;

typedef enum IpcStopMode {
        IPC_STOP_RESET = 1,    /* orderly TPM reset: TPM2_Shutdown(CLEAR) first (guest reboot/detach/destroy) */
        IPC_STOP_SUSPEND = 2,  /* daemon stop: save volatile state, keep the guest connected */
} IpcStopMode;

typedef struct IpcStop {
        uint32_t mode; /* IpcStopMode */
} IpcStop;

typedef struct IpcReady {
        uint32_t local_port;
} IpcReady;

typedef enum IpcStage {
        IPC_STAGE_PARAMS = 1,
        IPC_STAGE_MAP = 2,
        IPC_STAGE_BIND = 3,
        IPC_STAGE_TPM = 4,
        IPC_STAGE_CONFINE = 5,
        IPC_STAGE_STATE = 6, /* a state file is missing, corrupt, of another vTPM or rolled back */
} IpcStage;

typedef struct IpcFailed {
        uint32_t stage; /* IpcStage */
        int32_t error;  /* negative errno */
} IpcFailed;

typedef struct IpcStats {
        uint64_t commands;      /* commands answered by the TPM */
        uint64_t rejected;      /* invalid requests answered with an error */
        uint64_t cancels;       /* CANCEL requests seen */
        uint64_t events;        /* event-channel events */
} IpcStats;

typedef struct IpcState {
        uint32_t kind;  /* StateKind: PERMANENT or VOLATILE */
        int32_t error;  /* 0: written durably with seq; else negative errno (e.g. -ENOSPC) */
        uint64_t seq;
} IpcState;

/* The raw bytes of one TPM command or response (a TPM header whose size
 * field is len, TPM_HEADER_SIZE <= len <= IPC_TPM_MAX). */
typedef struct IpcTpm {
        uint32_t len;
        uint8_t data[IPC_TPM_MAX];
} IpcTpm;

typedef struct IpcMsg {
        IpcType type;
        union {
                IpcStart start;
                IpcStop stop;
                IpcReady ready;
                IpcFailed failed;
                IpcStats stats;
                IpcState state;
                IpcTpm tpm; /* COMMAND, RESPONSE */
        };
} IpcMsg;

/* Wire payload sizes (field by field, no struct padding):
 *   START     u32 domid, devid, ring_ref, evtchn_port, family, flags;
 *             char uuid[37] (canonical lowercase, NUL at [36]);
 *             char platform[256] (NUL-terminated, zero-filled after the NUL);
 *             u8 data_key[32]; u64 min_perm_seq, vol_seq; u32 uid, gid;
 *             u64 memory_max
 *             (with IPC_START_DURABLE the packet also carries exactly one fd,
 *             SCM_RIGHTS: the O_DIRECTORY fd of <root>/<uuid>; lib/ipc-socket.h)
 *   STOP      u32 mode          READY   u32 local_port
 *   FAILED    u32 stage, i32 error (-4095..-1)
 *   STATS     u64 commands, rejected, cancels, events
 *   STATE     u32 kind, i32 error (0 or -4095..-1), u64 seq (0 when error != 0)
 *   STATS_REQ, STOPPED: empty
 *   COMMAND, RESPONSE  the TPM bytes (10..4096), whose header size field
 *             equals the payload size
 * Validation also requires: domid < 0x7FF0 (DOMID_FIRST_RESERVED, xen.h),
 * family a TpmFamily, flags only IpcStartFlags bits, RESTORE_VOLATILE only
 * with DURABLE, platform "xen" or "sim:/...", known stop mode and stage,
 * STATE kind PERMANENT (1) or VOLATILE (2). OFFLINE only with DURABLE, not
 * with RESTORE_VOLATILE unless PEEK, and with domid, devid, ring_ref and evtchn_port 0
 * (there is no guest; one encoding). PEEK only with OFFLINE. uid and gid both 0 or both non-zero
 * and not (uid_t) -1. data_key, the seqs and memory_max are free-form. */
#define IPC_START_PAYLOAD_SIZE (8u * 4u + IPC_UUID_LEN + IPC_PLATFORM_MAX + IPC_DATA_KEY_SIZE + 3u * 8u)
#define IPC_STOP_PAYLOAD_SIZE 4u
#define IPC_READY_PAYLOAD_SIZE 4u
#define IPC_FAILED_PAYLOAD_SIZE 8u
#define IPC_STATS_PAYLOAD_SIZE 32u
#define IPC_STATE_PAYLOAD_SIZE 16u
#define IPC_DOMID_FIRST_RESERVED 0x7FF0u
#define IPC_START_FLAGS_ALL \
        (IPC_START_TPM_STARTUP | IPC_START_TRACE | IPC_START_DURABLE | IPC_START_RESTORE_VOLATILE | \
         IPC_START_OFFLINE | IPC_START_PEEK)
/* IpcState.kind values: StateKind (protocol/statefile.h) PERMANENT and VOLATILE. */
#define IPC_STATE_KIND_PERMANENT 1u
#define IPC_STATE_KIND_VOLATILE 2u

/* Decodes and validates one packet. -EBADMSG on any size or field error
 * (unknown type, wrong size, unterminated or malformed string, bad enum). */
int ipc_decode(const uint8_t *buf, size_t len, IpcMsg *ret);

/* Encodes msg into buf (at least IPC_MAX_PACKET bytes). Returns the length;
 * 0 only if msg->type is not an IpcType or a COMMAND/RESPONSE length is out
 * of range (a caller bug; the TPM header is not checked here). Strings are written
 * NUL-terminated and zero-filled (truncated if the struct's are not). */
size_t ipc_encode(const IpcMsg *msg, uint8_t buf[static IPC_MAX_PACKET]);

/* NULL for values outside the enum. */
const char *ipc_stage_to_string(IpcStage s);
const char *ipc_type_to_string(IpcType t);
