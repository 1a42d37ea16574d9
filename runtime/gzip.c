/* gzip.c — gzip message compression with a hard output bound. */
#include "runtime/gzip.h"

#include <stdlib.h>
#include <zlib.h>

#include "runtime/errors.h"

#define GZIP_WINDOW_BITS (15 + 16) /* 15-bit window, gzip wrapper */

int pl_gzip_compress(const uint8_t *src, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream zs = {0};
    if (len > UINT32_MAX)
        return PL_ERR_LIMIT;
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZIP_WINDOW_BITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return PL_ERR_NOMEM;
    size_t cap = deflateBound(&zs, (uLong)len);
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) {
        deflateEnd(&zs);
        return PL_ERR_NOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.avail_in = (uInt)len;
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(buf);
        return PL_ERR_NOMEM;
    }
    *out = buf;
    *out_len = zs.total_out;
    return 0;
}

int pl_gzip_decompress(const uint8_t *src, size_t len, size_t max_out, uint8_t **out, size_t *out_len)
{
    z_stream zs = {0};
    if (len > UINT32_MAX || max_out > UINT32_MAX - 1)
        return PL_ERR_LIMIT;
    if (inflateInit2(&zs, GZIP_WINDOW_BITS) != Z_OK)
        return PL_ERR_NOMEM;
    /* One byte of slack past max_out tells "exactly max_out" from "more". */
    size_t hard_cap = max_out + 1;
    size_t cap = len * 4 < 4096 ? 4096 : len * 4;
    if (cap > hard_cap)
        cap = hard_cap;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        inflateEnd(&zs);
        return PL_ERR_NOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.avail_in = (uInt)len;
    int rc = 0;
    for (;;) {
        zs.next_out = buf + zs.total_out;
        zs.avail_out = (uInt)(cap - zs.total_out);
        int zrc = inflate(&zs, Z_NO_FLUSH);
        if (zs.total_out > max_out) {
            rc = PL_ERR_LIMIT;
            break;
        }
        if (zrc == Z_STREAM_END) {
            /* a gRPC message is one gzip member; anything after it is corrupt */
            if (zs.avail_in != 0)
                rc = PL_ERR_PROTO;
            break;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = zrc == Z_MEM_ERROR ? PL_ERR_NOMEM : PL_ERR_PROTO;
            break;
        }
        if (zs.avail_out != 0) { /* input ended before the gzip trailer */
            rc = PL_ERR_PROTO;
            break;
        }
        size_t ncap = cap * 2 > hard_cap ? hard_cap : cap * 2;
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) {
            rc = PL_ERR_NOMEM;
            break;
        }
        buf = nb;
        cap = ncap;
    }
    size_t produced = zs.total_out;
    inflateEnd(&zs);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = produced;
    return 0;
}
