/* reflection.c — grpc.reflection.v1 and v1alpha ServerReflectionInfo.
 *
 * The two versions are wire-identical (same messages, same field numbers),
 * so one implementation on the v1 types serves both: v1alpha is registered
 * under its own name with v1's message descriptors. */
#include "services/reflection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.parley.h"
#include "rpc/call.h"
#include "runtime/errors.h"

typedef grpc_reflection_v1_ServerReflectionRequest request_t;
typedef grpc_reflection_v1_ServerReflectionResponse response_t;

/* A file in one of the server's descriptor sets. */
typedef struct file_ref {
    const pl_descriptor_set_t *set;
    size_t index;
} file_ref_t;

/* Per-stream state: the response (large: keep it off the stack) and which
 * files this stream has already been sent, as grpc-go and grpc C++ do, so a
 * client walking dependencies gets each file once. */
typedef struct stream {
    response_t resp;
    bool *sent; /* per (set, file), flattened */
    size_t sent_len;
    pl_bytes_t *items; /* file_descriptor_proto entries being sent */
    size_t items_cap;
} stream_t;

/* Copies with truncation (nanopb strings are fixed arrays). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static size_t sent_slot(pl_server_t *srv, file_ref_t f)
{
    size_t base = 0;
    for (size_t i = 0; i < pl_server_descriptor_set_count(srv); i++) {
        const pl_descriptor_set_t *s = pl_server_descriptor_set(srv, i);
        if (s == f.set)
            return base + f.index;
        base += s->file_count;
    }
    return base;
}

static size_t total_files(pl_server_t *srv)
{
    size_t n = 0;
    for (size_t i = 0; i < pl_server_descriptor_set_count(srv); i++)
        n += pl_server_descriptor_set(srv, i)->file_count;
    return n;
}

static bool find_file_by_name(pl_server_t *srv, const char *name, file_ref_t *out)
{
    for (size_t i = 0; i < pl_server_descriptor_set_count(srv); i++) {
        const pl_descriptor_set_t *s = pl_server_descriptor_set(srv, i);
        for (size_t f = 0; f < s->file_count; f++)
            if (strcmp(s->files[f].name, name) == 0) {
                out->set = s;
                out->index = f;
                return true;
            }
    }
    return false;
}

static int symbol_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const pl_proto_symbol_t *)elem)->name);
}

static bool find_symbol_exact(pl_server_t *srv, const char *symbol, file_ref_t *out)
{
    for (size_t i = 0; i < pl_server_descriptor_set_count(srv); i++) {
        const pl_descriptor_set_t *s = pl_server_descriptor_set(srv, i);
        const pl_proto_symbol_t *hit = bsearch(symbol, s->symbols, s->symbol_count, sizeof(*s->symbols), symbol_cmp);
        if (hit) {
            out->set = s;
            out->index = hit->file;
            return true;
        }
    }
    return false;
}

/* Messages, enums, services and methods are indexed; a field or enum value
 * ("pkg.Msg.field") resolves through its parent. */
static bool find_symbol(pl_server_t *srv, const char *symbol, file_ref_t *out)
{
    char name[512];
    copy_str(name, sizeof(name), symbol);
    for (int depth = 0; depth < 2; depth++) {
        if (find_symbol_exact(srv, name, out))
            return true;
        char *dot = strrchr(name, '.');
        if (!dot)
            return false;
        *dot = '\0';
    }
    return false;
}

/* Adds f and, depth-first, its imports not yet sent on this stream. */
static int add_with_deps(pl_server_t *srv, stream_t *st, file_ref_t f, pl_bytes_list_t *list)
{
    size_t slot = sent_slot(srv, f);
    if (slot >= st->sent_len || st->sent[slot])
        return 0;
    st->sent[slot] = true;
    if (list->count == st->items_cap)
        return PL_ERR_LIMIT;
    const pl_proto_file_t *pf = &f.set->files[f.index];
    st->items[list->count++] = pl_bytes_of(pf->data, pf->len);
    for (size_t d = 0; d < pf->dep_count; d++) {
        file_ref_t dep = {f.set, pf->deps[d]};
        if (add_with_deps(srv, st, dep, list) != 0)
            return PL_ERR_LIMIT;
    }
    return 0;
}

static void set_error(response_t *resp, pl_code_t code, const char *msg)
{
    resp->which_message_response = grpc_reflection_v1_ServerReflectionResponse_error_response_tag;
    resp->message_response.error_response.error_code = (int32_t)code;
    copy_str(resp->message_response.error_response.error_message,
             sizeof(resp->message_response.error_response.error_message), msg);
}

static void answer_files(pl_server_t *srv, stream_t *st, const file_ref_t *f, bool found, const char *what)
{
    response_t *resp = &st->resp;
    if (!found) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s not found", what);
        set_error(resp, PL_CODE_NOT_FOUND, msg);
        return;
    }
    resp->which_message_response = grpc_reflection_v1_ServerReflectionResponse_file_descriptor_response_tag;
    pl_bytes_list_t *list = &resp->message_response.file_descriptor_response.file_descriptor_proto;
    list->items = st->items;
    list->capacity = st->items_cap;
    list->count = 0;
    /* A file asked for again is sent again (the client wants it); only its
     * already-sent imports are skipped. */
    size_t slot = sent_slot(srv, *f);
    if (slot < st->sent_len)
        st->sent[slot] = false;
    add_with_deps(srv, st, *f, list);
}

static void answer(pl_server_t *srv, stream_t *st, const request_t *req)
{
    response_t *resp = &st->resp;
    memset(resp, 0, sizeof(*resp));
    copy_str(resp->valid_host, sizeof(resp->valid_host), req->host);
    resp->has_original_request = true;
    resp->original_request = *req;
    file_ref_t f;
    switch (req->which_message_request) {
    case grpc_reflection_v1_ServerReflectionRequest_list_services_tag: {
        grpc_reflection_v1_ListServiceResponse *list = &resp->message_response.list_services_response;
        resp->which_message_response = grpc_reflection_v1_ServerReflectionResponse_list_services_response_tag;
        size_t n = pl_server_service_count(srv);
        size_t cap = sizeof(list->service) / sizeof(list->service[0]);
        for (size_t i = 0; i < n && i < cap; i++)
            copy_str(list->service[list->service_count++].name, sizeof(list->service[0].name),
                     pl_server_service_name(srv, i));
        break;
    }
    case grpc_reflection_v1_ServerReflectionRequest_file_by_filename_tag: {
        const char *name = req->message_request.file_by_filename;
        answer_files(srv, st, &f, find_file_by_name(srv, name, &f), name);
        break;
    }
    case grpc_reflection_v1_ServerReflectionRequest_file_containing_symbol_tag: {
        const char *sym = req->message_request.file_containing_symbol;
        answer_files(srv, st, &f, find_symbol(srv, sym, &f), sym);
        break;
    }
    case grpc_reflection_v1_ServerReflectionRequest_file_containing_extension_tag:
        /* Parley's protos declare no extensions. */
        set_error(resp, PL_CODE_NOT_FOUND, "extension not found");
        break;
    case grpc_reflection_v1_ServerReflectionRequest_all_extension_numbers_of_type_tag: {
        const char *type = req->message_request.all_extension_numbers_of_type;
        if (!find_symbol_exact(srv, type, &f)) {
            set_error(resp, PL_CODE_NOT_FOUND, "type not found");
            break;
        }
        resp->which_message_response = grpc_reflection_v1_ServerReflectionResponse_all_extension_numbers_response_tag;
        copy_str(resp->message_response.all_extension_numbers_response.base_type_name,
                 sizeof(resp->message_response.all_extension_numbers_response.base_type_name), type);
        break;
    }
    default: set_error(resp, PL_CODE_INVALID_ARGUMENT, "request names no known message_request"); break;
    }
}

static void stream_free(void *user)
{
    stream_t *st = user;
    if (!st)
        return;
    free(st->sent);
    free(st->items);
    free(st);
}

static void on_start(pl_call_t *call, void *svc)
{
    pl_server_t *srv = svc;
    stream_t *st = calloc(1, sizeof(*st));
    if (st) {
        st->sent_len = total_files(srv);
        st->items_cap = st->sent_len;
        st->sent = calloc(st->sent_len ? st->sent_len : 1, sizeof(*st->sent));
        st->items = calloc(st->items_cap ? st->items_cap : 1, sizeof(*st->items));
    }
    if (!st || !st->sent || !st->items) {
        stream_free(st);
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    pl_call_set_user(call, st, stream_free);
}

static void on_request(pl_call_t *call, const request_t *req, void *svc)
{
    stream_t *st = pl_call_user(call);
    if (!st)
        return;
    answer(svc, st, req);
    if (grpc_reflection_v1_ServerReflection_ServerReflectionInfo_write(call, &st->resp) == PL_ERR_FULL)
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "client is not reading reflection responses");
}

static void on_half_close(pl_call_t *call, void *svc)
{
    (void)svc;
    pl_call_finish(call, PL_CODE_OK, NULL);
}

static const grpc_reflection_v1_ServerReflection_handlers_t handlers = {
    .ServerReflectionInfo_start = on_start,
    .ServerReflectionInfo = on_request,
    .ServerReflectionInfo_half_close = on_half_close,
};

/* v1alpha under its own path, decoded with the (identical) v1 messages. */
static const pl_method_t v1alpha_info_method = {
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "ServerReflectionInfo",
    PL_SHAPE_BIDI_STREAMING,
    &grpc_reflection_v1_ServerReflectionRequest_msg,
    sizeof(grpc_reflection_v1_ServerReflectionRequest),
    &grpc_reflection_v1_ServerReflectionResponse_msg,
    sizeof(grpc_reflection_v1_ServerReflectionResponse),
};
static const pl_method_t *const v1alpha_methods[] = {&v1alpha_info_method};
static const pl_service_desc_t v1alpha_service = {"grpc.reflection.v1alpha.ServerReflection", v1alpha_methods, 1};

int pl_reflection_register(pl_server_t *srv)
{
    int rc = grpc_reflection_v1_ServerReflection_register(srv, &handlers, srv);
    if (rc != 0)
        return rc;
    pl_method_impl_t impl = {
        &v1alpha_info_method,
        grpc_reflection_v1_ServerReflection_ServerReflectionInfo_on_message,
        grpc_reflection_v1_ServerReflection_ServerReflectionInfo_on_start,
        grpc_reflection_v1_ServerReflection_ServerReflectionInfo_on_half_close,
    };
    return pl_server_add_service(srv, &v1alpha_service, &impl, &handlers, srv);
}
