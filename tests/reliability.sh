#!/usr/bin/env bash
# reliability.sh - writes tests/RELIABILITY.md: fault points walked and survived, environment
# faults, hostile inputs refused, fuzz executions, sanitizer, valgrind and static-analysis runs.
#
#   bash tests/reliability.sh               # standalone: runs the suites below (as root:
#                                           # mounts, namespaces, sshd, users), full walks
#   FUZZ_SECONDS=60 bash tests/reliability.sh
#   bash tests/reliability.sh --from-logs   # no run: parses what CI's run already left
#
# Standalone, on the plain build (BUILD, default build; `make build-tests` first), each
# suite's raw output goes to build/reliability/NAME.out:
#   tests/integration/crash.sh        fault walk for pull (every fault point, kill and fail)
#   tests/integration/faults.sh       FAULT_STRIDE=1: the full push walk + environment faults
#   tests/integration/watch_faults.sh WATCH_FAULT_STRIDE=1: the walk inside push/pull --watch
#   tests/integration/hostile.sh      hostile senders and clients
#   tests/integration/valgrind.sh     memcheck of both roles
#   tests/fuzz/run.sh                 libFuzzer targets, FUZZ_SECONDS (default 10) each
#   make lint, make tidy              cppcheck, clang-tidy
#   crash.sh on build-asan            when build-asan/faults/xroad-replicate exists
# --from-logs reads instead (nothing is rerun; the walks are at the suites' default strides):
#   $BUILD/test-logs/NAME.out         every suite of `make test` (tests/run.sh keeps them)
#   build-asan/test-logs/NAME.out     the same under `make asan` (ASan+UBSan)
#   $BUILD/test-logs/{fuzz,lint,tidy}.out and build/fuzz/summary.md   (.ci/run saves them)
# Both modes print the report's summary lines on stdout and exit 1 when a suite reported a
# failure (the report is written anyway).
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
OUT=${RELIABILITY_OUT:-tests/RELIABILITY.md}
ASAN_LOGS=${ASAN_LOGS:-build-asan/test-logs}
export LC_ALL=C
case ${1:-} in
--from-logs) MODE=logs LOG=${TEST_LOGS:-$BUILD/test-logs} ;;
"") MODE=run LOG=$BUILD/reliability ;;
*)
	echo "usage: bash tests/reliability.sh [--from-logs]" >&2
	exit 2
	;;
esac
mkdir -p "$LOG" || exit 1
failed=()

# RC[NAME], SECS[NAME]: exit status and seconds of each suite; LOGF[NAME]: its raw output
declare -A RC SECS LOGF

# run NAME CMD...: runs CMD with its output in $LOG/NAME.out; records rc and seconds
run() {
	local name=$1 t0
	shift
	t0=$(date +%s)
	echo "reliability: $name ..." >&2
	"$@" >"$LOG/$name.out" 2>&1
	RC[$name]=$?
	SECS[$name]=$(($(date +%s) - t0))
	LOGF[$name]=$LOG/$name.out
	[ "${RC[$name]}" = 0 ] || failed+=("$name")
	echo "reliability: $name: exit ${RC[$name]} (${SECS[$name]} s)" >&2
}

# from_log NAME FILE: takes FILE as NAME's output.  The exit status and seconds come from its
# "# log: exit RC in S s" line (tests/run.sh and .ci/run append it); without one, a
# "not ok" line counts as a failure.
from_log() {
	local name=$1 f=$2 line
	[ -f "$f" ] || return 0
	LOGF[$name]=$f
	line=$(grep -E '^# log: exit [0-9]+ in [0-9]+ s' "$f" | tail -1)
	if [ -n "$line" ]; then
		RC[$name]=$(awk '{ print $4 }' <<<"$line")
		SECS[$name]=$(awk '{ print $6 }' <<<"$line")
	else
		RC[$name]=0
		grep -q '^not ok ' "$f" && RC[$name]=1
		SECS[$name]=-
	fi
	grep -q '^not ok ' "$f" && [ "${RC[$name]}" = 0 ] && RC[$name]=1
	[ "${RC[$name]}" = 0 ] || failed+=("$name")
}

if [ "$MODE" = run ]; then
	run crash env BUILD="$BUILD" bash tests/integration/crash.sh
	run faults env BUILD="$BUILD" FAULT_STRIDE=1 bash tests/integration/faults.sh
	run watch_faults env BUILD="$BUILD" WATCH_FAULT_STRIDE=1 \
		bash tests/integration/watch_faults.sh
	run hostile env BUILD="$BUILD" bash tests/integration/hostile.sh
	run valgrind env BUILD="$BUILD" bash tests/integration/valgrind.sh
	run fuzz env FUZZ_SECONDS="$FUZZ_SECONDS" bash tests/fuzz/run.sh
	run lint make --no-print-directory lint
	run tidy make --no-print-directory tidy
	if [ -x build-asan/faults/xroad-replicate ] && [ -x build-asan/xroad-replicate ]; then
		run crash-asan env BUILD=build-asan bash tests/integration/crash.sh
	fi
else
	for n in crash faults watch_faults hostile valgrind fuzz lint tidy; do
		from_log "$n" "$LOG/$n.out"
	done
	from_log crash-asan "$ASAN_LOGS/crash.out"
	# cppcheck and clang-tidy print no "not ok": a finding is a failure
	if [ -n "${LOGF[lint]:-}" ] && [ "${RC[lint]}" = 0 ] &&
		grep -qE '(error|warning|performance|portability):' "${LOGF[lint]}"; then
		RC[lint]=1
		failed+=(lint)
	fi
	if [ -n "${LOGF[tidy]:-}" ] && [ "${RC[tidy]}" = 0 ] &&
		grep -qE '(warning|error):' "${LOGF[tidy]}"; then
		RC[tidy]=1
		failed+=(tidy)
	fi
	FUZZ_SECONDS=$(sed -n 's/^# Fuzzing summary (.*, \([0-9]*\) s per target)/\1/p' \
		build/fuzz/summary.md 2>/dev/null | head -1)
	FUZZ_SECONDS=${FUZZ_SECONDS:-?}
fi

# lg NAME: NAME's log file (/dev/null when it did not run)
lg() {
	echo "${LOGF[$1]:-/dev/null}"
}
# count NAME REGEX: lines of NAME's output matching REGEX
count() {
	grep -cE -- "$2" "$(lg "$1")"
}
# ran NAME: NAME's output exists
ran() {
	[ -n "${LOGF[$1]:-}" ]
}
# missing NAME: the log that is missing, for "did not run" notes
missing() {
	if [ "$1" = crash-asan ] && [ "$MODE" = logs ]; then
		echo "no \`$ASAN_LOGS/crash.out\`"
	else
		echo "no \`$LOG/$1.out\`"
	fi
}

# --- figures ---------------------------------------------------------------------------------
# Each *_row sets ROW (a table row) and adds to WALKED/SURVIVED.
WALKED=0 SURVIVED=0
tally() {
	WALKED=$((WALKED + $1))
	SURVIVED=$((SURVIVED + $2))
}
# crash.sh: "crash: N fault points, commit point at step C", "crash: MODE at each of N steps
# (stride S)..."; a failing mode lists "step N: ..." detail lines
crash_row() {
	local f mode=$2 steps stride walked bad line
	f=$(lg "$1")
	steps=$(sed -n 's/^ok - crash: \([0-9]*\) fault points.*/\1/p' "$f" | head -1)
	line=$(grep -E "^(not )?ok - crash: $mode at each" "$f" | head -1)
	stride=$(sed -n 's/.*(stride \([0-9]*\)).*/\1/p' <<<"$line")
	if [ -z "$steps" ]; then
		ROW="| pull | $mode | - | - | did not run ($(missing "$1")) |"
		return
	fi
	stride=${stride:-1}
	walked=$(((steps + stride - 1) / stride))
	bad=0
	if [[ $line != ok* ]]; then
		bad=$(awk -v m="$mode" '/^(not )?ok - /{ on = ($0 ~ "crash: " m " at every") }
			on && /step [0-9]+:/' "$f" | grep -oE 'step [0-9]+:' | sort -u | wc -l)
	fi
	ROW="| pull | $mode | $steps | $walked | $((walked - bad)) |"
	tally "$walked" "$((walked - bad))"
}
# faults.sh: "#   walked push/MODE: N survived: M"
push_row() {
	local mode=$1 w s steps walked f
	f=$(lg faults)
	w=$(sed -n "s/^#   walked push\/$mode: \([0-9]*\) survived: \([0-9]*\).*/\1 \2/p" "$f" |
		head -1)
	steps=$(sed -n "s/.*push fault walk, $mode: [0-9]* of \([0-9]*\) steps.*/\1/p" "$f" |
		head -1)
	if [ -z "$w" ]; then
		ROW="| push | $mode | - | - | did not run ($(missing faults)) |"
		return
	fi
	read -r walked s <<<"$w"
	ROW="| push | $mode | ${steps:-?} | $walked | $s |"
	tally "$walked" "$s"
}
# watch_faults.sh: "#   walked watch-VERB/MODE: W survived: S steps: N initial: A time: T ms
# converged within: C ms"
WATCH_CONV=""
watch_row() {
	local verb=$1 mode=$2 f w walked s steps init conv
	f=$(lg watch_faults)
	w=$(sed -n "s/^#   walked watch-$verb\/$mode: \([0-9]*\) survived: \([0-9]*\) steps: \([0-9]*\) initial: \([0-9]*\).*converged within: \([0-9]*\) ms.*/\1 \2 \3 \4 \5/p" \
		"$f" | head -1)
	if [ -z "$w" ]; then
		ROW="| $verb --watch | $mode | - | - | did not run ($(missing watch_faults)) |"
		return
	fi
	read -r walked s steps init conv <<<"$w"
	ROW="| $verb --watch | $mode | $steps (after $init of the initial change set) | $walked | $s |"
	WATCH_CONV="$WATCH_CONV $verb/$mode ${conv} ms,"
	tally "$walked" "$s"
}

# env_rows: one row per environment-fault case of faults.sh (cases 2-8), with its comments
env_rows() {
	awk '/^(not )?ok - [2-8][a-z]?\. / {
			if (row != "") print row " |"
			res = ($1 == "ok") ? "passed" : "**FAILED**"
			if ($0 ~ /# SKIP/) res = "skipped"
			name = $0; sub(/^(not )?ok - /, "", name); sub(/ # SKIP.*/, "", name)
			gsub(/\|/, "/", name)
			row = "| " name " | " res " |"; note = ""; next }
		/^(not )?ok - / { if (row != "") print row " |"; row = ""; next }
		row != "" && /^#   / && !/^#   time / && !/^#   stderr/ {
			l = $0; sub(/^#   */, "", l); gsub(/\|/, "/", l)
			if (length(l) > 160) l = substr(l, 1, 157) "..."
			row = row " " l "<br>" }
		END { if (row != "") print row " |" }' "$(lg faults)"
}

# suite_totals DIR: "P passed, F failed, N suites" over a tests/run.sh log directory (cmocka's
# PASSED/FAILED lines for unit tests, ok / not ok lines for scripts)
suite_totals() {
	local f p=0 x=0 n=0 a b
	for f in "$1"/*.out; do
		[ -f "$f" ] || continue
		case ${f##*/} in fuzz.out | lint.out | tidy.out) continue ;; esac
		n=$((n + 1))
		if [[ ${f##*/} == test_* ]]; then
			a=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$f" | tail -1)
			b=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$f" | tail -1)
		else
			a=$(grep -c '^ok ' "$f")
			b=$(grep -c '^not ok ' "$f")
		fi
		p=$((p + ${a:-0}))
		x=$((x + ${b:-0}))
	done
	echo "$p passed, $x failed, $n suites"
}
# sanitizer_reports DIR: lines of ASan/UBSan/LSan reports in DIR's logs
sanitizer_reports() {
	cat "$1"/*.out 2>/dev/null | grep -cE 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:'
}

crash_row crash kill; R_PULL_KILL=$ROW
crash_row crash fail; R_PULL_FAIL=$ROW
push_row kill; R_PUSH_KILL=$ROW
push_row fail; R_PUSH_FAIL=$ROW
watch_row push kill; R_WPUSH_KILL=$ROW
watch_row push fail; R_WPUSH_FAIL=$ROW
watch_row pull kill; R_WPULL_KILL=$ROW
watch_row pull fail; R_WPULL_FAIL=$ROW

env_tried=$(count faults '^(not )?ok - [2-8][a-z]?\. ')
env_passed=$(grep -E '^ok - [2-8][a-z]?\. ' "$(lg faults)" | grep -vc '# SKIP')
env_skipped=$(grep -E '^ok - [2-8][a-z]?\. ' "$(lg faults)" | grep -c '# SKIP')
hostile_tried=$(count hostile '^(not )?ok - hostile (sender|client)')
hostile_refused=$(count hostile '^ok - hostile (sender|client)')
hostile_all=$(count hostile '^(not )?ok - ')
hostile_ok=$(count hostile '^ok - ')
vg_runs=$(count valgrind '^(not )?ok - valgrind memcheck: [a-z-]+: ')
vg_clean=$(count valgrind '^ok - valgrind memcheck: [a-z-]+: 0 errors')
vg_skip=$(count valgrind '# SKIP')
fuzz_targets=0 fuzz_execs=0 fuzz_crashes=0
if [ -f build/fuzz/summary.md ]; then
	read -r fuzz_targets fuzz_execs fuzz_crashes < <(awk -F'|' '
		/^\| [a-z]/ && $2 !~ /^ *target *$/ { n++; e += $3; c += ($5 ~ /[0-9]/) ? $5 : 1 }
		END { printf "%d %d %d\n", n, e, c }' build/fuzz/summary.md)
fi
if ! ran lint; then
	lint_res="not run (\`make lint\`)"
elif [ "${RC[lint]}" = 0 ]; then
	lint_res="no findings (cppcheck $(cppcheck --version 2>/dev/null | awk '{ print $2 }'), warning, performance and portability checks, \`--error-exitcode=1\`)"
else
	lint_res="**$(count lint '(error|warning|performance|portability):') findings** (see \`$(lg lint)\`)"
fi
tidy_n=$(count tidy 'warning:|error:')
if ! ran tidy; then
	tidy_res="not run (\`make tidy\`)"
elif [ "${RC[tidy]}" = 0 ] && [ "$tidy_n" = 0 ]; then
	tidy_res="no findings ($(clang-tidy-14 --version 2>/dev/null | grep -m1 -o 'LLVM version [0-9.]*' || echo clang-tidy), checks of \`.clang-tidy\`, warnings as errors, $(grep -c '^tidy: ' "$(lg tidy)") files)"
else
	tidy_res="**$tidy_n findings** (see \`$(lg tidy)\`)"
fi
commit=$(git rev-parse --short HEAD 2>/dev/null)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l)
[ "$dirty" = 0 ] || commit="$commit + $dirty modified files"
if [ "$MODE" = logs ]; then
	how="\`bash tests/reliability.sh --from-logs\` from the logs of CI's run (\`make test\`:"
	how="$how \`$LOG/\`; \`make asan\`: \`$ASAN_LOGS/\`; fuzz, lint, tidy: \`.ci/run\`); the fault"
	how="$how walks are at the suites' default strides (\`bash tests/reliability.sh\` walks every step)"
else
	how="\`bash tests/reliability.sh\` (every suite rerun, full fault walks; raw output in \`$LOG/\`)"
fi

# the summary: the report's first section, and what this script prints
summary() {
	echo "- Failures: ${failed[*]:-none}."
	local nw=()
	ran crash || nw+=(pull)
	ran faults || nw+=(push)
	ran watch_faults || nw+=("push --watch" "pull --watch")
	local nr=""
	[ "${#nw[@]}" = 0 ] || nr=" (not run: $(printf '%s, ' "${nw[@]}" | sed 's/, $//'))"
	echo "- Fault points walked / survived (kill and fail modes; pull, push, push --watch, pull --watch): $WALKED / $SURVIVED$nr."
	if ran faults; then
		echo "- Environment faults: $env_tried tried, $env_passed passed, $env_skipped skipped, $((env_tried - env_passed - env_skipped)) failed."
	else
		echo "- Environment faults: not run ($(missing faults))."
	fi
	if ran hostile; then
		echo "- Hostile inputs: $hostile_tried tried, $hostile_refused refused."
	else
		echo "- Hostile inputs: not run ($(missing hostile))."
	fi
	echo "- Fuzzing: $fuzz_targets targets, $fuzz_execs executions, $fuzz_crashes crashes (${FUZZ_SECONDS} s per target)."
	if [ "$MODE" = logs ] && [ -d "$ASAN_LOGS" ]; then
		echo "- ASan+UBSan (\`make asan\`): $(suite_totals "$ASAN_LOGS"), $(sanitizer_reports "$ASAN_LOGS") sanitizer reports."
	elif ran crash-asan; then
		echo "- ASan+UBSan (crash.sh on build-asan): $(count crash-asan '^ok - ') passed, $(count crash-asan '^not ok - ') failed, $(grep -cE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$(lg crash-asan)") sanitizer reports."
	else
		echo "- ASan+UBSan: not run (\`make asan\`)."
	fi
	if ran valgrind && ! { [ "$vg_skip" -gt 0 ] && [ "$vg_runs" = 0 ]; }; then
		echo "- valgrind memcheck: $vg_clean of $vg_runs runs with 0 errors."
	else
		echo "- valgrind memcheck: not run."
	fi
	echo "- cppcheck: $lint_res."
	echo "- clang-tidy: $tidy_res."
}

{
	echo "# Reliability report"
	echo
	echo "Generated by $how. Do not edit; regenerate it."
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- Commit: $commit"
	echo "- Machine: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
	echo "- Build: \`$BUILD\` (\`$BUILD/faults/xroad-replicate\`: the same code with the test-only fault points, \`-DXR_FAULTS\`)"
	echo "- Tools: $(rsync --version | head -1 | sed 's/  */ /g'), $(valgrind --version 2>/dev/null), $(clang --version | head -1)"
	echo
	echo "## Summary"
	echo
	summary
	echo
	echo "## Crash consistency: fault points walked"
	echo
	echo "The receiver is killed (\`XR_FAULT_MODE=kill\`: \`_exit\` at the point) or gets EIO"
	echo "(\`XR_FAULT_MODE=fail\`) at every counted filesystem step of a realistic X-Road change set"
	echo "(keyconf edit, new .p12, deletions, type changes, new directories, metadata-only changes)."
	echo "Survived = no torn file, DEST exactly the old tree when the fault came before the journal's"
	echo "commit point, the next run converges to the source and leaves no journal or staged file."
	echo "For push the receiver is the forked \`serve\`, which inherits the fault settings."
	echo
	echo "| direction | mode | fault points | walked | survived |"
	echo "|---|---|---:|---:|---:|"
	printf '%s\n' "$R_PULL_KILL" "$R_PULL_FAIL" "$R_PUSH_KILL" "$R_PUSH_FAIL" \
		"$R_WPUSH_KILL" "$R_WPUSH_FAIL" "$R_WPULL_KILL" "$R_WPULL_FAIL"
	echo
	echo "Reproduce: \`bash tests/integration/crash.sh\` (pull),"
	echo "\`FAULT_STRIDE=1 FAULTS_ONLY=1 bash tests/integration/faults.sh\` (push; \`make test\` walks"
	echo "every 5th step plus both sides of the commit point),"
	echo "\`WATCH_FAULT_STRIDE=1 bash tests/integration/watch_faults.sh\` (the watch modes; \`make test\`"
	echo "walks every 5th step plus both sides of the commit point)."
	echo
	echo "The watch rows: a \`push --watch\` / \`pull --watch\` session (the faults build) replicates the"
	echo "tree; after its initial change set the signer edits keyconf.xml (tmp+rename) and writes a"
	echo "new .p12 in place, and the fault hits a step of that second change set (the counter runs"
	echo "from the receiver's start). Survived = nothing torn and DEST the old tree before the commit"
	echo "point while every process is frozen, then the watcher itself recovers: push --watch"
	echo "reconnects to a new serve, a failing pull --watch carries on; a killed pull --watch is"
	echo "followed by a one-shot pull or a restarted pull --watch. Convergence within 20 s, no"
	echo "journal or staged file left, the watcher exits 0 on SIGTERM."
	echo "Slowest convergence after the fault:${WATCH_CONV%,}."
	echo "After an EIO the failed change set is not retried at once: the watcher's next full"
	echo "change set (\`--reconcile\`, 2 s in the test) repairs DEST."
	if ran crash; then
		echo
		echo "crash.sh also SIGKILLs a real pull in the middle of a 96 MB file:"
		echo "$(count crash '^ok - crash: (SIGKILL|the next run after SIGKILL)') of 2 checks passed."
	fi
	echo
	echo "## Environment faults"
	echo
	if ran faults; then
		echo "$env_tried tried, $env_passed passed, $env_skipped skipped, $((env_tried - env_passed - env_skipped)) failed."
	else
		echo "Not run ($(missing faults))."
	fi
	echo "Reproduce: \`bash tests/integration/faults.sh\` (as root; \`FAULTS_ONLY=\"2 5\"\` runs some cases)."
	if ran faults; then
		echo
		echo "| case | result | observed |"
		echo "|---|---|---|"
		env_rows
	fi
	echo
	echo "## Hostile input"
	echo
	ran hostile || echo "Not run ($(missing hostile))."
	echo "$hostile_tried hostile inputs tried (malicious sender against pull, malicious client against"
	echo "serve), $hostile_refused refused as required (non-zero exit, a message, nothing changed"
	echo "inside or outside DEST, no staged file left, memory bounded); $hostile_ok of $hostile_all"
	echo "checks of the script passed. Reproduce: \`bash tests/integration/hostile.sh\`."
	echo
	echo "## Fuzzing"
	echo
	echo "libFuzzer with ASan+UBSan, ${FUZZ_SECONDS} s per target, regression inputs replayed first."
	echo "Reproduce: \`FUZZ_SECONDS=$FUZZ_SECONDS bash tests/fuzz/run.sh\` (or \`make fuzz\`)."
	echo
	if [ -f build/fuzz/summary.md ]; then
		sed -n '/^|/p' build/fuzz/summary.md
	else
		echo "(no build/fuzz/summary.md: see \`$(lg fuzz)\`)"
	fi
	echo
	echo "## Sanitizers and valgrind"
	echo
	echo "- \`make asan\` builds with clang \`-fsanitize=address,undefined\`"
	echo "  (\`-fno-sanitize-recover=undefined\`) and runs the whole suite (unit + integration, but the"
	echo "  packaging and demo scripts) on it; CI runs it on every push. Reproduce: \`make asan\`."
	if [ "$MODE" = logs ] && [ -d "$ASAN_LOGS" ]; then
		echo "- Here (\`$ASAN_LOGS/\`): $(suite_totals "$ASAN_LOGS");"
		echo "  $(sanitizer_reports "$ASAN_LOGS") sanitizer reports."
	fi
	if ran crash-asan; then
		echo "- crash.sh on \`build-asan\` ($(date -u -r "$(lg crash-asan)" '+%Y-%m-%d %H:%M UTC')):"
		echo "  $(count crash-asan '^ok - ') passed, $(count crash-asan '^not ok - ') failed,"
		echo "  $(grep -cE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$(lg crash-asan)") sanitizer reports."
		echo "  Reproduce: \`BUILD=build-asan bash tests/integration/crash.sh\`."
	elif [ "$MODE" = run ] || [ ! -d "$ASAN_LOGS" ]; then
		echo "- Here: no \`build-asan\` tree, not run (\`make asan\`)."
	fi
	if ! ran valgrind; then
		echo "- valgrind memcheck: not run (\`bash tests/integration/valgrind.sh\`)."
	elif [ "$vg_skip" -gt 0 ] && [ "$vg_runs" = 0 ]; then
		echo "- valgrind memcheck: skipped ($(grep -m1 '# SKIP' "$(lg valgrind)" | sed 's/.*# SKIP //'))."
	else
		echo "- valgrind memcheck (\`--leak-check=full --errors-for-leak-kinds=definite"
		echo "  --trace-children=yes\`, both roles: initial pull, delta pull, push): $vg_clean of $vg_runs"
		echo "  runs with 0 errors$([ "$vg_clean" = "$vg_runs" ] && echo ", valgrind errors: 0")."
		echo "  Reproduce: \`bash tests/integration/valgrind.sh\`."
	fi
	echo
	echo "## Static analysis"
	echo
	echo "- \`make lint\`: $lint_res."
	echo "- \`make tidy\`: $tidy_res."
	if [ "$MODE" = logs ] && [ -d "$LOG" ]; then
		echo
		echo "## The regular run"
		echo
		echo "\`make test\` (\`$LOG/\`): $(suite_totals "$LOG"). Reproduce: \`make test\`."
	fi
	echo
	echo "## Run times"
	echo
	echo "| suite | exit | seconds | raw output | written |"
	echo "|---|---:|---:|---|---|"
	for n in crash faults watch_faults hostile valgrind fuzz lint tidy crash-asan; do
		ran "$n" || continue
		echo "| $n | ${RC[$n]} | ${SECS[$n]} | \`${LOGF[$n]}\` | $(date -u -r "${LOGF[$n]}" '+%Y-%m-%d %H:%M UTC') |"
	done
} >"$OUT"
echo "reliability: wrote $OUT" >&2
summary | sed -e 's/^- /reliability: /' -e 's/\*\*//g'
[ "${#failed[@]}" = 0 ]
