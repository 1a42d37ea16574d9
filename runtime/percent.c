/* percent.c — grpc-message percent-encoding. */
#include "runtime/percent.h"

#include <stdint.h>
#include <stdlib.h>

static int needs_escape(unsigned char c)
{
    return c < 0x20 || c > 0x7e || c == '%';
}

char *pl_percent_encode(const char *src, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t out_len = 0;
    for (size_t i = 0; i < len; i++)
        out_len += needs_escape((unsigned char)src[i]) ? 3 : 1;
    char *out = malloc(out_len + 1);
    if (!out)
        return NULL;
    char *p = out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (needs_escape(c)) {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    *p = '\0';
    return out;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *pl_percent_decode(const char *src, size_t len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '%' && i + 2 < len) {
            int hi = hex_value(src[i + 1]), lo = hex_value(src[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out[o++] = (char)(hi << 4 | lo);
                i += 2;
                continue;
            }
        }
        out[o++] = src[i];
    }
    out[o] = '\0';
    return out;
}
