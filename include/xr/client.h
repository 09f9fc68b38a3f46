/* client.h - the pull and push commands. */
#ifndef XR_CLIENT_H
#define XR_CLIENT_H

#include "xr/opts.h"

/* Runs pull or push as o says; returns 0 or the xr_err for the exit code. */
int xr_client_main(const struct xr_opts *o);

#endif
