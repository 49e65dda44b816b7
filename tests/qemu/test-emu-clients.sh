#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The emulator front (QEMU's TPM emulator protocol, issue 19) against swtpm's
# own control client and tpm2-tools: emu-serve runs the worker's front on
# libtpms in memory; swtpm_ioctl drives its control socket (capabilities,
# INIT, locality, the established flag, STOP, state blobs saved and loaded,
# SHUTDOWN), tpm2-tools talk over a data channel passed with SET_DATAFD
# (emu-data, through the "cmd" TCTI). Checks what a VM would notice: a TPM
# that answers only after INIT, PCRs kept across a STOP with the state blobs
# loaded back, PCRs cleared and NV kept by a plain INIT (a VM reset), and
# malformed control requests refused with the server still serving.
# Environment (meson sets it): EMU_SERVE, EMU_DATA.
source "$(dirname "$0")/../sim/lib.sh"

need_tools "the emulator front with real clients" swtpm_ioctl tpm2_getrandom tpm2_startup tpm2_pcrextend tpm2_pcrread tpm2_nvdefine tpm2_nvwrite tpm2_nvread python3
if [ ! -e /usr/lib/x86_64-linux-gnu/libtss2-tcti-cmd.so.0 ] && ! ldconfig -p | grep -q libtss2-tcti-cmd; then
	skip "tpm2-tools over the emulator's data channel # no libtss2-tcti-cmd"
	finish
fi

S=$SIMDIR/emu.sock
SERVE_PID=
on_exit() {
	[ -z "$SERVE_PID" ] || kill "$SERVE_PID" 2>/dev/null
	cleanup
}
trap on_exit EXIT
coproc SERVE { "$EMU_SERVE" --socket "$S" 2>"$SIMDIR/serve.log"; }
SERVE_PID=$SERVE_PID
read -r -t 20 line <&"${SERVE[0]}"
check "emu-serve listens" test "$line" = listening

export TPM2TOOLS_TCTI="cmd:$EMU_DATA --socket $S"
ioctl() { swtpm_ioctl --unix "$S" "$@"; }
ZERO=0x$(printf '%064d' 0)
pcr16() { tpm2_pcrread sha256:16 | awk '/16:/ {print $2}'; }

out=$(ioctl -c 2>&1)
echo "# swtpm_ioctl -c: $out"
caps=$(sed -n 's/.*ptm capability is 0x\([0-9a-f]*\).*/\1/p' <<<"$out")
# INIT, SHUTDOWN, GET/RESET_TPMESTABLISHED, SET_LOCALITY, GET/SET_STATEBLOB, STOP, SET_DATAFD, SET_BUFFERSIZE
check "capabilities: everything QEMU needs, and the state blobs for migration" \
	test $((16#${caps:-0} & 0x3789)) -eq $((0x3789))
check "before INIT the TPM answers with an error, not silence" bash -c "! timeout 20 tpm2_getrandom 8 >/dev/null 2>&1"
check "INIT" ioctl -i
check "the guest's TPM2_Startup" tpm2_startup -c
check "GetRandom answers" bash -c "[ \"\$(tpm2_getrandom 8 | wc -c)\" -eq 8 ]"
check "PCR 16 extended" tpm2_pcrextend 16:sha256=$(printf '%064d' 16)
PCR=$(pcr16)
check "PCR 16 is no longer zero" test "$PCR" != "$ZERO"
check "an NV index written" bash -c "tpm2_nvdefine -C o -s 6 -a 'ownerread|ownerwrite' 0x1500016 >/dev/null &&
	echo -n marker | tpm2_nvwrite -C o -i - 0x1500016"
check "the established flag answers" bash -c "swtpm_ioctl --unix '$S' -e | grep -q 'tpmEstablished is'"
check "locality 3 set" ioctl -l 3
check "locality 5 refused" bash -c "! swtpm_ioctl --unix '$S' -l 5 2>/dev/null"
check "back to locality 0" ioctl -l 0
check "buffer size answered" bash -c "swtpm_ioctl --unix '$S' -b 0 | grep -q 'TPM buffersize'"

# Migration as QEMU does it: blobs out, STOP, blobs in, INIT.
check "save the permanent state" ioctl --save permanent "$SIMDIR/perm.blob"
check "save the volatile state" ioctl --save volatile "$SIMDIR/vol.blob"
check "the blobs are not empty" test -s "$SIMDIR/perm.blob" -a -s "$SIMDIR/vol.blob"
check "STOP" ioctl --stop
check "a stopped TPM answers with an error" bash -c "! timeout 20 tpm2_getrandom 8 >/dev/null 2>&1"
check "a volatile blob cannot be read while stopped" bash -c "! swtpm_ioctl --unix '$S' --save volatile '$SIMDIR/x.blob' 2>/dev/null"
check "load the permanent state" ioctl --load permanent "$SIMDIR/perm.blob"
check "load the volatile state" ioctl --load volatile "$SIMDIR/vol.blob"
check "INIT resumes from them" ioctl -i
check "PCR 16 as before, no TPM2_Startup needed" test "$(pcr16)" = "$PCR"
check "the NV index reads back" test "$(tpm2_nvread -C o -s 6 0x1500016 2>/dev/null)" = marker
check "a state blob cannot be loaded while the TPM runs" bash -c "! swtpm_ioctl --unix '$S' --load volatile '$SIMDIR/vol.blob' 2>/dev/null"

# A VM reset: INIT alone.
check "INIT again (a VM reset)" ioctl -i
check "the guest's TPM2_Startup after the reset" tpm2_startup -c
check "the reset cleared PCR 16" test "$(pcr16)" = "$ZERO"
check "the reset kept the NV index" test "$(tpm2_nvread -C o -s 6 0x1500016 2>/dev/null)" = marker

# Malformed control requests: refused, and the server still serves.
ctl_raw() { # ctl_raw HEX: sends the bytes in one write, prints the answer's first 4 bytes as hex
	python3 - "$S" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1]); s.settimeout(10)
s.sendall(bytes.fromhex(sys.argv[2]))
print(s.recv(64)[:4].hex())
PY
}
check "an unknown command gets BAD_ORDINAL" test "$(ctl_raw 000000ff)" = 0000000a
check "a request shorter than its fixed part gets BAD_PARAMETER" test "$(ctl_raw 0000000c0000)" = 00000003
check "a state blob above 512 KiB gets SIZE" test "$(ctl_raw 0000000d000000000000000100080001)" = 00000017
check "an unknown blob type is refused" test "$(ctl_raw 0000000c000000010000000700000000)" = 00000003
check "SET_DATAFD without an fd is refused" test "$(ctl_raw 00000010)" = 00000009
check "the TPM still answers" bash -c "[ \"\$(tpm2_getrandom 8 | wc -c)\" -eq 8 ]"
check "PCR 16 untouched by them" test "$(pcr16)" = "$ZERO"

check "SHUTDOWN" ioctl -s
check "after SHUTDOWN the TPM answers with an error" bash -c "! timeout 20 tpm2_getrandom 8 >/dev/null 2>&1"
check "a new INIT brings it back (a new VM)" ioctl -i
check "and it works" bash -c "tpm2_startup -c && [ \"\$(tpm2_getrandom 8 | wc -c)\" -eq 8 ]"
sed 's/^/# /' "$SIMDIR/serve.log" | tail -n 5
finish
