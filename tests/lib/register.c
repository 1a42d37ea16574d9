/* register.c — a device through RequestCode and Verify (register.h). */
#include "register.h"

#include <stdio.h>
#include <string.h>

#include "parley/v1/accounts.parley.h"
#include "sms.h"

static pl_code_t failed(pl_test_reg_t *reg, const char *step, pl_code_t code, pl_status_t *st)
{
    reg->failed_step = step;
    snprintf(reg->message, sizeof(reg->message), "%s", st && st->message ? st->message : "");
    if (st)
        pl_status_reset(st);
    return code;
}

pl_code_t pl_test_register(pl_channel_t *ch, const char *phone, const char *device_name, int timeout_ms,
                           pl_test_reg_t *reg)
{
    memset(reg, 0, sizeof(*reg));
    int before = pl_test_sms_codes(NULL, phone, NULL, 0);
    if (before < 0) {
        reg->failed_step = "SMS";
        snprintf(reg->message, sizeof(reg->message), "PARLEY_SMS_FILE is not set");
        return PL_CODE_FAILED_PRECONDITION;
    }
    pl_call_opts_t o = {timeout_ms, NULL, false};
    pl_status_t st = {0};

    parley_v1_RequestCodeRequest rq = {0};
    parley_v1_RequestCodeResponse rr = {0};
    snprintf(rq.phone_number, sizeof(rq.phone_number), "%s", phone);
    pl_code_t code = parley_v1_Accounts_RequestCode(ch, &o, &rq, &rr, &st);
    if (code != PL_CODE_OK)
        return failed(reg, "RequestCode", code, &st);
    pl_status_reset(&st);

    parley_v1_VerifyRequest vq = {0};
    parley_v1_VerifyResponse vr = {0};
    snprintf(vq.phone_number, sizeof(vq.phone_number), "%s", phone);
    snprintf(vq.device_name, sizeof(vq.device_name), "%s", device_name);
    if (pl_test_sms_wait(NULL, phone, before, vq.code, sizeof(vq.code), timeout_ms) != 0) {
        reg->failed_step = "SMS";
        snprintf(reg->message, sizeof(reg->message), "no new code for %s in the SMS file", phone);
        return PL_CODE_DEADLINE_EXCEEDED;
    }
    code = parley_v1_Accounts_Verify(ch, &o, &vq, &vr, &st);
    if (code != PL_CODE_OK)
        return failed(reg, "Verify", code, &st);
    pl_status_reset(&st);
    reg->account_id = vr.account_id;
    reg->device_id = vr.device_id;
    reg->is_new_account = vr.new_account;
    snprintf(reg->token, sizeof(reg->token), "%s", vr.token);
    return PL_CODE_OK;
}
