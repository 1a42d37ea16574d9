/* driver.h — the fault-injection driver: devices on libparley that send
 * and receive through faults and record what happened, for checker.py.
 *
 * driver.c sets the run up (accounts and devices registered through the
 * API, direct chats and groups), starts every device, lets them send for a
 * while, waits for quiescence (every send answered, every accepted message
 * at every recipient device) and stops. device.c is one device's app
 * thread: it sends at a modest rate with its own client message ids and
 * records every event its app sees. Everything goes through
 * parley/parley.h only, as an app would. */
#ifndef PL_TESTS_FAULT_DRIVER_H
#define PL_TESTS_FAULT_DRIVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "parley/parley.h"

#define FD_MAX_SERVERS 8
#define FD_MAX_ACCOUNTS 32
#define FD_MAX_DEVICES_PER_ACCOUNT 2
#define FD_MAX_DEVICES (FD_MAX_ACCOUNTS * FD_MAX_DEVICES_PER_ACCOUNT)
#define FD_MAX_CHATS 64
#define FD_CLIENT_ID_MAX 64

typedef struct fd_options {
    const char *servers[FD_MAX_SERVERS]; /* device i uses servers[i % nservers] */
    int nservers;
    const char *out_dir;
    const char *sms_file;
    int accounts; /* accounts; the first `multi` have two devices */
    int multi;
    double rate;         /* sends per second per device */
    double duration_s;   /* how long the devices send */
    double quiesce_s;    /* then at most this long for everything to arrive */
    double linger_s;     /* then this long for late repeats to show */
    double refuse_ratio; /* share of sends to a chat the sender is not in */
    int keepalive_ms;    /* libparley's keepalive_timeout_ms */
    int heartbeat_ms;
    int backoff_max_ms;
    int send_timeout_ms;
    uint64_t seed;
} fd_options_t;

typedef struct fd_account {
    int index;
    int64_t id;
    char phone[24];
    int ndevices;
    int devices[FD_MAX_DEVICES_PER_ACCOUNT]; /* device indexes */
} fd_account_t;

/* The seqs of one chat a device has seen (a bitmap grown on demand). */
typedef struct fd_seen {
    uint8_t *bits;
    size_t cap; /* bytes */
} fd_seen_t;

typedef struct fd_chat {
    int index;
    int64_t id;
    int kind; /* PARLEY_CHAT_* */
    int nmembers;
    int members[FD_MAX_ACCOUNTS]; /* account indexes */
    bool is_member[FD_MAX_ACCOUNTS];
    /* (run mu) accepted sends by seq: sender device index + 1 (0: none) */
    int *sender_at;
    size_t sender_cap;
} fd_chat_t;

typedef struct fd_run fd_run_t;

typedef struct fd_device {
    fd_run_t *run;
    int index;
    int account; /* index */
    int64_t device_id;
    const char *server;
    char token[96];
    parley_client_t *c;
    FILE *log; /* dev<index>.tsv; written by the app thread, then by main */
    pthread_t thread;
    bool has_thread;
    uint64_t rng;
    uint64_t next_number; /* of this device's client message ids */
    /* (run mu) for quiescence and progress */
    uint64_t queued, answered, accepted, failed, duplicates, delivered, repeats;
    uint64_t disconnects, bad_payloads;
    parley_state_t state;
    fd_seen_t seen[FD_MAX_CHATS]; /* by chat index */
} fd_device_t;

struct fd_run {
    fd_options_t opt;
    pthread_mutex_t mu;
    int64_t t0_ms; /* CLOCK_MONOTONIC at start, for the records */
    atomic_bool is_sending;
    atomic_bool is_stopping;
    int naccounts, ndevices, nchats;
    fd_account_t accounts[FD_MAX_ACCOUNTS];
    fd_device_t devices[FD_MAX_DEVICES];
    fd_chat_t chats[FD_MAX_CHATS];
    char run_tag[12]; /* in every client id: ids are unique across runs */
};

int64_t fd_now_ms(void);
/* Milliseconds since the run started (the records' clock). */
int64_t fd_run_ms(const fd_run_t *run);
uint64_t fd_random(uint64_t *state);
/* The chat with this id, or NULL. */
fd_chat_t *fd_chat_by_id(fd_run_t *run, int64_t chat_id);

/* The payload a send of client id cid to chat carries (deterministic, so
 * a receiver can check it); returns its length (< cap). */
size_t fd_payload(const char *cid, int64_t chat_id, char *buf, size_t cap);

/* (run mu) Marks seq of chat seen by d; returns whether it already was. */
bool fd_seen_mark(fd_seen_t *s, int64_t seq);
bool fd_seen_has(const fd_seen_t *s, int64_t seq);

/* Starts d's app thread (its client already started). */
int fd_device_start(fd_device_t *d);
/* Takes and records every event left after the client was stopped. */
void fd_device_drain(fd_device_t *d);
/* Writes one line to d's record (tab-separated: free-form text must be
 * free of tabs and newlines; device.c cleans what the server sent). */
void fd_record(fd_device_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
