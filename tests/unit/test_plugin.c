/* test_plugin.c — gen/plugin/protoc_gen_parley.c, judged by what it
 * generated for the interop protos (and the idl/ protos): the text of
 * test.parley.h, the method tables and typed API as compiled C, and the
 * embedded descriptor sets (sorted symbols, FileDescriptorProtos whose name
 * and imports match the file table). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grpc/health/v1/health.parley.h"
#include "grpc/reflection/v1/reflection.parley.h"
#include "grpc/testing/test.parley.h"
#include "interop_descriptors.h"
#include "parley_idl_descriptors.h"

/* ---- the generated header, as text ---- */

/* The file with all whitespace removed, so checks ignore formatting. */
static char *read_squashed(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    int c;
    while (s && (c = fgetc(f)) != EOF) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            continue;
        if (n + 1 == cap) {
            char *t = realloc(s, cap * 2);
            if (!t) {
                free(s);
                s = NULL;
                break;
            }
            s = t;
            cap *= 2;
        }
        s[n++] = (char)c;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static bool has_code(const char *squashed, const char *code)
{
    char needle[512];
    size_t n = 0;
    for (const char *p = code; *p && n + 1 < sizeof(needle); p++)
        if (*p != ' ' && *p != '\n')
            needle[n++] = *p;
    needle[n] = '\0';
    return strstr(squashed, needle) != NULL;
}

#define CHECK_HAS(text, code) CHECK(has_code(text, code), "missing from test.parley.h: %s", code)

#define CHECK_LACKS(text, code) CHECK(!has_code(text, code), "unexpected in test.parley.h: %s", code)

static void test_header_text(void)
{
    char *h = read_squashed(PARLEY_GEN_DIR "/grpc/testing/test.parley.h");
    CHECK(h != NULL);
    if (!h)
        return;
    /* server side */
    CHECK_HAS(h, "typedef struct grpc_testing_TestService_handlers {");
    CHECK_HAS(h, "} grpc_testing_TestService_handlers_t;");
    CHECK_HAS(h, "void (*UnaryCall)(pl_call_t *call, const grpc_testing_SimpleRequest *req, void *svc);");
    CHECK_HAS(h, "void (*FullDuplexCall_start)(pl_call_t *call, void *svc);");
    CHECK_HAS(h, "void (*FullDuplexCall)(pl_call_t *call, const grpc_testing_StreamingOutputCallRequest *req, "
                 "void *svc);");
    CHECK_HAS(h, "void (*FullDuplexCall_half_close)(pl_call_t *call, void *svc);");
    CHECK_HAS(h, "static inline int grpc_testing_TestService_UnaryCall_reply(pl_call_t *call, "
                 "const grpc_testing_SimpleResponse *msg)");
    CHECK_HAS(h, "static inline int grpc_testing_TestService_StreamingOutputCall_write(pl_call_t *call, "
                 "const grpc_testing_StreamingOutputCallResponse *msg)");
    CHECK_HAS(h, "static inline int grpc_testing_TestService_register(pl_server_t *srv, "
                 "const grpc_testing_TestService_handlers_t *h, void *svc)");
    /* client side */
    CHECK_HAS(h, "static inline pl_code_t grpc_testing_TestService_UnaryCall(pl_channel_t *ch, "
                 "const pl_call_opts_t *opts, const grpc_testing_SimpleRequest *req, "
                 "grpc_testing_SimpleResponse *resp, pl_status_t *st)");
    CHECK_HAS(h, "static inline pl_ccall_t *grpc_testing_TestService_FullDuplexCall_start(pl_channel_t *ch, "
                 "const pl_call_opts_t *opts)");
    CHECK_HAS(h, "static inline int grpc_testing_TestService_FullDuplexCall_send(pl_ccall_t *c, "
                 "const grpc_testing_StreamingOutputCallRequest *req)");
    CHECK_HAS(h, "static inline int grpc_testing_TestService_FullDuplexCall_recv(pl_ccall_t *c, "
                 "grpc_testing_StreamingOutputCallResponse *resp)");
    CHECK_HAS(h, "static inline pl_ccall_t *grpc_testing_TestService_StreamingOutputCall_start(pl_channel_t *ch, "
                 "const pl_call_opts_t *opts, const grpc_testing_StreamingOutputCallRequest *req)");
    CHECK_HAS(h, "static inline pl_code_t grpc_testing_TestService_StreamingInputCall_close_and_recv("
                 "pl_ccall_t *c, grpc_testing_StreamingInputCallResponse *resp, pl_status_t *st)");
    /* each shape gets only its own API */
    CHECK_LACKS(h, "(*UnaryCall_start)");
    CHECK_LACKS(h, "(*StreamingOutputCall_start)");
    CHECK_LACKS(h, "grpc_testing_TestService_UnaryCall_write(");
    CHECK_LACKS(h, "grpc_testing_TestService_StreamingOutputCall_reply(");
    CHECK_LACKS(h, "grpc_testing_TestService_FullDuplexCall_reply(");
    CHECK_LACKS(h, "grpc_testing_TestService_StreamingInputCall_recv(");
    CHECK_LACKS(h, "grpc_testing_TestService_StreamingOutputCall_send(");
    free(h);
}

/* ---- the generated API, as compiled C ---- */

typedef void (*on_start_fn)(pl_call_t *, void *);
typedef void (*on_bidi_msg_fn)(pl_call_t *, const grpc_testing_StreamingOutputCallRequest *, void *);
typedef pl_code_t (*unary_fn)(pl_channel_t *, const pl_call_opts_t *, const grpc_testing_SimpleRequest *,
                              grpc_testing_SimpleResponse *, pl_status_t *);
typedef pl_ccall_t *(*bidi_start_fn)(pl_channel_t *, const pl_call_opts_t *);
typedef int (*bidi_recv_fn)(pl_ccall_t *, grpc_testing_StreamingOutputCallResponse *);

/* _Generic does not evaluate its operand, so the static inline client
 * wrappers are type-checked without linking the client library. */
#define HAS_TYPE(expr, type) _Generic((expr), type : 1, default : 0)

static void test_api_types(void)
{
    const grpc_testing_TestService_handlers_t *h = NULL;
    CHECK(HAS_TYPE(h->FullDuplexCall_start, on_start_fn));
    CHECK(HAS_TYPE(h->FullDuplexCall, on_bidi_msg_fn));
    CHECK(HAS_TYPE(h->FullDuplexCall_half_close, on_start_fn));
    CHECK(HAS_TYPE(h->StreamingInputCall_start, on_start_fn));
    CHECK(HAS_TYPE(&grpc_testing_TestService_UnaryCall, unary_fn));
    CHECK(HAS_TYPE(&grpc_testing_TestService_FullDuplexCall_start, bidi_start_fn));
    CHECK(HAS_TYPE(&grpc_testing_TestService_FullDuplexCall_recv, bidi_recv_fn));
}

static void check_method(const pl_method_t *m, const char *path, const char *name, pl_call_shape_t shape,
                         const pb_msgdesc_t *req, size_t req_size, const pb_msgdesc_t *resp, size_t resp_size)
{
    CHECK_EQ_STR(m->path, path);
    CHECK_EQ_STR(m->name, name);
    CHECK_EQ_INT(m->shape, shape);
    CHECK(m->request == req);
    CHECK_EQ_INT(m->request_size, req_size);
    CHECK(m->response == resp);
    CHECK_EQ_INT(m->response_size, resp_size);
}

static void test_method_tables(void)
{
    check_method(&grpc_testing_TestService_UnaryCall_method, "/grpc.testing.TestService/UnaryCall", "UnaryCall",
                 PL_SHAPE_UNARY, &grpc_testing_SimpleRequest_msg, sizeof(grpc_testing_SimpleRequest),
                 &grpc_testing_SimpleResponse_msg, sizeof(grpc_testing_SimpleResponse));
    check_method(&grpc_testing_TestService_EmptyCall_method, "/grpc.testing.TestService/EmptyCall", "EmptyCall",
                 PL_SHAPE_UNARY, &grpc_testing_Empty_msg, sizeof(grpc_testing_Empty), &grpc_testing_Empty_msg,
                 sizeof(grpc_testing_Empty));
    check_method(&grpc_testing_TestService_StreamingOutputCall_method, "/grpc.testing.TestService/StreamingOutputCall",
                 "StreamingOutputCall", PL_SHAPE_SERVER_STREAMING, &grpc_testing_StreamingOutputCallRequest_msg,
                 sizeof(grpc_testing_StreamingOutputCallRequest), &grpc_testing_StreamingOutputCallResponse_msg,
                 sizeof(grpc_testing_StreamingOutputCallResponse));
    check_method(&grpc_testing_TestService_StreamingInputCall_method, "/grpc.testing.TestService/StreamingInputCall",
                 "StreamingInputCall", PL_SHAPE_CLIENT_STREAMING, &grpc_testing_StreamingInputCallRequest_msg,
                 sizeof(grpc_testing_StreamingInputCallRequest), &grpc_testing_StreamingInputCallResponse_msg,
                 sizeof(grpc_testing_StreamingInputCallResponse));
    check_method(&grpc_testing_TestService_FullDuplexCall_method, "/grpc.testing.TestService/FullDuplexCall",
                 "FullDuplexCall", PL_SHAPE_BIDI_STREAMING, &grpc_testing_StreamingOutputCallRequest_msg,
                 sizeof(grpc_testing_StreamingOutputCallRequest), &grpc_testing_StreamingOutputCallResponse_msg,
                 sizeof(grpc_testing_StreamingOutputCallResponse));
    check_method(&grpc_testing_TestService_HalfDuplexCall_method, "/grpc.testing.TestService/HalfDuplexCall",
                 "HalfDuplexCall", PL_SHAPE_BIDI_STREAMING, &grpc_testing_StreamingOutputCallRequest_msg,
                 sizeof(grpc_testing_StreamingOutputCallRequest), &grpc_testing_StreamingOutputCallResponse_msg,
                 sizeof(grpc_testing_StreamingOutputCallResponse));

    /* the service table lists the methods in .proto order */
    const pl_service_desc_t *s = &grpc_testing_TestService_service;
    CHECK_EQ_STR(s->name, "grpc.testing.TestService");
    CHECK_EQ_INT(s->method_count, 8);
    static const char *const order[] = {"EmptyCall",           "UnaryCall",          "CacheableUnaryCall",
                                        "StreamingOutputCall", "StreamingInputCall", "FullDuplexCall",
                                        "HalfDuplexCall",      "UnimplementedCall"};
    for (size_t i = 0; i < 8 && i < s->method_count; i++)
        CHECK_EQ_STR(s->methods[i]->name, order[i]);
    CHECK(s->methods[1] == &grpc_testing_TestService_UnaryCall_method);

    /* the idl/ set: health and reflection */
    check_method(&grpc_health_v1_Health_Check_method, "/grpc.health.v1.Health/Check", "Check", PL_SHAPE_UNARY,
                 &grpc_health_v1_HealthCheckRequest_msg, sizeof(grpc_health_v1_HealthCheckRequest),
                 &grpc_health_v1_HealthCheckResponse_msg, sizeof(grpc_health_v1_HealthCheckResponse));
    CHECK_EQ_INT(grpc_health_v1_Health_Watch_method.shape, PL_SHAPE_SERVER_STREAMING);
    CHECK_EQ_STR(grpc_reflection_v1_ServerReflection_ServerReflectionInfo_method.path,
                 "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
    CHECK_EQ_INT(grpc_reflection_v1_ServerReflection_ServerReflectionInfo_method.shape, PL_SHAPE_BIDI_STREAMING);
}

/* ---- the descriptor sets ---- */

static const pl_proto_symbol_t *find_symbol(const pl_descriptor_set_t *set, const char *name)
{
    for (size_t i = 0; i < set->symbol_count; i++)
        if (strcmp(set->symbols[i].name, name) == 0)
            return &set->symbols[i];
    return NULL;
}

static void check_symbol_in(const pl_descriptor_set_t *set, const char *symbol, const char *file)
{
    const pl_proto_symbol_t *s = find_symbol(set, symbol);
    if (!s)
        fprintf(stderr, "    (symbol %s missing)\n", symbol);
    CHECK(s != NULL);
    if (s) {
        CHECK(s->file < set->file_count);
        if (s->file < set->file_count)
            CHECK_EQ_STR(set->files[s->file].name, file);
    }
}

static void check_sorted(const pl_descriptor_set_t *set)
{
    CHECK(set->symbol_count > 0);
    for (size_t i = 1; i < set->symbol_count; i++) {
        if (strcmp(set->symbols[i - 1].name, set->symbols[i].name) >= 0)
            fprintf(stderr, "    (out of order: %s, %s)\n", set->symbols[i - 1].name, set->symbols[i].name);
        CHECK(strcmp(set->symbols[i - 1].name, set->symbols[i].name) < 0);
    }
}

/* A minimal protobuf reader for FileDescriptorProto's top level. */
static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* Walks the top-level fields: checks field 1 (name) comes first and
 * matches, collects field 3 (dependency) in order; false if malformed. */
static bool parse_file(const pl_proto_file_t *f, const char **deps, size_t *dep_lens, size_t *dep_count,
                       size_t max_deps, bool *name_first)
{
    const uint8_t *p = f->data, *end = f->data + f->len;
    size_t fields = 0;
    *dep_count = 0;
    *name_first = false;
    while (p < end) {
        uint64_t key, len;
        if (!read_varint(&p, end, &key))
            return false;
        uint32_t field = (uint32_t)(key >> 3), wt = (uint32_t)(key & 7);
        if (wt == 0) {
            if (!read_varint(&p, end, &len))
                return false;
        } else if (wt == 2) {
            if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p))
                return false;
            if (fields == 0 && field == 1)
                *name_first = strlen(f->name) == len && memcmp(p, f->name, len) == 0;
            if (field == 3 && *dep_count < max_deps) {
                deps[*dep_count] = (const char *)p;
                dep_lens[(*dep_count)++] = len;
            }
            p += len;
        } else {
            return false; /* FileDescriptorProto has no fixed-width or group fields */
        }
        fields++;
    }
    return true;
}

static void check_files(const pl_descriptor_set_t *set)
{
    CHECK(set->file_count > 0);
    for (size_t i = 0; i < set->file_count; i++) {
        const pl_proto_file_t *f = &set->files[i];
        const char *deps[16];
        size_t dep_lens[16], dep_count = 0;
        bool name_first = false;
        CHECK(f->data != NULL && f->len > 0);
        CHECK(parse_file(f, deps, dep_lens, &dep_count, 16, &name_first));
        if (!name_first)
            fprintf(stderr, "    (file %zu \"%s\": name is not the first field)\n", i, f->name);
        CHECK(name_first);
        /* the deps table matches the imports, in order */
        CHECK_EQ_INT(f->dep_count, dep_count);
        for (size_t d = 0; d < f->dep_count && d < dep_count; d++) {
            CHECK(f->deps[d] < set->file_count);
            if (f->deps[d] < set->file_count) {
                const char *dep_name = set->files[f->deps[d]].name;
                CHECK_EQ_MEM(deps[d], dep_lens[d], dep_name, strlen(dep_name));
            }
        }
    }
}

static void test_interop_descriptors(void)
{
    const pl_descriptor_set_t *set = &interop_descriptors;
    CHECK_EQ_INT(set->file_count, 3);
    check_sorted(set);
    check_files(set);

    const pl_proto_file_t *test = NULL;
    for (size_t i = 0; i < set->file_count; i++)
        if (strcmp(set->files[i].name, "grpc/testing/test.proto") == 0)
            test = &set->files[i];
    CHECK(test != NULL);
    if (test) {
        CHECK_EQ_INT(test->dep_count, 2);
        if (test->dep_count == 2) {
            CHECK_EQ_STR(set->files[test->deps[0]].name, "grpc/testing/empty.proto");
            CHECK_EQ_STR(set->files[test->deps[1]].name, "grpc/testing/messages.proto");
        }
    }

    check_symbol_in(set, "grpc.testing.TestService", "grpc/testing/test.proto");
    check_symbol_in(set, "grpc.testing.TestService.UnaryCall", "grpc/testing/test.proto");
    check_symbol_in(set, "grpc.testing.TestService.FullDuplexCall", "grpc/testing/test.proto");
    check_symbol_in(set, "grpc.testing.SimpleRequest", "grpc/testing/messages.proto");
    check_symbol_in(set, "grpc.testing.PayloadType", "grpc/testing/messages.proto");
    check_symbol_in(set, "grpc.testing.Empty", "grpc/testing/empty.proto");
    CHECK(find_symbol(set, "grpc.testing.NoSuchThing") == NULL);
    CHECK(find_symbol(set, "TestService") == NULL);

    CHECK_EQ_INT(set->service_count, 3);
    if (set->service_count > 0)
        CHECK(set->services[0] == &grpc_testing_TestService_service);
    CHECK(set->messages[set->message_count] == NULL); /* the array's terminator */
    bool has_simple_request = false;
    for (size_t i = 0; i < set->message_count; i++)
        has_simple_request |= set->messages[i] == &grpc_testing_SimpleRequest_msg;
    CHECK(has_simple_request);
}

static void test_idl_descriptors(void)
{
    const pl_descriptor_set_t *set = &parley_idl_descriptors;
    check_sorted(set);
    check_files(set);
    check_symbol_in(set, "grpc.health.v1.Health", "grpc/health/v1/health.proto");
    check_symbol_in(set, "grpc.health.v1.Health.Check", "grpc/health/v1/health.proto");
    check_symbol_in(set, "grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto");
    check_symbol_in(set, "grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto");
    check_symbol_in(set, "grpc.reflection.v1alpha.ServerReflection", "grpc/reflection/v1alpha/reflection.proto");
}

int main(void)
{
    test_header_text();
    test_api_types();
    test_method_tables();
    test_interop_descriptors();
    test_idl_descriptors();
    return pl_test_report();
}
