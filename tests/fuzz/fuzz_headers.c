/* fuzz_headers — the header-value parsers a request's headers reach:
 * grpc-timeout, grpc-message percent-decoding, and metadata (including -bin
 * base64) with its byte limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/metadata.h"
#include "runtime/percent.h"
#include "runtime/timeout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t usec;
    pl_timeout_parse((const char *)data, size, &usec);
    free(pl_percent_decode((const char *)data, size));
    char *enc = pl_percent_encode((const char *)data, size);
    if (enc) {
        char *dec = pl_percent_decode(enc, strlen(enc));
        if (dec && (strlen(dec) > size || memcmp(dec, data, strlen(dec)) != 0))
            abort(); /* encode then decode must give the input back (up to a NUL) */
        free(dec);
        free(enc);
    }
    /* split at the first ':' into key and value */
    const uint8_t *colon = memchr(data, ':', size);
    if (colon) {
        pl_metadata_t md = PL_METADATA_INIT(4096);
        size_t klen = (size_t)(colon - data);
        pl_metadata_add_wire(&md, data, klen, colon + 1, size - klen - 1);
        pl_metadata_add_wire(&md, (const uint8_t *)"x-bin", 5, colon + 1, size - klen - 1);
        pl_metadata_dispose(&md);
    }
    return 0;
}
