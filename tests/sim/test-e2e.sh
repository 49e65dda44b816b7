#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The whole product on the simulated host: vtpm-xenstored, the real vtpmd and
# its workers, simulated Linux guests, and real tpm2-tools through the swtpm
# TCTI. Each check is what a guest's user would notice.
. "$(dirname "$0")/lib.sh"

pcr16() { tpm2_pcrread -T "$(tcti "$1")" sha256:16 | awk '/16:/ {print $2}'; }
workers() { n_workers; }
domid_of() { "$VTPM_SIM" status --dir "$SIMDIR" | awk -v n="$1" '$1 == n {print $2}'; }
xs() { XENSTORED_PATH="$SIMDIR/xenstore/socket" "$@"; }
ZERO=0x0000000000000000000000000000000000000000000000000000000000000000

if ! "$VTPM_SIM" start --dir "$SIMDIR" --guests 2; then
	fail "vtpm-sim start --guests 2"
	finish
fi
ok "two guests connected"
T1=$(tcti guest1)
T2=$(tcti guest2)

# Confinement (issue 8): each worker under its own uid, in the workers' group,
# owning its vTPM's files, which nobody else may read.
uids=$(for p in $(worker_pids); do ps -o uid= -p "$p"; done | sort -u | xargs)
echo "# worker uids: $uids"
if [ "$(id -u)" -eq 0 ]; then
	check "each worker runs under its own non-root uid from WorkerIDs=" \
		bash -c "set -- $uids; [ \$# -eq 2 ] && [ \$1 -ge 2147221506 ] && [ \$2 -ge 2147221506 ] && [ \$2 -le 2147287039 ]"
else
	skip "each worker runs under its own non-root uid from WorkerIDs= # not root: workers keep the test's uid"
fi
# (both fail when there is no worker to look at)
no_caps() {
	local p n=0
	for p in $(worker_pids); do
		grep -q '^CapEff:.0000000000000000' "/proc/$p/status" || return 1
		n=$((n + 1))
	done
	[ "$n" -eq 2 ]
}
locked_down() {
	local p n=0
	for p in $(worker_pids); do
		grep -q '^NoNewPrivs:.1' "/proc/$p/status" && grep -q '^Seccomp:.2' "/proc/$p/status" &&
			[ "$(stat -c %u "/proc/$p/mem")" = 0 ] || return 1
		n=$((n + 1))
	done
	[ "$n" -eq 2 ]
}
check "no worker keeps a capability (both guests' workers checked)" no_caps
check "no worker is dumpable or may gain privileges (both checked)" locked_down
check "no state file is accessible to others" \
	bash -c "[ -z \"\$(find '$SIMDIR/state' -perm /007 -print -quit)\" ]"

check "getrandom in guest1 returns 8 bytes" \
	bash -c "[ \$(tpm2_getrandom -T '$T1' 8 | wc -c) -eq 8 ]"
check "getrandom in guest2 returns 8 bytes" \
	bash -c "[ \$(tpm2_getrandom -T '$T2' 8 | wc -c) -eq 8 ]"

before2=$(pcr16 guest2)
tpm2_pcrextend -T "$T1" 16:sha256=$(printf '%064d' 1)
after1=$(pcr16 guest1)
after2=$(pcr16 guest2)
check "pcrextend changes PCR 16 in guest1" test -n "$after1" -a "$after1" != "$ZERO"
check "the extend is invisible in guest2" test "$after2" = "$before2" -a "$after2" = "$ZERO"

check "createprimary RSA 2048" \
	bash -c "tpm2_createprimary -T '$T1' -C o -G rsa2048 -c '$SIMDIR/rsa.ctx' >/dev/null && tpm2_flushcontext -T '$T1' -t"
check "createprimary ECC P-256" \
	bash -c "tpm2_createprimary -T '$T2' -C o -G ecc256 -c '$SIMDIR/ecc.ctx' >/dev/null && tpm2_flushcontext -T '$T2' -t"

quote() {
	local t=$1 d=$SIMDIR/quote
	mkdir -p "$d"
	tpm2_createprimary -T "$t" -C o -G ecc256:ecdsa-sha256:null \
		-a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign" -c "$d/ak.ctx" >/dev/null &&
		tpm2_readpublic -T "$t" -c "$d/ak.ctx" -f pem -o "$d/ak.pem" >/dev/null &&
		tpm2_quote -T "$t" -c "$d/ak.ctx" -l sha256:0,16 -q 5eed -m "$d/msg" -s "$d/sig" -o "$d/pcrs" -g sha256 >/dev/null &&
		tpm2_flushcontext -T "$t" -t &&
		tpm2_checkquote -u "$d/ak.pem" -m "$d/msg" -s "$d/sig" -f "$d/pcrs" -g sha256 -q 5eed >/dev/null
}
check "a quote from guest1 verifies with tpm2_checkquote" quote "$T1"

nv() {
	local t=$1
	printf 'hello-vtpm' >"$SIMDIR/nv.in"
	tpm2_nvdefine -T "$t" 0x1500016 -C o -s 32 -a "ownerread|ownerwrite" >/dev/null &&
		tpm2_nvwrite -T "$t" 0x1500016 -C o -i "$SIMDIR/nv.in" &&
		[ "$(tpm2_nvread -T "$t" 0x1500016 -C o -s 10)" = hello-vtpm ]
}
check "nvdefine, nvwrite, nvread" nv "$T2"
check "the NV index of guest2 is listed in guest2 only" \
	bash -c "tpm2_getcap -T '$T2' handles-nv-index | grep -qi 0x1500016 && ! tpm2_getcap -T '$T1' handles-nv-index | grep -qi 0x1500016"

# Detach and attach again (xl vtpm-detach / vtpm-attach).
check "detach" "$VTPM_SIM" detach --dir "$SIMDIR" guest1
check "after detach the guest has no TPM" grep -q 'tpm=none' "$SIMDIR/guest1.guest-state"
check "after detach the worker is gone" [ "$(workers)" -eq 1 ]
check "attach again" "$VTPM_SIM" attach --dir "$SIMDIR" guest1
check "the re-attached TPM answers" \
	bash -c "[ \$(tpm2_getrandom -T '$(tcti guest1)' 8 | wc -c) -eq 8 ]"

# Guest reboot: an orderly TPM reset; PCRs start from zero again.
tpm2_pcrextend -T "$T2" 16:sha256=$(printf '%064d' 2)
check "PCR 16 extended in guest2 before the reboot" [ "$(pcr16 guest2)" != "$ZERO" ]
check "reboot guest2" "$VTPM_SIM" reboot --dir "$SIMDIR" guest2
check "guest reboot resets PCR 16" [ "$(pcr16 guest2)" = "$ZERO" ]

# Destroy: no worker left, backend dir gone.
dom1=$(domid_of guest1)
check "destroy guest1" "$VTPM_SIM" destroy --dir "$SIMDIR" guest1
one_worker() { [ "$(n_workers)" -eq 1 ]; }
check "destroy leaves one worker (guest2's)" wait_for 10 one_worker
check "destroy removes the backend dir" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /local/domain/0/backend/vtpm/$dom1"
check "guest2 keeps working after guest1 is destroyed" \
	bash -c "[ \$(tpm2_getrandom -T '$(tcti guest2)' 8 | wc -c) -eq 8 ]"

# A worker killed mid-command is restarted; the guest's next command succeeds.
T2=$(tcti guest2)
wpid=$(worker_pids | head -1)
tpm2_createprimary -T "$T2" -C o -G rsa2048 -c "$SIMDIR/k.ctx" >"$SIMDIR/inflight.out" 2>&1 &
inflight=$!
kill -KILL "$wpid"
check "a command racing with the worker kill completes" wait "$inflight"
tpm2_flushcontext -T "$T2" -t >/dev/null 2>&1
new_worker() { worker_pids | grep -vqx "$wpid"; }
check "a new worker was started" wait_for 10 new_worker
check "the guest's next command succeeds" \
	bash -c "[ \$(tpm2_getrandom -T '$T2' 8 | wc -c) -eq 8 ]"
check "the frontend never left Connected" grep -q 'frontend=4 tpm=ready' "$SIMDIR/guest2.guest-state"
check "vtpmd logged the crash with its cause" grep -q 'killed by signal' "$SIMDIR/vtpmd.log"

check "stop" "$VTPM_SIM" stop --dir "$SIMDIR"
finish
