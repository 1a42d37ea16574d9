/* request_code.c — RequestCode: rate limits, a new one-time code stored
 * hashed (replacing any earlier one for the number), and the SMS.
 *
 *   1. the number must be E.164 (INVALID_ARGUMENT)
 *   2. the client address's bucket, then the number's (Redis token buckets,
 *      [rate] codes_per_address_per_hour / codes_per_phone_per_hour):
 *      RESOURCE_EXHAUSTED "... retry after N ms". The address goes first so
 *      that a client over its own limit cannot drain a victim number's
 *      bucket. Redis unreachable: UNAVAILABLE — this fails closed, because
 *      every code sent costs money and an open relay would be abused.
 *   3. store_code() (migrations/0004): the sealed code, expiring in 10 min
 *   4. the SMS provider; only then the reply (expires_in_ms).
 *
 * The code lives in this call's state from step 3 to 4, is wiped when the
 * call ends, and is never logged or returned. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "accounts/accounts_internal.h"
#include "app/log.h"

typedef struct request_code {
    pl_acct_req_t base;
    char code[PL_OTP_DIGITS + 1];
} request_code_t;

static void wipe(pl_op_t *op)
{
    request_code_t *q = op->state;
    sodium_memzero(q->code, sizeof(q->code));
}

/* The per-address bucket's key: the address itself for IPv4, its /64 for
 * IPv6 (one subscriber usually holds a whole /64; an IPv4-mapped address
 * is its IPv4 address). */
void pl_acct_address_bucket(const char *peer, char *name, size_t len)
{
    struct in6_addr a6;
    char net[INET6_ADDRSTRLEN];
    if (strchr(peer, ':') && inet_pton(AF_INET6, peer, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) { /* an IPv4 client of a dual-stack socket */
            if (inet_ntop(AF_INET, a6.s6_addr + 12, net, sizeof(net))) {
                snprintf(name, len, "otp:addr:%s", net);
                return;
            }
        } else {
            memset(a6.s6_addr + 8, 0, 8);
            if (inet_ntop(AF_INET6, &a6, net, sizeof(net))) {
                snprintf(name, len, "otp:addr:%s/64", net);
                return;
            }
        }
    }
    snprintf(name, len, "otp:addr:%s", peer);
}

static void on_sent(int rc, void *user)
{
    pl_op_t *op = user;
    wipe(op);
    if (rc != 0) {
        pl_op_fail(op, PL_CODE_UNAVAILABLE, "cannot send the code right now; retry later");
    } else if (!op->is_failed) {
        parley_v1_RequestCodeResponse resp = {0};
        resp.expires_in_ms = PL_ACCT_CODE_TTL_MS;
        parley_v1_Accounts_RequestCode_reply(op->call, &resp);
    }
    pl_op_release(op);
}

static void on_stored(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)res;
    (void)arg;
    request_code_t *q = op->state;
    pl_sms_t *sms = q->base.svc->sms;
    pl_op_hold(op); /* until on_sent */
    sms->send(sms, pl_call_worker(op->call), ((const parley_v1_RequestCodeRequest *)q->base.msg)->phone_number, q->code,
              on_sent, op);
}

static void store_code(pl_op_t *op)
{
    request_code_t *q = op->state;
    const char *phone = ((const parley_v1_RequestCodeRequest *)q->base.msg)->phone_number;
    uint8_t sealed[PL_OTP_STORED_BYTES], ttl[8];
    pl_otp_new(q->code);
    pl_otp_seal(phone, q->code, sealed);
    pl_pg_param_t p[] = {pl_pg_text(phone), pl_pg_bytes(sealed, sizeof(sealed)), pl_pg_int8(ttl, PL_ACCT_CODE_TTL_MS)};
    pl_acct_query(op, ST_STORE_CODE, pl_acct_phone_shard(q->base.svc, phone), p, 3, PL_PG_WRITE | PL_PG_IDEMPOTENT,
                  on_stored, "store code");
}

/* Whether a bucket's answer lets the request go on; if not, op has failed. */
static bool rate_allows(pl_op_t *op, pl_code_t code, const char *message, const pl_cache_rate_t *rate, const char *what)
{
    if (code != PL_CODE_OK) {
        pl_acct_limiter_down(op, message);
        pl_op_fail(op, PL_CODE_UNAVAILABLE, "verification codes are temporarily unavailable; retry later");
        return false;
    }
    if (!rate->is_allowed) {
        pl_op_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "too many codes requested %s; retry after %" PRId64 " ms", what,
                   rate->retry_after_ms);
        return false;
    }
    return true;
}

static void on_phone_rate(pl_op_t *op, pl_code_t code, const char *message, const pl_cache_rate_t *rate)
{
    if (rate_allows(op, code, message, rate, "for this number"))
        pl_op_then(op, store_code);
}

static void on_address_rate(pl_op_t *op, pl_code_t code, const char *message, const pl_cache_rate_t *rate)
{
    if (!rate_allows(op, code, message, rate, "from this address"))
        return;
    const pl_config_t *cfg = op->app->cfg;
    char name[64];
    snprintf(name, sizeof(name), "otp:phone:%s", ((const parley_v1_RequestCodeRequest *)pl_acct_msg(op))->phone_number);
    pl_op_rate_take(op, name, (uint32_t)cfg->codes_per_phone_per_hour, cfg->codes_per_phone_per_hour / 3600.0, 1,
                    PL_ACCT_RATE_WAIT_MS, on_phone_rate);
}

static void take_address_rate(pl_op_t *op)
{
    const pl_config_t *cfg = op->app->cfg;
    char peer[64], name[96];
    pl_call_peer(op->call, peer, sizeof(peer));
    pl_acct_address_bucket(peer, name, sizeof(name));
    pl_op_rate_take(op, name, (uint32_t)cfg->codes_per_address_per_hour, cfg->codes_per_address_per_hour / 3600.0, 1,
                    PL_ACCT_RATE_WAIT_MS, on_address_rate);
}

void pl_acct_request_code(pl_call_t *call, const parley_v1_RequestCodeRequest *req, void *svc)
{
    if (!pl_acct_phone_is_valid(req->phone_number)) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT,
                       "phone_number must be E.164: \"+\" and 8 to 15 digits, the first not 0 (\"+15551234567\")");
        return;
    }
    pl_op_t *op = pl_acct_op(call, svc, req, sizeof(request_code_t));
    if (!op)
        return;
    pl_op_on_end(op, wipe);
    pl_op_start_public(op, take_address_rate);
}
