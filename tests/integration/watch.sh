#!/bin/bash
# watch.sh - the --watch modes end to end (SPEC §2, §5, §6): push --watch to two secondaries
# (one over the built-in SSH transport to a real sshd on 127.0.0.1, one local), pull --watch
# from a real sshd, under churn, outages, drift, inotify overflow, the pause flag, the
# signer's write patterns, and SIGTERM.
#
#   1. churn (creates, in-place writes, renames, deletes, nested dirs, dir renames) for ~10 s:
#      both secondaries equal the primary (owner, modes, mtimes, content)
#   2. the SSH secondary cut off mid-churn (its serve stopped with SIGSTOP, then killed): the
#      local one keeps receiving (a marker written during the outage arrives within 1 s);
#      the cut-off one converges after SIGCONT / after the reconnect
#   3. drift repair with --reconcile=2: a file deleted, one edited, one added by hand on the
#      secondary are repaired within ~3 s without touching the primary
#   4. inotify queue overflow (fs.inotify.max_queued_events=64, watcher stopped while 500
#      files appear): rescan, everything replicated, the watcher goes on
#   5. pull --watch with --pause-file: nothing applied while the flag exists, catch-up after
#   6. the signer's write patterns (keyconf.xml tmp+rename, slow in-place .p12 writes, the
#      PIN-change directory dance) with --commit-last signer/keyconf.xml: a checker on each
#      secondary (every ~2 ms) never sees keyconf.xml name a .p12 that is absent
#   7. latency from rename()/close() on the primary to the content on both secondaries
#      (informational "# latency" lines; fails only when a change never arrives)
#   8. SIGTERM: the watcher exits 0 within 2 s, its sessions end, no journal or staged file
# Runs as root (sshd, users, the sysctl); every client and every write on the primary runs
# as user xroad (setpriv), so owners compare exactly.  Without root only the local cases run.
#   BUILD (default build)   KEEP_TMP=1 / SSHD_KEEP=1 keep the temp dirs
set -u

# --- sub-modes, run as user xroad by the script itself ---------------------------------------
# Process creation is slow on some test VMs (tens of ms per fork+exec), so everything that must
# happen fast (the churn, the signer's back-to-back renames, slow in-place writes) runs in
# one perl process, and the polling loops below fork nothing.

# CHURN_PL DIR SECONDS SEED [light]: random creates, in-place writes (two writes between open
# and close), renames, deletes, chmods, mtime changes, new nested directories (a file written
# into them at once), directory renames and deletions below DIR, in bursts of 1-10 operations
# 5-35 ms apart (light: 1-3 operations 20-60 ms apart), for SECONDS; prints "churn ops N".
CHURN_PL='
use strict; use warnings;
use Time::HiRes qw(time sleep utime);
use File::Path qw(remove_tree);
my ($dir, $secs, $seed, $rate) = @ARGV;
my $light = ($rate // "") eq "light";
srand($seed);
umask 027;
chdir $dir or die "$dir: $!";
mkdir "churn";
my @files = grep { -f } qw(conf.d/local.ini conf.d/proxy.ini services/signer.conf
	jetty/clientproxy.xml);
my @dirs = ("churn");
my $ops = 0;
my $end = time + $secs;
sub content {
	my $n = int(rand(400));
	join(" ", "$_[0] $ops", map { int(rand(1e6)) } 0 .. $n) . "\n";
}
sub create { open(my $fh, ">", $_[0]) or return 0; print $fh content($_[0]); close $fh }
sub pick { $_[int(rand(@_))] }
while (time < $end) {
	for (1 .. 1 + int(rand($light ? 3 : 10))) {
		my $op = int(rand(100));
		my ($nf, $nd) = (scalar @files, scalar @dirs);
		if ($op < 30 || $nf < 10) {
			my $f = pick(@dirs) . "/f$ops-" . int(rand(1e5));
			push @files, $f if create($f);
		} elsif ($op < 50) {
			my $f = pick(@files);
			if (open(my $fh, "+<", $f)) {
				syswrite $fh, "in place $ops\n";
				sleep(0.002) if rand() < 0.2;
				syswrite $fh, content($f);
				close $fh;
			}
		} elsif ($op < 62) {
			my $i = int(rand($nf));
			my $new = pick(@dirs) . "/r$ops-" . int(rand(1e5));
			$files[$i] = $new if rename $files[$i], $new;
		} elsif ($op < 74) {
			my $i = int(rand($nf));
			unlink $files[$i];
			splice @files, $i, 1;
		} elsif ($op < 84) {
			my $d = pick(@dirs) . "/n$ops";
			if (mkdir($d) && mkdir("$d/sub")) {
				push @dirs, $d, "$d/sub";
				push @files, "$d/sub/x$ops" if create("$d/sub/x$ops");
			}
		} elsif ($op < 88 && $nd > 1) {
			my $d = $dirs[1 + int(rand($nd - 1))];
			my $new = "churn/m$ops-" . int(rand(1e5));
			if (rename $d, $new) { s{^\Q$d\E(?=/|$)}{$new} for @dirs, @files }
		} elsif ($op < 91 && $nd > 1) {
			my $d = $dirs[1 + int(rand($nd - 1))];
			remove_tree($d);
			@dirs = grep { !m{^\Q$d\E(/|$)} } @dirs;
			@files = grep { !m{^\Q$d\E/} } @files;
		} elsif ($op < 95) {
			chmod(rand() < 0.5 ? 0600 : 0640, pick(@files));
		} else {
			my $t = 1700000000 + rand(1e6);
			utime $t, $t, pick(@files);
		}
		$ops++;
	}
	sleep($light ? 0.02 + rand(0.04) : 0.005 + rand(0.03));
}
print "churn ops $ops\n";
'

# HALVES_PL FILE SCRATCH: writes SCRATCH's bytes into FILE in place like a slow writer (open,
# first half, 50 ms, second half, close).
HALVES_PL='
use strict; use Time::HiRes qw(sleep);
my ($file, $scratch) = @ARGV;
open(my $in, "<:raw", $scratch) or die "$scratch: $!";
local $/; my $data = <$in>;
my $half = int(length($data) / 2);
open(my $fh, ">:raw", $file) or die "$file: $!";
syswrite $fh, $data, $half;
sleep(0.05);
syswrite $fh, $data, length($data) - $half, $half;
close $fh or die "$file: $!";
'

# signer_ops DIR SCRATCHDIR ROUNDS: the signer's write patterns (XROAD.md), ROUNDS times:
# keyconf.xml re-saved and edited (tmp+rename), a new key (.p12 written in place in two
# halves, then keyconf.xml naming it), an existing .p12 rewritten in place in two halves, and
# a PIN change (softtoken-<rand>/ filled, then back to back: softtoken -> .softtoken.bak,
# softtoken-<rand> -> softtoken, backup removed).  Prints "signer ops: N keys added".
signer_ops() {
	local dir=$1 scratch=$2 rounds=$3 r tmp info id k iv size st rnd f n=0
	umask 0027
	st=$dir/signer
	for ((r = 0; r < rounds; r++)); do
		xroad_resave_keyconf "$dir" || return 1
		xroad_edit_keyconf "$dir" || return 1
		# a new key, as xroad_add_key but with a slow in-place .p12 write
		tmp=$st/tmpconf$((RANDOM * 32768 + RANDOM)).tmp
		info=$( (umask 0007 && awk -v mode=addkey "$XR_AWK" <"$st/keyconf.xml" \
			>"$tmp") 2>&1) || return 1
		read -r id k iv size <<<"$info"
		xr_stream "$k$iv" | head -c "$size" >"$scratch/p12"
		perl -e "$HALVES_PL" "$st/softtoken/$id.p12" "$scratch/p12" || return 1
		xr_replace_atomic "$st/keyconf.xml" "$tmp" "$(xr_now)" || return 1
		n=$((n + 1))
		# an existing key re-written in place, slowly
		for f in "$st/softtoken/"*.p12; do
			head -c 2650 /dev/urandom >"$scratch/p12"
			perl -e "$HALVES_PL" "$f" "$scratch/p12" || return 1
			break
		done
		# PIN change: every .p12 re-encrypted into softtoken-<random>/, then the swap
		rnd=softtoken-$RANDOM$RANDOM
		mkdir "$st/$rnd" || return 1
		for f in "$st/softtoken/"*.p12 "$st/softtoken/.softtoken.p12"; do
			head -c "$(stat -c %s -- "$f")" /dev/urandom >"$st/$rnd/${f##*/}"
		done
		perl -e 'use File::Path qw(remove_tree);
			my ($st, $rnd) = @ARGV;
			rename("$st/softtoken", "$st/.softtoken.bak") or die "rename: $!";
			rename("$st/$rnd", "$st/softtoken") or die "rename: $!";
			remove_tree("$st/.softtoken.bak");' "$st" "$rnd" || return 1
		sleep 0.1
	done
	echo "signer ops: $n keys added"
}

case ${1:-} in
--signer-ops)
	. "$(dirname "$0")/../lib/xroad_tree.sh"
	signer_ops "$2" "$3" "$4"
	exit
	;;
esac
# --- setup -------------------------------------------------------------------------------------

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
SELF=$PWD/tests/integration/watch.sh
. tests/lib/common.sh
. tests/lib/sshd.sh
. tests/lib/xroad_tree.sh
export LC_ALL=C

if [ ! -x "$BUILD/xroad-replicate" ]; then
	not_ok "watch: $BUILD/xroad-replicate missing (make all)"
	exit 1
fi

ROOT=0
need_root && ROOT=1
AS=()
if [ "$ROOT" = 1 ]; then
	if ! sshd_start; then
		not_ok "watch: sshd_start"
		exit 1
	fi
	W=$SSHD_DIR/w
	BIN=$SSHD_BIN_DIR/xroad-replicate
	AS=(setpriv --reuid=xroad --regid=xroad --init-groups env -u SSH_AUTH_SOCK)
	printf '%s\n' 'leak:BN_new' >"$SSHD_BIN_DIR/lsan.supp"
	chmod 0644 "$SSHD_BIN_DIR/lsan.supp"
	export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$SSHD_BIN_DIR/lsan.supp"
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
else
	W=$T/w
	BIN=$T/bin/xroad-replicate
	mkdir -p "$T/bin"
fi
# a private copy: every process of this test is found by /proc/PID/exe
install -m 0755 "$BUILD/xroad-replicate" "$BIN"
mkdir -p "$W" && chmod 0755 "$W"
LAT=$BUILD/tests/xr_latency
if [ ! -x "$LAT" ]; then
	LAT=$W/xr_latency
	cc -std=c11 -D_GNU_SOURCE -O2 -o "$LAT" tests/tools/xr_latency.c 2>/dev/null || LAT=""
else
	install -m 0755 "$LAT" "$W/xr_latency"
	LAT=$W/xr_latency
fi

H=127.0.0.1
E="ssh ${SSH_OPTS:-}"
exec {NAP_FD}<> <(:)	# read -t on it: a sleep without a process
BG_PIDS=()		# every background process we start (watchers, churn, checkers)
SYSCTL_SAVED=""
INOTIFY_Q=/proc/sys/fs/inotify/max_queued_events

# Prints the pids of the processes running our copy of the binary (clients, forked local
# serves, serves started by sshd).
our_procs() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$BIN" ] && echo "${p#/proc/}"
	done
}

# alive PID: PID runs (a zombie does not count).
alive() {
	kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]
}

# Prints pid and all its descendants.
tree_pids() {
	local c
	echo "$1"
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		tree_pids "$c"
	done
}

# Kills every background process and every process of our binary (EXIT trap); restores the
# inotify sysctl.
watch_cleanup() {
	local p
	[ -n "$SYSCTL_SAVED" ] && echo "$SYSCTL_SAVED" >"$INOTIFY_Q"
	for p in "${BG_PIDS[@]}" $(our_procs); do
		kill -CONT "$p" 2>/dev/null
		kill -TERM "$p" 2>/dev/null
	done
	sleep 0.3
	for p in "${BG_PIDS[@]}" $(our_procs); do
		kill -KILL "$p" 2>/dev/null
	done
	# only our jobs: sshd is a child too, and sshd_stop ends it after this
	[ "${#BG_PIDS[@]}" -gt 0 ] && wait "${BG_PIDS[@]}" 2>/dev/null
}
old_trap=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
# shellcheck disable=SC2064
trap "watch_cleanup; ${old_trap:-:}" EXIT

# phase NAME: a comment line with the time since the script started (the budget is ~120 s).
START_US=${EPOCHREALTIME/[.,]/}
phase() {
	local t=${EPOCHREALTIME/[.,]/}
	printf '# --- %s (t=%d s)\n' "$1" $(((t - START_US) / 1000000))
}

# as_client CMD...: CMD as user xroad (when root), exec'd in place (no runuser in between).
as_client() {
	"${AS[@]}" "$@"
}

# mkdir_client DIR...: directories owned by the client user.
mkdir_client() {
	mkdir -p "$@" || return 1
	[ "$ROOT" = 1 ] && chown xroad:xroad "$@"
	return 0
}

# now_ms: monotonic-enough wall clock in milliseconds.
now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

# start_bg NAME CMD...: starts CMD as the client user in the background; its pid in BGPID
# (setpriv and env exec, so that is CMD's own pid), stdout/stderr in $W/NAME.out/.err.
start_bg() {
	local name=$1
	shift
	"${AS[@]}" "$@" >"$W/$name.out" 2>"$W/$name.err" </dev/null &
	BGPID=$!
	BG_PIDS+=("$BGPID")
}

# filtered DIR: tree_listing of DIR without what the guide's excludes leave out
# (db.properties and *.tmp anywhere, /conf.d/node.ini, /postgresql, /globalconf, /gpghome).
filtered() {
	tree_listing "$1" | awk 'BEGIN { FS = OFS = "\t" }
		{ n = split($1, c, "/"); b = c[n] }
		b == "db.properties" || b ~ /\.tmp$/ { next }
		$1 == "conf.d/node.ini" || $1 ~ /^(postgresql|globalconf|gpghome)(\/|$)/ { next }
		{ print }'
}

# same_as SRC DEST: the filtered listing of SRC equals DEST's listing; prints the diff's
# first lines when not.
same_as() {
	local d
	[ -d "$2" ] || { echo "$2: absent"; return 1; }
	d=$(diff -U0 --label primary --label secondary <(filtered "$1" 2>/dev/null) \
		<(tree_listing "$2" 2>/dev/null)) &&
		return 0
	printf '%s\n' "$d" | head -n 16
	return 1
}

# converge SECONDS SRC DEST...: polls until every DEST equals SRC (filtered); prints the
# elapsed ms on success, the remaining differences on failure.
converge() {
	local secs=$1 src=$2 t0 d ok_all out limit
	shift 2
	limit=$((${secs%.*} * 1000))
	[ "${secs#*.}" != "$secs" ] && limit=$((limit + ${secs#*.} * 100))
	t0=$(now_ms)
	while :; do
		ok_all=1
		out=""
		for d in "$@"; do
			if ! out+=$(same_as "$src" "$d"); then
				ok_all=0
				out+=$'\n'
				break
			fi
		done
		if [ "$ok_all" = 1 ]; then
			echo "$(($(now_ms) - t0))"
			return 0
		fi
		if (($(now_ms) - t0 > limit)); then
			printf 'not converged after %s s (%s):\n%s\n' "$secs" "$d" "$out"
			return 1
		fi
		sleep 0.2
	done
}

# wait_files SECONDS FILE...: polls (5 ms, forking nothing) until every FILE exists; WAIT_MS
# receives the elapsed ms, WAIT_LIST each FILE's arrival in ms ("never" when it did not);
# returns 1 after SECONDS.
wait_files() {
	local limit=$(($1 * 1000)) t0 t f left
	local -A got=()
	shift
	t0=${EPOCHREALTIME/[.,]/}
	while :; do
		t=${EPOCHREALTIME/[.,]/}
		WAIT_MS=$(((t - t0) / 1000))
		left=0
		for f in "$@"; do
			[ -n "${got[$f]:-}" ] && continue
			if [ -e "$f" ]; then got[$f]=$WAIT_MS; else left=1; fi
		done
		[ "$left" = 0 ] && break
		((WAIT_MS > limit)) && break
		read -r -t 0.005 -u "$NAP_FD"
	done
	WAIT_LIST=""
	for f in "$@"; do
		WAIT_LIST+=" ${got[$f]:-never}"
	done
	WAIT_LIST=${WAIT_LIST# }
	[ "$left" = 0 ]
}

# wait_file SECONDS FILE: wait_files for one file.
wait_file() {
	wait_files "$@"
}

# stats MS...: "p50=X max=Y" of the numbers given (nearest rank).
stats() {
	local -a v
	mapfile -t v < <(printf '%s\n' "$@" | grep -x '[0-9]*' | sort -n)
	[ "${#v[@]}" -gt 0 ] || { echo "none"; return; }
	echo "n=${#v[@]} p50=${v[$(((${#v[@]} + 1) / 2 - 1))]} max=${v[-1]} ms"
}

# mark FILE: writes FILE on the primary at once (a builtin, no process), as root if we are;
# chown_marks later gives the marks to the client user.
MARKS=()
mark() {
	echo "marker $1" >"$1" && MARKS+=("$1")
}
chown_marks() {
	[ "$ROOT" = 1 ] && [ "${#MARKS[@]}" -gt 0 ] && chown xroad:xroad "${MARKS[@]}"
	MARKS=()
}

# ssh_serve_pid: the serve process sshd started for our binary (newest).
ssh_serve_pid() {
	local p last=""
	for p in $(sshd_session_pids); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$BIN" ] && last=$p
	done
	echo "$last"
}

# state_clean DEST: no journal, journal.tmp or staged file in DEST's state dir; prints what
# is left otherwise.
state_clean() {
	local s=$1/.xroad-replicate left
	[ -d "$s" ] || return 0
	left=$(find "$s" -mindepth 1 \( -name journal -o -name journal.tmp \
		-o -path "$s/stage/*" \) -print 2>/dev/null)
	[ -z "$left" ] && return 0
	printf 'left behind: %s\n' "$left" | head -n 8
	return 1
}

# stop_watch PID [SECONDS]: SIGTERM to PID only; waits up to SECONDS (default 2) for it and
# for every process of its tree to be gone.  Sets STOP_RC (exit status or "running"), STOP_MS,
# STOP_LEFT (pids still alive afterwards; those are then killed).
stop_watch() {
	local pid=$1 secs=${2:-2} t0 pids p
	pids=$(tree_pids "$pid")
	t0=$(now_ms)
	kill -TERM "$pid" 2>/dev/null
	STOP_RC=running
	while (($(now_ms) - t0 <= secs * 1000)); do
		if ! alive "$pid"; then
			wait "$pid" 2>/dev/null
			STOP_RC=$?
			break
		fi
		sleep 0.02
	done
	STOP_MS=$(($(now_ms) - t0))
	# the rest of the tree (forked senders, local serves) should be gone as well by now
	while (($(now_ms) - t0 <= secs * 1000)); do
		STOP_LEFT=""
		for p in $pids; do
			alive "$p" && STOP_LEFT+=" $p"
		done
		[ -z "$STOP_LEFT" ] && break
		sleep 0.02
	done
	STOP_LEFT=""
	for p in $pids; do
		if alive "$p"; then
			STOP_LEFT+=" $p($(ps -o args= -p "$p" | cut -c1-60))"
		fi
	done
	if [ "$STOP_RC" = running ]; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null
	done
}

# errtail NAME: the last lines of a background process's stderr, for not_ok details.
errtail() {
	tail -n 8 "$W/$1.err" 2>/dev/null
}

S=$W/sec
mkdir_client "$S" "$W/scratch"
P=$W/primary
xroad_tree "$P" 5 >/dev/null || { not_ok "watch: xroad_tree"; exit 1; }
[ "$ROOT" = 1 ] && chown xroad:xroad "$P"
SA=$S/a			# local secondary
SB=$S/b			# SSH secondary (local when not root)
if [ "$ROOT" = 1 ]; then
	DEST_B=xroad@$H:$SB
	SSHARGS=(-e "$E" --rsync-path "$BIN")
else
	DEST_B=$SB
	SSHARGS=()
fi
PUSH_OPTS=(-a --delete "${XROAD_EXCLUDES[@]}" --commit-last signer/keyconf.xml)

# === 1. churn, push --watch to two secondaries ==============================================
phase "1. churn, push --watch to two secondaries"

start_bg watchA "$BIN" push --watch -v "${SSHARGS[@]}" "${PUSH_OPTS[@]}" "$P/" "$SA" "$DEST_B"
WA=$BGPID
name="1. push --watch: initial full change set to both secondaries (local and ${DEST_B%%:*})"
if d=$(converge 15 "$P" "$SA" "$SB"); then
	ok "$name"
	printf '#   converged after %s ms\n' "$d"
else
	not_ok "$name" "$d" "$(errtail watchA)"
fi

# markers written once a second during the churn: how far behind the secondaries run
start_bg churn1 perl -e "$CHURN_PL" "$P" 10 11
CH=$BGPID
arrivals_a=()
arrivals_b=()
for i in 1 2 3 4 5 6 7 8; do
	sleep 1
	mark "$P/churn/marker-$i"
	wait_files 5 "$SA/churn/marker-$i" "$SB/churn/marker-$i"
	arrivals_a+=("${WAIT_LIST% *}")
	arrivals_b+=("${WAIT_LIST#* }")
done
wait "$CH"
chown_marks
churn_out=$(cat "$W/churn1.out")
printf '# latency under churn (marker -> secondary a): %s\n' "$(stats "${arrivals_a[@]}")"
printf '# latency under churn (marker -> secondary b): %s\n' "$(stats "${arrivals_b[@]}")"
name="1. churn for 10 s ($churn_out, $(find "$P" | wc -l) entries now):"
name+=" both secondaries equal the primary within 5 s"
if d=$(converge 5 "$P" "$SA" "$SB"); then
	ok "$name"
	printf '#   quiescent after %s ms\n' "$d"
else
	not_ok "$name" "$d" "$(errtail watchA)"
fi
name="1. the watcher is still running after the churn"
if kill -0 "$WA" 2>/dev/null; then ok "$name"; else not_ok "$name" "$(errtail watchA)"; fi

# === 2. one secondary cut off mid-churn =====================================================
phase "2. one secondary cut off mid-churn"

# serve_b: the serve process of the second secondary's session (sshd's child, or when not
# root the last local serve of the watcher's tree).
serve_b() {
	if [ "$ROOT" = 1 ]; then
		ssh_serve_pid
	else
		tree_pids "$WA" | tail -n 1
	fi
}

start_bg churn2 perl -e "$CHURN_PL" "$P" 8 22 light
CH=$BGPID
sleep 1.5
SPID=$(serve_b)
name="2a. SSH secondary stopped (SIGSTOP on its serve): marker reaches the other within 1 s"
if [ -z "$SPID" ]; then
	not_ok "$name" "no serve process for the SSH secondary found"
else
	kill -STOP "$SPID"
	sleep 0.5
	mark "$P/marker-outage-1"
	if wait_file 1 "$SA/marker-outage-1"; then
		ok "$name"
		printf '#   arrived after %s ms\n' "$WAIT_MS"
	else
		not_ok "$name" "not on the healthy secondary after $WAIT_MS ms" "$(errtail watchA)"
	fi
	chown_marks
	name="2a. ... and the stopped secondary did not get it meanwhile (it really was cut off)"
	if [ ! -e "$SB/marker-outage-1" ]; then ok "$name"; else not_ok "$name"; fi
	sleep 2
	kill -CONT "$SPID"
	name="2a. stopped secondary resumed (SIGCONT after ~3 s): has the marker within 3 s"
	if wait_file 3 "$SB/marker-outage-1"; then
		ok "$name"
		printf '#   arrived %s ms after SIGCONT\n' "$WAIT_MS"
	else
		not_ok "$name" "$(errtail watchA)"
	fi
fi
sleep 0.5
SPID=$(serve_b)
name="2b. SSH secondary's session killed (SIGKILL on its serve): marker reaches the other in 1 s"
if [ -z "$SPID" ]; then
	not_ok "$name" "no serve process for the SSH secondary found"
else
	kill -KILL "$SPID"
	mark "$P/marker-outage-2"
	if wait_file 1 "$SA/marker-outage-2"; then
		ok "$name"
		printf '#   arrived after %s ms\n' "$WAIT_MS"
	else
		not_ok "$name" "not on the healthy secondary after $WAIT_MS ms" "$(errtail watchA)"
	fi
	chown_marks
	name="2b. the killed secondary's session reconnects (backoff 1 s): marker within 5 s"
	if wait_file 5 "$SB/marker-outage-2"; then
		ok "$name"
		printf '#   arrived after %s ms\n' "$WAIT_MS"
	else
		not_ok "$name" "$(errtail watchA)"
	fi
fi
wait "$CH"
name="2. after the outages and the churn both secondaries equal the primary within 5 s"
if d=$(converge 5 "$P" "$SA" "$SB"); then
	ok "$name"
	printf '#   quiescent after %s ms\n' "$d"
else
	not_ok "$name" "$d" "$(errtail watchA)"
fi
name="2. the watcher logged the lost session and reconnected"
if grep -q "reconnecting in" "$W/watchA.err" && kill -0 "$WA" 2>/dev/null; then
	ok "$name"
else
	not_ok "$name" "$(errtail watchA)"
fi

# === 7. latency ==================================================================================
phase "7. latency"

# the churned tree (thousands of entries); 7b measures an X-Road-sized tree (case 6)
name="7a. latency, churned tree ($(find "$P" | wc -l) entries): 20 renames reach both secondaries"
if [ -z "$LAT" ]; then
	skip "$name" "xr_latency not built (make build-tests)"
elif as_client "$LAT" -n 20 -g 20 "$P" latency.txt "$SA" "$SB" >"$W/lat1.out" \
	2>"$W/lat1.err"; then
	ok "$name"
	sed 's/^# latency /# latency 7a /' "$W/lat1.out"
else
	not_ok "$name" "$(tail -n 5 "$W/lat1.err")"
	cat "$W/lat1.out"
fi

# === 8a. SIGTERM, two destinations ==========================================================
phase "8a. SIGTERM, two destinations"

start_bg churn8 perl -e "$CHURN_PL" "$P" 2 33
CH=$BGPID
sleep 1
stop_watch "$WA" 2
wait "$CH"
name="8a. SIGTERM to push --watch with two DESTs (mid-churn): exit 0 within 2 s, no process left"
if [ "$STOP_RC" = 0 ] && [ -z "$STOP_LEFT" ]; then
	ok "$name"
	printf '#   exited after %s ms\n' "$STOP_MS"
else
	not_ok "$name" "exit status $STOP_RC after $STOP_MS ms" \
		"still running 2 s after SIGTERM to $WA:${STOP_LEFT:- none}"
fi
sleep 0.5
name="8a. no journal or staged file left on either secondary"
if d=$(state_clean "$SA") && d2=$(state_clean "$SB"); then
	ok "$name"
else
	not_ok "$name" "$d" "${d2:-}"
fi

# === 3. drift repair ==============================================================================
phase "3. drift repair"

P3=$W/p3
xroad_tree "$P3" 6 >/dev/null && [ "$ROOT" = 1 ] && chown xroad:xroad "$P3"
S3=$S/drift
start_bg watch3 "$BIN" push --watch --reconcile=2 "${PUSH_OPTS[@]}" "$P3/" "$S3"
W3=$BGPID
if ! d=$(converge 10 "$P3" "$S3"); then
	not_ok "3. drift: initial sync" "$d" "$(errtail watch3)"
fi
before=$(tree_listing "$P3")
rm -f "$S3/conf.d/proxy.ini"
echo "edited by hand" >>"$S3/services/signer.conf"
chmod 0600 "$S3/jetty/clientproxy.xml"
echo stray >"$S3/stray.ini"
[ "$ROOT" = 1 ] && chown xroad:xroad "$S3/stray.ini"
name="3. drift (deleted, edited, chmod'ed, stray file) repaired by --reconcile=2 within 3.5 s"
if d=$(converge 3.5 "$P3" "$S3"); then
	ok "$name"
	printf '#   repaired after %s ms\n' "$d"
else
	not_ok "$name" "$d" "$(errtail watch3)"
fi
name="3. the primary was not touched by the repair"
if [ "$before" = "$(tree_listing "$P3")" ]; then ok "$name"; else not_ok "$name"; fi

# === 8b. SIGTERM, one destination ===============================================================
phase "8b. SIGTERM, one destination"

start_bg churn8b perl -e "$CHURN_PL" "$P3" 2 44
CH=$BGPID
sleep 1
stop_watch "$W3" 2
wait "$CH"
name="8b. SIGTERM to push --watch with one DEST (mid-churn): exit 0 within 2 s, no process left"
if [ "$STOP_RC" = 0 ] && [ -z "$STOP_LEFT" ]; then
	ok "$name"
	printf '#   exited after %s ms\n' "$STOP_MS"
else
	not_ok "$name" "exit status $STOP_RC after $STOP_MS ms" \
		"still running after 2 s:${STOP_LEFT:- none}" "$(errtail watch3)"
fi
name="8b. no journal or staged file left on the secondary"
if d=$(state_clean "$S3"); then ok "$name"; else not_ok "$name" "$d"; fi

# === 4. inotify queue overflow ====================================================================
phase "4. inotify queue overflow"

name="4. overflow"
if [ "$ROOT" != 1 ] || [ ! -w "$INOTIFY_Q" ]; then
	skip "$name" "needs root to lower $INOTIFY_Q"
else
	P4=$W/p4
	S4=$S/overflow
	mkdir_client "$P4" "$P4/many"
	echo seed >"$P4/seed.txt" && chown xroad:xroad "$P4/seed.txt"
	SYSCTL_SAVED=$(cat "$INOTIFY_Q")
	echo 64 >"$INOTIFY_Q"
	start_bg watch4 "$BIN" push --watch -vv -a --delete "$P4/" "$S4"
	W4=$BGPID
	# the watch is opened after the initial change set: wait for it, then for the watch
	if ! d=$(converge 10 "$P4" "$S4"); then
		not_ok "4. overflow: initial sync" "$d" "$(errtail watch4)"
	fi
	sleep 0.3
	echo "$SYSCTL_SAVED" >"$INOTIFY_Q"
	SYSCTL_SAVED=""
	# the watcher cannot read while 500 files appear: its 64-event queue overflows
	kill -STOP "$W4"
	as_client bash -c 'for i in $(seq 1 500); do echo "file $i" >"$1/many/f$i"; done' _ "$P4"
	kill -CONT "$W4"
	name="4. overflow (max_queued_events=64, 500 files created): all replicated within 5 s"
	if d=$(converge 5 "$P4" "$S4"); then
		ok "$name"
		printf '#   replicated after %s ms\n' "$d"
	else
		not_ok "$name" "$d" "$(errtail watch4)"
	fi
	name="4. the overflow was seen (a rescan batch in the -vv log)"
	if grep -qi "rescan" "$W/watch4.err" "$W/watch4.out"; then
		ok "$name"
	else
		not_ok "$name" "no 'rescan' in the watcher's output" "$(errtail watch4)"
	fi
	mark "$P4/after-overflow.txt"
	name="4. the watcher still runs and watches: a new file arrives within 1 s"
	if kill -0 "$W4" 2>/dev/null && wait_file 1 "$S4/after-overflow.txt"; then
		ok "$name"
		printf '#   arrived after %s ms\n' "$WAIT_MS"
	else
		not_ok "$name" "$(errtail watch4)"
	fi
	stop_watch "$W4" 2
fi

# === 5. pull --watch with the pause flag ==========================================================
phase "5. pull --watch with the pause flag"

P5=$W/p5
xroad_tree "$P5" 7 >/dev/null && [ "$ROOT" = 1 ] && chown xroad:xroad "$P5"
S5=$S/paused
F=$W/sync-disabled
if [ "$ROOT" = 1 ]; then
	SRC5=$SSHD_USER@$H:$P5/
	PULLARGS=(-e "$E" --rsync-path "$BIN")
else
	SRC5=$P5/
	PULLARGS=()
fi
start_bg watch5 "$BIN" pull --watch "${PULLARGS[@]}" -a --delete "${XROAD_EXCLUDES[@]}" \
	--pause-file "$F" "$SRC5" "$S5"
W5=$BGPID
name="5. pull --watch (${SRC5%%:*}): initial sync"
if d=$(converge 10 "$P5" "$S5"); then ok "$name"; else not_ok "$name" "$d" "$(errtail watch5)"; fi
touch "$F"
sleep 0.3
held=$(tree_listing "$S5")
as_client bash -c '. tests/lib/xroad_tree.sh && xroad_edit_keyconf "$1" && xroad_add_key "$1" \
	>/dev/null && echo new >"$1/conf.d/new.ini" && rm -f "$1/ssl/openssl.cnf"' _ "$P5"
changed=0
for i in $(seq 1 10); do
	sleep 0.2
	[ "$held" = "$(tree_listing "$S5")" ] || { changed=1; break; }
done
name="5. while $F exists the secondary does not change (2 s)"
if [ "$changed" = 0 ]; then
	ok "$name"
else
	not_ok "$name" "changed after $((i * 200)) ms" \
		"$(diff <(echo "$held") <(tree_listing "$S5") | head -n 8)"
fi
rm -f "$F"
name="5. flag removed: the secondary catches up within 3 s"
if d=$(converge 3 "$P5" "$S5"); then
	ok "$name"
	printf '#   caught up after %s ms\n' "$d"
else
	not_ok "$name" "$d" "$(errtail watch5)"
fi
mark "$P5/conf.d/later.ini"
name="5. and goes on watching: a later change arrives within 1 s"
if wait_file 1 "$S5/conf.d/later.ini"; then
	ok "$name"
	printf '#   arrived after %s ms\n' "$WAIT_MS"
else
	not_ok "$name" "$(errtail watch5)"
fi
chown_marks
stop_watch "$W5" 2
name="5. pull --watch: SIGTERM -> exit 0 within 2 s, its remote serve gone"
if [ "$STOP_RC" = 0 ] && [ -z "$STOP_LEFT" ] && [ -z "$( [ "$ROOT" = 1 ] && ssh_serve_pid)" ]; then
	ok "$name"
else
	not_ok "$name" "exit status $STOP_RC after $STOP_MS ms, left:${STOP_LEFT:- none}" \
		"serve: $( [ "$ROOT" = 1 ] && ssh_serve_pid)"
fi

# === 6. the signer's write patterns ===============================================================
phase "6. the signer's write patterns"

# CHECK_PL DEST OUT STOP: every ~2 ms until STOP exists: reads DEST/signer/keyconf.xml and
# checks that each key id it names has DEST/signer/softtoken/ID.p12 ("missing" lines in OUT),
# and that no DEST/signer/softtoken/*.p12 is shorter than 2000 bytes, i.e. a half-written
# one ("torn" lines; every .p12 written here is 2520-2720 bytes, its first half 1260-1360);
# the number of rounds goes to OUT.count.
CHECK_PL='
use strict; use warnings;
use Time::HiRes qw(sleep time);
my ($dest, $out, $stop) = @ARGV;
my $n = 0;
my %named;
open(my $log, ">>", $out) or die "$out: $!";
$log->autoflush(1);
while (!-e $stop) {
	if (open(my $fh, "<", "$dest/signer/keyconf.xml")) {
		local $/;
		my $x = <$fh>;
		close $fh;
		%named = ();
		for my $id ($x =~ /<keyId>([0-9A-F]+)<\/keyId>/g) {
			$named{$id} = 1;
			printf $log "%.3f missing %s.p12\n", time, $id
				unless -e "$dest/signer/softtoken/$id.p12";
		}
		$n++;
	}
	for my $f (glob("$dest/signer/softtoken/*.p12")) {
		my $size = -s $f;
		my ($id) = $f =~ m{/([^/]+)\.p12$};
		printf $log "%.3f torn %s %d bytes%s\n", time, substr($f, length($dest) + 1),
			$size, $named{$id} ? ", named by keyconf.xml" : ", not yet in keyconf.xml"
			if defined $size && $size < 2000;
	}
	sleep(0.002);
}
open(my $c, ">", "$out.count") or die;
print $c "$n\n";
'

P6=$W/p6
xroad_tree "$P6" 8 >/dev/null && [ "$ROOT" = 1 ] && chown xroad:xroad "$P6"
S6A=$S/signer-a
S6B=$S/signer-b
if [ "$ROOT" = 1 ]; then DEST6B=xroad@$H:$S6B; else DEST6B=$S6B; fi
start_bg watch6 "$BIN" push --watch "${SSHARGS[@]}" "${PUSH_OPTS[@]}" "$P6/" "$S6A" "$DEST6B"
W6=$BGPID
if ! d=$(converge 15 "$P6" "$S6A" "$S6B"); then
	not_ok "6. signer: initial sync" "$d" "$(errtail watch6)"
fi
STOP6=$W/checker.stop
rm -f "$STOP6" "$W"/checker-*.viol*
perl -e "$CHECK_PL" "$S6A" "$W/checker-a.viol" "$STOP6" &
CK1=$!
perl -e "$CHECK_PL" "$S6B" "$W/checker-b.viol" "$STOP6" &
CK2=$!
BG_PIDS+=("$CK1" "$CK2")
ops_out=$(as_client bash "$SELF" --signer-ops "$P6" "$W/scratch" 4 2>&1)
name="6. signer patterns x4 ($ops_out): both secondaries equal the primary within 5 s"
if d=$(converge 5 "$P6" "$S6A" "$S6B"); then
	ok "$name"
	printf '#   quiescent after %s ms\n' "$d"
else
	not_ok "$name" "$d" "$(errtail watch6)"
fi
touch "$STOP6"
wait "$CK1" "$CK2"
checks="$(cat "$W/checker-a.viol.count" 2>/dev/null) +"
checks+=" $(cat "$W/checker-b.viol.count" 2>/dev/null) checks"
missing=$(grep -h ' missing ' "$W"/checker-?.viol 2>/dev/null)
name="6. a secondary never held a keyconf.xml naming a .p12 it lacked ($checks)"
if [ -z "$missing" ] && [ -s "$W/checker-a.viol.count" ] && [ -s "$W/checker-b.viol.count" ]; then
	ok "$name"
else
	not_ok "$name" "$(printf '%s\n' "$missing" | head -n 8)"
fi
torn=$(grep -H ' torn ' "$W"/checker-?.viol 2>/dev/null |
	sed 's/^[^:]*checker-\(.\)\.viol:/secondary \1: /')
name="6. a secondary never held a half-written .p12 (slow in-place writer, 50 ms between halves)"
if [ -z "$torn" ] && [ -s "$W/checker-a.viol.count" ]; then
	ok "$name"
else
	not_ok "$name" "$(printf '%s\n' "$torn" |
		awk '!seen[$2 " " $5 " " ($0 ~ /named by/)]++' | head -n 10)" \
		"($(printf '%s\n' "$torn" | wc -l) observations)"
fi
name="6. no PIN-change leftovers (softtoken-*, .softtoken.bak) on the secondaries"
if [ -z "$(find "$S6A/signer" "$S6B/signer" -maxdepth 1 -name 'softtoken-*' -o -maxdepth 1 \
	-name .softtoken.bak)" ]; then
	ok "$name"
else
	not_ok "$name" "$(ls -a "$S6A/signer" "$S6B/signer")"
fi

phase "7b. latency on an X-Road-sized tree"
for mode in rename inplace; do
	name="7b. latency, X-Road tree ($(find "$P6" | wc -l) entries):"
	name+=" 50 changes ($mode) reach both secondaries"
	if [ -z "$LAT" ]; then
		skip "$name" "xr_latency not built (make build-tests)"
	elif as_client "$LAT" -n 50 -g 20 -m "$mode" "$P6/conf.d" "latency-$mode.ini" \
		"$S6A/conf.d" "$S6B/conf.d" >"$W/lat-$mode.out" 2>"$W/lat-$mode.err"; then
		ok "$name"
		sed 's/^# latency /# latency 7b /' "$W/lat-$mode.out"
	else
		not_ok "$name" "$(tail -n 5 "$W/lat-$mode.err")"
		cat "$W/lat-$mode.out"
	fi
done
stop_watch "$W6" 2

# === 9. incremental change sets ==================================================================
phase "9. incremental change sets"

# A 2,000-file tree pulled with --watch (the receiver is this client, so its -vv lines are
# ours): each change set after the first lists only what changed, on both sides.
P9=$W/p9
S9=$S/inc
mkdir_client "$P9"
as_client perl -e 'for my $d (0 .. 39) { my $dd = sprintf("%s/d%02d", $ARGV[0], $d);
	mkdir $dd or die; for my $f (0 .. 49) { open(my $h, ">", "$dd/f$f") or die;
	print $h "file $d $f\n"; close $h } }' "$P9"
start_bg watch9 "$BIN" pull --watch -vv -a --delete --reconcile=0 --log-file "$W/scratch/w9.log" \
	"$P9/" "$S9"
W9=$BGPID
name="9. pull --watch: initial full change set of a 2,000-file tree"
if d=$(converge 20 "$P9" "$S9"); then ok "$name"; else not_ok "$name" "$d" "$(errtail watch9)"; fi

# incr_lines: the receiver's incremental change set lines so far
incr_lines() {
	grep -c '^incremental change set' "$W/watch9.out" 2>/dev/null
}
n0=$(incr_lines)
as_client sh -c "echo edited >'$P9/d07/f13'"
name="9a. one file edited: an incremental change set of 2 items (the file, its directory),"
name+=" 2 entries listed on each side, out of 2,000"
if d=$(converge 3 "$P9" "$S9"); then
	sleep 0.2
	last=$(grep '^incremental change set' "$W/watch9.out" | tail -n 1)
	if [ "$(incr_lines)" -gt "${n0:-0}" ] &&
		printf '%s\n' "$last" | grep -q ': 2 scope item(s), 2 listed by the sender, 2 in DEST$'; then
		ok "$name"
	else
		not_ok "$name" "last line: $last"
	fi
else
	not_ok "$name" "$d" "$(errtail watch9)"
fi

# tree operations, each in its own change set, none of them needing a full one
n0=$(incr_lines)
as_client sh -c "cd '$P9' && mv d01 d02/moved" && sleep 0.1
as_client sh -c "cd '$P9' && rm -rf d03" && sleep 0.1
as_client sh -c "cd '$P9' && rm -rf d04 && echo now-a-file >d04" && sleep 0.1
as_client sh -c "cd '$P9' && rm d05/f1 && mkdir -p d05/f1/x && echo deep >d05/f1/x/y" && sleep 0.1
as_client sh -c "cd '$P9' && mkdir -p new/a/b && echo n1 >new/a/b/n1 && echo n2 >new/n2" &&
	sleep 0.1
as_client sh -c "cd '$P9' && chmod 600 d06/f2 && touch -d '2020-01-02 03:04:05' d06/f3" &&
	sleep 0.1
# a deploy-style swap in one batch: d10 is another directory afterwards, with other files
as_client sh -c "cd '$P9' && mkdir d10new && echo fresh >d10new/only-new && echo x >d10new/f0" &&
	sleep 0.1
as_client sh -c "cd '$P9' && mv d10 d10.old && mv d10new d10"
name="9b. directory moved, removed, replaced by a file, swapped with another (mv d d.old;"
name+=" mv d.new d); file replaced by a directory tree; new nested directories; chmod and"
name+=" mtime: equal after incremental change sets only"
if d=$(converge 5 "$P9" "$S9"); then
	sleep 0.2
	if [ "$(incr_lines)" -ge $((${n0:-0} + 6)) ] &&
		! grep -q 'full reconcile' "$W/scratch/w9.log"; then
		ok "$name"
	else
		not_ok "$name" "incremental change sets: $(($(incr_lines) - ${n0:-0}))" \
			"$(grep 'full reconcile' "$W/scratch/w9.log")"
	fi
else
	not_ok "$name" "$d" "$(errtail watch9)"
fi

# drift: a directory removed by hand on the secondary, then a file in it changes on the
# primary; the incremental change set cannot apply, the receiver asks for a full one
as_client rm -rf "$S9/d08"
as_client sh -c "echo changed >'$P9/d08/f1'"
name="9c. drift under an incremental change set (its directory removed on the secondary):"
name+=" detected, a full change set repairs it without waiting for --reconcile"
if d=$(converge 5 "$P9" "$S9"); then
	if grep -q 'DEST differs from what the change set builds on: full reconcile' \
		"$W/scratch/w9.log"; then
		ok "$name"
	else
		not_ok "$name" "no drift line in the log file" "$(tail -n 5 "$W/scratch/w9.log")"
	fi
else
	not_ok "$name" "$d" "$(errtail watch9)"
fi
# the primary's tree moved away under the watcher: what it sees in the moved tree is not the
# source any more; nothing may be deleted on the secondary, and it catches up when it is back
n9=$(find "$S9" -type f | wc -l)
mv "$P9" "$P9.away"
sleep 0.3
as_client sh -c "echo moved-away >'$P9.away/d00/f0'"
sleep 1.5
name="9d. the primary tree moved away: no change set from the moved tree, nothing deleted"
if [ "$(find "$S9" -type f | wc -l)" -ge "$n9" ] && ! grep -q moved-away "$S9/d00/f0"; then
	ok "$name"
else
	not_ok "$name" "files before $n9, now $(find "$S9" -type f | wc -l)" "$(errtail watch9)"
fi
mv "$P9.away" "$P9"
as_client sh -c "echo back >'$P9/d00/f1'"
name="9d. ... and back in place: the secondary converges"
if d=$(converge 8 "$P9" "$S9"); then ok "$name"; else not_ok "$name" "$d" "$(errtail watch9)"; fi
stop_watch "$W9" 2
name="9. the watcher stops cleanly; no journal or staged file left"
if [ "$STOP_RC" = 0 ] && d=$(state_clean "$S9"); then
	ok "$name"
else
	not_ok "$name" "exit $STOP_RC" "${d:-}"
fi

# === the end: nothing left running ===============================================================
phase "end"

sleep 0.3
left=""
for p in $(our_procs) "${BG_PIDS[@]}"; do
	alive "$p" && left+=" $p($(ps -o args= -p "$p" | cut -c1-50))"
done
name="no background process of this test left running"
if [ -z "$left" ]; then ok "$name"; else not_ok "$name" "$left"; fi
tests_done
