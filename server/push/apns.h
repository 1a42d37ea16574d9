/* apns.h — Apple Push Notification service, HTTP/2 with token auth.
 *
 * One ES256 provider token (JWT) serves every push for 40 minutes ([push]
 * apns_token_refresh_ms): Apple
 * wants it renewed between 20 and 60 minutes and answers 429
 * TooManyProviderTokenUpdates when it changes more often. A 403
 * ExpiredProviderToken or InvalidProviderToken renews it at once. */
#ifndef PL_PUSH_APNS_H
#define PL_PUSH_APNS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "push/http.h"
#include "push/provider.h"

typedef struct pl_apns pl_apns_t;

/* NULL with a message in err when the key cannot be loaded. http must
 * outlive it. */
pl_apns_t *pl_apns_new(const pl_config_t *cfg, pl_http_t *http, char *err, size_t err_len);
void pl_apns_free(pl_apns_t *a);
/* What an answer means (Apple's "Handling notification responses from
 * APNs"); true when the provider token must be made anew. */
bool pl_apns_read_answer(const pl_http_response_t *res, pl_push_result_t *out);
/* fn runs once, from the loop. */
void pl_apns_send(pl_apns_t *a, const pl_push_t *push, pl_push_done_fn fn, void *user);

#endif
