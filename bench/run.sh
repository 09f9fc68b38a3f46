#!/bin/bash
# bench/run.sh - benchmark the command under test (XR_CMD) against rsync, interleaved.
#
#   bench/run.sh [--quick] [--rounds N] [--only REGEX] [--timeout SEC] [--keep] [--no-verify]
#
#   --quick       3 rounds, large tree 2,000 files / 200 MiB with a 50 MiB file (~3 min)
#                 (default: full, 5 rounds, 10,000 files / ~1 GB with a 200 MiB file)
#   --rounds N    override the number of rounds
#   --only REGEX  run only scenarios whose name matches REGEX (grep -E)
#   --timeout SEC kill a run (its whole process group) after SEC seconds (quick 120, full 600)
#   --keep        keep bench/work/ (trees are reused by the next run with the same parameters)
#   --no-verify   skip the check that DEST equals SRC after each run
#
# Environment:
#   XR_CMD        command under test, split on blanks (default "build/xroad-replicate pull");
#                 XR_CMD=rsync validates the harness (all ratios should be ~1.0)
#   BENCH_WORK    work directory (default bench/work, gitignored)
#   BENCH_SEED    seed of the generated trees (default 1)
#   BENCH_XROAD_REPEAT  rsync/XR_CMD pairs per round for the X-Road scenarios (default 3;
#                 over SSH: quick 2, full 3)
#   BENCH_WATCH=0 skip the --watch scenarios (latency, stream, idle CPU)
#   BENCH_RESULTS where reports go (default bench/results)
#   BENCH_XROAD_LIB    the X-Road tree library (default tests/lib/xroad_tree.sh)
#   BENCH_XROAD_LOG=0  do not pass --log-file to the X-Road scenarios (then no byte counts:
#                 -q silences --stats)
#
# Writes bench/results/<UTC stamp>-<quick|full>.{md,png,tsv} and updates latest.{md,png}.
# See bench/README.md for what is measured and how.
# shellcheck disable=SC2016  # backticks in printf formats are Markdown, not expansions
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

MODE=full
ROUNDS=
ONLY=
TIMEOUT=
KEEP=0
VERIFY=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) MODE=quick; shift ;;
	--full) MODE=full; shift ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--no-verify) VERIFY=0; shift ;;
	-h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) bench_die "unknown argument: $1 (see --help)" ;;
	esac
done

if [ "$MODE" = quick ]; then
	: "${ROUNDS:=3}" "${TIMEOUT:=120}"
	LARGE_FILES=2000 LARGE_MB=200 LARGE_BIG_MB=50
else
	: "${ROUNDS:=5}" "${TIMEOUT:=600}"
	LARGE_FILES=10000 LARGE_MB=1000 LARGE_BIG_MB=200
fi
SEED=${BENCH_SEED:-1}
XROAD_REPEAT=${BENCH_XROAD_REPEAT:-3}
if [ "$MODE" = quick ]; then SSH_REPEAT=${BENCH_XROAD_REPEAT:-2}; else SSH_REPEAT=$XROAD_REPEAT; fi
XR_CMD=${XR_CMD:-build/xroad-replicate pull}
read -r -a XR <<<"$XR_CMD"
WORK=${BENCH_WORK:-$BENCH/work}
RESULTS=${BENCH_RESULTS:-$BENCH/results}
T_START=$(date +%s)

# ---------------------------------------------------------------------------------------------
# Scenarios. One per line: NAME TREE TRANSPORT SRC DEST DESCRIPTION...
#   TREE       xroad: an X-Road /etc/xroad tree (tests/lib/xroad_tree.sh), guide's options
#              large: gen_large.sh tree, rsync -a --delete
#   TRANSPORT  local: SRC and DEST are local paths (both tools fork their own server side)
#              ssh:   pulled over SSH from a loopback sshd (pending, see bench_ssh_* in lib.sh)
#   SRC        the variant of the tree that is the source:
#              base | resave | edit | newkey (xroad) | touched | bigrw (large)
#   DEST       DEST before each run: empty (an empty directory) or base (a copy of base)
SCENARIOS=$(cat <<'EOF'
xroad-initial      xroad local base    empty  initial sync into an empty directory
xroad-nochange     xroad local base    base   no change
xroad-resave       xroad local resave  base   signer/keyconf.xml re-saved, same content, new mtime
xroad-edit         xroad local edit    base   signer/keyconf.xml edited
xroad-newkey       xroad local newkey  base   new key: a .p12 added and keyconf.xml updated
large-initial      large local base    empty  initial sync into an empty directory
large-nochange     large local base    base   no change
large-touch        large local touched base   1 % of the files rewritten (whole content)
large-bigrw        large local bigrw   base   1 MiB rewritten in the middle of big.bin
xroad-ssh-initial  xroad ssh   base    empty  initial sync into an empty directory, over SSH
xroad-ssh-nochange xroad ssh   base    base   no change, pulled over SSH (the every-minute case)
xroad-ssh-resave   xroad ssh   resave  base   keyconf.xml re-saved (same content), over SSH
xroad-ssh-edit     xroad ssh   edit    base   keyconf.xml edited, pulled over SSH
xroad-ssh-newkey   xroad ssh   newkey  base   new key (.p12 + keyconf.xml), pulled over SSH
large-ssh-touch    large ssh   touched base   1 % of the files rewritten, pulled over SSH
large-ssh-bigrw    large ssh   bigrw   base   1 MiB rewritten in big.bin, pulled over SSH
EOF
)

# the guide's rsync options (IG-XLB §5) minus -e; --log-file goes to the work directory
XROAD_OPTS=(-aqz --timeout=10 --delete-delay --exclude db.properties
	--exclude /conf.d/node.ini --exclude '*.tmp' --exclude /postgresql --exclude /globalconf
	--exclude /gpghome --delay-updates)
XROAD_FILTERS=(--exclude db.properties --exclude /conf.d/node.ini --exclude '*.tmp'
	--exclude /postgresql --exclude /globalconf --exclude /gpghome)
LARGE_OPTS=(-a --delete --stats)

# ---------------------------------------------------------------------------------------------
# Preconditions

command -v rsync >/dev/null || bench_die "rsync not found"
command -v "${XR[0]}" >/dev/null 2>&1 ||
	bench_die "XR_CMD: '${XR[0]}' not found or not executable (run make, or set XR_CMD)"
command -v cc >/dev/null || bench_die "cc not found (needed for bench/rusage.c)"
command -v gnuplot >/dev/null || bench_msg "gnuplot not found: no plot will be made"

mkdir -p "$WORK" "$WORK/trees" "$WORK/run" "$RESULTS"
RUSAGE=$WORK/rusage
if [ ! -x "$RUSAGE" ] || [ "$BENCH/rusage.c" -nt "$RUSAGE" ]; then
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$RUSAGE" "$BENCH/rusage.c" ||
		bench_die "cannot compile bench/rusage.c"
fi

XROAD_LIB=${BENCH_XROAD_LIB:-$ROOT/tests/lib/xroad_tree.sh}
XROAD_NOTE=
if [ -f "$XROAD_LIB" ]; then
	# shellcheck source=/dev/null
	. "$XROAD_LIB" || XROAD_NOTE="tests/lib/xroad_tree.sh failed to load"
	set -euo pipefail	# in case the library changed the shell options
	for f in xroad_tree xroad_resave_keyconf xroad_edit_keyconf xroad_add_key; do
		declare -F "$f" >/dev/null || XROAD_NOTE="tests/lib/xroad_tree.sh has no $f"
	done
	# the library's copy of the guide's options wins, so the two cannot drift apart
	if declare -p XROAD_RSYNC_OPTS >/dev/null 2>&1 && declare -p XROAD_EXCLUDES >/dev/null 2>&1
	then
		XROAD_OPTS=("${XROAD_RSYNC_OPTS[@]}")
		XROAD_FILTERS=("${XROAD_EXCLUDES[@]}")
	fi
else
	XROAD_NOTE="tests/lib/xroad_tree.sh is not present"
fi
SSH_OK=0
BENCH_SSH_NOTE=
BENCH_WORK_DIR=$WORK
trap 'bench_ssh_stop' EXIT
if grep -q ' ssh ' <<<"$SCENARIOS" && bench_ssh_ready "$ROOT" "$(command -v "${XR[0]}")"; then
	SSH_OK=1
	trap 'bench_ssh_stop' EXIT	# sshd.sh chained its own trap; keep ours (it calls sshd_stop)
	trap 'exit 130' INT
	trap 'exit 143' TERM
fi

# parse the table once: S_TREE[NAME] S_TRANSPORT S_SRC S_DEST S_DESC; select ACTIVE (to run)
# and SKIPPED ("name|reason")
declare -A S_TREE S_TRANSPORT S_SRC S_DEST S_DESC
ACTIVE=()
SKIPPED=()
while read -r name tree transport src dest desc; do
	[ -n "$name" ] || continue
	S_TREE[$name]=$tree
	S_TRANSPORT[$name]=$transport
	S_SRC[$name]=$src
	S_DEST[$name]=$dest
	S_DESC[$name]=$desc
	if [ -n "$ONLY" ] && ! grep -qE -- "$ONLY" <<<"$name"; then
		continue
	fi
	if [ "$tree" = xroad ] && [ -n "$XROAD_NOTE" ]; then
		SKIPPED+=("$name|$XROAD_NOTE")
	elif [ "$transport" = ssh ] && [ "$SSH_OK" != 1 ]; then
		SKIPPED+=("$name|${BENCH_SSH_NOTE:-SSH not available}")
	elif [ "$transport" = ssh ] && [ "$tree" = large ] && [ "$MODE" = quick ] && [ -z "$ONLY" ]
	then
		SKIPPED+=("$name|full mode only (keeps --quick within a few minutes)")
	else
		ACTIVE+=("$name")
	fi
done <<<"$SCENARIOS"
[ ${#ACTIVE[@]} -gt 0 ] || { [ -n "$ONLY" ] && grep -qE -- "$ONLY" <<<watch; } ||
	bench_die "no scenario to run: $(printf '%s; ' "${SKIPPED[@]}")"

uses_tree() {
	local s
	for s in "${ACTIVE[@]}"; do
		[ "${S_TREE[$s]}" = "$1" ] && return 0
	done
	return 1
}

# ---------------------------------------------------------------------------------------------
# Trees (generated once per parameter set; outside every timed part)

LARGE_T=$WORK/trees/large-$LARGE_FILES-$LARGE_MB-$LARGE_BIG_MB-s$SEED
XROAD_T=$WORK/trees/xroad-s$SEED

# tree_stamp FILE: identifies the generator, so a cached tree is reused only if it made it
tree_stamp() {
	md5sum <"$1" | cut -d' ' -f1
}

make_large() {
	if [ "$(cat "$LARGE_T/.complete" 2>/dev/null)" = "$(tree_stamp "$BENCH/gen_large.sh")" ]; then
		bench_msg "reusing $LARGE_T"
		return
	fi
	rm -rf "$LARGE_T"
	mkdir -p "$LARGE_T"
	bench_msg "generating large tree ($LARGE_FILES files, $LARGE_MB MiB, big.bin $LARGE_BIG_MB MiB)"
	"$BENCH/gen_large.sh" --files "$LARGE_FILES" --mb "$LARGE_MB" --big-mb "$LARGE_BIG_MB" \
		"$LARGE_T/base" "$SEED"
	# variants share the unchanged files with base through hard links; gen_large.sh replaces
	# (rename) or un-links (big.bin) what it changes, so base stays intact. The tools only
	# read SRC.
	cp -al "$LARGE_T/base" "$LARGE_T/touched"
	"$BENCH/gen_large.sh" --touch "$LARGE_T/touched" "$SEED-touch"
	cp -al "$LARGE_T/base" "$LARGE_T/bigrw"
	"$BENCH/gen_large.sh" --rewrite-big "$LARGE_T/bigrw" "$SEED-bigrw"
	tree_stamp "$BENCH/gen_large.sh" >"$LARGE_T/.complete"
}

# xr_lib FUNCTION ARG...: call an xroad_tree.sh function without pipefail (its
# "openssl ... | head -c" pipelines end by SIGPIPE, which pipefail reports as failure)
xr_lib() {
	local rc=0
	set +o pipefail
	"$@" || rc=$?
	set -o pipefail
	[ "$rc" = 0 ] || bench_die "$1 failed (exit $rc)"
}

make_xroad() {
	if [ "$(cat "$XROAD_T/.complete" 2>/dev/null)" = "$(tree_stamp "$XROAD_LIB")" ]; then
		bench_msg "reusing $XROAD_T"
		return
	fi
	rm -rf "$XROAD_T"
	mkdir -p "$XROAD_T"
	bench_msg "generating X-Road tree"
	xr_lib xroad_tree "$XROAD_T/base" "$SEED"
	cp -a "$XROAD_T/base" "$XROAD_T/resave"
	xr_lib xroad_resave_keyconf "$XROAD_T/resave"
	cp -a "$XROAD_T/base" "$XROAD_T/edit"
	xr_lib xroad_edit_keyconf "$XROAD_T/edit"
	cp -a "$XROAD_T/base" "$XROAD_T/newkey"
	xr_lib xroad_add_key "$XROAD_T/newkey" >/dev/null	# prints the new key id
	tree_stamp "$XROAD_LIB" >"$XROAD_T/.complete"
}

WATCH_ON=0
if [ "${BENCH_WATCH:-1}" != 0 ] && { [ -z "$ONLY" ] || grep -qE -- "$ONLY" <<<watch; }; then
	if [ "$SSH_OK" != 1 ]; then
		SKIPPED+=("watch|${BENCH_SSH_NOTE:-SSH not available}")
	elif [ -n "$XROAD_NOTE" ]; then
		SKIPPED+=("watch|$XROAD_NOTE")
	elif ! command -v setpriv >/dev/null; then
		SKIPPED+=("watch|setpriv not installed")
	else
		WATCH_ON=1
	fi
fi

uses_tree large && make_large
{ uses_tree xroad || [ "$WATCH_ON" = 1 ]; } && make_xroad

tree_dir() {
	if [ "$1" = large ]; then echo "$LARGE_T"; else echo "$XROAD_T"; fi
}

tree_desc() {
	local d=$1
	find "$d" -type f -printf '%s\n' | awk -v d="$(find "$d" -type d | wc -l)" \
		'{ n++; t += $1 } END { printf "%d files, %d directories, %.1f MiB", n, d, t / 1048576 }'
}

# ---------------------------------------------------------------------------------------------
# One measured run

DEST=$WORK/dest
LOGDIR=$WORK/log	# --log-file of the X-Road runs; writable by user xroad for SSH runs
mkdir -p "$LOGDIR"
[ "$SSH_OK" = 1 ] && chown xroad:xroad "$LOGDIR"
RELAY_TSV=$WORK/run/relay.tsv
printf 'scenario\ttool\texit\tverify\trelay_sent\trelay_received\tconnections\tself_sent\tself_received\n' \
	>"$RELAY_TSV"
declare -A HUNG	# "SCENARIO|TOOL" that hit --timeout: not run again
declare -A RU	# the last run's rusage figures (bench_read_ru)
RUN=$WORK/run
RAW=$RUN/raw.tsv
printf '%s\n' "$BENCH_RAW_HEADER" >"$RAW"

# restore_dest TREE STATE: rebuild DEST from scratch in STATE (empty | base) - untimed. Always
# the full removal and, for base, a full copy, so every run of every tool starts from the same
# situation (fresh files, same amount of page cache just freed and just written).
restore_dest() {
	rm -rf "$DEST"
	case $2 in
	empty) mkdir "$DEST" ;;
	base) cp -a "$(tree_dir "$1")/base" "$DEST" ;;
	*) bench_die "unknown DEST state $2" ;;
	esac
	# over SSH the client runs as user xroad and must own what it writes
	if [ "${3:-local}" = ssh ]; then
		if [ "$1" = xroad ]; then chown xroad:xroad "$DEST"; else chown -R xroad:xroad "$DEST"; fi
	fi
}

# tool_cmd TOOL TREE: fill CMD with the command line of TOOL (rsync | ours) for TREE, without
# SRC and DEST
tool_cmd() {
	local opts pre=() rsh=()
	if [ "$2" = xroad ]; then
		opts=("${XROAD_OPTS[@]}")
		[ "${BENCH_XROAD_LOG:-1}" = 0 ] || opts+=("--log-file=$LOGDIR/tool.log")
	else
		opts=("${LARGE_OPTS[@]}")
	fi
	if [ "${3:-local}" = ssh ]; then
		# as user xroad, the guide's -e (test sshd's port, key, known_hosts; or the relay's)
		pre=(setpriv --reuid=xroad --regid=xroad --init-groups env -u SSH_AUTH_SOCK
			HOME="$(getent passwd xroad | cut -d: -f6)")
		rsh=(-e "$(bench_ssh_rsh "${4:-$SSHD_PORT}" "${5:-$KNOWN_HOSTS}")")
	fi
	if [ "$1" = rsync ]; then
		CMD=("${pre[@]}" rsync "${rsh[@]}" "${opts[@]}")
	else
		CMD=("${pre[@]}" "${XR[@]}" "${rsh[@]}")
		[ "${3:-local}" = ssh ] && CMD+=("--rsync-path=$BENCH_SSH_BIN")
		CMD+=("${opts[@]}")
	fi
}

# measure ROUND SCENARIO TOOL [warmup|relay]: run TOOL once for SCENARIO, append a line to $RAW
# (not for warmup; relay: through bench/relay, one line to $RELAY_TSV instead). Returns 0 when
# the run succeeded and DEST verified.
measure() {
	local round=$1 scen=$2 tool=$3 warm=${4:-}
	local tree transport src dest sdir rc verify sent recv load srcspec cpu0 rcpu=-
	tree=${S_TREE[$scen]}
	transport=${S_TRANSPORT[$scen]}
	src=${S_SRC[$scen]}
	dest=${S_DEST[$scen]}
	sdir=$(tree_dir "$tree")/$src
	if [ -n "${HUNG[$scen|$tool]:-}" ]; then	# it hung before: do not wait again
		[ -n "$warm" ] || printf '%s\t%s\t%s\ttimeout\tskipped%s\n' "$round" "$scen" "$tool" \
			"$(printf '\t-%.0s' {6..18})" >>"$RAW"
		return 1
	fi
	srcspec=$sdir/
	if [ "$warm" = relay ]; then
		bench_relay_start "$RUN"
		tool_cmd "$tool" "$tree" ssh "$BENCH_RELAY_PORT" "$BENCH_RELAY_KH"
	else
		tool_cmd "$tool" "$tree" "$transport"
	fi
	[ "$transport" = ssh ] && srcspec=$(bench_ssh_spec "$sdir/")

	restore_dest "$tree" "$dest" "$transport"
	rm -f -- "$RUN/ru" "$RUN/out" "$RUN/err" "$LOGDIR/tool.log" "$RUN/verify"
	sync	# flush the restore's dirty pages; caches stay warm for both tools
	read -r load _ </proc/loadavg
	if [ "$transport" = ssh ]; then
		bench_sshd_idle || true
		cpu0=$(bench_sshd_cpu)
	fi
	rc=0
	"$RUSAGE" -t "$TIMEOUT" -o "$RUN/ru" -- "${CMD[@]}" "$srcspec" "$DEST/" \
		>"$RUN/out" 2>"$RUN/err" </dev/null || rc=$?
	if [ "$transport" = ssh ]; then
		# the session's processes are reaped by the sshd listener shortly after the client
		# exits; their CPU then shows in the listener's cutime+cstime
		if bench_sshd_idle; then
			rcpu=$(awk -v a="$cpu0" -v b="$(bench_sshd_cpu)" 'BEGIN { printf "%.3f", b - a }')
		fi
	fi
	[ "$warm" = relay ] && bench_relay_stop "$RUN/relay.line"
	[ -s "$RUN/ru" ] || bench_die "$scen/$tool: rusage produced no output: $(tail -n 3 "$RUN/err")"
	bench_read_ru "$RUN/ru"
	if [ "${RU[timed_out]:-0}" = 1 ]; then
		rc=timeout
		HUNG[$scen|$tool]=1
	fi
	verify=skipped
	if [ "$rc" = 0 ] && [ "$VERIFY" = 1 ]; then
		local filt=()
		[ "$tree" = xroad ] && filt=("${XROAD_FILTERS[@]}")
		# xroad-replicate's own state directory in DEST (include/xr/commit.h: lock, stage/,
		# journal; "never listed, sent or deleted") is not part of the replicated tree
		filt+=(--exclude=/.xroad-replicate/)
		# a client running as xroad cannot give files another owner (rsync as non-root)
		[ "$transport" = ssh ] && [ "$tree" = large ] && filt+=(--no-owner --no-group)
		# content (-c) and metadata (-a) of every file, extra files (--delete)
		if rsync -anic --delete "${filt[@]}" "$sdir/" "$DEST/" >"$RUN/verify" 2>&1 &&
			[ ! -s "$RUN/verify" ]; then
			verify=ok
		else
			verify=differs
		fi
	elif [ "$rc" = 0 ]; then
		verify=ok	# --no-verify: trusted
	fi
	if [ "$tree" = xroad ]; then
		read -r sent recv <<<"$(bench_parse_bytes "$LOGDIR/tool.log")"
	else
		read -r sent recv <<<"$(bench_parse_bytes "$RUN/out")"
	fi
	if [ "$rc" != 0 ] || [ "$verify" != ok ]; then
		local keep="$RUN/fail-$scen-$tool-r$round"
		mkdir -p "$keep"
		cp "$RUN/ru" "$RUN/out" "$RUN/err" "$keep/" 2>/dev/null || true
		cp "$RUN/verify" "$keep/" 2>/dev/null || true
		bench_msg "$scen/$tool${warm:+ (warm-up)}: FAILED exit=$rc verify=$verify" \
			"(details in $keep): $(head -c 300 "$RUN/err" | tr '\n' ' ')" \
			"$(head -n 3 "$RUN/verify" 2>/dev/null | tr '\n' ' ')"
	fi
	if [ "$warm" = relay ]; then
		local rl rs rr rn
		rl=$(cat "$RUN/relay.line" 2>/dev/null || true)
		read -r rs rr <<<"$(bench_parse_bytes "$RUN/relay.line")"
		rn=${rl##*connections }
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$tool" "$rc" "$verify" \
			"$rs" "$rr" "${rn:--}" "$sent" "$recv" >>"$RELAY_TSV"
	elif [ -z "$warm" ]; then
		# one field per BENCH_RAW_HEADER column (lib.sh), in that order
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
			"$round" "$scen" "$tool" "$rc" "$verify" \
			"${RU[wall_s]:--}" "${RU[cpu_s]:--}" "${RU[tree_rss_kb]:--}" \
			"${RU[client_rss_kb]:--}" "${RU[server_rss_kb]:--}" "${RU[client_cpu_s]:--}" \
			"${RU[server_cpu_s]:--}" "${RU[nprocs]:--}" \
			"$sent" "$recv" "$load" "$rcpu" "${RU[sum_rss_kb]:--}" >>"$RAW"
	fi
	[ "$rc" = 0 ] && [ "$verify" = ok ]
}

# ---------------------------------------------------------------------------------------------
# Warm-up (untimed): one initial sync per tree and tool, so binaries, libraries and SRC are in
# the page cache before the first measured run.

for tree in large xroad; do
	uses_tree "$tree" || continue
	for tr in local ssh; do
		ws=
		for s in "${ACTIVE[@]}"; do
			if [ "${S_TREE[$s]}" = "$tree" ] && [ "${S_TRANSPORT[$s]}" = "$tr" ]; then
				[ -z "$ws" ] || [ "${S_DEST[$s]}" = empty ] && ws=$s
			fi
		done
		[ -n "$ws" ] || continue
		for tool in rsync ours; do
			bench_msg "warm-up: $ws/$tool"
			measure 0 "$ws" "$tool" warmup || true
		done
	done
done

# ---------------------------------------------------------------------------------------------
# Rounds: every scenario, both tools back to back; the order alternates from pair to pair so
# neither tool always runs first. The X-Road scenarios (runs of ~0.1 s) do XROAD_REPEAT pairs
# per round.

for ((r = 1; r <= ROUNDS; r++)); do
	for scen in "${ACTIVE[@]}"; do
		reps=1
		[ "${S_TREE[$scen]}" = xroad ] && reps=$XROAD_REPEAT
		[ "${S_TREE[$scen]}" = xroad ] && [ "${S_TRANSPORT[$scen]}" = ssh ] && reps=$SSH_REPEAT
		for ((k = 1; k <= reps; k++)); do
			# pair number p across the whole run decides who goes first
			if (((r * reps + k) % 2)); then order=(ours rsync); else order=(rsync ours); fi
			label=$r
			[ "$reps" = 1 ] || label=$r.$k
			for tool in "${order[@]}"; do
				measure "$label" "$scen" "$tool" || true
			done
		done
	done
	bench_msg "round $r/$ROUNDS done ($(( $(date +%s) - T_START )) s elapsed)"
done

# SSH-level bytes: once per SSH scenario and tool, through the byte-counting relay (bench/relay.c)
# in front of sshd; not timed (the relay adds a hop), only the bytes are kept.
for scen in "${ACTIVE[@]}"; do
	[ "${S_TRANSPORT[$scen]}" = ssh ] || continue
	for tool in rsync ours; do
		measure relay "$scen" "$tool" relay || true
	done
done

# --watch: latency to 1/2/8 secondaries, rsync+inotifywait, 100/s stream, idle CPU
if [ "$WATCH_ON" = 1 ]; then
	# shellcheck source=bench/watch.sh
	. "$BENCH/watch.sh"
	watch_run
fi

# ---------------------------------------------------------------------------------------------
# Report

STAMP=$(date -u +%Y%m%d-%H%M%S)
BASE=$STAMP-$MODE
MD=$RESULTS/$BASE.md
PNG=$RESULTS/$BASE.png
DAT=$RUN/ratios.dat
cp "$RAW" "$RESULTS/$BASE.tsv"
[ "$WATCH_ON" = 1 ] && [ -s "$RUN/latency-raw.tsv" ] && cp "$RUN/latency-raw.tsv" "$RESULTS/$BASE-latency.tsv"
[ -s "$RELAY_TSV" ] && cp "$RELAY_TSV" "$RESULTS/$BASE-relay.tsv"
XR_NAME=$(basename "${XR[0]}")
[ "$XR_NAME" = rsync ] && XR_NAME="rsync (as XR_CMD)"

# statistics of all runs, computed once (see bench_table in lib.sh)
declare -A CELL_A CELL_B RATIO RUNS
while IFS=$'\t' read -r kind s c x y z _ _; do
	if [ "$kind" = C ]; then
		CELL_A["$s|$c"]=$x
		CELL_B["$s|$c"]=$y
		RATIO["$s|$c"]=$z
	else
		RUNS["$s|$c"]=$x
	fi
done < <(bench_table "$RAW")

# row SCEN COL LABEL: one Markdown table row of a scenario table
row() {
	printf '| %s | %s | %s | %s |\n' "$3" "${CELL_A["$1|$2"]:--}" "${CELL_B["$1|$2"]:--}" \
		"${RATIO["$1|$2"]:--}"
}

# medcell SCEN COL TOOL: the median alone (the part of a cell before " [")
medcell() {
	local v
	if [ "$3" = rsync ]; then v=${CELL_A["$1|$2"]:--}; else v=${CELL_B["$1|$2"]:--}; fi
	printf '%s' "${v%% \[*}"
}

# target SCEN COL LIMIT LABEL: a targets row from a ratio
target() {
	local r=${RATIO["$1|$2"]:--} v
	if [ "$r" = - ]; then
		v="not measured"
	elif awk -v r="$r" -v l="$3" 'BEGIN { exit !(r <= l) }'; then
		v=met
	else
		v="**missed**"
	fi
	printf '| %s | %s | ≤ %s | %s |\n' "$4" "$r" "$3" "$v"
}

# tval VALUE LIMIT LABEL UNIT: a targets row from an absolute value
tval() {
	local v
	if [ "$1" = - ] || [ -z "$1" ]; then
		v="not measured"
	elif awk -v r="$1" -v l="$2" 'BEGIN { exit !(r <= l) }'; then
		v=met
	else
		v="**missed**"
	fi
	printf '| %s | %s %s | ≤ %s %s | %s |\n' "$3" "${1:--}" "$4" "$2" "$4" "$v"
}

bench_targets() {
	local s rb
	printf '\n## Targets (issue "Benchmark harness")\n\n'
	printf '| target | measured | limit | verdict |\n|---|---:|---:|---|\n'
	for s in large-initial large-nochange large-touch; do
		target "$s" 6 1.00 "$s: wall ratio"
		target "$s" 9 1.00 "$s: peak RSS client ratio"
		target "$s" 10 1.00 "$s: peak RSS server ratio"
		target "$s" 18 1.00 "$s: peak RSS all processes (sum) ratio"
	done
	target xroad-ssh-nochange 6 0.60 "SSH no-change pull: wall ratio"
	target xroad-ssh-nochange 7 0.50 "SSH no-change pull: client CPU ratio"
	target xroad-ssh-edit 14 1.00 "SSH keyconf edit: bytes sent ratio (self-reported)"
	target xroad-ssh-edit 15 1.00 "SSH keyconf edit: bytes received ratio (self-reported)"
	rb=$(awk -F'\t' '$2 == "xroad-ssh-edit" && $4 == 0 && $5 == "ok" && $14 != "-" {
			v[$3, ++n[$3]] = $14 + $15 }
		function med(t,  i, j, k, x, a) { k = n[t]; for (i = 1; i <= k; i++) a[i] = v[t, i]
			for (i = 2; i <= k; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--)
				a[j + 1] = a[j]; a[j + 1] = x }
			return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
		END { if (n["rsync"] && n["ours"]) printf "%.2f", med("ours") / med("rsync"); else print "-" }' \
		"$RAW")
	tval "$rb" 1.00 "SSH keyconf edit: bytes sent+received ratio (self-reported, medians)" ""
	rb=$(awk -F'\t' '$1 == "xroad-ssh-edit" { t[$2] = $5 + $6 }
		END { if (t["rsync"] > 0 && ("ours" in t)) printf "%.2f", t["ours"] / t["rsync"]; else print "-" }' \
		"$RELAY_TSV")
	tval "$rb" 1.00 "SSH keyconf edit: SSH-level bytes ratio (relay)" ""
	if [ "$WATCH_ON" = 1 ]; then
		tval "${WATCH_STAT[ours, 2 sec.|p50]:--}" 20 "watch, 2 secondaries: p50" ms
		tval "${WATCH_STAT[ours, 2 sec.|p99]:--}" 100 "watch, 2 secondaries: p99" ms
		tval "${WATCH_STAT[stream 100/s, 2 sec.|p99]:--}" 250 "stream 100/s: p99" ms
		printf '| stream 100/s: every change applied, final trees equal | %s of %s; %s | all | %s |\n' \
			"${WATCH_STAT[stream 100/s, 2 sec.|ok]:--}" "${WATCH_STAT[stream 100/s, 2 sec.|n]:--}" \
			"${WATCH_STAT[stream|verify]:-not run}" \
			"$([ "${WATCH_STAT[stream 100/s, 2 sec.|ok]:-x}" = "${WATCH_STAT[stream 100/s, 2 sec.|n]:-y}" ] &&
				[ "${WATCH_STAT[stream|verify]:-}" = ok ] && echo met || echo '**missed**')"
		tval "$WATCH_IDLE_CPU" 0.05 "idle watcher CPU over ${WATCH_IDLE_SECS:-?} s (all processes)" s
	fi
	printf '\nRatios are median(ours) / median(rsync) from the tables above; the machine load '
	printf 'is in the header (wall-time ratios under load are noisy).\n'
}

RSYNC_VER=$(rsync --version 2>&1 | sed -n 1p | tr -s ' ')
XR_VER=$(timeout -k 2 10 "${XR[0]}" --version 2>&1 | sed -n 1p | tr -s " " || true)
ELAPSED=$(( $(date +%s) - T_START ))

{
	printf '# Benchmark: %s vs rsync (%s)\n\n' "$XR_NAME" "$MODE"
	if [ "${XR[0]}" = rsync ]; then
		printf '> **Harness validation run**: XR_CMD is rsync itself, so both columns measure\n'
		printf '> rsync and every ratio should be close to 1.00. No xroad-replicate figures here.\n\n'
	fi
	printf -- '- date: %s (UTC %s)\n' "$(date '+%Y-%m-%d %H:%M:%S %Z')" "$STAMP"
	printf -- '- git commit: %s\n' "$(bench_git_rev)"
	printf -- '- XR_CMD: `%s` — %s\n' "$XR_CMD" "${XR_VER:-version unknown}"
	printf -- '- rsync: `%s` — %s\n' "$(command -v rsync)" "$RSYNC_VER"
	printf -- '- mode: %s, %s rounds (X-Road scenarios: %s pairs per round), run time %d s' \
		"$MODE" "$ROUNDS" "$XROAD_REPEAT" "$ELAPSED"
	printf ' (generation, restores and verification included)\n'
	printf -- '- load average (1 min) just before the measured runs: %s\n' \
		"$(awk -F'\t' 'NR > 1 { if (n++ == 0 || $16 < lo) lo = $16; if ($16 > hi) hi = $16 }
			END { if (n) printf "%s–%s", lo, hi; else printf "-" }' "$RAW")"
	if awk -F'\t' -v n="$(nproc)" 'NR > 1 && $16 > n { hot = 1 } END { exit !hot }' "$RAW"; then
		printf -- '- **warning**: the load average exceeded nproc during the runs; other work\n'
		printf '  competed for the CPUs, so wall times (and their ratios) are mostly noise.\n'
	fi
	bench_machine "$WORK"
	printf '\n## Trees\n\n'
	if uses_tree large; then
		printf -- '- large (`gen_large.sh --files %s --mb %s --big-mb %s`, seed %s): %s; ' \
			"$LARGE_FILES" "$LARGE_MB" "$LARGE_BIG_MB" "$SEED" "$(tree_desc "$LARGE_T/base")"
		printf 'options for both tools: `%s`\n' "${LARGE_OPTS[*]}"
	fi
	if uses_tree xroad; then
		printf -- '- xroad (`xroad_tree`, seed %s): %s; options for both tools: `%s%s`\n' \
			"$SEED" "$(tree_desc "$XROAD_T/base")" "$(printf '%q ' "${XROAD_OPTS[@]}" | sed 's/ $//')" \
			"$([ "${BENCH_XROAD_LOG:-1}" = 0 ] || printf ' --log-file=WORK/tool.log')"
	fi
	cat <<'EOF'

## How to read

- Each scenario ran once per round for each tool (X-Road scenarios: several pairs per round),
  back to back, alternating which tool goes first. Before every run DEST was rebuilt from
  scratch in the scenario's starting state and `sync` flushed dirty pages (untimed); no cache
  was dropped, so both tools see the same warm page cache.
- "median [min–max]" over the successful runs; a run counts only if it exited 0 and DEST then
  matched SRC (`rsync -anic --delete`, content and metadata). Ratio = median(ours) /
  median(rsync); below 1.00 means ours is faster/smaller.
- wall: fork to exit of the client. CPU: user+system of the whole process tree (client plus
  everything it forked and reaped), a sum. RSS client: peak RSS (VmHWM) of the client process.
  RSS server: the largest peak RSS of any process the client forked (for local runs: rsync's
  receiver/generator, or the local serve side) — a max over processes, not a sum.
- The "client" is not the same role for both tools, so client vs client (and server vs
  server) compares different work. rsync, local `rsync -a SRC/ DEST/`: client = the
  **sender**; it forks the generator, which forks the receiver (3 processes). rsync pulling
  over SSH: client = the generator; it forks `ssh` and the receiver. xroad-replicate `pull`,
  local: client = the **receiver** (plan, staging, journal); it forks and execs one `serve`,
  the sender (2 processes); over SSH: the client alone (libssh2 built in, no child).
- RSS all processes (sum of peaks): the peak RSS (VmHWM) of every process of the client tree
  added up — the one memory figure that compares the whole sync of both tools. It is an upper
  bound of what the run held at once: the peaks need not coincide, and a page mapped by several
  processes counts once per process (shared libraries; for rsync, which forks without exec, also
  copy-on-write pages such as the file list the generator holds when it forks the receiver).
  For SSH runs it covers the local client tree only (not the remote side).
- bytes: the tool's own "sent N bytes  received N bytes" (`--stats` for the large tree, the
  `--log-file` summary line for the X-Road tree, since `-q` silences `--stats`); "-" when the
  tool printed none. For local runs this is the protocol stream through the local pipe.

EOF
	printf '## Summary\n\n'
	printf '| scenario | wall rsync (s) | wall %s (s) | wall ratio | CPU ratio ' "$XR_NAME"
	printf '| RSS client ratio | RSS server ratio | RSS all ratio |\n'
	printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
	: >"$DAT"
	for scen in "${ACTIVE[@]}"; do
		printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$scen" \
			"$(medcell "$scen" 6 rsync)" "$(medcell "$scen" 6 ours)" \
			"${RATIO["$scen|6"]:--}" "${RATIO["$scen|7"]:--}" "${RATIO["$scen|9"]:--}" \
			"${RATIO["$scen|10"]:--}" "${RATIO["$scen|18"]:--}"
		printf '%s %s %s\n' "$scen" "${RATIO["$scen|6"]:--}" "${RATIO["$scen|7"]:--}" >>"$DAT"
	done
	printf '\n![wall and CPU ratio per scenario](%s)\n\n' "$BASE.png"
	printf '## Scenarios\n'
	for scen in "${ACTIVE[@]}"; do
		printf '\n### %s — %s\n\n' "$scen" "${S_DESC[$scen]}"
		printf 'tree %s, %s, SRC = %s, DEST before each run = %s. Runs: rsync %s; %s %s.\n\n' \
			"${S_TREE[$scen]}" "${S_TRANSPORT[$scen]}" "${S_SRC[$scen]}" \
			"${S_DEST[$scen]}" "${RUNS["$scen|rsync"]:-0/0 ok}" "$XR_NAME" \
			"${RUNS["$scen|ours"]:-0/0 ok}"
		printf '| metric | rsync | %s | ratio |\n|---|---:|---:|---:|\n' "$XR_NAME"
		row "$scen" 6 'wall (s)'
		if [ "${S_TRANSPORT[$scen]}" = ssh ]; then
			row "$scen" 7 'client CPU user+sys, tree incl. ssh (s)'
			row "$scen" 17 'server CPU, sshd session tree (s)'
			row "$scen" 9 'peak RSS client (MiB)'
			row "$scen" 10 'peak RSS forked by client, max (MiB)'
			row "$scen" 18 'peak RSS, all processes (sum of peaks) (MiB)'
		else
			row "$scen" 7 'CPU user+sys, tree (s)'
			row "$scen" 9 'peak RSS client (MiB)'
			row "$scen" 10 'peak RSS server, max (MiB)'
			row "$scen" 18 'peak RSS, all processes (sum of peaks) (MiB)'
		fi
		row "$scen" 13 'processes'
		row "$scen" 14 'bytes sent (self-reported)'
		row "$scen" 15 'bytes received (self-reported)'
		if [ "${S_TRANSPORT[$scen]}" = ssh ]; then
			awk -F'\t' -v s="$scen" '$1 == s { v[$2] = $5 + $6; e[$2] = $3 "/" $4 }
				END { r = "-"
					if (("rsync" in v) && ("ours" in v) && v["rsync"] > 0)
						r = sprintf("%.2f", v["ours"] / v["rsync"])
				printf "| SSH-level bytes, both ways (relay, 1 run) | %s | %s | %s |\n",
					("rsync" in v) ? v["rsync"] " B" : "-", ("ours" in v) ? v["ours"] " B" : "-", r }' \
				"$RELAY_TSV"
		fi
	done
	if grep -q . <(awk 'NR > 1' "$RELAY_TSV"); then
		printf '\n## Bytes on the wire over SSH: self-reported vs counted by a TCP relay\n\n'
		printf 'One extra run per SSH scenario and tool (not timed) through `bench/relay.c`, a '
		printf 'byte-counting TCP relay on 127.0.0.1 in front of sshd: both tools connect to the '
		printf 'relay (-e ... -p RELAYPORT, known_hosts entry for that port), so these are SSH-level '
		printf 'bytes (encryption, key exchange, MACs, padding) of the same kind for both, '
		printf 'independent of what either tool reports. "self" = the tool'"'"'s own "sent/received" '
		printf '(its --log-file line: payload of its protocol, before encryption).\n\n'
		printf '| scenario | tool | exit/verify | relay: client→server | relay: server→client | relay total | self: sent | self: received | ours/rsync (relay total) |\n'
		printf '|---|---|---|---:|---:|---:|---:|---:|---:|\n'
		awk -F'\t' 'NR > 1 { t[$1, $2] = $5 + $6; line[++n] = $0 }
			END { for (i = 1; i <= n; i++) { split(line[i], f, "\t")
				r = (f[2] == "ours" && t[f[1], "rsync"] > 0) ? sprintf("%.2f", t[f[1], "ours"] / t[f[1], "rsync"]) : ""
				printf "| %s | %s | %s/%s | %s | %s | %d | %s | %s | %s |\n", f[1], f[2], f[3], f[4],
					f[5], f[6], f[5] + f[6], f[8], f[9], r } }' "$RELAY_TSV"
		printf '\nServer CPU of SSH runs: the growth of the sshd listener'"'"'s cutime+cstime '
		printf '(/proc/SSHD_PID/stat) over the run, read once its session child was reaped: '
		printf 'sshd'"'"'s per-connection processes (crypto, privilege separation) plus the remote '
		printf 'rsync or `xroad-replicate serve`, as each level waits for its children. Client CPU '
		printf 'includes the ssh child of rsync (wait4 rusage of the whole client tree); ours has '
		printf 'no child (built-in libssh2).\n'
	fi
	[ "$WATCH_ON" = 1 ] && [ -s "$RUN/watch.md" ] && sed "s/@BASE@/$BASE/g" "$RUN/watch.md"
	bench_targets
	if [ ${#SKIPPED[@]} -gt 0 ]; then
		printf '\n## Not run\n\n'
		for s in "${SKIPPED[@]}"; do
			printf -- '- %s: %s\n' "${s%%|*}" "${s#*|}"
		done
	fi
	printf '\n## Raw data\n\n`%s.tsv`: one line per measured run (%s).\n' "$BASE" \
		"$(head -n 1 "$RAW" | tr '\t' ' ')"
} >"$MD"

rm -f "$RESULTS/latest.png"
plotted=0
if ! command -v gnuplot >/dev/null; then
	bench_msg "no plot: gnuplot not installed"
elif ! awk '$2 != "-" { found = 1 } END { exit !found }' "$DAT"; then
	bench_msg "no plot: no scenario has results for both tools"
else
	title="$XR_NAME / rsync, median/median ($MODE, $ROUNDS rounds)"
	latlabels=
	[ "$WATCH_ON" = 1 ] && [ -s "$RUN/latency.labels" ] &&
		latlabels=$(wc -l <"$RUN/latency.labels")
	if gnuplot -e "datafile='$DAT'; outfile='$PNG'; plottitle='$title'" \
		-e "latencyfile='$([ -n "$latlabels" ] && echo "$RUN/latency.dat")'; nlat=${latlabels:-0}" \
		"$BENCH/plot.gp"; then
		cp "$PNG" "$RESULTS/latest.png"
		plotted=1
	else
		bench_msg "gnuplot failed; no plot"
	fi
fi
if [ "$plotted" = 0 ]; then
	nop="(no plot: no scenario has results for both tools, or gnuplot failed)"
	sed -i "s|^!\[wall and CPU ratio per scenario\]($BASE.png)\$|$nop|" "$MD"
fi
sed "s|($BASE.png)|(latest.png)|" "$MD" >"$RESULTS/latest.md"

bench_ssh_stop
if [ "$KEEP" = 0 ]; then
	rm -rf "$WORK/trees" "$DEST" "$WORK/watch"
fi
bench_msg "done in $(( $(date +%s) - T_START )) s: $MD"
