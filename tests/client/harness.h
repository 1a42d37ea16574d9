/* harness.h — what the libparley integration cases share: test devices
 * ("peers": a parley_client_t plus a record of every event it delivered),
 * registration through the public API with codes from the SMS file,
 * waiting for conditions while taking events, and a parleyd the test starts
 * and kills itself (for the restart case). Everything goes through
 * parley/parley.h only, as an app would; checks and the SMS file's codes
 * come from the test kit (tests/lib, parley_testkit). */
#ifndef PL_TESTS_CLIENT_HARNESS_H
#define PL_TESTS_CLIENT_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "check.h"
#include "parley/parley.h"

typedef struct seen_msg {
    int64_t chat_id, seq, sender_account_id, sender_device_id;
    char client_id[65];
    char text[64]; /* the payload (tests send short text) */
} seen_msg_t;

typedef struct seen_send {
    uint64_t local_id;
    int64_t chat_id, seq;
    bool duplicate;
    bool failed;
    int code; /* failed: why */
    char message[256];
    size_t missing_count, stale_count;
    int64_t missing_device; /* the first missing device */
    int64_t stale_device;   /* the first stale device id */
} seen_send_t;

typedef struct peer {
    const char *name;
    parley_client_t *c;
    char server[64];
    char phone[24];
    int64_t account_id, device_id;
    char token[96];
    seen_msg_t *msgs;
    size_t nmsgs, msgs_cap;
    seen_send_t *sends; /* answers, in the order they came */
    size_t nsends, sends_cap;
    parley_state_t states[512]; /* state changes, in order */
    int state_codes[512];
    size_t nstates;
    int gaps, errors, receipts, typing_on;
    int64_t last_read_seq_seen; /* the highest read_seq of others in receipts */
} peer_t;

/* Default test options: quick reconnects and keepalive. */
parley_options_t h_options(const char *server);
/* "+1555" and 7 random digits. */
void h_phone(char out[24]);
/* PARLEY_ADDR (exits when missing). */
const char *h_addr(void);
/* Splits "host:port". */
int h_split(const char *addr, char *host, size_t len, uint16_t *port);

/* Registers a new device of phone against server (a fresh client; codes
 * from $PARLEY_SMS_FILE). opts NULL: h_options. Prints and returns -1 on
 * failure. */
int h_register(peer_t *p, const char *name, const char *server, const char *phone, const parley_options_t *opts);
/* A new client for p's device (its token), e.g. after the old was freed. */
int h_reopen(peer_t *p, const parley_options_t *opts);
void h_peer_dispose(peer_t *p);

/* Records one event (what h_pump does for each). */
void record_event(peer_t *p, const parley_event_t *ev);
/* Takes every event available within timeout_ms (at least one wait) and
 * records them. */
void h_pump(peer_t *p, int timeout_ms);
/* Pumps the peers until cond(arg) or timeout_ms; returns cond's last value. */
bool h_wait(peer_t **peers, size_t n, bool (*cond)(void *), void *arg, int timeout_ms);
/* Pumps p until its current state is st (true) or timeout_ms. */
bool h_wait_state(peer_t *p, parley_state_t st, int timeout_ms);
/* Did p go through st at or after its state record index from? */
bool h_saw_state(const peer_t *p, parley_state_t st, size_t from);

/* p's messages of chat (in arrival order) into seqs (cap); count. */
size_t h_chat_seqs(const peer_t *p, int64_t chat_id, int64_t *seqs, size_t cap);
/* The answer to a send, or NULL. */
const seen_send_t *h_send_result(const peer_t *p, uint64_t local_id);

/* ---- a parleyd of the test's own ---- */

typedef struct server {
    pid_t pid;
    uint16_t port;
    char log[256];
} server_t;

uint16_t h_free_port(void);
/* Starts parleyd (bin) on port with the stack's environment and
 * $PARLEY_SMS_FILE; waits until it listens. */
int server_start(server_t *s, const char *bin, uint16_t port);
void server_kill9(server_t *s);
/* SIGTERM and wait: parleyd's exit status (0 expected). */
int server_stop(server_t *s);

#endif
