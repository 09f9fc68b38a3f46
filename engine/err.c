/* err.c - error descriptions and rsync exit codes. */
#include <errno.h>

#include "xr/err.h"

const char *xr_strerror(int err)
{
	switch (err) {
	case XR_OK: return "success";
	case XR_ESYNTAX: return "syntax or usage error";
	case XR_EPROTO: return "protocol incompatibility";
	case XR_ESELECT: return "errors selecting input/output files, dirs";
	case XR_ESTART: return "error starting client-server protocol";
	case XR_ESOCKET: return "error in socket IO";
	case XR_EFILEIO: return "error in file IO";
	case XR_ESTREAM: return "error in rsync protocol data stream";
	case XR_ESIGNAL: return "received SIGINT, SIGTERM, or SIGHUP";
	case XR_EPARTIAL: return "some files/attrs were not transferred (see previous errors)";
	case XR_EVANISHED: return "some files vanished before they could be transferred";
	case XR_ETIMEOUT: return "timeout in data send/receive";
	case XR_ECONNTIMEOUT: return "timeout waiting for daemon connection";
	case XR_ESSH: return "SSH connection failed";
	case XR_ENOMEM: return "error allocating core memory buffers";
	case XR_ELIMIT: return "size limit exceeded in protocol data";
	case XR_EUNSAFE: return "unsafe path refused";
	case XR_EDENIED: return "operation refused by the server's policy";
	case XR_EUNSUPPORTED: return "unsupported option";
	default: return "unknown error";
	}
}

int xr_exit_code(int err)
{
	switch (err) {
	case XR_OK: return 0;
	case XR_ENOMEM: return 22;
	case XR_ELIMIT:
	case XR_EUNSAFE:
	case XR_EDENIED: return 2;
	case XR_EUNSUPPORTED: return 1;
	default:
		if (err < 0 && err >= -255)
			return -err;
		return 1;
	}
}

int xr_err_from_errno(int errnum)
{
	switch (errnum) {
	case ENOMEM: return XR_ENOMEM;
	case ENOENT: return XR_EVANISHED;
	case ELOOP:
	case EXDEV: return XR_EUNSAFE;
	default: return XR_EFILEIO;
	}
}
