#!/bin/bash
# ssh_sync.sh - end-to-end: xroad-replicate pull/push through the real CLI over a real sshd on
# 127.0.0.1, with the real rsync (on both ends, run the same way) as the oracle.
#
#   1. the guide's unit command line (IG-XLB §5, SPEC §1) with rsync replaced by
#      "xroad-replicate pull", as user xroad pulling as xroad-slave: same tree, same log lines
#   2. incremental runs (keyconf re-saved, edited, a key added): same trees; bytes on the wire
#   3. push to two secondaries at once
#   4. serve as a forced command= (--root with --read-only / --write-only): confinement
#   5. failures: host key unknown/changed, wrong client key, silent server, server stopped or
#      killed mid-transfer: rsync's exit codes, clear messages, DEST unchanged, recovery
#   6. a non-ssh -e program gets "[-l USER] HOST COMMAND" like rsync's remote shell
#   7. an unsupported ssh option -> exit 1
# One "ok - NAME" / "not ok - NAME" line per check (details follow as "#   " lines); exits
# non-zero when a check failed.  Runs as root (sshd, users); every client runs as user xroad
# (runuser, no login shell, no agent).  The remote command is given with --rsync-path (the
# binary under test is not installed in sshd's PATH), except under forced commands.
# Directory mtimes are not compared with rsync's result: rsync 3.5.0 now and then leaves a
# directory it updated files in with its own "now" (its generator sets the time while its
# receiver still renames into the directory); they are compared with the source instead.
#   BUILD (default build): where xroad-replicate is;  KEEP_TMP=1 / SSHD_KEEP=1 keep the dirs
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
. tests/lib/common.sh
. tests/lib/sshd.sh
. tests/lib/xroad_tree.sh

export LC_ALL=C
START=${EPOCHREALTIME/[,.]/}
if ! need_root; then
	skip "ssh_sync" "needs root (sshd, users xroad and xroad-slave)"
	exit 0
fi
if [ ! -x "$BUILD/xroad-replicate" ]; then
	not_ok "ssh_sync: $BUILD/xroad-replicate missing (make all)"
	exit 1
fi
if ! command -v rsync >/dev/null; then
	not_ok "ssh_sync: rsync (the oracle) is not installed"
	exit 1
fi
if ! sshd_start; then
	not_ok "ssh_sync: sshd_start"
	exit 1
fi

BIN=$SSHD_BIN_DIR/xroad-replicate
install -m 0755 "$BUILD/xroad-replicate" "$BIN"
# an ASan build: libssh2's known ECDSA leak is not ours (see ssh_transport.sh)
printf '%s\n' 'leak:BN_new' >"$SSHD_BIN_DIR/lsan.supp"
chmod 0644 "$SSHD_BIN_DIR/lsan.supp"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$SSHD_BIN_DIR/lsan.supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"

U=$SSHD_USER		# xroad-slave: the account the secondaries pull as
H=127.0.0.1
W=$SSHD_DIR/w		# every tree lives here (readable by both users)
mkdir -p "$W" && chmod 0755 "$W"
P=$W/primary		# the primary's /etc/xroad is $P/xroad; outside.txt lies beside it
mkdir -p "$P/xroad-other" && chmod 0755 "$P" "$P/xroad-other"
xroad_tree "$P/xroad" 3 || { not_ok "ssh_sync: xroad_tree"; exit 1; }
echo "outside the served root" >"$P/outside.txt"
cp "$P/outside.txt" "$P/xroad-other/outside.txt"
chmod 0644 "$P/outside.txt" "$P/xroad-other/outside.txt"
S=$W/sec		# the secondaries' trees, owned by xroad
mkdir -p "$S" && chown xroad:xroad "$S"
cd "$W" || exit 1

# the guide's -e, with port, key and known_hosts of the test sshd
E="ssh -o ConnectTimeout=5 -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS"
# the guide's options after -e, without --log-file (IG-XLB §5)
GUIDE=(-aqz --timeout=10 --delete-delay "${XROAD_EXCLUDES[@]}" --delay-updates)
RP=--rsync-path=$BIN
RC=0
DT_MS=0
OUT=$T/out
ERR=$T/err
TOTALS_RE='^sent [0-9,]+ bytes +received [0-9,]+ bytes +total size [0-9,]+$'

# now_ms: milliseconds since the script started.
now_ms() {
	echo $(((${EPOCHREALTIME/[,.]/} - START) / 1000))
}

# run CMD...: runs CMD as user xroad (no agent, 60 s cap); stdout in $OUT, stderr in $ERR,
# exit code in RC, wall time in DT_MS.
run() {
	local t0
	t0=$(now_ms)
	timeout -k 5 60 runuser -u "$SSHD_CLIENT_USER" -- env -u SSH_AUTH_SOCK "$@" \
		>"$OUT" 2>"$ERR" </dev/null
	RC=$?
	DT_MS=$(($(now_ms) - t0))
}

# dump: the last run's exit code, time and output, for not_ok.
dump() {
	printf 'exit %s after %s ms\n' "$RC" "$DT_MS"
	tail -n 12 "$OUT" "$ERR" 2>/dev/null
}

# note TEXT: a comment line after ok.
note() {
	printf '#   %s\n' "$*"
}

# first_err [PATTERN]: the first line of the last run's stderr (matching PATTERN), shortened.
first_err() {
	grep -m1 -i -- "${1:-.}" "$ERR" | cut -c1-160
}

# as_xroad CMD...: a setup command as user xroad.
as_xroad() {
	runuser -u "$SSHD_CLIENT_USER" -- "$@"
}

# xr_pull ARGS...: xroad-replicate pull as xroad.
xr_pull() {
	run "$BIN" pull "$@"
}

# rs_pull ARGS...: the real rsync as xroad (remote side: the real rsync as the remote user).
rs_pull() {
	run rsync "$@"
}

# ref_tree DIR: DIR becomes the guide's view of the primary now: a copy without the guide's
# excludes, every directory with the source's mtime.
ref_tree() {
	local d
	rm -rf "$1" && cp -a "$P/xroad" "$1" || return 1
	rm -rf "$1/db.properties" "$1/conf.d/node.ini" "$1/postgresql" "$1/globalconf" \
		"$1/gpghome"
	find "$1" -name "*.tmp" -delete
	while IFS= read -r -d '' d; do
		touch -h -r "$P/xroad/$d" "$1/$d"
	done < <(cd "$1" && find . -type d -print0)
}

# log_lines FILE: the --log-file lines without "YYYY/MM/DD HH:MM:SS [PID] ", the totals
# line's numbers replaced by N, sorted.
log_lines() {
	sed -E -e 's/^[0-9]{4}\/[0-9]{2}\/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \[[0-9]+\] //' \
		-e "s/$TOTALS_RE/sent N bytes  received N bytes  total size N/" "$1" | sort
}

# wire_bytes FILE: "SENT RECEIVED" from the last totals line of a --log-file.
wire_bytes() {
	sed -n -E 's/.*sent ([0-9,]+) bytes +received ([0-9,]+) bytes +total size.*/\1 \2/p' \
		"$1" | tail -n 1 | tr -d ,
}

# fstate FILE: size, mtime, mode, owner and content hash of a file (or "absent").
fstate() {
	if [ -e "$1" ]; then
		stat -c '%s %y %a %U:%G' -- "$1" && sha256sum <"$1"
	else
		echo absent
	fi
}

# same_trees A B: tree_diff quietly; on a difference prints the diff's first lines.
same_trees() {
	local d
	d=$(tree_diff "$1" "$2" 2>&1) && return 0
	printf '%s\n' "$d" | head -n 20
	return 1
}

# masked_listing DIR: tree_listing with the mtimes of directories left out.
masked_listing() {
	tree_listing "$1" | awk 'BEGIN { FS = OFS = "\t" } $2 == "d" { $5 = "-" } { print }'
}

# dir_times DIR: "PATH MODE MTIME" of the directories below DIR that the guide transfers.
dir_times() {
	tree_listing "$1" | awk 'BEGIN { FS = OFS = "\t" }
		$2 == "d" && $1 !~ /^(postgresql|globalconf|gpghome)(\/|$)/ { print $1, $3, $5 }'
}

# same_as_rsync OURS RSYNC: same entries, modes, owners, contents and file mtimes as rsync's
# result, and the directories' mtimes of the source; on a difference prints it.
same_as_rsync() {
	local d
	if ! d=$(diff -U0 --label rsync --label ours <(masked_listing "$2") \
		<(masked_listing "$1")); then
		printf '%s\n' "$d" | head -n 20
		return 1
	fi
	if ! d=$(diff -U0 --label source --label ours <(dir_times "$P/xroad") \
		<(dir_times "$1")); then
		printf 'directory times:\n%s\n' "$d" | head -n 20
		return 1
	fi
}

# serve_pid USER: the newest "xroad-replicate serve" process of USER started by our sshd
# (by the binary's path: other tests may run serve processes as the same users meanwhile).
serve_pid() {
	pgrep -n -u "$1" -f "^$BIN serve"
}

# no_outside_listing DIR: DIR holds nothing from outside the served root.
no_outside_listing() {
	[ ! -e "$1" ] || [ -z "$(find "$1" -mindepth 1 -name .xroad-replicate -prune -o \
		\( -name outside.txt -o -name passwd -o -name hostname -o -name xroad \) -print)" ]
}

# empty_dest DIR: DIR does not exist or holds nothing but the state dir.
empty_dest() {
	[ ! -e "$1" ] || [ -z "$(find "$1" -mindepth 1 -name .xroad-replicate -prune -o -print)" ]
}

# === 1. the guide's unit command line =========================================================

# both secondaries: an older tree of their own (seed 2: other contents, their own excluded
# globalconf/gpghome/postgresql), their own node.ini and db.properties, and stale files
BASE=$W/base
xroad_tree "$BASE" 2 >/dev/null
printf '[node]\ntype=slave\n' >"$BASE/conf.d/node.ini"
printf 'serverconf.hibernate.connection.url = jdbc:postgresql://10.0.0.9/serverconf\n' \
	>"$BASE/db.properties"
echo stale >"$BASE/conf.d/old.ini"
mkdir -p "$BASE/stale-dir/deeper" && echo stale >"$BASE/stale-dir/deeper/x.ini"
chown -R xroad:xroad "$BASE/conf.d" "$BASE/db.properties" "$BASE/stale-dir"
cp -a "$BASE" "$S/ours"
cp -a "$BASE" "$S/rsync"
kept_before=$(fstate "$S/ours/conf.d/node.ini"; fstate "$S/ours/db.properties")

xr_pull -e "$E" "$RP" "${GUIDE[@]}" --log-file="$S/ours-1.log" "$U@$H:$P/xroad/" "$S/ours/"
rc_ours=$RC
ours_dump=$(dump)
rs_pull -e "$E" "${GUIDE[@]}" --log-file="$S/rsync-1.log" "$U@$H:$P/xroad/" "$S/rsync/"
name="1. guide's command line: pull and rsync both exit 0"
if [ "$rc_ours" = 0 ] && [ "$RC" = 0 ]; then
	ok "$name"
else
	not_ok "$name" "pull: $ours_dump" "rsync: exit $RC"
fi
name="1. guide's command line: tree equals rsync's (modes, mtimes, owner xroad:xroad)"
if d=$(same_as_rsync "$S/ours" "$S/rsync"); then
	ok "$name"
else
	not_ok "$name" "$d"
fi
name="1. guide's command line: node.ini, db.properties, excluded dirs kept; stale deleted"
kept_after=$(fstate "$S/ours/conf.d/node.ini"; fstate "$S/ours/db.properties")
if [ "$kept_before" = "$kept_after" ] && grep -q slave "$S/ours/conf.d/node.ini" &&
	[ ! -e "$S/ours/conf.d/old.ini" ] && [ ! -e "$S/ours/stale-dir" ] &&
	[ -d "$S/ours/gpghome" ] && [ -d "$S/ours/globalconf" ]; then
	ok "$name"
else
	not_ok "$name" "before: $kept_before" "after:  $kept_after" \
		"$(ls -la "$S/ours" "$S/ours/conf.d")"
fi
name="1. guide's command line: --log-file lines equal rsync's"
if d=$(diff -U0 <(log_lines "$S/rsync-1.log") <(log_lines "$S/ours-1.log")); then
	ok "$name"
	note "$(wc -l <"$S/ours-1.log") lines, $(grep -c deleting "$S/ours-1.log") deletions"
else
	not_ok "$name" "$(printf '%s\n' "$d" | head -n 20)"
fi

# === 2. incremental runs ====================================================================
echo "# $(now_ms) ms"

# step NAME MUTATION...: mutates the primary, pulls with both tools (logs $S/*-NAME.log),
# checks equal trees and equal log lines.
step() {
	local name="2. incremental, $1: same tree and log lines as rsync" what=$1 rc_o dmp d
	shift
	"$@" >/dev/null || { not_ok "$name" "mutation failed: $*"; return; }
	xr_pull -e "$E" "$RP" "${GUIDE[@]}" --log-file="$S/ours-$what.log" \
		"$U@$H:$P/xroad/" "$S/ours/"
	rc_o=$RC
	dmp=$(dump)
	rs_pull -e "$E" "${GUIDE[@]}" --log-file="$S/rsync-$what.log" \
		"$U@$H:$P/xroad/" "$S/rsync/"
	if [ "$rc_o" != 0 ] || [ "$RC" != 0 ]; then
		not_ok "$name" "pull: $dmp" "rsync: exit $RC"
	elif ! d=$(same_as_rsync "$S/ours" "$S/rsync"); then
		not_ok "$name" "$d"
	elif ! d=$(diff -U0 <(log_lines "$S/rsync-$what.log") \
		<(log_lines "$S/ours-$what.log")); then
		not_ok "$name" "log lines differ:" "$(printf '%s\n' "$d" | head -n 20)"
	else
		ok "$name"
	fi
}

step resave xroad_resave_keyconf "$P/xroad"
step edit xroad_edit_keyconf "$P/xroad"
read -r o_sent o_recv <<<"$(wire_bytes "$S/ours-edit.log")"
read -r r_sent r_recv <<<"$(wire_bytes "$S/rsync-edit.log")"
name="2. incremental, edit: bytes on the wire (sent + received) <= rsync's"
bytes="ours: sent ${o_sent:-?} received ${o_recv:-?};"
bytes+=" rsync: sent ${r_sent:-?} received ${r_recv:-?}"
if [ -n "${o_sent:-}" ] && [ -n "${r_sent:-}" ] &&
	[ $((o_sent + o_recv)) -le $((r_sent + r_recv)) ]; then
	ok "$name"
	note "$bytes"
else
	not_ok "$name" "$bytes"
fi
step addkey xroad_add_key "$P/xroad"

# === 3. push to two secondaries at once =====================================================
echo "# $(now_ms) ms"

REF=$W/ref
ref_tree "$REF"
mkdir -p "$W/push" && chown xroad:xroad "$W/push"
D1=$W/push/one		# absent: created by the push
D2=$W/push/two		# an old keyconf and a stale file
mkdir -p "$D2/signer"
echo "old keyconf" >"$D2/signer/keyconf.xml"
echo stale >"$D2/stale.txt"
chown -R xroad:xroad "$D2"
run "$BIN" push -e "$E" "$RP" "${GUIDE[@]}" "$P/xroad/" "xroad@$H:$D1/" "xroad@$H:$D2/"
name="3. push to two secondaries at once: both equal the source"
if [ "$RC" != 0 ]; then
	not_ok "$name" "$(dump)"
elif ! d=$(same_trees "$D1" "$REF"); then
	not_ok "$name" "the first:" "$d"
elif ! d=$(same_trees "$D2" "$REF"); then
	not_ok "$name" "the second:" "$d"
else
	ok "$name"
	note "$DT_MS ms"
fi

# === 4. serve as a forced command ===========================================================
echo "# $(now_ms) ms"

# forced_key NAME USER COMMAND: a new client key whose authorized_keys line for USER forces
# COMMAND; prints the key file.
forced_key() {
	local key=$SSHD_CLIENT_DIR/id_$1
	sshd_keygen ed25519 "$key" "" || return 1
	chown xroad:xroad "$key" "$key.pub"
	chmod 0600 "$key"
	printf 'command="%s",no-pty,no-port-forwarding %s\n' "$3" "$(cat "$key.pub")" \
		>>"$SSHD_DIR/authorized_keys/$2"
	echo "$key"
}

# the write-only root lies in a directory that xroad may write to, so that only the
# confinement (not the file permissions) keeps a push from landing beside the root
WOO=$W/wo-outer
WOR=$WOO/root
KEY_RO=$(forced_key ro "$U" "$BIN serve --root $P/xroad --read-only")
KEY_WO=$(forced_key wo xroad "$BIN serve --root $WOR --write-only")
E_RO="ssh -o ConnectTimeout=5 -p $SSHD_PORT -i $KEY_RO -o UserKnownHostsFile=$KNOWN_HOSTS"
E_WO="ssh -o ConnectTimeout=5 -p $SSHD_PORT -i $KEY_WO -o UserKnownHostsFile=$KNOWN_HOSTS"
C4=$W/c4
mkdir -p "$WOR" "$WOO/target" "$C4"
chown xroad:xroad "$WOO" "$WOR" "$WOO/target" "$C4"
ref_tree "$REF"

# (no --rsync-path: the forced command replaces whatever the client asks for)
name="4. forced read-only serve: pull of the root by its absolute path"
xr_pull -e "$E_RO" "${GUIDE[@]}" "$U@$H:$P/xroad/" "$C4/abs/"
if [ "$RC" = 0 ] && d=$(same_trees "$C4/abs" "$REF"); then
	ok "$name"
else
	not_ok "$name" "$(dump)" "${d:-}"
fi

# sub_pull NAME SRC DEST: a pull of the signer/ subdirectory gets its contents, as rsync.
sub_pull() {
	local name="4. forced read-only serve: pull of $1 gets its contents, no error" d=""
	xr_pull -e "$E_RO" "${GUIDE[@]}" "$U@$H:$2" "$3/"
	if [ "$RC" = 0 ] && d=$(same_trees "$3" "$REF/signer") && [ ! -s "$ERR" ]; then
		ok "$name"
	else
		not_ok "$name" "$(dump)" "${d:-}"
	fi
}
sub_pull "a path relative to the root (signer/)" "signer/" "$C4/rel"
sub_pull "a subdirectory by its absolute path (ROOT/signer/)" "$P/xroad/signer/" "$C4/sub"

cp -a "$REF" "$C4/evil"
echo "pushed by a secondary" >"$C4/evil/conf.d/evil.ini"
echo "tampered" >>"$C4/evil/signer/keyconf.xml"
chown -R xroad:xroad "$C4/evil"
tree_listing "$P" >"$T/p.before"
run "$BIN" push -e "$E_RO" -az --delete "$C4/evil/" "$U@$H:$P/xroad/"
name="4. forced read-only serve: push refused (exit 2, says read-only), primary unchanged"
if [ "$RC" = 2 ] && grep -qi "read-only" "$ERR" && d=$(same_trees "$T/p.before" "$P"); then
	ok "$name"
	note "$(first_err read-only)"
else
	not_ok "$name" "$(dump)" "${d:-}"
fi

# ro_refused NAME SRC DEST: a pull of SRC through the read-only key is refused (exit 2 or 3)
# and lists nothing from outside the root (DEST stays empty).
ro_refused() {
	local name="4. forced read-only serve: pull of $1 refused (exit 2 or 3), nothing listed"
	xr_pull -e "$E_RO" -aq --timeout=10 "$U@$H:$2" "$3/"
	if { [ "$RC" = 2 ] || [ "$RC" = 3 ]; } && no_outside_listing "$3" && empty_dest "$3"; then
		ok "$name"
		note "exit $RC: $(first_err)"
	else
		not_ok "$name" "$(dump)" "DEST: $(find "$3" -maxdepth 2 2>/dev/null | head)"
	fi
}
ro_refused "ROOT/../" "$P/xroad/../" "$C4/dotdot"
ro_refused "../ (relative)" "../" "$C4/dotdot-rel"
ro_refused "ROOT/signer/../../" "$P/xroad/signer/../../" "$C4/dotdot2"
ro_refused "/etc/" "/etc/" "$C4/etc"
ro_refused "ROOT's prefix sibling (ROOT-other/)" "$P/xroad-other/" "$C4/sibling"
ln -s /etc "$P/xroad/escape"
ro_refused "a symlink to /etc inside the root (ROOT/escape/)" "$P/xroad/escape/" "$C4/escape"
ro_refused "escape/ (relative)" "escape/" "$C4/escape-rel"
ro_refused "ROOT/escape/passwd" "$P/xroad/escape/passwd" "$C4/escape-file"
rm -f "$P/xroad/escape"

# write-only (for a primary that pushes): no pull, push only beneath the root
name="4. forced write-only serve: pull refused (exit 2, says write-only)"
xr_pull -e "$E_WO" -aq --timeout=10 "xroad@$H:$WOR/" "$C4/wo-pull/"
if [ "$RC" = 2 ] && grep -qi "write-only" "$ERR" && empty_dest "$C4/wo-pull"; then
	ok "$name"
	note "$(first_err write-only)"
else
	not_ok "$name" "$(dump)"
fi
name="4. forced write-only serve: push into its root"
run "$BIN" push -e "$E_WO" "${GUIDE[@]}" "$P/xroad/" "xroad@$H:$WOR/"
if [ "$RC" = 0 ] && d=$(same_trees "$WOR" "$REF"); then
	ok "$name"
else
	not_ok "$name" "$(dump)" "${d:-}"
fi
ln -s "$WOO/target" "$WOR/link"
tree_listing "$WOO" >"$T/wo.before"

# wo_refused NAME DEST: a push through the write-only key to DEST is refused (exit 2 or 3)
# and writes nothing (nothing changed in or beside the root, the symlink's target is empty).
wo_refused() {
	local name="4. forced write-only serve: push to $1 refused (exit 2 or 3), nothing written"
	local d=""
	run "$BIN" push -e "$E_WO" -aq --timeout=10 "$P/xroad/" "xroad@$H:$2"
	if { [ "$RC" = 2 ] || [ "$RC" = 3 ]; } && d=$(same_trees "$T/wo.before" "$WOO"); then
		ok "$name"
		note "exit $RC: $(first_err)"
	else
		not_ok "$name" "$(dump)" "${d:-}"
	fi
}
wo_refused "../x" "../x/"
wo_refused "ROOT/../x" "$WOR/../x/"
wo_refused "an absolute path outside the root" "$WOO/elsewhere/"
wo_refused "the root's prefix sibling (ROOT2/)" "${WOR}2/"
wo_refused "a symlink inside the root pointing outside (link/)" "link/"
wo_refused "below a symlink inside the root (link/sub/)" "link/sub/"
rm -f "$WOR/link"

# === 4b. deltas over SSH, whole files with -W ===============================================
# A 300 kB file with 21 bytes changed in the middle: over SSH both tools send a delta (the same
# literal and matched byte counts: same block size); with -W both send it whole.
DW=$W/dw
mkdir -p "$DW/src"
head -c 300000 /dev/urandom >"$DW/src/big"
for v in ours-d rsync-d ours-w rsync-w; do
	mkdir -p "$S/$v" && cp "$DW/src/big" "$S/$v/big" && touch -d @1500000000 "$S/$v/big"
	chown -R xroad:xroad "$S/$v"
done
printf 'changed in the middle' | dd of="$DW/src/big" bs=1 seek=150000 conv=notrunc status=none
for w in d w; do
	flag=()
	want='^Matched data: [1-9]'
	if [ "$w" = w ]; then
		flag=(-W)
		want='^Matched data: 0 bytes'
	fi
	xr_pull -e "$E" "$RP" -a --stats "${flag[@]}" "$U@$H:$DW/src/" "$S/ours-$w/"
	orc=$RC ours=$(grep -E '^(Literal|Matched) data:' "$OUT")
	rs_pull -e "$E" -a --stats "${flag[@]}" "$U@$H:$DW/src/" "$S/rsync-$w/"
	theirs=$(grep -E '^(Literal|Matched) data:' "$OUT")
	name="4b. pull over SSH ${flag[*]:-(delta)}: literal and matched bytes equal rsync's"
	if [ "$orc" = 0 ] && [ "$RC" = 0 ] && [ -n "$ours" ] && [ "$ours" = "$theirs" ] &&
		grep -q "$want" <<<"$ours" && cmp -s "$DW/src/big" "$S/ours-$w/big"; then
		ok "$name"
		note "${ours//$'\n'/, }"
	else
		not_ok "$name" "ours (exit $orc): ${ours//$'\n'/, }" \
			"rsync (exit $RC): ${theirs//$'\n'/, }"
	fi
done

# === 5. failures ============================================================================
echo "# $(now_ms) ms"

DST=$S/ours
xroad_edit_keyconf "$P/xroad" >/dev/null	# a successful run would change DST
tree_listing "$DST" >"$T/dst.before"

# fails NAME WANT-RC TEXT -e ...: a pull with the guide's options fails with WANT-RC, stderr
# contains TEXT (or one of its lines), DST unchanged.
fails() {
	local name="5. $1 -> $2" want=$2 text=$3 d
	shift 3
	xr_pull "$@" "${GUIDE[@]}" "$U@$H:$P/xroad/" "$DST/"
	if [ "$RC" != "$want" ]; then
		not_ok "$name" "$(dump)"
	elif ! grep -qF -- "$text" "$ERR"; then
		not_ok "$name" "the message lacks '$text'" "$(dump)"
	elif ! d=$(same_trees "$T/dst.before" "$DST"); then
		not_ok "$name" "DEST changed:" "$d"
	else
		ok "$name"
		note "$(grep -m1 -F -- "$text" "$ERR" | cut -c1-160)"
	fi
}

fails "unknown host key (empty known_hosts), message has the SHA256 fingerprint" 255 \
	"$HOST_FP_ED25519"$'\n'"$HOST_FP_RSA" \
	-e "ssh -o ConnectTimeout=5 -p $SSHD_PORT -i $CLIENT_KEY \
-o UserKnownHostsFile=$KNOWN_HOSTS_EMPTY"
fails "changed host key" 255 "REMOTE HOST IDENTIFICATION HAS CHANGED" \
	-e "ssh -o ConnectTimeout=5 -p $SSHD_PORT -i $CLIENT_KEY \
-o UserKnownHostsFile=$KNOWN_HOSTS_CHANGED"
fails "wrong client key" 255 "Permission denied" \
	-e "ssh -o ConnectTimeout=5 -p $SSHD_PORT -i $CLIENT_KEY_WRONG \
-o UserKnownHostsFile=$KNOWN_HOSTS"

# a listener that accepts and never speaks
PY=$(command -v /usr/bin/python3 || command -v python3)
if [ -n "$PY" ]; then
	"$PY" -c '
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
s.settimeout(0.5)
print(s.getsockname()[1], flush=True)
held, end = [], time.time() + 60
while time.time() < end:
    try:
        held.append(s.accept()[0])
    except socket.timeout:
        pass
' >"$T/lport" &
	lpid=$!
	for _ in $(seq 1 100); do
		[ -s "$T/lport" ] && break
		sleep 0.05
	done
	lport=$(cat "$T/lport")
	fails "unreachable host (accepts, never speaks), ConnectTimeout=2" 35 "timed out" \
		-e "ssh -o ConnectTimeout=2 -p $lport -i $CLIENT_KEY \
-o UserKnownHostsFile=$KNOWN_HOSTS"
	name="5. the connect timeout strikes after ~2 s"
	if [ "$DT_MS" -ge 1900 ] && [ "$DT_MS" -lt 5000 ]; then
		ok "$name"
		note "$DT_MS ms"
	else
		not_ok "$name" "$DT_MS ms"
	fi
	kill "$lpid" 2>/dev/null
	wait "$lpid" 2>/dev/null
else
	skip "5. unreachable host (accepts, never speaks), ConnectTimeout=2 -> 35" "no python3"
fi

# the server stops answering, then is killed, in the middle of a 200 MB file
BIG=$P/xroad/big.bin
head -c 200M /dev/urandom >"$BIG"
chown xroad:xroad "$BIG"
chmod 0640 "$BIG"

# bg_pull TIMEOUT: starts the guide's pull (--timeout=TIMEOUT) in the background and waits
# until a staged file in DST grows beyond 1 MB; sets BG_PID.  Returns 1 if never seen.
bg_pull() {
	rm -f "$T/bg.rc"
	(
		timeout -k 5 60 runuser -u xroad -- env -u SSH_AUTH_SOCK "$BIN" pull -e "$E" "$RP" \
			-aqz --timeout="$1" --delete-delay "${XROAD_EXCLUDES[@]}" --delay-updates \
			"$U@$H:$P/xroad/" "$DST/" >"$OUT" 2>"$ERR" </dev/null
		echo $? >"$T/bg.rc"
	) &
	BG_PID=$!
	for _ in $(seq 1 500); do
		[ -n "$(find "$DST/.xroad-replicate" -type f -size +1M 2>/dev/null)" ] && return 0
		[ -e "$T/bg.rc" ] && return 1
		sleep 0.02
	done
	return 1
}

# bg_wait: waits for the background pull; its exit code in RC, DT_MS counted from now.
bg_wait() {
	local t0
	t0=$(now_ms)
	wait "$BG_PID"
	RC=$(cat "$T/bg.rc" 2>/dev/null || echo "?")
	DT_MS=$(($(now_ms) - t0))
}

# reap PID: continues and ends a server process, SIGKILL after 2 s.
reap() {
	[ -n "$1" ] || return 0
	kill -CONT "$1" 2>/dev/null
	kill "$1" 2>/dev/null
	for _ in $(seq 1 40); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null
}

name="5. server stops answering mid-transfer (SIGSTOP), --timeout=3 -> 30 within 3-7 s"
if bg_pull 3; then
	spid=$(serve_pid "$U")
	[ -n "$spid" ] && kill -STOP "$spid"
	bg_wait
	reap "$spid"
	if [ -z "$spid" ]; then
		not_ok "$name" "no serve process of $U found"
	elif [ "$RC" != 30 ] || [ "$DT_MS" -lt 2500 ] || [ "$DT_MS" -gt 7000 ]; then
		not_ok "$name" "$(dump)"
	elif ! d=$(same_trees "$T/dst.before" "$DST"); then
		not_ok "$name" "DEST changed:" "$d"
	else
		ok "$name"
		note "exit 30 after $DT_MS ms: $(first_err timeout)"
	fi
else
	bg_wait
	not_ok "$name" "the transfer was never seen starting" "$(dump)"
fi

name="5. server killed mid-transfer (SIGKILL) -> 10, 12 or 255, DEST unchanged"
if bg_pull 10; then
	spid=$(serve_pid "$U")
	[ -n "$spid" ] && kill -KILL "$spid"
	bg_wait
	if [ -z "$spid" ]; then
		not_ok "$name" "no serve process of $U found"
	elif [ "$RC" != 10 ] && [ "$RC" != 12 ] && [ "$RC" != 255 ]; then
		not_ok "$name" "$(dump)"
	elif ! d=$(same_trees "$T/dst.before" "$DST"); then
		not_ok "$name" "DEST changed:" "$d"
	else
		ok "$name"
		note "exit $RC after $DT_MS ms: $(first_err)"
	fi
else
	bg_wait
	not_ok "$name" "the transfer was never seen starting" "$(dump)"
fi

# the next run cleans up and converges (without -z, to spare 200 MB of zlib on random data)
name="5. the run after the interrupted ones converges, nothing left staged"
xr_pull -e "$E" "$RP" -aq --timeout=10 --delete-delay "${XROAD_EXCLUDES[@]}" --delay-updates \
	"$U@$H:$P/xroad/" "$DST/"
staged=$(find "$DST/.xroad-replicate" -mindepth 1 -path "*/stage/*" 2>/dev/null | head -n 5)
if [ "$RC" = 0 ] && cmp -s "$BIG" "$DST/big.bin" && [ -z "$staged" ]; then
	ok "$name"
	note "$DT_MS ms"
else
	not_ok "$name" "$(dump)" "staged: $staged"
fi
rm -f "$BIG"
name="5. after the failures: same tree as rsync's"
xr_pull -e "$E" "$RP" "${GUIDE[@]}" "$U@$H:$P/xroad/" "$DST/"
rc_o=$RC
rs_pull -e "$E" "${GUIDE[@]}" "$U@$H:$P/xroad/" "$S/rsync/"
if [ "$rc_o" = 0 ] && [ "$RC" = 0 ] && d=$(same_as_rsync "$DST" "$S/rsync"); then
	ok "$name"
else
	not_ok "$name" "ours: exit $rc_o, rsync: exit $RC" "${d:-}"
fi

# === 6. a non-ssh remote shell ==============================================================
echo "# $(now_ms) ms"

WRAP=$SSHD_BIN_DIR/wrap-ssh
WLOG=$SSHD_CLIENT_DIR/wrap.log
cat >"$WRAP" <<EOF
#!/bin/sh
# logs its arguments one per line, then runs the real ssh
: >"$WLOG"
for a in "\$@"; do printf '%s\n' "\$a" >>"$WLOG"; done
exec ssh -p $SSHD_PORT -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS -o BatchMode=yes "\$@"
EOF
chmod 0755 "$WRAP"
ref_tree "$REF"
mkdir -p "$W/c6" && chown xroad:xroad "$W/c6"

# wrap_case NAME LOCATION-PREFIX WANT-ARGV...: pulls through the wrapper with both tools; ours
# must pass exactly WANT-ARGV, rsync the same words before its "rsync --server ...".
wrap_case() {
	local what=$1 loc=$2 name d="" n
	shift 2
	n=$#
	printf '%s\n' "$@" >"$T/want"
	name="6. -e wrapper ($what): the pull works"
	xr_pull -e "$WRAP" "$RP" "${GUIDE[@]}" "$loc$P/xroad/" "$W/c6/$what-ours/"
	cp "$WLOG" "$T/ours.argv" 2>/dev/null || : >"$T/ours.argv"
	if [ "$RC" = 0 ] && d=$(same_trees "$W/c6/$what-ours" "$REF"); then
		ok "$name"
	else
		not_ok "$name" "$(dump)" "${d:-}"
	fi
	name="6. -e wrapper ($what): argv is $(tr '\n' '|' <"$T/want")"
	if cmp -s "$T/want" "$T/ours.argv"; then
		ok "$name"
	else
		not_ok "$name" "got: $(tr '\n' '|' <"$T/ours.argv")"
	fi
	name="6. -e wrapper ($what): rsync passes the same words before its command"
	rs_pull -e "$WRAP" "${GUIDE[@]}" "$loc$P/xroad/" "$W/c6/$what-rsync/"
	if [ "$RC" = 0 ] && cmp -s <(head -n $((n - 1)) "$T/want") <(head -n $((n - 1)) "$WLOG") &&
		[ "$(sed -n "$n,$((n + 1))p" "$WLOG" | tr '\n' ' ')" = "rsync --server " ]; then
		ok "$name"
	else
		not_ok "$name" "rsync: exit $RC, argv: $(tr '\n' '|' <"$WLOG" | cut -c1-300)"
	fi
}
wrap_case "USER@HOST" "$U@$H:" -l "$U" "$H" "$BIN serve"
wrap_case "HOST only" "$H:" "$H" "$BIN serve"

# --rsync-path is run by the remote shell, as rsync's ("cd /a/b && rsync", "sudo rsync")
RPS="cd / && $BIN"
name="6. --rsync-path=\"cd / && PROGRAM\" is given to the remote shell unquoted (built-in ssh)"
xr_pull -e "$E" --rsync-path="$RPS" "${GUIDE[@]}" "$U@$H:$P/xroad/" "$W/c6/rsync-path/"
if [ "$RC" = 0 ] && d=$(same_trees "$W/c6/rsync-path" "$REF"); then
	ok "$name"
else
	not_ok "$name" "$(dump)" "${d:-}"
fi
name="6. --rsync-path=\"cd / && PROGRAM\": the -e program gets \"cd / && PROGRAM serve\""
xr_pull -e "$WRAP" --rsync-path="$RPS" "${GUIDE[@]}" "$U@$H:$P/xroad/" "$W/c6/rsync-path-e/"
printf '%s\n' -l "$U" "$H" "$RPS serve" >"$T/want"
if [ "$RC" = 0 ] && cmp -s "$T/want" "$WLOG"; then
	ok "$name"
else
	not_ok "$name" "argv: $(tr '\n' '|' <"$WLOG")" "$(dump)"
fi

# === 7. unsupported ssh option ==============================================================
echo "# $(now_ms) ms"

tree_listing "$DST" >"$T/dst.before"
name="7. -e with -o ProxyJump=x -> 1 with a clear message, DEST unchanged"
xr_pull -e "ssh -o ConnectTimeout=5 -p $SSHD_PORT -i $CLIENT_KEY -o ProxyJump=x" "$RP" \
	"${GUIDE[@]}" "$U@$H:$P/xroad/" "$DST/"
if [ "$RC" = 1 ] && grep -q "ProxyJump" "$ERR" && grep -qi "not supported" "$ERR" &&
	same_trees "$T/dst.before" "$DST" >/dev/null; then
	ok "$name"
	note "$(first_err ProxyJump)"
else
	not_ok "$name" "$(dump)"
fi

# === no server process outlives its session =================================================

# (only ours: other test scripts may run local "xroad-replicate serve" processes meanwhile)
name="no xroad-replicate serve process left behind"
left=""
for _ in $(seq 1 60); do
	left=$(pgrep -d, -f "^$BIN serve")
	[ -z "$left" ] && break
	sleep 0.05
done
if [ -z "$left" ]; then
	ok "$name"
else
	not_ok "$name" "$(ps -o pid,ppid,user,etime,stat,args -p "$left")"
	for p in ${left//,/ }; do
		kill -CONT "$p" 2>/dev/null
		kill "$p" 2>/dev/null
	done
fi

echo "# ssh_sync: $(now_ms) ms"
tests_done
