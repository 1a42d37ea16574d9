/* wire.c — protobuf wire format reading and writing; see wire.h. */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

void pctl_buf_init(pctl_buf_t *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit;
}

void pctl_buf_dispose(pctl_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int pctl_buf_reserve(pctl_buf_t *b, size_t len)
{
    if (len > b->limit || b->len > b->limit - len)
        return -1;
    if (b->cap - b->len < len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < len) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    return 0;
}

int pctl_buf_append(pctl_buf_t *b, const void *data, size_t len)
{
    if (pctl_buf_reserve(b, len) != 0)
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int pctl_buf_varint(pctl_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    return pctl_buf_append(b, tmp, n);
}

int pctl_buf_fixed32(pctl_buf_t *b, uint32_t v)
{
    uint8_t tmp[4];
    for (int i = 0; i < 4; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    return pctl_buf_append(b, tmp, 4);
}

int pctl_buf_fixed64(pctl_buf_t *b, uint64_t v)
{
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    return pctl_buf_append(b, tmp, 8);
}

int pctl_buf_tag(pctl_buf_t *b, uint32_t field, int wire_type)
{
    return pctl_buf_varint(b, ((uint64_t)field << 3) | (uint64_t)wire_type);
}

int pctl_buf_len_field(pctl_buf_t *b, uint32_t field, const void *data, size_t len)
{
    if (pctl_buf_tag(b, field, PCTL_WT_LEN) != 0 || pctl_buf_varint(b, len) != 0)
        return -1;
    return pctl_buf_append(b, data, len);
}

void pctl_wire_reader_init(pctl_wire_reader_t *r, const uint8_t *data, size_t len)
{
    r->p = data;
    r->end = data ? data + len : data;
    r->error = NULL;
}

int pctl_wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t out = 0;
    const uint8_t *q = *p;
    for (int shift = 0; shift < 70; shift += 7) {
        if (q == end)
            return -1;
        uint8_t byte = *q++;
        if (shift == 63 && byte > 1)
            return -1; /* more than 64 bits */
        out |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *p = q;
            *v = out;
            return 0;
        }
    }
    return -1;
}

static int fail(pctl_wire_reader_t *r, const char *why)
{
    r->error = why;
    return -1;
}

int pctl_wire_next(pctl_wire_reader_t *r, pctl_wire_field_t *f)
{
    if (r->p == r->end)
        return 0;
    uint64_t key;
    if (pctl_wire_varint(&r->p, r->end, &key) != 0)
        return fail(r, "truncated or overlong field key");
    uint64_t number = key >> 3;
    if (number == 0 || number > PCTL_MAX_FIELD_NUMBER)
        return fail(r, "invalid field number");
    f->number = (uint32_t)number;
    f->wire_type = (int)(key & 7);
    f->value = 0;
    f->data = NULL;
    f->len = 0;
    size_t left;
    switch (f->wire_type) {
    case PCTL_WT_VARINT:
        if (pctl_wire_varint(&r->p, r->end, &f->value) != 0)
            return fail(r, "truncated or overlong varint");
        return 1;
    case PCTL_WT_I64:
    case PCTL_WT_I32: {
        size_t n = f->wire_type == PCTL_WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return fail(r, "truncated fixed-width value");
        for (size_t i = 0; i < n; i++)
            f->value |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return 1;
    }
    case PCTL_WT_LEN: {
        uint64_t len;
        if (pctl_wire_varint(&r->p, r->end, &len) != 0)
            return fail(r, "truncated length");
        left = (size_t)(r->end - r->p);
        if (len > left)
            return fail(r, "length-delimited field runs past the end of its message");
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        return 1;
    }
    case PCTL_WT_SGROUP:
    case PCTL_WT_EGROUP: return fail(r, "groups are not supported");
    default: return fail(r, "invalid wire type");
    }
}
