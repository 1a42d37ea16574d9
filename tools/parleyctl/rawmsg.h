/* rawmsg.h — calls with already-encoded protobuf messages through the
 * typed client runtime (client/, runtime/rpc.h), which only knows
 * nanopb structs. A pctl_raw_t is a nanopb message with one extension
 * field that writes its bytes verbatim when encoded and takes in every
 * field when decoded, so the runtime frames, compresses and delivers bytes
 * it never interprets. */
#ifndef PCTL_RAWMSG_H
#define PCTL_RAWMSG_H

#include <pb.h>
#include <stdbool.h>

#include "runtime/rpc.h"
#include "wire.h"

typedef struct pctl_raw {
    pb_extension_t *extensions; /* nanopb's field: points at ext */
    pb_extension_t ext;
    const uint8_t *out_data; /* what pl_ccall_send writes (borrowed) */
    size_t out_len;
    pctl_buf_t in; /* what pl_ccall_recv received (owned) */
} pctl_raw_t;

/* Prepares r; limit bounds a received message. */
void pctl_raw_init(pctl_raw_t *r, size_t limit);
void pctl_raw_dispose(pctl_raw_t *r);
/* Sets the bytes the next send writes (borrowed until then). */
void pctl_raw_set(pctl_raw_t *r, const uint8_t *data, size_t len);
/* Forgets the last received message before the next recv. */
void pctl_raw_clear_in(pctl_raw_t *r);

/* A method whose request and response are pctl_raw_t; path is borrowed. */
void pctl_raw_method(pl_method_t *m, const char *path, pl_call_shape_t shape);

#endif
