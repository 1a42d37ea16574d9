/* json.h — the proto3 JSON mapping, driven by pool descriptors: protobuf
 * wire bytes to JSON text (json_encode.c) and JSON values (jansson) to wire
 * bytes (json_decode.c). Well-known types in wkt.c. */
#ifndef PCTL_JSON_H
#define PCTL_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "descriptors.h"
#include "err.h"
#include "jsonw.h"
#include "wire.h"

/* Nesting of messages (and Struct/ListValue values) in either direction. */
#define PCTL_MAX_MESSAGE_DEPTH 100

typedef struct pctl_json_opts {
    bool emit_defaults; /* also print fields that hold their default value */
} pctl_json_opts_t;

/* Appends the JSON form of the message of type m in data to w. -1 on
 * malformed protobuf, a value JSON cannot carry (invalid UTF-8 in a
 * string, an out-of-range Timestamp) or an unsupported type (Any). */
int pctl_json_from_wire(const pctl_msg_t *m, const uint8_t *data, size_t len, const pctl_json_opts_t *opts,
                        pctl_jw_t *w, pctl_err_t *err);

/* Appends the wire form of the JSON value j, a message of type m, to out.
 * -1 names the offending field: unknown names, wrong JSON types, values
 * out of range, two members of one oneof, bad base64 or enum names. */
int pctl_json_to_wire(const pctl_msg_t *m, const json_t *j, pctl_buf_t *out, pctl_err_t *err);

/* json_loadb, except that a document with an integer beyond 64 bits (a
 * double printed without exponent, 1e20 as 100000000000000000000) is read
 * again with every integer as a double. Integer fields then refuse values
 * a double cannot hold exactly, so no digit is lost silently. */
json_t *pctl_json_load(const char *text, size_t len, size_t flags, json_error_t *je);

#endif
