/* test_accounts — parley.v1.Accounts end to end, against parleyd on a
 * throw-away stack (tests/harness/with_stack.sh + with_parleyd.py), one case
 * per run:
 *
 *   phone_validation   E.164 rules on RequestCode, Verify and LookupPhones
 *   code_flow          code by SMS file only (not in the response or its
 *                      metadata), Verify, token works, code single-use, a new
 *                      code replaces the old one, second device same account
 *   wrong_code         wrong and malformed codes, Verify with no code pending
 *   attempts           5 wrong attempts, then the right code is refused
 *   expiry             an expired code (expires_at moved back in SQL) is refused
 *   rate_phone         (codes_per_phone_per_hour=3) 4th code refused with retry info
 *   rate_address       (codes_per_address_per_hour=4) 5th code from one address refused
 *   device_limit       (devices_per_account=2) 3rd device refused; the code survives
 *   concurrent_verify  two Verify with one code at once: one device
 *   tokens             missing/garbled/forged tokens; removed devices lose access
 *   device_ownership   another account's devices: PERMISSION_DENIED; renames
 *   profile            own vs other profile fields, updates, privacy round trips
 *   contacts           AddContacts (existing only, idempotent), paging, names
 *   lookup             LookupPhones (only registered numbers), GetDevices
 *   lookup_rate        (lookups_per_minute=5) lookups, GetDevices, AddContacts refused
 *                      with retry info once the shared bucket is empty
 *   blocking           blocks rows, ListBlocked paging, the direct chat's flags
 *   redis_down         RequestCode UNAVAILABLE, GetProfile and lookups still work
 *   sms_provider PARLEYD   an unknown [sms] provider stops parleyd, naming the key
 *
 * usage: test_accounts CASE [ARGS] */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/direct.h"
#include "harness.h"
#include "store/ids.h"

static const char *test_case = "";

static outcome_t get_profile(const device_t *d, int64_t account_id, parley_v1_Profile *resp)
{
    parley_v1_GetProfileRequest req = {0};
    parley_v1_Profile local = {0};
    req.account_id = account_id;
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_GetProfile(h_channel(), &o, &req, resp ? resp : &local, &st), &st);
    return out;
}

static outcome_t list_devices(const device_t *d, parley_v1_ListDevicesResponse *resp)
{
    parley_v1_ListDevicesRequest req = {0};
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    memset(resp, 0, sizeof(*resp));
    h_outcome(&out, parley_v1_Accounts_ListDevices(h_channel(), &o, &req, resp, &st), &st);
    return out;
}

static outcome_t remove_device(const device_t *d, int64_t device_id)
{
    parley_v1_RemoveDeviceRequest req = {0};
    parley_v1_RemoveDeviceResponse resp = {0};
    req.device_id = device_id;
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_RemoveDevice(h_channel(), &o, &req, &resp, &st), &st);
    return out;
}

static outcome_t rename_device(const device_t *d, int64_t device_id, const char *name, parley_v1_Device *resp)
{
    parley_v1_RenameDeviceRequest req = {0};
    parley_v1_Device local = {0};
    req.device_id = device_id;
    snprintf(req.name, sizeof(req.name), "%s", name);
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_RenameDevice(h_channel(), &o, &req, resp ? resp : &local, &st), &st);
    return out;
}

static outcome_t update_profile(const device_t *d, const char *name, const char *about, parley_v1_Profile *resp)
{
    parley_v1_UpdateProfileRequest req = {0};
    parley_v1_Profile local = {0};
    snprintf(req.display_name, sizeof(req.display_name), "%s", name);
    snprintf(req.about, sizeof(req.about), "%s", about);
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_UpdateProfile(h_channel(), &o, &req, resp ? resp : &local, &st), &st);
    return out;
}

static outcome_t update_privacy(const device_t *d, int last_seen, int online, parley_v1_PrivacySettings *resp)
{
    parley_v1_UpdatePrivacyRequest req = {0};
    parley_v1_PrivacySettings local = {0};
    req.last_seen = (parley_v1_Visibility)last_seen;
    req.online = (parley_v1_Visibility)online;
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_UpdatePrivacy(h_channel(), &o, &req, resp ? resp : &local, &st), &st);
    return out;
}

static outcome_t lookup_phones(const device_t *d, const char *const *phones, size_t n,
                               parley_v1_LookupPhonesResponse *resp)
{
    static parley_v1_LookupPhonesRequest req;
    memset(&req, 0, sizeof(req));
    for (size_t i = 0; i < n; i++)
        snprintf(req.phone_numbers[i], sizeof(req.phone_numbers[i]), "%s", phones[i]);
    req.phone_numbers_count = (pb_size_t)n;
    memset(resp, 0, sizeof(*resp));
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_LookupPhones(h_channel(), &o, &req, resp, &st), &st);
    return out;
}

static outcome_t get_devices(const device_t *d, const int64_t *ids, size_t n, parley_v1_GetDevicesResponse *resp)
{
    static parley_v1_GetDevicesRequest req;
    memset(&req, 0, sizeof(req));
    memcpy(req.account_ids, ids, n * sizeof(*ids));
    req.account_ids_count = (pb_size_t)n;
    memset(resp, 0, sizeof(*resp));
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_GetDevices(h_channel(), &o, &req, resp, &st), &st);
    return out;
}

static outcome_t add_contacts(const device_t *d, const int64_t *ids, size_t n, int *added)
{
    static parley_v1_AddContactsRequest req;
    memset(&req, 0, sizeof(req));
    memcpy(req.account_ids, ids, n * sizeof(*ids));
    req.account_ids_count = (pb_size_t)n;
    parley_v1_AddContactsResponse resp = {0};
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_AddContacts(h_channel(), &o, &req, &resp, &st), &st);
    if (added)
        *added = resp.added;
    return out;
}

static outcome_t list_contacts(const device_t *d, int64_t after, int limit, parley_v1_ListContactsResponse *resp)
{
    parley_v1_ListContactsRequest req = {0};
    req.after_account_id = after;
    req.limit = limit;
    memset(resp, 0, sizeof(*resp));
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_ListContacts(h_channel(), &o, &req, resp, &st), &st);
    return out;
}

static outcome_t remove_contact(const device_t *d, int64_t id)
{
    parley_v1_RemoveContactRequest req = {0};
    parley_v1_RemoveContactResponse resp = {0};
    req.account_id = id;
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_RemoveContact(h_channel(), &o, &req, &resp, &st), &st);
    return out;
}

static outcome_t block(const device_t *d, int64_t id, bool on)
{
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    if (on) {
        parley_v1_BlockRequest req = {0};
        parley_v1_BlockResponse resp = {0};
        req.account_id = id;
        h_outcome(&out, parley_v1_Accounts_Block(h_channel(), &o, &req, &resp, &st), &st);
    } else {
        parley_v1_UnblockRequest req = {0};
        parley_v1_UnblockResponse resp = {0};
        req.account_id = id;
        h_outcome(&out, parley_v1_Accounts_Unblock(h_channel(), &o, &req, &resp, &st), &st);
    }
    return out;
}

static outcome_t list_blocked(const device_t *d, int64_t after, int limit, parley_v1_ListBlockedResponse *resp)
{
    parley_v1_ListBlockedRequest req = {0};
    req.after_account_id = after;
    req.limit = limit;
    memset(resp, 0, sizeof(*resp));
    pl_call_opts_t o = h_opts(d);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_ListBlocked(h_channel(), &o, &req, resp, &st), &st);
    return out;
}

/* An id on the same shard as id, one second older: shaped right, never issued. */
static int64_t unissued_id(int64_t id)
{
    return id - (1000LL << 22);
}

/* ---- registration ---- */

static int phone_validation(void)
{
    static const char *bad[] = {
        "",                  /* empty */
        "15551234567",       /* no + */
        "+",                 /* no digits */
        "+1234567",          /* 7 digits */
        "+1234567890123456", /* 16 digits */
        "+05551234567",      /* leading 0 */
        "+1555123456a",      /* letter */
        "+1 5551234567",     /* space */
        " +15551234567",     /* leading space */
        "+15551234567 ",     /* trailing space */
        "++15551234567",     /* two + */
        "+1555-123-4567",    /* dashes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        outcome_t o = h_request_code(bad[i], NULL);
        REQUIRE(o.code == PL_CODE_INVALID_ARGUMENT, "RequestCode \"%s\": want INVALID_ARGUMENT, got %s", bad[i],
                pl_code_name(o.code));
        REQUIRE(strstr(o.message, "E.164"), "RequestCode \"%s\": message should explain E.164: %s", bad[i], o.message);
        o = h_verify(bad[i], "123456", "x", NULL);
        REQUIRE(o.code == PL_CODE_INVALID_ARGUMENT, "Verify \"%s\": want INVALID_ARGUMENT, got %s", bad[i],
                pl_code_name(o.code));
    }
    REQUIRE(h_sms_lines() == 0, "no code may be sent for an invalid number");
    /* the extremes that are valid: 8 and 15 digits */
    parley_v1_RequestCodeResponse resp = {0};
    outcome_t o = h_request_code("+12345678", &resp);
    REQUIRE_CODE(o, PL_CODE_OK);
    REQUIRE(resp.expires_in_ms == 600000, "expires_in_ms %" PRId64 ", want 600000", resp.expires_in_ms);
    o = h_request_code("+123456789012345", NULL);
    REQUIRE_CODE(o, PL_CODE_OK);
    REQUIRE(h_sms_lines() == 2, "want 2 codes sent, the SMS file has %d lines", h_sms_lines());

    device_t d;
    REQUIRE(h_register(&d, "+15550000001", "phone") == 0, "register");
    const char *phones[] = {"+15550000001", "+1555000000x"};
    parley_v1_LookupPhonesResponse *lr = calloc(1, sizeof(*lr));
    o = lookup_phones(&d, phones, 2, lr);
    free(lr);
    REQUIRE_CODE(o, PL_CODE_INVALID_ARGUMENT);
    REQUIRE(strstr(o.message, "phone_numbers[1]"), "message should name the bad element: %s", o.message);
    h_device_dispose(&d);
    return 0;
}

/* RequestCode through the raw call API, to see the response's metadata too. */
static int request_code_raw(const char *phone, char *seen, size_t seen_len)
{
    parley_v1_RequestCodeRequest req = {0};
    snprintf(req.phone_number, sizeof(req.phone_number), "%s", phone);
    pl_call_opts_t o = h_opts(NULL);
    pl_ccall_t *c = pl_ccall_start(h_channel(), &parley_v1_Accounts_RequestCode_method, &o);
    REQUIRE(c, "pl_ccall_start");
    parley_v1_RequestCodeResponse resp = {0};
    pl_ccall_send(c, &req);
    pl_ccall_close_send(c);
    int got = pl_ccall_recv(c, &resp);
    pl_status_t st = {0};
    pl_code_t code = pl_ccall_finish(c, &st);
    size_t n = (size_t)snprintf(seen, seen_len, "%" PRId64 "|%s|", resp.expires_in_ms, st.message ? st.message : "");
    const pl_metadata_t *mds[] = {pl_ccall_initial_metadata(c), pl_ccall_trailing_metadata(c)};
    for (int m = 0; m < 2; m++) {
        for (uint32_t i = 0; mds[m] && i < mds[m]->count && n < seen_len; i++) {
            const char *key;
            const uint8_t *value;
            size_t klen, vlen;
            pl_metadata_at(mds[m], i, &key, &klen, &value, &vlen);
            n += (size_t)snprintf(seen + n, seen_len - n, "%.*s=%.*s|", (int)klen, key, (int)vlen, (const char *)value);
        }
    }
    pl_status_reset(&st);
    pl_ccall_free(c);
    REQUIRE(got == 1 && code == PL_CODE_OK, "RequestCode: %s", pl_code_name(code));
    REQUIRE(resp.expires_in_ms == 600000, "expires_in_ms %" PRId64, resp.expires_in_ms);
    return 0;
}

static int code_flow(void)
{
    const char *phone = "+447700900123";
    char seen[2048], code[7];
    if (request_code_raw(phone, seen, sizeof(seen)) != 0)
        return 1;
    REQUIRE(h_sms_code(phone, code), "no code for %s in the SMS file", phone);
    for (int i = 0; i < 6; i++)
        REQUIRE(code[i] >= '0' && code[i] <= '9', "code \"%s\" is not 6 digits", code);
    REQUIRE(!strstr(seen, code), "the code %s appears in the response or its metadata: %s", code, seen);

    parley_v1_VerifyResponse v = {0};
    outcome_t o = h_verify(phone, code, "Pixel 8", &v);
    REQUIRE_CODE(o, PL_CODE_OK);
    REQUIRE(v.account_id > 0 && v.device_id > 0 && v.device_id != v.account_id, "ids %" PRId64 " %" PRId64,
            v.account_id, v.device_id);
    REQUIRE(v.new_account, "first verification must create the account");
    REQUIRE(strlen(v.token) == 54, "token length %zu, want 54", strlen(v.token));
    REQUIRE(pl_id_shard(v.account_id) == h_phone_shard(phone), "account on shard %d, the number's shard is %d",
            pl_id_shard(v.account_id), h_phone_shard(phone));
    REQUIRE(pl_id_shard(v.device_id) == pl_id_shard(v.account_id), "device not on the account's shard");

    /* the token works, and the database holds only hashes */
    device_t d = {0};
    snprintf(d.phone, sizeof(d.phone), "%s", phone);
    d.account_id = v.account_id;
    d.device_id = v.device_id;
    char bearer[96];
    snprintf(bearer, sizeof(bearer), "Bearer %s", v.token);
    pl_metadata_init(&d.md, 8192);
    pl_metadata_add(&d.md, "authorization", bearer, strlen(bearer));
    parley_v1_Profile p = {0};
    o = get_profile(&d, 0, &p);
    REQUIRE_CODE(o, PL_CODE_OK);
    REQUIRE(p.account_id == v.account_id && strcmp(p.phone_number, phone) == 0, "own profile %" PRId64 " %s",
            p.account_id, p.phone_number);
    char id[24];
    snprintf(id, sizeof(id), "%" PRId64, v.device_id);
    const char *params[] = {id};
    PGresult *res =
        h_sql(pl_id_shard(v.device_id), "SELECT name, length(token_hash) FROM {s}.devices WHERE id = $1", 1, params);
    REQUIRE(res && PQntuples(res) == 1, "device row");
    REQUIRE(strcmp(PQgetvalue(res, 0, 0), "Pixel 8") == 0, "device name %s", PQgetvalue(res, 0, 0));
    REQUIRE(strcmp(PQgetvalue(res, 0, 1), "32") == 0, "token_hash length %s, want 32", PQgetvalue(res, 0, 1));
    PQclear(res);
    const char *pp[] = {phone};
    res = h_sql(h_phone_shard(phone), "SELECT count(*) FROM {s}.verification_codes WHERE phone = $1", 1, pp);
    REQUIRE(res && strcmp(PQgetvalue(res, 0, 0), "0") == 0, "the code row must be gone after Verify");
    PQclear(res);

    /* a code is single-use */
    o = h_verify(phone, code, "again", NULL);
    REQUIRE_CODE(o, PL_CODE_FAILED_PRECONDITION);

    /* a new code replaces the previous one; what is stored is not the code */
    char first[7], second[7];
    REQUIRE(h_request_code(phone, NULL).code == PL_CODE_OK && h_sms_code(phone, first), "first new code");
    res = h_sql(h_phone_shard(phone),
                "SELECT encode(code_hash, 'escape'), length(code_hash) FROM "
                "{s}.verification_codes WHERE phone = $1",
                1, pp);
    REQUIRE(res && PQntuples(res) == 1, "code row");
    REQUIRE(!strstr(PQgetvalue(res, 0, 0), first), "the stored hash contains the code");
    REQUIRE(strcmp(PQgetvalue(res, 0, 1), "48") == 0, "code_hash length %s, want 48 (salt + MAC)",
            PQgetvalue(res, 0, 1));
    PQclear(res);
    REQUIRE(h_request_code(phone, NULL).code == PL_CODE_OK && h_sms_code(phone, second), "second new code");
    if (strcmp(first, second) != 0) {
        o = h_verify(phone, first, "old code", NULL);
        REQUIRE_CODE(o, PL_CODE_INVALID_ARGUMENT);
    }

    /* the second verification: same account, new device */
    parley_v1_VerifyResponse v2 = {0};
    o = h_verify(phone, second, "Laptop", &v2);
    REQUIRE_CODE(o, PL_CODE_OK);
    REQUIRE(v2.account_id == v.account_id, "second device on another account: %" PRId64 " vs %" PRId64, v2.account_id,
            v.account_id);
    REQUIRE(!v2.new_account, "new_account on the second verification");
    REQUIRE(v2.device_id != v.device_id && strcmp(v2.token, v.token) != 0, "second device must be new");

    parley_v1_ListDevicesResponse l;
    o = list_devices(&d, &l);
    REQUIRE_CODE(o, PL_CODE_OK);
    REQUIRE(l.devices_count == 2, "%u devices, want 2", (unsigned)l.devices_count);
    for (pb_size_t i = 0; i < l.devices_count; i++) {
        bool is_first = l.devices[i].device_id == v.device_id;
        REQUIRE(is_first || l.devices[i].device_id == v2.device_id, "unknown device %" PRId64, l.devices[i].device_id);
        REQUIRE(l.devices[i].current == is_first, "current flag wrong on %" PRId64, l.devices[i].device_id);
        REQUIRE(strcmp(l.devices[i].name, is_first ? "Pixel 8" : "Laptop") == 0, "name %s", l.devices[i].name);
        REQUIRE(l.devices[i].created_ms > 1700000000000LL && l.devices[i].last_active_ms > 1700000000000LL,
                "device times %" PRId64 " %" PRId64, l.devices[i].created_ms, l.devices[i].last_active_ms);
    }
    h_device_dispose(&d);
    return 0;
}

static int wrong_code(void)
{
    const char *phone = "+33612345678";
    outcome_t o = h_verify(phone, "123456", "x", NULL);
    REQUIRE_CODE(o, PL_CODE_FAILED_PRECONDITION);
    REQUIRE(h_request_code(phone, NULL).code == PL_CODE_OK, "RequestCode");
    char code[7], wrong[7];
    REQUIRE(h_sms_code(phone, code), "code");
    snprintf(wrong, sizeof(wrong), "%06u", (unsigned)(atoi(code) + 1) % 1000000u);
    o = h_verify(phone, wrong, "x", NULL);
    REQUIRE_CODE(o, PL_CODE_INVALID_ARGUMENT);
    REQUIRE(strstr(o.message, "wrong code") && strstr(o.message, "4 attempts left"), "message: %s", o.message);
    static const char *malformed[] = {"", "12345", "1234567", "12a456", " 12345", "-12345"};
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        o = h_verify(phone, malformed[i], "x", NULL);
        REQUIRE(o.code == PL_CODE_INVALID_ARGUMENT, "code \"%s\": %s", malformed[i], pl_code_name(o.code));
    }
    /* malformed codes cost no attempt: 3 wrong more still leave the right one usable */
    for (int i = 0; i < 3; i++)
        REQUIRE(h_verify(phone, wrong, "x", NULL).code == PL_CODE_INVALID_ARGUMENT, "wrong code %d", i);
    parley_v1_VerifyResponse v = {0};
    o = h_verify(phone, code, "x", &v);
    REQUIRE_CODE(o, PL_CODE_OK);
    /* invalid device names */
    REQUIRE(h_request_code(phone, NULL).code == PL_CODE_OK && h_sms_code(phone, code), "code 2");
    o = h_verify(phone, code, "bad\x01name", NULL);
    REQUIRE_CODE(o, PL_CODE_INVALID_ARGUMENT);
    o = h_verify(phone, code, "\xff\xfe", NULL);
    REQUIRE_CODE(o, PL_CODE_INVALID_ARGUMENT);
    return 0;
}

static int attempts(void)
{
    const char *phone = "+4915112345678";
    char code[7], wrong[7];
    REQUIRE(h_request_code(phone, NULL).code == PL_CODE_OK && h_sms_code(phone, code), "code");
    snprintf(wrong, sizeof(wrong), "%06u", (unsigned)(atoi(code) + 500000) % 1000000u);
    for (int i = 0; i < 5; i++) {
        outcome_t o = h_verify(phone, wrong, "x", NULL);
        REQUIRE(o.code == PL_CODE_INVALID_ARGUMENT, "attempt %d: %s: %s", i + 1, pl_code_name(o.code), o.message);
    }
    outcome_t o = h_verify(phone, code, "x", NULL);
    REQUIRE_CODE(o, PL_CODE_FAILED_PRECONDITION);
    REQUIRE(strstr(o.message, "attempts"), "message should say why: %s", o.message);
    /* a new code starts over */
    REQUIRE(h_request_code(phone, NULL).code == PL_CODE_OK && h_sms_code(phone, code), "new code");
    o = h_verify(phone, code, "x", NULL);
    REQUIRE_CODE(o, PL_CODE_OK);
    return 0;
}

static int expiry(void)
{
    const char *phone = "+819012345678";
    char code[7];
    REQUIRE(h_request_code(phone, NULL).code == PL_CODE_OK && h_sms_code(phone, code), "code");
    const char *pp[] = {phone};
    PGresult *res =
        h_sql(h_phone_shard(phone),
              "SELECT extract(epoch FROM expires_at - now()) FROM {s}.verification_codes WHERE phone = $1", 1, pp);
    REQUIRE(res && PQntuples(res) == 1, "code row");
    double left = atof(PQgetvalue(res, 0, 0));
    PQclear(res);
    REQUIRE(left > 590 && left <= 600, "the code expires in %.1f s, want 10 minutes", left);
    res = h_sql(h_phone_shard(phone),
                "UPDATE {s}.verification_codes SET expires_at = now() - interval '1 second' WHERE phone = $1", 1, pp);
    REQUIRE(res, "update");
    PQclear(res);
    outcome_t o = h_verify(phone, code, "x", NULL);
    REQUIRE_CODE(o, PL_CODE_FAILED_PRECONDITION);
    REQUIRE(strstr(o.message, "expired"), "message: %s", o.message);
    return 0;
}

static int rate_phone(void)
{
    const char *phone = "+14155550100";
    for (int i = 0; i < 3; i++) {
        outcome_t o = h_request_code(phone, NULL);
        REQUIRE(o.code == PL_CODE_OK, "code %d: %s: %s", i + 1, pl_code_name(o.code), o.message);
    }
    outcome_t o = h_request_code(phone, NULL);
    REQUIRE_CODE(o, PL_CODE_RESOURCE_EXHAUSTED);
    long long after = h_retry_after(o.message);
    /* 3 per hour: one token every 1200 s */
    REQUIRE(after > 1000000 && after <= 1200000, "retry after %lld ms (message: %s)", after, o.message);
    REQUIRE(h_sms_lines() == 3, "%d codes sent, want 3", h_sms_lines());
    o = h_request_code("+14155550101", NULL);
    REQUIRE_CODE(o, PL_CODE_OK);
    return 0;
}

static int rate_address(void)
{
    char phone[24];
    for (int i = 0; i < 4; i++) {
        snprintf(phone, sizeof(phone), "+1415555020%d", i);
        outcome_t o = h_request_code(phone, NULL);
        REQUIRE(o.code == PL_CODE_OK, "code %d: %s: %s", i + 1, pl_code_name(o.code), o.message);
    }
    outcome_t o = h_request_code("+14155550299", NULL);
    REQUIRE_CODE(o, PL_CODE_RESOURCE_EXHAUSTED);
    REQUIRE(strstr(o.message, "address"), "message should name the address limit: %s", o.message);
    long long after = h_retry_after(o.message);
    REQUIRE(after > 0 && after <= 900000, "retry after %lld ms (message: %s)", after, o.message);
    REQUIRE(h_sms_lines() == 4, "%d codes sent, want 4", h_sms_lines());
    return 0;
}

static int device_limit(void)
{
    const char *phone = "+61412345678";
    device_t a, b;
    REQUIRE(h_register(&a, phone, "one") == 0, "first device");
    REQUIRE(h_register(&b, phone, "two") == 0, "second device");
    REQUIRE(b.account_id == a.account_id, "same account");
    char code[7];
    REQUIRE(h_request_code(phone, NULL).code == PL_CODE_OK && h_sms_code(phone, code), "code");
    outcome_t o = h_verify(phone, code, "three", NULL);
    REQUIRE_CODE(o, PL_CODE_FAILED_PRECONDITION);
    REQUIRE(strstr(o.message, "device limit reached"), "message: %s", o.message);
    parley_v1_ListDevicesResponse l;
    REQUIRE(list_devices(&a, &l).code == PL_CODE_OK && l.devices_count == 2, "still 2 devices");
    /* make room; the same code still works */
    REQUIRE(remove_device(&a, b.device_id).code == PL_CODE_OK, "remove");
    parley_v1_VerifyResponse v = {0};
    o = h_verify(phone, code, "three", &v);
    REQUIRE_CODE(o, PL_CODE_OK);
    REQUIRE(v.account_id == a.account_id && !v.new_account, "same account");
    REQUIRE(list_devices(&a, &l).code == PL_CODE_OK && l.devices_count == 2, "2 devices again");
    h_device_dispose(&a);
    h_device_dispose(&b);
    return 0;
}

static int concurrent_verify(void)
{
    const char *phone = "+5511987654321";
    pl_channel_t *chs[2] = {h_connect(), h_connect()};
    int64_t account = 0;
    for (int round = 0; round < 3; round++) {
        char code[7];
        REQUIRE(h_request_code(phone, NULL).code == PL_CODE_OK && h_sms_code(phone, code), "code");
        parley_v1_VerifyRequest req = {0};
        snprintf(req.phone_number, sizeof(req.phone_number), "%s", phone);
        snprintf(req.code, sizeof(req.code), "%s", code);
        snprintf(req.device_name, sizeof(req.device_name), "racer");
        pl_call_opts_t o = h_opts(NULL);
        pl_ccall_t *c[2];
        for (int i = 0; i < 2; i++) {
            c[i] = pl_ccall_start(chs[i], &parley_v1_Accounts_Verify_method, &o);
            REQUIRE(c[i], "start");
            pl_ccall_send(c[i], &req);
            pl_ccall_close_send(c[i]);
        }
        int ok = 0, refused = 0;
        for (int i = 0; i < 2; i++) {
            parley_v1_VerifyResponse resp = {0};
            pl_ccall_recv(c[i], &resp);
            pl_status_t st = {0};
            pl_code_t code_i = pl_ccall_finish(c[i], &st);
            pl_status_reset(&st);
            pl_ccall_free(c[i]);
            if (code_i == PL_CODE_OK) {
                ok++;
                if (!account)
                    account = resp.account_id;
                REQUIRE(resp.account_id == account, "another account");
            } else if (code_i == PL_CODE_FAILED_PRECONDITION) {
                refused++;
            } else {
                FAIL("round %d: unexpected %s", round, pl_code_name(code_i));
            }
        }
        REQUIRE(ok == 1 && refused == 1, "round %d: %d succeeded, %d refused; want exactly one device", round, ok,
                refused);
    }
    char id[24];
    snprintf(id, sizeof(id), "%" PRId64, account);
    const char *params[] = {id};
    PGresult *res = h_sql(pl_id_shard(account), "SELECT count(*) FROM {s}.devices WHERE account_id = $1", 1, params);
    REQUIRE(res && strcmp(PQgetvalue(res, 0, 0), "3") == 0, "want 3 devices, have %s",
            res ? PQgetvalue(res, 0, 0) : "?");
    PQclear(res);
    const char *pp[] = {phone};
    res = h_sql(h_phone_shard(phone), "SELECT count(*) FROM {s}.accounts WHERE phone = $1", 1, pp);
    REQUIRE(res && strcmp(PQgetvalue(res, 0, 0), "1") == 0, "want one account");
    PQclear(res);
    pl_channel_free(chs[0]);
    pl_channel_free(chs[1]);
    return 0;
}

/* ---- devices and tokens ---- */

static outcome_t profile_with_authorization(const char *value)
{
    pl_metadata_t md;
    pl_metadata_init(&md, 8192);
    if (value)
        pl_metadata_add(&md, "authorization", value, strlen(value));
    parley_v1_GetProfileRequest req = {0};
    parley_v1_Profile resp = {0};
    pl_call_opts_t o = {10000, &md, false};
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_GetProfile(h_channel(), &o, &req, &resp, &st), &st);
    pl_metadata_dispose(&md);
    return out;
}

static int tokens(void)
{
    device_t a1, a2, a3;
    REQUIRE(h_register(&a1, "+12025550101", "a1") == 0, "a1");
    REQUIRE(h_register(&a2, "+12025550101", "a2") == 0, "a2");
    REQUIRE(h_register(&a3, "+12025550101", "a3") == 0, "a3");

    REQUIRE_CODE(profile_with_authorization(NULL), PL_CODE_UNAUTHENTICATED);
    REQUIRE_CODE(profile_with_authorization("Bearer"), PL_CODE_UNAUTHENTICATED);
    REQUIRE_CODE(profile_with_authorization("Bearer not-a-token"), PL_CODE_UNAUTHENTICATED);
    REQUIRE_CODE(profile_with_authorization("Basic dXNlcjpwYXNz"), PL_CODE_UNAUTHENTICATED);
    /* right device, wrong secret */
    char forged[96];
    snprintf(forged, sizeof(forged), "Bearer %s", a1.token);
    char *last = forged + strlen(forged) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    REQUIRE_CODE(profile_with_authorization(forged), PL_CODE_UNAUTHENTICATED);
    char real[96];
    snprintf(real, sizeof(real), "bearer %s", a1.token);
    REQUIRE_CODE(profile_with_authorization(real), PL_CODE_OK);
    /* every authenticated method checks */
    parley_v1_ListDevicesResponse l;
    REQUIRE_CODE(list_devices(NULL, &l), PL_CODE_UNAUTHENTICATED);
    REQUIRE_CODE(block(NULL, a1.account_id, true), PL_CODE_UNAUTHENTICATED);

    /* a1 removes a2: a2's token is dead at once, a1's is not */
    REQUIRE_CODE(get_profile(&a2, 0, NULL), PL_CODE_OK);
    REQUIRE_CODE(remove_device(&a1, a2.device_id), PL_CODE_OK);
    REQUIRE_CODE(get_profile(&a2, 0, NULL), PL_CODE_UNAUTHENTICATED);
    REQUIRE_CODE(get_profile(&a1, 0, NULL), PL_CODE_OK);
    REQUIRE(list_devices(&a1, &l).code == PL_CODE_OK && l.devices_count == 2, "%u devices after removal, want 2",
            (unsigned)l.devices_count);
    for (pb_size_t i = 0; i < l.devices_count; i++)
        REQUIRE(l.devices[i].device_id != a2.device_id, "removed device still listed");
    char id[24];
    snprintf(id, sizeof(id), "%" PRId64, a2.device_id);
    const char *params[] = {id};
    PGresult *res =
        h_sql(pl_id_shard(a2.device_id), "SELECT revoked_at IS NOT NULL FROM {s}.devices WHERE id = $1", 1, params);
    REQUIRE(res && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0, "revoked_at must be set");
    PQclear(res);
    /* removing again is harmless; renaming a removed device is NOT_FOUND */
    REQUIRE_CODE(remove_device(&a3, a2.device_id), PL_CODE_OK);
    REQUIRE_CODE(rename_device(&a3, a2.device_id, "zombie", NULL), PL_CODE_NOT_FOUND);
    /* a device may remove itself */
    REQUIRE_CODE(remove_device(&a1, a1.device_id), PL_CODE_OK);
    REQUIRE_CODE(get_profile(&a1, 0, NULL), PL_CODE_UNAUTHENTICATED);
    REQUIRE_CODE(get_profile(&a3, 0, NULL), PL_CODE_OK);
    h_device_dispose(&a1);
    h_device_dispose(&a2);
    h_device_dispose(&a3);
    return 0;
}

static int device_ownership(void)
{
    device_t a, b;
    REQUIRE(h_register(&a, "+12025550111", "alice phone") == 0, "a");
    REQUIRE(h_register(&b, "+12025550222", "bob phone") == 0, "b");
    outcome_t o = rename_device(&a, b.device_id, "pwned", NULL);
    REQUIRE_CODE(o, PL_CODE_PERMISSION_DENIED);
    o = remove_device(&a, b.device_id);
    REQUIRE_CODE(o, PL_CODE_PERMISSION_DENIED);
    REQUIRE_CODE(get_profile(&b, 0, NULL), PL_CODE_OK);
    parley_v1_ListDevicesResponse l;
    REQUIRE(list_devices(&b, &l).code == PL_CODE_OK && l.devices_count == 1, "b's devices");
    REQUIRE(strcmp(l.devices[0].name, "bob phone") == 0, "b's device renamed by a: %s", l.devices[0].name);
    /* ids that name no device */
    REQUIRE_CODE(rename_device(&a, unissued_id(a.device_id), "x", NULL), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(remove_device(&a, unissued_id(a.device_id)), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(remove_device(&a, 12345), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(remove_device(&a, -1), PL_CODE_NOT_FOUND);
    /* own rename */
    parley_v1_Device d = {0};
    o = rename_device(&a, a.device_id, "Alice’s phone", &d);
    REQUIRE_CODE(o, PL_CODE_OK);
    REQUIRE(d.device_id == a.device_id && strcmp(d.name, "Alice’s phone") == 0 && d.current, "rename reply");
    REQUIRE(list_devices(&a, &l).code == PL_CODE_OK && l.devices_count == 1, "a's devices");
    REQUIRE(strcmp(l.devices[0].name, "Alice’s phone") == 0 && l.devices[0].current, "renamed: %s", l.devices[0].name);
    REQUIRE_CODE(rename_device(&a, a.device_id, "bad\xc0\xafname", NULL), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(rename_device(&a, a.device_id, "tab\there", NULL), PL_CODE_INVALID_ARGUMENT);
    char long_name[66];
    memset(long_name, 'x', 64);
    long_name[64] = '\0';
    REQUIRE_CODE(rename_device(&a, a.device_id, long_name, NULL), PL_CODE_OK);
    h_device_dispose(&a);
    h_device_dispose(&b);
    return 0;
}

/* ---- profile ---- */

static int profile(void)
{
    device_t a, b;
    REQUIRE(h_register(&a, "+12025550311", "a") == 0, "a");
    REQUIRE(h_register(&b, "+12025550322", "b") == 0, "b");
    parley_v1_Profile p = {0};
    outcome_t o = update_profile(&a, "Zoë", "line one\nline two", &p);
    REQUIRE_CODE(o, PL_CODE_OK);
    REQUIRE(p.account_id == a.account_id && strcmp(p.display_name, "Zoë") == 0 &&
                strcmp(p.about, "line one\nline two") == 0 && strcmp(p.phone_number, a.phone) == 0 && p.has_privacy,
            "update reply");

    memset(&p, 0, sizeof(p));
    REQUIRE_CODE(get_profile(&a, 0, &p), PL_CODE_OK);
    REQUIRE(p.account_id == a.account_id && strcmp(p.phone_number, a.phone) == 0 && strcmp(p.display_name, "Zoë") == 0,
            "own profile");
    REQUIRE(p.has_privacy && p.privacy.last_seen == parley_v1_Visibility_VISIBILITY_EVERYONE &&
                p.privacy.online == parley_v1_Visibility_VISIBILITY_EVERYONE,
            "default privacy");
    memset(&p, 0, sizeof(p));
    REQUIRE_CODE(get_profile(&a, a.account_id, &p), PL_CODE_OK);
    REQUIRE(strcmp(p.phone_number, a.phone) == 0 && p.has_privacy, "own profile by id");

    /* b sees the public part only */
    memset(&p, 0, sizeof(p));
    REQUIRE_CODE(get_profile(&b, a.account_id, &p), PL_CODE_OK);
    REQUIRE(p.account_id == a.account_id && strcmp(p.display_name, "Zoë") == 0 &&
                strcmp(p.about, "line one\nline two") == 0,
            "public profile");
    REQUIRE(p.phone_number[0] == '\0' && !p.has_privacy, "another account's phone or privacy leaked: %s",
            p.phone_number);

    REQUIRE_CODE(get_profile(&b, unissued_id(a.account_id), NULL), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(get_profile(&b, 12345, NULL), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(get_profile(&b, -5, NULL), PL_CODE_INVALID_ARGUMENT);

    /* bounds and encoding */
    char name[130];
    memset(name, 'n', 128);
    name[128] = '\0';
    REQUIRE_CODE(update_profile(&a, name, "", NULL), PL_CODE_OK);
    REQUIRE_CODE(update_profile(&a, "bad\xe2\x82", "", NULL), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(update_profile(&a, "a\nb", "", NULL), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(update_profile(&a, "ok", "\xed\xa0\x80", NULL), PL_CODE_INVALID_ARGUMENT); /* a surrogate */
    REQUIRE_CODE(update_profile(&a, "ok", "bell\a", NULL), PL_CODE_INVALID_ARGUMENT);
    memset(&p, 0, sizeof(p));
    REQUIRE_CODE(get_profile(&b, a.account_id, &p), PL_CODE_OK);
    REQUIRE(strcmp(p.display_name, name) == 0 && p.about[0] == '\0', "refused updates must change nothing");

    /* privacy: UNSPECIFIED keeps a field */
    parley_v1_PrivacySettings s = {0};
    REQUIRE_CODE(update_privacy(&a, parley_v1_Visibility_VISIBILITY_CONTACTS, 0, &s), PL_CODE_OK);
    REQUIRE(s.last_seen == parley_v1_Visibility_VISIBILITY_CONTACTS &&
                s.online == parley_v1_Visibility_VISIBILITY_EVERYONE,
            "privacy %d %d", s.last_seen, s.online);
    REQUIRE_CODE(update_privacy(&a, 0, parley_v1_Visibility_VISIBILITY_NOBODY, &s), PL_CODE_OK);
    REQUIRE(s.last_seen == parley_v1_Visibility_VISIBILITY_CONTACTS &&
                s.online == parley_v1_Visibility_VISIBILITY_NOBODY,
            "privacy %d %d", s.last_seen, s.online);
    REQUIRE_CODE(update_privacy(&a, 7, 0, NULL), PL_CODE_INVALID_ARGUMENT);
    memset(&p, 0, sizeof(p));
    REQUIRE_CODE(get_profile(&a, 0, &p), PL_CODE_OK);
    REQUIRE(p.privacy.last_seen == parley_v1_Visibility_VISIBILITY_CONTACTS &&
                p.privacy.online == parley_v1_Visibility_VISIBILITY_NOBODY,
            "stored privacy %d %d", p.privacy.last_seen, p.privacy.online);
    h_device_dispose(&a);
    h_device_dispose(&b);
    return 0;
}

/* ---- contacts and lookups ---- */

static int contacts(void)
{
    device_t a, b, c;
    REQUIRE(h_register(&a, "+12025550411", "a") == 0, "a");
    REQUIRE(h_register(&b, "+12025550422", "b") == 0, "b");
    REQUIRE(h_register(&c, "+12025550433", "c") == 0, "c");
    REQUIRE_CODE(update_profile(&b, "Bob", "", NULL), PL_CODE_OK);
    REQUIRE_CODE(update_profile(&c, "Carol", "", NULL), PL_CODE_OK);

    int added = -1;
    int64_t ids[] = {b.account_id, c.account_id, a.account_id, unissued_id(b.account_id), b.account_id, 99};
    REQUIRE_CODE(add_contacts(&a, ids, 6, &added), PL_CODE_OK);
    REQUIRE(added == 2, "added %d, want 2 (unknown accounts, self and repeats skipped)", added);
    REQUIRE_CODE(add_contacts(&a, ids, 2, &added), PL_CODE_OK);
    REQUIRE(added == 0, "added %d again, want 0", added);
    int64_t negative[] = {b.account_id, -3};
    REQUIRE_CODE(add_contacts(&a, negative, 2, NULL), PL_CODE_INVALID_ARGUMENT);

    int64_t lo = b.account_id < c.account_id ? b.account_id : c.account_id;
    int64_t hi = b.account_id < c.account_id ? c.account_id : b.account_id;
    const char *lo_name = lo == b.account_id ? "Bob" : "Carol", *hi_name = lo == b.account_id ? "Carol" : "Bob";
    parley_v1_ListContactsResponse *l = calloc(1, sizeof(*l));
    REQUIRE(l, "memory");
    REQUIRE_CODE(list_contacts(&a, 0, 0, l), PL_CODE_OK);
    REQUIRE(l->contacts_count == 2 && !l->has_more, "%u contacts", (unsigned)l->contacts_count);
    REQUIRE(l->contacts[0].account_id == lo && l->contacts[1].account_id == hi, "order");
    REQUIRE(strcmp(l->contacts[0].display_name, lo_name) == 0 && strcmp(l->contacts[1].display_name, hi_name) == 0,
            "names %s %s", l->contacts[0].display_name, l->contacts[1].display_name);
    REQUIRE_CODE(list_contacts(&a, 0, 1, l), PL_CODE_OK);
    REQUIRE(l->contacts_count == 1 && l->has_more && l->contacts[0].account_id == lo, "page 1");
    REQUIRE_CODE(list_contacts(&a, lo, 1, l), PL_CODE_OK);
    REQUIRE(l->contacts_count == 1 && !l->has_more && l->contacts[0].account_id == hi &&
                strcmp(l->contacts[0].display_name, hi_name) == 0,
            "page 2");
    REQUIRE_CODE(list_contacts(&a, 0, 1000, l), PL_CODE_OK); /* clamped to 200 */
    REQUIRE(l->contacts_count == 2, "large limit");
    REQUIRE_CODE(list_contacts(&a, 0, -1, l), PL_CODE_INVALID_ARGUMENT);
    /* contacts are per account */
    REQUIRE_CODE(list_contacts(&b, 0, 0, l), PL_CODE_OK);
    REQUIRE(l->contacts_count == 0, "b has no contacts");

    REQUIRE_CODE(remove_contact(&a, b.account_id), PL_CODE_OK);
    REQUIRE_CODE(remove_contact(&a, b.account_id), PL_CODE_OK);
    REQUIRE_CODE(list_contacts(&a, 0, 0, l), PL_CODE_OK);
    REQUIRE(l->contacts_count == 1 && l->contacts[0].account_id == c.account_id, "after removal");
    free(l);
    h_device_dispose(&a);
    h_device_dispose(&b);
    h_device_dispose(&c);
    return 0;
}

static int lookup(void)
{
    device_t a, b, b2;
    REQUIRE(h_register(&a, "+12025550511", "a") == 0, "a");
    REQUIRE(h_register(&b, "+447911123456", "b") == 0, "b");
    parley_v1_LookupPhonesResponse *lr = calloc(1, sizeof(*lr));
    parley_v1_GetDevicesResponse *gr = calloc(1, sizeof(*gr));
    REQUIRE(lr && gr, "memory");
    const char *phones[] = {b.phone, "+12025550599", a.phone, b.phone, "+3612345678"};
    REQUIRE_CODE(lookup_phones(&a, phones, 5, lr), PL_CODE_OK);
    REQUIRE(lr->matches_count == 2, "%u matches, want 2", (unsigned)lr->matches_count);
    for (pb_size_t i = 0; i < lr->matches_count; i++) {
        const parley_v1_PhoneMatch *m = &lr->matches[i];
        bool is_a = strcmp(m->phone_number, a.phone) == 0, is_b = strcmp(m->phone_number, b.phone) == 0;
        REQUIRE(is_a || is_b, "unexpected match %s", m->phone_number);
        REQUIRE(m->account_id == (is_a ? a.account_id : b.account_id), "wrong account for %s", m->phone_number);
    }
    REQUIRE_CODE(lookup_phones(&a, phones, 0, lr), PL_CODE_OK);
    REQUIRE(lr->matches_count == 0, "empty lookup");

    REQUIRE(h_register(&b2, b.phone, "b2") == 0, "b2");
    int64_t ids[] = {a.account_id, b.account_id, unissued_id(a.account_id), b.account_id};
    REQUIRE_CODE(get_devices(&a, ids, 4, gr), PL_CODE_OK);
    REQUIRE(gr->accounts_count == 2, "%u accounts, want 2", (unsigned)gr->accounts_count);
    for (pb_size_t i = 0; i < gr->accounts_count; i++) {
        const parley_v1_AccountDevices *e = &gr->accounts[i];
        if (e->account_id == a.account_id) {
            REQUIRE(e->device_ids_count == 1 && e->device_ids[0] == a.device_id, "a's devices");
        } else {
            REQUIRE(e->account_id == b.account_id, "unexpected account %" PRId64, e->account_id);
            REQUIRE(e->device_ids_count == 2, "b has %u devices, want 2", (unsigned)e->device_ids_count);
            bool has1 = e->device_ids[0] == b.device_id || e->device_ids[1] == b.device_id;
            bool has2 = e->device_ids[0] == b2.device_id || e->device_ids[1] == b2.device_id;
            REQUIRE(has1 && has2, "b's device ids");
        }
    }
    REQUIRE_CODE(remove_device(&b2, b.device_id), PL_CODE_OK);
    REQUIRE_CODE(get_devices(&a, ids + 1, 1, gr), PL_CODE_OK);
    REQUIRE(gr->accounts_count == 1 && gr->accounts[0].device_ids_count == 1 &&
                gr->accounts[0].device_ids[0] == b2.device_id,
            "removed devices are not current");
    int64_t bad[] = {0};
    REQUIRE_CODE(get_devices(&a, bad, 1, gr), PL_CODE_INVALID_ARGUMENT);
    free(lr);
    free(gr);
    h_device_dispose(&a);
    h_device_dispose(&b);
    h_device_dispose(&b2);
    return 0;
}

static int lookup_rate(void)
{
    device_t a;
    REQUIRE(h_register(&a, "+12025550611", "a") == 0, "a");
    parley_v1_LookupPhonesResponse *lr = calloc(1, sizeof(*lr));
    REQUIRE(lr, "memory");
    const char *phones[] = {"+12025550612", "+12025550613", "+12025550614"};
    REQUIRE_CODE(lookup_phones(&a, phones, 3, lr), PL_CODE_OK);
    outcome_t o = lookup_phones(&a, phones, 3, lr);
    REQUIRE_CODE(o, PL_CODE_RESOURCE_EXHAUSTED);
    long long after = h_retry_after(o.message);
    /* 5 per minute, 2 left, 3 needed: one token, 12 s */
    REQUIRE(after > 5000 && after <= 12000, "retry after %lld ms (message: %s)", after, o.message);
    /* the bucket is shared: GetDevices and AddContacts reveal accounts too */
    int64_t ids[] = {a.account_id, a.account_id, a.account_id};
    parley_v1_GetDevicesResponse *gr = calloc(1, sizeof(*gr));
    REQUIRE(gr, "memory");
    o = get_devices(&a, ids, 3, gr);
    free(gr);
    REQUIRE_CODE(o, PL_CODE_RESOURCE_EXHAUSTED);
    o = add_contacts(&a, ids, 3, NULL);
    REQUIRE_CODE(o, PL_CODE_RESOURCE_EXHAUSTED);
    REQUIRE(h_retry_after(o.message) > 0, "retry info: %s", o.message);
    free(lr);
    h_device_dispose(&a);
    return 0;
}

/* ---- blocking ---- */

/* The pair's direct chat flags: "tf" = a_blocks_b true, b_blocks_a false; "" if no chat. */
static int chat_flags(int64_t x, int64_t y, char out[3])
{
    int64_t lo = x < y ? x : y, hi = x < y ? y : x;
    char slo[24], shi[24];
    snprintf(slo, sizeof(slo), "%" PRId64, lo);
    snprintf(shi, sizeof(shi), "%" PRId64, hi);
    const char *params[] = {slo, shi};
    PGresult *res = h_sql(pl_direct_chat_shard(x, y, h_shards()),
                          "SELECT a_blocks_b, b_blocks_a FROM {s}.chats WHERE kind = 1 AND account_a = $1 AND "
                          "account_b = $2",
                          2, params);
    if (!res)
        return -1;
    int rows = PQntuples(res);
    out[0] = '\0';
    if (rows == 1)
        snprintf(out, 3, "%s%s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    PQclear(res);
    return rows;
}

static int blocking(void)
{
    device_t a, b, c;
    REQUIRE(h_register(&a, "+12025550711", "a") == 0, "a");
    REQUIRE(h_register(&b, "+12025550722", "b") == 0, "b");
    REQUIRE(h_register(&c, "+12025550733", "c") == 0, "c");
    bool a_is_lo = a.account_id < b.account_id;
    char flags[3];

    REQUIRE_CODE(block(&a, b.account_id, true), PL_CODE_OK);
    REQUIRE_CODE(block(&a, b.account_id, true), PL_CODE_OK); /* idempotent */
    parley_v1_ListBlockedResponse *l = calloc(1, sizeof(*l));
    REQUIRE(l, "memory");
    REQUIRE_CODE(list_blocked(&a, 0, 0, l), PL_CODE_OK);
    REQUIRE(l->account_ids_count == 1 && l->account_ids[0] == b.account_id && !l->has_more, "blocked list");
    REQUIRE(chat_flags(a.account_id, b.account_id, flags) == 1, "one direct chat for the pair");
    REQUIRE(strcmp(flags, a_is_lo ? "tf" : "ft") == 0, "chat flags %s", flags);
    REQUIRE_CODE(list_blocked(&b, 0, 0, l), PL_CODE_OK);
    REQUIRE(l->account_ids_count == 0, "b blocked nobody");

    /* both directions */
    REQUIRE_CODE(block(&b, a.account_id, true), PL_CODE_OK);
    REQUIRE(chat_flags(a.account_id, b.account_id, flags) == 1 && strcmp(flags, "tt") == 0, "chat flags %s", flags);

    REQUIRE_CODE(block(&a, a.account_id, true), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(block(&a, 0, true), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(block(&a, unissued_id(b.account_id), true), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(block(&a, 12345, true), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(block(&a, unissued_id(b.account_id), false), PL_CODE_NOT_FOUND);

    /* paging */
    REQUIRE_CODE(block(&a, c.account_id, true), PL_CODE_OK);
    int64_t first = b.account_id < c.account_id ? b.account_id : c.account_id;
    int64_t second = b.account_id < c.account_id ? c.account_id : b.account_id;
    REQUIRE_CODE(list_blocked(&a, 0, 1, l), PL_CODE_OK);
    REQUIRE(l->account_ids_count == 1 && l->account_ids[0] == first && l->has_more, "page 1");
    REQUIRE_CODE(list_blocked(&a, first, 1, l), PL_CODE_OK);
    REQUIRE(l->account_ids_count == 1 && l->account_ids[0] == second && !l->has_more, "page 2");
    REQUIRE_CODE(list_blocked(&a, 0, -2, l), PL_CODE_INVALID_ARGUMENT);

    /* unblock: a's half only */
    REQUIRE_CODE(block(&a, b.account_id, false), PL_CODE_OK);
    REQUIRE_CODE(block(&a, b.account_id, false), PL_CODE_OK);
    REQUIRE_CODE(list_blocked(&a, 0, 0, l), PL_CODE_OK);
    REQUIRE(l->account_ids_count == 1 && l->account_ids[0] == c.account_id, "after unblock");
    REQUIRE(chat_flags(a.account_id, b.account_id, flags) == 1 && strcmp(flags, a_is_lo ? "ft" : "tf") == 0,
            "chat flags after unblock %s", flags);
    free(l);
    h_device_dispose(&a);
    h_device_dispose(&b);
    h_device_dispose(&c);
    return 0;
}

/* ---- Redis down ---- */

static int redis_down(void)
{
    device_t a;
    REQUIRE(h_register(&a, "+12025550811", "a") == 0, "a");
    REQUIRE(h_stack("redis-stop") == 0, "redis-stop");
    /* the node notices the lost connection on its next command at the latest */
    outcome_t o = {0};
    int lines = 0;
    for (int i = 0; i < 50; i++) {
        lines = h_sms_lines();
        o = h_request_code("+12025550812", NULL);
        if (o.code != PL_CODE_OK)
            break;
        usleep(100000);
    }
    REQUIRE_CODE(o, PL_CODE_UNAVAILABLE);
    REQUIRE(h_sms_lines() == lines, "no code may be sent while the limiter is down");
    o = h_request_code("+12025550813", NULL);
    REQUIRE_CODE(o, PL_CODE_UNAVAILABLE);
    REQUIRE(h_sms_lines() == lines, "no code may be sent while the limiter is down");
    parley_v1_Profile p = {0};
    REQUIRE_CODE(get_profile(&a, 0, &p), PL_CODE_OK);
    REQUIRE(p.account_id == a.account_id, "profile");
    parley_v1_LookupPhonesResponse *lr = calloc(1, sizeof(*lr));
    REQUIRE(lr, "memory");
    const char *phones[] = {a.phone};
    o = lookup_phones(&a, phones, 1, lr);
    REQUIRE_CODE(o, PL_CODE_OK); /* lookups fail open */
    REQUIRE(lr->matches_count == 1 && lr->matches[0].account_id == a.account_id, "lookup result");
    free(lr);

    REQUIRE(h_stack("redis-start") == 0, "redis-start");
    for (int i = 0; i < 100; i++) {
        o = h_request_code("+12025550812", NULL);
        if (o.code == PL_CODE_OK)
            break;
        usleep(100000);
    }
    REQUIRE_CODE(o, PL_CODE_OK);
    h_device_dispose(&a);
    return 0;
}

/* ---- configuration ---- */

static int sms_provider(const char *parleyd)
{
    /* parleyd's own early exit does not free everything: that is not what
     * this case checks, so leak detection is off for the child */
    const char *asan = getenv("ASAN_OPTIONS");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "ASAN_OPTIONS='%s%sdetect_leaks=0' '%s' --port=0 --workers=1 "
             "--sms.provider=carrier-pigeon 2>&1",
             asan ? asan : "", asan && asan[0] ? ":" : "", parleyd);
    FILE *p = popen(cmd, "r");
    REQUIRE(p, "popen");
    char out[4096], rest[4096];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    while (fread(rest, 1, sizeof(rest), p) > 0) {
    }
    int status = pclose(p);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) != 0, "parleyd must refuse to start (status %d): %s", status, out);
    REQUIRE(strstr(out, "[sms] provider") && strstr(out, "carrier-pigeon"), "the message must name the key: %s", out);
    REQUIRE(!strstr(out, "listening on"), "parleyd started: %s", out);
    return 0;
}

static const char *parleyd_bin; /* sms_provider's argument */

static int sms_provider_case(void)
{
    return sms_provider(parleyd_bin);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("usage: test_accounts CASE [ARGS]\n");
        return 2;
    }
    test_case = argv[1];
    static const struct {
        const char *name;
        int (*fn)(void);
    } cases[] = {
        {"phone_validation", phone_validation},
        {"code_flow", code_flow},
        {"wrong_code", wrong_code},
        {"attempts", attempts},
        {"expiry", expiry},
        {"rate_phone", rate_phone},
        {"rate_address", rate_address},
        {"device_limit", device_limit},
        {"concurrent_verify", concurrent_verify},
        {"tokens", tokens},
        {"device_ownership", device_ownership},
        {"profile", profile},
        {"contacts", contacts},
        {"lookup", lookup},
        {"lookup_rate", lookup_rate},
        {"blocking", blocking},
        {"redis_down", redis_down},
    };
    int rc = -1;
    if (strcmp(test_case, "sms_provider") == 0 && argc == 3) {
        parleyd_bin = argv[2];
        rc = pl_test_run(test_case, sms_provider_case);
    } else {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            if (strcmp(cases[i].name, test_case) == 0)
                rc = pl_test_run(test_case, cases[i].fn);
    }
    h_close();
    if (rc < 0) {
        printf("unknown case %s\n", test_case);
        return 2;
    }
    return rc;
}
