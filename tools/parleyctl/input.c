/* input.c — successive JSON values; see input.h.
 *
 * From a descriptor, only the bytes up to the last newline read so far are
 * parsed (all of them once the input has ended): a newline never falls
 * inside a JSON string or a UTF-8 sequence, so a value cut by a read()
 * boundary is never seen half. A value still unfinished at that newline
 * (an object spread over lines) waits for more lines. */
#include "input.h"

#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define LOAD_FLAGS (JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)
#define MAX_PENDING_INPUT (64u << 20)
#define READ_CHUNK 65536

void pctl_input_from_string(pctl_input_t *in, const char *data)
{
    memset(in, 0, sizeof(*in));
    in->fd = -1;
    in->is_eof = true;
    in->data = data;
    in->data_len = strlen(data);
    pctl_buf_init(&in->buf, 0);
}

void pctl_input_from_fd(pctl_input_t *in, int fd)
{
    memset(in, 0, sizeof(*in));
    in->fd = fd;
    pctl_buf_init(&in->buf, MAX_PENDING_INPUT);
}

void pctl_input_dispose(pctl_input_t *in)
{
    pctl_buf_dispose(&in->buf);
}

static int syntax_error(pctl_input_t *in, const json_error_t *je, pctl_err_t *err)
{
    return pctl_fail(err, "invalid JSON in request %zu: %s", in->count + 1, je->text);
}

int pctl_input_try_next(pctl_input_t *in, json_t **out, pctl_err_t *err)
{
    *out = NULL;
    const char *base = in->data ? in->data : (const char *)in->buf.data;
    size_t len = in->data ? in->data_len : in->buf.len;
    while (in->pos < len && isspace((unsigned char)base[in->pos]))
        in->pos++;
    if (in->pos == len)
        return in->is_eof ? 0 : PCTL_INPUT_PENDING;
    size_t end = len;
    if (!in->is_eof) {
        while (end > in->pos && base[end - 1] != '\n')
            end--;
        if (end == in->pos)
            return PCTL_INPUT_PENDING;
    }
    json_error_t je;
    *out = pctl_json_load(base + in->pos, end - in->pos, LOAD_FLAGS, &je);
    if (!*out) {
        if (!in->is_eof && json_error_code(&je) == json_error_premature_end_of_input)
            return PCTL_INPUT_PENDING;
        return syntax_error(in, &je, err);
    }
    in->pos += (size_t)je.position;
    in->count++;
    return 1;
}

int pctl_input_read(pctl_input_t *in, pctl_err_t *err)
{
    if (in->is_eof)
        return 0;
    if (in->pos > 0 && in->pos >= in->buf.len / 2) {
        memmove(in->buf.data, in->buf.data + in->pos, in->buf.len - in->pos);
        in->buf.len -= in->pos;
        in->pos = 0;
    }
    if (pctl_buf_reserve(&in->buf, READ_CHUNK) != 0)
        return pctl_fail(err, "a request in the input is over %u MiB", MAX_PENDING_INPUT >> 20);
    ssize_t n;
    do
        n = read(in->fd, in->buf.data + in->buf.len, READ_CHUNK);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return pctl_fail(err, "cannot read the requests: %s", strerror(errno));
    if (n == 0) {
        in->is_eof = true;
        in->fd = -1;
    }
    in->buf.len += (size_t)n;
    return 0;
}

int pctl_input_next(pctl_input_t *in, json_t **out, pctl_err_t *err)
{
    for (;;) {
        int rc = pctl_input_try_next(in, out, err);
        if (rc != PCTL_INPUT_PENDING)
            return rc;
        if (pctl_input_read(in, err) != 0)
            return -1;
    }
}
