#!/usr/bin/env bash
# faults.sh - xroad-replicate under environment faults ("Reliability and security", SPEC §3-§5).
#
#   1. fault walk for PUSH: the receiver (the forked serve, which inherits XR_FAULT_*) is killed
#      (_exit) or fails with EIO at every counted filesystem step of a realistic X-Road change
#      set: never a torn file, the old tree before the commit point, the next run converges and
#      leaves no journal or staged file (crash.sh does the same for pull)
#   2. disk full on the receiver (a 2 MB tmpfs as DEST, a change set adding 4 MB): exit 11 or
#      23, DEST exactly as before, staging emptied; after the tmpfs grows the rerun converges
#   3. read-only DEST (tmpfs remounted ro): non-zero exit, a message naming DEST, nothing changed
#   4. an unreadable source file (chmod 000, client and forked sender run as user xroad): exit
#      23 like rsync, every other file transferred (rsync's result as the oracle), file named
#   5. a 50 MB source file rewritten in place every few ms while it is pulled: the received file
#      is one complete version the writer wrote (sha256 in the writer's log), or the run
#      reports it (23/24) and the old version stays
#   6. source files vanishing during the run: a listed file deleted before it is read gives 24
#      like rsync, everything else transferred; many files under a background deleter: 0 or 24,
#      every received file is an intact copy
#   7. network cut mid-transfer (veth between two network namespaces xr-flt-*, sshd in one, the
#      client in the other): --timeout=3 gives 30 within 3-6 s, DEST unchanged; link up, the
#      rerun converges
#   8. sshd stopped (and the serve killed) under pull --watch, the primary changed, sshd
#      restarted on the same port: the watcher reconnects and converges within ~10 s
# One "ok - NAME" / "not ok - NAME" line per case.  Root is needed for 2, 3, 4, 7, 8 (mounts,
# users, namespaces, sshd); they are skipped with a reason otherwise.
#   BUILD (default build)   KEEP_TMP=1 keeps the temp dir   FAULTS_ONLY="2 5": only those cases
#   FAULT_STRIDE (default 5; 1 walks every push fault point, ~80 s): case 1 walks every
#   STRIDE-th step plus both sides of the commit point and the last step
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/common.sh
. tests/lib/xroad_tree.sh
. tests/lib/faultwalk.sh
fault_builds faults || exit 1
export LC_ALL=C
ROOT=0
need_root && ROOT=1
chmod 0711 "$T"		# the runs as user xroad reach their directories below it

# --- cleanup: mounts, namespaces, background processes (by pid) ---------------------------
MOUNTS=()
NETNS=()
BG=()
faults_cleanup() {
	local p m n
	for p in "${BG[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${BG[@]}"; do
		wait "$p" 2>/dev/null
	done
	for m in "${MOUNTS[@]}"; do
		mountpoint -q "$m" && umount -l "$m"
	done
	for n in "${NETNS[@]}"; do
		ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$n" 2>/dev/null
	done
}
trap 'faults_cleanup; common_cleanup' EXIT

# want N: case N is to run (FAULTS_ONLY="2 5": only those; for debugging)
want() {
	[ -z "${FAULTS_ONLY:-}" ] || [[ " $FAULTS_ONLY " == *" $1 "* ]]
}




# files_listing DIR: tree_listing without directories (their mtimes are not compared)
files_listing() {
	tree_listing "$1" | awk -F'\t' '$2 != "d"'
}

# first_msg FILE: the first line of FILE, shortened
first_msg() {
	head -1 "$1" | cut -c1-150
}

# now_ms: milliseconds since the epoch
now_ms() {
	echo $((${EPOCHREALTIME/[,.]/} / 1000))
}

# tmpfs_mount DIR SIZE: a fresh tmpfs on DIR (unmounted on exit)
tmpfs_mount() {
	mkdir -p "$1" || return 1
	mountpoint -q "$1" && umount "$1"
	mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" || return 1
	MOUNTS+=("$1")
}

# the walked change set (faultwalk.sh): OLD -> NEW
OLD=$T/old NEW=$T/new
fault_change_set || { not_ok "faults: xroad_tree"; exit 1; }

# ============================================================================================
# 1. fault walk for push
# ============================================================================================
D=$T/d
OPTS=(-a --delete --no-W --commit-last signer/keyconf.xml)	# deltas, as over SSH
FW_XRF=$XRF FW_XR=$XR FW_OPTS=("${OPTS[@]}")
walk_push() {
	local steps commit_at stride mode n rc bad msg t0 walked
	rm -rf "$D" && cp -a "$OLD" "$D"
	XR_FAULT_TRACE=1 "$XRF" push "${OPTS[@]}" "$NEW/" "$D/" 2>"$T/trace" >/dev/null
	if [ $? != 0 ] || ! same_tree "$NEW" "$D"; then
		not_ok "1. push fault walk: reference run converges" "$(tail -5 "$T/trace")"
		return
	fi
	steps=$(grep -c '^fault-point ' "$T/trace")
	commit_at=$(grep '^fault-point ' "$T/trace" | grep -i 'journal' | grep -i 'rename' |
		head -1 | awk '{ print $2 }')
	if [ "$steps" -lt 20 ] || [ -z "$commit_at" ]; then
		not_ok "1. push fault walk: fault points found" \
			"steps=$steps commit point=${commit_at:-none}"
		return
	fi
	# a full walk takes ~80 s (85 steps): every STRIDE-th step plus both sides of the commit point and
	# the last step (FAULT_STRIDE=1: every step)
	stride=${FAULT_STRIDE:-5}
	case $B in *asan*) stride=$((stride * 2)) ;; esac
	local -a pts=()
	for ((n = 1; n <= steps; n++)); do
		if ((n % stride == 1 || stride == 1 || n == steps)) ||
			((n >= commit_at - 1 && n <= commit_at + 1)); then
			pts+=("$n")
		fi
	done
	for mode in kill fail; do
		bad=""
		walked=0
		t0=$(now_ms)
		for n in "${pts[@]}"; do
			walked=$((walked + 1))
			msg=$(fault_step push "$mode" "$n") || bad="$bad step $n: $msg;"
		done
		if [ -z "$bad" ]; then
			ok "1. push fault walk, $mode: $walked of $steps steps (stride $stride, commit point $commit_at): never torn, old state before the commit point, recovery converges, nothing left staged"
			printf '#   walked push/%s: %d survived: %d time: %d ms\n' "$mode" "$walked" \
				"$walked" "$(($(now_ms) - t0))"
		else
			not_ok "1. push fault walk, $mode at every step" \
				"$(printf '%s' "$bad" | tr ';' '\n' | head -20)"
			printf '#   walked push/%s: %d survived: %d\n' "$mode" "$walked" \
				"$((walked - $(printf '%s' "$bad" | tr -cd ';' | wc -c)))"
		fi
	done
}
want 1 && walk_push

# ============================================================================================
# 2. disk full on the receiver
# ============================================================================================
FULL_SRC=$T/full-src
cp -a "$OLD" "$FULL_SRC"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$FULL_SRC/signer/big-backup.bin"
xroad_edit_keyconf "$FULL_SRC" 1700000200 >/dev/null
echo "client-timeout-9=1" >>"$FULL_SRC/conf.d/local.ini"
touch -d @1700000201 "$FULL_SRC/conf.d/local.ini"

# disk_full MODE: MODE (pull|push) into a full tmpfs, then grown
disk_full() {
	local mode=$1 m=$T/mnt-full-$1 name rc why=() st
	name="2. disk full on the receiver ($mode, 4 MB into a 2 MB tmpfs): exit 11 or 23, DEST as before, staging removed; after growing the tmpfs the rerun converges"
	tmpfs_mount "$m" 2m || { not_ok "$name" "mount tmpfs failed"; return; }
	cp -a "$OLD" "$m/d"
	tree_listing "$m/d" >"$T/full.before"
	"$XR" "$mode" -a --delete "$FULL_SRC/" "$m/d/" >/dev/null 2>"$T/full.err"
	rc=$?
	case $rc in 11 | 23) ;; *) why+=("exit $rc, expected 11 or 23") ;; esac
	grep -qi 'No space left on device' "$T/full.err" ||
		why+=("no 'No space left on device' message")
	tree_diff "$T/full.before" "$m/d" >"$T/full.diff" ||
		why+=("DEST changed:" "$(head -6 "$T/full.diff")")
	st=$(clean_state "$m/d") || why+=("$st")
	mount -o remount,size=16m "$m" || why+=("remount size=16m failed")
	"$XR" "$mode" -a --delete "$FULL_SRC/" "$m/d/" >/dev/null 2>"$T/full.err2"
	local rc2=$?
	[ "$rc2" = 0 ] || why+=("rerun exit $rc2: $(first_msg "$T/full.err2")")
	tree_diff "$FULL_SRC" "$m/d" >"$T/full.diff2" ||
		why+=("not converged:" "$(head -6 "$T/full.diff2")")
	st=$(clean_state "$m/d") || why+=("after the rerun: $st")
	if [ "${#why[@]}" = 0 ]; then
		ok "$name"
		printf '#   %s: exit %s: %s\n' "$mode" "$rc" "$(first_msg "$T/full.err")"
	else
		not_ok "$name" "${why[@]}" "stderr: $(head -3 "$T/full.err")"
	fi
	umount "$m"
}

# ============================================================================================
# 3. read-only DEST
# ============================================================================================
# read_only MODE: MODE into a tmpfs remounted ro; rsync on the same DEST for comparison
read_only() {
	local mode=$1 m=$T/mnt-ro-$1 name rc rrc why=()
	name="3. read-only DEST ($mode): non-zero exit, the message names DEST, nothing changed"
	tmpfs_mount "$m" 8m || { not_ok "$name" "mount tmpfs failed"; return; }
	cp -a "$OLD" "$m/d"
	# a first run leaves the state dir as a real secondary has it
	"$XR" "$mode" -a --delete "$OLD/" "$m/d/" >/dev/null 2>&1
	tree_listing "$m/d" >"$T/ro.before"
	mount -o remount,ro "$m" || { not_ok "$name" "remount ro failed"; umount "$m"; return; }
	"$XR" "$mode" -a --delete "$NEW/" "$m/d/" >/dev/null 2>"$T/ro.err"
	rc=$?
	rsync -a --delete "$NEW/" "$m/d/" >/dev/null 2>"$T/ro.rsync.err"
	rrc=$?
	case $rc in 11 | 23) ;; *) why+=("exit $rc, expected 11 or 23 (rsync: $rrc)") ;; esac
	grep -qF -- "$m/d" "$T/ro.err" || why+=("the message does not name DEST ($m/d)")
	grep -qi 'read-only file system' "$T/ro.err" || why+=("no 'Read-only file system' in it")
	tree_diff "$T/ro.before" "$m/d" >"$T/ro.diff" ||
		why+=("DEST changed:" "$(head -6 "$T/ro.diff")")
	if [ "${#why[@]}" = 0 ]; then
		ok "$name"
	else
		not_ok "$name" "${why[@]}" "stderr: $(head -3 "$T/ro.err")"
	fi
	printf '#   %s: exit %s (rsync %s): %s\n' "$mode" "$rc" "$rrc" "$(first_msg "$T/ro.err")"
	umount "$m"
}

# ============================================================================================
# 4. unreadable source file (as user xroad)
# ============================================================================================
# as_xroad CMD...: CMD as user xroad, from /, no agent, 60 s cap
as_xroad() {
	(cd / && timeout -k 5 60 setpriv --reuid=xroad --regid=xroad --init-groups \
		env -u SSH_AUTH_SOCK HOME="$(getent passwd xroad | cut -d: -f6)" "$@")
}
unreadable() {
	local u=$T/u4 name rc rrc why=() f=conf.d/local.ini
	name="4. unreadable source file (chmod 000, as user xroad): exit 23 like rsync, every other file transferred, the file named"
	mkdir -p "$u/bin" && chown xroad:xroad "$u" && chmod 0755 "$u"
	install -m 0755 "$XR" "$u/bin/xroad-replicate"
	cp -a "$OLD" "$u/src"
	chmod 000 "$u/src/$f"
	as_xroad "$u/bin/xroad-replicate" pull -ai --delete "${XROAD_EXCLUDES[@]}" \
		"$u/src/" "$u/xr/" 2>"$T/u4.err" | grep -v '^created directory' | sort >"$T/u4.items"
	rc=${PIPESTATUS[0]}	# (-i lines compared below, without "created directory DEST")
	as_xroad rsync -ai --delete "${XROAD_EXCLUDES[@]}" "$u/src/" "$u/rs/" \
		2>"$T/u4.rsync.err" | grep -v '^created directory' | sort >"$T/u4.rsync.items"
	rrc=${PIPESTATUS[0]}
	[ "$rc" = 23 ] || why+=("exit $rc, expected 23")
	[ "$rrc" = 23 ] || why+=("rsync exit $rrc (expected 23: the oracle differs)")
	grep -qF "$f" "$T/u4.err" || why+=("the message does not name $f")
	[ ! -e "$u/xr/$f" ] || why+=("$f exists in DEST")
	# the file that was not sent is not reported as transferred (-i as rsync's)
	! grep -qF " $f" "$T/u4.items" || why+=("-i reports $f although it was not sent")
	diff -U0 "$T/u4.rsync.items" "$T/u4.items" >"$T/u4.idiff" ||
		why+=("-i output differs from rsync's:" "$(head -6 "$T/u4.idiff")")
	diff -U0 <(files_listing "$u/rs") <(files_listing "$u/xr") >"$T/u4.diff" ||
		why+=("DEST differs from rsync's:" "$(head -6 "$T/u4.diff")")
	[ "$(files_listing "$u/xr" | wc -l)" -gt 40 ] || why+=("too few files transferred")
	if [ "${#why[@]}" = 0 ]; then
		ok "$name"
	else
		not_ok "$name" "${why[@]}" "stderr: $(head -3 "$T/u4.err")"
	fi
	printf '#   exit %s (rsync %s): %s\n' "$rc" "$rrc" "$(first_msg "$T/u4.err")"
}

# ============================================================================================
# 5. a source file rewritten while it is read
# ============================================================================================
# The writer: VERSION k of PATH is "version %012d\n" + buffer k%3 up to a size of 49-50 MB,
# written in place in 1 MB chunks and truncated; before writing, "k size sha256" goes to LOG.
# Args: PATH LOG STOPFILE FIRST COUNT (COUNT 0: until STOPFILE exists).
WRITER_PY='
import hashlib, os, random, sys, time
path, log, stop, first, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(first)

bufs = [os.urandom(50 << 20) for _ in range(3)]
k = first
with open(log, "a") as L:
    while (count == 0 and not os.path.exists(stop)) or (count and k < first + count):
        size = (50 << 20) - rnd.randrange(0, 1 << 20)
        hdr = b"version %012d\n" % k
        body = memoryview(bufs[k % 3])[len(hdr):size]
        h = hashlib.sha256(hdr)
        h.update(body)
        L.write("%d %d %s\n" % (k, size, h.hexdigest()))
        L.flush()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o640)
        os.write(fd, hdr)
        for off in range(0, len(body), 1 << 20):
            os.write(fd, body[off:off + (1 << 20)])
        os.ftruncate(fd, size)
        os.close(fd)
        k += 1
        if count == 0 and k == first + 2:
            open(stop + ".ready", "w").close()
        if count == 0:
            time.sleep(rnd.uniform(0.001, 0.005))
'
changing() {
	local c=$T/chg name why=() rc wpid run sum before outcomes="" nv
	name="5. a 50 MB source file rewritten in place every few ms during pulls: never torn (a complete written version, or 23/24 and the old version kept)"
	if ! python3 -c 'import random; random.Random(1).uniform' 2>/dev/null; then
		skip "$name" "python3 (>= 3.9) not available for the writer"
		return
	fi
	mkdir -p "$c/src"
	cp -a "$OLD/conf.d" "$c/src/"
	python3 -c "$WRITER_PY" "$c/src/big.bin" "$c/log" "$c/stop" 0 1 ||
		{ not_ok "$name" "writer failed"; return; }
	cp -a "$c/src" "$c/dst"
	echo "changed" >>"$c/src/conf.d/local.ini"
	python3 -c "$WRITER_PY" "$c/src/big.bin" "$c/log" "$c/stop" 1 0 &
	wpid=$!
	BG+=("$wpid")
	for _ in $(seq 1 300); do
		[ -e "$c/stop.ready" ] && break
		sleep 0.05
	done
	for run in 1 2; do
		before=$(sha256sum <"$c/dst/big.bin" | cut -d' ' -f1)
		timeout 60 "$XR" pull -a --delete "$c/src/" "$c/dst/" >/dev/null 2>"$T/chg.err.$run"
		rc=$?
		sum=$(sha256sum <"$c/dst/big.bin" | cut -d' ' -f1)
		nv=$(awk -v s="$sum" '$3 == s { print $1; exit }' "$c/log")
		case $rc in
		0)
			[ -n "$nv" ] || why+=("run $run: exit 0 with a torn big.bin (sha $sum in no version)")
			outcomes="$outcomes run $run: exit 0, version ${nv:-TORN};"
			;;
		23 | 24)
			[ "$sum" = "$before" ] || why+=("run $run: exit $rc but big.bin changed" \
				"(version ${nv:-TORN})")
			outcomes="$outcomes run $run: exit $rc, old version kept ($(first_msg \
				"$T/chg.err.$run"));"
			;;
		*)
			why+=("run $run: exit $rc: $(first_msg "$T/chg.err.$run")")
			outcomes="$outcomes run $run: exit $rc;"
			;;
		esac
		cmp -s "$c/src/conf.d/local.ini" "$c/dst/conf.d/local.ini" ||
			why+=("run $run: conf.d/local.ini not transferred")
		local st
		st=$(clean_state "$c/dst") || why+=("run $run: $st")
	done
	touch "$c/stop"
	wait "$wpid"
	if [ "${#why[@]}" = 0 ]; then
		ok "$name"
	else
		not_ok "$name" "${why[@]}"
	fi
	printf '#  %s (%s versions written)\n' "$outcomes" "$(wc -l <"$c/log")"
}

# ============================================================================================
# 6. source files vanishing during the run
# ============================================================================================
BIG200=$T/big200.bin
if want 6 || want 7; then
	head -c $((200 * 1024 * 1024)) /dev/urandom >"$BIG200"
fi

# vanish_one TOOL: a 200 MB file sorted first, zzz-victim.txt deleted once the big file is
# being received (listed, not yet read); sets VRC and fills $T/van.TOOL.err
vanish_one() {
	local tool=$1 v=$T/van-$1 i p
	rm -rf "$v" && mkdir -p "$v/src" "$v/dst"
	cp "$BIG200" "$v/src/000-big.bin"
	for i in $(seq 1 20); do echo "file $i" >"$v/src/f$i.txt"; done
	echo "victim" >"$v/src/zzz-victim.txt"
	if [ "$tool" = xr ]; then
		"$XR" pull -a "$v/src/" "$v/dst/" >/dev/null 2>"$T/van.$tool.err" &
	else
		rsync -a "$v/src/" "$v/dst/" >/dev/null 2>"$T/van.$tool.err" &
	fi
	p=$!
	VSEEN=0
	for _ in $(seq 1 500); do
		if [ -n "$(find "$v/dst" -type f -size +1M 2>/dev/null | head -1)" ]; then
			rm -f "$v/src/zzz-victim.txt"
			VSEEN=1
			break
		fi
		kill -0 "$p" 2>/dev/null || break
		sleep 0.01
	done
	wait "$p"
	VRC=$?
}
vanish_listed() {
	local name why=() xrc i v=$T/van-xr
	name="6a. a listed source file deleted before it is read: exit 24 like rsync, the file named, everything else transferred"
	vanish_one xr
	xrc=$VRC
	if [ "$VSEEN" = 0 ]; then
		skip "$name" "the transfer finished before the file could be deleted"
	else
		vanish_one rsync
		[ "$xrc" = 24 ] || why+=("exit $xrc, expected 24")
		[ "$VRC" = 24 ] || why+=("rsync exit $VRC (the oracle differs)")
		grep -q 'zzz-victim.txt' "$T/van.xr.err" || why+=("the message does not name the file")
		cmp -s "$BIG200" "$v/dst/000-big.bin" || why+=("000-big.bin not transferred")
		for i in $(seq 1 20); do
			[ "$(cat "$v/dst/f$i.txt" 2>/dev/null)" = "file $i" ] ||
				why+=("f$i.txt not transferred")
		done
		[ ! -e "$v/dst/zzz-victim.txt" ] || why+=("zzz-victim.txt in DEST")
		if [ "${#why[@]}" = 0 ]; then
			ok "$name"
		else
			not_ok "$name" "${why[@]}" "stderr: $(head -3 "$T/van.xr.err")"
		fi
		printf '#   exit %s (rsync %s): %s\n' "$xrc" "$VRC" "$(first_msg "$T/van.xr.err")"
	fi
	rm -rf "$T/van-xr" "$T/van-rsync"
}

# many files, a background deleter
vanish_many() {
	local m=$T/many dpid rc bad name why=()
	name="6b. 3000 files, a background deleter during the pull: exit 0 or 24, every received file intact, every remaining file transferred"
	why=()
	mkdir -p "$m/src"
	(cd "$m/src" && mkdir d0 d1 d2 d3 d4 d5 && for i in $(seq 0 2999); do
		printf 'content of %d\n%0*d\n' "$i" $((i % 700)) 0 >"d$((i % 6))/f$i.txt"
	done)
	cp -a "$m/src" "$m/orig"
	python3 -c '
import os, random, sys, time
os.chdir(sys.argv[1])
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(".") for f in fs)
random.Random(7).shuffle(files)
for f in files[:1500]:
    os.unlink(f)
    time.sleep(0.0005)
' "$m/src" &
	dpid=$!
	BG+=("$dpid")
	"$XR" pull -a "$m/src/" "$m/dst/" >/dev/null 2>"$T/many.err"
	rc=$?
	wait "$dpid"
	case $rc in 0 | 24) ;; *) why+=("exit $rc: $(first_msg "$T/many.err")") ;; esac
	# every received file equals the original; every file still in SRC was received
	hashes "$m/orig" >"$T/many.orig.h"
	hashes "$m/dst" >"$T/many.dst.h"
	bad=$(comm -13 "$T/many.orig.h" "$T/many.dst.h" | head -3)
	[ -z "$bad" ] || why+=("not an intact copy: $bad")
	bad=$(comm -23 <(cd "$m/src" && find . -type f | sort) \
		<(cut -d' ' -f1 "$T/many.dst.h") | head -3)
	[ -z "$bad" ] || why+=("a remaining file was not transferred: $bad")
	if [ "$rc" = 24 ] && ! grep -qi 'vanished' "$T/many.err"; then
		why+=("exit 24 without a 'vanished' message")
	fi
	if [ "${#why[@]}" = 0 ]; then
		ok "$name"
	else
		not_ok "$name" "${why[@]}"
	fi
	printf '#   exit %s, %s files received, %s vanished messages\n' "$rc" \
		"$(find "$m/dst" -name .xroad-replicate -prune -o -type f -print | wc -l)" \
		"$(grep -ci 'vanished' "$T/many.err")"
}

# timed CMD...: runs CMD, then a "#   time: N ms" comment
timed() {
	local t0
	t0=$(now_ms)
	"$@"
	printf '#   time %s: %d ms\n' "$*" "$(($(now_ms) - t0))"
}
if [ "$ROOT" = 1 ]; then
	want 2 && timed disk_full pull
	want 2 && timed disk_full push
	want 3 && timed read_only pull
	want 3 && timed read_only push
	want 4 && timed unreadable
else
	skip "2. disk full on the receiver" "needs root (tmpfs mounts)"
	skip "3. read-only DEST" "needs root (tmpfs mounts)"
	skip "4. unreadable source file" "needs root (runs as user xroad)"
fi
want 5 && timed changing
want 6 && timed vanish_listed
want 6 && timed vanish_many


# ============================================================================================
# 7, 8: SSH (sshd.sh's users and keys; 7 in network namespaces, 8 on 127.0.0.1)
# ============================================================================================
if ! want 7 && ! want 8; then
	tests_done
	exit
fi
if [ "$ROOT" != 1 ]; then
	skip "7. network cut mid-transfer over SSH" "needs root (namespaces, sshd)"
	skip "8. sshd restarted under pull --watch" "needs root (sshd)"
	tests_done
	exit
fi
. tests/lib/sshd.sh
if ! sshd_start; then
	not_ok "7/8: sshd_start"
	tests_done
	exit 1
fi
BIN=$SSHD_BIN_DIR/xroad-replicate
install -m 0755 "$XR" "$BIN"
SW=$SSHD_DIR/w
mkdir -p "$SW" && chmod 0755 "$SW"
SEC=$SW/sec
mkdir -p "$SEC" && chown xroad:xroad "$SEC"
CLIENT_HOME=$(getent passwd xroad | cut -d: -f6)

# as_client CMD...: CMD as user xroad (the secondary), from /, 60 s cap
as_client() {
	(cd / && timeout -k 5 60 setpriv --reuid=xroad --regid=xroad --init-groups \
		env -u SSH_AUTH_SOCK HOME="$CLIENT_HOME" "$@")
}

# --- 7. network cut ------------------------------------------------------------------------
NS_S=xr-flt-s$$ NS_C=xr-flt-c$$
VS=xr-flt-vs VC=xr-flt-vc
NS_SSHD_PID=""
netns_setup() {
	ip netns add "$NS_S" || return 1
	NETNS+=("$NS_S")
	ip netns add "$NS_C" || return 1
	NETNS+=("$NS_C")
	ip link add "$VS" netns "$NS_S" type veth peer name "$VC" netns "$NS_C" || return 1
	ip -n "$NS_S" link set lo up && ip -n "$NS_C" link set lo up &&
		ip -n "$NS_S" addr add 10.232.0.1/24 dev "$VS" &&
		ip -n "$NS_C" addr add 10.232.0.2/24 dev "$VC" &&
		ip -n "$NS_S" link set "$VS" up && ip -n "$NS_C" link set "$VC" up || return 1
	# 2 Gbit/s: 200 MB take ~1 s, time enough to cut the link in the middle
	ip netns exec "$NS_S" tc qdisc add dev "$VS" root tbf rate 2gbit burst 1mb \
		latency 50ms 2>/dev/null
	# a second sshd on 10.232.0.1:2222 inside the server namespace (sshd.sh's config)
	sed -e 's/^Port .*/Port 2222/' -e '/^ListenAddress/d' \
		-e "s|^PidFile .*|PidFile $SSHD_DIR/sshd-ns.pid|" "$SSHD_CONFIG" >"$SSHD_DIR/sshd-ns.conf"
	sed -i '1i ListenAddress 10.232.0.1' "$SSHD_DIR/sshd-ns.conf"
	ip netns exec "$NS_S" /usr/sbin/sshd -D -e -f "$SSHD_DIR/sshd-ns.conf" \
		2>>"$SSHD_DIR/sshd-ns.log" </dev/null &
	NS_SSHD_PID=$!
	BG+=("$NS_SSHD_PID")
	for _ in $(seq 1 100); do
		[ -n "$(ip netns exec "$NS_S" ss -Htln 'sport = :2222')" ] && break
		sleep 0.05
	done
	[ -n "$(ip netns exec "$NS_S" ss -Htln 'sport = :2222')" ] || return 1
	KH_NS=$SSHD_CLIENT_DIR/known_hosts_ns
	echo "[10.232.0.1]:2222 $(cut -d' ' -f1-2 "$SSHD_DIR/ssh_host_ed25519_key.pub")" >"$KH_NS"
	chown xroad:xroad "$KH_NS" && chmod 0600 "$KH_NS"
}

# ns_pull TIMEOUT: pull from the namespaced sshd into $D7, as xroad, in the client namespace
ns_pull() {
	ip netns exec "$NS_C" timeout -k 5 60 setpriv --reuid=xroad --regid=xroad --init-groups \
		env -u SSH_AUTH_SOCK HOME="$CLIENT_HOME" "$BIN" pull \
		-e "ssh -p 2222 -i $CLIENT_KEY -o UserKnownHostsFile=$KH_NS -o BatchMode=yes" \
		--rsync-path="$BIN" -a --delete "${XROAD_EXCLUDES[@]}" --timeout="$1" \
		"$SSHD_USER@10.232.0.1:$P7/" "$D7/" >/dev/null
}

netcut() {
	local name why=() rc t0 dt p seen=0 st
	name="7. network cut mid-transfer over SSH (veth in namespaces, --timeout=3): exit 30 within 3-6 s, DEST unchanged; link up, the rerun converges"
	if ! netns_setup 2>"$T/ns.err"; then
		skip "$name" "cannot set up network namespaces: $(head -1 "$T/ns.err")"
		return
	fi
	P7=$SW/p7 D7=$SEC/d7
	xroad_tree "$P7" 3 >/dev/null
	chmod 0755 "$P7"
	ns_pull 10 2>"$T/ns.err0"
	rc=$?
	if [ "$rc" != 0 ]; then
		not_ok "$name" "the initial pull failed: exit $rc: $(head -3 "$T/ns.err0")"
		return
	fi
	cp "$BIG200" "$P7/big.bin"
	chown xroad:xroad "$P7/big.bin" && chmod 0640 "$P7/big.bin"
	tree_listing "$D7" >"$T/ns.before"
	ns_pull 3 2>"$T/ns.err1" &
	p=$!
	for _ in $(seq 1 1000); do
		if [ -n "$(find "$D7/.xroad-replicate" -type f -size +1M 2>/dev/null | head -1)" ]; then
			seen=1
			break
		fi
		kill -0 "$p" 2>/dev/null || break
		sleep 0.01
	done
	ip -n "$NS_C" link set "$VC" down
	t0=$(now_ms)
	wait "$p"
	rc=$?
	dt=$(($(now_ms) - t0))
	[ "$seen" = 1 ] || why+=("the transfer was never seen in progress")
	[ "$rc" = 30 ] || why+=("exit $rc, expected 30")
	{ [ "$dt" -ge 2500 ] && [ "$dt" -le 6500 ]; } || why+=("exit after $dt ms (expected 3-6 s)")
	tree_diff "$T/ns.before" "$D7" >"$T/ns.diff" ||
		why+=("DEST changed:" "$(head -5 "$T/ns.diff")")
	# the serve on the far side: ended by its own timeout or by us
	for st in $(sshd_descendants "$NS_SSHD_PID"); do kill "$st" 2>/dev/null; done
	ip -n "$NS_C" link set "$VC" up
	sleep 0.2
	t0=$(now_ms)
	ns_pull 10 2>"$T/ns.err2"
	local rc2=$? dt2=$(($(now_ms) - t0))
	[ "$rc2" = 0 ] || why+=("rerun exit $rc2: $(first_msg "$T/ns.err2")")
	cmp -s "$P7/big.bin" "$D7/big.bin" || why+=("big.bin not converged")
	st=$(clean_state "$D7") || why+=("after the rerun: $st")
	if [ "${#why[@]}" = 0 ]; then
		ok "$name"
	else
		not_ok "$name" "${why[@]}" "stderr: $(head -3 "$T/ns.err1")"
	fi
	printf '#   exit %s after %s ms: %s\n' "$rc" "$dt" "$(first_msg "$T/ns.err1")"
	printf "#   rerun: %s ms; all messages of the cut run: %s\n" "$dt2" "$(tr "\n" "|" <"$T/ns.err1")"
	rm -f "$P7/big.bin"
	kill "$NS_SSHD_PID" 2>/dev/null
}

# --- 8. sshd restarted under pull --watch ---------------------------------------------------
# expected_copy SRC OUT: what a pull with the guide's excludes makes of SRC
expected_copy() {
	rsync -a --delete "${XROAD_EXCLUDES[@]}" "$1/" "$2/"
}
# converged_within SECONDS SRC DEST: waits until DEST's files equal SRC's (excludes applied)
converged_within() {
	local end=$(($(now_ms) + $1 * 1000))
	expected_copy "$2" "$T/expect8"
	files_listing "$T/expect8" >"$T/expect8.l"
	while [ "$(now_ms)" -lt "$end" ]; do
		cmp -s "$T/expect8.l" <(files_listing "$3") && return 0
		sleep 0.2
	done
	diff -U0 "$T/expect8.l" <(files_listing "$3") | tail -n +3 | head -5
	return 1
}
watch_restart() {
	local name why=() wpid p8=$SW/p8 d8=$SEC/d8 t0 p
	name="8. sshd stopped and the serve killed under pull --watch, primary changed, sshd restarted: the watcher reconnects and converges within 10 s"
	xroad_tree "$p8" 4 >/dev/null
	chmod 0755 "$p8"
	(cd / && exec setpriv --reuid=xroad --regid=xroad --init-groups env -u SSH_AUTH_SOCK \
		HOME="$CLIENT_HOME" "$BIN" pull --watch -a --delete "${XROAD_EXCLUDES[@]}" \
		-e "ssh $SSH_OPTS" --rsync-path="$BIN" --timeout=10 \
		"$SSHD_USER@127.0.0.1:$p8/" "$d8/") >/dev/null 2>"$T/w8.err" &
	wpid=$!
	BG+=("$wpid")
	if ! converged_within 10 "$p8" "$d8" >"$T/w8.diff"; then
		not_ok "$name" "the initial sync did not converge" "$(cat "$T/w8.diff")" \
			"$(tail -3 "$T/w8.err")"
		return
	fi
	# stop sshd and kill its sessions (the serve) by pid
	for p in $(sshd_session_pids); do kill -KILL "$p" 2>/dev/null; done
	kill "$SSHD_PID" 2>/dev/null
	wait "$SSHD_PID" 2>/dev/null
	# the primary changes while the secondary cannot reach it
	xroad_edit_keyconf "$p8" >/dev/null
	xroad_add_key "$p8" >/dev/null
	echo "proxy-ui-api-timeout=90" >>"$p8/conf.d/local.ini"
	sleep 1.5
	/usr/sbin/sshd -D -e -f "$SSHD_CONFIG" 2>>"$SSHD_LOG" </dev/null &
	SSHD_PID=$!
	export SSHD_PID
	sshd_wait_listening || why+=("sshd did not restart on port $SSHD_PORT")
	t0=$(now_ms)
	converged_within 10 "$p8" "$d8" >"$T/w8.diff" ||
		why+=("not converged 10 s after the restart:" "$(cat "$T/w8.diff")")
	local dt=$(($(now_ms) - t0))
	kill -0 "$wpid" 2>/dev/null || why+=("the watcher exited")
	grep -qi 'reconnect' "$T/w8.err" || why+=("no reconnect logged")
	kill "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	if [ "${#why[@]}" = 0 ]; then
		ok "$name"
	else
		not_ok "$name" "${why[@]}" "watcher: $(tail -4 "$T/w8.err")"
	fi
	printf '#   converged %s ms after sshd came back; watcher: %s\n' "$dt" \
		"$(grep -i -m1 'reconnect' "$T/w8.err" | cut -c1-110)"
}

want 7 && timed netcut
want 8 && timed watch_restart

tests_done
