/* frame.c — gRPC length-prefixed message framing. */
#include "runtime/frame.h"

#include <stdlib.h>
#include <string.h>

void pl_frame_header_write(uint8_t out[PL_FRAME_HEADER_LEN], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

void pl_deframer_init(pl_deframer_t *d, uint32_t max_message)
{
    memset(d, 0, sizeof(*d));
    d->max_message = max_message;
}

void pl_deframer_dispose(pl_deframer_t *d)
{
    free(d->buf);
    pl_deframer_init(d, d->max_message);
}

bool pl_deframer_is_mid_message(const pl_deframer_t *d)
{
    return d->header_have > 0;
}

/* Grows geometrically but never past the declared length: a peer that
 * announces 4 MiB and sends 10 bytes costs us 10 bytes, not 4 MiB. */
static int ensure_capacity(pl_deframer_t *d, uint32_t need)
{
    if (need <= d->buf_cap)
        return 0;
    uint32_t cap = d->buf_cap ? d->buf_cap : 256;
    while (cap < need)
        cap = cap > d->length / 2 ? d->length : cap * 2;
    if (cap < need)
        cap = need;
    uint8_t *b = realloc(d->buf, cap);
    if (!b)
        return -1;
    d->buf = b;
    d->buf_cap = cap;
    return 0;
}

pl_deframe_result_t pl_deframer_feed(pl_deframer_t *d, const uint8_t *data, size_t len, size_t *used)
{
    size_t pos = 0;
    *used = 0;
    if (d->header_have < PL_FRAME_HEADER_LEN) {
        size_t n = PL_FRAME_HEADER_LEN - d->header_have;
        if (n > len)
            n = len;
        memcpy(d->header + d->header_have, data, n);
        d->header_have += (uint8_t)n;
        pos += n;
        *used = pos;
        if (d->header_have < PL_FRAME_HEADER_LEN)
            return PL_DEFRAME_NEED_MORE;
        if (d->header[0] > 1)
            return PL_DEFRAME_BAD_FLAG;
        d->compressed = d->header[0] == 1;
        d->length =
            (uint32_t)d->header[1] << 24 | (uint32_t)d->header[2] << 16 | (uint32_t)d->header[3] << 8 | d->header[4];
        if (d->length > d->max_message)
            return PL_DEFRAME_TOO_LARGE;
        d->have = 0;
    }
    size_t want = d->length - d->have;
    size_t n = len - pos < want ? len - pos : want;
    if (n > 0) {
        if (ensure_capacity(d, d->have + (uint32_t)n) != 0)
            return PL_DEFRAME_NOMEM;
        memcpy(d->buf + d->have, data + pos, n);
        d->have += (uint32_t)n;
        pos += n;
    }
    *used = pos;
    return d->have == d->length ? PL_DEFRAME_MESSAGE : PL_DEFRAME_NEED_MORE;
}

void pl_deframer_take(pl_deframer_t *d, uint8_t **payload, uint32_t *len, bool *compressed)
{
    *payload = d->buf;
    *len = d->length;
    *compressed = d->compressed;
    d->buf = NULL;
    d->buf_cap = 0;
    d->header_have = 0;
    d->length = 0;
    d->have = 0;
    d->compressed = false;
}
