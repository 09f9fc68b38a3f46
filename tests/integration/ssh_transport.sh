#!/bin/bash
# ssh_transport.sh - the transport against a real sshd on 127.0.0.1: built-in libssh2 (keys,
# known_hosts, agent, timeouts, keepalives) and external -e programs.  Prints "ok - NAME" or
# "not ok - NAME" per case.  Runs as root; the probe runs as user xroad (runuser).
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
PROBE_SRC=$BUILD/tests/xr_ssh_probe
. tests/lib/sshd.sh

if [ ! -x "$PROBE_SRC" ]; then
	echo "not ok - probe binary $PROBE_SRC missing (make build-tests)"
	exit 1
fi
if ! sshd_start; then
	echo "not ok - sshd_start"
	exit 1
fi
T=$SSHD_DIR/t
mkdir -p "$T"
PROBE=$SSHD_BIN_DIR/xr_ssh_probe
cp "$PROBE_SRC" "$PROBE"
chmod 0755 "$PROBE"
# libssh2 1.10 leaks two BIGNUMs per ECDSA signature (OpenSSL 3 path); not ours
printf '%s\n' 'leak:BN_new' >"$SSHD_BIN_DIR/lsan.supp"
chmod 0644 "$SSHD_BIN_DIR/lsan.supp"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$SSHD_BIN_DIR/lsan.supp"
# (libcrypto has no frame pointers: the suppression needs full unwinding)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
U=$SSHD_USER
H=127.0.0.1
BASE="-p $SSHD_PORT -o UserKnownHostsFile=$KNOWN_HOSTS -o BatchMode=yes"
RC=0

# Runs the probe as the client user; output in $T/out and $T/err, exit code in RC.
probe() {
	sshd_as_client "$PROBE" "$@" >"$T/out" 2>"$T/err" </dev/null
	RC=$?
}

# Prints the captured output as TAP comments.
dump() {
	sed 's/^/#   /' "$T/out" "$T/err" | tail -25
}

# expect NAME RC [TEXT...]: the last probe exited RC and its output contains every TEXT.
expect() {
	local name=$1 want=$2 pat
	shift 2
	if [ "$RC" != "$want" ]; then
		echo "not ok - $name (exit $RC, expected $want)"
		dump
		return
	fi
	for pat in "$@"; do
		if ! grep -qF -- "$pat" "$T/out" "$T/err"; then
			echo "not ok - $name (output lacks '$pat')"
			dump
			return
		fi
	done
	echo "ok - $name"
}

# check NAME CONDITION...: evaluates a test command.
check() {
	local name=$1
	shift
	if "$@"; then
		echo "ok - $name"
	else
		echo "not ok - $name"
		dump
	fi
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# --- built-in transport: keys and known_hosts ---------------------------------

probe -e "ssh $BASE -i $CLIENT_KEY" -n 60 "$U@$H:/etc/xroad"
expect "builtin: ed25519 key, 60 frames up to 1 MiB echoed through cat" 0 "ok: 60 frames"

probe -e "ssh $BASE -i $CLIENT_KEY_ECDSA" -n 10 "$U@$H:"
expect "builtin: ecdsa key" 0 "ok: 10 frames"

probe -e "ssh $BASE -i $CLIENT_KEY_RSA" -n 10 "$SSHD_CLIENT_USER@$H:"
expect "builtin: rsa key (server accepts ssh-rsa signatures)" 0 "ok: 10 frames"

probe -e "ssh $BASE -i $CLIENT_KEY_RSA" -n 1 "$U@$H:"
expect "builtin: rsa key refused by OpenSSH default policy -> 255 with a hint" 255 \
	"Permission denied (publickey)." "ssh-rsa (SHA-1)"

probe -e "ssh -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS_HASHED" -n 5 "$U@$H:x"
expect "builtin: hashed known_hosts (|1|...) with [host]:port" 0 "ok: 5 frames"

probe -e "ssh -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS_EMPTY" -n 1 "$U@$H:x"
fp=$(grep -o 'SHA256:[A-Za-z0-9+/]*' "$T/err" | head -1)
expect "builtin: unknown host key -> 255, Host key verification failed." 255 \
	"Host key verification failed." "can't be established"
check "builtin: unknown host key message has OpenSSH's SHA256 fingerprint ($fp)" \
	test -n "$fp" -a \( "$fp" = "$HOST_FP_ED25519" -o "$fp" = "$HOST_FP_RSA" \)

probe -e "ssh -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS_CHANGED" -n 1 \
	"$U@$H:x"
expect "builtin: changed host key -> 255" 255 "REMOTE HOST IDENTIFICATION HAS CHANGED" \
	"Host key verification failed." "$HOST_FP_ED25519"

probe -e "ssh -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS_CHANGED \
-o StrictHostKeyChecking=accept-new" -n 1 "$U@$H:x"
expect "builtin: changed host key under accept-new -> 255" 255 \
	"REMOTE HOST IDENTIFICATION HAS CHANGED"

kh=$SSHD_CLIENT_DIR/known_hosts_new
sshd_as_client cp "$KNOWN_HOSTS_EMPTY" "$kh"
probe -e "ssh -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$kh \
-o StrictHostKeyChecking=accept-new" -n 3 "$U@$H:x"
expect "builtin: accept-new connects and says so" 0 "ok: 3 frames" "Permanently added"
fp=$(ssh-keygen -l -E sha256 -F "[$H]:$SSHD_PORT" -f "$kh" 2>/dev/null | awk '/^\[/ {print $3}')
check "builtin: accept-new recorded [host]:port with the server's key" \
	test -n "$fp" -a \( "$fp" = "$HOST_FP_ED25519" -o "$fp" = "$HOST_FP_RSA" \)
check "builtin: OpenSSH's ssh accepts the recorded known_hosts" \
	sshd_as_client ssh -p "$SSHD_PORT" -i "$CLIENT_KEY" -o UserKnownHostsFile="$kh" \
	-o StrictHostKeyChecking=yes -o BatchMode=yes "$U@$H" true
probe -e "ssh -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$kh" -n 2 "$U@$H:x"
expect "builtin: the recorded key is accepted under StrictHostKeyChecking=yes" 0 "ok: 2 frames"

probe -e "ssh -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS_EMPTY \
-o StrictHostKeyChecking=no" -n 2 "$U@$H:x"
expect "builtin: StrictHostKeyChecking=no continues with a warning" 0 "ok: 2 frames" \
	"not verified"

probe -e "ssh -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS_RSA" -n 2 "$U@$H:x"
expect "builtin: host known only by RSA -> 255 with an explanation" 255 \
	"Host key verification failed." "has a RSA key for this host"

# --- authentication -------------------------------------------------------------

probe -e "ssh $BASE -i $CLIENT_KEY_WRONG" -n 1 "$U@$H:x"
expect "builtin: unauthorized client key -> 255" 255 "Permission denied (publickey)."

probe -e "ssh $BASE -i $CLIENT_KEY_PASS" -n 1 "$U@$H:x"
expect "builtin: passphrase key without agent -> 255, clear error, no prompt" 255 \
	"passphrase-protected" "Permission denied (publickey)."

askpass=$SSHD_BIN_DIR/askpass
printf '#!/bin/sh\necho "%s"\n' "$CLIENT_KEY_PASSPHRASE" >"$askpass"
chmod 0755 "$askpass"
sshd_as_client env SSH_ASKPASS="$askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=none \
	PROBE="$PROBE" E="ssh $BASE -i $CLIENT_KEY_PASS" L="$U@$H:x" bash -c '
	eval "$(ssh-agent -s)" >/dev/null
	ssh-add "'"$CLIENT_KEY_PASS"'" </dev/null >/dev/null 2>&1 || echo "ssh-add failed" >&2
	"$PROBE" -e "$E" -n 3 "$L"
	rc=$?
	ssh-agent -k >/dev/null
	exit $rc' >"$T/out" 2>"$T/err" </dev/null
RC=$?
expect "builtin: ssh-agent holding the passphrase key authenticates" 0 "ok: 3 frames"

probe -e "ssh $BASE -i $CLIENT_KEY -l $U" -n 2 "$H:x"
expect "builtin: user from -l" 0 "ok: 2 frames"
probe -e "ssh $BASE -i $CLIENT_KEY -o User=$U" -n 2 "$H:x"
expect "builtin: user from -o User=" 0 "ok: 2 frames"
probe -e "ssh $BASE -i $CLIENT_KEY -l nosuchuser" -n 2 "$U@$H:x"
expect "builtin: USER@ in the location wins over -l" 0 "ok: 2 frames"

if [ "$SSHD_IPV6" = 1 ]; then
	probe -e "ssh $BASE -i $CLIENT_KEY" -n 3 "$U@[::1]:x"
	expect "builtin: IPv6 [::1] location" 0 "ok: 3 frames"
else
	echo "ok - builtin: IPv6 [::1] location # SKIP no ::1"
fi

# default known_hosts and key from the running user's home (getpwuid), not $HOME
home=$(getent passwd "$SSHD_CLIENT_USER" | cut -d: -f6)
if [ -n "$home" ] && [ -d "$home" ] && [ ! -e "$home/.ssh" ]; then
	mkdir -m 0700 "$home/.ssh"
	cp "$KNOWN_HOSTS" "$home/.ssh/known_hosts"
	cp "$CLIENT_KEY" "$home/.ssh/id_ed25519"
	chown -R "$SSHD_CLIENT_USER:xroad" "$home/.ssh"
	sshd_as_client env HOME=/nonexistent "$PROBE" -e "ssh -p $SSHD_PORT" -n 2 "$U@$H:x" \
		>"$T/out" 2>"$T/err" </dev/null
	RC=$?
	rm -rf "${home:?}/.ssh"
	expect "builtin: ~/.ssh/known_hosts and id_ed25519 of the running user (HOME unset)" 0 \
		"ok: 2 frames"
else
	echo "ok - builtin: defaults from the running user's home # SKIP $home/.ssh exists"
fi

# --- remote command behaviour ------------------------------------------------------

probe -e "ssh $BASE -i $CLIENT_KEY" -n 4 "$U@$H:x" -- sh -c 'cat; exit 7'
expect "builtin: the remote exit status is returned by close (7)" 7 "ok: 4 frames"

probe -e "ssh $BASE -i $CLIENT_KEY" -n 2 "$U@$H:x" -- sh -c 'echo remote-diagnostic-line >&2; cat'
expect "builtin: remote stderr is copied to ours" 0 "ok: 2 frames" "remote-diagnostic-line"

t0=$(now_ms)
probe -e "ssh $BASE -i $CLIENT_KEY" --timeout 2 -n 2 "$U@$H:x" -- sleep 4
dt=$(($(now_ms) - t0))
expect "builtin: remote stops reading and writing, --timeout 2 -> 30" 30
check "builtin: io timeout within bounds (${dt} ms)" test "$dt" -ge 1900 -a "$dt" -lt 9000

probe -e "ssh $BASE -i $CLIENT_KEY -o ServerAliveInterval=2 -o ServerAliveCountMax=1" -n 2 \
	"$U@$H:x" -- sh -c 'sleep 6; cat'
expect "builtin: answered keepalives keep a 6 s silent session alive (limit 5 s)" 0 "ok: 2 frames"

sshd_as_client "$PROBE" -e "ssh $BASE -i $CLIENT_KEY -o ServerAliveInterval=2 \
-o ServerAliveCountMax=1" -n 2 "$U@$H:x" -- sleep 30 >"$T/out" 2>"$T/err" </dev/null &
bg=$!
sleep 1
stopped=""
for p in $(sshd_session_pids); do
	[ "$(ps -o comm= -p "$p" 2>/dev/null)" = sshd ] || continue
	kill -STOP "$p" 2>/dev/null && stopped="$stopped $p"
done
t0=$(now_ms)
wait "$bg"
RC=$?
dt=$(($(now_ms) - t0))
# list the session's processes (and its remote command) while they are still stopped
leftover=$(sshd_session_pids)
for p in $leftover; do
	kill "$p" 2>/dev/null
done
for p in $stopped; do
	kill -CONT "$p" 2>/dev/null
done
expect "builtin: unanswered keepalives (server stopped) -> 255" 255 "not responding"
check "builtin: keepalive timeout within bounds (${dt} ms, stopped:$stopped)" \
	test -n "$stopped" -a "$dt" -lt 9000

# --- connection failures -------------------------------------------------------------

lport_file=$T/lport
"$PROBE" --silent-listener >"$lport_file" &
lpid=$!
for _ in $(seq 1 50); do
	[ -s "$lport_file" ] && break
	sleep 0.05
done
lport=$(cat "$lport_file")
t0=$(now_ms)
probe -e "ssh -p $lport -i $CLIENT_KEY -o ConnectTimeout=2" -n 1 "$U@$H:x"
dt=$(($(now_ms) - t0))
expect "builtin: server accepts but never speaks, ConnectTimeout=2 -> 35" 35 \
	"Connection timed out"
check "builtin: connect timeout after ~2 s (${dt} ms)" test "$dt" -ge 1900 -a "$dt" -lt 5000
t0=$(now_ms)
probe -e "ssh -p $lport -i $CLIENT_KEY -o ConnectTimeout=10" --contimeout 1 -n 1 "$U@$H:x"
dt=$(($(now_ms) - t0))
expect "builtin: --contimeout 1 wins over ConnectTimeout=10 -> 35" 35
check "builtin: the smaller connect timeout applied (${dt} ms)" test "$dt" -lt 3500
kill "$lpid" 2>/dev/null
wait "$lpid" 2>/dev/null

probe -e "ssh -p 1 -i $CLIENT_KEY" -n 1 "$U@$H:x"
expect "builtin: connection refused -> 255" 255 "port 1: Connection refused"

probe -e "ssh $BASE -o ProxyCommand=nc" -n 1 "$U@$H:x"
expect "builtin: unsupported ssh option -> exit 1 with a message" 1 \
	"ssh option '-o ProxyCommand=nc' is not supported by the built-in transport"
probe -e "ssh $BASE -C" -n 1 "$U@$H:x"
expect "builtin: unsupported ssh flag -> exit 1" 1 "ssh option '-C' is not supported"

# --- external remote shell -------------------------------------------------------------

wrap=$SSHD_BIN_DIR/wrap-ssh
wlog=$SSHD_CLIENT_DIR/wrap.log
cat >"$wrap" <<EOF
#!/bin/sh
# logs its arguments one per line, then runs the real ssh
: >"$wlog"
for a in "\$@"; do printf '%s\n' "\$a" >>"$wlog"; done
if [ "\$1" = --tag ]; then shift 2; fi
exec ssh -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS -o BatchMode=yes "\$@"
EOF
chmod 0755 "$wrap"

probe -e "$wrap" -n 20 "$U@$H:/etc/xroad/"
expect "external: wrapper program carries the session" 0 "ok: 20 frames" "via $wrap"
printf -- '-l\n%s\n%s\ncat\n' "$U" "$H" >"$T/want"
check "external: argv is PROG -l USER HOST COMMAND, as rsync" cmp -s "$T/want" "$wlog"

probe -e "$wrap --tag 'a b'" -n 2 "$H:x" -- sh -c 'cat; exit 3'
printf -- '--tag\na b\n%s\n%s\n' "$H" "sh -c 'cat; exit 3'" >"$T/want"
check "external: -e words split like rsync, no -l without USER@, command quoted" \
	cmp -s "$T/want" "$wlog"
expect "external: the child's exit status is returned by close (3)" 3 "ok: 2 frames"

probe -e "$wrap" --timeout 2 -n 2 "$U@$H:x" -- sleep 4
expect "external: --timeout applies to the remote shell's stream -> 30" 30

probe -e "$SSHD_BIN_DIR/no-such-program" -n 1 "$U@$H:x"
expect "external: missing program -> 5" 5 "failed to exec"

probe -e "$wrap" -n 1 "$U@$H:x" -- false
check "external: child exits at once -> stream error, not a hang" test "$RC" = 10 -o "$RC" = 1

# --- local pipe -----------------------------------------------------------------------------

probe -n 20 "$T/local-dest"
expect "local: /proc/self/exe over a socketpair" 0 "ok: 20 frames" "via local pipe"

exit 0
