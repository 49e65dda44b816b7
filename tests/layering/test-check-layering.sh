#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# scripts/check-layering on small trees made here: it accepts a clean tree
# and names each kind of violation (an upward include, one program's folder
# including another's, an include of no file, a cycle between modules).
set -u
[ $# -ge 1 ] || { echo "usage: test-check-layering.sh COMMAND..." >&2; exit 2; }
checker="$*"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0 passed=0

# A tree that respects the rules: protocol <- lib <- daemon/{supervisor,worker}.
base() {
	rm -rf "$tmp/t" && mkdir -p "$tmp/t/protocol" "$tmp/t/lib" "$tmp/t/daemon/supervisor" "$tmp/t/daemon/worker"
	printf '#pragma once\n' >"$tmp/t/protocol/codec.h"
	printf '#include "codec.h"\n' >"$tmp/t/protocol/codec.c"
	printf '#pragma once\n#include "codec.h"\n' >"$tmp/t/lib/store.h"
	printf '#include "store.h"\n#include "config.h"\n#include <stdio.h>\n' >"$tmp/t/lib/store.c"
	printf '#pragma once\n#include "store.h"\n' >"$tmp/t/daemon/supervisor/device.h"
	printf '#include "device.h"\n' >"$tmp/t/daemon/supervisor/device.c"
	printf '#include "store.h"\n' >"$tmp/t/daemon/worker/main.c"
}

# expect NAME STATUS PATTERN: check-layering exits STATUS and prints PATTERN.
expect() {
	name=$1 want=$2 pattern=$3
	shift 3
	set -- $checker
	out=$("$@" --root "$tmp/t" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ] && printf '%s\n' "$out" | grep -q -- "$pattern"; then
		echo "ok   $name"
		passed=$((passed + 1))
	else
		echo "FAIL $name: exit $rc (want $want), output:"
		printf '%s\n' "$out" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
}

base
expect clean_tree_passes 0 'no upward include, no cycle'

base
printf '#include "device.h"\n' >>"$tmp/t/lib/store.c"
expect lib_including_daemon_fails 1 'lib/store.c:4: lib/ includes daemon/supervisor/device.h: points up a layer'

base
printf '#include "store.h"\n' >>"$tmp/t/protocol/codec.c"
expect protocol_including_lib_fails 1 'protocol/codec.c:2: protocol/ includes lib/store.h'

base
printf '#pragma once\n' >"$tmp/t/daemon/worker/page.h"
printf '#include "page.h"\n' >>"$tmp/t/daemon/supervisor/device.c"
expect cross_program_include_fails 1 "daemon/supervisor/ includes daemon/worker/page.h: one program's folder never includes another's"

base
printf '#include "nowhere.h"\n' >>"$tmp/t/daemon/worker/main.c"
expect unknown_include_fails 1 '"nowhere.h" is not a file'

base
# device.c calls control.c and control.c calls device.c: no header includes
# itself, yet the two modules depend on each other.
printf '#pragma once\n' >"$tmp/t/daemon/supervisor/control.h"
printf '#include "control.h"\n#include "device.h"\n' >"$tmp/t/daemon/supervisor/control.c"
printf '#include "control.h"\n' >>"$tmp/t/daemon/supervisor/device.c"
expect module_cycle_fails 1 'include cycle between modules (.c and .h together): daemon/supervisor/control -> daemon/supervisor/device'

base
rm -rf "$tmp/t/protocol" "$tmp/t/lib" "$tmp/t/daemon"
expect empty_tree_fails 1 'no source files'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
