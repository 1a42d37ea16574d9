/* reflect.c — server reflection client; see reflect.h. Requests and
 * responses are encoded and decoded here with the wire module (the
 * messages are small and fixed), so no bound of a generated struct limits
 * what a server may answer: only max_message does. */
#include "reflect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codes.h"
#include "rawmsg.h"
#include "runtime/clock.h"

/* ServerReflectionRequest fields */
#define REQ_FILE_BY_FILENAME 3
#define REQ_FILE_CONTAINING_SYMBOL 4
#define REQ_LIST_SERVICES 7
/* ServerReflectionResponse fields */
#define RESP_FILE_DESCRIPTOR 4
#define RESP_LIST_SERVICES 6
#define RESP_ERROR 7

static const char *const paths[] = {
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
};

struct pctl_reflect {
    pctl_reflect_opts_t opts;
    int version; /* index in paths */
    pl_method_t method;
    pl_ccall_t *call;
    pctl_raw_t req, resp;
};

pctl_reflect_t *pctl_reflect_new(const pctl_reflect_opts_t *opts)
{
    pctl_reflect_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->opts = *opts;
    pctl_raw_init(&r->req, 0);
    pctl_raw_init(&r->resp, opts->max_message);
    return r;
}

void pctl_reflect_free(pctl_reflect_t *r)
{
    if (!r)
        return;
    pl_ccall_free(r->call); /* cancels the stream */
    pctl_raw_dispose(&r->req);
    pctl_raw_dispose(&r->resp);
    free(r);
}

static int start(pctl_reflect_t *r)
{
    pl_call_opts_t co = {0};
    co.metadata = r->opts.md;
    if (r->opts.deadline_usec) {
        int64_t left = (r->opts.deadline_usec - pl_now_usec()) / 1000;
        co.timeout_ms = left > 0 ? left : 1;
    }
    pctl_raw_method(&r->method, paths[r->version], PL_SHAPE_BIDI_STREAMING);
    r->call = pl_ccall_start(r->opts.ch, &r->method, &co);
    return r->call ? 0 : -1;
}

/* Sends one request and waits for its response (in r->resp.in). */
static int ask(pctl_reflect_t *r, uint32_t field, const char *arg, pctl_err_t *err)
{
    pctl_buf_t req;
    pctl_buf_init(&req, 1u << 20);
    if (pctl_buf_len_field(&req, field, arg, strlen(arg)) != 0) {
        pctl_buf_dispose(&req);
        return pctl_fail(err, "reflection request too large");
    }
    int rc = -1;
    for (;;) {
        if (!r->call && start(r) != 0) {
            pctl_fail(err, "out of memory");
            break;
        }
        pctl_raw_set(&r->req, req.data, req.len);
        pctl_raw_clear_in(&r->resp);
        if (pl_ccall_send(r->call, &r->req) == 0 && pl_ccall_recv(r->call, &r->resp) == 1) {
            rc = 0;
            break;
        }
        pl_status_t st = {0};
        pl_code_t code = pl_ccall_finish(r->call, &st);
        pl_ccall_free(r->call);
        r->call = NULL;
        if (code == PL_CODE_UNIMPLEMENTED && r->version == 0) {
            pl_status_reset(&st);
            r->version = 1; /* an older server: try v1alpha */
            continue;
        }
        if (code == PL_CODE_UNIMPLEMENTED)
            pctl_fail(err, "the server does not support server reflection (grpc.reflection.v1 and v1alpha are "
                           "unimplemented); give the schema with --protoset");
        else if (code == PL_CODE_OK)
            pctl_fail(err, "server reflection: the server ended the stream without answering");
        else
            pctl_fail(err, "server reflection failed: %s: %s", pctl_code_name(code), st.message ? st.message : "");
        pl_status_reset(&st);
        break;
    }
    pctl_buf_dispose(&req);
    return rc;
}

/* The error_response in a reflection response, if that is what it holds. */
static bool is_error_response(const uint8_t *data, size_t len, int *code, char *msg, size_t cap)
{
    pctl_wire_reader_t r;
    pctl_wire_field_t f;
    pctl_wire_reader_init(&r, data, len);
    while (pctl_wire_next(&r, &f) == 1) {
        if (f.number != RESP_ERROR || f.wire_type != PCTL_WT_LEN)
            continue;
        pctl_wire_reader_t e;
        pctl_wire_field_t ef;
        *code = 2;
        snprintf(msg, cap, "(no message)");
        pctl_wire_reader_init(&e, f.data, f.len);
        while (pctl_wire_next(&e, &ef) == 1) {
            if (ef.number == 1 && ef.wire_type == PCTL_WT_VARINT)
                *code = (int)(int32_t)(uint32_t)ef.value;
            else if (ef.number == 2 && ef.wire_type == PCTL_WT_LEN)
                snprintf(msg, cap, "%.*s", (int)(ef.len < 400 ? ef.len : 400), (const char *)ef.data);
        }
        return true;
    }
    return false;
}

int pctl_reflect_list_services(pctl_reflect_t *r, char ***names, size_t *count, pctl_err_t *err)
{
    *names = NULL;
    *count = 0;
    if (ask(r, REQ_LIST_SERVICES, "", err) != 0)
        return -1;
    const uint8_t *data = r->resp.in.data;
    size_t len = r->resp.in.len;
    int code;
    char msg[512];
    if (is_error_response(data, len, &code, msg, sizeof(msg)))
        return pctl_fail(err, "server reflection: listing services failed: %s: %s", pctl_code_name(code), msg);
    pctl_wire_reader_t rd;
    pctl_wire_field_t f;
    int rc;
    char **out = NULL;
    size_t n = 0;
    pctl_wire_reader_init(&rd, data, len);
    while ((rc = pctl_wire_next(&rd, &f)) == 1) {
        if (f.number != RESP_LIST_SERVICES || f.wire_type != PCTL_WT_LEN)
            continue;
        pctl_wire_reader_t lr;
        pctl_wire_field_t lf;
        pctl_wire_reader_init(&lr, f.data, f.len);
        while ((rc = pctl_wire_next(&lr, &lf)) == 1) {
            if (lf.number != 1 || lf.wire_type != PCTL_WT_LEN)
                continue;
            pctl_wire_reader_t sr;
            pctl_wire_field_t sf;
            pctl_wire_reader_init(&sr, lf.data, lf.len);
            while (pctl_wire_next(&sr, &sf) == 1) {
                if (sf.number != 1 || sf.wire_type != PCTL_WT_LEN)
                    continue;
                char **v = realloc(out, (n + 1) * sizeof(*v));
                char *s = v ? strndup((const char *)sf.data, sf.len) : NULL;
                if (v)
                    out = v;
                if (!s) {
                    for (size_t i = 0; i < n; i++)
                        free(out[i]);
                    free(out);
                    return pctl_fail(err, "out of memory");
                }
                out[n++] = s;
            }
        }
        if (rc < 0)
            break;
    }
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            free(out[i]);
        free(out);
        return pctl_fail(err, "server reflection: malformed list of services");
    }
    *names = out;
    *count = n;
    return 0;
}

/* Adds the FileDescriptorProtos of the last response to pool. */
static int add_files(pctl_reflect_t *r, pctl_pool_t *pool, const char *what, pctl_err_t *err)
{
    const uint8_t *data = r->resp.in.data;
    size_t len = r->resp.in.len;
    int code;
    char msg[512];
    if (is_error_response(data, len, &code, msg, sizeof(msg))) {
        if (code == PL_CODE_NOT_FOUND)
            return pctl_fail(err, "%s not found on the server (%s)", what, msg);
        return pctl_fail(err, "server reflection: %s: %s: %s", what, pctl_code_name(code), msg);
    }
    pctl_wire_reader_t rd;
    pctl_wire_field_t f;
    int rc;
    pctl_wire_reader_init(&rd, data, len);
    while ((rc = pctl_wire_next(&rd, &f)) == 1) {
        if (f.number != RESP_FILE_DESCRIPTOR || f.wire_type != PCTL_WT_LEN)
            continue;
        pctl_wire_reader_t fr;
        pctl_wire_field_t ff;
        pctl_wire_reader_init(&fr, f.data, f.len);
        while ((rc = pctl_wire_next(&fr, &ff)) == 1) {
            if (ff.number != 1 || ff.wire_type != PCTL_WT_LEN)
                continue;
            if (pctl_pool_add_file(pool, ff.data, ff.len, err) != 0)
                return -1;
        }
        if (rc < 0)
            break;
    }
    if (rc < 0)
        return pctl_fail(err, "server reflection: malformed answer for %s", what);
    return 0;
}

int pctl_reflect_load_symbol(pctl_reflect_t *r, pctl_pool_t *pool, const char *symbol, pctl_err_t *err)
{
    char what[600];
    snprintf(what, sizeof(what), "symbol %s", symbol);
    if (ask(r, REQ_FILE_CONTAINING_SYMBOL, symbol, err) != 0 || add_files(r, pool, what, err) != 0)
        return -1;
    /* every import, by name, until none is missing (a server sends each
     * file once per stream, so files it already sent are in the pool) */
    for (size_t asked = 0;; asked++) {
        const char *missing = NULL;
        for (size_t i = 0; i < pctl_pool_file_count(pool) && !missing; i++) {
            const pctl_file_t *f = pctl_pool_file(pool, i);
            for (size_t d = 0; d < f->dep_count && !missing; d++)
                if (!pctl_pool_has_file(pool, f->deps[d]))
                    missing = f->deps[d];
        }
        if (!missing)
            break;
        if (asked >= 4096)
            return pctl_fail(err, "server reflection: too many dependency requests");
        snprintf(what, sizeof(what), "file %s", missing);
        if (ask(r, REQ_FILE_BY_FILENAME, missing, err) != 0 || add_files(r, pool, what, err) != 0)
            return -1;
        if (!pctl_pool_has_file(pool, missing))
            return pctl_fail(err, "server reflection: asked for %s, the server sent other files", missing);
    }
    return pctl_pool_link(pool, err);
}
