/*
 * relay - a byte-counting TCP relay on 127.0.0.1, for counting what an SSH client and server
 * really exchange (SSH-level bytes: encrypted packets, key exchange, padding and MACs included),
 * independently of what either tool reports about itself.
 *
 *   relay -c TARGET_PORT [-l LISTEN_PORT] [-p PORTFILE] [-o OUTFILE]
 *
 * Listens on 127.0.0.1:LISTEN_PORT (default 0: any free port, written to PORTFILE once the
 * socket listens), and for every accepted connection opens one to 127.0.0.1:TARGET_PORT and
 * copies both ways with poll(2) (one thread, any number of connections, half-closes passed on).
 * On SIGTERM or SIGINT it writes one line to OUTFILE (default stdout), from the client's view:
 *
 *   sent N bytes  received N bytes  connections K
 *
 * sent = bytes from the clients to the target, received = bytes back; the same shape as
 * rsync's summary line, so bench/lib.sh parses both alike. SIGUSR1 writes the line without
 * exiting and resets the counters. Exits 0, or 2 on a setup error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXCONN 64
#define BUFSZ 65536

/* one direction of one connection: bytes read from in, not yet written to out */
struct dir {
	int in, out;
	char buf[BUFSZ];
	size_t off, len;
	int eof;	/* in reached end of file */
	int shut;	/* shutdown(out, SHUT_WR) done */
};

struct conn {
	int used;
	int cfd, tfd;	/* client side, target side */
	struct dir up;	/* client -> target */
	struct dir down;	/* target -> client */
};

static volatile sig_atomic_t stop_flag, dump_flag;
static struct conn conns[MAXCONN];
static unsigned long long sent_total, recv_total, nconn;

/* Signal handler: SIGUSR1 asks for a report, anything else for the final one. */
static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		dump_flag = 1;
	else
		stop_flag = 1;
}

/* Writes the counter line to path (or stdout when path is NULL); returns nothing. */
static void report(const char *path)
{
	FILE *f = path ? fopen(path, "w") : stdout;

	if (!f) {
		perror(path);
		return;
	}
	fprintf(f, "sent %llu bytes  received %llu bytes  connections %llu\n", sent_total,
		recv_total, nconn);
	if (path)
		fclose(f);
	else
		fflush(f);
}

/* Connects to 127.0.0.1:port; returns the socket or -1. */
static int connect_target(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Closes both sockets of c and frees the slot. */
static void conn_close(struct conn *c)
{
	close(c->cfd);
	close(c->tfd);
	c->used = 0;
}

/* Moves data for one direction when poll said so; adds to *count. Returns -1 on a hard error. */
static int pump(struct dir *d, short rev_in, short rev_out, unsigned long long *count)
{
	ssize_t n;

	if (d->len == 0 && !d->eof && (rev_in & (POLLIN | POLLHUP | POLLERR))) {
		n = read(d->in, d->buf, BUFSZ);
		if (n > 0) {
			d->off = 0;
			d->len = (size_t)n;
			*count += (unsigned long long)n;
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			d->eof = 1;
		}
	}
	if (d->len > 0 && (rev_out & POLLOUT)) {
		n = write(d->out, d->buf + d->off, d->len);
		if (n > 0) {
			d->off += (size_t)n;
			d->len -= (size_t)n;
		} else if (n < 0 && errno != EINTR && errno != EAGAIN) {
			return -1;
		}
	}
	if (d->eof && d->len == 0 && !d->shut) {
		shutdown(d->out, SHUT_WR);
		d->shut = 1;
	}
	return 0;
}

/* Sets up the listening socket, then relays until SIGTERM/SIGINT; returns the exit status. */
int main(int argc, char **argv)
{
	int lport = 0, tport = 0, opt, lfd, one = 1;
	const char *portfile = NULL, *outfile = NULL;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct sigaction sa;

	while ((opt = getopt(argc, argv, "c:l:p:o:")) != -1) {
		switch (opt) {
		case 'c': tport = atoi(optarg); break;
		case 'l': lport = atoi(optarg); break;
		case 'p': portfile = optarg; break;
		case 'o': outfile = optarg; break;
		default:
			fprintf(stderr, "usage: relay -c TARGET_PORT [-l PORT] [-p PORTFILE] "
				"[-o OUTFILE]\n");
			return 2;
		}
	}
	if (tport <= 0) {
		fprintf(stderr, "relay: -c TARGET_PORT is required\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		return perror("socket"), 2;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)lport);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 16) < 0)
		return perror("relay: bind/listen"), 2;
	getsockname(lfd, (struct sockaddr *)&a, &alen);
	if (portfile) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
		f = fopen(tmp, "w");
		if (!f)
			return perror(tmp), 2;
		fprintf(f, "%d\n", ntohs(a.sin_port));
		fclose(f);
		rename(tmp, portfile);
	}

	while (!stop_flag) {
		struct pollfd pf[1 + 2 * MAXCONN];
		int idx[MAXCONN], n = 1, i;

		if (dump_flag) {
			dump_flag = 0;
			report(outfile);
			sent_total = recv_total = nconn = 0;
		}
		pf[0].fd = lfd;
		pf[0].events = POLLIN;
		for (i = 0; i < MAXCONN; i++) {
			struct conn *c = &conns[i];

			idx[i] = -1;
			if (!c->used)
				continue;
			idx[i] = n;
			pf[n].fd = c->cfd;
			pf[n].events = (short)((!c->up.eof && c->up.len == 0 ? POLLIN : 0) |
				(c->down.len ? POLLOUT : 0));
			pf[n + 1].fd = c->tfd;
			pf[n + 1].events = (short)((!c->down.eof && c->down.len == 0 ? POLLIN : 0) |
				(c->up.len ? POLLOUT : 0));
			n += 2;
		}
		if (poll(pf, (nfds_t)n, 200) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			break;
		}
		if (pf[0].revents & POLLIN) {
			int cfd = accept(lfd, NULL, NULL), tfd;

			if (cfd >= 0) {
				for (i = 0; i < MAXCONN && conns[i].used; i++)
					;
				tfd = i < MAXCONN ? connect_target(tport) : -1;
				if (tfd < 0) {
					close(cfd);
				} else {
					struct conn *c = &conns[i];

					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					memset(c, 0, sizeof(*c));
					c->used = 1;
					c->cfd = cfd;
					c->tfd = tfd;
					c->up.in = cfd;
					c->up.out = tfd;
					c->down.in = tfd;
					c->down.out = cfd;
					nconn++;
				}
			}
		}
		for (i = 0; i < MAXCONN; i++) {
			struct conn *c = &conns[i];
			int k = idx[i];

			if (k < 0 || !c->used)
				continue;
			if (pump(&c->up, pf[k].revents, pf[k + 1].revents, &sent_total) < 0 ||
				pump(&c->down, pf[k + 1].revents, pf[k].revents, &recv_total) < 0 ||
				(c->up.shut && c->down.shut))
				conn_close(c);
		}
	}
	report(outfile);
	return 0;
}
