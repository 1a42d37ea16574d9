/* accounts.c — the public API's parley.v1.Accounts calls: registration
 * (RequestCode, Verify), device lists and removal, phone lookups, profiles. */
#include <stdlib.h>
#include <string.h>

#include "api/unary.h"
#include "parley/v1/accounts.parley.h"

int parley_request_code(parley_client_t *c, const char *phone, int64_t *expires_in_ms, parley_error_t *err)
{
    parley_v1_RequestCodeRequest req = {0};
    parley_v1_RequestCodeResponse resp = {0};
    int rc = pl_copy_field(req.phone_number, sizeof(req.phone_number), phone, "phone number", err);
    if (rc != PARLEY_OK)
        return rc;
    pl_channel_t *held;
    rc = pl_unary(c, &parley_v1_Accounts_RequestCode_method, &req, &resp, 0, &held, err);
    if (rc != PARLEY_OK)
        return rc;
    if (expires_in_ms)
        *expires_in_ms = resp.expires_in_ms;
    pl_unary_release(c, held);
    return PARLEY_OK;
}

int parley_verify(parley_client_t *c, const char *phone, const char *code, const char *device_name,
                  parley_registration_t *out, parley_error_t *err)
{
    parley_v1_VerifyRequest req = {0};
    parley_v1_VerifyResponse resp = {0};
    int rc = pl_copy_field(req.phone_number, sizeof(req.phone_number), phone, "phone number", err);
    if (rc == PARLEY_OK)
        rc = pl_copy_field(req.code, sizeof(req.code), code, "code", err);
    if (rc == PARLEY_OK)
        rc =
            pl_copy_field(req.device_name, sizeof(req.device_name), device_name ? device_name : "", "device name", err);
    if (rc != PARLEY_OK)
        return rc;
    pthread_mutex_lock(&c->mu);
    bool running = c->is_running;
    pthread_mutex_unlock(&c->mu);
    if (running) {
        pl_client_error(err, PARLEY_E_STATE, "stop the stream before registering another device on this client");
        return PARLEY_E_STATE;
    }
    pl_channel_t *held;
    rc = pl_unary(c, &parley_v1_Accounts_Verify_method, &req, &resp, 0, &held, err);
    if (rc != PARLEY_OK)
        return rc;
    pl_unary_release(c, held);
    if (strlen(resp.token) >= PL_TOKEN_MAX || !resp.token[0]) {
        pl_client_error(err, PARLEY_INTERNAL, "Verify: the server sent an unusable token");
        return PARLEY_INTERNAL;
    }
    pthread_mutex_lock(&c->mu);
    memcpy(c->token, resp.token, strlen(resp.token) + 1);
    c->account_id = resp.account_id;
    c->device_id = resp.device_id;
    pthread_mutex_unlock(&c->mu);
    if (out) {
        memset(out, 0, sizeof(*out));
        out->account_id = resp.account_id;
        out->device_id = resp.device_id;
        memcpy(out->token, resp.token, strlen(resp.token) + 1);
        out->is_new_account = resp.new_account;
    }
    memset(&resp, 0, sizeof(resp));
    return PARLEY_OK;
}

int parley_get_devices(parley_client_t *c, const int64_t *account_ids, size_t count, parley_device_list_t **out,
                       parley_error_t *err)
{
    *out = NULL;
    parley_v1_GetDevicesRequest *req = calloc(1, sizeof(*req));
    parley_v1_GetDevicesResponse *resp = calloc(1, sizeof(*resp));
    int rc = req && resp ? PARLEY_OK : PARLEY_E_NOMEM;
    if (rc == PARLEY_OK &&
        (count > sizeof(req->account_ids) / sizeof(req->account_ids[0]) || (count && !account_ids))) {
        pl_client_error(err, PARLEY_E_INVALID, "at most %zu accounts per call",
                        sizeof(req->account_ids) / sizeof(req->account_ids[0]));
        rc = PARLEY_E_INVALID;
    }
    pl_channel_t *held = NULL;
    if (rc == PARLEY_OK) {
        memcpy(req->account_ids, account_ids, count * sizeof(int64_t));
        req->account_ids_count = (pb_size_t)count;
        rc = pl_unary(c, &parley_v1_Accounts_GetDevices_method, req, resp, PL_UNARY_AUTH | PL_UNARY_IDEMPOTENT, &held,
                      err);
    }
    if (rc == PARLEY_OK) {
        size_t extra = pl_bump_room(resp->accounts_count * sizeof(parley_account_devices_t));
        for (pb_size_t i = 0; i < resp->accounts_count; i++)
            extra += pl_bump_room(resp->accounts[i].device_ids_count * sizeof(int64_t));
        size_t head = pl_bump_room(sizeof(parley_device_list_t));
        parley_device_list_t *list = calloc(1, head + extra);
        if (!list) {
            rc = PARLEY_E_NOMEM;
        } else {
            pl_bump_t b = {(uint8_t *)list + head, extra};
            list->count = resp->accounts_count;
            parley_account_devices_t *ad = pl_bump_alloc(&b, list->count * sizeof(*ad));
            for (size_t i = 0; i < list->count; i++) {
                const parley_v1_AccountDevices *src = &resp->accounts[i];
                int64_t *ids = pl_bump_alloc(&b, src->device_ids_count * sizeof(int64_t));
                if (src->device_ids_count)
                    memcpy(ids, src->device_ids, src->device_ids_count * sizeof(int64_t));
                ad[i] = (parley_account_devices_t){src->account_id, src->device_ids_count, ids};
            }
            list->accounts = ad;
            *out = list;
        }
        pl_unary_release(c, held);
    }
    if (rc == PARLEY_E_NOMEM)
        pl_client_error(err, rc, "out of memory");
    free(req);
    free(resp);
    return rc;
}

void parley_device_list_free(parley_device_list_t *list)
{
    free(list);
}

int parley_remove_device(parley_client_t *c, int64_t device_id, parley_error_t *err)
{
    parley_v1_RemoveDeviceRequest req = {device_id};
    parley_v1_RemoveDeviceResponse resp = {0};
    pl_channel_t *held;
    int rc = pl_unary(c, &parley_v1_Accounts_RemoveDevice_method, &req, &resp, PL_UNARY_AUTH | PL_UNARY_IDEMPOTENT,
                      &held, err);
    if (rc == PARLEY_OK)
        pl_unary_release(c, held);
    return rc;
}

int parley_lookup_phones(parley_client_t *c, const char *const *phones, size_t count, parley_phone_match_t *matches,
                         size_t *match_count, parley_error_t *err)
{
    *match_count = 0;
    parley_v1_LookupPhonesRequest *req = calloc(1, sizeof(*req));
    parley_v1_LookupPhonesResponse *resp = calloc(1, sizeof(*resp));
    int rc = req && resp ? PARLEY_OK : PARLEY_E_NOMEM;
    size_t max = req ? sizeof(req->phone_numbers) / sizeof(req->phone_numbers[0]) : 0;
    if (rc == PARLEY_OK && (count > max || (count && (!phones || !matches)))) {
        pl_client_error(err, PARLEY_E_INVALID, "at most %zu numbers per call", max);
        rc = PARLEY_E_INVALID;
    }
    for (size_t i = 0; rc == PARLEY_OK && i < count; i++)
        rc = pl_copy_field(req->phone_numbers[i], sizeof(req->phone_numbers[i]), phones[i], "phone number", err);
    pl_channel_t *held = NULL;
    if (rc == PARLEY_OK) {
        req->phone_numbers_count = (pb_size_t)count;
        rc = pl_unary(c, &parley_v1_Accounts_LookupPhones_method, req, resp, PL_UNARY_AUTH, &held, err);
    }
    if (rc == PARLEY_OK) {
        for (pb_size_t i = 0; i < resp->matches_count && *match_count < count; i++) {
            parley_phone_match_t *m = &matches[(*match_count)++];
            memset(m, 0, sizeof(*m));
            memcpy(m->phone_number, resp->matches[i].phone_number, sizeof(m->phone_number) - 1);
            m->account_id = resp->matches[i].account_id;
        }
        pl_unary_release(c, held);
    }
    if (rc == PARLEY_E_NOMEM)
        pl_client_error(err, rc, "out of memory");
    free(req);
    free(resp);
    return rc;
}

int parley_get_profile(parley_client_t *c, int64_t account_id, parley_profile_t *out, parley_error_t *err)
{
    parley_v1_GetProfileRequest req = {account_id};
    parley_v1_Profile *resp = calloc(1, sizeof(*resp));
    if (!resp) {
        pl_client_error(err, PARLEY_E_NOMEM, "out of memory");
        return PARLEY_E_NOMEM;
    }
    pl_channel_t *held;
    int rc =
        pl_unary(c, &parley_v1_Accounts_GetProfile_method, &req, resp, PL_UNARY_AUTH | PL_UNARY_IDEMPOTENT, &held, err);
    if (rc == PARLEY_OK) {
        memset(out, 0, sizeof(*out));
        out->account_id = resp->account_id;
        memcpy(out->display_name, resp->display_name, sizeof(resp->display_name));
        memcpy(out->about, resp->about, sizeof(resp->about));
        memcpy(out->phone_number, resp->phone_number, sizeof(out->phone_number) - 1);
        pl_unary_release(c, held);
    }
    free(resp);
    return rc;
}

int parley_update_profile(parley_client_t *c, const char *display_name, const char *about, parley_error_t *err)
{
    parley_v1_UpdateProfileRequest *req = calloc(1, sizeof(*req));
    parley_v1_Profile *resp = calloc(1, sizeof(*resp));
    parley_profile_t *now = calloc(1, sizeof(*now));
    int rc = req && resp && now ? PARLEY_OK : PARLEY_E_NOMEM;
    if (rc == PARLEY_E_NOMEM)
        pl_client_error(err, rc, "out of memory");
    if (rc == PARLEY_OK && (!display_name || !about))
        rc = parley_get_profile(c, 0, now, err);
    if (rc == PARLEY_OK)
        rc = pl_copy_field(req->display_name, sizeof(req->display_name),
                           display_name ? display_name : now->display_name, "display name", err);
    if (rc == PARLEY_OK)
        rc = pl_copy_field(req->about, sizeof(req->about), about ? about : now->about, "about", err);
    pl_channel_t *held;
    if (rc == PARLEY_OK)
        rc = pl_unary(c, &parley_v1_Accounts_UpdateProfile_method, req, resp, PL_UNARY_AUTH | PL_UNARY_IDEMPOTENT,
                      &held, err);
    if (rc == PARLEY_OK)
        pl_unary_release(c, held);
    free(req);
    free(resp);
    free(now);
    return rc;
}
