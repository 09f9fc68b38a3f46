# faultwalk.sh - one step of a receiver fault walk and its checks (source it from bash).
#
#   hashes DIR / fast_listing DIR / same_tree A B / clean_state DEST / no_torn_files DEST
#   fault_change_set          # builds $OLD and $NEW (the walked change set), $T/old.h, new.h
#   fault_step VERB MODE N    # VERB pull|push, MODE kill|fail; echoes why it failed, returns 1
#   fault_builds NAME         # sets B, XR, XRF (the build and its fault-point twin) or fails
#
# fault_step runs "$FW_XRF VERB ${FW_OPTS[@]} $OLD... " with XR_FAULT_AT=N on a fresh copy of
# $OLD in $D, then checks: the run failed, no file in $D is torn (each is the old or the new
# version: $T/old.h, $T/new.h from hashes), $D is exactly $OLD when N <= $commit_at (the
# journal rename has not happened), the next run ($FW_XR) recovers and converges to $NEW, and
# nothing is left staged.  Needs OLD NEW D T commit_at FW_XRF FW_XR FW_OPTS.

# The realistic X-Road change set the walks go through, $OLD -> $NEW: keyconf edit, new .p12,
# a deletion, dir -> file, file -> dir, new nested directories, chmod, mtime, a new symlink;
# then the hash lists of both.  Needs xroad_tree.sh, OLD NEW T; returns 1 if the tree failed.
fault_change_set() {
	xroad_tree "$OLD" 7 >/dev/null || return 1
	cp -a "$OLD" "$NEW"
	xroad_edit_keyconf "$NEW" 1700000000 >/dev/null
	xroad_add_key "$NEW" 1700000001 >/dev/null
	rm -f "$NEW/conf.d/proxy-ui-api.ini"
	rm -rf "$NEW/jetty" && printf 'now a file\n' >"$NEW/jetty"
	rm -f "$NEW/devices.ini" && mkdir "$NEW/devices.ini" && echo x >"$NEW/devices.ini/inner"
	mkdir -p "$NEW/conf.d/new/deeper" && echo deep >"$NEW/conf.d/new/deeper/file.ini"
	chmod 0600 "$NEW/conf.d/common.ini"
	touch -d @1700000100 "$NEW/services/global.conf"
	ln -s signer/keyconf.xml "$NEW/keyconf-link"
	hashes "$OLD" >"$T/old.h"
	hashes "$NEW" >"$T/new.h"
}

# "PATH HASH" for every regular file of a tree, sorted
hashes() {
	(cd "$1" && find . -name .xroad-replicate -prune -o -type f -print0 |
		xargs -0r sha256sum | awk '{ print $2 " " $1 }' | sort)
}

# metadata listing + content hashes, for plain-named trees (directory sizes left out)
fast_listing() {
	(cd "$1" && find . -mindepth 1 -name .xroad-replicate -prune -o \
		-printf '%P %y %m %s %T@ %U:%G %l\n' | sed 's/^\(.* d [0-7]*\) [0-9]*/\1 -/' |
		sort && hashes .)
}

same_tree() {
	cmp -s <(fast_listing "$1") <(fast_listing "$2")
}

# DEST holds no journal and no staged file
clean_state() {
	local st=$1/.xroad-replicate
	[ ! -e "$st/journal" ] || { echo "journal left behind"; return 1; }
	[ ! -e "$st/journal.tmp" ] || { echo "journal.tmp left behind"; return 1; }
	if [ -d "$st/stage" ] && [ -n "$(ls -A "$st/stage")" ]; then
		echo "staging left behind: $(ls -A "$st/stage" | head -3 | tr '\n' ' ')"
		return 1
	fi
}

# every file in $1 is the old or the new version of its path
no_torn_files() {
	local torn
	torn=$(hashes "$1" | awk 'FILENAME != "-" { ok[$0] = 1; next } !($0 in ok)' \
		"$T/old.h" "$T/new.h" -)
	[ -z "$torn" ] || { echo "torn or foreign file: $torn" | head -3; return 1; }
}

fault_step() {
	local verb=$1 mode=$2 n=$3 rc msg
	rm -rf "$D" && cp -a "$OLD" "$D"
	XR_FAULT_MODE=$mode XR_FAULT_AT=$n timeout 20 "$FW_XRF" "$verb" "${FW_OPTS[@]}" \
		"$NEW/" "$D/" >/dev/null 2>"$T/err"
	rc=$?
	[ "$rc" != 0 ] || { echo "run succeeded despite the fault"; return 1; }
	[ "$rc" != 124 ] || { echo "$verb hung (killed after 20 s)"; return 1; }
	msg=$(no_torn_files "$D") || { echo "$msg"; return 1; }
	if [ "$n" -le "$commit_at" ] && ! same_tree "$OLD" "$D"; then
		echo "DEST changed before the commit point"
		return 1
	fi
	"$FW_XR" "$verb" "${FW_OPTS[@]}" "$NEW/" "$D/" >/dev/null 2>"$T/err2"
	rc=$?
	[ "$rc" = 0 ] || { echo "recovery run exit $rc: $(head -2 "$T/err2")"; return 1; }
	if ! same_tree "$NEW" "$D"; then
		echo "not converged: $(tree_diff "$NEW" "$D" | head -4 | tr '\n' ' ')"
		return 1
	fi
	clean_state "$D"
}

# fault_builds NAME: sets B (the build directory BUILD, default build, made absolute), XR (its
# binary) and XRF (the same code with the test-only fault points); prints "not ok - NAME: ..."
# and returns 1 when either is missing.
fault_builds() {
	B=${BUILD:-build}
	case $B in /*) ;; *) B=$(pwd)/$B ;; esac
	XR=$B/xroad-replicate
	XRF=$B/faults/xroad-replicate
	if [ ! -x "$XR" ] || [ ! -x "$XRF" ]; then
		not_ok "$1: $XR or $XRF missing (make build-tests)"
		return 1
	fi
}
