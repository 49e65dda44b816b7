#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Fifty guests at once: every frontend reaches Connected and every vTPM answers.
. "$(dirname "$0")/lib.sh"

N=${VTPM_TEST_GUESTS:-50}
check "vtpm-sim start --guests $N returns with every guest connected" \
	"$VTPM_SIM" start --dir "$SIMDIR" --guests "$N"
connected=$("$VTPM_SIM" status --dir "$SIMDIR" | grep -c '4/Connected *4/Connected')
check "status shows $N guests with frontend and backend Connected ($connected)" [ "$connected" -eq "$N" ]
answered=0
for i in $(seq 1 "$N"); do
	[ "$(tpm2_getrandom -T "$(tcti "guest$i")" 8 | wc -c)" -eq 8 ] && answered=$((answered + 1))
done
check "all $N vTPMs answer GetRandom ($answered)" [ "$answered" -eq "$N" ]
check "stop" "$VTPM_SIM" stop --dir "$SIMDIR"
finish
