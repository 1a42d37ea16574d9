/* gzip.h — the "gzip" grpc-encoding (zlib with the gzip wrapper). */
#ifndef PL_RUNTIME_GZIP_H
#define PL_RUNTIME_GZIP_H

#include <stddef.h>
#include <stdint.h>

/* Compresses src; *out is malloc()ed (caller frees). 0 or PL_ERR_*. */
int pl_gzip_compress(const uint8_t *src, size_t len, uint8_t **out, size_t *out_len);

/* Decompresses src; output beyond max_out fails with PL_ERR_LIMIT before
 * it is produced (a decompression bomb costs at most max_out bytes).
 * 0, PL_ERR_LIMIT, PL_ERR_PROTO (corrupt) or PL_ERR_NOMEM. */
int pl_gzip_decompress(const uint8_t *src, size_t len, size_t max_out, uint8_t **out, size_t *out_len);

#endif
