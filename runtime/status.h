/* status.h — gRPC status codes and the status carried by a finished call. */
#ifndef PL_RUNTIME_STATUS_H
#define PL_RUNTIME_STATUS_H

/* The canonical gRPC codes (grpc/doc/statuscodes.md), same numbers. */
typedef enum pl_code {
    PL_CODE_OK = 0,
    PL_CODE_CANCELLED = 1,
    PL_CODE_UNKNOWN = 2,
    PL_CODE_INVALID_ARGUMENT = 3,
    PL_CODE_DEADLINE_EXCEEDED = 4,
    PL_CODE_NOT_FOUND = 5,
    PL_CODE_ALREADY_EXISTS = 6,
    PL_CODE_PERMISSION_DENIED = 7,
    PL_CODE_RESOURCE_EXHAUSTED = 8,
    PL_CODE_FAILED_PRECONDITION = 9,
    PL_CODE_ABORTED = 10,
    PL_CODE_OUT_OF_RANGE = 11,
    PL_CODE_UNIMPLEMENTED = 12,
    PL_CODE_INTERNAL = 13,
    PL_CODE_UNAVAILABLE = 14,
    PL_CODE_DATA_LOSS = 15,
    PL_CODE_UNAUTHENTICATED = 16,
} pl_code_t;

#define PL_CODE_MAX PL_CODE_UNAUTHENTICATED

/* A call's final status. The message is owned (heap) or NULL. */
typedef struct pl_status {
    pl_code_t code;
    char *message;
} pl_status_t;

/* "OK", "CANCELLED", ... ; "UNKNOWN_CODE" outside the range. */
const char *pl_code_name(int code);

/* Sets code and a copy of message (NULL allowed); frees the old message.
 * On allocation failure the message is dropped, the code kept. */
void pl_status_set(pl_status_t *st, pl_code_t code, const char *message);
void pl_status_reset(pl_status_t *st);

/* The gRPC code a client infers from an HTTP status when grpc-status is
 * absent (grpc/doc/http-grpc-status-mapping.md). */
pl_code_t pl_code_from_http(int http_status);

/* The gRPC code for an HTTP/2 RST_STREAM error code (PROTOCOL-HTTP2.md). */
pl_code_t pl_code_from_h2_error(unsigned int h2_error);

#endif
