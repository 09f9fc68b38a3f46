/* main.c - xroad-replicate: options in, exit code out. */
#include <locale.h>
#include <stdio.h>

#include "xr/client.h"
#include "xr/err.h"
#include "xr/opts.h"
#include "xr/session.h"
#include "xr/status.h"

int main(int argc, char **argv)
{
	struct xr_opts o;
	int rc;

	/* names are escaped by what this locale can print, as rsync does */
	setlocale(LC_CTYPE, "");
	rc = xr_opts_parse(&o, argc, argv);
	if (rc == 1) {
		xr_opts_free(&o);
		return 0;
	}
	if (rc < 0) {
		xr_opts_free(&o);
		if (rc == XR_EUNSUPPORTED || rc == XR_ESYNTAX)
			fprintf(stderr, "xroad-replicate error: syntax or usage error (code 1)\n");
		return xr_exit_code(rc);
	}
	if (o.cmd == XR_CMD_SERVE)
		rc = -xr_serve_main(&o);
	else if (o.cmd == XR_CMD_STATUS)
		rc = -xr_status_main(&o);
	else
		rc = xr_client_main(&o);
	xr_opts_free(&o);
	return xr_exit_code(rc);
}
