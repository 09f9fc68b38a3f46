/*
 * meta.c - applying mode, owner, group and times as rsync does.
 *
 * rsync's rules, as implemented here:
 *   -o  the owner is set only when the receiver runs as root; otherwise a
 *       file belongs to the running user (who created it).
 *   -g  as root the group is set; otherwise only when the running user is a
 *       member of it (getgroups), else the group stays as created.
 *   -p  the mode (07777) is set.  Without -p a new entry gets the sender's
 *       permission bits masked with the umask and no setuid/setgid/sticky
 *       bits (xr_meta_apply_*); keeping an existing file's mode is the
 *       caller's business (commit.c passes the old mode with perms set).
 *   -t  the modification time is set with nanoseconds; atime is left alone.
 *   ids are mapped by name through the sender's tables unless --numeric-ids;
 *   uid 0 and gid 0 are never mapped (rsync's rule).
 * chown comes before chmod because chown clears setuid/setgid bits.
 * Symlinks are never chmod'ed (Linux has no symlink modes).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/log.h"
#include "xr/meta.h"

#define NAMEBUF_SIZE 16384

/* Returns the name recorded for id in a sender's id table, or NULL. */
static const char *idname_find(const struct xr_idname *t, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].id == id && t[i].name)
			return t[i].name;
	return NULL;
}

/* Maps e's uid/gid by name through the sender's tables (not 0, not --numeric-ids). */
void xr_meta_map_ids(const struct xr_manifest *src, const struct xr_meta_opts *o,
		     struct xr_entry *e)
{
	char buf[NAMEBUF_SIZE];
	const char *name;

	if (o->numeric_ids || !src)
		return;
	if (e->uid != 0 && (name = idname_find(src->users, src->nusers, e->uid))) {
		struct passwd pw, *res = NULL;

		if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res)
			e->uid = (uint32_t)res->pw_uid;
	}
	if (e->gid != 0 && (name = idname_find(src->groups, src->ngroups, e->gid))) {
		struct group gr, *res = NULL;

		if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) == 0 && res)
			e->gid = (uint32_t)res->gr_gid;
	}
}

/* True if the running user may give files group gid (primary or member). */
static bool user_in_group(uint32_t gid)
{
	gid_t *list = NULL;
	bool found = false;
	int n;

	if ((uint32_t)getegid() == gid)
		return true;
	n = getgroups(0, NULL);
	if (n <= 0)
		return false;
	list = calloc((size_t)n, sizeof(*list));
	if (!list)
		return false;
	n = getgroups(n, list);
	for (int i = 0; i < n; i++)
		if ((uint32_t)list[i] == gid)
			found = true;
	free(list);
	return found;
}

/* The ids to set on this receiver, -1 meaning "leave as created". */
void xr_meta_target_ids(const struct xr_meta_opts *o, const struct xr_entry *e, int64_t *uid,
			int64_t *gid)
{
	*uid = -1;
	*gid = -1;
	if (o->is_root) {
		if (o->owner)
			*uid = e->uid;
		if (o->group)
			*gid = e->gid;
		return;
	}
	/* not root: the owner is the running user, as the file was created */
	if (o->group && user_in_group(e->gid))
		*gid = e->gid;
}

/* Returns the process umask without changing it (from /proc when possible). */
static mode_t current_umask(void)
{
	char line[128], *end;
	unsigned long m;
	mode_t old;
	FILE *f;

	f = fopen("/proc/self/status", "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "Umask:", 6) != 0)
				continue;
			m = strtoul(line + 6, &end, 8);
			if (end != line + 6 && (*end == '\n' || *end == '\0')) {
				fclose(f);
				return (mode_t)(m & 0777);
			}
		}
		fclose(f);
	}
	old = umask(022);
	umask(old);
	return old;
}

/* The mode a new entry gets without -p: the sender's bits & ~umask, no special bits. */
static mode_t new_entry_mode(const struct xr_entry *e)
{
	return (mode_t)(e->mode & 0777) & ~current_umask();
}

/*
 * Applies e's attributes either through fd (fd >= 0) or to leaf in dirfd
 * without following it.  Returns 0 or XR_EFILEIO (reported naming path).
 */
static int meta_apply(int fd, int dirfd, const char *leaf, const char *path,
		      const struct xr_entry *e, const struct xr_meta_opts *o)
{
	struct timespec ts[2];
	struct stat st;
	int64_t uid, gid;
	bool chowned = false;
	mode_t want;
	int rc;

	rc = fd >= 0 ? fstat(fd, &st) : fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW);
	if (rc < 0) {
		xr_error("%s: stat: %s", path, strerror(errno));
		return XR_EFILEIO;
	}
	xr_meta_target_ids(o, e, &uid, &gid);
	if ((uid >= 0 && (uint32_t)uid != (uint32_t)st.st_uid) ||
	    (gid >= 0 && (uint32_t)gid != (uint32_t)st.st_gid)) {
		uid_t u = uid >= 0 ? (uid_t)uid : (uid_t)-1;
		gid_t g = gid >= 0 ? (gid_t)gid : (gid_t)-1;

		rc = fd >= 0 ? fchown(fd, u, g) : fchownat(dirfd, leaf, u, g, AT_SYMLINK_NOFOLLOW);
		if (rc < 0) {
			xr_error("%s: change owner to %ld:%ld: %s", path, (long)uid, (long)gid,
				 strerror(errno));
			return XR_EFILEIO;
		}
		chowned = true;
	}
	if (!S_ISLNK(st.st_mode)) {
		want = o->perms ? (mode_t)(e->mode & 07777) : new_entry_mode(e);
		if (chowned || want != (st.st_mode & 07777)) {
			if (fd >= 0) {
				rc = fchmod(fd, want);
			} else {
				rc = fchmodat(dirfd, leaf, want, AT_SYMLINK_NOFOLLOW);
				/* older libc/kernel: no NOFOLLOW; we know it is no symlink */
				if (rc < 0 && (errno == ENOTSUP || errno == ENOSYS))
					rc = fchmodat(dirfd, leaf, want, 0);
			}
			if (rc < 0) {
				xr_error("%s: change mode to %04o: %s", path, (unsigned)want,
					 strerror(errno));
				return XR_EFILEIO;
			}
		}
	}
	if (o->times) {
		ts[0].tv_sec = 0;
		ts[0].tv_nsec = UTIME_OMIT;
		ts[1].tv_sec = (time_t)e->mtime_sec;
		ts[1].tv_nsec = (long)e->mtime_nsec;
		rc = fd >= 0 ? futimens(fd, ts) : utimensat(dirfd, leaf, ts, AT_SYMLINK_NOFOLLOW);
		if (rc < 0) {
			xr_error("%s: set modification time: %s", path, strerror(errno));
			return XR_EFILEIO;
		}
	}
	return 0;
}

/* Applies e's attributes through fd; 0 or XR_EFILEIO (reported). */
int xr_meta_apply_fd(int fd, const char *path, const struct xr_entry *e,
		     const struct xr_meta_opts *o)
{
	if (fd < 0) {	/* meta_apply would take the leaf path, and there is no leaf */
		xr_error("%s: stat: %s", path, strerror(EBADF));
		return XR_EFILEIO;
	}
	return meta_apply(fd, -1, NULL, path, e, o);
}

/* Applies e's attributes to leaf in dirfd, not following it; 0 or XR_EFILEIO. */
int xr_meta_apply_at(int dirfd, const char *leaf, const char *path, const struct xr_entry *e,
		     const struct xr_meta_opts *o)
{
	return meta_apply(-1, dirfd, leaf, path, e, o);
}

/* True if st differs from e in an attribute this run can and does preserve. */
bool xr_meta_differs(const struct stat *st, const struct xr_entry *e, const struct xr_meta_opts *o)
{
	int64_t uid, gid;

	if (o->perms && !S_ISLNK(st->st_mode) && (st->st_mode & 07777) != (e->mode & 07777))
		return true;
	if (o->times && ((int64_t)st->st_mtim.tv_sec != e->mtime_sec ||
			 (uint32_t)st->st_mtim.tv_nsec != e->mtime_nsec))
		return true;
	xr_meta_target_ids(o, e, &uid, &gid);
	if (uid >= 0 && (uint32_t)uid != (uint32_t)st->st_uid)
		return true;
	if (gid >= 0 && (uint32_t)gid != (uint32_t)st->st_gid)
		return true;
	return false;
}
