#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# pool-fs.sh: a real shared file system for the simulated pool: one GlusterFS
# volume over loopback, mounted N times through FUSE, each mount its own
# client process, as N hosts would mount it (docs/pool-storage.md says what
# vtpmd relies on and what was measured).
#
#   pool-fs.sh up DIR N    glusterd, a one-brick volume, mounts DIR/mnt1..N
#   pool-fs.sh down DIR    unmounts, stops and deletes the volume, ends every
#                          process of this pool by pid; idempotent
#   pool-fs.sh storage-down DIR
#                          SIGKILLs the brick process: the storage is gone for
#                          every mount (ENOTCONN), and with it every lock
#   pool-fs.sh storage-up DIR
#                          starts the brick again and waits until every live
#                          mount answers
#
# Layout under DIR: glusterd/ (glusterd's working directory), run/ (its run
# directory, CLI socket and brick pid files), log/, brick/, mnt1..N,
# glusterd.pid, mntI.pid (the FUSE client process of mount I: kill it to cut
# that "host" off the storage).
#
# What cannot be kept under DIR: glusterd listens on TCP port 24007 (brick
# processes always fetch their volfile from that port, so another port breaks
# them: one pool per machine at a time, and up refuses if the port is taken);
# the brick's socket is in /var/run/gluster and its log in
# /var/log/glusterfs/bricks (both removed by down); the CLI appends to
# /var/log/glusterfs/cmd_history.log.
#
# Every step waits for its condition with a deadline; a failed up runs down.
# Exit status: 0, 1 (failed; the reason on stderr), 77 (not root, or FUSE or
# GlusterFS is not available here and cannot be installed).
#
# Environment: POOL_LOCK, the tests' pool-lock helper, to run the daemons
# under its child subreaper (without it, a process killed here may stay a
# zombie where PID 1 reaps nothing); POOL_FS_DEADLINE, seconds per step (60).
set -u

VOL=vtpmpool
PORT=24007
DEADLINE=${POOL_FS_DEADLINE:-60}

die() {
	echo "pool-fs: $*" >&2
	exit 1
}

now_ns() { date +%s%N; }

# wait_until SECONDS WHAT command...: polls every 50 ms until the command
# succeeds; says what it waited for if the deadline passes.
wait_until() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$(($(now_ns) + secs * 1000000000))
	until "$@" >/dev/null 2>&1; do
		if [ "$(now_ns)" -ge "$deadline" ]; then
			echo "pool-fs: no $what after ${secs} s" >&2
			return 1
		fi
		sleep 0.05
	done
}

# A process that still runs (a zombie has ended).
alive() {
	local state
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ]
}
dead() { ! alive "$1"; }

# end_pid PID: SIGTERM, then SIGKILL if it is still there after 10 s.
end_pid() {
	alive "$1" || return 0
	kill -TERM "$1" 2>/dev/null
	wait_until 10 "exit of pid $1" dead "$1" && return 0
	kill -KILL "$1" 2>/dev/null
	wait_until 10 "exit of pid $1 after SIGKILL" dead "$1"
}

pid_of() { [ -r "$1" ] && tr -dc '0-9' <"$1"; }

gl() {
	timeout "$DEADLINE" gluster --glusterd-sock="$D/run/glusterd.socket" --mode=script \
		--log-file="$D/log/cli.log" "$@"
}

mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }

# The mount points of this pool. Not by test -d: the mount point of a client
# that lost its brick or died fails stat(2) with ENOTCONN.
mount_points() {
	local m
	for m in "$D"/mnt*; do
		case $m in *.pid) ;; *) echo "$m" ;; esac
	done
}
# Mounts whose client runs.
live_mounts() {
	local m
	for m in $(mount_points); do
		mounted "$m" && alive "$(pid_of "$m.pid")" && echo "$m"
	done
}

# Every process whose command line names this pool's directory: what a failed
# up may have started before it wrote a pid file.
pool_pids() {
	local p args
	for p in /proc/[0-9]*; do
		# Read and matched by bash itself: no process per entry, and no grep
		# that would find its own command line.
		mapfile -d '' args 2>/dev/null <"$p/cmdline" || continue
		[[ "${args[*]}" == *"$D/"* ]] && echo "${p#/proc/}"
	done
}

brick_online() { gl volume status "$VOL" | awk '$1 == "Brick" && $(NF - 1) == "Y" { ok = 1 } END { exit !ok }'; }

run() {
	if [ -n "${POOL_LOCK:-}" ]; then
		setsid "$POOL_LOCK" reap "$@" </dev/null >>"$D/log/daemons.log" 2>&1 &
	else
		setsid "$@" </dev/null >>"$D/log/daemons.log" 2>&1 &
	fi
}

need_tools() {
	local t missing=""
	for t in glusterd gluster glusterfs; do
		command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "pool-fs: installing glusterfs-server glusterfs-client (missing:$missing)" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			glusterfs-server glusterfs-client >"$D/log/apt.log" 2>&1
		for t in glusterd gluster glusterfs; do
			command -v "$t" >/dev/null 2>&1 || return 1
		done
		return 0
	fi
	return 1
}

up() {
	local n=$1 host i pid
	case $n in '' | *[!0-9]* | 0) die "up: N must be a positive number, not '$n'" ;; esac
	if [ ! -c /dev/fuse ] || ! grep -qw fuse /proc/filesystems; then
		echo "pool-fs: this kernel has no FUSE (/dev/fuse, fuse in /proc/filesystems): skipped" >&2
		exit 77
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "pool-fs: glusterd and its FUSE mounts need root: skipped" >&2
		exit 77
	fi
	mkdir -p "$D/glusterd" "$D/run" "$D/log" "$D/brick" || die "cannot create $D"
	if ! need_tools; then
		echo "pool-fs: GlusterFS (glusterd, gluster, glusterfs) is not installed and cannot be: skipped" >&2
		exit 77
	fi
	alive "$(pid_of "$D/glusterd.pid")" && die "a pool is already up in $D (run down first)"
	host=$(hostname)
	# A brick is named by host name: gluster refuses an address such as 127.0.0.1.
	getent hosts "$host" >/dev/null || die "the host name $host does not resolve (add it to /etc/hosts)"
	if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
		die "port $PORT is taken (another glusterd?): one pool per machine"
	fi
	trap 'echo "pool-fs: up failed; tearing down" >&2; down >&2' EXIT

	cat >"$D/glusterd.vol" <<-EOF
		volume management
		    type mgmt/glusterd
		    option working-directory $D/glusterd
		    option run-directory $D/run
		    option glusterd-sockfile $D/run/glusterd.socket
		    option transport-type socket
		    option transport.socket.listen-port $PORT
		    option transport.socket.read-fail-log off
		    option ping-timeout 0
		    option event-threads 1
		end-volume
	EOF
	run glusterd -N -f "$D/glusterd.vol" -l "$D/log/glusterd.log" --pid-file="$D/glusterd.pid"
	wait_until "$DEADLINE" "answer from glusterd" gl volume list || exit 1
	gl volume create "$VOL" "$host:$D/brick" force >/dev/null || die "volume create failed"
	# Client-side caches that serve a file replaced by rename on another
	# mount stale for up to a second (measured: docs/pool-storage.md).
	for o in performance.stat-prefetch performance.open-behind performance.quick-read; do
		gl volume set "$VOL" "$o" off >/dev/null || die "volume set $o off failed"
	done
	# Fencing: an fd whose lock the brick lost (brick restart, a lost
	# connection) fails with EBADFD for good, instead of being reopened
	# without its lock after the reconnect.
	gl volume set "$VOL" client.strict-locks on >/dev/null || die "volume set client.strict-locks on failed"
	gl volume start "$VOL" >/dev/null || die "volume start failed"
	wait_until "$DEADLINE" "brick online" brick_online || exit 1

	for i in $(seq 1 "$n"); do
		mkdir -p "$D/mnt$i"
		run glusterfs --volfile-server="$host" --volfile-id="$VOL" --log-file="$D/log/mnt$i.log" \
			--pid-file="$D/mnt$i.pid" "$D/mnt$i"
		wait_until "$DEADLINE" "mount $D/mnt$i" mounted "$D/mnt$i" || exit 1
		wait_until "$DEADLINE" "volume through $D/mnt$i" stat -f "$D/mnt$i" || exit 1
		pid=$(pid_of "$D/mnt$i.pid")
		alive "$pid" || die "the client of $D/mnt$i has no live pid"
	done
	trap - EXIT
}

brick_pid() {
	local p
	for p in "$D"/run/vols/"$VOL"/*.pid; do
		[ -f "$p" ] && pid_of "$p" && return 0
	done
	return 1
}

no_answer() { ! stat -f "$1"; }

# Returns once every live mount has seen the loss, so that storage-up's wait
# for an answer cannot be met by a client that has not noticed yet.
storage_down() {
	local pid m
	pid=$(brick_pid) && alive "$pid" || die "storage-down: no brick runs in $D"
	kill -KILL "$pid"
	wait_until "$DEADLINE" "end of the brick (pid $pid)" dead "$pid" || exit 1
	for m in $(live_mounts); do
		wait_until "$DEADLINE" "loss of the storage seen through $m" no_answer "$m" || exit 1
	done
}

# A mount answers again once statfs(2), which always asks the brick, succeeds.
storage_up() {
	local m
	gl volume start "$VOL" force >/dev/null || die "storage-up: volume start failed"
	wait_until "$DEADLINE" "brick online" brick_online || exit 1
	for m in $(live_mounts); do
		wait_until "$DEADLINE" "answer through $m" stat -f "$m" || exit 1
	done
}

down() {
	local m p pid pids sock="" brick_log
	[ -d "$D" ] || return 0
	# The brick's socket outside DIR, named on its command line: read before
	# the volume stop ends it.
	pid=$(brick_pid) && alive "$pid" &&
		sock=$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^-S$/{n;p}')
	for m in $(mount_points); do
		if mounted "$m"; then
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
		end_pid "$(pid_of "$m.pid")"
	done
	if alive "$(pid_of "$D/glusterd.pid")" && gl volume info "$VOL" >/dev/null 2>&1; then
		gl volume stop "$VOL" force >/dev/null 2>&1
		gl volume delete "$VOL" >/dev/null 2>&1
	fi
	for p in "$D"/run/vols/*/*.pid; do
		[ -f "$p" ] && end_pid "$(pid_of "$p")"
	done
	[ -z "$sock" ] || rm -f "$sock"
	end_pid "$(pid_of "$D/glusterd.pid")"
	pids=$(pool_pids)
	for p in $pids; do
		end_pid "$p"
	done
	brick_log=/var/log/glusterfs/bricks/$(echo "${D#/}/brick" | tr / -).log
	rm -f "$brick_log"
	for m in $(mount_points); do
		mounted "$m" && die "down: $m is still mounted"
	done
	pids=$(pool_pids)
	[ -z "$pids" ] || die "down: processes of this pool still run: $pids"
	return 0
}

[ $# -ge 2 ] || die "usage: pool-fs.sh up DIR N | down DIR | storage-down DIR | storage-up DIR"
D=$(realpath -m "$2")
case $1 in
up)
	[ $# -eq 3 ] || die "usage: pool-fs.sh up DIR N"
	up "$3"
	;;
down) down ;;
storage-down) storage_down ;;
storage-up) storage_up ;;
*) die "usage: pool-fs.sh up DIR N | down DIR | storage-down DIR | storage-up DIR" ;;
esac
