# sshd.sh - a real OpenSSH server on loopback for tests (source it from bash; run as root).
#
#   . tests/lib/sshd.sh
#   sshd_start            # users, keys, known_hosts, sshd on 127.0.0.1:$SSHD_PORT
#   ... tests ...
#   sshd_stop             # also runs on EXIT (trap), idempotent
#
# Users as in the X-Road guide (IG-XLB §5): group xroad, user xroad (the
# client, home /var/lib/xroad) and user xroad-slave (the server account,
# shell /bin/bash, home /var/lib/xroad-slave); created with useradd when
# absent.  Nothing is written to their homes: authorized keys live in
# $SSHD_DIR/authorized_keys/%u, client keys and known_hosts files in
# $SSHD_CLIENT_DIR (owned by the client user).  StrictModes stays on, so
# every path is set up with real ownership and permissions.
#
# Exported after sshd_start:
#   SSHD_PORT SSHD_PID SSHD_DIR SSHD_LOG SSHD_CONFIG SSHD_IPV6 (1 if also on [::1])
#   SSHD_USER (xroad-slave)  SSHD_CLIENT_USER (xroad)  SSHD_CLIENT_DIR  SSHD_BIN_DIR
#   CLIENT_KEY (ed25519)  CLIENT_KEY_RSA  CLIENT_KEY_ECDSA  CLIENT_KEY_PASS  CLIENT_KEY_PASSPHRASE
#   CLIENT_KEY_WRONG (not authorized)
#   KNOWN_HOSTS (plain, "[127.0.0.1]:PORT" entries)  KNOWN_HOSTS_HASHED (ssh-keygen -H)
#   KNOWN_HOSTS_RSA (only the RSA host key)  KNOWN_HOSTS_CHANGED (other keys for the host)
#   KNOWN_HOSTS_EMPTY  HOST_FP_ED25519  HOST_FP_RSA (OpenSSH SHA256 fingerprints)
#   SSH_OPTS   "-p PORT -i CLIENT_KEY -o UserKnownHostsFile=KNOWN_HOSTS -o BatchMode=yes"
#
# sshd_as_client CMD...  runs CMD as the client user (runuser, no login shell, no agent).

SSHD_USER=${SSHD_USER:-xroad-slave}
SSHD_CLIENT_USER=${SSHD_CLIENT_USER:-xroad}
SSHD_DIR=""
SSHD_PID=""

# Logs a line to stderr.
sshd_log() {
	echo "sshd.sh: $*" >&2
}

# Creates group xroad and the users xroad and xroad-slave when absent; makes
# sure sshd (UsePAM no) does not treat their accounts as locked.
sshd_users() {
	local u home pw
	getent group xroad >/dev/null || groupadd --system xroad || return 1
	for u in "$SSHD_CLIENT_USER" "$SSHD_USER"; do
		if ! getent passwd "$u" >/dev/null; then
			home=/var/lib/$u
			useradd --system --gid xroad --home-dir "$home" --create-home \
				--shell /bin/bash "$u" || return 1
		fi
		# "!" in the password field is a locked account for sshd without PAM;
		# "*" means "no password login" and still allows keys
		pw=$(getent shadow "$u" | cut -d: -f2)
		case "$pw" in
		'!'*) usermod -p '*' "$u" || return 1 ;;
		esac
	done
}

# Prints a free TCP port on 127.0.0.1 in 20000..59999.
sshd_free_port() {
	local port i
	for i in $(seq 1 50); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if [ -z "$(ss -Htln "sport = :$port" 2>/dev/null)" ]; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# Generates a key pair: sshd_keygen TYPE FILE PASSPHRASE [BITS]
sshd_keygen() {
	local bits=()
	[ -n "${4:-}" ] && bits=(-b "$4")
	ssh-keygen -q -t "$1" "${bits[@]}" -N "$3" -C "xr-test-$1" -f "$2" </dev/null >/dev/null
}

# Prints the OpenSSH SHA256 fingerprint of a public key file.
sshd_fingerprint() {
	ssh-keygen -l -E sha256 -f "$1" | awk '{print $2}'
}

# Runs a command as the client user, without a login shell.
sshd_as_client() {
	runuser -u "$SSHD_CLIENT_USER" -- env -u SSH_AUTH_SOCK "$@"
}

# Waits up to 10 s until sshd listens on its port; returns 1 if it died.
sshd_wait_listening() {
	local i
	for i in $(seq 1 100); do
		kill -0 "$SSHD_PID" 2>/dev/null || return 1
		[ -n "$(ss -Htln "sport = :$SSHD_PORT" 2>/dev/null)" ] && return 0
		sleep 0.1
	done
	return 1
}

# Writes sshd_config for the current port.
sshd_write_config() {
	{
		echo "Port $SSHD_PORT"
		echo "ListenAddress 127.0.0.1"
		[ "$SSHD_IPV6" = 1 ] && echo "ListenAddress ::1"
		echo "HostKey $SSHD_DIR/ssh_host_ed25519_key"
		echo "HostKey $SSHD_DIR/ssh_host_rsa_key"
		echo "PidFile $SSHD_DIR/sshd.pid"
		echo "AuthorizedKeysFile $SSHD_DIR/authorized_keys/%u"
		echo "AllowUsers $SSHD_USER $SSHD_CLIENT_USER"
		echo "UsePAM no"
		echo "StrictModes yes"
		echo "PermitRootLogin no"
		echo "PasswordAuthentication no"
		echo "KbdInteractiveAuthentication no"
		echo "PubkeyAuthentication yes"
		echo "MaxAuthTries 10"
		echo "MaxStartups 100:30:200"
		echo "LoginGraceTime 30"
		echo "LogLevel VERBOSE"
		# libssh2 1.10 signs RSA user keys with ssh-rsa (SHA-1) only; the client
		# user may use it so that RSA keys can be tested, the server user may not
		echo "Match User $SSHD_CLIENT_USER"
		echo "	PubkeyAcceptedAlgorithms +ssh-rsa"
	} >"$SSHD_CONFIG"
}

# Sets everything up and starts sshd; returns non-zero (with a message) on failure.
sshd_start() {
	local attempt cd
	if [ "$(id -u)" != 0 ]; then
		sshd_log "must run as root"
		return 1
	fi
	sshd_users || { sshd_log "cannot create users"; return 1; }
	mkdir -p /run/sshd && chmod 0755 /run/sshd
	# root-owned, 0755 and not below a world-writable directory: StrictModes
	# checks every directory up to / for the authorized_keys file
	mkdir -p /run/xr-test && chmod 0755 /run/xr-test
	SSHD_DIR=$(mktemp -d /run/xr-test/sshd.XXXXXX) || return 1
	chmod 0755 "$SSHD_DIR"
	export SSHD_DIR SSHD_USER SSHD_CLIENT_USER
	export SSHD_CONFIG=$SSHD_DIR/sshd_config SSHD_LOG=$SSHD_DIR/sshd.log
	export SSHD_BIN_DIR=$SSHD_DIR/bin SSHD_CLIENT_DIR=$SSHD_DIR/client
	sshd_install_trap

	sshd_keygen ed25519 "$SSHD_DIR/ssh_host_ed25519_key" "" &&
		sshd_keygen rsa "$SSHD_DIR/ssh_host_rsa_key" "" 2048 &&
		sshd_keygen ed25519 "$SSHD_DIR/other_host_ed25519_key" "" &&
		sshd_keygen rsa "$SSHD_DIR/other_host_rsa_key" "" 2048 || return 1
	chmod 0600 "$SSHD_DIR"/*_key

	cd=$SSHD_CLIENT_DIR
	mkdir -p "$cd" "$SSHD_BIN_DIR" "$SSHD_DIR/authorized_keys"
	export CLIENT_KEY=$cd/id_ed25519 CLIENT_KEY_RSA=$cd/id_rsa CLIENT_KEY_ECDSA=$cd/id_ecdsa
	export CLIENT_KEY_PASS=$cd/id_pass CLIENT_KEY_WRONG=$cd/id_wrong
	export CLIENT_KEY_PASSPHRASE="xr test passphrase"
	sshd_keygen ed25519 "$CLIENT_KEY" "" &&
		sshd_keygen rsa "$CLIENT_KEY_RSA" "" 2048 &&
		sshd_keygen ecdsa "$CLIENT_KEY_ECDSA" "" 256 &&
		sshd_keygen ed25519 "$CLIENT_KEY_PASS" "$CLIENT_KEY_PASSPHRASE" &&
		sshd_keygen ed25519 "$CLIENT_KEY_WRONG" "" || return 1
	cat "$CLIENT_KEY.pub" "$CLIENT_KEY_RSA.pub" "$CLIENT_KEY_ECDSA.pub" "$CLIENT_KEY_PASS.pub" \
		>"$SSHD_DIR/authorized_keys/$SSHD_USER"
	cp "$SSHD_DIR/authorized_keys/$SSHD_USER" "$SSHD_DIR/authorized_keys/$SSHD_CLIENT_USER"
	chmod 0755 "$SSHD_DIR/authorized_keys"
	chmod 0644 "$SSHD_DIR/authorized_keys"/*

	SSHD_IPV6=0
	ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/' && SSHD_IPV6=1
	export SSHD_IPV6

	for attempt in 1 2 3 4 5; do
		SSHD_PORT=$(sshd_free_port) || { sshd_log "no free port"; return 1; }
		export SSHD_PORT
		sshd_write_config
		/usr/sbin/sshd -t -f "$SSHD_CONFIG" 2>>"$SSHD_LOG" || {
			sshd_log "bad config (see $SSHD_LOG)"
			cat "$SSHD_LOG" >&2
			return 1
		}
		/usr/sbin/sshd -D -e -f "$SSHD_CONFIG" 2>>"$SSHD_LOG" </dev/null &
		SSHD_PID=$!
		export SSHD_PID
		sshd_wait_listening && break
		kill "$SSHD_PID" 2>/dev/null
		wait "$SSHD_PID" 2>/dev/null
		SSHD_PID=""
	done
	if [ -z "$SSHD_PID" ]; then
		sshd_log "sshd did not start; log:"
		cat "$SSHD_LOG" >&2
		return 1
	fi

	sshd_known_hosts || return 1
	chown -R "$SSHD_CLIENT_USER:xroad" "$cd"
	chmod 0700 "$cd"
	chmod 0600 "$cd"/id_* "$cd"/known_hosts*
	chmod 0644 "$cd"/*.pub
	chmod 0755 "$SSHD_BIN_DIR"
	export SSH_OPTS="-p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS -o BatchMode=yes"
	return 0
}

# Writes the known_hosts variants for [127.0.0.1]:PORT (and [::1]:PORT).
sshd_known_hosts() {
	local cd=$SSHD_CLIENT_DIR names="[127.0.0.1]:$SSHD_PORT" n
	[ "$SSHD_IPV6" = 1 ] && names="$names [::1]:$SSHD_PORT"
	export KNOWN_HOSTS=$cd/known_hosts KNOWN_HOSTS_HASHED=$cd/known_hosts_hashed
	export KNOWN_HOSTS_RSA=$cd/known_hosts_rsa KNOWN_HOSTS_CHANGED=$cd/known_hosts_changed
	export KNOWN_HOSTS_EMPTY=$cd/known_hosts_empty
	: >"$KNOWN_HOSTS"
	: >"$KNOWN_HOSTS_RSA"
	: >"$KNOWN_HOSTS_CHANGED"
	: >"$KNOWN_HOSTS_EMPTY"
	{
		echo "# test known_hosts for xroad-replicate"
		echo "other.example.invalid $(cut -d' ' -f1-2 "$SSHD_DIR/other_host_ed25519_key.pub")"
	} >>"$KNOWN_HOSTS"
	for n in $names; do
		echo "$n $(cut -d' ' -f1-2 "$SSHD_DIR/ssh_host_ed25519_key.pub")" >>"$KNOWN_HOSTS"
		echo "$n $(cut -d' ' -f1-2 "$SSHD_DIR/ssh_host_rsa_key.pub")" >>"$KNOWN_HOSTS"
		echo "$n $(cut -d' ' -f1-2 "$SSHD_DIR/ssh_host_rsa_key.pub")" >>"$KNOWN_HOSTS_RSA"
		echo "$n $(cut -d' ' -f1-2 "$SSHD_DIR/other_host_ed25519_key.pub")" \
			>>"$KNOWN_HOSTS_CHANGED"
		echo "$n $(cut -d' ' -f1-2 "$SSHD_DIR/other_host_rsa_key.pub")" \
			>>"$KNOWN_HOSTS_CHANGED"
	done
	cp "$KNOWN_HOSTS" "$KNOWN_HOSTS_HASHED"
	ssh-keygen -q -H -f "$KNOWN_HOSTS_HASHED" >/dev/null 2>&1 || return 1
	rm -f "$KNOWN_HOSTS_HASHED.old"
	grep -q '^|1|' "$KNOWN_HOSTS_HASHED" || { sshd_log "hashing known_hosts failed"; return 1; }
	HOST_FP_ED25519=$(sshd_fingerprint "$SSHD_DIR/ssh_host_ed25519_key.pub")
	HOST_FP_RSA=$(sshd_fingerprint "$SSHD_DIR/ssh_host_rsa_key.pub")
	export HOST_FP_ED25519 HOST_FP_RSA
}

# Prints the pids of all descendants of a pid (by parent pid, depth first).
sshd_descendants() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$c"
		sshd_descendants "$c"
	done
}

# Prints the pids of the sshd session processes and the commands they run.
sshd_session_pids() {
	[ -n "$SSHD_PID" ] || return 0
	sshd_descendants "$SSHD_PID"
}

# Stops sshd and its session processes (by pid) and removes the temp dir; idempotent.
sshd_stop() {
	local p
	if [ -n "$SSHD_PID" ]; then
		for p in $(sshd_session_pids); do
			kill -CONT "$p" 2>/dev/null
			kill "$p" 2>/dev/null
		done
		kill "$SSHD_PID" 2>/dev/null
		wait "$SSHD_PID" 2>/dev/null
		SSHD_PID=""
	fi
	if [ -n "$SSHD_DIR" ] && [ -d "$SSHD_DIR" ]; then
		[ -n "${SSHD_KEEP:-}" ] && { sshd_log "kept $SSHD_DIR"; return 0; }
		rm -rf "$SSHD_DIR"
	fi
	SSHD_DIR=""
}

# Chains sshd_stop into the EXIT trap (keeping a trap the caller set before).
sshd_install_trap() {
	local old
	old=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
	case "$old" in *sshd_stop*) return 0 ;; esac
	# shellcheck disable=SC2064
	trap "sshd_stop; ${old:-:}" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}
