#!/usr/bin/env bash
# crash.sh - the all-or-nothing promise (SPEC §5) under real crashes.
#
# A realistic X-Road change set (keyconf edit, new .p12, deletions, type changes, new dirs,
# metadata-only changes) is applied with the receiver killed (kill -9 equivalent: _exit at a
# fault point) or failing with EIO at EVERY counted filesystem step of the receiver, and with a
# real SIGKILL in the middle of a large transfer.  After each crash: no file in DEST is torn
# (every file is byte-for-byte the old or the new version), DEST is exactly the old tree when
# the crash came before the journal's commit point; the next run recovers first and converges
# to the source exactly, leaving no journal and no staged file behind.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/common.sh
. tests/lib/xroad_tree.sh
. tests/lib/faultwalk.sh
XR=${BUILD:-build}/faults/xroad-replicate
[ -x "$XR" ] || { not_ok "crash: $XR missing"; exit 1; }

OLD=$T/old NEW=$T/new D=$T/d
fault_change_set || { not_ok "crash: xroad_tree"; exit 1; }

OPTS=(-a --delete --no-W --commit-last signer/keyconf.xml)	# deltas, as over SSH
FW_XRF=$XR FW_XR=$XR FW_OPTS=("${OPTS[@]}")

# count the steps and find the commit point (the journal rename)
rm -rf "$D" && cp -a "$OLD" "$D"
XR_FAULT_TRACE=1 "$XR" pull "${OPTS[@]}" "$NEW/" "$D/" 2>"$T/trace" >/dev/null
if [ $? != 0 ] || ! tree_diff "$NEW" "$D" >/dev/null; then
	not_ok "crash: reference run converges" "$(tail -5 "$T/trace")"
	exit 1
fi
ok "crash: reference run converges"
steps=$(grep -c '^fault-point ' "$T/trace")
commit_at=$(grep '^fault-point ' "$T/trace" | grep -i 'journal' | grep -i 'rename' |
	head -1 | awk '{ print $2 }')
if [ "$steps" -lt 20 ] || [ -z "$commit_at" ]; then
	not_ok "crash: fault points found" "steps=$steps commit point=${commit_at:-none}"
	exit 1
fi
ok "crash: $steps fault points, commit point at step $commit_at"

# under the sanitizers every step costs ~5x: walk every 3rd (still both sides of the commit point)
stride=1
case ${BUILD:-build} in *asan*) stride=3 ;; esac
for mode in kill fail; do
	bad=""
	for ((n = 1; n <= steps; n += stride)); do
		msg=$(fault_step pull "$mode" "$n") || bad="$bad step $n: $msg;"
	done
	if [ -z "$bad" ]; then
		ok "crash: $mode at each of $steps steps (stride $stride): never torn, old state before the commit point, recovery converges"
	else
		not_ok "crash: $mode at every step" "$(printf '%s' "$bad" | tr ';' '\n' | head -20)"
	fi
done

# a real SIGKILL while a large file is being received
BIG=$T/bigsrc
mkdir -p "$BIG"
head -c $((96 * 1024 * 1024)) /dev/urandom >"$BIG/large.bin"
echo small >"$BIG/small.txt"
rm -rf "$D" && mkdir -p "$D" && echo old >"$D/small.txt"
cp -a "$D" "$T/d-before"
"$XR" pull -a --delete "$BIG/" "$D/" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 200); do
	staged=$(find "$D/.xroad-replicate/stage" -type f -size +1M 2>/dev/null | head -1)
	[ -n "$staged" ] && break
	sleep 0.02
done
kill -9 "$pid" 2>/dev/null
pkill -9 -f "xroad-replicate serve" 2>/dev/null
wait "$pid" 2>/dev/null
if [ -z "$staged" ]; then
	skip "crash: SIGKILL mid-transfer" "transfer finished before it could be killed"
elif tree_diff "$T/d-before" "$D" >"$T/diff"; then
	ok "crash: SIGKILL mid-transfer leaves DEST in the old state"
else
	not_ok "crash: SIGKILL mid-transfer leaves DEST in the old state" "$(head -5 "$T/diff")"
fi
"$XR" pull -a --delete "$BIG/" "$D/" >/dev/null 2>"$T/err"
rc=$?
if [ "$rc" = 0 ] && tree_diff "$BIG" "$D" >/dev/null && msg=$(clean_state "$D"); then
	ok "crash: the next run after SIGKILL converges and clears staging"
else
	not_ok "crash: the next run after SIGKILL converges and clears staging" \
		"exit $rc $(head -3 "$T/err") $msg"
fi
tests_done
