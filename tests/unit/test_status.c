/* test_status.c — runtime/status.c: code names, the status struct, and
 * the two standard mappings: HTTP status → gRPC code
 * (grpc/doc/http-grpc-status-mapping.md) and HTTP/2 RST_STREAM error →
 * gRPC code (PROTOCOL-HTTP2.md "Errors"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "runtime/status.h"

static void test_code_names(void)
{
    static const char *const names[] = {
        "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED",
    };
    for (int i = 0; i <= 16; i++)
        CHECK_EQ_STR(pl_code_name(i), names[i]);
    CHECK_EQ_STR(pl_code_name(PL_CODE_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
    CHECK_EQ_STR(pl_code_name(PL_CODE_UNAUTHENTICATED), "UNAUTHENTICATED");
    CHECK_EQ_STR(pl_code_name(-1), "UNKNOWN_CODE");
    CHECK_EQ_STR(pl_code_name(17), "UNKNOWN_CODE");
    CHECK_EQ_STR(pl_code_name(1000), "UNKNOWN_CODE");
    /* the enum has the canonical numbers */
    CHECK_EQ_INT(PL_CODE_CANCELLED, 1);
    CHECK_EQ_INT(PL_CODE_RESOURCE_EXHAUSTED, 8);
    CHECK_EQ_INT(PL_CODE_UNIMPLEMENTED, 12);
    CHECK_EQ_INT(PL_CODE_UNAVAILABLE, 14);
    CHECK_EQ_INT(PL_CODE_UNAUTHENTICATED, 16);
    CHECK_EQ_INT(PL_CODE_MAX, 16);
}

static void test_status_set(void)
{
    pl_status_t st = {PL_CODE_OK, NULL};
    char msg[] = "shard 17 unreachable";
    pl_status_set(&st, PL_CODE_UNAVAILABLE, msg);
    CHECK_EQ_INT(st.code, PL_CODE_UNAVAILABLE);
    CHECK_EQ_STR(st.message, "shard 17 unreachable");
    CHECK(st.message != msg); /* a copy */
    msg[0] = 'X';
    CHECK_EQ_STR(st.message, "shard 17 unreachable");

    pl_status_set(&st, PL_CODE_INTERNAL, NULL); /* frees the old message */
    CHECK_EQ_INT(st.code, PL_CODE_INTERNAL);
    CHECK(st.message == NULL);

    pl_status_set(&st, PL_CODE_ABORTED, "again");
    pl_status_reset(&st);
    CHECK_EQ_INT(st.code, PL_CODE_OK);
    CHECK(st.message == NULL);
    pl_status_reset(&st);
}

static void test_from_http(void)
{
    static const struct {
        int http;
        pl_code_t code;
    } cases[] = {
        {400, PL_CODE_INTERNAL},      {401, PL_CODE_UNAUTHENTICATED}, {403, PL_CODE_PERMISSION_DENIED},
        {404, PL_CODE_UNIMPLEMENTED}, {429, PL_CODE_UNAVAILABLE},     {502, PL_CODE_UNAVAILABLE},
        {503, PL_CODE_UNAVAILABLE},   {504, PL_CODE_UNAVAILABLE},     {200, PL_CODE_UNKNOWN},
        {204, PL_CODE_UNKNOWN},       {301, PL_CODE_UNKNOWN},         {402, PL_CODE_UNKNOWN},
        {405, PL_CODE_UNKNOWN},       {408, PL_CODE_UNKNOWN},         {500, PL_CODE_UNKNOWN},
        {501, PL_CODE_UNKNOWN},       {505, PL_CODE_UNKNOWN},         {0, PL_CODE_UNKNOWN},
        {-1, PL_CODE_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (pl_code_from_http(cases[i].http) != cases[i].code)
            fprintf(stderr, "    (HTTP %d)\n", cases[i].http);
        CHECK_EQ_INT(pl_code_from_http(cases[i].http), cases[i].code);
    }
}

static void test_from_h2_error(void)
{
    static const pl_code_t want[] = {
        PL_CODE_INTERNAL,           /* 0x0 NO_ERROR */
        PL_CODE_INTERNAL,           /* 0x1 PROTOCOL_ERROR */
        PL_CODE_INTERNAL,           /* 0x2 INTERNAL_ERROR */
        PL_CODE_INTERNAL,           /* 0x3 FLOW_CONTROL_ERROR */
        PL_CODE_INTERNAL,           /* 0x4 SETTINGS_TIMEOUT */
        PL_CODE_INTERNAL,           /* 0x5 STREAM_CLOSED */
        PL_CODE_INTERNAL,           /* 0x6 FRAME_SIZE_ERROR */
        PL_CODE_UNAVAILABLE,        /* 0x7 REFUSED_STREAM */
        PL_CODE_CANCELLED,          /* 0x8 CANCEL */
        PL_CODE_INTERNAL,           /* 0x9 COMPRESSION_ERROR */
        PL_CODE_INTERNAL,           /* 0xa CONNECT_ERROR */
        PL_CODE_RESOURCE_EXHAUSTED, /* 0xb ENHANCE_YOUR_CALM */
        PL_CODE_PERMISSION_DENIED,  /* 0xc INADEQUATE_SECURITY */
        PL_CODE_INTERNAL,           /* 0xd HTTP_1_1_REQUIRED */
    };
    for (unsigned int e = 0; e < sizeof(want) / sizeof(want[0]); e++) {
        if (pl_code_from_h2_error(e) != want[e])
            fprintf(stderr, "    (HTTP/2 error 0x%x)\n", e);
        CHECK_EQ_INT(pl_code_from_h2_error(e), want[e]);
    }
    CHECK_EQ_INT(pl_code_from_h2_error(0xe), PL_CODE_INTERNAL);
    CHECK_EQ_INT(pl_code_from_h2_error(0xffffffffu), PL_CODE_INTERNAL);
}

/* Changing only the code by passing the status's own message back in must
 * keep the message. Kept last: the current code frees the message before
 * copying it, which ASan reports as a use after free. */
static void test_status_set_own_message(void)
{
    pl_status_t st = {PL_CODE_OK, NULL};
    pl_status_set(&st, PL_CODE_UNAVAILABLE, "backend unreachable");
    pl_status_set(&st, PL_CODE_INTERNAL, st.message);
    CHECK_EQ_INT(st.code, PL_CODE_INTERNAL);
    CHECK_EQ_STR(st.message, "backend unreachable");
    pl_status_reset(&st);
}

int main(void)
{
    test_code_names();
    test_status_set();
    test_from_http();
    test_from_h2_error();
    test_status_set_own_message();
    return pl_test_report();
}
