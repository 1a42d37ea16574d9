/* sms.h — how verification codes reach phones: a provider is a small struct
 * of function pointers, chosen by [sms] provider.
 *
 * Providers: "file" appends "<phone> <code>\n" to [sms] file (local use and
 * tests; the tests read that file). A network provider plugs in here with
 * the same shape: send is asynchronous, so it can run an HTTP request on
 * the worker's loop without blocking it. */
#ifndef PL_ACCOUNTS_SMS_H
#define PL_ACCOUNTS_SMS_H

#include <stddef.h>

#include "config/config.h"

typedef struct pl_worker pl_worker_t;
typedef struct pl_sms pl_sms_t;

/* rc: 0 sent (handed to the carrier), -1 not sent. */
typedef void (*pl_sms_done_fn)(int rc, void *user);

struct pl_sms {
    const char *name;
    /* Sends code to phone (both NUL-terminated, E.164 and six digits) from
     * worker w's thread. done runs exactly once, on that thread, possibly
     * before send returns. Providers never log the code. */
    void (*send)(pl_sms_t *sms, pl_worker_t *w, const char *phone, const char *code, pl_sms_done_fn done, void *user);
    void (*free)(pl_sms_t *sms);
};

/* The provider cfg names. NULL with a message naming the key in err
 * ("[sms] provider: unknown provider \"x\" (known: file)"). */
pl_sms_t *pl_sms_new(const pl_config_t *cfg, char *err, size_t err_len);
/* The same check without creating anything: -1 with that message. */
int pl_sms_check_config(const pl_config_t *cfg, char *err, size_t err_len);
void pl_sms_free(pl_sms_t *sms);

#endif
