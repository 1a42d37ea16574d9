/* engine.h — many device streams on one event loop: connecting at a set
 * rate, sending at a target rate (or as fast as each device's window
 * allows), and measuring what comes back: send→deliver latency from the
 * send time each payload carries, acknowledgements, errors by status, and
 * whether every accepted message reached every recipient device. */
#ifndef PL_LOAD_ENGINE_H
#define PL_LOAD_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "hist.h"
#include "provision.h"
#include "runtime/status.h"

typedef struct pl_load_opts {
    pl_load_target_t *targets; /* devices are spread over them round-robin */
    int ntargets;
    double rate;        /* messages/s over all devices; 0: as fast as windows allow */
    int window;         /* sends in flight per device */
    double group_ratio; /* share of sends that go to the device's group */
    int group_size;
    int payload_bytes; /* >= 16 */
    double ramp;       /* connections per second */
    int warmup_s, duration_s;
    bool idle;      /* hold the streams, send nothing */
    int server_pid; /* 0: do not read the server's memory */
    bool quiet;     /* no progress line */
} pl_load_opts_t;

typedef struct pl_load_result {
    int devices, connected, ready, connect_failures, streams_lost;
    double seconds;
    uint64_t sent, accepted, delivered, duplicates, expected, lost;
    uint64_t window_deliveries; /* messages that arrived during the measured window (throughput) */
    uint64_t duplicate_acks;    /* sends the server had already (should be 0) */
    uint64_t errors[PL_CODE_MAX + 1];
    pl_hist_t deliver;                /* send → deliver, µs */
    pl_hist_t ack;                    /* send → accepted, µs */
    long rss_before_kb, rss_after_kb; /* the server's */
} pl_load_result_t;

/* Runs the whole load against devs (n of them). 0, or -1 with a message. */
int pl_load_run(const pl_load_opts_t *o, pl_load_device_t *devs, int n, pl_load_result_t *out, char *err,
                size_t err_len);

#endif
