#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# `make check-deb` (issue 16): vtpmd's Debian package the way an admin gets
# it. Builds it (scripts/build-deb with nocheck, without the test programs:
# `make check` runs those from the tree), runs lintian on the .changes (the .deb, the -dbgsym and the changes
# file; any error or warning fails), inspects the .deb (files, conffile,
# maintainer scripts, the unit as installed), then installs it with
# `apt-get install ./vtpmd_*.deb` into a fresh Debian 12 chroot, edits the
# conffile and reinstalls, and purges: vTPM state in /var/lib/vtpmd must
# survive the purge, with a note saying how to remove it.
#
# The chroot is debootstrap'd once (--variant=minbase bookworm, from
# $PKGTEST_MIRROR, default http://deb.debian.org/debian: a minute or two) into
# a tarball in $PKGTEST_CACHE (default OUT/chroot-cache) with the downloaded
# packages; every run starts from a new copy of it, with bookworm-updates and
# bookworm-security ($PKGTEST_SECURITY_MIRROR) as on any Debian 12 host (a
# package built against a security update depends on it). KEEP=1 leaves
# OUT/pkg-root.
# Needs root (chroot, mounts): otherwise exit 77.
# Usage: tests/pkg/run.sh [OUT]   (default build-deb, as `make deb`)
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-build-deb}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=${PKGTEST_CACHE:-$OUT/chroot-cache}
MIRROR=${PKGTEST_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${PKGTEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ROOT=$OUT/pkg-root
SUITE=bookworm

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the package test needs root (debootstrap, chroot)" >&2
	exit 77
fi

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
	echo "$PASSED passed, $FAILED failed ($SECONDS s)"
	[ "$FAILED" -eq 0 ] || exit 1
	exit 0
}
cleanup() {
	[ -n "${KEEP:-}" ] || rm -rf "$ROOT"
}
trap cleanup EXIT

# in_root CMD...: runs CMD in the chroot with /proc, /dev and the package cache
# mounted in a mount namespace of its own (nothing to unmount afterwards).
in_root() {
	unshare --mount --propagation private sh -c '
		root=$1 archives=$2
		shift 2
		mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" &&
			mount --bind "$archives" "$root/var/cache/apt/archives" &&
			exec chroot "$root" "$@"' sh "$ROOT" "$CACHE/archives" \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# ---- build and lint

echo "# building the package (nocheck: no test program is built or run)"
if ! DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" DEB_BUILD_PROFILES="nocheck ${DEB_BUILD_PROFILES:-}" \
	"$top/scripts/build-deb" "$OUT" >"$OUT/build.log" 2>&1; then
	tail -n 40 "$OUT/build.log" | sed 's/^/#   /'
	fail "scripts/build-deb (log: $OUT/build.log)"
	finish
fi
ok "scripts/build-deb built $(cd "$OUT" && echo vtpmd_*.deb) ($SECONDS s)"
DEB=$(echo "$OUT"/vtpmd_*.deb)
CHANGES=$(echo "$OUT"/vtpmd_*.changes)
check "a -dbgsym package next to it" test -f "$(echo "$OUT"/vtpmd-dbgsym_*.deb)"

lintian --fail-on error,warning --info "$CHANGES" >"$OUT/lintian.log" 2>&1
rc=$?
sed 's/^/# lintian: /' "$OUT/lintian.log"
check "lintian: no error and no warning on the .deb, the -dbgsym and the .changes" \
	test "$rc" -eq 0 -a -z "$(grep -E '^[EW]: ' "$OUT/lintian.log")"

# ---- what the .deb holds

contents=$(dpkg-deb -c "$DEB" | awk '{print $NF}')
for f in ./usr/sbin/vtpmd ./usr/sbin/vtpmd-ctl ./usr/libexec/vtpmd/vtpmd-worker ./lib/systemd/system/vtpmd.service \
	./usr/lib/tmpfiles.d/vtpmd.conf ./etc/vtpmd/vtpmd.conf ./usr/share/man/man8/vtpmd.8.gz \
	./usr/share/man/man8/vtpmd-ctl.8.gz ./usr/share/man/man5/vtpmd.conf.5.gz ./usr/share/doc/vtpmd/copyright \
	./usr/share/bash-completion/completions/vtpmd-ctl; do
	check "the package ships $f" grep -qxF "$f" <<<"$contents"
done
check "the package ships nothing under /var/lib/vtpmd (dpkg never owns vTPM state)" \
	bash -c "! grep -q '^\./var/lib/vtpmd' <<<'$contents'"

ctl=$OUT/pkg-control
rm -rf "$ctl" "$OUT/pkg-files"
dpkg-deb -e "$DEB" "$ctl"
dpkg-deb -x "$DEB" "$OUT/pkg-files"
check "/etc/vtpmd/vtpmd.conf is a conffile" grep -qxF /etc/vtpmd/vtpmd.conf "$ctl/conffiles"
check "postinst enables vtpmd.service" grep -q "deb-systemd-helper enable 'vtpmd.service'" "$ctl/postinst"
check "postinst creates vtpmd's directories (tmpfiles)" grep -Eq "systemd-tmpfiles .*--create vtpmd.conf" "$ctl/postinst"
check "Depends has the libraries (shlibs), libtpms among them" \
	grep -Eq '^Depends:.*libtpms0.*' <(dpkg-deb -f "$DEB" Depends | sed 's/^/Depends: /')
unit=$OUT/pkg-files/lib/systemd/system/vtpmd.service
for l in "ExecStart=/usr/sbin/vtpmd" "ReadWritePaths=-/var/lib/vtpmd" "ConditionPathExists=/proc/xen/capabilities" \
	"ExecCondition=+/bin/grep -qx control_d /proc/xen/capabilities" "RestartPreventExitStatus=6"; do
	check "the installed unit has $l" grep -qxF "$l" "$unit"
done
check "the unit's capabilities include CAP_KILL" grep -Eq '^CapabilityBoundingSet=.*\bCAP_KILL\b' "$unit"
check "the shipped vtpmd.conf names the package's state root" \
	grep -qxF '#StateDirectory=/var/lib/vtpmd' "$OUT/pkg-files/etc/vtpmd/vtpmd.conf"

# ---- a Debian 12 chroot: install, reinstall, purge

tarball=$CACHE/$SUITE-minbase.tar
mkdir -p "$CACHE/archives/partial"
if [ ! -f "$tarball" ]; then
	echo "# debootstrap --variant=minbase $SUITE from $MIRROR into $CACHE (once; minutes)"
	rm -rf "$CACHE/root.new"
	if ! debootstrap --variant=minbase "$SUITE" "$CACHE/root.new" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
		tail -n 20 "$CACHE/debootstrap.log" | sed 's/^/#   /'
		fail "debootstrap $SUITE (log: $CACHE/debootstrap.log)"
		finish
	fi
	tar -C "$CACHE/root.new" -cf "$tarball.new" . && mv "$tarball.new" "$tarball"
	rm -rf "$CACHE/root.new"
fi
rm -rf "$ROOT"
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$tarball"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" \
	"$SECURITY_MIRROR" "$SUITE" >"$ROOT/etc/apt/sources.list"
# As in any chroot: no service is started by a maintainer script.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod +x "$ROOT/usr/sbin/policy-rc.d"
cp "$DEB" "$ROOT/tmp/"
debname=$(basename "$DEB")
echo "# chroot ready ($SECONDS s)"

if ! in_root apt-get update -qq >"$OUT/apt.log" 2>&1; then
	sed 's/^/#   /' "$OUT/apt.log"
	fail "apt-get update in the chroot"
	finish
fi
in_root apt-get install -y -q "./tmp/$debname" >"$OUT/install.log" 2>&1
rc=$?
sed 's/^/# install: /' "$OUT/install.log" | tail -n 15
check "apt-get install ./$debname in a $SUITE chroot" [ "$rc" -eq 0 ]
check "dpkg says vtpmd is installed" \
	bash -c "[ \"\$(chroot '$ROOT' dpkg-query -W -f='\${Status}' vtpmd)\" = 'install ok installed' ]"
check "vtpmd runs there (every library found): vtpmd --version" \
	bash -c "chroot '$ROOT' /usr/sbin/vtpmd --version | grep -qx 'vtpmd $(dpkg-deb -f "$DEB" Version)'"
check "vtpmd-ctl runs there: vtpmd-ctl --help" bash -c "chroot '$ROOT' /usr/sbin/vtpmd-ctl --help >/dev/null"
wants=$ROOT/etc/systemd/system/multi-user.target.wants/vtpmd.service
check "vtpmd.service is enabled (multi-user.target.wants)" test -L "$wants"

sed -i 's|^#StateDirectory=/var/lib/vtpmd$|StateDirectory=/var/lib/vtpmd|' "$ROOT/etc/vtpmd/vtpmd.conf"
in_root apt-get install -y -q --reinstall "./tmp/$debname" >"$OUT/reinstall.log" 2>&1
check "apt-get install --reinstall" [ $? -eq 0 ]
check "the admin's edit of vtpmd.conf survives the reinstall" grep -qx "StateDirectory=/var/lib/vtpmd" "$ROOT/etc/vtpmd/vtpmd.conf"

# Stands for a host's vTPM state: a master key and one vTPM.
uuid=8ba9d2ea-3c63-4e55-b1ad-f6f3b7a1c7b5
mkdir -p -m 0700 "$ROOT/var/lib/vtpmd/$uuid"
echo sealed >"$ROOT/var/lib/vtpmd/master.sealed"
echo permanent >"$ROOT/var/lib/vtpmd/$uuid/permanent"
in_root apt-get purge -y -q vtpmd >"$OUT/purge.log" 2>&1
rc=$?
sed 's/^/# purge: /' "$OUT/purge.log" | tail -n 8
check "apt-get purge vtpmd" [ "$rc" -eq 0 ]
check "the purge keeps the vTPM state in /var/lib/vtpmd" \
	test -f "$ROOT/var/lib/vtpmd/master.sealed" -a -f "$ROOT/var/lib/vtpmd/$uuid/permanent"
check "the purge says so, and how to remove it" grep -qF "rm -rf /var/lib/vtpmd" "$OUT/purge.log"
check "the purge removes the binaries, the conffile and the enablement" \
	test ! -e "$ROOT/usr/sbin/vtpmd" -a ! -e "$ROOT/etc/vtpmd/vtpmd.conf" -a ! -L "$wants"

# A state root vtpmd never wrote to holds nothing to lose: it goes quietly.
rm -rf "$ROOT/var/lib/vtpmd"
in_root apt-get install -y -q "./tmp/$debname" >"$OUT/install2.log" 2>&1
mkdir -p -m 0700 "$ROOT/var/lib/vtpmd"
in_root apt-get purge -y -q vtpmd >"$OUT/purge2.log" 2>&1
check "a purge removes an empty /var/lib/vtpmd without a note" \
	test ! -e "$ROOT/var/lib/vtpmd" -a -z "$(grep -F 'kept /var/lib/vtpmd' "$OUT/purge2.log")"
finish
