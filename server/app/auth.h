/* auth.h — device credentials: tokens, and authenticating a call.
 *
 * A token is base64url (no padding) of the device id (8 bytes, big-endian)
 * followed by 32 random bytes. The id routes the lookup to the device's
 * shard; only a BLAKE2b hash of the random part is stored, compared in
 * constant time. Sent as "authorization: Bearer <token>". */
#ifndef PL_APP_AUTH_H
#define PL_APP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "app/app.h"

#define PL_TOKEN_SECRET_BYTES 32
#define PL_TOKEN_HASH_BYTES 32
#define PL_TOKEN_LEN 54 /* base64url of 40 bytes, no padding */

typedef struct pl_principal {
    int64_t account_id;
    int64_t device_id;
} pl_principal_t;

/* Registers the lookup statement; before the server starts. */
int pl_auth_init(pl_app_t *app);

/* A new token for device_id into token (PL_TOKEN_LEN + 1 bytes) and the hash
 * to store. */
void pl_auth_new_token(int64_t device_id, char *token, uint8_t hash[PL_TOKEN_HASH_BYTES]);
/* 0 and the parts, or -1 if s is not a well-formed token. */
int pl_auth_parse_token(const char *s, size_t len, int64_t *device_id, uint8_t secret[PL_TOKEN_SECRET_BYTES]);
void pl_auth_hash_secret(const uint8_t secret[PL_TOKEN_SECRET_BYTES], uint8_t hash[PL_TOKEN_HASH_BYTES]);

/* Authenticates the call from its metadata. On success fn runs (on the
 * call's worker, later) with the principal. Otherwise the call is finished
 * (UNAUTHENTICATED, or UNAVAILABLE when storage is down) and fn never runs. */
typedef void (*pl_auth_fn)(pl_call_t *call, const pl_principal_t *who, void *user);
void pl_auth_call(const pl_app_t *app, pl_call_t *call, pl_auth_fn fn, void *user);

#endif
