#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Runs systemd-analyze verify on a copy of vtpmd.service whose ExecStart= is
# the vtpmd of the build tree, and fails on any complaint at all: verify
# prints nothing for a unit it has no remarks about.
# Usage: test-verify.sh SYSTEMD-ANALYZE UNIT BUILT-VTPMD INSTALLED-VTPMD
set -eu
analyze=$1 unit=$2 built=$3 installed=$4

dir=$(mktemp -d "${TMPDIR:-/tmp}/vtpmd-verify.XXXXXX")
trap 'rm -rf "$dir"' EXIT

grep -q "^ExecStart=$installed\$" "$unit" || {
	echo "FAIL: $unit has no ExecStart=$installed" >&2
	exit 1
}
sed "s|^ExecStart=$installed\$|ExecStart=$built|" "$unit" >"$dir/vtpmd.service"

# --man=no: the man pages are not installed in the build tree (they are
# linted by mandoc-lint). --generators=no: the host's generators are no
# business of this test.
status=0
"$analyze" verify --man=no --generators=no "$dir/vtpmd.service" >"$dir/out" 2>&1 || status=$?
cat "$dir/out"
if [ "$status" -ne 0 ]; then
	echo "FAIL: systemd-analyze verify exited with $status" >&2
	exit 1
fi
if [ -s "$dir/out" ]; then
	echo "FAIL: systemd-analyze verify has remarks (above)" >&2
	exit 1
fi
echo "ok: $unit verifies cleanly"
