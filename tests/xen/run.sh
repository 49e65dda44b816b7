#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The real-Xen end-to-end suite (`make check-xen`): Xen 4.17 and a Debian 12 dom0
# booted with systemd under QEMU TCG, real xl/libxl and xenstored started by Debian's
# xen init script, Linux PV guests with the kernel's own xen-tpmfront, against
# vtpmd.service of the Debian package built from this tree in the same run
# (scripts/build-deb). See tests/xen/README.
#
# Usage: run.sh [BUILD_DIR [OUT_DIR]]   (as root; defaults build, BUILD_DIR/xen-rig;
# the package is built in OUT_DIR/deb)
# Environment: XENRIG_CACHE (image cache root, default OUT_DIR/cache),
#   XENRIG_TIMEOUT (seconds for both QEMU runs, default 2400),
#   XENRIG_MEM (MiB for QEMU, default 2048), XENRIG_SMP (default 2),
#   XENRIG_CPU (QEMU's -cpu, default qemu64,+svm,+npt), XENRIG_ONLY=16 (the
#   package and scenario 16 alone, for working on it: the others report no result).
# Output in OUT_DIR: results.txt (TAP), scenario-N.txt, serial.log (serial-2.log:
# the boot after dom0's reboot), persist.raw (the persistent disk), logs/ (dom0's
# /var/log: vtpmd.log, xen/console/guest-*.log, xen/xl-*.log, rig/ per-scenario
# files and the guest command transcript).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
mkdir -p "${1:-$TOP/build}"
BUILD=$(cd "${1:-$TOP/build}" && pwd) || { echo "run.sh: no build directory ${1:-$TOP/build}" >&2; exit 1; }
OUT=${2:-$BUILD/xen-rig}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
CACHE=${XENRIG_CACHE:-$OUT/cache}
TMO=${XENRIG_TIMEOUT:-2400}
MEM=${XENRIG_MEM:-2048}
SMP=${XENRIG_SMP:-2}
CPU=${XENRIG_CPU:-qemu64,+svm,+npt}
T_START=$(date +%s)

die() { echo "check-xen: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap/chroot to build the images)"

# 1. the package, as `make deb` builds it (its unit suite is make check's job)
T0=$(date +%s)
echo "check-xen: building the vtpmd package (log $OUT/build-deb.log)"
if ! DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" "$TOP/scripts/build-deb" "$OUT/deb" > "$OUT/build-deb.log" 2>&1; then
	tail -n 40 "$OUT/build-deb.log" >&2
	die "scripts/build-deb failed"
fi
DEB=$(ls "$OUT"/deb/vtpmd_*.deb | head -1)
# its Depends without versions or alternatives: dom0 gets them in its base image
DEB_DEPENDS=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep . | tr '\n' ' ')
T_DEB=$(( $(date +%s) - T0 ))
echo "check-xen: $(basename "$DEB") in ${T_DEB} s"

# 2. cached images
T0=$(date +%s)
echo "check-xen: rig images (cache $CACHE, log $OUT/build-rig.log)"
if ! C=$(XENRIG_DEB_DEPENDS="$DEB_DEPENDS" "$HERE/build-rig.sh" "$CACHE" 2>"$OUT/build-rig.log"); then
	tail -n 40 "$OUT/build-rig.log" >&2
	die "building the rig images failed"
fi
grep '^build-rig:' "$OUT/build-rig.log"
T_BUILD=$(( $(date +%s) - T0 ))
for p in $DEB_DEPENDS; do
	grep -q "^$p[:	]" "$C/dom0-packages" || die "the package depends on $p, which is not in the rig's dom0 ($C/dom0-packages)"
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
D0=$W/dom0
mkdir -p "$D0/root/rig" "$D0/etc/systemd/system/multi-user.target.wants" "$D0/etc/modules-load.d" \
	"$D0/etc/default" "$D0/var/log/xen/console"
(cd "$W/domu" && find . | cpio -R 0:0 -H newc -o --quiet | gzip -6 > "$D0/root/rig/domu.cpio.gz")
install -m644 "$DEB" "$D0/root/rig/vtpmd.deb"
install -m755 "$HERE/dom0/rig-init" "$HERE/dom0/rig-run" "$HERE/dom0/scenarios.sh" "$D0/root/rig/"
install -m644 "$HERE/dom0/rig-scenarios.service" "$D0/etc/systemd/system/"
# xendomains' save files are on the persistent disk (rig-init binds it there):
# the drop-in an admin writes for a save directory on its own mount
mkdir -p "$D0/etc/systemd/system/xendomains.service.d"
printf '%s\n' '[Unit]' 'RequiresMountsFor=/var/lib/xen/save' > "$D0/etc/systemd/system/xendomains.service.d/save-dir.conf"
ln -s ../rig-scenarios.service "$D0/etc/systemd/system/multi-user.target.wants/rig-scenarios.service"
# Debian's xen init script loads only xenfs, evtchn and gntdev; libxl wants the rest
printf '%s\n' xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs > "$D0/etc/modules-load.d/xenrig.conf"
# the xen init script's defaults file: the guests' consoles into /var/log for run.sh
printf '%s\n' 'XENSTORED_ARGS=' \
	'XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console --timestamp=guest"' > "$D0/etc/default/xen"
# nothing may read the one console, nor run timers in the 20 minutes
for u in getty@tty1 serial-getty@hvc0 console-getty apt-daily.timer apt-daily-upgrade.timer \
	dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap fstrim.timer; do
	case $u in *.*) ;; *) u=$u.service ;; esac
	ln -s /dev/null "$D0/etc/systemd/system/$u"
done
(cd "$W/dom0" && find . -mindepth 1 | cpio -R 0:0 -H newc -o --quiet | gzip -1 > "$W/overlay.cpio.gz")
# the kernel unpacks concatenated archives in turn; later files win
cat "$C/dom0-base.cpio.zst" "$W/overlay.cpio.gz" > "$W/dom0.img"

# 4. boot. Only -cpu qemu64 (no SMAP) lets PV dom0 run under TCG here; see
#    research/xen-qemu-rig.md. TCG's SVM with nested paging gives Xen HAP, which
#    PVH guests need, and with it the log-dirty mode of live migration (Debian's
#    Xen has no shadow paging, so PV guests cannot migrate). Any Xen or dom0 crash
#    exits QEMU (-no-reboot).
#    A dom0 reboot (scenario 16) is a reset of the machine, which -no-reboot turns
#    into QEMU's exit: dom0 prints XENRIG-REBOOT before it reboots, and QEMU is
#    started again with the same persistent disk (rig-init; the second boot finds
#    its marker there). The limit covers both boots.
DISK=$OUT/persist.raw
rm -f "$DISK" && truncate -s 1G "$DISK"
rm -rf "$OUT/logs" "$OUT"/scenario-*.txt "$OUT/results.txt" "$OUT"/serial*.log
boot() { # SERIAL_LOG LIMIT: one QEMU run; sets QRC
	local serial=$1 lim=$2
	echo "check-xen: booting Xen under QEMU (log: $serial, limit ${lim} s)"
	timeout -k 10 "$lim" qemu-system-x86_64 -accel tcg,tb-size=512 -cpu "$CPU" -m "$MEM" -smp "$SMP" \
		-nographic -no-reboot -monitor none -serial stdio -nodefaults -vga none \
		-drive "file=$DISK,format=raw,if=ide,index=0,media=disk,cache=unsafe" \
		-kernel "$C/xen" \
		-append "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=$SMP loglvl=all guest_loglvl=all console_timestamps=boot" \
		-initrd "$C/vmlinuz console=hvc0 earlyprintk=xen rdinit=/root/rig/rig-init systemd.show_status=error panic=5 loglevel=4 xenrig_timeout=$((lim - 120))${XENRIG_ONLY:+ xenrig_only=$XENRIG_ONLY},$W/dom0.img" \
		</dev/null 2>&1 | perl -MTime::HiRes=time -e '$|=1; $s=time; while(<STDIN>){ s/\r//g; printf "%7.2f %s", time-$s, $_ }' > "$serial"
	QRC=${PIPESTATUS[0]}
}
T0=$(date +%s)
SERIALS=$OUT/serial.log
boot "$OUT/serial.log" "$TMO"
if grep -a -q 'XENRIG-REBOOT$' "$OUT/serial.log"; then
	left=$(( TMO - ($(date +%s) - T0) ))
	if [ $left -gt 300 ]; then
		SERIALS="$SERIALS $OUT/serial-2.log"
		boot "$OUT/serial-2.log" "$left"
	else
		echo "check-xen: dom0 rebooted, but only $left s are left: no second boot"
	fi
fi
SERIAL=$OUT/serial.log
T_RUN=$(( $(date +%s) - T0 ))

# 5. results and logs (the second boot's in logs/boot2)
for f in $SERIALS; do
	case $f in *-2.log) dst=$OUT/logs/boot2 ;; *) dst=$OUT/logs ;; esac
	b64=$(sed -n 's/.*XENRIG-B64 //p' "$f")
	[ -n "$b64" ] || continue
	mkdir -p "$dst"
	echo "$b64" | base64 -d 2>/dev/null | tar -xzf - -C "$dst" 2>/dev/null \
		|| echo "check-xen: the log archive from dom0 arrived damaged; see $f"
done
VLOG=$OUT/logs/vtpmd.log
# shellcheck disable=SC2086
cat $SERIALS | grep -a 'XENRIG-DIAG' | sed 's/.*XENRIG-DIAG //' > "$OUT/diag.txt"
NSCEN=16
for n in $(seq $NSCEN); do
	sed -n "s/^$n //p" "$OUT/diag.txt" > "$OUT/scenario-$n.txt"
done
# shellcheck disable=SC2086
cat $SERIALS | grep -a 'XENRIG-RESULT ' | sed 's/.*XENRIG-RESULT //' > "$OUT/results.txt"
pass=0 fail=0
for n in $(seq $NSCEN); do
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
	# shellcheck disable=SC2086
	SERIAL=$(ls $SERIALS | tail -1)
	grep -a -v 'XENRIG-B64' "$SERIAL" | tail -n 40 | sed 's/^/# /'
	echo "# ---- last 40 lines of ${VLOG}"
	tail -n 40 "$VLOG" 2>/dev/null | sed 's/^/# /' || echo "# (no vtpmd log)"
fi
echo "# package: ${T_DEB} s, rig images: ${T_BUILD} s, QEMU run: ${T_RUN} s (rc $QRC), total $(( $(date +%s) - T_START )) s; logs in $OUT"
echo "$pass passed, $fail failed"
rm -rf "$W/domu"
[ $fail -eq 0 ]
