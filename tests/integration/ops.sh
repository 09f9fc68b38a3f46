#!/usr/bin/env bash
# ops.sh - operations (SPEC §6): the status file and command, the HTTP health answer, hooks,
# the configuration file, SIGHUP, the pause flag.  Local paths only (the protocol runs over a
# local pipe, as for a remote peer).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/common.sh
XR=$(realpath "${BUILD:-build}/xroad-replicate" 2>/dev/null)
[ -x "$XR" ] || { not_ok "ops: ${BUILD:-build}/xroad-replicate missing"; exit 1; }

S=$T/src D=$T/dst ST=$T/state
mkdir -p "$S/conf.d" "$S/signer" "$ST"
echo 'a=1' >"$S/conf.d/proxy.ini"
echo 'b=2' >"$S/conf.d/signer.ini"
echo '<keys/>' >"$S/signer/keyconf.xml"

# state_get FILE KEY: the value of KEY in a state file
state_get() {
	sed -n "s/^$2=//p" "$1" | head -n 1
}

# json_ok: reads JSON on stdin, exits 0 when it parses (jq or python3)
json_ok() {
	if command -v jq >/dev/null; then
		jq -e . >/dev/null
	else
		python3 -m json.tool >/dev/null
	fi
}

# http_get PORT: prints "CODE BODY" of GET / on 127.0.0.1:PORT (curl, else bash /dev/tcp)
http_get() {
	if command -v curl >/dev/null; then
		local r
		r=$(curl -s -m 5 -w '\n%{http_code}' "http://127.0.0.1:$1/") || return 1
		printf '%s %s\n' "${r##*$'\n'}" "$(head -n 1 <<<"$r")"
	else
		local reply
		exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
		printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
		reply=$(timeout 5 cat <&3 | tr -d '\r')
		exec 3<&-
		printf '%s %s\n' "$(printf '%s\n' "$reply" | head -n 1 | cut -d' ' -f2)" \
			"$(printf '%s\n' "$reply" | tail -n 1)"
	fi
}

# wait_for CMD...: retries CMD for up to 10 s
wait_for() {
	local i
	for i in $(seq 1 100); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

STATE=$ST/$(printf '%s' "${D#/}" | tr '/' '-').state

# ---- status file and command ----------------------------------------------------------------

out=$("$XR" status --state-dir "$ST" 2>&1)
rc=$?
if [ "$rc" = 1 ] && grep -q 'no run recorded' <<<"$out"; then
	ok "status: fresh install (no state file) exits 1, no run recorded"
else
	not_ok "status: fresh install (no state file) exits 1, no run recorded" "rc=$rc" "$out"
fi
out=$("$XR" status --state-dir "$ST" --max-age 60 "$D" 2>&1)
rc=$?
if [ "$rc" = 1 ] && grep -q 'no run recorded' <<<"$out"; then
	ok "status --max-age DEST: fresh install exits 1"
else
	not_ok "status --max-age DEST: fresh install exits 1" "rc=$rc" "$out"
fi

out=$("$XR" pull -a --state-dir "$ST" "$S/" "$D/" 2>&1)
rc=$?
if [ "$rc" = 0 ] && [ -f "$STATE" ] && [ "$(state_get "$STATE" last_exit)" = 0 ] &&
	[ "$(state_get "$STATE" dest)" = "$D/" ] && [ "$(state_get "$STATE" mode)" = pull ] &&
	[ "$(state_get "$STATE" files)" -ge 3 ] && [ "$(state_get "$STATE" bytes)" -gt 0 ] &&
	[ "$(state_get "$STATE" last_success)" -gt 0 ] &&
	[ "$(state_get "$STATE" lag_ms)" -ge 0 ]; then
	ok "local pull writes the state file (success, files, bytes, lag)"
else
	not_ok "local pull writes the state file (success, files, bytes, lag)" "rc=$rc" "$out" \
		"$(ls -la "$ST")" "$(cat "$STATE" 2>&1)"
fi
ls -a "$ST" | grep -q '\.tmp$' && not_ok "state dir: no temp file left" || ok "state dir: no temp file left"

out=$("$XR" status --state-dir "$ST" 2>&1)
rc=$?
if [ "$rc" = 0 ] && grep -q "$D/" <<<"$out" && grep -qw ok <<<"$out"; then
	ok "status: healthy after a success, exit 0, table shows DEST"
else
	not_ok "status: healthy after a success, exit 0, table shows DEST" "rc=$rc" "$out"
fi
check "status --max-age 3600 DEST: exit 0" "$XR" status --state-dir "$ST" --max-age 3600 "$D"
sleep 1.1
out=$("$XR" status --state-dir "$ST" --max-age 0 "$D" 2>&1)
rc=$?
if [ "$rc" = 1 ] && grep -q 'ago (max 0 s)' <<<"$out"; then
	ok "status --max-age 0 after a second: stale, exit 1"
else
	not_ok "status --max-age 0 after a second: stale, exit 1" "rc=$rc" "$out"
fi
if "$XR" status --state-dir "$ST" --json | json_ok; then
	ok "status --json parses"
else
	not_ok "status --json parses" "$("$XR" status --state-dir "$ST" --json 2>&1)"
fi

succ=$(state_get "$STATE" last_success)
"$XR" pull -a --state-dir "$ST" "$T/missing/" "$D/" >/dev/null 2>&1
prc=$?
out=$("$XR" status --state-dir "$ST" "$D" 2>&1)
rc=$?
if [ "$prc" != 0 ] && [ "$rc" = 1 ] && grep -q "FAILED" <<<"$out" &&
	grep -q "code $prc" <<<"$out" && [ "$(state_get "$STATE" last_success)" = "$succ" ] &&
	[ "$(state_get "$STATE" last_exit)" = "$prc" ] && [ -n "$(state_get "$STATE" last_error)" ]; then
	ok "failed run: recorded (exit code, message), status exits 1, last success kept"
else
	not_ok "failed run: recorded (exit code, message), status exits 1, last success kept" \
		"pull rc=$prc status rc=$rc" "$out" "$(cat "$STATE")"
fi
json=$("$XR" status --state-dir "$ST" --json "$D")
if json_ok <<<"$json" && grep -q '"healthy": false' <<<"$json" &&
	grep -q "\"last_exit\": $prc" <<<"$json"; then
	ok "status --json: the failure, machine-readable"
else
	not_ok "status --json: the failure, machine-readable" "$json"
fi
"$XR" pull -a --state-dir "$ST" "$S/" "$D/" >/dev/null 2>&1
check "a later success clears the failure" "$XR" status --state-dir "$ST" --max-age 60 "$D"
[ -z "$(state_get "$STATE" last_error)" ] && [ "$(state_get "$STATE" failures)" = 1 ] &&
	ok "state: error cleared, failures counted" ||
	not_ok "state: error cleared, failures counted" "$(cat "$STATE")"

# ---- hooks ----------------------------------------------------------------------------------

echo 'a=2' >"$S/conf.d/proxy.ini"
echo x >"$S/new.txt"
out=$("$XR" pull -a --state-dir "$ST" --log-file "$T/hook.log" \
	--on-change "conf.d/*.ini=echo \"changed: \$XR_CHANGED\"; touch '$T/marker'" \
	--on-change "signer/***=touch '$T/not-expected'" "$S/" "$D/" 2>&1)
rc=$?
if [ "$rc" = 0 ] && [ -f "$T/marker" ] && [ ! -e "$T/not-expected" ] &&
	grep -q 'hook: changed: conf.d/proxy.ini' "$T/hook.log"; then
	ok "hook: runs for matching changes only, output captured in the log file"
else
	not_ok "hook: runs for matching changes only, output captured in the log file" "rc=$rc" \
		"$out" "$(cat "$T/hook.log" 2>&1)"
fi

echo 'b=3' >"$S/conf.d/signer.ini"
start=$(date +%s)
out=$("$XR" pull -a --state-dir "$ST" --hook-timeout 1 \
	--on-change "*.ini=sleep 30" "$S/" "$D/" 2>&1)
rc=$?
took=$(($(date +%s) - start))
if [ "$rc" = 0 ] && [ "$took" -lt 10 ] && grep -q 'timeout of 1 s' <<<"$out" &&
	grep -q 'timeout of 1 s' <<<"$(state_get "$STATE" hook_error)" &&
	! pgrep -f "^sleep 30$" >/dev/null; then
	ok "hook timeout: killed after 1 s, recorded, sync exits 0"
else
	not_ok "hook timeout: killed after 1 s, recorded, sync exits 0" "rc=$rc took=${took}s" \
		"$out" "$(cat "$STATE")"
fi

echo 'b=4' >"$S/conf.d/signer.ini"
out=$("$XR" pull -a --state-dir "$ST" --on-change "*.ini=exit 3" "$S/" "$D/" 2>&1)
rc=$?
st_out=$("$XR" status --state-dir "$ST" "$D" 2>&1)
st_rc=$?
if [ "$rc" = 0 ] && grep -q 'exit 3' <<<"$out" &&
	[ "$(state_get "$STATE" hook_error)" = '*.ini=exit 3: exit 3' ] &&
	[ "$st_rc" = 0 ] && grep -q 'last hook error.*exit 3' <<<"$st_out" &&
	cmp -s "$S/conf.d/signer.ini" "$D/conf.d/signer.ini"; then
	ok "hook failure (exit 3): recorded and shown, sync and health unaffected"
else
	not_ok "hook failure (exit 3): recorded and shown, sync and health unaffected" \
		"rc=$rc status rc=$st_rc" "$out" "$st_out"
fi

out=$("$XR" push -a --state-dir "$ST" --on-change "*=true" "$S/" "$T/pushed/" 2>&1)
rc=$?
[ "$rc" = 1 ] && grep -q 'on-change' <<<"$out" && ok "push --on-change: refused, exit 1" ||
	not_ok "push --on-change: refused, exit 1" "rc=$rc" "$out"

# ---- pause flag (one-shot) ------------------------------------------------------------------

echo 'changed while paused' >"$S/conf.d/proxy.ini"
touch "$T/pause"
before=$(cat "$STATE")
out=$("$XR" pull -a --state-dir "$ST" --pause-file "$T/pause" --log-file "$T/pause.log" \
	"$S/" "$D/" 2>&1)
rc=$?
if [ "$rc" = 0 ] && [ "$(wc -l <"$T/pause.log")" = 1 ] && grep -q paused "$T/pause.log" &&
	! cmp -s "$S/conf.d/proxy.ini" "$D/conf.d/proxy.ini" && [ "$before" = "$(cat "$STATE")" ]; then
	ok "pause file, one-shot: one log line, exit 0, nothing touched"
else
	not_ok "pause file, one-shot: one log line, exit 0, nothing touched" "rc=$rc" "$out" \
		"$(cat "$T/pause.log")"
fi
rm -f "$T/pause"

# ---- configuration file ---------------------------------------------------------------------

C=$T/c.conf CD=$T/cdst CST=$T/cstate
cat >"$C" <<EOF
# xroad-replicate test configuration
[sync]
source = $S/
destination = $CD/
archive = yes
exclude = *.txt
[hooks]
on_change = *.ini=touch '$T/cmarker'
[status]
state_dir = $CST
EOF
out=$("$XR" pull --config "$C" 2>&1)
rc=$?
if [ "$rc" = 0 ] && [ -f "$CD/conf.d/proxy.ini" ] && [ ! -e "$CD/new.txt" ] &&
	[ -f "$T/cmarker" ] && ls "$CST"/*.state >/dev/null 2>&1; then
	ok "config file: source, destination, excludes, hooks, state dir"
else
	not_ok "config file: source, destination, excludes, hooks, state dir" "rc=$rc" "$out"
fi
rm -rf "$CD"
out=$("$XR" pull --config "$C" --include new.txt --state-dir "$T/cstate2" 2>&1)
rc=$?
if [ "$rc" = 0 ] && [ -f "$CD/new.txt" ] && ls "$T/cstate2"/*.state >/dev/null 2>&1; then
	ok "config file: the command line overrides it (state dir, an include before its exclude)"
else
	not_ok "config file: the command line overrides it" "rc=$rc" "$out"
fi
printf '[sync]\nsource = %s/\ntimeout = soon\n' "$S" >"$T/bad.conf"
out=$("$XR" pull --config "$T/bad.conf" "$S/" "$T/x/" 2>&1)
rc=$?
[ "$rc" = 1 ] && grep -q "bad.conf:3: \[sync\] timeout" <<<"$out" && [ ! -e "$T/x" ] &&
	ok "config file error: exit 1, names FILE:LINE and the key" ||
	not_ok "config file error: exit 1, names FILE:LINE and the key" "rc=$rc" "$out"

# ---- --watch: HTTP health, SIGHUP ------------------------------------------------------------

out=$("$XR" pull -a --state-dir "$ST" --health-port 1 "$S/" "$D/" 2>&1)
[ $? = 1 ] && grep -q 'needs --watch' <<<"$out" && ok "--health-port without --watch: refused" ||
	not_ok "--health-port without --watch: refused" "$out"

W=$T/wsrc WD=$T/wdst WST=$T/wstate
cp -a "$S" "$W"
PORT=$((20000 + RANDOM % 20000))
printf '[hooks]\non_change = *.ini=touch %s/hup1\n' "$T" >"$T/w.conf"
"$XR" pull -a --watch --config "$T/w.conf" --state-dir "$WST" --log-file "$T/w.log" \
	--health-port "$PORT" --max-age 1 "$W/" "$WD/" >"$T/w.out" 2>&1 &
wpid=$!
health_is() {
	local r
	r=$(http_get "$PORT" 2>/dev/null)
	[ "${r%% *}" = "$1" ]
}
if wait_for health_is 200; then
	sleep 1.5	# older than --max-age 1: an idle live session still counts
	r=$(http_get "$PORT")
	[ "${r%% *}" = 200 ] && grep -q '^200 OK [0-9T:-]*Z$' <<<"$r" &&
		ok "health: 200 OK with the last success, also when idle past --max-age" ||
		not_ok "health: 200 OK with the last success, also when idle past --max-age" "$r"
else
	not_ok "health: 200 OK with the last success" "$(http_get "$PORT" 2>&1)" "$(cat "$T/w.out")"
fi

echo 'c=1' >"$W/conf.d/new.ini"
wait_for test -e "$T/hup1" && ok "--watch: hook runs after a change set" ||
	not_ok "--watch: hook runs after a change set" "$(cat "$T/w.log")"
printf '[hooks]\non_change = *.ini=touch %s/hup2\n' "$T" >"$T/w.conf"
# as logrotate does (rename, then SIGHUP): the idle watcher re-reads and reopens its log at
# once, not at the next change set
mv "$T/w.log" "$T/w.log.1"
kill -HUP "$wpid"
if wait_for grep -qs 'SIGHUP: configuration re-read' "$T/w.log" && kill -0 "$wpid" &&
	! grep -q 'SIGHUP' "$T/w.log.1"; then
	ok "SIGHUP while idle: configuration re-read and the log reopened at once (rotation)"
else
	not_ok "SIGHUP while idle: re-read and log reopened at once" \
		"$(cat "$T/w.log" "$T/w.log.1" "$T/w.out" 2>&1)"
fi
echo 'c=2' >"$W/conf.d/new.ini"
if wait_for test -e "$T/hup2" && kill -0 "$wpid"; then
	ok "SIGHUP: hooks re-read from the configuration file, the watcher keeps running"
else
	not_ok "SIGHUP: hooks re-read from the configuration file" "$(cat "$T/w.log" "$T/w.out")"
fi

rm -rf "$W"	# the next change set cannot be read: the session fails
if wait_for health_is 503; then
	r=$(http_get "$PORT")
	grep -q 'last run failed' <<<"$r" && ok "health: 503 with the reason after a failure" ||
		not_ok "health: 503 with the reason after a failure" "$r"
else
	not_ok "health: 503 after a failure" "$(http_get "$PORT" 2>&1)" "$(cat "$T/w.out")"
fi
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
if wait_for bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null"; then
	ok "health responder ends with the watcher"
else
	not_ok "health responder ends with the watcher"
fi

# ---- push --watch to two DESTs: the parent forwards SIGHUP and SIGTERM to both peers --------

P=$T/psrc
mkdir -p "$P/conf.d"
echo 'a=1' >"$P/conf.d/local.ini"
"$XR" push -a --watch --log-file "$T/p.log" "$P/" "$T/pd1/" "$T/pd2/" >"$T/p.out" 2>&1 &
ppid=$!
if wait_for test -f "$T/pd1/conf.d/local.ini" && wait_for test -f "$T/pd2/conf.d/local.ini"; then
	kill -HUP "$ppid"
	if wait_for bash -c "[ \$(grep -c 'SIGHUP: configuration re-read' '$T/p.log') = 2 ]" &&
		kill -0 "$ppid"; then
		ok "push --watch to 2 DESTs: SIGHUP to the parent, both peers re-read at once"
	else
		not_ok "push --watch to 2 DESTs: SIGHUP reaches both peers" \
			"$(cat "$T/p.log" "$T/p.out")"
	fi
	echo 'after hup' >"$P/conf.d/hup.ini"
	wait_for test -f "$T/pd1/conf.d/hup.ini" && wait_for test -f "$T/pd2/conf.d/hup.ini" &&
		ok "push --watch: both peers go on replicating after SIGHUP" ||
		not_ok "push --watch: both peers go on replicating after SIGHUP" "$(cat "$T/p.out")"
else
	not_ok "push --watch to 2 DESTs: initial sync" "$(cat "$T/p.out")"
fi
kill -TERM "$ppid" 2>/dev/null
rc=timeout
for _ in $(seq 1 50); do
	kill -0 "$ppid" 2>/dev/null || { wait "$ppid"; rc=$?; break; }
	sleep 0.1
done
[ "$rc" = timeout ] && kill -KILL "$ppid" 2>/dev/null
[ "$rc" = 0 ] && ok "push --watch to 2 DESTs: SIGTERM ends the parent and both peers, exit 0" ||
	not_ok "push --watch to 2 DESTs: SIGTERM, exit 0" "exit $rc" "$(cat "$T/p.out")"

tests_done
