/* attack_kit.h — what every attack test shares: the case's name and the
 * server under attack, the measurement around an attack (the server's RSS,
 * a well-behaved client calling from 127.0.0.1 throughout), the attacker's
 * connection from 127.0.0.2, and FAIL. */
#ifndef PL_TESTS_H2_ATTACK_KIT_H
#define PL_TESTS_H2_ATTACK_KIT_H

#include <pb.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "check.h"
#include "h2_wire.h"

#define ATTACKER "127.0.0.2"
#define CALM NGHTTP2_ENHANCE_YOUR_CALM

extern uint16_t port; /* the server's */
extern pid_t server_pid;
extern const char *attack_tls_ca; /* --tls=CA: connections over TLS, trusting CA */

/* Starts measuring: RSS sampling, the well-behaved client. */
void attack_begin(void);
/* Stops it; 0 if the server held up (RSS growth within ceiling_mib, the
 * well-behaved client served without a failure), else prints why and 1. */
int attack_end(long ceiling_mib);
/* The attacker's connection: TCP from ATTACKER, preface and SETTINGS. */
int attacker_connect(h2w_conn_t *c, const nghttp2_settings_entry *iv, size_t n);
void ack_settings(h2w_conn_t *c);
/* Opens streams StreamingOutputCall calls on stream ids 1, 3, ..., each
 * asking for count responses of size bytes. */
void open_big_downloads(h2w_conn_t *c, int streams, int count, int32_t size);
/* Appends msg as a gRPC message to out; its protobuf size. */
size_t encode_request(const pb_msgdesc_t *desc, const void *msg, h2w_buf_t *out);

/* The attack programs' main (cases.h): the kit's arguments and --tls=CA
 * (attack and well-behaved client over TLS); other arguments go to extra
 * (NULL: none allowed), which returns false for one it does not know. Runs
 * the case; its exit status. */
int attack_main(int argc, char **argv, const char *prog, const pl_test_case_t *cases, size_t n,
                bool (*extra)(const char *arg));

#endif
