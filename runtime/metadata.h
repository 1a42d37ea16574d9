/* metadata.h — gRPC custom metadata: an ordered list of (key, value) pairs.
 *
 * Keys are lowercase [0-9a-z_.-]; values of keys ending in "-bin" are
 * binary (base64 on the wire, raw here), others printable ASCII. Storage is
 * one growable block so an empty list costs nothing, and a byte limit bounds
 * what a peer can make us keep. */
#ifndef PL_RUNTIME_METADATA_H
#define PL_RUNTIME_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pl_md_entry {
    uint32_t key_off, key_len;
    uint32_t value_off, value_len;
} pl_md_entry_t;

typedef struct pl_metadata {
    pl_md_entry_t *entries;
    uint32_t count, cap;
    uint8_t *store;
    uint32_t used, store_cap;
    uint32_t limit;     /* max key+value bytes (HTTP/2 accounting: +32 each) */
    uint32_t accounted; /* bytes counted against limit */
} pl_metadata_t;

#define PL_METADATA_INIT(limit_)                                                                                       \
    {                                                                                                                  \
        NULL, 0, 0, NULL, 0, 0, (limit_), 0                                                                            \
    }

void pl_metadata_init(pl_metadata_t *md, uint32_t limit);
void pl_metadata_dispose(pl_metadata_t *md);

/* Adds a pair; value is raw (binary for -bin keys). 0, PL_ERR_INVALID for a
 * bad key or a non-printable ASCII value, PL_ERR_LIMIT over the limit,
 * PL_ERR_NOMEM. */
int pl_metadata_add(pl_metadata_t *md, const char *key, const void *value, size_t len);
/* Adds a pair as received in an HTTP/2 header: -bin values are base64
 * (padded or not) and are decoded. */
int pl_metadata_add_wire(pl_metadata_t *md, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len);

/* First value for key, or NULL. */
const uint8_t *pl_metadata_get(const pl_metadata_t *md, const char *key, size_t *len);
void pl_metadata_at(const pl_metadata_t *md, uint32_t i, const char **key, size_t *key_len, const uint8_t **value,
                    size_t *value_len);

bool pl_metadata_key_is_valid(const uint8_t *key, size_t len);
bool pl_metadata_key_is_binary(const uint8_t *key, size_t len);
/* Headers that belong to the protocol, not to the application:
 * pseudo-headers, grpc-*, te, content-type, connection-level ones. */
bool pl_metadata_key_is_reserved(const uint8_t *key, size_t len);

/* Encodes a value for the wire into out (base64 without padding for
 * binary keys). Returns the length, or -1 if out is too small. */
long pl_metadata_wire_value(const uint8_t *key, size_t key_len, const uint8_t *value, size_t len, char *out,
                            size_t out_cap);
/* Upper bound of pl_metadata_wire_value's output. */
size_t pl_metadata_wire_len(size_t value_len);

#endif
