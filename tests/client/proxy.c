/* proxy.c — the misbehaving TCP proxy of the client tests (proxy.h). */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64

typedef struct conn {
    int down; /* the client's side */
    int up;   /* the server's side */
} conn_t;

struct proxy {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t turned; /* the thread began a turn with the latest orders */
    uint64_t orders, seen; /* order generations: given, and taken up by the thread */
    int listen_fd, wake_fd;
    uint16_t port;
    struct sockaddr_in target;
    proxy_mode_t mode;
    bool stop, cut;
    int accepted;
    conn_t conns[MAX_CONNS];
    int nconns;
};

static void close_conn(proxy_t *p, int i)
{
    close(p->conns[i].down);
    close(p->conns[i].up);
    p->conns[i] = p->conns[--p->nconns];
}

static void wake(proxy_t *p)
{
    uint64_t one = 1;
    if (write(p->wake_fd, &one, sizeof(one)) < 0)
        perror("proxy: wake");
}

/* Moves what from has to to (or drops it); false when either side closed. */
static bool forward(int from, int to, bool drop)
{
    char buf[65536];
    ssize_t n = recv(from, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return false;
    if (n < 0 || drop)
        return true;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd q = {to, POLLOUT, 0};
            poll(&q, 1, 100);
            continue;
        }
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static void accept_one(proxy_t *p, proxy_mode_t mode)
{
    int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->accepted++;
    pthread_mutex_unlock(&p->mu);
    if (mode == PROXY_REFUSE || p->nconns == MAX_CONNS) {
        close(fd);
        return;
    }
    int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (up < 0 || connect(up, (struct sockaddr *)&p->target, sizeof(p->target)) != 0) {
        if (up >= 0)
            close(up);
        close(fd);
        return;
    }
    p->conns[p->nconns++] = (conn_t){fd, up};
}

static void *proxy_main(void *arg)
{
    proxy_t *p = arg;
    for (;;) {
        /* a turn acts on the orders as they are at its start; whoever gave
         * them waits for this, so nothing happens under old orders after */
        pthread_mutex_lock(&p->mu);
        bool stop = p->stop, cut = p->cut;
        proxy_mode_t mode = p->mode;
        uint64_t gen = p->orders;
        p->cut = false;
        pthread_mutex_unlock(&p->mu);
        if (cut)
            while (p->nconns)
                close_conn(p, 0);
        pthread_mutex_lock(&p->mu);
        p->seen = gen;
        pthread_cond_broadcast(&p->turned);
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        struct pollfd fds[2 + 2 * MAX_CONNS];
        int n = 0;
        fds[n++] = (struct pollfd){p->listen_fd, POLLIN, 0};
        fds[n++] = (struct pollfd){p->wake_fd, POLLIN, 0};
        for (int i = 0; i < p->nconns; i++) {
            fds[n++] = (struct pollfd){p->conns[i].down, POLLIN, 0};
            fds[n++] = (struct pollfd){p->conns[i].up, POLLIN, 0};
        }
        if (poll(fds, (nfds_t)n, 1000) < 0 && errno != EINTR)
            break;
        if (fds[1].revents & POLLIN) {
            uint64_t v;
            if (read(p->wake_fd, &v, sizeof(v)) < 0)
                perror("proxy: wake read");
        }
        /* connections first, from the end, as closing one moves the last */
        for (int i = p->nconns - 1; i >= 0; i--) {
            struct pollfd *d = &fds[2 + 2 * i], *u = &fds[3 + 2 * i];
            bool ok = true;
            if (d->revents & (POLLIN | POLLHUP | POLLERR))
                ok = forward(p->conns[i].down, p->conns[i].up, false);
            if (ok && (u->revents & (POLLIN | POLLHUP | POLLERR)))
                ok = forward(p->conns[i].up, p->conns[i].down, mode == PROXY_DROP_DOWN);
            if (!ok)
                close_conn(p, i);
        }
        if (fds[0].revents & POLLIN)
            accept_one(p, mode);
    }
    while (p->nconns)
        close_conn(p, 0);
    return NULL;
}

proxy_t *proxy_start(const char *host, uint16_t port)
{
    proxy_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->turned, NULL);
    p->target.sin_family = AF_INET;
    p->target.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &p->target.sin_addr) != 1) {
        fprintf(stderr, "proxy: %s is not an IPv4 address\n", host);
        free(p);
        return NULL;
    }
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(p->listen_fd, 64) != 0 || getsockname(p->listen_fd, (struct sockaddr *)&a, &len) != 0) {
        perror("proxy: listen");
        if (p->listen_fd >= 0)
            close(p->listen_fd);
        free(p);
        return NULL;
    }
    p->port = ntohs(a.sin_port);
    p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wake_fd < 0 || pthread_create(&p->thread, NULL, proxy_main, p) != 0) {
        perror("proxy: start");
        close(p->listen_fd);
        free(p);
        return NULL;
    }
    return p;
}

void proxy_stop(proxy_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    wake(p);
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
    close(p->wake_fd);
    pthread_cond_destroy(&p->turned);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

uint16_t proxy_port(const proxy_t *p)
{
    return p->port;
}

/* Waits until the thread starts a turn with the orders just given. */
static void await_turn(proxy_t *p)
{
    uint64_t mine = ++p->orders;
    wake(p);
    while (p->seen < mine)
        pthread_cond_wait(&p->turned, &p->mu);
}

void proxy_set_mode(proxy_t *p, proxy_mode_t mode)
{
    pthread_mutex_lock(&p->mu);
    p->mode = mode;
    await_turn(p);
    pthread_mutex_unlock(&p->mu);
}

void proxy_cut(proxy_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->cut = true;
    await_turn(p);
    pthread_mutex_unlock(&p->mu);
}

int proxy_accepted(proxy_t *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->accepted;
    pthread_mutex_unlock(&p->mu);
    return n;
}
