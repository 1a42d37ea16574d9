/* random_id.c — 128 random bits as hex, unique enough that two keys of one
 * device never meet. */
#include "api/random_id.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>

int pl_random_id(char out[PL_RANDOM_ID_LEN + 1])
{
    uint8_t raw[PL_RANDOM_ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[PL_RANDOM_ID_LEN] = '\0';
    return 0;
}
