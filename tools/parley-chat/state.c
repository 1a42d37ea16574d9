/* state.c — parley-chat's state directory (state.h). Files are written to a
 * temporary name and renamed, so a crash never leaves half a file. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* A server on this machine: "127.0.0.1:7443", "localhost:7443", "[::1]:7443". */
static bool is_local_server(const char *server)
{
    static const char *const hosts[] = {"127.0.0.1:", "localhost:", "[::1]:"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
        if (strncmp(server, hosts[i], strlen(hosts[i])) == 0)
            return true;
    return false;
}

int state_init(chat_state_t *st, const char *dir, const char *phone, const char *server, char *err, size_t err_len)
{
    memset(st, 0, sizeof(*st));
    struct stat sb;
    if (dir) {
        snprintf(st->dir, sizeof(st->dir), "%s", dir);
    } else if (is_local_server(server) && stat(STATE_STACK_MARK, &sb) == 0) {
        /* the local stack in the current directory: its credentials live
         * and die with its data (tools/run --reset) */
        snprintf(st->dir, sizeof(st->dir), "%s/%s", STATE_STACK_DIR, phone);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            snprintf(err, err_len, "$HOME is not set: give --state-dir");
            return -1;
        }
        if (strchr(server, '/')) {
            snprintf(err, err_len, "the server \"%s\" is not HOST:PORT", server);
            return -1;
        }
        snprintf(st->dir, sizeof(st->dir), "%s/.parley-chat/%s/%s", home, server, phone);
    }
    if (make_dirs(st->dir) != 0) {
        snprintf(err, err_len, "cannot create %s: %s", st->dir, strerror(errno));
        return -1;
    }
    return 0;
}

static void path_of(const chat_state_t *st, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", st->dir, name);
}

bool state_load(chat_state_t *st, const char *server)
{
    char path[600];
    path_of(st, "device", path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[256];
    st->server[0] = st->token[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (strcmp(k, "server") == 0)
            snprintf(st->server, sizeof(st->server), "%s", v);
        else if (strcmp(k, "account_id") == 0)
            st->account_id = strtoll(v, NULL, 10);
        else if (strcmp(k, "device_id") == 0)
            st->device_id = strtoll(v, NULL, 10);
        else if (strcmp(k, "token") == 0)
            snprintf(st->token, sizeof(st->token), "%s", v);
        else if (strcmp(k, "last_chat") == 0)
            st->last_chat = strtoll(v, NULL, 10);
    }
    fclose(f);
    return st->token[0] && strcmp(st->server, server) == 0;
}

/* Writes text to dir/name through a temporary file (mode 0600). */
static int write_file(const chat_state_t *st, const char *name, const char *text)
{
    char path[600], tmp[620];
    path_of(st, name, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int state_save(const chat_state_t *st, char *err, size_t err_len)
{
    char text[512];
    snprintf(text, sizeof(text),
             "# parley-chat device credentials: the token is a password\n"
             "server=%s\naccount_id=%" PRId64 "\ndevice_id=%" PRId64 "\ntoken=%s\nlast_chat=%" PRId64 "\n",
             st->server, st->account_id, st->device_id, st->token, st->last_chat);
    if (write_file(st, "device", text) != 0) {
        snprintf(err, err_len, "cannot write %s/device: %s", st->dir, strerror(errno));
        return -1;
    }
    return 0;
}

void state_forget(chat_state_t *st)
{
    char path[600];
    path_of(st, "device", path, sizeof(path));
    unlink(path);
    path_of(st, "cursors", path, sizeof(path));
    unlink(path);
    st->token[0] = '\0';
    st->account_id = st->device_id = st->last_chat = 0;
}

parley_cursor_t *state_load_cursors(const chat_state_t *st, size_t *count)
{
    *count = 0;
    char path[600];
    path_of(st, "cursors", path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 0;
    parley_cursor_t *out = NULL;
    long long chat, seq;
    while (fscanf(f, "%lld %lld", &chat, &seq) == 2) {
        if (chat <= 0 || seq < 0)
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            parley_cursor_t *grown = realloc(out, cap * sizeof(*grown));
            if (!grown)
                break;
            out = grown;
        }
        out[(*count)++] = (parley_cursor_t){chat, seq};
    }
    fclose(f);
    return out;
}

int state_save_cursors(const chat_state_t *st, const parley_cursor_t *cursors, size_t count)
{
    size_t cap = 64 + count * 48;
    char *text = malloc(cap);
    if (!text)
        return -1;
    size_t n = (size_t)snprintf(text, cap, "# chat seq: how far parley-chat has shown each chat\n");
    for (size_t i = 0; i < count; i++)
        n += (size_t)snprintf(text + n, cap - n, "%" PRId64 " %" PRId64 "\n", cursors[i].chat_id, cursors[i].seq);
    int rc = write_file(st, "cursors", text);
    free(text);
    return rc;
}
