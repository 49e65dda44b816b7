#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The simulated pool's hosts (issue 15), without a pool: two simulated
# hosts A and B side by side (each its own xenstored, swtpm and vtpmd, both
# with a guest1 at domid 1), started WITHOUT a pool directory. A guest with a
# vTPM migrated from A to B with --fail stays on A, answering, PCR 16 as
# before; migrated for real, the domain moves (same domain handle and vTPM
# UUID, gone from A's xenstore, its process and TCTI file now B's), and B's
# vtpmd, which has no such vTPM, refuses the device with its "unknown vTPM"
# error node, so migrate exits non-zero. A migration to a host that runs no
# simulation or has a guest of that name is refused and changes nothing;
# start --pool-dir hands vtpmd --pool-dir again at restart-daemon and start.
# The vTPMs shared through --pool-dir are test-pool's.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPMD_WORKER, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

need_tools "two simulated hosts" tpm2_pcrextend tpm2_pcrread tpm2_getrandom xenstore-read xenstore-list

A=$SIMDIR/a
B=$SIMDIR/b
C=$SIMDIR/c
on_exit() {
	# The hosts live below SIMDIR, so cleanup's own stop of SIMDIR finds none.
	for d in "$A" "$B" "$C"; do "$VTPM_SIM" stop --dir "$d" >/dev/null 2>&1; done
	cleanup
}
trap on_exit EXIT

# try COMMAND...: runs it, shows its output as comments and keeps it in OUT;
# returns its status.
try() {
	local rc
	OUT=$("$@" 2>&1)
	rc=$?
	sed 's/^/# /' <<<"$OUT"
	return $rc
}
field() {
	"$VTPM_SIM" status --dir "$1" --json |
		python3 -c "import json,sys; g=[x for x in json.load(sys.stdin)['guests'] if x['name']=='$2']
print($3 if g else '-')"
}
listed() { [ "$(field "$1" "$2" "g[0]['name']")" = "$2" ]; }
xs() { XENSTORED_PATH="$1/xenstore/socket" "${@:2}"; }
# Every domain name in a host's xenstore, one per line.
names() { for d in $(xs "$1" xenstore-list /local/domain); do xs "$1" xenstore-read "/local/domain/$d/name"; done; }
has_domain_named() { names "$1" | grep -qx -- "$2"; }
not() { ! "$@"; }
answers() { tpm2_getrandom -T "$(cat "$1/$2.tcti")" 8 >/dev/null 2>&1; }
pcr16() { tpm2_pcrread -T "$(cat "$1/$2.tcti")" sha256:16 | awk '/16:/ {print $2}'; }
dir_of_pid() { tr '\0' '\n' <"/proc/$1/cmdline" | grep -A1 -x -- --dir | tail -n 1; }

export VTPM_SIM_CONNECT_TIMEOUT=10
if ! try "$VTPM_SIM" start --dir "$A" || ! try "$VTPM_SIM" start --dir "$B"; then
	fail "start two simulated hosts"
	finish
fi
check "both hosts run guest1 as domain 1" \
	test "$(field "$A" guest1 "g[0]['domid']") $(field "$B" guest1 "g[0]['domid']")" = "1 1"
check "host A's guest1 answers through A's TCTI" answers "$A" guest1
check "host B's guest1 answers through B's TCTI" answers "$B" guest1
check "the two guest1 have different vTPMs" \
	test "$(field "$A" guest1 "g[0]['vtpms'][0]['uuid']")" != "$(field "$B" guest1 "g[0]['vtpms'][0]['uuid']")"
check "the two hosts have different host TPMs" differ "$A/hosttpm/tpm2-00.permall" "$B/hosttpm/tpm2-00.permall"

check "create guest mover on A" try "$VTPM_SIM" attach --dir "$A" mover
check "extend mover's PCR 16" \
	tpm2_pcrextend -T "$(cat "$A/mover.tcti")" 16:sha256=0000000000000000000000000000000000000000000000000000000000000016
PCR=$(pcr16 "$A" mover)
HANDLE=$(field "$A" mover "g[0]['domain_uuid']")
V=$(field "$A" mover "g[0]['vtpms'][0]['uuid']")
DOM=$(field "$A" mover "g[0]['domid']")
PID=$(field "$A" mover "g[0]['pid']")

# Refused before anything is created: nothing changes on either host.
mkdir -p "$SIMDIR/idle"
try "$VTPM_SIM" migrate --dir "$A" mover --to "$SIMDIR/idle"
rc=$?
check "migrate to a DIR without a running simulation fails" test "$rc" -ne 0
check "... saying so" grep -q "no simulation is running in $SIMDIR/idle" <<<"$OUT"
check "... and mover still answers on A" answers "$A" mover
try "$VTPM_SIM" migrate --dir "$A" guest1 --to "$B"
rc=$?
check "migrating A's guest1 to B, which has a guest1, fails" test "$rc" -ne 0
check "... saying B has a domain of that name" grep -q "already has a domain named guest1" <<<"$OUT"
check "... and A's guest1 still answers" answers "$A" guest1

# A migration that fails after B created the destination domain.
try "$VTPM_SIM" migrate --dir "$A" mover --to "$B" --fail
rc=$?
check "migrate --to B --fail exits 1" test "$rc" -eq 1
check "... reports the destination destroyed and the source resumed" \
	grep -q "failed (--fail): destination domain [0-9]* destroyed, source domain $DOM resumed (host $A to host $B)" <<<"$OUT"
check "mover is still domain $DOM on A" test "$(field "$A" mover "g[0]['domid']")" = "$DOM"
check "A's xenstore names domain $DOM mover again" test "$(xs "$A" xenstore-read "/local/domain/$DOM/name")" = mover
check "B has no mover domain" not has_domain_named "$B" mover
check "B has no mover--incoming domain" not has_domain_named "$B" mover--incoming
check "B's status does not list mover" not listed "$B" mover
check "mover answers on A" wait_for 10 answers "$A" mover
check "mover's PCR 16 is unchanged" test "$(pcr16 "$A" mover)" = "$PCR"

# The migration: the domain moves; B's vtpmd does not know the vTPM (no pool).
VTPM_SIM_CONNECT_TIMEOUT=5 try "$VTPM_SIM" migrate --dir "$A" mover --to "$B"
rc=$?
check "migrate --to B exits non-zero: the destination's vTPM is not Connected" test "$rc" -ne 0
check "... naming the device that is not Connected" grep -q "guest mover devid 0 not Connected" <<<"$OUT"
check "... with B's error node: unknown vTPM $V" \
	grep -q "backend error for domain [0-9]* devid 0: .*unknown vTPM $V: create it with vtpmd-ctl create" <<<"$OUT"
NDOM=$(field "$B" mover "g[0]['domid']")
NPID=$(field "$B" mover "g[0]['pid']")
check "B's status lists mover running" test "$(field "$B" mover "g[0]['running']")" = True
check "... with the same domain handle" test "$(field "$B" mover "g[0]['domain_uuid']")" = "$HANDLE"
check "... and the same vTPM UUID" test "$(field "$B" mover "g[0]['vtpms'][0]['uuid']")" = "$V"
check "... its TCTI file in B" test "$(field "$B" mover "g[0]['tcti']")" = "$B/mover.tcti"
check "B's xenstore: domain $NDOM is mover" test "$(xs "$B" xenstore-read "/local/domain/$NDOM/name")" = mover
check "B's xenstore: its vm path is the domain handle's" \
	test "$(xs "$B" xenstore-read "/local/domain/$NDOM/vm")" = "/vm/$HANDLE"
check "B's xenstore: the device's error node says unknown vTPM $V" \
	grep -q "unknown vTPM $V" <<<"$(xs "$B" xenstore-read "/local/domain/0/error/backend/vtpm/$NDOM/0/error")"
check "B's xenstore has no mover--incoming" not has_domain_named "$B" mover--incoming
check "A's xenstore: the source domain $DOM is gone" not xs "$A" xenstore-read "/local/domain/$DOM/name"
check "A's xenstore has no mover" not has_domain_named "$A" mover
check "A's xenstore has no mover--migratedaway" not has_domain_named "$A" mover--migratedaway
check "A's status does not list mover" not listed "$A" mover
# Gone, or a zombie nobody reaps (where PID 1 reaps nothing, as on some build machines).
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
check "A's mover process (pid $PID) is gone" wait_for 10 gone "$PID"
check "mover's process (pid $NPID) is B's guest" test "$(dir_of_pid "$NPID")" = "$B"
check "mover's TCTI file moved from A to B" bash -c "test ! -e '$A/mover.tcti' && test -e '$B/mover.tcti'"
check "A's guest1 still answers" answers "$A" guest1
check "B's guest1 still answers" answers "$B" guest1

# start --pool-dir: vtpmd gets --pool-dir PATH, again at restart-daemon and at
# a later start without the option (C has no guests: it is not a member of
# that pool, so vtpmd would refuse them). The wrapper records vtpmd's arguments.
POOL=$SIMDIR/pool
mkdir -p "$POOL"
cat >"$SIMDIR/vtpmd-wrap" <<EOF
#!/bin/bash
printf '%s\n' "\$*" >>"$SIMDIR/vtpmd.args"
exec "$VTPMD" "\$@"
EOF
chmod +x "$SIMDIR/vtpmd-wrap"
given() { [ "$(grep -c -- "--pool-dir $POOL " "$SIMDIR/vtpmd.args")" -eq "$1" ]; }
check "start C with --pool-dir" try env VTPMD="$SIMDIR/vtpmd-wrap" "$VTPM_SIM" start --dir "$C" --guests 0 --pool-dir "$POOL"
check "vtpmd got --pool-dir $POOL" given 1
check "C's status shows the pool directory" test "$("$VTPM_SIM" status --dir "$C" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['pool_dir'])")" = "$POOL"
check "restart-daemon" try env VTPMD="$SIMDIR/vtpmd-wrap" "$VTPM_SIM" restart-daemon --dir "$C"
check "the restarted vtpmd got --pool-dir again" given 2
check "stop C" try "$VTPM_SIM" stop --dir "$C"
check "start C without --pool-dir" try env VTPMD="$SIMDIR/vtpmd-wrap" "$VTPM_SIM" start --dir "$C" --guests 0
check "vtpmd got the recorded --pool-dir" given 3
check "--pool-dir that does not exist is refused" bash -c "! '$VTPM_SIM' start --dir '$SIMDIR/d' --pool-dir '$SIMDIR/nowhere' 2>/dev/null"
finish
