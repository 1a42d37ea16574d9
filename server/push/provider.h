/* provider.h — one push, and what a provider made of it: the words the
 * dispatcher and the providers (apns.c, fcm.c) share. */
#ifndef PL_PUSH_PROVIDER_H
#define PL_PUSH_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* As stored (push_tokens.provider) and as parley.v1.PushProvider. */
typedef enum { PL_PROVIDER_APNS = 1, PL_PROVIDER_APNS_VOIP = 2, PL_PROVIDER_FCM = 3 } pl_push_provider_t;
/* As stored (push_jobs.kind). */
typedef enum { PL_PUSH_ALERT = 1, PL_PUSH_BACKGROUND = 2, PL_PUSH_CALL = 3 } pl_push_kind_t;

#define PL_PUSH_PREVIEW_MAX 1024 /* bytes of encrypted preview a sender may attach */

typedef struct pl_push {
    pl_push_provider_t provider;
    pl_push_kind_t kind;
    const char *token;
    const char *app_id; /* APNs topic (".voip" is added for PushKit) */
    bool sandbox;
    const uint8_t *preview; /* NULL: none */
    size_t preview_len;
} pl_push_t;

typedef enum {
    PL_PUSH_SENT,
    PL_PUSH_RETRY,      /* later: throttled, provider trouble, no connection, credentials renewed */
    PL_PUSH_TOKEN_DEAD, /* the provider says the token is gone: forget it */
    PL_PUSH_REFUSED,    /* this push can never succeed as it is (logged): drop it */
} pl_push_outcome_t;

typedef struct pl_push_result {
    pl_push_outcome_t outcome;
    int http_status;        /* 0: never reached the provider */
    char reason[96];        /* the provider's reason or errorCode, or ours */
    int64_t retry_after_ms; /* the provider asked for this wait; -1: it did not say */
    int64_t dead_since_ms;  /* APNs 410: the token was invalid from this time on; 0: not said */
    double seconds;         /* request to answer */
} pl_push_result_t;

typedef void (*pl_push_done_fn)(const pl_push_result_t *r, void *user);

/* The name in logs and answers. */
const char *pl_push_provider_name(pl_push_provider_t p);

/* Runs fn for a push that never reached its provider (http_status 0). */
void pl_push_answer_unsent(pl_push_done_fn fn, void *user, pl_push_outcome_t outcome, const char *reason);

#endif
