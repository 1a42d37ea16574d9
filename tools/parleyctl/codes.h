/* codes.h — gRPC status codes as parleyctl prints them (the names grpcurl
 * prints: "Unknown", "DeadlineExceeded", ...) and its exit statuses. */
#ifndef PCTL_CODES_H
#define PCTL_CODES_H

#include "runtime/status.h"

/* Exit statuses (documented in --help). */
#define PCTL_EXIT_OK 0
#define PCTL_EXIT_FAILURE 1      /* connection, reflection, schema, input or output failure */
#define PCTL_EXIT_USAGE 2        /* bad command line */
#define PCTL_EXIT_STATUS_BASE 64 /* + the gRPC code of a call that ended non-OK */

const char *pctl_code_name(int code);

#endif
