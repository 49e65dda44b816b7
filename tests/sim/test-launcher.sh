#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The whole simulated host through vtpm-sim with the real vtpmd: two guests
# come up Connected and real tpm2-tools talk to their vTPMs; a reboot brings
# the guest back on a new domid; stop leaves nothing running.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

json() { "$VTPM_SIM" status --dir "$SIMDIR" --json; }
field() {
	json | python3 -c "import json,sys; d=json.load(sys.stdin); g=[x for x in d['guests'] if x['name']=='$1'][0]; print($2)"
}
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
dead() { ! alive "$1"; }
# Live (non-zombie) processes whose command line mentions the simulation dir.
leftovers() {
	local p
	for p in $(pgrep -f -- "$SIMDIR"); do alive "$p" && echo "$p"; done
}
connected() {
	[ "$(field "$1" "g['vtpms'][0]['frontend'] + ' ' + g['vtpms'][0]['backend']")" = "Connected Connected" ]
}
getrandom() {
	local out
	out=$(timeout 120 tpm2_getrandom -T "$(tcti "$1")" 8 --hex) && [ "${#out}" -eq 16 ]
}

"$VTPM_SIM" start --dir "$SIMDIR" --guests 2 | sed 's/^/# /'
check "start --guests 2" test "${PIPESTATUS[0]}" -eq 0
check "guest1 Connected (frontend and backend)" connected guest1
check "guest2 Connected (frontend and backend)" connected guest2
check "tpm2_getrandom through guest1" getrandom guest1
check "tpm2_getrandom through guest2" getrandom guest2

dom1=$(field guest1 "g['domid']")
"$VTPM_SIM" reboot --dir "$SIMDIR" guest1 >/dev/null
check "reboot guest1" test $? -eq 0
check "guest1 has a new domid" test "$(field guest1 "g['domid']")" != "$dom1"
check "guest1 Connected after reboot" connected guest1
check "tpm2_getrandom through rebooted guest1" getrandom guest1

pids="$(json | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['xenstored']['pid'], d['vtpmd']['pid'], *[g['pid'] for g in d['guests']])")"
"$VTPM_SIM" stop --dir "$SIMDIR"
check "stop" test $? -eq 0
for p in $pids; do check "pid $p gone after stop" dead "$p"; done
check "no process left that runs in the simulation dir" test -z "$(leftovers)"

finish
