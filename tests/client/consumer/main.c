/* main.c — an app built against an installed libparley only: it checks
 * the basics without a server (errors, states, the send queue), and with
 * one ($PARLEY_ADDR and $PARLEY_SMS_FILE, as with_parleyd.py sets them)
 * registers a device, opens its stream, and sends itself a message through
 * a chat with a second device. */
#define _POSIX_C_SOURCE 200809L
#include <parley/parley.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "consumer: " __VA_ARGS__);                                                                 \
            fprintf(stderr, "\n");                                                                                     \
            return 1;                                                                                                  \
        }                                                                                                              \
    } while (0)

static int offline(void)
{
    parley_options_t o = {0};
    o.server = "127.0.0.1:1";
    o.connect_timeout_ms = 1000;
    parley_error_t err = {0};
    parley_client_t *c = parley_client_new(&o, &err);
    CHECK(c, "client: %s", err.message);
    int rc = parley_request_code(c, "+15550000000", NULL, &err);
    CHECK(rc == PARLEY_UNAVAILABLE, "request code without a server: %s", parley_code_name(rc));
    CHECK(parley_client_start(c) == PARLEY_E_STATE, "started without a token");
    uint64_t id = 0;
    CHECK(parley_client_send(c, 42, "hi", 2, NULL, &id) == PARLEY_OK && id == 1, "queue a send");
    CHECK(parley_client_pending_sends(c) == 1, "pending");
    CHECK(parley_client_event_fd(c) >= 0, "event fd");
    CHECK(parley_client_next_event(c, 0) == NULL, "an event from nowhere");
    parley_client_free(c);
    o.server = "no-port";
    CHECK(parley_client_new(&o, &err) == NULL && err.code == PARLEY_E_INVALID, "a bad address accepted");
    return 0;
}

static int sms_code(const char *phone, char code[16])
{
    const char *path = getenv("PARLEY_SMS_FILE");
    for (int i = 0; path && i < 100; i++) {
        FILE *f = fopen(path, "r");
        char line[128], p[64], c[32];
        int found = 0;
        while (f && fgets(line, sizeof(line), f))
            if (sscanf(line, "%63s %31s", p, c) == 2 && strcmp(p, phone) == 0 && strlen(c) < 16) {
                strcpy(code, c);
                found = 1;
            }
        if (f)
            fclose(f);
        if (found)
            return 0;
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static parley_client_t *registered(const char *addr, const char *phone, const char *name)
{
    parley_options_t o = {0};
    o.server = addr;
    parley_error_t err = {0};
    parley_client_t *c = parley_client_new(&o, &err);
    char code[16];
    if (!c || parley_request_code(c, phone, NULL, &err) != PARLEY_OK || sms_code(phone, code) != 0 ||
        parley_verify(c, phone, code, name, NULL, &err) != PARLEY_OK) {
        fprintf(stderr, "consumer: registering %s: %s\n", phone, err.message);
        parley_client_free(c);
        return NULL;
    }
    return c;
}

static int online(const char *addr)
{
    char phone[24];
    srand((unsigned)time(NULL) ^ (unsigned)clock());
    snprintf(phone, sizeof(phone), "+1555%07d", rand() % 10000000);
    parley_client_t *a = registered(addr, phone, "consumer phone");
    parley_client_t *b = registered(addr, phone, "consumer laptop");
    CHECK(a && b, "registration");
    parley_error_t err = {0};
    parley_chat_t *group = NULL;
    CHECK(parley_create_group(a, "notes", NULL, 0, &group, &err) == PARLEY_OK, "group: %s", err.message);
    int64_t chat = group->chat_id;
    parley_chat_free(group);
    CHECK(parley_client_start(a) == PARLEY_OK && parley_client_start(b) == PARLEY_OK, "start");
    CHECK(parley_client_send(a, chat, "hello", 5, NULL, NULL) == PARLEY_OK, "send");
    int accepted = 0, received = 0;
    time_t end = time(NULL) + 20;
    while ((!accepted || !received) && time(NULL) < end) {
        parley_event_t *ev = parley_client_next_event(a, 50);
        if (ev && ev->type == PARLEY_EVENT_SEND_ACCEPTED)
            accepted = 1;
        parley_event_free(ev);
        ev = parley_client_next_event(b, 50);
        if (ev && ev->type == PARLEY_EVENT_MESSAGE && ev->message.payload_len == 5 &&
            memcmp(ev->message.payload, "hello", 5) == 0)
            received = 1;
        parley_event_free(ev);
    }
    CHECK(accepted && received, "the message did not make it (accepted %d, received %d)", accepted, received);
    parley_client_free(a);
    parley_client_free(b);
    return 0;
}

int main(void)
{
    printf("libparley %s\n", parley_version());
    if (offline() != 0)
        return 1;
    const char *addr = getenv("PARLEY_ADDR");
    if (addr && getenv("PARLEY_SMS_FILE") && online(addr) != 0)
        return 1;
    printf("consumer: ok%s\n", addr ? " (with a server)" : "");
    return 0;
}
