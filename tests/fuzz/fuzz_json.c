/* fuzz_json — parleyctl's proto3 JSON mapping (tools/parleyctl: json_decode.c,
 * json_encode.c, wkt.c, wire.c) over the message types of
 * tests/parleyctl/proto/edge.proto (maps, oneofs, packed fields, 64-bit
 * integers, well-known types), whose descriptor set the build makes.
 *
 * Input: one selector byte, then the data. Even selectors feed the data as
 * JSON (JSON -> protobuf -> JSON), odd ones as protobuf bytes (protobuf ->
 * JSON -> protobuf -> JSON); the rest of the selector picks the type.
 * Anything may be rejected, but whatever one direction produces the other
 * must accept, and after one round the JSON text must be a fixed point (one
 * round, because "-0" reads back as the integer 0). The one exception is a
 * string map key holding U+0000: printed correctly, but jansson cannot read
 * such a key back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptors.h"
#include "json.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const types[] = {
    "parley.test.edge.Edge",
    "parley.test.edge.Scalars",
    "parley.test.edge.Inner",
    "parley.test.edge.WellKnown",
};
static pctl_pool_t *pool;
static const pctl_msg_t *msgs[sizeof(types) / sizeof(types[0])];

#define FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FILE *f = fopen(PCTL_EDGE_PROTOSET, "rb");
    static uint8_t set[1 << 20];
    size_t n = f ? fread(set, 1, sizeof(set), f) : 0;
    if (f)
        fclose(f);
    pctl_err_t err;
    pool = pctl_pool_new();
    if (!n || !pool || pctl_pool_add_set(pool, set, n, &err) != 0 || pctl_pool_link(pool, &err) != 0) {
        fprintf(stderr, "fuzz_json: cannot load %s\n", PCTL_EDGE_PROTOSET);
        abort();
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (!(msgs[i] = pctl_pool_find_message(pool, types[i])))
            abort();
    return 0;
}

/* wire -> JSON text (NUL-terminated, malloc'd), or NULL if rejected */
static char *to_json(const pctl_msg_t *m, const uint8_t *wire, size_t len, bool emit_defaults)
{
    pctl_jw_t w;
    pctl_err_t err;
    pctl_json_opts_t o = {emit_defaults};
    pctl_jw_init(&w, true, 64u << 20);
    char *text = NULL;
    if (pctl_json_from_wire(m, wire, len, &o, &w, &err) == 0 && pctl_buf_append(&w.out, "", 1) == 0) {
        text = (char *)w.out.data;
        w.out.data = NULL;
    }
    pctl_jw_dispose(&w);
    return text;
}

/* JSON text -> wire; false if rejected */
static bool to_wire(const pctl_msg_t *m, const char *text, size_t len, pctl_buf_t *out)
{
    json_error_t je;
    json_t *j = pctl_json_load(text, len, FLAGS, &je);
    if (!j)
        return false;
    pctl_err_t err;
    pctl_buf_init(out, 64u << 20);
    bool ok = pctl_json_to_wire(m, j, out, &err) == 0;
    json_decref(j);
    if (!ok)
        pctl_buf_dispose(out);
    return ok;
}

/* One more round from text must give the same text back. */
static void check_fixed_point(const pctl_msg_t *m, const char *text)
{
    pctl_buf_t w1, w2;
    json_error_t je;
    json_t *j = pctl_json_load(text, strlen(text), FLAGS, &je);
    if (!j && strstr(je.text, "NUL byte in object key"))
        return; /* valid JSON jansson cannot read: a map key holding U+0000 */
    if (!j)
        abort();
    json_decref(j);
    if (!to_wire(m, text, strlen(text), &w1))
        abort(); /* our own output must read back */
    char *t1 = to_json(m, w1.data, w1.len, false);
    if (!t1)
        abort(); /* and what we encoded must print */
    if (!to_wire(m, t1, strlen(t1), &w2))
        abort();
    char *t2 = to_json(m, w2.data, w2.len, false);
    if (!t2 || strcmp(t1, t2) != 0) {
        fprintf(stderr, "not a fixed point:\n%s\n---\n%s\n", t1, t2 ? t2 : "(rejected)");
        abort();
    }
    free(t1);
    free(t2);
    pctl_buf_dispose(&w1);
    pctl_buf_dispose(&w2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const pctl_msg_t *m = msgs[(data[0] >> 1) % (sizeof(types) / sizeof(types[0]))];
    bool from_wire = data[0] & 1;
    data++;
    size--;
    if (from_wire) {
        char *text = to_json(m, data, size, false);
        if (text)
            check_fixed_point(m, text);
        free(text);
        free(to_json(m, data, size, true));
    } else {
        pctl_buf_t wire;
        if (!to_wire(m, (const char *)data, size, &wire))
            return 0;
        char *text = to_json(m, wire.data, wire.len, false);
        if (!text)
            abort(); /* what JSON produced must print */
        check_fixed_point(m, text);
        free(text);
        free(to_json(m, wire.data, wire.len, true));
        pctl_buf_dispose(&wire);
    }
    return 0;
}
