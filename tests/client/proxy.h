/* proxy.h — a TCP proxy between a client under test and parleyd, run on a
 * thread of the test, that can misbehave on command: refuse connections,
 * swallow what the server sends (so answers are lost while requests still
 * arrive), cut every open connection. Counts the connections it accepted. */
#ifndef PL_TESTS_CLIENT_PROXY_H
#define PL_TESTS_CLIENT_PROXY_H

#include <stdint.h>

typedef enum proxy_mode {
    PROXY_PASS = 0,      /* forward both ways */
    PROXY_REFUSE = 1,    /* close new connections at once */
    PROXY_DROP_DOWN = 2, /* forward client->server, discard server->client */
} proxy_mode_t;

typedef struct proxy proxy_t;

/* Listens on 127.0.0.1 (a free port) and forwards to host:port. */
proxy_t *proxy_start(const char *host, uint16_t port);
void proxy_stop(proxy_t *p);
uint16_t proxy_port(const proxy_t *p);
void proxy_set_mode(proxy_t *p, proxy_mode_t mode);
/* Closes every open connection (both sides). */
void proxy_cut(proxy_t *p);
/* Connections accepted so far (refused ones included). */
int proxy_accepted(proxy_t *p);

#endif
