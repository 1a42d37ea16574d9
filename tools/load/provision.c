/* provision.c — the device set a load run uses: registered through the
 * normal API (RequestCode, the code from the SMS file, Verify), with a
 * direct chat per pair of devices and groups of the requested size, saved to
 * a file so later runs can reuse it. */
#include "provision.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parley/v1/accounts.parley.h"
#include "parley/v1/chats.parley.h"

static pl_channel_t *connect_to(const pl_load_target_t *t, char *err, size_t err_len)
{
    pl_channel_opts_t o = {
        .host = t->host, .port = t->port, .use_tls = t->use_tls, .ca_file = t->ca_file, .server_name = t->server_name};
    return pl_channel_connect(&o, err, err_len);
}

/* The code the file provider wrote for phone (it may take a moment). The
 * file only grows: each look starts where the last one ended. */
static int read_code(const char *sms_file, const char *phone, char *code, size_t len)
{
    static long offset;
    for (int attempt = 0; attempt < 500; attempt++) {
        FILE *f = fopen(sms_file, "r");
        bool found = false;
        if (f) {
            if (fseek(f, offset, SEEK_SET) != 0)
                offset = 0;
            char line[128], p[40], c[16];
            long at = ftell(f);
            while (fgets(line, sizeof(line), f)) {
                if (!strchr(line, '\n'))
                    break; /* a line still being written */
                at = ftell(f);
                if (sscanf(line, "%39s %15s", p, c) == 2 && strcmp(p, phone) == 0) {
                    memcpy(code, c, len < sizeof(c) ? len : sizeof(c));
                    code[len - 1] = '\0';
                    found = true;
                }
            }
            offset = at;
            fclose(f);
        }
        if (found)
            return 0;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int auth_opts(pl_metadata_t *md, pl_call_opts_t *opts, const char *token)
{
    char bearer[128];
    snprintf(bearer, sizeof(bearer), "Bearer %s", token);
    pl_metadata_init(md, 8192);
    memset(opts, 0, sizeof(*opts));
    opts->timeout_ms = 30000;
    opts->metadata = md;
    return pl_metadata_add(md, "authorization", bearer, strlen(bearer));
}

static int register_one(pl_channel_t *ch, const char *sms_file, const char *phone, pl_load_device_t *d, char *err,
                        size_t err_len)
{
    pl_call_opts_t opts = {.timeout_ms = 30000};
    pl_status_t st = {0};
    parley_v1_RequestCodeRequest rq = {0};
    parley_v1_RequestCodeResponse rr = {0};
    snprintf(rq.phone_number, sizeof(rq.phone_number), "%s", phone);
    if (parley_v1_Accounts_RequestCode(ch, &opts, &rq, &rr, &st) != PL_CODE_OK) {
        snprintf(err, err_len, "RequestCode %s: %s: %s", phone, pl_code_name(st.code), st.message ? st.message : "");
        pl_status_reset(&st);
        return -1;
    }
    parley_v1_VerifyRequest vq = {0};
    parley_v1_VerifyResponse vr = {0};
    snprintf(vq.phone_number, sizeof(vq.phone_number), "%s", phone);
    snprintf(vq.device_name, sizeof(vq.device_name), "parley-load");
    if (read_code(sms_file, phone, vq.code, sizeof(vq.code)) != 0) {
        snprintf(err, err_len, "no code for %s in %s (is parleyd's [sms] file this one?)", phone, sms_file);
        return -1;
    }
    if (parley_v1_Accounts_Verify(ch, &opts, &vq, &vr, &st) != PL_CODE_OK) {
        snprintf(err, err_len, "Verify %s: %s: %s", phone, pl_code_name(st.code), st.message ? st.message : "");
        pl_status_reset(&st);
        return -1;
    }
    d->account_id = vr.account_id;
    d->device_id = vr.device_id;
    snprintf(d->token, sizeof(d->token), "%s", vr.token);
    return 0;
}

static int open_direct(pl_channel_t *ch, pl_load_device_t *a, pl_load_device_t *b, char *err, size_t err_len)
{
    pl_metadata_t md;
    pl_call_opts_t opts;
    auth_opts(&md, &opts, a->token);
    parley_v1_OpenDirectChatRequest req = {b->account_id};
    parley_v1_Chat *resp = calloc(1, sizeof(*resp));
    pl_status_t st = {0};
    pl_code_t code = resp ? parley_v1_Chats_OpenDirectChat(ch, &opts, &req, resp, &st) : PL_CODE_RESOURCE_EXHAUSTED;
    pl_metadata_dispose(&md);
    if (code != PL_CODE_OK) {
        snprintf(err, err_len, "OpenDirectChat: %s: %s", pl_code_name(code), st.message ? st.message : "");
        pl_status_reset(&st);
        free(resp);
        return -1;
    }
    a->direct_chat = b->direct_chat = resp->chat_id;
    free(resp);
    return 0;
}

static int create_group(pl_channel_t *ch, pl_load_device_t *devs, int first, int size, char *err, size_t err_len)
{
    pl_metadata_t md;
    pl_call_opts_t opts;
    auth_opts(&md, &opts, devs[first].token);
    parley_v1_CreateGroupRequest *req = calloc(1, sizeof(*req));
    parley_v1_Chat *resp = calloc(1, sizeof(*resp));
    pl_status_t st = {0};
    pl_code_t code = PL_CODE_RESOURCE_EXHAUSTED;
    if (req && resp) {
        snprintf(req->name, sizeof(req->name), "load group %d", first / size);
        for (int i = 1; i < size; i++)
            req->member_ids[req->member_ids_count++] = devs[first + i].account_id;
        code = parley_v1_Chats_CreateGroup(ch, &opts, req, resp, &st);
    }
    pl_metadata_dispose(&md);
    if (code == PL_CODE_OK)
        for (int i = 0; i < size; i++)
            devs[first + i].group_chat = resp->chat_id;
    else
        snprintf(err, err_len, "CreateGroup: %s: %s", pl_code_name(code), st.message ? st.message : "");
    pl_status_reset(&st);
    free(req);
    free(resp);
    return code == PL_CODE_OK ? 0 : -1;
}

int pl_load_provision(const pl_load_target_t *t, const char *sms_file, pl_load_device_t *devs, int n, int group_size,
                      bool quiet, char *err, size_t err_len)
{
    pl_channel_t *ch = connect_to(t, err, err_len);
    if (!ch)
        return -1;
    /* numbers unlikely to collide with earlier runs: +1 555 then 7..10 digits */
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    long base = (long)(rand_r(&seed) % 900) * 10000000L + 1000000000L;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char phone[24];
        snprintf(phone, sizeof(phone), "+1%ld", base + i);
        rc = register_one(ch, sms_file, phone, &devs[i], err, err_len);
        if (!quiet && (i + 1) % 500 == 0)
            fprintf(stderr, "parley-load: registered %d/%d devices\n", i + 1, n);
    }
    for (int i = 0; rc == 0 && i + 1 < n; i += 2)
        rc = open_direct(ch, &devs[i], &devs[i + 1], err, err_len);
    for (int i = 0; rc == 0 && group_size >= 2 && i + group_size <= n; i += group_size)
        rc = create_group(ch, devs, i, group_size, err, err_len);
    pl_channel_free(ch);
    return rc;
}

int pl_load_save(const char *path, const pl_load_device_t *devs, int n)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "# parley-load device set: account device token direct_chat group_chat\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%lld %lld %s %lld %lld\n", (long long)devs[i].account_id, (long long)devs[i].device_id,
                devs[i].token, (long long)devs[i].direct_chat, (long long)devs[i].group_chat);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int pl_load_read(const char *path, pl_load_device_t **out, int *count)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int cap = 1024, n = 0;
    pl_load_device_t *devs = calloc((size_t)cap, sizeof(*devs));
    char line[512];
    while (devs && fgets(line, sizeof(line), f)) {
        if (line[0] == '#')
            continue;
        if (n == cap) {
            cap *= 2;
            pl_load_device_t *grown = realloc(devs, (size_t)cap * sizeof(*devs));
            if (!grown) {
                free(devs);
                devs = NULL;
                break;
            }
            devs = grown;
        }
        pl_load_device_t *d = &devs[n];
        memset(d, 0, sizeof(*d));
        long long a, dv, dc, gc;
        if (sscanf(line, "%lld %lld %79s %lld %lld", &a, &dv, d->token, &dc, &gc) != 5)
            continue;
        d->account_id = a;
        d->device_id = dv;
        d->direct_chat = dc;
        d->group_chat = gc;
        n++;
    }
    fclose(f);
    if (!devs)
        return -1;
    *out = devs;
    *count = n;
    return 0;
}
