/* fcm.h — Firebase Cloud Messaging, HTTP v1 API.
 *
 * Authenticated with an OAuth2 access token that Google's token endpoint
 * gives for a JWT signed with the service account's key (RS256,
 * JWT-bearer grant); kept until a minute before it expires, renewed on a
 * 401. Pushes that arrive while a token is being fetched wait for it. */
#ifndef PL_PUSH_FCM_H
#define PL_PUSH_FCM_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "push/http.h"
#include "push/provider.h"

typedef struct pl_fcm pl_fcm_t;

/* NULL with a message in err when the credentials file is unusable. http
 * must outlive it. */
pl_fcm_t *pl_fcm_new(const pl_config_t *cfg, pl_http_t *http, char *err, size_t err_len);
/* Pushes waiting for a token end as RETRY "shutting down". */
void pl_fcm_free(pl_fcm_t *f);
/* What an answer means (FCM's FcmError codes); true when the access token
 * must be fetched anew. */
bool pl_fcm_read_answer(const pl_http_response_t *res, pl_push_result_t *out);
void pl_fcm_send(pl_fcm_t *f, const pl_push_t *push, pl_push_done_fn fn, void *user);

#endif
