#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The disk budget (issue 17): a worker taken over by its guest (code injected
# after confinement by tests/sim/disk-filler.c) tries to fill the disk: it
# cannot create a single file (O_CREAT and O_TMPFILE fail with EPERM), and
# each file it already has stops growing at the worker's RLIMIT_FSIZE
# (16 MiB), so its vTPM's directory never holds more than 16 files of 16 MiB.
# Two bystander guests running tpm2-tools, durable NV writes included, see
# no error; vtpmd and its control socket carry on. The vTPM the worker
# ruined is its own guest's loss only: with its spare files hoarded away its
# durable writes fail, and its guest gets TPM_RC_FAILURE.
. "$(dirname "$0")/lib.sh"

: "${DISK_FILLER_LIB:?DISK_FILLER_LIB must name disk-filler.so}"
FILE_MAX=$((16 << 20)) # the worker's RLIMIT_FSIZE (daemon/worker/setup.c)
FILES_MAX=16           # STATEDIR_FILES_MAX (lib/statestore.h)
BUDGET=$((FILES_MAX * FILE_MAX))
UUID3=33333333-3333-4333-8333-333333333333
trap 'bystanders_stop; cleanup' EXIT

cat >"$SIMDIR/vtpmd-wrap" <<EOF2
#!/bin/sh
export LD_PRELOAD="$DISK_FILLER_LIB" DISK_FILLER_DOMID=3
export ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}verify_asan_link_order=0"
exec "$VTPMD" "\$@"
EOF2
chmod +x "$SIMDIR/vtpmd-wrap"
export VTPMD="$SIMDIR/vtpmd-wrap"

if ! run "$VTPM_SIM" start --dir "$SIMDIR" --guests 2; then
	fail "vtpm-sim start: guest1 and guest2 connected"
	finish
fi
ok "vtpm-sim start: guest1 and guest2 connected"
bystanders_start guest1 guest2
check "the bystanders' workload runs" wait_for 60 bystanders_ran 12

check "vtpm-sim attach guest3 (domain 3, its worker fills the disk once it serves)" \
	run "$VTPM_SIM" attach --dir "$SIMDIR" guest3 --uuid "$UUID3"
check "guest3's worker has tried everything" wait_for 120 grep -q 'disk-filler: done' "$SIMDIR/vtpmd.log"
c0=$(bystander_commands)
check "the bystanders keep running after it" wait_for 60 bystanders_ran $((c0 + 12))

grep 'disk-filler:' "$SIMDIR/vtpmd.log" | sed 's/^/# /'
grep 'domid=3 .*confined' "$SIMDIR/vtpmd.log" | head -n 1 | sed 's/^/# /'
if grep -q 'domid=3 .*confined.*may create files' "$SIMDIR/vtpmd.log"; then
	# A sanitized build (sanitizer reports are files the worker creates), or
	# a state directory on a file system without RENAME_EXCHANGE.
	skip "the disk budget # guest3's worker may create files here: $(grep -o 'confined: .*' "$SIMDIR/vtpmd.log" | head -n 1)"
	finish
fi
check "it could not create a file through any directory it holds" \
	grep -qE 'disk-filler: create in fd [0-9]+: refused \(Operation not permitted\)' "$SIMDIR/vtpmd.log"
check "nor an unnamed one (O_TMPFILE)" \
	grep -qE 'disk-filler: O_TMPFILE in fd [0-9]+: refused \(Operation not permitted\)' "$SIMDIR/vtpmd.log"
check "no attempt to create a file reached anything" bash -c "! grep -q 'disk-filler: .*: reached' '$SIMDIR/vtpmd.log'"
check "its writes into its own files stopped at the file-size limit" \
	grep -qE 'disk-filler: wrote [0-9]+ bytes into [0-9]+ files of fd [0-9]+, the last write failed: File too large' \
	"$SIMDIR/vtpmd.log"
wrote=$(sed -n 's/.*disk-filler: wrote \([0-9]*\) bytes.*/\1/p' "$SIMDIR/vtpmd.log" | awk '{ s += $1 } END { print s + 0 }')
check "it wrote at most the budget ($wrote <= $BUDGET bytes)" test "$wrote" -le "$BUDGET"
DIR3=$SIMDIR/state/$UUID3
files=$(find "$DIR3" -maxdepth 1 -type f | wc -l)
bytes=$(find "$DIR3" -maxdepth 1 -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
echo "# guest3's state directory: $files files, $bytes bytes"
check "its vTPM's directory holds at most $FILES_MAX files" test "$files" -le "$FILES_MAX"
check "... and at most the budget ($bytes <= $BUDGET bytes)" test "$bytes" -le "$BUDGET"
check "no file in it is larger than the limit" bash -c "! find '$DIR3' -type f -size +$((FILE_MAX / 1024))k | grep -q ."

# Its own guest pays: with no spare or tmp file left, its next durable write
# has nowhere to go, so its TPM answers failure (and vtpmd reports why).
check "the worker hoarded its spare and tmp files" grep -q 'disk-filler: hoarded [1-9]' "$SIMDIR/vtpmd.log"
out=$(tpm2_nvdefine -T "$(tcti guest3)" 0x01500030 -C o -s 8 -a 'ownerread|ownerwrite' 2>&1)
echo "# guest3's NV define now: $(grep -o 'ERROR: Esys.*' <<<"$out")"
check "guest3's next durable write fails: TPM_RC_FAILURE (0x101) to guest3" grep -q '(0x101)' <<<"$out"
check "vtpmd reports the failed write: no file left (Disk quota exceeded)" \
	wait_for 30 grep -qE 'domid=3 .*Failed to store permanent state: Disk quota exceeded' "$SIMDIR/vtpmd.log"
files=$(find "$DIR3" -maxdepth 1 -type f | wc -l)
check "... and its directory still holds at most $FILES_MAX files ($files)" test "$files" -le "$FILES_MAX"

# Its worker restarted (killed, as after any crash): the files it ruined are
# refused, which only its own guest notices.
W3=$(sed -n 's/.*vtpmd-worker\[\([0-9]*\)\]: domid=3 .*confined.*/\1/p' "$SIMDIR/vtpmd.log" | tail -n 1)
check "guest3's worker (pid $W3) is killed" kill -KILL "$W3"
check "vtpmd refuses guest3's ruined state" wait_for 60 grep -qE 'domid=3 .*(authentic|malformed|refus)' "$SIMDIR/vtpmd.log"
check "guest3's own TPM no longer answers" bash -c "! timeout 60 tpm2_getrandom -T '$(tcti guest3)' 8 >/dev/null 2>&1"
bystanders_check
for g in guest1 guest2; do
	check "$g's last NV write is durable" bash -c "n=\$(grep -c '^nvwrite 0' '$SIMDIR/by-$g.log');
		[ \"\$(tpm2_nvread -T '$(tcti $g)' $BY_NV -C o -s 8 2>/dev/null)\" = \"\$(printf '%08d' \$((n)))\" ]"
done
check "vtpmd itself is still running" kill -0 "$(cat "$SIMDIR/vtpmd.pid")"
check "its control socket still answers" "$VTPMD_CTL" --control "$SIMDIR/control" status
finish
