#!/usr/bin/env bash
# reliability.sh - runs the reliability suites and writes tests/RELIABILITY.md from their output.
#
#   bash tests/reliability.sh            # as root (mounts, namespaces, sshd, users)
#   FUZZ_SECONDS=60 bash tests/reliability.sh
#
# Runs, on the plain build (BUILD, default build; `make build-tests` first):
#   tests/integration/crash.sh     fault walk for pull (every fault point, kill and fail modes)
#   tests/integration/faults.sh    FAULT_STRIDE=1: the full fault walk for push + environment faults
#   tests/integration/hostile.sh   hostile senders and clients
#   tests/integration/valgrind.sh  memcheck of both roles
#   tests/fuzz/run.sh              libFuzzer targets, FUZZ_SECONDS (default 10) each
#   make lint                      cppcheck
#   crash.sh on build-asan         when build-asan/faults/xroad-replicate exists (ASan+UBSan)
# The raw output of each goes to build/reliability/NAME.out; the figures in the report are
# parsed from there.  Exits 1 when any suite reported a failure (the report is written anyway).
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
LOG=$BUILD/reliability
OUT=tests/RELIABILITY.md
mkdir -p "$LOG" || exit 1
export LC_ALL=C
failed=()

# run NAME CMD...: runs CMD with its output in $LOG/NAME.out; records rc and seconds
declare -A RC SECS
run() {
	local name=$1 t0
	shift
	t0=$(date +%s)
	echo "reliability: $name ..." >&2
	"$@" >"$LOG/$name.out" 2>&1
	RC[$name]=$?
	SECS[$name]=$(($(date +%s) - t0))
	[ "${RC[$name]}" = 0 ] || failed+=("$name")
	echo "reliability: $name: exit ${RC[$name]} (${SECS[$name]} s)" >&2
}

# count NAME REGEX: lines of NAME's output matching REGEX
count() {
	grep -cE -- "$2" "$LOG/$1.out"
}

run crash env BUILD="$BUILD" bash tests/integration/crash.sh
run faults env BUILD="$BUILD" FAULT_STRIDE=1 bash tests/integration/faults.sh
run hostile env BUILD="$BUILD" bash tests/integration/hostile.sh
run valgrind env BUILD="$BUILD" bash tests/integration/valgrind.sh
run fuzz env FUZZ_SECONDS="$FUZZ_SECONDS" bash tests/fuzz/run.sh
run lint make --no-print-directory lint
ASAN_RAN=0
if [ -x build-asan/faults/xroad-replicate ] && [ -x build-asan/xroad-replicate ]; then
	run crash-asan env BUILD=build-asan bash tests/integration/crash.sh
	ASAN_RAN=1
fi

# --- figures ---------------------------------------------------------------------------------
# crash.sh: "crash: N fault points, commit point at step C", "crash: MODE at each of N steps
# (stride S)..."; a failing mode lists "step N: ..." detail lines
crash_row() {
	local f=$1 mode=$2 steps stride walked bad line
	steps=$(sed -n 's/^ok - crash: \([0-9]*\) fault points.*/\1/p' "$LOG/$f.out" | head -1)
	line=$(grep -E "^(not )?ok - crash: $mode at each" "$LOG/$f.out" | head -1)
	stride=$(sed -n 's/.*(stride \([0-9]*\)).*/\1/p' <<<"$line")
	[ -n "$steps" ] || { echo "| pull | $mode | - | - | did not run (see $LOG/$f.out) |"; return; }
	stride=${stride:-1}
	walked=$(((steps + stride - 1) / stride))
	if [[ $line == ok* ]]; then
		echo "| pull | $mode | $steps | $walked | $walked |"
	else
		bad=$(awk -v m="$mode" '/^(not )?ok - /{ on = ($0 ~ "crash: " m " at every") }
			on && /step [0-9]+:/' "$LOG/$f.out" | grep -oE 'step [0-9]+:' | sort -u | wc -l)
		echo "| pull | $mode | $steps | $walked | $((walked - bad)) |"
	fi
}
# faults.sh: "#   walked push/MODE: N survived: M"
push_row() {
	local mode=$1 w s steps
	w=$(sed -n "s/^#   walked push\/$mode: \([0-9]*\) survived: \([0-9]*\).*/\1 \2/p" \
		"$LOG/faults.out" | head -1)
	steps=$(sed -n "s/.*push fault walk, $mode: [0-9]* of \([0-9]*\) steps.*/\1/p" \
		"$LOG/faults.out" | head -1)
	if [ -z "$w" ]; then
		echo "| push | $mode | - | - | did not run (see $LOG/faults.out) |"
	else
		read -r walked s <<<"$w"
		echo "| push | $mode | ${steps:-?} | $walked | $s |"
	fi
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
		END { if (row != "") print row " |" }' "$LOG/faults.out"
}

env_tried=$(count faults '^(not )?ok - [2-8][a-z]?\. ')
env_passed=$(grep -E '^ok - [2-8][a-z]?\. ' "$LOG/faults.out" | grep -vc '# SKIP')
env_skipped=$(grep -E '^ok - [2-8][a-z]?\. ' "$LOG/faults.out" | grep -c '# SKIP')
hostile_tried=$(count hostile '^(not )?ok - hostile (sender|client)')
hostile_refused=$(count hostile '^ok - hostile (sender|client)')
hostile_all=$(count hostile '^(not )?ok - ')
hostile_ok=$(count hostile '^ok - ')
vg_runs=$(count valgrind '^(not )?ok - valgrind memcheck: [a-z-]+: ')
vg_clean=$(count valgrind '^ok - valgrind memcheck: [a-z-]+: 0 errors')
vg_skip=$(count valgrind '# SKIP')
if [ "${RC[lint]}" = 0 ]; then
	lint_res="no findings (cppcheck $(cppcheck --version 2>/dev/null | awk '{ print $2 }'), warning, performance and portability checks, \`--error-exitcode=1\`)"
else
	lint_res="**$(grep -cE '(error|warning|performance|portability):' "$LOG/lint.out") findings** (see \`$LOG/lint.out\`)"
fi
commit=$(git rev-parse --short HEAD 2>/dev/null)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l)
[ "$dirty" = 0 ] || commit="$commit + $dirty modified files"

{
	echo "# Reliability report"
	echo
	echo "Generated by \`bash tests/reliability.sh\` (do not edit; rerun it)."
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- Commit: $commit"
	echo "- Machine: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
	echo "- Build: \`$BUILD\` (\`$BUILD/faults/xroad-replicate\`: the same code with the test-only fault points, \`-DXR_FAULTS\`)"
	echo "- Tools: $(rsync --version | head -1 | sed 's/  */ /g'), $(valgrind --version 2>/dev/null), $(clang --version | head -1)"
	echo
	echo "Failures: ${failed[*]:-none}."
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
	crash_row crash kill
	crash_row crash fail
	push_row kill
	push_row fail
	echo
	echo "Reproduce: \`bash tests/integration/crash.sh\` (pull),"
	echo "\`FAULT_STRIDE=1 FAULTS_ONLY=1 bash tests/integration/faults.sh\` (push; the default stride"
	echo "of 5 plus both sides of the commit point keeps \`make test\` fast)."
	echo "crash.sh also SIGKILLs a real pull in the middle of a 96 MB file:"
	echo "$(grep -cE '^ok - crash: (SIGKILL|the next run after SIGKILL)' "$LOG/crash.out") of 2 checks passed."
	echo
	echo "## Environment faults"
	echo
	echo "$env_tried tried, $env_passed passed, $env_skipped skipped, $((env_tried - env_passed - env_skipped)) failed."
	echo "Reproduce: \`bash tests/integration/faults.sh\` (as root; \`FAULTS_ONLY=\"2 5\"\` runs some cases)."
	echo
	echo "| case | result | observed |"
	echo "|---|---|---|"
	env_rows
	echo
	echo "## Hostile input"
	echo
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
		echo "(no build/fuzz/summary.md: see \`$LOG/fuzz.out\`)"
	fi
	echo
	echo "## Sanitizers and valgrind"
	echo
	echo "- \`make asan\` builds with clang \`-fsanitize=address,undefined\`"
	echo "  (\`-fno-sanitize-recover=undefined\`) and runs the whole suite (unit + integration, but the"
	echo "  packaging and demo scripts) on it; CI runs it on every push."
	if [ "$ASAN_RAN" = 1 ]; then
		echo "- Here: crash.sh on \`build-asan\` (binary of $(date -u -r build-asan/xroad-replicate '+%Y-%m-%d %H:%M UTC')):"
		echo "  $(count crash-asan '^ok - ') passed, $(count crash-asan '^not ok - ') failed,"
		echo "  $(grep -c 'Sanitizer' "$LOG/crash-asan.out") sanitizer reports."
		echo "  Reproduce: \`make asan\` (all), \`BUILD=build-asan bash tests/integration/crash.sh\`."
	else
		echo "- Here: no \`build-asan\` tree, not run (\`make asan\`)."
	fi
	if [ "$vg_skip" -gt 0 ] && [ "$vg_runs" = 0 ]; then
		echo "- valgrind memcheck: skipped ($(grep -m1 '# SKIP' "$LOG/valgrind.out" | sed 's/.*# SKIP //'))."
	else
		echo "- valgrind memcheck (\`--leak-check=full --errors-for-leak-kinds=definite"
		echo "  --trace-children=yes\`, both roles: initial pull, delta pull, push): $vg_clean of $vg_runs"
		echo "  runs with 0 errors$([ "$vg_clean" = "$vg_runs" ] && echo ", valgrind errors: 0")."
		echo "  Reproduce: \`bash tests/integration/valgrind.sh\`."
	fi
	echo
	echo "## Static analysis"
	echo
	echo "\`make lint\`: $lint_res."
	echo
	echo "## Run times"
	echo
	echo "| suite | exit | seconds | raw output |"
	echo "|---|---:|---:|---|"
	for n in crash faults hostile valgrind fuzz lint crash-asan; do
		[ -n "${RC[$n]:-}" ] || continue
		echo "| $n | ${RC[$n]} | ${SECS[$n]} | \`$LOG/$n.out\` |"
	done
} >"$OUT"
echo "reliability: wrote $OUT" >&2
[ "${#failed[@]}" = 0 ]
