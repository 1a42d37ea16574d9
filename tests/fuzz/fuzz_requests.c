/* fuzz_requests — every request message the server decodes from a client:
 * the request descriptor of every method in the generated method tables of
 * parley.v1 (Accounts, Chats, Messaging), of grpc.testing.TestService and
 * of health and reflection. The first byte picks the method; the rest is
 * the message. Decoding goes into a struct of exactly the method's
 * request_size (so a write past it is caught), from a buffer of exactly the
 * message's size, and a decoded message must keep the view policy
 * (gen/README.md):
 *   - every pl_bytes_t view points inside the input (or is NULL and empty),
 *   - repeated views stay within their list's capacity (0 in a request),
 *   - every repeated inline field's count is within its array,
 * and must survive a round trip: encode, decode, encode again gives the
 * same bytes. */
#include <pb_common.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.parley.h"
#include "grpc/reflection/v1/reflection.parley.h"
#include "grpc/reflection/v1alpha/reflection.parley.h"
#include "grpc/testing/test.parley.h"
#include "parley/v1/accounts.parley.h"
#include "parley/v1/chats.parley.h"
#include "parley/v1/messaging.parley.h"
#include "runtime/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const pl_service_desc_t *const services[] = {
    &parley_v1_Accounts_service,
    &parley_v1_Chats_service,
    &parley_v1_Messaging_service,
    &grpc_testing_TestService_service,
    &grpc_testing_UnimplementedService_service,
    &grpc_testing_ReconnectService_service,
    &grpc_health_v1_Health_service,
    &grpc_reflection_v1_ServerReflection_service,
    &grpc_reflection_v1alpha_ServerReflection_service,
};
#define SERVICE_COUNT (sizeof(services) / sizeof(services[0]))

static const pl_method_t *pick(uint8_t which)
{
    size_t total = 0;
    for (size_t i = 0; i < SERVICE_COUNT; i++)
        total += services[i]->method_count;
    size_t k = which % total;
    for (size_t i = 0; i < SERVICE_COUNT; i++) {
        if (k < services[i]->method_count)
            return services[i]->methods[k];
        k -= services[i]->method_count;
    }
    return NULL;
}

static void violation(const pb_msgdesc_t *desc, uint32_t tag, const char *what)
{
    fprintf(stderr, "view policy broken: field %u of a message with %u fields: %s\n", (unsigned)tag,
            (unsigned)desc->field_count, what);
    abort();
}

static bool inside(const void *p, size_t len, const uint8_t *buf, size_t size)
{
    const uint8_t *b = p;
    return b >= buf && len <= size && b - buf <= (ptrdiff_t)(size - len);
}

/* Checks msg (of type desc, decoded from buf/size) and its submessages. */
static void check_views(const pb_msgdesc_t *desc, void *msg, const uint8_t *buf, size_t size)
{
    pb_field_iter_t it;
    if (!pb_field_iter_begin(&it, desc, msg))
        return;
    do {
        pb_type_t t = it.type;
        if (PB_HTYPE(t) == PB_HTYPE_ONEOF && *(const pb_size_t *)it.pSize != it.tag)
            continue; /* not the active member */
        if (PB_ATYPE(t) == PB_ATYPE_CALLBACK) {
            if (PB_HTYPE(t) == PB_HTYPE_REPEATED) {
                const pl_bytes_list_t *list = it.pData;
                if (list->count > list->capacity)
                    violation(desc, it.tag, "view list over its capacity");
                for (size_t i = 0; i < list->count; i++)
                    if (list->items[i].len && !inside(list->items[i].data, list->items[i].len, buf, size))
                        violation(desc, it.tag, "list view outside the input");
            } else {
                const pl_bytes_t *v = it.pData;
                if ((v->data == NULL) != (v->len == 0))
                    violation(desc, it.tag, "empty view with data, or data without length");
                if (v->len && !inside(v->data, v->len, buf, size))
                    violation(desc, it.tag, "view outside the input");
            }
            continue;
        }
        if (PB_ATYPE(t) != PB_ATYPE_STATIC)
            violation(desc, it.tag, "pointer field on the request path");
        size_t count = 1;
        if (PB_HTYPE(t) == PB_HTYPE_REPEATED) {
            count = *(const pb_size_t *)it.pSize;
            if (count > it.array_size)
                violation(desc, it.tag, "repeated count over its array");
        }
        if (PB_LTYPE_IS_SUBMSG(t) && it.submsg_desc)
            for (size_t i = 0; i < count; i++)
                check_views(it.submsg_desc, (uint8_t *)it.pData + i * it.data_size, buf, size);
    } while (pb_field_iter_next(&it));
}

/* encode(msg) into a fresh buffer; NULL if it cannot be encoded */
static uint8_t *encode(const pb_msgdesc_t *desc, const void *msg, size_t *len)
{
    long n = pl_pb_encoded_size(desc, msg);
    if (n < 0)
        return NULL;
    uint8_t *out = malloc(n ? (size_t)n : 1);
    if (!out || pl_pb_encode(desc, msg, out, (size_t)n) != 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const pl_method_t *m = pick(data[0]);
    size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1); /* exact size: a read past the end is caught */
    void *req = calloc(1, m->request_size);
    void *again = calloc(1, m->request_size);
    if (!buf || !req || !again)
        abort();
    memcpy(buf, data + 1, len);
    const char *why = NULL;
    if (pl_pb_decode(m->request, buf, len, req, &why) == 0) {
        check_views(m->request, req, buf, len);
        size_t n1 = 0, n2 = 0;
        uint8_t *e1 = encode(m->request, req, &n1);
        if (!e1)
            abort(); /* what was decoded must encode */
        if (pl_pb_decode(m->request, e1, n1, again, &why) != 0)
            abort(); /* ... and decode again */
        check_views(m->request, again, e1, n1);
        uint8_t *e2 = encode(m->request, again, &n2);
        if (!e2 || n1 != n2 || memcmp(e1, e2, n1) != 0)
            abort(); /* ... to the same bytes */
        free(e1);
        free(e2);
    }
    free(again);
    free(req);
    free(buf);
    return 0;
}
