/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * WorkerIDs= at start: the range must not overlap /etc/subuid or
 * /etc/subgid (a container's root would own the workers' files and could
 * signal them), and vtpmd joins the workers' group, plus the groups of
 * vTPM directories lent under an earlier range (the old default
 * 300000-365535, or a range changed by hand), so that it can still open
 * them; statedir_lend() gives them to the new range when they are next lent.
 */
#pragma once

#include "vtpmd-config.h"

/* -ENOTUNIQ (logged, one line naming the file, the line and both ranges)
 * when WorkerIDs= overlaps a subordinate-id block; other errors logged too.
 * A missing file is no overlap. No-op with WorkerIDs=no. */
int worker_ids_check(const VtpmdConfig *c);

/* After vtpmd has taken its backend lock (dir/prefix<domid>.lock, own_path
 * its own, whose line says "workers FIRST-LAST"): -ENOTUNIQ (logged in one
 * line naming the other vtpmd) if a vtpmd holding another lock of dir
 * serves workers under an overlapping range. Lock files that are not held
 * or name no range are skipped. */
int worker_ids_check_instances(const VtpmdConfig *c, const char *dir, const char *prefix, const char *own_path);

/* Joins the workers' group and the groups of vTPM directories under the
 * state root (or the pool's vtpms/) that belong to another range. Not root:
 * workers keep vtpmd's uid (c's range becomes 0-0, logged at notice). */
int worker_ids_join_groups(VtpmdConfig *c);
