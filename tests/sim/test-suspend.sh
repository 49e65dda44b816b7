#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A vTPM follows its guest (issue 14) on the simulated host with the real
# vtpmd: after xl save + restore, a same-host xl migrate, a failed migrate
# (--fail) and a xendomains-style stop/start of the whole host with the guest
# saved before and restored after, PCR 16, an NV index and a saved policy
# session are as before; a guest looping tpm2_getrandom across a migration
# sees no error once migrate returned; a plain reboot afterwards clears PCR 16;
# a saved image restored a second time while the first copy runs gets a clear
# "already attached/in use" error from the backend, and the first copy still
# answers; vtpmd SIGKILLed (with its workers) in the middle of a restore, a
# migration and a save leaves the guest answering, its NV intact, the vTPM in
# one domain and PCR 16 as before or reset as after a logged power loss.
# Prints (does not assert) the time from restore to the first answered TPM
# command.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

need_tools "vTPM state across save/restore/migrate" tpm2_pcrextend tpm2_pcrread tpm2_nvdefine tpm2_startauthsession tpm2_getcap tpm2_getrandom

LOOP_PID=
on_exit() {
	[ -z "$LOOP_PID" ] || kill "$LOOP_PID" 2>/dev/null
	cleanup
}
trap on_exit EXIT

json() { "$VTPM_SIM" status --dir "$SIMDIR" --json; }
field() {
	json | python3 -c "import json,sys; d=json.load(sys.stdin); g=[x for x in d['guests'] if x['name']=='$1'][0]; print($2)"
}
domid() { field "$1" "g['domid']"; }
pcr16() { tpm2_pcrread -T "$(tcti "$1")" sha256:16 | awk '/16:/ {print $2}'; }
sessions() { tpm2_getcap -T "$(tcti "$1")" handles-saved-session 2>/dev/null | tr -d ' -'; }
ZERO=0x0000000000000000000000000000000000000000000000000000000000000000
NV=0x1500016
NV_TEXT=follows-its-guest
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The guest's TPM state as recorded after setup.
same_pcr() { [ "$(pcr16 "$1")" = "$PCR" ]; }
same_nv() { [ "$(tpm2_nvread -T "$(tcti "$1")" -C o -s ${#NV_TEXT} $NV 2>/dev/null)" = "$NV_TEXT" ]; }
same_sessions() { [ -n "$SESSIONS" ] && [ "$(sessions "$1")" = "$SESSIONS" ]; }
# The session is still usable: a policy command on it (context load + save).
session_usable() { tpm2_policypcr -T "$(tcti "$1")" -S "$SIMDIR/session.ctx" -l sha256:16 >/dev/null 2>&1; }
check_state() {
	check "$1: PCR 16 as before" same_pcr guest1
	check "$1: the NV index reads back" same_nv guest1
	check "$1: the saved policy session is still there" same_sessions guest1
	check "$1: the policy session is usable" session_usable guest1
	SESSIONS=$(sessions guest1)
}
first_answer_ms() {
	local t0=$1 deadline=$(($(now_ms) + 30000))
	until tpm2_getrandom -T "$(tcti guest1)" 4 >/dev/null 2>&1; do
		[ "$(now_ms)" -lt "$deadline" ] || { echo "never"; return; }
	done
	echo $(($(now_ms) - t0))
}

export VTPM_SIM_CONNECT_TIMEOUT=20
if ! run "$VTPM_SIM" start --dir "$SIMDIR" --guests 1 --tpm 2.0; then
	fail "vtpm-sim start with one TPM 2.0 guest"
	finish
fi
T=$(tcti guest1)
check "extend PCR 16" tpm2_pcrextend -T "$T" 16:sha256=0000000000000000000000000000000000000000000000000000000000000016
PCR=$(pcr16 guest1)
check "PCR 16 is no longer zero" test "$PCR" != "$ZERO"
printf '%s' "$NV_TEXT" >"$SIMDIR/nv.in"
check "define and write an NV index" bash -c "tpm2_nvdefine -T '$T' -C o -s 32 -a 'ownerread|ownerwrite' $NV >/dev/null &&
	tpm2_nvwrite -T '$T' -C o -i '$SIMDIR/nv.in' $NV"
check "start a policy session saved to a file" tpm2_startauthsession -T "$T" --policy-session -S "$SIMDIR/session.ctx"
SESSIONS=$(sessions guest1)
check "the session is listed as a saved session" test -n "$SESSIONS"

# xl save + xl restore.
dom=$(domid guest1)
check "save" run "$VTPM_SIM" save --dir "$SIMDIR" guest1 "$SIMDIR/guest1.save"
check "the saved image names the guest and its vTPM" grep -q "$(field guest1 "g['vtpms'][0]['uuid']")" "$SIMDIR/guest1.save"
check "status shows guest1 saved" test "$(field guest1 "g.get('saved_image', '')")" = "$SIMDIR/guest1.save"
t0=$(now_ms)
check "restore" run "$VTPM_SIM" restore --dir "$SIMDIR" "$SIMDIR/guest1.save"
echo "# time from vtpm-sim restore to the first answered TPM command: $(first_answer_ms "$t0") ms"
check "the restored guest has a new domid" test "$(domid guest1)" != "$dom"
check_state "save+restore"

# xl migrate to this host, with a guest that keeps using its TPM.
dom=$(domid guest1)
rm -f "$SIMDIR/loop.stop"
(
	while [ ! -e "$SIMDIR/loop.stop" ]; do
		s=$(now_ms)
		if tpm2_getrandom -T "$T" 8 >/dev/null 2>&1; then echo "ok $s"; else echo "err $s"; fi
	done
) >"$SIMDIR/loop.log" &
LOOP_PID=$!
wait_for 20 grep -q '^ok' "$SIMDIR/loop.log"
check "migrate" run "$VTPM_SIM" migrate --dir "$SIMDIR" guest1
done_ms=$(now_ms)
answers_after() { [ "$(awk -v t="$done_ms" '$1 == "ok" && $2 >= t' "$SIMDIR/loop.log" | wc -l)" -ge 3 ]; }
check "the looping guest gets answers after the migration" wait_for 20 answers_after
touch "$SIMDIR/loop.stop"
wait "$LOOP_PID"
LOOP_PID=
echo "# tpm2_getrandom during the migration: $(grep -c '^ok' "$SIMDIR/loop.log") answered, $(grep -c '^err' "$SIMDIR/loop.log") failed"
check "no tpm2_getrandom failed once migrate returned" \
	test "$(awk -v t="$done_ms" '$1 == "err" && $2 >= t' "$SIMDIR/loop.log" | wc -l)" -eq 0
check "the migrated guest has a new domid" test "$(domid guest1)" != "$dom"
check "the source domain is gone" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-read /local/domain/$dom/name"
check_state "migrate"

# A guest that suspends in the middle of a command: the command completes
# (before the freeze or after the thaw) and what it did moves with the vTPM.
transients() { tpm2_getcap -T "$(tcti guest1)" handles-transient 2>/dev/null | grep -c 0x; }
n0=$(transients)
tpm2_createprimary -T "$T" -C o -G rsa2048 -c "$SIMDIR/mid.ctx" >"$SIMDIR/mid.out" 2>&1 &
MID=$!
check "migrate while a CreatePrimary (RSA 2048) runs" run "$VTPM_SIM" migrate --dir "$SIMDIR" guest1
wait "$MID"
check "the CreatePrimary sent around the suspend succeeded" test $? -eq 0
check "its object is loaded in the migrated vTPM" test "$(transients)" -eq $((n0 + 1))
tpm2_flushcontext -T "$(tcti guest1)" -t >/dev/null 2>&1

# A migration that fails after the destination was created.
dom=$(domid guest1)
check "migrate --fail exits non-zero" bash -c "! '$VTPM_SIM' migrate --dir '$SIMDIR' guest1 --fail"
check "after the failed migration the guest keeps its domid" test "$(domid guest1)" = "$dom"
check_state "failed migrate"

# xendomains: the guest saved at host shutdown, restored at boot.
check "save before stop" run "$VTPM_SIM" save --dir "$SIMDIR" guest1 "$SIMDIR/guest1.save"
check "stop the host" run "$VTPM_SIM" stop --dir "$SIMDIR"
check "start the host (the saved guest is not booted)" run "$VTPM_SIM" start --dir "$SIMDIR"
check "guest1 is still saved" test "$(field guest1 "g['running']")" = False
check "restore after start" run "$VTPM_SIM" restore --dir "$SIMDIR" "$SIMDIR/guest1.save"
check_state "host stop/start"

# vtpmd killed (SIGKILL) once the suspend is reported: nothing of it is lost.
ctl() { "$VTPMD_CTL" --control "$SIMDIR/control" "$@"; }
U=$(field guest1 "g['vtpms'][0]['uuid']")
suspended_listed() { ctl list 2>/dev/null | grep "$U" | grep -q suspended; }
wait_suspended() {
	local deadline=$(($(now_ms) + 10000))
	until suspended_listed; do [ "$(now_ms)" -lt "$deadline" ] || return 1; done
}
check "save before vtpmd is killed" run "$VTPM_SIM" save --dir "$SIMDIR" guest1 "$SIMDIR/kill.save"
check "as soon as save returns, vtpmd-ctl list shows the vTPM suspended (libxl waited for it)" suspended_listed
check "vtpmd-ctl show says when and from which domain" bash -c "'$VTPMD_CTL' --control '$SIMDIR/control' show $U | grep -q 'Suspended from *domain'"
check "SIGKILL vtpmd" kill -KILL "$(cat "$SIMDIR/vtpmd.pid")"
check "vtpmd comes back" run "$VTPM_SIM" restart-daemon --dir "$SIMDIR"
check "still suspended after the kill" suspended_listed
check "restore after the kill" run "$VTPM_SIM" restore --dir "$SIMDIR" "$SIMDIR/kill.save"
check_state "vtpmd killed after save"
check "resumed: no longer listed as suspended" bash -c "! '$VTPMD_CTL' --control '$SIMDIR/control' list | grep '$U' | grep -q suspended"

# vtpmd killed (SIGKILL, the supervisor and its workers at once) at each step
# of a restore, a migration and a save: after its restart the guest answers,
# NV is intact, the vTPM serves exactly one domain. PCR 16 is either as before
# or, where the kill took the saved volatile state with it, reset as after a
# power loss, which vtpmd then logs.
log_size() { stat -c %s "$SIMDIR/vtpmd.log"; }
logged_since() { tail -c +$(($1 + 1)) "$SIMDIR/vtpmd.log" | grep -qF -- "$2"; }
kill_vtpmd() {
	local p
	p=$(cat "$SIMDIR/vtpmd.pid")
	kill -KILL -- "-$p" 2>/dev/null
	wait_for 30 bash -c "! pgrep -s $p >/dev/null"
}
# kill_at WHAT PATTERN COMMAND...: runs COMMAND in the background, SIGKILLs
# vtpmd as soon as its log shows PATTERN, restarts it; COMMAND must succeed.
kill_at() {
	local what=$1 pattern=$2 off pid rc
	shift 2
	off=$(log_size)
	"$@" >"$SIMDIR/bg.out" 2>&1 &
	pid=$!
	check "$what: vtpmd logs \"$pattern\"" wait_for 30 logged_since "$off" "$pattern"
	check "$what: SIGKILL vtpmd and its workers" kill_vtpmd
	check "$what: vtpmd comes back" run "$VTPM_SIM" restart-daemon --dir "$SIMDIR"
	wait "$pid"
	rc=$?
	sed 's/^/# /' "$SIMDIR/bg.out"
	check "$what: ${*:2:1} completes" test "$rc" -eq 0
}
one_domain() { test "$(json | python3 -c "import json,sys; print(sum(1 for g in json.load(sys.stdin)['guests'] if g['name'].startswith('guest1') and g.get('running')))")" -eq 1; }
pcr_kept_or_power_loss() {
	local off=$1 now
	now=$(pcr16 guest1)
	if [ "$now" = "$PCR" ]; then
		echo "# PCR 16 as before"
	elif [ "$now" = "$ZERO" ] && logged_since "$off" "starting as after a power loss"; then
		echo "# PCR 16 reset: the kill took the saved volatile state (logged as a power loss)"
	else
		echo "# PCR 16 is $now (was $PCR); vtpmd logged:"
		tail -c +$((off + 1)) "$SIMDIR/vtpmd.log" | grep -v ' debug: ' | sed 's/^/#   /' | tail -n 30
		return 1
	fi
}
after_kill() {
	local what=$1 off=$2
	check "$what: the guest answers" wait_for 20 answers guest1
	check "$what: the NV index reads back" same_nv guest1
	check "$what: exactly one guest1 domain runs" one_domain
	check "$what: PCR 16 as before, or reset as after a logged power loss" pcr_kept_or_power_loss "$off"
	check "$what: the vTPM is not left suspended" bash -c "! '$VTPMD_CTL' --control '$SIMDIR/control' list | grep '$U' | grep -q suspended"
}
answers() { tpm2_getrandom -T "$(tcti "$1")" 8 >/dev/null 2>&1; }

check "save before the restore that vtpmd dies in" run "$VTPM_SIM" save --dir "$SIMDIR" guest1 "$SIMDIR/k1.save"
off=$(log_size)
kill_at "killed in a restore" "Resuming the vTPM suspended" "$VTPM_SIM" restore --dir "$SIMDIR" "$SIMDIR/k1.save"
after_kill "killed in a restore" "$off"
PCR=$(pcr16 guest1)

off=$(log_size)
kill_at "killed in a migration" "Taking the vTPM over from suspended domain" "$VTPM_SIM" migrate --dir "$SIMDIR" guest1
after_kill "killed in a migration" "$off"
PCR=$(pcr16 guest1)

off=$(log_size)
kill_at "killed in a save" "Domain suspended: the vTPM's volatile state is kept" \
	"$VTPM_SIM" save --dir "$SIMDIR" guest1 "$SIMDIR/k3.save"
check "killed in a save: restore" run "$VTPM_SIM" restore --dir "$SIMDIR" "$SIMDIR/k3.save"
after_kill "killed in a save" "$off"

# A plain reboot is a TPM reset.
check "extend PCR 16 before the reboot" tpm2_pcrextend -T "$(tcti guest1)" 16:sha256=0000000000000000000000000000000000000000000000000000000000000016
check "PCR 16 is not zero before the reboot" test "$(pcr16 guest1)" != "$ZERO"
check "reboot" run "$VTPM_SIM" reboot --dir "$SIMDIR" guest1
check "the reboot cleared PCR 16" test "$(pcr16 guest1)" = "$ZERO"

# One image restored twice: never two live copies of the vTPM.
check "save for the double restore" run "$VTPM_SIM" save --dir "$SIMDIR" guest1 "$SIMDIR/twice.save"
check "first restore" run "$VTPM_SIM" restore --dir "$SIMDIR" "$SIMDIR/twice.save"
refused_name() {
	local out
	out=$("$VTPM_SIM" restore --dir "$SIMDIR" "$SIMDIR/twice.save" 2>&1) && return 1
	echo "$out" | grep -q 'domain with name "guest1" already exists'
}
check "a second restore while the name is used is refused" refused_name
check "rename the restored guest" run "$VTPM_SIM" rename --dir "$SIMDIR" guest1 first
check "the renamed guest's TCTI follows it" test -e "$SIMDIR/first.tcti"
out=$(VTPM_SIM_CONNECT_TIMEOUT=5 "$VTPM_SIM" restore --dir "$SIMDIR" "$SIMDIR/twice.save" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
err=$(echo "$out" | grep 'backend error')
check "the second copy is not Connected" test "$rc" -ne 0
check "its device's error node says the vTPM is already attached or in use" \
	bash -c "echo '$err' | grep -Eqi 'already attached|in use'"
check "the first copy still answers" answers first

# A restore where the vTPM does not exist (destroyed while its guest was saved):
# the same clear error as for any unknown UUID.
check "destroy the second copy" run "$VTPM_SIM" destroy --dir "$SIMDIR" guest1
check "save the first copy" run "$VTPM_SIM" save --dir "$SIMDIR" first "$SIMDIR/gone.save"
check "destroy its suspended vTPM" run "$VTPMD_CTL" --control "$SIMDIR/control" destroy "$U"
out=$(VTPM_SIM_CONNECT_TIMEOUT=5 "$VTPM_SIM" restore --dir "$SIMDIR" "$SIMDIR/gone.save" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "restoring a guest whose vTPM is gone is not Connected" test "$rc" -ne 0
check "the error node names the unknown vTPM and how to create it" \
	bash -c "grep -q 'unknown vTPM $U: create it with vtpmd-ctl create' <<<\"\$1\"" _ "$out"
finish
