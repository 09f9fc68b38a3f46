#!/bin/sh
# shellcheck shell=bash
# demo.sh - "make demo": an X-Road cluster in three network namespaces, replicated by
# xroad-replicate the way the X-Road guide (IG-XLB §5) replicates /etc/xroad with rsync.
#
#   1. namespaces xr-primary, xr-sec1, xr-sec2 on a bridge inside xr-primary (10.231.0.0/24;
#      the addresses exist only in these namespaces)
#   2. an sshd in each: on the primary, user xroad-slave may only run
#      "xroad-replicate serve --root TREE --read-only" (forced command); on the secondaries,
#      user xroad may only run "serve --root DEST --write-only" (for push mode)
#   3. a realistic X-Road tree on the primary (tests/lib/xroad_tree.sh) in /run/xr-demo,
#      standing in for /etc/xroad (the real /etc/xroad is never touched); secondaries with
#      their own conf.d/node.ini (type=slave) and db.properties
#   4. the guide's timer job, one-shot pull as user xroad on each secondary
#   5. pull --watch on each secondary (the primary's serve watches with inotify)
#   6. key changes on the primary, their propagation latency to each secondary
#   7. the secondaries' log files (rsync's format), "status" when the build has it, a check
#      from the primary (push --dry-run over the secondaries' sshds) and by the real rsync
#   8. cleanup (also on error and Ctrl-C): watchers, sshds, namespaces, /run/xr-demo
# Runs as root; installs nothing (make deps did); creates the users xroad and xroad-slave
# when absent (as tests/lib/sshd.sh does).  Exits 0 only when every check passed.
#   BUILD (default build): where xroad-replicate is;  XR_DEMO_KEEP=1 keeps /run/xr-demo
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
BUILD=${BUILD:-build}
SRC_BIN=$BUILD/xroad-replicate

D=/run/xr-demo			# everything the demo writes lives here
NETS=(xr-primary xr-sec1 xr-sec2)
SECS=(sec1 sec2)
declare -A ADDR=([primary]=10.231.0.1 [sec1]=10.231.0.2 [sec2]=10.231.0.3)
BIN=$D/bin/xroad-replicate
P=$D/primary/xroad		# the primary's /etc/xroad
CL=$D/client			# user xroad's keys and known_hosts
KEY=$CL/id_ed25519		# a secondary's key: pulls as xroad-slave@primary
PKEY=$CL/id_push		# the primary's key: pushes as xroad@secondary
KH=$CL/known_hosts
PAUSE=$D/sync-disabled		# the pause flag (never created here)
FAILS=0
CLEANED=""
INTERRUPTED=""
declare -A SSHD_PIDS=() WATCH_PIDS=() WATCH_CHILD=() LAT=() P12OK=()
START_US=${EPOCHREALTIME/[.,]/}

# --- output ------------------------------------------------------------------------------

# step N TEXT: a step heading.
step() {
	now_us
	printf '\n== %s  [%d.%d s]\n' "$*" $(((NOW - START_US) / 1000000)) \
		$(((NOW - START_US) % 1000000 / 100000))
}

# say TEXT: an indented result line.
say() {
	printf '   %s\n' "$*"
}

# good TEXT / bad TEXT: a checked result; bad counts a failure.
good() {
	printf '   ok    %s\n' "$*"
}
bad() {
	FAILS=$((FAILS + 1))
	printf '   FAIL  %s\n' "$*"
}

# die TEXT: a setup step failed; the trap cleans up.
die() {
	bad "$*"
	exit 1
}

# show_cmd ARG...: prints a command as one would type it, wrapped at ~96 columns.
show_cmd() {
	local a w line="   \$"
	for a in "$@"; do
		w=$a
		if [[ ($a =~ [^A-Za-z0-9_./:=@,+%-] || -z $a) && $a != "&" ]]; then
			w="\"$a\""
		fi
		if [ $((${#line} + ${#w} + 1)) -gt 96 ]; then
			printf '%s \\\n' "$line"
			line="       "
		fi
		line+=" $w"
	done
	printf '%s\n' "$line"
}

# now_us: sets NOW to the current time in microseconds (no process spawned).
now_us() {
	NOW=${EPOCHREALTIME/[.,]/}
}

# ms US: prints microseconds as milliseconds with one decimal.
ms() {
	printf '%d.%d ms' $(($1 / 1000)) $(($1 % 1000 / 100))
}

# files_in DIR: number of regular files below DIR (the state dir not counted).
files_in() {
	find "$1" -name .xroad-replicate -prune -o -type f -print | wc -l
}

# --- cleanup -----------------------------------------------------------------------------

# stop_pid PID WHAT: SIGTERM, then SIGKILL after 3 s; prints how it ended.
stop_pid() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.01
	done
	kill -KILL "$pid" 2>/dev/null
	say "$2 (pid $pid) did not stop on SIGTERM within 3 s: killed"
}

# ns_clear NS: ends every process still in namespace NS (all started by this demo, or by a
# previous run of it) and deletes NS.
ns_clear() {
	local ns=$1 pids p
	ip netns list 2>/dev/null | grep -q "^$ns\( \|$\)" || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null)
	if [ -n "$pids" ]; then
		for p in $pids; do
			kill -TERM "$p" 2>/dev/null
		done
		for _ in $(seq 1 100); do
			pids=$(ip netns pids "$ns" 2>/dev/null)
			[ -z "$pids" ] && break
			sleep 0.02
		done
		for p in $pids; do
			kill -KILL "$p" 2>/dev/null
		done
	fi
	ip netns del "$ns" 2>/dev/null
}

# cleanup RC: stops the watchers (SIGTERM, reports their exit), the sshds, any other process
# in the namespaces, deletes the namespaces and /run/xr-demo; prints the result line for the
# script's exit code RC.  Idempotent.
cleanup() {
	local exit_rc=$1 s pid rc t0 ns left=""
	[ -n "$CLEANED" ] && return
	CLEANED=1
	step "8. Cleanup"
	for s in "${SECS[@]}"; do
		pid=${WATCH_CHILD[$s]:-}
		[ -n "$pid" ] || continue
		now_us
		t0=$NOW
		stop_pid "$pid" "watcher $s"
		wait "${WATCH_PIDS[$s]}" 2>/dev/null
		rc=$?
		now_us
		say "watcher on $s (pid $pid): SIGTERM -> exit $rc after $(ms $((NOW - t0)))"
	done
	for s in "${!SSHD_PIDS[@]}"; do
		stop_pid "${SSHD_PIDS[$s]}" "sshd $s"
		wait "${SSHD_PIDS[$s]}" 2>/dev/null
	done
	for ns in "${NETS[@]}"; do
		ns_clear "$ns"
	done
	if [ "${XR_DEMO_KEEP:-0}" = 1 ]; then
		say "kept $D (XR_DEMO_KEEP=1)"
	else
		rm -rf "$D"
	fi
	for ns in "${NETS[@]}"; do
		ip netns list 2>/dev/null | grep -q "^$ns\( \|$\)" && left+=" netns $ns"
	done
	pgrep -f "^$BIN " >/dev/null && left+=" xroad-replicate processes"
	pgrep -f "sshd .*-f $D/" >/dev/null && left+=" sshd processes"
	if [ -z "$left" ]; then
		say "sshds and namespaces gone, $D removed: nothing left behind"
	else
		bad "left behind:$left"
	fi
	now_us
	if [ -n "$INTERRUPTED" ]; then
		printf '\nRESULT: demo interrupted (%s)\n' "$INTERRUPTED"
	elif [ "$FAILS" != 0 ]; then
		printf '\nRESULT: demo FAILED (%d check(s) failed)\n' "$FAILS"
	elif [ "$exit_rc" != 0 ]; then
		printf '\nRESULT: demo FAILED (exit %d)\n' "$exit_rc"
	else
		printf '\nRESULT: demo OK (%d s)\n' $(((NOW - START_US) / 1000000))
	fi
}

# on_exit: the EXIT trap; the exit code is 1 when a check failed.
on_exit() {
	local rc=$?
	trap - EXIT
	trap '' INT TERM
	[ "$rc" = 0 ] && [ "$FAILS" != 0 ] && rc=1
	cleanup "$rc"
	exit "$rc"
}

# --- preconditions -----------------------------------------------------------------------

printf 'xroad-replicate demo: an X-Road cluster (1 primary, 2 secondaries) in network namespaces\n'
if [ "$(id -u)" != 0 ]; then
	echo "demo.sh: run as root (network namespaces, sshd, users xroad and xroad-slave)" >&2
	exit 1
fi
if [ ! -x "$SRC_BIN" ]; then
	echo "demo.sh: $SRC_BIN missing (run make)" >&2
	exit 1
fi
for c in ip /usr/sbin/sshd ssh-keygen runuser rsync pgrep; do
	command -v "$c" >/dev/null || { echo "demo.sh: $c missing (run make deps)" >&2; exit 1; }
done
. tests/lib/sshd.sh
. tests/lib/xroad_tree.sh
HELP=$("$SRC_BIN" --help 2>&1)
HAS_STATUS=0
HAS_STATE_DIR=0
grep -q 'xroad-replicate status' <<<"$HELP" && HAS_STATUS=1
grep -q -- '--state-dir' <<<"$HELP" && HAS_STATE_DIR=1

# a previous run that was killed may have left its namespaces, processes and files
for ns in "${NETS[@]}"; do
	ns_clear "$ns"
done
rm -rf "$D"
trap on_exit EXIT
trap 'INTERRUPTED=SIGINT; exit 130' INT
trap 'INTERRUPTED=SIGTERM; exit 143' TERM

# a 1 ms nap without spawning a process: read with a timeout on a pipe nobody writes to
exec {NAP_FD}<> <(:)
nap() {
	read -r -t 0.001 -u "$NAP_FD" _
}

# --- 1. network --------------------------------------------------------------------------

step "1. Network: namespaces ${NETS[*]} on a bridge in xr-primary (10.231.0.0/24)"
for ns in "${NETS[@]}"; do
	ip netns add "$ns" && ip -n "$ns" link set lo up || die "ip netns add $ns"
done
ip -n xr-primary link add xr-br0 type bridge &&
	ip -n xr-primary addr add "${ADDR[primary]}/24" dev xr-br0 &&
	ip -n xr-primary link set xr-br0 up || die "bridge xr-br0 in xr-primary"
for s in "${SECS[@]}"; do
	ip -n xr-primary link add "to-$s" type veth peer name eth0 netns "xr-$s" &&
		ip -n xr-primary link set "to-$s" master xr-br0 up &&
		ip -n "xr-$s" addr add "${ADDR[$s]}/24" dev eth0 &&
		ip -n "xr-$s" link set eth0 up || die "veth xr-primary <-> xr-$s"
done
# addr_of NS DEV: the IPv4 address/prefix of DEV in NS.
addr_of() {
	ip -n "$1" -4 -brief addr show dev "$2" | awk '{ print $3 }'
}
say "xr-primary  $(addr_of xr-primary xr-br0) on bridge xr-br0, ports to-sec1 to-sec2 (veth)"
for s in "${SECS[@]}"; do
	say "xr-$s     $(addr_of "xr-$s" eth0) on eth0, the other end of to-$s"
done
say "lo up in each; nothing added outside these namespaces"

# --- 2. sshd -----------------------------------------------------------------------------

step "2. An sshd in each namespace; users as in the guide (group xroad)"
for u in xroad xroad-slave; do
	getent passwd "$u" >/dev/null || say "creating system user $u (group xroad)"
done
sshd_users || die "cannot create the users xroad and xroad-slave"
mkdir -p /run/sshd && chmod 0755 /run/sshd
mkdir -p "$D/bin" "$D/ssh" "$CL" && chmod 0755 "$D" "$D/bin" "$D/ssh" || die "mkdir $D"
install -m 0755 "$SRC_BIN" "$BIN" || die "install $BIN"
# an ASan build: libssh2's known ECDSA leak is not ours (as in tests/integration/ssh_sync.sh)
printf '%s\n' 'leak:BN_new' >"$D/bin/lsan.supp"
chmod 0644 "$D/bin/lsan.supp"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$D/bin/lsan.supp"
unset SSH_AUTH_SOCK
sshd_keygen ed25519 "$KEY" "" && sshd_keygen ed25519 "$PKEY" "" || die "ssh-keygen"
: >"$KH"

# sshd_in NAME USER FORCED-COMMAND PUBKEY: starts sshd in xr-NAME on ADDR:22, where USER may
# log in with PUBKEY and run FORCED-COMMAND only.
sshd_in() {
	local n=$1 user=$2 cmd=$3 pub=$4 sd=$D/ssh/$1 banner="" from=primary
	[ "$n" = primary ] && from=sec1
	mkdir -p "$sd/authorized_keys" && chmod 0755 "$sd" "$sd/authorized_keys" || return 1
	sshd_keygen ed25519 "$sd/ssh_host_ed25519_key" "" || return 1
	printf 'command="%s",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding %s\n' \
		"$cmd" "$(cat "$pub")" >"$sd/authorized_keys/$user"
	chmod 0644 "$sd/authorized_keys/$user"
	cat >"$sd/sshd_config" <<-EOF
		Port 22
		ListenAddress ${ADDR[$n]}
		HostKey $sd/ssh_host_ed25519_key
		PidFile $sd/sshd.pid
		AuthorizedKeysFile $sd/authorized_keys/%u
		AllowUsers $user
		UsePAM no
		StrictModes yes
		PermitRootLogin no
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PubkeyAuthentication yes
		MaxStartups 100:30:200
		LogLevel VERBOSE
	EOF
	/usr/sbin/sshd -t -f "$sd/sshd_config" 2>"$sd/sshd.log" || { cat "$sd/sshd.log"; return 1; }
	ip netns exec "xr-$n" /usr/sbin/sshd -D -e -f "$sd/sshd_config" 2>>"$sd/sshd.log" \
		</dev/null &
	SSHD_PIDS[$n]=$!
	echo "${ADDR[$n]} $(cut -d' ' -f1-2 "$sd/ssh_host_ed25519_key.pub")" >>"$KH"
	# the banner, read from the other side of the link (the primary from sec1)
	for _ in $(seq 1 100); do
		banner=$(ip netns exec "xr-$from" timeout 2 \
			bash -c "exec 3<>/dev/tcp/${ADDR[$n]}/22 && head -n1 <&3" 2>/dev/null |
			tr -d '\r')
		[ -n "$banner" ] && break
		kill -0 "${SSHD_PIDS[$n]}" 2>/dev/null || break
		sleep 0.05
	done
	[ -n "$banner" ] || { cat "$sd/sshd.log"; return 1; }
	say "$(printf '%-10s %s:22  %s' "xr-$n" "${ADDR[$n]}" "$banner")  (read from xr-$from)"
	say "           $user may only run: $cmd"
}
sshd_in primary xroad-slave "$BIN serve --root $P --read-only" "$KEY.pub" ||
	die "sshd in xr-primary"
for s in "${SECS[@]}"; do
	sshd_in "$s" xroad "$BIN serve --root $D/$s/xroad --write-only" "$PKEY.pub" ||
		die "sshd in xr-$s"
done
chown -R xroad:xroad "$CL" && chmod 0700 "$CL" && chmod 0600 "$KEY" "$PKEY" "$KH" ||
	die "client keys"

# --- 3. the trees ------------------------------------------------------------------------

step "3. The primary's X-Road configuration: $P (stands in for /etc/xroad)"
mkdir -p "$D/primary" && chmod 0755 "$D/primary"
xroad_tree "$P" 1 || die "xroad_tree $P"
say "$(files_in "$P") files, $(du -sk "$P" | cut -f1) KB, keys: $(xroad_key_ids "$P" | cut -c1-8 |
	tr '\n' ' ')(conf.d/node.ini: $(grep type= "$P/conf.d/node.ini"))"
# sec1: an older configuration of its own, a stale file; sec2: a fresh installation
mkdir -p "$D/sec1" "$D/sec2" && chmod 0755 "$D/sec1" "$D/sec2"
xroad_tree "$D/sec1/xroad" 2 || die "xroad_tree sec1"
echo "stale=1" >"$D/sec1/xroad/conf.d/old.ini"
mkdir -p "$D/sec2/xroad/conf.d"
for s in "${SECS[@]}"; do
	printf '[node]\ntype=slave\n' >"$D/$s/xroad/conf.d/node.ini"
	printf 'serverconf.hibernate.connection.url = jdbc:postgresql://%s:5432/serverconf\n' \
		"${ADDR[$s]}" >"$D/$s/xroad/db.properties"
	chown -R xroad:xroad "$D/$s/xroad"
	chmod 0640 "$D/$s/xroad/conf.d/node.ini" "$D/$s/xroad/db.properties" \
		"$D/$s/xroad/conf.d/old.ini" 2>/dev/null
	chmod 0751 "$D/$s/xroad"
	chmod 0750 "$D/$s/xroad/conf.d"
	install -o xroad -g xroad -m 0640 /dev/null "$D/$s.log"
	install -d -o xroad -g xroad -m 0755 "$D/$s/state"
done
say "sec1: an older configuration ($(files_in "$D/sec1/xroad") files, other keys," \
	"a stale conf.d/old.ini)"
say "sec2: a fresh installation (only conf.d/node.ini and db.properties)"
say "both: conf.d/node.ini \"type=slave\" and their own db.properties, which must survive"

# the guide's options (IG-XLB §5) through --profile xroad, with the demo's ssh key, known_hosts,
# log file and pause flag
E="ssh -o ConnectTimeout=5 -p 22 -i $KEY -o UserKnownHostsFile=$KH"
# pull_cmd SEC [OPTION...]: the pull command line of secondary SEC in PULL.
pull_cmd() {
	local s=$1
	shift
	PULL=(ip netns exec "xr-$s" runuser -u xroad -- "$BIN" pull "$@" -aqz --delete-delay
		--delay-updates --profile xroad -e "$E" --log-file "$D/$s.log" --pause-file "$PAUSE")
	[ "$HAS_STATE_DIR" = 1 ] && PULL+=(--state-dir "$D/$s/state")
	PULL+=("xroad-slave@${ADDR[primary]}:$P/" "$D/$s/xroad/")
}

# referee SEC: differences rsync (dry run, the guide's excludes) finds between the primary
# and SEC, one itemized line each.
referee() {
	rsync -ani --delete "${XROAD_EXCLUDES[@]}" --exclude /.xroad-replicate "$P/" \
		"$D/$1/xroad/" 2>&1
}

# --- 4. one-shot pull ------------------------------------------------------------------

step "4. The guide's timer job on each secondary: a one-shot pull as user xroad"
for s in "${SECS[@]}"; do
	kept_before=$(sha256sum <"$D/$s/xroad/conf.d/node.ini"; sha256sum <"$D/$s/xroad/db.properties")
	pull_cmd "$s"
	show_cmd "${PULL[@]}"
	now_us
	t0=$NOW
	out=$("${PULL[@]}" 2>&1 </dev/null)
	rc=$?
	now_us
	if [ "$rc" = 0 ]; then
		good "$s: exit 0 in $(ms $((NOW - t0))) (ssh handshake, file list, transfer, commit)"
	else
		bad "$s: exit $rc after $(ms $((NOW - t0)))"
		printf '%s\n' "$out" | tail -n 10 | sed 's/^/         /'
		continue
	fi
	[ -n "$out" ] && printf '%s\n' "$out" | head -n 5 | sed 's/^/         /'
	sent=$(grep -o 'received [0-9,]* bytes' "$D/$s.log" | tail -n 1)
	say "      $(files_in "$D/$s/xroad") files now in $D/$s/xroad ($(grep -c '>f+++++++++' \
		"$D/$s.log") new, $(grep -c '>f\.' "$D/$s.log") updated, $(grep -c '\*deleting' \
		"$D/$s.log") deleted; $sent)"
	kept_after=$(sha256sum <"$D/$s/xroad/conf.d/node.ini"; sha256sum <"$D/$s/xroad/db.properties")
	if [ "$kept_before" = "$kept_after" ]; then
		good "$s: conf.d/node.ini ($(grep type= "$D/$s/xroad/conf.d/node.ini"))" \
			"and db.properties preserved"
	else
		bad "$s: conf.d/node.ini or db.properties changed"
	fi
	if [ "$s" = sec1 ]; then
		if [ ! -e "$D/sec1/xroad/conf.d/old.ini" ] && [ -d "$D/sec1/xroad/globalconf" ]; then
			good "sec1: stale conf.d/old.ini deleted, its own globalconf/ (excluded) kept"
		else
			bad "sec1: conf.d/old.ini not deleted or globalconf/ gone"
		fi
	fi
	diffs=$(referee "$s")
	if [ -z "$diffs" ]; then
		good "$s: the real rsync (rsync -ani, the guide's excludes) finds 0 differences"
	else
		bad "$s: rsync finds differences:"
		printf '%s\n' "$diffs" | head -n 10 | sed 's/^/         /'
	fi
done

# --- 5. watchers -------------------------------------------------------------------------

step "5. Watchers: pull --watch on each secondary; the primary's serve watches with inotify"
for s in "${SECS[@]}"; do
	pull_cmd "$s" --watch
	show_cmd "${PULL[@]}" "&"
	"${PULL[@]}" >"$D/$s/watch.out" 2>&1 </dev/null &
	WATCH_PIDS[$s]=$!
done
# ready when each watcher's serve process on the primary holds an inotify fd (it arms it
# after the initial change set)
now_us
t0=$NOW
ready=""
for _ in $(seq 1 1000); do
	for s in "${SECS[@]}"; do
		[ -n "${WATCH_CHILD[$s]:-}" ] ||
			WATCH_CHILD[$s]=$(pgrep -P "${WATCH_PIDS[$s]}" -f "^$BIN pull" 2>/dev/null)
	done
	serves=$(for p in $(ip netns pids xr-primary); do
		[ "$(stat -c %U "/proc/$p" 2>/dev/null)" = xroad-slave ] || continue
		grep -q "^$BIN" "/proc/$p/cmdline" 2>/dev/null || continue
		[ -n "$(find "/proc/$p/fd" -lname 'anon_inode:inotify' 2>/dev/null)" ] && echo "$p"
	done)
	if [ "$(wc -w <<<"$serves")" -ge 2 ] && [ -n "${WATCH_CHILD[sec1]:-}" ] &&
		[ -n "${WATCH_CHILD[sec2]:-}" ]; then
		ready=1
		break
	fi
	for s in "${SECS[@]}"; do
		kill -0 "${WATCH_PIDS[$s]}" 2>/dev/null && continue
		bad "the watcher on $s exited:"
		sed 's/^/         /' "$D/$s/watch.out"
		exit 1
	done
	sleep 0.01
done
now_us
if [ -z "$ready" ]; then
	die "the watchers did not start watching within 10 s"
fi
good "connected and watching after $(ms $((NOW - t0))): watchers (user xroad) pids" \
	"${WATCH_CHILD[sec1]} ${WATCH_CHILD[sec2]}, serve on the primary (user xroad-slave) pids" \
	"${serves//$'\n'/ }"

# --- 6. changes --------------------------------------------------------------------------

# poll_same REL T0 [KEYID]: polls both secondaries every millisecond until their REL equals
# the primary's; sets LAT[sec] (microseconds since T0) and, with KEYID, P12OK[sec] to whether
# the key's .p12 was complete at that moment.  Returns 1 after 10 s.
poll_same() {
	local rel=$1 t0=$2 id=${3:-} want cur s left=${#SECS[@]}
	LAT=()
	P12OK=()
	IFS= read -r -d '' want <"$P/$rel"
	while [ "$left" -gt 0 ]; do
		for s in "${SECS[@]}"; do
			[ -n "${LAT[$s]:-}" ] && continue
			cur=""
			IFS= read -r -d '' cur <"$D/$s/xroad/$rel" 2>/dev/null
			[ "$cur" = "$want" ] || continue
			now_us
			LAT[$s]=$((NOW - t0))
			left=$((left - 1))
			[ -n "$id" ] || continue
			if cmp -s "$P/signer/softtoken/$id.p12" \
				"$D/$s/xroad/signer/softtoken/$id.p12"; then
				P12OK[$s]=yes
			else
				P12OK[$s]=no
			fi
		done
		now_us
		[ $((NOW - t0)) -gt 10000000 ] && return 1
		nap
	done
}

# report_lat WHAT: prints the latencies poll_same measured.
report_lat() {
	local s line=""
	for s in "${SECS[@]}"; do
		if [ -n "${LAT[$s]:-}" ]; then
			line+="  $s $(ms "${LAT[$s]}")"
		else
			line+="  $s: not within 10 s"
		fi
	done
	if [ "${#LAT[@]}" = "${#SECS[@]}" ]; then
		good "$1 on both secondaries:$line"
	else
		bad "$1:$line"
	fi
}

step "6. Changes on the primary; propagation latency (polled every ms on the secondaries)"
say "(the guide's timer: up to 60 s, after the signer's own 60 s; watchers coalesce for 10 ms)"
say "a. the signer saves keyconf.xml with a key renamed (temp file + rename): xroad_edit_keyconf"
xroad_edit_keyconf "$P" || die "xroad_edit_keyconf"
now_us
t0=$NOW
poll_same signer/keyconf.xml "$t0"
report_lat "keyconf.xml ($(grep -o '<friendlyName>[^<]*#[0-9]*</friendlyName>' \
	"$P/signer/keyconf.xml" | head -n 1 | sed 's/<[^>]*>//g'))"
sleep 0.2
say "b. a new signing key: softtoken/ID.p12 written in place, then keyconf.xml naming it:" \
	"xroad_add_key"
xroad_add_key "$P" >"$D/newkey" || die "xroad_add_key"
now_us
t0=$NOW
read -r NEWID <"$D/newkey"
poll_same signer/keyconf.xml "$t0" "$NEWID"
report_lat "new key ${NEWID:0:8}... (keyconf.xml and the .p12)"
say "new key id $NEWID"
for s in "${SECS[@]}"; do
	f=$D/$s/xroad/signer/softtoken/$NEWID.p12
	if grep -q "<keyId>$NEWID</keyId>" "$D/$s/xroad/signer/keyconf.xml" &&
		cmp -s "$P/signer/softtoken/$NEWID.p12" "$f"; then
		good "$s: keyconf.xml names it; softtoken/${NEWID:0:8}...p12 is there" \
			"($(stat -c '%s bytes, %U:%G, mode %a' "$f")), identical to the primary's"
	else
		bad "$s: key $NEWID missing or different"
	fi
	if [ "${P12OK[$s]:-}" = yes ]; then
		good "$s: the .p12 was complete when keyconf.xml first named it (--commit-last)"
	else
		bad "$s: keyconf.xml named the key before its .p12 was complete"
	fi
done
sleep 0.2

# --- 7. logs, status, checks -------------------------------------------------------------

step "7. The secondaries' log files (rsync's --log-file format), status and checks"
for s in "${SECS[@]}"; do
	say "$D/$s.log, last lines:"
	tail -n 6 "$D/$s.log" | sed 's/^/         /'
done
if [ "$HAS_STATUS" = 1 ]; then
	for s in "${SECS[@]}"; do
		st=(ip netns exec "xr-$s" runuser -u xroad -- "$BIN" status)
		[ "$HAS_STATE_DIR" = 1 ] && st+=(--state-dir "$D/$s/state")
		st+=("$D/$s/xroad/")
		show_cmd "${st[@]}"
		out=$("${st[@]}" 2>&1)
		rc=$?
		printf '%s\n' "$out" | sed 's/^/         /'
		if [ "$rc" = 0 ]; then
			good "$s: status exit 0"
		else
			bad "$s: status exit $rc"
		fi
	done
else
	say "(this build has no \"xroad-replicate status\" command: skipped)"
fi
# from the primary, over the secondaries' sshds (write-only serve): nothing left to send
push=(ip netns exec xr-primary runuser -u xroad -- "$BIN" push -n -i -a --profile xroad
	--log-file "$D/push-check.log" --pause-file "$PAUSE"
	-e "ssh -o ConnectTimeout=5 -p 22 -i $PKEY -o UserKnownHostsFile=$KH")
[ "$HAS_STATE_DIR" = 1 ] && push+=(--state-dir "$D/push-state")
push+=("$P/" "xroad@${ADDR[sec1]}:$D/sec1/xroad/" "xroad@${ADDR[sec2]}:$D/sec2/xroad/")
install -o xroad -g xroad -m 0640 /dev/null "$D/push-check.log"
install -d -o xroad -g xroad -m 0755 "$D/push-state"
say "the primary checks both secondaries (dry run, itemized; an empty list = in sync):"
show_cmd "${push[@]}"
out=$("${push[@]}" 2>&1 </dev/null)
rc=$?
if [ "$rc" = 0 ] && [ -z "$out" ]; then
	good "push --dry-run from the primary: exit 0, nothing to send to either secondary"
else
	bad "push --dry-run from the primary: exit $rc"
	printf '%s\n' "$out" | head -n 10 | sed 's/^/         /'
fi
for s in "${SECS[@]}"; do
	diffs=$(referee "$s")
	if [ -z "$diffs" ]; then
		good "$s: the real rsync finds 0 differences to the primary"
	else
		bad "$s: rsync finds differences:"
		printf '%s\n' "$diffs" | head -n 10 | sed 's/^/         /'
	fi
done
exit 0
