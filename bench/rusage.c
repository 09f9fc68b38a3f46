/*
 * rusage - run a command and report what it cost: wall time, CPU time and peak RSS, for the
 * command itself (the "client") and for every process it forks (the "server" side of a local
 * run, e.g. rsync's forked receiver/generator, or xroad-replicate's local serve).
 *
 *   rusage [-n] [-t SECONDS] [-o FILE] -- COMMAND [ARG...]
 *
 * Prints one line of key=value pairs (to FILE, or stderr) and exits with the command's status
 * (128+N when killed by signal N):
 *
 *   wall_s        wall time from fork to the command's exit (CLOCK_MONOTONIC)
 *   cpu_s         user+system CPU of the whole process tree: ru_utime+ru_stime of the command's
 *                 rusage as returned by wait4(), which on Linux includes every descendant the
 *                 tree reaped (a sum, not a max)
 *   tree_rss_kb   ru_maxrss of the same rusage: the peak RSS of the single largest process in
 *                 the tree (a max over processes, not a sum)
 *   client_rss_kb peak RSS (VmHWM) of the command process itself, read at its exit
 *   server_rss_kb largest VmHWM of any process forked by the command (directly or further down);
 *                 -1 when it forked nothing
 *   client_cpu_s  utime+stime of the command process itself (/proc/PID/stat, clock ticks)
 *   server_cpu_s  the same summed over the forked processes
 *   nprocs        processes seen (1 = the command never forked)
 *   timed_out     1 when -t SECONDS expired and the command's process group was killed
 *   exit          the exit status reported above
 *   sum_rss_kb    sum of the peak RSS (VmHWM) of every process of the tree (the command and
 *                 everything it forked, directly or further down, each read at its exit): an
 *                 upper bound of the memory the whole run held at once: the peaks need not
 *                 coincide, and pages a forked child shares with its parent (copy-on-write)
 *                 count in both; -1 when ptrace is off
 *
 * The per-process figures come from ptrace: the command is attached with PTRACE_SEIZE and
 * PTRACE_O_TRACEFORK|VFORK|EXIT, so the tracer is stopped only at fork and exit (never per
 * system call) and reads /proc/PID/status and /proc/PID/stat while the exiting process still has
 * its memory map. Threads are not traced (they share their process's VmHWM). With -n, or when
 * ptrace is refused, the per-process fields are -1 and only the wait4() totals are reported.
 * The command runs in its own process group, so -t can kill the whole tree.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarm_fired;

/* SIGALRM handler: notes that the time limit has passed. */
static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

/* Returns the monotonic clock in seconds. */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads VmHWM (kB) of process pid; returns it, or -1 if unavailable. */
static long read_hwm_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmHWM:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* Reads utime+stime (seconds) of process pid from /proc/PID/stat; returns -1 if unavailable. */
static double read_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;
	size_t n;
	char *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* comm may contain spaces; fields resume after the last ')' */
	if (p == NULL)
		return -1;
	/* after ") ": state(3) ... utime is field 14, stime 15 -> skip 11 fields after state */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Prints usage and returns 2. */
static int usage(void)
{
	fprintf(stderr, "usage: rusage [-n] [-t SECONDS] [-o FILE] -- COMMAND [ARG...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *out_path = NULL;
	bool trace = true;
	int gate[2], opt, status = 0, rc = 2, ev, sig;
	long client_rss = -1, server_rss = -1, sum_rss = -1, hwm;
	double t0, t1 = 0, client_cpu = -1, server_cpu = -1, cpu;
	unsigned nprocs = 1, live = 1, limit = 0;
	bool killed = false;
	struct sigaction sa;
	struct rusage ru, child_ru;
	pid_t child, p;
	char c = 0;
	FILE *out;

	while ((opt = getopt(argc, argv, "+no:t:")) != -1) {
		if (opt == 'n')
			trace = false;
		else if (opt == 't')
			limit = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 'o')
			out_path = optarg;
		else
			return usage();
	}
	if (optind >= argc)
		return usage();
	memset(&ru, 0, sizeof(ru));
	memset(&child_ru, 0, sizeof(child_ru));
	if (pipe(gate) < 0) {
		perror("rusage: pipe");
		return 2;
	}
	t0 = now_s();
	child = fork();
	if (child < 0) {
		perror("rusage: fork");
		return 2;
	}
	if (child == 0) {
		/* wait until the parent has attached, then become the command */
		close(gate[1]);
		setpgid(0, 0);
		if (read(gate[0], &c, 1) < 0)
			_exit(127);
		close(gate[0]);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "rusage: exec %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	close(gate[0]);
	setpgid(child, child);	/* both sides set it: no race with the kill below */
	if (limit > 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;	/* no SA_RESTART: wait4() returns EINTR */
		sigaction(SIGALRM, &sa, NULL);
		alarm(limit);
	}
	if (trace && ptrace(PTRACE_SEIZE, child, NULL,
			    (void *)(long)(PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
					   PTRACE_O_TRACEEXIT)) < 0) {
		fprintf(stderr, "rusage: ptrace: %s (per-process figures disabled)\n",
			strerror(errno));
		trace = false;
	}
	if (write(gate[1], &c, 1) < 0)
		perror("rusage: write");
	close(gate[1]);
	if (trace) {
		client_rss = 0;
		server_rss = 0;
		sum_rss = 0;
		client_cpu = 0;
		server_cpu = 0;
	}

	/* Follow the tree until every traced process has gone. The command itself is our child:
	 * its wait4() rusage covers the descendants it reaped. Other traced processes report their
	 * exit to us first and to their real parent after. */
	while (live > 0) {
		p = wait4(-1, &status, __WALL, &ru);
		if (p < 0) {
			if (errno != EINTR)
				break;
			if (alarm_fired && !killed) {
				fprintf(stderr, "rusage: time limit of %u s reached, killing\n", limit);
				kill(-child, SIGKILL);
				killed = true;
			}
			continue;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			live--;
			if (p == child) {
				t1 = now_s();
				rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
				child_ru = ru;
				if (!trace)
					break;
			}
			continue;
		}
		if (!WIFSTOPPED(status))
			continue;
		ev = status >> 16;
		sig = 0;
		if (ev == PTRACE_EVENT_EXIT) {
			hwm = read_hwm_kb(p);
			cpu = read_cpu_s(p);
			if (hwm > 0)
				sum_rss += hwm;
			if (p == child) {
				client_rss = hwm;
				client_cpu = cpu;
			} else {
				if (hwm > server_rss)
					server_rss = hwm;
				if (cpu > 0)
					server_cpu += cpu;
			}
		} else if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK) {
			live++;
			nprocs++;
		} else if (ev == 0) {
			sig = WSTOPSIG(status);	/* an ordinary signal: deliver it */
		}
		/* PTRACE_EVENT_STOP (a new child's first stop, group stops): just continue */
		ptrace(PTRACE_CONT, p, NULL, (void *)(long)sig);
	}
	if (t1 == 0)
		t1 = now_s();
	if (nprocs == 1) {	/* nothing was forked: there is no server side */
		server_rss = -1;
		server_cpu = -1;
	}
	out = stderr;
	if (out_path != NULL) {
		out = fopen(out_path, "w");
		if (out == NULL) {
			perror(out_path);
			out = stderr;
		}
	}
	fprintf(out,
		"wall_s=%.6f cpu_s=%.6f tree_rss_kb=%ld client_rss_kb=%ld server_rss_kb=%ld "
		"client_cpu_s=%.2f server_cpu_s=%.2f nprocs=%u timed_out=%d exit=%d sum_rss_kb=%ld\n",
		t1 - t0,
		(double)child_ru.ru_utime.tv_sec + (double)child_ru.ru_utime.tv_usec / 1e6 +
			(double)child_ru.ru_stime.tv_sec + (double)child_ru.ru_stime.tv_usec / 1e6,
		child_ru.ru_maxrss, client_rss, trace ? server_rss : -1L, client_cpu,
		trace ? server_cpu : -1.0, nprocs, killed ? 1 : 0, rc, trace ? sum_rss : -1L);
	if (out != stderr)
		fclose(out);
	return rc;
}
