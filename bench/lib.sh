# bench/lib.sh - helpers for bench/run.sh (sourced; bash).
# shellcheck shell=bash disable=SC2034,SC2016
#
# Raw results are one TSV line per measured run (columns: see BENCH_RAW_HEADER); every figure in
# a report is computed from those lines and nothing else.

BENCH_RAW_HEADER=$(printf '%s\t' round scenario tool exit verify wall_s cpu_s tree_rss_kb \
	client_rss_kb server_rss_kb client_cpu_s server_cpu_s nprocs sent received load1)
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
# Columns formatted: 6 7 (s, 3 decimals), 9 10 (kB -> MiB), 13 (count), 14 15 (bytes).
bench_table() {
	awk -F'\t' '
	function fmt(v, c) {
		if (c == 6 || c == 7) return sprintf("%.3f", v)
		if (c == 9 || c == 10) return sprintf("%.1f", v / 1024)
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
		for (c = 6; c <= 15; c++) {
			if ($c == "-" || $c < 0) continue
			kk = $2 SUBSEP $3 SUBSEP c
			val[kk, ++cnt[kk]] = $c + 0
		}
	}
	END {
		split("6 7 9 10 13 14 15", cols, " ")
		for (i = 1; i <= ns; i++) {
			s = order[i]
			for (ci = 1; ci <= 7; ci++) {
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

# bench_git_rev: short commit of the checkout, "-dirty" appended when it has local changes;
# read-only (no index refresh)
bench_git_rev() {
	local rev
	rev=$(git rev-parse --short HEAD 2>/dev/null) || {
		echo "none (no commit yet)"
		return
	}
	if [ -n "$(git --no-optional-locks status --porcelain 2>/dev/null)" ]; then
		rev="$rev-dirty"
	fi
	echo "$rev"
}

# ---------------------------------------------------------------------------------------------
# SSH scenarios (pending). run.sh skips scenarios whose transport is "ssh" unless
# bench_ssh_ready succeeds. To wire them up (tests/lib/sshd.sh provides the server):
#   bench_ssh_ready      source tests/lib/sshd.sh and sshd_start (loopback sshd, users xroad /
#                        xroad-slave as in the guide; exports SSHD_PORT, SSHD_USER, CLIENT_KEY,
#                        KNOWN_HOSTS, SSH_OPTS); return 0 when SSH runs are possible. SRC must
#                        be readable by $SSHD_USER; runs should go through sshd_as_client, and
#                        DEST must then be writable by the client user.
#   bench_ssh_spec PATH  print the remote form of a local PATH ($SSHD_USER@127.0.0.1:PATH)
#   bench_ssh_rsh        print the -e/--rsh value for both tools ("ssh $SSH_OPTS -o
#                        ConnectTimeout=5", as in the guide); wrap it with bench_relay_rsh to
#                        count the bytes on the wire.
#   bench_relay_rsh RSH FILE
#                        print an --rsh value that runs RSH through a byte-counting relay and
#                        writes "sent N bytes  received N bytes" (client's view) to FILE, which
#                        run.sh then reads with bench_parse_bytes like any --stats output. Both
#                        tools must use the same relay so the counts are comparable (with the
#                        built-in libssh2 transport of xroad-replicate the relay has to sit on
#                        the TCP path instead, e.g. a counting TCP forwarder in front of sshd).
#   bench_ssh_stop       sshd_stop.
# For ssh runs the server side runs under sshd, not as the client's child: rusage then sees
# the client only (server RSS/CPU would need sampling the sshd session's processes, e.g. with
# sshd_session_pids). Until this is done the SSH scenarios report "not run" and no numbers.
bench_ssh_ready() {
	BENCH_SSH_NOTE="SSH transport not wired into the benchmark yet"
	BENCH_SSH_NOTE+=" (bench_ssh_* hooks in bench/lib.sh, on top of tests/lib/sshd.sh)"
	return 1
}

bench_ssh_spec() {
	bench_die "bench_ssh_spec: SSH scenarios are not implemented yet"
}

bench_ssh_rsh() {
	bench_die "bench_ssh_rsh: SSH scenarios are not implemented yet"
}

bench_relay_rsh() {
	bench_die "bench_relay_rsh: the byte-counting relay is not implemented yet"
}

bench_ssh_stop() {
	:
}
