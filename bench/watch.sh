# bench/watch.sh - the --watch scenarios of bench/run.sh (sourced by it after the sync rounds;
# bash). Needs the loopback sshd of the SSH scenarios (bench_ssh_ready) and the X-Road tree.
# shellcheck shell=bash disable=SC2016,SC2154,SC2034,SC2013
#
#   watch latency  push --watch from a primary (an X-Road tree, user xroad) to 1, 2 and 8
#                  secondaries, each a local directory reached over SSH to 127.0.0.1 (one SSH
#                  session per secondary, as to real hosts); bench/latency.c rewrites a file
#                  (tmp + rename, like the signer) every WATCH_GAP ms, WATCH_N times, and
#                  watches every secondary with inotify: latency = rename() on the primary to
#                  the new content present on EVERY secondary
#   rsync + inotifywait  the same measurement with "inotifywait -m -r | while read: rsync to
#                  every secondary in parallel" (queued events drained first), 2 secondaries
#   rsync timer    the guide's every-minute timer, computed: a uniformly distributed wait for
#                  the next tick (max over the secondaries) plus one measured rsync run
#   stream         100 changes/s over 50 files for STREAM_S seconds to 2 secondaries: every
#                  change must arrive (latency.c), the final trees must equal the primary
#   idle           the 2-secondary watcher left alone for IDLE_S seconds: CPU (utime+stime from
#                  /proc/PID/stat) and context switches (/proc/PID/task/*/status) of the watcher
#                  tree, of the remote serve processes and of their sshd session processes
#
# Writes $RUN/watch.md (a Markdown fragment for the report), $RUN/latency.dat (one block per
# configuration: "MS FRACTION", sorted; for the CDF plot), $RUN/latency.labels, and sets
# WATCH_STAT[label|p50|p95|p99|max|n|ok] and WATCH_IDLE_* for the targets table.

declare -A WATCH_STAT
WATCH_IDLE_CPU=-
WATCH_NOTE=

# watch_pct FILE: "N OK P50 P95 P99 MAX" (ms, nearest rank) of column 2 (µs, -1 = never) of a
# latency.c raw file
watch_pct() {
	local n
	n=$(wc -l <"$1")
	awk '$2 >= 0 { print $2 / 1000 }' "$1" | sort -g | awk -v n="$n" '
	function p(q,  i) { i = int((k * q + 99) / 100); if (i < 1) i = 1; return v[i] }
	{ v[++k] = $1 }
	END {
		if (!k) { printf "%d 0 - - - -\n", n; exit }
		printf "%d %d %.1f %.1f %.1f %.1f\n", n, k, p(50), p(95), p(99), v[k]
	}'
}

# watch_cdf LABEL FILE: append LABEL's block to latency.dat
watch_cdf() {
	awk '$2 >= 0 { print $2 / 1000 }' "$2" | sort -g |
		awk -v l="$1" 'BEGIN { printf "\"%s\" \"fraction\"\n", l } { v[++n] = $1 }
			END { for (i = 1; i <= n; i++) printf "%.3f %.4f\n", v[i], i / n; print ""; print "" }' \
		>>"$RUN/latency.dat"
	printf '%s\n' "$1" >>"$RUN/latency.labels"
}

# watch_record LABEL RAWFILE: statistics into WATCH_STAT and the CDF data
watch_record() {
	local n ok p50 p95 p99 mx
	read -r n ok p50 p95 p99 mx <<<"$(watch_pct "$2")"
	WATCH_STAT[$1|n]=$n WATCH_STAT[$1|ok]=$ok WATCH_STAT[$1|p50]=$p50
	WATCH_STAT[$1|p95]=$p95 WATCH_STAT[$1|p99]=$p99 WATCH_STAT[$1|max]=$mx
	watch_cdf "$1" "$2"
	awk -v l="$1" '{ print l "\t" $0 }' "$2" >>"$RUN/latency-raw.tsv"
}

# watch_tree_pids PID: PID and its descendants
watch_tree_pids() {
	local c
	echo "$1"
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		watch_tree_pids "$c"
	done
}

# watch_cpu PID...: "TICKS VOLUNTARY NONVOLUNTARY" summed over the processes (all threads)
watch_cpu() {
	local p st t=0 v=0 nv=0 f
	for p in "$@"; do
		st=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		st=${st##*) }
		# shellcheck disable=SC2086
		set -- $st
		t=$((t + ${12} + ${13}))
		for f in /proc/"$p"/task/*/status; do
			read -r a b <<<"$(awk '/^voluntary_ctxt/ { a = $2 } /^nonvoluntary_ctxt/ { b = $2 }
				END { print a + 0, b + 0 }' "$f" 2>/dev/null)"
			v=$((v + a)) nv=$((nv + b))
		done
	done
	echo "$t $v $nv"
}

# watch_stop PID: SIGTERM to the watcher (our own child), wait up to 3 s, then SIGKILL; its
# forked processes that outlive it get SIGTERM too (noted in WATCH_NOTE)
watch_stop() {
	local i p left=""
	# shellcheck disable=SC2207
	local tree=($(watch_tree_pids "$1" | tail -n +2))
	kill -TERM "$1" 2>/dev/null || return 0
	for i in $(seq 1 150); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.02
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	sleep 0.2
	for p in "${tree[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			left+=" $p"
			kill -TERM "$p" 2>/dev/null || true
		fi
	done
	[ -z "$left" ] || WATCH_NOTE+="forked watcher processes outlived SIGTERM to the watcher:$left (sent SIGTERM). "
}

watch_run() {
	local W=$WORK/watch LAT=$WORK/latency P n i d dests pid out rc E lab secs
	local c0 c1 s0 s1 h0 h1 t0 t1 serves sessions
	if [ "$MODE" = quick ]; then
		WATCH_N=${BENCH_WATCH_N:-100} STREAM_S=${BENCH_STREAM_S:-10}
		IDLE_S=${BENCH_IDLE_S:-15} RSYNC_N=${BENCH_RSYNC_N:-15}
	else
		WATCH_N=${BENCH_WATCH_N:-200} STREAM_S=${BENCH_STREAM_S:-30}
		IDLE_S=${BENCH_IDLE_S:-60} RSYNC_N=${BENCH_RSYNC_N:-100}
	fi
	WATCH_GAP=${BENCH_WATCH_GAP:-50} RSYNC_GAP=${BENCH_RSYNC_GAP:-1000}
	if [ ! -x "$LAT" ] || [ "$BENCH/latency.c" -nt "$LAT" ]; then
		cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$LAT" "$BENCH/latency.c" ||
			bench_die "cannot compile bench/latency.c"
	fi
	: >"$RUN/latency.dat"
	: >"$RUN/latency.labels"
	printf 'config\tseq lat_all_us lat_dest1_us ... (-1: never arrived)\n' >"$RUN/latency-raw.tsv"
	rm -rf "$W"
	mkdir -p "$W/sec" "$W/log"
	chmod 0755 "$W"
	P=$W/primary
	cp -a "$XROAD_T/base" "$P"
	chown xroad:xroad "$P" "$W/sec" "$W/log"
	for i in 1 2 3 4 5 6 7 8; do
		cp -a "$XROAD_T/base" "$W/sec/s$i"	# a secondary that already had a copy
		chown xroad:xroad "$W/sec/s$i"
	done
	E=$(bench_ssh_rsh)
	local VFILT=("${XROAD_FILTERS[@]}" --exclude=/.xroad-replicate/)
	local POPTS=(-a --delete "${XROAD_FILTERS[@]}")

	{
	printf '\n## Watch mode (push --watch)\n\n'
	printf 'Primary: a copy of the X-Road tree, owned by xroad; secondaries: local directories '
	printf 'reached over SSH to the test sshd on 127.0.0.1 as user xroad (one SSH session per '
	printf 'secondary, for 1, 2 and 8 secondaries alike). Watcher: `xroad-replicate push --watch '
	printf -- '-e "%s" --rsync-path=BIN %s PRIMARY/ xroad@127.0.0.1:SEC1 ...`, run as user xroad ' \
		"ssh -o ConnectTimeout=5 -p PORT -i KEY -o UserKnownHostsFile=KH" "${POPTS[*]}"
	printf '(default `--watch-quiet` 10 ms). Changes: `bench/latency.c` rewrites a file by tmp + '
	printf 'rename (as the signer saves keyconf.xml); latency = from rename() on the primary to '
	printf 'the new content on **every** secondary, seen with inotify on the secondaries (no '
	printf 'polling; a 20 ms re-read safety net counts separately as "fallback").\n\n'
	} >"$RUN/watch.md"

	# --- ours: 1, 2, 8 secondaries ------------------------------------------------------

	for n in 1 2 8; do
		dests=() ; local ddirs=()
		for ((i = 1; i <= n; i++)); do
			dests+=("xroad@127.0.0.1:$W/sec/s$i")
			ddirs+=("$W/sec/s$i")
		done
		bench_msg "watch: push --watch to $n secondar$([ "$n" = 1 ] && echo y || echo ies)"
		# setpriv and env exec: $! is the watcher itself (a function would leave a subshell)
		setpriv --reuid=xroad --regid=xroad --init-groups env -u SSH_AUTH_SOCK \
			HOME="$(getent passwd xroad | cut -d: -f6)" "$BENCH_SSH_BIN" push --watch -e "$E" \
			--rsync-path="$BENCH_SSH_BIN" "${POPTS[@]}" "$P/" "${dests[@]}" \
			>"$W/watch$n.out" 2>"$W/watch$n.err" </dev/null &
		pid=$!
		lab="ours, $n sec."
		bench_as_client mkdir "$P/bench-lat-$n"
		rc=0
		out=$(bench_as_client "$LAT" -n "$WATCH_N" -g "$WATCH_GAP" -s "bench-lat-$n" -w 30000 \
			-o "$W/log/lat$n.raw" "$P" "${ddirs[@]}" 2>&1) || rc=$?
		bench_msg "watch: $n: $out"
		if [ ! -s "$W/log/lat$n.raw" ]; then
			WATCH_NOTE+="$lab: no result (exit $rc: $out; watcher: $(tail -n 2 "$W/watch$n.err" | tr '\n' ' ')). "
			watch_stop "$pid"
			continue
		fi
		cp "$W/log/lat$n.raw" "$RUN/lat-ours-$n.raw"
		watch_record "$lab" "$W/log/lat$n.raw"
		WATCH_STAT[$lab|sum]=$out
		if [ "$n" = 2 ]; then
			# --- stream: 100 changes/s over 50 files ------------------------------
			bench_msg "watch: stream 100/s for $STREAM_S s to 2 secondaries"
			bench_as_client mkdir "$P/bench-stream"
			rc=0
			out=$(bench_as_client "$LAT" -n $((100 * STREAM_S)) -r 100 -f 50 -s bench-stream \
				-t 15000 -o "$W/log/stream.raw" "$P" "${ddirs[@]}" 2>&1) || rc=$?
			bench_msg "watch: stream: $out"
			local vrc=ok
			sleep 0.5
			for d in "${ddirs[@]}"; do
				if ! rsync -anic --delete "${VFILT[@]}" "$P/" "$d/" >"$W/log/stream.verify" 2>&1 ||
					[ -s "$W/log/stream.verify" ]; then
					vrc="differs ($(head -n 2 "$W/log/stream.verify" | tr '\n' ' '))"
				fi
			done
			WATCH_STAT[stream|sum]=$out WATCH_STAT[stream|verify]=$vrc WATCH_STAT[stream|rc]=$rc
			[ -s "$W/log/stream.raw" ] && watch_record "stream 100/s, 2 sec." "$W/log/stream.raw"
			cp "$W/log/stream.raw" "$RUN/stream.raw" 2>/dev/null || true

			# --- idle CPU ---------------------------------------------------------
			bench_msg "watch: idle for $IDLE_S s"
			sleep 1
			# shellcheck disable=SC2207
			local wp=($(watch_tree_pids "$pid"))
			# shellcheck disable=SC2207
			local sp=($(watch_tree_pids "$SSHD_PID" | tail -n +2))
			serves=() sessions=()
			for i in "${sp[@]}"; do
				if [ "$(readlink "/proc/$i/exe" 2>/dev/null)" = "$BENCH_SSH_BIN" ]; then
					serves+=("$i")
				else
					sessions+=("$i")
				fi
			done
			read -r c0 v0 nv0 <<<"$(watch_cpu "${wp[@]}")"
			read -r s0 sv0 snv0 <<<"$(watch_cpu "${serves[@]}")"
			read -r h0 _ _ <<<"$(watch_cpu "${sessions[@]}")"
			t0=$(date +%s.%N)
			sleep "$IDLE_S"
			t1=$(date +%s.%N)
			read -r c1 v1 nv1 <<<"$(watch_cpu "${wp[@]}")"
			read -r s1 sv1 snv1 <<<"$(watch_cpu "${serves[@]}")"
			read -r h1 _ _ <<<"$(watch_cpu "${sessions[@]}")"
			local hz
			hz=$(getconf CLK_TCK)
			secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
			WATCH_IDLE_SECS=$secs
			WATCH_IDLE_CPU=$(awk -v a=$((c1 - c0 + s1 - s0 + h1 - h0)) -v hz="$hz" \
				'BEGIN { printf "%.2f", a / hz }')
			WATCH_IDLE_ROW=$(awk -v c=$((c1 - c0)) -v s=$((s1 - s0)) -v h=$((h1 - h0)) \
				-v hz="$hz" -v t="$secs" -v cv=$((v1 - v0)) -v cn=$((nv1 - nv0)) \
				-v sv=$((sv1 - sv0)) -v sn=$((snv1 - snv0)) -v np="${#wp[@]}" \
				-v ns="${#serves[@]}" -v nh="${#sessions[@]}" 'BEGIN {
				printf "| %s s | %.2f s (%d proc.) | %.2f s (%d proc.) | %.2f s (%d proc.) | %d + %d (%.1f/s) | %d + %d (%.1f/s) |\n",
					t, c / hz, np, s / hz, ns, h / hz, nh, cv, cn, (cv + cn) / t, sv, sn, (sv + sn) / t }')
		fi
		watch_stop "$pid"
	done

	# --- rsync triggered by inotifywait, 2 secondaries ---------------------------------
	if command -v inotifywait >/dev/null; then
		bench_msg "watch: rsync + inotifywait, 2 secondaries, $RSYNC_N changes every $RSYNC_GAP ms"
		local q
		q=$(printf '%q ' rsync -e "$E" "${XROAD_OPTS[@]}")
		cat >"$W/inotify-rsync.sh" <<EOF
#!/bin/bash
# rsync on every change: inotifywait -m -r | while read; drain queued events; rsync to every
# secondary in parallel; done
inotifywait -m -r -q -e close_write,moved_to,create,delete,moved_from --exclude '\.tmp\$' "$P" |
while read -r _; do
	while read -r -t 0.005 _; do :; done
	$q "$P/" "xroad@127.0.0.1:$W/sec/s1/" &
	$q "$P/" "xroad@127.0.0.1:$W/sec/s2/" &
	wait
done
EOF
		chmod 0755 "$W/inotify-rsync.sh"
		setsid setpriv --reuid=xroad --regid=xroad --init-groups env -u SSH_AUTH_SOCK \
			bash "$W/inotify-rsync.sh" >"$W/inotify.out" 2>"$W/inotify.err" </dev/null &
		pid=$!
		sleep 1	# inotifywait sets up its recursive watches
		bench_as_client mkdir "$P/bench-lat-rsync"
		rc=0
		out=$(bench_as_client "$LAT" -n "$RSYNC_N" -g "$RSYNC_GAP" -s bench-lat-rsync -w 30000 \
			-t 30000 -o "$W/log/latrsync.raw" "$P" "$W/sec/s1" "$W/sec/s2" 2>&1) || rc=$?
		bench_msg "watch: rsync+inotifywait: $out"
		kill -TERM -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		if [ -s "$W/log/latrsync.raw" ]; then
			cp "$W/log/latrsync.raw" "$RUN/lat-rsync-inotify-2.raw"
			watch_record "rsync+inotifywait, 2 sec." "$W/log/latrsync.raw"
			WATCH_STAT[rsync+inotifywait, 2 sec.|sum]=$out
		else
			WATCH_NOTE+="rsync+inotifywait: no result ($out). "
		fi
	else
		WATCH_NOTE+="inotifywait not installed: no rsync+inotifywait comparison. "
	fi

	# --- report fragment ----------------------------------------------------------------
	local run
	run=$(awk -F'\t' '$2 == "xroad-ssh-edit" && $3 == "rsync" && $4 == 0 && $5 == "ok" { print $6 }' \
		"$RAW" | sort -g | awk '{ v[++n] = $1 } END { if (n) printf "%.3f", n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }')
	{
	printf '### Latency, change on the primary to present on every secondary\n\n'
	printf '| configuration | changes | arrived everywhere | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | notes |\n'
	printf '|---|---:|---:|---:|---:|---:|---:|---|\n'
	local l
	while IFS= read -r l; do
		[[ $l == stream* ]] && continue
		printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$l" "${WATCH_STAT[$l|n]}" \
			"${WATCH_STAT[$l|ok]}" "${WATCH_STAT[$l|p50]}" "${WATCH_STAT[$l|p95]}" \
			"${WATCH_STAT[$l|p99]}" "${WATCH_STAT[$l|max]}" \
			"$(sed -E 's/.*(superseded [0-9]+ fallback [0-9]+).*/\1/' <<<"${WATCH_STAT[$l|sum]:-}")"
	done <"$RUN/latency.labels"
	if [ -n "$run" ]; then
		awk -v r="$run" 'BEGIN {
			printf "| rsync, the guide'"'"'s every-minute timer, 1 sec. (computed) | - | - | %.0f | %.0f | %.0f | %.0f | wait U(0,60 s) + one rsync run (%.3f s, median of xroad-ssh-edit) |\n",
				(30 + r) * 1000, (57 + r) * 1000, (59.4 + r) * 1000, (60 + r) * 1000, r
			printf "| rsync, every-minute timer, 2 sec. (computed) | - | - | %.0f | %.0f | %.0f | %.0f | max of two independent U(0,60 s) waits + one run |\n",
				(60 * sqrt(0.5) + r) * 1000, (60 * sqrt(0.95) + r) * 1000, (60 * sqrt(0.99) + r) * 1000, (60 + r) * 1000
		}'
	fi
	printf '\nours: %s changes per configuration, one every %s ms, one file. rsync+inotifywait: ' \
		"$WATCH_N" "$WATCH_GAP"
	printf '%s changes, one every %s ms (so that rsync runs do not queue up), ' \
		"$RSYNC_N" "$RSYNC_GAP"
	printf 'the guide'"'"'s options, `inotifywait -m -r` on the primary, queued events drained '
	printf 'before each pair of parallel rsyncs (script: `bench/watch.sh`). Every latency: '
	printf '`@BASE@-latency.tsv` next to this report.\n\n'
	printf '### Stream: 100 changes/s for %s s, 50 files, 2 secondaries\n\n' "$STREAM_S"
	local sl="stream 100/s, 2 sec."
	printf '| changes | arrived everywhere | superseded before shipped | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | final trees |\n'
	printf '|---:|---:|---:|---:|---:|---:|---:|---|\n'
	printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "${WATCH_STAT[$sl|n]:--}" \
		"${WATCH_STAT[$sl|ok]:--}" \
		"$(sed -nE 's/.*superseded ([0-9]+).*/\1/p' <<<"${WATCH_STAT[stream|sum]:-}")" \
		"${WATCH_STAT[$sl|p50]:--}" "${WATCH_STAT[$sl|p95]:--}" "${WATCH_STAT[$sl|p99]:--}" \
		"${WATCH_STAT[$sl|max]:--}" "${WATCH_STAT[stream|verify]:-not run}"
	printf '\n"superseded": a change overwritten on the primary before the watcher shipped it; '
	printf 'it counts as arrived when a newer content of the same file arrived (coalescing).\n\n'
	printf '### Idle watcher (2 secondaries, after the stream)\n\n'
	printf '| window | CPU watcher tree | CPU remote serves | CPU sshd sessions | ctx switches watcher (vol + invol) | ctx switches serves |\n'
	printf '|---:|---:|---:|---:|---:|---:|\n'
	printf '%s\n' "${WATCH_IDLE_ROW:-| - | - | - | - | - | - |}"
	printf '\nCPU = utime+stime from /proc/PID/stat before/after the window; context switches from '
	printf '/proc/PID/task/*/status (each one is a wakeup).\n'
	[ -z "$WATCH_NOTE" ] || printf '\n**Problems:** %s\n' "$WATCH_NOTE"
	} >>"$RUN/watch.md"
	WATCH_RSYNC_RUN=$run
}
