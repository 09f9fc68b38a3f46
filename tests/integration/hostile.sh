#!/usr/bin/env bash
# hostile.sh - xroad-replicate refuses hostile peers (SPEC §4, §5; "Reliability and security").
#
# 1. A hostile SENDER (build/tests/xr_hostile, injected as the remote shell with -e) against
#    "pull -a --delete": unsafe names, malformed frames, unrequested or corrupt data, deltas
#    beyond the basis, endless data, floods.  Each run must fail with a non-zero exit code and
#    a message, change nothing in DEST (all or nothing) and nothing outside it, and leave no
#    staged file behind once a following clean run has passed.
# 2. A hostile CLIENT against "serve --root R [--read-only]": paths escaping the root, pushes
#    to a read-only server, invalid or file-reading filter rules, symlinks leading out of R,
#    and an escaping file list pushed into a writable server.  Each refused with an ERROR
#    frame and a non-zero exit of serve; nothing outside R is read or written.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/common.sh
B=${BUILD:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
XR=$B/xroad-replicate
H=$B/tests/xr_hostile
if [ ! -x "$XR" ] || [ ! -x "$H" ]; then
	not_ok "hostile: $XR or $H missing (make build-tests)"
	exit 1
fi
RSS_MAX_KB=65536

# --- the world outside DEST: must never change --------------------------------------------
W=$T/world
mkdir -p "$W/elsewhere" "$W/sentinel" "$W/secret" "$W/rules" "$T/logs"
echo "sentinel" >"$W/sentinel/s.txt"
echo "a file in a parent directory" >"$W/parent.txt"
echo "SECRET-MARKER first line" >"$W/secret/secret.txt"
printf -- '- *.txt\n' >"$W/rules/valid.rules"
touch -d @1600000000 "$W"/*/* "$W"/parent.txt

# listing DIR: every entry below DIR (but .xroad-replicate) with type, mode, size, mtime,
# owner, link target, and every regular file's sha256 - tree_listing's content, faster
listing() {
	(cd "$1" && find . -mindepth 1 -name .xroad-replicate -prune -o \
		-printf '%P %y %m %s %T@ %U:%G %l\n' | sed 's/^\(.* d [0-7]*\) [0-9]*/\1 -/' |
		LC_ALL=C sort && find . -name .xroad-replicate -prune -o -type f -print0 |
		xargs -0r sha256sum | LC_ALL=C sort -k2)
}
# same_listing SAVED DIR: prints a diff and fails when DIR no longer matches SAVED
same_listing() {
	diff -U0 "$1" <(listing "$2") | tail -n +3
	[ "${PIPESTATUS[0]}" = 0 ]
}
listing "$W" >"$T/world.before"

# the world is as before, and the run directory holds nothing but DEST
world_intact() {
	local extra
	same_listing "$T/world.before" "$W" || return 1
	extra=$(find "$T/run" -mindepth 1 -maxdepth 1 ! -name dest)
	[ -z "$extra" ] || { echo "new outside DEST: $extra"; return 1; }
}

# make_dest DIR: the DEST every hostile pull starts from
make_dest() {
	mkdir -p "$1/sub"
	echo keep >"$1/keep.txt"
	echo same >"$1/same.txt"
	echo old >"$1/sub/old.ini"
	awk 'BEGIN { for (i = 0; i < 512; i++) printf "%07d\n", i * 7919 }' >"$1/big.bin"
	ln -s "$W/elsewhere" "$1/link"
	touch -h -d @1700000000 "$1"/* "$1"/sub/*
}

# first_line FILE: the first message of FILE, shortened
first_line() {
	head -1 "$1" | sed 's/^xroad-replicate\( error\)*: //' | cut -c1-72
}

# run_hostile MODE: pull from xr_hostile in MODE into $T/run/dest; sets rc, err, log, rss
run_hostile() {
	local mode=$1
	log=$T/logs/$mode.log
	err=$T/logs/$mode.err
	rm -f "$log"
	XR_HOSTILE_MODE=$mode XR_HOSTILE_LOG=$log XR_HOSTILE_TARGET=$W/elsewhere/abs \
		/usr/bin/time -f '%M' -o "$T/logs/$mode.rss" timeout 20 \
		"$XR" pull -a --delete -e "$H" x:/src/ "$T/run/dest/" >/dev/null 2>"$err"
	rc=$?
	rss=$(tail -1 "$T/logs/$mode.rss" 2>/dev/null)
	case $rss in '' | *[!0-9]*) rss=0 ;; esac
}

# hostile_pull NAME MODE CODES [SETUP]: a refused pull.  CODES: accepted exit codes
# ("2|12"); SETUP runs in DEST before the pull.
hostile_pull() {
	local name=$1 mode=$2 codes=$3 setup=${4:-} why=() stage
	rm -rf "$T/run"
	make_dest "$T/run/dest"
	[ -n "$setup" ] && (cd "$T/run/dest" && eval "$setup")
	listing "$T/run/dest" >"$T/dest.before"
	run_hostile "$mode"
	case "|$codes|" in
	*"|$rc|"*) ;;
	*) why+=("exit $rc, expected $codes") ;;
	esac
	[ -s "$err" ] || why+=("nothing on stderr")
	! grep -q 'Sanitizer' "$err" || why+=("sanitizer report: $(grep -m1 'ERROR: ' "$err")")
	[ "$(stat -c %s "$err")" -lt 65536 ] || why+=("stderr flooded: $(stat -c %s "$err") bytes")
	same_listing "$T/dest.before" "$T/run/dest" >"$T/logs/$mode.diff" ||
		why+=("DEST changed:" "$(head -5 "$T/logs/$mode.diff")")
	world_intact >"$T/logs/$mode.world" || why+=("outside DEST changed:"
		"$(head -5 "$T/logs/$mode.world")")
	# a clean run afterwards works and leaves no staged file or journal
	XR_HOSTILE_MODE=ok "$XR" pull -a --delete -e "$H" x:/src/ "$T/run/dest/" \
		>/dev/null 2>"$T/logs/$mode.clean.err" ||
		why+=("the clean run after it failed: $(head -2 "$T/logs/$mode.clean.err")")
	stage=$(find "$T/run/dest/.xroad-replicate" -mindepth 1 ! -name lock ! -name stage \
		2>/dev/null)
	[ -z "$stage" ] || why+=("left behind: $stage")
	if [ "${#why[@]}" = 0 ]; then
		ok "hostile sender $name: refused (exit $rc: $(first_line "$err"))"
	else
		not_ok "hostile sender $name" "${why[@]}" "stderr: $(head -3 "$err")"
	fi
}

hostile_pull 'entry "../escape"' dotdot 2
hostile_pull 'absolute entry name' absolute 2
hostile_pull 'entry "a/../../x"' dotdot-mid 2
hostile_pull 'entry "link/evil" through DEST symlink "link"' symlink-parent 2
hostile_pull 'NUL inside a name' nul-name 2
hostile_pull 'name component over 255 bytes' long-name 2
hostile_pull 'path over 4096 bytes' long-path 2
hostile_pull 'unsorted file list' unsorted 2
hostile_pull 'duplicate entries' duplicate 2
hostile_pull 'frame length 0xFFFFFFFF' huge-frame 2
hostile_pull 'varint longer than 10 bytes' varint-long 2
hostile_pull 'varint overflowing 64 bits' varint-overflow 2
hostile_pull 'truncated frame, then EOF' truncated '10|12'
hostile_pull 'FILE_DATA for a file not requested' unrequested 2
hostile_pull 'FILE_END hash does not match the data' badhash 12
hostile_pull 'delta copying past the end of the basis' delta-past 12
hostile_pull 'wrong magic in HELLO' bad-magic '2|5'
hostile_pull 'wrong protocol version' bad-version '2|5'
hostile_pull 'ERROR frame with a 1 MiB text' huge-error 2
hostile_pull 'incremental change set listing outside its scope' scope-outside 2
hostile_pull 'SCOPE frame in a full change set' scope-plain 2
hostile_pull 'scope path "../x"' scope-dotdot 2
hostile_pull 'symlink "lnk" -> absolute, then "lnk/file"' abs-symlink-child '2|11'
hostile_pull '"lnk/file" below an existing symlink "lnk"' abs-symlink-child '2|11' \
	"ln -s '$W/elsewhere' lnk && touch -h -d @1700001000 lnk"

# endless FILE_DATA for a file announced as 10 bytes: the receiver must stop it
hostile_pull 'endless FILE_DATA for a 10-byte file' endless '2|12'
if grep -q '^endless-stopped: yes' "$T/logs/endless.log"; then
	ok "hostile sender endless data: stopped after $(sed -n 's/^endless-bytes: //p' \
		"$T/logs/endless.log") bytes"
else
	not_ok "hostile sender endless data: the receiver never stopped it" \
		"it accepted $(sed -n 's/^endless-bytes: //p' "$T/logs/endless.log") bytes of" \
		"FILE_DATA for ten.txt, announced as 10 bytes, until the sender gave up" \
		"(exit $rc: $(head -1 "$T/logs/endless.err"))"
fi
if [ "$rss" -gt 0 ] && [ "$rss" -lt "$RSS_MAX_KB" ]; then
	ok "hostile sender endless data: receiver memory bounded (max RSS $rss KiB)"
else
	not_ok "hostile sender endless data: receiver max RSS ${rss} KiB (limit $RSS_MAX_KB)"
fi

# one million IDMAP entries: refused, memory bounded
hostile_pull 'IDMAP with 1000000 users' idmap-flood '2'
if [ "$rss" -gt 0 ] && [ "$rss" -lt "$RSS_MAX_KB" ]; then
	ok "hostile sender IDMAP flood: receiver memory bounded (max RSS $rss KiB)"
else
	not_ok "hostile sender IDMAP flood: receiver max RSS ${rss} KiB (limit $RSS_MAX_KB)"
fi

# an absolute symlink is data: created as it is, never followed
rm -rf "$T/run"
make_dest "$T/run/dest"
run_hostile abs-symlink
if [ "$rc" = 0 ] && [ "$(readlink "$T/run/dest/lnk")" = "$W/elsewhere/abs" ] && world_intact \
	>"$T/logs/abs-symlink.world"; then
	ok "hostile sender absolute symlink target: created as data, never followed"
else
	not_ok "hostile sender absolute symlink target" "exit $rc, lnk -> $(readlink \
		"$T/run/dest/lnk")" "$(cat "$err" "$T/logs/abs-symlink.world" | head -5)"
fi

# "link" (a symlink in DEST) listed as a directory with "link/evil": the symlink is replaced,
# never followed
rm -rf "$T/run"
make_dest "$T/run/dest"
run_hostile symlink-parent-dir
if [ "$rc" = 0 ] && [ -d "$T/run/dest/link" ] && [ ! -L "$T/run/dest/link" ] &&
	[ -f "$T/run/dest/link/evil" ] && world_intact >"$T/logs/spd.world"; then
	ok "hostile sender symlink replaced by a directory: written inside DEST only"
else
	not_ok "hostile sender symlink replaced by a directory" "exit $rc" \
		"$(cat "$err" "$T/logs/spd.world" | head -5)"
fi
if [ "$rc" = 0 ] && grep -qi 'refus\|error' "$err"; then
	not_ok "symlink replaced by a directory: no error message for a successful run" \
		"exit 0, yet stderr says: $(head -2 "$err")"
else
	ok "symlink replaced by a directory: no error message for a successful run"
fi

# --- hostile clients against serve ----------------------------------------------------------
R=$T/srv/R
mkdir -p "$R/data" "$R/dst"
echo pub >"$R/data/pub.txt"
ln -s "$W/secret" "$R/esc"
ln -s "$W/secret/secret.txt" "$R/data/sec-link"
ln -s "$W/elsewhere" "$R/dst/link"
# the serve's state dir DEST/.xroad-replicate changes the mtime of dst
r_listing() {
	listing "$R" | sed 's/^\(dst d [0-7]*\) - [0-9.]*/\1/'
}
r_listing >"$T/R.before"

# client NAME pull|push PATH [serve options...]: runs xr_hostile --client; sets out, rc
client() {
	local name=$1 what=$2 path=$3
	shift 3
	out=$T/logs/client-$name.out
	XR_HOSTILE_PATH=$path XR_HOSTILE_TARGET=$W/elsewhere/abs timeout 20 \
		"$H" --client "$what" -- "$XR" serve --root "$R" "$@" >"$out" 2>"$out.err"
	rc=$?
}

# refused NAME: the last client run got an ERROR frame, serve failed, nothing leaked
refused() {
	local name=$1 why=()
	[ "$rc" = 0 ] || why+=("xr_hostile exit $rc")
	grep -q '^error: ' "$out" || why+=("no ERROR frame from serve")
	grep -q '^serve-exit: [1-9]' "$out" || why+=("serve: $(grep '^serve-' "$out")")
	! grep -q '^entry: \|^data: ' "$out" || why+=("serve sent: $(grep -m3 '^entry' "$out")")
	! grep -q 'SECRET-MARKER' "$out" "$out.err" || why+=("secret leaked")
	! grep -q 'Sanitizer' "$out.err" || why+=("sanitizer: $(grep -m1 'ERROR: ' "$out.err")")
	world_intact >/dev/null 2>&1 || why+=("outside R changed")
	diff -U0 "$T/R.before" <(r_listing) >"$out.rdiff" || why+=("R changed:"
		"$(tail -n +3 "$out.rdiff" | head -4)")
	if [ "${#why[@]}" = 0 ]; then
		ok "hostile client $name: refused ($(grep -m1 '^error: ' "$out" | cut -c1-72))"
	else
		not_ok "hostile client $name" "${why[@]}" "$(head -5 "$out" "$out.err")"
	fi
}

rm -rf "$T/run" && mkdir -p "$T/run/dest"
client dotdot pull "../.." --read-only
refused 'path "../.."'
client absolute pull /etc --read-only
refused 'absolute path outside the root'
client dotdot-mid pull "a/../../.." --read-only
refused 'path "a/../../.."'
client root-dotdot pull "$R/../world/" --read-only
refused 'path "ROOT/../world/"'
client symlink-escape pull esc/secret.txt --read-only
refused 'path through a symlink leading out of the root'
XR_HOSTILE_MODE=ok client push-ro push dst --read-only
refused 'push to a read-only server'
XR_HOSTILE_RULE='x bogus' client bad-rule pull data --read-only
refused 'invalid filter rule'
XR_HOSTILE_RULE="merge $W/rules/valid.rules" client merge-rule pull data --read-only
refused 'merge rule naming a file outside the root'
XR_HOSTILE_RULE="merge $W/secret/secret.txt" client merge-secret pull data --read-only
refused 'merge rule naming a secret file (its content must not be echoed)'

# symlinks inside the root are sent as symlinks; nothing they point to is read
client symlinks pull . --read-only
if grep -q "^entry: esc 3 -> $W/secret\$" "$out" && grep -q '^entry: data/sec-link 3' "$out" &&
	grep -q '^data: data/pub.txt: pub' "$out" && ! grep -q 'SECRET-MARKER' "$out" \
	"$out.err" && ! grep -q '^entry: esc/' "$out" && grep -q '^serve-exit: 0' "$out"; then
	ok "hostile client: symlinks leading out of the root are listed, never followed"
else
	not_ok "hostile client: symlinks leading out of the root" "$(head -12 "$out")"
fi
client esc-slash pull esc/ --read-only
if ! grep -q 'SECRET-MARKER' "$out" "$out.err" && ! grep -q '^entry: esc/\|^entry: secret' \
	"$out" && world_intact >/dev/null; then
	ok "hostile client: \"esc/\" (symlink out of the root) is not followed"
else
	not_ok "hostile client: \"esc/\" (symlink out of the root)" "$(head -8 "$out")"
fi

# a hostile sender pushing into a writable serve
XR_HOSTILE_MODE=dotdot client push-dotdot push dst
refused 'push of an entry "../escape"'
XR_HOSTILE_MODE=symlink-parent client push-symlink push dst
refused 'push of "link/evil" through a symlink in the target'
XR_HOSTILE_MODE=absolute client push-absolute push dst
refused 'push of an absolute entry name'

# serve --root serves a subdirectory named with a trailing slash (rsync's "contents of")
cat >"$T/rsh.sh" <<EOF
#!/bin/sh
exec "$XR" serve --root "$R" --read-only
EOF
chmod +x "$T/rsh.sh"
rm -rf "$T/sub-pull"
"$XR" pull -a -e "$T/rsh.sh" x:data/ "$T/sub-pull/" >"$T/logs/sub.out" 2>&1
rc=$?
if [ "$rc" = 0 ] && [ -f "$T/sub-pull/pub.txt" ] && [ -L "$T/sub-pull/sec-link" ]; then
	ok "serve --root: pull of a subdirectory \"data/\" copies its contents"
else
	not_ok "serve --root: pull of a subdirectory \"data/\" copies its contents" \
		"exit $rc; got: $(cd "$T/sub-pull" 2>/dev/null && find . -path ./.xroad-replicate \
		-prune -o -print | tr '\n' ' ')" "$(head -3 "$T/logs/sub.out")"
fi

tests_done
