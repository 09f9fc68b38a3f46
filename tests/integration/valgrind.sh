#!/usr/bin/env bash
# valgrind.sh - one realistic run of both roles under valgrind memcheck: zero errors, no leaks.
#
# A local pull of an X-Road tree (the forked serve is traced too), then an incremental pull
# after a keyconf edit and a new key (delta path, staging, journaled commit), then a push.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/common.sh
. tests/lib/xroad_tree.sh
XR=${BUILD:-build}/xroad-replicate
case ${BUILD:-build} in *asan*)
	skip "valgrind memcheck" "sanitizer build (valgrind runs on the plain build)"
	tests_done
	exit 0 ;;
esac
command -v valgrind >/dev/null || { skip "valgrind memcheck" "valgrind not installed"; exit 0; }
VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
	--trace-children=yes --track-fds=no --quiet)
xroad_tree "$T/src" 5 >/dev/null

run_vg() {
	local name=$1 rc
	shift
	"${VG[@]}" --log-file="$T/vg.$name.%p" "$XR" "$@" >/dev/null 2>"$T/err.$name"
	rc=$?
	# with --quiet, errors are "==PID==" lines; "--PID--" lines are valgrind's own notes
	# (valgrind 3.19 does not know openat2: it says so, and fs.c falls back to its
	# O_NOFOLLOW component walk - which this run therefore covers too)
	if [ "$rc" = 0 ] && ! grep -qE '^==[0-9]+==' "$T"/vg."$name".* 2>/dev/null; then
		ok "valgrind memcheck: $name: 0 errors"
	else
		not_ok "valgrind memcheck: $name" "exit $rc" "$(cat "$T"/vg."$name".* | head -30)" \
			"$(head -5 "$T/err.$name")"
	fi
}

run_vg initial-pull pull -a --delete "${XROAD_EXCLUDES[@]}" "$T/src/" "$T/dst/"
xroad_edit_keyconf "$T/src" >/dev/null
xroad_add_key "$T/src" >/dev/null
run_vg delta-pull pull -az --no-W --delete -i "${XROAD_EXCLUDES[@]}" "$T/src/" "$T/dst/"
echo changed >>"$T/src/conf.d/local.ini"
run_vg push push -a --delete "${XROAD_EXCLUDES[@]}" "$T/src/" "$T/dst/"
if [ -z "$(rsync -ani --delete --exclude /.xroad-replicate "${XROAD_EXCLUDES[@]}" \
	"$T/src/" "$T/dst/")" ]; then
	ok "valgrind memcheck: the result equals the source"
else
	not_ok "valgrind memcheck: the result equals the source" \
		"$(rsync -ani --delete --exclude /.xroad-replicate "${XROAD_EXCLUDES[@]}" \
			"$T/src/" "$T/dst/" | head)"
fi
tests_done
