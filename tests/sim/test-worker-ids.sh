#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Worker ids (issue 17): vtpmd refuses a WorkerIDs= range that overlaps a
# block of /etc/subuid or /etc/subgid (here --subuid/--subgid files), with
# one line naming the file, the line and both ranges; the default range is
# clear of what useradd writes there; and a vTPM whose directory was lent
# under the previous default (300000-365535) keeps working under the new
# one, which takes the directory back; and a second vtpmd on the host (for
# another backend domain) refuses a range that overlaps the first one's.
. "$(dirname "$0")/lib.sh"

# What useradd writes on Debian for four users, and a fifth block someone
# placed over the new default by hand.
printf 'alice:100000:65536\nbob:165536:65536\ncarol:231072:65536\ndave:296608:65536\n' >"$SIMDIR/subuid.debian"
: >"$SIMDIR/subid.empty"
cp "$SIMDIR/subuid.debian" "$SIMDIR/subuid.clash"
echo 'eve:2147200000:100000' >>"$SIMDIR/subuid.clash"

# alone IDFILE-ARGS...: a vtpmd that stops at its start checks; its exit status, output in alone.log
alone() {
	"$VTPMD" --platform "sim:$SIMDIR" --no-config --control "$SIMDIR/control-alone" --state-dir "$SIMDIR/state-alone" \
		--key-source "file:$SIMDIR/master.key" "$@" >"$SIMDIR/alone.log" 2>&1
}

alone --subuid "$SIMDIR/subuid.clash" --subgid "$SIMDIR/subid.empty"
rc=$?
echo "# default range, a subuid block over it: exit $rc; $(cat "$SIMDIR/alone.log")"
check "a default range that overlaps a subuid block: vtpmd refuses to start (exit 6, a configuration error)" test "$rc" = 6
check "... with one line" test "$(grep -c . "$SIMDIR/alone.log")" = 1
check "... naming the file and line, the user and both ranges" grep -qF \
	"$SIMDIR/subuid.clash:5: WorkerIDs=2147221504-2147287039 overlaps eve's subordinate uids 2147200000-2147299999" \
	"$SIMDIR/alone.log"
check "... and it opened no control socket" test ! -e "$SIMDIR/control-alone"

alone --worker-ids 300000-365535 --subuid "$SIMDIR/subid.empty" --subgid "$SIMDIR/subuid.debian"
rc=$?
echo "# the previous default against Debian's blocks as subgid: exit $rc; $(cat "$SIMDIR/alone.log")"
check "the previous default (300000-365535) against Debian's fourth subgid block: refused (exit 6)" test "$rc" = 6
check "... naming line 4 and dave's gids 296608-362143" grep -qF \
	"$SIMDIR/subuid.debian:4: WorkerIDs=300000-365535 overlaps dave's subordinate gids 296608-362143" \
	"$SIMDIR/alone.log"

# The previous default's vtpmd, then the new default's, on one simulated host.
printf '#!/bin/sh\nexec "%s" --worker-ids 300000-365535 --subuid "%s" --subgid "%s" "$@"\n' \
	"$VTPMD" "$SIMDIR/subid.empty" "$SIMDIR/subid.empty" >"$SIMDIR/vtpmd-old"
printf '#!/bin/sh\nexec "%s" --subuid "%s" --subgid "%s" "$@"\n' \
	"$VTPMD" "$SIMDIR/subuid.debian" "$SIMDIR/subuid.debian" >"$SIMDIR/vtpmd-new"
chmod +x "$SIMDIR/vtpmd-old" "$SIMDIR/vtpmd-new"

if ! VTPMD="$SIMDIR/vtpmd-old" run "$VTPM_SIM" start --dir "$SIMDIR" --guests 1; then
	fail "vtpm-sim start under WorkerIDs=300000-365535: guest1 connected"
	finish
fi
ok "vtpm-sim start under WorkerIDs=300000-365535: guest1 connected"
T1=$(tcti guest1)
NV=0x1500017
printf 'old-ids!' >"$SIMDIR/nv.in"
check "guest1 defines and writes an NV index" bash -c "tpm2_nvdefine -T '$T1' $NV -C o -s 8 -a 'ownerread|ownerwrite' >/dev/null &&
	tpm2_nvwrite -T '$T1' $NV -C o -i '$SIMDIR/nv.in'"
DIR1=$(ls -d "$SIMDIR"/state/*-*-*-*-*/ | head -n 1)
if [ "$(id -u)" -eq 0 ]; then
	check "its directory is lent to a uid of the previous range" \
		bash -c "[ \$(stat -c %g '$DIR1') = 300000 ] && [ \$(stat -c %u '$DIR1') -ge 300002 ] && [ \$(stat -c %u '$DIR1') -le 365535 ]"
fi

check "vtpm-sim restart-daemon with the new default range" env VTPMD="$SIMDIR/vtpmd-new" "$VTPM_SIM" restart-daemon --dir "$SIMDIR"
check "guest1 reads its NV index back under the new range" \
	bash -c "tpm2_nvread -T '$T1' $NV -C o -s 8 2>/dev/null | cmp -s - '$SIMDIR/nv.in'"
check "guest1's TPM answers" tpm2_getrandom -T "$T1" 8 --hex
if [ "$(id -u)" -eq 0 ]; then
	uids=$(for p in $(worker_pids); do ps -o uid= -p "$p"; done | xargs)
	echo "# worker uid now: $uids; directory $(stat -c %u:%g "$DIR1")"
	check "guest1's worker runs under a uid of the new range" \
		bash -c "set -- $uids; [ \$# = 1 ] && [ \$1 -ge 2147221506 ] && [ \$1 -le 2147287039 ]"
	check "its directory was taken back: the worker's uid and the new range's group" \
		bash -c "[ \$(stat -c %g '$DIR1') = 2147221504 ] && [ \$(stat -c %u '$DIR1') = '$uids' ]"
	ls -lan "$DIR1" | sed 's/^/# /'
	check "... and no file in it is the previous range's any more" \
		bash -c "! find '$DIR1' \\( -gid 300000 -o \\( -uid +299999 -uid -365536 \\) \\) | grep -q ."
	check "vtpmd said it takes the previous range's group back" grep -q "group 300000 (an earlier WorkerIDs=)" "$SIMDIR/vtpmd.log"
else
	skip "worker uids and the directory's owner # not root: workers keep the test's uid"
fi
check "guest1 reboots and still reads its NV index" bash -c "'$VTPM_SIM' reboot --dir '$SIMDIR' guest1 >/dev/null &&
	tpm2_nvread -T '$T1' $NV -C o -s 8 2>/dev/null | cmp -s - '$SIMDIR/nv.in'"

# Another vtpmd on the same host, serving another backend domain (99, where
# no device exists): its workers must not share the first one's uids.
other() {
	XENSTORED_PATH="$SIMDIR/xenstore/socket" "$SIMDIR/vtpmd-new" --platform "sim:$SIMDIR" --domid 99 --no-config \
		--control "$SIMDIR/control99" --state-dir "$SIMDIR/state99" --key-source "file:$SIMDIR/master.key"
}
if [ "$(id -u)" -eq 0 ]; then
	other >"$SIMDIR/other.log" 2>&1
	rc=$?
	echo "# a vtpmd for domain 99 with the same WorkerIDs=: exit $rc; $(cat "$SIMDIR/other.log")"
	check "a second vtpmd (another backend domain) with the same WorkerIDs= refuses to start (exit 6)" test "$rc" = 6
	check "... in one line naming the first vtpmd and its range" grep -qE \
		"WorkerIDs=2147221504-2147287039 overlaps the workers of another vtpmd on this host \(pid $(cat "$SIMDIR/vtpmd.pid"), state in $SIMDIR/state, workers 2147221504-2147287039, lock " \
		"$SIMDIR/other.log"
	check "... and opened no control socket" test ! -e "$SIMDIR/control99"
	# exec: $! must be vtpmd itself, not a subshell
	(
		exec >"$SIMDIR/other.log" 2>&1
		XENSTORED_PATH="$SIMDIR/xenstore/socket" exec "$SIMDIR/vtpmd-new" --platform "sim:$SIMDIR" --domid 99 \
			--no-config --control "$SIMDIR/control99" --state-dir "$SIMDIR/state99" \
			--key-source "file:$SIMDIR/master.key" --worker-ids 2147300000-2147365535
	) &
	OTHER=$!
	check "with a range of its own it starts" wait_for 30 grep -q 'serving /local/domain/99/backend/vtpm' "$SIMDIR/other.log"
	kill -TERM "$OTHER"
	wait "$OTHER"
	rc=$?
	tail -n 3 "$SIMDIR/other.log" | sed 's/^/# /'
	check "... and stops cleanly (exit $rc)" test "$rc" -eq 0
	check "guest1's TPM still answers" tpm2_getrandom -T "$T1" 8 --hex
else
	skip "WorkerIDs= against another vtpmd # not root: workers keep vtpmd's uid, no range to share"
fi
finish
