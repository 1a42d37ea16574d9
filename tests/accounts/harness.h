/* harness.h — what the accounts integration cases share: a channel to the
 * parleyd that tests/harness/with_parleyd.py started (PARLEY_ADDR), the SMS
 * file it writes codes to (PARLEY_SMS_FILE), registering devices, calling
 * with a device's token, and SQL on a shard of the throw-away cluster
 * (PARLEY_POSTGRES_SERVER, PARLEY_POSTGRES_SHARDS from with_stack.sh).
 * Checks, the SMS file, registering and shard SQL come from the test kit
 * (tests/lib). */
#ifndef PL_TESTS_ACCOUNTS_HARNESS_H
#define PL_TESTS_ACCOUNTS_HARNESS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "parley/channel.h"
#include "parley/v1/accounts.parley.h"

/* A call's outcome: code and (copied, bounded) message. */
typedef struct outcome {
    pl_code_t code;
    char message[256];
} outcome_t;

/* The outcome's code must be want (REQUIRE: stops the case). */
#define REQUIRE_CODE(o, want)                                                                                          \
    REQUIRE((o).code == (want), "want %s, got %s: %s", pl_code_name(want), pl_code_name((o).code), (o).message)

/* A registered device. */
typedef struct device {
    char phone[24];
    int64_t account_id;
    int64_t device_id;
    char token[80];
    bool is_new_account;
    pl_metadata_t md; /* "authorization: Bearer <token>" */
} device_t;

/* Connects to PARLEY_ADDR (exits on failure). */
pl_channel_t *h_connect(void);
/* The shared channel (connected once). */
pl_channel_t *h_channel(void);
void h_close(void);

/* Call options with the device's token (NULL: none) and a 10 s deadline. */
pl_call_opts_t h_opts(const device_t *d);

/* Records a finished call's status in o and releases st's message. */
void h_outcome(outcome_t *o, pl_code_t code, pl_status_t *st);

/* RequestCode; resp may be NULL. */
outcome_t h_request_code(const char *phone, parley_v1_RequestCodeResponse *resp);
/* The last code the SMS file holds for phone into code (7 bytes); false if none. */
bool h_sms_code(const char *phone, char code[7]);
/* Lines in the SMS file (all numbers). */
int h_sms_lines(void);
outcome_t h_verify(const char *phone, const char *code, const char *name, parley_v1_VerifyResponse *resp);
/* RequestCode, the code from the SMS file, Verify; prints and returns -1 on
 * any failure. */
int h_register(device_t *d, const char *phone, const char *name);
void h_device_dispose(device_t *d);

/* A statement on the server holding shard; "{s}" in sql is the shard's
 * schema. Returns the result (PQclear it) or NULL after printing why. */
PGresult *h_sql(int shard, const char *sql, int nparams, const char *const *params);
int h_shards(void);
int h_phone_shard(const char *phone);

/* The number in "... retry after N ms", or -1. */
long long h_retry_after(const char *message);

/* tools/stack SUBCOMMAND on this test's stack (redis-stop, redis-start). */
int h_stack(const char *subcommand);

#endif
