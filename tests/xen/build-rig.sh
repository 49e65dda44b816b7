#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Builds the cached part of the real-Xen rig from Debian 12 (bookworm) packages:
#   xen              the uncompressed multiboot Xen 4.17 image QEMU -kernel wants
#   vmlinuz          the Debian kernel, used for dom0 and (from inside dom0) the domUs
#   dom0-base.cpio.zst  dom0's whole root file system, unpacked by the kernel as initramfs
#   domu-base/       the file tree of the guests' initramfs (busybox, xen-tpmfront.ko,
#                    tpm2-tools and xenstore-utils with their libraries)
# The cache directory is keyed by the versions of every package that goes into it
# and by this script, so a new Debian point release or kernel rebuilds it.
# What changes at every run (vtpmd, the test scripts, the guest init) is not
# cached: run.sh packs it into a small second cpio appended to dom0-base.
#
# Usage: build-rig.sh CACHE_ROOT   prints the cache directory on stdout.
# Environment: XENRIG_DEB_DEPENDS, package names that dom0 needs besides its own
# (the .deb's Depends; part of the key).
# Needs root (debootstrap, chroot) and the Debian mirror configured for apt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE_ROOT=${1:?usage: build-rig.sh CACHE_ROOT}
SUITE=bookworm
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# Host tools the rig needs; installed here so `make check` does not pull QEMU in.
HOST_PKGS="qemu-system-x86 debootstrap cpio zstd gzip perl"
# dom0: systemd as PID 1 (Debian's xen and xendomains init scripts run as generated
# units), the toolstack, xenstored, tpm2-tools, and the runtime Depends of the vtpmd
# package built in the same run (run.sh passes them in XENRIG_DEB_DEPENDS: dom0 has
# no network, so `dpkg -i` finds them installed or fails).
# e2fsprogs: dom0 formats the rig's persistent disk on its first boot (python3 stays
# in the image: Debian's xendomains lists the domains to save with a python script).
DOM0_PKGS="systemd systemd-sysv dbus xen-utils-4.17 xenstore-utils kmod busybox-static procps tpm2-tools e2fsprogs ${XENRIG_DEB_DEPENDS:-}"

log() { echo "build-rig: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
	log "needs root (debootstrap and chroot)"; exit 1
fi
missing=""
for p in $HOST_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	log "installing host tools:$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi

KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$KPKG" ]; then
	apt-get update -qq
	KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
KVER=${KPKG#linux-image-}

# The key: candidate versions of everything that ends up in the images (the chroot
# uses the host's apt sources, so it installs exactly these), plus this script.
keysrc=$( {
	# one apt-cache call: it costs about a second each
	apt-cache policy xen-hypervisor-4.17-amd64 "$KPKG" $DOM0_PKGS libxenstore4 libxenctrl4.17 \
		libtss2-esys-3.0.2-0 libtss2-tcti-device0 libc6 |
		awk '/^[^ ]/{p=$1} /Candidate:/{print p $2}'
	sha256sum "$HERE/build-rig.sh" | cut -d' ' -f1
} )
KEY=$(echo "$keysrc" | sha256sum | cut -c1-16)
C=$CACHE_ROOT/$KEY
if [ -e "$C/.complete" ]; then
	log "cached images: $C"
	echo "$C"; exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
flock -w 3600 9
if [ -e "$C/.complete" ]; then echo "$C"; exit 0; fi
log "building rig images into $C (key $KEY)"
T0=$(date +%s)
rm -rf "$C" && mkdir -p "$C"
echo "$keysrc" > "$C/versions"
W=$C/work
mkdir -p "$W/debs" "$W/x" "$W/k"

# 1. Xen hypervisor and kernel: downloaded and unpacked, not installed on the host.
(cd "$W/debs" && apt-get download -q -o APT::Sandbox::User=root xen-hypervisor-4.17-amd64 "$KPKG" >&2)
dpkg-deb -x "$W"/debs/xen-hypervisor-4.17-amd64_*.deb "$W/x"
dpkg-deb -x "$W"/debs/"$KPKG"_*.deb "$W/k"
zcat "$W/x/boot/xen-4.17-amd64.gz" > "$C/xen"
cp "$W/k/boot/vmlinuz-$KVER" "$C/vmlinuz"
cp "$W/k/boot/config-$KVER" "$C/kernel-config"
MODS=$W/k/lib/modules/$KVER/kernel

# 2. dom0 root: debootstrap minbase, then the rest from all of the host's suites
#    (bookworm, -updates, -security) so versions match the key.
R=$W/dom0root
debootstrap --variant=minbase "$SUITE" "$R" "$MIRROR" >&2
cp /etc/apt/sources.list.d/debian.sources "$R/etc/apt/sources.list.d/"
rm -f "$R/etc/apt/sources.list"
cp /etc/resolv.conf "$R/etc/resolv.conf"
for f in /etc/apt/apt.conf.d/*; do
	grep -qi proxy "$f" 2>/dev/null && cp "$f" "$R/etc/apt/apt.conf.d/"
done
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod 755 "$R/usr/sbin/policy-rc.d"
mount -t proc proc "$R/proc"
trap 'umount "$R/proc" 2>/dev/null || true' EXIT
chroot "$R" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive chroot "$R" apt-get -y -qq dist-upgrade >&2
DEBIAN_FRONTEND=noninteractive chroot "$R" apt-get install -y -qq --no-install-recommends $DOM0_PKGS >&2
chroot "$R" dpkg-query -W > "$C/dom0-packages"
umount "$R/proc"; trap - EXIT

# 3. domU tree: static busybox, the frontend module, tpm2-tools and xenstore-utils
#    with the shared libraries they load (ldd in the chroot, plus the TCTI that
#    tss2 dlopens).
U=$C/domu-base
mkdir -p "$U"/{bin,sbin,dev,proc,sys,tmp,usr/bin,usr/lib/modules,usr/lib64,etc}
# merged /usr, like the chroot the libraries come from
ln -s usr/lib "$U/lib"; ln -s usr/lib64 "$U/lib64"
cp "$R/bin/busybox" "$U/bin/"
"$U/bin/busybox" --install "$U/bin"
cp "$MODS/drivers/char/tpm/xen-tpmfront.ko" "$U/lib/modules/"
[ -e "$R/usr/bin/tpm2" ] || { log "tpm2-tools has no multi-call tpm2 binary"; exit 1; }
cp -a "$R"/usr/bin/tpm2 "$R"/usr/bin/tpm2_* "$U/usr/bin/"
for b in xenstore-read xenstore-write xenstore-exists xenstore-rm xenstore-ls xenstore-list xenstore-watch; do
	cp -a "$R/usr/bin/$b" "$U/usr/bin/" 2>/dev/null || true
done
# xenstore-utils' tools are symlinks to one binary in Debian
for l in "$U"/usr/bin/xenstore-*; do
	if [ -L "$l" ]; then t=$(readlink "$l"); case $t in /*) ;; *) t=/usr/bin/$t ;; esac
		mkdir -p "$U$(dirname "$t")"; cp -a "$R$t" "$U$t"; fi
done
libs=$(
	for b in /usr/bin/tpm2 /usr/bin/xenstore $(cd "$R" && ls usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so* usr/lib/x86_64-linux-gnu/libtss2-tctildr.so* | sed 's,^,/,'); do
		[ -e "$R$b" ] && chroot "$R" ldd "$b" | awk '/=> \//{print $3} /^\t\/lib/{print $1}'
	done | sort -u
)
for l in $libs /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 /usr/lib/x86_64-linux-gnu/libtss2-tctildr.so.0; do
	# resolve through symlinks but keep the soname path the loader asks for
	l=/usr${l#/usr}
	mkdir -p "$U$(dirname "$l")"
	cp -L "$R$l" "$U$l"
done
cp -L "$R/lib64/ld-linux-x86-64.so.2" "$U/usr/lib64/"
ldcheck=$(chroot "$U" /usr/bin/tpm2_getrandom --version 2>&1) || { log "tpm2 does not run in the domU tree: $ldcheck"; exit 1; }
log "domU tpm2: $ldcheck"

# 4. trim dom0 and add the Xen modules and the domU kernel.
(cd "$R" && rm -rf usr/share/doc/* usr/share/man/* usr/share/locale/* usr/share/info/* \
	usr/share/zoneinfo usr/share/i18n var/cache/apt/* var/lib/apt/lists/* usr/lib/xen-4.17/boot \
	var/log/*.log usr/sbin/policy-rc.d)
D=$R/lib/modules/$KVER
mkdir -p "$D/kernel/drivers/xen/xenfs"
cp "$MODS"/drivers/xen/{xen-evtchn,xen-gntdev,xen-gntalloc,xen-privcmd}.ko "$D/kernel/drivers/xen/"
cp "$MODS/drivers/xen/xenfs/xenfs.ko" "$D/kernel/drivers/xen/xenfs/"
# the persistent disk (QEMU's IDE disk on the PIIX controller, ext4), each module
# with what it depends on (the kernel package has no modules.dep: depmod makes it)
KM=$W/k/lib/modules/$KVER
add_mod() {
	local m=$1 f d
	grep -q -E "(^|/)($m|${m//_/-}|${m//-/_})\.ko" "$KM/modules.builtin" && return 0
	f=$(cd "$KM" && find kernel \( -name "$m.ko*" -o -name "${m//_/-}.ko*" -o -name "${m//-/_}.ko*" \) | head -1)
	[ -n "$f" ] || { log "no module $m in $KPKG"; exit 1; }
	[ -e "$D/$f" ] && return 0
	mkdir -p "$D/$(dirname "$f")"; cp "$KM/$f" "$D/$f"
	for d in $(chroot "$R" modinfo -F depends "/lib/modules/$KVER/$f" | tr ',' ' '); do add_mod "$d"; done
}
for m in ata_piix sd_mod ext4 crc32c_generic; do add_mod "$m"; done
cp "$W/k/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$D/"
chroot "$R" depmod "$KVER"
mkdir -p "$R/root/rig"
cp "$C/vmlinuz" "$R/root/rig/vmlinuz-domU"
(cd "$R" && find . -xdev | cpio -R 0:0 -H newc -o --quiet | zstd -q -T0 -10 > "$C/dom0-base.cpio.zst")
# the dom0 tree stays (run.sh checks vtpmd's libraries against it); the rest goes.
mv "$R" "$C/dom0root"
rm -rf "$W"
touch "$C/.complete"
# older keys are dead weight
for d in "$CACHE_ROOT"/*/; do
	[ "${d%/}" = "$C" ] || rm -rf "${d%/}"
done
log "built in $(( $(date +%s) - T0 )) s: $(du -sh "$C/dom0-base.cpio.zst" | cut -f1) dom0, $(du -sh "$U" | cut -f1) domU tree"
echo "$C"
