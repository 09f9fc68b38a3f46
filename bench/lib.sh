# bench/lib.sh - helpers for bench/run.sh (sourced; bash).
# shellcheck shell=bash disable=SC2034,SC2016
#
# Raw results are one TSV line per measured run (columns: see BENCH_RAW_HEADER); every figure in
# a report is computed from those lines and nothing else. New columns go at the end, so the
# index of every existing column (used by number below, in run.sh and watch.sh) never shifts.

BENCH_RAW_HEADER=$(printf '%s\t' round scenario tool exit verify wall_s cpu_s tree_rss_kb \
	client_rss_kb server_rss_kb client_cpu_s server_cpu_s nprocs sent received load1 \
	remote_cpu_s sum_rss_kb)
BENCH_RAW_HEADER=${BENCH_RAW_HEADER%$'\t'}

# bench_msg TEXT...: progress line on stderr
bench_msg() {
	printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

# bench_die TEXT...: error and exit 1
bench_die() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

# bench_read_ru FILE: load the key=value pairs of a rusage output line into the associative
# array RU (declared by the caller); no process is spawned
bench_read_ru() {
	local line="" kv
	RU=()
	[ -r "$1" ] && read -r line <"$1"
	for kv in $line; do
		RU[${kv%%=*}]=${kv#*=}
	done
}

# bench_parse_bytes FILE: "SENT RECEIVED" from the last rsync-style summary line in FILE
# ("sent 1,234 bytes  received 56 bytes ..." as printed by --stats and written by --log-file),
# or "- -" when there is none (one line; bash only, no process spawned).
bench_parse_bytes() {
	local l sent=- recv=- re='sent ([0-9,.]+) bytes +received ([0-9,.]+) bytes'
	if [ -r "$1" ]; then
		while IFS= read -r l || [ -n "$l" ]; do
			if [[ $l =~ $re ]]; then
				sent=${BASH_REMATCH[1]//,/}
				recv=${BASH_REMATCH[2]//,/}
			fi
		done <"$1"
	fi
	printf '%s %s\n' "$sent" "$recv"
}

# bench_table RAW: every statistic the report needs, in one pass over the raw TSV. Only
# successful runs (exit 0, verify ok) count; "-" and negative values are left out. Prints
# tab-separated lines:
#   C SCENARIO COLUMN CELL_RSYNC CELL_OURS RATIO MEDIAN_RSYNC MEDIAN_OURS
#       CELL = "median [min–max]" formatted for the column ("-" without data); RATIO =
#       median(ours) / median(rsync) with 2 decimals, "-" when either is missing or rsync's is 0
#   R SCENARIO TOOL "OK/TOTAL ok" plus " (failed: exit=N/verify=X,...)" when some failed
# Columns formatted: 6 7 17 (s, 3 decimals), 9 10 18 (kB -> MiB), 13 (count), 14 15 (bytes).
bench_table() {
	awk -F'\t' '
	function fmt(v, c) {
		if (c == 6 || c == 7 || c == 17) return sprintf("%.3f", v)
		if (c == 9 || c == 10 || c == 18) return sprintf("%.1f", v / 1024)
		if (c == 13) return sprintf("%d", v)
		if (v < 1024) return sprintf("%d B", v)
		if (v < 1048576) return sprintf("%.1f KiB", v / 1024)
		if (v < 1073741824) return sprintf("%.1f MiB", v / 1048576)
		return sprintf("%.2f GiB", v / 1073741824)
	}
	# stat(k): sets MED, MIN, MAX, N for key k (values sorted by insertion sort)
	function stat(k,   i, j, n, t, v) {
		N = cnt[k] + 0
		if (N == 0) return
		for (i = 1; i <= N; i++) v[i] = val[k, i]
		for (i = 2; i <= N; i++) {
			t = v[i]
			for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
			v[j + 1] = t
		}
		MED = (N % 2) ? v[(N + 1) / 2] : (v[N / 2] + v[N / 2 + 1]) / 2
		MIN = v[1]; MAX = v[N]
	}
	function cell(k, c) {
		stat(k)
		if (N == 0) return "-"
		if (N == 1 || MIN == MAX) return fmt(MED, c)
		return fmt(MED, c) " [" fmt(MIN, c) "–" fmt(MAX, c) "]"
	}
	NR == 1 { next }
	{
		k = $2 SUBSEP $3
		if (!(k in total)) total[k] = 0
		total[k]++
		if (!($2 in seen)) { seen[$2] = 1; order[++ns] = $2 }
		if ($4 != 0 || $5 != "ok") {
			fails[k] = fails[k] (fails[k] == "" ? "" : ",") "exit=" $4 "/verify=" $5
			next
		}
		okc[k]++
		for (c = 6; c <= 18; c++) {
			if (c == 16 || $c == "") continue
			if ($c == "-" || $c < 0) continue
			kk = $2 SUBSEP $3 SUBSEP c
			val[kk, ++cnt[kk]] = $c + 0
		}
	}
	END {
		split("6 7 9 10 13 14 15 17 18", cols, " ")
		for (i = 1; i <= ns; i++) {
			s = order[i]
			for (ci = 1; ci <= 9; ci++) {
				c = cols[ci]
				ca = cell(s SUBSEP "rsync" SUBSEP c, c); stat(s SUBSEP "rsync" SUBSEP c)
				ma = N ? MED : "-"
				cb = cell(s SUBSEP "ours" SUBSEP c, c); stat(s SUBSEP "ours" SUBSEP c)
				mb = N ? MED : "-"
				r = (ma == "-" || mb == "-" || ma == 0) ? "-" : sprintf("%.2f", mb / ma)
				printf "C\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s, c, ca, cb, r, ma, mb
			}
			split("rsync ours", tools, " ")
			for (ti = 1; ti <= 2; ti++) {
				k = s SUBSEP tools[ti]
				t = sprintf("%d/%d ok", okc[k], total[k])
				if (fails[k] != "") t = t " (failed: " fails[k] ")"
				printf "R\t%s\t%s\t%s\n", s, tools[ti], t
			}
		}
	}' "$1"
}

# bench_machine: Markdown lines describing this machine
bench_machine() {
	local cpu fs
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p) || cpu=
	[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | sed -n 1p) ||
		cpu=
	fs=$(df -PT "$1" 2>/dev/null | awk 'NR == 2 { print $2 " (" $1 ")" }') || fs=
	printf -- '- CPU: %s, nproc %s\n' "${cpu:-unknown}" "$(nproc)"
	printf -- '- kernel: %s %s\n' "$(uname -sr)" "$(uname -m)"
	printf -- '- memory (`free -g`):\n\n'
	free -g | sed 's/^/      /'
	printf '\n- work directory filesystem: %s\n' "${fs:-unknown}"
}

# bench_git_rev: short commit of the checkout, "-dirty" appended when it has local changes
# (outside bench/results/, which the run itself writes to); read-only (no index refresh)
bench_git_rev() {
	local rev
	rev=$(git rev-parse --short HEAD 2>/dev/null) || {
		echo "none (no commit yet)"
		return
	}
	if [ -n "$(git --no-optional-locks status --porcelain -- . ':!bench/results' 2>/dev/null)" ]; then
		rev="$rev-dirty"
	fi
	echo "$rev"
}

# ---------------------------------------------------------------------------------------------
# SSH scenarios, on top of tests/lib/sshd.sh (a private OpenSSH sshd on 127.0.0.1; users xroad
# = the client, xroad-slave = the server account, as in the guide IG-XLB §5).
#   bench_ssh_ready ROOT BIN   root only: sshd_start, install BIN (the binary under test) where
#                        xroad-slave can run it (BENCH_SSH_BIN, passed as --rsync-path);
#                        returns 0 when SSH runs are possible, else sets BENCH_SSH_NOTE
#   bench_ssh_spec PATH  the remote form of a local PATH (xroad-slave@127.0.0.1:PATH)
#   bench_ssh_rsh [PORT [KNOWN_HOSTS]]
#                        the guide's -e value "ssh -o ConnectTimeout=5" plus port, key and
#                        known_hosts of the test sshd (or of the relay in front of it)
#   bench_as_client CMD... runs CMD as user xroad: setpriv execs, so the measured process is
#                        the tool itself (no runuser/su parent in between)
#   bench_relay_start DIR  starts bench/relay (compiled to DIR) in front of sshd; sets
#                        BENCH_RELAY_PORT, BENCH_RELAY_KH (known_hosts for that port)
#   bench_relay_stop FILE  stops it; FILE gets "sent N bytes  received N bytes  connections K"
#   bench_sshd_cpu       CPU (s, user+sys) of every sshd session process reaped so far: the
#                        cutime+cstime of the sshd listener, which waits for its per-connection
#                        children, which wait for theirs (privsep, the remote rsync or serve)
#   bench_sshd_idle      waits (<= 3 s) until the listener has no child left, i.e. the last
#                        session's CPU has been added to bench_sshd_cpu
#   bench_ssh_stop       sshd_stop
BENCH_SSH_ON=0
BENCH_RELAY_PID=

bench_ssh_ready() {
	local root=$1 bin=$2 rc=0
	if [ "$(id -u)" != 0 ]; then
		BENCH_SSH_NOTE="needs root (sshd on 127.0.0.1, users xroad and xroad-slave)"
		return 1
	fi
	if [ ! -r "$root/tests/lib/sshd.sh" ]; then
		BENCH_SSH_NOTE="tests/lib/sshd.sh is not present"
		return 1
	fi
	# shellcheck source=/dev/null
	. "$root/tests/lib/sshd.sh"
	set +eu +o pipefail
	sshd_start >"${BENCH_WORK_DIR:-/tmp}/sshd_start.log" 2>&1 || rc=$?
	set -eu -o pipefail
	if [ "$rc" != 0 ]; then
		BENCH_SSH_NOTE="sshd_start failed: $(tail -n 2 "${BENCH_WORK_DIR:-/tmp}/sshd_start.log")"
		return 1
	fi
	BENCH_SSH_ON=1
	BENCH_SSH_BIN=$SSHD_BIN_DIR/$(basename "$bin")
	install -m 0755 "$bin" "$BENCH_SSH_BIN"
	return 0
}

bench_ssh_spec() {
	printf '%s@127.0.0.1:%s\n' "$SSHD_USER" "$1"
}

bench_ssh_rsh() {
	printf 'ssh -o ConnectTimeout=5 -p %s -i %s -o UserKnownHostsFile=%s\n' \
		"${1:-$SSHD_PORT}" "$CLIENT_KEY" "${2:-$KNOWN_HOSTS}"
}

bench_as_client() {
	setpriv --reuid="$SSHD_CLIENT_USER" --regid=xroad --init-groups \
		env -u SSH_AUTH_SOCK HOME="$(getent passwd "$SSHD_CLIENT_USER" | cut -d: -f6)" "$@"
}

bench_relay_start() {
	local dir=$1 i
	if [ ! -x "$dir/relay" ] || [ "$BENCH/relay.c" -nt "$dir/relay" ]; then
		cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$dir/relay" "$BENCH/relay.c" ||
			bench_die "cannot compile bench/relay.c"
	fi
	rm -f "$dir/relay.port" "$dir/relay.out"
	"$dir/relay" -c "$SSHD_PORT" -p "$dir/relay.port" -o "$dir/relay.out" </dev/null &
	BENCH_RELAY_PID=$!
	for i in $(seq 1 100); do
		[ -s "$dir/relay.port" ] && break
		sleep 0.02
	done
	BENCH_RELAY_PORT=$(cat "$dir/relay.port") || bench_die "relay did not start"
	BENCH_RELAY_KH=$SSHD_CLIENT_DIR/known_hosts_relay
	sed "s/^\[127\.0\.0\.1\]:$SSHD_PORT /[127.0.0.1]:$BENCH_RELAY_PORT /" "$KNOWN_HOSTS" \
		>"$BENCH_RELAY_KH"
	chown "$SSHD_CLIENT_USER:xroad" "$BENCH_RELAY_KH"
	chmod 0600 "$BENCH_RELAY_KH"
}

bench_relay_stop() {
	[ -n "$BENCH_RELAY_PID" ] || return 0
	kill -TERM "$BENCH_RELAY_PID" 2>/dev/null || true
	wait "$BENCH_RELAY_PID" 2>/dev/null || true
	BENCH_RELAY_PID=
	cp "$(dirname "$1")/relay.out" "$1" 2>/dev/null || : >"$1"
}

bench_sshd_cpu() {
	local st
	st=$(cat "/proc/$SSHD_PID/stat")
	st=${st##*) }	# fields from 3 on: cutime, cstime are fields 16, 17 -> 14th, 15th here
	# shellcheck disable=SC2086
	set -- $st
	awk -v u="${14}" -v s="${15}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", (u + s) / hz }'
}

bench_sshd_idle() {
	local i c
	for i in $(seq 1 150); do
		c=$(cat /proc/"$SSHD_PID"/task/*/children 2>/dev/null)
		[ -z "${c// /}" ] && return 0
		sleep 0.02
	done
	return 1
}

bench_ssh_stop() {
	[ -z "$BENCH_RELAY_PID" ] || kill -TERM "$BENCH_RELAY_PID" 2>/dev/null || true
	if [ "$BENCH_SSH_ON" = 1 ]; then
		set +eu
		sshd_stop
		set -eu
		BENCH_SSH_ON=0
	fi
}
