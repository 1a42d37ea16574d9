/* provider.c — what the providers and the dispatcher share: names, and
 * answering a push that never reached a provider. */
#include "push/provider.h"

#include <stdio.h>

const char *pl_push_provider_name(pl_push_provider_t p)
{
    switch (p) {
    case PL_PROVIDER_APNS: return "APNs";
    case PL_PROVIDER_APNS_VOIP: return "APNs VoIP";
    case PL_PROVIDER_FCM: return "FCM";
    }
    return "?";
}

void pl_push_answer_unsent(pl_push_done_fn fn, void *user, pl_push_outcome_t outcome, const char *reason)
{
    pl_push_result_t r = {.outcome = outcome, .retry_after_ms = -1};
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    fn(&r, user);
}
