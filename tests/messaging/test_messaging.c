/* test_messaging — the messaging contract (idl/parley/v1/messaging.proto)
 * end to end against parleyd nodes on a throw-away stack, one
 * case per run:
 *
 *   accepted_after_durable  Accepted carries chat_id, seq, server_time_ms, and
 *                           the row is in PostgreSQL when it arrives
 *   seq_order               3 senders x 50 concurrent sends into one group:
 *                           seqs 1..N contiguous, every device gets all of them
 *                           in order, once
 *   idempotent_send         a retried client_message_id (stream, unary,
 *                           concurrent) returns the original seq and stores
 *                           nothing; another device's same id is new
 *   device_payloads         missing/stale devices (stream error and unary
 *                           trailer), exact coverage, each device its payload,
 *                           payload_missing for a device linked later
 *   resume                  Resume cursors, server cursors from delivered acks,
 *                           a new device's cap and Gap
 *   replaced_stream         a second Connect of a device ends the first with
 *                           ABORTED, on one node and across two
 *   receipts                cursors only move forward, are capped, reach the
 *                           sender's devices with the chat-wide minimums, and
 *                           GetChat shows them
 *   typing                  reaches the others, stops 5 s after the last
 *                           "typing", is rate-limited, members only, never stored
 *   presence                online/last seen as privacy, contacts and blocking
 *                           allow, across two nodes
 *   cross_node              direct and group messages between two nodes
 *   rate_limit              sends over the rate get RESOURCE_EXHAUSTED with a
 *                           retry delay, then succeed again
 *   limits                  payload size, bad sends, unknown chats, bad events
 *                           never end the stream, GetHistory bounds and paging
 *   unauthenticated         Connect/Send/GetHistory without a valid token
 *   redis_down              messages flow without Redis on a node, and across
 *                           nodes again once it is back
 *
 * The cases live in test_delivery.c, test_device_payloads.c, test_streams.c,
 * test_receipts.c, test_ephemeral.c, test_nodes.c and test_limits.c; what
 * they share in checks.h and client_util.c.
 *
 * usage: test_messaging CASE (under with_stack.sh and with_parleyd.py; the
 * parleyd flags each case needs are in CMakeLists.txt). */
#include <stdio.h>
#include <string.h>

#include "cases.h"
#include "check.h"
#include "client_util.h"

static const struct {
    const char *name;
    int (*run)(void);
} cases[] = {
    {"accepted_after_durable", mt_case_accepted_after_durable},
    {"seq_order", mt_case_seq_order},
    {"idempotent_send", mt_case_idempotent_send},
    {"device_payloads", mt_case_device_payloads},
    {"resume", mt_case_resume},
    {"replaced_stream", mt_case_replaced_stream},
    {"receipts", mt_case_receipts},
    {"typing", mt_case_typing},
    {"presence", mt_case_presence},
    {"cross_node", mt_case_cross_node},
    {"rate_limit", mt_case_rate_limit},
    {"limits", mt_case_limits},
    {"unauthenticated", mt_case_unauthenticated},
    {"redis_down", mt_case_redis_down},
};

int main(int argc, char **argv)
{
    for (size_t i = 0; argc == 2 && i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (strcmp(argv[1], cases[i].name) != 0)
            continue;
        mt_init();
        printf("messaging.%s on %d node(s), %d shards\n", cases[i].name, mt_nodes(), mt_shards());
        int rc = pl_test_run(cases[i].name, cases[i].run); /* a REQUIRE returns here */
        mt_fini();
        return rc;
    }
    fprintf(stderr, "usage: test_messaging CASE\ncases:");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        fprintf(stderr, " %s", cases[i].name);
    fprintf(stderr, "\n");
    return 2;
}
