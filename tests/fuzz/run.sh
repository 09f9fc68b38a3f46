#!/usr/bin/env bash
# run.sh - builds every tests/fuzz/fuzz_*.c as a libFuzzer binary and runs it for a while.
#
#   sh tests/fuzz/run.sh                 # every target, FUZZ_SECONDS (default 15) each
#   FUZZ_SECONDS=60 FILTER=wire bash tests/fuzz/run.sh
#
# Build: clang -fsanitize=fuzzer,address,undefined; the product sources (engine/*.c,
# transport/*.c, cli/*.c except cli/main.c) are compiled once into build/fuzz/obj with
# -fsanitize=fuzzer-no-link and linked into each target, so a target may call anything.
# FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION is defined (libFuzzer's convention): the journal
# parser then skips its checksums so the fuzzer reaches the field checks behind them.
#
# Each target first replays its regression inputs (tests/fuzz/regress/NAME/, former crashes,
# see tests/fuzz/README.md), then fuzzes a copy of tests/fuzz/corpus/NAME/ (NAME is the file
# name without "fuzz_") in build/fuzz/corpus/NAME/ for FUZZ_SECONDS.  Prints one line per
# target, "ok - fuzz NAME: N execs" or "not ok - fuzz NAME: ..." with the crash file (kept in
# build/fuzz/artifacts/), and writes build/fuzz/summary.md.  A target that does not build is
# reported ("not ok - fuzz NAME: does not build") and skipped.  Exits 1 when any target
# failed.
cd "$(dirname "$0")/../.." || exit 1
SECONDS_EACH=${FUZZ_SECONDS:-15}
OUT=${FUZZ_OUT:-build/fuzz}
CC=${FUZZ_CC:-clang}
FILTER=${FILTER:-}
CFLAGS_F="-std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -Iinclude
	-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -DXR_VERSION=\"fuzz\""
LIBS="-lrsync -lssh2 -lxxhash -lcrypto -lz -linih"

command -v "$CC" >/dev/null || { echo "not ok - fuzz: $CC not installed"; exit 1; }
mkdir -p "$OUT/obj" "$OUT/corpus" "$OUT/artifacts" "$OUT/log" || exit 1

# --- the product library, instrumented ---------------------------------------------------
objs=()
broken_src=()
for src in engine/*.c transport/*.c cli/*.c; do
	[ "$src" = cli/main.c ] && continue
	obj=$OUT/obj/$(echo "${src%.c}" | tr / _).o
	if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find include -newer "$obj" \
		-name '*.h' 2>/dev/null | head -1)" ]; then
		# shellcheck disable=SC2086
		if ! $CC $CFLAGS_F -fsanitize=fuzzer-no-link,address,undefined -c "$src" \
			-o "$obj" 2>"$OUT/log/$(basename "$obj" .o).build"; then
			rm -f "$obj"
			broken_src+=("$src")
			continue
		fi
	fi
	objs+=("$obj")
done
for src in "${broken_src[@]}"; do
	echo "# $src does not compile (see $OUT/log/); targets needing it will not link"
done

# --- targets --------------------------------------------------------------------------------
summary=$OUT/summary.md
{
	echo "# Fuzzing summary ($(date -u '+%Y-%m-%d %H:%M UTC'), ${SECONDS_EACH} s per target)"
	echo
	echo "| target | execs | seconds | crashes | corpus | note |"
	echo "|---|---:|---:|---:|---:|---|"
} >"$summary"

failed=0
for f in tests/fuzz/fuzz_*.c; do
	[ -f "$f" ] || continue
	name=$(basename "$f" .c)
	short=${name#fuzz_}
	case "$short" in *"$FILTER"*) ;; *) continue ;; esac
	bin=$OUT/$name
	blog=$OUT/log/$name.build
	# shellcheck disable=SC2086
	if ! $CC $CFLAGS_F -fsanitize=fuzzer,address,undefined -o "$bin" "$f" "${objs[@]}" \
		$LIBS >"$blog" 2>&1; then
		echo "not ok - fuzz $short: does not build ($blog)"
		sed 's/^/#   /' "$blog" | grep -m5 -i 'error'
		echo "| $short | - | - | - | - | does not build |" >>"$summary"
		failed=$((failed + 1))
		continue
	fi
	art=$OUT/artifacts/$short-
	rlog=$OUT/log/$name.run

	# former crashes must stay fixed: each is run once
	regress=()
	if [ -d "tests/fuzz/regress/$short" ]; then
		while IFS= read -r -d '' r; do regress+=("$r"); done \
			< <(find "tests/fuzz/regress/$short" -type f -print0 | sort -z)
	fi
	if [ "${#regress[@]}" -gt 0 ]; then
		if ! "$bin" -close_fd_mask=3 -timeout=10 -artifact_prefix="$art" \
			"${regress[@]}" >"$rlog.regress" 2>&1; then
			echo "not ok - fuzz $short: a regression input fails again ($rlog.regress)"
			grep -m3 -E 'ERROR|SUMMARY|Running:' "$rlog.regress" | sed 's/^/#   /'
			echo "| $short | - | - | regression | - | a former crash is back |" \
				>>"$summary"
			failed=$((failed + 1))
			continue
		fi
	fi

	corpus=$OUT/corpus/$short
	mkdir -p "$corpus"
	[ -d "tests/fuzz/corpus/$short" ] && cp -n tests/fuzz/corpus/"$short"/* "$corpus"/ \
		2>/dev/null
	[ "${#regress[@]}" -gt 0 ] && cp -n "${regress[@]}" "$corpus"/ 2>/dev/null
	start=$(date +%s)
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$art" \
		"$corpus" >"$rlog" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$rlog" | tail -1)
	[ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$rlog" | tail -1)
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$rlog" | tail -1)
	execs=${execs:-0}
	ncorp=$(find "$corpus" -type f | wc -l)
	crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$rlog" | tail -1)
	if [ "$rc" = 0 ] && [ -z "$crash" ]; then
		echo "ok - fuzz $short: $execs execs in $took s, corpus $ncorp"
		echo "| $short | $execs | $took | 0 | $ncorp | |" >>"$summary"
	else
		kind=$(grep -m1 -oE 'ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer)[^(]*' \
			"$rlog")
		[ -n "$kind" ] || kind=$(grep -m1 -E 'runtime error|deadly signal' "$rlog")
		echo "not ok - fuzz $short: exit $rc after $execs execs: ${kind:-see $rlog}"
		echo "#   crash file: ${crash:-none written}; log: $rlog"
		echo "#   reproduce: $bin ${crash:-}"
		echo "| $short | $execs | $took | 1 | $ncorp | ${kind:-exit $rc}: \`${crash:-}\` |" \
			>>"$summary"
		failed=$((failed + 1))
	fi
done
echo "# summary: $summary"
[ "$failed" = 0 ]
