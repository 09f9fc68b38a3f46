#!/bin/bash
# diff_rsync.sh - differential tests: the real rsync is the oracle for xroad-replicate.
#
# Every case builds a work tree once (src/, usually a pre-existing dst/, rule files), copies it
# twice with cp -a, runs the oracle in one copy and the tool under test in the other with the
# same arguments (relative paths, same cwd layout), then checks: same exit code, identical
# trees (tree_listing: type, mode, size, mtime with ns, owner when root, symlink target,
# SHA-256), for -n that nothing changed, and where asked the sorted -i stdout and the
# --log-file itemize lines.  One "ok - NAME" / "not ok - NAME" line per case; on failure the
# details follow as "#   " lines.
#
#   XR_CMD   tool under test (default "$BUILD/xroad-replicate pull"); XR_CMD=rsync validates
#            the harness (must pass every case)
#   ORACLE   the reference (default rsync)
#   FILTER   substring: run only the cases whose name contains it
#   DIFF_LC_ALL  locale for both tools (default C; e.g. C.UTF-8 to compare raw UTF-8 output)
#   KEEP_TMP=1 keeps the work dirs; DIFF_TIMES=1 prints each case's run time
# Runs as any user; cases that need root (devices, 0000 files, owners) are skipped otherwise.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
XR_CMD=${XR_CMD:-"$BUILD/xroad-replicate pull"}
ORACLE=${ORACLE:-rsync}
FILTER=${FILTER:-}
. tests/lib/common.sh
. tests/lib/xroad_tree.sh

export LC_ALL=${DIFF_LC_ALL:-C} TZ=UTC	# C: rsync prints non-ASCII name bytes as \#ooo
umask 022
read -ra XR <<<"$XR_CMD"
read -ra OR <<<"$ORACLE"
[[ ${XR[0]} == */* && ${XR[0]} != /* ]] && XR[0]=$PWD/${XR[0]}
if ! command -v "${XR[0]}" >/dev/null 2>&1; then
	echo "not ok - diff_rsync: tool under test '${XR[0]}' not found (XR_CMD=$XR_CMD)"
	exit 1
fi
if ! command -v "${OR[0]}" >/dev/null 2>&1; then
	echo "not ok - diff_rsync: oracle '${OR[0]}' not found"
	exit 1
fi
echo "# oracle: ${OR[*]} ($("${OR[0]}" --version 2>/dev/null | head -1))"
echo "# under test: ${XR[*]}"
cd "$T" || exit 1	# setup code never runs in the source tree

# Anything stamped after this is "fresh" in listings (fixtures use fixed epochs long before).
TREE_FRESH_AFTER=$(($(date +%s) - 2))
export TREE_FRESH_AFTER
ROOT=0
need_root && ROOT=1
[ "$ROOT" = 1 ] || export TREE_NO_OWNER=1
SRC_EPOCH=1600000000.111111111	# settle: mtime of unsettled entries below src/
DST_EPOCH=1500000000.222222222	# settle: mtime of every other unsettled entry
NCASE=0
CASE=""
C=""
SKIPCASE=0

# --- case framework ---------------------------------------------------------------------------

# case_begin NAME: starts a case; the setup that follows runs in $C/a/w (the cwd), which
# case_run copies to $C/b/w before running the tools.
# A case left out by FILTER still runs its setup (in its own scratch dir), just not the tools.
case_begin() {
	CASE=$1
	SKIPCASE=0
	if [ -n "$FILTER" ] && [[ $CASE != *"$FILTER"* ]]; then
		SKIPCASE=1
	fi
	NCASE=$((NCASE + 1))
	CASE_T0=${EPOCHREALTIME/[,]/.}
	C=$T/c$NCASE
	mkdir -p "$C/a/w" "$C/b"
	cd "$C/a/w" || exit 1
}

# case_skip_unless_root: skips the current case when not root.
case_skip_unless_root() {
	if [ "$SKIPCASE" = 0 ] && [ "$ROOT" != 1 ]; then
		skip "$CASE" "needs root"
		SKIPCASE=1
	fi
}

# mk PATH [CONTENT] [MODE]: writes a file (parents created), CONTENT defaults to "PATH\n".
mk() {
	local d=${1%/*}
	[ "$d" = "$1" ] || [ -d "$d" ] || mkdir -p -- "$d"
	printf '%s' "${2-$1$'\n'}" >"$1"
	[ -z "${3:-}" ] || chmod "$3" -- "$1"
}

# at EPOCH PATH...: sets the mtime (symlinks themselves, not their targets).
at() {
	local e=$1
	shift
	touch -h -d "@$e" -- "$@"
}

# settle: gives every entry of the work tree that is still "fresh" a fixed mtime (SRC_EPOCH below
# src/, DST_EPOCH elsewhere), so dst files are older than src files unless a case says otherwise.
settle() {
	if [[ $PWD != "$T"/* ]]; then
		echo "diff_rsync: settle outside the temp dir ($PWD), refusing" >&2
		exit 2
	fi
	find . -newermt "@$TREE_FRESH_AFTER" \( -path ./src -o -path './src/*' \) \
		-exec touch -h -d "@$SRC_EPOCH" {} + -o \
		-newermt "@$TREE_FRESH_AFTER" -exec touch -h -d "@$DST_EPOCH" {} +
}

# clone_src_to_dst: settles src/ and copies it to dst/ with every attribute (identical trees).
clone_src_to_dst() {
	settle
	cp -a src dst
}

# std_src: copies the standard source tree (files, modes, nested dirs, an empty dir, a
# symlink) to src/.
std_src() {
	cp -a "$T/tpl/std" src
}

# tpl_std DIR: creates the standard source tree in DIR.
tpl_std() {
	local s=$1
	mk "$s/top.txt" "top level text"$'\n'
	mk "$s/a.conf" "[main]"$'\nkey=value\n' 0640
	mk "$s/run.sh" "#!/bin/sh"$'\necho run\n' 0755
	mk "$s/sub/one.txt" "one one one"$'\n'
	mk "$s/sub/two.log" "log line"$'\n'
	mk "$s/sub/deep/x/y/z.txt" "zzz"$'\n'
	mkdir -p "$s/empty"
	ln -s top.txt "$s/link"
}

# norm_log FILE: prints the comparable part of a --log-file: prefix stripped, "building file
# list" dropped, the closing line reduced to "total size N", sorted.
norm_log() {
	[ -f "$1" ] || { echo "(no log file)"; return; }
	sed -E 's#^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \[[0-9]+\] ##
		/^building file list$/d
		s#^sent [0-9,]+ bytes +received [0-9,]+ bytes +(total size [0-9,]+)$#\1#' "$1" |
		LC_ALL=C sort
}

# slurp VAR <FILE: reads all of stdin into VAR without spawning a process.
slurp() {
	IFS= read -r -d '' "$1" || true
}

# show FILE LABEL: prints the tail of FILE as detail lines (for not_ok).
show() {
	[ -s "$1" ] && { echo "$2:"; tail -8 "$1" | cut -c1-200; }
}

# case_run [--dry] [--itemize] [--log] [--data] [--umask M] [--expect SHELL]... -- ARGS...
# Runs the oracle in $C/a/w and the tool in $C/b/w with ARGS, and reports the case.
# --dry: the destination must be unchanged; --itemize: compare sorted stdout; --data: compare
# the "Literal data" and "Matched data" lines of --stats (delta or whole file); --log: compare
# ../log (give --log-file=../log in ARGS); --expect: a shell condition checked in the oracle's
# tree after its run (proves the case exercises what it claims; failure = harness bug).
case_run() {
	local dry=0 itemize=0 log=0 data=0 um=022 rca rcb la lb pre d
	local -a expect=() problems=()
	if [ "$SKIPCASE" != 0 ]; then
		cd "$T" || exit 1
		return 0
	fi
	while [ $# -gt 0 ]; do
		case $1 in
		--dry) dry=1 ;;
		--itemize) itemize=1 ;;
		--log) log=1 ;;
		--data) data=1 ;;
		--umask) um=$2; shift ;;
		--expect) expect+=("$2"); shift ;;
		--) shift; break ;;
		*) echo "case_run: bad flag $1" >&2; exit 2 ;;
		esac
		shift
	done
	settle
	cd "$C" || exit 1
	cp -a a/w b/w || { not_ok "$CASE" "cp -a failed"; return; }
	if [ "$dry" = 1 ]; then
		tree_listing a/w >pre.lst
		slurp pre <pre.lst
	fi
	(cd a/w && umask "$um" && exec "${OR[@]}" "$@" >../out 2>../err </dev/null)
	rca=$?
	(cd b/w && umask "$um" && exec "${XR[@]}" "$@" >../out 2>../err </dev/null)
	rcb=$?
	tree_listing a/w >a.lst
	tree_listing b/w >b.lst
	slurp la <a.lst
	slurp lb <b.lst
	[ "$rca" = "$rcb" ] || problems+=("exit code: oracle $rca, under test $rcb")
	if [ "$la" != "$lb" ]; then
		problems+=("destination trees differ (-oracle +under test):")
		problems+=("$(diff -U0 <(printf '%s\n' "$la") <(printf '%s\n' "$lb") |
			sed '1,2d' | head -16 | cut -c1-200)")
	fi
	if [ "$dry" = 1 ]; then
		[ "$la" = "$pre" ] || problems+=("harness: oracle changed the tree under -n")
		if [ "$lb" != "$pre" ]; then
			problems+=("tree changed under --dry-run (-before +after):")
			problems+=("$(diff -U0 <(printf '%s\n' "$pre") <(printf '%s\n' "$lb") |
				sed '1,2d' | head -10 | cut -c1-200)")
		fi
	fi
	if [ "$itemize" = 1 ]; then
		LC_ALL=C sort -o a/out.sorted a/out
		LC_ALL=C sort -o b/out.sorted b/out
		slurp d <a/out.sorted
		slurp la <b/out.sorted
		[ "$d" = "$la" ] || problems+=("-i output differs (-oracle +under test):" \
			"$(diff -U0 a/out.sorted b/out.sorted | sed '1,2d' | head -12)")
	fi
	if [ "$data" = 1 ]; then
		d=$(grep -E '^(Literal|Matched) data:' a/out)
		la=$(grep -E '^(Literal|Matched) data:' b/out)
		[ -n "$d" ] && [ "$d" = "$la" ] ||
			problems+=("--stats data lines differ:" "oracle: ${d//$'\n'/; }" \
				"under test: ${la//$'\n'/; }")
	fi
	if [ "$log" = 1 ]; then
		d=$(diff -U0 <(norm_log a/log) <(norm_log b/log))
		[ -z "$d" ] || problems+=("--log-file lines differ (-oracle +under test):" \
			"$(printf '%s\n' "$d" | sed '1,2d' | head -12)")
	fi
	for d in "${expect[@]}"; do
		(cd a/w && eval "$d") >/dev/null 2>&1 ||
			problems+=("harness: oracle result fails expectation: $d")
	done
	if [ ${#problems[@]} = 0 ]; then
		ok "$CASE"
	else
		not_ok "$CASE" "args: $*" "${problems[@]}" "$(show a/err 'oracle stderr')" \
			"$(show b/err 'under-test stderr')"
	fi
	cd "$T" || exit 1
	# big trees go at once; the rest when the script exits (saves a process per case)
	if [ "${KEEP_TMP:-0}" != 1 ] && [ -e "$C/b/w/src/big" ]; then
		rm -rf "$C"
	fi
	[ "${DIFF_TIMES:-0}" = 1 ] && awk -v a="$CASE_T0" -v b="${EPOCHREALTIME/[,]/.}" \
		'BEGIN { printf "#   %d ms\n", (b - a) * 1000 }'
	return 0
}

# filter_src: copies the tree for pattern tests to src/.
filter_src() {
	cp -a "$T/tpl/filter" src
}

# tpl_filter DIR: creates the tree for pattern tests (the standard tree and more) in DIR.
tpl_filter() {
	(cd "$1/.." && tpl_std filter)
	cd "$1" || exit 1
	mkdir -p cache a/b/c tmp sub/tmp keep/inner conf
	mk keep1.txt
	mk drop.txt
	mk sub/keep2.txt
	mk sub/top.txt
	mk file1.txt
	mk file12.txt
	mk log1.txt
	mk logA.txt
	mk x.bak
	mk sub/y.bak
	mk cache/in
	mk sub/cache "a file named cache"
	mk a/deep.txt
	mk a/b/deep.txt
	mk a/b/c/deep.txt
	mk tmp/t1
	mk sub/tmp/t2
	mk keep/k1
	mk keep/inner/k2
	mk conf/x.ini
	mk conf/y.txt
	mk z.ini
	mk sub/s.tmp
}

# templates, built once
mkdir -p "$T/tpl/filter" && (cd "$T/tpl" && tpl_std std) &&
	(tpl_filter "$T/tpl/filter")

# --- basics -------------------------------------------------------------------------------------

case_begin a_new_tree
std_src
case_run --itemize --expect '[ -L dst/link ] && [ -d dst/empty ] && [ -f dst/sub/deep/x/y/z.txt ]' \
	-- -ai src/ dst

case_begin a_update_changed
std_src
mk dst/top.txt "older, longer top level text"$'\n'
mk dst/sub/one.txt "one ONE one"$'\n'
mk dst/a.conf "[main]"$'\nkey=value\n' 0640
mk dst/run.sh "#!/bin/sh"$'\necho run\n' 0755
at 1550000000.5 src/a.conf dst/a.conf src/run.sh dst/run.sh
case_run --itemize --expect 'grep -q "one one one" dst/sub/one.txt' -- -ai src/ dst

case_begin a_identical_noop
std_src
clone_src_to_dst
case_run --itemize --expect '[ ! -s ../out ]' -- -ai src/ dst

case_begin r_only_new
std_src
mk src/x.bin "binary?" 0600
case_run --itemize --expect '[ ! -e dst/link ] && [ -f dst/sub/one.txt ]' -- -ri src/ dst

case_begin r_existing_keeps_mode
std_src
mk dst/top.txt "other" 0600
mk dst/a.conf "x" 0604
case_run --expect '[ "$(stat -c %a dst/top.txt)" = 600 ] && grep -q "top level" dst/top.txt' \
	-- -r src/ dst

case_begin rlt_new_file_modes
std_src
mk src/wide "wide open" 0777
mk src/private "private" 0600
mkdir -p src/pdir
chmod 0700 src/pdir
chmod 0751 src/sub
case_run --itemize --expect '[ "$(stat -c %a dst/wide)" = 755 ]' -- -rlti src/ dst

case_begin rlt_new_file_modes_umask027
std_src
mk src/wide "wide open" 0777
mk src/group "group" 0664
case_run --umask 027 --expect '[ "$(stat -c %a dst/wide)" = 750 ]' -- -rlt src/ dst

case_begin p_only_changes
std_src
clone_src_to_dst
chmod 0600 dst/top.txt
chmod 0644 dst/a.conf dst/run.sh
chmod 0700 dst/sub
case_run --itemize --expect '[ "$(stat -c %a dst/run.sh)" = 755 ]' -- -ai src/ dst

case_begin t_only_mtime
std_src
clone_src_to_dst
at 1400000000.75 dst/top.txt dst/sub/one.txt
case_run --itemize -- -rti src/ dst

case_begin c_same_size_and_mtime_differs
mk src/f.txt "content A"$'\n'
mk dst/f.txt "content B"$'\n'
mk src/g.txt "same"$'\n'
mk dst/g.txt "same"$'\n'
at 1550000000.5 src/f.txt dst/f.txt src/g.txt dst/g.txt
case_run --itemize --expect 'grep -q "content A" dst/f.txt' -- -aci src/ dst

case_begin quick_check_skips_same_size_mtime
mk src/f.txt "content A"$'\n'
mk dst/f.txt "content B"$'\n'
mk src/g.txt "changed and longer"$'\n'
mk dst/g.txt "changed"$'\n'
at 1550000000.5 src/f.txt dst/f.txt
case_run --itemize --expect 'grep -q "content B" dst/f.txt' -- -ai src/ dst

case_begin c_same_content_other_mtime
std_src
clone_src_to_dst
at 1400000000 dst/top.txt dst/sub/one.txt
case_run --itemize -- -aci src/ dst

case_begin z_compress
std_src
mk dst/top.txt "old"
case_run -- -az src/ dst

case_begin delay_updates
std_src
mk dst/top.txt "old top"
mk dst/sub/one.txt "old one, longer"
case_run --expect '[ -z "$(find dst -name "*~*")" ]' -- -a --delay-updates src/ dst

case_begin quiet_stats_timeout
std_src
mk dst/top.txt "old"
case_run -- -aq --stats --timeout=10 src/ dst

# a local copy sends whole files (rsync's default -W there); --no-W makes it a delta whose
# literal and matched byte counts equal rsync's (same block size); -W forces whole files
delta_src() {
	head -c 300000 /dev/urandom >big.seed
	mkdir -p src dst
	cp big.seed src/big
	cp big.seed dst/big
	rm big.seed
	printf 'changed in the middle' | dd of=src/big bs=1 seek=150000 conv=notrunc status=none
	at 1550000000.5 dst/big
}
case_begin data_local_whole_by_default
delta_src
case_run --data --expect 'grep -q "^Matched data: 0 bytes" ../out' -- -a --stats src/ dst

case_begin data_no_whole_file_delta
delta_src
case_run --data --expect 'grep -Eq "^Literal data: ([0-9]{1,3}|[0-9],[0-9]{3}) bytes" ../out' \
	-- -a --stats --no-W src/ dst

case_begin data_whole_file_flag
delta_src
case_run --data --expect 'grep -q "^Matched data: 0 bytes" ../out' -- -a --stats -W src/ dst

case_begin empty_files_and_dirs
mk src/empty1 ""
mk src/d/empty2 ""
mkdir -p src/e1/e2/e3 dst/d
mk dst/d/empty2 "not empty now"
case_run --itemize -- -ai src/ dst

case_begin nested_new_dirs
mk src/l1/l2/l3/l4/l5/l6/l7/l8/l9/l10/leaf.txt "leaf"$'\n'
mk src/l1/side/f "side"
mkdir -p dst/l1
case_run --itemize -- -ai src/ dst

case_begin large_file_middle_edit
head -c 20971520 /dev/zero | openssl enc -aes-128-ctr -nosalt -K 0102030405060708090a0b0c0d0e0f10 \
	-iv 00000000000000000000000000000000 2>/dev/null >big
mkdir -p src dst
cp big src/big
mv big dst/big
printf 'EDITED IN THE MIDDLE' | dd of=src/big bs=1 seek=10485760 conv=notrunc status=none
case_run --expect 'cmp -s src/big dst/big' -- -a src/ dst

case_begin missing_source
mkdir -p dst
case_run -- -a nosuch/ dst

# --- delete -------------------------------------------------------------------------------------

case_begin delete_extraneous
std_src
mk dst/stale.txt
mk dst/sub/stale.log
mk dst/olddir/f1
mk dst/olddir/inner/f2
case_run --itemize --expect '[ ! -e dst/olddir ] && [ ! -e dst/stale.txt ]' -- -ai --delete src/ dst

case_begin delete_delay
std_src
mk dst/stale.txt
mk dst/sub/deep/stale
mk dst/gone/x
case_run --itemize --expect '[ ! -e dst/gone ]' -- -ai --delete-delay src/ dst

case_begin no_delete_keeps_extraneous
std_src
mk dst/stale.txt
mk dst/olddir/f1
case_run --expect '[ -f dst/olddir/f1 ]' -- -a src/ dst

case_begin delete_whole_subtree
std_src
mk dst/old/a/b/c/f1
mk dst/old/a/f2
mk dst/old/x y/f3
ln -s ../top.txt dst/old/lnk
case_run --itemize --expect '[ ! -e dst/old ]' -- -ai --delete src/ dst

case_begin excluded_files_protected_from_delete
std_src
mk dst/extra.log
mk dst/sub/keep.log
mk dst/sub/stale.txt
case_run --itemize --expect '[ -f dst/extra.log ] && [ ! -e dst/sub/stale.txt ]' \
	-- -ai --delete --exclude '*.log' src/ dst

case_begin delete_excluded
std_src
mk dst/extra.log
mk dst/sub/keep.log
case_run --itemize --expect '[ ! -e dst/extra.log ] && [ ! -e dst/sub/two.log ]' \
	-- -ai --delete --delete-excluded --exclude '*.log' src/ dst

case_begin excluded_dir_protected
std_src
mk src/cache/c1
mk dst/cache/old1
mk dst/cache/sub/old2
case_run --expect '[ -f dst/cache/old1 ] && [ ! -e dst/cache/c1 ]' \
	-- -a --delete --exclude /cache src/ dst

# --- filter rules -------------------------------------------------------------------------------

case_begin include_before_exclude
filter_src
case_run --itemize --expect '[ -f dst/keep1.txt ] && [ ! -e dst/drop.txt ]' \
	-- -ai --include 'keep*.txt' --exclude '*.txt' src/ dst

case_begin exclude_before_include
filter_src
case_run --itemize --expect '[ ! -e dst/keep1.txt ]' \
	-- -ai --exclude '*.txt' --include 'keep*.txt' src/ dst

case_begin pattern_anchored
filter_src
case_run --itemize --expect '[ ! -e dst/top.txt ] && [ -f dst/sub/top.txt ]' \
	-- -ai --exclude /top.txt src/ dst

case_begin pattern_unanchored
filter_src
case_run --itemize --expect '[ ! -e dst/sub/top.txt ]' -- -ai --exclude top.txt src/ dst

case_begin pattern_dir_slash
filter_src
case_run --itemize --expect '[ ! -e dst/cache ] && [ -f dst/sub/cache ]' \
	-- -ai --exclude 'cache/' src/ dst

case_begin pattern_star
filter_src
case_run --expect '[ ! -e dst/sub/y.bak ]' -- -a --exclude '*.bak' src/ dst

case_begin pattern_question
filter_src
case_run --expect '[ ! -e dst/file1.txt ] && [ -f dst/file12.txt ]' \
	-- -a --exclude 'file?.txt' src/ dst

case_begin pattern_brackets
filter_src
case_run --expect '[ ! -e dst/log1.txt ] && [ -f dst/logA.txt ]' \
	-- -a --exclude 'log[0-9].txt' src/ dst

case_begin pattern_with_slash
filter_src
case_run --expect '[ ! -e dst/sub/one.txt ] && [ -f dst/sub/deep/x/y/z.txt ]' \
	-- -a --exclude 'sub/*.txt' src/ dst

case_begin pattern_double_star
filter_src
case_run --expect '[ -f dst/a/deep.txt ] && [ ! -e dst/a/b/c/deep.txt ]' \
	-- -a --exclude 'a/**/deep.txt' --exclude '**/tmp' src/ dst

case_begin pattern_dir_triple_star
filter_src
case_run --itemize --expect '[ -f dst/keep/inner/k2 ] && [ ! -e dst/top.txt ]' \
	-- -ai --include 'keep/***' --exclude '*' src/ dst

case_begin include_dirs_then_ini_only
filter_src
case_run --itemize --expect '[ -f dst/conf/x.ini ] && [ ! -e dst/conf/y.txt ]' \
	-- -ai --include '*/' --include '*.ini' --exclude '*' src/ dst

case_begin exclude_from_with_comments
filter_src
printf '%s\n' '# comment line' '; another comment' '' '*.bak' '/drop.txt' 'cache/' \
	'sub/tmp' >rules.txt
mk dst/x.bak
case_run --expect '[ ! -e dst/drop.txt ] && [ -f dst/x.bak ] && [ -f dst/tmp/t1 ]' \
	-- -a --delete --exclude-from=rules.txt src/ dst

case_begin include_from_with_comments
filter_src
printf '%s\n' '# what to take' '' '/conf/' '/conf/*.ini' '; the root ini' '/z.ini' >inc.txt
case_run --itemize --expect '[ -f dst/conf/x.ini ] && [ ! -e dst/conf/y.txt ]' \
	-- -ai --include-from=inc.txt --exclude '*' src/ dst

case_begin filter_minus_tmp
filter_src
mk dst/old.tmp
case_run --expect '[ ! -e dst/sub/s.tmp ] && [ -f dst/old.tmp ]' \
	-- -a --delete -f '- *.tmp' src/ dst

case_begin filter_P_protect_short
std_src
mk dst/keep.conf
mk dst/stale.conf
case_run --itemize --expect '[ -f dst/keep.conf ] && [ ! -e dst/stale.conf ]' \
	-- -ai --delete -f 'P keep.conf' src/ dst

case_begin filter_protect_risk
std_src
mk dst/old1.conf
mk dst/old2.conf
mk dst/old3.txt
case_run --itemize --expect '[ ! -e dst/old1.conf ] && [ -f dst/old2.conf ]' \
	--expect '[ ! -e dst/old3.txt ]' \
	-- -ai --delete --filter 'risk old1.conf' --filter 'protect *.conf' src/ dst

case_begin filter_merge_file
filter_src
printf '%s\n' '# merged rules' '+ keep*.txt' '- *.txt' 'P local.ini' '- /tmp' >rules.txt
mk dst/local.ini
mk dst/stale.ini
case_run --itemize --expect '[ -f dst/local.ini ] && [ -f dst/keep1.txt ]' \
	--expect '[ ! -e dst/drop.txt ]' \
	-- -ai --delete -f 'merge rules.txt' src/ dst

case_begin filter_dot_merge
filter_src
printf '%s\n' '+ */' '+ *.ini' '- *' >rules2.txt
case_run --expect '[ -f dst/conf/x.ini ] && [ ! -e dst/top.txt ]' -- -a -f '. rules2.txt' src/ dst

# --- type changes -------------------------------------------------------------------------------

case_begin type_file_to_dir
mk src/x/inner "inner"
mk src/keep "k"
mk dst/x "was a file"
case_run --itemize --expect '[ -f dst/x/inner ]' -- -ai src/ dst

case_begin type_dir_to_file_delete
mk src/x "now a file"
mk dst/x/in1
mk dst/x/sub/in2
case_run --itemize --expect '[ -f dst/x ]' -- -ai --delete src/ dst

case_begin type_dir_to_file_no_delete
mk src/x "now a file"
mk src/y "y"
mk dst/x/in1
case_run --itemize --expect '[ -d dst/x ] && [ -f dst/y ]' -- -ai src/ dst

case_begin type_empty_dir_to_file
mk src/x "now a file"
mkdir -p dst/x
case_run --itemize --expect '[ -f dst/x ]' -- -ai src/ dst

case_begin type_file_to_symlink
mk src/target "t"
ln -s target src/x
mk dst/x "was a file"
case_run --itemize --expect '[ -L dst/x ]' -- -ai src/ dst

case_begin type_symlink_to_file
mk src/x "now a file"
mkdir -p dst
ln -s somewhere dst/x
case_run --itemize --expect '[ -f dst/x ] && [ ! -L dst/x ]' -- -ai src/ dst

case_begin type_dir_to_symlink_delete
mk src/target/t1
ln -s target src/x
mk dst/x/in1
case_run --itemize --expect '[ -L dst/x ]' -- -ai --delete src/ dst

case_begin type_dir_to_symlink_no_delete
mk src/target/t1
ln -s target src/x
mk dst/x/in1
case_run --itemize --expect '[ -d dst/x ] && [ ! -L dst/x ]' -- -ai src/ dst

case_begin type_symlink_to_dir
mk src/x/in1
mk dst/real/r1
ln -s real dst/x
case_run --itemize --expect '[ -d dst/x ] && [ ! -L dst/x ] && [ -f dst/real/r1 ]' \
	-- -ai src/ dst

case_begin type_symlink_retarget
mkdir -p src dst
ln -s new-target src/x
ln -s old-target dst/x
case_run --itemize -- -ai src/ dst

# --- names --------------------------------------------------------------------------------------

case_begin odd_names
mkdir -p src/'dir with space' dst
mk src/'with space.txt'
mk src/$'new\nline'
mk src/$'tab\there'
mk src/'UTF-8 äöü €.txt'
mk src/'-leading-dash'
mk src/'star*name'
mk src/'question?mark'
mk src/'[brackets]'
mk src/'back\slash'
mk src/'dir with space'/$'inner\nnew line'
mk src/"quote'd \"x\""
ln -s 'with space.txt' src/'link with space'
mk dst/$'stale\nname'
case_run --itemize --expect '[ -f "dst/star*name" ] && [ -f "dst/UTF-8 äöü €.txt" ]' \
	-- -ai --delete src/ dst

case_begin odd_names_literal_wildcards
mk src/'star*'
mk src/'starX'
mk src/'q?'
mk src/'qX'
mk src/'br[a]'
mk src/'bra'
case_run --itemize --expect '[ ! -e "dst/star*" ] && [ -f dst/starX ]' \
	--expect '[ ! -e "dst/q?" ] && [ -f dst/qX ] && [ ! -e "dst/br[a]" ] && [ -f dst/bra ]' \
	-- -ai --exclude 'star\*' --exclude 'q\?' --exclude 'br\[a\]' src/ dst

case_begin long_name_255
LONG=$(printf 'n%.0s' {1..251})
mk "src/$LONG.txt" "long"
mk "src/d/$LONG.xyz" "long2"
mk "dst/$LONG.txt" "older long"
case_run --itemize --expect '[ -f "dst/d/$(printf "n%.0s" {1..251}).xyz" ]' -- -ai src/ dst

# --- trailing slashes and single files ----------------------------------------------------------

case_begin slash_contents_into_existing
std_src
mkdir -p dst
case_run --itemize --expect '[ -f dst/top.txt ]' -- -ai src/ dst/

case_begin slash_dir_into_existing
std_src
mk dst/other
case_run --itemize --expect '[ -f dst/src/top.txt ]' -- -ai src dst

case_begin slash_dir_into_missing_with_slash
std_src
case_run --itemize --expect '[ -f newdst/src/top.txt ]' -- -ai src newdst/

case_begin slash_contents_into_missing
std_src
case_run --itemize --expect '[ -f newdst/top.txt ]' -- -ai src/ newdst

case_begin slash_dir_into_missing_no_slash
std_src
case_run --itemize --expect '[ -f newdst/src/top.txt ]' -- -ai src newdst

case_begin single_file_into_dir
std_src
mkdir -p dst
case_run --itemize --expect '[ -f dst/top.txt ]' -- -ai src/top.txt dst/

case_begin single_file_into_dir_no_slash
std_src
mk dst/x
case_run --itemize --expect '[ -f dst/top.txt ]' -- -ai src/top.txt dst

case_begin single_file_to_new_name
std_src
case_run --itemize --expect '[ -f renamed.txt ]' -- -ai src/top.txt renamed.txt

case_begin single_file_over_file
std_src
mk other.txt "older content"
case_run --itemize --expect 'grep -q "top level" other.txt' -- -ai src/top.txt other.txt

# --- dry run ------------------------------------------------------------------------------------

case_begin dry_run_changes
std_src
mk dst/top.txt "old"
mk dst/stale
mk dst/olddir/f
mk dst/a.conf "[main]"$'\nkey=value\n' 0600
case_run --dry --itemize -- -ani --delete src/ dst

case_begin dry_run_checksum_delete_excluded
std_src
clone_src_to_dst
mk dst/x.log
printf 'TOP LEVEL TEXT\n' >dst/top.txt
touch -r src/top.txt dst/top.txt
case_run --dry --itemize -- -anci --delete --delete-excluded --exclude '*.log' src/ dst

case_begin dry_run_missing_dest
std_src
case_run --dry --itemize --expect '[ ! -e newdst ]' -- -ain src/ newdst

# --- permissions, owners, special files ---------------------------------------------------------

case_begin perm_0000_as_root
case_skip_unless_root
if [ "$SKIPCASE" = 0 ]; then
	mk src/locked "secret" 0000
	mk src/lockeddir/inner "x"
	chmod 0000 src/lockeddir
	mk src/upd "new content" 0000
	mk dst/upd "old" 0000
fi
case_run --itemize --expect '[ "$(stat -c %a dst/locked)" = 0 ]' -- -ai src/ dst

case_begin owners_preserved_as_root
case_skip_unless_root
if [ "$SKIPCASE" = 0 ]; then
	std_src
	chown -R xroad:xroad src/sub
	mk src/nobody "n"
	chown 12345:54321 src/nobody
	chown -h xroad:xroad src/link
fi
case_run --itemize -- -ai src/ dst

case_begin numeric_ids
case_skip_unless_root
if [ "$SKIPCASE" = 0 ]; then
	std_src
	chown -R xroad:xroad src/sub
	chown 12345:54321 src/top.txt
fi
case_run -- -a --numeric-ids src/ dst

case_begin group_only_change
case_skip_unless_root
if [ "$SKIPCASE" = 0 ]; then
	std_src
	clone_src_to_dst
	chgrp xroad src/top.txt src/sub
fi
case_run --itemize -- -ai src/ dst

case_begin no_owner_no_group
case_skip_unless_root
if [ "$SKIPCASE" = 0 ]; then
	std_src
	chown -R xroad:xroad src
	mk dst/top.txt "older"
	chown xroad:xroad dst/top.txt
fi
case_run --expect '[ "$(stat -c %u dst/sub/one.txt)" = 0 ]' -- -rlpt src/ dst

case_begin devices_fifo_with_D
case_skip_unless_root
if [ "$SKIPCASE" = 0 ]; then
	mkdir -p src dst
	mkfifo src/fifo
	mknod src/null c 1 3
	mknod dst/olddev c 1 5
	mk src/plain "p"
fi
case_run --itemize --expect '[ -p dst/fifo ] && [ -c dst/null ]' -- -ai --delete src/ dst

case_begin specials_skipped_without_D
mkdir -p src
mkfifo src/fifo
mk src/plain "p"
case_run --expect '[ ! -e dst/fifo ] && [ -f dst/plain ]' -- -rlt src/ dst

case_begin symlinks_outside_and_dangling
mkdir -p src/sub
mk src/in "x"
ln -s /etc/passwd src/abs
ln -s ../../outside src/sub/rel-out
ln -s does-not-exist src/dangling
ln -s sub src/dirlink
case_run --itemize --expect '[ -L dst/dangling ] && [ -L dst/abs ]' -- -ai src/ dst

case_begin symlinks_skipped_without_l
mkdir -p src/sub
mk src/in "x"
ln -s /etc/passwd src/abs
ln -s does-not-exist src/dangling
ln -s in src/sub/rel
case_run --expect '[ ! -e dst/abs ] && [ ! -L dst/dangling ] && [ -f dst/in ]' -- -rt src/ dst

# --- X-Road -------------------------------------------------------------------------------------

XR_SRC=$T/xroad-primary
XR_SYNCED=$T/xroad-synced
if [ -z "$FILTER" ] || [[ xroad_ == *"$FILTER"* ]] || [[ $FILTER == xroad* ]]; then
	xroad_tree "$XR_SRC" 42 || echo "not ok - xroad_tree fixture"
	# what a secondary holds after a sync: the primary's tree minus the excludes, plus its own
	# node-local files
	rsync -a "${XROAD_EXCLUDES[@]}" "$XR_SRC/" "$XR_SYNCED" || echo "not ok - xroad baseline"
	printf '[node]\ntype=slave\n' >"$XR_SYNCED/conf.d/node.ini"
	printf 'serverconf.hibernate.connection.password = secondary-only\n' \
		>"$XR_SYNCED/db.properties"
	mkdir -p "$XR_SYNCED/globalconf/EE" "$XR_SYNCED/gpghome" "$XR_SYNCED/postgresql"
	printf 'EE\n' >"$XR_SYNCED/globalconf/instance-identifier"
	printf '<conf>secondary copy</conf>\n' >"$XR_SYNCED/globalconf/EE/shared-params.xml"
	printf 'secondary key\n' >"$XR_SYNCED/gpghome/pubring.kbx"
	printf 'x\n' >"$XR_SYNCED/postgresql/pw"
	chmod 0640 "$XR_SYNCED/conf.d/node.ini" "$XR_SYNCED/db.properties"
	[ "$ROOT" = 1 ] && chown -R xroad:xroad "$XR_SYNCED/conf.d/node.ini" \
		"$XR_SYNCED/db.properties" "$XR_SYNCED/globalconf" "$XR_SYNCED/gpghome"
	touch -d @1700050000.75 "$XR_SYNCED/conf.d/node.ini" "$XR_SYNCED/db.properties" \
		"$XR_SYNCED/globalconf" "$XR_SYNCED/gpghome" "$XR_SYNCED/postgresql" \
		"$XR_SYNCED/globalconf/EE"
	# the secondary's directories carry the primary's times (rsync set them on the last sync)
	touch -r "$XR_SRC" "$XR_SYNCED"
	touch -r "$XR_SRC/conf.d" "$XR_SYNCED/conf.d"
	find "$XR_SYNCED" -newermt "@$TREE_FRESH_AFTER" -exec touch -h -d "@$DST_EPOCH" {} +
fi
XR_ARGS=("${XROAD_RSYNC_OPTS[@]}" --log-file=../log)
XR_NODE_OK='grep -q slave dst/conf.d/node.ini && grep -q secondary-only dst/db.properties'

case_begin xroad_initial_with_node_local_and_stale
cp -a "$XR_SRC" src
cp -a "$XR_SYNCED" dst
mk dst/conf.d/old-addon.ini "stale"
mk dst/signer/softtoken/0000000000000000000000000000000000000000.p12 "revoked key"
mk dst/services/removed.conf "stale"
mk dst/jetty/old/x.xml "stale"
mk dst/signer/tmpconf999.tmp "half-written"
printf 'older keyconf\n' >dst/signer/keyconf.xml
rm -f dst/signer/softtoken/.softtoken.p12 dst/ssl/internal.key
touch -d @1600000000 dst/conf.d dst/signer dst/signer/softtoken dst/services dst/jetty \
	dst/jetty/old dst/ssl dst/signer/keyconf.xml
[ "$ROOT" = 1 ] && chown -R xroad:xroad dst
case_run --log --expect "$XR_NODE_OK" \
	--expect '[ ! -e dst/jetty/old ] && [ -f dst/signer/tmpconf999.tmp ]' \
	-- "${XR_ARGS[@]}" src/ dst/

case_begin xroad_nothing_changed
cp -a "$XR_SRC" src
cp -a "$XR_SYNCED" dst
case_run --log --expect "$XR_NODE_OK && ! grep -Eq '\\] ([<>.ch][fdLDS]|\\*del)' ../log" \
	-- "${XR_ARGS[@]}" src/ dst/

case_begin xroad_keyconf_resaved
cp -a "$XR_SRC" src
cp -a "$XR_SYNCED" dst
xroad_resave_keyconf src 1700300000.123456789
case_run --log --expect 'cmp -s src/signer/keyconf.xml dst/signer/keyconf.xml' \
	-- "${XR_ARGS[@]}" src/ dst/

case_begin xroad_keyconf_edited
cp -a "$XR_SRC" src
cp -a "$XR_SYNCED" dst
xroad_edit_keyconf src 1700300000.5
case_run --log --expect 'grep -q "sign key #1" dst/signer/keyconf.xml' -- "${XR_ARGS[@]}" src/ dst/

case_begin xroad_key_added
cp -a "$XR_SRC" src
cp -a "$XR_SYNCED" dst
xroad_add_key src 1700300100.25 >/dev/null
xroad_add_key src 1700300200.75 >/dev/null
case_run --log --expect '[ "$(ls dst/signer/softtoken | wc -l)" = 5 ]' -- "${XR_ARGS[@]}" src/ dst/

case_begin xroad_token_pin_change
cp -a "$XR_SRC" src
cp -a "$XR_SYNCED" dst
for f in src/signer/softtoken/*.p12 src/signer/softtoken/.softtoken.p12; do
	tr '\000-\377' '\001-\377\000' <"$f" >"$f.new" && cat "$f.new" >"$f" && rm -f "$f.new"
done
touch -d @1700400000.5 src/signer/softtoken src/signer/softtoken/* \
	src/signer/softtoken/.softtoken.p12
xroad_resave_keyconf src 1700400001
case_run --log -- "${XR_ARGS[@]}" src/ dst/

case_begin xroad_dry_run
cp -a "$XR_SRC" src
cp -a "$XR_SYNCED" dst
xroad_add_key src 1700300100.25 >/dev/null
mk dst/stale.ini
case_run --dry --log -- "${XR_ARGS[@]}" -n src/ dst/

case_begin xroad_itemize_no_quiet
cp -a "$XR_SRC" src
cp -a "$XR_SYNCED" dst
xroad_edit_keyconf src 1700300000.5
mk dst/conf.d/stale.ini
case_run --itemize -- -aiz --timeout=10 --delete-delay "${XROAD_EXCLUDES[@]}" --delay-updates \
	src/ dst/

cd "$T" || exit 1
tests_done
