/* sms.c — reading the file SMS provider's output (sms.h). The file only
 * grows while a test runs, so it is read whole each time. */
#include "sms.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *sms_path(const char *path)
{
    if (path)
        return path;
    path = getenv("PARLEY_SMS_FILE");
    if (!path)
        printf("PARLEY_SMS_FILE is not set: run under tests/harness/with_parleyd.py\n");
    return path;
}

int pl_test_sms_codes(const char *path, const char *phone, char *code, size_t len)
{
    path = sms_path(path);
    if (!path)
        return -1;
    if (code && len)
        code[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0;
    char line[256], p[64], c[64];
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%63s %63s", p, c) != 2 || strcmp(p, phone) != 0)
            continue;
        n++;
        if (code && len)
            snprintf(code, len, "%s", strlen(c) < len ? c : "");
    }
    fclose(f);
    return n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pl_test_sms_wait(const char *path, const char *phone, int before, char *code, size_t len, int timeout_ms)
{
    path = sms_path(path);
    if (!path)
        return -1;
    int64_t until = now_ms() + timeout_ms;
    for (;;) {
        int n = pl_test_sms_codes(path, phone, code, len);
        if (n > before) {
            if (code && len && !code[0]) {
                printf("the newest code for %s in %s does not fit in %zu bytes\n", phone, path, len);
                return -1;
            }
            return 0;
        }
        if (now_ms() > until) {
            printf("no new code for %s in %s within %d ms\n", phone, path, timeout_ms);
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int pl_test_sms_lines(const char *path)
{
    path = sms_path(path);
    if (!path)
        return -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0;
    for (int ch; (ch = fgetc(f)) != EOF;)
        n += ch == '\n';
    fclose(f);
    return n;
}
