#!/usr/bin/env bash
# watch_faults.sh - the receiver fault walk inside a --watch session (SPEC §5, §6; issue 7).
#
# crash.sh (pull) and faults.sh (push) walk the fault points of one-shot runs; here the fault
# hits a long-lived watcher.  A watcher (the faults build, a private copy) replicates the X-Road
# tree SRC -> DEST; after its initial change set the signer changes SRC the realistic way
# (keyconf.xml edited through tmp+rename, a new .p12 written in place, then a keyconf.xml that
# names it: xroad_tree.sh's helpers; our processes are stopped meanwhile, so the events make
# one change set in every run however slow the machine), and the receiver is killed (_exit 99, XR_FAULT_MODE=kill)
# or gets EIO (XR_FAULT_MODE=fail) at step N of that SECOND change set (XR_FAULT_AT counts from
# the receiver process's start, so N = steps of the initial change set + k).
#
#   push --watch   the receiver is the forked `serve` (it inherits XR_FAULT_*).  kill: the
#                  watcher itself reconnects (a new serve, whose counter starts at 0) and
#                  converges; fail: the session goes on and the watcher converges by itself
#                  (a failed change set is retried as a full one after 1 s, doubling; the
#                  watchers run with --reconcile=WATCH_FAULT_RECONCILE, default 0 = off, so
#                  nothing else repairs DEST)
#   pull --watch   the receiver is the watcher process.  kill: it ends (exit 99); the next run
#                  recovers and converges (a one-shot `pull` after even k, a restarted
#                  `pull --watch` after odd k); fail: the watcher survives and converges
#
# After each fault, with every process of ours stopped (SIGSTOP) so nothing moves: no file of
# DEST is torn (each is byte for byte the old or the new version), DEST is exactly the old tree
# when the fault came at or before the change set's journal rename; then (SIGCONT) the
# recovery converges DEST to SRC, no journal or staged file is left, and a surviving watcher
# ends 0 on SIGTERM.  The step names of the walk runs are compared with the counting run's, so
# a change set coalesced differently is reported rather than walked blindly.
#
#   BUILD (default build)   KEEP_TMP=1 keeps the temp dir
#   WATCH_FAULT_STRIDE (default 5; 1 = every step, as tests/reliability.sh runs it): walks
#     every STRIDE-th step of the second change set plus both sides of its commit point and its
#     last step (doubled on an ASan build)
#   WATCH_FAULT_RECONCILE (default 0, off): --reconcile seconds of the fail-mode watchers
# Output: "ok - NAME" / "not ok - NAME" per walk, "#   walked watch-DIR/MODE: W survived: S ..."
# figure lines (tests/reliability.sh reads them).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/common.sh
. tests/lib/xroad_tree.sh
. tests/lib/faultwalk.sh
fault_builds "watch faults" || exit 1
export LC_ALL=C
STRIDE=${WATCH_FAULT_STRIDE:-5}
case $B in *asan*) STRIDE=$((STRIDE * 2)) ;; esac
RECONCILE=${WATCH_FAULT_RECONCILE:-0}
QUIET=400	# ms: the signer's few writes coalesce into one change set

# private copies: a rebuild during the run does not matter, and every process of this script
# is found by /proc/PID/exe
mkdir -p "$T/bin"
cp "$XRF" "$T/bin/xrf" && cp "$XR" "$T/bin/xrp" || exit 1
XRF=$T/bin/xrf
XRP=$T/bin/xrp

# Prints the pids of the processes running our copies (watchers, forked serves).
our_procs() {
	find /proc -mindepth 2 -maxdepth 2 -name exe \( -lname "$XRF" -o -lname "$XRP" \) \
		2>/dev/null | cut -d/ -f3
}

# Ends every process of ours (EXIT trap and after each step).
stop_all() {
	local p
	for p in $(our_procs); do
		kill -CONT "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
}
trap 'stop_all; common_cleanup' EXIT

now_ms() {
	echo $((${EPOCHREALTIME/[,.]/} / 1000))
}

# wait_line FILE ERE SECONDS: waits until a line of FILE matches ERE; 1 on timeout.
wait_line() {
	local end=$(($(now_ms) + $3 * 1000))
	while [ "$(now_ms)" -lt "$end" ]; do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.02
	done
	return 1
}

# converged SRC DEST SECONDS: waits until DEST equals SRC (metadata and content) with no
# journal or staged file; 1 on timeout (prints why).
converged() {
	local end=$(($(now_ms) + $3 * 1000)) msg
	while [ "$(now_ms)" -lt "$end" ]; do
		if same_tree "$1" "$2" 2>/dev/null && clean_state "$2" >/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	msg=$(clean_state "$2") || echo "$msg"
	tree_diff "$1" "$2" | tail -n +3 | head -4 | tr '\n' ' '
	return 1
}

# signer_change DIR: the second change set (deterministic content and file mtimes)
signer_change() {
	xroad_edit_keyconf "$1" 1700000000 >/dev/null && xroad_add_key "$1" 1700000001 >/dev/null
}

# signer_change_frozen DIR: signer_change with every process of ours stopped meanwhile, so its
# events wait in the inotify queue and make one change set however slowly the writes come (a
# loaded machine spawning awk and mv could otherwise leave a gap longer than the quiet period
# and split the change set, and the walk would no longer match the counting run)
signer_change_frozen() {
	local p rc
	for p in $(our_procs); do kill -STOP "$p" 2>/dev/null; done
	signer_change "$1"
	rc=$?
	for p in $(our_procs); do kill -CONT "$p" 2>/dev/null; done
	return $rc
}

OLD=$T/old NEW=$T/new S=$T/src D=$T/dst
xroad_tree "$OLD" 7 >/dev/null || { not_ok "watch faults: xroad_tree"; exit 1; }
cp -a "$OLD" "$NEW"
signer_change "$NEW" || { not_ok "watch faults: signer_change"; exit 1; }
hashes "$OLD" >"$T/old.h"
hashes "$NEW" >"$T/new.h"
OPTS=(-a --delete --commit-last signer/keyconf.xml --watch-quiet="$QUIET")

# start_watcher VERB BIN RECONCILE [VAR=VALUE...]: a watcher SRC -> DEST in the background,
# its stderr (and the forked serve's: the fault trace) in $T/trace; sets WPID
start_watcher() {
	local verb=$1 bin=$2 rec=$3
	shift 3
	env "$@" "$bin" "$verb" --watch --reconcile="$rec" "${OPTS[@]}" "$S/" "$D/" \
		>/dev/null 2>"$T/trace" &
	WPID=$!
}

# end_watcher: SIGTERM to the watcher; sets WRC to its exit status (124: not within 5 s)
end_watcher() {
	local i
	kill -TERM "$WPID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$WPID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$WPID" 2>/dev/null; then
		kill -KILL "$WPID" 2>/dev/null
		wait "$WPID" 2>/dev/null
		WRC=124
		return
	fi
	wait "$WPID"
	WRC=$?
}

# step_names FILE: the "fault-point N STEP PATH" lines of FILE without the counter ("STEP PATH")
step_names() {
	sed -n 's/^fault-point [0-9]* //p' "$1"
}

# --- counting: the steps of the initial and of the second change set, per direction --------
declare -A INIT SECOND COMMIT
count_steps() {
	local verb=$1 n n2 why=()
	rm -rf "$S" "$D" && cp -a "$OLD" "$S"
	start_watcher "$verb" "$XRF" 0 XR_FAULT_TRACE=1
	if ! converged "$OLD" "$D" 20 >"$T/why"; then
		why+=("initial sync did not converge: $(cat "$T/why")")
	else
		sleep 0.3
		n=$(grep -c '^fault-point ' "$T/trace")
		step_names "$T/trace" >"$T/trace.$verb.init"
		signer_change_frozen "$S"
		hashes "$S" | cmp -s - "$T/new.h" || why+=("SRC after the change differs from NEW")
		converged "$S" "$D" 20 >"$T/why" || why+=("second change set: $(cat "$T/why")")
		sleep $((QUIET * 3 / 1000 + 1))	# a late third change set would show here
		step_names "$T/trace" | tail -n +$((n + 1)) >"$T/trace.$verb.second"
	fi
	kill -0 "$WPID" 2>/dev/null || why+=("the watcher exited: $(grep -v '^fault-point' \
		"$T/trace" | tail -2)")
	end_watcher
	stop_all
	[ "$WRC" = 0 ] || why+=("the watcher exited $WRC on SIGTERM")
	n2=$(sanitizer_clean) || why+=("$n2")
	INIT[$verb]=${n:-0}
	SECOND[$verb]=$(wc -l <"$T/trace.$verb.second" 2>/dev/null || echo 0)
	COMMIT[$verb]=$(grep -nE '^journal-rename ?$' "$T/trace.$verb.second" 2>/dev/null | head -1 |
		cut -d: -f1)
	[ "$(grep -cE '^journal-rename ?$' "$T/trace.$verb.second" 2>/dev/null)" = 1 ] ||
		why+=("the second change set is not one transaction: $(grep -cE '^journal-rename ?$' \
			"$T/trace.$verb.second" 2>/dev/null) journal renames")
	[ "${SECOND[$verb]}" -ge 10 ] || why+=("only ${SECOND[$verb]} steps in the second change set")
	if [ "${#why[@]}" = 0 ]; then
		ok "watch $verb: fault points counted: initial change set ${INIT[$verb]} steps, second (keyconf edit + new .p12) ${SECOND[$verb]} steps, its commit point at step ${COMMIT[$verb]}"
		return 0
	fi
	not_ok "watch $verb: fault points counted" "${why[@]}"
	return 1
}

# --- one step of the walk ---------------------------------------------------------------------
# walk_step VERB MODE K: the fault at step K of the second change set; echoes why it failed
walk_step() {
	local verb=$1 mode=$2 k=$3 n rec=0 p msg rc want got how t0
	n=$((INIT[$verb] + k))
	[ "$mode" = fail ] && rec=$RECONCILE
	rm -rf "$S" "$D" "$T/err2" && cp -a "$OLD" "$S"
	start_watcher "$verb" "$XRF" "$rec" XR_FAULT_TRACE=1 XR_FAULT_AT="$n" XR_FAULT_MODE="$mode"
	if ! wait_line "$T/trace" "^fault-point ${INIT[$verb]} " 20; then
		echo "the initial change set did not finish: $(grep -v '^fault-point' "$T/trace" |
			tail -2 | tr '\n' ' ')"
		return 1
	fi
	signer_change_frozen "$S"
	if ! wait_line "$T/trace" "^fault-point $n " 20; then
		echo "the fault point was never reached: $(grep -v '^fault-point' "$T/trace" |
			tail -2 | tr '\n' ' ')"
		return 1
	fi
	# freeze everything, look at DEST
	for p in $(our_procs); do kill -STOP "$p" 2>/dev/null; done
	want=$(sed -n "${k}p" "$T/trace.$verb.second")
	got=$(sed -n "s/^fault-point $n //p" "$T/trace" | head -1)
	if [ "$want" != "$got" ]; then
		echo "step $n is \"$got\", the counting run had \"$want\" (change set coalesced differently)"
		return 1
	fi
	if [ "$mode" = kill ] && [ "$verb" = push ] &&
		sed -n "/^fault-point $n /,\$p" "$T/trace" | tail -n +2 | grep -q '^fault-point '; then
		echo "the recovery began before DEST was inspected (a slow machine?)"
		return 1
	fi
	msg=$(no_torn_files "$D") || { echo "$msg"; return 1; }
	if [ "$k" -le "${COMMIT[$verb]}" ] && ! same_tree "$OLD" "$D"; then
		echo "DEST changed before the commit point: $(tree_diff "$OLD" "$D" | tail -n +3 |
			head -3 | tr '\n' ' ')"
		return 1
	fi
	for p in $(our_procs); do kill -CONT "$p" 2>/dev/null; done
	t0=$(now_ms)

	if [ "$mode" = kill ] && [ "$verb" = pull ]; then
		# the watcher was the receiver: it is gone; the next run recovers
		for ((p = 0; p < 100; p++)); do
			kill -0 "$WPID" 2>/dev/null || break
			sleep 0.05
		done
		wait "$WPID"
		rc=$?
		[ "$rc" = 99 ] || { echo "the killed watcher exited $rc, not 99"; return 1; }
		stop_all	# its forked serve, if it has not gone yet
		if ((k % 2 == 0)); then
			how="one-shot pull"
			timeout 30 "$XRP" pull "${OPTS[@]}" "$S/" "$D/" >/dev/null 2>"$T/err2"
			rc=$?
			[ "$rc" = 0 ] || { echo "$how after the kill: exit $rc: $(head -2 "$T/err2")"
				return 1; }
			msg=$(converged "$S" "$D" 1) || { echo "$how: $msg"; return 1; }
			echo "$(($(now_ms) - t0))" >"$T/conv"
			sanitizer_clean
			return
		fi
		how="restarted pull --watch"
		start_watcher pull "$XRP" 0
	else
		how="the watcher"
	fi
	msg=$(converged "$S" "$D" 20) || { echo "$how did not converge: $msg"; return 1; }
	echo "$(($(now_ms) - t0))" >"$T/conv"
	kill -0 "$WPID" 2>/dev/null || { echo "$how exited: $(grep -v '^fault-point' "$T/trace" |
		tail -2 | tr '\n' ' ')"; return 1; }
	if [ "$mode" = kill ] && [ "$verb" = push ] && ! grep -q 'reconnecting' "$T/trace"; then
		echo "converged without a logged reconnect"
		return 1
	fi
	end_watcher
	[ "$WRC" = 0 ] || { echo "$how exited $WRC on SIGTERM"; return 1; }
	msg=$(clean_state "$D") || { echo "after SIGTERM: $msg"; return 1; }
	stop_all
	sanitizer_clean
}

# sanitizer_clean: no ASan/UBSan/LSan report in the watcher's and serve's stderr
sanitizer_clean() {
	if grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$T/trace" "$T/err2" 2>/dev/null; then
		echo "sanitizer report: $(grep -hm1 -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \
			"$T/trace" "$T/err2" 2>/dev/null)"
		return 1
	fi
}

# walk VERB MODE: every STRIDE-th step of the second change set, both sides of its commit
# point and its last step
walk() {
	local verb=$1 mode=$2 k steps=${SECOND[$1]} c=${COMMIT[$1]} bad="" walked=0 nbad=0 t0 msg
	local conv cmax=0
	local -a pts=()
	t0=$(now_ms)
	for ((k = 1; k <= steps; k++)); do
		if ((STRIDE <= 1 || k % STRIDE == 1 || k == steps)) || ((k >= c - 1 && k <= c + 1)); then
			pts+=("$k")
		fi
	done
	for k in "${pts[@]}"; do
		walked=$((walked + 1))
		rm -f "$T/conv"
		if ! msg=$(walk_step "$verb" "$mode" "$k"); then
			bad="$bad step $((INIT[$verb] + k)) (k=$k): $msg;"
			nbad=$((nbad + 1))
		fi
		conv=$(cat "$T/conv" 2>/dev/null)
		[ -n "$conv" ] && [ "$conv" -gt "$cmax" ] && cmax=$conv
		stop_all
	done
	if [ -z "$bad" ]; then
		ok "watch $verb fault walk, $mode: $walked of $steps steps of the second change set (stride $STRIDE, commit point $c): never torn, old tree before the commit point, the watcher recovers and converges, nothing left staged"
	else
		not_ok "watch $verb fault walk, $mode at every step" \
			"$(printf '%s' "$bad" | tr ';' '\n' | head -20)"
	fi
	printf '#   walked watch-%s/%s: %d survived: %d steps: %d initial: %d time: %d ms converged within: %d ms\n' \
		"$verb" "$mode" "$walked" "$((walked - nbad))" "$steps" "${INIT[$verb]}" \
		"$(($(now_ms) - t0))" "$cmax"
}

for verb in push pull; do
	count_steps "$verb" || continue
	walk "$verb" kill
	walk "$verb" fail
done
tests_done
