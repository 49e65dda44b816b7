#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The real-Xen end-to-end suite (`make check-xen`): Xen 4.17 and a Debian 12 dom0
# under QEMU TCG, real xl/libxl and xenstored, Linux PV guests with the kernel's
# own xen-tpmfront, against the freshly built vtpmd. See tests/xen/README.
#
# Usage: run.sh [BUILD_DIR [OUT_DIR]]   (as root; defaults build, BUILD_DIR/xen-rig)
# Environment: XENRIG_CACHE (image cache root, default OUT_DIR/cache),
#   XENRIG_TIMEOUT (seconds for the whole QEMU run, default 1500),
#   XENRIG_MEM (MiB for QEMU, default 2048), XENRIG_SMP (default 2),
#   XENRIG_CPU (QEMU's -cpu, default qemu64,+svm,+npt).
# Output in OUT_DIR: results.txt (TAP), scenario-N.txt, serial.log, logs/ (dom0's
# /var/log: vtpmd.log, xen/console/guest-*.log, xen/xl-*.log, rig/ per-scenario
# files and the guest command transcript).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$TOP/build}" && pwd) || { echo "run.sh: no build directory ${1:-$TOP/build}" >&2; exit 1; }
OUT=${2:-$BUILD/xen-rig}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
CACHE=${XENRIG_CACHE:-$OUT/cache}
TMO=${XENRIG_TIMEOUT:-1500}
MEM=${XENRIG_MEM:-2048}
SMP=${XENRIG_SMP:-2}
CPU=${XENRIG_CPU:-qemu64,+svm,+npt}
T_START=$(date +%s)

die() { echo "check-xen: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap/chroot to build the images)"
for b in vtpmd vtpmd-worker vtpmd-ctl; do
	[ -x "$BUILD/daemon/$b" ] || die "$BUILD/daemon/$b is not built (run make build first)"
done

# 1. cached images
T0=$(date +%s)
echo "check-xen: rig images (cache $CACHE, log $OUT/build-rig.log)"
if ! C=$("$HERE/build-rig.sh" "$CACHE" 2>"$OUT/build-rig.log"); then
	tail -n 40 "$OUT/build-rig.log" >&2
	die "building the rig images failed"
fi
grep '^build-rig:' "$OUT/build-rig.log"
T_BUILD=$(( $(date +%s) - T0 ))

# 2. vtpmd's shared libraries must be in dom0 (same Debian release as this host)
for b in vtpmd vtpmd-worker vtpmd-ctl; do
	for so in $(ldd "$BUILD/daemon/$b" | awk '/=>/{print $1}'); do
		if ! [ -e "$C/dom0root/usr/lib/x86_64-linux-gnu/$so" ] && ! [ -e "$C/dom0root/usr/lib/$so" ]; then
			die "$b needs $so, which is not in the rig's dom0: add its Debian package to DOM0_PKGS in tests/xen/build-rig.sh"
		fi
	done
done

# 3. per-run payload: the guests' initramfs and a small overlay for dom0
W=$OUT/work
rm -rf "$W" && mkdir -p "$W"
gcc -static -O2 -std=gnu17 -Wall -Wextra -Werror -o "$W/tpm12-extend" "$HERE/tpm12-extend.c" \
	|| die "cannot build the static tpm12-extend (libc6-dev's libc.a)"
cp -a "$C/domu-base" "$W/domu"
install -m755 "$HERE/domu/init" "$W/domu/init"
install -m755 "$HERE/domu/reboot" "$W/domu/sbin/reboot"
ln -sf reboot "$W/domu/sbin/poweroff"
install -m755 "$HERE/domu/rig-tpm12-check" "$W/tpm12-extend" "$W/domu/usr/bin/"
mkdir -p "$W/dom0/usr/local/bin" "$W/dom0/root/rig"
(cd "$W/domu" && find . | cpio -R 0:0 -H newc -o --quiet | gzip -6 > "$W/dom0/root/rig/domu.cpio.gz")
install -m755 "$BUILD/daemon/vtpmd" "$BUILD/daemon/vtpmd-worker" "$W/dom0/usr/local/bin/"
install -m755 "$BUILD/daemon/vtpmd-ctl" "$W/dom0/usr/local/bin/"
install -m755 "$HERE/dom0/init" "$W/dom0/init"
install -m755 "$HERE/dom0/scenarios.sh" "$W/dom0/root/rig/"
(cd "$W/dom0" && find . -mindepth 1 | cpio -R 0:0 -H newc -o --quiet | gzip -1 > "$W/overlay.cpio.gz")
# the kernel unpacks concatenated archives in turn; later files win
cat "$C/dom0-base.cpio.zst" "$W/overlay.cpio.gz" > "$W/dom0.img"

# 4. boot. Only -cpu qemu64 (no SMAP) lets PV dom0 run under TCG here; see
#    research/xen-qemu-rig.md. TCG's SVM with nested paging gives Xen HAP, which
#    PVH guests need, and with it the log-dirty mode of live migration (Debian's
#    Xen has no shadow paging, so PV guests cannot migrate). Any Xen or dom0 crash
#    exits QEMU (-no-reboot).
SERIAL=$OUT/serial.log
rm -rf "$OUT/logs" "$OUT"/scenario-*.txt "$OUT/results.txt"
echo "check-xen: booting Xen under QEMU (log: $SERIAL, limit ${TMO} s)"
T0=$(date +%s)
timeout -k 10 "$TMO" qemu-system-x86_64 -accel tcg,tb-size=512 -cpu "$CPU" -m "$MEM" -smp "$SMP" \
	-nographic -no-reboot -monitor none -serial stdio -nodefaults -vga none \
	-kernel "$C/xen" \
	-append "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=$SMP loglvl=all guest_loglvl=all console_timestamps=boot" \
	-initrd "$C/vmlinuz console=hvc0 earlyprintk=xen rdinit=/init panic=5 loglevel=4 xenrig_timeout=$((TMO - 120)),$W/dom0.img" \
	</dev/null 2>&1 | perl -MTime::HiRes=time -e '$|=1; $s=time; while(<STDIN>){ s/\r//g; printf "%7.2f %s", time-$s, $_ }' > "$SERIAL"
QRC=${PIPESTATUS[0]}
T_RUN=$(( $(date +%s) - T0 ))

# 5. results and logs
b64=$(sed -n 's/.*XENRIG-B64 //p' "$SERIAL")
if [ -n "$b64" ]; then
	mkdir -p "$OUT/logs"
	echo "$b64" | base64 -d 2>/dev/null | tar -xzf - -C "$OUT/logs" 2>/dev/null \
		|| echo "check-xen: the log archive from dom0 arrived damaged; see serial.log"
fi
VLOG=$OUT/logs/vtpmd.log
grep -a 'XENRIG-DIAG' "$SERIAL" | sed 's/.*XENRIG-DIAG //' > "$OUT/diag.txt"
for n in 1 2 3 4 5 6 7 8 9 10; do
	sed -n "s/^$n //p" "$OUT/diag.txt" > "$OUT/scenario-$n.txt"
done
grep -a 'XENRIG-RESULT ' "$SERIAL" | sed 's/.*XENRIG-RESULT //' > "$OUT/results.txt"
pass=0 fail=0
for n in 1 2 3 4 5 6 7 8 9 10; do
	line=$(grep -E "^(not )?ok $n " "$OUT/results.txt" | head -1)
	[ -n "$line" ] || line="not ok $n - scenario $n # no result (QEMU rc=$QRC, see serial.log)"
	echo "$line"
	case $line in
	ok*) pass=$((pass + 1)) ;;
	*) fail=$((fail + 1)); sed 's/^/#   /' "$OUT/scenario-$n.txt" ;;
	esac
done
if [ $fail -gt 0 ]; then
	echo "# ---- last 40 lines of $SERIAL"
	grep -a -v 'XENRIG-B64' "$SERIAL" | tail -n 40 | sed 's/^/# /'
	echo "# ---- last 40 lines of ${VLOG}"
	tail -n 40 "$VLOG" 2>/dev/null | sed 's/^/# /' || echo "# (no vtpmd log)"
fi
echo "# rig images: ${T_BUILD} s, QEMU run: ${T_RUN} s (rc $QRC), total $(( $(date +%s) - T_START )) s; logs in $OUT"
echo "$pass passed, $fail failed"
rm -rf "$W/domu"
[ $fail -eq 0 ]
