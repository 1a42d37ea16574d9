/* auth.c — tokens and the per-call device lookup. */
#include "app/auth.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/log.h"
#include "runtime/errors.h"

static const pl_pg_stmt_t statements[] = {
    {"auth_device", "SELECT account_id, token_hash FROM {s}.devices WHERE id = $1::bigint AND revoked_at IS NULL",
     true},
};

int pl_auth_init(pl_app_t *app)
{
    app->auth_stmt = pl_app_add_statements(app, statements, 1);
    return app->auth_stmt < 0 ? -1 : 0;
}

void pl_auth_hash_secret(const uint8_t secret[PL_TOKEN_SECRET_BYTES], uint8_t hash[PL_TOKEN_HASH_BYTES])
{
    crypto_generichash(hash, PL_TOKEN_HASH_BYTES, secret, PL_TOKEN_SECRET_BYTES, NULL, 0);
}

void pl_auth_new_token(int64_t device_id, char *token, uint8_t hash[PL_TOKEN_HASH_BYTES])
{
    uint8_t raw[8 + PL_TOKEN_SECRET_BYTES];
    for (int i = 0; i < 8; i++)
        raw[i] = (uint8_t)((uint64_t)device_id >> (56 - 8 * i));
    randombytes_buf(raw + 8, PL_TOKEN_SECRET_BYTES);
    sodium_bin2base64(token, PL_TOKEN_LEN + 1, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    pl_auth_hash_secret(raw + 8, hash);
    sodium_memzero(raw, sizeof(raw));
}

int pl_auth_parse_token(const char *s, size_t len, int64_t *device_id, uint8_t secret[PL_TOKEN_SECRET_BYTES])
{
    uint8_t raw[8 + PL_TOKEN_SECRET_BYTES];
    size_t n = 0;
    /* libsodium maps some bytes outside the alphabet to digits: only the
     * canonical alphabet may reach it */
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return -1;
    }
    if (len != PL_TOKEN_LEN ||
        sodium_base642bin(raw, sizeof(raw), s, len, NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != sizeof(raw))
        return -1;
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = id << 8 | raw[i];
    memcpy(secret, raw + 8, PL_TOKEN_SECRET_BYTES);
    sodium_memzero(raw, sizeof(raw));
    *device_id = (int64_t)id;
    return pl_id_is_valid(*device_id) ? 0 : -1;
}

typedef struct auth_req {
    pl_auth_fn fn;
    void *user;
    int64_t device_id;
    uint8_t secret[PL_TOKEN_SECRET_BYTES];
} auth_req_t;

static void on_device(pl_call_t *call, const pl_pg_result_t *r, void *user)
{
    auth_req_t *a = user;
    const char *message;
    if (pl_call_is_finished(call)) {
        /* cancelled or timed out meanwhile: nothing left to answer */
    } else if (r->code != PL_CODE_OK) {
        pl_call_finish(call, pl_query_failure(r, "auth: device lookup", &message), message);
    } else {
        bool ok = false;
        pl_principal_t who = {0, a->device_id};
        if (PQntuples(r->res) == 1) {
            size_t n;
            const uint8_t *stored = pl_pg_get_bytes(r->res, 0, 1, &n);
            uint8_t hash[PL_TOKEN_HASH_BYTES];
            pl_auth_hash_secret(a->secret, hash);
            ok = n == PL_TOKEN_HASH_BYTES && sodium_memcmp(hash, stored, n) == 0;
            who.account_id = pl_pg_get_int64(r->res, 0, 0);
        }
        if (ok) {
            pl_call_mark_authenticated(call);
            a->fn(call, &who, a->user);
        } else {
            pl_log_debug("auth: device %lld refused: %d rows, %d fields, status %s, cmd %s", (long long)a->device_id,
                         PQntuples(r->res), PQnfields(r->res), PQresStatus(PQresultStatus(r->res)),
                         PQcmdStatus(r->res));
            pl_call_finish(call, PL_CODE_UNAUTHENTICATED, "invalid or revoked token");
        }
    }
    sodium_memzero(a->secret, sizeof(a->secret));
    free(a);
}

void pl_auth_call(const pl_app_t *app, pl_call_t *call, pl_auth_fn fn, void *user)
{
    size_t len;
    const uint8_t *v = pl_metadata_get(pl_call_metadata(call), "authorization", &len);
    static const char bearer[] = "Bearer ";
    if (!v || len < sizeof(bearer) - 1 || strncasecmp((const char *)v, bearer, sizeof(bearer) - 1) != 0) {
        pl_call_finish(call, PL_CODE_UNAUTHENTICATED, "missing \"authorization: Bearer <token>\" metadata");
        return;
    }
    auth_req_t *a = calloc(1, sizeof(*a));
    if (!a) {
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (pl_auth_parse_token((const char *)v + sizeof(bearer) - 1, len - (sizeof(bearer) - 1), &a->device_id,
                            a->secret) != 0) {
        free(a);
        pl_call_finish(call, PL_CODE_UNAUTHENTICATED, "malformed token");
        return;
    }
    if (pl_id_shard(a->device_id) >= app->map.shards) {
        free(a);
        pl_call_finish(call, PL_CODE_UNAUTHENTICATED, "invalid or revoked token");
        return;
    }
    a->fn = fn;
    a->user = user;
    uint8_t id[8];
    pl_pg_param_t p = pl_pg_int8(id, a->device_id);
    if (pl_call_query(app, call, app->auth_stmt, pl_id_shard(a->device_id), &p, 1, PL_PG_IDEMPOTENT, on_device, a) !=
        0) {
        free(a);
        pl_call_finish(call, PL_CODE_UNAVAILABLE, "server busy; retry");
    }
}
