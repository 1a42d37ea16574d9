/* phone.c — phone numbers: E.164 validation and the shard a number's
 * account lives on. */
#include <string.h>

#include "accounts/accounts_internal.h"
#include "store/shardmap.h"

bool pl_acct_phone_is_valid(const char *s)
{
    if (s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    size_t digits = 0;
    for (const char *p = s + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        if (++digits > PL_PHONE_MAX_DIGITS)
            return false;
    }
    return digits >= PL_PHONE_MIN_DIGITS;
}

int pl_acct_phone_shard(const pl_accounts_t *s, const char *phone)
{
    return pl_shard_for_key(phone, strlen(phone), s->app->map.shards);
}
