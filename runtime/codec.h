/* codec.h — protobuf encode/decode between nanopb structs and byte buffers,
 * and the field callback that implements the pl_bytes_t view policy. */
#ifndef PL_RUNTIME_CODEC_H
#define PL_RUNTIME_CODEC_H

#include <pb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/views.h"

/* The callback named by the generated code for every view field.
 * Decoding records a pointer into the input (only from pl_pb_decode's
 * buffer streams); encoding writes the view's bytes. */
bool pl_pb_field_cb(pb_istream_t *istream, pb_ostream_t *ostream, const pb_field_t *field);

/* Decodes len bytes at buf into msg (which the caller zeroes or has zeroed:
 * views are not reset by nanopb). Views in msg point into buf.
 * Returns 0, or -1 with a static description in *why. */
int pl_pb_decode(const pb_msgdesc_t *desc, const uint8_t *buf, size_t len, void *msg, const char **why);

/* Size of msg once encoded, or -1 if it cannot be encoded. */
long pl_pb_encoded_size(const pb_msgdesc_t *desc, const void *msg);

/* Encodes msg into exactly size bytes at out (size from pl_pb_encoded_size). */
int pl_pb_encode(const pb_msgdesc_t *desc, const void *msg, uint8_t *out, size_t size);

/* True if the nanopb error text is a size/count overflow (the peer sent
 * more than a field's bound) rather than malformed protobuf. */
bool pl_pb_error_is_overflow(const char *why);

/* Reads the first varint field numbered field_no from encoded protobuf,
 * skipping the rest, without decoding the message (e.g. a request id out of
 * a message that failed to decode). 0, or -1 if absent or unreadable. */
int pl_pb_peek_varint(const uint8_t *buf, size_t len, uint32_t field_no, uint64_t *out);

/* Checks that every callback field of desc (recursively) follows the view
 * policy; returns 0 or -1 naming the first offending field number in *field. */
int pl_pb_check_policy(const pb_msgdesc_t *desc, uint32_t *field);

#endif
