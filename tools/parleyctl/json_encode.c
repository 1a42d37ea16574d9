/* json_encode.c — protobuf wire bytes to proto3 JSON text, driven by the
 * descriptors. Fields print in declaration order under their JSON names;
 * fields holding their default value are left out unless emit_defaults;
 * 64-bit integers are strings, bytes standard base64, enums names (numbers
 * when unknown), map entries sorted by key. Protobuf semantics on repeated
 * occurrences: the last one wins for scalars and oneofs, messages merge,
 * packed and unpacked repeated encodings both decode. Fields whose number
 * or wire type the schema does not know are skipped, as unknown fields are. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "json_internal.h"

/* One occurrence of a known field on the wire. */
typedef struct occ {
    uint32_t idx; /* index in m->fields */
    uint32_t seq; /* position on the wire */
    pctl_wire_field_t f;
} occ_t;

int pctl_tojson_fail(pctl_tojson_t *c, const char *fmt, ...)
{
    char msg[600], where[560];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return pctl_fail(c->err, "%s: %s", pctl_path_where(&c->path, where, sizeof(where)), msg);
}

static bool is_varint_type(pctl_type_t t)
{
    switch (t) {
    case PCTL_TYPE_INT32:
    case PCTL_TYPE_INT64:
    case PCTL_TYPE_UINT32:
    case PCTL_TYPE_UINT64:
    case PCTL_TYPE_SINT32:
    case PCTL_TYPE_SINT64:
    case PCTL_TYPE_BOOL:
    case PCTL_TYPE_ENUM: return true;
    default: return false;
    }
}

static int wire_type_of(pctl_type_t t)
{
    if (is_varint_type(t))
        return PCTL_WT_VARINT;
    switch (t) {
    case PCTL_TYPE_DOUBLE:
    case PCTL_TYPE_FIXED64:
    case PCTL_TYPE_SFIXED64: return PCTL_WT_I64;
    case PCTL_TYPE_FLOAT:
    case PCTL_TYPE_FIXED32:
    case PCTL_TYPE_SFIXED32: return PCTL_WT_I32;
    case PCTL_TYPE_GROUP: return PCTL_WT_SGROUP;
    default: return PCTL_WT_LEN;
    }
}

static bool is_packable(const pctl_field_t *f)
{
    return f->label == PCTL_LABEL_REPEATED && wire_type_of(f->type) != PCTL_WT_LEN &&
           wire_type_of(f->type) != PCTL_WT_SGROUP;
}

/* Does this occurrence fit the declared type (or is it a packed run)? */
static bool wire_fits(const pctl_field_t *f, int wt)
{
    return wt == wire_type_of(f->type) || (wt == PCTL_WT_LEN && is_packable(f));
}

static int32_t as_int32(uint64_t v)
{
    return (int32_t)(uint32_t)v;
}

static int32_t zigzag32(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    return (int32_t)(u >> 1) ^ -(int32_t)(u & 1);
}

static double as_double(uint64_t v)
{
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

static float as_float(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* True when the value is its type's default (proto3 leaves it out). */
static bool is_default(const pctl_field_t *f, const pctl_wire_field_t *wf)
{
    switch (f->type) {
    case PCTL_TYPE_STRING:
    case PCTL_TYPE_BYTES: return wf->len == 0;
    case PCTL_TYPE_INT64:
    case PCTL_TYPE_UINT64:
    case PCTL_TYPE_SINT64:
    case PCTL_TYPE_FIXED64:
    case PCTL_TYPE_SFIXED64:
    case PCTL_TYPE_DOUBLE:
    case PCTL_TYPE_BOOL: return wf->value == 0;
    default: return (uint32_t)wf->value == 0;
    }
}

static int emit_bytes(pctl_tojson_t *c, const uint8_t *data, size_t len)
{
    char *s = pctl_b64_encode(data, len);
    if (!s)
        return pctl_tojson_fail(c, "out of memory");
    pctl_jw_string(c->w, s, strlen(s));
    free(s);
    return 0;
}

static const char *enum_name(const pctl_enum_t *e, int32_t n)
{
    if (!e)
        return NULL;
    for (size_t i = 0; i < e->value_count; i++)
        if (e->values[i].number == n)
            return e->values[i].name;
    return NULL;
}

static bool is_null_value_enum(const pctl_field_t *f)
{
    return f->enumt && strcmp(f->enumt->full_name, "google.protobuf.NullValue") == 0;
}

int pctl_tojson_scalar(pctl_tojson_t *c, const pctl_field_t *f, const pctl_wire_field_t *wf)
{
    char text[48];
    uint64_t v = wf->value;
    switch (f->type) {
    case PCTL_TYPE_INT32:
    case PCTL_TYPE_SFIXED32: snprintf(text, sizeof(text), "%" PRId32, as_int32(v)); break;
    case PCTL_TYPE_SINT32: snprintf(text, sizeof(text), "%" PRId32, zigzag32(v)); break;
    case PCTL_TYPE_UINT32:
    case PCTL_TYPE_FIXED32: snprintf(text, sizeof(text), "%" PRIu32, (uint32_t)v); break;
    case PCTL_TYPE_INT64:
    case PCTL_TYPE_SFIXED64: snprintf(text, sizeof(text), "\"%" PRId64 "\"", (int64_t)v); break;
    case PCTL_TYPE_SINT64: snprintf(text, sizeof(text), "\"%" PRId64 "\"", pctl_zigzag_decode(v)); break;
    case PCTL_TYPE_UINT64:
    case PCTL_TYPE_FIXED64: snprintf(text, sizeof(text), "\"%" PRIu64 "\"", v); break;
    case PCTL_TYPE_BOOL: snprintf(text, sizeof(text), "%s", v ? "true" : "false"); break;
    case PCTL_TYPE_DOUBLE: pctl_jw_double(c->w, as_double(v)); return 0;
    case PCTL_TYPE_FLOAT: pctl_jw_float(c->w, as_float(v)); return 0;
    case PCTL_TYPE_ENUM: {
        if (is_null_value_enum(f)) {
            pctl_jw_raw(c->w, "null");
            return 0;
        }
        const char *name = enum_name(f->enumt, as_int32(v));
        if (name) {
            pctl_jw_string(c->w, name, strlen(name));
            return 0;
        }
        snprintf(text, sizeof(text), "%" PRId32, as_int32(v));
        break;
    }
    case PCTL_TYPE_STRING:
        if (pctl_jw_string(c->w, (const char *)wf->data, wf->len) != 0)
            return pctl_tojson_fail(c, "string is not valid UTF-8");
        return 0;
    case PCTL_TYPE_BYTES: return emit_bytes(c, wf->data, wf->len);
    default: return pctl_tojson_fail(c, "%s fields are not supported", f->type == PCTL_TYPE_GROUP ? "group" : "such");
    }
    pctl_jw_raw(c->w, text);
    return 0;
}

/* The default value, for emit_defaults. */
static void emit_default(pctl_tojson_t *c, const pctl_field_t *f)
{
    if (pctl_field_is_map(f)) {
        pctl_jw_begin_object(c->w);
        pctl_jw_end_object(c->w);
    } else if (pctl_field_is_repeated(f)) {
        pctl_jw_begin_array(c->w);
        pctl_jw_end_array(c->w);
    } else if (f->type == PCTL_TYPE_MESSAGE || f->has_presence) {
        pctl_jw_raw(c->w, "null");
    } else {
        pctl_wire_field_t zero = {0};
        zero.wire_type = wire_type_of(f->type);
        pctl_tojson_scalar(c, f, &zero);
    }
}

/* A message from several occurrences: their concatenation is their merge. */
static int emit_merged(pctl_tojson_t *c, const pctl_field_t *f, const occ_t *o, size_t n, int depth)
{
    if (n == 1)
        return pctl_tojson_message(c, f->message, o[0].f.data, o[0].f.len, depth + 1);
    pctl_buf_t merged;
    pctl_buf_init(&merged, SIZE_MAX);
    for (size_t i = 0; i < n; i++)
        if (pctl_buf_append(&merged, o[i].f.data, o[i].f.len) != 0) {
            pctl_buf_dispose(&merged);
            return pctl_tojson_fail(c, "out of memory");
        }
    int rc = pctl_tojson_message(c, f->message, merged.data, merged.len, depth + 1);
    pctl_buf_dispose(&merged);
    return rc;
}

/* Counts (and prints, if print) the elements of a repeated scalar field,
 * expanding packed runs. */
static int for_each_element(pctl_tojson_t *c, const pctl_field_t *f, const occ_t *o, size_t n, size_t *count,
                            bool print)
{
    *count = 0;
    int wt = wire_type_of(f->type);
    for (size_t i = 0; i < n; i++) {
        if (o[i].f.wire_type != PCTL_WT_LEN || wt == PCTL_WT_LEN) {
            (*count)++;
            if (print && pctl_tojson_scalar(c, f, &o[i].f) != 0)
                return -1;
            continue;
        }
        const uint8_t *p = o[i].f.data, *end = p + o[i].f.len;
        while (p < end) {
            pctl_wire_field_t e = {0};
            e.number = o[i].f.number;
            e.wire_type = wt;
            if (wt == PCTL_WT_VARINT) {
                if (pctl_wire_varint(&p, end, &e.value) != 0)
                    return pctl_tojson_fail(c, "malformed packed varint");
            } else {
                size_t w = wt == PCTL_WT_I64 ? 8 : 4;
                if ((size_t)(end - p) < w)
                    return pctl_tojson_fail(c, "truncated packed value");
                for (size_t k = 0; k < w; k++)
                    e.value |= (uint64_t)p[k] << (8 * k);
                p += w;
            }
            (*count)++;
            if (print && pctl_tojson_scalar(c, f, &e) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- maps ---- */

typedef struct map_entry {
    pctl_wire_field_t key, value;
    bool has_key, has_value;
    uint32_t seq;
    const pctl_field_t *key_field;
} map_entry_t;

static int cmp_entry(const void *a, const void *b)
{
    const map_entry_t *x = a, *y = b;
    int c = 0;
    switch (x->key_field->type) {
    case PCTL_TYPE_STRING: {
        size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
        c = n ? memcmp(x->key.data, y->key.data, n) : 0;
        if (c == 0)
            c = (x->key.len > y->key.len) - (x->key.len < y->key.len);
        break;
    }
    case PCTL_TYPE_INT32:
    case PCTL_TYPE_SFIXED32:
        c = (as_int32(x->key.value) > as_int32(y->key.value)) - (as_int32(x->key.value) < as_int32(y->key.value));
        break;
    case PCTL_TYPE_SINT32:
        c = (zigzag32(x->key.value) > zigzag32(y->key.value)) - (zigzag32(x->key.value) < zigzag32(y->key.value));
        break;
    case PCTL_TYPE_INT64:
    case PCTL_TYPE_SFIXED64:
        c = ((int64_t)x->key.value > (int64_t)y->key.value) - ((int64_t)x->key.value < (int64_t)y->key.value);
        break;
    case PCTL_TYPE_SINT64:
        c = (pctl_zigzag_decode(x->key.value) > pctl_zigzag_decode(y->key.value)) -
            (pctl_zigzag_decode(x->key.value) < pctl_zigzag_decode(y->key.value));
        break;
    case PCTL_TYPE_BOOL: c = (x->key.value != 0) - (y->key.value != 0); break;
    case PCTL_TYPE_UINT32:
    case PCTL_TYPE_FIXED32:
        c = ((uint32_t)x->key.value > (uint32_t)y->key.value) - ((uint32_t)x->key.value < (uint32_t)y->key.value);
        break;
    default: c = (x->key.value > y->key.value) - (x->key.value < y->key.value); break;
    }
    if (c == 0)
        c = (x->seq > y->seq) - (x->seq < y->seq);
    return c;
}

static bool same_key(const map_entry_t *x, const map_entry_t *y)
{
    map_entry_t a = *x, b = *y;
    a.seq = b.seq = 0;
    return cmp_entry(&a, &b) == 0;
}

/* The JSON object key for a map key: strings as they are, numbers and
 * bools in their text form. */
static int key_text(pctl_tojson_t *c, const map_entry_t *e, char *buf, size_t cap, const char **key, size_t *len)
{
    const pctl_field_t *kf = e->key_field;
    if (kf->type == PCTL_TYPE_STRING) {
        if (!pctl_utf8_is_valid(e->key.data, e->key.len))
            return pctl_tojson_fail(c, "map key is not valid UTF-8");
        *key = e->key.len ? (const char *)e->key.data : "";
        *len = e->key.len;
        return 0;
    }
    uint64_t v = e->key.value;
    switch (kf->type) {
    case PCTL_TYPE_INT32:
    case PCTL_TYPE_SFIXED32: snprintf(buf, cap, "%" PRId32, as_int32(v)); break;
    case PCTL_TYPE_SINT32: snprintf(buf, cap, "%" PRId32, zigzag32(v)); break;
    case PCTL_TYPE_UINT32:
    case PCTL_TYPE_FIXED32: snprintf(buf, cap, "%" PRIu32, (uint32_t)v); break;
    case PCTL_TYPE_INT64:
    case PCTL_TYPE_SFIXED64: snprintf(buf, cap, "%" PRId64, (int64_t)v); break;
    case PCTL_TYPE_SINT64: snprintf(buf, cap, "%" PRId64, pctl_zigzag_decode(v)); break;
    case PCTL_TYPE_BOOL: snprintf(buf, cap, "%s", v ? "true" : "false"); break;
    default: snprintf(buf, cap, "%" PRIu64, v); break;
    }
    *key = buf;
    *len = strlen(buf);
    return 0;
}

static int emit_map(pctl_tojson_t *c, const pctl_field_t *f, const occ_t *o, size_t n, int depth)
{
    const pctl_msg_t *em = f->message;
    const pctl_field_t *kf = pctl_msg_field_by_number(em, 1), *vf = pctl_msg_field_by_number(em, 2);
    map_entry_t *entries = calloc(n ? n : 1, sizeof(*entries));
    if (!entries)
        return pctl_tojson_fail(c, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        map_entry_t *e = &entries[i];
        e->seq = (uint32_t)i;
        e->key_field = kf;
        e->key.wire_type = wire_type_of(kf->type);
        pctl_wire_reader_t r;
        pctl_wire_field_t wf;
        int wrc;
        pctl_wire_reader_init(&r, o[i].f.data, o[i].f.len);
        while ((wrc = pctl_wire_next(&r, &wf)) == 1) {
            if (wf.number == 1 && wire_fits(kf, wf.wire_type)) {
                e->key = wf;
                e->has_key = true;
            } else if (wf.number == 2 && wire_fits(vf, wf.wire_type)) {
                e->value = wf;
                e->has_value = true;
            }
        }
        if (wrc < 0)
            rc = pctl_tojson_fail(c, "malformed map entry: %s", r.error);
    }
    if (rc == 0) {
        qsort(entries, n, sizeof(*entries), cmp_entry);
        pctl_jw_begin_object(c->w);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (i + 1 < n && same_key(&entries[i], &entries[i + 1]))
                continue; /* the last occurrence of a key wins */
            map_entry_t *e = &entries[i];
            char buf[32];
            const char *key = NULL;
            size_t klen = 0;
            if ((rc = key_text(c, e, buf, sizeof(buf), &key, &klen)) != 0)
                break;
            pctl_jw_key(c->w, key, klen);
            size_t mark = pctl_path_push_key(&c->path, key, klen);
            if (vf->type == PCTL_TYPE_MESSAGE) {
                rc = pctl_tojson_message(c, vf->message, e->has_value ? e->value.data : NULL,
                                         e->has_value ? e->value.len : 0, depth + 1);
            } else if (e->has_value) {
                rc = pctl_tojson_scalar(c, vf, &e->value);
            } else {
                pctl_wire_field_t zero = {0};
                zero.wire_type = wire_type_of(vf->type);
                rc = pctl_tojson_scalar(c, vf, &zero);
            }
            pctl_path_pop(&c->path, mark);
        }
        pctl_jw_end_object(c->w);
    }
    free(entries);
    return rc;
}

/* The value of field f from its occurrences o[0..n) (n > 0). */
static int emit_value(pctl_tojson_t *c, const pctl_field_t *f, const occ_t *o, size_t n, int depth)
{
    if (f->type == PCTL_TYPE_GROUP)
        return pctl_tojson_fail(c, "group fields are not supported");
    if (pctl_field_is_map(f))
        return emit_map(c, f, o, n, depth);
    if (pctl_field_is_repeated(f)) {
        pctl_jw_begin_array(c->w);
        if (f->type == PCTL_TYPE_MESSAGE) {
            for (size_t i = 0; i < n; i++) {
                size_t mark = pctl_path_push_index(&c->path, i);
                int rc = pctl_tojson_message(c, f->message, o[i].f.data, o[i].f.len, depth + 1);
                pctl_path_pop(&c->path, mark);
                if (rc != 0)
                    return -1;
            }
        } else {
            size_t count;
            if (for_each_element(c, f, o, n, &count, true) != 0)
                return -1;
        }
        pctl_jw_end_array(c->w);
        return 0;
    }
    if (f->type == PCTL_TYPE_MESSAGE)
        return emit_merged(c, f, o, n, depth);
    return pctl_tojson_scalar(c, f, &o[n - 1].f);
}

/* Should field f (with occurrences o[0..n)) be printed? */
static bool is_populated(pctl_tojson_t *c, const pctl_field_t *f, const occ_t *o, size_t n)
{
    if (n == 0)
        return false;
    if (pctl_field_is_repeated(f) && !pctl_field_is_map(f) && f->type != PCTL_TYPE_MESSAGE) {
        size_t count = 0;
        if (for_each_element(c, f, o, n, &count, false) != 0)
            return true; /* printing it reports the error */
        return count > 0;
    }
    if (pctl_field_is_repeated(f) || f->has_presence || f->type == PCTL_TYPE_MESSAGE)
        return true;
    return !is_default(f, &o[n - 1].f);
}

static int cmp_occ(const void *a, const void *b)
{
    const occ_t *x = a, *y = b;
    if (x->idx != y->idx)
        return (x->idx > y->idx) - (x->idx < y->idx);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Collects the occurrences of known fields (of one field if only != NULL),
 * sorted by declaration index then wire position; malloc'd into *out. */
static int collect(pctl_tojson_t *c, const pctl_msg_t *m, const pctl_field_t *only, const uint8_t *data, size_t len,
                   occ_t **out, size_t *count)
{
    pctl_wire_reader_t r;
    pctl_wire_field_t wf;
    int rc;
    size_t n = 0;
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &wf)) == 1)
        n++;
    if (rc < 0)
        return pctl_tojson_fail(c, "malformed %s: %s", m->full_name, r.error);
    occ_t *o = malloc((n ? n : 1) * sizeof(*o));
    if (!o)
        return pctl_tojson_fail(c, "out of memory");
    size_t k = 0;
    uint32_t seq = 0;
    pctl_wire_reader_init(&r, data, len);
    while (pctl_wire_next(&r, &wf) == 1) {
        const pctl_field_t *f = pctl_msg_field_by_number(m, wf.number);
        seq++;
        if (!f || (only && f != only) || !wire_fits(f, wf.wire_type))
            continue;
        o[k].idx = (uint32_t)(f - m->fields);
        o[k].seq = seq;
        o[k].f = wf;
        k++;
    }
    qsort(o, k, sizeof(*o), cmp_occ);
    *out = o;
    *count = k;
    return 0;
}

int pctl_tojson_message(pctl_tojson_t *c, const pctl_msg_t *m, const uint8_t *data, size_t len, int depth)
{
    if (depth > PCTL_MAX_MESSAGE_DEPTH)
        return pctl_tojson_fail(c, "messages nested deeper than %d", PCTL_MAX_MESSAGE_DEPTH);
    if (m->wkt != PCTL_WKT_NONE)
        return pctl_wkt_tojson(c, m, data, len, depth);
    occ_t *o;
    size_t n;
    if (collect(c, m, NULL, data, len, &o, &n) != 0)
        return -1;
    /* the member of each oneof seen last on the wire is the one set */
    uint32_t *winner_seq = calloc(m->oneof_count ? m->oneof_count : 1, sizeof(*winner_seq));
    uint32_t *winner_idx = calloc(m->oneof_count ? m->oneof_count : 1, sizeof(*winner_idx));
    if (!winner_seq || !winner_idx) {
        free(o);
        free(winner_seq);
        free(winner_idx);
        return pctl_tojson_fail(c, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const pctl_field_t *f = &m->fields[o[i].idx];
        if (f->oneof_index >= 0 && o[i].seq > winner_seq[f->oneof_index]) {
            winner_seq[f->oneof_index] = o[i].seq;
            winner_idx[f->oneof_index] = o[i].idx;
        }
    }
    int rc = 0;
    size_t at = 0;
    pctl_jw_begin_object(c->w);
    for (size_t i = 0; i < m->field_count && rc == 0; i++) {
        const pctl_field_t *f = &m->fields[i];
        size_t start = at;
        while (at < n && o[at].idx == i)
            at++;
        size_t count = at - start;
        if (f->oneof_index >= 0 && count && winner_idx[f->oneof_index] != i)
            continue;
        size_t mark = pctl_path_push_field(&c->path, f->json_name);
        if (is_populated(c, f, o + start, count)) {
            pctl_jw_key(c->w, f->json_name, strlen(f->json_name));
            rc = emit_value(c, f, o + start, count, depth);
        } else if (c->opts->emit_defaults && f->oneof_index < 0) {
            pctl_jw_key(c->w, f->json_name, strlen(f->json_name));
            emit_default(c, f);
        }
        pctl_path_pop(&c->path, mark);
    }
    pctl_jw_end_object(c->w);
    free(o);
    free(winner_seq);
    free(winner_idx);
    if (rc == 0 && c->w->failed)
        return pctl_tojson_fail(c, "JSON output too large or nested too deeply");
    return rc;
}

int pctl_tojson_field_value(pctl_tojson_t *c, const pctl_field_t *f, const uint8_t *data, size_t len, int depth)
{
    occ_t *o;
    size_t n;
    if (collect(c, f->parent, f, data, len, &o, &n) != 0)
        return -1;
    int rc;
    if (n == 0) {
        emit_default(c, f);
        rc = 0;
    } else {
        rc = emit_value(c, f, o, n, depth);
    }
    free(o);
    return rc;
}

int pctl_json_from_wire(const pctl_msg_t *m, const uint8_t *data, size_t len, const pctl_json_opts_t *opts,
                        pctl_jw_t *w, pctl_err_t *err)
{
    static const pctl_json_opts_t defaults = {false};
    pctl_tojson_t c = {opts ? opts : &defaults, w, err, {{0}, 0}};
    return pctl_tojson_message(&c, m, data, len, 0);
}
