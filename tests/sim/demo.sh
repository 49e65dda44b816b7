#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# `make demo`: vtpmd on the simulated Xen host, two guests using their own
# vTPMs with the real tpm2-tools. Set KEEP=1 to leave the simulation running.
set -euo pipefail

BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
SIM=$BUILD/tests/sim/vtpm-sim
DIR=${DEMO_DIR:-$BUILD/demo}

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# run CMD ARGS...: shows the command as it runs it; runsh 'CMD > FILE': the same for a shell line.
run() { printf '$ %s\n' "$*" >&2; "$@"; }
runsh() { printf '$ %s\n' "$1" >&2; eval "$1"; }
# The programs by name, as an admin types them (vtpmd-ctl, vtpm-sim).
export PATH="$BUILD/daemon:$BUILD/tests/sim:$PATH"
# DIR as the admin would type it from here (build/demo for `make demo`).
SHOWDIR=${DIR#"$PWD"/}

"$SIM" stop --dir "$DIR" >/dev/null 2>&1 || true
rm -rf "$DIR"
mkdir -p "$DIR"
trap '[ -n "${KEEP:-}" ] || "$SIM" stop --dir "$DIR" >/dev/null 2>&1 || true' EXIT

CTL=vtpmd-ctl
SIM=vtpm-sim

bold "Start the simulated Xen host: xenstored, a swtpm as the host TPM, vtpmd, and a Linux guest with xen-tpmfront"
echo "(vtpm-sim creates guest1's vTPM with vtpmd-ctl before it attaches it, as an admin would)"
run "$SIM" start --dir "$SHOWDIR" --guests 1
runsh ". $SHOWDIR/env   # VTPMD_CONTROL: vtpmd-ctl talks to this host's vtpmd"

bold "The admin creates a manufactured vTPM (EK + EK certificate) and gives it to a new guest"
U=$(run "$CTL" create --ek-cert)
echo "$U"
echo "In xl this is vtpm=[\"backend=0,uuid=$U\"]; here:"
run "$SIM" attach --dir "$SHOWDIR" guest2 --uuid "$U"
run "$SIM" status --dir "$SHOWDIR"

G1=$(cat "$DIR/guest1.tcti")
G2=$(cat "$DIR/guest2.tcti")
echo
echo "Each guest's TPM is reachable by tpm2-tools through a TCTI string:"
echo "  guest1: $G1"
echo "  guest2: $G2"

bold "Random bytes from each guest's vTPM"
run tpm2_getrandom -T "$G1" --hex 16
echo
run tpm2_getrandom -T "$G2" --hex 16
echo

bold "Extend PCR 16 in guest1; guest2's PCR 16 is untouched"
run tpm2_pcrextend -T "$G1" 16:sha256=$(echo -n demo | sha256sum | cut -d' ' -f1)
run tpm2_pcrread -T "$G1" sha256:16
run tpm2_pcrread -T "$G2" sha256:16

bold "guest2's EK certificate, read from its vTPM's NV, verifies against vtpmd's local CA"
runsh "tpm2_nvread -T '$G2' 0x01c00002 -C o -o $SHOWDIR/ek.der >/dev/null"
runsh "vtpmd-ctl ca-cert > $SHOWDIR/ca.pem"
run openssl x509 -inform der -in "$SHOWDIR/ek.der" -out "$SHOWDIR/ek.pem"
run openssl verify -CAfile "$SHOWDIR/ca.pem" "$SHOWDIR/ek.pem"

bold "A signed quote of guest1's PCRs, verified with tpm2_checkquote"
Q=$DIR/quote
mkdir -p "$Q"
run tpm2_createprimary -T "$G1" -C o -G ecc256:ecdsa-sha256:null \
	-a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign" -c "$Q/ak.ctx" >/dev/null
run tpm2_readpublic -T "$G1" -c "$Q/ak.ctx" -f pem -o "$Q/ak.pem" >/dev/null
run tpm2_quote -T "$G1" -c "$Q/ak.ctx" -l sha256:16 -q 1badcafe -m "$Q/msg" -s "$Q/sig" -o "$Q/pcrs" -g sha256 >/dev/null
run tpm2_flushcontext -T "$G1" -t
run tpm2_checkquote -u "$Q/ak.pem" -m "$Q/msg" -s "$Q/sig" -f "$Q/pcrs" -g sha256 -q 1badcafe
echo "quote verified"

bold "Durable state: an NV index survives a full stop and start of the simulated host"
printf 'written before the host stopped' >"$DIR/nv.in"
run tpm2_nvdefine -T "$G1" 0x1500016 -C o -s 64 -a "ownerread|ownerwrite" >/dev/null
run tpm2_nvwrite -T "$G1" 0x1500016 -C o -i "$DIR/nv.in"
run "$SIM" stop --dir "$SHOWDIR"
run "$SIM" start --dir "$SHOWDIR"
G1=$(cat "$DIR/guest1.tcti")
run tpm2_nvread -T "$G1" 0x1500016 -C o -s 31
echo
echo "The vTPM's state on disk is encrypted (AES-256-GCM) under a key sealed to the host TPM (here a real swtpm):"
run ls -l "$SHOWDIR/state" "$SHOWDIR/state/$(ls "$DIR/state" | grep -E '^[0-9a-f-]{36}$' | head -1)"

bold "What vtpmd logged"
grep -v '^vtpmd-worker' "$DIR/vtpmd.log" | sed 's/^/  /'

bold "The host's vTPMs: vtpmd-ctl list"
run "$CTL" list

if [ -n "${KEEP:-}" ]; then
	bold "The simulation keeps running in $SHOWDIR; try (as in README.md):"
	echo "  . $SHOWDIR/env      # vtpmd-ctl and vtpm-sim on PATH, VTPMD_CONTROL set"
	echo "  vtpmd-ctl list"
	echo "  tpm2_getrandom -T \"\$(cat $SHOWDIR/guest1.tcti)\" --hex 8"
	echo "  vtpm-sim status --dir $SHOWDIR"
	echo "  vtpm-sim restart-daemon --dir $SHOWDIR   # guests stay up"
	echo "  vtpm-sim stop --dir $SHOWDIR"
else
	bold "Stopping the simulation (KEEP=1 make demo leaves it running)"
fi
