#!/bin/bash
# demo.sh - runs "make demo"'s script (sh tests/demo.sh, as make runs it) and checks that it
# exits 0, that its output shows the expected results, and that it leaves nothing behind.
#   ok - make demo                       exit 0; each secondary: one-shot pull exit 0, node.ini
#                                        and db.properties preserved, 0 differences per rsync;
#                                        watchers connected; both changes on both secondaries
#                                        with a latency in ms; the new key and its .p12 on both;
#                                        log lines in rsync's format; "RESULT: demo OK"
#   ok - make demo: nothing left behind  no xr-primary/xr-sec1/xr-sec2 namespace, no process
#                                        of the demo's binary or sshds, no /run/xr-demo
# Needs root and network namespaces (skips otherwise).  BUILD (default build).
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
. tests/lib/common.sh

NAME="make demo"
if ! need_root; then
	skip "$NAME" "needs root (network namespaces, sshd, users)"
	exit 0
fi
if [ ! -x "$BUILD/xroad-replicate" ]; then
	not_ok "$NAME" "$BUILD/xroad-replicate missing (make all)"
	exit 1
fi
probe=xr-probe-$$
if ! ip netns add "$probe" 2>/dev/null; then
	skip "$NAME" "cannot create network namespaces here"
	exit 0
fi
ip netns del "$probe"

t0=${EPOCHREALTIME/[.,]/}
BUILD=$BUILD timeout -k 10 120 sh tests/demo.sh >"$T/out" 2>&1 </dev/null
rc=$?
dt=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))

# expect LABEL REGEX [COUNT]: the output has at least COUNT (default 1) lines matching REGEX;
# else adds LABEL to MISSING.
MISSING=()
expect() {
	local n
	n=$(grep -cE -- "$2" "$T/out")
	[ "$n" -ge "${3:-1}" ] || MISSING+=("missing: $1 (/$2/ x${3:-1}, found $n)")
}
LOGLINE='^ +[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \[[0-9]+\] '
for s in sec1 sec2; do
	expect "$s one-shot pull exit 0" "^ +ok +$s: exit 0 in [0-9]+\.[0-9] ms"
	expect "$s node.ini/db.properties preserved" \
		"^ +ok +$s: conf.d/node.ini \(type=slave\) and db.properties preserved"
	expect "$s: rsync finds no difference (after the pull, at the end)" \
		"^ +ok +$s: the real rsync .*finds 0 differences" 2
	expect "$s keyconf.xml edit latency" \
		"^ +ok +keyconf.xml .* on both secondaries:.* $s [0-9]+\.[0-9] ms"
	expect "$s new key latency" \
		"^ +ok +new key [0-9A-F]{8}\.\.\. .* on both secondaries:.* $s [0-9]+\.[0-9] ms"
	expect "$s has the new key and its .p12" \
		"^ +ok +$s: keyconf.xml names it; softtoken/[0-9A-F]{8}\.\.\.p12 is there"
	expect "$s: the .p12 came no later than keyconf.xml" "^ +ok +$s: the \.p12 was complete"
	expect "$s log lines in rsync's format" \
		"$LOGLINE>f(\+{9}|[.c][.s][.tT][.p][.o][.g][.u][.a][.x]) signer/"
	expect "$s watcher ended on SIGTERM with exit 0" "watcher on $s \(pid [0-9]+\): SIGTERM -> exit 0"
done
expect "stale file deleted on sec1" "^ +ok +sec1: stale conf.d/old.ini deleted"
expect "watchers connected" "^ +ok +connected and watching after"
expect "no leftovers reported" "nothing left behind"
expect "the result line" "^RESULT: demo OK"
expect "steps 1-8" "^== [1-8]\. " 8
grep -q '^ *FAIL ' "$T/out" && MISSING+=("FAIL lines: $(grep '^ *FAIL ' "$T/out" | head -n 3)")

if [ "$rc" = 0 ] && [ "${#MISSING[@]}" = 0 ]; then
	ok "$NAME"
	grep -E '^ +ok +(sec[12]: exit 0|keyconf.xml|new key|connected)' "$T/out" |
		sed -E 's/^ +ok +/#   /'
	printf '#   %d ms in all\n' "$dt"
else
	not_ok "$NAME" "exit $rc after $dt ms" "${MISSING[@]}" "--- the demo's output (last 40 lines):" \
		"$(tail -n 40 "$T/out")"
fi

# nothing left behind: namespaces, processes, files
left=()
for ns in xr-primary xr-sec1 xr-sec2; do
	ip netns list | grep -q "^$ns\( \|$\)" && left+=("network namespace $ns")
done
p=$(pgrep -f '^/run/xr-demo/bin/xroad-replicate ')
[ -n "$p" ] && left+=("xroad-replicate processes: $p")
p=$(pgrep -f 'sshd.* -f /run/xr-demo/')
[ -n "$p" ] && left+=("sshd processes: $p")
[ -e /run/xr-demo ] && left+=("/run/xr-demo exists")
if [ "${#left[@]}" = 0 ]; then
	ok "$NAME: nothing left behind (namespaces, processes, /run/xr-demo)"
else
	not_ok "$NAME: nothing left behind (namespaces, processes, /run/xr-demo)" "${left[@]}"
fi
tests_done
