/* b64.c — base64 via libsodium; see b64.h. */
#include "b64.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

char *pctl_b64_encode(const uint8_t *data, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(cap);
    if (!s)
        return NULL;
    sodium_bin2base64(s, cap, data, len, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

int pctl_b64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
    /* padding is optional: drop it and decode the unpadded variant */
    while (len && s[len - 1] == '=')
        len--;
    if (len == 0) {
        *out = malloc(1);
        *out_len = 0;
        return *out ? 0 : -1;
    }
    bool url = memchr(s, '-', len) || memchr(s, '_', len);
    bool std = memchr(s, '+', len) || memchr(s, '/', len);
    if (url && std)
        return -1;
    int variant = url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    size_t cap = len / 4 * 3 + 3;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -1;
    size_t n = 0;
    const char *end = NULL;
    if (sodium_base642bin(buf, cap, s, len, NULL, &n, &end, variant) != 0 || end != s + len) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}
