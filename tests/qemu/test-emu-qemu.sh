#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The emulator front under real QEMU (issue 19): qemu-system-x86_64 (TCG,
# q35) with a tpm-crb device on `-tpmdev emulator`, whose control socket is
# emu-serve's (the worker's front on libtpms in memory). Its firmware
# (Debian's SeaBIOS, which drives a TPM 2.0 CRB) starts the TPM and measures
# the boot into PCRs 0-7; no guest OS and no disk are needed. Checks:
#  - QEMU's start-up order as the research describes it: SET_DATAFD first, a
#    data-channel probe answered before INIT, GET_CAPABILITY, STOP and
#    SET_BUFFERSIZE, INIT; then the firmware's TPM2_Startup and PCR_Extends
#    all succeed;
#  - a VM reset (system_reset) is STOP ... INIT, and afterwards the TPM holds
#    a fresh boot's measurements or none (SeaBIOS's reboot path may skip them);
#  - a migration to a file and back into a new QEMU (-incoming) carries the
#    vTPM: GET_STATEBLOB out, SET_STATEBLOB in, INIT with DELETE_VOLATILE, and
#    PCRs 0-7 afterwards are exactly those before;
#  - quit sends SHUTDOWN.
# PCRs are read with tpm2-tools over a data channel of their own (emu-data)
# once QEMU is gone without a SHUTDOWN (SIGKILL), as the TPM then stays on.
# Environment (meson sets it): EMU_SERVE, EMU_DATA; QEMU (default
# qemu-system-x86_64).
source "$(dirname "$0")/../sim/lib.sh"

QEMU=${QEMU:-qemu-system-x86_64}
need_tools "the emulator front under QEMU" "$QEMU" swtpm_ioctl tpm2_pcrread python3
if ! "$QEMU" -device help 2>/dev/null | grep -q tpm-crb; then
	skip "the emulator front under QEMU # $QEMU has no tpm-crb device"
	finish
fi

S=$SIMDIR/emu.sock LOG=$SIMDIR/emu.log MON=$SIMDIR/mon.sock
SERVE_PID= QEMU_PID=
on_exit() {
	[ -z "$QEMU_PID" ] || kill -KILL "$QEMU_PID" 2>/dev/null
	[ -z "$SERVE_PID" ] || kill "$SERVE_PID" 2>/dev/null
	if [ "$FAILED" -ne 0 ]; then
		[ -s "$SIMDIR/pcrread.err" ] && sed 's/^/# pcrread: /' "$SIMDIR/pcrread.err" | tail -n 10
		sed 's/^/# emu-serve: /' "$SIMDIR/serve.err" | tail -n 10
		echo "# emu-serve's log:"
		sed 's/^/#   /' "$LOG" | tail -n 60
	fi
	cleanup
}
trap on_exit EXIT
: >"$LOG"
coproc SERVE { "$EMU_SERVE" --socket "$S" --log "$LOG" 2>"$SIMDIR/serve.err"; }
SERVE_PID=$SERVE_PID
read -r -t 20 line <&"${SERVE[0]}"
check "emu-serve listens" test "$line" = listening
export TPM2TOOLS_TCTI="cmd:$EMU_DATA --socket $S"

# qemu_start [ARGS...]: a VM with the vTPM and a monitor socket, in the background.
qemu_start() {
	rm -f "$MON"
	"$QEMU" -M q35 -accel tcg -m 128 -nographic -nodefaults -serial none \
		-monitor "unix:$MON,server,nowait" \
		-chardev "socket,id=chrtpm,path=$S" -tpmdev emulator,id=tpm0,chardev=chrtpm \
		-device tpm-crb,tpmdev=tpm0 "$@" >"$SIMDIR/qemu.out" 2>&1 &
	QEMU_PID=$!
}
# mon COMMAND: one human monitor command; prints its output.
mon() {
	python3 - "$MON" "$1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1]); s.settimeout(20)
def until_prompt():
    buf = b""
    while not buf.endswith(b"(qemu) "):
        b = s.recv(65536)
        if not b:  # QEMU closed the monitor (quit)
            break
        buf += b
    return buf
until_prompt()
s.sendall(sys.argv[2].encode() + b"\n")
print(until_prompt().decode(errors="replace"))
PY
}
qemu_kill() {
	kill -KILL "$QEMU_PID" 2>/dev/null
	wait "$QEMU_PID" 2>/dev/null
	QEMU_PID=
}
lines() { wc -l <"$LOG"; }
since() { tail -n +$(($1 + 1)) "$LOG"; }
# logged_in_order FROM PATTERN...: the log from line FROM on has these lines, in this order.
logged_in_order() {
	local from=$1
	shift
	since "$from" | python3 -c '
import sys
want = sys.argv[1:]
for line in sys.stdin:
    if want and line.strip() == want[0]:
        want.pop(0)
sys.exit(1 if want else 0)' "$@"
}
pcrs() { tpm2_pcrread sha256:0,1,2,3,4,5,6,7 2>>"$SIMDIR/pcrread.err" | awk '/:/ && $1 ~ /^[0-7]$/ {print $1, $3}' | tr '\n' ' '; }
firmware_measured() { since "$1" | grep -c '^tpm 0x00000182 0x0$'; }
not() { ! "$@"; }
ZEROS="0 0x$(printf '%064d' 0)"

# --- start-up
qemu_start
check "QEMU starts" wait_for 30 test -S "$MON"
check "QEMU's start-up: SET_DATAFD, a probe answered before INIT, GET_CAPABILITY, STOP, SET_BUFFERSIZE, INIT" \
	wait_for 60 logged_in_order 0 "ctl SET_DATAFD 0x0" "tpm 0x00000181 0x100" "ctl GET_CAPABILITY 0x0" \
	"ctl STOP 0x0" "ctl SET_BUFFERSIZE 0x0" "ctl INIT 0x0"
check "the firmware's TPM2_Startup succeeds" wait_for 60 logged_in_order 0 "ctl INIT 0x0" "tpm 0x00000144 0x0"
check "and its measurements (PCR_Extend) too" wait_for 60 bash -c "[ \$(grep -c '^tpm 0x00000182 0x0\$' '$LOG') -ge 4 ]"
errors_after_init() { sed -n '/^ctl INIT/,$p' "$LOG" | grep '^tpm 0x[0-9a-f]* 0x[1-9a-f]'; }
check "no TPM command failed after INIT" not errors_after_init
sleep_until_quiet() { # the firmware is done measuring: no new line for 2 s
	local n
	n=$(lines)
	wait_for 2 false
	[ "$(lines)" -eq "$n" ]
}
check "the firmware is done with the TPM" wait_for 60 sleep_until_quiet

# --- migration to a file
off=$(lines)
check "migrate to a file" mon "migrate \"exec:cat > $SIMDIR/vm.mig\""
migrated() { mon "info migrate" | grep -q "Migration status: completed"; }
check "the migration completes" wait_for 60 migrated
check "the migration read three state blobs" logged_in_order "$off" "ctl GET_STATEBLOB 0x0" "ctl GET_STATEBLOB 0x0" "ctl GET_STATEBLOB 0x0"
check "the migration file is written" test -s "$SIMDIR/vm.mig"
qemu_kill
BEFORE=$(pcrs)
echo "# PCRs 0-7 after the boot: $BEFORE"
check "the firmware's measurements are in PCRs 0-7 (PCR 0 is not zero)" test -n "$BEFORE" -a "${BEFORE#"$ZEROS"}" = "$BEFORE"
check "the source's TPM is powered off (STOP), as a finished migration leaves it" swtpm_ioctl --unix "$S" --stop

# --- back into a new QEMU
off=$(lines)
qemu_start -incoming "exec:cat $SIMDIR/vm.mig"
check "the incoming QEMU sets the state blobs and INITs with DELETE_VOLATILE" \
	wait_for 60 logged_in_order "$off" "ctl SET_STATEBLOB 0x0" "ctl SET_STATEBLOB 0x0" "ctl INIT 0x0"
vm_running() { mon "info status" | grep -q "VM status: running"; }
check "the incoming VM runs" wait_for 60 vm_running
qemu_kill
AFTER=$(pcrs)
echo "# PCRs 0-7 after the migration: $AFTER"
check "PCRs 0-7 after the migration are exactly those before" test "$AFTER" = "$BEFORE"

# --- a VM reset: the TPM is reset (INIT), its PCRs no longer hold the boot's measurements
check "STOP" swtpm_ioctl --unix "$S" --stop
off=$(lines)
qemu_start
check "a fresh VM boots and measures" wait_for 60 bash -c "[ \$(tail -n +$((off + 1)) '$LOG' | grep -c '^tpm 0x00000182 0x0\$') -ge 4 ]"
check "its firmware is done with the TPM" wait_for 60 sleep_until_quiet
off=$(lines)
check "system_reset" mon system_reset
check "the reset is STOP, SET_BUFFERSIZE, INIT" wait_for 60 logged_in_order "$off" "ctl STOP 0x0" "ctl SET_BUFFERSIZE 0x0" "ctl INIT 0x0"
check "the firmware is done with the TPM after the reset" wait_for 60 sleep_until_quiet
qemu_kill
# SeaBIOS measures again after a reset or leaves the TPM unstarted (it takes its reboot path then):
# either way the measurements of before are gone, or were made again from zero.
started() { tpm2_pcrread sha256:0 >/dev/null 2>&1 || tpm2_startup -c; }
check "the TPM after the reset is started (by the firmware, or now)" started
RESET=$(pcrs)
echo "# PCRs 0-7 after the reset: $RESET"
check "PCRs 0-7 after the reset: a fresh boot's measurements, or none" \
	bash -c "[ '$RESET' = '$BEFORE' ] || [ -z \"\$(tr ' ' '\n' <<<'$RESET' | grep '^0x' | grep -v '^0x0*\$')\" ]"

# --- quit
check "STOP" swtpm_ioctl --unix "$S" --stop
off=$(lines)
qemu_start
check "another VM starts" wait_for 60 logged_in_order "$off" "ctl INIT 0x0"
off=$(lines)
check "quit" mon quit
check "quit sends SHUTDOWN" wait_for 30 logged_in_order "$off" "ctl SHUTDOWN 0x0"
wait "$QEMU_PID" 2>/dev/null
QEMU_PID=
finish
