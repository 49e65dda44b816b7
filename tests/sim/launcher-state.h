/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpm-sim's persistent state: small text files under DIR/sim, replaced
 * atomically (write a temporary file, rename), read and written only while the
 * caller holds the DIR/sim.lock flock. And the process helpers it needs.
 *
 *   DIR/sim/xenstored, DIR/sim/vtpmd,
 *   DIR/sim/swtpm                      "PID STARTTIME"
 *   DIR/sim/next-domid                 "N"
 *   DIR/sim/host-tpm                   "swtpm" or "none" (key-file mode), fixed
 *                                      by the first start: vtpmd's state in
 *                                      DIR/state is only readable with the same
 *   DIR/sim/vtpmd-args                 vtpmd's arguments (after the binary),
 *                                      one per line, for restart-daemon
 *   DIR/sim/pool-dir                   start --pool-dir's PATH (absolute), once
 *                                      vtpmd started with it; later starts
 *                                      pass it again
 *   DIR/sim/guests/NAME                key=value lines, see launcher-state.c
 *
 * A process counts as ours only while /proc/PID/stat shows the recorded start
 * time and it is not a zombie, so a recycled pid is never mistaken for it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define SIM_NAME_MAX 64

typedef struct SimProc {
        pid_t pid;                      /* 0: none */
        unsigned long long starttime;   /* /proc/PID/stat field 22 */
} SimProc;

typedef struct SimVtpm {
        uint32_t devid;
        char uuid[37];
        char family[4];                 /* "2.0" or "1.2" */
} SimVtpm;

typedef struct SimGuest {
        char name[SIM_NAME_MAX + 1];
        char domain_uuid[37];
        uint32_t domid;                 /* 0: no domain */
        SimProc proc;
        SimVtpm *vtpms;
        size_t n_vtpms;
        char *saved_image;              /* vtpm-sim save's FILE until restored; NULL: none */
        uint32_t tcp_port;              /* attach --tcp-port: the guest's TCP TPM ports P, P+1; 0: none */
} SimGuest;

/* Letters, digits, '-', '_', 1..SIM_NAME_MAX characters. */
bool sim_name_valid(const char *name);
int sim_uuid_random(char ret[static 37]);

SimGuest *sim_guest_free(SimGuest *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(SimGuest *, sim_guest_free);
int sim_guest_new(const char *name, SimGuest **ret);
/* -ENOENT if no record. */
int sim_guest_load(const char *dir, const char *name, SimGuest **ret);
int sim_guest_save(const char *dir, const SimGuest *g);
/* Names of every recorded guest, sorted; NULL-terminated array. */
int sim_guest_list(const char *dir, char ***ret);
int sim_guest_add_vtpm(SimGuest *g, uint32_t devid, const char *uuid, const char *family);
void sim_guest_remove_vtpm(SimGuest *g, size_t index);
/* Records (image = FILE) or clears (NULL) that the guest is saved. */
int sim_guest_set_saved(SimGuest *g, const char *image);
/* Removes NAME's record (a renamed guest's old one); none is not an error. */
int sim_guest_delete(const char *dir, const char *name);

/* key is "xenstored", "vtpmd", "swtpm" or "next-domid". */
int sim_proc_load(const char *dir, const char *key, SimProc *ret);
int sim_proc_save(const char *dir, const char *key, const SimProc *p);
int sim_u32_load(const char *dir, const char *key, uint32_t *ret);
int sim_u32_save(const char *dir, const char *key, uint32_t v);

/* One-line string value; -ENOENT if no record. */
int sim_str_load(const char *dir, const char *key, char **ret);
int sim_str_save(const char *dir, const char *key, const char *value);
/* A NULL-terminated list, one entry per line (-EINVAL if one contains '\n'). */
int sim_strv_load(const char *dir, const char *key, char ***ret);
int sim_strv_save(const char *dir, const char *key, char *const *l);
void sim_strv_free(char **l);

/* Atomic replace of PATH with DATA (tmp + rename). */
int sim_write_file_atomic(const char *path, const char *data);

/* Fills p from /proc; -ESRCH if the process does not exist or is a zombie. */
int sim_proc_from_pid(pid_t pid, SimProc *ret);
bool sim_proc_alive(const SimProc *p);
