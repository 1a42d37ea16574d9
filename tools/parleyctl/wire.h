/* wire.h — the protobuf wire format, without any schema: varints, zigzag,
 * fixed32/64 and length-delimited fields, read from untrusted bytes (every
 * length is checked against what is left) and written into a bounded,
 * growable buffer. Groups (wire types 3 and 4) are rejected. */
#ifndef PCTL_WIRE_H
#define PCTL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    PCTL_WT_VARINT = 0,
    PCTL_WT_I64 = 1,
    PCTL_WT_LEN = 2,
    PCTL_WT_SGROUP = 3,
    PCTL_WT_EGROUP = 4,
    PCTL_WT_I32 = 5,
};

#define PCTL_MAX_FIELD_NUMBER 536870911u /* 2^29 - 1 */

/* ---- writing ---- */

typedef struct pctl_buf {
    uint8_t *data;
    size_t len, cap;
    size_t limit; /* appends beyond this many bytes fail */
} pctl_buf_t;

void pctl_buf_init(pctl_buf_t *b, size_t limit);
void pctl_buf_dispose(pctl_buf_t *b);
/* Each returns 0, or -1 when out of memory or over the limit. */
int pctl_buf_append(pctl_buf_t *b, const void *data, size_t len);
/* Makes room for len more bytes at data + len (not counted in len). */
int pctl_buf_reserve(pctl_buf_t *b, size_t len);
int pctl_buf_varint(pctl_buf_t *b, uint64_t v);
int pctl_buf_fixed32(pctl_buf_t *b, uint32_t v);
int pctl_buf_fixed64(pctl_buf_t *b, uint64_t v);
int pctl_buf_tag(pctl_buf_t *b, uint32_t field, int wire_type);
/* tag, length, bytes */
int pctl_buf_len_field(pctl_buf_t *b, uint32_t field, const void *data, size_t len);

/* ---- reading ---- */

typedef struct pctl_wire_field {
    uint32_t number;
    int wire_type;
    uint64_t value;      /* VARINT, I64 and I32 */
    const uint8_t *data; /* LEN: the payload, inside the input */
    size_t len;
} pctl_wire_field_t;

typedef struct pctl_wire_reader {
    const uint8_t *p, *end;
    const char *error; /* static text once pctl_wire_next returned -1 */
} pctl_wire_reader_t;

void pctl_wire_reader_init(pctl_wire_reader_t *r, const uint8_t *data, size_t len);
/* The next field: 1, 0 at the end of the input, -1 on malformed input. */
int pctl_wire_next(pctl_wire_reader_t *r, pctl_wire_field_t *f);
/* One varint at *p (advanced); 0 or -1 if truncated or longer than 10 bytes. */
int pctl_wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);

static inline uint64_t pctl_zigzag_encode(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t pctl_zigzag_decode(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

#endif
