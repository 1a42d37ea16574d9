/* status.c — status names and the standard HTTP/HTTP2 → gRPC mappings. */
#include "runtime/status.h"

#include <stdlib.h>
#include <string.h>

static const char *const code_names[] = {
    "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED",
};

const char *pl_code_name(int code)
{
    if (code < 0 || code > PL_CODE_MAX)
        return "UNKNOWN_CODE";
    return code_names[code];
}

void pl_status_set(pl_status_t *st, pl_code_t code, const char *message)
{
    char *copy = message ? strdup(message) : NULL; /* before the free: message may be st->message */
    free(st->message);
    st->code = code;
    st->message = copy;
}

void pl_status_reset(pl_status_t *st)
{
    free(st->message);
    st->code = PL_CODE_OK;
    st->message = NULL;
}

pl_code_t pl_code_from_http(int http_status)
{
    switch (http_status) {
    case 400: return PL_CODE_INTERNAL;
    case 401: return PL_CODE_UNAUTHENTICATED;
    case 403: return PL_CODE_PERMISSION_DENIED;
    case 404: return PL_CODE_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504: return PL_CODE_UNAVAILABLE;
    default: return PL_CODE_UNKNOWN;
    }
}

pl_code_t pl_code_from_h2_error(unsigned int h2_error)
{
    switch (h2_error) {
    case 0x0: /* NO_ERROR before a status: the server gave up */
    case 0x1: /* PROTOCOL_ERROR */
    case 0x2: /* INTERNAL_ERROR */
    case 0x3: /* FLOW_CONTROL_ERROR */
    case 0x6: /* FRAME_SIZE_ERROR */
    case 0x9: /* COMPRESSION_ERROR */ return PL_CODE_INTERNAL;
    case 0x7: /* REFUSED_STREAM: safe to retry */ return PL_CODE_UNAVAILABLE;
    case 0x8: /* CANCEL */ return PL_CODE_CANCELLED;
    case 0xa: /* CONNECT_ERROR */ return PL_CODE_INTERNAL;
    case 0xb: /* ENHANCE_YOUR_CALM */ return PL_CODE_RESOURCE_EXHAUSTED;
    case 0xc: /* INADEQUATE_SECURITY */ return PL_CODE_PERMISSION_DENIED;
    default: return PL_CODE_INTERNAL;
    }
}
