/* test_codec.c — runtime/codec.c, the nanopb glue and its "view"
 * policy, through the generated interop and reflection messages: encoding
 * against hand-computed bytes, zero-copy decoding (views point into the
 * input), inline-string and repeated-view overflow, truncated and garbage
 * input, and pl_pb_check_policy on every generated message and on
 * hand-made descriptors that break the policy. */
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grpc/reflection/v1/reflection.pb.h"
#include "grpc/testing/messages.pb.h"
#include "interop_descriptors.h"
#include "parley_idl_descriptors.h"
#include "runtime/codec.h"

/* SimpleRequest{response_size: 314159, payload.body: "hello\0world", fill_username: true} */
static const uint8_t simple_wire[] = {0x10, 0xaf, 0x96, 0x13,                     /* 2: varint 314159 */
                                      0x1a, 0x0d, 0x12, 0x0b, 'h', 'e', 'l', 'l', /* 3: { 2: bytes[11] */
                                      'o',  0,    'w',  'o',  'r', 'l', 'd',      /*   ... } */
                                      0x20, 0x01};                                /* 4: true */
#define SIMPLE_BODY_OFFSET 8

static void test_encode_simple_request(void)
{
    grpc_testing_SimpleRequest req;
    memset(&req, 0, sizeof(req));
    req.response_size = 314159;
    req.has_payload = true;
    req.payload.body = pl_bytes_of("hello\0world", 11);
    req.fill_username = true;

    CHECK_EQ_INT(pl_pb_encoded_size(&grpc_testing_SimpleRequest_msg, &req), sizeof(simple_wire));
    uint8_t out[sizeof(simple_wire)];
    CHECK_EQ_INT(pl_pb_encode(&grpc_testing_SimpleRequest_msg, &req, out, sizeof(out)), 0);
    CHECK_EQ_MEM(out, sizeof(out), simple_wire, sizeof(simple_wire));

    /* a size other than the encoded size is refused */
    uint8_t big[64];
    CHECK_EQ_INT(pl_pb_encode(&grpc_testing_SimpleRequest_msg, &req, big, sizeof(simple_wire) - 1), -1);
    CHECK_EQ_INT(pl_pb_encode(&grpc_testing_SimpleRequest_msg, &req, big, sizeof(big)), -1);

    /* proto3: an empty view is not written at all */
    req.payload.body = pl_bytes_of(NULL, 0);
    CHECK_EQ_INT(pl_pb_encoded_size(&grpc_testing_SimpleRequest_msg, &req), 8); /* 4 + {1a 00} + 2 */
}

static void test_decode_is_zero_copy(void)
{
    /* a heap copy, so "points into the input" can only mean this buffer */
    uint8_t *buf = malloc(sizeof(simple_wire));
    CHECK(buf != NULL);
    if (!buf)
        return;
    memcpy(buf, simple_wire, sizeof(simple_wire));

    grpc_testing_SimpleRequest req;
    memset(&req, 0, sizeof(req));
    const char *why = NULL;
    CHECK_EQ_INT(pl_pb_decode(&grpc_testing_SimpleRequest_msg, buf, sizeof(simple_wire), &req, &why), 0);
    CHECK_EQ_INT(req.response_size, 314159);
    CHECK(req.has_payload);
    CHECK(req.fill_username);
    CHECK(!req.fill_oauth_scope);
    CHECK(!req.has_response_status);
    CHECK(req.payload.body.data == buf + SIMPLE_BODY_OFFSET);
    CHECK_EQ_INT(req.payload.body.len, 11);
    CHECK_EQ_MEM(req.payload.body.data, req.payload.body.len, "hello\0world", 11);
    free(buf);

    /* an empty body decodes to an empty view */
    static const uint8_t empty_body[] = {0x1a, 0x02, 0x12, 0x00};
    memset(&req, 0, sizeof(req));
    CHECK_EQ_INT(pl_pb_decode(&grpc_testing_SimpleRequest_msg, empty_body, sizeof(empty_body), &req, &why), 0);
    CHECK(req.has_payload);
    CHECK(req.payload.body.data == NULL);
    CHECK_EQ_INT(req.payload.body.len, 0);
}

/* Views can only come from pl_pb_decode's own buffer stream. */
static void test_views_need_pl_pb_decode(void)
{
    static const uint8_t payload[] = {0x12, 0x03, 'a', 'b', 'c'};
    grpc_testing_Payload p;
    memset(&p, 0, sizeof(p));
    pb_istream_t is = pb_istream_from_buffer(payload, sizeof(payload));
    CHECK(!pb_decode(&is, &grpc_testing_Payload_msg, &p));
    CHECK(p.body.data == NULL);
}

static size_t put_varint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* SimpleRequest{response_status: {message: len x 'm'}} */
static size_t wire_with_status_message(uint8_t *out, uint32_t len)
{
    uint8_t inner_head[8];
    size_t ih = 0;
    inner_head[ih++] = 0x12;
    ih += put_varint(inner_head + ih, len);
    size_t n = 0;
    out[n++] = 0x3a;
    n += put_varint(out + n, (uint32_t)(ih + len));
    memcpy(out + n, inner_head, ih);
    n += ih;
    memset(out + n, 'm', len);
    return n + len;
}

static void test_inline_string_overflow(void)
{
    static uint8_t wire[2048];
    grpc_testing_SimpleRequest *req = calloc(1, sizeof(*req));
    CHECK(req != NULL);
    if (!req)
        return;
    const char *why = NULL;

    /* char[1024] holds 1023 bytes and the NUL */
    size_t n = wire_with_status_message(wire, 1023);
    CHECK_EQ_INT(pl_pb_decode(&grpc_testing_SimpleRequest_msg, wire, n, req, &why), 0);
    CHECK(req->has_response_status);
    CHECK_EQ_INT(strlen(req->response_status.message), 1023);

    memset(req, 0, sizeof(*req));
    n = wire_with_status_message(wire, 1024);
    CHECK_EQ_INT(pl_pb_decode(&grpc_testing_SimpleRequest_msg, wire, n, req, &why), -1);
    CHECK(why != NULL);
    CHECK(pl_pb_error_is_overflow(why));
    free(req);

    /* top level: SimpleResponse.username is char[128] */
    grpc_testing_SimpleResponse resp;
    memset(&resp, 0, sizeof(resp));
    uint8_t name[3 + 128] = {0x12, 0x80, 0x01};
    memset(name + 3, 'u', 128);
    why = NULL;
    CHECK_EQ_INT(pl_pb_decode(&grpc_testing_SimpleResponse_msg, name, sizeof(name), &resp, &why), -1);
    CHECK(pl_pb_error_is_overflow(why));
    uint8_t name127[2 + 127] = {0x12, 127};
    memset(name127 + 2, 'u', 127);
    memset(&resp, 0, sizeof(resp));
    CHECK_EQ_INT(pl_pb_decode(&grpc_testing_SimpleResponse_msg, name127, sizeof(name127), &resp, &why), 0);
    CHECK_EQ_INT(strlen(resp.username), 127);

    CHECK(!pl_pb_error_is_overflow(NULL));
    CHECK(!pl_pb_error_is_overflow("io error"));
}

/* FileDescriptorResponse{file_descriptor_proto: ["abc", "", "\0\xff"]} */
static const uint8_t fdr_wire[] = {0x0a, 0x03, 'a', 'b', 'c', 0x0a, 0x00, 0x0a, 0x02, 0x00, 0xff};

static void test_repeated_views(void)
{
    pl_bytes_t values[3] = {pl_bytes_of("abc", 3), pl_bytes_of(NULL, 0), pl_bytes_of("\0\xff", 2)};
    grpc_reflection_v1_FileDescriptorResponse fdr;
    memset(&fdr, 0, sizeof(fdr));
    fdr.file_descriptor_proto.items = values;
    fdr.file_descriptor_proto.count = 3;
    CHECK_EQ_INT(pl_pb_encoded_size(&grpc_reflection_v1_FileDescriptorResponse_msg, &fdr), sizeof(fdr_wire));
    uint8_t out[sizeof(fdr_wire)];
    CHECK_EQ_INT(pl_pb_encode(&grpc_reflection_v1_FileDescriptorResponse_msg, &fdr, out, sizeof(out)), 0);
    CHECK_EQ_MEM(out, sizeof(out), fdr_wire, sizeof(fdr_wire));

    /* decode into a caller-provided array */
    pl_bytes_t items[3];
    memset(&fdr, 0, sizeof(fdr));
    fdr.file_descriptor_proto.items = items;
    fdr.file_descriptor_proto.capacity = 3;
    const char *why = NULL;
    CHECK_EQ_INT(pl_pb_decode(&grpc_reflection_v1_FileDescriptorResponse_msg, fdr_wire, sizeof(fdr_wire), &fdr, &why),
                 0);
    CHECK_EQ_INT(fdr.file_descriptor_proto.count, 3);
    CHECK(items[0].data == fdr_wire + 2);
    CHECK_EQ_MEM(items[0].data, items[0].len, "abc", 3);
    CHECK_EQ_INT(items[1].len, 0);
    CHECK(items[2].data == fdr_wire + 9);
    CHECK_EQ_MEM(items[2].data, items[2].len, "\0\xff", 2);

    /* more items than capacity */
    memset(&fdr, 0, sizeof(fdr));
    fdr.file_descriptor_proto.items = items;
    fdr.file_descriptor_proto.capacity = 2;
    why = NULL;
    CHECK_EQ_INT(pl_pb_decode(&grpc_reflection_v1_FileDescriptorResponse_msg, fdr_wire, sizeof(fdr_wire), &fdr, &why),
                 -1);
    CHECK(pl_pb_error_is_overflow(why));

    /* no array at all */
    memset(&fdr, 0, sizeof(fdr));
    CHECK_EQ_INT(pl_pb_decode(&grpc_reflection_v1_FileDescriptorResponse_msg, fdr_wire, sizeof(fdr_wire), &fdr, &why),
                 -1);
}

/* Every prefix of a valid message: only those ending on a field boundary
 * decode; the rest fail cleanly (ASan watches the reads). */
static void test_truncated(void)
{
    for (size_t n = 0; n <= sizeof(simple_wire); n++) {
        uint8_t *buf = malloc(n ? n : 1); /* exact size, so an overread is caught */
        CHECK(buf != NULL);
        if (!buf)
            return;
        memcpy(buf, simple_wire, n);
        grpc_testing_SimpleRequest req;
        memset(&req, 0, sizeof(req));
        const char *why = NULL;
        int rc = pl_pb_decode(&grpc_testing_SimpleRequest_msg, buf, n, &req, &why);
        bool boundary = n == 0 || n == 4 || n == 19 || n == 21;
        if ((rc == 0) != boundary)
            fprintf(stderr, "    (prefix of %zu bytes)\n", n);
        CHECK_EQ_INT(rc, boundary ? 0 : -1);
        if (rc != 0)
            CHECK(why != NULL && !pl_pb_error_is_overflow(why));
        free(buf);
    }
}

static void test_garbage(void)
{
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\x1a\x7f\x12", 3},      /* submessage longer than the input */
        {"\x18\x01", 2},          /* payload (a message) as a varint */
        {"\x12\x01\x01", 3},      /* response_size (varint) as bytes */
        {"\x1a\x03\x12\x05z", 5}, /* body longer than its submessage */
        {"\x0f", 1},              /* wire type 7 */
        {"\x10\x80", 2},          /* varint cut short */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        grpc_testing_SimpleRequest req;
        memset(&req, 0, sizeof(req));
        const char *why = NULL;
        int rc = pl_pb_decode(&grpc_testing_SimpleRequest_msg, (const uint8_t *)bad[i].bytes, bad[i].len, &req, &why);
        if (rc != -1)
            fprintf(stderr, "    (garbage case %zu)\n", i);
        CHECK_EQ_INT(rc, -1);
        CHECK(why != NULL && !pl_pb_error_is_overflow(why));
    }

    /* pseudo-random input: any result is fine, crashing is not */
    uint32_t x = 0x2545f491;
    uint8_t buf[64];
    int decoded = 0;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % (int)sizeof(buf)) + 1;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            buf[i] = (uint8_t)x;
        }
        uint8_t *exact = malloc(n);
        if (!exact)
            break;
        memcpy(exact, buf, n);
        grpc_testing_StreamingOutputCallRequest req;
        memset(&req, 0, sizeof(req));
        decoded += pl_pb_decode(&grpc_testing_StreamingOutputCallRequest_msg, exact, n, &req, NULL) == 0;
        free(exact);
    }
    CHECK(decoded < 2000);
}

/* A varint longer than 10 bytes is malformed protobuf, not a field that
 * exceeds its bound: the server must not answer it as a size-limit error. */
static void test_malformed_varint_is_not_overflow(void)
{
    static const uint8_t tag[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t value[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    grpc_testing_SimpleRequest req;
    const char *why = NULL;
    memset(&req, 0, sizeof(req));
    CHECK_EQ_INT(pl_pb_decode(&grpc_testing_SimpleRequest_msg, tag, sizeof(tag), &req, &why), -1);
    if (pl_pb_error_is_overflow(why))
        fprintf(stderr, "    (nanopb said \"%s\" for an 11-byte tag)\n", why);
    CHECK(why != NULL && !pl_pb_error_is_overflow(why));
    why = NULL;
    memset(&req, 0, sizeof(req));
    CHECK_EQ_INT(pl_pb_decode(&grpc_testing_SimpleRequest_msg, value, sizeof(value), &req, &why), -1);
    if (pl_pb_error_is_overflow(why))
        fprintf(stderr, "    (nanopb said \"%s\" for an 11-byte value)\n", why);
    CHECK(why != NULL && !pl_pb_error_is_overflow(why));
}

/* ---- pl_pb_check_policy ---- */

/* Hand-written descriptors in nanopb's own macro language: three break
 * the view policy, one follows it. */
typedef struct {
    int32_t *p;
} bad_pointer_t;
#define bad_pointer_t_FIELDLIST(X, a) X(a, POINTER, OPTIONAL, INT32, p, 3)
#define bad_pointer_t_CALLBACK NULL
#define bad_pointer_t_DEFAULT NULL
PB_BIND(bad_pointer_t, bad_pointer_t, AUTO)

typedef struct {
    pl_bytes_t n;
} bad_int_callback_t;
#define bad_int_callback_t_FIELDLIST(X, a) X(a, CALLBACK, SINGULAR, INT32, n, 5)
#define bad_int_callback_t_CALLBACK pl_pb_field_cb
#define bad_int_callback_t_DEFAULT NULL
PB_BIND(bad_int_callback_t, bad_int_callback_t, AUTO)

typedef struct {
    pl_bytes_list_t v;
} bad_view_size_t; /* singular field, list type */
#define bad_view_size_t_FIELDLIST(X, a) X(a, CALLBACK, SINGULAR, BYTES, v, 2)
#define bad_view_size_t_CALLBACK pl_pb_field_cb
#define bad_view_size_t_DEFAULT NULL
PB_BIND(bad_view_size_t, bad_view_size_t, AUTO)

typedef struct {
    int32_t num;
    bool has_inner;
    bad_view_size_t inner;
} bad_nested_t;
#define bad_nested_t_FIELDLIST(X, a) X(a, STATIC, SINGULAR, INT32, num, 1) X(a, STATIC, OPTIONAL, MESSAGE, inner, 4)
#define bad_nested_t_CALLBACK NULL
#define bad_nested_t_DEFAULT NULL
#define bad_nested_t_inner_MSGTYPE bad_view_size_t
PB_BIND(bad_nested_t, bad_nested_t, AUTO)

typedef struct {
    pl_bytes_t one;
    pl_bytes_list_t many;
    char inline_str[16];
} good_views_t;
#define good_views_t_FIELDLIST(X, a)                                                                                   \
    X(a, CALLBACK, SINGULAR, BYTES, one, 1)                                                                            \
    X(a, CALLBACK, REPEATED, STRING, many, 2) X(a, STATIC, SINGULAR, STRING, inline_str, 3)
#define good_views_t_CALLBACK pl_pb_field_cb
#define good_views_t_DEFAULT NULL
PB_BIND(good_views_t, good_views_t, AUTO)

static void check_set_policy(const pl_descriptor_set_t *set, const char *set_name)
{
    CHECK(set->message_count > 0);
    for (size_t i = 0; i < set->message_count; i++) {
        uint32_t field = 0xdead;
        int rc = pl_pb_check_policy(set->messages[i], &field);
        if (rc != 0)
            fprintf(stderr, "    (%s message %zu, field %u)\n", set_name, i, field);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(field, 0xdead);
    }
}

static void test_check_policy(void)
{
    CHECK_EQ_INT(interop_descriptors.message_count, 13);
    check_set_policy(&interop_descriptors, "interop");
    check_set_policy(&parley_idl_descriptors, "parley_idl");

    uint32_t field = 0;
    CHECK_EQ_INT(pl_pb_check_policy(&good_views_t_msg, &field), 0);
    field = 0;
    CHECK_EQ_INT(pl_pb_check_policy(&bad_pointer_t_msg, &field), -1);
    CHECK_EQ_INT(field, 3);
    field = 0;
    CHECK_EQ_INT(pl_pb_check_policy(&bad_int_callback_t_msg, &field), -1);
    CHECK_EQ_INT(field, 5);
    field = 0;
    CHECK_EQ_INT(pl_pb_check_policy(&bad_view_size_t_msg, &field), -1);
    CHECK_EQ_INT(field, 2);
    field = 0;
    CHECK_EQ_INT(pl_pb_check_policy(&bad_nested_t_msg, &field), -1);
    CHECK_EQ_INT(field, 2); /* the offending field inside the submessage */
}

int main(void)
{
    test_encode_simple_request();
    test_decode_is_zero_copy();
    test_views_need_pl_pb_decode();
    test_inline_string_overflow();
    test_repeated_views();
    test_truncated();
    test_garbage();
    test_check_policy();
    test_malformed_varint_is_not_overflow();
    return pl_test_report();
}
