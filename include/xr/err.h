/* err.h - the one error enum, its messages and rsync's exit codes. */
#ifndef XR_ERR_H
#define XR_ERR_H

/*
 * Every function that can fail returns 0 on success or a negative enum
 * xr_err.  The value is mapped to rsync's exit code once, at the edge
 * (cli/main.c), with xr_exit_code().
 */
enum xr_err {
	XR_OK = 0,
	XR_ESYNTAX = -1,	/* bad option or argument          -> exit 1  */
	XR_EPROTO = -2,		/* protocol violation by the peer  -> exit 2  */
	XR_ESELECT = -3,	/* file selection (bad SRC/DEST)   -> exit 3  */
	XR_ESTART = -5,		/* error starting client-server    -> exit 5  */
	XR_ESOCKET = -10,	/* socket / pipe I/O               -> exit 10 */
	XR_EFILEIO = -11,	/* file I/O on the receiver        -> exit 11 */
	XR_ESTREAM = -12,	/* data stream (hash mismatch ...) -> exit 12 */
	XR_ESIGNAL = -20,	/* killed by SIGTERM/SIGINT        -> exit 20 */
	XR_EPARTIAL = -23,	/* partial transfer                -> exit 23 */
	XR_EVANISHED = -24,	/* source files vanished           -> exit 24 */
	XR_ETIMEOUT = -30,	/* no I/O for --timeout seconds    -> exit 30 */
	XR_ECONNTIMEOUT = -35,	/* connect timeout                 -> exit 35 */
	XR_ESSH = -255,		/* SSH failure: auth, host key     -> exit 255 */
	/* internal causes; each maps onto one of the codes above */
	XR_ENOMEM = -1001,	/* out of memory                   -> exit 22 */
	XR_ELIMIT = -1002,	/* a size limit was exceeded       -> exit 2  */
	XR_EUNSAFE = -1003,	/* unsafe path refused             -> exit 2  */
	XR_EDENIED = -1004,	/* refused by serve policy         -> exit 2  */
	XR_EUNSUPPORTED = -1005,/* unsupported option              -> exit 1  */
};

/* Returns a static, human-readable description of err. */
const char *xr_strerror(int err);

/* Returns rsync's process exit code for err (0 for XR_OK). */
int xr_exit_code(int err);

/* Maps an errno value from a receiver file operation to an xr_err. */
int xr_err_from_errno(int errnum);

#endif
