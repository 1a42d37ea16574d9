/* validate.c — checks of what clients send: UTF-8 text, group names and
 * descriptions, and ids (which must carry a shard of this cluster). */
#include <stdlib.h>
#include <string.h>

#include "chats/chats_internal.h"

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
 * U+10FFFF. */
bool pl_chats_is_utf8(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned min, cp;
        if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

static bool has_control(const char *s, bool allow_newlines)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (allow_newlines && (*p == '\n' || *p == '\t'))
            continue;
        if (*p < 0x20 || *p == 0x7f)
            return true;
    }
    return false;
}

const char *pl_chats_check_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0)
        return "name is required";
    if (len > CHATS_NAME_MAX)
        return "name is longer than 128 bytes";
    if (!pl_chats_is_utf8(s, len))
        return "name is not valid UTF-8";
    if (has_control(s, false))
        return "name contains control characters";
    if (strspn(s, " ") == len)
        return "name is blank";
    return NULL;
}

const char *pl_chats_check_request_id(const char *s)
{
    size_t len = strlen(s);
    if (len > CHATS_REQUEST_ID_MAX)
        return "client_request_id is longer than 64 bytes";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return "client_request_id must be printable ASCII without spaces";
    return NULL;
}

const char *pl_chats_check_description(const char *s)
{
    size_t len = strlen(s);
    if (len > CHATS_DESCRIPTION_MAX)
        return "description is longer than 1024 bytes";
    if (!pl_chats_is_utf8(s, len))
        return "description is not valid UTF-8";
    if (has_control(s, true))
        return "description contains control characters";
    return NULL;
}

bool pl_chats_is_account_id(const pl_app_t *app, int64_t id)
{
    return id > 0 && pl_id_is_valid(id) && pl_id_shard(id) < app->map.shards;
}

bool pl_chats_is_chat_id(const pl_app_t *app, int64_t id)
{
    return pl_chats_is_account_id(app, id);
}
