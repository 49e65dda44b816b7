/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulator front's TPM (EmuFrontOps) on libtpms: an instance created at
 * INIT and freed at STOP, over a TpmStore that outlives both (the worker's
 * durable store, or memory in a test). State blobs set while the TPM is off
 * are what the next power-on resumes from; otherwise it starts from the
 * store's "permall" (manufacturing a new TPM if there is none).
 */
#pragma once

#include "emu-front.h"
#include "tpm-instance.h"

typedef struct EmuTpm EmuTpm;

int emu_tpm_new(TpmFamily family, TpmStore *store, EmuTpm **ret);
EmuTpm *emu_tpm_free(EmuTpm *e);

extern const EmuFrontOps emu_tpm_ops; /* userdata: the EmuTpm */
