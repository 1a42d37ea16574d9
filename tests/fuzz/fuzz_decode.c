/* fuzz_decode — every message type the server decodes from the network
 * (all generated messages of parley_idl and the interop set), fed arbitrary
 * bytes. The first byte picks the message type. Decoding must fail cleanly
 * or produce views that stay inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interop_descriptors.h"
#include "parley_idl_descriptors.h"
#include "runtime/codec.h"

#define MAX_STRUCT (256u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const pb_msgdesc_t *pick(uint8_t which)
{
    const pl_descriptor_set_t *sets[] = {&parley_idl_descriptors, &interop_descriptors};
    size_t total = 0;
    for (size_t i = 0; i < 2; i++)
        total += sets[i]->message_count;
    size_t k = which % total;
    for (size_t i = 0; i < 2; i++) {
        if (k < sets[i]->message_count)
            return sets[i]->messages[k];
        k -= sets[i]->message_count;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t msg[MAX_STRUCT];
    if (size < 1)
        return 0;
    const pb_msgdesc_t *desc = pick(data[0]);
    memset(msg, 0, sizeof(msg));
    /* copy so the views must point into this exact buffer */
    uint8_t *buf = malloc(size - 1 ? size - 1 : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size - 1);
    const char *why;
    pl_pb_decode(desc, buf, size - 1, msg, &why);
    free(buf);
    return 0;
}
