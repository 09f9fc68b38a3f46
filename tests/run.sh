#!/bin/sh
# Runs the unit tests (cmocka) and the integration scripts, and prints the
# closing line "N passed, N failed".  Integration scripts report one line per
# case: "ok - NAME" or "not ok - NAME" (TAP style).
# ONLY=unit|integration limits the run; FILTER=substring picks scripts;
# SKIP="name ..." leaves integration scripts out (the sanitizer pass skips the
# package build and the demo, which run no code the other suites do not).
# Each suite's output stays in $BUILD/test-logs/NAME.out (TEST_LOGS=dir moves it), a script's
# with a last line "# log: exit RC in S s"; tests/reliability.sh --from-logs reads them.
BUILD=${BUILD:-build}
ONLY=${ONLY:-}
pass=0
fail=0
failed_names=""
log=${TEST_LOGS:-$BUILD/test-logs}
mkdir -p "$log" || exit 1

if [ "$ONLY" != integration ]; then
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		case "$name" in *"$FILTER"*) ;; *) continue ;; esac
		"$t" >"$log/$name.out" 2>&1
		rc=$?
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log/$name.out" | tail -1)
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log/$name.out" | tail -1)
		p=${p:-0}
		f=${f:-0}
		if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
		pass=$((pass + p))
		fail=$((fail + f))
		if [ "$f" != 0 ]; then
			failed_names="$failed_names $name"
			cat "$log/$name.out"
		fi
		echo "unit $name: $p passed, $f failed"
	done
fi

if [ "$ONLY" != unit ]; then
	for s in tests/integration/*.sh; do
		[ -f "$s" ] || continue
		name=$(basename "$s" .sh)
		case "$name" in *"$FILTER"*) ;; *) continue ;; esac
		case " ${SKIP:-} " in *" $name "*) echo "integration $name: skipped (SKIP)"; continue ;; esac
		start=$(date +%s)
		# a hung script fails (exit 124) instead of hanging the whole run
		BUILD="$BUILD" timeout --kill-after=15 "${SCRIPT_TIMEOUT:-900}" bash "$s" \
			>"$log/$name.out" 2>&1
		rc=$?
		p=$(grep -c '^ok ' "$log/$name.out")
		f=$(grep -c '^not ok ' "$log/$name.out")
		if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
			f=1
			echo "not ok - $name exited $rc" >>"$log/$name.out"
		fi
		echo "# log: exit $rc in $(($(date +%s) - start)) s" >>"$log/$name.out"
		pass=$((pass + p))
		fail=$((fail + f))
		if [ "$f" != 0 ]; then
			failed_names="$failed_names $name"
			grep -v '^ok ' "$log/$name.out" | tail -60
		fi
		echo "integration $name: $p passed, $f failed ($(($(date +%s) - start)) s)"
	done
fi

[ -n "$failed_names" ] && echo "failed:$failed_names (logs in $log)"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
