/* harness.c — helpers of the libparley integration cases (harness.h). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sms.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

parley_options_t h_options(const char *server)
{
    parley_options_t o = {0};
    o.server = server;
    o.connect_timeout_ms = 2000;
    o.call_timeout_ms = 10000;
    o.heartbeat_ms = 1000;
    o.keepalive_timeout_ms = 2000;
    o.backoff_initial_ms = 100;
    o.backoff_max_ms = 1000;
    o.send_timeout_ms = 5000;
    return o;
}

void h_phone(char out[24])
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = (uint32_t)time(NULL) ^ (uint32_t)getpid();
    snprintf(out, 24, "+1555%07u", r % 10000000u);
}

const char *h_addr(void)
{
    const char *a = getenv("PARLEY_ADDR");
    if (!a) {
        printf("PARLEY_ADDR is not set: run under tests/harness/with_parleyd.py\n");
        exit(2);
    }
    return a;
}

int h_split(const char *addr, char *host, size_t len, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= len)
        return -1;
    snprintf(host, len, "%.*s", (int)(colon - addr), addr);
    *port = (uint16_t)atoi(colon + 1);
    return 0;
}

static int new_client(peer_t *p, const parley_options_t *opts)
{
    parley_options_t o = opts ? *opts : h_options(p->server);
    o.server = p->server;
    if (p->token[0]) {
        o.token = p->token;
        o.account_id = p->account_id;
        o.device_id = p->device_id;
    }
    parley_error_t err = {0};
    p->c = parley_client_new(&o, &err);
    if (!p->c) {
        printf("%s: parley_client_new: %s\n", p->name, err.message);
        return -1;
    }
    return 0;
}

int h_register(peer_t *p, const char *name, const char *server, const char *phone, const parley_options_t *opts)
{
    memset(p, 0, sizeof(*p));
    p->name = name;
    snprintf(p->server, sizeof(p->server), "%s", server);
    snprintf(p->phone, sizeof(p->phone), "%s", phone);
    if (new_client(p, opts) != 0)
        return -1;
    parley_error_t err = {0};
    int before = pl_test_sms_codes(NULL, phone, NULL, 0);
    int rc = parley_request_code(p->c, phone, NULL, &err);
    if (rc != PARLEY_OK) {
        printf("%s: request code: %s: %s\n", name, parley_code_name(rc), err.message);
        return -1;
    }
    char code[16];
    if (before < 0 || pl_test_sms_wait(NULL, phone, before, code, sizeof(code), 5000) != 0) {
        printf("%s: no code for %s in $PARLEY_SMS_FILE\n", name, phone);
        return -1;
    }
    parley_registration_t reg;
    rc = parley_verify(p->c, phone, code, name, &reg, &err);
    if (rc != PARLEY_OK) {
        printf("%s: verify: %s: %s\n", name, parley_code_name(rc), err.message);
        return -1;
    }
    if (reg.account_id != parley_client_account_id(p->c) || reg.device_id != parley_client_device_id(p->c)) {
        printf("%s: verify did not set the client's credentials\n", name);
        return -1;
    }
    p->account_id = reg.account_id;
    p->device_id = reg.device_id;
    snprintf(p->token, sizeof(p->token), "%s", reg.token);
    return 0;
}

int h_reopen(peer_t *p, const parley_options_t *opts)
{
    parley_client_free(p->c);
    p->c = NULL;
    return new_client(p, opts);
}

void h_peer_dispose(peer_t *p)
{
    parley_client_free(p->c);
    free(p->msgs);
    free(p->sends);
    memset(p, 0, sizeof(*p));
}

void record_event(peer_t *p, const parley_event_t *ev)
{
    switch (ev->type) {
    case PARLEY_EVENT_STATE:
        if (p->nstates < sizeof(p->states) / sizeof(p->states[0])) {
            p->state_codes[p->nstates] = ev->state.code;
            p->states[p->nstates++] = ev->state.state;
        }
        if (getenv("PARLEY_TEST_VERBOSE"))
            printf("   [%s] %s %s %s\n", p->name, parley_state_name(ev->state.state), parley_code_name(ev->state.code),
                   ev->state.reason);
        break;
    case PARLEY_EVENT_MESSAGE: {
        if (p->nmsgs == p->msgs_cap) {
            p->msgs_cap = p->msgs_cap ? p->msgs_cap * 2 : 64;
            p->msgs = realloc(p->msgs, p->msgs_cap * sizeof(*p->msgs));
            if (!p->msgs)
                abort();
        }
        seen_msg_t *m = &p->msgs[p->nmsgs++];
        memset(m, 0, sizeof(*m));
        m->chat_id = ev->message.chat_id;
        m->seq = ev->message.seq;
        m->sender_account_id = ev->message.sender_account_id;
        m->sender_device_id = ev->message.sender_device_id;
        snprintf(m->client_id, sizeof(m->client_id), "%s", ev->message.client_message_id);
        size_t n = ev->message.payload_len < sizeof(m->text) - 1 ? ev->message.payload_len : sizeof(m->text) - 1;
        if (n)
            memcpy(m->text, ev->message.payload, n);
        break;
    }
    case PARLEY_EVENT_SEND_ACCEPTED:
    case PARLEY_EVENT_SEND_FAILED: {
        if (p->nsends == p->sends_cap) {
            p->sends_cap = p->sends_cap ? p->sends_cap * 2 : 64;
            p->sends = realloc(p->sends, p->sends_cap * sizeof(*p->sends));
            if (!p->sends)
                abort();
        }
        seen_send_t *s = &p->sends[p->nsends++];
        memset(s, 0, sizeof(*s));
        if (ev->type == PARLEY_EVENT_SEND_ACCEPTED) {
            s->local_id = ev->accepted.local_id;
            s->chat_id = ev->accepted.chat_id;
            s->seq = ev->accepted.seq;
            s->duplicate = ev->accepted.duplicate;
        } else {
            s->failed = true;
            s->local_id = ev->failed.local_id;
            s->chat_id = ev->failed.chat_id;
            s->code = ev->failed.code;
            snprintf(s->message, sizeof(s->message), "%s", ev->failed.message);
            s->missing_count = ev->failed.missing_count;
            s->stale_count = ev->failed.stale_count;
            if (ev->failed.missing_count && ev->failed.missing[0].count)
                s->missing_device = ev->failed.missing[0].device_ids[0];
            if (ev->failed.stale_count)
                s->stale_device = ev->failed.stale_device_ids[0];
        }
        break;
    }
    case PARLEY_EVENT_GAP: p->gaps++; break;
    case PARLEY_EVENT_ERROR: p->errors++; break;
    case PARLEY_EVENT_RECEIPT:
        p->receipts++;
        if (ev->receipt.account_id != p->account_id && ev->receipt.read_seq > p->last_read_seq_seen)
            p->last_read_seq_seen = ev->receipt.read_seq;
        break;
    case PARLEY_EVENT_TYPING:
        if (ev->typing.is_typing)
            p->typing_on++;
        break;
    default: break;
    }
}

void h_pump(peer_t *p, int timeout_ms)
{
    if (!p->c)
        return;
    parley_event_t *ev = parley_client_next_event(p->c, timeout_ms);
    while (ev) {
        record_event(p, ev);
        parley_event_free(ev);
        ev = parley_client_next_event(p->c, 0);
    }
}

bool h_wait(peer_t **peers, size_t n, bool (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (now_ms() >= deadline)
            return false;
        for (size_t i = 0; i < n; i++)
            h_pump(peers[i], n == 1 ? 20 : 5);
    }
}

bool h_wait_state(peer_t *p, parley_state_t st, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        h_pump(p, 10);
        if (p->nstates && p->states[p->nstates - 1] == st)
            return true;
        if (now_ms() >= deadline)
            return false;
    }
}

bool h_saw_state(const peer_t *p, parley_state_t st, size_t from)
{
    for (size_t i = from; i < p->nstates; i++)
        if (p->states[i] == st)
            return true;
    return false;
}

size_t h_chat_seqs(const peer_t *p, int64_t chat_id, int64_t *seqs, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nmsgs; i++)
        if (p->msgs[i].chat_id == chat_id) {
            if (n < cap)
                seqs[n] = p->msgs[i].seq;
            n++;
        }
    return n;
}

const seen_send_t *h_send_result(const peer_t *p, uint64_t local_id)
{
    for (size_t i = 0; i < p->nsends; i++)
        if (p->sends[i].local_id == local_id)
            return &p->sends[i];
    return NULL;
}

/* ---- parleyd ---- */

/* A port parleyd can be restarted on: tools/free-port picks it below the
 * kernel's ephemeral range and reserves it against parallel tests. */
uint16_t h_free_port(void)
{
    FILE *p = popen(PARLEY_FREE_PORT, "r");
    if (!p)
        return 0;
    unsigned port = 0;
    if (fscanf(p, "%u", &port) != 1 || port > 65535)
        port = 0;
    if (pclose(p) != 0)
        port = 0;
    return (uint16_t)port;
}

static bool log_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int server_start(server_t *s, const char *bin, uint16_t port)
{
    s->port = port;
    snprintf(s->log, sizeof(s->log), "/tmp/parley-client-test-%d-%u.log", (int)getpid(), port);
    unlink(s->log);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char portarg[32];
        snprintf(portarg, sizeof(portarg), "--port=%u", port);
        execl(bin, bin, portarg, "--node-id=0", "--workers=2", (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 600; i++) {
        if (log_has(s->log, "listening on"))
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            printf("parleyd exited before listening; its log (%s):\n", s->log);
            FILE *f = fopen(s->log, "r");
            char line[512];
            while (f && fgets(line, sizeof(line), f))
                printf("  %s", line);
            if (f)
                fclose(f);
            s->pid = 0;
            return -1;
        }
        usleep(50 * 1000);
    }
    printf("parleyd did not listen within 30 s\n");
    server_kill9(s);
    return -1;
}

void server_kill9(server_t *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

int server_stop(server_t *s)
{
    if (s->pid <= 0)
        return 0;
    kill(s->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 600; i++) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            if (log_has(s->log, "ERROR: AddressSanitizer") || log_has(s->log, "runtime error:")) {
                printf("parleyd reported a sanitizer error; see %s\n", s->log);
                return 1;
            }
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(50 * 1000);
    }
    printf("parleyd did not stop within 30 s of SIGTERM\n");
    server_kill9(s);
    return 1;
}
