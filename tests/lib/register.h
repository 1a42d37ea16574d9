/* register.h — registering a test device through parley.v1.Accounts, as
 * an app does: RequestCode, the new code from the SMS file (sms.h), Verify.
 * For the suites that call the services over a pl_channel; the libparley
 * suites register through the public API and only read the code here. */
#ifndef PL_TESTS_LIB_REGISTER_H
#define PL_TESTS_LIB_REGISTER_H

#include <stdbool.h>
#include <stdint.h>

#include "parley/channel.h"

typedef struct pl_test_reg {
    int64_t account_id, device_id;
    bool is_new_account;
    char token[80];
    /* on failure: the step that failed ("RequestCode", "SMS", "Verify") and
     * the server's (or the kit's) message */
    const char *failed_step;
    char message[256];
} pl_test_reg_t;

/* Registers a device of phone named device_name on ch, each call with a
 * deadline of timeout_ms (also how long to wait for the code). PL_CODE_OK,
 * or the failing call's code (PL_CODE_DEADLINE_EXCEEDED when no code came)
 * with reg->failed_step and reg->message saying why. */
pl_code_t pl_test_register(pl_channel_t *ch, const char *phone, const char *device_name, int timeout_ms,
                           pl_test_reg_t *reg);

#endif
