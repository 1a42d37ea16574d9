/* fuzz_push_answer.c — an APNs or FCM answer (status, Retry-After, body)
 * read by server/push: any bytes a provider, or whoever stands where it
 * should, sends back. The first two bytes pick the status, the third the
 * Retry-After, the rest is the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "push/apns.h"
#include "push/fcm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    char *body = malloc(size - 3 + 1);
    if (!body)
        return 0;
    memcpy(body, data + 3, size - 3);
    body[size - 3] = '\0';
    pl_http_response_t res = {.status = (long)((data[0] << 8 | data[1]) % 600),
                              .retry_after_s = data[2] == 255 ? -1 : data[2],
                              .body = body,
                              .body_len = size - 3};
    pl_push_result_t out;
    pl_apns_read_answer(&res, &out);
    if (out.outcome > PL_PUSH_REFUSED || strlen(out.reason) >= sizeof(out.reason))
        abort();
    pl_fcm_read_answer(&res, &out);
    if (out.outcome > PL_PUSH_REFUSED || strlen(out.reason) >= sizeof(out.reason))
        abort();
    free(body);
    return 0;
}
