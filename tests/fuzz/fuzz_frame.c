/* fuzz_frame — the gRPC message deframer fed arbitrary DATA payloads in
 * arbitrary chunks: it must never over-read, over-allocate or lose track. */
#include <stdint.h>
#include <stdlib.h>

#include "runtime/frame.h"

#define MAX_MESSAGE (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* first byte: chunk size, so chunk boundaries are explored too */
    size_t chunk = (size_t)data[0] + 1;
    data++;
    size--;
    pl_deframer_t d;
    pl_deframer_init(&d, MAX_MESSAGE);
    size_t pos = 0;
    while (pos < size) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        size_t off = 0;
        while (off < n) {
            size_t used;
            pl_deframe_result_t r = pl_deframer_feed(&d, data + pos + off, n - off, &used);
            off += used;
            if (r == PL_DEFRAME_MESSAGE) {
                uint8_t *payload;
                uint32_t len;
                bool compressed;
                pl_deframer_take(&d, &payload, &len, &compressed);
                if (len > MAX_MESSAGE)
                    abort();
                free(payload);
            } else if (r < 0) {
                pl_deframer_dispose(&d);
                return 0;
            } else if (used == 0 && off < n) {
                abort(); /* no progress on non-empty input */
            }
        }
        pos += n;
    }
    pl_deframer_dispose(&d);
    return 0;
}
