#!/usr/bin/env bash
# packaging.sh - the shipped operations files (SPEC §6): systemd units, logrotate file, man
# page, make install, the Debian package.  Prints "ok - NAME" / "not ok - NAME" per case.
#
# How the units are checked without installing them: "make install DESTDIR=$T/root" installs
# them; systemd-analyze verify then runs on copies whose /usr/bin/xroad-replicate is replaced
# by the built binary (verify insists that ExecStart= programs exist), with MANPATH pointing
# at doc/ so that Documentation=man:xroad-replicate(1) resolves too.  The pull unit's
# ExecStart is then expanded as systemd does (${XROAD_PRIMARY}, $XROAD_REPLICATE_OPTS) and
# run as user xroad against a real sshd whose authorized_keys holds the man page's forced
# command line, with only the paths (/usr/bin, /etc/xroad) and the test sshd's port, key and
# known_hosts (added to -e) changed.  Root is needed for that, for the logrotate run
# (su xroad xroad) and for the package build; those cases skip with a reason otherwise.
# The .deb is built once (DEB_BUILD_OPTIONS=nocheck: the unit tests run in "make test"
# anyway), about a minute (XR_SKIP_DEB=1 skips it); lintian runs on it when installed.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/common.sh
BUILD=${BUILD:-build}
BIN=$PWD/$BUILD/xroad-replicate
case $BUILD in /*) BIN=$BUILD/xroad-replicate ;; esac
MAN=doc/xroad-replicate.1
UNITS=(xroad-replicate-pull.service xroad-replicate-pull.timer xroad-replicate-watch.service)
[ -x "$BIN" ] || { not_ok "packaging: $BIN missing (make all)"; exit 1; }
chmod 0711 "$T"
# make with the packaging fragment, whether or not the Makefile includes it yet (it guards
# against double inclusion); -o: never rebuild the binary here, install the one built
xmake() {
	make --no-print-directory -f Makefile -f packaging/make.mk BUILD="$BUILD" \
		-o "$BUILD/xroad-replicate" "$@"
}
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
UNITDIR=${UNITDIR:-/lib/systemd/system}

# --- man page ---------------------------------------------------------------------------

if out=$(groff -ww -z -man "$MAN" 2>&1) && [ -z "$out" ]; then
	ok "man page: groff -ww -z -man gives no warning"
else
	not_ok "man page: groff -ww -z -man gives no warning" "$out"
fi
out=$(MANWIDTH=80 LC_ALL=C man -l "$MAN" 2>&1 >"$T/man.txt")
rc=$?
col -bx <"$T/man.txt" >"$T/man.plain"
if [ "$rc" = 0 ] && [ -z "$out" ] && [ "$(wc -l <"$T/man.plain")" -gt 200 ]; then
	ok "man page: man -l renders it (MANWIDTH=80), no message"
else
	not_ok "man page: man -l renders it (MANWIDTH=80), no message" "exit $rc" "$out"
fi

# every option and command that --help names is in the rendered page, as a whole word
"$BIN" --help >"$T/help.txt" 2>&1
opts=$(grep -oE -- '(^|[][ ,|(])--?[A-Za-z][-A-Za-z0-9]*' "$T/help.txt" |
	sed -E 's/^[][ ,|(]//' | sort -u)
cmds=$(sed -nE 's/^(Usage:)? *xroad-replicate ([a-z]+) .*/\2/p' "$T/help.txt" | sort -u)
missing=""
for o in $opts; do
	grep -qE -- "(^|[^-A-Za-z0-9])${o}([^-A-Za-z0-9]|\$)" "$T/man.plain" ||
		missing="$missing $o"
done
for c in $cmds; do
	grep -qE "^       $c( |\$)|xroad-replicate $c" "$T/man.plain" || missing="$missing $c"
done
if [ -n "$opts" ] && [ "$(echo "$opts" | wc -l)" -ge 40 ] && [ -z "$missing" ]; then
	ok "man page: names all $(echo "$opts" | wc -l) options and the commands (${cmds//$'\n'/ }) of --help"
else
	not_ok "man page: names every option of --help" "missing:$missing" \
		"(found $(echo "$opts" | wc -l) options in --help)"
fi

# the sections an operator looks for, and the facts they must state
missing=""
for s in SYNOPSIS OPTIONS "EXIT STATUS" FILES EXAMPLES "SSH ACCESS"; do
	grep -q "^$s" "$T/man.plain" || missing="$missing [$s]"
done
for code in 0 1 2 3 5 10 11 12 20 23 24 30 35 255; do
	sed -n '/^EXIT STATUS/,/^[A-Z]/p' "$T/man.plain" | grep -qE "^       $code +[A-Z]" ||
		missing="$missing exit-$code"
done
for f in DEST/.xroad-replicate/lock DEST/.xroad-replicate/stage/ \
	DEST/.xroad-replicate/journal /etc/default/xroad-replicate \
	/var/log/xroad/slave-sync.log /var/tmp/xroad/sync-disabled; do
	sed -n '/^FILES/,/^[A-Z]/p' "$T/man.plain" | grep -qF -- "$f" || missing="$missing $f"
done
key='command="/usr/bin/xroad-replicate serve --root /etc/xroad --read-only",no-pty,no-agent-forwarding,no-port-forwarding,no-X11-forwarding ssh-ed25519 AAAA... xroad@secondary'
grep -qF -- "$key" "$T/man.plain" || missing="$missing authorized_keys-line"
guide=$(sed -n '/^EXAMPLES/,/^[A-Z]/p' "$T/man.plain" | sed -n '/xroad-replicate pull -e/,/\/etc\/xroad\/$/p' |
	sed -e 's/ *\\$//' -e 's/^ *//' | tr '\n' ' ' | sed 's/ *$//')
want='xroad-replicate pull -e "ssh -o ConnectTimeout=5 " -aqz --timeout=10 --delete-delay --exclude db.properties --exclude "/conf.d/node.ini" --exclude "*.tmp" --exclude "/postgresql" --exclude "/globalconf" --exclude "/gpghome" --delay-updates --log-file=/var/log/xroad/slave-sync.log xroad-slave@PRIMARY:/etc/xroad/ /etc/xroad/'
[ "$guide" = "$want" ] || missing="$missing guide-example"
if [ -z "$missing" ]; then
	ok "man page: exit codes, FILES, authorized_keys line, the guide's line as EXAMPLE"
else
	not_ok "man page: exit codes, FILES, authorized_keys line, the guide's line as EXAMPLE" \
		"missing:$missing" "example found: $guide"
fi

# the guide's line from EXAMPLES is accepted by the binary (a dry run of a local copy)
mkdir -p "$T/ex/src/conf.d" "$T/ex/dst"
echo a >"$T/ex/src/conf.d/node.ini"
echo b >"$T/ex/src/devices.ini"
exline=$(printf '%s' "$guide" | sed -e "s|^xroad-replicate|\"\$BIN\"|" \
	-e "s|xroad-slave@PRIMARY:/etc/xroad/ /etc/xroad/|$T/ex/src/ $T/ex/dst/|" \
	-e "s|--log-file=/var/log/xroad/slave-sync.log|--log-file=$T/ex/log|" \
	-e 's|-e "ssh -o ConnectTimeout=5 " ||')
out=$(eval "$exline" 2>&1)
rc=$?
if [ "$rc" = 0 ] && [ -f "$T/ex/dst/devices.ini" ] && [ ! -e "$T/ex/dst/conf.d/node.ini" ] &&
	grep -q '>f+++++++++ devices.ini' "$T/ex/log"; then
	ok "man page: the EXAMPLES line runs (local SRC), excludes node.ini, logs rsync-style"
else
	not_ok "man page: the EXAMPLES line runs (local SRC), excludes node.ini, logs rsync-style" \
		"exit $rc: $exline" "$out" "$(cat "$T/ex/log" 2>/dev/null)"
fi

# --- make install -----------------------------------------------------------------------

R=$T/root
out=$(xmake install DESTDIR="$R" 2>&1)
rc=$?
missing=""
for f in usr/bin/xroad-replicate:755 usr/share/man/man1/xroad-replicate.1:644 \
	"${UNITDIR#/}/xroad-replicate-pull.service:644" \
	"${UNITDIR#/}/xroad-replicate-pull.timer:644" \
	"${UNITDIR#/}/xroad-replicate-watch.service:644" \
	etc/logrotate.d/xroad-replicate:644 etc/xroad-replicate.conf:644 \
	etc/default/xroad-replicate:644; do
	[ "$(stat -c %a "$R/${f%:*}" 2>/dev/null)" = "${f##*:}" ] || missing="$missing ${f%:*}"
done
"$R/usr/bin/xroad-replicate" --version 2>&1 | grep -q "^xroad-replicate version" ||
	missing="$missing (installed binary does not run)"
cmp -s "$MAN" "$R/usr/share/man/man1/xroad-replicate.1" || missing="$missing (man page differs)"
if [ "$rc" = 0 ] && [ -z "$missing" ]; then
	ok "make install DESTDIR: binary, man page, 3 units in $UNITDIR, logrotate, config, default"
else
	not_ok "make install DESTDIR: everything in place" "exit $rc; missing:$missing" \
		"$(printf '%s\n' "$out" | tail -8)" "$(cd "$R" 2>/dev/null && find . | sort)"
fi

# PREFIX moves the binary and the units follow it; the node's settings survive a reinstall
R2=$T/root2
mkdir -p "$R2/etc/default"
echo "XROAD_PRIMARY=ss1.example.org" >"$R2/etc/default/xroad-replicate"
out=$(xmake install DESTDIR="$R2" PREFIX=/usr/local SYSTEMDUNITDIR=/etc/systemd/system 2>&1)
rc=$?
u=$R2/etc/systemd/system/xroad-replicate-pull.service
if [ "$rc" = 0 ] && [ -x "$R2/usr/local/bin/xroad-replicate" ] &&
	grep -q '^ExecStart=/usr/local/bin/xroad-replicate pull ' "$u" &&
	! grep -q '/usr/bin/xroad-replicate' "$R2"/etc/systemd/system/* &&
	grep -qx "XROAD_PRIMARY=ss1.example.org" "$R2/etc/default/xroad-replicate" &&
	[ -f "$R2/usr/local/share/man/man1/xroad-replicate.1" ]; then
	ok "make install PREFIX=/usr/local: units run /usr/local/bin, existing default file kept"
else
	not_ok "make install PREFIX=/usr/local: units run /usr/local/bin, existing default kept" \
		"exit $rc" "$(printf '%s\n' "$out" | tail -5)" "$(grep -h ExecStart= "$u" 2>&1)" \
		"$(cat "$R2/etc/default/xroad-replicate")"
fi

# --- systemd units ----------------------------------------------------------------------

V=$T/verify
mkdir -p "$V/units" "$V/man/man1"
cp "$MAN" "$V/man/man1/"
for u in "${UNITS[@]}"; do
	sed "s|/usr/bin/xroad-replicate|$BIN|g" "$R/$UNITDIR/$u" >"$V/units/$u"
done
if command -v systemd-analyze >/dev/null; then
	out=$(cd "$V/units" && MANPATH=$V/man SYSTEMD_LOG_LEVEL=notice \
		systemd-analyze verify "${UNITS[@]/#/./}" 2>&1)
	rc=$?
	if [ "$rc" = 0 ] && [ -z "$out" ]; then
		ok "units: systemd-analyze verify, no message (pull.service, pull.timer, watch.service)"
	else
		not_ok "units: systemd-analyze verify, no message" "exit $rc" "$out"
	fi
	# hardening: systemd's own exposure score stays "OK" (below 5.0 of 10)
	bad=""
	for u in xroad-replicate-pull.service xroad-replicate-watch.service; do
		s=$(cd "$V/units" && systemd-analyze security --offline=true --no-pager "./$u" 2>&1 |
			sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		awk -v s="$s" 'BEGIN { exit !(s != "" && s + 0 < 5.0) }' || bad="$bad $u=${s:-?}"
		scores="${scores:-}${s:-?} "
	done
	if [ -z "$bad" ]; then
		ok "units: systemd-analyze security exposure below 5.0 (pull, watch: $scores)"
	else
		not_ok "units: systemd-analyze security exposure below 5.0" "$bad"
	fi
else
	skip "units: systemd-analyze verify" "systemd-analyze missing (apt-get install systemd)"
	skip "units: systemd-analyze security" "systemd-analyze missing"
fi

# the guide's unit facts (IG-XLB §5, /work/shared/XROAD.md)
P=$R/$UNITDIR/xroad-replicate-pull.service
W=$R/$UNITDIR/xroad-replicate-watch.service
TM=$R/$UNITDIR/xroad-replicate-pull.timer
bad=""
for want in "$P:Type=oneshot" "$P:User=xroad" "$P:Group=xroad" \
	"$P:EnvironmentFile=-/etc/default/xroad-replicate" \
	"$P:Before=xroad-proxy.service xroad-signer.service xroad-confclient.service xroad-proxy-ui-api.service" \
	"$P:WantedBy=multi-user.target" "$P:ProtectSystem=full" "$P:NoNewPrivileges=yes" \
	"$P:PrivateTmp=yes" "$P:BindReadOnlyPaths=-/var/tmp/xroad" \
	"$P:ReadWritePaths=/etc/xroad -/var/log/xroad" \
	"$TM:OnBootSec=60" "$TM:OnUnitActiveSec=60" "$TM:WantedBy=timers.target" \
	"$W:Restart=always" "$W:RestartSec=5" "$W:User=xroad" "$W:ProtectSystem=full" \
	"$W:Conflicts=xroad-replicate-pull.timer" "$W:ExecReload=/bin/kill -HUP \$MAINPID"; do
	grep -qxF -- "${want#*:}" "${want%%:*}" || bad="$bad ${want##*/}"
done
# shellcheck disable=SC2016 # the unit's literal $VARs
grep -qx 'ExecStart=/usr/bin/xroad-replicate pull --profile xroad -aqz --delete-delay --delay-updates -e "ssh -o ConnectTimeout=5" $XROAD_REPLICATE_OPTS xroad-slave@${XROAD_PRIMARY}:/etc/xroad/ /etc/xroad/' "$P" ||
	bad="$bad pull:ExecStart"
grep -q '^ExecStart=/usr/bin/xroad-replicate pull --watch ' "$W" || bad="$bad watch:ExecStart"
# the watch service must see a pause flag created after it started: no private /var/tmp
grep -q '^PrivateTmp=yes' "$W" && bad="$bad watch:PrivateTmp"
if [ -z "$bad" ]; then
	ok "units: the guide's xroad-sync facts (oneshot as xroad, Before=, 60 s timer), hardening"
else
	not_ok "units: the guide's xroad-sync facts, hardening" "wrong or missing:$bad"
fi

# --- the pull unit's command, for real: man page's forced command, sshd, user xroad ----

# exec_line UNIT VAR=VALUE...: prints the unit's ExecStart= as systemd expands it, as
# NUL-separated words: ${VAR} (inside a word) and $VAR (a word of its own, split at blanks,
# nothing when empty), then the unit's double-quote word splitting.
exec_line() {
	local unit=$1 line kv
	shift
	line=$(sed -n 's/^ExecStart=//p' "$unit")
	for kv in "$@"; do
		line=${line//\$\{${kv%%=*}\}/${kv#*=}}
		line=${line//\$${kv%%=*}/${kv#*=}}
	done
	case $line in *'$'*) echo "unexpanded variable in: $line" >&2; return 1 ;; esac
	eval "printf '%s\0' $line"
}

if ! need_root; then
	skip "pull unit over real sshd" "needs root (sshd, users xroad and xroad-slave)"
elif ! [ -x /usr/sbin/sshd ]; then
	skip "pull unit over real sshd" "openssh-server missing (make deps)"
else
	. tests/lib/sshd.sh
	. tests/lib/xroad_tree.sh
	if ! sshd_start 2>"$T/sshd.err"; then
		not_ok "pull unit over real sshd: sshd_start" "$(cat "$T/sshd.err")"
	else
		S=$SSHD_DIR/nodes
		PRI=$S/primary/etc/xroad SEC=$S/secondary/etc/xroad LOGD=$S/secondary/log
		mkdir -p "$S/primary/etc" "$S/secondary/etc" "$LOGD"
		chmod -R 0755 "$S"
		cp "$BIN" "$SSHD_BIN_DIR/xroad-replicate"
		chmod 0755 "$SSHD_BIN_DIR/xroad-replicate"
		xroad_tree "$PRI" 3 >/dev/null
		mkdir -m 0751 "$SEC"
		chown xroad:xroad "$SEC" "$LOGD"
		# the primary's authorized_keys: the man page's line, paths and key replaced
		line=$(grep -F 'command="/usr/bin/xroad-replicate serve' "$T/man.plain" | sed 's/^ *//')
		line=${line//\/usr\/bin\/xroad-replicate/$SSHD_BIN_DIR/xroad-replicate}
		line=${line//--root \/etc\/xroad/--root $PRI}
		line="${line%% ssh-ed25519 *} $(cat "$CLIENT_KEY.pub")"
		printf '%s\n' "$line" >"$SSHD_DIR/authorized_keys/$SSHD_USER"
		# the unit's command; only -e gains the test sshd's port, key and known_hosts
		sed -e "s|/usr/bin/xroad-replicate|$SSHD_BIN_DIR/xroad-replicate|" \
			-e "s|:/etc/xroad/ /etc/xroad/|:$PRI/ $SEC/|" \
			-e "s|ssh -o ConnectTimeout=5|ssh -o ConnectTimeout=5 $SSH_OPTS|" \
			"$P" >"$T/pull.service"
		opts="--log-file=$LOGD/slave-sync.log --pause-file=$S/sync-disabled"
		run_unit() {
			local -a argv=()
			mapfile -d '' argv < <(exec_line "$T/pull.service" \
				XROAD_PRIMARY=127.0.0.1 "XROAD_REPLICATE_OPTS=$opts")
			(cd / && sshd_as_client "${argv[@]}") >"$T/unit.out" 2>&1 </dev/null
		}
		run_unit
		rc=$?
		# oracle: the real rsync with the guide's options, locally
		mkdir -p "$T/expect"
		rsync "${XROAD_RSYNC_OPTS[@]}" "$PRI/" "$T/expect/"
		d=$(tree_diff "$T/expect" "$SEC")
		if [ "$rc" = 0 ] && [ -z "$d" ] && [ -f "$SEC/signer/keyconf.xml" ] &&
			[ ! -e "$SEC/conf.d/node.ini" ] && [ ! -e "$SEC/db.properties" ] &&
			grep -q '>f+++++++++ signer/keyconf.xml' "$LOGD/slave-sync.log" &&
			grep -qE 'sent [0-9,]+ bytes  received [0-9,]+ bytes  total size [0-9,]+' \
				"$LOGD/slave-sync.log"; then
			ok "pull unit's ExecStart as xroad, via the man page's forced command: tree = rsync's"
		else
			not_ok "pull unit's ExecStart as xroad via the forced command: tree = rsync's" \
				"exit $rc" "$(cat "$T/unit.out")" "$(printf '%s\n' "$d" | head -10)" \
				"$(tail -5 "$LOGD/slave-sync.log" 2>/dev/null)"
		fi

		# the pause flag: a run does nothing, says so in the log, exits 0
		xroad_edit_keyconf "$PRI" >/dev/null
		before=$(sha256sum <"$SEC/signer/keyconf.xml")
		touch "$S/sync-disabled"
		run_unit
		rc=$?
		if [ "$rc" = 0 ] && [ "$(sha256sum <"$SEC/signer/keyconf.xml")" = "$before" ] &&
			tail -1 "$LOGD/slave-sync.log" | grep -q "sync-disabled"; then
			ok "pull unit: pause flag present - nothing done, one log line, exit 0"
		else
			not_ok "pull unit: pause flag present - nothing done, one log line, exit 0" \
				"exit $rc" "$(cat "$T/unit.out")" "$(tail -2 "$LOGD/slave-sync.log")"
		fi
		rm -f "$S/sync-disabled"
		run_unit
		rc=$?
		if [ "$rc" = 0 ] && cmp -s "$PRI/signer/keyconf.xml" "$SEC/signer/keyconf.xml"; then
			ok "pull unit: flag removed - the next run catches up"
		else
			not_ok "pull unit: flag removed - the next run catches up" "exit $rc" \
				"$(cat "$T/unit.out")"
		fi

		# the forced command is --read-only: the same key cannot push into the primary
		mkdir -p "$S/evil" && echo evil >"$S/evil/devices.ini" && chmod -R 0755 "$S/evil"
		before=$(sha256sum <"$PRI/devices.ini")
		(cd / && sshd_as_client "$SSHD_BIN_DIR/xroad-replicate" push -a -e "ssh $SSH_OPTS" \
			"$S/evil/" "$SSHD_USER@127.0.0.1:$PRI/") >"$T/push.out" 2>&1 </dev/null
		rc=$?
		if [ "$rc" != 0 ] && [ "$(sha256sum <"$PRI/devices.ini")" = "$before" ]; then
			ok "authorized_keys forced command (--read-only): a push is refused (exit $rc)"
		else
			not_ok "authorized_keys forced command (--read-only): a push is refused" \
				"exit $rc" "$(cat "$T/push.out")"
		fi
		# the watch unit's command: stays connected, a new key arrives by itself, and
		# SIGTERM (systemctl stop) ends it with exit 0
		if ! "$BIN" --help 2>&1 | grep -q -- '--watch'; then
			skip "watch unit: pull --watch" "this build has no --watch yet"
		else
			sed -e "s|/usr/bin/xroad-replicate|$SSHD_BIN_DIR/xroad-replicate|" \
				-e "s|:/etc/xroad/ /etc/xroad/|:$PRI/ $SEC/|" \
				-e "s|ssh -o ConnectTimeout=5|ssh -o ConnectTimeout=5 $SSH_OPTS|" \
				"$W" >"$T/watch.service"
			mapfile -d '' argv < <(exec_line "$T/watch.service" \
				XROAD_PRIMARY=127.0.0.1 "XROAD_REPLICATE_OPTS=$opts")
			(cd / && exec runuser -u "$SSHD_CLIENT_USER" -- env -u SSH_AUTH_SOCK "${argv[@]}") >"$T/watch.out" 2>&1 </dev/null &
			bg=$!
			key=$(xroad_add_key "$PRI")
			got=""
			for _ in $(seq 1 100); do
				if cmp -s "$PRI/signer/keyconf.xml" "$SEC/signer/keyconf.xml" &&
					[ -f "$SEC/signer/softtoken/$key.p12" ]; then
					got=yes
					break
				fi
				sleep 0.1
			done
			wpid=""
			for p in $(sshd_descendants "$bg") "$bg"; do
				[ "$(ps -o comm= -p "$p" 2>/dev/null)" = xroad-replicate ] && wpid=$p
			done
			[ -n "$wpid" ] && kill -TERM "$wpid"
			rc=timeout
			for _ in $(seq 1 50); do
				kill -0 "$bg" 2>/dev/null || { wait "$bg"; rc=$?; break; }
				sleep 0.1
			done
			[ "$rc" = timeout ] && kill -KILL "$bg" ${wpid:+"$wpid"} 2>/dev/null
			if [ "$got" = yes ] && [ "$rc" = 0 ] && [ -n "$wpid" ]; then
				ok "watch unit's ExecStart: a new key reaches the secondary; SIGTERM ends it, exit 0"
			else
				not_ok "watch unit's ExecStart: new key arrives, SIGTERM exit 0" \
					"arrived: ${got:-no}; pid ${wpid:-?}; exit $rc" \
					"$(cat "$T/watch.out")" "$(tail -4 "$LOGD/slave-sync.log")"
			fi
		fi
		sshd_stop
	fi
fi

# --- logrotate --------------------------------------------------------------------------

LR=$R/etc/logrotate.d/xroad-replicate
if ! command -v logrotate >/dev/null; then
	skip "logrotate -d parses the file" "logrotate missing (apt-get install logrotate)"
	skip "logrotate: a real rotation" "logrotate missing"
else
	# without a user xroad (not root, no X-Road) the su/create owner becomes the caller
	lrconf=$LR lrnote=""
	if ! getent passwd xroad >/dev/null; then
		sed "s/ xroad xroad\$/ $(id -un) $(id -gn)/" "$LR" >"$T/lr.conf"
		lrconf=$T/lr.conf lrnote=" (xroad replaced by $(id -un): no such user)"
	fi
	out=$(logrotate -d -s "$T/lr.state" "$lrconf" 2>&1)
	rc=$?
	if [ "$rc" = 0 ] && ! printf '%s\n' "$out" | grep -qi 'error'; then
		ok "logrotate -d parses /etc/logrotate.d/xroad-replicate$lrnote"
	else
		not_ok "logrotate -d parses /etc/logrotate.d/xroad-replicate" "exit $rc" "$out"
	fi
	if ! need_root || ! getent passwd xroad >/dev/null; then
		skip "logrotate: a real rotation" "needs root and user xroad"
	else
		# the shipped rules on a scratch log: two forced rotations
		L=$T/lr/xroad
		mkdir -p "$L" && chmod 0755 "$T/lr" && chown xroad:xroad "$L" && chmod 0750 "$L"
		sed "s|/var/log/xroad/slave-sync.log|$L/slave-sync.log|" "$LR" >"$T/lr/conf"
		# as the service leaves it (UMask=0027)
		echo "2026/11/29 10:00:00 [1] first" >"$L/slave-sync.log"
		chown xroad:xroad "$L/slave-sync.log" && chmod 0640 "$L/slave-sync.log"
		out=$(logrotate -f -s "$T/lr/state" "$T/lr/conf" 2>&1)
		rc1=$?
		echo "2026/11/29 10:01:00 [2] second" >>"$L/slave-sync.log"
		out="$out$(logrotate -f -s "$T/lr/state" "$T/lr/conf" 2>&1)"
		rc2=$?
		got=$(cd "$L" && stat -c '%n %a %U:%G' -- * | sort | tr '\n' ';')
		want="slave-sync.log 640 xroad:xroad;slave-sync.log.1 640 xroad:xroad;slave-sync.log.2.gz 640 xroad:xroad;"
		if [ "$rc1$rc2" = 00 ] && [ "$got" = "$want" ] &&
			zcat "$L/slave-sync.log.2.gz" | grep -q first &&
			grep -q second "$L/slave-sync.log.1"; then
			ok "logrotate: real rotation - new log 0640 xroad:xroad, .1 plain, .2.gz (delaycompress)"
		else
			not_ok "logrotate: real rotation" "exit $rc1/$rc2" "got:  $got" "want: $want" "$out"
		fi
	fi
fi

# the postrotate script, run for real against a running watcher: systemctl is a stub that
# prints the watcher's PID as "systemctl show -p MainPID --value" would (no systemd here)
script=$(sed -n '/^[[:space:]]*postrotate$/,/^[[:space:]]*endscript$/p' "$LR" | sed '1d;$d')
LW=$T/lrw
mkdir -p "$LW/src/conf.d" "$LW/stub"
echo 'a=1' >"$LW/src/conf.d/local.ini"
"$BIN" pull -a --watch --log-file "$LW/w.log" "$LW/src/" "$LW/dst/" >"$LW/out" 2>&1 &
lwpid=$!
for _ in $(seq 1 100); do [ -f "$LW/dst/conf.d/local.ini" ] && break; sleep 0.1; done
printf '#!/bin/sh\n[ "$*" = "show -p MainPID --value xroad-replicate-watch.service" ] && echo %s\n' \
	"$lwpid" >"$LW/stub/systemctl"
chmod +x "$LW/stub/systemctl"
mv "$LW/w.log" "$LW/w.log.1"
out=$(PATH="$LW/stub:$PATH" sh -ec "$script" 2>&1)
rc=$?
for _ in $(seq 1 100); do grep -qs 'SIGHUP: configuration re-read' "$LW/w.log" && break; sleep 0.1; done
if [ -n "$script" ] && [ "$rc" = 0 ] && grep -qs 'SIGHUP: configuration re-read' "$LW/w.log" &&
	kill -0 "$lwpid" 2>/dev/null; then
	ok "logrotate postrotate: the watch service's watcher gets SIGHUP and reopens its log"
else
	not_ok "logrotate postrotate: the watcher reopens its log" "script: $script" "exit $rc" \
		"$out" "$(cat "$LW/out" "$LW/w.log" 2>&1)"
fi
printf '#!/bin/sh\nexit 1\n' >"$LW/stub/systemctl"	# no such service, or no systemd
out=$(PATH="$LW/stub:$PATH" sh -ec "$script" 2>&1)
rc=$?
[ "$rc" = 0 ] && ok "logrotate postrotate: no watch service running - nothing sent, exit 0" ||
	not_ok "logrotate postrotate: no watch service - exit 0" "exit $rc" "$out"
kill -TERM "$lwpid" 2>/dev/null
wait "$lwpid" 2>/dev/null

# --- Debian package ---------------------------------------------------------------------

if [ -n "${XR_SKIP_DEB:-}" ]; then
	skip "deb: make deb builds the package" "XR_SKIP_DEB is set"
elif ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
	skip "deb: make deb builds the package" \
		"dpkg-buildpackage or debhelper missing (apt-get install dpkg-dev debhelper)"
else
	DB=$T/debbuild
	mkdir -p "$DB"
	start=$(date +%s)
	out=$(DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" xmake deb BUILD="$DB" 2>&1)
	rc=$?
	secs=$(($(date +%s) - start))
	deb=""
	for f in "$DB"/xroad-replicate_*.deb; do [ -f "$f" ] && deb=$f; done
	if [ "$rc" = 0 ] && [ -n "$deb" ] && [ ! -d "$DB/deb" ]; then
		ok "deb: make deb built ${deb##*/} in $secs s (source copy, nothing left behind)"
	else
		not_ok "deb: make deb builds the package" "exit $rc" \
			"$(printf '%s\n' "$out" | grep -v '^cc ' | tail -25)"
		deb=""
	fi
	if [ -n "$deb" ]; then
		X=$T/debroot
		dpkg -x "$deb" "$X"
		v=$("$X/usr/bin/xroad-replicate" --version 2>&1 | head -1)
		upstream=$(dpkg-parsechangelog -l debian/changelog -S Version | sed 's/-[^-]*$//')
		case $v in
		"xroad-replicate version $upstream "*)
			ok "deb: dpkg -x; its binary runs: $v" ;;
		*)
			not_ok "deb: dpkg -x; its binary runs and reports $upstream" "$v" ;;
		esac
		missing=""
		for f in usr/share/man/man1/xroad-replicate.1.gz etc/logrotate.d/xroad-replicate \
			etc/xroad-replicate.conf etc/default/xroad-replicate \
			usr/share/doc/xroad-replicate/copyright; do
			[ -f "$X/$f" ] || missing="$missing $f"
		done
		for u in "${UNITS[@]}"; do
			[ -f "$X/lib/systemd/system/$u" ] || [ -f "$X/usr/lib/systemd/system/$u" ] ||
				missing="$missing $u"
		done
		conff=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles | sort | tr '\n' ' ')
		[ "$conff" = "/etc/default/xroad-replicate /etc/logrotate.d/xroad-replicate /etc/xroad-replicate.conf " ] ||
			missing="$missing conffiles($conff)"
		dep=$(dpkg-deb -f "$deb" Depends)
		for d in openssh-client librsync libssh2 libxxhash libssl zlib1g; do
			case $dep in *"$d"*) ;; *) missing="$missing Depends:$d" ;; esac
		done
		if [ -z "$missing" ]; then
			ok "deb: units, man page, logrotate, config as conffiles; Depends: shlibs + openssh-client"
		else
			not_ok "deb: contents" "missing:$missing" "$(dpkg -c "$deb")"
		fi
		if command -v lintian >/dev/null; then
			out=$(lintian --fail-on error "$deb" 2>&1)
			rc=$?
			if [ "$rc" = 0 ] && ! printf '%s\n' "$out" | grep -q '^E:'; then
				ok "deb: lintian --fail-on error is clean ($(printf '%s\n' "$out" |
					grep -c '^W:') warnings)"
			else
				not_ok "deb: lintian --fail-on error" "exit $rc" "$out"
			fi
		else
			skip "deb: lintian" "lintian missing (apt-get install lintian)"
		fi
	fi
fi

tests_done
