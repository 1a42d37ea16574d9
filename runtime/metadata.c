/* metadata.c — metadata list storage, key rules and -bin encoding. */
#include "runtime/metadata.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/errors.h"

/* RFC 7541 §4.1 counts 32 bytes of overhead per header; so do we, so a
 * flood of empty headers is bounded too. */
#define ENTRY_OVERHEAD 32

void pl_metadata_init(pl_metadata_t *md, uint32_t limit)
{
    memset(md, 0, sizeof(*md));
    md->limit = limit;
}

void pl_metadata_dispose(pl_metadata_t *md)
{
    free(md->entries);
    free(md->store);
    uint32_t limit = md->limit;
    pl_metadata_init(md, limit);
}

bool pl_metadata_key_is_valid(const uint8_t *key, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

bool pl_metadata_key_is_binary(const uint8_t *key, size_t len)
{
    return len > 4 && memcmp(key + len - 4, "-bin", 4) == 0;
}

static bool key_equals(const uint8_t *key, size_t len, const char *s)
{
    size_t n = strlen(s);
    return n == len && memcmp(key, s, n) == 0;
}

bool pl_metadata_key_is_reserved(const uint8_t *key, size_t len)
{
    static const char *const reserved[] = {
        "te", "content-type", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"};
    if (len > 0 && key[0] == ':')
        return true;
    if (len >= 5 && memcmp(key, "grpc-", 5) == 0)
        return true;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (key_equals(key, len, reserved[i]))
            return true;
    return false;
}

static bool value_is_printable(const uint8_t *v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (v[i] < 0x20 || v[i] > 0x7e)
            return false;
    return true;
}

static int reserve(pl_metadata_t *md, size_t bytes)
{
    if (md->count == md->cap) {
        uint32_t cap = md->cap ? md->cap * 2 : 4;
        pl_md_entry_t *e = realloc(md->entries, cap * sizeof(*e));
        if (!e)
            return PL_ERR_NOMEM;
        md->entries = e;
        md->cap = cap;
    }
    if ((size_t)md->used + bytes > md->store_cap) {
        size_t cap = md->store_cap ? md->store_cap : 128;
        while (cap < (size_t)md->used + bytes)
            cap *= 2;
        uint8_t *s = realloc(md->store, cap);
        if (!s)
            return PL_ERR_NOMEM;
        md->store = s;
        md->store_cap = (uint32_t)cap;
    }
    return 0;
}

/* cost: what the entry counts against the limit (its size on the wire). */
static int add_raw(pl_metadata_t *md, const uint8_t *key, size_t key_len, const uint8_t *value, size_t len, size_t cost)
{
    if (key_len > UINT32_MAX / 4 || len > UINT32_MAX / 4 || (size_t)md->accounted + cost > md->limit)
        return PL_ERR_LIMIT;
    int rc = reserve(md, key_len + len);
    if (rc)
        return rc;
    pl_md_entry_t *e = &md->entries[md->count++];
    e->key_off = md->used;
    e->key_len = (uint32_t)key_len;
    memcpy(md->store + md->used, key, key_len);
    md->used += (uint32_t)key_len;
    e->value_off = md->used;
    e->value_len = (uint32_t)len;
    if (len)
        memcpy(md->store + md->used, value, len);
    md->used += (uint32_t)len;
    md->accounted += (uint32_t)cost;
    return 0;
}

int pl_metadata_add(pl_metadata_t *md, const char *key, const void *value, size_t len)
{
    const uint8_t *k = (const uint8_t *)key;
    size_t key_len = strlen(key);
    if (!pl_metadata_key_is_valid(k, key_len) || pl_metadata_key_is_reserved(k, key_len))
        return PL_ERR_INVALID;
    if (!pl_metadata_key_is_binary(k, key_len) && !value_is_printable(value, len))
        return PL_ERR_INVALID;
    return add_raw(md, k, key_len, value, len, key_len + len + ENTRY_OVERHEAD);
}

int pl_metadata_add_wire(pl_metadata_t *md, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len)
{
    if (!pl_metadata_key_is_valid(key, key_len))
        return PL_ERR_INVALID;
    if (!pl_metadata_key_is_binary(key, key_len)) {
        if (!value_is_printable(value, value_len))
            return PL_ERR_INVALID; /* gRPC ASCII values are 0x20..0x7E */
        return add_raw(md, key, key_len, value, value_len, key_len + value_len + ENTRY_OVERHEAD);
    }
    /* Decoded size is at most 3/4 of the text; account before decoding so
     * the limit also bounds the scratch buffer. */
    if ((size_t)md->accounted + key_len + value_len + ENTRY_OVERHEAD > md->limit)
        return PL_ERR_LIMIT;
    size_t cap = value_len / 4 * 3 + 3;
    uint8_t stackbuf[256];
    uint8_t *bin = cap <= sizeof(stackbuf) ? stackbuf : malloc(cap);
    if (!bin)
        return PL_ERR_NOMEM;
    size_t bin_len = 0;
    int variant = (value_len % 4 == 0 && value_len && value[value_len - 1] == '=')
                      ? sodium_base64_VARIANT_ORIGINAL
                      : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    int rc = sodium_base642bin(bin, cap, (const char *)value, value_len, NULL, &bin_len, NULL, variant);
    if (rc == 0)
        rc = add_raw(md, key, key_len, bin, bin_len, key_len + value_len + ENTRY_OVERHEAD);
    else
        rc = PL_ERR_INVALID;
    if (bin != stackbuf)
        free(bin);
    return rc;
}

const uint8_t *pl_metadata_get(const pl_metadata_t *md, const char *key, size_t *len)
{
    size_t key_len = strlen(key);
    for (uint32_t i = 0; i < md->count; i++) {
        const pl_md_entry_t *e = &md->entries[i];
        if (e->key_len == key_len && memcmp(md->store + e->key_off, key, key_len) == 0) {
            if (len)
                *len = e->value_len;
            return md->store + e->value_off;
        }
    }
    return NULL;
}

void pl_metadata_at(const pl_metadata_t *md, uint32_t i, const char **key, size_t *key_len, const uint8_t **value,
                    size_t *value_len)
{
    const pl_md_entry_t *e = &md->entries[i];
    *key = (const char *)md->store + e->key_off;
    *key_len = e->key_len;
    *value = md->store + e->value_off;
    *value_len = e->value_len;
}

size_t pl_metadata_wire_len(size_t value_len)
{
    return sodium_base64_ENCODED_LEN(value_len, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

long pl_metadata_wire_value(const uint8_t *key, size_t key_len, const uint8_t *value, size_t len, char *out,
                            size_t out_cap)
{
    if (!pl_metadata_key_is_binary(key, key_len)) {
        if (len > out_cap)
            return -1;
        memcpy(out, value, len);
        return (long)len;
    }
    if (pl_metadata_wire_len(len) > out_cap)
        return -1;
    sodium_bin2base64(out, out_cap, value, len, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    return (long)strlen(out);
}
