/* codes.c — gRPC code names in grpcurl's spelling. */
#include "codes.h"

const char *pctl_code_name(int code)
{
    static const char *const names[] = {
        "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
        "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
        "DataLoss", "Unauthenticated",
    };
    if (code < 0 || code > PL_CODE_MAX)
        return "Unknown";
    return names[code];
}
