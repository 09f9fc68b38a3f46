/*
 * fs.c - path confinement: every receiver operation stays beneath a root fd.
 *
 * Names are validated with xr_path_valid() and resolved with openat2(2)
 * (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), or, on
 * kernels without it, by a component walk with openat(O_NOFOLLOW |
 * O_DIRECTORY).  Unsafe names and symlinked parents are reported here (the
 * message names the path); plain I/O failures return XR_EFILEIO with errno
 * set and are reported by the caller, who knows the operation.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/fs.h"
#include "xr/log.h"
#include "xr/manifest.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* Calls openat2(2); returns the fd or -1 with errno set. */
static int sys_openat2(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how;

	memset(&how, 0, sizeof(how));
	how.flags = (unsigned long long)flags;
	how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/*
 * Whether openat2 with RESOLVE_BENEATH works here, probed once.  Test builds
 * (XR_FAULTS) can force the component walk with XR_FS_NO_OPENAT2=1.
 */
bool xr_fs_have_openat2(void)
{
	/* a process-wide kernel capability, probed once */
	static int have = -1;
	int fd;

#ifdef XR_FAULTS
	const char *no = getenv("XR_FS_NO_OPENAT2");

	if (no && *no && strcmp(no, "0") != 0)
		return false;
#endif
	if (have >= 0)
		return have == 1;
	fd = sys_openat2(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd >= 0) {
		close(fd);
		have = 1;
	} else {
		have = (errno == ENOSYS || errno == EPERM || errno == E2BIG) ? 0 : 1;
	}
	return have == 1;
}

/* True if a path is acceptable here: "." or a valid relative path. */
static bool name_ok(const char *relpath)
{
	return strcmp(relpath, ".") == 0 || xr_path_valid(relpath);
}

/* Reports an unsafe name and returns XR_EUNSAFE. */
static int refuse_name(const char *relpath)
{
	xr_error("%.200s%s: unsafe path refused (absolute, \"..\", empty or over-long name)",
		 relpath, strlen(relpath) > 200 ? "..." : "");
	errno = EINVAL;
	return XR_EUNSAFE;
}

/* Reports a symlink met in the parent chain and returns XR_EUNSAFE. */
static int refuse_symlink(const char *relpath)
{
	if (relpath)	/* NULL: a quiet probe */
		xr_error("%s: refusing to follow symlinked parent directory", relpath);
	errno = ELOOP;
	return XR_EUNSAFE;
}

/*
 * Whether the first len bytes of relpath, resolved beneath rootfd without
 * following anything, end in a symlink or pass through one.  Used to tell a
 * symlink (unsafe) from a plain ENOTDIR after a failed open.
 */
static bool chain_has_symlink(int rootfd, const char *relpath, size_t len)
{
	char comp[XR_NAME_MAX + 1];
	size_t i = 0, j;
	struct stat st;
	int fd = rootfd, nfd;
	bool found = false;

	while (i < len) {
		j = i;
		while (j < len && relpath[j] != '/')
			j++;
		if (j - i > XR_NAME_MAX)
			break;
		memcpy(comp, relpath + i, j - i);
		comp[j - i] = '\0';
		if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) < 0)
			break;
		if (S_ISLNK(st.st_mode)) {
			found = true;
			break;
		}
		if (!S_ISDIR(st.st_mode) || j >= len)
			break;
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			found = errno == ELOOP;
			break;
		}
		if (fd != rootfd)
			close(fd);
		fd = nfd;
		i = j + 1;
	}
	if (fd != rootfd)
		close(fd);
	return found;
}

/*
 * Opens the directory named by the first len bytes of relpath beneath rootfd
 * (a component walk with O_NOFOLLOW).  Returns the fd or a negative xr_err.
 */
static int walk_open_dir(int rootfd, const char *relpath, size_t len)
{
	char comp[XR_NAME_MAX + 1];
	size_t i = 0, j;
	int fd = rootfd, nfd;

	while (i < len) {
		j = i;
		while (j < len && relpath[j] != '/')
			j++;
		memcpy(comp, relpath + i, j - i);
		comp[j - i] = '\0';
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			int e = errno;

			if (fd != rootfd)
				close(fd);
			errno = e;
			return -1;
		}
		if (fd != rootfd)
			close(fd);
		fd = nfd;
		i = j + 1;
	}
	if (fd == rootfd)
		return fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
	return fd;
}

/*
 * Opens the directory relpath[0..len) beneath rootfd, confined.  Returns the
 * fd, XR_EUNSAFE (symlink or escape; reported) or XR_EFILEIO (errno set).
 */
static int open_dir_confined(int rootfd, const char *relpath, size_t len, const char *msgpath)
{
	char *sub;
	int fd = -1;

	if (len == 0) {
		fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? XR_EFILEIO : fd;
	}
	if (xr_fs_have_openat2()) {
		sub = strndup(relpath, len);
		if (!sub)
			return XR_ENOMEM;
		/* EAGAIN: a concurrent rename raced the lookup; try again */
		for (int tries = 0; tries < 16; tries++) {
			fd = sys_openat2(rootfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
			if (fd >= 0 || errno != EAGAIN)
				break;
		}
		free(sub);
	} else {
		fd = walk_open_dir(rootfd, relpath, len);
	}
	if (fd >= 0)
		return fd;
	if (errno == ELOOP || errno == EXDEV)
		return refuse_symlink(msgpath);
	if (errno == ENOTDIR) {
		int e = errno;

		if (chain_has_symlink(rootfd, relpath, len))
			return refuse_symlink(msgpath);
		errno = e;
	}
	return XR_EFILEIO;
}

/* Opens relpath's parent beneath rootfd; 0, XR_EUNSAFE or XR_EFILEIO (errno). */
/* xr_fs_open_parent; quiet leaves reporting a symlinked parent to the caller. */
static int open_parent(int rootfd, const char *relpath, int *dirfd, const char **leaf, bool quiet)
{
	const char *slash;
	int fd;

	*dirfd = -1;
	*leaf = NULL;
	if (!name_ok(relpath))
		return refuse_name(relpath);
	slash = strrchr(relpath, '/');
	if (!slash) {
		fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return XR_EFILEIO;
		*dirfd = fd;
		*leaf = relpath;
		return 0;
	}
	fd = open_dir_confined(rootfd, relpath, (size_t)(slash - relpath), quiet ? NULL : relpath);
	if (fd < 0)
		return fd;
	*dirfd = fd;
	*leaf = slash + 1;
	return 0;
}

int xr_fs_open_parent(int rootfd, const char *relpath, int *dirfd, const char **leaf)
{
	return open_parent(rootfd, relpath, dirfd, leaf, false);
}

int xr_fs_open_parent_quiet(int rootfd, const char *relpath, int *dirfd, const char **leaf)
{
	return open_parent(rootfd, relpath, dirfd, leaf, true);
}

/* Opens relpath beneath rootfd without following a symlink leaf; fd or xr_err. */
int xr_fs_open(int rootfd, const char *relpath, int flags, mode_t mode)
{
	const char *leaf;
	int dfd, fd, rc;

	rc = xr_fs_open_parent(rootfd, relpath, &dfd, &leaf);
	if (rc < 0)
		return rc;
	if (strcmp(leaf, ".") == 0)
		fd = openat(dfd, ".", (flags & ~(O_CREAT | O_EXCL)) | O_CLOEXEC);
	else
		fd = openat(dfd, leaf, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		int e = errno;
		struct stat st;

		/* O_NOFOLLOW on a symlink leaf: ELOOP (or ENOTDIR with O_DIRECTORY) */
		if ((e == ELOOP || e == ENOTDIR) &&
		    fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
			close(dfd);
			errno = ELOOP;
			return XR_EUNSAFE;
		}
		close(dfd);
		errno = e;
		return XR_EFILEIO;
	}
	close(dfd);
	return fd;
}

/* lstat beneath rootfd; 0, XR_EVANISHED (absent), XR_EUNSAFE or XR_EFILEIO. */
int xr_fs_lstat(int rootfd, const char *relpath, struct stat *st)
{
	const char *leaf;
	int dfd, rc;

	rc = open_parent(rootfd, relpath, &dfd, &leaf, true);	/* a probe: the caller reports */
	if (rc == XR_EFILEIO && (errno == ENOENT || errno == ENOTDIR))
		return XR_EVANISHED;
	if (rc < 0)
		return rc;
	if (strcmp(leaf, ".") == 0)
		rc = fstat(dfd, st);
	else
		rc = fstatat(dfd, leaf, st, AT_SYMLINK_NOFOLLOW);
	if (rc < 0) {
		int e = errno;

		close(dfd);
		errno = e;
		return (e == ENOENT || e == ENOTDIR) ? XR_EVANISHED : XR_EFILEIO;
	}
	close(dfd);
	return 0;
}

/* Writes all of buf, retrying EINTR and short writes; 0 or XR_EFILEIO. */
int xr_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return XR_EFILEIO;
		}
		if (n == 0) {
			errno = EIO;
			return XR_EFILEIO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fsync of a directory; filesystems that cannot (EINVAL) count as done. */
int xr_fsync_dir(int dirfd)
{
	while (fsync(dirfd) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EINVAL)
			return 0;
		return XR_EFILEIO;
	}
	return 0;
}

/*
 * Removes name inside parentfd (a single component) and, for a directory, its
 * contents, never following symlinks.  shown is the path for messages.
 * Returns 0 (also when already gone) or XR_EFILEIO (reported).
 */
static int remove_entry(int parentfd, const char *name, const char *shown)
{
	struct dirent *de;
	struct stat st;
	char *sub = NULL;
	DIR *dir = NULL;
	int fd, rc = 0;

	if (fstatat(parentfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		xr_error("%s: lstat: %s", shown, strerror(errno));
		return XR_EFILEIO;
	}
	if (!S_ISDIR(st.st_mode))
		goto unlink_file;
	fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR)	/* replaced meanwhile */
			goto unlink_file;
		xr_error("%s: open directory: %s", shown, strerror(errno));
		return XR_EFILEIO;
	}
	dir = fdopendir(fd);
	if (!dir) {
		xr_error("%s: opendir: %s", shown, strerror(errno));
		close(fd);
		return XR_EFILEIO;
	}
	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de) {
			if (errno != 0) {
				xr_error("%s: readdir: %s", shown, strerror(errno));
				rc = XR_EFILEIO;
				goto out;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (asprintf(&sub, "%s/%s", shown, de->d_name) < 0) {
			sub = NULL;
			rc = XR_ENOMEM;
			goto out;
		}
		rc = remove_entry(dirfd(dir), de->d_name, sub);
		free(sub);
		sub = NULL;
		if (rc < 0)
			goto out;
	}
	if (unlinkat(parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
		xr_error("%s: remove directory: %s", shown, strerror(errno));
		rc = XR_EFILEIO;
	}
out:
	if (dir)
		closedir(dir);
	return rc;
unlink_file:
	if (unlinkat(parentfd, name, 0) < 0 && errno != ENOENT) {
		xr_error("%s: unlink: %s", shown, strerror(errno));
		return XR_EFILEIO;
	}
	return 0;
}

/* Removes name (any type, recursively) beneath rootfd; 0 or xr_err (reported). */
int xr_fs_remove_tree(int rootfd, const char *name)
{
	const char *leaf;
	int dfd, rc;

	rc = xr_fs_open_parent(rootfd, name, &dfd, &leaf);
	if (rc == XR_EFILEIO && (errno == ENOENT || errno == ENOTDIR))
		return 0;
	if (rc < 0) {
		if (rc == XR_EFILEIO)
			xr_error("%s: open parent directory: %s", name, strerror(errno));
		return rc;
	}
	if (strcmp(leaf, ".") == 0) {
		close(dfd);
		xr_error("%s: refusing to remove the root of the tree", name);
		return XR_EUNSAFE;
	}
	rc = remove_entry(dfd, leaf, name);
	close(dfd);
	return rc;
}
