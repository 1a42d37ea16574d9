/* frame.h — gRPC message framing: 1-byte compressed flag, 4-byte big-endian
 * length, payload (PROTOCOL-HTTP2.md "Length-Prefixed-Message").
 *
 * The deframer is incremental: feed it DATA frame payloads as they arrive;
 * it reassembles one message at a time into a buffer that grows only as
 * bytes arrive and never beyond max_message. */
#ifndef PL_RUNTIME_FRAME_H
#define PL_RUNTIME_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_FRAME_HEADER_LEN 5

void pl_frame_header_write(uint8_t out[PL_FRAME_HEADER_LEN], bool compressed, uint32_t len);

typedef enum pl_deframe_result {
    PL_DEFRAME_NEED_MORE = 0,  /* all input consumed, no complete message */
    PL_DEFRAME_MESSAGE = 1,    /* a message is complete: take it, then feed the rest */
    PL_DEFRAME_TOO_LARGE = -1, /* declared length exceeds max_message */
    PL_DEFRAME_BAD_FLAG = -2,  /* flag byte other than 0 or 1 */
    PL_DEFRAME_NOMEM = -3,
} pl_deframe_result_t;

typedef struct pl_deframer {
    uint8_t header[PL_FRAME_HEADER_LEN];
    uint8_t header_have;
    bool compressed;
    uint32_t length; /* of the current message, once the header is complete */
    uint32_t have;   /* payload bytes received so far */
    uint8_t *buf;    /* payload; grown as bytes arrive */
    uint32_t buf_cap;
    uint32_t max_message;
} pl_deframer_t;

void pl_deframer_init(pl_deframer_t *d, uint32_t max_message);
void pl_deframer_dispose(pl_deframer_t *d);

/* Consumes from data[0..len) until a message completes or input runs out;
 * *used says how much was consumed. After PL_DEFRAME_MESSAGE, call
 * pl_deframer_take() before feeding more. */
pl_deframe_result_t pl_deframer_feed(pl_deframer_t *d, const uint8_t *data, size_t len, size_t *used);

/* Hands over the completed message: *payload is owned by the caller (free())
 * and may be NULL for an empty message. */
void pl_deframer_take(pl_deframer_t *d, uint8_t **payload, uint32_t *len, bool *compressed);

/* True when a message is partially received (a stream ending now is truncated). */
bool pl_deframer_is_mid_message(const pl_deframer_t *d);

/* Declared length of the message in progress (valid once its header is in). */
static inline uint32_t pl_deframer_declared_length(const pl_deframer_t *d)
{
    return d->length;
}

#endif
