/* sms.c — the SMS provider registry and the "file" provider.
 *
 * The file provider opens the file for every code (O_APPEND, so lines
 * from several workers and nodes never interleave: each is one write of a
 * few dozen bytes) and creates its directory when missing. It blocks the
 * worker for one small local write, which is acceptable for the local and
 * test provider it is; a network provider must use the loop instead. */
#include "accounts/sms.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/log.h"

typedef struct file_sms {
    pl_sms_t base;
    char *path;
} file_sms_t;

/* mkdir -p of path's directory. 0 or -1 (errno set). */
static int make_parent_dirs(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -1;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        free(dir);
        return 0;
    }
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            free(dir);
            return -1;
        }
        *p = '/';
    }
    int rc = mkdir(dir, 0700) != 0 && errno != EEXIST ? -1 : 0;
    free(dir);
    return rc;
}

static int append_line(const char *path, const char *line, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT && make_parent_dirs(path) == 0)
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n;
    do {
        n = write(fd, line, len);
    } while (n < 0 && errno == EINTR);
    int saved = errno;
    if (close(fd) != 0 && n == (ssize_t)len)
        return -1;
    errno = saved;
    return n == (ssize_t)len ? 0 : -1;
}

static void file_send(pl_sms_t *sms, pl_worker_t *w, const char *phone, const char *code, pl_sms_done_fn done,
                      void *user)
{
    (void)w;
    file_sms_t *f = (file_sms_t *)sms;
    char line[64];
    int len = snprintf(line, sizeof(line), "%s %s\n", phone, code);
    int rc = -1;
    if (len > 0 && (size_t)len < sizeof(line)) {
        rc = append_line(f->path, line, (size_t)len);
        if (rc != 0)
            pl_log_error("sms: [sms] file %s: cannot append: %s", f->path, strerror(errno));
    }
    sodium_memzero(line, sizeof(line));
    done(rc, user);
}

static void file_free(pl_sms_t *sms)
{
    file_sms_t *f = (file_sms_t *)sms;
    free(f->path);
    free(f);
}

static pl_sms_t *file_new(const pl_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg->sms_file || !cfg->sms_file[0]) {
        snprintf(err, err_len, "config: [sms] file: the file provider needs a path");
        return NULL;
    }
    file_sms_t *f = calloc(1, sizeof(*f));
    if (!f || !(f->path = strdup(cfg->sms_file))) {
        free(f);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    f->base.name = "file";
    f->base.send = file_send;
    f->base.free = file_free;
    return &f->base;
}

static const struct {
    const char *name;
    pl_sms_t *(*create)(const pl_config_t *cfg, char *err, size_t err_len);
} providers[] = {
    {"file", file_new},
};

static int provider_index(const pl_config_t *cfg, char *err, size_t err_len)
{
    const char *name = cfg->sms_provider ? cfg->sms_provider : "";
    for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
        if (strcmp(name, providers[i].name) == 0)
            return (int)i;
    snprintf(err, err_len, "config: [sms] provider: unknown provider \"%s\" (known: file)", name);
    return -1;
}

int pl_sms_check_config(const pl_config_t *cfg, char *err, size_t err_len)
{
    return provider_index(cfg, err, err_len) < 0 ? -1 : 0;
}

pl_sms_t *pl_sms_new(const pl_config_t *cfg, char *err, size_t err_len)
{
    int i = provider_index(cfg, err, err_len);
    return i < 0 ? NULL : providers[i].create(cfg, err, err_len);
}

void pl_sms_free(pl_sms_t *sms)
{
    if (sms)
        sms->free(sms);
}
