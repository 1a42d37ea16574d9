/* invoke.c — `call`; see invoke.h. One loop serves the four shapes: it
 * takes every response the channel has, sends every request the input
 * has, then sleeps in poll() on the connection and standard input until
 * either has something, or the deadline passes. */
#include "invoke.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "codes.h"
#include "input.h"
#include "json.h"
#include "rawmsg.h"
#include "runtime/clock.h"

#define MAX_REQUEST (64u << 20)
#define MAX_JSON_OUTPUT (1u << 30)

typedef struct invocation {
    pl_channel_t *ch;
    const pctl_method_t *m;
    const pctl_invoke_opts_t *o;
    pl_ccall_t *call;
    pctl_input_t in;
    pctl_raw_t req, resp;
    pctl_buf_t encoded;
    pctl_jw_t w;
    bool is_send_closed;
    bool printed_headers;
    size_t sent, received;
} invocation_t;

static void print_metadata(const char *title, const pl_metadata_t *md)
{
    fprintf(stderr, "%s\n", title);
    if (!md || md->count == 0)
        fputs("(empty)\n", stderr);
    for (uint32_t i = 0; md && i < md->count; i++) {
        const char *key;
        size_t klen, vlen;
        const uint8_t *value;
        pl_metadata_at(md, i, &key, &klen, &value, &vlen);
        if (pl_metadata_key_is_binary((const uint8_t *)key, klen)) {
            char *b = pctl_b64_encode(value, vlen);
            fprintf(stderr, "%.*s: %s\n", (int)klen, key, b ? b : "?");
            free(b);
        } else {
            fprintf(stderr, "%.*s: %.*s\n", (int)klen, key, (int)vlen, (const char *)value);
        }
    }
    fputc('\n', stderr);
}

static void maybe_print_headers(invocation_t *v)
{
    if (v->o->verbose && !v->printed_headers) {
        v->printed_headers = true;
        print_metadata("Response headers received:", pl_ccall_initial_metadata(v->call));
    }
}

/* JSON request -> v->encoded; -1 with the error printed. */
static int encode_request(invocation_t *v, const json_t *j)
{
    pctl_err_t err;
    v->encoded.len = 0;
    if (pctl_json_to_wire(v->m->input, j, &v->encoded, &err) != 0) {
        fprintf(stderr, "parleyctl: request %zu for %s: %s\n", v->sent + 1, v->m->full_name, err.text);
        return -1;
    }
    return 0;
}

static int print_response(invocation_t *v)
{
    pctl_err_t err;
    pctl_json_opts_t jo = {v->o->emit_defaults};
    pctl_jw_reset(&v->w);
    if (pctl_json_from_wire(v->m->output, v->resp.in.data, v->resp.in.len, &jo, &v->w, &err) != 0) {
        fprintf(stderr, "parleyctl: response %zu of %s: %s\n", v->received + 1, v->m->full_name, err.text);
        return -1;
    }
    fwrite(v->w.out.data, 1, v->w.out.len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    v->received++;
    return 0;
}

/* Unary and server-streaming calls take exactly one request (none given:
 * an empty message, as grpcurl sends); read whole before the call starts. */
static int read_single_request(invocation_t *v)
{
    json_t *j = NULL, *extra = NULL;
    pctl_err_t err;
    int got = pctl_input_next(&v->in, &j, &err);
    if (got == 1 && pctl_input_next(&v->in, &extra, &err) < 0)
        got = -1;
    if (got < 0) {
        json_decref(j);
        fprintf(stderr, "parleyctl: %s\n", err.text);
        return -1;
    }
    if (extra) {
        json_decref(j);
        json_decref(extra);
        fprintf(stderr, "parleyctl: %s takes one request message, and the input holds more\n", v->m->full_name);
        return -1;
    }
    if (!j && !(j = json_object())) {
        fprintf(stderr, "parleyctl: out of memory\n");
        return -1;
    }
    int rc = encode_request(v, j);
    json_decref(j);
    return rc;
}

/* Sends the requests the input holds now; closes the sending side at its
 * end. -1 on bad input. A call that ended stops the sending quietly: its
 * status tells why. */
static int send_available(invocation_t *v)
{
    json_t *j;
    pctl_err_t err;
    int got;
    while (!v->is_send_closed && (got = pctl_input_try_next(&v->in, &j, &err)) == 1) {
        int rc = encode_request(v, j);
        json_decref(j);
        if (rc != 0)
            return -1;
        pctl_raw_set(&v->req, v->encoded.data, v->encoded.len);
        if (pl_ccall_send(v->call, &v->req) != 0) {
            v->is_send_closed = true; /* the call has ended */
            return 0;
        }
        v->sent++;
    }
    if (v->is_send_closed)
        return 0;
    if (got < 0) {
        fprintf(stderr, "parleyctl: %s\n", err.text);
        return -1;
    }
    if (got == 0) {
        pl_ccall_close_send(v->call);
        v->is_send_closed = true;
    }
    return 0;
}

/* Waits for the connection or the input. */
static int wait_for_io(invocation_t *v)
{
    struct pollfd p[2];
    nfds_t n = 1;
    p[0].fd = pl_channel_fd(v->ch);
    p[0].events = POLLIN | (pl_channel_wants_write(v->ch) ? POLLOUT : 0);
    p[0].revents = 0;
    if (!v->is_send_closed && v->in.fd >= 0) {
        p[1].fd = v->in.fd;
        p[1].events = POLLIN;
        p[1].revents = 0;
        n = 2;
    }
    int timeout = -1;
    if (v->o->deadline_usec) {
        int64_t left = (v->o->deadline_usec - pl_now_usec() + 999) / 1000;
        timeout = left > 0 ? (left > 60000 ? 60000 : (int)left) : 0;
    }
    if (poll(p, n, timeout) < 0 && errno != EINTR) {
        fprintf(stderr, "parleyctl: poll: %s\n", strerror(errno));
        return -1;
    }
    if (n == 2 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        pctl_err_t err;
        if (pctl_input_read(&v->in, &err) != 0) {
            fprintf(stderr, "parleyctl: %s\n", err.text);
            return -1;
        }
    }
    pl_channel_pump(v->ch, 0); /* a lost connection ends the call: try_recv says so */
    return 0;
}

static char *method_path(const pctl_method_t *m)
{
    size_t n = strlen(m->service->full_name) + strlen(m->name) + 3;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "/%s/%s", m->service->full_name, m->name);
    return p;
}

/* The call from start to status; returns the exit status. */
static int run_call(invocation_t *v, const pl_method_t *pm)
{
    const pctl_invoke_opts_t *o = v->o;
    pl_call_opts_t co = {0};
    co.metadata = o->md;
    if (o->deadline_usec) {
        int64_t left = (o->deadline_usec - pl_now_usec() + 999) / 1000;
        co.timeout_ms = left > 0 ? left : 1;
    }
    v->call = pl_ccall_start(v->ch, pm, &co);
    if (!v->call) {
        fprintf(stderr, "parleyctl: out of memory\n");
        return PCTL_EXIT_FAILURE;
    }
    if (!v->m->client_streaming) {
        pctl_raw_set(&v->req, v->encoded.data, v->encoded.len);
        if (pl_ccall_send(v->call, &v->req) == 0)
            v->sent++;
        pl_ccall_close_send(v->call);
        v->is_send_closed = true;
    }
    for (;;) {
        int got;
        while ((got = pl_ccall_try_recv(v->call, &v->resp)) == 1) {
            maybe_print_headers(v);
            if (print_response(v) != 0) {
                pl_ccall_cancel(v->call);
                return PCTL_EXIT_FAILURE;
            }
            pctl_raw_clear_in(&v->resp);
        }
        if (got != PL_CCALL_PENDING)
            break;
        if (send_available(v) != 0) {
            pl_ccall_cancel(v->call);
            return PCTL_EXIT_FAILURE;
        }
        if (wait_for_io(v) != 0) {
            pl_ccall_cancel(v->call);
            return PCTL_EXIT_FAILURE;
        }
    }
    pl_status_t st = {0};
    pl_code_t code = pl_ccall_finish(v->call, &st);
    maybe_print_headers(v);
    if (o->verbose)
        print_metadata("Response trailers received:", pl_ccall_trailing_metadata(v->call));
    if (code == PL_CODE_OK && !v->m->server_streaming && v->received != 1) {
        code = PL_CODE_INTERNAL;
        pl_status_set(&st, code, "the server did not send exactly one response message");
    }
    int exit_code = PCTL_EXIT_OK;
    if (code != PL_CODE_OK) {
        fprintf(stderr, "ERROR:\n  Code: %s\n  Message: %s\n", pctl_code_name(code), st.message ? st.message : "");
        exit_code = PCTL_EXIT_STATUS_BASE + (int)code;
    }
    pl_status_reset(&st);
    return exit_code;
}

int pctl_invoke(pl_channel_t *ch, const pctl_method_t *m, const pctl_invoke_opts_t *o)
{
    invocation_t v = {0};
    v.ch = ch;
    v.m = m;
    v.o = o;
    pl_call_shape_t shape = m->client_streaming
                                ? (m->server_streaming ? PL_SHAPE_BIDI_STREAMING : PL_SHAPE_CLIENT_STREAMING)
                                : (m->server_streaming ? PL_SHAPE_SERVER_STREAMING : PL_SHAPE_UNARY);
    if (o->data)
        pctl_input_from_string(&v.in, o->data);
    else
        pctl_input_from_fd(&v.in, o->in_fd);
    pctl_buf_init(&v.encoded, MAX_REQUEST);
    pctl_raw_init(&v.req, 0);
    pctl_raw_init(&v.resp, o->max_message);
    pctl_jw_init(&v.w, !o->compact && !m->server_streaming, MAX_JSON_OUTPUT);
    char *path = method_path(m);
    int exit_code;
    if (!path) {
        fprintf(stderr, "parleyctl: out of memory\n");
        exit_code = PCTL_EXIT_FAILURE;
    } else if (!m->client_streaming && read_single_request(&v) != 0) {
        exit_code = PCTL_EXIT_FAILURE;
    } else {
        pl_method_t pm;
        pctl_raw_method(&pm, path, shape);
        exit_code = run_call(&v, &pm);
    }
    pl_ccall_free(v.call);
    pctl_input_dispose(&v.in);
    pctl_buf_dispose(&v.encoded);
    pctl_raw_dispose(&v.req);
    pctl_raw_dispose(&v.resp);
    pctl_jw_dispose(&v.w);
    free(path);
    return exit_code;
}
