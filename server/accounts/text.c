/* text.c — checking the text users give us (names, about) and copying
 * stored text into bounded response fields without breaking characters. */
#include <string.h>

#include "accounts/accounts_internal.h"

/* Length of the UTF-8 sequence at s (n bytes left) and its code point, or
 * 0 if it is not a well-formed, shortest-form scalar value. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

const char *pl_acct_text_problem(const char *s, size_t len, size_t max, bool allow_newline)
{
    if (len > max)
        return "is too long";
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0)
            return "is not valid UTF-8";
        if ((cp < 0x20 && !(allow_newline && cp == '\n')) || (cp >= 0x7f && cp <= 0x9f))
            return "contains control characters";
        i += n;
    }
    return NULL;
}

void pl_acct_copy_text(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap) {
        len = cap - 1;
        /* back off to the start of the character that did not fit */
        while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
            len--;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}
