#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# meson install script: installs SRC as DEST (relative to the prefix) only if
# DEST does not exist yet, so that reinstalling never overwrites the
# administrator's configuration.
set -eu
src=$1
dest=$2
mode=$3
case $dest in
/*) target="${DESTDIR:-}$dest" ;;
*) target="$MESON_INSTALL_DESTDIR_PREFIX/$dest" ;;
esac
if [ -e "$target" ]; then
	echo "Keeping existing $target"
	exit 0
fi
install -D -m "$mode" "$src" "$target"
echo "Installing $target"
