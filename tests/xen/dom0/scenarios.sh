#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The scenarios of issue 6, run in the rig's dom0 against real xl, xenstored and
# Linux xen-tpmfront guests. Prints "XENRIG-RESULT ok|not ok N - text" per
# scenario and "XENRIG-DIAG N text" for why; run.sh turns them into TAP lines.
#
# Order: a TPM 1.2 daemon phase (1, 2, and a destroy for 5), then a TPM 2.0 phase
# (3 with a guest reboot, 6 daemon restart, 4 detach/attach, 7 two guests, 8, 10
# and 9 save/restore/migrate, 12-13 the journal and the watchdog, 14-15 a hung
# worker and a stop on a fresh PV guest, 5 the destroys), then 16: dom0 reboots
# and the second boot (`scenarios.sh boot2`) checks the guest xendomains
# restored. The family is per daemon for now, hence the two phases.
#
# Guests are driven through xenstore (see domu/init): guest_run writes a command
# to /local/domain/<id>/data/cmd/N and waits, with a deadline, for data/rc/N.
export PATH=/usr/lib/xen-4.17/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RIG=/root/rig
L=/var/log/rig
VLOG=/var/log/vtpmd.log
DEB=/root/rig/vtpmd.deb
mkdir -p "$L"
U12=6a9c0b1e-1212-4c3d-8e4f-00000000a012
U20=6a9c0b1e-2020-4c3d-8e4f-00000000a020
U20B=6a9c0b1e-2020-4c3d-8e4f-00000000b020
NVIDX=0x1500016

now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "XENRIG [dom0 $(now)] $*"; }

declare -A FAILS RAN
fail() { local n=$1; shift; FAILS[$n]+="$*; "; RAN[$n]=1; echo "XENRIG-DIAG $n FAIL: $*"; }
note() { local n=$1; shift; RAN[$n]=1; echo "XENRIG-DIAG $n $*"; }
# check N DESCRIPTION COMMAND...: runs the command, records a failure if it fails
check() { local n=$1 what=$2; shift 2; if "$@"; then note "$n" "ok: $what"; else fail "$n" "$what"; fi; }

# ---- vtpmd.service ---------------------------------------------------------------
# vtpmd is the installed package's service: started, stopped and restarted with
# systemctl; vtpmd.conf edited as an admin would (the master key from a key file:
# dom0 has no host TPM; state on the rig's persistent disk, bound over
# /var/lib/vtpmd by rig-init, which outlives vtpmd restarts, guest reboots and
# the dom0 reboot of scenario 16). VLOG is the unit's journal.
VPID=
REBOOT=
CONF=/etc/vtpmd/vtpmd.conf
uprop() { systemctl show -p "$1" --value vtpmd; }
# the unit's journal since its current invocation began, as text
ujournal() { journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID="$(uprop InvocationID)" 2>/dev/null; }
serving() { ujournal | grep -q ' serving '; }
# vtpmd_ready WHAT: after systemctl start/restart returned; Type=notify means
# active only once vtpmd sent READY=1, which it does after logging "serving".
vtpmd_ready() {
	local what=$1
	[ "$(uprop ActiveState)/$(uprop SubState)" = active/running ] \
		|| { say "vtpmd.service after $what: $(uprop ActiveState)/$(uprop SubState) ($(uprop Result))"; return 1; }
	wait_until 10 serving || { say "vtpmd.service active after $what, but no 'serving' in its journal"; return 1; }
	VPID=$(uprop MainPID)
	say "vtpmd.service pid $VPID ready after $what"
}
vtpmd_start() {
	local family=$1 u
	sed -i "s|^DefaultTPM=.*|DefaultTPM=$family|" "$CONF"
	echo "=== [$(now)] systemctl start vtpmd (DefaultTPM=$family)" >> "$L/systemctl.log"
	systemctl start vtpmd >> "$L/systemctl.log" 2>&1 || { say "systemctl start vtpmd failed: $(uprop Result)"; return 1; }
	vtpmd_ready "systemctl start" || return 1
	# vtpmd serves only vTPMs an admin created (AutoCreate=no by default):
	# create this phase's vTPMs with vtpmd-ctl, as on a real host.
	case $family in 1.2) set -- "$U12" ;; *) set -- "$U20" "$U20B" ;; esac
	for u; do
		vtpmd-ctl show "$u" >/dev/null 2>&1 && continue
		vtpmd-ctl create --uuid "$u" --tpm "$family" >> "$L/systemctl.log" 2>&1 ||
			{ say "vtpmd-ctl create --uuid $u --tpm $family failed"; return 1; }
	done
}
# vtpmd_stop: systemctl stop; vtpmd must exit 0 by itself (its workers saved and
# gone), not be killed by systemd at TimeoutStopSec.
vtpmd_stop() {
	local t0 res st
	t0=$(now)
	echo "=== [$(now)] systemctl stop vtpmd" >> "$L/systemctl.log"
	systemctl stop vtpmd >> "$L/systemctl.log" 2>&1
	res=$(uprop Result); st=$(uprop ExecMainStatus)
	say "vtpmd.service stopped after $(since "$t0") s: Result=$res ExecMainStatus=$st"
	VPID=
	[ "$res" = success ] && [ "$st" = 0 ]
}
vtpmd_restart() {
	echo "=== [$(now)] systemctl restart vtpmd" >> "$L/systemctl.log"
	systemctl restart vtpmd >> "$L/systemctl.log" 2>&1 || { say "systemctl restart vtpmd failed: $(uprop Result)"; return 1; }
	vtpmd_ready "systemctl restart"
}
vtpmd_alive() { [ -n "$VPID" ] && [ "$(uprop MainPID)" = "$VPID" ] && kill -0 "$VPID" 2>/dev/null; }
# The bounding set of a process as the unit's CapabilityBoundingSet= words (a
# table: dom0 has no capsh), so the rig notices the unit and vtpmd disagreeing.
CAPS=(cap_chown cap_dac_override cap_dac_read_search cap_fowner cap_fsetid cap_kill cap_setgid cap_setuid
	cap_setpcap cap_linux_immutable cap_net_bind_service cap_net_broadcast cap_net_admin cap_net_raw cap_ipc_lock
	cap_ipc_owner cap_sys_module cap_sys_rawio cap_sys_chroot cap_sys_ptrace cap_sys_pacct cap_sys_admin
	cap_sys_boot cap_sys_nice cap_sys_resource cap_sys_time cap_sys_tty_config cap_mknod cap_lease cap_audit_write
	cap_audit_control cap_setfcap cap_mac_override cap_mac_admin cap_syslog cap_wake_alarm cap_block_suspend
	cap_audit_read cap_perfmon cap_bpf cap_checkpoint_restore)
cap_names() { # pid -> sorted names of its CapBnd
	local hex i
	hex=$(sed -n 's/^CapBnd:\t*//p' "/proc/$1/status")
	for i in "${!CAPS[@]}"; do (( (16#$hex >> i) & 1 )) && echo "${CAPS[$i]}"; done | sort | tr '\n' ' '
}
# Guest workers: every vtpmd-worker but the fork server (--fork-server in
# its command line; a forked worker blanks its copy).
workers() {
	local n=0 p
	for p in $(pgrep -x vtpmd-worker); do
		grep -qa -- --fork-server "/proc/$p/cmdline" 2>/dev/null || n=$((n + 1))
	done
	echo "$n"
}

# ---- guests -------------------------------------------------------------------
guest_cfg() { # name uuid [type: pv (default) or pvh]
	cat > "$RIG/$1.cfg" <<-CFG
	name = "$1"
	type = "${3:-pv}"
	kernel = "$RIG/vmlinuz-domU"
	ramdisk = "$RIG/domu.cpio.gz"
	extra = "console=hvc0 rdinit=/init loglevel=4"
	memory = 192
	vcpus = 1
	on_crash = "preserve"
	vtpm = [ "backend=0,uuid=$2" ]
	CFG
}
domid() { xl domid "$1" 2>/dev/null; }
fe_state() { xenstore-read "/local/domain/$1/device/vtpm/${2:-0}/state" 2>/dev/null; }
be_state() { xenstore-read "/local/domain/0/backend/vtpm/$1/${2:-0}/state" 2>/dev/null; }

# wait_until SECONDS COMMAND...: polls every 0.2 s
wait_until() {
	local tmo=$1 t0; shift; t0=$(now)
	until "$@"; do
		awk -v a="$t0" -v b="$(now)" -v t="$tmo" 'BEGIN { exit !(b - a > t) }' && return 1
		sleep 0.2
	done
}
fe_is() { [ "$(fe_state "$1")" = "$2" ]; }
fe_is_3_or_4() { local s; s=$(fe_state "$1"); [ "$s" = 3 ] || [ "$s" = 4 ]; }
guest_ready() { xenstore-read "/local/domain/$1/data/rig-ready" >/dev/null 2>&1; }

# guest_run NAME TIMEOUT COMMAND: output in $GOUT, returns the command's rc, 124 on timeout
declare -A SEQ
guest_run() {
	local name=$1 tmo=$2 cmd=$3 id n p t0 rc
	id=$(domid "$name") || { GOUT="no domain $name"; return 125; }
	n=$(( ${SEQ[$id]:-0} + 1 )); SEQ[$id]=$n
	p=/local/domain/$id/data
	xenstore-write "$p/cmd/$n" "$cmd"
	t0=$(now)
	until rc=$(xenstore-read "$p/rc/$n" 2>/dev/null); do
		# sleeps until the node is written (or 2 s): tight polling slows TCG
		timeout 2 xenstore-watch -n 2 "$p/rc/$n" >/dev/null 2>&1
		if awk -v a="$t0" -v b="$(now)" -v t="$tmo" 'BEGIN { exit !(b - a > t) }'; then
			GOUT="timeout after $tmo s: $cmd"
			echo "[$(now)] $name($id) #$n TIMEOUT $cmd" >> "$L/guest-commands.log"
			return 124
		fi
	done
	# -R: raw, xenstore-read escapes newlines otherwise
	GOUT=$(xenstore-read -R "$p/out/$n" 2>/dev/null)
	{ echo "[$(now)] $name($id) #$n rc=$rc ($(since "$t0") s) \$ $cmd"; echo "$GOUT" | sed 's/^/    /'; } >> "$L/guest-commands.log"
	return "$rc"
}

# create NAME UUID SCENARIO [TYPE]: xl create, then the frontend must reach Connected
# (a generous deadline to stop waiting; the time taken is a note, never a
# verdict: speed is measured by make bench), and the guest's command loop must answer.
# The guest is followed by its name, not by the domid xl create gave it: a guest
# that crashes or reboots while it boots is restarted by xl under a new domid.
name_fe_is_3_or_4() { local i; i=$(domid "$1") && fe_is_3_or_4 "$i"; }
name_fe_is() { local i; i=$(domid "$1") && fe_is "$i" "$2"; }
name_ready() { local i; i=$(domid "$1") && guest_ready "$i"; }
create_guest() {
	local name=$1 uuid=$2 n=$3 t0 rc id id1 t3
	guest_cfg "$name" "$uuid" "${4:-pv}"
	t0=$(now)
	xl -v create "$RIG/$name.cfg" > "$L/xl-create-$name.log" 2>&1; rc=$?
	note "$n" "xl create $name: rc=$rc in $(since "$t0") s"
	[ $rc = 0 ] || { fail "$n" "xl create $name failed rc=$rc: $(grep -i -E 'error|unable' "$L/xl-create-$name.log" | head -3 | tr '\n' ' ')"; return 1; }
	id=$(domid "$name")
	# the guest kernel boots under TCG first; only the time from ring published
	# (frontend 3) to Connected (4) measures the backend
	wait_until 120 name_fe_is_3_or_4 "$name" || { fail "$n" "$name frontend never published its ring (state '$(fe_state "$(domid "$name")")')"; return 1; }
	t3=$(now)
	wait_until 60 name_fe_is "$name" 4 || { id1=$(domid "$name"); fail "$n" "$name frontend not Connected 60 s after state 3 (fe '$(fe_state "$id1")', be '$(be_state "$id1")')"; return 1; }
	id1=$(domid "$name")
	[ "$id1" = "$id" ] || note "$n" "$name was restarted by xl while it booted: domid $id -> $id1 (xl dmesg: $(xl dmesg 2>/dev/null | grep -E "d$id(v[0-9]+)? " | grep -i -E 'fault|crash|shutdown' | tail -1))"
	note "$n" "$name domid $id1 frontend Connected $(since "$t3") s after Initialised"
	# An unserved probe costs 118 s (and then the 60 s deadline above fails).
	# Under TCG on a busy 2-core host a TPM 1.2 start (libtpms self-test) has
	# taken 20 s: a slow start is worth a note, not a failure.
	awk -v a="$t3" -v b="$(now)" 'BEGIN { exit !(b - a < 45) }' || note "$n" "slow: $name frontend took $(since "$t3") s from Initialised to Connected (probe blocked?)"
	wait_until 60 name_ready "$name" || { fail "$n" "$name command loop not up"; return 1; }
	return 0
}

destroy_guest() { # name [N, default 5]: xl destroy succeeds (its time noted), no "unable to remove", worker and backend dir gone
	local name=$1 n=${2:-5} id t0 rc w0 el
	id=$(domid "$name") || { fail $n "no domain $name to destroy"; return 1; }
	w0=$(workers)
	t0=$(now)
	xl destroy "$name" > "$L/xl-destroy-$name.log" 2>&1; rc=$?
	el=$(since "$t0")
	note $n "xl destroy $name (domid $id): rc=$rc in $el s, workers before: $w0"
	[ $rc = 0 ] || fail $n "xl destroy $name rc=$rc"
	awk -v e="$el" 'BEGIN { exit !(e < 8) }' || note $n "slow: xl destroy $name took $el s (libxl waited for Closed?)"
	grep -q -i 'unable to remove' "$L/xl-destroy-$name.log" && fail $n "xl destroy $name: $(grep -i 'unable' "$L/xl-destroy-$name.log" | head -1)"
	workers_at_most() { [ "$(workers)" -le "$1" ]; }
	wait_until 5 workers_at_most $((w0 - 1)) || fail $n "worker of $name still running 5 s after destroy ($(workers) workers, was $w0)"
	xenstore-exists "/local/domain/0/backend/vtpm/$id" 2>/dev/null && fail $n "backend dir /local/domain/0/backend/vtpm/$id still there after destroy"
	vtpmd_alive || fail $n "vtpmd died"
	return 0
}

# The chip's number changes when the frontend re-probes (vtpm-attach, restore, migration).
TCTI_NOW='T=$(ls /dev/tpm[0-9]* 2>/dev/null | head -1); export TPM2TOOLS_TCTI=device:${T:-/dev/tpm0};'
pcrread() { # name alg:index -> hex value in $PCR
	guest_run "$1" 150 "$TCTI_NOW tpm2_pcrread $2" || { PCR="error: $GOUT"; return 1; }
	PCR=$(echo "$GOUT" | sed -n 's/^ *[0-9]* *: *0x\([0-9A-Fa-f]*\).*/\1/p' | tr 'A-F' 'a-f' | head -1)
	[ -n "$PCR" ] || { PCR="unparsed: $GOUT"; return 1; }
}
# SHA-256(a || b) of two hex strings (dom0's perl-base has no Digest::SHA)
sha256_ext() { printf "$(echo "$1$2" | sed 's/../\\x&/g')" | sha256sum | cut -c1-64; }
rand_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# ---- save, restore, migrate (issue 14) -----------------------------------------
# The guest's command loop keeps its counter across a restore or migration (it
# is the same kernel), so the new domid continues the old one's sequence.
follow_guest() { # name old-domid: waits for the domain under its name to have another domid
	local name=$1 old=$2 id
	new_domid() { id=$(domid "$name") && [ "$id" != "$old" ]; }
	wait_until 120 new_domid || return 1
	id=$(domid "$name"); SEQ[$id]=${SEQ[$old]}
}
# PCR 16 extended and an NV index written just before, compared just after.
TPM_UNTIL_UP='i=0; until T=$(ls /dev/tpm[0-9]* 2>/dev/null | head -1) && [ -n "$T" ] && tpm2_getrandom -T device:$T --hex 8 >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.2; done'
fe_any_is_4() { local d; for d in $(xenstore-list "/local/domain/$1/device/vtpm" 2>/dev/null); do [ "$(fe_state "$1" "$d")" = 4 ] && return 0; done; return 1; }
before_move() { # N
	local n=$1 d
	d=$(rand_hex 32)
	guest_run g20 150 "$TCTI_NOW tpm2_pcrextend 16:sha256=$d" || fail "$n" "pcrextend before: $GOUT"
	pcrread g20 sha256:16 || fail "$n" "pcrread before: $PCR"
	PCR_BEFORE=$PCR
	NV_BEFORE=xenrig-nv-$(rand_hex 8)
	guest_run g20 300 "$TCTI_NOW printf %s $NV_BEFORE > /tmp/nv && tpm2_nvwrite $NVIDX -C o -i /tmp/nv" || fail "$n" "nvwrite before: $GOUT"
}
after_move() { # N what
	local n=$1 what=$2
	pcrread g20 sha256:16 || fail "$n" "pcrread after $what: $PCR"
	[ "$PCR" = "$PCR_BEFORE" ] && note "$n" "ok: PCR 16 unchanged across $what" \
		|| fail "$n" "PCR 16 changed across $what: $PCR_BEFORE -> $PCR"
	guest_run g20 150 "$TCTI_NOW tpm2_nvread $NVIDX -C o -s ${#NV_BEFORE}"
	[ "$GOUT" = "$NV_BEFORE" ] && note "$n" "ok: NV intact across $what" || fail "$n" "NV after $what: '$GOUT'"
}
# A reboot afterwards is a reboot: PCR 16 starts from zeros again. Only a domain
# that an xl process still watches is re-created (xl save -c ends that watch).
reboot_clears_pcr16() { # N
	local n=$1 id
	id=$(domid g20)
	xl reboot g20 > "$L/xl-reboot-g20-2.log" 2>&1 || fail $n "xl reboot g20: $(cat "$L/xl-reboot-g20-2.log")"
	if follow_guest g20 "$id" && wait_until 120 fe_any_is_4 "$(domid g20)" && wait_until 60 guest_ready "$(domid g20)"; then
		# a booted kernel's command loop starts at 1 again
		SEQ[$(domid g20)]=0
		pcrread g20 sha256:16 || fail $n "pcrread after reboot: $PCR"
		[ "$PCR" = "$(printf '%064d' 0)" ] && note $n "ok: PCR 16 reset by a reboot afterwards" \
			|| fail $n "PCR 16 after the reboot is $PCR, expected zeros"
	else
		fail $n "g20 did not come back after xl reboot"
	fi
}
rig_save_restore() {
	local n=8 id0 t0 rc img=/var/lib/xen/g20.save
	before_move $n
	id0=$(domid g20)
	t0=$(now)
	xl -v save g20 "$img" > "$L/xl-save-g20.log" 2>&1; rc=$?
	note $n "xl save g20 (domid $id0): rc=$rc in $(since "$t0") s"
	[ $rc = 0 ] || { fail $n "xl save rc=$rc: $(grep -i -E 'error|fail' "$L/xl-save-g20.log" | head -2 | tr '\n' ' ')"; return 1; }
	vtpmd-ctl list > "$L/list-after-save.txt" 2>&1
	grep "$U20" "$L/list-after-save.txt" | grep -q suspended && note $n "ok: vtpmd-ctl list shows the vTPM suspended" \
		|| fail $n "vtpmd-ctl list after xl save: $(grep "$U20" "$L/list-after-save.txt")"
	t0=$(now)
	xl -v restore "$img" > "$L/xl-restore-g20.log" 2>&1; rc=$?
	note $n "xl restore: rc=$rc in $(since "$t0") s"
	[ $rc = 0 ] || { fail $n "xl restore rc=$rc: $(grep -i -E 'error|fail' "$L/xl-restore-g20.log" | head -2 | tr '\n' ' ')"; return 1; }
	follow_guest g20 "$id0" || { fail $n "no g20 after xl restore"; return 1; }
	if guest_run g20 300 "$TPM_UNTIL_UP"; then
		note $n "first answered TPM command $(since "$t0") s after xl restore began (domid $(domid g20))"
	else
		fail $n "the restored guest's TPM does not answer: $GOUT"; return 1
	fi
	after_move $n "xl save + xl restore"
	rm -f "$img"
	reboot_clears_pcr16 $n
}
# The guest's side of a migration: tpm2_getrandom in a loop until dom0 writes
# data/migrated (in the guest's home of the moment), then three more. Each success
# is counted in data/loop-ok. A failure is "gone" when the device node it used
# was replaced under it (xen-tpmfront re-probes on resume, which invalidates open
# handles; the kernel's doing, not the backend's) and "bad" otherwise. Prints
# "succeeded/sent gone=N bad=N", then the last lines of each bad command's errors.
TPM_LOOP='i=0; ok=0; gone=0; bad=0; post=0; a=0; : > /tmp/loop.bad; while [ $post -lt 3 ] && [ $i -lt 200 ] && [ $a -lt 1500 ]; do T=$(ls /dev/tpm[0-9]* 2>/dev/null | head -1); if [ -z "$T" ]; then a=$((a+1)); sleep 0.2; continue; fi; ino=$(stat -c %i "$T" 2>/dev/null) || { a=$((a+1)); sleep 0.2; continue; }; i=$((i+1)); if tpm2_getrandom -T device:$T --hex 4 >/dev/null 2>/tmp/loop.err; then ok=$((ok+1)); xenstore-write data/loop-ok $ok; elif [ "$(stat -c %i "$T" 2>/dev/null)" != "$ino" ]; then gone=$((gone+1)); else bad=$((bad+1)); tail -n 2 /tmp/loop.err >> /tmp/loop.bad; fi; xenstore-read data/migrated >/dev/null 2>&1 && post=$((post+1)); done; echo "$ok/$i gone=$gone bad=$bad"; cat /tmp/loop.bad; [ $post -ge 3 ]'
# migrate_g20 N WHAT: xl migrate g20 to localhost while the guest runs TPM_LOOP.
# Sets MIG_RC to xl's rc; checks the loop, and on success that the destination
# answers. Noted: the time from xl migrate's start to the destination's first
# answered command (the source answers during the live rounds, so the TPM's own
# gap is shorter: vtpmd logs it as the age of the state it resumes).
migrate_g20() {
	local n=$1 what=$2 id0 id t0 lp out log=$L/xl-migrate-$2.log dm0
	MIG_CRASHED=
	id0=$(domid g20)
	lp=$(( ${SEQ[$id0]:-0} + 1 )); SEQ[$id0]=$lp
	loop_ok() { xenstore-exists "/local/domain/$1/data/loop-ok"; }
	xenstore-rm "/local/domain/$id0/data/loop-ok" 2>/dev/null; xenstore-rm "/local/domain/$id0/data/migrated" 2>/dev/null
	xenstore-write "/local/domain/$id0/data/cmd/$lp" "$TPM_LOOP"
	wait_until 150 loop_ok "$id0" || fail "$n" "$what: the guest's getrandom loop answered nothing before the migration"
	t0=$(now)
	dm0=$(xl dmesg 2>/dev/null | wc -l)
	# A guest that triple-faults by itself (PVH under TCG, tests/xen/README): xl dmesg says so.
	guest_crashed() { MIG_CRASHED=$(xl dmesg 2>/dev/null | tail -n +$((dm0 + 1)) | grep -m1 'Triple fault'); [ -n "$MIG_CRASHED" ]; }
	# -s '': run the receiver here instead of through ssh (xl_migrate.c)
	xl -v migrate -s '' g20 'xl migrate-receive' > "$log" 2>&1; MIG_RC=$?
	note "$n" "xl migrate of the $what g20 to localhost (domid $id0): rc=$MIG_RC in $(since "$t0") s"
	id=$id0
	if [ $MIG_RC = 0 ]; then
		follow_guest g20 "$id0" || { fail "$n" "no g20 after xl migrate"; return 1; }
		id=$(domid g20)
		answered_or_crashed() { loop_ok "$id" || guest_crashed; }
		wait_until 300 answered_or_crashed
		if guest_crashed; then
			note "$n" "$what: the guest crashed by itself during the migration ($MIG_CRASHED)"
			return 0
		fi
		if loop_ok "$id"; then
			note "$n" "first answered TPM command on the destination (domid $id) $(since "$t0") s after xl migrate began"
			note "$n" "vtpmd: $(grep -o "Resuming the vTPM suspended from domain $id0 .*" "$VLOG" | tail -1)"
		else
			fail "$n" "the migrated guest's TPM answered nothing within 300 s"
		fi
	fi
	xenstore-write "/local/domain/$id/data/migrated" 1
	loop_done() { xenstore-exists "/local/domain/$id/data/rc/$lp"; }
	wait_until 300 loop_done || { fail "$n" "$what: the guest's getrandom loop did not finish"; return 1; }
	out=$(xenstore-read -R "/local/domain/$id/data/out/$lp" 2>/dev/null)
	echo "$out" | sed "s/^/    /" >> "$L/guest-commands.log"
	note "$n" "getrandom loop across the migration: $(echo "$out" | head -1)"
	if [[ $(echo "$out" | head -1) =~ ^([0-9]+)/([0-9]+)\ gone=([0-9]+)\ bad=([0-9]+)$ ]]; then
		[ "${BASH_REMATCH[4]}" = 0 ] || fail "$n" "${BASH_REMATCH[4]} TPM commands failed across the migration: $(echo "$out" | tail -n +2 | tr '\n' ' ')"
		[ "${BASH_REMATCH[1]}" -gt 0 ] || fail "$n" "no TPM command succeeded in the loop"
		[ "${BASH_REMATCH[3]}" = 0 ] || note "$n" "commands whose device node the frontend's re-probe replaced under them: ${BASH_REMATCH[3]}"
	else
		fail "$n" "the guest's getrandom loop printed '$out'"
	fi
}
# Scenario 9 migrates twice. Debian's Xen has no shadow paging, so a PV guest's
# migration is refused at its start (XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY:
# EOPNOTSUPP), while the destination may already exist: the source must keep its
# vTPM as it was. A PVH guest with the same vTPM then migrates for real: HAP (the
# SVM with nested paging that run.sh gives QEMU) does its log-dirty paging.
rig_migrate() {
	local n=9 id0 id inc
	before_move $n
	id0=$(domid g20)
	migrate_g20 $n pv
	if [ $MIG_RC != 0 ] && grep -q 'Failed to enable logdirty: 95' "$L/xl-migrate-pv.log"; then
		note $n "ok: the PV guest cannot migrate on this hypervisor (no shadow paging); checking the failed migration"
		[ "$(domid g20)" = "$id0" ] || fail $n "g20 is not domain $id0 after the failed migration"
		guest_run g20 150 "$TPM_UNTIL_UP" || fail $n "the source's TPM after the failed migration: $GOUT"
		after_move $n "a failed xl migrate"
		for inc in $(xl list | awk '/--incoming/{print $1}'); do
			note $n "xl left the destination domain $inc: destroyed"
			xl destroy "$inc" > "$L/xl-destroy-incoming.log" 2>&1 || fail $n "xl destroy $inc"
		done
	elif [ $MIG_RC = 0 ]; then
		after_move $n "xl migrate (PV)"
	else
		fail $n "xl migrate (PV) rc=$MIG_RC: $(grep -i -E 'error|fail' "$L/xl-migrate-pv.log" | head -2 | tr '\n' ' ')"
	fi
	xl info | grep -q '^virt_caps.* hap' || { fail $n "Xen has no HAP (virt_caps: $(xl info | sed -n 's/^virt_caps *: //p')): no PVH guest to migrate"; return 1; }
	local attempt fails_before crashed
	for attempt in 1 2; do
		fails_before=${FAILS[$n]}
		destroy_guest g20
		create_guest g20 "$U20" $n pvh || return 1
		before_move $n
		id0=$(domid g20)
		migrate_g20 $n pvh
		if [ -n "$MIG_CRASHED" ] && [ "$attempt" = 1 ]; then
			note $n "migrating a fresh PVH guest once more"
			FAILS[$n]=$fails_before
			continue
		fi
		[ $MIG_RC = 0 ] || { fail $n "xl migrate (PVH) rc=$MIG_RC: $(grep -i -E 'error|fail' "$L/xl-migrate-pvh.log" | head -2 | tr '\n' ' ')"; return 1; }
		[ -z "$MIG_CRASHED" ] || { fail $n "the PVH guest crashed by itself in both migrations ($MIG_CRASHED)"; return 1; }
		id=$(domid g20)
		after_move $n "xl migrate"
		# A PVH guest under TCG sometimes triple-faults on its own (also at boot, with no
		# vTPM involved: tests/xen/README); if the migrated one did, what failed after it
		# says nothing about vtpmd: once more with a fresh guest.
		crashed=$(xl dmesg 2>/dev/null | grep -E "d$id(v[0-9]+)? Triple fault" | tail -1)
		[ -n "$crashed" ] && [ "$attempt" = 1 ] || break
		note $n "the migrated guest (domid $id) crashed by itself ($crashed): migrating a fresh PVH guest once more"
		[ "${FAILS[$n]}" = "$fails_before" ] || note $n "not counted (the guest crashed): ${FAILS[$n]#"$fails_before"}"
		FAILS[$n]=$fails_before
	done
	id=$(domid g20)
	xl list | grep -q migratedaway && fail $n "the source domain is still there: $(xl list | grep migratedaway)"
	xenstore-exists "/local/domain/0/backend/vtpm/$id0" 2>/dev/null && fail $n "the source's backend dir (domid $id0) is still there"
	[ "$(be_state "$id")" = 4 ] || fail $n "the destination's backend is in state '$(be_state "$id")', not 4"
	one_worker() { [ "$(workers)" = 1 ]; }
	wait_until 10 one_worker || fail $n "$(workers) guest workers after the migration, expected 1"
}
# xl save -c: the domain suspends, is saved and resumes (a cancelled suspend, as
# libxl resumes the source of a failed migration): it keeps its vTPM. The
# checkpoint then restored as a second copy gets no second live vTPM.
rig_checkpoint_twice() {
	local n=10 id0 id2 t0 rc img=/var/lib/xen/g20.ckpt err i
	before_move $n
	id0=$(domid g20)
	xl -v save -c g20 "$img" > "$L/xl-save-c-g20.log" 2>&1; rc=$?
	note $n "xl save -c g20 (domid $id0): rc=$rc"
	[ $rc = 0 ] || { fail $n "xl save -c rc=$rc: $(grep -i -E 'error|fail' "$L/xl-save-c-g20.log" | head -2 | tr '\n' ' ')"; return 1; }
	[ "$(domid g20)" = "$id0" ] || fail $n "g20 is not the same domain after the checkpoint"
	guest_run g20 300 "$TPM_UNTIL_UP" || fail $n "the resumed source's TPM does not answer: $GOUT"
	after_move $n "xl save -c (a cancelled suspend)"
	xl rename g20 g20-first || fail $n "xl rename g20 g20-first"
	t0=$(now)
	xl -v restore "$img" > "$L/xl-restore-ckpt.log" 2>&1; rc=$?
	note $n "xl restore of the checkpoint as a second copy: rc=$rc in $(since "$t0") s"
	id2=$(domid g20)
	if [ -n "$id2" ]; then
		i=$(xenstore-list "/local/domain/0/backend/vtpm/$id2" 2>/dev/null | head -1)
		err_node() { err=$(xenstore-read "/local/domain/0/error/backend/vtpm/$id2/${i:-0}/error" 2>/dev/null); [ -n "$err" ]; }
		if wait_until 120 err_node; then
			case $err in *"already attached"*) note $n "ok: the second copy is refused: $err" ;;
			*) fail $n "the second copy's error node says: $err" ;; esac
		else
			fail $n "the second copy's device has no error node (backend state '$(be_state "$id2" "${i:-0}")')"
		fi
		xl destroy g20 > "$L/xl-destroy-ckpt.log" 2>&1 || fail $n "xl destroy of the second copy"
	else
		note $n "xl restore created no second domain: $(grep -i -E 'error' "$L/xl-restore-ckpt.log" | head -1)"
	fi
	xl rename g20-first g20 || fail $n "xl rename g20-first g20"
	rm -f "$img"
	if guest_run g20 150 "$TPM_UNTIL_UP"; then after_move $n "a refused second copy"; else fail $n "the first copy's TPM: $GOUT"; fi
}

# ---- vtpmd.service under systemd (issue 16) --------------------------------------
rig_journal_fields() {
	local n=12 id j
	id=$(domid g20)
	guest_run g20 150 "$TPM_UNTIL_UP" || fail $n "g20's TPM does not answer: $GOUT"
	# by field only: -u adds matches of its own
	j=$(journalctl --no-pager -o json VTPM_UUID="$U20" 2>/dev/null)
	echo "$j" > "$L/journal-u20.json"
	note $n "$(echo "$j" | grep -c .) journal entries with VTPM_UUID=$U20"
	echo "$j" | grep -q "\"VTPM_DOMID\":\"$id\"" && note $n "ok: VTPM_DOMID=$id with VTPM_UUID" \
		|| fail $n "no journal entry of vtpmd.service with VTPM_UUID=$U20 and VTPM_DOMID=$id"
	echo "$j" | grep -q '"VTPM_DEVID":"[0-9]*"' && note $n "ok: VTPM_DEVID present" || fail $n "no VTPM_DEVID field"
	echo "$j" | grep -q '"_SYSTEMD_UNIT":"vtpmd.service"' || fail $n "the entries are not attributed to vtpmd.service"
}
g20_worker() { # the pid of the one guest worker (g20 is the only guest by then)
	local p
	for p in $(pgrep -x vtpmd-worker); do
		grep -qa -- --fork-server "/proc/$p/cmdline" 2>/dev/null && continue
		echo "$p"; return 0
	done
	return 1
}
# A worker stopped with SIGSTOP: on systemctl restart, vtpmd (under the unit's
# bounding set, workers under other uids: CAP_KILL) kills it itself after its
# 15 s, and systemd finds nothing left to kill; a new worker serves the guest.
# A fresh PV guest (a PVH guest once triple-faulted in early boot here, which
# would hide what this checks).
rig_hung_worker() {
	local n=14 w w2 t0 inv
	w=$(g20_worker) || { fail $n "no worker for g20"; return 1; }
	kill -STOP "$w" || { fail $n "kill -STOP $w"; return 1; }
	note $n "worker pid $w (uid $(stat -c %u "/proc/$w")) stopped with SIGSTOP"
	inv=$(uprop InvocationID)
	t0=$(now)
	vtpmd_restart || fail $n "systemctl restart vtpmd with a hung worker"
	note $n "systemctl restart took $(since "$t0") s"
	journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID="$inv" | grep -q "Worker pid $w did not stop in time, killing it" \
		&& note $n "ok: vtpmd killed the hung worker itself" || fail $n "vtpmd did not say it killed worker $w"
	# systemd's own messages about the unit (UNIT=, not the invocation's)
	journalctl --no-pager -o cat -u vtpmd | grep -E "(Killing|left-over) process $w " > "$L/hung-systemd-kill.txt"
	[ -s "$L/hung-systemd-kill.txt" ] && fail $n "systemd had to kill what vtpmd left: $(head -1 "$L/hung-systemd-kill.txt")"
	[ -e "/proc/$w" ] && fail $n "the hung worker $w is still there"
	guest_run g20 300 "$TPM_UNTIL_UP" && note $n "ok: g20's TPM answers after the restart" || fail $n "g20's TPM after the restart: $GOUT"
	w2=$(g20_worker)
	[ -n "$w2" ] && [ "$w2" != "$w" ] && note $n "ok: new worker pid $w2" || fail $n "no new worker (was $w, now '${w2}')"
}
# systemctl stop with a guest connected: vtpmd exits 0 by itself, its workers
# save and go, the xenbus states stay; systemctl start serves the guest again
# with PCR 16 as it was.
rig_stop_with_guests() {
	local n=15 id d fe0 be0 left fdev bdev
	id=$(domid g20)
	d=$(rand_hex 32)
	guest_run g20 150 "$TCTI_NOW tpm2_pcrextend 16:sha256=$d" || fail $n "pcrextend before stop: $GOUT"
	pcrread g20 sha256:16 || fail $n "pcrread before stop: $PCR"
	PCR_BEFORE=$PCR
	fdev=$(xenstore-list "/local/domain/$id/device/vtpm" 2>/dev/null | head -1)
	bdev=$(xenstore-list "/local/domain/0/backend/vtpm/$id" 2>/dev/null | head -1)
	fe0=$(fe_state "$id" "$fdev"); be0=$(be_state "$id" "$bdev")
	vtpmd_stop && note $n "ok: systemctl stop: vtpmd exited 0 (Result=success)" || fail $n "systemctl stop vtpmd: Result=$(uprop Result) ExecMainStatus=$(uprop ExecMainStatus)"
	left=$(pgrep -x -d, 'vtpmd|vtpmd-worker')
	[ -z "$left" ] || fail $n "processes left after systemctl stop: $left"
	[ "$(fe_state "$id" "$fdev")" = "$fe0" ] && [ "$(be_state "$id" "$bdev")" = "$be0" ] \
		&& note $n "ok: xenbus states unchanged by the stop (fe $fe0, be $be0)" \
		|| fail $n "xenbus states moved on stop: fe $fe0 -> $(fe_state "$id" "$fdev"), be $be0 -> $(be_state "$id" "$bdev")"
	vtpmd_start 2.0 || { fail $n "systemctl start after the stop"; return 1; }
	guest_run g20 300 "$TPM_UNTIL_UP" && note $n "ok: g20's TPM answers after the start" || fail $n "g20's TPM after the start: $GOUT"
	pcrread g20 sha256:16 || fail $n "pcrread after start: $PCR"
	[ "$PCR" = "$PCR_BEFORE" ] && note $n "ok: PCR 16 unchanged across stop and start" || fail $n "PCR 16 changed: $PCR_BEFORE -> $PCR"
}
# The watchdog: vtpmd answers it from its event loop; stopped with SIGSTOP, it is
# aborted by systemd at WatchdogSec= and restarted (Restart=on-failure), and the
# guest's TPM answers again.
rig_watchdog() {
	local n=13 p0 t0 wd
	wd=$(uprop WatchdogUSec)
	[ "$wd" = 30s ] && note $n "ok: WatchdogUSec=$wd" || fail $n "WatchdogUSec is '$wd'"
	wdping() { [ "$(uprop WatchdogTimestampMonotonic)" != "$1" ] && [ "$(uprop WatchdogTimestampMonotonic)" != 0 ]; }
	p0=$(uprop WatchdogTimestampMonotonic)
	if [ -z "$p0" ]; then
		note $n "systemd shows no WatchdogTimestampMonotonic: the pings are checked by the SIGSTOP below"
	else
		wait_until 40 wdping "$p0" && note $n "ok: vtpmd pings the watchdog" || fail $n "no watchdog ping within 40 s"
	fi
	p0=$VPID
	kill -STOP "$p0"
	t0=$(now)
	restarted() { local p; p=$(uprop MainPID); [ "$p" != 0 ] && [ "$p" != "$p0" ] && [ "$(uprop ActiveState)" = active ]; }
	if wait_until 120 restarted; then
		note $n "ok: restarted by systemd $(since "$t0") s after vtpmd stopped answering (new pid $(uprop MainPID))"
	else
		fail $n "vtpmd.service not restarted 120 s after SIGSTOP: $(uprop ActiveState)/$(uprop SubState)"
		kill -CONT "$p0" 2>/dev/null; return 1
	fi
	journalctl --no-pager -o cat -u vtpmd | grep -q -i 'watchdog timeout' && note $n "ok: systemd logged the watchdog timeout" \
		|| fail $n "no 'Watchdog timeout' in the unit's journal"
	vtpmd_ready "the watchdog restart" || fail $n "vtpmd not ready after the watchdog restart"
	guest_run g20 300 "$TPM_UNTIL_UP" && note $n "ok: g20's TPM answers after the watchdog restart" || fail $n "g20's TPM after the watchdog restart: $GOUT"
}

# ---- a dom0 reboot with xendomains (scenario 16) --------------------------------
# dom0's root is its initramfs; /persist is the rig's disk (rig-init), bound over
# /var/lib/vtpmd, /var/lib/xen/save and /var/log/journal. Before the reboot: PCR
# 16 extended and NV written in g20, what the second boot compares written to the
# disk, with what the first boot installed on the root (rig-init puts it back);
# then rig-run reboots dom0 with `systemctl reboot`, and Debian's xendomains
# saves g20 (XENDOMAINS_SAVE) before vtpmd.service stops. At boot xendomains
# restores it once vtpmd.service is ready (its Before=xendomains.service).
P=/persist/rig
rig_reboot_prepare() {
	local n=16 id d f
	mountpoint -q /persist || { fail $n "no persistent disk on /persist (rig-init's lines in serial.log say why)"; return 1; }
	for d in /var/lib/vtpmd /var/lib/xen/save /var/log/journal; do
		mountpoint -q "$d" || { fail $n "$d is not the persistent disk's"; return 1; }
	done
	# Debian's defaults: save at shutdown, restore at boot
	. /etc/default/xendomains
	[ "$XENDOMAINS_SAVE" = /var/lib/xen/save ] && [ "$XENDOMAINS_RESTORE" = true ] \
		&& note $n "ok: /etc/default/xendomains: XENDOMAINS_SAVE=$XENDOMAINS_SAVE XENDOMAINS_RESTORE=$XENDOMAINS_RESTORE" \
		|| { fail $n "/etc/default/xendomains: XENDOMAINS_SAVE='$XENDOMAINS_SAVE' XENDOMAINS_RESTORE='$XENDOMAINS_RESTORE'"; return 1; }
	[ "$(systemctl is-active xendomains)" = active ] || { fail $n "xendomains.service is $(systemctl is-active xendomains): it would not stop at shutdown"; return 1; }
	[ -n "$(domid g20)" ] || { fail $n "no g20 to save"; return 1; }
	before_move $n
	id=$(domid g20)
	vtpmd-ctl list > "$L/list-before-reboot.txt" 2>&1
	{
		echo "PCR_BEFORE=$PCR_BEFORE"; echo "NV_BEFORE=$NV_BEFORE"
		echo "G20_DOMID=$id"; echo "G20_SEQ=${SEQ[$id]}"
		echo "G20_UUID=$(xl list -l g20 2>/dev/null | sed -n 's/.*"uuid": "\([0-9a-f-]*\)".*/\1/p' | head -1)"
	} > "$P/expect"
	note $n "before the reboot: g20 domid $id, PCR 16 $PCR_BEFORE, NV '$NV_BEFORE'"
	# What a disk root would keep: the package's files, dpkg's database, /etc.
	f=$P/root.list
	{ dpkg -L vtpmd; find /etc /var/lib/dpkg /var/lib/systemd/deb-systemd-helper-enabled; } 2>/dev/null |
		while read -r p; do [ "$p" != /. ] && { [ -e "$p" ] || [ -L "$p" ]; } && echo "$p"; done | sort -u > "$f"
	tar -cpf "$P/root.tar" --no-recursion -T "$f" 2>"$L/root-tar.log" \
		|| { fail $n "tar of the root file system: $(tail -2 "$L/root-tar.log" | tr '\n' ' ')"; return 1; }
	touch "$P/boot2"; sync
	REBOOT=1
	say "scenario 16: dom0 reboots now (xendomains saves g20 at shutdown)"
}
# The second boot, run by rig-run when rig-init found /persist/rig/boot2.
rig_after_reboot() {
	local n=16 id t_v t_x j lx lv
	# shellcheck disable=SC1091
	. "$P/expect"
	journalctl --no-pager -f -b -n all -o short-monotonic -u vtpmd > "$VLOG" 2>&1 &
	note $n "second boot: vtpmd $(dpkg-query -W -f '${Version} ${Status}' vtpmd 2>&1), unit $(systemctl is-enabled vtpmd 2>&1)"
	# the first boot's shutdown, from the journal on the disk
	journalctl --no-pager -b -1 -o short-monotonic -u xendomains -u vtpmd > "$L/boot1-shutdown.txt" 2>&1
	j=$(journalctl --no-pager -b -1 -o cat -u xendomains 2>/dev/null)
	echo "$j" | grep -q 'Saving Xen domain g20' && note $n "ok: xendomains saved g20 at shutdown: $(echo "$j" | grep 'Saving Xen domain g20' | tail -1)" \
		|| fail $n "no 'Saving Xen domain g20' from xendomains in the first boot's journal"
	# the unit's Before=xendomains.service at shutdown: vtpmd.service began to stop
	# only once xendomains.service had stopped (its saves done)
	lx=$(grep -n 'Stopped xendomains.service' "$L/boot1-shutdown.txt" | tail -1 | cut -d: -f1)
	lv=$(grep -n 'Stopping vtpmd.service' "$L/boot1-shutdown.txt" | tail -1 | cut -d: -f1)
	[ -n "$lx" ] && [ -n "$lv" ] && [ "$lx" -lt "$lv" ] && note $n "ok: at shutdown vtpmd.service stopped after xendomains.service" \
		|| fail $n "at shutdown: 'Stopped xendomains.service' at line '$lx', 'Stopping vtpmd.service' at line '$lv' of boot1-shutdown.txt"
	journalctl --no-pager -b -1 -o cat -u vtpmd 2>/dev/null | grep -q -i 'suspend' \
		&& note $n "ok: vtpmd logged the suspend at shutdown: $(journalctl --no-pager -b -1 -o cat -u vtpmd | grep -i suspend | tail -1)"
	[ "$(uprop ActiveState)" = active ] || fail $n "vtpmd.service is $(uprop ActiveState)/$(uprop SubState) after the reboot"
	VPID=$(uprop MainPID)
	[ "$(systemctl is-active xendomains)" = active ] || fail $n "xendomains.service: $(systemctl is-active xendomains)"
	j=$(journalctl --no-pager -b -o cat -u xendomains 2>/dev/null)
	echo "$j" > "$L/xendomains-boot2.txt"
	echo "$j" | grep -q 'Restoring Xen domain g20' && note $n "ok: xendomains: $(echo "$j" | grep 'Restoring Xen domain g20' | tail -1)" \
		|| fail $n "no 'Restoring Xen domain g20' from xendomains at boot"
	[ -e /var/lib/xen/save/g20 ] && fail $n "xendomains left /var/lib/xen/save/g20 (its restore failed): $(echo "$j" | tail -3 | tr '\n' ' ')"
	# vtpmd.service ready (Type=notify) before xendomains began
	t_v=$(uprop ActiveEnterTimestampMonotonic)
	t_x=$(systemctl show -p InactiveExitTimestampMonotonic --value xendomains)
	[ -n "$t_v" ] && [ -n "$t_x" ] && [ "$t_v" -gt 0 ] && [ "$t_v" -le "$t_x" ] \
		&& note $n "ok: vtpmd.service was ready before xendomains.service started" \
		|| fail $n "vtpmd.service active at $t_v us, xendomains.service started at $t_x us"
	id=$(domid g20) || { fail $n "no g20 after the reboot: $(xl list 2>&1 | tr '\n' ' ')"; return 1; }
	note $n "g20 restored as domid $id (was $G20_DOMID), domain UUID $(xl list -l g20 2>/dev/null | sed -n 's/.*"uuid": "\([0-9a-f-]*\)".*/\1/p' | head -1) (was $G20_UUID)"
	# the same kernel resumed: its command loop goes on from where it was
	SEQ[$id]=$G20_SEQ
	if guest_run g20 300 "$TPM_UNTIL_UP"; then
		note $n "ok: g20's TPM answers after the dom0 reboot"
	else
		fail $n "g20's TPM after the dom0 reboot: $GOUT"; return 1
	fi
	note $n "vtpmd: $(grep -o 'Resuming the vTPM suspended .*' "$VLOG" | tail -1)"
	after_move $n "a dom0 reboot (xendomains save and restore)"
	destroy_guest g20 $n
	vtpmd_stop || fail $n "systemctl stop vtpmd after the reboot: Result=$(uprop Result) ExecMainStatus=$(uprop ExecMainStatus)"
}
DESC[16]='dom0 reboot: xendomains saves the guest at shutdown (XENDOMAINS_SAVE) before vtpmd stops, restores it at boot after vtpmd.service is ready; PCR 16 and NV unchanged'
if [ "${1:-}" = boot2 ]; then
	say "scenario 16: the second boot"
	rig_after_reboot
	if [ -n "${FAILS[16]}" ]; then
		echo "XENRIG-RESULT not ok 16 - ${DESC[16]}"; exit 1
	fi
	echo "XENRIG-RESULT ok 16 - ${DESC[16]}"; exit 0
fi

# Every change under the vtpm paths, with times, to compare with the simulation.
xenstore-watch / 2>/dev/null | grep --line-buffered -E 'vtpm|releaseDomain|introduceDomain' |
	while read -r p; do echo "[$(now)] $p = $(xenstore-read "$p" 2>/dev/null || echo '<gone>')"; done > "$L/xenstore-trace.log" 2>&1 &

# =============================== the package ====================================
say "scenario 11: dpkg -i the vtpmd package built in this run"
# Not started by its postinst (policy-rc.d says no, as in an image build): the
# admin configures it first. Every dependency must be in the base image.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
dpkg -i "$DEB" > "$L/dpkg-install.log" 2>&1; rc=$?
rm -f /usr/sbin/policy-rc.d
note 11 "dpkg -i $(dpkg-deb -f "$DEB" Package Version | tr '\n' ' '): rc=$rc"
[ $rc = 0 ] || fail 11 "dpkg -i: $(grep -i -E 'error|depends' "$L/dpkg-install.log" | head -3 | tr '\n' ' ')"
check 11 "vtpmd.service enabled by the package" [ "$(systemctl is-enabled vtpmd 2>&1)" = enabled ]
check 11 "/etc/vtpmd/vtpmd.conf is a conffile" grep -q /etc/vtpmd/vtpmd.conf /var/lib/dpkg/info/vtpmd.conffiles
umask 077; head -c 32 /dev/urandom > /etc/vtpmd/master.key; umask 022
sed -i -e 's|^#KeySource=tpm$|KeySource=file:/etc/vtpmd/master.key|' -e 's|^#LogLevel=info$|LogLevel=debug|' \
	-e 's|^#DefaultTPM=2.0$|DefaultTPM=2.0|' "$CONF"
check 11 "vtpmd.conf edited (KeySource, LogLevel, DefaultTPM)" \
	[ "$(grep -c -E '^(KeySource=file:|LogLevel=debug|DefaultTPM=)' "$CONF")" = 3 ]
# the unit's journal as text with dom0-uptime stamps, for run.sh and the log archive
journalctl --no-pager -f -n all -o short-monotonic -u vtpmd > "$VLOG" 2>&1 &

# A developer's shortcut (run.sh's XENRIG_ONLY=16): the package, then scenario 16
# alone on a new PV g20; the other scenarios report no result.
if grep -q 'xenrig_only=16' /proc/cmdline; then
	say "XENRIG_ONLY=16: scenario 16 alone"
	vtpmd_start 2.0 || fail 16 "vtpmd did not start"
	if create_guest g20 "$U20" 16 pv; then
		guest_run g20 300 "tpm2_nvdefine $NVIDX -C o -s 26 -a 'ownerread|ownerwrite|authread|authwrite' >/dev/null" || fail 16 "nvdefine: $GOUT"
		rig_reboot_prepare
	fi
	for n in 11 16; do
		[ $n = 16 ] && [ -n "$REBOOT" ] && continue
		[ -n "${FAILS[$n]}" ] && echo "XENRIG-RESULT not ok $n - ${DESC[$n]:-scenario $n}" || echo "XENRIG-RESULT ok $n - ${DESC[$n]:-scenario $n}"
	done
	exit 0
fi

# =============================== TPM 1.2 phase ==================================
say "phase 1: vtpmd --default-tpm 1.2"
vtpmd_start 1.2 || fail 1 "vtpmd (1.2) did not start"
if [ -n "$VPID" ]; then
	want=$(uprop CapabilityBoundingSet | tr ' ' '\n' | sort | tr '\n' ' ')
	got=$(cap_names "$VPID")
	[ "$got" = "$want" ] && note 11 "ok: vtpmd runs with the unit's bounding set: $got" \
		|| fail 11 "vtpmd's bounding set is '$got', the unit's '$want'"
	check 11 "vtpmd.service is Type=notify (active only after READY=1)" [ "$(uprop Type)" = notify ]
	check 11 "vtpmd runs with NoNewPrivs" grep -q '^NoNewPrivs:.*1' "/proc/$VPID/status"
fi

say "scenario 1: xl create with vtpm=[backend=0,uuid=...]"
if create_guest g12 "$U12" 1; then
	guest_run g12 20 'ls -l /dev/tpm0 && test -c /dev/tpm0' || fail 1 "/dev/tpm0 missing in g12: $GOUT"
	xenstore-ls -fp "/local/domain/0/backend/vtpm/$(domid g12)" > "$L/xenstore-backend-g12.txt" 2>&1
	xenstore-ls -fp "/local/domain/$(domid g12)/device/vtpm" > "$L/xenstore-frontend-g12.txt" 2>&1
	say "scenario 2: TPM 1.2 through the guest kernel's driver"
	guest_run g12 300 rig-tpm12-check; rc=$?
	echo "$GOUT" | sed 's/^/XENRIG-DIAG 2 /'
	[ $rc = 0 ] || fail 2 "TPM 1.2 check in g12 failed (rc=$rc): $(echo "$GOUT" | grep FAIL | head -1)"
	RAN[2]=1
	destroy_guest g12
else
	fail 2 "no TPM 1.2 guest"
fi
vtpmd_stop || fail 5 "vtpmd (1.2) did not stop cleanly"

# =============================== TPM 2.0 phase ==================================
say "phase 2: vtpmd --default-tpm 2.0"
vtpmd_start 2.0 || fail 3 "vtpmd (2.0) did not start"

say "scenario 3: TPM 2.0 with tpm2-tools, NV across xl reboot"
if create_guest g20 "$U20" 1; then
	guest_run g20 20 'test -c /dev/tpm0 && ! test -e /dev/tpmrm0' || note 3 "device nodes: $GOUT"
	if guest_run g20 150 'tpm2_getrandom --hex 16' && [ "$(echo -n "$GOUT" | tr -d '\n' | wc -c)" = 32 ]; then
		note 3 "ok: getrandom $GOUT"
	else fail 3 "tpm2_getrandom: $GOUT"; fi
	pcrread g20 sha256:16 || fail 3 "pcrread before extend: $PCR"
	p0=$PCR; d=$(rand_hex 32)
	guest_run g20 150 "tpm2_pcrextend 16:sha256=$d" || fail 3 "tpm2_pcrextend: $GOUT"
	pcrread g20 sha256:16 || fail 3 "pcrread after extend: $PCR"
	exp=$(sha256_ext "$p0" "$d")
	[ "$PCR" = "$exp" ] && note 3 "ok: PCR 16 = SHA-256(old || digest)" || fail 3 "PCR 16 after extend is $PCR, expected $exp"
	guest_run g20 600 'tpm2_createprimary -C o -G ecc -c /tmp/primary.ctx >/tmp/cp.out 2>&1; rc=$?; test -s /tmp/primary.ctx || rc=1; [ $rc = 0 ] || tail -n 5 /tmp/cp.out; tpm2_flushcontext -t; exit $rc' \
		&& note 3 "ok: createprimary (ECC)" || fail 3 "tpm2_createprimary: $GOUT"
	nvdata=xenrig-nv-$(rand_hex 8)
	guest_run g20 300 "tpm2_nvundefine $NVIDX -C o >/dev/null 2>&1; tpm2_nvdefine $NVIDX -C o -s ${#nvdata} -a 'ownerread|ownerwrite|authread|authwrite' >/dev/null && printf %s $nvdata > /tmp/nv && tpm2_nvwrite $NVIDX -C o -i /tmp/nv && tpm2_nvread $NVIDX -C o -s ${#nvdata}" \
		&& [ "$GOUT" = "$nvdata" ] && note 3 "ok: NV index $NVIDX written and read back" || fail 3 "NV define/write/read: $GOUT"
	id0=$(domid g20)
	t0=$(now)
	xl reboot g20 > "$L/xl-reboot-g20.log" 2>&1 || fail 3 "xl reboot g20: $(cat "$L/xl-reboot-g20.log")"
	new_g20() { local i; i=$(domid g20) && [ "$i" != "$id0" ]; }
	if wait_until 120 new_g20; then
		id=$(domid g20)
		note 3 "g20 rebooted: domid $id0 -> $id after $(since "$t0") s"
		if wait_until 120 fe_is "$id" 4 && wait_until 60 guest_ready "$id"; then
			pcrread g20 sha256:16 || fail 3 "pcrread after reboot: $PCR"
			[ "$PCR" = "$(printf '%064d' 0)" ] && note 3 "ok: PCR 16 reset by the reboot" || fail 3 "PCR 16 after reboot is $PCR, expected zeros"
			guest_run g20 150 "tpm2_nvread $NVIDX -C o -s ${#nvdata}"
			[ "$GOUT" = "$nvdata" ] && note 3 "ok: NV index kept across xl reboot" \
				|| fail 3 "NV index not kept across xl reboot (KNOWN-FAIL until durable state, issue 4): got '$GOUT'"
		else
			fail 3 "g20 after reboot: frontend '$(fe_state "$id")', guest ready: $(guest_ready "$id" && echo yes || echo no)"
		fi
	else
		fail 3 "g20 did not come back after xl reboot: $(xl list 2>&1 | tr '\n' ' ')"
	fi

	say "scenario 6: restart vtpmd while g20 uses its TPM"
	d=$(rand_hex 32)
	guest_run g20 150 "tpm2_pcrextend 16:sha256=$d" || fail 6 "pcrextend before restart: $GOUT"
	pcrread g20 sha256:16 || fail 6 "pcrread before restart: $PCR"
	before=$PCR
	# the guest keeps issuing commands while the daemon goes away and comes back
	id=$(domid g20)
	xenstore-write "/local/domain/$id/data/cmd/$(( ${SEQ[$id]} + 1 ))" 'i=0; ok=0; post=0; while [ $post -lt 3 ] && [ $i -lt 200 ]; do tpm2_getrandom --hex 4 >/dev/null 2>&1 && ok=$((ok+1)); i=$((i+1)); xenstore-read data/restarted >/dev/null 2>&1 && post=$((post+1)); done; echo "$ok/$i"'
	bg_n=$(( ${SEQ[$id]} + 1 )); SEQ[$id]=$bg_n
	fe0=$(fe_state "$id"); be0=$(be_state "$id")
	vtpmd_restart || fail 6 "systemctl restart vtpmd"
	xenstore-write "/local/domain/$id/data/restarted" 1
	bg_done() { xenstore-exists "/local/domain/$id/data/rc/$bg_n"; }
	if wait_until 400 bg_done; then
		# the loop prints ok/i: every command sent across the restart must have succeeded
		bg_out=$(xenstore-read -R "/local/domain/$id/data/out/$bg_n" 2>/dev/null | tail -n 1 | tr -d '[:space:]')
		note 6 "getrandom loop across the restart: ${bg_out:-no output} (succeeded/sent)"
		if ! [[ $bg_out =~ ^([0-9]+)/([0-9]+)$ ]]; then
			fail 6 "the guest's getrandom loop printed '$bg_out', not succeeded/sent"
		elif [ "${BASH_REMATCH[2]}" -eq 0 ] || [ "${BASH_REMATCH[1]}" -ne "${BASH_REMATCH[2]}" ]; then
			fail 6 "getrandom across the daemon restart: ${BASH_REMATCH[1]} of ${BASH_REMATCH[2]} commands succeeded"
		fi
	else
		fail 6 "the guest's command loop did not finish"
	fi
	[ "$(fe_state "$id")/$(be_state "$id")" = "$fe0/$be0" ] || fail 6 "xenbus states moved: fe $fe0->$(fe_state "$id"), be $be0->$(be_state "$id")"
	guest_run g20 150 'tpm2_getrandom --hex 16' && note 6 "ok: getrandom after restart" || fail 6 "getrandom after restart: $GOUT"
	pcrread g20 sha256:16 || fail 6 "pcrread after restart: $PCR"
	[ "$PCR" = "$before" ] && note 6 "ok: PCR 16 unchanged" \
		|| fail 6 "PCR 16 changed across the daemon restart (KNOWN-FAIL until durable state, issue 4): $before -> $PCR"

	say "scenario 4: xl vtpm-list, vtpm-detach, vtpm-attach"
	id=$(domid g20)
	xl vtpm-list g20 > "$L/vtpm-list.txt" 2>&1
	grep -q "$U20" "$L/vtpm-list.txt" && note 4 "ok: vtpm-list: $(grep "$U20" "$L/vtpm-list.txt")" || fail 4 "xl vtpm-list does not show $U20: $(cat "$L/vtpm-list.txt")"
	w0=$(workers)
	t0=$(now)
	xl -v vtpm-detach g20 0 > "$L/xl-vtpm-detach.log" 2>&1; rc=$?; el=$(since "$t0")
	note 4 "xl vtpm-detach: rc=$rc in $el s"
	[ $rc = 0 ] || fail 4 "xl vtpm-detach rc=$rc: $(tail -3 "$L/xl-vtpm-detach.log" | tr '\n' ' ')"
	awk -v e="$el" 'BEGIN { exit !(e < 8) }' || note 4 "slow: xl vtpm-detach took $el s (libxl's 10 s timeout? its log is checked next)"
	grep -q -i 'unable\|timed out\|timeout' "$L/xl-vtpm-detach.log" && fail 4 "xl vtpm-detach: $(grep -i 'unable\|time' "$L/xl-vtpm-detach.log" | head -1)"
	guest_run g20 30 'i=0; while ls /dev/tpm[0-9]* >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.2; done; echo gone' \
		&& note 4 "ok: /dev/tpm0 gone in the guest" || fail 4 "/dev/tpm0 still in the guest after detach: $GOUT"
	workers_at_most() { [ "$(workers)" -le "$1" ]; }
	wait_until 5 workers_at_most $((w0 - 1)) || fail 4 "worker still running after detach"
	xenstore-exists "/local/domain/0/backend/vtpm/$id/0" && fail 4 "backend dir still there after detach"
	t0=$(now)
	xl -v vtpm-attach g20 "uuid=$U20" > "$L/xl-vtpm-attach.log" 2>&1; rc=$?; el=$(since "$t0")
	note 4 "xl vtpm-attach: rc=$rc in $el s"
	[ $rc = 0 ] || fail 4 "xl vtpm-attach rc=$rc: $(tail -3 "$L/xl-vtpm-attach.log" | tr '\n' ' ')"
	devid=$(xenstore-list "/local/domain/$id/device/vtpm" 2>/dev/null | head -1)
	fe_dev_is() { [ "$(fe_state "$id" "${devid:-0}")" = 4 ]; }
	wait_until 60 fe_dev_is \
		|| fail 4 "re-attached frontend (devid ${devid:-?}) not Connected: '$(fe_state "$id" "${devid:-0}")'"
	guest_run g20 150 'i=0; until ls /dev/tpm[0-9]* >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.2; done; dev=$(ls /dev/tpm[0-9]* | head -1); echo $dev; tpm2_getrandom -T device:$dev --hex 16' \
		&& note 4 "ok: after attach: $(echo $GOUT)" || fail 4 "TPM after vtpm-attach: $GOUT"

	say "scenario 7: two guests, PCRs independent"
	if create_guest g20b "$U20B" 7; then
		say "scenario 7: reading PCR 15 in both guests"
		guest_run g20 30 'ls /dev/tpm[0-9]* | head -1'
		A="-T device:${GOUT:-/dev/tpm0}"
		guest_run g20 150 "tpm2_pcrread $A sha256:15"; a0=$(echo "$GOUT" | sed -n 's/.*: *0x\([0-9A-Fa-f]*\).*/\1/p' | tr A-F a-f)
		pcrread g20b sha256:15; b0=$PCR
		d=$(rand_hex 32)
		say "scenario 7: extending PCR 15 in g20"
		guest_run g20 150 "tpm2_pcrextend $A 15:sha256=$d" || fail 7 "pcrextend in g20: $GOUT"
		guest_run g20 150 "tpm2_pcrread $A sha256:15"; a1=$(echo "$GOUT" | sed -n 's/.*: *0x\([0-9A-Fa-f]*\).*/\1/p' | tr A-F a-f)
		pcrread g20b sha256:15; b1=$PCR
		note 7 "g20 PCR15 $a0 -> $a1; g20b PCR15 $b0 -> $b1"
		[ "$a1" = "$(sha256_ext "$a0" "$d")" ] || fail 7 "extend in g20 did not give SHA-256(old || digest)"
		[ -n "$b0" ] && [ "$b0" = "$b1" ] || fail 7 "g20b's PCR 15 changed when g20 extended its own"
		d=$(rand_hex 32)
		say "scenario 7: extending PCR 15 in g20b"
		guest_run g20b 150 "tpm2_pcrextend 15:sha256=$d" || fail 7 "pcrextend in g20b: $GOUT"
		guest_run g20 150 "tpm2_pcrread $A sha256:15"; a2=$(echo "$GOUT" | sed -n 's/.*: *0x\([0-9A-Fa-f]*\).*/\1/p' | tr A-F a-f)
		[ "$a2" = "$a1" ] || fail 7 "g20's PCR 15 changed when g20b extended its own: $a1 -> $a2"
		[ "$(workers)" -ge 2 ] || fail 7 "expected a worker per guest, found $(workers)"
		destroy_guest g20b
	fi

	say "scenario 8: xl save + xl restore: PCR 16 and NV as they were"
	rig_save_restore
	# 10 before 9: scenario 9 ends with a PVH guest in place of the PV one
	say "scenario 10: xl save -c, then the checkpoint restored as a second copy"
	rig_checkpoint_twice
	say "scenario 9: xl migrate to localhost, a PV guest (refused) and a PVH guest"
	rig_migrate
	if [ -n "$(domid g20)" ]; then
		rig_journal_fields
		rig_watchdog
	else
		for n in 12 13; do fail $n "no g20 after scenario 9"; done
	fi
	# 14-15 on a fresh PV guest with the same vTPM in place of the PVH one
	destroy_guest g20
	say "scenario 14: a hung worker, systemctl restart (PV g20)"
	if create_guest g20 "$U20" 14 pv; then
		rig_hung_worker
		say "scenario 15: systemctl stop with g20 connected, then start"
		rig_stop_with_guests
	else
		fail 15 "no PV g20"
	fi
	say "scenario 16: dom0 reboot with xendomains"
	rig_reboot_prepare
	[ -z "$REBOOT" ] && [ -n "$(domid g20)" ] && destroy_guest g20
else
	fail 3 "no TPM 2.0 guest"
	fail 4 "no TPM 2.0 guest"
	fail 6 "no TPM 2.0 guest"
	fail 7 "no TPM 2.0 guest"
	fail 8 "no TPM 2.0 guest"
	fail 9 "no TPM 2.0 guest"
	fail 10 "no TPM 2.0 guest"
	fail 14 "no TPM 2.0 guest"
	fail 15 "no TPM 2.0 guest"
	fail 16 "no TPM 2.0 guest"
fi
vtpmd_alive || fail 5 "vtpmd is not running at the end"
# with a reboot ahead, systemd stops vtpmd at shutdown (after xendomains)
[ -n "$REBOOT" ] || vtpmd_stop || fail 5 "vtpmd (2.0) did not stop cleanly"

DESC[1]='xl create with a vtpm: xl succeeds, frontend Connected, /dev/tpm0'
DESC[2]='TPM 1.2 vTPM: sysfs caps/pcrs answer, raw TPM_Extend of PCR 16 gives SHA-1(old || digest)'
DESC[3]='TPM 2.0 vTPM: getrandom, pcrextend/pcrread, createprimary, NV kept across xl reboot'
DESC[4]='xl vtpm-list shows it; vtpm-detach without a libxl timeout, /dev/tpm0 gone; vtpm-attach brings it back'
DESC[5]='xl destroy without "unable to remove", worker gone, backend dir gone'
DESC[6]='vtpmd restart while the guest uses TPM 2.0: commands succeed, PCRs unchanged'
DESC[7]='two guests at once: a PCR extended in one is unchanged in the other'
DESC[8]='xl save + xl restore: the vTPM is suspended, then resumed with PCR 16 and NV as they were; a reboot afterwards clears PCR 16'
DESC[9]='xl migrate to localhost: a PV guest is refused (no shadow paging) and keeps its vTPM; a PVH guest migrates with PCR 16 and NV as they were, no TPM error in a loop across it, the source gone'
DESC[10]='xl save -c keeps the vTPM; the checkpoint restored as a second copy is refused, the first copy unaffected'
DESC[11]="the package: dpkg -i with its dependencies in the base image, the unit enabled, vtpmd under the unit's bounding set"
DESC[12]='journalctl -u vtpmd -o json: VTPM_UUID, VTPM_DOMID, VTPM_DEVID fields'
DESC[13]="the watchdog: WatchdogSec=30 pinged; vtpmd stopped with SIGSTOP is aborted and restarted, the guest's TPM answers"
DESC[14]='a worker stopped with SIGSTOP: systemctl restart, vtpmd kills it itself (CAP_KILL), a new worker serves the guest'
DESC[15]='systemctl stop with a guest connected: exit 0, nothing left, xenbus states unchanged; start again, PCR 16 unchanged'
failed=0
for n in $(seq 16); do
	# scenario 16's result comes from the second boot
	[ $n = 16 ] && [ -n "$REBOOT" ] && continue
	if [ -z "${RAN[$n]}" ]; then
		echo "XENRIG-RESULT not ok $n - ${DESC[$n]} # did not run"; failed=$((failed + 1))
	elif [ -n "${FAILS[$n]}" ]; then
		echo "XENRIG-RESULT not ok $n - ${DESC[$n]}"; failed=$((failed + 1))
	else
		echo "XENRIG-RESULT ok $n - ${DESC[$n]}"
	fi
done
exit $((failed > 0))
